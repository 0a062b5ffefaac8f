"""Data quality: dimension scores, the push brake, run history and the customer-base view (used by the report
in hub/report.py and the asset checks in hub/checks.py).

    score_dimensions(store, cfg) -> {dimension: {score, status, verdict, sources: {...}}}
    describe(code) -> CodeText(label, action)      plain words for every reason / flag code
"""

from hub.quality.codes import CodeText, describe
from hub.quality.config import DIMENSIONS, BrakeConfig, QualityConfig, Threshold
from hub.quality.dimensions import overall_status, score_dimensions, status_of

__all__ = ["DIMENSIONS", "BrakeConfig", "CodeText", "QualityConfig", "Threshold", "describe", "overall_status",
           "score_dimensions", "status_of"]
