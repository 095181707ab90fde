"""Bulk writes of a batch's score rows: each database's fast path for a publish's chunks.

A publish writes a million rows of 28 columns (2.2 KB each: most of it the reasons,
rule-reasons, attributes and timeline JSON) while its batch is ``writing``; nothing here
changes what is stored, only how it gets there. A chunk arrives as an Arrow table
(:func:`chunk_table`: the checked frame's columns in :data:`INSERT_COLUMNS` order, its
strings shared with the frame, not copied), and:

* **PostgreSQL** receives it through ``COPY scores (...) FROM STDIN (FORMAT csv)``
  (psycopg 3's ``cursor.copy``), the text rendered by Arrow's C++ CSV writer with no
  Python object per cell. Arrow writes an empty unquoted field for NULL and ``""`` for an
  empty string (exactly COPY's CSV reading) and doubles in their shortest round-trip
  form, so every value reads back identical (``tests/serving/test_store_bulk.py``).
  The session compresses the large text values with LZ4 when the server has it
  (``default_toast_compression``; readers need no setting): PostgreSQL's own pglz was
  the larger part of the server's time.
* **SQLite** has no bulk path in Python's driver: rows go to ``executemany`` as tuples
  built column by column (:func:`sqlite_records`), on a connection whose page cache is
  raised for the publish (:data:`SQLITE_CACHE_KIB`) so the (batch, rank) index, filled
  in random order, stays in memory instead of being re-read and re-written per chunk.
  What bounds SQLite is that driver, in one thread: a bound parameter per cell and one
  B-tree insert per row and index (measured here: ~8 us of CPU a row with no secondary
  index, ~20 us with the four, plus the 2.2 KB written to the WAL and checkpointed).

Crash safety is unchanged: every chunk is still its own transaction, on the same
journal (WAL, ``synchronous=NORMAL``, ``store/base.py``) as before; a killed publisher
leaves a ``writing`` batch, invisible to readers and reaped by the next run.
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
from leadscore.serving.store.schema import SCORE_COLUMNS, scores_table

INSERT_COLUMNS: tuple[str, ...] = ("batch_id", *SCORE_COLUMNS, codec.PACKED)
"""Column order of a chunk's table (:func:`chunk_table`) and of the rows sent."""

SQLITE_CACHE_KIB = 128 * 1024
"""SQLite page cache of the publishing connection (KiB; SQLite's default is 2 MiB)."""

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


def _python_values(column: pa.ChunkedArray) -> list[Any]:
    """One Arrow column as Python values, None for NULL (numbers through numpy, faster)."""
    kind = column.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        nulls = column.null_count
        filled = column.fill_null(0) if nulls else column
        values: list[Any] = filled.to_numpy().tolist()
        if nulls:
            missing = np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))
            for i in missing.tolist():
                values[i] = None
        return values
    if pa.types.is_null(kind):
        return [None] * len(column)
    return column.to_pylist()


def sqlite_records(table: pa.Table) -> list[tuple[Any, ...]]:
    """A chunk's rows as DB-API tuples in :data:`INSERT_COLUMNS` order."""
    columns = [_python_values(table.column(i)) for i in range(table.num_columns)]
    return list(zip(*columns, strict=True))


def insert_sqlite(conn: Connection, sql: str, table: pa.Table) -> None:
    """Insert a chunk with the driver's ``executemany`` (in the caller's transaction),
    the connection's page cache raised to :data:`SQLITE_CACHE_KIB` first."""
    conn.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    conn.exec_driver_sql(sql, sqlite_records(table))  # type: ignore[arg-type]


def copy_statement(quote: Any) -> str:
    """``COPY scores (...) FROM STDIN`` in CSV, columns quoted by the dialect's ``quote``."""
    names = ", ".join(quote(name) for name in INSERT_COLUMNS)
    return f"COPY {quote(scores_table.name)} ({names}) FROM STDIN (FORMAT csv)"


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


def copy_postgresql(conn: Connection, table: pa.Table) -> None:
    """Send a chunk through ``COPY ... FROM STDIN`` (psycopg 3), in the caller's
    transaction, as CSV rendered by Arrow."""
    buffer = io.BytesIO()
    pa_csv.write_csv(codec.copy_text(table), buffer, _CSV)  # packed as bytea text
    statement = copy_statement(conn.dialect.identifier_preparer.quote)
    lz4_compression(conn)
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        with cursor.copy(statement) as copy:
            copy.write(buffer.getbuffer())
    except Exception as exc:  # the driver's error, as SQLAlchemy raises it on every path
        raise DBAPIError.instance(statement, None, exc, conn.dialect.loaded_dbapi.Error) from exc
    finally:
        cursor.close()
