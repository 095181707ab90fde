"""The call-list API (serving/calls.py): ``/v1/reps``, ``/v1/reps/{id}/calls`` and
``/v1/calls/unassigned`` over a real SQLite store whose ``calls`` rows are inserted for
its published batches as the score flow writes them (store schema 6)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert

from leadscore.models.routing.config import Rep
from leadscore.serving.api import PAGE_TOKENS_ENV, TOKENS_ENV, ApiConfig, create_app
from leadscore.serving.store import ScoreStore, StoreConfig
from leadscore.serving.store.outbound_schema import calls_table
from tests.serving.test_store import AS_OF, make_scores

TOKEN = "api-token"
PAGE_TOKEN = "rep-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

TEAM = [
    Rep(id="alice", name="Alice Moreau", capacity=3, territories=["US", "GB"], seniority="senior"),
    Rep(id="bashir", name="Bashir Okafor", capacity=2, skills=["enterprise"]),
    Rep(id="chen", capacity=1),  # unnamed, and no call today
]

# make_scores(7) lead ids by rank: 00042, L-00-0001 ... L-00-0006
CALLS: list[tuple[str, str | None, int | None, float, str]] = [
    # (lead_id, rep_id, position, expected, reason); inserted out of order on purpose
    ("L-00-0003", "alice", 3, 0.60, "territory US"),
    ("00042", "alice", 1, 0.93, "owner: Alice Moreau"),
    ("L-00-0002", "alice", 2, 0.71, "territory GB, best expected value"),
    ("L-00-0001", "bashir", 1, 0.82, "skill enterprise"),
    ("L-00-0005", "bashir", 2, 0.38, "+1 skill match; =formula-looking reason"),
    ("L-00-0004", None, None, 0.49, "no territory match (BR)"),
    ("L-00-0006", None, None, 0.27, "all capacity used"),
]


def publish_with_calls(
    store: ScoreStore,
    calls: list[tuple[str, str | None, int | None, float, str]] = CALLS,
    *,
    frame: pd.DataFrame | None = None,
    days: int = 0,
    method: str = "score_aware",
) -> Any:
    """Publish a batch (``make_scores(7)`` unless given) and write its ``calls`` rows."""
    info = store.publish(
        make_scores(7) if frame is None else frame,
        model_version="5",
        as_of=AS_OF + timedelta(days=days),
    )
    rows = [
        {
            "batch_id": info.batch_id,
            "lead_id": lead,
            "rep_id": rep,
            "position": position,
            "expected": expected,
            "method": method,
            "reason": reason,
        }
        for lead, rep, position, expected, reason in calls
    ]
    if rows:
        with store.engine.begin() as conn:
            conn.execute(insert(calls_table), rows)
    return info


@pytest.fixture
def store(tmp_path):
    store = ScoreStore(StoreConfig(url=f"sqlite:///{tmp_path}/scores.db"))
    store.create()
    yield store
    store.close()


def client_for(store: ScoreStore, monkeypatch, **config: Any) -> TestClient:
    monkeypatch.delenv(TOKENS_ENV, raising=False)
    monkeypatch.delenv(PAGE_TOKENS_ENV, raising=False)
    api = ApiConfig(tokens=[TOKEN], page_tokens=[PAGE_TOKEN], **config)
    return TestClient(create_app(store.config, api, store=store, team=TEAM))


PATHS = ("/v1/reps", "/v1/reps/alice/calls", "/v1/calls/unassigned")


def test_every_call_route_needs_an_api_token(store, monkeypatch):
    publish_with_calls(store)
    client = client_for(store, monkeypatch)
    page = {"Authorization": f"Bearer {PAGE_TOKEN}"}
    for path in PATHS:
        for headers in ({}, {"Authorization": "Bearer wrong"}, page):
            response = client.get(path, headers=headers)
            assert response.status_code == 401, (path, headers)
            assert response.json() == {"detail": "missing or invalid bearer token"}
        assert client.get(path, headers=AUTH).status_code == 200, path


def test_a_reps_list_in_call_order_with_reasons_in_words(store, monkeypatch):
    info = publish_with_calls(store)
    body = client_for(store, monkeypatch).get("/v1/reps/alice/calls", headers=AUTH).json()
    assert body["batch_id"] == info.batch_id and body["model_version"] == "5"
    assert body["as_of"] == "2026-11-22T03:15:00Z"
    assert body["rep"] == {
        "id": "alice",
        "name": "Alice Moreau",
        "capacity": 3,
        "territories": ["US", "GB"],
        "skills": [],
        "languages": [],
        "seniority": "senior",
        "assigned": 3,
        "expected": pytest.approx(0.93 + 0.71 + 0.60),
    }
    calls = body["calls"]
    assert [(c["position"], c["lead_id"]) for c in calls] == [
        (1, "00042"),
        (2, "L-00-0002"),
        (3, "L-00-0003"),
    ]
    first = calls[0]
    assert first["rep_id"] == "alice" and first["reason"] == "owner: Alice Moreau"
    assert first["name"] == "Zoë Ångström 0" and first["company"] == "Acme, Inc."
    assert first["email"] == "zoe0@example.com" and first["record_id"] == "00Q00000"
    assert (first["score"], first["grade"], first["rank"]) == (93, "A", 1)
    assert first["probability"] == pytest.approx(0.93)
    assert first["expected"] == pytest.approx(0.93) and first["method"] == "score_aware"
    assert first["cell"] == "call_now" and first["last_activity"] == "pricing-page view"
    assert first["next_step"] is None and calls[1]["next_step"] is None
    assert calls[2]["next_step"] == "webinar attended"
    assert calls[2]["next_step_gain"] == pytest.approx(0.03)
    # the stored v1 reasons decoded into words, as /v1/leads/{id} serves them
    lead = client_for(store, monkeypatch).get("/v1/leads/00042", headers=AUTH).json()
    assert first["reasons"] == lead["current"]["reasons"]
    assert [(r["text"], r["direction"]) for r in first["reasons"]] == [
        ('Visited the pricing page 7 times, "recently"', "+"),
        ("No high-intent activity in 45 days", "-"),
    ]


def test_unknown_rep_is_404_and_a_rep_without_calls_an_empty_list(store, monkeypatch):
    publish_with_calls(store)
    client = client_for(store, monkeypatch)
    missing = client.get("/v1/reps/zed/calls", headers=AUTH)
    assert missing.status_code == 404
    assert missing.json() == {"detail": "no rep 'zed' in routing.reps"}
    empty = client.get("/v1/reps/chen/calls", headers=AUTH).json()
    assert empty["calls"] == [] and empty["rep"]["name"] == "chen"
    assert (empty["rep"]["assigned"], empty["rep"]["expected"]) == (0, 0.0)


def test_before_the_first_batch_the_lists_are_empty(store, monkeypatch):
    client = client_for(store, monkeypatch)
    reps = client.get("/v1/reps", headers=AUTH).json()
    assert reps["batch_id"] is None and reps["unassigned"] == 0
    assert [r["assigned"] for r in reps["reps"]] == [0, 0, 0]
    calls = client.get("/v1/reps/alice/calls", headers=AUTH).json()
    assert calls["batch_id"] is None and calls["calls"] == []
    unassigned = client.get("/v1/calls/unassigned", headers=AUTH).json()
    assert unassigned == {
        "batch_id": None,
        "as_of": None,
        "total": 0,
        "calls": [],
        "next_after": None,
    }


def test_the_team_with_todays_counts(store, monkeypatch):
    info = publish_with_calls(store)
    body = client_for(store, monkeypatch).get("/v1/reps", headers=AUTH).json()
    assert body["batch_id"] == info.batch_id and body["unassigned"] == 2
    got = {r["id"]: (r["name"], r["capacity"], r["assigned"], r["expected"]) for r in body["reps"]}
    assert got == {
        "alice": ("Alice Moreau", 3, 3, pytest.approx(2.24)),
        "bashir": ("Bashir Okafor", 2, 2, pytest.approx(1.20)),
        "chen": ("chen", 1, 0, 0.0),
    }
    assert [r["id"] for r in body["reps"]] == ["alice", "bashir", "chen"]  # the team's order


def test_unassigned_leads_are_paged_best_first_with_their_reason(store, monkeypatch):
    info = publish_with_calls(store)
    client = client_for(store, monkeypatch, page_size=1, max_page_size=5)
    first = client.get("/v1/calls/unassigned", headers=AUTH).json()
    assert first["batch_id"] == info.batch_id and first["total"] == 2
    assert [(c["lead_id"], c["rep_id"], c["position"]) for c in first["calls"]] == [
        ("L-00-0004", None, None)
    ]
    assert first["calls"][0]["reason"] == "no territory match (BR)"
    assert first["calls"][0]["reasons"][0]["direction"] == "+"
    assert first["next_after"] == 5
    second = client.get(
        "/v1/calls/unassigned", params={"after": first["next_after"]}, headers=AUTH
    ).json()
    assert [c["lead_id"] for c in second["calls"]] == ["L-00-0006"]
    assert second["calls"][0]["reason"] == "all capacity used"
    assert second["next_after"] is None
    both = client.get("/v1/calls/unassigned", params={"limit": 5}, headers=AUTH).json()
    assert [c["lead_id"] for c in both["calls"]] == ["L-00-0004", "L-00-0006"]
    too_many = client.get("/v1/calls/unassigned", params={"limit": 6}, headers=AUTH)
    assert too_many.status_code == 422 and too_many.json() == {"detail": "limit must be <= 5"}
    assert client.get("/v1/calls/unassigned?after=-1", headers=AUTH).status_code == 422


def test_only_the_current_batch_is_read_after_a_second_publish(store, monkeypatch):
    publish_with_calls(store)
    client = client_for(store, monkeypatch)
    before = client.get("/v1/reps", headers=AUTH).json()  # counts kept for this batch ...
    assert [r["assigned"] for r in before["reps"]] == [3, 2, 0] and before["unassigned"] == 2
    frame = make_scores(7, seed=1)  # new lead ids: L-01-0001 ...; 00042 stays
    second = publish_with_calls(
        store,
        [
            ("L-01-0002", "alice", 1, 0.7, "territory GB"),
            ("00042", "bashir", 1, 0.9, "rebalanced"),
            ("L-01-0004", None, None, 0.5, "all capacity used"),
        ],
        frame=frame,
        days=1,
    )
    alice = client.get("/v1/reps/alice/calls", headers=AUTH).json()
    assert alice["batch_id"] == second.batch_id
    assert [c["lead_id"] for c in alice["calls"]] == ["L-01-0002"]
    bashir = client.get("/v1/reps/bashir/calls", headers=AUTH).json()
    assert [(c["lead_id"], c["score"]) for c in bashir["calls"]] == [("00042", 93)]
    assert bashir["calls"][0]["reason"] == "rebalanced"
    reps = client.get("/v1/reps", headers=AUTH).json()  # ... and dropped for the next one
    assert reps["batch_id"] == second.batch_id
    assert [r["assigned"] for r in reps["reps"]] == [1, 1, 0] and reps["unassigned"] == 1
    unassigned = client.get("/v1/calls/unassigned", headers=AUTH).json()
    assert [c["lead_id"] for c in unassigned["calls"]] == ["L-01-0004"]
    assert unassigned["total"] == 1 and unassigned["batch_id"] == second.batch_id


def test_a_batch_without_calls_leaves_every_list_empty(store, monkeypatch):
    """A batch published with no team (or before HC's writer): no call rows, no error."""
    publish_with_calls(store)
    publish_with_calls(store, [], frame=make_scores(7, seed=2), days=1)
    client = client_for(store, monkeypatch)
    assert client.get("/v1/reps/alice/calls", headers=AUTH).json()["calls"] == []
    assert client.get("/v1/reps", headers=AUTH).json()["unassigned"] == 0


def test_calls_are_in_the_openapi_schema(store, monkeypatch):
    schema = client_for(store, monkeypatch).get("/openapi.json", headers=AUTH).json()
    for path in ("/v1/reps", "/v1/reps/{rep_id}/calls", "/v1/calls/unassigned"):
        assert schema["paths"][path]["get"]["tags"] == ["calls"]
    call = schema["components"]["schemas"]["Call"]["properties"]
    assert {"position", "reasons", "expected", "reason", "next_step"} <= set(call)
    assert schema["paths"]["/v1/reps/{rep_id}/calls"]["get"]["responses"]["404"]
