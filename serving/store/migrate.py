"""Schema creation and upgrades: the store records its layout version and refuses a newer one."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Connection, LargeBinary, func, insert, inspect, select, text, update

from leadscore.models.schema import SCORE_FIELDS
from leadscore.serving.store.outbound_schema import OUTBOUND_TABLES
from leadscore.serving.store.partitions import is_partitioned, sql_literal
from leadscore.serving.store.schema import (
    MONITOR_TABLES,
    SCHEMA_VERSION,
    batches_table,
    changes_table,
    codecs_table,
    current_batch_table,
    metadata,
    ranks_table,
    schema_version_table,
    scores_table,
    sql_type,
)

log = logging.getLogger(__name__)


class StoreError(RuntimeError):
    """The store cannot be used as asked (not created, wrong schema, lost rows)."""


class SchemaVersionError(StoreError):
    """The store's schema_version does not match what this code can read or write."""


def _migrate_1_to_2(conn: Connection) -> None:
    """Version 2 adds the ``changes`` table (batches published before it have no changes)
    and an index on ``scores.lead_id`` (a lead's history, for the API)."""
    changes_table.create(conn, checkfirst=True)
    index = next(i for i in scores_table.indexes if i.name == "ix_scores_lead")
    index.create(conn, checkfirst=True)


def _migrate_2_to_3(conn: Connection) -> None:
    """Version 3 records each batch's writer (``writer_host``, ``writer_pid``), so a batch
    left ``writing`` by a dead run on this host is reaped by the next run, not after
    ``stale_writing_hours``; batches written before it have no writer (NULL)."""
    table = batches_table.name
    conn.execute(text(f"ALTER TABLE {table} ADD COLUMN writer_host VARCHAR(255)"))
    conn.execute(text(f"ALTER TABLE {table} ADD COLUMN writer_pid INTEGER"))


V4_COLUMNS: tuple[str, ...] = (
    "name",
    "company",
    "email",
    "record_id",
    "fit_score",
    "engagement_score",
    "cell",
    "rule_rank",
    "rule_reasons",
    "last_activity",
    "last_activity_at",
    "attributes",
    "timeline",
)
"""The score-row columns schema version 4 added (issue #16), in table order."""


def _add_score_columns(conn: Connection, names: tuple[str, ...]) -> None:
    """ALTER TABLE scores ADD each column, typed as a fresh table's (``sql_type``)."""
    table = conn.dialect.identifier_preparer.quote(scores_table.name)
    fields = {f.name: f for f in SCORE_FIELDS}
    for name in names:
        column = conn.dialect.identifier_preparer.quote(name)
        kind = sql_type(fields[name]).compile(dialect=conn.dialect)
        conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} {kind}"))


def _migrate_3_to_4(conn: Connection) -> None:
    """Version 4 adds the score row's display, sub-score, cell, rule-rank and lead-fact
    columns to ``scores`` (all nullable: rows published before it have none of them).

    Each column's type is the one a fresh table gets (``sql_type``, compiled for this
    database), so a migrated table and a new one hold the same columns.
    """
    _add_score_columns(conn, V4_COLUMNS)


def _migrate_4_to_5(conn: Connection) -> None:
    """Version 5 adds the monitor's tables (``monitor_runs``, ``monitor_batches``,
    ``monitor_grades``, ``monitor_drift``; issue #17), empty: nothing else changes."""
    for table in MONITOR_TABLES:
        table.create(conn, checkfirst=True)


V6_COLUMNS: tuple[str, ...] = ("next_step", "next_step_gain")
"""The score-row columns schema version 6 added (issue #18: the nurture list's next step)."""


def _migrate_5_to_6(conn: Connection) -> None:
    """Version 6 (issue #18) adds the next-step columns to ``scores`` (null in rows
    published before it) and the ``calls``, ``webhook_deliveries`` and ``webhook_attempts``
    tables, empty."""
    _add_score_columns(conn, V6_COLUMNS)
    for table in OUTBOUND_TABLES:
        table.create(conn, checkfirst=True)


def _migrate_6_to_7(conn: Connection) -> None:
    """Version 7 (issue #19) indexes what the change feed compares (``ix_scores_feed``:
    batch, lead, grade, score, owner), so the flip computes it from the index alone;
    nothing else changes and no row is rewritten."""
    index = next(i for i in scores_table.indexes if i.name == "ix_scores_feed")
    index.create(conn, checkfirst=True)


V8_COLUMNS: tuple[str, ...] = ("packed",)
"""The score-row column schema version 8 added (issue #19: the packed JSON columns)."""


def _migrate_7_to_8(conn: Connection) -> None:
    """Version 8 (issue #19) adds ``scores.packed`` (reasons, rule reasons and timeline
    as one zstd blob, ``store/codec.py``) and the ``codecs`` table of batch dictionaries.
    No row is rewritten: rows published before it keep their text columns and ``packed``
    NULL, and readers restore either form to the same text. Safe to rerun."""
    table = conn.dialect.identifier_preparer.quote(scores_table.name)
    kind = LargeBinary().compile(dialect=conn.dialect)
    if "packed" not in {c["name"] for c in inspect(conn).get_columns(scores_table.name)}:
        conn.execute(text(f"ALTER TABLE {table} ADD COLUMN packed {kind}"))
    codecs_table.create(conn, checkfirst=True)


def drop_scores_batch_fk(conn: Connection, table_name: str = scores_table.name) -> None:
    """On PostgreSQL, drop the foreign key from ``scores.batch_id`` to ``batches``.

    Schema 9 (issue #19): its RI trigger looked up ``batches`` once per COPYed row, a
    fifth of the publish's server time. Nothing relies on it: the publish inserts rows
    only under a ``writing`` batch it created, and every path that deletes a batch deletes
    its scores first (``call_writes.delete_batch_rows``), never through ON DELETE CASCADE.
    SQLite keeps it (the check is cheap there and dropping it needs a table rebuild).
    Found by reflection (PostgreSQL names it ``scores_batch_id_fkey``); safe to rerun.
    """
    if conn.dialect.name != "postgresql":
        return
    table = conn.dialect.identifier_preparer.quote(table_name)
    for fk in inspect(conn).get_foreign_keys(table_name):
        if fk["referred_table"] == batches_table.name and fk["name"]:
            name = conn.dialect.identifier_preparer.quote(fk["name"])
            conn.execute(text(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {name}"))


def _migrate_8_to_9(conn: Connection) -> None:
    """Version 9 (issue #19) drops the scores -> batches foreign key on PostgreSQL
    (:func:`drop_scores_batch_fk`); nothing changes on SQLite and no row is rewritten."""
    drop_scores_batch_fk(conn)


def _migrate_9_to_10(conn: Connection) -> None:
    """Version 10 (issue #19) partitions ``scores`` by batch on PostgreSQL
    (``store/partitions.py``). No row is rewritten: the old table and its indexes are
    renamed, a partitioned ``scores`` is created, and the old table is attached as the
    partition of the batch ids it holds (one scan, to check them), its indexes adopted as
    it is; an empty one is dropped. Nothing changes on SQLite. Safe to rerun."""
    if conn.dialect.name != "postgresql" or is_partitioned(conn):
        return
    quote = conn.dialect.identifier_preparer.quote
    old = f"{scores_table.name}_v9"
    conn.execute(text(f"ALTER TABLE {quote(scores_table.name)} RENAME TO {quote(old)}"))
    for index in inspect(conn).get_indexes(old):
        renamed = str(index["name"]).replace(scores_table.name, old, 1)
        conn.execute(text(f"ALTER INDEX {quote(str(index['name']))} RENAME TO {quote(renamed)}"))
    pk = inspect(conn).get_pk_constraint(old).get("name")
    if pk:
        renamed = str(pk).replace(scores_table.name, old, 1)
        rename = f"RENAME CONSTRAINT {quote(pk)} TO {quote(renamed)}"
        conn.execute(text(f"ALTER TABLE {quote(old)} {rename}"))
    drop_scores_batch_fk(conn, old)
    scores_table.create(conn)
    drop_scores_batch_fk(conn)
    ids = conn.scalars(text(f"SELECT DISTINCT batch_id FROM {quote(old)}")).all()
    if not ids:
        conn.execute(text(f"DROP TABLE {quote(old)}"))
        return
    values = ", ".join(sql_literal(conn, batch_id) for batch_id in ids)
    conn.execute(
        text(
            f"ALTER TABLE {quote(scores_table.name)} ATTACH PARTITION {quote(old)}"
            f" FOR VALUES IN ({values})"
        )
    )


def _migrate_10_to_11(conn: Connection) -> None:
    """Version 11 (issue #19) keeps each batch's order in ``score_ranks``
    (``store/ranks.py``) instead of the ``(batch_id, rank)`` index of ``scores``, and adds
    the rank to ``ix_scores_feed``: the table is created and filled from the stored rows,
    the index dropped (on PostgreSQL with every partition's), the feed index rebuilt. Safe
    to rerun."""
    ranks_table.create(conn, checkfirst=True)
    conn.execute(ranks_table.delete())  # rerun: written again from the rows
    conn.execute(
        text(
            f"INSERT INTO {ranks_table.name} (batch_id, rank, lead_id) SELECT batch_id,"
            f" rank, lead_id FROM {scores_table.name} ORDER BY batch_id, rank, lead_id"
        )
    )
    for name in ("ix_scores_batch_rank", "ix_scores_feed"):
        conn.execute(text(f"DROP INDEX IF EXISTS {name}"))
    next(i for i in scores_table.indexes if i.name == "ix_scores_feed").create(conn)


# Upgrades from an older schema: MIGRATIONS[v] moves a store from version v to v + 1.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    1: _migrate_1_to_2,
    2: _migrate_2_to_3,
    3: _migrate_3_to_4,
    4: _migrate_4_to_5,
    5: _migrate_5_to_6,
    6: _migrate_6_to_7,
    7: _migrate_7_to_8,
    8: _migrate_8_to_9,
    9: _migrate_9_to_10,
    10: _migrate_10_to_11,
}


def stored_version(conn: Connection) -> int | None:
    """Schema version recorded in the store, or None for an empty database."""
    if not inspect(conn).has_table(schema_version_table.name):
        return None
    return conn.scalar(select(schema_version_table.c.version).where(schema_version_table.c.id == 1))


def too_new(stored: int) -> SchemaVersionError:
    """The error for a store written by newer code."""
    return SchemaVersionError(
        f"the scores store has schema version {stored}, newer than this code's "
        f"{SCHEMA_VERSION}: upgrade leadscore before using this store"
    )


def create_schema(conn: Connection) -> None:
    """Create the tables if needed and record :data:`SCHEMA_VERSION`; safe to rerun.

    An older store is upgraded through :data:`MIGRATIONS`; a store written by newer code
    is refused with SchemaVersionError, before anything is touched.
    """
    stored = stored_version(conn)
    if stored is not None and stored > SCHEMA_VERSION:
        raise too_new(stored)
    if stored is not None and stored < SCHEMA_VERSION:
        for version in range(stored, SCHEMA_VERSION):
            if version not in MIGRATIONS:
                raise SchemaVersionError(
                    f"no migration from scores-store schema version {version} to {version + 1}"
                )
            log.info("migrating scores store schema %d -> %d", version, version + 1)
            MIGRATIONS[version](conn)
    metadata.create_all(conn, checkfirst=True)
    drop_scores_batch_fk(conn)  # a new PostgreSQL store agrees with a migrated one
    now = datetime.now(UTC)
    if stored is None:
        conn.execute(
            insert(schema_version_table).values(id=1, version=SCHEMA_VERSION, applied_at=now)
        )
    elif stored != SCHEMA_VERSION:
        conn.execute(
            update(schema_version_table)
            .where(schema_version_table.c.id == 1)
            .values(version=SCHEMA_VERSION, applied_at=now)
        )
    has_pointer = conn.scalar(select(func.count()).select_from(current_batch_table))
    if not has_pointer:
        conn.execute(insert(current_batch_table).values(id=1, batch_id=None))


def check_schema(conn: Connection, url: object) -> None:
    """Refuse a store that is missing or of another schema version."""
    stored = stored_version(conn)
    if stored is None:
        raise StoreError(f"no scores store at {url!r}: run ScoreStore.create() first")
    if stored > SCHEMA_VERSION:
        raise too_new(stored)
    if stored < SCHEMA_VERSION:
        raise SchemaVersionError(
            f"the scores store has schema version {stored}, older than this code's "
            f"{SCHEMA_VERSION}: run ScoreStore.create() to upgrade it"
        )
