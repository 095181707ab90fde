"""Text columns assembled from a small table of pieces: the batch's JSON, per lead.

The nightly batch writes several texts per lead (its reasons, its rules' points, its
timeline, its attributes), millions a night, each a concatenation of a few pieces
drawn from few distinct values: a concept's key, a sentence, a number to 4 places, an
activity label, a date. So each distinct piece is formatted once, in Python, into a
:class:`Pieces` table, and each row is given as the codes of its pieces; one compiled
pass (:func:`join_rows`) then copies the bytes, eight at a time (each piece's padded
words stored unaligned, the next piece overwriting the padding), into an Arrow
``large_string`` array: the buffers pandas' ``str`` dtype holds as they are. That
replaces a Python string operation per row (or an Arrow ``take`` per piece and a join
per level, each copying every byte again) with one copy of the output.

The shape is two levels, as JSON needs: a row is ``open + item + sep + item ... +
close``, and an item the concatenation of one piece per column (code -1: none). A
reasons array is ``[`` reasons joined by ``, `` ``]``, a reason's object its pieces; an
attributes object is one item per row.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import Any

import numba
import numpy as np
import pandas as pd
import pyarrow as pa
from llvmlite import ir
from numba import types
from numba.core.typing.templates import Signature
from numba.extending import intrinsic

assert sys.byteorder == "little", "join_rows packs bytes into little-endian words"

TEXT = pd.StringDtype("pyarrow", na_value=np.nan)
"""The frames' text dtype (pandas' default ``str``): Arrow strings, so the arrays
:func:`join_rows` builds are kept as they are, without a Python object per text."""
Column = tuple[np.ndarray, int]
"""One piece per item: ``(codes, first)``, each code (-1: no piece) counted from the
code ``first`` that :meth:`Pieces.add` returned for that column's texts."""


class Pieces:
    """A table of text pieces, each found by its code (its position)."""

    def __init__(self) -> None:
        self._texts: list[str] = []

    def __len__(self) -> int:
        return len(self._texts)

    def add(self, texts: Iterable[str]) -> int:
        """Append ``texts``; return the code of the first (the others follow it)."""
        first = len(self._texts)
        self._texts.extend(texts)
        return first

    def one(self, text: str) -> int:
        """Append one text; return its code."""
        return self.add((text,))

    def words(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The pieces as UTF-8, each zero-padded to whole 8-byte words: the words, each
        piece's first word and each piece's length in bytes."""
        utf8 = pa.array(self._texts, pa.large_string())
        offsets = np.frombuffer(utf8.buffers()[1], dtype=np.int64)[: len(utf8) + 1]
        data = np.frombuffer(utf8.buffers()[2] or b"", dtype=np.uint8)[offsets[0] : offsets[-1]]
        lengths = np.diff(offsets)
        first = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum((lengths + 7) // 8, out=first[1:])
        padded = np.zeros(8 * int(first[-1]), dtype=np.uint8)
        _pad(data, offsets - offsets[0], first, padded)
        return padded.view(np.uint64), first, lengths


@numba.njit(cache=True, nogil=True)
def _pad(data: np.ndarray, offsets: np.ndarray, first: np.ndarray, padded: np.ndarray) -> None:
    """Copy piece ``i`` (``data[offsets[i]:offsets[i + 1]]``) to word ``first[i]`` of
    ``padded`` (zeroed): each piece starts a word, its last word zero-padded."""
    for i in range(len(offsets) - 1):
        at = 8 * first[i]
        for j in range(offsets[i], offsets[i + 1]):
            padded[at] = data[j]
            at += 1


@numba.njit(cache=True, nogil=True)
def _place(column: np.ndarray, start: int, out: np.ndarray) -> None:
    """``out`` (one column of the codes) = ``column + start``, or -1 where ``column`` < 0:
    one pass instead of an add, a compare and a masked store."""
    for i in range(len(column)):
        out[i] = column[i] + start if column[i] >= 0 else -1


@numba.njit(cache=True, nogil=True)
def _sizes(
    codes: np.ndarray, groups: np.ndarray, lengths: np.ndarray, frame: np.ndarray
) -> np.ndarray:
    n = len(groups) - 1
    out = np.zeros(n + 1, dtype=np.int64)
    edge = lengths[frame[0]] + lengths[frame[2]]
    for r in range(n):
        a, b = groups[r], groups[r + 1]
        size = edge + lengths[frame[1]] * max(b - a - 1, 0)
        for e in range(a, b):
            for k in range(codes.shape[1]):
                if codes[e, k] >= 0:
                    size += lengths[codes[e, k]]
        out[r + 1] = out[r] + size
    return out


@intrinsic
def _store_word(typingctx: object, buffer: types.Type, at: types.Type, word: types.Type) -> tuple:
    """Store the 8 bytes of ``word`` (uint64, little-endian) at byte ``at`` of ``buffer``
    (a uint8 array), unaligned: one store instead of a shift and a merge per word. The
    caller keeps ``at + 8`` within the buffer (numba does not check)."""
    if not (
        isinstance(buffer, types.Array)
        and buffer.dtype == types.uint8
        and at == types.int64
        and word == types.uint64
    ):
        return None  # type: ignore[return-value]

    def codegen(context: Any, builder: ir.IRBuilder, sig: Signature, args: tuple) -> Any:
        array = context.make_array(sig.args[0])(context, builder, args[0])
        place = builder.gep(array.data, [args[1]])
        builder.store(args[2], builder.bitcast(place, ir.IntType(64).as_pointer()), align=1)
        return context.get_dummy_value()

    return types.void(buffer, at, word), codegen


@numba.njit(cache=True, nogil=True, inline="always")
def _put(
    words: np.ndarray, first: np.ndarray, lengths: np.ndarray, code: int, out: np.ndarray, pos: int
) -> int:
    """Write piece ``code`` at byte ``pos`` of ``out``, whole padded words (up to 7 bytes
    of zeros past its end, which the next piece overwrites); return where it ends."""
    i = first[code]
    end = pos + lengths[code]
    while pos < end:
        _store_word(out, pos, words[i])
        pos += 8
        i += 1
    return end


@numba.njit(cache=True, nogil=True)
def _fill(
    codes: np.ndarray,
    groups: np.ndarray,
    words: np.ndarray,
    first: np.ndarray,
    lengths: np.ndarray,
    frame: np.ndarray,
    out: np.ndarray,
) -> None:
    """Write every row's text into ``out`` (bytes, 8 to spare past the last row's end)."""
    pos = 0
    for r in range(len(groups) - 1):
        pos = _put(words, first, lengths, frame[0], out, pos)
        for e in range(groups[r], groups[r + 1]):
            if e > groups[r]:
                pos = _put(words, first, lengths, frame[1], out, pos)
            for k in range(codes.shape[1]):
                code = codes[e, k]
                if code >= 0:
                    pos = _put(words, first, lengths, code, out, pos)
        pos = _put(words, first, lengths, frame[2], out, pos)


def by_row(rows: np.ndarray, keys: np.ndarray, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Items given as their row (``rows``, each < ``n_rows``) and a key (distinct within a
    row) put in row order, each row's by key: ``(groups, keys)``, the rows' offsets
    (:func:`join_rows`' ``groups``) and the keys so ordered. The same as sorting
    ``rows * K + keys``, by a count of each row's items and a few swaps per row."""
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    keys = np.ascontiguousarray(keys, dtype=np.int64)
    groups = np.zeros(n_rows + 1, dtype=np.int64)
    out = np.empty(len(keys), dtype=np.int64)
    _by_row(rows, keys, groups, out)
    return groups, out


@numba.njit(cache=True, nogil=True)
def _by_row(rows: np.ndarray, keys: np.ndarray, groups: np.ndarray, out: np.ndarray) -> None:
    for i in range(len(rows)):
        groups[rows[i] + 1] += 1
    for r in range(len(groups) - 1):
        groups[r + 1] += groups[r]
    filled = groups[:-1].copy()
    for i in range(len(rows)):
        out[filled[rows[i]]] = keys[i]
        filled[rows[i]] += 1
    for r in range(len(groups) - 1):  # a row's few keys by insertion
        for j in range(groups[r] + 1, groups[r + 1]):
            key, at = out[j], j
            while at > groups[r] and out[at - 1] > key:
                out[at] = out[at - 1]
                at -= 1
            out[at] = key


def join_rows(
    pieces: Pieces,
    columns: Sequence[Column],
    groups: np.ndarray | None = None,
    open_: str = "",
    sep: str = "",
    close: str = "",
) -> pa.LargeStringArray:
    """One text per row: ``open_``, its items joined by ``sep``, ``close``.

    Item ``i`` is the concatenation of each column's piece ``i`` (``columns``: the same
    length each). ``groups`` (rows + 1 offsets) says which items make row ``r``:
    ``groups[r]`` to ``groups[r + 1]``; None: one item per row.
    """
    items = len(columns[0][0]) if columns else 0
    # an item's codes side by side (row-major): the fill reads them in that order
    codes = np.empty((items, len(columns)), dtype=np.int32)
    for k, (column, start) in enumerate(columns):
        _place(np.asarray(column), start, codes[:, k])
    if groups is None:
        groups = np.arange(items + 1, dtype=np.int64)
    groups = np.ascontiguousarray(groups, dtype=np.int64)
    frame = np.array([pieces.one(open_), pieces.one(sep), pieces.one(close)], dtype=np.int64)
    words, first, lengths = pieces.words()
    sizes = _sizes(codes, groups, lengths, frame)
    size = int(sizes[-1])
    whole = (size + 7) // 8 * 8  # the data buffer: whole words, zeros after the text
    out = np.empty(whole + 8, dtype=np.uint8)
    _fill(codes, groups, words, first, lengths, frame, out)
    out[size:] = 0
    n = len(groups) - 1
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(sizes), pa.py_buffer(out[:whole]))


def labelled(codes: np.ndarray, names: Sequence[str | None]) -> pd.api.extensions.ExtensionArray:
    """``names[code]`` of each code (a negative code or a None name: null), as the frames'
    :data:`TEXT`, by one Arrow ``take``: a column drawn from a few labels (a grade, a
    quadrant cell) without a Python string per row."""
    codes = np.asarray(codes, dtype=np.int32)
    labels = pa.array(list(names), pa.string())
    taken = labels.take(pa.array(codes, mask=codes < 0))
    return pd.array(taken, dtype=TEXT)
