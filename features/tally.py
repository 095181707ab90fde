"""Row conservation and a source checked in parts (``features.reader`` re-exports these).

Every input row ends clean, quarantined or dropped as a duplicate (:func:`conserved`); a
source checked part by part (:class:`PartsTally`) gets the table rules (bad-row share,
nearly-null attributes) on its totals, as a whole table gets them at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from leadscore.features import hygiene
from leadscore.features.config import ValidationConfig
from leadscore.features.contract import QUARANTINE_COLUMNS, Checked
from leadscore.features.validation import EXAMPLES, ContractError, check_null_share


def conserved(source: str, n_in: int, n_clean: int, n_quarantined: int, n_dropped: int = 0) -> None:
    """Every input row ends clean, quarantined or dropped as a duplicate; else a bug, loudly."""
    if n_clean + n_quarantined + n_dropped != n_in:
        raise RuntimeError(
            f"{source}: row conservation broken: {n_in} in != {n_clean} clean + "
            f"{n_quarantined} quarantined + {n_dropped} duplicates dropped"
        )


PER_FILE_NOTES = ("header_names_normalised", "empty_columns_dropped")
"""Counts about a file's header: every part of the file repeats them, so not summed."""


def add_notes(total: dict[str, int], more: Mapping[str, int] | None) -> dict[str, int]:
    """Counts of what reading normalised, summed key by key (``total`` is updated)."""
    for key, count in (more or {}).items():
        total[key] = total.get(key, 0) + int(count)
    return total


def _add_part_notes(total: dict[str, int], more: Mapping[str, int] | None) -> None:
    """A part's counts: row counts add up, a header's are the file's (the largest)."""
    for key, count in (more or {}).items():
        if key in PER_FILE_NOTES:
            total[key] = max(total.get(key, 0), int(count))
        else:
            total[key] = total.get(key, 0) + int(count)


@dataclass
class PartsTally:
    """A source checked part by part: the counts, null counts and quarantine its table
    rules need, which no part can check on its own."""

    source: str
    n_in: int = 0
    n_clean: int = 0
    n_quarantined: int = 0
    n_dropped: int = 0
    unknown_types: int = 0
    quarantine: list[pd.DataFrame] = field(default_factory=list)
    nulls: dict[str, int] = field(default_factory=dict)
    notes: dict[str, int] = field(default_factory=dict)

    def next_rows(self, n: int) -> np.ndarray:
        """The positions in the source of the next part's ``n`` rows."""
        return np.arange(self.n_in, self.n_in + n)

    def add(self, checked: Checked, n_rows: int) -> None:
        """Count a checked part of ``n_rows`` input rows."""
        self.n_in += n_rows
        self.n_clean += len(checked.rows)
        self.n_quarantined += len(checked.quarantine)
        self.n_dropped += checked.dropped
        self.unknown_types += checked.unknown_types
        _add_part_notes(self.notes, checked.notes)
        self.quarantine.append(checked.quarantine)
        for column, count in (checked.null_counts or {}).items():
            self.nulls[column] = self.nulls.get(column, 0) + count

    def close(
        self,
        validation: ValidationConfig,
        *,
        before: Sequence[pd.DataFrame] = (),
        empty_ok: bool = False,
        lines: hygiene.Lines = hygiene.editor_line,
    ) -> pd.DataFrame:
        """The table rules on the totals; the quarantine, after ``before``'s rows.

        Raises ``ContractError`` for a source with no rows (unless ``empty_ok``), too many
        bad rows or a nearly-null attribute, ``RuntimeError`` if a row went missing.
        """
        if self.n_in == 0 and not empty_ok:
            raise ContractError(f"{self.source}: no rows (the file is empty or has only a header)")
        frames = [*before, *self.quarantine]
        if frames:
            everything = pd.concat(frames, ignore_index=True)
        else:
            everything = pd.DataFrame(columns=list(QUARANTINE_COLUMNS))
        conserved(self.source, self.n_in, self.n_clean, self.n_quarantined, self.n_dropped)
        check_bad_share(self.n_in, everything, self.source, validation, lines)
        check_null_share(self.n_in, self.nulls, self.source, validation)
        return everything


def check_bad_share(
    n_rows: int,
    quarantine: pd.DataFrame,
    source: str,
    config: ValidationConfig,
    lines: hygiene.Lines = hygiene.editor_line,
) -> None:
    """The bad-row table rule over a source checked in parts: ``quarantine`` holds every
    part's refused rows (``row``, ``reason``); raise ``ContractError`` over the limit."""
    mine = quarantine[quarantine["source"] == source]
    share = len(mine) / n_rows if n_rows else 0.0
    if share > config.max_bad_row_share:
        worst = mine["reason"].value_counts().index[0]
        rows = mine[mine["reason"] == worst].head(EXAMPLES)
        examples = ", ".join(f"line {lines(r)}: {worst}" for r in rows["row"])
        raise ContractError(
            f"{source}: {len(mine)} of {n_rows} rows ({share:.0%}) break the data contract, "
            f"over the limit of {config.max_bad_row_share:.0%}; most often '{worst}' "
            f"({examples})"
        )
