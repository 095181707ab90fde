"""The plain ways the bench compares against: pandas groupby features, per-row reasons.

They compute the same things as the production code (the bench asserts the features
agree) the way one would first write them, so the printed ratios say what the numpy
feature builder, the TreeSHAP tables and the vectorised reasons buy.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from leadscore.features.behaviour import NS_PER_DAY, type_codes
from leadscore.features.config import FeatureConfig
from leadscore.features.registry import FeatureRegistry, count_name, decay_name, recency_name
from leadscore.models.config import ScoringConfig
from leadscore.models.explain import _top


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
    """Reasons rendered one row at a time (``render`` + ``json.dumps`` per lead)."""
    pos, pos_ok = _top(contributions, config.top_positive, 1, config.min_abs_contribution)
    neg, neg_ok = _top(contributions, config.top_negative, -1, config.min_abs_contribution)
    out = []
    for row, values in enumerate(X.to_dict(orient="records")):
        reasons = []
        for idx, ok, direction in ((pos, pos_ok, "+"), (neg, neg_ok, "-")):
            for col, keep in zip(idx[row], ok[row], strict=True):
                if keep:
                    name = features[col]
                    reasons.append(
                        {
                            "feature": name,
                            "text": registry[name].render(values),
                            "direction": direction,
                            "contribution": round(float(contributions[row, col]), 4),
                        }
                    )
        out.append(json.dumps(reasons))
    return out
