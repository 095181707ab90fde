"""The hot reads' fast path (serving/fast_reads.py ``FastReads``, on a SQLite file
serving/hot_reads.py's raw reads; elsewhere the routes' code on a thread) answers byte for
byte what the FastAPI routes answer, and leaves every other request to them."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from leadscore.serving.api import PAGE_TOKENS_ENV, TOKENS_ENV, ApiConfig, create_app
from leadscore.serving.fast_reads import FastReads
from leadscore.serving.routes import encode_cursor
from tests.serving.test_api import two_batches

TOKEN = "fast-path-token"


@pytest.fixture(scope="module")
def clients(tmp_path_factory):
    """(with the fast path, without it, with it on the routes' code) over the same store."""
    folder = tmp_path_factory.mktemp("fast")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(TOKENS_ENV, raising=False)
        mp.delenv(PAGE_TOKENS_ENV, raising=False)
        store, batches = two_batches(f"sqlite:///{folder}/s.db")
        config = ApiConfig(tokens=[TOKEN], page_size=2, max_page_size=50, history_batches=5)
        fast = create_app(store.config, config, store=store)
        plain = create_app(store.config, config, store=store)
        plain.user_middleware = [m for m in plain.user_middleware if m.cls is not FastReads]
        routed = create_app(store.config, config, store=store)
        for m in routed.user_middleware:
            if m.cls is FastReads:
                m.kwargs["hot"] = False  # as on PostgreSQL: the routes' code, on a thread
        with TestClient(fast) as f, TestClient(plain) as p, TestClient(routed) as r:
            yield f, p, batches, r
        store.close()


def cases(batches):
    first, second = (b.batch_id for b in batches)
    cursor = encode_cursor(second, 1, None)
    return [
        "/v1/scores",
        "/v1/scores?limit=3",
        f"/v1/scores?limit=1&cursor={cursor}",
        f"/v1/scores?cursor={encode_cursor(first, 0, None)}&limit=5",  # a superseded batch
        "/v1/scores?grade=A&grade=B&limit=5",
        "/v1/scores?grade=A&owner=ann",
        "/v1/scores?owner=bob",
        "/v1/scores?owner=nobody",
        "/v1/scores?grade=Z",
        # left to FastAPI: its own answers
        "/v1/scores?limit=0",
        "/v1/scores?limit=51",  # over api.max_page_size
        "/v1/scores?limit=100001",
        "/v1/scores?limit=007",
        "/v1/scores?limit=x",
        "/v1/scores?limit=2&limit=3",
        "/v1/scores?cursor=not-a-cursor",
        f"/v1/scores?cursor={encode_cursor('gone', 0, None)}",  # 410
        "/v1/scores?grade=",
        "/v1/scores?grade=" + "A" * 33,
        "/v1/scores?owner=ann&owner=bob",
        "/v1/scores?min_score=40",
        "/v1/scores?cell=call_now",
        "/v1/scores?q=a",
        "/v1/scores?unknown=1",
        "/v1/leads/a",
        "/v1/leads/a?history=1",
        "/v1/leads/a?history=6",  # over api.history_batches
        "/v1/leads/a?history=0",
        "/v1/leads/a?history=1&history=2",
        "/v1/leads/a?other=1",
        "/v1/leads/nope",  # 404
        "/v1/leads/" + "x" * 256,
        "/v1/leads/a/b",
        "/v1/leads/",
    ]


HEADERS = [
    {"Authorization": f"Bearer {TOKEN}"},
    {"Authorization": f"bearer {TOKEN}"},
    {"Authorization": f"Bearer  {TOKEN}"},
    {"Authorization": "Bearer wrong"},
    {},
]


@pytest.mark.parametrize("hot", [True, False])
@pytest.mark.parametrize("headers", HEADERS)
def test_the_fast_path_answers_as_the_routes(clients, headers, hot):
    fast, plain, batches, routed = clients
    fast = fast if hot else routed
    for url in cases(batches):
        got, want = fast.get(url, headers=headers), plain.get(url, headers=headers)
        assert got.status_code == want.status_code, url
        assert got.content == want.content, url
        assert got.headers == want.headers, url


def test_the_fast_path_is_taken(clients, monkeypatch):
    from leadscore.serving import routes

    _, _, _, fast = clients  # the routes' code (hot reads: the next test)
    taken = []
    real = routes.scores_page

    def spy(*args, **kwargs):
        taken.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(routes, "scores_page", spy)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert fast.get("/v1/scores?grade=A&owner=ann&limit=3", headers=auth).status_code == 200
    # once, by FastReads (its keywords; the FastAPI route passes them by position)
    assert taken == [{"grade": ["A"], "owner": "ann", "cursor": None, "limit": 3}]


def test_the_hot_reads_are_taken_in_the_event_loop(clients, monkeypatch):
    from leadscore.serving.hot_reads import HotPages

    fast, _, _, _ = clients
    taken = []
    real_page, real_lead = HotPages.page, HotPages.lead

    def page(self, *args, **kwargs):
        taken.append(("page", args[1:], kwargs))
        return real_page(self, *args, **kwargs)

    def lead(self, *args, **kwargs):
        taken.append(("lead", args[1:], kwargs))
        return real_lead(self, *args, **kwargs)

    monkeypatch.setattr(HotPages, "page", page)
    monkeypatch.setattr(HotPages, "lead", lead)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    fast.get("/v1/scores?owner=ann", headers=auth)  # builds the batch's page index first
    taken.clear()
    assert fast.get("/v1/scores?grade=A&owner=ann&limit=3", headers=auth).status_code == 200
    assert fast.get("/v1/leads/a?history=2", headers=auth).status_code == 200
    assert taken == [
        ("page", (["A"], "ann", None, 3), {"inline": True}),
        ("lead", ("a", 2), {"inline": True}),
    ]
