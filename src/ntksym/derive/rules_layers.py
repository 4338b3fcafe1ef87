"""Rules for the kernel maps of single layers: Dropout, Sign, sums of branches, LayerNorm.

The seed's rules (:mod:`ntksym.derive.rules_probability`) evaluate expectations over the
Gaussian weights of the standard network. The layer types of ``ntksym.stax`` that are not
a Dense layer or an activation need a few more facts, each a rule here:

* ``bernoulli_moments`` — a dropout mask ``xi ~ Bernoulli(q)``: ``xi^p = xi`` for an
  integer ``p >= 1``, ``E[xi] = q``, distinct masks independent (and independent of the
  layer's input, which is held fixed);
* ``sign_orthants`` — ``E[F(sign u, sign v)]`` as a sum over the four quadrants, with
  ``P(u > 0, v > 0) = P(u < 0, v < 0)`` and ``P(u > 0, v < 0) = 1/2 - P(u > 0, v > 0)``
  (central symmetry and ``P(u > 0) = 1/2`` of a centred Gaussian);
* ``sheppard`` — ``P(u > 0, v > 0) = 1/4 + arcsin(rho) / (2 pi)`` (Sheppard 1899);
* ``almost_everywhere`` — a Dirac mass at 0 (SymPy's derivative of ``sign``) dropped: the
  derivative almost everywhere, the convention of neural-tangents for ``Sign``;
* ``bilinearity`` — ``E`` of a sum of products: linear in each factor, declared scalars
  pulled out, sums taken outside;
* ``independent_zero_mean`` — a term linear in a zero-mean parameter that nothing else
  in the term depends on has expectation 0;
* ``field_moments`` — the declared second moments of a Gaussian field's units
  (``E[z_k(x) z_k(x')] = Sigma(x, x')``, ``E[z_k] = 0``);
* ``power_counting`` — in the limit ``n -> oo``, a term ``n^(-a)`` times ``b`` sums over
  ``1..n`` of bounded (averaged) quantities vanishes when ``a > b``.

The expectations here are :class:`Ex` (over every random quantity the derivation
declares), kept apart from the seed's :class:`~ntksym.derive.symbols.E` so that the
seed's rules never see objects they do not know.
"""

from __future__ import annotations

from typing import Any

import mpmath
import sympy as sp
from sympy.printing.latex import LatexPrinter

from ntksym.derive.registry import Context, RuleError, rule
from ntksym.derive.text import Tex, text

__all__ = ["Ex", "GaussPair", "Orthant", "facts", "with_limits"]


class Ex(sp.Function):
    """Unevaluated expectation over the random quantities a layer derivation declares.

    As inside the seed's ``E``, the units of a layer are exchangeable: an index alone in
    its slot is not free (see :func:`ntksym.derive.wellformed.free_indices`).
    """

    nargs = 1
    exchangeable_units = True

    def _latex(self, printer: LatexPrinter) -> str:
        return r"\mathbb{E}\left[" + printer._print(self.args[0]) + r"\right]"

    _ntksym_notes_latex = _latex

    def _ntksym_plain(self, printer: Any) -> str:
        return "E[" + printer._print(self.args[0]) + "]"


class GaussPair(sp.Function):
    """``E[F(u, v)]`` for ``(u, v) ~ N(0, [[S11, S12], [S12, S22]])``.

    Arguments ``(F, u, v, S11, S12, S22)``; ``u`` and ``v`` are bound.
    """

    nargs = 6

    @property
    def bound_variables(self) -> tuple[sp.Symbol, sp.Symbol]:
        """The integration variables ``(u, v)``: not free in the statement."""
        return (self.args[1], self.args[2])

    def _latex(self, printer: LatexPrinter) -> str:
        f, u, v, s11, s12, s22 = self.args
        a, c, d = (printer._print(t) for t in (s11, s12, s22))
        cov = r"\begin{pmatrix}" + f"{a} & {c}" + r"\\ " + f"{c} & {d}" + r"\end{pmatrix}"
        return (
            r"\mathbb{E}_{(u,v)\sim\mathcal{N}\left(0,"
            + cov
            + r"\right)}\left["
            + printer._print(f)
            + r"\right]"
        )

    _ntksym_notes_latex = _latex

    def _ntksym_plain(self, printer: Any) -> str:
        f, u, v, s11, s12, s22 = (printer._print(a) for a in self.args)
        return f"E_{{({u},{v})~N(0,[[{s11},{s12}],[{s12},{s22}]])}}[{f}]"


class Orthant(sp.Function):
    """``P(u > 0, v > 0)`` for a centred Gaussian pair with correlation ``rho``."""

    nargs = 1

    def _latex(self, printer: LatexPrinter) -> str:
        return r"P_{\rho = " + printer._print(self.args[0]) + r"}(u > 0, v > 0)"

    _ntksym_notes_latex = _latex

    def _ntksym_plain(self, printer: Any) -> str:
        return "P_{rho=" + printer._print(self.args[0]) + "}(u > 0, v > 0)"

    def _eval_evalf(self, prec: int) -> sp.Float | None:
        """By quadrature: ``int_0^oo phi(t) Phi(rho t / sqrt(1 - rho^2)) dt``."""
        rho = self.args[0]._eval_evalf(prec) if not self.args[0].is_Number else self.args[0]
        if rho is None or not rho.is_Number:
            return None
        with mpmath.workprec(prec + 20):
            r = mpmath.mpf(str(rho))
            c = r / mpmath.sqrt(1 - r**2)
            val = mpmath.quad(lambda t: mpmath.npdf(t) * mpmath.ncdf(c * t), [0, mpmath.inf])
            return sp.Float(str(val), mpmath.libmp.prec_to_dps(prec))


def facts(
    masks: dict[sp.IndexedBase, sp.Expr] | None = None,
    zero_mean: set[sp.IndexedBase] | None = None,
    moments: dict[sp.Basic, sp.Expr] | None = None,
    limits: dict[sp.Basic, sp.Expr] | None = None,
) -> dict:
    """The facts a derivation declares for the layer rules (``Context(facts=...)``).

    Args:
        masks: dropout masks, base -> keep probability ``q`` (``xi ~ Bernoulli(q)``).
        zero_mean: zero-mean parameters, independent of every other declared quantity.
        moments: moments of Gaussian fields, ``Ex(expr) -> value``.
        limits: limits in probability (derived by earlier steps), ``expr -> limit``.
    """
    return {
        "masks": dict(masks or {}),
        "zero_mean": set(zero_mean or ()),
        "moments": dict(moments or {}),
        "limits": dict(limits or {}),
    }


def with_limits(ctx: Context, limits: dict[sp.Basic, sp.Expr]) -> Context:
    """``ctx`` with more limits in probability for ``continuous_mapping``."""
    known = ctx.facts.get("limits", {})
    return ctx.replace(facts={**ctx.facts, "limits": {**known, **limits}})


def _is_random(e: sp.Basic) -> bool:
    """Whether ``e`` depends on a random quantity (an object, a gradient, a function of one)."""
    if e.atoms(sp.Indexed) or e.has(Ex) or e.atoms(sp.Derivative):
        return True
    return any(isinstance(f, sp.core.function.AppliedUndef) for f in e.atoms(sp.Function))


@rule(
    "bilinearity",
    description=text(
        "{a}; declared scalars and indices are constants",
        a=Tex(
            r"\mathbb{E}[aX + cY] = a\,\mathbb{E}[X] + c\,\mathbb{E}[Y]",
            "E[a X + c Y] = a E[X] + c E[Y]",
        ),
    ),
)
def bilinearity(expr: sp.Expr, ctx: Context) -> sp.Expr:
    """``E`` of a sum: sums and constant factors taken out, one ``E`` per product."""

    def lin(e: Ex) -> sp.Expr:
        out = []
        for t in sp.Add.make_args(sp.expand(e.args[0])):
            limits: list = []
            while isinstance(t, sp.Sum) or any(isinstance(f, sp.Sum) for f in sp.Mul.make_args(t)):
                fs = sp.Mul.make_args(t)
                s = next(f for f in fs if isinstance(f, sp.Sum))
                limits += list(s.limits)
                t = sp.expand(sp.Mul(*[f for f in fs if f is not s]) * s.function)
            for term in sp.Add.make_args(t):
                rand = [f for f in sp.Mul.make_args(term) if _is_random(f)]
                const = [f for f in sp.Mul.make_args(term) if not _is_random(f)]
                inner = sp.Mul(*const) * (Ex(sp.Mul(*rand)) if rand else 1)
                out.append(sp.Sum(inner, *limits) if limits else inner)
        return sp.Add(*out)

    return expr.replace(lambda e: isinstance(e, Ex), lin)


@rule(
    "bernoulli_moments",
    description=text(
        "a mask {xi}: {pw}, {m}; distinct masks independent of each other and of the input",
        xi=Tex(r"\xi \sim \mathrm{Bernoulli}(q)", "xi ~ Bernoulli(q)"),
        pw=Tex(r"\xi^p = \xi", "xi^p = xi"),
        m=Tex(r"\mathbb{E}[\xi] = q", "E[xi] = q"),
    ),
)
def bernoulli_moments(expr: sp.Expr, ctx: Context) -> sp.Expr:
    """``Ex[xi_1^p1 ... xi_m^pm X] = q^m Ex[X]`` for distinct masks independent of ``X``."""
    known = ctx.facts.get("masks", {})

    def ev(e: Ex) -> sp.Expr:
        out = []
        for t in sp.Add.make_args(sp.expand(e.args[0])):
            masks: set[sp.Indexed] = set()
            rest = []
            for f in sp.Mul.make_args(t):
                base, p = f.as_base_exp()
                if isinstance(base, sp.Indexed) and base.base in known:
                    if not (p.is_Integer and p > 0):
                        raise RuleError(f"{f}: a mask enters only with a positive integer power")
                    masks.add(base)
                elif any(m.base in known for m in f.atoms(sp.Indexed)):
                    raise RuleError(f"{f}: a mask inside a function is not a moment of it")
                else:
                    rest.append(f)
            moments = sp.Mul(*[known[m.base] for m in masks])
            rand = sp.Mul(*[f for f in rest if _is_random(f)])
            const = sp.Mul(*[f for f in rest if not _is_random(f)])
            out.append(const * moments * (Ex(rand) if rand != 1 else 1))
        return sp.Add(*out)

    return expr.replace(lambda e: isinstance(e, Ex), ev)


def _correlation(s11: sp.Expr, s12: sp.Expr, s22: sp.Expr) -> sp.Expr:
    return s12 / sp.sqrt(s11 * s22)


@rule(
    "sign_orthants",
    description=text(
        "{e} summed over the quadrants; {sym}, {half} (a centred Gaussian pair)",
        e=Tex(
            r"\mathbb{E}[F(\operatorname{sign} u, \operatorname{sign} v)]", "E[F(sign u, sign v)]"
        ),
        sym=Tex(r"P(u>0, v>0) = P(u<0, v<0)", "P(u>0, v>0) = P(u<0, v<0)"),
        half=Tex(r"P(u>0, v<0) = \tfrac12 - P(u>0, v>0)", "P(u>0, v<0) = 1/2 - P(u>0, v>0)"),
    ),
)
def sign_orthants(expr: sp.Expr, ctx: Context) -> sp.Expr:
    """``E[F(sign u, sign v)] = sum_{s,t = +-1} F(s, t) P(su > 0, tv > 0)``."""

    def ev(g: GaussPair) -> sp.Expr:
        f, u, v, s11, s12, s22 = g.args
        s, t = sp.Dummy("s"), sp.Dummy("t")
        h = f.xreplace({sp.sign(u): s, sp.sign(v): t})
        if h.has(u) or h.has(v):
            raise RuleError(f"{f} depends on u, v other than through sign(u), sign(v)")
        pp = Orthant(_correlation(s11, s12, s22))
        prob = {(1, 1): pp, (-1, -1): pp, (1, -1): sp.Rational(1, 2) - pp}
        prob[(-1, 1)] = prob[(1, -1)]
        return sp.Add(*[h.subs({s: a, t: c}) * p for (a, c), p in prob.items()])

    return expr.replace(lambda e: isinstance(e, GaussPair), ev)


@rule(
    "sheppard",
    description=text(
        "{p} for a centred Gaussian pair with correlation {rho} (Sheppard 1899)",
        p=Tex(
            r"P(u>0, v>0) = \tfrac14 + \frac{\arcsin\rho}{2\pi}",
            "P(u>0, v>0) = 1/4 + arcsin(rho) / (2 pi)",
        ),
        rho=Tex(r"\rho", "rho"),
    ),
)
def sheppard(expr: sp.Expr, ctx: Context) -> sp.Expr:
    """``P(u > 0, v > 0) = 1/4 + arcsin(rho) / (2 pi)``.

    Writing ``v = rho u + sqrt(1 - rho^2) w`` with ``(u, w)`` standard and isotropic, the
    event is a wedge of angle ``pi/2 + arcsin(rho)`` of the ``(u, w)`` plane.
    """
    return expr.replace(
        lambda e: isinstance(e, Orthant),
        lambda e: sp.Rational(1, 4) + sp.asin(e.args[0]) / (2 * sp.pi),
    )


@rule(
    "almost_everywhere",
    description=text(
        "the derivative almost everywhere: a point mass {d} dropped (a Gaussian pair with "
        "a density gives the point 0 probability 0)",
        d=Tex(r"\delta(u)", "delta(u)"),
    ),
)
def almost_everywhere(expr: sp.Expr, ctx: Context) -> sp.Expr:
    """Every ``DiracDelta`` set to 0, then ``E[0] = 0``."""
    out = expr.replace(lambda e: isinstance(e, sp.DiracDelta), lambda e: sp.S.Zero)
    return out.replace(lambda e: isinstance(e, GaussPair) and e.args[0] == 0, lambda e: sp.S.Zero)


@rule(
    "independent_zero_mean",
    description=text(
        "{e} when {w} has mean 0 and is independent of {x}",
        e=Tex(r"\mathbb{E}[w X] = \mathbb{E}[w]\,\mathbb{E}[X] = 0", "E[w X] = E[w] E[X] = 0"),
        w=Tex("w", "w"),
        x=Tex("X", "X"),
    ),
)
def independent_zero_mean(expr: sp.Expr, ctx: Context) -> sp.Expr:
    """``Ex[w X] = 0`` when a zero-mean parameter ``w`` enters the product exactly once."""
    zero = ctx.facts.get("zero_mean", set())

    def ev(e: Ex) -> sp.Expr:
        arg = e.args[0]
        for base in zero:
            entries = [t for t in arg.atoms(sp.Indexed) if t.base == base]
            if len(entries) != 1:
                continue
            (w,) = entries
            factors = sp.Mul.make_args(arg)
            if w in factors and not sp.Mul(*[f for f in factors if f != w]).has(base):
                return sp.S.Zero
        return e

    return expr.replace(lambda e: isinstance(e, Ex), ev)


@rule(
    "field_moments",
    description="the declared second moments of the Gaussian field's units (its kernel)",
)
def field_moments(expr: sp.Expr, ctx: Context) -> sp.Expr:
    """``Ex(expr)`` replaced by its declared moment, after renaming the unit index."""
    moments = ctx.facts.get("moments", {})

    def ev(e: Ex) -> sp.Expr:
        if e in moments:
            return moments[e]
        for key, value in moments.items():
            found = e.match(key.xreplace({i: sp.Wild(i.name) for i in _indices(key)}))
            if found is not None:
                return value
        raise RuleError(f"no declared moment for {e}")

    return expr.replace(lambda e: isinstance(e, Ex), ev)


def _indices(e: sp.Basic) -> set[sp.Symbol]:
    return {i for t in e.atoms(sp.Indexed) for i in t.indices if isinstance(i, sp.Symbol)}


@rule(
    "power_counting",
    description=text(
        "as {n}, a term {c} times {b} averages of bounded quantities vanishes when {ab}",
        n=Tex(r"n \to \infty", "n -> oo"),
        c=Tex(r"n^{-a}", "n^(-a)"),
        b=Tex("b", "b"),
        ab=Tex("a > b", "a > b"),
    ),
)
def power_counting(expr: sp.Expr, ctx: Context) -> sp.Expr:
    """Terms with more powers of ``1/n`` than sums over ``1..n`` dropped (``n = limit_width``)."""
    n = ctx.ranges.get("limit_width")
    if n is None:
        raise RuleError("power_counting needs ctx.ranges['limit_width']")
    out = []
    for t in sp.Add.make_args(sp.expand(expr)):
        sums = [f for f in sp.Mul.make_args(t) if isinstance(f, sp.Sum)]
        nsum = sum(1 for s in sums for (_, _, hi) in s.limits if hi == n)
        rest = sp.Mul(*[f for f in sp.Mul.make_args(t) if not isinstance(f, sp.Sum)])
        coeff, power = rest.as_coeff_exponent(n)
        if coeff.has(n):
            raise RuleError(f"{t} is not a power of {n} times sums over 1..{n}")
        if -power > nsum:
            continue
        out.append(t)
    return sp.Add(*out)


@rule(
    "continuous_mapping",
    description=text(
        "if {x} in probability and {f} is continuous at {a}, then {fx}",
        x=Tex(r"X_n \to a", "X_n -> a"),
        f=Tex("f", "f"),
        a=Tex("a", "a"),
        fx=Tex(r"f(X_n) \to f(a)", "f(X_n) -> f(a)"),
    ),
)
def continuous_mapping(expr: sp.Expr, ctx: Context) -> sp.Expr:
    """Each declared convergent quantity replaced by its limit; the result must be finite.

    Raises:
        RuleError: The map is not continuous there (a denominator or a square root
            vanishes at the limit), or nothing was replaced.
    """
    out = expr.xreplace(ctx.facts.get("limits", {}))
    if out == expr:
        raise RuleError(f"no declared convergent quantity in {expr}")
    for p in out.atoms(sp.Pow):
        if p.exp.is_negative or not p.exp.is_integer:
            if p.base.is_zero is not False:
                raise RuleError(f"{p} may be singular at the limit: the map is not continuous")
    return out
