"""bench.rank_index: SQLite inserts shaped like the publish's, timed per block of rows."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import bench.rank_index as rank_index


def test_seconds_come_per_block_and_the_store_is_removed(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(rank_index, "REPORT_ROWS", 40_000)
    monkeypatch.setattr(rank_index, "COMMIT_ROWS", 20_000)
    seconds = rank_index.insert_seconds(tmp_path / "r.db", 100_000, rank_index=True)
    assert len(seconds) == 3 and all(s > 0 for s in seconds)  # 40k, 40k, then 20k
    assert list(tmp_path.iterdir()) == []


def test_the_last_line_is_the_same_run_ratio(tmp_path: Path):
    done = subprocess.run(
        [sys.executable, "-m", "bench.rank_index", "--rows", "60000", "--folder", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(rank_index.__file__).parents[1],
    )
    last = json.loads(done.stdout.strip().splitlines()[-1])
    assert last["rows"] == 60_000
    ratio = last["with_rank_index"][-1] / last["without"][-1]
    assert last["last_million_with_over_without"] == round(ratio, 2)
