"""The model family chosen on evidence (``model.kind: auto``), from the training rows only.

Which family ranks best depends on the data: trees win where attributes interact, a line
wins where a numeric drifts beyond anything seen in training (the bank campaign: logistic
0.767 out of time, LightGBM 0.56-0.69). A user should not have to know which. So every
candidate is fitted once on the older part of the **training** rows and judged on the
rest of them, the inner slice, by the promotion metric; the validation window is never
read (it must stay an honest estimate of the chosen model, and the gate's evidence).

The inner slice mirrors the outer split:

- time-ordered data: the newest ``fraction`` of training rows (whole as-of times), and
  inner-training rows end ``embargo`` before it (the horizon, for snapshots and for flat
  exports split by created date alike: the label of an example is known only H days after
  it, and a lead's snapshots on both sides would carry the same future conversion into
  both), so no inner-training label reads the slice's time;
- rows in file order with no dates: the last ``fraction`` of rows;
- no order: a stratified random ``fraction`` (seeded).

When the gap leaves a class too thin to judge (a year of history against a 90-day
horizon: Olist's export), the caller (``models.training``) judges again without the gap,
still on training rows only, and the evidence says so; only when that fails too does the
configured LightGBM stay, unjudged.

Candidates are ranked by their raw score (calibration is monotone: it cannot change a
ranking metric, so it is not judged). Scores within ``margin`` of the best are a tie,
won by the simplest candidate (listed simplest first): a simpler model is faster to fit
and explain, and a noise-level gain does not pay for the extra variance. The winner is
then refitted on every training row by the caller, exactly as a configured kind would be.

Pure: no Prefect, no MLflow; any estimator with ``fit`` and ``raw_score`` is a candidate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import average_precision_score, roc_auc_score

from leadscore.models.evaluate import lift_and_capture

Order = Literal["time", "rows", "random"]
NO_EMBARGO = pd.Timedelta(0)
METRIC_NAMES = {"roc_auc": "ROC-AUC", "pr_auc": "PR-AUC", "lift_top10": "lift in the top 10%"}


class Candidate(Protocol):
    """What selection needs of a model: fit on rows, then a ranking score per row."""

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> Any: ...
    def raw_score(self, X: pd.DataFrame) -> np.ndarray: ...


@dataclass(frozen=True)
class SliceSpec:
    """How the training rows are ordered, and the gap an inner split must leave."""

    order: Order = "rows"
    embargo: pd.Timedelta = NO_EMBARGO


@dataclass(frozen=True)
class InnerSlice:
    """Positions (into the training rows) the candidates learn from and are judged on."""

    train: np.ndarray
    valid: np.ndarray
    description: str


def _share(fraction: float) -> str:
    return f"{fraction:.0%}"


def inner_slice(
    y: np.ndarray,
    as_of: pd.Series | None,
    spec: SliceSpec,
    fraction: float,
    seed: int = 0,
) -> InnerSlice:
    """The inner split of the training rows (oldest first), as the module docstring says."""
    n = len(y)
    if spec.order == "random":
        rng = np.random.default_rng(seed)
        valid = [
            rng.permutation(np.flatnonzero(y == value))[: round(fraction * int(np.sum(y == value)))]
            for value in np.unique(y)
        ]
        is_valid = np.zeros(n, dtype=bool)
        is_valid[np.concatenate(valid) if valid else []] = True
        return InnerSlice(
            np.flatnonzero(~is_valid),
            np.flatnonzero(is_valid),
            f"a stratified random {_share(fraction)} of the training rows (no order)",
        )
    cut = min(max(round(n * (1 - fraction)), 1), n - 1) if n > 1 else n
    times = None if as_of is None else pd.to_datetime(as_of, utc=True).reset_index(drop=True)
    if spec.order == "rows" or times is None or times.isna().any():
        return InnerSlice(
            np.arange(cut),
            np.arange(cut, n),
            f"the last {_share(fraction)} of the training rows (file order)",
        )
    start = times.sort_values(kind="stable").iloc[cut]
    is_valid = (times >= start).to_numpy()
    embargo = pd.Timedelta(spec.embargo)
    if embargo > pd.Timedelta(0):
        is_train = (times <= start - embargo).to_numpy()
        gap = f", inner training rows ending {embargo.days} days before (the horizon embargo)"
    else:
        is_train = (times < start).to_numpy()
        gap = ""
    return InnerSlice(
        np.flatnonzero(is_train),
        np.flatnonzero(is_valid),
        f"the newest {_share(fraction)} of the training rows (from {start:%Y-%m-%d}){gap}",
    )


def metric_value(metric: str, y: np.ndarray, ranking: np.ndarray) -> float:
    """The promotion metric (``promotion.metric``) of a ranking."""
    if metric == "roc_auc":
        return float(roc_auc_score(y, ranking))
    if metric == "pr_auc":
        return float(average_precision_score(y, ranking))
    if metric == "lift_top10":
        return float(lift_and_capture(np.asarray(y), np.asarray(ranking))[0])
    raise ValueError(f"unknown selection metric {metric!r}")


def choose(scores: Mapping[str, float | None], margin: float) -> tuple[str, str]:
    """(winner, why): the simplest candidate (mapping order) within ``margin`` of the best."""
    judged = {name: s for name, s in scores.items() if s is not None and np.isfinite(s)}
    if not judged:
        raise ValueError("no candidate could be judged")
    best_name = max(judged, key=lambda name: judged[name])
    best = judged[best_name]
    winner = next(name for name, s in judged.items() if s >= best - margin)
    if winner == best_name:
        return winner, "the best inner score"
    return winner, (
        f"within {margin:g} of the best ({best_name} {best:.4f}): the simpler model wins the tie"
    )


def unjudged(reason: str, metric: str, chosen: str | None = None) -> dict[str, Any]:
    """The evidence of a choice made without judging candidates (same keys as ``select``)."""
    return {
        "metric": metric,
        "margin": 0.0,
        "slice": "none",
        "inner_train_rows": 0,
        "inner_rows": 0,
        "inner_positives": 0,
        "scores": {},
        "chosen": chosen,
        "reason": reason,
    }


def select(
    candidates: Mapping[str, Candidate],
    X: pd.DataFrame,
    y: np.ndarray,
    inner: InnerSlice,
    metric: str = "roc_auc",
    margin: float = 0.002,
    min_class_rows: int = 20,
) -> dict[str, Any]:
    """Fit each candidate (simplest first) on the inner-training rows, judge it on the
    inner slice; return the evidence as plain values (it travels inside the artifact).

    Keys: ``chosen`` (a candidate name, or None when the slice cannot judge), ``reason``,
    ``scores`` (name -> score, None if the candidate could not be fitted), ``metric``,
    ``margin``, ``slice`` (its description), ``inner_train_rows``, ``inner_rows``,
    ``inner_positives``.
    """
    y = np.asarray(y, dtype=np.int64)
    y_in, y_out = y[inner.train], y[inner.valid]
    evidence: dict[str, Any] = {
        "metric": metric,
        "margin": float(margin),
        "slice": inner.description,
        "inner_train_rows": len(inner.train),
        "inner_rows": len(inner.valid),
        "inner_positives": int(y_out.sum()),
        "scores": {name: None for name in candidates},
    }
    fewest = min(int(np.sum(side == value)) for side in (y_in, y_out) for value in (0, 1))
    if fewest < min_class_rows:
        evidence.update(
            chosen=None,
            reason=f"too few rows to judge (a class has {fewest} rows on one side of the "
            f"inner split; {min_class_rows} needed)",
        )
        return evidence
    X_in, X_out = X.iloc[inner.train], X.iloc[inner.valid]
    for name, candidate in candidates.items():
        try:
            fitted = clone(candidate).fit(X_in, y_in)
        except ValueError:  # e.g. a calibration slice holding one class
            continue
        evidence["scores"][name] = metric_value(metric, y_out, fitted.raw_score(X_out))
    try:
        chosen, reason = choose(evidence["scores"], margin)
    except ValueError as err:
        chosen, reason = None, str(err)
    evidence.update(chosen=chosen, reason=reason)
    return evidence
