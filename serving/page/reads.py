"""The page's SQL: one filtered, sorted, paged list and what is counted over it.

Every read runs against one batch (the current one, pinned by the caller) of the store's
``scores`` table (serving/store/schema.py), and every count is computed by the database
(``GROUP BY``), so a page costs a few index or table scans whatever the batch size. The
score row's v4 columns (name, company, fit_score, cell, rule_rank, attributes, ...) are
used when the store has them; against an older store the page shows what there is.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, Integer, and_, case, cast, func, or_, select

from leadscore.serving.page.filters import CHANGE_KINDS, ROWS_PER_PAGE, ListQuery
from leadscore.serving.store import changes_table, codec, scores_table
from leadscore.serving.store.ranks import ranked_scores
from leadscore.serving.store.schema import ranks_table

S, R = scores_table, ranks_table
SEARCHED = ("lead_id", "name", "company", "email")
"""Columns the search box looks in (those the store has), case-insensitively."""
LIKE_ESCAPE = "!"


def has(name: str) -> bool:
    """Whether the store's score row has column ``name`` (v4 columns may be missing)."""
    return name in S.c


def columns() -> list[str]:
    """The score row's columns this store has, in declared order."""
    return [c.name for c in S.c if c.name != "batch_id"]


def like_literal(text: str) -> str:
    """``text`` with LIKE's wildcards (and the escape character) escaped."""
    for char in (LIKE_ESCAPE, "%", "_"):
        text = text.replace(char, LIKE_ESCAPE + char)
    return text


def attr_condition(key: str, value: str) -> ColumnElement[bool]:
    """An exact match of ``key`` = ``value`` in the ``attributes`` JSON text.

    The writer uses ``json.dumps(sort_keys=True, separators=(",", ":"))``, so a text value
    reads ``"key":"value"`` and a number ``"key":12`` (then followed by ``,`` or ``}``).
    """
    head = like_literal(json.dumps(key) + ":")
    options = [S.c.attributes.like(f"%{head}{like_literal(json.dumps(value))}%", LIKE_ESCAPE)]
    try:
        number = json.dumps(json.loads(value))
    except ValueError:
        number = None
    if number is not None and not number.startswith('"'):
        for end in (",", "}"):
            pattern = f"%{head}{like_literal(number)}{end}%"
            options.append(S.c.attributes.like(pattern, LIKE_ESCAPE))
    return or_(*options)


def conditions(batch_id: str, query: ListQuery, skip: Sequence[str] = ()) -> list[Any]:
    """The WHERE terms of ``query`` over one batch; ``skip`` leaves filters out (a facet
    counts over every other filter: the grade counts ignore the grade filter)."""
    terms: list[Any] = [S.c.batch_id == batch_id]
    if query.q:
        pattern = f"%{like_literal(query.q.lower())}%"
        terms.append(
            or_(*(func.lower(S.c[c]).like(pattern, LIKE_ESCAPE) for c in SEARCHED if has(c)))
        )
    if query.grades and "grade" not in skip:
        terms.append(S.c.grade.in_(query.grades))
    if query.owner:
        terms.append(S.c.owner == query.owner)
    if query.segment:
        terms.append(S.c.segment == query.segment)
    if query.cells and "cell" not in skip and has("cell"):
        terms.append(S.c.cell.in_(query.cells))
    if query.attrs and has("attributes"):
        terms.extend(attr_condition(k, v) for k, v in query.attrs)
    return terms


def _sort_key(query: ListQuery) -> tuple[Any, bool] | None:
    """The column a sort orders by and whether its best is the largest; None: by rank."""
    if query.sort == "rules":
        return (S.c.rule_rank, False) if has("rule_rank") else (S.c.rule_score, True)
    if query.sort == "fit":
        return (S.c.fit_score if has("fit_score") else S.c.fit), True
    if query.sort == "engagement":
        return (S.c.engagement_score if has("engagement_score") else S.c.engagement), True
    if query.sort == "activity" and has("last_activity_at"):
        return S.c.last_activity_at, True
    return None


def _walks_ranks(query: ListQuery) -> bool:
    """Whether the page walks the batch's ``score_ranks`` (by rank, no text filter) rather
    than scanning the batch and sorting what matches. A search or an attribute filter is
    tested row by row and usually matches few leads: walking the ranks for them reads the
    rows in random order, one key probe each (a search matching nothing: ~8.5 s at 1M),
    where the scan reads them in the order they were written (~2 s)."""
    return _sort_key(query) is None and not query.q and not query.attrs


def _order_by(query: ListQuery) -> list[Any]:
    """The ORDER BY of a sort: best (or newest) first unless reversed; ties by rank. By
    rank it is the batch's ``score_ranks`` order where :func:`_sorted` joins it."""
    sort = _sort_key(query)
    if sort is None:  # rank 1 is best: walked forwards, or backwards when reversed
        ranked = [R.c.rank, R.c.lead_id] if _walks_ranks(query) else [S.c.rank, S.c.lead_id]
        return ranked if query.descending else [c.desc() for c in ranked]
    key, largest_best = sort
    ordered = key.desc() if largest_best == query.descending else key.asc()
    return [ordered.nulls_last(), S.c.rank]


def _sorted(batch_id: str, query: ListQuery) -> Any:
    """SELECT of the score row's columns over ``query``'s filters, in its order: by rank
    through ``score_ranks`` (``store/ranks.py``), by another key sorted by the database."""
    statement = select(*(S.c[c] for c in columns())).where(*conditions(batch_id, query))
    if _walks_ranks(query):
        statement = statement.select_from(ranked_scores()).where(R.c.batch_id == batch_id)
    return statement.order_by(*_order_by(query))


def list_page(conn: Connection, batch_id: str, query: ListQuery) -> list[dict]:
    """The page's rows (score row columns), in the query's order."""
    rows = conn.execute(_sorted(batch_id, query).limit(ROWS_PER_PAGE).offset(query.offset)).all()
    found = [dict(r._mapping) for r in rows]
    codec.restore(conn, found, batch_id)  # schema 8's packed columns (store/codec.py)
    return found


def all_rows(
    conn: Connection, batch_id: str, query: ListQuery, chunk: int, limit: int | None = None
) -> Iterator[list]:
    """The rows matching ``query`` (the first ``limit`` if given), in its order, in lists
    of ``chunk`` (the download)."""
    statement = _sorted(batch_id, query).limit(limit)
    result = conn.execution_options(stream_results=True, yield_per=chunk).execute(statement)
    for part in result.partitions(chunk):
        found = [dict(r._mapping) for r in part]
        codec.restore(conn, found, batch_id)
        yield found


def _decile(column: Any) -> Any:
    """A 0-100 sub-score's tenth, 0..9 (100 falls in the top one); NULL stays NULL."""
    return case((column >= 100, 9), else_=cast(column / 10, Integer))


Groups = list[tuple[str, str | None, int | None, int | None, int]]
"""Leads per (grade, cell, fit tenth, engagement tenth): what every count is made of."""


def groups(conn: Connection, batch_id: str, query: ListQuery) -> Groups:
    """One scan of the batch over every filter but grade and cell, grouped by grade, cell
    and the sub-scores' tenths (at most 4 x 4 x 100 groups): the total, the counts per
    grade, per cell and the quadrant's grid all come from it (:func:`summary`)."""
    fit, eng = _decile(S.c.fit_score).label("f"), _decile(S.c.engagement_score).label("e")
    rows = conn.execute(
        select(S.c.grade, S.c.cell, fit, eng, func.count())
        .where(*conditions(batch_id, query, skip=("grade", "cell")))
        .group_by(S.c.grade, S.c.cell, fit, eng)
    ).all()
    return [(g, c, f, e, int(n)) for g, c, f, e, n in rows]


def summary(found: Groups, query: ListQuery) -> dict[str, Any]:
    """The counts of a view from its :func:`groups`: ``total`` (every filter), ``grades``
    (leads per grade over every filter but the grade's: the grade boxes' counts),
    ``cells`` and ``grid`` (per cell, and per (fit, engagement) tenth, over every filter
    but the cell's: the quadrant, whose cells are links)."""
    grades_ok = set(query.grades)
    cells_ok = set(query.cells)
    total, grades, cells, grid = 0, {}, {}, {}
    for grade, cell, fit, eng, n in found:
        in_grade = not grades_ok or grade in grades_ok
        in_cell = not cells_ok or cell in cells_ok
        if in_cell:
            grades[grade] = grades.get(grade, 0) + n
        if in_grade:
            if cell is not None:
                cells[cell] = cells.get(cell, 0) + n
            if fit is not None and eng is not None:
                grid[(int(fit), int(eng))] = grid.get((int(fit), int(eng)), 0) + n
        if in_grade and in_cell:
            total += n
    return {"total": total, "grades": grades, "cells": cells, "grid": grid}


def cell_cuts(conn: Connection, batch_id: str) -> tuple[float, float]:
    """The cells' cut-offs as the batch shows them (``scoring.cells`` is the model's
    config, not the server's): the lowest fit of a high-fit cell (call now, nurture) and
    the lowest engagement of a high-engagement cell (call now, educate); 50 if none."""
    fit = conn.scalar(
        select(func.min(S.c.fit_score)).where(
            S.c.batch_id == batch_id, S.c.cell.in_(("call_now", "nurture"))
        )
    )
    eng = conn.scalar(
        select(func.min(S.c.engagement_score)).where(
            S.c.batch_id == batch_id, S.c.cell.in_(("call_now", "educate"))
        )
    )
    return (float(fit) if fit is not None else 50.0, float(eng) if eng is not None else 50.0)


def distinct(conn: Connection, batch_id: str, name: str) -> list[str]:
    """Distinct non-null values of a text column in a batch, sorted (a filter's options)."""
    if not has(name):
        return []
    column = S.c[name]
    return list(
        conn.scalars(
            select(column)
            .where(S.c.batch_id == batch_id, column.is_not(None))
            .distinct()
            .order_by(column)
        ).all()
    )


def attribute_keys(conn: Connection, batch_id: str, sample: int = 200) -> list[str]:
    """Attribute names seen in the batch's best ``sample`` leads (the filter's choices)."""
    if not has("attributes"):
        return []
    keys: set[str] = set()
    for raw in conn.scalars(
        select(S.c.attributes)
        .select_from(ranked_scores())
        .where(R.c.batch_id == batch_id, S.c.attributes.is_not(None))
        .order_by(R.c.rank, R.c.lead_id)
        .limit(sample)
    ):
        try:
            value = json.loads(raw)
        except ValueError:
            continue
        if isinstance(value, dict):
            keys.update(str(k) for k in value)
    return sorted(keys)


def _compare_terms(batch_id: str, query: ListQuery, side: str | None) -> list[Any]:
    terms = [*conditions(batch_id, query), S.c.rule_rank.is_not(None)]
    if side == "model":
        terms.append(S.c.rank < S.c.rule_rank)
    elif side == "rules":
        terms.append(S.c.rule_rank < S.c.rank)
    return terms


def compare_count(conn: Connection, batch_id: str, query: ListQuery, side: str | None) -> int:
    """Leads the compare view lists (0 without ``rule_rank``)."""
    if not has("rule_rank"):
        return 0
    terms = _compare_terms(batch_id, query, side)
    return int(conn.scalar(select(func.count()).select_from(S).where(*terms)) or 0)


def compare_page(conn: Connection, batch_id: str, query: ListQuery, side: str | None) -> list[dict]:
    """Leads where the model's rank and the rules' rank differ most, over the filters.

    ``side`` ``"model"`` keeps leads the model ranks higher than the rules do, ``"rules"``
    the reverse. Needs ``rule_rank`` (schema v4): without it, no rows.
    """
    if not has("rule_rank"):
        return []
    gap = func.abs(S.c.rank - S.c.rule_rank)
    rows = conn.execute(
        select(*(S.c[c] for c in columns()))
        .where(*_compare_terms(batch_id, query, side))
        .order_by(gap.desc(), S.c.rank)
        .limit(ROWS_PER_PAGE)
        .offset(query.offset)
    ).all()
    found = [dict(r._mapping) for r in rows]
    codec.restore(conn, found, batch_id)  # schema 8's packed columns (store/codec.py)
    return found


def grade_crosstab(conn: Connection, batch_id: str, query: ListQuery) -> dict[tuple, int]:
    """Leads per (model grade, rules grade) over every filter but the grade's."""
    rows = conn.execute(
        select(S.c.grade, S.c.rule_grade, func.count())
        .where(*conditions(batch_id, query, skip=("grade",)))
        .group_by(S.c.grade, S.c.rule_grade)
    ).all()
    return {(g, r): int(n) for g, r, n in rows}


C = changes_table


def change_counts(conn: Connection, batch_id: str) -> dict[str, int]:
    """Rows of the batch's change feed per kind (up, down, appeared, left)."""
    rows = conn.execute(
        select(C.c.kind, func.count()).where(C.c.batch_id == batch_id).group_by(C.c.kind)
    ).all()
    return {kind: int(n) for kind, n in rows}


def change_page(
    conn: Connection, batch_id: str, kinds: Sequence[str], owner: str | None, page: int
) -> tuple[list[dict], int]:
    """One page of the batch's change feed, with the lead's name and company where the
    store has them (from this batch, or the previous one for a lead that left)."""
    terms: list[Any] = [C.c.batch_id == batch_id]
    if kinds:
        terms.append(C.c.kind.in_(list(kinds)))
    if owner:
        terms.append(C.c.owner == owner)
    total = conn.scalar(select(func.count()).select_from(C).where(*terms)) or 0
    new, old = S.alias("n"), S.alias("o")
    shown = [c for c in ("name", "company") if has(c)]
    query = (
        select(
            C,
            *(func.coalesce(new.c[c], old.c[c]).label(c) for c in shown),
            new.c.rank.label("rank"),
        )
        .select_from(
            C.outerjoin(
                new, and_(new.c.batch_id == C.c.batch_id, new.c.lead_id == C.c.lead_id)
            ).outerjoin(
                old, and_(old.c.batch_id == C.c.previous_batch_id, old.c.lead_id == C.c.lead_id)
            )
        )
        .where(*terms)
        .order_by(
            case({kind: i for i, kind in enumerate(CHANGE_KINDS)}, value=C.c.kind, else_=9),
            new.c.rank.nulls_last(),
            C.c.lead_id,
        )
        .limit(ROWS_PER_PAGE)
        .offset((page - 1) * ROWS_PER_PAGE)
    )
    return [dict(r._mapping) for r in conn.execute(query).all()], int(total)
