"""Fit and engagement sub-scores on a 0-100 scale people read, and the lead's quadrant cell.

A lead's ``fit`` and ``engagement`` are log-odds sums (its SHAP contributions summed per
feature family, ``models.explain.family_sums``): exact, but "6.02" means nothing to a rep.
The sub-score is that sum as a percentile of the same sums over the leads the model
learnt from: at training time ``reference_quantiles`` keeps :data:`QUANTILE_POINTS`
quantiles of each family's sums over the training rows, and they travel with the fitted
model (its ``subscore_quantiles_``, so with the MLflow model and the champion). Scoring
interpolates each lead into them, so 80 means "more than 80% of the leads the model learnt
from", and the scale stays the same night after night until the model is retrained.

The two sub-scores place a lead in one of four cells ("how badly do we want them" x "how
badly do they want us"): ``call_now`` (both at or above their cut-off), ``nurture`` (fit
high, engagement low: wanted, not ready), ``educate`` (fit low, engagement high) and
``deprioritise``. A flat export has no activity log, so no engagement: its cell is read on
fit alone (``call_now`` or ``deprioritise``). A model saved before it carried quantiles
has no sub-scores and no cell (null).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Mapping

import numpy as np
import pandas as pd

from leadscore.features.registry import ENGAGEMENT, FIT, FeatureRegistry
from leadscore.models.base import LeadScorer
from leadscore.models.explain import family_sums

log = logging.getLogger(__name__)

QUANTILE_POINTS = 1001
"""Quantiles kept per family (every 0.1 percentile): ~8 kB a family with the model."""
REFERENCE_ROWS = 100_000
"""Training rows the quantiles are read from at most (a seeded sample beyond that)."""
FAMILIES: tuple[str, ...] = (FIT, ENGAGEMENT)
"""The families that get a 0-100 sub-score (lead age, market, accounts do not)."""
SUM_DECIMALS = 4
"""Sums are read to 4 decimals (as the score row shows ``fit`` and ``engagement``), so the
last-bit noise of a sum computed in another partition cannot move a lead's sub-score (many
leads share one sum exactly, e.g. every lead without activity)."""
QUANTILES_ATTRIBUTE = "subscore_quantiles_"
"""Where a fitted model keeps its reference quantiles ({family: ascending array})."""

CALL_NOW, NURTURE, EDUCATE, DEPRIORITISE = "call_now", "nurture", "educate", "deprioritise"
CELLS: tuple[str, ...] = (CALL_NOW, NURTURE, EDUCATE, DEPRIORITISE)
"""The quadrant cells, in :func:`cell_codes`' order."""
CELL_LABELS: dict[str, str] = {
    CALL_NOW: "call now",
    NURTURE: "nurture",
    EDUCATE: "educate",
    DEPRIORITISE: "deprioritise",
}
"""Each cell in the words a page or a CSV shows."""


def reference_quantiles(
    sums: Mapping[str, np.ndarray], points: int = QUANTILE_POINTS
) -> dict[str, np.ndarray]:
    """``points`` evenly spaced quantiles (0th to 100th percentile) of each family's sums
    over the reference leads, for the families of :data:`FAMILIES` present."""
    if points < 2:
        raise ValueError("reference quantiles need at least 2 points")
    grid = np.linspace(0.0, 1.0, points)
    out = {}
    for family in FAMILIES:
        values = np.asarray(sums.get(family, []), dtype=np.float64)
        values = values[np.isfinite(values)]
        if len(values):
            out[family] = np.quantile(values, grid)
    return out


def model_quantiles(
    model: LeadScorer,
    X: pd.DataFrame,
    registry: FeatureRegistry,
    rows: int = REFERENCE_ROWS,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """The reference quantiles of ``model`` over its training rows ``X``: each family's
    contribution sums, on at most ``rows`` rows (a seeded sample, so a retrain on the same
    data keeps the same scale). A family without features in the model gets none."""
    if len(X) > rows:
        chosen = np.sort(np.random.default_rng(seed).choice(len(X), size=rows, replace=False))
        X = X.iloc[chosen]
    if len(X) == 0:
        return {}
    contributions, _ = model.contributions(X)
    names = list(model.features)
    present = {registry[f].family for f in names}
    sums = family_sums(contributions, names, registry)
    return reference_quantiles(
        {f: np.round(s, SUM_DECIMALS) for f, s in sums.items() if f in present}
    )


def percentile_of(values: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    """Each value's percentile (0-100, float) among the reference leads the ascending
    ``quantiles`` describe; NaN stays NaN.

    Between two distinct quantiles the percentile is linear; a value equal to a run of
    equal quantiles (many reference leads share it) gets the run's middle, so a lead at
    the reference median gets 50; below the lowest quantile 0, above the highest 100.
    """
    q = np.asarray(quantiles, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    last = len(q) - 1
    step = 100.0 / last
    lo = np.searchsorted(q, v, side="left")
    hi = np.searchsorted(q, v, side="right")
    right = np.clip(lo, 1, last)
    x0, x1 = q[right - 1], q[right]
    width = np.where(x1 > x0, x1 - x0, 1.0)
    between = (right - 1 + np.clip((v - x0) / width, 0.0, 1.0)) * step
    out = np.where(hi > lo, (lo + hi - 1) / 2.0 * step, between)
    out = np.where((hi == lo) & (lo == 0), 0.0, out)
    out = np.where((hi == lo) & (lo > last), 100.0, out)
    return np.where(np.isnan(v), np.nan, out)


def as_int_scores(percentiles: np.ndarray) -> pd.array:
    """Percentiles as nullable whole numbers 0-100 (half to even, as ``np.rint``)."""
    return pd.array(np.rint(np.asarray(percentiles, dtype=np.float64)), dtype="Int64")


def quantiles_of(model: object) -> dict[str, np.ndarray] | None:
    """The model's reference quantiles; None for a model saved before it carried them."""
    return getattr(model, QUANTILES_ATTRIBUTE, None)


def subscores(
    families: Mapping[str, np.ndarray], quantiles: Mapping[str, np.ndarray] | None, n: int
) -> dict[str, pd.array]:
    """``fit_score`` and ``engagement_score`` (nullable ints 0-100) of ``n`` leads from
    their family sums (read to :data:`SUM_DECIMALS`); null for a family the model has no
    quantiles of (no engagement in a flat export) and for every family when ``quantiles``
    is None (an older model)."""
    out = {}
    for family in FAMILIES:
        reference = None if quantiles is None else quantiles.get(family)
        if reference is None or family not in families:
            out[f"{family}_score"] = pd.array([None] * n, dtype="Int64")
        else:
            values = np.round(np.asarray(families[family], dtype=np.float64), SUM_DECIMALS)
            out[f"{family}_score"] = as_int_scores(percentile_of(values, reference))
    return out


def cell_codes(fit: pd.array, engagement: pd.array, cutoffs: Mapping[str, float]) -> np.ndarray:
    """The quadrant cell of each lead from its sub-scores (at or above a cut-off is high),
    as its position in :data:`CELLS` (``features.pieces.labelled`` words them).

    Without an engagement score (a flat export) the cell is read on fit alone:
    ``call_now`` or ``deprioritise``. Without a fit score (an older model): -1, null.
    """
    fit_values = pd.array(fit, dtype="Float64").to_numpy(dtype=np.float64, na_value=np.nan)
    eng_values = pd.array(engagement, dtype="Float64").to_numpy(dtype=np.float64, na_value=np.nan)
    fit_high = fit_values >= cutoffs["fit"]
    eng_high = eng_values >= cutoffs["engagement"]
    no_engagement = np.isnan(eng_values)
    codes = np.select(
        [fit_high & (eng_high | no_engagement), fit_high, eng_high & ~no_engagement], [0, 1, 2], 3
    )
    codes[np.isnan(fit_values)] = -1
    return codes


_NOTED: weakref.WeakSet[object] = weakref.WeakSet()


def note_missing(model: object) -> None:
    """Say once per model why it has no sub-scores (saved before it carried reference
    quantiles), so null sub-scores are not a silent surprise (and not a line a partition)."""
    if model in _NOTED:
        return
    _NOTED.add(model)
    log.warning(
        "this %s was saved without reference quantiles (trained before sub-scores): "
        "fit_score, engagement_score and cell are null; run `leadscore train` for them",
        type(model).__name__,
    )
