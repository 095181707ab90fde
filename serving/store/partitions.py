"""PostgreSQL: each batch's score rows in a table of their own, attached whole, dropped whole.

Schema 10 (issue #19). On PostgreSQL ``scores`` is partitioned by ``LIST (batch_id)``, one
partition a batch:

* :func:`create_batch_table` (with the batch's row, as it opens): a table like ``scores``
  with its primary key, rank and lead indexes but not the change-feed one
  (:data:`DEFERRED_INDEXES`), and a CHECK of its batch id (so attaching it needs no scan);
  the publish's COPY streams write their chunks there, each chunk its own transaction. A
  duplicate lead fails in the COPY, on the key, as before.
* :func:`attach_batch_table` (once every row is written, before the count check and the
  flip): builds the deferred index, attaches the table (``scores``'s indexes adopt its
  own) and ANALYZEs it.
* :func:`drop_batch_table`: a failed, reaped or pruned batch's rows go with its table;
  pruning detaches it first (:func:`detach_concurrently`). No DELETE of a million rows.

What it buys (bench/README.md, eleventh pass): in the nightly's steady state (a batch
already stored) the one-table schema's check that every call's lead is scored ran for
minutes, and pruning or reaping a batch deleted its 1M rows (1.5-4.7 s); here neither. On
a fresh store the publish is no faster: a COPY into a bare table costs the server 3.2 s
against 12.8 s into the indexed one, but built at the end the indexes are a serial tail
(all four 4.8-6.1 s), where filled row by row they had run on the core the second pass
leaves idle; only the widest is deferred.

Nothing changes for readers: until the flip the batch is ``writing`` and invisible, as
before, and every query names ``scores``. A store migrated from schema 9 keeps its rows in
the old table, attached as the partition of the batch ids it held
(``migrate._migrate_9_to_10``); those batches are deleted row by row as before. SQLite has
no partitions and is unchanged. Needs PostgreSQL 14 or later (``DETACH ... CONCURRENTLY``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Column, Connection, Engine, literal

from leadscore.serving.store.schema import scores_table

_PREFIX = "scores_b_"
MAINTENANCE_WORK_MEM = "256MB"
"""Sort memory of the index builds (PostgreSQL's default, 64 MB, spills a 1M-row batch's
keys to disk)."""
DETACH_WAIT = "30s"
"""How long pruning waits for the readers of a batch's partition before giving up."""
DEFERRED_INDEXES: frozenset[str] = frozenset({"ix_scores_feed"})
"""Indexes of ``scores`` a batch's table gets once its rows are in (built by sorting
them: the feed index, the widest); the others are filled row by row as they are copied."""


def is_partitioned(conn: Connection) -> bool:
    """Whether ``scores`` is a partitioned table (PostgreSQL, schema 10 or later)."""
    if conn.dialect.name != "postgresql":
        return False
    kind = conn.exec_driver_sql(
        "SELECT c.relkind FROM pg_class c WHERE c.oid = to_regclass(%(t)s)",
        {"t": scores_table.name},
    ).scalar()
    return kind == "p"


def batch_table(batch_id: str) -> str:
    """The name of a batch's own table (a digest of its id: any id, a valid name)."""
    return _PREFIX + hashlib.sha256(batch_id.encode()).hexdigest()[:24]


def _quoted(conn: Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


def sql_literal(conn: Connection, value: str) -> str:
    """A string as an SQL literal of ``conn``'s dialect (DDL takes no bound parameters)."""
    compiled = literal(value).compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
    return str(compiled)


def create_batch_table(conn: Connection, batch_id: str) -> None:
    """Create the table a batch's rows are copied into (a CHECK of its batch id, the
    indexes but :data:`DEFERRED_INDEXES`), in the caller's transaction."""
    table, parent = _quoted(conn, batch_table(batch_id)), _quoted(conn, scores_table.name)
    check = _quoted(conn, batch_table(batch_id) + "_batch")
    value = sql_literal(conn, batch_id)
    conn.exec_driver_sql(
        f"CREATE TABLE {table} (LIKE {parent} INCLUDING DEFAULTS,"
        f" CONSTRAINT {check} CHECK (batch_id IS NOT NULL AND batch_id = {value}))"
    )
    for statement in _index_statements(conn, batch_id, deferred=False):
        conn.exec_driver_sql(statement)


def _index_statements(conn: Connection, batch_id: str, deferred: bool) -> list[str]:
    """The CREATE INDEX statements of a batch's table built after its rows are in
    (``deferred``: those of :data:`DEFERRED_INDEXES`) or with the table, before them
    (the others, and ``scores``'s primary key, as a unique index made the key at the
    attach)."""
    name = batch_table(batch_id)
    table = _quoted(conn, name)

    def columns(of: Iterable[Column[Any]]) -> str:
        return ", ".join(_quoted(conn, c.name) for c in of)

    key = _quoted(conn, name + "_pkey")
    statements = []
    if not deferred:
        statements.append(
            f"CREATE UNIQUE INDEX {key} ON {table} ({columns(scores_table.primary_key)})"
        )
    for index in sorted(scores_table.indexes, key=lambda ix: str(ix.name)):
        if (index.name in DEFERRED_INDEXES) == deferred:
            statements.append(f"CREATE INDEX ON {table} ({columns(index.columns)})")
    return statements


def attach_batch_table(engine: Engine, batch_id: str) -> None:
    """Build a written batch's :data:`DEFERRED_INDEXES`, attach its table as the batch's
    partition and ANALYZE it, in one transaction.

    ANALYZE: planned without statistics of the new batch, the check that every call's
    lead is scored (``call_writes.write_calls``) read ~230,000 index entries a call and
    ran for minutes once a previous batch was stored (schema 9, one table). The sample
    (30,000 rows) costs ~0.3-1.2 s."""
    name = batch_table(batch_id)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"SET LOCAL maintenance_work_mem = '{MAINTENANCE_WORK_MEM}'")
        for statement in _index_statements(conn, batch_id, deferred=True):
            conn.exec_driver_sql(statement)
        table, parent = _quoted(conn, name), _quoted(conn, scores_table.name)
        key = _quoted(conn, name + "_pkey")
        conn.exec_driver_sql(f"ALTER TABLE {table} ADD PRIMARY KEY USING INDEX {key}")
        value = sql_literal(conn, batch_id)
        conn.exec_driver_sql(
            f"ALTER TABLE {parent} ATTACH PARTITION {table} FOR VALUES IN ({value})"
        )
        conn.exec_driver_sql(f"ANALYZE {table}")


def drop_batch_table(conn: Connection, batch_id: str) -> None:
    """Drop a batch's own table, attached or not (none: nothing happens)."""
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {_quoted(conn, batch_table(batch_id))}")


def attached(conn: Connection, batch_id: str) -> bool:
    """Whether a batch's own table exists and is a partition of ``scores``."""
    return bool(
        conn.exec_driver_sql(
            "SELECT c.relispartition FROM pg_class c WHERE c.oid = to_regclass(%(t)s)",
            {"t": batch_table(batch_id)},
        ).scalar()
    )


def detach_concurrently(engine: Engine, batch_id: str) -> None:
    """Detach a batch's partition without locking ``scores`` against readers, so that
    pruning it drops a table nobody reads (dropping an attached partition would lock the
    whole of ``scores`` meanwhile).

    ``DETACH PARTITION ... CONCURRENTLY`` (PostgreSQL 14+) runs outside a transaction and
    waits for the transactions that may still read the partition: at most
    :data:`DETACH_WAIT`, then it fails (the prune is logged as failed and tried again
    after the next publish) and leaves the partition pending detach, which the next try
    completes with ``FINALIZE``."""
    if engine.dialect.name != "postgresql":  # no connection opened for nothing
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if not is_partitioned(conn) or not attached(conn, batch_id):
            return
        pending = conn.exec_driver_sql(
            "SELECT i.inhdetachpending FROM pg_inherits i WHERE i.inhrelid = to_regclass(%(t)s)",
            {"t": batch_table(batch_id)},
        ).scalar()
        table, parent = _quoted(conn, batch_table(batch_id)), _quoted(conn, scores_table.name)
        how = "FINALIZE" if pending else "CONCURRENTLY"
        conn.exec_driver_sql(f"SET lock_timeout = '{DETACH_WAIT}'")
        try:
            conn.exec_driver_sql(f"ALTER TABLE {parent} DETACH PARTITION {table} {how}")
        finally:  # the pooled connection goes back with the server's setting
            conn.exec_driver_sql("RESET lock_timeout")
