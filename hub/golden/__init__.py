"""Golden customer records: survivorship with lineage, persistent golden ids, steward review, incremental matching.

Entry points for the Dagster assets / CLI (see README.md in this folder):

    train_model(store, matching_cfg, force=False) -> ModelStats   (the match_model asset: refit + drift check)
    match_and_cluster(store, matching_cfg, mode="incremental"|"full") -> MatchStats
    build_golden(store, survivorship_cfg, mode="incremental"|"full") -> GoldenStats
    review_queue(store, limit) -> list[ReviewItem];  pending_reviews(store) -> int
    decide(store, left_key, right_key, "match"|"no-match", by)
    preview(store, new_rules) -> PreviewReport;  resolve(store, golden_id) -> active golden id | None
"""

from importlib import import_module
from typing import Any

# Lazy: hub.config reads the settings models (hub.golden.config) on every command; the stages below pull in
# numpy/pandas and the engine, which only the commands that match or build golden records need.
_WHERE = {
    "GoldenStats": "build", "build_golden": "build", "golden_id_of": "build", "golden_membership": "build",
    "load_golden": "build", "pack_lineage": "build", "resolve": "build", "unpack_lineage": "build",
    "DEFAULT_SURVIVORSHIP_PATH": "config", "FieldRule": "config", "SurvivorshipConfig": "config",
    "default_survivorship": "config", "load_survivorship": "config", "MatchSettings": "config",
    "MatchStats": "matching", "ModelStats": "matching", "match_and_cluster": "matching", "train_model": "matching",
    "PreviewReport": "preview", "preview": "preview",
    "ReviewItem": "review", "decide": "review", "parse_pair": "review", "pending_reviews": "review",
    "review_queue": "review",
    "Member": "survivorship", "survive": "survivorship",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'hub.golden' has no attribute {name!r}")
    value = getattr(import_module(f"hub.golden.{_WHERE[name]}"), name)
    # bound here so that the function ``preview`` wins over the submodule of the same name, which importing
    # it has just set as this package's attribute
    globals()[name] = value
    return value


__all__ = [
    "DEFAULT_SURVIVORSHIP_PATH",
    "FieldRule",
    "GoldenStats",
    "MatchSettings",
    "MatchStats",
    "ModelStats",
    "PreviewReport",
    "Member",
    "ReviewItem",
    "SurvivorshipConfig",
    "build_golden",
    "decide",
    "default_survivorship",
    "golden_id_of",
    "golden_membership",
    "load_golden",
    "load_survivorship",
    "match_and_cluster",
    "pack_lineage",
    "parse_pair",
    "pending_reviews",
    "preview",
    "resolve",
    "review_queue",
    "survive",
    "train_model",
    "unpack_lineage",
]
