"""The store's connection and schema checks, shared by its writer and reader halves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.engine import make_url

from leadscore.serving.config import StoreConfig
from leadscore.serving.store.migrate import check_schema, create_schema
from leadscore.serving.store.schema import BatchInfo, batch_info, batches_table

SQLITE_PAGE_SIZE = 16384
"""Page size of a new SQLite store (bytes); an existing file keeps its own."""


def sqlite_file(url: str) -> Path | None:
    """Return the database file of a file-backed SQLite URL, else None."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _lower(value: object) -> object:
    """SQL ``lower()`` for SQLite, for every script (PostgreSQL's already is)."""
    return value.lower() if isinstance(value, str) else value


class StoreBase:
    """The engine of one scores store, its schema creation and the schema check readers
    and writers run first."""

    def __init__(self, config: StoreConfig) -> None:
        """Create the engine (no connection yet); for a SQLite file, create its folder.

        SQLite connections get ``foreign_keys=ON`` and, for files, the WAL journal, so
        readers (API, exports) and the publishing writer do not block each other; and a
        ``lower()`` that folds every script, so a search finds "Ångström" as "ångström".
        """
        self.config = config
        db_file = sqlite_file(config.url)
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
                    # a new file only (then fixed): 16 KiB pages hold seven 2.2 KB score
                    # rows where 4 KiB ones held one, wasting half of each (issue #19)
                    cursor.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
                    # WAL + NORMAL: commits stop fsyncing (checkpoints still do); a power
                    # cut can lose the last commits but never corrupts the file, and a lost
                    # flip leaves the previous batch current, which publish already allows.
                    cursor.execute("PRAGMA journal_mode=WAL")
                    cursor.execute("PRAGMA synchronous=NORMAL")
                    cursor.execute(f"PRAGMA wal_autocheckpoint={config.sqlite_checkpoint_pages}")
                cursor.close()
                # SQLite's lower() folds ASCII only: searches ("Ångström") fold like Python
                dbapi_connection.create_function("lower", 1, _lower, deterministic=True)

        self._schema_ok = False
        self._insert: str | None = None

    def close(self) -> None:
        """Release pooled connections (files can then be moved or deleted)."""
        self.engine.dispose()

    # ------------------------------------------------------------------ schema

    def create(self) -> None:
        """Create the tables if needed and record :data:`SCHEMA_VERSION`; safe to rerun.

        An older store is upgraded through its migrations; a store written by newer code
        is refused with SchemaVersionError, before anything is touched (see
        ``store/migrate.py``).
        """
        with self.engine.begin() as conn:
            create_schema(conn)
        self._schema_ok = True

    def _require_schema(self) -> None:
        """Refuse (once per instance) a store that is missing or of another schema version."""
        if self._schema_ok:
            return
        with self.engine.connect() as conn:
            check_schema(conn, self.engine.url)
        self._schema_ok = True

    def _get_batch(self, batch_id: str) -> BatchInfo | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(batches_table).where(batches_table.c.batch_id == batch_id)
            ).first()
        return batch_info(row) if row is not None else None
