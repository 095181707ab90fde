"""The sales-ops page's views, server side (serving/page/): search, sorts, paging, counts
per grade, filters, the CSV download, the change feed, model vs rules, the quadrant and
the lead page, over two small batches (tests/serving/page_data.py)."""

from __future__ import annotations

import csv
import io
import json
import re
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from leadscore.serving.api import ApiConfig, create_app
from leadscore.serving.export import EXPORT_COLUMNS
from leadscore.serving.page import PAGE_CSP
from leadscore.serving.page.filters import ListQuery, parse_attr
from leadscore.serving.store import ScoreStore, StoreConfig
from tests.serving import page_data
from tests.serving.page_data import LONG_REASON, N, current_rows
from tests.serving.test_store import BACKENDS, backend_url

AUTH = {"Authorization": "Bearer t"}


@pytest.fixture(scope="module", params=BACKENDS)
def client(request, tmp_path_factory):
    """The page over the two batches, on SQLite and on PostgreSQL (the same SQL: LIKE
    escapes, integer tenths, NULLS LAST)."""
    with backend_url(request.param, tmp_path_factory.mktemp("page")) as url:
        store = ScoreStore(StoreConfig(url=url))
        page_data.publish_both(store)
        with TestClient(
            create_app(
                store.config,
                ApiConfig(tokens=["t"], page_tokens=["rep"], max_page_size=60),
                store=store,
            )
        ) as c:
            yield c
        store.close()


def leads(html: str) -> list[str]:
    return re.findall(r'<tr class="lead" data-lead="([^"]+)"', html)


def get(client, url: str) -> str:
    response = client.get(url, headers=AUTH)
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-security-policy"] == PAGE_CSP
    assert "<script" not in response.text and "style=" not in response.text
    return response.text


def test_list_query_round_trips_through_its_links():
    query = ListQuery.parse(
        q=" acme ", grade=["A", "B", "A", ""], owner="bob", cell=["call_now", "nope"],
        attr=["industry=fintech", "junk"], attr_key="employees", attr_value="20",
        sort="fit", order="asc", page=3,
    )  # fmt: skip
    assert query.q == "acme" and query.grades == ("A", "B") and query.cells == ("call_now",)
    assert query.attrs == (("industry", "fintech"), ("employees", "20"))
    assert query.offset == 200 and not query.descending
    url = query.url(page=3)
    assert url == (
        "/ui?q=acme&grade=A&grade=B&owner=bob&cell=call_now&attr=industry%3Dfintech"
        "&attr=employees%3D20&sort=fit&order=asc&page=3"
    )
    assert "page=" not in query.url()  # a changed filter starts again at page 1
    assert query.sort_url("fit").endswith("sort=fit")  # ascending -> best first again
    assert "order=asc" in ListQuery.parse(sort="fit").sort_url("fit")
    assert "industry" not in query.without_attr(("industry", "fintech"))
    assert parse_attr("a=b=c") == ("a", "b=c") and parse_attr("=x") is None
    assert ListQuery.parse(sort="drop table").sort == "score"


def test_search_paging_totals_and_previous_next(client):
    first = get(client, "/ui")
    assert leads(first) == [f"L{i:03d}" for i in range(1, 101)]
    assert "Leads 1-100 of <strong>250</strong>" in first
    assert 'id="next"' in first and 'id="prev"' not in first
    last = get(client, "/ui?page=3")
    assert leads(last) == [f"L{i:03d}" for i in range(201, 251)]
    assert "Leads 201-250 of <strong>250</strong>" in last
    assert 'id="prev"' in last and 'id="next"' not in last
    assert 'href="/ui?page=2" id="prev"' in last
    found = get(client, "/ui?q=l12")  # case-insensitive, on the lead id (and name, ...)
    assert leads(found) == [f"L{i}" for i in range(120, 130)]
    assert "of <strong>10</strong> matching" in found
    assert 'id="empty"' in get(client, "/ui?q=L%251")  # "L%1": a literal %, not a wildcard


def test_sorts_and_counts_per_grade_over_the_filter(client):
    rows = current_rows()
    by_rules = sorted(rows, key=lambda r: (-r["rule_score"], r["rank"]))
    assert leads(get(client, "/ui?sort=rules"))[:5] == [r["lead_id"] for r in by_rules[:5]]
    assert leads(get(client, "/ui?sort=rules&order=asc"))[0] == by_rules[-1]["lead_id"]
    assert leads(get(client, "/ui?order=asc"))[0] == "L250"
    page = get(client, "/ui?owner=ann&grade=A")
    anns = [r for r in rows if r["owner"] == "ann"]
    assert leads(page) == [r["lead_id"] for r in anns if r["grade"] == "A"]
    for grade in "ABCD":  # the counts ignore the grade filter itself
        n = sum(r["grade"] == grade for r in anns)
        assert f'id="count-{grade}"> {n:,}</span>' in page


def test_download_is_the_filtered_view_with_spreadsheet_safe_cells(client):
    response = client.get("/ui/download.csv?owner=bob", headers=AUTH)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert "-filtered.csv" in response.headers["content-disposition"]
    table = list(csv.reader(io.StringIO(response.text)))
    assert table[0] == EXPORT_COLUMNS
    owner = EXPORT_COLUMNS.index("owner")
    bobs = [r["lead_id"] for r in current_rows() if r["owner"] == "bob"]
    assert [row[0] for row in table[1:]] == bobs and {row[owner] for row in table[1:]} == {"bob"}
    one = list(csv.reader(io.StringIO(client.get("/ui/download.csv?q=L011", headers=AUTH).text)))
    assert one[1][EXPORT_COLUMNS.index("segment")] == "'@SUM(1)"  # not run as a formula
    none = client.get("/ui/download.csv?q=nothing-matches", headers=AUTH).text
    assert list(csv.reader(io.StringIO(none))) == [EXPORT_COLUMNS]
    assert client.get("/ui/download.csv", follow_redirects=False).status_code == 303
    # a page token downloads at most api.max_page_size rows (no bulk export), an API token all
    rep = {"Authorization": "Bearer rep"}
    capped = client.get("/ui/download.csv", headers=rep).text
    assert len(list(csv.reader(io.StringIO(capped)))) == 1 + 60
    assert "Download CSV (first 60)" in client.get("/ui", headers=rep).text
    assert client.get("/ui/download.csv", headers=AUTH).text.count("\n") == 1 + N
    assert "Download CSV</a>" in get(client, "/ui")


def test_changes_since_the_last_batch(client):
    listing = get(client, "/ui")
    assert "5 grade up</a>" in listing and "10 new</a>" in listing and "1 left</a>" in listing
    page = get(client, "/ui/changes")
    found = re.findall(r'data-lead="([^"]+)" data-kind="([^"]+)"', page)
    kinds = dict(found)
    order = [kind for _, kind in found]
    assert order == sorted(order, key=["up", "down", "appeared", "left"].index)  # ups first
    assert {k for k, v in kinds.items() if v == "up"} == {f"L00{i}" for i in range(1, 6)}
    assert {k for k, v in kinds.items() if v == "down"} == {f"L{i}" for i in range(201, 206)}
    assert {k for k, v in kinds.items() if v == "appeared"} == {f"L{i}" for i in range(241, 251)}
    left = get(client, "/ui/changes?kind=left")
    assert re.findall(r'data-kind="([^"]+)"', left) == ["left"] and "L900" in left
    assert "C → A" in get(client, "/ui/changes?kind=up")
    bobs = get(client, "/ui/changes?kind=up&kind=appeared&owner=bob")
    expected = [f"L{i:03d}" for i in (*range(1, 6), *range(241, 251)) if i % 3 == 1]
    assert sorted(re.findall(r'data-lead="([^"]+)" data-kind', bobs)) == expected


def test_search_filters_on_names_cells_and_attributes(client):
    assert leads(get(client, "/ui?q=ACME_")) == ["L007"]  # _ is a literal, not a wildcard
    assert leads(get(client, "/ui?q=p12%40co"))[0] == "L012"  # the e-mail
    rows = current_rows()
    fin = get(client, "/ui?attr=industry%3D50%25off")
    assert leads(fin)[:3] == [r["lead_id"] for r in rows if r["attributes"].count("50%off")][:3]
    hundred = get(client, "/ui?attr_key=employees&attr_value=10")
    assert (
        leads(hundred)
        == [r["lead_id"] for r in rows if json.loads(r["attributes"])["employees"] == 10][:100]
    )
    assert "L009" not in leads(hundred)  # 100 is not 10
    cell = get(client, "/ui?cell=call_now")
    assert set(leads(cell)) == {r["lead_id"] for r in rows if r["cell"] == "call_now"}


def test_quadrant_counts_the_current_filter(client):
    page = get(client, "/ui?owner=cy")
    rows = [r for r in current_rows() if r["owner"] == "cy"]
    bins = [int(n) for n in re.findall(r'class="bin" data-n="(\d+)"', page)]
    assert sum(bins) == len(rows)
    for cell, label in (("call_now", "call now"), ("educate", "educate")):
        n = sum(r["cell"] == cell for r in rows)
        assert f">{label} {n:,}</text>" in page
    # the dashed cut-offs where the batch's cells change: its lowest high fit / engagement
    every = current_rows()
    fit_cut = min(r["fit_score"] for r in every if r["cell"] in ("call_now", "nurture"))
    eng_cut = min(r["engagement_score"] for r in every if r["cell"] in ("call_now", "educate"))
    x_cut, y_cut = 30 + eng_cut / 100 * 260, 8 + (1 - fit_cut / 100) * 260
    assert f'<line class="cut" x1="{x_cut:.1f}"' in page and f'y1="{y_cut:.1f}"' in page
    link = re.search(r'<a href="([^"]+)" id="cell-call_now">', page).group(1)
    assert "owner=cy" in link and "cell=call_now" in link


def test_model_vs_rules_lists_the_biggest_disagreements_first(client):
    page = get(client, "/ui/compare")
    rows = page_data.frame(current_rows())
    gap = (rows["rank"] - rows["rule_rank"]).abs()
    shown = leads(page)
    assert shown[0] == rows.loc[gap.idxmax(), "lead_id"]
    gaps = [int(gap[rows["lead_id"] == lead].iloc[0]) for lead in shown]
    assert gaps == sorted(gaps, reverse=True)
    assert "industry is fintech" in page and "unsubscribed from email" in page
    model_side = leads(get(client, "/ui/compare?side=model"))
    assert all(
        (rows.set_index("lead_id").loc[x, "rank"] < rows.set_index("lead_id").loc[x, "rule_rank"])
        for x in model_side
    )
    assert 'id="crosstab"' in page


def test_lead_page_shows_attributes_timeline_subscores_and_both_explanations(client):
    page = get(client, "/ui/leads/L012")
    row = current_rows()[11]
    assert "Person 12" in page and "p12@co.example" in page and "CRM-12" in page
    assert LONG_REASON in page  # the full label, never cut
    assert page.count('class="bar"') == 3 + 2  # the model's 3 reasons, the rules' 2
    assert 'id="rule-reasons"' in page and "industry is fintech" in page
    assert f"<strong>{row['fit_score']}</strong>/100" in page
    assert 'id="lead-point"' in page and f'id="cell">{row["cell"].replace("_", " ")}<' in page
    assert re.search(r"pricing-page view \(3\)", page) and "3 days ago" in page
    assert f'href="/ui?attr={quote("industry=" + page_data.INDUSTRIES[12 % 3])}"' in page
    assert [len(re.findall("<li", page.split('id="timeline"')[1].split("</ol>")[0]))] == [2]


def test_batch_cache_answers_once_per_batch_and_forgets_old_batches():
    from leadscore.serving.page.cache import BatchCache

    calls: list[str] = []
    cache = BatchCache(size=2)

    def answer(value: str):
        return lambda: calls.append(value) or value

    assert cache.get("b1", "k1", answer("x")) == "x"
    assert cache.get("b1", "k1", answer("y")) == "x"  # served from memory
    cache.get("b1", "k2", answer("z"))
    cache.get("b1", "k3", answer("w"))  # over size: k1, the least recently used, goes
    assert cache.get("b1", "k1", answer("v")) == "v"
    assert cache.get("b2", "k3", answer("u")) == "u"  # a new batch: nothing is kept
    assert calls == ["x", "z", "w", "v", "u"]


def test_counts_of_a_grade_and_cell_filter_each_ignore_their_own_filter(client):
    page = get(client, "/ui?grade=A&grade=B&cell=call_now")
    rows = current_rows()
    both = [r for r in rows if r["grade"] in "AB" and r["cell"] == "call_now"]
    assert len(leads(page)) == len(both) and f"of <strong>{len(both)}</strong>" in page
    for grade in "ABCD":  # per grade among the call-now leads
        n = sum(r["grade"] == grade and r["cell"] == "call_now" for r in rows)
        assert f'id="count-{grade}"> {n:,}</span>' in page
    n_nurture = sum(r["grade"] in "AB" and r["cell"] == "nurture" for r in rows)
    assert f">nurture {n_nurture:,}</text>" in page  # per cell among grades A and B


def test_reasons_v2_draw_by_concept_with_their_share(tmp_path):
    store = ScoreStore(StoreConfig(url=f"sqlite:///{tmp_path}/s.db"))
    store.create()
    row = page_data.lead(1)
    row["reasons"] = json.dumps(
        [
            {"concept": "pricing", "text": "viewed the pricing page 3 times", "direction": "+",
             "contribution": 0.9, "share": 0.6, "features": {"pricing_views_7d": 0.9}},
            {"concept": "email", "text": "unsubscribed from email", "direction": "-",
             "contribution": -0.6, "share": 0.4, "features": {"unsubscribed": -0.6}},
        ]
    )  # fmt: skip
    store.publish(page_data.frame([row]), model_version="9", as_of=page_data.AS_OF)
    client = TestClient(create_app(store.config, ApiConfig(tokens=["t"]), store=store))
    page = get(client, "/ui/leads/L001")
    assert 'data-feature="pricing"' in page and 'data-feature="email"' in page
    assert "+0.90 log-odds, 60% of the weight" in page
    assert "viewed the pricing page 3 times" in get(client, "/ui")
    api = client.get("/v1/leads/L001", headers=AUTH).json()["current"]["reasons"]
    assert [(r["concept"], r["direction"]) for r in api] == [("pricing", "+"), ("email", "-")]
    assert api[0]["share"] == 0.6 and api[1]["features"] == {"unsubscribed": -0.6}
    store.close()
