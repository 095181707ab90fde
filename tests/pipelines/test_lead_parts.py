"""The open leads spilled chunk by chunk and cut into partitions (``pipelines.lead_parts``)
give exactly the partitions of the whole frame sorted by id and sliced, as before."""

from __future__ import annotations

import gc
from math import ceil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from leadscore.pipelines.lead_parts import OpenLeads
from leadscore.pipelines.spilled import read_arrow


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ids = [f"L{v:06d}" for v in rng.permutation(n)]
    ids[0] = "Ä-é"  # non-ASCII ids sort by code point, as pandas sorts them
    return pd.DataFrame(
        {
            "lead_id": pd.Series(ids, dtype="str"),
            "created_at": pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC"),
            "status": pd.Series(["open"] * n, dtype="str"),
            "industry": pd.Series(rng.choice(["a", "b", None], n), dtype="str"),
            "employees": np.where(rng.random(n) < 0.2, np.nan, rng.integers(1, 900, n)),
        }
    )


def _old_cut(frame: pd.DataFrame, rows: int) -> list[pd.DataFrame]:
    """The cut this replaced: every open row in memory, sorted by id, sliced."""
    ordered = frame.sort_values("lead_id", kind="stable").reset_index(drop=True)
    n_parts = max(1, ceil(len(ordered) / rows))
    return [ordered.iloc[i * rows : (i + 1) * rows] for i in range(n_parts)]


@pytest.mark.parametrize(("rows", "chunks"), [(7, 4), (50, 3), (1000, 1), (13, 1)])
def test_partitions_equal_the_whole_frame_sorted_and_sliced(
    tmp_path: Path, rows: int, chunks: int
) -> None:
    frame = _frame(101, seed=rows)
    frame.loc[5:40, "industry"] = None  # a chunk with a column all null
    spill = OpenLeads(tmp_path)
    for part in np.array_split(np.arange(len(frame)), chunks):
        spill.add(frame.iloc[part], 1000 + part)  # their places among the clean leads
    spill.add(frame.iloc[:0], np.empty(0, np.int64))  # a chunk with no open lead
    parts = spill.cut(rows)
    expected = _old_cut(frame, rows)
    assert len(parts) == len(expected)
    for got, want in zip(parts, expected, strict=True):
        pd.testing.assert_frame_equal(read_arrow(got.path), want.reset_index(drop=True))
        assert got.ids.to_pylist() == want["lead_id"].tolist()
        place = {lead: i for i, lead in enumerate(frame["lead_id"])}
        assert got.clean.tolist() == [1000 + place[lead] for lead in want["lead_id"]]
    assert sorted(p.name for p in tmp_path.iterdir()) == [p.path.name for p in parts]


def test_no_open_lead_gives_one_empty_partition_with_the_columns(tmp_path: Path) -> None:
    spill = OpenLeads(tmp_path)
    spill.add(_frame(5, seed=1).iloc[:0], np.empty(0, np.int64))
    (part,) = spill.cut(10)
    assert len(part.ids) == 0
    assert list(read_arrow(part.path).columns) == list(_frame(5, seed=1).columns)


@pytest.mark.parametrize("rows", [7, 1000])
def test_spilling_each_chunk_at_once_gives_the_same_partitions(tmp_path: Path, rows: int) -> None:
    """``spill`` (the leads pass, when Parquet's row count says more chunks follow) writes
    the latest chunk at once instead of holding it: the same partitions."""
    frame = _frame(101, seed=3)
    spill = OpenLeads(tmp_path)
    for part in np.array_split(np.arange(len(frame)), 3):
        spill.add(frame.iloc[part], part)
        spill.spill()
        assert spill.pending is None
    parts = spill.cut(rows)
    expected = _old_cut(frame, rows)
    for got, want in zip(parts, expected, strict=True):
        pd.testing.assert_frame_equal(read_arrow(got.path), want.reset_index(drop=True))


def test_a_spilled_chunk_leaves_only_its_ids_in_memory(tmp_path: Path) -> None:
    """Once written, a chunk's rows are let go: the columns kept for an empty cut are a
    schema (an empty slice of the first chunk held its Arrow buffers, ~0.27 GB a 1M-row
    chunk, through the whole leads pass)."""
    n = 50_000
    before = pa.total_allocated_bytes()
    frame = pd.DataFrame(
        {
            "lead_id": pd.Series([f"L{i:07d}" for i in range(n)], dtype="str"),
            "notes": pd.Series([f"{i:0200d}" for i in range(n)], dtype="str"),  # ~10 MB
        }
    )
    spill = OpenLeads(tmp_path)
    spill.add(frame, np.arange(n))
    spill.spill()
    del frame
    gc.collect()
    held = pa.total_allocated_bytes() - before
    assert held < 2 * n * 16  # the ids (8 characters, 8-byte offsets): not the notes
    (part,) = spill.cut(n)
    assert len(part.ids) == n
