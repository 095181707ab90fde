"""Changes injected into the synthetic world at a date: the drift the monitor must catch.

Four kinds, each a frozen dataclass with the instant ``at`` (UTC) it starts:

- :class:`NewSource`: from ``at``, a ``share`` of the new leads come from a lead source the
  CRM never had; their conversion hazard is multiplied by ``hazard_factor`` (the source's
  own part of fit is ``fit_effect``, 0 by default: the old source's effect is taken off).
- :class:`Campaign`: for ``days`` days from ``at``, every open lead gets extra activities of
  one type (``rate`` per day); they count in the lead's engagement like any activity.
- :class:`MixShift`: from ``at``, new leads draw one attribute with other ``shares``; their
  hidden fit (and interest, which follows fit) is recomputed from the attributes by the
  world's own rule (:data:`world.FIT_EFFECT`, the ICP bonus), firmographics follow a new
  company size.
- :class:`BrokenPixel`: from ``at``, one activity type is no longer recorded: the behaviour
  still happens and still drives conversion, only the log misses it.

Honesty of the oracle (``truth`` + :func:`~leadscore.synthetic.oracle_probability`):
MixShift keeps it exact (truth carries the recomputed fit and interest). It goes stale
where the world follows a law the oracle does not know: a new source's leads (their hazard
factor is not in truth: the oracle under-rates them when the factor is above 1), a running
campaign (the oracle's futures have no extra activities) and a broken pixel (the oracle
rebuilds engagement from the recorded log, which misses the type).

Every draw here comes from streams of their own, seeded from the CRM's seed and the
change's position: with no change the generator runs exactly as before (the demo CRM stays
byte-identical), and a change leaves the lives of the leads before its date as they were
(status, close, attributes; only the draws made after the simulation, owners, blanks and
activity values, move with the changed activity count).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from leadscore.synthetic import world
from leadscore.synthetic.dynamics import decay
from leadscore.synthetic.population import Population, _firmographics, icp_by_industry
from leadscore.synthetic.step import ActivityLog, State
from leadscore.synthetic.vocabulary import SECONDS_PER_DAY, TYPE_CODE, VOCABULARY

DRIFT_SALT = 0x6472696674  # "drift": the streams' salt beside the seed and change index


def utc(ts: object) -> pd.Timestamp:
    """``ts`` in UTC; a naive one is taken as UTC."""
    stamp = pd.Timestamp(ts)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _seconds(ts: pd.Timestamp) -> int:
    return int(utc(ts).value // 1_000_000_000)


@dataclass(frozen=True)
class NewSource:
    """From ``at``, ``share`` of new leads come from ``name`` (hazard x ``hazard_factor``)."""

    at: pd.Timestamp
    name: str = "ai_assistant"
    share: float = 0.3
    hazard_factor: float = 3.0
    fit_effect: float = 0.0


@dataclass(frozen=True)
class Campaign:
    """For ``days`` days from ``at``, ``rate`` extra ``activity_type`` per open lead a day."""

    at: pd.Timestamp
    activity_type: str = "webinar_signup"
    days: int = 21
    rate: float = 0.5


@dataclass(frozen=True)
class MixShift:
    """From ``at``, new leads draw ``attribute`` with ``shares`` (value -> share)."""

    at: pd.Timestamp
    attribute: str = "company_size"
    shares: Mapping[str, float] = field(
        default_factory=lambda: {
            "1-10": 0.70,
            "11-50": 0.20,
            "51-200": 0.04,
            "201-1000": 0.03,
            "1001-5000": 0.02,
            "5000+": 0.01,
        }
    )


@dataclass(frozen=True)
class BrokenPixel:
    """From ``at``, ``activity_type`` still happens but is no longer recorded."""

    at: pd.Timestamp
    activity_type: str = "pricing_page_view"


Change = NewSource | Campaign | MixShift | BrokenPixel
KINDS: dict[str, type] = {
    "new_source": NewSource,
    "campaign": Campaign,
    "mix_shift": MixShift,
    "broken_pixel": BrokenPixel,
}
"""Each change by the name the command line gives it."""


def parse_change(text: str, at: object) -> Change:
    """A change from ``kind`` or ``kind:key=value,key=value`` (e.g. ``new_source:share=0.5``)
    starting at ``at``; numbers are read as the field's type."""
    kind, _, rest = text.partition(":")
    if kind not in KINDS:
        raise ValueError(f"unknown change {kind!r}: one of {', '.join(KINDS)}")
    cls = KINDS[kind]
    types = {f.name: f.type for f in dataclasses.fields(cls)}
    values: dict[str, object] = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        if key not in types or key in ("at", "shares"):
            raise ValueError(f"{kind}: unknown option {key!r}")
        cast = {"float": float, "int": int}.get(str(types[key]), str)
        values[key] = cast(value)
    change = cls(at=utc(at), **values)
    validate(change)
    return change


def describe(change: Change) -> str:
    """The change in words, for a log line."""
    when = f"from {change.at:%Y-%m-%d}"
    if isinstance(change, NewSource):
        return (
            f"new lead source {change.name} ({change.share:.0%} of new leads, conversion "
            f"hazard x{change.hazard_factor:g}) {when}"
        )
    if isinstance(change, Campaign):
        return (
            f"campaign: +{change.rate:g} {change.activity_type} a day per open lead for "
            f"{change.days} days {when}"
        )
    if isinstance(change, MixShift):
        top = max(change.shares, key=lambda value: change.shares[value])
        return f"{change.attribute} mix shifted (new leads: {top} {change.shares[top]:.0%}) {when}"
    return f"broken tracking pixel: {change.activity_type} no longer recorded {when}"


def validate(change: Change) -> None:
    """Refuse a change the world cannot carry out (unknown type, attribute or value)."""
    if isinstance(change, (Campaign, BrokenPixel)) and change.activity_type not in TYPE_CODE:
        raise ValueError(f"unknown activity type {change.activity_type!r}")
    if isinstance(change, MixShift):
        vocab = VOCABULARY.get(change.attribute)
        if vocab is None or change.attribute == "lead_source":
            raise ValueError(f"cannot shift {change.attribute!r}: one of {list(VOCABULARY)[:5]}")
        if set(change.shares) - set(vocab) or not sum(change.shares.values()) > 0:
            raise ValueError(f"shares of {change.attribute} must name its values: {vocab}")
    if isinstance(change, NewSource) and (
        change.name in VOCABULARY["lead_source"] or not 0 < change.share <= 1
    ):
        raise ValueError("a new source needs a new name and a share in (0, 1]")


def _stream(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, DRIFT_SALT, index])


def _refit(
    pop: Population, rows: np.ndarray, codes: dict[str, np.ndarray], extra: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Fit and interest of ``rows`` after their codes became ``codes``: the world's additive
    effects and ICP bonus recomputed, the lead's unexplained noise kept; ``extra`` adds to
    the fit (a new source's own effect)."""
    old_icp = icp_by_industry(pop.codes["company_size"][rows])[
        np.arange(len(rows)), pop.codes["industry"][rows]
    ]
    new_icp = icp_by_industry(codes["company_size"][rows])[
        np.arange(len(rows)), codes["industry"][rows]
    ]
    delta = world.FIT_INTERACTION * (new_icp.astype(float) - old_icp) + extra
    for name, effect in world.FIT_EFFECT.items():
        delta += effect[codes[name][rows]] - effect[pop.codes[name][rows]]
    fit, interest = pop.fit.copy(), pop.log_interest.copy()
    fit[rows] += delta
    interest[rows] += world.INTEREST_FIT_SLOPE * delta
    return fit, interest


@dataclass
class Drift:
    """The changes as the generator applies them, worked out for one population."""

    population: Population
    new_source: dict[str, np.ndarray] = field(default_factory=dict)  # name -> lead indices
    hazard_shift: np.ndarray | None = None  # added to the hazard logit, per lead
    after_day: Callable[[int, np.ndarray, State, ActivityLog, int], None] | None = None
    unrecorded: tuple[tuple[str, int], ...] = ()  # (activity type, from second)


def plan(pop: Population, changes: Sequence[Change], seed: int) -> Drift:
    """Apply the population changes (new sources, mix shifts) and prepare the others."""
    drift = Drift(population=pop)
    campaigns: list[tuple[Campaign, int]] = []
    for index, change in enumerate(changes):
        validate(change)
        rng, start = _stream(seed, index), _seconds(change.at)
        if isinstance(change, NewSource):
            _new_source(drift, change, rng, start)
        elif isinstance(change, MixShift):
            _mix_shift(drift, change, rng, start)
        elif isinstance(change, Campaign):
            campaigns.append((change, index))
        else:
            drift.unrecorded += ((change.activity_type, start),)
    if campaigns:
        drift.after_day = _campaign_step(campaigns, drift.population.created, seed)
    return drift


def _new_source(drift: Drift, change: NewSource, rng: np.random.Generator, start: int) -> None:
    pop = drift.population
    later = pop.created >= start
    for taken in drift.new_source.values():  # a lead comes from one new source at most
        later[taken] = False
    later = np.flatnonzero(later)
    rows = later[rng.random(len(later)) < change.share]
    codes = dict(pop.codes)  # the hidden world: the old source's effect is taken off
    effect = world.FIT_EFFECT["lead_source"][pop.codes["lead_source"][rows]]
    fit, interest = _refit(pop, rows, codes, change.fit_effect - effect)
    drift.population = dataclasses.replace(pop, fit=fit, log_interest=interest)
    shift = np.zeros(len(pop.created)) if drift.hazard_shift is None else drift.hazard_shift
    shift[rows] = np.log(change.hazard_factor)  # sigmoid(x + log f) ~ f * sigmoid(x): rare events
    drift.hazard_shift = shift
    drift.new_source = {**drift.new_source, change.name: rows}


def _mix_shift(drift: Drift, change: MixShift, rng: np.random.Generator, start: int) -> None:
    pop = drift.population
    vocab = VOCABULARY[change.attribute]
    probs = np.array([change.shares.get(value, 0.0) for value in vocab], dtype=float)
    cdf = np.cumsum(probs / probs.sum())
    rows = np.flatnonzero(pop.created >= start)
    drawn = np.minimum(np.searchsorted(cdf, rng.random(len(rows)), side="right"), len(vocab) - 1)
    codes = dict(pop.codes)
    codes[change.attribute] = codes[change.attribute].copy()
    codes[change.attribute][rows] = drawn
    fit, interest = _refit(pop, rows, codes, np.zeros(len(rows)))
    employees, revenue = pop.employees.copy(), pop.revenue.copy()
    if change.attribute == "company_size":  # firmographics follow the new size
        employees[rows], revenue[rows] = _firmographics(rng, drawn)
    drift.population = dataclasses.replace(
        pop, codes=codes, fit=fit, log_interest=interest, employees=employees, revenue=revenue
    )


def _campaign_step(
    campaigns: list[tuple[Campaign, int]], created: np.ndarray, seed: int
) -> Callable[[int, np.ndarray, State, ActivityLog, int], None]:
    """The generator's hook after each simulated day: the campaigns' extra activities for
    the leads still open, folded into their engagement like any activity of that day."""
    windows = [
        (c, _seconds(c.at) // SECONDS_PER_DAY, _seconds(c.at), _stream(seed, i))
        for c, i in campaigns
    ]

    def after_day(day: int, active: np.ndarray, state: State, log: ActivityLog, end: int) -> None:
        day_start, day_end = day * SECONDS_PER_DAY, min((day + 1) * SECONDS_PER_DAY, end)
        for change, first, start, rng in windows:
            if not first <= day < first + change.days or len(active) == 0:
                continue
            lo = np.maximum(np.maximum(created[active], day_start), start)
            span = np.maximum(day_end - lo, 0)
            counts = rng.poisson(change.rate * span / SECONDS_PER_DAY)
            pos = np.repeat(np.arange(len(active)), counts)
            lead = active[pos]
            when = lo[pos] + np.floor(rng.random(len(pos)) * span[pos]).astype(np.int64)
            code = TYPE_CODE[change.activity_type]
            log.add(lead, np.full(len(pos), code, dtype=np.int64), when)
            weight = world.WEIGHT_BY_CODE[code] * decay((day + 1) * SECONDS_PER_DAY - when)
            np.add.at(state.engagement, lead, weight)
            np.maximum.at(state.last_activity, lead, when)
            if change.activity_type == "unsubscribe":
                state.unsubscribed[lead] = True

    return after_day


def relabel(leads: pd.DataFrame, drift: Drift) -> pd.DataFrame:
    """The leads frame with each new source's leads under its name."""
    if not drift.new_source:
        return leads
    source = leads["lead_source"].to_numpy(dtype=object).copy()
    for name, rows in drift.new_source.items():
        source[rows] = name
    return leads.assign(lead_source=source)


def unrecorded(activities: pd.DataFrame, drift: Drift) -> pd.DataFrame:
    """The activity log without what a broken pixel missed (its type, from its date)."""
    if not drift.unrecorded:
        return activities
    seconds = activities["occurred_at"].to_numpy(dtype="datetime64[s]").view(np.int64)
    lost = np.zeros(len(activities), dtype=bool)
    for kind, start in drift.unrecorded:
        lost |= (activities["activity_type"].to_numpy() == kind) & (seconds >= start)
    return activities.loc[~lost].reset_index(drop=True)
