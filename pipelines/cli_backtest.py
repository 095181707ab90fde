"""`leadscore backtest`: re-train at past cut-offs and show how stable the metrics are."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from leadscore.pipelines.cli_common import ConfigOption, _settings
from leadscore.pipelines.errors import ExitCode, fail

if TYPE_CHECKING:
    from leadscore.pipelines.settings import Settings


def run_backtest(settings: Settings, windows: int) -> tuple[Any, dict[str, float]]:
    """The rolling-origin backtest of the configured data (a table and its stability)."""
    from leadscore.models import recipe
    from leadscore.models.backtest import run, stability
    from leadscore.pipelines.sources import load_crm

    crm = load_crm(settings)
    data = recipe.examples(crm.leads, crm.activities, crm.end, settings)
    table = run(data, settings, windows, flat=crm.flat)
    return table, stability(table)


def backtest(
    windows: Annotated[
        int, typer.Option(min=1, help="Cut-offs: the data end and windows-1 earlier ones.")
    ] = 4,
    config: ConfigOption = None,
) -> None:
    """Re-train at past cut-offs (rolling origin, one validation window apart) and show
    each window's metrics for the model and the rules, to see how stable they are.

    Prints a table, then one JSON line: {"windows": [...], "stability": {...}}.
    """
    settings = _settings(config)
    from rich.console import Console
    from rich.table import Table

    from leadscore.models.backtest import SUMMARY_METRICS

    try:
        table, summary = run_backtest(settings, windows)
    except ValueError as exc:
        if type(exc) is not ValueError:  # a ContractError and kin: their own exit code
            raise
        raise fail(str(exc), ExitCode.CONFIG) from exc
    view = Table(title="Backtest: model vs rules per validation window")
    view.add_column("valid window")
    view.add_column("n valid")
    for metric in SUMMARY_METRICS:
        view.add_column(f"{metric} model / rules")
    share = f"{settings.quality.confidence:.0%}"
    view.add_column(f"roc_auc margin [{share} over leads]")
    for row in table.to_dict(orient="records"):
        cells = [
            f"{str(row['valid_start'])[:10]} .. {str(row['valid_end'])[:10]}",
            str(row["n_valid"]),
        ]
        for metric in SUMMARY_METRICS:
            m, r = row.get(f"model_{metric}"), row.get(f"rules_{metric}")
            cells.append("-" if m is None or m != m else f"{m:.3f} / {r:.3f}")
        margin = row.get("margin_roc_auc")
        cells.append(
            "-"
            if margin is None or margin != margin
            else f"{margin:+.3f} [{row['margin_roc_auc_low']:+.3f}, "
            f"{row['margin_roc_auc_high']:+.3f}]"
        )
        view.add_row(*cells)
    Console().print(view)
    records = json.loads(table.to_json(orient="records"))
    typer.echo(json.dumps({"windows": records, "stability": summary}))
