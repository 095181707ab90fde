"""Alerts after a batch is published: build its events, queue them, deliver them.

``notify`` is called by the score flow once the batch is current (never before: a batch
that did not publish has no events, :class:`~leadscore.serving.webhooks.events.NotPublishedError`).
Queuing is idempotent (one delivery per endpoint and event id), so calling it twice for
the same batch sends nothing twice. Delivery is bounded (``webhooks.max_attempts``
rounds); what is still pending after it waits for ``leadscore webhooks deliver``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from leadscore.serving.store import ScoreStore
from leadscore.serving.webhooks.deliver import deliver
from leadscore.serving.webhooks.events import Event, build_events, published_batch

if TYPE_CHECKING:
    from leadscore.pipelines.settings import Settings


def delivery_rows(settings: Settings, events: list[Event], now: datetime) -> list[dict[str, Any]]:
    """One outbox row per (subscribed endpoint, event); ``created_at`` grows by a
    microsecond per event so the outbox keeps the events' order."""
    rows = []
    for endpoint in settings.webhooks.endpoints:
        wanted = set(endpoint.events)
        for i, event in enumerate(events):
            if event.type in wanted:
                rows.append(
                    {
                        "endpoint": endpoint.name,
                        "event_id": event.event_id,
                        "event": event.type,
                        "batch_id": event.batch_id,
                        "lead_id": event.lead_id,
                        "body": event.body,
                        "created_at": now + timedelta(microseconds=i),
                    }
                )
    return rows


def notify(settings: Settings, batch_id: str, *, store: ScoreStore | None = None) -> dict[str, Any]:
    """Queue and deliver the webhook events of published batch ``batch_id``.

    Returns ``{"batch_id", "events", "enqueued", "pending", "delivered", "dead", "tries"}``:
    the batch's events, the deliveries newly queued, this batch's deliveries per status
    after the run, and the POSTs made. Raises NotPublishedError (a StoreError) for a
    batch that is not published, MissingSecretError when an endpoint's secret is not
    set (its deliveries stay queued). Without endpoints only the batch is checked.
    """
    own = store is None
    store = store or ScoreStore(settings.store)
    try:
        if not settings.webhooks.endpoints:
            published_batch(store, batch_id)
            return {"batch_id": batch_id, "events": 0, "enqueued": 0, "tries": 0}
        now = datetime.now(UTC)
        events = build_events(
            store,
            batch_id,
            grade_order=list(settings.scoring.grades),
            threshold=settings.webhooks.threshold,
            now=now,
        )
        enqueued = store.enqueue_webhooks(delivery_rows(settings, events, now))
        run = deliver(store, settings.webhooks)
        return {
            "batch_id": batch_id,
            "events": len(events),
            "enqueued": enqueued,
            **store.webhook_counts(batch_id),
            "tries": run["tries"],
        }
    finally:
        if own:
            store.close()
