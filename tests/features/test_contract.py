"""The data contract on entry: types, UTC, and a reason for every quarantined row."""

from __future__ import annotations

import pandas as pd
import pytest

from leadscore.features.config import ValidationConfig
from leadscore.features.contract import ContractError, data_end, prepare_activities, prepare_leads

LENIENT = ValidationConfig(max_bad_row_share=1.0)


def _raw_leads() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Id": [1, 2, 3, 3, 5, 6, 7, 8],
            "created_at": [
                "2026-01-01T10:00:00+02:00",
                "2026-01-02",
                "2026-01-03",
                "2026-01-03",
                "not a date",
                "2026-01-06",
                "2026-01-07",
                "2026-01-08",
            ],
            "status": ["Open", "converted", "lost", "lost", "open", "won?", "lost", "open"],
            "closed_at": [
                None,
                "2026-02-01",
                "2026-02-01",
                "2026-02-01",
                None,
                None,
                None,
                "2026-02-01",
            ],
        }
    )


def test_leads_are_typed_mapped_and_quarantined_with_reasons():
    checked = prepare_leads(
        _raw_leads(), source="crm.csv", column_mapping={"Id": "lead_id"}, validation=LENIENT
    )
    assert checked.rows["lead_id"].tolist() == ["1", "2"]
    assert checked.rows["status"].tolist() == ["open", "converted"]
    # +02:00 ends in UTC
    assert checked.rows["created_at"].iloc[0] == pd.Timestamp("2026-01-01T08:00", tz="UTC")
    reasons = dict(zip(checked.quarantine["row"], checked.quarantine["reason"], strict=True))
    assert reasons == {
        2: "lead_id is duplicated",
        3: "lead_id is duplicated",
        4: "created_at is not a timestamp: 'not a date'",
        5: "status is not one of ['open', 'converted', 'lost']",
        6: "closed lead has no valid closed_at",
        7: "open lead has a closed_at",
    }
    assert set(checked.quarantine["source"]) == {"crm.csv"}
    # nothing is lost: every input row is clean or quarantined
    assert len(checked.rows) + len(checked.quarantine) == len(_raw_leads())


def test_a_missing_required_column_names_the_source_and_column():
    with pytest.raises(ContractError, match=r"crm.csv: required column\(s\) \['status'\]"):
        prepare_leads(
            _raw_leads().drop(columns="status"), source="crm.csv", column_mapping={"Id": "lead_id"}
        )


def test_activities_for_unknown_leads_or_before_creation_are_quarantined():
    leads = prepare_leads(_raw_leads(), column_mapping={"Id": "lead_id"}, validation=LENIENT).rows
    raw = pd.DataFrame(
        {
            "lead_id": ["1", "1", "99", "2", None],
            "activity_type": ["email_open", "meeting_booked", "email_open", "email_open", "x"],
            "occurred_at": ["2026-01-05", "2025-12-01", "2026-01-05", "garbage", "2026-01-05"],
        }
    )
    checked = prepare_activities(raw, leads, validation=LENIENT)
    assert checked.rows.index.tolist() == [0]
    assert checked.quarantine["reason"].tolist() == [
        "activity before the lead was created",
        "activity for an unknown or quarantined lead",
        "occurred_at is not a timestamp: 'garbage'",
        "lead_id is empty",
    ]


def test_too_many_bad_rows_stop_the_run_naming_file_column_and_rows():
    with pytest.raises(ContractError) as error:
        prepare_leads(_raw_leads(), source="crm.csv", column_mapping={"Id": "lead_id"})
    message = str(error.value)
    assert "crm.csv: 6 of 8 rows (75%)" in message
    assert "column 'lead_id'" in message and "line 4: lead_id is duplicated" in message


def test_data_end_is_midnight_after_the_latest_timestamp():
    leads = prepare_leads(_raw_leads(), column_mapping={"Id": "lead_id"}, validation=LENIENT).rows
    assert data_end(leads, None) == pd.Timestamp("2026-02-02", tz="UTC")


def test_an_expectation_that_fails_to_run_stops_the_run_instead_of_passing_rows():
    """GX reports a metric that raised under the metric's id, not at the top level; a
    check that missed it would let every row through as clean."""
    import great_expectations as gx
    from great_expectations.expectations.row_conditions import Column

    from leadscore.features.validation import RowRule, _run_suite

    frame = pd.DataFrame({"a": [1.0, None]})
    broken = RowRule(
        gx.expectations.ExpectColumnValuesToNotBeNull(
            column="a", row_condition=Column("no_such_column") == "x"
        ),
        "a",
        "a is empty",
    )
    with pytest.raises(ContractError, match=r"src: validation of .* failed to run"):
        _run_suite(frame, "leads", [broken], "src")
