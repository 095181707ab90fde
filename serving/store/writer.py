"""The store's writing half: publish a batch atomically, clean up failed and old ones."""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta

import pandas as pd
from sqlalchemy import Connection, delete, func, insert, select, update

from leadscore.serving.store.bulk import chunk_table
from leadscore.serving.store.call_writes import delete_batch_rows, validate_calls, write_calls
from leadscore.serving.store.changes import prepare_changes, write_changes
from leadscore.serving.store.checks import new_batch_id, validate_scores
from leadscore.serving.store.migrate import StoreError
from leadscore.serving.store.owner import this_host, writer_dead
from leadscore.serving.store.partitions import create_batch_table, detach_concurrently
from leadscore.serving.store.ranks import write_ranks
from leadscore.serving.store.schema import (
    FAILED,
    PUBLISHED,
    SUPERSEDED,
    WRITING,
    BatchInfo,
    batches_table,
    changes_table,
    current_batch_table,
    scores_table,
)
from leadscore.serving.store.sink import ChunkWriter

log = logging.getLogger(__name__)


class StoreWriter(ChunkWriter):
    """Publishing: batches are written completely, then made current in one transaction."""

    # ----------------------------------------------------------------- publish

    def publish(
        self,
        scores: pd.DataFrame,
        *,
        model_version: str,
        as_of: datetime,
        batch_id: str | None = None,
        grade_order: Sequence[str] | None = None,
        calls: pd.DataFrame | None = None,
    ) -> BatchInfo:
        """Write ``scores`` as a new batch and make it current; return the published batch.

        ``grade_order`` lists the grades best first (e.g. the keys of
        ``scoring.grades``) and decides whether a grade change is ``up`` or ``down`` in
        the change feed; by default grades compare alphabetically (A best). ``calls``
        (``Routing.calls``) are the batch's call lists, written after its rows
        (``store/call_writes.py``): current with it, deleted with it.

        Steps: validate; insert the batch row as ``writing``; insert the rows in chunks
        (one transaction each, so memory and lock times stay small); check the row count;
        then, in one transaction, point ``current_batch`` at the new batch, mark it
        ``published`` and the previous one ``superseded``. If anything raises before that
        transaction commits, the batch is marked ``failed``, its rows are deleted (both
        best effort) and the error is re-raised: the previous batch stays current and
        complete. Pruning of old batches runs afterwards and never fails the publish.
        """
        self._require_schema()
        frame = validate_scores(scores)
        call_rows = None if calls is None else validate_calls(calls)
        batch_id = self._open_batch(model_version, as_of, batch_id, len(frame))
        try:
            with self._sink(len(frame)) as sink:
                for chunk in self._chunks(frame):
                    sink.put(chunk_table(chunk, batch_id))
            self._attach_rows(batch_id)
            write_calls(self.engine, call_rows, batch_id, self.config.chunk_rows)
            self._before_count(batch_id)
            with self.engine.connect() as conn:
                self._check_written(conn, batch_id, len(frame))
            self._flip(batch_id, grade_order)
        except BaseException:
            self._abandon(batch_id)
            raise
        return self._after_flip(batch_id)

    def publish_stream(
        self,
        partitions: Iterable[pd.DataFrame],
        *,
        model_version: str,
        as_of: datetime,
        batch_id: str | None = None,
        grade_order: Sequence[str] | None = None,
        check: Callable[[int], None] | None = None,
        calls: pd.DataFrame | Callable[[], pd.DataFrame | None] | None = None,
    ) -> BatchInfo:
        """Write a stream of score partitions as ONE batch, then make it current once.

        The partitioned nightly run hands its partitions over as they are scored, so the
        whole batch never sits in memory. Same guarantees as :meth:`publish`: each
        partition is validated and inserted in chunks while the batch is ``writing``;
        after the last one the row count is checked (a lead in two partitions fails on
        the primary key), ``n_rows`` is set and the pointer flips in one transaction.
        Any error (also one raised by the iterator itself) marks the batch ``failed``,
        deletes its rows and re-raises: the previous batch stays current. An empty
        stream is refused before anything is written. ``check`` is called with the number
        of rows written, before the flip: if it raises (e.g. the caller's count of leads
        in does not add up), the batch is abandoned the same way. ``calls``: as
        :meth:`publish` (each call's lead must be in the stream), or a function giving
        them once the stream is exhausted (call lists routed from the partitions'
        pools, known only after the last one).
        """
        self._require_schema()
        stream = iter(partitions)
        first = next(stream, None)
        if first is None:
            raise ValueError("no score partitions: refusing to publish an empty batch")
        call_rows = None if calls is None or callable(calls) else validate_calls(calls)
        batch_id = self._open_batch(model_version, as_of, batch_id, 0)
        try:
            total = 0
            with self._sink(len(first)) as sink:
                for part in itertools.chain([first], stream):
                    frame = validate_scores(part)
                    for chunk in self._chunks(frame):
                        sink.put(chunk_table(chunk, batch_id))
                    total += len(frame)
            self._attach_rows(batch_id)
            if callable(calls):
                routed = calls()
                call_rows = None if routed is None else validate_calls(routed)
            write_calls(self.engine, call_rows, batch_id, self.config.chunk_rows)
            if check is not None:
                check(total)
            self._before_count(batch_id)
            with self.engine.begin() as conn:
                self._check_written(conn, batch_id, total)
                conn.execute(
                    update(batches_table)
                    .where(batches_table.c.batch_id == batch_id)
                    .values(n_rows=total)
                )
            self._flip(batch_id, grade_order)
        except BaseException:
            self._abandon(batch_id)
            raise
        return self._after_flip(batch_id)

    def _before_count(self, batch_id: str) -> None:
        """Once every row, call and check is in: VACUUM on PostgreSQL (then the count, and
        the ranks' pairs, are read from an index alone), then the batch's ranks in rank
        order (``store/ranks.py``)."""
        prepare_changes(self.engine)
        write_ranks(self.engine, batch_id)

    def _open_batch(
        self, model_version: str, as_of: datetime, batch_id: str | None, n_rows: int
    ) -> str:
        """Check the batch's labels and insert its row as "writing"; return its id.

        Called outside the clean-up block: if this insert fails (e.g. the batch_id
        exists), the batch is not ours and must not be marked failed or emptied. The row
        records this host and pid as the writer; a dead run's batch is reaped first.
        """
        if as_of.tzinfo is None or as_of.utcoffset() is None:
            raise ValueError("as_of must be a timezone-aware datetime")
        if not model_version:
            raise ValueError("model_version must be a non-empty string")
        created_at = datetime.now(UTC)
        batch_id = batch_id or new_batch_id(created_at)
        try:
            self.reap_dead_writers()
        except Exception:  # clean-up never stops a publish
            log.exception("could not reap the batches of dead runs")
        with self.engine.begin() as conn:
            conn.execute(
                insert(batches_table).values(
                    batch_id=batch_id,
                    model_version=model_version,
                    as_of=as_of,
                    created_at=created_at,
                    published_at=None,
                    n_rows=n_rows,
                    status=WRITING,
                    writer_host=this_host(),
                    writer_pid=os.getpid(),
                )
            )
            if self._batch_tables():  # its rows' own table (store/partitions.py)
                create_batch_table(conn, batch_id)
        return batch_id

    @staticmethod
    def _check_written(conn: Connection, batch_id: str, expected: int) -> None:
        """Refuse to flip a batch whose rows in the store are not exactly those written."""
        written = conn.scalar(
            select(func.count())
            .select_from(scores_table)
            .where(scores_table.c.batch_id == batch_id)
        )
        if written != expected:
            raise StoreError(f"batch {batch_id}: {written} rows in the store, expected {expected}")

    def _after_flip(self, batch_id: str) -> BatchInfo:
        """Prune old batches (a failure there cannot unpublish) and describe the new one."""
        try:
            self._prune()
        except Exception:
            log.exception("pruning old score batches failed; batch %s is published", batch_id)
        info = self._get_batch(batch_id)
        if info is None:  # pragma: no cover - only if someone deleted it meanwhile
            raise StoreError(f"batch {batch_id} vanished after publishing")
        return info

    def _chunks(self, frame: pd.DataFrame) -> Iterator[pd.DataFrame]:
        """Yield consecutive slices of ``chunk_rows`` rows."""
        size = self.config.chunk_rows
        for start in range(0, len(frame), size):
            yield frame.iloc[start : start + size]

    def _flip(self, batch_id: str, grade_order: Sequence[str] | None = None) -> None:
        """Make ``batch_id`` current in one transaction (the only visible step of publish).

        The pointer row is updated first: it takes the write lock (SQLite) or the row
        lock (PostgreSQL), so concurrent publishers flip one after the other. The change
        feed against the batch being replaced (the one still ``published``) is written
        next, in the same transaction. Every other ``published`` batch is then
        superseded, which keeps "exactly one published batch, the current one" true even
        when two publishers race.
        """
        with self.engine.begin() as conn:
            moved = conn.execute(
                update(current_batch_table)
                .where(current_batch_table.c.id == 1)
                .values(batch_id=batch_id)
            ).rowcount
            if moved != 1:
                raise StoreError("the current_batch pointer row is missing: run create()")
            previous = conn.scalar(
                select(batches_table.c.batch_id).where(
                    batches_table.c.status == PUBLISHED, batches_table.c.batch_id != batch_id
                )
            )
            if previous is not None:
                write_changes(conn, batch_id, previous, grade_order)
            conn.execute(
                update(batches_table)
                .where(
                    batches_table.c.status == PUBLISHED,
                    batches_table.c.batch_id != batch_id,
                )
                .values(status=SUPERSEDED)
            )
            published = conn.execute(
                update(batches_table)
                .where(batches_table.c.batch_id == batch_id, batches_table.c.status == WRITING)
                .values(status=PUBLISHED, published_at=datetime.now(UTC))
            ).rowcount
            if published != 1:
                raise StoreError(f"batch {batch_id} is no longer 'writing'; not publishing it")

    def _abandon(self, batch_id: str) -> None:
        """Best effort after a failed publish: mark the batch failed, then drop its rows
        (scores and calls).

        Only a batch still ``writing`` is touched, so a batch that did get published
        (e.g. the commit went through but the connection dropped) keeps its rows.
        """
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    update(batches_table)
                    .where(batches_table.c.batch_id == batch_id, batches_table.c.status == WRITING)
                    .values(status=FAILED)
                )
        except Exception:
            log.exception("could not mark batch %s as failed", batch_id)
        try:
            with self.engine.begin() as conn:
                delete_batch_rows(conn, batch_id, (FAILED,))
        except Exception:
            log.exception("could not delete the rows of failed batch %s", batch_id)

    def _prune(self) -> None:
        """Keep the newest ``keep_batches`` complete batches; delete the older ones.

        Complete batches are the published one and the superseded ones, newest first by
        publication time. Failed attempts older than the oldest kept batch go too. A
        batch that is ``writing`` (maybe another run in flight) or current is never
        touched: each delete re-checks the status in its own transaction.
        """
        self.reap_stale_writing(timedelta(hours=self.config.stale_writing_hours))
        self.reap_dead_writers()
        keep = self.config.keep_batches
        with self.engine.connect() as conn:
            complete = conn.execute(
                select(batches_table.c.batch_id, batches_table.c.published_at)
                .where(batches_table.c.status.in_((PUBLISHED, SUPERSEDED)))
                .order_by(batches_table.c.published_at.desc(), batches_table.c.batch_id.desc())
            ).all()
            if len(complete) <= keep:
                oldest_kept = complete[-1].published_at if complete else None
                doomed = []
            else:
                oldest_kept = complete[keep - 1].published_at
                doomed = [row.batch_id for row in complete[keep:]]
            if oldest_kept is not None:
                doomed += conn.scalars(
                    select(batches_table.c.batch_id).where(
                        batches_table.c.status == FAILED,
                        batches_table.c.created_at < oldest_kept,
                    )
                ).all()
        for old in doomed:
            detach_concurrently(self.engine, old)  # readers of `scores` are not locked out
            with self.engine.begin() as conn:
                delete_batch_rows(conn, old, (SUPERSEDED, FAILED))
                conn.execute(delete(changes_table).where(changes_table.c.batch_id == old))
                conn.execute(
                    delete(batches_table).where(
                        batches_table.c.batch_id == old,
                        batches_table.c.status.in_((SUPERSEDED, FAILED)),
                    )
                )
            log.info("pruned score batch %s", old)

    def reap_stale_writing(self, older_than: timedelta) -> list[str]:
        """Mark ``writing`` batches started more than ``older_than`` ago as failed and
        delete their rows; return their ids.

        A publisher killed mid-write (SIGKILL, OOM, lost machine) cannot clean up after
        itself: its batch stays ``writing`` with part of its rows, invisible to readers
        but taking space. Called from every publish with ``stale_writing_hours``; the
        failed rows are later pruned like any failed attempt.
        """
        cutoff = datetime.now(UTC) - older_than
        with self.engine.connect() as conn:
            stale = conn.scalars(
                select(batches_table.c.batch_id).where(
                    batches_table.c.status == WRITING, batches_table.c.created_at < cutoff
                )
            ).all()
        return self._reap(stale)

    def reap_dead_writers(self) -> list[str]:
        """Reap (as :meth:`reap_stale_writing`) the ``writing`` batches whose writer ran on
        this host and is dead (``store.owner``); return their ids.

        Called when a batch is opened and after every publish, so a run killed
        mid-write is cleaned up by the next run, whatever its age. Writers on other
        hosts (or from before schema 3) are left to ``stale_writing_hours``.
        """
        c = batches_table.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(c.batch_id, c.writer_host, c.writer_pid).where(c.status == WRITING)
            ).all()
        return self._reap([r.batch_id for r in rows if writer_dead(r.writer_host, r.writer_pid)])

    def _reap(self, batch_ids: Sequence[str]) -> list[str]:
        """Mark the batches that are still ``writing`` failed, then delete their rows."""
        reaped = []
        for batch_id in batch_ids:
            with self.engine.begin() as conn:
                marked = conn.execute(
                    update(batches_table)
                    .where(batches_table.c.batch_id == batch_id, batches_table.c.status == WRITING)
                    .values(status=FAILED)
                ).rowcount
                if marked:
                    delete_batch_rows(conn, batch_id, (FAILED,))
                    reaped.append(batch_id)
            if marked:
                log.warning("batch %s was left 'writing' by a dead run: marked failed", batch_id)
        return reaped
