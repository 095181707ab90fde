"""Per-segment and per-owner views of the validation window: where the model holds up.

Each group (a segment, an owner) gets its leads, converted leads, snapshots, observed
conversion rate, the model's and the rules' mean stated probability, and each one's
ROC-AUC inside the group, where the group has both outcomes with enough rows to rank
(else "too few"). A model that ranks well overall can still rank one owner's leads badly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from leadscore.features.contract import LEAD_ID, OWNER, SEGMENT

MIN_CLASS_ROWS = 10
"""A group's ROC-AUC is shown only with at least this many converting and non-converting
rows; below it the ranking inside the group is noise."""

MAX_GROUPS = 25
"""Groups shown one per row (most snapshots first); the rest are summed in one row."""

TOO_FEW = "too few"
NONE = "(none)"
GROUP_COLUMNS = (SEGMENT, OWNER)


def validation_entities(entities: pd.DataFrame, leads: pd.DataFrame) -> pd.DataFrame:
    """The validation rows' lead id and as-of time, with each lead's owner and segment
    (from the leads table, by lead id) where the export has them."""
    out = entities.reset_index(drop=True).copy()
    for column in GROUP_COLUMNS:
        if column in leads.columns:
            by_lead = leads.drop_duplicates(LEAD_ID).set_index(LEAD_ID)[column]
            out[column] = out[LEAD_ID].map(by_lead).to_numpy(dtype=object)
    return out


def _auc(y: np.ndarray, score: np.ndarray) -> object:
    positives = int(y.sum())
    if positives < MIN_CLASS_ROWS or len(y) - positives < MIN_CLASS_ROWS:
        return TOO_FEW
    return float(roc_auc_score(y, score))


def _row(frame: pd.DataFrame) -> dict[str, object]:
    y = frame["y"].to_numpy(dtype=np.float64)
    return {
        "leads": int(frame["lead"].nunique()),
        "conversions": int(frame.loc[frame["y"] == 1, "lead"].nunique()),
        "snapshots": len(frame),
        "observed_rate": float(y.mean()),
        "model_mean_probability": float(frame["p"].mean()),
        "rules_mean_probability": float(frame["rule_p"].mean()),
        "model_roc_auc": _auc(y, frame["model"].to_numpy()),
        "rules_roc_auc": _auc(y, frame["rules"].to_numpy()),
    }


def group_table(
    keys: pd.Series,
    leads: pd.Series,
    y: np.ndarray,
    model_ranking: np.ndarray,
    model_probability: np.ndarray,
    rule_points: np.ndarray,
    rule_probability: np.ndarray,
    max_groups: int = MAX_GROUPS,
) -> pd.DataFrame:
    """One row per group (most snapshots first; past ``max_groups`` summed in one row)."""
    frame = pd.DataFrame(
        {
            "group": keys.fillna(NONE).astype(str).to_numpy(),
            "lead": leads.to_numpy(),
            "y": np.asarray(y),
            "p": np.asarray(model_probability, dtype=np.float64),
            "rule_p": np.asarray(rule_probability, dtype=np.float64),
            "model": np.asarray(model_ranking, dtype=np.float64),
            "rules": np.asarray(rule_points, dtype=np.float64),
        }
    )
    sizes = frame["group"].value_counts(sort=False)
    order = sorted(sizes.index, key=lambda g: (-sizes[g], g))
    shown, rest = order[:max_groups], order[max_groups:]
    rows = {g: _row(frame[frame["group"] == g]) for g in shown}
    if rest:
        rows[f"the other {len(rest)}"] = _row(frame[frame["group"].isin(rest)])
    return pd.DataFrame.from_dict(rows, orient="index")


def groups_note(column: str, n_groups: int) -> str:
    """What the table is, for the page."""
    article = "an" if column[0] in "aeiou" else "a"
    return (
        f"One row per {column} of the validation window ({n_groups} in all; most snapshots "
        f"first). ROC-AUC inside {article} {column} needs {MIN_CLASS_ROWS} converting and "
        f"{MIN_CLASS_ROWS} non-converting snapshots, else \u201c{TOO_FEW}\u201d. Mean "
        "predicted is each one's stated probability, to set against the observed rate."
    )
