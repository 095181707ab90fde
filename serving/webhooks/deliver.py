"""POSTing pending webhook deliveries: signed, retried with backoff, dead-lettered.

One :func:`deliver` run works in *rounds* (at most ``webhooks.max_attempts``). In a
round the due deliveries of each endpoint are split into :data:`LANES` lanes by lead,
and :data:`WORKERS` threads POST the lanes, each lane one by one, oldest first: the
events of one lead reach an endpoint in the order they were queued (on a first try),
while a slow receiver is sent several requests at once (measured on localhost with a
SQLite outbox: 2,000 events in 14 s one by one, 4.8 s in 4 lanes). Outcome of a try:

* 2xx: ``delivered`` (final: never sent again);
* 408, 429, 5xx, or no answer (timeout, connection refused or reset): tried again after
  ``backoff_seconds * 2**(attempt-1)`` capped at ``backoff_max_seconds`` (no jitter:
  one process delivers, so there is no herd to spread), ``dead`` after ``max_attempts``;
* any other answer (3xx: redirects are not followed; 4xx): ``dead`` at once, the
  receiver refused it.

A receiver that does not answer ends its endpoint's round in every lane (its other
events wait for the next round and are not charged a try), so a dead host costs a
timeout per lane and round, not one per event. Between rounds the run sleeps until the
next retry is due. What is still pending when the rounds are spent stays queued for
``leadscore webhooks deliver``.
Every try is logged (``webhook_attempts``). Each row is claimed (leased) before its POST,
so two runs never send the same row at once; a crash mid-POST leaves it to a later
retry (at-least-once: receivers drop repeats by the ``Idempotency-Key``).
"""

from __future__ import annotations

import http.client
import threading
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from leadscore.serving.store import ScoreStore
from leadscore.serving.store.outbound_schema import DEAD, DELIVERED, PENDING
from leadscore.serving.webhooks.config import Endpoint, WebhooksConfig
from leadscore.serving.webhooks.signing import endpoint_secret, headers

LANES = 4
"""Lanes per endpoint: its events split by lead, each lane POSTed one by one."""

WORKERS = 8
"""Threads POSTing at once in a run (all endpoints' lanes share them)."""

LEASE_MARGIN_SECONDS = 30.0
"""How long past the request timeout a claimed row stays reserved to its run."""


@dataclass(frozen=True)
class Answer:
    """What one POST got: an HTTP status (None: no answer), an error text, its duration."""

    status: int | None
    error: str | None
    seconds: float


Send = Callable[[str, bytes, dict[str, str], float], Answer]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are answers, not hops: a signed POST is never re-sent elsewhere."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def post(url: str, body: bytes, header: dict[str, str], timeout: float) -> Answer:
    """POST ``body`` to ``url`` (stdlib HTTP client, no redirects); never raises."""
    request = urllib.request.Request(url, data=body, headers=header, method="POST")
    start = time.perf_counter()
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            response.read(65536)
            return Answer(int(response.status), None, time.perf_counter() - start)
    except urllib.error.HTTPError as exc:
        text = exc.read(200).decode("utf-8", "replace").strip() if exc.fp else ""
        return Answer(int(exc.code), text or str(exc.reason), time.perf_counter() - start)
    except urllib.error.URLError as exc:
        return Answer(None, f"{type(exc.reason).__name__}: {exc.reason}", _since(start))
    except (OSError, http.client.HTTPException) as exc:  # timeouts, resets, bad answers
        return Answer(None, f"{type(exc).__name__}: {exc}".rstrip(": "), _since(start))


def _since(start: float) -> float:
    return time.perf_counter() - start


def verdict(answer: Answer) -> str:
    """``delivered``, ``retry`` (try again later) or ``refused`` (dead at once)."""
    if answer.status is None:
        return "retry"
    if 200 <= answer.status < 300:
        return DELIVERED
    if answer.status in (408, 429) or answer.status >= 500:
        return "retry"
    return "refused"


def backoff(config: WebhooksConfig, attempt: int) -> float:
    """Seconds to wait after failed try number ``attempt`` (1, 2, ...)."""
    return min(config.backoff_seconds * 2 ** (attempt - 1), config.backoff_max_seconds)


@dataclass
class Tally:
    """What one :func:`deliver` run did (tries per outcome; ``waiting``: left pending)."""

    tries: int = 0
    delivered: int = 0
    retried: int = 0
    dead: int = 0
    rounds: int = 0
    waiting: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _try_one(
    store: ScoreStore, config: WebhooksConfig, endpoint: Endpoint, secret: str, row: Any, send: Send
) -> tuple[str, datetime | None] | None:
    """Claim, POST and record one delivery; its outcome and, when the host did not answer,
    until when to leave the endpoint alone (None: the row was not ours to send)."""
    now = datetime.now(UTC)
    lease = now + timedelta(seconds=config.timeout_seconds + LEASE_MARGIN_SECONDS)
    if not store.claim_webhook(endpoint.name, row.event_id, now, lease):
        return None
    body = row.body.encode("utf-8")
    answer = send(
        endpoint.url, body, headers(body, secret, row.event_id, row.event), config.timeout_seconds
    )
    result = verdict(answer)
    tries = row.attempts + 1
    wait = datetime.now(UTC) + timedelta(seconds=backoff(config, tries))
    if result == DELIVERED:
        outcome = DELIVERED
    elif result == "retry" and tries < config.max_attempts:
        outcome = PENDING
    else:
        outcome = DEAD
    error = answer.error
    if outcome == DEAD and result == "retry":
        error = f"gave up after {tries} tries: {error or f'HTTP {answer.status}'}"
    store.record_webhook_attempt(
        endpoint.name,
        row.event_id,
        at=now,
        http_status=answer.status,
        error=error,
        seconds=answer.seconds,
        outcome=outcome,
        next_attempt_at=wait if outcome == PENDING else None,
    )
    return outcome, (wait if answer.status is None else None)


def _lane(
    store: ScoreStore,
    config: WebhooksConfig,
    endpoint: Endpoint,
    secret: str,
    rows: list[Any],
    send: Send,
    silent: threading.Event,
) -> tuple[list[str], datetime | None]:
    """One lane of one endpoint's round: its rows in order, the outcome of each try.

    A host that does not answer ends every lane of its endpoint (``silent``) and pauses
    the endpoint until the time returned; its next events are not charged a try for it.
    """
    outcomes: list[str] = []
    for row in rows:
        if silent.is_set():
            break
        tried = _try_one(store, config, endpoint, secret, row, send)
        if tried is None:
            continue
        outcomes.append(tried[0])
        if tried[1] is not None:
            silent.set()
            return outcomes, tried[1]
    return outcomes, None


def lanes_of(rows: list[Any], lanes: int) -> list[list[Any]]:
    """Split due rows into ``lanes`` lists by lead (CRC-32 of lead_id), order kept: the
    events of one lead always share a lane, so they arrive in the order queued."""
    split: list[list[Any]] = [[] for _ in range(lanes)]
    for row in rows:
        split[zlib.crc32((row.lead_id or "").encode("utf-8")) % lanes].append(row)
    return [lane for lane in split if lane]


def deliver(
    store: ScoreStore,
    config: WebhooksConfig,
    *,
    rounds: int | None = None,
    send: Send = post,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, int]:
    """POST every due pending delivery of the configured endpoints; return a tally.

    Secrets are read first: an endpoint with pending deliveries whose ``secret_env`` is
    not set raises :class:`~leadscore.serving.webhooks.signing.MissingSecretError`
    before anything is sent (its deliveries stay pending). Deliveries queued for an
    endpoint no longer in the config are left alone. ``rounds`` defaults to
    ``max_attempts``, enough for an event queued now to end delivered or dead when its
    receiver answers.
    """
    active = [e for e in config.endpoints if e.name in store.pending_webhooks()]
    secrets = {e.name: endpoint_secret(e.secret_env, e.name) for e in active}
    paused: dict[str, datetime] = {}
    tally = Tally()
    limit = rounds or config.max_attempts
    for number in range(limit):
        now = datetime.now(UTC)
        work = [
            (endpoint, lane, threading.Event())
            for endpoint in active
            if paused.get(endpoint.name, now) <= now
            for lane in [lanes_of(store.due_webhooks(endpoint.name, now), LANES)]
        ]
        tasks = [(e, rows, silent) for e, split, silent in work for rows in split]
        with ThreadPoolExecutor(max_workers=min(WORKERS, max(1, len(tasks)))) as pool:
            futures = [
                (e.name, pool.submit(_lane, store, config, e, secrets[e.name], rows, send, silent))
                for e, rows, silent in tasks
            ]
            results = [(name, future.result()) for name, future in futures]
        tally.rounds = number + 1
        for name, (outcomes, pause) in results:
            if pause is not None:
                paused[name] = max(pause, paused.get(name, pause))
            tally.tries += len(outcomes)
            tally.delivered += outcomes.count(DELIVERED)
            tally.retried += outcomes.count(PENDING)
            tally.dead += outcomes.count(DEAD)
        left = {k: v for k, v in store.pending_webhooks().items() if k in secrets}
        if not left or number + 1 == limit:
            break
        now = datetime.now(UTC)
        wake = min(max(when or now, paused.get(k, now)) for k, (_, when) in left.items())
        sleep(max(0.0, (wake - now).total_seconds()))
    tally.waiting = sum(n for k, (n, _) in store.pending_webhooks().items() if k in secrets)
    return tally.as_dict()
