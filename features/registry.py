"""Every model feature declared once: name, family, kind, description, reason wording.

The registry is derived from the feature config, so adding an activity type or an
attribute adds its features, their descriptions and their reason sentences in one place.
Reason templates are ``str.format`` strings over the lead's own feature values
(``{value}`` is the feature itself); ``template_absent`` is used when the lead never did
the thing ("no webinar sign-up yet"): when the feature named by ``presence`` is zero (a
recency-weighted sum), or when the value reaches ``never`` (a days-since value).
Each spec also declares its ``direction``: +1 when more of the feature may never lower the
odds of converting (counts and recency-weighted sums of positive-points activities), -1
when it may never raise them (days since such an activity; counts of negative-points
ones), 0 when nothing is promised. The model enforces the directions its
``model.monotone`` rules give, which a test checks against these declarations.
"""

from __future__ import annotations

import math
import string
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from leadscore.features.config import FeatureConfig
from leadscore.features.market import RECENT_CONVERSION_RATE

FIT, ENGAGEMENT, MARKET = "fit", "engagement", "market"
Family = Literal["fit", "engagement", "market"]
Kind = Literal["categorical", "numeric"]
Direction = Literal[-1, 0, 1]

LEAD_AGE = "lead_age_days"
DAYS_SINCE_ANY = "days_since_last_activity"
DAYS_SINCE_HIGH_INTENT = "days_since_last_high_intent"
ENGAGEMENT_POINTS = "engagement_points"
DECAYED_TOTAL = "decay_all_activity"


class _ReasonFormatter(string.Formatter):
    """``str.format`` plus a ``days`` spec (``{value:days}`` -> "1 day" / "12 days"), and
    no minus sign on a value that shows as zero."""

    def format_field(self, value: Any, format_spec: str) -> str:
        if format_spec == "days":
            n = round(float(value))
            return f"{n} day" if n == 1 else f"{n} days"
        text = super().format_field(value, format_spec)
        if text.startswith("-") and not any(c in "123456789" for c in text):
            return text[1:]  # a tiny negative shown as zero: "0", not "-0"
        return text


_FORMATTER = _ReasonFormatter()


def count_name(activity_type: str, window_days: int) -> str:
    return f"n_{activity_type}_{window_days}d"


def decay_name(activity_type: str) -> str:
    return f"decay_{activity_type}"


def recency_name(activity_type: str) -> str:
    return f"days_since_{activity_type}"


@dataclass(frozen=True)
class FeatureSpec:
    """One model feature and how to speak about it."""

    name: str
    family: Family
    kind: Kind
    description: str
    template: str
    template_absent: str | None = None
    presence: str | None = None
    never: float | None = None  # a value this high means the lead never did it
    direction: Direction = 0

    def render(self, values: Mapping[str, object]) -> str:
        """The reason sentence for one lead, from its own feature values."""
        value = values.get(self.name)
        if self.template_absent and self.presence is not None:
            present = values.get(self.presence)
            if not isinstance(present, int | float) or present == 0 or math.isnan(present):
                return _FORMATTER.format(self.template_absent, **{**values, "value": value})
        never = self.never is not None and isinstance(value, int | float) and value >= self.never
        if self.template_absent and never:
            return _FORMATTER.format(self.template_absent, **{**values, "value": value})
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return f"{self.description}: unknown"
        return _FORMATTER.format(self.template, **{**values, "value": value})


class FeatureRegistry:
    """An ordered, name-indexed set of feature specs (the model's feature set)."""

    def __init__(self, specs: list[FeatureSpec]) -> None:
        names = [s.name for s in specs]
        if len(names) != len(set(names)):
            raise ValueError("feature names must be unique")
        self._specs = {s.name: s for s in specs}

    def __iter__(self) -> Iterator[FeatureSpec]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    def __getitem__(self, name: str) -> FeatureSpec:
        return self._specs[name]

    @property
    def names(self) -> list[str]:
        return list(self._specs)

    def directions(self) -> dict[str, Direction]:
        """Declared monotone direction of every feature (0 = none), in column order."""
        return {s.name: s.direction for s in self}

    def names_of(self, *, kind: Kind | None = None, family: Family | None = None) -> list[str]:
        return [
            s.name
            for s in self
            if (kind is None or s.kind == kind) and (family is None or s.family == family)
        ]


def _attribute_specs(config: FeatureConfig) -> list[FeatureSpec]:
    attrs = config.attributes

    def family(name: str) -> Family:
        return ENGAGEMENT if name in attrs.engagement else FIT

    specs = [
        FeatureSpec(
            name=a,
            family=family(a),
            kind="categorical",
            description=f"lead's {attrs.label(a)}",
            template=f"{attrs.label(a)} is {{value}}",
        )
        for a in attrs.categorical
    ]
    specs += [
        FeatureSpec(
            name=a,
            family=family(a),
            kind="numeric",
            description=f"lead's {attrs.label(a)}",
            template=f"{attrs.label(a)} is {{value:,.0f}}",
        )
        for a in attrs.numeric
    ]
    return specs


def _sign(points: float) -> Direction:
    """+1 for positive rule points, -1 for negative, 0 for none (undeclared types)."""
    return 1 if points > 0 else -1 if points < 0 else 0


def _activity_specs(config: FeatureConfig) -> list[FeatureSpec]:
    specs: list[FeatureSpec] = []
    hl = config.half_life_days
    for t in config.type_names:
        label = config.type_label(t)
        sign = _sign(config.type_points(t))
        recency = _sign(-config.type_points(t))  # longer since a good thing: never better
        for w in config.windows_days:
            specs.append(
                FeatureSpec(
                    name=count_name(t, w),
                    family=ENGAGEMENT,
                    kind="numeric",
                    description=f"number of {label}s in the last {w} days",
                    template=f"{{value:.0f}} x {label} in the last {w} days",
                    direction=sign,
                )
            )
        specs.append(
            FeatureSpec(
                name=decay_name(t),
                family=ENGAGEMENT,
                kind="numeric",
                description=f"{label}s weighted by recency (half-life {hl:g} days)",
                template=f"{label} {{{recency_name(t)}:days}} ago",
                template_absent=f"no {label} yet",
                presence=decay_name(t),
                direction=sign,
            )
        )
        specs.append(
            FeatureSpec(
                name=recency_name(t),
                family=ENGAGEMENT,
                kind="numeric",
                description=f"days since the last {label} ({config.never_days:g} if never)",
                template=f"last {label} {{value:days}} ago",
                template_absent=f"no {label} yet",
                never=config.never_days,
                direction=recency,
            )
        )
    return specs


def _summary_specs(config: FeatureConfig) -> list[FeatureSpec]:
    return [
        FeatureSpec(
            LEAD_AGE,
            ENGAGEMENT,
            "numeric",
            "days since the lead was created",
            "lead created {value:days} ago",
        ),
        FeatureSpec(
            DAYS_SINCE_ANY,
            ENGAGEMENT,
            "numeric",
            f"days since any activity ({config.never_days:g} if never)",
            "no activity for {value:days}",
            template_absent="no activity since the lead was created",
            never=config.never_days,
            direction=-1,
        ),
        FeatureSpec(
            DAYS_SINCE_HIGH_INTENT,
            ENGAGEMENT,
            "numeric",
            f"days since a high-intent activity ({config.never_days:g} if never)",
            "last high-intent activity {value:days} ago",
            template_absent="no high-intent activity yet",
            never=config.never_days,
            direction=-1,
        ),
        FeatureSpec(
            DECAYED_TOTAL,
            ENGAGEMENT,
            "numeric",
            "all activities weighted by recency",
            "recent activity: {value:.1f} (count weighted by recency)",
            template_absent="no activity yet",
            presence=DECAYED_TOTAL,
            direction=1,
        ),
        FeatureSpec(
            ENGAGEMENT_POINTS,
            ENGAGEMENT,
            "numeric",
            "rule points of activities weighted by recency",
            "engagement score {value:.0f} (rule points, recency-weighted)",
            direction=1,
        ),
    ]


def _market_specs(config: FeatureConfig) -> list[FeatureSpec]:
    if not config.market.enabled:
        return []
    n = config.market.leads
    return [
        FeatureSpec(
            RECENT_CONVERSION_RATE,
            MARKET,
            "numeric",
            f"share converted among the last {n} leads closed before this one",
            f"{{value:.0%}} of the last {n} closed leads converted",
        )
    ]


def account_specs(groups: Sequence[str], *, behaviour: bool = True) -> list[FeatureSpec]:
    """Per joined table (``data.joins``, e.g. accounts): its other contacts and their
    recent activity, as of the entity's time (``features.accounts``)."""
    specs: list[FeatureSpec] = []
    for g in groups:
        specs.append(
            FeatureSpec(
                f"{g}_contacts",
                FIT,
                "numeric",
                f"other contacts at the lead's {g}, created before this moment",
                f"other contacts at this {g}: {{value:.0f}}",
            )
        )
        if behaviour:
            specs.append(
                FeatureSpec(
                    f"{g}_engagement",
                    ENGAGEMENT,
                    "numeric",
                    f"activities of the {g}'s other contacts, weighted by recency",
                    f"activity of other contacts at this {g}: {{value:.1f}} (recency-weighted)",
                )
            )
    return specs


def build_registry(
    config: FeatureConfig, *, behaviour: bool = True, groups: Sequence[str] = ()
) -> FeatureRegistry:
    """The feature set a model is trained and scored on, in column order.

    ``behaviour=False`` is a flat export's feature set: its attributes (and the recent
    conversion rate, when ``features.market`` is on) alone. ``groups`` names the joined
    attribute tables (``data.joins``) whose account features come last.
    """
    market = _market_specs(config)
    accounts = account_specs(groups, behaviour=behaviour)
    if not behaviour:
        return FeatureRegistry([*_attribute_specs(config), *market, *accounts])
    return FeatureRegistry(
        [
            *_attribute_specs(config),
            *market,
            *_activity_specs(config),
            *_summary_specs(config),
            *accounts,
        ]
    )
