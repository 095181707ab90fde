"""`leadscore init EXPORT [--activities FILE] [--outcomes FILE] --out CONFIG`.

Reads a sample of the export(s), proposes a role for every column
(``features.profile``, ``features.profile_tables``), runs the leakage sniffer on the
proposed attributes, writes the commented config (``pipelines.init_config``) only once
it loads and validates like any other, and prints what it decided and why: one line per
decision. Registered on the CLI app by ``pipelines.cli``; everything heavy is imported
inside the command, so `leadscore --help` stays fast.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from leadscore.pipelines.errors import ExitCode, fail

if TYPE_CHECKING:
    import pandas as pd

    from leadscore.features.leakage import Suspect
    from leadscore.pipelines.init_config import Proposal

COLUMN_WIDTH = 30


def _sniff(proposal: Proposal) -> list[Suspect]:
    """Leak suspects among the attributes and the columns left out (``features.leakage``),
    by the outcome the export gives or the outcomes table's keys; none without either."""
    from leadscore.features.leakage import Suspect, sniff
    from leadscore.features.profile_tables import converted_flags

    leads, frame = proposal.leads, proposal.leads_file.frame
    columns = [*leads.categorical, *leads.numeric, *leads.left_out]
    words: tuple[str, ...] = ()
    if leads.outcome is not None:
        closed, converted = converted_flags(frame, leads.outcome)
        words = tuple(str(v) for v in (*leads.outcome.converted, *leads.outcome.lost))
    elif proposal.outcomes is not None and proposal.outcomes.key and leads.id_column:
        assert proposal.outcomes_file is not None
        keys = proposal.outcomes_file.frame[proposal.outcomes.key].astype("str").str.strip()
        converted = frame[leads.id_column].astype("str").str.strip().isin(set(keys))
        closed = converted.notna()  # every lead: with a deal row converted, else not
    else:
        return []
    if not columns or converted[closed].nunique() < 2:
        return []
    found = sniff(frame.loc[closed, columns], converted[closed], outcome_words=words)
    by_column: dict[str, Suspect] = {}
    for s in found:  # one entry per column, its reasons joined (strongest first)
        seen = by_column.get(s.column)
        reason = s.reason if seen is None else f"{seen.reason}; {s.kind}: {s.reason}"
        kind = s.kind if seen is None else seen.kind
        strength = float(s.strength) if seen is None else seen.strength
        by_column[s.column] = Suspect(s.column, kind, strength, reason)
    return list(by_column.values())


def propose(export: Path, activities: Path | None, outcomes: Path | None) -> Proposal:
    """Read the files' samples and propose what each column is."""
    from leadscore.features.profile import Decision, profile_leads
    from leadscore.features.profile_tables import profile_activities, profile_outcomes
    from leadscore.pipelines.init_config import Proposal
    from leadscore.pipelines.init_files import read_sample
    from leadscore.pipelines.settings import DataConfig

    leads_file = read_sample(export)
    leads = profile_leads(leads_file.frame, outcome_elsewhere=outcomes is not None)
    ids: pd.Series | None = None
    if leads.id_column is not None:
        ids = leads_file.frame[leads.id_column]
    proposal = Proposal(leads_file, leads)
    if activities is not None:
        proposal.activities_file = read_sample(activities)
        proposal.activities = profile_activities(proposal.activities_file.frame, ids)
    if outcomes is not None:
        proposal.outcomes_file = read_sample(outcomes)
        proposal.outcomes = profile_outcomes(proposal.outcomes_file.frame, ids)
    if activities is not None and outcomes is None:  # an event log needs the life cycle
        for role, column in (("created_at", leads.created_at), ("closed_at", leads.closed_at)):
            if column is None:
                why = f"an activity log needs each lead's {role}: map its column or --outcomes"
                leads.decisions.append(Decision("(none)", role, why))
    proposal.outcomes_key = "outcomes" in DataConfig.model_fields
    proposal.suspects = _sniff(proposal)
    for suspect in proposal.suspects:
        for names in (leads.categorical, leads.numeric, leads.engagement, leads.sensitive_hints):
            if suspect.column in names:
                names.remove(suspect.column)
        leads.left_out.pop(suspect.column, None)
        leads.decisions = [d for d in leads.decisions if d.column != suspect.column]
        why = f"likely leak ({suspect.kind}): {suspect.reason}"
        leads.decisions.append(Decision(suspect.column, "exclude", why))
    return proposal


def _write(text: str, out: Path) -> None:
    """Write ``out`` only once the text loads and validates as settings (a config init
    cannot load is a bug, never the user's to find)."""
    from leadscore.pipelines.settings import SettingsError, load_settings

    out.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=".init-", suffix=".yaml", dir=out.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        try:
            load_settings(name)
        except SettingsError as exc:
            raise RuntimeError(f"init wrote a config that does not load: {exc}") from exc
        os.replace(name, out)
    finally:
        if os.path.exists(name):
            os.remove(name)


def _table(proposal: Proposal) -> list[str]:
    files = [
        ("leads", proposal.leads_file, proposal.leads.decisions),
        ("activities", proposal.activities_file, getattr(proposal.activities, "decisions", [])),
        ("outcomes", proposal.outcomes_file, getattr(proposal.outcomes, "decisions", [])),
    ]
    lines = []
    for title, sample, decisions in files:
        if sample is None:
            continue
        rows = f"{len(sample.frame):,} rows read"
        lines.append(f"{title}: {sample.path.name}: {rows} ({sample.csv_note})")
        for d in decisions:
            column = d.column if len(d.column) <= COLUMN_WIDTH else d.column[:29] + "…"
            lines.append(f"  {column:<{COLUMN_WIDTH}} {d.role:<18} {d.why}")
    return lines


def init_command(
    export: Annotated[Path, typer.Argument(help="The leads export: CSV or Parquet.")],
    out: Annotated[Path, typer.Option("--out", help="The config file to write.")],
    activities: Annotated[
        Path | None, typer.Option(help="An activity log (lead, type, time): CSV or Parquet.")
    ] = None,
    outcomes: Annotated[
        Path | None,
        typer.Option(help="A table of outcomes (deals won/lost) keyed by lead: CSV or Parquet."),
    ] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing --out.")] = False,
) -> None:
    """Read a sample of your export and write a commented starting config.

    It proposes the id column, the dates and their format, the outcome
    values, categorical and numeric attributes, activity types with starting
    points and the split, puts likely leaks under `exclude`, and prints
    each decision and why.
    """
    if out.exists() and not force:
        raise fail(f"{out} exists: give --force to replace it", ExitCode.CONFIG)
    from leadscore.pipelines.init_config import render

    proposal = propose(export, activities, outcomes)
    _write(render(proposal, out), out)
    for line in _table(proposal):
        typer.echo(line)
    typer.echo(f"wrote {out}: check its guesses, then `leadscore train --config {out}`")
