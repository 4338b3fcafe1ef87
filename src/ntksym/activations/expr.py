"""The variable ``u`` of every activation, and how an expression in it is evaluated and analysed.

Float64 (NumPy) and mpmath evaluation by ``lambdify`` with the conventions of the seed
(``Heaviside(0) = 1/2``; a Dirac delta refuses pointwise evaluation), and the kinks of an
expression: the points where it is not smooth, found once here for every user (the
references' split points, recognition, the kink-aware rule of :mod:`ntksym.dual.kinks`).

How the kinks are found: every non-smooth atom (Max, Min, Abs, Heaviside, sign, Piecewise,
DiracDelta) switches branch where a *switch expression* vanishes (``a - b`` for ``Max(a, b)``,
``a`` for ``Abs(a)``, ``lhs - rhs`` for a Piecewise condition). A switch expression may itself
contain such atoms (``max(min(u, 1), -1)``): it is replaced by each of its smooth branches in
turn and the zeros of every branch are collected (real roots of polynomials exactly; other
branches by a sign-change scan refined by bisection). That gives a superset of the kinks. Each
candidate is then kept only when the analytic piece just left of it differs from the piece
just right of it, so ``max(abs(u) - 1, 0)`` has kinks -1 and 1 but not 0, and a point where
sigma is C^1 but sigma' has a corner (``max(u, 0)**2`` at 0) is kept, as is every zero of a
DiracDelta argument.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import mpmath
import numpy as np
import sympy as sp
from sympy.printing.numpy import NumPyPrinter

from ntksym.errors import ActivationError

__all__ = ["ProductPowers", "u", "lambdify_numpy", "kinks_of", "np_erf", "np_erfc", "real_zeros"]


#: The variable every activation is written in.
u = sp.Symbol("u", real=True)


# --------------------------------------------------------------------------- numerics
def np_erf(x: Any) -> Any:
    """Elementwise erf of floats (NumPy has none, SciPy is not required), within an ulp.

    :func:`ntksym.codegen.runtime.numpy_erf.erf`, the generated modules' own.
    """
    # (imported here: ntksym.codegen's package imports this one)
    from ntksym.codegen.runtime.numpy_erf import erf

    return erf(x)


def np_erfc(x: Any) -> Any:
    """Elementwise erfc of floats, accurate where ``1 - erf`` would cancel (a few ulps)."""
    from ntksym.codegen.runtime.numpy_erf import erfc

    return erfc(x)


def _np_heaviside(x: Any, h0: Any = 0.5) -> Any:
    return np.heaviside(x, h0)


def _no_delta(*_: Any) -> Any:
    raise ActivationError(
        "this derivative contains a Dirac delta (the activation has a jump); it has no "
        "pointwise value: use a closed-form dual kernel instead"
    )


_NUMPY_MODULES: list[Any] = [
    {"erf": np_erf, "erfc": np_erfc, "Heaviside": _np_heaviside, "DiracDelta": _no_delta},
    "numpy",
]


def _mp_heaviside(x: Any, h0: Any = 0.5) -> Any:
    return mpmath.mpf(1) if x > 0 else (mpmath.mpf(0) if x < 0 else mpmath.mpf(h0))


def _mp_sign(x: Any) -> Any:
    return mpmath.sign(x)


MPMATH_MODULES: list[Any] = [
    {
        "Heaviside": _mp_heaviside,
        "sign": _mp_sign,
        "DiracDelta": _no_delta,
        "Max": max,
        "Min": min,
        "Abs": abs,
    },
    "mpmath",
]


class ProductPowers:
    """Printer mixin: small integer powers of a symbol written as products.

    NumPy's ``x**3`` calls ``pow`` (about 60 ns per element here, against 0.6 ns for
    ``x*x*x``): the quadrature of ``Gelu(approximate=True)``, whose ``sigma`` has ``u**3``,
    spent most of its time there. Only a symbol's powers: with common subexpressions
    extracted first, every repeated base is a symbol, so a product repeats no work. A
    product rounds up to twice (``pow`` once): an ulp.
    """

    def _print_Pow(self, expr: sp.Pow, rational: bool = False) -> str:
        base, exp = expr.as_base_exp()
        if isinstance(base, sp.Symbol) and exp.is_Integer and 2 <= int(exp) <= 4:
            return "(" + "*".join([self._print(base)] * int(exp)) + ")"  # type: ignore[attr-defined]
        return super()._print_Pow(expr, rational=rational)  # type: ignore[misc]


class _Printer(ProductPowers, NumPyPrinter):
    """lambdify's NumPy printer, with :class:`ProductPowers`."""


def lambdify_numpy(expr: sp.Expr) -> Callable[[Any], Any]:
    """Float64 evaluation of an expression in u (SymPy conventions at kinks, see module)."""
    # (the settings lambdify gives its own printer: the functions of _NUMPY_MODULES' dict
    # are called by their names there)
    names = {k: k for d in _NUMPY_MODULES if isinstance(d, dict) for k in d}
    settings = {"fully_qualified_modules": False, "inline": True, "allow_unknown_functions": True}
    printer = _Printer({**settings, "user_functions": names})
    f = sp.lambdify(u, expr, modules=_NUMPY_MODULES, printer=printer, cse=True)

    def wrapped(x: Any) -> Any:
        x = np.asarray(x, dtype=float)
        return np.broadcast_to(np.asarray(f(x), dtype=float), x.shape).copy()

    wrapped.__doc__ = f"NumPy evaluation of {sp.sstr(expr)}."
    return wrapped


#: Atoms at which an expression may stop being smooth.
_NONSMOOTH = (sp.Max, sp.Min, sp.Abs, sp.Heaviside, sp.sign, sp.Piecewise, sp.DiracDelta)
#: At most this many smooth branches of one switch expression are solved.
_MAX_BRANCHES = 4096
#: Largest polynomial degree whose real roots are taken exactly.
_MAX_DEGREE = 16
#: Sign-change scan of a non-polynomial switch expression: |u| up to this (and a fine grid
#: near 0); the references integrate |u| up to ~15 standard deviations, 1500 at variance 1e4.
_SCAN_LIMIT = 1e4
#: Working digits of the piece comparison.
_DPS = 40


def _switches(atom: sp.Expr) -> list[sp.Expr]:
    """Expressions whose zeros are the only places ``atom`` may change branch."""
    if isinstance(atom, (sp.Max, sp.Min)):
        args = list(atom.args)
        return [a - b for i, a in enumerate(args) for b in args[i + 1 :]]
    if isinstance(atom, sp.Piecewise):
        found = []
        for _, cond in atom.args:
            for rel in cond.atoms(sp.core.relational.Relational):
                found.append(rel.lhs - rel.rhs)
        return found
    return [atom.args[0]]


def _choices(atom: sp.Expr) -> list[sp.Expr]:
    """The smooth expressions ``atom`` equals on each of its branches."""
    if isinstance(atom, (sp.Max, sp.Min)):
        return list(atom.args)
    if isinstance(atom, sp.Abs):
        return [atom.args[0], -atom.args[0]]
    if isinstance(atom, sp.Heaviside):
        return [sp.S.Zero, sp.S.One]
    if isinstance(atom, sp.sign):
        return [-sp.S.One, sp.S.One]
    if isinstance(atom, sp.Piecewise):
        return [e for e, _ in atom.args]
    return [sp.S.Zero]  # DiracDelta away from its support


def _innermost(expr: sp.Expr) -> sp.Expr | None:
    """A non-smooth atom of ``expr`` with no non-smooth atom inside it, or None."""
    atoms = sorted(expr.atoms(*_NONSMOOTH), key=sp.default_sort_key)
    for atom in atoms:
        if not any(a.has(*_NONSMOOTH) for a in atom.args):
            return atom
    return atoms[0] if atoms else None


def _smooth_branches(expr: sp.Expr) -> list[sp.Expr]:
    """``expr`` with its non-smooth atoms replaced by their branches, all combinations."""
    done: list[sp.Expr] = []
    todo = [expr]
    while todo and len(done) + len(todo) <= _MAX_BRANCHES:
        e = todo.pop()
        atom = _innermost(e)
        if atom is None:
            done.append(e)
        else:
            todo += [e.xreplace({atom: c}) for c in _choices(atom)]
    return done + todo  # (past the cap, unsolved branches are dropped below)


def _poly_zeros(c: sp.Expr) -> set[float] | None:
    """Real zeros of a polynomial switch expression, or None when it is not one."""
    if not c.is_polynomial(u):
        return None
    poly = sp.Poly(c, u)
    if poly.degree() > _MAX_DEGREE:
        return None
    if poly.domain.is_Exact:
        return {float(r) for r in sp.real_roots(poly)}
    roots = poly.nroots(n=30, maxsteps=200)
    return {float(sp.re(r)) for r in roots if abs(sp.im(r)) <= 1e-20 * (1 + abs(r))}


def _scan_zeros(c: sp.Expr) -> set[float]:
    """Sign changes of ``c`` on a grid, each refined by bisection in mpmath."""
    try:
        f = sp.lambdify(u, c, modules=MPMATH_MODULES)
    except (TypeError, ValueError, NameError):
        return set()
    grid = np.geomspace(1e-8, _SCAN_LIMIT, 1200)
    xs = np.unique(np.concatenate([-grid[::-1], [0.0], grid, np.linspace(-50, 50, 1001)]))
    zeros: set[float] = set()
    with mpmath.workdps(_DPS):
        vals = [_real_value(f, mpmath.mpf(float(x))) for x in xs]
        for x, (a, b) in zip(xs, itertools.pairwise(vals), strict=False):
            if a is None or b is None:
                continue
            if a == 0:
                zeros.add(float(x))
            elif a * b < 0:
                zeros.add(_bisect(f, mpmath.mpf(float(x)), a))
    return zeros


def _real_value(f: Callable[[Any], Any], x: Any) -> Any:
    try:
        y = f(x)
    except (ArithmeticError, ValueError, TypeError):
        return None
    if isinstance(y, mpmath.mpc):
        return None
    y = mpmath.mpf(y)
    return y if mpmath.isfinite(y) else None


def _bisect(f: Callable[[Any], Any], lo: Any, f_lo: Any) -> float:
    """The sign change of f right of ``lo`` (bracketed by the scan's next point)."""
    hi = lo + max(abs(lo), mpmath.mpf(1e-8)) / 2
    while (_real_value(f, hi) or 0) * f_lo > 0:
        hi = lo + 2 * (hi - lo)
    for _ in range(200):
        mid = (lo + hi) / 2
        fm = _real_value(f, mid)
        if fm is None or fm == 0 or hi - lo <= abs(mid) * mpmath.mpf(10) ** (-30):
            return float(mid)
        lo, hi = (mid, hi) if fm * f_lo > 0 else (lo, mid)
    return float((lo + hi) / 2)


def real_zeros(c: sp.Expr) -> set[float]:
    """Real zeros of ``c`` as float64, through every smooth branch of it.

    Exact for polynomials up to degree 16, else the sign changes of a scan over
    ``|u| <= 1e4`` refined by bisection (a zero where ``c`` touches 0 without changing sign
    is found only if it is a grid point or ``c`` is a polynomial). Switch expressions of
    :func:`kinks_of` and the poles of :mod:`ntksym.activations.checks`.
    """
    found: set[float] = set()
    for branch in _smooth_branches(c):
        if not branch.has(u):
            continue
        zeros = _poly_zeros(branch)
        found |= _scan_zeros(branch) if zeros is None else zeros
    return {z for z in found if math.isfinite(z)}


def _piece(expr: sp.Expr, x: Any) -> sp.Expr:
    """The smooth expression ``expr`` equals near ``x`` (x not a switch point)."""
    while (atom := _innermost(expr)) is not None:
        switch = _switches(atom)
        if isinstance(atom, (sp.Max, sp.Min)):
            vals = [_evaluate(a, x) for a in atom.args]
            pick = max if isinstance(atom, sp.Max) else min
            best = pick(range(len(vals)), key=lambda i: vals[i])
            choice = atom.args[best]
        elif isinstance(atom, sp.Piecewise):
            choice = next((e for e, c in atom.args if bool(c.subs(u, sp.Float(x, _DPS)))), 0)
        elif isinstance(atom, sp.DiracDelta):
            choice = sp.S.Zero
        else:
            positive = _evaluate(switch[0], x) > 0
            choice = _choices(atom)[1 if positive else 0]
            if isinstance(atom, sp.Abs):
                choice = atom.args[0] if positive else -atom.args[0]
        expr = expr.xreplace({atom: choice})
    return expr


def _evaluate(expr: sp.Expr, x: Any) -> Any:
    with mpmath.workdps(_DPS):
        return sp.lambdify(u, expr, modules=MPMATH_MODULES)(mpmath.mpf(x))


def _same_function(left: sp.Expr, right: sp.Expr, at: float) -> bool:
    """Whether two analytic pieces are the same function (compared at points near ``at``)."""
    diff = left - right
    if diff == 0 or sp.expand(diff) == 0:
        return True
    width = max(1.0, abs(at))
    for t in (-0.61, -0.27, 0.13, 0.42, 0.93):
        x = at + t * width
        try:
            d, size = _evaluate(diff, x), _evaluate(abs(left) + abs(right), x)
        except (ArithmeticError, ValueError, TypeError):
            return False
        if isinstance(d, mpmath.mpc) or abs(d) > mpmath.mpf(10) ** (8 - _DPS) * (1 + size):
            return False
    return True


def _merge(points: list[float]) -> list[float]:
    """Sorted points with near-repeats (the same root from two branches) merged."""
    out: list[float] = []
    for p in points:
        if out and p - out[-1] <= 1e-13 * max(1.0, abs(p)):
            continue
        out.append(p)
    return out


def kinks_of(expr: sp.Expr) -> tuple[float, ...]:
    """Real points where ``expr`` (or one of its derivatives) is not smooth, sorted.

    Nested Max/Min/Abs/Heaviside/sign/Piecewise compositions are solved branch by branch (see
    the module docstring); a candidate is kept only when the analytic pieces on its two sides
    differ, so every point returned is a true corner, jump or higher-order kink (a zero of a
    DiracDelta argument is always kept). Since differentiation creates no new switch points,
    the kinks of ``sigma'`` are among those of ``sigma``.

    Args:
        expr: An expression in :data:`u`.

    Returns:
        The kinks as floats, sorted, without repeats.
    """
    atoms = expr.atoms(*_NONSMOOTH)
    if not atoms:
        return ()
    candidates: set[float] = set()
    for atom in atoms:
        for c in _switches(atom):
            candidates |= real_zeros(c)
    points = _merge(sorted(candidates))
    deltas = {p for a in expr.atoms(sp.DiracDelta) for p in real_zeros(a.args[0])}
    kinks = []
    for i, p in enumerate(points):
        lo = (points[i - 1] + p) / 2 if i else p - max(1.0, abs(p))
        hi = (points[i + 1] + p) / 2 if i + 1 < len(points) else p + max(1.0, abs(p))
        if p in deltas or not _same_function(_piece(expr, lo), _piece(expr, hi), p):
            kinks.append(p)
    return tuple(kinks)
