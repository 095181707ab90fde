"""Schemathesis against the app's own OpenAPI schema: no input may cause a server error.

Every documented operation (scores, lead, changes, on-demand score with a real fitted
model, healthz) gets generated valid and invalid inputs through the ASGI app in process;
each response must be below 500 and carry no traceback. Bounded: a few dozen examples per
operation, no deadline, so the run stays within ~30 s.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from leadscore.serving.api import ApiConfig, create_app
from tests.serving.test_api import AUTH, TOKEN, fitted_scorer, two_batches

__all__ = ["fitted_scorer"]  # the session fixture, shared with test_api (fitted once)

import pytest

MAX_EXAMPLES = 30


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory, fitted_scorer):
    scorer = fitted_scorer[0]
    folder = tmp_path_factory.mktemp("fuzz")
    store, _ = two_batches(f"sqlite:///{folder}/s.db")
    app = create_app(store.config, ApiConfig(tokens=[TOKEN]), scorer)
    return schemathesis.openapi.from_asgi("/openapi.json", app, headers=AUTH)


def _fuzzer(operation, label: str, counts: dict[str, int]):
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

    return fuzz


def test_no_input_causes_a_server_error(api_schema):
    counts: dict[str, int] = {}
    for result in api_schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        counts[label] = 0
        _fuzzer(operation, label, counts)()
    print(f"\nschemathesis examples per operation: {counts}")
    assert set(counts) == {
        "GET /healthz",
        "GET /v1/scores",
        "GET /v1/leads/{lead_id}",
        "GET /v1/changes",
        "POST /v1/score",
    }
    assert counts.pop("GET /healthz") >= 1  # no parameters: one case is all there is
    assert all(n >= MAX_EXAMPLES // 2 for n in counts.values()), counts
