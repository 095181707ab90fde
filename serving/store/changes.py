"""The change feed: which leads' grades went up or down, appeared or left, per batch."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Engine, case, exists, insert, literal, null, select

from leadscore.serving.store.schema import APPEARED, DOWN, LEFT, UP, changes_table, scores_table

FEED_INDEX = "ix_scores_feed"
"""The index holding every column the feed compares (``store/schema.py``, schema 7)."""


def _grade_rank(column: Any, grade_order: Sequence[str] | None) -> Any:
    """SQL expression ordering grades best first: the position in ``grade_order``.

    Without an order the grade text itself is compared (A < B < C: A is best). Grades
    missing from the order sort after every listed one.
    """
    if grade_order is None:
        return column
    return case(
        {grade: position for position, grade in enumerate(grade_order)},
        value=column,
        else_=len(grade_order),
    )


def change_inserts(new: str, old: str, grade_order: Sequence[str] | None) -> list[Any]:
    """INSERT ... SELECT statements writing the change feed of batch ``new`` against ``old``.

    Four kinds, one row per lead at most: ``up`` / ``down`` (in both batches, the grade
    moved to a better / worse band), ``appeared`` (only in ``new``: a new open lead) and
    ``left`` (only in ``old``: the lead closed or was dropped). The work happens in the
    database, from the covering index ``ix_scores_feed`` alone (schema 7; SQLite is told
    to use it by :func:`write_changes`), so it costs a few index scans and never reads the
    rows themselves, which are 2 KB each.
    """
    n = scores_table.alias("n")
    o = scores_table.alias("o")
    target = [
        "batch_id",
        "lead_id",
        "kind",
        "previous_batch_id",
        "owner",
        "old_grade",
        "new_grade",
        "old_score",
        "new_score",
    ]
    better = _grade_rank(n.c.grade, grade_order) < _grade_rank(o.c.grade, grade_order)
    moved = (
        select(
            literal(new),
            n.c.lead_id,
            case((better, literal(UP)), else_=literal(DOWN)),
            literal(old),
            n.c.owner,
            o.c.grade,
            n.c.grade,
            o.c.score,
            n.c.score,
        )
        .select_from(n.join(o, (o.c.lead_id == n.c.lead_id) & (o.c.batch_id == old)))
        .where(n.c.batch_id == new, n.c.grade != o.c.grade)
    )
    in_old = exists().where(o.c.batch_id == old, o.c.lead_id == n.c.lead_id)
    appeared = select(
        literal(new),
        n.c.lead_id,
        literal(APPEARED),
        literal(old),
        n.c.owner,
        null(),
        n.c.grade,
        null(),
        n.c.score,
    ).where(n.c.batch_id == new, ~in_old)
    in_new = exists().where(n.c.batch_id == new, n.c.lead_id == o.c.lead_id)
    left = select(
        literal(new),
        o.c.lead_id,
        literal(LEFT),
        literal(old),
        o.c.owner,
        o.c.grade,
        null(),
        o.c.score,
        null(),
    ).where(o.c.batch_id == old, ~in_new)
    return [insert(changes_table).from_select(target, query) for query in (moved, appeared, left)]


def write_changes(conn: Connection, new: str, old: str, grade_order: Sequence[str] | None) -> None:
    """Run :func:`change_inserts` on ``conn`` (the flip's transaction).

    On PostgreSQL, :func:`prepare_changes` ran first. SQLite's planner would read the
    old batch's rows for their grade and score through the primary key (one random 2 KB
    row a lead), and SQLAlchemy cannot render SQLite's ``INDEXED BY``: there the
    statements are compiled and told to read ``scores`` through :data:`FEED_INDEX`,
    whose entries hold every column the feed needs.
    """
    if conn.dialect.name == "postgresql":  # no JIT compiling (~0.5 s a query) index scans
        conn.exec_driver_sql("SET LOCAL jit = off")
    for statement in change_inserts(new, old, grade_order):
        if conn.dialect.name != "sqlite":
            conn.execute(statement)
            continue
        compiled = statement.compile(dialect=conn.dialect)
        sql = re.sub(
            r"\bscores AS ([no])\b", rf"scores AS \1 INDEXED BY {FEED_INDEX}", str(compiled)
        )
        params = compiled.construct_params()
        conn.exec_driver_sql(sql, tuple(params[k] for k in compiled.positiontup or ()))


def prepare_changes(engine: Engine) -> None:
    """Before the flip, on PostgreSQL: ``VACUUM scores`` (its own, autocommitted
    statement; VACUUM cannot run in a transaction) so the new batch's pages are marked
    all-visible and the feed is read by index-only scans of ``ix_scores_feed``.

    Without it the planner reads every kept batch's heap (about 1 KB a row) three
    times over in the flip transaction, which grows with ``keep_batches``; VACUUM reads
    only the pages written since the last one, once (older batches are all-visible
    already), outside the flip. It changes no row: readers and a crash are unaffected.
    """
    if engine.dialect.name != "postgresql":
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(f"VACUUM {scores_table.name}")
