"""The retrain decision: each crossed threshold one reason; censored batches never read."""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadscore.models.monitor.config import MonitorConfig, RetrainThresholds
from leadscore.models.monitor.decide import NO_ACTION, decide, judged_batch
from leadscore.models.monitor.result import DRIFT_COLUMNS, GRADE_COLUMNS, BatchResult

NOW = pd.Timestamp("2026-06-01", tz="UTC")


def _drift(psi: dict[str, float]) -> pd.DataFrame:
    rows = [
        {
            "batch_id": "x",
            "as_of": NOW,
            "feature": name,
            "kind": "prediction" if name == "prediction" else "categorical",
            "psi": value,
            "missing_ref": 0.0,
            "missing_now": 0.0,
            "unseen_now": np.nan,
            "top_shift": "",
        }
        for name, value in psi.items()
    ]
    return pd.DataFrame(rows, columns=list(DRIFT_COLUMNS))


def _batch(
    batch_id: str,
    days_ago: int,
    *,
    mature: bool,
    roc_auc: float | None = 0.9,
    ece: float | None = 0.01,
    conversions: int = 100,
    version: str = "3",
    psi: dict[str, float] | None = None,
) -> BatchResult:
    return BatchResult(
        batch_id=batch_id,
        as_of=NOW - pd.Timedelta(days=days_ago),
        model_version=version,
        n_leads=1000,
        n_known=1000,
        conversions=conversions,
        observed_days=90 if mature else days_ago,
        mature=mature,
        metrics={"roc_auc": roc_auc, "ece": ece},
        grades=pd.DataFrame(columns=list(GRADE_COLUMNS)),
        drift=_drift(psi or {"lead_source": 0.01, "prediction": 0.01}),
        quarantine={},
    )


def _decide(batches, config=None, **kw):
    args = {
        "config": config or MonitorConfig(),
        "now": NOW,
        "champion_version": "3",
        "validation_roc_auc": 0.91,
        "trained_at": NOW - pd.Timedelta(days=10),
        "last_retrain_at": None,
    }
    return decide(batches, **{**args, **kw})


def test_all_within_bounds_is_no_action() -> None:
    decision = _decide([_batch("old", 120, mature=True), _batch("new", 1, mature=False)])
    assert (decision.action, decision.reasons, decision.text) == ("none", (), NO_ACTION)
    assert NO_ACTION == "no action: all within bounds"


def test_every_crossed_threshold_is_one_reason_in_words() -> None:
    newest = _batch(
        "new",
        1,
        mature=False,
        roc_auc=0.5,  # censored: never read
        psi={"lead_source": 0.31, "industry": 0.45, "country": 0.2, "prediction": 0.25},
    )
    mature = _batch("m", 100, mature=True, roc_auc=0.83, ece=0.07)
    decision = _decide([mature, newest], trained_at=NOW - pd.Timedelta(days=40))
    assert decision.action == "retrain"
    assert decision.reasons == (
        "PSI of industry 0.45 > 0.2",
        "PSI of lead_source 0.31 > 0.2",  # 0.2 itself is not above 0.2
        "PSI of the prediction 0.25 > 0.2",
        "live ROC-AUC 0.830 is 0.080 below validation 0.910 > 0.05 (batch m)",
        "ECE 0.070 > 0.05 (batch m)",
        "40 days since training > 35",
    )
    assert decision.text == "retrain: " + "; ".join(decision.reasons)


def test_drift_is_read_on_the_newest_batch_only() -> None:
    old = _batch("old", 30, mature=False, psi={"lead_source": 0.9})
    assert _decide([old, _batch("new", 1, mature=False)]).action == "none"
    assert _decide([_batch("new", 1, mature=False), old]).action == "none"  # order-free


def test_live_metrics_come_from_the_newest_mature_batch_of_the_champion_with_enough_conversions():
    batches = [
        _batch("m-old", 200, mature=True, roc_auc=0.70),
        _batch("m-new", 100, mature=True, roc_auc=0.90),
        _batch("m-other-version", 95, mature=True, roc_auc=0.60, version="2"),
        _batch("m-few", 92, mature=True, roc_auc=0.50, conversions=29),
        _batch("young", 10, mature=False, roc_auc=0.40),
    ]
    assert judged_batch(batches, "3", 30).batch_id == "m-new"
    assert judged_batch(batches, None, 30).batch_id == "m-other-version"
    assert judged_batch(batches, "3", 101) is None
    assert _decide(batches).action == "none"


def test_nothing_mature_or_no_validation_figure_reads_no_performance() -> None:
    young = _batch("young", 10, mature=False, roc_auc=0.4, ece=0.5)
    assert _decide([young]).action == "none"
    mature = _batch("m", 100, mature=True, roc_auc=0.5, ece=None)
    assert _decide([mature], validation_roc_auc=None).action == "none"
    assert _decide([mature]).reasons[0].startswith("live ROC-AUC 0.500 is 0.410 below")


def test_a_null_threshold_is_not_checked() -> None:
    quiet = MonitorConfig(
        thresholds=RetrainThresholds(
            max_feature_psi=None,
            max_prediction_psi=None,
            max_auc_drop=None,
            max_calibration_error=None,
            max_days_since_training=None,
        )
    )
    batch = _batch("m", 100, mature=True, roc_auc=0.1, ece=0.9, psi={"a": 9.0, "prediction": 9})
    assert _decide([batch], config=quiet, trained_at=NOW - pd.Timedelta(days=999)).text == NO_ACTION


def test_the_cooldown_holds_a_retrain_back_and_says_why() -> None:
    batch = _batch("new", 1, mature=False, psi={"lead_source": 0.31})
    held = _decide([batch], last_retrain_at=NOW - pd.Timedelta(days=3))
    assert held.action == "none" and held.reasons == ("PSI of lead_source 0.31 > 0.2",)
    assert held.text == (
        "no action: last retrain 3 days ago < 7 (held back: PSI of lead_source 0.31 > 0.2)"
    )
    assert _decide([batch], last_retrain_at=NOW - pd.Timedelta(days=7)).action == "retrain"


def test_no_batches_can_still_ask_for_a_retrain_by_age() -> None:
    assert _decide([]).text == NO_ACTION
    old = _decide([], trained_at=NOW - pd.Timedelta(days=36, hours=1))
    assert old.text == "retrain: 36 days since training > 35"
