"""The sales-ops page: leads by priority with their reasons, served by the API app.

Plain server-rendered HTML (Jinja2 templates under ``templates/``, package data), no
JavaScript at all: filters and search are a GET form, sorting and paging are links, the
charts are inline SVG, and a phone gets the same page with the tables laid out as cards
(a CSS media query).

Access. The page shows personal data (leads, owners, scores), so it needs a token like
the API. A browser cannot attach a bearer header to a link, so the token is typed once
into ``/ui/login``, which opens a session (serving/session.py: a signed, expiring id in
an HttpOnly, SameSite=Strict cookie, Secure over https; never the token itself); sales
reps bookmark ``/ui`` and log in once a day. The form refuses a post from another origin
(403) and a client after too many wrong tokens (429, Retry-After). Ops can hand reps a
**page token** (``api.page_tokens`` / ``$LEADSCORE_PAGE_TOKENS``): it opens the page
(read-only by construction: the page has no write action) but not ``/v1``, so a rep's
token cannot be used for a bulk export of every score: the page's CSV download of a
view holds at most ``api.max_page_size`` rows for a page token (every row for an API
token). An API token opens both. A request with an
``Authorization: Bearer`` header is accepted too (scripts, tests).

Headers. The Content-Security-Policy allows no script (``default-src 'none'``); the one
stylesheet is inline and allowed by its SHA-256 hash, and no ``style=`` attribute is used.
``frame-ancestors 'none'`` (and ``X-Frame-Options: DENY``, serving/guard.py) stop
click-jacking; ``form-action 'self'`` keeps the forms on this server.

Routes (``views``): ``GET /ui`` (the list: ``q`` search; ``grade``, ``cell``, ``attr``
``key=value`` repeatable; ``owner``, ``segment``; ``sort`` score|rules|fit|engagement|
activity, ``order=asc``; ``page``), ``GET /ui/compare`` (model vs rules, same filters,
``side`` model|rules), ``GET /ui/changes`` (``kind``, ``owner``, ``page``),
``GET /ui/download.csv`` (the list's filters), ``GET /ui/leads/{lead_id}``,
``GET /ui/monitor`` ("How did past grades do", ``monitor``), ``GET /ui/calls``,
``/ui/calls/unassigned``, ``/ui/calls/{rep_id}`` and ``/ui/calls/{rep_id}.csv`` (the
call lists, ``calls``),
``GET|POST /ui/login``, ``POST /ui/logout``.

Modules: ``filters`` (the query of a list view and its links), ``reads`` (the SQL),
``cache`` (counts kept until the next batch),
``render`` (templates, stylesheet, CSP, rows shaped for templates), ``charts`` (SVG),
``download`` (the CSV) and ``views`` (the routes).
"""

from __future__ import annotations

from leadscore.serving.auth import SESSION_COOKIE
from leadscore.serving.page.charts import contribution_chart, history_chart
from leadscore.serving.page.filters import ROWS_PER_PAGE
from leadscore.serving.page.render import PAGE_CSP
from leadscore.serving.page.views import add_page_routes

__all__ = [
    "PAGE_CSP",
    "ROWS_PER_PAGE",
    "SESSION_COOKIE",
    "add_page_routes",
    "contribution_chart",
    "history_chart",
]
