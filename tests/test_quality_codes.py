"""Every reason and flag code the stages can write has plain words and a suggested action.

The codes are found where they are born: string constants of the standardisers, mappings, staging and file
import, plus ``required.<rule>_missing`` for every rule a packaged mapping declares. A new code without an
entry in hub/quality/codes.py fails this test.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import yaml

from hub.quality.codes import CODES, bare_code, describe, is_known

HUB = Path(__file__).resolve().parents[1] / "hub"
_CODE = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")
STAGES = [*sorted((HUB / "standardise").rglob("*.py")), *sorted((HUB / "mappings").rglob("*.py")),
          HUB / "staging.py", HUB / "file_import.py"]


def _emitted_codes() -> set[str]:
    codes: set[str] = set()
    for path in STAGES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and _CODE.match(node.value):
                family, _, suffix = node.value.partition(".")
                # e-mail domains (qq.com, web.de, gmial.com) and module paths are not codes
                if len(suffix) <= 3 or family == "hub":
                    continue
                codes.add(node.value)
        # codes written with a detail: f"key.duplicate (first at row {n})"
        for m in re.finditer(r"\"([a-z_]+\.[a-z_]+) \(", path.read_text(encoding="utf-8")):
            codes.add(m.group(1))
    for path in sorted((HUB / "mappings").glob("*.yaml")):
        spec = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for entity in (spec.get("entities") or {}).values():
            for target in entity.get("records") or []:
                for rule in target.get("required") or []:
                    codes.add("required.name_missing" if rule == "name_or_company" else f"required.{rule}_missing")
    return codes


def test_the_scan_finds_the_codes_it_should() -> None:
    codes = _emitted_codes()
    # a scan that finds nothing would pass trivially
    assert {"phone.invalid", "required.name_missing", "required.phone_missing", "key.duplicate",
            "national_id.birth_date_mismatch", "date.future"} <= codes
    assert not any(c.endswith((".com", ".de")) for c in codes)


def test_every_emitted_code_has_a_label_and_an_action() -> None:
    missing = sorted(c for c in _emitted_codes() if not is_known(c))
    assert not missing, f"codes without plain words in hub/quality/codes.py: {missing}"
    for code, text in CODES.items():
        assert text.label and text.action and text.label != text.action, code


def test_stored_forms_are_described() -> None:
    assert bare_code("phones:phone.invalid") == "phone.invalid"
    assert bare_code("key.duplicate (first at row 3)") == "key.duplicate"
    assert describe("phones:phone.invalid").label.startswith("Phone number is not a valid number")
    # a deployment's own required rule still reads as words
    assert "loyalty card" in describe("required.loyalty_card_missing").label
    assert describe("weird.code").label == "Unlisted code weird.code"
