"""The recent conversion rate: what the market is doing, as known before each lead's time.

For an entity row (a lead at time T) the feature is the share converted among the last
``MarketConfig.leads`` closed leads whose outcome was known strictly before T, and missing
when fewer than ``min_leads`` were. An outcome is known from the lead's ``closed_at`` on;
for exports in time order without timestamps, from the period after the lead's own (a
period is a run of rows with equal ``period_columns``, e.g. a contact day), and T is the
entity's own period. The lead's own outcome, and every outcome known at or after T, never
count: that is the point-in-time rule, and what the tests check.

The history is built once from the whole leads table (:meth:`OutcomeHistory.of`) and
looked up per entity in O(log n): scoring partitions hold only open leads, so the score
flow builds it while it reads the table and hands it to every partition.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from leadscore.features.config import MarketConfig
from leadscore.features.contract import CLOSED_AT, CONVERTED, LEAD_ID, OPEN, STATUS

RECENT_CONVERSION_RATE = "recent_conversion_rate"


def periods(leads: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Period number of each row (in table order): it grows by one whenever any of
    ``columns`` differs from the previous row's value (missing values compare equal)."""
    absent = [c for c in columns if c not in leads]
    if absent:
        raise KeyError(f"market.period_columns not in the leads table: {absent}")
    if len(leads) == 0:
        return np.empty(0, dtype=np.int64)
    changed = np.zeros(len(leads), dtype=bool)
    for column in columns:
        values = leads[column].astype(object).where(leads[column].notna(), None).to_numpy()
        changed[1:] |= values[1:] != values[:-1]
    return np.cumsum(changed)


@dataclass(frozen=True)
class OutcomeHistory:
    """Closed leads' outcomes in the order they became known.

    ``known_at`` (sorted) is nanoseconds since the epoch, or a period number (known to
    every later period); an entity at time T sees the outcomes with ``known_at < T``.
    ``converted`` counts conversions before each position (length n + 1). In period mode
    ``entity_period`` gives each lead's own period, the time its entity rows are asked at.
    """

    known_at: np.ndarray
    converted: np.ndarray
    entity_period: pd.Series | None

    @classmethod
    def of(cls, leads: pd.DataFrame, config: MarketConfig) -> OutcomeHistory:
        status = leads[STATUS].to_numpy(dtype=object)
        closed = status != OPEN
        entity_period = None
        if config.period_columns:
            period = periods(leads, config.period_columns)
            known_at = period[closed]  # known once its period is over
            entity_period = pd.Series(period, index=pd.Index(leads[LEAD_ID]))
        else:
            stamps = leads[CLOSED_AT].to_numpy(dtype="datetime64[ns]")
            closed &= ~np.isnat(stamps)  # an outcome with no date is never known "before"
            known_at = stamps[closed].view(np.int64)
        won = status[closed] == CONVERTED
        order = np.argsort(known_at, kind="stable")
        cumulative = np.concatenate([[0], np.cumsum(won[order], dtype=np.int64)])
        return cls(known_at[order], cumulative, entity_period)

    def times(self, entities: pd.DataFrame, as_of: np.ndarray) -> np.ndarray:
        """Each entity's time on the history's clock (int64): its lead's period, or as_of."""
        if self.entity_period is not None:
            position = self.entity_period.index.get_indexer(entities[LEAD_ID])
            if (position < 0).any():
                raise KeyError("entities name leads outside the outcome history")
            return self.entity_period.to_numpy()[position]
        return as_of.astype("datetime64[ns]").view(np.int64)

    def rate(self, entities: pd.DataFrame, as_of: np.ndarray, config: MarketConfig) -> np.ndarray:
        """Share converted among the last ``config.leads`` outcomes known strictly before
        each entity's time; NaN with fewer than ``config.min_leads`` (or no time)."""
        at = self.times(entities, as_of)
        known = np.searchsorted(self.known_at, at, side="left")  # outcomes strictly before
        first = np.maximum(known - config.leads, 0)
        count = known - first
        rate = np.full(len(at), np.nan)
        enough = count >= config.min_leads
        if self.entity_period is None:
            enough &= ~np.isnat(as_of.astype("datetime64[ns]"))
        rate[enough] = (self.converted[known] - self.converted[first])[enough] / count[enough]
        return rate
