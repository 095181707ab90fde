"""Call lists in the store (issue #18): written with their batch, current with it, gone
with it; and the files made from them (the CRM CSV's call columns, calls.csv).

On a real SQLite file and a real PostgreSQL server (tests/serving/test_store.py's
fixtures), since atomicity lives in the database.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select

from leadscore.models.routing.config import Rep
from leadscore.models.routing.frames import CALL_COLUMNS
from leadscore.serving.calls_export import CALLS_CSV_COLUMNS, sync_calls_csv, write_calls_csv
from leadscore.serving.export import export_current, sync_export
from leadscore.serving.store import ScoreStore, StoreConfig, StoreError
from leadscore.serving.store.call_writes import batch_calls, validate_calls
from leadscore.serving.store.outbound_schema import calls_table
from tests.serving.test_store import AS_OF, BACKENDS, backend_url, make_scores, rows_of
from tests.serving.test_store_leftovers import upgraded_from

REPS = [
    Rep(id="alice", name="Alice Moreau", capacity=2),
    Rep(id="=bob", name="@Bob+1", capacity=1),  # a formula-looking rep, for the CSV
]


@pytest.fixture(params=BACKENDS)
def url(request, tmp_path: Path) -> Iterator[str]:
    with backend_url(request.param, tmp_path) as location:
        yield location


@pytest.fixture
def store(url: str) -> Iterator[ScoreStore]:
    created = ScoreStore(StoreConfig(url=url, chunk_rows=3))
    created.create()
    yield created
    created.close()


def make_calls(scores: pd.DataFrame, method: str = "score_aware") -> pd.DataFrame:
    """Calls for the first four leads of ``scores`` (by lead id): alice 1-2, =bob 1, one
    unassigned; as ``Routing.calls`` has them."""
    ids = sorted(scores["lead_id"])[:4]
    return pd.DataFrame(
        {
            "lead_id": ids,
            "rep_id": ["alice", "alice", "=bob", None],
            "position": pd.array([1, 2, 1, None], dtype="Int64"),
            "expected": [0.5, 0.25, 0.125, 0.0625],
            "method": method,
            "reason": ["best expected value", "territory GB", "=HYPERLINK(1)", "all capacity used"],
        },
        columns=list(CALL_COLUMNS),
    )


def calls_rows(store: ScoreStore, batch_id: str) -> int:
    with store.engine.connect() as conn:
        return conn.scalar(
            select(func.count()).select_from(calls_table).where(calls_table.c.batch_id == batch_id)
        )


def all_calls(store: ScoreStore) -> int:
    with store.engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(calls_table))


def test_calls_are_written_with_the_batch_and_read_back_exactly(store):
    scores = make_scores(7)
    calls = make_calls(scores)
    info = store.publish(scores, model_version="7", as_of=AS_OF, calls=calls)
    back = batch_calls(store.engine, info.batch_id)
    expected = calls.sort_values(["rep_id", "position"], na_position="last", kind="stable")
    pd.testing.assert_frame_equal(back, expected.reset_index(drop=True))
    assert calls.equals(make_calls(scores))  # the input was not modified


def test_publish_stream_writes_calls_once_every_partition_is_in(store):
    scores = make_scores(7)
    calls = make_calls(scores)
    parts = [scores.iloc[:3], scores.iloc[3:]]
    info = store.publish_stream(parts, model_version="7", as_of=AS_OF, calls=calls)
    assert calls_rows(store, info.batch_id) == 4
    back = batch_calls(store.engine, info.batch_id)
    assert back["rep_id"].fillna("-").tolist() == ["=bob", "alice", "alice", "-"]


def test_no_calls_write_nothing(store):
    info = store.publish(make_scores(3), model_version="7", as_of=AS_OF)
    assert calls_rows(store, info.batch_id) == 0
    empty = make_calls(make_scores(4)).iloc[:0]
    second = store.publish(make_scores(3, seed=1), model_version="7", as_of=AS_OF, calls=empty)
    assert calls_rows(store, second.batch_id) == 0
    assert batch_calls(store.engine, second.batch_id).empty


def test_a_call_for_a_lead_not_in_the_batch_is_refused(store):
    first = store.publish(make_scores(3), model_version="7", as_of=AS_OF)
    scores = make_scores(5, seed=1)
    calls = make_calls(scores)
    calls.loc[0, "lead_id"] = "not-scored"
    with pytest.raises(StoreError, match=r"not in the batch.*not-scored"):
        store.publish(scores, model_version="7", as_of=AS_OF, calls=calls)
    assert store.current_batch() == store._get_batch(first.batch_id)
    assert all_calls(store) == 0
    failed = [b for b in store.batches() if b.status == "failed"]
    assert len(failed) == 1 and rows_of(store, failed[0].batch_id) == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.assign(lead_id=[c["lead_id"][0]] * len(c)), "listed twice"),
        (lambda c: c.assign(expected=[float("nan"), 1.0, 1.0, 1.0]), "expected is null"),
        (lambda c: c.assign(position=pd.array([1, None, 1, None], dtype="Int64")), "position"),
        (lambda c: c.assign(position=pd.array([1, 2, 1, 4], dtype="Int64")), "position"),
        (lambda c: c.drop(columns=["reason"]), "reason"),
    ],
)
def test_malformed_calls_are_refused(change, message):
    with pytest.raises(ValueError, match=message):
        validate_calls(change(make_calls(make_scores(5))))


def test_malformed_calls_are_refused_before_anything_is_written(store):
    scores = make_scores(5)
    calls = make_calls(scores).assign(method=None)
    with pytest.raises(ValueError, match="method is null"):
        store.publish(scores, model_version="7", as_of=AS_OF, calls=calls)
    assert store.batches() == [] and all_calls(store) == 0


def test_a_failed_publish_keeps_the_previous_calls_current_and_drops_its_own(store):
    first_scores = make_scores(5, seed=1)
    first = store.publish(
        first_scores, model_version="7", as_of=AS_OF, calls=make_calls(first_scores)
    )
    scores = make_scores(6, seed=2)

    def failing() -> Iterator[pd.DataFrame]:
        yield scores.iloc[:3]
        raise RuntimeError("worker lost")

    with pytest.raises(RuntimeError, match="worker lost"):
        store.publish_stream(failing(), model_version="7", as_of=AS_OF, calls=make_calls(scores))

    def conservation(n: int) -> None:
        raise RuntimeError(f"lead conservation broken: {n} scored")

    with pytest.raises(RuntimeError, match="conservation"):
        store.publish_stream(
            [scores], model_version="7", as_of=AS_OF, calls=make_calls(scores), check=conservation
        )
    assert store.current_batch() == store._get_batch(first.batch_id)
    failed = [b.batch_id for b in store.batches() if b.status == "failed"]
    assert len(failed) == 2
    assert [calls_rows(store, b) for b in failed] == [0, 0]
    assert calls_rows(store, first.batch_id) == 4 == all_calls(store)


def test_pruned_and_reaped_batches_lose_their_calls(url):
    store = ScoreStore(StoreConfig(url=url, keep_batches=1))
    store.create()
    try:
        first_scores = make_scores(5, seed=1)
        first = store.publish(
            first_scores, model_version="7", as_of=AS_OF, calls=make_calls(first_scores)
        )
        scores = make_scores(5, seed=2)
        second = store.publish(scores, model_version="7", as_of=AS_OF, calls=make_calls(scores))
        assert store._get_batch(first.batch_id) is None  # pruned
        assert calls_rows(store, first.batch_id) == 0
        assert calls_rows(store, second.batch_id) == 4 == all_calls(store)
        # a run killed mid-write left a 'writing' batch with calls: reaped with them
        store._open_batch("7", AS_OF, "killed", 0)
        with store.engine.begin() as conn:
            conn.execute(
                calls_table.insert().values(
                    batch_id="killed", lead_id="x", expected=0.1, method="m", reason="r"
                )
            )
        assert store.reap_stale_writing(timedelta(0)) == ["killed"]
        assert calls_rows(store, "killed") == 0
    finally:
        store.close()


def test_a_store_migrated_from_schema_5_accepts_calls(store):
    first = store.publish(make_scores(3), model_version="7", as_of=AS_OF)
    old = upgraded_from(store, 5)
    try:
        scores = make_scores(5, seed=1)
        second = old.publish(scores, model_version="7", as_of=AS_OF, calls=make_calls(scores))
        assert calls_rows(old, second.batch_id) == 4
        assert old.current_batch().batch_id == second.batch_id != first.batch_id
    finally:
        old.close()


# ------------------------------------------------------------------------ the files


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_crm_csv_and_calls_csv_from_the_store(store, tmp_path):
    scores = make_scores(7)
    scores.loc[scores["lead_id"] == sorted(scores["lead_id"])[0], "name"] = "=cmd|' /C calc'!A0"
    info = store.publish(scores, model_version="7", as_of=AS_OF, calls=make_calls(scores))
    crm = tmp_path / "latest.csv"
    synced = sync_export(store.config, crm)
    assert synced.rewritten and synced.current == info.batch_id
    rows = {r["lead_id"]: r for r in read_csv_rows(crm)}
    ids = sorted(scores["lead_id"])
    assert [(rows[i]["call_rep"], rows[i]["call_position"]) for i in ids[:5]] == [
        ("alice", "1"),
        ("alice", "2"),
        ("'=bob", "1"),  # formula-safe
        ("", ""),  # unassigned: on no list
        ("", ""),  # not in the pool
    ]
    assert export_current(store.config, tmp_path / "again.csv").startswith("7 leads")
    assert read_csv_rows(tmp_path / "again.csv") == read_csv_rows(crm)

    calls_csv = tmp_path / "calls.csv"
    write_calls_csv(store, info.batch_id, REPS, calls_csv)
    out = read_csv_rows(calls_csv)
    assert list(out[0]) == list(CALLS_CSV_COLUMNS)
    by_lead = scores.set_index("lead_id")
    assert [(r["rep_id"], r["rep_name"], r["position"], r["lead_id"]) for r in out] == [
        ("alice", "Alice Moreau", "1", ids[0]),
        ("alice", "Alice Moreau", "2", ids[1]),
        ("'=bob", "'@Bob+1", "1", ids[2]),
        ("", "", "", ids[3]),
    ]
    first = out[0]
    assert first["name"] == "'=cmd|' /C calc'!A0"  # neutralised, as in the CRM export
    assert first["score"] == str(by_lead.loc[ids[0], "score"])
    assert first["grade"] == by_lead.loc[ids[0], "grade"]
    assert first["email"] == (by_lead.loc[ids[0], "email"] or "")
    assert first["expected"] == "0.5" and first["reason"] == "best expected value"
    assert first["reason_1"] == rows[ids[0]]["reason_1"] != ""
    assert out[2]["reason"] == "'=HYPERLINK(1)"
    assert out[3]["reason"] == "all capacity used"
    assert {r["batch_id"] for r in out} == {info.batch_id}

    # a killed run left calls.csv one batch behind: synced from the store
    scores2 = make_scores(6, seed=3)
    second = store.publish(scores2, model_version="7", as_of=AS_OF, calls=make_calls(scores2))
    again = sync_calls_csv(store.config, REPS, calls_csv)
    assert again.rewritten and again.found == info.batch_id and again.current == second.batch_id
    assert {r["batch_id"] for r in read_csv_rows(calls_csv)} == {second.batch_id}
    assert not sync_calls_csv(store.config, REPS, calls_csv).rewritten
