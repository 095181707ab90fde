"""The HTTP API (serving/api.py) and the page's server side (serving/page.py), in-process.

Stores are real SQLite files (the store itself is tested on PostgreSQL too, in
test_store.py). On-demand scoring uses a small model fitted here on a synthetic CRM and is
checked against the batch path (``build_features`` + ``score_frame``) for the same lead.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from leadscore.models.schema import SCORE_COLUMNS
from leadscore.serving.api import (
    PAGE_TOKENS_ENV,
    TOKENS_ENV,
    ApiConfig,
    OnDemandScorer,
    create_app,
    decode_cursor,
    encode_cursor,
)
from leadscore.serving.hot_reads import HotPages
from leadscore.serving.store import SCHEMA_VERSION, ScoreStore, StoreConfig
from tests.serving.test_store import AS_OF, _frame

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


# ------------------------------------------------------------------- shared fixtures


@pytest.fixture(scope="session")
def fitted_scorer():
    """(OnDemandScorer, crm, batch scores frame as of ``end``, end): fitted once."""
    from leadscore.models import training
    from leadscore.models.scoring import score_frame
    from tests.conftest import train_small_model

    m = train_small_model(1500, seed=5)
    settings, model, crm, end, X_open = m.settings, m.model, m.crm, m.end, m.X_open
    leads = crm.leads
    points = settings.features.activity_points()
    rules = training.fit_rules(X_open, None, settings.rules, points)
    batch = score_frame(X_open, model, rules, m.registry, settings.scoring, leads)
    scorer = OnDemandScorer(
        features=settings.features,
        rules=settings.rules,
        scoring=settings.scoring,
        model_loader=lambda: (model, "3"),
    )
    return scorer, crm, batch, end


def two_batches(url: str) -> tuple[ScoreStore, list]:
    store = ScoreStore(StoreConfig(url=url))
    store.create()
    first = store.publish(
        _frame([("a", 30, "B", "ann"), ("b", 50, "A", "bob"), ("c", 10, "C", "ann")]),
        model_version="7",
        as_of=AS_OF,
    )
    second = store.publish(
        _frame(
            [
                ("a", 45, "A", "ann"),
                ("b", 50, "A", "bob"),
                ("d", 5, "D", None),
                ("e", 22, "B", "ann"),
            ]
        ),
        model_version="8",
        as_of=AS_OF + timedelta(days=1),
    )
    return store, [first, second]


@pytest.fixture
def api(tmp_path, monkeypatch):
    monkeypatch.delenv(TOKENS_ENV, raising=False)
    monkeypatch.delenv(PAGE_TOKENS_ENV, raising=False)
    store, batches = two_batches(f"sqlite:///{tmp_path}/s.db")
    app = create_app(store.config, ApiConfig(tokens=[TOKEN], page_size=2, max_page_size=50))
    with TestClient(app) as client:
        yield client, store, batches
    store.close()


# ------------------------------------------------------------------------------ auth


def test_only_healthz_answers_without_a_token(api):
    client, _, (_, second) = api
    health = client.get("/healthz")
    assert health.status_code == 200
    assert health.json() == {
        "status": "ok",
        "current_batch": second.batch_id,
        "schema_version": SCHEMA_VERSION,
    }
    for path in ("/v1/scores", "/v1/leads/a", "/v1/changes", "/openapi.json", "/docs"):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic xx"}):
            response = client.get(path, headers=headers)
            assert response.status_code == 401, (path, headers)
            assert response.headers["www-authenticate"] == "Bearer"
    assert client.post("/v1/score", json={}).status_code == 401
    assert client.get("/openapi.json", headers=AUTH).status_code == 200
    assert "swagger" in client.get("/docs", headers=AUTH).text.lower()


def test_tokens_from_the_environment(tmp_path, monkeypatch):
    store, _ = two_batches(f"sqlite:///{tmp_path}/s.db")
    monkeypatch.setenv(TOKENS_ENV, " env-one , env-two,")
    client = TestClient(create_app(store.config, ApiConfig()))
    assert client.get("/v1/scores", headers={"Authorization": "Bearer env-two"}).status_code == 200
    assert client.get("/v1/scores", headers={"Authorization": "Bearer "}).status_code == 401
    monkeypatch.delenv(TOKENS_ENV)
    closed = TestClient(create_app(store.config, ApiConfig()))  # no token at all: fail closed
    assert closed.get("/v1/scores", headers={"Authorization": "Bearer env-two"}).status_code == 401
    store.close()


# ---------------------------------------------------------------------------- scores


def test_scores_paginate_by_cursor_over_one_pinned_batch(api, tmp_path):
    client, store, (_, second) = api
    page = client.get("/v1/scores", headers=AUTH).json()
    assert page["batch_id"] == second.batch_id and page["model_version"] == "8"
    assert [i["lead_id"] for i in page["items"]] == ["b", "a"]  # page_size 2, best first
    assert page["items"][0]["reasons"] == []
    assert page["items"][1] | {"reasons": None} == {
        "lead_id": "a", "owner": "ann", "segment": None, "probability": 0.45, "score": 45,
        "grade": "A", "rank": 2, "percentile": 50.0, "fit": 0.0, "engagement": 0.0,
        "rule_score": 10.0, "rule_grade": "C", "reasons": None,
        **dict.fromkeys(SCORE_COLUMNS[13:]),  # schema 4's columns, null in _frame's rows
    }  # fmt: skip

    # a new batch lands mid-sync: the cursor keeps reading the batch the sync started on
    store.publish(_frame([("z", 99, "A", None)]), model_version="9", as_of=AS_OF)
    nxt = client.get("/v1/scores", headers=AUTH, params={"cursor": page["next_cursor"]}).json()
    assert nxt["batch_id"] == second.batch_id
    assert [i["lead_id"] for i in nxt["items"]] == ["e", "d"]
    assert nxt["next_cursor"] is None
    fresh = client.get("/v1/scores", headers=AUTH).json()
    assert [i["lead_id"] for i in fresh["items"]] == ["z"] and fresh["next_cursor"] is None


def test_scores_filters(api):
    client, _, _ = api

    def ids(**params):
        response = client.get("/v1/scores", headers=AUTH, params={"limit": 50, **params})
        assert response.status_code == 200, response.text
        return [i["lead_id"] for i in response.json()["items"]]

    assert ids(grade=["A"]) == ["b", "a"]
    assert ids(grade=["A", "D"], owner="ann") == ["a"]
    assert ids(min_score=22) == ["b", "a", "e"]
    assert ids(owner="nobody") == []


def test_updated_since_returns_what_changed_after_that_instant(api):
    client, _, (first, second) = api

    def ids(when):
        params = {"updated_since": when.isoformat(), "limit": 50}
        return [
            i["lead_id"]
            for i in client.get("/v1/scores", headers=AUTH, params=params).json()["items"]
        ]

    # the first batch was current then: b is unchanged (50, A), a moved, d and e are new
    assert ids(first.published_at + timedelta(microseconds=1)) == ["a", "e", "d"]
    assert ids(second.published_at) == []  # nothing changed since the current batch
    assert ids(first.published_at - timedelta(days=1)) == ["b", "a", "e", "d"]  # too old: all
    # pagination keeps the baseline
    page = client.get(
        "/v1/scores", headers=AUTH,
        params={"updated_since": first.published_at.isoformat(), "limit": 1},
    ).json()  # fmt: skip
    assert [i["lead_id"] for i in page["items"]] == ["a"]
    params = {"cursor": page["next_cursor"], "limit": 1}
    nxt = client.get("/v1/scores", headers=AUTH, params=params).json()
    assert [i["lead_id"] for i in nxt["items"]] == ["e"]


@pytest.mark.parametrize(
    ("params", "status", "needle"),
    [
        ({"cursor": "not-a-cursor"}, 400, "invalid cursor"),
        ({"cursor": encode_cursor("gone-batch", 3, None)}, 410, "restart the sync"),
        ({"limit": 0}, 422, "limit"),
        ({"limit": 51}, 422, "limit must be <= 50"),
        ({"min_score": 101}, 422, "min_score"),
        ({"updated_since": "yesterday"}, 422, "updated_since"),
    ],
)
def test_bad_scores_queries_are_clear_4xx(api, params, status, needle):
    client, _, _ = api
    response = client.get("/v1/scores", headers=AUTH, params=params)
    assert response.status_code == status
    assert needle in json.dumps(response.json())


def test_cursor_round_trip():
    assert decode_cursor(encode_cursor("b-1", 7, "b-0")) == ("b-1", 7, "b-0")
    assert decode_cursor(encode_cursor("b-1", 0, None)) == ("b-1", 0, None)


def test_no_batch_yet_is_404(tmp_path):
    store = ScoreStore(StoreConfig(url=f"sqlite:///{tmp_path}/e.db"))
    client = TestClient(create_app(store.config, ApiConfig(tokens=[TOKEN])))
    response = client.get("/v1/scores", headers=AUTH)
    assert response.status_code == 404 and "no scoring batch" in response.json()["detail"]
    assert client.get("/healthz").json()["current_batch"] is None


# ------------------------------------------------------------------- leads, changes


def test_lead_detail_and_history(api):
    client, _, (first, second) = api
    lead = client.get("/v1/leads/a", headers=AUTH).json()
    assert lead["current"]["score"] == 45 and lead["current"]["grade"] == "A"
    assert lead["batch_id"] == second.batch_id
    assert [(h["batch_id"], h["score"], h["grade"]) for h in lead["history"]] == [
        (second.batch_id, 45, "A"),
        (first.batch_id, 30, "B"),
    ]
    one = client.get("/v1/leads/a", headers=AUTH, params={"history": 1}).json()
    assert len(one["history"]) == 1
    gone = client.get("/v1/leads/c", headers=AUTH).json()  # left the open set
    assert gone["current"] is None and gone["history"][0]["batch_id"] == first.batch_id
    assert client.get("/v1/leads/nope", headers=AUTH).status_code == 404


def test_changes_feed(api):
    client, _, (first, second) = api
    feed = client.get("/v1/changes", headers=AUTH, params={"since": first.batch_id}).json()
    assert feed["since"] == first.batch_id and feed["latest_batch_id"] == second.batch_id
    [batch] = feed["batches"]
    assert batch["batch_id"] == second.batch_id
    assert batch["previous_batch_id"] == first.batch_id
    assert {c["lead_id"]: c["kind"] for c in batch["changes"]} == {
        "a": "up", "c": "left", "d": "appeared", "e": "appeared"
    }  # fmt: skip
    up = client.get("/v1/changes", headers=AUTH, params={"since": first.batch_id, "kind": "up"})
    assert [c["lead_id"] for c in up.json()["batches"][0]["changes"]] == ["a"]
    everything = client.get("/v1/changes", headers=AUTH).json()
    assert [b["batch_id"] for b in everything["batches"]] == [first.batch_id, second.batch_id]
    assert client.get(
        "/v1/changes", headers=AUTH, params={"since": second.batch_id}
    ).json()["batches"] == []  # fmt: skip
    missing = client.get("/v1/changes", headers=AUTH, params={"since": "pruned-long-ago"})
    assert missing.status_code == 410 and "resync" in missing.json()["detail"]


def test_unexpected_errors_answer_500_without_a_stack_trace(api, monkeypatch, caplog):
    client, _, _ = api

    def boom(*args, **kwargs):
        raise RuntimeError("secret internals at /srv/db password=hunter2")

    monkeypatch.setattr(ScoreStore, "page", boom)
    monkeypatch.setattr(HotPages, "page", boom)  # the fast path's read on a SQLite file
    with caplog.at_level(logging.ERROR, logger="leadscore.serving.api"):
        response = client.get("/v1/scores", headers=AUTH)
    assert response.status_code == 500
    body = response.json()
    assert body["detail"] == "internal server error" and len(body["error_id"]) == 12
    assert "hunter2" not in response.text and "Traceback" not in response.text
    assert body["error_id"] in caplog.text and "hunter2" in caplog.text  # logged server-side


# ----------------------------------------------------------------- on-demand scoring


def _request_for(crm, lead_id: str, as_of: pd.Timestamp) -> dict:
    lead = crm.leads.set_index("lead_id").loc[lead_id]
    acts = crm.activities[crm.activities["lead_id"] == lead_id]
    numeric = ("employees", "annual_revenue_musd")
    categorical = ("industry", "country", "seniority", "department", "company_size",
                   "lead_source", "segment")  # fmt: skip
    attributes: dict = {k: None if pd.isna(lead[k]) else float(lead[k]) for k in numeric}
    attributes |= {k: None if pd.isna(lead[k]) else str(lead[k]) for k in categorical}
    return {
        "lead": {
            "lead_id": lead_id,
            "created_at": lead["created_at"].isoformat(),
            "owner": lead["owner"],
            "segment": lead["segment"],
            "attributes": attributes,
        },
        "activities": [
            {
                "activity_type": a.activity_type,
                "occurred_at": a.occurred_at.isoformat(),
                "value": None if pd.isna(a.value) else float(a.value),
            }
            for a in acts.itertuples()
        ],
        "as_of": as_of.isoformat(),
    }


def test_on_demand_score_equals_the_batch_score(tmp_path, fitted_scorer, monkeypatch):
    scorer, crm, batch, end = fitted_scorer
    calls = []
    counted = OnDemandScorer(
        scorer.features, scorer.rules, scorer.scoring,
        lambda: calls.append(1) or scorer.model_loader(),
    )  # fmt: skip
    store = ScoreStore(StoreConfig(url=f"sqlite:///{tmp_path}/s.db"))
    client = TestClient(create_app(store.config, ApiConfig(tokens=[TOKEN]), counted))
    # the best lead, one in the middle, the worst: all must match the batch path exactly
    for position in (0, len(batch) // 2, len(batch) - 1):
        expected = batch.iloc[position]
        response = client.post(
            "/v1/score", headers=AUTH, json=_request_for(crm, expected["lead_id"], end)
        )
        assert response.status_code == 200, response.text
        got = response.json()
        assert got["lead_id"] == expected["lead_id"]
        assert got["probability"] == pytest.approx(expected["probability"], abs=1e-12)
        assert got["score"] == expected["score"] and got["grade"] == expected["grade"]
        assert got["rule_score"] == pytest.approx(expected["rule_score"])
        assert got["rule_grade"] == expected["rule_grade"]
        assert got["fit"] == pytest.approx(expected["fit"])
        assert got["fit_score"] == expected["fit_score"] and got["cell"] == expected["cell"]
        assert got["engagement_score"] == expected["engagement_score"]
        assert got["reasons"] == json.loads(expected["reasons"])
        # every feature's exact SHAP value, which each reason's concept sums
        shap = got["contributions"]
        assert len(shap) > 50 and got["reasons"]
        for reason in got["reasons"]:
            assert reason["features"] == {f: round(shap[f], 4) for f in reason["features"]}
            assert sum(shap[f] for f in reason["features"]) == pytest.approx(
                reason["contribution"], abs=5e-5
            )
        # the rule points in words ("industry software: +18.75") add up to the rule score
        said = got["rule_reasons"]
        assert said and all(r.rsplit(": ", 1)[1][0] in "+-" for r in said)
        total = sum(float(r.rsplit(": ", 1)[1]) for r in said)
        assert total == pytest.approx(expected["rule_score"], abs=0.05)
        assert got["model_version"] == "3"
    assert calls == [1]  # the champion is loaded once, then cached


def test_on_demand_score_rejects_bad_input(tmp_path, fitted_scorer):
    scorer, crm, batch, end = fitted_scorer
    store = ScoreStore(StoreConfig(url=f"sqlite:///{tmp_path}/s.db"))
    client = TestClient(create_app(store.config, ApiConfig(tokens=[TOKEN]), scorer))
    good = _request_for(crm, batch.iloc[0]["lead_id"], end)

    def post(body):
        return client.post("/v1/score", headers=AUTH, json=body)

    unknown = json.loads(json.dumps(good))
    unknown["lead"]["attributes"]["shoe_size"] = "44"
    response = post(unknown)
    assert response.status_code == 422 and "shoe_size" in response.json()["detail"]
    early = json.loads(json.dumps(good))
    early["as_of"] = "2000-01-01T00:00:00Z"
    assert "after as_of" in post(early).json()["detail"]
    bad_time = json.loads(json.dumps(good))
    bad_time["activities"] = [{"activity_type": "page_view", "occurred_at": "soon"}]
    response = post(bad_time)
    assert response.status_code == 422 and response.json()["detail"][0]["loc"][:2] == [
        "body", "activities"
    ]  # fmt: skip
    before = json.loads(json.dumps(good))
    before["activities"] = [{"activity_type": "page_view", "occurred_at": "1999-01-01T00:00:00Z"}]
    response = post(before)
    assert response.status_code == 422 and "before the lead was created" in response.text
    far = json.loads(json.dumps(good))  # found by the fuzzer: beyond pandas' ns range
    far["lead"]["created_at"] = "2300-01-01T00:00:00"
    far["as_of"] = "2300-01-02T00:00:00"
    response = post(far)
    assert response.status_code == 422 and "between 1970-01-01 and 2200-01-01" in response.text
    assert post({"lead": {"lead_id": ""}}).status_code == 422
    assert client.post("/v1/score", headers=AUTH, content=b"{not json").status_code == 422


def test_on_demand_score_refuses_when_the_model_reads_the_market(tmp_path, fitted_scorer):
    """One posted lead carries no closed leads: a model that reads the recent conversion
    rate is not guessed at, it is refused with where to look instead."""
    from leadscore.features.config import MarketConfig

    scorer, crm, batch, end = fitted_scorer
    market = scorer.features.model_copy(update={"market": MarketConfig(leads=100)})
    reads_market = OnDemandScorer(market, scorer.rules, scorer.scoring, scorer.model_loader)
    store = ScoreStore(StoreConfig(url=f"sqlite:///{tmp_path}/s.db"))
    client = TestClient(create_app(store.config, ApiConfig(tokens=[TOKEN]), reads_market))
    body = _request_for(crm, batch.iloc[0]["lead_id"], end)
    response = client.post("/v1/score", headers=AUTH, json=body)
    assert response.status_code == 422
    assert "recent conversion rate" in response.json()["detail"]


def test_on_demand_score_refuses_a_model_reading_other_rows(tmp_path, fitted_scorer):
    """A model trained with data.joins reads account features (other contacts' rows): one
    posted lead cannot carry them, so it is refused by name, not scored on a guess."""
    import copy

    scorer, crm, batch, end = fitted_scorer
    model, _ = scorer.model_loader()
    joined = copy.copy(model)
    joined.input_columns_ = [*model.input_columns_, "account_contacts"]
    reads_accounts = OnDemandScorer(
        scorer.features, scorer.rules, scorer.scoring, lambda: (joined, "4")
    )
    store = ScoreStore(StoreConfig(url=f"sqlite:///{tmp_path}/s.db"))
    client = TestClient(create_app(store.config, ApiConfig(tokens=[TOKEN]), reads_accounts))
    body = _request_for(crm, batch.iloc[0]["lead_id"], end)
    response = client.post("/v1/score", headers=AUTH, json=body)
    assert response.status_code == 422
    assert "['account_contacts']" in response.json()["detail"]
    assert "nightly score" in response.json()["detail"]


def test_on_demand_score_without_a_model_is_503(tmp_path, fitted_scorer):
    scorer, crm, batch, end = fitted_scorer
    store = ScoreStore(StoreConfig(url=f"sqlite:///{tmp_path}/s.db"))
    body = _request_for(crm, batch.iloc[0]["lead_id"], end)
    client = TestClient(create_app(store.config, ApiConfig(tokens=[TOKEN])))
    assert client.post("/v1/score", headers=AUTH, json=body).status_code == 503

    def no_champion():
        raise LookupError("run `leadscore train` first")

    none = OnDemandScorer(scorer.features, scorer.rules, scorer.scoring, no_champion)
    client = TestClient(create_app(store.config, ApiConfig(tokens=[TOKEN]), none))
    response = client.post("/v1/score", headers=AUTH, json=body)
    assert response.status_code == 503 and "leadscore train" in response.json()["detail"]


# ---------------------------------------------------------------------- page (server)


def test_page_login_cookie_and_page_tokens(tmp_path, monkeypatch):
    monkeypatch.delenv(TOKENS_ENV, raising=False)
    monkeypatch.setenv(PAGE_TOKENS_ENV, "rep-token")
    store, _ = two_batches(f"sqlite:///{tmp_path}/s.db")
    client = TestClient(create_app(store.config, ApiConfig(tokens=[TOKEN])))
    redirect = client.get("/ui?grade=A", follow_redirects=False)
    assert redirect.status_code == 303
    assert redirect.headers["location"] == "/ui/login?next=%2Fui%3Fgrade%3DA"
    wrong = client.post("/ui/login", data={"token": "nope", "next": "/ui"})
    assert wrong.status_code == 401 and "Unknown token" in wrong.text
    ok = client.post(
        "/ui/login", data={"token": "rep-token", "next": "/ui?grade=A"}, follow_redirects=False
    )
    assert ok.status_code == 303 and ok.headers["location"] == "/ui?grade=A"
    cookie = ok.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    page = client.get("/ui?grade=A")
    assert page.status_code == 200
    shown = [lead for lead in "abcde" if f'data-lead="{lead}"' in page.text]
    assert shown == ["a", "b"]
    # a page token opens the page, not the API
    rep = {"Authorization": "Bearer rep-token"}
    assert client.get("/v1/scores", headers=rep).status_code == 401
    evil = client.post(
        "/ui/login", data={"token": "rep-token", "next": "//evil.example"}, follow_redirects=False
    )
    assert evil.headers["location"] == "/ui"
    client.post("/ui/logout")
    assert client.get("/ui", follow_redirects=False).status_code == 303
    store.close()


def test_lead_page_escapes_and_draws_reasons(tmp_path):
    store = ScoreStore(StoreConfig(url=f"sqlite:///{tmp_path}/s.db"))
    store.create()
    frame = _frame([("<b>x", 42, "A", "<script>alert(1)</script>")])
    frame["reasons"] = json.dumps(
        [
            {
                "feature": "f1",
                "text": "demo request <3 days",
                "direction": "+",
                "contribution": 0.8,
            },
            {"feature": "f2", "text": "no reply", "direction": "-", "contribution": -0.3},
        ]
    )
    store.publish(frame, model_version="7", as_of=AS_OF)
    client = TestClient(create_app(store.config, ApiConfig(tokens=[TOKEN])))
    listing = client.get("/ui", headers=AUTH).text
    assert "<script>alert(1)" not in listing and "&lt;script&gt;alert(1)" in listing
    page = client.get("/ui/leads/%3Cb%3Ex", headers=AUTH)
    assert page.status_code == 200
    assert "demo request &lt;3 days" in page.text and "<b>x" not in page.text
    assert page.text.count('class="bar"') == 2
    assert 'data-feature="f1"' in page.text and 'fill="#b3261e"' in page.text
    missing = client.get("/ui/leads/nope", headers=AUTH)
    assert missing.status_code == 404 and 'id="missing"' in missing.text
    store.close()


# ------------------------------------------------------------------------------- CLI


def _config_with_store(tmp_path, url: str):
    import yaml

    from tests.conftest import ROOT

    raw = yaml.safe_load((ROOT / "leadscore.yaml").read_text(encoding="utf-8"))
    raw["store"]["url"] = url
    raw["api"] = {"tokens": []}
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "leadscore.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def test_cli_export_and_serve_refusal(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from leadscore.pipelines.cli import app as cli
    from leadscore.serving.export import EXPORT_COLUMNS

    monkeypatch.delenv(TOKENS_ENV, raising=False)
    monkeypatch.delenv(PAGE_TOKENS_ENV, raising=False)
    url = f"sqlite:///{tmp_path}/s.db"
    store, (_, second) = two_batches(url)
    store.close()
    config = _config_with_store(tmp_path, url)
    runner = CliRunner()

    out = tmp_path / "out" / "scores.jsonl"
    result = runner.invoke(cli, ["export", "--format", "jsonl", "--out", str(out), "-c", config])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["lead_id"] for r in lines] == ["b", "a", "e", "d"]
    assert list(lines[0]) == [*EXPORT_COLUMNS, "reasons"]  # every reason in full
    assert lines[0]["reasons"] == [] and lines[0]["batch_id"] == second.batch_id
    assert lines[3]["owner"] is None  # missing values are JSON null, not NaN

    csv = tmp_path / "scores.csv"
    result = runner.invoke(cli, ["export", "--out", str(csv), "-c", config])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(csv, dtype={"lead_id": str})
    assert list(frame.columns) == EXPORT_COLUMNS and frame["lead_id"].tolist() == [
        "b",
        "a",
        "e",
        "d",
    ]

    bad = runner.invoke(cli, ["export", "--format", "xml", "--out", str(csv), "-c", config])
    assert bad.exit_code == 2 and "csv or jsonl" in bad.output
    empty = _config_with_store(tmp_path / "x", f"sqlite:///{tmp_path}/empty.db")
    none = runner.invoke(cli, ["export", "--out", str(csv), "-c", empty])
    assert none.exit_code == 4 and "no scoring batch" in none.output  # NOTHING_TO_SCORE

    refused = runner.invoke(cli, ["serve", "--port", "1", "-c", config])
    assert refused.exit_code == 2 and "no API token" in refused.output
