"""The nurture list as a CSV for a marketing-automation import (``output.nurture_csv``).

The current batch's leads in ``nurture.cells`` (the quadrant's nurture and educate
cells), best first (by rank), one row each, with the step that would move them
(``next_step``, ``next_step_gain``: ``models/nurture/``). Marketing-automation tools
(HubSpot, Marketo, Mailchimp) match an import on the email address, so ``email`` comes
first; a lead without one is still listed (its cell empty) and counted, so nobody drops
out of the list silently. The columns (:data:`NURTURE_COLUMNS`) and the import steps are in
docs/nurture.md.

The file is written as the CRM export is (``serving/export.py``): UTF-8 (a byte-order mark
only if asked), text quoted, formula cells neutralised (a ``'`` in front), atomically
(``serving/files.py``: a temporary file in the folder, then a rename), and every row names
its ``batch_id``. The rows are read from the store a page at a time (keyset on rank,
pinned to the batch read first), so a batch published meanwhile cannot mix in and a
million-lead batch is never held whole.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from leadscore.models.schema import CELLS
from leadscore.serving.config import StoreConfig
from leadscore.serving.export import write_csv_chunks_atomic
from leadscore.serving.export_arrow import frame_reason_lines
from leadscore.serving.export_fields import REASON_COLUMNS
from leadscore.serving.store import ScoreStore

NURTURE_COLUMNS: list[str] = [
    "email",
    "name",
    "company",
    "lead_id",
    "record_id",
    "cell",
    "score",
    "grade",
    "fit_score",
    "engagement_score",
    "next_step",
    "next_step_gain",
    *REASON_COLUMNS,
    "batch_id",
    "scored_at",
]
"""The nurture CSV's columns, in file order (docs/nurture.md says what each holds)."""

WHOLE_NUMBERS = ("score", "fit_score", "engagement_score")
"""Written as whole numbers (empty where null, never ``57.0``)."""

PAGE_ROWS = 20_000
"""Rows read from the store at a time."""


@dataclass(frozen=True)
class NurtureList:
    """What :func:`export_nurture` wrote: the file, the batch, how many leads, how many of
    them have no email (listed all the same) and how many have a next step."""

    path: Path
    batch_id: str
    n_leads: int
    n_without_email: int
    n_with_step: int

    def describe(self) -> str:
        """One line for a person."""
        return (
            f"{self.n_leads:,} nurture leads of batch {self.batch_id} -> {self.path} "
            f"({self.n_with_step:,} with a next step, {self.n_without_email:,} without an email)"
        )


def export_nurture(
    store: ScoreStore, path: Path, cells: Sequence[str], bom: bool = False
) -> NurtureList:
    """Write the current batch's leads in ``cells`` at ``path`` (atomically; ``bom``: start
    with a UTF-8 byte-order mark, for Excel) and say what was written.

    Raises LookupError if no batch was published, ValueError for a cell that is not one
    of the quadrant's (models/subscores.py).
    """
    unknown = [c for c in cells if c not in CELLS]
    if unknown:
        raise ValueError(f"not quadrant cells: {unknown} (cells are {list(CELLS)})")
    info, first = store.page(cell=list(cells), limit=PAGE_ROWS)
    scored_at = pd.Timestamp(info.as_of).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
    tally = {"leads": 0, "no_email": 0, "steps": 0}

    def pages() -> Iterator[pd.DataFrame]:
        rows = first
        while True:
            frame = nurture_frame(rows, info.batch_id, scored_at)
            tally["leads"] += len(frame)
            tally["no_email"] += int(frame["email"].isna().sum())
            tally["steps"] += int(frame["next_step"].notna().sum())
            yield frame
            if len(rows) < PAGE_ROWS:
                return
            after = int(rows[-1]["rank"])
            _, rows = store.page(
                batch_id=info.batch_id, after_rank=after, cell=list(cells), limit=PAGE_ROWS
            )

    written = write_csv_chunks_atomic(pages(), path, bom=bom)
    return NurtureList(written, info.batch_id, tally["leads"], tally["no_email"], tally["steps"])


def write_nurture_csv(
    store: ScoreStore, path: Path, cells: Sequence[str], bom: bool = False
) -> Path:
    """Write the current batch's nurture list at ``path`` (see :func:`export_nurture`);
    return ``path``. The nightly batch calls it with ``settings.nurture.cells`` and
    ``settings.output.nurture_csv`` once the batch is current."""
    return export_nurture(store, path, cells, bom=bom).path


def nurture_frame(rows: list[dict[str, Any]], batch_id: str, scored_at: str) -> pd.DataFrame:
    """Store rows (``ScoreStore.page``) as the file's rows, in :data:`NURTURE_COLUMNS`
    order, with one type per column whatever the page holds (so every page is written
    alike: numbers as numbers, an empty cell for null)."""
    frame = pd.DataFrame(rows, columns=[c for c in NURTURE_COLUMNS if c not in _MADE] + ["reasons"])
    for column, lines in zip(REASON_COLUMNS, frame_reason_lines(frame), strict=True):
        frame[column] = lines
    for column in WHOLE_NUMBERS:
        frame[column] = pd.array(frame[column], dtype="Int64")
    gain = pd.to_numeric(frame["next_step_gain"], errors="coerce").astype("float64")
    frame["next_step_gain"] = gain.round(4)
    frame["batch_id"] = batch_id
    frame["scored_at"] = scored_at
    for column in NURTURE_COLUMNS:
        if column not in (*WHOLE_NUMBERS, "next_step_gain"):  # text: None where null
            values = frame[column].astype(object)
            frame[column] = values.where(values.notna(), None)
    return frame[NURTURE_COLUMNS]


_MADE = (*REASON_COLUMNS, "batch_id", "scored_at")
"""Columns made here rather than read from the store."""


def nurture_current(
    config: StoreConfig, path: Path, cells: Sequence[str], bom: bool = False
) -> str:
    """Open the store (upgrading an older one), write its current batch's nurture list at
    ``path`` (:func:`export_nurture`) and say what was written: ``leadscore export --list
    nurture``. Raises LookupError if no batch was published, StoreError if the store is
    unusable."""
    store = ScoreStore(config)
    try:
        store.create()  # idempotent; upgrades a store written by an older version
        return export_nurture(store, path, cells, bom=bom).describe()
    finally:
        store.close()
