"""A batch's grades and owners in rank order, held in memory: the API's grade and owner
pages without an index on either column (issue #19).

Without a (batch_id, grade) or (batch_id, owner) index, SQLite answers ``WHERE grade = ?
ORDER BY rank LIMIT 101`` by walking the batch's ranks past every better lead, reading each
2 KB row: 15-41 s for a first page of grade B-D at 1M leads. Those indexes double the
nightly publish, so instead each server process reads, once per batch, every row's
(rank, grade, owner) from the covering index the store already has (``ix_scores_feed``;
the 2 KB rows are never read), ~1.3 s and ~9 bytes a lead at 1M. A grade or owner page is
then the next ranks of that grade or owner past the cursor, read as point lookups on
``score_ranks`` (``store/ranks.py``) and the rows' key. The ranks come from the rows
themselves, so the pages equal the straightforward query's whatever the grades' order (no
assumption that grades are bands of the rank; see tests/serving/test_page_index.py).

A published batch's rows never change (a pruned batch is refused before its ranks are
used), so an index stays valid for the batch's life; the last :data:`KEPT` batches'
are kept. SQLite only (its ``group_concat`` read): other databases answer with the plain
query.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Row, bindparam, func, literal_column, select

from leadscore.serving.store.codec import PACKED
from leadscore.serving.store.ranks import ranked_scores
from leadscore.serving.store.schema import SCORE_COLUMNS, ranks_table, scores_table

KEPT = 2
"""Batches whose index a process keeps (the current one and the one a sync's cursor
still pins across a publish)."""
_EMPTY = np.empty(0, dtype=np.int64)

# a page's rows by their ranks (a JSON list: one bound parameter, one compiled statement),
# each a point lookup on score_ranks then the row's key; schema 8's packed last (reader.py
# restores it)
_BY_RANKS = (
    select(*(scores_table.c[name] for name in SCORE_COLUMNS), scores_table.c[PACKED])
    .select_from(ranked_scores())
    .where(
        ranks_table.c.batch_id == bindparam("batch_id"),
        ranks_table.c.rank.in_(
            select(literal_column("value")).select_from(func.json_each(bindparam("ranks")))
        ),
    )
    .order_by(ranks_table.c.rank, ranks_table.c.lead_id)
)
_SEP = "\x01"
# every row of the batch in one aggregate row: SQLite joins the values into one string
# each, ~10x faster to read than a million fetched tuples (the same scan feeds every
# aggregate, so the lists line up)
_FEED = (
    "SELECT count(*), group_concat(rank, ' '), group_concat(grade, char(1)), "
    "group_concat(ifnull('=' || owner, '-'), char(1)) "
    "FROM scores INDEXED BY ix_scores_feed WHERE batch_id = ?"
)
_FEED_ROWS = "SELECT rank, grade, owner FROM scores INDEXED BY ix_scores_feed WHERE batch_id = ?"


def _ints(text: str | None, n: int) -> np.ndarray:
    values = np.fromstring(text, dtype=np.int64, sep=" ") if n else _EMPTY
    if len(values) != n:
        raise ValueError("not one integer per row")
    return values


def _texts(text: str | None, n: int) -> list[str]:
    values = text.split(_SEP) if n and text is not None else []
    if len(values) != n:
        raise ValueError("a value holds the separator")
    return values


def _read(cursor: Any, batch_id: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rank, grade, owner) of every row of the batch from the feed index (lead order),
    owner None where null."""
    n, ranks, grades, owners = cursor.execute(_FEED, (batch_id,)).fetchone()
    rank = _ints(ranks, n)
    try:
        grade = np.array(_texts(grades, n), dtype=object)
        tagged = _texts(owners, n)
        owner = np.array([o[1:] if o[:1] == "=" else None for o in tagged], dtype=object)
    except ValueError:  # a grade or owner holding char(1): read the rows themselves
        rows = cursor.execute(_FEED_ROWS, (batch_id,)).fetchall()
        rank = np.array([r[0] for r in rows], dtype=np.int64)
        grade = np.array([r[1] for r in rows], dtype=object)
        owner = np.array([r[2] for r in rows], dtype=object)
    return rank, grade, owner


def _past(ranks: np.ndarray, after_rank: int) -> int:
    """Where the ranks greater than ``after_rank`` start (a cursor's rank may pass any
    rank the array's type holds)."""
    return int(np.searchsorted(ranks, min(after_rank, np.iinfo(ranks.dtype).max), "right"))


@dataclass(frozen=True)
class PageIndex:
    """One batch's ranks per grade and per owner (each sorted), and the grade of each of
    an owner's ranks (a page filtered on both)."""

    by_grade: dict[str, np.ndarray]
    by_owner: dict[str, np.ndarray]
    owner_grades: dict[str, np.ndarray]
    grade_names: tuple[str, ...]

    @classmethod
    def build(cls, conn: Connection, batch_id: str) -> PageIndex:
        """Read the batch's (rank, grade, owner) from the feed index, in rank order."""
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            rank, grade, owner = _read(cursor, batch_id)
        finally:
            cursor.close()
        by_rank = np.argsort(rank, kind="stable")  # the index holds them in lead order
        rank, grade, owner = rank[by_rank], grade[by_rank], owner[by_rank]
        grade_code, grade_names = pd.factorize(grade)
        # the narrowest types that hold them: ~9 bytes a lead kept instead of 24
        grade_code = grade_code.astype(np.min_scalar_type(max(len(grade_names), 1)))
        if len(rank) and rank[-1] < 2**31:  # ranks are >= 1
            rank = rank.astype(np.int32)
        owner_code, owner_names = pd.factorize(owner)  # null: -1
        order = np.argsort(owner_code, kind="stable")  # keeps each owner's ranks sorted
        bounds = np.searchsorted(owner_code[order], np.arange(len(owner_names) + 1))
        by_owner: dict[str, np.ndarray] = {}
        owner_grades: dict[str, np.ndarray] = {}
        for i, name in enumerate(owner_names):
            picked = order[bounds[i] : bounds[i + 1]]
            by_owner[str(name)] = rank[picked]
            owner_grades[str(name)] = grade_code[picked]
        return cls(
            by_grade={str(g): rank[grade_code == i] for i, g in enumerate(grade_names)},
            by_owner=by_owner,
            owner_grades=owner_grades,
            grade_names=tuple(str(g) for g in grade_names),
        )

    def ranks(
        self, after_rank: int, limit: int, grades: Sequence[str], owner: str | None
    ) -> list[int]:
        """The first ``limit`` ranks past ``after_rank`` of one of ``grades`` (any, if
        empty) and of ``owner`` (any, if None), ascending."""
        if owner is not None:
            ranks = self.by_owner.get(owner, _EMPTY)
            start = _past(ranks, after_rank)
            if not grades:
                return ranks[start : start + limit].tolist()
            wanted = [self.grade_names.index(g) for g in grades if g in self.grade_names]
            mask = np.isin(self.owner_grades.get(owner, _EMPTY)[start:], wanted)
            return ranks[start:][mask][:limit].tolist()
        picks = []
        for grade in dict.fromkeys(grades):
            ranks = self.by_grade.get(grade, _EMPTY)
            start = _past(ranks, after_rank)
            picks.append(ranks[start : start + limit])
        if len(picks) == 1:
            return picks[0].tolist()
        return np.sort(np.concatenate(picks or [_EMPTY]))[:limit].tolist()


class PageIndexes:
    """The :class:`PageIndex` of the last :data:`KEPT` batches read, built on first use
    (one build at a time per batch: concurrent requests for it wait for the one build)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: OrderedDict[str, PageIndex] = OrderedDict()
        self._building: dict[str, threading.Lock] = {}

    def peek(self, batch_id: str) -> PageIndex | None:
        """The batch's index if it is built, else None (nothing built)."""
        with self._lock:
            return self._kept.get(batch_id)

    def get(self, conn: Connection, batch_id: str) -> PageIndex:
        with self._lock:
            found = self._kept.get(batch_id)
            if found is not None:
                self._kept.move_to_end(batch_id)
                return found
            building = self._building.setdefault(batch_id, threading.Lock())
        with building:
            try:
                with self._lock:
                    found = self._kept.get(batch_id)
                if found is None:
                    found = PageIndex.build(conn, batch_id)
                    with self._lock:
                        self._kept[batch_id] = found
                        while len(self._kept) > KEPT:
                            self._kept.popitem(last=False)
            finally:
                with self._lock:
                    self._building.pop(batch_id, None)
        return found


def indexed_page(
    conn: Connection,
    index: PageIndex,
    batch_id: str,
    after_rank: int,
    limit: int,
    grades: Sequence[str],
    owner: str | None,
) -> list[Row[Any]]:
    """The score rows of :meth:`PageIndex.ranks`, best first."""
    ranks = index.ranks(after_rank, limit, grades, owner)
    if not ranks:
        return []
    return list(conn.execute(_BY_RANKS, {"batch_id": batch_id, "ranks": json.dumps(ranks)}))
