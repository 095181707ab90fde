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

ACTIVITY_SCHEMA = pa.schema(
    [
        (LEAD_ID, pa.dictionary(pa.int32(), pa.large_string())),
        (ACTIVITY_TYPE, pa.large_string()),
        (OCCURRED_AT, pa.timestamp("ns", tz="UTC")),
        (VALUE, pa.float64()),
    ]
)
"""Columns and types of a clean activity frame (``prepare_activities``), as spilled."""


def drop_repeats(path: Path) -> int:
    """Rewrite a partition's activity file without rows repeating an earlier one exactly
    (repeats in different chunks of the log); how many were dropped."""
    with pa.memory_map(str(path)) as source:
        table = pa.ipc.open_file(source).read_all()
    if table.num_rows < 2:
        return 0
    repeated = table.to_pandas().duplicated(keep="first").to_numpy()
    if not repeated.any():
        return 0
    kept = table.filter(pa.array(~repeated))
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, kept.schema) as writer:
        writer.write_table(kept)
    return int(repeated.sum())


def append_activities(
    clean: pd.DataFrame,
    open_ids: pd.Index,
    rows: int,
    writers: list[pa.ipc.RecordBatchFileWriter],
    dictionaries: list[pa.Array],
) -> None:
    """Append a chunk's clean activities of open leads to their partitions' files.

    ``lead_id`` is written dictionary-encoded against the partition's own lead ids (the
    position found here), so loading a partition gives a categorical column that the
    features factorise for free instead of hashing millions of strings again.
    """
    position = open_ids.get_indexer(clean[LEAD_ID])
    mine = np.flatnonzero(position >= 0)
    part = position[mine] // rows
    order = np.argsort(part, kind="stable")
    taken = clean.iloc[mine[order]]
    local = (position[mine[order]] - part[order] * rows).astype(np.int32)
    columns = {n: taken[n] for n in ACTIVITY_SCHEMA.names if n != LEAD_ID}
    body = pa.Table.from_pandas(pd.DataFrame(columns), preserve_index=False)
    bounds = np.searchsorted(part[order], np.arange(len(writers) + 1))
    for i, writer in enumerate(writers):
        a, b = bounds[i], bounds[i + 1]
        if b > a:
            ids = pa.DictionaryArray.from_arrays(pa.array(local[a:b]), dictionaries[i])
            piece = body.slice(a, b - a).add_column(0, LEAD_ID, ids)
            writer.write_table(piece.cast(ACTIVITY_SCHEMA))
