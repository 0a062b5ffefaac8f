"""Declarative source mappings: landing payloads -> canonical records (``hub/models.py``).

One YAML declaration per source kind (``hub/mappings/<kind>.yaml``: ``woocommerce``, ``wechat``,
``asterisk_cdr``, ``sql_erp_sandbox``, ``tryton``) says, per landing entity, which canonical records it feeds
(a WeChat follower is a customer AND a ``social_follow`` interaction), the field paths into the payload,
constants, standardisers, required rules, and the source's default phone region and date order.

Declarations are validated with pydantic and compiled at LOAD time: an unknown canonical field, an unknown
standardiser, a malformed path or a path that does not exist in the declared sample payload raises
``MappingError`` naming the source kind, entity and field. Adding a source is a YAML file, not pipeline code.

    from hub.mappings import load_mappings
    mappings = load_mappings()                       # {kind: Mapper}
    m = mappings["woocommerce"]
    outcome = m.map("customers", "25", payload, m.context("webshop"))
    outcome.records   # [StagedOutput(entity, source_id, customer_key, record, quality_flags)]
    outcome.reasons   # quarantine reason codes when a required rule failed
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import yaml
from pydantic import ValidationError

from hub.mappings.engine import (
    ENTITY_MODELS,
    Mapper,
    MappingError,
    MappingOutcome,
    StagedOutput,
)
from hub.mappings.spec import MappingSpec
from hub.mappings.transforms import STANDARDISERS, Context

MAPPINGS_DIR = Path(__file__).parent
SHIPPED_KINDS: tuple[str, ...] = ("woocommerce", "wechat", "asterisk_cdr", "sql_erp_sandbox", "tryton")

__all__ = [
    "ENTITY_MODELS",
    "MAPPINGS_DIR",
    "SHIPPED_KINDS",
    "STANDARDISERS",
    "Context",
    "Mapper",
    "MappingError",
    "MappingOutcome",
    "StagedOutput",
    "load_mapping",
    "load_mappings",
    "parse_mapping",
]


def parse_mapping(data: object, origin: str = "<mapping>") -> Mapper:
    """Validate and compile one declaration (the parsed YAML)."""
    kind = data.get("kind", origin) if isinstance(data, dict) else origin
    try:
        spec = MappingSpec.model_validate(data)
    except ValidationError as exc:
        problems = []
        for e in exc.errors()[:8]:
            loc = list(e["loc"])
            # entities.<landing>.records.<i>.<key> -> name the entity the way the other errors do
            where = ".".join(str(p) for p in loc)
            problems.append(f"{where}: {e['msg']}")
        raise MappingError(f"mapping '{kind}' ({origin}): " + "; ".join(problems)) from None
    return Mapper(spec)


def load_mapping(name_or_path: str | Path) -> Mapper:
    """Load ``hub/mappings/<name>.yaml`` (or a path to a YAML file) and compile it."""
    p = Path(name_or_path)
    if p.suffix not in (".yaml", ".yml"):
        p = MAPPINGS_DIR / f"{name_or_path}.yaml"
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MappingError(f"mapping '{name_or_path}': no declaration at {p}") from None
    except yaml.YAMLError as exc:
        raise MappingError(f"mapping '{name_or_path}': {p.name} is not valid YAML: {exc}") from None
    mapper = parse_mapping(data, origin=p.name)
    if p.parent == MAPPINGS_DIR and mapper.kind != p.stem:
        raise MappingError(f"mapping '{p.stem}': declares kind {mapper.kind!r}; the file name must match")
    return mapper


def load_mappings(names: Iterable[str] | None = None) -> dict[str, Mapper]:
    """All shipped declarations (or the named ones), compiled: ``{kind: Mapper}``."""
    return {name: load_mapping(name) for name in (names or SHIPPED_KINDS)}
