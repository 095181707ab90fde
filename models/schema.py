"""The score row: every column a scoring batch carries, declared once.

Scoring builds rows with these columns (``models/scoring.py``), the store keeps them in
its ``scores`` table (``serving/store``), the CSV export writes them
(``serving/export.py``) and the API serves them (``serving/schemas.py`` ScoreItem). Each
of those derives its columns from :data:`SCORE_FIELDS`, so a column is added or changed
here and nowhere else (a store change also needs a schema version and a migration).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["text", "int", "float"]


@dataclass(frozen=True)
class ScoreField:
    """One column of the score row.

    ``kind`` is the value type (text, whole number, real number); ``length`` is the
    longest text the store accepts (None: unbounded text).
    """

    name: str
    kind: Kind
    nullable: bool
    meaning: str
    length: int | None = None


SCORE_FIELDS: tuple[ScoreField, ...] = (
    ScoreField("lead_id", "text", False, "The lead's id in the source CRM (text).", 255),
    ScoreField("owner", "text", True, "Lead owner as given in the source data.", 255),
    ScoreField("segment", "text", True, "Lead segment as given in the source data.", 255),
    ScoreField("probability", "float", False, "Calibrated probability of converting (0-1)."),
    ScoreField("score", "int", False, "The probability scaled to 0-100 and rounded."),
    ScoreField("grade", "text", False, "Band of the score from the configured cutoffs.", 32),
    ScoreField("rank", "int", False, "Position among the batch's open leads (1 = best)."),
    ScoreField("percentile", "float", False, "Share of leads scoring at or below (0-100)."),
    ScoreField("fit", "float", True, "Sub-score of the profile / ICP attributes."),
    ScoreField("engagement", "float", True, "Sub-score of the lead's activities."),
    ScoreField("rule_score", "float", True, "The rule-based baseline's points."),
    ScoreField("rule_grade", "text", True, "The rule-based baseline's grade.", 32),
    ScoreField("reasons", "text", True, "Reason codes as JSON (models/reasons.py)."),
)
"""The score row's columns, in the order scoring, the store and the API use."""

SCORE_COLUMNS: tuple[str, ...] = tuple(f.name for f in SCORE_FIELDS)
TEXT_COLUMNS: tuple[str, ...] = tuple(f.name for f in SCORE_FIELDS if f.kind == "text")
INT_COLUMNS: tuple[str, ...] = tuple(f.name for f in SCORE_FIELDS if f.kind == "int")
FLOAT_COLUMNS: tuple[str, ...] = tuple(f.name for f in SCORE_FIELDS if f.kind == "float")

REASONS_TEXT = "reasons_text"
"""The reasons as one line for people and CSV exports (``text (+); text (-)``)."""

BATCH_COLUMNS: tuple[str, ...] = ("batch_id", "model_version", "scored_at")
"""Columns a row read from the store carries after :data:`SCORE_COLUMNS`: its batch."""

EXPORT_COLUMNS: tuple[str, ...] = (
    "lead_id",
    "score",
    "grade",
    "probability",
    "rank",
    "percentile",
    "fit",
    "engagement",
    "rule_score",
    "rule_grade",
    REASONS_TEXT,
    "reasons",
    "owner",
    "segment",
    "model_version",
    "batch_id",
    "scored_at",
)
"""Columns of the CSV export, in file order: the score row's (sort keys first), the
reasons as a line, then the batch's."""

if sorted(EXPORT_COLUMNS) != sorted((*SCORE_COLUMNS, REASONS_TEXT, *BATCH_COLUMNS)):
    raise RuntimeError("EXPORT_COLUMNS must hold every score, batch and reasons_text column")


def field(name: str) -> ScoreField:
    """The declared field ``name`` (KeyError if the score row has no such column)."""
    for item in SCORE_FIELDS:
        if item.name == name:
            return item
    raise KeyError(name)
