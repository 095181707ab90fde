"""The nightly batch between scoring and publishing: spill, rank once, stream out.

Ranks are global (rank 1 is the best open lead of the whole batch), but a partition's
other scores need only its own rows. So each partition is scored once, completely
(features, probability, exact reasons, rules, the leads' facts), and its frame is
*spilled* to an Arrow file; only its raw log-odds stay in memory (8 bytes a lead). Once
every partition is scored, the ranks are computed in one go, and the spilled partitions
are streamed, ranked, into one store batch and, meanwhile, into the CSV export, sorted
by rank (:func:`export_by_rank`). Memory is bounded by the partition size. Each partition
also keeps its routing pool (its leads graded for a call today, a few columns:
``models/routing/pool.py``); the pools are routed once, and the call lists go into the
same store batch (current with it) and into the CSV.

Used by the score flow's tasks and by ``make bench``, so the benchmark times this code.
The spill folder must be visible to every worker (any local folder for threads or a
one-machine Dask cluster; a shared mount across machines).
"""

from __future__ import annotations

import itertools
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from leadscore.features.config import FeatureConfig
from leadscore.features.contract import LEAD_ID
from leadscore.features.facts import FACT_FRAME_COLUMNS, lead_facts
from leadscore.models.routing.config import RoutingConfig
from leadscore.models.routing.frames import Routing
from leadscore.models.routing.pool import batch_pool, route_pool
from leadscore.models.scoring import (
    SCORE_COLUMNS,
    Partition,
    StageTimes,
)
from leadscore.pipelines.spilled import Ranking, Spilled, by_rank, ranked_slices
from leadscore.serving.export import CALL_EXPORT, write_csv_chunks_atomic
from leadscore.serving.export_arrow import export_table
from leadscore.serving.export_fields import EXPORT_COLUMNS, REASON_COLUMNS
from leadscore.serving.store import BatchInfo, ScoreStore
from leadscore.serving.store.checks import new_batch_id


def with_facts(
    frame: pd.DataFrame,
    part: Partition,
    as_of: pd.Timestamp,
    features: FeatureConfig,
    display: Mapping[str, str],
) -> pd.DataFrame:
    """A partition's scores (``score_partition``) with its leads' facts beside them: the
    display columns, last activity, timeline and attributes (``features/facts.py``), as
    of the scoring time, so they are spilled, ranked and published with the scores."""
    facts = lead_facts(part.leads, part.activities, as_of, features, display)
    if not np.array_equal(facts[LEAD_ID].to_numpy(), frame[LEAD_ID].to_numpy()):
        facts = facts.set_index(LEAD_ID).reindex(frame[LEAD_ID]).reset_index()
    facts.index = frame.index  # the same leads in the same order: assign by position
    return frame.assign(**{c: facts[c] for c in FACT_FRAME_COLUMNS})  # Arrow text kept


@dataclass(frozen=True)
class Published:
    """What publishing a spilled batch produced."""

    batch: BatchInfo
    csv: Path
    top: pd.DataFrame
    routing: Routing | None = None  # the day's call lists, None: no rep configured


def publish_spilled(
    parts: Iterable[Spilled],
    store: ScoreStore,
    *,
    model_version: str,
    as_of: pd.Timestamp,
    grade_order: Sequence[str],
    csv_path: Path,
    chunk_rows: int,
    top: int,
    times: StageTimes | None = None,
    check: Callable[[int], None] | None = None,
    bom: bool = False,
    routing: RoutingConfig | None = None,
    ranking: Ranking | None = None,
) -> Published:
    """Rank the spilled partitions, route their pool, stream them and the call lists
    into one store batch, and the CSV beside it (a thread: Arrow, numba and the drivers
    let go of the GIL while they work, so on two cores the two overlap).

    ``ranking``: the batch's ranks, known before its partitions are finished (the first
    pass of ``pipelines.passes``); then ``parts`` may be a lazy iterator, each partition
    streamed into the store as it arrives while the next is still being scored. None:
    ``parts`` are all here, and are ranked first.

    The store batch becomes current in one transaction at the end of the stream (a
    failure leaves the previous batch current); the CSV, sorted by rank, is written from
    the same files (once every partition has arrived) to a temporary file that replaces
    the old one only once the batch is current (a failed publish removes it). ``top``
    best leads are returned.
    ``check`` gets the number of rows written before the batch becomes current (see
    ``ScoreStore.publish_stream``): the score flow's lead conservation. ``bom`` starts
    the CSV with a UTF-8 byte-order mark (``output.csv_bom``). ``routing`` (its reps):
    the partitions' pools (``Spilled.pool``) are dealt out to call lists once, written
    with the batch (visible with it, gone if it fails) and named in the CSV
    (``call_rep``, ``call_position``); no rep or no pool: no call lists.
    With ``times``, "publish" counts the publisher's own seconds, not those it waited
    for a partition still being scored.
    """
    if ranking is None:
        parts = list(parts)
        ranking = Ranking.of(parts)
    batch_id = new_batch_id()  # named first: the CSV (every row names it) is written meanwhile
    stamp = {"model_version": model_version, "batch_id": batch_id, "scored_at": as_of}
    current = _Flip()
    arrived: list[Spilled] = []
    routed: list[Routing | None] = []
    writing: list[Future[Path]] = []
    waited = StageTimes()  # seconds inside "publish" that were not the publisher's

    def stream(pool: ThreadPoolExecutor) -> Iterator[pd.DataFrame]:
        """The ranked slices of each partition as it arrives; after the last, the call
        lists are routed and the CSV export starts."""
        coming = iter(parts)
        while True:
            with waited.stage("wait"):
                part = next(coming, None)
            if part is None:
                break
            arrived.append(part)
            yield from ranked_slices(part, len(arrived) - 1, ranking)
        if len(arrived) != len(ranking.cuts) - 1:
            raise ValueError(f"{len(arrived)} partitions arrived, {len(ranking.cuts) - 1} ranked")
        with waited.stage("route"), stage(times, "route"):
            pooled = batch_pool([p.pool for p in arrived]) if routing is not None else None
            routed.append(route_pool(pooled, routing) if pooled is not None and routing else None)
        calls = routed[0].calls if routed[0] is not None else None
        rows = current.gate(export_by_rank(arrived, ranking, calls, stamp, chunk_rows))
        writing.append(pool.submit(write_csv_chunks_atomic, rows, csv_path, bom=bom))

    def calls() -> pd.DataFrame | None:
        return routed[0].calls if routed and routed[0] is not None else None

    with ThreadPoolExecutor(1, thread_name_prefix="csv-export") as pool:
        try:
            with stage(times, "publish"):
                batch = store.publish_stream(
                    stream(pool),
                    model_version=model_version,
                    as_of=as_of.to_pydatetime(),
                    batch_id=batch_id,
                    grade_order=list(grade_order),
                    check=check,
                    calls=calls,
                )
        except BaseException:
            current.failed()
            raise
        finally:
            if times is not None:
                times.seconds["publish"] -= sum(waited.seconds.values())
        current.made()
        with stage(times, "export"):  # what the CSV adds after the flip
            csv = writing[0].result()
    head = next(by_rank(arrived, ranking, max(top, 1))).head(top) if len(ranking.rank) else None
    head = head if head is not None else pd.DataFrame(columns=list(SCORE_COLUMNS))
    return Published(batch, csv, head[list(SCORE_COLUMNS)].reset_index(drop=True), routed[0])


class _Flip:
    """Whether the batch became current, for the CSV written beside its publish: only
    then may the file replace the old one; a failed publish stops it (the old stays)."""

    def __init__(self) -> None:
        self._known = threading.Event()
        self._current = False

    def made(self) -> None:
        self._current = True
        self._known.set()

    def failed(self) -> None:
        self._known.set()

    def gate(self, chunks: Iterator[pa.Table]) -> Iterator[pa.Table]:
        """``chunks``, then a wait for the flip; raises if the publish failed."""
        for chunk in chunks:
            if self._known.is_set() and not self._current:
                break
            yield chunk
        self._known.wait()
        if not self._current:
            raise RuntimeError("the batch was not published: its CSV is not written")


EXPORT_READS = ("lead_id", "reasons")
"""Spilled columns the export reads besides its own (reason lines come from the JSON)."""

_NOT_SPILLED = (*REASON_COLUMNS, *CALL_EXPORT, "rank", "percentile", "rule_rank")
_BATCH_COLUMNS = ("model_version", "batch_id", "scored_at")


def export_by_rank(
    parts: Sequence[Spilled],
    ranking: Ranking,
    calls: pd.DataFrame | None,
    stamp: Mapping[str, object],
    rows: int,
) -> Iterator[pa.Table]:
    """The CSV export's rows (``serving.export_arrow.export_table``), best first, ``rows``
    ranks at a time, in time and memory linear in the batch.

    Two passes over the spilled files. First each partition, read once (only the columns
    the export needs), becomes its export rows, sorted by rank and cut at the chunks'
    rank bounds into one Arrow file beside it (record batch ``k``: its rows of chunk
    ``k``). Then chunk ``k`` is batch ``k`` of every such file, merged by rank. Memory
    holds one partition, then one chunk; each spilled byte is read once. ``stamp``: the
    batch's ``model_version``, ``batch_id`` and ``scored_at``; ``calls``: the call lists
    (``Routing.calls``; None: none).
    """
    if rows < 1:
        raise ValueError("rows per chunk must be >= 1")
    bounds = np.arange(1, len(ranking.rank) + rows + 1, rows)  # chunk k: [bounds[k], bounds[k+1])
    if not len(parts) or not len(ranking.rank):
        return
    placed = _placed_calls(calls)
    constants = {c: stamp[c] for c in _BATCH_COLUMNS}
    with tempfile.TemporaryDirectory(prefix="export-", dir=parts[0].path.parent) as folder:
        files = []
        for i, part in enumerate(parts):
            rank, percentile = ranking.part(i)
            scores = _export_reads(part.path).append_column("rank", pa.array(rank))
            scores = scores.append_column("percentile", pa.array(np.round(percentile, 2)))
            scores = scores.append_column("rule_rank", pa.array(ranking.rule_part(i)))
            table = export_table(scores, constants, _part_calls(placed, scores["lead_id"]))
            order = np.argsort(rank, kind="stable")
            cuts = np.searchsorted(rank[order], bounds)
            files.append(_write_cut(table.take(order), cuts, Path(folder) / f"{i:06d}.arrow"))
            del scores, table
        for k in range(len(bounds) - 1):
            pieces = [_read_batch(path, k) for path in files]
            chunk = pa.Table.from_batches(pieces)
            yield chunk if len(files) == 1 else chunk.take(pc.sort_indices(chunk["rank"]))


def _export_reads(path: Path) -> pa.Table:
    """The columns of a spilled file the export reads (memory-mapped: only the pages read
    are loaded, and they are let go with the table)."""
    with pa.memory_map(str(path)) as source:
        reader = pa.ipc.open_file(source)
        names = reader.schema.names
        wanted = [*EXPORT_READS, *(c for c in EXPORT_COLUMNS if c not in _NOT_SPILLED)]
        wanted = [c for c in dict.fromkeys(wanted) if c not in _BATCH_COLUMNS]
        missing = [c for c in wanted if c not in names]
        if missing:
            raise ValueError(f"cannot export scores: missing column(s) {missing}")
        return reader.read_all().select(wanted)  # no copy: the mapping stays while used


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


def _part_calls(
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


def stage(times: StageTimes | None, name: str) -> AbstractContextManager[None]:
    """``times.stage(name)``, or nothing when not timing."""
    return times.stage(name) if times is not None else nullcontext()
