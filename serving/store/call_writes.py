"""The call lists' rows in the store: written with their batch, deleted with it.

A batch's call lists (``models.routing``'s ``Routing.calls``: one row per lead routed,
to a rep or to nobody with the reason) go into the ``calls`` table while the batch is
``writing``, after its score rows and before the flip, so readers, who go through the
current-batch pointer, see them exactly when they see the batch. Every call's lead must
be one of the batch's scored leads (checked in the database before the flip). When a
publish fails, or a batch is reaped or pruned, its calls are deleted with its score rows
(:func:`delete_batch_rows`; the foreign key also cascades, but a batch row may outlive
its rows as ``failed``).

Plain functions on an engine or connection, used by ``store/writer.py``.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, delete, exists, func, insert, or_, select

from leadscore.models.routing.frames import CALL_COLUMNS
from leadscore.serving.store.bulk import SQLITE_CACHE_KIB
from leadscore.serving.store.migrate import StoreError
from leadscore.serving.store.outbound_schema import calls_table
from leadscore.serving.store.partitions import drop_batch_table, is_partitioned
from leadscore.serving.store.schema import batches_table, ranks_table, scores_table

CALL_INSERT_COLUMNS: tuple[str, ...] = ("batch_id", *CALL_COLUMNS)
"""Column order of the rows :func:`call_records` builds and :func:`insert_calls` sends."""

_TEXT_LIMITS = {"lead_id": 255, "rep_id": 255, "method": 32}


def validate_calls(calls: pd.DataFrame) -> pd.DataFrame:
    """``calls`` checked and normalised for the ``calls`` table; raise ValueError if not.

    Needs :data:`CALL_COLUMNS`; each lead once and never null; ``expected`` a finite
    number, ``method`` and ``reason`` text on every row; ``position`` a whole number >= 1
    on every row with a rep and null on the others.
    """
    missing = [c for c in CALL_COLUMNS if c not in calls.columns]
    if missing:
        raise ValueError(f"calls lack column(s) {missing}")
    frame = calls.loc[:, list(CALL_COLUMNS)].reset_index(drop=True)
    for name in ("lead_id", "expected", "method", "reason"):
        if frame[name].isna().any():
            raise ValueError(f"calls: {name} is null on {int(frame[name].isna().sum())} row(s)")
    repeated = frame["lead_id"].astype(str).duplicated()
    if repeated.any():
        raise ValueError(f"calls: lead {frame['lead_id'][repeated].iloc[0]!r} is listed twice")
    expected = pd.to_numeric(frame["expected"], errors="coerce").astype(float)
    if not expected.map(math.isfinite).all():
        raise ValueError("calls: expected must be a finite number on every row")
    position = pd.to_numeric(frame["position"], errors="raise").astype("Int64")
    placed = frame["rep_id"].notna()
    if (position.isna() == placed).any() or (position[placed] < 1).any():
        raise ValueError("calls: position must be >= 1 for a rep's lead, null for nobody's")
    for name, limit in _TEXT_LIMITS.items():
        text = frame[name].dropna().astype(str)
        if (text.str.len() > limit).any():
            raise ValueError(f"calls: {name} longer than {limit} characters")
    return frame.assign(
        lead_id=frame["lead_id"].astype(str),
        rep_id=frame["rep_id"].astype(object).where(placed, None),
        position=position,
        expected=expected,
    )


def call_records(calls: pd.DataFrame, batch_id: str) -> list[tuple[Any, ...]]:
    """Checked calls as DB-API rows (:data:`CALL_INSERT_COLUMNS` order), NULL for missing."""
    columns: list[list[Any]] = [[batch_id] * len(calls)]
    for name in CALL_COLUMNS:
        series = calls[name]
        values = series.astype(object).where(series.notna(), None).tolist()
        if name == "position":
            values = [None if v is None else int(v) for v in values]
        columns.append(values)
    return list(zip(*columns, strict=True))


def insert_calls(engine: Engine, calls: pd.DataFrame, batch_id: str, chunk_rows: int) -> int:
    """Insert checked ``calls`` for ``batch_id`` in chunks (one transaction each), with the
    driver's ``executemany`` as the score rows are; return the number of rows."""
    dialect = engine.dialect
    compiled = insert(calls_table).compile(dialect=dialect, column_keys=CALL_INSERT_COLUMNS)
    if dialect.positional and tuple(compiled.positiontup or ()) != CALL_INSERT_COLUMNS:
        raise RuntimeError(f"unexpected INSERT parameter order {compiled.positiontup}")
    sql = str(compiled)
    for start in range(0, len(calls), max(1, chunk_rows)):
        records = call_records(calls.iloc[start : start + chunk_rows], batch_id)
        rows: list[Any] = (
            records
            if dialect.positional
            else [dict(zip(CALL_INSERT_COLUMNS, r, strict=True)) for r in records]
        )
        with engine.begin() as conn:
            conn.exec_driver_sql(sql, rows)
    return len(calls)


def write_calls(engine: Engine, calls: pd.DataFrame | None, batch_id: str, chunk_rows: int) -> None:
    """Insert a ``writing`` batch's checked calls (None: none) after its score rows, then
    refuse (StoreError) unless exactly those rows are there and every call's lead is one
    of the batch's scored leads."""
    if calls is None:
        return
    written = insert_calls(engine, calls, batch_id, chunk_rows)
    mine = calls_table.c.batch_id == batch_id
    scored = exists().where(
        scores_table.c.batch_id == batch_id, scores_table.c.lead_id == calls_table.c.lead_id
    )
    with engine.connect() as conn:
        stored = conn.scalar(select(func.count()).select_from(calls_table).where(mine))
        strays = conn.scalars(select(calls_table.c.lead_id).where(mine, ~scored).limit(3)).all()
    if stored != written:
        raise StoreError(f"batch {batch_id}: {stored} calls in the store, expected {written}")
    if strays:
        raise StoreError(f"batch {batch_id}: calls for leads not in the batch, e.g. {strays}")


def delete_batch_rows(conn: Connection, batch_id: str, statuses: tuple[str, ...]) -> None:
    """Delete a batch's score and call rows if the batch's status is one of ``statuses``
    (checked in the same statement, so the current batch is never emptied), or if the
    batch is gone: on PostgreSQL no foreign key stops a writer that was reaped and pruned
    while still copying (schema 9), so its own clean-up removes what it left. On a
    partitioned PostgreSQL store (schema 10, ``store/partitions.py``) the batch's own
    table is dropped instead, under the same condition (its batch row locked meanwhile)."""
    mine = batches_table.c.batch_id == batch_id
    if conn.dialect.name == "sqlite":  # the publish's page cache (bulk.py): each row's
        # index entries are found one by one (a 1M-row batch with schema 10's four indexes:
        # 13.0-14.2 s with SQLite's 2 MiB, 9.4-10.2 s with it; 512 MiB no better)
        conn.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    if is_partitioned(conn):  # schema 10: the batch's rows are its own table
        status = conn.scalar(select(batches_table.c.status).where(mine).with_for_update())
        if status is None or status in statuses:
            drop_batch_table(conn, batch_id)
    guard = or_(exists().where(mine, batches_table.c.status.in_(statuses)), ~exists().where(mine))
    conn.execute(delete(calls_table).where(calls_table.c.batch_id == batch_id, guard))
    conn.execute(delete(ranks_table).where(ranks_table.c.batch_id == batch_id, guard))
    conn.execute(delete(scores_table).where(scores_table.c.batch_id == batch_id, guard))


def batch_calls(engine: Engine, batch_id: str) -> pd.DataFrame:
    """A batch's calls (:data:`CALL_COLUMNS`) as written: each rep's list in rep id and
    position order, then the leads no rep took (by expected value, best first)."""
    c = calls_table.c
    query = (
        select(*(c[name] for name in CALL_COLUMNS))
        .where(c.batch_id == batch_id)
        .order_by(c.rep_id.is_(None), c.rep_id, c.position, c.expected.desc(), c.lead_id)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    frame = pd.DataFrame([tuple(r) for r in rows], columns=list(CALL_COLUMNS))
    return frame.astype({"position": "Int64", "expected": float})
