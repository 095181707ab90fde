"""The CRM export's rows built column at a time in Arrow: the nightly batch's fast path.

:func:`export_table` returns, for Arrow columns of scored leads, the table that
``serving.export.write_csv_chunks_atomic`` writes for ``export_frame`` of the same leads
(the same columns, types and values, formula cells neutralised), so the CSV bytes are the
same (tests/serving/test_export_arrow.py compares the files) without a Python object per
cell. What it does differently:

- the ``reason_1``..``reason_3`` lines come from one regular-expression pass over the
  ``reasons`` JSON (RE2, in Arrow): a value that is exactly the JSON the codec writes
  (``models/reasons.py``: objects with ``concept``, ``text``, ``direction``, numbers, a
  ``features`` object) and whose first three texts hold no escape is read there; any
  other value (an escape, a v1 reason, a null, something malformed) is read by
  ``serving.export.strongest_reasons``, the codec's reader, row by row, so the lines and
  the errors (naming the lead) are the codec's;
- timestamps are written by Arrow's cast to text (whole seconds, UTC, ``...T...Z``);
- numbers are rounded by numpy, as pandas rounds them.
"""

from __future__ import annotations

from collections.abc import Mapping

import numba
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from leadscore.serving.export import (
    PROBABILITY_DIGITS,
    TIMESTAMPS,
    WHOLE_NUMBERS,
    _iso_utc,
    strongest_reasons,
)
from leadscore.serving.export_fields import EXPORT_COLUMNS, REASON_COLUMNS

_CONCEPT = np.frombuffer(b'{"concept": ', np.uint8)
_TEXT = np.frombuffer(b', "text": ', np.uint8)
_DIRECTION = np.frombuffer(b', "direction": "', np.uint8)
_CONTRIBUTION = np.frombuffer(b'", "contribution": ', np.uint8)
_SHARE = np.frombuffer(b', "share": ', np.uint8)
_NULL = np.frombuffer(b"null", np.uint8)
_FEATURES = np.frombuffer(b', "features": {', np.uint8)
_COLON = np.frombuffer(b": ", np.uint8)
_COMMA = np.frombuffer(b", ", np.uint8)
_ESCAPED = np.frombuffer(b'"\\/bfnrt', np.uint8)
_HEX = np.frombuffer(b"0123456789abcdefABCDEF", np.uint8)


@numba.njit(cache=True, inline="always")
def _literal(data: np.ndarray, p: int, end: int, literal: np.ndarray) -> int:
    """Position after ``literal`` at ``p``, or -1."""
    if p < 0 or p + len(literal) > end:
        return -1
    for j in range(len(literal)):
        if data[p + j] != literal[j]:
            return -1
    return p + len(literal)


@numba.njit(cache=True)
def _string(data: np.ndarray, p: int, end: int) -> tuple[int, bool]:
    """Position after the JSON string at ``p`` (-1: none) and whether it has no escape."""
    if p < 0 or p >= end or data[p] != 34:  # "
        return -1, False
    p += 1
    plain = True
    while p < end:
        c = data[p]
        if c == 34:
            return p + 1, plain
        if c < 32:
            return -1, False
        if c == 92:  # a backslash: one of the escapes JSON allows
            plain = False
            if p + 1 >= end:
                return -1, False
            e = data[p + 1]
            if e == 117:  # \uXXXX
                if p + 6 > end:
                    return -1, False
                for j in range(2, 6):
                    if data[p + j] not in _HEX:
                        return -1, False
                p += 6
                continue
            if e not in _ESCAPED:
                return -1, False
            p += 2
            continue
        p += 1
    return -1, False


@numba.njit(cache=True, inline="always")
def _digits(data: np.ndarray, p: int, end: int) -> int:
    """Position after one or more digits at ``p``, or -1."""
    start = p
    while p < end and 48 <= data[p] <= 57:
        p += 1
    return p if p > start else -1


@numba.njit(cache=True)
def _number(data: np.ndarray, p: int, end: int) -> int:
    """Position after the JSON number at ``p``, or -1."""
    if p < 0 or p >= end:
        return -1
    if data[p] == 45:  # -
        p += 1
    if p < end and data[p] == 48:  # a leading 0 stands alone
        p += 1
    else:
        p = _digits(data, p, end)
        if p < 0:
            return -1
    if p < end and data[p] == 46:  # .
        p = _digits(data, p + 1, end)
        if p < 0:
            return -1
    if p < end and (data[p] == 101 or data[p] == 69):  # e E
        p += 1
        if p < end and (data[p] == 43 or data[p] == 45):
            p += 1
        p = _digits(data, p, end)
    return p


@numba.njit(cache=True)
def _reason_row(data: np.ndarray, p: int, end: int, spans: np.ndarray) -> int:
    """Read one reasons value (bytes ``p:end``) if it is the codec's JSON exactly; its
    first three texts (without escapes) go to ``spans`` (start, end, direction).
    Returns how many (0-3), or -1: not read here."""
    if p >= end or data[p] != 91:  # [
        return -1
    p += 1
    if p < end and data[p] == 93:  # ]
        return 0 if p + 1 == end else -1
    k = 0
    while True:
        p, _ = _string(data, _literal(data, p, end, _CONCEPT), end)
        q = _literal(data, p, end, _TEXT)
        p, plain = _string(data, q, end)
        if p < 0 or (k < 3 and not plain):
            return -1
        text_end = p - 1
        p = _literal(data, p, end, _DIRECTION)
        if p < 0 or p >= end or (data[p] != 43 and data[p] != 45):  # + -
            return -1
        if k < 3:
            spans[k, 0], spans[k, 1], spans[k, 2] = q + 1, text_end, data[p]
        p = _number(data, _literal(data, p + 1, end, _CONTRIBUTION), end)
        p = _literal(data, p, end, _SHARE)
        after_null = _literal(data, p, end, _NULL)
        p = after_null if after_null >= 0 else _number(data, p, end)
        p = _literal(data, p, end, _FEATURES)
        if p < 0 or p >= end:
            return -1
        if data[p] != 125:  # }: a feature's name and value, and the next
            while True:
                p, _ = _string(data, p, end)
                p = _number(data, _literal(data, p, end, _COLON), end)
                if p < 0 or p >= end:
                    return -1
                if data[p] == 125:
                    break
                p = _literal(data, p, end, _COMMA)
        p += 1
        if p >= end or data[p] != 125:  # the reason's }
            return -1
        p += 1
        k += 1
        if p < end and data[p] == 93:
            return min(k, 3) if p + 1 == end else -1
        p = _literal(data, p, end, _COMMA)
        if p < 0:
            return -1


@numba.njit(cache=True)
def _scan(
    data: np.ndarray, offsets: np.ndarray, valid: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_reason_row` of every value: (how many, -1: not read here; their spans)."""
    n = len(offsets) - 1
    count = np.full(n, -1, dtype=np.int64)
    spans = np.zeros((n, 3, 3), dtype=np.int64)
    for i in range(n):
        if valid[i]:
            count[i] = _reason_row(data, offsets[i], offsets[i + 1], spans[i])
    return count, spans


@numba.njit(cache=True)
def _lines(
    data: np.ndarray, count: np.ndarray, spans: np.ndarray, slot: int
) -> tuple[np.ndarray, np.ndarray]:
    """Reason ``slot``'s line of every row, ``text (+)``: (offsets, bytes); empty where
    the row has none."""
    n = len(count)
    offsets = np.zeros(n + 1, dtype=np.int32)
    for i in range(n):
        size = spans[i, slot, 1] - spans[i, slot, 0] + 4 if count[i] > slot else 0
        offsets[i + 1] = offsets[i] + size
    out = np.empty(offsets[n], dtype=np.uint8)
    for i in range(n):
        if count[i] > slot:
            a, b, at = spans[i, slot, 0], spans[i, slot, 1], offsets[i]
            out[at : at + b - a] = data[a:b]
            at += b - a
            out[at], out[at + 1], out[at + 2], out[at + 3] = 32, 40, spans[i, slot, 2], 41
    return offsets, out


def reason_lines(reasons: pa.Array | pa.ChunkedArray, lead_ids: pa.Array) -> list[pa.Array]:
    """``reason_1``..``reason_3`` of each ``reasons`` value, as ``strongest_reasons``
    gives them (``"text (+)"``, null when fewer); a malformed value raises its
    ValueError naming the lead (the first in row order)."""
    values = _plain(reasons)
    values = values if _text(values.type) else values.cast(pa.string())
    n = len(values)
    wide = np.int64 if pa.types.is_large_string(values.type) else np.int32
    offsets = np.frombuffer(values.buffers()[1], wide)[values.offset : values.offset + n + 1]
    data = np.frombuffer(values.buffers()[2], np.uint8) if n else np.zeros(0, np.uint8)
    valid = values.is_valid().to_numpy(zero_copy_only=False)
    count, spans = _scan(data, offsets, valid)
    lines = []
    for slot in range(len(REASON_COLUMNS)):
        starts, text = _lines(data, count, spans, slot)
        present = np.packbits(count > slot, bitorder="little")
        buffers = [pa.py_buffer(present), pa.py_buffer(starts), pa.py_buffer(text)]
        lines.append(pa.Array.from_buffers(pa.string(), n, buffers))
    others = np.flatnonzero(count < 0)
    if not len(others):
        return lines
    read = _codec_lines(values.take(others).to_pylist(), _plain(lead_ids).take(others).to_pylist())
    mask = pa.array(count < 0)
    return [
        pc.replace_with_mask(line, mask, pa.array(column, pa.string()))
        for line, column in zip(lines, zip(*read, strict=True), strict=True)
    ]


def _codec_lines(values: list[str | None], lead_ids: list[object]) -> list[list[str | None]]:
    """``strongest_reasons`` of each value; the first malformed one raises, naming its lead
    (as ``export_frame`` does)."""
    out = []
    for lead_id, raw in zip(lead_ids, values, strict=True):
        try:
            out.append(strongest_reasons(raw))
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"column 'reasons' is not a JSON array of reasons for lead_id {lead_id!r}: {exc}"
            ) from exc
    return out


ISO_SECONDS = r"^[0-9]{4}-(?:0[1-9]|1[0-2])-[0-3][0-9]T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z$"
"""Text that is already a timestamp as the export writes it (``2026-11-22T03:15:00Z``)."""

_PANDAS_SPAN = (
    pd.Timestamp.min.ceil("s").value // 10**9,
    pd.Timestamp.max.floor("s").value // 10**9,
)


def iso_utc(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Timestamps as ``2026-11-22T03:15:00Z`` text (UTC, whole seconds; null stays null),
    as ``serving.export._iso_utc`` writes them. Text that is already so written (a real
    date, in the years pandas reads) is kept; other text goes to that function."""
    column = _plain(column)
    if pa.types.is_null(column.type):
        return pa.nulls(len(column), pa.string())
    if pa.types.is_timestamp(column.type):
        seconds = pc.floor_temporal(column, unit="second").cast(pa.timestamp("s"))
        text = pc.replace_substring(seconds.cast(pa.string()), " ", "T", max_replacements=1)
        return pc.binary_join_element_wise(text, "Z", "")
    if _text(column.type) and _written(column):
        return column
    written = _iso_utc(pd.Series(column.to_pandas(), dtype=object))
    return pa.array(written.to_numpy(dtype=object), pa.string(), from_pandas=True)


def _written(text: pa.Array) -> bool:
    """Whether every value of ``text`` is a real UTC time written as the export writes it."""
    if not pc.all(pc.fill_null(pc.match_substring_regex(text, ISO_SECONDS), True)).as_py():
        return False
    try:
        stamps = pc.strptime(text, format="%Y-%m-%dT%H:%M:%SZ", unit="s")
    except (pa.ArrowInvalid, ValueError):  # a day that does not exist: pandas says which
        return False
    low, high = pc.min_max(stamps.cast(pa.int64())).values()
    low, high = low.as_py(), high.as_py()
    return low is None or (_PANDAS_SPAN[0] <= low and high <= _PANDAS_SPAN[1])


def export_table(
    scores: pa.Table, constants: Mapping[str, object], calls: Mapping[str, pa.Array]
) -> pa.Table:
    """The export's rows (:data:`EXPORT_COLUMNS`, in ``scores``' row order) as
    ``serving.export.write_csv_chunks_atomic`` takes them (it neutralises the formula
    cells).

    ``scores`` has the score columns with ``rank``, ``percentile`` and ``rule_rank``;
    ``constants`` the columns equal on every row (``batch_id``, ``model_version``,
    ``scored_at``); ``calls`` the ``call_rep`` and ``call_position`` of each row.
    """
    n = scores.num_rows
    lines = reason_lines(scores["reasons"], scores["lead_id"])
    reasons = dict(zip(REASON_COLUMNS, lines, strict=True))
    columns = []
    for name in EXPORT_COLUMNS:
        if name in reasons:
            column = reasons[name]
        elif name in calls:
            column = _plain(calls[name])
        elif name in constants:
            column = _constant(name, constants[name], n)
        else:
            column = _plain(scores[name])
        column = _nan_as_null(column)
        if name in TIMESTAMPS:
            column = column if name in constants else iso_utc(column)
        elif name in WHOLE_NUMBERS:
            column = column.cast(pa.int64())
        elif name == "probability":
            rounded = np.round(column.to_numpy(zero_copy_only=False), PROBABILITY_DIGITS)
            column = pa.array(rounded, from_pandas=True)
        columns.append(_text_or_own(column))
    return pa.Table.from_arrays(columns, names=list(EXPORT_COLUMNS))


def _constant(name: str, value: object, n: int) -> pa.Array:
    """One value on ``n`` rows, as text (a timestamp as ``export_frame`` writes it)."""
    if name in TIMESTAMPS:
        value = _iso_utc(pd.Series([value]))[0]
    text = None if value is None else str(value)
    return pa.repeat(pa.scalar(text, pa.string()), n)


def _nan_as_null(column: pa.Array) -> pa.Array:
    """A float column's NaN as null, as a pandas round trip makes them (an empty cell)."""
    if not pa.types.is_floating(column.type) or not pc.any(pc.is_nan(column)).as_py():
        return column
    return pc.if_else(pc.is_nan(column), pa.scalar(None, column.type), column)


def _plain(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One array (a chunked column combined)."""
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def _text_or_own(column: pa.Array) -> pa.Array:
    """Text (large, categorical, or no value at all) as plain text; anything else as is."""
    kind = column.type
    if pa.types.is_null(kind):
        return column.cast(pa.string())
    if pa.types.is_dictionary(kind):
        return column.cast(kind.value_type).cast(pa.string()) if _text(kind.value_type) else column
    return column.cast(pa.string()) if _text(kind) else column


def _text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)
