"""Memory of the nightly pass's reads and lookups stays flat in the table's size: a
Parquet source read by chunk keeps none of the chunks already read, and the leads'
lookup hashes its ids a slice at a time, to the same keys."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from leadscore.features import lead_index
from leadscore.features.lead_index import LeadIndex
from leadscore.pipelines.data_sections import SourceConfig
from leadscore.pipelines.sources import read_chunks


def test_a_parquet_source_read_by_chunk_holds_one_chunk(tmp_path: Path) -> None:
    """Arrow's pre-buffering kept every column chunk read until the file closed: the
    activity pass held the whole compressed log by its last chunk (~10 bytes an activity,
    0.5 GB at 2M leads; a file this small, 16 MB, it reads whole at the first chunk).
    Random floats do not compress: each chunk read is 400 KB."""
    n, rows = 2_000_000, 50_000
    path = tmp_path / "log.parquet"
    values = np.random.default_rng(0).random(n)
    pq.write_table(pa.table({"value": values}), path, row_group_size=rows, compression="none")
    gc.collect()
    start = pa.total_allocated_bytes()
    held = []
    total = 0.0
    for chunk in read_chunks(SourceConfig(path=path), rows=rows):
        total += float(chunk["value"].sum())
        del chunk
        held.append(pa.total_allocated_bytes())
    assert len(held) == n // rows
    assert total == pytest.approx(values.sum())
    assert max(held) - start < 10 * rows * 8  # a chunk and the reader's buffers: ~1.4 MB


def test_the_lookup_hashes_its_ids_a_slice_at_a_time_to_the_same_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = pd.Series([f"L{i:05d}" for i in np.random.default_rng(1).permutation(100)], dtype="str")
    created = pd.Series(pd.date_range("2024-01-01", periods=100, freq="D", tz="UTC"))
    whole = LeadIndex.of(ids, created)
    monkeypatch.setattr(lead_index, "_HASH_ROWS", 7)
    sliced = LeadIndex.of(ids, created)
    np.testing.assert_array_equal(sliced.keys, np.sort(lead_index._hashes(ids)))
    np.testing.assert_array_equal(sliced.keys, whole.keys)
    np.testing.assert_array_equal(sliced.order, whole.order)
    asked = pd.Series([ids[5], "nope", ids[99], ids[0]], dtype="str")
    np.testing.assert_array_equal(sliced.positions(asked), [5, -1, 99, 0])
    objects = LeadIndex.of(ids.astype(object), created)  # Python strings: the same keys
    np.testing.assert_array_equal(objects.keys, whole.keys)
