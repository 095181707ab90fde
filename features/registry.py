"""Every model feature declared once: name, family, kind, description, concept, wording.

The registry is derived from the feature config, so adding an activity type or an
attribute adds its features, their descriptions and their concept in one place. Reasons
are about concepts (features/concepts.py: every pricing-page feature is one fact,
"viewed the pricing page 3 times in 90 days, last 1 day ago"); each spec names its
``concept``, and :meth:`FeatureRegistry.concepts` returns them. A spec's own template
words a feature alone (a registry saved before concepts, a feature of no concept).
Templates are ``str.format`` strings over the lead's own feature values
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

from leadscore.features.concepts import Concept, build_concepts, sign_of
from leadscore.features.config import FeatureConfig
from leadscore.features.market import RECENT_CONVERSION_RATE
from leadscore.features.names import (
    ACTIVITY_CONCEPT,
    DAYS_SINCE_ANY,
    DAYS_SINCE_HIGH_INTENT,
    DECAYED_TOTAL,
    ENGAGEMENT,
    ENGAGEMENT_POINTS,
    FIT,
    LEAD_AGE,
    LEAD_AGE_CONCEPT,
    LIFECYCLE,
    MARKET,
    Family,
    count_name,
    decay_name,
    recency_name,
)

Kind = Literal["categorical", "numeric"]
Direction = Literal[-1, 0, 1]


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
    concept: str = ""  # the key of the concept it belongs to ("": its own name)

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

    def __init__(self, specs: list[FeatureSpec], concepts: Sequence[Concept] = ()) -> None:
        names = [s.name for s in specs]
        if len(names) != len(set(names)):
            raise ValueError("feature names must be unique")
        self._specs = {s.name: s for s in specs}
        covered = [f for c in concepts for f in c.features]
        keys = [c.key for c in concepts]
        if len(covered) != len(set(covered)) or len(keys) != len(set(keys)):
            raise ValueError("concept keys must be unique and no feature in two concepts")
        if set(covered) - set(names):
            raise ValueError(f"concepts name unknown features: {sorted(set(covered) - set(names))}")
        own = [_own_concept(s) for s in specs if s.name not in set(covered)]
        self._concepts = {c.key: c for c in [*concepts, *own]}

    def concepts(self) -> dict[str, Concept]:
        """Every concept, each feature in exactly one (a feature no concept names is its
        own, worded by its template; so is every feature of a registry saved before
        concepts existed)."""
        concepts = getattr(self, "_concepts", None)
        return dict(concepts) if concepts is not None else {s.name: _own_concept(s) for s in self}

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


def _own_concept(spec: FeatureSpec) -> Concept:
    """A feature as a concept of its own, worded by its spec's template."""
    fields = {
        f
        for template in (spec.template, spec.template_absent or "")
        for _, f, _, _ in _FORMATTER.parse(template)
        if f and f != "value"
    }
    columns = [spec.name, *([spec.presence] if spec.presence else []), *sorted(fields)]
    facts = tuple((c, (c,)) for c in dict.fromkeys(columns))
    return Concept(
        spec.name, spec.description, 0, spec.family, (spec.name,), facts=facts, spec=spec
    )


def _attribute_specs(config: FeatureConfig) -> list[FeatureSpec]:
    attrs = config.attributes

    def family(name: str) -> Family:
        return ENGAGEMENT if name in attrs.engagement else FIT

    group = {a: key for key, g in config.concepts.items() for a in g.attributes}

    specs = [
        FeatureSpec(
            name=a,
            family=family(a),
            kind="categorical",
            description=f"lead's {attrs.label(a)}",
            template=f"{attrs.label(a)} is {{value}}",
            concept=group.get(a, a),
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
            concept=group.get(a, a),
        )
        for a in attrs.numeric
    ]
    return specs


def _activity_specs(config: FeatureConfig) -> list[FeatureSpec]:
    specs: list[FeatureSpec] = []
    hl = config.half_life_days
    for t in config.type_names:
        label = config.type_label(t)
        sign = sign_of(config.type_points(t))
        recency = sign_of(-config.type_points(t))  # longer since a good thing: never better
        for w in config.windows_days:
            specs.append(
                FeatureSpec(
                    name=count_name(t, w),
                    family=ENGAGEMENT,
                    kind="numeric",
                    description=f"number of {label}s in the last {w} days",
                    template=f"{{value:.0f}} x {label} in the last {w} days",
                    direction=sign,
                    concept=t,
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
                concept=t,
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
                concept=t,
            )
        )
    return specs


def _summary_specs(config: FeatureConfig) -> list[FeatureSpec]:
    return [
        FeatureSpec(
            LEAD_AGE,
            LIFECYCLE,
            "numeric",
            "days since the lead was created",
            "lead created {value:days} ago",
            concept=LEAD_AGE_CONCEPT,
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
            concept=ACTIVITY_CONCEPT,
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
            concept=ACTIVITY_CONCEPT,
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
            concept=ACTIVITY_CONCEPT,
        ),
        FeatureSpec(
            ENGAGEMENT_POINTS,
            ENGAGEMENT,
            "numeric",
            "rule points of activities weighted by recency",
            "engagement score {value:.0f} (rule points, recency-weighted)",
            direction=1,
            concept=ACTIVITY_CONCEPT,
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
            concept=MARKET,
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
                concept=g,
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
                    concept=g,
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
        specs = [*_attribute_specs(config), *market, *accounts]
    else:
        specs = [
            *_attribute_specs(config),
            *market,
            *_activity_specs(config),
            *_summary_specs(config),
            *accounts,
        ]
    members = [(spec.name, spec.family, spec.concept or spec.name) for spec in specs]
    return FeatureRegistry(specs, build_concepts(config, members, groups))
