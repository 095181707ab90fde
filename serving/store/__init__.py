"""The scores store: one relational home for scoring batches (docs/architecture.md §5 and §8).

A *batch* is every open lead scored at one point in time by one model version. Batches
are written completely and only then made current, in one transaction, by moving a
single-row pointer (``current_batch``). Readers always go through that pointer, so:

* a reader never sees half a batch, and
* a run that fails part-way leaves the previous batch current and complete.

Tables (SQLAlchemy Core, works on SQLite and PostgreSQL):

``schema_version``
    one row (id=1) holding :data:`SCHEMA_VERSION`; code refuses a store written by a
    newer schema, so an old deployment cannot silently corrupt a newer store.
``batches``
    one row per publish attempt with its status: ``writing`` (rows being inserted),
    ``published`` (the current batch), ``superseded`` (an older, complete batch kept
    for history) or ``failed`` (an attempt that raised; its rows are deleted).
``scores``
    one row per (batch, lead) with every score column; a priority-ordered page of one
    batch walks ``score_ranks`` (below) and reads each row by its key. Schema version 4 added
    the display, sub-score, cell, rule-rank and lead-fact columns (models/schema.py),
    null in rows published before it.
    Since schema 8 a row keeps ``reasons``, ``rule_reasons`` and ``timeline`` in
    ``packed``, one zstd blob (``codec``), and NULL in their columns; every read puts
    the text back, so older rows (text, ``packed`` NULL) and newer ones read the same.
    Since schema 9 PostgreSQL has no foreign key from ``scores`` to ``batches`` (its
    per-row check slowed the COPY); a batch's rows are always deleted explicitly.
``score_ranks`` (schema 11)
    a batch's (rank, lead id) pairs, appended in rank order once its rows are in
    (``ranks``); deleted with the batch's rows.
``codecs`` (schema 8)
    the zstd dictionary of each batch's ``packed`` values, deleted with the batch.
``current_batch``
    the pointer: one row (id=1) whose ``batch_id`` is the current batch (NULL before the
    first publish).
``changes`` (schema version 2)
    the change feed: per published batch, the leads whose grade went ``up`` or ``down``
    since the batch it replaced, the leads that ``appeared`` in the open set and those
    that ``left`` it. Rows are computed in the same transaction that flips the pointer,
    so a batch is never current without its changes, nor its changes without the batch.
    The first batch of a store has no changes (there is nothing to compare it with).
``monitor_runs``, ``monitor_batches``, ``monitor_grades``, ``monitor_drift`` (schema 5)
    the closed loop (issue #17): each monitor run's decision, and per judged batch its
    latest figures (metrics, realised conversion per grade, per-feature drift), replaced
    by every run that judges the batch again; not owned by ``batches`` (they outlive it).

Timestamps are stored as UTC (``DateTime(timezone=True)``) and always come back as
timezone-aware UTC datetimes, also on SQLite, which has no time-zone type.

Modules: ``schema`` (tables, statuses, :class:`BatchInfo`), ``migrate`` (creation,
version check, upgrades), ``checks`` (a scores frame before publishing), ``changes``
(the change feed's SQL), ``codec`` (the packed columns), ``writer`` (publish, clean-up,
pruning), ``reader`` (batches, pages, history, changes), ``monitor`` (monitor runs and
their per-batch figures) and ``call_reads`` (a rep's call list, the unassigned leads,
per-rep counts).
:class:`ScoreStore` joins the writer, the reader and the monitor half.
"""

from __future__ import annotations

from leadscore.serving.config import StoreConfig
from leadscore.serving.store.bulk import INSERT_COLUMNS
from leadscore.serving.store.call_reads import StoreCallReads
from leadscore.serving.store.checks import new_batch_id, validate_scores
from leadscore.serving.store.migrate import MIGRATIONS, SchemaVersionError, StoreError
from leadscore.serving.store.monitor import StoreMonitor
from leadscore.serving.store.reader import StoreReader
from leadscore.serving.store.schema import (
    APPEARED,
    BATCH_COLUMNS,
    CHANGE_KINDS,
    DOWN,
    FAILED,
    FLOAT_COLUMNS,
    INT_COLUMNS,
    LEFT,
    MONITOR_TABLES,
    PUBLISHED,
    SCHEMA_VERSION,
    SCORE_COLUMNS,
    STATUSES,
    SUPERSEDED,
    TEXT_COLUMNS,
    UP,
    WRITING,
    BatchInfo,
    UTCDateTime,
    batches_table,
    changes_table,
    current_batch_table,
    metadata,
    monitor_batches_table,
    monitor_drift_table,
    monitor_grades_table,
    monitor_runs_table,
    schema_version_table,
    scores_table,
)
from leadscore.serving.store.webhooks import StoreWebhooks
from leadscore.serving.store.writer import StoreWriter

__all__ = [
    "APPEARED",
    "BATCH_COLUMNS",
    "CHANGE_KINDS",
    "DOWN",
    "FAILED",
    "FLOAT_COLUMNS",
    "INSERT_COLUMNS",
    "INT_COLUMNS",
    "LEFT",
    "MIGRATIONS",
    "MONITOR_TABLES",
    "PUBLISHED",
    "SCHEMA_VERSION",
    "SCORE_COLUMNS",
    "STATUSES",
    "SUPERSEDED",
    "TEXT_COLUMNS",
    "UP",
    "WRITING",
    "BatchInfo",
    "SchemaVersionError",
    "ScoreStore",
    "StoreConfig",
    "StoreError",
    "UTCDateTime",
    "batches_table",
    "changes_table",
    "current_batch_table",
    "metadata",
    "monitor_batches_table",
    "monitor_drift_table",
    "monitor_grades_table",
    "monitor_runs_table",
    "new_batch_id",
    "schema_version_table",
    "scores_table",
    "validate_scores",
]


class ScoreStore(StoreWriter, StoreReader, StoreMonitor, StoreCallReads, StoreWebhooks):
    """Scoring batches in a SQL database, published atomically through a pointer row;
    the monitor's runs and per-batch figures (schema 5); the call lists and the webhook
    outbox (schema 6)."""
