"""CSV export of a scoring batch, for CRM imports and spreadsheets.

The file is UTF-8 (with a byte-order mark only if ``output.csv_bom`` asks: Excel then
reads accents right), comma-separated, one header row, one row per lead, sorted by rank,
with the columns of :data:`EXPORT_COLUMNS` in their order. The columns, what each holds
and the HubSpot / Salesforce property types to create for them are declared once in
``serving/export_fields.py`` and listed in docs/crm-import.md with the import steps.
In short: the CRM's own ``record_id`` and ``email`` to match on (when ``data.display``
maps them), the score, grade, quadrant ``cell``, fit and engagement on 0-100, the three
strongest reasons as text (``reason_1``..``reason_3``, ``"text (+)"``), the probability
rounded to 4 places, and no JSON: the API and ``leadscore export --format jsonl`` carry
every reason in full.

The file is written atomically (temporary file in the same folder, then
``os.replace``), so a CRM job picking it up never reads a half-written export.

**Safe to open in a spreadsheet** (OWASP "CSV Injection"): every CSV leadscore writes
(this export, the quarantine) quotes each text cell and doubles the double quotes inside,
so a comma, quote or line break inside a value stays in its cell; and a text cell that a
spreadsheet would run as a formula (first character ``=``, ``+``, ``-``, ``@``, their
full-width forms, or a tab, carriage return, line feed or NUL; also after leading spaces)
gets a single quote ``'`` in front: ``=cmd|' /C calc'!A0`` is written
``'=cmd|' /C calc'!A0`` and opens as that text. So does a formula start right after a
``,``, ``;``, tab or line break *inside* a value, where a spreadsheet that splits on
another separator (Excel splits on ``;`` in many locales) would start a cell:
``a;=1+1`` is written ``a;'=1+1``. Number columns are written as numbers and never
touched (a negative ``rule_score`` stays ``-4.5``), and so is a text cell that is a plain
number (``-42``, which a spreadsheet reads as a number, not a formula). The JSON outputs
(``leadscore export --format jsonl``, the API) carry the values exactly.

**Which batch the file holds**: every row names it (``batch_id``). The store is made
current before the file is written, so a run killed in between leaves the file one batch
behind; :func:`sync_export` finds that (it reads only the first row) and rewrites the
file from the store. The score flow calls it before it starts, and ``leadscore export``
with no ``--out`` does it on demand and prints the current batch (so does ``/healthz``).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from leadscore.models import reasons as reasons_codec
from leadscore.serving.config import StoreConfig
from leadscore.serving.csv_scan import maybe_formula, string_buffers
from leadscore.serving.export_fields import EXPORT_COLUMNS, REASON_COLUMNS
from leadscore.serving.files import atomic_writer, remove_orphans
from leadscore.serving.store import SchemaVersionError, ScoreStore, StoreError
from leadscore.serving.store.call_writes import batch_calls

CALL_EXPORT = ("call_rep", "call_position")
"""The export's call-list columns (the lead's rep today and its place on their list)."""

PROBABILITY_DIGITS = 4
"""Decimal places of ``probability`` in the export (the store keeps it exact)."""

WHOLE_NUMBERS = ("score", "rank", "fit_score", "engagement_score", "rule_rank", "call_position")
"""Columns written as whole numbers (empty where null, never ``57.0``)."""

TIMESTAMPS = ("scored_at", "last_activity_at")
"""Columns written as ISO 8601 UTC, ``2026-11-22T03:15:00Z`` (empty where null)."""

BOM = b"\xef\xbb\xbf"
"""UTF-8 byte-order mark: what tells Excel a CSV is UTF-8 (``output.csv_bom``)."""

FORMULA_START = r"^(?:[\t\r\n\x00]|\s*[=+\-@\x{FF1D}\x{FF0B}\x{FF0D}\x{FF20}])"
"""A text cell a spreadsheet may run as a formula (RE2, as Arrow's compute functions take
it): it starts with a tab, CR, LF or NUL, or (after any spaces) with ``=``, ``+``, ``-``,
``@`` or their full-width forms."""

FORMULA_INSIDE = r"([,;\t\r\n][ \"]*)([=+\-@\x{FF1D}\x{FF0B}\x{FF0D}\x{FF20}])"
"""A formula start inside a text cell, right after a separator or line break (and any
spaces or quotes): where a spreadsheet splitting on that character would start a cell."""

PLAIN_NUMBER = r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$"
"""A text cell that is only a number (``-42``, ``+1.5e3``): read as a number, never run."""

QUOTE_PREFIX = "'"
"""What neutralises a formula cell: spreadsheets read a cell that starts with it as text."""


def strongest_reasons(reasons: str | None, n: int = len(REASON_COLUMNS)) -> list[str | None]:
    """The ``n`` strongest reasons of a ``reasons`` JSON value as ``"text (+)"`` lines,
    padded with None (an empty cell) when the lead has fewer.

    Reasons are stored strongest first (models/reasons.py). Raises ValueError if the
    value is not a JSON array of objects with a ``text`` key. Read with the codec's fast
    reader (orjson: the batch exports every open lead), and again with its strict one
    only when that finds nothing or something malformed, to raise what is wrong.
    """
    blank = reasons is None or (isinstance(reasons, float) and reasons != reasons)
    items = [] if blank else reasons_codec.decode_lenient(reasons)
    if (not blank and not items) or not all(isinstance(r, dict) and "text" in r for r in items):
        items = reasons_codec.decode(reasons)  # [] for a blank or empty value, else raises
    items = items[:n]
    lines: list[str | None] = [
        f"{r['text']}{reasons_codec.marker(r.get('direction', reasons_codec.POSITIVE))}"
        for r in items
    ]
    return lines + [None] * (n - len(lines))


def export_frame(scores: pd.DataFrame, keep_reasons: bool = False) -> pd.DataFrame:
    """Return the frame exactly as it is written: :data:`EXPORT_COLUMNS`, sorted by rank.

    ``scores`` is a frame from ``ScoreStore.read_batch`` (score columns plus
    ``batch_id``, ``model_version``, ``scored_at``). The reason columns are made from its
    ``reasons``, which ``keep_reasons`` keeps (JSON text) after the export's columns.
    ``call_rep`` / ``call_position`` (:func:`with_calls`) are empty when absent.
    The input is not modified.
    """
    scores = scores if CALL_EXPORT[0] in scores.columns else with_calls(scores, None)
    needed = [c for c in EXPORT_COLUMNS if c not in REASON_COLUMNS] + ["reasons"]
    missing = [c for c in needed if c not in scores.columns]
    if missing:
        raise ValueError(f"cannot export scores: missing column(s) {missing}")
    frame = scores.sort_values(["rank", "lead_id"], kind="stable").reset_index(drop=True)
    rendered: list[list[str | None]] = []
    for lead_id, raw in zip(frame["lead_id"], frame["reasons"], strict=True):
        try:
            rendered.append(strongest_reasons(raw))
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"column 'reasons' is not a JSON array of reasons for lead_id {lead_id!r}: {exc}"
            ) from exc
    columns = list(zip(*rendered, strict=True)) if rendered else [()] * len(REASON_COLUMNS)
    reasons = {
        name: pd.Series(column, dtype=object)
        for name, column in zip(REASON_COLUMNS, columns, strict=True)
    }
    frame = frame.assign(**reasons, probability=frame["probability"].round(PROBABILITY_DIGITS))
    frame = frame.assign(**{c: frame[c].astype("Int64") for c in WHOLE_NUMBERS})
    stamped = frame.assign(**{c: _iso_utc(frame[c]) for c in TIMESTAMPS})
    return stamped.loc[:, [*EXPORT_COLUMNS, *(["reasons"] if keep_reasons else [])]]


def with_calls(scores: pd.DataFrame, calls: pd.DataFrame | None) -> pd.DataFrame:
    """``scores`` with each lead's call list: ``call_rep`` (the rep's id) and
    ``call_position`` from ``calls`` (``Routing.calls`` or the store's; None: no call
    lists), null for a lead on no list."""
    n = len(scores)
    rep, position = np.full(n, None, dtype=object), pd.array([None] * n, dtype="Int64")
    if calls is not None and len(calls):
        placed = calls[calls["rep_id"].notna()]
        at = pd.Index(placed["lead_id"].astype(str)).get_indexer(scores["lead_id"].astype(str))
        found = at >= 0
        rep[found] = placed["rep_id"].to_numpy(dtype=object)[at[found]]
        position[found] = placed["position"].astype("Int64").to_numpy()[at[found]]
    return scores.assign(**{CALL_EXPORT[0]: rep, CALL_EXPORT[1]: position})


def _iso_utc(values: pd.Series) -> pd.Series:
    """Timestamps (or ISO text) as ``2026-11-22T03:15:00Z``; null stays null."""
    stamps = pd.to_datetime(values, utc=True, format="ISO8601")
    return stamps.dt.strftime("%Y-%m-%dT%H:%M:%SZ").where(stamps.notna(), None)


def write_scores_csv(scores: pd.DataFrame, path: Path, bom: bool = False) -> Path:
    """Write ``scores`` as the documented CSV at ``path``, atomically; return ``path``.
    ``bom`` starts the file with a UTF-8 byte-order mark (for Excel)."""
    return write_csv_atomic(export_frame(scores), path, bom=bom)


def write_scores_jsonl(scores: pd.DataFrame, path: Path) -> Path:
    """The export's columns, one JSON object per lead, plus ``reasons``: every reason in
    full as a JSON array; the file is replaced atomically."""
    with atomic_writer(path, text=True) as handle:
        for row in export_frame(scores, keep_reasons=True).to_dict(orient="records"):
            row["reasons"] = reasons_codec.decode(row["reasons"])
            clean = {k: (None if _missing(v) else v) for k, v in row.items()}
            handle.write(json.dumps(clean, ensure_ascii=False) + "\n")
    return path


def _missing(value: object) -> bool:
    """NaN, None or pandas' NA (written as JSON null)."""
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def write_csv_atomic(frame: pd.DataFrame, path: Path, bom: bool = False) -> Path:
    """Write ``frame`` as CSV at ``path``, atomically (:func:`write_csv_chunks_atomic`)."""
    return write_csv_chunks_atomic([frame], path, bom=bom)


def write_csv_chunks_atomic(
    chunks: Iterable[pd.DataFrame | pa.Table], path: Path, bom: bool = False
) -> Path:
    """Write consecutive frames or Arrow tables (same columns) as one CSV at ``path``,
    atomically.

    Text cells that a spreadsheet would run as formulas are neutralised
    (:func:`neutralised`, the module docstring says how). The rows go through
    :func:`serving.files.atomic_writer` (temporary file in the target folder, fsync,
    ``os.replace``); a failure (also one raised by the chunk iterator) leaves no temporary
    file behind and the old file in place. The writer is Arrow's: text is always quoted,
    numbers never; an empty input writes nothing, so callers pass at least one frame.
    ``bom`` starts the file with the UTF-8 byte-order mark (:data:`BOM`).
    """
    with atomic_writer(path) as handle:
        if bom:
            handle.write(BOM)
        writer: pa_csv.CSVWriter | None = None
        schema: pa.Schema | None = None
        for frame in chunks:
            arrow = isinstance(frame, pa.Table)
            table = frame if arrow else pa.Table.from_pandas(frame, preserve_index=False)
            if schema is None:  # all-null columns are text columns with no value yet
                schema = pa.schema(_text_or_own(f) for f in table.schema).remove_metadata()
                writer = pa_csv.CSVWriter(handle, schema)
            assert writer is not None
            writer.write_table(neutralised(table.cast(schema)))
        if writer is not None:
            writer.close()
    return Path(path)


def _text_or_own(field: pa.Field) -> pa.Field:
    """All-null columns become text columns with no value yet, and categorical text plain
    text (so that it is neutralised like any other text)."""
    if pa.types.is_null(field.type):
        return field.with_type(pa.string())
    if pa.types.is_dictionary(field.type) and _is_text(field.type.value_type):
        return field.with_type(pa.string())
    return field


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def neutralise_cell(value: str) -> str:
    """One text cell as the CSV writers write it (:func:`neutralised`)."""
    return str(_neutralised_column(pa.array([value], pa.string()))[0])


def neutralised(table: pa.Table) -> pa.Table:
    """``table`` with the formula cells of its text columns neutralised; number, date
    and boolean columns are returned as they are.

    A text cell that starts like a formula (:data:`FORMULA_START`, unless it is a
    :data:`PLAIN_NUMBER`) gets a ``'`` in front. And because a spreadsheet that splits on
    another separator (Excel splits on ``;`` in many locales) starts a cell after any
    ``,``, ``;``, tab or line break, a formula start after one of those inside a value
    (:data:`FORMULA_INSIDE`) gets its ``'`` too: ``a;=1+1`` is written ``a;'=1+1``.
    """
    for i, field in enumerate(table.schema):
        if _is_text(field.type):
            table = table.set_column(i, field, _neutralised_column(table.column(i)))
    return table


def _neutralised_column(column: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """The column with its formula cells neutralised: the cells a byte scan finds could
    be one (``serving.csv_scan.maybe_formula``, a superset) go through :func:`_formulas`."""
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    flagged = maybe_formula(*string_buffers(column))
    if not flagged.any():
        return column
    fixed = _formulas(column.take(pa.array(np.flatnonzero(flagged))))
    return pc.replace_with_mask(column, pa.array(flagged), fixed)


def _formulas(column: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    inside = pc.fill_null(pc.match_substring_regex(column, FORMULA_INSIDE), False)
    if pc.any(inside).as_py():
        column = pc.replace_substring_regex(column, FORMULA_INSIDE, rf"\1{QUOTE_PREFIX}\2")
    formula = _formula_cells(column)
    if not pc.any(formula).as_py():  # the usual case: anchored scans, nothing to do
        return column
    quote, empty = pa.scalar(QUOTE_PREFIX, column.type), pa.scalar("", column.type)
    return pc.if_else(formula, pc.binary_join_element_wise(quote, column, empty), column)


def _formula_cells(column: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """True where a text cell starts like a formula and is not a plain number."""
    starts = pc.fill_null(pc.match_substring_regex(column, FORMULA_START), False)
    if not pc.any(starts).as_py():
        return starts
    return pc.and_(starts, pc.invert(pc.match_substring_regex(column, PLAIN_NUMBER)))


# ----------------------------------------------------------- which batch the file holds


def csv_batch_id(path: Path) -> str | None:
    """The batch an export at ``path`` holds (its first row's ``batch_id``); None if there
    is no file, no ``batch_id`` column or no row, or the file cannot be read as CSV."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:  # with a BOM or not
            rows = csv.reader(handle)
            header = next(rows, None)
            first = next(rows, None)
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    if not header or not first or "batch_id" not in header:
        return None
    column = header.index("batch_id")
    return first[column] if column < len(first) and first[column] else None


@dataclass(frozen=True)
class ExportSync:
    """What :func:`sync_export` found: the store's current batch, the batch the file held
    before (None: no file or no rows), and whether the file was rewritten."""

    path: Path
    current: str | None
    found: str | None
    rewritten: bool

    def describe(self) -> str:
        """One line for a person."""
        if self.current is None:
            return f"{self.path}: no batch published yet, nothing to export"
        if not self.rewritten:
            return f"{self.path} holds batch {self.current}, the current one"
        held = f"batch {self.found}" if self.found else "no batch"
        return f"{self.path} held {held}; rewritten with the current batch {self.current}"


def sync_export(config: StoreConfig, path: Path, bom: bool = False) -> ExportSync:
    """Make the CSV export at ``path`` hold the store's current batch.

    A run killed after its batch became current but before its CSV replaced the old one
    leaves the file one batch behind; this reads the file's first row and, if its
    ``batch_id`` is not the current batch, rewrites the file (atomically) from the store.
    A store that does not exist yet or has no batch is left alone, and so is the file;
    an older store is upgraded first (as publishing would). Temporary files that a killed
    writer of ``path`` left beside it are deleted (:func:`serving.files.remove_orphans`).
    ``bom``: as :func:`write_scores_csv`.
    """

    def rewrite(store: ScoreStore, batch_id: str) -> None:
        write_scores_csv(_read_with_calls(store, batch_id), path, bom=bom)

    return sync_file(config, path, rewrite)


def sync_file(
    config: StoreConfig, path: Path, rewrite: Callable[[ScoreStore, str], object]
) -> ExportSync:
    """Make the file at ``path`` (its first row names a ``batch_id``) hold the store's
    current batch: ``rewrite(store, batch_id)`` writes it when it names another batch or
    none. A store that does not exist yet or has no batch is left alone, and so is the
    file; an older store is upgraded first (as publishing would); temporary files a
    killed writer of ``path`` left beside it are deleted first."""
    remove_orphans(path)
    store = ScoreStore(config)
    try:
        try:
            info = store.current_batch()
        except SchemaVersionError:
            store.create()  # upgrades an older store; refuses a newer one, as publish would
            info = store.current_batch()
        except StoreError:  # no store yet (the first run creates it)
            return ExportSync(Path(path), None, csv_batch_id(path), False)
        found = csv_batch_id(path)
        if info is None or found == info.batch_id:
            return ExportSync(Path(path), info.batch_id if info else None, found, False)
        rewrite(store, info.batch_id)
        return ExportSync(Path(path), info.batch_id, found, True)
    finally:
        store.close()


def _read_with_calls(store: ScoreStore, batch_id: str | None) -> pd.DataFrame:
    """A batch (None: the current one) as ``read_batch`` gives it, with its call lists."""
    batch = store.read_batch(batch_id)
    if not len(batch):
        return with_calls(batch, None)
    return with_calls(batch, batch_calls(store.engine, str(batch["batch_id"].iloc[0])))


def export_current(config: StoreConfig, path: Path, fmt: str = "csv", bom: bool = False) -> str:
    """Write the store's current batch at ``path`` as ``csv`` (``bom``: as
    :func:`write_scores_csv`) or ``jsonl``; say what.

    Raises LookupError if no batch was published, StoreError if the store is unusable.
    """
    store = ScoreStore(config)
    try:
        store.create()  # idempotent; upgrades a store written by an older version
        batch = _read_with_calls(store, None)
    finally:
        store.close()
    if fmt == "csv":
        write_scores_csv(batch, path, bom=bom)
    else:
        write_scores_jsonl(batch, path)
    return f"{len(batch):,} leads of batch {batch['batch_id'].iloc[0]} -> {path}"
