"""Account features (data.joins), point in time: worked by hand at two snapshot times,
and a future contact or activity must never leak into them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.features.accounts import AccountHistory
from leadscore.features.builder import AS_OF, build_features
from leadscore.features.registry import build_registry
from tests.conftest import ts

DAY = pd.Timedelta(days=1)
D0 = ts("2026-01-01")
T1, T2 = D0 + 20 * DAY, D0 + 40 * DAY


def _leads(extra: list[tuple] = ()) -> pd.DataFrame:
    rows = [
        ("L1", D0, "A"),
        ("L2", D0 + 10 * DAY, "A"),
        ("L3", D0 + 30 * DAY, "A"),  # created between T1 and T2
        ("L4", D0, "0042"),
        ("L5", D0 + 5 * DAY, "42"),  # '0042' == '42', as lead ids compare
        ("L6", D0, None),  # no account
        *extra,
    ]
    frame = pd.DataFrame(rows, columns=["lead_id", "created_at", "account_id"])
    frame["created_at"] = frame["created_at"].astype("datetime64[ns, UTC]")
    return frame.assign(
        status="open", closed_at=pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns, UTC]")
    )


def _activities(extra: list[tuple] = ()) -> pd.DataFrame:
    rows = [
        ("L1", "email_open", D0 + 1 * DAY),
        ("L1", "email_open", D0 + 2 * DAY),
        ("L2", "meeting_booked", D0 + 12 * DAY),
        ("L2", "email_open", T1),  # at T1 exactly: not strictly before, never counts at T1
        ("L5", "email_open", D0 + 6 * DAY),
        *extra,
    ]
    frame = pd.DataFrame(rows, columns=["lead_id", "activity_type", "occurred_at"])
    frame["occurred_at"] = frame["occurred_at"].astype("datetime64[ns, UTC]")
    return frame


def _entities(*pairs: tuple[str, pd.Timestamp]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "lead_id": [p[0] for p in pairs],
            AS_OF: pd.Series([p[1] for p in pairs], dtype="datetime64[ns, UTC]"),
        }
    )


def _features(small_config, leads=None, activities=None) -> pd.DataFrame:
    leads = _leads() if leads is None else leads
    activities = _activities() if activities is None else activities
    accounts = AccountHistory.of(leads, activities, {"account": "account_id"}, 10)
    entities = _entities(("L1", T1), ("L1", T2), ("L2", T1), ("L4", T1), ("L6", T1))
    return build_features(leads, activities, entities, small_config, accounts=accounts)


def test_account_features_by_hand_at_two_times(small_config):
    f = _features(small_config)
    decay = lambda days: 2.0 ** (-days / 10)  # noqa: E731 (half-life 10 days)
    # L1 at T1: L2 is the other contact (L3 is created after T1); its meeting at day 12
    assert f.loc[0, "account_contacts"] == 1
    assert f.loc[0, "account_engagement"] == pytest.approx(decay(8))
    # L1 at T2: L2 and L3; L2's meeting and its email at day 20 (before T2)
    assert f.loc[1, "account_contacts"] == 2
    assert f.loc[1, "account_engagement"] == pytest.approx(decay(28) + decay(20))
    # L2 at T1: L1's two emails; never its own activity
    assert f.loc[2, "account_contacts"] == 1
    assert f.loc[2, "account_engagement"] == pytest.approx(decay(19) + decay(18))
    # L4 ('0042') and L5 ('42') are one account
    assert f.loc[3, "account_contacts"] == 1
    assert f.loc[3, "account_engagement"] == pytest.approx(decay(14))
    # no account: unknown, not zero
    assert np.isnan(f.loc[4, "account_contacts"]) and np.isnan(f.loc[4, "account_engagement"])


def test_a_future_contact_or_activity_never_leaks_into_an_account_feature(small_config):
    before = _features(small_config)
    later = D0 + 25 * DAY  # after T1, before T2
    leads = _leads([("L7", later, "A")])
    activities = _activities([("L7", "meeting_booked", later), ("L2", "meeting_booked", T1 + DAY)])
    after = _features(small_config, leads, activities)
    at_t1 = [0, 2, 3, 4]
    columns = ["account_contacts", "account_engagement"]
    pd.testing.assert_frame_equal(before.loc[at_t1, columns], after.loc[at_t1, columns])
    # at T2 the new contact and both new activities are in the past: they count
    assert after.loc[1, "account_contacts"] == before.loc[1, "account_contacts"] + 1
    assert after.loc[1, "account_engagement"] > before.loc[1, "account_engagement"]


def test_the_registry_declares_the_account_features_last_with_reasons(small_config):
    registry = build_registry(small_config, groups=["account"])
    assert registry.names[-2:] == ["account_contacts", "account_engagement"]
    spec = registry["account_contacts"]
    assert spec.render({"account_contacts": 3.0}) == "other contacts at this account: 3"
    assert spec.render({"account_contacts": float("nan")}) == (
        "other contacts at the lead's account, created before this moment: unknown"
    )  # a lead with no account
    engagement = registry["account_engagement"]
    assert engagement.render({"account_engagement": 0.25}) == (
        "activity of other contacts at this account: 0.2 (recency-weighted)"
    )
    flat = build_registry(small_config, behaviour=False, groups=["account"])
    assert flat.names[-1] == "account_contacts" and "account_engagement" not in flat.names
    assert build_registry(small_config).names == registry.names[:-2]


def test_without_dates_every_other_contact_counts(small_config):
    leads = _leads().assign(
        created_at=pd.Series(pd.NaT, index=range(6), dtype="datetime64[ns, UTC]")
    )
    accounts = AccountHistory.of(leads, None, {"account": "account_id"}, 10)
    entities = _entities(("L1", pd.NaT), ("L1", T1))  # training (no time) and scoring
    got = accounts.features(entities, None)
    assert list(got) == ["account_contacts"]
    assert got["account_contacts"].tolist() == [2.0, 2.0]
