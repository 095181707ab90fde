"""A SQLite publish's rows inserted by a writer process beside the publishing one.

SQLite's Python driver binds every value of every row holding the GIL (measured on the
250k bench's rows: ~1 us a row to make the Python values, ~8 us to bind and insert them
with the table's indexes, ~1.4 us to commit: ``bulk.py``; the (batch, rank) index, filled
in random order, was ~2.6 us of that until schema 11): a writer *thread* measured no
faster than writing in the publishing thread, which meanwhile validates and converts the
next chunk (``bulk.chunk_table``). A writer *process* has its own interpreter: on two
cores the rows of one chunk are inserted while the next is prepared.
:class:`WriterProcess` starts this file as a script (not through the package, so the child
imports only numpy, pyarrow, sqlite3 and ADBC's driver, never pandas: ~0.3 s of CPU) and
sends it each chunk as an Arrow IPC stream on its stdin, length-prefixed, from a sender
thread (up to :data:`QUEUED_CHUNKS` queued, so the publisher does not wait on the pipe
while the child is busy); a zero length asks it to commit and exit, and its stdout answers
``ok`` or the driver's error (its class and message). The child appends each stream
through ADBC's bulk ingest (:class:`_Ingest`: SQLite's C API binds the Arrow columns, no
Python value per cell); the in-process path (small publishes, in-memory stores) binds with
the Python driver (:func:`sqlite_records`).

Crash safety is the in-process path's: the child commits every ``tx_rows`` rows of a
batch still ``writing`` (invisible to readers) and the flip is the parent's, after the
child has committed and exited.

* The parent killed (SIGKILL): the child reads end-of-file (or finds its parent gone
  before a commit), rolls back its open transaction and exits; the batch, left
  ``writing`` by a dead writer, is reaped by the next run as before.
* The child dies or fails: the parent raises (the driver's error class, so a lead in two
  partitions is still an ``IntegrityError``) and abandons the batch.
* The parent fails: it kills the child (its open transaction is rolled back) before it
  deletes the batch's rows.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import sqlite3
import struct
import subprocess
import sys
import threading
from typing import IO, Any

import numpy as np
import pyarrow as pa

_LENGTH = struct.Struct("<Q")

QUEUED_CHUNKS = 10
"""Chunks (``store.chunk_rows`` rows each, ~50k rows in all) the publisher may queue for
the child. With none, the publisher and the child took turns waiting for each other (at
1M, ~9 s blocked on the pipe while the child sat idle ~7 s, the slower of the two
changing from chunk to chunk); measured at 1M (partitions of 62,500): second pass and
publish 28.6 s with none, 25.1 with 4, 23.8 with 10, 24.4 with 20."""


NULL = float("nan")
"""What a NULL is bound as: SQLite has no NaN and stores a NaN bound as NULL, which the
driver binds as it binds any float, whereas for a ``None`` it first looks for an adapter
(~0.3 us a value, measured; the bench's rows hold ~2 NULLs each)."""


def _numpy_type(kind: pa.DataType) -> np.dtype[Any]:
    """The numpy type of an Arrow integer or float type (``to_pandas_dtype`` imports pandas)."""
    letter = "f" if pa.types.is_floating(kind) else "i" if pa.types.is_signed_integer(kind) else "u"
    return np.dtype(f"<{letter}{kind.bit_width // 8}")


def _null_positions(array: pa.Array) -> list[int]:
    """Positions of an array's NULLs, read from its validity bitmap."""
    bits = np.frombuffer(array.buffers()[0], dtype=np.uint8)
    valid = np.unpackbits(bits, count=array.offset + len(array), bitorder="little")
    return np.flatnonzero(valid[array.offset :] == 0).tolist()


def _python_values(column: pa.ChunkedArray | pa.Array) -> list[Any]:
    """One Arrow column as the Python values bound for it, :data:`NULL` for NULL: numbers
    read from the Arrow buffers by numpy (faster than Arrow's own conversion, which also
    imports pandas), the rest by Arrow;
    binary values as ``bytearray``, which the driver binds as the same BLOB without first
    looking for an adapter as it does for ``bytes`` (~0.5 us a value)."""
    kind = column.type
    if pa.types.is_null(kind) or not len(column):
        return [NULL] * len(column)
    if isinstance(column, pa.ChunkedArray):
        array = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    else:
        array = column
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return [NULL if v is None else bytearray(v) for v in array.to_pylist()]
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        dtype = _numpy_type(kind)
        data = array.buffers()[1]
        offset = array.offset * dtype.itemsize
        values: list[Any] = np.frombuffer(data, dtype, len(array), offset).tolist()
    else:
        values = array.to_pylist()
    if array.null_count:
        for i in _null_positions(array):
            values[i] = NULL
    return values


def sqlite_records(table: pa.Table) -> list[tuple[Any, ...]]:
    """A chunk's rows as DB-API tuples, in its columns' order (:func:`_python_values`:
    NULL bound as :data:`NULL`), for the in-process path's ``executemany``."""
    columns = [_python_values(table.column(i)) for i in range(table.num_columns)]
    return list(zip(*columns, strict=True))


def table_buffer(table: pa.Table) -> pa.Buffer:
    """``table`` as one Arrow IPC stream (its schema, then its batches): one copy."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


SINGLE_THREADED = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
"""Set in the writer process's environment: numpy's OpenBLAS otherwise starts a thread a
core, whose spinning cost the child ~0.1 s of CPU (measured), and it does no algebra."""


def child_environment() -> dict[str, str]:
    """This process's environment and :data:`SINGLE_THREADED`, for the writer process."""
    return {**os.environ, **SINGLE_THREADED}


class WriterProcess:
    """The parent's end: start the child, send it chunks, wait for its commit."""

    def __init__(self, database: str, table: str, tx_rows: int, pragmas: dict[str, int]) -> None:
        """Start the child on ``database`` (a file), appending each chunk to ``table``
        (its columns named as the chunk's) and committing every ``tx_rows`` rows;
        ``pragmas``: each ``PRAGMA name=value`` its connection runs first (the
        publishing connection's)."""
        spec = json.dumps(
            {
                "database": database,
                "table": table,
                "tx_rows": tx_rows,
                "pragmas": pragmas,
                "parent": os.getpid(),
            }
        )
        self._proc = subprocess.Popen(
            [sys.executable, "-P", os.path.abspath(__file__), spec],  # -P: not its folder
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,
            env=child_environment(),
        )
        self._queue: queue.Queue[pa.Table | None] = queue.Queue(maxsize=QUEUED_CHUNKS)
        self._broken = threading.Event()  # the pipe broke: the child has stopped
        self._sender = threading.Thread(target=self._send_queued, name="sqlite-send", daemon=True)
        self._sender.start()

    def put(self, table: pa.Table) -> None:
        """Queue one chunk for the child (waits while :data:`QUEUED_CHUNKS` are queued);
        raise the child's error if it has stopped."""
        if self._broken.is_set() or self._proc.poll() is not None:
            self._stop_sending()
            self._result()
        self._queue.put(table)

    def _send_queued(self) -> None:
        """The sender thread: each queued chunk serialised and written to the child, so
        that the publishing thread prepares the next ones meanwhile, as far as the
        queue allows, instead of waiting on the pipe whenever the child is busy."""
        while (table := self._queue.get()) is not None:
            if self._broken.is_set():
                continue  # the child is gone: drop the rest (put raises its error)
            data = table_buffer(table)
            del table
            try:
                self._send(_LENGTH.pack(data.size))
                self._send(memoryview(data))
            except (BrokenPipeError, ValueError):  # ValueError: stdin closed by kill()
                self._broken.set()

    def _stop_sending(self) -> None:
        """Let the sender thread finish what is queued (or drop it, the child gone)."""
        if self._sender.is_alive():
            self._queue.put(None)
            self._sender.join()

    def _send(self, data: bytes | memoryview) -> None:
        stdin: IO[bytes] = self._proc.stdin  # type: ignore[assignment]
        view = memoryview(data).cast("B")
        while view:
            view = view[stdin.write(view) or 0 :]

    def close(self) -> None:
        """Send what is queued, ask the child to commit and exit; raise its error if it
        failed."""
        self._stop_sending()
        try:
            if not self._broken.is_set():
                self._send(_LENGTH.pack(0))
            self._proc.stdin.close()  # type: ignore[union-attr]
        except BrokenPipeError:
            pass
        self._result()

    def kill(self) -> None:
        """Stop the child now: its open transaction is rolled back."""
        self._proc.kill()
        self._proc.wait()
        self._broken.set()  # the sender drops what is queued
        self._stop_sending()
        for stream in (self._proc.stdin, self._proc.stdout):
            if stream is not None:
                stream.close()

    def _result(self) -> None:
        """Wait for the child; raise its error as the driver's own class."""
        out = self._proc.stdout.read() if self._proc.stdout else b""  # type: ignore[union-attr]
        code = self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        if code == 0 and out.strip() == b"ok":
            return
        try:
            answer = json.loads(out)
            kind = getattr(sqlite3, answer["error"], sqlite3.Error)
            message = answer["message"]
        except (ValueError, KeyError, TypeError):
            kind, message = sqlite3.Error, f"SQLite writer process exited with code {code}"
        if not (isinstance(kind, type) and issubclass(kind, sqlite3.Error)):
            kind = sqlite3.Error
        raise kind(message)


def _read_exactly(stream: IO[bytes], n: int) -> bytes | None:
    parts, left = [], n
    while left:
        part = stream.read(left)
        if not part:
            return None
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


class _Ingest:
    """The child's connection (ADBC's low-level API: its DB-API module imports pandas,
    ~0.25 s of CPU) and its statement appending Arrow streams to one table: SQLite's C
    API binds the Arrow columns, ~45% of the CPU of the Python driver's ``executemany``
    of the same rows (measured on the 1M bench's chunks; the stored rows identical)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        """Open ``spec["database"]``, run each of ``spec["pragmas"]`` (outside a
        transaction, where SQLite accepts them all) with a 5 s busy timeout (the Python
        driver's default), then open a transaction (autocommit off)."""
        import adbc_driver_manager as adbc
        import adbc_driver_sqlite

        self._database = adbc_driver_sqlite.connect(spec["database"])
        self._conn = adbc.AdbcConnection(self._database)
        with adbc.AdbcStatement(self._conn) as setup:
            for name, value in {**spec["pragmas"], "busy_timeout": 5000}.items():
                setup.set_sql_query(f"PRAGMA {name}={int(value)}")
                setup.execute_update()
        self._conn.set_options(**{"adbc.connection.autocommit": "false"})
        self._append = adbc.AdbcStatement(self._conn)
        self._append.set_options(
            **{
                "adbc.ingest.target_table": spec["table"],
                "adbc.ingest.mode": "adbc.ingest.mode.append",
            }
        )

    def append(self, stream: pa.RecordBatchReader) -> int:
        """Insert the rows of ``stream`` in the open transaction; their number."""
        self._append.bind_stream(stream)
        return int(self._append.execute_update())

    def commit(self) -> None:
        self._conn.commit()

    def rollback(self) -> None:
        self._conn.rollback()

    def close(self) -> None:
        for handle in (self._append, self._conn, self._database):
            handle.close()


def driver_error(exc: Exception) -> str:
    """The name of the ``sqlite3`` error class that ``exc`` (ADBC's) stands for: ADBC
    reports a broken constraint as an ``InternalError`` whose message is SQLite's own
    ("UNIQUE constraint failed: ..."), which Python's driver raises as an
    ``IntegrityError``; a class ``sqlite3`` has keeps its name; anything else is an
    ``Error``."""
    if "constraint failed" in str(exc):
        return "IntegrityError"
    name = type(exc).__name__
    return name if isinstance(getattr(sqlite3, name, None), type) else "Error"


def child(spec: dict[str, Any], stdin: IO[bytes], stdout: IO[bytes]) -> int:
    """The child's loop: append each chunk read from ``stdin`` to ``spec["table"]``
    (:class:`_Ingest`), commit every ``tx_rows`` rows and at the end; answer on
    ``stdout``. Returns the exit code."""
    ingest = None
    try:
        ingest = _Ingest(spec)
        written = 0
        while True:
            header = _read_exactly(stdin, _LENGTH.size)
            if header is None:  # the parent is gone: nothing more is committed
                ingest.rollback()
                return 3
            (size,) = _LENGTH.unpack(header)
            if size == 0:
                ingest.commit()
                stdout.write(b"ok")
                return 0
            data = _read_exactly(stdin, size)
            if data is None:
                ingest.rollback()
                return 3
            written += ingest.append(pa.ipc.open_stream(data))
            if written >= spec["tx_rows"]:
                if os.getppid() != spec["parent"]:  # orphaned: never commit for a dead run
                    ingest.rollback()
                    return 3
                ingest.commit()
                written = 0
    except Exception as exc:  # reported to the parent, which raises it
        if ingest is not None:
            with contextlib.suppress(Exception):
                ingest.rollback()
        stdout.write(json.dumps({"error": driver_error(exc), "message": str(exc)}).encode())
        return 1
    finally:
        if ingest is not None:
            with contextlib.suppress(Exception):
                ingest.close()


if __name__ == "__main__":
    # Ctrl-C is the publisher's to handle: it abandons the batch and kills this process
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(child(json.loads(sys.argv[1]), sys.stdin.buffer, sys.stdout.buffer))
