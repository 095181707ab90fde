"""A lead's own facts at scoring time, for the people reading its score.

Beside the model's numbers the score row carries what the lead *is* and *did*, in the
CRM's words: the export's display columns (``data.display``: name, company, e-mail, the
CRM's record id), its latest activity and when, its last activities as a timeline and its
attribute values (the score row's columns of models/schema.py). Point in time like the
features: nothing at or after the scoring time is read.

Pure and vectorised over a partition (the nightly batch runs it on every open lead): no
Python loop per activity and at most one JSON encoding per distinct value; the JSON text
is assembled with array string operations. Written compactly (``separators=(",", ":")``,
keys sorted, UTF-8 as is) so it parses as ``json.dumps(obj, sort_keys=True,
separators=(",", ":"), ensure_ascii=False)`` would write it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import orjson
import pandas as pd

from leadscore.features.config import FeatureConfig
from leadscore.features.contract import ACTIVITY_TYPE, LEAD_ID, OCCURRED_AT, VALUE

DISPLAY_LENGTHS: dict[str, int] = {"name": 255, "company": 255, "email": 320, "record_id": 255}
"""The display columns and the longest text each keeps (the store's column lengths,
declared in models/schema.py; a test checks they agree)."""
FACT_COLUMNS: tuple[str, ...] = ("last_activity", "last_activity_at", "attributes", "timeline")
"""The facts proper: the latest activity and when, the attribute values, the timeline."""
FACT_FRAME_COLUMNS: tuple[str, ...] = (*DISPLAY_LENGTHS, *FACT_COLUMNS)
"""What :func:`lead_facts` returns after ``lead_id``, one row per lead in the leads' order."""
TIMELINE_LENGTH = 20
"""At most this many activities in a timeline."""


def type_labels(config: FeatureConfig, types: Sequence[str]) -> list[str]:
    """Each activity type in words: its declared label, else its own name ("chat started")."""
    declared = config.activity_types
    return [declared[t].label if t in declared else str(t).replace("_", " ") for t in types]


def _encode(values: Sequence[object]) -> np.ndarray:
    """Each value as JSON text (null for missing; whole numbers without ".0")."""
    out = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        out[i] = orjson.dumps(_plain(value)).decode()
    return out


def _plain(value: object) -> object:
    """A cell as a JSON value: None for missing, int for a whole float, else as is."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float | np.floating):
        number = float(value)
        if not np.isfinite(number):
            return None
        return int(number) if number.is_integer() and abs(number) < 2**53 else number
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _json_of(values: pd.Series) -> np.ndarray:
    """A column's values as JSON text, encoding each distinct value once."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    table = np.append(_encode(list(uniques)), "null")  # code -1 (missing) -> the last
    return table[codes]


def attributes_json(leads: pd.DataFrame, names: Sequence[str]) -> np.ndarray:
    """Per lead, ``{attribute: value}`` as compact JSON with sorted keys (missing: null).

    Every declared attribute is a key, so readers can filter on any of them."""
    n = len(leads)
    if not names:
        return np.full(n, "{}", dtype=object)
    parts: list[np.ndarray] = []
    for i, name in enumerate(sorted(set(names))):
        key = ("{" if i == 0 else ",") + orjson.dumps(name).decode() + ":"
        values = _json_of(leads[name]) if name in leads.columns else np.full(n, "null", object)
        parts.append(key + values)
    out = parts[0]
    for part in parts[1:]:
        out = out + part
    return out + "}"


def display_columns(leads: pd.DataFrame, display: Mapping[str, str]) -> dict[str, np.ndarray]:
    """The score row's display columns from the export's (``display``: score column ->
    lead column): text as written, cut to the column's declared length; None if unset."""
    out: dict[str, np.ndarray] = {}
    for column, length in DISPLAY_LENGTHS.items():
        source = display.get(column)
        if source is None or source not in leads.columns:
            out[column] = np.full(len(leads), None, dtype=object)
            continue
        text = leads[source].astype("str").str.strip()
        text = text.mask(text.isna() | (text == "")).str.slice(0, length)
        out[column] = text.to_numpy(dtype=object, na_value=None)
    return out


def _lead_codes(activities: pd.DataFrame, lead_ids: pd.Series) -> np.ndarray:
    """Each activity's lead as its position in ``lead_ids`` (-1: not one of them)."""
    ids = pd.Index(lead_ids)
    column = activities[LEAD_ID]
    if isinstance(column.dtype, pd.CategoricalDtype):  # a spilled partition: codes for free
        known = np.append(ids.get_indexer(column.cat.categories), -1)
        return known[column.cat.codes.to_numpy()]
    return ids.get_indexer(column)


def _iso(stamps: pd.Series) -> np.ndarray:
    """UTC instants as ISO 8601 text to the second, ``Z`` suffixed."""
    utc = pd.to_datetime(stamps, utc=True).dt.tz_localize(None).to_numpy("datetime64[s]")
    return np.char.add(np.datetime_as_string(utc, unit="s"), "Z").astype(object)


def activity_facts(
    activities: pd.DataFrame | None,
    lead_ids: pd.Series,
    as_of: pd.Timestamp,
    config: FeatureConfig,
    limit: int = TIMELINE_LENGTH,
) -> dict[str, np.ndarray]:
    """``last_activity``, ``last_activity_at`` and ``timeline`` per lead of ``lead_ids``.

    Only activities strictly before ``as_of`` count. The timeline holds a lead's
    ``limit`` latest ones, newest first, as ``[{"type", "at", "value"}]``; a lead with
    none has ``[]`` and no last activity.
    """
    n = len(lead_ids)
    out = {
        "last_activity": np.full(n, None, dtype=object),
        "last_activity_at": np.full(n, None, dtype=object),
        "timeline": np.full(n, "[]", dtype=object),
    }
    if activities is None or len(activities) == 0 or n == 0:
        return out
    lead = _lead_codes(activities, lead_ids)
    when = pd.to_datetime(activities[OCCURRED_AT], utc=True)
    keep = np.flatnonzero((lead >= 0) & (when < as_of).to_numpy(dtype=bool, na_value=False))
    if len(keep) == 0:
        return out
    lead, stamp = lead[keep], when.to_numpy("datetime64[ns]")[keep]
    order = np.lexsort((-stamp.view(np.int64), lead))  # by lead, newest first
    lead, picked = lead[order], keep[order]
    first = np.r_[True, lead[1:] != lead[:-1]]
    starts = np.flatnonzero(first)
    position = np.arange(len(lead)) - np.repeat(starts, np.diff(np.r_[starts, len(lead)]))
    top = position < limit
    lead, picked, position = lead[top], picked[top], position[top]
    rows = activities.iloc[picked]
    type_codes, types = pd.factorize(rows[ACTIVITY_TYPE].astype("str"))
    labels = np.array(type_labels(config, list(types)), dtype=object)
    at = _iso(rows[OCCURRED_AT])
    values = _json_of(rows[VALUE]) if VALUE in rows.columns else np.full(len(rows), "null")
    label_json = _encode(list(labels))[type_codes]
    events = '{"type":' + label_json + ',"at":"' + at + '","value":' + values + "}"
    newest = position == 0
    out["last_activity"][lead[newest]] = labels[type_codes[newest]]
    out["last_activity_at"][lead[newest]] = at[newest]
    grid = np.full((n, limit), "", dtype=object)
    grid[lead, position] = np.where(position == 0, "", ",") + events
    text = np.full(n, "[", dtype=object)
    for k in range(limit):  # one array operation per timeline slot, not per activity
        text = text + grid[:, k]
    out["timeline"] = text + "]"
    return out


def lead_facts(
    leads: pd.DataFrame,
    activities: pd.DataFrame | None,
    as_of: pd.Timestamp,
    config: FeatureConfig,
    display: Mapping[str, str] | None = None,
    limit: int = TIMELINE_LENGTH,
) -> pd.DataFrame:
    """The facts of each lead of ``leads`` as of ``as_of``, in the leads' order.

    Columns: ``lead_id`` then :data:`FACT_FRAME_COLUMNS`. ``activities`` may hold other
    leads' and later activities (they are left out); ``display`` maps score-row display
    columns to the export's columns (``data.display``).
    """
    as_of = pd.Timestamp(as_of)
    as_of = as_of.tz_localize("UTC") if as_of.tzinfo is None else as_of.tz_convert("UTC")
    ids = leads[LEAD_ID].reset_index(drop=True)
    columns: dict[str, object] = {LEAD_ID: ids.to_numpy(dtype=object)}
    columns.update(display_columns(leads, display or {}))
    columns.update(activity_facts(activities, ids, as_of, config, limit))
    columns["attributes"] = attributes_json(leads, config.attributes.names)
    return pd.DataFrame(columns)[[LEAD_ID, *FACT_FRAME_COLUMNS]]
