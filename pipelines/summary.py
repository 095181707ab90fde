"""What `leadscore train`, `score`, `monitor` and `demo` show: the summary line, the
targets, the top, the monitor's decision, and where to look once the demo is done.

Kept apart from ``pipelines.cli`` (the commands) so each stays small; the JSON summary of
a training run is also what the end-to-end tests read.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from leadscore.serving.config import PAGE_TOKENS_ENV

if TYPE_CHECKING:
    from leadscore.pipelines.settings import Settings


def target_lines(targets: list[dict[str, Any]]) -> list[str]:
    """One line per quality target for people (stderr); the JSON line has the same."""
    return [
        f"target {t['target']} {t['rule']}: {t['value']:.4f} "
        f"({t['confidence']:.0%} interval {t['interval'][0]:.4f} to {t['interval'][1]:.4f}) "
        + ("[green]met[/green]" if t["met"] else "[red]missed[/red]")
        for t in targets
    ]


def leak_lines(suspects: list[dict[str, Any]]) -> list[str]:
    """One warning line per column suspected of leaking the outcome (stderr; the run went
    on), worded as ``features.leakage.warning_lines`` words them."""
    from leadscore.features.leakage import Suspect, warning_lines

    return warning_lines([Suspect(**s) for s in suspects])


def train_summary(result: dict[str, Any]) -> dict[str, Any]:
    keys = ("roc_auc", "pr_auc", "brier", "lift_top10", "ece")
    summary: dict[str, Any] = {
        side: {k: round(result[side][k], 4) for k in keys if k in result[side]}
        for side in ("model", "rules", "oracle")
        if side in result
    }
    summary.update({k: result[k] for k in ("split", "n_train", "n_valid", "run_id")})
    summary.update({"model_version": result["version"], "promoted": result["promoted"]})
    if result.get("model_family"):  # model.kind auto: the family it chose
        summary["model_family"] = result["model_family"]
    quality = {"model_minus_rules_roc_auc": result["model"]["roc_auc"] - result["rules"]["roc_auc"]}
    if "oracle" in result:
        quality["oracle_minus_model_roc_auc"] = (
            result["oracle"]["roc_auc"] - result["model"]["roc_auc"]
        )
    summary["quality"] = {k: round(v, 4) for k, v in quality.items()}
    summary["targets"] = result.get("targets", [])
    if result.get("leakage"):
        summary["leakage"] = result["leakage"]
    if result.get("report"):
        summary["report"] = result["report"]
    return summary


def monitor_line(summary: dict[str, Any]) -> str:
    """``leadscore monitor``'s line for people: batches judged, the newest one's figures,
    the decision in words and, when one ran, what the retrain did."""
    if not summary.get("decision"):
        return str(summary["decision_text"])
    newest = summary.get("newest")
    parts = [f"{summary['batches']} batches judged ({summary['mature']} mature)"]
    if summary.get("reused"):
        parts = [
            f"{summary['batches']} batches ({summary['mature']} mature): "
            f"{summary['judged']} judged, {summary['reused']} mature as stored"
        ]
    if newest:
        auc = newest["roc_auc"] if newest["roc_auc"] is not None else newest["estimated_roc_auc"]
        kind = "live" if newest["roc_auc"] is not None else "estimated"
        figure = "n/a" if auc is None else f"{auc:.3f}"
        parts.append(
            f"newest {newest['batch_id']} ({newest['observed_days']} days watched): "
            f"{kind} ROC-AUC {figure}"
        )
    parts.append(str(summary["decision_text"]))
    retrain = summary.get("retrain")
    if retrain:
        done = retrain.get("error") or (
            f"version {retrain['version']} "
            + ("promoted" if retrain["promoted"] else f"not promoted ({retrain['promotion']})")
        )
        parts.append(f"retrained: {done}")
    return "; ".join(parts)


SHOWN_REASONS = 2
"""Reasons for unassigned leads the demo's Calls line names (the most frequent); the rest
are in calls.csv."""


def calls_line(routing: dict[str, Any] | None) -> str | None:
    """The day's call lists in one line (the score flow's ``routing`` summary), e.g.
    ``Calls: 207 leads on 12 reps' lists today (score_aware); 31 unassigned: all capacity
    used``; None when no rep is configured."""
    if not routing:
        return None
    line = (
        f"Calls: {routing['assigned']:,} leads on {routing['reps_with_calls']} reps' lists "
        f"today ({routing['method']})"
    )
    if routing["unassigned"]:
        reasons = sorted(routing["unassigned_by_reason"].items(), key=lambda kv: -kv[1])
        why = ", ".join(f"{n:,} {reason}" for reason, n in reasons[:SHOWN_REASONS])
        more = len(reasons) - SHOWN_REASONS
        why += f" and {more} more reason{'s' * (more > 1)}" if more > 0 else ""
        line += f"; {routing['unassigned']:,} unassigned ({why})"
    return line


def print_top(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    from leadscore.models.reasons import decode

    table = Table(title="Highest open leads", show_lines=True)
    for column in ("rank", "lead", "grade", "probability", "rule score", "reasons"):
        table.add_column(column)
    for row in rows:
        reasons = "\n".join(f"{r['direction']} {r['text']}" for r in decode(row["reasons"]))
        table.add_row(
            str(row["rank"]),
            str(row["lead_id"]),
            row["grade"],
            f"{row['probability']:.1%}",
            f"{row['rule_score']:.0f} ({row['rule_grade']})",
            reasons,
        )
    Console().print(table)


# --------------------------------------------------------------- where the demo ends


def shown(path: Path | str) -> str:
    """A path as a person types it here: relative to the current folder when inside it."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def shown_url(url: str) -> str:
    """A ``sqlite:///`` URL with its file :func:`shown`; any other URL as it is."""
    prefix = "sqlite:///"
    return prefix + shown(url[len(prefix) :]) if url.startswith(prefix) else url


def page_token(path: Path) -> str:
    """The demo's page token kept in ``path``: read, or made once (random, 0600).

    Kept, not remade per demo, so a page server started with it stays valid across runs.
    """
    if path.is_file() and path.read_text().strip():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(24)
    path.touch(mode=0o600)
    path.write_text(token + "\n")
    return token


def command(name: str) -> str:
    """How to run ``name`` (leadscore, mlflow) from here: the script beside this Python
    (``.venv/bin/leadscore``) when there is one, else the bare name."""
    script = Path(sys.executable).with_name(name)
    return shown(script) if script.is_file() else name


def demo_lines(
    settings: Settings,
    config: Path | None,
    token: str,
    seconds: float,
    scored: dict[str, Any] | None = None,
) -> list[str]:
    """How ``leadscore demo`` ends: where to look (the page, with the command that serves
    it and the token that opens it; the report; MLflow; the scores; from the score
    flow's result ``scored``, the call lists and the nurture list in a line each) and
    how long it took."""
    scored = scored or {}
    nurture = scored.get("nurture")
    token_file = shown(settings.output.demo_page_token)
    with_config = f" --config {shown(config)}" if config else ""
    host = "127.0.0.1" if settings.api.host in ("0.0.0.0", "::") else settings.api.host
    tracking = shown_url(settings.tracking.tracking_uri)
    report = settings.output.report_dir / "latest.html"
    return [
        "",
        "Where to look:",
        f'  Page:   {PAGE_TOKENS_ENV}="$(cat {token_file})" {command("leadscore")} serve'
        f"{with_config}",
        f"          then open http://{host}:{settings.api.port}/ui and log in with the "
        f"page token {token} (kept in {token_file})",
        f"  Report: {shown(report)} (open it in a browser)",
        f"  MLflow: {command('mlflow')} ui --backend-store-uri {tracking} --port 5000, "
        "then open http://127.0.0.1:5000",
        f"  Scores: {shown(settings.output.scores_csv)} (CRM import: docs/crm-import.md); "
        f"store {shown_url(settings.store.url)}",
        *(
            [f"  {calls}, in {shown(settings.output.calls_csv)}"]
            if (calls := calls_line(scored.get("routing")))
            else []
        ),
        *(
            [
                f"  Nurture: {nurture['leads']:,} leads, {nurture['with_step']:,} with a next "
                f"step, in {shown(settings.output.nurture_csv)} (docs/nurture.md)"
            ]
            if nurture
            else []
        ),
        f"  Loop:   {command('leadscore')} monitor{with_config} once outcomes arrive; a drifting "
        f"world night by night: {command('leadscore')} demo --nights 8 --every 14 "
        "(docs/drift-simulation.md)",
        f"Demo took {seconds:.0f}s",
    ]
