"""Leakage warnings at train: what is sniffed (training leads only), and what the CLI says."""

from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from leadscore.features.leakage import sniff_leads
from tests.conftest import ROOT


def _leads(n: int = 1200) -> pd.DataFrame:
    """Closed leads over 2025; a note column that names the outcome only from July on,
    and the export's own outcome column (Stage)."""
    rng = np.random.default_rng(3)
    won = rng.random(n) < 0.3
    closed = pd.Timestamp("2025-01-01", tz="UTC") + pd.to_timedelta(
        np.sort(rng.integers(0, 364 * 86400, n)), unit="s"
    )
    late = closed >= pd.Timestamp("2025-07-01", tz="UTC")
    return pd.DataFrame(
        {
            "lead_id": [f"L{i}" for i in range(n)],
            "status": np.where(won, "converted", "lost"),
            "created_at": closed - pd.Timedelta(days=30),
            "closed_at": closed,
            "Stage": np.where(won, "Won", "Lost"),
            "note": np.where(late, np.where(won, "paid", "no reply"), "call back"),
            "industry": rng.choice(["software", "retail", "fintech"], n),
        }
    )


def _flagged(suspects) -> set[str]:
    return {s.column for s in suspects}


def test_only_training_leads_whose_outcome_was_known_are_sniffed():
    leads = _leads()
    july = pd.Timestamp("2025-07-01", tz="UTC")
    assert _flagged(sniff_leads(leads, skip=["Stage"])) == {"note"}  # the test can fail
    # a training run with an activity log: outcomes known before the validation window
    assert _flagged(sniff_leads(leads, known_by=july, skip=["Stage"])) == set()
    # a training run's leads: those of its training examples
    early = leads.loc[leads["closed_at"] < july, "lead_id"]
    assert _flagged(sniff_leads(leads, lead_ids=early, skip=["Stage"])) == set()
    # the outcome column itself is never a candidate once named; open leads are not read
    assert _flagged(sniff_leads(leads, known_by=july)) == {"Stage"}
    opened = leads.assign(status=np.where(leads["closed_at"] >= july, "open", leads["status"]))
    assert _flagged(sniff_leads(opened, skip=["Stage"])) == set()


def test_train_prints_one_line_per_suspect_on_stderr_and_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from leadscore.pipelines import cli, train_flow

    suspects = [
        {"column": "Tags", "kind": "alone_predicts", "strength": 0.9176, "reason": "alone..."},
        {"column": "Tags", "kind": "outcome_words", "strength": 0.8533, "reason": "names..."},
    ]
    metrics = {"roc_auc": 0.9, "pr_auc": 0.5, "brier": 0.1, "lift_top10": 3.0, "ece": 0.01}
    result = {
        "model": metrics,
        "rules": {**metrics, "roc_auc": 0.7},
        "split": "random",
        "n_train": 800,
        "n_valid": 200,
        "run_id": "r" * 32,
        "version": "1",
        "promoted": True,
        "targets": [],
        "leakage": suspects,
    }
    monkeypatch.setattr(cli, "flow_runs", nullcontext)
    monkeypatch.setattr(train_flow, "train_flow", lambda config, force=False: result)
    for key, value in (("PREFECT_LOGGING_LEVEL", "WARNING"), ("GX_ANALYTICS_ENABLED", "false")):
        monkeypatch.setenv(key, value)  # restored after the test (the CLI sets defaults)
    (tmp_path / "leadscore.yaml").write_text((ROOT / "leadscore.yaml").read_text())
    ran = CliRunner().invoke(
        cli.app, ["train", "--config", str(tmp_path / "leadscore.yaml")], env={"COLUMNS": "240"}
    )
    assert ran.exit_code == 0, ran.output
    assert ran.stderr.splitlines() == [
        "possible leak: column 'Tags' alone...",
        "possible leak: column 'Tags' names...",
    ]
    assert json.loads(ran.stdout.strip().splitlines()[-1])["leakage"] == suspects
