"""Outcome values of any type: a 0/1 column, the same as floats, booleans, yes/no text."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytest
import yaml

from leadscore.features.config import ValidationConfig
from leadscore.features.outcome_values import outcome_key, outcome_lookup
from leadscore.features.reader import ContractReader, map_outcome
from leadscore.pipelines.settings import OutcomeMapping

NOW = pd.Timestamp("2026-06-01", tz="UTC")


@dataclass(frozen=True)
class Outcome:
    column: str = "Converted"
    converted: list[object] = field(default_factory=lambda: [1])
    lost: list[object] = field(default_factory=lambda: [0])
    open: list[object] = field(default_factory=list)


def _mapped(values: list[object], dtype: object = None, **lists: list[object]) -> list[object]:
    out = map_outcome(pd.Series(values, dtype=dtype), Outcome(**lists))
    return [None if pd.isna(v) else v for v in out]


def test_keys_unify_what_a_user_means_by_one_value():
    ones = [1, 1.0, "1", " 1.0 ", True, np.int64(1), np.float64(1.0), np.bool_(True), "Yes"]
    assert {outcome_key(v) for v in ones} == {"1"}
    assert {outcome_key(v) for v in [0, 0.0, "0", False, "no", "OFF", np.bool_(False)]} == {"0"}
    assert outcome_key(" Closed Won ") == "closed won"
    assert outcome_key(2.5) == outcome_key("2.50") == "2.5"
    assert outcome_key("nan") == "nan" and outcome_key("inf") == "inf"  # text, not numbers
    assert outcome_key(float("nan")) is None and outcome_key("  ") is None


def test_an_integer_column_maps_with_integers_and_keeps_an_unlisted_value():
    assert _mapped([1, 0, 0, 2]) == ["converted", "lost", "lost", "2"]


def test_a_float_column_with_blanks_maps_with_integers():
    # a 0/1 column read from a CSV with blanks: 1.0, 0.0 and NaN
    assert _mapped([1.0, np.nan, 0.0, 1.0]) == ["converted", None, "lost", "converted"]


def test_a_boolean_column_maps_with_yaml_booleans_and_numbers():
    column = [True, False, None]
    lists = yaml.safe_load("{converted: [yes], lost: [no]}")  # YAML 1.1: yes/no are bools
    assert lists == {"converted": [True], "lost": [False]}
    assert _mapped(column, "boolean", **lists) == ["converted", "lost", None]
    assert _mapped(column, "boolean") == ["converted", "lost", None]  # converted: [1]
    assert _mapped([True, False], bool) == ["converted", "lost"]


def test_a_text_column_maps_regardless_of_case_and_type_of_the_listed_value():
    column = ["Yes", "no", "YES ", "maybe", ""]
    expected = ["converted", "lost", "converted", "maybe", ""]
    assert _mapped(column, converted=[True], lost=[False]) == expected
    assert _mapped(column, converted=["yes"], lost=["No"]) == expected
    stages = ["Closed Won", "closed lost", "Working", "1"]
    lists = {"converted": ["closed won"], "lost": ["Closed Lost"], "open": ["working"]}
    assert _mapped(stages, **lists) == ["converted", "lost", "open", "1"]


def test_the_reader_quarantines_an_unlisted_value_naming_its_file_row_column_and_value():
    lenient = ValidationConfig(max_bad_row_share=1.0)
    reader = ContractReader(
        outcome=Outcome(), validation=lenient, leads_source="leads.csv", flat=True
    )
    raw = pd.DataFrame({"lead_id": ["a", "b", "c", "d"], "Converted": [1.0, 0.0, 2.0, np.nan]})
    checked = reader.whole_leads(raw, NOW)
    assert checked.rows["status"].tolist() == ["converted", "lost"]
    assert checked.quarantine[["source", "row", "reason"]].to_numpy().tolist() == [
        [
            "leads.csv",
            2,
            "Converted is '2.0': not listed under data.outcome (converted [1], lost [0], open [])",
        ],
        ["leads.csv", 3, "status is empty"],
    ]


def test_settings_accept_any_type_and_refuse_one_value_in_two_lists():
    mapping = OutcomeMapping.model_validate(
        yaml.safe_load("{column: Converted, converted: [1, yes], lost: [0.0], open: ['2']}")
    )
    assert mapping.converted == [1, True] and mapping.lost == [0.0] and mapping.open == ["2"]
    assert isinstance(mapping.converted[0], int) and not isinstance(mapping.converted[0], bool)
    with pytest.raises(ValueError, match=r"'yes' \(converted\) and 1 \(lost\) are the same value"):
        OutcomeMapping(column="y", converted=["yes"], lost=[1])
    with pytest.raises(ValueError, match="a blank value is listed as lost"):
        outcome_lookup({"converted": [1], "lost": [" "]})
