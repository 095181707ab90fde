"""Process environment for the stack, set before prefect, mlflow or shap are imported.

Defaults only (``setdefault``): a user's own environment always wins. Keeps Prefect's
local state and matplotlib's cache inside the project, gives Prefect's temporary server
time to start on a small machine, and turns telemetry off.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
from functools import cache

import pyarrow as pa

from leadscore.pipelines.settings import Settings

EPHEMERAL_STARTUP_TIMEOUT_S = "90"

ARROW_POOL = "jemalloc"
"""Arrow's allocator for the nightly run, unless ``ARROW_DEFAULT_MEMORY_POOL`` says
otherwise. Measured at 1M leads (``make bench``, the same machine one run after the
other): peak 1,519 MB with Arrow's default (mimalloc), 1,377 with the system allocator,
1,300 with jemalloc; total 47.7 / 52.2 / 46.5 s. mimalloc keeps pages per thread, and a
run's Arrow buffers are freed by other threads (the publisher's, the export's) than
the ones that made them, which ``release_unused`` does not reach."""


def prepare_environment(settings: Settings) -> None:
    home = settings.prefect.home
    defaults = {
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": EPHEMERAL_STARTUP_TIMEOUT_S,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "INFO",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MPLCONFIGDIR": str(home.parent / ".mplconfig"),
        "GX_ANALYTICS_ENABLED": "false",
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)


def arrow_pool() -> str:
    """Make :data:`ARROW_POOL` (or ``ARROW_DEFAULT_MEMORY_POOL``, if set) Arrow's default
    allocator in this process and in the processes it starts (the SQLite writer, a local
    Dask cluster's workers: they read the variable); return the allocator in use. Where
    Arrow was built without it, Arrow's own default stays."""
    name = os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", ARROW_POOL)
    pools = {
        "jemalloc": pa.jemalloc_memory_pool,
        "mimalloc": pa.mimalloc_memory_pool,
        "system": pa.system_memory_pool,
    }
    with contextlib.suppress(KeyError, NotImplementedError):
        pa.set_memory_pool(pools[name]())
    return pa.default_memory_pool().backend_name


def settle_heap() -> None:
    """Collect once, then leave every object alive now (modules, the model, settings, the
    checked input's lookups) out of the cyclic collector's later full passes.

    Called once before the partitions are scored: each partition ends with a full
    collection (:func:`release_free_memory`), which otherwise walks the ~0.45M objects
    that imports and setup leave (~0.25 s each, ~2 s at 1M leads); frozen, they are no
    longer walked. Objects frozen here are freed as usual when their last reference goes.
    """
    gc.collect()
    gc.freeze()


def release_free_memory(collect: bool = True) -> None:
    """Hand memory the process has freed back to the system, between large steps.

    Great Expectations leaves each validated chunk's frame in reference cycles that only a
    full collection frees, and Arrow's allocator (mimalloc) and glibc's keep freed pages
    for reuse: across the chunks of a large activity log, resident memory grew with the
    log (measured at 1M leads: 2.5 GB resident for 0.7 GB live). Collecting and releasing
    after each chunk keeps the resident size, and the peak, at what one chunk needs.
    ``collect=False`` skips the full collection (a second or more on a loaded heap) where
    no GX result was made: the nightly pass checks its chunks as column masks.
    """
    if collect:
        gc.collect()  # GX's result objects hold each chunk's frame in reference cycles
    pa.default_memory_pool().release_unused()
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


@cache
def _libc() -> ctypes.CDLL | None:
    """glibc, whose ``malloc_trim`` returns freed heap pages (None elsewhere)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") else None
