"""Fork-based parallel map for the engine's CPU-bound stages (standardising distinct values, blocking rules,
comparison chunks) — two cores halve the pure-Python and numpy parts that rapidfuzz's threads do not cover.

Workers are forked, so they inherit the prepared data instead of receiving it pickled; the task function is
handed over through a module global at fork time (closures are fine). Where fork is unavailable, or for a
single task or worker, everything runs in this process and the results are the same.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Sequence
from typing import Any

_TASK: Callable[[Any], Any] | None = None


def worker_count(requested: int) -> int:
    """``requested`` processes; 0 = one per core, at most 4."""
    return requested if requested > 0 else min(os.cpu_count() or 1, 4)


def _run(arg: Any) -> Any:
    assert _TASK is not None
    return _TASK(arg)


def fork_map(fn: Callable[[Any], Any], tasks: Sequence[Any], workers: int) -> list[Any]:
    """``[fn(t) for t in tasks]``, in up to ``workers`` forked processes (order kept)."""
    global _TASK
    if workers < 2 or len(tasks) < 2 or "fork" not in mp.get_all_start_methods():
        return [fn(t) for t in tasks]
    _TASK = fn
    try:
        with mp.get_context("fork").Pool(min(workers, len(tasks))) as pool:
            return pool.map(_run, tasks, chunksize=1)
    finally:
        _TASK = None
