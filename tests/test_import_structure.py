"""Package structure: no import cycles under hub/, and no package imports another package's ``_private`` names.

Every import counts, also one inside a function (a lazy import still ties the two modules together); imports
under ``if TYPE_CHECKING:`` do not (they never run). A "package" is a sub-package of hub (hub/golden) or a
top-level module (hub/staging.py).
"""

from __future__ import annotations

import ast
from pathlib import Path

HUB = Path(__file__).resolve().parents[1] / "hub"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(HUB.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for sub in node.body:
                lines.update(range(sub.lineno, (sub.end_lineno or sub.lineno) + 1))
    return lines


def _imports(path: Path, modules: set[str]) -> list[tuple[str, list[str], int]]:
    """(imported hub module, imported names, line) for every import of ``path`` outside TYPE_CHECKING."""
    me = _module_name(path)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_lines(tree)
    out = []
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            out.extend((a.name, [], node.lineno) for a in node.names if a.name.startswith("hub"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                pkg = me.split(".") if path.name == "__init__.py" else me.split(".")[:-1]
                base = ".".join(pkg[: len(pkg) - node.level + 1] + ([base] if base else []))
            if not base.startswith("hub"):
                continue
            names = [a.name for a in node.names]
            # "from hub.dedupe import engine" imports the sub-module hub.dedupe.engine
            subs = [f"{base}.{n}" for n in names if f"{base}.{n}" in modules]
            out.append((base, [n for n in names if f"{base}.{n}" not in modules], node.lineno))
            out.extend((s, [], node.lineno) for s in subs)
    return out


def _graph() -> tuple[dict[str, set[str]], list[str]]:
    files = {_module_name(p): p for p in HUB.rglob("*.py")}
    modules = set(files)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    private: list[str] = []
    for me, path in files.items():
        for target, names, line in _imports(path, modules):
            if target in modules and target != me:
                graph[me].add(target)
            if _package(target) != _package(me):
                bad = [n for n in names if n.startswith("_") and not n.startswith("__")]
                bad += [p for p in target.split(".")[2:] if p.startswith("_") and not p.startswith("__")]
                if bad:
                    private.append(f"{me}:{line} imports {', '.join(bad)} from {target}")
    return graph, private


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _without_package_inits(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """A package's ``__init__`` re-exporting its modules is not a cycle with them: edges from a module to its
    own package's ``__init__`` (``from hub.golden.x import y`` runs hub/golden/__init__ first, by design) are
    dropped, edges between modules are kept."""
    out: dict[str, set[str]] = {}
    for m, targets in graph.items():
        out[m] = {t for t in targets if not (m.startswith(t + ".") and t.count(".") >= 1)}
    return out


def test_no_import_cycles_under_hub() -> None:
    graph, _ = _graph()
    assert not _cycles(_without_package_inits(graph)), _cycles(_without_package_inits(graph))


def test_no_private_names_imported_across_packages() -> None:
    _, private = _graph()
    assert not private, private


def test_the_check_sees_a_cycle_and_a_private_import() -> None:
    """The checker itself: a two-module cycle and a cross-package private import are found."""
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"]]
    graph, _ = _graph()
    assert "hub.dedupe.engine" in graph["hub.golden.matching"] or "hub.dedupe" in graph["hub.golden.matching"]
