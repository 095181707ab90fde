"""Resident memory for the benches: this process's peak and now, and the peak of this
process with its children (the SQLite writer, Dask workers) sampled in a thread.

The sampler reads ``/proc`` directly (each thread's ``children`` file, each process's
``statm``): a few small reads per sample. psutil's recursive ``children()`` scans every
process of the machine for its parent each time, which cost the 1M bench ~3 s of CPU
at 10 samples a second (py-spy), on a machine the batch itself keeps busy.
"""

from __future__ import annotations

import contextlib
import os
import resource
import threading
import time
from pathlib import Path

_PAGE = os.sysconf("SC_PAGE_SIZE")


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb(pid: int | str = "self") -> float:
    """Resident memory of process ``pid`` now (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/statm").read_text().split()
    except OSError:
        return 0.0
    return int(fields[1]) * _PAGE / 2**20


def rss_now_mb() -> float:
    """Resident memory of this process now."""
    return rss_mb()


def children(pid: int) -> list[int]:
    """The live descendants of ``pid`` (every thread's ``children`` list, recursively)."""
    found: list[int] = []
    pending = [pid]
    while pending:
        parent = pending.pop()
        with contextlib.suppress(OSError):
            for task in os.scandir(f"/proc/{parent}/task"):
                with contextlib.suppress(OSError):
                    kids = [int(k) for k in Path(task.path, "children").read_text().split()]
                    found.extend(kids)
                    pending.extend(kids)
    return found


class TreeRss:
    """Peak resident memory of this process and its children together (a writer
    process, Dask workers), sampled every ``every`` seconds in a thread: ``ru_maxrss``
    sees one process at a time."""

    def __init__(self, every: float = 0.1) -> None:
        self.peak_mb = 0.0
        self.at_peak: dict[str, float] = {}  # this process's and its children's MB then
        self.start = time.perf_counter()
        self._me, self._every = os.getpid(), every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tree-rss", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            mine, theirs = rss_mb(self._me), sum(rss_mb(pid) for pid in children(self._me))
            if mine + theirs > self.peak_mb:
                self.peak_mb = mine + theirs
                at = round(time.perf_counter() - self.start, 1)
                self.at_peak = {"self_mb": round(mine), "children_mb": round(theirs), "at_s": at}

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak_mb
