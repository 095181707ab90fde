"""The nightly pass's reads and writes in a thread: same items, same order, same errors."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from leadscore.pipelines.background import InOrder, prefetched


def test_prefetched_yields_every_item_in_order_read_in_another_thread() -> None:
    readers: set[str] = set()

    def source() -> Iterator[int]:
        for i in range(50):
            readers.add(threading.current_thread().name)
            yield i

    assert list(prefetched(source())) == list(range(50))
    assert readers == {"prefetch"}


def test_prefetched_raises_the_readers_own_error_after_the_items_before_it() -> None:
    def source() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("leads.csv: cannot be read as CSV")

    got: list[int] = []
    with pytest.raises(ValueError, match=r"leads\.csv: cannot be read as CSV"):
        for item in prefetched(source()):
            got.append(item)
    assert got == [1, 2]


def test_stopping_early_closes_the_source_and_ends_the_thread() -> None:
    closed = threading.Event()

    def source() -> Iterator[int]:
        try:
            yield from range(1_000_000)
        finally:
            closed.set()

    items = prefetched(source())
    assert next(items) == 0
    items.close()  # a check failed on the first chunk
    assert closed.is_set()
    assert not any(t.name == "prefetch" for t in threading.enumerate())


def test_in_order_runs_calls_one_at_a_time_in_order() -> None:
    done: list[int] = []

    def append(i: int) -> None:
        time.sleep(0.001 * (5 - i))  # the first calls are the slowest
        done.append(i)

    with InOrder("append") as calls:
        for i in range(5):
            calls.submit(append, i)
            assert len(done) >= i  # the previous call ended before this one was queued
    assert done == [0, 1, 2, 3, 4]


def test_in_order_raises_a_calls_error_at_the_next_submit() -> None:
    def fail() -> None:
        raise OSError("disk full")

    calls = InOrder("append")
    calls.submit(fail)
    with pytest.raises(OSError, match="disk full"):
        calls.submit(lambda: None)
    with pytest.raises(OSError, match="disk full"), InOrder("append") as last:
        last.submit(fail)  # the last call's error is raised on leaving


def test_in_order_takes_calls_from_several_threads_one_at_a_time():
    """Two producers (two local pass-1 workers) share one writer: every call runs, one
    at a time (never two at once), each producer's calls in the order it made them."""
    import threading
    import time

    done: list[tuple[str, int]] = []
    running = [0]
    most = [0]

    def call(who: str, k: int) -> None:
        running[0] += 1
        most[0] = max(most[0], running[0])
        time.sleep(0.001)
        done.append((who, k))
        running[0] -= 1

    with InOrder("shared") as writer:

        def produce(who: str) -> None:
            for k in range(40):
                writer.submit(call, who, k)

        threads = [threading.Thread(target=produce, args=(w,)) for w in ("a", "b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert most[0] == 1
    assert sorted(done) == [(w, k) for w in ("a", "b") for k in range(40)]
    for who in ("a", "b"):
        assert [k for w, k in done if w == who] == list(range(40))
