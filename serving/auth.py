"""Who may call: bearer tokens for the API; for the sales-ops page, the same tokens (or
page-only ones) typed once into its log-in form, which opens a session (serving/session.py).

API tokens open ``/v1`` and the page; page tokens (``api.page_tokens``) open the page only.
Tokens are compared in constant time against every configured token.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence
from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

SESSION_COOKIE = "leadscore_session"
"""The page's cookie: a signed session id (never the token typed into ``/ui/login``)."""


class TokenAuth:
    """Bearer-token check (constant-time comparison against every configured token)."""

    def __init__(self, tokens: Sequence[str]) -> None:
        self.tokens = [t.encode() for t in tokens if t]

    def valid(self, token: str | None) -> bool:
        if not token:
            return False
        given = token.encode()
        return any(hmac.compare_digest(given, t) for t in self.tokens)


bearer = HTTPBearer(
    auto_error=False, description="A token from api.tokens / $LEADSCORE_API_TOKENS."
)


def bearer_dependency(auth: TokenAuth) -> Callable[..., None]:
    """A FastAPI dependency refusing (401) a request without a valid bearer token."""

    def require_token(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        if credentials is None or not auth.valid(credentials.credentials):
            raise HTTPException(
                401, "missing or invalid bearer token", headers={"WWW-Authenticate": "Bearer"}
            )

    return require_token


def bearer_of(conn: HTTPConnection) -> str | None:
    """The token of an ``Authorization: Bearer`` header, if any."""
    header = conn.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return None
