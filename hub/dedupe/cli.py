"""`hub dedupe INPUT --out OUT [--link-only] [--pairs PAIRS]` — cluster customer records from a file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

STEPS = ("standardise", "blocking", "compare", "estimate", "score", "cluster")


class InputError(Exception):
    """Input cannot be used; the message is one line naming the problem."""



# why a value was set aside, in words (the engine's stats keys are <field>_<reason>)
SET_ASIDE_REASONS = {
    "unusable": "invalid or placeholder",
    "shared": "shared by people of different names: a switchboard, a team mailbox",
    "role": "a role mailbox such as info, sales or 采购",
}


def _set_aside_label(key: str) -> str:
    field, _, reason = key.rpartition("_")
    return f"{field} ({SET_ASIDE_REASONS[reason]})" if field and reason in SET_ASIDE_REASONS else key

def read_input(path: str) -> pd.DataFrame:
    """Read CSV (UTF-8, header) or Parquet with every column as string, empty = missing."""
    import pandas as pd  # here, not at the top: every `hub` command builds this parser

    p = Path(path)
    if not p.is_file():
        raise InputError(f"cannot read input {path!r}: no such file")
    try:
        if p.suffix.lower() in (".parquet", ".pq"):
            frame = pd.read_parquet(p)
            for c in frame.columns:  # every column as text, '' = missing (keeps compact string storage)
                col = frame[c]
                frame[c] = (col if pd.api.types.is_string_dtype(col.dtype)
                            else col.astype(object).where(col.notna(), "").astype("str")).fillna("")
        else:
            frame = pd.read_csv(p, dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"cannot read input {path!r}: not UTF-8 text") from None
    except Exception as exc:  # pandas raises many types for malformed files
        raise InputError(f"cannot read input {path!r}: {type(exc).__name__}: {str(exc).splitlines()[0]}") from None
    frame.columns = [str(c).strip().lstrip("\ufeff") for c in frame.columns]
    if "record_id" not in frame.columns:
        raise InputError(f"input {path!r} has no 'record_id' column")
    rid = frame["record_id"].astype(str)
    if (rid.str.strip() == "").any():
        raise InputError(f"input {path!r} has {int((rid.str.strip() == '').sum())} empty record_id value(s)")
    dup = rid.duplicated()
    if dup.any():
        raise InputError(f"input {path!r} has {int(dup.sum())} duplicate record_id value(s), e.g. {rid[dup].iloc[0]!r}")
    return frame


def usable_columns(frame: pd.DataFrame) -> list[str]:
    """Canonical columns (besides ``source``) that hold at least one value: the evidence matching can use."""
    from hub.dedupe.prepare import CANONICAL_COLUMNS

    return [c for c in CANONICAL_COLUMNS if c != "source" and c in frame.columns
            and (frame[c].astype(str).str.strip() != "").any()]


def thin_input_warning(frame: pd.DataFrame) -> str | None:
    """A warning when the input gives matching fewer than two usable columns (one name column alone
    merges everyone who shares a common name), naming the columns it ignored."""
    usable = usable_columns(frame)
    if len(usable) >= 2:
        return None
    ignored = [c for c in frame.columns if c not in usable and c not in ("record_id", "source")]
    text = (f"hub dedupe: warning: the input has {len(usable)} usable column(s)"
            f"{' (' + ', '.join(usable) + ')' if usable else ''}; matching needs at least two kinds of evidence, "
            "so these clusters are unreliable")
    if ignored:
        text += f". Not used (no canonical name, or empty): {', '.join(map(str, ignored[:20]))}"
    return text + " — see `hub dedupe --help` for the canonical column names"


def run(args: argparse.Namespace) -> int:
    try:
        frame = read_input(args.input)
    except InputError as exc:
        print(f"hub dedupe: error: {exc}", file=sys.stderr)
        return 2
    warning = thin_input_warning(frame)
    if warning:
        print(warning, file=sys.stderr)
    if args.link_only and ("source" not in frame.columns or frame["source"].astype(str).str.strip().nunique() < 2):
        print("hub dedupe: error: --link-only needs a 'source' column with at least two different values",
              file=sys.stderr)
        return 2
    from tqdm import tqdm

    from hub.dedupe.engine import deduplicate
    bar = tqdm(total=len(STEPS), desc="dedupe", unit="step", file=sys.stderr,
               disable=len(frame) < 20_000 or getattr(args, "quiet", False))

    def progress(name: str) -> None:
        if bar.n < len(STEPS) and name != STEPS[0]:
            bar.update(1)
        bar.set_postfix_str(name)

    try:
        result = deduplicate(frame, link_only=args.link_only, progress=progress)
    finally:
        bar.update(len(STEPS) - bar.n)
        bar.close()
    try:
        result.clusters.to_csv(args.out, index=False)
        if args.pairs:
            result.pairs.to_csv(args.pairs, index=False)
    except OSError as exc:
        print(f"hub dedupe: error: cannot write output: {exc}", file=sys.stderr)
        return 2
    if not getattr(args, "quiet", False):
        print(summary(result.stats, result.model.diagnostics))
    return 0


def summary(stats: dict, diagnostics: list[dict]) -> str:
    """What a user reads after a run: how many duplicates (none is an answer), what was set aside, and why
    the model is not trusted when it is not. Counts only, no values."""
    n, dup = stats.get("n_records", 0), stats.get("duplicate_records", 0)
    found = "no duplicates found" if dup == 0 else \
        f"{dup:,} duplicate record(s) found ({dup / max(n, 1):.1%} of the records merged into others)"
    lines = [f"hub dedupe: {n:,} records -> {stats.get('n_clusters', n):,} clusters: {found}"]
    aside = stats.get("set_aside") or {}
    if aside:
        lines.append("  set aside as missing: " + ", ".join(
            f"{count:,} {_set_aside_label(key)}" for key, count in sorted(aside.items())))
    for d in diagnostics:
        lines.append(f"  warning: {d['message']}" if d.get("code") != "conservative_parameters"
                     else f"  note: {d['message']}")
    return "\n".join(lines)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``dedupe`` sub-command to the ``hub`` CLI."""
    sp = subparsers.add_parser(
        "dedupe", help="cluster customer records (record_id -> cluster_id)",
        description="Match and cluster customer records. INPUT: CSV/Parquet with record_id and any canonical "
        "columns (source, full_name, given_name, family_name, company, email, phone, birth_date, gender, "
        "national_id, national_id_type, street, city, region, postal_code, country); further values as phone_2 … phone_5, "
        "email_2 … email_5 and addresses as street_2, city_2, region_2, postal_code_2 … _4.",
    )
    _add_arguments(sp)
    sp.set_defaults(func=run)


def _add_arguments(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("input", metavar="INPUT", help="CSV (UTF-8, header) or Parquet file")
    sp.add_argument("--out", required=True, metavar="OUT", help="write record_id,cluster_id CSV here")
    sp.add_argument("--link-only", action="store_true", help="only match records of different `source` values")
    sp.add_argument("--pairs", metavar="PAIRS", help="also write scored pairs with per-field explanation")
    sp.add_argument("--quiet", action="store_true", help="no progress bar")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hub dedupe")
    _add_arguments(parser)
    args = parser.parse_args(argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
