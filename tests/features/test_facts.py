"""A lead's facts at scoring (features/facts.py) on frames small enough to check by hand:
point in time, newest first, at most 20, compact JSON, display columns as written."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from leadscore.features.facts import (
    DISPLAY_LENGTHS,
    FACT_FRAME_COLUMNS,
    TIMELINE_LENGTH,
    display_columns,
    lead_facts,
)
from leadscore.features.pieces import TEXT
from leadscore.models import schema
from tests.conftest import ts

AS_OF = ts("2026-03-01")
DAY = pd.Timedelta(days=1)


def _leads() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "lead_id": ["L1", "L2", "L3"],
            "created_at": [ts("2025-06-01")] * 3,
            "status": ["open"] * 3,
            "closed_at": pd.Series([pd.NaT] * 3, dtype="datetime64[ns, UTC]"),
            "industry": ["software", None, 'Über "quoted"'],
            "employees": [120.0, np.nan, 7.5],
            "contact_name": ["Zoë Ångström", "  ", "x" * 300],
            "mail": ["zoe@example.com", None, "bo@example.de"],
        }
    )


def _activities() -> pd.DataFrame:
    rows = [
        ("L1", "email_open", AS_OF - 2 * DAY, np.nan),
        ("L1", "meeting_booked", AS_OF - 10 * DAY, np.nan),
        ("L1", "chat_started", AS_OF - 5 * DAY, 3.0),  # undeclared: named by its type
        ("L1", "webinar_signup", AS_OF + DAY, np.nan),  # the future: left out
        ("L1", "unsubscribe", AS_OF, np.nan),  # at the scoring time: left out too
        ("L9", "email_open", AS_OF - DAY, np.nan),  # not one of the leads
        ("L3", "webinar_signup", AS_OF - pd.Timedelta(seconds=1), 42.5),
    ]
    return pd.DataFrame(rows, columns=["lead_id", "activity_type", "occurred_at", "value"])


def _facts(small_config, **kwargs) -> pd.DataFrame:
    display = {"name": "contact_name", "email": "mail"}
    acts = kwargs.pop("activities", _activities())
    return lead_facts(_leads(), acts, AS_OF, small_config, display, **kwargs).set_index("lead_id")


def test_timeline_is_point_in_time_newest_first(small_config):
    facts = _facts(small_config)
    assert list(facts.columns) == list(FACT_FRAME_COLUMNS)
    assert json.loads(facts.loc["L1", "timeline"]) == [
        {"type": "email open", "at": "2026-02-27T00:00:00Z", "value": None},
        {"type": "chat started", "at": "2026-02-24T00:00:00Z", "value": 3},
        {"type": "meeting booked", "at": "2026-02-19T00:00:00Z", "value": None},
    ]
    assert facts.loc["L1", "last_activity"] == "email open"
    assert facts.loc["L1", "last_activity_at"] == "2026-02-27T00:00:00Z"
    # one second before the scoring time counts; nothing at or after it does
    assert facts.loc["L3", "last_activity_at"] == "2026-02-28T23:59:59Z"
    assert json.loads(facts.loc["L3", "timeline"])[0]["value"] == 42.5
    assert facts.loc["L2", "timeline"] == "[]" and pd.isna(facts.loc["L2", "last_activity"])


def test_the_scoring_time_decides_what_is_known(small_config):
    earlier = AS_OF - 3 * DAY  # the email of 2 days ago and the later ones are unknown
    facts = lead_facts(_leads(), _activities(), earlier, small_config).set_index("lead_id")
    types = [e["type"] for e in json.loads(facts.loc["L1", "timeline"])]
    assert types == ["chat started", "meeting booked"]
    assert facts.loc["L3", "timeline"] == "[]"
    # a naive scoring time is UTC, as everywhere in the data contract
    naive = lead_facts(_leads(), _activities(), earlier.tz_localize(None), small_config)
    pd.testing.assert_frame_equal(naive.set_index("lead_id"), facts)


def test_timeline_keeps_the_latest_twenty(small_config):
    n = 45
    acts = pd.DataFrame(
        {
            "lead_id": "L2",
            "activity_type": "email_open",
            "occurred_at": [AS_OF - (i + 1) * pd.Timedelta(hours=1) for i in range(n)][::-1],
            "value": np.arange(n, dtype=float)[::-1],
        }
    )
    events = json.loads(_facts(small_config, activities=acts).loc["L2", "timeline"])
    assert TIMELINE_LENGTH == schema.TIMELINE_LENGTH == 20 and len(events) == 20
    assert [e["value"] for e in events] == list(range(20))  # hours 1..20 before, newest first
    assert events[0]["at"] == "2026-02-28T23:00:00Z"
    short = _facts(small_config, activities=acts, limit=3).loc["L2", "timeline"]
    assert len(json.loads(short)) == 3


def test_attributes_are_compact_sorted_json_with_every_attribute(small_config):
    facts = _facts(small_config)
    expected = {"employees": 120, "industry": "software"}
    text = facts.loc["L1", "attributes"]
    assert json.loads(text) == expected
    assert text == json.dumps(expected, sort_keys=True, separators=(",", ":"))
    assert json.loads(facts.loc["L2", "attributes"]) == {"employees": None, "industry": None}
    third = facts.loc["L3", "attributes"]
    assert json.loads(third) == {"employees": 7.5, "industry": 'Über "quoted"'}
    assert third == json.dumps(
        json.loads(third), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )


def test_display_columns_are_text_as_written_cut_to_the_store_length(small_config):
    facts = _facts(small_config)
    assert (
        facts.loc["L1", "name"] == "Zoë Ångström" and facts.loc["L1", "email"] == "zoe@example.com"
    )
    assert facts.loc[["L2"], ["name", "email"]].isna().all().all()  # blank: null
    assert facts.loc["L3", "name"] == "x" * 255
    assert facts["company"].isna().all() and facts["record_id"].isna().all()  # not mapped
    for column, length in DISPLAY_LENGTHS.items():
        assert schema.field(column).length == length
    assert (*DISPLAY_LENGTHS, *schema.FACT_COLUMNS) == FACT_FRAME_COLUMNS
    assert tuple(DISPLAY_LENGTHS) == schema.DISPLAY_COLUMNS


def test_a_spilled_partitions_categorical_ids_and_no_log(small_config):
    leads = _leads()
    acts = _activities()
    acts = acts[acts["lead_id"] != "L9"]
    acts = acts.assign(lead_id=pd.Categorical(acts["lead_id"], categories=leads["lead_id"]))
    plain = lead_facts(leads, _activities(), AS_OF, small_config)
    pd.testing.assert_frame_equal(lead_facts(leads, acts, AS_OF, small_config), plain)
    flat = lead_facts(leads, None, AS_OF, small_config)
    assert flat["timeline"].eq("[]").all() and flat["last_activity"].isna().all()
    assert flat["attributes"].tolist() == plain["attributes"].tolist()
    # lead order is kept, whatever the activities' order
    shuffled = lead_facts(leads.iloc[::-1], _activities().iloc[::-1], AS_OF, small_config)
    assert shuffled["lead_id"].tolist() == ["L3", "L2", "L1"]
    assert shuffled["timeline"].tolist() == plain["timeline"].tolist()[::-1]


@pytest.mark.parametrize(
    "names",
    [
        ["Ann Lee", "Bo", None, "Zoë Ångström"],  # trimmed and short: kept as they are
        [" Ann ", "", None, "Bo\t", "\u00a0Cy"],  # blanks and empties: stripped, nulled
        ["x" * 300, "ok"],  # too long: cut
        ["ü" * 200, "ok"],  # 200 characters in 400 bytes: kept whole
    ],
)
def test_display_columns_equal_strip_blank_and_cut(names):
    """A clean column is kept as it is (checked on its bytes): the same text, and the
    same Arrow type, as stripping, blanking empties and cutting every value."""
    leads = pd.DataFrame({"full_name": pd.array(names, dtype=TEXT)})
    got = display_columns(leads, {"name": "full_name"})["name"]
    text = leads["full_name"].astype(TEXT).str.strip()
    want = text.mask(text == "").str.slice(0, DISPLAY_LENGTHS["name"])
    assert got.dtype == want.dtype
    assert got.astype(object).where(got.notna(), None).tolist() == (
        want.astype(object).where(want.notna(), None).tolist()
    )
    assert pa.array(got.array).type == pa.array(want.array).type
