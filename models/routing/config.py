"""The ``routing:`` section: the sales team and how open leads are dealt out to it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from leadscore.models.config import _Strict

Seniority = Literal["junior", "mid", "senior"]
SENIORITY_ORDER: tuple[Seniority, ...] = ("junior", "mid", "senior")
"""Seniority levels, least experienced first (``routing.min_seniority`` compares them)."""

RESERVED_IDS: frozenset[str] = frozenset({"unassigned"})
"""Rep ids the page's own paths use (``/ui/calls/unassigned``)."""

Method = Literal["round_robin", "territory", "skill", "score_aware"]


class Rep(_Strict):
    """One sales rep: who they are, how many calls a day, which leads they may take.

    An empty ``territories`` / ``skills`` / ``languages`` list means "any": the rep takes
    leads whatever their value in that column.
    """

    id: str = Field(min_length=1, max_length=255, description="Stable id (API, page, CRM).")
    name: str | None = Field(default=None, description="Display name (default: the id).")
    capacity: int = Field(ge=0, le=10_000, description="Leads on the call list per day.")
    territories: list[str] = Field(
        default_factory=list, description="Values of routing.territory this rep covers."
    )
    skills: list[str] = Field(
        default_factory=list, description="Values of routing.skill this rep handles."
    )
    languages: list[str] = Field(
        default_factory=list, description="Values of routing.language this rep speaks."
    )
    seniority: Seniority = Field(default="mid", description="junior | mid | senior.")

    @field_validator("id")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value.strip().casefold() in RESERVED_IDS or "/" in value or value != value.strip():
            raise ValueError(
                f"rep id {value!r}: not {sorted(RESERVED_IDS)}, no '/' and no surrounding "
                "blanks (it names the rep's page /ui/calls/<id> and /v1/reps/<id>/calls)"
            )
        return value

    @property
    def label(self) -> str:
        """The rep's name, or id when unnamed."""
        return self.name or self.id


class RoutingConfig(_Strict):
    """How each night's open leads become call lists, one per rep (models/routing/)."""

    reps: list[Rep] = Field(
        default_factory=list, description="The sales team; empty: no call lists are made."
    )
    method: Method = Field(
        default="score_aware",
        description="round_robin (arrival order, next rep in turn) | territory (arrival order, "
        "matching territory) | skill (territory and skill) | score_aware (maximise expected "
        "conversions under capacity and the fairness band, with a solver).",
    )
    pool_grades: list[str] = Field(
        default_factory=lambda: ["A", "B"],
        description="Grades routed to call lists; other leads are not for calling today.",
    )
    territory: str | None = Field(
        default=None, description="Lead column matched against the reps' territories."
    )
    skill: str | None = Field(
        default=None, description="Lead column matched against the reps' skills."
    )
    language: str | None = Field(
        default=None, description="Lead column matched against the reps' languages."
    )
    value: str | None = Field(
        default=None,
        description="Numeric lead column with the deal's value: expected value = probability "
        "x value (null: expected conversions, value 1 per lead).",
    )
    min_seniority: dict[str, Seniority] = Field(
        default_factory=dict,
        description="Grade -> least seniority of a rep who may take it, e.g. {A: senior}.",
    )
    fairness_band: float = Field(
        default=0.25,
        ge=0,
        le=1,
        description="Each rep's share of the expected value stays within +/- this fraction "
        "of their share of the team's capacity (score_aware).",
    )
    rebalance: bool = Field(
        default=False,
        description="false: a lead whose owner is a rep stays with that rep; true: every "
        "lead is routed afresh.",
    )
    time_limit_seconds: float = Field(
        default=20.0, gt=0, description="Longest the score_aware solver may search."
    )

    @model_validator(mode="after")
    def _distinct_reps(self) -> RoutingConfig:
        ids = [r.id for r in self.reps]
        if len(set(ids)) < len(ids):
            raise ValueError(f"routing.reps need distinct ids: {ids}")
        return self
