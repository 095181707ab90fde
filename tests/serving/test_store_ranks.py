"""Schema 11: a batch's order in ``score_ranks``, written in rank order once its rows are in
(serving/store/ranks.py), on SQLite and PostgreSQL."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import event, inspect, select, text, update

from leadscore.serving.hot_reads import _BY_RANKS, _PLAIN
from leadscore.serving.page import reads
from leadscore.serving.page.filters import ListQuery
from leadscore.serving.store import ScoreStore, StoreConfig, schema_version_table
from leadscore.serving.store import ranks as ranks_module
from leadscore.serving.store.schema import SCHEMA_VERSION, ranks_table
from tests.serving.test_store import AS_OF, _frame, store, url  # noqa: F401

LEADS = [
    (f"L{i:03d}", int(s), "ABCD"[i % 4], ("x", "y", None)[i % 3])
    for i, s in enumerate(np.random.default_rng(3).permutation(100)[:40])
]


def _ranks(at: ScoreStore, batch_id: str) -> list[tuple[int, str]]:
    with at.engine.connect() as conn:
        rows = conn.execute(
            select(ranks_table.c.rank, ranks_table.c.lead_id)
            .where(ranks_table.c.batch_id == batch_id)
            .order_by(ranks_table.c.rank)
        ).all()
    return [(int(r), str(lead)) for r, lead in rows]


def _expected(frame: pd.DataFrame) -> list[tuple[int, str]]:
    return sorted(zip(frame["rank"].astype(int), frame["lead_id"].astype(str), strict=True))


def test_a_published_batch_has_its_ranks_and_pages_walk_them(store):  # noqa: F811
    frame = _frame(LEADS).sample(frac=1.0, random_state=1)  # rows not in rank order
    info = store.publish(frame, model_version="7", as_of=AS_OF)
    assert _ranks(store, info.batch_id) == _expected(frame)
    pages, after = [], 0
    while True:
        _, rows = store.page(after_rank=after, limit=7)
        if not rows:
            break
        pages.extend(r["lead_id"] for r in rows)
        after = rows[-1]["rank"]
    by_score = [lead for lead, *_ in sorted(LEADS, key=lambda r: (-r[1], r[0]))]
    assert pages == by_score
    _, grade_b = store.page(grade=["B"], limit=100)
    assert [r["lead_id"] for r in grade_b] == [
        lead for lead in by_score if dict((row[0], row[2]) for row in LEADS)[lead] == "B"
    ]
    assert store.read_batch()["lead_id"].tolist() == by_score
    with store.engine.connect() as conn:
        indexes = {i["name"] for i in inspect(conn).get_indexes("scores")}
    assert "ix_scores_batch_rank" not in indexes


def test_equal_ranks_are_kept_and_ordered_by_lead(store):  # noqa: F811
    frame = _frame(LEADS[:4])
    frame["rank"] = [1, 2, 2, 3]
    info = store.publish(frame, model_version="7", as_of=AS_OF)
    assert _ranks(store, info.batch_id) == sorted(_expected(frame))
    _, rows = store.page(limit=10)
    assert [r["rank"] for r in rows] == [1, 2, 2, 3]


def test_pruned_and_failed_batches_leave_no_ranks(url):  # noqa: F811
    keep_one = ScoreStore(StoreConfig(url=url, chunk_rows=3, keep_batches=1))
    keep_one.create()
    first = keep_one.publish(_frame(LEADS[:10]), model_version="7", as_of=AS_OF)
    second = keep_one.publish(_frame(LEADS[:6]), model_version="7", as_of=AS_OF)
    assert _ranks(keep_one, first.batch_id) == []
    assert len(_ranks(keep_one, second.batch_id)) == 6

    def refuse(total: int) -> None:
        raise RuntimeError("counted wrong")

    with pytest.raises(RuntimeError, match="counted wrong"):
        keep_one.publish_stream([_frame(LEADS[:5])], model_version="7", as_of=AS_OF, check=refuse)
    with keep_one.engine.connect() as conn:
        left = conn.scalar(select(text("count(*)")).select_from(ranks_table))
    assert left == 6  # the failed batch's ranks went with its rows
    keep_one.close()


def test_sqlite_ranks_are_copied_in_chunks_in_rank_order(tmp_path, monkeypatch):
    lite = ScoreStore(StoreConfig(url=f"sqlite:///{tmp_path}/s.db"))
    lite.create()
    monkeypatch.setattr(ranks_module, "CHUNK_ROWS", 4)
    inserts: list[str] = []

    def spy(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith("INSERT INTO score_ranks"):
            inserts.append(statement)

    event.listen(lite.engine, "before_cursor_execute", spy)
    frame = _frame(LEADS).sample(frac=1.0, random_state=2)
    info = lite.publish(frame, model_version="7", as_of=AS_OF)
    assert len(inserts) == 10  # 40 ranks, 4 a transaction
    assert _ranks(lite, info.batch_id) == _expected(frame)
    with lite.engine.connect() as conn:  # the sorted temporary table is dropped
        temp = conn.exec_driver_sql("SELECT name FROM sqlite_temp_master").all()
    assert temp == []
    lite.close()


def test_sqlite_pages_walk_score_ranks_and_read_rows_by_key(tmp_path):
    lite = ScoreStore(StoreConfig(url=f"sqlite:///{tmp_path}/s.db"))
    lite.create()
    info = lite.publish(_frame(LEADS), model_version="7", as_of=AS_OF)
    with lite.engine.connect() as conn:
        plans = [
            " | ".join(
                str(row[-1])
                for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", args).all()
            )
            for sql, args in (
                (_PLAIN, (info.batch_id, 0, 10)),
                (_BY_RANKS, (info.batch_id, "[1, 2]")),
            )
        ]
    for plan in plans:
        assert "SEARCH r USING PRIMARY KEY" in plan, plan
        assert "SEARCH s USING INDEX sqlite_autoindex_scores_1" in plan, plan
        assert "TEMP B-TREE" not in plan and "SCAN s" not in plan, plan
    lite.close()


def test_a_schema_10_store_gets_its_ranks_from_its_rows(store):  # noqa: F811
    frames = [_frame(LEADS[:12]), _frame(LEADS[5:30])]
    infos = [store.publish(f, model_version="7", as_of=AS_OF) for f in frames]
    with store.engine.begin() as conn:  # back to schema 10's layout
        conn.execute(ranks_table.delete())
        conn.execute(text("DROP INDEX ix_scores_feed"))
        conn.execute(
            text("CREATE INDEX ix_scores_feed ON scores (batch_id, lead_id, grade, score, owner)")
        )
        conn.execute(text("CREATE INDEX ix_scores_batch_rank ON scores (batch_id, rank)"))
        conn.execute(update(schema_version_table).values(version=10))
    old = ScoreStore(store.config)
    old.create()
    with old.engine.connect() as conn:
        assert conn.scalar(select(schema_version_table.c.version)) == SCHEMA_VERSION == 11
        indexes = {i["name"]: i["column_names"] for i in inspect(conn).get_indexes("scores")}
    assert "ix_scores_batch_rank" not in indexes
    assert indexes["ix_scores_feed"][-1] == "rank"
    for info, frame in zip(infos, frames, strict=True):
        assert _ranks(old, info.batch_id) == _expected(frame)
    assert old.read_batch()["lead_id"].tolist() == frames[1].sort_values("rank")["lead_id"].tolist()
    old.create()  # rerun: the same
    assert _ranks(old, infos[1].batch_id) == _expected(frames[1])
    old.close()


def test_page_lists_by_rank_with_and_without_a_text_filter(store):  # noqa: F811
    """The sales-ops page's list: walked through score_ranks, or (a search, an attribute)
    scanned and sorted; the same order either way, reversed on request."""
    store.publish(_frame(LEADS).sample(frac=1.0, random_state=4), model_version="7", as_of=AS_OF)
    info = store.current_batch()
    by_score = [lead for lead, *_ in sorted(LEADS, key=lambda r: (-r[1], r[0]))]
    searched = [lead for lead in by_score if lead.startswith("L00")]
    with store.engine.connect() as conn:

        def listed(**kw: object) -> list[str]:
            return [
                r["lead_id"] for r in reads.list_page(conn, info.batch_id, ListQuery.parse(**kw))
            ]

        assert listed() == by_score
        assert listed(order="asc") == by_score[::-1]
        assert listed(q="l00") == searched
        assert listed(q="l00", order="asc") == searched[::-1]
        chunks = reads.all_rows(conn, info.batch_id, ListQuery.parse(q="l00"), 3)
        assert [row["lead_id"] for chunk in chunks for row in chunk] == searched
