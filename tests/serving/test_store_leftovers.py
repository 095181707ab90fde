"""A dead run's leftovers are cleaned by the next run, and a batch whose leads do not add
up never becomes current (SQLite and PostgreSQL).

* A batch left ``writing`` by a writer that died on this host (its row records host and
  pid, schema 3) is reaped by the next publish, whatever its age; one of a live writer or
  of another host is left alone (``stale_writing_hours`` is the fallback there).
* A store of schema 2 is migrated to the current one (writer columns added, batches kept).
* Schema 9: PostgreSQL has no scores -> batches foreign key (created or migrated), and
  failing, reaping and pruning leave no score rows without their batch on either backend.
* The lead conservation check runs before the flip: a mismatch leaves the previous
  batch current and the new one failed, without rows.
* Spill folders of dead runs on this host are removed by the next run.
* Schema 10: on PostgreSQL a dead writer's rows are its batch's own table, dropped when
  reaped; on SQLite deleting a batch's rows raises the connection's page cache.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import column, delete, func, insert, inspect, select, table, text, update

from leadscore.pipelines.errors import ConservationError
from leadscore.pipelines.score_flow import conservation
from leadscore.pipelines.spill import reap_dead_folders, spill_folder
from leadscore.serving.store import (
    SCHEMA_VERSION,
    SchemaVersionError,
    ScoreStore,
    StoreConfig,
    batches_table,
    schema_version_table,
    scores_table,
)
from leadscore.serving.store.bulk import SQLITE_CACHE_KIB
from leadscore.serving.store.call_writes import delete_batch_rows
from leadscore.serving.store.migrate import V4_COLUMNS
from leadscore.serving.store.owner import pid_alive, this_host, writer_dead
from leadscore.serving.store.partitions import batch_table, create_batch_table, is_partitioned
from leadscore.serving.store.schema import ranks_table
from tests.serving.test_store import (
    AS_OF,
    BACKENDS,
    UNDO_V6,
    _frame,
    backend_url,
    rows_of,
    undo_v8,
)


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path: Path) -> Iterator[ScoreStore]:
    with backend_url(request.param, tmp_path) as url:
        created = ScoreStore(StoreConfig(url=url))
        created.create()
        yield created
        created.close()


def dead_pid() -> int:
    """The pid of a process that has exited (and been waited for)."""
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    pid = int(done.stdout)
    assert not pid_alive(pid)
    return pid


def test_pid_alive_and_writer_dead():
    assert pid_alive(os.getpid())
    gone = dead_pid()
    assert writer_dead(this_host(), gone)
    assert not writer_dead(this_host(), os.getpid())
    assert not writer_dead("some-other-host", gone)  # cannot tell: left to the timeout
    assert not writer_dead(None, None)  # written before schema 3


def _writing_batch(store: ScoreStore, batch_id: str, host: str | None, pid: int | None) -> None:
    """A batch as a killed publisher leaves it: 'writing', its rows in and (killed while
    writing them, schema 11) some of its ranks."""
    with store.engine.begin() as conn:
        conn.execute(
            insert(batches_table).values(
                batch_id=batch_id,
                model_version="dead",
                as_of=AS_OF,
                created_at=AS_OF,
                published_at=None,
                n_rows=0,
                status="writing",
                writer_host=host,
                writer_pid=pid,
            )
        )
    rows = _frame([(f"{batch_id}-a", 50, "A", None), (f"{batch_id}-b", 20, "C", None)])
    rows = rows.astype(object).where(rows.notna(), None)  # schema 4's columns: NULL, not NaN
    target = scores_table
    with store.engine.begin() as conn:
        if is_partitioned(conn):  # schema 10: the rows went to the batch's own table
            create_batch_table(conn, batch_id)
            target = table(batch_table(batch_id), *(column(c.name) for c in scores_table.columns))
    for record in rows.to_dict(orient="records"):
        with store.engine.begin() as conn:
            conn.execute(insert(target).values(batch_id=batch_id, **record))
    with store.engine.begin() as conn:
        conn.execute(insert(ranks_table).values(batch_id=batch_id, rank=1, lead_id=f"{batch_id}-a"))


def ranks_of(store: ScoreStore, batch_id: str) -> int:
    with store.engine.connect() as conn:
        return int(
            conn.scalar(
                select(func.count())
                .select_from(ranks_table)
                .where(ranks_table.c.batch_id == batch_id)
            )
            or 0
        )


def test_the_next_publish_reaps_a_dead_writers_batch_at_once(store):
    first = store.publish(_frame([("a", 30, "B", None)]), model_version="7", as_of=AS_OF)
    with store.engine.connect() as conn:  # the publisher recorded itself
        row = conn.execute(
            select(batches_table.c.writer_host, batches_table.c.writer_pid).where(
                batches_table.c.batch_id == first.batch_id
            )
        ).one()
    assert (row.writer_host, row.writer_pid) == (this_host(), os.getpid())
    _writing_batch(store, "dead-here", this_host(), dead_pid())
    _writing_batch(store, "alive-here", this_host(), os.getpid())
    _writing_batch(store, "other-host", "some-other-host", 4242)
    _writing_batch(store, "old-schema", None, None)
    with store.engine.begin() as conn:  # all just started: the 24 h fallback does not apply
        conn.execute(
            update(batches_table)
            .where(batches_table.c.status == "writing")
            .values(created_at=datetime.now(UTC))
        )
    assert store.reap_stale_writing(timedelta(hours=24)) == []
    second = store.publish(_frame([("a", 60, "A", None)]), model_version="7", as_of=AS_OF)
    status = {b.batch_id: b.status for b in store.batches()}
    assert status.get("dead-here", "pruned") in ("failed", "pruned")
    assert rows_of(store, "dead-here") == 0 and ranks_of(store, "dead-here") == 0
    for kept in ("alive-here", "other-host", "old-schema"):
        assert status[kept] == "writing" and rows_of(store, kept) == 2
        assert ranks_of(store, kept) == 1
    assert store.current_batch() == store._get_batch(second.batch_id)
    assert store.reap_dead_writers() == []  # nothing more to reap from here


def upgraded_from(store: ScoreStore, version: int, *downgrade: str) -> ScoreStore:
    """The store made to look as schema ``version`` wrote it (``downgrade`` SQL, after
    undoing schemas 8 and 6 when ``version`` is older), refused as older by a reader, then
    upgraded by ``create()``."""
    with store.engine.begin() as conn:
        if version < 8:
            undo_v8(conn)
        for statement in (*(UNDO_V6 if version < 6 else ()), *downgrade):
            conn.execute(text(statement))
        conn.execute(update(schema_version_table).values(version=version))
    old = ScoreStore(store.config)
    with pytest.raises(SchemaVersionError, match="older"):
        old.current_batch()
    old.create()
    return old


def test_a_version_2_store_is_migrated(store):
    first = store.publish(_frame([("a", 30, "B", None)]), model_version="7", as_of=AS_OF)
    drops = [f"ALTER TABLE batches DROP COLUMN {c}" for c in ("writer_host", "writer_pid")]
    drops += [f"ALTER TABLE scores DROP COLUMN {c}" for c in V4_COLUMNS]
    old = upgraded_from(store, 2, *drops)
    with old.engine.connect() as conn:
        assert conn.scalar(select(schema_version_table.c.version)) == SCHEMA_VERSION
        columns = {c["name"] for c in inspect(conn).get_columns("batches")}
        assert {"writer_host", "writer_pid"} <= columns
        writer = select(batches_table.c.writer_pid).where(
            batches_table.c.batch_id == first.batch_id
        )
        assert conn.scalar(writer) is None  # written before schema 3: no writer known
    assert old.current_batch() == first
    second = old.publish(_frame([("a", 90, "A", None)]), model_version="7", as_of=AS_OF)
    assert old.current_batch() == old._get_batch(second.batch_id)
    old.create()  # idempotent
    old.close()


def _scores_fks(store: ScoreStore) -> list[str | None]:
    """Names of the foreign keys from ``scores`` to ``batches``."""
    with store.engine.connect() as conn:
        fks = inspect(conn).get_foreign_keys(scores_table.name)
    return [fk["name"] for fk in fks if fk["referred_table"] == batches_table.name]


def test_schema_9_drops_the_scores_batch_fk_on_postgresql_only(store):
    postgres = store.engine.dialect.name == "postgresql"
    assert bool(_scores_fks(store)) is not postgres  # a new store
    store.publish(_frame([("a", 30, "B", None)]), model_version="7", as_of=AS_OF)
    restore = (  # the key as schema 8 created it (SQLite still has it)
        "ALTER TABLE scores ADD CONSTRAINT scores_batch_id_fkey FOREIGN KEY (batch_id) "
        "REFERENCES batches (batch_id) ON DELETE CASCADE",
    )
    old = upgraded_from(store, 8, *(restore if postgres else ()))
    assert bool(_scores_fks(old)) is not postgres  # a migrated store agrees
    old.create()  # idempotent
    assert bool(_scores_fks(old)) is not postgres
    old.close()


def test_failing_reaping_and_pruning_leave_no_orphan_scores(store, monkeypatch):
    pruning = ScoreStore(store.config.model_copy(update={"keep_batches": 1}))
    pruning.publish(_frame([("a", 30, "B", None)]), model_version="7", as_of=AS_OF)
    pruning.publish(_frame([("a", 40, "B", None)]), model_version="7", as_of=AS_OF)
    _writing_batch(pruning, "dead-here", this_host(), dead_pid())
    real_flip = ScoreStore._flip

    def broken_flip(self, batch_id, grade_order=None):
        raise ConnectionError("lost during the flip")

    monkeypatch.setattr(ScoreStore, "_flip", broken_flip)
    with pytest.raises(ConnectionError):
        pruning.publish(_frame([("b", 90, "A", None)]), model_version="7", as_of=AS_OF)
    monkeypatch.setattr(ScoreStore, "_flip", real_flip)
    last = pruning.publish(_frame([("a", 60, "A", None)]), model_version="7", as_of=AS_OF)
    with pruning.engine.begin() as conn:  # age every failed batch past the kept one
        conn.execute(
            update(batches_table)
            .where(batches_table.c.status == "failed")
            .values(created_at=AS_OF - timedelta(days=1))
        )
    pruning._prune()
    with pruning.engine.connect() as conn:
        owners = set(conn.scalars(select(scores_table.c.batch_id).distinct()))
        ranked = set(conn.scalars(select(ranks_table.c.batch_id).distinct()))
        known = set(conn.scalars(select(batches_table.c.batch_id)))
    assert owners == ranked == {last.batch_id} and owners <= known  # ranks went with rows
    assert {b.status for b in pruning.batches()} == {"published"}
    if pruning.engine.dialect.name == "postgresql":  # and no batch's own table is left
        own = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        with pruning.engine.connect() as conn:
            tables = {t for t in conn.scalars(text(own)) if t.startswith("scores_b_")}
        assert tables == {batch_table(last.batch_id)}
    if pruning.engine.dialect.name == "postgresql":  # no key stops a writer pruned mid-copy
        _writing_batch(pruning, "late", "some-other-host", 4242)
        with pruning.engine.begin() as conn:
            conn.execute(delete(batches_table).where(batches_table.c.batch_id == "late"))
        pruning._abandon("late")  # its own clean-up removes what it left
        assert rows_of(pruning, "late") == 0
        assert rows_of(pruning, last.batch_id) == 1
    pruning.close()


def test_deleting_a_batch_on_sqlite_holds_its_index_pages_in_memory(tmp_path: Path):
    store = ScoreStore(StoreConfig(url=f"sqlite:///{tmp_path}/scores.db"))
    store.create()
    old = store.publish(_frame([("a", 30, "B", None)]), model_version="7", as_of=AS_OF)
    store.publish(_frame([("a", 40, "B", None)]), model_version="7", as_of=AS_OF)
    with store.engine.begin() as conn:  # as a connection the publish did not use is
        conn.exec_driver_sql("PRAGMA cache_size=-2000")  # SQLite's default, 2 MiB
        delete_batch_rows(conn, old.batch_id, ("superseded",))
        assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -SQLITE_CACHE_KIB
    assert rows_of(store, old.batch_id) == 0
    store.close()


def test_a_conservation_mismatch_keeps_the_previous_batch_current(store):
    first = store.publish(_frame([("a", 30, "B", None)]), model_version="7", as_of=AS_OF)
    parts = [_frame([("b", 40, "B", None), ("c", 20, "C", None)]), _frame([("d", 80, "A", None)])]
    # 5 leads in: 3 scored + 1 closed + 0 quarantined = 4 -> one lead lost: refused
    with pytest.raises(ConservationError, match=r"5 leads in != 3 scored \+ 1 closed \+ 0 quar"):
        store.publish_stream(
            iter(parts), model_version="8", as_of=AS_OF, check=conservation(5, 1, 0)
        )
    assert store.current_batch() == first
    failed = [b for b in store.batches() if b.model_version == "8"]
    assert [b.status for b in failed] == ["failed"] and rows_of(store, failed[0].batch_id) == 0
    assert list(store.read_batch()["lead_id"]) == ["a"]
    # the same stream whose counts add up is published
    done = store.publish_stream(
        iter(parts), model_version="9", as_of=AS_OF, check=conservation(5, 2, 0)
    )
    assert store.current_batch() == done and done.n_rows == 3


def test_spill_folders_of_dead_runs_are_removed_by_the_next_run(tmp_path: Path):
    host = this_host().replace("-", "_")
    dead = tmp_path / f"leadscore-{host}-{dead_pid()}-abc123"
    alive = tmp_path / f"leadscore-{host}-{os.getpid()}-def456"
    other = tmp_path / f"leadscore-otherhost-{dead_pid()}-ghi789"
    unrelated = tmp_path / "leadscore-bench-xyz"
    for folder in (dead, alive, other, unrelated):
        folder.mkdir()
        (folder / "part-000000.arrow").write_bytes(b"x" * 100)
    with spill_folder(tmp_path) as mine:
        assert mine.name.startswith(f"leadscore-{host}-{os.getpid()}-")
        assert not dead.exists()
        assert alive.exists() and other.exists() and unrelated.exists()
    assert not mine.exists()
    assert reap_dead_folders(tmp_path) == []
