"""Concepts of the report's importance charts: features grouped the way a person names them.

A concept ("pricing-page views", "role", "lead age") gathers the features that speak
about one thing; its contribution to a lead is the sum of its features' exact SHAP values
(SHAP is additive), and its family says whether it is fit, engagement or lifecycle. The
feature registry declares them (``FeatureRegistry.concepts()``, ``FeatureSpec.concept``);
:func:`report_concepts` is the one adapter the report reads them through, so a registry
without concepts still gives one concept per feature, labelled with its description, and
lead age counted as lifecycle, never as engagement.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from leadscore.features.registry import LEAD_AGE, FeatureRegistry

LIFECYCLE = "lifecycle"
"""Family of how long the lead has been open: neither fit nor engagement."""


@dataclass(frozen=True)
class ReportConcept:
    """One concept as the report shows it: key, words, family and its model features."""

    key: str
    label: str
    family: str
    features: tuple[str, ...]


def _family(feature: str, family: str) -> str:
    return LIFECYCLE if feature == LEAD_AGE else family


def report_concepts(
    registry: FeatureRegistry, features: Sequence[str]
) -> tuple[ReportConcept, ...]:
    """The model's features grouped into concepts (the only place the report reads the
    registry's concepts): ``registry.concepts()`` where the registry declares them, else
    ``spec.concept`` (default: the feature itself) labelled with the spec's description."""
    wanted = list(features)
    declared = getattr(registry, "concepts", None)
    out: list[ReportConcept] = []
    covered: set[str] = set()
    if callable(declared):
        for concept in declared().values():
            members = tuple(f for f in concept.features if f in wanted and f not in covered)
            if members:
                family = LIFECYCLE if members == (LEAD_AGE,) else str(concept.family)
                out.append(ReportConcept(concept.key, concept.label, family, members))
                covered.update(members)
    groups: dict[str, list[str]] = {}
    for name in wanted:
        if name not in covered:
            groups.setdefault(str(getattr(registry[name], "concept", "") or name), []).append(name)
    for key, members in groups.items():
        first = registry[members[0]]
        label = first.description if len(members) == 1 else key.replace("_", " ")
        out.append(ReportConcept(key, label, _family(members[0], first.family), tuple(members)))
    order = {f: i for i, f in enumerate(wanted)}
    return tuple(sorted(out, key=lambda c: min(order[f] for f in c.features)))


def plain_concepts(
    features: Iterable[str], families: Mapping[str, str]
) -> tuple[ReportConcept, ...]:
    """One concept per feature, for a window given no registry (its name in words)."""
    return tuple(
        ReportConcept(f, f.replace("_", " "), _family(f, families.get(f, "other")), (f,))
        for f in features
    )


def concept_contributions(
    contributions: np.ndarray, features: Sequence[str], concepts: Sequence[ReportConcept]
) -> np.ndarray:
    """Per row and concept, the sum of its features' SHAP values (rows x concepts)."""
    values = np.asarray(contributions, dtype=np.float64).reshape(len(contributions), -1)
    index = {f: j for j, f in enumerate(features)}
    out = np.zeros((len(values), len(concepts)))
    for k, concept in enumerate(concepts):
        columns = [index[f] for f in concept.features if f in index]
        if columns:
            out[:, k] = values[:, columns].sum(axis=1)
    return out


def concept_importance(
    contributions: np.ndarray, features: Sequence[str], concepts: Sequence[ReportConcept]
) -> pd.DataFrame:
    """Mean |contribution| per concept, largest first, with its family and features."""
    summed = concept_contributions(contributions, features, concepts)
    mean_abs = np.abs(summed).mean(axis=0) if len(summed) else np.zeros(len(concepts))
    total = float(mean_abs.sum())
    frame = pd.DataFrame(
        {
            "concept": [c.key for c in concepts],
            "label": [c.label for c in concepts],
            "family": [c.family for c in concepts],
            "features": [len(c.features) for c in concepts],
            "mean_abs_contribution": mean_abs,
            "share": mean_abs / total if total else mean_abs,
        }
    )
    return frame.sort_values("mean_abs_contribution", ascending=False, kind="stable")


def family_importance(importance: pd.DataFrame) -> pd.DataFrame:
    """The concepts' mean |contribution| summed per family, with each family's share."""
    families = importance.groupby("family")["mean_abs_contribution"].sum()
    total = families.sum()
    return pd.DataFrame(
        {"mean_abs_contribution": families, "share": families / total if total else families}
    ).sort_values("mean_abs_contribution", ascending=False)
