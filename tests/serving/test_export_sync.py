"""The CSV export names its batch, and a file left behind by a killed run is rewritten.

The store is made current before the nightly CSV is written, so a run killed in between
leaves ``latest.csv`` one batch behind. ``sync_export`` (run by the score flow before it
starts, and by ``leadscore export`` with no ``--out``) finds that from the file's first
row and rewrites it; ``/healthz`` says which batch is current.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from leadscore.models.scoring import StageTimes
from leadscore.pipelines import batch as batch_module
from leadscore.pipelines.cli import app as cli
from leadscore.pipelines.spilled import spill
from leadscore.serving.api import PAGE_TOKENS_ENV, TOKENS_ENV, ApiConfig, create_app
from leadscore.serving.export import csv_batch_id, sync_export, write_scores_csv
from leadscore.serving.files import atomic_writer, remove_orphans
from leadscore.serving.store import ScoreStore, StoreConfig
from tests.conftest import publish_test_batch
from tests.serving.test_api import _config_with_store, two_batches
from tests.serving.test_store import AS_OF, make_scores


def test_csv_batch_id_reads_the_first_row(tmp_path):
    store, (first, _) = two_batches(f"sqlite:///{tmp_path}/s.db")
    path = write_scores_csv(store.read_batch(first.batch_id), tmp_path / "latest.csv")
    store.close()
    assert csv_batch_id(path) == first.batch_id
    assert csv_batch_id(tmp_path / "missing.csv") is None
    (tmp_path / "header.csv").write_text('"lead_id","batch_id"\n', encoding="utf-8")
    assert csv_batch_id(tmp_path / "header.csv") is None  # no row
    (tmp_path / "other.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    assert csv_batch_id(tmp_path / "other.csv") is None  # no batch_id column
    (tmp_path / "binary.csv").write_bytes(b"\xff\xfe\x00garbage")
    assert csv_batch_id(tmp_path / "binary.csv") is None


def test_a_file_one_batch_behind_is_rewritten_once(tmp_path):
    url = f"sqlite:///{tmp_path}/s.db"
    store, (first, second) = two_batches(url)
    latest = write_scores_csv(store.read_batch(first.batch_id), tmp_path / "latest.csv")
    store.close()

    synced = sync_export(StoreConfig(url=url), latest)
    assert (synced.current, synced.found, synced.rewritten) == (
        second.batch_id,
        first.batch_id,
        True,
    )
    assert synced.describe() == (
        f"{latest} held batch {first.batch_id}; rewritten with the current batch {second.batch_id}"
    )
    frame = pd.read_csv(latest, dtype={"lead_id": str})
    assert set(frame["batch_id"]) == {second.batch_id}
    assert frame["lead_id"].tolist() == ["b", "a", "e", "d"]  # the current batch, by rank

    before = latest.stat().st_mtime_ns
    again = sync_export(StoreConfig(url=url), latest)
    assert (again.rewritten, again.found) == (False, second.batch_id)
    assert again.describe() == f"{latest} holds batch {second.batch_id}, the current one"
    assert latest.stat().st_mtime_ns == before  # left alone


def test_no_file_is_written_and_no_store_is_needed(tmp_path):
    url = f"sqlite:///{tmp_path}/s.db"
    missing = sync_export(StoreConfig(url=f"sqlite:///{tmp_path}/none.db"), tmp_path / "a.csv")
    assert (missing.current, missing.rewritten) == (None, False)
    assert not (tmp_path / "a.csv").exists()

    store, (_, second) = two_batches(url)
    store.close()
    fresh = sync_export(StoreConfig(url=url), tmp_path / "new" / "latest.csv")
    assert (fresh.found, fresh.current, fresh.rewritten) == (None, second.batch_id, True)
    assert csv_batch_id(tmp_path / "new" / "latest.csv") == second.batch_id


def test_a_kill_after_the_flip_leaves_the_csv_behind_until_the_next_sync(tmp_path, monkeypatch):
    """The nightly path itself: the flip happens, the CSV write dies, the old file stays
    (atomic); the next sync brings the file to the store's batch."""
    url = f"sqlite:///{tmp_path}/s.db"
    store = ScoreStore(StoreConfig(url=url))
    store.create()
    old = store.publish(make_scores(5, seed=1), model_version="6", as_of=AS_OF)
    latest = write_scores_csv(store.read_batch(), tmp_path / "latest.csv")

    frame = make_scores(7).drop(columns=["rank", "percentile"]).assign(raw_score=0.0)
    frame["raw_score"] = frame["probability"]
    parts = [spill(frame, tmp_path, 0)]

    def killed(chunks, path, bom=False):
        next(iter(chunks))  # the write has begun...
        raise KeyboardInterrupt("killed")  # ...and the process dies

    monkeypatch.setattr(batch_module, "write_csv_chunks_atomic", killed)
    with pytest.raises(KeyboardInterrupt):
        publish_test_batch(parts, store, latest, AS_OF, chunk_rows=3, top=2, times=StageTimes())
    current = store.current_batch()
    store.close()
    assert current is not None and current.batch_id != old.batch_id  # the flip happened
    assert csv_batch_id(latest) == old.batch_id  # the file is one batch behind

    synced = sync_export(StoreConfig(url=url), latest)
    assert synced.rewritten and csv_batch_id(latest) == current.batch_id
    assert len(pd.read_csv(latest)) == 7


def test_a_killed_writers_temporary_files_are_removed(tmp_path):
    latest = tmp_path / "latest.csv"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead_pid = int(dead.stdout)
    host = socket.gethostname()
    orphan = tmp_path / f".latest.csv.{dead_pid}@{host}.k1ll3d_x.tmp"
    live = tmp_path / f".latest.csv.{os.getpid()}@{host}.writing.tmp"
    remote = tmp_path / f".latest.csv.{dead_pid}@other-{host}.remote.tmp"
    unrelated = tmp_path / f".quarantine.csv.{dead_pid}@{host}.abc.tmp"
    for path in (orphan, live, remote, unrelated):
        path.write_text("partial", encoding="utf-8")

    assert remove_orphans(latest) == [orphan]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in (live, remote, unrelated)
    )
    # the writer's own temporary file is named so that it can be found
    with atomic_writer(latest) as handle:
        (name,) = [p.name for p in tmp_path.glob(".latest.csv.*.tmp") if p not in (live, remote)]
        assert name.startswith(f".latest.csv.{os.getpid()}@{host}.")
        handle.write(b"x")
    assert remove_orphans(latest) == []


def test_cli_export_with_no_out_checks_latest_csv_and_healthz_agrees(tmp_path, monkeypatch):
    monkeypatch.delenv(TOKENS_ENV, raising=False)
    monkeypatch.delenv(PAGE_TOKENS_ENV, raising=False)
    url = f"sqlite:///{tmp_path}/s.db"
    store, (first, second) = two_batches(url)
    latest = tmp_path / "data" / "scores" / "latest.csv"  # output.scores_csv, by default
    write_scores_csv(store.read_batch(first.batch_id), latest)
    config = str(_config_with_store(tmp_path, url))
    runner = CliRunner()

    stale = runner.invoke(cli, ["export", "-c", config])
    assert stale.exit_code == 0, stale.output
    assert f"held batch {first.batch_id}" in stale.output
    assert f"current batch {second.batch_id}" in " ".join(stale.output.split())
    fresh = runner.invoke(cli, ["export", "-c", config])
    assert fresh.exit_code == 0 and "the current one" in fresh.output

    app = create_app(store.config, ApiConfig(tokens=["t"]))
    with TestClient(app) as client:
        assert client.get("/healthz").json()["current_batch"] == csv_batch_id(latest)
    store.close()

    jsonl = runner.invoke(cli, ["export", "--format", "jsonl", "-c", config])
    assert jsonl.exit_code == 2 and "with --out" in jsonl.output
    empty = _config_with_store(tmp_path / "x", f"sqlite:///{tmp_path}/empty.db")
    none = runner.invoke(cli, ["export", "-c", str(empty)])
    assert none.exit_code == 4 and "no batch published yet" in none.output  # nothing to score


def test_output_csv_bom_reaches_every_csv_the_score_run_and_export_write(tmp_path, monkeypatch):
    """``output.csv_bom: true``: the nightly batch's CSV, the sync's rewrite and `leadscore
    export` all start with the UTF-8 mark; the batch check reads through it, so a file
    that holds the current batch is left alone; JSONL never has one."""
    import yaml

    from leadscore.serving.export import BOM

    url = f"sqlite:///{tmp_path}/s.db"
    store = ScoreStore(StoreConfig(url=url))
    store.create()
    frame = make_scores(7).drop(columns=["rank", "percentile"]).assign(raw_score=0.0)
    frame["raw_score"] = frame["probability"]
    latest = tmp_path / "data" / "scores" / "latest.csv"  # output.scores_csv, by default
    parts = [spill(frame, tmp_path, 0)]
    published = publish_test_batch(parts, store, latest, AS_OF, chunk_rows=3, top=2, bom=True)
    assert latest.read_bytes().startswith(BOM + b'"lead_id",')
    assert csv_batch_id(latest) == published.batch.batch_id
    assert len(pd.read_csv(latest, encoding="utf-8-sig")) == 7
    old = published.batch.batch_id
    newer = store.publish(make_scores(5, seed=1), model_version="8", as_of=AS_OF)
    store.close()

    path = _config_with_store(tmp_path, url)
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    raw["output"]["csv_bom"] = True
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    runner = CliRunner()
    stale = runner.invoke(cli, ["export", "-c", str(path)])
    assert stale.exit_code == 0 and f"held batch {old}" in stale.output
    assert latest.read_bytes().startswith(BOM) and csv_batch_id(latest) == newer.batch_id
    before = latest.stat().st_mtime_ns
    fresh = runner.invoke(cli, ["export", "-c", str(path)])
    assert fresh.exit_code == 0 and "the current one" in fresh.output
    assert latest.stat().st_mtime_ns == before  # read through the mark: left alone
    out = tmp_path / "crm.csv"
    assert runner.invoke(cli, ["export", "--out", str(out), "-c", str(path)]).exit_code == 0
    assert out.read_bytes()[:3] == BOM
    jsonl = tmp_path / "crm.jsonl"
    done = runner.invoke(cli, ["export", "--format", "jsonl", "--out", str(jsonl), "-c", str(path)])
    assert done.exit_code == 0 and jsonl.read_bytes()[:1] == b"{"
