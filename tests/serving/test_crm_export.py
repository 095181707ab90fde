"""The CSV a CRM imports as is: its columns (declared once, listed in docs/crm-import.md),
rounding, reason columns, pass-through keys, the byte-order mark option, hostile names.

Pure frames, no store: tests/serving/test_export_spreadsheet.py opens the store's export
in LibreOffice."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from leadscore.serving.export import (
    BOM,
    EXPORT_COLUMNS,
    csv_batch_id,
    export_frame,
    strongest_reasons,
    write_scores_csv,
    write_scores_jsonl,
)
from leadscore.serving.export_fields import EXPORT_FIELDS, REASON_COLUMNS, markdown_table
from tests.conftest import ROOT

AS_OF = datetime(2026, 11, 22, 3, 15, tzinfo=UTC)


def _reasons(*items: tuple[str, str]) -> str:
    return json.dumps(
        [
            {"concept": "c", "text": text, "direction": sign, "contribution": 0.1, "share": 0.2}
            for text, sign in items
        ]
    )


FOUR = _reasons(
    ("viewed the pricing page 3 times, last 1 day ago", "+"),
    ("director in fintech, US", "+"),
    ("no reply to the last 2 emails", "-"),
    ("new lead", "+"),
)


def _row(lead: str, rank: int, **values: object) -> dict:
    row = {
        "lead_id": lead,
        "owner": "ann",
        "segment": "SMB",
        "probability": 0.123456789,
        "score": 12,
        "grade": "C",
        "rank": rank,
        "percentile": 50.0,
        "fit": -0.4213,
        "engagement": 1.25,
        "rule_score": -4.5,
        "rule_grade": "D",
        "reasons": FOUR,
        "name": "Ada Lovelace",
        "company": "Analytical Engines",
        "email": "ada@example.com",
        "record_id": "00Q5g00000AbCdE",
        "fit_score": 81.0,
        "engagement_score": 23.0,
        "cell": "nurture",
        "rule_rank": 7,
        "rule_reasons": json.dumps([{"text": "industry is fintech", "points": 27.0}]),
        "last_activity": "pricing-page view",
        "last_activity_at": "2026-11-21T16:02:00+00:00",
        "attributes": json.dumps({"industry": "fintech"}),
        "timeline": "[]",
        "batch_id": "20261122T031500Z-a1b2c3",
        "model_version": "7",
        "scored_at": AS_OF,
    }
    return {**row, **values}


def _scores() -> pd.DataFrame:
    return pd.DataFrame(
        [
            _row("L-2", 2, reasons=_reasons(("new lead", "-")), fit_score=None, email=None),
            _row("L-1", 1, probability=0.98766, last_activity_at=None, last_activity=None),
            _row("L-3", 3, reasons="[]", record_id=None, name=None, company=None),
        ]
    )


def test_the_doc_lists_every_column_as_the_code_declares_it():
    doc = (ROOT / "docs" / "crm-import.md").read_text(encoding="utf-8")
    assert markdown_table() in doc  # the table is the declaration's, row for row
    listed = [line.split("`")[1] for line in markdown_table().splitlines()[2:]]
    assert listed == EXPORT_COLUMNS == [f.name for f in EXPORT_FIELDS]
    assert {"leadscore_score", "leadscore_grade", "leadscore_cell"} <= {
        f.property_name for f in EXPORT_FIELDS
    }
    for name in ("leadscore_reason_1", "leadscore_reason_3", "Leadscore_Fit_Score__c"):
        assert f"`{name}`" in doc
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "(docs/crm-import.md)" in readme


def _values(series: pd.Series) -> list:
    return [None if pd.isna(v) else v for v in series]


def test_the_crm_file_rounds_scales_and_splits_the_reasons():
    frame = export_frame(_scores())
    assert list(frame.columns) == EXPORT_COLUMNS
    assert "reasons" not in frame.columns and "fit" not in frame.columns  # no JSON, no log-odds
    assert frame["lead_id"].tolist() == ["L-1", "L-2", "L-3"]  # by rank
    assert frame["probability"].tolist() == [0.9877, 0.1235, 0.1235]
    assert _values(frame["fit_score"]) == [81, None, 81]
    assert str(frame["fit_score"].dtype) == "Int64" and frame["engagement_score"][0] == 23
    assert frame.loc[0, REASON_COLUMNS].tolist() == [
        "viewed the pricing page 3 times, last 1 day ago (+)",
        "director in fintech, US (+)",
        "no reply to the last 2 emails (-)",
    ]
    assert _values(frame.loc[1, REASON_COLUMNS]) == ["new lead (-)", None, None]
    assert _values(frame.loc[2, REASON_COLUMNS]) == [None, None, None]
    # the export's own keys and names, passed through as mapped (empty where not)
    assert _values(frame["record_id"]) == ["00Q5g00000AbCdE", "00Q5g00000AbCdE", None]
    assert _values(frame["email"]) == ["ada@example.com", None, "ada@example.com"]
    assert _values(frame[["name", "company"]].iloc[2]) == [None, None]
    assert frame["cell"].tolist() == ["nurture"] * 3 and frame["rule_rank"][0] == 7
    assert _values(frame["last_activity_at"]) == [None, *["2026-11-21T16:02:00Z"] * 2]
    assert frame["scored_at"].tolist() == ["2026-11-22T03:15:00Z"] * 3


def test_strongest_reasons_read_through_the_codec():
    assert strongest_reasons(FOUR, 2) == [
        "viewed the pricing page 3 times, last 1 day ago (+)",
        "director in fintech, US (+)",
    ]
    assert strongest_reasons(None) == strongest_reasons(float("nan")) == [None, None, None]
    assert strongest_reasons("") == strongest_reasons("[]") == [None, None, None]
    with pytest.raises(ValueError, match="JSON array of objects"):
        strongest_reasons('{"text": "not a list"}')
    bad = _scores().assign(reasons=['[{"no": "text"}]', "[]", "[]"])
    with pytest.raises(ValueError, match="lead_id 'L-2'"):
        export_frame(bad)


def test_the_written_file_as_a_crm_reads_it(tmp_path: Path):
    path = write_scores_csv(_scores(), tmp_path / "latest.csv")
    raw = path.read_bytes()
    assert raw.startswith(b'"lead_id","record_id","email","name","company","score",')
    assert b"[{" not in raw and b'""' not in raw  # no JSON, no doubled quotes
    back = pd.read_csv(path, dtype={"lead_id": str, "record_id": str})
    assert list(back.columns) == EXPORT_COLUMNS
    first = back.iloc[0]
    assert first["probability"] == 0.9877 and first["score"] == 12 and first["fit_score"] == 81
    assert first["reason_1"] == "viewed the pricing page 3 times, last 1 day ago (+)"
    assert first["rule_score"] == -4.5  # a negative number stays a number
    line = raw.decode().splitlines()[1]
    assert ",0.9877," in line and ",81,23," in line  # whole numbers, never 81.0
    assert csv_batch_id(path) == "20261122T031500Z-a1b2c3"


def test_a_byte_order_mark_only_when_asked(tmp_path: Path):
    plain = write_scores_csv(_scores(), tmp_path / "plain.csv")
    marked = write_scores_csv(_scores(), tmp_path / "excel.csv", bom=True)
    assert not plain.read_bytes().startswith(BOM)
    assert marked.read_bytes() == BOM + plain.read_bytes()
    assert "\ufeff".encode() == BOM
    # readers that know the mark see the same file; the batch check reads both
    assert pd.read_csv(marked, encoding="utf-8-sig").columns.tolist() == EXPORT_COLUMNS
    assert csv_batch_id(marked) == csv_batch_id(plain) == "20261122T031500Z-a1b2c3"


HOSTILE = {
    "name": '=HYPERLINK("http://evil.example","click")',
    "company": "+1 555 0100",
    "email": "@SUM(1+1)@example.com",
    "last_activity": "-2+3",
}


def test_hostile_names_are_written_as_text(tmp_path: Path):
    scores = _scores().assign(**HOSTILE)
    path = write_scores_csv(scores, tmp_path / "latest.csv")
    back = pd.read_csv(path, dtype=str, keep_default_na=False)
    for column, value in HOSTILE.items():
        assert back[column].tolist() == ["'" + value] * 3, column
    # the JSON outputs carry them exactly, with every reason in full
    lines = write_scores_jsonl(scores, tmp_path / "s.jsonl").read_text("utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    assert [r["name"] for r in rows] == [HOSTILE["name"]] * 3
    assert rows[0]["reasons"] == json.loads(FOUR) and len(rows[0]["reasons"]) == 4
    assert rows[1]["fit_score"] is None and rows[0]["probability"] == 0.9877
