"""Backtest over time: re-train at past cut-offs and score each one's validation window.

Rolling origin: origin k (k = 0..n-1) pretends the data ended ``k x valid_window_days``
earlier. Snapshots whose horizon runs past that pretend end are censored (their label was
not yet known then), and the usual out-of-time split with embargo is made inside what is
left, so every window is a training run as it would have happened on that date. Features
are computed once: they are point-in-time (as of each snapshot), so an earlier cut-off
sees exactly the same values. Snapshot times stay on the grid anchored at the real end
(cadence is unchanged; only the cut moves).

A flat export in time order (one example per closed lead, no snapshots) gets the same
rolling origin by position (:func:`backtest_ordered`): origin k holds back the newest k
validation slices, so a drifting export shows how each period would have gone; by
created date, each origin's training ends one horizon before its validation slice, as
the training run's own split does (``features.snapshots.ordered_split``).

Every origin's model is fitted as a training run would fit it: ``fit_model`` also gets
how ``model.kind: auto`` must cut its inner slice, from that origin's split
(``models.recipe.inner_order``: by time with the horizon embargo, or by row order).

Pure: the caller passes the snapshot rows, their features, and two fitting functions
(the model's and the rules'), so tests and the CLI run the same code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import pandas as pd

from leadscore.features.builder import AS_OF
from leadscore.features.config import SnapshotConfig
from leadscore.features.snapshots import LABEL, Snapshots, Split, out_of_time_split
from leadscore.models import training
from leadscore.models.config import PromotionGate, QualityTargets
from leadscore.models.evaluate import full_metrics
from leadscore.models.quality import bootstrap, lead_resamples, roc_auc_difference
from leadscore.models.recipe import RecipeSettings, TrainingData, inner_order
from leadscore.models.selection import SliceSpec

WINDOWS = 4
"""Origins tried by default: the data end and 1, 2, 3 validation windows before it."""

SUMMARY_METRICS = ("roc_auc", "pr_auc", "brier", "ece", "capture_top10")
"""Metrics of each side shown per window (every full metric is in the rows)."""

FitFn = Callable[[pd.DataFrame, np.ndarray], Any]
ModelFitFn = Callable[[pd.DataFrame, np.ndarray, SliceSpec], Any]
"""``fit_model(X, y, order)``: ``order`` is how the origin's split orders its training
rows (``models.recipe.inner_order``), for ``model.kind: auto``'s inner slice."""


def backtest(
    snapshots: Snapshots,
    X: pd.DataFrame,
    config: SnapshotConfig,
    fit_model: ModelFitFn,
    fit_rules: FitFn,
    windows: int = WINDOWS,
    intervals: QualityTargets | None = None,
) -> pd.DataFrame:
    """One row per origin: its dates, sizes, and the model's and the rules' metrics.

    ``X`` holds the features of ``snapshots.rows`` row for row. ``fit_model(X, y, order)``
    returns a fitted model with ``raw_score`` and ``predict_proba``; ``fit_rules(X, y)`` a fitted
    rule scorer with ``points`` and ``predict_proba``. A window that cannot be trained
    (one class, too little data) gets its ``error`` instead of metrics. With ``intervals``
    (its resamples, confidence and seed) each row also gets the model's ROC-AUC margin over
    the rules with a bootstrap interval over leads (``margin_roc_auc``, ``_low``, ``_high``).
    """
    rows = snapshots.rows
    y_all = rows[LABEL].to_numpy()
    horizon = pd.Timedelta(days=config.horizon_days)
    out: list[dict[str, Any]] = []
    for k in range(windows):
        end = snapshots.data_end - k * pd.Timedelta(days=config.valid_window_days)
        known = np.flatnonzero((rows[AS_OF] + horizon <= end).to_numpy())
        subset = Snapshots(
            rows=rows.iloc[known].reset_index(drop=True),
            n_censored=snapshots.n_censored + len(rows) - len(known),
            data_end=end,
        )
        split = out_of_time_split(subset, config)
        train, valid = known[split.train], known[split.valid]
        dates = {
            "data_end": end.isoformat(),
            "valid_start": split.valid_start.isoformat(),
            "valid_end": rows[AS_OF].iloc[valid].max().isoformat() if len(valid) else "",
            "train_end": split.train_end.isoformat(),
        }
        fits = (fit_model, fit_rules, inner_order(split))
        out.append(_record(k, dates, X, y_all, train, valid, *fits, intervals))
    return pd.DataFrame(out)


def backtest_ordered(
    snapshots: Snapshots,
    X: pd.DataFrame,
    valid_fraction: float,
    fit_model: ModelFitFn,
    fit_rules: FitFn,
    windows: int = WINDOWS,
    intervals: QualityTargets | None = None,
    *,
    by_time: bool,
    horizon_days: int = 0,
) -> pd.DataFrame:
    """Rolling origin for a flat export in time order (one example per closed lead).

    Origin 0 is the training run's own split (the newest ``valid_fraction`` of the
    examples validates, the older ones train); origin k pretends the newest k such
    slices were not there yet: the slice before them validates, the older rows train.
    "Newest" is by ``as_of`` when ``by_time``, else by row order (``ordered_split``). By
    time, training ends ``horizon_days`` before the slice's first example (the embargo of
    ``ordered_split``: a label is settled only a horizon after its creation). The same row
    shape as :func:`backtest`; its "dates" are rows when there are no dates.
    """
    rows = snapshots.rows
    y_all = rows[LABEL].to_numpy()
    as_of = rows[AS_OF]
    order = np.argsort(as_of.to_numpy(), kind="stable") if by_time else np.arange(len(rows))
    n_valid = int(np.ceil(valid_fraction * len(rows)))

    def at(position: int) -> str:
        return as_of.iloc[order[position]].isoformat() if by_time else f"row {position + 1}"

    out: list[dict[str, Any]] = []
    for k in range(windows):
        end = len(rows) - k * n_valid
        start = max(end - n_valid, 0)
        train, valid = order[:start], order[start:end]
        if end <= 0:
            out.append({"origin": k, "n_train": 0, "n_valid": 0, "error": "no rows left"})
            continue
        split = Split(train, valid, "out_of_time", pd.NaT, pd.NaT)
        if by_time:
            valid_start = as_of.iloc[order[start]]
            train_end = valid_start - pd.Timedelta(days=horizon_days)
            train = train[(as_of.iloc[train] <= train_end).to_numpy()]
            split = Split(train, valid, "out_of_time", valid_start, train_end)
        dates = {
            "data_end": at(end - 1),
            "valid_start": at(start),
            "valid_end": at(end - 1),
            "train_end": split.train_end.isoformat() if by_time else at(start),
        }
        fits = (fit_model, fit_rules, inner_order(split))
        out.append(_record(k, dates, X, y_all, train, valid, *fits, intervals))
    return pd.DataFrame(out)


class BacktestSettings(RecipeSettings, Protocol):
    """The settings sections a backtest reads (``pipelines.settings.Settings`` has them)."""

    @property
    def quality(self) -> QualityTargets: ...
    @property
    def promotion(self) -> PromotionGate: ...


def run(
    data: TrainingData, settings: BacktestSettings, windows: int, *, flat: bool
) -> pd.DataFrame:
    """The backtest of a training run's examples (``models.recipe.examples``), fitted as
    the training run fits: the promotion metric and each origin's inner order for
    ``model.kind: auto``; snapshots by :func:`backtest`, a flat export by
    :func:`backtest_ordered` (refused, ValueError, when it is split at random)."""

    def fit_model(X: pd.DataFrame, y: np.ndarray, order: SliceSpec) -> Any:
        metric = settings.promotion.metric
        return training.fit_model(X, y, data.registry, settings.model, metric=metric, order=order)

    def fit_rules(X: pd.DataFrame, y: np.ndarray) -> Any:
        return training.fit_rules(X, y, settings.rules, settings.features.activity_points())

    snaps, X, config = data.snapshots, data.X, settings.snapshots
    if not flat:
        return backtest(snaps, X, config, fit_model, fit_rules, windows, settings.quality)
    dated = bool(snaps.rows[AS_OF].notna().all()) and len(snaps.rows) > 0
    order = settings.data.order
    if order == "none" or (order == "time" and not dated):
        raise ValueError(
            "backtest needs an order: this flat export is split at random (data.order "
            "'none', or 'time' without created_at); set data.order to 'rows' if the file "
            "is in time order"
        )
    return backtest_ordered(
        snaps,
        X,
        config.valid_fraction,
        fit_model,
        fit_rules,
        windows,
        settings.quality,
        by_time=order == "time",
        horizon_days=config.horizon_days,
    )


def _record(
    origin: int,
    dates: dict[str, str],
    X: pd.DataFrame,
    y: np.ndarray,
    train: np.ndarray,
    valid: np.ndarray,
    fit_model: ModelFitFn,
    fit_rules: FitFn,
    order: SliceSpec,
    intervals: QualityTargets | None = None,
) -> dict[str, Any]:
    """One origin's row: where its windows are, their sizes, and both sides' full metrics
    on its validation rows once fitted on its training rows (the model with its split's
    inner ``order``), or the error that kept the window from training."""
    record: dict[str, Any] = {
        "origin": origin,
        **dates,
        "n_train": len(train),
        "n_valid": len(valid),
        "valid_positive_rate": float(y[valid].mean()) if len(valid) else float("nan"),
    }
    try:
        if len(valid) == 0 or len(np.unique(y[valid])) < 2:
            raise ValueError("the validation window holds one class only")
        if len(np.unique(y[train])) < 2:
            raise ValueError("the training rows hold one class only (or none)")
        X_train, y_train = X.iloc[train], y[train]
        X_valid, y_valid = X.iloc[valid], y[valid]
        model = fit_model(X_train, y_train, order)
        rules = fit_rules(X_train, y_train)
    except ValueError as exc:
        record["error"] = str(exc)
        return record
    ranking, points = model.raw_score(X_valid), rules.points(X_valid)
    sides = {
        "model": full_metrics(y_valid, ranking, model.predict_proba(X_valid)[:, 1]),
        "rules": full_metrics(y_valid, points, rules.predict_proba(X_valid)[:, 1]),
    }
    record.update({f"{side}_{k}": v for side, metrics in sides.items() for k, v in metrics.items()})
    if intervals is not None and intervals.resamples:
        draws = lead_resamples(X_valid["lead_id"].to_numpy(), intervals.resamples, intervals.seed)
        value, low, high = bootstrap(
            roc_auc_difference(y_valid, ranking, points), draws, intervals.confidence
        )
        record.update(margin_roc_auc=value, margin_roc_auc_low=low, margin_roc_auc_high=high)
    return record


def stability(table: pd.DataFrame, metric: str = "roc_auc") -> dict[str, float]:
    """Mean, spread (max - min) and worst of one metric over the windows, per side,
    and the model's smallest margin over the rules."""
    out: dict[str, float] = {}
    for side in ("model", "rules"):
        column = f"{side}_{metric}"
        if column in table:
            values = table[column].dropna()
            out.update(
                {
                    f"{side}_{metric}_mean": float(values.mean()),
                    f"{side}_{metric}_spread": float(values.max() - values.min()),
                    f"{side}_{metric}_worst": float(values.min()),
                }
            )
    if {f"model_{metric}", f"rules_{metric}"} <= set(table):
        margin = (table[f"model_{metric}"] - table[f"rules_{metric}"]).dropna()
        out[f"min_margin_over_rules_{metric}"] = float(margin.min())
    return out
