"""`hub sync` as a user runs it against their own systems: the sandbox started on its own
(`python -m hub.sandbox serve DIR`), its printed variables exported, then `hub sync` in an empty folder.

Dry run first (nothing sent, the outbox pending), then the real sync (exactly those rows sent, ok in the push
log), then again (nothing new). `--source` pulls only the named source; a typo in hub.yaml is exit 2 naming
the key, before anything runs.
"""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sandbox_process import served_sandbox

HUB = str(Path(sys.executable).parent / "hub")
DEFAULT_YAML = Path(__file__).resolve().parents[1] / "hub" / "hub.default.yaml"


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A small sandbox world served by its own process; yields the HUB_* variables it printed."""
    with served_sandbox(tmp_path / "world", customers=200) as env:
        yield env


def hub(cwd: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HUB_") and k != "DAGSTER_HOME"}
    return subprocess.run([HUB, *args], cwd=cwd, capture_output=True, text=True, timeout=900,
                          env={**clean, "HUB_DATABASE_URL": "", **env})


def push_log(cwd: Path, env: dict[str, str], status: str) -> list[dict[str, str]]:
    done = hub(cwd, "push", "log", "--status", status, "--limit", "100000", "--format", "csv", env=env)
    assert done.returncode == 0, done.stderr
    return list(csv.DictReader(io.StringIO(done.stdout)))


def model_summary(cwd: Path) -> str:
    """The match_model asset's summary in its latest materialization (the instance the UI reads)."""
    import dagster as dg

    instance = dg.DagsterInstance.from_config(str(cwd / ".hub" / "dagster"))
    try:
        event = instance.get_latest_materialization_event(dg.AssetKey("match_model"))
        assert event is not None and event.asset_materialization is not None
        return event.asset_materialization.metadata["summary"].value
    finally:
        instance.dispose()


def pulled(summary: str) -> dict[str, int]:
    """New records per source from the summary's "Pulled" block."""
    section = summary.split("Pulled", 1)[1].split("Staged", 1)[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^\s+(\w+)\s+(\d+) /", section, re.M)}


def test_dry_run_then_sync_then_nothing_new(tmp_path: Path, sandbox: dict[str, str]) -> None:
    work = tmp_path / "work"
    work.mkdir()
    dry = hub(work, "sync", "--dry-run", env=sandbox)
    assert dry.returncode == 0, dry.stdout + dry.stderr[-4000:]
    assert "hub sync — run" in dry.stdout and "Dry run — nothing was sent" in dry.stdout
    assert re.search(r"webshop\s+would create \d+, update [1-9]\d*, remove \d+", dry.stdout), dry.stdout
    assert "→" in dry.stdout.split("Dry run — nothing was sent", 1)[1]  # masked before → after samples
    # live progress on stderr: steps started and finished with their counts
    assert "▶ pull_sources started" in dry.stderr and "    raw_webshop: new" in dry.stderr, dry.stderr
    assert "✓ push_targets finished" in dry.stderr, dry.stderr
    assert re.search(r"raw_webshop: new [1-9]", dry.stderr), dry.stderr
    assert (work / ".hub" / "dagster" / "dagster.yaml").exists()  # the instance the UI reads
    assert push_log(work, sandbox, "ok") == []
    pending = push_log(work, sandbox, "pending")
    assert pending, "a dry run leaves the outbox pending"
    # personal data is masked in the preview: no e-mail address or full phone number in the output
    assert not re.search(r"[\w.+-]+@[\w-]+\.\w+", dry.stdout) and not re.search(r"\d{11}", dry.stdout)

    # the first sync's match step fitted the first model (the model stage left it to it: one preparation)
    assert model_summary(work).startswith("**match_model**: deferred")

    real = hub(work, "sync", env=sandbox)
    assert real.returncode == 0, real.stdout + real.stderr[-4000:]
    assert model_summary(work).startswith("**match_model**: kept")
    ok = push_log(work, sandbox, "ok")
    assert len(ok) == len(pending), "the real sync sends exactly the rows the dry run showed"
    assert push_log(work, sandbox, "pending") == []

    again = hub(work, "sync", env=sandbox)
    assert again.returncode == 0, again.stdout + again.stderr[-4000:]
    assert len(push_log(work, sandbox, "ok")) == len(ok), "a second sync sends nothing new"
    assert all(new == 0 for new in pulled(again.stdout).values()), again.stdout


def test_source_pulls_only_the_named_source(tmp_path: Path, sandbox: dict[str, str]) -> None:
    work = tmp_path / "work"
    work.mkdir()
    done = hub(work, "sync", "--source", "webshop", "--dry-run", env=sandbox)
    assert done.returncode == 0, done.stdout + done.stderr[-4000:]
    assert set(pulled(done.stdout)) == {"webshop"}, done.stdout
    assert "raw_erp" not in done.stderr and "▶ golden_customers started" in done.stderr
    assert "▶ push_targets started" in done.stderr and "    push_webshop: sent" in done.stderr, done.stderr
    assert re.search(r"raw_webshop/customers: 100%.*\d+/\d+", done.stderr), done.stderr  # the bar of a known total

    # --full ignores the stored cursors: every record is read again (and found unchanged)
    full = hub(work, "sync", "--source", "webshop", "--full", "--dry-run", env=sandbox)
    assert full.returncode == 0, full.stdout + full.stderr[-4000:]
    section = full.stdout.split("Pulled", 1)[1].split("Staged", 1)[0]
    unchanged = {m[1]: int(m[2]) for m in re.finditer(r"^\s+(\w+)\s+\d+ /\s+\d+ /\s+(\d+)", section, re.M)}
    assert set(unchanged) == {"webshop"} and unchanged["webshop"] > 0, full.stdout

    unknown = hub(work, "sync", "--source", "webshopp", env=sandbox)
    assert unknown.returncode == 2 and "webshopp" in unknown.stderr and "Traceback" not in unknown.stderr


def test_configuration_errors_stop_before_anything_runs(tmp_path: Path, sandbox: dict[str, str]) -> None:
    cfg = yaml.safe_load(DEFAULT_YAML.read_text(encoding="utf-8"))
    cfg["sources"]["webshop"]["secret_evn"] = cfg["sources"]["webshop"].pop("secret_env")
    (tmp_path / "hub.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    done = hub(tmp_path, "sync", env=sandbox)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "sources.webshop.secret_evn" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / ".hub" / "hub.db").exists()  # nothing ran

    # a variable hub.yaml names but the environment lacks: named, never a value
    missing = {k: v for k, v in sandbox.items() if k != "HUB_WEBSHOP_SECRET"}
    (tmp_path / "hub.yaml").unlink()
    done = hub(tmp_path, "sync", env=missing)
    assert done.returncode == 2 and "HUB_WEBSHOP_SECRET" in done.stderr and "Traceback" not in done.stderr
    assert sandbox["HUB_WEBSHOP_KEY"] not in done.stderr


@pytest.mark.parametrize(("section", "typo", "named"), [
    ("push", {"targets": ["erp", "webshp"]}, "push.targets.webshp"),
    ("push", {"webshop": {"consent_chanel": "email"}}, "push.webshop: consent_chanel"),
    ("matching", {"engin": "exact"}, "matching.engin"),
    ("survivorship", {"fields": {"full_name": {"strategy": "most_recent", "tie_breaker": []}}},
     "survivorship.fields.full_name.tie_breaker"),
    ("schedule", {"crom": "0 3 * * *"}, "schedule.crom"),
    ("segments", {"rulez": []}, "segments.rulez"),
])
def test_a_typo_in_any_section_is_exit_2_naming_the_key(tmp_path: Path, section: str, typo: dict,
                                                         named: str) -> None:
    cfg = yaml.safe_load(DEFAULT_YAML.read_text(encoding="utf-8"))
    cfg[section] = {**(cfg.get(section) or {}), **typo}
    (tmp_path / "hub.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    done = hub(tmp_path, "sync", "--dry-run", env={})
    assert done.returncode == 2, done.stdout + done.stderr
    assert named in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert not (tmp_path / ".hub").exists()  # nothing ran, not even Dagster's instance was created


@pytest.mark.parametrize(("source", "options", "named"), [
    ("webshop", {"batch_size": 50}, "sources.webshop.options.batch_size"),  # the shop takes no options
    ("erp", {"overlap_minutes": 5}, "sources.erp.options.overlap_minutes"),  # a Tryton option on a SQL ERP
])
def test_an_option_the_source_kind_does_not_know_is_exit_2_naming_it(tmp_path: Path, source: str, options: dict,
                                                                      named: str) -> None:
    cfg = yaml.safe_load(DEFAULT_YAML.read_text(encoding="utf-8"))
    cfg["sources"][source]["options"] = options
    (tmp_path / "hub.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    done = hub(tmp_path, "sync", "--dry-run", env={})
    assert done.returncode == 2, done.stdout + done.stderr
    assert named in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert not (tmp_path / ".hub").exists()


def test_the_packaged_tryton_block_works_as_written_when_uncommented(tmp_path: Path) -> None:
    """Uncommented as its comment says, the block is a source that is pushed to (no `push.targets` to edit)
    and reads the variables it names: here the first one missing is reported before anything runs."""
    text = DEFAULT_YAML.read_text(encoding="utf-8")
    text = re.sub(r"^  # (tryton:|  kind: tryton|  \w+_env: HUB_TRYTON_\w+)", r"  \1", text, flags=re.M)
    cfg = yaml.safe_load(text)
    assert cfg["sources"]["tryton"]["url_env"] == "HUB_TRYTON_URL"
    for name in ("erp", "webshop", "social", "callcenter"):
        cfg["sources"][name]["enabled"] = False
    (tmp_path / "hub.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    done = hub(tmp_path, "sync", "--dry-run", env={})
    assert done.returncode == 2 and "sources.tryton.url_env" in done.stderr and "HUB_TRYTON_URL" in done.stderr
    from hub.config import load_config

    assert load_config(tmp_path / "hub.yaml").push_targets() == ["tryton"]
    readme = (DEFAULT_YAML.parents[1] / "README.md").read_text(encoding="utf-8")
    for var in ("HUB_TRYTON_URL", "HUB_TRYTON_DATABASE", "HUB_TRYTON_USER", "HUB_TRYTON_PASSWORD"):
        assert var in readme, var  # the README names the variables the file reads
    assert not re.search(r"(?<!HUB_)TRYTON_URL", readme)


def test_the_readme_example_is_a_valid_hub_yaml_with_every_variable_named() -> None:
    readme = (DEFAULT_YAML.parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Running against your own systems", 1)[1].split("\n## ", 1)[0]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    shell = section.split("```sh\n", 1)[1].split("```", 1)[0]
    from hub.config import HubConfig

    cfg = HubConfig.model_validate(yaml.safe_load(example))
    assert {s.kind for s in cfg.sources.values()} == {"tryton", "woocommerce", "asterisk_cdr"}
    assert cfg.push_targets() == list(cfg.sources)
    named = {v for s in cfg.sources.values() for k, v in s if k.endswith("_env") and v}
    assert named <= set(re.findall(r"\b(HUB_\w+)=", shell)), named
    for command in ("hub sync --dry-run", "hub sync ", "hub push log", "hub ui"):
        assert command in shell, command


def test_the_ui_dry_run_job_sends_nothing(tmp_path: Path, sandbox: dict[str, str]) -> None:
    """`full_sync_dry_run` (what the UI launches) previews in every push step and leaves the outbox pending."""
    script = (
        "import dagster as dg\n"
        "from hub.definitions import defs\n"
        "from hub.sync import dagster_home\n"
        "dagster_home()\n"
        "with dg.DagsterInstance.get() as instance:\n"
        "    r = defs.resolve_job_def('full_sync_dry_run').execute_in_process(instance=instance)\n"
        "mats = [e.event_specific_data.materialization for e in r.get_asset_materialization_events()]\n"
        "pushes = {m.asset_key.to_user_string(): m.metadata for m in mats\n"
        "          if m.asset_key.to_user_string().startswith('push_') and m.asset_key.to_user_string() != 'push_outbox'}\n"
        "assert r.success and len(pushes) == 4, pushes\n"
        "assert all(m['dry_run'].value is True and m['sent'].value == 0 for m in pushes.values())\n"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HUB_") and k != "DAGSTER_HOME"}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          timeout=900, env={**clean, "HUB_DATABASE_URL": "", **sandbox})
    assert done.returncode == 0, done.stderr[-4000:]
    assert push_log(tmp_path, sandbox, "ok") == [] and push_log(tmp_path, sandbox, "pending")


def test_hub_ui_starts_the_sandbox_only_for_the_demo_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hub.config import PACKAGED_DEFAULT, load_config
    from hub.demo import uses_sandbox

    for var in [v for v in os.environ if v.startswith("HUB_")]:
        monkeypatch.delenv(var)
    assert uses_sandbox(PACKAGED_DEFAULT, load_config(PACKAGED_DEFAULT))
    with monkeypatch.context() as served:  # a sandbox served on its own, its printed variables exported
        for var in ("HUB_ERP_URL", "HUB_WEBSHOP_URL", "HUB_WEBSHOP_KEY", "HUB_WEBSHOP_SECRET", "HUB_WECHAT_URL",
                    "HUB_WECHAT_APPID", "HUB_WECHAT_SECRET", "HUB_CDR_DIR"):
            served.setenv(var, "x")
        assert not uses_sandbox(PACKAGED_DEFAULT, load_config(PACKAGED_DEFAULT))
    readme = (DEFAULT_YAML.parents[1] / "README.md").read_text(encoding="utf-8")
    example = readme.split("## Running against your own systems", 1)[1].split("```yaml\n", 1)[1].split("```")[0]
    (tmp_path / "hub.yaml").write_text(example, encoding="utf-8")
    assert not uses_sandbox(tmp_path / "hub.yaml", load_config(tmp_path / "hub.yaml"))


def test_hub_ui_stops_on_sigterm_whichever_thread_the_kernel_hands_it_to(tmp_path: Path) -> None:
    """`hub ui` with its sandbox: `kill` stops the UI (the whole `dagster dev` process group) and the sandbox,
    even when the signal lands in one of the sandbox's server threads (the main thread used to sleep on in
    `wait()` for good, the UI still up)."""
    import signal
    import time

    import requests
    from sandbox_process import signal_another_thread
    from test_connectors_base import free_port

    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HUB_") and k != "DAGSTER_HOME"}
    out = tmp_path / "ui.log"  # a file, not a pipe: dagster's output (runs the sensor starts log a lot) must not
    # fill a pipe nobody reads and stop the UI writing
    with out.open("w") as log:
        proc = subprocess.Popen([HUB, "ui", "--sandbox", "--customers", "30", "--port", str(port)], cwd=tmp_path,
                                stdout=log, stderr=subprocess.STDOUT, text=True,
                                env={**clean, "HUB_DATABASE_URL": ""})
    dagster_group = None
    try:
        for _ in range(240):  # `hub ui` says where the UI is once `dagster dev` runs
            if "Dagster UI: http://127.0.0.1:" in out.read_text(errors="replace"):
                break
            assert proc.poll() is None, out.read_text(errors="replace")[-3000:]
            time.sleep(0.5)
        else:
            raise AssertionError("`hub ui` never said where the UI is")
        children = [int(p) for p in os.listdir("/proc") if p.isdigit() and _parent_pid(int(p)) == proc.pid
                    and "dagster" in _command_of(int(p))]
        assert len(children) == 1, children  # `dagster dev`, its own process group
        dagster_group = os.getpgid(children[0])
        for _ in range(240):  # the UI answers
            try:
                if requests.get(f"http://127.0.0.1:{port}/server_info", timeout=2).ok:
                    break
            except requests.RequestException:
                time.sleep(0.5)
        else:
            raise AssertionError("the Dagster UI never answered: " + out.read_text(errors="replace")[-3000:])
        signal_another_thread(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        for _ in range(120):  # the UI's processes are gone too (a run the sensor started may take a while)
            try:
                os.killpg(dagster_group, 0)
            except ProcessLookupError:
                break
            time.sleep(0.5)
        else:
            left = [_command_of(int(p)) for p in os.listdir("/proc") if p.isdigit() and _group_of(int(p)) == dagster_group]
            raise AssertionError(f"`dagster dev`'s processes outlived `hub ui`: {left}")
    finally:
        if proc.poll() is None:
            proc.kill()
        if dagster_group is not None:
            try:
                os.killpg(dagster_group, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _command_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")[:200].decode(errors="replace")
    except OSError:
        return "(gone)"


def _group_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def _parent_pid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])
