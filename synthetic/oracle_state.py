"""The oracle's view of a snapshot: each entity row's hidden state, rebuilt from ``truth``
and the activities strictly before its as_of."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from leadscore.synthetic import world
from leadscore.synthetic.dynamics import advance_bursts, decay
from leadscore.synthetic.randomness import mix64
from leadscore.synthetic.vocabulary import INDUSTRIES, SECONDS_PER_DAY

_NS_PER_SECOND = 1_000_000_000
_TRUTH_COLUMNS = ("fit_logit", "created_at", "true_industry", "burst_key", "calendar_key")


def _utc_ns(values: pd.Series) -> np.ndarray:
    """Timestamps as int64 nanoseconds since the epoch (naive values are taken as UTC)."""
    stamps = pd.to_datetime(values, utc=True).astype("datetime64[ns, UTC]")
    return stamps.to_numpy(dtype="datetime64[ns]").view(np.int64)


@dataclass(frozen=True)
class OracleRows:
    """Per entity row: hidden parameters from ``truth`` and the hidden state at as_of,
    reconstructed from the activities strictly before as_of."""

    created: np.ndarray  # int64 seconds since the epoch
    fit: np.ndarray
    log_interest: np.ndarray
    industry: np.ndarray  # true industry code
    burst_key: np.ndarray  # uint64
    calendar_key: np.ndarray  # uint64, the same for every row
    key: np.ndarray  # uint64 noise key of the row: a hash of (lead_id, as_of)
    begin: np.ndarray  # first simulated second: as_of, rounded up
    until: np.ndarray  # one past the last second inside the horizon
    # State at the start of the day of ``begin`` (what that day's hazards and rates see):
    engagement: np.ndarray
    last_activity: np.ndarray
    unsubscribed: np.ndarray
    burst_left: np.ndarray
    # That day's activities before as_of, folded into the state at the day's end:
    engagement_carry: np.ndarray  # decayed to the day's end
    last_before: np.ndarray  # last activity strictly before as_of (creation if none)
    unsubscribed_before: np.ndarray

    def take(self, rows: slice) -> OracleRows:
        """The entity rows ``rows``."""
        return OracleRows(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})


def _history(
    activities: pd.DataFrame,
    lead_ids: pd.Series,
    as_of_ns: np.ndarray,
    day_start_ns: np.ndarray,
    created: np.ndarray,
) -> dict[str, np.ndarray]:
    """Engagement, last activity and unsubscribe of each (lead, as_of) from the activities
    strictly before as_of: at the start of the day (``day_start_ns``) and within the day."""
    keys = pd.Index(pd.unique(lead_ids))
    act_code = keys.get_indexer(activities["lead_id"])
    known = act_code >= 0
    act_code = act_code[known]
    act_ns = _utc_ns(activities["occurred_at"])[known]
    types = activities["activity_type"]
    weight = types.map(world.TRUE_WEIGHTS).fillna(0.0).to_numpy(float)[known]
    unsub = (types == "unsubscribe").to_numpy(bool)[known]
    # a canonical order (lead, time, weight), so that sums ignore the input's row order
    order = np.lexsort((weight, act_ns, act_code))
    act_code, act_ns, weight, unsub = act_code[order], act_ns[order], weight[order], unsub[order]
    block_start = np.searchsorted(act_code, np.arange(len(keys)), side="left")
    block_end = np.searchsorted(act_code, np.arange(len(keys)), side="right")

    ent_code = keys.get_indexer(lead_ids)
    n = len(ent_code)
    sizes = (block_end - block_start)[ent_code]
    ent = np.repeat(np.arange(n), sizes)
    offsets = np.arange(len(ent)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    act = block_start[ent_code][ent] + offsets
    before = act_ns[act] < as_of_ns[ent]
    ent, act = ent[before], act[before]
    when, w, us = act_ns[act], weight[act], unsub[act]
    early = when < day_start_ns[ent]
    late = ~early
    day_end_ns = day_start_ns + SECONDS_PER_DAY * _NS_PER_SECOND
    seconds = when // _NS_PER_SECOND
    last_activity, last_before = created.copy(), created.copy()
    np.maximum.at(last_activity, ent[early], seconds[early])
    np.maximum.at(last_before, ent, seconds)
    return {
        "engagement": np.bincount(
            ent[early],
            weights=w[early] * decay((day_start_ns[ent[early]] - when[early]) / _NS_PER_SECOND),
            minlength=n,
        ),
        "engagement_carry": np.bincount(
            ent[late],
            weights=w[late] * decay((day_end_ns[ent[late]] - when[late]) / _NS_PER_SECOND),
            minlength=n,
        ),
        "last_activity": last_activity,
        "last_before": last_before,
        "unsubscribed": np.bincount(ent[early & us], minlength=n) > 0,
        "unsubscribed_before": np.bincount(ent[us], minlength=n) > 0,
    }


def _bursts_at(burst_key: np.ndarray, created_day: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Burst days left at the start of ``day``, replayed from each lead's creation day."""
    left = np.zeros(len(day), dtype=np.int64)
    span = day - created_day
    for j in range(int(span.max(initial=0))):
        idx = np.flatnonzero(span > j)
        left[idx] = advance_bursts(left[idx], burst_key[idx], created_day[idx] + j)
    return left


def oracle_rows(
    truth: pd.DataFrame, activities: pd.DataFrame, entities: pd.DataFrame, horizon_days: int
) -> OracleRows:
    """Hidden parameters and reconstructed state of every entity row (``lead_id``,
    ``as_of``) for a horizon of ``horizon_days``: what :func:`oracle_probability` simulates
    from. Raises ``ValueError`` when ``truth`` lacks the replay columns, misses a lead,
    mixes CRMs, or an as_of precedes its lead's creation."""
    absent = [column for column in _TRUTH_COLUMNS if column not in truth.columns]
    if absent:
        raise ValueError(f"truth lacks {absent}: regenerate the synthetic CRM")
    rows = truth.set_index("lead_id").reindex(entities["lead_id"])
    if rows["fit_logit"].isna().any():
        missing = entities["lead_id"][rows["fit_logit"].isna().to_numpy()].unique()[:5]
        raise ValueError(f"entities reference leads absent from truth: {list(missing)}")
    log_interest = (
        rows["log_interest"].to_numpy(float)
        if "log_interest" in rows
        else np.log(rows["interest"].to_numpy(float))
    )
    calendar_key = rows["calendar_key"].to_numpy(np.int64).view(np.uint64)
    if len(np.unique(calendar_key)) > 1:
        raise ValueError("truth mixes the calendars of different CRMs")
    industry = pd.Index(INDUSTRIES).get_indexer(rows["true_industry"])
    if (industry < 0).any():
        raise ValueError("truth has an unknown true_industry")
    created_ns = _utc_ns(rows["created_at"])
    as_of_ns = _utc_ns(entities["as_of"])
    if (as_of_ns < created_ns).any():
        raise ValueError("an entity's as_of is before its lead was created")
    created = created_ns // _NS_PER_SECOND
    begin = -(-as_of_ns // _NS_PER_SECOND)
    until = (as_of_ns + horizon_days * SECONDS_PER_DAY * _NS_PER_SECOND) // _NS_PER_SECOND + 1
    day = begin // SECONDS_PER_DAY
    history = _history(
        activities, entities["lead_id"], as_of_ns, day * SECONDS_PER_DAY * _NS_PER_SECOND, created
    )
    burst_key = rows["burst_key"].to_numpy(np.int64).view(np.uint64)
    lead_hash = pd.util.hash_array(entities["lead_id"].to_numpy(dtype=object))
    key = mix64(lead_hash ^ mix64(as_of_ns.astype(np.uint64)))
    return OracleRows(
        created=created,
        fit=rows["fit_logit"].to_numpy(float),
        log_interest=log_interest,
        industry=industry,
        burst_key=burst_key,
        calendar_key=calendar_key,
        key=key,
        begin=begin,
        until=until,
        burst_left=_bursts_at(burst_key, created // SECONDS_PER_DAY, day),
        **history,
    )
