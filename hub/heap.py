"""Giving the memory a stage freed back to the operating system.

A run's steps share one process (the in-process executor), and glibc's allocator keeps what Python and numpy
free: the pages of freed large arrays and of emptied small-object heaps stay resident until something reuses
them. After a stage that held a million records' values the next stages started from that high-water mark
(at 480k records the match stage ended holding 1.1 GB, of which ``malloc_trim`` gave back 0.4 GB). A no-op
where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import functools
import sys
from typing import Any


@functools.cache
def _glibc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        return libc
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return None


def trim_heap() -> bool:
    """Return the allocator's free pages to the operating system (``malloc_trim(0)``); True when it could.
    Costs a walk over the heap's free lists: call it between stages, not in a loop."""
    libc = _glibc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True
