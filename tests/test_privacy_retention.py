"""Retention: old payloads pruned (keys and hashes stay, nothing is landed or staged again), old push logs and
tombstones of deleted records removed, a deactivated record's tombstone kept; the typed hub.yaml section."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from hub.config import HubConfig
from hub.privacy.retention import PRUNED, RetentionConfig, apply_retention
from hub.staging import stage_all
from hub.store import LandingRecord, Store, landing, payload_hash, push_outbox, push_result, source_tombstone

SOURCES = {"webshop": {"kind": "woocommerce"}}
CUSTOMER = {"id": 7, "email": "chen.wei@example.cn", "first_name": "Wei", "last_name": "Chen", "role": "customer",
            "username": "cw", "billing": {"phone": "13800138000", "country": "CN"}, "shipping": {},
            "meta_data": [], "date_created_gmt": "2024-01-01T00:00:00", "date_modified_gmt": "2024-01-01T00:00:00"}


def test_retention_prunes_and_deletes_only_what_is_old(store: Store) -> None:
    store.land_page("webshop", "customers", [LandingRecord("7", CUSTOMER, payload_hash(CUSTOMER))], None)
    stats = stage_all(store, None, SOURCES)
    assert stats.staged == 1
    store.enqueue_push("webshop", "customers", "7", "G1", {"golden_id": "G1"})
    outbox_id = store.pending_pushes("webshop")[0].id
    store.record_push_result(outbox_id, "ok")
    now = datetime.now() + timedelta(days=200)  # everything above is now 200 days old
    with store.begin() as conn:
        conn.execute(source_tombstone.insert(), [
            {"source": "webshop", "entity": "customers", "source_id": "9", "kind": "deleted",
             "detected_at": datetime(2020, 1, 1), "applied_at": datetime(2020, 1, 1)},
            {"source": "erp", "entity": "customers", "source_id": "3", "kind": "deactivated",
             "detected_at": datetime(2020, 1, 1), "applied_at": datetime(2020, 1, 1)}])

    short = apply_retention(store, RetentionConfig(raw_payloads_days=300, push_log_days=300, tombstones_days=None),
                            now=now)
    assert (short.payloads_pruned, short.push_results_deleted) == (0, 0)
    done = apply_retention(store, RetentionConfig(), now=now)
    assert (done.payloads_pruned, done.push_results_deleted, done.outbox_rows_deleted, done.tombstones_deleted) \
        == (1, 1, 1, 1)
    assert apply_retention(store, RetentionConfig(), now=now).payloads_pruned == 0  # once is enough
    with store.engine.connect() as conn:
        payload, h = conn.execute(sa.select(landing.c.payload, landing.c.payload_hash)).one()
        assert payload == PRUNED and h == payload_hash(CUSTOMER)
        assert conn.execute(sa.select(sa.func.count()).select_from(push_result)).scalar_one() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(push_outbox)).scalar_one() == 0
        assert conn.execute(sa.select(source_tombstone.c.kind)).scalars().all() == ["deactivated"]
    # the same record pulled again is unchanged (hash kept); a full re-stage leaves its staged record alone
    counts = store.land_page("webshop", "customers", [LandingRecord("7", CUSTOMER, payload_hash(CUSTOMER))], None)
    assert counts.unchanged == 1
    assert stage_all(store, None, SOURCES).records_in == 0
    assert done.personal_rows["staged_record"] == 1 and done.personal_rows["landing"] == 1


def test_retention_is_a_typed_hub_yaml_section() -> None:
    base = {"sources": {"erp": {"kind": "sql_erp"}}}
    assert HubConfig.model_validate(base).retention.push_log_days == 180
    cfg = HubConfig.model_validate({**base, "retention": {"raw_payloads_days": 30, "push_log_days": None}})
    assert (cfg.retention.raw_payloads_days, cfg.retention.push_log_days) == (30, None)
    with pytest.raises(ValidationError):
        HubConfig.model_validate({**base, "retention": {"raw_payload_days": 30}})  # typo
    with pytest.raises(ValidationError):
        HubConfig.model_validate({**base, "retention": {"push_log_days": 0}})


def test_retention_reads_only_the_push_log_rows_that_expire(sqlite_store: Store) -> None:
    """Push results and finished outbox rows expire in the order they were written: retention finds them by time
    (SQLite's plan: SEARCH), not by reading every row of both tables in every sync (at a million people 674 MB
    and 1.4 GB)."""
    from query_plans import plan_of, statements_of

    checked = set()
    for statement, parameters in statements_of(
            sqlite_store, lambda: apply_retention(sqlite_store, RetentionConfig(), now=datetime.now()), ("DELETE",)):
        for table in ("push_result", "push_outbox"):
            if f"DELETE FROM {table} " in statement:
                plan = plan_of(sqlite_store, statement, parameters)
                assert plan and all(p.startswith(f"SEARCH {table} USING INDEX") for p in plan), plan
                checked.add(table)
    assert checked == {"push_result", "push_outbox"}


def test_payload_pruning_reads_what_expired_since_its_last_pass_and_everything_weekly(sqlite_store: Store) -> None:
    """A sync's retention prunes the payloads that expired since its last pass (landing searched by landed_at:
    reading every landed row was 10 GB per sync at a million people); every row is looked at on the first
    pass, a week after the last such pass and after a changed mapping re-staged a source, so a payload that was
    not staged when it expired is pruned once it is."""
    from query_plans import plan_of, statements_of

    from hub.privacy.retention import FULL_PASS_DAYS
    from hub.store import STAGING_MAPPING_ENTITY, sync_state

    store = sqlite_store
    store.land_page("webshop", "customers", [LandingRecord("7", CUSTOMER, payload_hash(CUSTOMER))], None)
    assert stage_all(store, None, SOURCES).staged == 1
    late = {**CUSTOMER, "id": 8, "email": "li.na@example.cn", "username": "ln"}
    store.land_page("webshop", "customers", [LandingRecord("8", late, payload_hash(late))], None)  # not staged yet
    cfg = RetentionConfig(push_log_days=None, tombstones_days=None, quarantine_days=None)
    day = datetime.now() + timedelta(days=100)

    def landing_plans(at: datetime) -> tuple[int, list[str]]:
        pruned: list[int] = []
        seen = statements_of(store, lambda: pruned.append(apply_retention(store, cfg, now=at).payloads_pruned),
                             ("UPDATE",))
        return pruned[0], [p for s, params in seen if s.startswith("UPDATE landing")
                           for p in plan_of(store, s, params)]

    window = ["SEARCH landing USING INDEX ix_landing_landed (landed_at>? AND landed_at<?)"]
    everything = ["SEARCH landing USING INDEX ix_landing_landed (landed_at<?)"]  # all that expired, ever
    assert landing_plans(day) == (1, everything)  # the first pass
    assert landing_plans(day + timedelta(days=1)) == (0, window)  # the next day: what expired since
    assert stage_all(store, None, SOURCES).staged == 1  # record 8 staged at last: expired long ago, not pruned
    assert landing_plans(day + timedelta(days=2)) == (0, window)
    assert landing_plans(day + timedelta(days=2 + FULL_PASS_DAYS)) == (1, everything)  # a week after the first
    assert landing_plans(day + timedelta(days=3 + FULL_PASS_DAYS)) == (0, window)
    with store.begin() as conn:  # a changed mapping re-stages the source (staging notes when)
        conn.execute(sync_state.update().where(sync_state.c.entity == STAGING_MAPPING_ENTITY)
                     .values(updated_at=day + timedelta(days=4 + FULL_PASS_DAYS)))
    assert landing_plans(day + timedelta(days=5 + FULL_PASS_DAYS)) == (0, everything)
    with store.engine.connect() as conn:
        assert [p for (p,) in conn.execute(sa.select(landing.c.payload))] == [PRUNED, PRUNED]
