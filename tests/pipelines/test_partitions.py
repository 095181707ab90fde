"""Partitioned scoring gives the scores of the one-shot path, locally and on Dask.

The nightly batch scores open leads in partitions (memory stays flat as leads grow) and
streams them into one store batch that flips once. These tests pin that partitioning
changes no value (rank is global, reasons and sub-scores per lead are the same), that the
stream is one atomic batch (a failure mid-stream leaves the previous batch current), and
that the same flow run on a 2-worker Dask ``LocalCluster`` through prefect-dask publishes
exactly the scores of the local run.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pyarrow as pa
import pytest
from sqlalchemy.exc import IntegrityError

from leadscore.features.builder import build_features, entities_at
from leadscore.models import recipe
from leadscore.models.scoring import (
    RAW_SCORE,
    SCORE_COLUMNS,
    partition_features,
    partition_leads,
    rank_and_percentile,
    rule_ranks,
    score_frame,
    score_partition,
    with_rank,
)
from leadscore.pipelines.settings import load_settings
from leadscore.pipelines.spilled import Ranking, Spilled, ranked_partitions, spill, spilled_table
from leadscore.serving.store import ScoreStore, StoreConfig
from leadscore.serving.store.migrate import V4_COLUMNS, V6_COLUMNS
from leadscore.synthetic import generate_crm, write_crm
from tests.conftest import ROOT
from tests.serving.test_store import BACKENDS, backend_url


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A small CRM on disk, settings pointing at it, and a model fitted on its history."""
    folder = tmp_path_factory.mktemp("partitions")
    paths = write_crm(generate_crm(1200, seed=21), folder / "crm")
    settings = load_settings(
        ROOT / "leadscore.yaml",
        data={
            "leads": {"path": str(paths["leads"])},
            "activities": {"path": str(paths["activities"])},
        },
        store={"url": f"sqlite:///{folder / 'scores.db'}"},
    )
    from leadscore.pipelines.sources import load_crm

    crm = load_crm(settings)
    trained = recipe.train(crm.leads, crm.activities, crm.end, settings)
    model, registry = trained.model, trained.model.registry_
    rules = recipe.scoring_rules(settings.rules, settings.features)
    return folder, settings, crm, model, rules, registry


def _by_lead(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values("lead_id").reset_index(drop=True)


def by_rank(parts: list[Spilled], ranking: Ranking, rows: int):
    """The straightforward reading of spilled partitions best first, ``rows`` ranks at a
    time: from every partition, the rows whose rank falls in the chunk's range (what the
    nightly export, ``rank_export``, is checked against)."""
    for low in range(1, len(ranking) + 1, rows):
        pieces = []
        for i, part in enumerate(parts):
            rank, percentile = ranking.part(i)
            take = np.flatnonzero((rank >= low) & (rank < low + rows))
            if len(take):
                frame = spilled_table(part).take(pa.array(take)).to_pandas()
                rule_rank = ranking.rule_part(i)[take]
                pieces.append(with_rank(frame, rank[take], percentile[take], rule_rank))
        yield pd.concat(pieces, ignore_index=True).sort_values("rank", kind="stable")


def _flow_settings(world, name: str, runner: dict, partition_rows: int, **features):
    """The world's settings for one score-flow run called ``name``: its own SQLite store
    and CSVs in the world's folder (``<name>.db``, ``<name>.csv``), ``runner``, partitions
    of ``partition_rows``, and ``features`` overriding the feature settings."""
    folder, settings = world[0], world[1]
    return settings.model_copy(
        update={
            "runner": settings.runner.model_validate(runner),
            "scoring": settings.scoring.model_copy(update={"partition_rows": partition_rows}),
            "features": settings.features.model_copy(update=features),
            "store": settings.store.model_copy(update={"url": f"sqlite:///{folder / name}.db"}),
            "output": settings.output.model_copy(
                update={
                    "scores_csv": folder / f"{name}.csv",
                    "calls_csv": folder / f"{name}-calls.csv",
                }
            ),
        }
    )


def _published(world, name: str, batch_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run ``name``'s stored batch (batch id and time dropped) and its CSV (batch id dropped)."""
    folder = world[0]
    store = ScoreStore(StoreConfig(url=f"sqlite:///{folder / name}.db"))
    frame = store.read_batch(batch_id).drop(columns=["batch_id", "scored_at"])
    store.close()
    csv = pd.read_csv(folder / f"{name}.csv", dtype={"lead_id": str}).drop(columns=["batch_id"])
    return frame, csv


@pytest.mark.parametrize("rows", [13, 97, 10_000])
def test_partitions_change_no_score(world, rows):
    _, settings, crm, model, rules, registry = world
    leads = crm.leads.iloc[:300]  # every lead, open or not, scored as of the end
    as_of = crm.end
    whole_X = build_features(leads, crm.activities, entities_at(leads, as_of), settings.features)
    whole = score_frame(whole_X, model, rules, registry, settings.scoring, leads)

    parts = partition_leads(leads, crm.activities, rows)
    assert sum(len(p.leads) for p in parts) == len(leads)
    assert len(parts) == -(-len(leads) // rows)
    for part in parts:  # each partition carries exactly its leads' activities
        assert set(part.activities["lead_id"]) <= set(part.leads["lead_id"])
    own = crm.activities["lead_id"].isin(leads["lead_id"]).sum()
    assert sum(len(p.activities) for p in parts) == own

    features = [partition_features(p, as_of, settings.features) for p in parts]
    scored = [
        score_partition(f, model, rules, registry, settings.scoring, p.leads)
        for f, p in zip(features, parts, strict=True)
    ]
    raw = np.concatenate([s[RAW_SCORE].to_numpy() for s in scored])
    rank, percentile = rank_and_percentile(raw)
    rule = np.concatenate([s["rule_score"].to_numpy() for s in scored])
    rule_rank = rule_ranks(rule, raw)  # global across partitions, like rank
    cuts = np.cumsum([0, *(len(s) for s in scored)])
    frames = [
        with_rank(s, rank[a:b], percentile[a:b], rule_rank[a:b])
        for s, a, b in zip(scored, cuts[:-1], cuts[1:], strict=True)
    ]
    pdt.assert_frame_equal(_by_lead(pd.concat(frames)), _by_lead(whole))


@pytest.mark.parametrize("rows", [13, 97])
def test_spilled_partitions_rank_and_stream_like_the_whole(world, rows, tmp_path):
    """Scored, spilled, ranked once, streamed back (per partition and by rank range)."""
    _, settings, crm, model, rules, registry = world
    leads = crm.leads.iloc[:300]
    as_of = crm.end
    whole_X = build_features(leads, crm.activities, entities_at(leads, as_of), settings.features)
    whole = score_frame(whole_X, model, rules, registry, settings.scoring, leads)
    spilled = []
    for i, part in enumerate(partition_leads(leads, crm.activities, rows)):
        X = partition_features(part, as_of, settings.features)
        frame = score_partition(X, model, rules, registry, settings.scoring, part.leads)
        spilled.append(spill(frame, tmp_path, i))
    assert len(spilled) == -(-len(leads) // rows) and sorted(tmp_path.iterdir())
    ranking = Ranking.of(spilled)
    expected = _by_lead(whole.drop(columns=[RAW_SCORE]))
    streamed = pd.concat(ranked_partitions(spilled, ranking))
    pdt.assert_frame_equal(_by_lead(streamed), expected, check_dtype=False)
    chunks = list(by_rank(spilled, ranking, 40))
    assert [len(c) for c in chunks] == [40] * 7 + [20]
    in_rank_order = pd.concat(chunks, ignore_index=True)
    assert in_rank_order["rank"].tolist() == list(range(1, len(leads) + 1))
    assert in_rank_order["lead_id"].tolist() == whole["lead_id"].tolist()


def test_spilled_files_are_read_back_a_record_batch_at_a_time(tmp_path, monkeypatch):
    """A spill is written in record batches of PUBLISH_SLICE_ROWS and streamed back in
    slices of at most ``rows``, with the right ranks: memory holds one slice, not the file."""
    import pyarrow as pa

    from leadscore.pipelines import spilled as spilled_module

    monkeypatch.setattr(spilled_module, "PUBLISH_SLICE_ROWS", 40)
    frames = []
    for i, n in enumerate((100, 0, 35)):
        raw = np.linspace(1, -1, n) + i
        frame = pd.DataFrame({c: ["x"] * n for c in SCORE_COLUMNS if "rank" not in c})
        frame = frame.drop(columns=["percentile"]).assign(
            lead_id=[f"L{i}-{k}" for k in range(n)], rule_score=raw, **{RAW_SCORE: raw}
        )
        frames.append(frame)
    parts = [spill(f, tmp_path, i) for i, f in enumerate(frames)]
    with pa.OSFile(str(parts[0].path)) as source:
        reader = pa.ipc.open_file(source)
        assert [reader.get_batch(k).num_rows for k in range(reader.num_record_batches)] == [
            40,
            40,
            20,
        ]
    ranking = Ranking.of(parts)
    pieces = list(spilled_module.ranked_partitions(parts, ranking, rows=30))
    assert [len(p) for p in pieces] == [30, 10, 30, 10, 20, 0, 30, 5]
    streamed = pd.concat(pieces, ignore_index=True)
    assert streamed["lead_id"].tolist() == [x for f in frames for x in f["lead_id"]]
    assert (
        streamed["rank"].tolist() == np.concatenate([ranking.part(i)[0] for i in range(3)]).tolist()
    )


def test_rule_rank_is_global_across_spilled_partitions(tmp_path):
    """Two partitions' rule points ranked once give the whole frame's rule ranks (unclipped
    points: 250 ranks above 120; equal points ordered by the model's log-odds)."""
    points = np.array([120.0, 250.0, -7.5, 60.0, 120.0, 60.0, 800.0])
    raw = np.array([0.3, -1.0, 2.0, 0.1, 0.9, 0.5, -2.0])
    whole = rule_ranks(points, raw)
    assert whole.tolist() == [4, 2, 7, 6, 3, 5, 1]
    frames = [
        pd.DataFrame({"lead_id": ids, "rule_score": points[ids], RAW_SCORE: raw[ids]})
        for ids in (np.arange(0, 3), np.arange(3, 7))
    ]
    ranking = Ranking.of([spill(f, tmp_path, i) for i, f in enumerate(frames)])
    assert np.concatenate([ranking.rule_part(0), ranking.rule_part(1)]).tolist() == whole.tolist()


def _scores(n: int, offset: int = 0) -> pd.DataFrame:
    ids = [f"L{offset + i}" for i in range(n)]
    return pd.DataFrame(
        {
            "lead_id": ids,
            "owner": None,
            "segment": None,
            "probability": 0.5,
            "score": 50,
            "grade": "A",
            "rank": np.arange(offset + 1, offset + n + 1),
            "percentile": 50.0,
            "fit": 0.0,
            "engagement": 0.0,
            "rule_score": 10.0,
            "rule_grade": "C",
            "reasons": "[]",
            **dict.fromkeys(V4_COLUMNS),
            **dict.fromkeys(V6_COLUMNS),
        }
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_publish_stream_is_one_atomic_batch(tmp_path, backend):
    with backend_url(backend, tmp_path) as url:
        _publish_stream_is_one_atomic_batch(url)


def _publish_stream_is_one_atomic_batch(url: str) -> None:
    store = ScoreStore(StoreConfig(url=url, chunk_rows=7))
    store.create()
    as_of = pd.Timestamp("2026-11-01", tz="UTC").to_pydatetime()
    first = store.publish_stream(
        (_scores(10, k * 10) for k in range(3)), model_version="1", as_of=as_of
    )
    assert first.n_rows == 30 and first.status == "published"
    assert len(store.read_batch()) == 30

    def broken():
        yield _scores(10)
        raise RuntimeError("worker lost")

    with pytest.raises(RuntimeError, match="worker lost"):
        store.publish_stream(broken(), model_version="2", as_of=as_of)
    with pytest.raises(IntegrityError):  # a lead in two partitions: primary key
        store.publish_stream([_scores(5), _scores(5)], model_version="3", as_of=as_of)
    with pytest.raises(ValueError, match="empty"):
        store.publish_stream(iter([]), model_version="4", as_of=as_of)
    assert store.current_batch().batch_id == first.batch_id
    statuses = sorted(b.status for b in store.batches())
    assert statuses == ["failed", "failed", "published"]
    store.close()


@pytest.mark.slow
def test_dask_cluster_publishes_exactly_the_local_scores(world):
    from distributed import LocalCluster
    from prefect import flow
    from prefect.testing.utilities import prefect_test_harness

    from leadscore.features.config import MarketConfig
    from leadscore.features.market import OutcomeHistory
    from leadscore.pipelines.score_flow import score_batch

    crm, model = world[2], world[3]
    # the leads table's outcome history rides along to every worker (features.market on:
    # a partition without it refuses to score; the model here simply ignores the column)
    market = MarketConfig(leads=100, min_leads=10)
    history = OutcomeHistory.of(crm.leads, market)

    @flow(name="score-batch-test")
    def run(runner: dict) -> str:
        configured = _flow_settings(world, runner["kind"], runner, 150, market=market)
        open_leads = crm.leads[crm.leads["status"] == "open"]
        parts = partition_leads(open_leads, crm.activities, configured.scoring.partition_rows)
        return score_batch(parts, model, "1", crm.end, configured, history)["batch_id"]

    with prefect_test_harness(server_startup_timeout=120):
        local_id = run({"kind": "local", "local_workers": 2})
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster:
            dask_id = run({"kind": "dask", "address": cluster.scheduler_address})

    (local, local_csv), (on_dask, dask_csv) = (
        _published(world, "local", local_id),
        _published(world, "dask", dask_id),
    )
    assert len(local) == (crm.leads["status"] == "open").sum() > 150  # several partitions
    pdt.assert_frame_equal(local, on_dask)
    pdt.assert_frame_equal(local_csv, dask_csv)
    assert local_csv["lead_id"].tolist() == local["lead_id"].tolist()  # sorted by rank


def test_the_second_pass_runs_on_its_own_threads(world):
    """``runner.finish_workers`` sizes the second pass's thread pool, ``local_workers``
    the first's; a Dask runner serves both passes."""
    from prefect_dask import DaskTaskRunner

    from leadscore.pipelines.score_flow import task_runner

    settings = world[1]
    local = settings.model_copy(
        update={"runner": settings.runner.model_validate({"local_workers": 1, "finish_workers": 3})}
    )
    assert task_runner(local)._max_workers == 1
    assert task_runner(local, finishing=True)._max_workers == 3
    on_dask = settings.model_copy(
        update={"runner": settings.runner.model_validate({"kind": "dask", "address": "tcp://x:1"})}
    )
    assert isinstance(task_runner(on_dask, finishing=True), DaskTaskRunner)


@pytest.mark.slow
def test_two_finishing_threads_publish_exactly_what_one_does(world):
    """Partitions finished two at a time (``runner.finish_workers: 2``) publish the same
    rows, in the same order, and the same CSV as one at a time."""
    from prefect import flow
    from prefect.testing.utilities import prefect_test_harness

    from leadscore.pipelines.score_flow import score_batch

    crm, model = world[2], world[3]

    @flow(name="finish-workers-test")
    def run(workers: int) -> str:
        configured = _flow_settings(world, f"finish-{workers}", {"finish_workers": workers}, 50)
        open_leads = crm.leads[crm.leads["status"] == "open"]
        parts = partition_leads(open_leads, crm.activities, configured.scoring.partition_rows)
        assert len(parts) >= 4
        return score_batch(parts, model, "1", crm.end, configured)["batch_id"]

    with prefect_test_harness(server_startup_timeout=120):
        ids = {workers: run(workers) for workers in (1, 2)}
    (one, one_csv), (two, two_csv) = (_published(world, f"finish-{w}", ids[w]) for w in (1, 2))
    pdt.assert_frame_equal(one, two)
    pdt.assert_frame_equal(one_csv, two_csv)
