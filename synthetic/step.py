"""The daily step: one function advances simulated units (leads, or oracle paths) a day.

The generator runs it with sampled closes over the whole CRM; the oracle runs it without
(integrating the close probabilities) from the state rebuilt at a snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from leadscore.synthetic import world
from leadscore.synthetic.dynamics import (
    activity_rate,
    conversion_hazard,
    decay,
    draw_types,
    lead_hazard_offset,
    loss_hazard,
)
from leadscore.synthetic.randomness import (
    STREAM_ACTIVITY,
    STREAM_CLOSE,
    STREAM_CLOSE_AT,
    STREAM_COUNT,
    STREAM_NTH,
    poisson,
    uniform,
    uniforms,
)
from leadscore.synthetic.vocabulary import SECONDS_PER_DAY, TYPE_CODE


@dataclass(frozen=True)
class Units:
    """What the daily step reads of each simulated unit: a lead, or one oracle path of one.

    Besides the creation time and fit it holds the per-unit, time-invariant parts of the
    hazards (:meth:`of` derives them from fit and interest).
    """

    created: np.ndarray  # int64 seconds since the epoch
    fit: np.ndarray
    hazard_offset: np.ndarray  # HAZARD_A + HAZARD_B * fit + HAZARD_D * log(interest)
    loss_base: np.ndarray  # LOSS_BASE * exp(-LOSS_FIT_SLOPE * fit)
    key: np.ndarray  # uint64: the unit's own randomness (never stored in truth)

    @classmethod
    def of(
        cls, created: np.ndarray, fit: np.ndarray, log_interest: np.ndarray, key: np.ndarray
    ) -> Units:
        """Units with creation times, fit, log interest and randomness ``key``."""
        return cls(
            created=created,
            fit=fit,
            hazard_offset=lead_hazard_offset(fit, log_interest),
            loss_base=world.LOSS_BASE * np.exp(-world.LOSS_FIT_SLOPE * fit),
            key=key,
        )

    def take(self, idx: np.ndarray) -> Units:
        """The units at ``idx`` (any numpy index)."""
        return Units(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})


@dataclass
class State:
    """Mutable per-unit simulation state, as of the start of the current day."""

    engagement: np.ndarray  # decayed engagement E
    last_activity: np.ndarray  # int64 seconds of the last activity (creation if none)
    unsubscribed: np.ndarray
    status: np.ndarray  # 0 open, 1 converted, 2 lost
    closed: np.ndarray  # int64 seconds, -1 while open

    @classmethod
    def fresh(
        cls, engagement: np.ndarray, last_activity: np.ndarray, unsubscribed: np.ndarray
    ) -> State:
        n = len(engagement)
        return cls(
            engagement=engagement.astype(float),
            last_activity=last_activity.astype(np.int64),
            unsubscribed=unsubscribed.astype(bool),
            status=np.zeros(n, dtype=np.int8),
            closed=np.full(n, -1, dtype=np.int64),
        )


@dataclass
class ActivityLog:
    """Activity log under construction: parallel chunks of lead index, type code, seconds."""

    lead: list[np.ndarray]
    kind: list[np.ndarray]
    when: list[np.ndarray]

    def add(self, lead: np.ndarray, kind: np.ndarray, when: np.ndarray) -> None:
        self.lead.append(lead)
        self.kind.append(kind)
        self.when.append(when)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        def cat(chunks: list[np.ndarray], dtype: type) -> np.ndarray:
            return np.concatenate(chunks).astype(dtype) if chunks else np.empty(0, dtype)

        return cat(self.lead, np.int64), cat(self.kind, np.int64), cat(self.when, np.int64)


def simulate_day(
    units: Units,
    state: State,
    active: np.ndarray,
    day: np.ndarray | int,
    exogenous_rate: np.ndarray,
    *,
    begin: np.ndarray | None = None,
    until: np.ndarray | int | None = None,
    log: ActivityLog | None = None,
    sample_closes: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Advance the open units ``active`` through ``day``.

    Returns the units still open after the day and, per unit of ``active``, the day's
    probabilities of converting and of closing (given the state at the day's start).
    With ``sample_closes=False`` nothing closes: every unit lives the whole window, and
    the caller integrates the returned probabilities instead (the day's close draw is
    independent of the day's activities, so this gives the same expectation as sampling).

    ``active`` holds distinct unit indices in increasing order. ``day`` (days since the
    epoch) may differ per unit; ``exogenous_rate`` is
    :func:`exogenous_rate` of each unit on its day. Each unit is simulated over
    ``[begin, until)`` within its day (default: the whole day). A ``begin`` after the
    day's start means the unit is known to be open at ``begin``: the day's close, decided
    at the day's start and falling at a uniform second of the day, is then drawn
    conditionally on that. Closes are decided from the state at the start of the day
    (hazards see only the past); the close falls at a random second of the window and
    the window's activities precede it.
    """
    m = len(active)
    every = m == len(units.key)  # active is all units, in order: read the arrays as they are
    at = slice(None) if every else active
    day = np.broadcast_to(np.asarray(day, dtype=np.int64), (m,))
    day_start = day * SECONDS_PER_DAY
    day_end = day_start + SECONDS_PER_DAY
    whole_day = begin is None and until is None
    begin = day_start if begin is None else np.broadcast_to(begin, (m,))
    until = day_end if until is None else np.broadcast_to(until, (m,))
    key, created = units.key[at], units.created[at]
    engagement = state.engagement[at]
    unsubscribed = state.unsubscribed[at]
    recent = np.log1p(np.maximum(engagement, 0.0))
    u_count = uniform(key, day, STREAM_COUNT)

    # 1. Closes: competing conversion and loss hazards, no close on the creation day.
    eligible = created < day_start
    p_convert = conversion_hazard(units.hazard_offset[at], recent)
    p_close = p_convert + loss_hazard(
        units.loss_base[at], state.last_activity[at], unsubscribed, day_start
    )
    np.minimum(p_close, 1.0, out=p_close)
    p_close[(day_start - created) >= world.MAX_OPEN_DAYS * SECONDS_PER_DAY] = 1.0  # too old
    if not whole_day:  # P(close in [begin, until) | open at begin)
        scale = ((until - begin) / SECONDS_PER_DAY) / (
            1.0 - p_close * ((begin - day_start) / SECONDS_PER_DAY)
        )
        p_convert *= scale
        p_close *= scale
    if not eligible.all():
        p_convert[~eligible] = 0.0
        p_close[~eligible] = 0.0
    if sample_closes:
        u_close = uniform(key, day, STREAM_CLOSE)
        converts, closing = u_close < p_convert, u_close < p_close
    else:
        converts = closing = np.zeros(m, dtype=bool)
    closer = np.flatnonzero(closing)
    u_at = uniform(key[closer], day[closer], STREAM_CLOSE_AT)
    close_at = begin[closer] + np.floor(u_at * (until - begin)[closer]).astype(np.int64)

    # 2. Activities in [max(begin, creation), close or until).
    lo = np.maximum(begin, created)
    hi = np.array(until, dtype=np.int64)
    hi[closer] = close_at  # closers are older than a day: close_at >= begin = lo
    span = np.maximum(hi - lo, 0)
    rate = activity_rate(exogenous_rate, recent, unsubscribed)
    rate *= span / SECONDS_PER_DAY
    counts = poisson(u_count, rate)
    pos = np.repeat(np.arange(m), counts)
    nth = np.arange(len(pos), dtype=np.uint64)
    nth -= np.repeat(np.cumsum(counts) - counts, counts).astype(np.uint64)
    nth *= STREAM_NTH
    nth += STREAM_ACTIVITY
    u_when, u_kind = uniforms(key[pos], day[pos], nth)
    when = lo[pos] + np.floor(u_when * span[pos]).astype(np.int64)
    kind = draw_types(u_kind, recent[pos], units.fit[active[pos]])
    lead = active[pos]
    if log is not None:
        log.add(lead, kind, when)

    # 3. State at the start of the next day.
    gained = np.bincount(
        pos, weights=world.WEIGHT_BY_CODE[kind] * decay(day_end[pos] - when), minlength=m
    )
    state.engagement[at] = engagement * decay(SECONDS_PER_DAY) + gained
    np.maximum.at(state.last_activity, lead, when)
    state.unsubscribed[lead[kind == TYPE_CODE["unsubscribe"]]] = True
    state.status[active[closer]] = np.where(converts[closer], 1, 2)
    state.closed[active[closer]] = close_at
    return (active[~closing] if sample_closes else active), p_convert, p_close
