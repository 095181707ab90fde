"""The nightly batch's two passes (pipelines/passes.py) and the publish that streams the
second (pipelines/batch.py ``publish_spilled`` with a ``ranking``).

Pinned: a partition predicted first and finished later spills the very bytes of one
scored in one go (and its first pass's files are gone once it is finished); the publish
takes each partition as it arrives, not once all are here, and publishes what the
all-at-once path publishes, store rows and CSV; a partition that never arrives, or a
second pass that fails, publishes nothing and keeps the old CSV.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from leadscore.models.scoring import partition_leads, rank_and_percentile, rule_ranks
from leadscore.pipelines import batch as batch_module
from leadscore.pipelines import passes as passes_module
from leadscore.pipelines.background import InOrder
from leadscore.pipelines.passes import (
    PartitionRun,
    predict_and_spill,
    rank_predicted,
    score_and_spill,
)
from leadscore.pipelines.spilled import Ranking, Spilled, spill
from leadscore.serving.export import csv_batch_id, write_scores_csv
from leadscore.serving.store import ScoreStore, StoreConfig
from tests.conftest import publish_test_batch
from tests.pipelines.test_partitions import world  # noqa: F401  (the fitted model, once)
from tests.serving.test_store import AS_OF, make_scores


def _parts(world, n: int = 260, rows: int = 100):  # noqa: F811
    crm = world[2]
    return partition_leads(crm.leads.iloc[:n], crm.activities, rows)


def test_two_passes_spill_the_bytes_of_one(world, tmp_path):  # noqa: F811
    """Pass 1 then pass 2 of each partition (after all are predicted, as the flow runs
    them) == each scored in one go: same spilled file, raw scores, rule points, drift
    counts and routing pool, pass 2 reading pass 1's scores from its files alone (the
    in-memory ones let go once ranked); pass 1's files are removed."""
    _, settings, crm, model, rules, _ = world
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir(), two.mkdir()
    parts = _parts(world)
    assert [len(p.leads) for p in parts] == [100, 100, 60]
    run_one = PartitionRun(crm.end, model, rules, settings, one)
    run_two = PartitionRun(crm.end, model, rules, settings, two)
    firsts = [predict_and_spill(p, i, run_two) for i, p in enumerate(parts)]
    assert sorted(f.name for f in two.iterdir()) == [
        f"{kind}-{i:06d}.{ext}"
        for kind, ext in (("contributions", "npy"), ("features", "arrow"), ("scores", "npz"))
        for i in range(3)
    ]
    ranking, ranked = rank_predicted(firsts)
    let_go = [(r.raw, r.rule_points, len(r)) for r in ranked]
    assert let_go == [(None, None, n) for n in (100, 100, 60)]
    with pytest.raises(ValueError, match="let go before it was ranked"):
        rank_predicted(ranked)
    wholes = []
    for i, (part, first) in enumerate(zip(parts, firsts, strict=True)):
        whole = score_and_spill(part, i, run_one)
        wholes.append(whole)
        split = score_and_spill(part, i, run_two, predicted=ranked[i])
        assert split.path.read_bytes() == whole.path.read_bytes()
        assert np.array_equal(split.raw, whole.raw) and np.array_equal(first.raw, whole.raw)
        assert np.array_equal(split.rule, whole.rule)
        assert np.array_equal(first.rule_points, whole.rule)
        assert (split.counts is None) == (whole.counts is None)
        if whole.counts is not None:
            assert repr(split.counts) == repr(whole.counts)
        if whole.pool is not None:
            pd.testing.assert_frame_equal(split.pool, whole.pool)
        assert not any(f.exists() for f in (first.features, first.contributions, first.scores))
    assert sorted(f.name for f in two.iterdir()) == [f"part-{i:06d}.arrow" for i in range(3)]
    whole_ranking = Ranking.of(wholes)
    for i in range(3):
        for got, want in zip(ranking.part(i), whole_ranking.part(i), strict=True):
            assert got.dtype == want.dtype and np.array_equal(got, want)
        assert np.array_equal(ranking.rule_part(i), whole_ranking.rule_part(i))


def test_pass_one_written_behind_leaves_the_same_files(world, tmp_path):  # noqa: F811
    """``run.spill_behind`` (the local runs' pass 1): each partition's files are written
    in that thread while the next is predicted, and once it is waited for they are the
    bytes the plain pass writes; the in-memory scores that rank the batch are the same."""
    _, settings, crm, model, rules, _ = world
    plain, behind = tmp_path / "plain", tmp_path / "behind"
    plain.mkdir(), behind.mkdir()
    parts = _parts(world)
    wants = [
        predict_and_spill(p, i, PartitionRun(crm.end, model, rules, settings, plain))
        for i, p in enumerate(parts)
    ]
    with InOrder("spill-behind") as writer:
        run = PartitionRun(crm.end, model, rules, settings, behind, spill_behind=writer)
        gots = [predict_and_spill(p, i, run) for i, p in enumerate(parts)]
    assert len(list(behind.iterdir())) == len(list(plain.iterdir())) == 9
    for got, want in zip(gots, wants, strict=True):
        assert np.array_equal(got.raw, want.raw)
        assert np.array_equal(got.rule_points, want.rule_points)
        for mine, theirs in zip(
            (got.features, got.contributions, got.scores),
            (want.features, want.contributions, want.scores),
            strict=True,
        ):
            assert mine.parent == behind and mine.name == theirs.name
            assert mine.read_bytes() == theirs.read_bytes()


def test_a_pass_one_write_that_fails_behind_fails_the_pass(world, tmp_path, monkeypatch):  # noqa: F811
    """A partition's files that cannot be written in the writer's thread raise in the
    pass (at the next partition's hand-off or at the end), never a ranking without them."""
    _, settings, crm, model, rules, _ = world
    parts = _parts(world)

    def disk_full(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(passes_module.np, "save", disk_full)
    with pytest.raises(OSError, match="No space left"), InOrder("spill-behind") as writer:
        run = PartitionRun(crm.end, model, rules, settings, tmp_path, spill_behind=writer)
        for i, p in enumerate(parts):
            predict_and_spill(p, i, run)


def test_ranking_holds_8_bytes_a_lead_and_gives_the_one_process_ranks():
    """Ranks kept as int32, the percentile derived per partition: exactly
    ``rank_and_percentile`` and ``rule_ranks`` over the whole batch (ties included)."""
    rng = np.random.default_rng(7)
    raw = np.round(rng.normal(size=1_001), 1)  # many ties
    rule = np.round(rng.uniform(0, 50, size=1_001))
    cuts = [0, 400, 401, 1_001]
    pieces = list(itertools.pairwise(cuts))
    ranking = Ranking.of_scores([raw[a:b] for a, b in pieces], [rule[a:b] for a, b in pieces])
    assert ranking.rank.nbytes + ranking.rule_rank.nbytes == 8 * 1_001
    rank, percentile = rank_and_percentile(raw)
    for i, (a, b) in enumerate(pieces):
        got_rank, got_percentile = ranking.part(i)
        assert got_rank.dtype == np.int64 and np.array_equal(got_rank, rank[a:b])
        assert np.array_equal(got_percentile, percentile[a:b])  # bit for bit
        assert np.array_equal(ranking.rule_part(i), rule_ranks(rule, raw)[a:b])
    assert len(ranking) == 1_001 and ranking.size(1) == 1


def _store_and_parts(tmp_path: Path):
    store = ScoreStore(StoreConfig(url=f"sqlite:///{tmp_path}/s.db"))
    store.create()
    old = store.publish(make_scores(5, seed=1), model_version="6", as_of=AS_OF)
    latest = write_scores_csv(store.read_batch(), tmp_path / "out" / "latest.csv")
    frame = make_scores(9).drop(columns=["rank", "percentile"])
    raw = np.linspace(0.9, -0.9, 9)[[3, 0, 8, 1, 5, 2, 7, 4, 6]]  # ranks across partitions
    parts = [spill(frame.iloc[:4].assign(raw_score=raw[:4]), tmp_path, 0)]
    parts.append(spill(frame.iloc[4:7].assign(raw_score=raw[4:7]), tmp_path, 1))
    parts.append(spill(frame.iloc[7:].assign(raw_score=raw[7:]), tmp_path, 2))
    return store, old, latest, parts


def _publish(store: ScoreStore, parts, latest: Path, ranking: Ranking | None = None):
    return publish_test_batch(parts, store, latest, AS_OF, ranking=ranking)


def test_the_publish_takes_each_partition_as_it_arrives(tmp_path, monkeypatch):
    """With the ranks known first, partition i is streamed into the store before
    partition i + 1 is asked for, and the batch and CSV equal the all-at-once path's."""
    store, _, latest, parts = _store_and_parts(tmp_path)
    events: list[tuple[str, int]] = []
    read = batch_module.ranked_slices

    def recorded(part: Spilled, i: int, ranking: Ranking) -> Iterator[pd.DataFrame]:
        events.append(("published", i))
        yield from read(part, i, ranking)

    monkeypatch.setattr(batch_module, "ranked_slices", recorded)

    def arriving() -> Iterator[Spilled]:
        for i, part in enumerate(parts):
            events.append(("finished", i))
            yield part

    ranking = Ranking.of_scores([p.raw for p in parts], [p.rule for p in parts])
    streamed = _publish(store, arriving(), latest, ranking)
    assert events == [(kind, i) for i in range(3) for kind in ("finished", "published")]
    streamed_rows = store.read_batch().drop(columns=["batch_id"])
    streamed_csv = pd.read_csv(latest).drop(columns=["batch_id"])
    assert csv_batch_id(latest) == streamed.batch.batch_id == store.current_batch().batch_id

    whole = _publish(store, parts, latest)  # all here, ranked by publish_spilled itself
    assert csv_batch_id(latest) == whole.batch.batch_id == store.current_batch().batch_id
    pd.testing.assert_frame_equal(store.read_batch().drop(columns=["batch_id"]), streamed_rows)
    pd.testing.assert_frame_equal(pd.read_csv(latest).drop(columns=["batch_id"]), streamed_csv)
    assert streamed_csv["rank"].tolist() == list(range(1, 10))
    assert streamed.top["lead_id"].tolist() == whole.top["lead_id"].tolist()
    assert len(streamed.top) == 3
    store.close()


def _failed(second_pass: Iterator[Spilled], ranking: Ranking, tmp_path: Path, match: str):
    """Publishing ``second_pass`` raises ``match``; the old batch and CSV stay."""
    store, old, latest, _ = _store_and_parts(tmp_path / "store")
    before = latest.read_bytes()
    with pytest.raises((ValueError, RuntimeError), match=match):
        _publish(store, second_pass, latest, ranking)
    assert store.current_batch().batch_id == old.batch_id
    assert sorted(b.status for b in store.batches()) == ["failed", "published"]
    assert latest.read_bytes() == before
    assert sorted(p.name for p in latest.parent.iterdir()) == ["latest.csv"]
    store.close()


def test_a_partition_that_never_arrives_publishes_nothing(tmp_path):
    _, _, _, parts = _store_and_parts(tmp_path)
    ranking = Ranking.of(parts)
    _failed(iter(parts[:2]), ranking, tmp_path, "2 partitions arrived, 3 ranked")


def test_a_partition_not_the_one_ranked_publishes_nothing(tmp_path):
    _, _, _, parts = _store_and_parts(tmp_path)
    ranking = Ranking.of(parts)
    swapped = iter([parts[0], parts[2], parts[1]])  # 2 leads where 3 were ranked
    _failed(swapped, ranking, tmp_path, "partition 1 has 2 leads, its ranks 3")


def test_a_second_pass_that_fails_midway_publishes_nothing(tmp_path):
    _, _, _, parts = _store_and_parts(tmp_path)

    def lost() -> Iterator[Spilled]:
        yield parts[0]
        raise RuntimeError("worker lost during pass 2")

    _failed(lost(), Ranking.of(parts), tmp_path, "worker lost")


def test_a_spilled_partition_keeps_its_scores_not_its_frame(tmp_path):
    """``Spilled.raw`` and ``.rule`` are held for the whole batch: they own their 16 bytes
    a lead, not a view of the scored frame's block of float columns (which kept every
    float column of every partition alive to the end of the publish)."""
    n = 1_000
    floats = {f"x{i}": np.arange(n, dtype=np.float64) for i in range(8)}
    frame = pd.DataFrame(
        {"lead_id": [f"L{i}" for i in range(n)], "raw_score": np.linspace(-1, 1, n)}
        | {"rule_score": np.arange(n, dtype=np.float64)}
        | floats
    ).copy()  # consolidated: the float columns in one block
    assert frame["raw_score"].to_numpy(dtype=np.float64).base is not None  # the trap
    part = spill(frame, tmp_path, 0)
    for kept in (part.raw, part.rule):
        assert kept.base is None and kept.nbytes == 8 * n
    assert np.array_equal(part.raw, frame["raw_score"]) and len(part) == n
