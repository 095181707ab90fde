"""serving/hot_reads.py answers, from the stored bytes, exactly what the routes' own code
(``routes.scores_page``, ``routes.lead_page``) answers, on rows as full as a real batch's:
every JSON column filled, non-ASCII text, malformed JSON, old-style reasons, NULLs."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bench.api_store import synthetic_batch
from leadscore.serving import routes
from leadscore.serving.config import ApiConfig, StoreConfig
from leadscore.serving.hot_reads import HotPages, SlowReadError
from leadscore.serving.store import ScoreStore
from tests.serving.test_store import AS_OF

N = 120


def _batch(seed: int):
    frame = synthetic_batch(N, seed)
    frame.loc[3, "reasons"] = frame.loc[3, "reasons"].replace(
        '"text": "', '"text": "Ångström ✓ ', 1
    )
    frame.loc[4, "timeline"] = (
        '[{"type": "Café visité", "at": "2026-10-01T00:00:00Z", "value": null}]'
    )
    frame.loc[5, "timeline"] = "[{not json"
    frame.loc[6, "rule_reasons"] = None
    frame.loc[7, "reasons"] = '[{"feature": "visits", "value": 3.0, "contribution": 0.25}]'
    frame.loc[8, "attributes"] = "{broken"
    frame.loc[9, "reasons"] = "not json"
    frame.loc[10, "timeline"] = None
    frame.loc[11, "rule_reasons"] = ' [{"text": "padded", "points": 5.0}] '
    return frame


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    store = ScoreStore(StoreConfig(url=f"sqlite:///{tmp_path_factory.mktemp('hot')}/s.db"))
    store.create()
    for seed in (1, 2):
        store.publish(_batch(seed), model_version=str(seed), as_of=AS_OF + timedelta(days=seed))
    yield store
    store.close()


CONFIG = ApiConfig(page_size=7, max_page_size=50, history_batches=5)


def test_pages_equal_the_routes(store):
    hot = HotPages.of(store)
    assert hot is not None
    first = store.batches()[-1].batch_id  # the superseded batch, still readable by cursor
    pages = [
        {},
        {"limit": 50},
        {"limit": 51},  # over max_page_size: left to the route
        {"cursor": routes.encode_cursor(first, 40, None), "limit": 30},
        {"grade": ["A"], "limit": 50},
        {"grade": ["B", "C", "B"], "limit": 13},
        {"grade": ["D"], "owner": "rep03@example.com"},
        {"owner": "rep01@example.com", "limit": 3},
        {"owner": "nobody@example.com"},
    ]
    everything = hot.page(CONFIG, limit=50) + hot.page(CONFIG, limit=50, grade=["A", "B", "C", "D"])
    assert (
        "Ångström".encode() in everything and "Café visité".encode() in everything
    )  # non-ASCII rows
    for params in pages:
        params = {"grade": None, "owner": None, "cursor": None, "limit": None, **params}
        want = routes.scores_page(store, CONFIG, **params).body if params["limit"] != 51 else None
        got = hot.page(CONFIG, **params)
        assert got == want, params
        # and every page after it, by its cursor, to the end
        while got is not None and (cursor := routes.orjson.loads(got)["next_cursor"]):
            params = {**params, "cursor": cursor}
            got = hot.page(CONFIG, **params)
            assert got == routes.scores_page(store, CONFIG, **params).body, params


def test_leads_equal_the_routes(store):
    hot = HotPages.of(store)
    assert hot is not None
    for i in range(N):
        for history in (None, 1):
            lead = f"L{i:07d}"
            want = routes.lead_page(store, CONFIG, lead, history).body
            assert hot.lead(CONFIG, lead, history) == want, lead
    assert hot.lead(CONFIG, "nobody", None) is None  # 404: the route's answer
    assert hot.lead(CONFIG, "L0000001", 6) is None  # over history_batches: the route's 422


def test_inline_reads_never_build_a_page_index(tmp_path):
    writer = ScoreStore(StoreConfig(url=f"sqlite:///{tmp_path}/s.db"))
    writer.create()
    writer.publish(_batch(1), model_version="1", as_of=AS_OF)
    writer.close()
    store = ScoreStore(writer.config)  # a server's: nothing read yet
    hot = HotPages.of(store)
    assert hot is not None
    with pytest.raises(SlowReadError):  # the schema check, on a store connection
        hot.page(CONFIG, inline=True)
    assert hot.page(CONFIG) is not None
    assert hot.page(CONFIG, inline=True) is not None  # a plain page needs no index
    with pytest.raises(SlowReadError):  # the batch's page index: ~2 s at 1M leads
        hot.page(CONFIG, grade=["A"], inline=True)
    assert hot.page(CONFIG, grade=["A"]) is not None
    assert hot.page(CONFIG, grade=["A"], inline=True) is not None
    store.close()


def test_only_a_sqlite_file_has_hot_reads():
    assert HotPages.of(ScoreStore(StoreConfig(url="sqlite://"))) is None
    assert HotPages.of(ScoreStore(StoreConfig(url="sqlite:///x.db?timeout=3"))) is None


def test_a_locked_database_moves_an_inline_read_to_a_thread(store):
    import sqlite3

    hot = HotPages.of(store)
    assert hot is not None
    want = hot.page(CONFIG)  # checks the schema, opens this thread's connection
    real = hot.local.conn

    class Locked:
        def execute(self, *args):
            raise sqlite3.OperationalError("database is locked")

    hot.local.conn = Locked()  # as a connection that waited out BUSY_INLINE_S
    with pytest.raises(SlowReadError):
        hot.page(CONFIG, inline=True)
    with pytest.raises(SlowReadError):
        hot.lead(CONFIG, "L0000001", None, inline=True)
    with pytest.raises(sqlite3.OperationalError):  # on a thread: the error, as ever
        hot.page(CONFIG)
    hot.local.conn = real
    assert hot.page(CONFIG, inline=True) == want


def test_a_batch_new_to_the_process_warms_the_store_file_once(store, monkeypatch):
    from leadscore.serving import hot_reads

    warmed: list[str] = []
    monkeypatch.setattr(hot_reads, "warm_file", lambda path: warmed.append(path))
    hot = HotPages.of(store)
    assert hot is not None
    for _ in range(3):
        assert hot.page(CONFIG, limit=5) is not None
    assert warmed == [hot.path]  # the current batch, seen first: once


def test_warm_file_reads_the_whole_file_unless_memory_is_short(tmp_path, monkeypatch):
    from leadscore.serving import hot_reads

    path = tmp_path / "s.db"
    path.write_bytes(b"x" * 5000)
    reads: list[int] = []
    real_open = open

    class Counting:
        def __init__(self, file):
            self.file = file

        def readinto(self, buffer):
            n = self.file.readinto(buffer)
            reads.append(n)
            return n

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

    monkeypatch.setattr(hot_reads, "WARM_CHUNK", 1024)
    monkeypatch.setattr("builtins.open", lambda *a, **k: Counting(real_open(*a, **k)))
    thread = hot_reads.warm_file(str(path))
    assert thread is not None
    thread.join(5)
    assert sum(reads) == 5000 and reads[-1] == 0
    monkeypatch.setattr(hot_reads.os, "sysconf", lambda name: 1)  # ~no free memory
    assert hot_reads.warm_file(str(path)) is None
