"""Fit the model and the rules on the same training rows; evaluate both on the same window.

Pure functions over frames: the train flow calls them one per task, and tests call them
directly on small data.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from features.registry import FeatureRegistry
from models.config import ModelConfig, RulesConfig
from models.evaluate import evaluate
from models.factory import LeadModel, make_model
from models.rules import RuleScorer


def model_features(X: pd.DataFrame, registry: FeatureRegistry) -> tuple[list[str], list[str]]:
    """(categorical, numeric) registry features present in ``X``, in registry order."""
    present = [n for n in registry.names if n in X.columns]
    categorical = [n for n in present if registry[n].kind == "categorical"]
    numeric = [n for n in present if registry[n].kind == "numeric"]
    return categorical, numeric


def fit_model(
    X: pd.DataFrame, y: np.ndarray, registry: FeatureRegistry, config: ModelConfig
) -> LeadModel:
    """Fit the calibrated LightGBM on rows ordered oldest first."""
    categorical, numeric = model_features(X, registry)
    return make_model(config, categorical, numeric).fit(X, y)


def fit_rules(
    X: pd.DataFrame,
    y: np.ndarray | None,
    rules: RulesConfig,
    activity_points: Mapping[str, float],
) -> RuleScorer:
    """The points baseline; with labels, its points are also mapped to conversion rates."""
    return RuleScorer(rules=rules, activity_points=dict(activity_points)).fit(X, y)


def model_metrics(model: LeadModel, X: pd.DataFrame, y: np.ndarray) -> dict[str, float]:
    return evaluate(y, model.raw_score(X), model.predict_proba(X)[:, 1])


def rules_metrics(rules: RuleScorer, X: pd.DataFrame, y: np.ndarray) -> dict[str, float]:
    return evaluate(y, rules.points(X), rules.predict_proba(X)[:, 1])
