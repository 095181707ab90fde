"""The store's reads of the call lists (schema 6, issue #18): a rep's list, the leads no
rep could take, and per-rep counts.

Every read pins one complete batch first (the current one through the ``current_batch``
pointer by default, or a named published/superseded batch) and reads only that batch's
``calls`` rows, joined with their ``scores`` row for the lead's facts, so a list never
mixes two batches. Costs on a 1M-lead batch (SQLite, this machine): a rep's list is a
range of the index ``ix_calls_rep`` (batch, rep, position) plus one primary-key probe of
``scores`` per call (~1 ms); a page of unassigned leads walks the batch's ``score_ranks``
(``store/ranks.py``) probing ``calls`` and ``scores`` by key (~10 ms); the per-rep sums read the
assigned rows only (at most the team's capacity) and the unassigned are counted on the
index (~0.1 s for a million, which is why the API and the page keep a batch's counts:
``serving/calls.py`` ``CallCounts``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, and_, func, select

from leadscore.serving.store import codec
from leadscore.serving.store.base import StoreBase
from leadscore.serving.store.outbound_schema import calls_table
from leadscore.serving.store.ranks import ranked_scores
from leadscore.serving.store.reader import pinned_batch
from leadscore.serving.store.schema import BatchInfo, ranks_table, scores_table

CALL_FIELDS: tuple[str, ...] = ("rep_id", "position", "expected", "method", "reason")
"""The ``calls`` columns a read returns (besides ``lead_id``)."""
LEAD_FIELDS: tuple[str, ...] = (
    "lead_id",
    "name",
    "company",
    "email",
    "record_id",
    "owner",
    "segment",
    "score",
    "grade",
    "probability",
    "rank",
    "fit_score",
    "engagement_score",
    "cell",
    "reasons",
    "last_activity",
    "last_activity_at",
    "next_step",
    "next_step_gain",
)
"""The ``scores`` columns joined to each call: who the lead is, its score and reasons."""


def _joined(by_rank: bool = False) -> Any:
    """SELECT of the call columns and the lead's score columns, calls joined to scores
    (``by_rank``: both joined to the batch's ``score_ranks``, to walk it in rank order)."""
    c, s = calls_table, scores_table
    on_calls = and_(s.c.batch_id == c.c.batch_id, s.c.lead_id == c.c.lead_id)
    source = ranked_scores().join(c, on_calls) if by_rank else c.join(s, on_calls)
    return select(
        *(s.c[n] for n in LEAD_FIELDS), *(c.c[n] for n in CALL_FIELDS), s.c.packed
    ).select_from(source)


def rep_query(batch_id: str, rep_id: str) -> Any:
    """A rep's calls in one batch, in call order: a range of ``ix_calls_rep``."""
    c = calls_table
    return (
        _joined()
        .where(c.c.batch_id == batch_id, c.c.rep_id == rep_id)
        .order_by(c.c.position, c.c.lead_id)
    )


def _unassigned_count(conn: Connection, batch_id: str) -> int:
    """Leads of the batch routed to nobody, counted on ``ix_calls_rep`` alone."""
    c = calls_table
    return int(
        conn.scalar(
            select(func.count())
            .select_from(c)
            .where(c.c.batch_id == batch_id, c.c.rep_id.is_(None))
        )
        or 0
    )


def _rows(conn: Connection, query: Any, batch_id: str) -> list[dict[str, Any]]:
    # plain str keys (SQLAlchemy's are a str subclass, which fast JSON encoders refuse)
    names = [*LEAD_FIELDS, *CALL_FIELDS, codec.PACKED]
    rows = [dict(zip(names, row, strict=True)) for row in conn.execute(query).all()]
    codec.restore(conn, rows, batch_id)  # schema 8's packed reasons (store/codec.py)
    return rows


class StoreCallReads(StoreBase):
    """Call lists of a batch (the current one unless named), as people and clients read
    them."""

    def call_list(
        self, rep_id: str, batch_id: str | None = None
    ) -> tuple[BatchInfo | None, list[dict[str, Any]]]:
        """The batch read and ``rep_id``'s calls in it, position 1 first.

        Each row holds :data:`LEAD_FIELDS` (the lead's score row: reasons still as stored
        JSON) and :data:`CALL_FIELDS`. ``(None, [])`` before the first publish; an empty
        list when the rep has no call in the batch."""
        self._require_schema()
        with self.engine.connect() as conn:
            info = pinned_batch(conn, batch_id)
            if info is None:
                return None, []
            return info, _rows(conn, rep_query(info.batch_id, rep_id), info.batch_id)

    def unassigned_calls(
        self,
        batch_id: str | None = None,
        *,
        after_rank: int = 0,
        limit: int = 100,
        count: bool = True,
    ) -> tuple[BatchInfo | None, list[dict[str, Any]], int | None]:
        """The batch read, one page of the leads routed to nobody (``rep_id`` null) and
        how many there are in all (None unless ``count``: a count reads every unassigned
        entry of the index, ~0.1 s for a million). The page holds them best first: those
        ranked after ``after_rank``, at most ``limit`` (keyset paging on the batch's
        unique rank). Rows as :meth:`call_list`'s; ``reason`` says why no rep could take
        the lead."""
        self._require_schema()
        with self.engine.connect() as conn:
            info = pinned_batch(conn, batch_id)
            if info is None:
                return None, [], 0
            c, r = calls_table, ranks_table
            total = _unassigned_count(conn, info.batch_id) if count else None
            query = (
                _joined(by_rank=True)
                .where(r.c.batch_id == info.batch_id, c.c.rep_id.is_(None), r.c.rank > after_rank)
                .order_by(r.c.rank, r.c.lead_id)
                .limit(limit)
            )
            return info, _rows(conn, query, info.batch_id), total

    def call_counts(
        self, batch_id: str | None = None
    ) -> tuple[BatchInfo | None, dict[str, tuple[int, float]], int]:
        """The batch read; per rep id, its calls and their expected value summed
        (``{rep_id: (assigned, expected)}``, a rep without a call in the batch absent);
        and the number of leads no rep could take. ``(None, {}, 0)`` before the first
        publish. The sums read only the assigned rows (at most the team's capacity); the
        unassigned are counted on the index alone."""
        self._require_schema()
        with self.engine.connect() as conn:
            info = pinned_batch(conn, batch_id)
            if info is None:
                return None, {}, 0
            c = calls_table
            rows = conn.execute(
                select(c.c.rep_id, func.count(), func.sum(c.c.expected))
                .where(c.c.batch_id == info.batch_id, c.c.rep_id.is_not(None))
                .group_by(c.c.rep_id)
            ).all()
            unassigned = _unassigned_count(conn, info.batch_id)
        return info, {rep: (int(n), float(total or 0.0)) for rep, n, total in rows}, unassigned
