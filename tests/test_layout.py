"""The package's shape, checked: imports point one way along the data flow, no cycles,
no private names borrowed across modules, and modules and functions stay small.

The boxes and their order are those drawn in docs/design.md; a module may import from
its own box and from boxes upstream of it, never downstream or sideways.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

import ntksym

PACKAGE = Path(ntksym.__file__).resolve().parent

#: The boxes of docs/design.md in data-flow order; a module belongs to the first box
#: whose prefix it starts with. Boxes of equal rank may not import each other.
BOXES: list[tuple[int, str]] = [
    (0, "ntksym.errors"),
    (0, "ntksym.version"),
    (1, "ntksym._validate"),
    (1, "ntksym.stats"),
    (2, "ntksym.activations"),
    (3, "ntksym.typing"),
    (4, "ntksym.dual"),
    (5, "ntksym.reference"),
    (5, "ntksym.codegen"),
    (6, "ntksym.kernels"),
    (7, "ntksym.dask"),
    (7, "ntksym.empirical"),
    (7, "ntksym.predict"),
    (8, "ntksym.training"),
    (9, "ntksym.derive"),
    (10, "ntksym.derivations"),
    (11, "ntksym.notes"),
    (12, "ntksym.cli"),
    (13, "ntksym.__main__"),
    (14, "ntksym"),  # the facade: re-exports only
]

#: Limits of docs/design.md. Derivation documents are exempt (they are documents).
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 80
EXEMPT_SIZE = ("ntksym.derivations.",)


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        if "generated" in rel.parts:
            continue  # data: the committed kernel modules never import ntksym
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _box(module: str) -> tuple[int, str]:
    for rank, prefix in BOXES:
        if module == prefix or module.startswith(prefix + "."):
            return rank, prefix
    raise AssertionError(f"{module} is in no box of docs/design.md: add it to BOXES")


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str, path: Path) -> list[tuple[str, str | None, int]]:
    """(imported module, imported name or None, line) for every ntksym import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [
                (a.name, None, node.lineno) for a in node.names if a.name.startswith("ntksym")
            ]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, path.name == "__init__.py", node)
            if not target.startswith("ntksym"):
                continue
            for a in node.names:
                sub = f"{target}.{a.name}"
                if sub in MODULES:  # ``from ntksym import dual`` imports a module
                    found.append((sub, None, node.lineno))
                else:
                    found.append((target, a.name, node.lineno))
    return found


GRAPH: dict[str, set[str]] = defaultdict(set)
EDGES = []
for _name, _path in MODULES.items():
    for _target, _imported, _line in _imports(_name, _path):
        if _target in MODULES:
            GRAPH[_name].add(_target)
        EDGES.append((_name, _target, _imported, _line))


def test_every_module_is_in_a_box():
    for name in MODULES:
        _box(name)


def test_imports_point_downstream_only():
    bad = []
    for src, dst, _, line in EDGES:
        if dst == "ntksym" and src != "ntksym":
            bad.append(f"{src}:{line} imports the facade 'ntksym'; import the module instead")
            continue
        (rs, bs), (rd, bd) = _box(src), _box(dst)
        if bs != bd and rd >= rs:
            bad.append(f"{src}:{line} imports {dst} ({bd}, rank {rd} >= {bs}, rank {rs})")
    assert not bad, "imports against the data flow:\n" + "\n".join(bad)


def test_no_private_names_across_modules():
    bad = [
        f"{src}:{line} imports {dst}.{name}"
        for src, dst, name, line in EDGES
        if name and name.startswith("_") and not name.startswith("__") and dst != src
    ]
    assert not bad, "private names imported from another module:\n" + "\n".join(bad)


def _cycles() -> list[list[str]]:
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in GRAPH.get(v, ()):
            if w == v:
                continue
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

    for v in MODULES:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    # a package's __init__ re-exporting its submodules is not a cycle of logic
    cycles = [c for c in _cycles() if not all(m == c[0] or m.startswith(c[0] + ".") for m in c)]
    assert not cycles, f"import cycles: {cycles}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_and_function_sizes(name):
    if name.startswith(EXEMPT_SIZE):
        pytest.skip("derivation documents are exempt")
    text = MODULES[name].read_text(encoding="utf-8")
    lines = len(text.splitlines())
    assert lines <= MAX_MODULE_LINES, f"{name}: {lines} lines (limit {MAX_MODULE_LINES})"
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(text))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, f"{name}: functions over {MAX_FUNCTION_LINES} lines: {long}"
