"""Templates, the stylesheet and its Content-Security-Policy, and rows shaped for them.

The Jinja templates and the one stylesheet are files beside this module
(``templates/``, package data). The page needs no script at all, so its CSP allows none
(``default-src 'none'``); the stylesheet is inlined and allowed by its SHA-256 hash (a
constant, so a hash is exact where a per-request nonce would buy nothing), and no
``style=`` attribute is used anywhere.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from leadscore.models import reasons as reasons_codec
from leadscore.serving.page.filters import CELLS, CHANGE_KINDS, ROWS_PER_PAGE, SORTS

TEMPLATES = Path(__file__).with_name("templates")
STYLE = (TEMPLATES / "page.css").read_text(encoding="utf-8")
_STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
PAGE_CSP = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
"""The page's Content-Security-Policy: no script, its own stylesheet, its own forms."""

ENV = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(default=True, default_for_string=True),
    auto_reload=False,
)
ENV.globals.update(
    style=STYLE, cells=CELLS, change_kinds=CHANGE_KINDS, sorts=SORTS, page_size=ROWS_PER_PAGE
)


def compile_templates() -> None:
    """Compile every template now (the app's start), not in a user's first request."""
    for name in ENV.list_templates(extensions=["html"]):
        ENV.get_template(name)


def render(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """One template as a response with the page's headers (CSP, no caching)."""
    html = ENV.get_template(name).render(**context)
    headers = {"Cache-Control": "no-store", "Content-Security-Policy": PAGE_CSP}
    return HTMLResponse(html, status_code=status, headers=headers)


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 text (or datetime) as an aware UTC datetime; None if unreadable."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        stamp = value
    else:
        try:
            stamp = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def ago(value: Any, now: datetime | None) -> str:
    """``"today"``, ``"3 days ago"``, ``"2 months ago"``: ``value`` seen from ``now`` (the
    batch's as-of time, so the words match what the model saw)."""
    stamp = parse_time(value)
    if stamp is None or now is None:
        return ""
    days = (now - stamp).total_seconds() / 86400
    if days < 1:
        return "today" if days > -1 else "later"
    if days < 2:
        return "1 day ago"
    if days < 60:
        return f"{int(days)} days ago"
    return f"{int(days / 30.4)} months ago"


def json_list(raw: Any) -> list[dict[str, Any]]:
    """A JSON array of objects (rule_reasons, timeline) read leniently: [] if unreadable."""
    if not raw:
        return []
    try:
        value = json.loads(raw)
    except (TypeError, ValueError):
        return []
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def json_object(raw: Any) -> dict[str, Any]:
    """A JSON object (attributes) read leniently: {} if unreadable."""
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def lead_view(row: dict[str, Any], as_of: datetime | None) -> dict[str, Any]:
    """A score row as the templates read it: decoded reasons and breakdowns, labels, the
    last activity's age. Columns the store lacks read as None."""
    view = dict(row)
    view["reasons"] = [
        r for r in reasons_codec.decode_lenient(row.get("reasons")) if isinstance(r, dict)
    ]
    view["rule_reasons"] = json_list(row.get("rule_reasons"))
    view["title"] = row.get("name") or row.get("company") or row["lead_id"]
    view["cell_label"] = CELLS.get(row.get("cell") or "", row.get("cell") or "")
    view["activity_ago"] = ago(row.get("last_activity_at"), as_of)
    for key in ("name", "company", "email", "record_id", "fit_score", "engagement_score"):
        view.setdefault(key, None)
    view.setdefault("rule_rank", None)
    view.setdefault("last_activity", None)
    return view
