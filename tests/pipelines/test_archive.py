"""The archive the monitor reads: each published batch's scores and drift counts.

Pinned here: a batch written is read back exactly (float32 probabilities, meta, counts);
a write that fails leaves nothing the reader takes for a batch, and a crashed run's
partial folder is skipped, then pruned; batches older than ``monitor.archive_days`` go;
a model trained by the recipe carries its reference through the skops file the champion
is saved in; and a real score flow on a small synthetic CRM archives exactly the batch
it published (scores, counts summing to the scored leads, quarantine by reason), while a
run that fails before publishing archives nothing.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from leadscore.models.monitor.profile import (
    PREDICTION,
    REFERENCE_ATTRIBUTE,
    BatchCounts,
    ReferenceProfile,
    batch_counts,
    reference_from_examples,
)
from leadscore.models.monitor.result import ARCHIVE_COLUMNS
from leadscore.pipelines.archive import (
    PARTIAL,
    SCHEMA,
    ArchiveRun,
    archive_published,
    archived,
    merged_counts,
    partition_counts,
    prune,
    quarantine_by_reason,
    read_archive,
    write_batch,
)
from leadscore.pipelines.spilled import Spilled, write_arrow
from tests.conftest import ROOT, ts


def _scores(n: int, seed: int) -> pd.DataFrame:
    """A spilled partition's columns (more than the archive keeps), Arrow-backed text."""
    rng = np.random.default_rng(seed)
    probability = rng.uniform(0, 1, n)
    return pd.DataFrame(
        {
            "lead_id": pd.array([f"L{seed}-{i:04d}" for i in range(n)], dtype="string[pyarrow]"),
            "owner": "ann",
            "probability": probability,
            "score": np.rint(100 * probability).astype(np.int64),
            "grade": np.where(probability > 0.5, "A", "B"),
            "rule_score": np.round(rng.uniform(0, 40, n), 2),
            "rule_grade": np.where(probability > 0.3, "A", "C"),
            "cell": pd.Categorical(np.where(probability > 0.5, "hot", "cold")),
        }
    )


def _parts(folder: Path, sizes: tuple[int, ...]) -> tuple[list[Path], pd.DataFrame]:
    folder.mkdir(parents=True, exist_ok=True)
    frames = [_scores(n, seed) for seed, n in enumerate(sizes)]
    paths = [write_arrow(f, folder / f"part-{i:06d}.arrow") for i, f in enumerate(frames)]
    return paths, pd.concat(frames, ignore_index=True)


def _write(folder: Path, batch_id: str, as_of: str, files: list[Path], **extra: Any) -> Path:
    return write_batch(
        folder,
        files,
        batch_id=batch_id,
        as_of=ts(as_of),
        model_version=extra.get("model_version", "3"),
        profile=extra.get("profile"),
        quarantine=extra.get("quarantine", {}),
        rows_in=extra.get("rows_in", 0),
    )


def test_a_batch_written_is_read_back_exactly(tmp_path: Path):
    files, frame = _parts(tmp_path / "spill", (40, 25))
    profile = {"prediction": {"counts": [3, 62], "reference": [0.1, 0.9]}}
    reasons = {"status is empty": 2, "created_at is not a date": 1}
    path = _write(
        tmp_path / "archive",
        "20261201T030000Z-abc123",
        "2026-12-01 03:00",
        files,
        model_version="7",
        profile=profile,
        quarantine=reasons,
        rows_in=68,
    )
    assert path == tmp_path / "archive" / "20261201T030000Z-abc123"
    assert sorted(p.name for p in path.iterdir()) == ["meta.json", "scores.parquet"]

    (batch,) = read_archive(tmp_path / "archive")
    assert batch.batch_id == "20261201T030000Z-abc123"
    assert batch.as_of == ts("2026-12-01 03:00")
    assert batch.model_version == "7"
    assert batch.profile == profile
    assert batch.quarantine == reasons
    assert batch.rows_in == 68
    assert tuple(batch.scores.columns) == ARCHIVE_COLUMNS == tuple(SCHEMA.names)
    assert batch.scores["probability"].dtype == np.float32
    assert len(batch.scores) == 65
    expected = frame[list(ARCHIVE_COLUMNS)]
    assert batch.scores["lead_id"].tolist() == expected["lead_id"].tolist()
    np.testing.assert_array_equal(
        batch.scores["probability"].to_numpy(), expected["probability"].to_numpy(np.float32)
    )
    for column in ("grade", "rule_grade", "cell"):
        assert batch.scores[column].astype(str).tolist() == expected[column].astype(str).tolist()
    np.testing.assert_array_equal(batch.scores["rule_score"], expected["rule_score"])


def test_read_archive_is_oldest_first_and_reads_since(tmp_path: Path):
    files, _ = _parts(tmp_path / "spill", (5,))
    archive = tmp_path / "archive"
    # batch ids sort by creation time; the archive sorts by as-of (a rerun of an old day)
    _write(archive, "20261203T000000Z-aaaaaa", "2026-11-20", files)
    _write(archive, "20261201T000000Z-bbbbbb", "2026-12-01", files)
    _write(archive, "20261202T000000Z-cccccc", "2026-11-25", files)
    read = read_archive(archive)
    assert [b.as_of.strftime("%m-%d") for b in read] == ["11-20", "11-25", "12-01"]
    since = read_archive(archive, since=ts("2026-11-25"))
    assert [b.batch_id for b in since] == ["20261202T000000Z-cccccc", "20261201T000000Z-bbbbbb"]
    assert read_archive(tmp_path / "nowhere") == []


def test_a_failed_write_leaves_nothing_readable(tmp_path: Path, caplog):
    files, _ = _parts(tmp_path / "spill", (10, 10))
    archive = tmp_path / "archive"
    _write(archive, "20261201T000000Z-aaaaaa", "2026-12-01", files)
    missing = tmp_path / "spill" / "gone.arrow"  # the second partition vanished mid-write
    with pytest.raises(OSError):
        _write(archive, "20261202T000000Z-bbbbbb", "2026-12-02", [files[0], missing])
    assert sorted(p.name for p in archive.iterdir()) == ["20261201T000000Z-aaaaaa"]

    # a run killed mid-write leaves a hidden partial folder; a folder whose Parquet does
    # not hold the rows its meta says (a copy cut short) is skipped, with a warning line
    partial = archive / f"{PARTIAL}20261203T000000Z-cccccc-123456"
    partial.mkdir()
    (partial / "scores.parquet").write_bytes(b"PAR1")
    cut = _write(archive, "20261204T000000Z-dddddd", "2026-12-04", files)
    meta = json.loads((cut / "meta.json").read_text())
    (cut / "meta.json").write_text(json.dumps({**meta, "n_rows": 21}))
    torn = archive / "20261205T000000Z-eeeeee"
    torn.mkdir()
    (torn / "scores.parquet").write_bytes(b"not parquet")
    with caplog.at_level(logging.WARNING, logger="leadscore.pipelines.archive"):
        read = read_archive(archive)
    assert [b.batch_id for b in read] == ["20261201T000000Z-aaaaaa"]
    skipped = [r.getMessage() for r in caplog.records]
    assert len(skipped) == 2
    assert "20261204T000000Z-dddddd skipped" in skipped[0]
    assert "20261205T000000Z-eeeeee skipped" in skipped[1]


def test_pruning_deletes_batches_older_than_the_window(tmp_path: Path):
    files, _ = _parts(tmp_path / "spill", (4,))
    archive = tmp_path / "archive"
    _write(archive, "b-old", "2026-05-01", files)
    _write(archive, "b-edge", "2026-05-15", files)
    _write(archive, "b-mid", "2026-08-01", files)
    fresh = archive / f"{PARTIAL}b-live-aaaaaa"  # a run writing now: kept
    stale = archive / f"{PARTIAL}b-dead-bbbbbb"  # a crashed run's, two days old: pruned
    fresh.mkdir()
    stale.mkdir()
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(stale, (two_days_ago, two_days_ago))

    assert prune(archive, ts("2026-05-15")) == ["b-old"]  # the edge day itself is kept
    assert sorted(p.name for p in archive.iterdir()) == [fresh.name, "b-edge", "b-mid"]

    # archiving a batch prunes by its own as-of minus monitor.archive_days
    run = ArchiveRun(archive, days=60, quarantine={"status is empty": 1}, rows_in=5)
    parts = [Spilled(files[0], np.zeros(4), np.zeros(4))]
    path = archive_published(
        parts, run, batch_id="b-new", as_of=ts("2026-09-01"), model_version="2"
    )
    assert path == archive / "b-new"
    assert [b.batch_id for b in read_archive(archive)] == ["b-mid", "b-new"]
    (newest,) = read_archive(archive, since=ts("2026-09-01"))
    assert newest.profile is None  # the partitions carried no counts: no reference
    assert newest.quarantine == {"status is empty": 1} and newest.rows_in == 5


def test_archiving_a_published_batch_never_fails_the_run(tmp_path: Path, caplog):
    files, _ = _parts(tmp_path / "spill", (4,))
    blocked = tmp_path / "a-file"  # archive_dir is a file: the batch is published anyway
    blocked.write_text("")
    run = ArchiveRun(blocked, days=30)
    parts = [Spilled(files[0], np.zeros(4), np.zeros(4))]
    with caplog.at_level(logging.WARNING, logger="leadscore.pipelines.archive"):
        assert (
            archive_published(parts, run, batch_id="b", as_of=ts("2026-09-01"), model_version="1")
            is None
        )
    assert "batch b published but not archived" in caplog.text


def test_quarantine_by_reason_counts_the_leads_rows_only():
    quarantine = pd.DataFrame(
        {
            "source": ["leads", "leads", "activities", "leads"],
            "row": [2, 5, 9, 7],
            "lead_id": ["a", "b", "c", "d"],
            "reason": ["status is empty", "lead_id is empty", "status is empty", "status is empty"],
        }
    )
    assert quarantine_by_reason(quarantine, "leads") == {
        "status is empty": 2,
        "lead_id is empty": 1,
    }
    assert quarantine_by_reason(quarantine.iloc[:0], "leads") == {}


def test_partition_counts_merge_to_the_whole_batch():
    rng = np.random.default_rng(3)
    X = pd.DataFrame(
        {
            "lead_id": [f"L{i}" for i in range(400)],
            "employees": rng.lognormal(3, 1, 400),
            "industry": rng.choice(["retail", "tech", "health"], 400),
        }
    )
    proba = rng.uniform(0, 1, 400)
    reference = reference_from_examples(
        X[["employees", "industry"]], proba, as_of=None, days=90, bins=5
    )
    model = SimpleNamespace(**{REFERENCE_ATTRIBUTE: reference.to_dict()})
    halves = [
        partition_counts(X.iloc[s], pd.DataFrame({"probability": proba[s]}), model)
        for s in (slice(0, 150), slice(150, 400))
    ]
    whole = batch_counts(X, proba, reference)
    parts = [Spilled(Path(f"p{i}"), np.zeros(1), np.zeros(1), c) for i, c in enumerate(halves)]
    merged = merged_counts(parts)
    assert merged is not None and merged.to_dict() == whole.to_dict()
    assert merged.rows == 400
    # a partition without counts (a champion trained without a reference): no profile
    assert merged_counts([*parts, Spilled(Path("p2"), np.zeros(1), np.zeros(1))]) is None
    no_reference = SimpleNamespace()
    assert partition_counts(X, pd.DataFrame({"probability": proba}), no_reference) is None


# --- the score flow on a small synthetic CRM ----------------------------------------------

BAD_STATUS = {3: None, 17: None, 40: "pending", 41: "pending", 42: "pending"}
"""Leads rows the contract refuses (position -> status): two empty, three unknown."""


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> tuple[Path, Any, Any]:
    """A project folder with a small CRM on disk (five leads refused by the contract) and a
    champion trained by the recipe with its reference attached, as the train flow does."""
    from leadscore.models import recipe
    from leadscore.pipelines.settings import load_settings
    from leadscore.pipelines.sources import load_crm
    from leadscore.synthetic import generate_crm, write_crm

    folder = tmp_path_factory.mktemp("archive-flow")
    crm = generate_crm(1200, seed=21)
    status = crm.leads["status"].astype(object).copy()
    for position, value in BAD_STATUS.items():
        status.iloc[position] = value
    write_crm(replace(crm, leads=crm.leads.assign(status=status)), folder / "data" / "synthetic")
    raw = yaml.safe_load((ROOT / "leadscore.yaml").read_text())
    raw["scoring"]["partition_rows"] = 40  # several partitions: their counts are merged
    raw["model"]["kind"] = "lightgbm"  # the configured family, unjudged: a third of the time
    raw["monitor"]["archive_dir"] = "archive"
    (folder / "leadscore.yaml").write_text(yaml.safe_dump(raw))
    settings = load_settings(folder / "leadscore.yaml")
    loaded = load_crm(settings)
    trained = recipe.train(loaded.leads, loaded.activities, loaded.end, settings)
    model = recipe.attach_reference(trained.model, trained.data, settings.monitor)
    return folder, settings, model


def _run_score_flow(folder: Path, model: Any, **patches: Any) -> dict[str, Any]:
    """``score_flow`` with ``model`` as the champion (version 4): no MLflow needed here."""
    from leadscore.pipelines import score_flow as module
    from leadscore.pipelines import tracking

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tracking, "configure", lambda _: None)
        patch.setattr(tracking, "load_champion", lambda _: (model, "4"))
        for name, value in patches.items():
            patch.setattr(module, name, value)
        return module.score_flow(str(folder / "leadscore.yaml"))


@pytest.fixture(scope="module")
def scored(project, prefect_harness) -> dict[str, Any]:
    folder, _, model = project
    return _run_score_flow(folder, model)


@pytest.mark.slow
def test_the_score_flow_archives_the_batch_it_published(project, scored):
    from leadscore.serving.store import ScoreStore

    folder, settings, model = project
    (batch,) = read_archive(folder / "archive")
    assert scored["archive"] == str(folder / "archive" / scored["batch_id"])
    assert batch.batch_id == scored["batch_id"]
    assert batch.as_of == pd.Timestamp(scored["as_of"])
    assert batch.model_version == "4"
    assert batch.rows_in == scored["leads_in"] == 1200

    store = ScoreStore(settings.store)
    published = store.read_batch(scored["batch_id"]).sort_values("lead_id", ignore_index=True)
    store.close()
    archived = batch.scores.sort_values("lead_id", ignore_index=True)
    assert len(archived) == len(published) == scored["scored"] > 3 * 40
    assert archived["lead_id"].tolist() == published["lead_id"].tolist()
    np.testing.assert_array_equal(
        archived["probability"], published["probability"].to_numpy(np.float32)
    )
    for column in ("grade", "rule_grade", "cell"):
        assert archived[column].tolist() == published[column].tolist()
    np.testing.assert_allclose(archived["rule_score"], published["rule_score"])

    # the quarantine by reason is the quarantine file's, leads rows only
    quarantine = pd.read_csv(settings.output.quarantine_csv)
    leads_rows = quarantine[quarantine["source"] == settings.data.leads.label]
    assert batch.quarantine == leads_rows["reason"].value_counts().to_dict()
    assert sum(batch.quarantine.values()) == scored["quarantined"] == len(BAD_STATUS)

    # the partitions' counts, merged, count every scored lead once per feature; the
    # prediction's are those of the published probabilities in the reference's bins
    counts = BatchCounts.from_dict(batch.profile)
    reference = ReferenceProfile.from_dict(getattr(model, REFERENCE_ATTRIBUTE))
    assert counts.rows == scored["scored"]
    assert list(counts.features) == [*model.input_columns_, PREDICTION]
    assert all(f.rows == scored["scored"] for f in counts.features.values())
    np.testing.assert_array_equal(
        counts.features[PREDICTION].counts,
        reference.prediction.count(published["probability"].to_numpy()),
    )


@pytest.mark.slow
def test_a_failed_score_run_archives_nothing(project, scored):
    from leadscore.pipelines.errors import ConservationError

    folder, _, model = project

    def broken(*_: Any) -> Any:
        def check(scored: int) -> None:
            raise ConservationError(f"lead conservation broken: {scored} scored")

        return check

    with pytest.raises(ConservationError):
        _run_score_flow(folder, model, conservation=broken)
    # still only the first run's batch, and no partial folder
    assert [p.name for p in (folder / "archive").iterdir()] == [scored["batch_id"]]


def test_the_reference_travels_in_the_champions_skops_file(project):
    import skops.io as sio

    from leadscore.pipelines.tracking import TRUSTED_TYPES

    _, settings, model = project
    kept = getattr(model, REFERENCE_ATTRIBUTE)
    assert isinstance(kept, dict)  # JSON-able: skops stores it with no type to trust
    loaded = sio.loads(sio.dumps(model), trusted=TRUSTED_TYPES)
    assert getattr(loaded, REFERENCE_ATTRIBUTE) == kept
    reference = ReferenceProfile.from_dict(kept)
    assert list(reference.features) == model.input_columns_
    assert reference.start is not None and reference.end is not None
    assert reference.end - reference.start <= pd.Timedelta(days=settings.monitor.reference_days)
    assert sum(reference.prediction.shares) == pytest.approx(1.0)


def test_the_archive_lists_its_batches_and_skips_the_ones_asked(tmp_path: Path):
    files, _ = _parts(tmp_path / "spill", (5,))
    archive = tmp_path / "archive"
    _write(archive, "b-old", "2026-11-20", files)
    _write(archive, "b-new", "2026-12-01", files)
    assert archived(archive) == {"b-old": ts("2026-11-20"), "b-new": ts("2026-12-01")}
    assert archived(archive, since=ts("2026-11-25")) == {"b-new": ts("2026-12-01")}
    assert [b.batch_id for b in read_archive(archive, skip={"b-old"})] == ["b-new"]
    assert archived(tmp_path / "nowhere") == {}
