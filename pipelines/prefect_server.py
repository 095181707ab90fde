"""The temporary Prefect server of one CLI run, which dies with the run, even on kill -9.

With ``PREFECT_API_URL`` unset, Prefect starts a temporary API server as a child process
and stops it at exit; a CLI killed with SIGKILL runs no exit handler, so the server
lived on (~236 MB and an open port) for as long as the machine. :func:`temporary_server`
starts that server itself, the same way (Prefect's app factory under uvicorn, UI off,
ephemeral mode), points ``PREFECT_API_URL`` at it for the run and stops it afterwards.
The server process (``python -m leadscore.pipelines.prefect_server PARENT_PID PORT``)
asks Linux to SIGKILL it when its parent dies (``prctl(PR_SET_PDEATHSIG)``, called in
the server, whose parent is the CLI's main thread, which lives until the CLI ends) and
also checks its parent pid twice a second, so it exits within a second of its CLI
anywhere. A user's own ``PREFECT_API_URL`` is used as it is.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

MARKER_ENV = "LEADSCORE_PREFECT_SERVER_OF"
"""Set in the server's environment to the CLI's pid (tests find our servers by it)."""
PR_SET_PDEATHSIG = 1
STARTUP_TIMEOUT_ENV = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"


def _free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _healthy(url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _start(port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PREFECT_UI_ENABLED": "0",
        "PREFECT__SERVER_EPHEMERAL": "1",
        "PREFECT__SERVER_FINAL": "1",
        MARKER_ENV: str(os.getpid()),
    }
    env.pop("PREFECT_API_URL", None)
    command = [sys.executable, "-m", __name__, str(os.getpid()), str(port)]
    return subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL)


_STARTED: set[str] = set()
"""URLs of the temporary servers this process started (and stopped): Prefect, once
imported, keeps the first one in its settings, which must not pass for a server given
from elsewhere when a second command runs in the same process."""


def _configured_elsewhere() -> bool:
    """A server is already given: ``PREFECT_API_URL``, or Prefect's settings (a test harness)."""
    if os.environ.get("PREFECT_API_URL"):
        return True
    if "prefect" in sys.modules:
        from prefect.settings import get_current_settings

        url = get_current_settings().api.url
        return bool(url) and url not in _STARTED
    return False


@contextlib.contextmanager
def temporary_server() -> Iterator[str | None]:
    """Run the body against a temporary Prefect server that dies with this process.

    Call it before Prefect is imported: the URL goes into the environment, which Prefect
    reads once. Yields the API URL, or None when a server is configured already.
    """
    if _configured_elsewhere():
        yield None
        return
    timeout = float(os.environ.get(STARTUP_TIMEOUT_ENV, "90"))
    process, url = None, ""
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process is None or process.poll() is not None:  # first start, or port taken
                port = _free_port()
                process, url = _start(port), f"http://127.0.0.1:{port}/api"
            if _healthy(url):
                break
            time.sleep(0.2)
        else:
            raise RuntimeError(f"the temporary Prefect server did not start in {timeout:.0f}s")
        os.environ["PREFECT_API_URL"] = url
        _STARTED.add(url)
        try:
            with _settings_of_imported_prefect(url):
                yield url
        finally:
            os.environ.pop("PREFECT_API_URL", None)
    finally:
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _settings_of_imported_prefect(url: str) -> contextlib.AbstractContextManager[object]:
    """Prefect reads the environment when imported; if it was already, tell its settings."""
    if "prefect" not in sys.modules:
        return contextlib.nullcontext()
    from prefect.settings import PREFECT_API_URL, temporary_settings

    return temporary_settings(updates={PREFECT_API_URL: url})


def _die_with(parent: int) -> None:
    """Exit when ``parent`` is gone: PDEATHSIG on Linux, and a poll of our parent pid."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died before prctl took effect
        os._exit(0)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main(argv: list[str]) -> None:
    """Server process: ``PARENT_PID PORT``; serve Prefect's API until the parent is gone."""
    parent, port = int(argv[0]), int(argv[1])
    _die_with(parent)
    import prefect
    import uvicorn

    uvicorn.run(
        "prefect.server.api.server:create_app",
        factory=True,
        app_dir=str(Path(prefect.__file__).parent.parent),
        host="127.0.0.1",
        port=port,
        log_level="error",
        lifespan="on",
    )


if __name__ == "__main__":
    main(sys.argv[1:])
