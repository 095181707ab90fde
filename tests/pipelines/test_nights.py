"""Simulated nights (`leadscore demo --nights`): dates, the night's clock, the night's line."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from leadscore.pipelines.nights import (
    NIGHT_CONFIG,
    change_of,
    night_config,
    night_dates,
    night_line,
    retrain_note,
)
from leadscore.pipelines.settings import load_settings
from leadscore.synthetic.drift import Campaign, NewSource

ROOT = Path(__file__).resolve().parents[2]
END = pd.Timestamp("2026-11-01", tz="UTC")


def test_nights_end_at_the_export_day_every_n_days() -> None:
    dates = night_dates(END, 4, 7)
    assert dates == [END - pd.Timedelta(days=d) for d in (21, 14, 7, 0)]
    with pytest.raises(ValueError):
        night_dates(END, 0, 7)


def test_the_change_starts_at_the_middle_night_unless_told() -> None:
    dates = night_dates(END, 5, 7)
    assert change_of(None, dates, None) == change_of("none", dates, None) == []
    assert change_of("new_source", dates, None) == [NewSource(dates[2])]
    (campaign,) = change_of("campaign:days=3", dates, "2026-10-20")
    assert campaign == Campaign(pd.Timestamp("2026-10-20", tz="UTC"), days=3)


def test_night_config_sets_as_of_beside_the_config_and_is_removed(tmp_path: Path) -> None:
    config = tmp_path / "leadscore.yaml"
    config.write_text((ROOT / "leadscore.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    night = pd.Timestamp("2026-10-04", tz="UTC")
    with night_config(config) as at:
        path = Path(at(night))
        assert path == tmp_path / NIGHT_CONFIG
        settings = load_settings(path)
        assert pd.Timestamp(settings.data.as_of) == night
        # the same relative paths as the original: resolved against the same folder
        assert settings.data.leads.path == load_settings(config).data.leads.path
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert raw["data"]["as_of"] == "2026-10-04T00:00:00+00:00"
    assert not path.exists()


def test_night_line_reads_the_newest_batch_and_the_newest_mature_one() -> None:
    batches = pd.DataFrame(
        {
            "batch_id": ["b1", "b2", "b3"],
            "as_of": pd.to_datetime(["2026-07-01", "2026-07-08", "2026-10-25"], utc=True),
            "mature": [True, True, False],
            "roc_auc": [0.8411, None, None],  # b2: too few conversions
            "estimated_roc_auc": [0.83, 0.82, 0.8123],
        }
    )
    drift = pd.DataFrame(
        {
            "batch_id": "b3",
            "feature": ["lead_source", "employees", "prediction"],
            "kind": ["categorical", "numeric", "prediction"],
            "psi": [0.31, 0.05, 0.9],
        }
    )
    retrain = {"version": "4", "promoted": True, "promotion": "promoted", "run_id": "r"}
    line = night_line(END, batches, drift, "retrain: PSI ...", retrain_note(retrain))
    assert (line.batch_id, line.live_roc_auc, line.max_psi_feature) == ("b3", 0.8411, "lead_source")
    assert line.max_psi == 0.31  # the prediction's PSI is not a feature's
    assert line.text() == (
        "2026-11-01  batch b3  live ROC-AUC 0.841 (batch of 2026-07-01)  estimated 0.812  "
        "max PSI 0.310 lead_source  retrain: PSI ...; retrained: version 4 promoted"
    )
    quiet = night_line(END, batches.iloc[2:], drift.iloc[:0], "no action: all within bounds")
    assert quiet.text() == (
        "2026-11-01  batch b3  live ROC-AUC -  estimated 0.812  max PSI -  "
        "no action: all within bounds"
    )
    assert retrain_note({"version": "5", "promoted": False}).endswith("kept the champion)")


@pytest.mark.slow
def test_two_nights_score_monitor_and_catch_a_campaign(tmp_path: Path, prefect_harness) -> None:
    """One real run of the nights (train, score, monitor flows; MLflow, SQLite store): the
    first night is quiet, a campaign started four days before the second one is caught."""
    from leadscore.pipelines.nights import run_nights
    from leadscore.serving.store import ScoreStore

    raw = yaml.safe_load((ROOT / "leadscore.yaml").read_text(encoding="utf-8"))
    raw["snapshots"].update(min_leads=500, min_conversions=50)  # a small CRM on purpose
    raw["promotion"]["max_calibration_error"] = None  # as tests/e2e: small CRM, wide ECE
    raw["monitor"]["retrain"] = False  # the decision is recorded; no second training here
    config = tmp_path / "leadscore.yaml"
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")
    settings = load_settings(config)
    printed: list[str] = []
    lines = run_nights(
        settings,
        config,
        nights=2,
        every=7,
        change="campaign",
        change_at="2026-10-28",
        leads=3_000,
        echo=printed.append,
    )
    assert printed[0].startswith("3,000 leads to 2026-11-01; 2 nights every 7 days from 2026-10-25")
    assert "campaign: +0.5 webinar_signup" in printed[0]
    assert printed[1:] == [line.text() for line in lines]
    first, second = lines
    assert first.night == pd.Timestamp("2026-10-25", tz="UTC")
    assert first.decision == "no action: all within bounds"
    assert first.max_psi is not None and first.max_psi < 0.2
    assert second.decision.startswith("retrain: PSI of ")
    assert "webinar_signup" in (second.max_psi_feature or "")
    assert second.max_psi is not None and second.max_psi > 0.2
    # the flows ran as of each night: the store's batches are the nights'
    store = ScoreStore(settings.store)
    judged = store.monitor_batches()
    assert list(judged["batch_id"]) == [first.batch_id, second.batch_id]
    assert [pd.Timestamp(t) for t in judged["as_of"]] == [first.night, second.night]
    archive = Path(f"{settings.monitor.archive_dir}-nights")
    assert sorted(p.name for p in archive.iterdir()) == sorted([first.batch_id, second.batch_id])
    assert not (tmp_path / NIGHT_CONFIG).exists()
    leads = pd.read_parquet(settings.data.leads.path)
    assert leads["created_at"].max() < second.night
