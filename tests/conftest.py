"""Shared fixtures. The process environment is prepared before the stack is imported."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

os.environ.setdefault("PREFECT_HOME", str(ROOT / ".prefect-test"))
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MPLCONFIGDIR", str(ROOT / ".mplconfig"))

from features.config import ActivityType, AttributeConfig, FeatureConfig  # noqa: E402


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


@pytest.fixture
def small_config() -> FeatureConfig:
    """Four declared types, windows 7/30 days, half-life 10 days: easy to work by hand."""
    return FeatureConfig(
        attributes=AttributeConfig(categorical=["industry"], numeric=["employees"]),
        activity_types={
            "email_open": ActivityType(label="email open", family="email", points=1),
            "webinar_signup": ActivityType(label="webinar sign-up", family="event", points=8),
            "meeting_booked": ActivityType(
                label="meeting booked", family="sales", points=10, high_intent=True
            ),
            "unsubscribe": ActivityType(label="unsubscribe", family="email", points=-5),
        },
        windows_days=[7, 30],
        half_life_days=10,
    )


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect server for every flow test of the session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def shared_file(*parts: str) -> Path:
    """A file of ../shared/data; fails under CI (it must be there), else skips, saying why."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.is_file():
        message = f"shared data not found at {path}: this test needs ../shared/data"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path
