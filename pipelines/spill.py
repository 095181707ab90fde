"""The score flow's temporary folders, named by their run so the next run can reap them.

A folder is ``leadscore-<host>-<pid>-<random>`` under ``runner.spill_dir`` (or the
system's temporary folder) and is removed when the run ends. A run killed with SIGKILL
removes nothing, so every new run first removes the folders whose run on this host is
dead (``serving.store.owner``); folders of live runs and of other hosts are left alone.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from leadscore.serving.store.owner import this_host, writer_dead

log = logging.getLogger(__name__)

PREFIX = "leadscore-"
_NAME = re.compile(r"^leadscore-(?P<host>.+)-(?P<pid>\d+)-[^-]+$")


def _safe(host: str) -> str:
    """The host name as it goes into a folder name (no separators)."""
    return re.sub(r"[^A-Za-z0-9.]", "_", host)


def reap_dead_folders(root: Path) -> list[Path]:
    """Remove the spill folders under ``root`` left by dead runs on this host."""
    removed = []
    host = _safe(this_host())
    for folder in root.glob(f"{PREFIX}*"):
        match = _NAME.match(folder.name)
        if match is None or not folder.is_dir():
            continue
        if writer_dead(match["host"], int(match["pid"]), here=host):
            shutil.rmtree(folder, ignore_errors=True)
            log.warning("removed %s, left by a dead run", folder)
            removed.append(folder)
    return removed


@contextmanager
def spill_folder(root: Path | None) -> Iterator[Path]:
    """A fresh folder under ``root`` (None: the system's temporary folder), removed after.

    Dead runs' folders under the same root are removed first.
    """
    base = Path(root) if root is not None else Path(tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    reap_dead_folders(base)
    prefix = f"{PREFIX}{_safe(this_host())}-{os.getpid()}-"
    with tempfile.TemporaryDirectory(prefix=prefix, dir=base) as folder:
        yield Path(folder)
