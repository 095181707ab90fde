"""Embedded synthetic CRM: a hidden world whose leads convert for learnable reasons.

The generator draws leads with observable attributes from hidden personas, simulates their
activity log day by day and lets them convert or get lost through hidden daily hazards.
Conversion is driven by *fit* (a function of the attributes) and by *recent, decayed
engagement* (an exponentially decayed sum of typed activities), so a point-in-time feature
builder that gets recency right can recover most of the signal, and one that leaks
post-close activities (deliberately emitted after every close) will look too good.

Everything here is pure numpy/pandas. The ``truth`` frame and :func:`oracle_probability`
expose the hidden parameters only to report the oracle bound; feature code never reads them.
The oracle rebuilds each lead's hidden state at a snapshot and simulates its futures with
the generator's own daily step (:func:`_simulate_day`), so it is the true conditional
probability given that state (up to Monte Carlo noise), not an approximation of it.

Timestamps are ``datetime64[ns, UTC]`` at one-second precision; the simulation runs on
integer seconds since the epoch and on UTC calendar days, so that the oracle recomputes
the hidden state from exactly the timestamps that were written. Weekends, the CRM's
campaigns and each lead's bursts are fixed functions of the date and of hidden keys kept
in ``truth``: the oracle reads from the keys what is running at the snapshot, and draws
what starts later afresh on every path, as it draws activities. Replaying the world's
future bursts and campaigns would be foresight, not propensity (it lifted the oracle's
ROC-AUC on the 20k demo CRM from 0.9291 to 0.9301).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "ACTIVITY_TYPES",
    "DEFAULT_END",
    "UNDECLARED_TYPE",
    "PathTraits",
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
# the type draw runs in float32 (speed); the generator and the oracle share it
_MIX_BASE32, _MIX_SLOPE_E32, _MIX_SLOPE_FIT32 = (
    a.astype(np.float32) for a in (_MIX_BASE, _MIX_SLOPE_E, _MIX_SLOPE_FIT)
)

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


def _hazard_offset(fit_logit: np.ndarray, log_interest: np.ndarray) -> np.ndarray:
    """The per-lead part of the conversion hazard's logit."""
    return HAZARD_A + HAZARD_B * fit_logit + HAZARD_D * log_interest


def _conversion_hazard(hazard_offset: np.ndarray, recent: np.ndarray) -> np.ndarray:
    """True daily conversion hazard sigmoid(A + B*fit + C*log1p(max(E, 0)) + D*log(interest))
    from the per-lead offset and ``recent`` = log1p(max(E, 0)) of the current engagement."""
    return _sigmoid(hazard_offset + HAZARD_C * recent)


def _decay(seconds: np.ndarray | float) -> np.ndarray:
    """Multiplier of an activity's weight after ``seconds`` have passed (true half-life)."""
    return np.exp2(-np.asarray(seconds, dtype=float) / (TRUE_HALF_LIFE_DAYS * SECONDS_PER_DAY))


# Counter-based randomness: every draw of the daily step hashes (a unit's 64-bit key, the
# day number, a stream salt). A unit's path depends on its own key only, so the oracle's
# paths for one entity row never move when other rows (or their activities) change.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)
_LOW_32 = np.uint64(0xFFFFFFFF)
_STREAM_CLOSE = np.uint64(0x243F6A8885A308D3)  # per unit and day: the close draw
_STREAM_COUNT = np.uint64(0xB7E151628AED2A6B)  # per unit and day: the activity count
_STREAM_CLOSE_AT = np.uint64(0x13198A2E03707345)  # the second of a close
_STREAM_ACTIVITY = np.uint64(0xA4093822299F31D1)  # per activity: its second and its type
_STREAM_NTH = np.uint64(0x082EFA98EC4E6C89)  # times the activity's index within the day
_STREAM_BURST = np.uint64(0x452821E638D01377)  # per lead and day: burst start and length
_STREAM_CAMPAIGN = np.uint64(0xBE5466CF34E90C6C)  # per day: campaign start and target
_STREAM_PATH = np.uint64(0xC0AC29B7C97C50DD)  # oracle: one key per (row, path)


def _mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finalizer, in place on a uint64 array (wrapping arithmetic)."""
    x ^= x >> np.uint64(30)
    x *= _MIX_1
    x ^= x >> np.uint64(27)
    x *= _MIX_2
    x ^= x >> np.uint64(31)
    return x


def _hash(key: np.ndarray, day: np.ndarray | int, salt: np.ndarray | np.uint64) -> np.ndarray:
    """64 random bits per element of ``key``: a hash of (key, day, salt)."""
    x = np.empty(len(key), dtype=np.uint64)
    x[...] = day
    x *= _GOLDEN
    x += key
    x += salt
    return _mix64(x)


def _uniform(key: np.ndarray, day: np.ndarray | int, salt: np.uint64) -> np.ndarray:
    """One uniform on [0, 1) (53-bit resolution) per element of ``key``."""
    x = _hash(key, day, salt)
    x >>= np.uint64(11)
    u = x.astype(np.float64)
    u *= 2.0**-53
    return u


def _uniforms(
    key: np.ndarray, day: np.ndarray | int, salt: np.ndarray | np.uint64
) -> tuple[np.ndarray, np.ndarray]:
    """Two independent uniforms on [0, 1) (32-bit resolution) per element of ``key``."""
    x = _hash(key, day, salt)
    high = (x >> np.uint64(32)).astype(np.float64) * 2.0**-32
    low = (x & _LOW_32).astype(np.float64) * 2.0**-32
    return high, low


def _campaign_starts(days: np.ndarray, key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Whether a campaign starts on each of ``days`` and which industry code it targets.

    ``key`` is one calendar key per element of ``days`` (broadcast from a scalar): the
    CRM's hidden calendar key in the generator, a path's own key for an oracle's future.
    """
    days, key = np.broadcast_arrays(np.asarray(days, dtype=np.int64), np.asarray(key, np.uint64))
    u_start, u_target = _uniforms(key.ravel(), days.ravel(), _STREAM_CAMPAIGN)
    starts = (u_start < CAMPAIGN_DAILY_PROB).reshape(days.shape)
    target = (u_target * len(INDUSTRIES)).astype(np.int64).reshape(days.shape)
    return starts, target


def _weekday_factor(days: np.ndarray) -> np.ndarray:
    """Weekends are quieter (1970-01-01, day 0, was a Thursday)."""
    return np.where((np.asarray(days) + 3) % 7 >= 5, WEEKEND_FACTOR, 1.0)


def _calendar(first_day: int, n_days: int, key: np.uint64) -> np.ndarray:
    """Activity multiplier per (day, industry code) for ``n_days`` days from ``first_day``.

    Days are numbered since 1970-01-01 (UTC). Weekends are quieter; a campaign to one
    industry starts on about one day in twenty and runs CAMPAIGN_DAYS days. Starts and
    targets hash the CRM's hidden calendar ``key`` with the day number, so the oracle can
    rebuild the campaigns running at a snapshot; campaigns starting later are future
    chance, which the oracle draws afresh per path (:func:`_oracle_campaigns`).
    """
    days = np.arange(first_day - CAMPAIGN_DAYS + 1, first_day + n_days, dtype=np.int64)
    starts, targets = _campaign_starts(days, np.uint64(key))
    mult = np.ones((n_days, len(INDUSTRIES)))
    for start in np.flatnonzero(starts):
        row = start - (CAMPAIGN_DAYS - 1)  # days[start] is mult's row `row`
        mult[max(row, 0) : row + CAMPAIGN_DAYS, targets[start]] *= CAMPAIGN_MULTIPLIER
    return mult * _weekday_factor(np.arange(first_day, first_day + n_days))[:, None]


def _advance_bursts(burst_left: np.ndarray, burst_key: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Burst days left after ``day``: a running burst counts down, a new one may start.

    Starts and geometric lengths hash ``burst_key`` with the day: the lead's hidden key in
    the generator (so the oracle can rebuild the burst running at a snapshot from
    ``truth``), a path's own key for the bursts of an oracle's future.
    """
    left = np.maximum(burst_left - 1, 0)
    u_start, u_length = _uniforms(burst_key, day, _STREAM_BURST)
    starts = (left == 0) & (u_start < BURST_DAILY_PROB)
    return np.where(starts, burst_length(u_length), left)


def burst_length(u: np.ndarray) -> np.ndarray:
    """Burst lengths in days at the uniforms ``u``: geometric on 1, 2, ... with mean
    BURST_MEAN_DAYS (memoryless: a running burst's days left follow the same law)."""
    length = np.ceil(np.log1p(-u) / np.log1p(-1.0 / BURST_MEAN_DAYS)).astype(np.int64)
    return np.maximum(length, 1)


def _burst_multiplier(burst_left: np.ndarray) -> np.ndarray:
    return np.where(burst_left > 0, BURST_MULTIPLIER, 1.0)


def _poisson(u: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """Poisson counts by inverting the CDF at the uniforms ``u`` (rates capped at 500)."""
    rate = np.minimum(rate, 500.0)
    prob = np.exp(-rate)
    cdf = prob.copy()
    count = (u >= cdf).astype(np.int64)
    prob *= rate
    cdf += prob
    above = u >= cdf
    count += above
    idx = np.flatnonzero(above)
    k = 1
    while idx.size:
        k += 1
        count[idx] = k
        step = prob[idx] * rate[idx] / k
        prob[idx] = step
        cdf[idx] += step
        idx = idx[u[idx] >= cdf[idx]]
    return count


# ---------------------------------------------------------------------------------------
# Leads: personas, attributes, fit and interest
# ---------------------------------------------------------------------------------------


def _draw_categories(rng: np.random.Generator, rows: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Draw one category code per element; ``probs[rows[i]]`` is element i's distribution."""
    cdf = np.cumsum(probs / probs.sum(axis=-1, keepdims=True), axis=-1)
    u = rng.random(len(rows))
    codes = (u[:, None] > cdf[rows]).sum(axis=1)
    return np.minimum(codes, probs.shape[-1] - 1)


def _creation_seconds(rng: np.random.Generator, n: int, span: int) -> np.ndarray:
    """Sorted creation offsets (seconds into a ``span``) with a linearly growing volume."""
    g = CREATION_GROWTH
    u = rng.random(n)
    x = (np.sqrt(1.0 + 2.0 * g * u * (1.0 + g / 2.0)) - 1.0) / g  # inverse CDF of 1 + g*x
    return np.sort(np.floor(x * span).astype(np.int64))


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

    created: np.ndarray  # int64 seconds since the epoch
    persona: np.ndarray  # int codes into PERSONAS
    codes: dict[str, np.ndarray]  # attribute name -> codes into its vocabulary
    employees: np.ndarray
    revenue: np.ndarray
    fit: np.ndarray
    log_interest: np.ndarray
    burst_key: np.ndarray  # uint64: seeds the lead's bursts of activity (hidden)
    calendar_key: np.uint64  # seeds the CRM's campaign calendar (hidden)


def _draw_population(rng: np.random.Generator, n: int, start: int, end: int) -> _Population:
    """Draw creation times, personas, attributes, hidden fit, interest and burst keys."""
    created = start + _creation_seconds(rng, n, end - start)
    persona = _draw_categories(rng, np.zeros(n, dtype=int), PERSONA_SHARE[None, :])
    codes = {name: _draw_categories(rng, persona, mix) for name, mix in _PERSONA_MIX.items()}
    employees, revenue = _firmographics(rng, codes["company_size"])
    fit = _fit_logit(rng, codes)
    log_interest = INTEREST_FIT_SLOPE * fit + rng.normal(0.0, INTEREST_SD, n)
    burst_key = rng.integers(0, 2**64, n, dtype=np.uint64)
    calendar_key = rng.integers(0, 2**64, 1, dtype=np.uint64)[0]
    return _Population(
        created, persona, codes, employees, revenue, fit, log_interest, burst_key, calendar_key
    )


# ---------------------------------------------------------------------------------------
# Day-by-day simulation (one step function for the generator and the oracle)
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Units:
    """What the daily step reads of each simulated unit: a lead, or one oracle path of one.

    Besides the creation time and fit it holds the per-unit, time-invariant parts of the
    hazards (:meth:`of` derives them from fit and interest).
    """

    created: np.ndarray  # int64 seconds since the epoch
    fit: np.ndarray
    hazard_offset: np.ndarray  # HAZARD_A + HAZARD_B * fit + HAZARD_D * log(interest)
    loss_base: np.ndarray  # LOSS_BASE * exp(-LOSS_FIT_SLOPE * fit)
    key: np.ndarray  # uint64: the unit's own randomness (never stored in truth)

    @classmethod
    def of(
        cls, created: np.ndarray, fit: np.ndarray, log_interest: np.ndarray, key: np.ndarray
    ) -> _Units:
        return cls(
            created=created,
            fit=fit,
            hazard_offset=_hazard_offset(fit, log_interest),
            loss_base=LOSS_BASE * np.exp(-LOSS_FIT_SLOPE * fit),
            key=key,
        )

    def take(self, idx: np.ndarray) -> _Units:
        return _Units(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})


@dataclass
class _State:
    """Mutable per-unit simulation state, as of the start of the current day."""

    engagement: np.ndarray  # decayed engagement E
    last_activity: np.ndarray  # int64 seconds of the last activity (creation if none)
    unsubscribed: np.ndarray
    status: np.ndarray  # 0 open, 1 converted, 2 lost
    closed: np.ndarray  # int64 seconds, -1 while open

    @classmethod
    def fresh(
        cls, engagement: np.ndarray, last_activity: np.ndarray, unsubscribed: np.ndarray
    ) -> _State:
        n = len(engagement)
        return cls(
            engagement=engagement.astype(float),
            last_activity=last_activity.astype(np.int64),
            unsubscribed=unsubscribed.astype(bool),
            status=np.zeros(n, dtype=np.int8),
            closed=np.full(n, -1, dtype=np.int64),
        )


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


def _draw_types(u: np.ndarray, recent: np.ndarray, fit: np.ndarray) -> np.ndarray:
    """Activity type codes at the uniforms ``u``: softmax(base + slope_e * log1p(E) +
    slope_fit * fit), so high-intent types gain share as current engagement rises."""
    cdf = np.multiply.outer(_MIX_SLOPE_E32, recent.astype(np.float32))  # (type, activity)
    cdf += np.multiply.outer(_MIX_SLOPE_FIT32, fit.astype(np.float32))
    cdf += _MIX_BASE32[:, None]
    np.exp(cdf, out=cdf)
    for k in range(1, len(cdf)):
        cdf[k] += cdf[k - 1]
    codes = (cdf < u.astype(np.float32) * cdf[-1]).sum(axis=0)
    return np.minimum(codes, len(_ALL_TYPES) - 1)


def _loss_hazard(
    loss_base: np.ndarray,
    last_activity: np.ndarray,
    unsubscribed: np.ndarray,
    day_start: np.ndarray,
) -> np.ndarray:
    """Daily loss hazard: a fit-dependent base that rises after INACTIVE_DAYS of silence
    and after an unsubscribe."""
    quiet_days = (day_start - last_activity) / SECONDS_PER_DAY
    hazard = LOSS_INACTIVE * _sigmoid((quiet_days - INACTIVE_DAYS) / 5.0)
    hazard += loss_base
    hazard += LOSS_UNSUBSCRIBED * unsubscribed
    return hazard


def _exogenous_rate(
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
    age = AGE_FLOOR + (1.0 - AGE_FLOOR) * np.exp(-age_days / AGE_DECAY_DAYS)
    burst = _burst_multiplier(burst_left)
    return BASE_ACTIVITY_RATE * np.exp(log_interest) * age * calendar * burst


def _activity_rate(
    exogenous: np.ndarray, recent: np.ndarray, unsubscribed: np.ndarray
) -> np.ndarray:
    """Expected activities per full day: the exogenous rate * momentum (engaged leads keep
    engaging), cut after an unsubscribe."""
    rate = MOMENTUM * recent
    rate += 1.0
    rate *= exogenous
    rate[unsubscribed] *= UNSUBSCRIBED_RATE_FACTOR
    return rate


def _simulate_day(
    units: _Units,
    state: _State,
    active: np.ndarray,
    day: np.ndarray | int,
    exogenous_rate: np.ndarray,
    *,
    begin: np.ndarray | None = None,
    until: np.ndarray | int | None = None,
    log: _Log | None = None,
    sample_closes: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Advance the open units ``active`` through ``day``.

    Returns the units still open after the day and, per unit of ``active``, the day's
    probabilities of converting and of closing (given the state at the day's start).
    With ``sample_closes=False`` nothing closes: every unit lives the whole window, and
    the caller integrates the returned probabilities instead (the day's close draw is
    independent of the day's activities, so this gives the same expectation as sampling).

    ``active`` holds distinct unit indices in increasing order. ``day`` (days since the
    epoch) may differ per unit; ``exogenous_rate`` is
    :func:`_exogenous_rate` of each unit on its day. Each unit is simulated over
    ``[begin, until)`` within its day (default: the whole day). A ``begin`` after the
    day's start means the unit is known to be open at ``begin``: the day's close, decided
    at the day's start and falling at a uniform second of the day, is then drawn
    conditionally on that. Closes are decided from the state at the start of the day
    (hazards see only the past); the close falls at a random second of the window and
    the window's activities precede it.
    """
    m = len(active)
    every = m == len(units.key)  # active is all units, in order: read the arrays as they are
    at = slice(None) if every else active
    day = np.broadcast_to(np.asarray(day, dtype=np.int64), (m,))
    day_start = day * SECONDS_PER_DAY
    day_end = day_start + SECONDS_PER_DAY
    whole_day = begin is None and until is None
    begin = day_start if begin is None else np.broadcast_to(begin, (m,))
    until = day_end if until is None else np.broadcast_to(until, (m,))
    key, created = units.key[at], units.created[at]
    engagement = state.engagement[at]
    unsubscribed = state.unsubscribed[at]
    recent = np.log1p(np.maximum(engagement, 0.0))
    u_count = _uniform(key, day, _STREAM_COUNT)

    # 1. Closes: competing conversion and loss hazards, no close on the creation day.
    eligible = created < day_start
    p_convert = _conversion_hazard(units.hazard_offset[at], recent)
    p_close = p_convert + _loss_hazard(
        units.loss_base[at], state.last_activity[at], unsubscribed, day_start
    )
    np.minimum(p_close, 1.0, out=p_close)
    p_close[(day_start - created) >= MAX_OPEN_DAYS * SECONDS_PER_DAY] = 1.0  # too old
    if not whole_day:  # P(close in [begin, until) | open at begin)
        scale = ((until - begin) / SECONDS_PER_DAY) / (
            1.0 - p_close * ((begin - day_start) / SECONDS_PER_DAY)
        )
        p_convert *= scale
        p_close *= scale
    if not eligible.all():
        p_convert[~eligible] = 0.0
        p_close[~eligible] = 0.0
    if sample_closes:
        u_close = _uniform(key, day, _STREAM_CLOSE)
        converts, closing = u_close < p_convert, u_close < p_close
    else:
        converts = closing = np.zeros(m, dtype=bool)
    closer = np.flatnonzero(closing)
    u_at = _uniform(key[closer], day[closer], _STREAM_CLOSE_AT)
    close_at = begin[closer] + np.floor(u_at * (until - begin)[closer]).astype(np.int64)

    # 2. Activities in [max(begin, creation), close or until).
    lo = np.maximum(begin, created)
    hi = np.array(until, dtype=np.int64)
    hi[closer] = close_at  # closers are older than a day: close_at >= begin = lo
    span = np.maximum(hi - lo, 0)
    rate = _activity_rate(exogenous_rate, recent, unsubscribed)
    rate *= span / SECONDS_PER_DAY
    counts = _poisson(u_count, rate)
    pos = np.repeat(np.arange(m), counts)
    nth = np.arange(len(pos), dtype=np.uint64)
    nth -= np.repeat(np.cumsum(counts) - counts, counts).astype(np.uint64)
    nth *= _STREAM_NTH
    nth += _STREAM_ACTIVITY
    u_when, u_kind = _uniforms(key[pos], day[pos], nth)
    when = lo[pos] + np.floor(u_when * span[pos]).astype(np.int64)
    kind = _draw_types(u_kind, recent[pos], units.fit[active[pos]])
    lead = active[pos]
    if log is not None:
        log.add(lead, kind, when)

    # 3. State at the start of the next day.
    gained = np.bincount(
        pos, weights=_WEIGHT_BY_CODE[kind] * _decay(day_end[pos] - when), minlength=m
    )
    state.engagement[at] = engagement * _decay(SECONDS_PER_DAY) + gained
    np.maximum.at(state.last_activity, lead, when)
    state.unsubscribed[lead[kind == _T["unsubscribe"]]] = True
    state.status[active[closer]] = np.where(converts[closer], 1, 2)
    state.closed[active[closer]] = close_at
    return (active[~closing] if sample_closes else active), p_convert, p_close


def _simulate(
    rng: np.random.Generator, pop: _Population, start: int, end: int
) -> tuple[_State, _Log]:
    """Run the world day by day over ``[start, end)`` (epoch seconds), vectorized over the
    leads open on each day."""
    n = len(pop.created)
    keys = rng.integers(0, 2**64, n, dtype=np.uint64)
    units = _Units.of(pop.created, pop.fit, pop.log_interest, keys)
    state = _State.fresh(np.zeros(n), pop.created, np.zeros(n, dtype=bool))
    burst_left = np.zeros(n, dtype=np.int64)
    log = _Log([], [], [])
    first_day, last_day = start // SECONDS_PER_DAY, (end - 1) // SECONDS_PER_DAY
    calendar = _calendar(first_day, last_day - first_day + 1, pop.calendar_key)
    industry = pop.codes["industry"]
    days = np.arange(first_day, last_day + 1)
    arrivals = np.searchsorted(pop.created // SECONDS_PER_DAY, np.append(days, last_day + 1))
    active = np.empty(0, dtype=np.int64)
    for i, day in enumerate(days):
        new = np.arange(arrivals[i], arrivals[i + 1], dtype=np.int64)
        active = np.concatenate([active, new])
        if len(active) == 0:
            continue
        exogenous = _exogenous_rate(
            pop.log_interest[active],
            pop.created[active],
            day,
            calendar[i, industry[active]],
            burst_left[active],
        )
        until = min((day + 1) * SECONDS_PER_DAY, end)
        active, _, _ = _simulate_day(units, state, active, day, exogenous, until=until, log=log)
        burst_left[active] = _advance_bursts(burst_left[active], pop.burst_key[active], day)
    return state, log


def _post_close_activities(rng: np.random.Generator, state: _State, end: int, log: _Log) -> None:
    """Activities after the close: customers keep engaging, lost leads open stray emails.

    This is leakage bait: a feature builder that does not cut at the snapshot time sees them.
    """
    closed = np.flatnonzero(state.status > 0)
    converted = state.status[closed] == 1
    window = np.minimum(POST_CLOSE_DAYS * SECONDS_PER_DAY, end - state.closed[closed] - 1)
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


def _to_utc(seconds: np.ndarray) -> pd.DatetimeIndex:
    """Seconds since the epoch as ``datetime64[ns, UTC]``; negative seconds become NaT."""
    ns = seconds.astype(np.int64) * 1_000_000_000
    ns = np.where(seconds < 0, np.iinfo(np.int64).min, ns)  # iNaT
    return pd.DatetimeIndex(ns.view("datetime64[ns]")).tz_localize("UTC")


def _lead_ids(n: int) -> np.ndarray:
    return np.array([f"L{i:07d}" for i in range(1, n + 1)], dtype=object)


def _leads_frame(
    rng: np.random.Generator,
    pop: _Population,
    state: _State,
    ids: np.ndarray,
) -> pd.DataFrame:
    """The observable leads table, in creation order."""
    segment = np.array(_SIZE_SEGMENT, dtype=object)[pop.codes["company_size"]]
    columns: dict[str, object] = {
        "lead_id": ids,
        "created_at": _to_utc(pop.created),
        "status": np.array(["open", "converted", "lost"], dtype=object)[state.status],
        "closed_at": _to_utc(state.closed),
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


def _activities_frame(rng: np.random.Generator, log: _Log, ids: np.ndarray) -> pd.DataFrame:
    """The activity log sorted by (lead_id, occurred_at); lead ids sort like their index."""
    lead, kind, when = log.arrays()
    order = np.lexsort((when, lead))
    lead, kind, when = lead[order], kind[order], when[order]
    return pd.DataFrame(
        {
            "lead_id": pd.Categorical.from_codes(lead, categories=ids).astype("str"),
            "activity_type": pd.Categorical.from_codes(kind, categories=_ALL_TYPES).astype("str"),
            "occurred_at": _to_utc(when),
            "value": _activity_values(rng, kind),
        }
    )


def _truth_frame(pop: _Population, ids: np.ndarray) -> pd.DataFrame:
    """Hidden per-lead parameters: everything the oracle needs to replay a lead's world.

    Persona, fit logit, interest (and its log for the hazard), the creation time, the true
    industry (the observable one has gaps; campaigns target the true one), the key that
    fixes the lead's bursts of activity and the key of the CRM's campaign calendar (the
    same on every row).
    """
    return pd.DataFrame(
        {
            "lead_id": pd.array(ids, dtype="str"),
            "persona": pd.array(np.array(PERSONAS, dtype=object)[pop.persona], dtype="str"),
            "fit_logit": pop.fit,
            "interest": np.exp(pop.log_interest),
            "log_interest": pop.log_interest,
            "created_at": _to_utc(pop.created),
            "true_industry": pd.array(
                np.array(INDUSTRIES, dtype=object)[pop.codes["industry"]], dtype="str"
            ),
            "burst_key": pop.burst_key.view(np.int64),
            "calendar_key": np.full(len(ids), pop.calendar_key).view(np.int64),
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
    end_s = _as_utc(end).value // 1_000_000_000
    start_s = end_s - days * SECONDS_PER_DAY
    rng = np.random.default_rng(seed)
    pop = _draw_population(rng, n_leads, start_s, end_s)
    state, log = _simulate(rng, pop, start_s, end_s)
    _post_close_activities(rng, state, end_s, log)
    ids = _lead_ids(n_leads)
    return SyntheticCRM(
        leads=_leads_frame(rng, pop, state, ids),
        activities=_activities_frame(rng, log, ids),
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

_NS_PER_SECOND = 1_000_000_000
_ORACLE_CHUNK_UNITS = 1 << 15  # rows x paths simulated at once (cache-sized)
_TRUTH_COLUMNS = ("fit_logit", "created_at", "true_industry", "burst_key", "calendar_key")


def _utc_ns(values: pd.Series) -> np.ndarray:
    """Timestamps as int64 nanoseconds since the epoch (naive values are taken as UTC)."""
    stamps = pd.to_datetime(values, utc=True).astype("datetime64[ns, UTC]")
    return stamps.to_numpy(dtype="datetime64[ns]").view(np.int64)


@dataclass(frozen=True)
class _Rows:
    """Per entity row: hidden parameters from ``truth`` and the hidden state at as_of,
    reconstructed from the activities strictly before as_of."""

    created: np.ndarray  # int64 seconds since the epoch
    fit: np.ndarray
    log_interest: np.ndarray
    industry: np.ndarray  # true industry code
    burst_key: np.ndarray  # uint64
    calendar_key: np.ndarray  # uint64, the same for every row
    key: np.ndarray  # uint64 noise key of the row: a hash of (lead_id, as_of)
    begin: np.ndarray  # first simulated second: as_of, rounded up
    until: np.ndarray  # one past the last second inside the horizon
    # State at the start of the day of ``begin`` (what that day's hazards and rates see):
    engagement: np.ndarray
    last_activity: np.ndarray
    unsubscribed: np.ndarray
    burst_left: np.ndarray
    # That day's activities before as_of, folded into the state at the day's end:
    engagement_carry: np.ndarray  # decayed to the day's end
    last_before: np.ndarray  # last activity strictly before as_of (creation if none)
    unsubscribed_before: np.ndarray

    def take(self, rows: slice) -> _Rows:
        return _Rows(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})


def _history(
    activities: pd.DataFrame,
    lead_ids: pd.Series,
    as_of_ns: np.ndarray,
    day_start_ns: np.ndarray,
    created: np.ndarray,
) -> dict[str, np.ndarray]:
    """Engagement, last activity and unsubscribe of each (lead, as_of) from the activities
    strictly before as_of: at the start of the day (``day_start_ns``) and within the day."""
    keys = pd.Index(pd.unique(lead_ids))
    act_code = keys.get_indexer(activities["lead_id"])
    known = act_code >= 0
    act_code = act_code[known]
    act_ns = _utc_ns(activities["occurred_at"])[known]
    types = activities["activity_type"]
    weight = types.map(TRUE_WEIGHTS).fillna(0.0).to_numpy(float)[known]
    unsub = (types == "unsubscribe").to_numpy(bool)[known]
    # a canonical order (lead, time, weight), so that sums ignore the input's row order
    order = np.lexsort((weight, act_ns, act_code))
    act_code, act_ns, weight, unsub = act_code[order], act_ns[order], weight[order], unsub[order]
    block_start = np.searchsorted(act_code, np.arange(len(keys)), side="left")
    block_end = np.searchsorted(act_code, np.arange(len(keys)), side="right")

    ent_code = keys.get_indexer(lead_ids)
    n = len(ent_code)
    sizes = (block_end - block_start)[ent_code]
    ent = np.repeat(np.arange(n), sizes)
    offsets = np.arange(len(ent)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    act = block_start[ent_code][ent] + offsets
    before = act_ns[act] < as_of_ns[ent]
    ent, act = ent[before], act[before]
    when, w, us = act_ns[act], weight[act], unsub[act]
    early = when < day_start_ns[ent]
    late = ~early
    day_end_ns = day_start_ns + SECONDS_PER_DAY * _NS_PER_SECOND
    seconds = when // _NS_PER_SECOND
    last_activity, last_before = created.copy(), created.copy()
    np.maximum.at(last_activity, ent[early], seconds[early])
    np.maximum.at(last_before, ent, seconds)
    return {
        "engagement": np.bincount(
            ent[early],
            weights=w[early] * _decay((day_start_ns[ent[early]] - when[early]) / _NS_PER_SECOND),
            minlength=n,
        ),
        "engagement_carry": np.bincount(
            ent[late],
            weights=w[late] * _decay((day_end_ns[ent[late]] - when[late]) / _NS_PER_SECOND),
            minlength=n,
        ),
        "last_activity": last_activity,
        "last_before": last_before,
        "unsubscribed": np.bincount(ent[early & us], minlength=n) > 0,
        "unsubscribed_before": np.bincount(ent[us], minlength=n) > 0,
    }


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
        return PathTraits(self.fit[rows], self.log_interest[rows], self.burst_left[rows])


def _bursts_at(burst_key: np.ndarray, created_day: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Burst days left at the start of ``day``, replayed from each lead's creation day."""
    left = np.zeros(len(day), dtype=np.int64)
    span = day - created_day
    for j in range(int(span.max(initial=0))):
        idx = np.flatnonzero(span > j)
        left[idx] = _advance_bursts(left[idx], burst_key[idx], created_day[idx] + j)
    return left


def _oracle_rows(
    truth: pd.DataFrame, activities: pd.DataFrame, entities: pd.DataFrame, horizon_days: int
) -> _Rows:
    """Hidden parameters and reconstructed state of every entity row."""
    absent = [column for column in _TRUTH_COLUMNS if column not in truth.columns]
    if absent:
        raise ValueError(f"truth lacks {absent}: regenerate the synthetic CRM")
    rows = truth.set_index("lead_id").reindex(entities["lead_id"])
    if rows["fit_logit"].isna().any():
        missing = entities["lead_id"][rows["fit_logit"].isna().to_numpy()].unique()[:5]
        raise ValueError(f"entities reference leads absent from truth: {list(missing)}")
    log_interest = (
        rows["log_interest"].to_numpy(float)
        if "log_interest" in rows
        else np.log(rows["interest"].to_numpy(float))
    )
    calendar_key = rows["calendar_key"].to_numpy(np.int64).view(np.uint64)
    if len(np.unique(calendar_key)) > 1:
        raise ValueError("truth mixes the calendars of different CRMs")
    industry = pd.Index(INDUSTRIES).get_indexer(rows["true_industry"])
    if (industry < 0).any():
        raise ValueError("truth has an unknown true_industry")
    created_ns = _utc_ns(rows["created_at"])
    as_of_ns = _utc_ns(entities["as_of"])
    if (as_of_ns < created_ns).any():
        raise ValueError("an entity's as_of is before its lead was created")
    created = created_ns // _NS_PER_SECOND
    begin = -(-as_of_ns // _NS_PER_SECOND)
    until = (as_of_ns + horizon_days * SECONDS_PER_DAY * _NS_PER_SECOND) // _NS_PER_SECOND + 1
    day = begin // SECONDS_PER_DAY
    history = _history(
        activities, entities["lead_id"], as_of_ns, day * SECONDS_PER_DAY * _NS_PER_SECOND, created
    )
    burst_key = rows["burst_key"].to_numpy(np.int64).view(np.uint64)
    lead_hash = pd.util.hash_array(entities["lead_id"].to_numpy(dtype=object))
    key = _mix64(lead_hash ^ _mix64(as_of_ns.astype(np.uint64)))
    return _Rows(
        created=created,
        fit=rows["fit_logit"].to_numpy(float),
        log_interest=log_interest,
        industry=industry,
        burst_key=burst_key,
        calendar_key=calendar_key,
        key=key,
        begin=begin,
        until=until,
        burst_left=_bursts_at(burst_key, created // SECONDS_PER_DAY, day),
        **history,
    )


def _path_salts(paths: int, seed: int) -> np.ndarray:
    salt = _mix64(np.full(paths, seed % 2**64, dtype=np.uint64) + _STREAM_PATH)
    salt += np.arange(paths, dtype=np.uint64) * _GOLDEN
    return _mix64(salt)


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
        path_keys = _mix64(salts + _STREAM_CAMPAIGN)  # the future owes nothing to the world's key
        path_starts, path_targets = _campaign_starts(days[None, :], path_keys[:, None])
        return cls(first_day, *_campaign_starts(days, calendar_key), path_starts, path_targets)


def _oracle_campaigns(
    rows: _Rows, r: np.ndarray, path: np.ndarray, day: np.ndarray, draws: _CampaignDraws
) -> np.ndarray:
    """The calendar factor (weekday and campaigns) of each unit (row ``r``, path ``path``)
    on its ``day``: campaigns that started before the row's as_of are the world's own (part
    of the state at as_of); later starts are the path's own draws."""
    mult = _weekday_factor(day)
    for back in range(CAMPAIGN_DAYS):
        start = day - back
        col = start - draws.first_day
        known = start * SECONDS_PER_DAY < rows.begin[r]
        starts = np.where(known, draws.known_starts[col], draws.path_starts[path, col])
        target = np.where(known, draws.known_targets[col], draws.path_targets[path, col])
        mult[starts & (target == rows.industry[r])] *= CAMPAIGN_MULTIPLIER
    return mult


def _oracle_chunk(
    rows: _Rows, paths: int, seed: int, traits: PathTraits | None = None
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
    units = _Units.of(rows.created[row_of], fit, log_interest, rows.key[row_of])
    units = replace(units, key=_mix64(units.key ^ salts[path_of]))
    state = _State.fresh(
        rows.engagement[row_of], rows.last_activity[row_of], rows.unsubscribed[row_of]
    )
    first = rows.begin // SECONDS_PER_DAY
    last = (rows.until - 1) // SECONDS_PER_DAY
    n_days = int((last - first).max()) + 1
    whole_days = int((last - first).min())  # days j < whole_days end inside every horizon
    campaigns = _CampaignDraws.of(
        int(first.min()) - CAMPAIGN_DAYS + 1, int(last.max()), rows.calendar_key[0], salts
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
        exogenous = _exogenous_rate(
            log_interest[at],
            rows.created[r],
            day,
            _oracle_campaigns(rows, r, path_of[at], day, campaigns),
            burst_left[at],
        )
        until = None if j < whole_days else np.minimum((day + 1) * SECONDS_PER_DAY, rows.until[r])
        begin = rows.begin[r] if j == 0 else None
        _, p_convert, p_close = _simulate_day(
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
        burst_left[at] = _advance_bursts(burst_left[at], units.key[at], day)
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
    rows = _oracle_rows(truth, activities, entities, horizon_days)
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
