"""Second tables joined onto the leads: outcomes (deals) and attribute tables (accounts).

Pure: ``pipelines.sources`` reads the tables and hands them here as frames.

- **Outcomes** (``data.outcomes``): one row per lead that reached an outcome, found by a
  key holding the lead's id. A lead with a converted row is converted as of the row's
  ``closed_at``, with a lost row lost; a lead with no row is open (nothing known yet).
- **Attribute tables** (``data.joins``): accounts, companies; many leads point at one row
  by a key. Their columns reach the leads as ``<name>_<column>`` and are attributes like
  any other once declared under ``features.attributes``.

The joins happen after a leads frame is put onto the contract's names and before it is
typed and checked (:class:`JoiningReader`), so the joined status, dates and attributes pass
the same rules as the leads' own columns. Nothing is silently wrong:

- a second table's row whose key is empty, whose status value is unmapped or whose date
  does not parse is quarantined (source, row, key, reason); so is an outcome row whose
  key matches no lead (an orphan), and every row of an attribute table whose key is
  repeated (which one is meant is unknown);
- several outcome rows for one lead stop the run (``duplicates: refuse``) or the earliest
  counts and the others are dropped, counted (``duplicates: first``);
- a lead whose outcome row is quarantined, whose key matches no row of an attribute table,
  or matches a repeated one, is quarantined with the reason;
- a join maps each lead to at most one row: lead rows are never multiplied (asserted), and
  every input row of every table ends clean, quarantined or dropped-and-counted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from leadscore.features import hygiene
from leadscore.features.contract import (
    CLOSED_AT,
    CONVERTED,
    LEAD_ID,
    OPEN,
    QUARANTINE_COLUMNS,
    STATUS,
    STATUSES,
    Checked,
    as_text,
    require_columns,
    to_utc,
)
from leadscore.features.reader import ContractReader, OutcomeValues, conserved, map_outcome
from leadscore.features.validation import ContractError

FAULT = "_leadscore_join_fault"
"""A lead's reason to be quarantined found while joining, carried through the contract
check in this hidden column and turned into a quarantine row after it."""

__all__ = [
    "AttributeTable",
    "JoiningReader",
    "Outcomes",
    "join_all",
    "prepare_outcomes",
    "prepare_table",
]


def _keys(values: pd.Series) -> pd.Series:
    """Ids as compared across tables: text, trimmed, '0042' == '42' (``hygiene.id_keys``)."""
    return hygiene.id_keys(as_text(values))


def _quarantine(
    source: str, rows: np.ndarray, keys: Sequence[object], reasons: object
) -> pd.DataFrame:
    return pd.DataFrame(
        {"source": source, "row": rows, LEAD_ID: list(keys), "reason": reasons},
        columns=list(QUARANTINE_COLUMNS),
    )


def _lines(lines: hygiene.Lines, rows: Iterable[int]) -> str:
    return ", ".join(str(lines(int(r))) for r in rows)


@dataclass(frozen=True)
class Outcomes:
    """The outcomes table, checked: one status and ``closed_at`` per lead key."""

    source: str
    key: str
    status: pd.Series  # lead key -> converted / lost / open
    closed_at: pd.Series  # lead key -> UTC timestamp (NaT: not given)
    row: pd.Series  # lead key -> the kept row's position in the table
    faults: pd.Series  # lead key -> why its lead is quarantined (its outcome row is bad)
    quarantine: pd.DataFrame
    n_in: int
    dropped: int = 0  # later rows of a lead, with duplicates: first

    def orphans(self, lead_keys: pd.Index, leads_source: str) -> pd.DataFrame:
        """Kept rows whose key matches no lead read (quarantined leads included)."""
        lost = ~self.status.index.isin(lead_keys)
        keys = self.status.index[lost]
        return _quarantine(
            self.source,
            self.row[keys].to_numpy(),
            keys,
            [f"{self.key} {hygiene.excerpt(k)} matches no lead in {leads_source}" for k in keys],
        )

    def everything(self, lead_keys: pd.Index, leads_source: str) -> pd.DataFrame:
        """The table's quarantine, orphans included; checks every row is accounted for."""
        orphans = self.orphans(lead_keys, leads_source)
        matched = len(self.status) - len(orphans)
        conserved(
            self.source, self.n_in, matched, len(self.quarantine) + len(orphans), self.dropped
        )
        return pd.concat([self.quarantine, orphans], ignore_index=True)


def prepare_outcomes(
    raw: pd.DataFrame,
    *,
    source: str,
    key: str,
    closed_at: str | None = None,
    status: OutcomeValues | None = None,
    duplicates: str = "refuse",
    date_format: str | None = None,
    lines: hygiene.Lines = hygiene.editor_line,
) -> Outcomes:
    """Check an outcomes table: one outcome per lead key, its status and its date.

    ``status`` None: every row is a conversion (a table of won deals). Rows with an empty
    key, an unmapped status value or a date that does not parse are quarantined; several
    rows for one key raise ``ContractError`` (``duplicates="refuse"``) or keep the earliest
    by date (``"first"``; undated rows after dated ones, then table order).
    """
    frame, _ = hygiene.tidy_header(
        raw,
        [key, *([closed_at] if closed_at else []), *([status.column] if status else [])],
        source,
    )
    needed = (key, *([closed_at] if closed_at else []), *([status.column] if status else []))
    require_columns(frame, needed, source)
    frame = frame.reset_index(drop=True)
    keys = _keys(frame[key])
    reasons = pd.Series(None, index=frame.index, dtype=object)
    reasons = reasons.mask(keys.isna(), f"{key} is empty")
    if status is None:
        states = pd.Series(CONVERTED, index=frame.index, dtype=object)
    else:
        states = map_outcome(frame[status.column], status)
        unmapped = ~states.isin(STATUSES) & reasons.isna()
        shown = frame[status.column].astype("string").map(hygiene.excerpt, na_action="ignore")
        reasons = reasons.mask(
            unmapped,
            f"{status.column} is not a listed outcome value (data.outcomes.status): "
            + shown.fillna("empty").astype(str),
        )
    if closed_at:
        raw_dates = frame[closed_at]
        dates = to_utc(raw_dates, date_format)
        given = raw_dates.notna() & (raw_dates.astype(str).str.strip() != "")
        bad = dates.isna() & given & reasons.isna()
        shown = raw_dates.astype(str).map(hygiene.excerpt)
        reasons = reasons.mask(bad, f"{closed_at} is not a timestamp: " + shown)
    else:
        dates = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns, UTC]")
    dates = dates.mask(states == OPEN)  # an open outcome has no date
    usable = keys.notna()
    repeated = keys.duplicated(keep=False) & usable
    if repeated.any() and duplicates == "refuse":
        first = keys[repeated].iloc[0]
        rows = np.flatnonzero((keys == first).fillna(False).to_numpy())
        n = keys[repeated].nunique()
        raise ContractError(
            f"{source}: {n} lead(s) have more than one outcome row, e.g. {key} "
            f"{hygiene.excerpt(first)} on lines {_lines(lines, rows)}; keep one row per lead, "
            "or set data.outcomes.duplicates: first (the earliest counts)"
        )
    # the earliest outcome of each lead counts: dated rows first, then table order
    stamps = dates.to_numpy(dtype="datetime64[ns]").view(np.int64)
    order = np.lexsort((np.arange(len(frame)), stamps, dates.isna().to_numpy()))
    ranked = keys.iloc[order]
    later = pd.Series(False, index=frame.index)
    later.iloc[order] = (ranked.duplicated(keep="first") & ranked.notna()).to_numpy()
    dropped = later & reasons.isna()
    kept = usable & ~later
    good = kept & reasons.isna()
    bad_rows = reasons.notna()
    faults = reasons[kept & bad_rows]
    fault_keys = keys[kept & bad_rows]
    return Outcomes(
        source=source,
        key=key,
        status=pd.Series(states[good].to_numpy(), index=pd.Index(keys[good]), dtype=object),
        closed_at=pd.Series(dates[good].to_numpy(), index=pd.Index(keys[good])),
        row=pd.Series(np.flatnonzero(good.to_numpy()), index=pd.Index(keys[good])),
        faults=pd.Series(
            [
                f"its outcome row in {source} (line {lines(int(r))}) is quarantined: {why}"
                for r, why in zip(faults.index, faults, strict=True)
            ],
            index=pd.Index(fault_keys),
            dtype=object,
        ),
        quarantine=_quarantine(
            source,
            np.flatnonzero(bad_rows.to_numpy()),
            frame.loc[bad_rows, key].astype("string").tolist(),
            reasons[bad_rows].to_numpy(),
        ),
        n_in=len(frame),
        dropped=int(dropped.sum()),
    )


@dataclass(frozen=True)
class AttributeTable:
    """An attribute table, checked: one row per key, its columns already prefixed."""

    name: str
    source: str
    key: str  # the leads' column pointing at it
    rows: pd.DataFrame  # index: key (compared form) -> ``<name>_<column>`` values
    repeated: pd.Series  # key -> the lines it is on, for keys on several rows
    quarantine: pd.DataFrame
    n_in: int


def prepare_table(
    raw: pd.DataFrame,
    *,
    name: str,
    source: str,
    key: str,
    own_key: str | None = None,
    drop_columns: Callable[[Iterable[str]], list[str]] | None = None,
    lines: hygiene.Lines = hygiene.editor_line,
) -> AttributeTable:
    """Check an attribute table: rows with an empty key and every row of a repeated key
    are quarantined; the others are indexed by key, their columns prefixed ``<name>_``.

    ``drop_columns`` names the columns to leave out (excluded and sensitive ones, asked
    with both the table's and the prefixed name).
    """
    own_key = own_key or key
    frame, _ = hygiene.tidy_header(raw, [own_key], source)
    require_columns(frame, (own_key,), source)
    frame = frame.reset_index(drop=True)
    keys = _keys(frame[own_key])
    repeated = keys.duplicated(keep=False) & keys.notna()
    reasons = pd.Series(None, index=frame.index, dtype=object)
    reasons = reasons.mask(keys.isna(), f"{own_key} is empty")
    positions = pd.Series(np.arange(len(frame)), index=frame.index)
    spread = positions[repeated].groupby(keys[repeated]).agg(lambda r: _lines(lines, r))
    reasons = reasons.mask(
        repeated,
        f"{own_key} is on several rows (lines " + keys.map(spread).fillna("") + ")",
    )
    columns = [c for c in frame.columns if c != own_key]
    if drop_columns is not None:
        dropped = set(drop_columns(columns)) | set(drop_columns([f"{name}_{c}" for c in columns]))
        columns = [c for c in columns if c not in dropped and f"{name}_{c}" not in dropped]
    good = reasons.isna()
    rows = frame.loc[good, columns].rename(columns=lambda c: f"{name}_{c}")
    rows.index = pd.Index(keys[good])
    bad = reasons.notna()
    return AttributeTable(
        name=name,
        source=source,
        key=key,
        rows=rows,
        repeated=spread,
        quarantine=_quarantine(
            source,
            np.flatnonzero(bad.to_numpy()),
            frame.loc[bad, own_key].astype("string").tolist(),
            reasons[bad].to_numpy(),
        ),
        n_in=len(frame),
    )


def _fault(frame: pd.DataFrame, found: pd.Series) -> None:
    """Add reasons to the hidden fault column (a lead's first reason is kept)."""
    current = frame[FAULT] if FAULT in frame else pd.Series(None, index=frame.index, dtype=object)
    frame[FAULT] = current.where(current.notna(), found.to_numpy())


def _join_outcomes(frame: pd.DataFrame, outcomes: Outcomes, leads_source: str) -> None:
    present = [c for c in (STATUS, CLOSED_AT) if c in frame.columns]
    if present:
        raise ContractError(
            f"{leads_source}: has {present} and data.outcomes ({outcomes.source}) gives them "
            "too: drop those columns (data.exclude) or remove data.outcomes"
        )
    keys = _keys(frame[LEAD_ID])
    frame[STATUS] = keys.map(outcomes.status).fillna(OPEN).astype(object).to_numpy()
    frame[CLOSED_AT] = keys.map(outcomes.closed_at).astype("datetime64[ns, UTC]")
    _fault(frame, keys.map(outcomes.faults))


def _join_table(frame: pd.DataFrame, table: AttributeTable, leads_source: str) -> pd.DataFrame:
    if table.key not in frame.columns:
        raise ContractError(
            f"{leads_source}: data.joins {table.name}: key column '{table.key}' missing; "
            f"found {hygiene.header_names(frame.columns)}"
        )
    clash = [c for c in table.rows.columns if c in frame.columns]
    if clash:
        raise ContractError(
            f"{leads_source}: column(s) {clash} are in the leads and come from data.joins "
            f"{table.name} ({table.source}) too; rename one side"
        )
    keys = _keys(frame[table.key])
    found = keys.isin(table.rows.index)
    where = table.repeated.reindex(keys).to_numpy()
    reasons = pd.Series(None, index=frame.index, dtype=object)
    twice = pd.Series(pd.notna(where), index=frame.index)
    reasons = reasons.mask(
        twice,
        f"{table.key} " + keys.astype(str).map(hygiene.excerpt) + f" is on several rows of "
        f"{table.source} (lines " + pd.Series(where, index=frame.index).astype(str) + ")",
    )
    missing = keys.notna() & ~found & ~twice
    reasons = reasons.mask(
        missing,
        f"{table.key} " + keys.astype(str).map(hygiene.excerpt) + f" matches no row of "
        f"{table.source} (data.joins {table.name})",
    )
    _fault(frame, reasons)
    position = table.rows.index.get_indexer(keys)
    joined = {
        c: pd.Series(table.rows[c].to_numpy(dtype=object), dtype=object)
        .reindex(position)  # -1 (no row) -> missing
        .to_numpy()
        for c in table.rows.columns
    }
    before = len(frame)
    out = frame.assign(**joined) if joined else frame
    if len(out) != before:  # cannot happen with a unique index: a bug, loudly
        raise RuntimeError(f"data.joins {table.name}: the join changed the lead rows")
    return out


def join_all(
    frame: pd.DataFrame,
    outcomes: Outcomes | None,
    tables: Sequence[AttributeTable],
    leads_source: str,
) -> pd.DataFrame:
    """The leads (contract names) with their outcome and attribute tables joined on;
    the same rows, in the same order, with a hidden fault column (:data:`FAULT`)."""
    out = frame.copy()
    if outcomes is not None:
        _join_outcomes(out, outcomes, leads_source)
    for table in tables:
        out = _join_table(out, table, leads_source)
    if FAULT not in out:
        out[FAULT] = pd.Series(None, index=out.index, dtype=object)
    return out


def split_faults(checked: Checked, source: str) -> Checked:
    """Leads that passed the contract but not a join: from the clean rows to the quarantine."""
    rows = checked.rows
    if FAULT not in rows:
        return checked
    bad = rows[FAULT].notna()
    moved = _quarantine(
        source, rows.index[bad].to_numpy(), rows.loc[bad, LEAD_ID].tolist(), rows.loc[bad, FAULT]
    )
    quarantine = pd.concat([checked.quarantine, moved], ignore_index=True)
    quarantine = quarantine.sort_values("row", kind="stable").reset_index(drop=True)
    clean = rows.loc[~bad].drop(columns=[FAULT])
    return replace(checked, rows=clean, quarantine=quarantine)


@dataclass(frozen=True)
class JoiningReader(ContractReader):
    """The contract reader with the second tables joined on before the leads are checked."""

    outcomes: Outcomes | None = None
    tables: tuple[AttributeTable, ...] = field(default=())

    def onto_contract(self, raw: pd.DataFrame) -> pd.DataFrame:
        frame = super().onto_contract(raw)
        return join_all(frame, self.outcomes, self.tables, self.leads_source)

    def leads(
        self,
        raw: pd.DataFrame,
        now: pd.Timestamp | None = None,
        *,
        rows: np.ndarray | None = None,
        duplicated: pd.Index | None = None,
        table_rules: bool = True,
    ) -> Checked:
        checked = super().leads(raw, now, rows=rows, duplicated=duplicated, table_rules=table_rules)
        return split_faults(checked, self.leads_source)

    def second_quarantine(self, lead_ids: pd.Series) -> pd.DataFrame:
        """The second tables' quarantined rows, orphan outcomes found against every lead id
        read (``lead_ids``, any form: compared as keys)."""
        frames = [t.quarantine for t in self.tables]
        if self.outcomes is not None:
            keys = pd.Index(_keys(pd.Series(lead_ids)).dropna())
            frames.insert(0, self.outcomes.everything(keys, self.leads_source))
        frames = [f for f in frames if len(f)]
        if not frames:
            return pd.DataFrame(columns=list(QUARANTINE_COLUMNS))
        return pd.concat(frames, ignore_index=True)

    def second_notes(self) -> dict[str, int]:
        """What joining dropped, counted."""
        if self.outcomes is None:
            return {}
        return {"duplicate_outcomes_dropped": self.outcomes.dropped}
