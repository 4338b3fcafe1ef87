"""The shape of the derivation engine: no import cycles, no private names across modules,
modules under 450 lines and functions under 80 (derivation documents excepted)."""

import ast
from pathlib import Path

import ntksym.derive

DERIVE = Path(ntksym.derive.__file__).resolve().parent
DOCUMENTS = DERIVE.parent / "derivations"


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) of every ``from ntksym... import names`` in a file."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ntksym"):
            out.append((node.module, [a.name for a in node.names]))
    return out


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for p in DERIVE.glob("*.py"):
        here = f"ntksym.derive.{p.stem}"
        graph[here] = {m for m, _ in _imports(p) if m.startswith("ntksym.derive.") and m != here}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found = []
    for start in graph:
        stack = [(start, [start])]
        seen: set[str] = set()
        while stack:
            node, path = stack.pop()
            for nxt in graph.get(node, ()):
                if nxt == start:
                    found.append([*path, nxt])
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*path, nxt]))
    return found


def test_cycle_finder_can_fail():
    assert _cycles({"a": {"b"}, "b": {"a"}})
    assert not _cycles({"a": {"b"}, "b": set()})


def test_no_import_cycles_in_the_engine():
    assert _cycles(_graph()) == []


def test_no_private_names_imported_across_modules():
    files = [*DERIVE.glob("*.py"), *DOCUMENTS.glob("*.py")]
    bad = [
        (p.name, m, n)
        for p in files
        for m, names in _imports(p)
        for n in names
        if n.startswith("_") and m.startswith("ntksym.")
    ]
    assert bad == []


def test_engine_modules_and_functions_are_small():
    big, long = [], []
    for p in DERIVE.glob("*.py"):
        text = p.read_text()
        if len(text.splitlines()) > 450:
            big.append(p.name)
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                if node.end_lineno - node.lineno + 1 > 80:
                    long.append(f"{p.name}:{node.name}")
    assert big == [] and long == []
