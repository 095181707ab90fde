"""The store's webhook half (schema 6, issue #18): the outbox of alerts and its log.

``webhook_deliveries`` is an outbox: one row per (endpoint, event id), the event id being
the idempotency key. Enqueueing is ``INSERT ... ON CONFLICT DO NOTHING`` (SQLite and
PostgreSQL), so enqueueing an event again is a no-op and its body stays the one first
written, byte for byte. A row is ``pending`` until a try succeeds (``delivered``, final)
or it runs out of tries or the receiver refuses it (``dead``: the dead-letter list, which
:meth:`StoreWebhooks.replay_webhooks` puts back to ``pending``). Every try is a row of
``webhook_attempts``, kept across replays. The HTTP side lives in serving/webhooks/.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from leadscore.serving.store.base import StoreBase
from leadscore.serving.store.outbound_schema import (
    DEAD,
    DELIVERED,
    DELIVERY_STATUSES,
    PENDING,
    webhook_attempts_table,
    webhook_deliveries_table,
)

ENQUEUE_CHUNK = 1000
"""Deliveries inserted per statement (one executemany each, in one transaction)."""

_D = webhook_deliveries_table
_A = webhook_attempts_table


class StoreWebhooks(StoreBase):
    """Webhook deliveries: enqueue once, claim, record each try, list, replay."""

    def enqueue_webhooks(self, rows: Sequence[dict[str, Any]]) -> int:
        """Insert pending deliveries (keys ``endpoint, event_id, event, batch_id, lead_id,
        body, created_at``); return how many were new.

        A row whose (endpoint, event_id) exists is skipped by the database, whatever its
        status: an event is never queued twice, so never delivered twice. All rows go in
        one transaction, in chunks of :data:`ENQUEUE_CHUNK`.
        """
        self._require_schema()
        if not rows:
            return 0
        values = [
            {**row, "status": PENDING, "attempts": 0, "next_attempt_at": None} for row in rows
        ]
        dialect = sqlite if self.engine.dialect.name == "sqlite" else postgresql
        statement = dialect.insert(_D).on_conflict_do_nothing(
            index_elements=[_D.c.endpoint, _D.c.event_id]
        )
        with self.engine.begin() as conn:
            before = self._count(conn)
            for start in range(0, len(values), ENQUEUE_CHUNK):
                conn.execute(statement, values[start : start + ENQUEUE_CHUNK])
            return self._count(conn) - before

    @staticmethod
    def _count(conn: Connection) -> int:
        return int(conn.scalar(select(func.count()).select_from(_D)) or 0)

    def due_webhooks(self, endpoint: str, now: datetime, limit: int | None = None) -> list[Any]:
        """The pending deliveries of ``endpoint`` due at ``now``, oldest first (in the order
        they were enqueued: created_at, batch, event id)."""
        self._require_schema()
        query = (
            select(_D)
            .where(
                _D.c.endpoint == endpoint,
                _D.c.status == PENDING,
                or_(_D.c.next_attempt_at.is_(None), _D.c.next_attempt_at <= now),
            )
            .order_by(_D.c.created_at, _D.c.batch_id, _D.c.event_id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query).all())

    def claim_webhook(self, endpoint: str, event_id: str, now: datetime, until: datetime) -> bool:
        """Lease a due pending delivery until ``until``; False when it is not ours to send.

        The conditional UPDATE is the lock: of two ``deliver`` runs reading the same due
        row, one moves its ``next_attempt_at`` forward and the other updates nothing, so a
        row is never POSTed by two runs at once.
        """
        with self.engine.begin() as conn:
            claimed = conn.execute(
                update(_D)
                .where(
                    _D.c.endpoint == endpoint,
                    _D.c.event_id == event_id,
                    _D.c.status == PENDING,
                    or_(_D.c.next_attempt_at.is_(None), _D.c.next_attempt_at <= now),
                )
                .values(next_attempt_at=until)
            ).rowcount
        return claimed == 1

    def record_webhook_attempt(
        self,
        endpoint: str,
        event_id: str,
        *,
        at: datetime,
        http_status: int | None,
        error: str | None,
        seconds: float,
        outcome: str,
        next_attempt_at: datetime | None = None,
    ) -> int:
        """Log one try and move the delivery to ``outcome`` (delivered, pending to retry at
        ``next_attempt_at``, or dead), in one transaction; return the try's number in the
        log. Only a ``pending`` row moves: a delivered one is final."""
        if outcome not in DELIVERY_STATUSES:
            raise ValueError(f"outcome must be one of {DELIVERY_STATUSES}, got {outcome!r}")
        key = and_(_A.c.endpoint == endpoint, _A.c.event_id == event_id)
        with self.engine.begin() as conn:
            attempt = int(conn.scalar(select(func.coalesce(func.max(_A.c.attempt), 0)).where(key)))
            conn.execute(
                _A.insert().values(
                    endpoint=endpoint,
                    event_id=event_id,
                    attempt=attempt + 1,
                    at=at,
                    status=http_status,
                    error=error,
                    seconds=seconds,
                )
            )
            conn.execute(
                update(_D)
                .where(_D.c.endpoint == endpoint, _D.c.event_id == event_id, _D.c.status == PENDING)
                .values(
                    status=outcome,
                    attempts=_D.c.attempts + 1,
                    next_attempt_at=next_attempt_at if outcome == PENDING else None,
                    delivered_at=at if outcome == DELIVERED else None,
                    last_status=http_status,
                    last_error=error,
                )
            )
        return attempt + 1

    def webhook_deliveries(
        self,
        status: str | None = None,
        *,
        batch_id: str | None = None,
        event_ids: Sequence[str] | None = None,
        newest: int | None = None,
    ) -> list[dict[str, Any]]:
        """Deliveries (the log; ``status="dead"`` is the dead-letter list), oldest first;
        only the ``newest`` ones when given."""
        self._require_schema()
        order = (_D.c.created_at, _D.c.batch_id, _D.c.event_id, _D.c.endpoint)
        query = select(_D).order_by(*(c.desc() for c in order))
        if status is not None:
            query = query.where(_D.c.status == status)
        if batch_id is not None:
            query = query.where(_D.c.batch_id == batch_id)
        if event_ids is not None:
            query = query.where(_D.c.event_id.in_(list(event_ids)))
        with self.engine.connect() as conn:
            rows = conn.execute(query.limit(newest)).all()
        return [dict(r._mapping) for r in reversed(rows)]

    def webhook_attempts(self, endpoint: str, event_id: str) -> list[dict[str, Any]]:
        """Every try of one delivery, first first (replays included)."""
        self._require_schema()
        query = (
            select(_A)
            .where(_A.c.endpoint == endpoint, _A.c.event_id == event_id)
            .order_by(_A.c.attempt)
        )
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query).all()]

    def webhook_counts(self, batch_id: str | None = None) -> dict[str, int]:
        """Deliveries per status (every status present, zeros included)."""
        self._require_schema()
        query = select(_D.c.status, func.count()).group_by(_D.c.status)
        if batch_id is not None:
            query = query.where(_D.c.batch_id == batch_id)
        counts = dict.fromkeys(DELIVERY_STATUSES, 0)
        with self.engine.connect() as conn:
            counts.update({status: int(n) for status, n in conn.execute(query).all()})
        return counts

    def pending_webhooks(self) -> dict[str, tuple[int, datetime | None]]:
        """Per endpoint with pending deliveries: how many, and when the next is due (None:
        one is due now). One GROUP BY, whatever the size of the outbox."""
        self._require_schema()
        query = (
            select(
                _D.c.endpoint,
                func.count(),
                func.count(_D.c.next_attempt_at),
                func.min(_D.c.next_attempt_at),
            )
            .where(_D.c.status == PENDING)
            .group_by(_D.c.endpoint)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return {
            name: (int(n), None if int(timed) < int(n) else due) for name, n, timed, due in rows
        }

    def replay_webhooks(
        self,
        *,
        event_ids: Sequence[str] | None = None,
        batch_id: str | None = None,
        all_dead: bool = False,
    ) -> int:
        """Put dead deliveries back to pending (tries reset, due now); return how many.

        Only ``dead`` rows move: a delivered event is never sent again, and a pending one
        is already queued. Select them by ``event_ids``, by ``batch_id``, or every dead
        row with ``all_dead``; with none of the three nothing is replayed.
        """
        self._require_schema()
        if not event_ids and batch_id is None and not all_dead:
            return 0
        query = update(_D).where(_D.c.status == DEAD)
        if event_ids:
            query = query.where(_D.c.event_id.in_(list(event_ids)))
        if batch_id is not None:
            query = query.where(_D.c.batch_id == batch_id)
        with self.engine.begin() as conn:
            return int(
                conn.execute(
                    query.values(
                        status=PENDING,
                        attempts=0,
                        next_attempt_at=None,
                        last_status=None,
                        last_error=None,
                    )
                ).rowcount
            )
