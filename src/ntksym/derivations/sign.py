"""The Sign activation: its covariance map by orthant probabilities, its derivative map.

For ``(u, v) ~ N(0, [[S11, S12], [S12, S22]])`` and ``rho = S12 / sqrt(S11 S22)``:

* (1) ``E[sign u sign v]`` is a sum over the four quadrants; central symmetry and
  ``P(u > 0) = 1/2`` leave one unknown, ``4 P(u > 0, v > 0) - 1`` (rule ``sign_orthants``);
* (2) ``P(u > 0, v > 0) = 1/4 + arcsin(rho) / (2 pi)`` (Sheppard 1899: the event is a
  wedge of angle ``pi/2 + arcsin rho`` of an isotropic plane; rule ``sheppard``);
* (3) hence ``E[sign u sign v] = (2/pi) arcsin(rho)``, the covariance map of ``Sign``
  (Cho & Saul 2009 give the same kernel as the arc-cosine kernel of degree 0, shifted);
* (4) SymPy's derivative of ``sign`` is ``2 delta(u)``: zero except at one point, which a
  Gaussian with a density gives probability 0, so with the derivative *almost everywhere*
  ``E[sign'(u) sign'(v)] = 0`` and the NTK after ``Sign`` is ``Theta * 0 = 0``. That is
  neural-tangents' convention and what gradient descent on a finite network sees (no
  gradient passes through ``sign``). Kept as a distribution, the product would be
  ``4 p(0, 0) = 2 / (pi sqrt(S11 S22 - S12^2))``, infinite for an input with itself: the
  code does not use that reading (its ``Sign`` layer sets the NTK to 0).

Each step is checked numerically: (1) and (2) against one-dimensional mpmath integrals of
a different route (conditioning on ``u``), (3) also against the code's float64 and mpmath
``Sign`` maps, (4) against the code's NTK through a ``Sign`` layer.
"""

from __future__ import annotations

from typing import Any

import mpmath
import sympy as sp

from ntksym.derive.layer_checks import Point, code_layer_map, covariance_points, value_check
from ntksym.derive.rules_layers import GaussPair, Orthant
from ntksym.extend import Context, Derivation, Step, apply_rule, scalar, text

u, v = sp.symbols("u v", real=True)
S11, S22 = scalar("Sigma_11"), scalar("Sigma_22")
S12, T12 = scalar("Sigma_12", False), scalar("Theta_12", False)
RHO = S12 / sp.sqrt(S11 * S22)
CTX = Context()


def gp(f: sp.Expr) -> GaussPair:
    return GaussPair(f, u, v, S11, S12, S22)


def r(name: str, e: sp.Basic) -> sp.Basic:
    return apply_rule(name, e, CTX)


SS = gp(sp.sign(u) * sp.sign(v))
P1 = sp.Eq(SS, 4 * Orthant(RHO) - 1)
P2 = sp.Eq(Orthant(RHO), sp.Rational(1, 4) + sp.asin(RHO) / (2 * sp.pi))
P3 = sp.Eq(SS, 2 * sp.asin(RHO) / sp.pi)
DD = gp(sp.Derivative(sp.sign(u), u) * sp.Derivative(sp.sign(v), v))
P4 = sp.Eq(T12 * DD, 0)


def d1(env: dict) -> sp.Basic:
    return sp.Eq(SS, sp.expand(r("sign_orthants", SS)))


def d2(env: dict) -> sp.Basic:
    return sp.Eq(P2.lhs, r("sheppard", P2.lhs))


def d3(env: dict) -> sp.Basic:
    return sp.Eq(SS, sp.expand(r("sheppard", env["1"].rhs)))


def d4(env: dict) -> sp.Basic:
    grads = P4.lhs.replace(lambda t: isinstance(t, sp.Derivative), lambda t: t.doit())
    return sp.Eq(P4.lhs, r("almost_everywhere", grads))


# ---------------------------------------------------------------- the checks
def _rho(p: Point) -> Any:
    return mpmath.mpf(p[S12]) / mpmath.sqrt(mpmath.mpf(p[S11]) * p[S22])


def _conditioned(p: Point) -> Any:
    """``E[sign u sign v] = 2 int_0^oo phi(t) erf(rho t / sqrt(2 (1 - rho^2))) dt``."""
    rho = _rho(p)
    c = rho / mpmath.sqrt(2 * (1 - rho**2))
    return 2 * mpmath.quad(lambda t: mpmath.npdf(t) * mpmath.erf(c * t), [0, mpmath.inf])


def _orthant(p: Point) -> Any:
    """``P(u > 0, v > 0) = int_0^oo phi(t) Phi(rho t / sqrt(1 - rho^2)) dt``."""
    rho = _rho(p)
    c = rho / mpmath.sqrt(1 - rho**2)
    return mpmath.quad(lambda t: mpmath.npdf(t) * mpmath.ncdf(c * t), [0, mpmath.inf])


def _code(field: str, backend: str) -> Any:
    """The code's Sign layer: its covariance (``s12``) or its NTK of an input ``Theta_12``."""
    from ntksym.activations import get_activation
    from ntksym.architecture.description import Nonlinearity

    layer = Nonlinearity(get_activation("sign"), "Sign()", True)

    def ref(p: Point) -> Any:
        vals = (p[S11], p[S22], p[S12], p[T12])
        return code_layer_map("nonlinearity", layer, field, backend, vals)

    return ref


POINTS = covariance_points(S11, S12, S22, count=5, seed=41, more={T12: (-2.0, 2.0)})
CONDITIONED = "an mpmath integral conditioned on u"


def both(*checks: Any) -> Any:
    """All of ``checks`` in turn; the first failure decides."""

    def joined(stmt: sp.Basic, ctx: Context, env: dict) -> tuple[bool, str, Any]:
        out = []
        for c in checks:
            ok, method, d = c(stmt, ctx, env)
            if not ok:
                return ok, method, d
            out.append(d)
        detail = out[0]
        for d in out[1:]:
            detail = text("{a}; {b}", a=detail, b=d)
        return True, "numeric", detail

    return joined


F64 = "the code's float64 Sign map"
MPM = "the code's mpmath Sign map (quadrature)"
CHECK_3 = both(
    value_check(_conditioned, POINTS, CONDITIONED, 1e-25),
    value_check(_code("s12", "float64"), POINTS, F64, 1e-14),
    value_check(_code("s12", "mpmath"), POINTS[:3], MPM, 1e-20),
)
CHECK_4 = both(
    value_check(_code("ntk", "float64"), POINTS, "the code's float64 NTK through Sign", 0.0),
    value_check(_code("ntk", "mpmath"), POINTS[:2], "the code's mpmath NTK through Sign", 0.0),
)

DERIVATION = Derivation(
    name="sign",
    title="Sign: the covariance map by orthant probabilities, the NTK through it",
    steps=(
        Step(
            "1",
            P1,
            "sign_orthants",
            derive=d1,
            extra_check=value_check(_conditioned, POINTS, CONDITIONED, 1e-25),
            note=text("with {r}", r=sp.Eq(sp.Symbol("rho"), RHO)),
        ),
        Step(
            "2",
            P2,
            "sheppard",
            derive=d2,
            extra_check=value_check(_orthant, POINTS, CONDITIONED, 1e-25),
        ),
        Step("3", P3, "sheppard", uses=("1",), derive=d3, extra_check=CHECK_3),
        Step(
            "4",
            P4,
            "almost_everywhere",
            derive=d4,
            extra_check=CHECK_4,
            note=text(
                "the NTK after Sign is {t} times this: 0 (the derivative almost everywhere, "
                "as neural-tangents); kept as a distribution it would be {d}, infinite for "
                "an input with itself",
                t=T12,
                d=2 / (sp.pi * sp.sqrt(S11 * S22 - S12**2)),
            ),
        ),
    ),
    hypotheses=(
        text(
            "{uv} a centred Gaussian pair with a density ({det})",
            uv=sp.Tuple(u, v),
            det=S11 * S22 - S12**2 > 0,
        ),
    ),
)
