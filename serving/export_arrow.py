"""The CRM export's rows built column at a time in Arrow: the nightly batch's fast path.

:func:`export_table` returns, for Arrow columns of scored leads, the table that
``serving.export.write_csv_chunks_atomic`` writes for ``export_frame`` of the same leads
(the same columns, types and values, formula cells neutralised), so the CSV bytes are the
same (tests/serving/test_export_arrow.py compares the files) without a Python object per
cell. What it does differently:

- the ``reason_1``..``reason_3`` lines come from one regular-expression pass over the
  ``reasons`` JSON (RE2, in Arrow): a value that is exactly the JSON the codec writes
  (``models/reasons.py``: objects with ``concept``, ``text``, ``direction``, numbers, a
  ``features`` object) and whose first three texts hold no escape is read there; any
  other value (an escape, a v1 reason, a null, something malformed) is read by
  ``serving.export.strongest_reasons``, the codec's reader, row by row, so the lines and
  the errors (naming the lead) are the codec's;
- timestamps are written by Arrow's cast to text (whole seconds, UTC, ``...T...Z``);
- numbers are rounded by numpy, as pandas rounds them.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from leadscore.serving.csv_scan import reason_lines_bytes, reason_spans, string_buffers
from leadscore.serving.export import (
    PROBABILITY_DIGITS,
    TIMESTAMPS,
    WHOLE_NUMBERS,
    _iso_utc,
    strongest_reasons,
)
from leadscore.serving.export_fields import EXPORT_COLUMNS, REASON_COLUMNS


def reason_lines(reasons: pa.Array | pa.ChunkedArray, lead_ids: pa.Array) -> list[pa.Array]:
    """``reason_1``..``reason_3`` of each ``reasons`` value, as ``strongest_reasons``
    gives them (``"text (+)"``, null when fewer); a malformed value raises its
    ValueError naming the lead (the first in row order)."""
    values = _plain(reasons)
    values = values if _text(values.type) else values.cast(pa.string())
    n = len(values)
    data, offsets, valid = string_buffers(values)
    count, spans = reason_spans(data, offsets, valid)
    lines = []
    for slot in range(len(REASON_COLUMNS)):
        starts, text = reason_lines_bytes(data, count, spans, slot)
        present = np.packbits(count > slot, bitorder="little")
        buffers = [pa.py_buffer(present), pa.py_buffer(starts), pa.py_buffer(text)]
        lines.append(pa.Array.from_buffers(pa.string(), n, buffers))
    others = np.flatnonzero(count < 0)
    if not len(others):
        return lines
    read = _codec_lines(values.take(others).to_pylist(), _plain(lead_ids).take(others).to_pylist())
    mask = pa.array(count < 0)
    return [
        pc.replace_with_mask(line, mask, pa.array(column, pa.string()))
        for line, column in zip(lines, zip(*read, strict=True), strict=True)
    ]


def frame_reason_lines(frame: pd.DataFrame) -> list[pd.Series]:
    """:func:`reason_lines` of a frame's ``reasons`` (its ``lead_id`` names a malformed
    one), as object Series on its index: None where a lead has fewer reasons."""
    reasons = pa.array(frame["reasons"].to_numpy(dtype=object), pa.string(), from_pandas=True)
    lead_ids = pa.array(frame["lead_id"].to_numpy(dtype=object), from_pandas=True)
    return [
        pd.Series(lines.to_numpy(zero_copy_only=False), dtype=object, index=frame.index)
        for lines in reason_lines(reasons, lead_ids)
    ]


def _codec_lines(values: list[str | None], lead_ids: list[object]) -> list[list[str | None]]:
    """``strongest_reasons`` of each value; the first malformed one raises, naming its lead
    (as ``export_frame`` does)."""
    out = []
    for lead_id, raw in zip(lead_ids, values, strict=True):
        try:
            out.append(strongest_reasons(raw))
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"column 'reasons' is not a JSON array of reasons for lead_id {lead_id!r}: {exc}"
            ) from exc
    return out


ISO_SECONDS = r"^[0-9]{4}-(?:0[1-9]|1[0-2])-[0-3][0-9]T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z$"
"""Text that is already a timestamp as the export writes it (``2026-11-22T03:15:00Z``)."""

_PANDAS_SPAN = (
    pd.Timestamp.min.ceil("s").value // 10**9,
    pd.Timestamp.max.floor("s").value // 10**9,
)


def iso_utc(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Timestamps as ``2026-11-22T03:15:00Z`` text (UTC, whole seconds; null stays null),
    as ``serving.export._iso_utc`` writes them. Text that is already so written (a real
    date, in the years pandas reads) is kept; other text goes to that function."""
    column = _plain(column)
    if pa.types.is_null(column.type):
        return pa.nulls(len(column), pa.string())
    if pa.types.is_timestamp(column.type):
        seconds = pc.floor_temporal(column, unit="second").cast(pa.timestamp("s"))
        text = pc.replace_substring(seconds.cast(pa.string()), " ", "T", max_replacements=1)
        return pc.binary_join_element_wise(text, "Z", "")
    if _text(column.type) and _written(column):
        return column
    written = _iso_utc(pd.Series(column.to_pandas(), dtype=object))
    return pa.array(written.to_numpy(dtype=object), pa.string(), from_pandas=True)


def _written(text: pa.Array) -> bool:
    """Whether every value of ``text`` is a real UTC time written as the export writes it."""
    if not pc.all(pc.fill_null(pc.match_substring_regex(text, ISO_SECONDS), True)).as_py():
        return False
    try:
        stamps = pc.strptime(text, format="%Y-%m-%dT%H:%M:%SZ", unit="s")
    except (pa.ArrowInvalid, ValueError):  # a day that does not exist: pandas says which
        return False
    low, high = pc.min_max(stamps.cast(pa.int64())).values()
    low, high = low.as_py(), high.as_py()
    return low is None or (_PANDAS_SPAN[0] <= low and high <= _PANDAS_SPAN[1])


def export_table(
    scores: pa.Table, constants: Mapping[str, object], calls: Mapping[str, pa.Array]
) -> pa.Table:
    """The export's rows (:data:`EXPORT_COLUMNS`, in ``scores``' row order) as
    ``serving.export.write_csv_chunks_atomic`` takes them (it neutralises the formula
    cells).

    ``scores`` has the score columns with ``rank``, ``percentile`` and ``rule_rank``;
    ``constants`` the columns equal on every row (``batch_id``, ``model_version``,
    ``scored_at``); ``calls`` the ``call_rep`` and ``call_position`` of each row.
    """
    n = scores.num_rows
    lines = reason_lines(scores["reasons"], scores["lead_id"])
    reasons = dict(zip(REASON_COLUMNS, lines, strict=True))
    columns = []
    for name in EXPORT_COLUMNS:
        if name in constants:  # already as written (a timestamp: its ISO text)
            columns.append(_text_or_own(_constant(name, constants[name], n)))
            continue
        if name in reasons:
            column = reasons[name]
        elif name in calls:
            column = _plain(calls[name])
        else:
            column = _plain(scores[name])
        columns.append(export_column(name, column))
    return pa.Table.from_arrays(columns, names=list(EXPORT_COLUMNS))


def export_column(name: str, column: pa.Array) -> pa.Array:
    """Export column ``name`` as the CSV writes it: NaN as null, timestamps as ISO text,
    whole numbers as integers, the probability rounded, text as plain text."""
    column = _nan_as_null(column)
    if name in TIMESTAMPS:
        column = iso_utc(column)
    elif name in WHOLE_NUMBERS:
        column = column.cast(pa.int64())
    elif name == "probability":
        rounded = np.round(column.to_numpy(zero_copy_only=False), PROBABILITY_DIGITS)
        column = pa.array(rounded, from_pandas=True)
    return _text_or_own(column)


def _constant(name: str, value: object, n: int) -> pa.Array:
    """One value on ``n`` rows, as text (a timestamp as ``export_frame`` writes it)."""
    if name in TIMESTAMPS:
        value = _iso_utc(pd.Series([value]))[0]
    text = None if value is None else str(value)
    return pa.repeat(pa.scalar(text, pa.string()), n)


def _nan_as_null(column: pa.Array) -> pa.Array:
    """A float column's NaN as null, as a pandas round trip makes them (an empty cell)."""
    if not pa.types.is_floating(column.type) or not pc.any(pc.is_nan(column)).as_py():
        return column
    return pc.if_else(pc.is_nan(column), pa.scalar(None, column.type), column)


def _plain(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One array (a chunked column combined)."""
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def _text_or_own(column: pa.Array) -> pa.Array:
    """Text (large, categorical, or no value at all) as plain text; anything else as is."""
    kind = column.type
    if pa.types.is_null(kind):
        return column.cast(pa.string())
    if pa.types.is_dictionary(kind):
        return column.cast(kind.value_type).cast(pa.string()) if _text(kind.value_type) else column
    return column.cast(pa.string()) if _text(kind) else column


def _text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)
