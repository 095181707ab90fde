"""CSV export of a scoring batch, for CRM imports and spreadsheets.

The file is UTF-8 (no byte-order mark), comma-separated, one header row, one row per
lead, sorted by rank, with the columns below in this order (:data:`EXPORT_COLUMNS`).
Map each onto a CRM custom field of the type given:

``lead_id`` (text, key)
    The lead's id in the source CRM; match imports on it. Read it as text: ids such as
    ``00042`` would lose their zeros as numbers (``pd.read_csv(..., dtype={"lead_id": str})``).
``score`` (number, 0-100)
    Calibrated probability scaled to 0-100 and rounded; the field to sort and filter on.
``grade`` (picklist: A, B, C, D)
    Band of ``score`` from the configured cutoffs; A is best.
``probability`` (number, 0-1, full precision)
    Calibrated probability that the lead converts within the model's horizon.
``rank`` (number, 1 = best)
    Position among the open leads of this batch.
``percentile`` (number, 0-100, 100 = best)
    Share of open leads in this batch scoring at or below this lead.
``fit`` (number)
    Model sub-score from profile / ICP attributes (sum of their contributions).
``engagement`` (number)
    Model sub-score from behaviour (sum of activity contributions).
``rule_score`` (number)
    The rule-based baseline's score, kept side by side with the model's.
``rule_grade`` (picklist)
    The rule-based baseline's grade.
``reasons_text`` (long text)
    Human-readable reasons, strongest first, separated by ``"; "``; each ends in
    ``(+)`` if it raised the score or ``(-)`` if it lowered it. The markers are at
    the end so that no cell starts with ``+``, ``-`` or ``=`` and is read as a
    spreadsheet formula.
``reasons`` (long text, JSON)
    The same reasons, machine-readable: a JSON array of objects
    ``{"feature", "text", "direction": "+"|"-", "contribution"}``.
``owner`` (text)
    Lead owner as given in the source data; empty if none.
``segment`` (text)
    Lead segment as given in the source data; empty if none.
``model_version`` (text)
    Version of the model that produced the scores (for audits and rollbacks).
``batch_id`` (text)
    Scoring batch the row belongs to, e.g. ``20261122T031500Z-a1b2c3``.
``scored_at`` (date-time, ISO 8601 UTC, e.g. ``2026-11-22T03:15:00Z``)
    The point in time the features were computed as of.

The file is written atomically (temporary file in the same folder, then
``os.replace``), so a CRM job picking it up never reads a half-written export.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from leadscore.models import reasons as reasons_codec
from leadscore.models.schema import EXPORT_COLUMNS as _EXPORT_COLUMNS
from leadscore.models.schema import REASONS_TEXT
from leadscore.serving.files import atomic_writer

EXPORT_COLUMNS: list[str] = list(_EXPORT_COLUMNS)
"""Columns of the CSV export, in file order (declared in models/schema.py, documented in
this module's docstring)."""

_DERIVED = {REASONS_TEXT}


def reasons_text(reasons: str | None) -> str:
    """Render a ``reasons`` JSON array as one line: ``"text (+); text (-)"``.

    Raises ValueError if the value is not a JSON array of objects with a ``text`` key.
    """
    return reasons_codec.as_text(reasons)


def export_frame(scores: pd.DataFrame) -> pd.DataFrame:
    """Return the frame exactly as it is written: :data:`EXPORT_COLUMNS`, sorted by rank.

    ``scores`` is a frame from ``ScoreStore.read_batch`` (score columns plus
    ``batch_id``, ``model_version``, ``scored_at``). The input is not modified.
    """
    missing = [c for c in EXPORT_COLUMNS if c not in scores.columns and c not in _DERIVED]
    if missing:
        raise ValueError(f"cannot export scores: missing column(s) {missing}")
    frame = scores.sort_values(["rank", "lead_id"], kind="stable").reset_index(drop=True)
    if "reasons_text" in frame.columns:  # rendered when scored (the nightly batch)
        return _stamped(frame)
    rendered: list[str] = []
    for lead_id, raw in zip(frame["lead_id"], frame["reasons"], strict=True):
        try:
            rendered.append(reasons_text(raw))
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"column 'reasons' is not a JSON array of reasons for lead_id {lead_id!r}: {exc}"
            ) from exc
    frame["reasons_text"] = rendered
    return _stamped(frame)


def _stamped(frame: pd.DataFrame) -> pd.DataFrame:
    """The export columns, ``scored_at`` written as ISO 8601 UTC."""
    frame = frame.loc[:, EXPORT_COLUMNS]
    scored_at = pd.to_datetime(frame["scored_at"], utc=True)
    return frame.assign(scored_at=scored_at.dt.strftime("%Y-%m-%dT%H:%M:%SZ"))


def write_scores_csv(scores: pd.DataFrame, path: Path) -> Path:
    """Write ``scores`` as the documented CSV at ``path``, atomically; return ``path``."""
    return write_csv_atomic(export_frame(scores), path)


def write_scores_jsonl(scores: pd.DataFrame, path: Path) -> Path:
    """The export's columns, one JSON object per lead, ``reasons`` as a JSON array; the
    file is replaced atomically."""
    with atomic_writer(path, text=True) as handle:
        for row in export_frame(scores).to_dict(orient="records"):
            row["reasons"] = reasons_codec.decode(row["reasons"])
            clean = {k: (None if v != v else v) for k, v in row.items()}  # NaN -> null
            handle.write(json.dumps(clean, ensure_ascii=False) + "\n")
    return path


def write_csv_atomic(frame: pd.DataFrame, path: Path) -> Path:
    """Write ``frame`` as CSV at ``path`` so readers see the old file or the new, never half.

    See :func:`write_csv_chunks_atomic`.
    """
    return write_csv_chunks_atomic([frame], path)


def write_csv_chunks_atomic(chunks: Iterable[pd.DataFrame], path: Path) -> Path:
    """Write consecutive frames (same columns) as one CSV at ``path``, atomically.

    The rows go through :func:`serving.files.atomic_writer` (temporary file in the
    target folder, fsync, ``os.replace``); a failure (also one raised by the chunk
    iterator) leaves no temporary file behind and the old file in place. The writer is
    Arrow's (~4x pandas' ``to_csv``): text is always quoted, numbers never; an empty
    input writes nothing but a header of no columns, so callers pass at least one frame.
    """
    with atomic_writer(path) as handle:
        writer: pa_csv.CSVWriter | None = None
        schema: pa.Schema | None = None
        for frame in chunks:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if schema is None:  # all-null columns are text columns with no value yet
                schema = pa.schema(
                    f.with_type(pa.string()) if pa.types.is_null(f.type) else f
                    for f in table.schema
                ).remove_metadata()
                writer = pa_csv.CSVWriter(handle, schema)
            assert writer is not None
            writer.write_table(table.cast(schema))
        if writer is not None:
            writer.close()
    return Path(path)
