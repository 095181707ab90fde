"""The nightly batch's two passes over its partitions: predict everything, then finish
each partition while the one before it is published.

Ranks are global, and the store wants every row with its rank, so nothing can be
published before every lead is scored. Scoring each partition completely first left the
store's writes (on SQLite a writer process busy ~17 us a row) for the end, when there is
nothing left to overlap them with. So the batch runs in two passes:

1. :func:`predict_and_spill` (per partition): features, the model's log-odds and
   calibrated probability, exact contributions, rule points: the work no run can skip
   (the bench's "floor"). The features, contributions and scores are spilled to the
   run's folder (on local runs by a writer thread, ``PartitionRun.spill_behind``, while
   the next partition is predicted: on disk once it is waited for, before the ranking;
   ~1.5 s of pass 1's one thread at 1M); only what ranks the batch (raw score and rule
   points, 16 bytes a lead) stays in memory, until the batch is ranked
   (:func:`rank_predicted`, 8 bytes a lead kept: :class:`~leadscore.pipelines.spilled.Ranking`).
2. :func:`score_and_spill` (per partition, once every partition is predicted and the
   batch ranked): reasons, rule reasons, sub-scores, drift counts, next steps, routing
   pool, the leads' facts, from the spilled features and contributions; its scored frame
   is spilled (``pipelines.spilled``: handed over in memory when the publisher is in this
   process, ``PartitionRun.hand_over``), and the publisher streams it into the store
   while the next partition is finished (``pipelines.batch.publish_spilled``).

The second pass runs in worker threads beside the publisher's (the score flow's task
runner, ``runner.finish_workers`` of them: one by default; two keep both cores busy
beside the publisher and the SQLite writer, for a second partition in memory); its
compiled kernels (facts, reasons, next steps) let go of the GIL while they run, so the
publisher's thread is not kept waiting by them.

A partition's output is the same as scoring it in one go (:func:`score_and_spill`
without ``predicted``), byte for byte: only where and when each step runs changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from leadscore.features.accounts import AccountHistory
from leadscore.features.market import OutcomeHistory
from leadscore.models.base import registry_of
from leadscore.models.monitor.result import ARCHIVE_COLUMNS
from leadscore.models.nurture.next_step import with_next_steps
from leadscore.models.routing.pool import partition_pool
from leadscore.models.rules import RuleScorer
from leadscore.models.scoring import (
    Partition,
    Predicted,
    StageTimes,
    partition_features,
    predict_partition,
    score_partition,
)
from leadscore.models.training import FittedModel
from leadscore.pipelines.archive import partition_counts
from leadscore.pipelines.background import InOrder
from leadscore.pipelines.batch import stage, with_facts
from leadscore.pipelines.partitioned import PartFile
from leadscore.pipelines.runtime import release_free_memory
from leadscore.pipelines.settings import Settings
from leadscore.pipelines.spilled import (
    HandOver,
    Ranking,
    Spilled,
    read_arrow,
    spill,
    write_arrow,
)


@dataclass(frozen=True)
class PartitionRun:
    """What every partition of one nightly run is scored with, whichever pass: the
    scoring time, the model and rules, the settings, the run's spill folder (every
    worker must see it), and the leads table's outcome history (``features.market``) and
    second tables' accounts (``data.joins``) when those are on."""

    as_of: pd.Timestamp
    model: FittedModel
    rules: RuleScorer
    settings: Settings
    folder: Path
    history: OutcomeHistory | None = None
    accounts: AccountHistory | None = None
    hand_over: HandOver | None = None  # the publisher is in this process (see spilled.py)
    spill_behind: InOrder | None = None  # pass 1's files written in a thread (local runs)

    def features(self, part: Partition) -> pd.DataFrame:
        """The partition's features as of the scoring time (the one feature path)."""
        config = self.settings.features
        return partition_features(part, self.as_of, config, self.history, self.accounts)


@dataclass(frozen=True)
class PredictedFile:
    """A partition after the first pass: its features, contributions and scores on disk;
    in memory only what ranks it (``raw``, ``rule_points``), until the batch is ranked
    (:meth:`ranked`). Keeping the probability and family sums of every partition in
    memory through the second pass held ~32 more bytes a lead (~100 MB at 3M)."""

    features: Path
    contributions: Path
    scores: Path  # raw, probability, rule points and family sums (.npz)
    n: int
    raw: np.ndarray | None = None
    rule_points: np.ndarray | None = None

    def __len__(self) -> int:
        return self.n

    def ranked(self) -> PredictedFile:
        """This partition without its in-memory scores (its file keeps them)."""
        return replace(self, raw=None, rule_points=None)

    def load(self) -> tuple[Predicted, Path]:
        """The :class:`Predicted` (contributions memory-mapped) and the features' file."""
        contributions = np.load(self.contributions, mmap_mode="r")
        with np.load(self.scores, allow_pickle=False) as saved:
            families = {k[len(_FAMILY) :]: saved[k] for k in saved.files if k.startswith(_FAMILY)}
            raw, probability, rule = saved["raw"], saved["probability"], saved["rule_points"]
        return Predicted(raw, probability, contributions, families, rule), self.features

    def remove(self) -> None:
        """Delete the spilled features, contributions and scores (done with, or failed)."""
        for path in (self.features, self.contributions, self.scores):
            path.unlink(missing_ok=True)


_FAMILY = "family:"


def rank_predicted(predicted: Sequence[PredictedFile]) -> tuple[Ranking, list[PredictedFile]]:
    """The batch's global ranks from every partition's first pass, and the partitions
    without their in-memory scores (:meth:`PredictedFile.ranked`), for the second pass."""
    raws, rules = [], []
    for p in predicted:
        if p.raw is None or p.rule_points is None:
            raise ValueError(f"{p.scores.name}: its scores were let go before it was ranked")
        raws.append(p.raw)
        rules.append(p.rule_points)
    ranking = Ranking.of_scores(raws, rules)
    return ranking, [p.ranked() for p in predicted]


def _save_scores(predicted: Predicted, path: Path) -> Path:
    """A partition's scores and family sums as one uncompressed .npz (exact float64)."""
    families = {f"{_FAMILY}{name}": values for name, values in predicted.families.items()}
    with path.open("wb") as sink:
        np.savez(
            sink,
            raw=predicted.raw,
            probability=predicted.probability,
            rule_points=predicted.rule_points,
            **families,
        )
    return path


def _load(part: Partition | PartFile, times: StageTimes | None) -> Partition:
    with stage(times, "partition"):
        return part.load() if isinstance(part, PartFile) else part


def predict_and_spill(
    part: Partition | PartFile, index: int, run: PartitionRun, times: StageTimes | None = None
) -> PredictedFile:
    """Pass 1 of one partition: its features, predictions, exact contributions and rule
    points (``models.scoring.predict_partition``); features, contributions and scores go
    to the run's folder, written here or, with ``run.spill_behind``, in its thread (the
    "spill" stage is then the wait for the partition before)."""
    loaded = _load(part, times)
    with stage(times, "features"):
        X = run.features(loaded)
    predicted = predict_partition(X, run.model, run.rules, registry_of(run.model), times)
    del loaded
    folder = Path(run.folder)
    features = folder / f"features-{index:06d}.arrow"
    contributions = folder / f"contributions-{index:06d}.npy"
    scores = folder / f"scores-{index:06d}.npz"
    with stage(times, "spill"):  # behind: only the wait for the partition before
        if run.spill_behind is None:
            _write_predicted(X, predicted, features, contributions, scores)
        else:
            run.spill_behind.submit(_write_predicted, X, predicted, features, contributions, scores)
    p = predicted
    return PredictedFile(features, contributions, scores, len(p.raw), p.raw, p.rule_points)


def _write_predicted(
    X: pd.DataFrame, predicted: Predicted, features: Path, contributions: Path, scores: Path
) -> None:
    """Pass 1's files of a partition: its features, exact contributions and scores."""
    write_arrow(X, features)
    np.save(contributions, predicted.contributions, allow_pickle=False)
    _save_scores(predicted, scores)


def score_and_spill(
    part: Partition | PartFile,
    index: int,
    run: PartitionRun,
    times: StageTimes | None = None,
    predicted: PredictedFile | None = None,
) -> Spilled:
    """One partition scored completely (features, probability, exact reasons, rules, the
    leads' facts, drift counts, routing pool) and spilled to the run's folder; ranked once
    every raw score is. ``predicted``: its first pass (:func:`predict_and_spill`), whose
    files are read here and then removed; None computes it here. The score flow's task
    body, and what ``make bench`` times by stage."""
    loaded = _load(part, times)
    if predicted is None:
        with stage(times, "features"):
            X = run.features(loaded)
        first = None
    else:
        with stage(times, "spill"):
            first, features = predicted.load()
            X = read_arrow(features)
    model, settings, registry = run.model, run.settings, registry_of(run.model)
    frame = score_partition(
        X, model, run.rules, registry, settings.scoring, loaded.leads, times, first
    )
    del first
    if predicted is not None:
        predicted.remove()
    counts = partition_counts(X, frame, model, times)  # vs the model's reference (monitor)
    frame = with_next_steps(
        frame, X, loaded, run.as_of, model, settings, run.history, run.accounts, times
    )
    with stage(times, "pool"):  # its leads to route to call lists (None: no reps)
        pool = partition_pool(frame, loaded.leads, settings.routing)
    with stage(times, "facts"):
        facts = (settings.features, settings.data.display.columns())
        frame = with_facts(frame, loaded, run.as_of, *facts)
    del X, loaded
    with stage(times, "spill"):
        # handed over: the file keeps what the archive reads
        spilled = spill(frame, run.folder, index, counts, pool, run.hand_over, ARCHIVE_COLUMNS)
    del frame
    release_free_memory()
    return spilled
