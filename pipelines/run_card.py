"""What a training run is called and says in MLflow: its name, its description and the
data it was trained and validated on.

MLflow's own names (``bustling-owl-42``) tell a person nothing in a list of runs, so a
training run is named by what it did, when and on what data
(``train 2026-12-06 10:15 lightgbm_regularised on leads.parquet, 20k leads to 2026-11-30``),
carries a description (the ``mlflow.note.content`` tag MLflow shows on the run's page) with
its headline figures, and logs its training and validation examples through MLflow's
dataset API (``mlflow.data.from_pandas`` + ``mlflow.log_input``): name, source, digest,
schema and row count, never the rows themselves.

The name and the description are plain functions of the run's figures (tested without
MLflow); :func:`log_datasets` is the one call into MLflow.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from leadscore.models.recipe import TrainingData
    from leadscore.pipelines.settings import DataConfig, SourceConfig
    from leadscore.pipelines.sources import CRMData

TARGET = "converted"
"""Column the logged examples carry their label in (1 = converted within the horizon)."""


@dataclass(frozen=True)
class RunData:
    """The examples a training run learnt from and was validated on, and where they came
    from: what the run's name, description and dataset inputs are made of."""

    X_train: pd.DataFrame
    y_train: np.ndarray
    X_valid: pd.DataFrame
    y_valid: np.ndarray
    source: str
    """The leads' file (path) or query (``sql: <query>``): the dataset source."""
    n_leads: int
    """Clean leads read (those the examples were cut from)."""
    data_end: pd.Timestamp
    """The newest timestamp in the data: what "as of" the run learnt."""
    split: str = ""
    """The split's kind (``out_of_time``...)."""
    activities: str | None = None
    """The activity log's file or query, if the leads have one."""


def source_text(source: SourceConfig) -> str:
    """A source as the run names it: its path, or ``sql: <query>`` (never the URL)."""
    return f"sql: {source.sql.query}" if source.sql is not None else str(source.path)


def run_data(data: TrainingData, crm: CRMData, sources: DataConfig) -> RunData:
    """The run's examples and their origin, from the train flow's data."""
    return RunData(
        X_train=data.X_train,
        y_train=data.y_train,
        X_valid=data.X_valid,
        y_valid=data.y_valid,
        source=source_text(sources.leads),
        n_leads=len(crm.leads),
        data_end=crm.end,
        split=data.split.kind,
        activities=None
        if crm.flat or sources.activities is None
        else source_text(sources.activities),
    )


def count_words(n: int) -> str:
    """A count as a person says it in a title: 950, 9.2k, 20k, 1.2M."""
    if n < 1000:
        return str(n)
    if n < 10_000:
        return f"{n / 1000:.1f}".rstrip("0").rstrip(".") + "k"
    if n < 1_000_000:
        return f"{n / 1000:.0f}k"
    return f"{n / 1_000_000:.1f}".rstrip("0").rstrip(".") + "M"


def source_label(source: str) -> str:
    """The short name of a source in a run name: the file's name, or ``sql``."""
    return "sql" if source.startswith("sql:") else Path(source).name


def data_end_words(data: RunData, prefix: str) -> str:
    """``<prefix><data end as a date>``, or nothing for data without dates (a flat export
    in file order has no data end)."""
    return "" if pd.isna(data.data_end) else f"{prefix}{data.data_end:%Y-%m-%d}"


def run_name(family: str, data: RunData, when: pd.Timestamp) -> str:
    """``train <when> <model family> on <source>, <N> leads to <data end>``."""
    return (
        f"train {when:%Y-%m-%d %H:%M} {family} on {source_label(data.source)}, "
        f"{count_words(data.n_leads)} leads{data_end_words(data, ' to ')}"
    )


def _figure(metrics: Mapping[str, Any], side: str, key: str) -> float | None:
    value = (metrics.get(side) or {}).get(key)
    return None if value is None or value != value else float(value)


def run_description(
    family: str,
    data: RunData,
    metrics: Mapping[str, Any],
    version: str | None,
    promoted: bool,
    promotion: str,
) -> str:
    """The run's description (Markdown, MLflow's ``mlflow.note.content``): what it did,
    on which examples, its headline figures against the rules, and the gate's verdict."""
    log = f" and their activity log `{data.activities}`" if data.activities else ""
    dated = data_end_words(data, " (data to ")
    lines = [
        f"Trained a **{family}** model on {len(data.y_train):,} examples "
        f"({int(np.sum(data.y_train)):,} conversions) cut from {data.n_leads:,} leads of "
        f"`{data.source}`{log}{dated}{')' if dated else ''}; validated on "
        f"{len(data.y_valid):,} examples ({int(np.sum(data.y_valid)):,} conversions)"
        + (f", {data.split} split." if data.split else "."),
        "",
    ]
    rows = (
        ("ROC-AUC (ranking, 0.5 = chance)", "roc_auc", "{:.4f}"),
        ("PR-AUC (precision over recall)", "pr_auc", "{:.4f}"),
        ("conversions reached calling the top 10%", "capture_top10", "{:.0%}"),
        ("calibration error (ECE, lower is better)", "ece", "{:.4f}"),
    )
    table = ["| figure | model | rules |", "|---|---|---|"]
    for label, key, fmt in rows:
        model, rules = _figure(metrics, "model", key), _figure(metrics, "rules", key)
        if model is None:
            continue
        table.append(
            f"| {label} | {fmt.format(model)} | {'-' if rules is None else fmt.format(rules)} |"
        )
    lines += table if len(table) > 2 else []
    verdict = "promoted to champion" if promoted else "not promoted"
    named = f"Registered as version {version}, " if version else ""
    lines += ["", f"{named}{verdict}: {promotion}"]
    return "\n".join(lines)


SCHEMA_ROWS = 2000
"""Rows the logged datasets' column types are read from (the digest reads every row)."""


def frame_digest(frame: pd.DataFrame) -> str:
    """A content digest of every row and column (MLflow's own hashes only the first
    rows): 8 hex characters of an MD5 over pandas' row hashes, the length and the columns."""
    digest = hashlib.md5(usedforsecurity=False)
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    digest.update(str(len(frame)).encode())
    digest.update("\x1f".join(map(str, frame.columns)).encode())
    return digest.hexdigest()[:8]


def labelled(X: pd.DataFrame, y: np.ndarray) -> pd.DataFrame:
    """The examples with their label as column :data:`TARGET`."""
    return X.reset_index(drop=True).assign(**{TARGET: np.asarray(y).astype("int8")})


def dataset_source(source: str) -> Any:
    """MLflow's source of a file (its path) or of a query (a ``code`` source tagged with
    the query; the database URL, which may hold a password, is not logged)."""
    if source.startswith("sql:"):
        from mlflow.data.code_dataset_source import CodeDatasetSource

        return CodeDatasetSource({"sql": source.removeprefix("sql:").strip()})
    return source


def log_datasets(data: RunData) -> None:
    """Log the training and validation examples as the active run's dataset inputs
    (contexts ``training`` and ``validation``): name, source, digest, schema and row
    count; MLflow stores no row of them."""
    import mlflow

    stem = Path(source_label(data.source)).stem or "leads"
    source = dataset_source(data.source)
    for context, X, y in (
        ("training", data.X_train, data.y_train),
        ("validation", data.X_valid, data.y_valid),
    ):
        frame = labelled(X, y)
        with warnings.catch_warnings():  # a path reads as two kinds of local source; and
            warnings.simplefilter("ignore", UserWarning)  # int columns' "missing values" hint
            dataset = mlflow.data.from_pandas(
                frame,
                source=source,
                targets=TARGET,
                name=f"{stem}-{context}",
                digest=frame_digest(frame),
            )
            # MLflow infers the schema over every row (6 s per 60k examples, linear):
            # the columns' types read the same from a slice
            dataset.__dict__["schema"] = mlflow.models.infer_signature(
                frame.head(SCHEMA_ROWS)
            ).inputs
            mlflow.log_input(dataset, context=context)
