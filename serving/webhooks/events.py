"""The events of one published batch, read from the store (docs/webhooks.md, Events).

Five types, each compared with the batch the published one replaced:

* ``grade_up`` / ``grade_down``: the change feed's ``up`` / ``down`` rows;
* ``new_top_lead``: the lead reached the best grade (the first of ``scoring.grades``),
  appearing with it or moving up into it;
* ``threshold``: the score crossed ``webhooks.threshold`` either way (``direction`` up:
  from below to at-or-above; down: the reverse), a join of the two batches' scores;
* ``assigned``: the lead is on a rep's call list and was not on that rep's list in the
  previous batch (the first batch of a store: every assigned lead).

The selection runs in the database (a few index scans whatever the batch size); only
the events come back. Each event's id is a SHA-256 of its type, batch, lead and rep: the
same event always has the same id, the idempotency key of every delivery of it. Events
exist only for a batch that was published: anything else is refused.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, and_, or_, select

from leadscore.serving.store import PUBLISHED, SUPERSEDED, ScoreStore, StoreError
from leadscore.serving.store.outbound_schema import calls_table
from leadscore.serving.store.schema import (
    APPEARED,
    DOWN,
    UP,
    BatchInfo,
    batches_table,
    changes_table,
    scores_table,
)


class NotPublishedError(StoreError):
    """Events were asked for a batch that never became current (failed, writing, unknown)."""


@dataclass(frozen=True)
class Event:
    """One alert: its idempotency key, type, lead and the JSON body POSTed for it."""

    event_id: str
    type: str
    batch_id: str
    lead_id: str
    body: str


def event_id(event: str, batch_id: str, lead_id: str, rep: str | None = None) -> str:
    """The idempotency key: SHA-256 (hex) of the fields that make the event itself."""
    key = "\x1f".join((event, batch_id, lead_id, rep or ""))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _number(value: Any) -> float | int | None:
    if value is None:
        return None
    number = float(value)
    return int(number) if number.is_integer() else number


def published_batch(store: ScoreStore, batch_id: str) -> BatchInfo:
    """The batch if it was published (current or since superseded); else refuse."""
    store._require_schema()
    info = store._get_batch(batch_id)
    if info is None:
        raise NotPublishedError(f"batch {batch_id!r} is not in the store: no webhook is sent")
    if info.status not in (PUBLISHED, SUPERSEDED):
        raise NotPublishedError(
            f"batch {batch_id} is {info.status!r}, not published: no webhook is sent "
            "for a batch that did not publish"
        )
    return info


def previous_batch(conn: Connection, info: BatchInfo) -> str | None:
    """The batch ``info`` replaced: named by its change feed, else the complete batch
    published just before it (None for a store's first batch)."""
    named = conn.scalar(
        select(changes_table.c.previous_batch_id)
        .where(changes_table.c.batch_id == info.batch_id)
        .limit(1)
    )
    if named is not None or info.published_at is None:
        return named
    return conn.scalar(
        select(batches_table.c.batch_id)
        .where(
            batches_table.c.status.in_((PUBLISHED, SUPERSEDED)),
            batches_table.c.published_at < info.published_at,
        )
        .order_by(batches_table.c.published_at.desc(), batches_table.c.batch_id.desc())
        .limit(1)
    )


def _changes(conn: Connection, batch_id: str) -> list[Any]:
    c = changes_table
    return list(
        conn.execute(
            select(c.c.lead_id, c.c.kind, c.c.owner, c.c.old_grade, c.c.new_grade)
            .add_columns(c.c.old_score, c.c.new_score)
            .where(c.c.batch_id == batch_id, c.c.kind.in_((UP, DOWN, APPEARED)))
            .order_by(c.c.lead_id)
        ).all()
    )


def _crossings(conn: Connection, batch_id: str, previous: str, threshold: int) -> list[Any]:
    n, o = scores_table.alias("n"), scores_table.alias("o")
    up = and_(o.c.score < threshold, n.c.score >= threshold)
    down = and_(o.c.score >= threshold, n.c.score < threshold)
    query = (
        select(n.c.lead_id, n.c.owner, o.c.grade, n.c.grade, o.c.score, n.c.score)
        .select_from(n.join(o, and_(o.c.lead_id == n.c.lead_id, o.c.batch_id == previous)))
        .where(n.c.batch_id == batch_id, or_(up, down))
        .order_by(n.c.lead_id)
    )
    return list(conn.execute(query).all())


def _assignments(conn: Connection, batch_id: str, previous: str | None) -> list[Any]:
    c, p, s = calls_table.alias("c"), calls_table.alias("p"), scores_table
    query = (
        select(c.c.lead_id, c.c.rep_id, c.c.position, c.c.method, c.c.reason, c.c.expected)
        .add_columns(s.c.owner, s.c.grade, s.c.score)
        .select_from(c.outerjoin(s, and_(s.c.batch_id == c.c.batch_id, s.c.lead_id == c.c.lead_id)))
        .where(c.c.batch_id == batch_id, c.c.rep_id.is_not(None))
        .order_by(c.c.rep_id, c.c.position, c.c.lead_id)
    )
    if previous is not None:
        before = (
            select(p.c.lead_id)
            .where(p.c.batch_id == previous, p.c.lead_id == c.c.lead_id, p.c.rep_id == c.c.rep_id)
            .exists()
        )
        query = query.where(~before)
    return list(conn.execute(query).all())


def build_events(
    store: ScoreStore,
    batch_id: str,
    *,
    grade_order: Sequence[str],
    threshold: int,
    now: datetime | None = None,
) -> list[Event]:
    """Every event of published batch ``batch_id``, in type order then lead order.

    ``grade_order`` lists the grades best first (``scoring.grades``); its first is the
    "top" grade of ``new_top_lead``. Raises :class:`NotPublishedError` for a batch that
    was not published.
    """
    info = published_batch(store, batch_id)
    created = _iso(now or datetime.now(UTC))
    top = grade_order[0] if grade_order else None
    base = {"batch_id": batch_id, "as_of": _iso(info.as_of)}
    events: list[Event] = []

    def add(kind: str, lead_id: str, data: dict[str, Any], rep: str | None = None) -> None:
        key = event_id(kind, batch_id, lead_id, rep)
        body = {"id": key, "type": kind, **base, "lead_id": lead_id, "data": data}
        body["created_at"] = created
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        events.append(Event(key, kind, batch_id, lead_id, text))

    with store.engine.connect() as conn:
        previous = previous_batch(conn, info)
        changes = _changes(conn, batch_id)
        crossings = _crossings(conn, batch_id, previous, threshold) if previous else []
        assigned = _assignments(conn, batch_id, previous)

    def grades(row: Any) -> dict[str, Any]:
        return {
            "previous_batch_id": previous,
            "owner": row.owner,
            "old_grade": row.old_grade,
            "new_grade": row.new_grade,
            "old_score": _number(row.old_score),
            "new_score": _number(row.new_score),
        }

    for kind, wanted in (("grade_up", UP), ("grade_down", DOWN)):
        for row in changes:
            if row.kind == wanted:
                add(kind, row.lead_id, grades(row))
    for row in changes:
        if top is not None and row.kind in (UP, APPEARED) and row.new_grade == top:
            add("new_top_lead", row.lead_id, {**grades(row), "appeared": row.kind == APPEARED})
    for lead_id, owner, old_grade, new_grade, old_score, new_score in crossings:
        data = {
            "previous_batch_id": previous,
            "owner": owner,
            "threshold": threshold,
            "direction": "up" if new_score >= threshold else "down",
            "old_grade": old_grade,
            "new_grade": new_grade,
            "old_score": _number(old_score),
            "new_score": _number(new_score),
        }
        add("threshold", lead_id, data)
    for row in assigned:
        data = {
            "previous_batch_id": previous,
            "rep": row.rep_id,
            "position": row.position,
            "method": row.method,
            "reason": row.reason,
            "expected": _number(row.expected),
            "owner": row.owner,
            "grade": row.grade,
            "score": _number(row.score),
        }
        add("assigned", row.lead_id, data, rep=row.rep_id)
    return events
