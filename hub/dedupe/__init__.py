"""Matching engine: blocking, Fellegi–Sunter scoring with EM, non-chaining clustering."""

from hub.dedupe.engine import DedupeResult, DedupeSettings, deduplicate

__all__ = ["DedupeResult", "DedupeSettings", "deduplicate"]
