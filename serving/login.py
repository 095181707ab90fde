"""The sales-ops page's log-in and log-out (``GET|POST /ui/login``, ``POST /ui/logout``).

A right token opens a session (serving/session.py) whose signed id goes into an HttpOnly,
SameSite=Strict cookie on path ``/``, ``Secure`` over https (also behind a trusted proxy
that says so) or when ``api.secure_cookies`` is set, lasting ``api.session_hours``. The
token itself never reaches the browser's storage. Both forms refuse a post from another
origin (403): the ``Origin`` header, else the ``Referer``, must be this server's own or
one of ``api.allowed_origins``. Wrong tokens are throttled per client address: 401 while
free failures last, then 401 with ``Retry-After``, and 429 with ``Retry-After`` for any
attempt made before that wait is over.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from leadscore.serving.auth import SESSION_COOKIE, TokenAuth
from leadscore.serving.config import ApiConfig
from leadscore.serving.session import LoginThrottle, SessionStore, origin_of, same_origin

OLD_COOKIE = "leadscore_token"
"""Earlier versions kept the raw token in this cookie: deleted at log-in and log-out."""

Render = Callable[..., HTMLResponse]
"""``render(template, status=200, **context)``: one of the page's templates, with its headers."""


def add_login_routes(
    app: FastAPI,
    config: ApiConfig,
    render: Render,
    auth: TokenAuth,
    api_auth: TokenAuth,
    sessions: SessionStore,
) -> None:
    """Mount ``/ui/login`` and ``/ui/logout``: ``auth`` holds every token that opens the
    page, ``api_auth`` the API tokens among them (their sessions may read ``/docs``)."""
    throttle = LoginThrottle(
        config.login_free_failures, config.login_backoff_seconds, config.login_backoff_max_seconds
    )
    app.state.login_throttle = throttle

    def foreign(request: Request) -> bool:
        own = origin_of(str(request.base_url)) or ""
        return not same_origin(
            request.headers.get("origin"),
            request.headers.get("referer"),
            own,
            config.allowed_origins,
        )

    def refused_origin() -> HTMLResponse:
        return render("missing.html", 403, authed=False, message="Cross-origin post refused.")

    @app.get("/ui/login", include_in_schema=False)
    def login_form(next: Annotated[str, Query(max_length=2048)] = "/ui") -> HTMLResponse:
        return render("login.html", next=next, error=None, authed=False)

    @app.post("/ui/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        if foreign(request):
            return refused_origin()
        client = request.client.host if request.client else "unknown"
        if wait := throttle.retry_after(client):
            return _too_many(render, wait)
        body = (await request.body())[:8192].decode("utf-8", "replace")
        if wait := throttle.retry_after(client):  # failures recorded while the body came in
            return _too_many(render, wait)
        form = parse_qs(body)
        token = (form.get("token") or [""])[0].strip()
        target = (form.get("next") or ["/ui"])[0]
        if not target.startswith("/ui") or target.startswith("//"):
            target = "/ui"  # no open redirect
        if not auth.valid(token):
            wait = throttle.failed(client)
            error = "Unknown token." + (f" Wait {wait} s before trying again." if wait else "")
            page = render("login.html", 401, next=target, error=error, authed=False)
            if wait:
                page.headers["Retry-After"] = str(wait)
            return page
        throttle.succeeded(client)
        sessions.end(request.cookies.get(SESSION_COOKIE))  # a fresh id at every log-in
        cookie = sessions.create("api" if api_auth.valid(token) else "page")
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            cookie,
            max_age=int(sessions.lifetime),
            path="/",
            secure=config.secure_cookies or request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )
        response.delete_cookie(OLD_COOKIE, path="/ui")
        return response

    @app.post("/ui/logout", include_in_schema=False)
    def logout(request: Request) -> Response:
        if foreign(request):
            return refused_origin()
        sessions.end(request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse("/ui/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        response.delete_cookie(OLD_COOKIE, path="/ui")
        return response


def _too_many(render: Render, wait: int) -> HTMLResponse:
    """429: this client failed too often; the form comes back with the wait to respect."""
    message = f"Too many wrong tokens from your address: try again in {wait} s."
    page = render("login.html", 429, next="/ui", error=message, authed=False)
    page.headers["Retry-After"] = str(wait)
    return page
