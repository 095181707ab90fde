"""Bulk writes of a batch's score rows: each database's fast path for a publish's chunks.

A publish writes a million rows of 28 columns (2.2 KB each: most of it the reasons,
rule-reasons, attributes and timeline JSON) while its batch is ``writing``; nothing here
changes what is stored, only how it gets there. A chunk arrives as an Arrow table
(:func:`chunk_table`: the checked frame's columns in :data:`INSERT_COLUMNS` order, its
strings shared with the frame, not copied), and:

* **PostgreSQL** receives it through ``COPY scores (...) FROM STDIN (FORMAT binary)``
  (psycopg 3's ``cursor.copy``), the bytes rendered from the Arrow buffers by one numba
  loop (``store/copy_binary.py``): no Python object per cell, and no text for the server
  to parse (CSV parsing was ~40% of the backend's CPU). Each column is sent as its type
  in the database (:func:`copy_kinds`); a ``bytea`` column would go as its bytes, as is.
  A value binary cannot carry as the server would have read it (an integer past its
  column's range) sends that chunk as CSV rendered by Arrow instead, so the server's own
  error reports it (a ``bytea`` column could not take that path: CSV needs it in hex).
  The session compresses the large text values with LZ4 when the server has it
  (``default_toast_compression``; readers need no setting): PostgreSQL's own pglz was
  the larger part of the server's time.
* **SQLite** has no bulk path in Python's driver: rows go to ``executemany`` as tuples
  built column by column (:func:`sqlite_records`: numbers read from the Arrow buffers by
  numpy, a BLOB bound as a ``bytearray`` and NULL as a NaN, both of which the driver binds
  without first looking for an adapter, ``store/sqlite_proc.py``), on a connection whose
  page cache is raised for the publish (:data:`SQLITE_CACHE_KIB`; it held the (batch,
  rank) index filled in random order until schema 11 dropped it, ``store/ranks.py``).
  What bounds SQLite is that driver and SQLite's B-trees: a bound parameter
  per cell and one B-tree insert per row and index (measured on the 250k bench's rows in
  the writer process, CPU a row: ~1 us to make the values, ~8 us to bind and insert
  them, ~1.4 us to commit; ~4 us less with no secondary index, ~2.6 us less without the
  (batch, rank) one alone; inserting in rank order instead measured slower, the other
  three then random). The three columns kept in ``packed`` are not bound
  (:data:`SQLITE_COLUMNS`). Measured no faster: ``WITHOUT ROWID`` (one B-tree fewer,
  but the three indexes then carry the key, not a rowid), 4 or 64 KiB pages (16 KiB),
  ``synchronous=OFF``, no foreign key check, a 512 MiB page cache, ``temp_store=MEMORY``,
  each chunk sorted by rank (its inserts ~0.4 us faster, the sort ~0.7 us dearer), the
  batch id written into the statement instead of bound.

Making a chunk costs the publishing process ~5 us of CPU a row (250k bench, both its
threads): ~4 us compressing the packed values (zstd level 1 with the batch's dictionary,
on two threads: the bytes stored are the codec's, so only its settings could make that
cheaper), ~0.3 packing them (``codec.pack``), ~0.3 the rest; checking the frame first
(``checks.validate_scores``) ~0.3, and sending a SQLite chunk to the writer process
(``sqlite_proc.table_buffer``) ~0.2.

The chunks are written beside the thread preparing them (``store/sink.py``): two COPY
streams on PostgreSQL; on SQLite, past its first transaction, a writer process
(``store/sqlite_proc.py``), whose transactions span ``sink.SQLITE_TRANSACTION_ROWS`` rows.

Crash safety is unchanged: the rows are written while their batch is ``writing``,
invisible to readers, and only the flip (one synchronous transaction) makes it current.

* A killed publisher leaves a ``writing`` batch with some of its rows (SQLite: those of
  its committed transactions, on the journal of ``store/base.py``: WAL,
  ``synchronous=NORMAL``; PostgreSQL: its committed chunks); the next run reaps it.
* On PostgreSQL a chunk's transaction commits with ``synchronous_commit = off``: a
  server crash may lose the last chunks committed before it, only ever of a ``writing``
  batch, reaped the same way. The flip's commit waits for its WAL flush, which holds
  every earlier commit: a current batch never lacks a chunk. The count check before the
  flip refuses a batch that lost rows any other way.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from leadscore.serving.store import codec
from leadscore.serving.store.copy_binary import copy_binary
from leadscore.serving.store.schema import SCORE_COLUMNS, scores_table
from leadscore.serving.store.sqlite_proc import sqlite_records

INSERT_COLUMNS: tuple[str, ...] = ("batch_id", *SCORE_COLUMNS, codec.PACKED)
"""Column order of a chunk's table (:func:`chunk_table`) and of the rows sent."""

SQLITE_COLUMNS: tuple[str, ...] = tuple(c for c in INSERT_COLUMNS if c not in codec.PACKED_COLUMNS)
"""What a SQLite insert binds (:func:`sqlite_table`): the columns kept in ``packed`` are
NULL in every chunk (:func:`chunk_table`), as the column's default makes them; binding
them cost ~13% of ``executemany`` (measured on the bench's rows)."""

SQLITE_CACHE_KIB = 128 * 1024
"""SQLite page cache of the publishing connection, and of one deleting a batch's rows
(``call_writes.delete_batch_rows``) (KiB; SQLite's default is 2 MiB)."""

_CSV = pa_csv.WriteOptions(include_header=False, batch_size=4096)


def chunk_table(frame: pd.DataFrame, batch_id: str) -> pa.Table:
    """A checked chunk (``validate_scores``) as Arrow, :data:`INSERT_COLUMNS` first to
    last, NULL for missing (NaN included); text shares the frame's Arrow buffers.

    Schema 8: reasons, rule reasons and timeline go NULL, compressed into ``packed``
    with the batch's dictionary (``store/codec.py``), which rides in the table's schema
    metadata for ``codec.save_dictionary``."""
    columns = {"batch_id": pa.array(np.full(len(frame), batch_id, dtype=object), pa.string())}
    for name in SCORE_COLUMNS:
        columns[name] = pa.array(frame[name], from_pandas=True)
    packed = [columns[name] for name in codec.PACKED_COLUMNS]
    columns[codec.PACKED] = codec.packed_column(packed, batch_id)
    for name in codec.PACKED_COLUMNS:
        columns[name] = pa.nulls(len(frame), columns[name].type)
    metadata = {codec.METADATA_KEY: codec.batch_dictionary(batch_id)}
    return pa.table(columns).replace_schema_metadata(metadata)


def sqlite_table(table: pa.Table) -> pa.Table:
    """A chunk's :data:`SQLITE_COLUMNS` (the others are all NULL: refused otherwise)."""
    for name in codec.PACKED_COLUMNS:
        if table.column(name).null_count != table.num_rows:
            raise ValueError(f"chunk column {name!r} is not NULL: it belongs in {codec.PACKED!r}")
    return table.select(list(SQLITE_COLUMNS))


def insert_sqlite(conn: Connection, sql: str, table: pa.Table) -> None:
    """Insert a chunk (:func:`sqlite_table`) with the driver's ``executemany`` (in the
    caller's transaction), the connection's page cache raised to
    :data:`SQLITE_CACHE_KIB` first."""
    conn.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    conn.exec_driver_sql(sql, sqlite_records(sqlite_table(table)))  # type: ignore[arg-type]


def copy_statement(quote: Any, binary: bool = False, target: str = scores_table.name) -> str:
    """``COPY scores (...) FROM STDIN`` in CSV (or binary), columns quoted by the
    dialect's ``quote``; ``target``: the table (a batch's own: ``store/partitions.py``)."""
    names = ", ".join(quote(name) for name in INSERT_COLUMNS)
    form = "binary" if binary else "csv"
    return f"COPY {quote(target)} ({names}) FROM STDIN (FORMAT {form})"


_PG_KINDS = {
    "smallint": "int2",
    "integer": "int4",
    "bigint": "int8",
    "double precision": "float8",
    "text": "bytes",
    "character varying": "bytes",
    "bytea": "bytes",
}


def copy_kinds(conn: Connection) -> tuple[str, ...]:
    """How binary COPY sends each of :data:`INSERT_COLUMNS` (``copy_binary.KINDS``; ""
    for a type it does not know), read from the ``scores`` table in the database: a store
    upgraded from an older schema has the types its tables were created with."""
    rows = conn.exec_driver_sql(
        "SELECT attname, format_type(atttypid, NULL) FROM pg_attribute"
        " WHERE attrelid = CAST(%(table)s AS regclass) AND attnum > 0 AND NOT attisdropped",
        {"table": scores_table.name},
    ).all()
    types = {name: kind for name, kind in rows}
    return tuple(_PG_KINDS.get(types.get(name, ""), "") for name in INSERT_COLUMNS)


def lz4_compression(conn: Connection) -> None:
    """Compress this session's large text values with LZ4 if the server was built with it
    (PostgreSQL 14+); otherwise keep the server's default. In the caller's transaction."""
    conn.exec_driver_sql("SAVEPOINT lz4")
    try:
        conn.exec_driver_sql("SET LOCAL default_toast_compression = 'lz4'")
    except Exception:  # no LZ4 in this server: its default (pglz) stays
        conn.exec_driver_sql("ROLLBACK TO SAVEPOINT lz4")
    else:
        conn.exec_driver_sql("RELEASE SAVEPOINT lz4")


def copy_postgresql(
    conn: Connection, table: pa.Table, kinds: tuple[str, ...] = (), target: str = scores_table.name
) -> None:
    """Send a chunk through ``COPY target ... FROM STDIN`` (psycopg 3), in the caller's
    transaction: in binary (``store/copy_binary.py``, each column as ``kinds`` says:
    :func:`copy_kinds`, read here if not given), or as CSV rendered by Arrow when a value
    cannot be sent in binary (then the server's own error reports it)."""
    data: Any = copy_binary(table, kinds or copy_kinds(conn))
    binary = data is not None
    if not binary:
        buffer = io.BytesIO()
        pa_csv.write_csv(codec.copy_text(table), buffer, _CSV)  # packed as bytea text
        data = buffer.getbuffer()
    statement = copy_statement(conn.dialect.identifier_preparer.quote, binary, target)
    lz4_compression(conn)
    # the chunk's commit does not wait for its WAL flush: a server crash can lose the
    # last chunks of a batch still `writing` (invisible, reaped); the flip, synchronous,
    # flushes every earlier commit's WAL with its own
    conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        with cursor.copy(statement) as copy:
            copy.write(memoryview(data))
    except Exception as exc:  # the driver's error, as SQLAlchemy raises it on every path
        raise DBAPIError.instance(statement, None, exc, conn.dialect.loaded_dbapi.Error) from exc
    finally:
        cursor.close()
