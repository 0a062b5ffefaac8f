"""Every table of the hub store is classified as holding personal data or not — a table someone adds is
handled by ``hub erase`` and counted in the report before it lands."""

from __future__ import annotations

from hub.privacy.inventory import NOT_PERSONAL, PERSONAL, personal_row_counts, unclassified
from hub.store import Store, metadata


def test_every_store_table_is_classified() -> None:
    assert unclassified() == [], (
        "classify the new table(s) in hub/privacy/inventory.py and erase a person from them in "
        "hub/privacy/erasure.py")
    assert not set(PERSONAL) & set(NOT_PERSONAL)
    assert set(PERSONAL) <= set(metadata.tables)


def test_personal_row_counts_cover_every_personal_table(sqlite_store: Store) -> None:
    counts = personal_row_counts(sqlite_store)
    assert set(counts) == set(PERSONAL) and all(n == 0 for n in counts.values())
