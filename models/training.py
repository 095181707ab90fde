"""Fit the model and the rules on the same training rows.

Pure functions over frames: the train flow calls them one per task, and tests call them
directly on small data.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from leadscore.features.registry import FeatureRegistry
from leadscore.models.config import ModelConfig, RulesConfig
from leadscore.models.factory import LeadModel, make_model
from leadscore.models.rules import RuleScorer
from leadscore.models.segments import SegmentedModel, make_segmented

FittedModel = LeadModel | SegmentedModel
"""What ``fit_model`` returns: one model, or one per segment with a shared fallback."""


class InsufficientDataError(ValueError):
    """Too little history to learn from; the message says what is missing."""


def check_minimum(
    lead_ids: pd.Series, y: np.ndarray, min_leads: int, min_conversions: int
) -> dict[str, int]:
    """Refuse to train below the configured minimum of leads and of converted leads.

    The defaults (1,000 leads, 120 conversions) are Salesforce Einstein's published floor.
    """
    n_leads = int(lead_ids.nunique())
    n_converted = int(lead_ids[np.asarray(y) == 1].nunique())
    missing = []
    if n_leads < min_leads:
        missing.append(f"{n_leads} leads (need {min_leads})")
    if n_converted < min_conversions:
        missing.append(f"{n_converted} converted leads (need {min_conversions})")
    if missing:
        raise InsufficientDataError(
            "too little history to train: the training window has "
            + " and ".join(missing)
            + "; add history, lower snapshots.min_leads / min_conversions, or pass --force"
        )
    return {"train_leads": n_leads, "train_converted_leads": n_converted}


def model_features(X: pd.DataFrame, registry: FeatureRegistry) -> tuple[list[str], list[str]]:
    """(categorical, numeric) registry features present in ``X``, in registry order."""
    present = [n for n in registry.names if n in X.columns]
    categorical = [n for n in present if registry[n].kind == "categorical"]
    numeric = [n for n in present if registry[n].kind == "numeric"]
    return categorical, numeric


def fit_model(
    X: pd.DataFrame, y: np.ndarray, registry: FeatureRegistry, config: ModelConfig
) -> FittedModel:
    """Fit the calibrated LightGBM on rows ordered oldest first.

    With ``config.segments.column`` set, one such model per large-enough segment plus a
    shared fallback (``models.segments``); otherwise one model for every row. The fitted
    model carries ``registry`` (``registry_``) and the columns it reads
    (``input_columns_``): scoring explains with them, and the gate names the columns a
    champion misses (``models.base.LeadScorer``).
    """
    categorical, numeric = model_features(X, registry)
    base = make_model(config, categorical, numeric)
    fitted = (
        base.fit(X, y)
        if config.segments.column is None
        else make_segmented(base, config.segments).fit(X, y)
    )
    fitted.registry_ = registry
    fitted.input_columns_ = list(fitted.features)
    return fitted


def fit_rules(
    X: pd.DataFrame,
    y: np.ndarray | None,
    rules: RulesConfig,
    activity_points: Mapping[str, float],
) -> RuleScorer:
    """The points baseline; with labels, its points are also mapped to conversion rates."""
    return RuleScorer(rules=rules, activity_points=dict(activity_points)).fit(X, y)
