"""One atomic file write: readers see the old file or the new one, never half of one.

Used by every file leadscore hands to someone else: the CSV and JSONL exports (a CRM job
may pick them up at any moment) and the HTML reports (a browser may be showing
``latest.html``).
"""

from __future__ import annotations

import os
import re
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

DEFAULT_MODE = 0o644
"""Permissions of a new file (temporary files start at 0600)."""


@contextmanager
def atomic_writer(path: Path, *, text: bool = False) -> Iterator[IO[Any]]:
    """Yield a handle on a temporary file that replaces ``path`` when the block ends.

    The temporary file lives in the target folder (created if needed), so the final
    ``os.replace`` is a rename on one file system. On a clean exit the data is flushed
    and synced (fsync) before the rename, so a crash right after cannot leave an empty
    file in place; an existing file's permissions are kept, a new file gets 0644. If the
    block raises, the temporary file is deleted and ``path`` is left untouched. ``text``
    opens the handle as UTF-8 text, else binary. The temporary file's name carries the
    writer's process id and host, so that what a killed writer left can be found
    (:func:`remove_orphans`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else DEFAULT_MODE
    fd, tmp_name = tempfile.mkstemp(prefix=_tmp_prefix(path), suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        handle = os.fdopen(fd, "w", encoding="utf-8") if text else os.fdopen(fd, "wb")
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: str | bytes) -> Path:
    """Write ``data`` (text as UTF-8) at ``path`` atomically; return ``path``."""
    with atomic_writer(path, text=isinstance(data, str)) as handle:
        handle.write(data)
    return Path(path)


def _tmp_prefix(path: Path) -> str:
    return f".{path.name}.{os.getpid()}@{socket.gethostname()}."


def remove_orphans(path: Path) -> list[Path]:
    """Delete the temporary files that writers of ``path`` killed mid-write left behind.

    Only files of this host whose process is gone are removed (a live writer's file, or
    one written from another machine to a shared folder, is left alone). Returns them.
    """
    path = Path(path)
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.(\d+)@(.+)\.[^.]+\.tmp$")
    host = socket.gethostname()
    removed: list[Path] = []
    if not path.parent.is_dir():
        return removed
    for candidate in path.parent.glob(f".{path.name}.*.tmp"):
        match = pattern.match(candidate.name)
        if match is None or match[2] != host or _alive(int(match[1])):
            continue
        candidate.unlink(missing_ok=True)
        removed.append(candidate)
    return removed


def _alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host (one of another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
