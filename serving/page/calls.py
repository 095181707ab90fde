"""The page's Calls tab (issue #18): the team with today's counts, a rep's call list
with reasons, the leads no rep could take, and a rep's list as CSV.

Routes: ``GET /ui/calls`` (the team: each rep's calls, expected value and capacity, a
link to their list; the unassigned count), ``GET /ui/calls/unassigned`` (best first,
each with why no rep could take it; ``after`` pages by rank), ``GET /ui/calls/{rep_id}``
(position, lead, company, score, grade, the top reasons, why this rep, the next step)
and ``GET /ui/calls/{rep_id}.csv`` (the same list for a spreadsheet: cells that would
start a formula are neutralised as the CRM export does, serving/export.py). Read from
the current batch through the store's call reads (serving/store/call_reads.py); a page
token opens them like every tab (the page has no write action). A rep's list is at most
their capacity, so the CSV needs no cap.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import pyarrow as pa
import pyarrow.csv as pa_csv
from fastapi import FastAPI, Path, Query, Request
from fastapi.responses import Response

from leadscore.models import reasons as reasons_codec
from leadscore.models.routing.config import Rep
from leadscore.serving.calls import CallCounts, team_overview, unassigned_page
from leadscore.serving.export import neutralised
from leadscore.serving.lookup import batch_label
from leadscore.serving.page.filters import ROWS_PER_PAGE
from leadscore.serving.page.render import lead_view, render
from leadscore.serving.store import BatchInfo, ScoreStore

RepId = Annotated[str, Path(min_length=1, max_length=255)]


def _reasons_line(raw: Any) -> str:
    """The stored reasons as one line (``"text (+); text (-)"``); "" if unreadable."""
    try:
        return reasons_codec.as_text(raw)
    except (TypeError, ValueError, KeyError):
        return ""


def _field(name: str) -> Callable[[dict[str, Any]], Any]:
    return lambda row: row[name]


CSV_COLUMNS: dict[str, tuple[pa.DataType, Callable[[dict[str, Any]], Any]]] = {
    "position": (pa.int64(), _field("position")),
    "lead_id": (pa.string(), _field("lead_id")),
    "name": (pa.string(), _field("name")),
    "company": (pa.string(), _field("company")),
    "email": (pa.string(), _field("email")),
    "record_id": (pa.string(), _field("record_id")),
    "score": (pa.int64(), _field("score")),
    "grade": (pa.string(), _field("grade")),
    "probability": (pa.float64(), _field("probability")),
    "reasons": (pa.string(), lambda row: _reasons_line(row["reasons"])),
    "assignment": (pa.string(), _field("reason")),
    "next_step": (pa.string(), _field("next_step")),
    "expected": (pa.float64(), _field("expected")),
    "rep_id": (pa.string(), _field("rep_id")),
}
"""A rep's list as CSV, column by column (type, value of a call row): the call order,
who to call, the score, why (one line), why this rep (``assignment``), what to suggest;
then ``batch_id`` and ``scored_at`` say which batch the list is from."""


def calls_csv(rows: list[dict[str, Any]], info: BatchInfo | None) -> bytes:
    """A rep's call list (:meth:`ScoreStore.call_list` rows) as spreadsheet-safe CSV."""
    columns = {
        name: pa.array([get(r) for r in rows], type=kind)
        for name, (kind, get) in CSV_COLUMNS.items()
    }
    columns["batch_id"] = pa.array([info.batch_id if info else None] * len(rows), pa.string())
    stamp = info.as_of.isoformat() if info else None
    columns["scored_at"] = pa.array([stamp] * len(rows), pa.string())
    sink = io.BytesIO()
    pa_csv.write_csv(neutralised(pa.table(columns)), sink)
    return sink.getvalue()


def _rep(team: Sequence[Rep], rep_id: str) -> Rep | None:
    return next((r for r in team if r.id == rep_id), None)


def add_calls_routes(
    app: FastAPI,
    store: ScoreStore,
    team: Sequence[Rep],
    authed: Callable[[Request], bool],
    login_redirect: Callable[[Request], Response],
) -> None:
    """Mount the Calls tab (behind the page's session, like every view)."""

    counts = CallCounts(store)

    def missing(message: str) -> Response:
        return render("missing.html", 404, authed=True, message=message)

    @app.get("/ui/calls", include_in_schema=False)
    def calls_page(request: Request) -> Response:
        if not authed(request):
            return login_redirect(request)
        info, reps, unassigned = team_overview(counts, team)
        return render(
            "calls.html",
            authed=True,
            batch_label=batch_label(info),
            reps=reps,
            unassigned=unassigned,
            total=sum(r["assigned"] for r in reps),
        )

    @app.get("/ui/calls/unassigned", include_in_schema=False)
    def unassigned_view(
        request: Request, after: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0
    ) -> Response:
        if not authed(request):
            return login_redirect(request)
        info, rows, total = unassigned_page(counts, after, ROWS_PER_PAGE + 1)
        more = len(rows) > ROWS_PER_PAGE
        rows = rows[:ROWS_PER_PAGE]
        return render(
            "unassigned.html",
            authed=True,
            batch_label=batch_label(info),
            rows=[lead_view(r, info.as_of if info else None) for r in rows],
            total=total,
            after=after,
            next_url=f"/ui/calls/unassigned?after={rows[-1]['rank']}" if more else None,
        )

    def rep_or_answer(request: Request, rep_id: str) -> Rep | Response:
        """The team's rep ``rep_id``, or the answer instead: log in first, or 404."""
        if not authed(request):
            return login_redirect(request)
        rep = _rep(team, rep_id)
        if rep is None:
            return missing(f"No rep {rep_id!r} in the team (routing.reps).")
        return rep

    # before /ui/calls/{rep_id}, which would take "alice.csv" for a rep id
    @app.get("/ui/calls/{rep_id}.csv", include_in_schema=False)
    def rep_calls_csv(request: Request, rep_id: RepId) -> Response:
        rep = rep_or_answer(request, rep_id)
        if isinstance(rep, Response):
            return rep
        info, rows = store.call_list(rep.id)
        name = f"calls-{rep.id}-{info.batch_id if info else 'none'}.csv"
        return Response(
            calls_csv(rows, info),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="{_safe_name(name)}"',
                "Cache-Control": "no-store",
            },
        )

    @app.get("/ui/calls/{rep_id}", include_in_schema=False)
    def rep_calls_page(request: Request, rep_id: RepId) -> Response:
        rep = rep_or_answer(request, rep_id)
        if isinstance(rep, Response):
            return rep
        info, rows = store.call_list(rep.id)
        return render(
            "rep_calls.html",
            authed=True,
            batch_label=batch_label(info),
            rep=rep,
            rows=[lead_view(r, info.as_of if info else None) for r in rows],
            expected=sum(r["expected"] for r in rows),
            has_batch=info is not None,
        )


def _safe_name(name: str) -> str:
    """A file name safe in a Content-Disposition header (letters, digits, ``.-_``)."""
    return "".join(ch if (ch.isalnum() and ch.isascii()) or ch in ".-_" else "_" for ch in name)
