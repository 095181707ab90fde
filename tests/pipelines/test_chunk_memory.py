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
from leadscore.pipelines import partitioned
from leadscore.pipelines.data_sections import SourceConfig
from leadscore.pipelines.partitioned import stream_crm
from leadscore.pipelines.sources import load_crm, read_chunks
from leadscore.synthetic import generate_crm
from tests.conftest import two_file_settings


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


@pytest.mark.parametrize("chunk_rows", [70, 10**6])
def test_an_all_open_parquet_export_in_chunks_gives_the_whole_tables_partitions(
    tmp_path: Path, chunk_rows: int
) -> None:
    """Every lead open (the bench's export) and Parquet's row count known: each chunk's
    frame goes to the partition files as it is (no copy) and, when more chunks follow,
    is written at once; the partitions are still the clean leads sorted by id and cut."""
    crm = generate_crm(300, seed=7)
    leads = crm.leads.assign(status="open", closed_at=crm.leads["closed_at"].iloc[:0])
    paths = {"leads": tmp_path / "leads.parquet", "activities": tmp_path / "acts.parquet"}
    leads.to_parquet(paths["leads"], index=False)
    crm.activities.to_parquet(paths["activities"], index=False)
    settings = two_file_settings(paths, partition_rows=40, chunk_rows=chunk_rows)
    whole = load_crm(settings)
    folder = tmp_path / "parts"
    folder.mkdir()
    streamed = stream_crm(settings, folder)
    assert streamed.n_clean_leads == len(whole.leads) == 300
    loaded = [p.load() for p in streamed.parts]
    assert [len(p.leads) for p in loaded] == [40] * 7 + [20]
    got = pd.concat([p.leads for p in loaded], ignore_index=True)
    want = whole.leads.sort_values("lead_id", kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want[got.columns], check_dtype=False)
    acts = pd.concat([p.activities for p in loaded]).astype({"lead_id": str})
    assert len(acts) == len(whole.activities)
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith("open-")) == []


def _old_duplicated(keys: pd.Series) -> list[str]:
    """The id keys held by more than one row, as found before (every id compared)."""
    return sorted(keys[keys.duplicated(keep=False)].dropna().unique())


@pytest.mark.parametrize("weak", [False, True])
def test_duplicate_ids_found_from_sorted_hashes_are_the_same(
    monkeypatch: pytest.MonkeyPatch, weak: bool
) -> None:
    """The leads pass finds ids duplicated across chunks from their sorted 64-bit hashes
    (8 bytes an id) instead of a distinct count's hash table; only rows whose hash repeats
    are compared as text, so even colliding hashes (``weak``: one per id length) give
    exactly the duplicated ids."""
    rng = np.random.default_rng(4)
    ids = [f"L{v}" for v in rng.integers(0, 5000, 3000)] + [None, None, "0042", "42"]
    keys = pd.Series(ids, dtype="str")
    if weak:
        monkeypatch.setattr(
            partitioned,
            "hashes_in_slices",
            lambda k: k.str.len().fillna(-1).to_numpy(dtype=np.int64).astype(np.uint64),
        )
    found = partitioned._duplicated(keys)
    assert sorted(found) == _old_duplicated(keys)
    assert len(found) > 100 and found.dtype == keys.dtype
    unique = pd.Series([f"L{v}" for v in range(3000)], dtype="str")
    assert len(partitioned._duplicated(unique)) == 0
