"""Per-rep totals of a routing, its fairness band, and why a rep ends outside it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadscore.models.routing.config import RoutingConfig
from leadscore.models.routing.frames import REP_COLUMNS

TOLERANCE = 1e-6
"""Slack on shares when checking the band (solver round-off)."""


def rep_totals(rep: np.ndarray, ev: np.ndarray, n_reps: int) -> tuple[np.ndarray, np.ndarray]:
    """Leads assigned and their expected value, per rep (``rep`` -1: unassigned)."""
    placed = rep >= 0
    count = np.bincount(rep[placed], minlength=n_reps)
    value = np.bincount(rep[placed], weights=ev[placed], minlength=n_reps)
    return count, value


def band_of(config: RoutingConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per rep: the share of the team's capacity (target), and the band's low and high
    shares of the team's expected value (target -/+ fairness_band x target)."""
    capacity = np.array([r.capacity for r in config.reps], dtype=float)
    total = capacity.sum()
    target = capacity / total if total > 0 else np.zeros(len(capacity))
    return target, target * (1 - config.fairness_band), target * (1 + config.fairness_band)


def rep_frame(config: RoutingConfig, rep: np.ndarray, ev: np.ndarray) -> pd.DataFrame:
    """The REP_COLUMNS frame: one row per configured rep, in config order."""
    n_reps = len(config.reps)
    count, value = rep_totals(rep, ev, n_reps)
    whole = value.sum()
    share = value / whole if whole > 0 else np.zeros(n_reps)
    target, low, high = band_of(config)
    within = (share >= low - TOLERANCE) & (share <= high + TOLERANCE) if whole > 0 else True
    return pd.DataFrame(
        {
            "rep_id": [r.id for r in config.reps],
            "capacity": [r.capacity for r in config.reps],
            "assigned": count.astype(int),
            "expected": value,
            "share": share,
            "target_share": target,
            "within_band": np.broadcast_to(within, n_reps).astype(bool),
        },
        columns=list(REP_COLUMNS),
    )


def band_notes(
    config: RoutingConfig,
    reps: pd.DataFrame,
    fixed: np.ndarray,
    best: np.ndarray,
) -> tuple[str, ...]:
    """Why each rep outside the band is there: ``fixed`` is the expected value of the
    leads it keeps as owner, ``best`` the most it could hold (owned plus its best
    eligible leads up to its capacity)."""
    whole = float(reps["expected"].sum())
    notes = []
    _, low, high = band_of(config)
    for i, row in reps.reset_index(drop=True).iterrows():
        if row["within_band"]:
            continue
        rep = config.reps[int(i)]
        where = (
            f"{rep.label}: {row['share']:.1%} of the team's expected value, band "
            f"{low[i]:.1%}-{high[i]:.1%}"
        )
        if row["share"] < low[i]:
            if best[i] < low[i] * whole - TOLERANCE:
                why = (
                    f"the leads it may take (its territories, skills, languages, seniority) "
                    f"hold at most {best[i]:.2f} of {whole:.2f} ({best[i] / whole:.1%})"
                )
            else:
                why = "the bands of all reps cannot hold at once (other reps' rules and capacity)"
        elif fixed[i] > high[i] * whole + TOLERANCE:
            why = f"the leads it keeps as owner alone hold {fixed[i]:.2f} ({fixed[i] / whole:.1%})"
        else:
            why = "the other reps may not take enough of these leads (their rules or capacity)"
        notes.append(f"{where}: {why}")
    return tuple(notes)


def best_reachable(
    ev: np.ndarray, key: np.ndarray, allowed: np.ndarray, places: np.ndarray
) -> np.ndarray:
    """Per rep (a column of ``allowed``, keys x reps): the expected value of the best
    ``places`` leads it may take (each key's leads sorted once, the rep's keys merged)."""
    deepest = int(places.max()) if len(places) else 0
    order = np.lexsort((-ev, key))
    k_sorted = key[order]
    starts = np.searchsorted(k_sorted, np.arange(allowed.shape[0]))
    ends = np.searchsorted(k_sorted, np.arange(allowed.shape[0]), side="right")
    tops = [ev[order[a : min(b, a + deepest)]] for a, b in zip(starts, ends, strict=True)]
    out = np.zeros(allowed.shape[1])
    for j in range(allowed.shape[1]):
        pooled = np.concatenate([tops[k] for k in np.flatnonzero(allowed[:, j])] + [np.zeros(0)])
        out[j] = float(np.sort(pooled)[::-1][: int(places[j])].sum())
    return out
