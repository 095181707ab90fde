"""`notify(settings, batch_id)` and `leadscore webhooks ...` against a real local receiver.

The settings come from the shipped leadscore.yaml with two endpoints on a receiver
started by the test (127.0.0.1, port 0); two batches are published through the store.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from leadscore.pipelines.cli import app
from leadscore.pipelines.notify import notify
from leadscore.pipelines.settings import Settings, load_settings
from leadscore.serving.store import ScoreStore
from leadscore.serving.webhooks.events import NotPublishedError, event_id
from leadscore.serving.webhooks.signing import verify
from tests.conftest import ROOT
from tests.serving.test_store import AS_OF, _frame
from tests.serving.test_webhooks_deliver import SECRET_ENV, Receiver
from tests.serving.test_webhooks_events import SECOND, two_batches


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def write_config(folder: Path, url: str, max_attempts: int = 2) -> Path:
    raw = yaml.safe_load((ROOT / "leadscore.yaml").read_text())
    raw["webhooks"].update(
        {
            "endpoints": [
                {
                    "name": "crm",
                    "url": url,
                    "secret_env": SECRET_ENV,
                    "events": ["grade_up", "grade_down", "new_top_lead"],
                },
                {
                    "name": "ops",
                    "url": f"{url}/ops",
                    "secret_env": SECRET_ENV,
                    "events": ["threshold", "assigned"],
                },
            ],
            "max_attempts": max_attempts,
            "backoff_seconds": 0.02,
            "backoff_max_seconds": 0.05,
            "timeout_seconds": 0.5,
        }
    )
    path = folder / "leadscore.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture
def settings(tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv(SECRET_ENV, "whsec_notify")
    return load_settings(write_config(tmp_path, receiver.url))


@pytest.fixture
def store(settings: Settings) -> Iterator[ScoreStore]:
    store = ScoreStore(settings.store)
    store.create()
    yield store
    store.close()


def test_notify_delivers_each_endpoint_its_signed_events_once(settings, store, receiver):
    _, second = two_batches(store)
    result = notify(settings, second)

    assert result == {
        "batch_id": second,
        "events": 10,
        "enqueued": 10,
        "pending": 0,
        "delivered": 10,
        "dead": 0,
        "tries": 10,
    }
    for path in ("/hooks", "/hooks/ops"):
        mine = [r for r in receiver.requests if r.path == path]
        assert len(mine) == 5
    # each endpoint gets its events; those of one lead in the order queued
    got = {
        path: [
            (r.headers["Leadscore-Event"], json.loads(r.body)["lead_id"])
            for r in receiver.requests
            if r.path == path
        ]
        for path in ("/hooks", "/hooks/ops")
    }
    assert sorted(got["/hooks"]) == [
        ("grade_down", "L2"),
        ("grade_down", "L4"),
        ("grade_up", "L1"),
        ("new_top_lead", "L1"),
        ("new_top_lead", "L6"),
    ]
    assert [e for e, lead in got["/hooks"] if lead == "L1"] == ["grade_up", "new_top_lead"]
    assert sorted(got["/hooks/ops"]) == [
        ("assigned", "L2"),
        ("assigned", "L3"),
        ("assigned", "L6"),
        ("threshold", "L1"),
        ("threshold", "L2"),
    ]
    assert [e for e, lead in got["/hooks/ops"] if lead == "L2"] == ["threshold", "assigned"]
    for request in receiver.requests:
        verify(request.body, request.headers["Leadscore-Signature"], "whsec_notify")
        body = json.loads(request.body)
        assert body["batch_id"] == second and body["id"] == request.headers["Idempotency-Key"]

    again = notify(settings, second)  # the same batch again: nothing new, nothing sent
    assert again["enqueued"] == 0 and again["tries"] == 0 and again["delivered"] == 10
    assert len(receiver.requests) == 10


def test_nothing_is_sent_for_a_batch_that_did_not_publish(settings, store, receiver):
    two_batches(store)

    def broken(records):
        raise RuntimeError("disk full")

    store_b = ScoreStore(settings.store)
    store_b._insert_chunk = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="disk full"):
        store_b.publish(_frame(SECOND), model_version="1", as_of=AS_OF, batch_id="b-failed")
    store_b.close()

    with pytest.raises(NotPublishedError, match="b-failed is 'failed'"):
        notify(settings, "b-failed")
    assert receiver.requests == []
    assert store.webhook_deliveries() == []


def test_without_endpoints_notify_only_checks_the_batch(settings, store, receiver):
    _, second = two_batches(store)
    quiet = settings.model_copy(
        update={"webhooks": settings.webhooks.model_copy(update={"endpoints": []})}
    )
    assert notify(quiet, second) == {"batch_id": second, "events": 0, "enqueued": 0, "tries": 0}
    with pytest.raises(NotPublishedError):
        notify(quiet, "never-written")
    assert receiver.requests == []


def invoke(*args: str) -> object:
    return CliRunner().invoke(app, ["webhooks", *args])


def test_cli_log_replay_and_deliver(tmp_path, settings, store, receiver, monkeypatch):
    config = str(tmp_path / "leadscore.yaml")
    _, second = two_batches(store)
    doomed = event_id("grade_up", second, "L1")
    receiver.answer(*[(500, 0.0)] * 2, only=doomed)  # dies after its 2 tries
    result = notify(settings, second)
    assert result["dead"] == 1 and result["delivered"] == 9
    (dead,) = store.webhook_deliveries("dead")
    assert dead["event_id"] == doomed

    shown = invoke("log", "--status", "dead", "--config", config)
    assert shown.exit_code == 0, shown.output
    header, line = shown.stdout.strip().splitlines()
    assert header.split("\t")[:5] == ["created_at", "endpoint", "event", "lead_id", "status"]
    cells = line.split("\t")
    assert cells[1:7] == ["crm", "grade_up", "L1", "dead", "2", "500"]
    assert cells[7] == dead["event_id"] and cells[8].startswith("gave up after 2 tries")
    everything = invoke("log", "--config", config)
    assert len(everything.stdout.strip().splitlines()) == 11
    last = invoke("log", "--limit", "3", "--config", config).stdout.strip().splitlines()
    assert [line.split("\t")[3] for line in last[1:]] == ["L2", "L3", "L6"]  # ops' assigned

    assert invoke("deliver", "--config", config).stdout.strip().startswith('{"tries": 0')
    replayed = invoke("replay", "--event-id", dead["event_id"], "--config", config)
    assert replayed.exit_code == 0, replayed.output
    out = json.loads(replayed.stdout)
    assert out["replayed"] == 1 and out["delivered"] == 10 and out["dead"] == 0
    assert len(receiver.requests) == 12  # 2 failed tries, then the replay: once each
    again = json.loads(invoke("replay", "--all-dead", "--config", config).stdout)
    assert again["replayed"] == 0 and len(receiver.requests) == 12


def test_cli_expected_failures_are_one_line(tmp_path, settings, store, receiver, monkeypatch):
    config = str(tmp_path / "leadscore.yaml")
    nothing = invoke("replay", "--config", config)
    assert nothing.exit_code == 2
    assert (
        nothing.stderr
        == "leadscore: webhooks replay: give --event-id ID, --batch ID or --all-dead\n"
    )
    bad = invoke("log", "--status", "lost", "--config", config)
    assert bad.exit_code == 2 and "--status must be one of pending" in bad.stderr

    _, second = two_batches(store)
    monkeypatch.delenv(SECRET_ENV)
    with pytest.raises(Exception, match=SECRET_ENV):
        notify(settings, second)  # queued, not sent
    assert receiver.requests == [] and store.webhook_counts()["pending"] == 10
    missing = invoke("deliver", "--config", config)
    assert missing.exit_code == 2
    assert missing.stderr.count("\n") == 1 and SECRET_ENV in missing.stderr
    assert "Traceback" not in missing.output
