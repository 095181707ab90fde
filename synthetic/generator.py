"""The generator: draw the leads, run the world day by day, emit the three frames."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from leadscore.synthetic import world
from leadscore.synthetic.contacts import contact_columns
from leadscore.synthetic.drift import Change, Drift, plan, relabel, unrecorded, utc
from leadscore.synthetic.dynamics import activity_calendar, advance_bursts, exogenous_rate
from leadscore.synthetic.frames import (
    SyntheticCRM,
    activities_frame,
    lead_ids,
    leads_frame,
    truth_frame,
)
from leadscore.synthetic.population import Population, draw_categories, draw_population
from leadscore.synthetic.step import ActivityLog, State, Units, simulate_day
from leadscore.synthetic.vocabulary import DEFAULT_END, SECONDS_PER_DAY, TYPE_CODE


def _simulate(
    rng: np.random.Generator, pop: Population, start: int, end: int, drift: Drift | None = None
) -> tuple[State, ActivityLog]:
    """Run the world day by day over ``[start, end)`` (epoch seconds), vectorized over the
    leads open on each day; ``drift`` adds injected changes (:mod:`~leadscore.synthetic.drift`)."""
    n = len(pop.created)
    keys = rng.integers(0, 2**64, n, dtype=np.uint64)
    units = Units.of(pop.created, pop.fit, pop.log_interest, keys)
    if drift is not None and drift.hazard_shift is not None:  # a new source's own hazard
        units = replace(units, hazard_offset=units.hazard_offset + drift.hazard_shift)
    after_day = drift.after_day if drift is not None else None
    state = State.fresh(np.zeros(n), pop.created, np.zeros(n, dtype=bool))
    burst_left = np.zeros(n, dtype=np.int64)
    log = ActivityLog([], [], [])
    first_day, last_day = start // SECONDS_PER_DAY, (end - 1) // SECONDS_PER_DAY
    calendar = activity_calendar(first_day, last_day - first_day + 1, pop.calendar_key)
    industry = pop.codes["industry"]
    days = np.arange(first_day, last_day + 1)
    arrivals = np.searchsorted(pop.created // SECONDS_PER_DAY, np.append(days, last_day + 1))
    active = np.empty(0, dtype=np.int64)
    for i, day in enumerate(days):
        new = np.arange(arrivals[i], arrivals[i + 1], dtype=np.int64)
        active = np.concatenate([active, new])
        if len(active) == 0:
            continue
        exogenous = exogenous_rate(
            pop.log_interest[active],
            pop.created[active],
            day,
            calendar[i, industry[active]],
            burst_left[active],
        )
        until = min((day + 1) * SECONDS_PER_DAY, end)
        active, _, _ = simulate_day(units, state, active, day, exogenous, until=until, log=log)
        if after_day is not None:
            after_day(int(day), active, state, log, end)
        burst_left[active] = advance_bursts(burst_left[active], pop.burst_key[active], day)
    return state, log


def _post_close_activities(
    rng: np.random.Generator, state: State, end: int, log: ActivityLog
) -> None:
    """Activities after the close: customers keep engaging, lost leads open stray emails.

    This is leakage bait: a feature builder that does not cut at the snapshot time sees them.
    """
    closed = np.flatnonzero(state.status > 0)
    converted = state.status[closed] == 1
    window = np.minimum(world.POST_CLOSE_DAYS * SECONDS_PER_DAY, end - state.closed[closed] - 1)
    window = np.maximum(window, 0)
    rate = np.where(converted, world.POST_CONVERT_RATE, world.POST_LOST_RATE)
    counts = rng.poisson(rate * window / SECONDS_PER_DAY)
    pos = np.repeat(np.arange(len(closed)), counts)
    lead = closed[pos]
    when = state.closed[lead] + 1 + np.floor(rng.random(len(pos)) * window[pos]).astype(np.int64)
    names = list(world.POST_CONVERT_MIX)
    probs = np.array([world.POST_CONVERT_MIX[name] for name in names])
    customer_kind = np.array([TYPE_CODE[name] for name in names])[
        draw_categories(rng, np.zeros(len(pos), dtype=int), probs[None, :])
    ]
    kind = np.where(converted[pos], customer_kind, TYPE_CODE["email_open"])
    log.add(lead, kind, when)


def generate_crm(
    n_leads: int,
    seed: int,
    *,
    end: pd.Timestamp = DEFAULT_END,
    days: int = 730,
    changes: Sequence[Change] = (),
) -> SyntheticCRM:
    """Generate ``n_leads`` leads created over ``days`` days before ``end`` (exclusive).

    Deterministic per ``seed``. Leads still open at ``end`` stay open: they are the ones a
    nightly run scores. A naive ``end`` is taken as UTC. ``changes`` inject drift at their
    dates (:mod:`~leadscore.synthetic.drift`); without any, the CRM is exactly as before.
    """
    if n_leads <= 0 or days <= 0:
        raise ValueError("n_leads and days must be positive")
    end_s = utc(end).value // 1_000_000_000
    start_s = end_s - days * SECONDS_PER_DAY
    rng = np.random.default_rng(seed)
    pop = draw_population(rng, n_leads, start_s, end_s)
    drift = plan(pop, changes, seed) if changes else None
    pop = drift.population if drift is not None else pop
    state, log = _simulate(rng, pop, start_s, end_s, drift)
    _post_close_activities(rng, state, end_s, log)
    ids = lead_ids(n_leads)
    leads = leads_frame(rng, pop, state, ids)
    # who they are: a stream of its own, so the other columns stay as without them
    contacts = contact_columns(seed, pop.codes["country"], pop.codes["industry"])
    activities = activities_frame(rng, log, ids)
    if drift is not None:
        leads, activities = relabel(leads, drift), unrecorded(activities, drift)
    return SyntheticCRM(
        leads=leads.assign(**contacts),
        activities=activities,
        truth=truth_frame(pop, ids),
    )
