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
    # schema 4 (issue #16): who the lead is, what it did, where it sits; all nullable,
    # since rows published before version 4 have none of them
    ScoreField("name", "text", True, "Contact name from the export (data.display.name).", 255),
    ScoreField(
        "company", "text", True, "Company name from the export (data.display.company).", 255
    ),
    ScoreField("email", "text", True, "Contact e-mail from the export (data.display.email).", 320),
    ScoreField(
        "record_id",
        "text",
        True,
        "The CRM's own record id from the export, for matching (data.display.record_id).",
        255,
    ),
    ScoreField(
        "fit_score",
        "int",
        True,
        "Fit as 0-100: share of training leads with a lower fit sum, in percent.",
    ),
    ScoreField(
        "engagement_score",
        "int",
        True,
        "Engagement as 0-100: share of training leads with a lower engagement sum, in percent.",
    ),
    ScoreField(
        "cell", "text", True, "Fit x engagement cell: call_now, nurture, educate, deprioritise.", 32
    ),
    ScoreField("rule_rank", "int", True, "Position by rule score among the batch (1 = best)."),
    ScoreField(
        "rule_reasons",
        "text",
        True,
        'The rules\' points as a JSON array [{"text", "points"}], largest |points| first.',
    ),
    ScoreField(
        "last_activity",
        "text",
        True,
        "Label of the lead's latest activity type before scoring.",
        255,
    ),
    ScoreField(
        "last_activity_at", "text", True, "When that activity happened (ISO 8601, UTC).", 40
    ),
    ScoreField(
        "attributes",
        "text",
        True,
        "The lead's attribute values at scoring, as a JSON object with sorted keys.",
    ),
    ScoreField(
        "timeline",
        "text",
        True,
        'Latest activities before scoring as a JSON array [{"type", "at", "value"}], newest '
        "first, at most 20.",
    ),
    # schema 6 (issue #18): the nurture list's next step; null outside nurture.cells
    ScoreField(
        "next_step",
        "text",
        True,
        "Nurture / educate leads: the activity type (nurture.activities) that one more of, "
        "now, raises the probability most (models/nurture/).",
        255,
    ),
    ScoreField(
        "next_step_gain",
        "float",
        True,
        "How much that step raises the probability (0-1), under the model.",
    ),
)
"""The score row's columns, in the order scoring, the store and the API use."""


def field(name: str) -> ScoreField:
    """The declared field ``name`` (KeyError if the score row has no such column)."""
    for item in SCORE_FIELDS:
        if item.name == name:
            return item
    raise KeyError(name)


SCORE_COLUMNS: tuple[str, ...] = tuple(f.name for f in SCORE_FIELDS)
TEXT_COLUMNS: tuple[str, ...] = tuple(f.name for f in SCORE_FIELDS if f.kind == "text")
INT_COLUMNS: tuple[str, ...] = tuple(f.name for f in SCORE_FIELDS if f.kind == "int")
FLOAT_COLUMNS: tuple[str, ...] = tuple(f.name for f in SCORE_FIELDS if f.kind == "float")
NULLABLE_INT_COLUMNS: tuple[str, ...] = tuple(c for c in INT_COLUMNS if field(c).nullable)
"""Whole-number columns that may be null: pandas' nullable ``Int64`` in frames."""

DISPLAY_COLUMNS: tuple[str, ...] = ("name", "company", "email", "record_id")
"""Columns passed through from the export as they are (``data.display``): for people and
for matching the CRM's records, never model features."""

FACT_COLUMNS: tuple[str, ...] = ("last_activity", "last_activity_at", "attributes", "timeline")
"""The lead's own facts at scoring (``features/facts.py``): what it did last, its
attribute values, its latest activities."""

NURTURE_COLUMNS: tuple[str, ...] = ("next_step", "next_step_gain")
"""The nurture list's columns (``models/nurture/``): null outside ``nurture.cells``."""

JSON_COLUMNS: tuple[str, ...] = ("rule_reasons", "attributes", "timeline")
"""Text columns holding JSON (besides ``reasons``): the API serves them parsed."""

CELLS: tuple[str, ...] = ("call_now", "nurture", "educate", "deprioritise")
"""The values of ``cell``: fit high and engagement high, fit high only, engagement high
only, neither (cut-offs in ``scoring.cells``)."""

TIMELINE_LENGTH = 20
"""At most this many activities in ``timeline``."""

BATCH_COLUMNS: tuple[str, ...] = ("batch_id", "model_version", "scored_at")
"""Columns a row read from the store carries after :data:`SCORE_COLUMNS`: its batch."""
