"""The `hub` command line.

  hub sync [--dry-run] [--source NAME]... [--full] [--no-wait]   whole pipeline against the systems in hub.yaml
  hub demo [--customers N] [--reset]          sandbox started, then the same as `hub sync`, embedded store
  hub ui [--port P] [--sandbox]               Dagster UI (with the sandbox running for the demo world)
  hub export golden|xref|customer360 --out F [--excel]  CSV, or XLSX / Parquet by extension
  hub dedupe INPUT --out OUT [--link-only] [--pairs PAIRS]
  hub review list | hub review decide 'LEFT|RIGHT' match|no-match
  hub golden preview --rules FILE
  hub quality status | hub quality release --by NAME [--note TEXT]
  hub serve [--host H] [--port P]             caller-lookup HTTP API (tokens from HUB_API_TOKENS)
  hub import FILE --source NAME --mapping M [--encoding E] [--no-header] [--columns A,B] [--sheet S]
  hub push log [--target T] [--status S] [--limit N] [--format table|csv|json]
  hub erase (--golden-id G | --phone P | --email E | --record SOURCE:ID) [--dry-run] [--reason TEXT]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import uuid
from pathlib import Path


def _store():  # noqa: ANN202 - lazy import keeps `hub --help` fast
    from hub.store import Store

    return Store()


def cmd_demo(args: argparse.Namespace) -> int:
    from hub.demo import demo

    return demo(customers=args.customers, reset_first=args.reset)


def cmd_sync(args: argparse.Namespace) -> int:
    from hub.sync import sync

    return sync(dry_run=args.dry_run, sources=args.source or (), full=args.full, no_wait=args.no_wait)


def cmd_ui(args: argparse.Namespace) -> int:
    from hub.demo import ui

    return ui(customers=args.customers, port=args.port, sandbox=args.sandbox or None)


def cmd_export(args: argparse.Namespace) -> int:
    from hub.export import export

    n = export(_store(), args.what, Path(args.out), excel=args.excel)
    print(f"wrote {n} rows to {args.out}", file=sys.stderr)
    return 0


def cmd_review(args: argparse.Namespace) -> int:
    from hub import golden

    store = _store()
    if args.review_cmd == "list":
        from hub.stewardship import format_review_queue

        print(format_review_queue(golden.review_queue(store, limit=args.limit)))
        return 0
    left, _, right = args.pair.partition("|")
    if not left or not right:
        print("hub review decide: PAIR must be 'LEFT_KEY|RIGHT_KEY' as printed by `hub review list`",
              file=sys.stderr)
        return 2
    golden.decide(store, left, right, args.decision, by=args.by)
    print(f"recorded {args.decision} for {left} ~ {right}; it applies from the next run")
    return 0


def cmd_golden(args: argparse.Namespace) -> int:
    import yaml

    from hub import golden

    rules = yaml.safe_load(Path(args.rules).read_text(encoding="utf-8"))
    if isinstance(rules, dict) and "survivorship" in rules:
        rules = rules["survivorship"]
    report = golden.preview(_store(), rules)
    print(report.markdown())
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from hub.file_import import import_file

    columns = [c for c in args.columns.split(",")] if args.columns is not None else None
    workers = args.workers
    if workers is None:
        from hub.config import load_config

        workers = load_config().staging.workers
    return import_file(_store(), Path(args.file), source=args.source, mapping=args.mapping, key=args.key,
                       encoding=args.encoding, no_header=args.no_header, columns=columns, sheet=args.sheet,
                       workers=workers)


def _processes(text: str) -> int:
    """A number of processes for argparse: 0 (one per core) or more."""
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not 0 (one per core) or a number of processes")
    return n


def _module_doc(module: str) -> str | None:
    """A module's docstring without importing it (importing the stage would slow every `hub` command)."""
    import ast
    import importlib.util

    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return None
    doc = ast.get_docstring(ast.parse(Path(spec.origin).read_text(encoding="utf-8")))
    return doc.split("\n", 1)[1].strip() if doc else None


def cmd_quality(args: argparse.Namespace) -> int:
    from hub.quality import brake

    store = _store()
    if args.quality_cmd == "release":
        n = brake.release(store, by=args.by, note=args.note)
        if not n:
            print("the brake is not holding any push: nothing to release")
            return 0
        print(f"released by {args.by}: the golden customers as they are now are accepted; the next sync pushes")
        return 0
    held = brake.current(store)
    if held is None:
        print("brake: not holding — pushes go ahead")
        return 0
    print("brake: HOLDING every push")
    for reason in held.reasons:
        print(f"  - {reason}")
    print(f"release with: {held.release_command}")
    return 3


def cmd_serve(args: argparse.Namespace) -> int:
    from hub.lookup.serve import serve

    return serve(host=args.host, port=args.port, workers=args.workers)


def cmd_push_log(args: argparse.Namespace) -> int:
    from hub.config import load_config
    from hub.push_log import log_rows, render
    from hub.push_plan import target_configs

    sources = {t.name: t.source for t in target_configs(load_config().push_plan_config())}
    rows = log_rows(_store(), target=args.target, status=args.status, limit=args.limit, sources=sources)
    print(render(rows, args.format))
    return 0


def cmd_erase(args: argparse.Namespace) -> int:
    from hub.config import load_config
    from hub.privacy.erasure import ErasureInputError, Selector, context_from_config, erase
    from hub.privacy.suppression import SuppressionError
    from hub.sync_lock import hold

    kind, value = next((k, v) for k, v in (("golden_id", args.golden_id), ("phone", args.phone),
                                           ("email", args.email), ("record", args.record)) if v)
    store = _store()
    try:
        # an erasure edits golden records, xrefs and the outbox: it waits for a running sync (and a sync
        # started meanwhile waits for it) like every run of the pipeline; a dry run only reads
        with contextlib.ExitStack() as held:
            if not args.dry_run:
                held.enter_context(hold(store, f"erase-{uuid.uuid4().hex[:12]}", job="hub erase",
                                        say=lambda text: print(f"hub erase: {text}", file=sys.stderr)))
            result = erase(store, Selector(kind, value), reason=args.reason, dry_run=args.dry_run,
                           **context_from_config(load_config()))
    except (ErasureInputError, SuppressionError) as exc:
        print(f"hub erase: {exc}", file=sys.stderr)
        return 2
    print(result.plan.render())
    if result.dry_run:
        print("\ndry run: nothing was erased")
    else:
        print(f"\nerased as {result.erasure_id}. {result.queued} erasure row(s) wait in the push outbox for the "
              "target systems: the next sync sends them (row-level results in the push log) and retries them "
              "until each target confirmed.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hub", description="Customer data hub")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "sync", help="run the whole pipeline against the systems in hub.yaml",
        description="Pull every enabled source of hub.yaml, standardise, match, build golden records and the "
        "360 view, push back, write the data-quality report — the full_sync job, on the Dagster instance in "
        "DAGSTER_HOME (default .hub/dagster), so the run shows in `hub ui`. Progress on stderr, the summary on "
        "stdout. Exit 0: every step succeeded; 1: some step failed (what was committed stays); 2: configuration "
        "error; 3: another sync holds the store (--no-wait).",
    )
    p.add_argument("--dry-run", action="store_true",
                   help="send nothing to any system: print per target what would be created / updated / removed "
                   "(masked samples); the outbox stays pending for the next sync")
    p.add_argument("--source", action="append", metavar="NAME",
                   help="pull only this source (repeatable); everything downstream still runs")
    p.add_argument("--full", action="store_true", help="ignore the stored cursors: re-read every record")
    p.add_argument("--no-wait", action="store_true",
                   help="when another sync holds the store, exit 3 naming it instead of waiting")
    p.set_defaults(func=cmd_sync)

    p = sub.add_parser("demo", help="run the whole pipeline against the built-in sandbox")
    p.add_argument("--customers", type=int, default=2000, help="people in a new sandbox world (default 2000)")
    p.add_argument("--reset", action="store_true", help="start over: new store, new sandbox world")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("ui", help="open the Dagster UI (127.0.0.1); the sandbox runs only for the demo world")
    p.add_argument("--customers", type=int, default=2000, help="people in a new sandbox world")
    p.add_argument("--port", type=int, default=3000)
    p.add_argument("--sandbox", action="store_true",
                   help="start the sandbox sources too (default: only when hub.yaml is the demo world and its sandbox variables are not set)")
    p.set_defaults(func=cmd_ui)

    p = sub.add_parser("export", help="export golden records, xref or the 360 view")
    p.add_argument("what", choices=["golden", "xref", "customer360"])
    p.add_argument("--out", required=True, help="output file: .csv, .xlsx or .parquet (by extension)")
    p.add_argument("--excel", action="store_true",
                   help="CSV with a UTF-8 byte-order mark, so Excel and WPS read Chinese text correctly")
    p.set_defaults(func=cmd_export)

    from hub.dedupe.cli import register as register_dedupe

    register_dedupe(sub)

    p = sub.add_parser("review", help="steward review of pairs in the review band")
    rsub = p.add_subparsers(dest="review_cmd", required=True)
    q = rsub.add_parser("list", help="pairs awaiting a decision")
    q.add_argument("--limit", type=int, default=50)
    q.set_defaults(func=cmd_review)
    q = rsub.add_parser("decide", help="record a decision: it always wins over the model")
    q.add_argument("pair", help="'LEFT_KEY|RIGHT_KEY' as printed by `hub review list`")
    q.add_argument("decision", choices=["match", "no-match"])
    q.add_argument("--by", default="steward")
    q.set_defaults(func=cmd_review)

    p = sub.add_parser("golden", help="golden record tools")
    gsub = p.add_subparsers(dest="golden_cmd", required=True)
    q = gsub.add_parser("preview", help="what a survivorship rule change would change, before applying it")
    q.add_argument("--rules", required=True, help="YAML with a survivorship section")
    q.set_defaults(func=cmd_golden)

    p = sub.add_parser("quality", help="the push brake: see why pushes wait, release them")
    qsub = p.add_subparsers(dest="quality_cmd", required=True)
    q = qsub.add_parser("status", help="is the merge/split brake holding pushes, and why (exit 3 if holding)")
    q.set_defaults(func=cmd_quality)
    q = qsub.add_parser("release", help="accept the consolidation the brake stopped; the next sync pushes")
    q.add_argument("--by", required=True, help="who looked at it and decided")
    q.add_argument("--note", help="why it is right")
    q.set_defaults(func=cmd_quality)

    p = sub.add_parser(
        "import", help="import a CSV/TSV/XLSX file as a source", formatter_class=argparse.RawDescriptionHelpFormatter,
        description=_module_doc("hub.file_import"),
    )
    p.add_argument("file")
    p.add_argument("--source", required=True)
    p.add_argument("--mapping", required=True, help="mapping name in hub/mappings (e.g. customer_file) or a YAML path")
    p.add_argument("--key", help="column holding the record id (default: record_id / customer_id / id; "
                   "rows without one are keyed by their content)")
    p.add_argument("--encoding", help="read a CSV in this encoding (e.g. gb18030, big5, utf-16) instead of "
                   "detecting it")
    p.add_argument("--no-header", action="store_true", help="the file has no header row: every row is data "
                   "(needs --columns)")
    p.add_argument("--columns", metavar="NAME,NAME,…", help="column names, one per column, comma-separated: "
                   "for a file without a header (with --no-header) or to rename the header row")
    p.add_argument("--sheet", help="XLSX: import only this sheet (default: every sheet)")
    p.add_argument("--workers", type=_processes, help="processes that stage a large file's new records (0 = one per "
                   "core, 1 = this one only; default: hub.yaml staging.workers, 0); the result is the same")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("serve", help="caller-lookup HTTP API for phone systems and agent desktops")
    p.add_argument("--host", help="interface to listen on (default: hub.yaml serve.host, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default: hub.yaml serve.port, 8765)")
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("push", help="what the hub wrote back to the target systems")
    psub = p.add_subparsers(dest="push_cmd", required=True)
    q = psub.add_parser("log", help="row-level push results, newest first (personal data masked)")
    q.add_argument("--target", help="only this target (e.g. webshop)")
    q.add_argument("--status", choices=["ok", "rejected", "error", "pending"],
                   help="only rows with this status (pending: still to send)")
    q.add_argument("--limit", type=int, default=50, help="at most this many rows (default 50)")
    q.add_argument("--format", choices=["table", "csv", "json"], default="table")
    q.set_defaults(func=cmd_push_log)

    p = sub.add_parser(
        "erase", help="erase a person from the hub and every connected system (right to be forgotten)",
        description="Finds every record of the person (through their golden record, ids merged into it "
        "included), prints what will be erased per hub table and per system, then erases: personal data "
        "deleted or anonymised in every hub table, a non-personal audit row kept, the person's phones, "
        "e-mails, ids and source keys put on the suppression list (salted hashes: HUB_SUPPRESSION_SALT) so no "
        "pull brings them back, and one erasure row per target record queued for the next sync's push. "
        "Exit 2 when the selector finds nobody or several people (nothing erased).",
    )
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--golden-id", help="a golden id (a merged-away id names the record it went into)")
    who.add_argument("--phone", help="a phone number in any format")
    who.add_argument("--email", help="an e-mail address")
    who.add_argument("--record", help="a source record, SOURCE:ID (e.g. webshop:1042)")
    p.add_argument("--dry-run", action="store_true", help="show what would be erased; change nothing")
    p.add_argument("--reason", help="why (kept in the audit row; contact data typed here is masked)")
    p.set_defaults(func=cmd_erase)
    return parser


def main(argv: list[str] | None = None) -> int:
    from hub.config import ConfigError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:  # one clear message naming the key, no traceback
        print(f"hub {args.command}: configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
