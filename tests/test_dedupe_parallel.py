"""The engine's fork-based map: same results as a plain loop, errors surface, and a lock held by another thread
of the parent at fork time cannot hang a child (the two-worker test run once hung for 11 minutes that way)."""

from __future__ import annotations

import os
import sys
import threading

import numpy as np
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


def test_a_failing_task_raises_with_the_workers_stack_but_not_its_message() -> None:
    # a task maps customer records: its exception's message can hold one's values, and WorkerFailed's text is
    # logged and stored by Dagster — the type and the frames say where it broke, the message stays out
    def fail_on_two(i: int) -> int:
        if i == 2:
            raise ValueError("no phone in +86 138-0013-8000 for 陈伟")
        return i

    with pytest.raises(WorkerFailed, match="ValueError") as err:
        fork_map(fail_on_two, [0, 1, 2, 3], 2)
    text = str(err.value)
    assert "fail_on_two" in text and "message withheld" in text
    assert "138" not in text and "陈伟" not in text


def test_a_lead_task_runs_in_this_process_after_the_children_start() -> None:
    import os

    parent = os.getpid()
    order: list[str] = []
    got = fork_map(lambda i: (i, os.getpid() != parent), list(range(5)), 3,
                   lead=lambda i: (i, order.append("lead") or False),
                   meanwhile=lambda: order.append("meanwhile"), collect=False)
    assert got == [(0, False), (1, True), (2, True), (3, True), (4, True)]
    assert order == ["meanwhile", "lead"]
    # one worker: the same answer, all here
    order.clear()
    assert fork_map(lambda i: (i, True), list(range(3)), 1, lead=lambda i: (i, False),
                    meanwhile=lambda: order.append("meanwhile")) == [(0, False), (1, True), (2, True)]
    assert order == ["meanwhile"]


def test_a_failing_lead_task_leaves_no_child_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    forked: list[int] = []
    real_fork = os.fork

    def fork() -> int:  # records the children fork_map starts (this process may have others: a test worker)
        pid = real_fork()
        if pid:
            forked.append(pid)
        return pid

    def boom(i: int) -> int:
        raise RuntimeError("lead broke")

    monkeypatch.setattr(os, "fork", fork)
    with pytest.raises(RuntimeError, match="lead broke"):
        fork_map(lambda i: i, list(range(4)), 2, lead=boom)
    assert forked
    for pid in forked:  # every child was reaped: none is left to wait for
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


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


def _results(k: int) -> tuple:
    """Arrays larger than a pipe's buffer and than a read (1 MB), a strided and a Fortran-ordered one, an
    empty one and plain objects."""
    big = np.arange(3_000_000, dtype=np.int64) * k
    return big, big[::3], np.asfortranarray(np.ones((300, 7)) * k), np.empty(0, dtype=np.int8), {"k": k, "名": "陳偉"}


def test_arrays_come_back_whole_and_onto_the_bytes_received() -> None:
    got = fork_map(_results, [1, 2, 3], 2)
    for k, (big, strided, fortran, empty, plain) in zip([1, 2, 3], got, strict=True):
        want = _results(k)
        assert np.array_equal(big, want[0]) and np.array_equal(strided, want[1])
        assert np.array_equal(fortran, want[2]) and fortran.flags.f_contiguous
        assert empty.size == 0 and plain == want[4]
        assert big.base is not None and big.flags.writeable  # a view of the message, not a copy of it


def test_a_worker_that_dies_in_the_middle_of_its_message_is_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = os.write

    def half_then_die(fd: int, data: object) -> int:
        view = memoryview(data)
        if len(view) > 100_000:  # the child's first large write: half of it, then the child is gone
            real_write(fd, view[: len(view) // 2])
            os._exit(0)
        return real_write(fd, view)

    monkeypatch.setattr(os, "write", half_then_die)
    with pytest.raises(WorkerFailed, match="worker exited with status"):
        fork_map(_results, [1, 2], 2)


def test_a_child_that_finishes_while_the_lead_task_runs_leaves_at_once(tmp_path) -> None:
    # a child stays alive (with its whole heap) until its message is read: at a million records the match
    # hashes' worker held ~1 GB through the whole model fit that ran as the lead task beside it
    pid_file = tmp_path / "child.pid"

    def child_task(_: int) -> bytes:
        pid_file.write_text(str(os.getpid()))
        return b"x" * (4 << 20)  # far more than a pipe's buffer: the child blocks until it is read

    def lead_task(_: int) -> bool:
        import time

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if pid_file.exists() and pid_file.read_text():
                try:
                    os.kill(int(pid_file.read_text()), 0)
                except ProcessLookupError:
                    return True  # the child is gone (reaped) while the lead task still runs
            time.sleep(0.02)
        return False

    got = fork_map(child_task, [0, 1], 2, lead=lead_task)
    assert got[0] is True
    assert got[1] == b"x" * (4 << 20)


def _rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux)")
def test_a_stage_run_forked_returns_its_result_and_takes_its_memory_with_it() -> None:
    """run_forked: the result comes back, the work happens in another process, and what it allocated is not
    resident here afterwards (a stage's heap no longer sits under the next stage's high-water mark)."""
    from hub.dedupe.parallel import run_forked

    parent = os.getpid()
    before = _rss_mb()

    def stage() -> tuple[int, int]:
        held = [bytearray(1 << 20) for _ in range(300)]  # 300 MB, touched
        for block in held:
            block[::4096] = b"x" * len(block[::4096])
        return os.getpid(), sum(len(b) for b in held)

    pid, size = run_forked(stage)
    assert pid != parent and size == 300 << 20
    assert _rss_mb() - before < 50
    assert run_forked(lambda: {"rows": np.arange(3)})["rows"].tolist() == [0, 1, 2]


def test_a_stage_run_forked_raises_its_own_exception_and_logs_through_this_process(caplog) -> None:
    """The stage's exception is raised here as itself (the same type and message as when it ran in this
    process, its frames in a note); its log records reach this process's handlers (Dagster's, when it
    manages the hub's loggers); one that does not pickle becomes WorkerFailed; a child that dies says so."""
    import logging
    import signal

    from hub.dedupe.parallel import run_forked
    from hub.mappings.engine import MappingError

    log = logging.getLogger("hub.test_stage")

    def stage() -> None:
        log.warning("stage %s read %d rows", "staging", 3)
        raise MappingError("mapping 'shop' has no rule for entity 'orders'")

    with caplog.at_level(logging.INFO, logger="hub.test_stage"), pytest.raises(MappingError) as err:
        run_forked(stage)
    assert str(err.value) == "mapping 'shop' has no rule for entity 'orders'"
    assert any("in stage" in note for note in getattr(err.value, "__notes__", []))
    assert [r.getMessage() for r in caplog.records if r.name == "hub.test_stage"] == ["stage staging read 3 rows"]

    class Unpicklable(Exception):
        def __init__(self, a: int, b: int) -> None:
            super().__init__(a)

    def odd() -> None:
        raise Unpicklable(1, 2)

    with pytest.raises(WorkerFailed, match="Unpicklable"):
        run_forked(odd)
    with pytest.raises(WorkerFailed, match="status -9"):
        run_forked(lambda: os.kill(os.getpid(), signal.SIGKILL))


def test_arrays_of_a_result_with_many_objects_do_not_keep_the_whole_message_alive(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # arrays travel out of band and are views of the received message; with a large in-band part (the pickle of
    # many Python objects) they get their own bytes, so the message (and that part) is freed once unpickled
    import pickle

    import numpy as np

    import hub.dedupe.parallel as parallel
    from hub.dedupe.parallel import run_forked

    def owner(a: np.ndarray) -> int:
        """The size of the buffer that holds ``a``'s bytes."""
        base: object = a
        while isinstance(base, np.ndarray) and base.base is not None:
            base = base.base
        while isinstance(base, memoryview | pickle.PickleBuffer):
            base = memoryview(base).obj
        return memoryview(base).nbytes

    monkeypatch.setattr(parallel, "_OWN_BUFFERS_AFTER", 1 << 16)
    names, arr = run_forked(lambda: ([f"name {i}" for i in range(50_000)], np.arange(100_000, dtype=np.int64)))
    assert len(names) == 50_000 and arr.tolist() == list(range(100_000))
    assert owner(arr) == arr.nbytes  # its own bytes, not the message's
    small, arr2 = run_forked(lambda: (["x"], np.arange(100_000, dtype=np.int64)))
    assert arr2.tolist() == list(range(100_000)) and owner(arr2) > arr2.nbytes  # few objects: a view, no copy


def test_a_spilled_result_comes_back_through_a_file_that_is_gone_afterwards(tmp_path, monkeypatch) -> None:
    # spill: the child writes its result to a temporary file and exits before this process reads it (no moment
    # when both hold it); the file holds record values: it never has a name, so nothing is left behind
    import tempfile

    import numpy as np

    from hub.dedupe.parallel import run_forked

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    def result() -> tuple[list[str], np.ndarray]:
        assert list(tmp_path.iterdir()) == []  # not even while the child writes it
        return ["陈伟", "Chen Wei"] * 1000, np.arange(10_000)

    names, arr = run_forked(result, spill=True)
    assert names[:2] == ["陈伟", "Chen Wei"] and len(names) == 2000 and arr.tolist() == list(range(10_000))
    assert list(tmp_path.iterdir()) == []

    def fail() -> None:
        raise ValueError("no phone in +86 138-0013-8000")

    with pytest.raises(ValueError):
        run_forked(fail, spill=True)
    assert list(tmp_path.iterdir()) == []
