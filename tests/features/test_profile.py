"""`leadscore init`'s profile of an export: each column's role, on small frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.features.profile import (
    id_guess,
    order_guess,
    outcome_guess,
    period_columns,
    plain_name,
    profile_leads,
)
from leadscore.features.profile_dates import date_guess
from leadscore.features.profile_tables import (
    converted_flags,
    key_guess,
    profile_activities,
    profile_outcomes,
    starting_type,
)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["13/02/2025", "01/03/2025"], "%d/%m/%Y"),
        (["02/13/2025", "03/01/2025"], "%m/%d/%Y"),
        (["01-02-2018 19:58", "20-10-2017 08:05"], "%d-%m-%Y %H:%M"),
        (["01.02.18", "03.04.19"], "%d.%m.%y"),  # no value tells: '.' reads day-first
        (["2025-01-02", "2025-02-03T10:00:00Z"], None),
        (["2025/01/31", "2025/02/03 10:00"], None),
        (["Jan 5, 2024", "31 March 2024"], None),
    ],
)
def test_date_formats_are_told_from_the_values(values: list[str], expected: str | None):
    guess = date_guess(pd.Series(values))
    assert guess is not None and guess.date_format == expected


def test_an_undecided_order_says_it_assumed_and_mixed_orders_get_no_format():
    assert "assumed day-first" in date_guess(pd.Series(["01.02.2018"])).why
    mixed = date_guess(pd.Series(["13/02/2025", "02/13/2025"]))
    assert mixed.date_format is None and "mixes" in mixed.why
    assert date_guess(pd.Series(["12", "13.5"])) is None
    assert date_guess(pd.Series(["may", "jun"])) is None  # a month name alone is a category
    assert date_guess(pd.Series([1, 2])) is None


def test_the_id_is_unique_and_never_empty_and_named_like_one_when_several_are():
    frame = pd.DataFrame(
        {"email_hash": ["a", "b", "c"], "Lead ID": ["7", "8", "9"], "x": ["a", "a", "b"]}
    )
    assert id_guess(frame)[0] == "Lead ID"
    assert id_guess(frame.assign(**{"Lead ID": ["7", "7", "9"]}))[0] == "email_hash"
    none, why = id_guess(pd.DataFrame({"x": ["a", "a"], "y": [1.0, 2.0]}))
    assert none is None and "rows are numbered" in why


@pytest.mark.parametrize(
    ("column", "values", "converted", "lost", "open_"),
    [
        ("Converted", [1, 0, 0, 1], (1,), (0,), ()),
        ("is_won", [True, False, False], (True,), (False,), ()),
        ("y", ["YES", "no", "no"], ("YES",), ("no",), ()),
        ("Stage", ["Closed Won", "Closed Lost", "Working", "New"], ("Closed Won",),
         ("Closed Lost",), ("Working", "New")),
    ],
)  # fmt: skip
def test_the_outcome_column_and_its_values(column, values, converted, lost, open_):
    frame = pd.DataFrame({"flag": ["yes", "no"] * 2, column: values + values[: 4 - len(values)]})
    outcome, why = outcome_guess(frame)
    assert outcome is not None and outcome.column == column, why
    assert (outcome.converted, outcome.lost, outcome.open) == (converted, lost, open_)


def test_without_an_outcome_name_the_last_yes_no_column_is_taken_and_flagged():
    frame = pd.DataFrame({"a": ["yes", "no"], "subscribed": ["no", "yes"], "n": [1, 2]})
    outcome, why = outcome_guess(frame)
    assert outcome.column == "subscribed" and "check it" in why
    assert outcome_guess(pd.DataFrame({"n": [1, 2, 3]}))[0] is None


def test_attributes_numeric_categorical_and_what_is_left_out_with_why():
    n = 300
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "Lead Number": np.arange(n),
            "Converted": rng.integers(0, 2, n),
            "TotalVisits": rng.integers(0, 30, n),
            "Lead Source": rng.choice(["Google", "Olark Chat", "Direct"], n),
            "Notes": [f"called {i} times about the course" for i in range(n)],
            "hash": [f"{i:032x}" for i in range(n)],
            "Magazine": "No",
            "empty": [None] * (n - 1) + ["x"],
        }
    )
    p = profile_leads(frame)
    assert p.id_column == "Lead Number"
    assert p.outcome is not None and p.outcome.column == "Converted"
    assert p.numeric == ["TotalVisits"] and p.categorical == ["Lead Source"]
    assert p.left_out["Notes"].startswith("free text")
    assert p.left_out["hash"].startswith("an identifier")
    assert p.left_out["Magazine"] == "one value only"
    assert p.left_out["empty"] == "100% empty"
    assert p.rename == {
        "Lead Number": "lead_id",
        "Lead Source": "lead_source",
    }
    assert plain_name("emp.var.rate") == "emp_var_rate" and plain_name("2nd") == "c_2nd"


def test_the_split_by_dates_rows_in_time_order_or_at_random():
    assert order_guess(pd.DataFrame({"a": [1]}), "created") == (
        "time",
        "out of time by created (the newest leads validate; training ends one horizon before them)",
    )
    months = pd.DataFrame({"month": ["may"] * 50 + ["jun"] * 50 + ["may"] * 50})
    assert order_guess(months, None)[0] == "rows" and period_columns(months) == ["month"]
    falling = pd.DataFrame({"Lead Number": np.arange(100, 0, -1)})
    order, why = order_guess(falling, None)
    assert order == "none" and "sort the file" in why
    assert order_guess(pd.DataFrame({"seq": np.arange(100)}), None)[0] == "rows"
    shuffled = pd.DataFrame({"month": ["may", "jun"] * 50})
    assert order_guess(shuffled, None)[0] == "none"


def test_dates_become_created_at_and_closed_at_with_the_format():
    frame = pd.DataFrame(
        {
            "Id": ["a", "b", "c"],
            "Created Date": ["13/01/2024", "02/02/2024", "03/03/2024"],
            "Close Date": ["20/01/2024", None, "04/04/2024"],
            "status": ["won", "open", "lost"],
        }
    )
    p = profile_leads(frame)
    assert (p.created_at, p.closed_at, p.date_format) == ("Created Date", "Close Date", "%d/%m/%Y")
    assert p.outcome.converted == ("won",) and p.outcome.open == ("open",)
    assert p.order == "time"


def test_activity_types_get_starting_points_and_unknown_ones_one():
    demo = starting_type("Demo Request", 3)
    assert (demo.points, demo.high_intent, demo.family) == (15, True, "sales")
    assert starting_type("Unsubscribed", 1).points == -5
    assert starting_type("Email Opened", 1).points == 1
    assert starting_type("Form Submitted", 1).points == 6
    odd = starting_type("Olark Chat Conversation", 1)
    assert (odd.points, odd.known, odd.label) == (1, False, "olark chat conversation")


def test_the_activity_log_columns_are_found_by_the_export_ids():
    log = pd.DataFrame(
        {
            "Contact": ["0042", "43", "42", "44"],
            "Event": ["Demo Request", "Email Open", "Email Open", "Webinar"],
            "When": ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"],
            "amount": [1.0, 2.0, 3.0, 4.0],
        }
    )
    ids = pd.Series(["42", "43", "44"])
    assert key_guess(log, ids) == ("Contact", "100% of its values are lead ids of the export")
    p = profile_activities(log, ids)
    assert (p.lead_key, p.activity_type, p.occurred_at, p.value) == (
        "Contact",
        "Event",
        "When",
        "amount",
    )
    assert [(t.name, t.points, t.rows) for t in p.types] == [
        ("Email Open", 1, 2),
        ("Demo Request", 15, 1),
        ("Webinar", 8, 1),
    ]


def test_the_outcomes_table_key_date_and_status():
    deals = pd.DataFrame(
        {
            "mql_id": ["a", "b", "b"],
            "won_date": ["26-02-2018 19:58", "08-05-2018 20:17", "09-05-2018 10:00"],
            "has_company": [True, False, True],
        }
    )
    p = profile_outcomes(deals, pd.Series(["a", "b", "c"]))
    assert (p.key, p.closed_at, p.date_format) == ("mql_id", "won_date", "%d-%m-%Y %H:%M")
    assert p.status is None  # every row a conversion: has_company is not a status
    assert p.duplicates == "first"
    staged = deals.assign(stage=["Won", "Lost", "Won"]).drop_duplicates("mql_id")
    status = profile_outcomes(staged, pd.Series(["a", "b"])).status
    assert status is not None and (status.converted, status.lost) == (("Won",), ("Lost",))


def test_converted_flags_compare_values_as_the_reader_does():
    outcome = outcome_guess(pd.DataFrame({"Converted": [1.0, 0.0, None]}))[0]
    closed, converted = converted_flags(pd.DataFrame({"Converted": [1.0, 0.0, None]}), outcome)
    assert closed.tolist() == [True, True, False]
    assert converted.tolist() == [True, False, False]
