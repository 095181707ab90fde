"""On-demand scoring of one posted lead (``POST /v1/score``): the batch's code path, one row.

The posted lead goes through the same contract checks, feature code, rules and scoring as
the nightly batch, so its score equals the one the batch would give it at the same instant.
Its reasons are the batch's (reasons JSON v2: concepts, the lead's facts in words); every
feature's exact SHAP value comes with them (``contributions``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from fastapi import HTTPException

from leadscore.features.config import FeatureConfig, ValidationConfig
from leadscore.models.config import RulesConfig, ScoringConfig
from leadscore.serving.lookup import parse_reasons
from leadscore.serving.schemas import ScoreRequest, ScoreResult
from leadscore.serving.schemas import utc as _utc

ModelLoader = Callable[[], tuple[Any, str]]
"""Returns ``(fitted LeadModel, model version)``; raises LookupError if there is none."""


@dataclass(frozen=True)
class OnDemandScorer:
    """What ``POST /v1/score`` needs: the configs of the shared feature/scoring code, a
    loader of the champion model (called once, on the first request, then cached) and the
    data contract's row rules (``data.validation``: ranges, future tolerance)."""

    features: FeatureConfig
    rules: RulesConfig
    scoring: ScoringConfig
    model_loader: ModelLoader
    validation: ValidationConfig = field(default_factory=ValidationConfig)


def score_request(
    request: ScoreRequest, scorer: OnDemandScorer, model: Any, version: str
) -> ScoreResult:
    """Read the posted lead with the contract reader, build its features with the batch
    code path and score it."""
    from leadscore.features.reader import ContractReader, RefusedError
    from leadscore.models.base import missing_columns, registry_of
    from leadscore.models.recipe import scoring_rules
    from leadscore.models.scoring import Partition, partition_features, score_frame

    config = scorer.features
    if config.market.enabled:
        raise HTTPException(
            422,
            "this model reads the recent conversion rate of closed leads (features.market), "
            "which one posted lead does not carry: read the lead's nightly score instead",
        )
    declared = set(config.attributes.names)
    unknown = sorted(set(request.lead.attributes) - declared)
    if unknown:
        raise HTTPException(422, f"unknown attribute(s) {unknown}: declared are {sorted(declared)}")
    as_of = _utc(request.as_of) if request.as_of else datetime.now(UTC)
    lead = request.lead
    created = _utc(lead.created_at)
    if created > as_of:
        raise HTTPException(422, "lead.created_at is after as_of")
    row: dict[str, Any] = {name: None for name in config.attributes.names}
    row.update(lead.attributes)
    # `segment` may also be a declared attribute (and route a segmented model): either
    # place may carry it, but they may not disagree.
    posted_segment = lead.attributes.get("segment")
    if lead.segment is not None and posted_segment is not None and posted_segment != lead.segment:
        raise HTTPException(422, "lead.segment and lead.attributes.segment differ")
    row.update(
        lead_id=lead.lead_id,
        created_at=created,
        status="open",
        closed_at=pd.NaT,
        owner=lead.owner,
        segment=lead.segment if lead.segment is not None else posted_segment,
    )
    raw_acts = pd.DataFrame(
        [
            {
                "lead_id": lead.lead_id,
                "activity_type": a.activity_type,
                "occurred_at": _utc(a.occurred_at),
                "value": a.value,
            }
            for a in request.activities
        ],
        columns=["lead_id", "activity_type", "occurred_at", "value"],
    )
    # The same reader, checks and reasons as the batch's files (features.reader).
    reader = ContractReader.of(config, scorer.validation)
    try:
        leads, acts = reader.posted(pd.DataFrame([row]), raw_acts)
    except RefusedError as exc:
        raise HTTPException(422, str(exc)) from exc
    X = partition_features(Partition(leads.rows, acts.rows), pd.Timestamp(as_of), config)
    absent = missing_columns(model, list(X.columns))
    if absent:  # e.g. account features of data.joins: other leads' rows, not this request's
        raise HTTPException(
            422,
            f"this model reads {absent}, which one posted lead does not carry (features "
            "of other rows, such as data.joins' account features): read the lead's nightly "
            "score instead",
        )
    rules = scoring_rules(scorer.rules, config)
    frame = score_frame(X, model, rules, registry_of(model), scorer.scoring, leads.rows)
    out = frame.iloc[0].to_dict()
    shap, _ = model.contributions(X)  # every feature's exact SHAP value, for who wants them
    return ScoreResult(
        lead_id=lead.lead_id,
        probability=float(out["probability"]),
        score=int(out["score"]),
        grade=str(out["grade"]),
        fit=_finite_or_none(out.get("fit")),
        engagement=_finite_or_none(out.get("engagement")),
        fit_score=_int_or_none(out.get("fit_score")),
        engagement_score=_int_or_none(out.get("engagement_score")),
        cell=None if pd.isna(out.get("cell")) else str(out["cell"]),
        rule_score=_finite_or_none(out.get("rule_score")),
        rule_grade=None if out.get("rule_grade") is None else str(out["rule_grade"]),
        reasons=parse_reasons(out.get("reasons")),
        contributions={f: float(v) for f, v in zip(model.features, shap[0], strict=True)},
        rule_reasons=rules.explain(X)[0],
        model_version=version,
        as_of=as_of,
    )


def _int_or_none(value: Any) -> int | None:
    return None if pd.isna(value) else int(value)


def _finite_or_none(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None
