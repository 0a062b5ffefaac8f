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
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hub.privacy.retention import RetentionConfig
from hub.quality.config import QualityConfig

PACKAGED_DEFAULT = Path(__file__).parent / "hub.default.yaml"

class ConfigError(ValueError):
    """hub.yaml (or a variable it names) is wrong: the message names the key; the CLI prints it, exit 2."""


SourceKind = Literal["sql_erp", "tryton", "woocommerce", "wechat", "asterisk_cdr"]


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


class HubConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sources: dict[str, SourceConfig]
    standardise: dict[str, Any] = Field(default_factory=dict)
    matching: dict[str, Any] = Field(default_factory=dict)
    survivorship: dict[str, Any] = Field(default_factory=dict)
    segments: dict[str, Any] = Field(default_factory=dict)
    push: dict[str, Any] = Field(default_factory=dict)
    report: dict[str, Any] = Field(default_factory=dict)
    quality: QualityConfig = Field(default_factory=QualityConfig)
    schedule: dict[str, Any] = Field(default_factory=dict)
    serve: ServeConfig = Field(default_factory=ServeConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)

    @field_validator("sources")
    @classmethod
    def _names(cls, value: dict[str, SourceConfig]) -> dict[str, SourceConfig]:
        for name in value:
            if not name.isidentifier():
                raise ValueError(f"source name {name!r} must be a simple identifier (letters, digits, _)")
        return value

    @property
    def enabled_sources(self) -> dict[str, SourceConfig]:
        return {n: s for n, s in self.sources.items() if s.enabled}


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
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        what = "unknown key (a typo?)" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"{where}: {what}")
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
