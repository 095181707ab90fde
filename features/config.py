"""Typed configuration of the feature room.

These sections are composed into the one settings object by ``pipelines.settings``;
they live here so that pure feature code can be configured without importing the
orchestration layer.
"""

from __future__ import annotations

import string
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ActivityType(_Strict):
    """One declared activity type: how it reads, what it is worth, how urgent it is."""

    label: str = Field(description="Human wording used in reasons, e.g. 'webinar sign-up'.")
    family: str = Field(description="Group of the type, e.g. email, web, event, sales.")
    points: float = Field(description="Rule-baseline points per occurrence (may be negative).")
    high_intent: bool = Field(
        default=False, description="Counts towards 'days since last high-intent activity'."
    )
    phrase: str | None = Field(
        default=None,
        description="What the lead did, as a verb phrase for reasons ('viewed the pricing "
        "page' -> 'viewed the pricing page 3 times in 90 days, last 1 day ago', 'never "
        "viewed the pricing page'); None: worded from the label.",
    )


class AttributeConfig(_Strict):
    """Lead attribute columns fed to the model (fit features unless listed as engagement)."""

    categorical: list[str] = Field(default_factory=list)
    numeric: list[str] = Field(default_factory=list)
    engagement: list[str] = Field(
        default_factory=list,
        description="Attributes that are behaviour already aggregated (flat exports).",
    )
    labels: dict[str, str] = Field(
        default_factory=dict, description="Human wording per attribute, for reasons."
    )

    @model_validator(mode="after")
    def _disjoint(self) -> AttributeConfig:
        both = set(self.categorical) & set(self.numeric)
        if both:
            raise ValueError(f"attributes declared both categorical and numeric: {sorted(both)}")
        stray = set(self.engagement) - set(self.names)
        if stray:
            raise ValueError(f"engagement attributes not declared: {sorted(stray)}")
        return self

    @property
    def names(self) -> list[str]:
        return [*self.categorical, *self.numeric]

    def label(self, name: str) -> str:
        return self.labels.get(name, name.replace("_", " "))


class ConceptGroup(_Strict):
    """Attributes a person reads as one fact, e.g. role = seniority + department: their
    contributions add up to one reason, worded by ``text`` ("director in fintech")."""

    attributes: list[str] = Field(min_length=1, description="Declared attributes grouped.")
    text: str | None = Field(
        default=None,
        description="str.format over the attributes' values, e.g. '{seniority} in "
        "{department}' (a number may use a spec, or 'num'); None: 'label: value, ...'.",
    )
    label: str | None = Field(default=None, description="Name of the group; None: its key.")

    @model_validator(mode="after")
    def _fields_are_attributes(self) -> ConceptGroup:
        if self.text is not None:
            fields = {f for _, f, _, _ in string.Formatter().parse(self.text) if f is not None}
            stray = fields - set(self.attributes)
            if stray:
                raise ValueError(
                    f"concept text names fields not in its attributes: {sorted(stray)}"
                )
        return self


class MarketConfig(_Strict):
    """The recent conversion rate: share converted among the last ``leads`` closed leads
    whose outcome was known before the lead's time (off when ``leads`` is 0).

    Conversion rates drift with the market (the bank campaign's went from 6% to 31% out
    of time); a model that reads the recent rate follows it. An outcome is known from its
    ``closed_at`` on; exports in time order without timestamps name ``period_columns``
    instead: consecutive rows with equal values there are one period (a contact day), and
    an outcome is known from the next period on.
    """

    leads: int = Field(default=0, ge=0, description="Closed leads averaged; 0 = no feature.")
    min_leads: int = Field(
        default=30, ge=1, description="Fewer known outcomes than this: the rate is missing."
    )
    period_columns: list[str] = Field(
        default_factory=list,
        description="Time-ordered exports without timestamps: columns whose runs of equal "
        "values are one period; outcomes are known from the next period on.",
    )

    @property
    def enabled(self) -> bool:
        return self.leads > 0


class FeatureConfig(_Strict):
    """What the point-in-time feature builder computes."""

    attributes: AttributeConfig = Field(default_factory=AttributeConfig)
    activity_types: dict[str, ActivityType] = Field(default_factory=dict)
    other_type: str = Field(
        default="other", description="Bucket for activity types not declared above."
    )
    windows_days: list[int] = Field(default=[7, 30, 90], description="Count windows.")
    half_life_days: float = Field(default=21.0, gt=0, description="Decay of behaviour sums.")
    never_days: float = Field(
        default=3650.0,
        gt=0,
        description="Days-since value of an activity a lead never had: longer ago than any "
        "real one, so 'never' is the worst for a good activity and the best for a bad one, "
        "whatever the lead's age (a lead's newness is lead_age_days' alone).",
    )
    market: MarketConfig = Field(default_factory=MarketConfig)
    concepts: dict[str, ConceptGroup] = Field(
        default_factory=dict,
        description="Attribute groups that read as one reason (features/concepts.py); an "
        "attribute in no group is a concept of its own. Attributes not declared under "
        "attributes are left out of a group (one config serves exports with fewer columns); "
        "a group whose text names one of them reads 'label: value, ...'.",
    )

    @field_validator("windows_days")
    @classmethod
    def _positive_sorted(cls, v: list[int]) -> list[int]:
        if not v or any(w <= 0 for w in v):
            raise ValueError("windows_days must be a non-empty list of positive day counts")
        return sorted(set(v))

    @model_validator(mode="after")
    def _other_not_declared(self) -> FeatureConfig:
        if self.other_type in self.activity_types:
            raise ValueError(f"other_type {self.other_type!r} is also a declared activity type")
        seen: set[str] = set()
        for group in self.concepts.values():
            twice = seen & set(group.attributes)
            if twice:
                raise ValueError(f"attributes in more than one concept: {sorted(twice)}")
            seen |= set(group.attributes)
        return self

    @property
    def type_names(self) -> list[str]:
        """Declared types plus the 'other' bucket, in a fixed order."""
        return [*self.activity_types, self.other_type]

    def type_label(self, name: str) -> str:
        if name in self.activity_types:
            return self.activity_types[name].label
        return "other activity"

    def type_points(self, name: str) -> float:
        return self.activity_types[name].points if name in self.activity_types else 0.0

    def activity_points(self) -> dict[str, float]:
        """Rule points of every activity type (the "other" bucket scores 0)."""
        return {name: self.type_points(name) for name in self.type_names}


class SnapshotConfig(_Strict):
    """How training examples are cut from history (docs/architecture.md §4)."""

    horizon_days: int = Field(default=90, gt=0, description="Label: converts within H days.")
    cadence_days: int = Field(default=14, gt=0, description="Days between snapshots.")
    valid_window_days: int = Field(
        default=90, gt=0, description="Newest snapshot window held out for validation."
    )
    split: Literal["time", "lead_disjoint"] = Field(
        default="time",
        description="Out-of-time split with an H-day embargo. 'time': every snapshot whose "
        "label window ends by the validation start trains, including older snapshots of "
        "leads still open in validation (their labels were known then, as they are to a "
        "production run). 'lead_disjoint': those leads lose all their training snapshots, "
        "so the newest training rows over-represent leads that closed fast and the "
        "calibrator, fitted on them, overstates conversion.",
    )
    valid_fraction: float = Field(
        default=0.2, gt=0, lt=1, description="Flat exports: share of examples that validate."
    )
    seed: int = Field(default=7, description="Seed of the random split (flat, unordered data).")
    min_leads: int = Field(default=1000, ge=0, description="Refuse to train on fewer leads...")
    min_conversions: int = Field(default=120, ge=0, description="... or fewer conversions.")


class ValidationConfig(_Strict):
    """Row and table rules checked at the boundary (Great Expectations suites)."""

    max_bad_row_share: float = Field(
        default=0.2, ge=0, le=1, description="Stop the run when more rows than this are bad."
    )
    max_null_share: float = Field(
        default=0.95, ge=0, le=1, description="Stop when an attribute is nulls beyond this."
    )
    ranges: dict[str, tuple[float, float]] = Field(
        default_factory=dict, description="Numeric attribute -> [min, max] allowed."
    )
    future_tolerance_hours: float = Field(
        default=24.0, ge=0, description="Timestamps later than now + this are refused."
    )
    max_cell_chars: int = Field(
        default=1000,
        ge=1,
        description="A text cell longer than this quarantines its row (reasons quote 40).",
    )


LEAKAGE_WORDS = (
    "won",
    "lost",
    "closed",
    "converted",
    "enrolled",
    "paid",
    "customer",
    "churned",
    "will revert",
    "interested in other courses",
)
"""Words that name an outcome in a free-text note (``features.leakage``)."""

LEAKAGE_NAME_HINTS = (
    "close",
    "closed",
    "duration",
    "lost",
    "notes",
    "outcome",
    "quality",
    "rating",
    "reason",
    "result",
    "score",
    "stage",
    "status",
    "tag",
    "tags",
    "won",
)
"""Words of a column's name that suggest it is filled in after the outcome."""


class LeakageConfig(_Strict):
    """The leakage sniffer (``features.leakage``): columns likely filled in after the
    outcome, flagged by ``leadscore init`` and warned about by ``leadscore train``.

    A flag is a warning, never a refusal. The thresholds rest on measured single-column
    ROC-AUCs (``features.separation``): strong honest columns reach 0.77 (bank: its
    macro-economic indices), 0.75 (synthetic CRM: industry, employees) and 0.76 (X
    Education: time on site), while leaks reach 0.82 (bank: the call's ``duration``,
    known once the call is over), 0.79 (X Education: the sales team's "Lead Quality")
    and 0.92 ("Tags"). So a column alone above ``max_auc`` is flagged, and one above
    ``max_auc_with_signal`` when a second sign agrees: another symptom, or a word of its
    name that sales fill in later (``name_hints``).
    """

    enabled: bool = Field(default=True, description="Sniff at init and at every train.")
    ignore: list[str] = Field(
        default_factory=list, description="Columns checked by you and kept: not reported."
    )
    max_auc: float = Field(
        default=0.9, gt=0.5, le=1, description="A column alone above this ROC-AUC is flagged."
    )
    max_auc_with_signal: float = Field(
        default=0.75,
        gt=0.5,
        le=1,
        description="... or above this one when another symptom or its name points at it.",
    )
    name_hints: list[str] = Field(
        default=list(LEAKAGE_NAME_HINTS),
        description="Words of a column's name that suggest it is filled in after the outcome.",
    )
    max_missing_auc: float = Field(
        default=0.7,
        gt=0.5,
        le=1,
        description="Empty vs filled ranks converted leads above this ROC-AUC: flagged.",
    )
    max_after_close_share: float = Field(
        default=0.2, gt=0, le=1, description="Share of a date column's values after closed_at."
    )
    words: list[str] = Field(
        default=list(LEAKAGE_WORDS),
        description="Outcome words of free text (case-insensitive; plus the outcome values).",
    )
    min_words_auc: float = Field(
        default=0.6,
        gt=0.5,
        le=1,
        description="Rows naming an outcome must convert this differently (ROC-AUC).",
    )
    min_rows: int = Field(
        default=20, ge=1, description="Fewest rows a missing/after-close/words symptom rests on."
    )
    max_rows: int = Field(default=200_000, ge=1000, description="Rows sampled (speed).")
    seed: int = Field(default=7, description="Seed of the sample and the out-of-fold folds.")
