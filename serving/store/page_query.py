"""The SELECT of one page of a batch (``StoreReader.page``): its filters, and one statement
built per combination of filters used (SQLAlchemy then reuses its compiled form instead
of building and hashing a SELECT per request). Pages walk the batch's ``score_ranks``
(``store/ranks.py``) and read each row by its key."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, bindparam, exists, or_, select

from leadscore.serving.store.ranks import ranked_scores
from leadscore.serving.store.schema import SCORE_COLUMNS, ranks_table, scores_table


@dataclass(frozen=True)
class PageFilters:
    """The filters of one ``StoreReader.page`` read, as a SELECT of its score rows."""

    batch_id: str
    after_rank: int
    owner: str | None
    min_score: int | None
    changed_since_batch: str | None
    cell: Sequence[str]
    q: str | None

    def query(self, grades: Sequence[str], limit: int) -> tuple[Select[Any], dict[str, Any]]:
        """Rows of the batch past ``after_rank`` matching every filter (and one of
        ``grades``, if any), best first, at most ``limit``: the statement (one per
        combination of filters used, built once) and its parameters."""
        params: dict[str, Any] = {
            "batch_id": self.batch_id,
            "after_rank": self.after_rank,
            "limit": limit,
            "grade": grades[0] if len(grades) == 1 else None,
            "grades": list(grades),
            "owner": self.owner,
            "min_score": self.min_score,
            "cells": list(self.cell),
            "changed": self.changed_since_batch,
        }
        shape = (
            min(len(grades), 2),
            self.owner is not None,
            self.min_score is not None,
            bool(self.cell),
            self.changed_since_batch is not None,
        )
        if self.q:  # a search: rare, and its pattern is escaped as a literal
            s = scores_table
            columns = (s.c.lead_id, s.c.name, s.c.company, s.c.email)
            search = or_(*(c.icontains(self.q, autoescape=True) for c in columns))
            return _page_statement(*shape).where(search), params
        return _page_statement(*shape), params


@functools.cache
def _page_statement(
    grades: int, owner: bool, min_score: bool, cells: bool, changed: bool
) -> Select[Any]:
    """The page SELECT for one combination of filters (0, 1 or several grades), with
    bound parameters named as :meth:`PageFilters.query` passes them."""
    s, r = scores_table, ranks_table
    query = (
        select(*(s.c[name] for name in SCORE_COLUMNS), s.c.packed)
        .select_from(ranked_scores())
        .where(r.c.batch_id == bindparam("batch_id"), r.c.rank > bindparam("after_rank"))
    )
    if grades == 1:
        query = query.where(s.c.grade == bindparam("grade"))
    elif grades:
        query = query.where(s.c.grade.in_(bindparam("grades", expanding=True)))
    if owner:
        query = query.where(s.c.owner == bindparam("owner"))
    if min_score:
        query = query.where(s.c.score >= bindparam("min_score"))
    if cells:
        query = query.where(s.c.cell.in_(bindparam("cells", expanding=True)))
    if changed:
        o = scores_table.alias("o")
        same = exists().where(
            o.c.batch_id == bindparam("changed"),
            o.c.lead_id == s.c.lead_id,
            o.c.score == s.c.score,
            o.c.grade == s.c.grade,
        )
        query = query.where(~same)
    return query.order_by(r.c.rank, r.c.lead_id).limit(bindparam("limit"))
