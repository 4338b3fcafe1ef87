"""Overflow-safe forms of activations built from exponentials of ``u``.

``sigmoid = 1/(1 + exp(-u))``, ``softplus = log(1 + exp(u))``, ``silu = u sigmoid(u)``
and their derivatives are finite for every real ``u``, but as written they overflow in
float64 once ``|u| > 709``: ``exp(800)`` is ``inf`` and ``inf/inf`` is NaN. The
generated quadrature evaluates them at nodes ``u = sqrt(S) z`` with ``|z|`` up to 9, so
any variance above ~6000 would hit that.

:func:`exp_safe` rewrites such an expression with the single exponential
``E = exp(-|u|)``, which lies in ``[0, 1]`` and never overflows: on ``u >= 0`` every
``exp(k u)`` becomes ``E**(-k)`` and on ``u < 0`` it becomes ``E**k``, each branch is put
over a common denominator (the negative powers of ``E`` cancel), and ``log`` of a
rational function of ``E`` is split into ``log`` of polynomials with ``log E = -|u|``.
For example ``softplus = u + log1p(E)`` on ``u >= 0`` and ``log1p(E)`` below, and
``sigmoid' = E/(1 + E)^2`` on both sides. This is the usual hand rewriting (as in
``scipy.special.expit`` and ``numpy.logaddexp``), done by SymPy for any expression of
that family.

``ntksym.activations`` evaluates activations in NumPy through these forms and the
generated quadrature modules print them (``ntksym.codegen.spec``). The rewritten form
is used only if its float64 values pass two checks (mpmath does
not overflow): agreement to ``1e-13`` relative with the original expression in mpmath
(with the digits its cancellations need) at points across ``|u| <= 40``, and with
itself in mpmath at 40 digits at ``|u|`` from 700 to 1e300. Anything else (another
function of ``u`` inside an exponential, a failed check) keeps the expression as it
was; the generated kernel then still reports a non-finite result as an error rather
than returning it.
"""

from __future__ import annotations

import functools
import math
import warnings

import mpmath
import sympy as sp
from sympy.codegen.cfunctions import log1p

__all__ = ["exp_safe"]

#: Points where the rewritten form must agree with the original (moderate ``u``).
_MODERATE = (-40.0, -17.3, -5.5, -2.1, -0.7, -0.05, 0.0, 0.05, 0.7, 2.1, 5.5, 17.3, 40.0)
#: Points where the original overflows in float64 but its value is finite.
_LARGE = (-1e300, -1e5, -800.0, -710.0, -700.0, 700.0, 710.0, 800.0, 1e5, 1e300)
_RTOL = 1e-13
_ATOL = 1e-290  # values such as exp(-710) are subnormal: compared in absolute terms


class _NotApplicable(Exception):
    """The expression is not a rational function of exp(k u), u and logs of such."""


def _branch(expr: sp.Expr, var: sp.Symbol, e: sp.Symbol, s: int) -> sp.Expr:
    """``expr`` on the side ``sign(u) = s`` in terms of ``e = exp(-|u|)``."""

    def power(x: sp.Expr) -> sp.Expr:
        k = sp.cancel(x.args[0] / var)
        if not (k.is_Rational and k != 0):
            raise _NotApplicable
        return e ** (-s * k)

    def log_poly(p: sp.Expr) -> sp.Expr:
        # p = e^m q with q(0) != 0, so log p = m log e + log q = -s m u + log q
        try:
            poly = sp.Poly(p, e)
        except sp.PolynomialError as exc:
            raise _NotApplicable from exc
        m = min(mon[0] for mon in poly.monoms()) if not poly.is_zero else 0
        q = sp.expand(sp.cancel(p / e**m))
        if q.is_Add and 1 in q.args:  # log(1 + r), r >= 0 small: log1p keeps its digits
            return -s * m * var + log1p(q - 1)
        return -s * m * var + sp.log(q)

    def split_log(x: sp.Expr) -> sp.Expr:
        n, d = sp.fraction(sp.cancel(sp.together(x.args[0])))
        return log_poly(n) - log_poly(d)

    f = expr.replace(lambda x: isinstance(x, sp.exp), power)
    f = f.replace(lambda x: isinstance(x, sp.log), split_log)
    n, d = sp.fraction(sp.cancel(sp.together(f)))
    out = sp.factor(n) / sp.factor(d)
    if any(p.base == e and p.exp.is_negative for p in out.atoms(sp.Pow)):
        raise _NotApplicable  # grows like exp(|u|) itself: nothing to rewrite
    return out


def _close(got: float, want: mpmath.mpf) -> bool:
    w = float(want)
    return math.isfinite(got) and abs(got - w) <= _RTOL * abs(w) + _ATOL


def _checked(expr: sp.Expr, safe: sp.Expr, var: sp.Symbol, kmax: float) -> bool:
    """Whether ``safe`` in float64 gives the value of ``expr`` at the test points.

    At ``|u| <= 40`` the reference is ``expr`` itself in mpmath, with enough digits for
    the cancellation of its terms (up to ``exp(kmax |u|)``); beyond, where that would
    take thousands of digits, it is ``safe`` in mpmath at 40 digits (``safe`` equals
    ``expr`` by construction, and this checks its float64 evaluation: no overflow, no
    loss). ``safe`` is evaluated as the generated code prints it.
    """
    fast = sp.lambdify(var, safe, modules="math")
    exact = sp.lambdify(var, expr, modules="mpmath")
    slow = sp.lambdify(var, safe, modules="mpmath")
    dps = 40 + math.ceil(2 * kmax * max(map(abs, _MODERATE)) / math.log(10))
    for points, ref, digits in ((_MODERATE, exact, dps), (_LARGE, slow, 40)):
        with mpmath.workdps(digits):
            for x in points:
                try:
                    want = ref(mpmath.mpf(x))
                    if not isinstance(want, mpmath.mpf) or not mpmath.isfinite(want):
                        return False
                    if abs(want) > 1e300:  # not representable: nothing to compare
                        continue
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        got = float(fast(x))
                except (ArithmeticError, ValueError, TypeError):
                    return False
                if not _close(got, want):
                    return False
    return True


def exp_safe(expr: sp.Expr, var: sp.Symbol) -> sp.Expr:
    """``expr`` rewritten so that no exponential of ``var`` overflows (see the module).

    Cached (the result is checked in mpmath): ``Activation.numpy`` and the generated
    modules' spec, which ``ntksym.kernel`` builds on every call, share one rewriting.

    Args:
        expr: A SymPy expression in ``var``.
        var: The variable (the activations' ``u``).

    Returns:
        ``Piecewise((form for u >= 0, u >= 0), (form for u < 0, True))`` in terms of
        ``exp(-Abs(u))``, or ``expr`` itself when it has no ``exp`` of ``var``, is not of
        the family the rewriting handles, or the rewritten form fails the checks.
    """
    safe = _rewritten(expr, var)
    # (identity matters to callers: "not rewritten" is `exp_safe(e, u) is e`)
    return expr if safe is None else safe


@functools.lru_cache(maxsize=256)
def _rewritten(expr: sp.Expr, var: sp.Symbol) -> sp.Expr | None:
    """The checked overflow-safe form of ``expr``, or None (see :func:`exp_safe`)."""
    if not any(var in x.free_symbols for x in expr.atoms(sp.exp)):
        return None
    e = sp.Dummy("E", nonnegative=True)
    try:
        pos = _branch(expr, var, e, 1)
        neg = _branch(expr, var, e, -1)
    except _NotApplicable:
        return None
    # (every exponent is now known to be k u with k rational)
    kmax = max(abs(float(sp.cancel(x.args[0] / var))) for x in expr.atoms(sp.exp)
               if var in x.free_symbols)  # fmt: skip
    small = sp.exp(-sp.Abs(var))
    if pos == neg:
        safe = pos.subs(e, small)
    else:
        safe = sp.Piecewise((pos.subs(e, small), var >= 0), (neg.subs(e, small), True))
    if safe.has(sp.zoo, sp.nan, sp.oo, -sp.oo) or not _checked(expr, safe, var, kmax):
        return None
    return safe
