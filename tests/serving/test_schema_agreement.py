"""The score row is declared once (models/schema.py); scoring, the store's table, the CSV
export and the API's ScoreItem all agree with it."""

from __future__ import annotations

import json

import pandas as pd
from sqlalchemy import Double, Integer, LargeBinary, String, Text

from leadscore.features.contract import LEAD_ID, OWNER, SEGMENT
from leadscore.features.registry import ENGAGEMENT, FIT
from leadscore.models import reasons, schema, scoring
from leadscore.serving import export
from leadscore.serving.schemas import ScoreItem
from leadscore.serving.store import SCORE_COLUMNS, scores_table
from tests.serving.test_api import fitted_scorer  # noqa: F401  (session fixture)


def test_the_declared_row():
    assert schema.SCORE_COLUMNS == (
        "lead_id",
        "owner",
        "segment",
        "probability",
        "score",
        "grade",
        "rank",
        "percentile",
        "fit",
        "engagement",
        "rule_score",
        "rule_grade",
        "reasons",
        "name",
        "company",
        "email",
        "record_id",
        "fit_score",
        "engagement_score",
        "cell",
        "rule_rank",
        "rule_reasons",
        "last_activity",
        "last_activity_at",
        "attributes",
        "timeline",
        "next_step",
        "next_step_gain",
    )
    assert {LEAD_ID, OWNER, SEGMENT, FIT, ENGAGEMENT} <= set(schema.SCORE_COLUMNS)
    assert schema.INT_COLUMNS == ("score", "rank", "fit_score", "engagement_score", "rule_rank")
    assert schema.NULLABLE_INT_COLUMNS == ("fit_score", "engagement_score", "rule_rank")
    assert set(schema.DISPLAY_COLUMNS + schema.FACT_COLUMNS + schema.JSON_COLUMNS) <= set(
        schema.SCORE_COLUMNS
    )
    assert all(f.meaning.endswith(".") and f.meaning for f in schema.SCORE_FIELDS)
    assert schema.field("grade").length == 32
    assert SCORE_COLUMNS == scoring.SCORE_COLUMNS == schema.SCORE_COLUMNS


def test_store_table_columns_follow_the_schema():
    stored = [c for c in scores_table.columns if c.name not in ("batch_id", "packed")]
    assert [c.name for c in stored] == list(schema.SCORE_COLUMNS)
    # schema 8: reasons, rule_reasons and timeline packed in one blob (store/codec.py)
    assert list(scores_table.columns)[-1].name == "packed" and scores_table.c.packed.nullable
    assert type(scores_table.c.packed.type) is LargeBinary
    for column, field in zip(stored, schema.SCORE_FIELDS, strict=True):
        assert column.nullable == field.nullable, column.name
        expected = {"int": Integer, "float": Double}.get(field.kind)
        if expected is None:
            expected = String if field.length is not None else Text
            if field.length is not None:
                assert column.type.length == field.length, column.name
        assert type(column.type) is expected, column.name
    # the score columns of schema version 6 on (serving/store/migrate.py upgrades older ones)
    assert [(c.name, str(c.type), c.nullable) for c in stored] == [
        ("lead_id", "VARCHAR(255)", False),
        ("owner", "VARCHAR(255)", True),
        ("segment", "VARCHAR(255)", True),
        ("probability", "DOUBLE", False),
        ("score", "INTEGER", False),
        ("grade", "VARCHAR(32)", False),
        ("rank", "INTEGER", False),
        ("percentile", "DOUBLE", False),
        ("fit", "DOUBLE", True),
        ("engagement", "DOUBLE", True),
        ("rule_score", "DOUBLE", True),
        ("rule_grade", "VARCHAR(32)", True),
        ("reasons", "TEXT", True),
        ("name", "VARCHAR(255)", True),
        ("company", "VARCHAR(255)", True),
        ("email", "VARCHAR(320)", True),
        ("record_id", "VARCHAR(255)", True),
        ("fit_score", "INTEGER", True),
        ("engagement_score", "INTEGER", True),
        ("cell", "VARCHAR(32)", True),
        ("rule_rank", "INTEGER", True),
        ("rule_reasons", "TEXT", True),
        ("last_activity", "VARCHAR(255)", True),
        ("last_activity_at", "VARCHAR(40)", True),
        ("attributes", "TEXT", True),
        ("timeline", "TEXT", True),
        ("next_step", "VARCHAR(255)", True),
        ("next_step_gain", "DOUBLE", True),
    ]


def test_export_columns_follow_the_schema():
    """The CRM file holds score and batch columns plus its reason columns; what it leaves
    out is exactly the JSON and the raw log-odds (the API serves those)."""
    from leadscore.serving.export_fields import REASON_COLUMNS

    made = {*REASON_COLUMNS, *export.CALL_EXPORT}  # from the reasons, from the calls table
    kept = [c for c in export.EXPORT_COLUMNS if c not in made]
    assert set(kept) <= {*schema.SCORE_COLUMNS, *schema.BATCH_COLUMNS}
    assert len(set(export.EXPORT_COLUMNS)) == len(export.EXPORT_COLUMNS)
    assert set(schema.SCORE_COLUMNS) - set(kept) == {
        "fit",
        "engagement",
        "reasons",
        "rule_reasons",
        "attributes",
        "timeline",
        "next_step",  # the nurture list's own file (output.nurture_csv) carries these
        "next_step_gain",
    }
    assert set(schema.BATCH_COLUMNS) <= set(kept)


def test_api_score_item_fields_are_the_schema():
    fields = ScoreItem.model_fields
    assert list(fields) == list(schema.SCORE_COLUMNS)
    for f in schema.SCORE_FIELDS:
        info = fields[f.name]
        assert info.is_required(), f.name
        if f.name == "reasons":
            continue
        accepts_none = type(None) in getattr(info.annotation, "__args__", ())
        assert accepts_none == f.nullable, f.name
    item = ScoreItem(
        lead_id="a",
        owner=None,
        segment=None,
        probability=0.5,
        score=50,
        grade="B",
        rank=1,
        percentile=100.0,
        fit=None,
        engagement=None,
        rule_score=None,
        rule_grade=None,
        reasons=[],
        **{name: None for name in schema.SCORE_COLUMNS[13:]},
    )
    assert item.model_dump()["score"] == 50
    # the JSON columns are parsed from their stored text
    parsed = ScoreItem(
        **{
            **item.model_dump(),
            "cell": "nurture",
            "fit_score": 81,
            "rule_reasons": '[{"text":"industry is fintech","points":27.0}]',
            "attributes": '{"industry":"fintech","size":12}',
            "timeline": '[{"type":"pricing-page view","at":"2026-11-20T10:00:00Z","value":null}]',
        }
    ).model_dump()
    assert parsed["rule_reasons"] == [{"text": "industry is fintech", "points": 27.0}]
    assert parsed["attributes"] == {"industry": "fintech", "size": 12}
    assert parsed["timeline"] == [
        {"type": "pricing-page view", "at": "2026-11-20T10:00:00Z", "value": None}
    ]
    assert (parsed["cell"], parsed["fit_score"]) == ("nurture", 81)


def test_scoring_output_has_the_schema_columns_and_kinds(fitted_scorer):  # noqa: F811
    _, _, batch, _ = fitted_scorer
    assert list(batch.columns[: len(schema.SCORE_COLUMNS)]) == list(schema.SCORE_COLUMNS)
    # nothing but the row and the raw log-odds (ranked): the reasons' one-line form is
    # rendered from their JSON where it is read (page, CSV), not for every lead nightly
    assert list(batch.columns[len(schema.SCORE_COLUMNS) :]) == [scoring.RAW_SCORE]
    for raw in batch["reasons"][:20]:
        line = "; ".join(f"{r['text']} ({r['direction']})" for r in json.loads(raw))
        assert reasons.as_text(raw) == line
    for f in schema.SCORE_FIELDS:
        values = batch[f.name]
        if f.kind == "int":
            assert pd.api.types.is_integer_dtype(values), f.name
        elif f.kind == "float":
            assert pd.api.types.is_float_dtype(values), f.name
        else:
            assert values.dropna().map(type).eq(str).all(), f.name
        if not f.nullable:
            assert values.notna().all(), f.name
