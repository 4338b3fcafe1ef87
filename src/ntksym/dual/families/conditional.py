"""Cross terms ``E[f(u) g(v)]`` of two different activations, derived by conditioning.

For a centred Gaussian pair with variances ``S11``, ``S22`` and covariance ``S12``, ``v``
given ``u`` is Gaussian with mean ``m u`` and variance ``s^2``, where ``m = S12 / S11`` and
``s^2 = DET / S11`` (``DET = S11 S22 - S12^2``). Hence

``E[f(u) g(v)] = E_u[f(u) G(m u, s)]``,  ``G(a, s) = E[g(a + s z)]`` with ``z ~ N(0, 1)``,

the Gaussian smoothing of ``g``. :func:`smoothing` writes ``G`` in closed form for sums of

* powers ``x^j`` (Gaussian moments: ``E[z^k] = (k - 1)!!`` for even ``k``, 0 for odd),
* ``erf(B x)``: ``erf(B a / sqrt(1 + 2 B^2 s^2))`` (``erf(B x) = 2 Phi(sqrt(2) B x) - 1``,
  and ``E[Phi(c + d z)] = Phi(c / sqrt(1 + d^2))``),
* ``sin(B x)``, ``cos(B x)``, ``exp(B x)``: the Gaussian moment generating function,
  ``E[exp(i B (a + s z))] = exp(i B a - B^2 s^2 / 2)``,
* ``exp(-K x^2)`` with ``K > 0``: completing the square,
  ``exp(-K a^2 / (1 + 2 K s^2)) / sqrt(1 + 2 K s^2)``,
* ``H(B x)`` and ``sign(B x)``: ``Phi(a / s)`` and ``erf(a / (sqrt(2) s))`` for ``B > 0``
  (``a`` changes sign for ``B < 0``), with ``Phi(x) = (1 + erf(x / sqrt(2))) / 2``.

:func:`expectation_1d` then integrates ``f(x) G(m x, s)`` against ``N(0, S11)`` with SymPy
over the two half lines ``x = t`` and ``x = -t`` (``t > 0``), where every ``max``, ``min``,
``abs`` and step of ``f`` with its kink at 0 resolves exactly. The slope ``m`` is a positive
symbol during the integration, done once with ``G(m x, s)`` and once with ``G(-m x, s)``;
with ``m = |S12| / S11`` the two give the even and odd parts in ``S12``, so the result is
``F_even(|m|) + sign(S12) F_odd(|m|)`` whatever form SymPy chose for ``m > 0`` (a form
such as ``1/sqrt(1 + 1/m^2)`` is right for ``m > 0`` only).
"""

from __future__ import annotations

import functools

import sympy as sp

from ntksym.activations import u
from ntksym.dual import derive as _d

__all__ = ["cross_expectation", "expectation_1d", "smoothing"]

_A = sp.Symbol("a_mean", real=True)
_SD = sp.Symbol("s_cond", nonnegative=True)
#: The conditional standard deviation where it divides (a jump's smoothing): positive, so
#: that SymPy integrates without a case split; it is replaced like ``_SD``.
_SDP = sp.Symbol("s_cond_pos", positive=True)
_M = sp.Symbol("m_slope", positive=True)
_T = sp.Symbol("t", positive=True)
_V = sp.Symbol("var", positive=True)
_KINKED = (sp.Max, sp.Min, sp.Abs, sp.Heaviside, sp.sign)


def _moment(k: int) -> sp.Expr:
    """``E[z^k]`` for a standard normal ``z``."""
    return sp.Integer(0) if k % 2 else sp.factorial2(k - 1)


def _linear_coefficient(arg: sp.Expr) -> sp.Expr | None:
    """``B`` when ``arg`` is ``B*u`` with a real number ``B``, else None."""
    b = sp.expand(arg / u)
    return b if b.is_number and b.is_real else None


def _smooth_atom(atom: sp.Expr) -> sp.Expr | None:
    """``E[atom(a + s z)]`` in the symbols ``_A``, ``_SD``, or None (see the module)."""
    if atom == 1:
        return sp.Integer(1)
    if atom.is_polynomial(u):
        poly = sp.Poly(atom, u)
        if len(poly.terms()) != 1:
            return None
        ((j,), c) = poly.terms()[0]
        return c * sum(
            sp.binomial(j, k) * _A ** (j - k) * _SD**k * _moment(k) for k in range(j + 1)
        )
    if isinstance(atom, (sp.Heaviside, sp.sign)):
        return _smooth_jump(atom)
    if len(atom.args) != 1:
        return None
    arg = atom.args[0]
    if isinstance(atom, sp.exp) and arg.is_polynomial(u):
        poly = sp.Poly(arg, u)
        if poly.degree() == 2 and poly.coeff_monomial(u) == 0 and poly.coeff_monomial(1) == 0:
            k = -poly.coeff_monomial(u**2)
            if k.is_positive:
                q = 1 + 2 * k * _SD**2
                return sp.exp(-k * _A**2 / q) / sp.sqrt(q)
    b = _linear_coefficient(arg)
    if b is None:
        return None
    damp = sp.exp(-(b**2) * _SD**2 / 2)
    if isinstance(atom, sp.erf):
        return sp.erf(b * _A / sp.sqrt(1 + 2 * b**2 * _SD**2))
    if isinstance(atom, sp.sin):
        return sp.sin(b * _A) * damp
    if isinstance(atom, sp.cos):
        return sp.cos(b * _A) * damp
    if isinstance(atom, sp.exp):
        return sp.exp(b * _A + b**2 * _SD**2 / 2)
    return None


def _smooth_jump(atom: sp.Expr) -> sp.Expr | None:
    """``E[H(B (a + s z))]`` or ``E[sign(B (a + s z))]``, or None.

    (``Heaviside`` keeps ``H(0)`` as a second argument, which does not matter inside an
    expectation.)
    """
    b = _linear_coefficient(atom.args[0])
    if b is None or b.is_zero:
        return None
    # P(B (a + s z) > 0) = Phi(sign(B) a / s); sign = 2 H - 1
    tail = sp.erf(sp.sign(b) * _A / (sp.sqrt(2) * _SDP))
    return (1 + tail) / 2 if isinstance(atom, sp.Heaviside) else tail


@functools.lru_cache(maxsize=256)
def smoothing(g: sp.Expr) -> sp.Expr | None:
    """``G(a, s) = E[g(a + s z)]`` in the module's symbols ``a_mean``, ``s_cond``, or None.

    Args:
        g: An expression in ``u``: a sum of numbers times the atoms listed in the module.
    """
    total = sp.Integer(0)
    for term in sp.Add.make_args(sp.expand(g)):
        coef, atom = term.as_independent(u, as_Add=False)
        if not (coef.is_number and coef.is_real):
            return None
        smoothed = _smooth_atom(atom)
        if smoothed is None:
            return None
        total += coef * smoothed
    return total


def expectation_1d(f: sp.Expr, weight: sp.Expr, variance: sp.Expr) -> sp.Expr | None:
    """``E[f(x) weight(x)]`` for ``x ~ N(0, variance)``, by SymPy over the two half lines.

    Args:
        f: An expression in ``u`` whose kinks (if any) are at 0.
        weight: An expression in ``u`` without kinks.
        variance: A positive symbol.

    Returns:
        The expectation, or None when SymPy leaves an integral or a complex number.
    """
    total = sp.Integer(0)
    for side in (_T, -_T):
        integrand = (f * weight).subs(u, side)
        if integrand.has(*_KINKED):
            return None
        density = sp.exp(-(_T**2) / (2 * variance)) / sp.sqrt(2 * sp.pi * variance)
        part = sp.integrate(sp.expand(integrand) * density, (_T, 0, sp.oo))
        if part.has(sp.Integral) or part.has(sp.I) or part.has(sp.oo, sp.zoo, sp.nan):
            return None
        total += part
    return total


def _kinks_at_zero_only(expr: sp.Expr) -> bool:
    """Whether every kink of ``expr`` (max, min, abs, step, sign) has its argument ``B*u``."""
    for atom in expr.atoms(*_KINKED):
        for arg in atom.args:
            if arg.has(u) and _linear_coefficient(arg) is None:
                return False
    return True


def _integrable(outer: sp.Expr, inner: sp.Expr) -> bool:
    """Whether SymPy integrates ``outer`` times the smoothing of ``inner`` (quickly).

    A piecewise polynomial ``outer`` (powers, max, min, abs, steps) against any smoothing,
    or anything against the smoothing of a polynomial (Gaussian moments of ``outer``).
    Two transcendental factors (``erf(u)`` against ``erf(2 v)`` or ``sin(v)``) can keep
    SymPy's ``integrate`` busy for minutes; those cross terms are left to quadrature.
    """
    if inner.is_polynomial(u):
        return True
    return all(isinstance(f, _KINKED) for f in outer.atoms(sp.Function))


@functools.lru_cache(maxsize=256)
def cross_expectation(f: sp.Expr, g: sp.Expr) -> sp.Expr | None:
    """``E[f(u) g(v)]`` in ``s11, s12, s22, det`` (``ntksym.dual.derive``), or None.

    Smooths whichever of the two has a closed-form smoothing (a polynomial first), and
    integrates the other one (see the module).

    Args:
        f: The function of ``u``, an expression in ``u``.
        g: The function of ``v``, an expression in ``u``.
    """
    if f.has(sp.DiracDelta) or g.has(sp.DiracDelta):
        return None
    order = [(f, g, _d.S11), (g, f, _d.S22)]
    if f.is_polynomial(u) and not g.is_polynomial(u):
        order.reverse()
    for outer, inner, var in order:
        smooth = smoothing(inner)
        if smooth is None or not _kinks_at_zero_only(outer) or not _integrable(outer, inner):
            continue
        halves = []
        for sign in (1, -1):
            found = expectation_1d(outer, smooth.xreplace({_A: sign * _M * u}), _V)
            if found is None:
                break
            halves.append(sp.simplify(found))
        if len(halves) < 2:
            continue
        # F(m) = F_even(|m|) + sign(m) F_odd(|m|), from F(|m|) and F(-|m|)
        even, odd = (halves[0] + halves[1]) / 2, (halves[0] - halves[1]) / 2
        found = even + sp.sign(_d.S12) * odd
        sd = sp.sqrt(_d.DET / var)
        return found.xreplace({_M: sp.Abs(_d.S12) / var, _SD: sd, _SDP: sd, _V: var})
    return None
