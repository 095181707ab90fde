"""The nightly batch between scoring and publishing: spill, rank once, stream out.

Ranks are global (rank 1 is the best open lead of the whole batch), but a partition's
other scores need only its own rows. So each partition's scored frame is *spilled* to an
Arrow file; only its raw log-odds and rule points stay in memory (16 bytes a lead). The
ranks are computed in one go, either once every partition is spilled or, in the score
flow, from the first of its two passes (``pipelines/passes.py``) before the partitions
are finished; then each spilled partition is streamed, ranked, into one store batch as it
arrives, and its rows for the CSV export, sorted by rank, are made meanwhile
(``pipelines/rank_export.py``). Memory is bounded by the partition size. Each partition
also keeps its routing pool (its leads graded for a call today, a few columns:
``models/routing/pool.py``); the pools are routed once the last has arrived, and the call
lists go into the same store batch (current with it) and into the CSV.

Used by the score flow's tasks and by ``make bench``, so the benchmark times this code.
The spill folder must be visible to every worker (any local folder for threads or a
one-machine Dask cluster; a shared mount across machines).
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

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
from leadscore.pipelines.rank_export import RankExport
from leadscore.pipelines.spilled import HandOver, Ranking, Spilled, ranked_slices
from leadscore.serving.export import write_csv_chunks_atomic
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
    hand_over: HandOver | None = None,
) -> Published:
    """Rank the spilled partitions, route their pool, stream them and the call lists
    into one store batch, and the CSV beside it (a thread: Arrow, numba and the drivers
    let go of the GIL while they work, so on two cores the two overlap).

    ``ranking``: the batch's ranks, known before its partitions are finished (the first
    pass of ``pipelines.passes``); then ``parts`` may be a lazy iterator, each partition
    streamed into the store as it arrives while the next is still being scored. None:
    ``parts`` are all here, and are ranked first. ``hand_over``: the one the partitions
    are finished with, told when this waits for one (``spilled.HandOver``).

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
    exporting: list[Future[None]] = []  # each partition's first export step, in order
    writing: list[Future[Path]] = []
    waited = StageTimes()  # seconds inside "publish" that were not the publisher's
    best: list[pd.DataFrame] = []  # each slice's rows ranked in the top ``top``

    def stream(pool: ThreadPoolExecutor, folders: ExitStack) -> Iterator[pd.DataFrame]:
        """The ranked slices of each partition as it arrives (its export rows made in the
        export thread meanwhile); after the last, the call lists are routed and the CSV
        is written."""
        coming = iter(parts)
        export: RankExport | None = None
        while True:
            with waited.stage("wait"), hand_over.asking() if hand_over else nullcontext():
                part = next(coming, None)
            if part is None:
                break
            if export is None:  # its cut files beside the spilled ones
                where = tempfile.TemporaryDirectory(prefix="export-", dir=part.path.parent)
                export = RankExport(ranking, stamp, chunk_rows, Path(folders.enter_context(where)))
            arrived.append(part.released())  # its table is let go once read below
            exporting.append(pool.submit(export.add, part, len(arrived) - 1))
            for frame in ranked_slices(part, len(arrived) - 1, ranking):
                best.append(frame[frame["rank"] <= top])
                yield frame
            if part.slot is not None:  # its table read by both: the next may be handed over
                exporting[-1].add_done_callback(_give_back(part.slot))
            del part
        if len(arrived) != len(ranking.cuts) - 1:
            raise ValueError(f"{len(arrived)} partitions arrived, {len(ranking.cuts) - 1} ranked")
        with waited.stage("route"), stage(times, "route"):
            pooled = batch_pool([p.pool for p in arrived]) if routing is not None else None
            routed.append(route_pool(pooled, routing) if pooled is not None and routing else None)
        rows = current.gate(_exported(export, exporting, calls()))
        writing.append(pool.submit(write_csv_chunks_atomic, rows, csv_path, bom=bom))

    def calls() -> pd.DataFrame | None:
        return routed[0].calls if routed and routed[0] is not None else None

    with ExitStack() as folders, ThreadPoolExecutor(1, thread_name_prefix="csv-export") as pool:
        try:
            with stage(times, "publish"):
                batch = store.publish_stream(
                    stream(pool, folders),
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
    head = _best(best) if len(ranking) else pd.DataFrame(columns=list(SCORE_COLUMNS))
    return Published(batch, csv, head[list(SCORE_COLUMNS)].reset_index(drop=True), routed[0])


def _give_back(slot: HandOver) -> Callable[[Future[None]], None]:
    """A done-callback freeing ``slot`` (whatever the future's outcome)."""
    return lambda _: slot.give_back()


def _best(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """The batch's best leads, by rank, from each slice's rows in the top ranks."""
    return pd.concat(frames, ignore_index=True).sort_values("rank", kind="stable")


def _exported(
    export: RankExport | None, steps: Sequence[Future[None]], calls: pd.DataFrame | None
) -> Iterator[pa.Table]:
    """The export's chunks once every partition's first step is done (its error, if any,
    raised here); nothing for an empty batch."""
    for step in steps:
        step.result()
    if export is not None:
        yield from export.chunks(calls)


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


def stage(times: StageTimes | None, name: str) -> AbstractContextManager[None]:
    """``times.stage(name)``, or nothing when not timing."""
    return times.stage(name) if times is not None else nullcontext()
