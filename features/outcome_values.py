"""Outcome values of any type, compared as a user means them: ``1``, ``1.0``, ``"1"``,
``true`` and ``"Yes"`` are one value.

A status or target column arrives as text ("Closed Won", "yes"), as integers (a 0/1
``Converted``), as floats (the same column read from a CSV with blanks: 1.0, 0.0, NaN) or
as booleans (Parquet, SQL); the values listed under ``data.outcome`` arrive as YAML gives
them, and YAML 1.1 reads ``yes``/``no``/``on``/``off``/``true``/``false`` as booleans. Both
sides are reduced to one key (:func:`outcome_key`): text trimmed and compared regardless of
case; numbers by value (text that reads as a number too); true/yes/on with 1, false/no/off
with 0. Pure Python: the settings validate a mapping with it, before pandas is needed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from numbers import Integral, Real

__all__ = ["FALSE_WORDS", "TRUE_WORDS", "outcome_key", "outcome_lookup"]

TRUE_WORDS = frozenset({"true", "yes", "on"})
FALSE_WORDS = frozenset({"false", "no", "off"})


def _number_key(number: float) -> str:
    return str(int(number)) if number.is_integer() else repr(number)


def outcome_key(value: object) -> str | None:
    """The key a value of an outcome column or list is matched under; None for a blank.

    ``True``, ``1``, ``1.0``, ``"1"``, ``" Yes"`` and ``"on"`` all key as ``"1"`` (false-like
    ones as ``"0"``); ``2.5`` and ``"2.50"`` as ``"2.5"``; other text as itself, trimmed and
    lower-cased. Missing values (None, NaN) are blanks: pass no other missing marker.
    """
    if value is None:
        return None
    if isinstance(value, bool) or getattr(getattr(value, "dtype", None), "kind", "") == "b":
        return "1" if bool(value) else "0"
    if isinstance(value, Integral):
        return str(int(value))
    if isinstance(value, Real):
        number = float(value)
        return None if math.isnan(number) else _number_key(number)
    text = str(value).strip().lower()
    if not text:
        return None
    if text in TRUE_WORDS:
        return "1"
    if text in FALSE_WORDS:
        return "0"
    try:
        number = float(text)
    except ValueError:
        return text
    return _number_key(number) if math.isfinite(number) else text


def outcome_lookup(lists: Mapping[str, Iterable[object]]) -> dict[str, str]:
    """Key -> status for the values listed per status (``{"converted": [1], ...}``).

    Raises ``ValueError`` for a blank value or for one value listed under two statuses
    (``yes`` as converted and ``1`` as lost are one value).
    """
    lookup: dict[str, str] = {}
    shown: dict[str, object] = {}
    for status, values in lists.items():
        for value in values:
            key = outcome_key(value)
            if key is None:
                raise ValueError(f"a blank value is listed as {status}")
            if key in lookup and lookup[key] != status:
                raise ValueError(
                    f"{shown[key]!r} ({lookup[key]}) and {value!r} ({status}) are the same "
                    "value (text is compared regardless of case; 1, 1.0, true and yes are one)"
                )
            lookup[key] = status
            shown.setdefault(key, value)
    return lookup
