"""The score-aware assignment: a mixed-integer program solved by HiGHS (scipy.optimize.milp).

The program (docs/routing.md): choose ``x[i, r]`` in {0, 1} (lead i on rep r's list) to

    maximise   sum_i ev_i * y_i  -  PENALTY * sum_r (over_r + under_r)
    subject to y_i = sum_r x[i, r] <= 1                     (a lead on one list at most)
               sum_i x[i, r] <= places_r                    (capacity left)
               x[i, r] = 0 unless rep r may take lead i      (eligibility)
               sum_i y_i = most                              (as many calls as possible)
               E_r = fixed_r + sum_i ev_i x[i, r],  T = sum_r E_r
               E_r <= (1 + band) * target_r * T + over_r    (fairness band, soft)
               E_r >= (1 - band) * target_r * T* - under_r
               y_i >= y_j  when i and j may be taken by exactly the same reps and
                           i ranks before j (higher ev, then lead_id)   ("no skipping")

``target_r`` is the rep's share of the team's capacity, ``fixed_r`` the expected value of
the leads it keeps as owner; ``most`` (the most leads the reps can take at once) and
``T*`` (the team's best total without the band) come first from two exact flow LPs, so
that calling fewer or worse leads can never make the band look held. The slack variables
keep the program feasible: a band that cannot hold costs PENALTY per unit of expected
value outside it, so the solver leaves a band only where it must. "No skipping" is a rule
of the method: fairness is met by *who* calls which lead, never by calling a worse lead
instead of a better one the same reps could take.

**Exact pruning.** Leads are grouped by the set of reps (with places left) that may take
them. In a group whose reps have C places in all at most C leads can be assigned, and by
"no skipping" the assigned ones are a prefix of the group in rank order: only the group's
top C leads can ever be assigned, so the rest are dropped before the solve without
changing the optimum (tests/models/test_routing_solver.py checks it against the program
on every pair). The solver's result is optimal up to HiGHS' reported MIP gap.
"""

from __future__ import annotations

import time

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

from leadscore.models.routing import aggregate
from leadscore.models.routing.candidates import (
    PENALTY,
    Solved,
    candidates,
    groups_of,
    most_calls,
)
from leadscore.models.routing.rows import ConstraintRows


def solve(
    ev: np.ndarray,
    key: np.ndarray,
    allowed: np.ndarray,
    left: np.ndarray,
    fixed: np.ndarray,
    target: np.ndarray,
    band: float,
    time_limit: float,
    prune: bool = True,
    penalty: float = PENALTY,
    exact_pairs: int | None = None,
) -> Solved:
    """Solve the program above for leads with expected values ``ev`` (in lead_id order),
    eligibility keys ``key`` and ``allowed`` (keys x reps), reps' places ``left``, owned
    expected value ``fixed`` and capacity shares ``target``."""
    start = time.perf_counter()
    n_reps = len(left)
    group, reps = groups_of(key, allowed, left)
    cand = candidates(ev, group, reps, left, prune)
    n = len(cand)
    out = np.full(len(ev), -1, dtype=int)
    if n == 0 or n_reps == 0:
        return Solved(out, 0.0, 0.0, "nothing to assign", 0.0, 0, 0, 0.0, True)
    cg = group[cand]
    sizes = np.array([len(reps[g]) for g in cg])
    pair_cand = np.repeat(np.arange(n), sizes)
    pair_rep = np.concatenate([reps[g] for g in cg])
    p = len(pair_cand)
    if p > (aggregate.EXACT_PAIRS if exact_pairs is None else exact_pairs):
        return aggregate.solve_counts(
            ev, cand, cg, reps, left, fixed, target, band, time_limit, penalty, start
        )
    v = ev[cand]
    most, best = most_calls(v, cg, reps, left)
    # columns: x (p) | y (n) | E (reps) | T | over (reps) | under (reps)
    y0, e0 = p, p + n
    t0 = e0 + n_reps
    o0, u0 = t0 + 1, t0 + 1 + n_reps
    n_vars = u0 + n_reps
    m = ConstraintRows()

    ar_n, ar_r = np.arange(n), np.arange(n_reps)
    m.add(pair_cand, np.arange(p), 1.0)  # link: sum_r x[i, r] - y_i = 0
    m.add(ar_n, y0 + ar_n, -1.0)
    m.close(0.0, 0.0, n)
    same = np.flatnonzero(cg[1:] == cg[:-1])  # no skipping: y_j - y_(j+1) >= 0
    m.add(np.arange(len(same)), y0 + same, 1.0)
    m.add(np.arange(len(same)), y0 + same + 1, -1.0)
    m.close(0.0, np.inf, len(same))
    m.add(pair_rep, np.arange(p), 1.0)  # capacity left
    m.close(-np.inf, left, n_reps)
    m.add(np.zeros(n, dtype=int), y0 + ar_n, 1.0)  # as many calls as possible
    m.close(float(most), float(most), 1)
    m.add(pair_rep, np.arange(p), -v[pair_cand])  # E_r - sum ev x = fixed_r
    m.add(ar_r, e0 + ar_r, 1.0)
    m.close(fixed, fixed, n_reps)
    m.fairness(e0, t0, o0, u0, band, target, best + float(fixed.sum()))
    matrix = m.matrix(n_vars)
    cost = np.zeros(n_vars)
    cost[y0 : y0 + n] = -v
    cost[o0:] = penalty
    integrality = np.zeros(n_vars)
    integrality[:p] = 1
    upper = np.full(n_vars, np.inf)
    upper[: p + n] = 1.0
    lower = np.zeros(n_vars)
    lower[e0 : t0 + 1] = -np.inf
    result = milp(
        cost,
        constraints=LinearConstraint(matrix, m.low, m.high),
        integrality=integrality,
        bounds=Bounds(lower, upper),
        options={"disp": False, "time_limit": float(time_limit), "presolve": True},
    )
    seconds = time.perf_counter() - start
    status = {0: "optimal", 1: "time or iteration limit", 2: "infeasible", 3: "unbounded"}
    text = status.get(result.status, str(result.message))
    if result.x is None:  # nothing found in time: the counts model, which always is fast
        return aggregate.solve_counts(
            ev, cand, cg, reps, left, fixed, target, band, time_limit, penalty, start
        )
    chosen = result.x[:p] > 0.5
    out[cand[pair_cand[chosen]]] = pair_rep[chosen]
    gap = getattr(result, "mip_gap", None)
    slack = float(result.x[o0:].sum())
    expected = float(v[pair_cand[chosen]].sum())
    gap_value = None if gap is None else max(0.0, float(gap))
    return Solved(out, expected, slack, text, gap_value, n, p, seconds, True)
