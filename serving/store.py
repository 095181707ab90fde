"""The scores store: one relational home for scoring batches (DESIGN.md sections 5 and 8).

A *batch* is every open lead scored at one point in time by one model version. Batches
are written completely and only then made current, in one transaction, by moving a
single-row pointer (``current_batch``). Readers always go through that pointer, so:

* a reader never sees half a batch, and
* a run that fails part-way leaves the previous batch current and complete.

Tables (SQLAlchemy Core, works on SQLite and PostgreSQL):

``schema_version``
    one row (id=1) holding :data:`SCHEMA_VERSION`; code refuses a store written by a
    newer schema, so an old deployment cannot silently corrupt a newer store.
``batches``
    one row per publish attempt with its status: ``writing`` (rows being inserted),
    ``published`` (the current batch), ``superseded`` (an older, complete batch kept
    for history) or ``failed`` (an attempt that raised; its rows are deleted).
``scores``
    one row per (batch, lead) with every score column; index on (batch_id, rank) so a
    priority-ordered page of one batch is an index range scan.
``current_batch``
    the pointer: one row (id=1) whose ``batch_id`` is the current batch (NULL before the
    first publish).
``changes`` (schema version 2)
    the change feed: per published batch, the leads whose grade went ``up`` or ``down``
    since the batch it replaced, the leads that ``appeared`` in the open set and those
    that ``left`` it. Rows are computed in the same transaction that flips the pointer,
    so a batch is never current without its changes, nor its changes without the batch.
    The first batch of a store has no changes (there is nothing to compare it with).

Timestamps are stored as UTC (``DateTime(timezone=True)``) and always come back as
timezone-aware UTC datetimes, also on SQLite, which has no time-zone type.
"""

from __future__ import annotations

import itertools
import logging
import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import (
    CheckConstraint,
    Column,
    Connection,
    DateTime,
    Dialect,
    Double,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Select,
    String,
    Table,
    Text,
    case,
    create_engine,
    delete,
    event,
    exists,
    func,
    insert,
    inspect,
    literal,
    null,
    select,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.types import TypeDecorator

log = logging.getLogger(__name__)

SCHEMA_VERSION: int = 2
"""Version of the table layout below; bump it (and add a migration) when it changes."""

# Columns of the scores frame built by models/scoring.py, in their documented order.
TEXT_COLUMNS: tuple[str, ...] = ("lead_id", "owner", "segment", "grade", "rule_grade", "reasons")
INT_COLUMNS: tuple[str, ...] = ("score", "rank")
FLOAT_COLUMNS: tuple[str, ...] = (
    "probability",
    "percentile",
    "fit",
    "engagement",
    "rule_score",
)
SCORE_COLUMNS: tuple[str, ...] = (
    "lead_id",
    "owner",
    "segment",
    "probability",
    "score",
    "grade",
    "rank",
    "percentile",
    "fit",
    "engagement",
    "rule_score",
    "rule_grade",
    "reasons",
)
"""Columns a scores frame must carry (extra columns are ignored on publish)."""

BATCH_COLUMNS: tuple[str, ...] = ("batch_id", "model_version", "scored_at")
"""Columns :meth:`ScoreStore.read_batch` adds after :data:`SCORE_COLUMNS`."""

# Batch statuses.
WRITING = "writing"
PUBLISHED = "published"
FAILED = "failed"
SUPERSEDED = "superseded"
STATUSES: tuple[str, ...] = (WRITING, PUBLISHED, FAILED, SUPERSEDED)

# Change kinds of the feed.
UP = "up"
DOWN = "down"
APPEARED = "appeared"
LEFT = "left"
CHANGE_KINDS: tuple[str, ...] = (UP, DOWN, APPEARED, LEFT)

_TEXT_DTYPE: Any = "str" if int(pd.__version__.split(".")[0]) >= 3 else object
_EXAMPLES = 5  # offending lead_ids quoted in a validation error


class StoreError(RuntimeError):
    """The store cannot be used as asked (not created, wrong schema, lost rows)."""


class SchemaVersionError(StoreError):
    """The store's schema_version does not match what this code can read or write."""


class StoreConfig(BaseModel):
    """Where the scores store lives and how it is written."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(
        default="sqlite:///data/scores.db",
        description="SQLAlchemy URL: a SQLite file by default, PostgreSQL by URL.",
    )
    keep_batches: int = Field(
        default=10,
        ge=1,
        description="Complete batches kept (current included); older ones are pruned.",
    )
    chunk_rows: int = Field(default=5000, ge=1, description="Rows per insert transaction.")
    sqlite_checkpoint_pages: int = Field(
        default=10_000,
        ge=1,
        description="SQLite files: WAL pages between automatic checkpoints (SQLite's default "
        "1,000 made checkpoints half the publish time; 10,000 pages = ~40 MB of WAL).",
    )
    stale_writing_hours: float = Field(
        default=24.0,
        gt=0,
        description="A batch still 'writing' this long after it started belongs to a run "
        "that died (e.g. killed): it is marked failed and its rows deleted at the next "
        "publish. Keep it well above the longest publish.",
    )


@dataclass(frozen=True)
class BatchInfo:
    """What the store knows about one scoring batch (a row of ``batches``)."""

    batch_id: str
    model_version: str
    as_of: datetime
    created_at: datetime
    published_at: datetime | None
    n_rows: int
    status: str


class UTCDateTime(TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that only accepts aware values and returns UTC-aware ones.

    SQLite has no time-zone type: SQLAlchemy stores a naive string there, so values are
    normalised to UTC before storing and tagged as UTC when read back. PostgreSQL's
    ``timestamptz`` returns values in the session time zone; they are converted to UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Refuse naive datetimes (ambiguous) and store everything as UTC."""
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Hand back UTC-aware datetimes whatever the backend returned."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


metadata = MetaData()

schema_version_table = Table(
    "schema_version",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", Integer, nullable=False),
    Column("applied_at", UTCDateTime, nullable=False),
    CheckConstraint("id = 1", name="ck_schema_version_single_row"),
)

batches_table = Table(
    "batches",
    metadata,
    Column("batch_id", String(64), primary_key=True),
    Column("model_version", String(255), nullable=False),
    Column("as_of", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("published_at", UTCDateTime, nullable=True),
    Column("n_rows", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    CheckConstraint(
        "status IN (" + ", ".join(f"'{s}'" for s in STATUSES) + ")",
        name="ck_batches_status",
    ),
    Index("ix_batches_status", "status"),
)

scores_table = Table(
    "scores",
    metadata,
    Column(
        "batch_id",
        String(64),
        ForeignKey("batches.batch_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("lead_id", String(255), nullable=False),
    Column("owner", String(255), nullable=True),
    Column("segment", String(255), nullable=True),
    Column("probability", Double, nullable=False),
    Column("score", Integer, nullable=False),
    Column("grade", String(32), nullable=False),
    Column("rank", Integer, nullable=False),
    Column("percentile", Double, nullable=False),
    Column("fit", Double, nullable=True),
    Column("engagement", Double, nullable=True),
    Column("rule_score", Double, nullable=True),
    Column("rule_grade", String(32), nullable=True),
    Column("reasons", Text, nullable=True),
    PrimaryKeyConstraint("batch_id", "lead_id", name="pk_scores"),
    Index("ix_scores_batch_rank", "batch_id", "rank"),
    Index("ix_scores_lead", "lead_id"),  # schema 2: a lead's history across batches
)

current_batch_table = Table(
    "current_batch",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("batch_id", String(64), ForeignKey("batches.batch_id"), nullable=True),
    CheckConstraint("id = 1", name="ck_current_batch_single_row"),
)

changes_table = Table(
    "changes",
    metadata,
    Column(
        "batch_id",
        String(64),
        ForeignKey("batches.batch_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("lead_id", String(255), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("previous_batch_id", String(64), nullable=False),
    Column("owner", String(255), nullable=True),
    Column("old_grade", String(32), nullable=True),
    Column("new_grade", String(32), nullable=True),
    Column("old_score", Integer, nullable=True),
    Column("new_score", Integer, nullable=True),
    PrimaryKeyConstraint("batch_id", "lead_id", name="pk_changes"),
    CheckConstraint(
        "kind IN (" + ", ".join(f"'{k}'" for k in CHANGE_KINDS) + ")",
        name="ck_changes_kind",
    ),
)


def _migrate_1_to_2(conn: Connection) -> None:
    """Version 2 adds the ``changes`` table (batches published before it have no changes)
    and an index on ``scores.lead_id`` (a lead's history, for the API)."""
    changes_table.create(conn, checkfirst=True)
    index = next(i for i in scores_table.indexes if i.name == "ix_scores_lead")
    index.create(conn, checkfirst=True)


# Upgrades from an older schema: _MIGRATIONS[v] moves a store from version v to v + 1.
_MIGRATIONS: dict[int, Callable[[Connection], None]] = {1: _migrate_1_to_2}


def _grade_rank(column: Any, grade_order: Sequence[str] | None) -> Any:
    """SQL expression ordering grades best first: the position in ``grade_order``.

    Without an order the grade text itself is compared (A < B < C: A is best). Grades
    missing from the order sort after every listed one.
    """
    if grade_order is None:
        return column
    return case(
        {grade: position for position, grade in enumerate(grade_order)},
        value=column,
        else_=len(grade_order),
    )


def _change_inserts(new: str, old: str, grade_order: Sequence[str] | None) -> list[Any]:
    """INSERT ... SELECT statements writing the change feed of batch ``new`` against ``old``.

    Four kinds, one row per lead at most: ``up`` / ``down`` (in both batches, the grade
    moved to a better / worse band), ``appeared`` (only in ``new``: a new open lead) and
    ``left`` (only in ``old``: the lead closed or was dropped). The work happens in the
    database, so it costs two index scans whatever the batch size.
    """
    n = scores_table.alias("n")
    o = scores_table.alias("o")
    target = [
        "batch_id",
        "lead_id",
        "kind",
        "previous_batch_id",
        "owner",
        "old_grade",
        "new_grade",
        "old_score",
        "new_score",
    ]
    better = _grade_rank(n.c.grade, grade_order) < _grade_rank(o.c.grade, grade_order)
    moved = (
        select(
            literal(new),
            n.c.lead_id,
            case((better, literal(UP)), else_=literal(DOWN)),
            literal(old),
            n.c.owner,
            o.c.grade,
            n.c.grade,
            o.c.score,
            n.c.score,
        )
        .select_from(n.join(o, (o.c.lead_id == n.c.lead_id) & (o.c.batch_id == old)))
        .where(n.c.batch_id == new, n.c.grade != o.c.grade)
    )
    in_old = exists().where(o.c.batch_id == old, o.c.lead_id == n.c.lead_id)
    appeared = select(
        literal(new),
        n.c.lead_id,
        literal(APPEARED),
        literal(old),
        n.c.owner,
        null(),
        n.c.grade,
        null(),
        n.c.score,
    ).where(n.c.batch_id == new, ~in_old)
    in_new = exists().where(n.c.batch_id == new, n.c.lead_id == o.c.lead_id)
    left = select(
        literal(new),
        o.c.lead_id,
        literal(LEFT),
        literal(old),
        o.c.owner,
        o.c.grade,
        null(),
        o.c.score,
        null(),
    ).where(o.c.batch_id == old, ~in_new)
    return [insert(changes_table).from_select(target, query) for query in (moved, appeared, left)]


def new_batch_id(now: datetime | None = None) -> str:
    """Return a sortable batch id: UTC timestamp plus a short random suffix.

    Example: ``20261122T031500Z-a1b2c3``. The timestamp makes ids sort by creation time
    (to the second); the suffix keeps two runs in the same second apart.
    """
    now = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def validate_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """Check a scores frame against the contract and return a normalised copy.

    Raises ValueError naming the column and up to five offending lead_ids, so a bad
    scoring run fails before anything is written. The copy holds only
    :data:`SCORE_COLUMNS` with canonical dtypes (int64, float64, text); the input frame
    is not modified.
    """
    missing = [c for c in SCORE_COLUMNS if c not in scores.columns]
    if missing:
        raise ValueError(f"scores frame is missing required column(s): {missing}")
    if len(scores) == 0:
        raise ValueError(
            "scores frame is empty: refusing to publish a batch with no leads "
            "(it would replace the current batch with nothing)"
        )
    frame = scores.loc[:, list(SCORE_COLUMNS)].reset_index(drop=True)

    lead_id = frame["lead_id"]
    blank = lead_id.isna() | (lead_id.astype(str).str.strip() == "")
    if blank.any():
        rows = list(blank[blank].index[:_EXAMPLES])
        raise ValueError(f"column 'lead_id' has null or empty values (rows {rows})")
    lead_id = lead_id.astype(str)
    dup = lead_id.duplicated(keep=False)
    if dup.any():
        examples = list(dict.fromkeys(lead_id[dup]))[:_EXAMPLES]
        raise ValueError(f"column 'lead_id' has duplicate values, e.g. lead_id {examples}")

    def fail(column: str, bad: pd.Series, what: str) -> None:
        if bad.any():
            examples = lead_id[bad].head(_EXAMPLES).tolist()
            raise ValueError(
                f"column {column!r} {what} ({int(bad.sum())} rows), e.g. lead_id {examples}"
            )

    out: dict[str, pd.Series] = {"lead_id": lead_id}
    numeric: dict[str, pd.Series] = {}
    for column in (*FLOAT_COLUMNS, *INT_COLUMNS):
        raw = frame[column]
        values = pd.to_numeric(raw, errors="coerce").astype("float64")
        fail(column, raw.notna() & values.isna(), "has non-numeric values")
        numeric[column] = values

    probability = numeric["probability"]
    fail("probability", ~probability.between(0.0, 1.0), "must be within [0, 1] and not null")
    score = numeric["score"]
    fail("score", ~score.between(0, 100), "must be within [0, 100] and not null")
    fail("score", score != score.round(), "must hold whole numbers")
    rank = numeric["rank"]
    fail("rank", ~(rank >= 1), "must be >= 1 and not null")
    fail("rank", rank != rank.round(), "must hold whole numbers")
    percentile = numeric["percentile"]
    fail("percentile", ~percentile.between(0.0, 100.0), "must be within [0, 100] and not null")
    fail("grade", frame["grade"].isna(), "has null values")

    for column in SCORE_COLUMNS:
        if column in INT_COLUMNS:
            out[column] = numeric[column].astype("int64")
        elif column in FLOAT_COLUMNS:
            out[column] = numeric[column]
        elif column != "lead_id":
            raw = frame[column]
            out[column] = raw.where(raw.isna(), raw.astype(str)).astype(_TEXT_DTYPE)
    out["lead_id"] = lead_id.astype(_TEXT_DTYPE)
    return pd.DataFrame(out, columns=list(SCORE_COLUMNS))


INSERT_COLUMNS: tuple[str, ...] = ("batch_id", *SCORE_COLUMNS)
"""Column order of the rows :func:`_records` builds and ``_insert_chunk`` sends."""


def _records(frame: pd.DataFrame, batch_id: str) -> list[tuple[Any, ...]]:
    """Turn a normalised chunk into DB-API rows (tuples in :data:`INSERT_COLUMNS` order):
    native Python values, NULL for missing."""
    columns: list[list[Any]] = [[batch_id] * len(frame)]
    for name in SCORE_COLUMNS:
        series = frame[name]
        if name in INT_COLUMNS:
            columns.append(series.tolist())
        else:
            columns.append(series.astype(object).where(series.notna(), None).tolist())
    return list(zip(*columns, strict=True))


def _frame_from_rows(rows: list[Any]) -> pd.DataFrame:
    """Build the read-side frame (score columns + batch columns) with canonical dtypes."""
    names = [*SCORE_COLUMNS, *BATCH_COLUMNS]
    values: list[Any] = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    data: dict[str, pd.Series] = {}
    for name, column in zip(names, values, strict=True):
        if name in INT_COLUMNS:
            data[name] = pd.Series(column, dtype="int64")
        elif name in FLOAT_COLUMNS:
            data[name] = pd.Series(column, dtype="float64")
        elif name == "scored_at":
            stamps = pd.to_datetime(list(column), utc=True)
            data[name] = pd.Series(stamps, dtype="datetime64[us, UTC]")
        else:
            data[name] = pd.Series(column, dtype=_TEXT_DTYPE)
    return pd.DataFrame(data, columns=names)


def _batch_info(row: Any) -> BatchInfo:
    """Map a ``batches`` row to a BatchInfo."""
    return BatchInfo(
        batch_id=row.batch_id,
        model_version=row.model_version,
        as_of=row.as_of,
        created_at=row.created_at,
        published_at=row.published_at,
        n_rows=row.n_rows,
        status=row.status,
    )


def _sqlite_file(url: str) -> Path | None:
    """Return the database file of a file-backed SQLite URL, else None."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


class ScoreStore:
    """Scoring batches in a SQL database, published atomically through a pointer row."""

    def __init__(self, config: StoreConfig) -> None:
        """Create the engine (no connection yet); for a SQLite file, create its folder.

        SQLite connections get ``foreign_keys=ON`` and, for files, the WAL journal, so
        readers (API, exports) and the publishing writer do not block each other.
        """
        self.config = config
        db_file = _sqlite_file(config.url)
        if db_file is not None:
            db_file.parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = create_engine(config.url)
        if self.engine.dialect.name == "sqlite":
            use_wal = db_file is not None

            @event.listens_for(self.engine, "connect")
            def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA foreign_keys=ON")
                if use_wal:
                    # WAL + NORMAL: commits stop fsyncing (checkpoints still do); a power
                    # cut can lose the last commits but never corrupts the file, and a lost
                    # flip leaves the previous batch current, which publish already allows.
                    cursor.execute("PRAGMA journal_mode=WAL")
                    cursor.execute("PRAGMA synchronous=NORMAL")
                    cursor.execute(f"PRAGMA wal_autocheckpoint={config.sqlite_checkpoint_pages}")
                cursor.close()

        self._schema_ok = False
        self._insert: tuple[str, bool] | None = None

    def close(self) -> None:
        """Release pooled connections (files can then be moved or deleted)."""
        self.engine.dispose()

    # ------------------------------------------------------------------ schema

    def create(self) -> None:
        """Create the tables if needed and record :data:`SCHEMA_VERSION`; safe to rerun.

        An older store is upgraded through ``_MIGRATIONS``; a store written by newer code
        is refused with SchemaVersionError, before anything is touched.
        """
        with self.engine.begin() as conn:
            stored = self._stored_version(conn)
            if stored is not None and stored > SCHEMA_VERSION:
                raise self._too_new(stored)
            if stored is not None and stored < SCHEMA_VERSION:
                for version in range(stored, SCHEMA_VERSION):
                    if version not in _MIGRATIONS:
                        raise SchemaVersionError(
                            f"no migration from scores-store schema version {version} to "
                            f"{version + 1}"
                        )
                    log.info("migrating scores store schema %d -> %d", version, version + 1)
                    _MIGRATIONS[version](conn)
            metadata.create_all(conn, checkfirst=True)
            now = datetime.now(UTC)
            if stored is None:
                conn.execute(
                    insert(schema_version_table).values(
                        id=1, version=SCHEMA_VERSION, applied_at=now
                    )
                )
            elif stored != SCHEMA_VERSION:
                conn.execute(
                    update(schema_version_table)
                    .where(schema_version_table.c.id == 1)
                    .values(version=SCHEMA_VERSION, applied_at=now)
                )
            has_pointer = conn.scalar(select(func.count()).select_from(current_batch_table))
            if not has_pointer:
                conn.execute(insert(current_batch_table).values(id=1, batch_id=None))
        self._schema_ok = True

    @staticmethod
    def _stored_version(conn: Connection) -> int | None:
        """Schema version recorded in the store, or None for an empty database."""
        if not inspect(conn).has_table(schema_version_table.name):
            return None
        return conn.scalar(
            select(schema_version_table.c.version).where(schema_version_table.c.id == 1)
        )

    @staticmethod
    def _too_new(stored: int) -> SchemaVersionError:
        return SchemaVersionError(
            f"the scores store has schema version {stored}, newer than this code's "
            f"{SCHEMA_VERSION}: upgrade leadscore before using this store"
        )

    def _require_schema(self) -> None:
        """Refuse (once per instance) a store that is missing or of another schema version."""
        if self._schema_ok:
            return
        with self.engine.connect() as conn:
            stored = self._stored_version(conn)
        if stored is None:
            raise StoreError(
                f"no scores store at {self.engine.url!r}: run ScoreStore.create() first"
            )
        if stored > SCHEMA_VERSION:
            raise self._too_new(stored)
        if stored < SCHEMA_VERSION:
            raise SchemaVersionError(
                f"the scores store has schema version {stored}, older than this code's "
                f"{SCHEMA_VERSION}: run ScoreStore.create() to upgrade it"
            )
        self._schema_ok = True

    # ----------------------------------------------------------------- publish

    def publish(
        self,
        scores: pd.DataFrame,
        *,
        model_version: str,
        as_of: datetime,
        batch_id: str | None = None,
        grade_order: Sequence[str] | None = None,
    ) -> BatchInfo:
        """Write ``scores`` as a new batch and make it current; return the published batch.

        ``grade_order`` lists the grades best first (e.g. the keys of
        ``scoring.grades``) and decides whether a grade change is ``up`` or ``down`` in
        the change feed; by default grades compare alphabetically (A best).

        Steps: validate; insert the batch row as ``writing``; insert the rows in chunks
        (one transaction each, so memory and lock times stay small); check the row count;
        then, in one transaction, point ``current_batch`` at the new batch, mark it
        ``published`` and the previous one ``superseded``. If anything raises before that
        transaction commits, the batch is marked ``failed``, its rows are deleted (both
        best effort) and the error is re-raised: the previous batch stays current and
        complete. Pruning of old batches runs afterwards and never fails the publish.
        """
        self._require_schema()
        frame = validate_scores(scores)
        batch_id = self._open_batch(model_version, as_of, batch_id, len(frame))
        try:
            for chunk in self._chunks(frame):
                self._insert_chunk(_records(chunk, batch_id))
            with self.engine.connect() as conn:
                self._check_written(conn, batch_id, len(frame))
            self._flip(batch_id, grade_order)
        except BaseException:
            self._abandon(batch_id)
            raise
        return self._after_flip(batch_id)

    def publish_stream(
        self,
        partitions: Iterable[pd.DataFrame],
        *,
        model_version: str,
        as_of: datetime,
        batch_id: str | None = None,
        grade_order: Sequence[str] | None = None,
    ) -> BatchInfo:
        """Write a stream of score partitions as ONE batch, then make it current once.

        The partitioned nightly run hands its partitions over as they are scored, so the
        whole batch never sits in memory. Same guarantees as :meth:`publish`: each
        partition is validated and inserted in chunks while the batch is ``writing``;
        after the last one the row count is checked (a lead in two partitions fails on
        the primary key), ``n_rows`` is set and the pointer flips in one transaction.
        Any error (also one raised by the iterator itself) marks the batch ``failed``,
        deletes its rows and re-raises: the previous batch stays current. An empty
        stream is refused before anything is written.
        """
        self._require_schema()
        stream = iter(partitions)
        first = next(stream, None)
        if first is None:
            raise ValueError("no score partitions: refusing to publish an empty batch")
        batch_id = self._open_batch(model_version, as_of, batch_id, 0)
        try:
            total = 0
            for part in itertools.chain([first], stream):
                frame = validate_scores(part)
                for chunk in self._chunks(frame):
                    self._insert_chunk(_records(chunk, batch_id))
                total += len(frame)
            with self.engine.begin() as conn:
                self._check_written(conn, batch_id, total)
                conn.execute(
                    update(batches_table)
                    .where(batches_table.c.batch_id == batch_id)
                    .values(n_rows=total)
                )
            self._flip(batch_id, grade_order)
        except BaseException:
            self._abandon(batch_id)
            raise
        return self._after_flip(batch_id)

    def _open_batch(
        self, model_version: str, as_of: datetime, batch_id: str | None, n_rows: int
    ) -> str:
        """Check the batch's labels and insert its row as "writing"; return its id.

        Called outside the clean-up block: if this insert fails (e.g. the batch_id
        exists), the batch is not ours and must not be marked failed or emptied.
        """
        if as_of.tzinfo is None or as_of.utcoffset() is None:
            raise ValueError("as_of must be a timezone-aware datetime")
        if not model_version:
            raise ValueError("model_version must be a non-empty string")
        created_at = datetime.now(UTC)
        batch_id = batch_id or new_batch_id(created_at)
        with self.engine.begin() as conn:
            conn.execute(
                insert(batches_table).values(
                    batch_id=batch_id,
                    model_version=model_version,
                    as_of=as_of,
                    created_at=created_at,
                    published_at=None,
                    n_rows=n_rows,
                    status=WRITING,
                )
            )
        return batch_id

    @staticmethod
    def _check_written(conn: Connection, batch_id: str, expected: int) -> None:
        """Refuse to flip a batch whose rows in the store are not exactly those written."""
        written = conn.scalar(
            select(func.count())
            .select_from(scores_table)
            .where(scores_table.c.batch_id == batch_id)
        )
        if written != expected:
            raise StoreError(f"batch {batch_id}: {written} rows in the store, expected {expected}")

    def _after_flip(self, batch_id: str) -> BatchInfo:
        """Prune old batches (a failure there cannot unpublish) and describe the new one."""
        try:
            self._prune()
        except Exception:
            log.exception("pruning old score batches failed; batch %s is published", batch_id)
        info = self._get_batch(batch_id)
        if info is None:  # pragma: no cover - only if someone deleted it meanwhile
            raise StoreError(f"batch {batch_id} vanished after publishing")
        return info

    def _chunks(self, frame: pd.DataFrame) -> Iterator[pd.DataFrame]:
        """Yield consecutive slices of ``chunk_rows`` rows."""
        size = self.config.chunk_rows
        for start in range(0, len(frame), size):
            yield frame.iloc[start : start + size]

    def _insert_chunk(self, records: list[dict[str, Any]]) -> None:
        """Insert one chunk of score rows in its own transaction."""
        if not records:  # an empty executemany would become "INSERT ... DEFAULT VALUES"
            return
        sql, positional = self._insert_sql()
        rows: list[Any] = (
            records if positional else [dict(zip(INSERT_COLUMNS, r, strict=True)) for r in records]
        )
        with self.engine.begin() as conn:
            conn.exec_driver_sql(sql, rows)

    def _insert_sql(self) -> tuple[str, bool]:
        """The driver-level INSERT of a score row, and whether it takes positional rows.

        Rows go straight to the DB-API ``executemany``: SQLAlchemy's per-row parameter
        processing cost more than SQLite's own insert (~2 s per 200k rows).
        """
        if self._insert is None:
            dialect = self.engine.dialect
            compiled = insert(scores_table).compile(dialect=dialect, column_keys=INSERT_COLUMNS)
            if dialect.positional and tuple(compiled.positiontup or ()) != INSERT_COLUMNS:
                raise RuntimeError(f"unexpected INSERT parameter order {compiled.positiontup}")
            self._insert = (str(compiled), bool(dialect.positional))
        return self._insert

    def _flip(self, batch_id: str, grade_order: Sequence[str] | None = None) -> None:
        """Make ``batch_id`` current in one transaction (the only visible step of publish).

        The pointer row is updated first: it takes the write lock (SQLite) or the row
        lock (PostgreSQL), so concurrent publishers flip one after the other. The change
        feed against the batch being replaced (the one still ``published``) is written
        next, in the same transaction. Every other ``published`` batch is then
        superseded, which keeps "exactly one published batch, the current one" true even
        when two publishers race.
        """
        with self.engine.begin() as conn:
            moved = conn.execute(
                update(current_batch_table)
                .where(current_batch_table.c.id == 1)
                .values(batch_id=batch_id)
            ).rowcount
            if moved != 1:
                raise StoreError("the current_batch pointer row is missing: run create()")
            previous = conn.scalar(
                select(batches_table.c.batch_id).where(
                    batches_table.c.status == PUBLISHED, batches_table.c.batch_id != batch_id
                )
            )
            if previous is not None:
                for statement in _change_inserts(batch_id, previous, grade_order):
                    conn.execute(statement)
            conn.execute(
                update(batches_table)
                .where(
                    batches_table.c.status == PUBLISHED,
                    batches_table.c.batch_id != batch_id,
                )
                .values(status=SUPERSEDED)
            )
            published = conn.execute(
                update(batches_table)
                .where(batches_table.c.batch_id == batch_id, batches_table.c.status == WRITING)
                .values(status=PUBLISHED, published_at=datetime.now(UTC))
            ).rowcount
            if published != 1:
                raise StoreError(f"batch {batch_id} is no longer 'writing'; not publishing it")

    def _abandon(self, batch_id: str) -> None:
        """Best effort after a failed publish: mark the batch failed, then drop its rows.

        Only a batch still ``writing`` is touched, so a batch that did get published
        (e.g. the commit went through but the connection dropped) keeps its rows.
        """
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    update(batches_table)
                    .where(batches_table.c.batch_id == batch_id, batches_table.c.status == WRITING)
                    .values(status=FAILED)
                )
        except Exception:
            log.exception("could not mark batch %s as failed", batch_id)
        try:
            with self.engine.begin() as conn:
                conn.execute(self._delete_rows_if(batch_id, (FAILED,)))
        except Exception:
            log.exception("could not delete the rows of failed batch %s", batch_id)

    @staticmethod
    def _delete_rows_if(batch_id: str, statuses: tuple[str, ...]) -> Any:
        """DELETE of a batch's score rows, guarded by the batch's status (never the current)."""
        guard = exists().where(
            batches_table.c.batch_id == batch_id, batches_table.c.status.in_(statuses)
        )
        return delete(scores_table).where(scores_table.c.batch_id == batch_id, guard)

    def _prune(self) -> None:
        """Keep the newest ``keep_batches`` complete batches; delete the older ones.

        Complete batches are the published one and the superseded ones, newest first by
        publication time. Failed attempts older than the oldest kept batch go too. A
        batch that is ``writing`` (maybe another run in flight) or current is never
        touched: each delete re-checks the status in its own transaction.
        """
        self.reap_stale_writing(timedelta(hours=self.config.stale_writing_hours))
        keep = self.config.keep_batches
        with self.engine.connect() as conn:
            complete = conn.execute(
                select(batches_table.c.batch_id, batches_table.c.published_at)
                .where(batches_table.c.status.in_((PUBLISHED, SUPERSEDED)))
                .order_by(batches_table.c.published_at.desc(), batches_table.c.batch_id.desc())
            ).all()
            if len(complete) <= keep:
                oldest_kept = complete[-1].published_at if complete else None
                doomed = []
            else:
                oldest_kept = complete[keep - 1].published_at
                doomed = [row.batch_id for row in complete[keep:]]
            if oldest_kept is not None:
                doomed += conn.scalars(
                    select(batches_table.c.batch_id).where(
                        batches_table.c.status == FAILED,
                        batches_table.c.created_at < oldest_kept,
                    )
                ).all()
        for old in doomed:
            with self.engine.begin() as conn:
                conn.execute(self._delete_rows_if(old, (SUPERSEDED, FAILED)))
                conn.execute(delete(changes_table).where(changes_table.c.batch_id == old))
                conn.execute(
                    delete(batches_table).where(
                        batches_table.c.batch_id == old,
                        batches_table.c.status.in_((SUPERSEDED, FAILED)),
                    )
                )
            log.info("pruned score batch %s", old)

    def reap_stale_writing(self, older_than: timedelta) -> list[str]:
        """Mark ``writing`` batches started more than ``older_than`` ago as failed and
        delete their rows; return their ids.

        A publisher killed mid-write (SIGKILL, OOM, lost machine) cannot clean up after
        itself: its batch stays ``writing`` with part of its rows, invisible to readers
        but taking space. Called from every publish with ``stale_writing_hours``; the
        failed rows are later pruned like any failed attempt.
        """
        cutoff = datetime.now(UTC) - older_than
        with self.engine.begin() as conn:
            stale = list(
                conn.scalars(
                    select(batches_table.c.batch_id).where(
                        batches_table.c.status == WRITING, batches_table.c.created_at < cutoff
                    )
                ).all()
            )
            if stale:
                conn.execute(
                    update(batches_table)
                    .where(batches_table.c.batch_id.in_(stale), batches_table.c.status == WRITING)
                    .values(status=FAILED)
                )
        for batch_id in stale:
            with self.engine.begin() as conn:
                conn.execute(self._delete_rows_if(batch_id, (FAILED,)))
            log.warning("batch %s was left 'writing' by a dead run: marked failed", batch_id)
        return stale

    # ------------------------------------------------------------------- read

    def _get_batch(self, batch_id: str) -> BatchInfo | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(batches_table).where(batches_table.c.batch_id == batch_id)
            ).first()
        return _batch_info(row) if row is not None else None

    def current_batch(self) -> BatchInfo | None:
        """The batch readers see now, or None before the first publish."""
        self._require_schema()
        with self.engine.connect() as conn:
            row = conn.execute(
                select(batches_table).join(
                    current_batch_table,
                    current_batch_table.c.batch_id == batches_table.c.batch_id,
                )
            ).first()
        return _batch_info(row) if row is not None else None

    def batches(self) -> list[BatchInfo]:
        """Every batch the store still records (all statuses), newest first."""
        self._require_schema()
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(batches_table).order_by(
                    batches_table.c.created_at.desc(), batches_table.c.batch_id.desc()
                )
            ).all()
        return [_batch_info(row) for row in rows]

    def read_batch(self, batch_id: str | None = None) -> pd.DataFrame:
        """Return one complete batch, sorted by rank (then lead_id).

        ``None`` reads the current batch through the pointer, in the same single SELECT
        as the rows, so a publish or prune running meanwhile cannot mix two batches.
        An explicit id must name a complete (published or superseded) batch. Columns:
        :data:`SCORE_COLUMNS` then ``batch_id``, ``model_version`` and ``scored_at`` (the
        batch's ``as_of``, UTC). Raises LookupError if there is no such batch.
        """
        self._require_schema()
        query: Select[Any] = select(
            *(scores_table.c[name] for name in SCORE_COLUMNS),
            scores_table.c.batch_id,
            batches_table.c.model_version,
            batches_table.c.as_of.label("scored_at"),
        ).join(batches_table, batches_table.c.batch_id == scores_table.c.batch_id)
        if batch_id is None:
            query = query.join(
                current_batch_table,
                current_batch_table.c.batch_id == scores_table.c.batch_id,
            )
        else:
            query = query.where(
                scores_table.c.batch_id == batch_id,
                batches_table.c.status.in_((PUBLISHED, SUPERSEDED)),
            )
        query = query.order_by(scores_table.c.rank, scores_table.c.lead_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        if not rows:
            self._explain_empty(batch_id)
        return _frame_from_rows(rows)

    def _explain_empty(self, batch_id: str | None) -> None:
        """Raise LookupError saying why a read found no rows."""
        if batch_id is None:
            if self.current_batch() is None:
                raise LookupError("no scoring batch has been published yet")
            return
        info = self._get_batch(batch_id)
        if info is None:
            raise LookupError(f"no scoring batch {batch_id!r} (never written or pruned)")
        if info.status not in (PUBLISHED, SUPERSEDED):
            raise LookupError(f"scoring batch {batch_id!r} is {info.status!r}, not readable")

    # ------------------------------------------------------- reads for the API

    def complete_batches(self) -> list[BatchInfo]:
        """Published and superseded batches, oldest first by publication time."""
        self._require_schema()
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(batches_table)
                .where(batches_table.c.status.in_((PUBLISHED, SUPERSEDED)))
                .order_by(batches_table.c.published_at, batches_table.c.batch_id)
            ).all()
        return [_batch_info(row) for row in rows]

    def page(
        self,
        *,
        batch_id: str | None = None,
        after_rank: int = 0,
        limit: int = 100,
        grade: Sequence[str] = (),
        owner: str | None = None,
        min_score: int | None = None,
        changed_since_batch: str | None = None,
    ) -> tuple[BatchInfo, list[dict[str, Any]]]:
        """One priority-ordered page of a batch: rows with rank > ``after_rank``.

        ``batch_id`` None reads the current batch; the batch read is returned so a cursor
        can pin it (keyset pagination on the unique rank: later pages of a sync read the
        same batch even if a new one is published meanwhile). ``changed_since_batch``
        keeps only rows whose score or grade differ from that batch's (or are absent
        from it). Raises LookupError if there is no such complete batch.
        """
        self._require_schema()
        with self.engine.connect() as conn:
            if batch_id is None:
                row = conn.execute(
                    select(batches_table).join(
                        current_batch_table,
                        current_batch_table.c.batch_id == batches_table.c.batch_id,
                    )
                ).first()
                if row is None:
                    raise LookupError("no scoring batch has been published yet")
            else:
                row = conn.execute(
                    select(batches_table).where(
                        batches_table.c.batch_id == batch_id,
                        batches_table.c.status.in_((PUBLISHED, SUPERSEDED)),
                    )
                ).first()
                if row is None:
                    raise LookupError(f"no complete scoring batch {batch_id!r} (pruned?)")
            info = _batch_info(row)
            s = scores_table
            query = select(*(s.c[name] for name in SCORE_COLUMNS)).where(
                s.c.batch_id == info.batch_id, s.c.rank > after_rank
            )
            if grade:
                query = query.where(s.c.grade.in_(list(grade)))
            if owner is not None:
                query = query.where(s.c.owner == owner)
            if min_score is not None:
                query = query.where(s.c.score >= min_score)
            if changed_since_batch is not None:
                o = scores_table.alias("o")
                same = exists().where(
                    o.c.batch_id == changed_since_batch,
                    o.c.lead_id == s.c.lead_id,
                    o.c.score == s.c.score,
                    o.c.grade == s.c.grade,
                )
                query = query.where(~same)
            rows = conn.execute(query.order_by(s.c.rank).limit(limit)).all()
        # plain str keys (SQLAlchemy's are a str subclass, which fast JSON encoders refuse)
        return info, [dict(zip(SCORE_COLUMNS, row, strict=True)) for row in rows]

    def batch_as_of(self, when: datetime) -> BatchInfo | None:
        """The complete batch that was current at ``when`` (None if none is kept)."""
        self._require_schema()
        with self.engine.connect() as conn:
            row = conn.execute(
                select(batches_table)
                .where(
                    batches_table.c.status.in_((PUBLISHED, SUPERSEDED)),
                    batches_table.c.published_at <= when,
                )
                .order_by(batches_table.c.published_at.desc(), batches_table.c.batch_id.desc())
                .limit(1)
            ).first()
        return _batch_info(row) if row is not None else None

    def lead_history(self, lead_id: str, limit: int = 10) -> list[dict[str, Any]]:
        """The lead's rows in the newest ``limit`` complete batches, newest first.

        Each row holds the score columns plus ``batch_id``, ``model_version``,
        ``scored_at`` and ``published_at``; empty if the lead is in no kept batch.
        """
        self._require_schema()
        b = batches_table
        query = (
            select(
                *(scores_table.c[name] for name in SCORE_COLUMNS),
                b.c.batch_id,
                b.c.model_version,
                b.c.as_of.label("scored_at"),
                b.c.published_at,
                b.c.status,
            )
            .join(b, b.c.batch_id == scores_table.c.batch_id)
            .where(scores_table.c.lead_id == lead_id, b.c.status.in_((PUBLISHED, SUPERSEDED)))
            .order_by(b.c.published_at.desc(), b.c.batch_id.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query).all()]

    def changes_since(
        self, since: str | None = None, limit_batches: int = 100
    ) -> list[tuple[BatchInfo, list[dict[str, Any]]]]:
        """The change feed of every complete batch published after batch ``since``.

        ``since`` None means every kept batch. Oldest batch first, each with its change
        rows ordered by kind then lead_id. Raises LookupError if ``since`` names no kept
        complete batch (never written, failed, or pruned: the caller must resync).
        """
        self._require_schema()
        kept = self.complete_batches()
        if since is not None:
            ids = [info.batch_id for info in kept]
            if since not in ids:
                raise LookupError(
                    f"batch {since!r} is not a kept complete batch (unknown or pruned): "
                    "resync from /v1/scores"
                )
            kept = kept[ids.index(since) + 1 :]
        kept = kept[:limit_batches]
        out: list[tuple[BatchInfo, list[dict[str, Any]]]] = []
        with self.engine.connect() as conn:
            for info in kept:
                rows = conn.execute(
                    select(changes_table)
                    .where(changes_table.c.batch_id == info.batch_id)
                    .order_by(changes_table.c.kind, changes_table.c.lead_id)
                ).all()
                out.append((info, [dict(r._mapping) for r in rows]))
        return out

    def owners(self, batch_id: str) -> list[str]:
        """Distinct non-null owners of a batch, sorted (the page's owner filter)."""
        self._require_schema()
        with self.engine.connect() as conn:
            return list(
                conn.scalars(
                    select(scores_table.c.owner)
                    .where(scores_table.c.batch_id == batch_id, scores_table.c.owner.is_not(None))
                    .distinct()
                    .order_by(scores_table.c.owner)
                ).all()
            )
