"""How a published batch did: the model against the rules, on the same leads.

Per batch, over the leads whose outcome is known (``models/monitor/outcomes.py``): ROC-AUC
and PR-AUC of the model's probability and of the rules' points (``rule_score``; ties count
half, as in ``models/evaluate.py``), the expected calibration error over 10 equal-count
bands, the capture of conversions in the top k% (ties at the cut split evenly), and the
realised conversion per grade with its 95% Wilson interval, model grades and rule grades
side by side. "Did the leads we told you to call first convert more, and by how much more
than the rules would have?"

Ranking metrics need both classes and at least ``monitor.min_conversions`` conversions;
below that they are None (a handful of conversions makes an AUC a coin toss). A batch
younger than the horizon gives interim figures (conversions so far) that the report shows
with their observed days and the decision never reads.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from leadscore.models.evaluate import expected_calibration_error, lift_and_capture
from leadscore.models.monitor.outcomes import Labels
from leadscore.models.monitor.result import GRADE_COLUMNS, METRIC_NAMES
from leadscore.models.report.calibration import wilson


def capture_key(percent: float, rules: bool = False) -> str:
    """``5.0`` -> ``capture_top_5`` (``capture_top_5_rules`` for the rules)."""
    return f"capture_top_{percent:g}" + ("_rules" if rules else "")


def metric_keys(top_percent: Sequence[float]) -> list[str]:
    """Every metric a batch reports, in order: METRIC_NAMES then the captures."""
    captures = [capture_key(k, rules) for k in top_percent for rules in (False, True)]
    return [*METRIC_NAMES, *captures]


def ranking_metrics(
    y: np.ndarray,
    probability: np.ndarray,
    rule_score: np.ndarray,
    *,
    top_percent: Sequence[float],
    min_conversions: int,
) -> dict[str, float | None]:
    """ROC-AUC, PR-AUC, ECE and capture, model and rules; None when not computable."""
    y = np.asarray(y, dtype=np.int64)
    conversions = int(y.sum())
    keys = ["roc_auc", "roc_auc_rules", "pr_auc", "pr_auc_rules", "ece"]
    keys += [capture_key(k, rules) for k in top_percent for rules in (False, True)]
    if conversions < max(1, min_conversions) or conversions == len(y):
        return dict.fromkeys(keys)
    p = np.asarray(probability, dtype=np.float64)
    r = np.asarray(rule_score, dtype=np.float64)
    out: dict[str, float | None] = {
        "roc_auc": float(roc_auc_score(y, p)),
        "roc_auc_rules": float(roc_auc_score(y, r)),
        "pr_auc": float(average_precision_score(y, p)),
        "pr_auc_rules": float(average_precision_score(y, r)),
        "ece": expected_calibration_error(y, p),
    }
    for k in top_percent:
        out[capture_key(k)] = float(lift_and_capture(y, p, k / 100)[1])
        out[capture_key(k, True)] = float(lift_and_capture(y, r, k / 100)[1])
    return out


def grade_rows(
    y: np.ndarray,
    probability: np.ndarray,
    grades: np.ndarray,
    grade_order: Sequence[str],
    ranking: str,
) -> list[dict[str, object]]:
    """Per grade (``grade_order`` first, then any other grade met, sorted): known leads,
    conversions, mean predicted probability, realised rate and its Wilson 95% interval.
    Grades are grouped once (``pd.factorize``), not compared row by row per grade."""
    codes, uniques = pd.factorize(np.asarray(grades, dtype=object))
    names = [str(u) for u in uniques]
    valid = codes >= 0
    size = len(names)
    n = np.bincount(codes[valid], minlength=size)
    hits = np.bincount(codes[valid], weights=np.asarray(y, np.float64)[valid], minlength=size)
    stated = np.bincount(
        codes[valid], weights=np.asarray(probability, np.float64)[valid], minlength=size
    )
    where = {name: i for i, name in enumerate(names)}
    rows = []
    for grade in [*grade_order, *sorted(set(names) - set(grade_order))]:
        i = where.get(grade)
        count = int(n[i]) if i is not None else 0
        converted = int(np.rint(hits[i])) if i is not None else 0
        low, high = wilson(float(converted), count)
        rows.append(
            {
                "ranking": ranking,
                "grade": grade,
                "n": count,
                "conversions": converted,
                "predicted": float(stated[i] / count) if count else float("nan"),
                "realised": converted / count if count else float("nan"),
                "low": low,
                "high": high,
            }
        )
    return rows


def grade_table(
    scores: pd.DataFrame,
    labels: Labels,
    *,
    batch_id: str,
    as_of: pd.Timestamp,
    grade_order: Sequence[str],
) -> pd.DataFrame:
    """GRADE_COLUMNS rows of one batch: model grades, then rule grades, known leads only."""
    known = labels.known
    y = labels.y[known]
    p = scores["probability"].to_numpy(dtype=np.float64)[known]
    rows = grade_rows(y, p, scores["grade"].to_numpy()[known], grade_order, "model")
    rows += grade_rows(y, p, scores["rule_grade"].to_numpy()[known], grade_order, "rules")
    frame = pd.DataFrame(rows)
    frame.insert(0, "batch_id", batch_id)
    frame.insert(1, "as_of", as_of)
    frame["observed_days"] = labels.observed_days
    frame["mature"] = labels.mature
    return frame[list(GRADE_COLUMNS)]
