"""`make bench --runner dask`: the bench's partitions scored on a local Dask cluster.

The score flow's Dask runner (``runner.kind: dask``, through prefect-dask) submits one
task per partition whose body is ``pipelines.partitioned.score_and_spill``; here the same
body runs on a ``distributed.LocalCluster`` of ``workers`` processes (one thread each),
without a Prefect server, and each task also reports its own stage times, its wall time,
its worker and that worker's peak memory, so the per-partition cost (what ``docs/scale.md``
multiplies out to 100M leads) is measured where the work ran. The spilled partitions come
back to this process (their Arrow files are in a folder both see) and are published as in
the local run. ``same_published`` then checks the two runs' exports row for row.
"""

from __future__ import annotations

import resource
import tempfile
import time
from collections.abc import Sequence
from itertools import zip_longest
from pathlib import Path
from typing import Any

import pandas as pd

from leadscore.models.scoring import StageTimes
from leadscore.pipelines.batch import publish_spilled
from leadscore.pipelines.partitioned import PartFile, score_and_spill
from leadscore.pipelines.spilled import Spilled
from leadscore.serving.store import ScoreStore


def timed_partition(
    part: PartFile,
    index: int,
    as_of: pd.Timestamp,
    model: Any,
    rules: Any,
    settings: Any,
    folder: Path,
    history: Any = None,
) -> tuple[Spilled, dict[str, Any]]:
    """``score_and_spill`` on one partition, with what it cost where it ran."""
    times = StageTimes()
    start = time.perf_counter()
    spilled = score_and_spill(part, index, as_of, model, rules, settings, folder, times, history)
    wall = time.perf_counter() - start
    try:
        from distributed import get_worker

        worker = str(get_worker().name)
    except (ImportError, ValueError):  # not on a worker: the bench's own process
        worker = "local"
    return spilled, {
        "partition": index,
        "leads": len(part),
        "worker": worker,
        "seconds": round(wall, 3),
        "stages": {k: round(v, 3) for k, v in times.seconds.items()},
        "worker_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        # what the partition leaves behind until publishing: its spilled file on disk; in
        # memory its raw scores and rule points (16 bytes a lead) and its routing pool
        "spilled_bytes": spilled.path.stat().st_size,
        "pool_bytes": 0
        if spilled.pool is None
        else int(spilled.pool.memory_usage(deep=True).sum()),
        "pool_rows": 0 if spilled.pool is None else len(spilled.pool),
    }


def score_on_dask(
    parts: Sequence[PartFile],
    as_of: pd.Timestamp,
    model: Any,
    rules: Any,
    settings: Any,
    folder: Path,
    history: Any,
    workers: int,
) -> tuple[list[Spilled], list[dict[str, Any]], float]:
    """Score ``parts`` on a fresh LocalCluster of ``workers`` single-thread processes.

    Returns the spilled partitions in partition order, one cost record per partition, and
    the seconds the cluster took to start (not part of the scoring time).
    """
    from distributed import Client, LocalCluster

    start = time.perf_counter()
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            local_directory=str(folder),
        ) as cluster,
        Client(cluster) as client,
    ):
        started = time.perf_counter() - start
        # the model (with its SHAP tables), rules and settings go to each worker once
        shared = client.scatter([model, rules, settings], broadcast=True)
        futures = [
            client.submit(
                timed_partition, part, i, as_of, *shared, folder, history, pure=False, key=f"p{i}"
            )
            for i, part in enumerate(parts)
        ]
        results = client.gather(futures)
    return [s for s, _ in results], [r for _, r in results], started


def per_worker(costs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per worker: partitions scored, their summed seconds, and its peak memory."""
    out: dict[str, dict[str, float]] = {}
    for cost in costs:
        mine = out.setdefault(cost["worker"], {"partitions": 0, "seconds": 0.0, "peak_mb": 0})
        mine["partitions"] += 1
        mine["seconds"] = round(mine["seconds"] + cost["seconds"], 2)
        mine["peak_mb"] = max(mine["peak_mb"], cost["worker_peak_rss_mb"])
    return out


def local_reference(
    parts: Sequence[PartFile],
    scoring: tuple[Any, ...],
    store: ScoreStore,
    batch_id: str,
    out: Path,
) -> dict[str, Any]:
    """After a Dask run: the same partitions scored in this process and published as a
    second batch of the same store with its own CSV, and whether both CSVs are the same
    rows (``dask_same_scores``); the local scoring's wall time beside the cluster's."""
    as_of, model, rules, settings, _, history = scoring
    with tempfile.TemporaryDirectory(prefix="bench-local-", dir=out) as folder:
        start = time.perf_counter()
        spilled = [
            timed_partition(p, i, as_of, model, rules, settings, Path(folder), history)[0]
            for i, p in enumerate(parts)
        ]
        local_s = time.perf_counter() - start
        csv = settings.output.scores_csv.with_name("scores-local.csv")
        reference = publish_spilled(
            spilled,
            store,
            model_version="bench",
            as_of=as_of,
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
