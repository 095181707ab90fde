"""The world's daily laws: conversion and loss hazards, activity rates, calendar, bursts.

Shared by the generator's daily step, the oracle and the bench's knowable bound, so that
all three follow one set of rules.
"""

from __future__ import annotations

import numpy as np

from leadscore.synthetic import world
from leadscore.synthetic.randomness import STREAM_BURST, STREAM_CAMPAIGN, uniforms
from leadscore.synthetic.vocabulary import ALL_TYPES, INDUSTRIES, SECONDS_PER_DAY


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function, elementwise."""
    return 1.0 / (1.0 + np.exp(-x))


def lead_hazard_offset(fit_logit: np.ndarray, log_interest: np.ndarray) -> np.ndarray:
    """The per-lead part of the conversion hazard's logit."""
    return world.HAZARD_A + world.HAZARD_B * fit_logit + world.HAZARD_D * log_interest


def conversion_hazard(hazard_offset: np.ndarray, recent: np.ndarray) -> np.ndarray:
    """True daily conversion hazard sigmoid(A + B*fit + C*log1p(max(E, 0)) + D*log(interest))
    from the per-lead offset and ``recent`` = log1p(max(E, 0)) of the current engagement."""
    return sigmoid(hazard_offset + world.HAZARD_C * recent)


def decay(seconds: np.ndarray | float) -> np.ndarray:
    """Multiplier of an activity's weight after ``seconds`` have passed (true half-life)."""
    return np.exp2(
        -np.asarray(seconds, dtype=float) / (world.TRUE_HALF_LIFE_DAYS * SECONDS_PER_DAY)
    )


def campaign_starts(days: np.ndarray, key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Whether a campaign starts on each of ``days`` and which industry code it targets.

    ``key`` is one calendar key per element of ``days`` (broadcast from a scalar): the
    CRM's hidden calendar key in the generator, a path's own key for an oracle's future.
    """
    days, key = np.broadcast_arrays(np.asarray(days, dtype=np.int64), np.asarray(key, np.uint64))
    u_start, u_target = uniforms(key.ravel(), days.ravel(), STREAM_CAMPAIGN)
    starts = (u_start < world.CAMPAIGN_DAILY_PROB).reshape(days.shape)
    target = (u_target * len(INDUSTRIES)).astype(np.int64).reshape(days.shape)
    return starts, target


def weekday_factor(days: np.ndarray) -> np.ndarray:
    """Weekends are quieter (1970-01-01, day 0, was a Thursday)."""
    return np.where((np.asarray(days) + 3) % 7 >= 5, world.WEEKEND_FACTOR, 1.0)


def activity_calendar(first_day: int, n_days: int, key: np.uint64) -> np.ndarray:
    """Activity multiplier per (day, industry code) for ``n_days`` days from ``first_day``.

    Days are numbered since 1970-01-01 (UTC). Weekends are quieter; a campaign to one
    industry starts on about one day in twenty and runs CAMPAIGN_DAYS days. Starts and
    targets hash the CRM's hidden calendar ``key`` with the day number, so the oracle can
    rebuild the campaigns running at a snapshot; campaigns starting later are future
    chance, which the oracle draws afresh per path (:mod:`leadscore.synthetic.oracle`).
    """
    days = np.arange(first_day - world.CAMPAIGN_DAYS + 1, first_day + n_days, dtype=np.int64)
    starts, targets = campaign_starts(days, np.uint64(key))
    mult = np.ones((n_days, len(INDUSTRIES)))
    for start in np.flatnonzero(starts):
        row = start - (world.CAMPAIGN_DAYS - 1)  # days[start] is mult's row `row`
        mult[max(row, 0) : row + world.CAMPAIGN_DAYS, targets[start]] *= world.CAMPAIGN_MULTIPLIER
    return mult * weekday_factor(np.arange(first_day, first_day + n_days))[:, None]


def advance_bursts(burst_left: np.ndarray, burst_key: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Burst days left after ``day``: a running burst counts down, a new one may start.

    Starts and geometric lengths hash ``burst_key`` with the day: the lead's hidden key in
    the generator (so the oracle can rebuild the burst running at a snapshot from
    ``truth``), a path's own key for the bursts of an oracle's future.
    """
    left = np.maximum(burst_left - 1, 0)
    u_start, u_length = uniforms(burst_key, day, STREAM_BURST)
    starts = (left == 0) & (u_start < world.BURST_DAILY_PROB)
    return np.where(starts, burst_length(u_length), left)


def burst_length(u: np.ndarray) -> np.ndarray:
    """Burst lengths in days at the uniforms ``u``: geometric on 1, 2, ... with mean
    BURST_MEAN_DAYS (memoryless: a running burst's days left follow the same law)."""
    length = np.ceil(np.log1p(-u) / np.log1p(-1.0 / world.BURST_MEAN_DAYS)).astype(np.int64)
    return np.maximum(length, 1)


def burst_multiplier(burst_left: np.ndarray) -> np.ndarray:
    """BURST_MULTIPLIER where a burst is running (days left > 0), else 1."""
    return np.where(burst_left > 0, world.BURST_MULTIPLIER, 1.0)


def draw_types(u: np.ndarray, recent: np.ndarray, fit: np.ndarray) -> np.ndarray:
    """Activity type codes at the uniforms ``u``: softmax(base + slope_e * log1p(E) +
    slope_fit * fit), so high-intent types gain share as current engagement rises."""
    cdf = np.multiply.outer(world.MIX_SLOPE_E32, recent.astype(np.float32))  # (type, activity)
    cdf += np.multiply.outer(world.MIX_SLOPE_FIT32, fit.astype(np.float32))
    cdf += world.MIX_BASE32[:, None]
    np.exp(cdf, out=cdf)
    for k in range(1, len(cdf)):
        cdf[k] += cdf[k - 1]
    codes = (cdf < u.astype(np.float32) * cdf[-1]).sum(axis=0)
    return np.minimum(codes, len(ALL_TYPES) - 1)


def loss_hazard(
    loss_base: np.ndarray,
    last_activity: np.ndarray,
    unsubscribed: np.ndarray,
    day_start: np.ndarray,
) -> np.ndarray:
    """Daily loss hazard: a fit-dependent base that rises after INACTIVE_DAYS of silence
    and after an unsubscribe."""
    quiet_days = (day_start - last_activity) / SECONDS_PER_DAY
    hazard = world.LOSS_INACTIVE * sigmoid((quiet_days - world.INACTIVE_DAYS) / 5.0)
    hazard += loss_base
    hazard += world.LOSS_UNSUBSCRIBED * unsubscribed
    return hazard


def exogenous_rate(
    log_interest: np.ndarray,
    created: np.ndarray,
    day: np.ndarray | int,
    calendar: np.ndarray,
    burst_left: np.ndarray,
) -> np.ndarray:
    """The activity rate's factors that no simulated event moves: BASE * interest * age
    factor (the novelty part fades with age) * the day's ``calendar`` factor (weekday and
    campaigns) * the burst multiplier."""
    age_days = np.maximum(day - created // SECONDS_PER_DAY, 0)
    age = world.AGE_FLOOR + (1.0 - world.AGE_FLOOR) * np.exp(-age_days / world.AGE_DECAY_DAYS)
    burst = burst_multiplier(burst_left)
    return world.BASE_ACTIVITY_RATE * np.exp(log_interest) * age * calendar * burst


def activity_rate(
    exogenous: np.ndarray, recent: np.ndarray, unsubscribed: np.ndarray
) -> np.ndarray:
    """Expected activities per full day: the exogenous rate * momentum (engaged leads keep
    engaging), cut after an unsubscribe."""
    rate = world.MOMENTUM * recent
    rate += 1.0
    rate *= exogenous
    rate[unsubscribed] *= world.UNSUBSCRIBED_RATE_FACTOR
    return rate
