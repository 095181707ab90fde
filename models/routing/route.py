"""``route``: deal the pool out to the reps by the configured method (docs/routing.md)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadscore.models.routing.config import RoutingConfig
from leadscore.models.routing.frames import CALL_COLUMNS, REP_COLUMNS, Routing


def expected_value(pool: pd.DataFrame) -> np.ndarray:
    """Probability x deal value (value 1 where there is none)."""
    value = pd.to_numeric(pool["value"], errors="coerce").fillna(1.0).to_numpy(dtype=float)
    return pool["probability"].to_numpy(dtype=float) * value


def route(pool: pd.DataFrame, config: RoutingConfig) -> Routing:
    """Every pool lead on one rep's call list, or on none with the reason.

    First version: round robin in arrival order (newest first), capacity only.
    """
    order = pool.sort_values(["created_at", "lead_id"], ascending=[False, True], kind="stable")
    reps = [r for r in config.reps if r.capacity > 0]
    left = {r.id: r.capacity for r in reps}
    rows, turn = [], 0
    expected = pd.Series(expected_value(pool), index=pool.index)
    for index, lead in order.iterrows():
        rep = None
        for step in range(len(reps)):
            candidate = reps[(turn + step) % len(reps)]
            if left[candidate.id] > 0:
                rep, turn = candidate, (turn + step + 1) % len(reps)
                break
        if rep is None:
            rows.append(
                (lead["lead_id"], None, None, expected[index], "round_robin", "all capacity used")
            )
            continue
        left[rep.id] -= 1
        position = rep.capacity - left[rep.id]
        rows.append(
            (lead["lead_id"], rep.id, position, expected[index], "round_robin", "next rep in turn")
        )
    calls = pd.DataFrame(rows, columns=list(CALL_COLUMNS))
    calls["position"] = calls["position"].astype("Int64")
    totals = calls.dropna(subset=["rep_id"]).groupby("rep_id")["expected"].agg(["size", "sum"])
    whole = float(totals["sum"].sum()) or 1.0
    capacity = sum(r.capacity for r in reps) or 1
    summary = pd.DataFrame(
        [
            (
                r.id,
                r.capacity,
                int(totals["size"].get(r.id, 0)),
                float(totals["sum"].get(r.id, 0.0)),
                float(totals["sum"].get(r.id, 0.0)) / whole,
                r.capacity / capacity,
                True,
            )
            for r in config.reps
        ],
        columns=list(REP_COLUMNS),
    )
    return Routing(calls, summary, "round_robin")
