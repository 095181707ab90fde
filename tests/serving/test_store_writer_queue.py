"""The SQLite writer process's chunks are queued for a sender thread
(store/sqlite_proc.py ``QUEUED_CHUNKS``): the publisher hands over that many chunks
(plus the one being sent) without waiting for a busy child, and every queued chunk is
written, in order, before the child commits."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading

import pyarrow as pa

from leadscore.serving.store.sqlite_proc import QUEUED_CHUNKS, WriterProcess


def test_the_publisher_queues_chunks_while_the_child_is_stopped(tmp_path):
    db = tmp_path / "q.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (a INTEGER, b TEXT)")
    writer = WriterProcess(str(db), "t", 10**9, {})
    # each chunk is larger than a pipe's buffer: the first fills it and waits in the sender
    chunks = [
        pa.table({"a": range(k * 1000, (k + 1) * 1000), "b": ["x" * 100] * 1000})
        for k in range(QUEUED_CHUNKS + 1)
    ]
    os.kill(writer._proc.pid, signal.SIGSTOP)
    try:
        handing = threading.Thread(target=lambda: [writer.put(c) for c in chunks], daemon=True)
        handing.start()
        handing.join(10)
        assert not handing.is_alive(), "the publisher waited on a stopped child"
    finally:
        os.kill(writer._proc.pid, signal.SIGCONT)
    writer.close()
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT a FROM t ORDER BY rowid").fetchall()
    assert [a for (a,) in rows] == list(range((QUEUED_CHUNKS + 1) * 1000))


def test_a_killed_child_drops_the_queue_and_stops_the_sender(tmp_path):
    db = tmp_path / "k.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (a INTEGER, b TEXT)")
    writer = WriterProcess(str(db), "t", 10**9, {})
    os.kill(writer._proc.pid, signal.SIGSTOP)
    for k in range(QUEUED_CHUNKS):
        writer.put(pa.table({"a": range(k * 1000, (k + 1) * 1000), "b": ["y" * 100] * 1000}))
    writer.kill()
    assert not writer._sender.is_alive()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)
