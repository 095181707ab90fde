"""Typing a raw column onto the contract, with the reason each value that does not type.

Timestamps end in UTC (``to_utc``); a value that does not parse is a fault with its own
reason, told apart on the raw value (an Excel serial number, a year past 2262, a number
with a unit): :class:`ParseFaults` collects them, first reason per row, for
``features.contract``'s quarantine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from leadscore.features import hygiene, text_bytes


def to_utc(values: pd.Series, date_format: str | None = None) -> pd.Series:
    """Parse timestamps (any offset, or naive = UTC) to ``datetime64[ns, UTC]``; bad -> NaT."""
    wide = _parsed(values, date_format)
    # beyond datetime64[ns] (years 1677-2262) a cast would raise: those are NaT, and
    # ``parse_timestamp`` gives them their own reason
    return wide.mask(hygiene.out_of_range(wide)).astype("datetime64[ns, UTC]")


def _parsed(values: pd.Series, date_format: str | None) -> pd.Series:
    """Timestamps in UTC at whatever resolution parsing gives (years 1-9999); bad -> NaT."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC")
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.dt.tz_localize("UTC")
    return pd.to_datetime(values, errors="coerce", utc=True, format=date_format or "mixed")


class ParseFaults:
    """Reasons found while typing columns, which need the raw value to be told apart.

    None until a fault is found (the usual case): no million-row object column per chunk.
    """

    def __init__(self, index: pd.Index) -> None:
        self.index = index
        self.reasons: pd.Series | None = None
        self.columns: pd.Series | None = None

    def add(self, failed: pd.Series, column: str, reason: str | pd.Series) -> None:
        failed = failed.fillna(False).astype(bool)
        if not failed.any():  # the usual case: no mask over a million reasons
            return
        if self.reasons is None or self.columns is None:
            self.reasons = pd.Series(None, index=self.index, dtype=object)
            self.columns = pd.Series(None, index=self.index, dtype=object)
        new = self.reasons.isna() & failed
        self.reasons = self.reasons.mask(new, reason)
        self.columns = self.columns.mask(new, column)

    def cells(self, frame: pd.DataFrame, columns: Sequence[str], max_chars: int) -> None:
        """Oversized cells and control characters in ``columns``: reasons with an excerpt."""
        for column in columns:
            if column in frame.columns and not text_bytes.clean_cells(frame[column], max_chars):
                found = hygiene.cell_faults(frame[column], column, max_chars)
                self.add(found.notna(), column, found)


@dataclass(frozen=True)
class Source:
    """Where a frame comes from and how its text reads: named in every error."""

    name: str
    date_format: str | None = None
    lines: hygiene.Lines = hygiene.editor_line
    thousands: str | None = None
    decimal: str = "."


def _shown(raw: pd.Series, rows: pd.Series) -> pd.Series:
    """Excerpts of the values of ``rows`` (only those: a column may hold millions)."""
    return raw[rows].astype("str").map(hygiene.excerpt).reindex(raw.index)


def parse_timestamp(
    frame: pd.DataFrame, column: str, faults: ParseFaults, src: Source
) -> pd.Series:
    """``column`` as UTC timestamps; each value that does not parse gets its reason."""
    raw = frame[column]
    if not pd.api.types.is_datetime64_any_dtype(raw) and src.date_format is None:
        hygiene.check_date_order(raw, column, src.name, src.lines)
    wide = _parsed(raw, src.date_format)
    far = hygiene.out_of_range(wide)
    parsed = wide.mask(far).astype("datetime64[ns, UTC]")
    if far.any():
        shown = _shown(raw, far)
        faults.add(far, column, f"{column} is outside the years 1900-2262: " + shown)
    if pd.api.types.is_datetime64_any_dtype(raw):
        return parsed  # already typed (Parquet, SQL): nothing else can fail to parse
    unparsed = parsed.isna() & raw.notna() & (raw.astype(str).str.strip() != "")
    if unparsed.any():
        serial = hygiene.excel_serials(raw[unparsed]).reindex(raw.index, fill_value=False)
        text = _shown(raw, unparsed)
        faults.add(
            serial,
            column,
            f"{column} is an Excel serial number, not a timestamp: "
            + text
            + " (format the column as a date before exporting)",
        )
        faults.add(unparsed, column, f"{column} is not a timestamp: " + text)
    return parsed


def parse_number(frame: pd.DataFrame, column: str, faults: ParseFaults, src: Source) -> pd.Series:
    """``column`` as finite floats; each value that does not parse gets its reason."""
    raw = frame[column]
    if raw.dtype == np.float64 and not np.isinf(raw.to_numpy()).any():
        return raw  # already finite floats or missing (Parquet, SQL): nothing to parse

    values = hygiene.parse_numbers(raw, src.thousands, src.decimal)
    failed = values.isna() & raw.notna()
    if failed.any():
        reasons = raw[failed].map(lambda v: hygiene.number_reason(column, v, src.thousands))
        faults.add(failed, column, reasons.reindex(raw.index))
    faults.add(np.isinf(values), column, f"{column} is not finite")
    return values.where(np.isfinite(values))
