"""The store's tables (SQLAlchemy Core, SQLite and PostgreSQL) and its batch vocabulary.

The ``scores`` table's score columns are derived from the score row declared in
``models/schema.py``; see the package docstring for what each table holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)
from sqlalchemy.types import TypeDecorator, TypeEngine

from leadscore.models.schema import (
    BATCH_COLUMNS,
    FLOAT_COLUMNS,
    INT_COLUMNS,
    NULLABLE_INT_COLUMNS,
    SCORE_COLUMNS,
    SCORE_FIELDS,
    TEXT_COLUMNS,
    ScoreField,
)

__all__ = [
    "APPEARED",
    "BATCH_COLUMNS",
    "CHANGE_KINDS",
    "DOWN",
    "FAILED",
    "FLOAT_COLUMNS",
    "INT_COLUMNS",
    "LEFT",
    "MONITOR_TABLES",
    "NULLABLE_INT_COLUMNS",
    "PUBLISHED",
    "SCHEMA_VERSION",
    "SCORE_COLUMNS",
    "STATUSES",
    "SUPERSEDED",
    "TEXT_COLUMNS",
    "TEXT_DTYPE",
    "UP",
    "WRITING",
    "BatchInfo",
    "UTCDateTime",
    "batch_info",
    "batches_table",
    "changes_table",
    "codecs_table",
    "current_batch_table",
    "metadata",
    "monitor_batches_table",
    "monitor_drift_table",
    "monitor_grades_table",
    "monitor_runs_table",
    "ranks_table",
    "schema_version_table",
    "scores_table",
    "sql_type",
]

SCHEMA_VERSION: int = 11
"""Version of the table layout below; bump it (and add a migration) when it changes."""

# Batch statuses.
WRITING = "writing"
PUBLISHED = "published"
FAILED = "failed"
SUPERSEDED = "superseded"
STATUSES: tuple[str, ...] = (WRITING, PUBLISHED, FAILED, SUPERSEDED)

# Change kinds of the feed.
UP = "up"
DOWN = "down"
APPEARED = "appeared"
LEFT = "left"
CHANGE_KINDS: tuple[str, ...] = (UP, DOWN, APPEARED, LEFT)

TEXT_DTYPE: Any = "str" if int(pd.__version__.split(".")[0]) >= 3 else object


class StoreError(RuntimeError):
    """The store cannot be used as asked (not created, wrong schema, lost rows)."""


class SchemaVersionError(StoreError):
    """The store's schema_version does not match what this code can read or write."""


@dataclass(frozen=True)
class BatchInfo:
    """What the store knows about one scoring batch (a row of ``batches``)."""

    batch_id: str
    model_version: str
    as_of: datetime
    created_at: datetime
    published_at: datetime | None
    n_rows: int
    status: str


class UTCDateTime(TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that only accepts aware values and returns UTC-aware ones.

    SQLite has no time-zone type: SQLAlchemy stores a naive string there, so values are
    normalised to UTC before storing and tagged as UTC when read back. PostgreSQL's
    ``timestamptz`` returns values in the session time zone; they are converted to UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Refuse naive datetimes (ambiguous) and store everything as UTC."""
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Hand back UTC-aware datetimes whatever the backend returned."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def batch_info(row: Any) -> BatchInfo:
    """Map a ``batches`` row to a BatchInfo."""
    return BatchInfo(
        batch_id=row.batch_id,
        model_version=row.model_version,
        as_of=row.as_of,
        created_at=row.created_at,
        published_at=row.published_at,
        n_rows=row.n_rows,
        status=row.status,
    )


def sql_type(field: ScoreField) -> TypeEngine[Any]:
    """The column type of a score field: bounded text, unbounded text, integer, double."""
    if field.kind == "int":
        return Integer()
    if field.kind == "float":
        return Double()
    return String(field.length) if field.length is not None else Text()


metadata = MetaData()

schema_version_table = Table(
    "schema_version",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", Integer, nullable=False),
    Column("applied_at", UTCDateTime, nullable=False),
    CheckConstraint("id = 1", name="ck_schema_version_single_row"),
)

batches_table = Table(
    "batches",
    metadata,
    Column("batch_id", String(64), primary_key=True),
    Column("model_version", String(255), nullable=False),
    Column("as_of", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("published_at", UTCDateTime, nullable=True),
    Column("n_rows", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    # schema 3: who writes the batch, so the next run reaps a dead writer's batch at once
    Column("writer_host", String(255), nullable=True),
    Column("writer_pid", Integer, nullable=True),
    CheckConstraint(
        "status IN (" + ", ".join(f"'{s}'" for s in STATUSES) + ")",
        name="ck_batches_status",
    ),
    Index("ix_batches_status", "status"),
)


def _owned_by_batch() -> Column[str]:
    """The ``batch_id`` column of a table whose rows belong to a batch (deleted with it)."""
    return Column(
        "batch_id",
        String(64),
        ForeignKey("batches.batch_id", ondelete="CASCADE"),
        nullable=False,
    )


scores_table = Table(
    "scores",
    metadata,
    _owned_by_batch(),
    # schema 4 appended the columns after ``reasons`` (migrated tables add them last too)
    *(Column(f.name, sql_type(f), nullable=f.nullable) for f in SCORE_FIELDS),
    # schema 8: reasons, rule_reasons and timeline as one zstd blob (store/codec.py);
    # NULL in rows written before it, which keep those columns' text
    Column("packed", LargeBinary, nullable=True),
    PrimaryKeyConstraint("batch_id", "lead_id", name="pk_scores"),
    Index("ix_scores_lead", "lead_id"),  # schema 2: a lead's history across batches
    # schema 7: what the change feed compares, so computing it in the flip transaction
    # reads two small indexes, never the 2 KB rows (store/changes.py); schema 11 adds the
    # rank, so a batch's order (ranks_table) and the page index read it alone
    Index("ix_scores_feed", "batch_id", "lead_id", "grade", "score", "owner", "rank"),
    # schema 10: on PostgreSQL one partition a batch, written bare, indexed, then attached
    # (store/partitions.py); SQLite ignores it
    postgresql_partition_by="LIST (batch_id)",
)
# schema 9: on PostgreSQL the batch_id foreign key above is dropped after creation
# (store/migrate.py drop_scores_batch_fk); rows are deleted explicitly, never by cascade

ranks_table = Table(
    "score_ranks",
    metadata,
    # schema 11 (issue #19): a batch's leads in rank order, written once every row is in,
    # in that order (store/ranks.py); replaces the (batch_id, rank) index of ``scores``,
    # which rows arriving in lead order filled at random; equal ranks by lead id. No
    # foreign key (its per-row check was a fifth of PostgreSQL's COPY, schema 9): rows
    # are written for a batch being written and deleted with its rows
    Column("batch_id", String(64), nullable=False),
    Column("rank", Integer, nullable=False),
    Column("lead_id", String(255), nullable=False),
    PrimaryKeyConstraint("batch_id", "rank", "lead_id", name="pk_score_ranks"),
    sqlite_with_rowid=False,
)

codecs_table = Table(
    "codecs",
    metadata,
    # schema 8: the zstd dictionary of each batch's ``packed`` values (store/codec.py)
    Column(
        "batch_id",
        String(64),
        ForeignKey("batches.batch_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("tag", LargeBinary, nullable=False),  # CRC-32 of the dictionary, every value's prefix
    Column("dictionary", LargeBinary, nullable=False),
)

current_batch_table = Table(
    "current_batch",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("batch_id", String(64), ForeignKey("batches.batch_id"), nullable=True),
    CheckConstraint("id = 1", name="ck_current_batch_single_row"),
)

changes_table = Table(
    "changes",
    metadata,
    _owned_by_batch(),
    Column("lead_id", String(255), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("previous_batch_id", String(64), nullable=False),
    Column("owner", String(255), nullable=True),
    Column("old_grade", String(32), nullable=True),
    Column("new_grade", String(32), nullable=True),
    Column("old_score", Integer, nullable=True),
    Column("new_score", Integer, nullable=True),
    PrimaryKeyConstraint("batch_id", "lead_id", name="pk_changes"),
    CheckConstraint(
        "kind IN (" + ", ".join(f"'{k}'" for k in CHANGE_KINDS) + ")",
        name="ck_changes_kind",
    ),
)


# Schema 5 (issue #17): the closed loop's monitor runs and what they found per batch.
# Keyed by batch_id but NOT owned by ``batches``: a batch's monitoring outlives the
# batch's scores (pruned after ``keep_batches``); the archive keeps the scores it judges.

monitor_runs_table = Table(
    "monitor_runs",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("now", UTCDateTime, nullable=False),  # outcomes known up to here
    Column("champion_version", String(255), nullable=True),
    Column("horizon_days", Integer, nullable=False),
    Column("action", String(16), nullable=False),  # "retrain" | "none"
    Column("text", Text, nullable=False),  # "retrain: PSI of lead_source 0.31 > 0.2"
    Column("reasons", Text, nullable=False),  # JSON list of the thresholds crossed
    Column("mlflow_run_id", String(64), nullable=True),
    Index("ix_monitor_runs_created", "created_at"),
)

monitor_batches_table = Table(
    "monitor_batches",
    metadata,
    Column("batch_id", String(64), primary_key=True),
    Column("as_of", UTCDateTime, nullable=False),
    Column("model_version", String(255), nullable=False),
    Column("n_leads", Integer, nullable=False),
    Column("n_known", Integer, nullable=False),
    Column("conversions", Integer, nullable=False),
    Column("observed_days", Integer, nullable=False),
    Column("mature", Boolean, nullable=False),
    Column("metrics", Text, nullable=False),  # JSON: METRIC_NAMES + capture_top_<k>[_rules]
    Column("quarantine", Text, nullable=False),  # JSON: reason -> rows quarantined
    Column("run_id", String(64), ForeignKey("monitor_runs.run_id"), nullable=False),
    Index("ix_monitor_batches_as_of", "as_of"),
)


def _judged_batch() -> Column[str]:
    """The ``batch_id`` of a row that belongs to a judged batch (replaced with it)."""
    return Column(
        "batch_id",
        String(64),
        ForeignKey("monitor_batches.batch_id", ondelete="CASCADE"),
        nullable=False,
    )


monitor_grades_table = Table(
    "monitor_grades",
    metadata,
    _judged_batch(),
    Column("as_of", UTCDateTime, nullable=False),
    Column("ranking", String(16), nullable=False),  # "model" | "rules"
    Column("grade", String(32), nullable=False),
    Column("n", Integer, nullable=False),
    Column("conversions", Integer, nullable=False),
    Column("predicted", Double, nullable=True),
    Column("realised", Double, nullable=True),
    Column("low", Double, nullable=True),
    Column("high", Double, nullable=True),
    Column("observed_days", Integer, nullable=False),
    Column("mature", Boolean, nullable=False),
    Column("position", Integer, nullable=False),  # the row's place in the result (grade order)
    PrimaryKeyConstraint("batch_id", "ranking", "grade", name="pk_monitor_grades"),
)

monitor_drift_table = Table(
    "monitor_drift",
    metadata,
    _judged_batch(),
    Column("as_of", UTCDateTime, nullable=False),
    Column("feature", String(255), nullable=False),  # a model feature, or "prediction"
    Column("kind", String(16), nullable=False),
    Column("psi", Double, nullable=True),
    Column("missing_ref", Double, nullable=True),
    Column("missing_now", Double, nullable=True),
    Column("unseen_now", Double, nullable=True),
    Column("top_shift", Text, nullable=True),
    Column("position", Integer, nullable=False),  # the row's place in the result
    PrimaryKeyConstraint("batch_id", "feature", name="pk_monitor_drift"),
)

MONITOR_TABLES: tuple[Table, ...] = (
    monitor_runs_table,
    monitor_batches_table,
    monitor_grades_table,
    monitor_drift_table,
)
"""Schema 5's tables, in creation order (parents first)."""
