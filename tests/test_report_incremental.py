"""An incremental sync's quality stages against a full recomputation, through the real store (SQLite and
PostgreSQL): the report's figures, the quality dimensions and the brake come out as they do when every kept
figure is thrown away and everything is read again."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from test_customer360_data import AS_OF, customer, golden, insert_staged, staged_row
from test_report import seed_operations

from hub.customer360 import build_360
from hub.quality import brake, score_dimensions
from hub.quality.config import QualityConfig
from hub.quality.customer_base import customer_base
from hub.report import collect_figures, write_report
from hub.store import Store, golden_customer, jsonable, payload_hash, staged_record, sync_state

QUALITY = QualityConfig()
DERIVED = {"webshop": ("guest-order-",)}
# what the stages keep between runs (fingerprinted figures); a full recomputation starts without them
KEPT = ("_quality_dimensions", "_report_figures", "_customer_base")
LATER = datetime(2026, 11, 2)


def _forget_kept(store: Store) -> None:
    with store.begin() as conn:
        conn.execute(sync_state.delete().where(sync_state.c.source == "hub", sync_state.c.entity.in_(KEPT)))


def _restage(store: Store, row: dict[str, Any], at: datetime) -> None:
    """A record staged again by an incremental sync (new content, new staged_at)."""
    with store.begin() as conn:
        conn.execute(staged_record.delete().where(staged_record.c.entity == row["entity"],
                                                  staged_record.c.record_key == row["record_key"]))
    insert_staged(store, [{**row, "staged_at": at}])


def _change_golden(store: Store, gid: str, keys: list[str], at: datetime, **kw: Any) -> None:
    rec = jsonable(golden(gid, "Anna Schmidt", keys, **kw).model_dump(mode="json"))
    with store.begin() as conn:
        conn.execute(golden_customer.update().where(golden_customer.c.golden_id == gid).values(
            record=rec, record_hash=payload_hash(rec), updated_at=at))


def _without_timeliness(dims: dict[str, Any]) -> dict[str, Any]:
    return {name: d for name, d in dims.items() if name != "timeliness"}


def _figures(store: Store, *settings: Any) -> dict[str, Any]:
    # the privacy figures count rows per table, sync_state's (where the kept figures live) among them
    return {k: v for k, v in collect_figures(store, *settings).items() if k != "privacy"}


def _full(store: Store) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Everything read again: figures, dimensions and the customer base without any kept figure."""
    _forget_kept(store)
    figures = _figures(store)
    dims = _without_timeliness(score_dimensions(store, QUALITY, derived=DERIVED))
    base = customer_base(store, update_snapshot=False)
    return figures, dims, base


def test_the_report_of_an_incremental_sync_equals_a_full_recomputation(store: Store, tmp_path: Path) -> None:
    seed_operations(store)
    first = write_report(store, tmp_path / "r.html", quality=QUALITY, derived=DERIVED)  # the first sync
    before = _figures(store, QUALITY, DERIVED)

    # an incremental sync: a shop customer staged again without his e-mail and with an invalid value, a new
    # customer, a golden record that gained an e-mail, the 360 view rebuilt a day later
    _restage(store, staged_row("customers", customer("webshop", "501", "Chen Wei", ["+8613800138000"]),
                               flags=["email.invalid"]), LATER)
    insert_staged(store, [{**staged_row("customers", customer("erp", "13", "王芳", emails=["wang@example.cn"])),
                           "staged_at": LATER}])
    _change_golden(store, "G000000002", ["webshop:502"], LATER, phones=["+4915112345678"],
                   emails=["anna@example.de", "anna.s@example.de"])
    build_360(store, {}, as_of=AS_OF + timedelta(days=1))
    # the sync's quality check, then the report
    checked = _without_timeliness(score_dimensions(store, QUALITY, derived=DERIVED))
    figures = _figures(store, QUALITY, DERIVED)
    dims = _without_timeliness(score_dimensions(store, QUALITY, derived=DERIVED))
    base = customer_base(store, update_snapshot=False)

    full_figures, full_dims, full_base = _full(store)
    assert figures == full_figures
    assert dims == checked == full_dims
    assert base == full_base
    # the change is in them (not the first sync's figures again)
    assert figures["completeness"] != before["completeness"]
    assert figures["quality_flags"] != before["quality_flags"]
    assert dims["validity"] != _without_timeliness(first.dimensions)["validity"]


def test_a_change_after_the_quality_check_is_not_hidden_by_its_tally(store: Store) -> None:
    seed_operations(store)
    score_dimensions(store, QUALITY, derived=DERIVED)  # the check tallies the completeness figures
    tallied = _figures(store, QUALITY, DERIVED)["completeness"]
    # a record staged after the check (another sync step, a manual import): the report reads it
    _restage(store, staged_row("customers", customer("erp", "11", "李娜")), LATER)
    figures = _figures(store, QUALITY, DERIVED)
    full_figures, _, _ = _full(store)
    assert figures["completeness"] == full_figures["completeness"] != tallied


def _statements_on(store: Store, table: str, fn: Any) -> int:
    seen = []

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if table in statement and statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", note)
    try:
        fn()
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", note)
    return len(seen)


def test_the_brake_of_a_sync_that_consolidated_nothing_new_reads_no_record(store: Store) -> None:
    seed_operations(store)
    with store.engine.connect() as conn:
        first = brake.measure(conn, QUALITY, None)
    assert first["records_consolidated"] > 0  # the first sync's consolidations are weighed (records read)
    accepted = datetime.now() + timedelta(seconds=1)  # noqa: DTZ005 - the store keeps naive UTC
    _restage(store, staged_row("customers", customer("webshop", "502", "Anna S.", ["+4915112345678"])), LATER)
    figures: dict[str, Any] = {}

    def measure() -> None:
        with store.engine.connect() as conn:
            figures.update(brake.measure(conn, QUALITY, accepted))

    assert _statements_on(store, "staged_record", measure) == 0
    assert figures["records_consolidated"] == figures["records_consolidated_unsupported"] == 0
    assert figures["golden_customers_merged_or_split"] == 0


def test_an_incremental_push_plan_withdraws_what_a_full_plan_withdraws(tmp_path: Path) -> None:
    """Records that left the hub since the last plan (their cross-reference closed, none opened) get their
    withdrawal from the push state of the changed records only, and the outbox equals a full plan's."""
    import shutil

    from test_customer360_scale import _pending, _seed

    from hub.push_plan import WITHDRAW, plan_pushes
    from hub.store import xref

    cfg = {"targets": ["erp", "webshop", "callcenter"], "erp": {"create_missing": True}}
    path = tmp_path / "hub.db"
    store = Store(f"sqlite:///{path}")
    _seed(store, 120)
    build_360(store, {}, as_of=AS_OF)
    plan_pushes(store, cfg)
    for target in ("erp", "webshop", "callcenter"):
        store.record_push_results([(i.id, "ok", None) for i in store.pending_pushes(target, limit=100_000)])
    t2 = datetime(2026, 4, 1)
    with store.begin() as conn:  # two shop records leave the hub (deactivated, quarantined, …)
        conn.execute(xref.update().where(xref.c.record_key.in_(["webshop:7", "webshop:55"])).values(valid_to=t2))
    build_360(store, {}, as_of=AS_OF)
    store.dispose()
    shutil.copy(path, tmp_path / "copy.db")
    store, copy = Store(f"sqlite:///{path}"), Store(f"sqlite:///{tmp_path / 'copy.db'}")

    incremental = plan_pushes(store, cfg)
    full = plan_pushes(copy, cfg, force=True)
    assert not incremental.full and full.full
    assert incremental.targets["webshop"].withdrawn == full.targets["webshop"].withdrawn == 2
    queued = _pending(store)
    assert queued == _pending(copy)
    withdrawn = payload_hash(WITHDRAW)
    assert {(t, tid) for t, tid, _, h, _ in queued if h == withdrawn} == {("webshop", "7"), ("webshop", "55")}


def test_the_brake_around_the_moves_measures_what_the_whole_golden_layer_gives(store: Store) -> None:
    """Against an accepted state the brake reads only the golden customers around the records that moved;
    its figures equal those of the whole layer read (merges, splits, moves, new records, records that left)."""
    import random

    from test_quality_brake import _assign, _stage

    rng = random.Random(5)
    t0 = datetime(2026, 3, 1)
    with store.begin() as conn:
        for i in range(240):
            _stage(conn, f"{('erp', 'webshop', 'social')[i % 3]}:{i}",
                   {"full_name": f"p{i % 90}", "emails": [f"p{i % 90}@mail.example"] if i % 4 else [],
                    "phones": [{"e164": f"+86138{i % 70:08d}"}]})
        _assign(conn, {f"G{i:03d}": [f"{('erp', 'webshop', 'social')[j % 3]}:{j}" for j in range(i, 240, 80)]
                       for i in range(80)}, t0)
    accepted = t0 + timedelta(hours=1)
    later = t0 + timedelta(hours=2)
    keys = [f"{('erp', 'webshop', 'social')[i % 3]}:{i}" for i in range(240)]
    with store.begin() as conn:
        for i in range(240, 260):  # new records, some joining existing golden customers
            _stage(conn, f"erp:{i}", {"full_name": f"p{i % 90}", "emails": [f"p{i % 90}@mail.example"]})
        moves: dict[str, list[str]] = {}
        for key in rng.sample(keys, 25):  # records moved to another (or a new) golden customer
            moves.setdefault(rng.choice([f"G{rng.randrange(80):03d}", f"N{rng.randrange(5)}"]), []).append(key)
        for i in range(240, 260):
            moves.setdefault(f"G{rng.randrange(80):03d}", []).append(f"erp:{i}")
        _assign(conn, moves, later)
        for key in rng.sample(keys, 5):  # records that left the hub
            conn.execute(sa.text("UPDATE xref SET valid_to = :at WHERE record_key = :k AND valid_to IS NULL"),
                         {"at": later, "k": key})

    with store.engine.connect() as conn:
        around = brake.measure(conn, QUALITY, accepted)
    whole = brake._around_moves
    try:  # the same measure over every cross-reference: each golden customer judged
        brake._around_moves = lambda conn, at: (brake._membership(conn, None), brake._membership(conn, at),
                                                None, None)
        with store.engine.connect() as conn:
            everything = brake.measure(conn, QUALITY, accepted)
    finally:
        brake._around_moves = whole
    assert around == everything
    assert around["golden_customers_merged_or_split"] > 10 and around["records_consolidated"] > 10


def test_the_report_after_the_quality_check_takes_its_flag_lists(store: Store) -> None:
    """The quality check counts every staged record's flag list; the report's flag table is the same count and
    takes it while nothing changed since (at a million people one read of all staged records less), and counts
    again after a change."""
    seed_operations(store)
    score_dimensions(store, QUALITY, derived=DERIVED)
    taken: dict[str, Any] = {}
    assert _statements_on(store, "quality_flags", lambda: taken.update(_figures(store, QUALITY, DERIVED))) == 0
    assert taken["quality_flags"] == _full(store)[0]["quality_flags"] != []
    score_dimensions(store, QUALITY, derived=DERIVED)
    _restage(store, staged_row("customers", customer("erp", "11", "李娜"), flags=["phones:phone.invalid"]), LATER)
    after: dict[str, Any] = {}
    assert _statements_on(store, "quality_flags", lambda: after.update(_figures(store, QUALITY, DERIVED))) > 0
    assert after["quality_flags"] == _full(store)[0]["quality_flags"] != taken["quality_flags"]
