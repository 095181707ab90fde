"""The Great Expectations row rules evaluated as whole-column numpy masks.

The suites of ``features.validation`` are declared once, as GX expectations. GX runs each
expectation as a chain of metrics per batch and returns the failing rows' indices; at 27M
activities a night that machinery, not the comparisons, was the cost. ``unexpected`` reads
an expectation's own configuration (its column, bounds, value set, row condition, pair
options) and computes the rows GX reports as unexpected (``unexpected_index_list``) in one
vectorised step. It knows the expectation types the suites use; for any other type, or an
option it does not model, it returns None and the caller runs that expectation through GX.
``tests/features/test_expectations.py`` pins the masks equal to GX's rows on dirty frames.

GX's semantics, as reproduced: a column map expectation other than the null checks ignores
null values (they are neither expected nor unexpected); a ``row_condition`` first keeps the
rows it holds for (a null never satisfies it); ``mostly`` decides success, never which rows
are unexpected, so it plays no part here.
"""

from __future__ import annotations

import operator
from collections.abc import Callable

import numpy as np
import pandas as pd
from great_expectations import expectations as gxe
from great_expectations.expectations.row_conditions import ComparisonCondition, Operator

_COMPARE: dict[Operator, Callable[[pd.Series, object], pd.Series]] = {
    Operator.EQUAL: operator.eq,
    Operator.NOT_EQUAL: operator.ne,
    Operator.LESS_THAN: operator.lt,
    Operator.LESS_THAN_OR_EQUAL: operator.le,
    Operator.GREATER_THAN: operator.gt,
    Operator.GREATER_THAN_OR_EQUAL: operator.ge,
    Operator.IN: lambda s, p: s.isin(list(p)),  # type: ignore[arg-type]
}


def _holds(frame: pd.DataFrame, condition: object) -> np.ndarray | None:
    """Rows a row condition keeps (all rows: none given); None: a condition not modelled."""
    if condition is None:
        return np.ones(len(frame), dtype=bool)
    if not isinstance(condition, ComparisonCondition) or condition.operator not in _COMPARE:
        return None
    values = frame[condition.column.name]
    held = _COMPARE[condition.operator](values, condition.parameter)
    return np.asarray(pd.Series(held).fillna(False), dtype=bool) & values.notna().to_numpy()


_NAT = np.iinfo(np.int64).min


def _ns(values: pd.Series) -> np.ndarray | None:
    """A time-zone-aware nanosecond column as int64 instants (NaT: the minimum), the form
    its comparisons take without pandas' per-call checks; None for any other column."""
    dtype = values.dtype
    if isinstance(dtype, pd.DatetimeTZDtype) and dtype.unit == "ns":
        return values.array.asi8
    return None


def _ns_bound(value: object) -> int | None:
    """A time-zone-aware bound as an instant in ns, if it is one (else None)."""
    if not isinstance(value, pd.Timestamp) or value.tz is None:
        return None
    try:
        return int(value.as_unit("ns").value)
    except (OverflowError, ValueError):  # beyond the ns range: compare through pandas
        return None


def _between_ns(values: pd.Series, e: gxe.ExpectColumnValuesToBeBetween) -> np.ndarray | None:
    ns = _ns(values)
    bounds = [(v, _ns_bound(v)) for v in (e.min_value, e.max_value)]
    if ns is None or any(v is not None and b is None for v, b in bounds):
        return None
    (_, low), (_, high) = bounds
    out = np.zeros(len(ns), dtype=bool)
    if low is not None:
        out |= ns <= low if e.strict_min else ns < low
    if high is not None:
        out |= ns >= high if e.strict_max else ns > high
    return out & (ns != _NAT)


def _between(values: pd.Series, e: gxe.ExpectColumnValuesToBeBetween) -> np.ndarray:
    fast = _between_ns(values, e)
    if fast is not None:
        return fast
    low, high = e.min_value, e.max_value
    out = np.zeros(len(values), dtype=bool)
    present = values.notna().to_numpy()
    if low is not None:
        below = values <= low if e.strict_min else values < low
        out |= np.asarray(below.fillna(False), dtype=bool)
    if high is not None:
        above = values >= high if e.strict_max else values > high
        out |= np.asarray(above.fillna(False), dtype=bool)
    return out & present


def unexpected(frame: pd.DataFrame, e: object) -> np.ndarray | None:
    """Per row of ``frame``, whether GX reports it unexpected for expectation ``e``
    (boolean mask by position); None when ``e`` is not one modelled here (run GX)."""
    if getattr(e, "condition_parser", None) not in (None, "great_expectations"):
        return None
    held = _holds(frame, getattr(e, "row_condition", None))
    if held is None:
        return None
    if isinstance(e, gxe.ExpectColumnPairValuesAToBeGreaterThanB):
        if e.ignore_row_if != "either_value_is_missing":
            return None
        a, b = frame[e.column_A], frame[e.column_B]
        a_ns, b_ns = _ns(a), _ns(b)
        if a_ns is not None and b_ns is not None:  # instants: compared as integers
            both = (a_ns != _NAT) & (b_ns != _NAT)
            return held & both & ~((a_ns >= b_ns) if e.or_equal else (a_ns > b_ns))
        both = a.notna().to_numpy() & b.notna().to_numpy()
        ahead = (a >= b) if e.or_equal else (a > b)
        return held & both & ~np.asarray(ahead.fillna(False), dtype=bool)
    values = frame[e.column]  # type: ignore[attr-defined]
    null = values.isna().to_numpy()
    if isinstance(e, gxe.ExpectColumnValuesToNotBeNull):
        return held & null
    if isinstance(e, gxe.ExpectColumnValuesToBeNull):
        return held & ~null
    if isinstance(e, gxe.ExpectColumnValuesToBeInSet):
        inside = values.isin(list(e.value_set or [])).to_numpy()  # type: ignore[arg-type]
        return held & ~null & ~inside
    if isinstance(e, gxe.ExpectColumnValuesToBeBetween):
        return held & _between(values, e)
    if isinstance(e, gxe.ExpectColumnValuesToBeUnique):
        kept = held & ~null
        repeated = np.zeros(len(frame), dtype=bool)
        repeated[kept] = values[kept].duplicated(keep=False).to_numpy()
        return repeated
    return None
