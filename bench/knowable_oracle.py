"""The oracle of someone who knows the synthetic world's rules but not each lead's traits.

The hidden-propensity oracle (``leadscore.synthetic.oracle_probability``) reads each lead's
hidden fit and interest from ``truth``; no CRM export carries them, so no model can reach
it. This module computes the bound a model *could* reach: the conversion probability given
only what the export shows (the lead's attributes and its activity log before as_of) and
the world's rules. Per lead it puts a grid over the two hidden traits, equally likely under
their prior (quantiles of the generator's normal draws), weighs each grid point by the
exact likelihood of the lead's history under the generator (daily Poisson activity counts,
with a two-state hidden Markov chain for bursts; the softmax of each activity's type; and
the lead having stayed open through every day), and hands the hidden oracle's simulation
paths traits drawn from that posterior (with the running burst drawn from its filtered
probability). Then the model's distance to this bound is what the pipeline misses of what
an export can tell; the bound's distance to the hidden oracle is what no export tells.

What it is still told, as the hidden oracle is: the CRM's campaign calendar (one world-wide
key, readable off any industry's activity), and each lead's true industry where the export
left it blank (1% of leads; campaigns target the true one). A blank seniority or department
widens the fit prior by the blank attribute's spread over all leads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import logsumexp
from scipy.stats import norm

import leadscore.synthetic as synthetic
from leadscore.synthetic import world

SECONDS_PER_DAY = synthetic.SECONDS_PER_DAY


@dataclass(frozen=True)
class Grid:
    """Points of the two hidden traits, equally likely under the prior (normal quantiles)."""

    fit: int = 8  # fit-noise points (few: the history tells little about fit)
    interest: int = 32  # interest-noise points (many: activity counts pin interest down)

    def z(self) -> tuple[np.ndarray, np.ndarray]:
        """Standard-normal quantiles of each axis, flattened to one index per grid point."""
        zf = norm.ppf((np.arange(self.fit) + 0.5) / self.fit)
        zi = norm.ppf((np.arange(self.interest) + 0.5) / self.interest)
        return np.repeat(zf, self.interest), np.tile(zi, self.fit)


def _marginal_mix(name: str) -> np.ndarray:
    """Share of each value of attribute ``name`` over all leads (the personas' mixture)."""
    return world.PERSONA_SHARE @ world.PERSONA_MIX[name]


def fit_prior(leads: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each lead's hidden fit logit given its attributes.

    The mean is the generator's additive effects plus its ICP interaction bonus; a blank
    attribute contributes its mean over all leads and its variance, and the unexplained
    fit noise adds FIT_NOISE_SD.
    """
    n = len(leads)
    mean = np.full(n, world.FIT_OFFSET)
    var = np.full(n, world.FIT_NOISE_SD**2)
    codes = {
        name: pd.Index(vocab).get_indexer(leads[name].astype(object))
        for name, vocab in synthetic.VOCABULARY.items()
    }
    size = codes["company_size"]
    if (size < 0).any():
        raise ValueError("company_size is blank: the generator never leaves it blank")
    icp = synthetic.icp_by_industry(size)
    for name, effect in world.FIT_EFFECT.items():
        # each lead's fit term per value of the attribute (industry's carries the ICP bonus)
        value = np.broadcast_to(effect, (n, len(effect)))
        if name == "industry":
            value = value + world.FIT_INTERACTION * icp
        code = codes[name]
        known = code >= 0
        mean[known] += value[known, code[known]]
        share = _marginal_mix(name)
        m = value[~known] @ share
        mean[~known] += m
        var[~known] += (value[~known] ** 2) @ share - m**2
    return mean, np.sqrt(var)


@dataclass(frozen=True)
class _Log:
    """The activity log of the leads in play, sorted by (day, lead), with day-level sums."""

    lead: np.ndarray  # index into the leads in play
    day: np.ndarray
    seconds: np.ndarray
    weight: np.ndarray  # the world's engagement weight
    slope_fit: np.ndarray  # the type's fit slope in the softmax
    unsubscribe: np.ndarray


def _activity_log(activities: pd.DataFrame, lead_index: pd.Index) -> _Log:
    code = lead_index.get_indexer(activities["lead_id"])
    keep = code >= 0
    types = activities["activity_type"].to_numpy(object)[keep]
    type_code = pd.Index(synthetic.ALL_TYPES).get_indexer(types)
    if (type_code < 0).any():
        raise ValueError("an activity type the generator does not emit")
    seconds = activities["occurred_at"].to_numpy("datetime64[s]").astype(np.int64)[keep]
    code = code[keep]
    day = seconds // SECONDS_PER_DAY
    order = np.lexsort((seconds, code, day))
    return _Log(
        lead=code[order],
        day=day[order],
        seconds=seconds[order],
        weight=world.WEIGHT_BY_CODE[type_code][order],
        slope_fit=world.MIX_SLOPE_FIT[type_code][order],
        unsubscribe=(type_code == synthetic.TYPE_CODE["unsubscribe"])[order],
    )


def _log_softmax_norm(recent: np.ndarray, fit: np.ndarray) -> np.ndarray:
    """log of the type softmax's normaliser, per lead (rows) and grid point (columns)."""
    logits = (
        world.MIX_BASE[None, None, :]
        + world.MIX_SLOPE_E[None, None, :] * recent[:, None, None]
        + world.MIX_SLOPE_FIT[None, None, :] * fit[:, :, None]
    )
    return logsumexp(logits, axis=2)


def _day_terms(
    *,
    fit: np.ndarray,
    log_interest: np.ndarray,
    units: synthetic.Units,
    recent: np.ndarray,
    unit_rate: np.ndarray,
    count: np.ndarray,
    slope_fit_sum: np.ndarray,
    loss_rest: np.ndarray,
    close_share: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Log-likelihood of one (part of a) day per lead (rows) and grid point (columns): the
    part that does not depend on the burst state, and the count's Poisson log-likelihood
    per burst state (shape leads x points x 2), up to terms equal for every grid point.

    ``units`` holds the grid's hazard parts (the generator's ``_Units``, leads x points);
    ``unit_rate`` is the activity rate over the observed span of a lead of interest 1
    without a burst (rates scale with interest and the burst multiplier); ``loss_rest`` the
    loss hazard without its fit part; ``close_share`` the share of the day's close
    probability the lead has lived through (0 on the creation day, which cannot close)."""
    base = fit * slope_fit_sum[:, None]  # the types' fit terms (the rest is the same)
    has = count > 0
    if has.any():
        base[has] -= count[has, None] * _log_softmax_norm(recent[has], fit[has])
    p_convert = synthetic.conversion_hazard(units.hazard_offset, recent[:, None])
    p_close = np.minimum(p_convert + units.loss_base + loss_rest[:, None], 1.0)
    base += np.log1p(-np.minimum(p_close * close_share[:, None], 1.0 - 1e-300))
    rate = np.exp(log_interest) * unit_rate[:, None]
    rates = np.stack([rate, rate * world.BURST_MULTIPLIER], axis=2)
    poisson = count[:, None, None] * np.log(np.maximum(rates, 1e-300)) - rates
    return base, poisson


def _burst_transition() -> np.ndarray:
    """P(burst state tomorrow | today), rows today (0 none, 1 burst): burst lengths are
    geometric, so the countdown is a two-state Markov chain."""
    start, end = world.BURST_DAILY_PROB, 1.0 / world.BURST_MEAN_DAYS
    return np.array([[1.0 - start, start], [end * (1.0 - start), 1.0 - end * (1.0 - start)]])


@dataclass(frozen=True)
class Posterior:
    """Per entity row: the grid's traits, their posterior weights and P(burst | point)."""

    fit: np.ndarray  # rows x points
    log_interest: np.ndarray  # rows x points
    weight: np.ndarray  # rows x points, summing to 1 per row
    burst: np.ndarray  # rows x points: P(a burst runs on the as_of day)


def posterior(
    leads: pd.DataFrame,
    activities: pd.DataFrame,
    truth: pd.DataFrame,
    entities: pd.DataFrame,
    grid: Grid | None = None,
) -> Posterior:
    """The traits' posterior for every (lead_id, as_of) of ``entities``, given the lead's
    attributes and its activities strictly before as_of, under the generator's rules.

    ``truth`` is read only for what the hidden oracle is also told and an export does not
    show directly: creation second, true industry (campaigns) and the calendar key.
    """
    grid = grid or Grid()
    lead_index = pd.Index(pd.unique(entities["lead_id"]))
    lead_rows = leads.set_index("lead_id").loc[lead_index]
    hidden = truth.set_index("lead_id").loc[lead_index]
    mu, sd = fit_prior(lead_rows.reset_index())
    zf, zi = grid.z()
    fit = mu[:, None] + sd[:, None] * zf[None, :]
    log_interest = world.INTEREST_FIT_SLOPE * fit + world.INTEREST_SD * zi[None, :]
    created = hidden["created_at"].to_numpy("datetime64[s]").astype(np.int64)
    industry = pd.Index(synthetic.INDUSTRIES).get_indexer(hidden["true_industry"])
    calendar_key = np.uint64(hidden["calendar_key"].to_numpy(np.int64).view(np.uint64)[0])

    as_of = entities["as_of"].to_numpy("datetime64[ns]").astype(np.int64)
    as_of_s = -(-as_of // 1_000_000_000)  # the oracle's ``begin``: as_of rounded up
    row_lead = lead_index.get_indexer(entities["lead_id"])
    row_day = as_of_s // SECONDS_PER_DAY
    log = _activity_log(activities, lead_index)

    n_leads, points = fit.shape
    grid_units = synthetic.Units.of(  # leads x points (take() picks leads)
        created[:, None], fit, log_interest, np.zeros(fit.shape, np.uint64)
    )
    first_day = int((created // SECONDS_PER_DAY).min())
    last_day = int(row_day.max())
    calendar = synthetic.activity_calendar(first_day, last_day - first_day + 1, calendar_key)
    created_day = created // SECONDS_PER_DAY
    last_needed = np.full(n_leads, -1)
    np.maximum.at(last_needed, row_lead, row_day)

    engagement = np.zeros(n_leads)
    last_activity = created.copy()
    unsubscribed = np.zeros(n_leads, dtype=bool)
    loglik = np.zeros((n_leads, points))
    alpha = np.zeros((n_leads, points, 2))
    alpha[:, :, 0] = 1.0  # no burst on the creation day
    transition = _burst_transition()
    out_weight = np.zeros((len(entities), points))
    out_burst = np.zeros((len(entities), points))
    rows_by_day = pd.Series(np.arange(len(entities))).groupby(row_day).indices
    day_bounds = np.searchsorted(log.day, np.arange(first_day, last_day + 2))

    def observe(
        leads_at: np.ndarray,
        day: int,
        begin: np.ndarray,
        until: np.ndarray,
        count: np.ndarray,
        slope_sum: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Terms of the span [begin, until) of ``day`` for the leads ``leads_at``."""
        day_start = day * SECONDS_PER_DAY
        recent = np.log1p(np.maximum(engagement[leads_at], 0.0))
        none = np.zeros(len(leads_at))
        exogenous = synthetic.exogenous_rate(
            none,
            created[leads_at],
            day,
            calendar[day - first_day, industry[leads_at]],
            none.astype(np.int64),
        )
        unit_rate = synthetic.activity_rate(exogenous, recent, unsubscribed[leads_at])
        unit_rate *= np.maximum(until - begin, 0) / SECONDS_PER_DAY
        loss_rest = synthetic.loss_hazard(
            none, last_activity[leads_at], unsubscribed[leads_at], day_start
        )
        eligible = created[leads_at] < day_start
        return _day_terms(
            fit=fit[leads_at],
            log_interest=log_interest[leads_at],
            units=grid_units.take(leads_at),
            recent=recent,
            unit_rate=unit_rate,
            count=count,
            slope_fit_sum=slope_sum,
            loss_rest=loss_rest,
            close_share=np.where(eligible, (until - day_start) / SECONDS_PER_DAY, 0.0),
        )

    for day in range(first_day, last_day + 1):
        day_start = day * SECONDS_PER_DAY
        lo, hi = day_bounds[day - first_day], day_bounds[day - first_day + 1]
        # rows whose as_of falls on this day: read the filter with the day's part before as_of
        for r in rows_by_day.get(day, ()):
            i = row_lead[r]
            mine = slice(lo, hi)
            sel = (log.lead[mine] == i) & (log.seconds[mine] < as_of_s[r])
            idx = np.arange(lo, hi)[sel]
            base, poisson = observe(
                np.array([i]),
                day,
                np.array([max(day_start, created[i])]),
                np.array([as_of_s[r]]),
                np.array([len(idx)]),
                np.array([log.slope_fit[idx].sum()]),
            )
            joint = np.log(np.maximum(alpha[i], 1e-300)) + poisson[0]
            total = loglik[i] + base[0] + logsumexp(joint, axis=1)
            out_weight[r] = np.exp(total - logsumexp(total))
            out_burst[r] = np.exp(joint[:, 1] - logsumexp(joint, axis=1))
        # the whole day for every lead alive today and needed later
        live = np.flatnonzero((created_day <= day) & (last_needed > day))
        if len(live):
            count = np.zeros(n_leads)
            slope_sum = np.zeros(n_leads)
            np.add.at(count, log.lead[lo:hi], 1.0)
            np.add.at(slope_sum, log.lead[lo:hi], log.slope_fit[lo:hi])
            begin = np.maximum(day_start, created[live])
            base, poisson = observe(
                live,
                day,
                begin,
                np.full(len(live), day_start + SECONDS_PER_DAY),
                count[live],
                slope_sum[live],
            )
            joint = alpha[live] * np.exp(poisson - poisson.max(axis=2, keepdims=True))
            scale = joint.sum(axis=2)
            loglik[live] += base + np.log(scale) + poisson.max(axis=2)
            alpha[live] = (joint / scale[:, :, None]) @ transition
        # the state at the start of tomorrow
        day_end = day_start + SECONDS_PER_DAY
        engagement *= synthetic.decay(SECONDS_PER_DAY)
        if hi > lo:
            gained = log.weight[lo:hi] * synthetic.decay(day_end - log.seconds[lo:hi])
            np.add.at(engagement, log.lead[lo:hi], gained)
            np.maximum.at(last_activity, log.lead[lo:hi], log.seconds[lo:hi])
            unsubscribed[log.lead[lo:hi][log.unsubscribe[lo:hi]]] = True
    return Posterior(fit[row_lead], log_interest[row_lead], out_weight, out_burst)


def path_traits(post: Posterior, paths: int, seed: int = 0) -> synthetic.PathTraits:
    """Each row's ``paths`` paths get grid points at evenly spread quantiles of its
    posterior, and a running burst (with its geometric days left) drawn from P(burst)."""
    n, points = post.weight.shape
    cdf = np.cumsum(post.weight, axis=1)
    u = (np.arange(paths) + 0.5) / paths
    pick = np.minimum((cdf[:, None, :] < u[None, :, None]).sum(axis=2), points - 1)
    rows = np.arange(n)[:, None]
    rng = np.random.default_rng(seed)
    burst = rng.random((n, paths)) < post.burst[rows, pick]
    left = synthetic.burst_length(rng.random((n, paths)))
    return synthetic.PathTraits(
        fit=post.fit[rows, pick],
        log_interest=post.log_interest[rows, pick],
        burst_left=np.where(burst, left, 0),
    )


def knowable_probability(
    leads: pd.DataFrame,
    activities: pd.DataFrame,
    truth: pd.DataFrame,
    entities: pd.DataFrame,
    horizon_days: int,
    *,
    paths: int = 64,
    seed: int = 0,
    grid: Grid | None = None,
) -> np.ndarray:
    """P(convert within ``horizon_days`` | the export up to as_of, the world's rules)."""
    post = posterior(leads, activities, truth, entities, grid)
    traits = path_traits(post, paths, seed)
    return synthetic.oracle_probability(
        truth, activities, entities, horizon_days, paths=paths, seed=seed, traits=traits
    )
