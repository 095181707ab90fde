"""The plain ways the bench compares against: pandas groupby features, per-row reasons;
and the per-lead renderings the tests pin the batch's texts to (rule reasons, facts).

They compute the same things as the production code (the bench asserts the features
agree) the way one would first write them, so the printed ratios say what the numpy
feature builder, the TreeSHAP tables and the vectorised reasons buy.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np
import pandas as pd

from leadscore.features.behaviour import NS_PER_DAY, type_codes
from leadscore.features.concepts import sign_allowed
from leadscore.features.config import FeatureConfig
from leadscore.features.contract import ACTIVITY_TYPE, LEAD_ID, OCCURRED_AT, VALUE
from leadscore.features.facts import (
    DISPLAY_LENGTHS,
    FACT_FRAME_COLUMNS,
    TIMELINE_LENGTH,
    type_labels,
)
from leadscore.features.registry import FeatureRegistry, count_name, decay_name, recency_name
from leadscore.models import reasons
from leadscore.models.config import ScoringConfig
from leadscore.models.rules import RuleScorer


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


def plain_rule_reasons(scorer: RuleScorer, X: pd.DataFrame) -> list[str]:
    """The rules' breakdown per row, one row at a time: each card line that applies, in
    words with the row's own value, sorted by |points| (then card order), ``json.dumps``."""
    lines = [line for line in scorer.card_lines() if line.points]
    amounts = [line.amount(X) for line in lines]
    out = []
    for i in range(len(X)):
        parts = []
        for order, (line, amount) in enumerate(zip(lines, amounts, strict=True)):
            if amount[i]:
                value = X[line.column].iloc[i] if line.column is not None else None
                points = float(np.round(line.points * amount[i], 2))
                parts.append((-abs(points), order, line.words(value, amount[i]), points))
        out.append(json.dumps([{"text": t, "points": p} for _, _, t, p in sorted(parts)]))
    return out


def _json_value(value: object) -> object:
    """A cell as the facts' JSON shows it: null if missing or infinite, whole floats as int."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float | np.floating):
        if not np.isfinite(value):
            return None
        return int(value) if float(value).is_integer() and abs(value) < 2**53 else float(value)
    return value.item() if isinstance(value, np.generic) else value


def _compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def plain_facts(
    leads: pd.DataFrame,
    activities: pd.DataFrame,
    as_of: pd.Timestamp,
    config: FeatureConfig,
    display: Mapping[str, str],
    limit: int = TIMELINE_LENGTH,
) -> pd.DataFrame:
    """``features.facts.lead_facts`` worked out one lead at a time: its activities before
    ``as_of`` sorted newest first (to the second, ties in input order), ``json.dumps`` of
    its timeline and of its attributes, its display columns stripped and cut."""
    acts = activities.assign(position=np.arange(len(activities)))
    acts = acts[acts[OCCURRED_AT].notna() & (acts[OCCURRED_AT] < as_of)]
    by_lead = {lead: group for lead, group in acts.groupby(LEAD_ID, observed=True, sort=False)}
    names = sorted(set(config.attributes.names))
    rows = []
    for lead in leads.to_dict(orient="records"):
        row: dict[str, object] = {LEAD_ID: lead[LEAD_ID]}
        for column, length in DISPLAY_LENGTHS.items():
            value = lead.get(display.get(column, ""), None)
            text = None if _json_value(value) is None else str(value).strip()[:length]
            row[column] = text or None
        events = by_lead.get(lead[LEAD_ID], acts.iloc[:0])
        second = events[OCCURRED_AT].dt.floor("s")
        events = events.assign(second=second).sort_values(
            ["second", "position"], ascending=[False, True]
        )[:limit]
        timeline = [
            {
                "type": type_labels(config, [kind])[0],
                "at": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "value": _json_value(value),
            }
            for kind, at, value in zip(
                events[ACTIVITY_TYPE], events["second"], events[VALUE], strict=True
            )
        ]
        row["last_activity"] = timeline[0]["type"] if timeline else None
        row["last_activity_at"] = timeline[0]["at"] if timeline else None
        row["attributes"] = _compact({n: _json_value(lead.get(n)) for n in names})
        row["timeline"] = _compact(timeline)
        rows.append(row)
    return pd.DataFrame(rows, columns=[LEAD_ID, *FACT_FRAME_COLUMNS])
