"""The store's webhook outbox (serving/store/webhooks.py) on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from leadscore.serving.store import ScoreStore, StoreConfig
from tests.serving.test_store import BACKENDS, backend_url

T0 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path: Path) -> Iterator[ScoreStore]:
    with backend_url(request.param, tmp_path) as url:
        store = ScoreStore(StoreConfig(url=url))
        store.create()
        yield store
        store.close()


def row(event_id: str, endpoint: str = "crm", batch_id: str = "b1", i: int = 0) -> dict:
    return {
        "endpoint": endpoint,
        "event_id": event_id,
        "event": "grade_up",
        "batch_id": batch_id,
        "lead_id": f"L-{event_id}",
        "body": f'{{"id":"{event_id}","name":"Zoë Ångström"}}',
        "created_at": T0 + timedelta(microseconds=i),
    }


def test_enqueue_is_idempotent_per_endpoint_and_keeps_the_first_body(store):
    assert store.enqueue_webhooks([row("e1"), row("e2", i=1), row("e1", endpoint="ops")]) == 3
    again = {**row("e1"), "body": "changed"}
    assert store.enqueue_webhooks([again, row("e3", i=2)]) == 1
    assert store.enqueue_webhooks([]) == 0
    rows = store.webhook_deliveries()
    assert [(r["endpoint"], r["event_id"]) for r in rows] == [
        ("crm", "e1"),
        ("ops", "e1"),
        ("crm", "e2"),
        ("crm", "e3"),
    ]
    assert [r["event_id"] for r in store.webhook_deliveries(newest=2)] == ["e2", "e3"]
    first = next(r for r in rows if r["event_id"] == "e1" and r["endpoint"] == "crm")
    assert first["body"] == '{"id":"e1","name":"Zoë Ångström"}'
    assert first["status"] == "pending" and first["attempts"] == 0
    assert first["created_at"] == T0
    assert store.webhook_counts() == {"pending": 4, "delivered": 0, "dead": 0}


def test_enqueue_many_rows_in_chunks(store):
    rows = [row(f"e{i:05d}", i=i) for i in range(2500)]
    assert store.enqueue_webhooks(rows) == 2500
    assert store.enqueue_webhooks(rows) == 0
    assert store.pending_webhooks() == {"crm": (2500, None)}


def test_claim_then_record_moves_a_delivery_and_logs_each_try(store):
    store.enqueue_webhooks([row("e1"), row("e2", i=1)])
    due = store.due_webhooks("crm", T0)
    assert [r.event_id for r in due] == ["e1", "e2"]
    lease = T0 + timedelta(seconds=35)
    assert store.claim_webhook("crm", "e1", T0, lease)
    assert not store.claim_webhook("crm", "e1", T0, lease)  # leased: not twice
    assert [r.event_id for r in store.due_webhooks("crm", T0)] == ["e2"]

    retry = T0 + timedelta(seconds=2)
    n = store.record_webhook_attempt(
        "crm",
        "e1",
        at=T0,
        http_status=500,
        error="boom",
        seconds=0.1,
        outcome="pending",
        next_attempt_at=retry,
    )
    assert n == 1
    assert store.pending_webhooks() == {"crm": (2, None)}  # e2 still due now
    assert [r.event_id for r in store.due_webhooks("crm", retry)] == ["e1", "e2"]
    assert store.claim_webhook("crm", "e1", retry, retry + timedelta(seconds=35))
    n = store.record_webhook_attempt(
        "crm", "e1", at=retry, http_status=200, error=None, seconds=0.05, outcome="delivered"
    )
    assert n == 2
    (done,) = store.webhook_deliveries("delivered")
    assert done["attempts"] == 2 and done["delivered_at"] == retry
    assert done["last_status"] == 200 and done["next_attempt_at"] is None
    # a delivered row is final: a late record cannot move it back
    store.record_webhook_attempt(
        "crm", "e1", at=retry, http_status=500, error="x", seconds=0.0, outcome="dead"
    )
    assert store.webhook_deliveries(event_ids=["e1"])[0]["status"] == "delivered"
    assert not store.claim_webhook("crm", "e1", retry, retry)
    attempts = store.webhook_attempts("crm", "e1")
    assert [(a["attempt"], a["status"], a["error"]) for a in attempts] == [
        (1, 500, "boom"),
        (2, 200, None),
        (3, 500, "x"),
    ]
    with pytest.raises(ValueError, match="outcome"):
        store.record_webhook_attempt(
            "crm", "e2", at=T0, http_status=None, error=None, seconds=0, outcome="lost"
        )


def test_pending_reports_when_the_next_try_is_due(store):
    store.enqueue_webhooks([row("e1")])
    later = T0 + timedelta(seconds=4)
    store.claim_webhook("crm", "e1", T0, later)
    assert store.pending_webhooks() == {"crm": (1, later)}
    assert store.due_webhooks("crm", T0) == []


def dead(store: ScoreStore, event_id: str, endpoint: str = "crm") -> None:
    store.record_webhook_attempt(
        endpoint, event_id, at=T0, http_status=404, error="no", seconds=0.0, outcome="dead"
    )


def test_replay_moves_dead_rows_only(store):
    store.enqueue_webhooks(
        [row("e1"), row("e2", i=1), row("e3", batch_id="b2", i=2), row("e4", i=3)]
    )
    for event_id in ("e1", "e2", "e3"):
        dead(store, event_id)
    store.record_webhook_attempt(
        "crm", "e4", at=T0, http_status=200, error=None, seconds=0.0, outcome="delivered"
    )
    assert [r["event_id"] for r in store.webhook_deliveries("dead")] == ["e1", "e2", "e3"]

    assert store.replay_webhooks() == 0  # nothing selected, nothing replayed
    assert store.replay_webhooks(event_ids=["e1", "e4"]) == 1  # e4 delivered: stays
    (back,) = store.webhook_deliveries("pending")
    assert back["event_id"] == "e1" and back["attempts"] == 0
    assert back["last_error"] is None and back["next_attempt_at"] is None
    assert store.replay_webhooks(batch_id="b2") == 1
    assert store.replay_webhooks(all_dead=True) == 1
    assert store.webhook_counts() == {"pending": 3, "delivered": 1, "dead": 0}
    assert store.webhook_counts("b2") == {"pending": 1, "delivered": 0, "dead": 0}
    # the log keeps the tries made before the replay; the next one is number 2
    dead(store, "e1")
    assert [a["attempt"] for a in store.webhook_attempts("crm", "e1")] == [1, 2]
