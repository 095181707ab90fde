"""The reasons codec: how a lead's reason codes are written as JSON and read back.

A score row's ``reasons`` (v2) is a JSON array of objects ``{"concept", "text",
"direction": "+"|"-", "contribution", "share", "features": {feature: SHAP}}``: positives
strongest first, then negatives, written by ``models/explain.py`` (ASCII JSON, the
standard library's separators). ``contribution`` is the concept's log-odds (the sum of
its features' exact SHAP values, written to 4 places), ``share`` its fraction of the
lead's total |contribution| over concepts (3 places), ``features`` each feature's SHAP
value (4 places). Readers need only ``text`` and ``direction`` (v1 rows, with
``feature`` instead of ``concept``, still read). It is read by the CSV export, the API,
the page and the CLI. Its
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

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa

from leadscore.features.pieces import Column, Pieces, join_rows

log = logging.getLogger(__name__)

KEYS: tuple[str, ...] = ("concept", "text", "direction", "contribution", "share", "features")
"""Keys of one reason, in the order they are written."""
POSITIVE, NEGATIVE = "+", "-"
LINE_SEPARATOR = "; "
DIGITS = 4
"""Decimal places a contribution (and each feature's SHAP value) is written with."""
SHARE_DIGITS = 3

quote_text: Callable[[str], str] = encode_basestring_ascii
"""A reason's text as a JSON string (ASCII, quoted), as :func:`encode` writes it."""


def marker(direction: str) -> str:
    """The suffix of a reason's line: ``" (+)"`` or ``" (-)"``."""
    return f" ({direction})"


def number(value: float, digits: int = DIGITS) -> str:
    """A number as the reasons JSON writes it: rounded to ``digits`` places (half to
    even on the scaled value), no negative zero."""
    scale = 10.0**digits
    return repr(float(np.rint(value * scale)) / scale + 0.0)


def numbers(values: np.ndarray, digits: int = DIGITS) -> np.ndarray:
    """:func:`number` of every value (object array), formatted once per distinct number."""
    scaled = np.rint(np.asarray(values, dtype=np.float64) * 10.0**digits)
    codes, uniques = pd.factorize(scaled.ravel(), use_na_sentinel=False)
    scale = 10.0**digits
    text = np.array([repr(float(u) / scale + 0.0) for u in uniques], dtype=object)
    return text[codes].reshape(scaled.shape)


def number_pieces(
    values: np.ndarray, pieces: Pieces, suffix: str = "", digits: int = DIGITS
) -> Column:
    """:func:`number` of every value then ``suffix``, as a column of ``pieces``, each
    distinct rounded number written once; NaN gives no piece."""
    scaled = np.rint(np.asarray(values, dtype=np.float64) * 10.0**digits)
    codes, uniques = _whole_codes(scaled)
    scale = 10.0**digits
    return codes, pieces.add(f"{u / scale + 0.0!r}{suffix}" for u in uniques.tolist())


def _whole_codes(scaled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Whole numbers (NaN: code -1) as codes into their distinct values, like
    ``pd.factorize`` but by position in their range, without hashing, when the range is
    short (a night's contributions: a few units times 10**4); else ``pd.factorize``.
    Numbers equal as floats (0.0 and -0.0) share a code, as they share a text."""
    known = ~np.isnan(scaled)
    every = bool(known.all())
    present = scaled if every else scaled[known]
    if not len(present):
        return np.full(len(scaled), -1, dtype=np.int64), np.zeros(0)
    low, high = float(present.min()), float(present.max())
    if not (np.isfinite(low) and np.isfinite(high)) or high - low > 4 * len(present) + 4096:
        return pd.factorize(scaled, use_na_sentinel=True)
    offset = (present - low).astype(np.int64)
    seen = np.zeros(int(high - low) + 1, dtype=bool)
    seen[offset] = True
    place = np.cumsum(seen) - 1
    if every:
        return place[offset], np.flatnonzero(seen) + low
    codes = np.full(len(scaled), -1, dtype=np.int64)
    codes[known] = place[offset]
    return codes, np.flatnonzero(seen) + low


def encode_batch(
    counts: np.ndarray,
    texts: Sequence[tuple[str, str]],
    text_codes: np.ndarray,
    positive: np.ndarray,
    contributions: np.ndarray,
    shares: np.ndarray,
    members: Sequence[Sequence[str]],
    concepts: np.ndarray,
    per_feature: np.ndarray,
) -> pa.LargeStringArray:
    """The reasons JSON of many rows at once (the batch's hot path), equal to
    :func:`encode` of each row's reasons.

    Row ``r`` has ``counts[r]`` reasons, the rows' reasons one after another. Reason
    ``i`` is about concept ``concepts[i]``, whose features are ``members[concepts[i]]``
    and their SHAP values ``per_feature[i]`` (NaN-padded); it says ``texts[text_codes[i]]``
    (a concept's key and a text), is positive or not, and has its concept's
    contribution and share. Each distinct text and number is written once
    (features/pieces.py).
    """
    pieces = Pieces()
    heads = (
        f'{{"concept": {json.dumps(key)}, "text": {quote_text(text)}, "direction": "'
        for key, text in texts
    )
    columns = [
        (text_codes, pieces.add(heads)),
        (
            np.where(positive, 0, 1),
            pieces.add(f'{sign}", "contribution": ' for sign in (POSITIVE, NEGATIVE)),
        ),
        number_pieces(contributions, pieces, ', "share": '),
        number_pieces(shares, pieces, ', "features": {', SHARE_DIGITS),
    ]
    width = max((len(features) for features in members), default=0)
    position = np.full((len(members), width), -1, dtype=np.int64)
    names: list[str] = []
    for k, features in enumerate(members):
        position[k, : len(features)] = len(names) + np.arange(len(features))
        names.extend(f"{', ' if m else ''}{json.dumps(f)}: " for m, f in enumerate(features))
    names_first = pieces.add(names)
    for m in range(width):
        columns.append((position[concepts, m], names_first))
        columns.append(number_pieces(per_feature[:, m], pieces))
    columns.append((np.zeros(len(text_codes), dtype=np.int64), pieces.one("}}")))
    groups = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=groups[1:])
    return join_rows(pieces, columns, groups, "[", ", ", "]")


def join_lines(row: Iterable[str]) -> str:
    """A row's one-line reasons from its reasons' lines (empty lines are skipped)."""
    return LINE_SEPARATOR.join(filter(None, row))


def encode(reasons: Iterable[Mapping[str, Any]]) -> str:
    """The reasons JSON of reasons given as mappings with :data:`KEYS`."""
    return json.dumps(
        [
            {
                "concept": r["concept"],
                "text": r["text"],
                "direction": r["direction"],
                "contribution": json.loads(number(float(r["contribution"]))),
                "share": json.loads(number(float(r["share"]), SHARE_DIGITS)),
                "features": {f: json.loads(number(float(v))) for f, v in r["features"].items()},
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


def upgraded(item: Any) -> Any:
    """A v1 reason (one ``feature``, batches published before concepts) as v2: the
    feature is its concept and its one feature; its share is unknown (None). Any other
    value is returned as it is."""
    if not isinstance(item, dict) or "concept" in item or "feature" not in item:
        return item
    feature = item["feature"]
    rest = {k: v for k, v in item.items() if k != "feature"}
    return {
        "concept": feature,
        **rest,
        "share": None,
        "features": {feature: rest.get("contribution")},
    }


def decode_lenient(raw: str | None) -> list[Any]:
    """The stored reasons as plain JSON values (v1 reasons :func:`upgraded` to v2); a
    malformed value gives [] (logged).

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
    if not isinstance(items, list):
        return []
    return [upgraded(i) for i in items] if items and "concept" not in items[0] else items


def as_text(reasons: str | None) -> str:
    """Render a reasons JSON value as one line: ``"text (+); text (-)"``.

    Raises ValueError if the value is not a JSON array of objects with a ``text`` key.
    """
    return join_lines(
        f"{item['text']}{marker(item.get('direction', POSITIVE))}" for item in decode(reasons)
    )
