"""Labels of a past batch from the outcomes read tonight, with censoring.

A batch scored ``as_of`` D told sales which open leads would convert within the horizon H
(the label the model was trained for: ``features/snapshots.py``). Tonight (``now``, the
outcomes' time) it is judged on what is known so far::

    observed_days = min(H, floor((now - D) / 1 day))     (never below 0)
    label = 1  if status == converted and D < closed_at <= D + observed_days
    mature = observed_days == H

A lead converted later than that counts 0 so far (it may still count in a later run, until
the batch is mature); open and lost leads count 0. A lead absent from the outcomes (gone
from the source), or converted with no date, or "converted" on or before D (it was open when
scored: the source was corrected since), has no known outcome: it is counted in ``n_leads``
but not in ``n_known``, never guessed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from leadscore.features.contract import CLOSED_AT, CONVERTED, LEAD_ID, STATUS

NS_PER_DAY = 86_400 * 10**9


@dataclass(frozen=True, eq=False)
class Labels:
    """One batch's labels so far, aligned with its score rows."""

    y: np.ndarray  # int8: 1 converted within the observed window, else 0 (0 where unknown)
    known: np.ndarray  # bool: the lead's outcome is known tonight
    observed_days: int
    mature: bool

    @property
    def n_known(self) -> int:
        return int(self.known.sum())

    @property
    def conversions(self) -> int:
        return int(self.y[self.known].sum())


def as_utc(stamp: pd.Timestamp) -> pd.Timestamp:
    """``stamp`` in UTC; a naive one is taken as UTC (the monitor's one clock)."""
    stamp = pd.Timestamp(stamp)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def observed_days(as_of: pd.Timestamp, now: pd.Timestamp, horizon_days: int) -> int:
    """Whole days of outcomes seen since ``as_of``, at most the horizon, at least 0."""
    days = (as_utc(now) - as_utc(as_of)) / pd.Timedelta(days=1)
    return int(min(horizon_days, max(0, math.floor(days))))


def label_batch(
    lead_ids: pd.Series | np.ndarray,
    outcomes: pd.DataFrame,
    *,
    as_of: pd.Timestamp,
    now: pd.Timestamp,
    horizon_days: int,
) -> Labels:
    """Labels of the leads ``lead_ids`` scored ``as_of``, from ``outcomes`` known at ``now``.

    ``outcomes``: one row per lead (``lead_id``, ``status``, ``closed_at`` UTC or NaT);
    a lead listed twice keeps its last row.
    """
    days = observed_days(as_of, now, horizon_days)
    table = outcomes.drop_duplicates(LEAD_ID, keep="last")
    position = pd.Index(table[LEAD_ID]).get_indexer(pd.Index(lead_ids))
    found = position >= 0
    status = table[STATUS].to_numpy(dtype=object)
    closed = pd.to_datetime(table[CLOSED_AT], utc=True).to_numpy(dtype="datetime64[ns]")
    converted = np.zeros(len(position), dtype=bool)
    closed_at = np.full(len(position), np.datetime64("NaT"), dtype="datetime64[ns]")
    converted[found] = status[position[found]] == CONVERTED
    closed_at[found] = closed[position[found]]
    start = as_utc(as_of).tz_localize(None).to_datetime64().astype("datetime64[ns]")
    end = start + np.timedelta64(days * NS_PER_DAY, "ns")
    dated = ~np.isnat(closed_at)
    after = np.zeros(len(position), dtype=bool)
    after[dated] = closed_at[dated] > start
    within = np.zeros(len(position), dtype=bool)
    within[dated] = after[dated] & (closed_at[dated] <= end)
    unknown = ~found | (converted & ~dated) | (converted & dated & ~after)
    y = (converted & within & ~unknown).astype(np.int8)
    return Labels(y=y, known=~unknown, observed_days=days, mature=days == horizon_days)
