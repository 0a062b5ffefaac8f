"""The ``quality:`` section of hub.yaml: thresholds per dimension (and per source), expected data age, the
merge/split brake.

Every key is optional; the defaults are what the packaged hub.yaml would say::

    quality:
      thresholds:                 # score 0–100: green at or above `green`, amber at or above `amber`, else red
        completeness: {green: 90, amber: 75}
        validity:     {green: 97, amber: 90}
        uniqueness:   {green: 97, amber: 90}
        consistency:  {green: 97, amber: 90}
        timeliness:   {green: 100, amber: 50}
        accuracy:     {green: 90, amber: 75}
      expected_age_hours: 26      # data older than this from a source lowers its timeliness score
      completeness_fields: [name, email, phone, birth_date, address]
      sources:                    # per-source overrides
        social:
          completeness_fields: [name, address]     # followers have a nickname and a city, nothing else
          thresholds: {completeness: {green: 60, amber: 40}}
      history_runs: 30            # runs shown in the report's charts
      brake:
        enabled: true
        max_merge_split_share: 0.02
        ...
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Dimension = Literal["completeness", "validity", "uniqueness", "consistency", "timeliness", "accuracy"]
DIMENSIONS: tuple[Dimension, ...] = ("completeness", "validity", "uniqueness", "consistency", "timeliness",
                                     "accuracy")
CompletenessField = Literal["name", "email", "phone", "birth_date", "address", "national_id", "gender"]
DEFAULT_COMPLETENESS_FIELDS: tuple[CompletenessField, ...] = ("name", "email", "phone", "birth_date", "address")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Threshold(_Strict):
    """Green at or above ``green``, amber at or above ``amber``, red below."""

    green: float = Field(ge=0, le=100)
    amber: float = Field(ge=0, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> Threshold:
        if self.amber > self.green:
            raise ValueError(f"amber ({self.amber}) must not be above green ({self.green})")
        return self


DEFAULT_THRESHOLDS: dict[str, Threshold] = {
    "completeness": Threshold(green=90, amber=75),
    "validity": Threshold(green=97, amber=90),
    "uniqueness": Threshold(green=97, amber=90),
    "consistency": Threshold(green=97, amber=90),
    # 100 = the newest data is younger than expected; 50 = twice the expected age
    "timeliness": Threshold(green=100, amber=50),
    "accuracy": Threshold(green=90, amber=75),
}


class SourceQuality(_Strict):
    """Per-source overrides: a source that cannot have a field should not be marked red for lacking it."""

    completeness_fields: list[CompletenessField] | None = None
    thresholds: dict[Dimension, Threshold] = Field(default_factory=dict)
    expected_age_hours: float | None = Field(default=None, gt=0)
    # brake: share of this source's newly consolidated records that may lack an agreeing identifier
    max_unsupported_share: float | None = Field(default=None, ge=0, le=1)


class BrakeConfig(_Strict):
    """The merge/split brake before any push (hub/quality/brake.py explains the measures)."""

    enabled: bool = True
    # golden customers (as last released) merged into another or split, as a share of them
    max_merge_split_share: float = Field(default=0.02, ge=0, le=1)
    min_merge_split: int = Field(default=20, ge=0)  # fewer changed golden customers never trip the brake
    # records consolidated since the last release without any identifier agreeing with a fellow record
    max_unsupported_share: float = Field(default=0.5, ge=0, le=1)
    min_consolidated: int = Field(default=50, ge=0)  # judged only when at least this many were consolidated
    # an e-mail, phone, id (or name + birth date) held by more records than this is a placeholder, not evidence
    shared_value_limit: int = Field(default=10, ge=1)


class QualityConfig(_Strict):
    thresholds: dict[Dimension, Threshold] = Field(default_factory=dict)
    expected_age_hours: float = Field(default=26.0, gt=0)
    completeness_fields: list[CompletenessField] = Field(default_factory=lambda: list(DEFAULT_COMPLETENESS_FIELDS))
    sources: dict[str, SourceQuality] = Field(default_factory=dict)
    history_runs: int = Field(default=30, ge=2, le=500)
    brake: BrakeConfig = Field(default_factory=BrakeConfig)

    def threshold(self, dimension: str, source: str | None = None) -> Threshold:
        if source is not None:
            own = self.sources.get(source)
            if own is not None and dimension in own.thresholds:
                return own.thresholds[dimension]  # type: ignore[index]
        return self.thresholds.get(dimension) or DEFAULT_THRESHOLDS[dimension]  # type: ignore[arg-type]

    def fields_for(self, source: str) -> list[str]:
        own = self.sources.get(source)
        return list(own.completeness_fields) if own and own.completeness_fields is not None \
            else list(self.completeness_fields)

    def expected_age(self, source: str) -> float:
        own = self.sources.get(source)
        return own.expected_age_hours if own and own.expected_age_hours else self.expected_age_hours

    def max_unsupported(self, source: str) -> float:
        own = self.sources.get(source)
        if own is not None and own.max_unsupported_share is not None:
            return own.max_unsupported_share
        return self.brake.max_unsupported_share
