"""The sales-ops page: leads by priority with their reasons, served by the API app.

Plain server-rendered HTML (Jinja2 templates kept in this module, so nothing extra has
to be packaged), no JavaScript build step, no JavaScript at all: filters are a GET form,
the reasons chart is inline SVG.

Access. The page shows personal data (leads, owners, scores), so it needs a token like
the API. A browser cannot attach a bearer header to a link, so the token is typed once
into ``/ui/login``, which opens a session (serving/session.py: a signed, expiring id in
an HttpOnly, SameSite=Strict cookie, Secure over https; never the token itself); sales
reps bookmark ``/ui`` and log in once a day. The form refuses a post from another origin
(403) and a client after too many wrong tokens (429, Retry-After). Ops can hand reps a
**page token** (``api.page_tokens`` / ``$LEADSCORE_PAGE_TOKENS``): it opens the page
(read-only by construction: the page has no write action) but not ``/v1``, so a rep's
token cannot be used for a bulk export of every score. An API token opens both. A
request with an ``Authorization: Bearer`` header is accepted too (scripts, tests).

Headers. The page needs no script at all, so its Content-Security-Policy allows none
(``default-src 'none'``); its one stylesheet is inline and allowed by its SHA-256 hash
(the style is a constant, so a hash is exact where a per-request nonce would buy
nothing, and no ``style=`` attribute is used). ``frame-ancestors 'none'`` (and
``X-Frame-Options: DENY``, serving/guard.py) stop click-jacking; ``form-action 'self'``
keeps the forms on this server.

Routes: ``GET /ui`` (list; query ``grade`` repeatable, ``owner``, ``after`` for the next
page), ``GET /ui/leads/{lead_id}``, ``GET|POST /ui/login``, ``POST /ui/logout``.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import FastAPI, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import DictLoader, Environment, select_autoescape
from sqlalchemy import select

from leadscore.serving.auth import SESSION_COOKIE, TokenAuth, bearer_of
from leadscore.serving.config import ApiConfig
from leadscore.serving.login import add_login_routes
from leadscore.serving.lookup import batch_label, lead_detail, score_item
from leadscore.serving.session import SessionStore
from leadscore.serving.store import ScoreStore, scores_table

__all__ = [
    "PAGE_CSP",
    "ROWS_PER_PAGE",
    "SESSION_COOKIE",
    "add_page_routes",
    "contribution_chart",
    "history_chart",
]

ROWS_PER_PAGE = 100

_STYLE = """
 body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}
 table{border-collapse:collapse;width:100%} th,td{padding:.3rem .5rem;text-align:left;
 border-bottom:1px solid #ddd;vertical-align:top} th{background:#f4f4f4}
 .g-A{color:#0a7d27;font-weight:bold}.g-B{color:#2a62b8}.g-C{color:#a66f00}.g-D{color:#888}
 .pos{color:#0a7d27}.neg{color:#b3261e} nav{margin-bottom:1rem} .muted{color:#666}
 form.filters{margin:.5rem 0 1rem} form.filters label{margin-right:1rem} form.inline{display:inline}
"""
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
PAGE_CSP = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
"""The page's Content-Security-Policy: no script, its own stylesheet, its own forms."""

_BASE = (
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{% block title %}Lead priorities{% endblock %} - leadscore</title>
<style>"""
    + _STYLE
    + """</style></head><body>
<nav><a href="/ui">Lead priorities</a>
{% if authed %}<form method="post" action="/ui/logout" class="inline">
<button type="submit" id="logout">Log out</button></form>{% endif %}</nav>
{% block body %}{% endblock %}
</body></html>"""
)

_LOGIN = """{% extends "base.html" %}{% block title %}Log in{% endblock %}
{% block body %}<h1>Log in</h1>
{% if error %}<p class="neg" id="error">{{ error }}</p>{% endif %}
<form method="post" action="/ui/login">
<label>Access token <input type="password" name="token" id="token" autocomplete="off"></label>
<input type="hidden" name="next" value="{{ next }}">
<button type="submit" id="login">Open the page</button></form>
<p class="muted">Ask your leadscore admin for a page token.</p>{% endblock %}"""

_LIST = """{% extends "base.html" %}
{% block body %}<h1>Lead priorities</h1>
<p class="muted" id="batch">{{ batch_label }}</p>
<form class="filters" method="get" action="/ui" id="filters">
<label>Grade {% for g in grades %}<input type="checkbox" name="grade" value="{{ g }}"
 id="grade-{{ g }}" {% if g in selected_grades %}checked{% endif %}> {{ g }} {% endfor %}</label>
<label>Owner <select name="owner" id="owner"><option value="">(all)</option>
{% for o in owners %}<option value="{{ o }}" {% if o == owner %}selected{% endif %}>{{ o }}</option>
{% endfor %}</select></label>
<button type="submit" id="apply">Filter</button></form>
<table id="leads"><thead><tr><th>#</th><th>Lead</th><th>Grade</th><th>Probability</th>
<th>Rule score</th><th>Owner</th><th>Reasons</th></tr></thead><tbody>
{% for r in rows %}<tr class="lead" data-lead="{{ r.lead_id }}" data-grade="{{ r.grade }}">
<td>{{ r.rank }}</td><td><a href="/ui/leads/{{ r.lead_id | urlencode }}">{{ r.lead_id }}</a></td>
<td class="g-{{ r.grade }}">{{ r.grade }}</td><td>{{ "%.1f" | format(100 * r.probability) }}%</td>
<td>{% if r.rule_score is not none %}{{ "%.0f" | format(r.rule_score) }}
 ({{ r.rule_grade }}){% endif %}</td>
<td>{{ r.owner or "" }}</td>
<td>{% for x in r.reasons %}<span class="{{ 'pos' if x.direction == '+' else 'neg' }}">
{{ x.direction }} {{ x.text }}</span>{% if not loop.last %}<br>{% endif %}{% endfor %}</td></tr>
{% else %}<tr><td colspan="7" id="empty">No lead matches.</td></tr>{% endfor %}
</tbody></table>
{% if next_url %}<p><a href="{{ next_url }}" id="next">Next {{ page_size }} leads</a></p>{% endif %}
{% endblock %}"""

_LEAD = """{% extends "base.html" %}{% block title %}Lead {{ lead.lead_id }}{% endblock %}
{% block body %}<h1>Lead <span id="lead-id">{{ lead.lead_id }}</span></h1>
{% if cur %}<p>Grade <strong class="g-{{ cur.grade }}" id="grade">{{ cur.grade }}</strong>,
score {{ cur.score }}, probability {{ "%.1f" | format(100 * cur.probability) }}%,
rank {{ cur.rank }};
rule score {% if cur.rule_score is not none %}{{ "%.0f" | format(cur.rule_score) }}
({{ cur.rule_grade }}){% endif %}. Owner: {{ cur.owner or "none" }}.</p>
<h2>Why</h2>
<ul id="reasons">{% for x in cur.reasons %}<li class="{{ 'pos' if x.direction == '+' else 'neg' }}">
{{ x.direction }} {{ x.text }}</li>{% endfor %}</ul>
{{ chart | safe }}
{% else %}<p id="not-current">Not in the current batch (closed, or no longer open).</p>{% endif %}
<h2>Score history</h2>
{{ history_chart | safe }}
<table id="history"><thead><tr><th>Batch</th><th>Scored as of</th><th>Model</th><th>Score</th>
<th>Grade</th><th>Rank</th><th>Rule score</th></tr></thead><tbody>
{% for h in lead.history %}<tr><td>{{ h.batch_id }}</td>
<td>{{ h.scored_at.strftime("%Y-%m-%d") }}</td>
<td>{{ h.model_version }}</td><td>{{ h.score }}</td><td class="g-{{ h.grade }}">{{ h.grade }}</td>
<td>{{ h.rank }}</td>
<td>{% if h.rule_score is not none %}{{ "%.0f" | format(h.rule_score) }}{% endif %}</td>
</tr>{% endfor %}</tbody></table>{% endblock %}"""

_MISSING = """{% extends "base.html" %}{% block title %}Not found{% endblock %}
{% block body %}<p id="missing">{{ message }}</p>{% endblock %}"""

_ENV = Environment(
    loader=DictLoader(
        {
            "base.html": _BASE,
            "login.html": _LOGIN,
            "list.html": _LIST,
            "lead.html": _LEAD,
            "missing.html": _MISSING,
        }
    ),
    autoescape=select_autoescape(default=True, default_for_string=True),
)


def _esc(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def contribution_chart(reasons: list[Any], width: int = 560) -> str:
    """Inline SVG: one horizontal bar per reason, right (green) if it raised the score,
    left (red) if it lowered it, length proportional to its log-odds contribution."""
    if not reasons:
        return '<p class="muted" id="chart-empty">No reason strong enough to show.</p>'
    row, label_w = 26, 300
    half = (width - label_w) / 2
    biggest = max(abs(r.contribution) for r in reasons) or 1.0
    axis = label_w + half
    parts = [
        f'<svg id="contributions" role="img" aria-label="reason contributions" '
        f'width="{width}" height="{row * len(reasons) + 10}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for i, r in enumerate(reasons):
        y = 5 + i * row
        length = abs(r.contribution) / biggest * (half - 40)
        x = axis if r.contribution >= 0 else axis - length
        color = "#0a7d27" if r.contribution >= 0 else "#b3261e"
        label = _esc(r.text if len(r.text) <= 46 else r.text[:45] + "…")
        parts.append(
            f'<text x="0" y="{y + 16}" font-size="12">{label}</text>'
            f'<rect class="bar" data-feature="{_esc(r.concept)}" x="{x:.1f}" y="{y + 3}" '
            f'width="{max(length, 1):.1f}" height="{row - 8}" fill="{color}"/>'
            f'<text x="{axis + (length + 4 if r.contribution >= 0 else -length - 40):.1f}" '
            f'y="{y + 16}" font-size="11">{r.contribution:+.2f}</text>'
        )
    parts.append(
        f'<line x1="{axis}" y1="0" x2="{axis}" y2="{row * len(reasons) + 10}" stroke="#999"/>'
    )
    parts.append("</svg>")
    return "".join(parts)


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
        f'<svg id="history-chart" width="{width}" height="{height}" '
        f'xmlns="http://www.w3.org/2000/svg"><polyline fill="none" stroke="#2a62b8" '
        f'stroke-width="2" points="{points}"/></svg>'
    )


def add_page_routes(
    app: FastAPI,
    store: ScoreStore,
    config: ApiConfig,
    auth: TokenAuth,
    api_auth: TokenAuth,
    sessions: SessionStore,
) -> None:
    """Mount the sales-ops page on ``app``: ``auth`` holds every token that opens the page,
    ``api_auth`` the API tokens among them (their sessions may read ``/docs`` too)."""

    def authed(request: Request) -> bool:
        bearer = bearer_of(request)
        if bearer is not None:
            return auth.valid(bearer)
        return sessions.get(request.cookies.get(SESSION_COOKIE)) is not None

    def login_redirect(request: Request) -> RedirectResponse:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        response = RedirectResponse("/ui/login?" + urlencode({"next": target}), status_code=303)
        if SESSION_COOKIE in request.cookies:  # tampered or expired: drop it
            response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    def render(name: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = _ENV.get_template(name).render(**context)
        headers = {"Cache-Control": "no-store", "Content-Security-Policy": PAGE_CSP}
        return HTMLResponse(html, status_code=status, headers=headers)

    add_login_routes(app, config, render, auth, api_auth, sessions)

    @app.get("/ui", include_in_schema=False)
    def leads_page(
        request: Request,
        grade: Annotated[list[str] | None, Query(max_length=32)] = None,
        owner: Annotated[str | None, Query(max_length=255)] = None,
        after: Annotated[int, Query(ge=0)] = 0,
    ) -> Response:
        if not authed(request):
            return login_redirect(request)
        current = store.current_batch()
        owner = owner or None
        rows: list[Any] = []
        owners: list[str] = []
        next_url = None
        if current is not None:
            _, raw = store.page(
                batch_id=current.batch_id,
                after_rank=after,
                limit=ROWS_PER_PAGE + 1,
                grade=grade or (),
                owner=owner,
            )
            if len(raw) > ROWS_PER_PAGE:
                raw = raw[:ROWS_PER_PAGE]
                query = [("grade", g) for g in grade or ()] + ([("owner", owner)] if owner else [])
                next_url = "/ui?" + urlencode([*query, ("after", raw[-1]["rank"])])
            rows = [score_item(r) for r in raw]
            owners = store.owners(current.batch_id)
        grades = sorted({*_grades(store, current), *(grade or ())})
        return render(
            "list.html",
            authed=True,
            rows=rows,
            owners=owners,
            owner=owner,
            grades=grades,
            selected_grades=set(grade or ()),
            batch_label=batch_label(current),
            next_url=next_url,
            page_size=ROWS_PER_PAGE,
        )

    @app.get("/ui/leads/{lead_id}", include_in_schema=False)
    def lead_page(
        request: Request, lead_id: Annotated[str, Path(min_length=1, max_length=255)]
    ) -> Response:
        if not authed(request):
            return login_redirect(request)
        try:
            lead = lead_detail(store, lead_id, config.history_batches)
        except HTTPException as exc:
            return render("missing.html", exc.status_code, authed=True, message=str(exc.detail))
        cur = lead.current
        return render(
            "lead.html",
            authed=True,
            lead=lead,
            cur=cur,
            chart=contribution_chart(cur.reasons) if cur else "",
            history_chart=history_chart([h.score for h in reversed(lead.history)]),
        )


def _grades(store: ScoreStore, current: Any) -> list[str]:
    """Grades present in the current batch (the grade filter's boxes)."""
    if current is None:
        return []
    with store.engine.connect() as conn:
        return list(
            conn.scalars(
                select(scores_table.c.grade)
                .where(scores_table.c.batch_id == current.batch_id)
                .distinct()
            ).all()
        )
