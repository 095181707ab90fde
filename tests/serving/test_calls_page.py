"""The page's Calls tab (serving/page/calls.py): the team with today's counts, a rep's
list with reasons, the unassigned leads, a rep's CSV; opened by a page token, over a real
SQLite store whose ``calls`` rows are inserted for its published batch."""

from __future__ import annotations

import csv
import html
import io
import re

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape

from leadscore.serving.page import PAGE_CSP
from leadscore.serving.page.calls import CSV_COLUMNS
from tests.serving.test_calls_api import (
    AUTH,
    PAGE_TOKEN,
    client_for,
    publish_with_calls,
    store,
)
from tests.serving.test_store import make_scores

__all__ = ["store"]

FORMULA_NAME = '=HYPERLINK("http://evil.example","x")'


@pytest.fixture
def published(store):
    frame = make_scores(7)
    frame.loc[frame["lead_id"] == "L-00-0002", "name"] = FORMULA_NAME
    return publish_with_calls(store, frame=frame)


@pytest.fixture
def client(store, published, monkeypatch):
    c = client_for(store, monkeypatch)
    ok = c.post("/ui/login", data={"token": PAGE_TOKEN, "next": "/ui"}, follow_redirects=False)
    assert ok.status_code == 303
    return c


def page(client: TestClient, path: str, status: int = 200) -> str:
    response = client.get(path)
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-security-policy"] == PAGE_CSP
    assert "<script" not in response.text and "style=" not in response.text
    return response.text


def rows(text: str, table: str) -> list[str]:
    body = re.search(rf'<table id="{table}".*?<tbody>(.*?)</tbody>', text, flags=re.DOTALL)
    assert body, f"no table {table}"
    return re.findall(r"<tr[^>]*>(.*?)</tr>", body.group(1), flags=re.DOTALL)


def words(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def test_a_stranger_is_sent_to_log_in(store, published, monkeypatch):
    c = client_for(store, monkeypatch)
    for path in ("/ui/calls", "/ui/calls/alice", "/ui/calls/alice.csv", "/ui/calls/unassigned"):
        response = c.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/ui/login?next=%2Fui%2Fcalls")


def test_the_team_with_todays_counts(client, published):
    text = page(client, "/ui/calls")
    assert '<a href="/ui/calls" id="nav-calls">Calls</a>' in text
    assert published.batch_id in text
    assert "5 calls on the lists of 3 reps" in text
    assert '<a href="/ui/calls/unassigned" id="unassigned-link">2 leads no rep could take' in text
    team = rows(text, "reps")
    assert [words(r) for r in team] == [
        "Alice Moreau alice 3 3 2.24 US, GB any senior",
        "Bashir Okafor bashir 2 2 1.20 any enterprise mid",
        "chen 0 1 0.00 any any mid",
    ]
    assert '<a href="/ui/calls/alice" class="lead-name">Alice Moreau</a>' in team[0]


def test_a_reps_list_with_reasons_and_next_steps(client, published):
    text = page(client, "/ui/calls/alice")
    assert "<h1>Calls for Alice Moreau</h1>" in text and published.batch_id in text
    assert "3 of 3 calls, expected 2.24" in text
    assert '<a href="/ui/calls/alice.csv" id="download">' in text
    calls = rows(text, "calls")
    leads = re.findall(r'<tr class="call" data-lead="([^"]+)" data-position="(\d)">', text)
    assert leads == [("00042", "1"), ("L-00-0002", "2"), ("L-00-0003", "3")]
    first = words(calls[0])
    assert first.startswith("1 Zoë Ångström 0 00042 Acme, Inc. 93 A")
    assert '+ Visited the pricing page 7 times, "recently"' in first
    assert "- No high-intent activity in 45 days" in first
    assert first.endswith("owner: Alice Moreau")
    assert '<a href="/ui/leads/00042" class="lead-name">Zoë Ångström 0</a>' in calls[0]
    assert words(calls[2]).endswith("territory US webinar attended")  # the next step
    assert str(escape(FORMULA_NAME)) in calls[1]  # escaped, never markup


def test_an_unknown_rep_is_a_404_page_and_a_rep_without_calls_says_so(client):
    text = page(client, "/ui/calls/zed", 404)
    assert "No rep &#39;zed&#39; in the team (routing.reps)." in text
    assert client.get("/ui/calls/zed.csv").status_code == 404
    empty = page(client, "/ui/calls/chen")
    assert '<p id="no-call' in empty and "No call for chen today." in empty
    assert 'id="download"' not in empty


def test_the_unassigned_leads_with_why_nobody(client):
    text = page(client, "/ui/calls/unassigned")
    assert "2 leads, best first" in text
    found = [words(r) for r in rows(text, "unassigned")]
    assert found[0].startswith("5 Zoë Ångström 4 L-00-0004 Acme, Inc. 49 C")
    assert found[0].endswith("no territory match (BR) rep0@example.com")
    assert found[1].startswith("7 Zoë Ångström 6 L-00-0006") and "all capacity used" in found[1]
    after = page(client, "/ui/calls/unassigned?after=5")
    assert [words(r).split()[0] for r in rows(after, "unassigned")] == ["7"]
    assert "No more leads." in page(client, "/ui/calls/unassigned?after=7")


def test_a_reps_list_as_spreadsheet_safe_csv(client, published):
    response = client.get("/ui/calls/bashir.csv")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == (
        f'attachment; filename="calls-bashir-{published.batch_id}.csv"'
    )
    table = list(csv.DictReader(io.StringIO(response.text)))
    assert list(table[0]) == [*CSV_COLUMNS, "batch_id", "scored_at"]
    assert [(r["position"], r["lead_id"], r["score"], r["grade"]) for r in table] == [
        ("1", "L-00-0001", "82", "A"),
        ("2", "L-00-0005", "38", "C"),
    ]
    assert table[1]["assignment"] == "'+1 skill match; '=formula-looking reason"
    assert table[0]["reasons"] == (
        'Visited the pricing page 6 times, "recently" (+); No high-intent activity in 45 days (-)'
    )
    assert table[0]["next_step"] == "webinar attended"
    assert float(table[0]["expected"]) == 0.82 and table[0]["rep_id"] == "bashir"
    assert table[0]["batch_id"] == published.batch_id
    assert table[0]["scored_at"] == "2026-11-22T03:15:00+00:00"
    alice = list(csv.DictReader(io.StringIO(client.get("/ui/calls/alice.csv").text)))
    assert alice[1]["name"] == "'" + FORMULA_NAME  # a formula is never run
    assert alice[0]["next_step"] == "" and alice[0]["name"] == "Zoë Ångström 0"
    assert client.get("/ui/calls/alice.csv", headers=AUTH).status_code == 200
