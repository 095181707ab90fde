"""``POST /v1/score`` reads a posted lead exactly as the nightly batch reads a file row.

The same contract reader (``features.reader``) with the same limits (``data.validation``:
ranges, the cell cap, control characters) refuses the same values with the same reason:
what the batch quarantines, the API answers 422 with that reason, never more than a short
excerpt of the value. What the batch normalises (respelled activity types, exact
duplicate activities) the API normalises too, so both give the same score.
"""

from __future__ import annotations

import copy

import pytest
from fastapi.testclient import TestClient

from leadscore.features.reader import ContractReader
from leadscore.pipelines.settings import load_settings
from leadscore.serving.api import ApiConfig, OnDemandScorer, create_app
from leadscore.serving.store import ScoreStore, StoreConfig
from tests.conftest import ROOT
from tests.serving.test_api import AUTH, TOKEN, _request_for, fitted_scorer  # noqa: F401

MEGABYTE = "x" * 1_000_000


@pytest.fixture(scope="module")
def limited(fitted_scorer, tmp_path_factory):  # noqa: F811
    """A client whose scorer has the shipped config's data.validation, as `serve` builds it."""
    scorer, crm, batch, end = fitted_scorer
    settings = load_settings(ROOT / "leadscore.yaml")
    on_demand = OnDemandScorer(
        scorer.features, scorer.rules, scorer.scoring, scorer.model_loader, settings.data.validation
    )
    folder = tmp_path_factory.mktemp("limits")
    store = ScoreStore(StoreConfig(url=f"sqlite:///{folder}/s.db"))
    client = TestClient(create_app(store.config, ApiConfig(tokens=[TOKEN]), on_demand))
    reader = ContractReader.of(settings.features, settings.data.validation)
    good = _request_for(crm, batch.iloc[0]["lead_id"], end)
    return client, reader, crm, good, end


def _batch_reason(reader: ContractReader, crm, lead_id: str, column: str, value, end) -> str:
    """The reason the nightly batch quarantines this lead's row with ``column = value``."""
    row = crm.leads[crm.leads["lead_id"] == lead_id].copy()
    row[column] = row[column].astype(object)
    row.loc[row.index[0], column] = value
    checked = reader.leads(row, end, table_rules=False)
    assert len(checked.quarantine) == 1
    return str(checked.quarantine["reason"].iloc[0])


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("employees", -5.0, "employees is outside [0, 1e+07]"),
        ("employees", 1e308, "employees is outside [0, 1e+07]"),
        (
            "industry",
            MEGABYTE,
            "industry is 1000000 characters, over the limit of 1000 "
            "(data.validation.max_cell_chars): '" + "x" * 40 + "…'",
        ),
        ("industry", "soft\x00ware", "industry holds a control character (NUL or similar): "),
    ],
    ids=["negative", "1e308", "1MB", "NUL"],
)
def test_a_posted_lead_is_refused_with_the_batch_quarantine_reason(limited, column, value, reason):
    client, reader, crm, good, end = limited
    body = copy.deepcopy(good)
    body["lead"]["attributes"][column] = value
    response = client.post("/v1/score", headers=AUTH, json=body)
    assert response.status_code == 422, response.text[:200]
    detail = response.json()["detail"]
    batch = _batch_reason(reader, crm, good["lead"]["lead_id"], column, value, end)
    assert detail == f"lead refused: {batch}"
    assert batch.startswith(reason)
    assert len(response.content) < 500  # an excerpt, never the value


def test_a_posted_activity_with_a_nul_byte_is_refused(limited):
    client, _, _, good, _ = limited
    body = copy.deepcopy(good)
    body["activities"] = [{"activity_type": "page\x00view", "occurred_at": good["as_of"]}]
    response = client.post("/v1/score", headers=AUTH, json=body)
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "activity 0 refused: activity_type holds a control character (NUL or similar): "
        "'page\\x00view'"
    )


def test_respelled_types_and_duplicate_activities_score_as_the_batch_reads_them(limited):
    """'Email_Open ' reads as email_open and an exact repeat is dropped, as in a file."""
    client, _, _, good, _ = limited
    assert good["activities"], "the chosen lead needs activities"
    plain = client.post("/v1/score", headers=AUTH, json=good)
    assert plain.status_code == 200, plain.text
    messy = copy.deepcopy(good)
    for activity in messy["activities"]:
        activity["activity_type"] = " " + activity["activity_type"].upper().replace("_", " ")
    messy["activities"] = messy["activities"] + messy["activities"][:1]
    response = client.post("/v1/score", headers=AUTH, json=messy)
    assert response.status_code == 200, response.text
    assert response.json()["probability"] == pytest.approx(plain.json()["probability"], abs=1e-12)
    assert response.json()["reasons"] == plain.json()["reasons"]
