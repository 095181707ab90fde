"""A hand-built monitor run for the report, API and page tests (no model, no flow).

Four batches over a 30-day horizon, outcomes known up to 2026-03-20: three mature (two in
January, one in February) and one scored 2026-03-08, watched 12 days (still maturing).
The newest batch's ``lead_source`` moved (PSI 0.31), so the decision is a retrain.
"""

from __future__ import annotations

import pandas as pd

from leadscore.models.monitor.result import (
    DRIFT_COLUMNS,
    GRADE_COLUMNS,
    BatchResult,
    Decision,
    MonitorResult,
)
from leadscore.models.report.calibration import wilson

HORIZON = 30
NOW = pd.Timestamp("2026-03-20", tz="UTC")

# batch_id, as_of, observed days, (grade -> (n, conversions, predicted)) for model and rules
BATCHES = {
    "b1": ("2026-01-05", 30, {"A": (100, 30, 0.28), "B": (300, 24, 0.09), "C": (580, 6, 0.01)},
           {"A": (100, 20, 0.20), "B": (300, 25, 0.08), "C": (580, 15, 0.03)}),
    "b2": ("2026-01-20", 30, {"A": (110, 33, 0.30), "B": (290, 20, 0.08), "C": (600, 7, 0.01)},
           {"A": (110, 22, 0.21), "B": (290, 24, 0.08), "C": (600, 14, 0.03)}),
    "b3": ("2026-02-03", 30, {"A": (90, 27, 0.29), "B": (310, 25, 0.08), "C": (600, 5, 0.01)},
           {"A": (90, 18, 0.22), "B": (310, 26, 0.08), "C": (600, 13, 0.03)}),
    "b4": ("2026-03-08", 12, {"A": (100, 9, 0.30), "B": (300, 6, 0.08), "C": (600, 1, 0.01)},
           {"A": (100, 6, 0.20), "B": (300, 6, 0.08), "C": (600, 4, 0.03)}),
}  # fmt: skip

METRICS = {
    "b1": {"roc_auc": 0.812, "roc_auc_rules": 0.731, "capture_top_10": 0.41,
           "capture_top_10_rules": 0.28, "quarantine_share": 0.004},
    "b2": {"roc_auc": 0.805, "roc_auc_rules": 0.722, "capture_top_10": 0.40,
           "capture_top_10_rules": 0.27, "quarantine_share": 0.006},
    "b3": {"roc_auc": 0.798, "roc_auc_rules": 0.735, "capture_top_10": 0.39,
           "capture_top_10_rules": 0.29, "quarantine_share": 0.012},
    "b4": {"roc_auc": None, "roc_auc_rules": None, "capture_top_10": 0.35,
           "capture_top_10_rules": 0.25, "quarantine_share": 0.031},
}  # fmt: skip

COMMON = {
    "pr_auc": 0.42,
    "pr_auc_rules": 0.30,
    "ece": 0.021,
    "estimated_roc_auc": 0.787,
    "prediction_psi": 0.05,
    "max_feature_psi": 0.08,
    "capture_top_5": 0.22,
    "capture_top_5_rules": 0.15,
}

DRIFT = [
    # feature, kind, psi, missing_ref, missing_now, unseen_now, top_shift
    ("employees", "numeric", 0.12, 0.0, 0.0, None, "employees 50 to 200 30.0% -> 41.0%"),
    ("prediction", "prediction", 0.05, 0.0, 0.0, None, "probability 0.1 to 0.2 20.0% -> 24.0%"),
    ("lead_source", "categorical", 0.31, 0.0, 0.0, 0.004, "lead_source=partner 2.0% -> 21.3%"),
    ("pricing_views", "numeric", None, 0.01, 0.4, None, None),
]


def grade_frame(batch_id: str) -> pd.DataFrame:
    as_of, days, model, rules = BATCHES[batch_id]
    rows = []
    for ranking, grades in (("model", model), ("rules", rules)):
        for grade, (n, conversions, predicted) in grades.items():
            low, high = wilson(conversions, n)
            rows.append(
                {
                    "batch_id": batch_id,
                    "as_of": pd.Timestamp(as_of, tz="UTC"),
                    "ranking": ranking,
                    "grade": grade,
                    "n": n,
                    "conversions": conversions,
                    "predicted": predicted,
                    "realised": conversions / n,
                    "low": low,
                    "high": high,
                    "observed_days": days,
                    "mature": days == HORIZON,
                }
            )
    return pd.DataFrame(rows, columns=list(GRADE_COLUMNS))


def drift_frame(batch_id: str) -> pd.DataFrame:
    as_of = pd.Timestamp(BATCHES[batch_id][0], tz="UTC")
    rows = [{"batch_id": batch_id, "as_of": as_of, **dict(zip(DRIFT_COLUMNS[2:], r, strict=True))}
            for r in DRIFT]  # fmt: skip
    return pd.DataFrame(rows, columns=list(DRIFT_COLUMNS))


def batch(batch_id: str) -> BatchResult:
    as_of, days, model, _ = BATCHES[batch_id]
    n = sum(v[0] for v in model.values())
    conversions = sum(v[1] for v in model.values())
    newest = batch_id == "b4"
    return BatchResult(
        batch_id=batch_id,
        as_of=pd.Timestamp(as_of, tz="UTC"),
        model_version="3",
        n_leads=n + 20,
        n_known=n,
        conversions=conversions,
        observed_days=days,
        mature=days == HORIZON,
        metrics={**COMMON, **METRICS[batch_id]} | ({"max_feature_psi": 0.31} if newest else {}),
        grades=grade_frame(batch_id),
        drift=drift_frame(batch_id) if newest else pd.DataFrame(columns=list(DRIFT_COLUMNS)),
        quarantine={"bad email": 20, "missing lead_id": 11} if newest else {"bad email": 4},
    )


def sample_result(action: str = "retrain", ran: str = "2026-03-20 03:00") -> MonitorResult:
    """The four batches and a decision (``"retrain"`` on lead_source, or ``"none"``),
    the monitor run made at ``ran`` (UTC)."""
    if action == "retrain":
        decision = Decision(
            "retrain", ("PSI of lead_source 0.31 > 0.2",), "retrain: PSI of lead_source 0.31 > 0.2"
        )
    else:
        decision = Decision("none", (), "no action: all within bounds")
    return MonitorResult(
        created_at=pd.Timestamp(ran, tz="UTC"),
        now=NOW,
        champion_version="3",
        horizon_days=HORIZON,
        batches=tuple(batch(b) for b in BATCHES),
        decision=decision,
    )
