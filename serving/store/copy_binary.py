"""PostgreSQL's binary ``COPY`` format, rendered from Arrow columns in one numba loop.

``COPY ... FROM STDIN (FORMAT binary)`` hands the server each value as it is stored (a
length, then the bytes): no text to scan for quotes and line ends, no number to parse.
The CSV path spent most of the server's time in that parse (issue #19: CSV parsing was
about 40% of the PostgreSQL backend's CPU in a publish). Each value is the same on both
paths: text as its UTF-8 bytes (the server still checks the encoding and a
``varchar(n)``'s length), integers as 2, 4 or 8 bytes, doubles as their 8 IEEE bytes
(exactly the value, not a decimal rendering). Binary columns (``bytea``) are carried the
same way as text, so a compact encoded column needs no hex.

What it cannot send as the server would have parsed it, it refuses with None
(:func:`copy_binary`): an integer out of its column's range (the CSV path then lets the
server raise its own error) or a column type it does not know.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np
import pyarrow as pa

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
"""The format's header: signature, flags (none) and header extension length (0)."""

TRAILER = b"\xff\xff"
"""The field count -1 that ends the data."""

INTEGER_BYTES = {"int2": 2, "int4": 4, "int8": 8}
KINDS = ("int2", "int4", "int8", "float8", "bytes")
"""What a column may be sent as: an integer of that width, a double, or bytes (text in
UTF-8, ``bytea`` as is)."""


@numba.njit(cache=True, nogil=True)
def _render(
    blob: np.ndarray, starts: np.ndarray, lengths: np.ndarray, size: int, head: np.ndarray
) -> np.ndarray:
    """The COPY data: ``head``, then per row its field count and each field's length
    (big-endian; -1: NULL) and bytes (``blob[starts[i, j]:][:lengths[i, j]]``), then the
    trailer. ``size`` is the exact total."""
    rows, fields = starts.shape
    out = np.empty(size, np.uint8)
    out[: len(head)] = head
    p = len(head)
    for i in range(rows):
        out[p] = (fields >> 8) & 255
        out[p + 1] = fields & 255
        p += 2
        for j in range(fields):
            n = lengths[i, j]
            u = np.uint32(n) if n >= 0 else np.uint32(0xFFFFFFFF)
            out[p] = (u >> 24) & 255
            out[p + 1] = (u >> 16) & 255
            out[p + 2] = (u >> 8) & 255
            out[p + 3] = u & 255
            p += 4
            if n > 0:
                s = starts[i, j]
                out[p : p + n] = blob[s : s + n]
                p += n
    out[p] = 255
    out[p + 1] = 255
    return out


def _valid(column: pa.Array) -> np.ndarray:
    """Which values of ``column`` are not NULL."""
    if column.null_count == 0:
        return np.ones(len(column), dtype=bool)
    return column.is_valid().to_numpy(zero_copy_only=False)


def _fixed(column: pa.Array, kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """A number column as big-endian values: (bytes, starts, lengths); None when an
    integer does not fit its column (or a value is not a whole number)."""
    if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
        return None
    valid = _valid(column)
    values = column.fill_null(0).to_numpy(zero_copy_only=False) if len(column) else np.zeros(0)
    if kind == "float8":
        wide = values.astype(">f8")
    else:
        width = INTEGER_BYTES[kind]
        info = np.iinfo(f"i{width}")
        if values.dtype.kind == "f" and not np.array_equal(values, np.round(values)):
            return None
        if len(values) and (values.min() < info.min or values.max() > info.max):
            return None
        wide = values.astype(f">i{width}")
    width = wide.dtype.itemsize
    lengths = np.where(valid, width, -1).astype(np.int32)
    return wide.view(np.uint8), np.arange(len(column), dtype=np.int64) * width, lengths


def _variable(column: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A text or binary column as its Arrow bytes: (bytes, starts, lengths)."""
    kind = column.type
    if not (pa.types.is_large_string(kind) or pa.types.is_large_binary(kind)):
        target = pa.large_binary() if pa.types.is_binary(kind) else pa.large_string()
        column = column.cast(target)
    n = len(column)
    _, offsets_buffer, data_buffer = column.buffers()
    offsets = np.frombuffer(offsets_buffer, np.int64)[column.offset : column.offset + n + 1]
    first, last = (int(offsets[0]), int(offsets[-1])) if n else (0, 0)
    if data_buffer is None or last == first:
        data = np.zeros(0, np.uint8)
    else:  # only this slice's bytes (a slice of a mapped file shares the whole buffer)
        data = np.frombuffer(data_buffer, np.uint8, count=last - first, offset=first)
    lengths = np.where(_valid(column), np.diff(offsets), -1).astype(np.int32)
    return data, offsets[:-1] - first, lengths


def copy_binary(table: pa.Table, kinds: Sequence[str]) -> np.ndarray | None:
    """``table``'s rows in PostgreSQL's binary COPY format (signature to trailer), column
    ``j`` sent as ``kinds[j]`` (:data:`KINDS`); None if a value cannot be sent so."""
    if len(kinds) != table.num_columns or any(k not in KINDS for k in kinds):
        return None
    n = table.num_rows
    blobs, starts, lengths = [], np.empty((n, len(kinds)), np.int64), []
    base = 0
    for j, kind in enumerate(kinds):
        column = table.column(j).combine_chunks()
        if pa.types.is_null(column.type):
            parts = (np.zeros(0, np.uint8), np.zeros(n, np.int64), np.full(n, -1, np.int32))
        elif kind == "bytes":
            if not (pa.types.is_string(column.type) or pa.types.is_binary(column.type)) and not (
                pa.types.is_large_string(column.type) or pa.types.is_large_binary(column.type)
            ):
                return None
            parts = _variable(column)
        else:
            fixed = _fixed(column, kind)
            if fixed is None:
                return None
            parts = fixed
        data, start, length = parts
        blobs.append(data)
        starts[:, j] = start + base
        lengths.append(length)
        base += len(data)
    blob = np.concatenate(blobs) if blobs else np.zeros(0, np.uint8)
    length_matrix = np.stack(lengths, axis=1) if lengths else np.zeros((n, 0), np.int32)
    size = (
        len(SIGNATURE)
        + n * (2 + 4 * len(kinds))
        + int(np.maximum(length_matrix, 0).sum())
        + len(TRAILER)
    )
    head = np.frombuffer(SIGNATURE, np.uint8)
    return _render(blob, starts, length_matrix, size, head)
