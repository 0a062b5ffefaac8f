"""Figures of a process and of the processes it forked, read from /proc (Linux): CPU time, resident memory
(RSS, and PSS: a page shared by k processes counts 1/k in each), disk reads. Shared by the benches that measure
a process tree (bench_sync.py measures its own process, bench_pipeline_vs_cli.py the commands it runs)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                kids = Path(f"/proc/{pid}/task/{task}/children").read_text().split()
            except OSError:
                continue
            for k in kids:
                out.append(int(k))
                out.extend(children(int(k)))
    except OSError:
        pass
    return out


def cpu_s(pid: int, waited: bool) -> float:
    """utime + stime of a process (+ of its children it has waited for, when ``waited``), seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if waited:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / TICK


def pss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def status_mb(pid: int | str, key: str) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def read_mb(pid: int) -> float:
    """Bytes the process made the disk read (``read_bytes`` of /proc/PID/io: page-cache misses, not rchar), MB."""
    try:
        for line in Path(f"/proc/{pid}/io").read_text().splitlines():
            if line.startswith("read_bytes:"):
                return int(line.split()[1]) / 2**20
    except (OSError, ValueError):
        pass
    return 0.0


def rss_mb(pid: int) -> float:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE / 2**20
    except (OSError, IndexError, ValueError):
        return 0.0


def tree_pss_mb(pid: int) -> float:
    """The sum of the PSS of a process and all its descendants (MB): what it holds in memory, its forked workers
    included, the copy-on-write pages they share counted once."""
    return pss_mb(pid) + sum(pss_mb(k) for k in children(pid))


def tree_memory_mb(pid: int, kids: list[int] | None = None) -> float:
    """What a process and its descendants (``kids``, when the caller listed them already) hold in RAM (MB): the
    sum of their PSS, so that the pages forked workers share with their parent count once. With no descendant
    alive the process's resident size (``statm``: cheap; PSS walks the page tables, ~20 ms for a 600 MB
    process)."""
    kids = children(pid) if kids is None else kids
    return (pss_mb(pid) if kids else rss_mb(pid)) + sum(pss_mb(k) for k in kids)


class TreePeak(threading.Thread):
    """The highest ``tree_memory_mb(pid)`` seen, sampled every ``every`` seconds until ``stop()``."""

    def __init__(self, pid: int, every: float = 0.5) -> None:
        super().__init__(daemon=True, name="bench-tree-peak")
        self.pid, self.every, self.peak_mb = pid, every, 0.0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(self.every):
            self.peak_mb = max(self.peak_mb, tree_memory_mb(self.pid))

    def stop(self) -> float:
        self._halt.set()
        self.join()
        return self.peak_mb
