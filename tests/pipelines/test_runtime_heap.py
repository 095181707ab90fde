"""``settle_heap``: what is alive is frozen out of later full collections, and cycles made
afterwards are still collected (no leak from freezing)."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import weakref

import pyarrow as pa

from leadscore.pipelines.runtime import release_free_memory, settle_heap


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_settle_heap_freezes_what_is_alive_and_later_cycles_are_still_freed() -> None:
    before = gc.get_freeze_count()
    try:
        kept = [_Node() for _ in range(100)]
        settle_heap()
        assert gc.get_freeze_count() >= before + len(kept)
        walked = gc.get_objects()  # what a full collection still walks
        assert not any(obj is kept[0] for obj in walked)
        del walked
        a, b = _Node(), _Node()
        a.other, b.other = b, a  # a cycle made after the freeze
        gone = weakref.ref(a)
        del a, b
        release_free_memory()  # the full collection each partition ends with
        assert gone() is None
    finally:
        gc.unfreeze()


def _pool_in_child(environment: dict[str, str]) -> tuple[str, str, str]:
    """(pool in use, pool of a buffer made afterwards, the variable a child would see),
    from a fresh interpreter: the allocator is process-wide state."""
    code = (
        "import os, pyarrow as pa\n"
        "from leadscore.pipelines.runtime import arrow_pool\n"
        "name = arrow_pool()\n"
        "buffer = pa.array(list(range(1000)))\n"
        "print(name, pa.default_memory_pool().backend_name, "
        "os.environ['ARROW_DEFAULT_MEMORY_POOL'])\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    done = subprocess.run(
        [sys.executable, "-c", code], env={**env, **environment}, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    a, b, c = done.stdout.split()
    return a, b, c


def test_arrow_pool_is_jemalloc_unless_the_environment_names_another() -> None:
    """The nightly run's Arrow allocator (``runtime.arrow_pool``): jemalloc by default,
    handed down to child processes through ``ARROW_DEFAULT_MEMORY_POOL``; a user's own
    choice wins; a name Arrow does not know leaves Arrow's default."""
    assert pa.jemalloc_memory_pool().backend_name == "jemalloc"  # this build has it
    assert _pool_in_child({}) == ("jemalloc", "jemalloc", "jemalloc")
    assert _pool_in_child({"ARROW_DEFAULT_MEMORY_POOL": "system"}) == ("system",) * 3
    name, _, variable = _pool_in_child({"ARROW_DEFAULT_MEMORY_POOL": "nonsense"})
    assert variable == "nonsense" and name in {"mimalloc", "jemalloc", "system"}
