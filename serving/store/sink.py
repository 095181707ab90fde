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
* **SQLite**: one thread (one writer at a time in SQLite); the driver lets go of the
  GIL while SQLite works.

At most ``2 x threads`` chunks are held (queued or being written), so memory stays
bounded. The first error of a writer is raised in the publishing thread (at its next
:meth:`ChunkSink.put`, or when the sink closes); leaving the sink on an error waits for
the writers to stop before the caller abandons the batch, so no chunk of a failed batch
is committed after its rows are deleted.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from types import TracebackType

import pyarrow as pa

COPY_STREAMS = 2
"""COPY streams (connections) of a PostgreSQL publish: one per core of this machine."""

_STOP = None


class ChunkSink:
    """Write chunks (``bulk.chunk_table``) with ``write`` in ``threads`` threads (0: in
    the calling thread, e.g. for an in-memory SQLite database, one per thread)."""

    def __init__(self, write: Callable[[pa.Table], None], threads: int) -> None:
        self._write = write
        self._queue: queue.Queue[pa.Table | None] = queue.Queue(maxsize=max(threads, 1))
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
            try:
                self._write(table)
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
