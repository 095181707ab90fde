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

So the values are the builder's, bit for bit (tests/models/test_nurture_delta.py), with
one exception the caller must rebuild: a lead with an activity between the synthetic one
and ``as_of`` (its days since any activity below the synthetic one's age), whose newest
activity of a type is then not the synthetic one, so the weights would add in another
order. Every other column (attributes, lead age, market rate, the accounts' columns) is
the lead's own. Pure numpy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from leadscore.features.behaviour import decay_summaries, one_activity
from leadscore.features.config import FeatureConfig
from leadscore.features.registry import (
    DAYS_SINCE_ANY,
    DAYS_SINCE_HIGH_INTENT,
    DECAYED_TOTAL,
    ENGAGEMENT_POINTS,
    count_name,
    decay_name,
    recency_name,
)


@dataclass(frozen=True)
class Move:
    """How one more activity moves one feature of every lead: ``add`` or ``min`` (the
    smaller of the value and) a constant, or ``set`` to new values, one a lead."""

    op: Literal["add", "min", "set"]
    value: float | np.ndarray

    def apply(self, base: np.ndarray) -> np.ndarray:
        """The moved values of the leads' feature values ``base``."""
        if self.op == "add":
            return base + self.value
        if self.op == "min":
            return np.minimum(base, self.value)
        return np.asarray(self.value)

    def take(self, rows: np.ndarray) -> Move:
        """The move for the leads at positions ``rows`` only."""
        return self if np.isscalar(self.value) else Move(self.op, np.asarray(self.value)[rows])


def one_more(
    X: pd.DataFrame,
    rows: np.ndarray,
    config: FeatureConfig,
    types: Sequence[str],
    lag_ns: int,
) -> tuple[list[dict[str, Move]], np.ndarray] | None:
    """For the leads at positions ``rows`` of ``X`` (features as built), per type of
    ``types``: how one more activity of that type ``lag_ns`` before the rows' ``as_of``
    moves each column it moves; and which of the leads must be rebuilt instead (one with
    an activity younger than the added one). None when the shortcut cannot be exact for
    this config (a "never" value not above the added activity's age)."""
    windows, weight, age = one_activity(lag_ns, config)
    if not config.never_days > age:
        return None
    names = config.type_names
    decayed = np.empty((len(rows), len(names)))
    for k, name in enumerate(names):
        decayed[:, k] = X[decay_name(name)].to_numpy(dtype=np.float64)[rows]
    younger = X[DAYS_SINCE_ANY].to_numpy(dtype=np.float64)[rows] < age
    out: list[dict[str, Move]] = []
    for kind in types:
        k = names.index(kind)
        moved = {
            count_name(kind, w): Move("add", float(counted))
            for w, counted in zip(config.windows_days, windows, strict=True)
            if counted
        }
        moved[decay_name(kind)] = Move("add", weight)
        moved[recency_name(kind)] = Move("min", age)
        moved[DAYS_SINCE_ANY] = Move("min", age)
        if config.activity_types[kind].high_intent:
            moved[DAYS_SINCE_HIGH_INTENT] = Move("min", age)
        own = decayed[:, k].copy()
        decayed[:, k] = own + weight
        total, points = decay_summaries(decayed, config)
        decayed[:, k] = own
        moved[DECAYED_TOTAL], moved[ENGAGEMENT_POINTS] = Move("set", total), Move("set", points)
        out.append(moved)
    return out, younger
