"""The page's figures as inline SVG (no script, no image request): reason bars, the score
history, the potential x engagement quadrant and 0-100 sub-score meters.

Labels are HTML text beside the drawings, never SVG text cut to a width: a reason's full
words wrap on a phone like any paragraph. Every text that reaches the markup is escaped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from leadscore.serving.page.filters import CELLS

POS, NEG = "#0a7d27", "#b3261e"


def _esc(text: Any) -> str:
    return escape(str(text), quote=True)


def _value(reason: Any, key: str) -> Any:
    """A reason's field, whether it is a mapping (decoded JSON) or a model object."""
    return reason.get(key) if isinstance(reason, Mapping) else getattr(reason, key, None)


def bar_list(
    reasons: Sequence[Any], *, list_id: str, weight: str = "contribution", unit: str = "log-odds"
) -> str:
    """A diverging bar per reason under its full text: right and green if it raised the
    score, left and red if it lowered it, length proportional to ``|weight|`` (the model's
    log-odds contribution, or the rules' points). Each bar's ``title`` holds the number."""
    weights = [float(_value(r, weight) or 0.0) for r in reasons]
    biggest = max((abs(w) for w in weights), default=0.0) or 1.0
    items = []
    for reason, w in zip(reasons, weights, strict=True):
        sign = _value(reason, "direction") or ("+" if w >= 0 else "-")
        key = _value(reason, "concept") or _value(reason, "feature") or ""
        length = abs(w) / biggest * 98
        x = 100 if w >= 0 else 100 - length
        share = _value(reason, "share")
        tip = f"{w:+.2f} {unit}" + (f", {100 * float(share):.0f}% of the weight" if share else "")
        items.append(
            f'<li class="{"pos" if sign == "+" else "neg"}">'
            f"{_esc(sign)} {_esc(_value(reason, 'text'))}"
            f'<svg class="track" viewBox="0 0 200 10" preserveAspectRatio="none" width="100%" '
            f'height="10" aria-hidden="true"><title>{_esc(tip)}</title>'
            f'<line x1="100" y1="0" x2="100" y2="10" stroke="#999"/>'
            f'<rect class="bar" data-feature="{_esc(key)}" x="{x:.1f}" y="1" '
            f'width="{max(length, 0.5):.1f}" height="8" fill="{POS if w >= 0 else NEG}"/>'
            "</svg></li>"
        )
    return f'<ul id="{list_id}" class="bars">{"".join(items)}</ul>'


def contribution_chart(reasons: Sequence[Any]) -> str:
    """The model's reasons (``#reasons``) as bars inside ``#contributions``."""
    if not reasons:
        return '<p class="muted" id="chart-empty">No reason strong enough to show.</p>'
    return f'<div id="contributions">{bar_list(reasons, list_id="reasons")}</div>'


def rules_chart(reasons: Sequence[Any]) -> str:
    """The rules' own breakdown (``{"text", "points"}``) as bars in ``#rule-reasons``."""
    if not reasons:
        return '<p class="muted" id="rules-empty">No rule breakdown in this batch.</p>'
    return bar_list(reasons, list_id="rule-reasons", weight="points", unit="points")


def history_chart(scores: list[int], width: int = 560, height: int = 80) -> str:
    """Inline SVG polyline of the lead's score (0-100) over its batches, oldest left."""
    if len(scores) < 2:
        return ""
    step = (width - 20) / (len(scores) - 1)
    points = " ".join(
        f"{10 + i * step:.1f},{height - 5 - s / 100 * (height - 10):.1f}"
        for i, s in enumerate(scores)
    )
    return (
        f'<svg id="history-chart" viewBox="0 0 {width} {height}" width="100%" '
        f'height="{height}" preserveAspectRatio="none" xmlns="http://www.w3.org/2000/svg">'
        f'<polyline fill="none" stroke="#2a62b8" stroke-width="2" points="{points}"/></svg>'
    )


def meter(value: int | None, label: str, meter_id: str) -> str:
    """A 0-100 sub-score as a labelled bar (``—`` when the store has none)."""
    if value is None:
        return f'<div class="meter" id="{meter_id}">{_esc(label)} <strong>—</strong></div>'
    return (
        f'<div class="meter" id="{meter_id}">{_esc(label)} <strong>{int(value)}</strong>/100'
        f'<svg viewBox="0 0 100 8" preserveAspectRatio="none" width="100%" height="8" '
        f'aria-hidden="true"><rect x="0" y="0" width="100" height="8" fill="#e6e6e6"/>'
        f'<rect x="0" y="0" width="{max(0, min(100, int(value)))}" height="8" '
        f'fill="#2a62b8"/></svg></div>'
    )


# The quadrant: engagement across (how badly they want you), fit up (how badly you want them).
_CELL = 26
_LEFT, _TOP = 30, 8
_SIDE = 10 * _CELL
_CORNERS = {  # label position (x, y) of each named cell, in plot units
    "nurture": (4, 14),
    "call_now": (_SIDE - 4, 14),
    "deprioritise": (4, _SIDE - 6),
    "educate": (_SIDE - 4, _SIDE - 6),
}


def quadrant_chart(
    grid: Mapping[tuple[int, int], int],
    cells: Mapping[str, int],
    links: Mapping[str, str] | None = None,
    point: tuple[int, int] | None = None,
    chart_id: str = "quadrant",
    cuts: tuple[float, float] = (50, 50),
) -> str:
    """Potential x engagement: a 10 x 10 grid of lead counts (darker = more leads) keyed
    by (fit tenth, engagement tenth), the four cells' names and counts (linked to the
    cell filter when ``links`` are given), or one lead's ``point`` (fit, engagement);
    dashed lines at the cells' (fit, engagement) cut-offs."""
    biggest = max(grid.values(), default=0) or 1
    parts = [
        f'<svg id="{chart_id}" class="quadrant" viewBox="0 0 {_LEFT + _SIDE + 4} '
        f'{_TOP + _SIDE + 30}" width="100%" role="img" '
        f'aria-label="fit by engagement" xmlns="http://www.w3.org/2000/svg">',
        f'<rect x="{_LEFT}" y="{_TOP}" width="{_SIDE}" height="{_SIDE}" fill="#fafafa" '
        f'stroke="#ccc"/>',
    ]
    for (fit, eng), n in sorted(grid.items()):
        x, y = _LEFT + eng * _CELL, _TOP + (9 - fit) * _CELL
        parts.append(
            f'<rect class="bin" data-n="{n}" x="{x}" y="{y}" width="{_CELL}" height="{_CELL}" '
            f'fill="#2a62b8" fill-opacity="{0.08 + 0.92 * n / biggest:.2f}"><title>fit '
            f"{fit * 10}-{fit * 10 + 9}, engagement {eng * 10}-{eng * 10 + 9}: {n} leads"
            f"</title></rect>"
        )
    mid = _SIDE // 2
    fit_cut, eng_cut = cuts
    x_cut, y_cut = _LEFT + eng_cut / 100 * _SIDE, _TOP + (1 - fit_cut / 100) * _SIDE
    parts.append(
        f'<line class="cut" x1="{x_cut:.1f}" y1="{_TOP}" x2="{x_cut:.1f}" y2="{_TOP + _SIDE}" '
        f'stroke="#555" stroke-dasharray="4 3"/><line class="cut" x1="{_LEFT}" '
        f'y1="{y_cut:.1f}" x2="{_LEFT + _SIDE}" y2="{y_cut:.1f}" stroke="#555" '
        f'stroke-dasharray="4 3"/>'
    )
    for cell, (cx, cy) in _CORNERS.items():
        anchor = "start" if cx < mid else "end"
        count = f" {cells[cell]:,}" if cell in cells else ""
        text = (
            f'<text class="cell-label" x="{_LEFT + cx}" y="{_TOP + cy}" font-size="12" '
            f'text-anchor="{anchor}" fill="#111" stroke="#fff" stroke-width="3" '
            f'paint-order="stroke">{_esc(CELLS[cell])}{count}</text>'
        )
        href = (links or {}).get(cell)
        parts.append(f'<a href="{_esc(href)}" id="cell-{cell}">{text}</a>' if href else text)
    if point is not None:
        fit, eng = point
        px, py = _LEFT + eng / 100 * _SIDE, _TOP + (1 - fit / 100) * _SIDE
        parts.append(
            f'<circle id="lead-point" cx="{px:.1f}" cy="{py:.1f}" r="6" fill="#b3261e" '
            f'stroke="#fff" stroke-width="2"/>'
        )
    bottom = _TOP + _SIDE
    parts.append(
        f'<text x="{_LEFT + mid}" y="{bottom + 22}" font-size="12" text-anchor="middle">'
        f"engagement 0-100 →</text>"
        f'<text x="12" y="{_TOP + mid}" font-size="12" text-anchor="middle" '
        f'transform="rotate(-90 12 {_TOP + mid})">fit 0-100 →</text></svg>'
    )
    return "".join(parts)
