"""A SQLite publish's writer process (store/sqlite_proc.py): the rows it stores are those
the in-process path stores, its errors fail the publish as the driver's would (the
previous batch stays current, no row of the failed batch is left), and a publisher killed
with SIGKILL leaves a writer that exits without committing for it; the next run reaps the
batch. Thresholds are lowered so that a few dozen rows start the process."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from leadscore.serving.store import ScoreStore, StoreConfig, scores_table, sink, sqlite_proc
from leadscore.serving.store.schema import WRITING
from leadscore.serving.store.sqlite_proc import WriterProcess
from tests.serving.test_store import AS_OF, make_scores

N = 60


@pytest.fixture
def small_process(monkeypatch) -> list[WriterProcess]:
    """Start the writer process after 10 rows, commit every 10; the processes started."""
    monkeypatch.setattr(sink, "SQLITE_TRANSACTION_ROWS", 10)
    monkeypatch.setattr(sink, "SQLITE_PROCESS_ROWS", 10)
    started: list[WriterProcess] = []
    real = WriterProcess.__init__

    def spy(self, *args, **kwargs):
        real(self, *args, **kwargs)
        started.append(self)

    monkeypatch.setattr(WriterProcess, "__init__", spy)
    return started


def many_scores(n: int, seed: int) -> pd.DataFrame:
    """``make_scores`` of ``n`` rows (its own keeps probabilities valid up to 9 rows)."""
    parts = [make_scores(7, seed=seed * 20 + k) for k in range(-(-n // 7))]
    frame = pd.concat(parts, ignore_index=True).iloc[:n].copy()
    frame["lead_id"] = [f"L-{seed:02d}-{i:04d}" for i in range(n)]
    frame["probability"] = [round(0.99 - 0.015 * i, 6) for i in range(n)]
    frame["score"] = [round(p * 100) for p in frame["probability"]]
    frame["grade"] = ["ABCD"[min(3, (100 - s) // 25)] for s in frame["score"]]
    frame["rank"] = range(1, n + 1)
    frame["percentile"] = [round(100.0 * (n - i) / n, 4) for i in range(n)]
    return frame.iloc[::-1].reset_index(drop=True)


def file_store(folder: Path, name: str = "scores.db") -> ScoreStore:
    store = ScoreStore(StoreConfig(url=f"sqlite:///{folder / name}", chunk_rows=5))
    store.create()
    return store


def raw_rows(store: ScoreStore, batch_id: str) -> list[tuple]:
    """Every stored column of a batch's rows but ``batch_id``, by lead."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT * FROM scores WHERE batch_id = :b ORDER BY lead_id"), {"b": batch_id}
        ).all()
    return [tuple(row)[1:] for row in rows]


def rows_of(store: ScoreStore, batch_id: str) -> int:
    with store.engine.connect() as conn:
        query = select(func.count()).select_from(scores_table)
        return conn.scalar(query.where(scores_table.c.batch_id == batch_id))


def halves(frame: pd.DataFrame) -> list[pd.DataFrame]:
    """Two partitions of 30 rows: the writer process starts with the first chunk."""
    return [frame.iloc[: len(frame) // 2], frame.iloc[len(frame) // 2 :]]


@pytest.mark.parametrize("first", [30, 5], ids=["from-the-first-chunk", "after-a-commit"])
def test_writer_process_stores_what_the_in_process_path_stores(tmp_path, small_process, first):
    frame = many_scores(N, seed=3)
    parts = [frame.iloc[:first], frame.iloc[first:]]
    inline = file_store(tmp_path, "inline.db")
    with pytest.MonkeyPatch.context() as patch:  # this one never starts the process
        patch.setattr(sink, "SQLITE_PROCESS_ROWS", 10**9)
        a = inline.publish_stream(parts, model_version="7", as_of=AS_OF)
    assert not small_process
    store = file_store(tmp_path)
    b = store.publish_stream(parts, model_version="7", as_of=AS_OF)
    assert len(small_process) == 1
    assert raw_rows(store, b.batch_id) == raw_rows(inline, a.batch_id)
    assert len(raw_rows(store, b.batch_id)) == N == b.n_rows
    pd.testing.assert_frame_equal(
        store.read_batch().drop(columns="batch_id"), inline.read_batch().drop(columns="batch_id")
    )


def test_a_duplicate_lead_met_by_the_writer_process_is_an_integrity_error(tmp_path, small_process):
    store = file_store(tmp_path)
    first = store.publish(many_scores(N, seed=1), model_version="7", as_of=AS_OF)
    frame = many_scores(N, seed=2)
    parts = halves(frame)
    parts[1] = pd.concat([parts[1], parts[0].iloc[[3]]])  # a lead in two partitions
    with pytest.raises(IntegrityError):
        store.publish_stream(parts, model_version="8", as_of=AS_OF, batch_id="b-dup")
    assert len(small_process) == 2  # the first publish's and this one's
    assert store.current_batch() == first
    assert rows_of(store, "b-dup") == 0
    assert all(w._proc.poll() is not None for w in small_process)


def test_a_failing_stream_stops_the_writer_process_and_keeps_none(tmp_path, small_process):
    store = file_store(tmp_path)
    first = store.publish(many_scores(N, seed=1), model_version="7", as_of=AS_OF)

    def broken() -> Iterator[pd.DataFrame]:
        yield many_scores(N, seed=2)  # the process starts within it
        raise ConnectionError("lost")

    with pytest.raises(ConnectionError, match="lost"):
        store.publish_stream(broken(), model_version="8", as_of=AS_OF, batch_id="b-x")
    assert store.current_batch() == first
    assert rows_of(store, "b-x") == 0
    assert len(small_process) == 2
    assert small_process[-1]._proc.returncode == -signal.SIGKILL


def _publish_then_hang(db: str, pid_file: str) -> None:
    """A publisher whose stream stops after its writer process started (killed there)."""
    sink.SQLITE_TRANSACTION_ROWS = 10
    sink.SQLITE_PROCESS_ROWS = 10
    store = ScoreStore(StoreConfig(url=f"sqlite:///{db}", chunk_rows=5))
    real = WriterProcess.__init__

    def spy(self, *args, **kwargs):
        real(self, *args, **kwargs)
        Path(pid_file).write_text(str(self._proc.pid))

    WriterProcess.__init__ = spy  # type: ignore[method-assign]

    def stream() -> Iterator[pd.DataFrame]:
        yield many_scores(N + 5, seed=2)  # 60 rows committed, 5 in the open transaction
        time.sleep(600)  # killed here
        yield many_scores(N, seed=4)

    store.publish_stream(stream(), model_version="8", as_of=AS_OF, batch_id="b-killed")


def _gone(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "State:\tZ" in status  # exited, not yet reaped by its new parent


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_a_killed_publisher_leaves_a_writer_that_commits_nothing_more(tmp_path):
    store = file_store(tmp_path)
    first = store.publish(many_scores(N, seed=1), model_version="7", as_of=AS_OF)
    pid_file = tmp_path / "writer.pid"
    publisher = multiprocessing.get_context("fork").Process(
        target=_publish_then_hang, args=(str(tmp_path / "scores.db"), str(pid_file))
    )
    publisher.start()
    deadline = time.monotonic() + 60
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline and publisher.is_alive(), "no writer process"
        time.sleep(0.05)
    writer = int(pid_file.read_text())
    while rows_of(store, "b-killed") < N:  # the writer commits what it was sent
        assert time.monotonic() < deadline, "the writer process committed too little"
        time.sleep(0.05)
    time.sleep(0.2)  # and inserts the 5 rows after, uncommitted
    os.kill(publisher.pid, signal.SIGKILL)
    publisher.join()
    while not _gone(writer):
        assert time.monotonic() < deadline, "the writer process outlived its publisher"
        time.sleep(0.05)
    assert store.current_batch() == first
    assert store._get_batch("b-killed").status == WRITING
    assert rows_of(store, "b-killed") == N  # the 5 uncommitted rows were rolled back
    assert store.reap_dead_writers() == ["b-killed"]
    assert rows_of(store, "b-killed") == 0
    assert store.read_batch().shape[0] == N


def test_the_writer_process_converts_columns_without_pandas(tmp_path):
    """The child's values, read from the Arrow buffers by numpy: NULLs, offsets (a sliced
    array), several chunks and each number type as Arrow's own conversion gives them,
    without importing pandas (Arrow's numpy paths import it: ~0.25 s of CPU a publish)."""
    ints = pa.array([5, None, -7, 2**40, None, 9], pa.int64())
    cases = [
        pa.chunked_array([ints.slice(0, 3), ints.slice(3)]),  # two record batches
        pa.array([1.5, None, float("nan"), -0.0], pa.float64()),
        pa.array([3, None, 250], pa.uint8()),
        pa.array([-3, 4], pa.int32()),
        pa.array([0.25, None], pa.float32()),
        pa.array([], pa.int64()),
        pa.array(["a", None, "é"], pa.large_string()),
        pa.nulls(2),
        pa.array([b"\x00z", None], pa.binary()),
    ]
    for i, case in enumerate(cases):
        table = pa.table({"v": case})
        path = str(tmp_path / f"{i}.arrow")
        with pa.OSFile(path, "wb") as out, pa.ipc.new_stream(out, table.schema) as writer:
            writer.write_table(table)
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); import sqlite_proc as sp\n"
        "import pyarrow as pa\n"
        "columns = [pa.ipc.open_stream(pa.OSFile(f'{sys.argv[2]}/{i}.arrow')).read_all()['v']\n"
        "           for i in range(int(sys.argv[3]))]\n"
        "columns.append(columns[0].chunk(1).slice(1, 2))  # an offset into its buffers\n"
        "got = [sp._python_values(c) for c in columns]\n"
        "assert 'pandas' not in sys.modules, 'the writer process imported pandas'\n"
        "for values, column in zip(got, columns):\n"
        "    want = [sp.NULL if v is None else v for v in column.to_pylist()]\n"
        "    if pa.types.is_binary(column.type):  # bound as bytearray: no adapter lookup\n"
        "        want = [v if v is sp.NULL else bytearray(v) for v in want]\n"
        "    assert repr(values) == repr(want), (values, want)\n"
        "    assert [type(v) for v in values] == [type(v) for v in want], column\n"
    )
    folder = str(Path(sqlite_proc.__file__).parent)
    args = [sys.executable, "-P", "-c", script, folder, str(tmp_path), str(len(cases))]
    done = subprocess.run(args, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()


def test_packed_values_are_stored_as_blobs_by_both_paths(tmp_path, small_process):
    """``packed`` is bound as a bytearray: stored as a BLOB, the compressed bytes as they were."""
    frame = many_scores(N, seed=4)
    store = file_store(tmp_path)
    parts = [frame.iloc[:5], frame.iloc[5:]]  # the first 10 rows in process, then the child
    batch = store.publish_stream(parts, model_version="7", as_of=AS_OF)
    assert len(small_process) == 1
    with store.engine.connect() as conn:
        kinds = conn.exec_driver_sql(
            "SELECT DISTINCT typeof(packed) FROM scores WHERE batch_id = ?", (batch.batch_id,)
        ).all()
    assert kinds == [("blob",)]
    assert store.read_batch()["reasons"].notna().all()


def test_the_writer_process_starts_without_blas_threads(tmp_path, small_process):
    """numpy's OpenBLAS threads only spin in the child (~0.1 s of CPU): it has one."""
    frame = many_scores(N, seed=5)
    store = file_store(tmp_path)
    seen: list[dict[str, str]] = []
    real = subprocess.Popen

    def spy(*args, **kwargs):
        seen.append(kwargs.get("env") or {})
        return real(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sqlite_proc.subprocess, "Popen", spy)
        store.publish_stream(halves(frame), model_version="7", as_of=AS_OF)
    assert len(small_process) == len(seen) == 1
    assert seen[0]["OPENBLAS_NUM_THREADS"] == "1" and seen[0]["PATH"] == os.environ["PATH"]


def _framed(table: pa.Table) -> bytes:
    """``table`` as the parent sends it: its length, then its Arrow IPC stream."""
    data = sqlite_proc.table_buffer(table).to_pybytes()
    return len(data).to_bytes(8, "little") + data


def test_the_writer_child_ingests_through_adbc_without_pandas(tmp_path):
    """The child run on in-memory pipes: two streams appended and committed, a third
    with a lead already stored reported as an IntegrityError with SQLite's message and
    rolled back, and neither pandas nor ADBC's DB-API module (which imports it) loaded."""
    db = tmp_path / "child.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (a TEXT PRIMARY KEY, b INTEGER, c REAL, d BLOB)")
    one = pa.table({"a": ["x", "y"], "b": [1, None], "c": [0.5, None], "d": [b"\0", None]})
    two = pa.table({"a": ["z"], "b": [2**40], "c": [-1.0], "d": [b"q"]})
    again = pa.table({"a": ["w", "x"], "b": [3, 4], "c": [1.0, 2.0], "d": [b"", b""]})
    end = (0).to_bytes(8, "little")
    (tmp_path / "ok.bin").write_bytes(_framed(one) + _framed(two) + end)
    (tmp_path / "dup.bin").write_bytes(_framed(again) + end)
    script = (
        "import io, json, os, sys; sys.path.insert(0, sys.argv[1]); import sqlite_proc as sp\n"
        "spec = {'database': sys.argv[2], 'table': 't', 'tx_rows': 2, 'pragmas': {},\n"
        "        'parent': os.getppid()}\n"
        "def run(name):\n"
        "    out = io.BytesIO()\n"
        "    with open(f'{sys.argv[3]}/{name}.bin', 'rb') as pipe:\n"
        "        return sp.child(spec, pipe, out), out.getvalue()\n"
        "assert run('ok') == (0, b'ok')\n"
        "code, out = run('dup')\n"
        "answer = json.loads(out)\n"
        "assert code == 1 and answer['error'] == 'IntegrityError', answer\n"
        "assert 'UNIQUE constraint failed' in answer['message'], answer\n"
        "assert 'pandas' not in sys.modules and 'adbc_driver_manager.dbapi' not in sys.modules\n"
    )
    folder = str(Path(sqlite_proc.__file__).parent)
    args = [sys.executable, "-P", "-c", script, folder, str(db), str(tmp_path)]
    done = subprocess.run(args, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT a, b, c, d, typeof(d) FROM t ORDER BY a").fetchall()
    assert rows == [
        ("x", 1, 0.5, b"\0", "blob"),
        ("y", None, None, None, "null"),
        ("z", 2**40, -1.0, b"q", "blob"),
    ]
