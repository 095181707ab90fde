"""The publish's bulk paths (store/bulk.py, copy_binary.py, sink.py) and the change feed's
index (schema 7), on SQLite and PostgreSQL: what readers get back is exactly what was
published, the rows sent to SQLite and the binary COPY data are the ones the
straightforward conversions make, a failed publish keeps none of its rows whatever its
transactions, and the flip computes the feed from ``ix_scores_feed`` alone."""

from __future__ import annotations

import sqlite3
import struct

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sqlalchemy import event, func, inspect, select, text, update
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.exc import DataError
from sqlalchemy.schema import CreateTable

from leadscore.serving.store import (
    INT_COLUMNS,
    SCHEMA_VERSION,
    SCORE_COLUMNS,
    ScoreStore,
    StoreConfig,
    codec,
    schema_version_table,
    sink,
    sqlite_proc,
    validate_scores,
)
from leadscore.serving.store.bulk import (
    INSERT_COLUMNS,
    chunk_table,
    copy_kinds,
    sqlite_records,
    sqlite_table,
)
from leadscore.serving.store.copy_binary import copy_binary
from leadscore.serving.store.schema import (
    NULLABLE_INT_COLUMNS,
    TEXT_COLUMNS,
    TEXT_DTYPE,
    scores_table,
)
from tests.serving.test_store import AS_OF, _frame, by_rank, make_scores, store, url  # noqa: F401

COPY_KINDS = ("bytes", "bytes", "bytes", "bytes", "float8", "int4", "bytes", "int4", "float8")
COPY_KINDS += ("float8",) * 3 + ("bytes",) * 6 + ("int4",) * 2 + ("bytes", "int4")
COPY_KINDS += ("bytes",) * 6 + ("float8", "bytes")  # the scores table's columns, in order

TRICKY = ['a "quoted", comma', "", "line\nbreak", "back\\slash \\N", "Ångström ✓", " pad "]


def tricky_scores() -> pd.DataFrame:
    """``make_scores`` with text that CSV must quote or escape, empty text next to NULL,
    and doubles that need all 17 digits."""
    frame = make_scores(7, seed=5)
    n = len(frame)
    frame["segment"] = [TRICKY[i % len(TRICKY)] for i in range(n)]
    frame["name"] = [None if i % 4 == 0 else TRICKY[(i + 1) % len(TRICKY)] for i in range(n)]
    frame["timeline"] = [f'[{{"type":"x","at":"{i}","value":null}}]' for i in range(n)]
    frame["probability"] = [1 / (3 + i) for i in range(n)]
    frame["fit"] = [None if i % 3 == 0 else 1e-300 * (i + 1) / 7 for i in range(n)]
    frame["engagement"] = [-1e300 / (i + 1) for i in range(n)]
    return frame


def straightforward_records(frame: pd.DataFrame, batch_id: str) -> list[tuple]:
    """The rows as the writer built them before issue #19: pandas values, NULL for NA."""
    columns: list[list] = [[batch_id] * len(frame)]
    for name in SCORE_COLUMNS:
        series = frame[name]
        if name in INT_COLUMNS and name not in NULLABLE_INT_COLUMNS:
            columns.append(series.tolist())
        else:
            columns.append(series.astype(object).where(series.notna(), None).tolist())
    return list(zip(*columns, strict=True))


def test_bulk_published_values_read_back_exactly(store):  # noqa: F811
    frame = tricky_scores()
    store.publish(frame, model_version="7", as_of=AS_OF)
    read = store.read_batch()[list(SCORE_COLUMNS)]
    pd.testing.assert_frame_equal(read, by_rank(validate_scores(frame)))
    assert read["segment"].tolist().count("") == 1  # empty text stays text, not NULL
    assert read["name"].isna().sum() == 2


def as_plainly_bound(row: tuple) -> tuple:
    """A row as the writer bound it before: None for NULL (now a NaN, ``sqlite_proc.NULL``,
    which SQLite stores as NULL) and ``bytes`` for a BLOB (now a ``bytearray``)."""
    return tuple(
        None if isinstance(v, float) and v != v else bytes(v) if type(v) is bytearray else v
        for v in row
    )


def tricky_chunk() -> tuple[pd.DataFrame, pa.Table]:
    """A checked :func:`tricky_scores` with NULLs in each kind of column, and its chunk."""
    frame = validate_scores(tricky_scores())
    frame.loc[3, "rule_rank"] = pd.NA
    frame.loc[4, "next_step_gain"] = np.nan
    frame.loc[5, "last_activity"] = None
    return frame, chunk_table(frame, "b-1")


def test_sqlite_rows_are_the_straightforward_ones():
    frame, chunk = tricky_chunk()
    bound = sqlite_records(chunk)
    stored = [as_plainly_bound(row) for row in bound]
    slow = straightforward_records(frame, "b-1")
    # schema 8: the three JSON columns go NULL, packed into the last value (store/codec.py)
    at = [INSERT_COLUMNS.index(name) for name in codec.PACKED_COLUMNS]
    fast = []
    for row in stored:
        assert all(row[i] is None for i in at)
        values = list(row[:-1])
        for i, value in zip(at, codec.decode(row[-1], codec.batch_dictionary("b-1")), strict=True):
            values[i] = value
        fast.append(tuple(values))
    assert fast == slow
    assert [type(v) for v in fast[0]] == [type(v) for v in slow[0]]
    # bound as a bytearray and NaN (no adapter lookup in the driver), stored as before
    assert type(bound[0][-1]) is bytearray
    assert bound[0][at[0]] is sqlite_proc.NULL


def test_sqlite_stores_the_rows_bound_as_before(tmp_path):
    """The NaN bound for NULL and the bytearray for a BLOB store exactly what None and bytes
    stored: every value's SQLite type and literal, row by row (tricky text, 17-digit
    doubles, NULL in text, integer, double and blob columns)."""
    _, chunk = tricky_chunk()
    table = sqlite_table(chunk)
    rows = sqlite_records(table)
    names = ", ".join(table.column_names)
    insert = f"INSERT INTO scores ({names}) VALUES ({', '.join('?' * table.num_columns)})"
    read = ", ".join(f"typeof({c.name}), quote({c.name})" for c in scores_table.columns)
    stored = []
    for i, bound in enumerate((rows, [as_plainly_bound(row) for row in rows])):
        db = sqlite3.connect(tmp_path / f"{i}.db")
        db.execute(str(CreateTable(scores_table).compile(dialect=sqlite_dialect.dialect())))
        db.executemany(insert, bound)
        stored.append(db.execute(f"SELECT {read} FROM scores ORDER BY rowid").fetchall())
        db.close()
    assert stored[0] == stored[1]
    kinds = {kind for row in stored[0] for kind in row[::2]}
    assert kinds == {"null", "text", "integer", "real", "blob"}
    assert len(stored[0]) == table.num_rows


def test_a_schema_6_store_gains_the_feed_index(store):  # noqa: F811
    first = store.publish(
        _frame([("a", 30, "B", "x"), ("b", 50, "B", "y")]), model_version="7", as_of=AS_OF
    )
    with store.engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_scores_feed"))
        conn.execute(update(schema_version_table).values(version=6))
    old = ScoreStore(store.config)
    old.create()
    with old.engine.connect() as conn:
        assert conn.scalar(select(schema_version_table.c.version)) == SCHEMA_VERSION == 11
        assert "ix_scores_feed" in {i["name"] for i in inspect(conn).get_indexes("scores")}
    assert old.current_batch() == first
    new = _frame([("a", 90, "A", "x"), ("c", 10, "C", "z")])
    old.publish(new, model_version="7", as_of=AS_OF)
    kinds = {r["lead_id"]: r["kind"] for r in old.changes_since(first.batch_id)[0][1]}
    assert kinds == {"a": "up", "b": "left", "c": "appeared"}
    old.close()


def test_sqlite_flip_reads_the_feed_from_its_index_only(tmp_path):
    lite = ScoreStore(StoreConfig(url=f"sqlite:///{tmp_path}/s.db"))
    lite.create()
    lite.publish(make_scores(8, seed=1), model_version="7", as_of=AS_OF)
    seen: list[tuple[str, tuple]] = []

    def spy(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith("INSERT INTO changes"):
            seen.append((statement, parameters))

    event.listen(lite.engine, "before_cursor_execute", spy)
    lite.publish(make_scores(8, seed=2), model_version="7", as_of=AS_OF)
    event.remove(lite.engine, "before_cursor_execute", spy)
    assert len(seen) == 3
    with lite.engine.connect() as conn:
        for statement, parameters in seen:
            plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
            reads = [row[-1] for row in plan if row[-1].startswith(("SEARCH", "SCAN"))]
            # (an EXISTS reads no column: SQLite's deferred seek never touches the row)
            assert reads and all("INDEX ix_scores_feed" in r for r in reads), plan
            assert "COVERING INDEX ix_scores_feed" in reads[0]
    lite.close()


@pytest.mark.parametrize("rows", [0, 1])
def test_chunk_table_keeps_the_column_order(rows):
    frame = validate_scores(make_scores(3)).iloc[:rows]
    table = chunk_table(frame, "b")
    assert table.column_names == ["batch_id", *SCORE_COLUMNS, "packed"]
    assert table.num_rows == rows


def straightforward_copy_binary(table: pa.Table, kinds: list[str]) -> bytes:
    """PostgreSQL's binary COPY format, value by value with ``struct`` (the reference)."""
    packs = {"int2": ">h", "int4": ">i", "int8": ">q", "float8": ">d"}
    out = bytearray(b"PGCOPY\n\xff\r\n\x00" + bytes(8))
    for row in table.to_pylist():
        out += struct.pack(">h", len(kinds))
        for value, kind in zip(row.values(), kinds, strict=True):
            if value is None:
                out += struct.pack(">i", -1)
                continue
            data = value.encode() if isinstance(value, str) else value
            data = data if kind == "bytes" else struct.pack(packs[kind], value)
            out += struct.pack(">i", len(data)) + data
    return bytes(out + b"\xff\xff")


def test_copy_binary_is_the_straightforward_rendering():
    frame = validate_scores(tricky_scores())
    frame.loc[3, "rule_rank"] = pd.NA
    table = chunk_table(frame, "b-1").slice(1)  # a slice: offsets into shared buffers
    at = table.column_names.index("packed")  # schema 8's bytea, with tricky bytes and NULL
    table = table.set_column(at, "packed", pa.array([b"\x00\xff", None, b"", b"z"] * 2)[2:])
    kinds = list(COPY_KINDS)
    assert copy_binary(table, kinds).tobytes() == straightforward_copy_binary(table, kinds)
    assert copy_binary(table.slice(0, 0), kinds).tobytes() == straightforward_copy_binary(
        table.slice(0, 0), kinds
    )


def test_copy_binary_refuses_what_the_server_must_judge():
    table = chunk_table(validate_scores(make_scores(3)), "b")
    rank = table.column_names.index("rank")
    big = table.set_column(rank, "rank", pa.array([1, 2, 2**31], pa.int64()))
    assert copy_binary(big, COPY_KINDS) is None  # int4 overflow: CSV, the server's error
    assert copy_binary(table, ["int4"] * table.num_columns) is None  # text as a number
    assert copy_binary(table, ["money"] * table.num_columns) is None


def test_copy_kinds_are_read_from_the_database(store):  # noqa: F811
    if store.engine.dialect.name != "postgresql":
        pytest.skip("COPY is PostgreSQL's")
    with store.engine.connect() as conn:
        assert copy_kinds(conn) == COPY_KINDS


def test_an_integer_out_of_range_fails_as_before(store):  # noqa: F811
    frame = make_scores(4)
    frame.loc[1, "rank"] = 2**31
    if store.engine.dialect.name != "postgresql":
        pytest.skip("SQLite stores any integer")
    with pytest.raises(DataError, match="out of range"):
        store.publish(frame, model_version="7", as_of=AS_OF, batch_id="b-big")
    assert store.current_batch() is None


def test_sqlite_commits_every_so_many_rows_and_a_failure_keeps_none(store, monkeypatch):  # noqa: F811
    monkeypatch.setattr(sink, "SQLITE_TRANSACTION_ROWS", 4)  # chunks of 3: commit after 6
    first = store.publish(make_scores(8, seed=1), model_version="7", as_of=AS_OF)
    assert len(store.read_batch()) == 8
    real_insert = ScoreStore._insert_chunk
    seen: list[int] = []

    def failing_third(self, rows):
        seen.append(len(rows))
        if len(seen) == 3:  # after one commit on SQLite (two chunks)
            raise ConnectionError("lost")
        real_insert(self, rows)

    monkeypatch.setattr(ScoreStore, "_insert_chunk", failing_third)
    with pytest.raises(ConnectionError, match="lost"):
        store.publish(make_scores(8, seed=2), model_version="8", as_of=AS_OF, batch_id="b-x")
    assert store.current_batch() == first
    with store.engine.connect() as conn:
        left = conn.scalar(
            select(func.count()).select_from(scores_table).where(scores_table.c.batch_id == "b-x")
        )
    assert left == 0


def test_validate_scores_keeps_text_columns_as_they_are_typed_or_not():
    """Text already typed as the store's text dtype is taken as is (no copy); the result
    equals the conversion of the same values held as Python objects."""
    text = [c for c in TEXT_COLUMNS if c != "lead_id"]
    typed = tricky_scores().astype(dict.fromkeys(text, TEXT_DTYPE))
    untyped = typed.astype(dict.fromkeys(text, object))
    assert {str(untyped[c].dtype) for c in text} == {"object"}
    checked = validate_scores(typed)
    pd.testing.assert_frame_equal(checked, validate_scores(untyped))
    assert checked["name"].isna().sum() == typed["name"].isna().sum() > 0  # NULL kept


def test_validate_scores_takes_numbers_as_they_are_typed_or_not():
    """Numeric columns already numbers skip the non-numeric check (none can fail it): the
    result equals the check of the same values held as Python objects, which still
    refuses text; the checked frame shares, never changes, the input (pandas copies on write)."""
    frame = tricky_scores()
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c].dtype)]
    assert {"probability", "fit", "score", "rank"} <= set(numeric)
    as_objects = frame.astype(dict.fromkeys(numeric, object))
    checked = validate_scores(frame)
    pd.testing.assert_frame_equal(checked, validate_scores(as_objects))
    before = frame.copy()
    checked.loc[0, "fit"] = 0.5
    checked.loc[0, "name"] = "changed"
    pd.testing.assert_frame_equal(frame, before)
    with pytest.raises(ValueError, match=r"'fit' has non-numeric values"):
        validate_scores(as_objects.assign(fit=["x", *as_objects["fit"][1:]]))
