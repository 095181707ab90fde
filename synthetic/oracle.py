"""The hidden-propensity oracle: each snapshot row's conversion probability, by simulating
its futures with the generator's own daily step from the hidden state at as_of."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from leadscore.synthetic import world
from leadscore.synthetic.dynamics import (
    advance_bursts,
    campaign_starts,
    exogenous_rate,
    weekday_factor,
)
from leadscore.synthetic.oracle_state import OracleRows, oracle_rows
from leadscore.synthetic.randomness import GOLDEN, STREAM_CAMPAIGN, STREAM_PATH, mix64
from leadscore.synthetic.step import State, Units, simulate_day
from leadscore.synthetic.vocabulary import SECONDS_PER_DAY

_ORACLE_CHUNK_UNITS = 1 << 15  # rows x paths simulated at once (cache-sized)


@dataclass(frozen=True)
class PathTraits:
    """Per (row, path) values that replace truth's hidden traits in the oracle's futures.

    Arrays of shape (rows, paths): each path's fit logit, log interest and burst days left
    at the start of the row's as_of day. An oracle that does not know the traits (one that
    knows only what an export shows, ``bench/knowable_oracle.py``) draws them per path from
    their posterior given the lead's history; the hidden oracle uses truth's on every path.
    """

    fit: np.ndarray
    log_interest: np.ndarray
    burst_left: np.ndarray

    def take(self, rows: slice) -> PathTraits:
        """The traits of the entity rows ``rows``."""
        return PathTraits(self.fit[rows], self.log_interest[rows], self.burst_left[rows])


def _path_salts(paths: int, seed: int) -> np.ndarray:
    """One salt per path: every row's path j mixes the same salt into its own key."""
    salt = mix64(np.full(paths, seed % 2**64, dtype=np.uint64) + STREAM_PATH)
    salt += np.arange(paths, dtype=np.uint64) * GOLDEN
    return mix64(salt)


@dataclass(frozen=True)
class _CampaignDraws:
    """Campaign starts and targets per day from ``first_day``: the world's (from the hidden
    calendar key) and each oracle path's own (rows: paths)."""

    first_day: int
    known_starts: np.ndarray
    known_targets: np.ndarray
    path_starts: np.ndarray
    path_targets: np.ndarray

    @classmethod
    def of(
        cls, first_day: int, last_day: int, calendar_key: np.uint64, salts: np.ndarray
    ) -> _CampaignDraws:
        days = np.arange(first_day, last_day + 1, dtype=np.int64)
        path_keys = mix64(salts + STREAM_CAMPAIGN)  # the future owes nothing to the world's key
        path_starts, path_targets = campaign_starts(days[None, :], path_keys[:, None])
        return cls(first_day, *campaign_starts(days, calendar_key), path_starts, path_targets)


def _oracle_campaigns(
    rows: OracleRows, r: np.ndarray, path: np.ndarray, day: np.ndarray, draws: _CampaignDraws
) -> np.ndarray:
    """The calendar factor (weekday and campaigns) of each unit (row ``r``, path ``path``)
    on its ``day``: campaigns that started before the row's as_of are the world's own (part
    of the state at as_of); later starts are the path's own draws."""
    mult = weekday_factor(day)
    for back in range(world.CAMPAIGN_DAYS):
        start = day - back
        col = start - draws.first_day
        known = start * SECONDS_PER_DAY < rows.begin[r]
        starts = np.where(known, draws.known_starts[col], draws.path_starts[path, col])
        target = np.where(known, draws.known_targets[col], draws.path_targets[path, col])
        mult[starts & (target == rows.industry[r])] *= world.CAMPAIGN_MULTIPLIER
    return mult


def _oracle_chunk(
    rows: OracleRows, paths: int, seed: int, traits: PathTraits | None = None
) -> np.ndarray:
    """Probability of converting inside the horizon, averaged over ``paths`` futures per row.

    Each path runs the generator's daily step from the state at as_of without sampling the
    closes (the lead lives through the horizon); along it, P(convert) = sum over days of
    P(still open at the day's start) * P(convert that day). This is the expectation of the
    path's sampled outcome (the day's close draw is independent of its activities and ends
    the path), so it estimates the same probability as the share of converting paths, with
    less noise. What is still to come is drawn per path, never replayed from the world:
    activities, and the bursts and campaigns that start after as_of (a burst or campaign
    already running at as_of is part of the state and runs its course). ``traits``, when
    given, replaces the rows' fit, interest and running burst path by path.
    """
    n = len(rows.created)
    row_of = np.repeat(np.arange(n), paths)
    path_of = np.tile(np.arange(paths), n)
    salts = _path_salts(paths, seed)
    if traits is None:
        fit, log_interest = rows.fit[row_of], rows.log_interest[row_of]
        burst_left = rows.burst_left[row_of]
    else:
        fit, log_interest = traits.fit.ravel(), traits.log_interest.ravel()
        burst_left = traits.burst_left.ravel().astype(np.int64)
    units = Units.of(rows.created[row_of], fit, log_interest, rows.key[row_of])
    units = replace(units, key=mix64(units.key ^ salts[path_of]))
    state = State.fresh(
        rows.engagement[row_of], rows.last_activity[row_of], rows.unsubscribed[row_of]
    )
    first = rows.begin // SECONDS_PER_DAY
    last = (rows.until - 1) // SECONDS_PER_DAY
    n_days = int((last - first).max()) + 1
    whole_days = int((last - first).min())  # days j < whole_days end inside every horizon
    campaigns = _CampaignDraws.of(
        int(first.min()) - world.CAMPAIGN_DAYS + 1, int(last.max()), rows.calendar_key[0], salts
    )
    survival = np.ones(n * paths)
    converted = np.zeros(n * paths)
    active = np.arange(n * paths)
    for j in range(n_days):
        if j > whole_days:  # some horizons have ended
            active = active[first[row_of[active]] + j <= last[row_of[active]]]
        at = slice(None) if len(active) == n * paths else active
        r = row_of[at]
        day = first[r] + j
        exogenous = exogenous_rate(
            log_interest[at],
            rows.created[r],
            day,
            _oracle_campaigns(rows, r, path_of[at], day, campaigns),
            burst_left[at],
        )
        until = None if j < whole_days else np.minimum((day + 1) * SECONDS_PER_DAY, rows.until[r])
        begin = rows.begin[r] if j == 0 else None
        _, p_convert, p_close = simulate_day(
            units,
            state,
            active,
            day,
            exogenous,
            begin=begin,
            until=until,
            sample_closes=False,
        )
        converted[at] += survival[at] * p_convert
        survival[at] *= 1.0 - p_close
        if j == 0:  # the day's activities before as_of count from the next day on
            state.engagement += rows.engagement_carry[row_of]
            np.maximum(state.last_activity, rows.last_before[row_of], out=state.last_activity)
            state.unsubscribed |= rows.unsubscribed_before[row_of]
        burst_left[at] = advance_bursts(burst_left[at], units.key[at], day)
    return converted.reshape(n, paths).mean(axis=1)


def oracle_probability(
    truth: pd.DataFrame,
    activities: pd.DataFrame,
    entities: pd.DataFrame,
    horizon_days: int,
    *,
    paths: int = 64,
    seed: int = 0,
    traits: PathTraits | None = None,
) -> np.ndarray:
    """Hidden probability that each entity row converts within ``horizon_days`` after as_of.

    The oracle bound. For every row of ``entities`` (columns ``lead_id``, ``as_of``; the
    lead is taken to be open at as_of, as in a snapshot) the hidden state at as_of is
    rebuilt from ``truth`` (fit, interest, creation time, true industry, burst and
    calendar keys) and
    the activities strictly before ``as_of`` (true decayed engagement, last activity,
    unsubscribe, burst days left, campaigns running). Then ``paths`` futures are simulated
    with the generator's own daily step (conversion competing with loss, engagement
    evolving with interest, age, momentum, and bursts and campaigns, which start afresh
    per path after as_of), and the mean over the
    paths of the probability of converting by ``as_of + horizon_days`` is returned,
    aligned with ``entities``' rows. Deterministic per ``seed``; a row's value depends
    only on that row and its lead's past, not on the other rows. Only reports the bound:
    no feature code reads ``truth``, which must come from this version of the generator
    (a ``ValueError`` asks to regenerate one that lacks the replay columns).

    ``traits`` (:class:`PathTraits`, shape (rows, paths)) replaces truth's fit, interest
    and running burst path by path: the oracle of someone who knows the world's rules
    but not each lead's traits.
    """
    if horizon_days <= 0:
        raise ValueError("horizon_days must be positive")
    if paths <= 0:
        raise ValueError("paths must be positive")
    rows = oracle_rows(truth, activities, entities, horizon_days)
    n = len(rows.created)
    if traits is not None and traits.fit.shape != (n, paths):
        raise ValueError(f"traits must have shape ({n}, {paths}), got {traits.fit.shape}")
    if n == 0:
        return np.empty(0)
    workers = os.cpu_count() or 1
    size = max(1, min(_ORACLE_CHUNK_UNITS // paths, -(-n // workers)))
    spans = [slice(lo, lo + size) for lo in range(0, n, size)]

    def run(span: slice) -> np.ndarray:
        return _oracle_chunk(
            rows.take(span), paths, seed, None if traits is None else traits.take(span)
        )

    with ThreadPoolExecutor(min(workers, len(spans))) as pool:
        parts = list(pool.map(run, spans))
    return np.concatenate(parts)
