"""The page's tab ``/ui/monitor``, "How did past grades do": for sales ops, per month,
how the leads of each grade converted, the model's grades beside the rules'.

Each month is read from its first judged batch only, so a lead open for weeks counts
once (the nightly batches of a month score mostly the same leads). A month whose batch
has not been watched for the whole horizon shows its conversions so far and says "still
maturing". Above the table: the latest decision of the monitor in words; below it: what
moved in the newest batch (its drift, worst first). Server-rendered, no script, like the
other views.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
from fastapi import FastAPI, Request
from fastapi.responses import Response

from leadscore.models.monitor.words import in_words, maturity, psi_words, share
from leadscore.serving.monitor import drift_rows, latest_run
from leadscore.serving.page.render import render
from leadscore.serving.store import ScoreStore


def first_of_month(batches: pd.DataFrame) -> pd.DataFrame:
    """The first judged batch of each calendar month (UTC) of ``monitor_batches()``,
    newest month first, with a ``month`` column ("2026-01")."""
    if batches.empty:
        return batches.assign(month=pd.Series(dtype=str))
    as_of = pd.to_datetime(batches["as_of"], utc=True)
    frame = batches.assign(_as_of=as_of, month=as_of.dt.strftime("%Y-%m"))
    first = frame.sort_values("_as_of", kind="stable").groupby("month", sort=False).head(1)
    return first.sort_values("_as_of", ascending=False).drop(columns="_as_of")


def _rate(conversions: int, n: int) -> str:
    return share(conversions / n) if n else "-"


def month_tables(
    batches: pd.DataFrame, grades: pd.DataFrame, horizon_days: int
) -> list[dict[str, Any]]:
    """One entry per month (newest first): its batch, how long watched, and per grade the
    model's and the rules' leads, conversions and realised rate."""
    months = []
    for b in first_of_month(batches).to_dict(orient="records"):
        part = grades[grades["batch_id"] == b["batch_id"]]
        order = list(dict.fromkeys(part["grade"].astype(str)))
        rows = []
        for grade in order:
            row: dict[str, Any] = {"grade": grade}
            for ranking in ("model", "rules"):
                hit = part[(part["ranking"] == ranking) & (part["grade"].astype(str) == grade)]
                n = int(hit["n"].iloc[0]) if len(hit) else 0
                conversions = int(hit["conversions"].iloc[0]) if len(hit) else 0
                row[ranking] = {
                    "n": f"{n:,}",
                    "conversions": f"{conversions:,}",
                    "rate": _rate(conversions, n),
                }
            rows.append(row)
        mature = bool(b["mature"])
        months.append(
            {
                "month": b["month"],
                "batch_id": b["batch_id"],
                "scored": pd.Timestamp(b["as_of"]).strftime("%Y-%m-%d"),
                "observed_days": int(b["observed_days"]),
                "horizon_days": horizon_days,
                "mature": mature,
                "status": maturity(mature, int(b["observed_days"]), horizon_days),
                "rows": rows,
            }
        )
    return months


def drift_view(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The newest batch's drift as the template reads it, worst first, in words."""
    out = []
    for r in drift_rows(frame):
        psi = r["psi"]
        out.append(
            {
                "feature": "the score itself" if r["kind"] == "prediction" else r["feature"],
                "psi": "-" if psi is None else f"{psi:.2f}",
                "moved": psi_words(psi),
                "missing": f"{share(r['missing_ref'])} → {share(r['missing_now'])}",
                "unseen": share(r["unseen_now"]),
                "top_shift": r["top_shift"] or "",
            }
        )
    return out


def add_monitor_routes(
    app: FastAPI,
    store: ScoreStore,
    authed: Callable[[Request], bool],
    login_redirect: Callable[[Request], Response],
) -> None:
    """Mount ``GET /ui/monitor`` (behind the page's session, like every view)."""

    @app.get("/ui/monitor", include_in_schema=False)
    def monitor_page(request: Request) -> Response:
        if not authed(request):
            return login_redirect(request)
        run = latest_run(store)
        context: dict[str, Any] = {"authed": True, "run": None, "months": [], "drift": []}
        if run is not None:
            horizon = int(run.get("horizon_days") or 0)
            batches = store.monitor_batches()
            firsts = first_of_month(batches)
            grades = store.monitor_grades(list(firsts["batch_id"]))
            drift = store.monitor_drift(None)
            context.update(
                run={
                    **run,
                    "text": in_words(str(run.get("text") or "")),
                    "reasons": [in_words(r) for r in run["reasons"]],
                    "ran_at": pd.Timestamp(run["created_at"]).strftime("%Y-%m-%d %H:%M UTC")
                    if run.get("created_at") is not None
                    else "",
                },
                months=month_tables(batches, grades, horizon),
                drift=drift_view(drift),
                drift_batch=str(drift["batch_id"].iloc[0]) if len(drift) else None,
                drift_day=pd.Timestamp(drift["as_of"].iloc[0]).strftime("%Y-%m-%d")
                if len(drift)
                else None,
            )
        return render("monitor.html", **context)
