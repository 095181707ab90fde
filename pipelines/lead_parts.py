"""The open leads' partition files, written while the leads table is checked in chunks.

A partition holds ``scoring.partition_rows`` open leads in ``lead_id`` order, and the
order is global: which partition a lead falls in is known only once every chunk is
checked. Holding every open lead's row until then cost ~0.7 KB a lead (2 GB at 2.5M
leads); here each chunk's clean open rows go to an Arrow file as they come and only
their ids stay in memory (~25 bytes a lead). :meth:`OpenLeads.cut` then sorts the ids,
reads the chunk files back once, one at a time, sending each row to its partition, and
sorts each partition (one at a time) into its final file: memory holds one chunk or one
partition of rows, whatever the table's size. A table of one chunk (the latest chunk
waits in memory) is cut straight from memory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from math import ceil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from leadscore.features.contract import LEAD_ID


def _write(table: pa.Table, path: Path) -> Path:
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return path


def _read(path: Path) -> pa.Table:
    with pa.OSFile(str(path)) as source:  # into memory: the file is rewritten or removed
        return pa.ipc.open_file(source).read_all()


@dataclass(frozen=True)
class LeadPart:
    """One partition's leads file and its lead ids, in the file's (id) order."""

    path: Path
    ids: pa.Array  # large_string
    clean: np.ndarray  # int64: each lead's position among the clean leads (table order)


@dataclass
class OpenLeads:
    """The clean open leads, spilled chunk by chunk to ``folder``.

    The latest chunk waits in memory (as Arrow) until the next one comes: a table of one
    chunk is cut straight into partitions, never written whole and read back.
    """

    folder: Path
    pending: pa.Table | None = None
    files: list[Path] = field(default_factory=list)
    ids: list[pa.Array] = field(default_factory=list)
    clean: list[np.ndarray] = field(default_factory=list)
    empty: pa.Schema | None = None  # the columns, should no chunk hold an open lead

    def add(self, rows: pd.DataFrame, clean: np.ndarray) -> None:
        """Spill one chunk's clean open leads; keep their ids and ``clean``, their
        positions among the clean leads (so no lookup by id is needed to number them)."""
        if self.empty is None:  # the schema alone: an empty slice would keep the chunk's buffers
            self.empty = pa.Table.from_pandas(rows.iloc[:0], preserve_index=False).schema
        if not len(rows):
            return
        self._spill()
        table = pa.Table.from_pandas(rows, preserve_index=False)
        self.pending = table
        self.ids.append(table.column(LEAD_ID).combine_chunks().cast(pa.large_string()))
        self.clean.append(np.asarray(clean, dtype=np.int64))

    def spill(self) -> None:
        """Write the latest chunk now: a caller that knows more chunks follow (Parquet's
        row count) saves holding it in memory while the next one is checked."""
        self._spill()

    def _spill(self) -> None:
        if self.pending is not None:
            path = Path(self.folder) / f"open-leads-{len(self.files):06d}.arrow"
            self.files.append(_write(self.pending, path))
            self.pending = None

    def cut(self, rows: int) -> list[LeadPart]:
        """The open leads in id order, ``rows`` to a partition file (one at least, as
        ``leads-<i>.arrow``); the chunk files are removed."""
        folder = Path(self.folder)
        ids = pa.concat_arrays(self.ids) if self.ids else pa.array([], pa.large_string())
        clean = np.concatenate(self.clean) if self.clean else np.empty(0, np.int64)
        self.ids, self.clean = [], []
        n_parts = max(1, ceil(len(ids) / rows))
        paths = [folder / f"leads-{i:06d}.arrow" for i in range(n_parts)]
        if self.pending is None and not self.files:
            if self.empty is None:
                empty = pa.Table.from_pandas(pd.DataFrame({LEAD_ID: []}), preserve_index=False)
            else:
                empty = self.empty.empty_table()
            _write(empty, paths[0])
            return [LeadPart(paths[0], ids, clean)]
        order = pc.sort_indices(ids).to_numpy()
        rank = np.empty(len(ids), dtype=np.int64)
        rank[order] = np.arange(len(ids), dtype=np.int64)
        cuts = [order[i * rows : (i + 1) * rows] for i in range(n_parts)]
        parts = [
            LeadPart(path, ids.take(pa.array(cut)), clean[cut])
            for path, cut in zip(paths, cuts, strict=True)
        ]
        del ids, clean
        if not self.files:  # one chunk, still in memory: each partition taken from it
            assert self.pending is not None
            for part, cut in zip(parts, cuts, strict=True):
                _write(self.pending.take(pa.array(cut)), part.path)
            self.pending = None
            return parts
        del order, cuts
        self._spill()
        schemas = []
        for file in self.files:
            with pa.memory_map(str(file)) as source:
                schemas.append(pa.ipc.open_file(source).schema)
        schema = pa.unify_schemas(schemas, promote_options="permissive")
        pieces = [folder / f"leads-{i:06d}.pieces" for i in range(n_parts)]
        writers = [pa.ipc.new_file(str(p), schema) for p in pieces]
        ranks: list[list[np.ndarray]] = [[] for _ in range(n_parts)]
        start = 0
        try:
            for file in self.files:
                table = _read(file)
                if table.schema != schema:
                    table = table.cast(schema)
                mine = rank[start : start + table.num_rows]
                start += table.num_rows
                by_rank = np.argsort(mine, kind="stable")
                bounds = np.searchsorted(mine[by_rank] // rows, np.arange(n_parts + 1))
                for i in np.flatnonzero(np.diff(bounds)):
                    taken = by_rank[bounds[i] : bounds[i + 1]]
                    writers[i].write_table(table.take(pa.array(taken)))
                    ranks[i].append(mine[taken])
                del table
                os.remove(file)
        finally:
            for writer in writers:
                writer.close()
        self.files = []
        for i, piece in enumerate(pieces):  # one partition in memory at a time
            table = _read(piece)
            if len(ranks[i]) > 1:  # pieces from several chunks: merge them by rank
                table = table.take(pa.array(np.argsort(np.concatenate(ranks[i]))))
            _write(table, paths[i])
            os.remove(piece)
        return parts
