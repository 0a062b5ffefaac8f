"""Golden customer records: survivorship with lineage, persistent golden ids, steward review, incremental matching.

Entry points for the Dagster assets / CLI (see README.md in this folder):

    train_model(store, matching_cfg, force=False) -> ModelStats   (the match_model asset: refit + drift check)
    match_and_cluster(store, matching_cfg, mode="incremental"|"full") -> MatchStats
    build_golden(store, survivorship_cfg, mode="incremental"|"full") -> GoldenStats
    review_queue(store, limit) -> list[ReviewItem];  decide(store, left_key, right_key, "match"|"no-match", by)
    preview(store, new_rules) -> PreviewReport;  resolve(store, golden_id) -> active golden id | None
"""

from hub.golden.build import GoldenStats, build_golden, golden_id_of, golden_membership, load_golden, resolve
from hub.golden.config import (
    DEFAULT_SURVIVORSHIP_PATH,
    FieldRule,
    SurvivorshipConfig,
    default_survivorship,
    load_survivorship,
)
from hub.golden.matching import MatchSettings, MatchStats, ModelStats, match_and_cluster, train_model
from hub.golden.preview import PreviewReport, preview
from hub.golden.review import ReviewItem, decide, parse_pair, review_queue
from hub.golden.survivorship import Member, survive

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
    "parse_pair",
    "preview",
    "resolve",
    "review_queue",
    "survive",
    "train_model",
]
