"""Why schema 11 keeps a batch's order in ``score_ranks``: SQLite inserts shaped like the
publish's, with and without a ``(batch_id, rank)`` index, timed per million rows.

Rows of ~0.6 KB arrive in lead-id order with random ranks, 50,000 to a commit, through a
primary key, a lead index and a feed index, with the writer's 128 MiB page cache
(``serving/store/bulk.py``). Filled in that random order, the rank index makes every
commit rewrite most of its leaf pages and, once it outgrows the cache, read them back:
the seconds per million rows grow with the batch. Without it they stay flat. Prints one
line per million rows for each layout, then the ratio of the last million's seconds
(with / without) on its last line, as JSON.

``python -m bench.rank_index [--rows 6000000] [--folder bench/out]`` (~3 min at 6M).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import time
from pathlib import Path

import numpy as np

COMMIT_ROWS = 50_000
REPORT_ROWS = 1_000_000
BLOB = os.urandom(560)
BATCH = "20261207T230059Z-e11f5d"


def insert_seconds(path: Path, rows: int, rank_index: bool) -> list[float]:
    """Seconds per :data:`REPORT_ROWS` rows (the last: what is left) inserted into a fresh
    store at ``path``, which is removed afterwards."""
    path.unlink(missing_ok=True)
    con = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "cache_size=-131072"):
        con.execute(f"PRAGMA {pragma}")
    con.execute(
        "CREATE TABLE scores (batch_id TEXT, lead_id TEXT, rank INT, grade TEXT, score INT,"
        " owner TEXT, packed BLOB, PRIMARY KEY (batch_id, lead_id))"
    )
    if rank_index:
        con.execute("CREATE INDEX ix_rank ON scores (batch_id, rank)")
    con.execute("CREATE INDEX ix_lead ON scores (lead_id)")
    con.execute("CREATE INDEX ix_feed ON scores (batch_id, lead_id, grade, score, owner)")
    ranks = np.random.default_rng(0).permutation(rows) + 1
    seconds, mark = [], time.perf_counter()
    for start in range(0, rows, COMMIT_ROWS):
        stop = min(rows, start + COMMIT_ROWS)
        chunk = [
            (BATCH, f"L{i:010d}", int(ranks[i]), "A", 50, "rep", BLOB) for i in range(start, stop)
        ]
        con.execute("BEGIN")
        con.executemany("INSERT INTO scores VALUES (?, ?, ?, ?, ?, ?, ?)", chunk)
        con.execute("COMMIT")
        if stop % REPORT_ROWS == 0 or stop == rows:
            now = time.perf_counter()
            seconds.append(round(now - mark, 2))
            mark = now
    con.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=6_000_000)
    parser.add_argument("--folder", type=Path, default=Path(__file__).parent / "out")
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    result = {}
    for name, with_index in (("with_rank_index", True), ("without", False)):
        result[name] = insert_seconds(args.folder / "rank-index.db", args.rows, with_index)
        print(f"{name}: seconds per million rows {result[name]}", flush=True)
    last = result["with_rank_index"][-1] / result["without"][-1]
    print(
        json.dumps({"rows": args.rows, **result, "last_million_with_over_without": round(last, 2)})
    )


if __name__ == "__main__":
    main()
