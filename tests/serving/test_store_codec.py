"""Schema 8's packed columns (store/codec.py): reasons, rule reasons and timeline stored as
one zstd blob per row read back as exactly the text stored before, on SQLite and on
PostgreSQL. A real scored batch answers the API, the JSON-lines export and the CSV byte for
byte the same from packed rows as from the text rows schema 7 wrote (the same store taken
back to schema 7 and migrated to 8), and a lead's history mixes both forms."""

from __future__ import annotations

import struct

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, or_, select, update

from leadscore.pipelines.spilled import Ranking, ranked_partitions
from leadscore.serving.api import PAGE_TOKENS_ENV, TOKENS_ENV, ApiConfig, create_app
from leadscore.serving.export import write_scores_csv, write_scores_jsonl
from leadscore.serving.store import (
    SCHEMA_VERSION,
    ScoreStore,
    StoreConfig,
    codec,
    schema_version_table,
    scores_table,
)
from tests.pipelines.test_batch_export import _spilled
from tests.pipelines.test_partitions import world  # noqa: F401  (the fitted model, once)
from tests.serving.test_store import AS_OF, undo_v8, url  # noqa: F401

TOKEN = "codec-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ODD = ["", "caf\u00e9 \U0001f600 \u00e9t\u00e9", "[]", "not json", '{"k": "\\u00e9"}']


def _texts(table_rows: int, seed: int = 0) -> list[pa.Array]:
    """Three text columns with NULLs, empty text, non-ASCII and astral characters."""
    columns = []
    for c in range(3):
        values = [
            None if (i + c) % 7 == 0 else f'[{{"i": {i * (c + 1) + seed}, "t": "{ODD[i % 5]}"}}]'
            for i in range(table_rows)
        ]
        if table_rows:
            values[0] = ODD[c]
        columns.append(pa.array(values, pa.string()))
    return columns


@pytest.mark.parametrize("rows", [0, 1, 40, 600])
def test_packed_values_decode_to_the_same_texts(rows):
    columns = _texts(rows, seed=rows)
    packed = codec.packed_column(columns, f"batch-{rows}")
    dictionary = codec.batch_dictionary(f"batch-{rows}")
    assert len(packed) == rows and (rows < 256 or dictionary[:4] == b"\x37\xa4\x30\xec")
    for i, blob in enumerate(packed.to_pylist()):
        assert blob[:4] == codec.tag_of(dictionary)
        assert codec.decode(blob, dictionary) == tuple(c[i].as_py() for c in columns)


def plainly_packed(texts: tuple[str | None, ...]) -> bytes:
    """A packed value by its definition: the lengths in characters (-1: NULL), the UTF-8."""
    sizes = [-1 if t is None else len(t) for t in texts]
    return struct.pack("<3i", *sizes) + b"".join((t or "").encode() for t in texts)


@pytest.mark.parametrize("ascii_only", [True, False], ids=["ascii", "non-ascii"])
def test_pack_is_the_plain_packing(ascii_only):
    """All-ASCII columns take their lengths from their offsets, the others count
    characters: both as the definition, also for a sliced array and for NULLs."""
    columns = _texts(40, seed=3)
    if ascii_only:
        columns = [pc.replace_substring_regex(c, "[^\\x00-\\x7f]", "?") for c in columns]
    assert all(pc.all(pc.string_is_ascii(c)).as_py() == ascii_only for c in columns[:1])
    for chosen in (columns, [c.slice(5, 30) for c in columns], [c.slice(7, 1) for c in columns]):
        rows = zip(*(c.to_pylist() for c in chosen), strict=True)
        assert codec.pack(chosen).to_pylist() == [plainly_packed(r) for r in rows]


def test_a_batch_keeps_the_dictionary_of_its_first_chunk():
    first = codec.packed_column(_texts(300), "b-keep")
    kept = codec.batch_dictionary("b-keep")
    later = codec.packed_column(_texts(5, seed=9), "b-keep")
    assert codec.batch_dictionary("b-keep") == kept
    assert codec.decode(later[0].as_py(), kept) == tuple(c[0].as_py() for c in _texts(5, 9))
    assert len(first) == 300


def _answers(store: ScoreStore, leads: list[str], folder) -> dict[str, bytes]:
    """Every API page of the current batch, some leads' details, the JSON-lines export
    and the CSV, as bytes."""
    out: dict[str, bytes] = {}
    app = create_app(store.config, ApiConfig(tokens=[TOKEN], page_size=100, max_page_size=100))
    with TestClient(app) as client:
        cursor, n = "", 0
        while cursor is not None:
            answer = client.get(f"/v1/scores?size=100{cursor}", headers=AUTH)
            assert answer.status_code == 200
            out[f"page {n}"] = answer.content
            following = answer.json()["next_cursor"]
            cursor, n = (None if following is None else f"&cursor={following}"), n + 1
        for lead in leads:
            answer = client.get(f"/v1/leads/{lead}", headers=AUTH)
            assert answer.status_code == 200
            out[lead] = answer.content
    batch = store.read_batch()
    out["jsonl"] = write_scores_jsonl(batch, folder / "scores.jsonl").read_bytes()
    out["csv"] = write_scores_csv(batch, folder / "scores.csv").read_bytes()
    return out


def test_packed_rows_answer_as_the_text_rows_did(world, tmp_path, url, monkeypatch):  # noqa: F811
    monkeypatch.delenv(TOKENS_ENV, raising=False)
    monkeypatch.delenv(PAGE_TOKENS_ENV, raising=False)
    parts, _ = _spilled(world, tmp_path)
    frames = list(ranked_partitions(parts, Ranking.of(parts)))
    store = ScoreStore(StoreConfig(url=url, chunk_rows=64))
    store.create()
    store.publish_stream(iter(frames), model_version="7", as_of=AS_OF)
    scored = pd.concat(frames).set_index("lead_id")
    read = store.read_batch().set_index("lead_id")
    for name in codec.PACKED_COLUMNS:  # the stored text itself, NULL and "" included
        expected = scored[name].astype(object).where(scored[name].notna(), None)
        assert read[name].astype(object).where(read[name].notna(), None).to_dict() == (
            expected.to_dict()
        )
    with store.engine.connect() as conn:
        stored = [scores_table.c[n].is_not(None) for n in codec.PACKED_COLUMNS]
        assert conn.scalar(select(func.count()).where(or_(*stored))) == 0  # all in packed
        packed, plain = conn.execute(
            select(func.avg(func.length(scores_table.c.packed)), func.count())
        ).one()
    text = sum(scored[n].fillna("").str.len().sum() for n in codec.PACKED_COLUMNS) / plain
    assert packed < text / 3  # measured: ~1/7 on the bench's rows
    leads = list(scored.index[:: max(1, len(scored) // 12)])
    (tmp_path / "v8").mkdir()
    packed_answers = _answers(store, leads, tmp_path / "v8")
    with store.engine.begin() as conn:  # the same rows as schema 7 stored them
        undo_v8(conn)
        conn.execute(update(schema_version_table).values(version=7))
    store.close()
    old = ScoreStore(StoreConfig(url=url, chunk_rows=64))
    old.create()  # migration 7 -> 8: no row rewritten
    with old.engine.connect() as conn:
        assert conn.scalar(select(schema_version_table.c.version)) == SCHEMA_VERSION
        assert conn.scalar(select(func.count()).where(scores_table.c.packed.is_not(None))) == 0
    (tmp_path / "v7").mkdir()
    assert _answers(old, leads, tmp_path / "v7") == packed_answers
    # a new batch after the migration is packed; a lead's history reads both forms
    old.publish_stream(iter(frames), model_version="8", as_of=AS_OF)
    history = old.lead_history(leads[1])
    assert len(history) == 2
    for row in history:
        assert [row[n] for n in codec.PACKED_COLUMNS] == [
            None if pd.isna(scored.loc[leads[1], n]) else scored.loc[leads[1], n]
            for n in codec.PACKED_COLUMNS
        ]
    old.close()
