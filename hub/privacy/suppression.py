"""The suppression list: what an erased person looked like, as salted hashes, so they are never staged again.

``hub erase`` adds HMAC-SHA256(salt, "<kind>:<value>") of the person's phone numbers (E.164), e-mail
addresses (standardised), national ids and source keys (``landing:<source>/<entity>/<id>`` and
``record:<entity>|<source>:<id>``). A later pull drops records whose source key is listed before they are landed; the
staging stage drops records carrying a listed phone, e-mail, id or owner (an order of an erased customer) and
lists their source key too. Both are counted (pull metadata, staging summary, report).

The salt comes from the environment variable ``HUB_SUPPRESSION_SALT`` (a long random secret kept outside the
store, e.g. ``python -c "import secrets; print(secrets.token_hex(32))"``; never change it once set: the list
would stop matching). Without it, an embedded store (SQLite, the demo) keeps a generated salt in
``<store dir>/suppression.salt`` (0600); a shared store (``HUB_DATABASE_URL``) refuses to erase or to check
the list without the variable, since every host must hash alike.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hub.standardise import phone_e164, standardise_email
from hub.store import Store, suppression

SALT_ENV = "HUB_SUPPRESSION_SALT"
SALT_FILE = "suppression.salt"
KINDS = ("phone", "email", "national_id", "landing", "record")


class SuppressionError(RuntimeError):
    """The suppression list cannot be used (no salt for a shared store)."""


def salt_for(store: Store) -> bytes:
    """The salt: ``HUB_SUPPRESSION_SALT``, else the embedded store's salt file (created on first use)."""
    env = os.environ.get(SALT_ENV)
    if env:
        return env.encode("utf-8")
    url = store.url
    if not url.startswith("sqlite:///") or url.startswith("sqlite:///:memory:"):
        raise SuppressionError(
            f"set {SALT_ENV} (a long random secret, the same on every host, never changed): the suppression "
            "list of erased people is hashed with it")
    path = Path(url.removeprefix("sqlite:///")).parent / SALT_FILE
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(secrets.token_hex(32))
    return path.read_text(encoding="utf-8").strip().encode("utf-8")


def normalise(kind: str, value: Any, region: str | None = None) -> str | None:
    """The one spelling a value is hashed in (None: nothing usable)."""
    if value is None or value == "":
        return None
    if kind == "phone":
        return phone_e164(value, region) if region else phone_e164(value)
    if kind == "email":
        return standardise_email(value).address
    if kind == "national_id":
        return "".join(str(value).split()).upper() or None
    return str(value)


def landing_key(source: str, entity: str, source_id: str) -> str:
    return f"{source}/{entity}/{source_id}"


def record_value(entity: str, record_key: str) -> str:
    """A staged record as listed: the entity matters (ERP party 5 and sale 5 are both ``erp:5``)."""
    return f"{entity}|{record_key}"


@dataclass
class Suppressor:
    """The loaded list; ``empty`` lists need no salt (the common case: nobody was ever erased)."""

    salt: bytes | None
    hashes: frozenset[str]
    hits: dict[str, int] = field(default_factory=dict)  # kind -> records dropped

    @property
    def empty(self) -> bool:
        return not self.hashes

    def digest(self, kind: str, value: str) -> str:
        if self.salt is None:
            raise SuppressionError("no salt loaded")
        return hmac.new(self.salt, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()

    def listed(self, kind: str, value: Any, region: str | None = None) -> bool:
        if self.empty:
            return False
        norm = normalise(kind, value, region)
        return norm is not None and self.digest(kind, norm) in self.hashes

    def count(self, kind: str) -> None:
        self.hits[kind] = self.hits.get(kind, 0) + 1

    def record_listed(self, entity: str, record: Mapping[str, Any], owner_key: str | None) -> str | None:
        """Why a staged record (JSON of the canonical model) belongs to an erased person, or None."""
        if self.empty:
            return None
        if owner_key and self.listed("record", record_value("customers", owner_key)):
            return "owner"
        phones = [p.get("e164") if isinstance(p, Mapping) else p for p in record.get("phones") or []]
        phones += [record.get("phone"), record.get("billing_phone")]
        if any(self.listed("phone", p) for p in phones if p):
            return "phone"
        emails = [*(record.get("emails") or []), record.get("billing_email")]
        if any(self.listed("email", e) for e in emails if e):
            return "email"
        if record.get("national_id") and self.listed("national_id", record["national_id"]):
            return "national_id"
        return None


def load(store: Store, conn: Connection | None = None) -> Suppressor:
    def read(c: Connection) -> frozenset[str]:
        return frozenset(c.execute(sa.select(suppression.c.hash)).scalars())

    if conn is not None:
        hashes = read(conn)
    else:
        with store.engine.connect() as c:
            hashes = read(c)
    return Suppressor(salt_for(store) if hashes else None, hashes)


def add(conn: Connection, sup: Suppressor, values: Iterable[tuple[str, str]], erasure_id: str | None) -> int:
    """List ``(kind, normalised value)`` pairs (already listed ones are skipped); returns rows added."""
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = {sup.digest(kind, value): kind for kind, value in values if value}
    fresh = {h: k for h, k in rows.items() if h not in sup.hashes}
    if fresh:
        existing = set(conn.execute(sa.select(suppression.c.hash).where(suppression.c.hash.in_(sorted(fresh))))
                       .scalars())
        new = [{"hash": h, "kind": k, "erasure_id": erasure_id, "created_at": now}
               for h, k in sorted(fresh.items()) if h not in existing]
        if new:
            conn.execute(suppression.insert(), new)
        sup.hashes = frozenset(sup.hashes | set(fresh))
        return len(new)
    return 0


def counts(store: Store) -> dict[str, int]:
    """Listed values per kind (for the report)."""
    with store.engine.connect() as conn:
        return {k: int(n) for k, n in conn.execute(
            sa.select(suppression.c.kind, sa.func.count()).group_by(suppression.c.kind))}
