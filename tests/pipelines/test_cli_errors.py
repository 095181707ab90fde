"""Expected failures through the real `leadscore` command: one line on stderr, the
documented exit code, no traceback (unless --debug), and no Prefect server left behind.

The exit codes are `pipelines.errors.ExitCode`; README's Commands section and
`leadscore --help` list them.
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import psutil
import pytest
import yaml

from leadscore.pipelines.errors import EXPECTED, ExitCode, exit_code
from tests.conftest import ROOT

LEADSCORE = Path(sys.executable).with_name("leadscore")
CORPUS = ROOT / "tests" / "corpus"


RUN_MARK, RUN_ID = "LEADSCORE_TEST_CLI_RUN", uuid.uuid4().hex
"""Set in the environment of every `leadscore` this module starts, hence of the servers
those start: the leftover check sees only this session's, not another suite's on the host."""


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """`leadscore ARGS` as a user runs it (no Prefect server configured, default logging)."""
    env = {**os.environ, "LEADSCORE_CONFIG": "", RUN_MARK: RUN_ID}
    for key in ("PREFECT_API_URL", "PREFECT_LOGGING_LEVEL"):
        env.pop(key, None)
    return subprocess.run(
        [str(LEADSCORE), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def config_for(folder: Path, out: Path, **data: object) -> Path:
    """A settings file reading ``folder``'s leads.csv (and activities.csv if there)."""
    raw = yaml.safe_load((ROOT / "leadscore.yaml").read_text())
    acts = folder / "activities.csv"
    raw["data"]["leads"] = {"path": str(folder / "leads.csv")}
    raw["data"]["activities"] = {"path": str(acts)} if acts.is_file() else None
    raw["data"]["order"] = "none"
    raw["data"]["validation"] = {"ranges": {"employees": [0, 1e7]}}
    raw["data"].update(data)
    raw["features"]["attributes"] = {"categorical": ["industry"], "numeric": ["employees"]}
    raw.pop("routing")  # the demo team routes by country and segment
    raw["rules"]["icp"] = {"industry": {"weight": 1, "values": {"software": 10}}}
    raw["rules"]["penalties"] = []
    raw["output"] = {
        "scores_csv": str(out / "latest.csv"),
        "quarantine_csv": str(out / "quarantine.csv"),
        "report_dir": str(out / "reports"),
    }
    raw["store"] = {"url": f"sqlite:///{out / 'scores.db'}"}
    path = out / "leadscore.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def assert_one_line(result: subprocess.CompletedProcess, code: ExitCode, pattern: str) -> str:
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr[-3000:]
    assert result.returncode == code, (result.returncode, result.stderr)
    assert lines[0].startswith("leadscore: ")
    assert re.search(pattern, lines[0]), lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    return lines[0]


def no_server_of_ours_left() -> None:
    """No process started by a `leadscore` run (its temporary Prefect server) remains."""
    ours = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if "leadscore.pipelines.prefect_server" not in cmdline:
            continue
        try:
            mine = proc.environ().get(RUN_MARK) == RUN_ID
        except psutil.Error:  # gone meanwhile, or not ours to read
            continue
        if mine:
            ours.append((proc.info["pid"], cmdline))
    assert ours == []


def test_every_expected_error_class_exists():
    for name in EXPECTED:
        module, cls = name.rsplit(".", 1)
        error = getattr(importlib.import_module(module), cls)
        assert exit_code(error("x")) == EXPECTED[name]
    assert exit_code(KeyError("x")) is None  # a bug is not expected


def test_help_and_readme_document_every_exit_code():
    result = run_cli("--help")
    assert result.returncode == 0
    help_text = " ".join(result.stdout.split())
    readme = (ROOT / "README.md").read_text()
    commands = readme[readme.index("## Commands") : readme.index("## Configuration")]
    for code in ExitCode:
        assert f"{int(code)} {code.name.lower().replace('_', ' ')}" in help_text
        assert f"`{int(code)}` {code.name.lower().replace('_', ' ')}" in " ".join(commands.split())
    assert "--debug" in help_text and "--debug" in commands


def test_a_bad_config_key_is_one_line_exit_2(tmp_path: Path):
    config = config_for(CORPUS / "empty_file", tmp_path)
    raw = yaml.safe_load(config.read_text())
    raw["snapshots"]["horizon_dayz"] = 30
    config.write_text(yaml.safe_dump(raw))
    for command in ("train", "score", "export --out x.csv"):
        result = run_cli(*command.split(), "--config", str(config))
        assert_one_line(
            result, ExitCode.CONFIG, r"leadscore\.yaml: invalid settings: snapshots\.horizon_dayz"
        )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("case", "command", "pattern"),
    [
        ("empty_file", "score", r"empty_file/leads\.csv: no rows \(the file is empty\)"),
        ("too_many_bad_rows", "train", r"leads\.csv: 5 of 10 rows \(50%\) break the data contract"),
    ],
)
def test_bad_input_is_one_line_exit_3(tmp_path: Path, case: str, command: str, pattern: str):
    config = config_for(CORPUS / case, tmp_path)
    assert_one_line(run_cli(command, "--config", str(config)), ExitCode.BAD_INPUT, pattern)
    no_server_of_ours_left()


@pytest.mark.slow
def test_nothing_to_score_is_one_line_exit_4(tmp_path: Path):
    folder = tmp_path / "crm"
    folder.mkdir()
    (folder / "leads.csv").write_text(
        "lead_id,created_at,closed_at,status,industry,employees\n"
        "A1,2026-01-05,2026-02-01,converted,software,40\n"
        "A2,2026-01-06,2026-03-01,lost,retail,900\n"
    )
    config = config_for(folder, tmp_path)
    result = run_cli("score", "--config", str(config))
    assert_one_line(
        result,
        ExitCode.NOTHING_TO_SCORE,
        r"no open lead to score \(2 leads in: 2 closed, 0 quarantined\): every clean lead is "
        r"converted or lost; if some are still open, their status must read 'open' \(or map "
        r"your status column with data.outcome, listing its open values under "
        r"data.outcome.open\)\. Nothing was published and the current batch stays$",
    )
    assert not (tmp_path / "latest.csv").exists()
    no_server_of_ours_left()


@pytest.mark.slow
def test_debug_shows_the_traceback(tmp_path: Path):
    config = config_for(CORPUS / "empty_file", tmp_path)
    result = run_cli("--debug", "score", "--config", str(config))
    assert result.returncode == ExitCode.BAD_INPUT
    assert "Traceback (most recent call last)" in result.stderr
    assert "ContractError" in result.stderr and "no rows (the file is empty)" in result.stderr
    assert "Beginning flow run" in result.stderr  # and Prefect's run logs
    no_server_of_ours_left()


def test_a_refusal_inside_a_command_keeps_its_code(tmp_path: Path):
    """A command's own one-line refusal (`fail`) exits with its code, not as unexpected."""
    result = run_cli("export", "--format", "xml", "--out", str(tmp_path / "x.csv"))
    assert_one_line(
        result, ExitCode.CONFIG, r"--format must be csv or jsonl \(with --out\), not 'xml'"
    )
    config = config_for(CORPUS / "empty_file", tmp_path)
    result = run_cli("export", "--out", str(tmp_path / "x.csv"), "--config", str(config))
    assert_one_line(result, ExitCode.NOTHING_TO_SCORE, r"no scoring batch")


def test_nothing_to_score_says_what_to_map(tmp_path: Path):
    from leadscore.pipelines.score_flow import nothing_to_score
    from leadscore.pipelines.settings import load_settings

    config = config_for(CORPUS / "empty_file", tmp_path)
    raw = yaml.safe_load(config.read_text())
    raw["data"]["outcome"] = {"column": "Converted", "converted": [1], "lost": [0]}
    config.write_text(yaml.safe_dump(raw))
    message = nothing_to_score(load_settings(config), 5, 4, 1)
    assert message == (
        f"{CORPUS / 'empty_file' / 'leads.csv'}: no open lead to score (5 leads in: 4 closed, "
        "1 quarantined): every clean lead is converted or lost; if some are still open, list "
        f"their Converted values under data.outcome.open; the 1 quarantined are in "
        f"{tmp_path / 'quarantine.csv'}. Nothing was published and the current batch stays"
    )
    raw["data"]["outcome"]["open"] = ["working"]
    config.write_text(yaml.safe_dump(raw))
    message = nothing_to_score(load_settings(config), 4, 4, 0)
    assert "converted or lost; no row's Converted is one of data.outcome.open ['working']: " in (
        message
    )
