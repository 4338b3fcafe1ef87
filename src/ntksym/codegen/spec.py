"""What a generated kernel module computes: :class:`KernelSpec`, built from an activation.

Three kinds of layer maps, tried in order:

1. ``"stable"``: a hand-arranged closed form from the activation's family in
   :mod:`ntksym.dual.families` (ReLU family, erf, step, sign, ...), which carries the
   determinant accurately;
2. ``"closed"``: the SymPy closed form of :func:`ntksym.dual.closed_form`, with
   ``rho`` clipped to [-1, 1] as a symbol of its own;
3. ``"quadrature"``: an adaptive trapezoid rule in the module (to about 1e-15 at any
   variance and correlation, see :data:`QUADRATURE_METHOD`).
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sympy as sp
from sympy.codegen.rewriting import log1p_opt, optimize

from ntksym import dual
from ntksym.activations import Activation, get_activation, u
from ntksym.activations.overflow import exp_safe
from ntksym.dual.families import family_of
from ntksym.dual.stable import B2, INPUTS, N11, N22, S11, S12, S22, W2, D, LayerMap, U
from ntksym.errors import ActivationError, NoClosedFormError

__all__ = [
    "COMMITTED",
    "affine_diag",
    "KernelSpec",
    "kernel_spec",
    "RHO",
    "S",
    "QUADRATURE_METHOD",
    "reflection",
    "slug",
    "stable_layer_map",
]

#: The clipped correlation, an input symbol of its own (never expanded by SymPy).
RHO = sp.Symbol("RHO", real=True)
#: The variance in the diagonal map ``E[sigma(u)^2]``, u ~ N(0, S).
S = sp.Symbol("S", positive=True)
#: How generated modules integrate activations without a closed form (the rule itself,
#: with its constants, is in the templates: ``_layer.py.jinja`` and ``_expect``).
QUADRATURE_METHOD = (
    "adaptive trapezoid rule after a sinh-type map (step halved until two rules agree), "
    "per pair: an outer rule in z1 over inner rules in z2"
)


@dataclass(frozen=True)
class KernelSpec:
    """Everything a generated module is made from (backend independent).

    Attributes:
        activation: The activation.
        kind: ``"stable"``, ``"closed"`` or ``"quadrature"``.
        nngp: ``E[sigma(u) sigma(v)]`` in the layer-map inputs (None for quadrature).
        ntk: ``E[sigma'(u) sigma'(v)]``, or None when no NTK is generated.
        det: The next layer's determinant, or None to form it directly.
        diag: ``E[sigma(u)^2]`` for ``u ~ N(0, S)`` in :data:`S` (None for quadrature).
        inputs: The symbols the layer map takes, in order.
        method: How the maps were obtained.
        source: Citation of the closed form.
        reflection: ``(s, q0, q1)`` with ``sigma(-u) = s sigma(u) + q0 + q1 u`` for all
            real u, or None (quadrature only; see :func:`reflection`).
        no_ntk_reason: Why no NTK is generated (empty when there is one).
        act_form: sigma in ``u`` as the quadrature code computes it (None otherwise):
            overflow-safe where :func:`ntksym.activations.overflow.exp_safe` applies, else
            with ``log(1 + x)`` as ``log1p(x)``.
        dact_form: sigma' likewise (None without an NTK).
        carried: The stable map's ``carried`` next determinant (accurate relative to
            itself for near-parallel pairs; see :class:`ntksym.dual.stable.LayerMap`), or
            None. Not part of :attr:`key` and not printed in the homogeneous modules, which
            print ``det``; the fused kernels of networks print :attr:`next_det`.
    """

    activation: Activation
    kind: str
    nngp: sp.Expr | None
    ntk: sp.Expr | None
    det: sp.Expr | None
    diag: sp.Expr | None
    inputs: tuple[sp.Symbol, ...]
    method: str
    source: str = ""
    reflection: tuple[float, float, float] | None = None
    no_ntk_reason: str = ""
    act_form: sp.Expr | None = None
    dact_form: sp.Expr | None = None
    carried: sp.Expr | None = None

    @property
    def next_det(self) -> sp.Expr | None:
        """The most accurate next determinant: ``carried`` if given, else ``det``."""
        return self.carried if self.carried is not None else self.det

    @property
    def has_ntk(self) -> bool:
        """Whether the module computes an NTK."""
        if self.kind == "quadrature":
            return not self.no_ntk_reason
        return self.ntk is not None

    @property
    def key(self) -> str:
        """A hash of the expressions (and reflection): the cache key of the generated module."""
        parts = [self.kind, self.activation.name, sp.srepr(self.activation.expr)]
        parts += [sp.srepr(e) if e is not None else "-" for e in (self.nngp, self.ntk, self.det)]
        parts += [sp.srepr(self.diag) if self.diag is not None else "-"]
        parts += [repr(self.reflection)]
        parts += [sp.srepr(e) for e in (self.act_form, self.dact_form) if e is not None]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]

    @property
    def slug(self) -> str:
        """File-name form of the activation name, e.g. ``leaky_relu_0_01``."""
        return slug(self.activation.name)


def slug(name: str) -> str:
    """Turn an activation name into an identifier usable as a file name."""
    s = re.sub(r"[^0-9A-Za-z]+", "_", name).strip("_").lower()
    return s if s and not s[0].isdigit() else f"act_{s}"


def _diag(nngp: sp.Expr, inputs: tuple[sp.Symbol, ...]) -> sp.Expr:
    """``E[sigma(u)^2]``: the pair map at ``S11 = S22 = S12 = S``, ``D = U = 0``, ``rho = 1``."""
    sub = {S11: S, S22: S, S12: S, D: 0, U: 0, RHO: 1}
    return sp.simplify(nngp.subs(sub))


def _check_free(spec_name: str, exprs: list[sp.Expr | None], allowed: tuple) -> None:
    """Refuse to generate code that would read a symbol the function does not take."""
    for e in exprs:
        if e is None:
            continue
        extra = e.free_symbols - set(allowed)
        if extra:
            raise ActivationError(
                f"cannot generate a kernel for {spec_name!r}: its dual map uses "
                f"{sorted(map(str, extra))}, which are not arguments of the layer map "
                f"(allowed: {', '.join(map(str, allowed))})"
            )


def kernel_spec(activation: str | Activation | sp.Expr) -> KernelSpec:
    """Build the :class:`KernelSpec` of an activation.

    Args:
        activation: A registered name, expression string, SymPy expression or
            :class:`~ntksym.activations.Activation`.

    Returns:
        The spec (stable closed form, SymPy closed form, or quadrature).

    Raises:
        ActivationError: Bad activation, or a dual map with unexpected symbols.
    """
    act = get_activation(activation)
    stable = _stable_spec(act)
    if stable is not None:
        return stable
    try:
        maps = dual.closed_form(act)
    except NoClosedFormError:
        maps = None
    if maps is not None and not act.has_distributional_derivative and maps.ntk is not None:
        inputs = (S11, S22, S12, D, RHO, N11, N22, W2, B2)
        sub = {dual.S11: S11, dual.S22: S22, dual.S12: RHO * sp.sqrt(S11) * sp.sqrt(S22)}
        nngp = maps.nngp.xreplace(sub)
        ntk = maps.ntk.xreplace(sub)
        _check_free(act.name, [nngp, ntk], inputs)
        return KernelSpec(
            act,
            "closed",
            nngp,
            ntk,
            None,
            _diag(nngp, inputs),
            inputs,
            f"{maps.method} (ntksym.dual.closed_form, rho clipped)",
            maps.source,
        )
    _check_free(act.name, [act.expr], (u,))
    reason = "" if not act.has_distributional_derivative else "Dirac delta derivative"
    return KernelSpec(
        act,
        "quadrature",
        None,
        None,
        None,
        None,
        INPUTS,
        QUADRATURE_METHOD,
        "Trefethen & Weideman, The exponentially convergent trapezoidal rule, SIAM Review 56 "
        "(2014)",
        no_ntk_reason=reason,
        reflection=reflection(act.expr),
        act_form=_printed_form(act.expr),
        dact_form=None if reason else _printed_form(act.derivative),
    )


def stable_layer_map(act: Activation) -> tuple[LayerMap, Callable[..., Any]] | None:
    """The stable layer map of ``act`` and the function that made it, or None.

    A registered member's factory in its family's ``stable``, or the ``layer_map`` of a
    family defined by its form (a typed expression); the float64 layer path
    (:mod:`ntksym.kernels.layer_maps`) reads the next determinant from the same map.
    """
    base = act.registered_base
    family = family_of(act)
    if family is not None and base is None and family.layer_map is not None:
        lm = family.layer_map(act)  # a typed expression of a family defined by its form
        return None if lm is None else (lm, family.layer_map)
    factory = None if family is None or base is None else family.stable.get(base)
    if factory is None:
        return None
    try:
        return factory(**dict(act.params)), factory
    except NoClosedFormError:  # an affine activation a*f(b*u) + c whose f has no stable form
        return None


def _stable_spec(act: Activation) -> KernelSpec | None:
    """The spec from the stable layer map of ``act``'s family, or None if it has none."""
    found = stable_layer_map(act)
    if found is None:
        return None
    lm, factory = found
    reason = ""
    if lm.ntk is None:
        reason = (
            f"the derivative of {act.name} is a Dirac delta, so E[sigma'(u) sigma'(v)] = "
            "c/sqrt(det) is infinite for every input paired with itself; only the NNGP "
            "is generated"
        )
    spec = KernelSpec(
        act,
        "stable",
        lm.nngp,
        lm.ntk,
        lm.det,
        lm.diag if lm.diag is not None else _diag(lm.nngp, INPUTS),
        INPUTS,
        f"{lm.method} (stable form, {factory.__module__}.{factory.__name__})",
        (factory.__doc__ or "").strip().splitlines()[0],
        no_ntk_reason=reason,
        carried=lm.carried,
    )
    _check_free(act.name, [spec.nngp, spec.ntk, spec.det, spec.carried], (*INPUTS, U))
    return spec


def _printed_form(expr: sp.Expr) -> sp.Expr:
    """The form of sigma (or sigma') the quadrature prints: overflow-safe if possible."""
    safe = exp_safe(expr, u)
    if safe is not expr:
        return safe
    # log(1 + x) -> log1p(x): softplus-like terms keep their digits where x is small
    return optimize(expr, [log1p_opt])


#: Points where a reflection identity is screened (at _REFLECTION_DPS digits).
_REFLECTION_POINTS = ("0", "0.37", "1.3", "-2.9", "4.1")
_REFLECTION_DPS = 30


def reflection(expr: sp.Expr) -> tuple[float, float, float] | None:
    """``(s, q0, q1)`` with ``sigma(-u) = s sigma(u) + q0 + q1 u`` for every real u, or None.

    Odd activations such as tanh have ``(-1, 0, 0)``, sigmoid ``(-1, 1, 0)``, softplus and
    SiLU ``(1, 0, -1)``. The generated quadrature then computes the inner expectations at
    ``-|m|`` only and reflects them to ``|m|``. The identity is screened at a few points
    (30 digits), then proved by SymPy (the second derivative of ``sigma(-u) - s sigma(u)``
    simplifies to 0); anything unproved gives None.

    Args:
        expr: The activation in ``u``.

    Returns:
        The coefficients as floats, or None.
    """
    pts = [sp.Float(x, _REFLECTION_DPS) for x in _REFLECTION_POINTS]
    for s in (-1, 1):
        d = expr.subs(u, -u) - s * expr
        try:
            vals = [sp.N(d.subs(u, x), _REFLECTION_DPS) for x in pts]
        except (TypeError, ValueError, ZeroDivisionError):  # pragma: no cover - defensive
            continue
        if not all(v.is_real and v.is_finite for v in vals):
            continue
        q0, q1 = vals[0], (vals[1] - vals[0]) / pts[1]
        tol = sp.Float(10) ** -20 * (1 + max(abs(v) for v in vals))
        if any(abs(v - q0 - q1 * x) > tol for v, x in zip(vals[2:], pts[2:], strict=True)):
            continue
        if sp.simplify(sp.diff(d, u, 2)) != 0:
            continue
        c0 = sp.simplify(d.subs(u, 0))
        c1 = sp.simplify(sp.diff(d, u).subs(u, 0))
        if c0.is_number and c1.is_number and c0.is_real and c1.is_real:
            return float(s), float(c0), float(c1)
    return None


@functools.lru_cache(maxsize=128)
def affine_diag(act: Activation) -> tuple[float, float] | None:
    """``(a, d)`` when ``E[sigma(u)^2] = a S + d`` exactly (``u ~ N(0, S)``), else None.

    The piecewise-linear family (``a`` = ``E[sigma(z)^2]``, ``d = 0``) and its scaled
    members: the float64 layer maps and the fused kernels carry each input's variance in
    double-double through them (:mod:`ntksym.kernels.variance_dd`). None where the
    diagonal map is not affine in ``S`` (``sign``'s is a ``Piecewise``, 0 at ``S = 0``;
    its variances are 1 exactly anyway) or not known in closed form.
    """
    try:
        diag = kernel_spec(act).diag
    except (ActivationError, NoClosedFormError):
        return None
    if diag is None or not diag.free_symbols <= {S}:
        return None
    poly = sp.Poly(sp.expand(diag), S) if diag.is_polynomial(S) else None
    if poly is None or poly.degree() > 1:
        return None
    a, d = (poly.coeff_monomial(S), poly.coeff_monomial(1))
    if not (a.is_real and d.is_real):
        return None
    return float(a), float(d)


#: Activations whose generated modules are committed in ``generated/`` (both backends).
#: step and sign are NNGP-only (their NTK diverges on the diagonal); tanh uses quadrature.
COMMITTED: tuple[str, ...] = (
    "relu",
    "leaky_relu",
    "abs",
    "identity",
    "erf",
    "step",
    "sign",
    "exp",
    "sin",
    "cos",
    "gaussian",
    "gelu",
    "tanh",
)
