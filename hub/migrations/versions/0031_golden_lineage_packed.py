"""golden_customer.lineage is stored packed: each deciding record once (record key, source, source_updated_at),
each field its record's index and rule, and its decision time only where it differs from the record's
``decided_at`` (``hub.golden.build.pack_lineage``; ``unpack_lineage`` and ``load_golden`` give the entries back).
Written out, the same record key, source and times were repeated under every field: 1.9 KB of a golden row's
2.9 KB (100k people: 190 MB of the golden stage's 350 MB written, and written twice with SQLite's WAL).

Existing rows are packed here, a thousand at a time in golden id order; the record hash does not change (it
covers the entries, not how they are stored), so no golden record counts as changed afterwards.

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-07 07:00:00
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None

_BATCH = 1000
_golden = sa.table("golden_customer", sa.column("golden_id", sa.String), sa.column("lineage", sa.JSON))


def _pack(lineage: dict[str, dict[str, Any]]) -> dict[str, Any]:
    # pack_lineage as of this revision (a migration keeps its own copy: the module may change later)
    records: dict[tuple[Any, Any, Any], int] = {}
    fields: dict[str, list[Any]] = {}
    decided: Any = None
    for k, (f, e) in enumerate(lineage.items()):
        by = (e["record_key"], e["source"], e.get("source_updated_at"))
        i = records.setdefault(by, len(records))
        at = e.get("decided_at")
        if k == 0:
            decided = at
        fields[f] = [i, e["rule"]] if at == decided else [i, e["rule"], at]
    return {"decided_at": decided, "records": [list(by) for by in records], "fields": fields}


def _unpack(stored: dict[str, Any]) -> dict[str, dict[str, Any]]:
    records, decided = stored["records"], stored["decided_at"]
    return {f: {"record_key": records[v[0]][0], "source": records[v[0]][1], "rule": v[1],
                "source_updated_at": records[v[0]][2], "decided_at": v[2] if len(v) > 2 else decided}
            for f, v in stored["fields"].items()}


def _packed(lineage: Any) -> bool:
    return isinstance(lineage, dict) and set(lineage) == {"decided_at", "records", "fields"}


def _rewrite(convert: Any, done: Any) -> None:
    conn = op.get_bind()
    last = ""
    while True:
        rows = conn.execute(sa.select(_golden.c.golden_id, _golden.c.lineage)
                            .where(_golden.c.golden_id > last, _golden.c.lineage.is_not(None))
                            .order_by(_golden.c.golden_id).limit(_BATCH)).all()
        if not rows:
            return
        todo = [{"b_gid": gid, "lineage": convert(lin)} for gid, lin in rows if lin and not done(lin)]
        if todo:
            conn.execute(_golden.update().where(_golden.c.golden_id == sa.bindparam("b_gid"))
                         .values(lineage=sa.bindparam("lineage")), todo)
        last = rows[-1][0]


def upgrade() -> None:
    _rewrite(_pack, _packed)


def downgrade() -> None:
    _rewrite(_unpack, lambda lin: not _packed(lin))
