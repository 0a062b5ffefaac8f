"""The pull's progress lines (Dagster log events that ``hub sync`` draws its bar from) are spaced by what they
cost: at most one a second, and never more than a tenth of the pull's time when writing an event is slow."""

from __future__ import annotations

import time
from types import SimpleNamespace

from hub.assets import pull_progress
from hub.connectors.base import PROGRESS_RE


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class _Log:
    """A run's log whose every event takes ``cost`` seconds to store."""

    def __init__(self, clock: _Clock, cost: float) -> None:
        self.clock, self.cost, self.lines = clock, cost, []

    def info(self, text: str) -> None:
        self.lines.append(text)
        self.clock.now += self.cost


def _pull(monkeypatch, cost: float, seconds: float, step: float = 0.01) -> tuple[list[str], float]:
    clock = _Clock()
    monkeypatch.setattr(time, "monotonic", clock)
    log = _Log(clock, cost)
    report = pull_progress(SimpleNamespace(log=log), "webshop")
    records = 0
    while clock.now < seconds:
        records += 100
        report(SimpleNamespace(entity="customers", records=records), None)
        clock.now += step  # the pull's own work for a page
    report(SimpleNamespace(entity="customers", records=records), None, final=True)
    return log.lines, len(log.lines) * cost / clock.now


def test_a_fast_log_gets_a_line_a_second(monkeypatch) -> None:
    lines, share = _pull(monkeypatch, cost=0.002, seconds=30)
    assert 29 <= len(lines) <= 32
    assert all(PROGRESS_RE.match(line) for line in lines)  # what `hub sync` reads its bar from
    assert share < 0.01


def test_a_slow_log_costs_the_pull_at_most_a_tenth(monkeypatch) -> None:
    lines, share = _pull(monkeypatch, cost=0.25, seconds=60)
    assert share <= 0.1 + 0.25 / 60  # the final line comes on top
    assert len(lines) >= 20  # still a line every few seconds
    assert lines[-1].startswith("progress raw_webshop customers ")
