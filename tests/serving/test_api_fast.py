"""The hot API paths (issue #19 item 5) answer exactly what the straightforward code did.

``GET /v1/scores`` writes stored JSON as checked fragments instead of parsing and
re-encoding it, ``GET /v1/leads/{id}`` serialises its model once instead of going through
FastAPI's response-model round trip, and a page of several grades reads one index range
per grade when the store has a (batch_id, grade) index. Each is compared here with the old
rendering on rows that include the odd cases (v1 reasons, unreadable JSON, nulls).
"""

from __future__ import annotations

import json

import orjson
import pytest
from fastapi.encoders import jsonable_encoder
from fastapi.testclient import TestClient
from pydantic import ValidationError

from leadscore.models import reasons as reasons_codec
from leadscore.serving.api import PAGE_TOKENS_ENV, TOKENS_ENV, ApiConfig, create_app
from leadscore.serving.lookup import detail_of
from leadscore.serving.schemas import json_fragment, parse_json_columns, reasons_fragment
from leadscore.serving.store import ScoreStore, StoreConfig
from tests.serving.test_store import AS_OF, make_scores

TOKEN = "fast-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
V1_REASONS = json.dumps([{"feature": "visits", "text": "Visited", "direction": "+",
                          "contribution": 0.5}])  # fmt: skip
ODD = [  # (reasons, rule_reasons, attributes, timeline) for the first rows by rank
    (V1_REASONS, "not json", '{"a": 1, "b": [1.5, null, "x"]}', "[]"),
    ("{broken", "[]", "12", None),
    ("", '[{"text": "t", "points": 1e-05}]', "[1, 2", '"just text"'),
    ('{"concept": "x"}', None, " {} ", "[true]"),
    ("[]", '[{"text": "t", "points": 3}]', '{"k": "\\u00e9\\ud83d\\ude00"}', "null"),
]


@pytest.fixture
def served(tmp_path, monkeypatch):
    monkeypatch.delenv(TOKENS_ENV, raising=False)
    monkeypatch.delenv(PAGE_TOKENS_ENV, raising=False)
    store = ScoreStore(StoreConfig(url=f"sqlite:///{tmp_path}/s.db"))
    store.create()
    frame = make_scores(9).sort_values("rank").reset_index(drop=True)
    columns = ["reasons", "rule_reasons", "attributes", "timeline"]
    for i, values in enumerate(ODD):
        frame.loc[i, columns] = values
    store.publish(frame, model_version="1", as_of=AS_OF)
    app = create_app(store.config, ApiConfig(tokens=[TOKEN], page_size=50, max_page_size=50))
    with TestClient(app) as client:
        yield client, store
    store.close()


def test_a_page_is_the_parsed_and_re_encoded_rows(served):
    client, store = served
    _, rows = store.page(limit=50)
    for row in rows:  # the old rendering, straightforwardly
        row["reasons"] = reasons_codec.decode_lenient(row["reasons"])
        parse_json_columns(row)
    items = client.get("/v1/scores", headers=AUTH).json()["items"]
    assert items == rows
    assert [type(i["attributes"]) for i in items[:2]] == [dict, int]
    assert items[1]["reasons"] == [] and items[0]["rule_reasons"] is None
    assert items[0]["reasons"][0]["concept"] == "visits"  # v1 read as v2


def test_fragments_hold_the_stored_text_only_when_it_is_json():
    assert json_fragment(None) is None and json_fragment(3) == 3
    assert json_fragment("[1, 2") is None and json_fragment("") is None
    assert reasons_fragment("{broken") == [] and reasons_fragment(None) == []
    v2 = reasons_codec.encode(
        [{"concept": "c", "text": "t", "direction": "+", "contribution": 0.1, "share": 1.0,
          "features": {"f": 0.1}}]
    )  # fmt: skip
    fragment = reasons_fragment(v2)
    assert isinstance(fragment, orjson.Fragment)
    assert json.loads(orjson.dumps({"r": fragment})) == {"r": json.loads(v2)}


def test_a_lead_is_what_the_response_model_wrote(served):
    client, store = served
    answered = 0
    for lead_id in [r["lead_id"] for r in store.page(limit=50)[1]]:
        rows, current = store.lead_history_and_current(lead_id, 10)
        response = client.get(f"/v1/leads/{lead_id}", headers=AUTH)
        try:
            old = jsonable_encoder(detail_of(lead_id, rows, current))
        except ValidationError:  # a JSON column of the wrong shape: a 500, as before
            assert response.status_code == 500
            continue
        assert response.headers["content-type"] == "application/json"
        assert response.json() == old
        answered += 1
    assert answered >= 5


@pytest.mark.parametrize("indexed", [False, True])
def test_several_grades_page_alike_with_or_without_a_grade_index(tmp_path, indexed):
    store = ScoreStore(StoreConfig(url=f"sqlite:///{tmp_path}/g.db"))
    store.create()
    frame = make_scores(8)
    frame["grade"] = [("A", "C", "B", "C", "D")[r % 5] for r in frame["rank"]]
    store.publish(frame, model_version="1", as_of=AS_OF)
    if indexed:
        with store.engine.begin() as conn:
            conn.exec_driver_sql("CREATE INDEX ix_g ON scores (batch_id, grade, rank)")
    assert store._has_index("batch_id", "grade") is indexed
    want = frame[frame["grade"].isin(["C", "A"])].sort_values("rank")
    got, after = [], 0
    while True:  # keyset pages of 3, as a sync reads them
        _, rows = store.page(after_rank=after, limit=3, grade=["C", "A", "C"], owner=None)
        if not rows:
            break
        got += rows
        after = rows[-1]["rank"]
    assert [r["lead_id"] for r in got] == want["lead_id"].tolist()
    _, owned = store.page(limit=100, grade=["D", "B"], owner="rep1@example.com")
    expected = frame[frame["grade"].isin(["D", "B"]) & (frame["owner"] == "rep1@example.com")]
    assert [r["rank"] for r in owned] == sorted(expected["rank"])
    store.close()
