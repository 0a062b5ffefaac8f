"""Any SQL ERP database through SQLAlchemy, driven by a declarative table mapping.

The mapping says, per landing entity, which table is the root (customer/party, sale, shipment), its key, the
updated-at column(s) and which child tables to attach (addresses, contact mechanisms, identifiers, categories
through a relation table, sale lines). Pull is incremental on COALESCE(updated-at columns) with an overlap
window and keyset paging on (updated_at, id); child rows changed since the last run re-read their parent; an
entity without an updated-at column is swept in full every run and diffed by payload hash.

Push writes the golden id into an identifier table and segments into a category table, both declared in the
same mapping. Echo suppression: the hash view drops the hub's own identifier rows and categories and the
bookkeeping columns (write_date...) that our own write bumps, so a push is not seen as a source change.
And the hub's own writes are not even read again: a push stamps the parties, identifiers and category links
it writes with one timestamp per batch (``now``, as the ERP's ORM would); ``record_own_writes`` keeps those
timestamps in the pushed entity's cursor (``own``: ``{"stamps": [...], "reread": [...]}``, as the Tryton
connector does) and the next window leaves out root rows and pushed child rows stamped at one of them —
without it every push made the next pull re-read every party it wrote (measured at 20k people: 23,505
parties read, all unchanged, 19 s of a 156 s incremental sync). A party someone else changed shortly before
the hub wrote it (the hub's stamp hides that change's date) is named in ``reread`` and read again; a change
made after the push carries a later date and is read as usual.

See ``sql_erp_sandbox.yaml`` for the declaration of the sandbox's Tryton-style schema.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from operator import itemgetter
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from sqlalchemy.exc import SQLAlchemyError

from hub.connectors.base import (
    Page,
    PushOutcome,
    chunked,
    held_value,
    iter_keyset,
    landing_record,
    overlap_start,
    removal,
    to_jsonable,
)
from hub.privacy.tombstones import SourceIds
from hub.store import ORJSON_LEAVES, LandingRecord, OutboxItem, gc_paused, orjson_exact

SANDBOX_MAPPING_PATH = Path(__file__).with_name("sql_erp_sandbox.yaml")
_EPOCH = datetime(1970, 1, 1)


def load_mapping(path: str | Path = SANDBOX_MAPPING_PATH) -> dict:
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def load_tables(spec: str | Path = "sandbox") -> dict:
    """A table mapping by name or path: ``"sandbox"`` is the bundled sandbox declaration, anything else a
    YAML file of the same shape."""
    return load_mapping(SANDBOX_MAPPING_PATH if str(spec) == "sandbox" else Path(spec))


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _ts_param(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _ts_iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):  # SQLite without type affinity may hand back text
        value = datetime.fromisoformat(value)
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    return value.isoformat()


class SqlErpConnector:
    """Pull ``customers``/``orders``/``shipments`` (or whatever the mapping declares) from a SQL ERP; push
    golden ids and segments back into it."""

    def __init__(self, url: str, tables: Mapping[str, Any] | None = None, *, system: str | None = None,
                 page_size: int | None = None, engine: sa.Engine | None = None) -> None:
        self.mapping: dict = dict(tables) if tables is not None else load_mapping()
        self.system = system or self.mapping.get("system", "erp")
        self.entities: tuple[str, ...] = tuple(self.mapping["entities"])
        self.page_size = int(page_size or self.mapping.get("page_size", 1000))
        self.overlap = timedelta(seconds=float(self.mapping.get("overlap_seconds", 300)))
        self.hash_exclude = frozenset(_as_list(self.mapping.get("hash_exclude_columns")))
        # rows of the ERP are personal data: a failed statement's parameters stay out of exception texts
        self.engine = engine or sa.create_engine(url, pool_pre_ping=True, hide_parameters=True)
        self._md = sa.MetaData(schema=self.mapping.get("schema"))
        self._tables: dict[str, sa.Table] = {}
        # this connector's pushes since the last record_own_writes: their stamps, and each written party's
        # date before the hub's write (a change that date may stand for must not be hidden by the stamp)
        self._own_stamps: set[datetime] = set()
        self._overwritten: dict[Any, datetime | None] = {}
        self._erased: set[Any] = set()
        self._pending: tuple[datetime, dict[Any, datetime | None], set[Any]] | None = None

    def close(self) -> None:
        self.engine.dispose()

    # -- schema -----------------------------------------------------------------------------------------------

    def table(self, name: str) -> sa.Table:
        if name not in self._tables:
            self._tables[name] = sa.Table(name, self._md, autoload_with=self.engine)
        return self._tables[name]

    def _ts_expr(self, table: sa.Table, spec: Any) -> sa.ColumnElement | None:
        cols = [table.c[c] for c in _as_list(spec) if c in table.c]
        if not cols:
            return None
        # Tryton leaves write_date NULL until the first edit: fall back to create_date, then the epoch, so
        # the keyset never meets a NULL (NULL compares false and would drop rows).
        epoch: sa.ColumnElement = sa.literal(_EPOCH, sa.DateTime())
        if self.engine.dialect.name in ("mysql", "mariadb"):
            # a bare string epoch makes MySQL's COALESCE a VARCHAR, compared as text: a DATETIME(6) column's
            # '…:24.000000' then never equals the stamp '…:24' and the hub's own writes are read again
            epoch = sa.cast(epoch, sa.DateTime())
        return sa.func.coalesce(*cols, epoch, type_=sa.DateTime())

    # -- pull -------------------------------------------------------------------------------------------------

    def pages(self, entity: str, cursor: dict | None) -> Iterator[Page]:
        spec = self.mapping["entities"].get(entity)
        if spec is None:
            raise ValueError(f"unknown entity {entity!r}")
        root = self.table(spec["table"])
        key = root.c[spec.get("key", "id")]
        ts = self._ts_expr(root, spec.get("updated_at"))
        if ts is None:
            yield from self._full_sweep(entity, spec, root, key, cursor)
        else:
            yield from self._incremental(entity, spec, root, key, ts, cursor)

    def _kept(self, spec: dict, key: sa.Column) -> sa.ColumnElement | None:
        """Rows the entity leaves out: keys listed in other tables (``exclude_keys_in``: the ERP's own company
        party, its employees' parties — not customers). None when nothing is excluded."""
        subqueries = [sa.select(self.table(x["table"]).c[x["column"]]).where(
            self.table(x["table"]).c[x["column"]].is_not(None)) for x in spec.get("exclude_keys_in") or ()]
        return sa.and_(*(key.not_in(q) for q in subqueries)) if subqueries else None

    def _root(self, spec: dict, root: sa.Table, key: sa.Column, *extra: sa.ColumnElement) -> sa.Select:
        q = sa.select(root, *extra)
        kept = self._kept(spec, key)
        return q if kept is None else q.where(kept)

    def _rows(self, q: sa.Select) -> _Rows:
        with self.engine.connect() as conn:
            result = conn.execute(q)
            return _Rows(_plain_names(result.keys()), result.all())  # all(): iterating fetches row by row

    def _by_key(self, q: sa.Select, key: sa.Column) -> Callable[[tuple | None, int], _Rows]:
        """A keyset fetcher over ``key`` alone, for ``iter_keyset``."""

        def fetch(after: tuple | None, limit: int) -> _Rows:
            page = q.order_by(key).limit(limit)
            return self._rows(page if after is None else page.where(key > after[0]))

        return fetch

    def _full_sweep(self, entity: str, spec: dict, root: sa.Table, key: sa.Column,
                    cursor: dict | None) -> Iterator[Page]:
        """No usable updated-at column: read everything in key order; the payload hash finds the changes."""
        start = None if not cursor or cursor.get("complete") else cursor.get("after")
        ki = _position(root, key)
        for rows, last, is_last in iter_keyset(self._by_key(self._root(spec, root, key), key),
                                               key_of=lambda r: (r[ki],),
                                               after=None if start is None else (start,), limit=self.page_size):
            after = to_jsonable(last[0]) if last else start
            yield Page(self._build(spec, rows, key.name), {"mode": "full", "after": after, "complete": is_last})

    def _incremental(self, entity: str, spec: dict, root: sa.Table, key: sa.Column, ts: sa.ColumnElement,
                     cursor: dict | None) -> Iterator[Page]:
        cur = dict(cursor or {})
        if not cur or cur.get("phase") == "done":
            # a new run: start the overlap window before the last watermark (None -> initial full load)
            wm = cur.get("watermark")
            since = overlap_start(wm, self.overlap)
            started = self._clock()
            cur = {"phase": "main", "since": since, "after": None, "high": wm, "started": started,
                   **({"by_key": True} if since is None and started is not None else {}),
                   **({"own": cur["own"]} if cur.get("own") else {})}
        since = _ts_param(cur.get("since"))
        # the hub's own writes inside this window (see the module docstring): left out unless named again
        own_stamps = [d for d in (_ts_param(x) for x in (cur.get("own") or {}).get("stamps") or [])
                      if d is not None and d >= since] if since is not None else []
        reread = list((cur.get("own") or {}).get("reread") or [])

        ki = _position(root, key)
        if cur["phase"] == "main":
            resume = cur.get("after")
            if cur.get("by_key"):
                # The initial load reads every row, in key order: the ERP's updated-at expression has no index
                # (we do not own the database), and ordering the whole table by it for every page made a first
                # pull quadratic (1M people, sandbox ERP: 431 s for 1.8M rows; a page of its 680k sales took
                # 260 ms in that order, 8 ms in key order). Rows edited during the sweep are not read again now:
                # the watermark is capped at the run's start (``_finish``), so the next run's window holds them.
                pages = iter_keyset(self._by_key(self._root(spec, root, key, ts.label("_hub_ts")), key),
                                    key_of=lambda r: (r[ki],), after=(resume[1],) if resume else None,
                                    limit=self.page_size)
            else:

                def fetch(after: tuple | None, limit: int) -> _Rows:
                    q = self._root(spec, root, key, ts.label("_hub_ts")).order_by(ts, key).limit(limit)
                    if since is not None:
                        q = q.where(ts >= since)
                    if own_stamps:
                        own = ts.not_in(own_stamps)
                        q = q.where(sa.or_(own, key.in_(reread)) if reread else own)
                    if after is not None:
                        q = q.where(sa.or_(ts > after[0], sa.and_(ts == after[0], key > after[1])))
                    return self._rows(q)

                pages = iter_keyset(fetch, key_of=lambda r: (r[-1], r[ki]),  # _hub_ts is the last column
                                    after=(_ts_param(resume[0]), resume[1]) if resume else None,
                                    limit=self.page_size)
            for rows, _, is_last in pages:
                stamps = [_ts_iso(r[-1]) for r in rows]
                records = self._build(spec, rows, key.name, drop="_hub_ts")
                if rows:
                    cur["after"] = [stamps[-1], to_jsonable(rows[-1][ki])]
                    cur["high"] = max(filter(None, [cur.get("high"), *stamps]))
                if is_last:
                    cur = {**cur, "phase": "children", "after_id": None}
                    if since is None:  # initial load read every parent: nothing to re-read for children
                        cur = self._finish(cur, spec)
                yield Page(records, dict(cur))

        if cur["phase"] == "children":
            # children (a new phone, an edited address) do not bump the parent's write_date in Tryton:
            # re-read every parent with a child changed since the window start
            changed = self._changed_parent_ids(spec, since, own_stamps)
            records: list[LandingRecord] = []
            if changed is not None:
                resume_id = cur.get("after_id")
                for rows, last, is_last in iter_keyset(
                    self._by_key(self._root(spec, root, key).where(key.in_(changed)), key),
                    key_of=lambda r: (r[ki],),
                    after=None if resume_id is None else (resume_id,), limit=self.page_size,
                ):
                    records = self._build(spec, rows, key.name)
                    if last:
                        cur["after_id"] = to_jsonable(last[0])
                    if is_last:
                        break
                    yield Page(records, dict(cur))
            yield Page(records, self._finish(cur, spec))

    def _clock(self) -> str | None:
        """Now, in the ERP's timestamp convention (``timestamps: utc`` = naive UTC, as Tryton stores them)."""
        if self.mapping.get("timestamps") == "utc":
            return datetime.now(UTC).replace(tzinfo=None, microsecond=0).isoformat()
        if self.mapping.get("timestamps") == "local":
            return datetime.now().replace(microsecond=0).isoformat()
        return None

    def _finish(self, cur: dict, spec: dict) -> dict:
        """The watermark for the next run: the newest timestamp seen on the root or any child table."""
        highs = [cur.get("high")]
        with self.engine.connect() as conn:
            for child in (spec.get("children") or {}).values():
                t = self.table(child["table"])
                expr = self._ts_expr(t, child.get("updated_at"))
                if expr is not None:
                    highs.append(_ts_iso(conn.execute(sa.select(sa.func.max(expr))).scalar()))
        highs = [h for h in highs if h]
        high = max(highs) if highs else None
        if high and cur.get("started") and high > cur["started"]:
            # a row stamped in the future (clock skew, bad import) must not push the watermark past now, or
            # every real change until that moment would be skipped; and after a sweep in key order a row
            # edited behind the sweep carries a time after the start: the next window must hold it
            high = cur["started"]
        done: dict[str, Any] = {"phase": "done", "watermark": high}
        own = _pruned_own(cur.get("own"), overlap_start(high, self.overlap))  # its rereads are read now
        if own:
            done["own"] = own
        return done

    def _pushed_tables(self) -> set[str]:
        """The child tables a push writes rows of (the golden-id identifier table, the category links)."""
        cfg = self.mapping.get("push") or {}
        return {t for t in ((cfg.get("golden_id") or {}).get("table"), (cfg.get("segments") or {}).get("rel_table"))
                if t}

    def _hub_owned_rows(self, t: sa.Table, child: dict) -> sa.ColumnElement | None:
        """The rows of child table ``t`` that are the hub's own (``hub_owned``, on the row or, for a link
        table, on the row it links to), as SQL; None when the mapping does not say."""
        rule = child.get("hub_owned")
        if not rule:
            return None
        through = child.get("through")
        target = self.table(through["table"]) if through else t
        col = target.c[rule["column"]]
        conds = []
        if rule.get("values"):
            conds.append(col.in_(list(rule["values"])))
        if rule.get("prefix"):
            conds.append(col.like(_like_prefix(str(rule["prefix"])), escape="/"))
        if not conds:
            return None
        if through is None:
            return sa.or_(*conds)
        return t.c[through["fk"]].in_(sa.select(target.c[through.get("key", "id")]).where(sa.or_(*conds)))

    def _changed_parent_ids(self, spec: dict, since: datetime | None,
                            stamps: list[datetime] | None = None) -> sa.Select | None:
        if since is None:
            return None
        parts = []
        pushed = self._pushed_tables() if stamps else set()
        for child in (spec.get("children") or {}).values():
            t = self.table(child["table"])
            expr = self._ts_expr(t, child.get("updated_at"))
            if expr is not None:
                cond = expr >= since
                own = self._hub_owned_rows(t, child) if child["table"] in pushed else None
                if own is not None:  # the hub's own identifier / category rows, stamped by its push: no change
                    cond = sa.and_(cond, sa.not_(sa.and_(own, expr.in_(stamps))))
                parts.append(sa.select(t.c[child["fk"]].label("pid")).where(cond))
        if not parts:
            return None
        return sa.select(sa.union(*parts).subquery().c.pid)

    def _build(self, spec: dict, rows: _Rows, key_name: str, drop: str | None = None) -> list[LandingRecord]:
        """Attach child rows to each root row and build landing records with the echo-free hash view.

        Values are converted column by column, once per page (``_converted``): the per-row, per-value
        conversion was a large share of an ERP pull. The page's column types also tell whether orjson writes
        the records exactly as json.dumps (``landing_record(exact=...)``), so no record is walked for it."""
        if not rows:
            return []
        ki = rows.names.index(key_name)
        ids = [r[ki] for r in rows]
        children = spec.get("children") or {}
        with gc_paused():  # a page's many small dicts and tuples: no cycles among them to find
            with self.engine.connect() as conn:
                attached = {name: self._children(conn, child, ids) for name, child in children.items()}
            names, values, exact = _converted(rows.names, rows, drop)
            view_of = _picker(names, self.hash_exclude)
            kids_of = []
            for name, child in children.items():
                kid_names, by_parent, kids_exact = attached[name]
                exact = exact and kids_exact
                kids_of.append((name, kid_names, by_parent, _picker(kid_names, self.hash_exclude),
                                child.get("hub_owned")))
            hub_state_of = self._hub_state_reader(spec)
            records = []
            for pid, row in zip(ids, values, strict=True):
                payload = dict(zip(names, row, strict=True))
                view = view_of(row)
                for name, kid_names, by_parent, kid_view_of, owned in kids_of:
                    kid_rows = by_parent.get(pid, ())
                    kids = [dict(zip(kid_names, k, strict=True)) for k in kid_rows]
                    payload[name] = kids
                    view[name] = [kid_view_of(k) for k, kid in zip(kid_rows, kids, strict=True) if not _hub_owned(kid, owned)]
                hub_state = None if hub_state_of is None else hub_state_of(payload)
                records.append(landing_record(pid, payload, view, hub_state, exact=exact))
        return records

    def _hub_state_reader(self, spec: dict) -> Callable[[dict], dict] | None:
        """payload -> the hub's golden id and categories as a pulled party carries them (its child rows), for
        the entity the push writes to; None for the others. The view of one combination of hub identifiers and
        categories is built once (most parties carry the same few)."""
        cfg = self.mapping.get("push") or {}
        if spec.get("table") != cfg.get("table"):
            return None
        seen: dict[tuple, dict] = {}

        def read(payload: dict) -> dict:
            idents, names = self._hub_fields(spec, cfg, payload)
            key = (tuple(idents), tuple(names))
            try:
                view = seen.get(key)
            except TypeError:  # an unhashable identifier value (a JSON column): not kept
                return self._hub_view(cfg, idents, names)
            if view is None:
                view = seen[key] = self._hub_view(cfg, idents, names)
            # a copy per record (its lists too): records never share a mutable value
            return {k: list(v) if isinstance(v, list) else v for k, v in view.items()}

        return read

    @staticmethod
    def _hub_fields(spec: dict, cfg: dict, payload: dict) -> tuple[list[Any], list[str]]:
        """The hub identifier values and category names a pulled party's child rows carry."""
        gcfg, scfg = cfg.get("golden_id"), cfg.get("segments")
        children = spec.get("children") or {}
        idents: list[Any] = []
        names: list[str] = []
        for name, child in children.items():
            rows = payload.get(name) or []
            if gcfg and child.get("table") == gcfg["table"]:
                idents = [r.get(gcfg["value_column"]) for r in rows
                          if r.get(gcfg["type_column"]) == gcfg["type_value"]]
            if scfg and (child.get("through") or {}).get("table") == scfg["table"]:
                names = [str(r.get(scfg["name_column"]) or "") for r in rows]
        return idents, names

    @staticmethod
    def _hub_view(cfg: dict, idents: list[Any], names: list[str]) -> dict:
        view: dict[str, Any] = {}
        if cfg.get("golden_id"):
            view["golden_id"] = held_value(idents, distinct=False)
        scfg = cfg.get("segments")
        if scfg:
            prefix = scfg.get("prefix", "hub:")
            for field_name in _as_list(scfg.get("fields", ["segment", "value_tier"])):
                family = f"{prefix}{field_name}:"
                view[field_name] = held_value([n[len(family):] for n in names if n.startswith(family)])
        return view

    def _children(self, conn: sa.Connection, child: dict, ids: list[Any]
                  ) -> tuple[list[str], dict[Any, list[tuple]], bool]:
        """A child table's rows of the parents ``ids``: (column names, converted rows by parent, exact)."""
        t = self.table(child["table"])
        fk = t.c[child["fk"]]
        through = child.get("through")
        if through:
            target = self.table(through["table"])
            q = (
                sa.select(fk.label("_hub_parent"), target)
                .join(target, t.c[through["fk"]] == target.c[through.get("key", "id")])
                .where(fk.in_(ids))
                .order_by(fk, target.c[through.get("key", "id")])
            )
        else:
            q = sa.select(t, fk.label("_hub_parent")).where(fk.in_(ids)).order_by(fk, t.c[child.get("key", "id")])
        result = conn.execute(q)
        rows = _Rows(_plain_names(result.keys()), result.all())
        pi = rows.names.index("_hub_parent")
        names, values, exact = _converted(rows.names, rows, "_hub_parent")
        out: dict[Any, list[tuple]] = {}
        for raw, row in zip(rows, values, strict=True):
            out.setdefault(raw[pi], []).append(row)
        return names, out, exact

    # -- id-only sweep (deletes and deactivations) --------------------------------------------------------------

    def present_ids(self, entity: str) -> SourceIds:
        """Every key the entity's root table holds now, and those whose ``active_column`` (declared in the
        mapping, e.g. Tryton's ``active``) is false: one narrow SELECT, no payloads."""
        spec = self.mapping["entities"].get(entity)
        if spec is None:
            raise ValueError(f"unknown entity {entity!r}")
        root = self.table(spec["table"])
        key = root.c[spec.get("key", "id")]
        active = spec.get("active_column")
        cols = [key, root.c[active]] if active else [key]
        present, inactive = [], []
        with self.engine.connect() as conn:
            for row in conn.execute(sa.select(*cols).execution_options(yield_per=20_000)):
                present.append(to_jsonable(row[0]))
                if active and row[1] is not None and not row[1]:
                    inactive.append(to_jsonable(row[0]))
        return SourceIds.of(present, inactive)

    # -- push -------------------------------------------------------------------------------------------------

    push_batch_size = 500  # outbox rows written in one transaction with multi-row statements

    def held_view(self, item: OutboxItem) -> dict:
        """The hub identifier and categories a party carries once ``item`` is applied."""
        cfg = self.mapping.get("push") or {}
        payload = item.payload or {}
        scfg = cfg.get("segments") or {}
        prefix = scfg.get("prefix", "hub:")
        names = [f"{prefix}{f}:{payload[f]}" for f in _as_list(scfg.get("fields", ["segment", "value_tier"]))
                 if payload.get(f) not in (None, "")]
        if removal(payload):  # a withdrawal or an erasure: the party holds none of the hub's fields
            return self._hub_view(cfg, [], [])
        return self._hub_view(cfg, [item.golden_id or payload.get("golden_id")], names)

    def held(self, items: list[OutboxItem]) -> dict[int, dict | None]:
        """Each row's party's hub identifier and categories now; None = no such party."""
        cfg = self.mapping.get("push") or {}
        parties = self.table(cfg["table"])
        key = parties.c[cfg.get("key", "id")]
        pids: dict[int, Any] = {}
        for item in items:
            try:
                pids[item.id] = key.type.python_type(item.target_id)
            except (TypeError, ValueError, NotImplementedError):
                continue
        with self.engine.connect() as conn:
            found: set[Any] = set()
            for chunk in chunked(sorted(set(pids.values())), 500):
                found.update(r[0] for r in conn.execute(sa.select(key).where(key.in_(chunk))))
            idents, cats = self._hub_rows(conn, cfg, sorted(found))
        return {it.id: self._hub_view(cfg, [v for _, v in idents.get(pids[it.id], [])],
                                      [n for _, n in cats.get(pids[it.id], [])])
                if pids.get(it.id) in found else None for it in items}

    def _hub_rows(self, conn: sa.Connection, cfg: dict, pids: list[Any]
                  ) -> tuple[dict[Any, list[tuple[Any, Any]]], dict[Any, list[tuple[Any, str]]]]:
        """Per party: its hub identifier rows (row id, golden id) and hub categories (category id, name)."""
        idents: dict[Any, list[tuple[Any, Any]]] = {}
        cats: dict[Any, list[tuple[Any, str]]] = {}
        gcfg, scfg = cfg.get("golden_id"), cfg.get("segments")
        for chunk in chunked(pids, 500):
            if gcfg:
                it = self.table(gcfg["table"])
                fk, value_col, it_key = it.c[gcfg["fk"]], it.c[gcfg["value_column"]], it.c[gcfg.get("key", "id")]
                for row_id, pid, value in conn.execute(
                    sa.select(it_key, fk, value_col).where(fk.in_(chunk), it.c[gcfg["type_column"]] == gcfg["type_value"])
                    .order_by(fk, it_key)
                ):
                    idents.setdefault(pid, []).append((row_id, value))
            if scfg:
                cat, rel = self.table(scfg["table"]), self.table(scfg["rel_table"])
                cat_key, name_col = cat.c[scfg.get("key", "id")], cat.c[scfg["name_column"]]
                rel_fk, rel_cat = rel.c[scfg["rel_fk"]], rel.c[scfg["rel_category"]]
                for pid, cid, name in conn.execute(
                    sa.select(rel_fk, rel_cat, name_col).join(cat, rel_cat == cat_key)
                    .where(rel_fk.in_(chunk), name_col.like(_like_prefix(scfg.get("prefix", "hub:")), escape="/"))
                ):
                    cats.setdefault(pid, []).append((cid, name))
        return idents, cats

    def push(self, items: list[OutboxItem]) -> list[PushOutcome]:
        """Golden ids and segment categories for a batch of parties in one transaction and a handful of
        multi-row statements. If the batch fails, each row is retried in its own transaction so one bad row
        fails alone."""
        cfg = self.mapping.get("push")
        if not cfg:
            return [PushOutcome(i.id, "rejected", "mapping declares no push") for i in items]
        try:
            with self.engine.begin() as conn:
                outcomes = self._push_batch(conn, cfg, items)
            self._note_own_writes()  # committed: these stamps are the hub's own
            return outcomes
        except SQLAlchemyError as exc:
            self._pending = None
            if len(items) == 1:
                return [PushOutcome(items[0].id, "error", f"database error: {type(exc).__name__}")]
        return [outcome for item in items for outcome in self.push([item])]

    def _push_batch(self, conn: sa.Connection, cfg: dict, items: list[OutboxItem]) -> list[PushOutcome]:
        parties = self.table(cfg["table"])
        key = parties.c[cfg.get("key", "id")]
        outcomes: dict[int, PushOutcome] = {}
        wanted: dict[Any, OutboxItem] = {}
        for item in items:
            try:
                wanted[key.type.python_type(item.target_id)] = item
            except (TypeError, ValueError, NotImplementedError):
                outcomes[item.id] = PushOutcome(item.id, "rejected", "target_id is not a valid party key")
        found: set[Any] = set()
        for chunk in chunked(list(wanted), 500):
            found.update(r[0] for r in conn.execute(sa.select(key).where(key.in_(chunk))))
        for pid, item in wanted.items():
            if pid not in found:
                outcomes[item.id] = PushOutcome(item.id, "rejected", "party not found")
        live = {pid: item for pid, item in wanted.items() if pid in found}
        # the ERP keeps naive UTC timestamps (Tryton does); ours must compare with its own
        now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
        changed: set[Any] = set()
        idents, cats = self._hub_rows(conn, cfg, list(live))
        if cfg.get("golden_id"):
            changed |= self._push_golden_ids(conn, cfg["golden_id"], live, idents, now)
        if cfg.get("segments"):
            changed |= self._push_segments(conn, cfg["segments"], live, cats, now)
        erased = {pid: item for pid, item in live.items() if removal(item.payload) == "erase"}
        if erased:
            if not cfg.get("erase"):
                for item in erased.values():
                    outcomes[item.id] = PushOutcome(item.id, "rejected", "mapping declares no erase: withdrawn only")
            else:
                self._erase(conn, cfg["erase"], parties, key, sorted(erased), now)
                changed |= set(erased)
        touch = cfg.get("touch")
        before: dict[Any, datetime | None] = {}
        if changed and touch and touch in parties.c:
            entity = self._push_entity()
            ts = self._ts_expr(parties, self.mapping["entities"][entity].get("updated_at")) if entity else None
            # the ERP's ORM bumps write_date on any write; we do the same so other consumers see it
            for chunk in chunked(sorted(changed), 500):
                if ts is not None:  # the date the hub's stamp replaces (a change it may stand for)
                    before.update((pid, _ts_param(_ts_iso(d))) for pid, d in conn.execute(
                        sa.select(key, ts).where(key.in_(chunk))))
                conn.execute(parties.update().where(key.in_(chunk)).values({touch: now}))
        self._pending = (now, before, set(erased)) if changed else None
        for item in live.values():
            outcomes.setdefault(item.id, PushOutcome(item.id, "ok"))
        return [outcomes[item.id] for item in items]

    def _push_entity(self) -> str | None:
        """The pulled entity whose root table the push writes (the customers)."""
        table = (self.mapping.get("push") or {}).get("table")
        return next((name for name, spec in self.mapping["entities"].items() if spec.get("table") == table), None)

    def _note_own_writes(self) -> None:
        pending, self._pending = self._pending, None
        if pending is None:
            return
        now, before, erased = pending
        self._own_stamps.add(now)
        for pid, was in before.items():
            self._overwritten.setdefault(pid, was)  # the first write of a run hides the date that matters
        self._erased |= erased

    def record_own_writes(self, store: Any) -> None:
        """Keep the stamps of this connector's pushes in the pushed entity's cursor, where the next pull finds
        them (``run_push`` calls it when a push run ends). Named for a re-read: a party whose date before the
        hub's write was not one of the hub's earlier stamps and falls inside the next window (someone changed
        it, maybe after the pull read it), a party the hub did not write that carries one of this run's stamps
        (changed by someone else in the same second), and an erased party (its anonymised row must land)."""
        entity = self._push_entity()
        if entity is None or not (self._own_stamps or self._overwritten or self._erased):
            return
        cursor = dict(store.get_cursor(self.system, entity) or {})
        own = cursor.get("own") or {}
        earlier = {d for d in (_ts_param(x) for x in own.get("stamps") or []) if d is not None}
        if cursor.get("phase") in (None, "done"):
            lb_next = _ts_param(overlap_start(cursor.get("watermark"), self.overlap))
        else:
            lb_next = _ts_param(cursor.get("since"))
        reread = {to_jsonable(i) for i in own.get("reread") or []} | {to_jsonable(p) for p in self._erased}
        reread |= {to_jsonable(pid) for pid, was in self._overwritten.items()
                   if was is not None and was not in earlier and (lb_next is None or was >= lb_next)}
        reread |= self._stamped_by_others()
        cursor["own"] = {"stamps": sorted(d.isoformat() for d in earlier | self._own_stamps),
                         "reread": sorted(reread, key=str)}
        store.save_cursor(self.system, entity, cursor)
        self._own_stamps, self._overwritten, self._erased = set(), {}, set()

    def _stamped_by_others(self) -> set[Any]:
        """Parties carrying one of this run's stamps that the hub did not write (stamp resolution is the
        ERP's: a second, maybe). Checked once the newest stamp's second is over, so no later write can
        still share it."""
        if not self._own_stamps:
            return set()
        wait = (max(self._own_stamps) + timedelta(seconds=1) - datetime.now(UTC).replace(tzinfo=None)).total_seconds()
        if wait > 0:
            time.sleep(min(wait, 1.0))
        cfg = self.mapping.get("push") or {}
        entity = self._push_entity()
        parties = self.table(cfg["table"])
        key = parties.c[cfg.get("key", "id")]
        ts = self._ts_expr(parties, self.mapping["entities"][entity].get("updated_at")) if entity else None
        if ts is None:
            return set()
        with self.engine.connect() as conn:
            stamped = {r[0] for r in conn.execute(sa.select(key).where(ts.in_(sorted(self._own_stamps))))}
        return {to_jsonable(pid) for pid in stamped - set(self._overwritten)}

    def _erase(self, conn: sa.Connection, ecfg: dict, parties: sa.Table, key: sa.Column, pids: list[Any],
               now: datetime) -> None:
        """``hub erase`` on parties, as the mapping's ``push.erase`` declares it: set columns on the party
        (deactivate, anonymise), delete child rows (contact mechanisms, identifiers), blank columns of child
        rows documents still point at (addresses)."""
        fk = ecfg.get("fk", "party")
        for chunk in chunked(pids, 500):
            values = {k: v for k, v in (ecfg.get("set") or {}).items() if k in parties.c}
            if values:
                conn.execute(parties.update().where(key.in_(chunk)).values(values))
            for name in _as_list(ecfg.get("delete")):
                child = self.table(name)
                conn.execute(child.delete().where(child.c[fk].in_(chunk)))
            for name, cols in (ecfg.get("blank") or {}).items():
                child = self.table(name)
                blank = {c: None for c in _as_list(cols) if c in child.c}
                if "write_date" in child.c:
                    blank["write_date"] = now
                conn.execute(child.update().where(child.c[fk].in_(chunk)).values(blank))

    def _push_golden_ids(self, conn: sa.Connection, gcfg: dict, live: dict[Any, OutboxItem],
                         have: dict[Any, list[tuple[Any, Any]]], now: datetime) -> set[Any]:
        """Exactly one hub identifier per party, holding its golden id: insert, rewrite, drop extras."""
        it = self.table(gcfg["table"])
        it_key = it.c[gcfg.get("key", "id")]
        inserts, rewrites, extras = [], [], []
        changed: set[Any] = set()
        for pid, item in live.items():
            rows = have.get(pid, [])
            if removal(item.payload):  # the party left the hub: its hub identifier goes
                extras += [row_id for row_id, _ in rows]
                changed |= {pid} if rows else set()
                continue
            golden_id = item.golden_id or (item.payload or {}).get("golden_id")
            if not golden_id:
                continue
            if not rows:
                inserts.append(self._stamped(it, now, {
                    gcfg["fk"]: pid, gcfg["type_column"]: gcfg["type_value"], gcfg["value_column"]: golden_id}))
            elif rows[0][1] != golden_id:
                rewrites.append({"b_id": rows[0][0], "b_value": golden_id})
            extras += [row_id for row_id, _ in rows[1:]]  # keep exactly one hub identifier per party
            if not rows or rows[0][1] != golden_id or len(rows) > 1:
                changed.add(pid)
        if inserts:
            conn.execute(it.insert(), inserts)
        if rewrites:
            values = {gcfg["value_column"]: sa.bindparam("b_value")}
            if "write_date" in it.c:
                values["write_date"] = now
            conn.execute(it.update().where(it_key == sa.bindparam("b_id")).values(values), rewrites)
        for chunk in chunked(extras, 500):
            conn.execute(it.delete().where(it_key.in_(chunk)))
        return changed

    def _push_segments(self, conn: sa.Connection, scfg: dict, live: dict[Any, OutboxItem],
                       have: dict[Any, list[tuple[Any, str]]], now: datetime) -> set[Any]:
        """One hub category per family (``hub:segment:…``) per party: stale links dropped, missing added."""
        cat = self.table(scfg["table"])
        rel = self.table(scfg["rel_table"])
        rel_fk, rel_cat = rel.c[scfg["rel_fk"]], rel.c[scfg["rel_category"]]
        prefix = scfg.get("prefix", "hub:")
        families = [(f, f"{prefix}{f}:") for f in _as_list(scfg.get("fields", ["segment", "value_tier"]))]
        stale: list[tuple[Any, Any]] = []
        links: list[tuple[Any, str]] = []
        for pid, item in live.items():
            payload = item.payload or {}
            held = have.get(pid, [])
            for field_name, family in families:
                value = payload.get(field_name)
                want = f"{family}{value}" if value not in (None, "") else None
                stale += [(pid, cid) for cid, name in held if name.startswith(family) and name != want]
                if want and want not in {name for _, name in held}:
                    links.append((pid, want))
        ids = self._category_ids(conn, scfg, cat, {name for _, name in links}, now)
        for chunk in chunked(stale, 250):
            conn.execute(rel.delete().where(sa.tuple_(rel_fk, rel_cat).in_(chunk)))
        if links:
            conn.execute(rel.insert(), [
                self._stamped(rel, now, {scfg["rel_fk"]: pid, scfg["rel_category"]: ids[name]}) for pid, name in links])
        return {pid for pid, _ in stale} | {pid for pid, _ in links}

    def _category_ids(self, conn: sa.Connection, scfg: dict, cat: sa.Table, names: set[str],
                      now: datetime) -> dict[str, Any]:
        """Ids of the named hub categories, created when missing (a few per run at most)."""
        cat_key, name_col = cat.c[scfg.get("key", "id")], cat.c[scfg["name_column"]]
        ids = {name: cid for cid, name in conn.execute(
            sa.select(cat_key, name_col).where(name_col.in_(sorted(names))))} if names else {}
        defaults = {k: v for k, v in (scfg.get("insert_defaults") or {}).items() if k in cat.c}
        for name in sorted(names - set(ids)):
            values = self._stamped(cat, now, {scfg["name_column"]: name, **defaults})
            ids[name] = conn.execute(cat.insert().values(**values)).inserted_primary_key[0]
        return ids

    def _stamped(self, table: sa.Table, now: datetime, values: dict) -> dict:
        out = dict(values)
        for col in ("create_date", "write_date"):
            if col in table.c and col not in out:
                out[col] = now
        return out


_PLAIN = frozenset({str, int, float, bool, type(None)})


def _plain_names(keys: Any) -> list[str]:
    """A result's column names as exact str, once per statement: reflected names are ``quoted_name`` (a str
    subclass), and a payload keyed by them failed ``orjson_exact``, so every ERP record took json.dumps."""
    return [str(k) for k in keys]


_NONE = type(None)
_FLOATS = frozenset({float, _NONE})


class _Rows(list):
    """One statement's rows as tuples, with its column names (exact str)."""

    def __init__(self, names: list[str], rows: Any) -> None:
        super().__init__(rows)
        self.names = names


def _converted(names: list[str], rows: Sequence[tuple], drop: str | None = None
               ) -> tuple[list[str], list[tuple], bool]:
    """``rows`` with every value as ``to_jsonable`` leaves it, less the column ``drop``, converted a column at
    a time by a plan chosen from the column's value types (a datetime column by isoformat, Decimal by str,
    plain values untouched). Also says whether orjson writes every value as json.dumps does (``orjson_exact``;
    only a column of other than str / int / bool / None is walked for it)."""
    if not rows:
        return [n for n in names if n != drop], [], True
    columns = list(zip(*rows, strict=True))
    if drop is not None:
        i = names.index(drop)
        names = names[:i] + names[i + 1:]
        del columns[i]
    exact = True
    for i, col in enumerate(columns):
        types = set(map(type, col))
        if types <= ORJSON_LEAVES:
            continue
        plain = types - {_NONE}
        if len(plain) == 1 and (t := next(iter(plain))) in _FORMATS:
            fmt = _FORMATS[t]
            columns[i] = col = tuple(map(fmt, col)) if _NONE not in types else tuple(
                None if v is None else fmt(v) for v in col)
        elif not types <= _PLAIN:
            columns[i] = col = tuple(map(to_jsonable, col))
        if exact and not (types := set(map(type, col))) <= ORJSON_LEAVES:
            # a float column (sale line quantities) is checked once per distinct value (no int to equal one)
            exact = all(map(orjson_exact, set(col) if types <= _FLOATS else col))
    return names, list(zip(*columns, strict=True)), exact


# to_jsonable's conversions of one exact type, as one function for a whole column
_FORMATS: dict[type, Callable[[Any], str]] = {datetime: datetime.isoformat, date: date.isoformat, Decimal: str}


def _picker(names: list[str], exclude: frozenset[str]) -> Callable[[tuple], dict]:
    """A converted row -> its hash view (the columns not in ``exclude``), in column order."""
    kept = [(i, n) for i, n in enumerate(names) if n not in exclude]
    if len(kept) == len(names):
        return lambda row: dict(zip(names, row, strict=True))
    kept_names = [n for _, n in kept]
    if len(kept) == 1:
        i0 = kept[0][0]
        return lambda row: {kept_names[0]: row[i0]}
    get = itemgetter(*(i for i, _ in kept))
    return lambda row: dict(zip(kept_names, get(row), strict=True))


def _position(table: sa.Table, column: sa.Column) -> int:
    """``column``'s place in a row of ``select(table, ...)``."""
    return [c.name for c in table.c].index(column.name)


def _pruned_own(own: dict | None, lb: str | None) -> dict | None:
    """The cursor's record of the hub's own writes once a sweep is done: stamps no later window reaches
    (before ``lb``) dropped, rereads dropped (they were read); None when nothing is left."""
    if not own:
        return None
    low = _ts_param(lb)
    stamps = sorted(x for x in own.get("stamps") or [] if low is None or _ts_param(x) >= low)
    return {"stamps": stamps, "reread": []} if stamps else None


def _hub_owned(row: dict, rule: Mapping[str, Any] | None) -> bool:
    """Is this child row the hub's own (pushed by us)? Such rows are kept in the payload, not in the hash."""
    if not rule:
        return False
    value = row.get(rule["column"])
    if value is None:
        return False
    if "values" in rule and value in rule["values"]:
        return True
    return bool(rule.get("prefix")) and str(value).startswith(rule["prefix"])


def _like_prefix(prefix: str) -> str:
    """A LIKE pattern matching strings that start with ``prefix`` ('/' escapes; '_' is common in names)."""
    return prefix.replace("/", "//").replace("%", "/%").replace("_", "/_") + "%"
