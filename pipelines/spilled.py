"""A scored partition on disk, waiting for its global rank, and reading it back ranked.

Each partition of the nightly batch is scored once, completely, and *spilled* to an Arrow
IPC file (:func:`spill`); only its raw log-odds and rule points stay in memory
(:class:`Spilled`, 16 bytes a lead). Once every partition is scored, :class:`Ranking`
computes the global rank once, and the spilled files are read back with it, for the store
in partition order, a slice at a time (:func:`ranked_partitions`), and for the export as
tables (:func:`spilled_table`). The building blocks of ``pipelines/batch.py``.

When the publisher runs in the process that scored the partition (the local runner), the
scored partition is *handed over* instead (:class:`HandOver`): kept in memory as an
Arrow table (``Spilled.table``) that the publisher and the export read, and let go once
they have; the file then holds only the columns read after the publish (the archive's).
Writing each ~145 MB partition out and reading it back twice cost the 1M bench ~2.5 s of
the publish phase's two busy cores (``bench/README.md``). A partition is handed over only
when the publisher is waiting for it, one at a time: when the store is the slower side
(10M leads on SQLite) finished partitions would queue in memory (10M then peaked ~50 MB
over its validate pass, ~2.08 GB with the writer), so they go to their files as before.
A partition on disk stays the way to a reader on another machine (a Dask cluster).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from leadscore.models.monitor.profile import BatchCounts
from leadscore.models.scoring import RAW_SCORE, rank_and_percentile, rule_ranks, with_rank


class HandOver:
    """Scored partitions handed to the publisher in memory: only while it waits for one
    (:meth:`asking`), and at most ``slots`` at once; any other goes to its file."""

    def __init__(self, slots: int = 1) -> None:
        self._free = threading.BoundedSemaphore(slots)
        self._asked = threading.Event()

    @contextmanager
    def asking(self) -> Iterator[None]:
        """The publisher is waiting for its next partition."""
        self._asked.set()
        try:
            yield
        finally:
            self._asked.clear()

    def take(self) -> bool:
        """A slot for one partition, if the publisher is waiting and one is free (never
        waits itself)."""
        return self._asked.is_set() and self._free.acquire(blocking=False)

    def give_back(self) -> None:
        """Free the slot of a partition the publisher is done with."""
        self._free.release()


@dataclass(frozen=True)
class Spilled:
    """A scored partition waiting for its rank: its Arrow file and its raw scores."""

    path: Path
    raw: np.ndarray
    rule: np.ndarray  # its rule points: the rule rank is global too
    counts: BatchCounts | None = None  # its drift counts (monitor), None: no reference
    pool: pd.DataFrame | None = None  # its leads to route (models/routing/pool.py), None: off
    table: pa.Table | None = None  # the partition handed over in memory (None: all on file)
    slot: HandOver | None = None  # whose slot ``table`` holds, given back once it is read
    n: int | None = None  # its leads, once ``raw`` and ``rule`` are let go (``released``)

    def __len__(self) -> int:
        return len(self.raw) if self.n is None else self.n

    def released(self) -> Spilled:
        """This partition as kept once the batch is ranked and the publisher has it: its
        file, drift counts and pool, not its table, raw scores or rule points (16 bytes a
        lead: ~160 MB by the end of a 10M batch, where the publish sets the peak)."""
        empty = np.zeros(0)
        return replace(self, table=None, slot=None, raw=empty, rule=empty, n=len(self))


PUBLISH_SLICE_ROWS = 25_000
"""Rows of a spilled partition handed to the store at a time, and rows of each record batch
of its file: a whole 250k partition read back as a frame (and validated, a copy) held
~2 GB during the publish, and a whole 125k partition's file mapped to read its slices
kept its ~290 MB resident until the next partition's."""


def write_arrow(frame: pd.DataFrame, path: Path) -> Path:
    """Write ``frame`` as one Arrow IPC file (the batch's on-disk format), in record batches
    of :data:`PUBLISH_SLICE_ROWS` rows; return ``path``."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=PUBLISH_SLICE_ROWS)
    return path


def read_arrow(path: Path, rows: np.ndarray | None = None) -> pd.DataFrame:
    """An Arrow IPC file (or only ``rows`` of it, by position) back as a frame.

    The file is memory-mapped, so taking a few rows does not read the others.
    """
    with pa.memory_map(str(path)) as source:
        table = pa.ipc.open_file(source).read_all()
        if rows is not None:
            table = table.take(pa.array(rows, type=pa.int64()))
        return table.to_pandas()


def spill(
    frame: pd.DataFrame,
    folder: Path,
    index: int,
    counts: BatchCounts | None = None,
    pool: pd.DataFrame | None = None,
    hand_over: HandOver | None = None,
    filed: Iterable[str] = (),
) -> Spilled:
    """Write a scored partition (from ``score_partition``) to ``folder``; keep its raw
    scores (and ``counts``, its drift counts, for the archive; ``pool``, its leads to
    route, for the call lists).

    When ``hand_over`` gives a slot (its publisher waiting, none held), the partition is
    kept in memory (``Spilled.table``) and only the ``filed`` columns are written; else
    every column is."""
    path = Path(folder) / f"part-{index:06d}.arrow"
    scored = frame.drop(columns=[RAW_SCORE])
    table, slot = None, None
    if hand_over is not None and hand_over.take():
        table, slot = pa.Table.from_pandas(scored, preserve_index=False), hand_over
        write_arrow(scored[list(filed)], path)
    else:
        write_arrow(scored, path)
    # copies: a column's array can be a view of the frame's whole block of float columns,
    # which it would keep alive to the end of the batch (measured at 10M: ~50 B a lead)
    raw = frame[RAW_SCORE].to_numpy(dtype=np.float64, copy=True)
    rule = frame["rule_score"].to_numpy(dtype=np.float64, copy=True)
    return Spilled(path, raw, rule, counts, pool, table, slot)


def spilled_table(part: Spilled) -> pa.Table:
    """A spilled partition as an Arrow table: its table when handed over, else its file
    memory-mapped (only the pages read are loaded, and let go with the table)."""
    if part.table is not None:
        return part.table
    with pa.memory_map(str(part.path)) as source:
        return pa.ipc.open_file(source).read_all()


@dataclass(frozen=True)
class Ranking:
    """Global rank and rule rank of every lead, cut back into its partitions.

    Held for the whole publish, so kept at 8 bytes a lead: both ranks as int32 (a batch
    has fewer than 2**31 leads) and the percentile derived from the rank per partition
    (:meth:`part`, the formula of ``rank_and_percentile``) instead of 24 bytes as int64
    and float64 arrays (measured at 3M: ~48 MB of the peak)."""

    rank: np.ndarray
    cuts: np.ndarray
    rule_rank: np.ndarray

    @classmethod
    def of(cls, parts: Sequence[Spilled]) -> Ranking:
        if any(p.n is not None for p in parts):
            raise ValueError("released partitions have no scores left to rank")
        return cls.of_scores([p.raw for p in parts], [p.rule for p in parts])

    @classmethod
    def of_scores(cls, raws: Sequence[np.ndarray], rules: Sequence[np.ndarray]) -> Ranking:
        """The ranks of partitions given by their raw scores and rule points (in order)."""
        raw = np.concatenate(list(raws)) if len(raws) else np.zeros(0)
        rule = np.concatenate(list(rules)) if len(rules) else np.zeros(0)
        rank = rank_and_percentile(raw)[0].astype(np.int32)
        rule_rank = rule_ranks(rule, raw).astype(np.int32)
        cuts = np.cumsum([0, *(len(r) for r in raws)])
        return cls(rank, cuts, rule_rank)

    def __len__(self) -> int:
        return len(self.rank)

    def size(self, i: int) -> int:
        """Leads in partition ``i``."""
        return int(self.cuts[i + 1] - self.cuts[i])

    def part(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(rank, percentile) of partition ``i``'s leads, in its row order: int64 and
        float64, exactly ``rank_and_percentile``'s."""
        rank = self.rank[self.cuts[i] : self.cuts[i + 1]].astype(np.int64)
        n = len(self.rank)
        return rank, 100.0 * (n - rank) / max(n - 1, 1)

    def rule_part(self, i: int) -> np.ndarray:
        """Rule rank of partition ``i``'s leads, in its row order (int64)."""
        return self.rule_rank[self.cuts[i] : self.cuts[i + 1]].astype(np.int64)


def ranked_partitions(
    parts: Sequence[Spilled], ranking: Ranking, rows: int = PUBLISH_SLICE_ROWS
) -> Iterator[pd.DataFrame]:
    """Each spilled partition with its global rank, in partition order (for the store),
    at most ``rows`` rows at a time (:func:`ranked_slices`)."""
    for i, part in enumerate(parts):
        yield from ranked_slices(part, i, ranking, rows)


def ranked_slices(
    part: Spilled, i: int, ranking: Ranking, rows: int = PUBLISH_SLICE_ROWS
) -> Iterator[pd.DataFrame]:
    """Spilled partition ``i`` with its global rank, at most ``rows`` rows at a time: one
    record batch of the file read at a time (not mapped), so memory holds one slice."""
    if len(part) != ranking.size(i):
        raise ValueError(
            f"partition {i} has {len(part)} leads, its ranks {ranking.size(i)}: not the "
            "partitions that were ranked"
        )
    rank, percentile = ranking.part(i)
    rule_rank = ranking.rule_part(i)
    start = 0
    for batch in _record_batches(part):
        for a in range(0, batch.num_rows, rows):
            piece = batch.slice(a, rows)
            frame = piece.to_pandas()
            b, c = start + a, start + a + piece.num_rows
            yield with_rank(frame, rank[b:c], percentile[b:c], rule_rank[b:c])
        start += batch.num_rows
        del batch
    if start == 0:  # an empty partition: one empty frame, as its columns
        schema = part.table.schema if part.table is not None else _file_schema(part.path)
        empty = schema.empty_table().to_pandas()
        yield with_rank(empty, rank[:0], percentile[:0], rule_rank[:0])


def _record_batches(part: Spilled) -> Iterator[pa.RecordBatch]:
    """A spilled partition's record batches: its table's, or its file's read one at a
    time (not mapped), so memory holds one."""
    if part.table is not None:
        yield from part.table.to_batches(max_chunksize=PUBLISH_SLICE_ROWS)
        return
    with pa.OSFile(str(part.path)) as source:
        reader = pa.ipc.open_file(source)
        for k in range(reader.num_record_batches):
            yield reader.get_batch(k)


def _file_schema(path: Path) -> pa.Schema:
    """The columns of an Arrow IPC file."""
    with pa.OSFile(str(path)) as source:
        return pa.ipc.open_file(source).schema
