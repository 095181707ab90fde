"""The score flow: every open lead as of now, scored by the champion in partitions,
spilled, ranked and published to the store as one atomic batch, then exported to CSV.

Thin glue over ``pipelines.partitioned`` (read, score, spill) and ``pipelines.batch``
(publish); ``prefect.yaml`` schedules it nightly.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from leadscore.features.accounts import AccountHistory
from leadscore.features.market import OutcomeHistory
from leadscore.models import recipe
from leadscore.models.base import LeadScorer
from leadscore.models.routing.pool import routing_summary
from leadscore.models.scoring import (
    Partition,
)
from leadscore.pipelines import tracking
from leadscore.pipelines.archive import ArchiveRun, archive_published, quarantine_by_reason
from leadscore.pipelines.background import InOrder
from leadscore.pipelines.batch import publish_spilled
from leadscore.pipelines.errors import ConservationError, NothingToScoreError
from leadscore.pipelines.notify import notify
from leadscore.pipelines.partitioned import PartFile, StreamedCRM, stream_crm
from leadscore.pipelines.passes import (
    PartitionRun,
    PredictedFile,
    predict_and_spill,
    rank_predicted,
    score_and_spill,
)
from leadscore.pipelines.runtime import arrow_pool, settle_heap
from leadscore.pipelines.settings import Settings, load_settings
from leadscore.pipelines.sources import scoring_time
from leadscore.pipelines.spill import spill_folder
from leadscore.pipelines.spilled import HandOver, Spilled
from leadscore.pipelines.thin import thin_task
from leadscore.serving.calls_export import sync_calls_csv, write_calls_csv
from leadscore.serving.export import sync_export, write_csv_atomic
from leadscore.serving.nurture_export import export_nurture
from leadscore.serving.store import ScoreStore
from leadscore.serving.webhooks.signing import MissingSecretError

TOP_LEADS = 10
"""Best leads the score flow returns (and the CLI prints) as a preview."""


@thin_task
def load_champion(settings: Settings) -> tuple[LeadScorer, str]:
    tracking.configure(settings.tracking)
    return tracking.load_champion(settings.tracking)


@thin_task
def predict_part(part: Partition | PartFile, index: int, run: PartitionRun) -> PredictedFile:
    """Pass 1 of one partition: predicted, explained, spilled (``predict_and_spill``)."""
    return predict_and_spill(part, index, run)


@thin_task
def score_part(
    part: Partition | PartFile,
    index: int,
    run: PartitionRun,
    predicted: PredictedFile | None = None,
) -> Spilled:
    """Pass 2 of one partition: scored completely and spilled (``score_and_spill``)."""
    return score_and_spill(part, index, run, predicted=predicted)


def task_runner(settings: Settings, finishing: bool = False) -> TaskRunner:
    """The configured Prefect task runner: threads here (``runner.local_workers``, or
    ``runner.finish_workers`` for the second pass when ``finishing``), or a Dask
    cluster (prefect-dask)."""
    if settings.runner.kind == "dask":
        from prefect_dask import DaskTaskRunner

        return DaskTaskRunner(address=settings.runner.address)
    runner = settings.runner
    return ThreadPoolTaskRunner(
        max_workers=runner.finish_workers if finishing else runner.local_workers
    )


def _in_order(
    runner: TaskRunner, task_: Any, parameters: Iterable[dict[str, Any]], window: int
) -> Iterator[Any]:
    """Submit one task run per parameter set; yield results in order, <= ``window`` pending."""
    pending: deque[Any] = deque()
    for params in parameters:
        pending.append(runner.submit(task_, parameters=params))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _kept(items: Iterable[Spilled], into: list[Spilled]) -> Iterator[Spilled]:
    """``items``, each also appended to ``into`` as it passes."""
    for item in items:
        into.append(item.released())  # its file, not its table: that is the publisher's
        yield item


def score_batch(
    parts: Sequence[Partition | PartFile],
    model: LeadScorer,
    version: str,
    as_of: pd.Timestamp,
    settings: Settings,
    history: OutcomeHistory | None = None,
    check: Callable[[int], None] | None = None,
    accounts: AccountHistory | None = None,
    archive: ArchiveRun | None = None,
) -> dict[str, Any]:
    """Score the open leads partition by partition; publish them as one batch and a CSV.

    Two passes (``pipelines.passes``), each mapped over the partitions (in memory, or on
    disk from ``pipelines.partitioned``) on the configured task runner (threads here, or
    a Dask cluster), at most ``runner.max_in_flight`` at a time: ``predict_part`` gives
    every lead's scores and exact contributions, so the global ranks are computed once;
    then ``score_part`` finishes each partition and spills its scored frame, which
    streams, ranked, into one store batch while the next partition is finished. The
    batch is made current at the end, with the call lists of ``routing.reps`` (when
    any), and the CSV export is written, sorted by rank, from the same spilled files;
    then the calls file (``output.calls_csv``) and the nurture list
    (``output.nurture_csv``).
    ``history`` is the leads table's outcomes, which the recent conversion rate reads
    (features.market);
    ``check`` sees the number of rows written before the batch becomes current;
    ``accounts`` the joined tables' accounts (``data.joins``), for the account features.
    Once published, the batch is archived for the monitor (``pipelines.archive``) when
    ``archive`` says where, from the same spilled files.
    """
    rules = recipe.scoring_rules(settings.rules, settings.features)
    store = ScoreStore(settings.store)
    store.create()
    settle_heap()
    local = settings.runner.kind == "local"  # a Dask cluster serves both passes
    with (
        spill_folder(settings.runner.spill_dir) as folder,
        task_runner(settings) as runner,
        task_runner(settings, finishing=True) if local else nullcontext(runner) as finisher,
    ):
        hand_over = HandOver() if local else None  # scored partitions to the publisher
        run = PartitionRun(as_of, model, rules, settings, folder, history, accounts, hand_over)
        window = settings.runner.max_in_flight
        params = [{"part": p, "index": i, "run": run} for i, p in enumerate(parts)]
        # pass 1's files written beside the next partition (local runs); on disk once
        # the block ends, before the second pass reads them
        with InOrder("spill-behind") if local else nullcontext() as behind:
            first = [{**p, "run": replace(run, spill_behind=behind)} for p in params]
            predicted = list(_in_order(runner, predict_part, first, window))
        ranking, predicted = rank_predicted(predicted)
        finishing = ({**p, "predicted": q} for p, q in zip(params, predicted, strict=True))
        spilled: list[Spilled] = []
        out = publish_spilled(
            _kept(_in_order(finisher, score_part, finishing, window), spilled),
            store,
            model_version=version,
            as_of=as_of,
            grade_order=list(settings.scoring.grades),
            csv_path=settings.output.scores_csv,
            chunk_rows=settings.scoring.partition_rows,
            top=TOP_LEADS,
            check=check,
            bom=settings.output.csv_bom,
            routing=settings.routing if settings.routing.reps else None,
            ranking=ranking,
            hand_over=hand_over,
        )
        if out.routing is not None:  # the day's call lists, from the store, once current
            reps, path = settings.routing.reps, settings.output.calls_csv
            write_calls_csv(store, out.batch.batch_id, reps, path, settings.output.csv_bom)
        nurture = export_nurture(  # the nurture list, for marketing automation
            store, settings.output.nurture_csv, settings.nurture.cells, settings.output.csv_bom
        )
        archived = None
        if archive is not None:
            stamp = {"batch_id": out.batch.batch_id, "as_of": as_of, "model_version": version}
            archived = archive_published(spilled, archive, **stamp)
    return {
        "batch_id": out.batch.batch_id,
        "n_rows": out.batch.n_rows,
        "partitions": len(parts),
        "csv": str(out.csv),
        "top": out.top.to_dict(orient="records"),
        "archive": None if archived is None else str(archived),
        "routing": None if out.routing is None else routing_summary(out.routing),
        "nurture": {
            "csv": str(nurture.path),
            "leads": nurture.n_leads,
            "with_step": nurture.n_with_step,
        },
    }


def conservation(leads_in: int, closed: int, quarantined: int) -> Callable[[int], None]:
    """The check that every lead in ends scored, closed or quarantined, run on the number
    of rows written before the batch becomes current: a mismatch keeps the current one."""

    def check(scored: int) -> None:
        if scored + closed + quarantined != leads_in:
            raise ConservationError(
                f"lead conservation broken: {leads_in} leads in != {scored} scored + "
                f"{closed} closed + {quarantined} quarantined; nothing was published and "
                f"the current batch stays"
            )

    return check


def nothing_to_score(settings: Settings, n_in: int, n_closed: int, n_quarantined: int) -> str:
    """Why no lead is scored, and what to do if some are still open (one line)."""
    outcome = settings.data.outcome
    if outcome is None:
        hint = (
            "if some are still open, their status must read 'open' (or map your status "
            "column with data.outcome, listing its open values under data.outcome.open)"
        )
    elif outcome.open:
        hint = (
            f"no row's {outcome.column} is one of data.outcome.open {list(outcome.open)}: "
            "list there the values your open leads carry"
        )
    else:
        hint = f"if some are still open, list their {outcome.column} values under data.outcome.open"
    quarantine = (
        f"; the {n_quarantined} quarantined are in {settings.output.quarantine_csv}"
        if n_quarantined
        else ""
    )
    return (
        f"{settings.data.leads.label}: no open lead to score ({n_in} leads in: {n_closed} "
        f"closed, {n_quarantined} quarantined): every clean lead is converted or lost; "
        f"{hint}{quarantine}. Nothing was published and the current batch stays"
    )


@thin_task
def load_partitions(settings: Settings, folder: Path) -> StreamedCRM:
    """The leads, and the activity log chunk by chunk into partition files (checked)."""
    return stream_crm(settings, folder)


@thin_task
def send_alerts(settings: Settings, batch_id: str) -> dict[str, Any]:
    """The published batch's webhook events, queued and delivered (``pipelines.notify``)."""
    return notify(settings, batch_id)


def alerts_after_publish(settings: Settings, batch_id: str, logger: Any) -> dict[str, Any] | None:
    """Webhooks for the batch just made current, when endpoints are configured.

    The batch is published whatever happens here: a missing secret or a receiver that
    keeps failing leaves the deliveries queued (``leadscore webhooks deliver``, dead
    letters: ``leadscore webhooks replay``) and is logged, not raised.
    """
    if not settings.webhooks.endpoints:
        return None
    try:
        sent = send_alerts(settings, batch_id)
    except MissingSecretError as exc:
        logger.warning("webhooks not sent (queued for `leadscore webhooks deliver`): %s", exc)
        return {"batch_id": batch_id, "error": str(exc)}
    if sent.get("pending") or sent.get("dead"):
        logger.warning(
            "webhooks: %s delivered, %s pending, %s dead (see `leadscore webhooks log`)",
            sent.get("delivered"),
            sent.get("pending"),
            sent.get("dead"),
        )
    return sent


@flow(name="leadscore-score", log_prints=True)
def score_flow(config_path: str | None = None) -> dict[str, Any]:
    """Score every open lead as of now, explain it, put the rules beside it, publish.

    The activity log is read and checked in chunks into partition files
    (``pipelines.partitioned``), then scored partition by partition on the configured
    runner (``runner``: local threads or a Dask cluster) into one store batch; see
    :func:`score_batch`. Memory follows the partition and chunk sizes, not the data's.
    """
    logger = get_run_logger()
    settings = load_settings(config_path)
    arrow_pool()
    # a killed run's CSV: rewritten from the store first
    synced = sync_export(settings.store, settings.output.scores_csv, settings.output.csv_bom)
    if synced.rewritten:
        logger.warning(synced.describe())
    if settings.routing.reps:
        output = settings.output
        calls = sync_calls_csv(
            settings.store, settings.routing.reps, output.calls_csv, output.csv_bom
        )
        if calls.rewritten and calls.found is not None:
            logger.warning(calls.describe())
    with spill_folder(settings.runner.spill_dir) as folder:
        crm = load_partitions(settings, folder)
        write_csv_atomic(crm.quarantine, settings.output.quarantine_csv)
        n_open = sum(len(p) for p in crm.parts)
        n_quarantined = crm.quarantined(settings.data.leads.label)
        n_closed = crm.n_clean_leads - n_open
        if not n_open:
            raise NothingToScoreError(
                nothing_to_score(settings, crm.n_leads_in, n_closed, n_quarantined)
            )
        model, version = load_champion(settings)
        as_of = scoring_time(settings.data.as_of, crm.end)
        check = conservation(crm.n_leads_in, n_closed, n_quarantined)
        archive = ArchiveRun(
            settings.monitor.archive_dir,
            settings.monitor.archive_days,
            quarantine_by_reason(crm.quarantine, settings.data.leads.label),
            crm.n_leads_in,
        )
        batch = score_batch(
            crm.parts, model, version, as_of, settings, crm.history, check, crm.accounts, archive
        )
    logger.info(
        "batch %s: %d open leads scored as of %s in %d partitions",
        batch["batch_id"],
        batch["n_rows"],
        as_of,
        batch["partitions"],
    )
    alerts = alerts_after_publish(settings, batch["batch_id"], logger)
    return {
        "batch_id": batch["batch_id"],
        "n_rows": batch["n_rows"],
        "csv": batch["csv"],
        "quarantine_csv": str(settings.output.quarantine_csv),
        "as_of": as_of.isoformat(),
        "model_version": version,
        "leads_in": crm.n_leads_in,
        "scored": batch["n_rows"],
        "closed": n_closed,
        "quarantined": n_quarantined,
        "activities_in": crm.n_activities_in,
        "activities_quarantined": crm.quarantined(settings.data.activities.label)
        if settings.data.activities
        else 0,
        "store": settings.store.url,
        "input_notes": {k: v for k, v in crm.notes.items() if v},
        "top": batch["top"],
        "archive": batch["archive"],
        "routing": batch["routing"],
        "calls_csv": str(settings.output.calls_csv) if batch["routing"] else None,
        "nurture": batch["nurture"],
        "alerts": alerts,
    }
