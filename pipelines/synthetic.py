"""Embedded synthetic CRM: a hidden world whose leads convert for learnable reasons.

The generator draws leads with observable attributes from hidden personas, simulates their
activity log day by day and lets them convert or get lost through hidden daily hazards.
Conversion is driven by *fit* (a function of the attributes) and by *recent, decayed
engagement* (an exponentially decayed sum of typed activities), so a point-in-time feature
builder that gets recency right can recover most of the signal, and one that leaks
post-close activities (deliberately emitted after every close) will look too good.

Everything here is pure numpy/pandas. The ``truth`` frame and :func:`oracle_probability`
expose the hidden parameters only to report the oracle bound; feature code never reads them.

Timestamps are ``datetime64[ns, UTC]`` at one-second precision; the simulation runs on
integer seconds since the start of the data so that the oracle recomputes engagement from
exactly the timestamps that were written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "ACTIVITY_TYPES",
    "DEFAULT_END",
    "UNDECLARED_TYPE",
    "SyntheticCRM",
    "generate_crm",
    "oracle_probability",
    "write_crm",
]

DEFAULT_END: pd.Timestamp = pd.Timestamp("2026-11-01", tz="UTC")
"""Exclusive end of the generated data (the 'export day')."""

SECONDS_PER_DAY = 86_400

# ---------------------------------------------------------------------------------------
# Observable vocabulary (part of the public data contract)
# ---------------------------------------------------------------------------------------

ACTIVITY_TYPES: tuple[str, ...] = (
    "email_open",
    "email_click",
    "page_view",
    "pricing_page_view",
    "content_download",
    "webinar_signup",
    "webinar_attended",
    "form_submit",
    "demo_request",
    "meeting_booked",
    "unsubscribe",
)
"""The declared activity types, in a fixed order."""

UNDECLARED_TYPE = "chat_started"
"""A type the pipeline does not declare; it must be bucketed as 'other'."""

_ALL_TYPES: tuple[str, ...] = (*ACTIVITY_TYPES, UNDECLARED_TYPE)
_T = {name: i for i, name in enumerate(_ALL_TYPES)}

INDUSTRIES = (
    "software", "fintech", "healthcare", "manufacturing",
    "retail", "education", "logistics", "public_sector",
)  # fmt: skip
COUNTRIES = ("US", "GB", "DE", "FR", "NL", "IN", "BR", "NG")
SENIORITIES = ("c_level", "vp", "director", "manager", "individual", "student")
DEPARTMENTS = ("engineering", "it", "marketing", "sales", "finance", "operations", "hr")
COMPANY_SIZES = ("1-10", "11-50", "51-200", "201-1000", "1001-5000", "5000+")
LEAD_SOURCES = (
    "organic_search", "paid_search", "webinar", "referral",
    "event", "content_syndication", "purchased_list", "partner",
)  # fmt: skip

# Employee bounds per company-size bucket (log-uniform inside), and the business segment.
_SIZE_BOUNDS: tuple[tuple[float, float], ...] = (
    (1, 10), (11, 50), (51, 200), (201, 1000), (1001, 5000), (5001, 60_000),
)  # fmt: skip
_SIZE_SEGMENT = ("smb", "smb", "mid_market", "mid_market", "enterprise", "enterprise")

# Sales reps, assigned by segment (enterprise reps, mid-market reps, smb reps).
_OWNERS_BY_SEGMENT: dict[str, tuple[str, ...]] = {
    "enterprise": ("Alice Moreau", "Bashir Okafor", "Chen Wei"),
    "mid_market": ("Dana Kowalski", "Elif Yilmaz", "Felix Brandt", "Grace Mensah"),
    "smb": ("Hugo Silva", "Ines Duarte", "Jonas Berg", "Kiran Rao", "Lena Fischer"),
}

# ---------------------------------------------------------------------------------------
# HIDDEN WORLD PARAMETERS. Nothing outside this module (and its oracle) may rely on them.
# ---------------------------------------------------------------------------------------

PERSONAS = ("mid_market_saas", "enterprise_finance", "non_icp")
PERSONA_SHARE = np.array([0.20, 0.12, 0.68])

# Attribute mix per persona: rows follow PERSONAS, columns follow the vocabulary tuple.
# fmt: off
_PERSONA_MIX: dict[str, np.ndarray] = {
    "industry": np.array([
        [0.45, 0.30, 0.05, 0.05, 0.05, 0.04, 0.04, 0.02],
        [0.05, 0.45, 0.35, 0.05, 0.03, 0.02, 0.03, 0.02],
        [0.10, 0.06, 0.10, 0.16, 0.18, 0.16, 0.12, 0.12],
    ]),
    "country": np.array([
        [0.45, 0.20, 0.20, 0.05, 0.05, 0.02, 0.02, 0.01],
        [0.40, 0.20, 0.12, 0.12, 0.08, 0.04, 0.03, 0.01],
        [0.15, 0.07, 0.07, 0.07, 0.04, 0.25, 0.18, 0.17],
    ]),
    "seniority": np.array([
        [0.05, 0.30, 0.40, 0.15, 0.09, 0.01],
        [0.35, 0.40, 0.15, 0.06, 0.04, 0.00],
        [0.04, 0.06, 0.10, 0.25, 0.35, 0.20],
    ]),
    "department": np.array([
        [0.35, 0.20, 0.15, 0.10, 0.05, 0.10, 0.05],
        [0.10, 0.25, 0.05, 0.05, 0.40, 0.12, 0.03],
        [0.15, 0.12, 0.22, 0.18, 0.08, 0.12, 0.13],
    ]),
    "company_size": np.array([
        [0.02, 0.08, 0.45, 0.40, 0.04, 0.01],
        [0.00, 0.01, 0.04, 0.10, 0.45, 0.40],
        [0.35, 0.30, 0.15, 0.10, 0.06, 0.04],
    ]),
    "lead_source": np.array([
        [0.20, 0.12, 0.15, 0.18, 0.10, 0.08, 0.02, 0.15],
        [0.10, 0.08, 0.15, 0.25, 0.20, 0.05, 0.02, 0.15],
        [0.22, 0.18, 0.08, 0.04, 0.06, 0.20, 0.18, 0.04],
    ]),
}
# fmt: on
_VOCABULARY: dict[str, tuple[str, ...]] = {
    "industry": INDUSTRIES,
    "country": COUNTRIES,
    "seniority": SENIORITIES,
    "department": DEPARTMENTS,
    "company_size": COMPANY_SIZES,
    "lead_source": LEAD_SOURCES,
}

# Additive fit-logit effect of each attribute value (same column order as _VOCABULARY).
_FIT_EFFECT: dict[str, np.ndarray] = {
    "industry": np.array([0.6, 0.6, 0.3, 0.0, -0.3, -0.5, -0.1, -0.6]),
    "country": np.array([0.5, 0.4, 0.4, 0.1, 0.2, -1.0, -0.9, -1.3]),
    "seniority": np.array([0.5, 0.7, 0.6, 0.2, -0.4, -2.2]),
    "department": np.array([0.3, 0.4, 0.0, 0.0, 0.3, 0.1, -0.4]),
    "company_size": np.array([-1.0, -0.4, 0.3, 0.5, 0.4, 0.3]),
    "lead_source": np.array([0.2, 0.0, 0.2, 0.6, 0.1, -0.3, -0.9, 0.4]),
}
FIT_INTERACTION = 0.6  # bonus for the two ICP attribute combinations (non-additive signal)
FIT_OFFSET = -0.8  # puts ICP personas well above zero (~+1.6) and non-ICP below (~-2.1)
FIT_NOISE_SD = 0.6  # fit not explained by any observable attribute
# Share of missing values per attribute, like a real CRM.
_NULL_SHARE: dict[str, float] = {
    "industry": 0.01,
    "seniority": 0.01,
    "department": 0.02,
    "employees": 0.01,
    "annual_revenue_musd": 0.02,
}

# Hidden interest: log(interest) = INTEREST_FIT_SLOPE * fit + N(0, INTEREST_SD).
INTEREST_FIT_SLOPE = 0.15
INTEREST_SD = 0.60

# True engagement state: decayed sum of these weights, half-life in days.
TRUE_WEIGHTS: dict[str, float] = {
    "meeting_booked": 10.0,
    "demo_request": 9.0,
    "webinar_attended": 7.0,
    "pricing_page_view": 6.0,
    "form_submit": 5.0,
    "webinar_signup": 4.0,
    "content_download": 3.0,
    "email_click": 2.0,
    "page_view": 1.0,
    "email_open": 0.5,
    "unsubscribe": -8.0,
    UNDECLARED_TYPE: 0.0,
}
TRUE_HALF_LIFE_DAYS = 14.0
_WEIGHT_BY_CODE = np.array([TRUE_WEIGHTS[name] for name in _ALL_TYPES])

# Daily conversion hazard: sigmoid(A + B*fit + C*log1p(max(E, 0)) + D*log(interest)).
HAZARD_A = -12.5
HAZARD_B = 0.40
HAZARD_C = 1.70
HAZARD_D = 0.30

# Daily activity rate: BASE * interest * age factor * momentum * bursts * campaigns * weekday.
BASE_ACTIVITY_RATE = 0.40
AGE_DECAY_DAYS = 40.0  # the novelty part of a lead's activity fades with this time constant
AGE_FLOOR = 0.25  # share of the activity rate that never fades with age
MOMENTUM = 0.25  # rate multiplier per unit of log1p(E): engaged leads keep engaging
UNSUBSCRIBED_RATE_FACTOR = 0.08
BURST_DAILY_PROB = 0.012
BURST_MEAN_DAYS = 4.0
BURST_MULTIPLIER = 4.0
CAMPAIGN_DAILY_PROB = 0.05  # a campaign to one industry starts on ~1 day in 20
CAMPAIGN_MULTIPLIER = 2.5
CAMPAIGN_DAYS = 4
WEEKEND_FACTOR = 0.35
CREATION_GROWTH = 0.5  # the last day sees 1.5x the leads of the first day

# Activity type mix: softmax(base + slope_e * log1p(E) + slope_fit * fit), per type.
_MIX_BASE = np.array([
    2.60,   # email_open
    1.35,   # email_click
    2.15,   # page_view
    -0.60,  # pricing_page_view
    0.40,   # content_download
    -0.30,  # webinar_signup
    -1.40,  # webinar_attended
    -0.90,  # form_submit
    -2.70,  # demo_request
    -3.40,  # meeting_booked
    -1.30,  # unsubscribe
    -2.30,  # chat_started
])  # fmt: skip
_MIX_SLOPE_E = np.array([-0.25, 0.0, -0.10, 0.55, 0.15, 0.25, 0.50, 0.45, 0.70, 0.85, -0.60, 0.0])
_MIX_SLOPE_FIT = np.array([0.0, 0.05, 0.0, 0.15, 0.05, 0.10, 0.10, 0.15, 0.25, 0.25, -0.45, 0.0])

# Daily loss hazard: base (lower for good fit) + inactivity + unsubscribe; forced at max age.
LOSS_BASE = 0.006  # lost to a competitor, budget, timing: not tied to activity
LOSS_FIT_SLOPE = 0.2
LOSS_INACTIVE = 0.05
INACTIVE_DAYS = 45.0
LOSS_UNSUBSCRIBED = 0.06
MAX_OPEN_DAYS = 365

# Post-close activity: customers keep engaging; lost leads open a stray email now and then.
POST_CLOSE_DAYS = 60
POST_CONVERT_RATE = 0.20
POST_LOST_RATE = 0.03
_POST_CONVERT_MIX = {
    "email_open": 0.50,
    "email_click": 0.12,
    "page_view": 0.15,
    "meeting_booked": 0.15,
    "content_download": 0.08,
}


@dataclass(frozen=True)
class SyntheticCRM:
    """A generated CRM: the observable ``leads`` and ``activities``, and the hidden ``truth``."""

    leads: pd.DataFrame
    activities: pd.DataFrame
    truth: pd.DataFrame


# ---------------------------------------------------------------------------------------
# Hidden model pieces shared by the simulation and the oracle
# ---------------------------------------------------------------------------------------


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _conversion_hazard(
    fit_logit: np.ndarray, engagement: np.ndarray, log_interest: np.ndarray
) -> np.ndarray:
    """True daily conversion hazard given fit, current decayed engagement and interest."""
    recent = np.log1p(np.maximum(engagement, 0.0))
    return _sigmoid(HAZARD_A + HAZARD_B * fit_logit + HAZARD_C * recent + HAZARD_D * log_interest)


def _decay(seconds: np.ndarray | float) -> np.ndarray:
    """Multiplier of an activity's weight after ``seconds`` have passed (true half-life)."""
    return np.exp2(-np.asarray(seconds, dtype=float) / (TRUE_HALF_LIFE_DAYS * SECONDS_PER_DAY))


# ---------------------------------------------------------------------------------------
# Leads: personas, attributes, fit and interest
# ---------------------------------------------------------------------------------------


def _draw_categories(rng: np.random.Generator, rows: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Draw one category code per element; ``probs[rows[i]]`` is element i's distribution."""
    cdf = np.cumsum(probs / probs.sum(axis=-1, keepdims=True), axis=-1)
    u = rng.random(len(rows))
    codes = (u[:, None] > cdf[rows]).sum(axis=1)
    return np.minimum(codes, probs.shape[-1] - 1)


def _creation_seconds(rng: np.random.Generator, n: int, days: int) -> np.ndarray:
    """Sorted creation times (seconds from start) with a linearly growing daily volume."""
    g = CREATION_GROWTH
    u = rng.random(n)
    x = (np.sqrt(1.0 + 2.0 * g * u * (1.0 + g / 2.0)) - 1.0) / g  # inverse CDF of 1 + g*x
    return np.sort(np.floor(x * days * SECONDS_PER_DAY).astype(np.int64))


def _fit_logit(rng: np.random.Generator, codes: dict[str, np.ndarray]) -> np.ndarray:
    """Hidden fit: additive attribute effects, two ICP interactions and unexplained noise."""
    fit = np.full(len(codes["industry"]), FIT_OFFSET)
    for name, effect in _FIT_EFFECT.items():
        fit += effect[codes[name]]

    def among(name: str, values: tuple[str, ...]) -> np.ndarray:
        return np.isin(codes[name], [_VOCABULARY[name].index(v) for v in values])

    saas = among("industry", ("software", "fintech")) & among(
        "company_size", ("51-200", "201-1000")
    )
    finance = among("industry", ("fintech", "healthcare")) & among(
        "company_size", ("1001-5000", "5000+")
    )
    fit += FIT_INTERACTION * (saas | finance)
    return fit + rng.normal(0.0, FIT_NOISE_SD, len(fit))


def _firmographics(
    rng: np.random.Generator, size_codes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Employees (log-uniform inside the size bucket) and log-normal revenue that tracks them."""
    bounds = np.array(_SIZE_BOUNDS)[size_codes]
    lo, hi = np.log(bounds[:, 0]), np.log(bounds[:, 1] + 1.0)
    employees = np.floor(np.exp(lo + rng.random(len(size_codes)) * (hi - lo)))
    employees = np.clip(employees, bounds[:, 0], bounds[:, 1])
    revenue = np.exp(np.log(0.15 * employees) + rng.normal(0.0, 0.6, len(size_codes)))
    return employees.astype(float), np.round(revenue, 3)


def _owners(rng: np.random.Generator, segments: np.ndarray) -> np.ndarray:
    """A sales rep per lead, drawn from the reps covering the lead's segment."""
    owners = np.empty(len(segments), dtype=object)
    for segment, reps in _OWNERS_BY_SEGMENT.items():
        mask = segments == segment
        owners[mask] = np.array(reps, dtype=object)[rng.integers(0, len(reps), mask.sum())]
    return owners


def _with_nulls(rng: np.random.Generator, values: np.ndarray, share: float) -> np.ndarray:
    """Blank out ``share`` of the values (None for strings, NaN for floats)."""
    out = values.astype(object) if values.dtype.kind in "OUS" else values.astype(float)
    mask = rng.random(len(values)) < share
    out[mask] = None if out.dtype == object else np.nan
    return out


@dataclass(frozen=True)
class _Population:
    """Static per-lead draws: what sales sees and what is hidden."""

    created: np.ndarray  # int64 seconds since start
    persona: np.ndarray  # int codes into PERSONAS
    codes: dict[str, np.ndarray]  # attribute name -> codes into its vocabulary
    employees: np.ndarray
    revenue: np.ndarray
    fit: np.ndarray
    log_interest: np.ndarray


def _draw_population(rng: np.random.Generator, n: int, days: int) -> _Population:
    """Draw creation times, personas, attributes, hidden fit and hidden interest."""
    created = _creation_seconds(rng, n, days)
    persona = _draw_categories(rng, np.zeros(n, dtype=int), PERSONA_SHARE[None, :])
    codes = {name: _draw_categories(rng, persona, mix) for name, mix in _PERSONA_MIX.items()}
    employees, revenue = _firmographics(rng, codes["company_size"])
    fit = _fit_logit(rng, codes)
    log_interest = INTEREST_FIT_SLOPE * fit + rng.normal(0.0, INTEREST_SD, n)
    return _Population(created, persona, codes, employees, revenue, fit, log_interest)


# ---------------------------------------------------------------------------------------
# Day-by-day simulation
# ---------------------------------------------------------------------------------------


@dataclass
class _State:
    """Mutable per-lead simulation state (all arrays of length n)."""

    engagement: np.ndarray  # decayed engagement E at the start of the current day
    last_activity: np.ndarray  # int64 seconds of the last activity (creation if none)
    unsubscribed: np.ndarray
    burst_left: np.ndarray
    status: np.ndarray  # 0 open, 1 converted, 2 lost
    closed: np.ndarray  # int64 seconds, -1 while open


@dataclass
class _Log:
    """Activity log under construction: parallel chunks of lead index, type code, seconds."""

    lead: list[np.ndarray]
    kind: list[np.ndarray]
    when: list[np.ndarray]

    def add(self, lead: np.ndarray, kind: np.ndarray, when: np.ndarray) -> None:
        self.lead.append(lead)
        self.kind.append(kind)
        self.when.append(when)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        def cat(chunks: list[np.ndarray], dtype: type) -> np.ndarray:
            return np.concatenate(chunks).astype(dtype) if chunks else np.empty(0, dtype)

        return cat(self.lead, np.int64), cat(self.kind, np.int64), cat(self.when, np.int64)


def _campaign_schedule(rng: np.random.Generator, days: int) -> np.ndarray:
    """Rate multiplier per (day, industry code)."""
    mult = np.ones((days, len(INDUSTRIES)))
    starts = np.flatnonzero(rng.random(days) < CAMPAIGN_DAILY_PROB)
    targets = rng.integers(0, len(INDUSTRIES), len(starts))
    for start, target in zip(starts, targets, strict=True):
        mult[start : start + CAMPAIGN_DAYS, target] *= CAMPAIGN_MULTIPLIER
    return mult


def _weekday_factor(start: pd.Timestamp, days: int) -> np.ndarray:
    """Activity multiplier per day: quieter weekends."""
    weekday = (start.day_of_week + np.arange(days)) % 7
    return np.where(weekday >= 5, WEEKEND_FACTOR, 1.0)


def _draw_types(rng: np.random.Generator, engagement: np.ndarray, fit: np.ndarray) -> np.ndarray:
    """Activity type codes; high-intent types gain share as current engagement rises."""
    logits = (
        _MIX_BASE[None, :]
        + _MIX_SLOPE_E[None, :] * np.log1p(np.maximum(engagement, 0.0))[:, None]
        + _MIX_SLOPE_FIT[None, :] * fit[:, None]
    )
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    return _draw_categories(rng, np.arange(len(engagement)), probs)


def _loss_hazard(pop: _Population, state: _State, idx: np.ndarray, day_start: int) -> np.ndarray:
    """Daily loss hazard: rises after INACTIVE_DAYS of silence and after an unsubscribe."""
    quiet_days = (day_start - state.last_activity[idx]) / SECONDS_PER_DAY
    hazard = LOSS_BASE * np.exp(-LOSS_FIT_SLOPE * pop.fit[idx])
    hazard += LOSS_INACTIVE * _sigmoid((quiet_days - INACTIVE_DAYS) / 5.0)
    hazard += LOSS_UNSUBSCRIBED * state.unsubscribed[idx]
    return hazard


def _activity_rate(
    pop: _Population, state: _State, idx: np.ndarray, day: int, day_factor: np.ndarray
) -> np.ndarray:
    """Expected activities per full day for the leads ``idx`` on ``day``."""
    age_days = np.maximum(day - pop.created[idx] // SECONDS_PER_DAY, 0)
    age = AGE_FLOOR + (1.0 - AGE_FLOOR) * np.exp(-age_days / AGE_DECAY_DAYS)
    momentum = 1.0 + MOMENTUM * np.log1p(np.maximum(state.engagement[idx], 0.0))
    burst = np.where(state.burst_left[idx] > 0, BURST_MULTIPLIER, 1.0)
    unsub = np.where(state.unsubscribed[idx], UNSUBSCRIBED_RATE_FACTOR, 1.0)
    interest = np.exp(pop.log_interest[idx])
    return BASE_ACTIVITY_RATE * interest * age * momentum * burst * unsub * day_factor


def _simulate_day(
    rng: np.random.Generator,
    pop: _Population,
    state: _State,
    log: _Log,
    active: np.ndarray,
    day: int,
    day_factor: np.ndarray,
) -> np.ndarray:
    """Advance the open leads ``active`` through ``day``; return those still open after it.

    Closes are decided from the state at the start of the day (hazards see only the past);
    the close falls at a random second of the day and that day's activities precede it.
    """
    day_start = day * SECONDS_PER_DAY
    day_end = day_start + SECONDS_PER_DAY
    m = len(active)

    # 1. Closes: competing conversion and loss hazards, no close on the creation day.
    eligible = pop.created[active] < day_start
    p_convert = _conversion_hazard(
        pop.fit[active], state.engagement[active], pop.log_interest[active]
    )
    p_lose = _loss_hazard(pop, state, active, day_start)
    too_old = (day_start - pop.created[active]) >= MAX_OPEN_DAYS * SECONDS_PER_DAY
    u = rng.random(m)
    converts = eligible & (u < p_convert)
    loses = eligible & ~converts & ((u < p_convert + p_lose) | too_old)
    closing = converts | loses
    close_at = day_start + rng.integers(0, SECONDS_PER_DAY, m)

    # 2. Activities in [max(day start, creation), close or day end).
    lo = np.maximum(day_start, pop.created[active])
    hi = np.where(closing, close_at, day_end)  # closers are older than a day: close_at >= lo
    rate = _activity_rate(pop, state, active, day, day_factor) * (hi - lo) / SECONDS_PER_DAY
    counts = rng.poisson(rate)
    pos = np.repeat(np.arange(m), counts)
    lead = active[pos]
    when = lo[pos] + np.floor(rng.random(len(pos)) * (hi - lo)[pos]).astype(np.int64)
    kind = _draw_types(rng, state.engagement[lead], pop.fit[lead])
    log.add(lead, kind, when)

    # 3. State at the start of the next day.
    gained = np.bincount(pos, weights=_WEIGHT_BY_CODE[kind] * _decay(day_end - when), minlength=m)
    state.engagement[active] = state.engagement[active] * _decay(SECONDS_PER_DAY) + gained
    np.maximum.at(state.last_activity, lead, when)
    state.unsubscribed[lead[kind == _T["unsubscribe"]]] = True
    state.burst_left[active] = np.maximum(state.burst_left[active] - 1, 0)
    starts = (rng.random(m) < BURST_DAILY_PROB) & (state.burst_left[active] == 0)
    state.burst_left[active[starts]] = rng.geometric(1.0 / BURST_MEAN_DAYS, starts.sum())

    state.status[active[converts]] = 1
    state.status[active[loses]] = 2
    state.closed[active[closing]] = close_at[closing]
    return active[~closing]


def _simulate(
    rng: np.random.Generator, pop: _Population, start: pd.Timestamp, days: int
) -> tuple[_State, _Log]:
    """Run the world day by day, vectorized over the leads open on each day."""
    n = len(pop.created)
    state = _State(
        engagement=np.zeros(n),
        last_activity=pop.created.copy(),
        unsubscribed=np.zeros(n, dtype=bool),
        burst_left=np.zeros(n, dtype=np.int64),
        status=np.zeros(n, dtype=np.int8),
        closed=np.full(n, -1, dtype=np.int64),
    )
    log = _Log([], [], [])
    campaigns = _campaign_schedule(rng, days)
    weekday = _weekday_factor(start, days)
    industry = pop.codes["industry"]
    created_day = pop.created // SECONDS_PER_DAY
    arrivals = np.searchsorted(created_day, np.arange(days + 1), side="left")
    active = np.empty(0, dtype=np.int64)
    for day in range(days):
        new = np.arange(arrivals[day], arrivals[day + 1], dtype=np.int64)
        active = np.concatenate([active, new])
        if len(active) == 0:
            continue
        factor = weekday[day] * campaigns[day, industry[active]]
        active = _simulate_day(rng, pop, state, log, active, day, factor)
    return state, log


def _post_close_activities(
    rng: np.random.Generator, state: _State, horizon: int, log: _Log
) -> None:
    """Activities after the close: customers keep engaging, lost leads open stray emails.

    This is leakage bait: a feature builder that does not cut at the snapshot time sees them.
    """
    closed = np.flatnonzero(state.status > 0)
    converted = state.status[closed] == 1
    window = np.minimum(POST_CLOSE_DAYS * SECONDS_PER_DAY, horizon - state.closed[closed] - 1)
    window = np.maximum(window, 0)
    rate = np.where(converted, POST_CONVERT_RATE, POST_LOST_RATE)
    counts = rng.poisson(rate * window / SECONDS_PER_DAY)
    pos = np.repeat(np.arange(len(closed)), counts)
    lead = closed[pos]
    when = state.closed[lead] + 1 + np.floor(rng.random(len(pos)) * window[pos]).astype(np.int64)
    names = list(_POST_CONVERT_MIX)
    probs = np.array([_POST_CONVERT_MIX[name] for name in names])
    customer_kind = np.array([_T[name] for name in names])[
        _draw_categories(rng, np.zeros(len(pos), dtype=int), probs[None, :])
    ]
    kind = np.where(converted[pos], customer_kind, _T["email_open"])
    log.add(lead, kind, when)


# ---------------------------------------------------------------------------------------
# Frames
# ---------------------------------------------------------------------------------------


def _to_utc(start: pd.Timestamp, seconds: np.ndarray) -> pd.DatetimeIndex:
    """Seconds since ``start`` as ``datetime64[ns, UTC]``; negative seconds become NaT."""
    ns = start.value + seconds.astype(np.int64) * 1_000_000_000
    ns = np.where(seconds < 0, np.iinfo(np.int64).min, ns)  # iNaT
    return pd.DatetimeIndex(ns.view("datetime64[ns]")).tz_localize("UTC")


def _lead_ids(n: int) -> np.ndarray:
    return np.array([f"L{i:07d}" for i in range(1, n + 1)], dtype=object)


def _leads_frame(
    rng: np.random.Generator,
    pop: _Population,
    state: _State,
    ids: np.ndarray,
    start: pd.Timestamp,
) -> pd.DataFrame:
    """The observable leads table, in creation order."""
    segment = np.array(_SIZE_SEGMENT, dtype=object)[pop.codes["company_size"]]
    columns: dict[str, object] = {
        "lead_id": ids,
        "created_at": _to_utc(start, pop.created),
        "status": np.array(["open", "converted", "lost"], dtype=object)[state.status],
        "closed_at": _to_utc(start, state.closed),
        "owner": _owners(rng, segment),
        "segment": segment,
    }
    for name, vocab in _VOCABULARY.items():
        values = np.array(vocab, dtype=object)[pop.codes[name]]
        columns[name] = _with_nulls(rng, values, _NULL_SHARE.get(name, 0.0))
    columns["employees"] = _with_nulls(rng, pop.employees, _NULL_SHARE["employees"])
    columns["annual_revenue_musd"] = _with_nulls(
        rng, pop.revenue, _NULL_SHARE["annual_revenue_musd"]
    )
    return pd.DataFrame(columns)


def _activity_values(rng: np.random.Generator, kind: np.ndarray) -> np.ndarray:
    """Mostly NaN; seconds on the pricing page and minutes of a webinar attended."""
    value = np.full(len(kind), np.nan)
    pricing = kind == _T["pricing_page_view"]
    value[pricing] = np.round(np.exp(rng.normal(4.0, 0.8, pricing.sum())))
    webinar = kind == _T["webinar_attended"]
    value[webinar] = rng.integers(5, 61, webinar.sum()).astype(float)
    return value


def _activities_frame(
    rng: np.random.Generator, log: _Log, ids: np.ndarray, start: pd.Timestamp
) -> pd.DataFrame:
    """The activity log sorted by (lead_id, occurred_at); lead ids sort like their index."""
    lead, kind, when = log.arrays()
    order = np.lexsort((when, lead))
    lead, kind, when = lead[order], kind[order], when[order]
    return pd.DataFrame(
        {
            "lead_id": pd.Categorical.from_codes(lead, categories=ids).astype("str"),
            "activity_type": pd.Categorical.from_codes(kind, categories=_ALL_TYPES).astype("str"),
            "occurred_at": _to_utc(start, when),
            "value": _activity_values(rng, kind),
        }
    )


def _truth_frame(pop: _Population, ids: np.ndarray) -> pd.DataFrame:
    """Hidden per-lead parameters: persona, fit logit, interest (and its log for the hazard)."""
    return pd.DataFrame(
        {
            "lead_id": pd.array(ids, dtype="str"),
            "persona": pd.array(np.array(PERSONAS, dtype=object)[pop.persona], dtype="str"),
            "fit_logit": pop.fit,
            "interest": np.exp(pop.log_interest),
            "log_interest": pop.log_interest,
        }
    )


def _as_utc(ts: pd.Timestamp) -> pd.Timestamp:
    ts = pd.Timestamp(ts)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def generate_crm(
    n_leads: int, seed: int, *, end: pd.Timestamp = DEFAULT_END, days: int = 730
) -> SyntheticCRM:
    """Generate ``n_leads`` leads created over ``days`` days before ``end`` (exclusive).

    Deterministic per ``seed``. Leads still open at ``end`` stay open: they are the ones a
    nightly run scores. A naive ``end`` is taken as UTC.
    """
    if n_leads <= 0 or days <= 0:
        raise ValueError("n_leads and days must be positive")
    end = _as_utc(end)
    start = end - pd.Timedelta(days=days)
    rng = np.random.default_rng(seed)
    pop = _draw_population(rng, n_leads, days)
    state, log = _simulate(rng, pop, start, days)
    _post_close_activities(rng, state, days * SECONDS_PER_DAY, log)
    ids = _lead_ids(n_leads)
    return SyntheticCRM(
        leads=_leads_frame(rng, pop, state, ids, start),
        activities=_activities_frame(rng, log, ids, start),
        truth=_truth_frame(pop, ids),
    )


def write_crm(crm: SyntheticCRM, out_dir: Path) -> dict[str, Path]:
    """Write the three frames as Parquet files in ``out_dir``; return their paths by name."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: out_dir / f"{name}.parquet" for name in ("leads", "activities", "truth")}
    for name, path in paths.items():
        getattr(crm, name).to_parquet(path, index=False)
    return paths


# ---------------------------------------------------------------------------------------
# Oracle
# ---------------------------------------------------------------------------------------


def _utc_ns(values: pd.Series) -> np.ndarray:
    """Timestamps as int64 nanoseconds since the epoch (naive values are taken as UTC)."""
    stamps = pd.to_datetime(values, utc=True).astype("datetime64[ns, UTC]")
    return stamps.to_numpy(dtype="datetime64[ns]").view(np.int64)


def _engagement_at(
    activities: pd.DataFrame, lead_ids: pd.Series, as_of_ns: np.ndarray
) -> np.ndarray:
    """True decayed engagement of each (lead, as_of) from activities strictly before as_of."""
    keys = pd.Index(pd.unique(lead_ids))
    act_code = keys.get_indexer(activities["lead_id"])
    known = act_code >= 0
    act_code = act_code[known]
    act_ns = _utc_ns(activities["occurred_at"])[known]
    weight = activities["activity_type"].map(TRUE_WEIGHTS).fillna(0.0).to_numpy(float)[known]
    order = np.argsort(act_code, kind="stable")
    act_code, act_ns, weight = act_code[order], act_ns[order], weight[order]
    block_start = np.searchsorted(act_code, np.arange(len(keys)), side="left")
    block_end = np.searchsorted(act_code, np.arange(len(keys)), side="right")

    ent_code = keys.get_indexer(lead_ids)
    sizes = (block_end - block_start)[ent_code]
    ent = np.repeat(np.arange(len(ent_code)), sizes)
    offsets = np.arange(len(ent)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    act = block_start[ent_code][ent] + offsets
    age_ns = as_of_ns[ent] - act_ns[act]
    before = age_ns > 0
    contrib = weight[act[before]] * _decay(age_ns[before] / 1e9)
    return np.bincount(ent[before], weights=contrib, minlength=len(ent_code))


def oracle_probability(
    truth: pd.DataFrame,
    activities: pd.DataFrame,
    entities: pd.DataFrame,
    horizon_days: int,
) -> np.ndarray:
    """Hidden probability that each entity row converts within ``horizon_days`` after as_of.

    For every row of ``entities`` (columns ``lead_id``, ``as_of``) the true engagement E is
    recomputed from the activities strictly before ``as_of`` with the true weights and
    half-life; the true daily hazard h = hazard(fit_logit, E, interest) is then compounded
    as ``1 - (1 - h) ** horizon_days``. This is the hidden propensity at ``as_of`` (it holds
    E fixed and ignores loss), used only to report the oracle bound: no feature code reads
    ``truth``. Returns an array aligned with ``entities``' rows.
    """
    if horizon_days <= 0:
        raise ValueError("horizon_days must be positive")
    params = truth.set_index("lead_id")
    rows = params.reindex(entities["lead_id"])
    if rows["fit_logit"].isna().any():
        missing = entities["lead_id"][rows["fit_logit"].isna().to_numpy()].unique()[:5]
        raise ValueError(f"entities reference leads absent from truth: {list(missing)}")
    log_interest = (
        rows["log_interest"].to_numpy(float)
        if "log_interest" in rows
        else np.log(rows["interest"].to_numpy(float))
    )
    engagement = _engagement_at(activities, entities["lead_id"], _utc_ns(entities["as_of"]))
    hazard = _conversion_hazard(rows["fit_logit"].to_numpy(float), engagement, log_interest)
    return 1.0 - (1.0 - hazard) ** horizon_days
