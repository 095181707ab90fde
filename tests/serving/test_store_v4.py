"""Schema 4 (issue #16): a version-3 store gains the score row's new columns, keeps its
batches (their new columns null), and then stores and serves the new values; on SQLite
and on PostgreSQL (``$LEADSCORE_TEST_PG_URL``), like every store test."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import inspect, select

from leadscore.models.schema import NULLABLE_INT_COLUMNS, SCORE_COLUMNS
from leadscore.serving.store import (
    SCHEMA_VERSION,
    ScoreStore,
    StoreConfig,
    schema_version_table,
    validate_scores,
)
from leadscore.serving.store.migrate import V4_COLUMNS, V6_COLUMNS, V8_COLUMNS
from tests.serving.test_store import AS_OF, BACKENDS, _frame, backend_url, by_rank, make_scores
from tests.serving.test_store_leftovers import upgraded_from


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path: Path):
    with backend_url(request.param, tmp_path) as url:
        created = ScoreStore(StoreConfig(url=url, chunk_rows=3))
        created.create()
        yield created
        created.close()


def _columns(store: ScoreStore) -> list[tuple[str, str, bool]]:
    with store.engine.connect() as conn:
        found = inspect(conn).get_columns("scores")
    return [(c["name"], str(c["type"]), c["nullable"]) for c in found]


def test_a_version_3_store_is_migrated_to_4(store):
    fresh = _columns(store)
    later = len(V6_COLUMNS) + len(V8_COLUMNS)
    v4 = fresh[-len(V4_COLUMNS) - later : -later]
    assert [name for name, _, _ in v4] == list(V4_COLUMNS)
    first = store.publish(_frame([("a", 30, "B", None)]), model_version="7", as_of=AS_OF)
    drops = [f"ALTER TABLE scores DROP COLUMN {c}" for c in V4_COLUMNS]
    old = upgraded_from(store, 3, *drops)
    with old.engine.connect() as conn:
        assert conn.scalar(select(schema_version_table.c.version)) == SCHEMA_VERSION
    assert _columns(old) == fresh  # same names, types and nullability as a new table
    # the batch published before the upgrade reads back with its new columns null
    before = old.read_batch(first.batch_id)
    assert before["lead_id"].tolist() == ["a"] and before["score"].tolist() == [30]
    assert before[list(V4_COLUMNS)].isna().all().all()
    assert str(before["fit_score"].dtype) == "Int64" and str(before["rule_rank"].dtype) == "Int64"
    # and a new batch stores every new value
    scores = make_scores(5)
    second = old.publish(scores, model_version="8", as_of=AS_OF)
    back = old.read_batch(second.batch_id)
    pd.testing.assert_frame_equal(back[list(SCORE_COLUMNS)], by_rank(scores))
    row = back.set_index("lead_id").loc["L-00-0003"]
    assert (row["name"], row["company"], row["cell"]) == (
        "Zoë Ångström 3",
        "Ümlaut GmbH",
        "deprioritise",
    )
    assert (row["fit_score"], row["engagement_score"], row["rule_rank"]) == (58, 97, 2)
    old.create()  # idempotent
    assert _columns(old) == fresh
    old.close()


def test_null_sub_scores_and_cell_are_stored_as_null(store):
    scores = _frame([("a", 30, "B", None), ("b", 60, "A", "ann")])
    assert scores[list(V4_COLUMNS)].isna().all().all()
    info = store.publish(scores, model_version="7", as_of=AS_OF)
    page_info, rows = store.page(batch_id=info.batch_id)
    assert page_info == info and [r["lead_id"] for r in rows] == ["b", "a"]
    assert all(r[c] is None for r in rows for c in V4_COLUMNS)


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("fit_score", 101, "within \\[0, 100\\]"),
        ("engagement_score", -1, "within \\[0, 100\\]"),
        ("fit_score", 50.5, "whole numbers"),
        ("rule_rank", 0, ">= 1"),
        ("cell", "maybe", "must be one of"),
    ],
)
def test_validation_refuses_bad_v4_values(column, value, message):
    scores = make_scores(3)
    if column in NULLABLE_INT_COLUMNS:
        scores[column] = scores[column].astype("Float64")
    scores.loc[1, column] = value
    with pytest.raises(ValueError, match=f"column '{column}' .*{message}"):
        validate_scores(scores)
