"""The ``webhooks:`` section: where alerts go, which events, and how hard to try.

Plain pydantic (no HTTP client), so the settings load without it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Event = Literal["grade_up", "grade_down", "threshold", "new_top_lead", "assigned"]
EVENTS: tuple[Event, ...] = ("grade_up", "grade_down", "threshold", "new_top_lead", "assigned")
"""What a webhook can subscribe to: a lead's grade went up or down since the previous
batch; its score crossed ``webhooks.threshold`` (either way); it reached the best grade
(new or moved up: the "new A lead"); it was put on a rep's call list."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Endpoint(_Strict):
    """One receiver: its URL, the environment variable holding its secret, its events."""

    name: str = Field(min_length=1, max_length=255, description="Id in the delivery log.")
    url: str = Field(pattern=r"^https?://", description="Where events are POSTed.")
    secret_env: str = Field(
        min_length=1,
        description="Environment variable holding the HMAC-SHA256 signing secret (never "
        "the secret itself in the file).",
    )
    events: list[Event] = Field(default_factory=lambda: list(EVENTS))


class WebhooksConfig(_Strict):
    """Webhooks delivered after a batch is published (serving/webhooks/, docs/webhooks.md)."""

    endpoints: list[Endpoint] = Field(default_factory=list)
    threshold: int = Field(
        default=70, ge=0, le=100, description="Score (0-100) whose crossing is an event."
    )
    max_attempts: int = Field(
        default=5, ge=1, le=20, description="Tries per event before it is dead-lettered."
    )
    backoff_seconds: float = Field(
        default=1.0, gt=0, description="Wait after the first failure, doubled per retry ..."
    )
    backoff_max_seconds: float = Field(default=60.0, gt=0, description="... up to this.")
    timeout_seconds: float = Field(default=5.0, gt=0, description="Per HTTP request.")

    @model_validator(mode="after")
    def _distinct(self) -> WebhooksConfig:
        names = [e.name for e in self.endpoints]
        if len(set(names)) < len(names):
            raise ValueError(f"webhooks.endpoints need distinct names: {names}")
        return self
