"""`leadscore` command line: generate | train | score | demo.

Heavy imports (prefect, mlflow, lightgbm, shap) happen inside the commands, after the
environment is prepared, so `leadscore --help` answers at once.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from pipelines.settings import Settings, SettingsError, load_settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


def console() -> Console:
    """A console on the current stderr (made per call: the stream may have been swapped)."""
    return Console(stderr=True)


ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="Settings file (default: $LEADSCORE_CONFIG or ./leadscore.yaml)."
    ),
]


def _settings(config: Path | None) -> Settings:
    try:
        settings = load_settings(config)
    except SettingsError as exc:
        console().print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    from pipelines.runtime import prepare_environment

    prepare_environment(settings)
    return settings


def _config_arg(settings: Settings, config: Path | None) -> str | None:
    return str(config.resolve()) if config else None


@app.command()
def generate(
    leads: Annotated[int | None, typer.Option(help="Number of leads.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (same seed, same CRM).")] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder.")] = None,
    config: ConfigOption = None,
) -> None:
    """Write the embedded synthetic CRM (leads, activities, hidden truth) as Parquet."""
    settings = _settings(config)
    from pipelines.synthetic import generate_crm, write_crm

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
def train(config: ConfigOption = None) -> None:
    """Train on closed history, evaluate against the rules out of time, track in MLflow.

    Ends by printing one JSON line of metrics on standard output.
    """
    settings = _settings(config)
    from pipelines.flows import train_flow

    result = train_flow(_config_arg(settings, config))
    typer.echo(json.dumps(train_summary(result)))


def train_summary(result: dict[str, Any]) -> dict[str, Any]:
    keys = ("roc_auc", "pr_auc", "brier", "lift_top10")
    summary: dict[str, Any] = {
        side: {k: round(result[side][k], 4) for k in keys}
        for side in ("model", "rules", "oracle")
        if side in result
    }
    summary.update({k: result[k] for k in ("split", "n_train", "n_valid", "run_id")})
    summary.update({"model_version": result["version"], "promoted": result["promoted"]})
    return summary


@app.command()
def score(config: ConfigOption = None) -> None:
    """Score every open lead with the champion model and publish the batch."""
    settings = _settings(config)
    from pipelines.flows import score_flow

    result = score_flow(_config_arg(settings, config))
    _print_top(result["top"])
    typer.echo(json.dumps({k: v for k, v in result.items() if k != "top"}))


def _print_top(rows: list[dict[str, Any]]) -> None:
    table = Table(title="Highest open leads", show_lines=True)
    for column in ("rank", "lead", "grade", "probability", "rule score", "reasons"):
        table.add_column(column)
    for row in rows:
        reasons = "\n".join(f"{r['direction']} {r['text']}" for r in json.loads(row["reasons"]))
        table.add_row(
            str(row["rank"]),
            str(row["lead_id"]),
            row["grade"],
            f"{row['probability']:.1%}",
            f"{row['rule_score']:.0f} ({row['rule_grade']})",
            reasons,
        )
    Console().print(table)


@app.command()
def demo(
    leads: Annotated[int | None, typer.Option(help="Number of synthetic leads.")] = None,
    config: ConfigOption = None,
) -> None:
    """Generate the synthetic CRM, train, score, and show the 10 highest open leads."""
    settings = _settings(config)
    start = time.perf_counter()
    generate(leads=leads, seed=None, out=None, config=config)
    train(config=config)
    score(config=config)
    console().print(
        f"\nMLflow runs: {settings.tracking.tracking_uri} (artifacts: "
        f"{settings.tracking.artifact_location}); browse with "
        f"`mlflow ui --backend-store-uri {settings.tracking.tracking_uri}`\n"
        f"Scores: {settings.store.url} and {settings.output.scores_csv}\n"
        f"Demo took {time.perf_counter() - start:.0f}s"
    )


if __name__ == "__main__":
    app()
