"""The reasons codec: how a lead's reason codes are written as JSON and read back.

A score row's ``reasons`` is a JSON array of objects
``{"feature", "text", "direction": "+"|"-", "contribution"}``, strongest first, written by
``models/explain.py`` (ASCII JSON, the standard library's separators, contributions
rounded to 4 places) and read by the CSV export, the API, the page and the CLI. Its
one-line rendering for people, ``"text (+); text (-)"``, puts the direction marker last
so that no spreadsheet cell starts with ``+``, ``-`` or ``=`` (read as a formula).
Everything that writes or reads that format goes through this module.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

import orjson

log = logging.getLogger(__name__)

KEYS: tuple[str, ...] = ("feature", "text", "direction", "contribution")
"""Keys of one reason, in the order they are written."""
POSITIVE, NEGATIVE = "+", "-"
LINE_SEPARATOR = "; "
DIGITS = 4
"""Decimal places a contribution is written with."""

quote_text: Callable[[str], str] = encode_basestring_ascii
"""A reason's text as a JSON string (ASCII, quoted), as :func:`encode` writes it."""


def marker(direction: str) -> str:
    """The suffix of a reason's line: ``" (+)"`` or ``" (-)"``."""
    return f" ({direction})"


def head(feature: str) -> str:
    """The start of a reason's JSON object, up to its ``text`` value (shared per feature)."""
    return '{"feature": ' + json.dumps(feature) + ', "text": '


def fragments(
    feature: str, texts_json: Sequence[str], directions: Sequence[str], contributions: list[float]
) -> list[str]:
    """The JSON objects of one feature's reasons, built as strings (the batch's hot path).

    ``texts_json`` are the texts already JSON-encoded (ASCII, quoted). Equal to
    :func:`encode` of the same reasons, without a JSON encoder call per reason.
    """
    start = head(feature)
    # repr(round(v, 4)) == json.dumps(round(v, 4)) for a finite v
    numbers = [repr(round(v, DIGITS)) for v in contributions]
    return [
        f'{start}{text}, "direction": "{sign}", "contribution": {number}}}'
        for text, sign, number in zip(texts_json, directions, numbers, strict=True)
    ]


def join_fragments(row: Iterable[str]) -> str:
    """A row's reasons JSON from its objects' fragments (empty fragments are skipped)."""
    return "[" + ", ".join(f for f in row if f) + "]"


def join_lines(row: Iterable[str]) -> str:
    """A row's one-line reasons from its reasons' lines (empty lines are skipped)."""
    return LINE_SEPARATOR.join(t for t in row if t)


def encode(reasons: Iterable[Mapping[str, Any]]) -> str:
    """The reasons JSON of reasons given as mappings with :data:`KEYS`."""
    return json.dumps(
        [
            {
                "feature": r["feature"],
                "text": r["text"],
                "direction": r["direction"],
                "contribution": round(float(r["contribution"]), DIGITS),
            }
            for r in reasons
        ]
    )


def _blank(raw: Any) -> bool:
    return raw is None or (isinstance(raw, float) and raw != raw) or raw == ""


def decode(raw: str | None) -> list[dict[str, Any]]:
    """The reasons of a stored value; null, NaN or empty -> [].

    Raises ValueError if the value is not a JSON array of objects with a ``text`` key.
    """
    if _blank(raw):
        return []
    items = json.loads(raw)  # type: ignore[arg-type]
    if not isinstance(items, list) or not all(
        isinstance(item, dict) and "text" in item for item in items
    ):
        raise ValueError("reasons must be a JSON array of objects with a 'text' key")
    return items


def decode_lenient(raw: str | None) -> list[Any]:
    """The stored reasons as plain JSON values; a malformed value gives [] (logged).

    For serving, where one bad row must not fail a whole page: nothing is validated
    beyond "a JSON array" (the API's hot path builds no per-reason objects).
    """
    if not raw:
        return []
    try:
        items = orjson.loads(raw)
    except orjson.JSONDecodeError:
        log.warning("unreadable reasons value %.80r", raw)
        return []
    return items if isinstance(items, list) else []


def as_text(reasons: str | None) -> str:
    """Render a reasons JSON value as one line: ``"text (+); text (-)"``.

    Raises ValueError if the value is not a JSON array of objects with a ``text`` key.
    """
    return join_lines(
        f"{item['text']}{marker(item.get('direction', POSITIVE))}" for item in decode(reasons)
    )
