"""The data-quality report: figures checked by parsing the HTML it writes, the JSON twin, masking, trend."""

from __future__ import annotations

import json
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path

from test_customer360_data import AS_OF, T0, insert_history, seed_demo

from hub.customer360 import build_360
from hub.push_plan import plan_pushes
from hub.report import (
    collect_figures,
    mask_email,
    mask_identifier,
    mask_name,
    mask_phone,
    quality_histogram,
    scrub_text,
    write_report,
)
from hub.store import Store, landing, match_pair, quarantine, review_decision

_VOID = {"meta", "br", "hr", "img", "input", "link", "col", "area", "base", "wbr", "source"}


class _Page(HTMLParser):
    """Collects tables (by id) as lists of row cell texts, element ids, and checks tags nest properly."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.ids: set[str] = set()
        self.tables: dict[str, list[list[str]]] = {}
        self.external: list[str] = []
        self.text: list[str] = []
        self._table: list[list[str]] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            assert a["id"] not in self.ids, f"duplicate id {a['id']}"
            self.ids.add(a["id"])
        for name in ("src", "href"):
            if a.get(name) and not (a[name] or "").startswith("#"):  # in-page links (contents) stay inside
                self.external.append(a[name] or "")
        if tag in ("script", "link", "img", "iframe"):
            self.external.append(tag)
        if tag not in _VOID:
            self.stack.append(tag)
        if tag == "table":
            self._table = []
            self.tables[a.get("id") or f"anon{len(self.tables)}"] = self._table
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            return
        self.stack.pop()
        if tag in ("td", "th") and self._cell is not None and self._table:
            self._table[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    assert html.startswith("<!DOCTYPE html>")
    assert not page.errors, page.errors[:5]
    assert page.stack == [], page.stack
    assert page.external == [], page.external  # self-contained: no scripts, links or images
    return page


def rows_by_key(table: list[list[str]], width: int = 1) -> dict[tuple[str, ...] | str, list[str]]:
    out: dict = {}
    for row in table[1:]:
        key = row[0] if width == 1 else tuple(row[:width])
        out[key] = row[width:]
    return out


def seed_operations(store: Store) -> None:
    """Demo hub + what the other stages leave behind: landing, quarantine, pairs, decisions, history, pushes."""
    seed_demo(store)
    build_360(store, {}, as_of=AS_OF)
    with store.begin() as conn:
        conn.execute(landing.insert(), [
            # every landed row has been through staging (staged_hash == payload_hash); the quarantined ones
            # below are among them
            {"source": s, "entity": e, "source_id": str(i), "payload": {"i": i}, "payload_hash": f"{s}{e}{i}",
             "staged_hash": f"{s}{e}{i}", "first_landed_at": T0, "landed_at": T0}
            for s, e, n in (("erp", "customers", 3), ("webshop", "customers", 4), ("webshop", "orders", 9),
                            ("social", "followers", 1), ("callcenter", "calls", 3))
            for i in range(n)
        ])
        conn.execute(quarantine.insert(), [
            {"source": "webshop", "entity": "customers", "source_id": "503",
             "reasons": ["required.name_missing", "required.contact_missing"], "detail": None,
             "payload": {"first_name": "", "email": "wang.fang@example.cn", "phone": "138-0013-8001"},
             "payload_hash": "q1", "quarantined_at": datetime(2026, 10, 1)},
            {"source": "webshop", "entity": "customers", "source_id": "13912345678",  # a phone used as id
             "reasons": ["required.name_missing"], "detail": {"name": "王芳"},
             "payload": {"first_name": "", "billing": {"phone": "13912345678"}}, "payload_hash": "q2",
             "quarantined_at": datetime(2026, 10, 2)},
            {"source": "erp", "entity": "customers", "source_id": "99", "reasons": ["required.name_missing"],
             "detail": None, "payload": {"name": None}, "payload_hash": "q3", "quarantined_at": datetime(2026, 10, 3)},
        ])
        conn.execute(match_pair.insert(), [
            {"left_key": lk, "right_key": rk, "match_weight": w, "match_probability": p, "band": b,
             "explanation": {}, "scored_at": T0}
            for lk, rk, w, p, b in (("erp:10", "webshop:501", 12.0, 0.99, "match"),
                                    ("social:oWx1", "webshop:501", 9.0, 0.97, "match"),
                                    ("erp:11", "webshop:502", 1.0, 0.6, "review"),
                                    ("erp:11", "erp:10", 0.5, 0.5, "review"),
                                    ("erp:12", "webshop:502", -5.0, 0.01, "non_match"))
        ])
        conn.execute(review_decision.insert(), [{"left_key": "erp:11", "right_key": "erp:10", "decision": "no-match",
                                                 "decided_by": "steward", "note": None, "decided_at": T0}])
    insert_history(store, [("G000000001", "minted", None), ("G000000002", "minted", None),
                           ("G000000003", "minted", None), ("G000000004", "minted", None),
                           ("G000000001", "merged", "G000000004"), ("G000000004", "retired", "G000000001")])
    plan_pushes(store, {"targets": ["erp", "webshop", "callcenter"]})
    pending = store.pending_pushes("erp")
    store.record_push_results([(pending[0].id, "ok", None),
                               (pending[1].id, "rejected", "party not found for phone +86 138 0013 8000")])
    web = store.pending_pushes("webshop")
    store.record_push_results([(web[0].id, "error", "HTTPError 503"), (web[1].id, "ok", None)])


def test_masking_keeps_enough_to_recognise_never_the_value() -> None:
    assert mask_phone("+8613800138000") == "138****8000"
    assert mask_phone("13800138000") == "138****8000"
    assert mask_phone("+4915112345678") == "151****5678"
    assert mask_email("chen.wei@example.cn") == "c***@example.cn"
    assert mask_name("陈伟") == "陈*" and mask_name("Anna Schmidt") == "A*** S******"
    assert scrub_text("dup of chen.wei@example.cn / +86 138-0013-8000 in order 42") == \
        "dup of c***@example.cn / 138****8000 in order 42"
    # a phone used as id is masked; a national id, an openid or a composite key is shown by its length only
    assert mask_identifier("13912345678") == "139****5678" and mask_identifier("11010519491231002X") == "‹18 chars›"
    assert mask_identifier("oWx1-abc") == "‹8 chars›" and mask_identifier("1700000000.123") == "‹14 chars›"
    assert mask_identifier("1042") == "1042"  # an ERP / shop id is no personal data


def test_quality_histogram_scale_from_data() -> None:
    h = quality_histogram([0.05, 0.55, 0.95, 1.0])
    assert h["count"] == 4 and [b["count"] for b in h["histogram"]] == [1, 0, 0, 0, 0, 1, 0, 0, 0, 2]
    assert h["histogram"][0]["bucket"] == "0.0–0.1"
    assert quality_histogram([50, 100])["histogram"][-1] == {"bucket": "90–100", "count": 1}
    assert quality_histogram([])["histogram"] == []


def test_report_figures_in_html_and_json_twin(store: Store, tmp_path: Path) -> None:
    seed_operations(store)
    out = tmp_path / "reports" / "data_quality.html"
    stats = write_report(store, out, {"run_id": "r-1", "mode": "full_sync"})
    html = out.read_text(encoding="utf-8")
    page = parse(html)
    twin = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    assert stats.json_path == str(out.with_suffix(".json")) and stats.trend_rows == 0

    landing_rows = rows_by_key(page.tables["landing-table"], 2)
    assert landing_rows[("webshop", "orders")][0] == "9" and landing_rows[("callcenter", "calls")][0] == "3"
    staging = rows_by_key(page.tables["staging-table"], 2)
    # webshop customers: 2 staged, 2 quarantined -> 50 %
    assert staging[("webshop", "customers")][:3] == ["2", "2", "50.0"]
    assert "required.name_missing 2" in staging[("webshop", "customers")][3]
    assert staging[("erp", "customers")][:3] == ["2", "1", "33.3"]
    assert staging[("webshop", "orders")] == ["9", "0", "0.0", ""]  # reasons are per source AND entity
    # rows are per landing entity (what each source sent), not per canonical entity it feeds
    assert staging[("social", "followers")][:3] == ["1", "0", "0.0"]
    assert not any(entity == "interactions" for _, entity in staging)
    reasons = rows_by_key(page.tables["quarantine-reasons"])
    assert {k: v[0] for k, v in reasons.items()} == {"required.name_missing": "3", "required.contact_missing": "1"}
    # every code in plain words with what to do about it
    assert reasons["required.name_missing"][1] == "No usable name (person or company)"
    assert "source system" in reasons["required.name_missing"][2]
    sample = page.tables["quarantine-sample"]
    assert len(sample) == 4 and sample[1][:3] == ["erp", "customers", "99"]  # newest first
    assert sample[1][4] == "2026-10-03 00:00:00"
    assert sample[2][2] == "139****5678"  # a phone number used as source id is masked
    flags = rows_by_key(page.tables["quality-flags-table"], 2)
    assert flags[("webshop", "email.fixed")][0] == "1" and flags[("erp", "birth_date.nulled")][0] == "1"

    comp = rows_by_key(page.tables["completeness-table"])
    # webshop: Chen Wei (phone + email) and Anna (phone only); nobody gave a birth date or address
    assert comp["webshop"] == ["2", "100.0", "50.0", "100.0", "0.0", "0.0"]
    assert comp["social"] == ["1", "100.0", "0.0", "0.0", "0.0", "0.0"]
    assert comp["golden"] == ["3", "100.0", "66.7", "100.0", "0.0", "0.0"]

    assert rows_by_key(page.tables["pairs-by-band"]) == {"match": ["2", ""], "non_match": ["1", ""],
                                                         "review": ["2", ""]}
    assert rows_by_key(page.tables["records-per-golden"])["3"][0] == "1"
    assert rows_by_key(page.tables["records-per-golden"])["1"][0] == "2"
    assert rows_by_key(page.tables["history-events"])["merged"][0] == "1"
    kpi = "".join(page.text)
    assert twin["matching"]["steward_queue"] == 1  # two review pairs, one already decided
    assert twin["matching"]["golden_active"] == 3 and twin["matching"]["golden_retired"] == 1
    assert "pairs awaiting a steward" in kpi
    assert twin["golden_quality"]["count"] == 3 and twin["golden_quality"]["max"] == 0.9
    assert rows_by_key(page.tables["c360-segment"])["vip"][0] == "1"
    consent = rows_by_key(page.tables["c360-consent"])
    # 陈伟: social opted out (WeChat), email in; Anna: email + social in; 李娜: nothing known
    assert consent["social"] == ["1", "1", "1"] and consent["email"] == ["2", "0", "1"]
    assert consent["sms"] == ["0", "0", "3"]

    push = rows_by_key(page.tables["push-table"])
    assert push["erp"][:3] == ["1", "1", "0"] and push["webshop"][:3] == ["1", "0", "1"]
    assert push["callcenter"] == ["0", "0", "0", "3", "0", "0", "0"]  # ... pending now, in error now, drift
    reasons = [t for k, t in page.tables.items() if k.startswith("anon")]
    flat = " ".join(c for t in reasons for row in t for c in row)
    assert "rejected: party not found for phone 138****8000" in flat and "error: HTTPError 503" in flat

    # figures in the twin are the same as on the page
    assert twin["headline"]["quarantined_records"] == 3 == stats.quarantined_records
    assert twin["headline"]["golden_customers"] == 3 and twin["headline"]["push_rejected"] == 1
    assert twin["run_summary"] == {"run_id": "r-1", "mode": "full_sync"}

    # no personal data in clear anywhere in the page or the twin
    twin_text = out.with_suffix(".json").read_text(encoding="utf-8")
    for secret in ("13800138000", "138 0013 8000", "13912345678", "chen.wei@example.cn", "wang.fang",
                   "138-0013-8001", "陈伟", "Anna Schmidt", "王芳", "4915112345678"):
        assert secret not in html and secret not in twin_text, secret
    assert "| golden_customers | 3 |" in stats.markdown()


def test_report_trend_against_previous_twin(sqlite_store: Store, tmp_path: Path) -> None:
    store = sqlite_store
    out = tmp_path / "dq.html"
    first = write_report(store, out)  # empty hub: the report still renders
    page = parse(out.read_text(encoding="utf-8"))
    assert "trend-table" not in page.tables and first.golden_customers == 0
    assert "Nothing landed yet." in "".join(page.text)

    seed_operations(store)
    second = write_report(store, out)
    page = parse(out.read_text(encoding="utf-8"))
    trend = rows_by_key(page.tables["trend-table"])
    assert trend["golden_customers"] == ["0", "3", "+3"]
    assert trend["quarantined_records"] == ["0", "3", "+3"]
    assert trend["golden_quality_mean"][0] == "–"  # no previous value
    assert second.trend_rows == len(trend)
    twin = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    assert twin["previous_generated_at"] is not None


def test_render_html_escapes_everything(sqlite_store: Store, tmp_path: Path) -> None:
    # a source name and a run summary with markup: written through the real report, escaped on the page
    with sqlite_store.begin() as conn:
        conn.execute(landing.insert().values(source="<script>alert(1)</script>", entity="customers", source_id="1",
                                             payload={}, payload_hash="h", staged_hash=None, first_landed_at=T0,
                                             landed_at=T0))
    out = tmp_path / "dq.html"
    write_report(sqlite_store, out, {"x": "<b>y</b>"})
    html = out.read_text(encoding="utf-8")
    parse(html)
    assert "<script>" not in html and "&lt;script&gt;" in html and "&lt;b&gt;y&lt;/b&gt;" in html


def test_record_wide_figures_are_reused_until_their_tables_change(sqlite_store: Store) -> None:
    seed_operations(sqlite_store)
    first = collect_figures(sqlite_store)
    again = collect_figures(sqlite_store)
    for key in ("staging", "quarantine_reasons", "quality_flags", "completeness", "customer_360"):
        assert again[key] == first[key]
    with sqlite_store.begin() as conn:  # one more quarantined record: the staging figures follow at once
        conn.execute(quarantine.insert().values(
            source="erp", entity="customers", source_id="98", reasons=["required.name_missing"], detail=None,
            payload={}, payload_hash="q4", quarantined_at=datetime(2026, 10, 4)))
    after = collect_figures(sqlite_store)
    erp = next(r for r in after["staging"] if (r["source"], r["entity"]) == ("erp", "customers"))
    before = next(r for r in first["staging"] if (r["source"], r["entity"]) == ("erp", "customers"))
    assert erp["quarantined"] == before["quarantined"] + 1
    assert after["completeness"] == first["completeness"]


def test_quality_flags_are_counted_per_source_and_code_on_every_backend(any_store) -> None:  # noqa: ANN001
    """The report's flag table, counted by the database per distinct flag list (a code twice in one list counts
    twice, as record by record)."""
    from datetime import datetime

    from hub.report import _staging_figures
    from hub.store import staged_record

    lists = [["phones:phone.invalid", "emails:email.typo"], ["phones:phone.invalid", "emails:email.typo"], [],
             ["name:name.initials", "name:name.initials"], ["phones:phone.invalid"]]
    with any_store.begin() as conn:
        for i, flags in enumerate(lists):
            conn.execute(staged_record.insert().values(
                entity="customers", record_key=f"erp:{i}", source="erp" if i < 4 else "shop", source_id=str(i),
                record={"source": "erp"}, quality_flags=flags, record_hash=str(i), staged_at=datetime(2026, 1, 1)))
    with any_store.engine.connect() as conn:
        table = _staging_figures(conn, {})["quality_flags"]
    assert table == [{"source": "erp", "code": "emails:email.typo", "count": 2},
                     {"source": "erp", "code": "name:name.initials", "count": 2},
                     {"source": "erp", "code": "phones:phone.invalid", "count": 2},
                     {"source": "shop", "code": "phones:phone.invalid", "count": 1}]


def test_the_reports_whole_table_counts_read_indexes_not_the_big_tables(sqlite_store: Store, tmp_path: Path) -> None:
    """At a million people landing, the golden records and the match pairs are 10, 4.7 and 1.1 GB, mostly not in
    memory: the report's counts per source, newest change, "changed since the last run" and quality histogram
    must be answered from indexes (SQLite's plan: SEARCH or a COVERING INDEX), never by reading every row, and
    what must read every row (the flag lists) reads the table in order."""
    from query_plans import plan_of, statements_of

    from hub.report import run_figures

    seed_operations(sqlite_store)

    def report() -> None:
        write_report(sqlite_store, tmp_path / "dq.html")
        with sqlite_store.engine.connect() as conn:
            run_figures(conn, None)
            run_figures(conn, datetime(2026, 10, 1))

    checked = 0
    for statement, parameters in statements_of(sqlite_store, report):
        if any(f"{t}.{c}" in statement for t, c in (("golden_customer", "record"), ("landing", "payload"),
                                                    ("golden_customer", "lineage"))):
            continue  # reads the records themselves (completeness when no quality check kept it)
        plan = plan_of(sqlite_store, statement, parameters)
        # nor any table read whole through an index that does not hold what is read (every row fetched out of
        # order: the flag lists per source went through (source, staged_at) so)
        assert not [p for p in plan if p.startswith(("SCAN staged_record USING INDEX", "SCAN landing USING INDEX",
                                                     "SCAN golden_customer USING INDEX"))], (statement, plan)
        for table in ("landing", "golden_customer", "match_pair"):
            for step in plan:
                if step.startswith(f"SCAN {table}") or step.startswith(f"SEARCH {table}"):
                    checked += 1
                    assert step.startswith("SEARCH") or "COVERING INDEX" in step, (statement, plan)
    assert checked >= 10
