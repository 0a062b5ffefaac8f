"""The report's "Personal data" section: rows per table that can hold personal data, deletes at the sources,
erasures and the suppression list (counts only)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from hub.privacy.inventory import personal_row_counts
from hub.store import Store, erasure, source_tombstone, suppression


def privacy_figures(store: Store, known: Mapping[str, int] | None = None) -> dict[str, Any]:
    """Rows per personal-data table (``known``: counts already taken), tombstones, erasures, suppressions."""
    with store.engine.connect() as conn:
        tombstones = {str(k): int(n) for k, n in conn.execute(
            sa.select(source_tombstone.c.kind, sa.func.count()).group_by(source_tombstone.c.kind))}
        erasures = {str(k): int(n) for k, n in conn.execute(
            sa.select(erasure.c.status, sa.func.count()).group_by(erasure.c.status))}
        suppressed = {str(k): int(n) for k, n in conn.execute(
            sa.select(suppression.c.kind, sa.func.count()).group_by(suppression.c.kind))}
    return {"rows": personal_row_counts(store, known), "tombstones": tombstones, "erasures": erasures,
            "suppression": suppressed}
