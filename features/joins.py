"""Second tables joined onto the leads: outcomes (deals) and attribute tables (accounts).

Pure: ``pipelines.sources`` reads the tables, ``features.tables`` checks each on its own.

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

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from leadscore.features import hygiene
from leadscore.features.contract import (
    CLOSED_AT,
    LEAD_ID,
    OPEN,
    QUARANTINE_COLUMNS,
    STATUS,
    Checked,
)
from leadscore.features.reader import ContractReader
from leadscore.features.tables import AttributeTable, Outcomes, keys_of, quarantine_rows
from leadscore.features.validation import ContractError

FAULT = "_leadscore_join_fault"
"""A lead's reason to be quarantined found while joining, carried through the contract
check in this hidden column and turned into a quarantine row after it."""

__all__ = ["FAULT", "JoiningReader", "join_all", "split_faults"]


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
    keys = keys_of(frame[LEAD_ID])
    status = keys.map(outcomes.status).astype(object)
    frame[STATUS] = status.where(status.notna(), OPEN).to_numpy()
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
    keys = keys_of(frame[table.key])
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
    moved = quarantine_rows(
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
            keys = pd.Index(keys_of(pd.Series(lead_ids)).dropna())
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
