"""Bench inputs: a large "all leads open" CRM and a model trained on a separate CRM.

Open leads: the embedded synthetic CRM (``leadscore.synthetic.generate_crm``) is generated
in chunks of ``CHUNK_LEADS`` leads (distinct seeds, lead ids prefixed per chunk so they
stay unique) and every lead is *treated as open* (status ``open``, no ``closed_at``), so
a run with N leads scores N leads with their whole activity log (~27 activities per lead).
Nothing is duplicated: every lead and activity is drawn, so rows are as distinct as in a
real CRM and de-duplication tricks cannot look better than they are. Chunks are written
as Parquet row groups, so generation memory stays bounded whatever N is.

Training: the model is fitted exactly as ``train_flow`` does (the training recipe,
``models.recipe``: snapshots, out-of-time split, fitted model) on its own CRM of
``train_leads`` leads, with the monitor's reference attached (so the batch counts its
drift, as the nightly run does), and pickled under the cache folder with its validation AUC.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from leadscore.features.snapshots import Split
from leadscore.models import recipe
from leadscore.models.config import LightGBMParams
from leadscore.models.evaluate import evaluate
from leadscore.pipelines.settings import Settings, load_settings
from leadscore.pipelines.sources import load_crm
from leadscore.synthetic import generate_crm, write_crm

CHUNK_LEADS = 100_000
"""Leads generated per chunk (bounds the generator's memory)."""


@dataclass(frozen=True)
class BenchData:
    """Paths of a cached open-leads CRM and its size."""

    leads: Path
    activities: Path
    n_leads: int
    n_activities: int


def _chunk_tables(chunk: int, size: int, seed: int) -> tuple[pa.Table, pa.Table]:
    """Chunk ``chunk`` of every open-leads set with this seed: ``size`` leads and their
    activities, drawn with seed ``seed + chunk`` and ids prefixed ``B<chunk>-``."""
    crm = generate_crm(size, seed=seed + chunk)
    prefix = f"B{chunk:03d}-"
    leads = crm.leads.assign(
        lead_id=prefix + crm.leads["lead_id"].astype(str),
        status="open",
        closed_at=pd.Series(pd.NaT, index=crm.leads.index, dtype=crm.leads["closed_at"].dtype),
    )
    acts = crm.activities.assign(lead_id=prefix + crm.activities["lead_id"].astype(str))
    return (
        pa.Table.from_pandas(leads, preserve_index=False),
        pa.Table.from_pandas(acts, preserve_index=False),
    )


def chunk_files(out_dir: Path, chunk: int, size: int, seed: int) -> tuple[Path, Path]:
    """Chunk ``chunk``'s two Parquet files, generated once and shared by every set size
    (written under a temporary name, then renamed, leads last: a killed run leaves no
    half chunk, and the next run resumes at the first missing one)."""
    folder = out_dir / f"chunks-s{seed}"
    leads, acts = (
        folder / f"leads-{chunk:04d}-{size}.parquet",
        folder / f"acts-{chunk:04d}-{size}.parquet",
    )
    if leads.is_file() and acts.is_file():
        return leads, acts
    folder.mkdir(parents=True, exist_ok=True)
    lt, at = _chunk_tables(chunk, size, seed)
    for table, path in ((at, acts), (lt, leads)):
        pq.write_table(table, path.with_suffix(".tmp"))
        path.with_suffix(".tmp").rename(path)
    return leads, acts


def _complete_prefix(out_dir: Path, n_leads: int, seed: int) -> tuple[Path | None, int]:
    """The largest complete cached set of whole chunks below ``n_leads`` (same seed): its
    folder and its number of chunks, which a larger set starts with (chunk i is the same
    in every size)."""
    best: tuple[Path | None, int] = (None, 0)
    for meta in out_dir.glob(f"open-*-s{seed}/meta.json"):
        size = int(meta.parent.name.split("-")[1])
        if size < n_leads and size % CHUNK_LEADS == 0 and size // CHUNK_LEADS > best[1]:
            best = (meta.parent, size // CHUNK_LEADS)
    return best


def _row_groups(path: Path) -> Iterator[pa.Table]:
    """A Parquet file's row groups, one at a time."""
    file = pq.ParquetFile(path)
    for i in range(file.num_row_groups):
        yield file.read_row_group(i)


def open_crm(n_leads: int, out_dir: Path, seed: int = 1000) -> BenchData:
    """Write (or reuse) ``n_leads`` open leads and their activities under ``out_dir``.

    Chunk i of every size is the same draw, so a set starts with the largest complete
    smaller set (copied) and generates only its other chunks, each cached on its own
    (``chunk_files``: resumable, and ``python -m bench.data --chunks A:B`` makes a range
    ahead, e.g. in a second process); the set is then one Parquet file per table.
    """
    folder = out_dir / f"open-{n_leads}-s{seed}"
    meta_file = folder / "meta.json"
    leads_path, acts_path = folder / "leads.parquet", folder / "activities.parquet"
    if meta_file.is_file():
        meta = json.loads(meta_file.read_text())
        return BenchData(leads_path, acts_path, meta["leads"], meta["activities"])
    prefix, first = _complete_prefix(out_dir, n_leads, seed)
    chunks = [
        chunk_files(out_dir, c, min(CHUNK_LEADS, n_leads - start), seed)
        for c, start in enumerate(range(0, n_leads, CHUNK_LEADS))
        if c >= first
    ]
    folder.mkdir(parents=True, exist_ok=True)
    sources = [(prefix / "leads.parquet", prefix / "activities.parquet")] if prefix else []
    writers: dict[Path, pq.ParquetWriter] = {}
    n_acts = 0
    try:
        for leads, acts in [*sources, *chunks]:
            for source, target in ((leads, leads_path), (acts, acts_path)):
                for table in _row_groups(source):
                    if target not in writers:
                        writers[target] = pq.ParquetWriter(target, table.schema)
                    writers[target].write_table(table)
                    n_acts += table.num_rows if target == acts_path else 0
    finally:
        for writer in writers.values():
            writer.close()
    meta_file.write_text(json.dumps({"leads": n_leads, "activities": n_acts}))
    return BenchData(leads_path, acts_path, n_leads, n_acts)


def main(argv: list[str] | None = None) -> None:
    """``python -m bench.data --leads N [--chunks A:B]``: make the set of N open leads, or
    only its chunks A to B-1 (to generate a large set in several processes, or ahead)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--leads", type=int, required=True)
    parser.add_argument("--chunks", default=None, help="A:B, only these chunks' files")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    parser.add_argument("--seed", type=int, default=1000)
    args = parser.parse_args(argv)
    if args.chunks is None:
        print(open_crm(args.leads, args.out.resolve(), args.seed))
        return
    low, high = (int(x) for x in args.chunks.split(":"))
    for chunk in range(low, min(high, -(-args.leads // CHUNK_LEADS))):
        size = min(CHUNK_LEADS, args.leads - chunk * CHUNK_LEADS)
        print(chunk_files(args.out.resolve(), chunk, size, args.seed)[0], flush=True)


def bench_settings(config: Path, leads: Path, activities: Path, out_dir: Path) -> Settings:
    """The project settings with the data (and store) pointed at bench files; the columns
    shown beside a score (data.display) as the config says."""
    display = load_settings(config).data.display.model_dump()
    return load_settings(
        config,
        data={
            "leads": {"path": str(leads)},
            "activities": {"path": str(activities)},
            "display": display,
        },
        store={"url": f"sqlite:///{out_dir / 'scores.db'}", "keep_batches": 2},
    )


def training_examples(
    config: Path, train_leads: int, out_dir: Path, seed: int
) -> tuple[Settings, recipe.TrainingData]:
    """The training recipe's examples (``models.recipe.examples``) of a fresh training CRM."""
    folder = out_dir / f"train-{train_leads}-s{seed}"
    paths = write_crm(generate_crm(train_leads, seed=seed), folder)
    settings = bench_settings(config, paths["leads"], paths["activities"], folder)
    crm = load_crm(settings)
    return settings, recipe.examples(crm.leads, crm.activities, crm.end, settings)


def training_frames(
    config: Path, train_leads: int, out_dir: Path, seed: int
) -> tuple[Settings, pd.DataFrame, np.ndarray, Split]:
    """Snapshot features and labels of a fresh training CRM, plus its out-of-time split."""
    settings, data = training_examples(config, train_leads, out_dir, seed)
    return settings, data.X, data.y, data.split


def train_in_child(config: Path, train_leads: int, out: Path) -> None:
    """Fit (or find cached) the bench model (:func:`trained_model`) in a child process,
    so that the bench's own peak memory does not count the training's."""
    code = (
        "from pathlib import Path; from bench.data import trained_model; "
        f"trained_model(Path({str(config)!r}), {train_leads}, Path({str(out)!r}))"
    )
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)


def trained_model(
    config: Path, train_leads: int, out_dir: Path, seed: int = 7, **lgbm_overrides: Any
) -> tuple[Any, float]:
    """Fit (or reuse) the model the bench scores with; returns (model, validation AUC).

    ``lgbm_overrides`` replace LightGBM parameters of the config (model-shape studies).
    """
    settings = load_settings(config)
    lgbm = {**settings.model.lightgbm.model_dump(), **lgbm_overrides}
    model_settings = {**settings.model.model_dump(mode="json"), "lightgbm": lgbm}
    model_settings["monitor_reference"] = True  # models since #17 carry one (key changed)
    key = hashlib.sha1(json.dumps(model_settings, sort_keys=True).encode()).hexdigest()[:8]
    path = out_dir / f"model-{train_leads}-s{seed}-{key}.pkl"
    if path.is_file():
        return pickle.loads(path.read_bytes())
    settings, data = training_examples(config, train_leads, out_dir, seed)
    model_config = settings.model.model_copy(
        update={"lightgbm": LightGBMParams.model_validate(lgbm)}
    )
    model = recipe.attach_reference(recipe.fit_model(data, model_config), data, settings.monitor)
    valid = data.X_valid
    auc = evaluate(data.y_valid, model.raw_score(valid), model.predict_proba(valid)[:, 1])
    result = (model, float(auc["roc_auc"]))
    out_dir.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(result))
    return result


if __name__ == "__main__":
    main()
