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

from collections.abc import Mapping, Sequence

import numba
import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from leadscore.features.config import FeatureConfig
from leadscore.features.contract import ACTIVITY_TYPE, LEAD_ID, OCCURRED_AT, VALUE
from leadscore.features.pieces import TEXT, Column, Pieces, join_rows
from leadscore.features.text_bytes import trimmed

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


def _number_texts(values: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Numbers as codes into their JSON texts (:func:`_json_numbers`), each distinct
    number (bit for bit: -0.0 is not 0.0) written once."""
    bits = np.ascontiguousarray(values, dtype=np.float64).view(np.int64)
    codes, uniques = pd.factorize(bits, use_na_sentinel=False)
    return codes, _json_numbers(np.asarray(uniques).view(np.float64)).to_pylist()


def _json_texts(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """A column's values as codes into their JSON texts: numbers cast by Arrow, anything
    else encoded by orjson, each distinct value once."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return _number_texts(values.to_numpy(dtype=np.float64, na_value=np.nan))
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    table = [orjson.dumps(_plain(u)).decode() for u in uniques]
    return np.where(codes < 0, len(table), codes), [*table, "null"]  # missing: null


def _series(values: pa.Array) -> pd.Series:
    return pd.Series(pd.array(values, dtype=TEXT))


def attributes_json(leads: pd.DataFrame, names: Sequence[str]) -> pd.Series:
    """Per lead, ``{attribute: value}`` as compact JSON with sorted keys (missing: null).

    Every declared attribute is a key, so readers can filter on any of them."""
    n = len(leads)
    pieces, columns = Pieces(), []
    for i, name in enumerate(sorted(set(names))):
        key = ("{" if i == 0 else ",") + orjson.dumps(name).decode() + ":"
        codes, texts = (np.zeros(n, np.int64), ["null"])
        if name in leads.columns:
            codes, texts = _json_texts(leads[name])
        columns += [(np.zeros(n, np.int64), pieces.one(key)), (codes, pieces.add(texts))]
    if not columns:
        columns.append((np.zeros(n, np.int64), pieces.one("{")))
    return _series(join_rows(pieces, columns, close="}"))


def display_columns(leads: pd.DataFrame, display: Mapping[str, str]) -> dict[str, pd.Series]:
    """The score row's display columns from the export's (``display``: score column ->
    lead column): text as written, cut to the column's declared length; null if unset."""
    out: dict[str, pd.Series] = {}
    for column, length in DISPLAY_LENGTHS.items():
        source = display.get(column)
        if source is None or source not in leads.columns:
            out[column] = pd.Series(np.nan, index=range(len(leads)), dtype=TEXT)
            continue
        text = leads[source].astype(TEXT).reset_index(drop=True)
        if trimmed(text) and _longest(text) <= length:  # the usual column: nothing to do
            out[column] = text
            continue
        text = text.str.strip()
        out[column] = text.mask(text == "").str.slice(0, length)
    return out


def _longest(text: pd.Series) -> int:
    """The most UTF-8 bytes of any value of an Arrow-backed text column (at least its
    characters): a column whose values all fit needs no cut."""
    lengths = pc.binary_length(pa.chunked_array(pa.array(text.array)))
    longest = pc.max(lengths).as_py()
    return 0 if longest is None else int(longest)


def _lead_codes(activities: pd.DataFrame, lead_ids: pd.Series) -> np.ndarray:
    """Each activity's lead as its position in ``lead_ids`` (-1: not one of them)."""
    column = activities[LEAD_ID]
    if isinstance(column.dtype, pd.CategoricalDtype):  # a spilled partition: codes for free
        codes = column.cat.codes.to_numpy()
        if _same_text(column.cat.categories, lead_ids):  # its leads, in order: no lookup
            return codes.astype(np.int64)
        known = np.append(pd.Index(lead_ids).get_indexer(column.cat.categories), -1)
        return known[codes]
    return pd.Index(lead_ids).get_indexer(column)


def _same_text(a: pd.Index, b: pd.Series) -> bool:
    """Whether two Arrow-backed text columns hold the same values in the same order
    (compared as Arrow arrays, no hashing); False for any other kind of column."""
    arrow = [isinstance(v.dtype, pd.StringDtype) and v.dtype.storage == "pyarrow" for v in (a, b)]
    if len(a) != len(b) or not all(arrow):
        return False
    left, right = (pa.chunked_array(pa.array(v.array)).cast(pa.large_string()) for v in (a, b))
    return bool(left.equals(right))


MINUTES = tuple(f"{m // 60:02d}:{m % 60:02d}:" for m in range(1440))
"""The minutes of a day as "HH:MM:" (a time of day is its minute and its second)."""


def _days(day: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Days since the epoch as codes into their ISO dates ("2025-02-07"), each distinct
    day formatted once (a table over the span of days when that is short: no sort)."""
    low, high = (int(day.min()), int(day.max())) if len(day) else (0, -1)
    if high - low < 4 * len(day) + 1000:
        codes, days = day - low, np.arange(low, high + 1)
    else:
        days, codes = np.unique(day, return_inverse=True)
    text = np.datetime_as_string(days.astype("datetime64[D]")).tolist()
    return codes.ravel(), text


def _instants(seconds: np.ndarray, pieces: Pieces, after: str) -> list[Column]:
    """UTC instants (seconds since the epoch) as ISO 8601 text to the second, then
    ``after``: "2025-02-07T21:07:47" as the pieces' columns (date, minute, second)."""
    day, second = np.divmod(seconds, 86_400)
    day_code, dates = _days(day)
    return [
        (day_code, pieces.add(d + "T" for d in dates)),
        (second // 60, pieces.add(MINUTES)),
        (second % 60, pieces.add(f"{s:02d}{after}" for s in range(60))),
    ]


def _iso(nanoseconds: np.ndarray) -> pa.Array:
    """UTC instants (ns since the epoch) as ISO 8601 text to the second, ``Z`` suffixed."""
    pieces = Pieces()
    return join_rows(pieces, _instants(nanoseconds // 1_000_000_000, pieces, "Z"))


@numba.njit(cache=True, inline="always")
def _at(bucket: np.ndarray, ordered: bool, j: int) -> int:
    """The activity at place ``j`` of the by-lead order (itself when the log is so ordered)."""
    return j if ordered else bucket[j]


@numba.njit(cache=True, nogil=True)
def _newest_kernel(lead: np.ndarray, stamp: np.ndarray, n: int, limit: int) -> tuple:
    """Per lead (0..n-1), the positions of its ``limit`` newest activities, newest first
    (to the second of ``stamp``, ns; ties keep their input order), and the offsets of each
    lead's run: a counting sort by lead (none when the log is grouped by lead already, as
    a partition's is), then each lead's few activities ordered on their own."""
    starts = np.zeros(n + 1, dtype=np.int64)
    ordered = True
    for i in range(len(lead)):
        starts[lead[i] + 1] += 1
        if i and lead[i] < lead[i - 1]:
            ordered = False
    kept = np.zeros(n + 1, dtype=np.int64)
    for r in range(n):
        kept[r + 1] = kept[r] + min(starts[r + 1], limit)
        starts[r + 1] += starts[r]
    bucket = np.empty(0 if ordered else len(lead), dtype=np.int64)
    if not ordered:
        filled = starts[:-1].copy()
        for i in range(len(lead)):
            bucket[filled[lead[i]]] = i
            filled[lead[i]] += 1
    ns = 1_000_000_000
    out = np.empty(kept[n], dtype=np.int64)
    for r in range(n):
        a, b, w, end = starts[r], starts[r + 1], kept[r], kept[r + 1]
        ascending = True
        for j in range(a + 1, b):
            if stamp[_at(bucket, ordered, j)] // ns < stamp[_at(bucket, ordered, j - 1)] // ns:
                ascending = False
                break
        if ascending:  # the log's usual order: the newest run of equal seconds first
            j = b
            while j > a and w < end:
                i = j - 1
                while (
                    i > a
                    and stamp[_at(bucket, ordered, i - 1)] // ns
                    == stamp[_at(bucket, ordered, i)] // ns
                ):
                    i -= 1
                for t in range(i, j):
                    if w < end:
                        out[w] = _at(bucket, ordered, t)
                        w += 1
                j = i
        else:
            keys = np.empty(b - a, dtype=np.int64)
            for t in range(a, b):
                keys[t - a] = -(stamp[_at(bucket, ordered, t)] // ns)
            order = np.argsort(keys, kind="mergesort")
            for t in range(end - w):
                out[w + t] = _at(bucket, ordered, a + order[t])
    return out, kept


def _value_pieces(values: np.ndarray, pieces: Pieces) -> Column:
    """The codes of each value's JSON text (:func:`_json_numbers`) followed by ``}``,
    each distinct value (bit for bit: -0.0 is not 0.0) written once."""
    codes, texts = _number_texts(values)
    return codes, pieces.add(t + "}" for t in texts)


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
    none has ``[]`` and no last activity. Each distinct label, day, second of the day
    and value is written once, and the timelines assembled from those pieces
    (features/pieces.py).
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
    kept = (lead >= 0) & known & (stamp < as_of.value)
    if kept.all():  # the nightly case: every activity counts, no copy of the log
        picked, groups = _newest_kernel(lead, stamp, n, limit)
    else:
        keep = np.flatnonzero(kept)
        if len(keep) == 0:
            return out
        order, groups = _newest_kernel(lead[keep], stamp[keep], n, limit)
        picked = keep[order]
    seconds = stamp[picked] // 1_000_000_000
    kinds = pc.dictionary_encode(pa.array(activities[ACTIVITY_TYPE].array))
    if isinstance(kinds, pa.ChunkedArray):
        last = kinds.chunk(kinds.num_chunks - 1)  # every chunk's dictionary is the same
        kinds = pa.concat_arrays([c.indices for c in kinds.chunks]), last.dictionary
    else:
        kinds = kinds.indices, kinds.dictionary
    type_codes = kinds[0].to_numpy(zero_copy_only=False)[picked]
    labels = type_labels(config, [str(t) for t in kinds[1].to_pylist()])
    pieces = Pieces()
    heads = [f'{{"type":{orjson.dumps(x).decode()},"at":"' for x in labels]
    if VALUE in activities.columns:
        raw = activities[VALUE].to_numpy(dtype=np.float64, na_value=np.nan)[picked]
    else:
        raw = np.full(len(picked), np.nan)
    columns = [
        (type_codes, pieces.add(heads)),
        *_instants(seconds, pieces, 'Z","value":'),
        _value_pieces(raw, pieces),
    ]
    out["timeline"] = _series(join_rows(pieces, columns, groups, "[", ",", "]"))
    first, none_yet = groups[:-1], groups[1:] == groups[:-1]
    first = np.where(none_yet, 0, first)  # a lead without activities: masked below
    newest = pa.array(np.arange(n), mask=none_yet)
    last = pa.array(labels, pa.large_string()).take(pa.array(type_codes[first]))
    out["last_activity"] = _series(last.take(newest))
    out["last_activity_at"] = _series(_iso(stamp[picked[first]]).take(newest))
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
