"""Matching engine: blocking, Fellegi–Sunter scoring with EM, non-chaining clustering.

Public API: ``deduplicate(frame, link_only=False, settings=None) -> DedupeResult`` and ``DedupeSettings``.
Imported lazily so that ``hub dedupe`` can reject a bad input file before loading the numeric stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hub.dedupe.engine import DedupeResult, DedupeSettings, deduplicate

__all__ = ["DedupeResult", "DedupeSettings", "deduplicate"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from hub.dedupe import engine

        return getattr(engine, name)
    raise AttributeError(name)
