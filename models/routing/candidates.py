"""What both score-aware programs share: groups, exact pruning, the flow LPs, the result.

Leads are grouped by the set of reps (with places left) that may take them; in a group
whose reps have C places in all, at most C leads can be assigned and, by the "no
skipping" rule (solver.py), they are the group's top C by expected value: only those are
candidates (exact). ``most_calls`` gives the most leads the team can take at once and the
best total expected value without the fairness band, both exactly (flow LPs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import linprog

PENALTY = 1000.0
"""Cost of one unit of expected value outside a rep's fairness band, in expected value."""


@dataclass(frozen=True)
class Solved:
    """Rep index per lead (-1: not assigned), and how the solve went."""

    rep: np.ndarray
    expected: float
    outside_band: float
    status: str
    gap: float | None
    candidates: int
    pairs: int
    seconds: float
    found: bool
    engine: str = "HiGHS MILP via scipy.optimize.milp"

    def describe(self) -> str:
        """One line for ``Routing.solver``."""
        gap = "" if self.gap is None else f", gap {self.gap:.2%}"
        unit = "candidate pairs" if "MILP" in self.engine else "group-rep counts"
        return (
            f"{self.engine}: {self.status}{gap}, {self.pairs:,} {unit} "
            f"({self.candidates:,} candidate leads), {self.seconds:.2f} s"
        )


def groups_of(key: np.ndarray, allowed: np.ndarray, left: np.ndarray) -> tuple[np.ndarray, list]:
    """Per lead, its group (-1: no rep with places left may take it), and each group's
    reps: leads of a group may be taken by exactly the same reps."""
    open_mask = allowed & (left > 0)[None, :]
    index: dict[bytes, int] = {}
    reps: list[np.ndarray] = []
    of_key = np.full(len(allowed), -1, dtype=int)
    for k, row in enumerate(open_mask):
        if not row.any():
            continue
        sig = np.packbits(row).tobytes()
        if sig not in index:
            index[sig] = len(reps)
            reps.append(np.flatnonzero(row))
        of_key[k] = index[sig]
    group = of_key[key] if len(key) else np.zeros(0, dtype=int)
    return group, reps


def candidates(
    ev: np.ndarray, group: np.ndarray, reps: list, left: np.ndarray, prune: bool
) -> np.ndarray:
    """Leads the program considers, ordered by group then rank (ev desc, then position =
    lead_id order): with ``prune``, only each group's top (places of its reps) leads."""
    eligible = np.flatnonzero(group >= 0)
    order = eligible[np.lexsort((eligible, -ev[eligible], group[eligible]))]
    if not prune or len(order) == 0:
        return order
    g = group[order]
    starts = np.r_[0, np.flatnonzero(np.diff(g)) + 1]
    rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    places = np.array([left[r].sum() for r in reps], dtype=int)
    return order[rank < places[g]]


def most_calls(v: np.ndarray, cg: np.ndarray, reps: list, left: np.ndarray) -> tuple[int, float]:
    """(most leads the reps can take at once, most expected value without the band):
    two flow LPs (transportation problems, whose optima are integral, so both exact):
    counts per (group, rep) under the groups' sizes and the reps' places; then the same
    with each group's value curve, one variable per candidate (``y``, in rank order)."""
    n, n_groups = len(v), len(reps)
    g_of = np.concatenate([np.full(len(r), g) for g, r in enumerate(reps)])
    r_of = np.concatenate(reps)
    z = len(g_of)
    room = sparse.csr_array((np.ones(z), (r_of, np.arange(z))), shape=(len(left), z))
    per_group = sparse.csr_array((np.ones(z), (g_of, np.arange(z))), shape=(n_groups, z))
    counts = linprog(
        -np.ones(z),
        A_ub=sparse.vstack([room, per_group]),
        b_ub=np.r_[left.astype(float), np.bincount(cg, minlength=n_groups).astype(float)],
        bounds=(0, None),
        method="highs",
    )
    link = sparse.csr_array(
        (np.r_[np.ones(n), -np.ones(z)], (np.r_[cg, g_of], np.r_[np.arange(n), n + np.arange(z)])),
        shape=(n_groups, n + z),
    )
    value = linprog(
        -np.r_[v, np.zeros(z)],
        A_ub=sparse.hstack([sparse.csr_array((len(left), n)), room]),
        b_ub=left.astype(float),
        A_eq=link,
        b_eq=np.zeros(n_groups),
        bounds=np.c_[np.zeros(n + z), np.r_[np.ones(n), np.full(z, np.inf)]],
        method="highs-ipm",
    )
    return round(-float(counts.fun)), -float(value.fun)
