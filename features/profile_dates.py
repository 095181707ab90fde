"""Timestamps in a sample export: which columns hold them, and the format they need.

``leadscore init`` writes ``date_format`` when a column's dates are numeric
(``01-02-2018``), telling day-first from month-first by the values (a day over 12), and
says so when no value tells. ISO-like and typed timestamps need no format (the reader
parses them as ``features.parsing.to_utc`` does). Pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

_DATE = re.compile(
    r"^\s*(\d{1,2})([/.\-])(\d{1,2})\2(\d{4}|\d{2})(?:[ T](\d{1,2}):(\d{2})(:\d{2})?)?\s*$"
)
_ISO = re.compile(
    r"^\s*\d{4}([-/.])\d{1,2}\1\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?\s*"
    r"(Z|UTC|[+-]\d{2}:?\d{2})?\s*$"
)
_MONTH_NAME = re.compile(r"(?i)\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\b")


@dataclass(frozen=True)
class DateGuess:
    """A timestamp column: the strftime format it needs (None = typed or ISO-like)."""

    date_format: str | None
    why: str


def date_guess(values: pd.Series) -> DateGuess | None:
    """Whether ``values`` are timestamps, and the format they need.

    Typed timestamps and ISO-like text need none. Numeric dates (``01-02-2018``) need
    one: day-first when some day is over 12, month-first when some month position is,
    and when no value tells, day-first for ``.`` and ``-`` and month-first for ``/`` (say
    so: the user checks). None when the column is not timestamps.
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        return DateGuess(None, "typed timestamps")
    if not is_text(values):
        return None
    text = text_values(values)
    if text.empty:
        return None
    sample = text.head(5000)
    if sample.str.match(_ISO).mean() >= 0.95:
        return DateGuess(None, "year-first dates (YYYY-MM-DD)")
    named = sample.str.contains(_MONTH_NAME) & sample.str.contains(r"\d", regex=True)
    if named.mean() >= 0.95:
        parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
        if parsed.notna().mean() >= 0.95:
            return DateGuess(None, "dates with month names (read as written)")
    parts = sample.str.extract(_DATE)
    matched = parts[0].notna()
    if matched.mean() < 0.95:
        return None
    parts = parts[matched]
    a, b = parts[0].astype(int), parts[2].astype(int)
    sep = str(parts[1].iloc[0])
    year = "%Y" if parts[3].str.len().max() == 4 else "%y"
    with_time = parts[4].notna()
    if with_time.any() and not with_time.all():
        clock = ""
        note = "; some values have a time of day and some not: check the format"
    else:
        clock = (" %H:%M:%S" if parts[6].notna().any() else " %H:%M") if with_time.all() else ""
        note = ""
    day_first, month_first = bool((a > 12).any()), bool((b > 12).any())
    if day_first and month_first:
        return DateGuess(None, "mixes day-first and month-first dates: fix them at the source")
    if not day_first and not month_first:
        day_first = sep != "/"
        order = "day-first" if day_first else "month-first"
        why = f"no day is over 12: assumed {order} (usual with '{sep}'), check it"
    else:
        first = a[a > 12].iloc[0] if day_first else b[b > 12].iloc[0]
        why = f"{'day' if day_first else 'month'}-first: a day of {first} is written " + (
            "first" if day_first else "second"
        )
    fmt = f"%d{sep}%m{sep}{year}" if day_first else f"%m{sep}%d{sep}{year}"
    return DateGuess(fmt + clock, why + note)


def text_values(values: pd.Series) -> pd.Series:
    """The non-empty values as stripped text."""
    return values.dropna().astype("str").str.strip().loc[lambda s: s != ""]


def is_text(values: pd.Series) -> bool:
    """A text column (Python objects or pandas' string dtype)."""
    return pd.api.types.is_string_dtype(values) or pd.api.types.is_object_dtype(values)
