"""Backtest over time: each origin is a training run as it would have happened then.

On a small synthetic CRM: the windows step back one validation window at a time, no
window sees a label that was unknown at its cut-off, every window's metrics are the ones
``full_metrics`` gives for that window, and `leadscore backtest` prints them as JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from leadscore.features.builder import AS_OF, build_features
from leadscore.features.registry import build_registry
from leadscore.features.snapshots import LABEL, make_snapshots
from leadscore.models import training
from leadscore.models.backtest import backtest, stability
from leadscore.models.config import QualityTargets
from leadscore.models.selection import SliceSpec
from leadscore.pipelines.settings import Settings
from tests.conftest import ROOT

N_LEADS = 2500
SEED = 5


@pytest.fixture(scope="module")
def raw_config() -> dict:
    raw = yaml.safe_load((ROOT / "leadscore.yaml").read_text())
    raw["model"]["lightgbm"].update(n_estimators=60)  # small and quick; the shape is the point
    return raw


@pytest.fixture(scope="module")
def crm():
    from leadscore.synthetic import generate_crm

    return generate_crm(N_LEADS, seed=SEED)


@pytest.fixture(scope="module")
def result(crm, raw_config: dict):
    settings = Settings.model_validate(raw_config)
    end = crm.activities["occurred_at"].max()
    snaps = make_snapshots(crm.leads, end, settings.snapshots)
    X = build_features(crm.leads, crm.activities, snaps.rows, settings.features)
    registry = build_registry(settings.features)
    points = settings.features.activity_points()
    seen: list[pd.Timestamp] = []
    orders: list[SliceSpec] = []

    def fit_model(X_: pd.DataFrame, y_: np.ndarray, order: SliceSpec):
        seen.append(X_[AS_OF].max())
        orders.append(order)
        return training.fit_model(X_, y_, registry, settings.model, order=order)

    table = backtest(
        snaps,
        X,
        settings.snapshots,
        fit_model,
        lambda X_, y_: training.fit_rules(X_, y_, settings.rules, points),
        intervals=QualityTargets(resamples=100),
    )
    return {
        "table": table,
        "snaps": snaps,
        "X": X,
        "seen": seen,
        "orders": orders,
        "settings": settings,
    }


def test_origins_step_back_one_validation_window(result):
    table, settings = result["table"], result["settings"]
    assert table["origin"].tolist() == [0, 1, 2, 3]
    ends = pd.to_datetime(table["data_end"])
    steps = (ends.iloc[:-1].to_numpy() - ends.iloc[1:].to_numpy()).astype("timedelta64[D]")
    assert (steps == np.timedelta64(settings.snapshots.valid_window_days, "D")).all()
    assert (table["n_valid"] > 200).all() and table["n_train"].is_monotonic_decreasing
    # the validation snapshots span one window; their labels are all known by the cut-off
    starts, last = pd.to_datetime(table["valid_start"]), pd.to_datetime(table["valid_end"])
    window = pd.Timedelta(days=settings.snapshots.valid_window_days)
    assert ((last - starts) < window).all() and ((last - starts) > window / 2).all()
    horizon = pd.Timedelta(days=settings.snapshots.horizon_days)
    assert (last + horizon <= ends).all()
    assert "error" not in table or table["error"].isna().all()


def test_no_window_trains_on_a_label_unknown_at_its_cut_off(result):
    horizon = pd.Timedelta(days=result["settings"].snapshots.horizon_days)
    for last_train_snapshot, row in zip(result["seen"], result["table"].itertuples(), strict=True):
        assert last_train_snapshot + horizon <= pd.Timestamp(row.valid_start)
    # model.kind auto's inner slice is cut as in a training run: by time, H days apart
    assert result["orders"] == [SliceSpec("time", horizon)] * 4


def test_window_metrics_are_the_window_s_own(result):
    from leadscore.features.snapshots import Snapshots, out_of_time_split
    from leadscore.models.evaluate import full_metrics

    snaps, X, settings = result["snaps"], result["X"], result["settings"]
    row = result["table"].iloc[2]
    end = pd.Timestamp(row["data_end"])
    horizon = pd.Timedelta(days=settings.snapshots.horizon_days)
    known = np.flatnonzero((snaps.rows[AS_OF] + horizon <= end).to_numpy())
    split = out_of_time_split(
        Snapshots(snaps.rows.iloc[known].reset_index(drop=True), 0, end), settings.snapshots
    )
    valid = known[split.valid]
    assert len(valid) == row["n_valid"]
    y = snaps.rows[LABEL].to_numpy()
    points = settings.features.activity_points()
    rules = training.fit_rules(
        X.iloc[known[split.train]], y[known[split.train]], settings.rules, points
    )
    expected = full_metrics(
        y[valid], rules.points(X.iloc[valid]), rules.predict_proba(X.iloc[valid])[:, 1]
    )
    assert row["rules_roc_auc"] == pytest.approx(expected["roc_auc"])
    assert row["rules_ece"] == pytest.approx(expected["ece"])
    # on this CRM the model beats the rules in every window
    summary = stability(result["table"])
    assert summary["min_margin_over_rules_roc_auc"] > 0.03
    aucs = result["table"]["model_roc_auc"]
    assert summary["model_roc_auc_spread"] == pytest.approx(aucs.max() - aucs.min())
    assert summary["model_roc_auc_worst"] == pytest.approx(aucs.min())


def test_each_window_states_its_margin_with_an_interval_over_leads(result):
    table = result["table"]
    margin = table["model_roc_auc"] - table["rules_roc_auc"]
    assert np.allclose(table["margin_roc_auc"], margin, atol=1e-12)
    assert (table["margin_roc_auc_low"] < table["margin_roc_auc"]).all()
    assert (table["margin_roc_auc"] < table["margin_roc_auc_high"]).all()
    width = table["margin_roc_auc_high"] - table["margin_roc_auc_low"]
    assert (width > 0.01).all() and (width < 0.3).all()  # 2.5k leads: wide, not absurd


def test_backtest_command_prints_the_windows(tmp_path: Path, crm, raw_config: dict):
    from leadscore.pipelines.cli import app
    from leadscore.synthetic import write_crm

    write_crm(crm, tmp_path / "data" / "synthetic")
    (tmp_path / "leadscore.yaml").write_text(yaml.safe_dump(raw_config))
    result = CliRunner().invoke(
        app,
        ["backtest", "--windows", "2", "--config", str(tmp_path / "leadscore.yaml")],
        env={"COLUMNS": "240"},  # a wide terminal: Rich wraps no cell
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert [w["origin"] for w in out["windows"]] == [0, 1]
    assert 0.5 < out["windows"][0]["model_roc_auc"] <= 1
    assert "model_roc_auc_mean" in out["stability"]
    assert "Backtest: model vs rules" in result.stdout
    assert "roc_auc margin [95% over leads]" in result.stdout
    first = out["windows"][0]
    low, value, high = (first[f"margin_roc_auc{s}"] for s in ("_low", "", "_high"))
    assert low < value < high
    assert f"{value:+.3f} [{low:+.3f}, {high:+.3f}]" in result.stdout
