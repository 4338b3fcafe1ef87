"""Render a :class:`~ntksym.codegen.spec.KernelSpec` into Python source with jinja2.

The templates (``templates/*.py.jinja``, package data) stay thin: all decisions
are made here and handed over as one ``spec`` object (:class:`RenderSpec`). The
code that does not depend on the activation is not in the templates but in the
runtime modules (:mod:`ntksym.codegen.runtime`), real Python that is linted and
tested; a template copies a region of one verbatim with
``{% include "runtime/FILE.py#REGION" %}`` (:class:`RuntimeLoader`).
Common subexpressions are factored by :func:`sympy.cse` and printed by the
backend's printer (:mod:`ntksym.codegen.printers`).
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

import jinja2
import sympy as sp
from sympy.printing.pycode import PythonCodePrinter

from ntksym.codegen.long_diag import long_diag_source
from ntksym.codegen.mend import MendSpec, keeps_twins, mend_spec
from ntksym.codegen.printers import printer_for
from ntksym.codegen.runtime import read_region, runtime_sources
from ntksym.codegen.shared_xreplace import shared_xreplace
from ntksym.codegen.sign_variants import negative_variant, positive_variant
from ntksym.codegen.spec import RHO, KernelSpec, kernel_spec
from ntksym.dual.stable import INPUTS, ROOTS, U
from ntksym.errors import InputError
from ntksym.version import __version__

__all__ = [
    "BACKENDS",
    "HEADER_LINES",
    "RenderSpec",
    "RuntimeLoader",
    "content_hash",
    "module_key",
    "render",
    "render_spec",
    "template_sources",
]

#: Supported backends.
BACKENDS = ("numba", "numpy")
#: Number of header lines above the hashed body of a generated file.
HEADER_LINES = 4


@dataclass(frozen=True)
class RenderSpec:
    """The one object a template sees.

    Attributes:
        activation: Activation name.
        description: One line on the activation.
        expr: The activation as text.
        backend: ``"numba"`` or ``"numpy"``.
        template: Template file name.
        kind: ``"stable"``, ``"closed"`` or ``"quadrature"``.
        key: Hash of the spec's expressions (cache key).
        method: How the dual maps were obtained.
        source: Citation.
        has_ntk: Whether the NTK is generated.
        no_ntk_reason: Why not, when it is not.
        pair_args: Argument list of the layer map.
        uses_gap: Whether the layer map takes the root gap ``U`` (last argument; see
            :data:`ntksym.dual.stable.U`), which the templates then carry.
        clip_rho: Whether the layer map starts by computing the clipped ``RHO``.
        intermediate: ``(name, code)`` lines shared by the outputs (NumPy: those the NNGP
            and the determinant need).
        intermediate_ntk: NumPy: the lines only ``E[sigma' sigma']`` needs, run only when
            the NTK is asked for; empty for Numba.
        pos_variant: Whether the map has a cheaper variant for ``S12 > 0`` (one that
            drops branches: :func:`positive_variant`); without one, ``_pair_pos`` and
            ``_pair`` are the general map itself.
        pos_intermediate: ``intermediate`` of the variant for ``S12 > 0``.
        pos_intermediate_ntk: ``intermediate_ntk`` of that variant.
        pos_codes: ``(nngp_code, ntk_code, det_code)`` of that variant.
        neg_intermediate: ``intermediate`` of the variant for ``S12 <= 0``
            (:func:`~ntksym.codegen.sign_variants.negative_variant`), printed where asked,
            where there is a variant for ``S12 > 0`` and where it differs from the general
            map; else empty (and ``_neg_u`` is the general map).
        neg_codes: ``(nngp_code, ntk_code, det_code)`` of that variant, or empty strings.
        nngp_code: Code of ``E[sigma sigma]``.
        ntk_code: Code of ``E[sigma' sigma']`` (``"0.0"`` without an NTK).
        det_code: Code of the next determinant, or ``""`` to form it directly.
        keep_twins: Whether the directly formed next determinant is set to 0 for one
            Gaussian twice (``D = 0``, equal roots, ``S12 > 0``): where the map reads ``D``
            and passes a huge variance on (:func:`~ntksym.codegen.mend.keeps_twins`).
        mend: Where that determinant cancels, a derived form (:mod:`.mend`), or None.
        long_code: Where the map reads ``U``, the diagonal map in long double as the
            function ``_long`` (:func:`~ntksym.codegen.long_diag.long_diag_source`), from
            which the homogeneous modules form the root gaps after layer 1; else ``""``.
        diag_code: Code of ``E[sigma(u)^2]`` in ``S``.
        act_code: Code of sigma in ``u`` (quadrature).
        dact_code: Code of sigma' in ``u`` (quadrature, ``"0.0"`` without an NTK).
        reflection: ``(s, q0, q1)`` of ``sigma(-u) = s sigma(u) + q0 + q1 u`` as a Python
            literal, or ``""`` (quadrature; see :func:`ntksym.codegen.spec.reflection`).
        doc_nngp: The nngp map as text, for the module docstring.
        doc_ntk: The ntk map as text.
        doc_det: The determinant map as text.
    """

    activation: str
    description: str
    expr: str
    backend: str
    template: str
    kind: str
    key: str
    method: str
    source: str
    has_ntk: bool
    no_ntk_reason: str
    pair_args: str
    uses_gap: bool
    clip_rho: bool
    intermediate: tuple[tuple[str, str], ...]
    intermediate_ntk: tuple[tuple[str, str], ...]
    pos_variant: bool
    pos_intermediate: tuple[tuple[str, str], ...]
    pos_intermediate_ntk: tuple[tuple[str, str], ...]
    pos_codes: tuple[str, str, str]
    neg_intermediate: tuple[tuple[str, str], ...]
    neg_codes: tuple[str, str, str]
    nngp_code: str
    ntk_code: str
    det_code: str
    keep_twins: bool
    diag_code: str
    act_code: str
    dact_code: str
    reflection: str
    doc_nngp: str
    doc_ntk: str
    doc_det: str
    mend: MendSpec | None = None
    long_code: str = ""


# The decorator of a function the fused modules of described networks inline where it is
# called: by LLVM (``forceinline``: Numba types and lowers it once), not in Numba's IR
# (``inline="always"`` types the callee again at every call site and re-scans the whole
# caller, which made the cold compile of GELU's steps 4x longer); with the callers'
# contraction into fused multiply-adds, which the inlined code no longer inherits.
LLVM_INLINED = (
    '@numba.njit(cache=True, error_model="numpy", forceinline=True, fastmath={"contract"})'
)


class RuntimeLoader(jinja2.BaseLoader):
    """Templates named ``runtime/FILE.py#REGION``: one region of a runtime file, verbatim.

    The region (see :mod:`ntksym.codegen.runtime`) comes wrapped in a ``raw`` block,
    so jinja copies it as it is, whatever braces the code holds.
    """

    PREFIX = "runtime/"

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        """The region named by ``template`` as template source.

        Raises:
            jinja2.TemplateNotFound: ``template`` is not of the form ``runtime/FILE.py#REGION``.
            InputError: Unknown runtime file or region, or a region that ends a raw block.
        """
        if not template.startswith(self.PREFIX) or "#" not in template:
            raise jinja2.TemplateNotFound(template)
        name, region = template.removeprefix(self.PREFIX).split("#", 1)
        code = read_region(name, region)
        if "endraw" in code:
            raise InputError(
                f"region {region!r} of {name} contains 'endraw', which jinja cannot copy"
            )
        return "{% raw %}" + code + "{% endraw %}", None, lambda: True


def _template_loader() -> jinja2.PackageLoader:
    return jinja2.PackageLoader("ntksym.codegen", "templates")


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader([_template_loader(), RuntimeLoader()]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def _check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    return backend


#: Each variance as the square of its root: ``S11 -> R11**2``, ... (:data:`ROOTS`).
_SQUARES = {var: root**2 for var, root in ((k.base, v) for k, v in ROOTS.items())}


@functools.lru_cache(maxsize=64)
def _with_roots(expr: sp.Expr) -> sp.Expr:
    """``expr`` with the square roots of the variances as their symbols (memoised).

    Each variance ``S`` becomes ``R**2`` (``R = sqrt(S) >= 0``), which SymPy's evaluation
    turns into the root's powers: ``sqrt(S) -> R``, ``S**(3/2) -> R**3``, ``S -> R**2``.
    This is what ``expr.subs(ROOTS)`` does (the result compares equal on every layer map
    of the library: ``tests/test_codegen_substitution.py``), by ``xreplace``: ``subs`` spent
    seconds comparing the branches of GELU's maps (``Piecewise._eval_subs``).
    """
    return shared_xreplace(expr, _SQUARES)


def _cse_print(
    outs: list[sp.Expr], pr: PythonCodePrinter, split: bool = False
) -> tuple[list[tuple[str, str]], list[tuple[str, str]], list[str]]:
    """Common subexpressions and outputs ``[nngp, ntk(, det)]``, printed.

    Returns ``(lines, ntk_lines, codes)``: with ``split``, ``lines`` holds the intermediate
    terms that the NNGP and the determinant need and ``ntk_lines`` those only the NTK needs
    (each list in dependency order), so that a kernel asked for the NNGP alone skips them;
    without, ``lines`` holds all of them and ``ntk_lines`` is empty.
    """
    reps, reduced = sp.cse(outs, symbols=sp.numbered_symbols("t"), order="canonical")
    needed: set[sp.Symbol] = set()
    if split:
        needed = set().union(*(e.free_symbols for i, e in enumerate(reduced) if i != 1))
        for v, e in reversed(reps):  # each term uses only the terms before it
            if v in needed:
                needed |= e.free_symbols
    lines = [(str(v), pr.doprint(e)) for v, e in reps if not split or v in needed]
    ntk_lines = [(str(v), pr.doprint(e)) for v, e in reps if split and v not in needed]
    return lines, ntk_lines, [pr.doprint(e) for e in reduced]


def render_spec(
    spec: KernelSpec, backend: str, docs: bool = True, negative: bool = False
) -> RenderSpec:
    """Turn a kernel spec into the template's view of it (cse and printing done here).

    With ``docs=False`` the cache key and the maps' texts for the docstring are left
    empty (the fused modules of described networks print neither; for GELU they are
    about 0.4 s of printing). With ``negative``, the map for ``S12 <= 0`` is printed too
    (the homogeneous Numba kernels' rows with covariances of both signs).
    """
    _check_backend(backend)
    # The closed-form layer map of the Numba kernel runs in a vectorised column loop.
    pr = printer_for("numba_loop" if backend == "numba" and spec.kind != "quadrature" else backend)
    if spec.kind != "quadrature":
        # (NumPy splits off what only the NTK needs; Numba's compiler drops it by itself)
        fields = _closed_form_fields(spec, pr, backend == "numpy", negative)
    else:
        fields = _quadrature_fields(spec, pr)
    fields["mend"] = mend_spec(spec, pr) if docs and fields["keep_twins"] else None  # (homog.)
    if docs and fields["uses_gap"]:  # (the homogeneous modules' root gaps)
        fields["long_code"] = (long_diag_source(spec.activation, "_long") or "").rstrip()
    args = INPUTS + tuple(ROOTS.values()) + ((U,) if fields["uses_gap"] else ())
    return RenderSpec(
        activation=spec.activation.name,
        description=spec.activation.description,
        expr=sp.sstr(spec.activation.expr),
        backend=backend,
        template=f"kernel_{backend}.py.jinja",
        kind=spec.kind,
        key=module_key(spec, backend) if docs else "",
        method=spec.method,
        source=spec.source,
        has_ntk=spec.has_ntk,
        no_ntk_reason=spec.no_ntk_reason,
        pair_args=", ".join(map(str, args)),
        clip_rho=RHO in spec.inputs,
        reflection=repr(spec.reflection) if spec.reflection is not None else "",
        **fields,
        **(_docs(spec) if docs else {"doc_nngp": "", "doc_ntk": "", "doc_det": ""}),
    )


def _closed_form_fields(
    spec: KernelSpec, pr: PythonCodePrinter, split: bool, negative: bool
) -> dict:
    """The :class:`RenderSpec` fields of a closed-form map: its code and its sign variants."""
    outs = [spec.nngp, spec.ntk if spec.ntk is not None else sp.Float(0.0)]
    if spec.det is not None:
        outs.append(spec.det)
    # square roots of the variances come precomputed (one per row/column and layer)
    outs = [_with_roots(o) for o in outs]
    intermediate, intermediate_ntk, codes = _cse_print(outs, pr, split)
    pos_outs = [positive_variant(o) for o in outs]
    # worth a variant (and, in a row with mixed signs, computing both) only if it
    # drops branches; a cheaper atan2 alone does not pay for that
    branches = sum(len(o.atoms(sp.Piecewise)) for o in outs)
    pos_variant = sum(len(o.atoms(sp.Piecewise)) for o in pos_outs) < branches
    pos_lines: tuple = ([], [], ["", "", ""])
    if pos_variant:  # (the templates print the variant only then)
        pos_lines = _cse_print(pos_outs, pr, split)
    neg_outs = [negative_variant(o) for o in outs] if pos_variant and negative else outs
    neg_lines: tuple = ([], [], ["", "", ""])
    if neg_outs != outs:  # (Numba's loops only: split is False)
        neg_lines = _cse_print(neg_outs, pr)
    det = spec.det is not None
    return {
        "uses_gap": any(U in o.free_symbols for o in outs),
        "intermediate": tuple(intermediate),
        "intermediate_ntk": tuple(intermediate_ntk),
        "pos_variant": pos_variant,
        "pos_intermediate": tuple(pos_lines[0]),
        "pos_intermediate_ntk": tuple(pos_lines[1]),
        "pos_codes": (pos_lines[2][0], pos_lines[2][1], pos_lines[2][2] if det else ""),
        "neg_intermediate": tuple(neg_lines[0]),
        "neg_codes": (neg_lines[2][0], neg_lines[2][1], neg_lines[2][2] if det else ""),
        "nngp_code": codes[0],
        "ntk_code": codes[1],
        "det_code": codes[2] if det else "",
        "keep_twins": not det and keeps_twins(spec),
        "diag_code": pr.doprint(spec.diag),
        "act_code": "",
        "dact_code": "",
    }


def _quadrature_fields(spec: KernelSpec, pr: PythonCodePrinter) -> dict:
    """The :class:`RenderSpec` fields of a quadrature map: sigma and sigma' printed."""
    empty: tuple = ()
    return {
        "uses_gap": False,
        "intermediate": empty,
        "intermediate_ntk": empty,
        "pos_variant": False,
        "pos_intermediate": empty,
        "pos_intermediate_ntk": empty,
        "pos_codes": ("", "", ""),
        "neg_intermediate": empty,
        "neg_codes": ("", "", ""),
        "nngp_code": "",
        "ntk_code": "",
        "det_code": "",
        "keep_twins": False,
        "diag_code": "",
        # (overflow-safe forms, or log1p where they do not apply: spec._printed_form)
        "act_code": pr.doprint(spec.act_form),
        "dact_code": pr.doprint(spec.dact_form) if spec.dact_form is not None else "0.0",
    }


#: Longest expression printed in a module docstring; longer ones are in the code only.
_DOC_LIMIT = 1500


def _docs(spec: KernelSpec) -> dict[str, str]:
    """The maps as text for a module's docstring (:attr:`RenderSpec.doc_nngp`, ...)."""
    return {
        "doc_nngp": _doc(spec.nngp) if spec.nngp is not None else "quadrature (_pair, _expect)",
        "doc_ntk": _doc(spec.ntk) if spec.ntk is not None else "-",
        "doc_det": _doc(spec.det) if spec.det is not None else "N11*N22 - S12'**2 (direct)",
    }


def _doc(expr: sp.Expr) -> str:
    text = sp.sstr(expr)
    if len(text) <= _DOC_LIMIT:
        return text
    return f"(an expression of {len(text)} characters; computed in _pair_any below)"


def template_sources() -> dict[str, str]:
    """Every file a generated module is rendered from, by name.

    The templates (``kernel_numba.py.jinja``, ...) and the runtime files
    (``runtime/numba_atan2.py``, ...), whole: a change anywhere in them changes
    :func:`module_key`, and so the cached modules are rendered again.
    """
    loader = _template_loader()
    env = jinja2.Environment(loader=loader, autoescape=False)
    out = {name: loader.get_source(env, name)[0] for name in loader.list_templates()}
    out.update({f"{RuntimeLoader.PREFIX}{n}": text for n, text in runtime_sources().items()})
    return out


@functools.cache
def _templates_digest() -> str:
    h = hashlib.sha256()
    for name, text in sorted(template_sources().items()):
        h.update(name.encode())
        h.update(text.encode())
    return h.hexdigest()


def module_key(spec: KernelSpec, backend: str) -> str:
    """Cache key of a generated module: its expressions, backend, templates and version."""
    text = "\n".join([spec.key, backend, __version__, _templates_digest()])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def content_hash(body: str) -> str:
    """sha256 of the body of a generated file (everything below the header)."""
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def _header(rs: RenderSpec, body: str) -> str:
    lines = [
        f"# Generated by ntksym from template {rs.template} for activation {rs.activation}; "
        "do not edit.",
        f"# ntksym version: {__version__}",
        f"# spec key: {rs.key}",
        f"# content sha256: {content_hash(body)}",
    ]
    assert len(lines) == HEADER_LINES
    return "\n".join(lines) + "\n"


def render(activation: object, backend: str = "numba") -> str:
    """Source text of the generated kernel module for ``activation``.

    Args:
        activation: A registered name, expression string, SymPy expression,
            :class:`~ntksym.activations.Activation` or a prepared
            :class:`~ntksym.codegen.spec.KernelSpec`.
        backend: ``"numba"`` (fused, parallel, needs Numba) or ``"numpy"``.

    Returns:
        The module source, header included.

    Raises:
        InputError: Unknown backend.
        ActivationError: Unknown or unusable activation.
    """
    _check_backend(backend)
    spec = activation if isinstance(activation, KernelSpec) else kernel_spec(activation)
    rs = render_spec(spec, backend, negative=backend == "numba")
    template = _environment().get_template(rs.template)
    body = template.render(spec=rs, with_erf=False)
    if _CALLS_ERF.search(body):  # (a NumPy module's erf and erfc: runtime/numpy_erf.py)
        body = template.render(spec=rs, with_erf=True)
    return _header(rs, body) + body


#: A call of the NumPy modules' own ``_erf`` or ``_erfc``.
_CALLS_ERF = re.compile(r"\b_erfc?\(")
