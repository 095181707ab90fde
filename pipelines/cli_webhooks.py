"""`leadscore webhooks deliver | replay | log`: the webhook outbox by hand (docs/webhooks.md)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from leadscore.pipelines.cli_common import ConfigOption, _settings
from leadscore.pipelines.errors import ExitCode, fail

if TYPE_CHECKING:
    from leadscore.pipelines.settings import Settings
    from leadscore.serving.store import ScoreStore

webhooks_app = typer.Typer(
    no_args_is_help=True,
    help="Alerts pushed after each published batch: retry, replay and read the log.",
)

LOG_FIELDS = ("created_at", "endpoint", "event", "lead_id", "status", "attempts", "last_status")


def _store(settings: Settings) -> ScoreStore:
    from leadscore.serving.store import ScoreStore

    store = ScoreStore(settings.store)
    store.create()
    return store


def _deliver(settings: Settings, store: ScoreStore) -> dict[str, int]:
    """Deliver what is due; a missing secret is a config failure (one line, exit 2)."""
    from leadscore.serving.webhooks.deliver import deliver
    from leadscore.serving.webhooks.signing import MissingSecretError

    try:
        return deliver(store, settings.webhooks)
    except MissingSecretError as exc:
        raise fail(str(exc), ExitCode.CONFIG) from exc


@webhooks_app.command("deliver")
def deliver_command(config: ConfigOption = None) -> None:
    """POST the pending deliveries that are due (retries included); print a JSON tally."""
    settings = _settings(config)
    store = _store(settings)
    try:
        tally = _deliver(settings, store)
        typer.echo(json.dumps({**tally, **store.webhook_counts()}))
    finally:
        store.close()


@webhooks_app.command("replay")
def replay_command(
    event_id: Annotated[
        list[str] | None, typer.Option("--event-id", help="A dead event to send again.")
    ] = None,
    all_dead: Annotated[bool, typer.Option("--all-dead", help="Every dead delivery.")] = False,
    batch: Annotated[str | None, typer.Option(help="The dead deliveries of one batch.")] = None,
    send: Annotated[bool, typer.Option(help="Deliver right away (--no-send: queue only).")] = True,
    config: ConfigOption = None,
) -> None:
    """Put dead deliveries back in the queue (tries reset) and deliver them.

    Only dead ones move: a delivered event is never sent twice.
    """
    if not event_id and not all_dead and batch is None:
        raise fail("webhooks replay: give --event-id ID, --batch ID or --all-dead", ExitCode.CONFIG)
    settings = _settings(config)
    store = _store(settings)
    try:
        replayed = store.replay_webhooks(event_ids=event_id, batch_id=batch, all_dead=all_dead)
        tally = _deliver(settings, store) if send and replayed else {}
        typer.echo(json.dumps({"replayed": replayed, **tally, **store.webhook_counts()}))
    finally:
        store.close()


def _line(row: dict[str, Any]) -> str:
    cells = [str(row[f].isoformat() if f == "created_at" else row[f]) for f in LOG_FIELDS]
    error = row["last_error"] or ""
    return "\t".join([*cells, row["event_id"], error.replace("\t", " ").replace("\n", " ")])


@webhooks_app.command("log")
def log_command(
    status: Annotated[
        str | None, typer.Option(help="pending, delivered or dead (the dead-letter list).")
    ] = None,
    batch: Annotated[str | None, typer.Option(help="One batch's deliveries.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Most rows shown (newest).")] = 100,
    config: ConfigOption = None,
) -> None:
    """The deliveries, oldest first, one tab-separated line each (with a header)."""
    from leadscore.serving.store.outbound_schema import DELIVERY_STATUSES

    if status is not None and status not in DELIVERY_STATUSES:
        raise fail(f"--status must be one of {', '.join(DELIVERY_STATUSES)}", ExitCode.CONFIG)
    settings = _settings(config)
    store = _store(settings)
    try:
        rows = store.webhook_deliveries(status, batch_id=batch, newest=limit)
    finally:
        store.close()
    typer.echo("\t".join([*LOG_FIELDS, "event_id", "last_error"]))
    for row in rows:
        typer.echo(_line(row))
