"""The arrival-order methods: round robin, territory and skill (docs/routing.md).

Each deals leads out newest first (``created_at`` descending, then ``lead_id``), one at a
time, and never looks back: what a lead gets depends only on the leads that arrived after
it. They are the baselines the score-aware solver is measured against (bench/routing.py).

- round robin: the next rep in turn (config order) with capacity left; no rule is applied
  (territory, skill, language and seniority are ignored: that is plain round robin);
- territory / skill: among the reps allowed to take the lead (territory only; or every
  rule) with capacity left, the one with the most capacity left, then the fewest leads
  assigned, then config order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def arrival_order(created_at: pd.Series) -> np.ndarray:
    """Positions of the leads newest first (missing dates last), ties by position (the
    pool is in lead_id order)."""
    when = pd.to_datetime(created_at, errors="coerce", utc=True)
    ns = when.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]").astype(np.int64)
    missing = when.isna().to_numpy()
    return np.lexsort((np.arange(len(ns)), -np.where(missing, 0, ns), missing))


def round_robin(order: np.ndarray, n_leads: int, capacity: np.ndarray) -> np.ndarray:
    """Rep index per lead (-1: none): in ``order``, the next rep in turn with room."""
    left = capacity.astype(int).copy()
    out = np.full(n_leads, -1, dtype=int)
    reps, turn = len(left), 0
    for lead in order[: int(left.sum())]:
        for step in range(reps):
            rep = (turn + step) % reps
            if left[rep] > 0:
                out[lead] = rep
                left[rep] -= 1
                turn = (rep + 1) % reps
                break
    return out


def least_loaded(
    order: np.ndarray, key: np.ndarray, allowed: np.ndarray, capacity: np.ndarray
) -> np.ndarray:
    """Rep index per lead (-1: none): in ``order``, the allowed rep (``allowed`` is keys x
    reps) with the most capacity left, then the fewest assigned, then config order."""
    left = capacity.astype(int).copy()
    assigned = np.zeros(len(left), dtype=int)
    out = np.full(len(key), -1, dtype=int)
    candidates = [np.flatnonzero(row) for row in allowed]
    dead = np.array([len(c) == 0 for c in candidates], dtype=bool)
    room = int(left.sum())
    for lead in order:
        if room == 0:
            break
        k = key[lead]
        if dead[k]:
            continue
        reps = candidates[k]
        spare = left[reps]
        if spare.max() == 0:
            dead[k] = True
            continue
        # most left first, then fewest assigned, then config order (lexsort: last key first)
        best = reps[np.lexsort((reps, assigned[reps], -spare))[0]]
        out[lead] = best
        left[best] -= 1
        assigned[best] += 1
        room -= 1
    return out
