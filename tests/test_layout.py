"""The package's shape, checked: imports point one way along the data flow, no cycles,
no private names borrowed across modules, and modules and functions stay small.

The boxes and their order are those drawn in docs/design.md; a module may import from
its own box and from boxes upstream of it, never downstream or sideways.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import ntksym

PACKAGE = Path(ntksym.__file__).resolve().parent

#: The boxes of docs/design.md in data-flow order; a module belongs to the first box
#: whose prefix it starts with. Boxes of equal rank may not import each other.
BOXES: list[tuple[int, str]] = [
    (0, "ntksym.errors"),
    (0, "ntksym.version"),
    (1, "ntksym._io"),
    (1, "ntksym._validate"),
    (1, "ntksym.stats"),
    # standalone numerical code of the generated modules (imports numpy and ntksym.errors);
    # ntksym.dual integrates by its quadrature rule
    (1, "ntksym.codegen.runtime"),
    (2, "ntksym.activations"),
    (3, "ntksym.typing"),
    (3, "ntksym.architecture"),
    (4, "ntksym.dual"),
    (5, "ntksym.reference"),
    (5, "ntksym.codegen"),
    (6, "ntksym.kernels"),
    (7, "ntksym.dask"),
    (7, "ntksym.empirical"),
    (7, "ntksym.predict"),
    (7, "ntksym.sklearn"),
    (8, "ntksym.training"),
    (8, "ntksym.testing"),
    (8, "ntksym.stax"),
    (9, "ntksym.derive"),
    (10, "ntksym.extend"),
    (11, "ntksym.derivations"),
    (12, "ntksym.notes"),
    (13, "ntksym.cli"),
    (14, "ntksym.__main__"),
    (15, "ntksym"),  # the facade: re-exports only
]

#: Violations still open, each to be removed by the change that fixes it (the tests fail
#: on a new violation and on a listed one that no longer occurs). Issue 11 tracks them.
KNOWN: set[str] = set()

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


def _check(found: list[str], what: str) -> None:
    new = [f for f in found if f not in KNOWN]
    assert not new, f"{what}:\n" + "\n".join(new)


def test_known_violations_are_current():
    found = set(_all_violations())
    stale = sorted(KNOWN - found)
    assert not stale, "fixed, so remove from KNOWN:\n" + "\n".join(stale)


def _upstream() -> list[str]:
    bad = []
    for src, dst, _, _line in EDGES:
        if dst == "ntksym" and src != "ntksym":
            bad.append(f"{src} imports the facade 'ntksym'; import the module instead")
            continue
        (rs, bs), (rd, bd) = _box(src), _box(dst)
        if bs != bd and rd >= rs:
            bad.append(f"{src} imports {dst} ({bd}, rank {rd} >= {bs}, rank {rs})")
    return bad


def _private() -> list[str]:
    bad = [
        f"{src} imports {dst}.{name}"
        for src, dst, name, _line in EDGES
        if name and name.startswith("_") and not name.startswith("__") and dst != src
    ]
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                aliases.update({(a.asname or a.name): a.name for a in node.names})
            elif isinstance(node, ast.ImportFrom):
                target = _resolve(name, path.name == "__init__.py", node)
                for a in node.names:
                    if f"{target}.{a.name}" in MODULES:
                        aliases[a.asname or a.name] = f"{target}.{a.name}"
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and aliases[node.value.id].startswith("ntksym")
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                bad.append(f"{name} uses {aliases[node.value.id]}.{node.attr}")
    return sorted(set(bad))


def test_imports_point_downstream_only():
    _check(_upstream(), "imports against the data flow")


def test_no_private_names_across_modules():
    _check(_private(), "private names used from another module")


def _cycles(graph: dict[str, set[str]] | None = None) -> list[list[str]]:
    graph = GRAPH if graph is None else graph
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
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

    for v in sorted(set(graph) | set(MODULES)):
        if v not in index:
            visit(v)
    return out


def _cycle_list() -> list[str]:
    # a package's __init__ re-exporting its submodules is not a cycle of logic
    return [
        "cycle " + " <-> ".join(c)
        for c in _cycles()
        if not all(m == c[0] or m.startswith(c[0] + ".") for m in c)
    ]


def test_the_checks_can_fail():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c"]]
    assert _box("ntksym.dual.families.erf") == (4, "ntksym.dual")
    assert _box("ntksym.cli.gram")[0] > _box("ntksym.kernels.tiles")[0]


def test_no_import_cycles():
    _check(_cycle_list(), "import cycles")


def _sizes() -> list[str]:
    bad = []
    for name, path in sorted(MODULES.items()):
        if name.startswith(EXEMPT_SIZE):
            continue
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) > MAX_MODULE_LINES:
            bad.append(f"{name}: module over {MAX_MODULE_LINES} lines")
        bad += [
            f"{name}.{node.name}: function over {MAX_FUNCTION_LINES} lines"
            for node in ast.walk(ast.parse(text))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
        ]
    return bad


def test_module_and_function_sizes():
    _check(_sizes(), "size limits (docs/design.md)")


def _all_violations() -> list[str]:
    return _upstream() + _private() + _cycle_list() + _sizes()
