"""The store's call reads (serving/store/call_reads.py) on SQLite and PostgreSQL: a rep's
list in call order joined with the lead's score row, the unassigned leads paged by rank,
per-rep counts; the current batch unless one is named."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from leadscore.serving.store.call_reads import CALL_FIELDS, LEAD_FIELDS, rep_query
from tests.serving.test_calls_api import publish_with_calls
from tests.serving.test_store import make_scores, store, url

__all__ = ["store", "url"]  # the two-backend fixtures of test_store


def test_a_reps_list_joined_with_its_leads_in_call_order(store):
    info = publish_with_calls(store)
    read, rows = store.call_list("alice")
    assert read == store.current_batch() and read.batch_id == info.batch_id
    assert [(r["position"], r["lead_id"], r["score"], r["grade"]) for r in rows] == [
        (1, "00042", 93, "A"),
        (2, "L-00-0002", 71, "B"),
        (3, "L-00-0003", 60, "B"),
    ]
    assert list(rows[0]) == [*LEAD_FIELDS, *CALL_FIELDS]
    assert all(type(k) is str for k in rows[0])  # plain keys (orjson refuses subclasses)
    assert rows[0]["name"] == "Zoë Ångström 0" and rows[0]["company"] == "Acme, Inc."
    assert rows[0]["reason"] == "owner: Alice Moreau" and rows[0]["expected"] == 0.93
    assert rows[2]["next_step"] == "webinar attended" and rows[2]["method"] == "score_aware"
    assert '"direction": "+"' in rows[0]["reasons"]  # stored JSON; the API decodes it
    assert store.call_list("nobody") == (read, [])


def test_unassigned_pages_by_rank_and_counts_per_rep(store):
    publish_with_calls(store)
    info, page, total = store.unassigned_calls(limit=1)
    assert total == 2 and [(r["lead_id"], r["rank"], r["rep_id"]) for r in page] == [
        ("L-00-0004", 5, None)
    ]
    _, rest, _ = store.unassigned_calls(after_rank=5, limit=10)
    assert [(r["lead_id"], r["reason"]) for r in rest] == [("L-00-0006", "all capacity used")]
    assert store.unassigned_calls(after_rank=7)[1] == []
    assert store.unassigned_calls(limit=1, count=False)[1:] == (page, None)
    read, counts, unassigned = store.call_counts()
    assert read == info and set(counts) == {"alice", "bashir"} and unassigned == 2
    assert counts["alice"][0] == 3 and counts["alice"][1] == pytest.approx(2.24)
    assert counts["bashir"] == (2, pytest.approx(1.20))


def test_the_current_batch_by_default_an_older_one_by_name(store):
    first = publish_with_calls(store)
    second = publish_with_calls(
        store,
        [("L-01-0003", "alice", 1, 0.6, "territory US")],
        frame=make_scores(7, seed=1),
        days=1,
    )
    assert [r["lead_id"] for r in store.call_list("alice")[1]] == ["L-01-0003"]
    assert store.call_counts()[1:] == ({"alice": (1, 0.6)}, 0)
    assert store.unassigned_calls()[1:] == ([], 0)
    old, rows = store.call_list("alice", first.batch_id)
    assert old.batch_id == first.batch_id and old.status == "superseded"
    assert [r["lead_id"] for r in rows] == ["00042", "L-00-0002", "L-00-0003"]
    assert store.call_counts(first.batch_id)[1]["bashir"][0] == 2
    with pytest.raises(LookupError, match="no complete scoring batch 'nope'"):
        store.call_list("alice", "nope")
    assert second.batch_id != first.batch_id


def test_an_empty_store_has_no_lists(store):
    assert store.call_list("alice") == (None, [])
    assert store.unassigned_calls() == (None, [], 0)
    assert store.call_counts() == (None, {}, 0)


def test_a_reps_list_is_a_range_of_its_index(tmp_path):
    """On SQLite, the plan reads the rep's calls through ix_calls_rep (already in call
    order: no sort) and each lead's score row by its primary key: no table scan."""
    from leadscore.serving.store import ScoreStore, StoreConfig

    store = ScoreStore(StoreConfig(url=f"sqlite:///{tmp_path}/s.db"))
    store.create()
    info = publish_with_calls(store)
    query = rep_query(info.batch_id, "alice")
    sql = str(query.compile(store.engine, compile_kwargs={"literal_binds": True}))
    with store.engine.connect() as conn:
        plan = " | ".join(row[-1] for row in conn.execute(text("EXPLAIN QUERY PLAN " + sql)))
    assert "ix_calls_rep" in plan and "SCAN" not in plan.replace("SCAN CONSTANT", ""), plan
    store.close()
