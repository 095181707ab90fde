"""The events of a published batch (serving/webhooks/events.py), on SQLite and PostgreSQL.

Two real batches are published through the store (its change feed written by the flip);
call lists are inserted as the batch writer does (``calls`` rows of each batch).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert

from leadscore.serving.store import ScoreStore, StoreConfig, StoreError
from leadscore.serving.store.outbound_schema import calls_table
from leadscore.serving.webhooks.events import NotPublishedError, build_events, event_id
from tests.serving.test_store import AS_OF, BACKENDS, _frame, backend_url

GRADES = ["A", "B", "C", "D"]
NOW = datetime(2026, 12, 6, 9, 30, tzinfo=UTC)

FIRST = [
    ("L1", 65, "B", "alice"),
    ("L2", 80, "A", "bob"),
    ("L3", 72, "B", None),
    ("L4", 40, "C", None),
    ("L5", 50, "C", None),  # leaves before the second batch
]
SECOND = [
    ("L1", 75, "A", "alice"),  # up into the top grade, crosses 70 upwards
    ("L2", 60, "B", "bob"),  # down, crosses 70 downwards
    ("L3", 71, "B", None),  # unchanged, stays above 70
    ("L4", 45, "D", None),  # down, no crossing
    ("L6", 90, "A", None),  # appears with the top grade: no crossing (nothing before)
    ("L7", 30, "D", None),  # appears, nothing to tell
]


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path: Path) -> Iterator[ScoreStore]:
    with backend_url(request.param, tmp_path) as url:
        store = ScoreStore(StoreConfig(url=url))
        store.create()
        yield store
        store.close()


def calls(store: ScoreStore, batch_id: str, assigned: list[tuple[str, str | None]]) -> None:
    rows = [
        {
            "batch_id": batch_id,
            "lead_id": lead,
            "rep_id": rep,
            "position": None if rep is None else i + 1,
            "expected": 0.5,
            "method": "territory",
            "reason": "no territory match" if rep is None else f"{rep} covers the territory",
        }
        for i, (lead, rep) in enumerate(assigned)
    ]
    with store.engine.begin() as conn:
        conn.execute(insert(calls_table), rows)


def two_batches(store: ScoreStore) -> tuple[str, str]:
    first = store.publish(_frame(FIRST), model_version="1", as_of=AS_OF, grade_order=GRADES)
    calls(store, first.batch_id, [("L1", "alice"), ("L2", "bob"), ("L3", "alice")])
    second = store.publish(
        _frame(SECOND),
        model_version="1",
        as_of=AS_OF + timedelta(days=1),
        grade_order=GRADES,
    )
    calls(
        store,
        second.batch_id,
        [("L1", "alice"), ("L2", "alice"), ("L3", "bob"), ("L6", "bob"), ("L7", None)],
    )
    return first.batch_id, second.batch_id


def build(store: ScoreStore, batch_id: str) -> list:
    return build_events(store, batch_id, grade_order=GRADES, threshold=70, now=NOW)


def test_events_of_the_second_batch(store):
    first, second = two_batches(store)
    events = build(store, second)

    kinds = [(e.type, e.lead_id) for e in events]
    assert kinds == [
        ("grade_up", "L1"),
        ("grade_down", "L2"),
        ("grade_down", "L4"),
        ("new_top_lead", "L1"),
        ("new_top_lead", "L6"),
        ("threshold", "L1"),
        ("threshold", "L2"),
        ("assigned", "L2"),
        ("assigned", "L3"),
        ("assigned", "L6"),
    ]
    bodies = {(e.type, e.lead_id): json.loads(e.body) for e in events}
    up = bodies[("grade_up", "L1")]
    assert up == {
        "id": event_id("grade_up", second, "L1"),
        "type": "grade_up",
        "batch_id": second,
        "as_of": "2026-11-23T03:15:00Z",
        "lead_id": "L1",
        "data": {
            "previous_batch_id": first,
            "owner": "alice",
            "old_grade": "B",
            "new_grade": "A",
            "old_score": 65,
            "new_score": 75,
        },
        "created_at": "2026-12-06T09:30:00Z",
    }
    assert bodies[("grade_down", "L4")]["data"]["new_grade"] == "D"
    assert bodies[("new_top_lead", "L1")]["data"]["appeared"] is False
    six = bodies[("new_top_lead", "L6")]["data"]
    assert six["appeared"] is True and six["old_grade"] is None and six["new_score"] == 90
    crossing = bodies[("threshold", "L1")]["data"]
    assert (crossing["direction"], crossing["threshold"]) == ("up", 70)
    assert (crossing["old_score"], crossing["new_score"]) == (65, 75)
    assert bodies[("threshold", "L2")]["data"]["direction"] == "down"
    moved = bodies[("assigned", "L2")]["data"]
    assert moved["rep"] == "alice" and moved["position"] == 2 and moved["score"] == 60
    assert moved["method"] == "territory" and moved["reason"] == "alice covers the territory"
    assert bodies[("assigned", "L6")]["data"]["grade"] == "A"
    for event in events:
        assert event.batch_id == second
        assert json.loads(event.body)["id"] == event.event_id


def test_event_ids_are_deterministic_and_name_the_event(store):
    _, second = two_batches(store)
    once = build(store, second)
    again = build_events(store, second, grade_order=GRADES, threshold=70)
    assert [e.event_id for e in once] == [e.event_id for e in again]
    assert len({e.event_id for e in once}) == len(once)
    assigned = next(e for e in once if e.type == "assigned" and e.lead_id == "L2")
    assert assigned.event_id == event_id("assigned", second, "L2", "alice")
    assert assigned.event_id != event_id("assigned", second, "L2", "bob")
    assert len(assigned.event_id) == 64


def test_first_batch_only_has_its_assignments(store):
    first = store.publish(_frame(FIRST), model_version="1", as_of=AS_OF, grade_order=GRADES)
    calls(store, first.batch_id, [("L1", "alice"), ("L2", "bob"), ("L5", None)])
    events = build(store, first.batch_id)
    assert [(e.type, e.lead_id) for e in events] == [("assigned", "L1"), ("assigned", "L2")]


def test_a_superseded_batch_keeps_its_events(store):
    _, second = two_batches(store)
    store.publish(_frame(SECOND), model_version="1", as_of=AS_OF + timedelta(days=2))
    assert len(build(store, second)) == 10


def test_threshold_follows_the_setting(store):
    _, second = two_batches(store)
    events = build_events(store, second, grade_order=GRADES, threshold=62)
    assert [e.lead_id for e in events if e.type == "threshold"] == ["L2"]  # 65 -> 75: above
    events = build_events(store, second, grade_order=GRADES, threshold=75)
    crossed = {
        json.loads(e.body)["lead_id"]: json.loads(e.body)["data"]["direction"]
        for e in events
        if e.type == "threshold"
    }
    assert crossed == {"L1": "up", "L2": "down"}  # reaching the threshold is crossing it
    events = build_events(store, second, grade_order=GRADES, threshold=50)
    assert [e.lead_id for e in events if e.type == "threshold"] == []


def test_nothing_for_a_batch_that_did_not_publish(store, monkeypatch):
    two_batches(store)

    def broken(records):
        raise RuntimeError("disk full")

    monkeypatch.setattr(store, "_insert_chunk", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        store.publish(_frame(SECOND), model_version="1", as_of=AS_OF, batch_id="b-failed")
    assert store._get_batch("b-failed").status == "failed"

    with pytest.raises(NotPublishedError, match="b-failed is 'failed', not published"):
        build(store, "b-failed")
    with pytest.raises(StoreError, match="not in the store"):
        build(store, "never-written")
