"""The :class:`Activation` value object and the registry of named activations."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import sympy as sp

from ntksym.activations.checks import check_expression
from ntksym.activations.expr import MPMATH_MODULES, kinks_of, lambdify_numpy, u
from ntksym.activations.overflow import exp_safe
from ntksym.activations.parser import MAX_INTEGER_EXPONENT, parse_expression
from ntksym.activations.recognise import recognise
from ntksym.errors import ActivationError

__all__ = [
    "Activation",
    "affine_parts",
    "registered_names",
    "get_activation",
    "recognised_activation",
]


# --------------------------------------------------------------------------- the object
@dataclass(frozen=True)
class Activation:
    """A scalar activation function sigma(u).

    Attributes:
        name: Registry name (``"relu"``, ``"leaky_relu(0.1)"``) or the
            normalised text of a user expression.
        expr: The activation as a SymPy expression in :data:`u`.
        description: One line saying what it is.
        params: Parameters that distinguish members of a family, e.g.
            ``(("slope", 0.1),)``; used as part of the identity of the activation.
    """

    name: str
    expr: sp.Expr
    description: str = ""
    params: tuple[tuple[str, Any], ...] = field(default=())

    @cached_property
    def derivative(self) -> sp.Expr:
        """D sigma / du, derived by SymPy (see the module docstring for kinks)."""
        return sp.diff(self.expr, u)

    @cached_property
    def has_distributional_derivative(self) -> bool:
        """True when the derivative contains a Dirac delta (step, sign, ...)."""
        return self.derivative.has(sp.DiracDelta)

    @cached_property
    def kinks(self) -> tuple[float, ...]:
        """Real points where sigma or sigma' is not smooth, sorted.

        Quadrature rules split their domain at these points.
        """
        return kinks_of(self.expr)

    @cached_property
    def numpy(self) -> Callable[[Any], Any]:
        """Vectorised NumPy evaluation of sigma (overflow-safe, see ntksym.activations.overflow)."""
        return lambdify_numpy(exp_safe(self.expr, u))

    @cached_property
    def numpy_derivative(self) -> Callable[[Any], Any]:
        """Vectorised NumPy evaluation of sigma' (refused for distributional derivatives)."""
        if self.has_distributional_derivative:
            raise ActivationError(
                f"the derivative of {self.name!r} is {self.derivative}, which contains a Dirac "
                "delta; it has no pointwise value"
            )
        return lambdify_numpy(exp_safe(self.derivative, u))

    @cached_property
    def mpmath(self) -> Callable[[Any], Any]:
        """Mpmath evaluation of sigma at an ``mpf``."""
        return sp.lambdify(u, self.expr, modules=MPMATH_MODULES)

    @cached_property
    def mpmath_derivative(self) -> Callable[[Any], Any]:
        """Mpmath evaluation of sigma' (refused for distributional derivatives)."""
        if self.has_distributional_derivative:
            raise ActivationError(
                f"the derivative of {self.name!r} contains a Dirac delta; it has no pointwise value"
            )
        return sp.lambdify(u, self.derivative, modules=MPMATH_MODULES)

    @property
    def registered_base(self) -> str | None:
        """The registry family this activation is exactly a member of, else None.

        ``"leaky_relu"`` for ``get_activation("leaky_relu", slope=0.2)``; None for a
        user expression, even one that happens to equal a registered activation.
        """
        base = self.name.split("(", 1)[0]
        if base not in REGISTRY:
            return None
        try:
            ref = REGISTRY[base](**dict(self.params))
        except Exception:  # noqa: BLE001 - a user activation that only shares the name
            return None
        return base if ref.expr == self.expr else None

    def __call__(self, x: Any) -> Any:
        """Evaluate sigma with NumPy."""
        return self.numpy(x)

    def __repr__(self) -> str:
        return f"Activation({self.name!r}, {sp.sstr(self.expr)})"


# --------------------------------------------------------------------------- registry
def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ActivationError(f"{name} must be a non-negative integer, got {value!r}")
    if value > MAX_INTEGER_EXPONENT:
        raise ActivationError(f"{name} must be at most {MAX_INTEGER_EXPONENT}, got {value}")
    return int(value)


def _finite_number(name: str, value: Any) -> sp.Expr:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number, sp.Number)):
        raise ActivationError(f"{name} must be a real number, got {value!r}")
    if not math.isfinite(float(value)):
        raise ActivationError(f"{name} must be finite, got {value!r}")
    if isinstance(value, sp.Number):
        return value
    if isinstance(value, (int, np.integer)):
        return sp.Integer(int(value))
    return sp.Rational(float(value)).limit_denominator(10**12)


def _leaky_relu(slope: Any = 0.01) -> Activation:
    a = _finite_number("slope", slope)
    return Activation(
        f"leaky_relu({slope})",
        sp.Max(0, u) + a * sp.Min(0, u),
        "max(0,u) + slope*min(0,u)",
        (("slope", slope),),
    )


def _monomial(k: Any = 1) -> Activation:
    k = _positive_int("k", k)
    return Activation(f"monomial({k})", u**k, "u**k", (("k", k),))


_SIMPLE: dict[str, tuple[sp.Expr, str]] = {
    "identity": (u, "the identity u (a linear network)"),
    "relu": (sp.Max(0, u), "rectified linear unit max(0, u)"),
    "abs": (sp.Abs(u), "absolute value |u|"),
    "step": (sp.Heaviside(u), "Heaviside step (0 for u<0, 1 for u>0)"),
    "sign": (sp.sign(u), "sign function"),
    "erf": (sp.erf(u), "error function"),
    "tanh": (sp.tanh(u), "hyperbolic tangent"),
    "sigmoid": (1 / (1 + sp.exp(-u)), "logistic sigmoid"),
    "softplus": (sp.log(1 + sp.exp(u)), "softplus log(1 + e^u)"),
    "gelu": (u * (1 + sp.erf(u / sp.sqrt(2))) / 2, "Gaussian error linear unit u*Phi(u)"),
    "silu": (u / (1 + sp.exp(-u)), "sigmoid linear unit (swish) u*sigmoid(u)"),
    "sin": (sp.sin(u), "sine"),
    "cos": (sp.cos(u), "cosine"),
    "exp": (sp.exp(u), "exponential"),
    "gaussian": (sp.exp(-(u**2) / 2), "Gaussian bump exp(-u^2/2)"),
}


#: Named activations: name -> factory taking the family's parameters.
REGISTRY: dict[str, Callable[..., Activation]] = {
    name: (lambda name=name, expr=expr, desc=desc: Activation(name, expr, desc))
    for name, (expr, desc) in _SIMPLE.items()
}


REGISTRY["leaky_relu"] = _leaky_relu


REGISTRY["monomial"] = _monomial


def _rectified_monomial(k: Any = 2) -> Activation:
    """``max(0, u)**k``; degree 0 is the step and degree 1 the relu (their own names)."""
    k = _positive_int("k", k)
    if k <= 1:
        return REGISTRY[("step", "relu")[k]]()
    return Activation(f"rectified_monomial({k})", sp.Max(0, u) ** k, "max(0, u)**k", (("k", k),))


REGISTRY["rectified_monomial"] = _rectified_monomial


def _constant(name: str, value: Any, nonzero: bool = False) -> sp.Expr:
    """A real constant: a number (floats as rationals, like ``slope``) or an exact SymPy number."""
    if isinstance(value, sp.Expr) and not isinstance(value, sp.Number):
        if not value.is_number or value.is_real is not True or value.is_finite is not True:
            raise ActivationError(f"{name} must be a finite real number, got {sp.sstr(value)}")
        const = value
    else:
        const = _finite_number(name, value)
    if nonzero and const.is_zero:
        raise ActivationError(f"{name} must not be 0 (the activation would be a constant)")
    return const


def _affine_parts(
    base: Any = "identity", a: Any = 1, b: Any = 1, c: Any = 0, **base_params: Any
) -> tuple[Activation, sp.Expr, sp.Expr, sp.Expr]:
    """The checked parts ``(f, a, b, c)`` of ``a * f(b*u) + c``."""
    if not isinstance(base, str) or base not in REGISTRY or base == "affine":
        raise ActivationError(
            f"affine needs base=<registered activation name> other than 'affine', got "
            f"{base!r}; registered: {', '.join(n for n in registered_names() if n != 'affine')}"
        )
    try:
        inner = REGISTRY[base](**base_params)
    except TypeError as exc:
        raise ActivationError(f"bad parameters for the base activation {base!r}: {exc}") from None
    ca, cb, cc = _constant("a", a, True), _constant("b", b, True), _constant("c", c)
    if not cc.is_zero and sp.expand(inner.expr.subs(u, -u) + inner.expr) != 0:
        raise ActivationError(
            f"affine: a shift c = {c} needs an odd base activation (erf, sin, sign, identity, "
            f"tanh, odd monomials); {inner.name} is not odd"
        )
    return inner, ca, cb, cc


def affine_parts(act: Activation) -> tuple[Activation, sp.Expr, sp.Expr, sp.Expr]:
    """``(f, a, b, c)`` of an ``affine`` activation ``a * f(b*u) + c``, as SymPy numbers.

    Raises:
        ActivationError: ``act`` is not a registered ``affine`` activation.
    """
    if act.registered_base != "affine":
        raise ActivationError(f"{act.name!r} is not an affine activation a*f(b*u) + c")
    return _affine_parts(**dict(act.params))


def _shown(value: Any) -> str:
    """A parameter as text: SymPy floats as the shortest float repr, other SymPy numbers exactly."""
    if isinstance(value, sp.Float):
        return repr(float(value))
    return sp.sstr(value) if isinstance(value, sp.Basic) else str(value)


def _affine(
    base: Any = "identity", a: Any = 1, b: Any = 1, c: Any = 0, **base_params: Any
) -> Activation:
    """``a * f(b*u) + c`` for a registered activation ``f`` (``base``, with its parameters).

    The defaults give ``u`` itself (``f`` the identity, ``a = b = 1``, ``c = 0``).

    Its dual maps are those of ``f`` at the covariance scaled by ``b^2``
    (``ntksym.dual.families.affine``), so a scaled and shifted closed-form activation
    keeps its closed form. The shift ``c`` must be 0 unless ``f`` is odd (then
    ``E[f(b u)] = 0`` and the shift only adds ``c^2`` to the NNGP map).
    """
    inner, ca, cb, cc = _affine_parts(base, a, b, c, **base_params)
    expr = ca * inner.expr.subs(u, cb * u) + cc
    shown = ", ".join(f"{k}={_shown(v)}" for k, v in (("a", a), ("b", b), ("c", c)))
    params = (("base", base), ("a", a), ("b", b), ("c", c), *sorted(base_params.items()))
    return Activation(
        f"affine({inner.name}, {shown})", expr, f"a*f(b*u) + c with f = {inner.name}", params
    )


REGISTRY["affine"] = _affine


def registered_names() -> list[str]:
    """Names of the registered activations, sorted."""
    return sorted(REGISTRY)


def get_activation(spec: str | Activation | sp.Expr, **params: Any) -> Activation:
    """Turn a name, a user expression or a SymPy expression into an :class:`Activation`.

    Args:
        spec: A registered name (``"relu"``, ``"leaky_relu"``), an expression
            string in ``u`` (``"tanh(2*u)"``), a SymPy expression in one
            symbol, or an :class:`Activation` (returned unchanged).
        **params: Parameters of a registered family, e.g. ``slope=0.2`` for
            ``leaky_relu`` or ``k=3`` for ``monomial``.

    Returns:
        The activation.

    Raises:
        ActivationError: Unknown name, bad parameter, or an expression that is
            not a function of one variable.
        UnsafeExpressionError: The expression string contains something the
            allow-list parser refuses.

    Example:
        >>> get_activation("leaky_relu", slope=0.2).expr
        Max(0, u) + Min(0, u)/5
    """
    if isinstance(spec, Activation):
        if params:
            raise ActivationError("parameters can only be given with a registered name")
        return spec
    if isinstance(spec, sp.Expr):
        if params:
            raise ActivationError("parameters can only be given with a registered name")
        return _from_sympy(spec)
    if not isinstance(spec, str):
        raise ActivationError(
            f"an activation is a name, an expression string or a SymPy expression; got "
            f"{type(spec).__name__}"
        )
    key = spec.strip()
    if key in REGISTRY:
        try:
            return REGISTRY[key](**params)
        except TypeError as exc:
            raise ActivationError(f"bad parameters for activation {key!r}: {exc}") from None
    if params:
        raise ActivationError(
            f"unknown activation {key!r}; parameters are only accepted for the registered "
            f"families: {', '.join(registered_names())}"
        )
    expr = parse_expression(key)
    check_expression(expr, key)
    known = recognise(expr, {name: e for name, (e, _) in _SIMPLE.items()})
    if known is not None:
        name, found = known
        return REGISTRY[name](**found)
    return Activation(sp.sstr(expr), expr, f"user expression {key!r}")


def recognised_activation(expr: sp.Expr) -> Activation | None:
    """The registered activation that the expression in u ``expr`` is exactly, or None.

    The same recognition as for typed strings (``ntksym.activations.recognise``): ``0.1*tanh(u)``
    is ``affine(tanh, a=0.1)``, ``Max(0, u)`` is ``relu``.
    """
    known = recognise(expr, {name: e for name, (e, _) in _SIMPLE.items()})
    if known is None:
        return None
    name, found = known
    return REGISTRY[name](**found)


def _from_sympy(expr: sp.Expr) -> Activation:
    free = expr.free_symbols
    if len(free) > 1:
        raise ActivationError(
            f"an activation has one variable; {sp.sstr(expr)} has {sorted(map(str, free))}"
        )
    if free:
        (s,) = free
        expr = expr.subs(s, u)
    check_expression(expr, sp.sstr(expr))
    return Activation(sp.sstr(expr), expr, "SymPy expression")
