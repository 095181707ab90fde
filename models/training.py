"""Fit the model and the rules on the same training rows.

Pure functions over frames: the train flow calls them one per task, and tests call them
directly on small data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np
import pandas as pd

from leadscore.features.builder import AS_OF
from leadscore.features.registry import FeatureRegistry
from leadscore.models import selection, subscores
from leadscore.models.config import ModelConfig, RulesConfig
from leadscore.models.factory import LeadModel, candidate_models, make_model
from leadscore.models.linear import LogisticLeadModel
from leadscore.models.rules import RuleScorer
from leadscore.models.segments import SegmentedModel, make_segmented

FittedModel = LeadModel | LogisticLeadModel | SegmentedModel
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
    X: pd.DataFrame,
    y: np.ndarray,
    registry: FeatureRegistry,
    config: ModelConfig,
    *,
    metric: str = "roc_auc",
    order: selection.SliceSpec | None = None,
) -> FittedModel:
    """Fit the configured model on rows ordered oldest first.

    ``model.kind: auto`` first chooses the family on an inner slice of these rows
    (``models.selection``; ``metric`` is the promotion metric, ``order`` how the rows are
    ordered: by default by ``as_of`` when every row has one, else by position) and fits the
    winner on every row; its evidence is the model's ``selection_``. With
    ``config.segments.column`` set, one LightGBM per large-enough segment plus a shared
    fallback (``models.segments``; ``auto`` is the configured LightGBM there: segments
    already choose on held-out evidence); otherwise one model for every row. The fitted
    model carries ``registry`` (``registry_``) and the columns it reads
    (``input_columns_``): scoring explains with them, and the gate names the columns a
    champion misses (``models.base.LeadScorer``). It also keeps the reference quantiles
    of its fit and engagement sums over these training rows (``subscore_quantiles_``),
    which put each scored lead's sub-scores on a 0-100 scale (``models.subscores``).
    """
    categorical, numeric = model_features(X, registry)
    if config.segments.column is not None:
        base = make_model(config, categorical, numeric)
        fitted: FittedModel = make_segmented(base, config.segments).fit(X, y)  # type: ignore[arg-type]
        if config.kind == "auto":
            fitted.selection_ = selection.unjudged(
                "segments on: one configured LightGBM per segment, not judged", metric, "lightgbm"
            )
    elif config.kind == "auto":
        fitted = _fit_auto(X, y, config, categorical, numeric, metric, order)
    else:
        fitted = make_model(config, categorical, numeric).fit(X, y)
    fitted.registry_ = registry
    fitted.input_columns_ = list(fitted.features)
    fitted.subscore_quantiles_ = subscores.model_quantiles(fitted, X, registry)
    return fitted


def _default_order(X: pd.DataFrame) -> selection.SliceSpec:
    """Rows ordered by ``as_of`` when every row has one, else by position; no embargo."""
    dated = AS_OF in X.columns and len(X) > 0 and bool(X[AS_OF].notna().all())
    return selection.SliceSpec("time" if dated else "rows")


def _fit_auto(
    X: pd.DataFrame,
    y: np.ndarray,
    config: ModelConfig,
    categorical: list[str],
    numeric: list[str],
    metric: str,
    order: selection.SliceSpec | None,
) -> LeadModel | LogisticLeadModel:
    """Judge the candidates on the inner slice, fit the winner on every row."""
    y = np.asarray(y, dtype=np.int64)
    spec = order or _default_order(X)
    as_of = X[AS_OF] if AS_OF in X.columns else None
    candidates = candidate_models(config, categorical, numeric)

    def judged(spec: selection.SliceSpec) -> dict[str, object]:
        inner = selection.inner_slice(y, as_of, spec, config.selection.inner_fraction, config.seed)
        return selection.select(
            candidates,
            X,
            y,
            inner,
            metric=metric,
            margin=config.selection.margin,
            min_class_rows=config.selection.min_class_rows,
        )

    evidence = judged(spec)
    if evidence["chosen"] is None and pd.Timedelta(spec.embargo) > pd.Timedelta(0):
        # A short history (Olist: a year, a 90-day horizon) leaves the gapped inner split
        # without conversions; judging without the gap still reads training rows only.
        retry = judged(replace(spec, embargo=selection.NO_EMBARGO))
        if retry["chosen"] is not None:
            retry["reason"] = (
                f"{retry['reason']}, judged without the horizon gap: with it, {evidence['reason']}"
            )
            evidence = retry
    model = candidates[evidence["chosen"] or "lightgbm"].fit(X, y)
    model.selection_ = evidence
    return model


def fit_rules(
    X: pd.DataFrame,
    y: np.ndarray | None,
    rules: RulesConfig,
    activity_points: Mapping[str, float],
) -> RuleScorer:
    """The points baseline; with labels, its points are also mapped to conversion rates."""
    return RuleScorer(rules=rules, activity_points=dict(activity_points)).fit(X, y)
