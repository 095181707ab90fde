"""CLI start time: how long `leadscore --help` and loading the settings module take.

Why: every command starts by importing the CLI and the settings; when they pulled in
FastAPI (through the API's config), pandas and Rich up front, `leadscore --help` took
1-3 s. The commands now import what they need inside, and the settings import no web
framework, tracking server or orchestrator. Target: `leadscore --help` under 0.5 s.

Each figure is the median of ``--runs`` fresh processes (a warm file cache: one unmeasured
run first), so it counts the interpreter's start as a user waits for it:
- ``help_s``: wall time of the `leadscore --help` subprocess, start to exit;
- ``settings_import_s``: ``import leadscore.pipelines.settings`` timed inside a fresh
  interpreter (the import alone, without the interpreter's start).

Run: ``python -m bench.cli_start [--runs N]``; prints two lines for people, then on its
LAST line one JSON object: ``{"runs", "help_s", "settings_import_s", "target_s",
"help_over_target"}``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_S = 0.5
"""`leadscore --help` should answer within this many seconds (issue #13)."""

_TIME_SETTINGS_IMPORT = (
    "import time; start = time.perf_counter(); import leadscore.pipelines.settings; "
    "print(time.perf_counter() - start)"
)


def help_command() -> list[str]:
    """The installed `leadscore` script next to this interpreter, else the module."""
    script = Path(sys.executable).with_name("leadscore")
    if script.is_file():
        return [str(script), "--help"]
    return [sys.executable, "-m", "leadscore.pipelines.cli", "--help"]


def help_seconds() -> float:
    """Wall time of one `leadscore --help` process."""
    start = time.perf_counter()
    subprocess.run(help_command(), check=True, capture_output=True)
    return time.perf_counter() - start


def settings_import_seconds() -> float:
    """Time to import the settings module in one fresh interpreter."""
    out = subprocess.run(
        [sys.executable, "-c", _TIME_SETTINGS_IMPORT], check=True, capture_output=True, text=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def measure(runs: int) -> dict[str, float | int]:
    """Median of ``runs`` measurements of each figure, after one warm-up run of each."""
    help_seconds(), settings_import_seconds()  # warm the file cache
    help_s = statistics.median(help_seconds() for _ in range(runs))
    settings_s = statistics.median(settings_import_seconds() for _ in range(runs))
    return {
        "runs": runs,
        "help_s": round(help_s, 4),
        "settings_import_s": round(settings_s, 4),
        "target_s": TARGET_S,
        "help_over_target": round(help_s / TARGET_S, 3),
    }


def main(argv: list[str] | None = None) -> None:
    """Measure, print the figures for people, then the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=9, help="processes per figure (median)")
    args = parser.parse_args(argv)
    result = measure(max(1, args.runs))
    print(
        f"leadscore --help: {result['help_s']:.3f} s (median of {result['runs']}), "
        f"{result['help_over_target']:.2f} x the {TARGET_S} s target"
    )
    print(f"import leadscore.pipelines.settings: {result['settings_import_s']:.3f} s")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
