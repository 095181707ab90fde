"""The promotion gate's decision, pure: tested without a tracking store.

A new model version takes the `champion` alias only when it beats the rules baseline and
the current champion, re-scored on the same validation window, by the configured margins
(``PromotionGate``); with ``judged_on: interval`` the low end of the bootstrap interval of
the paired difference (over leads, ``models.quality``) must clear the margin. A champion
that cannot read the window's columns is named with the columns it misses, and the new
model is then judged against the rules alone. ``pipelines.tracking`` records the
decision and moves the alias.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from leadscore.models import quality
from leadscore.models.base import LeadScorer, missing_columns
from leadscore.models.config import PromotionGate, QualityTargets
from leadscore.models.evaluate import evaluate
from leadscore.models.report import ReportInputs


@dataclass(frozen=True)
class Promotion:
    """What the gate decided for a new model version, and why."""

    promoted: bool
    reason: str
    champion_metric: float | None


Interval = tuple[float, float]
"""(low, high) of a paired difference new - other, bootstrapped over leads."""


@dataclass(frozen=True)
class Champion:
    """The current champion: its registry version and its fitted model."""

    version: str
    model: LeadScorer


def _beats(
    name: str,
    new: float,
    other: float,
    margin: float,
    metric: str,
    interval: Interval | None,
    judged_on: str,
) -> str | None:
    """Why ``new`` fails to beat ``other`` by more than ``margin``, or None if it does.

    Judged on the values, or on the low end of ``interval`` when judged on intervals
    (no interval, e.g. a champion that cannot score these features: the values)."""
    spread = "" if interval is None else f" (difference {interval[0]:+.4f} to {interval[1]:+.4f})"
    if judged_on == "interval" and interval is not None:
        if interval[0] > margin:
            return None
        return (
            f"{metric} {new:.4f} does not beat {name} ({other:.4f}) by more than {margin} "
            f"beyond resampling noise{spread}"
        )
    if new > other + margin:
        return None
    return f"{metric} {new:.4f} does not beat {name} ({other:.4f}) by more than {margin}{spread}"


def gate(
    new: float,
    rules: float,
    champion: float | None,
    config: PromotionGate,
    calibration_error: float | None = None,
    intervals: dict[str, Interval] | None = None,
    incompatible: str | None = None,
) -> Promotion:
    """The declared promotion rule on the metrics.

    ``calibration_error`` is the new model's ECE on the validation window; it is checked
    against ``config.max_calibration_error`` when both are given. ``intervals`` holds the
    bootstrap intervals of the paired differences new - rules (``"rules"``) and new -
    champion (``"champion"``); they are quoted in the reason, and decide when
    ``config.judged_on`` is ``interval``. ``incompatible`` says why the champion could not
    be scored (``champion`` is then None): it is quoted in place of the champion's metric.
    """
    metric, intervals = config.metric, intervals or {}
    failed = _beats(
        "the rules",
        new,
        rules,
        config.min_margin_over_rules,
        metric,
        intervals.get("rules"),
        config.judged_on,
    )
    if failed is None and champion is not None:
        failed = _beats(
            "the champion",
            new,
            champion,
            config.min_margin_over_champion,
            metric,
            intervals.get("champion"),
            config.judged_on,
        )
    if failed is not None:
        return Promotion(False, failed, champion)
    limit = config.max_calibration_error
    if limit is not None and calibration_error is not None and not calibration_error <= limit:
        return Promotion(
            False,
            f"calibration error (ECE) {calibration_error:.4f} is above the maximum {limit}",
            champion,
        )
    if incompatible is not None:
        against = f"not the champion: {incompatible}"
    else:
        against = "no champion yet" if champion is None else f"champion {champion:.4f}"
    quoted = "".join(
        f"; over {name} {low:+.4f} to {high:+.4f}" for name, (low, high) in intervals.items()
    )
    return Promotion(
        True, f"{metric} {new:.4f} beats rules {rules:.4f} and {against}{quoted}", champion
    )


def incompatibility(champion: Champion, X: pd.DataFrame) -> str | None:
    """Why the champion cannot score ``X`` (named columns, or the error), or None if it can."""
    missing = missing_columns(champion.model, list(X.columns))
    if missing:
        return (
            f"champion v{champion.version} was trained on columns {', '.join(missing)}, "
            "which this data no longer has"
        )
    try:
        champion.model.raw_score(X.head(1))
    except (KeyError, ValueError) as exc:
        return f"champion v{champion.version} cannot score this data: {exc}"
    return None


def decide(
    window: ReportInputs,
    X_valid: pd.DataFrame,
    metrics: Mapping[str, Mapping[str, float]],
    champion: Champion | None,
    config: PromotionGate,
    targets: QualityTargets,
) -> Promotion:
    """The gate on one validation window: the champion re-scored on ``X_valid``, the
    paired bootstrap intervals over leads (ROC-AUC only), then :func:`gate`.

    ``window`` holds the new model's and the rules' scores of ``X_valid`` (not scored
    again); ``metrics`` their metrics (``models.report.report_metrics``).
    """
    y = np.asarray(window.y)
    score, incompatible = None, None
    others: dict[str, np.ndarray] = {"rules": window.rule_points}
    if champion is not None:
        incompatible = incompatibility(champion, X_valid)
    if champion is not None and incompatible is None:
        ranking = champion.model.raw_score(X_valid)
        score = evaluate(y, ranking, champion.model.calibrated(ranking))[config.metric]
        others["champion"] = ranking
    intervals = (
        quality.paired_intervals(
            targets, y, X_valid["lead_id"].to_numpy(), window.model_ranking, others
        )
        if config.metric == "roc_auc"
        else {}
    )
    return gate(
        metrics["model"][config.metric],
        metrics["rules"][config.metric],
        score,
        config,
        calibration_error=metrics["model"].get("ece"),
        intervals=intervals,
        incompatible=incompatible,
    )
