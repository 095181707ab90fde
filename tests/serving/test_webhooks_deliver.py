"""Webhook delivery (serving/webhooks/deliver.py) against a REAL HTTP receiver.

The receiver is ``http.server`` on 127.0.0.1 (port 0) in a thread, started per test: it
records every request (headers and raw body) and answers from a script (500 N times,
400, or a sleep past the client's timeout), then 200. Backoffs are tens of milliseconds,
so retries and dead-lettering run in well under a second each.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from leadscore.serving.store import ScoreStore, StoreConfig
from leadscore.serving.webhooks.config import Endpoint, WebhooksConfig
from leadscore.serving.webhooks.deliver import Answer, backoff, deliver, verdict
from leadscore.serving.webhooks.signing import MissingSecretError, verify

SECRET = "whsec_test_Zoë"
SECRET_ENV = "LEADSCORE_TEST_WEBHOOK_SECRET"


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """A local HTTP server that records requests and answers from a script."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.script: list[tuple[int, float]] = []  # (status, seconds to sleep first)
        self.scripts: dict[str, list[tuple[int, float]]] = {}  # for one path or event id
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most_in_flight = 0  # requests being answered at once, at most
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.requests.append(Received(self.path, dict(self.headers), body))
                    key = self.headers.get("Idempotency-Key", "")
                    scripts = receiver.scripts
                    script = scripts.get(self.path) or scripts.get(key) or receiver.script
                    status, delay = script.pop(0) if script else (200, 0.0)
                    receiver.in_flight += 1
                    receiver.most_in_flight = max(receiver.most_in_flight, receiver.in_flight)
                time.sleep(delay)
                with receiver.lock:
                    receiver.in_flight -= 1
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:  # the client gave up (timeout): nothing to answer
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def answer(self, *steps: tuple[int, float], only: str | None = None) -> None:
        """Answer the next requests (only those to path or of event id ``only``, if given)."""
        with self.lock:
            (self.script if only is None else self.scripts.setdefault(only, [])).extend(steps)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    return SECRET


def hook_config(url: str, **changes: object) -> WebhooksConfig:
    endpoint = Endpoint(name="crm", url=url, secret_env=SECRET_ENV)
    values = {
        "endpoints": [endpoint],
        "max_attempts": 3,
        "backoff_seconds": 0.02,
        "backoff_max_seconds": 0.05,
        "timeout_seconds": 0.5,
    }
    return WebhooksConfig(**{**values, **changes})


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ScoreStore]:
    store = ScoreStore(StoreConfig(url=f"sqlite:///{tmp_path}/scores.db"))
    store.create()
    yield store
    store.close()


def queue(
    store: ScoreStore, *event_ids: str, endpoint: str = "crm", lead: str | None = None
) -> int:
    """Queue events (of lead ``lead``, else one lead each), one microsecond apart."""
    now = datetime.now(UTC)
    rows = [
        {
            "endpoint": endpoint,
            "event_id": event_id,
            "event": "grade_up",
            "batch_id": "b1",
            "lead_id": lead or f"L-{i}",
            "body": json.dumps(
                {"id": event_id, "type": "grade_up", "lead_id": f"L-{i}", "n": "Zoë"}
            ),
            "created_at": now + timedelta(microseconds=i),
        }
        for i, event_id in enumerate(event_ids)
    ]
    return store.enqueue_webhooks(rows)


def status_of(store: ScoreStore, event_id: str) -> dict:
    (row,) = store.webhook_deliveries(event_ids=[event_id])
    return row


# ----------------------------------------------------------------------------- rules


def test_backoff_doubles_and_is_capped():
    config = WebhooksConfig(backoff_seconds=1, backoff_max_seconds=5)
    assert [backoff(config, n) for n in (1, 2, 3, 4, 5)] == [1, 2, 4, 5, 5]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, "delivered"),
        (204, "delivered"),
        (301, "refused"),
        (400, "refused"),
        (404, "refused"),
        (408, "retry"),
        (429, "retry"),
        (500, "retry"),
        (503, "retry"),
        (None, "retry"),
    ],
)
def test_verdict_of_each_answer(status, expected):
    assert verdict(Answer(status, None, 0.1)) == expected


# ----------------------------------------------------------------------------- delivery


def test_delivered_once_with_a_valid_signature(store, receiver, secret):
    assert queue(store, "e1") == 1
    run = deliver(store, hook_config(receiver.url))

    assert run["delivered"] == 1 and run["tries"] == 1 and run["waiting"] == 0
    (request,) = receiver.requests
    assert request.path == "/hooks"
    assert request.headers["Idempotency-Key"] == "e1"
    assert request.headers["Leadscore-Event"] == "grade_up"
    assert request.headers["Content-Type"] == "application/json"
    (row,) = store.webhook_deliveries()
    assert request.body == row["body"].encode("utf-8")  # byte for byte what was stored
    header = request.headers["Leadscore-Signature"]
    stamp = verify(request.body, header, secret)
    assert abs(stamp - time.time()) < 60
    # independently of verify(): HMAC-SHA256 over "<t>.<body>"
    given = dict(part.split("=", 1) for part in header.split(","))
    mac = hmac.new(secret.encode(), f"{given['t']}.".encode() + request.body, hashlib.sha256)
    assert given["v1"] == mac.hexdigest()
    assert row["status"] == "delivered" and row["attempts"] == 1 and row["last_status"] == 200
    (attempt,) = store.webhook_attempts("crm", "e1")
    assert attempt["status"] == 200 and attempt["error"] is None and attempt["seconds"] >= 0


def test_retried_on_500_then_delivered(store, receiver, secret):
    queue(store, "e1")
    receiver.answer((500, 0.0), (503, 0.0))
    run = deliver(store, hook_config(receiver.url))

    assert run == {"tries": 3, "delivered": 1, "retried": 2, "dead": 0, "rounds": 3, "waiting": 0}
    assert len(receiver.requests) == 3
    bodies = {r.body for r in receiver.requests}
    assert len(bodies) == 1  # the same bytes on every try
    assert {r.headers["Idempotency-Key"] for r in receiver.requests} == {"e1"}
    attempts = store.webhook_attempts("crm", "e1")
    assert [a["status"] for a in attempts] == [500, 503, 200]
    assert [a["attempt"] for a in attempts] == [1, 2, 3]
    # the backoff was waited between tries
    assert (attempts[1]["at"] - attempts[0]["at"]).total_seconds() >= 0.02
    assert status_of(store, "e1")["status"] == "delivered"


def test_retried_after_a_timeout_then_delivered(store, receiver, secret):
    queue(store, "e1")
    receiver.answer((200, 0.8))  # answers after the client's 0.3 s timeout
    run = deliver(store, hook_config(receiver.url, timeout_seconds=0.3))

    assert run["delivered"] == 1 and run["retried"] == 1
    first, second = store.webhook_attempts("crm", "e1")
    assert first["status"] is None and "timed out" in first["error"].lower()
    assert 0.25 <= first["seconds"] < 0.8
    assert second["status"] == 200
    assert len(receiver.requests) == 2


def test_dead_after_max_attempts_then_replayed_and_delivered(store, receiver, secret):
    queue(store, "e1")
    receiver.answer(*[(500, 0.0)] * 3)
    config = hook_config(receiver.url)
    run = deliver(store, config)

    assert run["dead"] == 1 and run["delivered"] == 0 and run["tries"] == 3
    row = status_of(store, "e1")
    assert row["status"] == "dead" and row["attempts"] == 3 and row["last_status"] == 500
    assert row["last_error"].startswith("gave up after 3 tries")
    assert [r["event_id"] for r in store.webhook_deliveries("dead")] == ["e1"]
    # nothing more is sent for a dead delivery
    assert deliver(store, config)["tries"] == 0 and len(receiver.requests) == 3

    assert store.replay_webhooks(event_ids=["e1"]) == 1
    assert status_of(store, "e1")["attempts"] == 0
    run = deliver(store, config)
    assert run["delivered"] == 1
    assert [a["attempt"] for a in store.webhook_attempts("crm", "e1")] == [1, 2, 3, 4]
    assert store.webhook_counts() == {"pending": 0, "delivered": 1, "dead": 0}


def test_a_4xx_is_dead_at_once(store, receiver, secret):
    queue(store, "e1", "e2", lead="L-0")
    receiver.answer((400, 0.0))
    run = deliver(store, hook_config(receiver.url))

    assert run["dead"] == 1 and run["delivered"] == 1 and run["tries"] == 2
    assert status_of(store, "e1")["status"] == "dead"
    assert status_of(store, "e1")["attempts"] == 1
    assert status_of(store, "e2")["status"] == "delivered"


def test_never_delivered_twice_for_the_same_key(store, receiver, secret):
    assert queue(store, "e1", "e2", lead="L-0") == 2
    assert queue(store, "e1", "e2") == 0  # enqueueing again is a no-op
    config = hook_config(receiver.url)
    deliver(store, config)
    assert queue(store, "e1") == 0  # even once delivered
    deliver(store, config)
    assert store.replay_webhooks(event_ids=["e1", "e2"]) == 0  # delivered: not replayed
    assert store.replay_webhooks(all_dead=True) == 0
    deliver(store, config)

    keys = [r.headers["Idempotency-Key"] for r in receiver.requests]
    assert sorted(keys) == ["e1", "e2"]
    assert keys == ["e1", "e2"]  # one lead's events: in the order enqueued


def test_connection_refused_is_retried_and_ends_dead(store, secret):
    queue(store, "e1", "e2", lead="L-0")  # one lead: one lane
    closed = Receiver()
    url = closed.url
    closed.close()  # nobody listens on that port any more
    run = deliver(store, hook_config(url, max_attempts=2))

    row = status_of(store, "e1")
    assert row["status"] == "dead" and row["last_status"] is None
    assert "refused" in row["last_error"].lower()
    # a silent host ends its endpoint's round: e2 waited behind e1 without a try charged
    assert run["tries"] == 2
    assert status_of(store, "e2")["status"] == "pending"
    assert status_of(store, "e2")["attempts"] == 0
    assert run["waiting"] == 1


def test_leads_are_served_in_parallel_lanes_each_in_order(store, receiver, secret):
    ids = [f"e{i:02d}" for i in range(12)]
    for i, event_id in enumerate(ids):
        queue(store, event_id, lead=f"L-{i % 3}")
    receiver.answer(*[(200, 0.05)] * 12)  # a slow receiver: 50 ms a request
    run = deliver(store, hook_config(receiver.url))

    assert run["delivered"] == 12
    assert receiver.most_in_flight >= 2  # not one by one
    got = [r.headers["Idempotency-Key"] for r in receiver.requests]
    assert sorted(got) == ids
    for lead in range(3):  # each lead's events in the order queued
        mine = [k for k in got if int(k[1:]) % 3 == lead]
        assert mine == sorted(mine)


def test_missing_secret_is_one_clear_error_and_nothing_is_sent(store, receiver, monkeypatch):
    monkeypatch.delenv(SECRET_ENV, raising=False)
    queue(store, "e1")
    with pytest.raises(MissingSecretError, match=SECRET_ENV):
        deliver(store, hook_config(receiver.url))
    assert receiver.requests == []
    assert status_of(store, "e1")["status"] == "pending"


def test_deliveries_of_an_endpoint_not_configured_are_left_alone(store, receiver, secret):
    queue(store, "e1", endpoint="gone")
    assert deliver(store, hook_config(receiver.url))["tries"] == 0
    assert receiver.requests == []
    assert status_of(store, "e1")["status"] == "pending"
