"""Peak resident memory of the nightly validate pass (``stream_crm``) by phase.

``python -m bench.validate_memory --leads N`` runs ``partitioned.stream_crm`` alone on the
bench set of N open leads (``bench.data.open_crm``, the bench's settings: partitions of
62,500 leads, chunks of 500,000 rows unless ``--chunk-rows``) into a temporary folder,
while a thread samples the process's RSS and Arrow's live bytes
(``pa.total_allocated_bytes``: Arrow allocates outside tracemalloc) every 5 ms. Phases
are marked by wrapping the pass's steps (the leads pass: its duplicate check, cut into
partitions and lead index; then the activity pass), and each phase's peak is printed:
what grows with N shows as a phase whose peak grows between two sizes. Memory is not
disturbed by other processes' CPU use, so it can be run on a busy machine.
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pyarrow as pa

import leadscore.pipelines.lead_parts as lead_parts
import leadscore.pipelines.partitioned as partitioned
from bench.data import bench_settings, open_crm

ROOT = Path(__file__).resolve().parents[1]
MB = 2**20


class Phases:
    """The current phase's name, and each phase's peak RSS and Arrow bytes (MB)."""

    def __init__(self) -> None:
        self.name = "start"
        self.peaks: dict[str, list[float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        process = psutil.Process()
        while not self._stop.is_set():
            rss, arrow = process.memory_info().rss / MB, pa.total_allocated_bytes() / MB
            peak = self.peaks.setdefault(self.name, [rss, arrow, rss])
            peak[0], peak[1] = max(peak[0], rss), max(peak[1], arrow)
            time.sleep(0.005)

    def wrap(self, owner: Any, attr: str, during: str, after: str) -> None:
        """Mark ``owner.attr``'s calls as phase ``during``, and what follows as ``after``."""
        call: Callable[..., Any] = getattr(owner, attr)

        def marked(*args: Any, **kwargs: Any) -> Any:
            self.name = during
            try:
                return call(*args, **kwargs)
            finally:
                self.name = after

        setattr(owner, attr, marked)

    def __enter__(self) -> Phases:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.05)
        self._stop.set()
        self._thread.join()


def main(argv: list[str] | None = None) -> None:
    """Run ``stream_crm`` on N bench leads; print each phase's peak RSS and Arrow bytes."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument("--chunk-rows", type=int, default=500_000, help="data.chunk_rows")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    data = open_crm(args.leads, out)
    settings = bench_settings(ROOT / "leadscore.yaml", data.leads, data.activities, out)
    settings = settings.model_copy(
        update={
            "scoring": settings.scoring.model_copy(update={"partition_rows": 62_500}),
            "data": settings.data.model_copy(update={"chunk_rows": args.chunk_rows}),
        }
    )
    phases = Phases()
    phases.wrap(partitioned, "_leads_in_chunks", "leads: read and check", "activities")
    phases.wrap(partitioned, "_duplicated", "leads: duplicate ids", "leads: read and check")
    phases.wrap(lead_parts.OpenLeads, "cut", "leads: cut", "leads: after the cut")
    phases.wrap(partitioned, "_index", "leads: index", "leads: after the index")
    phases.wrap(partitioned, "drop_repeats", "activities: repeats", "activities: close")
    gc.collect()
    with phases, tempfile.TemporaryDirectory(dir=out) as folder:
        cpu = time.process_time()
        crm = partitioned.stream_crm(settings, Path(folder))
        cpu = time.process_time() - cpu
        phases.name = "done"
    print(
        f"{args.leads:,} leads, {crm.n_activities_in:,} activities, {len(crm.parts)} "
        f"partitions, {cpu:.1f} CPU-s"
    )
    for name, (rss, arrow, first) in phases.peaks.items():
        print(f"  {name:<24} peak RSS {rss:7.0f} MB  Arrow {arrow:6.0f} MB (from {first:.0f})")
    for prefix in ("leads", "activities"):
        peak = max(v[0] for k, v in phases.peaks.items() if k.startswith(prefix))
        print(f"peak of the {prefix} pass: {peak:,.0f} MB")


if __name__ == "__main__":
    main()
