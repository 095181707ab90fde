"""Capacity: how many conversions N calls a week reach, ordered by the model, the rules or
at random, replayed over the validation window.

The window is cut into periods: each snapshot date when the rows sit on a snapshot grid
(the period lasts the grid's cadence), else calendar weeks of the rows' as-of times; a
window without dates is one period. Each period the team calls the best leads open then,
``N x period days / 7`` of them (``N`` in all when there are no dates); a called lead that
converts within the horizon after that call is a conversion reached. A lead still open
next period may be called again (a follow-up), but counts once however often it was
called, so more calls never reach fewer conversions. Ties in a score are broken by one
fixed random order; "at random" is the mean of several shuffles.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

WEEK_DAYS = 7.0
RANDOM_DRAWS = 20
SEED = 0
NICE = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000)
CURVE_POINTS = 40


@dataclass(frozen=True)
class Periods:
    """Which period each row falls in, how many periods, and how long one lasts."""

    codes: np.ndarray
    count: int
    days: float | None  # None: no dates, the window is one period of unknown length

    def calls(self, per_week: int) -> int:
        """Calls made in one period at ``per_week`` calls a week."""
        if self.days is None:
            return per_week
        return round(per_week * self.days / WEEK_DAYS)

    @property
    def weeks(self) -> float | None:
        return None if self.days is None else self.count * self.days / WEEK_DAYS


def periods(as_of: pd.Series) -> Periods:
    """The window's periods (see the module doc)."""
    times = pd.to_datetime(as_of, utc=True)
    if times.isna().all():
        return Periods(np.zeros(len(times), dtype=np.int64), 1, None)
    distinct = np.sort(times.dropna().unique())
    gaps = np.diff(distinct) / pd.Timedelta(days=1)
    days = max(WEEK_DAYS, float(np.median(gaps))) if len(gaps) else WEEK_DAYS
    elapsed = (times - times.min()) / pd.Timedelta(days=1)
    codes = np.floor(elapsed.fillna(0).to_numpy(dtype=np.float64) / days).astype(np.int64)
    _, codes = np.unique(codes, return_inverse=True)
    return Periods(codes.astype(np.int64), int(codes.max()) + 1, days)


def _orders(score: np.ndarray, span: Periods, tie_break: np.ndarray) -> list[np.ndarray]:
    """Per period, its rows best first (ties by ``tie_break``)."""
    order = np.lexsort((tie_break, -np.asarray(score, dtype=np.float64), span.codes))
    bounds = np.searchsorted(span.codes[order], np.arange(span.count + 1))
    return [order[bounds[i] : bounds[i + 1]] for i in range(span.count)]


def _reached(y: np.ndarray, leads: np.ndarray, orders: list[np.ndarray], calls: int) -> float:
    """Distinct leads reached that converted: each period, the first ``calls`` distinct
    leads of its order; a lead converting after two calls counts once."""
    reached = np.zeros(int(leads.max()) + 1 if len(leads) else 0, dtype=bool)
    for rows in orders:
        _, first = np.unique(leads[rows], return_index=True)
        take = rows[np.sort(first)][:calls]
        reached[leads[take[y[take] > 0]]] = True
    return float(reached.sum())


def capacity(
    y: np.ndarray,
    model_ranking: np.ndarray,
    rule_points: np.ndarray,
    lead_ids: pd.Series,
    as_of: pd.Series,
    calls_per_week: Sequence[int],
    draws: int = RANDOM_DRAWS,
    seed: int = SEED,
) -> tuple[pd.DataFrame, Periods]:
    """Conversions reached per calls-a-week value: model, rules, random (mean of draws)."""
    y = np.asarray(y, dtype=np.float64)
    span = periods(as_of)
    leads = pd.factorize(pd.Series(lead_ids).reset_index(drop=True))[0]
    rng = np.random.default_rng(seed)
    tie = rng.permutation(len(y))
    model = _orders(model_ranking, span, tie)
    rules = _orders(rule_points, span, tie)
    shuffles = [_orders(np.zeros(len(y)), span, rng.permutation(len(y))) for _ in range(draws)]
    rows = []
    for n in calls_per_week:
        calls = span.calls(int(n))
        rows.append(
            {
                "calls": int(n),
                "model": _reached(y, leads, model, calls),
                "rules": _reached(y, leads, rules, calls),
                "random": float(np.mean([_reached(y, leads, o, calls) for o in shuffles]))
                if draws
                else float("nan"),
            }
        )
    return pd.DataFrame(rows).set_index("calls"), span


def weekly_volume(lead_ids: pd.Series, span: Periods) -> int:
    """Calls a week that would reach every lead of the busiest period."""
    per_period = pd.Series(np.asarray(lead_ids)).groupby(span.codes).nunique().max()
    if span.days is None:
        return int(per_period)
    return max(1, int(np.ceil(per_period * WEEK_DAYS / span.days)))


def table_values(volume: int, most: int = 7) -> list[int]:
    """Round calls-a-week values for the table, up to the window's volume."""
    values = [v for v in NICE if v <= volume]
    return values[-most:] if values else [max(volume, 1)]


def curve_values(volume: int, points: int = CURVE_POINTS) -> list[int]:
    """Evenly spaced calls-a-week values from 0 to the volume, for the chart."""
    return sorted({round(float(v)) for v in np.linspace(0, volume, points + 1)})


def pick(values: Sequence[int], volume: int) -> int:
    """The table value the sentence quotes: the one nearest a tenth of the volume."""
    return min(values, key=lambda v: abs(v - volume / 10))


def capacity_sentence(table: pd.DataFrame, calls: int, span: Periods) -> str:
    """ "20 calls a week reach X conversions over the window's 13 weeks; the rules Y ..."."""
    row = table.loc[calls]
    unit = "calls" if span.days is None else "calls a week"
    over = (
        "over the validation window"
        if span.weeks is None
        else f"over the validation window's {span.weeks:.0f} weeks"
    )
    return (
        f"{calls:,} {unit}, best leads first, reach {row['model']:.0f} conversions {over} "
        f"when the model orders the calls; the rules, {row['rules']:.0f}; calling at "
        f"random, {row['random']:.0f}."
    )


_W, _H, _L, _B, _T, _R = 640, 320, 60, 45, 20, 130
_COLOURS = {"model": "#1f77b4", "rules": "#ff7f0e", "random": "#888888"}


def _ticks(top: float, n: int = 5) -> list[float]:
    if top <= 0:
        return [0.0]
    raw = top / n
    step = min(s * 10**e for e in range(-1, 8) for s in (1, 2, 5) if s * 10**e >= raw)
    return [i * step for i in range(int(top // step) + 1)]


def capacity_svg(curve: pd.DataFrame, span: Periods) -> str:
    """The curve as an inline SVG line chart (no script, no external file)."""
    x_max = max(float(curve.index.max()), 1.0)
    y_max = max(float(curve.to_numpy().max()), 1.0)
    plot_w, plot_h = _W - _L - _R, _H - _T - _B

    def point(x: float, y: float) -> str:
        return f"{_L + x / x_max * plot_w:.1f},{_T + plot_h - y / y_max * plot_h:.1f}"

    parts = [
        f'<svg class="chart" width="{_W}" height="{_H}" '
        f'viewBox="0 0 {_W} {_H}" role="img"><title>Conversions reached per calls a week'
        "</title>",
        f'<rect x="{_L}" y="{_T}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#ccc"/>',
    ]
    for x in _ticks(x_max):
        px = _L + x / x_max * plot_w
        parts.append(
            f'<line x1="{px:.1f}" y1="{_T + plot_h}" x2="{px:.1f}" y2="{_T + plot_h + 4}" '
            f'stroke="#444"/><text x="{px:.1f}" y="{_T + plot_h + 16}" font-size="11" '
            f'text-anchor="middle">{x:g}</text>'
        )
    for y in _ticks(y_max):
        py = _T + plot_h - y / y_max * plot_h
        parts.append(
            f'<line x1="{_L - 4}" y1="{py:.1f}" x2="{_L + plot_w}" y2="{py:.1f}" '
            f'stroke="#eee"/><text x="{_L - 6}" y="{py + 4:.1f}" font-size="11" '
            f'text-anchor="end">{y:g}</text>'
        )
    unit = "calls over the window" if span.days is None else "calls a week"
    parts.append(
        f'<text x="{_L + plot_w / 2}" y="{_H - 8}" font-size="12" text-anchor="middle">'
        f"{html.escape(unit)}</text>"
        f'<text x="14" y="{_T + plot_h / 2}" font-size="12" text-anchor="middle" '
        f'transform="rotate(-90 14 {_T + plot_h / 2})">conversions reached</text>'
    )
    for k, (name, colour) in enumerate(_COLOURS.items()):
        points = " ".join(point(float(x), float(v)) for x, v in curve[name].items())
        dash = ' stroke-dasharray="5,4"' if name == "random" else ""
        parts.append(
            f'<polyline class="{name}" fill="none" stroke="{colour}" stroke-width="2"{dash} '
            f'points="{points}"/>'
        )
        ly = _T + 14 + 18 * k
        parts.append(
            f'<line x1="{_W - _R + 12}" y1="{ly}" x2="{_W - _R + 36}" y2="{ly}" '
            f'stroke="{colour}" stroke-width="2"{dash}/><text x="{_W - _R + 42}" '
            f'y="{ly + 4}" font-size="12">{"at random" if name == "random" else "by the " + name}'
            "</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
