"""What a piece of the hub asks the store, and how SQLite answers it: the statements a call issues and their
EXPLAIN QUERY PLAN steps, for tests that pin a plan's shape (a whole-table read of a big table shows at a million
people, never in a test's small store)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from hub.store import Store


def statements_of(store: Store, fn: Callable[[], Any], kinds: tuple[str, ...] | None = ("SELECT",)
                  ) -> list[tuple[str, Any]]:
    """(statement, parameters) of every statement of ``kinds`` (None: of any kind) that ``fn()`` issues on
    ``store`` (the first parameter set of an executemany)."""
    seen: list[tuple[str, Any]] = []

    def note(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if kinds is None or statement.lstrip().upper().startswith(kinds):
            seen.append((statement, parameters[0] if many and parameters else parameters))

    sa.event.listen(store.engine, "before_cursor_execute", note)
    try:
        fn()
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", note)
    return seen


def plan_of(store: Store, statement: str, parameters: Any) -> list[str]:
    """SQLite's plan steps for one statement (EXPLAIN QUERY PLAN, the detail column)."""
    with store.engine.connect() as conn:
        return [r[-1] for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)]
