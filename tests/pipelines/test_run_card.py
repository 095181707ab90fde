"""A training run's name, description and dataset digests (pipelines/run_card.py), as
pure functions; the run in a real MLflow store is checked in tests/e2e/test_end_to_end.py."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from leadscore.pipelines.run_card import (
    RunData,
    count_words,
    dataset_source,
    frame_digest,
    labelled,
    run_description,
    run_name,
)


def _data(source: str = "/crm/data/leads.parquet") -> RunData:
    X = pd.DataFrame({"lead_id": ["a", "b", "c", "d"], "visits": [1.0, 0.0, 3.0, 2.0]})
    return RunData(
        X_train=X.iloc[:3],
        y_train=np.array([1, 0, 1]),
        X_valid=X.iloc[3:],
        y_valid=np.array([0]),
        source=source,
        n_leads=20_000,
        data_end=pd.Timestamp("2026-11-30 17:00", tz="UTC"),
        split="out_of_time",
    )


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (950, "950"),
        (1000, "1k"),
        (9240, "9.2k"),
        (20_000, "20k"),
        (45_211, "45k"),
        (1_000_000, "1M"),
        (1_250_000, "1.2M"),
    ],
)
def test_counts_read_as_a_person_says_them(n: int, words: str):
    assert count_words(n) == words


def test_the_run_name_says_what_when_and_on_what_data():
    when = pd.Timestamp("2026-12-06 10:15:42", tz="UTC")
    assert run_name("lightgbm_regularised", _data(), when) == (
        "train 2026-12-06 10:15 lightgbm_regularised on leads.parquet, 20k leads to 2026-11-30"
    )
    undated = replace(_data(), data_end=pd.NaT)  # a flat export without dates
    assert run_name("logistic", undated, when).endswith("logistic on leads.parquet, 20k leads")
    note = run_description("logistic", undated, {}, None, False, "first")
    assert "of `/crm/data/leads.parquet`; validated on 1 examples" in note
    query = _data("sql: SELECT * FROM leads")
    assert run_name("logistic", query, when).endswith("logistic on sql, 20k leads to 2026-11-30")


def test_the_description_has_the_examples_the_figures_and_the_verdict():
    metrics = {
        "model": {"roc_auc": 0.81234, "pr_auc": 0.4, "capture_top10": 0.41, "ece": 0.0213},
        "rules": {"roc_auc": 0.70111, "pr_auc": 0.3, "capture_top10": 0.25, "ece": float("nan")},
    }
    note = run_description("lightgbm", _data(), metrics, "7", True, "beats the champion")
    assert note.splitlines()[0] == (
        "Trained a **lightgbm** model on 3 examples (2 conversions) cut from 20,000 leads "
        "of `/crm/data/leads.parquet` (data to 2026-11-30); validated on 1 examples "
        "(0 conversions), out_of_time split."
    )
    assert "| ROC-AUC (ranking, 0.5 = chance) | 0.8123 | 0.7011 |" in note
    assert "| conversions reached calling the top 10% | 41% | 25% |" in note
    assert "| calibration error (ECE, lower is better) | 0.0213 | - |" in note
    assert note.endswith("Registered as version 7, promoted to champion: beats the champion")
    logged = replace(_data(), activities="/crm/data/activities.parquet")
    first = run_description("lightgbm", logged, metrics, "7", True, "ok").splitlines()[0]
    assert (
        "of `/crm/data/leads.parquet` and their activity log `/crm/data/activities.parquet`"
        in first
    )
    refused = run_description("lightgbm", _data(), metrics, "8", False, "does not beat")
    assert refused.endswith("version 8, not promoted: does not beat")


def test_the_digest_covers_every_row_and_the_labels():
    data = _data()
    train = labelled(data.X_train, data.y_train)
    assert train.columns.tolist() == ["lead_id", "visits", "converted"]
    assert train["converted"].tolist() == [1, 0, 1]
    digest = frame_digest(train)
    assert len(digest) == 8 and digest == frame_digest(train.copy())
    flipped = labelled(data.X_train, np.array([1, 0, 0]))  # one label changed, last row
    assert frame_digest(flipped) != digest


def test_a_query_source_keeps_the_query_and_not_the_url():
    source = dataset_source("sql: SELECT * FROM leads")
    assert source.to_dict() == {"tags": {"sql": "SELECT * FROM leads"}}
    assert dataset_source("/crm/leads.parquet") == "/crm/leads.parquet"
