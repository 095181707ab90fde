"""The bad-input corpus through the real CLI: `leadscore score` meets each declared outcome.

Every load-stage case of tests/corpus runs `leadscore score` over its files (the nightly
path: leads checked whole or in chunks, the activity log chunk by chunk) with a config
whose store, tracking and outputs live in a temporary folder, so no champion exists:

- a case that declares an error must stop with a non-zero exit code and print that
  message (the one line H8's CLI prints; tracebacks are not judged here);
- a case that declares a quarantine must write exactly that quarantine file before the
  run stops for want of a champion (it got past reading, with nothing lost).

Two run as real subprocesses of the installed ``leadscore`` console script (about
a minute and a half each, mostly a temporary Prefect server); every case runs through
the same typer app in one further process, one case after another.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.pipelines.test_bad_inputs import CASES, CORPUS, case_config

NOW = "2026-11-22T00:00:00Z"
MODULE = "leadscore.pipelines.cli"
LOAD_CASES = [
    name
    for name in CASES
    if yaml.safe_load((CORPUS / name / "case.yaml").read_text(encoding="utf-8"))["stage"] == "load"
]
SUBPROCESS_CASES = ["mixed_date_order", "mixed_encoding"]
"""Two cases through the installed console script (~20 s each: a temporary Prefect server
per process); every case runs through the typer app below, with one server for all."""


def _config(name: str, tmp: Path, tracking: Path | None = None) -> tuple[Path, dict, Path]:
    """A config file over the case's files writing only into ``tmp``; (path, spec, quarantine).

    ``tracking``: the folder of the MLflow store (default ``tmp``). The cases of one
    process share one: it never gets a champion, and a new MLflow SQLite store costs 2-3 s
    of schema migrations, which is what the typer-app cases spent most of their time on.
    """
    tracking = tracking or tmp
    folder = CORPUS / name
    spec = yaml.safe_load((folder / "case.yaml").read_text(encoding="utf-8"))
    raw = case_config(folder, spec)
    raw["data"]["as_of"] = NOW
    quarantine = tmp / "quarantine.csv"
    raw["output"] |= {
        "scores_csv": str(tmp / "latest.csv"),
        "quarantine_csv": str(quarantine),
        "report_dir": str(tmp / "reports"),
    }
    raw["store"]["url"] = f"sqlite:///{tmp}/scores.db"
    raw["tracking"] |= {
        "tracking_uri": f"sqlite:///{tracking}/mlflow.db",
        "artifact_location": str(tracking / "mlartifacts"),
    }
    raw["runner"]["spill_dir"] = str(tmp / "spill")
    path = tmp / "leadscore.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path, spec, quarantine


def _flat(text: str) -> str:
    """Output with line wrapping undone (a console wraps long messages at its width)."""
    return " ".join(text.split())


def _judge(spec: dict, exit_code: int, output: str, quarantine: Path) -> None:
    expect = spec["expect"]
    assert exit_code != 0, output[-2000:]
    if "error" in expect:
        pattern = _flat(expect["error"])
        assert re.search(pattern, _flat(output)), (pattern, output[-3000:])
        return
    assert "run `leadscore train` first" in _flat(output), output[-3000:]
    written = pd.read_csv(quarantine, dtype=str, keep_default_na=False)
    got = [
        ["leads" if Path(s).name.startswith("leads") else "activities", int(r), reason]
        for s, r, reason in written[["source", "row", "reason"]].itertuples(index=False)
    ]
    assert sorted(got) == sorted(expect["quarantine"])


@pytest.mark.slow
@pytest.mark.parametrize("name", SUBPROCESS_CASES)
def test_corpus_case_through_the_cli_in_a_subprocess(name: str, tmp_path: Path):
    config, spec, quarantine = _config(name, tmp_path)
    env = os.environ | {"PREFECT_HOME": str(tmp_path / "prefect"), "COLUMNS": "200"}
    script = Path(sys.executable).with_name("leadscore")  # the installed console script
    command = [str(script)] if script.is_file() else [sys.executable, "-m", MODULE]
    run = subprocess.run(
        [*command, "score", "-c", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    _judge(spec, run.returncode, run.stdout + run.stderr, quarantine)


DRIVER = """
import json, os, sys, tempfile
from pathlib import Path
from leadscore.pipelines.cli import app
from leadscore.pipelines.prefect_server import temporary_server
server = temporary_server()  # one temporary Prefect server for every case, as `demo` shares one
server.__enter__()
for config, log in zip(sys.argv[1::2], sys.argv[2::2]):
    saved = os.dup(1), os.dup(2)
    with open(log, "w") as out:
        os.dup2(out.fileno(), 1); os.dup2(out.fileno(), 2)
        try:
            code, raised = app(["score", "-c", config], standalone_mode=False) or 0, ""
        except Exception as exc:
            code, raised = 1, str(exc)
        sys.stdout.flush(); sys.stderr.flush()
        os.dup2(saved[0], 1); os.dup2(saved[1], 2)
    Path(log + ".json").write_text(json.dumps({"code": int(code), "raised": raised}))
server.__exit__(None, None, None)
"""


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory) -> dict[str, tuple[dict, int, str, Path]]:
    """Every load-stage case through the real typer app, in ONE process (imports and the
    temporary Prefect server once), each case's output captured at the file descriptors."""
    root = tmp_path_factory.mktemp("corpus-cli")
    plans, args = {}, []
    for name in LOAD_CASES:
        folder = root / name
        folder.mkdir()
        config, spec, quarantine = _config(name, folder, tracking=root)
        log = folder / "output.txt"
        plans[name] = (spec, log, quarantine)
        args += [str(config), str(log)]
    env = os.environ | {"PREFECT_HOME": str(root / "prefect"), "COLUMNS": "200"}
    subprocess.run([sys.executable, "-c", DRIVER, *args], env=env, timeout=3000, check=True)
    results = {}
    for name, (spec, log, quarantine) in plans.items():
        outcome = json.loads(Path(f"{log}.json").read_text())
        output = log.read_text(errors="replace") + outcome["raised"]
        results[name] = (spec, outcome["code"], output, quarantine)
    return results


@pytest.mark.slow
@pytest.mark.parametrize("name", LOAD_CASES)
def test_corpus_case_through_the_cli_app(name: str, corpus_run):
    """The real typer app: its exit code, its output and, while an expected failure still
    ends in an exception, that exception's message."""
    spec, code, output, quarantine = corpus_run[name]
    _judge(spec, code, output, quarantine)
