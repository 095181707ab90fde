"""Read leads and activities from the configured sources onto the data contract.

Everything that touches files or databases lives here; reading the rows onto the
contract is the one reader of ``features.reader`` (``contract_reader`` builds it from the
settings): a user's export is renamed onto the contract (``column_mapping``), stripped of
excluded columns (leaks, sensitive fields: they never reach a model), given a lead id
from its row number if it has none, its status or target column is mapped onto open /
converted / lost, and it is checked by the Great Expectations suites of
``features.contract``. The result carries the quarantined rows, and the load fails
loudly unless every input row is either clean or quarantined.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from leadscore.features import hygiene
from leadscore.features.accounts import AccountHistory
from leadscore.features.contract import LEAD_ID, Checked, ContractError, data_end
from leadscore.features.joins import JoiningReader
from leadscore.features.reader import ContractReader, add_notes
from leadscore.features.tables import prepare_outcomes, prepare_table
from leadscore.features.validation import Validation
from leadscore.pipelines.settings import CsvOptions, Settings, SourceConfig


@dataclass(frozen=True)
class CRMData:
    """Clean leads and activities, their quarantine, and the input row counts."""

    leads: pd.DataFrame
    activities: pd.DataFrame | None
    quarantine: pd.DataFrame
    n_leads_in: int
    n_activities_in: int
    validations: tuple[Validation, ...] = ()
    unknown_activity_types: int = 0
    notes: dict[str, int] = field(default_factory=dict)
    """What reading normalised or dropped, counted (``features.hygiene``)."""
    accounts: AccountHistory | None = None
    """The joined tables' accounts (``data.joins``), for the account features."""

    @property
    def flat(self) -> bool:
        """A flat export: behaviour, if any, is already aggregated into lead columns."""
        return self.activities is None

    @property
    def end(self) -> pd.Timestamp:
        return data_end(self.leads, self.activities)

    def quarantined(self, source: str) -> int:
        return int((self.quarantine["source"] == source).sum())


def read_table(
    source: SourceConfig, id_column: str = LEAD_ID, text_columns: Sequence[str] = ()
) -> pd.DataFrame:
    """One source as a frame; a clear error naming the file when it cannot be read."""
    return next(read_chunks(source, id_column, text_columns=text_columns))


def read_chunks(
    source: SourceConfig,
    id_column: str = LEAD_ID,
    rows: int | None = None,
    text_columns: Sequence[str] = (),
) -> Iterator[pd.DataFrame]:
    """A source as consecutive frames of at most ``rows`` rows (None: one frame).

    The nightly batch reads the activity log this way, so memory holds one chunk of it
    at a time (a Parquet file too: its reader keeps none of the chunks already read).
    Errors name the file (or query) as :func:`read_table`'s do. A CSV's id
    column and ``text_columns`` (``data.display``'s) are read as written ("00042").
    """
    kind = source.resolved_format
    if kind == "sql":
        from sqlalchemy import create_engine, text

        assert source.sql is not None
        engine = create_engine(source.sql.url)
        try:
            with engine.connect() as conn:
                result = pd.read_sql_query(text(source.sql.query), conn, chunksize=rows)
                yield from [result] if rows is None else result
        except Exception as exc:
            raise ContractError(f"{source.label}: the query failed: {exc}") from exc
        finally:
            engine.dispose()
        return
    assert source.path is not None
    if not source.path.is_file():
        raise FileNotFoundError(
            f"{source.path}: no such file (run `leadscore generate` for the synthetic CRM)"
        )
    if kind == "parquet":
        try:
            if rows is None:
                yield pd.read_parquet(source.path)
            else:
                # no pre-buffering: it caches every column chunk read until the file is
                # closed (apache/arrow#39808), the whole compressed file by the last chunk
                # (~10 bytes an activity: ~0.5 GB at 2M leads)
                file = pq.ParquetFile(source.path, pre_buffer=False)
                for batch in file.iter_batches(batch_size=rows):
                    yield batch.to_pandas()
        except Exception as exc:
            raise ContractError(f"{source.path}: cannot be read as Parquet: {exc}") from exc
        return
    options = source.csv
    try:
        hygiene.check_header(_csv_header(source.path, options), str(source.path))
        read = pd.read_csv(
            source.path,
            sep=options.delimiter,
            encoding=options.encoding,
            decimal=options.decimal,
            thousands=options.thousands,
            dtype=dict.fromkeys([id_column, *text_columns], "string"),
            chunksize=rows,
        )
        yield from [read] if rows is None else read
    except UnicodeDecodeError as exc:
        raise ContractError(_bad_byte(source.path, options.encoding)) from exc
    except pd.errors.EmptyDataError as exc:
        raise ContractError(f"{source.path}: no rows (the file is empty)") from exc
    except pd.errors.ParserError as exc:
        raise ContractError(f"{source.path}: not a well-formed CSV: {exc}") from exc


def source_rows(source: SourceConfig) -> int | None:
    """How many rows a source holds, when its file says so without being read (Parquet's
    footer); None otherwise (or when the file cannot be opened: reading will say why)."""
    if source.resolved_format != "parquet" or source.path is None or not source.path.is_file():
        return None
    try:
        return int(pq.ParquetFile(source.path).metadata.num_rows)
    except Exception:  # reading it names the fault
        return None


def _utf8(encoding: str) -> bool:
    return codecs.lookup(encoding).name == "utf-8"


def _csv_header(path: Path, options: CsvOptions) -> list[str]:
    """The header's names as written (pandas renames a repeated one ``name.1``)."""
    encoding = "utf-8-sig" if _utf8(options.encoding) else options.encoding
    with open(path, encoding=encoding, newline="") as file:
        return next(csv.reader(file, delimiter=options.delimiter), [])


def _bad_byte(path: Path, encoding: str) -> str:
    """The first byte of ``path`` that is not ``encoding`` text, where an editor shows it
    (pandas reports a position inside its read buffer, not in the file)."""
    decoder = codecs.getincrementaldecoder(encoding)()
    offset, lines, last_newline, non_ascii = 0, 1, -1, False
    with open(path, "rb") as file:
        while block := file.read(1 << 20):
            pending = decoder.getstate()[0]
            data = pending + block
            start = offset - len(pending)
            try:
                decoder.decode(block)
                non_ascii = non_ascii or any(b > 127 for b in data)
            except UnicodeDecodeError as exc:
                position = start + exc.start
                before = data[: exc.start]
                non_ascii = non_ascii or any(b > 127 for b in before)
                line = lines + before.count(b"\n")
                newline = before.rfind(b"\n")
                column = exc.start - newline if newline >= 0 else position - last_newline
                mixed = (
                    f"; the text before it is valid {encoding} with non-ASCII characters, so "
                    "the file mixes encodings"
                    if non_ascii
                    else ""
                )
                return (
                    f"{path}: line {line}, column {column} (byte {position} of the file, "
                    f"0x{data[exc.start]:02x}) is not valid {encoding} text; set the source's "
                    f"csv.encoding (e.g. latin-1 or cp1252){mixed}"
                )
            newline = block.rfind(b"\n")
            if newline >= 0:
                last_newline = offset + newline
            lines += block.count(b"\n")
            offset += len(block)
    return f"{path}: is not valid {encoding} text; set the source's csv.encoding"


@dataclass
class RecordLines:
    """Row position -> the line an editor shows it on, for a CSV whose quoted values may
    hold line breaks. The file is scanned once, on first use: only an error asks."""

    path: Path
    options: CsvOptions
    starts: np.ndarray | None = None

    def __call__(self, row: int) -> int:
        if self.starts is None:
            self.starts = self._scan()
        return int(self.starts[row]) if 0 <= row < len(self.starts) else hygiene.editor_line(row)

    def _scan(self) -> np.ndarray:
        starts: list[int] = []
        encoding = "utf-8-sig" if _utf8(self.options.encoding) else self.options.encoding
        with open(self.path, encoding=encoding, errors="replace", newline="") as file:
            records = csv.reader(file, delimiter=self.options.delimiter)
            next(records, None)
            line = records.line_num + 1
            for record in records:
                if record:  # pandas skips blank lines
                    starts.append(line)
                line = records.line_num + 1
        return np.asarray(starts, dtype=np.int64)


def _lines(source: SourceConfig | None) -> hygiene.Lines:
    if source is None or source.resolved_format != "csv" or source.path is None:
        return hygiene.editor_line
    return RecordLines(source.path, source.csv)


def contract_reader(settings: Settings) -> ContractReader:
    """The contract reader of the configured sources (``features.reader``)."""
    data = settings.data
    return ContractReader(
        attributes=settings.features.attributes,
        validation=data.validation,
        activity_types=tuple(settings.features.activity_types),
        column_mapping=data.column_mapping,
        drop_columns=data.dropped_columns,
        lead_id_from_row=data.lead_id_from_row,
        outcome=data.outcome,
        flat=data.activities is None,
        leads_source=data.leads.label,
        activities_source=data.activities.label if data.activities else "activities",
        leads_date_format=data.leads.date_format,
        activities_date_format=data.activities.date_format if data.activities else None,
        leads_lines=_lines(data.leads),
        activities_lines=_lines(data.activities),
        thousands=data.leads.csv.thousands,
        decimal=data.leads.csv.decimal,
        duplicate_activities=data.duplicate_activities,
        display=tuple(dict.fromkeys(data.display.columns().values())),
    )


def display_sources(settings: Settings) -> list[str]:
    """The export's names of the ``data.display`` columns (before column_mapping): a CSV
    reads them as written ("00042" stays so)."""
    inverse = {target: user for user, target in settings.data.column_mapping.items()}
    return [inverse.get(c, c) for c in settings.data.display.columns().values()]


def leads_reader(settings: Settings) -> ContractReader:
    """The reader of the leads: :func:`contract_reader`, with the second tables
    (``data.outcomes``, ``data.joins``) read, checked and joined on (``features.joins``)."""
    data = settings.data
    reader = contract_reader(settings)
    if data.outcomes is None and not data.joins:
        return reader
    outcomes = None
    if data.outcomes is not None:
        spec = data.outcomes
        outcomes = prepare_outcomes(
            read_table(spec, spec.key),
            source=spec.label,
            key=spec.key,
            closed_at=spec.closed_at,
            status=spec.status,
            duplicates=spec.duplicates,
            date_format=spec.date_format,
            lines=_lines(spec),
        )
    tables = tuple(
        prepare_table(
            read_table(join, join.table_key or join.key),
            name=join.name,
            source=join.label,
            key=join.key,
            own_key=join.table_key,
            drop_columns=data.dropped_columns,
            lines=_lines(join),
        )
        for join in data.joins
    )
    return JoiningReader(**vars(reader), outcomes=outcomes, tables=tables)


def second_tables(reader: ContractReader, lead_ids: pd.Series) -> tuple[pd.DataFrame, dict]:
    """The second tables' quarantine (orphan outcomes found against ``lead_ids``, every
    id read) and notes; nothing without ``data.outcomes`` or ``data.joins``."""
    if not isinstance(reader, JoiningReader):
        return pd.DataFrame(), {}
    return reader.second_quarantine(lead_ids), reader.second_notes()


def account_keys(settings: Settings) -> dict[str, str]:
    """Join name -> the leads' key column, of the tables giving account features."""
    return {join.name: join.key for join in settings.data.joins}


def load_leads(settings: Settings, now: pd.Timestamp | None = None) -> tuple[Checked, int]:
    """Read, map and check the configured leads table (its second tables joined on);
    (checked leads, rows read). The quarantine holds the second tables' rows too."""
    reader = leads_reader(settings)
    raw_leads = read_table(settings.data.leads, reader.id_column, display_sources(settings))
    checked = reader.whole_leads(raw_leads, now)
    ids = pd.concat([checked.rows[LEAD_ID], checked.quarantine[LEAD_ID]], ignore_index=True)
    more, notes = second_tables(reader, ids)
    if len(more):
        quarantine = pd.concat([checked.quarantine, more], ignore_index=True)
        checked = replace(
            checked, quarantine=quarantine, notes=add_notes(dict(checked.notes or {}), notes)
        )
    return checked, len(raw_leads)


def load_crm(settings: Settings, now: pd.Timestamp | None = None) -> CRMData:
    """Read, map and check the configured leads and activities."""
    data = settings.data
    reader = contract_reader(settings)
    leads, n_leads = load_leads(settings, now)
    quarantine = [leads.quarantine]
    validations = [leads.validation]
    notes = add_notes({}, leads.notes)
    activities, n_activities, unknown = None, 0, 0
    if data.activities is not None:
        raw_activities = read_table(data.activities)
        n_activities = len(raw_activities)
        checked = reader.whole_activities(raw_activities, leads.rows, now)
        activities, unknown = checked.rows, checked.unknown_types
        add_notes(notes, checked.notes)
        quarantine.append(checked.quarantine)
        validations.append(checked.validation)
    clean = leads.rows.reset_index(drop=True)
    keys = account_keys(settings)
    accounts = None
    if keys:
        half_life = settings.features.half_life_days
        accounts = AccountHistory.of(clean, activities, keys, half_life)
    return CRMData(
        leads=clean,
        activities=activities,
        quarantine=pd.concat(quarantine, ignore_index=True),
        n_leads_in=n_leads,
        n_activities_in=n_activities,
        validations=tuple(v for v in validations if v is not None),
        unknown_activity_types=unknown,
        notes=notes,
        accounts=accounts,
    )


def scoring_time(configured: object, end: pd.Timestamp) -> pd.Timestamp:
    """When a batch is "as of": the configured instant, else the export day, else now.

    A flat export with no dates has no export day; its leads are scored as of now (UTC).
    """
    if configured:
        stamp = pd.Timestamp(configured)
    elif pd.notna(end):
        stamp = end
    else:
        stamp = pd.Timestamp.now(tz="UTC").floor("s")
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
