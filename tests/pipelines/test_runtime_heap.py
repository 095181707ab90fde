"""``settle_heap``: what is alive is frozen out of later full collections, and cycles made
afterwards are still collected (no leak from freezing)."""

from __future__ import annotations

import gc
import weakref

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
