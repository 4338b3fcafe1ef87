"""Recognising a typed expression as a named activation, so it gets the named one's kernel.

``"relu(u)"``, ``"max(0, u)"``, ``"u*heaviside(u)"`` and ``"0.5*(u + abs(u))"`` are all the
ReLU; ``"max(u, 0.2*u)"`` is the leaky ReLU of slope 0.2; ``"tanh(u)"`` is ``tanh``. Typed as
text they would otherwise be integrated numerically (slowly, and across a kink, inaccurately);
recognised, they run the named activation's closed form and generated kernel.

Two checks, both exact: an expression identical to a registered activation's after SymPy's
own canonical ordering; and a piecewise-linear expression with its only kink at 0, whose two
halves (``u = t`` and ``u = -t`` with ``t > 0``, where SymPy resolves every ``max``, ``min``,
``abs`` and step exactly) are the lines ``a t`` and ``-b t``: that is ``a*max(u, 0) +
b*min(u, 0)``, the leaky family when ``a = 1``, and otherwise ``a`` times the leaky ReLU
of slope ``b/a`` (the registered ``affine`` activation, see below). The same halves
``c t^k`` and ``0`` (``k >= 2``) make ``c*max(u, 0)**k``, the rectified monomial.

Scaled and shifted members, ``A*f(B*u) + C``, are the registered ``affine`` activation
``affine(base=f, a=A, b=B, c=C)``, whose dual maps are f's at the covariance scaled by
``B^2`` (``ntksym.dual.families.affine``): ``A*erf(B*u) + C``, ``A*sin(B*u) + C``,
``A*tanh(B*u) + C`` (no closed form: still integrated, but under one name), ``A*cos(B*u)``,
``A*exp(B*u)``, ``A*exp(-K*u**2)`` (the Gaussian bump at ``B = sqrt(2K)``), ``A*u + C``, and
``A`` times any registered activation at a scaled argument (``3*gelu``, ``2*heaviside(u)``,
``gelu(2*u)``, ``silu(0.5*u)``). A shift ``C`` is
taken only with an odd f (erf, sin, tanh, the identity), where it adds ``C^2`` to the NNGP
map; with another f the expression stays a user expression.
"""

from __future__ import annotations

import sympy as sp

from ntksym.activations.expr import kinks_of, u

__all__ = ["piecewise_linear_slopes", "recognise", "rectified_power"]

_T = sp.Symbol("t", positive=True)
_KINKED = (sp.Max, sp.Min, sp.Abs, sp.Heaviside, sp.sign)


def piecewise_linear_slopes(expr: sp.Expr) -> tuple[sp.Expr, sp.Expr] | None:
    """``(a, b)`` when ``expr`` is exactly ``a*max(u, 0) + b*min(u, 0)``, else None."""
    if not expr.has(*_KINKED) or any(not isinstance(f, _KINKED) for f in expr.atoms(sp.Function)):
        return None
    if kinks_of(expr) not in ((), (0.0,)):
        return None
    halves = []
    for side in (_T, -_T):
        half = sp.expand(expr.subs(u, side))
        if half.has(*_KINKED) or not half.is_polynomial(_T) or sp.degree(half, _T) > 1:
            return None
        halves.append(half)
    right, left = halves
    if not all(sp.S(c).is_zero for c in (right.coeff(_T, 0), left.coeff(_T, 0))):
        return None
    return right.coeff(_T, 1), -left.coeff(_T, 1)


def rectified_power(expr: sp.Expr) -> tuple[sp.Expr, int] | None:
    """``(c, k)`` when ``expr`` is exactly ``c*max(u, 0)**k`` with ``k >= 2``, else None.

    Like :func:`piecewise_linear_slopes`: kinked at 0 only, ``c t^k`` at ``u = t > 0`` and 0
    at ``u = -t`` (``relu(u)**3``, ``heaviside(u)*u**2``, ``2*max(0, 3*u)**2``).
    """
    if not expr.has(*_KINKED) or any(not isinstance(f, _KINKED) for f in expr.atoms(sp.Function)):
        return None
    if kinks_of(expr) not in ((), (0.0,)):
        return None
    right, left = (sp.expand(expr.subs(u, side)) for side in (_T, -_T))
    if left != 0 or right.has(*_KINKED) or not right.is_polynomial(_T):
        return None
    poly = sp.Poly(right, _T)
    if len(poly.terms()) != 1:
        return None
    ((k,), c) = poly.terms()[0]
    return (c, k) if k >= 2 and c.is_real else None


def recognise(expr: sp.Expr, registry: dict[str, sp.Expr]) -> tuple[str, dict] | None:
    """The registered name (and parameters) that ``expr`` is exactly, or None.

    Args:
        expr: The parsed expression in ``u``.
        registry: Registered parameterless activations, name -> expression.
    """
    for name, reg in registry.items():
        if expr == reg:
            return name, {}
    slopes = piecewise_linear_slopes(expr)
    if slopes is not None:
        return _piecewise_linear(*slopes)
    power = rectified_power(expr)
    if power is not None:
        c, k = power
        if c == 1:
            return "rectified_monomial", {"k": k}
        return "affine", {"base": "rectified_monomial", "a": c, "k": k}
    return _affine(expr, registry)


def _piecewise_linear(a: sp.Expr, b: sp.Expr) -> tuple[str, dict] | None:
    """``a*max(u, 0) + b*min(u, 0)``: relu, abs, identity, leaky, or ``a`` times one."""
    if a.is_zero:
        # b*min(u, 0) = -b*max(-u, 0)
        return None if b.is_zero else ("affine", {"base": "relu", "a": -b, "b": -1})
    slope = float(b / a)
    named = {0.0: "relu", 1.0: "identity", -1.0: "abs"}
    base, params = (named[slope], {}) if slope in named else ("leaky_relu", {"slope": slope})
    if float(a) == 1.0:  # (SymPy: Float(1.0) != Integer(1))
        return base, params
    return "affine", {"base": base, "a": a, **params}


#: Functions ``f`` recognised as ``A*f(B*u) + C``, and whether f is odd (a shift allowed).
_SCALED: dict[type, tuple[str, bool]] = {
    sp.erf: ("erf", True),
    sp.sin: ("sin", True),
    sp.tanh: ("tanh", True),
    sp.cos: ("cos", False),
}


def _core(core: sp.Expr) -> tuple[str, sp.Expr, bool] | None:
    """``(f, B, odd)`` when ``core`` is ``f(B*u)`` for a registered f, else None."""
    if core == u:
        return "identity", sp.Integer(1), True
    if type(core) in _SCALED:
        b = sp.simplify(core.args[0] / u)
        name, odd = _SCALED[type(core)]
        return (name, b, odd) if b.is_number and not b.is_zero else None
    if isinstance(core, sp.exp) and core.args[0].is_polynomial(u):
        poly = sp.Poly(core.args[0], u)
        coeffs = dict(zip(poly.monoms(), poly.coeffs(), strict=True))
        if set(coeffs) == {(1,)}:
            return "exp", coeffs[(1,)], False
        if set(coeffs) == {(2,)} and coeffs[(2,)].is_negative:
            return "gaussian", sp.sqrt(-2 * coeffs[(2,)]), False
    return None


def _affine(expr: sp.Expr, registry: dict[str, sp.Expr]) -> tuple[str, dict] | None:
    """``("affine", {...})`` when ``expr`` is ``A*f(B*u) + C`` (see the module), else None."""
    expanded = sp.expand(expr)
    c, rest = expanded.as_independent(u, as_Add=True)
    a, core = rest.as_independent(u, as_Add=False)
    if not (c.is_number and a.is_number and c.is_real and a.is_real) or a.is_zero:
        return None
    found = _core(core)
    if found is not None:
        name, b, odd = found
        if c.is_zero or odd:
            return "affine", {"base": name, "a": a, "b": b, "c": c}
        return None
    kinds = {type(f) for f in expr.atoms(sp.Function)}
    for name, reg in registry.items():
        if {type(f) for f in reg.atoms(sp.Function)} != kinds or not reg.has(u):
            continue
        for b in _scales(expr, reg):
            ratio = rest / reg.subs(u, b * u)
            if ratio.has(u):
                ratio = sp.simplify(ratio)
            if not (ratio.is_number and ratio.is_real) or ratio.is_zero:
                continue
            if c.is_zero or sp.expand(reg.subs(u, -u) + reg) == 0:
                scale = {} if b == 1 else {"b": b}
                return "affine", {"base": name, "a": ratio, **scale, "c": c}
            return None
    return None


def _linear(arg: sp.Expr) -> sp.Expr | None:
    """``k`` when ``arg`` is ``k*u`` for a nonzero real number ``k``, else None."""
    k = sp.simplify(arg / u)
    return k if k.is_number and k.is_real and not k.is_zero else None


def _scales(expr: sp.Expr, reg: sp.Expr) -> list[sp.Expr]:
    """Candidate ``B`` with ``expr = A*reg(B*u) + C``: 1, then the ratios of linear arguments.

    A function of ``k_e*u`` in ``expr`` and the same function of ``k_r*u`` in ``reg``
    propose ``B = k_e/k_r`` (``gelu(2*u)`` has ``erf(sqrt(2)*u)`` where gelu has
    ``erf(u/sqrt(2))``: ``B = 2``; ``-B`` too, since SymPy takes the sign out of the
    argument of an odd function); the caller checks each candidate exactly.
    """
    found = [sp.Integer(1)]
    for fe in expr.atoms(sp.Function):
        for fr in reg.atoms(sp.Function):
            if type(fe) is not type(fr) or len(fe.args) != 1 or len(fr.args) != 1:
                continue
            ke, kr = _linear(fe.args[0]), _linear(fr.args[0])
            if ke is not None and kr is not None:
                b = sp.simplify(ke / kr)
                # (an odd function such as erf takes the sign out of its argument)
                found += [x for x in (b, -b) if x not in found]
    return found
