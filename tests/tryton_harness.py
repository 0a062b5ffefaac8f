"""A real trytond server for the Tryton connector tests and bench.

What it does (see /work/shared/reference/tryton.md for the recipe it follows):

* builds once, and caches under ``.hub/cache/tryton/<trytond version>-<recipe>/``, an SQLite database with
  party, company, sale, stock and carrier activated and the static reference data the seed needs (company,
  currency, a few countries, salable goods with stock, a carrier) — ``trytond-admin`` is the slow part
  (~30 s), so it is paid once per trytond version;
* per session, copies that snapshot into a temp dir, starts ``trytond`` on a free 127.0.0.1 port in its own
  process group (``setsid``), waits until it answers JSON-RPC, seeds parties (Chinese names, addresses,
  contact mechanisms, identifiers, categories), sales with lines (quoted / confirmed) and customer shipments
  (waiting / packed / done) over JSON-RPC, and kills the server when done.

The admin password is a throwaway for this local, temporary database only.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import itertools
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests

from hub.connectors.tryton import encode_value

REPO_ROOT = Path(__file__).resolve().parent.parent
CACHE_ROOT = Path(os.environ.get("HUB_CACHE_DIR", REPO_ROOT / ".hub" / "cache")) / "tryton"
DB_NAME = "tryton"
ADMIN_LOGIN = "admin"
ADMIN_PASSWORD = "hub-test-admin-pass"  # throwaway: local temp database only
MODULES = ("party", "company", "sale", "stock", "carrier")
# Bump when the template recipe below changes, so stale caches are not reused.
RECIPE_VERSION = "3"


def _skip_or_fail(reason: str) -> None:
    try:  # the shared rule (tests/conftest.py) when running under pytest
        from conftest import require_service
    except ImportError:
        import pytest

        if os.environ.get("HUB_REQUIRE_SERVICES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    else:
        require_service("trytond", reason)


def require_trytond() -> str:
    """Return the trytond version, or skip (fail under HUB_REQUIRE_SERVICES=1) if it is not installed."""
    try:
        import trytond
    except ImportError as exc:  # pragma: no cover - depends on the environment
        _skip_or_fail(f"trytond is not importable ({exc}); install trytond + modules to run Tryton tests")
        raise
    if _bin("trytond") is None or _bin("trytond-admin") is None:
        _skip_or_fail("trytond / trytond-admin executables not found next to the Python interpreter")
    return trytond.__version__


# This machine's resolver answers NXDOMAIN for every domain, and with email_validator installed trytond
# checks e-mail deliverability through DNS, rejecting every email contact mechanism. The test server
# therefore runs with syntax-only e-mail validation (HUB_TRYTON_DNS_EMAIL_CHECK=1 keeps the real check).
_LAUNCHER = """
import os, sys
if os.environ.get("HUB_TRYTON_DNS_EMAIL_CHECK") != "1":
    import trytond.tools.email_ as _e
    _orig = _e.validate_email
    _e.validate_email = lambda email, check_deliverability=True: _orig(email, check_deliverability=False)
# Orphan guard: if the test process dies without stopping us (SIGKILL, crash), exit instead of lingering.
_parent = int(os.environ.get("HUB_TRYTON_PARENT_PID", "0"))
if _parent:
    import signal, threading, time

    def _watch():
        while os.getppid() == _parent:
            time.sleep(1)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=_watch, daemon=True).start()
sys.argv[0] = "trytond"
from trytond.cli import main
sys.exit(main())
"""


def _bin(name: str) -> str | None:
    cand = Path(sys.executable).parent / name
    if cand.exists():
        return str(cand)
    return shutil.which(name)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------------------------- JSON-RPC
class RawRpc:
    """Minimal, independent JSON-RPC client used to seed and to check the connector against the server."""

    def __init__(self, url: str, database: str, login: str = ADMIN_LOGIN, password: str = ADMIN_PASSWORD):
        self.url = url.rstrip("/")
        self.database = database
        self.session = requests.Session()
        # The server labels >1400-char bodies gzip even when they are not; asking for gzip avoids that.
        self.session.headers["Accept-Encoding"] = "gzip"
        self.context: dict[str, Any] = {}
        self._ids = itertools.count(1)
        uid, token = self._post("common.db.login", [login, {"password": password}, "en"])[:2]
        self.uid = uid
        auth = base64.b64encode(f"{login}:{uid}:{token}".encode()).decode()
        self.session.headers["Authorization"] = f"Session {auth}"

    def _post(self, method: str, params: list) -> Any:
        r = self.session.post(f"{self.url}/{self.database}/rpc/",
                              json={"id": next(self._ids), "method": method, "params": encode_value(params)},
                              timeout=300)
        r.raise_for_status()
        body = r.json()
        if "error" in body:
            raise RuntimeError(f"{method}: {body['error']}")
        return body["result"]

    def call(self, method: str, *params: Any) -> Any:
        """model.* call; appends the context argument Tryton requires."""
        return self._post(method, [*params, self.context])

    def search_read(self, model: str, domain: list, fields: list[str], order: list | None = None,
                    offset: int = 0, limit: int | None = None) -> list[dict]:
        return self.call(f"model.{model}.search_read", domain, offset, limit,
                         order or [["id", "ASC"]], fields)

    def search(self, model: str, domain: list, limit: int | None = None) -> list[int]:
        return self.call(f"model.{model}.search", domain, 0, limit, [["id", "ASC"]])

    def create(self, model: str, values: list[dict]) -> list[int]:
        return self.call(f"model.{model}.create", values)

    def write(self, model: str, ids: list[int], values: dict) -> None:
        self.call(f"model.{model}.write", ids, values)


def wait_until_up(url: str, proc: subprocess.Popen | None, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"trytond exited early with code {proc.returncode}")
        try:
            r = requests.post(f"{url}/rpc/", json={"id": 0, "method": "common.server.version", "params": []},
                              timeout=2)
            if r.status_code == 200:
                return
        except requests.RequestException as exc:
            last = exc
        time.sleep(0.2)
    raise TimeoutError(f"trytond did not answer within {timeout}s: {last}")


# --------------------------------------------------------------------------------------------- server
@dataclass
class TrytonServer:
    workdir: Path
    port: int
    database: str = DB_NAME
    username: str = ADMIN_LOGIN
    password: str = ADMIN_PASSWORD
    proc: subprocess.Popen | None = None
    log_path: Path | None = None
    seed: SeedSummary | None = None
    pg_uri: str | None = None  # trytond database uri for the PostgreSQL backend; None = SQLite in workdir/db

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def db_file(self) -> Path:
        return self.workdir / "db" / f"{self.database}.sqlite"

    def rpc(self) -> RawRpc:
        r = RawRpc(self.url, self.database, self.username, self.password)
        prefs = r._post("model.res.user.get_preferences", [True, {}])
        r.context = {"company": prefs.get("company"), "language": "en"}
        return r

    def start(self) -> None:
        conf = _write_conf(self.workdir, self.port, self.pg_uri)
        self.log_path = self.workdir / "trytond.log"
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, "-c", str(conf), "-d", self.database],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # own process group, so stop() can kill everything it spawned
            env={**os.environ, "TRYTOND_CONFIG": str(conf), "HUB_TRYTON_PARENT_PID": str(os.getpid())},
        )
        log.close()
        try:
            wait_until_up(self.url, self.proc)
        except Exception:
            self.stop()
            raise

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _write_conf(workdir: Path, port: int, pg_uri: str | None = None) -> Path:
    conf = workdir / "trytond.conf"
    database = f"uri = {pg_uri}\n" if pg_uri else f"uri = sqlite://\npath = {workdir / 'db'}\n"
    conf.write_text(
        f"[database]\n{database}language = en\n\n"
        f"[web]\nlisten = 127.0.0.1:{port}\n\n"
        "[session]\n# long enough for the test session; also the login-lockout window\ntimeout = 3600\n")
    return conf


def _trytond_admin_init(conf: Path, database: str, work: Path) -> None:
    passfile = work / "adminpass.txt"
    passfile.write_text(ADMIN_PASSWORD + "\n")
    subprocess.run(
        [_bin("trytond-admin"), "-c", str(conf), "-d", database, "-u", *MODULES, "--activate-dependencies"],
        # answers the "email for admin (empty for none)" prompt; the password comes from TRYTONPASSFILE
        input=b"\n", check=True, capture_output=True,
        env={**os.environ, "TRYTONPASSFILE": str(passfile)},
    )


# --------------------------------------------------------------------------------------------- template
def _template_path(version: str) -> Path:
    key = hashlib.sha256(f"{version}|{','.join(MODULES)}|{RECIPE_VERSION}".encode()).hexdigest()[:10]
    return CACHE_ROOT / f"{version}-{key}" / f"{DB_NAME}.sqlite"


def template_db(version: str) -> Path:
    """Path of the cached, initialised database; built (slowly, once) when missing."""
    path = _template_path(version)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a parallel test run waits instead of building it twice
        if not path.exists():
            _build_template(path)
    return path


def _build_template(dest: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="tryton-tpl-") as tmp:
        work = Path(tmp)
        (work / "db").mkdir()
        (work / "db" / f"{DB_NAME}.sqlite").touch()  # the sqlite backend refuses a missing file
        _trytond_admin_init(_write_conf(work, free_port()), DB_NAME, work)
        server = TrytonServer(workdir=work, port=free_port())
        server.start()
        try:
            _setup_reference_data(server)
        finally:
            server.stop()
        _sqlite_backup(work / "db" / f"{DB_NAME}.sqlite", dest)


PRODUCTS = [("W000", "Widget", "10.00"), ("W001", "Gadget", "25.50"), ("T100", "Tea tin 茶叶", "48.00"),
            ("S200", "Silk scarf 丝巾", "120.00"), ("P300", "Porcelain cup 瓷杯", "15.00")]


def _setup_reference_data(server: TrytonServer) -> None:
    """Company, currency, countries, salable goods with stock, a carrier — done once per template."""
    rpc = RawRpc(server.url, server.database)
    rpc.context = {}
    usd = rpc.create("currency.currency", [{"name": "US Dollar", "symbol": "$", "code": "USD",
                                            "rounding": Decimal("0.01"), "digits": 2}])[0]
    rpc.create("currency.currency", [{"name": "Yuan Renminbi", "symbol": "¥", "code": "CNY",
                                      "rounding": Decimal("0.01"), "digits": 2}])
    rpc.create("country.country", [{"name": n, "code": c} for c, n in
                                   [("CN", "China"), ("US", "United States"), ("FR", "France"),
                                    ("HK", "Hong Kong"), ("TW", "Taiwan")]])
    company_party = rpc.create("party.party", [{"name": "Hub Test Trading Co."}])[0]
    company = rpc.create("company.company", [{"party": company_party, "currency": usd}])[0]
    rpc.write("res.user", [rpc.uid], {"companies": [["add", [company]]], "company": company})
    rpc.context = {"company": company, "language": "en"}

    unit = rpc.search("product.uom", [["name", "=", "Unit"]], limit=1)[0]
    tpl_ids = rpc.create("product.template", [{
        "name": name, "code": code, "type": "goods", "default_uom": unit, "salable": True, "sale_uom": unit,
        "list_price": Decimal(price), "products": [["create", [{}]]]} for code, name, price in PRODUCTS])
    products = [p["id"] for p in rpc.search_read("product.product", [["template", "in", tpl_ids]], ["id"])]
    storage = rpc.search("stock.location", [["code", "=", "STO"]], limit=1)[0]
    inv = rpc.create("stock.inventory", [{"location": storage, "lines": [["create", [
        {"product": p, "quantity": 1_000_000} for p in products]]]}])
    rpc.call("model.stock.inventory.confirm", inv)

    service = rpc.create("product.template", [{
        "name": "Express delivery", "type": "service", "default_uom": unit, "list_price": Decimal("8"),
        "products": [["create", [{}]]]}])
    carrier_product = rpc.search("product.product", [["template", "in", service]], limit=1)[0]
    carrier_party = rpc.create("party.party", [{"name": "SF Express 顺丰速运"}])[0]
    rpc.create("carrier", [{"party": carrier_party, "carrier_product": carrier_product}])


# --------------------------------------------------------------------------------------------- seed
SURNAMES = ["陳", "陈", "王", "李", "張", "张", "劉", "刘", "黃", "黄"]
GIVEN = ["偉", "伟", "芳", "娜", "敏", "靜", "静", "麗", "強", "強"]
LATIN = ["Chen Wei", "WEI CHEN", "Wang Fang", "Li Na", "Zhang Min", "Anna Schmidt", "Jon Berg",
         "Marie Dubois", "Liu Qiang", "Huang Jing"]


@dataclass
class SeedSummary:
    parties: list[int] = field(default_factory=list)  # customer parties only (company/carrier excluded)
    sales: list[int] = field(default_factory=list)
    shipments: list[int] = field(default_factory=list)
    products: list[int] = field(default_factory=list)
    unit: int = 0
    seconds: float = 0.0


def party_values(i: int, rnd: random.Random, category_ids: list[int]) -> dict:
    """One customer party with an address, 1-3 contact mechanisms and sometimes an identifier."""
    if i % 3 == 0:
        name = LATIN[i % len(LATIN)]
    else:
        name = SURNAMES[i % len(SURNAMES)] + GIVEN[(i // 3) % len(GIVEN)]
    cn = i % 4 != 3
    mobile = f"138{(i * 7919) % 10**8:08d}"
    phone = (f"+86 {mobile[:3]}-{mobile[3:7]}-{mobile[7:]}" if i % 2 else mobile) if cn \
        else f"+1 415-555-{i % 10000:04d}"
    addr = ({"street": f"{rnd.randint(1, 999)}号 南京东路", "city": "上海", "postal_code": "200001",
             "country_code": "CN"} if cn else
            {"street": f"{rnd.randint(1, 999)} Market Street", "city": "San Francisco",
             "postal_code": "94103", "country_code": "US"})
    mechs = [{"type": "mobile" if cn else "phone", "value": phone}]
    if i % 5 != 4:
        mechs.append({"type": "email", "value": f"customer{i:05d}@example.com"})
    if i % 7 == 0:
        mechs.append({"type": "website", "value": f"https://shop{i}.example.cn"})
    vals: dict[str, Any] = {
        "name": f"{name} #{i:05d}",
        "addresses": [["create", [{"street": addr["street"], "city": addr["city"],
                                   "postal_code": addr["postal_code"], "country": addr["country_code"]}]]],
        "contact_mechanisms": [["create", mechs]],
    }
    if i % 4 == 0:
        vals["identifiers"] = [["create", [{"type": None, "code": f"LEGACY-{i:05d}"}]]]
    if category_ids and i % 3 == 1:
        vals["categories"] = [["add", [category_ids[i % len(category_ids)]]]]
    return vals


def create_parties(rpc: RawRpc, count: int, start: int = 0, batch: int = 500, seed: int = 7) -> list[int]:
    rnd = random.Random(seed + start)
    countries = {c["code"]: c["id"] for c in rpc.search_read("country.country", [], ["code"])}
    cats = rpc.search("party.category", [["name", "in", ["Retail", "Wholesale"]]])
    if not cats:
        cats = rpc.create("party.category", [{"name": "Retail"}, {"name": "Wholesale"}])
    ids: list[int] = []
    for lo in range(start, start + count, batch):
        vals = [party_values(i, rnd, cats) for i in range(lo, min(lo + batch, start + count))]
        for v in vals:
            for a in v["addresses"][0][1]:
                a["country"] = countries[a["country"]]
        ids.extend(rpc.create("party.party", vals))
    return ids


def create_sale(rpc: RawRpc, party: int, products: list[int], unit: int, rnd: random.Random) -> int:
    addr = rpc.search("party.address", [["party", "=", party]], limit=1)[0]
    lines = [{"product": rnd.choice(products), "quantity": rnd.randint(1, 3), "unit": unit,
              "unit_price": Decimal(rnd.choice(["10.00", "25.50", "48.00", "120.00"]))}
             for _ in range(rnd.randint(1, 3))]
    return rpc.create("sale.sale", [{
        "party": party, "invoice_address": addr, "shipment_address": addr,
        # manual invoicing: no chart of accounts needed (tryton.md §4)
        "invoice_method": "manual", "shipment_method": "order",
        "reference": f"WEB-{party}-{rnd.randint(1000, 9999)}",
        "lines": [["create", lines]]}])[0]


def seed(server: TrytonServer, parties: int = 40, sales: int = 30, seed_value: int = 11) -> SeedSummary:
    t0 = time.perf_counter()
    rnd = random.Random(seed_value)
    rpc = server.rpc()
    out = SeedSummary()
    out.parties = create_parties(rpc, parties)
    out.products = [p["id"] for p in rpc.search_read("product.product", [["salable", "=", True]], ["id"])]
    out.unit = rpc.search("product.uom", [["name", "=", "Unit"]], limit=1)[0]
    out.sales = [create_sale(rpc, rnd.choice(out.parties), out.products, out.unit, rnd) for _ in range(sales)]
    n_quote = int(sales * 0.9)
    n_confirm = int(sales * 0.8)
    rpc.call("model.sale.sale.quote", out.sales[:n_quote])
    rpc.call("model.sale.sale.confirm", out.sales[:n_confirm])
    out.shipments = rpc.search("stock.shipment.out", [])
    # move half of the shipments along: assigned → picked → packed, and most of those to done
    moving = out.shipments[: len(out.shipments) // 2]
    if moving:
        rpc.call("model.stock.shipment.out.assign_try", moving)
        rpc.call("model.stock.shipment.out.pick", moving)
        rpc.call("model.stock.shipment.out.pack", moving)
        rpc.call("model.stock.shipment.out.do", moving[: len(moving) * 3 // 4])
    out.seconds = time.perf_counter() - t0
    server.seed = out
    return out


def snapshot(server: TrytonServer, dest: Path) -> None:
    """Copy the server's live SQLite database to ``dest`` (safe while trytond has it open)."""
    _sqlite_backup(server.db_file, dest)


def _sqlite_backup(source: Path, dest: Path) -> None:
    # backup API, not cp: with WAL on, committed pages may still sit in the -wal file (tryton.md §7)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".tmp")
    src = sqlite3.connect(source)
    dst = sqlite3.connect(tmp)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
    os.replace(tmp, dest)  # atomic publish: readers never see a half-written cache file


# --------------------------------------------------------------------------------------------- PostgreSQL
# Optional backend: the machine's PostgreSQL (trust auth). The template is a PG database built once and
# cloned per session with CREATE DATABASE ... TEMPLATE (seconds, instead of ~100 s of trytond-admin).
PG_URI = os.environ.get("HUB_TRYTON_PG_URI", "postgresql://postgres@127.0.0.1:5432/")


def _pg_admin() -> Any:
    """Autocommit psycopg connection to the server's maintenance database, or skip/fail if unavailable."""
    try:
        import psycopg
    except ImportError:
        _skip_or_fail("psycopg (3) is not installed: trytond's PostgreSQL backend needs psycopg[binary,pool]")
        raise
    try:
        return psycopg.connect(PG_URI.rstrip("/") + "/postgres", autocommit=True, connect_timeout=5)
    except psycopg.Error as exc:
        _skip_or_fail(f"PostgreSQL at {PG_URI.split('@')[-1]} not reachable ({type(exc).__name__})")
        raise


def _pg_exists(conn: Any, name: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def pg_template_db(version: str) -> str:
    """Name of the cached, initialised template database on PostgreSQL; built once when missing."""
    key = hashlib.sha256(f"{version}|{','.join(MODULES)}|{RECIPE_VERSION}".encode()).hexdigest()[:10]
    name = f"hub_tryton_tpl_{key}"
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    with _pg_admin() as conn:
        if _pg_exists(conn, name):
            return name
        with open(CACHE_ROOT / ".pg.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if _pg_exists(conn, name):
                return name
            building = name + "_build"
            conn.execute(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{building}" ENCODING \'UTF8\' TEMPLATE template0')
            with tempfile.TemporaryDirectory(prefix="tryton-pgtpl-") as tmp:
                work = Path(tmp)
                _trytond_admin_init(_write_conf(work, free_port(), PG_URI), building, work)
                server = TrytonServer(workdir=work, port=free_port(), database=building, pg_uri=PG_URI)
                server.start()
                try:
                    _setup_reference_data(server)
                finally:
                    server.stop()
            # publish atomically: a half-built template never carries the final name
            conn.execute(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
    return name


@contextlib.contextmanager
def running_server(parties: int = 40, sales: int = 30, do_seed: bool = True,
                   workdir: Path | None = None, db_file: Path | None = None,
                   backend: str | None = None) -> Iterator[TrytonServer]:
    """A started, seeded trytond on a fresh copy of the cached template (or of ``db_file``, a snapshot);
    always stopped on exit (and on PostgreSQL, the session's database dropped).

    ``backend`` 'sqlite' (default) or 'postgresql' (or env HUB_TRYTON_BACKEND)."""
    version = require_trytond()
    backend = backend or os.environ.get("HUB_TRYTON_BACKEND", "sqlite")
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tryton-")))
        (workdir / "db").mkdir(parents=True, exist_ok=True)
        if backend == "postgresql":
            tpl_name = pg_template_db(version)
            dbname = f"hub_tryton_t_{os.getpid()}_{free_port()}"
            with _pg_admin() as conn:
                conn.execute(f'CREATE DATABASE "{dbname}" TEMPLATE "{tpl_name}"')

            def drop() -> None:
                with _pg_admin() as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')

            stack.callback(drop)
            server = TrytonServer(workdir=workdir, port=free_port(), database=dbname, pg_uri=PG_URI)
        elif backend == "sqlite":
            shutil.copyfile(db_file or template_db(version), workdir / "db" / f"{DB_NAME}.sqlite")
            server = TrytonServer(workdir=workdir, port=free_port())
        else:
            raise ValueError(f"unknown trytond backend {backend!r}")
        server.start()
        try:
            if do_seed:
                seed(server, parties=parties, sales=sales)
            yield server
        finally:
            server.stop()


@contextlib.contextmanager
def bench_server(parties: int) -> Iterator[tuple[TrytonServer, float | None]]:
    """A server with at least ``parties`` parties for benchmarks: seeded once, snapshotted under the cache
    (``bench-<parties>.sqlite``) so reruns skip the seeding. Yields (server, seconds spent seeding or None)."""
    tpl = template_db(require_trytond())
    seeded = tpl.parent / f"bench-{parties}.sqlite"
    with running_server(do_seed=False, db_file=seeded if seeded.exists() else tpl) as server:
        rpc = server.rpc()
        have = len(rpc.search("party.party", []))
        seconds = None
        if have < parties:
            t0 = time.perf_counter()
            create_parties(rpc, parties - have, start=have, batch=1000)
            seconds = time.perf_counter() - t0
            snapshot(server, seeded)
        yield server, seconds

