"""monitor(): every archived batch judged with censoring, then one decision."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.models.monitor.config import MonitorConfig
from leadscore.models.monitor.profile import batch_counts, reference_from_examples
from leadscore.models.monitor.result import (
    DRIFT_COLUMNS,
    GRADE_COLUMNS,
    METRIC_NAMES,
    ArchivedBatch,
)
from leadscore.models.monitor.run import monitor

NOW = pd.Timestamp("2026-06-01", tz="UTC")
DAY = pd.Timedelta(days=1)
N = 600


def _world(seed: int = 0):
    """Reference rows, and one batch of N leads whose outcomes follow its probabilities."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "lead_source": pd.Series(rng.choice(["web", "partner", "event"], N), dtype=object),
            "visits": rng.poisson(2.0, N).astype(float),
        }
    )
    p = rng.beta(1.0, 4.0, N)
    reference = reference_from_examples(X, p, as_of=None, days=90, bins=5)
    scores = pd.DataFrame(
        {
            "lead_id": [f"L{i}" for i in range(N)],
            "probability": p.astype(np.float32),
            "grade": np.where(p > 0.4, "A", np.where(p > 0.2, "B", "C")),
            "rule_score": np.round(rng.uniform(0, 100, N), 2),
            "rule_grade": rng.choice(["A", "B", "C", "D"], N),
            "cell": "engaged fit",
        }
    )
    return rng, X, p, reference, scores


def _outcomes(rng, scores, p, as_of) -> pd.DataFrame:
    converted = rng.uniform(size=len(p)) < p
    return pd.DataFrame(
        {
            "lead_id": scores["lead_id"],
            "status": np.where(converted, "converted", "lost"),
            "closed_at": as_of + pd.to_timedelta(rng.uniform(0.5, 80, len(p)), unit="D"),
        }
    )


def test_monitor_judges_every_batch_with_censoring_and_decides() -> None:
    rng, X, p, reference, scores = _world()
    old_as_of, new_as_of = NOW - 120 * DAY, NOW - 10 * DAY
    old = ArchivedBatch(
        "old", old_as_of, "3", scores, batch_counts(X, p, reference).to_dict(), {}, N
    )
    shifted = X.assign(lead_source="tiktok")  # a source the reference never had
    new_scores = scores.assign(lead_id=[f"M{i}" for i in range(N)])
    new = ArchivedBatch(
        "new",
        new_as_of,
        "3",
        new_scores,
        batch_counts(shifted, p, reference).to_dict(),
        {"bad date": 6, "duplicate id": 4},
        N + 10,
    )
    outcomes = pd.concat(
        [
            _outcomes(rng, scores, p, old_as_of).iloc[:-50],  # 50 leads gone from the source
            _outcomes(rng, new_scores, p, new_as_of),
        ],
        ignore_index=True,
    )
    result = monitor(
        [new, old],  # any order: results come oldest first
        outcomes,
        now=NOW,
        horizon_days=90,
        config=MonitorConfig(min_conversions=10),
        grade_order=["A", "B", "C", "D"],
        champion_version="3",
        validation_roc_auc=0.99,
        trained_at=NOW - 20 * DAY,
        last_retrain_at=None,
    )
    first, second = result.batches
    assert (first.batch_id, second.batch_id) == ("old", "new")
    assert first.mature and first.observed_days == 90 and first.n_known == N - 50
    assert not second.mature and second.observed_days == 10
    closed_by_now = (outcomes["closed_at"] <= new_as_of + 10 * DAY) & outcomes[
        "lead_id"
    ].str.startswith("M")
    assert second.conversions == int((closed_by_now & (outcomes["status"] == "converted")).sum())
    assert set(first.metrics) == {
        *METRIC_NAMES,
        *(f"capture_top_{k}{s}" for k in (5, 10, 20) for s in ("", "_rules")),
    }
    assert first.metrics["roc_auc"] > 0.6  # outcomes drawn from the probabilities
    assert abs(first.metrics["roc_auc_rules"] - 0.5) < 0.1  # random rule points
    assert first.metrics["estimated_roc_auc"] == pytest.approx(0.7, abs=0.1)
    assert first.metrics["max_feature_psi"] == pytest.approx(0.0)
    assert first.metrics["quarantine_share"] == 0.0
    assert second.metrics["max_feature_psi"] > 5
    assert second.metrics["quarantine_share"] == pytest.approx(10 / 610)
    assert list(first.grades.columns) == list(GRADE_COLUMNS)
    assert list(second.drift.columns) == list(DRIFT_COLUMNS)
    assert second.drift.iloc[0]["unseen_now"] == 1.0
    assert result.decision.action == "retrain"
    assert result.decision.reasons[0].startswith("PSI of lead_source ")
    assert any(r.startswith("live ROC-AUC") and "(batch old)" in r for r in result.decision.reasons)
    assert result.now == NOW and result.horizon_days == 90 and result.champion_version == "3"


def test_monitor_survives_an_empty_batch_a_batch_without_reference_and_no_outcomes() -> None:
    _, X, p, reference, scores = _world()
    empty = ArchivedBatch(
        "empty",
        NOW - 100 * DAY,
        "3",
        scores.iloc[:0],
        batch_counts(X.iloc[:0], p[:0], reference).to_dict(),
    )
    bare = ArchivedBatch("bare", NOW - 5 * DAY, "3", scores, None)
    no_outcomes = pd.DataFrame({"lead_id": [], "status": [], "closed_at": pd.to_datetime([])})
    result = monitor(
        [empty, bare],
        no_outcomes,
        now=NOW,
        horizon_days=90,
        config=MonitorConfig(),
        grade_order=["A", "B", "C", "D"],
        champion_version=None,
        validation_roc_auc=None,
        trained_at=None,
        last_retrain_at=None,
    )
    empty_result, bare_result = result.batches
    assert empty_result.n_leads == 0 and empty_result.metrics["estimated_roc_auc"] is None
    assert empty_result.drift["psi"].isna().all()
    assert bare_result.n_known == 0 and bare_result.drift.empty
    assert bare_result.metrics["roc_auc"] is None and bare_result.metrics["max_feature_psi"] is None
    assert bare_result.metrics["quarantine_share"] is None
    assert bare_result.grades["n"].sum() == 0
    assert result.decision.text == "no action: all within bounds"


def judged_world() -> tuple[list[ArchivedBatch], pd.DataFrame, dict]:
    """Three archived batches, the two older mature and the newest 10 days old with a
    shifted lead source, their outcomes, and monitor()'s keyword arguments (the decision
    reads the newest mature batch's live ROC-AUC against a high validation ROC-AUC)."""
    rng, X, p, reference, scores = _world(3)
    batches, outcomes = [], []
    for name, days, frame in (
        ("old", 150, X),
        ("mid", 100, X),
        ("new", 10, X.assign(lead_source="tiktok")),
    ):
        as_of = NOW - days * DAY
        mine = scores.assign(lead_id=[f"{name}{i}" for i in range(N)])
        counts = batch_counts(frame, p, reference).to_dict()
        batches.append(ArchivedBatch(name, as_of, "3", mine, counts, {"bad date": days}, N + days))
        outcomes.append(_outcomes(rng, mine, p, as_of))
    kwargs = {
        "now": NOW,
        "horizon_days": 90,
        "config": MonitorConfig(min_conversions=10),
        "grade_order": ["A", "B", "C", "D"],
        "champion_version": "3",
        "validation_roc_auc": 0.99,
        "trained_at": NOW - 20 * DAY,
        "last_retrain_at": None,
    }
    return batches, pd.concat(outcomes, ignore_index=True), kwargs


def test_stored_mature_results_give_the_decision_of_judging_everything() -> None:
    batches, outcomes, kwargs = judged_world()
    everything = monitor(batches, outcomes, **kwargs)
    mature = [r for r in everything.batches if r.mature]
    assert [r.batch_id for r in mature] == ["old", "mid"] and everything.reused == ()

    # tonight: only the young batch read and judged, the mature ones taken as stored
    tonight = monitor(batches[2:], outcomes, previous=mature, **kwargs)
    assert tonight.decision == everything.decision
    assert tonight.decision.action == "retrain"
    reasons = tonight.decision.reasons
    assert reasons[0].startswith("PSI of lead_source ")  # the young batch, judged tonight
    assert any(r.startswith("live ROC-AUC") and "(batch mid)" in r for r in reasons)  # stored
    assert [r.batch_id for r in tonight.batches] == ["old", "mid", "new"]
    assert tonight.reused == ("old", "mid")
    for stored, again in zip(tonight.batches, everything.batches, strict=True):
        assert stored.metrics == again.metrics and stored.conversions == again.conversions
    # a batch both stored and given is judged again (the archive wins): not reused
    both = monitor(batches[1:], outcomes, previous=mature, **kwargs)
    assert both.reused == ("old",) and both.decision == everything.decision


def test_only_final_stored_results_are_reused() -> None:
    from dataclasses import replace

    from leadscore.models.monitor.run import reusable

    batches, outcomes, kwargs = judged_world()
    old, mid, new = monitor(batches, outcomes, **kwargs).batches
    config = kwargs["config"]
    assert reusable([old, mid, new], now=NOW, horizon_days=90, config=config) == [old, mid]
    # another horizon, a now moved back before mid's horizon closed, other capture levels
    assert reusable([old, mid], now=NOW, horizon_days=60, config=config) == []
    assert reusable([old, mid], now=NOW - 20 * DAY, horizon_days=90, config=config) == [old]
    other = MonitorConfig(min_conversions=10, top_percent=[5, 10, 25])
    assert reusable([old, mid], now=NOW, horizon_days=90, config=other) == []
    # a young stored result is stale: monitor() refuses it rather than decide on it
    with pytest.raises(ValueError, match=r"not final.*'new'"):
        monitor(batches[:2], outcomes, previous=[new], **kwargs)
    with pytest.raises(ValueError, match="not final"):
        monitor([], outcomes, previous=[replace(old, observed_days=60)], **kwargs)
