"""``route``: deal the pool out to the reps by the configured method (docs/routing.md).

Steps, the same for every method: the pool is put in lead_id order (so the result does not
depend on the order of its rows); leads whose owner is a rep stay with that rep unless
``routing.rebalance`` (best expected value first, up to the rep's capacity; the rest are
unassigned with the reason); the other leads are dealt out by the method with the
capacity left (greedy.py for the arrival-order methods, solver.py for ``score_aware``);
each rep's list is then numbered by expected value (1 = call first), and every lead gets
its reason in words.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadscore.models.routing import greedy, rules
from leadscore.models.routing.config import RoutingConfig
from leadscore.models.routing.frames import CALL_COLUMNS, Routing
from leadscore.models.routing.solver import solve
from leadscore.models.routing.summary import band_notes, band_of, best_reachable, rep_frame

RULES_OF: dict[str, tuple[str, ...]] = {
    "round_robin": (),
    "territory": rules.TERRITORY_ONLY,
    "skill": rules.ALL_RULES,
    "score_aware": rules.ALL_RULES,
}
"""The eligibility rules each method applies (round robin: none, by design)."""


def expected_value(pool: pd.DataFrame) -> np.ndarray:
    """Probability x deal value (value 1 where there is none)."""
    value = pd.to_numeric(pool["value"], errors="coerce").fillna(1.0).to_numpy(dtype=float)
    probability = pd.to_numeric(pool["probability"], errors="coerce").fillna(0.0)
    return probability.to_numpy(dtype=float) * value


def keep_owned(
    owner: np.ndarray, ev: np.ndarray, capacity: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(kept, over): leads kept by their owner rep (best expected value first, ties by
    position = lead_id order, up to the rep's capacity) and leads beyond it."""
    owned = np.flatnonzero(owner >= 0)
    order = owned[np.lexsort((owned, -ev[owned], owner[owned]))]
    o = owner[order]
    starts = np.r_[0, np.flatnonzero(np.diff(o)) + 1] if len(o) else np.zeros(0, dtype=int)
    rank = np.arange(len(o)) - np.repeat(starts, np.diff(np.r_[starts, len(o)]))
    fits = rank < capacity[o]
    return order[fits], order[~fits]


def positions(rep: np.ndarray, ev: np.ndarray) -> np.ndarray:
    """Place on each rep's list: 1 = highest expected value (ties by lead_id order)."""
    out = np.zeros(len(rep), dtype=int)
    placed = np.flatnonzero(rep >= 0)
    order = placed[np.lexsort((placed, -ev[placed], rep[placed]))]
    r = rep[order]
    starts = np.r_[0, np.flatnonzero(np.diff(r)) + 1] if len(r) else np.zeros(0, dtype=int)
    out[order] = np.arange(len(r)) - np.repeat(starts, np.diff(np.r_[starts, len(r)])) + 1
    return out


def _placed_reason(config: RoutingConfig, row: pd.Series, method: str) -> str:
    if method == "round_robin":
        return "next rep in turn"
    where = rules.describe(config, row, RULES_OF[method])
    if method == "score_aware":
        return f"best expected value for {where}" if where else "best expected value"
    return where or "most capacity left"


def _left_reason(
    config: RoutingConfig, row: pd.Series, method: str, allowed: np.ndarray, left: np.ndarray
) -> str:
    if not allowed.any():
        if method == "round_robin":
            return "no rep has capacity (routing.reps)"
        return rules.no_rep_reason(config, row, RULES_OF[method])
    eligible = "reps" if method == "round_robin" else "eligible reps"
    room = int(left[allowed].sum())
    if room > 0:  # only the solver leaves room unused
        return (
            f"kept off the lists to hold the fairness band ({room} places left with the "
            f"{int(allowed.sum())} eligible reps)"
        )
    by = "leads of higher expected value" if method == "score_aware" else "newer leads"
    return f"all capacity of the {int(allowed.sum())} {eligible} used (by {by})"


def route(pool: pd.DataFrame, config: RoutingConfig) -> Routing:
    """Every pool lead on one rep's call list, or on none with the reason."""
    method = config.method
    pool = pool.assign(_id=pool["lead_id"].astype(str))
    pool = pool.sort_values("_id", kind="stable").reset_index(drop=True)
    ev = expected_value(pool)
    reps = config.reps
    capacity = np.array([r.capacity for r in reps], dtype=int)
    rep = np.full(len(pool), -1, dtype=int)
    # reasons as indexes into a short list of texts (a million leads share a few hundred)
    texts = ["owner", *[f"owner {r.label}'s capacity ({r.capacity}) used" for r in reps]]
    reason = np.zeros(len(pool), dtype=int)

    owner = (
        rules.owner_index(pool["owner"], reps)
        if not config.rebalance and reps
        else np.full(len(pool), -1, dtype=int)
    )
    kept, over = keep_owned(owner, ev, capacity)
    rep[kept] = owner[kept]
    reason[over] = 1 + owner[over]
    left = capacity - np.bincount(owner[kept], minlength=len(reps)).astype(int)
    fixed = np.bincount(owner[kept], weights=ev[kept], minlength=len(reps)).astype(float)

    rest = np.flatnonzero(owner < 0)
    sub = pool.iloc[rest]
    keys = rules.lead_keys(sub, config)
    allowed = (
        np.ones((len(keys.table), len(reps)), dtype=bool) & (capacity > 0)[None, :]
        if method == "round_robin"
        else rules.eligibility(keys, config, RULES_OF[method])
    )
    solver_line, notes = None, ()
    if method == "round_robin":
        got = greedy.round_robin(greedy.arrival_order(sub["created_at"]), len(rest), left)
    elif method in ("territory", "skill"):
        order = greedy.arrival_order(sub["created_at"])
        got = greedy.least_loaded(order, keys.key, allowed, left)
    else:
        target, _, _ = band_of(config)
        solved = solve(
            ev[rest],
            keys.key,
            allowed,
            left,
            fixed,
            target,
            config.fairness_band,
            config.time_limit_seconds,
        )
        got, solver_line = solved.rep, solved.describe()
        if not solved.found:  # no incumbent in time: best expected value first, greedily
            best_first = np.lexsort((np.arange(len(rest)), -ev[rest]))
            got = greedy.least_loaded(best_first, keys.key, allowed, left)
            solver_line += "; the best-first greedy assignment was used instead"
    rep[rest] = got
    left_after = left - np.bincount(got[got >= 0], minlength=len(reps))

    placed_text = [_placed_reason(config, row, method) for _, row in keys.table.iterrows()]
    left_text = [
        _left_reason(config, row, method, allowed[k], left_after)
        for k, row in keys.table.iterrows()
    ]
    base = len(texts)
    texts += placed_text + left_text
    reason[rest] = base + np.where(got >= 0, keys.key, len(placed_text) + keys.key)
    rep_ids = np.array([r.id for r in reps] + [None], dtype=object)  # -1 -> None

    calls = pd.DataFrame(
        {
            "lead_id": pool["lead_id"].array,
            "rep_id": rep_ids[rep],
            "position": pd.array(np.where(rep >= 0, positions(rep, ev), 0), dtype="Int64"),
            "expected": ev,
            "method": method,
            "reason": pd.array(texts, dtype="str").take(reason),
        },
        columns=list(CALL_COLUMNS),
    )
    calls.loc[rep < 0, "position"] = pd.NA
    summary = rep_frame(config, rep, ev)
    if method == "score_aware" and not summary["within_band"].all():
        outside = np.flatnonzero(~summary["within_band"].to_numpy())
        best = fixed.copy()
        best[outside] = best_reachable(ev[rest], keys.key, allowed[:, outside], left[outside])
        best[outside] += fixed[outside]
        notes = band_notes(config, summary, fixed, best)
    return Routing(calls, summary, method, solver_line, notes)
