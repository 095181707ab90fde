"""bench.cpu: the CPU seconds a run used, its child processes' included once waited for."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bench.cpu import CpuClock, cores


def test_the_clock_counts_a_waited_child_and_bounds_the_wall():
    clock = CpuClock()
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.4: pass"
    subprocess.run([sys.executable, "-c", burn], check=True)  # ~0.4 CPU-s, in a child
    clock.mark("child")
    summary = clock.summary(wall_s=2.0)
    assert summary["children_cpu_s"] >= 0.4
    assert summary["cpu_s"] >= summary["children_cpu_s"]
    assert clock.marks["child"] >= 0.4
    assert summary["cores"] == cores() >= 1
    assert summary["cpu_bound_s"] == pytest.approx(summary["cpu_s"] / cores(), abs=0.1)
    assert summary["cores_busy"] == pytest.approx(summary["cpu_s"] / 2.0, abs=0.03)  # rounded


def test_a_clock_started_later_does_not_count_earlier_work():
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass"
    subprocess.run([sys.executable, "-c", burn], check=True)
    assert CpuClock().summary(wall_s=1.0)["children_cpu_s"] < 0.1
