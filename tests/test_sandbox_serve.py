"""`python -m hub.sandbox serve DIR` prints variables another shell can export as they are."""

from __future__ import annotations

from pathlib import Path

from sandbox_process import served_sandbox


def test_serve_prints_paths_usable_from_any_folder(tmp_path: Path) -> None:
    # a relative world folder: the printed CDR folder must still be found from another working directory
    with served_sandbox("world", customers=50, cwd=tmp_path) as env:
        cdr = Path(env["HUB_CDR_DIR"])
        assert cdr.is_absolute() and cdr.is_dir(), env["HUB_CDR_DIR"]
        assert env["HUB_ERP_URL"].startswith("sqlite:////"), "the ERP database path is absolute too"
