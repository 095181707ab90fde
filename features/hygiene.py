"""What real CRM exports get wrong, caught before typing: headers, cells, dates, types.

Exports from Salesforce, HubSpot or a spreadsheet round-trip carry faults that pandas
reads without a word: header names padded with blanks or differing in case, a declared
column missing, empty trailing columns, a 100,000-character cell, NUL bytes, day-first
and month-first dates in one column, activity types spelled "Email_Open " or "email open",
exact duplicate activity rows, "1,200" where a number is due, ids " 0042" and "42". The
contract (``features.contract``) calls these helpers so each such fault ends one of two
ways: a ``ContractError`` naming the file, the line, the column and a short excerpt of the
value, or a quarantined row with that reason. What is normalised is counted (the counts
travel with the checked frames as ``notes``), never silent.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from leadscore.features.text_bytes import clean_text
from leadscore.features.validation import ContractError

log = logging.getLogger(__name__)

EXCERPT_CHARS = 40
"""Longest excerpt of a value quoted in a message or a quarantine reason."""

EARLIEST = pd.Timestamp("1900-01-01", tz="UTC")
LATEST = pd.Timestamp("2262-04-11", tz="UTC")
"""Timestamps outside these years are faults: before 1900 no CRM record is real, and after
2262 a timestamp cannot be held to the nanosecond (pandas' ``datetime64[ns]``)."""

_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"
_UNNAMED = re.compile(r"^Unnamed: \d+$")
_SLASH_DATE = r"^\s*(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{2,4})"
_EXCEL_SERIAL = r"^\s*\d{5}(\.\d+)?\s*$"

Lines = Callable[[int], int]
"""Row position in the source (0 = first data row) -> the line an editor shows."""


def editor_line(row: int) -> int:
    """The line of data row ``row`` in a file whose records hold no line breaks."""
    return int(row) + 2


def excerpt(value: object) -> str:
    """``value`` quoted, control characters escaped, cut to 40 characters and '…'."""
    text = str(value)
    cut = text[:EXCERPT_CHARS]
    shown = re.sub(_CONTROL, lambda m: f"\\x{ord(m.group()):02x}", cut)
    return f"'{shown}…'" if len(text) > EXCERPT_CHARS else f"'{shown}'"


def _key(name: object) -> str:
    return str(name).strip().casefold()


def header_names(columns: Iterable[object], most: int = 12) -> str:
    """A header's names for a message: each cut to 40 characters, at most ``most`` shown."""
    names = [excerpt(c) for c in columns]
    shown = "[" + ", ".join(names[:most])
    return shown + (f", … {len(names) - most} more]" if len(names) > most else "]")


def check_header(names: Sequence[object], source: str) -> None:
    """Refuse a header naming a column twice (after trimming blanks and ignoring case)."""
    seen: dict[str, int] = {}
    for position, name in enumerate(names, start=1):
        key = _key(name)
        if key and key in seen:
            first = seen[key]
            raise ContractError(
                f"{source}: line 1: column '{str(names[first - 1]).strip()}' appears twice in "
                f"the header (columns {first} and {position}: {excerpt(names[first - 1])} and "
                f"{excerpt(name)}); rename or remove one"
            )
        seen.setdefault(key, position)


def tidy_header(
    frame: pd.DataFrame, expected: Iterable[str], source: str
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Trim blanks around header names, match an expected name written in another case,
    drop empty unnamed columns (a spreadsheet's trailing separators); counted in notes."""
    check_header(list(frame.columns), source)
    wanted = {_key(name): name for name in expected}
    present = {c for c in frame.columns if isinstance(c, str)}
    renames: dict[object, str] = {}
    for column in frame.columns:
        if not isinstance(column, str):
            continue
        target = column.strip()
        if target not in wanted.values() and _key(target) in wanted:
            target = wanted[_key(target)]
        if target != column and target not in present:
            renames[column] = target
    empty = [
        c
        for c in frame.columns
        if isinstance(c, str) and _UNNAMED.match(c) and frame[c].isna().all()
    ]
    notes = {"header_names_normalised": len(renames), "empty_columns_dropped": len(empty)}
    tidy = frame.drop(columns=empty).rename(columns=renames) if renames or empty else frame
    return tidy, notes


def require_attributes(frame: pd.DataFrame, attributes: Sequence[str], source: str) -> None:
    """A declared attribute column missing stops the run: its scores would be wrong."""
    missing = [a for a in attributes if a not in frame.columns]
    if missing:
        raise ContractError(
            f"{source}: line 1: declared attribute column(s) {missing} missing; found "
            f"{header_names(frame.columns)}"
        )


_WARNED: set[tuple[str, tuple[str, ...]]] = set()


def present_display(frame: pd.DataFrame, columns: Sequence[str], source: str) -> list[str]:
    """The ``data.display`` columns the export has. One it lacks is shown empty and
    logged (once per source and columns, at INFO: an expected failure's stderr stays one
    line): display columns are for people, so an export without an e-mail still scores."""
    missing = tuple(c for c in columns if c not in frame.columns)
    if missing and (source, missing) not in _WARNED:
        _WARNED.add((source, missing))
        log.info(
            "%s: data.display column(s) %s missing, shown empty; found %s",
            source,
            list(missing),
            header_names(frame.columns),
        )
    return [c for c in columns if c in frame.columns]


def cell_faults(values: pd.Series, column: str, max_chars: int) -> pd.Series:
    """Per row, why a text cell cannot be read (None = fine): over ``max_chars`` characters,
    or holding control characters (NUL and the like; tabs and line breaks are text)."""
    reasons = pd.Series(None, index=values.index, dtype=object)
    if not (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)):
        return reasons
    if clean_text(values, max_chars):
        return reasons
    text = values.astype("str").where(values.notna())
    lengths = text.str.len()
    long = (lengths > max_chars).fillna(False).astype(bool)
    for label in text.index[long]:
        reasons[label] = (
            f"{column} is {int(lengths[label])} characters, over the limit of {max_chars} "
            f"(data.validation.max_cell_chars): {excerpt(text[label])}"
        )
    control = text.str.contains(_CONTROL, regex=True).fillna(False).astype(bool) & ~long
    for label in text.index[control]:
        shown = excerpt(text[label])
        reasons[label] = f"{column} holds a control character (NUL or similar): {shown}"
    return reasons


def out_of_range(parsed: pd.Series) -> pd.Series:
    """Which parsed timestamps lie outside the years 1900-2262 (see ``EARLIEST``)."""
    return parsed.notna() & ((parsed < EARLIEST) | (parsed > LATEST))


def excel_serials(values: pd.Series) -> pd.Series:
    """Which values look like Excel serial dates (45678 = 2025-01-21) rather than dates."""
    return values.astype("str").str.match(_EXCEL_SERIAL).fillna(False).astype(bool)


def check_date_order(values: pd.Series, column: str, source: str, lines: Lines) -> None:
    """Refuse numeric dates whose day/month order is not settled without a date_format.

    ``01/02/2025`` is 1 February or 2 January; a column where some value must be day-first
    (``13/02/2025``) and another must be month-first, or where a value reads both ways,
    would be read with a silent guess per row. Raises ``ContractError`` naming the lines.
    """
    text = values.dropna().astype("str")
    if text.empty:
        return
    separators = ["/", ".", "-"]  # cheap first: a separator 2nd or 3rd (ISO has digits)
    near = text.str.slice(1, 2).isin(separators) | text.str.slice(2, 3).isin(separators)
    text = text[near]
    candidates = text[text.str.slice(0, 6).str.contains(r"^\s*\d{1,2}[/.\-]\d{1,2}[/.\-]")]
    if candidates.empty:
        return
    parts = candidates.str.extract(_SLASH_DATE).dropna()
    if parts.empty:
        return
    a, b = parts[0].astype(int), parts[1].astype(int)
    day_first, month_first = (a > 12) & (b <= 12), (b > 12) & (a <= 12)
    either = (a <= 12) & (b <= 12) & (a != b)
    hint = "set the source's date_format (e.g. '%d/%m/%Y' or '%m/%d/%Y')"
    if day_first.any() and (month_first | either).any():
        first = day_first.idxmax()
        other = (month_first | either).idxmax()
        raise ContractError(
            f"{source}: column '{column}' mixes date orders: line {lines(first)} "
            f"{excerpt(candidates[first])} is day-first, line {lines(other)} "
            f"{excerpt(candidates[other])} would be read month-first; {hint}"
        )
    if either.any():
        first = either.idxmax()
        raise ContractError(
            f"{source}: column '{column}' has dates that read two ways: line {lines(first)} "
            f"{excerpt(candidates[first])} is day {a[first]} month {b[first]} or the reverse "
            f"({int(either.sum())} such rows); {hint}"
        )


def parse_numbers(values: pd.Series, thousands: str | None = None, decimal: str = ".") -> pd.Series:
    """Numbers as float64; text like ``1,200`` is read when the csv options say how
    (``thousands``, ``decimal``) and nothing else could be meant; otherwise NaN."""
    numbers = pd.to_numeric(values, errors="coerce").astype("float64")
    failed = numbers.isna() & values.notna()
    if not failed.any() or (thousands is None and decimal == "."):
        return numbers
    text = values[failed].astype("str").str.strip()
    sep = re.escape(thousands) if thousands else None
    dec = re.escape(decimal)
    grouped = rf"^[-+]?\d{{1,3}}({sep}\d{{3}})+({dec}\d+)?$" if sep else r"^$"
    plain = rf"^[-+]?\d+({dec}\d+)?$"
    ok = text.str.match(grouped) | text.str.match(plain)
    cleaned = text[ok]
    if sep:
        cleaned = cleaned.str.replace(thousands or "", "", regex=False)
    cleaned = cleaned.str.replace(decimal, ".", regex=False)
    numbers.loc[cleaned.index] = pd.to_numeric(cleaned, errors="coerce").astype("float64")
    return numbers


def number_reason(column: str, value: object, thousands: str | None) -> str:
    """Why a value is not a number, with the hint that would let it be read."""
    text = str(value).strip()
    if thousands is None and re.fullmatch(r"[-+]?\d{1,3}([,.' ]\d{3})+([.,]\d+)?", text):
        return f"{column} is not a number: {excerpt(text)} (set the source's csv.thousands)"
    if re.search(r"\d", text):
        return f"{column} is not a number: {excerpt(text)} (units or currency are not read)"
    return f"{column} is not a number: {excerpt(text)}"


def type_key(name: object) -> str:
    """An activity type as compared: case, blanks, hyphens and underscores ignored."""
    return re.sub(r"[\s_\-]+", "_", str(name).strip().casefold()).strip("_")


def normalise_types(types: pd.Series, declared: Sequence[str]) -> tuple[pd.Series, int, bool]:
    """Types spelled another way than a declared one ('Email_Open ', 'email open') read as
    the declared type; returns the types, how many rows were changed, and whether any type
    (not null) is still not a declared one (when none is, no row needs counting)."""
    if types.empty:
        return types, 0, False
    if not declared:
        return types, 0, bool(types.notna().any())
    by_key = {type_key(d): d for d in declared}
    seen = pd.Series(types.unique()).dropna()  # distinct first: no copy of every row
    mapping: Mapping[str, str] = {
        v: by_key[type_key(v)] for v in seen if v not in by_key.values() and type_key(v) in by_key
    }
    undeclared = any(v not in by_key.values() and v not in mapping for v in seen)
    if not mapping:
        return types, 0, undeclared
    changed = types.isin(list(mapping))
    out = types.where(~changed, types.map(mapping))
    return out.astype(types.dtype), int(changed.sum()), undeclared


def id_keys(ids: pd.Series) -> pd.Series:
    """Lead ids as compared for duplicates: all-digit ids without their leading zeros, so
    '0042' and '42' (an Excel round-trip drops the zeros) are the same lead."""
    if not ids.str.startswith("0").fillna(False).astype(bool).any():
        return ids  # no id starts with a zero (the usual table): none to strip
    digits = ids.str.fullmatch(r"\d+").fillna(False).astype(bool)
    if not digits.any():
        return ids
    stripped = ids.where(~digits, ids.str.lstrip("0"))
    return stripped.where(~digits | (stripped != ""), "0")


def repeated_keys(*keys: np.ndarray) -> np.ndarray:
    """Which rows share their integer keys with another row (a superset of the rows that
    repeat one another exactly, when the keys are columns of those rows). Rows already in
    key order (a log grouped by lead, in time order) are compared with their neighbour;
    otherwise the keys are combined into one hash and looked up."""
    if len(keys[0]) < 2:
        return np.zeros(len(keys[0]), dtype=bool)
    ordered = np.ones(len(keys[0]) - 1, dtype=bool)  # row i <= row i + 1, so far
    equal = np.ones(len(keys[0]) - 1, dtype=bool)  # row i == row i + 1, so far
    for key in keys:
        step = np.diff(key.astype(np.int64))
        ordered &= ~equal | (step >= 0)
        equal &= step == 0
    if ordered.all():
        out = np.zeros(len(keys[0]), dtype=bool)
        out[1:] |= equal
        out[:-1] |= equal
        return out
    combined = np.zeros(len(keys[0]), dtype=np.uint64)
    for key in keys:  # wrapping arithmetic: a collision only adds a candidate
        combined = combined * np.uint64(0x9E3779B97F4A7C15) + key.astype(np.int64).view(np.uint64)
    return pd.Series(combined, copy=False).duplicated(keep=False).to_numpy()


def duplicate_rows(
    frame: pd.DataFrame,
    usable: pd.Series | np.ndarray,
    prefilter: str,
    lead: np.ndarray | None = None,
) -> np.ndarray:
    """Which usable rows repeat an earlier usable row exactly (every column equal);
    ``prefilter`` names a timestamp column, cheap to compare, checked first (with each
    row's lead position, ``lead``, when the caller knows it)."""
    repeated = np.zeros(len(frame), dtype=bool)
    if len(frame) < 2:
        return repeated
    stamps = frame[prefilter].to_numpy(dtype="datetime64[ns]").view(np.int64)
    keys = (stamps,) if lead is None else (lead, stamps)
    rows = np.asarray(usable, dtype=bool) & repeated_keys(*keys)
    if rows.any():  # only rows sharing the cheap column can repeat one another
        repeated[np.flatnonzero(rows)] = frame[rows].duplicated(keep="first")
    return repeated
