"""The page's log-in: signed, expiring session ids, throttled attempts, same-origin posts.

Plain Python (no web framework), so each piece is tested on its own; ``serving/page.py``
uses them in ``/ui/login`` and ``/ui/logout``, ``serving/guard.py`` to open ``/docs``.

Sessions. A successful log-in creates a session kept **in this process's memory** (the
token itself is never stored in the browser): a random 256-bit id, signed with an HMAC
key drawn at start, expiring after ``api.session_hours``. The cookie holds
``<id>.<signature>``; a tampered cookie fails the signature check before any lookup, an
expired one is dropped. Logging out deletes the session, so a copied cookie dies with
it; a restart logs everyone out (``leadscore serve`` is one process). The session keeps
which kind of token opened it: an API token's session may also read ``/docs``.

Throttling. Per client address, the first ``api.login_free_failures`` wrong tokens cost
nothing; each further one makes the client wait ``api.login_backoff_seconds``, doubled
per failure up to ``api.login_backoff_max_seconds``; a success forgets the client.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

TokenKind = Literal["api", "page"]

MAX_SESSIONS = 10_000
"""Live sessions kept at most (the oldest is dropped first): log-ins need a valid token,
so only an insider could fill this, and then only by logging out colleagues."""

MAX_CLIENTS = 10_000
"""Clients whose failed log-ins are remembered at most (the least recent is dropped)."""


@dataclass(frozen=True)
class Session:
    """A logged-in browser: which kind of token opened it and when it ends."""

    kind: TokenKind
    expires: float


class SessionStore:
    """Signed, expiring session ids, held in memory (see the module's docstring)."""

    def __init__(
        self,
        lifetime_seconds: float,
        clock: Callable[[], float] = time.time,
        key: bytes | None = None,
        capacity: int = MAX_SESSIONS,
    ) -> None:
        self.lifetime = lifetime_seconds
        self.clock = clock
        self.capacity = capacity
        self._key = key or secrets.token_bytes(32)
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def _sign(self, sid: str) -> str:
        digest = hmac.new(self._key, sid.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def create(self, kind: TokenKind) -> str:
        """A new session; returns the cookie value ``<id>.<signature>``."""
        now = self.clock()
        for sid in [s for s, v in self._sessions.items() if v.expires <= now]:
            del self._sessions[sid]
        while len(self._sessions) >= self.capacity:
            self._sessions.popitem(last=False)
        sid = secrets.token_urlsafe(32)
        self._sessions[sid] = Session(kind=kind, expires=now + self.lifetime)
        return f"{sid}.{self._sign(sid)}"

    def _sid(self, cookie: str | None) -> str | None:
        """The id of a well-signed cookie, else None (constant-time comparison)."""
        if not cookie or cookie.count(".") != 1:
            return None
        sid, signature = cookie.split(".")
        if not hmac.compare_digest(signature.encode(), self._sign(sid).encode()):
            return None
        return sid

    def get(self, cookie: str | None) -> Session | None:
        """The live session of a cookie; None if unsigned, tampered, unknown or expired."""
        sid = self._sid(cookie)
        if sid is None:
            return None
        session = self._sessions.get(sid)
        if session is None:
            return None
        if session.expires <= self.clock():
            del self._sessions[sid]
            return None
        return session

    def end(self, cookie: str | None) -> None:
        """Log out: the session is forgotten, its cookie opens nothing any more."""
        sid = self._sid(cookie)
        if sid is not None:
            self._sessions.pop(sid, None)


@dataclass
class _Failures:
    count: int
    blocked_until: float


class LoginThrottle:
    """Exponential back-off of failed log-ins per client (see the module's docstring)."""

    def __init__(
        self,
        free_failures: int,
        first_wait: float,
        max_wait: float,
        clock: Callable[[], float] = time.monotonic,
        capacity: int = MAX_CLIENTS,
    ) -> None:
        self.free_failures = free_failures
        self.first_wait = first_wait
        self.max_wait = max_wait
        self.clock = clock
        self.capacity = capacity
        self._clients: OrderedDict[str, _Failures] = OrderedDict()

    def retry_after(self, client: str) -> int:
        """Whole seconds the client must still wait before its next attempt (0: go)."""
        entry = self._clients.get(client)
        if entry is None:
            return 0
        left = entry.blocked_until - self.clock()
        if left <= -self.max_wait:  # quiet for long enough: start afresh
            del self._clients[client]
            return 0
        return max(0, math.ceil(left))

    def failed(self, client: str) -> int:
        """Record a wrong token; returns the wait (seconds) before the next attempt."""
        entry = self._clients.pop(client, None) or _Failures(0, 0.0)
        entry.count += 1
        beyond = entry.count - self.free_failures
        wait = (
            0.0 if beyond <= 0 else min(self.first_wait * 2 ** min(beyond - 1, 60), self.max_wait)
        )
        entry.blocked_until = self.clock() + wait
        self._clients[client] = entry
        while len(self._clients) > self.capacity:
            self._clients.popitem(last=False)
        return math.ceil(wait)

    def succeeded(self, client: str) -> None:
        """A right token: the client's failures are forgotten."""
        self._clients.pop(client, None)


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of a URL (lower case), None if it has none."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def same_origin(
    origin: str | None, referer: str | None, own: str, allowed: Iterable[str] = ()
) -> bool:
    """Whether a form post comes from this server's pages.

    The browser's ``Origin`` header decides (``null``, sent from a sandbox, a file or
    after a cross-origin redirect, is foreign); without one, the ``Referer``'s origin;
    without either (an old browser, a script), the post is let through: a cross-site
    forgery always comes from a browser that sends one of them.
    """
    accepted = {own.lower(), *(o.rstrip("/").lower() for o in allowed)}
    if origin is not None:
        return origin.strip().lower() in accepted
    if referer:
        return origin_of(referer) in accepted
    return True
