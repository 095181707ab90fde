"""The plain ways the bench compares against: pandas groupby features, per-row reasons.

They compute the same things as the production code (the bench asserts the features
agree) the way one would first write them, so the printed ratios say what the numpy
feature builder, the TreeSHAP tables and the vectorised reasons buy.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadscore.features.behaviour import NS_PER_DAY, type_codes
from leadscore.features.concepts import sign_allowed
from leadscore.features.config import FeatureConfig
from leadscore.features.registry import FeatureRegistry, count_name, decay_name, recency_name
from leadscore.models import reasons
from leadscore.models.config import ScoringConfig


def pandas_behaviour(
    entities: pd.DataFrame, activities: pd.DataFrame, config: FeatureConfig
) -> pd.DataFrame:
    """Windowed counts, decayed sums and recency per (entity, type): merge + groupby + unstack."""
    names = config.type_names
    acts = activities.assign(kind=type_codes(activities["activity_type"], config))
    rows = entities.reset_index(drop=True).assign(row=lambda f: np.arange(len(f)))
    pairs = rows.merge(acts, on="lead_id", how="inner")
    pairs = pairs[pairs["occurred_at"] < pairs["as_of"]]
    age = (pairs["as_of"] - pairs["occurred_at"]).dt.total_seconds() * 1e9 / NS_PER_DAY
    pairs = pairs.assign(age=age, decay=np.exp2(-age / config.half_life_days))
    out: dict[str, pd.Series] = {}
    grouped = pairs.groupby(["row", "kind"])
    for window in config.windows_days:
        counts = pairs[pairs["age"] < window].groupby(["row", "kind"]).size().unstack(fill_value=0)
        for k, name in enumerate(names):
            out[count_name(name, window)] = counts.get(k, pd.Series(dtype=float))
    decayed = grouped["decay"].sum().unstack(fill_value=0.0)
    latest = grouped["age"].min().unstack()
    for k, name in enumerate(names):
        out[decay_name(name)] = decayed.get(k, pd.Series(dtype=float))
        out[recency_name(name)] = latest.get(k, pd.Series(dtype=float))
    frame = pd.DataFrame(out).reindex(np.arange(len(rows)))
    return frame.fillna({c: 0.0 for c in frame.columns if not c.startswith("days_since")})


def rowwise_reasons(
    contributions: np.ndarray,
    X: pd.DataFrame,
    features: list[str],
    registry: FeatureRegistry,
    config: ScoringConfig,
) -> list[str]:
    """Reasons worked out one row at a time: each concept's sum, share and sign rule,
    a sort, ``Concept.text`` of the row's own values and ``reasons.encode`` per lead."""
    position = {name: i for i, name in enumerate(features)}
    concepts = [
        (c, [position[f] for f in c.features if f in position])
        for c in registry.concepts().values()
    ]
    concepts = [(c, cols) for c, cols in concepts if cols]
    out = []
    for row, values in enumerate(X.to_dict(orient="records")):
        sums = [float(np.sum(contributions[row, cols])) for _, cols in concepts]
        total = sum(abs(v) for v in sums)
        candidates = []
        for (concept, cols), value in zip(concepts, sums, strict=True):
            share = abs(value) / total if total > 0 else 0.0
            facts = concept.fact_values(lambda name: np.array([values[name]]))  # noqa: B023
            allowed = sign_allowed(concept.direction, concept.absent(facts), np.array([value]))
            if abs(value) < config.min_abs_contribution or share < config.min_reason_share:
                continue
            if allowed[0]:
                shown = {name: v[0].item() if isinstance(v[0], np.generic) else v[0]
                         for name, v in facts.items()}  # fmt: skip
                candidates.append(
                    {
                        "concept": concept.key,
                        "text": concept.text(shown, config.new_lead_days),
                        "direction": "+" if value > 0 else "-",
                        "contribution": value,
                        "share": share,
                        "features": {features[c]: contributions[row, c] for c in cols},
                    }
                )
        positive = sorted((r for r in candidates if r["direction"] == "+"),
                          key=lambda r: -r["contribution"])[: config.top_positive]  # fmt: skip
        negative = sorted((r for r in candidates if r["direction"] == "-"),
                          key=lambda r: r["contribution"])[: config.top_negative]  # fmt: skip
        out.append(reasons.encode([*positive, *negative]))
    return out
