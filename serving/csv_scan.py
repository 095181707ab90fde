"""Byte scanners (numba) behind the CSV writers: what a column-at-a-time writer cannot ask
Arrow's compute functions for quickly.

- :func:`reason_spans` reads a column of reasons JSON values (``models/reasons.py``)
  where each value is exactly what the codec writes, and finds each value's first three
  reason texts; :func:`reason_lines_bytes` makes their ``"text (+)"`` lines. A value read
  otherwise is marked (-1) for the codec itself to read (``serving/export_arrow.py``).
- :func:`maybe_formula` marks the text cells in which the formula checks of
  ``serving/export.py`` (``FORMULA_START``, ``FORMULA_INSIDE``) could match anything:
  only those cells are handed to the (exact, slower) regular expressions.

Each takes a string column as its Arrow buffers: the bytes, the offsets, which are valid.
"""

from __future__ import annotations

import numba
import numpy as np
import pyarrow as pa

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


@numba.njit(cache=True, nogil=True)
def reason_spans(
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


@numba.njit(cache=True, nogil=True)
def reason_lines_bytes(
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


_FULL_WIDTH = np.array([0x9D, 0x8B, 0x8D, 0xA0], np.uint8)
"""Last bytes of U+FF1D, U+FF0B, U+FF0D, U+FF20 (UTF-8 ``EF BC xx``): full-width = + - @."""


@numba.njit(cache=True, inline="always")
def _formula_at(data: np.ndarray, p: int, end: int) -> bool:
    """Whether a formula character (= + - @ or a full-width one) starts at ``p``."""
    c = data[p]
    if c == 61 or c == 43 or c == 45 or c == 64:
        return True
    return c == 0xEF and p + 2 < end and data[p + 1] == 0xBC and data[p + 2] in _FULL_WIDTH


@numba.njit(cache=True, nogil=True)
def maybe_formula(data: np.ndarray, offsets: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Cells a formula check could match (a superset): the first byte is a tab, CR, LF
    or NUL; or after blanks (tab, LF, VT, FF, CR, space) a formula character; or a
    formula character after a ``,``, ``;``, tab, CR or LF and any spaces or quotes."""
    n = len(offsets) - 1
    out = np.zeros(n, dtype=np.bool_)
    for i in range(n):
        a, b = offsets[i], offsets[i + 1]
        if not valid[i] or a >= b:
            continue
        c = data[a]
        if c == 9 or c == 13 or c == 10 or c == 0:
            out[i] = True
            continue
        p = a
        while p < b and (data[p] == 32 or 9 <= data[p] <= 13):
            p += 1
        if p < b and _formula_at(data, p, b):
            out[i] = True
            continue
        for p in range(a, b):
            c = data[p]
            if c == 44 or c == 59 or c == 9 or c == 13 or c == 10:
                q = p + 1
                while q < b and (data[q] == 32 or data[q] == 34):
                    q += 1
                if q < b and _formula_at(data, q, b):
                    out[i] = True
                    break
    return out


def string_buffers(column: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A (large) string array's bytes, offsets and validity, as the scanners take them."""
    n = len(column)
    wide = np.int64 if pa.types.is_large_string(column.type) else np.int32
    _, offsets, data = column.buffers()
    if not n or offsets is None:
        return np.zeros(0, np.uint8), np.zeros(n + 1, wide), np.zeros(n, np.bool_)
    at = np.frombuffer(offsets, wide)[column.offset : column.offset + n + 1]
    values = np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)
    return values, at, column.is_valid().to_numpy(zero_copy_only=False)
