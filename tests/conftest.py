"""Shared test fixtures: stores on SQLite and PostgreSQL, and the skip-or-fail rule for services.

A test that needs an external service skips with a clear reason when the service is missing, except when
``HUB_REQUIRE_SERVICES=1`` (set by ``.ci/run``): then it fails, so CI can never pass by skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import settings

from hub.store import Store

# CI replays a fixed set of generated examples, so a submission's result does not depend on the draw; developer
# runs keep exploring new inputs (and pin what they find with @example).
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI") == "true" or os.environ.get("HUB_REQUIRE_SERVICES") == "1":
    settings.load_profile("ci")

POSTGRES_URL = os.environ.get(
    "HUB_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
)
MARIADB_URL = os.environ.get("HUB_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test")


def services_required() -> bool:
    return os.environ.get("HUB_REQUIRE_SERVICES") == "1"


def require_service(name: str, reason: str) -> None:
    """Skip (developer machine) or fail (CI) because ``name`` is not available."""
    message = f"{name} not available: {reason}"
    if services_required():
        pytest.fail(f"{message} (HUB_REQUIRE_SERVICES=1: services are mandatory here)")
    pytest.skip(message)


def _server_url(url: str, database: str) -> str:
    return sa.engine.make_url(url).set(database=database).render_as_string(hide_password=False)


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database (URL), dropped afterwards; skips or fails without the server."""
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"hub_t_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any connection problem means "service not available"
        admin.dispose()
        require_service("PostgreSQL", f"{POSTGRES_URL.split('@')[-1]}: {type(exc).__name__}")
    try:
        yield _server_url(POSTGRES_URL, name)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def postgres_database_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def mariadb_database_url() -> Iterator[str]:
    """A fresh, empty MariaDB database for one test, dropped afterwards."""
    admin = sa.create_engine(MARIADB_URL)
    name = f"hub_t_{uuid.uuid4().hex[:12]}"
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    except Exception as exc:  # noqa: BLE001
        admin.dispose()
        require_service("MariaDB", f"{MARIADB_URL.split('@')[-1]}: {type(exc).__name__}")
    try:
        yield _server_url(MARIADB_URL, name) + "?charset=utf8mb4"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The hub store URL, once per backend: the same tests run on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hub.db'}"
    return request.getfixturevalue("postgres_database_url")


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = Store(store_url)
    try:
        yield s
    finally:
        s.dispose()


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A fresh store once per backend the hub runs on, MariaDB included (dialect-sensitive SQL)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'hub.db'}"
    else:
        url = request.getfixturevalue({"postgresql": "postgres_database_url",
                                       "mariadb": "mariadb_database_url"}[request.param])
    s = Store(url)
    try:
        yield s
    finally:
        s.dispose()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'hub.db'}")
    try:
        yield s
    finally:
        s.dispose()


# Under pytest-xdist (`make test`: --dist loadfile --no-loadscope-reorder) each file runs whole on one worker,
# handed out in collection order (xdist's own order, "most tests first", starts the few-test end-to-end files
# last). The long end-to-end files go first, so that the workers end together instead of one of them starting a
# long file when the other is almost done. Order only: a file not named here runs in its usual place.
LONG_FILES_FIRST = (  # by their share of a full run (2026-12-02: demo 17 %, file import 15 %, sync 12 %, …)
    "test_demo.py", "test_file_import.py", "test_sync.py", "test_sync_safety.py", "test_privacy_cli.py",
    "test_tryton_sync.py", "test_quality_pipeline.py", "test_connectors_tryton.py", "test_push_drift.py",
    "test_source_isolation.py", "test_privacy_logs.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not hasattr(config, "workerinput"):  # a plain run keeps pytest's order
        return
    rank = {name: i for i, name in enumerate(LONG_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: order within a file is kept
