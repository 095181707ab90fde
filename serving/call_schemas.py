"""Response models of the call-list routes (``serving/calls.py``, issue #18): the team
with today's counts, a rep's call list, the leads no rep could take."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from leadscore.serving.schemas import Reason


class RepSummary(BaseModel):
    """One rep of ``routing.reps`` and their list in the current batch."""

    id: str
    name: str = Field(description="The rep's name (the id when unnamed).")
    capacity: int = Field(description="Calls a day at most.")
    territories: list[str] = Field(description="Territories covered ([]: any).")
    skills: list[str] = Field(description="Segments or skills handled ([]: any).")
    languages: list[str] = Field(description="Languages spoken ([]: any).")
    seniority: str
    assigned: int = Field(description="Calls on the rep's list in the current batch.")
    expected: float = Field(
        description="Their expected value summed (probability x value; conversions "
        "without a value column)."
    )


class Team(BaseModel):
    """``GET /v1/reps``: the team and the current batch's counts."""

    batch_id: str | None = Field(description="Null before the first publish.")
    as_of: datetime | None
    reps: list[RepSummary]
    unassigned: int = Field(description="Leads of the batch's call pool no rep could take.")


class Call(BaseModel):
    """A lead on a call list (or on none: ``rep_id`` and ``position`` null), with the
    facts a rep needs to call and the reasons in words."""

    position: int | None = Field(description="1 = call first; null when unassigned.")
    rep_id: str | None
    lead_id: str
    name: str | None
    company: str | None
    email: str | None
    record_id: str | None
    owner: str | None
    segment: str | None
    score: int
    grade: str
    probability: float
    rank: int = Field(description="The lead's rank in the batch (1 = best).")
    fit_score: int | None
    engagement_score: int | None
    cell: str | None
    reasons: list[Reason]
    last_activity: str | None
    last_activity_at: str | None
    next_step: str | None = Field(description="The activity that would raise the score most.")
    next_step_gain: float | None
    expected: float = Field(description="probability x value (value 1 without a value column).")
    method: str = Field(description="The routing method that placed the lead.")
    reason: str = Field(description="Why this rep, or why no rep could take the lead.")


class CallList(BaseModel):
    """``GET /v1/reps/{rep_id}/calls``: the rep's list in the current batch, in order."""

    rep: RepSummary
    batch_id: str | None = Field(description="Null before the first publish.")
    as_of: datetime | None
    model_version: str | None
    calls: list[Call]


class UnassignedPage(BaseModel):
    """``GET /v1/calls/unassigned``: a page of the leads no rep could take, best first;
    pass ``next_after`` back as ``after`` for the next page."""

    batch_id: str | None
    as_of: datetime | None
    total: int = Field(description="Unassigned leads in the batch.")
    calls: list[Call]
    next_after: int | None = Field(description="Null on the last page.")
