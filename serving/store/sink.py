"""Where a publish's chunks go: writer threads beside the thread that prepares them.

The publishing thread reads, checks and converts each chunk (pandas, Arrow: ``bulk.py``);
the database then spends as long again storing it (PostgreSQL's backend parsing the COPY
data, inserting heap and index tuples; SQLite's B-tree inserts). Done one after the
other, each waits for the other. :class:`ChunkSink` hands each converted chunk to
writer threads instead, each with its own connection, so the next chunk is prepared
while the last is stored:

* **PostgreSQL**: :data:`COPY_STREAMS` threads, each a COPY stream on its own
  connection (so two server backends work at once, one per core), each chunk its own
  transaction as before.
* **SQLite**: the calling thread itself (``threads=0``): one writer at a time in SQLite,
  and a writer thread measured no faster (the driver binds each value holding the GIL);
  its transactions span :data:`SQLITE_TRANSACTION_ROWS` rows instead. Past
  :data:`SQLITE_PROCESS_ROWS` rows of a file store, the chunks go to a writer process
  (``store/sqlite_proc.py``: its own interpreter, so its binding and inserts overlap the
  next chunk's preparation here).

At most ``threads + 1`` chunks are held (being written, or queued), so memory stays
bounded: the prepared next slice and the chunks in flight are what the threads add (the
250k PostgreSQL bench peaks ~130 MB above the one-thread write). The first error of a
writer is raised in the publishing thread (at its next :meth:`ChunkSink.put`, or when
the sink closes); leaving the sink on an error waits for the writers to stop before the
caller abandons the batch, so no chunk of a failed batch is committed after its rows are deleted.
"""

from __future__ import annotations

import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from types import TracebackType

import pyarrow as pa
from sqlalchemy import Connection, insert
from sqlalchemy.exc import DBAPIError

from leadscore.serving.store.base import StoreBase, sqlite_file
from leadscore.serving.store.bulk import (
    SQLITE_CACHE_KIB,
    SQLITE_COLUMNS,
    copy_kinds,
    copy_postgresql,
    insert_sqlite,
    sqlite_table,
)
from leadscore.serving.store.codec import save_dictionary
from leadscore.serving.store.partitions import attach_batch_table, batch_table, is_partitioned
from leadscore.serving.store.schema import scores_table
from leadscore.serving.store.sqlite_proc import WriterProcess

COPY_STREAMS = 2
"""COPY streams (connections) of a PostgreSQL publish: one per core of this machine."""

SQLITE_TRANSACTION_ROWS = 50_000
"""Rows of a SQLite publish per transaction (chunks of ``store.chunk_rows`` are inserted
until then). Each commit writes every page it changed to the WAL; until schema 11 the
(batch, rank) index was filled in random order, and a commit every 5,000 rows rewrote
most of it each time (issue #19: 2M leads took 2.6x 1M). The write lock is held about a
second at a time."""

SQLITE_PROCESS_ROWS = 25_000
"""Rows of a SQLite publish (to a file) from which its chunks go to a writer process
(``store/sqlite_proc.py``), so that they are inserted while the next ones are prepared:
from the first chunk when the first partition has that many rows, else from the first
commit past them (starting it costs ~0.15 s of CPU, which a small publish would not win
back). The nightly run's partitions arrive in slices of 25,000 rows
(``pipelines.spilled.PUBLISH_SLICE_ROWS``): at 50,000 its first two slices were inserted
by the publishing process, beside the second pass, instead of by the writer process."""

_STOP = None
_CODECS = threading.Lock()
"""Held while a COPY stream records its batch's codec dictionary, so that two streams do
not both find none and both insert it."""


class ChunkSink:
    """Write chunks (``bulk.chunk_table``) with ``write`` in ``threads`` threads (0: in
    the calling thread, e.g. for an in-memory SQLite database, one per thread)."""

    def __init__(
        self,
        write: Callable[[pa.Table], None],
        threads: int,
        end: Callable[[bool], None] = lambda ok: None,
    ) -> None:
        self._write = write
        self._end = end
        self._queue: queue.Queue[pa.Table | None] = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, name=f"publish-{i}", daemon=True)
            for i in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def _run(self) -> None:
        while (table := self._queue.get()) is not _STOP:
            if self._error is not None:  # stopping: drop what is still queued
                continue
            self._guarded(self._write, table)
        self._guarded(self._end, self._error is None)

    def _guarded(self, call: Callable[..., None], argument: object) -> None:
        """``call(argument)``; its error is kept for the publishing thread."""
        try:
            call(argument)
        except BaseException as exc:  # raised in the publishing thread
            with self._lock:
                self._error = self._error or exc

    def put(self, table: pa.Table) -> None:
        """Queue a chunk (waits while the writers are busy); raise a writer's error."""
        self._raise()
        if self._threads:
            self._queue.put(table)
        else:
            self._write(table)

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        """Wait until every queued chunk is written; raise the first writer error."""
        for _ in self._threads:
            self._queue.put(_STOP)
        for thread in self._threads:
            thread.join()
        if not self._threads:
            self._guarded(self._end, self._error is None)
        self._raise()

    def __enter__(self) -> ChunkSink:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if error is None:
            self.close()
            return
        with self._lock:  # the caller's error wins: drop the rest, wait for the writers
            self._error = self._error or error
        with contextlib.suppress(BaseException):  # the caller's error propagates instead
            self.close()


class ChunkWriter(StoreBase):
    """The store's chunk writing: a publish's rows, through its database's bulk path."""

    _open: tuple[Connection, list[int]] | None = None  # SQLite: the transaction, its rows
    _kinds: tuple[str, ...] = ()  # PostgreSQL: how binary COPY sends each column
    _proc: WriterProcess | None = None  # SQLite: the writer process, once started
    _rows = 0  # SQLite: rows of this publish sent so far
    _early = False  # SQLite: this publish starts its writer process with its first chunk

    def _sink(self, rows_hint: int = 0) -> ChunkSink:
        """Where a publish's chunks go: COPY streams in threads on PostgreSQL; SQLite's in
        the calling thread (a writer thread measured no faster: binding each value holds
        the GIL, and an in-memory database is one per thread), or in a writer process
        from the first chunk if ``rows_hint`` (the rows of the publish's first partition)
        reaches :data:`SQLITE_PROCESS_ROWS`, else once that many rows are written."""
        if self.engine.dialect.name == "postgresql":
            with self.engine.connect() as conn:
                self._kinds = copy_kinds(conn)
            return ChunkSink(self._insert_chunk, COPY_STREAMS)
        self._rows = 0
        self._early = rows_hint >= SQLITE_PROCESS_ROWS
        return ChunkSink(self._insert_chunk, 0, self._end_chunks)

    def _insert_chunk(self, rows: pa.Table) -> None:
        """Insert one chunk of score rows (``bulk.chunk_table``) through the database's
        bulk path: on PostgreSQL in its own transaction; on SQLite in the open one, which
        commits every :data:`SQLITE_TRANSACTION_ROWS` rows (and at the end)."""
        if not len(rows):  # an empty executemany would become "INSERT ... DEFAULT VALUES"
            return
        if self.engine.dialect.name == "postgresql":
            with _CODECS, self.engine.begin() as conn:  # once per batch, whichever stream
                save_dictionary(conn, rows)
            target = scores_table.name
            if self._batch_tables():  # schema 10: the batch's own table
                target = batch_table(rows.column("batch_id")[0].as_py())
            with self.engine.begin() as conn:
                copy_postgresql(conn, rows, self._kinds, target)
            return
        if self._proc is None and not self._rows and self._early:
            self._proc = self._start_process()
        if self._proc is not None:
            if not self._rows:  # the batch's codec dictionary, before its first rows
                with self.engine.begin() as conn:
                    save_dictionary(conn, rows)
            self._rows += len(rows)
            self._driver_errors(self._proc.put, sqlite_table(rows))
            return
        if self._open is None:
            conn = self.engine.connect()
            conn.begin()
            self._open = (conn, [0])
        conn, written = self._open
        save_dictionary(conn, rows)  # the batch's codec dictionary, once (store/codec.py)
        insert_sqlite(conn, self._insert_sql(), rows)
        written[0] += len(rows)
        self._rows += len(rows)
        if written[0] >= SQLITE_TRANSACTION_ROWS:
            self._end_chunks(True)
            if self._rows >= SQLITE_PROCESS_ROWS:
                self._proc = self._start_process()

    def _batch_tables(self) -> bool:
        """Whether this store writes each batch into a table of its own, attached once
        written (PostgreSQL, schema 10: ``store/partitions.py``); looked up once."""
        known: bool | None = self.__dict__.get("_partitioned")
        if known is None:
            with self.engine.connect() as conn:
                known = self.__dict__["_partitioned"] = is_partitioned(conn)
        return known

    def _attach_rows(self, batch_id: str) -> None:
        """Once every row of a batch is written: index its own table and attach it
        (:meth:`_batch_tables`; nothing to do otherwise)."""
        if self._batch_tables():
            attach_batch_table(self.engine, batch_id)

    def _start_process(self) -> WriterProcess | None:
        """The writer process of the rest of a SQLite publish, its connection set up as
        the publishing one (``store/base.py``, :func:`bulk.insert_sqlite`); None for a
        database that is not a file (in memory: one per connection)."""
        database = sqlite_file(self.config.url)
        if database is None:
            return None
        pragmas = {
            "foreign_keys": 1,
            "synchronous": 1,  # NORMAL, as store/base.py
            "wal_autocheckpoint": self.config.sqlite_checkpoint_pages,
            "cache_size": -SQLITE_CACHE_KIB,
        }
        return WriterProcess(str(database), scores_table.name, SQLITE_TRANSACTION_ROWS, pragmas)

    def _driver_errors(self, call: Callable[..., None], *args: object) -> None:
        """``call(*args)``; a SQLite error of the writer process is raised as SQLAlchemy
        raises the driver's (an ``IntegrityError`` for a duplicate lead, as in-process)."""
        try:
            call(*args)
        except sqlite3.Error as exc:
            raise DBAPIError.instance(self._insert_sql(), None, exc, sqlite3.Error) from exc

    def _end_chunks(self, ok: bool) -> None:
        """Commit (``ok``) or roll back the open SQLite transaction of a publish (the
        writer process's: it commits and exits, or is killed)."""
        if self._proc is not None:
            proc, self._proc = self._proc, None
            if ok:
                self._driver_errors(proc.close)
            else:
                proc.kill()
            return
        if self._open is None:
            return
        conn, _ = self._open
        self._open = None
        try:
            if ok:
                conn.commit()
            else:
                conn.rollback()
        finally:
            conn.close()

    def _insert_sql(self) -> str:
        """The driver-level (qmark) INSERT of a score row's :data:`SQLITE_COLUMNS`, for
        SQLite's ``executemany``: SQLAlchemy's per-row parameter processing costs more
        than SQLite's own insert."""
        if self._insert is None:
            dialect = self.engine.dialect
            compiled = insert(scores_table).compile(dialect=dialect, column_keys=SQLITE_COLUMNS)
            if tuple(compiled.positiontup or ()) != SQLITE_COLUMNS:
                raise RuntimeError(f"unexpected INSERT parameter order {compiled.positiontup}")
            self._insert = str(compiled)
        return self._insert
