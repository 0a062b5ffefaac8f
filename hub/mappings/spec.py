"""The shape of a mapping declaration (``hub/mappings/<kind>.yaml``), as pydantic models.

A declaration says, per landing entity of one source kind, which canonical records it feeds and how each
canonical field is read from the payload::

    kind: woocommerce
    phone_region: CN          # default region for numbers written without country code
    dayfirst: false           # 07/03/1985 = July 3rd
    entities:
      customers:              # landing entity
        sample: {...}         # a payload shaped like the source's documented record; paths are checked on it
        records:
          - entity: customers # canonical entity
            required: [name, contact]
            fields:
              name: {standardise: person_name, from: {given: first_name, family: last_name}}
              emails: email | billing.email        # shorthand: the default standardiser of the field
              addresses:
                - {kind: billing, from: {street: [billing.address_1, billing.address_2], city: billing.city}}

Field keys are canonical model fields (``hub/models.py``); the standardiser defaults from the field's name
and type and may be named explicitly. Standardiser options (``kind``, ``values``, ``default``, ``region``,
``unit``, ``null_values`` …) may be written next to ``from`` or under ``options``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hub.mappings.transforms import STANDARDISERS

OPTION_KEYS: frozenset[str] = frozenset().union(*(s.options for s in STANDARDISERS.values()))


class FieldSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: str | list[str] | dict[str, str | list[str]] | None = Field(default=None, alias="from")
    const: Any = None
    standardise: str | None = None
    each: str | None = None  # path to a list; ``from`` paths are then relative to each item
    # phones: the record's own country (billing.country) beats the source's default phone region
    region_from: str | list[str] | None = None
    fields: dict[str, Any] | None = None  # nested canonical model (consent, order lines)
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"from": data}
        if isinstance(data, dict):
            data = dict(data)
            opts = dict(data.get("options") or {})
            for key in list(data):
                if key in OPTION_KEYS and key not in cls.model_fields:
                    opts[key] = data.pop(key)
            if opts:
                data["options"] = opts
            if "const" in data and "standardise" not in data:
                data["standardise"] = "const"
        return data


class TargetSpec(BaseModel):
    """One canonical record produced from a landing payload."""

    model_config = ConfigDict(extra="forbid")

    entity: str
    source_id: str | None = None  # path; default: the landing row's source_id
    source_id_prefix: str = ""
    required: list[str] = Field(default_factory=list)
    # rules a complete record meets; a record breaking one is still staged, flagged ``record:incomplete`` (a
    # name and a city is a customer the hub can link, not one to quarantine)
    wanted: list[str] = Field(default_factory=list)
    when: str | None = None  # a path: the record exists only for payloads where it yields a value
    optional: bool = False  # a derived record: failing its required rules skips it, not the landing row
    fields: dict[str, Any]


class LandingSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = ""
    sample: dict[str, Any]
    # a key the connector sets on rows it could not parse (CDR: ``_malformed``) -> payload.malformed
    malformed_marker: str | None = None
    records: list[TargetSpec]


class MappingSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str
    description: str = ""
    phone_region: str = "CN"
    dayfirst: bool = False
    default_country: str | None = "CN"
    entities: dict[str, LandingSpec]
