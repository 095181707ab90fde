"""The app's outer guard, as plain ASGI middleware: body size, who may call, headers.

Plain ASGI (not ``BaseHTTPMiddleware``, about a millisecond a request) and outside
FastAPI's routing, because FastAPI reads and parses a request's body before it runs the
route's token check. In order, outermost first (``serving/api.py`` stacks them):

``SecurityHeaders``
    Every response: ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``, a
    ``Content-Security-Policy`` (``default-src 'none'; frame-ancestors 'none'`` unless the
    route set its own: the page and ``/docs`` do), ``Referrer-Policy`` (``same-origin`` on
    the page, so its form posts carry an ``Origin``; ``no-referrer`` elsewhere),
    ``Cache-Control: no-store`` (but on Swagger UI's static files) and, over https,
    ``Strict-Transport-Security``.
``BodyLimit``
    A ``Content-Length`` over ``api.max_body_bytes`` is answered 413 at once, nothing
    read and no token checked; a chunked body is counted as it arrives and answered 413
    when it passes the limit. The 413 closes the connection, so the rest is never read.
``AccessGate``
    Deny by default: ``/healthz`` and Swagger UI's files are open, the page (``/ui``)
    sends the unauthenticated to its log-in form, ``/docs`` and ``/openapi.json`` need an
    API token (bearer) or a page session opened with one, and every other path needs an
    API bearer token: 401 before the body is read.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.requests import HTTPConnection

from leadscore.serving.auth import SESSION_COOKIE, TokenAuth, bearer_of
from leadscore.serving.session import SessionStore

__all__ = [
    "OPEN_PATHS",
    "AccessGate",
    "BodyLimit",
    "HttpMiddleware",
    "SecurityHeaders",
    "docs_allowed",
]

OPEN_PATHS = ("/healthz",)
"""Answer without any token (liveness probes)."""
DOCS_PATHS = ("/docs", "/openapi.json")
ASSETS = "/docs-assets"
API_CSP = b"default-src 'none'; frame-ancestors 'none'"

Send = Callable[[dict[str, Any]], Any]


def _is_under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


async def _reply(
    send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]] = ()
) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class HttpMiddleware:
    """Plain ASGI middleware acting on HTTP requests (``http``); anything else (lifespan)
    passes through untouched."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.http(scope, receive, send)

    async def http(self, scope: Any, receive: Any, send: Any) -> None:
        raise NotImplementedError


class SecurityHeaders(HttpMiddleware):
    """Security headers on every response (see the module's docstring)."""

    async def http(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        page = _is_under(path, "/ui")
        cache = not _is_under(path, ASSETS)
        https = scope.get("scheme") == "https"

        async def with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                wanted = [
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"content-security-policy", API_CSP),
                    (b"referrer-policy", b"same-origin" if page else b"no-referrer"),
                ]
                if cache:
                    wanted.append((b"cache-control", b"no-store"))
                if https:
                    wanted.append((b"strict-transport-security", b"max-age=31536000"))
                headers += [(k, v) for k, v in wanted if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


class BodyTooLargeError(Exception):
    """Raised into the app when a streamed body passes the limit."""


class BodyLimit(HttpMiddleware):
    """413 for a body over ``limit`` bytes, before it is read (see the module's docstring)."""

    def __init__(self, app: Any, limit: int) -> None:
        super().__init__(app)
        self.limit = limit

    async def _refuse(self, send: Send) -> None:
        await _reply(
            send,
            413,
            f"request body over {self.limit} bytes (api.max_body_bytes)",
            [(b"connection", b"close")],
        )

    async def http(self, scope: Any, receive: Any, send: Any) -> None:
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _reply(send, 400, "invalid Content-Length", [(b"connection", b"close")])
                    return
                if declared > self.limit:
                    await self._refuse(send)
                    return
        received = 0
        over = False
        started = False

        async def counted_receive() -> dict[str, Any]:
            nonlocal received, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    over = True
                    raise BodyTooLargeError
            return message

        async def guarded_send(message: dict[str, Any]) -> None:
            nonlocal started
            if over:
                return  # whatever the app made of the cut body: the answer is 413
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not over:
                raise
        if over and not started:
            await self._refuse(send)


def docs_allowed(conn: HTTPConnection, api_auth: TokenAuth, sessions: SessionStore) -> bool:
    """``/docs`` and ``/openapi.json``: an API bearer token, or a page session opened with
    one (a page-only token's session does not open them)."""
    if api_auth.valid(bearer_of(conn)):
        return True
    session = sessions.get(conn.cookies.get(SESSION_COOKIE))
    return session is not None and session.kind == "api"


class AccessGate(HttpMiddleware):
    """Deny by default (see the module's docstring)."""

    def __init__(self, app: Any, api_auth: TokenAuth, sessions: SessionStore) -> None:
        super().__init__(app)
        self.api_auth = api_auth
        self.sessions = sessions

    async def http(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if path in OPEN_PATHS or _is_under(path, ASSETS) or _is_under(path, "/ui"):
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        if path in DOCS_PATHS:
            allowed = docs_allowed(conn, self.api_auth, self.sessions)
            detail = "missing or invalid bearer token (or log in at /ui/login with an API token)"
        else:
            allowed = self.api_auth.valid(bearer_of(conn))
            detail = "missing or invalid bearer token"
        if allowed:
            await self.app(scope, receive, send)
            return
        await _reply(send, 401, detail, [(b"www-authenticate", b"Bearer")])
