"""Names of the features and concepts the feature code computes (one place, no logic)."""

from __future__ import annotations

from typing import Literal

FIT, ENGAGEMENT, MARKET, LIFECYCLE = "fit", "engagement", "market", "lifecycle"
Family = Literal["fit", "engagement", "market", "lifecycle"]

LEAD_AGE = "lead_age_days"
DAYS_SINCE_ANY = "days_since_last_activity"
DAYS_SINCE_HIGH_INTENT = "days_since_last_high_intent"
ENGAGEMENT_POINTS = "engagement_points"
DECAYED_TOTAL = "decay_all_activity"
ACTIVITY_CONCEPT, LEAD_AGE_CONCEPT = "activity", "lead_age"


def count_name(activity_type: str, window_days: int) -> str:
    return f"n_{activity_type}_{window_days}d"


def decay_name(activity_type: str) -> str:
    return f"decay_{activity_type}"


def recency_name(activity_type: str) -> str:
    return f"days_since_{activity_type}"
