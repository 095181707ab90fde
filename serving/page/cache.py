"""Answers computed over the current batch, kept until the next batch is published.

A published batch never changes, so its counts (totals, leads per grade, the quadrant,
the change feed's summary) and its filter choices are the same for every request that
asks the same question: computed once, they are served from memory while paging and
sorting, and dropped as soon as a request reads a newer batch. At most ``size`` answers
are kept (the least recently used go first).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any


class BatchCache:
    """A small LRU of answers about one batch; another batch id empties it."""

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._batch: str | None = None
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, batch_id: str, key: Hashable, compute: Callable[[], Any]) -> Any:
        """The answer to ``key`` about batch ``batch_id``, computed on the first ask."""
        with self._lock:
            if batch_id != self._batch:
                self._items.clear()
                self._batch = batch_id
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = compute()  # outside the lock: a slow count does not hold up other pages
        with self._lock:
            if batch_id == self._batch:
                self._items[key] = value
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
        return value
