"""The store's reading half: batches, pages, history and the change feed."""

from __future__ import annotations

import heapq
import itertools
import operator
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Select, bindparam, inspect, select

from leadscore.serving.store import codec
from leadscore.serving.store.base import StoreBase
from leadscore.serving.store.page_index import PageIndexes, indexed_page
from leadscore.serving.store.page_query import PageFilters
from leadscore.serving.store.ranks import ranked_scores
from leadscore.serving.store.schema import (
    BATCH_COLUMNS,
    FLOAT_COLUMNS,
    INT_COLUMNS,
    NULLABLE_INT_COLUMNS,
    PUBLISHED,
    SCORE_COLUMNS,
    SUPERSEDED,
    TEXT_DTYPE,
    BatchInfo,
    batch_info,
    batches_table,
    changes_table,
    current_batch_table,
    ranks_table,
    scores_table,
)


def _frame_from_rows(rows: list[Any]) -> pd.DataFrame:
    """Build the read-side frame (score columns + batch columns) with canonical dtypes."""
    names = [*SCORE_COLUMNS, *BATCH_COLUMNS]
    values: list[Any] = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    data: dict[str, pd.Series] = {}
    for name, column in zip(names, values, strict=True):
        if name in NULLABLE_INT_COLUMNS:
            data[name] = pd.Series(column, dtype="Int64")
        elif name in INT_COLUMNS:
            data[name] = pd.Series(column, dtype="int64")
        elif name in FLOAT_COLUMNS:
            data[name] = pd.Series(column, dtype="float64")
        elif name == "scored_at":
            stamps = pd.to_datetime(list(column), utc=True)
            data[name] = pd.Series(stamps, dtype="datetime64[us, UTC]")
        else:
            data[name] = pd.Series(column, dtype=TEXT_DTYPE)
    return pd.DataFrame(data, columns=names)


# Statements the API runs on every request, built once: SQLAlchemy then reuses their
# memoised cache keys and compiled forms instead of rebuilding and hashing a SELECT per
# request (a third of a page's CPU).
_CURRENT_BATCH = select(batches_table).join(
    current_batch_table, current_batch_table.c.batch_id == batches_table.c.batch_id
)
_COMPLETE_BATCH = select(batches_table).where(
    batches_table.c.batch_id == bindparam("batch_id"),
    batches_table.c.status.in_((PUBLISHED, SUPERSEDED)),
)


def pinned_batch(conn: Connection, batch_id: str | None) -> BatchInfo | None:
    """The current batch (``batch_id`` None) or the named complete batch; None if none.

    Raises LookupError for a named batch that is not complete (never written, failed,
    pruned)."""
    if batch_id is None:
        row = conn.execute(_CURRENT_BATCH).first()
        return batch_info(row) if row is not None else None
    row = conn.execute(_COMPLETE_BATCH, {"batch_id": batch_id}).first()
    if row is None:
        raise LookupError(f"no complete scoring batch {batch_id!r} (pruned?)")
    return batch_info(row)


_LEAD_HISTORY = (
    select(
        *(scores_table.c[name] for name in SCORE_COLUMNS),
        batches_table.c.batch_id,
        batches_table.c.model_version,
        batches_table.c.as_of.label("scored_at"),
        batches_table.c.published_at,
        batches_table.c.status,
        scores_table.c.packed,  # schema 8: restored, then dropped (store/codec.py)
    )
    .join(batches_table, batches_table.c.batch_id == scores_table.c.batch_id)
    .where(
        scores_table.c.lead_id == bindparam("lead_id"),
        batches_table.c.status.in_((PUBLISHED, SUPERSEDED)),
    )
    .order_by(batches_table.c.published_at.desc(), batches_table.c.batch_id.desc())
    .limit(bindparam("limit"))
)
_RANK_OF = operator.itemgetter(SCORE_COLUMNS.index("rank"))
_PAGE_KEYS = (*SCORE_COLUMNS, codec.PACKED)
_PACKED_AT = tuple(SCORE_COLUMNS.index(name) for name in codec.PACKED_COLUMNS)


class StoreReader(StoreBase):
    """Reads always go through the current-batch pointer or name a complete batch."""

    def current_batch(self) -> BatchInfo | None:
        """The batch readers see now, or None before the first publish."""
        self._require_schema()
        with self.engine.connect() as conn:
            return pinned_batch(conn, None)

    def batches(self) -> list[BatchInfo]:
        """Every batch the store still records (all statuses), newest first."""
        self._require_schema()
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(batches_table).order_by(
                    batches_table.c.created_at.desc(), batches_table.c.batch_id.desc()
                )
            ).all()
        return [batch_info(row) for row in rows]

    def read_batch(self, batch_id: str | None = None) -> pd.DataFrame:
        """Return one complete batch, sorted by rank (then lead_id).

        ``None`` reads the current batch through the pointer, in the same single SELECT
        as the rows, so a publish or prune running meanwhile cannot mix two batches.
        An explicit id must name a complete (published or superseded) batch. Columns:
        :data:`SCORE_COLUMNS` then ``batch_id``, ``model_version`` and ``scored_at`` (the
        batch's ``as_of``, UTC). Raises LookupError if there is no such batch.
        """
        self._require_schema()
        r = ranks_table.c
        query: Select[Any] = select(
            *(scores_table.c[name] for name in SCORE_COLUMNS),
            scores_table.c.batch_id,
            batches_table.c.model_version,
            batches_table.c.as_of.label("scored_at"),
            scores_table.c.packed,
        ).select_from(  # in the batch's score_ranks order (store/ranks.py), not sorted here
            ranked_scores().join(batches_table, batches_table.c.batch_id == r.batch_id)
        )
        if batch_id is None:
            query = query.join(current_batch_table, current_batch_table.c.batch_id == r.batch_id)
        else:
            query = query.where(
                r.batch_id == batch_id, batches_table.c.status.in_((PUBLISHED, SUPERSEDED))
            )
        query = query.order_by(r.rank, r.lead_id)
        with self.engine.connect() as conn:
            rows = codec.restore_tuples(
                conn, conn.execute(query).all(), _PACKED_AT, len(SCORE_COLUMNS)
            )
        if not rows:
            self._explain_empty(batch_id)
        return _frame_from_rows(rows)

    def _explain_empty(self, batch_id: str | None) -> None:
        """Raise LookupError saying why a read found no rows."""
        if batch_id is None:
            if self.current_batch() is None:
                raise LookupError("no scoring batch has been published yet")
            return
        info = self._get_batch(batch_id)
        if info is None:
            raise LookupError(f"no scoring batch {batch_id!r} (never written or pruned)")
        if info.status not in (PUBLISHED, SUPERSEDED):
            raise LookupError(f"scoring batch {batch_id!r} is {info.status!r}, not readable")

    # ------------------------------------------------------- reads for the API

    def complete_batches(self) -> list[BatchInfo]:
        """Published and superseded batches, oldest first by publication time."""
        self._require_schema()
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(batches_table)
                .where(batches_table.c.status.in_((PUBLISHED, SUPERSEDED)))
                .order_by(batches_table.c.published_at, batches_table.c.batch_id)
            ).all()
        return [batch_info(row) for row in rows]

    def page(
        self,
        *,
        batch_id: str | None = None,
        after_rank: int = 0,
        limit: int = 100,
        grade: Sequence[str] = (),
        owner: str | None = None,
        min_score: int | None = None,
        changed_since_batch: str | None = None,
        cell: Sequence[str] = (),
        q: str | None = None,
    ) -> tuple[BatchInfo, list[dict[str, Any]]]:
        """One priority-ordered page of a batch: rows with rank > ``after_rank``.

        ``batch_id`` None reads the current batch; the batch read is returned so a cursor
        can pin it (keyset pagination on the unique rank: later pages of a sync read the
        same batch even if a new one is published meanwhile). ``changed_since_batch``
        keeps only rows whose score or grade differ from that batch's (or are absent
        from it). ``cell`` keeps those cells; ``q`` the rows whose lead_id, name,
        company or e-mail contains it, whatever the case. Raises LookupError if there is
        no such complete batch.
        """
        self._require_schema()
        grades = list(dict.fromkeys(grade))
        with self.engine.connect() as conn:
            info = pinned_batch(conn, batch_id)
            if info is None:
                raise LookupError("no scoring batch has been published yet")
            filters = PageFilters(
                info.batch_id, after_rank, owner, min_score, changed_since_batch, cell, q
            )
            plain = min_score is None and not cell and changed_since_batch is None and not q
            if plain and (grades or owner is not None) and conn.dialect.name == "sqlite":
                # ranks of that grade or owner from memory (serving/store/page_index.py)
                indexes = self.__dict__.setdefault("_page_indexes", PageIndexes())
                index = indexes.get(conn, info.batch_id)
                rows = indexed_page(conn, index, info.batch_id, after_rank, limit, grades, owner)
            elif len(grades) > 1 and self._has_index("batch_id", "grade"):
                # one index range per grade, merged by rank: an IN over the index would
                # read every row of those grades to sort them before the LIMIT
                rows = heapq.nsmallest(
                    limit,
                    itertools.chain.from_iterable(
                        conn.execute(*filters.query([g], limit)).all() for g in grades
                    ),
                    key=_RANK_OF,
                )
            else:
                rows = conn.execute(*filters.query(grades, limit)).all()
            # plain str keys (SQLAlchemy's are a str subclass, which fast JSON encoders refuse)
            out = [dict(zip(_PAGE_KEYS, row, strict=True)) for row in rows]
            codec.restore(conn, out, info.batch_id)
        return info, out

    def _has_index(self, *leading: str) -> bool:
        """Whether ``scores`` has an index whose first columns are ``leading`` (looked up
        once per store object: the schema does not change under a running server)."""
        known: dict[tuple[str, ...], bool] = self.__dict__.setdefault("_index_cache", {})
        if leading not in known:
            indexes = inspect(self.engine).get_indexes(scores_table.name)
            known[leading] = any(
                tuple(ix["column_names"][: len(leading)]) == leading for ix in indexes
            )
        return known[leading]

    def batch_as_of(self, when: datetime) -> BatchInfo | None:
        """The complete batch that was current at ``when`` (None if none is kept)."""
        self._require_schema()
        with self.engine.connect() as conn:
            row = conn.execute(
                select(batches_table)
                .where(
                    batches_table.c.status.in_((PUBLISHED, SUPERSEDED)),
                    batches_table.c.published_at <= when,
                )
                .order_by(batches_table.c.published_at.desc(), batches_table.c.batch_id.desc())
                .limit(1)
            ).first()
        return batch_info(row) if row is not None else None

    def lead_history(self, lead_id: str, limit: int = 10) -> list[dict[str, Any]]:
        """The lead's rows in the newest ``limit`` complete batches, newest first.

        Each row holds the score columns plus ``batch_id``, ``model_version``,
        ``scored_at`` and ``published_at``; empty if the lead is in no kept batch.
        """
        return self.lead_history_and_current(lead_id, limit)[0]

    def lead_history_and_current(
        self, lead_id: str, limit: int = 10
    ) -> tuple[list[dict[str, Any]], BatchInfo | None]:
        """:meth:`lead_history` and :meth:`current_batch`, read on one connection (the
        API's lead detail needs both)."""
        self._require_schema()
        with self.engine.connect() as conn:
            found = conn.execute(_LEAD_HISTORY, {"lead_id": lead_id, "limit": limit}).all()
            rows = [dict(r._mapping) for r in found]
            codec.restore(conn, rows)
            current = pinned_batch(conn, None) if rows else None
        return rows, current

    def changes_since(
        self, since: str | None = None, limit_batches: int = 100
    ) -> list[tuple[BatchInfo, list[dict[str, Any]]]]:
        """The change feed of every complete batch published after batch ``since``.

        ``since`` None means every kept batch. Oldest batch first, each with its change
        rows ordered by kind then lead_id. Raises LookupError if ``since`` names no kept
        complete batch (never written, failed, or pruned: the caller must resync).
        """
        self._require_schema()
        kept = self.complete_batches()
        if since is not None:
            ids = [info.batch_id for info in kept]
            if since not in ids:
                raise LookupError(
                    f"batch {since!r} is not a kept complete batch (unknown or pruned): "
                    "resync from /v1/scores"
                )
            kept = kept[ids.index(since) + 1 :]
        kept = kept[:limit_batches]
        out: list[tuple[BatchInfo, list[dict[str, Any]]]] = []
        with self.engine.connect() as conn:
            for info in kept:
                rows = conn.execute(
                    select(changes_table)
                    .where(changes_table.c.batch_id == info.batch_id)
                    .order_by(changes_table.c.kind, changes_table.c.lead_id)
                ).all()
                out.append((info, [dict(r._mapping) for r in rows]))
        return out

    def owners(self, batch_id: str) -> list[str]:
        """Distinct non-null owners of a batch, sorted (the page's owner filter)."""
        self._require_schema()
        with self.engine.connect() as conn:
            return list(
                conn.scalars(
                    select(scores_table.c.owner)
                    .where(scores_table.c.batch_id == batch_id, scores_table.c.owner.is_not(None))
                    .distinct()
                    .order_by(scores_table.c.owner)
                ).all()
            )
