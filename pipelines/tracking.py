"""MLflow tracking, the model registry and the `champion` alias.

The experiment is created with an explicit artifact location (otherwise MLflow writes to
``./mlruns`` of whatever folder the command ran in). The promotion gate is declared in
config: a new version takes the alias only when it beats the rules baseline and the
current champion, re-scored on the same validation window, by the configured margins.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from models.config import PromotionGate
from models.factory import LeadModel
from pipelines.settings import TrackingConfig

# The fitted estimator holds a LightGBM booster and two project classes; skops refuses to
# load any type it is not told to trust. The list is written into the MLmodel at log time.
TRUSTED_TYPES = [
    "models.factory.LeadModel",
    "models.factory._Isotonic",
    "lightgbm.sklearn.LGBMClassifier",
    "lightgbm.basic.Booster",
    "collections.OrderedDict",
]
REQUIREMENTS = ("lightgbm", "scikit-learn", "pandas", "numpy", "skops")


@dataclass(frozen=True)
class Promotion:
    """What the gate decided for a new model version, and why."""

    promoted: bool
    reason: str
    champion_metric: float | None


def configure(tracking: TrackingConfig) -> MlflowClient:
    """Point MLflow at the configured store and make sure the experiment exists."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    mlflow.set_tracking_uri(tracking.tracking_uri)
    client = MlflowClient(tracking_uri=tracking.tracking_uri)
    if client.get_experiment_by_name(tracking.experiment) is None:
        Path(tracking.artifact_location).mkdir(parents=True, exist_ok=True)
        client.create_experiment(
            tracking.experiment, artifact_location=Path(tracking.artifact_location).as_uri()
        )
    mlflow.set_experiment(tracking.experiment)
    return client


def _requirements() -> list[str]:
    """Exact pins of what loading the model needs (saves MLflow ~4 s of inference)."""
    return [f"{name}=={metadata.version(name)}" for name in REQUIREMENTS]


def log_model(model: LeadModel, example: pd.DataFrame, model_name: str) -> str:
    """Log the fitted model (sklearn flavor, signature, input example); register; return version."""
    sample = example.head(5)
    signature = infer_signature(sample, model.predict_proba(sample)[:, 1])
    info = mlflow.sklearn.log_model(
        model,
        name="model",
        signature=signature,
        input_example=sample,
        pip_requirements=_requirements(),
        pyfunc_predict_fn="predict_proba",
        registered_model_name=model_name,
        skops_trusted_types=TRUSTED_TYPES,
    )
    return str(info.registered_model_version)


def log_json(payload: Any, artifact_file: str) -> None:
    mlflow.log_dict(json.loads(json.dumps(payload, default=str)), artifact_file)


def load_version(client: MlflowClient, model_name: str, version: str) -> LeadModel:
    del client
    return mlflow.sklearn.load_model(f"models:/{model_name}/{version}")


def champion_version(client: MlflowClient, tracking: TrackingConfig) -> str | None:
    """The version holding the champion alias, or None before the first promotion."""
    try:
        mv = client.get_model_version_by_alias(tracking.model_name, tracking.champion_alias)
    except MlflowException:
        return None
    return str(mv.version)


def load_champion(tracking: TrackingConfig) -> tuple[LeadModel, str]:
    """Load ``models:/<name>@champion``; a clear error when there is none yet."""
    client = configure(tracking)
    version = champion_version(client, tracking)
    if version is None:
        raise LookupError(
            f"no '{tracking.champion_alias}' version of model '{tracking.model_name}' in "
            f"{tracking.tracking_uri}: run `leadscore train` first"
        )
    model = mlflow.sklearn.load_model(f"models:/{tracking.model_name}@{tracking.champion_alias}")
    return model, version


def gate(new: float, rules: float, champion: float | None, config: PromotionGate) -> Promotion:
    """The declared promotion rule; pure, so it is tested without a tracking store."""
    metric = config.metric
    if not new > rules + config.min_margin_over_rules:
        return Promotion(
            False,
            f"{metric} {new:.4f} does not beat the rules ({rules:.4f}) "
            f"by more than {config.min_margin_over_rules}",
            champion,
        )
    if champion is not None and not new > champion + config.min_margin_over_champion:
        return Promotion(
            False,
            f"{metric} {new:.4f} does not beat the champion ({champion:.4f}) "
            f"by more than {config.min_margin_over_champion}",
            champion,
        )
    against = "no champion yet" if champion is None else f"champion {champion:.4f}"
    return Promotion(True, f"{metric} {new:.4f} beats rules {rules:.4f} and {against}", champion)


def promote(
    client: MlflowClient, tracking: TrackingConfig, version: str, decision: Promotion
) -> None:
    """Record the decision on the version; move the alias only if it passed."""
    client.set_model_version_tag(tracking.model_name, version, "promotion", decision.reason)
    client.set_model_version_tag(
        tracking.model_name, version, "promoted", str(decision.promoted).lower()
    )
    if decision.promoted:
        client.set_registered_model_alias(tracking.model_name, tracking.champion_alias, version)


def champion_metric_on(
    client: MlflowClient,
    tracking: TrackingConfig,
    X: pd.DataFrame,
    y: np.ndarray,
    metric_fn: Any,
) -> tuple[str, float] | None:
    """The current champion re-scored on this validation window, or None if there is none.

    A champion that cannot score these features (the feature set changed) counts as
    ``-inf``: the new model is the only one that fits the data as configured now.
    """
    version = champion_version(client, tracking)
    if version is None:
        return None
    model = load_version(client, tracking.model_name, version)
    try:
        return version, float(metric_fn(model, X, y))
    except (KeyError, ValueError):
        return version, float("-inf")
