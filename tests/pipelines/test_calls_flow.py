"""The score flow routes every night's pool to call lists (issue #18): one flow run on a
small synthetic CRM, with a team too small for the pool, checked in the store, in the
CRM CSV and in calls.csv."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from tests.conftest import ROOT

TEAM = [
    {"id": "ann", "name": "Ann Lee", "capacity": 4, "seniority": "senior"},
    {"id": "bo", "name": "Bo Chen", "capacity": 3, "seniority": "senior"},
    {"id": "cy", "name": "=Cy", "capacity": 2, "seniority": "senior"},
]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> tuple[Path, Any, Any]:
    from leadscore.models import recipe
    from leadscore.pipelines.settings import load_settings
    from leadscore.pipelines.sources import load_crm
    from leadscore.synthetic import generate_crm, write_crm

    folder = tmp_path_factory.mktemp("calls-flow")
    write_crm(generate_crm(1200, seed=21), folder / "data" / "synthetic")
    raw = yaml.safe_load((ROOT / "leadscore.yaml").read_text())
    raw["scoring"]["partition_rows"] = 60  # several partitions: their pools are joined
    raw["model"]["kind"] = "lightgbm"
    raw["routing"]["reps"] = TEAM
    raw["routing"]["method"] = "round_robin"
    (folder / "leadscore.yaml").write_text(yaml.safe_dump(raw))
    settings = load_settings(folder / "leadscore.yaml")
    loaded = load_crm(settings)
    trained = recipe.train(loaded.leads, loaded.activities, loaded.end, settings)
    return folder, settings, trained.model


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_the_score_flow_publishes_call_lists_with_the_batch(project, prefect_harness):
    from leadscore.pipelines import score_flow as module
    from leadscore.pipelines import tracking
    from leadscore.serving.store import ScoreStore
    from leadscore.serving.store.call_writes import batch_calls

    folder, settings, model = project
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tracking, "configure", lambda _: None)
        patch.setattr(tracking, "load_champion", lambda _: (model, "4"))
        result = module.score_flow(str(folder / "leadscore.yaml"))

    store = ScoreStore(settings.store)
    try:
        scores = store.read_batch(result["batch_id"])
        calls = batch_calls(store.engine, result["batch_id"])
    finally:
        store.close()
    pool = sorted(scores.loc[scores["grade"].isin(["A", "B"]), "lead_id"])
    assert len(pool) > 9  # more than the team can call: some left unassigned
    assert sorted(calls["lead_id"]) == pool  # every pool lead exactly once
    placed = calls.dropna(subset=["rep_id"])
    per_rep = placed.groupby("rep_id")["position"].apply(sorted).to_dict()
    assert per_rep == {"ann": [1, 2, 3, 4], "bo": [1, 2, 3], "cy": [1, 2]}  # capacity, in order
    unassigned = calls[calls["rep_id"].isna()]
    assert len(unassigned) == len(pool) - 9 and unassigned["reason"].str.len().gt(0).all()

    summary = result["routing"]
    assert summary["assigned"] == 9 and summary["unassigned"] == len(pool) - 9
    assert sum(summary["unassigned_by_reason"].values()) == len(pool) - 9
    assert summary["reps"] == 3 and summary["method"] == "round_robin"

    crm = {r["lead_id"]: r for r in read_rows(Path(result["csv"]))}
    assert len(crm) == len(scores)
    for call in placed.itertuples():
        assert (crm[call.lead_id]["call_rep"], crm[call.lead_id]["call_position"]) == (
            call.rep_id,
            str(call.position),
        )
    assert sum(1 for r in crm.values() if r["call_rep"]) == 9

    assert result["calls_csv"] == str(settings.output.calls_csv)
    lists = read_rows(settings.output.calls_csv)
    in_order = placed.assign(rep=placed["rep_id"].map({"ann": 0, "bo": 1, "cy": 2}))
    in_order = in_order.sort_values(["rep", "position"])["lead_id"].tolist()
    assert [r["lead_id"] for r in lists[:9]] == in_order
    assert [(r["rep_id"], r["rep_name"]) for r in lists[:9]] == [
        *[("ann", "Ann Lee")] * 4,
        *[("bo", "Bo Chen")] * 3,
        *[("cy", "'=Cy")] * 2,  # formula-safe
    ]
    assert [r["position"] for r in lists[:9]] == ["1", "2", "3", "4", "1", "2", "3", "1", "2"]
    assert sorted(r["lead_id"] for r in lists) == pool
    assert all(r["rep_id"] == "" and r["reason"] for r in lists[9:])
    by_lead = scores.set_index("lead_id")
    for row in lists:
        assert int(row["score"]) == by_lead.loc[row["lead_id"], "score"]
        assert row["batch_id"] == result["batch_id"]
    assert pd.Series([r["reason_1"] for r in lists]).str.len().gt(0).all()
