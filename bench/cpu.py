"""CPU seconds of the bench's timed run, and the wall time they bound it to.

A run that keeps every core busy cannot end sooner than its CPU seconds over the cores
it may use, whatever overlaps what: this is the bound the wall time is read against
(the tenth pass's 1M run: 58.5 CPU-s in 37.1 s, 1.58 of 2 cores, so a 29.2 s bound).
Counted with ``os.times``: this process's threads and every child process it waited
for (the SQLite writer); a Dask bench's workers are not counted, so its figures there
say only what the publishing process spent.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


def cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0))


def children_cpu_seconds() -> float:
    """User and system seconds of the child processes waited for so far."""
    t = os.times()
    return t.children_user + t.children_system


def cpu_seconds() -> float:
    """User and system seconds of this process and its waited-for children so far."""
    t = os.times()
    return t.user + t.system + children_cpu_seconds()


@dataclass
class CpuClock:
    """CPU seconds since it was made, and at the marks taken since (:meth:`mark`)."""

    start: float = field(default_factory=cpu_seconds)
    children: float = field(default_factory=children_cpu_seconds)
    marks: dict[str, float] = field(default_factory=dict)

    def mark(self, name: str) -> float:
        """Record and return the CPU seconds used from the start to now (cumulative: the
        bench marks ``validated`` and ``predicted``, as its ``rss_now_mb``)."""
        self.marks[name] = cpu_seconds() - self.start
        return self.marks[name]

    def summary(self, wall_s: float) -> dict[str, object]:
        """The run's CPU seconds, the cores it kept busy on average over ``wall_s``, and
        ``cpu_bound_s``: the shortest wall time this much work allows on these cores."""
        used = cpu_seconds() - self.start
        n = cores()
        return {
            "cpu_s": round(used, 1),
            "children_cpu_s": round(children_cpu_seconds() - self.children, 1),
            "cores": n,
            "cores_busy": round(used / wall_s, 2) if wall_s else None,
            "cpu_bound_s": round(used / n, 1),
            "cpu_marks_s": {k: round(v, 1) for k, v in self.marks.items()},
        }


def print_table(result: dict[str, Any], stages: Sequence[str], floor: Sequence[str]) -> None:
    """The run's stage table for people: seconds and share a stage, the total and peak
    memory, the floor and the ratio, the CPU seconds and the wall time they bound."""
    seconds = result["stages"]
    print(f"{'stage':<12}{'seconds':>10}{'share':>8}")
    for name in stages:
        share = seconds[name] / result["total_s"] if result["total_s"] else 0.0
        print(f"{name:<12}{seconds[name]:>10.2f}{share:>8.0%}")
    print(
        f"{'total':<12}{result['total_s']:>10.2f}   peak RSS {result['peak_rss_mb']} MB "
        f"({result['peak_rss_with_children_mb']} MB with its child processes)"
    )
    print(
        f"{'floor':<12}{result['floor_s']:>10.2f}   ({' + '.join(floor)}); "
        f"total / floor = {result['total_over_floor']} (target <= 2)"
    )
    print(
        f"{'cpu':<12}{result['cpu_s']:>10.1f}   CPU-s, {result['cores_busy']} of "
        f"{result['cores']} cores busy on average: this much work needs >= "
        f"{result['cpu_bound_s']} s of wall"
    )
