"""The page's tab ``/ui/monitor`` "How did past grades do" (serving/page/monitor.py):
logged in with a page token, over a real SQLite store filled through ``save_monitor``."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from leadscore.serving.api import ApiConfig, create_app
from leadscore.serving.page import PAGE_CSP
from leadscore.serving.page.monitor import first_of_month
from leadscore.serving.store import ScoreStore, StoreConfig
from tests.models.monitor_sample import sample_result


@pytest.fixture
def store(tmp_path):
    store = ScoreStore(StoreConfig(url=f"sqlite:///{tmp_path}/scores.db"))
    store.create()
    yield store
    store.close()


@pytest.fixture
def client(store):
    app = create_app(store.config, ApiConfig(tokens=["t"], page_tokens=["rep"]), store=store)
    with TestClient(app) as c:
        ok = c.post("/ui/login", data={"token": "rep", "next": "/ui"}, follow_redirects=False)
        assert ok.status_code == 303
        yield c


def page(client) -> str:
    response = client.get("/ui/monitor")
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-security-policy"] == PAGE_CSP
    assert "<script" not in response.text and "style=" not in response.text
    return response.text


def cells(html: str, month: str, grade: str) -> list[str]:
    row = re.search(
        rf'<tr class="grade-row" data-month="{month}" data-grade="{grade}">(.*?)</tr>',
        html,
        flags=re.DOTALL,
    )
    assert row, f"no row {month} {grade}"
    return re.findall(r'<td class="num"[^>]*>([^<]*)</td>', row.group(1))


def test_a_stranger_is_sent_to_log_in(store):
    app = create_app(store.config, ApiConfig(tokens=["t"], page_tokens=["rep"]), store=store)
    with TestClient(app) as c:
        response = c.get("/ui/monitor", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/login?next=%2Fui%2Fmonitor"


def test_before_the_first_run_the_tab_says_so(client):
    html = page(client)
    assert 'id="never-ran"' in html and "The monitor has not run yet" in html
    assert 'id="months"' not in html


def test_the_nav_links_the_tab_from_the_list(client):
    assert (
        '<a href="/ui/monitor" id="nav-monitor">How did past grades do</a>'
        in client.get("/ui").text
    )


def test_each_month_read_from_its_first_batch_model_beside_rules(client, store):
    store.save_monitor(sample_result(), mlflow_run_id=None)
    html = page(client)
    # newest month first; January is batch b1 (2026-01-05), never b2 (2026-01-20)
    assert re.findall(r'<tr class="month" id="month-([0-9-]+)"', html) == [
        "2026-03", "2026-02", "2026-01",
    ]  # fmt: skip
    assert "batch b1, scored 2026-01-05, 30 of 30 days watched" in html
    assert "batch b2" not in html
    # model: leads, converted, rate | rules: leads, converted, rate
    assert cells(html, "2026-01", "A") == ["100", "30", "30.0%", "100", "20", "20.0%"]
    assert cells(html, "2026-01", "C") == ["580", "6", "1.0%", "580", "15", "2.6%"]
    assert cells(html, "2026-02", "B") == ["310", "25", "8.1%", "310", "26", "8.4%"]
    assert cells(html, "2026-03", "A") == ["100", "9", "9.0%", "100", "6", "6.0%"]
    march = re.search(r'<tr class="month" id="month-2026-03".*?</tr>', html, flags=re.DOTALL)
    assert march and 'data-mature="no"' in march.group(0)
    assert "still maturing (12 of 30 days)" in march.group(0)
    assert "12 of 30 days watched" in march.group(0)
    january = re.search(r'<tr class="month" id="month-2026-01".*?</tr>', html, flags=re.DOTALL)
    assert (
        january and 'data-mature="yes"' in january.group(0) and "maturing" not in january.group(0)
    )


def test_the_latest_decision_and_a_link_to_the_newest_drift(client, store):
    store.save_monitor(sample_result("none", ran="2026-03-19 03:00"), mlflow_run_id=None)
    assert "No action needed." in page(client)
    store.save_monitor(sample_result("retrain"), mlflow_run_id=None)
    html = page(client)
    decision = re.search(r'<p id="decision"[^>]*>(.*?)</p>', html, flags=re.DOTALL)
    assert decision and "Retrain the model." in decision.group(1)
    assert "retrain: PSI of lead_source 0.31 &gt; 0.2" in decision.group(1)
    assert (
        '<a href="#drift" id="drift-link">What moved in the newest batch (2026-03-08)</a>' in html
    )
    drift = re.findall(r'<tr class="drift-row" data-feature="([^"]+)"', html)
    assert drift == ["lead_source", "employees", "the score itself", "pricing_views"]
    assert "lead_source=partner 2.0% -&gt; 21.3%" in html


def test_first_of_month_keeps_the_earliest_batch_of_each_month():
    batches = pd.DataFrame(
        {
            "batch_id": ["c", "a", "b", "d"],
            "as_of": ["2026-02-01T00:00:00Z", "2026-01-31T23:00:00Z", "2026-01-02T00:00:00Z",
                      "2026-02-15T00:00:00Z"],
        }
    )  # fmt: skip
    first = first_of_month(batches)
    assert list(first["batch_id"]) == ["c", "b"] and list(first["month"]) == ["2026-02", "2026-01"]
    assert first_of_month(batches.iloc[:0]).empty
