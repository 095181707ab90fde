"""The synthetic CRM's observable vocabulary: what its exports can contain.

The activity types (part of the public data contract), the attribute values a lead can
carry, the company-size buckets and the sales reps. Nothing here is hidden: a feature
builder may rely on all of it.
"""

from __future__ import annotations

import pandas as pd

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

ALL_TYPES: tuple[str, ...] = (*ACTIVITY_TYPES, UNDECLARED_TYPE)
"""Every type the generator emits: the declared ones, then the undeclared one."""
TYPE_CODE: dict[str, int] = {name: i for i, name in enumerate(ALL_TYPES)}
"""Each type's code: its index in ``ALL_TYPES`` (the order of the world's per-type arrays)."""

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

VOCABULARY: dict[str, tuple[str, ...]] = {
    "industry": INDUSTRIES,
    "country": COUNTRIES,
    "seniority": SENIORITIES,
    "department": DEPARTMENTS,
    "company_size": COMPANY_SIZES,
    "lead_source": LEAD_SOURCES,
}
"""Each categorical attribute's values, in the order of its codes."""

# Employee bounds per company-size bucket (log-uniform inside), and the business segment.
SIZE_BOUNDS: tuple[tuple[float, float], ...] = (
    (1, 10), (11, 50), (51, 200), (201, 1000), (1001, 5000), (5001, 60_000),
)  # fmt: skip
SIZE_SEGMENT = ("smb", "smb", "mid_market", "mid_market", "enterprise", "enterprise")

# Sales reps, assigned by segment (enterprise reps, mid-market reps, smb reps).
OWNERS_BY_SEGMENT: dict[str, tuple[str, ...]] = {
    "enterprise": ("Alice Moreau", "Bashir Okafor", "Chen Wei"),
    "mid_market": ("Dana Kowalski", "Elif Yilmaz", "Felix Brandt", "Grace Mensah"),
    "smb": ("Hugo Silva", "Ines Duarte", "Jonas Berg", "Kiran Rao", "Lena Fischer"),
}
