"""The report's header: which run, which model version, which data, where to look in MLflow.

Pure: the train flow gives the run id, experiment id and registered version it got from
MLflow (``RunHeader``) and the snapshot rows and split the model learnt and was validated
on (``window_dates``); this module words them and builds the MLflow UI address. A local
store (sqlite, a folder, a database) is browsed with ``mlflow ui`` at its default address
http://127.0.0.1:5000; a tracking server is linked directly. The addresses are plain
links (``<a href>``): the page fetches nothing itself and opens offline.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from leadscore.features.builder import AS_OF
from leadscore.features.snapshots import Split
from leadscore.models.report.glossary import in_words

UI_ADDRESS = "http://127.0.0.1:5000"
"""Where ``mlflow ui`` listens by default."""


@dataclass(frozen=True)
class RunHeader:
    """What the train flow knows of the run once it is logged and its model registered."""

    run_id: str | None = None
    experiment_id: str | None = None
    model_name: str | None = None
    model_version: str | None = None
    promotion: str | None = None
    tracking_uri: str | None = None
    dates: Mapping[str, str] | None = None


def _day(value: object) -> str:
    stamp = pd.Timestamp(value)
    if pd.isna(stamp):
        return "?"
    return stamp.strftime("%Y-%m-%d")


def _span(as_of: pd.Series, n: int) -> str:
    dated = pd.to_datetime(as_of, utc=True).dropna()
    if not len(dated):
        return f"{n:,} examples (no dates)"
    return f"leads as of {_day(dated.min())} to {_day(dated.max())} ({n:,} examples)"


def window_dates(
    rows: pd.DataFrame, split: Split, data_end: object, horizon_days: int
) -> dict[str, str]:
    """The data window in words: training and validation as-of dates, the data's end."""
    times = rows[AS_OF] if AS_OF in rows else pd.Series(pd.NaT, index=rows.index)
    train = times.iloc[np.asarray(split.train, dtype=np.int64)]
    valid = times.iloc[np.asarray(split.valid, dtype=np.int64)]
    dated = pd.to_datetime(times, utc=True).notna().any()
    return {
        "training data": _span(train, len(train)),
        "validation data": _span(valid, len(valid))
        + (f", outcomes followed {horizon_days} days" if dated else ""),
        "data as of": _day(data_end) if pd.notna(pd.Timestamp(data_end)) else "no dates",
    }


def is_server(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def ui_base(uri: str | None) -> str | None:
    """The MLflow UI address of a tracking URI (None: Databricks or nothing to browse)."""
    if not uri or uri.startswith("databricks"):
        return None
    return uri.rstrip("/") if is_server(uri) else UI_ADDRESS


def run_url(header: RunHeader) -> str | None:
    base = ui_base(header.tracking_uri)
    if base is None or not header.run_id or header.experiment_id is None:
        return None
    return f"{base}/#/experiments/{header.experiment_id}/runs/{header.run_id}"


def model_url(header: RunHeader) -> str | None:
    base = ui_base(header.tracking_uri)
    if base is None or not header.model_name or not header.model_version:
        return None
    return f"{base}/#/models/{header.model_name}/versions/{header.model_version}"


def ui_command(uri: str | None) -> str | None:
    """The command that serves a local store's runs (None for a tracking server)."""
    if not uri or is_server(uri) or uri.startswith("databricks"):
        return None
    return f"mlflow ui --backend-store-uri {uri}"


def _code(text: str) -> str:
    return f"<code>{html.escape(text)}</code>"


def _link(url: str) -> str:
    """A link to an MLflow page (opened by the reader; the report never fetches it)."""
    return f'<a href="{html.escape(url)}" rel="noopener noreferrer">{html.escape(url)}</a>'


def header_rows(header: RunHeader | None) -> list[tuple[str, str]]:
    """(label, HTML value) rows of the header table, most useful first."""
    header = header or RunHeader()
    rows: list[tuple[str, str]] = []
    if header.run_id:
        rows.append(("MLflow run", _code(header.run_id)))
    else:
        rows.append(("MLflow run", "not logged (this report was rendered outside a training run)"))
    if header.model_name and header.model_version:
        model = f"{html.escape(header.model_name)} version {html.escape(header.model_version)}"
        if header.promotion:
            model += f" ({html.escape(in_words(header.promotion))})"
    else:
        model = "not registered"
    rows.append(("model", model))
    rows.extend((k, html.escape(v)) for k, v in (header.dates or {}).items())
    links = [f"run: {_link(url)}" for url in [run_url(header)] if url] + [
        f"model version: {_link(url)}" for url in [model_url(header)] if url
    ]
    command = ui_command(header.tracking_uri)
    if links:
        where = "<br>".join(links)
        if command:
            where = f"start {_code(command)}, then open<br>{where}"
        rows.append(("open in MLflow", where))
    return rows
