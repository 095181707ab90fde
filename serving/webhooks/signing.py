"""Signing webhook bodies, and the check a receiver runs (docs/webhooks.md).

Each POST carries ``Leadscore-Signature: t=<unix seconds>,v1=<hex>``, where ``v1`` is
HMAC-SHA256, keyed with the endpoint's secret, over ``f"{t}.{body}"`` (the exact bytes
sent). Signing the timestamp with the body lets a receiver refuse a replayed old request
(:func:`verify` rejects one older than ``tolerance_seconds``); the idempotency key lets it
drop a retry of an event it already processed.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time

SIGNATURE_HEADER = "Leadscore-Signature"
EVENT_HEADER = "Leadscore-Event"
IDEMPOTENCY_HEADER = "Idempotency-Key"


class MissingSecretError(RuntimeError):
    """An endpoint's ``secret_env`` names an environment variable that is not set."""


class SignatureError(ValueError):
    """A signature header that is malformed, stale or does not match the body."""


def endpoint_secret(secret_env: str, name: str = "") -> str:
    """The signing secret held by environment variable ``secret_env`` (never in the file)."""
    secret = os.environ.get(secret_env, "")
    if not secret:
        where = f" for webhook endpoint {name!r}" if name else ""
        raise MissingSecretError(
            f"environment variable {secret_env} (webhooks.endpoints[].secret_env{where}) "
            "is not set or empty: it must hold the signing secret"
        )
    return secret


def _digest(body: bytes, timestamp: int, secret: str) -> str:
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """The ``Leadscore-Signature`` value of ``body`` at ``timestamp`` (default: now)."""
    stamp = int(time.time()) if timestamp is None else int(timestamp)
    return f"t={stamp},v1={_digest(body, stamp, secret)}"


def headers(
    body: bytes, secret: str, event_id: str, event: str, timestamp: int | None = None
) -> dict[str, str]:
    """Every header of one POST: content type, signature, idempotency key, event type."""
    return {
        "Content-Type": "application/json",
        "User-Agent": "leadscore-webhooks/1",
        SIGNATURE_HEADER: sign(body, secret, timestamp),
        IDEMPOTENCY_HEADER: event_id,
        EVENT_HEADER: event,
    }


def verify(
    body: bytes | str,
    header: str,
    secret: str,
    tolerance_seconds: int = 300,
    now: float | None = None,
) -> int:
    """Check a ``Leadscore-Signature`` header against the raw body; return its timestamp.

    Raises :class:`SignatureError` when the header is malformed, its timestamp is more than
    ``tolerance_seconds`` away from ``now`` (a replayed or delayed request), or no ``v1``
    value matches (compared in constant time). Pass the body exactly as received.
    """
    raw = body.encode("utf-8") if isinstance(body, str) else body
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if sep:
            parts.setdefault(key, []).append(value)
    try:
        stamp = int(parts["t"][0])
    except (KeyError, ValueError):
        raise SignatureError("signature header has no valid t=<unix seconds>") from None
    if not parts.get("v1"):
        raise SignatureError("signature header has no v1=<hex>")
    current = time.time() if now is None else now
    if abs(current - stamp) > tolerance_seconds:
        raise SignatureError(f"signature timestamp {stamp} is outside the tolerance")
    expected = _digest(raw, stamp, secret)
    wanted = expected.encode("ascii")
    if not any(hmac.compare_digest(wanted, given.encode("utf-8")) for given in parts["v1"]):
        raise SignatureError("signature does not match the body")
    return stamp
