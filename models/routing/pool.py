"""The routing pool of one scored partition and of the whole batch; the batch's routing.

Routing deals out the leads worth a call today: those whose grade is in
``routing.pool_grades``. The pool is built per partition, right after scoring, from the
partition's scores (lead id, probability, grade, owner) and its leads (created_at and the
columns named by ``routing.territory`` / ``skill`` / ``language`` / ``value``), so only
the pool's few columns travel to the ranking step, never the partition. It runs on every
partition of the nightly batch: it takes positions, never joins, and keeps the routing
columns categorical (a lead's territory is one of a few values).

The batch's pool is then routed once (:func:`route_pool`, which calls
``models.routing.route.route``) and summed up in a few figures (:func:`routing_summary`).

Pure: pandas only, no store, no flow.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
from pandas.api.types import is_string_dtype, union_categoricals

from leadscore.models.routing.config import RoutingConfig
from leadscore.models.routing.frames import CALL_COLUMNS, POOL_COLUMNS, Routing, empty_pool
from leadscore.models.routing.route import route

log = logging.getLogger(__name__)

_WARNED: set[tuple[str, str]] = set()  # missing routing columns already warned about

CATEGORICAL: tuple[str, ...] = ("owner", "grade", "territory", "skill", "language")
"""Pool columns of a few distinct values each, kept categorical."""


def routing_columns(config: RoutingConfig) -> dict[str, str | None]:
    """Pool column -> the lead column it is read from (None: not configured)."""
    return {
        "territory": config.territory,
        "skill": config.skill,
        "language": config.language,
        "value": config.value,
    }


def partition_pool(
    scored: pd.DataFrame, leads: pd.DataFrame, config: RoutingConfig
) -> pd.DataFrame | None:
    """The pool rows (:data:`POOL_COLUMNS`) of one scored partition; None when no rep is
    configured (no call lists are made).

    ``scored`` is ``models.scoring.score_partition``'s frame (lead_id, probability, grade,
    owner); ``leads`` the partition's lead rows (created_at and the routing columns),
    in any order. A routing column the leads do not have is read from ``scored`` (e.g.
    ``owner`` or ``segment``); one that neither has is null (with a warning, once): a
    nightly run is not stopped by a call-list setting.
    """
    if not config.reps:
        return None
    keep = np.flatnonzero(scored["grade"].isin(config.pool_grades).to_numpy())
    if not len(keep):
        return empty_pool()
    ids = scored["lead_id"].to_numpy()[keep]
    lead_ids = leads["lead_id"].to_numpy()
    if len(lead_ids) == len(scored) and np.array_equal(lead_ids, scored["lead_id"].to_numpy()):
        at = keep  # the usual case: the same leads in the same order
    else:
        at = pd.Index(leads["lead_id"]).get_indexer(ids)
        if (at < 0).any():
            raise ValueError(f"{int((at < 0).sum())} scored leads are not in the partition")
    pool: dict[str, object] = {
        "lead_id": ids,
        "probability": scored["probability"].to_numpy(dtype=np.float64)[keep],
        "grade": _category(scored["grade"], keep),
        "owner": _category(scored["owner"], keep),
        "created_at": leads["created_at"].take(at).array,
    }
    for name, column in routing_columns(config).items():
        pool[name] = _routing_values(name, column, scored, leads, keep, at)
    return pd.DataFrame(pool, columns=list(POOL_COLUMNS))


def _routing_values(
    name: str,
    column: str | None,
    scored: pd.DataFrame,
    leads: pd.DataFrame,
    keep: np.ndarray,
    at: np.ndarray,
) -> pd.Series | np.ndarray:
    """The pool's ``name`` column: the configured lead column's values, or nulls."""
    n = len(keep)
    if column is None:
        return np.full(n, np.nan) if name == "value" else pd.Categorical([None] * n)
    if column in leads.columns:
        source, rows = leads[column], at
    elif column in scored.columns:
        source, rows = scored[column], keep
    else:  # routing then sees no value there (e.g. no territory match); said once
        if (name, column) not in _WARNED:
            _WARNED.add((name, column))
            log.warning("routing.%s names the column %r, which the leads lack", name, column)
        return np.full(n, np.nan) if name == "value" else pd.Categorical([None] * n)
    if name == "value":
        values = pd.to_numeric(source.iloc[rows], errors="coerce")
        return values.to_numpy(dtype=np.float64)
    return _category(source, rows)


def _category(source: pd.Series, rows: np.ndarray) -> pd.Categorical:
    """``source``'s ``rows`` as a categorical of text (text or categorical text is taken
    as it is; other values, e.g. numeric region codes, are written as text first)."""
    taken = source.take(rows)
    kind = taken.dtype
    if isinstance(kind, pd.CategoricalDtype):
        if not is_string_dtype(kind.categories.dtype):
            taken = taken.cat.rename_categories([str(c) for c in kind.categories])
        return pd.Categorical(taken).remove_unused_categories()
    if not is_string_dtype(kind):
        taken = taken.astype(object).where(taken.isna(), taken.astype(str))
    return pd.Categorical(taken)


def batch_pool(pieces: Sequence[pd.DataFrame | None]) -> pd.DataFrame | None:
    """The batch's pool: every partition's pool, in partition order; None when routing
    is off (every piece None). Categorical columns stay categorical (their categories
    united), so the pool of a million-lead batch stays small."""
    given = [p for p in pieces if p is not None]
    if not given:
        return None
    parts = [p for p in given if len(p)]
    if not parts:
        return empty_pool()
    if len(parts) == 1:
        return parts[0].reset_index(drop=True)
    columns: dict[str, object] = {}
    for name in POOL_COLUMNS:
        series = [p[name] for p in parts]
        if name in CATEGORICAL and all(isinstance(s.dtype, pd.CategoricalDtype) for s in series):
            columns[name] = union_categoricals([s.array for s in series], ignore_order=True)
        else:
            columns[name] = pd.concat(series, ignore_index=True)
    return pd.DataFrame(columns, columns=list(POOL_COLUMNS))


def route_pool(pool: pd.DataFrame, config: RoutingConfig) -> Routing:
    """The batch's call lists: ``route`` over the pool; an empty pool routes nothing
    (no call, every rep with an empty list) without calling the solver."""
    if len(pool):
        return route(pool, config)
    calls = pd.DataFrame({c: pd.Series(dtype=object) for c in CALL_COLUMNS})
    reps = pd.DataFrame(
        {
            "rep_id": [r.id for r in config.reps],
            "capacity": [r.capacity for r in config.reps],
            "assigned": 0,
            "expected": 0.0,
            "share": 0.0,
            "target_share": [
                r.capacity / (sum(x.capacity for x in config.reps) or 1) for r in config.reps
            ],
            "within_band": True,
        }
    )
    return Routing(calls, reps, config.method)


def routing_summary(routing: Routing) -> dict[str, object]:
    """The day's call lists in a few figures (the score flow's result): method, solver,
    leads assigned, unassigned ones by reason, reps (and how many have a call)."""
    calls = routing.calls
    placed = calls["rep_id"].notna()
    reasons = calls.loc[~placed, "reason"].value_counts()
    return {
        "method": routing.method,
        "solver": routing.solver,
        "assigned": int(placed.sum()),
        "unassigned": int((~placed).sum()),
        "unassigned_by_reason": {str(k): int(v) for k, v in reasons.items()},
        "reps": len(routing.reps),
        "reps_with_calls": int(calls.loc[placed, "rep_id"].nunique()),
    }
