"""Grade and owner pages read from the batch's in-memory page index
(serving/store/page_index.py) equal the straightforward SQL query, page after page."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.serving.store import ScoreStore, StoreConfig, codec
from leadscore.serving.store.page_query import PageFilters
from leadscore.serving.store.reader import _PAGE_KEYS
from tests.serving.test_store import AS_OF, make_scores

N = 48
OWNERS = ["a@example.com", "b@example.com", "c@example.com", None]


def batch(seed: int, monotone: bool) -> pd.DataFrame:
    """N leads with grades A-D as bands of the rank (``monotone``) or shuffled across it
    (no grade E at all), owners a-c and none, ranks with gaps."""
    frame = pd.concat([make_scores(8, seed=s) for s in range(N // 8)], ignore_index=True)
    rng = np.random.default_rng(seed)
    frame["lead_id"] = [f"L{i:03d}" for i in rng.permutation(N)]
    frame["rank"] = np.arange(1, N + 1) * 3  # gaps between ranks
    frame["rule_rank"] = frame["rank"]
    bands = np.repeat(list("ABCD"), [5, 11, 20, N - 36])
    frame["grade"] = bands if monotone else rng.permutation(bands)
    frame["owner"] = [OWNERS[i] for i in rng.integers(0, len(OWNERS), N)]
    return frame.sample(frac=1, random_state=seed).reset_index(drop=True)  # any order


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pages")
    store = ScoreStore(StoreConfig(url=f"sqlite:///{folder}/pages.db"))
    store.create()
    store.publish(batch(1, monotone=False), model_version="1", as_of=AS_OF)
    store.publish(batch(2, monotone=True), model_version="1", as_of=AS_OF)
    yield store
    store.close()


def plain_page(store, batch_id, after, limit, grades, owner):
    """The straightforward query (no page index), as the reader runs it otherwise."""
    filters = PageFilters(batch_id, after, owner, None, None, (), None)
    with store.engine.connect() as conn:
        rows = [
            dict(zip(_PAGE_KEYS, r, strict=True))
            for r in conn.execute(*filters.query(grades, limit))
        ]
        codec.restore(conn, rows, batch_id)  # schema 8: the packed texts put back
    return rows


def pages(store, batch_id, limit, grades, owner):
    """Every page of a filtered sync (cursor = the last rank served), both ways."""
    after, served, expected = 0, [], []
    while True:
        _, rows = store.page(batch_id=batch_id, after_rank=after, limit=limit, grade=grades,
                             owner=owner)  # fmt: skip
        served.append(rows)
        expected.append(plain_page(store, batch_id, after, limit, grades, owner))
        if len(rows) < limit:
            return served, expected
        after = rows[-1]["rank"]


CASES = [
    (["A"], None),  # the first grade
    (["D"], None),  # the last grade
    (["B"], None),
    (["E"], None),  # a grade with no rows
    (["B", "C"], None),  # several grades: pages cross the B/C boundary
    (["D", "A"], None),
    ([], "a@example.com"),
    ([], "nobody@example.com"),
    (["C"], "b@example.com"),
    (["A", "D"], "c@example.com"),
]


@pytest.mark.parametrize(("grades", "owner"), CASES)
@pytest.mark.parametrize("limit", [1, 4, 7])
def test_grade_and_owner_pages_equal_the_plain_query(store, grades, owner, limit):
    for info in store.complete_batches():  # the shuffled grades and the banded ones
        served, expected = pages(store, info.batch_id, limit, grades, owner)
        assert served == expected
        assert sum(map(len, served)) == len(plain_page(store, info.batch_id, 0, N, grades, owner))


def test_a_cursor_across_a_grade_boundary(store):
    current = store.current_batch()
    # the last A row's rank: the next page of A and B starts with the first B
    _, a_rows = store.page(grade=["A"], limit=N)
    _, rows = store.page(after_rank=a_rows[-1]["rank"] - 1, limit=3, grade=["A", "B"])
    assert [r["grade"] for r in rows] == ["A", "B", "B"]
    assert rows == plain_page(store, current.batch_id, a_rows[-1]["rank"] - 1, 3, ["A", "B"], None)
    _, rows = store.page(after_rank=a_rows[-1]["rank"], limit=3, grade=["B"])
    assert rows == plain_page(store, current.batch_id, a_rows[-1]["rank"], 3, ["B"], None)


def test_the_index_is_built_once_per_batch_and_bounded(store, monkeypatch):
    from leadscore.serving.store import page_index

    built = []
    real = page_index.PageIndex.build.__func__

    def counting(cls, conn, batch_id):
        built.append(batch_id)
        return real(cls, conn, batch_id)

    monkeypatch.setattr(page_index.PageIndex, "build", classmethod(counting))
    ids = [info.batch_id for info in store.complete_batches()]
    store.__dict__.pop("_page_indexes", None)  # a new process
    for batch_id in [*ids, *ids, ids[0]]:
        store.page(batch_id=batch_id, grade=["B"], limit=2)
    assert built == ids
    monkeypatch.setattr(page_index, "KEPT", 1)
    store.__dict__.pop("_page_indexes")  # a new process
    for batch_id in [ids[1], ids[1], ids[0], ids[1]]:
        store.page(batch_id=batch_id, owner="a@example.com", limit=2)
    assert built == [*ids, ids[1], ids[0], ids[1]]


def test_a_cursor_past_every_rank(store):
    current = store.current_batch().batch_id
    for after in (N * 3, 2**31, 2**40):
        for grades, owner in ((["A"], None), ([], "a@example.com"), (["B"], "b@example.com")):
            _, rows = store.page(after_rank=after, grade=grades, owner=owner, limit=5)
            assert rows == [] == plain_page(store, current, after, 5, grades, owner)
