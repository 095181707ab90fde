"""The routing pool (models/routing/pool.py) and the call lists of a spilled batch
(pipelines/batch.py ``publish_spilled``): small frames, no model."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from leadscore.models.routing.config import Rep, RoutingConfig
from leadscore.models.routing.frames import POOL_COLUMNS, Routing
from leadscore.models.routing.pool import batch_pool, partition_pool, route_pool, routing_summary
from leadscore.pipelines.batch import publish_spilled
from leadscore.pipelines.spilled import spill
from leadscore.serving.store import ScoreStore, StoreConfig
from leadscore.serving.store.call_writes import batch_calls
from tests.serving.test_store import AS_OF, make_scores

CONFIG = RoutingConfig(
    reps=[Rep(id="alice", capacity=2), Rep(id="bob", capacity=1)],
    method="round_robin",
    territory="country",
    skill="segment",
    value="deal",
)


def scored_and_leads(n: int = 6) -> tuple[pd.DataFrame, pd.DataFrame]:
    ids = [f"L{i}" for i in range(n)]
    scored = pd.DataFrame(
        {
            "lead_id": ids,
            "probability": np.linspace(0.9, 0.1, n),
            "grade": (["A", "B", "C"] * n)[:n],
            "owner": ["Alice", None, "Bob", "Alice", None, "Bob"][:n],
            "segment": pd.array(["smb", "ent", "smb", None, "ent", "smb"][:n], dtype="str"),
        }
    )
    created = pd.date_range("2026-11-01", periods=n, freq="D", tz="UTC")
    leads = pd.DataFrame(
        {
            "lead_id": ids,
            "created_at": created,
            "country": pd.array(["US", "GB", None, "DE", "US", "FR"][:n], dtype="str"),
            "deal": [100.0, 250.0, np.nan, 40.0, 10.0, 5.0][:n],
        }
    )
    return scored, leads


def test_the_pool_holds_the_pool_grades_with_their_routing_columns():
    scored, leads = scored_and_leads()
    pool = partition_pool(scored, leads, CONFIG)
    assert list(pool.columns) == list(POOL_COLUMNS)
    assert pool["lead_id"].tolist() == ["L0", "L1", "L3", "L4"]  # grades A and B
    assert pool["grade"].tolist() == ["A", "B", "A", "B"]
    assert pool["probability"].tolist() == scored["probability"].iloc[[0, 1, 3, 4]].tolist()
    assert pool["created_at"].tolist() == leads["created_at"].iloc[[0, 1, 3, 4]].tolist()
    assert pool["territory"].tolist() == ["US", "GB", "DE", "US"]
    assert pool["skill"].astype(object).fillna("-").tolist() == ["smb", "ent", "-", "ent"]
    assert pool["owner"].astype(object).fillna("-").tolist() == ["Alice", "-", "Alice", "-"]
    assert pool["value"].tolist() == [100.0, 250.0, 40.0, 10.0]
    assert pool["language"].isna().all()  # not configured
    for name in ("grade", "owner", "territory", "skill", "language"):
        assert isinstance(pool[name].dtype, pd.CategoricalDtype), name


def test_the_pool_follows_lead_ids_not_row_order():
    scored, leads = scored_and_leads()
    shuffled = leads.iloc[[5, 3, 1, 0, 4, 2]].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        partition_pool(scored, shuffled, CONFIG), partition_pool(scored, leads, CONFIG)
    )
    with pytest.raises(ValueError, match="not in the partition"):
        partition_pool(scored, leads.iloc[1:], CONFIG)


def test_no_rep_no_pool_and_a_missing_column_is_null(caplog):
    scored, leads = scored_and_leads()
    assert partition_pool(scored, leads, RoutingConfig()) is None
    config = CONFIG.model_copy(update={"language": "tongue_not_there"})
    pool = partition_pool(scored, leads, config)
    assert pool["language"].isna().all() and len(pool) == 4
    assert "routing.language names the column 'tongue_not_there'" in caplog.text
    none = partition_pool(scored.assign(grade="D"), leads, CONFIG)
    assert none is not None and none.empty


def test_the_batch_pool_keeps_categoricals_across_partitions():
    scored, leads = scored_and_leads()
    first = partition_pool(scored.iloc[:3], leads.iloc[:3], CONFIG)
    second = partition_pool(scored.iloc[3:], leads.iloc[3:], CONFIG)
    empty = partition_pool(scored.iloc[2:3], leads.iloc[2:3], CONFIG)  # grade C only
    pool = batch_pool([first, empty, second])
    assert pool["lead_id"].tolist() == ["L0", "L1", "L3", "L4"]
    assert isinstance(pool["territory"].dtype, pd.CategoricalDtype)
    assert sorted(pool["territory"].cat.categories) == ["DE", "GB", "US"]
    assert pool["territory"].tolist() == ["US", "GB", "DE", "US"]
    assert batch_pool([None, None]) is None
    assert batch_pool([empty]).empty


def test_route_pool_and_its_summary():
    scored, leads = scored_and_leads()
    routed = route_pool(partition_pool(scored, leads, CONFIG), CONFIG)
    summary = routing_summary(routed)
    assert summary["assigned"] == 3 and summary["unassigned"] == 1
    assert sum(summary["unassigned_by_reason"].values()) == 1
    assert summary["reps"] == 2 and summary["reps_with_calls"] == 2
    assert summary["method"] == routed.method
    nothing = route_pool(partition_pool(scored.assign(grade="D"), leads, CONFIG), CONFIG)
    assert nothing.calls.empty and nothing.reps["assigned"].tolist() == [0, 0]
    assert routing_summary(nothing)["assigned"] == 0


def test_publish_spilled_writes_the_call_lists_with_the_batch(tmp_path: Path):
    scores = make_scores(7)
    frames = [scores.iloc[:4].reset_index(drop=True), scores.iloc[4:].reset_index(drop=True)]
    parts = []
    for i, frame in enumerate(frames):
        scored = frame.assign(raw_score=np.log(frame["probability"] / (1 - frame["probability"])))
        leads = pd.DataFrame(
            {
                "lead_id": frame["lead_id"],
                "created_at": pd.Timestamp("2026-11-01", tz="UTC") + pd.to_timedelta(i, "D"),
            }
        )
        config = CONFIG.model_copy(update={"territory": None, "skill": None, "value": None})
        parts.append(spill(scored, tmp_path, i, pool=partition_pool(scored, leads, config)))
    store = ScoreStore(StoreConfig(url=f"sqlite:///{tmp_path}/scores.db"))
    store.create()
    try:
        out = publish_spilled(
            parts,
            store,
            model_version="7",
            as_of=pd.Timestamp(AS_OF),
            grade_order=["A", "B", "C", "D"],
            csv_path=tmp_path / "latest.csv",
            chunk_rows=3,
            top=2,
            routing=config,
        )
        assert isinstance(out.routing, Routing)
        pool_ids = sorted(scores.loc[scores["grade"].isin(["A", "B"]), "lead_id"])
        assert sorted(out.routing.calls["lead_id"]) == pool_ids  # every pool lead once
        stored = batch_calls(store.engine, out.batch.batch_id)
        assert sorted(stored["lead_id"]) == pool_ids
        placed = stored.dropna(subset=["rep_id"])
        assert placed.groupby("rep_id").size().to_dict() == {"alice": 2, "bob": 1}
        with open(out.csv, encoding="utf-8", newline="") as handle:
            rows = {r["lead_id"]: r for r in csv.DictReader(handle)}
        for call in placed.itertuples():
            assert rows[call.lead_id]["call_rep"] == call.rep_id
            assert rows[call.lead_id]["call_position"] == str(call.position)
        listed = {r["lead_id"] for r in rows.values() if r["call_rep"]}
        assert listed == set(placed["lead_id"])
        # routing off: no calls, empty call columns
        again = publish_spilled(
            parts,
            store,
            model_version="7",
            as_of=pd.Timestamp(AS_OF),
            grade_order=["A", "B", "C", "D"],
            csv_path=tmp_path / "latest.csv",
            chunk_rows=3,
            top=2,
        )
        assert again.routing is None and batch_calls(store.engine, again.batch.batch_id).empty
        with open(again.csv, encoding="utf-8", newline="") as handle:
            assert {r["call_rep"] for r in csv.DictReader(handle)} == {""}
    finally:
        store.close()


def test_the_demo_says_the_call_lists_in_one_line():
    from leadscore.pipelines.settings import load_settings
    from leadscore.pipelines.summary import calls_line, demo_lines
    from tests.conftest import ROOT

    routing = {
        "method": "score_aware",
        "solver": "scipy",
        "assigned": 207,
        "unassigned": 1031,
        "unassigned_by_reason": {"no territory match": 30, "all capacity used": 1000, "x": 1},
        "reps": 12,
        "reps_with_calls": 12,
    }
    assert calls_line(routing) == (
        "Calls: 207 leads on 12 reps' lists today (score_aware); 1,031 unassigned "
        "(1,000 all capacity used, 30 no territory match and 1 more reason)"
    )
    assert calls_line({**routing, "unassigned": 0, "unassigned_by_reason": {}}) == (
        "Calls: 207 leads on 12 reps' lists today (score_aware)"
    )
    assert calls_line(None) is None
    settings = load_settings(ROOT / "leadscore.yaml")
    with_calls = demo_lines(settings, None, "t", 1.0, {"routing": routing})
    without = demo_lines(settings, None, "t", 1.0)
    added = [line for line in with_calls if line not in without]
    assert len(with_calls) == len(without) + 1 and added[0].startswith("  Calls: 207 leads")
