"""Read a sample of an export whose shape nobody has told us (``leadscore init``).

A CSV's delimiter, encoding and decimal mark are sniffed from its first bytes: UTF-8 is
tried first, then cp1252 (what Excel on Windows writes), then latin-1 (reads any byte);
the delimiter by ``csv.Sniffer`` among ``, ; tab |``; the decimal mark is a comma when the
delimiter is not one and number-like cells are written ``1,5``. Parquet needs none of
this. What was found is what ``data.<source>.csv`` gets in the written config.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from leadscore.features.validation import ContractError

SAMPLE_ROWS = 100_000
"""Rows read from each file: enough to see every value of a category and most ids."""

SNIFF_BYTES = 256 * 1024
"""Bytes of a CSV read to sniff its encoding and delimiter."""

_DECIMAL_COMMA = re.compile(r"^-?\d+,\d+$")
_THOUSANDS_DOT = re.compile(r"^-?\d{1,3}(\.\d{3})+(,\d+)?$")


@dataclass(frozen=True)
class FileSample:
    """A file's first rows, and how it reads (CSV options; None for Parquet)."""

    path: Path
    frame: pd.DataFrame
    format: str
    delimiter: str = ","
    encoding: str = "utf-8"
    decimal: str = "."
    thousands: str | None = None

    @property
    def csv_note(self) -> str:
        if self.format != "csv":
            return "Parquet"
        shown = {"\t": "tab"}.get(self.delimiter, repr(self.delimiter))
        extra = f", thousands {self.thousands!r}" if self.thousands else ""
        return f"CSV: delimiter {shown}, encoding {self.encoding}, decimal {self.decimal!r}{extra}"


def _encoding(head: bytes) -> str:
    """The first of utf-8, cp1252, latin-1 that decodes ``head`` (a cut character at its
    end is not a fault: the sample stops anywhere)."""
    for name in ("utf-8", "cp1252"):
        try:
            codecs.getincrementaldecoder(name)().decode(head, final=False)
        except UnicodeDecodeError:
            continue
        return name
    return "latin-1"


def _delimiter(text: str) -> str:
    lines = text.splitlines()[:50]
    sample = "\n".join(lines[:-1] if len(lines) > 1 else lines)
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        header = lines[0] if lines else ""
        return max(",;\t|", key=header.count)


def _number_marks(frame: pd.DataFrame) -> tuple[str, str | None]:
    """Decimal comma and thousands dot, when text cells say so (``1,5``; ``1.234,5``)."""
    decimal, thousands = ".", None
    for column in frame.columns:
        values = frame[column]
        if not (pd.api.types.is_string_dtype(values) or pd.api.types.is_object_dtype(values)):
            continue
        text = values.dropna().astype("str").str.strip().head(2000)
        if text.empty:
            continue
        if text.str.match(_DECIMAL_COMMA).mean() >= 0.9:
            decimal = ","
        elif text.str.match(_THOUSANDS_DOT).mean() >= 0.9 and text.str.contains(",").any():
            decimal, thousands = ",", "."
    return decimal, thousands


def read_sample(path: Path, rows: int = SAMPLE_ROWS) -> FileSample:
    """The first ``rows`` rows of a CSV or Parquet file, and how the file reads."""
    if not path.is_file():
        raise ContractError(f"{path}: no such file")
    if path.suffix.lower() in {".parquet", ".pq"}:
        import pyarrow.parquet as pq

        try:
            batches = pq.ParquetFile(path).iter_batches(batch_size=rows)
            frame = next(batches).to_pandas()
        except StopIteration as exc:
            raise ContractError(f"{path}: no rows (the file is empty)") from exc
        except Exception as exc:
            raise ContractError(f"{path}: cannot be read as Parquet: {exc}") from exc
        return FileSample(path, frame, "parquet")
    with open(path, "rb") as file:
        head = file.read(SNIFF_BYTES)
    if not head.strip():
        raise ContractError(f"{path}: no rows (the file is empty)")
    encoding = _encoding(head)
    text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(head)
    delimiter = _delimiter(text)
    try:
        raw = pd.read_csv(io.StringIO(text), sep=delimiter, dtype="str", nrows=2000)
        decimal, thousands = _number_marks(raw) if delimiter != "," else (".", None)
        frame = pd.read_csv(
            path,
            sep=delimiter,
            encoding=encoding,
            decimal=decimal,
            thousands=thousands,
            nrows=rows,
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ContractError(f"{path}: cannot be read as CSV: {exc}") from exc
    if frame.empty:
        raise ContractError(f"{path}: no rows (only a header)")
    frame.columns = [str(c).strip().lstrip("\ufeff") for c in frame.columns]
    return FileSample(path, frame, "csv", delimiter, encoding, decimal, thousands)
