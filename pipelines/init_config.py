"""Write the commented starting config that ``leadscore init`` proposes.

The text is written line by line (not dumped from a dict) so that every guess carries
its reason as a comment next to it: the id column, the timestamps and their format, the
outcome mapping, each attribute, each activity type's starting points, the split, and
each column put under ``exclude`` by the leakage sniffer. Values go through YAML's own
quoting (``"yes"`` stays a string, ``%d/%m/%Y`` stays text). Only what differs from the
shipped ``leadscore.yaml`` is written: every key left out takes its default.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import yaml

from leadscore.features.leakage import Suspect
from leadscore.features.profile import LeadsProposal, Outcome, period_columns, plain_name
from leadscore.features.profile_tables import ActivitiesProposal, OutcomesProposal
from leadscore.pipelines.init_files import FileSample

COMMENT_AT = 34
"""Column where a line's comment starts (when the line is shorter)."""


@dataclass
class Proposal:
    """Everything init found: the files as read, and what each holds."""

    leads_file: FileSample
    leads: LeadsProposal
    activities_file: FileSample | None = None
    activities: ActivitiesProposal | None = None
    outcomes_file: FileSample | None = None
    outcomes: OutcomesProposal | None = None
    suspects: list[Suspect] = field(default_factory=list)
    outcomes_key: bool = False
    """The settings know ``data.outcomes`` (a second table giving status and closed_at)."""


def scalar(value: object) -> str:
    """One YAML scalar as flow text, quoted where YAML would read it as something else."""
    if hasattr(value, "item"):
        value = value.item()  # numpy scalars
    text = yaml.safe_dump([value], default_flow_style=True, width=10**6, allow_unicode=True)
    return text.strip()[1:-1]


def _line(text: str, comment: str = "") -> str:
    if not comment:
        return text
    comment = " ".join(comment.split())
    return f"{text.ljust(COMMENT_AT - 1)} # {comment}"


def _flow(values: list[object]) -> str:
    return "[" + ", ".join(scalar(v) for v in values) + "]"


def _relative(path: Path, folder: Path) -> str:
    """``path`` relative to the config's folder when near it (as the loader resolves it),
    else absolute."""
    try:
        relative = os.path.relpath(path.resolve(), folder.resolve())
    except ValueError:  # another drive (Windows)
        return str(path.resolve())
    return (
        relative if not relative.startswith(os.path.join("..", "..", "..")) else str(path.resolve())
    )


def _source(sample: FileSample, folder: Path, date_format: str | None, why: str) -> list[str]:
    lines = [f"    path: {scalar(_relative(sample.path, folder))}"]
    lines.append(f"    format: {sample.format}")
    if sample.format == "csv":
        options = {"delimiter": sample.delimiter, "encoding": sample.encoding}
        options["decimal"] = sample.decimal
        if sample.thousands:
            options["thousands"] = sample.thousands
        body = ", ".join(f"{k}: {json.dumps(v)}" for k, v in options.items())
        lines.append(_line(f"    csv: {{{body}}}", "sniffed from the file's first bytes"))
    if date_format:
        lines.append(_line(f"    date_format: {scalar(date_format)}", why))
    return lines


def _outcome_values(values: tuple[object, ...]) -> str:
    """The values as typed in the export (``data.outcome`` takes ints, bools and text):
    numpy scalars as Python ones, ``1.0`` (a 0/1 column with blanks) as ``1``."""
    out: list[object] = []
    for v in values:
        v = v.item() if hasattr(v, "item") else v
        out.append(int(v) if isinstance(v, float) and v.is_integer() else v)
    return _flow(out)


def _outcome(outcome: Outcome, why: str) -> list[str]:
    parts = [f"column: {scalar(plain_name(outcome.column))}"]
    for key in ("converted", "lost", "open"):
        values = getattr(outcome, key)
        if values or key != "open":
            parts.append(f"{key}: {_outcome_values(values)}")
    return [_line(f"  outcome: {{{', '.join(parts)}}}", why)]


def _why(proposal: Proposal, role: str, column: str | None = None) -> str:
    decisions = [*proposal.leads.decisions]
    for other in (proposal.activities, proposal.outcomes):
        if other is not None:
            decisions += other.decisions
    for d in decisions:
        if d.role == role and (column is None or d.column == column):
            return d.why
    return ""


def _outcomes_section(proposal: Proposal, folder: Path) -> list[str]:
    table, sample = proposal.outcomes, proposal.outcomes_file
    assert table is not None and sample is not None
    lines = [_line("  outcomes:", "a second table giving each lead's outcome")]
    lines += _source(sample, folder, table.date_format, _why(proposal, "outcome closed at"))
    lines.append(_line(f"    key: {scalar(table.key)}", _why(proposal, "outcomes key")))
    lines.append(_line(f"    closed_at: {scalar(table.closed_at)}", "when the outcome was known"))
    if table.status is None:
        lines.append(_line("    status: null", "every row is a conversion"))
    else:
        status = table.status
        body = f"column: {scalar(status.column)}, converted: {_flow(list(status.converted))}"
        body += f", lost: {_flow(list(status.lost))}"
        if status.open:
            body += f", open: {_flow(list(status.open))}"
        lines.append(_line(f"    status: {{{body}}}", _why(proposal, "outcome status")))
    dup_why = "a lead named twice stops the run" if table.duplicates == "refuse" else ""
    dup_why = dup_why or _why(proposal, f"duplicates: {table.duplicates}")
    lines.append(_line(f"    duplicates: {table.duplicates}", dup_why))
    if proposal.outcomes_key:
        return lines
    return [
        "  # data.outcomes is not known to this version of leadscore: join the outcomes",
        "  # into the export yourself, or update. What init found:",
        *[f"  # {line[2:]}" for line in lines],
    ]


def _data(proposal: Proposal, folder: Path) -> list[str]:
    leads = proposal.leads
    lines = ["data:", "  leads:"]
    lines += _source(proposal.leads_file, folder, leads.date_format, _date_why(leads))
    acts = proposal.activities
    if acts is None or proposal.activities_file is None:
        lines.append(_line("  activities: null", "a flat export: behaviour is in its columns"))
    else:
        lines.append("  activities:")
        lines += _source(
            proposal.activities_file, folder, acts.date_format, _why(proposal, "occurred at")
        )
    mapping = _mapping(proposal)
    if mapping:
        lines.append(_line("  column_mapping:", "your column -> the name used here"))
        lines += [_line(f"    {scalar(k)}: {scalar(v)}", why) for k, (v, why) in mapping.items()]
    if leads.outcome is not None:
        lines += _outcome(leads.outcome, _why(proposal, "outcome"))
    elif proposal.outcomes is None:
        lines.append(_line("  outcome: null", _why(proposal, "outcome")))
    if proposal.outcomes is not None:
        lines += _outcomes_section(proposal, folder)
    if leads.id_column is None:
        lines.append(_line("  lead_id_from_row: true", _why(proposal, "lead id")))
    if proposal.suspects:
        lines.append(_line("  exclude:", "likely leaks: dropped on load, never reach a model"))
        for s in proposal.suspects:
            lines.append(_line(f"    - {scalar(s.column)}", f"{s.kind}: {s.reason}"))
    if leads.sensitive_hints:
        names = _flow([_renamed(leads, c) for c in leads.sensitive_hints])
        note = "protected where you sell? listing them drops them"
        lines.append(_line(f"  # sensitive: {names}", note))
    if acts is None:
        lines.append(_line(f"  order: {leads.order}", leads.order_why))
    return lines


def _date_why(leads: LeadsProposal) -> str:
    for d in leads.decisions:
        if d.role in ("created_at", "closed_at"):
            return d.why
    return ""


def _renamed(leads: LeadsProposal, column: str) -> str:
    return leads.rename.get(column, column)


def _mapping(proposal: Proposal) -> dict[str, tuple[str, str]]:
    """User column -> (name used, why), for the leads and the activity log."""
    leads = proposal.leads
    out: dict[str, tuple[str, str]] = {}
    roles = {leads.id_column: "lead id", leads.created_at: "created_at"}
    roles[leads.closed_at] = "closed_at"
    for user, name in leads.rename.items():
        out[user] = (name, _why(proposal, roles[user], user) if user in roles else "")
    acts = proposal.activities
    if acts is not None:
        targets = {acts.lead_key: "lead_id", acts.activity_type: "activity_type"}
        targets |= {acts.occurred_at: "occurred_at", acts.value: "value"}
        for user, name in targets.items():
            if user is None or user == name:
                continue
            if user in out and out[user][0] != name:
                why = f"CLASH: the leads' {user} is {out[user][0]}; rename one in its file"
                out[user] = (out[user][0], why)
                continue
            out[user] = (name, "activity log")
    return out


def _features(proposal: Proposal) -> list[str]:
    leads = proposal.leads
    lines = ["features:", "  attributes:"]
    for key in ("categorical", "numeric"):
        names = getattr(leads, key)
        if not names:
            lines.append(f"    {key}: []")
            continue
        lines.append(f"    {key}:")
        for name in names:
            lines.append(
                _line(f"      - {scalar(_renamed(leads, name))}", _why(proposal, key, name))
            )
    if leads.engagement:
        names = _flow([_renamed(leads, c) for c in leads.engagement])
        lines.append(_line(f"    engagement: {names}", "behaviour already aggregated"))
    labels = {
        _renamed(leads, c): c
        for c in [*leads.categorical, *leads.numeric]
        if _renamed(leads, c) != c
    }
    if labels:
        lines.append(_line("    labels:", "wording used in reasons"))
        lines += [f"      {scalar(k)}: {scalar(v)}" for k, v in labels.items()]
    left = [f"{c} ({why})" for c, why in leads.left_out.items()]
    left += [f"{s.column} (excluded above)" for s in proposal.suspects]
    for i in range(0, len(left), 3):
        prefix = "    # left out: " if i == 0 else "    #   "
        lines.append(prefix + "; ".join(left[i : i + 3]))
    periods = period_columns(proposal.leads_file.frame) if leads.order == "rows" else []
    if periods:
        names = _flow([_renamed(leads, c) for c in periods])
        lines.append(
            _line(
                f"  # market: {{leads: 500, period_columns: {names}}}",
                "rows in time order: the recent conversion rate (among the last 500 leads "
                "known before each) follows a drifting market; uncomment to try",
            )
        )
    acts = proposal.activities
    if acts is not None and acts.types:
        lines.append(_line("  activity_types:", "STARTING POINTS: edit the points"))
        for t in acts.types:
            body = f"label: {scalar(t.label)}, family: {t.family}, points: {t.points:g}"
            if t.high_intent:
                body += ", high_intent: true"
            note = f"{t.rows:,} rows" + ("" if t.known else "; unknown name: 1 point")
            lines.append(_line(f"    {scalar(t.name)}: {{{body}}}", note))
        if acts.other_types:
            lines.append(f"    # {acts.other_types} rarer types count as 'other' (0 points)")
    return lines


def render(proposal: Proposal, out: Path) -> str:
    """The config text: header, data, features (what differs from the shipped file)."""
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    exports = [proposal.leads_file, proposal.activities_file, proposal.outcomes_file]
    names = ", ".join(f.path.name for f in exports if f is not None)
    header = [
        f"# Written by `leadscore init` on {today} from {names}.",
        "# A STARTING POINT: each guess says what it rests on; check them, then",
        f"#   leadscore train --config {out.name}",
        "# Keys left out take the shipped defaults (leadscore.yaml, every key commented).",
        "",
    ]
    body = [*_data(proposal, out.parent), "", *_features(proposal)]
    return "\n".join([*header, *body]) + "\n"
