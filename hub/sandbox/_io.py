"""Persistence helper: large JSON state files written record by record (C encoder speed, small peak memory)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_json_atomic(path: Path, scalars: dict[str, Any], lists: dict[str, list]) -> None:
    """Write ``{**scalars, **lists}`` as one JSON object; lists are encoded one item at a time.

    Goes through a temporary file and a rename, so a crash never leaves a half-written state file.
    """
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        head = json.dumps(scalars, ensure_ascii=False)
        fh.write(head[:-1])
        sep = ", " if scalars else ""
        for key, items in lists.items():
            fh.write(f"{sep}{json.dumps(key)}: [")
            for i, item in enumerate(items):
                if i:
                    fh.write(",")
                fh.write(json.dumps(item, ensure_ascii=False, separators=(",", ":")))
            fh.write("]")
            sep = ", "
        fh.write("}")
    tmp.replace(path)
