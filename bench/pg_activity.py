"""What a PostgreSQL store spends a sync on: samples of the statements running, per stage of the sync.

    python bench/pg_activity.py LOG [--every 0.25] [--database-like 'bench_sync%'] [--top 8]

Run beside ``bench/bench_sync.py --backends postgres`` (its stderr to LOG). Every ``--every`` seconds it reads
``pg_stat_activity`` of the databases named like ``--database-like`` (one connection) and counts each active
statement — not one waiting for its client — under the stage LOG says is running (the last "▶ <stage>
started" line). When the bench's process ends (or on Ctrl-C, or SIGTERM) it prints per stage the statements most often
seen, literals and IN lists folded: a statement seen in n samples held the server for about n x --every
seconds. This is how the 100k bench's PostgreSQL faults were found (unanalyzed tables filling inside a stage,
push claims walking over sent rows, JSON paths parsing the whole document each); EXPLAIN ANALYZE of a
statement on the bench's database (bench_sync_* in pg_database) while it runs shows its plan.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import time
from collections import Counter, defaultdict
from pathlib import Path

import sqlalchemy as sa

_FOLD = [(re.compile(r"IN \([^)]*\)"), "IN (...)"), (re.compile(r"VALUES \(.*"), "VALUES ..."),
         (re.compile(r"'[^']*'"), "'?'"), (re.compile(r"\b\d+(\.\d+)?\b"), "N"), (re.compile(r"\s+"), " ")]


def fold(statement: str) -> str:
    for pattern, repl in _FOLD:
        statement = pattern.sub(repl, statement)
    return statement[:200]


def current_stage(log: Path) -> str:
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "-"
    started = re.findall(r"▶ (\S+) started", text)
    return started[-1] if started else "-"


def bench_running() -> bool:
    return subprocess.run(["pgrep", "-f", "bench_sync.py"], capture_output=True).returncode == 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("log", type=Path)
    ap.add_argument("--every", type=float, default=0.25)
    ap.add_argument("--database-like", default="bench_sync%")
    ap.add_argument("--top", type=int, default=8)
    ap.add_argument("--url", default=os.environ.get("HUB_TEST_POSTGRES_URL",
                                                    "postgresql+psycopg2://postgres@127.0.0.1:5432/test"))
    args = ap.parse_args(argv)
    seen: dict[str, Counter[str]] = defaultdict(Counter)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stopped: the samples so far
    engine = sa.create_engine(args.url, isolation_level="AUTOCOMMIT")
    query = sa.text("SELECT query FROM pg_stat_activity WHERE datname LIKE :like AND state = 'active' "
                    "AND wait_event_type IS DISTINCT FROM 'Client' AND pid <> pg_backend_pid()")
    try:
        with engine.connect() as conn:
            while bench_running():
                stage = current_stage(args.log)
                for (statement,) in conn.execute(query, {"like": args.database_like}):
                    seen[stage][fold(statement)] += 1
                time.sleep(args.every)
    except KeyboardInterrupt:
        pass
    for stage, counts in seen.items():
        print(f"== {stage}: {sum(counts.values())} samples")
        for statement, n in counts.most_common(args.top):
            print(f"{n:6d}  {statement}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
