"""The nightly CSV export (pipelines/batch.py ``export_by_rank``, Arrow column at a time)
writes the very bytes of the straightforward path (``by_rank`` -> ``with_calls`` ->
``export_frame`` -> ``write_csv_chunks_atomic``) on a real scored batch: partitions of a
small synthetic CRM scored by a fitted model, with their facts, plus the cells that test a
writer (formula starts, quotes, line breaks, escaped and non-ASCII reason texts, v1 and
empty reasons, nulls), the call lists and the BOM option."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from leadscore.models.scoring import partition_features, partition_leads, score_partition
from leadscore.pipelines.batch import Ranking, by_rank, export_by_rank, spill, with_facts
from leadscore.serving.export import export_frame, with_calls, write_csv_chunks_atomic
from leadscore.serving.export_arrow import iso_utc, reason_lines
from tests.pipelines.test_partitions import world  # noqa: F401  (the fitted model, once)

STAMP = {
    "model_version": "12",
    "batch_id": "20261122T031500Z-a1b2c3",
    "scored_at": pd.Timestamp("2026-11-22T03:15:00.7", tz="UTC"),
}

TRICKY_TEXT = ["=cmd|' /C calc'!A0", "a;=1+1", '  @SUM(1)', "-42", 'say "hi", then\nleave', "\t"]
TRICKY_REASONS = [
    "[]",
    "",
    None,
    '[{"feature": "views", "text": "v1 reason", "direction": "-", "contribution": -0.5}]',
    json.dumps([{"concept": "c", "text": "caf\u00e9 \"q\"", "direction": "+", "contribution": 1,
                 "share": 0.5, "features": {"f": 1}}]),  # escapes: read by the codec
    json.dumps([{"concept": "c", "text": "=1+1", "direction": "-", "contribution": -1.5,
                 "share": None, "features": {}}] * 4),  # formula text; more than three
]


def _spilled(world, tmp_path):  # noqa: F811
    """Three scored partitions with facts and tricky cells, spilled; their calls."""
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
        parts.append(spill(frame, tmp_path, i))
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
    plain = (export_frame(with_calls(c.assign(**STAMP), None)) for c in by_rank(parts, ranking, 1000))
    expected = write_csv_chunks_atomic(plain, tmp_path / "plain.csv").read_bytes()
    for rows in (1, 299, 300, 1000):
        fast = export_by_rank(parts, ranking, None, STAMP, rows)
        assert write_csv_chunks_atomic(fast, tmp_path / "f.csv").read_bytes() == expected


def test_a_malformed_reasons_value_fails_naming_the_lead_as_the_codec_does():
    ids = pa_ids = ["a", "b", "c", "d"]
    good = json.dumps([{"concept": "c", "text": "t", "direction": "+", "contribution": 1,
                        "share": 1, "features": {}}])
    for bad in ('{"text": "x"}', "[1, 2]", "not json", '[{"text": "x"}', '[{"no": "text"}]'):
        values = [good, None, bad, "also bad"]
        with pytest.raises(ValueError) as plain:
            export_frame(with_calls(_frame(ids, values), None))
        import pyarrow as pa

        with pytest.raises(ValueError) as fast:
            reason_lines(pa.array(values, pa.string()), pa.array(pa_ids))
        assert str(fast.value) == str(plain.value) and "'c'" in str(fast.value)


def test_timestamps_are_written_as_pandas_writes_them():
    import pyarrow as pa

    from leadscore.serving.export import _iso_utc

    stamps = pd.Series(
        pd.to_datetime(
            ["2026-11-22T03:15:00.999", None, "1969-12-31T23:59:59.5", "2001-02-03T04:05:06"]
        )
    )
    for values in (stamps, stamps.dt.tz_localize("UTC"), stamps.dt.tz_localize("Europe/Paris")):
        column = pa.array(values)
        assert iso_utc(column).to_pylist() == _iso_utc(values).tolist()


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
