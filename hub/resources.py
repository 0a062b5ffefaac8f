"""Dagster resources: the hub store and one resource per connected system.

Each resource is configured from ``hub.yaml`` (which system, which mapping) plus environment variables for
endpoints and secrets, passed as ``dg.EnvVar`` so the UI shows the variable's name, never its value.
"""

from __future__ import annotations

import os
from typing import Any

import dagster as dg
from pydantic import PrivateAttr

from hub.config import HubConfig, SourceConfig
from hub.heap import trim_heap
from hub.store import Store, default_database_url


class HubStoreResource(dg.ConfigurableResource):
    """The hub's own database (SQLite at .hub/hub.db unless HUB_DATABASE_URL says otherwise).

    A run that uses the store holds the store's sync lock from its start to its end (hub/sync_lock.py): a
    second run waits for it, or fails at once when tagged ``hub/no_wait: true``. The lock is taken once per
    run because the sync jobs execute in process (one resource initialisation per run).

    Within a run every step gets the run's one ``Store``: opening one creates an engine and checks the schema
    against the migrations (Alembic reads every revision file), ~30 ms each time, and a run has a step per stage
    and per check. Outside a run (sensors, direct invocation) each call opens a new one, as before."""

    database_url: str = ""
    _lock: Any = PrivateAttr(default=None)
    _store: Store | None = PrivateAttr(default=None)

    def store(self) -> Store:
        if self._store is not None:
            # every step of a run starts here, in the run's one process: what the step before it freed and
            # the page caches of the connections it pooled are given back to the OS, not kept resident under
            # the next stage's own high-water mark
            self._store.release_caches()
            trim_heap()
            return self._store
        return Store(self.database_url or default_database_url())

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        run = context.dagster_run
        if run is None:  # direct invocation outside a run (tests of one asset): nothing to exclude
            return
        from hub.sync_lock import NO_WAIT_TAG, SyncLock

        self._store = self.store()
        say = context.log.warning if context.log is not None else None
        self._lock = SyncLock(self._store, run.run_id, job=run.job_name).acquire(
            wait=(run.tags or {}).get(NO_WAIT_TAG) != "true", say=say, instance=context.instance)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        if self._store is not None:
            self._store.dispose()
            self._store = None


class SqlErpResource(dg.ConfigurableResource):
    """Any SQL ERP database read and written through SQLAlchemy with a declared table mapping."""

    system: str
    url: str
    tables: str = "sandbox"

    def connector(self) -> Any:
        from hub.connectors.sql_erp import SqlErpConnector, load_tables

        return SqlErpConnector(self.url, load_tables(self.tables), system=self.system)


class WooCommerceResource(dg.ConfigurableResource):
    """A WooCommerce shop's REST v3 API (Basic auth with consumer key / secret)."""

    system: str
    base_url: str
    consumer_key: str
    consumer_secret: str
    requests_per_second: float | None = None

    def connector(self) -> Any:
        from hub.connectors.woocommerce import WooCommerceConnector

        return WooCommerceConnector(
            self.base_url, self.consumer_key, self.consumer_secret,
            system=self.system, requests_per_second=self.requests_per_second,
        )


class WeChatResource(dg.ConfigurableResource):
    """A WeChat Official Account (appid / secret → access token)."""

    system: str
    base_url: str
    appid: str
    secret: str
    requests_per_second: float | None = None

    def connector(self) -> Any:
        from hub.connectors.wechat import WeChatConnector

        return WeChatConnector(
            self.base_url, self.appid, self.secret,
            system=self.system, requests_per_second=self.requests_per_second,
        )


class AsteriskCdrResource(dg.ConfigurableResource):
    """An Asterisk cdr_csv drop folder (Master.csv and its rotations)."""

    system: str
    drop_dir: str

    def connector(self) -> Any:
        from hub.connectors.cdr import AsteriskCdrConnector

        return AsteriskCdrConnector(self.drop_dir, system=self.system)


class TrytonResource(dg.ConfigurableResource):
    """A Tryton ERP server over JSON-RPC."""

    system: str
    url: str
    database: str
    username: str
    password: str
    create_missing_parties: bool = False
    overlap_minutes: float = 5.0

    def connector(self) -> Any:
        from datetime import timedelta

        from hub.connectors.tryton import TrytonConnector

        connector = TrytonConnector(
            self.url, self.database, self.username, self.password,
            create_missing_parties=self.create_missing_parties, overlap=timedelta(minutes=self.overlap_minutes),
        )
        connector.system = self.system  # landing source / push target name from hub.yaml
        return connector


def _env(name: str | None, what: str, source: str) -> Any:
    if not name:
        raise ValueError(f"hub.yaml: source {source!r} needs {what} (the environment variable that holds it)")
    return dg.EnvVar(name)


def source_resource(name: str, src: SourceConfig) -> dg.ConfigurableResource:
    """Build the resource for one configured source; endpoints and secrets stay environment references."""
    if src.kind == "sql_erp":
        return SqlErpResource(system=name, url=_env(src.url_env, "url_env", name), tables=src.tables or "sandbox")
    if src.kind == "woocommerce":
        return WooCommerceResource(
            system=name,
            base_url=_env(src.url_env, "url_env", name),
            consumer_key=_env(src.key_env, "key_env", name),
            consumer_secret=_env(src.secret_env, "secret_env", name),
            requests_per_second=src.requests_per_second,
        )
    if src.kind == "wechat":
        return WeChatResource(
            system=name,
            base_url=_env(src.url_env, "url_env", name),
            appid=_env(src.key_env, "key_env", name),
            secret=_env(src.secret_env, "secret_env", name),
            requests_per_second=src.requests_per_second,
        )
    if src.kind == "asterisk_cdr":
        return AsteriskCdrResource(system=name, drop_dir=_env(src.dir_env, "dir_env", name))
    if src.kind == "tryton":
        return TrytonResource(
            system=name,
            url=_env(src.url_env, "url_env", name),
            database=_env(src.database_env, "database_env", name),
            username=_env(src.user_env, "user_env", name),
            password=_env(src.password_env, "password_env", name),
            create_missing_parties=bool(src.options.get("create_missing_parties", False)),
            overlap_minutes=float(src.options.get("overlap_minutes", 5.0)),
        )
    raise ValueError(f"hub.yaml: source {name!r} has unknown kind {src.kind!r}")


def build_resources(config: HubConfig) -> dict[str, dg.ConfigurableResource]:
    # the URL may hold a password: an EnvVar when set, else the embedded SQLite default
    database_url: Any = dg.EnvVar("HUB_DATABASE_URL") if os.environ.get("HUB_DATABASE_URL") else ""
    resources: dict[str, dg.ConfigurableResource] = {"store": HubStoreResource(database_url=database_url)}
    for name, src in config.enabled_sources.items():
        resources[f"source_{name}"] = source_resource(name, src)
    return resources
