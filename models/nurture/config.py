"""The ``nurture:`` section: which leads marketing cultivates and what it may invite them to."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from leadscore.models.config import _Strict


class NurtureConfig(_Strict):
    """Leads in the quadrant's nurture and educate cells, with their best next step."""

    cells: list[Literal["call_now", "nurture", "educate", "deprioritise"]] = Field(
        default_factory=lambda: ["nurture", "educate"],
        description="Quadrant cells (models/subscores.py) that make the nurture list.",
    )
    activities: list[str] | None = Field(
        default=None,
        description="Activity types marketing can invite a lead to (declared under "
        "features.activity_types); null: every declared type.",
    )
    min_gain: float = Field(
        default=0.0,
        ge=0,
        description="A next step must raise the lead's probability by more than this.",
    )
