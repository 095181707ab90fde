"""A small inline SVG line chart over batches (no script, no external file, no matplotlib).

The monitoring report draws a few series against the batches' dates (live ROC-AUC of model
and rules, the estimate, the share of rows set aside); each point is a batch, a gap where
a value is unknown. The same look as the evaluation report's capacity curve.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

_W, _H, _L, _R, _T, _B = 640, 260, 56, 150, 14, 46


@dataclass(frozen=True)
class Series:
    """One line: its name in the legend, a value per batch (None: a gap), its look."""

    name: str
    values: Sequence[float | None]
    colour: str
    dashed: bool = False


def _known(value: float | None) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _runs(values: Sequence[float | None]) -> list[list[tuple[int, float]]]:
    """Consecutive known points, so an unknown batch breaks the line."""
    runs: list[list[tuple[int, float]]] = [[]]
    for i, value in enumerate(values):
        if _known(value):
            runs[-1].append((i, float(value)))  # type: ignore[arg-type]
        elif runs[-1]:
            runs.append([])
    return [r for r in runs if r]


def line_chart(
    title: str,
    x_labels: Sequence[str],
    series: Sequence[Series],
    y_label: str,
    y_range: tuple[float, float] | None = None,
    y_format: str = "{:.2f}",
    marks: Mapping[str, float] | None = None,
) -> str:
    """The series as one inline ``<svg>``: x = batch (labelled by date), y = value;
    ``marks`` draws labelled horizontal reference lines (a threshold)."""
    values = [float(v) for s in series for v in s.values if _known(v)]
    values += list((marks or {}).values())
    low, high = y_range or (min(values, default=0.0), max(values, default=1.0))
    if high <= low:  # one value (or all equal): a band around it, not below zero unless it is
        pad = max(abs(low) * 0.05, 0.05)
        low, high = (max(low - pad, 0.0) if low >= 0 else low - pad), high + pad
    plot_w, plot_h = _W - _L - _R, _H - _T - _B
    n = max(len(x_labels), 1)

    def x_of(i: int) -> float:
        return _L + (plot_w / 2 if n == 1 else i / (n - 1) * plot_w)

    def y_of(v: float) -> float:
        return _T + plot_h - (min(max(v, low), high) - low) / (high - low) * plot_h

    parts = [
        f'<svg class="chart" width="{_W}" height="{_H}" viewBox="0 0 {_W} {_H}" role="img">'
        f"<title>{html.escape(title)}</title>",
        f'<rect x="{_L}" y="{_T}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#ccc"/>',
    ]
    for k in range(5):
        v = low + k * (high - low) / 4
        py = y_of(v)
        parts.append(
            f'<line x1="{_L - 4}" y1="{py:.1f}" x2="{_L + plot_w}" y2="{py:.1f}" stroke="#eee"/>'
            f'<text x="{_L - 6}" y="{py + 4:.1f}" font-size="11" text-anchor="end">'
            f"{html.escape(y_format.format(v))}</text>"
        )
    step = max(1, math.ceil(n / 8))
    for i, text in enumerate(x_labels):
        if i % step and i != n - 1:
            continue
        parts.append(
            f'<text x="{x_of(i):.1f}" y="{_T + plot_h + 16}" font-size="11" '
            f'text-anchor="middle">{html.escape(text)}</text>'
        )
    parts.append(
        f'<text x="{_L + plot_w / 2}" y="{_H - 8}" font-size="12" text-anchor="middle">'
        "batch (scored on)</text>"
        f'<text x="14" y="{_T + plot_h / 2}" font-size="12" text-anchor="middle" '
        f'transform="rotate(-90 14 {_T + plot_h / 2})">{html.escape(y_label)}</text>'
    )
    for name, v in (marks or {}).items():
        py = y_of(v)
        parts.append(
            f'<line x1="{_L}" y1="{py:.1f}" x2="{_L + plot_w}" y2="{py:.1f}" stroke="#b3261e" '
            f'stroke-dasharray="2,3"/><text x="{_L + plot_w + 4}" y="{py + 4:.1f}" '
            f'font-size="11" fill="#b3261e">{html.escape(name)}</text>'
        )
    for k, s in enumerate(series):
        dash = ' stroke-dasharray="5,4"' if s.dashed else ""
        for run in _runs(s.values):
            points = " ".join(f"{x_of(i):.1f},{y_of(v):.1f}" for i, v in run)
            parts.append(
                f'<polyline fill="none" stroke="{s.colour}" stroke-width="2"{dash} '
                f'points="{points}"/>'
            )
            parts += [
                f'<circle cx="{x_of(i):.1f}" cy="{y_of(v):.1f}" r="3" fill="{s.colour}"/>'
                for i, v in run
            ]
        ly = _T + 14 + 18 * k
        parts.append(
            f'<line x1="{_W - _R + 10}" y1="{ly}" x2="{_W - _R + 32}" y2="{ly}" '
            f'stroke="{s.colour}" stroke-width="2"{dash}/><text x="{_W - _R + 36}" '
            f'y="{ly + 4}" font-size="12">{html.escape(s.name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
