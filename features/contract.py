"""The data contract of leads and activities (docs/architecture.md §3), enforced on entry.

``prepare_leads`` and ``prepare_activities`` rename a user's columns onto the contract,
type them (timestamps end in UTC; values that do not parse are faults with their own
reason), run the Great Expectations suites of ``features.validation``, and split the rows
into clean rows and a quarantine frame with one reason per bad row, so that every input
lead ends scored or quarantined. Table-level faults (a missing required column, empty
input, too many bad rows) raise ``ContractError`` naming the source and the column.
Every input path (files, chunks, the API's posted lead) calls them through the one
reader of ``features.reader``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from leadscore.features import hygiene, text_bytes
from leadscore.features.config import AttributeConfig, ValidationConfig
from leadscore.features.lead_index import LeadIndex
from leadscore.features.parsing import ParseFaults, Source, parse_number, parse_timestamp
from leadscore.features.validation import (
    ContractError,
    Validation,
    activity_rules,
    check_table,
    lead_rules,
    validate,
)

LEAD_ID = "lead_id"
CREATED_AT = "created_at"
STATUS = "status"
CLOSED_AT = "closed_at"
OWNER = "owner"
SEGMENT = "segment"
ACTIVITY_TYPE = "activity_type"
OCCURRED_AT = "occurred_at"
VALUE = "value"

OPEN, CONVERTED, LOST = "open", "converted", "lost"
STATUSES = (OPEN, CONVERTED, LOST)

LEAD_REQUIRED = (LEAD_ID, CREATED_AT, STATUS, CLOSED_AT)
ACTIVITY_REQUIRED = (LEAD_ID, ACTIVITY_TYPE, OCCURRED_AT)

QUARANTINE_COLUMNS = ("source", "row", LEAD_ID, "reason")

__all__ = ["Checked", "ContractError", "data_end", "prepare_activities", "prepare_leads"]


@dataclass(frozen=True)
class Checked:
    """Rows that passed the contract, the rows that did not with their reason, GX results."""

    rows: pd.DataFrame
    quarantine: pd.DataFrame
    validation: Validation | None = None
    unknown_types: int = 0
    null_counts: dict[str, int] | None = None
    """Nulls per attribute over every row, when the table rules are left to the caller."""
    notes: dict[str, int] | None = None
    """What reading normalised or dropped, counted (types respelled, duplicates dropped)."""
    dropped: int = 0
    """Input rows neither clean nor quarantined: exact duplicates dropped by config."""
    lead_positions: np.ndarray | None = None
    """Activities checked against a ``LeadIndex``: each clean row's lead's position in it."""


def require_columns(frame: pd.DataFrame, columns: tuple[str, ...], source: str) -> None:
    """A required column missing stops the run: name the source, the columns and the header."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ContractError(
            f"{source}: required column(s) {missing} missing; found "
            f"{hygiene.header_names(frame.columns)}"
        )


def as_text(values: pd.Series) -> pd.Series:
    """Strings with real nulls, whatever the input dtype (ids may arrive as integers).

    Pandas' text dtype (Arrow-backed), not Python objects: a 27M-row activity log's ids
    take ~0.4 GB instead of ~2 GB, and typing them is ~3x faster.
    """
    text = values.astype("str")
    if text_bytes.trimmed(text):  # nothing to strip or blank (checked on the bytes)
        return text
    text = text.str.strip()
    return text.mask(text == "")


def _quarantine(
    source: str, frame: pd.DataFrame, reasons: pd.Series, bad: np.ndarray
) -> pd.DataFrame:
    if not bad.any():  # the usual chunk: no selection over a million rows, same frame
        ids, rows, shown = frame[LEAD_ID].iloc[:0], frame.index[:0], np.empty(0, object)
    else:
        ids, rows, shown = frame.loc[bad, LEAD_ID], frame.index[bad], reasons[bad].to_numpy()
    if len(ids):  # an id of 100,000 characters is quoted, not copied
        long = ids.str.len() > hygiene.EXCERPT_CHARS
        ids = ids.where(~long.fillna(False), ids.str.slice(0, hygiene.EXCERPT_CHARS) + "…")
    return pd.DataFrame(
        {
            "source": source,
            "row": rows.to_numpy(),
            LEAD_ID: ids.to_numpy(),
            "reason": shown,
        },
        columns=list(QUARANTINE_COLUMNS),
    )


def prepare_leads(
    raw: pd.DataFrame,
    *,
    source: str = "leads",
    column_mapping: Mapping[str, str] | None = None,
    attributes: AttributeConfig | None = None,
    validation: ValidationConfig | None = None,
    now: pd.Timestamp | None = None,
    flat: bool = False,
    date_format: str | None = None,
    rows: np.ndarray | None = None,
    table_rules: bool = True,
    duplicated: pd.Index | None = None,
    lines: hygiene.Lines = hygiene.editor_line,
    thousands: str | None = None,
    decimal: str = ".",
    display: Sequence[str] = (),
    engine: str = "gx",
) -> Checked:
    """Rename, type and check the leads table; quarantine rows that break the contract.

    A flat export (no activity log) needs no ``created_at``/``closed_at``; those it has
    are checked as an event log's (not in the future, closed_at not before created_at). A part of a
    table checked on its own passes its rows' positions in the source as ``rows``, the
    ids duplicated anywhere in the table as ``duplicated`` (a part cannot see them) and
    ``table_rules=False``; the result then carries the null counts the caller needs for
    the table rules (``check_bad_share``, ``check_null_share``). ``lines`` maps a row
    position to the line an editor shows (errors name it); ``thousands`` and ``decimal``
    are the csv options numbers written as text are read with. ``display`` names the
    columns shown beside a score (``data.display``): read as text and held to the cell
    rules like the attributes, never typed or checked as features (one missing is shown
    empty, and logged). ``engine`` runs the suite through GX or as column masks
    (``features.validation.validate``).
    """
    attributes = attributes or AttributeConfig()
    validation = validation or ValidationConfig()
    now = now if now is not None else pd.Timestamp.now(tz="UTC")
    frame = raw.rename(columns=dict(column_mapping or {}))
    frame.index = pd.RangeIndex(len(frame)) if rows is None else pd.Index(rows)
    require_columns(frame, (LEAD_ID, STATUS) if flat else LEAD_REQUIRED, source)
    hygiene.require_attributes(frame, attributes.names, source)
    display = hygiene.present_display(frame, display, source)
    src = Source(source, date_format, lines, thousands, decimal)
    out = frame.copy()
    faults = ParseFaults(out.index)
    text_columns = (*LEAD_REQUIRED, OWNER, SEGMENT, *attributes.names)
    shown = [c for c in dict.fromkeys(display) if c not in {*text_columns, CLOSED_AT}]
    faults.cells(frame, (*text_columns, *shown), validation.max_cell_chars)
    for column in shown:  # display columns typed by nothing else: text as written
        out[column] = as_text(frame[column])
    out[LEAD_ID] = as_text(frame[LEAD_ID])
    out[STATUS] = as_text(frame[STATUS]).str.lower()
    for column in (CREATED_AT, CLOSED_AT):
        if column in frame:
            out[column] = parse_timestamp(frame, column, faults, src)
        else:
            out[column] = pd.Series(pd.NaT, index=out.index, dtype="datetime64[ns, UTC]")
    for column in (OWNER, SEGMENT, *attributes.categorical):
        if column in out.columns:
            out[column] = as_text(frame[column])
    for column in attributes.numeric:
        if column in out.columns:
            out[column] = parse_number(frame, column, faults, src)
    # ids equal but for leading zeros ('0042', '42') are one lead twice; a part of a
    # table gets the ids duplicated anywhere in it (their keys) from its caller
    keys = hygiene.id_keys(out[LEAD_ID])
    if duplicated is None:
        duplicated = pd.Index(keys[keys.duplicated(keep=False)].dropna().unique())
    if len(duplicated):
        faults.add(keys.isin(duplicated), LEAD_ID, "lead_id is duplicated")
    dates = [c for c in (CREATED_AT, CLOSED_AT) if c in frame] if flat else []
    rules = lead_rules(attributes, validation, now, flat, dates)
    checked = validate(out, "leads", source, rules, faults.reasons, faults.columns, engine)
    nulls = None
    if table_rules:
        check_table(out, checked, source, validation, attributes.names, lines)
    else:
        nulls = {c: int(out[c].isna().sum()) for c in attributes.names if c in out}
    bad = checked.bad_rows()
    clean = out[~bad] if bad.any() else out  # all clean: no copy of every column
    quarantine = _quarantine(source, out, checked.reasons, bad)
    return Checked(clean, quarantine, checked, null_counts=nulls)


def created_by_lead(known_leads: pd.DataFrame | pd.Series | LeadIndex) -> pd.Series | LeadIndex:
    """``created_at`` by lead id: the lookup that ties activities to clean leads.

    A caller checking a log in chunks builds it once and passes it as ``known_leads``.
    """
    if isinstance(known_leads, pd.Series | LeadIndex):
        return known_leads
    return known_leads.set_index(LEAD_ID)[CREATED_AT]


def prepare_activities(
    raw: pd.DataFrame,
    known_leads: pd.DataFrame | pd.Series | LeadIndex,
    *,
    source: str = "activities",
    column_mapping: Mapping[str, str] | None = None,
    known_types: Sequence[str] = (),
    validation: ValidationConfig | None = None,
    now: pd.Timestamp | None = None,
    date_format: str | None = None,
    rows: np.ndarray | None = None,
    table_rules: bool = True,
    lines: hygiene.Lines = hygiene.editor_line,
    thousands: str | None = None,
    decimal: str = ".",
    duplicates: str = "drop",
    engine: str = "gx",
) -> Checked:
    """Rename, type and check the activity log against the clean leads (their frame, or
    :func:`created_by_lead` of it).

    Undeclared activity types are kept (the features count them as "other") and counted.
    A part of a log checked on its own (the nightly batch checks one partition at a
    time) passes its rows' positions in the source as ``rows``, so quarantined rows are
    named as in the file, and ``table_rules=False``: the share of bad rows is a rule
    about the whole log, checked once every part is (``check_bad_share``).

    Types spelled another way than a declared one read as it; exact duplicate rows are
    dropped (``duplicates="drop"``; a part sees its own rows only) or kept; both counted
    in ``notes``. ``known_leads`` may be a ``LeadIndex`` (the nightly pass): the clean rows'
    leads' positions in it then come back as ``lead_positions``.
    """
    validation = validation or ValidationConfig()
    now = now if now is not None else pd.Timestamp.now(tz="UTC")
    frame = raw.rename(columns=dict(column_mapping or {}))
    frame.index = pd.RangeIndex(len(frame)) if rows is None else pd.Index(rows)
    require_columns(frame, ACTIVITY_REQUIRED, source)
    src = Source(source, date_format, lines, thousands, decimal)
    faults = ParseFaults(frame.index)
    faults.cells(frame, (*ACTIVITY_REQUIRED, VALUE), validation.max_cell_chars)
    types, respelled, undeclared = hygiene.normalise_types(
        as_text(frame[ACTIVITY_TYPE]), known_types
    )
    out = pd.DataFrame(
        {
            LEAD_ID: as_text(frame[LEAD_ID]),
            ACTIVITY_TYPE: types,
            OCCURRED_AT: parse_timestamp(frame, OCCURRED_AT, faults, src),
            VALUE: parse_number(frame, VALUE, faults, src) if VALUE in frame.columns else np.nan,
        },
        index=frame.index,
    )
    where = None
    if isinstance(known_leads, LeadIndex):  # the nightly pass: compact, no string index
        where = known_leads.positions(out[LEAD_ID])
        created = known_leads.created_at(where).set_axis(out.index)
    else:
        created = out[LEAD_ID].map(created_by_lead(known_leads))
    suite_frame = out.assign(lead_created_at=created.astype("datetime64[ns, UTC]"))
    rules = activity_rules(validation, now)
    reasons, columns = faults.reasons, faults.columns
    checked = validate(suite_frame, "activities", source, rules, reasons, columns, engine)
    if len(out) and table_rules:
        check_table(out, checked, source, validation, lines=lines)
    bad = checked.bad_rows()
    repeated = hygiene.duplicate_rows(out, ~bad, OCCURRED_AT, where)
    keep = ~bad
    if duplicates == "drop":
        keep &= ~repeated
    clean = out  # input order: the features sort what they need
    if not keep.all():  # column by column: out[keep] is ten times slower on Arrow text
        clean = pd.DataFrame({c: out[c].array[keep] for c in out.columns}, index=out.index[keep])
    unknown = 0  # every distinct type declared (the usual chunk): nothing to count
    if known_types and undeclared:
        unknown = int((~clean[ACTIVITY_TYPE].isin(list(known_types))).sum())
    notes = {
        "activity_types_normalised": respelled,
        f"duplicate_activities_{'dropped' if duplicates == 'drop' else 'kept'}": int(
            repeated.sum()
        ),
    }
    dropped = int(repeated.sum()) if duplicates == "drop" else 0
    quarantine = _quarantine(source, out, checked.reasons, bad)
    positions = None if where is None else where[keep]
    return Checked(
        clean, quarantine, checked, unknown, notes=notes, dropped=dropped, lead_positions=positions
    )


def data_end(
    leads: pd.DataFrame,
    activities: pd.DataFrame | None,
    latest_activity: pd.Timestamp | None = None,
) -> pd.Timestamp | pd.NaT:
    """The export day: midnight UTC after the latest timestamp in the data.

    Scoring "now" defaults to this instant, and training censors snapshots against it.
    A log read in chunks passes its latest clean ``occurred_at`` as ``latest_activity``.
    """
    stamps = [leads[CREATED_AT].max(), leads[CLOSED_AT].max(), latest_activity]
    if activities is not None and len(activities):
        stamps.append(activities[OCCURRED_AT].max())
    known = [s for s in stamps if pd.notna(s)]
    if not known:
        return pd.NaT  # a flat export with no dates: nothing is "as of" anything
    return max(known).floor("D") + pd.Timedelta(days=1)
