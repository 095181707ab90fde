"""The archive the monitor reads: each published batch's scores and drift counts.

Pinned here: a batch written is read back exactly (float32 probabilities, meta, counts);
a write that fails leaves nothing the reader takes for a batch, and a crashed run's
partial folder is skipped, then pruned; batches older than ``monitor.archive_days`` go;
a model trained by the recipe carries its reference through the skops file the champion
is saved in; and a real score flow on a small synthetic CRM archives exactly the batch
it published (scores, counts summing to the scored leads, quarantine by reason), while a
run that fails before publishing archives nothing.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from leadscore.models.monitor.profile import REFERENCE_ATTRIBUTE, BatchCounts, ReferenceProfile
from leadscore.models.monitor.result import ARCHIVE_COLUMNS
from leadscore.pipelines.archive import (
    PARTIAL,
    ArchiveRun,
    archive_published,
    merged_counts,
    prune,
    quarantine_by_reason,
    read_archive,
    write_batch,
)
from leadscore.pipelines.batch import Spilled, write_arrow
from tests.conftest import ROOT, ts


def _scores(n: int, seed: int) -> pd.DataFrame:
    """A spilled partition's columns (more than the archive keeps), Arrow-backed text."""
    rng = np.random.default_rng(seed)
    probability = rng.uniform(0, 1, n)
    return pd.DataFrame(
        {
            "lead_id": pd.array([f"L{seed}-{i:04d}" for i in range(n)], dtype="string[pyarrow]"),
            "owner": "ann",
            "probability": probability,
            "score": np.rint(100 * probability).astype(np.int64),
            "grade": np.where(probability > 0.5, "A", "B"),
            "rule_score": np.round(rng.uniform(0, 40, n), 2),
            "rule_grade": np.where(probability > 0.3, "A", "C"),
            "cell": pd.Categorical(np.where(probability > 0.5, "hot", "cold")),
        }
    )


def _parts(folder: Path, sizes: tuple[int, ...]) -> tuple[list[Path], pd.DataFrame]:
    folder.mkdir(parents=True, exist_ok=True)
    frames = [_scores(n, seed) for seed, n in enumerate(sizes)]
    paths = [write_arrow(f, folder / f"part-{i:06d}.arrow") for i, f in enumerate(frames)]
    return paths, pd.concat(frames, ignore_index=True)


def _write(folder: Path, batch_id: str, as_of: str, files: list[Path], **extra: Any) -> Path:
    return write_batch(
        folder,
        files,
        batch_id=batch_id,
        as_of=ts(as_of),
        model_version=extra.get("model_version", "3"),
        profile=extra.get("profile"),
        quarantine=extra.get("quarantine", {}),
        rows_in=extra.get("rows_in", 0),
    )


def test_a_batch_written_is_read_back_exactly(tmp_path: Path):
    files, frame = _parts(tmp_path / "spill", (40, 25))
    profile = {"prediction": {"counts": [3, 62], "reference": [0.1, 0.9]}}
    reasons = {"status is empty": 2, "created_at is not a date": 1}
    path = _write(
        tmp_path / "archive",
        "20261201T030000Z-abc123",
        "2026-12-01 03:00",
        files,
        model_version="7",
        profile=profile,
        quarantine=reasons,
        rows_in=68,
    )
    assert path == tmp_path / "archive" / "20261201T030000Z-abc123"
    assert sorted(p.name for p in path.iterdir()) == ["meta.json", "scores.parquet"]

    (batch,) = read_archive(tmp_path / "archive")
    assert batch.batch_id == "20261201T030000Z-abc123"
    assert batch.as_of == ts("2026-12-01 03:00")
    assert batch.model_version == "7"
    assert batch.profile == profile
    assert batch.quarantine == reasons
    assert batch.rows_in == 68
    assert tuple(batch.scores.columns) == ARCHIVE_COLUMNS
    assert batch.scores["probability"].dtype == np.float32
    assert len(batch.scores) == 65
    expected = frame[list(ARCHIVE_COLUMNS)]
    assert batch.scores["lead_id"].tolist() == expected["lead_id"].tolist()
    np.testing.assert_array_equal(
        batch.scores["probability"].to_numpy(), expected["probability"].to_numpy(np.float32)
    )
    for column in ("grade", "rule_grade", "cell"):
        assert batch.scores[column].astype(str).tolist() == expected[column].astype(str).tolist()
    np.testing.assert_array_equal(batch.scores["rule_score"], expected["rule_score"])


def test_read_archive_is_oldest_first_and_reads_since(tmp_path: Path):
    files, _ = _parts(tmp_path / "spill", (5,))
    archive = tmp_path / "archive"
    # batch ids sort by creation time; the archive sorts by as-of (a rerun of an old day)
    _write(archive, "20261203T000000Z-aaaaaa", "2026-11-20", files)
    _write(archive, "20261201T000000Z-bbbbbb", "2026-12-01", files)
    _write(archive, "20261202T000000Z-cccccc", "2026-11-25", files)
    read = read_archive(archive)
    assert [b.as_of.strftime("%m-%d") for b in read] == ["11-20", "11-25", "12-01"]
    since = read_archive(archive, since=ts("2026-11-25"))
    assert [b.batch_id for b in since] == ["20261202T000000Z-cccccc", "20261201T000000Z-bbbbbb"]
    assert read_archive(tmp_path / "nowhere") == []


def test_a_failed_write_leaves_nothing_readable(tmp_path: Path, caplog):
    files, _ = _parts(tmp_path / "spill", (10, 10))
    archive = tmp_path / "archive"
    _write(archive, "20261201T000000Z-aaaaaa", "2026-12-01", files)
    missing = tmp_path / "spill" / "gone.arrow"  # the second partition vanished mid-write
    with pytest.raises(OSError):
        _write(archive, "20261202T000000Z-bbbbbb", "2026-12-02", [files[0], missing])
    assert sorted(p.name for p in archive.iterdir()) == ["20261201T000000Z-aaaaaa"]

    # a run killed mid-write leaves a hidden partial folder; a folder whose Parquet does
    # not hold the rows its meta says (a copy cut short) is skipped, with a warning line
    partial = archive / f"{PARTIAL}20261203T000000Z-cccccc-123456"
    partial.mkdir()
    (partial / "scores.parquet").write_bytes(b"PAR1")
    cut = _write(archive, "20261204T000000Z-dddddd", "2026-12-04", files)
    meta = json.loads((cut / "meta.json").read_text())
    (cut / "meta.json").write_text(json.dumps({**meta, "n_rows": 21}))
    torn = archive / "20261205T000000Z-eeeeee"
    torn.mkdir()
    (torn / "scores.parquet").write_bytes(b"not parquet")
    with caplog.at_level(logging.WARNING, logger="leadscore.pipelines.archive"):
        read = read_archive(archive)
    assert [b.batch_id for b in read] == ["20261201T000000Z-aaaaaa"]
    skipped = [r.getMessage() for r in caplog.records]
    assert len(skipped) == 2
    assert "20261204T000000Z-dddddd skipped" in skipped[0]
    assert "20261205T000000Z-eeeeee skipped" in skipped[1]


def test_pruning_deletes_batches_older_than_the_window(tmp_path: Path):
    files, _ = _parts(tmp_path / "spill", (4,))
    archive = tmp_path / "archive"
    _write(archive, "b-old", "2026-05-01", files)
    _write(archive, "b-edge", "2026-05-15", files)
    _write(archive, "b-mid", "2026-08-01", files)
    fresh = archive / f"{PARTIAL}b-live-aaaaaa"  # a run writing now: kept
    stale = archive / f"{PARTIAL}b-dead-bbbbbb"  # a crashed run's, two days old: pruned
    fresh.mkdir()
    stale.mkdir()
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(stale, (two_days_ago, two_days_ago))

    assert prune(archive, ts("2026-05-15")) == ["b-old"]  # the edge day itself is kept
    assert sorted(p.name for p in archive.iterdir()) == [fresh.name, "b-edge", "b-mid"]

    # archiving a batch prunes by its own as-of minus monitor.archive_days
    run = ArchiveRun(archive, days=60, quarantine={"status is empty": 1}, rows_in=5)
    parts = [Spilled(files[0], np.zeros(4), np.zeros(4))]
    path = archive_published(
        parts, run, batch_id="b-new", as_of=ts("2026-09-01"), model_version="2"
    )
    assert path == archive / "b-new"
    assert [b.batch_id for b in read_archive(archive)] == ["b-mid", "b-new"]
    (newest,) = read_archive(archive, since=ts("2026-09-01"))
    assert newest.profile is None  # the partitions carried no counts: no reference
    assert newest.quarantine == {"status is empty": 1} and newest.rows_in == 5


def test_archiving_a_published_batch_never_fails_the_run(tmp_path: Path, caplog):
    files, _ = _parts(tmp_path / "spill", (4,))
    blocked = tmp_path / "a-file"  # archive_dir is a file: the batch is published anyway
    blocked.write_text("")
    run = ArchiveRun(blocked, days=30)
    parts = [Spilled(files[0], np.zeros(4), np.zeros(4))]
    with caplog.at_level(logging.WARNING, logger="leadscore.pipelines.archive"):
        assert (
            archive_published(parts, run, batch_id="b", as_of=ts("2026-09-01"), model_version="1")
            is None
        )
    assert "batch b published but not archived" in caplog.text


def test_quarantine_by_reason_counts_the_leads_rows_only():
    quarantine = pd.DataFrame(
        {
            "source": ["leads", "leads", "activities", "leads"],
            "row": [2, 5, 9, 7],
            "lead_id": ["a", "b", "c", "d"],
            "reason": ["status is empty", "lead_id is empty", "status is empty", "status is empty"],
        }
    )
    assert quarantine_by_reason(quarantine, "leads") == {
        "status is empty": 2,
        "lead_id is empty": 1,
    }
    assert quarantine_by_reason(quarantine.iloc[:0], "leads") == {}
