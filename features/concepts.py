"""Concepts: the groups of features a person recognises, and the lead's facts in words.

A model reads many features of one thing (a pricing-page view gives its counts per
window, a recency-weighted sum and the days since the last one); a sales rep reads one
fact: "viewed the pricing page 3 times in 90 days, last 1 day ago". A :class:`Concept`
names such a group once, with the feature registry (features/registry.py): its features
(whose exact SHAP values add up to the concept's contribution), the columns its sentence
states (``facts``) and its declared ``direction``: +1 when doing it may never lower the
odds (a positive-points activity), -1 when it may never raise them (unsubscribe), 0 when
nothing is promised (attributes, lead age). The "absent" form of a +1 or -1 concept
("never viewed the pricing page") is the lead not having done it; :func:`sign_allowed`
is the one rule that keeps a reason's sign from contradicting its concept's direction.
"""

from __future__ import annotations

import functools
import math
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pandas.api.extensions import ExtensionArray

from leadscore.features.config import FeatureConfig
from leadscore.features.names import (
    ACTIVITY_CONCEPT,
    DAYS_SINCE_ANY,
    ENGAGEMENT,
    LEAD_AGE,
    LEAD_AGE_CONCEPT,
    LIFECYCLE,
    count_name,
    recency_name,
)

Direction = Literal[-1, 0, 1]
Kind = Literal["activity", "overall", "lifecycle", "attributes", "account", "feature"]

COUNT, DAYS = "count", "days"


@dataclass(frozen=True)
class Concept:
    """One fact about a lead, read from one or more features.

    ``facts`` are ``(name, columns)`` pairs: the fact is the column's value, or the sum of
    the columns' values (the overall activity count sums every type's count); ``labels``
    word the attributes' facts, in order. ``template`` is the activity's verb phrase or
    the attributes' ``str.format`` text; ``noun`` the activity's label (or the joined
    table's name); ``window`` the days the counts cover; ``never`` the days-since value
    of "never"; ``spec`` (kind ``feature``) the one feature spec whose template words it.
    """

    key: str
    label: str
    direction: Direction
    family: str
    features: tuple[str, ...]
    kind: Kind = "feature"
    facts: tuple[tuple[str, tuple[str, ...]], ...] = ()
    template: str = ""
    noun: str = ""
    window: int = 0
    never: float = math.inf
    labels: tuple[str, ...] = ()
    spec: Any = None

    def fact_values(self, column: Any) -> dict[str, np.ndarray | ExtensionArray]:
        """Each fact over all rows, given ``column(name) -> ndarray`` (a frame's column;
        an Arrow text column may come as its pandas array, and is kept as it is)."""
        out: dict[str, np.ndarray | ExtensionArray] = {}
        for name, columns in self.facts:
            if len(columns) == 1:
                values = column(columns[0])
                # an Arrow text column stays one: factorised by Arrow, no object per row
                out[name] = values if isinstance(values, ExtensionArray) else np.asarray(values)
            else:
                out[name] = np.sum([np.asarray(column(c), dtype=np.float64) for c in columns], 0)
        return out

    def absent(self, facts: Mapping[str, np.ndarray | ExtensionArray]) -> np.ndarray:
        """Per row: the lead did not do it (the "absent" form); False for kinds without one."""
        if self.kind in ("activity", "overall"):
            count = np.asarray(facts[COUNT], dtype=np.float64)
            return ~(count > 0)  # NaN: nothing counted
        n = len(next(iter(facts.values()))) if facts else 0
        return np.zeros(n, dtype=bool)

    def text_facts(
        self, facts: dict[str, np.ndarray | ExtensionArray]
    ) -> dict[str, np.ndarray | ExtensionArray]:
        """``facts`` reduced to what the text shows, so that equal texts have equal facts
        (rendered once): counts and days are shown whole (rounded half to even, exactly as
        ``round`` does), an account's activity only as "any or none"."""
        if self.kind not in ("activity", "overall", "lifecycle", "account"):
            return facts
        out = {}
        for name, values in facts.items():
            numbers = np.asarray(values, dtype=np.float64)
            out[name] = (
                np.where(np.isnan(numbers), np.nan, (numbers > 0).astype(np.float64))
                if name == "active"
                else np.round(numbers)
            )
        return out

    def text(self, values: Mapping[str, Any], new_lead_days: float) -> str:
        """The sentence of one lead's facts (``values``: fact name -> Python scalar)."""
        if self.kind == "activity":
            return _activity_text(self, values)
        if self.kind == "overall":
            return _overall_text(self, values)
        if self.kind == "lifecycle":
            return lead_age_text(values[DAYS], new_lead_days)
        if self.kind == "attributes":
            return _attribute_text(self, values)
        if self.kind == "account":
            return _account_text(self, values)
        return str(self.spec.render(values))


def sign_allowed(direction: int, absent: np.ndarray, contribution: np.ndarray) -> np.ndarray:
    """Per row: may this concept's reason be shown with the sign of its contribution?

    Direction +1: the "did it" form only as a positive reason, the "absent" form only as a
    negative one; -1 the reverse; 0: either sign. A zero contribution is never a reason.
    """
    positive = contribution > 0
    negative = contribution < 0
    if direction == 0:
        return positive | negative
    did = ~np.asarray(absent, dtype=bool)
    if direction > 0:
        return (did & positive) | (~did & negative)
    return (did & negative) | (~did & positive)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def ago(days: float) -> str:
    """ "today", "1 day ago", "12 days ago" (whole days, rounded half to even)."""
    n = round(float(days))
    return "today" if n == 0 else "1 day ago" if n == 1 else f"{n} days ago"


def _last(days: float) -> str:
    """ "last one today", "last 1 day ago"."""
    when = ago(days)
    return "last one today" if when == "today" else f"last {when}"


def _times(n: int) -> str:
    return "once" if n == 1 else "twice" if n == 2 else f"{n} times"


def _activity_text(c: Concept, values: Mapping[str, Any]) -> str:
    count, days = values[COUNT], values[DAYS]
    n = 0 if _missing(count) else round(float(count))
    never = _missing(days) or round(float(days)) >= c.never
    what = c.template or c.noun
    if n > 0:
        last = ago(days)
        if n == 1:
            return f"{what} {last}"
        return f"{what} {_times(n)} in {c.window} days, {_last(days)}"
    if never:
        return f"never {c.template}" if c.template else f"no {c.noun} yet"
    return f"no {c.noun} in the last {c.window} days"


def _overall_text(c: Concept, values: Mapping[str, Any]) -> str:
    count, days = values[COUNT], values[DAYS]
    n = 0 if _missing(count) else round(float(count))
    if n > 0:
        noun = "activity" if n == 1 else "activities"
        return f"{n} {noun} in the last {c.window} days, {_last(days)}"
    if _missing(days) or round(float(days)) >= c.never:
        return "no activity since the lead was created"
    d = round(float(days))
    return f"no activity for {d} day" if d == 1 else f"no activity for {d} days"


def lead_age_text(days: Any, new_lead_days: float) -> str:
    """ "new lead (4 days)" below ``new_lead_days``, else "lead open for 5 weeks" (under
    9 weeks) or "lead open for 3 months"."""
    if _missing(days):
        return "lead age unknown"
    d = round(float(days))
    if d < new_lead_days:
        return f"new lead ({d} day)" if d == 1 else f"new lead ({d} days)"
    if d < 63:
        w = round(d / 7)
        return f"lead open for {w} week" if w == 1 else f"lead open for {w} weeks"
    m = round(d / 30.44)
    return f"lead open for {m} months"


def _account_text(c: Concept, values: Mapping[str, Any]) -> str:
    contacts = values["contacts"]
    if _missing(contacts):
        return f"other contacts at this {c.noun}: unknown"
    n = round(float(contacts))
    if n == 0:
        return f"no other contacts at this {c.noun}"
    text = (
        f"{n} other contact at this {c.noun}" if n == 1 else f"{n} other contacts at this {c.noun}"
    )
    if "active" not in values:
        return text
    active = values["active"]
    recent = not _missing(active) and active > 0
    return f"{text}, active recently" if recent else f"{text}, none active recently"


class _Unknown:
    """A missing attribute value: "unknown <label>" whatever the format spec."""

    def __init__(self, label: str) -> None:
        self.label = label

    def __format__(self, spec: str) -> str:
        return f"unknown {self.label}"


class _FactFormatter(string.Formatter):
    """``str.format`` plus a ``num`` spec: 1,962 / 9.71 / 0.023 (thousands whole, else 3
    significant digits)."""

    def format_field(self, value: Any, format_spec: str) -> str:
        if format_spec == "num" and isinstance(value, int | float):
            v = float(value)
            return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"
        return super().format_field(value, format_spec)


_FACTS = _FactFormatter()


def _shown(value: Any) -> Any:
    """An attribute value as a sentence shows it: text with spaces for underscores."""
    if isinstance(value, str):
        return value.replace("_", " ")
    return value


def _attribute_text(c: Concept, values: Mapping[str, Any]) -> str:
    shown = {
        name: _Unknown(label) if _missing(values[name]) else _shown(values[name])
        for (name, _), label in zip(c.facts, c.labels, strict=True)
    }
    parts = _parsed(c.template)
    if parts is None:  # conversions or nested fields: the plain formatter
        return _FACTS.format(c.template, **shown)
    return "".join(
        literal if field is None else literal + _FACTS.format_field(shown[field], spec)
        for literal, field, spec in parts
    )


def attribute_texts(c: Concept, columns: Mapping[str, Sequence[Any]]) -> list[str]:
    """:func:`_attribute_text` of each row of ``columns`` (fact -> one value per row),
    worked out a field at a time: a partition words ~10k distinct attribute values (each
    employee count), and a dict and a formatter call per field per row cost more than the
    formatting itself."""
    n = len(next(iter(columns.values()))) if columns else 0
    parts = _parsed(c.template)
    if parts is None or not n:
        return [_attribute_text(c, {k: v[i] for k, v in columns.items()}) for i in range(n)]
    labels = {name: label for (name, _), label in zip(c.facts, c.labels, strict=True)}
    pieces = []
    for literal, field, spec in parts:
        pieces.append([literal] * n)
        if field is not None:
            pieces.append(_field_texts(columns[field], spec, labels[field]))
    return ["".join(row) for row in zip(*pieces, strict=True)]


def _field_texts(values: Sequence[Any], spec: str, label: str) -> list[str]:
    """Each value as :func:`_attribute_text` shows it in a field with ``spec``."""
    unknown = f"unknown {label}"
    out = []
    for value in values:
        if _missing(value):
            out.append(unknown)
        elif isinstance(value, str):
            out.append(_FACTS.format_field(value.replace("_", " "), spec))
        elif spec == "num" and isinstance(value, int | float):
            v = float(value)
            out.append(f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}")
        else:
            out.append(_FACTS.format_field(value, spec))
    return out


@functools.lru_cache(maxsize=256)
def _parsed(template: str) -> tuple[tuple[str, str | None, str], ...] | None:
    """``template`` as (literal, field, spec) pieces, or None if it needs the full
    formatter (a conversion, an attribute or index): a text is rendered per distinct fact,
    up to a million times a batch, so it is parsed once."""
    parts = []
    for literal, field, spec, conversion in _FACTS.parse(template):
        if field is not None and (conversion or not field.isidentifier() or "{" in (spec or "")):
            return None
        parts.append((literal, field, spec or ""))
    return tuple(parts)


def sign_of(points: float) -> Direction:
    """+1 for positive rule points, -1 for negative, 0 for none (undeclared types)."""
    return 1 if points > 0 else -1 if points < 0 else 0


def build_concepts(
    config: FeatureConfig, features: Sequence[tuple[str, str, str]], groups: Sequence[str]
) -> list[Concept]:
    """The concepts of a feature set: one per activity type, the overall activity, lead
    age, each attribute (or ``features.concepts`` group), each joined table; the rest
    (the recent conversion rate) are features of their own."""
    members: dict[str, list[tuple[str, str]]] = {}
    for name, family, key in features:
        members.setdefault(key, []).append((name, family))
    attrs, window = config.attributes, max(config.windows_days)
    out: list[Concept] = []
    for key, group in members.items():
        names, family = tuple(name for name, _ in group), group[0][1]
        if key in config.type_names:
            declared = config.activity_types.get(key)
            facts = ((COUNT, (count_name(key, window),)), (DAYS, (recency_name(key),)))
            out.append(
                Concept(key, config.type_label(key), sign_of(config.type_points(key)), family,
                        names, "activity", facts, (declared.phrase or "") if declared else "",
                        config.type_label(key), window, config.never_days)
            )  # fmt: skip
        elif key == ACTIVITY_CONCEPT:
            counts = tuple(count_name(t, window) for t in config.type_names)
            facts = ((COUNT, counts), (DAYS, (DAYS_SINCE_ANY,)))
            out.append(
                Concept(key, "activity overall", 1, ENGAGEMENT, names, "overall", facts,
                        window=window, never=config.never_days)
            )  # fmt: skip
        elif key == LEAD_AGE_CONCEPT:
            facts = ((DAYS, (LEAD_AGE,)),)
            out.append(Concept(key, "lead age", 0, LIFECYCLE, names, "lifecycle", facts))
        elif all(f in attrs.names for f in names):
            declared_group = config.concepts.get(key)
            labels = tuple(attrs.label(f) for f in names)
            text = declared_group.text if declared_group else None
            if text is not None and set(declared_group.attributes) - set(names):  # type: ignore[union-attr]
                text = None  # it names an attribute this export does not have
            if text is None:
                text = ", ".join(
                    f"{label}: {{{f}{':num' if f in attrs.numeric else ''}}}"
                    for f, label in zip(names, labels, strict=True)
                )
            label = (declared_group.label or key.replace("_", " ")) if declared_group else labels[0]
            facts = tuple((f, (f,)) for f in names)
            out.append(
                Concept(key, label, 0, family, names, "attributes", facts, text, labels=labels)
            )
        elif key in groups:
            facts = (("contacts", (f"{key}_contacts",)),)
            if f"{key}_engagement" in names:
                facts += (("active", (f"{key}_engagement",)),)
            label = f"other contacts at the {key}"
            out.append(Concept(key, label, 0, family, names, "account", facts, noun=key))
    return out
