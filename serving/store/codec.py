"""The stored form of a score row's three large JSON columns (schema 8): one zstd blob.

``reasons``, ``rule_reasons`` and ``timeline`` were ~1.8 KB of the 2.2 KB ``scores`` row,
written for every lead every night. Since schema 8 a new row stores them NULL and keeps
them in ``packed``: a 4-byte tag (the CRC-32 of the batch's dictionary, little-endian),
then one zstd frame of a 12-byte header (each column's UTF-8 length, little-endian int32,
-1 for NULL) and the three texts back to back. The frame is compressed with a dictionary
trained once per batch on its first chunk (``codecs`` table, one row per batch, deleted
with it), which is what makes ~1.8 KB of JSON shrink to ~0.25 KB: JSON this repetitive
compresses 2.7x alone and 7x with a dictionary (measured on the bench's rows).

Readers restore the exact stored text (:func:`restore`), so the API's ``orjson.Fragment``
path, the page, the exports and the CSV see the same strings as before, by construction.
Rows written before schema 8 have ``packed`` NULL and their columns as they were: both
forms read the same. Decompressing a row costs ~2 us.
"""

from __future__ import annotations

import struct
import threading
import zlib
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import zstandard as zstd
from sqlalchemy import Connection, select

from leadscore.serving.store.schema import codecs_table

PACKED_COLUMNS: tuple[str, ...] = ("reasons", "rule_reasons", "timeline")
"""The score-row columns a schema-8 row keeps in ``packed`` (NULL in their own column)."""

PACKED = "packed"
"""The ``scores`` column holding a row's :data:`PACKED_COLUMNS` (LargeBinary, nullable)."""

DICTIONARY_BYTES = 16_384
"""Size of a batch's trained dictionary: 64 KiB and 110 KiB measured no smaller rows."""

LEVEL = 1
"""zstd level: 3 is 3% smaller and 15% slower on these rows, 6 is 13% smaller and 4x slower."""

TRAIN_ROWS = 1_000
"""At most this many rows of the first chunk train the batch's dictionary (0.16 s; 4,000
rows took 0.56 s for the same compressed size)."""

METADATA_KEY = b"leadscore.codec"
"""Key of the batch dictionary in a chunk table's schema metadata (:func:`save_dictionary`)."""

_HEADER = struct.Struct("<3i")
_TAG = struct.Struct("<I")


# ------------------------------------------------------------------ writing


def pack(columns: Sequence[pa.Array | pa.ChunkedArray]) -> pa.Array:
    """Each row's :data:`PACKED_COLUMNS` texts as one uncompressed value: the 12-byte
    header of lengths in characters (-1 for NULL, :func:`_char_lengths`), then the three
    texts' UTF-8 bytes, so a reader decodes them once and slices (:func:`unpack`). In
    Arrow's C++ and numpy."""
    strings = [pc.cast(c, pa.large_string()) for c in columns]
    n = len(strings[0])
    lengths = np.empty((n, len(strings)), dtype="<i4")
    for i, column in enumerate(strings):
        lengths[:, i] = _char_lengths(column)
    texts = [pc.cast(c, pa.large_binary()) for c in strings]
    header = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(_HEADER.size), n, [None, pa.py_buffer(lengths.tobytes())]
    ).cast(pa.large_binary())
    joined = pc.binary_join_element_wise(
        header,
        *texts,
        pa.scalar(b"", pa.large_binary()),
        null_handling="replace",
        null_replacement=b"",
    )
    return joined.combine_chunks() if isinstance(joined, pa.ChunkedArray) else joined


def _char_lengths(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Each large string's length in characters, -1 for NULL: its length in bytes (its
    offsets) when every byte of the column is ASCII, which one numpy pass over them tells
    (0.06 us a row for the three columns, where counting characters took 0.37: measured
    on the bench's rows), else counted by Arrow."""
    if isinstance(column, pa.Array) and len(column):
        at = column.offset
        offsets = np.frombuffer(column.buffers()[1], dtype=np.int64)[at : at + len(column) + 1]
        data = np.frombuffer(column.buffers()[2] or b"", dtype=np.uint8)
        text = data[offsets[0] : offsets[-1]]
        if not len(text) or int(text.max()) < 0x80:
            sizes = np.diff(offsets)
            if column.null_count:
                sizes[column.is_null().to_numpy(zero_copy_only=False)] = -1
            return sizes
    return pc.utf8_length(column).fill_null(-1).to_numpy(zero_copy_only=False)


def train(packed: pa.Array) -> bytes:
    """A dictionary for a batch, trained on (at most :data:`TRAIN_ROWS` of) its first
    chunk's packed values; too few rows to train on give a raw-content dictionary (the
    first rows themselves), none give b"" (no dictionary)."""
    values = packed.to_pylist()
    if not values:
        return b""
    step = max(1, len(values) // TRAIN_ROWS)
    sample = values[::step][:TRAIN_ROWS]
    if len(sample) >= 256:
        try:
            return zstd.train_dictionary(DICTIONARY_BYTES, sample, level=LEVEL).as_bytes()
        except zstd.ZstdError:  # samples too alike or too small: raw content below
            pass
    return b"".join(sample)[-DICTIONARY_BYTES:]


def tag_of(dictionary: bytes) -> bytes:
    """The 4-byte tag every value compressed with ``dictionary`` starts with."""
    return _TAG.pack(zlib.crc32(dictionary))


def _dict(dictionary: bytes) -> zstd.ZstdCompressionDict | None:
    if not dictionary:
        return None
    return zstd.ZstdCompressionDict(dictionary)  # trained, or raw content (train())


def compress(packed: pa.Array, dictionary: bytes) -> pa.Array:
    """The packed values compressed with the batch's ``dictionary``, each prefixed with
    its tag; in zstd's C code on two threads, without the GIL."""
    if not len(packed):
        return pa.array([], pa.binary())
    offsets = np.frombuffer(packed.buffers()[1], dtype=np.int64)[
        packed.offset : packed.offset + len(packed) + 1
    ]
    segments = np.empty((len(packed), 2), dtype=np.uint64)
    segments[:, 0] = offsets[:-1]
    segments[:, 1] = np.diff(offsets)
    data = zstd.BufferWithSegments(packed.buffers()[2], segments.tobytes())
    compressor = zstd.ZstdCompressor(
        level=LEVEL, dict_data=_dict(dictionary), write_checksum=False, write_dict_id=False
    )
    frames = compressor.multi_compress_to_buffer(data, threads=2)
    # one join of the frames, not a bytes object a row made with the GIL held
    parts = [frames[i] for i in range(len(frames))]
    sizes = np.fromiter(map(len, parts), dtype=np.int64, count=len(parts))
    offsets = np.zeros(len(parts) + 1, dtype=np.int32)
    np.cumsum(sizes, out=offsets[1:])
    blob = pa.py_buffer(b"".join(parts))
    bare = pa.Array.from_buffers(pa.binary(), len(parts), [None, pa.py_buffer(offsets), blob])
    return pc.binary_join_element_wise(
        pa.scalar(tag_of(dictionary), pa.binary()), bare, pa.scalar(b"", pa.binary())
    )


# Dictionaries of the batches being written in this process, newest last.
_WRITING: dict[str, bytes] = {}


def packed_column(columns: Sequence[pa.Array | pa.ChunkedArray], batch_id: str) -> pa.Array:
    """A chunk's :data:`PACKED_COLUMNS` as its ``packed`` column: the first chunk of a
    batch trains the batch's dictionary (kept here while the batch is written)."""
    packed = pack(columns)
    dictionary = _WRITING.get(batch_id)
    if dictionary is None:
        dictionary = train(packed)
        _WRITING[batch_id] = dictionary
        while len(_WRITING) > 8:
            del _WRITING[next(iter(_WRITING))]
    return compress(packed, dictionary)


def batch_dictionary(batch_id: str) -> bytes:
    """The dictionary this process compresses ``batch_id``'s rows with."""
    return _WRITING[batch_id]


def save_dictionary(conn: Connection, table: pa.Table) -> None:
    """Record the dictionary of a chunk table (its schema metadata, :func:`chunk table
    <leadscore.serving.store.bulk.chunk_table>`) in ``codecs`` if the batch has none
    yet, in the caller's transaction; refuses a batch already recorded with another."""
    metadata = table.schema.metadata or {}
    if METADATA_KEY not in metadata or not table.num_rows:
        return
    dictionary = metadata[METADATA_KEY]
    batch_id = table.column("batch_id")[0].as_py()
    tag = tag_of(dictionary)
    known = conn.execute(
        select(codecs_table.c.tag).where(codecs_table.c.batch_id == batch_id)
    ).scalar()
    if known is None:
        conn.execute(
            codecs_table.insert().values(batch_id=batch_id, tag=tag, dictionary=dictionary)
        )
    elif bytes(known) != tag:
        raise RuntimeError(f"batch {batch_id!r} already has another codec dictionary")


def copy_text(table: pa.Table) -> pa.Table:
    """``table`` with its ``packed`` column as PostgreSQL's bytea text (``\\x`` + hex),
    which COPY's CSV format reads; the other columns untouched."""
    if PACKED not in table.column_names:
        return table
    values = table.column(PACKED).to_pylist()
    text = pa.array([None if v is None else "\\x" + v.hex() for v in values], pa.string())
    return table.set_column(table.column_names.index(PACKED), PACKED, text)


# ------------------------------------------------------------------ reading

_DICTIONARIES: dict[tuple[str, bytes], zstd.ZstdCompressionDict | None] = {}
_LOCAL = threading.local()


def _decompressor(conn: Connection, batch_id: str, tag: bytes) -> zstd.ZstdDecompressor:
    """This thread's decompressor for the batch's dictionary (read once per process)."""
    key = (batch_id, tag)
    mine: dict[tuple[str, bytes], zstd.ZstdDecompressor] = _LOCAL.__dict__.setdefault("d", {})
    found = mine.get(key)
    if found is not None:
        return found
    if key not in _DICTIONARIES:
        stored = conn.execute(
            select(codecs_table.c.dictionary, codecs_table.c.tag).where(
                codecs_table.c.batch_id == batch_id
            )
        ).first()
        if stored is None or bytes(stored.tag) != tag:
            raise LookupError(f"no codec dictionary for batch {batch_id!r} in the store")
        if len(_DICTIONARIES) > 256:
            _DICTIONARIES.clear()
        _DICTIONARIES[key] = _dict(bytes(stored.dictionary))
    dictionary = _DICTIONARIES[key]
    found = zstd.ZstdDecompressor(dict_data=dictionary) if dictionary else zstd.ZstdDecompressor()
    if len(mine) > 64:
        mine.clear()
    mine[key] = found
    return found


def thread_decompressor(
    batch_id: str, tag: bytes, connect: Callable[[], AbstractContextManager[Connection]]
) -> zstd.ZstdDecompressor:
    """:func:`_decompressor`, a store connection opened (``connect``) only when this thread
    has none for the batch yet: the hot reads decompress every page, most with one at hand."""
    found = _LOCAL.__dict__.get("d", {}).get((batch_id, tag))
    if found is None:
        with connect() as conn:
            found = _decompressor(conn, batch_id, tag)
    return found


def unpack(raw: bytes) -> tuple[str | None, str | None, str | None]:
    """The three texts of a decompressed packed value (decoded once, then sliced)."""
    a, b, c = _HEADER.unpack_from(raw)
    body = raw[_HEADER.size :].decode("utf-8")
    if a >= 0 and b >= 0 and c >= 0:  # the usual row: no NULL
        return body[:a], body[a : a + b], body[a + b :]
    i = a if a > 0 else 0
    j = i + (b if b > 0 else 0)
    return (
        body[:i] if a >= 0 else None,
        body[i:j] if b >= 0 else None,
        body[j : j + c] if c >= 0 else None,
    )


def decode(blob: bytes, dictionary: bytes) -> tuple[str | None, ...]:
    """A ``packed`` value back as its texts, given its batch's ``dictionary``."""
    dictionary_data = _dict(dictionary)
    plain = zstd.ZstdDecompressor(dict_data=dictionary_data) if dictionary_data else None
    return unpack((plain or zstd.ZstdDecompressor()).decompress(bytes(blob)[4:]))


class _Texts:
    """Packed values back as texts on one connection, the decompressor of the last
    (batch, dictionary) kept at hand: a page's rows all share it."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.key: tuple[str, bytes] | None = None
        self.decompress: Any = None

    def __call__(self, batch_id: str, blob: bytes) -> tuple[str | None, ...]:
        tag = blob[:4]
        if self.key != (batch_id, tag):
            self.decompress = _decompressor(self.conn, batch_id, tag).decompress
            self.key = (batch_id, tag)
        return unpack(self.decompress(blob[4:]))


def texts(conn: Connection, batch_id: str, blob: bytes) -> tuple[str | None, ...]:
    """A stored ``packed`` value back as its :data:`PACKED_COLUMNS` texts."""
    return _Texts(conn)(batch_id, bytes(blob))


def restore_tuples(
    conn: Connection, rows: Sequence[Any], positions: Sequence[int | None], batch_id: Any
) -> list[Any]:
    """Rows as tuples whose last value is ``packed``: each without it, with the
    :data:`PACKED_COLUMNS` it holds at ``positions`` (None: not selected) restored.
    ``batch_id``: the rows' batch, or (an int) the place of each row's batch_id."""
    out: list[Any] = []
    read = _Texts(conn)
    for row in rows:
        blob = row[-1]
        values = tuple(row)[:-1]
        if blob is not None:
            batch = row[batch_id] if isinstance(batch_id, int) else batch_id
            restored = list(values)
            for at, value in zip(positions, read(batch, bytes(blob)), strict=True):
                if at is not None:
                    restored[at] = value
            values = tuple(restored)
        out.append(values)
    return out


def restore(conn: Connection, rows: Iterable[dict[str, Any]], batch_id: str | None = None) -> None:
    """Put each row's :data:`PACKED_COLUMNS` back from its ``packed`` value (if any) and
    drop ``packed``, in place: rows then read as they did before schema 8 (a column the
    row was not read with stays absent). ``batch_id`` None: each row's own ``batch_id``."""
    read = _Texts(conn)
    for row in rows:
        blob = row.pop(PACKED, None)
        if blob is None:
            continue
        batch = batch_id if batch_id is not None else row["batch_id"]
        reasons, rule_reasons, timeline = read(batch, bytes(blob))
        if "timeline" in row:  # the score row's reads (page, API, lead history)
            row["reasons"], row["rule_reasons"], row["timeline"] = reasons, rule_reasons, timeline
        else:  # reads of fewer columns (call lists: the reasons only)
            for name, value in zip(PACKED_COLUMNS, (reasons, rule_reasons, timeline), strict=True):
                if name in row:
                    row[name] = value
