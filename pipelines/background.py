"""Reads and writes of the nightly pass done in a thread, beside the checks.

The pass over the activity log reads a chunk (Arrow decodes it, without the GIL), checks
it (NumPy and pandas, in this thread), then appends its rows to the partition files
(Arrow writes them, without the GIL). One after the other, one core waits while the
other works; :func:`prefetched` reads the next chunk while this one is checked, and
:class:`InOrder` appends a checked chunk while the next is read and checked. Each holds
at most one chunk more than the plain loop, and raises its thread's error (the same
exception, e.g. a reader's error naming the file) in the caller.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any, TypeVar

T = TypeVar("T")

_POLL_S = 0.1


def prefetched(items: Iterable[T]) -> Iterator[T]:
    """``items``, read one ahead in a thread (the iteration itself runs there).

    The caller may stop early (an error while checking a chunk): the thread then stops
    at its next item and closes ``items``, so a reader's file or connection is let go.
    """
    handoff: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def offer(message: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                handoff.put(message, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        source = iter(items)
        try:
            for item in source:
                if not offer(("item", item)):
                    return
            offer(("end", None))
        except BaseException as exc:  # raised in the caller, as the plain loop would
            offer(("error", exc))
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = handoff.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        thread.join()


class InOrder:
    """Calls run one at a time in a thread, in the order given; :meth:`submit` waits for
    the previous call first (so at most one is pending) and raises its error."""

    def __init__(self, name: str) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=name)
        self._pending: Future[Any] | None = None
        self._lock = threading.Lock()  # callers in several threads submit one at a time

    def submit(self, call: Callable[..., Any], *args: Any) -> None:
        with self._lock:
            self._wait()
            self._pending = self._pool.submit(call, *args)

    def wait(self) -> None:
        """Wait for the pending call; raise its error."""
        with self._lock:
            self._wait()

    def _wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def __enter__(self) -> InOrder:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        try:
            if error is None:
                self.wait()
            elif self._pending is not None:  # the caller's error wins; the call still ends
                self._pending.exception()
        finally:
            self._pool.shutdown(wait=True)
