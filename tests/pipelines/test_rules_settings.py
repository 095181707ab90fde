"""``rules.numeric`` in a config file: refused with the attribute named, or loaded as
written; the shipped configs load unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from leadscore.pipelines.settings import SettingsError, load_settings
from tests.conftest import ROOT


def _config(tmp_path: Path, numeric: object) -> Path:
    raw = yaml.safe_load((ROOT / "leadscore.yaml").read_text())
    raw["rules"]["numeric"] = numeric
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_overlapping_ranges_are_refused_naming_the_attribute(tmp_path: Path):
    bins = [{"min": 51, "max": 201, "points": 8}, {"min": 200, "points": 10}]
    with pytest.raises(SettingsError) as refused:
        load_settings(_config(tmp_path, {"employees": bins}))
    assert "rules.numeric.employees: Value error, ranges overlap: [51, 201) and [200, inf)" in str(
        refused.value
    )


@pytest.mark.parametrize("attribute", ["TotalVisits", "industry"])
def test_an_attribute_not_declared_numeric_is_refused(tmp_path: Path, attribute: str):
    with pytest.raises(SettingsError) as refused:
        load_settings(_config(tmp_path, {attribute: [{"min": 5, "points": 10}]}))
    assert (
        "rules.numeric names attributes that are not declared under "
        f"features.attributes.numeric: ['{attribute}']"
    ) in str(refused.value)


def test_a_numeric_rule_loads_as_written(tmp_path: Path):
    numeric = {"employees": {"bins": [{"min": 51, "max": 201, "points": 8}], "missing": -2}}
    rule = load_settings(_config(tmp_path, numeric)).rules.numeric["employees"]
    assert (rule.bins[0].min, rule.bins[0].max, rule.bins[0].points) == (51, 201, 8)
    assert rule.missing == -2


def test_the_shipped_configs_declare_no_numeric_points():
    assert load_settings(ROOT / "leadscore.yaml").rules.numeric == {}
    assert load_settings(ROOT / "examples" / "bank-marketing.yaml").rules.numeric == {}
