"""Survivorship configuration: the ``survivorship`` section of hub.yaml, validated with pydantic.

The shipped defaults live in ``default_survivorship.yaml`` next to this module; ``load_survivorship``
accepts the section as a dict (what the lead's config loader passes), a YAML file path, or ``None``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hub.store import payload_hash

if TYPE_CHECKING:
    from hub.dedupe import DedupeSettings

DEFAULT_SURVIVORSHIP_PATH = Path(__file__).with_name("default_survivorship.yaml")

Strategy = Literal["source_priority", "most_recent", "most_complete", "most_frequent"]

# Golden fields a rule may name. Consent is not among them: one rule merges it everywhere (hub.consent).
SINGLE_FIELDS = (
    "full_name",
    "given_name",
    "family_name",
    "name_key",
    "company",
    "birth_date",
    "gender",
    "national_id",
)
MULTI_FIELDS = ("emails", "phones", "addresses")
ALL_FIELDS = SINGLE_FIELDS + MULTI_FIELDS


class _Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceTrust(_Cfg):
    trust: float = Field(0.5, ge=0.0, le=1.0)


class FieldRule(_Cfg):
    strategy: Strategy = "source_priority"
    # explicit source order for source_priority; unset = sources ordered by trust (highest first)
    priority: list[str] | None = None
    tie_breakers: list[Strategy] = Field(default_factory=list)
    ignore_empty: bool = True
    validated_only: bool = False
    weighted: bool = False  # most_frequent: count votes weighted by source trust
    follow: str | None = None  # take the value from the record that won this other field
    max_values: int | None = Field(None, ge=1)  # multi-valued fields: keep at most this many

    @field_validator("follow")
    @classmethod
    def _follow_known(cls, v: str | None) -> str | None:
        if v is not None and v not in SINGLE_FIELDS:
            raise ValueError(f"follow must name a single-valued golden field, not {v!r}")
        return v


class QualityConfig(_Cfg):
    weights: dict[Literal["completeness", "validated", "sources"], float] = Field(
        default_factory=lambda: {"completeness": 0.5, "validated": 0.3, "sources": 0.2}
    )
    full_sources: int = Field(3, ge=1)


class SurvivorshipConfig(_Cfg):
    sources: dict[str, SourceTrust] = Field(default_factory=dict)
    default_trust: float = Field(0.5, ge=0.0, le=1.0)
    default_rule: FieldRule = Field(default_factory=lambda: FieldRule(tie_breakers=["most_recent"]))
    fields: dict[str, FieldRule] = Field(default_factory=dict)
    quality: QualityConfig = Field(default_factory=QualityConfig)

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, v: dict[str, FieldRule]) -> dict[str, FieldRule]:
        consent = sorted(f for f in v if f.startswith("consent."))
        if consent:
            raise ValueError(f"{consent}: consent is not configurable per field — one rule applies everywhere "
                             "(per channel the most recent explicit statement wins, hub/consent.py)")
        unknown = sorted(set(v) - set(ALL_FIELDS))
        if unknown:
            raise ValueError(f"unknown survivorship field(s) {unknown}; known: {list(ALL_FIELDS)}")
        return v

    @model_validator(mode="after")
    def _no_follow_cycles(self) -> SurvivorshipConfig:
        for name in self.fields:
            seen = {name}
            cur = self.rule(name).follow
            while cur is not None:
                if cur in seen:
                    raise ValueError(f"survivorship follow cycle through {cur!r}")
                seen.add(cur)
                cur = self.rule(cur).follow
        return self

    def rule(self, field: str) -> FieldRule:
        return self.fields.get(field, self.default_rule)

    def trust(self, source: str) -> float:
        st = self.sources.get(source)
        return st.trust if st is not None else self.default_trust

    def priority_rank(self, rule: FieldRule, source: str) -> int:
        """0 = most preferred. Sources missing from an explicit list rank after it, by trust."""
        order = self._trust_order()
        base = 0
        if rule.priority:
            if source in rule.priority:
                return rule.priority.index(source)
            base = len(rule.priority)
        return base + (order.index(source) if source in order else len(order))

    def _trust_order(self) -> list[str]:
        return sorted(self.sources, key=lambda s: (-self.sources[s].trust, s))

    def fingerprint(self) -> str:
        """Stable hash of the rules: a change triggers a full survivorship pass in build_golden."""
        return payload_hash(self.model_dump(mode="json"))


def _section(data: Any) -> dict:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise TypeError(f"survivorship config must be a mapping, not {type(data).__name__}")
    # accept both the bare section and a whole document that still has the top-level key
    if set(data) == {"survivorship"}:
        return data["survivorship"] or {}
    return data


def default_survivorship() -> SurvivorshipConfig:
    with DEFAULT_SURVIVORSHIP_PATH.open(encoding="utf-8") as fh:
        return SurvivorshipConfig.model_validate(_section(yaml.safe_load(fh)))


def load_survivorship(cfg: SurvivorshipConfig | dict | str | Path | None = None) -> SurvivorshipConfig:
    """The survivorship rules from a parsed section, a YAML file, or the shipped defaults (``None``/``{}``)."""
    if isinstance(cfg, SurvivorshipConfig):
        return cfg
    if isinstance(cfg, str | Path):
        with Path(cfg).open(encoding="utf-8") as fh:
            cfg = yaml.safe_load(fh)
    section = _section(cfg)
    if not section:
        return default_survivorship()
    return SurvivorshipConfig.model_validate(section)


# -- the matching section (the golden stage's keys; hub.config reads them without importing the engine) ----------

class DriftLimits(BaseModel):
    """How far a refitted model may move before the match_model asset reports drift."""

    model_config = ConfigDict(extra="forbid")
    max_weight_shift_bits: float = 2.0  # largest change of one comparison level's weight
    prior_shift_bits: float = 1.0  # change of the global prior
    match_rate_shift: float = 0.05  # change of the auto-match share among candidate pairs


class MatchSettings(BaseModel):
    """The golden stage's keys in the ``matching`` section (other keys belong to the engine and are ignored)."""

    model_config = ConfigDict(extra="ignore")
    # dedupe: parameters estimated from the data (``auto`` = dedupe); fixed: hand-set weights (FIXED_WEIGHTS)
    engine: Literal["auto", "dedupe", "fixed"] = "auto"
    # an incremental run whose affected set exceeds this share of all records re-clusters everything
    full_rebuild_share: float = Field(0.3, gt=0, le=1)
    auto_match: float | None = None  # match_probability thresholds (engine defaults if None)
    review: float | None = None
    # the match_model asset refits the model when it is older than this (and on the weekly schedule); a refit
    # whose parameters or match rate moved more than the drift limits is reported as drift
    retrain_days: float = Field(7.0, gt=0)
    # engine processes for standardising, blocking and comparing (0 = one per core, at most 4; 1 = this process
    # only) — the same default as ``hub dedupe``: the engine forks with os.fork and a pipe (hub.dedupe.parallel),
    # which is safe next to a Dagster step's threads
    workers: int = Field(0, ge=0, le=64)
    retrain_cron: str = "0 3 * * 0"  # the match_model_weekly schedule (Sundays 03:00)
    drift: DriftLimits = Field(default_factory=DriftLimits)

    @field_validator("engine", mode="before")
    @classmethod
    def _exact_is_fixed(cls, v: Any) -> Any:
        return "fixed" if v == "exact" else v  # the former exact-key matcher is the fixed configuration

    @property
    def matcher(self) -> str:
        return "fixed" if self.engine == "fixed" else "dedupe"

    def engine_settings(self) -> DedupeSettings:
        from hub.dedupe import DedupeSettings

        kw: dict[str, Any] = {"workers": self.workers}
        if self.auto_match is not None:
            kw["auto_match"] = self.auto_match
        if self.review is not None:
            kw["review"] = self.review
        return DedupeSettings(**kw)


def load_match_settings(cfg: MatchSettings | dict | None) -> MatchSettings:
    if isinstance(cfg, MatchSettings):
        return cfg
    return MatchSettings.model_validate(cfg or {})
