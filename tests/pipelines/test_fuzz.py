"""Schemathesis against the app's own OpenAPI schema: no input may cause a server error.

Every documented operation (scores, lead, changes, on-demand score with a real fitted
model, monitor, call lists, healthz) gets generated valid and invalid inputs through the
ASGI app in process; each response must be below 500, carry no traceback and the
security headers (serving/guard.py), and the same case with a wrong token must be
refused (401: the gate runs before the body is read) but on /healthz; a body over the
limit (set to 8 KiB here) is answered 413. Bounded: a few dozen examples per operation,
no deadline, so the run stays within ~30 s.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from sqlalchemy import insert

from leadscore.serving.api import ApiConfig, create_app
from leadscore.serving.store.outbound_schema import calls_table
from tests.serving.test_api import AUTH, TOKEN, fitted_scorer, two_batches
from tests.serving.test_calls_api import TEAM as CALLS_TEAM

__all__ = ["fitted_scorer"]  # the session fixture, shared with test_api (fitted once)

import pytest

MAX_EXAMPLES = 30
CALL_KEYS = ("batch_id", "lead_id", "rep_id", "position", "expected", "reason", "method")


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory, fitted_scorer):
    scorer = fitted_scorer[0]
    folder = tmp_path_factory.mktemp("fuzz")
    store, (_, second) = two_batches(f"sqlite:///{folder}/s.db")
    calls = [("a", "alice", 1, 0.45, "territory US"), ("d", None, None, 0.05, "all capacity used")]
    with store.engine.begin() as conn:  # call lists of the current batch (schema 6)
        conn.execute(
            insert(calls_table),
            [
                dict(zip(CALL_KEYS, (second.batch_id, *call, "score_aware"), strict=True))
                for call in calls
            ],
        )
    config = ApiConfig(tokens=[TOKEN], max_body_bytes=8192)
    app = create_app(store.config, config, scorer, team=CALLS_TEAM)
    return schemathesis.openapi.from_asgi("/openapi.json", app, headers=AUTH)


def _fuzzer(operation, label: str, counts: dict[str, int], statuses: dict[str, set[int]]):
    """A hypothesis test of one operation: generated cases must not cause a 5xx."""

    @given(case=operation.as_strategy())
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: bounded time
    )
    def fuzz(case) -> None:
        counts[label] += 1
        response = case.call(headers=AUTH)
        assert response.status_code < 500, (
            f"{case.method} {case.formatted_path} {case.query} {case.body!r} -> "
            f"{response.status_code} {response.text[:300]}"
        )
        assert "Traceback" not in response.text
        headers = {k.lower(): v[0] for k, v in response.headers.items()}  # name -> values
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        statuses[label].add(response.status_code)
        if case.path != "/healthz":
            refused = case.call(headers={"Authorization": "Bearer wrong"})
            assert refused.status_code in (401, 413), (case.formatted_path, refused.status_code)

    return fuzz


def test_no_input_causes_a_server_error(api_schema):
    counts: dict[str, int] = {}
    statuses: dict[str, set[int]] = {}
    for result in api_schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        counts[label] = 0
        statuses[label] = set()
        _fuzzer(operation, label, counts, statuses)()
        if label == "POST /v1/score":  # the body limit, through the schema's own operation
            big = {"lead": {"lead_id": "x" * 9000, "created_at": "2025-01-01T00:00:00Z"}}
            over = operation.Case(body=big, media_type="application/json").call(headers=AUTH)
            assert over.status_code == 413, over.text
    print(f"\nschemathesis examples per operation: {counts}, statuses: {statuses}")
    assert set(counts) == {
        "GET /healthz",
        "GET /v1/scores",
        "GET /v1/leads/{lead_id}",
        "GET /v1/changes",
        "GET /v1/monitor",
        "POST /v1/score",
        "GET /v1/reps",
        "GET /v1/reps/{rep_id}/calls",
        "GET /v1/calls/unassigned",
    }
    assert counts.pop("GET /healthz") >= 1  # no parameters: one case is all there is
    assert counts.pop("GET /v1/reps") >= 1  # no parameters either
    assert all(n >= MAX_EXAMPLES // 2 for n in counts.values()), counts
