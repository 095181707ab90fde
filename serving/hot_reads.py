"""The two hot reads on a SQLite file store without SQLAlchemy: a page of ``GET
/v1/scores`` and ``GET /v1/leads/{id}``, raw SQL on a connection kept per thread, a
page's rows rendered straight from the stored bytes (issue #19, `make bench-api`).

Through the store's reader a page of 100 cost ~2.3 ms of CPU at 1M leads and a lead
~0.44 ms (in-process, same requests): SQLAlchemy's execute and row handling, a dict per
row, every ``packed`` value decompressed, decoded to ``str`` and sliced, each JSON text
then checked and wrapped. Here the statement is the driver's (compiled once by SQLite's
statement cache), the decompressed bytes of an ASCII row go to ``orjson.Fragment`` as
they are, checked by the same JSON decoder as :func:`leadscore.serving.schemas.json_fragment`
(a non-ASCII row is decoded and sliced as :func:`leadscore.serving.store.codec.unpack`
does), and a batch's info is read once: 1.6 ms a page, 0.15 ms a lead. What is left of
a page is the work itself: ~5 us a row to fetch 29 values, ~2-3 to decompress, ~2.5 to
check four JSON texts, ~3 for orjson to write ~2.8 KB.

``FastReads`` (serving/fast_reads.py) calls these in the event loop (``inline``): a read
that needs what takes long (a batch's page index, the schema check, a locked database)
raises :class:`SlowReadError` and is run on a worker thread instead.

The answers are the bytes ``routes.scores_page`` and ``routes.lead_page`` write for the
same request, by construction and by test (tests/serving/test_hot_reads.py on full rows,
tests/serving/test_fast_reads.py through the app). Where those answer anything but 200,
these return None and the route answers, as ever.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy.engine import make_url

from leadscore.serving.config import ApiConfig
from leadscore.serving.lookup import detail_of
from leadscore.serving.routes import _iso, decode_cursor, encode_cursor
from leadscore.serving.schemas import _SKIP_JSON, _V2_REASONS, json_fragment, reasons_fragment
from leadscore.serving.store import ScoreStore, codec
from leadscore.serving.store.page_index import PageIndexes
from leadscore.serving.store.schema import PUBLISHED, SCORE_COLUMNS, SUPERSEDED, BatchInfo

BUSY_INLINE_S = 0.02
"""How long a read in the event loop waits on a locked database before it moves to a
worker thread (WAL readers are not blocked by the writer; this is for the rare lock)."""

_COLUMNS = ", ".join(f"s.{c}" for c in (*SCORE_COLUMNS, "packed"))
# a batch's rows in rank order: its score_ranks walked, each row read by its key
# (store/ranks.py; page_query.py and page_index.py build the same SELECTs)
_RANKED = (
    f"SELECT {_COLUMNS} FROM score_ranks AS r JOIN scores AS s"
    " ON s.batch_id = r.batch_id AND s.lead_id = r.lead_id WHERE r.batch_id = ?"
)
_PLAIN = f"{_RANKED} AND r.rank > ? ORDER BY r.rank, r.lead_id LIMIT ?"
_BY_RANKS = f"{_RANKED} AND r.rank IN (SELECT value FROM json_each(?)) ORDER BY r.rank, r.lead_id"
_CURRENT = "SELECT batch_id FROM current_batch WHERE id = 1"
# store/reader.py's _LEAD_HISTORY: the lead's rows in its newest complete batches
_HISTORY = (
    f"SELECT {', '.join('s.' + c for c in SCORE_COLUMNS)}, s.batch_id, b.status, s.packed "
    "FROM scores AS s JOIN batches AS b ON b.batch_id = s.batch_id "
    "WHERE s.lead_id = ? AND b.status IN ('published', 'superseded') "
    "ORDER BY b.published_at DESC, b.batch_id DESC LIMIT ?"
)
_COMPLETE = (
    "SELECT 1 FROM batches WHERE batch_id = ? AND status IN ("
    + ", ".join(f"'{s}'" for s in (PUBLISHED, SUPERSEDED))
    + ")"
)
_RANK = SCORE_COLUMNS.index("rank")
_V2 = _V2_REASONS.encode()
_KEYS = SCORE_COLUMNS
_HEADER = codec._HEADER


def _fragment(text: bytes) -> Any:
    """:func:`json_fragment` of the text these UTF-8 bytes hold, without decoding them."""
    try:
        _SKIP_JSON.decode(text)
    except Exception:  # msgspec.DecodeError
        return None
    return orjson.Fragment(text)


def _reasons(text: bytes) -> Any:
    """:func:`reasons_fragment` of the text these UTF-8 bytes hold."""
    if text.startswith(_V2):
        fragment = _fragment(text)
        if fragment is not None:
            return fragment
    return reasons_fragment(text.decode("utf-8"))


WARM_CHUNK = 8 << 20
"""Bytes read at a time when the store file is warmed (the buffer is reused)."""


def warm_file(path: str) -> threading.Thread | None:
    """Read the store file once, in a thread, so its pages are in the page cache; nothing
    if it would take over half the free memory.

    The hot reads run in the event loop, so one that waits on the disk stalls every
    request of its process: with the 2 GB store of `make bench-api` evicted from the
    cache, p99 went from ~12 ms to seconds. Reading sequentially (~0.6 GB/s here) takes
    a few seconds once per batch per process; ``posix_fadvise(WILLNEED)`` read less than
    half the file in that time. The reads let go of the GIL.
    """
    try:
        size = os.path.getsize(path)
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return None
    if size > free // 2:
        return None

    def read() -> None:
        buffer = bytearray(WARM_CHUNK)
        with contextlib.suppress(OSError), open(path, "rb", buffering=0) as file:
            while file.readinto(buffer):
                pass

    thread = threading.Thread(target=read, name="warm-store", daemon=True)
    thread.start()
    return thread


class SlowReadError(Exception):
    """Raised by a read called ``inline`` (in the event loop) that must run on a worker
    thread instead: a read through the store's reader (another database), or one that
    needs what takes long to get (a batch's page index: ~2 s at 1M leads; the first
    read's schema check)."""


def _locked_moves(
    read: Callable[..., bytes | None], inline: bool, *args: Any, **kwargs: Any
) -> bytes | None:
    """``read``; in the event loop (``inline``) a locked database raises
    :class:`SlowReadError`, so the read moves to a worker thread."""
    try:
        return read(*args, inline=inline, **kwargs)
    except sqlite3.OperationalError:
        if inline:
            raise SlowReadError from None
        raise


class HotPages:
    """Pages of ``GET /v1/scores`` (filters: grades, an owner; a cursor) as response bytes."""

    def __init__(self, store: ScoreStore, path: str) -> None:
        self.store, self.path = store, path
        self.local = threading.local()
        self.infos: dict[str, tuple[BatchInfo, str | None, str | None]] = {}

    @classmethod
    def of(cls, store: ScoreStore) -> HotPages | None:
        """For a SQLite file store; None for any other (the store's reader answers)."""
        url = make_url(store.config.url)
        if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
            return None
        if url.query:  # driver options (uri, timeout, ...): the store's own connections
            return None
        return cls(store, url.database)

    def _ready(self, inline: bool) -> sqlite3.Connection:
        """This thread's connection, once the store's schema is checked."""
        conn: sqlite3.Connection | None = getattr(self.local, "conn", None)
        if not self.store._schema_ok:
            if inline:
                raise SlowReadError  # the first read checks the schema on a store connection
            self.store._require_schema()
        if conn is None:
            # the event loop's connection waits at most BUSY_INLINE_S on a lock (a locked
            # read then moves to a worker thread, whose connections wait as the store's)
            timeout = BUSY_INLINE_S if inline else 5.0
            conn = sqlite3.connect(
                self.path, timeout, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA query_only=ON")
            self.local.conn = conn
        return conn

    def _info(self, batch_id: str) -> tuple[BatchInfo, str | None, str | None] | None:
        """A complete batch's info, and its as_of and published_at as the page writes them
        (fixed once a batch is complete: cached per process, a few entries)."""
        found = self.infos.get(batch_id)
        if found is None:
            info = self.store._get_batch(batch_id)
            if info is None or info.status not in (PUBLISHED, SUPERSEDED):
                return None
            found = (info, _iso(info.as_of), _iso(info.published_at))
            warm_file(self.path)  # a batch new to this process: its pages may be cold
            if len(self.infos) > 64:
                self.infos.clear()
            self.infos[batch_id] = found
        return found

    def page(self, *args: Any, inline: bool = False, **kwargs: Any) -> bytes | None:
        """:meth:`_page` (:func:`_locked_moves`)."""
        return _locked_moves(self._page, inline, *args, **kwargs)

    def lead(self, *args: Any, inline: bool = False, **kwargs: Any) -> bytes | None:
        """:meth:`_lead` (:func:`_locked_moves`)."""
        return _locked_moves(self._lead, inline, *args, **kwargs)

    def _page(
        self,
        api_config: ApiConfig,
        grade: list[str] | None = None,
        owner: str | None = None,
        cursor: str | None = None,
        limit: int | None = None,
        *,
        inline: bool = False,
    ) -> bytes | None:
        """The JSON ``routes.scores_page`` answers with these parameters, or None where it
        would answer anything but 200 (the route then answers it, as ever). ``inline``:
        raise :class:`SlowReadError` rather than build what is not at hand."""
        if limit is not None and limit > api_config.max_page_size:
            return None
        size = limit or api_config.page_size
        conn = self._ready(inline)
        if cursor is not None:
            pinned, after, baseline = decode_cursor(cursor)  # HTTPException: the route's
            if conn.execute(_COMPLETE, (pinned,)).fetchone() is None:
                return None
            batch_id = pinned
        else:
            after, baseline = 0, None
            row = conn.execute(_CURRENT).fetchone()
            if row is None or row[0] is None:
                return None
            batch_id = row[0]
        info = self._info(batch_id)
        if info is None:
            return None
        grades = list(dict.fromkeys(grade or ()))
        if grades or owner is not None:
            index = self._index(batch_id, inline)
            ranks = index.ranks(after, size + 1, grades, owner)
            rows = conn.execute(_BY_RANKS, (batch_id, orjson.dumps(ranks).decode())).fetchall()
        else:
            rows = conn.execute(_PLAIN, (batch_id, after, size + 1)).fetchall()
        more = len(rows) > size
        rows = rows[:size]
        next_cursor = encode_cursor(batch_id, rows[-1][_RANK], baseline) if more else None
        items = self._items(batch_id, rows)
        batch, scored_at, published_at = info
        return orjson.dumps(
            {
                "batch_id": batch_id,
                "model_version": batch.model_version,
                "scored_at": scored_at,
                "published_at": published_at,
                "items": items,
                "next_cursor": next_cursor,
            }
        )

    def _index(self, batch_id: str, inline: bool) -> Any:
        """The batch's page index (serving/store/page_index.py), shared with the store's
        reader; built on a store connection the first time."""
        indexes: PageIndexes = self.store.__dict__.setdefault("_page_indexes", PageIndexes())
        found = indexes.peek(batch_id)
        if found is None:
            if inline:
                raise SlowReadError  # ~2 s at 1M leads: never in the event loop
            with self.store.engine.connect() as conn:
                found = indexes.get(conn, batch_id)
        return found

    def _decompress(self, batch_id: str, tag: bytes) -> Any:
        """This thread's decompressor of the batch's dictionary (store/codec.py's)."""
        return codec.thread_decompressor(batch_id, tag, self.store.engine.connect).decompress

    def _items(self, batch_id: str, rows: list[Any]) -> list[dict[str, Any]]:
        """The rows as ``scores_page`` writes them: each row's packed texts restored, its
        JSON texts as fragments (one tight loop: this is most of a page's CPU)."""
        items = []
        decompress, tag = None, None
        size, header = _HEADER.size, _HEADER.unpack_from
        for row in rows:
            item = dict(zip(_KEYS, row, strict=False))  # every column but packed (last)
            blob = row[-1]
            if blob is not None:
                if blob[:4] != tag:
                    tag = blob[:4]
                    decompress = self._decompress(batch_id, tag)
                raw = decompress(blob[4:])
                a, b, c = header(raw)
                if a >= 0 and b >= 0 and c >= 0 and a + b + c == len(raw) - size:
                    # as many bytes as characters: ASCII, so the bytes slice as the text would
                    i = size + a
                    j = i + b
                    item["reasons"] = _reasons(raw[size:i])
                    item["rule_reasons"] = _fragment(raw[i:j])
                    item["timeline"] = _fragment(raw[j:])
                else:
                    reasons, rules, timeline = codec.unpack(raw)
                    item["reasons"] = reasons_fragment(reasons)
                    item["rule_reasons"] = json_fragment(rules)
                    item["timeline"] = json_fragment(timeline)
            else:
                item["reasons"] = reasons_fragment(item["reasons"])
                item["rule_reasons"] = json_fragment(item["rule_reasons"])
                item["timeline"] = json_fragment(item["timeline"])
            item["attributes"] = json_fragment(item["attributes"])
            items.append(item)
        return items

    def _restored(self, batch_id: str, row: tuple[Any, ...]) -> dict[str, Any]:
        """A row (packed last) as the store's reader returns it: its packed texts restored."""
        item = dict(zip(_KEYS, row, strict=False))
        blob = row[-1]
        if blob is not None:
            packed = self._decompress(batch_id, blob[:4])(blob[4:])
            item["reasons"], item["rule_reasons"], item["timeline"] = codec.unpack(packed)
        return item

    def _lead(
        self, api_config: ApiConfig, lead_id: str, history: int | None, *, inline: bool = False
    ) -> bytes | None:
        """The JSON ``routes.lead_page`` answers, or None where it would answer anything
        but 200 (the route then answers it, as ever)."""
        if history is not None and history > api_config.history_batches:
            return None
        conn = self._ready(inline)
        found = conn.execute(_HISTORY, (lead_id, history or api_config.history_batches))
        rows = []
        for row in found.fetchall():
            *values, batch_id, status, blob = row
            info = self._info(batch_id)
            if info is None:
                return None  # pruned meanwhile: the route reads it again
            batch = info[0]
            item = self._restored(batch_id, (*values, blob))
            item.update(
                batch_id=batch_id,
                model_version=batch.model_version,
                scored_at=batch.as_of,
                published_at=batch.published_at,
                status=status,
            )
            rows.append(item)
        if not rows:
            return None  # 404: the route's
        current = conn.execute(_CURRENT).fetchone()
        current_info = self._info(current[0]) if current and current[0] else None
        detail = detail_of(lead_id, rows, current_info[0] if current_info else None)
        return detail.__pydantic_serializer__.to_json(detail)
