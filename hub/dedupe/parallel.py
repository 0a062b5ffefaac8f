"""Fork-based parallel map for the engine's CPU-bound stages (standardising distinct values, blocking rules,
comparison chunks) — two cores halve the pure-Python and numpy parts that rapidfuzz's threads do not cover.

Workers are forked, so they inherit the prepared data instead of receiving it pickled (closures are fine). Where
fork is unavailable, or for a single task or worker, everything runs in this process and the results are the same.

Why plain ``os.fork`` and not ``multiprocessing.Pool``: a forked child holds a copy of every lock as it was at fork
time, and a lock that another thread of the parent held then (Dagster's and pytest-xdist's threads write to
stdout, log, import) stays locked forever in the child. A Pool child runs multiprocessing's bootstrap, flushes the
standard streams and runs exit handlers, any of which can wait on such a lock — a two-worker test run hung there
for 11 minutes. Here the child runs the task, writes the pickled result to a pipe with ``os.write`` and leaves
with ``os._exit``: it touches no lock the task itself does not take.
"""

from __future__ import annotations

import os
import pickle
import selectors
import traceback
from collections.abc import Callable, Sequence
from typing import Any

_CHUNK = 1 << 20


def worker_count(requested: int) -> int:
    """``requested`` processes; 0 = one per core, at most 4."""
    return requested if requested > 0 else min(os.cpu_count() or 1, 4)


class WorkerFailed(RuntimeError):
    """A forked worker raised or died; the message carries the worker's traceback or its exit status."""


def _child(fn: Callable[[Any], Any], task: Any, fd: int) -> None:
    """Run one task in the forked child and never return."""
    code = 0
    try:
        try:
            payload = pickle.dumps((True, fn(task)), protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException:  # noqa: BLE001 — everything goes back to the parent, which raises it
            code = 1
            payload = pickle.dumps((False, traceback.format_exc()), protocol=pickle.HIGHEST_PROTOCOL)
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view[:_CHUNK]):]
    except BaseException:  # noqa: BLE001 — a broken pipe: the parent sees the exit code
        code = 2
    finally:
        os._exit(code)


def fork_map(fn: Callable[[Any], Any], tasks: Sequence[Any], workers: int) -> list[Any]:
    """``[fn(t) for t in tasks]``, in up to ``workers`` forked processes at once (order kept).

    Each task runs in a child of its own, forked when a slot is free, so long and short tasks balance out. A
    task that raises makes ``fork_map`` raise :class:`WorkerFailed` with the child's traceback, after the other
    children have been waited for.
    """
    if workers < 2 or len(tasks) < 2 or not hasattr(os, "fork"):
        return [fn(t) for t in tasks]
    results: list[Any] = [None] * len(tasks)
    buffers: dict[int, bytearray] = {}
    running: dict[int, tuple[int, int]] = {}  # read fd -> (task index, pid)
    failures: list[str] = []
    sel = selectors.DefaultSelector()
    todo = iter(range(len(tasks)))
    slots = min(workers, len(tasks))

    def start(i: int) -> None:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child
            os.close(r)
            _child(fn, tasks[i], w)
        os.close(w)
        running[r] = (i, pid)
        buffers[r] = bytearray()
        sel.register(r, selectors.EVENT_READ)

    try:
        for _ in range(slots):
            start(next(todo))
        while running:
            for key, _ in sel.select():
                fd = key.fd
                chunk = os.read(fd, _CHUNK)
                if chunk:
                    buffers[fd] += chunk
                    continue
                sel.unregister(fd)
                os.close(fd)
                i, pid = running.pop(fd)
                _, status = os.waitpid(pid, 0)
                raw = bytes(buffers.pop(fd))
                ok, value = pickle.loads(raw) if raw else (False, f"worker exited with status {status}")
                if ok and os.waitstatus_to_exitcode(status) == 0:
                    results[i] = value
                else:
                    failures.append(str(value))
                nxt = None if failures else next(todo, None)
                if nxt is not None:
                    start(nxt)
    finally:
        # only on an error in this process (a KeyboardInterrupt, say): do not leave children behind
        for fd, (_, pid) in running.items():
            try:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
            except OSError:
                pass
            os.close(fd)
        sel.close()
    if failures:
        raise WorkerFailed(f"a parallel worker failed:\n{failures[0]}")
    return results
