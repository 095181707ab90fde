"""The validation window a report is drawn from: labels, rankings, probabilities, reasons.

``window_inputs`` scores one validation window with the model and the rules exactly as a
batch would; ``report_metrics`` and ``headline`` read the figures every part of the report
(and the train JSON line, and MLflow) agree on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from leadscore.features.registry import FeatureRegistry
from leadscore.models.base import LeadScorer
from leadscore.models.evaluate import TOP_SHARE, full_metrics, share_key
from leadscore.models.quality import TargetResult
from leadscore.models.report.concepts import ReportConcept, plain_concepts, report_concepts
from leadscore.models.report.header import RunHeader
from leadscore.models.rules import RuleScorer, grade_of


@dataclass(frozen=True)
class ReportInputs:
    """What one validation window tells about the model and the rules."""

    y: np.ndarray
    model_ranking: np.ndarray
    model_probability: np.ndarray
    rule_points: np.ndarray
    rule_probability: np.ndarray
    grades: np.ndarray
    grade_order: Sequence[str]
    contributions: np.ndarray
    features: Sequence[str]
    families: Mapping[str, str]
    feature_values: pd.DataFrame | None = None
    oracle: Mapping[str, float] | None = None
    targets: Sequence[TargetResult] = ()
    title: str = "leadscore evaluation report"
    context: Mapping[str, object] = field(default_factory=dict)
    rules_card: pd.DataFrame | None = None
    """The rules' card on the window (``RuleScorer.card``): each rule, its points, its hits."""
    leakage: Sequence[str] = ()
    """One line per column suspected of leaking the outcome (``features.leakage``)."""
    concepts: Sequence[ReportConcept] = ()
    """The features grouped into concepts (``report.concepts``); empty: one per feature."""
    entities: pd.DataFrame | None = None
    """Who each row is: lead_id, as_of, and owner / segment where the export has them
    (``report.groups.validation_entities``); the capacity, segment and owner views and
    the per-grade intervals by lead read it. None: those views say they lack it."""
    header: RunHeader | None = None
    """The MLflow run, registered version and data window (``report.header``)."""

    def concept_groups(self) -> tuple[ReportConcept, ...]:
        """The concepts, or one per feature when the window was given none."""
        return tuple(self.concepts) or plain_concepts(self.features, self.families)


def window_inputs(
    model: LeadScorer,
    rules: RuleScorer,
    X: pd.DataFrame,
    y: np.ndarray,
    registry: FeatureRegistry,
    grade_cutoffs: Mapping[str, float],
    oracle: Mapping[str, float] | None = None,
    context: Mapping[str, object] | None = None,
) -> ReportInputs:
    """Score one validation window with the model and the rules, exactly as a batch would.

    Grades are those of a scoring batch: the score (probability x 100, rounded) against
    the configured cutoffs.
    """
    raw = model.raw_score(X)
    probability = model.calibrated(raw)
    contributions, _ = model.contributions(X)
    return ReportInputs(
        y=np.asarray(y),
        model_ranking=raw,
        model_probability=probability,
        rule_points=rules.points(X),
        rule_probability=rules.predict_proba(X)[:, 1],
        grades=grade_of(np.rint(100 * probability), grade_cutoffs),
        grade_order=list(grade_cutoffs),
        contributions=contributions,
        features=model.features,
        families={f: registry[f].family for f in model.features},
        concepts=report_concepts(registry, model.features),
        feature_values=X[model.features],
        oracle=oracle,
        context=dict(context or {}),
        rules_card=rules.card(X, y),
    )


def report_metrics(inputs: ReportInputs) -> dict[str, dict[str, float]]:
    """The model's and the rules' full metrics on the window (what the table shows)."""
    y = np.asarray(inputs.y)
    return {
        "model": full_metrics(y, inputs.model_ranking, inputs.model_probability),
        "rules": full_metrics(y, inputs.rule_points, inputs.rule_probability),
    }


def headline(metrics: Mapping[str, Mapping[str, float]]) -> str:
    """The one plain sentence on top of the report."""
    key = f"capture_{share_key(TOP_SHARE)}"
    return (
        f"Calling the top {TOP_SHARE:.0%} by the model would have reached "
        f"{metrics['model'][key]:.0%} of conversions; by the rules, "
        f"{metrics['rules'][key]:.0%}."
    )
