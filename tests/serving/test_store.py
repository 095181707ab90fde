"""Tests of the scores store (serving/store/) and the CSV export (serving/export.py).

Every store test runs twice: on a real SQLite file in tmp_path and on a real PostgreSQL
server (``$LEADSCORE_TEST_PG_URL``, started by ``.ci/postgres.sh`` from ``make test``),
each test in a schema of its own. The properties that matter (atomic publish, the
pointer, pruning, failure clean-up, the change feed) live in the database, so it is not
mocked. Only the chunk insert is patched, to make a publish fail half-way.

Without ``$LEADSCORE_TEST_PG_URL`` the PostgreSQL half fails under ``CI=true`` and is
skipped (with the reason) on a developer machine.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import create_engine, func, inspect, select, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url
from sqlalchemy.schema import CreateIndex, CreateTable

from leadscore.models.schema import CELLS, NULLABLE_INT_COLUMNS
from leadscore.serving.export import EXPORT_COLUMNS, export_frame, write_scores_csv
from leadscore.serving.store import (
    SCHEMA_VERSION,
    SCORE_COLUMNS,
    SchemaVersionError,
    ScoreStore,
    StoreConfig,
    StoreError,
    changes_table,
    codec,
    metadata,
    schema_version_table,
    scores_table,
)
from leadscore.serving.store.migrate import V4_COLUMNS, V6_COLUMNS
from leadscore.serving.store.outbound_schema import OUTBOUND_TABLES
from leadscore.serving.store.partitions import attached, batch_table, is_partitioned

AS_OF = datetime(2026, 11, 22, 3, 15, tzinfo=UTC)


UNDO_V6: tuple[str, ...] = (
    *(f"DROP TABLE {t.name}" for t in reversed(OUTBOUND_TABLES)),
    *(f"ALTER TABLE scores DROP COLUMN {c}" for c in V6_COLUMNS),
)
"""SQL that takes a schema-6 store back to schema 5 (issue #18's columns and tables)."""


def undo_v8(conn) -> None:
    """Take a schema-8 store back to schema 7: every packed row's reasons, rule reasons
    and timeline written back as text (the form schema 7 stored), ``packed`` and
    ``codecs`` dropped."""
    packed = conn.execute(
        select(scores_table.c.batch_id, scores_table.c.lead_id, scores_table.c.packed).where(
            scores_table.c.packed.is_not(None)
        )
    ).all()
    for batch_id, lead_id, blob in packed:
        values = dict(zip(codec.PACKED_COLUMNS, codec.texts(conn, batch_id, blob), strict=True))
        conn.execute(
            update(scores_table)
            .where(scores_table.c.batch_id == batch_id, scores_table.c.lead_id == lead_id)
            .values(**values)
        )
    conn.execute(text("ALTER TABLE scores DROP COLUMN packed"))
    conn.execute(text("DROP TABLE codecs"))


def _reasons(*items: tuple[str, str, str, float]) -> str:
    return json.dumps(
        [{"feature": f, "text": t, "direction": d, "contribution": c} for f, t, d, c in items]
    )


def _v4_values(i: int, n: int) -> dict[str, object]:
    """The schema-4 columns of make_scores' row ``i``: real values, some null."""
    timeline = [{"type": "pricing-page view", "at": "2026-11-20T10:00:00Z", "value": None}]
    return {
        "name": None if i == 1 else f"Zoë Ångström {i}",
        "company": "Ümlaut GmbH" if i % 2 else "Acme, Inc.",
        "email": None if i == 1 else f"zoe{i}@example.com",
        "record_id": f"00Q{i:05d}",
        "fit_score": None if i == 2 else (97 - 13 * i) % 101,
        "engagement_score": 100 - i,
        "cell": CELLS[i % len(CELLS)],
        "rule_rank": n - i,
        "rule_reasons": json.dumps([{"text": "industry is fintech", "points": 27.0}]),
        "last_activity": None if i == 2 else "pricing-page view",
        "last_activity_at": None if i == 2 else "2026-11-20T10:00:00Z",
        "attributes": json.dumps({"industry": "fintech", "size": 12}, separators=(",", ":")),
        "timeline": None if i == 2 else json.dumps(timeline),
    }


def make_scores(n: int = 7, *, seed: int = 0) -> pd.DataFrame:
    """A scores frame as models/scoring.py builds it, rows deliberately not in rank order."""
    lead_ids = [f"L-{seed:02d}-{i:04d}" for i in range(n)]
    lead_ids[0] = "00042"  # leading zeros must survive as text
    probability = [round(0.93 - 0.11 * i - 0.001 * seed, 6) for i in range(n)]
    rows = []
    for i, (lead_id, p) in enumerate(zip(lead_ids, probability, strict=True)):
        score = round(p * 100)
        rows.append(
            {
                "lead_id": lead_id,
                "owner": None if i % 3 == 0 else f"rep{i % 2}@example.com",
                "segment": "Mid-Market" if i % 2 else "Entreprise-Ümlaut",
                "probability": p,
                "score": score,
                "grade": "ABCD"[min(3, (100 - score) // 25)],
                "rank": i + 1,
                "percentile": round(100.0 * (n - i) / n, 4),
                "fit": None if i == 2 else 0.1 * (n - i) + 1 / 3,
                "engagement": -0.05 * i,
                "rule_score": float(40 - 3 * i),
                "rule_grade": "B",
                "reasons": _reasons(
                    ("visits_30d", f'Visited the pricing page {n - i} times, "recently"', "+", 0.4),
                    ("days_since_hi", "No high-intent activity in 45 days", "-", -0.2),
                ),
                **_v4_values(i, n),
                "next_step": "webinar attended" if i % 2 else None,  # schema 6 (issue #18)
                "next_step_gain": round(0.01 * i, 4) if i % 2 else None,
            }
        )
    frame = pd.DataFrame(rows, columns=list(SCORE_COLUMNS))
    frame = frame.astype({c: "Int64" for c in NULLABLE_INT_COLUMNS})
    return frame.iloc[::-1].reset_index(drop=True)  # publish must not rely on input order


def by_rank(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values("rank").reset_index(drop=True)


PG_ENV = "LEADSCORE_TEST_PG_URL"
BACKENDS = ("sqlite", "postgresql")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def pg_base_url() -> str:
    """The test server's URL; fail under CI (never a silent skip there), skip locally."""
    url = os.environ.get(PG_ENV, "").strip()
    if url:
        return url
    message = (
        f"${PG_ENV} is not set: run the tests with `make test` (it starts PostgreSQL "
        f"through .ci/postgres.sh) or `export {PG_ENV}=$(.ci/postgres.sh)`"
    )
    if in_ci():
        pytest.fail(message + " -- PostgreSQL tests may not be skipped under CI=true")
    pytest.skip(message)


@contextmanager
def pg_schema_url() -> Iterator[str]:
    """A URL on the test server whose search_path is a fresh schema, dropped afterwards."""
    base = pg_base_url()
    name = f"t_{secrets.token_hex(6)}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={name}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


@contextmanager
def backend_url(backend: str, folder: Path) -> Iterator[str]:
    """A fresh, empty store location on ``backend`` ("sqlite" or "postgresql")."""
    if backend == "sqlite":
        yield f"sqlite:///{folder}/nested/scores.db"
    else:
        with pg_schema_url() as url:
            yield url


@pytest.fixture(params=BACKENDS)
def url(request, tmp_path: Path) -> Iterator[str]:
    with backend_url(request.param, tmp_path) as location:
        yield location


@pytest.fixture
def store(url: str):
    store = ScoreStore(StoreConfig(url=url, chunk_rows=3))
    store.create()
    yield store
    store.close()


def rows_of(store: ScoreStore, batch_id: str) -> int:
    """A batch's rows in the store: in ``scores``, plus (PostgreSQL, schema 10) those of its
    own table while it is not attached (a batch being written, or left by a dead run)."""
    with store.engine.connect() as conn:
        rows = conn.scalar(
            select(func.count())
            .select_from(scores_table)
            .where(scores_table.c.batch_id == batch_id)
        )
        own = batch_table(batch_id)
        bare = is_partitioned(conn) and not attached(conn, batch_id)
        if bare and conn.exec_driver_sql("SELECT to_regclass(%(t)s)", {"t": own}).scalar():
            rows += conn.exec_driver_sql(f'SELECT count(*) FROM "{own}"').scalar()
        return rows


# ----------------------------------------------------------------------------- publish


def test_sqlite_file_and_its_folder_are_created(tmp_path):
    store = ScoreStore(StoreConfig(url=f"sqlite:///{tmp_path}/a/b/scores.db"))
    store.create()
    assert (tmp_path / "a" / "b" / "scores.db").is_file()
    store.close()


def test_publish_then_read_returns_the_frame(store):
    scores = make_scores()
    info = store.publish(scores, model_version="7", as_of=AS_OF)

    out = store.read_batch()
    pd.testing.assert_frame_equal(out[list(SCORE_COLUMNS)], by_rank(scores))
    assert list(out.columns) == [*SCORE_COLUMNS, "batch_id", "model_version", "scored_at"]
    assert (out["batch_id"] == info.batch_id).all()
    assert (out["model_version"] == "7").all()
    assert (out["scored_at"] == pd.Timestamp(AS_OF)).all()
    assert str(out["scored_at"].dtype) == "datetime64[us, UTC]"
    pd.testing.assert_frame_equal(store.read_batch(info.batch_id), out)

    current = store.current_batch()
    assert current == info
    assert info.status == "published"
    assert info.n_rows == len(scores)
    assert info.model_version == "7"
    assert info.as_of == AS_OF
    for stamp in (info.as_of, info.created_at, info.published_at):
        assert stamp is not None
        assert stamp.tzinfo is not None and stamp.utcoffset() == timedelta(0)
    assert info.created_at <= info.published_at
    # sortable generated id: UTC timestamp + random suffix
    stamp, suffix = info.batch_id.split("-")
    assert len(stamp) == len("20261122T031500Z") and stamp.endswith("Z") and len(suffix) == 6
    assert scores.equals(make_scores())  # the input frame was not mutated


def test_as_of_in_another_zone_comes_back_as_utc(store):
    paris = timezone(timedelta(hours=1))
    info = store.publish(
        make_scores(3), model_version="7", as_of=datetime(2026, 11, 22, 4, 15, tzinfo=paris)
    )
    assert info.as_of == AS_OF and info.as_of.tzinfo == UTC
    assert store.read_batch()["scored_at"].iloc[0] == pd.Timestamp(AS_OF)


def test_naive_as_of_is_refused(store):
    with pytest.raises(ValueError, match="as_of"):
        store.publish(make_scores(3), model_version="7", as_of=datetime(2026, 11, 22))
    assert store.batches() == []


def test_read_before_any_publish(store):
    assert store.current_batch() is None
    assert store.batches() == []
    with pytest.raises(LookupError, match="no scoring batch"):
        store.read_batch()
    with pytest.raises(LookupError, match="nope"):
        store.read_batch("nope")


def test_second_publish_supersedes_the_first(store):
    first = store.publish(make_scores(5, seed=1), model_version="7", as_of=AS_OF)
    second_scores = make_scores(4, seed=2)
    second = store.publish(
        second_scores, model_version="8", as_of=AS_OF + timedelta(days=1), batch_id="b-second"
    )
    assert second.batch_id == "b-second"
    assert store.current_batch() == second
    listed = store.batches()
    assert [b.batch_id for b in listed] == ["b-second", first.batch_id]  # newest first
    assert [b.status for b in listed] == ["published", "superseded"]
    pd.testing.assert_frame_equal(store.read_batch()[list(SCORE_COLUMNS)], by_rank(second_scores))
    # the superseded batch stays readable by id, complete
    old = store.read_batch(first.batch_id)
    pd.testing.assert_frame_equal(old[list(SCORE_COLUMNS)], by_rank(make_scores(5, seed=1)))
    assert (old["model_version"] == "7").all()


def test_keep_batches_prunes_old_batches_and_their_rows(url):
    store = ScoreStore(StoreConfig(url=url, keep_batches=2))
    store.create()
    ids = [
        store.publish(make_scores(4, seed=s), model_version="7", as_of=AS_OF).batch_id
        for s in range(4)
    ]
    assert [b.batch_id for b in store.batches()] == [ids[3], ids[2]]
    assert [rows_of(store, b) for b in ids] == [0, 0, 4, 4]
    assert store.current_batch().batch_id == ids[3]
    with pytest.raises(LookupError, match="pruned"):
        store.read_batch(ids[0])
    store.close()


def test_keep_one_batch_keeps_the_current(url):
    store = ScoreStore(StoreConfig(url=url, keep_batches=1))
    store.create()
    store.publish(make_scores(3, seed=1), model_version="7", as_of=AS_OF)
    last = store.publish(make_scores(3, seed=2), model_version="7", as_of=AS_OF)
    assert store.batches() == [last]
    assert len(store.read_batch()) == 3
    store.close()


def test_failed_publish_leaves_previous_batch_current_and_complete(store, monkeypatch):
    previous_scores = make_scores(5, seed=1)
    previous = store.publish(previous_scores, model_version="7", as_of=AS_OF)

    calls = []
    counted = threading.Lock()
    real_insert = ScoreStore._insert_chunk

    def flaky_insert(self, records):
        with counted:  # PostgreSQL writes chunks on two COPY threads: which call is this
            calls.append(len(records))
            call = len(calls)
        # mid-publish, readers still see the previous batch, whole
        assert len(self.read_batch()) == len(previous_scores)
        assert self.current_batch() == previous
        if call == 2:
            raise ConnectionError("database went away")
        real_insert(self, records)

    monkeypatch.setattr(ScoreStore, "_insert_chunk", flaky_insert)
    with pytest.raises(ConnectionError, match="went away"):
        store.publish(make_scores(8, seed=2), model_version="8", as_of=AS_OF, batch_id="b-bad")
    # chunk_rows=3: the first chunk was written, then the second failed; on PostgreSQL the
    # other COPY thread may have taken the last chunk (2 rows) before the failure
    assert calls[:2] == [3, 3] and calls[2:] in ([], [2])

    assert store.current_batch() == previous
    pd.testing.assert_frame_equal(store.read_batch()[list(SCORE_COLUMNS)], by_rank(previous_scores))
    statuses = {b.batch_id: b.status for b in store.batches()}
    assert statuses == {"b-bad": "failed", previous.batch_id: "published"}
    assert rows_of(store, "b-bad") == 0
    with pytest.raises(LookupError, match="failed"):
        store.read_batch("b-bad")

    # the store is still usable: the next publish works and supersedes the old batch
    monkeypatch.setattr(ScoreStore, "_insert_chunk", real_insert)
    nxt = store.publish(make_scores(4, seed=3), model_version="8", as_of=AS_OF)
    assert store.current_batch() == nxt
    assert {b.batch_id: b.status for b in store.batches()}[previous.batch_id] == "superseded"


def test_lost_rows_fail_the_count_check(store, monkeypatch):
    previous = store.publish(make_scores(3, seed=1), model_version="7", as_of=AS_OF)
    real_insert = ScoreStore._insert_chunk
    monkeypatch.setattr(
        ScoreStore, "_insert_chunk", lambda self, records: real_insert(self, records[:-1])
    )
    with pytest.raises(StoreError, match="expected 7"):
        store.publish(make_scores(7, seed=2), model_version="8", as_of=AS_OF, batch_id="b-short")
    assert store.current_batch() == previous
    assert rows_of(store, "b-short") == 0


def test_reusing_a_batch_id_does_not_damage_that_batch(store):
    first = store.publish(make_scores(3), model_version="7", as_of=AS_OF, batch_id="b-1")
    with pytest.raises(Exception, match=r"(?i)unique|integrity"):
        store.publish(make_scores(4, seed=9), model_version="8", as_of=AS_OF, batch_id="b-1")
    assert store.current_batch() == first
    assert rows_of(store, "b-1") == 3


# -------------------------------------------------------------------------- validation


def _duplicate_lead(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[1, "lead_id"] = frame.loc[4, "lead_id"]
    return frame


def _probability_too_high(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[frame["lead_id"] == "L-00-0003", "probability"] = 1.5
    return frame


def _score_too_high(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[frame["lead_id"] == "L-00-0003", "score"] = 101
    return frame


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (_duplicate_lead, r"'lead_id' has duplicate values.*L-00-0002"),
        (_probability_too_high, r"'probability' must be within \[0, 1\].*L-00-0003"),
        (_score_too_high, r"'score' must be within \[0, 100\].*L-00-0003"),
        (lambda f: f.drop(columns=["grade"]), r"missing required column.*'grade'"),
        (lambda f: f.assign(lead_id=[None, *f["lead_id"][1:]]), r"'lead_id' has null"),
        (lambda f: f.assign(score=f["score"] + 0.5), r"'score' must hold whole numbers"),
        (lambda f: f.iloc[0:0], r"empty"),
    ],
    ids=["duplicate", "probability", "score", "missing", "null-id", "fractional", "empty"],
)
def test_invalid_frames_are_refused_before_writing(store, corrupt, message):
    with pytest.raises(ValueError, match=message):
        store.publish(corrupt(make_scores()), model_version="7", as_of=AS_OF)
    assert store.batches() == []


# ------------------------------------------------------------------------------ schema


def test_create_is_idempotent(store):
    first = store.publish(make_scores(3), model_version="7", as_of=AS_OF)
    store.create()
    ScoreStore(store.config).create()
    assert store.current_batch() == first
    with store.engine.connect() as conn:
        assert conn.scalar(select(schema_version_table.c.version)) == SCHEMA_VERSION
        assert conn.scalar(select(func.count()).select_from(schema_version_table)) == 1


def test_a_newer_schema_is_refused(store):
    with store.engine.begin() as conn:
        conn.execute(update(schema_version_table).values(version=SCHEMA_VERSION + 1))
    fresh = ScoreStore(store.config)
    with pytest.raises(SchemaVersionError, match="newer"):
        fresh.create()
    with pytest.raises(SchemaVersionError, match="newer"):
        fresh.read_batch()
    with pytest.raises(SchemaVersionError, match="newer"):
        fresh.publish(make_scores(3), model_version="7", as_of=AS_OF)
    fresh.close()


def test_a_store_that_was_never_created_is_refused(url):
    store = ScoreStore(StoreConfig(url=url))
    with pytest.raises(StoreError, match=r"create\(\)"):
        store.current_batch()
    store.close()


def test_config_is_strict():
    with pytest.raises(ValueError):
        StoreConfig(keep_batches=0)
    with pytest.raises(ValueError):
        StoreConfig(uri="sqlite://")


def test_schema_compiles_for_postgresql():
    dialect = postgresql.dialect()
    for table in metadata.sorted_tables:
        ddl = str(CreateTable(table).compile(dialect=dialect))
        assert "TIMESTAMP WITH TIME ZONE" in ddl or "TIMESTAMP" not in ddl
        for index in table.indexes:
            str(CreateIndex(index).compile(dialect=dialect))


# ------------------------------------------------------------------------------ export


def test_write_scores_csv_round_trips(store, tmp_path):
    store.publish(make_scores(), model_version="7", as_of=AS_OF)
    batch = store.read_batch()
    target = tmp_path / "exports" / "scores.csv"

    assert write_scores_csv(batch, target) == target
    assert sorted(p.name for p in target.parent.iterdir()) == ["scores.csv"]  # no temp file
    assert oct(target.stat().st_mode & 0o777) == oct(0o644)
    assert target.read_bytes()[:3] != b"\xef\xbb\xbf"  # plain UTF-8, no BOM

    back = pd.read_csv(target, dtype={"lead_id": str}, encoding="utf-8")
    assert list(back.columns) == EXPORT_COLUMNS
    expected = export_frame(batch)
    columns = ("lead_id", "score", "rank", "probability", "percentile", "fit_score", "owner")
    for column in (*columns, "engagement_score", "rule_rank", "cell", "email", "record_id"):
        pd.testing.assert_series_equal(
            back[column], expected[column], check_dtype=False, obj=column
        )
    assert back["lead_id"].iloc[0] == "00042"
    assert back["segment"].tolist() == batch["segment"].tolist()  # non-ASCII intact
    assert back["name"].tolist() == batch["name"].tolist()  # non-ASCII intact
    assert back["company"].tolist() == batch["company"].tolist()  # a comma stays in its cell
    assert (pd.to_datetime(back["scored_at"], utc=True) == pd.Timestamp(AS_OF)).all()
    assert back["scored_at"].iloc[0] == "2026-11-22T03:15:00Z"
    assert back["last_activity_at"].iloc[0] == "2026-11-20T10:00:00Z"
    # the reasons as short text columns, quotes intact; no JSON in the file
    assert back["reason_1"].iloc[0] == 'Visited the pricing page 7 times, "recently" (+)'
    assert back["reason_2"].iloc[0] == "No high-intent activity in 45 days (-)"
    assert back["reason_3"].isna().all()
    assert "[{" not in target.read_text(encoding="utf-8")
    assert back["probability"].tolist() == batch["probability"].round(4).tolist()


def test_failed_export_keeps_old_file_and_leaves_no_temp(store, tmp_path, monkeypatch):
    store.publish(make_scores(3), model_version="7", as_of=AS_OF)
    target = tmp_path / "scores.csv"
    target.write_text("old export\n", encoding="utf-8")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_scores_csv(store.read_batch(), target)
    assert target.read_text(encoding="utf-8") == "old export\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_export_needs_batch_columns():
    with pytest.raises(ValueError, match="batch_id"):
        export_frame(make_scores(3))


# ------------------------------------------------------------------------- change feed


def _frame(rows: list[tuple[str, int, str, str | None]]) -> pd.DataFrame:
    """A scores frame from (lead_id, score, grade, owner) rows, ranked by score."""
    ordered = sorted(rows, key=lambda r: (-r[1], r[0]))
    return pd.DataFrame(
        [
            {
                "lead_id": lead,
                "owner": owner,
                "segment": None,
                "probability": score / 100,
                "score": score,
                "grade": grade,
                "rank": rank,
                "percentile": 100.0 * (len(rows) - rank) / len(rows),
                "fit": 0.0,
                "engagement": 0.0,
                "rule_score": 10.0,
                "rule_grade": "C",
                "reasons": "[]",
            }
            for rank, (lead, score, grade, owner) in enumerate(ordered, start=1)
        ],
        columns=list(SCORE_COLUMNS),
    )


def _changes(store: ScoreStore, batch_id: str) -> dict[str, tuple]:
    with store.engine.connect() as conn:
        rows = conn.execute(select(changes_table).where(changes_table.c.batch_id == batch_id)).all()
    return {
        r.lead_id: (r.kind, r.old_grade, r.new_grade, r.old_score, r.new_score, r.owner)
        for r in rows
    }


def test_change_feed_records_up_down_appeared_left(store):
    first = store.publish(
        _frame(
            [
                ("a", 30, "B", "ann"),
                ("b", 50, "A", "bob"),
                ("c", 10, "C", None),
                ("d", 25, "B", "ann"),
            ]
        ),
        model_version="7",
        as_of=AS_OF,
    )
    assert _changes(store, first.batch_id) == {}  # nothing to compare the first batch with
    second = store.publish(
        _frame(
            [
                ("a", 45, "A", "ann"),
                ("b", 19, "C", "bob"),
                ("d", 27, "B", "ann"),
                ("e", 60, "A", "eve"),
            ]
        ),
        model_version="7",
        as_of=AS_OF + timedelta(days=1),
    )
    assert _changes(store, second.batch_id) == {
        "a": ("up", "B", "A", 30, 45, "ann"),
        "b": ("down", "A", "C", 50, 19, "bob"),
        "c": ("left", "C", None, 10, None, None),
        "e": ("appeared", None, "A", None, 60, "eve"),
    }  # d moved 25 -> 27 within grade B: not a change
    feed = store.changes_since(first.batch_id)
    assert [info.batch_id for info, _ in feed] == [second.batch_id]
    assert [(r["lead_id"], r["kind"]) for r in feed[0][1]] == [
        ("e", "appeared"),
        ("b", "down"),
        ("c", "left"),
        ("a", "up"),
    ]
    assert all(r["previous_batch_id"] == first.batch_id for r in feed[0][1])
    assert [info.batch_id for info, _ in store.changes_since(None)] == [
        first.batch_id,
        second.batch_id,
    ]
    assert store.changes_since(second.batch_id) == []
    with pytest.raises(LookupError, match="resync"):
        store.changes_since("no-such-batch")


def test_change_feed_uses_the_given_grade_order(store):
    store.publish(_frame([("a", 30, "warm", None)]), model_version="7", as_of=AS_OF)
    second = store.publish(
        _frame([("a", 60, "hot", None)]),
        model_version="7",
        as_of=AS_OF,
        grade_order=["hot", "warm", "cold"],
    )
    # alphabetically "hot" < "warm" too, so check a pair where the orders disagree
    assert _changes(store, second.batch_id)["a"][0] == "up"
    third = store.publish(
        _frame([("a", 5, "cold", None)]),
        model_version="7",
        as_of=AS_OF,
        grade_order=["hot", "warm", "cold"],
    )
    assert _changes(store, third.batch_id)["a"][:3] == ("down", "hot", "cold")


def test_failed_publish_writes_no_changes(store, monkeypatch):
    first = store.publish(_frame([("a", 30, "B", None)]), model_version="7", as_of=AS_OF)

    def broken_flip(self, batch_id, grade_order=None):
        raise ConnectionError("lost during the flip")

    monkeypatch.setattr(ScoreStore, "_flip", broken_flip)
    with pytest.raises(ConnectionError):
        store.publish(
            _frame([("a", 90, "A", None)]), model_version="7", as_of=AS_OF, batch_id="b-bad"
        )
    with store.engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(changes_table)) == 0
    assert store.current_batch() == first


def test_pruning_drops_the_changes_of_pruned_batches(url):
    store = ScoreStore(StoreConfig(url=url, keep_batches=2))
    store.create()
    ids = [
        store.publish(
            _frame([("a", 10 + 40 * (s % 2), "AC"[s % 2 == 0], None)]),
            model_version="7",
            as_of=AS_OF,
        ).batch_id
        for s in range(4)
    ]
    with store.engine.connect() as conn:
        kept = set(conn.scalars(select(changes_table.c.batch_id)).all())
    assert kept == {ids[2], ids[3]}
    with pytest.raises(LookupError, match="pruned"):
        store.changes_since(ids[0])
    assert [i.batch_id for i, _ in store.changes_since(ids[2])] == [ids[3]]
    store.close()


def test_a_version_1_store_is_migrated(store):
    first = store.publish(_frame([("a", 30, "B", None)]), model_version="7", as_of=AS_OF)
    with store.engine.begin() as conn:  # make it look like a store written by schema 1
        undo_v8(conn)
        for statement in UNDO_V6:
            conn.execute(text(statement))
        changes_table.drop(conn)
        conn.execute(text("DROP INDEX ix_scores_lead"))
        conn.execute(text("ALTER TABLE batches DROP COLUMN writer_host"))
        conn.execute(text("ALTER TABLE batches DROP COLUMN writer_pid"))
        for column in V4_COLUMNS:
            conn.execute(text(f"ALTER TABLE scores DROP COLUMN {column}"))
        conn.execute(update(schema_version_table).values(version=1))
    old = ScoreStore(store.config)
    with pytest.raises(SchemaVersionError, match="older"):
        old.current_batch()
    old.create()
    with old.engine.connect() as conn:
        assert conn.scalar(select(schema_version_table.c.version)) == SCHEMA_VERSION
        indexes = {i["name"] for i in inspect(conn).get_indexes("scores")}
        assert "ix_scores_lead" in indexes
    assert old.current_batch() == first
    second = old.publish(_frame([("a", 90, "A", None)]), model_version="7", as_of=AS_OF)
    assert _changes(old, second.batch_id)["a"][:3] == ("up", "B", "A")
    old.close()


def test_page_lead_history_and_updated_since(store):
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
                ("c", 12, "C", "ann"),
                ("d", 5, "D", None),
            ]
        ),
        model_version="8",
        as_of=AS_OF,
    )
    info, rows = store.page(limit=2)
    assert info == store.current_batch()
    assert [r["lead_id"] for r in rows] == ["b", "a"]
    _, rows = store.page(after_rank=2, limit=2)
    assert [r["lead_id"] for r in rows] == ["c", "d"]
    _, rows = store.page(owner="ann", grade=["A", "C"])
    assert [r["lead_id"] for r in rows] == ["a", "c"]
    _, rows = store.page(min_score=12)
    assert [r["lead_id"] for r in rows] == ["b", "a", "c"]
    _, rows = store.page(changed_since_batch=first.batch_id)
    assert [r["lead_id"] for r in rows] == ["a", "c", "d"]  # b is unchanged
    old_info, rows = store.page(batch_id=first.batch_id)
    assert old_info.batch_id == first.batch_id and len(rows) == 3
    with pytest.raises(LookupError):
        store.page(batch_id="gone")

    assert store.batch_as_of(first.published_at) == store.complete_batches()[0]
    assert store.batch_as_of(first.published_at - timedelta(seconds=1)) is None
    assert store.batch_as_of(second.published_at).batch_id == second.batch_id

    history = store.lead_history("a")
    assert [(h["batch_id"], h["score"], h["grade"]) for h in history] == [
        (second.batch_id, 45, "A"),
        (first.batch_id, 30, "B"),
    ]
    assert [h["model_version"] for h in store.lead_history("a", limit=1)] == ["8"]
    assert store.lead_history("zzz") == []
