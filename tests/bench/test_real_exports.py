"""bench.real_exports at toy size: references, the table, the absent line, the
Olist deals read as ``data.outcomes``.

No timed assertion and no real export: the Kaggle files are not in the repo, and the
figures themselves are the benchmark's printed output (bench/README.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from bench import real_exports as bench
from bench.real_exports import Columns


def _frame(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    kind = rng.choice(["a", "b", "c"], n)
    size = rng.normal(0, 1, n)
    logit = np.select([kind == "a", kind == "b"], [1.5, 0.0], -1.5) + 1.0 * size
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    X = pd.DataFrame({"kind": kind, "size": size})
    X.loc[::17, "size"] = np.nan  # missing numerics are imputed, not refused
    return X, y


def test_both_references_learn_the_signal_and_ignore_unseen_levels():
    X_train, y_train = _frame(3000, 1)
    X_valid, y_valid = _frame(1000, 2)
    X_valid.loc[:9, "kind"] = "never seen"
    refs = bench.references(X_train, y_train, X_valid, y_valid, Columns(["kind"], ["size"]))
    assert set(refs) == {"lightgbm", "logistic"}
    for auc, scores in refs.values():
        assert scores.shape == (1000,) and np.all((scores > 0) & (scores < 1))
        assert 0.75 < auc < 0.9  # the world's own ranking is about 0.83


def test_ece_floor_shrinks_with_the_window():
    rng = np.random.default_rng(0)
    small, large = bench.ece_floor(rng.random(500)), bench.ece_floor(rng.random(50_000))
    assert 0.01 < small < 0.05 and large < 0.005


def test_olist_reads_the_won_deals_through_data_outcomes(tmp_path):
    """examples/olist.yaml as the bench runs it: MQLs as leads, the won deals joined by
    leadscore's own loader (``data.outcomes``), only their key and won_date read."""
    (tmp_path / "olist").mkdir()
    pd.DataFrame(
        {
            "mql_id": ["m1", "m2", "m3"],
            "first_contact_date": ["01-02-2018", "05-02-2018", "10-02-2018"],
            "landing_page_id": ["p1", "p2", "p1"],
            "origin": ["social", "email", "social"],
        }
    ).to_csv(tmp_path / bench.OLIST_MQL, index=False)
    pd.DataFrame(
        {"mql_id": ["m2"], "won_date": ["26-02-2018 19:58"], "business_segment": ["pet"]}
    ).to_csv(tmp_path / bench.OLIST_DEALS, index=False)
    olist = next(d for d in bench.DATASETS if d.name == "olist")
    settings = bench.load_settings(bench.EXAMPLES / olist.config)
    assert olist.prepare is not None and bench.missing_file(olist, settings, tmp_path) is None
    settings = olist.prepare(settings, tmp_path)
    leads = bench.load_crm(settings).leads.set_index("lead_id")
    assert leads["status"].to_dict() == {"m1": "open", "m2": "converted", "m3": "open"}
    assert leads.loc["m2", "closed_at"] == pd.Timestamp("2018-02-26 19:58", tz="UTC")
    assert leads.loc["m3", "created_at"] == pd.Timestamp("2018-02-10", tz="UTC")
    assert "business_segment" not in leads.columns  # filled in after the deal: a leak
    attributes = settings.features.attributes
    assert {*attributes.categorical, *attributes.numeric} == {"origin", "landing_page_id"}


def test_a_missing_export_prints_where_to_put_it(tmp_path):
    xeducation = next(d for d in bench.DATASETS if d.name == "xeducation")
    line = bench.run_dataset(xeducation, tmp_path)
    assert line == (
        f"absent: xeducation: put Leads.csv from {xeducation.source} in "
        f"{tmp_path / 'xeducation'} (licence: none stated on the page)"
    )


def test_the_shipped_configs_map_columns_only():
    """The bar is "defaults and a column mapping only": no model, feature or split tuning."""
    for dataset in bench.DATASETS:
        settings = bench.load_settings(bench.EXAMPLES / dataset.config)
        assert settings.model == type(settings.model)()
        assert settings.features.market.leads == 0
        guard = {"min_conversions": type(settings.snapshots)().min_conversions}
        assert settings.snapshots.model_copy(update=guard) == type(settings.snapshots)()
        raw = yaml.safe_load((bench.EXAMPLES / dataset.config).read_text(encoding="utf-8"))
        assert not Path(raw["data"]["leads"]["path"]).is_absolute()  # relative to the file


def test_table_names_each_miss():
    row = {
        "dataset": "toy",
        "split": "random",
        "valid_rows": 100,
        "valid_rate": 0.25,
        "model_kind": "lightgbm",
        "model_roc_auc": 0.8,
        "model_roc_auc_interval": [0.75, 0.85],
        "plain_lightgbm_roc_auc": 0.81,
        "plain_logistic_roc_auc": 0.79,
        "margin": -0.01,
        "margin_interval": [-0.02, 0.0],
        "rules_roc_auc": 0.6,
        "ece": 0.03,
        "ece_floor": 0.02,
        "meets_references": False,
        "meets_aim": False,
        "meets_ece": False,
    }
    text = bench.table(
        [
            row,
            {**row, "dataset": "ok", "margin": 0.002, "meets_references": True, "meets_ece": True},
        ]
    )
    header, first, second = text.splitlines()
    assert header.split()[:2] == ["dataset", "split"]
    assert first.endswith("misses refs, ECE") and "0.0300 (0.020)" in first
    assert second.endswith("met (margin < 0.005)")


@pytest.mark.slow
def test_a_flat_export_is_measured_end_to_end(tmp_path, capsys):
    X, y = _frame(2400, 3)
    X.insert(0, "Id", [f"L{i}" for i in range(len(X))])
    X["Won"] = y
    X.to_csv(tmp_path / "export.csv", index=False)
    (tmp_path / "toy.yaml").write_text(
        "data:\n"
        "  leads: {path: export.csv}\n"
        "  column_mapping: {Id: lead_id}\n"
        '  outcome: {column: Won, converted: ["1"], lost: ["0"]}\n'
        "  order: none\n"
        "features:\n"
        "  attributes: {categorical: [kind], numeric: [size]}\n"
        "rules:\n"
        "  icp: {kind: {weight: 1, default: 3, values: {a: 10}}}\n",
        encoding="utf-8",
    )
    argv = ["--data", str(tmp_path), "--only", "xeducation", "--config", str(tmp_path / "toy.yaml")]
    (row,) = bench.main([*argv, "--json", str(tmp_path / "rows.json")])
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("absent: xeducation: put Leads.csv")  # --only, then --config
    assert out[-1].startswith("toy ") and out[-1].endswith(bench._verdict(row))
    assert row["dataset"] == "toy"
    assert row["split"] == "random" and row["valid_rows"] == 480
    assert 0.75 < row["model_roc_auc"] < 0.9
    assert row["margin"] == pytest.approx(
        row["model_roc_auc"] - max(row["plain_lightgbm_roc_auc"], row["plain_logistic_roc_auc"]),
        abs=1e-3,
    )
    low, high = row["model_roc_auc_interval"]
    assert low < row["model_roc_auc"] < high
    assert 0.5 < row["rules_roc_auc"] < row["model_roc_auc"]
    assert json.loads((tmp_path / "rows.json").read_text(encoding="utf-8")) == [row]
