"""What a user expression must satisfy before any work is done on it.

An activation is a real function of a real ``u``; its integer powers and polynomial degree
are bounded (SymPy merges ``(u**64)**64`` into ``u**4096`` and ``u**64*u**64`` into
``u**128``, so the bound is checked on the built expression, not only on the text); and how
fast it grows decides where its kernel is finite: ``E[sigma(u)^2]`` for ``u ~ N(0, S)`` is
finite for every ``S`` when ``|sigma(u)|`` grows slower than any ``exp(a u^2)``, only for
``a S < 1/4`` when it grows like ``exp(a u^2)``, and for no ``S > 0`` when it grows faster
(``exp(u^4)``, ``exp(exp(u))``: :func:`gaussian_growth` returns infinity). Expressions are
read in mpmath with ``exp``, ``cosh`` and ``sinh`` refusing arguments past ``1e100`` (mpmath
takes minutes for ``exp(exp(1e4))``): such a value is finite but larger than any Gaussian
can tame, so the checks stay fast on any input.
"""

from __future__ import annotations

from typing import Any

import mpmath
import sympy as sp

from ntksym.activations.expr import MPMATH_MODULES, real_zeros, u
from ntksym.errors import ActivationError, UnsafeExpressionError

__all__ = ["MAX_DEGREE", "check_expression", "gaussian_growth"]

#: The largest integer power, and polynomial degree, of an activation typed as text.
MAX_DEGREE = 64
#: Points where an expression must be real and finite (both signs, zero, large |u|).
_PROBES = ("-31.7", "-7.3", "-2.1", "-1", "-0.37", "0", "0.37", "1", "2.1", "7.3", "31.7")
#: Where the growth exponent log|sigma(u)| / u^2 is read, far out on both sides.
_FAR = ("-1e4", "1e4", "-1e5", "1e5")
#: The largest argument of exp, cosh and sinh evaluated while checking (mpmath takes ~20 ms
#: for exp(1e100), ~1 s for exp(1e1000) and minutes for exp(1e4343) = exp(exp(1e4))).
_HUGE = mpmath.mpf(10) ** 100


class _Huge(ArithmeticError):
    """A value past ``exp(1e100)``: real and finite, but beyond any Gaussian's reach."""


def _guarded(name: str) -> Any:
    f = getattr(mpmath, name)

    def g(x: Any) -> Any:
        if name == "exp" and mpmath.re(x) < -_HUGE:
            return mpmath.mpf(0)  # below the smallest positive value of interest
        if abs(mpmath.re(x)) > _HUGE:
            raise _Huge(name)
        return f(x)

    return g


#: MPMATH_MODULES with exp, cosh and sinh refusing astronomically large arguments.
_GUARDED_MODULES: list[Any] = [
    {name: _guarded(name) for name in ("exp", "cosh", "sinh")},
    *MPMATH_MODULES,
]


def check_expression(expr: sp.Expr, text: str) -> None:
    """Refuse an expression that is too large a polynomial, complex, or undefined somewhere.

    Raises:
        UnsafeExpressionError: A power or polynomial degree above :data:`MAX_DEGREE`.
        ActivationError: A value that is complex or not finite at a real ``u``.
    """
    for power in expr.atoms(sp.Pow):
        e = power.exp
        if e.is_number and abs(complex(e)) > MAX_DEGREE:
            raise UnsafeExpressionError(
                f"{text!r} contains {sp.sstr(power)}: powers must be at most {MAX_DEGREE} "
                "in absolute value (after SymPy combines them)"
            )
    if expr.is_polynomial(u) and sp.degree(expr, u) > MAX_DEGREE:
        raise UnsafeExpressionError(
            f"{text!r} is a polynomial of degree {sp.degree(expr, u)}; at most {MAX_DEGREE}"
        )
    if expr.has(sp.I):
        raise ActivationError(f"{text!r} is complex-valued; an activation must be real for real u")
    f = sp.lambdify(u, expr, modules=_GUARDED_MODULES)
    with mpmath.workdps(30):
        for p in _PROBES:
            try:
                value = mpmath.mpmathify(f(mpmath.mpf(p)))
            except _Huge:
                continue  # real and finite, if astronomically large: gaussian_growth decides
            except (ValueError, ZeroDivisionError, OverflowError, TypeError):
                value = mpmath.nan
            _check_value(value, p, text)
    _check_poles(expr, f, text)


#: Distances from a candidate pole (times ``max(1, |z|)``) at which ``|sigma|`` is read ...
_NEAR = ("1e-4", "1e-8", "1e-12")
#: ... and the growth between successive readings that says it is unbounded there
#: (``log|u|`` grows by 2 and 1.5, ``|u|^-0.25`` by 10, ``1/u`` by 1e4).
_GROWTH = 1.4
#: Candidate poles examined, the nearest to 0 first (one pole suffices to refuse).
_MAX_POLES = 8


def _pole_sources(expr: sp.Expr) -> list[sp.Expr]:
    """Expressions whose real zeros are the only places ``expr`` may be infinite.

    The bases of negative powers, the arguments of ``log`` and ``cos`` of those of ``tan``;
    those SymPy proves positive (``1 + exp(-u)``, ``1 + u^2``) have no zero.
    """
    found = [p.base for p in expr.atoms(sp.Pow) if p.exp.is_number and p.exp.is_negative]
    found += [g.args[0] for g in expr.atoms(sp.log)]
    found += [sp.cos(g.args[0]) for g in expr.atoms(sp.tan)]
    return [b for b in found if b.has(u) and not b.is_positive]


def _check_poles(expr: sp.Expr, f: Any, text: str) -> None:
    """Refuse ``expr`` where it grows without bound near a real point (a pole, ``log|u|``).

    The probes read a few points only: ``tan(u)`` or ``1/(u - 0.5)`` are finite at all of
    them, and their kernels are infinite (``E[sigma(u)^2]`` diverges at every variance),
    yet quadrature returned finite numbers for them. Each zero of a :func:`_pole_sources`
    expression is a candidate; ``|sigma|`` is read at three distances on both sides of it.
    """
    zeros: set[float] = set()
    for c in _pole_sources(expr):
        zeros |= real_zeros(c)
    with mpmath.workdps(40):
        for z in sorted(zeros, key=abs)[:_MAX_POLES]:
            for side in (-1, 1):
                size = _growth(f, mpmath.mpf(z), side)
                if size is not None:
                    raise ActivationError(
                        f"{text!r} is not finite at u = {z:.15g} (|sigma| grows without bound "
                        f"there: {mpmath.nstr(size, 3)} at distance 1e-12); an activation must "
                        "be finite for every real u, or its kernel is infinite"
                    )


def _growth(f: Any, z: Any, side: int) -> Any:
    """``|sigma|`` at distance 1e-12 of ``z`` if it grows without bound towards ``z``, else None."""
    scale = max(mpmath.mpf(1), abs(z))
    sizes = []
    for d in _NEAR:
        try:
            value = mpmath.mpmathify(f(z + side * scale * mpmath.mpf(d)))
        except (_Huge, ValueError, ZeroDivisionError, OverflowError, TypeError):
            return mpmath.inf
        if isinstance(value, mpmath.mpc):
            return None  # (not real on this side: the probes' concern, not a pole's)
        if not mpmath.isfinite(value):
            return mpmath.inf
        sizes.append(abs(value))
    grows = all(b > _GROWTH * a for a, b in zip(sizes, sizes[1:], strict=False))
    return sizes[-1] if grows else None


def _check_value(value: object, at: str, text: str) -> None:
    if isinstance(value, mpmath.mpc) and abs(value.imag) > 1e-20 * (1 + abs(value.real)):
        raise ActivationError(
            f"{text!r} is not real at u = {at} (value {mpmath.nstr(value, 6)}); an activation "
            "must be real for every real u"
        )
    real = value.real if isinstance(value, mpmath.mpc) else value
    if not mpmath.isfinite(real):
        raise ActivationError(
            f"{text!r} is not finite at u = {at}; an activation must be finite for every real u"
        )


def gaussian_growth(expr: sp.Expr) -> float:
    """The ``a >= 0`` with ``|sigma(u)| = exp(a u^2 + o(u^2))``: 0 if slower, ``inf`` if faster.

    Faster growth (``exp(u^4)``, ``exp(exp(u))``) makes the kernel infinite at any variance.

    Read from ``log|sigma(u)| / u^2`` at ``|u| = 1e4`` and ``1e5`` in mpmath (200 digits, so
    nothing overflows): equal readings mean quadratic-exponential growth; readings that fall
    with ``|u|`` (polynomials, ``exp(c u)``, bounded functions) mean none; readings that rise
    (or a value past ``exp(1e100)``, :data:`_HUGE`) mean faster than any Gaussian.
    """
    f = sp.lambdify(u, expr, modules=_GUARDED_MODULES)
    readings = []
    with mpmath.workdps(200):
        for p in _FAR:
            x = mpmath.mpf(p)
            try:
                value = abs(mpmath.mpmathify(f(x)))
            except _Huge:
                return float("inf")
            except (ValueError, ZeroDivisionError, OverflowError, TypeError):
                return 0.0
            readings.append(mpmath.log(value) / (x * x) if value > 0 else -mpmath.inf)
    # pairs (|u| = 1e4, 1e5) on each side; exp(c u) or u^k at 1e5 reads below 1e-4
    growth = 0.0
    for near, far in ((readings[0], readings[2]), (readings[1], readings[3])):
        if far > 1e-4 and far > near * (1 + 1e-3):
            return float("inf")
        if far > 1e-4 and abs(far - near) <= 1e-3 * abs(far):
            growth = max(growth, float(far))
    return growth
