"""Shared fixtures. The process environment is prepared before the stack is imported."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
"""The pytest-xdist worker running this process ("gw0", ...; "" without xdist)."""

# one Prefect home per worker: the temporary server of every `leadscore` a test starts
# keeps its SQLite database there, which two servers must not migrate or write at once
os.environ.setdefault("PREFECT_HOME", str(ROOT / ".prefect-test" / WORKER))
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MPLCONFIGDIR", str(ROOT / ".mplconfig"))

from leadscore.features.config import ActivityType, AttributeConfig, FeatureConfig  # noqa: E402


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


@dataclass(frozen=True)
class SmallModel:
    """A model trained on a small synthetic CRM, and that CRM's open leads as of its end."""

    settings: Any
    registry: Any
    model: Any
    rules: Any
    crm: Any
    end: pd.Timestamp
    X_open: pd.DataFrame


def train_small_model(n_leads: int, seed: int, *, all_leads_open: bool = False) -> SmallModel:
    """Fit the configured model on out-of-time training snapshots of a synthetic CRM
    (``models.recipe.train``, as the train flow does).

    ``X_open`` holds the features of the open leads (or of every lead) as of the data end.
    """
    from leadscore.features.builder import build_features, entities_at
    from leadscore.models import recipe
    from leadscore.pipelines.settings import load_settings
    from leadscore.synthetic import generate_crm

    settings = load_settings(ROOT / "leadscore.yaml")
    crm = generate_crm(n_leads, seed=seed)
    leads, acts = crm.leads, crm.activities
    end = leads["created_at"].max().floor("D") + pd.Timedelta(days=1)
    trained = recipe.train(leads, acts, end, settings)
    registry, model, rules = trained.data.registry, trained.model, trained.rules
    scored = leads if all_leads_open else leads[leads["status"] == "open"]
    X_open = build_features(leads, acts, entities_at(scored, end), settings.features)
    return SmallModel(settings, registry, model, rules, crm, end, X_open)


def publish_test_batch(parts: Any, store: Any, csv_path: Path, as_of: Any, **options: Any) -> Any:
    """``pipelines.batch.publish_spilled`` with the tests' batch labels (model "7", grades
    A-D; CSV chunks of 2 rows and the top 3 unless ``options`` say otherwise)."""
    from leadscore.pipelines.batch import publish_spilled

    options = {"chunk_rows": 2, "top": 3, **options}
    return publish_spilled(
        parts,
        store,
        model_version="7",
        as_of=pd.Timestamp(as_of),
        grade_order=list("ABCD"),
        csv_path=csv_path,
        **options,
    )


def two_file_settings(
    paths: dict[str, Path], partition_rows: int | None = None, **data: Any
) -> Any:
    """The project's settings reading ``paths["leads"]`` and ``paths["activities"]`` (more
    ``data`` settings as given, e.g. ``chunk_rows``), partitions of ``partition_rows``."""
    from leadscore.pipelines.settings import load_settings

    files = {name: {"path": str(paths[name])} for name in ("leads", "activities")}
    settings = load_settings(ROOT / "leadscore.yaml", data={**files, **data})
    if partition_rows is None:
        return settings
    scoring = settings.scoring.model_copy(update={"partition_rows": partition_rows})
    return settings.model_copy(update={"scoring": scoring})
