"""The declared model interface: what scoring, explaining, reporting and the gate use.

``LeadModel`` (LightGBM, ``models.factory``), ``LogisticLeadModel`` (``models.linear``) and
``SegmentedModel`` (``models.segments``) implement it. A fitted model also carries the
feature registry and the input columns it was trained with (set by
``models.training.fit_model``), so scoring explains with the registry the model learned
from, and a champion that cannot read today's data is reported by the columns it misses.
It may carry ``subscore_quantiles_`` (``models.subscores``), left out of the protocol on
purpose: a model saved before sub-scores lacks it and must still score.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from leadscore.features.registry import FeatureRegistry


@runtime_checkable
class LeadScorer(Protocol):
    """A fitted lead model: log-odds to rank, calibrated probabilities, exact reasons."""

    registry_: FeatureRegistry
    """The feature registry the model was trained with (families, reason wording)."""
    input_columns_: list[str]
    """The columns of the feature frame the model reads, as at fit time."""

    @property
    def features(self) -> list[str]:
        """The model's features, in column order."""
        ...

    def raw_score(self, X: pd.DataFrame) -> np.ndarray:
        """Log-odds (ranks leads exactly as the calibrated probability does)."""
        ...

    def calibrated(self, raw: np.ndarray) -> np.ndarray:
        """Calibrated probability of conversion from ``raw_score``'s log-odds."""
        ...

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """(n, 2) probabilities of not converting / converting."""
        ...

    def contributions(self, X: pd.DataFrame) -> tuple[np.ndarray, float]:
        """Exact additive contributions (n_rows x n_features, log-odds), expected value."""
        ...


def missing_columns(model: LeadScorer, columns: Sequence[str]) -> list[str]:
    """The model's input columns absent from ``columns``, in the model's order.

    A model saved before it carried ``input_columns_`` is read through its features.
    """
    present = set(columns)
    wanted = getattr(model, "input_columns_", None) or list(model.features)
    return [c for c in wanted if c not in present]


def registry_of(model: LeadScorer) -> FeatureRegistry:
    """The feature registry ``model`` was trained with; a clear error for a model saved
    before models carried it (retrain it)."""
    registry = getattr(model, "registry_", None)
    if registry is None:
        raise LookupError(
            f"this {type(model).__name__} was saved without its feature registry (trained "
            "before models carried it): run `leadscore train` to train one that does"
        )
    return registry
