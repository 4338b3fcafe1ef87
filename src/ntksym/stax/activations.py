"""The activations of neural-tangents' ``stax``, as ntksym activations.

Each factory builds an :class:`~ntksym.activations.Activation` through ntksym's registry
or its allow-list expression parser (numbers enter as their float ``repr``; nothing is
evaluated), so that the typed forms (``a*erf(b*u) + c``, ``a*min(u, 0) + b*max(u, 0)``,
...) are recognised and keep their stable closed-form dual maps. The meanings are
neural-tangents 0.6.5's:

========================  =============================================
``Erf(a, b, c)``          ``a erf(b u) + c``
``Sin(a, b, c)``          ``a sin(b u + c)`` (``c`` is a phase)
``Cos(a, b, c)``          ``a cos(b u + c)``
``Exp(a, b)``             ``a exp(b u)``
``Gaussian(a, b)``        ``a exp(b u^2)`` (``b < 0``)
``ABRelu(a, b)``          ``a min(u, 0) + b max(u, 0)``
``LeakyRelu(alpha)``      ``ABRelu(alpha, 1)``
``Sigmoid_like()``        ``Erf(0.5, 1/2.4020563531719796, 0.5)``
``Rbf(gamma)``            ``sqrt(2) sin(sqrt(2 gamma) u + pi/4)``
``Gelu()``                ``u Phi(u)``; ``approximate=True``: the tanh form
``Sign()``                ``sign(u)``; no gradient passes (NTK restarts at 0)
========================  =============================================
"""

from __future__ import annotations

import math
from typing import Any

import sympy as sp

from ntksym.activations import Activation, get_activation
from ntksym.architecture.description import Nonlinearity, finite_real, positive_int
from ntksym.errors import ActivationError, InputError
from ntksym.stax.layers import Layer, layer_of

__all__ = [
    "Relu",
    "LeakyRelu",
    "ABRelu",
    "Abs",
    "Erf",
    "Sigmoid_like",
    "Gelu",
    "Sin",
    "Cos",
    "Exp",
    "Gaussian",
    "Sign",
    "Monomial",
    "RectifiedMonomial",
    "Rbf",
    "Elementwise",
]


def _r(name: str, value: Any) -> str:
    return repr(finite_real(name, value))


def _layer(act: Activation, label: str) -> Layer:
    """The Layer of an activation; a derivative with a Dirac delta must vanish elsewhere."""
    zero_ntk = False
    if act.has_distributional_derivative:
        regular = act.derivative.replace(sp.DiracDelta, lambda *args: sp.S.Zero)
        if sp.simplify(regular) != 0:
            raise ActivationError(
                f"{label}: the derivative of {act.name!r} has a Dirac delta and a nonzero "
                "regular part; stax supports step-like activations (derivative zero almost "
                "everywhere, as sign) or activations without jumps"
            )
        zero_ntk = True
    return layer_of(Nonlinearity(act, label, zero_ntk))


def Relu(do_stabilize: bool = False) -> Layer:  # noqa: N802 - neural-tangents' names
    """``max(u, 0)``. ``do_stabilize`` is accepted for compatibility (ntksym is stable)."""
    return _layer(get_activation("relu"), "Relu()")


def ABRelu(a: float, b: float, do_stabilize: bool = False) -> Layer:  # noqa: N802
    """``a min(u, 0) + b max(u, 0)``."""
    expr = f"({_r('ABRelu a', a)})*min(u, 0) + ({_r('ABRelu b', b)})*max(u, 0)"
    return _layer(get_activation(expr), f"ABRelu({float(a)!r}, {float(b)!r})")


def LeakyRelu(alpha: float, do_stabilize: bool = False) -> Layer:  # noqa: N802
    """``alpha min(u, 0) + max(u, 0)``."""
    act = get_activation(f"({_r('LeakyRelu alpha', alpha)})*min(u, 0) + max(u, 0)")
    return _layer(act, f"LeakyRelu({float(alpha)!r})")


def Abs(do_stabilize: bool = False) -> Layer:  # noqa: N802
    """``|u|``."""
    return _layer(get_activation("abs"), "Abs()")


def Erf(a: float = 1.0, b: float = 1.0, c: float = 0.0) -> Layer:  # noqa: N802
    """``a erf(b u) + c``; the defaults are ``erf`` itself (its committed generated kernel)."""
    fa, fb = finite_real("Erf a", a), finite_real("Erf b", b)
    if (fa, fb, c) == (1.0, 1.0, 0.0):
        act = get_activation("erf")
    else:
        act = get_activation("affine", base="erf", a=fa, b=fb, c=c)
    return _layer(act, f"Erf({float(a)!r}, {float(b)!r}, {float(c)!r})")


def Sigmoid_like() -> Layer:  # noqa: N802
    """``0.5 erf(u / 2.4020563531719796) + 0.5``, neural-tangents' sigmoid stand-in."""
    return Erf(a=0.5, b=1 / 2.4020563531719796, c=0.5)


def Gelu(approximate: bool = False) -> Layer:  # noqa: N802
    """``u Phi(u)``, or with ``approximate`` ``u (1 + tanh(sqrt(2/pi) (u + 0.044715 u^3))) / 2``."""
    if approximate:
        c = repr(math.sqrt(2 / math.pi))
        act = get_activation(f"0.5*u*(1 + tanh({c}*(u + 0.044715*u**3)))")
        return _layer(act, "Gelu(approximate=True)")
    return _layer(get_activation("gelu"), "Gelu()")


def Sin(a: float = 1.0, b: float = 1.0, c: float = 0.0) -> Layer:  # noqa: N802
    """``a sin(b u + c)``."""
    expr = f"({_r('Sin a', a)})*sin(({_r('Sin b', b)})*u + ({_r('Sin c', c)}))"
    return _layer(get_activation(expr), f"Sin({float(a)!r}, {float(b)!r}, {float(c)!r})")


def Cos(a: float = 1.0, b: float = 1.0, c: float = 0.0) -> Layer:  # noqa: N802
    """``a cos(b u + c)`` (neural-tangents writes it ``Sin(a, b, c + pi/2)``)."""
    expr = f"({_r('Cos a', a)})*cos(({_r('Cos b', b)})*u + ({_r('Cos c', c)}))"
    return _layer(get_activation(expr), f"Cos({float(a)!r}, {float(b)!r}, {float(c)!r})")


def Exp(a: float = 1.0, b: float = 1.0) -> Layer:  # noqa: N802
    """``a exp(b u)``."""
    expr = f"({_r('Exp a', a)})*exp(({_r('Exp b', b)})*u)"
    return _layer(get_activation(expr), f"Exp({float(a)!r}, {float(b)!r})")


def Gaussian(a: float = 1.0, b: float = -1.0) -> Layer:  # noqa: N802
    """``a exp(b u^2)`` with ``b < 0`` (for ``b >= 0`` its moments diverge)."""
    bb = finite_real("Gaussian b", b)
    if bb >= 0:
        raise InputError(f"Gaussian b must be < 0 (a exp(b u^2) decays), got {b!r}")
    expr = f"({_r('Gaussian a', a)})*exp(({bb!r})*u**2)"
    return _layer(get_activation(expr), f"Gaussian({float(a)!r}, {bb!r})")


def Sign() -> Layer:  # noqa: N802
    """``sign(u)``: its derivative is zero almost everywhere, so the NTK restarts at 0."""
    return _layer(get_activation("sign"), "Sign()")


def Monomial(degree: int) -> Layer:  # noqa: N802
    """``u ** degree``."""
    k = positive_int("Monomial degree", degree, minimum=0)
    return _layer(get_activation("monomial", k=k), f"Monomial({k})")


def RectifiedMonomial(degree: int) -> Layer:  # noqa: N802
    """``max(u, 0) ** degree``: the step for degree 0, the relu for 1, arc-cosine kernels."""
    k = positive_int("RectifiedMonomial degree", degree, minimum=0)
    return _layer(get_activation("rectified_monomial", k=k), f"RectifiedMonomial({k})")


def Rbf(gamma: float = 1.0) -> Layer:  # noqa: N802
    """``sqrt(2) sin(sqrt(2 gamma) u + pi/4)`` (random Fourier features of an RBF kernel)."""
    g = finite_real("Rbf gamma", gamma, minimum=0.0)
    expr = f"{math.sqrt(2)!r}*sin({math.sqrt(2 * g)!r}*u + {math.pi / 4!r})"
    return _layer(get_activation(expr), f"Rbf({g!r})")


def Elementwise(expression: str) -> Layer:  # noqa: N802
    """Any activation given as an ntksym expression in ``u`` (e.g. ``"tanh(2*u)"``).

    The string goes through ntksym's allow-list parser (never ``eval``). Activations with
    closed-form dual maps use them; the others are integrated numerically.
    """
    if not isinstance(expression, str):
        raise InputError(
            f"Elementwise takes an expression string in u, e.g. 'tanh(u)', got "
            f"{type(expression).__name__}"
        )
    act = get_activation(expression)
    return _layer(act, f"Elementwise({expression!r})")
