"""The nightly CSV export's rows, best first, from the spilled partitions: built as each
partition arrives, merged by rank once the last has.

The export is sorted by global rank, but the partitions come one at a time (the second
pass of ``pipelines/passes.py``) while the store is written. So the work is cut in two:

1. :meth:`RankExport.add`, per partition as soon as it is spilled: read it once (only
   the columns the export needs), make its export rows (``serving.export_arrow``), sort
   them by rank and cut them at the chunks' rank bounds into one Arrow file beside it
   (record batch ``k``: its rows of chunk ``k``).
2. :meth:`RankExport.chunks`, once every partition is in and the call lists are routed:
   chunk ``k`` is batch ``k`` of every such file, merged by rank, with each lead's
   ``call_rep`` and ``call_position`` placed then (the call lists need every partition).

Memory holds one partition, then one chunk; each spilled byte is read once; time and
memory are linear in the batch. :func:`export_by_rank` runs both steps in one go.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from leadscore.pipelines.spilled import Ranking, Spilled, spilled_table
from leadscore.serving.export import CALL_EXPORT
from leadscore.serving.export_arrow import export_column, export_table
from leadscore.serving.export_fields import EXPORT_COLUMNS, REASON_COLUMNS

EXPORT_READS = ("lead_id", "reasons")
"""Spilled columns the export reads besides its own (reason lines come from the JSON)."""

_NOT_SPILLED = (*REASON_COLUMNS, *CALL_EXPORT, "rank", "percentile", "rule_rank")
_BATCH_COLUMNS = ("model_version", "batch_id", "scored_at")


class RankExport:
    """The export of one batch, ``rows`` ranks a chunk, its cut files in ``folder``.

    ``stamp``: the batch's ``model_version``, ``batch_id`` and ``scored_at``.
    """

    def __init__(
        self, ranking: Ranking, stamp: Mapping[str, object], rows: int, folder: Path
    ) -> None:
        if rows < 1:
            raise ValueError("rows per chunk must be >= 1")
        self._ranking = ranking
        self._constants = {c: stamp[c] for c in _BATCH_COLUMNS}
        # chunk k holds ranks [bounds[k], bounds[k + 1])
        self._bounds = np.arange(1, len(ranking) + rows + 1, rows)
        self._folder = Path(folder)
        self._files: dict[int, Path] = {}

    def add(self, part: Spilled, i: int) -> None:
        """Step 1 for partition ``i``: its export rows, sorted by rank, cut into chunks."""
        rank, percentile = self._ranking.part(i)
        scores = _export_reads(part).append_column("rank", pa.array(rank))
        scores = scores.append_column("percentile", pa.array(np.round(percentile, 2)))
        scores = scores.append_column("rule_rank", pa.array(self._ranking.rule_part(i)))
        table = export_table(scores, self._constants, _no_calls(scores.num_rows))
        order = np.argsort(rank, kind="stable")
        cuts = np.searchsorted(rank[order], self._bounds)
        path = self._folder / f"{i:06d}.arrow"
        self._files[i] = _write_cut(table.take(order), cuts, path)

    def chunks(self, calls: pd.DataFrame | None) -> Iterator[pa.Table]:
        """Step 2: the export rows, best first, a chunk at a time, with the call lists'
        reps and positions (``Routing.calls``; None: no call lists)."""
        n_parts = len(self._ranking.cuts) - 1
        if sorted(self._files) != list(range(n_parts)):
            raise ValueError(f"{len(self._files)} partitions exported, {n_parts} ranked")
        if not n_parts or not len(self._ranking):
            return
        placed = _placed_calls(calls)
        files = [self._files[i] for i in range(n_parts)]
        for k in range(len(self._bounds) - 1):
            chunk = pa.Table.from_batches([_read_batch(path, k) for path in files])
            if len(files) > 1:
                chunk = chunk.take(pc.sort_indices(chunk["rank"]))
            yield _with_calls(chunk, _lead_calls(placed, chunk["lead_id"]))


def export_by_rank(
    parts: Sequence[Spilled],
    ranking: Ranking,
    calls: pd.DataFrame | None,
    stamp: Mapping[str, object],
    rows: int,
) -> Iterator[pa.Table]:
    """The CSV export's rows (``serving.export_arrow.export_table``), best first, ``rows``
    ranks at a time: :class:`RankExport` over ``parts``, in a temporary folder beside
    them. ``calls``: the call lists (``Routing.calls``; None: none)."""
    if rows < 1:
        raise ValueError("rows per chunk must be >= 1")
    if not len(parts) or not len(ranking):
        return
    with tempfile.TemporaryDirectory(prefix="export-", dir=parts[0].path.parent) as folder:
        export = RankExport(ranking, stamp, rows, Path(folder))
        for i, part in enumerate(parts):
            export.add(part, i)
        yield from export.chunks(calls)


def _export_reads(part: Spilled) -> pa.Table:
    """The columns of a spilled partition the export reads (``spilled_table``: from a
    file, only the pages read are loaded)."""
    table = spilled_table(part)
    wanted = [*EXPORT_READS, *(c for c in EXPORT_COLUMNS if c not in _NOT_SPILLED)]
    wanted = [c for c in dict.fromkeys(wanted) if c not in _BATCH_COLUMNS]
    missing = [c for c in wanted if c not in table.column_names]
    if missing:
        raise ValueError(f"cannot export scores: missing column(s) {missing}")
    return table.select(wanted)


def _write_cut(table: pa.Table, cuts: np.ndarray, path: Path) -> Path:
    """``table`` as an Arrow file whose record batch ``k`` is rows ``cuts[k]:cuts[k+1]``."""
    batches = table.combine_chunks().to_batches()  # one batch: the rows, contiguous
    batch = batches[0] if batches else pa.RecordBatch.from_pylist([], schema=table.schema)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, batch.schema) as writer:
        for a, b in itertools.pairwise(cuts):
            writer.write_batch(batch.slice(int(a), int(b - a)))
    return path


def _read_batch(path: Path, k: int) -> pa.RecordBatch:
    """Record batch ``k`` of an Arrow file, read into memory (only its bytes)."""
    with pa.OSFile(str(path)) as source:
        return pa.ipc.open_file(source).get_batch(k)


def _placed_calls(calls: pd.DataFrame | None) -> tuple[pd.Index, np.ndarray, pd.Series] | None:
    """The call lists' placed leads: their ids (as text), reps and positions."""
    if calls is None or not len(calls):
        return None
    placed = calls[calls["rep_id"].notna()]
    ids = pd.Index(placed["lead_id"].astype(str))
    return ids, placed["rep_id"].to_numpy(dtype=object), placed["position"].astype("Int64")


def _no_calls(n: int) -> dict[str, pa.Array]:
    """Step 1's call columns: none yet (placed per chunk by :meth:`RankExport.chunks`)."""
    return {CALL_EXPORT[0]: pa.nulls(n, pa.string()), CALL_EXPORT[1]: pa.nulls(n, pa.int64())}


def _lead_calls(
    placed: tuple[pd.Index, np.ndarray, pd.Series] | None, lead_ids: pa.ChunkedArray
) -> dict[str, pa.Array]:
    """``call_rep`` and ``call_position`` of each lead (null when on no list), as
    ``serving.export.with_calls`` gives them."""
    n = len(lead_ids)
    rep = np.full(n, None, dtype=object)
    position = np.zeros(n, dtype=np.int64)
    known = np.zeros(n, dtype=bool)
    if placed is not None:
        ids, reps, positions = placed
        at = ids.get_indexer(pd.Index(lead_ids.to_numpy()).astype(str))
        found = np.flatnonzero(at >= 0)
        rep[found] = reps[at[found]]
        position[found] = positions.to_numpy(dtype=np.int64, na_value=0)[at[found]]
        known[found] = positions.notna().to_numpy()[at[found]]
    return {
        CALL_EXPORT[0]: pa.array(rep),
        CALL_EXPORT[1]: pa.array(position, mask=~known, type=pa.int64()),
    }


def _with_calls(chunk: pa.Table, calls: Mapping[str, pa.Array]) -> pa.Table:
    """``chunk`` with its call columns replaced by ``calls``, made as the export makes
    every column (``export_column``)."""
    for name, column in calls.items():
        at = chunk.schema.get_field_index(name)
        chunk = chunk.set_column(at, name, export_column(name, column))
    return chunk
