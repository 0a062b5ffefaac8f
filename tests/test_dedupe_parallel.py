"""The engine's fork-based map: same results as a plain loop, errors surface, and a lock held by another thread
of the parent at fork time cannot hang a child (the two-worker test run once hung for 11 minutes that way)."""

from __future__ import annotations

import sys
import threading

import pytest

from hub.dedupe.parallel import WorkerFailed, fork_map


def _square_big(n: int) -> list[int]:
    # results bigger than a pipe's buffer, so the parent must drain pipes while children run
    return [n * n] * 200_000


def test_fork_map_keeps_order_and_equals_a_loop() -> None:
    tasks = list(range(7))
    assert fork_map(_square_big, tasks, 2) == [_square_big(t) for t in tasks]
    # closures over the parent's data are inherited, not pickled
    table = {i: str(i) * 3 for i in range(10)}
    assert fork_map(lambda i: table[i], [3, 1, 2], 3) == ["333", "111", "222"]


def test_a_failing_task_raises_with_the_workers_traceback() -> None:
    def fail_on_two(i: int) -> int:
        if i == 2:
            raise ValueError("task two is broken")
        return i

    with pytest.raises(WorkerFailed, match="task two is broken"):
        fork_map(fail_on_two, [0, 1, 2, 3], 2)


class _LockedStream:
    """A stdout whose flush waits on a lock — as a buffered stream does while another thread writes to it."""

    def __init__(self, lock: threading.Lock) -> None:
        self.lock = lock

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        with self.lock:
            pass


@pytest.mark.timeout(120)
def test_a_lock_held_by_another_thread_at_fork_time_does_not_hang_the_workers(monkeypatch) -> None:
    held = threading.Lock()
    taken, release = threading.Event(), threading.Event()

    def writer() -> None:  # another thread of this process, busy inside the stream when the workers fork
        with held:
            taken.set()
            release.wait(60)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    taken.wait(10)
    monkeypatch.setattr(sys, "stdout", _LockedStream(held))
    monkeypatch.setattr(sys, "stderr", _LockedStream(held))
    try:
        assert fork_map(lambda i: i + 1, list(range(6)), 2) == [1, 2, 3, 4, 5, 6]
    finally:
        release.set()
        thread.join(10)
