"""Matching engine: blocking, Fellegi–Sunter scoring with EM, non-chaining clustering.

Public API (``hub/dedupe/README.md``): ``deduplicate(frame, link_only=False, settings=None) -> DedupeResult``
and ``DedupeSettings``; the verbs it chains — ``prepare_records``, ``block``, ``compare_pairs``, ``fit``, ``score``,
``explain``, ``cluster_records`` — with ``Records``, ``Candidates``, ``Fit``, ``Scores`` and the storable
``MatchModel``, for callers that keep their own state (the golden stage). Imported lazily so that
``hub dedupe`` can reject a bad input file before loading the numeric stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hub.dedupe.compare import FIELDS
    from hub.dedupe.engine import (
        BAND_AUTO,
        BAND_BY_CODE,
        BAND_NON,
        BAND_REVIEW,
        Candidates,
        DedupeResult,
        DedupeSettings,
        Fit,
        Records,
        Scores,
        block,
        cluster_records,
        compare_pairs,
        deduplicate,
        empty_model,
        explain,
        fit,
        pairs_frame,
        prepare_records,
        score,
        standardise_records,
        worker_count,
    )
    from hub.dedupe.model import MatchModel, drift

_ENGINE = (
    "BAND_AUTO", "BAND_BY_CODE", "BAND_NON", "BAND_REVIEW", "Candidates", "DedupeResult", "DedupeSettings", "Fit", "Records",
    "Scores", "block", "cluster_records", "compare_pairs", "deduplicate", "empty_model", "explain", "fit", "pairs_frame",
    "prepare_records", "score", "standardise_records", "worker_count",
)
_MODEL = ("MatchModel", "drift")
__all__ = [
    "BAND_AUTO", "BAND_BY_CODE", "BAND_NON", "BAND_REVIEW", "FIELDS", "Candidates", "DedupeResult", "DedupeSettings", "Fit",
    "MatchModel", "Records", "Scores", "block", "cluster_records", "compare_pairs", "deduplicate", "drift", "empty_model",
    "explain", "fit", "pairs_frame", "prepare_records", "score", "standardise_records", "worker_count",
]


def __getattr__(name: str) -> Any:
    if name in _ENGINE:
        from hub.dedupe import engine

        return getattr(engine, name)
    if name in _MODEL:
        from hub.dedupe import model

        return getattr(model, name)
    if name == "FIELDS":
        from hub.dedupe.compare import FIELDS

        return FIELDS
    raise AttributeError(name)
