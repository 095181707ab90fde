"""The score-aware program at scale: counts per (group, rep) instead of one variable a pair.

Used when the exact program (solver.py) would have more than ``EXACT_PAIRS`` candidate
(lead, rep) pairs (a big team over a big pool: 60 reps make ~30k pairs, 200 reps ~1M),
or when the exact program finds no solution within the time limit.

Leads of a group may be taken by exactly the same reps, and by "no skipping" a group calls
its top ``n_g`` leads, worth ``f_g(n_g)`` (the prefix sum of its sorted expected values, a
concave function). The program decides how many of a group's leads go to each of its reps
(``z``, integer) and the expected value each gets from it (``w``):

    maximise   sum_g S_g - PENALTY * sum_r (over_r + under_r)
    subject to n_g = sum_r z[g, r],  S_g = sum_r w[g, r],  sum_g n_g = most
               S_g <= f_g(k) + ev_g(k + 1) * (n_g - k)   for breakpoints k (tangents of f_g)
               sum_g z[g, r] <= places_r
               low_g z[g, r] <= w[g, r] <= high_g z[g, r]  (the group's lowest candidate and
                   best lead, per lead)
               the fairness rows of solver.py on E_r = fixed_r + sum_g w[g, r]

Its LP relaxation is solved (HiGHS interior point), the counts are rounded down, the
places rounding left are topped up best candidate first (each group in rank order), and
each group's called leads are dealt to its reps, ``z[g, r]`` each, best lead first to the
rep that still needs the highest value per place, which lands close to ``w``.

What holds exactly: capacity, eligibility, "no skipping" (each group calls its top leads).
What does not: the rounding and the top-up (greedy, so the number of calls may fall short
of ``most`` on adversarial teams) and the dealing; ``f_g`` is exact for groups of up to
``BREAKPOINTS`` candidates and an upper envelope (a relaxation) beyond. So the result is
not presented as optimal: the solver line gives its expected value and the value outside
the bands next to the LP's, and the band is checked on the dealt lists
(``Routing.reps.within_band``), not assumed.
"""

from __future__ import annotations

import time

import numpy as np
from scipy import sparse
from scipy.optimize import OptimizeResult, linprog

from leadscore.models.routing.candidates import Solved, most_calls
from leadscore.models.routing.rows import ConstraintRows

DISP = False  # HiGHS' log, for debugging
EXACT_PAIRS = 10_000
"""Above this many candidate pairs the counts program is used: on 2 cores the exact one
solves 6k pairs in ~1 s but finds no solution for 32k pairs in 20 s."""

ENGINE = "HiGHS LP (interior point) via scipy.optimize.linprog"
BREAKPOINTS = 64
"""Tangents of a group's value curve: every one up to this many candidates, else this many."""


def deal(
    cand: np.ndarray,
    v: np.ndarray,
    cg: np.ndarray,
    chosen: np.ndarray,
    pairs: tuple[np.ndarray, np.ndarray],
    z: np.ndarray,
    w: np.ndarray,
    n_leads: int,
) -> np.ndarray:
    """Rep index per lead: each group's called leads (best first) to its reps, ``z`` each,
    the next one to the rep that still needs the highest expected value per place."""
    out = np.full(n_leads, -1, dtype=int)
    g_of, r_of = pairs
    slots = np.rint(z).astype(int)
    for g in np.unique(cg[chosen]):
        leads = np.flatnonzero(chosen & (cg == g))  # candidates are in rank order already
        mine = np.flatnonzero((g_of == g) & (slots > 0))
        left, need = slots[mine].copy(), w[mine].copy()
        for i in leads:
            open_ = left > 0
            if not open_.any():
                break
            per_place = np.where(open_, need / np.maximum(left, 1), -np.inf)
            pick = int(np.argmax(per_place))
            out[cand[i]] = r_of[mine[pick]]
            left[pick] -= 1
            need[pick] -= v[i]
    return out


def called(cg: np.ndarray, z: np.ndarray, g_of: np.ndarray, n: int) -> np.ndarray:
    """Which candidates are called: each group's top (its counts' sum) leads."""
    per_group = np.bincount(g_of, weights=z, minlength=int(cg.max()) + 1 if n else 0)
    starts = np.r_[0, np.flatnonzero(np.diff(cg)) + 1]
    rank = np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n]))
    return rank < np.rint(per_group[cg])


def envelope(v: np.ndarray, cg: np.ndarray, n_groups: int) -> tuple[np.ndarray, ...]:
    """Tangent lines of each group's prefix-sum curve: (group, k, f(k), slope at k)."""
    starts = np.r_[0, np.flatnonzero(np.diff(cg)) + 1]
    ends = np.r_[starts[1:], len(cg)]
    g_rows, ks, fs, slopes = [], [], [], []
    for a, b in zip(starts, ends, strict=True):
        values = v[a:b]
        prefix = np.r_[0.0, np.cumsum(values)]
        size = len(values)
        k = np.arange(size + 1)
        if size + 1 > BREAKPOINTS:
            k = np.unique(np.rint(np.linspace(0, size, BREAKPOINTS)).astype(int))
        g_rows.append(np.full(len(k), cg[a]))
        ks.append(k)
        fs.append(prefix[k])
        slopes.append(np.r_[values, 0.0][k])
    return tuple(np.concatenate(x) for x in (g_rows, ks, fs, slopes))


def interior_point(
    cost: np.ndarray,
    matrix: sparse.csr_array,
    low: np.ndarray,
    high: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    time_limit: float,
) -> OptimizeResult:
    """The LP ``low <= matrix x <= high`` by HiGHS' interior point method (with crossover
    to a vertex): on this degenerate program ~8x faster than its dual simplex."""
    equal = low == high
    above, below = ~equal & np.isfinite(high), ~equal & np.isfinite(low)
    return linprog(
        cost,
        A_ub=sparse.vstack([matrix[above], -matrix[below]]),
        b_ub=np.r_[high[above], -low[below]],
        A_eq=matrix[equal],
        b_eq=low[equal],
        bounds=np.c_[lower, upper],
        method="highs-ipm",
        options={"time_limit": time_limit, "disp": DISP},
    )


def top_up(
    out: np.ndarray,
    cand: np.ndarray,
    v: np.ndarray,
    cg: np.ndarray,
    chosen: np.ndarray,
    reps: list,
    room: np.ndarray,
) -> None:
    """Fill the places rounding left, best candidate first (each group in rank order, so
    no lead is skipped), each to its group's rep with the most places left."""
    room = np.rint(room).astype(int)
    for i in np.flatnonzero(~chosen)[np.argsort(-v[~chosen], kind="stable")]:
        if room.sum() == 0:
            break
        mine = reps[cg[i]]
        spare = room[mine]
        if spare.max() <= 0:
            continue
        rep = mine[int(np.argmax(spare))]
        out[cand[i]] = rep
        room[rep] -= 1


def solve_counts(
    ev: np.ndarray,
    cand: np.ndarray,
    cg: np.ndarray,
    reps: list,
    left: np.ndarray,
    fixed: np.ndarray,
    target: np.ndarray,
    band: float,
    time_limit: float,
    penalty: float,
    start: float,
) -> Solved:
    """The counts program above, then the dealing; ``cand`` / ``cg`` as in solver.py."""
    n, n_reps, n_groups = len(cand), len(left), len(reps)
    v = ev[cand]
    g_of = np.concatenate([np.full(len(r), g) for g, r in enumerate(reps)])
    r_of = np.concatenate(reps)
    nz = len(g_of)
    most, best = most_calls(v, cg, reps, left)
    low = np.full(n_groups, np.inf)
    high = np.zeros(n_groups)
    np.minimum.at(low, cg, v)
    np.maximum.at(high, cg, v)
    tg, tk, tf, ts = envelope(v, cg, n_groups)
    # columns: z (nz) | w (nz) | S (groups) | n (groups) | E (reps) | T | over | under
    w0, s0 = nz, 2 * nz
    c0 = s0 + n_groups
    e0 = c0 + n_groups
    t0 = e0 + n_reps
    o0, u0 = t0 + 1, t0 + 1 + n_reps
    n_vars = u0 + n_reps
    ar_z, ar_r, ar_g = np.arange(nz), np.arange(n_reps), np.arange(n_groups)
    m = ConstraintRows()

    m.add(ar_g, s0 + ar_g, 1.0)  # S_g - sum_r w = 0
    m.add(g_of, w0 + ar_z, -1.0)
    m.close(0.0, 0.0, n_groups)
    m.add(ar_g, c0 + ar_g, 1.0)  # n_g - sum_r z = 0
    m.add(g_of, ar_z, -1.0)
    m.close(0.0, 0.0, n_groups)
    t = np.arange(len(tg))  # S_g - slope_k n_g <= f(k) - slope_k k
    m.add(t, s0 + tg, 1.0)
    m.add(t, c0 + tg, -ts)
    m.close(-np.inf, tf - ts * tk, len(tg))
    m.add(r_of, ar_z, 1.0)  # capacity left
    m.close(-np.inf, left, n_reps)
    m.add(np.zeros(nz, dtype=int), ar_z, 1.0)  # as many calls as possible
    m.close(float(most), float(most), 1)
    for bound, sign in ((high, 1.0), (low, -1.0)):  # low z <= w <= high z
        m.add(ar_z, w0 + ar_z, sign)
        m.add(ar_z, ar_z, -sign * bound[g_of])
        m.close(-np.inf, 0.0, nz)
    m.add(r_of, w0 + ar_z, -1.0)  # E_r - sum_g w = fixed_r
    m.add(ar_r, e0 + ar_r, 1.0)
    m.close(fixed, fixed, n_reps)
    m.fairness(e0, t0, o0, u0, band, target, best + float(fixed.sum()))
    matrix = m.matrix(n_vars)
    cost = np.zeros(n_vars)
    cost[s0:c0] = -1.0
    cost[o0:] = penalty
    lower = np.zeros(n_vars)
    lower[e0 : t0 + 1] = -np.inf
    upper = np.full(n_vars, np.inf)
    upper[c0:e0] = np.bincount(cg, minlength=n_groups)  # a group calls at most its candidates
    remaining = max(1.0, time_limit - (time.perf_counter() - start))
    result = interior_point(cost, matrix, m.low, m.high, lower, upper, remaining)
    out = np.full(len(ev), -1, dtype=int)
    if result.x is None:
        seconds = time.perf_counter() - start
        status = f"LP relaxation: {result.message}"
        return Solved(out, 0.0, 0.0, status, None, n, nz, seconds, False, ENGINE)
    z = np.floor(result.x[:nz] + 1e-6)
    chosen = called(cg, z, g_of, n)
    out = deal(cand, v, cg, chosen, (g_of, r_of), z, result.x[w0:s0], len(ev))
    top_up(out, cand, v, cg, chosen, reps, left - np.bincount(r_of, weights=z, minlength=n_reps))
    placed = out >= 0
    mine = fixed + np.bincount(out[placed], weights=ev[placed], minlength=n_reps)
    whole = float(mine.sum())
    over = np.maximum(0.0, mine - (1 + band) * target * whole)
    under = np.maximum(0.0, (1 - band) * target * (best + float(fixed.sum())) - mine)
    slack = float(over.sum() + under.sum())
    value = float(ev[placed].sum())
    lp_value = float(result.x[s0:c0].sum())
    lp_slack = float(result.x[o0:].sum())
    seconds = time.perf_counter() - start
    status = (
        "counts model: LP relaxation "
        f"{'optimal' if result.status == 0 else 'stopped at the time limit'}, rounded down, "
        f"topped up best first, lists dealt; expected value {value:,.2f} of the LP's "
        f"{lp_value:,.2f}; outside the bands {slack:,.2f} (LP {lp_slack:,.2f})"
    )
    return Solved(out, value, slack, status, None, n, nz, seconds, True, ENGINE)
