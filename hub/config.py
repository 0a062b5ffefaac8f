"""Loading ``hub.yaml``: which sources exist, how each stage is configured.

Only non-secret settings live in the file. Secrets (API keys, passwords) and per-deployment endpoints are
named there by the environment variable that holds them (``*_env`` keys) and read through Dagster ``EnvVar``
at run time, so they never appear in the file, the UI or the logs.

Lookup order for the file: ``HUB_CONFIG`` → ``./hub.yaml`` → the packaged default (``hub/hub.default.yaml``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from hub.golden.config import MatchSettings, SurvivorshipConfig
from hub.privacy.retention import RetentionConfig
from hub.quality.config import QualityConfig

PACKAGED_DEFAULT = Path(__file__).parent / "hub.default.yaml"

class ConfigError(ValueError):
    """hub.yaml (or a variable it names) is wrong: the message names the key; the CLI prints it, exit 2."""


SourceKind = Literal["sql_erp", "tryton", "woocommerce", "wechat", "asterisk_cdr"]


class TrytonOptions(BaseModel):
    """``options`` of a ``tryton`` source."""

    model_config = ConfigDict(extra="forbid")

    # a golden customer with no party in Tryton gets one created by the push (off: only known parties are updated)
    create_missing_parties: bool = False
    # how far back an incremental pull re-reads before its cursor (Tryton's write_date is set at commit)
    overlap_minutes: float = Field(5.0, ge=0)


class NoOptions(BaseModel):
    """Kinds that take no ``options``: any key there is a mistake, not something to ignore."""

    model_config = ConfigDict(extra="forbid")


# the typed ``options`` of each source kind; a key the kind does not know fails the config load, naming it
SOURCE_OPTIONS: dict[str, type[BaseModel]] = {
    "tryton": TrytonOptions, "sql_erp": NoOptions, "woocommerce": NoOptions, "wechat": NoOptions,
    "asterisk_cdr": NoOptions,
}


class SourceConfig(BaseModel):
    """One connected system. ``*_env`` fields name environment variables, never hold values."""

    model_config = ConfigDict(extra="forbid")

    kind: SourceKind
    mapping: str | None = None  # mapping declaration in hub/mappings (defaults to the kind)
    enabled: bool = True
    push: bool = True  # receives golden id / segments back
    phone_region: str = "CN"
    dayfirst: bool = False
    url_env: str | None = None
    key_env: str | None = None
    secret_env: str | None = None
    user_env: str | None = None
    password_env: str | None = None
    database_env: str | None = None
    dir_env: str | None = None
    tables: str | None = None  # SQL ERP: table declaration name or path
    requests_per_second: float | None = None
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("options")
    @classmethod
    def _typed_options(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        # validated against the kind's model and kept with its defaults filled in (kind is checked first)
        kind = info.data.get("kind")
        if kind is None:  # the kind itself is wrong and already reported: no second, misleading error here
            return value
        return SOURCE_OPTIONS[kind].model_validate(value).model_dump()

    @property
    def mapping_name(self) -> str:
        return self.mapping or self.kind


class ServeConfig(BaseModel):
    """The ``serve`` section: the caller-lookup API of ``hub serve`` (tokens only ever in ``HUB_API_TOKENS``)."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(8765, ge=1, le=65535)
    # per token, in `limits` notation: "50/second", "20/second;600/minute"
    rate_limit: str = "50/second"
    token_rate_limits: dict[str, str] = Field(default_factory=dict)  # token name -> limit
    audit_log: str = ".hub/audit/lookups.jsonl"
    phone_region: str = "CN"  # region of numbers that arrive without a country code
    screen_pop_url: str | None = None  # agent desktop page, "{golden_id}" is filled in
    search_limit: int = Field(20, ge=1, le=100)

    @field_validator("rate_limit")
    @classmethod
    def _limit(cls, value: str) -> str:
        from limits import parse_many

        parse_many(value)  # raises ValueError on bad notation
        return value

    @field_validator("token_rate_limits")
    @classmethod
    def _limits(cls, value: dict[str, str]) -> dict[str, str]:
        for spec in value.values():
            cls._limit(spec)
        return value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StandardiseConfig(_Section):
    """The ``standardise`` section: hub-wide defaults (each source's own ``phone_region`` wins)."""

    phone_region: str | None = None  # region of numbers typed without a country code (erasure selectors)


class StagingConfig(_Section):
    """The ``staging`` section (hub/staging.py)."""

    # processes that map a large backlog of records never staged before (a first sync, a new source): 1 = this
    # one only, 0 = one per core (at most 4); the output is the same either way. Reads of records staged before
    # (a restage after a mapping change) are mapped in one process whatever this says. On the shared 2-core
    # machine (20k people, 110k landed rows, medians of 2) a second worker took a first stage from 121 to 87 s
    # wall for 17 % more CPU, but a restage (nothing to write meanwhile) from 36 to 53 s wall for 56 % more CPU
    # (bench/bench_staging.py --workers N); hub/staging.py read_workers decides per read.
    workers: int = Field(0, ge=0, le=16)


class MatchingConfig(MatchSettings):
    """The ``matching`` section (hub/golden/README.md): the golden stage's settings, every key checked."""

    model_config = ConfigDict(extra="forbid")


class SegmentsSection(_Section):
    """The ``segments`` section (hub/customer360.py ``SegmentsConfig``): value tiers, lifecycle, segment rules."""

    value_tiers: dict[str, dict[str, float]] | None = None
    lifecycle: dict[Literal["new_days", "at_risk_days", "lapsed_days"], int] | None = None
    rules: list[dict[str, Any]] | None = None
    exclude_statuses: list[str] | None = None
    currency_rates: dict[str, float] | None = None
    recent_orders: int | None = Field(None, ge=0)
    social_sources: list[str] | None = None
    link_guest_orders: bool | None = None

    @model_validator(mode="after")
    def _semantics(self) -> SegmentsSection:
        from hub.customer360 import SegmentsConfig

        SegmentsConfig.from_dict(self.as_dict())  # unknown tiers, bad rules: ValueError naming them
        return self

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class TargetOptions(_Section):
    """Options of one push target (``push.<name>:`` or ``push.targets.<name>:``), hub/push_plan.py."""

    source: str | None = None  # the source whose records (xref) it writes; default: the target's name
    entity: str | None = None
    mode: Literal["records", "directory"] | None = None
    consent_channel: Literal["email", "sms", "phone", "social", "post"] | None = None
    consent_fields: bool | None = None
    create_missing: bool | None = None
    kind: SourceKind | None = None
    enabled: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class PushSection(BaseModel):
    """The ``push`` section. ``targets``: a list of source names or a mapping name -> options; when absent,
    every enabled source that takes a push (``push: true``, the default). Options per target may also sit
    under ``push.<name>:``; any other key is an error."""

    model_config = ConfigDict(extra="allow")

    targets: list[str] | dict[str, TargetOptions | None] | None = None
    marketing_consent: Literal["opt_in", "not_opted_out"] = "opt_in"

    @model_validator(mode="after")
    def _options(self) -> PushSection:
        for name, value in (self.model_extra or {}).items():
            try:
                opts = TargetOptions.model_validate(value or {})
            except ValidationError as exc:
                raise ValueError(f"push.{name}: {validation_message(exc)}") from None
            self.model_extra[name] = opts
        return self

    def options(self) -> dict[str, TargetOptions]:
        """Per named target: its options (both places merged; the ``targets`` mapping wins)."""
        out = {name: opts for name, opts in (self.model_extra or {}).items()}
        if isinstance(self.targets, dict):
            for name, opts in self.targets.items():
                merged = {**(out[name].as_dict() if name in out else {}), **(opts.as_dict() if opts else {})}
                out[name] = TargetOptions.model_validate(merged)
        return out


class ReportConfig(_Section):
    path: str = ".hub/reports/data_quality.html"


class ScheduleConfig(_Section):
    cron: str = "0 2 * * *"  # the nightly full_sync
    timezone: str = "UTC"
    running: bool = False  # switched on without a click in the UI


class HubConfig(BaseModel):
    """The whole hub.yaml: every section typed, every unknown key an error naming it (``load_config``)."""

    model_config = ConfigDict(extra="forbid")

    sources: dict[str, SourceConfig]
    standardise: StandardiseConfig = Field(default_factory=StandardiseConfig)
    staging: StagingConfig = Field(default_factory=StagingConfig)
    matching: MatchingConfig = Field(default_factory=MatchingConfig)
    survivorship: SurvivorshipConfig | None = None  # None: the shipped rules (hub/golden/default_survivorship.yaml)
    segments: SegmentsSection = Field(default_factory=SegmentsSection)
    push: PushSection = Field(default_factory=PushSection)
    report: ReportConfig = Field(default_factory=ReportConfig)
    quality: QualityConfig = Field(default_factory=QualityConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)

    @field_validator("sources")
    @classmethod
    def _names(cls, value: dict[str, SourceConfig]) -> dict[str, SourceConfig]:
        for name in value:
            if not name.isidentifier():
                raise ValueError(f"source name {name!r} must be a simple identifier (letters, digits, _)")
        return value

    @field_validator("survivorship", mode="before")
    @classmethod
    def _default_rules(cls, value: Any) -> Any:
        return None if not value else value

    @field_validator("standardise", "staging", "matching", "segments", "push", "report", "schedule", mode="before")
    @classmethod
    def _empty_section(cls, value: Any) -> Any:
        return {} if value is None else value  # a section left empty in the YAML (`push:`) is its defaults

    @model_validator(mode="after")
    def _push_targets_known(self) -> HubConfig:
        """A push target must be a source of this file: a typo would otherwise silently push nowhere."""
        named = list(self.push.targets or []) + list(self.push.model_extra or {})
        for name in named:
            if name not in self.sources:
                raise ValueError(f"push.{'targets.' if name in (self.push.targets or []) else ''}{name}: no source "
                                 f"of that name (sources: {', '.join(self.sources)})")
        return self

    @property
    def enabled_sources(self) -> dict[str, SourceConfig]:
        return {n: s for n, s in self.sources.items() if s.enabled}

    def push_targets(self) -> list[str]:
        """The enabled sources that take a push: ``push.targets`` when given, else every enabled source that
        can take one (``push: true``, the default)."""
        sources = self.enabled_sources
        options = self.push.options()
        named = list(self.push.targets) if self.push.targets is not None else list(sources)
        return [t for t in named if t in sources and sources[t].push
                and (options[t].enabled is not False if t in options else True)]

    def push_plan_config(self) -> dict[str, Any]:
        """The push section as hub/push_plan.py reads it: ``targets`` maps each push target to its options,
        the source's kind included (so a shop not named ``webshop`` still gets the shop's defaults)."""
        options = self.push.options()
        targets = {t: {"kind": self.sources[t].kind, **(options[t].as_dict() if t in options else {})}
                   for t in self.push_targets()}
        return {"targets": targets, "marketing_consent": self.push.marketing_consent}


def config_path() -> Path:
    env = os.environ.get("HUB_CONFIG")
    if env:
        return Path(env)
    local = Path("hub.yaml")
    if local.exists():
        return local
    return PACKAGED_DEFAULT


def validation_message(exc: ValidationError) -> str:
    """Each pydantic error as ``key.path: what is wrong`` (the input value is left out: it may be a secret)."""
    lines = []
    for err in exc.errors():
        what = "unknown key (a typo?)" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
        where = ".".join(str(p) for p in err["loc"])
        # a section's own check names the key itself ("push.targets.webshp: …")
        lines.append(what if not where or what.startswith(f"{where}.") else f"{where}: {what}")
    return "; ".join(lines)


def load_config(path: str | Path | None = None) -> HubConfig:
    """The validated configuration; ``ConfigError`` naming the file and the key when it is wrong."""
    p = Path(path) if path else config_path()
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except FileNotFoundError as exc:
        raise ConfigError(f"hub config not found: {p}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"hub config {p} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"hub config {p}: expected a mapping of sections (sources:, push:, …)")
    try:
        return HubConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"hub config {p}: {validation_message(exc)}") from None
