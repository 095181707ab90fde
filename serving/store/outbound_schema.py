"""Schema 6's tables (issue #18): call lists published with their batch, and the webhook
deliveries made after it.

``calls`` is owned by its batch (written before the batch is made current, deleted with
it): one row per lead routed that day, to a rep (``rep_id``, ``position``) or to nobody
(``rep_id`` null, ``reason`` says why). ``webhook_deliveries`` is one row per (endpoint,
event): its idempotency key, body, status (``pending``, ``delivered``, ``dead``: the
dead-letter list) and attempts; ``webhook_attempts`` logs every try. Deliveries outlive
the batch that caused them (a log is not pruned with the scores).
"""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from leadscore.serving.store.schema import UTCDateTime, metadata

PENDING = "pending"
DELIVERED = "delivered"
DEAD = "dead"
DELIVERY_STATUSES: tuple[str, ...] = (PENDING, DELIVERED, DEAD)

calls_table = Table(
    "calls",
    metadata,
    Column(
        "batch_id", String(64), ForeignKey("batches.batch_id", ondelete="CASCADE"), nullable=False
    ),
    Column("lead_id", String(255), nullable=False),
    Column("rep_id", String(255), nullable=True),  # null: no rep could take the lead today
    Column("position", Integer, nullable=True),  # 1 = call first; null when unassigned
    Column("expected", Double, nullable=False),  # probability x value (value 1 without one)
    Column("method", String(32), nullable=False),  # routing.method that placed it
    Column("reason", Text, nullable=False),  # why this rep, or why nobody
    PrimaryKeyConstraint("batch_id", "lead_id", name="pk_calls"),
    Index("ix_calls_rep", "batch_id", "rep_id", "position"),
)

webhook_deliveries_table = Table(
    "webhook_deliveries",
    metadata,
    Column("endpoint", String(255), nullable=False),  # webhooks.endpoints[].name
    Column("event_id", String(64), nullable=False),  # the idempotency key
    Column("event", String(32), nullable=False),
    Column("batch_id", String(64), nullable=False),  # not a foreign key: outlives the batch
    Column("lead_id", String(255), nullable=True),
    Column("body", Text, nullable=False),  # the JSON POSTed, byte for byte on every try
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("delivered_at", UTCDateTime, nullable=True),
    Column("last_status", Integer, nullable=True),  # last HTTP status (null: no answer)
    Column("last_error", Text, nullable=True),
    PrimaryKeyConstraint("endpoint", "event_id", name="pk_webhook_deliveries"),
    CheckConstraint(
        "status IN (" + ", ".join(f"'{s}'" for s in DELIVERY_STATUSES) + ")",
        name="ck_webhook_deliveries_status",
    ),
    Index("ix_webhook_deliveries_status", "status"),
)

webhook_attempts_table = Table(
    "webhook_attempts",
    metadata,
    Column("endpoint", String(255), nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("attempt", Integer, nullable=False),  # 1, 2, ...
    Column("at", UTCDateTime, nullable=False),
    Column("status", Integer, nullable=True),  # HTTP status; null: no answer (timeout, refused)
    Column("error", Text, nullable=True),
    Column("seconds", Double, nullable=False),
    PrimaryKeyConstraint("endpoint", "event_id", "attempt", name="pk_webhook_attempts"),
)

OUTBOUND_TABLES: tuple[Table, ...] = (
    calls_table,
    webhook_deliveries_table,
    webhook_attempts_table,
)
"""Schema 6's new tables, in creation order."""
