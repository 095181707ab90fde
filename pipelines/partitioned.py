"""The nightly batch's input, read one activity chunk at a time: memory flat in the log.

The leads table is read and checked whole (one row a lead). The activity log, the big
table (tens of rows a lead), is read in chunks of ``data.chunk_rows`` rows; each chunk is
typed and checked by the same contract as ``load_crm`` (Great Expectations suite, every
bad row quarantined with its reason and its row number in the source), and its clean
rows of open leads are appended to the Arrow file of their lead's partition: open leads
in ``lead_id`` order, ``scoring.partition_rows`` to a partition. The bad-row share, a rule
about the whole log, is checked once every chunk is, and every row read must end clean
or quarantined. Scoring then loads one partition file at a time.

The files live in a folder the caller owns (the score flow's temporary folder), which
every worker must see (see ``runner.spill_dir``).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from features.contract import (
    ACTIVITY_TYPE,
    LEAD_ID,
    OCCURRED_AT,
    OPEN,
    STATUS,
    VALUE,
    data_end,
    prepare_activities,
)
from features.validation import check_bad_share
from models.scoring import Partition
from pipelines.settings import Settings
from pipelines.sources import conserved, load_leads, read_chunks

ACTIVITY_SCHEMA = pa.schema(
    [
        (LEAD_ID, pa.large_string()),
        (ACTIVITY_TYPE, pa.large_string()),
        (OCCURRED_AT, pa.timestamp("ns", tz="UTC")),
        (VALUE, pa.float64()),
    ]
)
"""Columns and types of a clean activity frame (``prepare_activities``), as spilled."""


@dataclass(frozen=True)
class PartFile:
    """A partition of open leads and the Arrow file of their clean activities (None:
    a flat export, whose leads have no activity log)."""

    leads: pd.DataFrame
    activities: Path | None

    def load(self) -> Partition:
        """The partition in memory, as ``models.scoring`` scores it."""
        if self.activities is None:
            return Partition(self.leads, None)
        with pa.memory_map(str(self.activities)) as source:
            frame = pa.ipc.open_file(source).read_all().to_pandas()
        return Partition(self.leads, frame)


@dataclass(frozen=True)
class StreamedCRM:
    """The clean leads, the open leads' partitions on disk, the quarantine and counts."""

    leads: pd.DataFrame
    parts: list[PartFile]
    quarantine: pd.DataFrame
    n_leads_in: int
    n_activities_in: int
    end: pd.Timestamp
    unknown_activity_types: int = 0

    def quarantined(self, source: str) -> int:
        return int((self.quarantine["source"] == source).sum())


def stream_crm(settings: Settings, folder: Path, now: pd.Timestamp | None = None) -> StreamedCRM:
    """Check the leads, then the activity log chunk by chunk into partition files."""
    data = settings.data
    checked_leads, n_leads = load_leads(settings, now)
    leads = checked_leads.rows.reset_index(drop=True)
    open_leads = leads[leads[STATUS] == OPEN].sort_values(LEAD_ID, kind="stable")
    rows = settings.scoring.partition_rows
    n_parts = max(1, ceil(len(open_leads) / rows))
    slices = [open_leads.iloc[i * rows : (i + 1) * rows] for i in range(n_parts)]
    if data.activities is None:
        return StreamedCRM(
            leads=leads,
            parts=[PartFile(s, None) for s in slices],
            quarantine=checked_leads.quarantine,
            n_leads_in=n_leads,
            n_activities_in=0,
            end=data_end(leads, None),
        )
    label = data.activities.label
    paths = [Path(folder) / f"activities-{i:06d}.arrow" for i in range(n_parts)]
    writers = [pa.ipc.new_file(str(p), ACTIVITY_SCHEMA) for p in paths]
    open_ids = pd.Index(open_leads[LEAD_ID])
    quarantine = [checked_leads.quarantine]
    n_in = n_clean = unknown = 0
    latest = pd.NaT
    try:
        for chunk in read_chunks(data.activities, rows=data.chunk_rows):
            checked = prepare_activities(
                chunk.rename(columns=data.column_mapping),
                leads,
                source=label,
                known_types=list(settings.features.activity_types),
                validation=data.validation,
                now=now,
                date_format=data.activities.date_format,
                rows=np.arange(n_in, n_in + len(chunk)),
                table_rules=False,
            )
            n_in += len(chunk)
            n_clean += len(checked.rows)
            unknown += checked.unknown_types
            quarantine.append(checked.quarantine)
            if len(checked.rows):
                newest = checked.rows[OCCURRED_AT].max()
                latest = newest if pd.isna(latest) else max(latest, newest)
            _append(checked.rows, open_ids, rows, writers)
    finally:
        for writer in writers:
            writer.close()
    everything = pd.concat(quarantine, ignore_index=True)
    conserved(label, n_in, n_clean, int((everything["source"] == label).sum()))
    check_bad_share(n_in, everything, label, data.validation)
    return StreamedCRM(
        leads=leads,
        parts=[PartFile(s, p) for s, p in zip(slices, paths, strict=True)],
        quarantine=everything,
        n_leads_in=n_leads,
        n_activities_in=n_in,
        end=data_end(leads, None, latest),
        unknown_activity_types=unknown,
    )


def _append(
    clean: pd.DataFrame, open_ids: pd.Index, rows: int, writers: list[pa.ipc.RecordBatchFileWriter]
) -> None:
    """Append a chunk's clean activities of open leads to their partitions' files."""
    position = open_ids.get_indexer(clean[LEAD_ID])
    mine = np.flatnonzero(position >= 0)
    part = position[mine] // rows
    order = np.argsort(part, kind="stable")
    table = pa.Table.from_pandas(
        clean.iloc[mine[order]][list(ACTIVITY_SCHEMA.names)], preserve_index=False
    ).cast(ACTIVITY_SCHEMA)
    bounds = np.searchsorted(part[order], np.arange(len(writers) + 1))
    for i, writer in enumerate(writers):
        if bounds[i + 1] > bounds[i]:
            writer.write_table(table.slice(bounds[i], bounds[i + 1] - bounds[i]))
