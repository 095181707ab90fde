"""The data section's parts: where a table comes from (a file or a query), how its outcome
reads, second tables (outcomes, joins) and the columns shown beside a score
(``data.display``); ``pipelines.settings`` composes them into ``DataConfig``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from leadscore.features.outcome_values import outcome_lookup


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CsvOptions(_Strict):
    """How to read a CSV export."""

    delimiter: str = ","
    encoding: str = Field(default="utf-8", description="e.g. utf-8, latin-1, cp1252")
    decimal: str = "."
    thousands: str | None = None


class SqlQuery(_Strict):
    """A query through any SQLAlchemy URL (sqlite, postgresql, ...)."""

    url: str
    query: str


class SourceConfig(_Strict):
    """One input table: a file (CSV or Parquet) or a SQL query."""

    path: Path | None = None
    format: Literal["parquet", "csv", "sql", "auto"] = "auto"
    csv: CsvOptions = Field(default_factory=CsvOptions)
    sql: SqlQuery | None = None
    date_format: str | None = Field(
        default=None, description="strftime format of its timestamps; None = any ISO-like."
    )

    @model_validator(mode="after")
    def _where(self) -> SourceConfig:
        if self.resolved_format == "sql" and self.sql is None:
            raise ValueError("a sql source needs `sql: {url, query}`")
        if self.resolved_format != "sql" and self.path is None:
            raise ValueError("a file source needs `path`")
        return self

    @property
    def resolved_format(self) -> str:
        if self.format != "auto":
            return self.format
        if self.sql is not None:
            return "sql"
        suffix = self.path.suffix.lower() if self.path else ""
        return "csv" if suffix in {".csv", ".txt", ".tsv"} else "parquet"

    @property
    def label(self) -> str:
        """How errors and the quarantine name this source."""
        if self.resolved_format == "sql" and self.sql is not None:
            return f"sql query on {self.sql.url.split('@')[-1]}"
        return str(self.path)


OutcomeValue = bool | int | float | str  # as YAML gives it: yes and no arrive as booleans


class OutcomeMapping(_Strict):
    """Turn a user's status or target column into open / converted / lost.

    Values may be text, numbers or booleans, matched whatever the column's type
    (``features.reader.map_outcome``): ``converted: [1]`` reads a 0/1 column of integers,
    floats or booleans; text regardless of case; true/yes are 1, false/no 0. One value
    under two lists is an error.
    """

    column: str = Field(description="The user's column (after column_mapping).")
    converted: list[OutcomeValue] = Field(description="e.g. [Closed Won], [1], [yes].")
    lost: list[OutcomeValue] = Field(description="e.g. [Closed Lost], [0], [no].")
    open: list[OutcomeValue] = Field(
        default_factory=list, description="Still open, e.g. [Working]."
    )

    @model_validator(mode="after")
    def _distinct(self) -> OutcomeMapping:
        outcome_lookup({"converted": self.converted, "lost": self.lost, "open": self.open})
        return self


class OutcomesSource(SourceConfig):
    """A second table of outcomes (deals), found by lead id (``features.tables``): a
    converted row makes its lead converted as of ``closed_at``, a lost row lost; no row: open."""

    key: str  # its column holding the lead's id (matched to lead_id after column_mapping)
    closed_at: str | None = None  # its column with the date the outcome happened
    status: OutcomeMapping | None = None  # None: every row is a conversion (won deals)
    duplicates: Literal["first", "refuse"] = "refuse"  # several rows for one lead


class JoinSource(SourceConfig):
    """An attribute table (accounts) many leads point at by ``key``; its columns arrive as
    ``<name>_<column>`` (``features.joins``) and its account features as ``<name>_...``."""

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")  # prefixes its columns, names it
    key: str  # the leads' column (after column_mapping) pointing at this table
    table_key: str | None = None  # its own key column if named differently (default: key)


class DisplayConfig(_Strict):
    """Export columns shown beside each score, passed through as they are: for people
    (name, company) and for matching the CRM's own records (email, record id). Each is a
    column name after ``data.column_mapping``; they are never model features."""

    name: str | None = Field(default=None, description="The contact's name, e.g. contact_name.")
    company: str | None = Field(default=None, description="The company's name.")
    email: str | None = Field(default=None, description="The contact's e-mail.")
    record_id: str | None = Field(
        default=None, description="The CRM's own record id, when lead_id is another key."
    )

    def columns(self) -> dict[str, str]:
        """Score-row column -> export column, for the ones set (in the score row's order)."""
        chosen = {
            "name": self.name,
            "company": self.company,
            "email": self.email,
            "record_id": self.record_id,
        }
        return {k: v for k, v in chosen.items() if v is not None}
