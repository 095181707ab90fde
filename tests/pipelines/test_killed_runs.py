"""`kill -9` of `leadscore score` and `leadscore train` at several points leaves nothing
behind, and the next run cleans what a dead run could not.

Each trial starts the real command in its own session on a small synthetic CRM (its own
config folder: store, MLflow, spill folder), watches its descendants (the temporary
Prefect server, ``pipelines.prefect_server``) and the ports they listen on, and SIGKILLs
only the CLI's process at a point: after a fixed time, once its server is up, once its
spill folder exists, or while its store batch is ``writing`` (mid-insert). Then:

* every process the CLI started is gone within a few seconds, and no port they listened
  on is still listening (Prefect's own temporary server used to live on, ~236 MB);
* the next `leadscore score` succeeds, and afterwards no spill folder of a dead run and
  no ``writing`` batch remain, and exactly one batch is published.

The trial counts are printed (and recorded as a property).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
import yaml

from tests.conftest import ROOT
from tests.pipelines.test_cli_errors import LEADSCORE

pytestmark = pytest.mark.slow

N_LEADS = 4000


def _env() -> dict[str, str]:
    env = {**os.environ, "LEADSCORE_CONFIG": ""}
    for key in ("PREFECT_API_URL", "PREFECT_LOGGING_LEVEL"):
        env.pop(key, None)
    return env


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A config folder with a synthetic CRM and a trained champion."""
    folder = tmp_path_factory.mktemp("killed")
    raw = yaml.safe_load((ROOT / "leadscore.yaml").read_text())
    raw["runner"]["spill_dir"] = "spill"
    raw["scoring"]["partition_rows"] = 500
    raw["store"]["chunk_rows"] = 50  # a slow publish: a kill lands mid-insert
    raw["quality"]["resamples"] = 20
    (folder / "leadscore.yaml").write_text(yaml.safe_dump(raw))
    for args in (("generate", "--leads", str(N_LEADS), "--seed", "3"), ("train", "--force")):
        _run_to_end(folder, *args)
    return folder


def _run_to_end(folder: Path, *args: str) -> None:
    """`leadscore ARGS --config folder/leadscore.yaml`, which must succeed."""
    done = subprocess.run(
        [str(LEADSCORE), *args, "--config", str(folder / "leadscore.yaml")],
        cwd=folder,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]


def _store_writing(folder: Path) -> bool:
    """Whether the project's store holds a batch being written."""
    db = folder / "data" / "scores.db"
    if not db.is_file():
        return False
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.2)) as c:
            return bool(c.execute("SELECT 1 FROM batches WHERE status = 'writing'").fetchone())
    except sqlite3.Error:
        return False


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


class Trial:
    """One CLI run, killed with SIGKILL when ``when`` says so (or after ``deadline`` s)."""

    def __init__(self, folder: Path, command: str) -> None:
        self.folder = folder
        self.proc = subprocess.Popen(
            [str(LEADSCORE), command, "--config", str(folder / "leadscore.yaml")],
            cwd=folder,
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: nothing else gets our signal
        )
        self.started = time.monotonic()
        self.children: dict[int, psutil.Process] = {}
        self.ports: set[int] = set()

    def watch(self) -> None:
        """Record the CLI's descendants and the ports they listen on."""
        with contextlib.suppress(psutil.Error):
            for child in psutil.Process(self.proc.pid).children(recursive=True):
                self.children.setdefault(child.pid, child)
                with contextlib.suppress(psutil.Error):
                    for conn in child.net_connections(kind="tcp"):
                        if conn.status == psutil.CONN_LISTEN:
                            self.ports.add(conn.laddr.port)

    def spill_folders(self) -> list[Path]:
        """This run's spill folders (named by its pid, ``pipelines.spill``)."""
        return list((self.folder / "spill").glob(f"leadscore-*-{self.proc.pid}-*"))

    def server_up(self) -> bool:
        return bool(self.ports)

    def run_until(self, when: Callable[[Trial], bool], deadline: float = 120) -> str:
        """Kill the CLI once ``when(self)`` holds; say what happened."""
        while time.monotonic() - self.started < deadline:
            self.watch()
            if self.proc.poll() is not None:
                return f"finished ({self.proc.returncode}) before the kill point"
            if when(self):
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(30)
                return f"killed after {time.monotonic() - self.started:.1f}s"
            time.sleep(0.05)
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)
        return "killed at the deadline"

    def leftovers(self, grace: float = 10) -> tuple[list[int], set[int]]:
        """Processes the CLI started that still live, and their ports still listening."""
        end = time.monotonic() + grace
        while time.monotonic() < end:
            alive = [pid for pid in self.children if _alive(pid)]
            listening = {
                c.laddr.port
                for c in psutil.net_connections(kind="tcp")
                if c.status == psutil.CONN_LISTEN and c.laddr.port in self.ports
            }
            if not alive and not listening:
                break
            time.sleep(0.2)
        return alive, listening

    def cleanup(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        for child in self.children.values():
            with contextlib.suppress(psutil.Error):
                child.kill()


def after(seconds: float) -> Callable[[Trial], bool]:
    return lambda t: time.monotonic() - t.started >= seconds


KILL_POINTS: list[tuple[str, str, Callable[[Trial], bool]]] = [
    ("score", "after 1 s", after(1)),
    ("score", "after 3 s", after(3)),
    ("score", "once its server is up", Trial.server_up),
    ("score", "once its spill folder exists", lambda t: any(t.spill_folders())),
    ("score", "mid-insert (batch writing)", lambda t: _store_writing(t.folder)),
    ("score", "after 6 s", after(6)),
    ("train", "after 4 s", after(4)),
    ("train", "once its server is up (+2 s)", lambda t: t.server_up() and after(2)(t)),
]


def test_kill_9_at_any_point_leaves_nothing_behind(project: Path, record_property):
    results = []
    for command, point, when in KILL_POINTS:
        trial = Trial(project, command)
        try:
            what = trial.run_until(when)
            alive, listening = trial.leftovers()
        finally:
            trial.cleanup()
        results.append((command, point, what, len(trial.children), alive, listening))
        assert alive == [], (command, point, what)
        assert listening == set(), (command, point, what)
    killed = [r for r in results if r[2].startswith("killed")]
    with_server = [r for r in killed if r[3] > 0]
    # the dead runs left spill folders and a half-written batch ...
    assert list((project / "spill").glob("leadscore-*")) != []
    assert _store_writing(project)
    # ... which the next run, which succeeds, removes
    _run_to_end(project, "score")
    assert list((project / "spill").glob("leadscore-*")) == []
    with contextlib.closing(sqlite3.connect(project / "data" / "scores.db")) as db:
        statuses = [s for (s,) in db.execute("SELECT status FROM batches")]
    assert "writing" not in statuses and statuses.count("published") == 1
    lines = "\n".join(
        f"  {c} killed {p}: {w}; {n} child processes, none left" for c, p, w, n, _, _ in results
    )
    print(f"\n{len(killed)}/{len(results)} kill points reached, all clean:\n{lines}")
    record_property("kill_points", len(results))
    record_property("killed", len(killed))
    assert len(killed) >= 6 and len(with_server) >= 4  # kills did land while a server ran
    assert any("mid-insert" in p for _, p, w, *_ in killed if w.startswith("killed"))
