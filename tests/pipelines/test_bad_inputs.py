"""The bad-input corpus: every malformed export in tests/corpus meets its expected answer.

Each case folder holds the input files as a user would hand them over (bytes and all)
and ``case.yaml``: what is wrong, the stage it reaches (load, train, score) and the
expected outcome: an error whose text matches, or the exact quarantine (source, row,
reason) with everything else clean. No lead may be lost: clean + quarantined = input.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from leadscore.features.builder import build_features
from leadscore.features.registry import build_registry
from leadscore.features.snapshots import LABEL, training_examples
from leadscore.models import training
from leadscore.models.scoring import score_frame
from leadscore.pipelines.settings import Settings
from leadscore.pipelines.sources import load_crm
from tests.conftest import ROOT

CORPUS = Path(__file__).parents[1] / "corpus"
CASES = sorted(p.name for p in CORPUS.iterdir() if (p / "case.yaml").is_file())
NOW = pd.Timestamp("2026-11-22", tz="UTC")


def _merge(base: dict, update: dict) -> dict:
    out = dict(base)
    for key, value in update.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and key in out else value
    return out


def _settings(folder: Path, spec: dict) -> Settings:
    return Settings.model_validate(case_config(folder, spec))


def case_config(folder: Path, spec: dict) -> dict:
    """The shipped config (as YAML data) over a case's files, with the case's overrides."""
    raw = yaml.safe_load((ROOT / "leadscore.yaml").read_text())
    acts = folder / "activities.csv"
    raw["data"] = _merge(
        {
            "leads": {"path": str(folder / "leads.csv")},
            "activities": {"path": str(acts)} if acts.is_file() else None,
            "validation": {"ranges": {"employees": [0, 1e7]}},
            "order": "none",
        },
        spec.get("data", {}),
    )
    raw["features"]["attributes"] = {"categorical": ["industry"], "numeric": ["employees"]}
    raw.pop("routing")  # the demo team routes by country and segment
    raw["rules"]["icp"] = {"industry": {"weight": 1, "values": {"software": 10}}}
    raw["rules"]["penalties"] = []
    return raw


def _load(settings: Settings, spec: dict) -> None:
    expect = spec["expect"]
    crm = load_crm(settings, now=NOW)
    quarantine = [
        [("leads" if Path(s).name.startswith("leads") else "activities"), int(r), reason]
        for s, r, reason in crm.quarantine[["source", "row", "reason"]].itertuples(index=False)
    ]
    assert quarantine == expect["quarantine"]
    assert len(crm.leads) == expect["clean_leads"]
    n_leads_quarantined = sum(1 for q in quarantine if q[0] == "leads")
    assert len(crm.leads) + n_leads_quarantined == crm.n_leads_in
    assert crm.unknown_activity_types == expect.get("unknown_types", 0)
    for note, count in expect.get("notes", {}).items():
        assert crm.notes.get(note) == count, (note, crm.notes)
    if "activities" in expect:
        assert crm.activities is not None and len(crm.activities) == expect["activities"]
    leads = crm.leads.set_index("lead_id")
    for lead, stamp in expect.get("created_at_utc", {}).items():
        assert leads.loc[lead, "created_at"] == pd.Timestamp(stamp)
    for lead, values in expect.get("value", {}).items():
        for column, value in values.items():
            assert leads.loc[lead, column] == value
    if "statuses" in expect:
        assert crm.leads["status"].value_counts().to_dict() == expect["statuses"]


def _fit(settings: Settings):
    crm = load_crm(settings, now=NOW)
    snaps, _ = training_examples(
        crm.leads, crm.end, settings.snapshots, has_activity_log=False, order="none"
    )
    X = build_features(crm.leads, None, snaps.rows, settings.features)
    registry = build_registry(settings.features, behaviour=False)
    model = training.fit_model(X, snaps.rows[LABEL].to_numpy(), registry, settings.model)
    return crm, X, registry, model


def _score(settings: Settings, spec: dict) -> None:
    expect = spec["expect"]
    crm, X, registry, model = _fit(settings)
    rules = training.fit_rules(X, None, settings.rules, {})
    scores = score_frame(X, model, rules, registry, settings.scoring, crm.leads)
    assert len(scores) == expect["scored"]
    column = expect["same_as_missing"]
    unseen = model.predict_proba(X.assign(**{column: "never-seen-in-training"}))
    missing = model.predict_proba(X.assign(**{column: None}))
    np.testing.assert_allclose(unseen, missing)


@pytest.mark.parametrize("name", CASES)
def test_bad_input(name: str):
    folder = CORPUS / name
    spec = yaml.safe_load((folder / "case.yaml").read_text(encoding="utf-8"))
    settings = _settings(folder, spec)
    expect = spec["expect"]
    run = {"load": _load, "train": lambda s, _: _fit(s), "score": _score}[spec["stage"]]
    if "error" in expect:
        with pytest.raises(Exception, match=expect["error"]):
            run(settings, spec)
    else:
        run(settings, spec)


def test_the_corpus_covers_at_least_25_cases():
    assert len(CASES) >= 25


LOAD_QUARANTINE_CASES = [
    name
    for name in CASES
    if (spec := yaml.safe_load((CORPUS / name / "case.yaml").read_text(encoding="utf-8")))["stage"]
    == "load"
    and "error" not in spec["expect"]
]


@pytest.mark.parametrize("name", LOAD_QUARANTINE_CASES)
def test_the_nightly_chunked_read_meets_the_same_outcome(name: str, tmp_path: Path):
    """The score flow's reader (``stream_crm``, 3 rows a chunk so every case spans
    chunks) quarantines exactly what the whole-file load does, and loses nothing."""
    from leadscore.pipelines.partitioned import stream_crm

    folder = CORPUS / name
    spec = yaml.safe_load((folder / "case.yaml").read_text(encoding="utf-8"))
    settings = _settings(folder, spec)
    settings = settings.model_copy(
        update={"data": settings.data.model_copy(update={"chunk_rows": 3})}
    )
    whole = load_crm(settings, now=NOW)
    streamed = stream_crm(settings, tmp_path, now=NOW)
    key = ["source", "row", "reason"]
    assert sorted(map(tuple, streamed.quarantine[key].astype(str).to_numpy())) == sorted(
        map(tuple, whole.quarantine[key].astype(str).to_numpy())
    )
    assert streamed.n_clean_leads == len(whole.leads) == spec["expect"]["clean_leads"]
    open_whole = whole.leads[whole.leads["status"] == "open"]["lead_id"]
    if whole.activities is not None:
        spilled = sum(len(p.load().activities) for p in streamed.parts)
        assert spilled == int(whole.activities["lead_id"].isin(open_whole).sum())


def test_an_encoding_error_is_placed_in_the_file_past_the_first_megabyte(tmp_path: Path):
    """The byte's line, column and offset in the file, a valid character split across
    read blocks notwithstanding (pandas names a position inside its buffer)."""
    from leadscore.pipelines.settings import SourceConfig
    from leadscore.pipelines.sources import read_table

    header = b"lead_id,created_at,status,closed_at,industry,employees\n"
    row = b"L%06d,2026-01-01T09:00:00Z,open,,software,10\n"
    body = bytearray(header)
    while len(body) < (1 << 20) - 30:
        body += row % (len(body) // 50)
    body += b"L999998,2026-01-01T09:00:00Z,open,,"
    body += b"x" * ((1 << 20) - len(body) - 1) + "é".encode() + b",10\n"  # split at 1 MiB
    lines_before = body.count(b"\n")
    offset = len(body) + len(b"L999999,2026-01-01T09:00:00Z,open,,Caf")
    body += b"L999999,2026-01-01T09:00:00Z,open,,Caf\xe9,10\n"
    path = tmp_path / "leads.csv"
    path.write_bytes(bytes(body))
    with pytest.raises(Exception) as error:
        read_table(SourceConfig(path=path))
    assert str(error.value) == (
        f"{path}: line {lines_before + 1}, column 39 (byte {offset} of the file, 0xe9) is not "
        "valid utf-8 text; set the source's csv.encoding (e.g. latin-1 or cp1252); the text "
        "before it is valid utf-8 with non-ASCII characters, so the file mixes encodings"
    )
