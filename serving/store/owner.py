"""Who is writing: this machine and process, and whether a recorded writer still lives.

A run killed with SIGKILL cleans up nothing: its store batch stays ``writing`` and its
spill folder stays on disk. Both record their writer (host name and pid), so the next
run on the same host can tell a dead run's leftovers from a live run's work and remove
them at once. A writer on another host cannot be checked from here; its leftovers wait
for ``store.stale_writing_hours``. A reused pid makes a dead writer look alive, never
the reverse: the worst case is the old wait, not the removal of a live run's work.
"""

from __future__ import annotations

import os
import socket
from functools import cache
from pathlib import Path


@cache
def this_host() -> str:
    """This machine's name as the store records it (at most 255 characters)."""
    return socket.gethostname()[:255]


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine and is not a zombie (exited)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:
        state = stat.read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (not Linux): kill(0) said it exists
    return state not in ("Z", "X")


def writer_dead(host: str | None, pid: int | None, here: str | None = None) -> bool:
    """Whether a writer recorded as (``host``, ``pid``) is known to be dead (``here``:
    this host's name as recorded, by default :func:`this_host`)."""
    return host == (here or this_host()) and pid is not None and not pid_alive(pid)
