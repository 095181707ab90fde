"""The `leadscore` command as a user runs it, and the settings loader."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from leadscore.pipelines.settings import SettingsError, load_settings
from tests.conftest import ROOT

LEADSCORE = Path(sys.executable).with_name("leadscore")


def _cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "LEADSCORE_CONFIG": ""}
    return subprocess.run(
        [str(LEADSCORE), *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=300
    )


def test_help_lists_the_commands():
    result = _cli("--help")
    assert result.returncode == 0
    for command in ("generate", "train", "score", "demo"):
        assert command in result.stdout


def test_generate_writes_the_contract_tables(tmp_path: Path):
    result = _cli("generate", "--leads", "300", "--seed", "5", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    leads = pd.read_parquet(tmp_path / "leads.parquet")
    activities = pd.read_parquet(tmp_path / "activities.parquet")
    assert len(leads) == 300
    assert set(activities["lead_id"]) <= set(leads["lead_id"])
    assert (tmp_path / "truth.parquet").is_file()


def test_a_bad_config_exits_2_naming_the_file_and_key(tmp_path: Path):
    raw = yaml.safe_load((ROOT / "leadscore.yaml").read_text())
    raw["snapshots"]["horizon_dayz"] = 30
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(raw))
    result = _cli("train", "--config", str(bad))
    assert result.returncode == 2
    assert "bad.yaml" in result.stderr and "horizon_dayz" in result.stderr


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path):
    (tmp_path / "leadscore.yaml").write_text((ROOT / "leadscore.yaml").read_text())
    settings = load_settings(tmp_path / "leadscore.yaml")
    assert settings.data.leads.path == tmp_path / "data" / "synthetic" / "leads.parquet"
    assert settings.store.url == f"sqlite:///{tmp_path / 'data' / 'scores.db'}"
    assert settings.tracking.tracking_uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert settings.snapshots.horizon_days == 90


def test_rules_window_must_be_a_feature_window(tmp_path: Path):
    raw = yaml.safe_load((ROOT / "leadscore.yaml").read_text())
    raw["rules"]["activity_window_days"] = 45
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(SettingsError, match="activity_window_days"):
        load_settings(tmp_path / "c.yaml")


@pytest.mark.slow
def test_train_tells_people_each_target_and_ends_with_the_json_line(tmp_path: Path):
    """`leadscore train` as a user runs it: a line per quality target on stderr (with its
    interval and verdict), and the JSON line last on stdout carrying the same targets."""
    raw = yaml.safe_load((ROOT / "leadscore.yaml").read_text())
    raw["snapshots"].update(min_leads=300, min_conversions=30)  # a small CRM on purpose
    config = tmp_path / "leadscore.yaml"
    config.write_text(yaml.safe_dump(raw))
    out = tmp_path / "data" / "synthetic"
    assert _cli("generate", "--leads", "1500", "--seed", "8", "--out", str(out)).returncode == 0

    result = _cli("train", "--config", str(config), cwd=tmp_path)

    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    names = [t["target"] for t in summary["targets"]]
    assert names == ["model_minus_rules_roc_auc", "oracle_minus_model_roc_auc", "ece"]
    for t in summary["targets"]:
        low, high = t["interval"]
        verdict = "met" if t["met"] else "missed"
        line = f"target {t['target']} {t['rule']}: {t['value']:.4f} (95% interval "
        assert f"{line}{low:.4f} to {high:.4f}) {verdict}" in result.stderr


# What the shipped leadscore.yaml says about one deployment (the synthetic CRM) rather
# than a default: where its data is, what its columns hold and who its ideal customer
# is. The code's default for each is "none" (data.leads has no default: every config
# names it); every other key of the shipped file is the code's default.
PER_DEPLOYMENT: dict[tuple[str, ...], object] = {
    ("data", "activities"): None,  # the synthetic CRM's activity log (a flat export has none)
    ("data", "truth"): None,  # its hidden propensity (a real export has no oracle)
    ("data", "validation", "ranges"): {},  # names its `employees` column
    ("data", "display"): {"name": None, "company": None, "email": None, "record_id": None},
    ("features", "attributes"): {"categorical": [], "numeric": [], "engagement": [], "labels": {}},
    ("features", "activity_types"): {},  # its activity vocabulary
    ("features", "concepts"): {},  # its attributes read together ("director in fintech")
    ("rules", "icp"): {},  # its ideal customer, by attribute values
    ("rules", "penalties"): [],  # ... and who is outside it
    ("rules", "grades"): {"A": 60.0, "B": 40.0, "C": 20.0, "D": float("-inf")},  # tuned to its card
    ("routing", "reps"): [],  # its sales team
    ("routing", "territory"): None,  # its columns that route a lead
    ("routing", "skill"): None,
    ("routing", "min_seniority"): {},
    ("routing", "rebalance"): False,  # its owners were drawn at random: dealt afresh
    ("nurture", "activities"): None,  # its activity types marketing can invite to
}


def _pop(tree: dict, path: tuple[str, ...]) -> object:
    *parents, leaf = path
    for key in parents:
        tree = tree[key]
    return tree.pop(leaf)


def test_the_code_defaults_are_the_shipped_settings(tmp_path: Path):
    """A config naming only the leads file loads the shipped settings, but for the keys
    that describe one deployment: a key set to its default is never needed."""
    (tmp_path / "leadscore.yaml").write_text((ROOT / "leadscore.yaml").read_text())
    (tmp_path / "least.yaml").write_text("data: {leads: {path: data/synthetic/leads.parquet}}\n")
    shipped = load_settings(tmp_path / "leadscore.yaml").model_dump(mode="json")
    least = load_settings(tmp_path / "least.yaml").model_dump(mode="json")
    for path, default in PER_DEPLOYMENT.items():
        assert _pop(least, path) == default, path
        assert _pop(shipped, path) != default, path  # the list names only real exceptions
    assert least == shipped
    assert least["model"]["lightgbm"]["n_estimators"] == 200  # the example


def test_a_config_of_data_features_and_rules_trains_the_shipped_model(tmp_path: Path):
    """The user's case of issue #13: the shipped file cut to `data`, `features` and
    `rules` gives the very same settings (trees, learning rate, targets, gate...); the
    sales team (`routing`) and what marketing can invite to (`nurture`) describe the
    deployment too (issue #18), so a file with a team keeps those sections."""
    raw = yaml.safe_load((ROOT / "leadscore.yaml").read_text())
    (tmp_path / "leadscore.yaml").write_text(yaml.safe_dump(raw))
    cut = {s: raw[s] for s in ("data", "features", "rules", "routing", "nurture")}
    (tmp_path / "cut.yaml").write_text(yaml.safe_dump(cut))
    assert load_settings(tmp_path / "cut.yaml") == load_settings(tmp_path / "leadscore.yaml")


HEAVY = ("fastapi", "prefect", "mlflow")
"""What neither `leadscore --help` nor loading the settings may import (seconds each)."""


def _modules_after(code: str) -> set[str]:
    """The top-level modules a fresh interpreter holds after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "LEADSCORE_CONFIG": ""}
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr
    return {name.split(".")[0] for name in json.loads(result.stdout.strip().splitlines()[-1])}


def test_help_imports_no_web_framework_tracking_or_orchestrator():
    loaded = _modules_after(
        "from leadscore.pipelines.cli import app\n"
        "try:\n    app(['--help'])\nexcept SystemExit as done:\n    assert done.code == 0"
    )
    assert "typer" in loaded  # the probe did run the CLI
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_settings_load_without_web_framework_tracking_or_orchestrator():
    loaded = _modules_after(
        "from leadscore.pipelines.settings import load_settings\n"
        "assert load_settings('leadscore.yaml').model.lightgbm.num_leaves == 7"
    )
    assert "pydantic" in loaded
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
