"""Today's call lists as a CSV (``output.calls_csv``): one row per routed lead.

Each rep's list first, reps in ``routing.reps`` order, each in call order (``position``
1 = call first), with who the lead is (name, company, email), its score and grade, its
expected value (probability x deal value) and why it is on that list, and the three
strongest reasons for its score in words, as the CRM export has them; then the leads no
rep could take, best first, with the reason (no territory match, all capacity used...).
Every row names its batch (``batch_id``, last), so a file left behind by a killed run is
found and rewritten (:func:`sync_calls_csv`, as ``serving.export.sync_export`` does for
the CRM file).

Written from the store, after the batch is current, atomically and spreadsheet-safe
(formula cells neutralised: ``serving.export.write_csv_atomic``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from sqlalchemy import select

from leadscore.models.routing.config import Rep
from leadscore.serving.config import StoreConfig
from leadscore.serving.export import (
    PROBABILITY_DIGITS,
    ExportSync,
    sync_file,
    write_csv_atomic,
)
from leadscore.serving.export_arrow import frame_reason_lines
from leadscore.serving.export_fields import REASON_COLUMNS
from leadscore.serving.store import ScoreStore, codec, scores_table
from leadscore.serving.store.outbound_schema import calls_table

CALLS_CSV_COLUMNS: tuple[str, ...] = (
    "rep_id",
    "rep_name",
    "position",
    "lead_id",
    "name",
    "company",
    "email",
    "score",
    "grade",
    "expected",
    "reason",
    *REASON_COLUMNS,
    "batch_id",
)
"""The calls file's columns, in order: who calls, in which place, whom, how good, why."""

_LEAD_COLUMNS = ("name", "company", "email", "score", "grade", "reasons")
_PACKED_AT = (3 + _LEAD_COLUMNS.index("reasons"), None, None)  # after rep, position, lead


def calls_frame(store: ScoreStore, batch_id: str, reps: Sequence[Rep]) -> pd.DataFrame:
    """A batch's call lists as the calls file has them (:data:`CALLS_CSV_COLUMNS`): reps
    in ``reps`` order (a rep no longer configured after them, by id), each by position,
    then the unassigned leads by expected value, best first. ``reps`` gives the names."""
    c, s = calls_table.c, scores_table.c
    query = (
        select(
            c.rep_id,
            c.position,
            c.lead_id,
            *(s[n] for n in _LEAD_COLUMNS),
            c.expected,
            c.reason,
            s.packed,
        )
        .join(scores_table, (s.batch_id == c.batch_id) & (s.lead_id == c.lead_id))
        .where(c.batch_id == batch_id)
    )
    with store.engine.connect() as conn:
        # schema 8: the reasons restored from ``packed`` (store/codec.py)
        rows = codec.restore_tuples(conn, conn.execute(query).all(), _PACKED_AT, batch_id)
    names = ["rep_id", "position", "lead_id", *_LEAD_COLUMNS, "expected", "reason"]
    frame = pd.DataFrame(rows, columns=names)
    order = {r.id: i for i, r in enumerate(reps)}
    rep_order = frame["rep_id"].map(order).fillna(len(order))
    frame = (
        frame.assign(_rep=rep_order, _none=frame["rep_id"].isna(), _neg=-frame["expected"])
        .sort_values(["_none", "_rep", "rep_id", "position", "_neg", "lead_id"], kind="stable")
        .reset_index(drop=True)
    )
    labels = {r.id: r.label for r in reps}
    words = frame_reason_lines(frame)
    return pd.DataFrame(
        {
            "rep_id": frame["rep_id"].astype(object),
            "rep_name": frame["rep_id"].map(lambda i: labels.get(i, i) if i else None),
            "position": frame["position"].astype("Int64"),
            **{n: frame[n] for n in ("lead_id", "name", "company", "email")},
            "score": frame["score"].astype("Int64"),
            "grade": frame["grade"],
            "expected": frame["expected"].astype(float).round(PROBABILITY_DIGITS),
            "reason": frame["reason"],
            **dict(zip(REASON_COLUMNS, words, strict=True)),
            "batch_id": batch_id,
        },
        columns=list(CALLS_CSV_COLUMNS),
    )


def write_calls_csv(
    store: ScoreStore, batch_id: str, reps: Sequence[Rep], path: Path, bom: bool = False
) -> Path:
    """Write a batch's call lists at ``path`` (atomically, formula cells neutralised);
    ``bom``: as ``output.csv_bom``. Returns ``path``."""
    return write_csv_atomic(calls_frame(store, batch_id, reps), path, bom=bom)


def sync_calls_csv(
    config: StoreConfig, reps: Sequence[Rep], path: Path, bom: bool = False
) -> ExportSync:
    """Make the calls file at ``path`` hold the store's current batch's call lists,
    rewriting it when it names another batch (or none: an empty list is rewritten, it
    costs nothing); as ``serving.export.sync_export``, a store with no batch is left
    alone."""

    def rewrite(store: ScoreStore, batch_id: str) -> None:
        write_calls_csv(store, batch_id, reps, path, bom=bom)

    return sync_file(config, path, rewrite)
