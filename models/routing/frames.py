"""What routing reads and returns: the pool of leads to deal out, the calls it makes.

The pool is one row per lead eligible for a call list today (its grade is in
``routing.pool_grades``), with the columns routing reads (:data:`POOL_COLUMNS`; the
routing columns hold the lead's value in ``routing.territory`` / ``skill`` /
``language`` / ``value``, null when not configured). The result has one row per pool
lead (:data:`CALL_COLUMNS`): on a rep's list (``rep_id``, ``position`` 1 = call first)
or on nobody's (``rep_id`` null), with ``reason`` in words either way.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

POOL_COLUMNS: tuple[str, ...] = (
    "lead_id",
    "probability",
    "grade",
    "owner",
    "created_at",
    "territory",
    "skill",
    "language",
    "value",
)
"""The pool's columns: id, calibrated probability, grade, owner as exported, created_at
(arrival order for round robin), then the routing columns' values and the deal value
(NaN: no value column, 1 is used)."""

CALL_COLUMNS: tuple[str, ...] = ("lead_id", "rep_id", "position", "expected", "method", "reason")
"""One row per pool lead: who calls it (null: nobody today), in which place on their list,
its expected value (probability x value), the method, and why, in words."""

REP_COLUMNS: tuple[str, ...] = (
    "rep_id",
    "capacity",
    "assigned",
    "expected",
    "share",
    "target_share",
    "within_band",
)
"""Per rep: daily capacity, leads assigned, their expected value, the rep's share of the
team's expected value, the share its capacity calls for, and whether the share is within
``routing.fairness_band`` of it."""


@dataclass(frozen=True)
class Routing:
    """The day's call lists: every pool lead placed or not (``calls``), per-rep totals
    (``reps``), the method used and, for ``score_aware``, the solver and its status;
    ``notes``: for each rep outside the fairness band, why, in words."""

    calls: pd.DataFrame
    reps: pd.DataFrame
    method: str
    solver: str | None = None
    notes: tuple[str, ...] = ()


def empty_pool() -> pd.DataFrame:
    """A pool with no lead (the columns only)."""
    return pd.DataFrame({c: pd.Series(dtype=object) for c in POOL_COLUMNS})
