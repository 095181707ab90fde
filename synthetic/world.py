"""The hidden world's parameters: personas, fit, interest, engagement, hazards and rates.

Nothing outside :mod:`leadscore.synthetic` (its generator and its oracle) and the bench's
bounds may rely on them; feature code never does. The generator's modules read each
parameter as ``world.NAME`` when they run, so that a bench run that changes one for a
block (``bench/oracle_gap.py --world NAME=VALUE``) reaches the generator and the oracle.
The arrays derived at import (``WEIGHT_BY_CODE``, the float32 mix) do not follow such a
change.
"""

from __future__ import annotations

import numpy as np

from leadscore.synthetic.vocabulary import ALL_TYPES, UNDECLARED_TYPE

PERSONAS = ("mid_market_saas", "enterprise_finance", "non_icp")
PERSONA_SHARE = np.array([0.20, 0.12, 0.68])

# Attribute mix per persona: rows follow PERSONAS, columns follow the vocabulary tuple.
# fmt: off
PERSONA_MIX: dict[str, np.ndarray] = {
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

# Additive fit-logit effect of each attribute value (same column order as VOCABULARY).
FIT_EFFECT: dict[str, np.ndarray] = {
    "industry": np.array([0.6, 0.6, 0.3, 0.0, -0.3, -0.5, -0.1, -0.6]),
    "country": np.array([0.5, 0.4, 0.4, 0.1, 0.2, -1.0, -0.9, -1.3]),
    "seniority": np.array([0.5, 0.7, 0.6, 0.2, -0.4, -2.2]),
    "department": np.array([0.3, 0.4, 0.0, 0.0, 0.3, 0.1, -0.4]),
    "company_size": np.array([-1.0, -0.4, 0.3, 0.5, 0.4, 0.3]),
    "lead_source": np.array([0.2, 0.0, 0.2, 0.6, 0.1, -0.3, -0.9, 0.4]),
}
FIT_INTERACTION = 0.6  # bonus for the two ICP attribute combinations (non-additive signal)
ICP_COMBINATIONS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("software", "fintech"), ("51-200", "201-1000")),  # mid-market SaaS
    (("fintech", "healthcare"), ("1001-5000", "5000+")),  # enterprise finance
)
"""The ideal customer profiles: (industries, company sizes) whose leads earn FIT_INTERACTION."""
FIT_OFFSET = -0.8  # puts ICP personas well above zero (~+1.6) and non-ICP below (~-2.1)
FIT_NOISE_SD = 0.6  # fit not explained by any observable attribute
# Share of missing values per attribute, like a real CRM.
NULL_SHARE: dict[str, float] = {
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
WEIGHT_BY_CODE = np.array([TRUE_WEIGHTS[name] for name in ALL_TYPES])

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
MIX_BASE = np.array([
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
MIX_SLOPE_E = np.array([-0.25, 0.0, -0.10, 0.55, 0.15, 0.25, 0.50, 0.45, 0.70, 0.85, -0.60, 0.0])
MIX_SLOPE_FIT = np.array([0.0, 0.05, 0.0, 0.15, 0.05, 0.10, 0.10, 0.15, 0.25, 0.25, -0.45, 0.0])
# the type draw runs in float32 (speed); the generator and the oracle share it
MIX_BASE32, MIX_SLOPE_E32, MIX_SLOPE_FIT32 = (
    a.astype(np.float32) for a in (MIX_BASE, MIX_SLOPE_E, MIX_SLOPE_FIT)
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
POST_CONVERT_MIX = {
    "email_open": 0.50,
    "email_click": 0.12,
    "page_view": 0.15,
    "meeting_booked": 0.15,
    "content_download": 0.08,
}
