"""A batch's leads in rank order: the ``score_ranks`` table (schema 11, issue #19).

Score rows reach the store by partition, in lead-id order, so their ranks are random.
Until schema 10 ``scores`` had a ``(batch_id, rank)`` index, filled row by row in that
random order: each commit of a SQLite publish rewrote most of its leaf pages, and once
the index outgrew the writer's page cache (~2-3M leads) it read them back too, so the
publish cost per lead grew with the batch (~10 us a lead at 1M, ~25 at 10M; an insert of
6M rows with the index 3.1x the time without it). Now, once every row of a batch is in
(before the count check and the flip), :func:`write_ranks` writes its (rank, lead id)
pairs into ``score_ranks`` in rank order, which only ever appends to its key; readers that
page by rank read it and join the rows on ``scores``'s primary key
(:func:`ranked_scores`), one more index probe a row.

The pairs come from ``ix_scores_feed`` (it holds the rank since schema 11), never from
the rows themselves. On SQLite they are sorted into a temporary table (the connection's
own file: no write lock held meanwhile) and copied over in chunks of :data:`CHUNK_ROWS`, one
transaction each, like the rows (a 10M batch in one statement would hold the lock far
past the 5 s the API's own writes wait); on PostgreSQL one ``INSERT ... SELECT``, after the
publish's VACUUM (``changes.prepare_changes``), so an index-only scan. The table has no
foreign key: PostgreSQL would check it row by row (schema 9 dropped the one of ``scores``
for that); its rows are deleted with the batch's (``call_writes.delete_batch_rows``).
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, Join, and_, text

from leadscore.serving.store.bulk import SQLITE_CACHE_KIB
from leadscore.serving.store.schema import ranks_table, scores_table

CHUNK_ROWS = 100_000
"""Pairs per transaction on SQLite (~3 MB of narrow rows, appended: well under 0.1 s)."""
_SORTED = "leadscore_sorted_ranks"
_FEED_INDEX = "ix_scores_feed"


def ranked_scores() -> Join:
    """``score_ranks`` joined to its batch's ``scores`` rows: select from it, filter on
    ``ranks_table.c.batch_id`` and ``ranks_table.c.rank``, order by the latter."""
    r, s = ranks_table.c, scores_table.c
    return ranks_table.join(scores_table, and_(s.batch_id == r.batch_id, s.lead_id == r.lead_id))


def write_ranks(engine: Engine, batch_id: str, chunk_rows: int | None = None) -> int:
    """Write a batch's (rank, lead id) pairs into ``score_ranks`` in rank order, once all
    its rows are in; return how many were written (``chunk_rows``: :data:`CHUNK_ROWS`)."""
    chunk_rows = chunk_rows or CHUNK_ROWS
    insert = f"INSERT INTO {ranks_table.name} (batch_id, rank, lead_id)"
    if engine.dialect.name != "sqlite":
        with engine.begin() as conn:
            done = conn.execute(
                text(
                    f"{insert} SELECT batch_id, rank, lead_id FROM {scores_table.name}"
                    " WHERE batch_id = :batch_id ORDER BY rank, lead_id"
                ),
                {"batch_id": batch_id},
            )
            return int(done.rowcount or 0)
    select_pairs = (
        f"SELECT rank, lead_id FROM {scores_table.name} INDEXED BY {_FEED_INDEX}"
        " WHERE batch_id = :batch_id ORDER BY rank, lead_id"
    )
    with engine.connect() as conn:
        _sort_into_temp(conn, batch_id, select_pairs)
        try:
            n = int(conn.scalar(text(f"SELECT max(rowid) FROM temp.{_SORTED}")) or 0)
            for start in range(0, n, max(1, chunk_rows)):
                conn.execute(
                    text(
                        f"{insert} SELECT :batch_id, rank, lead_id FROM temp.{_SORTED}"
                        " WHERE rowid > :start AND rowid <= :stop"
                    ),
                    {"batch_id": batch_id, "start": start, "stop": start + chunk_rows},
                )
                conn.commit()
        finally:
            conn.rollback()
            conn.execute(text(f"DROP TABLE IF EXISTS temp.{_SORTED}"))
            conn.commit()
    return n


def _sort_into_temp(conn: Connection, batch_id: str, select_pairs: str) -> None:
    """The batch's pairs sorted by rank into a temporary table, rowid 1 the best (SQLite)."""
    conn.execute(text(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}"))
    conn.execute(text(f"DROP TABLE IF EXISTS temp.{_SORTED}"))
    conn.execute(text(f"CREATE TEMP TABLE {_SORTED} AS {select_pairs}"), {"batch_id": batch_id})
    conn.commit()
