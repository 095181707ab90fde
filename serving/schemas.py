"""Request and response models of the HTTP API (pydantic; the OpenAPI schema comes from them).

``ScoreItem``, a lead's row of a batch, is generated from the score row declared in
``models/schema.py``, so the API serves exactly the columns the store keeps.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec
import orjson
from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator

from leadscore.models import reasons as reasons_codec
from leadscore.models.schema import JSON_COLUMNS, SCORE_FIELDS, ScoreField


class Reason(BaseModel):
    """One reason (reasons JSON v2, models/reasons.py): the concept, the lead's facts in
    words, how much it moved the log-odds, its share of the lead's total |contribution|
    and each of its features' exact SHAP value. A v1 reason (one ``feature``) reads as a
    concept of that one feature."""

    concept: str
    text: str
    direction: Literal["+", "-"]
    contribution: float
    share: float | None = None
    features: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _v1(cls, data: Any) -> Any:
        return reasons_codec.upgraded(data)


class RuleReason(BaseModel):
    """One line of the rules' own breakdown: what gave points, and how many."""

    text: str
    points: float


class TimelineEvent(BaseModel):
    """One activity of the lead before scoring: its type's label, when, its value."""

    type: str
    at: str = Field(description="ISO 8601, UTC.")
    value: float | None


_PYTHON_TYPES: dict[str, type] = {"text": str, "int": int, "float": float}

_JSON_TYPES: dict[str, Any] = {
    "rule_reasons": list[RuleReason],
    "attributes": dict[str, str | int | float | bool | None],
    "timeline": list[TimelineEvent],
}
"""The API type of each JSON column (:data:`JSON_COLUMNS`): served parsed, not as text."""


def _annotation(field: ScoreField) -> Any:
    """The field's Python type: ``str``, ``int`` or ``float`` (a JSON column's parsed type),
    or ``X | None`` if nullable."""
    python = _JSON_TYPES.get(field.name, _PYTHON_TYPES[field.kind])
    return python | None if field.nullable else python


def parse_json_column(value: Any) -> Any:
    """A stored JSON column's value parsed (None stays None; parsed values pass through);
    unreadable text gives None, so one bad row never fails a page."""
    if not isinstance(value, str):
        return value
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return None


_SKIP_JSON = msgspec.json.Decoder(msgspec.Raw)


def json_fragment(value: Any) -> Any:
    """A stored JSON column's value to write with orjson: the stored text itself
    (``orjson.Fragment``) if it is valid JSON, else None; a non-text value passes through.

    The same JSON as :func:`parse_json_column` then encoding its result, but the text is
    only checked, never turned into objects and back: on a page of 100 leads that was
    most of the request's cost (``make bench-api``).
    """
    if not isinstance(value, str):
        return value
    try:
        _SKIP_JSON.decode(value)
    except msgspec.DecodeError:
        return None
    return orjson.Fragment(value)


def reasons_fragment(raw: str | None) -> Any:
    """The stored reasons to write with orjson: v2 JSON (what ``models/reasons.encode``
    writes) as the stored text, anything else as ``reasons.decode_lenient`` reads it."""
    if isinstance(raw, str) and raw.startswith(_V2_REASONS):
        fragment = json_fragment(raw)
        if fragment is not None:
            return fragment
    return reasons_codec.decode_lenient(raw)


_V2_REASONS = '[{"concept": '


def parse_json_columns(row: dict[str, Any]) -> dict[str, Any]:
    """A store row with its JSON columns (:data:`JSON_COLUMNS`) parsed, in place."""
    for name in JSON_COLUMNS:
        if name in row:
            row[name] = parse_json_column(row[name])
    return row


ScoreItem: type[BaseModel] = create_model(
    "ScoreItem",
    __doc__="One lead's row of a batch (see models/schema.py for each field's meaning).",
    __validators__={
        "_json": field_validator(*JSON_COLUMNS, mode="before")(
            lambda cls, value: parse_json_column(value)
        )
    },
    **{
        f.name: (list[Reason], ...) if f.name == "reasons" else (_annotation(f), ...)
        for f in SCORE_FIELDS
    },
)
"""One lead's row of a batch: the score row's columns, ``reasons``, ``rule_reasons``,
``attributes`` and ``timeline`` parsed from their stored JSON."""


class ScoresPage(BaseModel):
    """A page of ``GET /v1/scores``; pass ``next_cursor`` back to get the next page."""

    batch_id: str
    model_version: str
    scored_at: datetime
    published_at: datetime | None
    items: list[ScoreItem]
    next_cursor: str | None = Field(description="Null on the last page.")


class HistoryItem(BaseModel):
    """The lead in one past (or the current) batch."""

    batch_id: str
    model_version: str
    scored_at: datetime
    published_at: datetime | None
    score: int
    grade: str
    probability: float
    rank: int
    rule_score: float | None
    rule_grade: str | None


class LeadDetail(BaseModel):
    """A lead: its row in the current batch (null if not in it) and its recent batches."""

    lead_id: str
    current: ScoreItem | None
    batch_id: str | None
    history: list[HistoryItem]


class Change(BaseModel):
    """A lead whose grade moved (``up``/``down``), or that ``appeared`` or ``left``."""

    lead_id: str
    kind: Literal["up", "down", "appeared", "left"]
    owner: str | None
    old_grade: str | None
    new_grade: str | None
    old_score: int | None
    new_score: int | None


class BatchChanges(BaseModel):
    """The changes a batch brought against the batch it replaced."""

    batch_id: str
    previous_batch_id: str | None
    published_at: datetime | None
    changes: list[Change]


class ChangesFeed(BaseModel):
    """``GET /v1/changes``: batches after ``since``, oldest first; poll with the last id."""

    since: str | None
    batches: list[BatchChanges]
    latest_batch_id: str | None


def utc(value: datetime) -> datetime:
    """Aware UTC datetime; naive input is taken as UTC (the data contract's rule)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


MIN_TIME = datetime(1970, 1, 1, tzinfo=UTC)
MAX_TIME = datetime(2200, 1, 1, tzinfo=UTC)


def _sane_time(value: datetime | None) -> datetime | None:
    """Naive -> UTC; refuse instants outside 1970-2200 (pandas' nanosecond range ends in
    2262, and no CRM record predates 1970): a clear 422 instead of an overflow."""
    if value is None:
        return None
    value = utc(value)
    if not MIN_TIME <= value < MAX_TIME:
        raise ValueError("must be between 1970-01-01 and 2200-01-01 (UTC)")
    return value


class ActivityIn(BaseModel):
    """One activity of the posted lead (the activities contract)."""

    model_config = ConfigDict(extra="forbid")

    activity_type: str = Field(min_length=1, max_length=100)
    occurred_at: datetime = Field(description="ISO 8601; a naive time is taken as UTC.")
    value: float | None = None

    _time = field_validator("occurred_at")(_sane_time)

    @field_validator("value")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("value must be a finite number")
        return value


class LeadIn(BaseModel):
    """The posted lead: id, creation time, owner/segment and its attribute columns."""

    model_config = ConfigDict(extra="forbid")

    lead_id: str = Field(min_length=1, max_length=255)
    created_at: datetime = Field(description="ISO 8601; a naive time is taken as UTC.")
    owner: str | None = Field(default=None, max_length=255)
    segment: str | None = Field(default=None, max_length=255)
    attributes: dict[str, str | float | None] = Field(
        default_factory=dict,
        description="Attribute columns declared under features.attributes; others are 422.",
    )

    _time = field_validator("created_at")(_sane_time)


class ScoreRequest(BaseModel):
    """``POST /v1/score`` body: one open lead, its activities and the scoring instant."""

    model_config = ConfigDict(extra="forbid")

    lead: LeadIn
    activities: list[ActivityIn] = Field(default_factory=list, max_length=10_000)
    as_of: datetime | None = Field(default=None, description="Scoring instant; default now.")

    _time = field_validator("as_of")(_sane_time)


class ScoreResult(BaseModel):
    """The on-demand score: the same fields as a batch row, minus rank and percentile, plus
    the rule points in words ("TotalVisits 7 (5 or more): +10"), largest first."""

    lead_id: str
    probability: float
    score: int
    grade: str
    fit: float | None
    engagement: float | None
    fit_score: int | None = None
    engagement_score: int | None = None
    cell: str | None = None
    rule_score: float | None
    rule_grade: str | None
    reasons: list[Reason]
    contributions: dict[str, float] = Field(
        default_factory=dict,
        description="Every feature's exact SHAP value (log-odds above the average lead).",
    )
    rule_reasons: list[str] = Field(default_factory=list)
    model_version: str
    as_of: datetime


class Health(BaseModel):
    """``GET /healthz``."""

    status: Literal["ok", "degraded"]
    current_batch: str | None
    schema_version: int
