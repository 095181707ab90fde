"""`make bench --runner dask`: the bench's partitions scored on a local Dask cluster.

The score flow's Dask runner (``runner.kind: dask``, through prefect-dask) submits two
tasks per partition, one per pass (``pipelines.passes``: ``predict_and_spill``, then, once
the batch is ranked, ``score_and_spill``); here the same bodies run on a
``distributed.LocalCluster`` of ``workers`` processes (one thread each), without a Prefect
server, and each task also reports its own stage times, its wall time, its worker and that
worker's peak memory, so the per-partition cost (what ``docs/scale.md`` multiplies out to
100M leads) is measured where the work ran. The spilled partitions come back to this
process (their Arrow files are in a folder both see) and are published as in the local
run. ``same_published`` then checks the two runs' exports row for row.
"""

from __future__ import annotations

import resource
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from itertools import zip_longest
from pathlib import Path
from typing import Any

from leadscore.models.scoring import StageTimes
from leadscore.pipelines.batch import publish_spilled
from leadscore.pipelines.partitioned import PartFile
from leadscore.pipelines.passes import (
    PartitionRun,
    PredictedFile,
    predict_and_spill,
    rank_predicted,
    score_and_spill,
)
from leadscore.pipelines.spilled import Ranking, Spilled
from leadscore.serving.store import ScoreStore


def _where() -> str:
    """The Dask worker this runs on, or "local" (the bench's own process)."""
    try:
        from distributed import get_worker

        return str(get_worker().name)
    except (ImportError, ValueError):  # not on a worker
        return "local"


def _cost(index: int, leads: int, times: StageTimes, wall: float, step: int) -> dict[str, Any]:
    return {
        "partition": index,
        "pass": step,
        "leads": leads,
        "worker": _where(),
        "seconds": round(wall, 3),
        "stages": {k: round(v, 3) for k, v in times.seconds.items()},
        "worker_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def timed_predict(
    part: PartFile, index: int, run: PartitionRun
) -> tuple[PredictedFile, dict[str, Any]]:
    """Pass 1 (``predict_and_spill``) on one partition, with what it cost where it ran."""
    times = StageTimes()
    start = time.perf_counter()
    done = predict_and_spill(part, index, run, times)
    cost = _cost(index, len(part), times, time.perf_counter() - start, 1)
    if run.spill_behind is None:  # else its files are still being written, in that thread
        cost["spilled_bytes"] = spilled_bytes(done)
    return done, cost


def spilled_bytes(done: PredictedFile) -> int:
    """Bytes of a partition's pass-1 files (features and contributions), once written."""
    return done.features.stat().st_size + done.contributions.stat().st_size


def timed_partition(
    part: PartFile, index: int, run: PartitionRun, predicted: PredictedFile | None = None
) -> tuple[Spilled, dict[str, Any]]:
    """``score_and_spill`` on one partition (pass 2 when ``predicted``, else both), with
    what it cost where it ran."""
    times = StageTimes()
    start = time.perf_counter()
    spilled = score_and_spill(part, index, run, times, predicted=predicted)
    cost = _cost(index, len(part), times, time.perf_counter() - start, 2)
    # what the partition leaves behind until publishing: its spilled file on disk; in
    # memory its raw scores and rule points (16 bytes a lead) and its routing pool
    cost["spilled_bytes"] = spilled.path.stat().st_size
    pool = spilled.pool
    cost["pool_bytes"] = 0 if pool is None else int(pool.memory_usage(deep=True).sum())
    cost["pool_rows"] = 0 if pool is None else len(pool)
    return spilled, cost


def score_on_dask(
    parts: Sequence[PartFile], run: PartitionRun, workers: int
) -> tuple[list[Spilled], list[dict[str, Any]], float, Ranking]:
    """Score ``parts`` on a fresh LocalCluster of ``workers`` single-thread processes, in
    the score flow's two passes (``pipelines.passes``), the ranks computed between them.

    Returns the spilled partitions in partition order, one cost record per partition and
    pass, the seconds the cluster took to start (not part of the scoring time), and the
    ranks.
    """
    from distributed import Client, LocalCluster

    start = time.perf_counter()
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            local_directory=str(run.folder),
        ) as cluster,
        Client(cluster) as client,
    ):
        started = time.perf_counter() - start
        shared = client.scatter(run, broadcast=True)  # the model (SHAP tables) once a worker
        firsts = client.gather(
            [
                client.submit(timed_predict, p, i, shared, pure=False, key=f"a{i}")
                for i, p in enumerate(parts)
            ]
        )
        predicted = [f for f, _ in firsts]
        ranking, predicted = rank_predicted(predicted)
        seconds = client.gather(
            [
                client.submit(timed_partition, p, i, shared, predicted[i], pure=False, key=f"b{i}")
                for i, p in enumerate(parts)
            ]
        )
    costs = [c for _, c in firsts] + [c for _, c in seconds]
    return [s for s, _ in seconds], costs, started, ranking


def per_worker(costs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per worker: partition passes run, their summed seconds, and its peak memory."""
    out: dict[str, dict[str, float]] = {}
    for cost in costs:
        mine = out.setdefault(cost["worker"], {"partitions": 0, "seconds": 0.0, "peak_mb": 0})
        mine["partitions"] += cost.get("pass", 2) == 2  # a partition's two passes count once
        mine["seconds"] = round(mine["seconds"] + cost["seconds"], 2)
        mine["peak_mb"] = max(mine["peak_mb"], cost["worker_peak_rss_mb"])
    return out


def local_reference(
    parts: Sequence[PartFile],
    run: PartitionRun,
    store: ScoreStore,
    batch_id: str,
    out: Path,
) -> dict[str, Any]:
    """After a Dask run: the same partitions scored in this process, each in one go (not
    in two passes), and published as a second batch of the same store with its own CSV,
    and whether both CSVs are the same rows (``dask_same_scores``); the local scoring's
    wall time beside the cluster's."""
    settings = run.settings
    with tempfile.TemporaryDirectory(prefix="bench-local-", dir=out) as folder:
        here = replace(run, folder=Path(folder))
        start = time.perf_counter()
        spilled = [timed_partition(p, i, here)[0] for i, p in enumerate(parts)]
        local_s = time.perf_counter() - start
        csv = settings.output.scores_csv.with_name("scores-local.csv")
        reference = publish_spilled(
            spilled,
            store,
            model_version="bench",
            as_of=run.as_of,
            grade_order=list(settings.scoring.grades),
            csv_path=csv,
            chunk_rows=settings.scoring.partition_rows,
            top=10,
            routing=settings.routing if settings.routing.reps else None,
        )
    same = same_published(
        settings.output.scores_csv, batch_id, reference.csv, reference.batch.batch_id
    )
    return {"local_score_wall_s": round(local_s, 2), "dask_same_scores": same}


def same_published(csv_a: Path, batch_a: str, csv_b: Path, batch_b: str) -> bool:
    """Whether two CSV exports are the same bytes, line for line, once each line's batch
    id (the only field two publications of the same scores may differ in) is blanked."""
    with csv_a.open("rb") as a, csv_b.open("rb") as b:
        id_a, id_b = batch_a.encode(), batch_b.encode()
        lines = 0
        for line_a, line_b in zip_longest(a, b):
            if line_a is None or line_b is None:  # one is longer
                return False
            if line_a.replace(id_a, b"") != line_b.replace(id_b, b""):
                return False
            lines += 1
        return lines > 0
