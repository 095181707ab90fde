"""No test depends on where the clone lives or what its folder is called.

The obvious name for a clone is ``leadscore``: the suite once decided "leads" against
"activities" from a file's whole path, and 13 tests failed in such a folder. This test
copies the project into a temporary folder named ``leadscore`` and runs, there, the tests
that read files relative to the project (the bad-input corpus, the shipped config, the
layout of the README).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

SKIP = {".git", ".venv", ".ci", "data", "mlruns", "mlartifacts", "reports", ".prefect"}
PATH_SENSITIVE_TESTS = [
    "tests/pipelines/test_bad_inputs.py",
    "tests/test_layout.py",
]
CASES = "activity or layout"
"""The corpus cases with activity rows (each read leads and activities from paths that,
in such a clone, both contain "leads"), and the layout test: enough to catch a path test."""


def _ignore(folder: str, names: list[str]) -> set[str]:
    top = Path(folder).resolve() == ROOT
    generated = {n for n in names if n == "__pycache__" or n.endswith(".db")}
    return generated | {n for n in names if top and (n in SKIP or n.startswith(".prefect"))}


@pytest.mark.slow
def test_the_suite_runs_from_a_clone_named_leadscore(tmp_path: Path) -> None:
    clone = tmp_path / "leadscore"
    shutil.copytree(ROOT, clone, ignore=_ignore)
    tests = [t for t in PATH_SENSITIVE_TESTS if (clone / t).is_file()]
    assert tests, "none of the path-sensitive tests exists any more: update this list"
    env = {**os.environ, "PREFECT_HOME": str(clone / ".prefect-test")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", CASES, *tests],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "failed" not in done.stdout
