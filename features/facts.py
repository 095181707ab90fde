"""A lead's own facts at scoring time, for the people reading its score.

Beside the model's numbers the score row carries what the lead *is* and *did*, in the
CRM's words: the export's display columns (``data.display``: name, company, e-mail, the
CRM's record id), its latest activity and when, its last activities as a timeline and its
attribute values (the score row's columns of models/schema.py). Point in time like the
features: nothing at or after the scoring time is read.

Pure and vectorised over a partition (the nightly batch runs it on every open lead): no
Python loop per activity or lead, and at most one JSON encoding per distinct text value;
the JSON text is assembled by Arrow's string kernels (C++). Written compactly (keys
sorted, ``separators=(",", ":")``, UTF-8 as is) so it parses as ``json.dumps(obj,
sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` would write it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

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


TEXT = pd.StringDtype("pyarrow", na_value=np.nan)
"""The frame's text dtype (pandas' default ``str``): Arrow strings, built without Python
objects from the Arrow arrays below."""


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


def _json_numbers(values: np.ndarray) -> pa.Array:
    """Numbers as JSON text ("18", "42.5"; null for missing or infinite), in Arrow."""
    numbers = np.asarray(values, dtype=np.float64)
    numbers = np.where(np.isfinite(numbers), numbers, np.nan)
    return pc.fill_null(pc.cast(pa.array(numbers, from_pandas=True), pa.string()), "null")


def _json_of(values: pd.Series) -> pa.Array:
    """A column's values as JSON text in Arrow: numbers cast in C++, anything else
    encoded once per distinct value (orjson) and taken by code."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return _json_numbers(values.to_numpy(dtype=np.float64, na_value=np.nan))
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    table = [orjson.dumps(_plain(u)).decode() for u in uniques]
    codes = np.where(codes < 0, len(table), codes)  # missing -> the trailing null
    return pa.array([*table, "null"], pa.string()).take(pa.array(codes))


def _series(values: pa.Array) -> pd.Series:
    return pd.Series(pd.array(values, dtype=TEXT))


def attributes_json(leads: pd.DataFrame, names: Sequence[str]) -> pd.Series:
    """Per lead, ``{attribute: value}`` as compact JSON with sorted keys (missing: null).

    Every declared attribute is a key, so readers can filter on any of them."""
    n = len(leads)
    parts: list[object] = []
    for i, name in enumerate(sorted(set(names))):
        parts.append(("{" if i == 0 else ",") + orjson.dumps(name).decode() + ":")
        if name in leads.columns:
            parts.append(_json_of(leads[name].reset_index(drop=True)))
        else:
            parts.append("null")
    if not parts:
        return _series(pa.array(["{}"] * n, pa.string()))
    joined = pc.binary_join_element_wise(*parts, "}", "")
    if not isinstance(joined, pa.Array):  # every part a scalar: no lead had a column
        joined = pa.array([joined.as_py()] * n, pa.string())
    return _series(joined)


def display_columns(leads: pd.DataFrame, display: Mapping[str, str]) -> dict[str, pd.Series]:
    """The score row's display columns from the export's (``display``: score column ->
    lead column): text as written, cut to the column's declared length; null if unset."""
    out: dict[str, pd.Series] = {}
    for column, length in DISPLAY_LENGTHS.items():
        source = display.get(column)
        if source is None or source not in leads.columns:
            out[column] = pd.Series(np.nan, index=range(len(leads)), dtype=TEXT)
            continue
        text = leads[source].astype(TEXT).str.strip().reset_index(drop=True)
        out[column] = text.mask(text == "").str.slice(0, length)
    return out


def _lead_codes(activities: pd.DataFrame, lead_ids: pd.Series) -> np.ndarray:
    """Each activity's lead as its position in ``lead_ids`` (-1: not one of them)."""
    ids = pd.Index(lead_ids)
    column = activities[LEAD_ID]
    if isinstance(column.dtype, pd.CategoricalDtype):  # a spilled partition: codes for free
        known = np.append(ids.get_indexer(column.cat.categories), -1)
        return known[column.cat.codes.to_numpy()]
    return ids.get_indexer(column)


@functools.cache
def _clock() -> pa.Array:
    """The 86,400 times of a day as "HH:MM:SS", by second of the day."""
    second = np.arange(86_400)
    hms = np.char.zfill(np.stack([second // 3600, second // 60 % 60, second % 60]).astype(str), 2)
    return pa.array(np.char.add(np.char.add(np.char.add(hms[0], ":"), hms[1]), ":" + hms[2]))


def _iso(nanoseconds: np.ndarray) -> pa.Array:
    """UTC instants (ns since the epoch) as ISO 8601 text to the second, ``Z`` suffixed:
    each distinct day formatted once, the time of day taken from :func:`_clock`."""
    day, second = np.divmod(nanoseconds // 1_000_000_000, 86_400)
    days, day_code = np.unique(day, return_inverse=True)
    dates = pa.array(np.datetime_as_string(days.astype("datetime64[D]")), pa.string())
    clock = _clock().take(pa.array(second))
    return pc.binary_join_element_wise(dates.take(pa.array(day_code)), "T", clock, "Z", "")


def _newest_first(lead: np.ndarray, stamp: np.ndarray) -> np.ndarray:
    """The order grouping activities by lead, newest first (to the second; ties keep
    their input order): one stable sort of a key packing the lead and the age in
    seconds, ~10x faster than a two-key lexsort on a million activities."""
    second = stamp // 1_000_000_000
    age = second.max() - second
    age_bits = int(age.max()).bit_length()
    if age_bits + int(lead.max()).bit_length() > 62:  # centuries of leads: two keys
        return np.lexsort((-stamp, lead))
    return np.argsort((lead.astype(np.int64) << age_bits) | age, kind="stable")


def activity_facts(
    activities: pd.DataFrame | None,
    lead_ids: pd.Series,
    as_of: pd.Timestamp,
    config: FeatureConfig,
    limit: int = TIMELINE_LENGTH,
) -> dict[str, pd.Series]:
    """``last_activity``, ``last_activity_at`` and ``timeline`` per lead of ``lead_ids``.

    Only activities strictly before ``as_of`` count. The timeline holds a lead's
    ``limit`` latest ones, newest first, as ``[{"type", "at", "value"}]``; a lead with
    none has ``[]`` and no last activity. The events' JSON is assembled by Arrow's
    string kernels, and each lead's list joined by one (``binary_join``).
    """
    n = len(lead_ids)
    none = pd.Series(np.nan, index=range(n), dtype=TEXT)
    out = {"last_activity": none, "last_activity_at": none.copy(), "timeline": none.fillna("[]")}
    if activities is None or len(activities) == 0 or n == 0:
        return out
    lead = _lead_codes(activities, lead_ids)
    stamp = pd.to_datetime(activities[OCCURRED_AT], utc=True).to_numpy("datetime64[ns]")
    stamp = stamp.view(np.int64)
    known = stamp != np.iinfo(np.int64).min  # NaT
    keep = np.flatnonzero((lead >= 0) & known & (stamp < as_of.value))
    if len(keep) == 0:
        return out
    order = _newest_first(lead[keep], stamp[keep])
    picked, lead = keep[order], lead[keep][order]
    starts = np.flatnonzero(np.r_[True, lead[1:] != lead[:-1]])
    position = np.arange(len(lead)) - np.repeat(starts, np.diff(np.r_[starts, len(lead)]))
    top = position < limit
    picked, lead, position = picked[top], lead[top], position[top]
    type_codes, types = pd.factorize(activities[ACTIVITY_TYPE].iloc[picked].astype(TEXT))
    labels = type_labels(config, [str(t) for t in types])
    label_json = pa.array([orjson.dumps(x).decode() for x in labels], pa.string())
    at = _iso(stamp[picked])
    if VALUE in activities.columns:
        raw = activities[VALUE].to_numpy(dtype=np.float64, na_value=np.nan)[picked]
        value = _json_numbers(raw)
    else:
        value = pa.array(["null"] * len(picked), pa.string())
    kind = label_json.take(pa.array(type_codes))
    events = pc.binary_join_element_wise(
        '{"type":', kind, ',"at":"', at, '","value":', value, "}", ""
    )
    offsets = np.r_[0, np.cumsum(np.bincount(lead, minlength=n))].astype(np.int32)
    lists = pa.ListArray.from_arrays(pa.array(offsets), events)
    out["timeline"] = _series(pc.binary_join_element_wise("[", pc.binary_join(lists, ","), "]", ""))
    first = np.full(n, -1, dtype=np.int64)
    first[lead[position == 0]] = np.flatnonzero(position == 0)
    newest = pa.array(first, mask=first < 0)
    out["last_activity"] = _series(
        pa.array(labels, pa.string()).take(pa.array(type_codes)).take(newest)
    )
    out["last_activity_at"] = _series(at.take(newest))
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
    columns: dict[str, object] = {LEAD_ID: ids}
    columns.update(display_columns(leads, display or {}))
    columns.update(activity_facts(activities, ids, as_of, config, limit))
    columns["attributes"] = attributes_json(leads, config.attributes.names)
    return pd.DataFrame(columns)[[LEAD_ID, *FACT_FRAME_COLUMNS]]
