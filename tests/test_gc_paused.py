"""``gc_paused(freeze=True)`` (staging's mapping passes): what the pass left alive is frozen out of later
collections, its garbage cycles are not — frozen, they stayed until the end of the whole staging run."""

from __future__ import annotations

import gc
import weakref

from hub.store import gc_paused


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_a_frozen_pass_frees_its_garbage_cycles_and_keeps_what_is_alive() -> None:
    kept = []
    try:
        with gc_paused(freeze=True):
            a, b = _Node(), _Node()
            a.other, b.other = b, a  # a cycle: reference counting alone never frees it
            gone = weakref.ref(a)
            del a, b
            alive = _Node()
            alive.other = alive
            kept.append(alive)
        assert gone() is None  # collected before the freeze
        assert kept[0].other is kept[0]
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_an_unswept_frozen_pass_keeps_its_garbage_cycles_until_unfrozen() -> None:
    """``sweep=False`` (staging's passes, which make no garbage cycles): no collection walks what the pass left
    alive; a cycle it did make is frozen with the rest, and collected once unfrozen."""
    try:
        with gc_paused(freeze=True, sweep=False):
            a, b = _Node(), _Node()
            a.other, b.other = b, a
            gone = weakref.ref(a)
            del a, b
        gc.collect()
        assert gone() is not None  # frozen: out of the collector's reach
    finally:
        gc.unfreeze()
    gc.collect()
    assert gone() is None
