"""Point-in-time features on frames small enough to check by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.features.builder import build_features, entities_at
from leadscore.features.registry import build_registry
from tests.conftest import ts

AS_OF = ts("2026-03-01")


def _leads() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "lead_id": ["L1", "L2"],
            "created_at": [ts("2026-01-01"), ts("2026-02-20")],
            "status": ["open", "open"],
            "closed_at": pd.Series([pd.NaT, pd.NaT], dtype="datetime64[ns, UTC]"),
            "industry": ["software", None],
            "employees": [120.0, np.nan],
        }
    )


def _activities() -> pd.DataFrame:
    day = pd.Timedelta(days=1)
    rows = [
        ("L1", "email_open", AS_OF - 2 * day),
        ("L1", "email_open", AS_OF - 20 * day),
        ("L1", "meeting_booked", AS_OF - 10 * day),
        ("L1", "chat_started", AS_OF - 5 * day),  # undeclared -> "other"
        ("L1", "webinar_signup", AS_OF + day),  # the future: must not count
        ("L1", "unsubscribe", AS_OF),  # at T exactly: not strictly before, must not count
    ]
    return pd.DataFrame(rows, columns=["lead_id", "activity_type", "occurred_at"])


def _features(small_config, activities=None) -> pd.DataFrame:
    leads = _leads()
    acts = _activities() if activities is None else activities
    return build_features(leads, acts, entities_at(leads, AS_OF), small_config).set_index("lead_id")


def test_window_counts_by_hand(small_config):
    f = _features(small_config)
    assert f.loc["L1", "n_email_open_7d"] == 1
    assert f.loc["L1", "n_email_open_30d"] == 2
    assert f.loc["L1", "n_meeting_booked_7d"] == 0
    assert f.loc["L1", "n_meeting_booked_30d"] == 1
    assert f.loc["L1", "n_other_7d"] == 1
    assert f.loc["L1", "n_webinar_signup_30d"] == 0
    assert f.loc["L1", "n_unsubscribe_30d"] == 0


def test_decayed_sums_by_hand(small_config):
    f = _features(small_config)
    # half-life 10 days: ages 2 and 20 days -> 2^-0.2 + 2^-2
    assert f.loc["L1", "decay_email_open"] == pytest.approx(2**-0.2 + 0.25, abs=1e-12)
    assert f.loc["L1", "decay_meeting_booked"] == pytest.approx(0.5, abs=1e-12)
    assert f.loc["L1", "decay_webinar_signup"] == 0
    # engagement points: 1 x email decay + 10 x meeting decay (+ 0 for other)
    assert f.loc["L1", "engagement_points"] == pytest.approx(2**-0.2 + 0.25 + 5.0, abs=1e-12)


def test_recency_and_lead_age(small_config):
    f = _features(small_config)
    assert f.loc["L1", "lead_age_days"] == 59  # Jan 1 -> Mar 1
    assert f.loc["L1", "days_since_email_open"] == 2
    assert f.loc["L1", "days_since_last_activity"] == 2
    assert f.loc["L1", "days_since_last_high_intent"] == 10
    # never happened -> longer ago than anything real, whatever the lead's age (not the
    # age: a new lead's "never" read as "just now"), and not a missing value
    never = small_config.never_days
    assert f.loc["L1", "days_since_webinar_signup"] == never
    assert f.loc["L2", "lead_age_days"] == 9 and f.loc["L2", "decay_all_activity"] == 0
    assert f.loc["L2", "days_since_last_activity"] == never
    assert f.loc["L2", "days_since_last_high_intent"] == never
    assert f.loc["L2", "days_since_email_open"] == f.loc["L1", "days_since_webinar_signup"]


def test_attributes_pass_through(small_config):
    f = _features(small_config)
    assert f.loc["L1", "industry"] == "software"
    assert f.loc["L1", "employees"] == 120.0
    assert pd.isna(f.loc["L2", "industry"])
    assert np.isnan(f.loc["L2", "employees"])


def test_columns_follow_the_registry(small_config):
    f = _features(small_config).reset_index()
    registry = build_registry(small_config)
    assert list(f.columns) == ["lead_id", "as_of", *registry.names]


def test_moving_activities_after_t_changes_no_feature(small_config):
    """Leakage guard: whatever happens at or after T is invisible at T."""
    base = _features(small_config)
    acts = _activities()
    rng = np.random.default_rng(0)
    future = pd.DataFrame(
        {
            "lead_id": rng.choice(["L1", "L2"], 200),
            "activity_type": rng.choice(["meeting_booked", "webinar_signup", "x"], 200),
            "occurred_at": AS_OF + pd.to_timedelta(rng.integers(0, 10**6, 200), unit="s"),
        }
    )
    shifted = acts.copy()
    late = shifted["occurred_at"] >= AS_OF
    shifted.loc[late, "occurred_at"] += pd.Timedelta(days=365)
    for variant in (pd.concat([acts, future]), shifted, acts[~late]):
        pd.testing.assert_frame_equal(_features(small_config, variant), base)


def test_moving_an_activity_before_t_does_change_features(small_config):
    """The guard above would pass vacuously if features ignored activities; they do not."""
    base = _features(small_config)
    acts = _activities()
    acts.loc[acts["activity_type"] == "webinar_signup", "occurred_at"] = AS_OF - pd.Timedelta(
        days=3
    )
    moved = _features(small_config, acts)
    assert moved.loc["L1", "n_webinar_signup_7d"] == 1
    assert base.loc["L1", "n_webinar_signup_7d"] == 0


def test_inputs_are_not_modified(small_config):
    leads, acts = _leads(), _activities()
    before = (leads.copy(), acts.copy())
    build_features(leads, acts, entities_at(leads, AS_OF), small_config)
    pd.testing.assert_frame_equal(leads, before[0])
    pd.testing.assert_frame_equal(acts, before[1])


def test_snapshot_rows_each_see_their_own_past(small_config):
    """Two entity rows of one lead at different times get different, correct features."""
    leads = _leads()
    entities = pd.DataFrame(
        {
            "lead_id": ["L1", "L1"],
            "as_of": [AS_OF - pd.Timedelta(days=15), AS_OF],
        }
    ).astype({"as_of": "datetime64[ns, UTC]"})
    f = build_features(leads, _activities(), entities, small_config)
    assert f["n_email_open_30d"].tolist() == [1, 2]
    assert f["n_meeting_booked_30d"].tolist() == [0, 1]
    assert f["lead_age_days"].tolist() == [44, 59]


def test_reason_templates_render_the_leads_own_values(small_config):
    f = _features(small_config).reset_index()
    registry = build_registry(small_config)
    row = f.iloc[0].to_dict()
    assert registry["decay_meeting_booked"].render(row) == "meeting booked 10 days ago"
    assert registry["days_since_email_open"].render({**row, "days_since_email_open": 1.2}) == (
        "last email open 1 day ago"
    )
    assert registry["decay_webinar_signup"].render(row) == "no webinar sign-up yet"
    assert registry["days_since_last_activity"].render(row) == "no activity for 2 days"
    quiet = f.iloc[1].to_dict()  # L2: no activity at all
    assert registry["days_since_last_activity"].render(quiet) == (
        "no activity since the lead was created"
    )
    assert registry["days_since_last_high_intent"].render(quiet) == "no high-intent activity yet"
    assert registry["days_since_webinar_signup"].render(row) == "no webinar sign-up yet"
    tiny_minus = {**row, "engagement_points": -0.0004}  # an unsubscribe long ago
    assert registry["engagement_points"].render(tiny_minus).startswith("engagement score 0 ")
    assert registry["industry"].render(row) == "industry is software"
