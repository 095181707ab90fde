"""The second tables checked: an outcomes table and attribute tables, keyed, one row a key.

Pure: ``pipelines.sources`` reads the files and queries; ``features.joins`` joins the
checked tables onto the leads. Here each table is checked on its own: empty keys,
unmapped status values, dates that do not parse and keys on several rows are
quarantined (source, row, key, reason) or refused, and every row is accounted for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from leadscore.features import hygiene
from leadscore.features.contract import (
    CONVERTED,
    LEAD_ID,
    OPEN,
    QUARANTINE_COLUMNS,
    STATUSES,
    as_text,
    require_columns,
)
from leadscore.features.parsing import to_utc
from leadscore.features.reader import OutcomeValues, conserved, map_outcome
from leadscore.features.validation import ContractError

__all__ = ["AttributeTable", "Outcomes", "prepare_outcomes", "prepare_table"]


def keys_of(values: pd.Series) -> pd.Series:
    """Ids as compared across tables: text, trimmed, '0042' == '42' (``hygiene.id_keys``)."""
    return hygiene.id_keys(as_text(values))


def quarantine_rows(
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
        return quarantine_rows(
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
    keys = keys_of(frame[key])
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
        quarantine=quarantine_rows(
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
    keys = keys_of(frame[own_key])
    repeated = keys.duplicated(keep=False) & keys.notna()
    reasons = pd.Series(None, index=frame.index, dtype=object)
    reasons = reasons.mask(keys.isna(), f"{own_key} is empty")
    positions = pd.Series(np.arange(len(frame)), index=frame.index)
    spread = positions[repeated].groupby(keys[repeated]).agg(lambda r: _lines(lines, r))
    reasons = reasons.mask(
        repeated,
        f"{own_key} is on several rows (lines "
        + keys.map(spread).astype("string").fillna("")
        + ")",
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
        quarantine=quarantine_rows(
            source,
            np.flatnonzero(bad.to_numpy()),
            frame.loc[bad, own_key].astype("string").tolist(),
            reasons[bad].to_numpy(),
        ),
        n_in=len(frame),
    )
