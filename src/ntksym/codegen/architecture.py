"""Generated fused kernels of described networks: one compiled module per architecture.

:func:`fused_kernel` lowers a network description (:mod:`ntksym.architecture.description`)
to a program of layer maps (:mod:`ntksym.codegen.arch_program`), writes one Numba module
for it (:mod:`ntksym.codegen.arch_emit` and the template
``arch_templates/fused_numba.py.jinja``) and imports it. The module is *layer-major*: per
chunk of at most 256 columns of one row, each step of the program is one short loop over
chunk arrays (one row per state: covariance, carried determinant, NTK), in parallel
blocks of rows; the program enters as tables, so a network's depth adds no code to
compile. Without an N x N temporary per layer: the outputs (written over the Gram product
``X1 @ X2.T``), one NTK array (only when asked), each input's variance at every state and
O(states x 256) scratch per thread are all the memory it takes.

Modules are cached in memory by the description (equal descriptions hash equal) and on
disk by the hash of their source, in ``$NTKSYM_CACHE_DIR/kernels/arch_<hash>.py`` beside
the homogeneous kernels (:func:`ntksym.codegen.files.cache_dir`), where Numba's own cache
of the compiled functions follows them. A small index file, keyed by the description and
by the source of everything generation reads, names the module of a description, so
that a second process imports it and Numba's compiled code without lowering, SymPy or
rendering.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
import re
import types
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import sympy as sp

from ntksym._io import atomic_write_text, import_file
from ntksym.architecture.description import Net
from ntksym.codegen.arch_emit import (
    activation_step,
    drop_quad,
    hoist_calls,
    inline_dispatch,
    loop_spec,
    plain_step,
)
from ntksym.codegen.arch_program import Program, Unsupported, lower
from ntksym.codegen.arch_tables import tables_source
from ntksym.codegen.files import cache_dir, is_intact, write_generated
from ntksym.codegen.long_diag import long_diag_source
from ntksym.codegen.render import (
    HEADER_LINES,
    LLVM_INLINED,
    RuntimeLoader,
    content_hash,
    render_spec,
)
from ntksym.codegen.runtime import parse_regions, read_region
from ntksym.codegen.spec import KernelSpec
from ntksym.errors import InputError
from ntksym.version import __version__

__all__ = ["FusedKernel", "Unsupported", "cache_info", "fused_kernel", "fused_source", "supported"]

_TEMPLATE = "fused_numba.py.jinja"
_PAIR_NAMES = re.compile(r"\b(_pair_any|_pair_pos|_pair|_diag)\b")


@functools.cache
def _environment() -> jinja2.Environment:
    loaders = [
        jinja2.PackageLoader("ntksym.codegen", "arch_templates"),
        jinja2.PackageLoader("ntksym.codegen", "templates"),
        RuntimeLoader(),
    ]
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


@functools.cache
def _arch_regions() -> dict[str, str]:
    regions = {}
    for name in ("arch_pairs.py", "arch_runtime.py", "arch_quad.py", "arch_driver.py"):
        files = importlib.resources.files("ntksym.codegen")
        regions.update(parse_regions(files.joinpath(name).read_text(encoding="utf-8"), name))
    return regions


def _activation_code(
    spec: KernelSpec, m: int, plain: bool = False
) -> tuple[str, bool, dict[str, int], bool]:
    """Activation ``m``'s maps, whether it has a pos variant, hoisted terms, takes ``U``.

    The hoisted terms: how many each map reads from its loop of libm calls
    (:func:`~ntksym.codegen.arch_emit.hoist_calls`). The pos variant is a cheaper map for
    ``S12 > 0``, used for a chunk whose covariances are all positive; the general map
    ``_a{m}_pair_any`` computes the other chunks. These maps and ``_a{m}_diag`` are inlined by
    LLVM where they are called (``forceinline``; one chunk loop each, which LLVM then
    vectorises). ``spec``: activation ``m``'s spec as the activation step prints it, with
    no Dense layer (``W2 = 1``, ``B2 = 0``) and half-integer powers as square roots
    (:func:`~ntksym.codegen.arch_emit.loop_spec`). The next determinant printed is the
    spec's ``det``, which the lowering sets (:attr:`Program.specs`): the carried form where
    the kernel uses it (:attr:`Program.trusted`), none elsewhere. With ``plain``, the
    maps without a next determinant, named ``_p{m}_...`` (the chunks that carry none:
    :func:`~ntksym.codegen.arch_emit.plain_step`).
    """
    if plain:
        spec = replace(spec, det=None)
    rs = render_spec(spec, "numba", docs=False)
    rs, pre, hoisted = hoist_calls(rs, m)
    code = (
        _environment()
        .get_template("_layer.py.jinja")
        .render(spec=rs, decorator=LLVM_INLINED, vec=False)
    )
    code = _PAIR_NAMES.sub(lambda mt: f"_a{m}{mt.group(1)}", code)
    code = (pre + "\n\n" if pre else "") + code
    if plain:
        code = code.replace(f"_a{m}_", f"_p{m}_")
    return code, rs.pos_variant, hoisted, rs.uses_gap


def _step_code(prog: Program, m: int) -> tuple[str, str]:
    """Activation ``m``'s maps and its chunk steps ``_a{m}_step``, ``_a{m}_plain``.

    An activation whose map carries the next determinant (:attr:`Program.trusted`) is
    printed twice: with it, for the chunks that carry it, and without it (``_p{m}``), for
    the chunks that need none; any other activation has one map for both.
    """
    spec = loop_spec(prog.specs[m])  # (once: the plain map drops the det of the same spec)
    code, *parts = _activation_code(spec, m)
    step = activation_step(prog, m, *parts)
    if prog.trusted[m]:
        pcode, *pparts = _activation_code(spec, m, plain=True)
        code += "\n\n" + pcode
        plain = plain_step(m, f"_p{m}", *pparts)
    else:
        plain = plain_step(m, f"_a{m}", *parts)
    return code, step + "\n\n" + plain


def _det_near_code() -> str:
    """``_det_near`` alone, from the homogeneous kernels' ``chain`` region."""
    chain = read_region("numba_fused.py", "chain")
    start = chain.index("def _det_near")
    return chain[chain.rindex("@numba.njit", 0, start) :]


#: The compiled functions that a fused module's Python code calls: Numba caches these
#: only. Each one's compiled code holds its callees' (linked in), so a second process
#: loads them and compiles nothing; caching every callee too cost about 2 s of the cold
#: first call of ``mixed`` (45 functions serialised and indexed; docs/performance.md,
#: branch compile3).
_ENTRY_POINTS = ("_block", "_diag_rows", "_mirror", "_norms_lo")
_CACHED = re.compile(r"^@numba\.njit\(cache=True, (.*)\)\n(?=def (\w+)\()", re.M)


def _cache_entry_points_only(body: str) -> str:
    """``body`` with ``cache=True`` dropped from every Numba function but the entry points."""

    def drop(m: re.Match[str]) -> str:
        return m.group(0) if m.group(2) in _ENTRY_POINTS else f"@numba.njit({m.group(1)})\n"

    out = _CACHED.sub(drop, body)
    assert out.count("@numba.njit(cache=True") == len(_ENTRY_POINTS)
    return out


def _quad_code(spec: KernelSpec, q: int) -> str:
    """``_q{q}_f`` and ``_q{q}_g``: sigma and sigma' of activation ``q`` (no closed form).

    NumPy code: the integrands of the Mehler coefficients (:mod:`ntksym.codegen.arch_quad`).
    """
    rs = render_spec(spec, "numpy", docs=False)
    return "\n\n\n".join(
        f"def _q{q}_{name}(u):\n{' ' * 4}return numpy.broadcast_to({code}, numpy.shape(u))"
        for name, code in (("f", rs.act_code), ("g", rs.dact_code))
    )


def _long_code(prog: Program) -> list[str]:
    """``_l{m}``: activation ``m``'s diagonal map in long double, where it has one."""
    found = (long_diag_source(s.activation, f"_l{m}") for m, s in enumerate(prog.specs))
    return [code.rstrip("\n") for code in found if code is not None]


def fused_source(prog: Program) -> str:
    """The source of the fused module of ``prog``, header included."""
    regions = _arch_regions()
    acts = [_step_code(prog, m) for m in range(len(prog.specs))]
    doc = [f"{m}: sigma(u) = {sp.sstr(s.activation.expr)}" for m, s in enumerate(prog.specs)]
    doc += [f"q{q}: sigma(u) = {sp.sstr(s.activation.expr)} (Mehler series)"
            for q, s in enumerate(prog.quads)]  # fmt: skip
    steps = regions["steps"] if prog.quads else drop_quad(regions["steps"])
    body = (
        _environment()
        .get_template(_TEMPLATE)
        .render(
            states=len(prog.steps),
            output=prog.output,
            activation_doc=doc or ["(none)"],
            activation_code=[a[0] for a in acts],
            pair_helpers=regions["pair_helpers"],
            activation_steps=[a[1] for a in acts],
            quad_code=[_quad_code(s, q) for q, s in enumerate(prog.quads)],
            quad_tables=regions["quad_tables"],
            quad_step=regions["quad_step"],
            driver=regions["driver"],
            prep=_det_near_code() + "\n\n" + regions["prep"],
            tables=tables_source(prog),
            long_code=_long_code(prog),
            steps=inline_dispatch(steps, prog),
            loops=regions["loops"],
        )
    )
    body = _cache_entry_points_only(body)
    key = hashlib.sha256(body.encode("utf-8")).hexdigest()[:16]
    lines = [
        f"# Generated by ntksym from template {_TEMPLATE} for a described network; do not edit.",
        f"# ntksym version: {__version__}",
        f"# spec key: {key}",
        f"# content sha256: {content_hash(body)}",
    ]
    assert len(lines) == HEADER_LINES
    return "\n".join(lines) + "\n" + body


@dataclass(frozen=True)
class FusedKernel:
    """The compiled fused kernel of one network.

    Attributes:
        path: The generated module's file.
        module: The imported module.
    """

    path: Path
    module: types.ModuleType

    def __call__(
        self,
        x1: np.ndarray,
        x2: np.ndarray | None = None,
        ntk: bool = True,
        out: tuple[np.ndarray | None, np.ndarray | None] = (None, None),
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The NNGP and (when ``ntk``) NTK Gram matrices between the rows of x1 and x2.

        Args:
            x1: Inputs, float64 C-contiguous array of shape (N1, n0).
            x2: Inputs of shape (N2, n0), or None for ``K(x1, x1)`` (exactly symmetric).
            ntk: Whether to compute the NTK too.
            out: Arrays (or None) to write the NNGP and the NTK into, checked by the
                caller (:func:`ntksym.kernels.call.check_outs`: float64, C-contiguous,
                writeable, (N1, N2), sharing no memory with the inputs or each other).

        Returns:
            ``(nngp, ntk)``; ``ntk`` is None when not asked for.
        """
        a = np.ascontiguousarray(x1, dtype=np.float64)
        b = None if x2 is None else np.ascontiguousarray(x2, dtype=np.float64)
        if a.ndim != 2 or (b is not None and (b.ndim != 2 or b.shape[1] != a.shape[1])):
            raise InputError(
                "inputs must be 2-d arrays with the same number of columns, got shapes "
                f"{np.shape(x1)} and {None if x2 is None else np.shape(x2)}"
            )
        # an overflow (a map such as Exp's at large variances; inputs whose squared norms
        # overflow are refused before this) gives non-finite entries, which the caller
        # refuses with an InputError: no NumPy warning from inside the module first
        with np.errstate(over="ignore", invalid="ignore"):
            return self.module._compute(a, b, ntk, out=out)  # type: ignore[no-any-return]


_LOADED: dict[Path, types.ModuleType] = {}


def _import(path: Path) -> types.ModuleType:
    path = path.resolve()
    if path not in _LOADED:
        # the file's stem as module name: Numba's disk cache finds the module by it
        module = import_file(path, path.stem)
        if module is None:  # pragma: no cover - defensive
            raise InputError(f"cannot import generated module {path}")
        _LOADED[path] = module
    return _LOADED[path]


def _write(text: str) -> Path:
    """The module file named by its source's hash (written atomically when missing)."""
    digest = text.split("\n", 3)[2].rsplit(" ", 1)[1]
    path = cache_dir() / f"arch_{digest}.py"
    if not (path.is_file() and is_intact(path.read_text(encoding="utf-8"))):
        write_generated(path, text, force=True)
    return path


#: The packages whose source decides what a fused module holds (layer maps, templates).
_GENERATOR_PACKAGES = ("activations", "architecture", "codegen", "dual")


@functools.cache
def _generator_digest() -> str:
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256(__version__.encode())
    for package in _GENERATOR_PACKAGES:
        for f in sorted((root / package).rglob("*")):
            if f.suffix in (".py", ".jinja"):
                h.update(f.relative_to(root).as_posix().encode())
                h.update(f.read_bytes())
    return h.hexdigest()


def _index_path(net: Net) -> Path:
    """Where the name of ``net``'s module is recorded.

    Keyed by the description's repr and by every source file that generation reads, so
    that a change to any of them generates the module again.
    """
    key = hashlib.sha256((repr(net) + _generator_digest()).encode()).hexdigest()[:16]
    return cache_dir() / f"arch_index_{key}.txt"


@functools.lru_cache(maxsize=64)
def _kernel(net: Net) -> FusedKernel | str:
    index = _index_path(net)
    if index.is_file():  # a cached first call: no SymPy, no rendering
        path = index.parent / index.read_text(encoding="utf-8").strip()
        if path.name.startswith("arch_") and path.is_file():
            if is_intact(path.read_text(encoding="utf-8")):
                return FusedKernel(path, _import(path))
    try:
        prog = lower(net)
    except Unsupported as exc:
        return str(exc)
    path = _write(fused_source(prog))
    atomic_write_text(index, path.name + "\n")
    return FusedKernel(path, _import(path))


def fused_kernel(net: Net) -> FusedKernel:
    """The fused kernel of ``net`` (generated, written and imported once per description).

    Args:
        net: A network description.

    Returns:
        Its :class:`FusedKernel` (the same object for equal descriptions).

    Raises:
        Unsupported: The fused kernel does not cover the network (the message says why).
    """
    out = _kernel(net)
    if isinstance(out, str):
        raise Unsupported(out)
    return out


def supported(net: Net) -> str:
    """Why the fused kernel does not cover ``net``, or ``""`` if it does (nothing compiled)."""
    try:
        lower(net)
    except Unsupported as exc:
        return str(exc)
    return ""


def cache_info() -> Any:
    """Hits and misses of the in-memory cache (``functools.lru_cache`` statistics)."""
    return _kernel.cache_info()
