"""Byte-level text checks: whether a whole Arrow-backed text column is free of the cell
faults ``features.hygiene.cell_faults`` looks for, or needs no trimming, in a few passes
over its buffers instead of a regex or a strip per cell (the nightly pass checks tens of
millions of cells; nearly every column is clean). A True is certain; a False only sends
the column to the cell-by-cell check. Pinned equal to it by
``tests/features/test_expectations.py``.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa

_CONTROL_BYTES = np.zeros(256, dtype=bool)
_CONTROL_BYTES[[*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F]] = True


def clean_cells(values: pd.Series, max_chars: int) -> bool:
    """True when :func:`cell_faults` would find nothing, known without a look at each cell:
    a column that is not text, or text whose bytes say so (:func:`clean_text`)."""
    if not (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)):
        return True
    return clean_text(values, max_chars)


def _text_chunks(values: pd.Series) -> list[pa.Array] | None:
    """An Arrow-backed text column's chunks (zero-copy); None for any other column."""
    if not isinstance(values.dtype, pd.StringDtype) or values.dtype.storage != "pyarrow":
        return None
    chunks = pa.chunked_array(pa.array(values.array)).chunks
    if all(pa.types.is_string(c.type) or pa.types.is_large_string(c.type) for c in chunks):
        return chunks
    return None


def _bytes(chunk: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """A text chunk's offsets (from 0, int64) and its UTF-8 bytes (views where they can be)."""
    width = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
    buffers = chunk.buffers()
    offsets = np.frombuffer(buffers[1], dtype=width)[chunk.offset : chunk.offset + len(chunk) + 1]
    data = (
        np.frombuffer(buffers[2], dtype=np.uint8)
        if buffers[2] is not None
        else np.zeros(0, np.uint8)
    )
    first, last = int(offsets[0]), int(offsets[-1])
    if first or width is not np.int64:
        offsets = (offsets - first).astype(np.int64)
    return offsets, data[first:last]


def _text_bytes(values: pd.Series) -> Iterator[tuple[pa.Array, np.ndarray, np.ndarray]] | None:
    """Each non-empty Arrow chunk of a text column with its offsets and UTF-8 bytes
    (:func:`_bytes`), one at a time; None when the column is not Arrow-backed text."""
    chunks = _text_chunks(values)
    if chunks is None:
        return None
    return ((chunk, *_bytes(chunk)) for chunk in chunks if len(chunk))


def trimmed(values: pd.Series) -> bool:
    """True when an Arrow-backed text column has no empty value and none that starts or
    ends with a blank (or any byte that is not printable ASCII: Unicode blanks are left to
    ``str.strip``), so stripping it and blanking empty values would change nothing."""
    parts = _text_bytes(values)
    if parts is None:
        return False
    for chunk, offsets, data in parts:
        empty = np.diff(offsets) == 0
        if chunk.null_count == 0:  # the usual column: no mask to apply
            if empty.any():
                return False
            starts, ends = offsets[:-1], offsets[1:] - 1
        else:
            valid = ~np.asarray(chunk.is_null().to_numpy(zero_copy_only=False), dtype=bool)
            if (valid & empty).any():
                return False
            starts, ends = offsets[:-1][valid], offsets[1:][valid] - 1
        for edge in (data[starts], data[ends]):
            if ((edge <= 0x20) | (edge >= 0x7F)).any():
                return False
    return True


def clean_text(values: pd.Series, max_chars: int) -> bool:
    """True when no cell of an Arrow-backed text column can be at fault: its UTF-8 bytes
    hold no control character and no value has more bytes than ``max_chars`` (a character
    is at least one byte). One pass over the column's buffers instead of a regex per cell;
    False (check cell by cell) for any other column or any doubt."""
    parts = _text_bytes(values)
    if parts is None:
        return False
    for _, offsets, data in parts:
        if np.diff(offsets).max() > max_chars:
            return False
        if not len(data) or (data.min() >= 0x20 and data.max() < 0x7F):
            continue  # printable ASCII only: two reductions, no mask
        low = data < 0x20
        if (data == 0x7F).any() or (low.any() and _CONTROL_BYTES[data[low]].any()):
            return False
    return True
