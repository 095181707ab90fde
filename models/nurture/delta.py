"""A lead's features after one more activity, from its features as scored (no rebuild).

One activity of type t at ``as_of - 1 s`` moves only the features that read activities of
type t and the all-activity summaries (``features/behaviour.py``), and each moves in a way
the lead's own feature row already fixes:

- the counts of t in every window the activity falls in: + 1;
- t's recency-weighted sum: + the activity's weight (the compiled pass's own value,
  ``features.behaviour.one_activity``), added last as the builder adds it, since it is
  the lead's newest activity of the type;
- days since t, since any activity and (t high-intent) since a high-intent one: the
  smaller of the value and the activity's age (a "never" value is larger than any age);
- all activities weighted by recency and the engagement points: recomputed from the
  per-type sums by the builder's own code (``features.behaviour.decay_summaries``).

So the values are the builder's, bit for bit, with one exception the caller must rebuild:
a lead that has an activity between the synthetic one and ``as_of`` (its newest activity
of a type is then not the synthetic one, and the weights add in another order). Every
other column (attributes, lead age, market rate, the accounts' other contacts) is the
lead's own. Pure numpy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from leadscore.features.behaviour import decay_summaries, one_activity
from leadscore.features.config import FeatureConfig
from leadscore.features.contract import LEAD_ID, OCCURRED_AT
from leadscore.features.registry import (
    DAYS_SINCE_ANY,
    DAYS_SINCE_HIGH_INTENT,
    DECAYED_TOTAL,
    ENGAGEMENT_POINTS,
    count_name,
    decay_name,
    recency_name,
)


def one_more(
    X: pd.DataFrame, config: FeatureConfig, types: Sequence[str], lag_ns: int
) -> list[dict[str, np.ndarray]] | None:
    """Per type of ``types``: the columns of ``X`` (features as built, one row a lead) that
    one more activity of that type ``lag_ns`` before the rows' ``as_of`` moves, with their
    new values. None when the shortcut cannot be exact for this config (a "never" value
    not above the activity's age): the caller rebuilds."""
    windows, weight, age = one_activity(lag_ns, config)
    if not config.never_days > age:
        return None
    names = config.type_names
    decayed = np.ascontiguousarray(
        np.column_stack([X[decay_name(n)].to_numpy(dtype=np.float64) for n in names])
    )
    since_any = np.minimum(X[DAYS_SINCE_ANY].to_numpy(dtype=np.float64), age)
    since_high = np.minimum(X[DAYS_SINCE_HIGH_INTENT].to_numpy(dtype=np.float64), age)
    out: list[dict[str, np.ndarray]] = []
    for kind in types:
        k = names.index(kind)
        moved: dict[str, np.ndarray] = {}
        for w, counted in zip(config.windows_days, windows, strict=True):
            if counted:
                moved[count_name(kind, w)] = X[count_name(kind, w)].to_numpy(np.float64) + counted
        own = decayed[:, k].copy()
        decayed[:, k] = own + weight
        moved[decay_name(kind)] = decayed[:, k].copy()
        moved[recency_name(kind)] = np.minimum(X[recency_name(kind)].to_numpy(np.float64), age)
        moved[DAYS_SINCE_ANY] = since_any
        if config.activity_types[kind].high_intent:
            moved[DAYS_SINCE_HIGH_INTENT] = since_high
        moved[DECAYED_TOTAL], moved[ENGAGEMENT_POINTS] = decay_summaries(decayed, config)
        decayed[:, k] = own
        out.append(moved)
    return out


def recent_leads(
    activities: pd.DataFrame, lead_ids: np.ndarray, since: pd.Timestamp, until: pd.Timestamp
) -> np.ndarray:
    """Which of ``lead_ids`` have an activity after ``since`` and before ``until`` (UTC),
    or one without a time: their one more activity at ``since`` is not their newest, so
    they are rebuilt."""
    times = activities[OCCURRED_AT].to_numpy(dtype="datetime64[ns]").view(np.int64)
    nat = np.iinfo(np.int64).min
    late = (times > since.value) & (times < until.value)
    rows = np.flatnonzero(late | (times == nat))
    if not len(rows):
        return np.zeros(len(lead_ids), dtype=bool)
    ids = activities[LEAD_ID].take(rows).astype(object).to_numpy()
    return pd.Index(lead_ids, dtype=object).isin(ids)
