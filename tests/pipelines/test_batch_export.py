"""The nightly CSV export (pipelines/rank_export.py ``export_by_rank``, Arrow column at a time)
writes the very bytes of the straightforward path (``by_rank`` -> ``with_calls`` ->
``export_frame`` -> ``write_csv_chunks_atomic``) on a real scored batch: partitions of a
small synthetic CRM scored by a fitted model, with their facts, plus the cells that test a
writer (formula starts, quotes, line breaks, escaped and non-ASCII reason texts, v1 and
empty reasons, nulls), the call lists and the BOM option."""

from __future__ import annotations

import json
from contextlib import nullcontext

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pyarrow as pa
import pytest

from leadscore.models.monitor.result import ARCHIVE_COLUMNS
from leadscore.models.scoring import partition_features, partition_leads, score_partition
from leadscore.pipelines.archive import ArchiveRun, archive_published
from leadscore.pipelines.batch import with_facts
from leadscore.pipelines.rank_export import export_by_rank
from leadscore.pipelines.spilled import HandOver, Ranking, spill
from leadscore.serving.export import (
    _iso_utc,
    csv_batch_id,
    export_frame,
    with_calls,
    write_csv_chunks_atomic,
    write_scores_csv,
)
from leadscore.serving.export_arrow import iso_utc, reason_lines
from leadscore.serving.store import ScoreStore, StoreConfig
from tests.conftest import publish_test_batch
from tests.pipelines.test_partitions import by_rank, world  # noqa: F401  (the fitted model, once)
from tests.serving.test_store import AS_OF, make_scores

STAMP = {
    "model_version": "12",
    "batch_id": "20261122T031500Z-a1b2c3",
    "scored_at": pd.Timestamp("2026-11-22T03:15:00.7", tz="UTC"),
}

TRICKY_TEXT = ["=cmd|' /C calc'!A0", "a;=1+1", "  @SUM(1)", "-42", 'say "hi", then\nleave', "\t"]
TRICKY_REASONS = [
    "[]",
    "",
    None,
    '[{"feature": "views", "text": "v1 reason", "direction": "-", "contribution": -0.5}]',
    json.dumps(
        [
            {
                "concept": "c",
                "text": 'caf\u00e9 "q"',
                "direction": "+",
                "contribution": 1,
                "share": 0.5,
                "features": {"f": 1},
            }
        ]
    ),  # escapes: read by the codec
    json.dumps(
        [
            {
                "concept": "c",
                "text": "=1+1",
                "direction": "-",
                "contribution": -1.5,
                "share": None,
                "features": {},
            }
        ]
        * 4
    ),  # formula text; more than three
]


def _spilled(world, tmp_path, hand_over=None):  # noqa: F811
    """Three scored partitions with facts and tricky cells, spilled (``hand_over``: in
    memory while it has a slot, the archive's columns on file); their calls."""
    _, settings, crm, model, rules, registry = world
    leads = crm.leads.iloc[:300]
    parts = []
    display = settings.data.display.model_dump()
    for i, part in enumerate(partition_leads(leads, crm.activities, 110)):
        X = partition_features(part, crm.end, settings.features)
        frame = score_partition(X, model, rules, registry, settings.scoring, part.leads)
        frame = with_facts(frame, part, crm.end, settings.features, display)
        if i == 1:  # the cells that test a writer, on the first rows of one partition
            frame = frame.astype({c: object for c in ("name", "company", "owner", "reasons")})
            for column in ("name", "company", "owner"):
                frame.loc[: len(TRICKY_TEXT) - 1, column] = TRICKY_TEXT
            frame.loc[: len(TRICKY_REASONS) - 1, "reasons"] = TRICKY_REASONS
            frame.loc[7, "last_activity_at"] = None
        with hand_over.asking() if hand_over else nullcontext():  # as a waiting publisher
            parts.append(spill(frame, tmp_path, i, None, None, hand_over, ARCHIVE_COLUMNS))
    ids = [p for s in parts for p in pd.read_feather(s.path)["lead_id"].iloc[:5]]
    calls = pd.DataFrame(
        {
            "lead_id": ids,
            "rep_id": (["alice", "bob", None] * len(ids))[: len(ids)],
            "position": pd.array([1, 2, None, 3, 4] * 3, dtype="Int64")[: len(ids)],
        }
    )
    return parts, calls


@pytest.mark.parametrize("bom", [False, True])
def test_the_csv_is_the_straightforward_paths_bytes(world, tmp_path, bom):  # noqa: F811
    parts, calls = _spilled(world, tmp_path)
    ranking = Ranking.of(parts)
    plain = (
        export_frame(with_calls(chunk.assign(**STAMP), calls))
        for chunk in by_rank(parts, ranking, 70)
    )
    expected = write_csv_chunks_atomic(plain, tmp_path / "plain.csv", bom=bom).read_bytes()
    fast = export_by_rank(parts, ranking, calls, STAMP, 70)
    written = write_csv_chunks_atomic(fast, tmp_path / "fast.csv", bom=bom).read_bytes()
    assert written == expected
    assert b"'=cmd|" in written and b"a;'=1+1" in written and b'"=1+1' not in written
    assert b"caf\xc3\xa9" in written and b'"alice"' in written and b"v1 reason (-)" in written
    assert list(tmp_path.glob("export-*")) == []  # its cut files are gone with the export


def test_no_calls_and_other_chunk_sizes_write_the_same_bytes(world, tmp_path):  # noqa: F811
    parts, _ = _spilled(world, tmp_path)
    ranking = Ranking.of(parts)
    plain = (
        export_frame(with_calls(c.assign(**STAMP), None)) for c in by_rank(parts, ranking, 1000)
    )
    expected = write_csv_chunks_atomic(plain, tmp_path / "plain.csv").read_bytes()
    for rows in (1, 299, 300, 1000):
        fast = export_by_rank(parts, ranking, None, STAMP, rows)
        assert write_csv_chunks_atomic(fast, tmp_path / "f.csv").read_bytes() == expected


def test_a_handed_over_batch_publishes_what_its_files_do(world, tmp_path):  # noqa: F811
    """Partitions handed over in memory (the local runner) publish the same store rows,
    CSV bytes, best leads and archive as the same partitions read from their files; their
    files keep only the archive's columns, and ``released`` lets their tables go. With
    two slots for three partitions, the third goes to its file: both kinds mix."""
    for name in ("files", "handed"):
        (tmp_path / name).mkdir()
    on_file, _ = _spilled(world, tmp_path / "files")
    slots = HandOver(2)
    handed, _ = _spilled(world, tmp_path / "handed", slots)
    assert all(p.table is None for p in on_file)
    assert [p.table is not None for p in handed] == [True, True, False]
    assert [p.slot is slots for p in handed] == [True, True, False]
    assert pa.ipc.open_file(str(handed[0].path)).schema.names == list(ARCHIVE_COLUMNS)
    assert pa.ipc.open_file(str(handed[2].path)).schema.names == handed[0].table.column_names
    assert pa.ipc.open_file(str(on_file[0].path)).schema.names == handed[0].table.column_names
    released = handed[0].released()
    assert released.table is None and released.slot is None and released.path == handed[0].path
    assert len(released) == len(handed[0]) == 110 and len(released.raw) == 0
    with pytest.raises(ValueError, match="released"):
        Ranking.of([released])
    store = ScoreStore(StoreConfig(url=f"sqlite:///{tmp_path}/s.db"))
    store.create()
    out = {}
    for name, parts in (("files", on_file), ("handed", handed)):
        published = publish_test_batch(parts, store, tmp_path / f"{name}.csv", STAMP["scored_at"])
        batch_id = published.batch.batch_id
        csv = published.csv.read_bytes().replace(batch_id.encode(), b"BATCH")
        rows = store.read_batch(batch_id).drop(columns=["batch_id"])
        archive = ArchiveRun(tmp_path / f"archive-{name}", 30)
        stamp = {"batch_id": "b", "as_of": STAMP["scored_at"], "model_version": "7"}
        kept = pd.read_parquet(archive_published(parts, archive, **stamp) / "scores.parquet")
        out[name] = (rows, csv, published.top, kept)
    assert not slots.take()  # no publisher waiting: nothing handed over
    with slots.asking():  # both slots given back, once each
        assert slots.take() and slots.take() and not slots.take()
    (rows, csv, top, kept), (rows_h, csv_h, top_h, kept_h) = out["files"], out["handed"]
    assert len(rows) == 300 and csv.count(b"\n") > 300
    pdt.assert_frame_equal(rows, rows_h)
    assert csv == csv_h
    assert top["rank"].tolist() == [1, 2, 3]
    pdt.assert_frame_equal(top, top_h)
    pdt.assert_frame_equal(kept, kept_h)
    store.close()


def test_a_malformed_reasons_value_fails_naming_the_lead_as_the_codec_does():
    ids = ["a", "b", "c", "d"]
    good = json.dumps(
        [
            {
                "concept": "c",
                "text": "t",
                "direction": "+",
                "contribution": 1,
                "share": 1,
                "features": {},
            }
        ]
    )
    for bad in ('{"text": "x"}', "[1, 2]", "not json", '[{"text": "x"}', '[{"no": "text"}]'):
        values = [good, None, bad, "also bad"]
        with pytest.raises(ValueError) as plain:
            export_frame(with_calls(_frame(ids, values), None))

        with pytest.raises(ValueError) as fast:
            reason_lines(pa.array(values, pa.string()), pa.array(ids))
        assert str(fast.value) == str(plain.value) and "'c'" in str(fast.value)


def test_timestamps_are_written_as_pandas_writes_them():

    stamps = pd.Series(
        pd.to_datetime(
            ["2026-11-22T03:15:00.999", None, "1969-12-31T23:59:59.5", "2001-02-03T04:05:06"],
            format="ISO8601",
        )
    )
    for values in (stamps, stamps.dt.tz_localize("UTC"), stamps.dt.tz_localize("Europe/Paris")):
        column = pa.array(values)
        written = pa.array(_iso_utc(values).to_numpy(dtype=object), from_pandas=True)
        assert iso_utc(column).equals(written)  # null where pandas writes NaN: an empty cell
        text = pa.array(written.to_pylist(), pa.large_string())
        assert iso_utc(text).equals(text)  # already so written: kept


def _frame(ids: list[str], reasons: list[str | None]) -> pd.DataFrame:
    n = len(ids)
    numbers = {c: np.arange(n) for c in ("score", "rank", "fit_score", "engagement_score")}
    return pd.DataFrame(
        {
            "lead_id": ids,
            "reasons": reasons,
            **numbers,
            "rule_rank": np.arange(n),
            **{c: None for c in ("record_id", "email", "name", "company", "grade", "cell")},
            **{c: 0.5 for c in ("probability", "percentile", "rule_score")},
            **{c: None for c in ("rule_grade", "last_activity", "last_activity_at", "owner")},
            **{c: None for c in ("segment", "model_version", "batch_id", "scored_at")},
        }
    )


def _store_and_parts(tmp_path):

    store = ScoreStore(StoreConfig(url=f"sqlite:///{tmp_path}/s.db"))
    store.create()
    old = store.publish(make_scores(5, seed=1), model_version="6", as_of=AS_OF)
    latest = write_scores_csv(store.read_batch(), tmp_path / "out" / "latest.csv")
    frame = make_scores(9).drop(columns=["rank", "percentile"])
    parts = [spill(frame.iloc[:4].assign(raw_score=0.1), tmp_path, 0)]
    parts.append(spill(frame.iloc[4:].assign(raw_score=0.2), tmp_path, 1))
    return store, old, latest, parts, AS_OF


def _publish(store, parts, latest, as_of, check):

    return publish_test_batch(parts, store, latest, as_of, check=check)


def test_the_csv_written_beside_the_publish_replaces_the_old_only_once_current(tmp_path):

    store, old, latest, parts, as_of = _store_and_parts(tmp_path)
    seen = []
    published = _publish(store, parts, latest, as_of, lambda n: seen.append(csv_batch_id(latest)))
    assert seen == [old.batch_id]  # just before the flip: still the old file
    assert csv_batch_id(latest) == published.batch.batch_id == store.current_batch().batch_id
    assert len(pd.read_csv(latest)) == 9 and published.top["rank"].tolist() == [1, 2, 3]
    assert sorted(p.name for p in latest.parent.iterdir()) == ["latest.csv"]
    store.close()


def test_a_failed_publish_leaves_the_old_csv_and_no_temporary_file(tmp_path):

    store, old, latest, parts, as_of = _store_and_parts(tmp_path)
    before = latest.read_bytes()

    def refuse(n: int) -> None:
        raise RuntimeError(f"{n} leads out, 10 in")

    with pytest.raises(RuntimeError, match="9 leads out"):
        _publish(store, parts, latest, as_of, refuse)
    assert store.current_batch().batch_id == old.batch_id  # nothing half-published
    assert latest.read_bytes() == before and csv_batch_id(latest) == old.batch_id
    assert sorted(p.name for p in latest.parent.iterdir()) == ["latest.csv"]
    assert list(tmp_path.glob("export-*")) == []
    store.close()


def test_the_byte_scan_finds_every_cell_the_formula_checks_change():
    """``maybe_formula`` only preselects: the neutralised cells equal the regular
    expressions' on every cell (random cells of the characters that matter)."""
    from leadscore.serving.export import _formulas, _neutralised_column

    full_width = ["\uff1d", "\uff0b", "\uff0d", "\uff20", "\u00e9"]
    alphabet = [*"=+-@ \",;\t\r\n\x00\x0b\x0ca1.e'", *full_width]
    rng = np.random.default_rng(5)
    cells = ["".join(rng.choice(alphabet, rng.integers(0, 7))) for _ in range(20_000)]
    for column in (pa.array([*cells, None]), pa.array([*cells, None], pa.large_string())[3:]):
        assert _neutralised_column(column).to_pylist() == _formulas(column).to_pylist()
