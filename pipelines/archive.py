"""The archive the monitor reads: every published batch's scores and drift counts.

The store keeps the last ``store.keep_batches`` batches for serving; the monitor needs
months of them, small: per published batch a folder ``<monitor.archive_dir>/<batch_id>/``
holding ``scores.parquet`` (``ARCHIVE_COLUMNS``, one row per scored lead, probability as
float32) and ``meta.json`` (batch id, as-of, model version, the merged drift counts
against the champion's reference, the quarantine by reason, the lead rows read).

Written only once a batch is published (a failed run archives nothing), streamed from the
spilled partitions one at a time (memory bounded by the partition, not the batch), into
a hidden temporary folder that is renamed into place at the end: a crash leaves either
no folder or a hidden partial one, never a half archive the reader takes for whole.
Batches older than ``monitor.archive_days`` (by as-of) are pruned after each write.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import time
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import reduce
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from leadscore.models.base import LeadScorer
from leadscore.models.monitor.outcomes import as_utc
from leadscore.models.monitor.profile import (
    REFERENCE_ATTRIBUTE,
    BatchCounts,
    ReferenceProfile,
    batch_counts,
)
from leadscore.models.monitor.result import ARCHIVE_COLUMNS, ArchivedBatch
from leadscore.models.scoring import StageTimes
from leadscore.pipelines.batch import stage
from leadscore.pipelines.spilled import Spilled

log = logging.getLogger(__name__)

SCORES = "scores.parquet"
META = "meta.json"
PARTIAL = ".partial-"
"""Prefix of a batch folder being written (hidden: the reader never lists it)."""
STALE_PARTIAL_SECONDS = 24 * 3600
"""A partial folder this old was left by a crashed run: pruned."""

SCHEMA = pa.schema(
    [
        ("lead_id", pa.string()),
        ("probability", pa.float32()),
        ("grade", pa.string()),
        ("rule_score", pa.float64()),
        ("rule_grade", pa.string()),
        ("cell", pa.string()),
    ]
)
"""The archived score columns and their types (``ARCHIVE_COLUMNS``, in order)."""


def partition_counts(
    X: pd.DataFrame, frame: pd.DataFrame, model: LeadScorer, times: StageTimes | None = None
) -> BatchCounts | None:
    """A scored partition's drift counts against the model's reference (its
    ``monitor_reference_``, a ``ReferenceProfile`` or its ``to_dict()`` as the champion
    carries it), or None when the model carries none (trained before the monitor) or one
    this version cannot read (a warning line: the batch is scored and published anyway)."""
    reference = getattr(model, REFERENCE_ATTRIBUTE, None)
    if reference is None:
        return None
    with stage(times, "monitor"):
        if not isinstance(reference, ReferenceProfile):
            try:
                reference = ReferenceProfile.from_dict(reference)
            except (KeyError, TypeError, ValueError) as error:
                log.warning("monitor: champion's reference unreadable (%r): no counts", error)
                return None
        return batch_counts(X, frame["probability"].to_numpy(dtype=np.float64), reference)


def merged_counts(parts: Sequence[Spilled]) -> BatchCounts | None:
    """The batch's drift counts: every partition's merged (None if any lacks them)."""
    counts = [p.counts for p in parts]
    if not counts or any(c is None for c in counts):
        return None
    return reduce(lambda a, b: a.merge(b), counts)  # type: ignore[arg-type, return-value]


def quarantine_by_reason(quarantine: pd.DataFrame, source: str) -> dict[str, int]:
    """Rows of ``source`` (the leads table's label) quarantined, per reason, most first."""
    mine = quarantine.loc[quarantine["source"] == source, "reason"]
    return {str(k): int(v) for k, v in mine.value_counts().items()}


@dataclass(frozen=True)
class ArchiveRun:
    """What the score flow knows of the run beside the scores: where the archive lives,
    how long it keeps batches, the leads' quarantine by reason and the lead rows read."""

    folder: Path
    days: int
    quarantine: dict[str, int] = field(default_factory=dict)
    rows_in: int = 0


def archive_published(
    parts: Sequence[Spilled],
    run: ArchiveRun,
    *,
    batch_id: str,
    as_of: pd.Timestamp,
    model_version: str,
) -> Path | None:
    """Archive a batch just published from ``parts`` (its spilled partitions), then prune
    the batches older than ``run.days`` before ``as_of``; the batch's folder.

    The batch is published already, so a failure to archive (a full disk, a folder not
    writable) is a warning line and None, not a failed run: the monitor misses one batch.
    """
    counts = merged_counts(parts)
    try:
        path = write_batch(
            run.folder,
            (p.path for p in parts),
            batch_id=batch_id,
            as_of=as_of,
            model_version=model_version,
            profile=None if counts is None else counts.to_dict(),
            quarantine=run.quarantine,
            rows_in=run.rows_in,
        )
        prune(run.folder, as_of - pd.Timedelta(days=run.days))
    except (OSError, pa.ArrowException) as error:
        log.warning("archive: batch %s published but not archived: %s", batch_id, error)
        return None
    return path


def _score_table(spilled: pa.Table) -> pa.Table:
    """The archived columns of one spilled partition, typed as ``SCHEMA``."""
    columns = [_cast(spilled.column(f.name), f.type) for f in SCHEMA]
    return pa.Table.from_arrays(columns, schema=SCHEMA)


def _cast(column: pa.ChunkedArray, to: pa.DataType) -> pa.ChunkedArray:
    """``column`` as ``to`` (text of any Arrow flavour, large or dictionary, as ``string``)."""
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    return column.cast(to)


def write_batch(
    folder: Path,
    arrow_files: Iterable[Path],
    *,
    batch_id: str,
    as_of: pd.Timestamp,
    model_version: str,
    profile: Mapping[str, Any] | None,
    quarantine: Mapping[str, int],
    rows_in: int,
) -> Path:
    """Write one batch's folder under ``folder`` atomically; its final path.

    ``arrow_files`` are the spilled partitions (Arrow IPC files with the score columns),
    appended one at a time to one Parquet file. Everything goes to a hidden temporary
    folder first, synced, then renamed to ``<batch_id>`` (a folder of that id already
    there is replaced).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / batch_id
    partial = folder / f"{PARTIAL}{batch_id}-{secrets.token_hex(3)}"
    partial.mkdir()
    try:
        n_rows = 0
        with pq.ParquetWriter(str(partial / SCORES), SCHEMA, compression="zstd") as writer:
            for arrow_file in arrow_files:  # memory-mapped: one partition at a time
                with pa.memory_map(str(arrow_file)) as source:
                    table = _score_table(pa.ipc.open_file(source).read_all())
                    n_rows += table.num_rows
                    writer.write_table(table)
        meta = {
            "batch_id": batch_id,
            "as_of": as_utc(as_of).isoformat(),
            "model_version": str(model_version),
            "n_rows": n_rows,
            "rows_in": int(rows_in),
            "quarantine": {str(k): int(v) for k, v in quarantine.items()},
            "profile": None if profile is None else dict(profile),
        }
        (partial / META).write_text(json.dumps(meta, indent=1), encoding="utf-8")
        for name in (SCORES, META):
            _fsync(partial / name)
        if final.exists():
            shutil.rmtree(final)
        os.replace(partial, final)
        _fsync(folder)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return final


def _fsync(path: Path) -> None:
    """Flush a file (or a folder's entries) to disk, where the platform allows."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _read_meta(batch: Path) -> dict[str, Any]:
    meta = json.loads((batch / META).read_text(encoding="utf-8"))
    for key in ("batch_id", "as_of", "model_version", "n_rows"):
        if key not in meta:
            raise ValueError(f"{META} lacks {key!r}")
    return meta


def prune(folder: Path, before: pd.Timestamp) -> list[str]:
    """Delete the archived batches whose as-of is before ``before`` (and partial folders
    a crashed run left over a day ago); the batch ids deleted."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    before, removed = as_utc(before), []
    for batch in sorted(folder.iterdir()):
        if not batch.is_dir():
            continue
        if batch.name.startswith(PARTIAL):
            if time.time() - batch.stat().st_mtime > STALE_PARTIAL_SECONDS:
                shutil.rmtree(batch, ignore_errors=True)
            continue
        try:
            as_of = as_utc(pd.Timestamp(_read_meta(batch)["as_of"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # unreadable: left for a person to look at, never guessed old
        if as_of < before:
            shutil.rmtree(batch, ignore_errors=True)
            removed.append(batch.name)
    if removed:
        log.info("archive: %d batches older than %s pruned", len(removed), before.date())
    return removed


def _listed(
    folder: Path, since: pd.Timestamp | None
) -> Iterator[tuple[Path, dict[str, Any], pd.Timestamp]]:
    """Each batch folder with a readable meta (as-of at or after ``since``): its path,
    meta and as-of, by folder name. An unreadable meta is skipped with a warning line."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    since = None if since is None else as_utc(since)
    for batch in sorted(folder.iterdir()):
        if not batch.is_dir() or batch.name.startswith("."):
            continue
        try:
            meta = _read_meta(batch)
            as_of = as_utc(pd.Timestamp(meta["as_of"]))
        except (OSError, ValueError, KeyError, TypeError) as error:
            log.warning("archive: %s skipped, incomplete or unreadable (%s)", batch, error)
            continue
        if since is None or as_of >= since:
            yield batch, meta, as_of


def archived(folder: Path, *, since: pd.Timestamp | None = None) -> dict[str, pd.Timestamp]:
    """The archived batches' ids and as-ofs (as-of at or after ``since``), from their
    meta alone (no scores read): which stored monitor results still have their batch."""
    return {str(meta["batch_id"]): as_of for _, meta, as_of in _listed(folder, since)}


def read_archive(
    folder: Path, *, since: pd.Timestamp | None = None, skip: Collection[str] = ()
) -> list[ArchivedBatch]:
    """Every complete archived batch under ``folder`` (as-of at or after ``since``; none
    whose id is in ``skip``, whose scores are then not read), oldest first. An incomplete
    or unreadable folder is skipped with a warning line."""
    skip = frozenset(skip)
    batches = []
    for batch, meta, as_of in _listed(folder, since):
        if str(meta["batch_id"]) in skip:
            continue
        try:
            scores = pd.read_parquet(batch / SCORES)
            if len(scores) != meta["n_rows"] or tuple(scores.columns) != ARCHIVE_COLUMNS:
                raise ValueError(f"{SCORES} has {len(scores)} rows, {META} says {meta['n_rows']}")
            batches.append(
                ArchivedBatch(
                    batch_id=str(meta["batch_id"]),
                    as_of=as_of,
                    model_version=str(meta["model_version"]),
                    scores=scores,
                    profile=meta.get("profile"),
                    quarantine={str(k): int(v) for k, v in (meta.get("quarantine") or {}).items()},
                    rows_in=int(meta.get("rows_in", 0)),
                )
            )
        except (OSError, ValueError, KeyError, TypeError, pa.ArrowException) as error:
            log.warning("archive: %s skipped, incomplete or unreadable (%s)", batch, error)
    return sorted(batches, key=lambda b: (b.as_of, b.batch_id))
