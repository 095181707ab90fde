"""PostgreSQL stores a batch's rows in a partition of its own (schema 10,
``serving/store/partitions.py``): copied into its own table, its last index built once
written, attached before the flip; dropped whole when the batch goes. A schema-9 store
keeps its rows.

These run on the PostgreSQL server ``make test`` starts (``$LEADSCORE_TEST_PG_URL``);
under ``CI=true`` a missing server fails them instead of skipping.
"""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest
from sqlalchemy import MetaData, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from leadscore.serving.store import (
    ScoreStore,
    StoreConfig,
    batches_table,
    partitions,
    schema_version_table,
    scores_table,
)
from leadscore.serving.store import sink as sink_module
from leadscore.serving.store.partitions import attached, batch_table, is_partitioned
from leadscore.serving.store.schema import SCHEMA_VERSION
from tests.serving.test_store import AS_OF, _frame, by_rank, pg_schema_url, rows_of


@pytest.fixture
def pg_store() -> Iterator[ScoreStore]:
    with pg_schema_url() as url:
        store = ScoreStore(StoreConfig(url=url, chunk_rows=3))
        store.create()
        yield store
        store.close()


def _indexes(store: ScoreStore, table: str) -> list[str]:
    """The definitions of a table's indexes, its own name left out."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema()"
                " AND tablename = :t ORDER BY indexdef"
            ),
            {"t": table},
        ).scalars()
        return [row.split(" USING ", 1)[1] for row in rows]


def _own_tables(store: ScoreStore) -> set[str]:
    with store.engine.connect() as conn:
        names = conn.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        ).scalars()
        return {name for name in names if name.startswith("scores_b_")}


FIVE = [
    ("a", 90, "A", "x"),
    ("b", 70, "B", "y"),
    ("c", 50, "B", None),
    ("d", 30, "C", "x"),
    ("e", 10, "C", None),
]


def test_a_batch_is_copied_into_its_own_table_then_indexed_and_attached(pg_store, monkeypatch):
    seen: dict[str, object] = {}
    real = sink_module.attach_batch_table

    def watched(engine, batch_id, *args):
        own = batch_table(batch_id)
        seen.update(indexes=_indexes(pg_store, own), rows=rows_of(pg_store, batch_id))
        with engine.connect() as conn:
            seen["attached"] = attached(conn, batch_id)
            seen["in_scores"] = conn.scalar(
                select(text("count(*)"))
                .select_from(scores_table)
                .where(scores_table.c.batch_id == batch_id)
            )
        real(engine, batch_id, *args)

    monkeypatch.setattr(sink_module, "attach_batch_table", watched)
    frame = _frame(FIVE)
    info = pg_store.publish(frame, model_version="7", as_of=AS_OF)
    # before the attach: every row in the batch's own table, not in `scores`, indexed but
    # for the deferred index, built afterwards
    own_before = seen.pop("indexes")
    assert seen == {"rows": 5, "attached": False, "in_scores": 0}
    # the key and the lead index (schema 11: no rank index; the batch's order is written
    # to score_ranks once its rows are in, store/ranks.py)
    assert len(own_before) == 2 and not any("grade" in d or "rank" in d for d in own_before)
    own = batch_table(info.batch_id)
    with pg_store.engine.connect() as conn:
        assert is_partitioned(conn) and attached(conn, info.batch_id)
    parent = {d.replace(own, "scores") for d in _indexes(pg_store, own)}
    assert len(parent) == 3 and parent == set(_indexes(pg_store, "scores"))
    read = by_rank(pg_store.read_batch())
    assert read["lead_id"].tolist() == ["a", "b", "c", "d", "e"]
    assert read["score"].tolist() == [90, 70, 50, 30, 10]


def test_a_duplicate_lead_fails_on_the_key_and_leaves_no_table(pg_store):
    first = pg_store.publish(_frame(FIVE[:2]), model_version="7", as_of=AS_OF)
    parts = [_frame([("p", 60, "B", None), ("q", 40, "C", None)]), _frame([("p", 20, "C", None)])]
    with pytest.raises(IntegrityError, match="duplicate key"):
        pg_store.publish_stream(iter(parts), model_version="7", as_of=AS_OF)
    assert pg_store.current_batch().batch_id == first.batch_id
    assert _own_tables(pg_store) == {batch_table(first.batch_id)}
    failed = [b for b in pg_store.batches() if b.status == "failed"]
    assert len(failed) == 1 and rows_of(pg_store, failed[0].batch_id) == 0


def test_pruning_drops_the_old_batchs_table(pg_store):
    pruning = ScoreStore(pg_store.config.model_copy(update={"keep_batches": 1}))
    old = pruning.publish(_frame(FIVE), model_version="7", as_of=AS_OF)
    new = pruning.publish(_frame(FIVE[:3]), model_version="7", as_of=AS_OF)
    assert _own_tables(pruning) == {batch_table(new.batch_id)}
    assert rows_of(pruning, old.batch_id) == 0 and rows_of(pruning, new.batch_id) == 3
    pruning.close()


def test_pruning_waits_for_readers_and_finishes_the_detach_later(pg_store, monkeypatch, caplog):
    monkeypatch.setattr(partitions, "DETACH_WAIT", "300ms")
    pruning = ScoreStore(pg_store.config.model_copy(update={"keep_batches": 1}))
    old = pruning.publish(_frame(FIVE), model_version="7", as_of=AS_OF)
    reader = pruning.engine.connect()
    reader.begin()  # a reader in the middle of a transaction that read the old batch
    assert reader.scalar(select(text("count(*)")).select_from(scores_table)) == 5
    new = pruning.publish(_frame(FIVE[:3]), model_version="7", as_of=AS_OF)
    assert pruning.current_batch().batch_id == new.batch_id  # published all the same
    assert "pruning old score batches failed" in caplog.text
    assert _own_tables(pruning) == {batch_table(old.batch_id), batch_table(new.batch_id)}
    reader.rollback()
    reader.close()
    with pruning.engine.connect() as conn:  # left pending: the next try finalizes it
        pending = conn.execute(
            text("SELECT inhdetachpending FROM pg_inherits WHERE inhrelid = to_regclass(:t)"),
            {"t": batch_table(old.batch_id)},
        ).scalar()
    assert pending is True
    pruning._prune()
    assert _own_tables(pruning) == {batch_table(new.batch_id)}
    assert [b.batch_id for b in pruning.batches()] == [new.batch_id]
    with pruning.engine.connect() as conn:  # the pooled connection kept no lock timeout
        assert conn.exec_driver_sql("SHOW lock_timeout").scalar() == "0"
    pruning.close()


def _as_schema_9(store: ScoreStore) -> pd.DataFrame:
    """Turn a schema-10 store back into schema 9's layout (one plain ``scores`` table with
    its named indexes), its rows kept; return them."""
    with store.engine.begin() as conn:
        rows = pd.read_sql(select(scores_table), conn)
        conn.execute(text("DROP TABLE scores CASCADE"))
        metadata = MetaData()
        batches_table.to_metadata(metadata)  # the key's target, already in the database
        legacy = scores_table.to_metadata(metadata)
        legacy.dialect_options["postgresql"]["partition_by"] = None
        legacy.create(conn)
        records = rows.astype(object).where(rows.notna(), None).to_dict(orient="records")
        conn.execute(insert(legacy), records)
        conn.execute(update(schema_version_table).values(version=9))
    return rows


def test_a_schema_9_store_keeps_its_rows_in_an_attached_partition(pg_store):
    pruning = ScoreStore(pg_store.config.model_copy(update={"keep_batches": 1}))
    old = pruning.publish(_frame(FIVE), model_version="7", as_of=AS_OF)
    before = by_rank(pruning.read_batch())
    _as_schema_9(pruning)
    with pruning.engine.connect() as conn:
        assert not is_partitioned(conn)
    pruning.create()  # the migration
    with pruning.engine.connect() as conn:
        assert is_partitioned(conn)
        assert conn.scalar(select(schema_version_table.c.version)) == SCHEMA_VERSION == 11
        legacy = conn.execute(
            text("SELECT relispartition FROM pg_class WHERE oid = to_regclass('scores_v9')")
        ).scalar()
    assert legacy is True
    pd.testing.assert_frame_equal(by_rank(pruning.read_batch(old.batch_id)), before)
    new = pruning.publish(_frame(FIVE[:2]), model_version="7", as_of=AS_OF)
    # the legacy batch, pruned, is deleted row by row from the old table
    assert rows_of(pruning, old.batch_id) == 0 and rows_of(pruning, new.batch_id) == 2
    assert _own_tables(pruning) == {batch_table(new.batch_id)}
    pruning.create()  # rerun: nothing changes
    assert by_rank(pruning.read_batch())["lead_id"].tolist() == ["a", "b"]
    pruning.close()
