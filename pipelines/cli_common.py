"""What every `leadscore` command shares: the config option, loading the settings, the
stderr console and the temporary Prefect server flows run on.

Kept apart from `pipelines/cli.py` so command groups in their own modules
(`cli_backtest.py`, ...) use them without importing the main app (no cycle).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from leadscore.pipelines.errors import quiet_expected_failures

if TYPE_CHECKING:  # imported where used: `leadscore --help` loads neither (bench/cli_start.py)
    from rich.console import Console

    from leadscore.pipelines.settings import Settings


def console() -> Console:
    """A console on the current stderr (made per call: the stream may have been swapped)."""
    from rich.console import Console

    return Console(stderr=True)


ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="Settings file (default: $LEADSCORE_CONFIG or ./leadscore.yaml)."
    ),
]
FullFlag = Annotated[bool, typer.Option("--full", help="Judge mature batches again (CRM fixes).")]


def _settings(config: Path | None) -> Settings:
    from leadscore.pipelines.settings import load_settings

    settings = load_settings(config)  # a SettingsError exits 2 (pipelines.errors)
    from leadscore.pipelines.runtime import prepare_environment

    prepare_environment(settings)
    return settings


def _config_arg(settings: Settings, config: Path | None) -> str | None:
    return str(config.resolve()) if config else None


@contextmanager
def flow_runs() -> Iterator[None]:
    """Run Prefect flows on a temporary server that dies with this process (even on
    kill -9), with Prefect's own report of an expected failure silenced."""
    from leadscore.pipelines.prefect_server import temporary_server

    with temporary_server():
        import prefect  # noqa: F401  (configures its loggers, which the filter joins)

        quiet_expected_failures()
        yield
