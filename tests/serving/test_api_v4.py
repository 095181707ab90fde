"""Schema 4 in the API: the new fields of a lead's row (JSON columns served parsed), and
the ``cell`` and ``q`` filters of ``GET /v1/scores``, documented in the OpenAPI."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from leadscore.models.schema import CELLS
from leadscore.serving.api import PAGE_TOKENS_ENV, TOKENS_ENV, ApiConfig, create_app
from leadscore.serving.store import ScoreStore, StoreConfig
from tests.serving.test_store import AS_OF, make_scores

TOKEN = "v4-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def client(tmp_path, monkeypatch):
    monkeypatch.delenv(TOKENS_ENV, raising=False)
    monkeypatch.delenv(PAGE_TOKENS_ENV, raising=False)
    store = ScoreStore(StoreConfig(url=f"sqlite:///{tmp_path}/s.db"))
    store.create()
    store.publish(make_scores(7), model_version="4", as_of=AS_OF)  # ranks 1..7 = rows 0..6
    app = create_app(store.config, ApiConfig(tokens=[TOKEN], page_size=50, max_page_size=50))
    with TestClient(app) as test_client:
        yield test_client
    store.close()


def _ids(client: TestClient, **params: object) -> list[str]:
    response = client.get("/v1/scores", headers=AUTH, params=params)
    assert response.status_code == 200, response.text
    return [item["lead_id"] for item in response.json()["items"]]


def test_a_row_serves_the_new_fields_with_json_parsed(client):
    items = client.get("/v1/scores", headers=AUTH).json()["items"]
    first = items[0]
    assert first["lead_id"] == "00042"
    assert (first["name"], first["company"], first["email"]) == (
        "Zoë Ångström 0",
        "Acme, Inc.",
        "zoe0@example.com",
    )
    assert (first["fit_score"], first["engagement_score"], first["cell"]) == (97, 100, "call_now")
    assert (first["rule_rank"], first["record_id"]) == (7, "00Q00000")
    assert first["rule_reasons"] == [{"text": "industry is fintech", "points": 27.0}]
    assert first["attributes"] == {"industry": "fintech", "size": 12}
    assert first["timeline"] == [
        {"type": "pricing-page view", "at": "2026-11-20T10:00:00Z", "value": None}
    ]
    assert (first["last_activity"], first["last_activity_at"]) == (
        "pricing-page view",
        "2026-11-20T10:00:00Z",
    )
    third = items[2]  # make_scores leaves row 2's sub-score, timeline and last activity null
    assert third["fit_score"] is None and third["timeline"] is None
    assert third["last_activity"] is None and third["engagement_score"] == 98

    lead = client.get("/v1/leads/00042", headers=AUTH).json()["current"]
    assert {k: lead[k] for k in first} == first  # the lead's page serves the same row
    assert type(lead["attributes"]["size"]) is int  # 12 stays 12, not 12.0


def test_scores_filter_by_cell(client):
    assert CELLS == ("call_now", "nurture", "educate", "deprioritise")
    assert _ids(client, cell="call_now") == ["00042", "L-00-0004"]
    assert _ids(client, cell=["educate", "call_now"]) == [
        "00042",
        "L-00-0002",
        "L-00-0004",
        "L-00-0006",
    ]
    bad = client.get("/v1/scores", headers=AUTH, params={"cell": "maybe"})
    assert bad.status_code == 422


def test_scores_search_lead_id_name_company_email_whatever_the_case(client):
    assert _ids(client, q="gmbh") == ["L-00-0001", "L-00-0003", "L-00-0005"]
    assert _ids(client, q="ÅNGSTRÖM 3") == ["L-00-0003"]  # beyond ASCII
    assert _ids(client, q="ZOE6@") == ["L-00-0006"]  # e-mail
    assert _ids(client, q="l-00-000") == [f"L-00-000{i}" for i in range(1, 7)]  # lead_id
    assert _ids(client, q="0004") == ["00042", "L-00-0004"]
    assert _ids(client, q="100%") == []  # % is text, not a wildcard
    assert _ids(client, q="gmbh", cell="deprioritise") == ["L-00-0003"]  # filters AND
    assert client.get("/v1/scores", headers=AUTH, params={"q": ""}).status_code == 422


def test_the_openapi_documents_the_filters_and_the_json_fields(client):
    spec = client.get("/openapi.json", headers=AUTH).json()
    params = {p["name"]: p for p in spec["paths"]["/v1/scores"]["get"]["parameters"]}
    assert "repeat" in params["cell"]["description"]
    assert "name, company or email" in params["q"]["description"]
    cell_schema = json.dumps(params["cell"]["schema"])
    assert all(c in cell_schema for c in CELLS)
    item = spec["components"]["schemas"]["ScoreItem"]["properties"]
    assert "RuleReason" in json.dumps(item["rule_reasons"])
    assert "TimelineEvent" in json.dumps(item["timeline"])
    assert "object" in json.dumps(item["attributes"])
