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

A failure's text names the exception's type and where it was raised, never its message: a task maps or compares
customer records, so a message can hold a value of one (a name, a phone number), and the text of
:class:`WorkerFailed` ends up in logs and in the error Dagster stores for the run.
"""

from __future__ import annotations

import gc
import logging
import os
import pickle
import selectors
import struct
import tempfile
import threading
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20
_OWN_BUFFERS_AFTER = 16 << 20  # in-band bytes of a message from which its arrays are copied out (_unpickle)


def worker_count(requested: int) -> int:
    """``requested`` processes; 0 = one per core, at most 4."""
    return requested if requested > 0 else min(os.cpu_count() or 1, 4)


class WorkerFailed(RuntimeError):
    """A forked worker raised or died; the message carries the exception's type and the worker's stack (no
    exception message: it may hold record values), or its exit status."""


def lead_share(workers: int, work_s: float, extra_s: float, floor: float = 0.0,
               worker_s: float | None = None) -> float:
    """The share of a batch this process (``fork_map``'s lead) takes so that it ends with the other workers,
    when it would take ``work_s`` seconds for the whole batch (a worker ``worker_s``, by default the same) and
    it also spends ``extra_s`` seconds on other work meanwhile (writing the last batch, reading the next):
    ``extra + share * work = (1 - share) * worker / (workers - 1)``. At least ``floor``, at most the share that
    ends with the workers without other work (an equal one when both take the same time)."""
    if work_s <= 0 or workers < 2:
        return 1.0 / max(workers, 1)
    other = (work_s if worker_s is None or worker_s <= 0 else worker_s) / (workers - 1)
    share = (other - extra_s) / (work_s + other)
    return min(other / (work_s + other), max(floor, share))


def failure_text(exc: BaseException) -> str:
    """The exception's type and the frames it passed through (file, line, function), without its message or the
    source lines (a test's literal can be a customer's value too)."""
    tb = traceback.TracebackException.from_exception(exc)
    frames = "\n".join(f"  {Path(f.filename).name}:{f.lineno} in {f.name}" for f in tb.stack)
    return f"{tb.exc_type.__qualname__ if tb.exc_type else 'exception'} (message withheld)\n{frames}"


def _message(value: Any) -> list[Any]:
    """``value`` as the byte strings a child writes: the total size (8 bytes), the count and sizes of the parts,
    the pickle (protocol 5) and the raw bytes of its large buffers (numpy arrays) out of band, so that the
    parent unpickles the arrays onto the bytes it received instead of copying them (``_unpickle``)."""
    buffers: list[pickle.PickleBuffer] = []
    head = pickle.dumps(value, protocol=5, buffer_callback=buffers.append)
    raws = [b.raw() for b in buffers]
    sizes = [len(head), *(r.nbytes for r in raws)]
    index = struct.pack(f"<I{len(sizes)}Q", len(sizes), *sizes)
    return [struct.pack("<Q", len(index) + sum(sizes)), index, head, *raws]


def _unpickle(message: bytearray) -> Any:
    """The value of a message (without its total size) that ``_message`` made. Arrays sent out of band are views
    of ``message``: it stays alive as long as they do — unless its in-band part (the Python objects' pickle) is
    large (``_OWN_BUFFERS_AFTER``): then each array gets its own copy and the message goes, instead of that part
    staying resident beside the objects made of it (a match population of 460k records: 79 MB of its 252)."""
    view = memoryview(message)
    (count,) = struct.unpack_from("<I", view, 0)
    sizes = struct.unpack_from(f"<{count}Q", view, 4)
    at = 4 + 8 * count
    parts = []
    for n in sizes:
        parts.append(view[at:at + n])
        at += n
    buffers: list[Any] = parts[1:]
    if len(parts[0]) >= _OWN_BUFFERS_AFTER:
        buffers = [bytearray(b) for b in buffers]
    return pickle.loads(parts[0], buffers=buffers)


class _Inbox:
    """One child's message as it arrives: the first 8 bytes give its size, then it is read into one buffer of
    exactly that size (a buffer grown read by read holds up to an eighth more, for as long as the arrays
    unpickled onto it live)."""

    def __init__(self) -> None:
        self.size = b""
        self.message: bytearray | None = None
        self.filled = 0

    def read(self, fd: int) -> bool:
        """Read what the pipe has; False at its end."""
        if self.message is None:
            chunk = os.read(fd, 8 - len(self.size))
            if not chunk:
                return False
            self.size += chunk
            if len(self.size) == 8:
                self.message = bytearray(struct.unpack("<Q", self.size)[0])
            return True
        if self.filled == len(self.message):
            return bool(os.read(fd, 1))  # the end (a child writes nothing after its message)
        got = os.readv(fd, [memoryview(self.message)[self.filled:self.filled + _CHUNK]])
        self.filled += got
        return got > 0

    def value(self) -> tuple[bool, Any] | None:
        """(ok, value) of a whole message; None when the child sent none or only part of one."""
        if self.message is None or self.filled < len(self.message):
            return None
        message, self.message = self.message, None
        return _unpickle(message)


def _child(fn: Callable[[Any], Any], task: Any, fd: int, collect: bool) -> None:
    """Run one task in the forked child and never return."""
    code = 0
    try:
        if not collect:
            gc.disable()  # the child exits when done: collecting its garbage is wasted work
        try:
            parts = _message((True, fn(task)))
        except BaseException as exc:  # noqa: BLE001 — everything goes back to the parent, which raises it
            code = 1
            parts = _message((False, failure_text(exc)))
        _send(fd, parts)
    except BaseException:  # noqa: BLE001 — a broken pipe: the parent sees the exit code
        code = 2
    finally:
        os._exit(code)


def _send(fd: int, parts: list[Any]) -> None:
    """Write a message (``_message``'s parts) to a pipe, a chunk at a time."""
    for part in parts:
        view = memoryview(part).cast("B")
        while view:
            view = view[os.write(fd, view[:_CHUNK]):]


def fork_map(fn: Callable[[Any], Any], tasks: Sequence[Any], workers: int, *,
             lead: Callable[[Any], Any] | None = None, meanwhile: Callable[[], None] | None = None,
             collect: bool = True) -> list[Any]:
    """``[fn(t) for t in tasks]``, in up to ``workers`` forked processes at once (order kept).

    Each task runs in a child of its own, forked when a slot is free, so long and short tasks balance out. A
    task that raises makes ``fork_map`` raise :class:`WorkerFailed` (type and stack, no message), after the
    other children have been waited for.

    ``lead``: this process runs the first task itself, by ``lead``, after forking the children for the others
    (then ``workers - 1`` run at once) and after ``meanwhile()``: a task that warms caches of this process (the
    standardisers') keeps them warm here, and each child starts from them. Meanwhile a thread of this process
    takes the results of the children that finish, so that they exit then (a child leaves only once its
    message is read); the next children are forked after the lead task. ``collect=False``: children run
    without the cyclic garbage collector (they exit when done).
    """
    if workers < 2 or len(tasks) < 2 or not hasattr(os, "fork"):
        if meanwhile is not None:
            meanwhile()
        return [(lead or fn)(t) if i == 0 else fn(t) for i, t in enumerate(tasks)]
    results: list[Any] = [None] * len(tasks)
    inboxes: dict[int, _Inbox] = {}
    running: dict[int, tuple[int, int]] = {}  # read fd -> (task index, pid)
    failures: list[str] = []
    sel = selectors.DefaultSelector()
    todo = iter(range(1 if lead is not None else 0, len(tasks)))
    slots = min(workers - 1 if lead is not None else workers, len(tasks))

    def start(i: int) -> None:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child
            os.close(r)
            _child(fn, tasks[i], w, collect)
        os.close(w)
        running[r] = (i, pid)
        inboxes[r] = _Inbox()
        sel.register(r, selectors.EVENT_READ)

    def receive(timeout: float | None = None) -> None:
        """Read what the children's pipes hold; reap the children that are done."""
        for key, _ in sel.select(timeout):
            fd = key.fd
            if inboxes[fd].read(fd):
                continue
            sel.unregister(fd)
            os.close(fd)
            i, pid = running.pop(fd)
            _, status = os.waitpid(pid, 0)
            got = inboxes.pop(fd).value()
            ok, value = got if got is not None else (False, f"worker exited with status {status}")
            if ok and os.waitstatus_to_exitcode(status) == 0:
                results[i] = value
            else:
                failures.append(str(value))

    def fill() -> None:
        """Fork children for the next tasks while a slot is free (none after a failure)."""
        while not failures and len(running) < slots and (i := next(todo, None)) is not None:
            start(i)

    try:
        fill()
        # while this process is busy with ``meanwhile`` and the lead task, a thread takes the children's
        # results: a child that is done leaves then, instead of holding its memory (its heap, its message)
        # until the lead task returns — at a million records the match hashes' worker held ~1 GB through the
        # whole fit. The thread only reads and reaps; only the calling thread forks.
        busy = threading.Event()
        drain = None
        drain_errors: list[BaseException] = []
        if lead is not None or meanwhile is not None:
            busy.set()

            def drain_while_busy() -> None:
                try:
                    while busy.is_set() and running:
                        receive(0.05)
                except BaseException as exc:  # noqa: BLE001 — raised in this process once the lead returns
                    drain_errors.append(exc)

            drain = threading.Thread(target=drain_while_busy, name="fork_map-drain", daemon=True)
            drain.start()
        try:
            if meanwhile is not None:
                meanwhile()
            if lead is not None:
                results[0] = lead(tasks[0])
        finally:
            busy.clear()
            if drain is not None:
                drain.join()
        if drain_errors:
            raise drain_errors[0]
        fill()  # the slots the drain freed
        while running:
            receive()
            fill()
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
        raise WorkerFailed(f"a parallel worker failed: {failures[0]}")
    return results


class _LogCollector(logging.Handler):
    """In a stage's process: every log record, its message formatted (its arguments can be objects that do not
    pickle), to be handled again by the parent's loggers."""

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        record.msg, record.args = record.getMessage(), None
        if record.exc_info:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        self.records.append(record)


def _collect_logs() -> _LogCollector:
    """Route every logger's records to one collector: the parent's handlers (Dagster's among them, which write
    to the run's event log through the parent's connections) are never called from the child."""
    collector = _LogCollector()
    loggers = [logging.getLogger(), *(x for x in logging.Logger.manager.loggerDict.values()
                                      if isinstance(x, logging.Logger))]
    for logger in loggers:
        if logger.handlers or logger is logging.getLogger():
            logger.handlers = [collector] if (logger is logging.getLogger() or not logger.propagate) else []
    return collector


def _portable(exc: BaseException) -> BaseException:
    """``exc`` as it can travel to the parent: itself when it pickles (with the frames it passed through as a
    note: the parent's traceback ends at ``run_forked``), else :class:`WorkerFailed` with its type and frames."""
    frames = failure_text(exc).split("\n", 1)[-1]
    try:
        exc.add_note(f"raised in the stage's own process at:\n{frames}")
        return pickle.loads(pickle.dumps(exc))
    except Exception:  # noqa: BLE001 — an exception that does not pickle (or unpickle) as itself
        return WorkerFailed(f"the stage's process failed: {failure_text(exc)}")


def run_forked(fn: Callable[[], Any], *, spill: bool = False) -> Any:
    """``fn()`` run in a forked child process, its result returned here (pickled through a pipe).

    For a whole stage of a run whose steps share one process: what the stage allocates, and the fragmented
    heap it leaves (glibc and pymalloc keep freed blocks for reuse), leave with the child, so the next stage
    starts from the run's own baseline instead of on top of this one's leftovers (100k people: 0.77 GB resident
    after staging, 0.23 GB before it). The child's log records are handled by this process's loggers when it
    returns (in order, after the fact). An exception is raised here as itself when it pickles (it carries the
    child's frames as a note), else as :class:`WorkerFailed` (type and frames, no message); a child that dies
    (killed, out of memory) raises WorkerFailed with its exit status. Where fork is unavailable ``fn()`` runs
    here.

    ``spill``: a large result goes through a temporary file that this process reads only after the child has
    exited. Through the pipe, the child's memory and the received message are both resident while it arrives
    (the match population of 2M records is ~1 GB pickled). The file has no name from the start (it holds
    record values: nothing is left behind, whatever kills either process)."""
    if not hasattr(os, "fork"):
        return fn()
    spilled = tempfile.TemporaryFile(prefix="hub-forked-") if spill else None  # unlinked already
    try:
        value = _run_forked(fn, None if spilled is None else spilled.fileno())
        if spilled is not None:
            spilled.seek(0)
            value = pickle.load(spilled)
        return value
    finally:
        if spilled is not None:
            spilled.close()


def _run_forked(fn: Callable[[], Any], spill_fd: int | None) -> Any:
    """``run_forked``; with ``spill_fd``, the child writes its result to that file (and sends None)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run, write, leave (no exit handlers, no parent's lock touched)
        os.close(r)
        code = 0
        try:
            collector = _collect_logs()
            try:
                value = fn()
                if spill_fd is not None:
                    with os.fdopen(os.dup(spill_fd), "wb") as f:
                        pickle.dump(value, f, protocol=5)
                    value = None
                message = _message((True, value, collector.records))
            except BaseException as exc:  # noqa: BLE001 — raised again in the parent
                code = 1
                message = _message((False, _portable(exc), collector.records))
            _send(w, message)
        except BaseException:  # noqa: BLE001 — a broken pipe: the parent sees the exit code
            code = 2
        finally:
            os._exit(code)
    os.close(w)
    inbox = _Inbox()
    try:
        while inbox.read(r):
            pass
    except BaseException:  # interrupted (a run terminated): the child goes too
        os.kill(pid, 9)
        raise
    finally:
        os.close(r)
        _, status = os.waitpid(pid, 0)
    got = inbox.value()
    if got is None:
        raise WorkerFailed(f"the stage's process exited with status {os.waitstatus_to_exitcode(status)}")
    ok, value, records = got
    for record in records:
        logging.getLogger(record.name).handle(record)
    if not ok:
        raise value
    return value
