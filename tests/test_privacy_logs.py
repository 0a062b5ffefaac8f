"""No personal data in logs: a sandbox sync at DEBUG level, then every phone number, e-mail address, national id
and WeChat openid of the sandbox world (its ground truth) is searched for in the captured console output, in
Dagster's storage (event log, run records, compute logs: every file of the instance) and in the report."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import phonenumbers

from hub.sandbox import SandboxWorld

HUB = str(Path(sys.executable).parent / "hub")
DAGSTER_YAML = """telemetry:
  enabled: false
python_logs:
  python_log_level: DEBUG
  managed_python_loggers: [hub, urllib3, requests, sqlalchemy]
"""


def _patterns(world: SandboxWorld) -> dict[str, re.Pattern[bytes]]:
    """Every spelling of the world's contact data a log could carry, as byte patterns."""
    out: dict[str, re.Pattern[bytes]] = {}
    for person in world.people():
        for phone in [*person.mobiles, person.landline]:
            if not phone:
                continue
            national = str(phonenumbers.parse(phone, None).national_number)
            for form in {phone.lstrip("+"), national}:
                out[form] = re.compile(rb"(?<![0-9])" + re.escape(form.encode()) + rb"(?![0-9])")
        for email in person.emails:
            out[email] = re.compile(re.escape(email.encode()), re.I)
        if person.national_id:
            out[person.national_id] = re.compile(re.escape(person.national_id.encode()), re.I)
    for g in world.ground_truth():  # a WeChat openid identifies its follower as well as a number does
        if g.entity == "follower":
            out[g.source_id] = re.compile(re.escape(g.source_id.encode()))
    return out


def test_a_debug_sync_leaves_no_personal_data_in_logs_dagster_storage_or_the_report(tmp_path: Path) -> None:
    dagster_home = tmp_path / ".hub" / "dagster"
    dagster_home.mkdir(parents=True)
    (dagster_home / "dagster.yaml").write_text(DAGSTER_YAML, encoding="utf-8")
    proc = subprocess.run([HUB, "demo", "--customers", "120"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=900, env={**os.environ, "HUB_DATABASE_URL": "", "HUB_LOG_LEVEL": "DEBUG"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "DEBUG" in proc.stderr  # it really ran at DEBUG level
    world = SandboxWorld.create_or_load(tmp_path / ".hub" / "sandbox")
    patterns = _patterns(world)
    assert len(patterns) > 300

    places: dict[str, bytes] = {"console output": (proc.stdout + proc.stderr).encode("utf-8")}
    for root in (dagster_home, tmp_path / ".hub" / "reports"):
        for path in root.rglob("*"):
            if path.is_file():
                places[str(path.relative_to(tmp_path))] = path.read_bytes()
    assert any("history" in p or "storage" in p for p in places), sorted(places)
    assert any(p.endswith(".html") for p in places)
    found = {f"{value} in {where}" for where, data in places.items()
             for value, pattern in patterns.items() if pattern.search(data)}
    assert not found, sorted(found)[:20]


def test_a_failed_statement_does_not_carry_its_payload_into_the_exception_text(tmp_path: Path) -> None:
    """Dagster stores an asset's exception text in its event log: the statement's parameters (raw payloads)
    must not be in it — neither from the hub store nor from an SQL ERP."""
    import pytest
    import sqlalchemy as sa

    from hub.connectors.sql_erp import SqlErpConnector
    from hub.store import Store, landing

    store = Store(f"sqlite:///{tmp_path / 'hub.db'}")
    payload = {"phone": "+86 138-0013-8000", "email": "chen.wei@example.cn"}
    row = {"source": "erp", "entity": "customers", "source_id": "1", "payload": payload, "payload_hash": "h",
           "first_landed_at": sa.func.now(), "landed_at": sa.func.now()}
    with store.begin() as conn:
        conn.execute(landing.insert().values(**row))
    with pytest.raises(sa.exc.IntegrityError) as failed, store.begin() as conn:
        conn.execute(landing.insert().values(**row))  # the same record twice: unique constraint
    assert "138-0013-8000" not in str(failed.value) and "chen.wei" not in str(failed.value)
    assert "parameters hidden" in str(failed.value)
    store.dispose()
    erp = SqlErpConnector(f"sqlite:///{tmp_path / 'erp.db'}")
    assert erp.engine.hide_parameters
