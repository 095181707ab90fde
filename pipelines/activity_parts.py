"""The activity log's partition files: clean activity chunks appended to the partition of
their lead, and repeats across chunks dropped once every chunk is in
(``pipelines.partitioned.stream_crm`` writes them, scoring reads them).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from leadscore.features.contract import ACTIVITY_TYPE, LEAD_ID, OCCURRED_AT, VALUE
from leadscore.features.hygiene import repeated_keys

ACTIVITY_SCHEMA = pa.schema(
    [
        (LEAD_ID, pa.dictionary(pa.int32(), pa.large_string())),
        (ACTIVITY_TYPE, pa.large_string()),
        (OCCURRED_AT, pa.timestamp("ns", tz="UTC")),
        (VALUE, pa.float64()),
    ]
)
"""Columns and types of a clean activity frame (``prepare_activities``), as spilled."""


def drop_repeats(path: Path, split: np.ndarray) -> int:
    """Rewrite a partition's activity file without rows repeating an earlier one exactly
    (repeats in different chunks of the log); how many were dropped.

    ``split`` marks, by the partition's own lead numbering (the ``lead_id`` dictionary's
    positions), the leads whose clean activities came from more than one chunk: each chunk
    already dropped its own repeats, so only those leads' rows can repeat one another. A
    log grouped by lead has a lead or so split per chunk; a log in time order, all of them.
    """
    if not split.any():
        return 0
    with pa.memory_map(str(path)) as source:
        table = pa.ipc.open_file(source).read_all()
    if table.num_rows < 2:
        return 0
    leads = table.column(LEAD_ID)
    local = np.concatenate([c.indices.to_numpy() for c in leads.chunks]) if leads.num_chunks else []
    rows = np.flatnonzero(split[np.asarray(local, dtype=np.int64)])
    if len(rows) < 2:
        return 0
    stamps = table.column(OCCURRED_AT).take(pa.array(rows)).cast(pa.int64()).to_numpy()
    rows = rows[repeated_keys(stamps, np.asarray(local)[rows])]  # same lead and instant
    if len(rows) < 2:
        return 0
    repeated = np.zeros(table.num_rows, dtype=bool)
    repeated[rows] = table.take(pa.array(rows)).to_pandas().duplicated(keep="first").to_numpy()
    if not repeated.any():
        return 0
    # read again into memory: the mapped table's buffers (the lead id dictionary, shared
    # by the filtered table) would be overwritten while the file is rewritten
    with pa.OSFile(str(path)) as source:
        kept = pa.ipc.open_file(source).read_all().filter(pa.array(~repeated))
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, kept.schema) as writer:
        writer.write_table(kept)
    return int(repeated.sum())


def append_activities(
    clean: pd.DataFrame,
    opened: np.ndarray,
    rows: int,
    writers: list[pa.ipc.RecordBatchFileWriter],
    dictionaries: list[pa.Array],
) -> None:
    """Append a chunk's clean activities of open leads to their partitions' files.

    ``opened`` is each row's lead's place among the open leads in partition order (-1:
    not open; ``LeadIndex.open_position``). ``lead_id`` is written dictionary-encoded against
    the partition's own lead ids (that place, less the partition's start), so loading a
    partition gives a categorical column that the features factorise for free instead of
    hashing millions of strings again.
    """
    mine = np.flatnonzero(opened >= 0)
    part = opened[mine] // rows
    # a stable sort of small integers is a radix sort: linear, whatever the log's order
    narrow = np.int16 if len(writers) <= np.iinfo(np.int16).max else np.int64
    order = np.argsort(part.astype(narrow), kind="stable")
    picked = mine[order]
    local = (opened[picked] - part[order] * rows).astype(np.int32)
    columns = [n for n in ACTIVITY_SCHEMA.names if n != LEAD_ID]
    body = pa.Table.from_pandas(clean[columns], preserve_index=False)
    if len(picked) != len(clean) or (np.diff(picked) != 1).any():
        body = body.take(pa.array(picked))  # once, in Arrow: no pandas copy of the rows
    bounds = np.searchsorted(part[order], np.arange(len(writers) + 1))
    for i, writer in enumerate(writers):
        a, b = bounds[i], bounds[i + 1]
        if b > a:
            ids = pa.DictionaryArray.from_arrays(pa.array(local[a:b]), dictionaries[i])
            piece = body.slice(a, b - a).add_column(0, LEAD_ID, ids)
            writer.write_table(piece.cast(ACTIVITY_SCHEMA))
