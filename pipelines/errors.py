"""The expected ways a command stops, each with its exit code and one line on stderr.

An *expected* failure is the user's data, config or state, not a bug in leadscore: a
file that breaks the contract, no open lead, no champion yet. The CLI
(``pipelines.cli``) prints its message as one line on stderr and exits with its code;
only ``leadscore --debug`` adds Prefect's run logs and the traceback. Anything else is
unexpected (exit 1, the traceback behind ``--debug`` too).

The exception classes are named by module path, not imported: ``leadscore --help`` must
not load Great Expectations or MLflow to know them (tests check every name resolves).
"""

from __future__ import annotations

import logging
import sys
import traceback
from enum import IntEnum
from typing import Any

import click
import typer
from typer.core import TyperGroup


class ExitCode(IntEnum):
    """What a `leadscore` exit status means (README, Commands)."""

    OK = 0
    UNEXPECTED = 1  # a bug: rerun with --debug for the traceback, and report it
    CONFIG = 2  # configuration or usage: bad settings file or key, bad option
    BAD_INPUT = 3  # the data: unreadable or empty file, missing column, too many bad rows
    NOTHING_TO_SCORE = 4  # no open lead to score, no current batch to export
    REGISTRY = 5  # the model registry refuses: no champion, no such version, no previous
    STORE = 6  # the store refuses: schema version, lost rows or leads; current batch kept


class NothingToScoreError(RuntimeError):
    """The data holds no open lead: a batch would replace the current one with nothing."""


class ConservationError(RuntimeError):
    """Scored + closed + quarantined leads do not add up to the leads in: not published."""


class RegistryError(LookupError):
    """The model registry has no such model version, champion or previous champion."""


EXPECTED: dict[str, ExitCode] = {
    "leadscore.pipelines.settings.SettingsError": ExitCode.CONFIG,
    "leadscore.features.validation.ContractError": ExitCode.BAD_INPUT,
    "leadscore.models.training.InsufficientDataError": ExitCode.BAD_INPUT,
    "leadscore.pipelines.errors.NothingToScoreError": ExitCode.NOTHING_TO_SCORE,
    "leadscore.pipelines.errors.RegistryError": ExitCode.REGISTRY,
    "leadscore.pipelines.errors.ConservationError": ExitCode.STORE,
    "leadscore.serving.store.migrate.StoreError": ExitCode.STORE,
}
"""Expected exception classes (by module path; subclasses included) -> exit code."""


def exit_code(exc: BaseException) -> ExitCode | None:
    """The exit code of an expected failure, or None for an unexpected one."""
    for cls in type(exc).__mro__:
        code = EXPECTED.get(f"{cls.__module__}.{cls.__qualname__}")
        if code is not None:
            return code
    return None


def one_line(text: str) -> str:
    """A message on one line: its lines joined, blank ones dropped."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def fail(message: str, code: ExitCode) -> typer.Exit:
    """Print ``message`` as one line on stderr; return the Exit to raise with ``code``."""
    sys.stderr.write(f"leadscore: {one_line(message)}\n")
    sys.stderr.flush()
    return typer.Exit(int(code))


class _ExpectedFailures(logging.Filter):
    """Drops Prefect's records about a run that failed in an expected way.

    Prefect logs a failed task or flow itself, with the traceback, then its final state;
    for an expected failure the CLI's one line says it all.
    """

    def __init__(self) -> None:
        super().__init__()
        self.names = {key.rsplit(".", 1)[1] for key in EXPECTED}  # and subclasses seen

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            if exit_code(record.exc_info[1]) is None:
                return True
            self.names.add(type(record.exc_info[1]).__name__)
            return False
        if record.levelno < logging.INFO:
            return True
        message = record.getMessage()
        if "Failed(" not in message and "exception" not in message:
            return True
        return not any(f"{name}:" in message or f"{name}(" in message for name in self.names)


RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs", "prefect.flow_engine", "prefect.engine")
"""Prefect's loggers that report a failed run (with its traceback)."""


def quiet_expected_failures() -> None:
    """Keep Prefect from logging expected failures (call once Prefect is imported)."""
    for name in RUN_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _ExpectedFailures) for f in logger.filters):
            logger.addFilter(_ExpectedFailures())


class CommandGroup(TyperGroup):
    """The `leadscore` group: an expected failure ends as one line and its exit code.

    Every command runs inside :meth:`invoke`, so each gets the same treatment; with
    ``--debug`` (``ctx.obj["debug"]``) the traceback is printed first (same exit code).
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:
            if (ctx.obj or {}).get("debug"):
                traceback.print_exc()
            code = exit_code(exc)
            if code is None:
                message = f"unexpected error {type(exc).__name__}: {exc} (rerun with --debug)"
                raise fail(message, ExitCode.UNEXPECTED) from exc
            raise fail(str(exc), code) from exc


MEANING: dict[ExitCode, str] = {
    ExitCode.OK: "",
    ExitCode.UNEXPECTED: " (a bug)",
    ExitCode.CONFIG: " (settings file or key, option)",
    ExitCode.BAD_INPUT: " (the data)",
    ExitCode.NOTHING_TO_SCORE: " (or export)",
    ExitCode.REGISTRY: " (champion, versions)",
    ExitCode.STORE: " (the current batch stays)",
}


def codes_help() -> str:
    """The exit codes, for `leadscore --help`."""
    codes = ", ".join(f"{int(c)} {c.name.lower().replace('_', ' ')}{MEANING[c]}" for c in ExitCode)
    return (
        f"An expected failure is one line on stderr; --debug adds Prefect's run logs and "
        f"the traceback. Exit codes: {codes}."
    )
