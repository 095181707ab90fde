"""`leadscore` command line: generate | train | score | monitor | demo | serve | export |
promote | rollback | backtest | init.

Heavy imports (prefect, mlflow, lightgbm, shap) happen inside the commands, after the
environment is prepared, so `leadscore --help` answers at once.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from leadscore.pipelines.cli_backtest import backtest, run_backtest
from leadscore.pipelines.cli_common import (
    ConfigOption,
    FullFlag,
    _config_arg,
    _settings,
    console,
    flow_runs,
)
from leadscore.pipelines.cli_webhooks import webhooks_app
from leadscore.pipelines.errors import (
    CommandGroup,
    ExitCode,
    codes_help,
    fail,
)
from leadscore.pipelines.init_command import init_command
from leadscore.pipelines.summary import (
    demo_lines,
    leak_lines,
    monitor_line,
    page_token,
    print_top,
    target_lines,
    train_summary,
)

if TYPE_CHECKING:  # imported where used: `leadscore --help` loads neither (bench/cli_start.py)
    from leadscore.pipelines.settings import Settings

app = typer.Typer(
    cls=CommandGroup,
    add_completion=False,
    no_args_is_help=True,
    help=f"{__doc__}\n\n{codes_help()}",
    pretty_exceptions_enable=False,
)

__all__ = ["app", "run_backtest"]
app.command("init")(init_command)


@app.callback()
def main(
    ctx: typer.Context,
    debug: Annotated[
        bool,
        typer.Option("--debug", help="Show Prefect's run logs and the traceback of a failure."),
    ] = False,
) -> None:
    """Expected failures print one line on stderr and exit with their code (below)."""
    ctx.obj = {"debug": debug}
    if debug:
        os.environ["PREFECT_LOGGING_LEVEL"] = "INFO"
    else:  # the run's own logs only on request: a failure then stays one line
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


@app.command()
def generate(
    leads: Annotated[int | None, typer.Option(help="Number of leads.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (same seed, same CRM).")] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder.")] = None,
    config: ConfigOption = None,
) -> None:
    """Write the embedded synthetic CRM (leads, activities, hidden truth) as Parquet."""
    settings = _settings(config)
    from leadscore.synthetic import generate_crm, write_crm

    n = leads or settings.synthetic.leads
    with console().status(f"generating {n:,} leads"):
        start = time.perf_counter()
        crm = generate_crm(n, seed if seed is not None else settings.synthetic.seed)
        paths = write_crm(crm, out or settings.synthetic.out_dir)
    status = crm.leads["status"].value_counts().to_dict()
    console().print(
        f"{len(crm.leads):,} leads {status}, {len(crm.activities):,} activities "
        f"in {time.perf_counter() - start:.1f}s -> {paths['leads'].parent}"
    )


@app.command()
def train(
    config: ConfigOption = None,
    force: Annotated[
        bool, typer.Option(help="Train even below the minimum leads / conversions.")
    ] = False,
) -> None:
    """Train on closed history, evaluate against the rules out of time, track in MLflow.

    Ends by printing one JSON line of metrics on standard output.
    """
    settings = _settings(config)
    with flow_runs():
        from leadscore.pipelines.train_flow import train_flow

        result = train_flow(_config_arg(settings, config), force=force)
    summary = train_summary(result)
    for line in target_lines(summary["targets"]):
        console().print(line, highlight=False, soft_wrap=True)
    for line in leak_lines(summary.get("leakage", [])):
        console().print(line, highlight=False, soft_wrap=True, markup=False)
    typer.echo(json.dumps(summary))


ReasonOption = Annotated[
    str, typer.Option(help="Why: recorded on the model version (tags) in the registry.")
]


@app.command()
def promote(
    version: Annotated[int, typer.Option(help="Registered model version to make champion.")],
    reason: ReasonOption = "manual promotion",
    config: ConfigOption = None,
) -> None:
    """Give the `champion` alias to a version (past the gate), recording the reason.

    Prints one JSON line: the new champion, the one it replaced and the alias history.
    """
    settings = _settings(config)
    from mlflow.exceptions import MlflowException

    from leadscore.pipelines import tracking

    client = tracking.configure(settings.tracking)
    before = tracking.champion_version(client, settings.tracking)
    try:
        history = tracking.promote_version(client, settings.tracking, str(version), reason)
    except MlflowException as exc:
        raise fail(f"cannot promote version {version}: {exc.message}", ExitCode.REGISTRY) from exc
    typer.echo(json.dumps({"champion": str(version), "previous": before, "history": history}))


@app.command()
def rollback(reason: ReasonOption = "manual rollback", config: ConfigOption = None) -> None:
    """Give the `champion` alias back to the previous champion, recording the reason.

    Repeated rollbacks walk further back; every version stays registered and loadable.
    """
    settings = _settings(config)
    from mlflow.exceptions import MlflowException

    from leadscore.pipelines import tracking

    client = tracking.configure(settings.tracking)
    try:
        current, target = tracking.rollback(client, settings.tracking, reason)
    except (LookupError, MlflowException) as exc:
        raise fail(f"cannot roll back: {exc}", ExitCode.REGISTRY) from exc
    history = tracking.champion_history(client, settings.tracking)
    typer.echo(json.dumps({"champion": target, "rolled_back": current, "history": history}))


app.command("backtest")(backtest)
app.add_typer(webhooks_app, name="webhooks")


@app.command()
def score(config: ConfigOption = None) -> dict[str, Any]:
    """Score every open lead with the champion model and publish the batch."""
    settings = _settings(config)
    with flow_runs():
        from leadscore.pipelines.score_flow import score_flow

        result = score_flow(_config_arg(settings, config))
    print_top(result["top"])
    typer.echo(json.dumps({k: v for k, v in result.items() if k != "top"}))
    return result


@app.command()
def monitor(config: ConfigOption = None, full: FullFlag = False) -> None:
    """Judge past batches against the outcomes since, watch drift, retrain when it pays."""
    settings = _settings(config)
    with flow_runs():
        from leadscore.pipelines.monitor_flow import monitor_flow

        result = monitor_flow(_config_arg(settings, config), full=full)
    console().print(monitor_line(result), highlight=False, soft_wrap=True, markup=False)
    typer.echo(json.dumps(result))


@app.command()
def demo(
    leads: Annotated[int | None, typer.Option(help="Number of synthetic leads.")] = None,
    config: ConfigOption = None,
    nights: Annotated[int, typer.Option(help="Simulated nights of a drifting world.")] = 0,
    every: Annotated[int, typer.Option(help="Days between two nights.")] = 7,
    change: Annotated[
        str, typer.Option(help="new_source|campaign|mix_shift|broken_pixel|none")
    ] = "new_source",
    change_at: Annotated[str | None, typer.Option(help="Its start (default: mid-nights).")] = None,
) -> None:
    """Generate the synthetic CRM, train, score, and show the 10 highest open leads; end
    with where to look: the page (a page token is kept in `output.demo_page_token`), the
    report, MLflow and the scores. With --nights: score, monitor and retrain night after
    night (docs/drift-simulation.md)."""
    settings = _settings(config)
    if nights:
        from leadscore.pipelines.nights import run_nights

        with flow_runs():
            run_nights(settings, config, nights, every, change, change_at, leads, typer.echo)
        return
    start = time.perf_counter()
    generate(leads=leads, seed=None, out=None, config=config)
    with flow_runs():  # one temporary server for both flows
        train(config=config, force=False)
        scored = score(config=config)
    token = page_token(settings.output.demo_page_token)
    seconds = time.perf_counter() - start
    for line in demo_lines(settings, config, token, seconds, scored):
        console().print(line, highlight=False, soft_wrap=True, markup=False)


def default_workers() -> int:
    """`leadscore serve`'s worker processes: one, because the page's log-in sessions live
    in one process's memory (serving/session.py); an API-only deployment may run one per
    core (`--workers`)."""
    return 1


def serve_app() -> Any:
    """The app one `leadscore serve --workers N` process runs (uvicorn's factory, by
    import string), from the config `serve` read ($LEADSCORE_CONFIG)."""
    return _serve_app(_settings(None))


def _serve_app(settings: Settings) -> Any:
    from leadscore.serving.api import OnDemandScorer, create_app

    def load_champion() -> tuple[Any, str]:
        from leadscore.pipelines.tracking import load_champion as champion

        return champion(settings.tracking)

    scorer = OnDemandScorer(
        settings.features, settings.rules, settings.scoring, load_champion, settings.data.validation
    )
    return create_app(settings.store, settings.api, scorer, team=settings.routing.reps)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default: api.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: api.port).")] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Worker processes (default 1: the page's log-in sessions live in one "
            "process; an API-only server may run one per core).",
        ),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Serve the HTTP API (/v1, /docs) and the sales-ops page (/ui) with uvicorn.

    Tokens come from `api.tokens` / $LEADSCORE_API_TOKENS (and page-only ones from
    `api.page_tokens` / $LEADSCORE_PAGE_TOKENS); POST /v1/score uses the MLflow champion.
    """
    settings = _settings(config)
    import uvicorn

    from leadscore.serving.api import api_tokens

    if not any(api_tokens(settings.api)):
        raise fail(
            "no API token configured: set $LEADSCORE_API_TOKENS or api.tokens", ExitCode.CONFIG
        )
    workers = workers or default_workers()
    where = {"host": host or settings.api.host, "port": port or settings.api.port}
    # uvloop and httptools (installed with uvicorn[standard]) when present; the app reads
    # api.trusted_proxies itself
    options = {**where, "proxy_headers": False, "loop": "auto", "http": "auto"}
    if workers == 1:
        uvicorn.run(_serve_app(settings), **options)
        return
    from leadscore.pipelines.settings import CONFIG_ENV, config_path

    os.environ[CONFIG_ENV] = str(config_path(config))  # read by each worker's serve_app
    uvicorn.run("leadscore.pipelines.cli:serve_app", factory=True, workers=workers, **options)


@app.command()
def export(
    out: Annotated[Path | None, typer.Option(help="File to write (replaced atomically).")] = None,
    format: Annotated[
        str, typer.Option(help="csv (CRM import) or jsonl (one JSON object per lead).")
    ] = "csv",
    list_: Annotated[
        str, typer.Option("--list", help="scores (every open lead) or nurture (docs/nurture.md).")
    ] = "scores",
    config: ConfigOption = None,
) -> None:
    """Write the current batch for a CRM: columns as documented in serving/export.py.

    jsonl has the same fields per line, with `reasons` as a JSON array. With no --out,
    `output.scores_csv` is checked: rewritten if it does not hold the current batch (and
    `output.calls_csv`, the call lists, when `routing.reps` lists a team).
    `--list nurture` writes the nurture list (csv) to --out or `output.nurture_csv`.
    """
    if format not in ("csv", "jsonl") or (out is None and format != "csv"):
        raise fail(f"--format must be csv or jsonl (with --out), not {format!r}", ExitCode.CONFIG)
    if list_ not in ("scores", "nurture") or (list_ == "nurture" and format != "csv"):
        raise fail(f"--list must be scores or nurture (csv), not {list_!r}", ExitCode.CONFIG)
    settings = _settings(config)
    from leadscore.serving.export import export_current, sync_export
    from leadscore.serving.nurture_export import nurture_current
    from leadscore.serving.store import StoreError

    try:
        if list_ == "nurture":
            path, cells = out or settings.output.nurture_csv, settings.nurture.cells
            console().print(nurture_current(settings.store, path, cells, settings.output.csv_bom))
            return
        if out is not None:
            bom = settings.output.csv_bom
            console().print(export_current(settings.store, out, format, bom=bom))
            return
        synced = sync_export(settings.store, settings.output.scores_csv, settings.output.csv_bom)
    except LookupError as exc:
        raise fail(str(exc), ExitCode.NOTHING_TO_SCORE) from exc
    except StoreError as exc:
        raise fail(str(exc), ExitCode.STORE) from exc
    if synced.current is None:
        raise fail(synced.describe(), ExitCode.NOTHING_TO_SCORE)
    console().print(synced.describe())
    if settings.routing.reps:  # today's call lists too (output.calls_csv)
        from leadscore.serving.calls_export import sync_calls_csv

        output = settings.output
        calls = sync_calls_csv(
            settings.store, settings.routing.reps, output.calls_csv, output.csv_bom
        )
        console().print(calls.describe())


if __name__ == "__main__":
    app()
