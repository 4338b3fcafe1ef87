"""Dual kernels of activations: bivariate-Gaussian expectations.

For ``(u, v) ~ N(0, [[s11, s12], [s12, s22]])`` the NNGP/NTK recursion needs
two maps of an activation sigma:

* the *nngp map* ``E[sigma(u) sigma(v)]``,
* the *ntk map* (derivative map) ``E[sigma'(u) sigma'(v)]``.

:func:`closed_form` returns both as SymPy expressions in :data:`S11`,
:data:`S12`, :data:`S22`, derived by SymPy code in :mod:`ntksym.dual.derive`
(Isserlis pairings, the Gaussian moment generating function, polar
integration after whitening, Price's theorem) the first time they are asked
for, and cached. :func:`evaluate` computes both maps in float64 from
hand-arranged stable forms (no cancellation in ``1 - rho**2``, ``arctan2``
instead of ``arccos``), falling back to :func:`gauss_hermite` quadrature for
activations without a closed form.

Closed forms (each certified against mpmath quadrature in ``tests/test_dual.py``):

=================  =========================================================
activation         formula, source
=================  =========================================================
relu, leaky_relu,  arc-cosine kernels, Cho & Saul (2009); one form for
abs, identity      ``a*max(0,u) + b*min(0,u)``
step, sign         degree-0 arc-cosine kernel; derivative map is the
                   Gaussian density at the origin times the jump squared
polynomials        Isserlis (1918) / Wick pairings
exp, sin, cos,     Gaussian moment generating function (e.g. Rahimi &
gaussian           Recht 2007 for sin/cos)
erf                Williams (1997), "Computing with infinite networks"
gelu               Price's theorem twice from sigma'' = (2 - u^2) phi(u) and
                   an arcsine ansatz; published counterpart: Tsuchida,
                   Pearce, van der Heide, Roosta & Gallagher (AAAI 2021)
=================  =========================================================

Measured accuracy (``tests/test_dual.py``; covariances with variances 1e-8..1e8
and rho in {-1+1e-12, -0.7, 0, 0.3, 0.5, 1-1e-12, exactly +-1}): the SymPy
closed forms agree with independent mpmath quadratures to better than 1e-37
relative at 40 digits; :func:`evaluate` agrees with them to at most 4.3e-16
relative in float64 (for leaky ReLU, whose maps cross zero, relative to the
sum of the magnitudes of the two terms). GELU: closed form vs
``reference.dual_quadrature`` within 3.3e-33 at 40 digits (variances to 1e4, and 1e8 near
rho = +-1, where the reference is fast enough); float64 within 1.2e-15 on the grid and 4e-15
of the value or of the terms' magnitudes (near the zero crossing) on random covariances.
64-point :func:`gauss_hermite` is
within ~5e-9 for tanh/sigmoid/softplus/silu at variances <= 2, but only 6.9e-5
for the tanh derivative map at variance 2 with rho near 1 (poles of sech^2 at
u = i pi/2 limit the convergence): raise ``degree`` for such inputs.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from ntksym.activations import Activation, get_activation, u
from ntksym.dual import derive as _d
from ntksym.errors import ActivationError, InputError, NoClosedFormError

__all__ = [
    "S11",
    "S12",
    "S22",
    "DualMaps",
    "closed_form",
    "has_closed_form",
    "closed_form_names",
    "gauss_hermite",
    "trapezoid",
    "evaluate",
]

#: Variance of u.
S11 = _d.S11
#: Covariance of u and v.
S12 = _d.S12
#: Variance of v.
S22 = _d.S22

_CHO_SAUL = (
    "Y. Cho and L. K. Saul, Kernel methods for deep learning, NIPS 2009 (arc-cosine kernels)"
)
_ISSERLIS = (
    "L. Isserlis, On a formula for the product-moment coefficient of any order of a normal "
    "frequency distribution in any number of variables, Biometrika 12 (1918)"
)
_MGF = (
    "Gaussian moment generating function E[exp(b'w - w'Aw/2)] = det(I+Sigma A)^(-1/2) "
    "exp(b'(I+Sigma A)^(-1) Sigma b/2); for sin/cos see A. Rahimi and B. Recht, Random features "
    "for large-scale kernel machines, NIPS 2007"
)
_WILLIAMS = "C. K. I. Williams, Computing with infinite networks, NIPS 1997"
_TSUCHIDA = (
    "R. Tsuchida, T. Pearce, C. van der Heide, F. Roosta and M. Gallagher, Avoiding kernel "
    "fixed points: computing with ELU and GELU infinite networks, AAAI 2021 (published "
    "counterpart of the derived GELU kernel)"
)
_PRICE = (
    "R. Price, A useful theorem for nonlinear devices having Gaussian inputs, "
    "IRE Trans. Inf. Theory 4 (1958)"
)


@dataclass(frozen=True)
class DualMaps:
    """The two dual maps of an activation, as SymPy expressions.

    Attributes:
        activation: The activation sigma.
        nngp: E[sigma(u) sigma(v)] in :data:`S11`, :data:`S12`, :data:`S22`.
        ntk: E[sigma'(u) sigma'(v)] in the same symbols; ``None`` if sigma'
            has no closed form.
        method: How the maps were obtained, e.g. ``"derived: Isserlis"``.
        source: Citation for the formula (also when derived).
        derived: True if ntksym's SymPy code derived the maps, False if the
            formulas were entered from a cited source.
    """

    activation: Activation
    nngp: sp.Expr
    ntk: sp.Expr | None
    method: str
    source: str
    derived: bool

    def replace(self, **changes: Any) -> DualMaps:
        """Return a copy with some fields changed."""
        import dataclasses

        return dataclasses.replace(self, **changes)


# --------------------------------------------------------------------------- recognition
_NumericFn = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], tuple[Any, Any]]

#: Registered names whose members all have closed forms.
_CLOSED_REGISTERED = (
    "abs",
    "cos",
    "erf",
    "exp",
    "gaussian",
    "gelu",
    "identity",
    "leaky_relu",
    "monomial",
    "relu",
    "sign",
    "sin",
    "step",
)

_PIECEWISE_LINEAR: dict[str, tuple[int, int]] = {"relu": (1, 0), "abs": (1, -1), "identity": (1, 1)}
_JUMPS: dict[str, tuple[int, int]] = {"step": (1, 0), "sign": (1, -1)}


def _as_activation(activation: str | Activation | sp.Expr) -> Activation:
    return get_activation(activation)


def closed_form_names() -> list[str]:
    """Registered activation names (families) that have closed-form dual maps.

    User expressions that are polynomials in ``u``, or finite sums of
    ``c * u**j * exp(a*u - p*u**2/2)`` (including sin, cos, sinh, cosh of
    linear arguments), also get closed forms.
    """
    return sorted(_CLOSED_REGISTERED)


def has_closed_form(activation: str | Activation | sp.Expr) -> bool:
    """Whether :func:`closed_form` succeeds for ``activation``."""
    try:
        closed_form(activation)
    except NoClosedFormError:
        return False
    return True


def closed_form(activation: str | Activation | sp.Expr) -> DualMaps:
    """Closed-form dual maps of an activation, derived once and cached.

    Args:
        activation: A registered name, expression string, SymPy expression or
            :class:`~ntksym.activations.Activation`.

    Returns:
        The :class:`DualMaps`.

    Raises:
        NoClosedFormError: The activation has no closed form known to ntksym
            (the message lists the ones that have).
        ActivationError: The activation itself is invalid.

    Example:
        >>> closed_form("relu").method
        'derived: whitened polar integration'
    """
    act = _as_activation(activation)
    return _closed_form_cached(act.name, act.expr, act.params, act.description)[0]


@functools.lru_cache(maxsize=256)
def _closed_form_cached(
    name: str, expr: sp.Expr, params: tuple, description: str
) -> tuple[DualMaps, _NumericFn]:
    act = Activation(name, expr, description, params)
    base = act.registered_base
    if base in _PIECEWISE_LINEAR or base == "leaky_relu":
        a, b = _PIECEWISE_LINEAR.get(base, (1, None))
        if base == "leaky_relu":
            b = act.expr.coeff(sp.Min(0, u))
        return _piecewise_linear(act, sp.Integer(a), sp.Integer(b) if isinstance(b, int) else b)
    if base in _JUMPS:
        a, b = _JUMPS[base]
        return _jump(act, sp.Integer(a), sp.Integer(b))
    if base == "erf":
        return _erf(act)
    if base == "gelu":
        return _gelu(act)
    if base in ("exp", "sin", "cos", "gaussian"):
        nngp = _d.exp_quadratic_expectation(act.expr, act.expr)
        ntk = _d.exp_quadratic_expectation(act.derivative, act.derivative)
        maps = DualMaps(act, nngp, ntk, "derived: Gaussian MGF", _MGF, True)
        return maps, _MGF_NUMERIC[base]
    if act.expr.is_polynomial(u):
        nngp = _d.polynomial_expectation(act.expr, act.expr)
        ntk = _d.polynomial_expectation(act.derivative, act.derivative)
        maps = DualMaps(act, nngp, ntk, "derived: Isserlis", _ISSERLIS, True)
        return maps, _lambdified(nngp, ntk)
    if not act.expr.has(sp.Max, sp.Min, sp.Abs, sp.Heaviside, sp.sign, sp.Piecewise):
        nngp_d = _d.exp_quadratic_expectation(act.expr, act.expr, with_det=True)
        ntk_d = _d.exp_quadratic_expectation(act.derivative, act.derivative, with_det=True)
        if nngp_d is not None and ntk_d is not None:
            sub = {_d.DET: S11 * S22 - S12**2}
            nngp, ntk = sp.simplify(nngp_d.subs(sub)), sp.simplify(ntk_d.subs(sub))
            maps = DualMaps(act, nngp, ntk, "derived: Gaussian MGF", _MGF, True)
            return maps, _lambdified(nngp_d, ntk_d)
    raise NoClosedFormError(
        f"no closed-form dual kernel for activation {act.name!r}; closed forms exist for "
        f"{', '.join(closed_form_names())}, polynomials in u, and sums of "
        "u**j*exp(a*u - p*u**2/2) (sin, cos, exp, ...); use gauss_hermite() or evaluate() "
        "for the others"
    )


@functools.lru_cache(maxsize=4)
def _homogeneous_general(degree: int) -> sp.Expr:
    a, b = sp.symbols("a b", real=True)
    return sp.Lambda((a, b), _d.homogeneous(degree, a, b))


def _piecewise_linear(act: Activation, a: sp.Expr, b: sp.Expr) -> tuple[DualMaps, _NumericFn]:
    """a*max(0,u) + b*min(0,u): degree-1 arc-cosine kernel, derivative map of degree 0."""
    nngp = sp.simplify(_homogeneous_general(1)(a, b))
    ntk = sp.simplify(_homogeneous_general(0)(a, b))
    maps = DualMaps(act, nngp, ntk, "derived: whitened polar integration", _CHO_SAUL, True)
    fa, fb = float(a), float(b)
    return maps, lambda s11, s12, s22, det: (
        _pl_nngp(fa, fb, s11, s12, s22, det),
        _jump_nngp(fa, fb, s11, s12, s22, det),
    )


def _jump(act: Activation, a: sp.Expr, b: sp.Expr) -> tuple[DualMaps, _NumericFn]:
    """a*H(u) + b*H(-u): degree-0 arc-cosine kernel; derivative map by Price's theorem."""
    nngp = sp.simplify(_homogeneous_general(0)(a, b))
    ntk = sp.simplify(sp.diff(nngp, S12))
    maps = DualMaps(
        act,
        nngp,
        ntk,
        "derived: whitened polar integration (nngp), Price's theorem (ntk)",
        f"{_CHO_SAUL}; {_PRICE}",
        True,
    )
    fa, fb = float(a), float(b)
    jump2 = (fa - fb) ** 2

    def numeric(s11: Any, s12: Any, s22: Any, det: Any) -> tuple[Any, Any]:
        with np.errstate(divide="ignore"):
            ntk_val = jump2 / (2 * np.pi * np.sqrt(det))
        return _jump_nngp(fa, fb, s11, s12, s22, det), ntk_val

    return maps, numeric


def _erf(act: Activation) -> tuple[DualMaps, _NumericFn]:
    """erf: derivative map by the Gaussian MGF, nngp map by Price's theorem (erf is odd)."""
    ntk = _d.exp_quadratic_expectation(act.derivative, act.derivative)
    nngp = _d.price_integrate(ntk, sp.Integer(0))
    maps = DualMaps(
        act,
        nngp,
        ntk,
        "derived: Gaussian MGF (ntk), Price's theorem (nngp)",
        f"{_WILLIAMS}; {_PRICE}",
        True,
    )

    def numeric(s11: Any, s12: Any, s22: Any, det: Any) -> tuple[Any, Any]:
        # (1 + 2 s11)(1 + 2 s22) - 4 s12^2 without cancellation.
        g = np.sqrt(1 + 2 * (s11 + s22) + 4 * det)
        return (2 / np.pi) * np.arctan2(2 * s12, g), 4 / (np.pi * g)

    return maps, numeric


def _gelu(act: Activation) -> tuple[DualMaps, _NumericFn]:
    """GELU u Phi(u): Price's theorem twice from sigma'' = (2 - u^2) phi(u), arcsine ansatz.

    With c = (1+s11)(1+s22), r = sqrt(c - s12^2) and A = asin(s12/sqrt c) the
    derivation gives

        E[sigma sigma]   = s12/4 + (s12 A + (s11 s22 - 1) r/c + 1/r) / (2 pi),
        E[sigma' sigma'] = 1/4 + (A + s12 (2 + s11 + s22)/(c r) + s12/r^3) / (2 pi).
    """
    derived = _d.price_twice(act.expr, act.derivative, sp.diff(act.derivative, u))
    if derived is None:  # pragma: no cover - the registry's gelu always fits
        raise NoClosedFormError("GELU's second derivative is not of the Gaussian MGF form")
    nngp_r, ntk_r, c = derived
    maps = DualMaps(
        act,
        _d.arcsine_functions(nngp_r, c),
        _d.arcsine_functions(ntk_r, c),
        "derived: Price's theorem + ansatz integration",
        f"{_TSUCHIDA}; {_PRICE}; {_MGF}",
        True,
    )
    return maps, _gelu_numeric


def _gelu_numeric(s11: Any, s12: Any, s22: Any, det: Any) -> tuple[Any, Any]:
    """Stable float64 GELU maps (see :func:`_gelu` for the formulas).

    r^2 = 1 + s11 + s22 + det (no cancellation), psi = pi/2 + asin(s12/sqrt c)
    = arctan2(r, -s12) in [0, pi]. Times 2 pi the maps are

        nngp: s12 psi + s11 s22 r/c + s12^2/(c r)              (all terms >= 0 for s12 >= 0)
            = h(psi) - ((1+p)^2 - s12^2 + (1+p) det)/(c r)      (p = s11 + s22)
        ntk:  psi + s12 ((2 + p)/(c r) + 1/r^3),

    with h(psi) = sqrt(c) (sin psi - psi cos psi) = r + s12 psi >= 0 by the series of
    :func:`_h` for small psi. For s12 < 0 the nngp form with the smaller sum of term
    magnitudes is used: the second form avoids the cancellation of the first at
    large variances near rho = -1, the first that of the second at small variances.
    """
    p = s11 + s22
    a1, a2 = 1 + s11, 1 + s22
    r = np.sqrt(1 + p + det)
    sqrt_c = np.sqrt(a1) * np.sqrt(a2)
    psi = np.arctan2(r, -s12)
    two_pi = 2 * np.pi
    # form 1: s12 psi + pos
    pos = (s11 / a1) * (s22 / a2) * r + (s12 / a1) * (s12 / a2) / r
    lin = s12 * psi
    # form 2: h - neg
    h = _h(psi, sqrt_c, r, -s12)
    q = (1 + p) / (a1 * a2)
    neg = q * ((1 + p) / r) - (s12 / a1) * (s12 / a2) / r + q * (det / r)
    use_first = (s12 >= 0) | (np.abs(lin) + pos <= h + neg)
    nngp = np.where(use_first, lin + pos, h - neg) / two_pi
    ntk = (psi + s12 * ((2 + p) / (a1 * a2 * r) + 1 / (r * r * r))) / two_pi
    return nngp, ntk


def _lambdified(nngp: sp.Expr, ntk: sp.Expr) -> _NumericFn:
    args = (S11, S12, S22, _d.DET)
    f = sp.lambdify(args, nngp, modules="numpy")
    g = sp.lambdify(args, ntk, modules="numpy")
    complex_valued = nngp.has(sp.I) or ntk.has(sp.I)

    def numeric(s11: Any, s12: Any, s22: Any, det: Any) -> tuple[Any, Any]:
        if complex_valued:
            c = [np.asarray(x, dtype=complex) for x in (s11, s12, s22, det)]
            return np.real(f(*c)), np.real(g(*c))
        return f(s11, s12, s22, det), g(s11, s12, s22, det)

    return numeric


# --------------------------------------------------------------------------- stable numerics
def _h(x: Any, n: Any, sin_n: Any, cos_n: Any) -> Any:
    """Return n * (sin x - x cos x) for x in [0, pi], given n sin x and n cos x.

    Direct for x > 1 (at most a factor ~3 of cancellation); a Taylor series
    sum_{k>=1} (-1)^(k+1) 2k x^(2k+1) / (2k+1)! for x <= 1, where the direct
    form would cancel like x^3.
    """
    direct = sin_n - x * cos_n
    x2 = x * x
    series = np.zeros_like(x2)
    for k in range(11, 0, -1):
        series = series * x2 * (-1) + 2 * k / math.factorial(2 * k + 1)
    # series now holds sum_k (-1)^(k-1) c_k x^(2k-2); multiply by x^3.
    series = n * series * x2 * x
    return np.where(x > 1, direct, series)


def _angles(s12: Any, det: Any) -> tuple[Any, Any, Any]:
    """Angles theta = arccos(rho), psi = pi - theta, phi = arcsin(rho), without arccos."""
    root = np.sqrt(det)
    theta = np.arctan2(root, s12)
    psi = np.arctan2(root, -s12)
    phi = np.arctan2(s12, root)
    return theta, psi, phi


def _pl_nngp(a: float, b: float, s11: Any, s12: Any, s22: Any, det: Any) -> Any:
    """E[sigma sigma] for sigma = a max(0,u) + b min(0,u).

    Equals (n / 2 pi) [(a^2 + b^2) h(psi) - 2ab h(theta)] with h(x) = sin x - x cos x >= 0
    and n = sqrt(s11 s22); for ab <= 0 every term is non-negative. For ab > 0 the form
    ab s12 + (a-b)^2 n h(psi) / (2 pi) is used (exact for the identity).
    """
    theta, psi, _ = _angles(s12, det)
    n = np.sqrt(s11) * np.sqrt(s22)
    root = np.sqrt(det)
    h_psi = _h(psi, n, root, -s12)
    if a * b > 0:
        return a * b * s12 + (a - b) ** 2 * h_psi / (2 * np.pi)
    h_theta = _h(theta, n, root, s12)
    return ((a * a + b * b) * h_psi - 2 * a * b * h_theta) / (2 * np.pi)


def _jump_nngp(a: float, b: float, s11: Any, s12: Any, s22: Any, det: Any) -> Any:
    """E[sigma sigma] for sigma = a H(u) + b H(-u): ((a^2+b^2) psi + 2ab theta) / (2 pi).

    For ab >= 0 both terms are non-negative; for ab < 0 the equal form
    (a+b)^2/4 + (a-b)^2 arcsin(rho) / (2 pi) is used (exact zero at rho = 0 for sign).
    A zero variance pins u (or v) at 0, where SymPy's convention H(0) = 1/2 gives
    sigma(0) = (a+b)/2 and the value ((a+b)/2)^2.
    """
    theta, psi, phi = _angles(s12, det)
    if a * b >= 0:
        value = ((a * a + b * b) * psi + 2 * a * b * theta) / (2 * np.pi)
    else:
        value = (a + b) ** 2 / 4 + (a - b) ** 2 * phi / (2 * np.pi)
    return np.where((s11 == 0) | (s22 == 0), ((a + b) / 2) ** 2, value)


def _q_half(s11: Any, s12: Any, s22: Any, det: Any) -> Any:
    """(s11 + s22 - 2|s12|) / 2 without cancellation near |rho| = 1."""
    n = np.sqrt(s11) * np.sqrt(s22)
    denom = n + np.abs(s12)
    with np.errstate(invalid="ignore", divide="ignore"):
        gap = np.where(denom > 0, det / np.where(denom > 0, denom, 1.0), 0.0)
    return ((np.sqrt(s11) - np.sqrt(s22)) ** 2) / 2 + gap


def _sinsin(s11: Any, s12: Any, s22: Any, det: Any) -> Any:
    """E[sin u sin v] = exp(-(s11+s22)/2) sinh(s12), overflow-free."""
    return np.sign(s12) * np.exp(-_q_half(s11, s12, s22, det)) * (-np.expm1(-2 * np.abs(s12))) / 2


def _coscos(s11: Any, s12: Any, s22: Any, det: Any) -> Any:
    """E[cos u cos v] = exp(-(s11+s22)/2) cosh(s12), overflow-free."""
    return np.exp(-_q_half(s11, s12, s22, det)) * (1 + np.exp(-2 * np.abs(s12))) / 2


def _expexp(s11: Any, s12: Any, s22: Any, det: Any) -> tuple[Any, Any]:
    with np.errstate(over="ignore"):
        val = np.exp((s11 + s22) / 2 + s12)
    return val, val


def _gaussgauss(s11: Any, s12: Any, s22: Any, det: Any) -> tuple[Any, Any]:
    g = 1 + s11 + s22 + det  # (1+s11)(1+s22) - s12^2
    return 1 / np.sqrt(g), s12 / (g * np.sqrt(g))


_MGF_NUMERIC: dict[str, _NumericFn] = {
    "sin": lambda s11, s12, s22, det: (
        _sinsin(s11, s12, s22, det),
        _coscos(s11, s12, s22, det),
    ),
    "cos": lambda s11, s12, s22, det: (
        _coscos(s11, s12, s22, det),
        _sinsin(s11, s12, s22, det),
    ),
    "exp": _expexp,
    "gaussian": _gaussgauss,
}


# --------------------------------------------------------------------------- inputs
_SPLIT = 134217729.0  # 2**27 + 1, Veltkamp splitting constant
_DET_SLACK = 32 * np.finfo(float).eps


def _two_product(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dekker's error-free product: a*b = p + e exactly (barring overflow)."""
    p = a * b

    def split(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c = _SPLIT * x
        hi = c - (c - x)
        return hi, x - hi

    ah, al = split(a)
    bh, bl = split(b)
    e = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    return p, e


def _careful_det(s11: np.ndarray, s12: np.ndarray, s22: np.ndarray) -> np.ndarray:
    """s11*s22 - s12**2 with both products carried in double-double (few ulps relative)."""
    p1, e1 = _two_product(s11, s22)
    p2, e2 = _two_product(s12, s12)
    return (p1 - p2) + (e1 - e2)


def _prepare(
    s11: Any, s12: Any, s22: Any, det: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validate, broadcast and return (s11, s12, s22, det) as float64 arrays."""
    try:
        arrays = [np.asarray(x, dtype=np.float64) for x in (s11, s12, s22)]
        s11, s12, s22 = np.broadcast_arrays(*arrays)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"s11, s12, s22 must be real numbers or broadcastable arrays: {exc}"
        ) from None
    for name, x in (("s11", s11), ("s12", s12), ("s22", s22)):
        if not np.all(np.isfinite(x)):
            raise InputError(f"{name} contains NaN or infinite values; all entries must be finite")
    for name, x in (("s11", s11), ("s22", s22)):
        if np.any(x < 0):
            raise InputError(f"{name} is a variance and must be >= 0; got min {x.min():g}")
    with np.errstate(over="ignore"):
        scale = s11 * s22
    if not np.all(np.isfinite(scale)) or np.any(np.maximum(s11, s22) > 1e150):
        raise InputError("variances too large: s11 and s22 must be at most 1e150")
    if det is None:
        d = _careful_det(s11, s12, s22)
    else:
        try:
            d = np.broadcast_to(np.asarray(det, dtype=np.float64), s11.shape)
        except (TypeError, ValueError) as exc:
            raise InputError(f"det must broadcast against s11, s12, s22: {exc}") from None
        if not np.all(np.isfinite(d)):
            raise InputError("det contains NaN or infinite values")
    bad = d < -_DET_SLACK * scale
    if np.any(bad):
        i = np.unravel_index(np.argmax(bad), bad.shape) if bad.ndim else ()
        raise InputError(
            f"not a covariance: |s12| > sqrt(s11*s22) (s11={s11[i]!r}, s12={s12[i]!r}, "
            f"s22={s22[i]!r}, s11*s22 - s12**2 = {d[i]!r}); need s11*s22 - s12**2 >= 0"
        )
    return s11, s12, s22, np.maximum(d, 0.0)


# --------------------------------------------------------------------------- quadrature
@functools.lru_cache(maxsize=16)
def _hermite_rule(degree: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.hermite_e.hermegauss(degree)
    return x, w / math.sqrt(2 * math.pi)


def gauss_hermite(
    activation: str | Activation | sp.Expr,
    s11: Any,
    s12: Any,
    s22: Any,
    *,
    degree: int = 64,
    derivative: bool = False,
) -> np.ndarray:
    """E[sigma(u) sigma(v)] (or E[sigma' sigma']) by 2-D Gauss-Hermite quadrature.

    Uses the conditional decomposition ``u = sqrt(s11) x``,
    ``v = (s12 / sqrt(s11)) x + sqrt(det / s11) y`` with x, y independent
    standard normals and a ``degree``-point probabilists' Hermite rule in each.
    Accurate for smooth activations at moderate variance; it converges slowly
    across kinks, for saturating activations at large variance, and near
    rho = 1 for activations with poles close to the real axis (tanh: 7e-5 for
    the derivative map at variance 2).

    Args:
        activation: The activation.
        s11: Variance of u (array-like, broadcastable).
        s12: Covariance.
        s22: Variance of v.
        degree: Points per dimension (2..512).
        derivative: Integrate sigma' instead of sigma.

    Returns:
        float64 array of the broadcast shape.

    Raises:
        ActivationError: ``derivative=True`` for an activation whose
            derivative is a Dirac delta (step, sign).
        InputError: Invalid covariance or degree.
    """
    act = _as_activation(activation)
    if isinstance(degree, bool) or not isinstance(degree, (int, np.integer)):
        raise InputError(f"degree must be an integer, got {degree!r}")
    if not 2 <= degree <= 512:
        raise InputError(f"degree must be between 2 and 512, got {degree}")
    if derivative and act.has_distributional_derivative:
        raise ActivationError(
            f"the derivative of {act.name!r} is {act.derivative}, a Dirac delta: Gauss-Hermite "
            "cannot integrate it; use closed_form() or evaluate(), which know E[delta delta]"
        )
    fn = act.numpy_derivative if derivative else act.numpy
    s11, s12, s22, det = _prepare(s11, s12, s22, None)
    x, w = _hermite_rule(int(degree))
    shape = s11.shape
    a, c, d = (np.ravel(t) for t in (s11, s12, det))
    out = np.empty(a.shape, dtype=np.float64)
    chunk = max(1, 65536 // (degree * degree))
    for start in range(0, a.size, chunk):
        sl = slice(start, start + chunk)
        sa = np.sqrt(a[sl])
        safe = np.where(sa > 0, sa, 1.0)
        coef = np.where(sa > 0, c[sl] / safe, 0.0)
        cond = np.where(sa > 0, np.sqrt(d[sl]) / safe, np.sqrt(np.ravel(s22)[sl]))
        uu = sa[:, None] * x[None, :]
        vv = coef[:, None, None] * x[None, :, None] + cond[:, None, None] * x[None, None, :]
        fu = fn(uu)
        inner = np.asarray(fn(vv)) @ w
        out[sl] = np.sum(w[None, :] * fu * inner, axis=1)
    if not np.all(np.isfinite(out)):
        raise InputError(f"Gauss-Hermite quadrature of {act.name!r} overflowed at these variances")
    return out.reshape(shape)


#: Quadrature nodes z = k h cover |z| <= _Z_MAX (the Gaussian tail beyond is < 1e-18).
_Z_MAX = 9.0
#: Successive trapezoid results agreeing to this (relative to the Cauchy-Schwarz
#: bound sqrt(E[f(u)^2] E[f(v)^2])) are accepted; for an integrand analytic in a
#: strip the error of the finer rule is then about the square of it.
_TRAP_TOL = 1e-11
#: Finest step (about 2 * 9 / 2**-11 ... = 4096 nodes per dimension is never reached).
_TRAP_MAX_LEVELS = 12
_TRAP_MAX_NODES = 1200


def _trapezoid_once(
    f: Any, a: np.ndarray, b: np.ndarray, c: np.ndarray, h: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``E[f(u) f(v)]``, ``E[f(u)^2]``, ``E[f(v)^2]`` by the trapezoid rule with step ``h``.

    ``u = a z1``, ``v = b z1 + c z2`` with independent standard normals z1, z2.
    """
    k = int(math.ceil(_Z_MAX / h))
    z = h * np.arange(-k, k + 1, dtype=np.float64)
    w = h * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    m, n = a.size, z.size
    out = np.empty(m)
    chunk = max(1, (1 << 21) // (n * n))
    fu = f(a[:, None] * z[None, :])
    for s0 in range(0, m, chunk):
        sl = slice(s0, s0 + chunk)
        v = b[sl, None, None] * z[None, :, None] + c[sl, None, None] * z[None, None, :]
        inner = np.asarray(f(v), dtype=np.float64) @ w  # E over z2, shape (chunk, n)
        out[sl] = (np.asarray(fu[sl]) * inner) @ w
    uu = (np.asarray(fu) ** 2) @ w
    sv = np.sqrt(b * b + c * c)
    vv = (np.asarray(f(sv[:, None] * z[None, :])) ** 2) @ w
    return out, uu, vv


def _trapezoid_expectation(
    f: Any, s11: np.ndarray, s12: np.ndarray, s22: np.ndarray, det: np.ndarray, what: str
) -> np.ndarray:
    """``E[f(u) f(v)]`` for centred Gaussian pairs, by an adaptive trapezoid rule.

    The trapezoid rule on the Gaussian-weighted real line converges geometrically
    in 1/h for integrands analytic in a strip (Trefethen & Weideman, "The
    exponentially convergent trapezoidal rule", SIAM Review 2014); for tanh-like
    activations, whose poles sit at a distance ~ 1/sqrt(S) from the real axis,
    it needs far fewer nodes than Gauss-Hermite (which loses accuracy as S grows).
    The step is halved until two successive rules agree to ``_TRAP_TOL``.
    """
    shape = np.broadcast(s11, s12, s22, det).shape
    s11, s12, s22, det = (np.broadcast_to(x, shape).ravel() for x in (s11, s12, s22, det))
    pos = s11 > 0
    a = np.sqrt(s11)
    safe = np.where(pos, a, 1.0)
    b = np.where(pos, s12 / safe, 0.0)
    c = np.where(pos, np.sqrt(np.maximum(det, 0.0) / np.where(pos, s11, 1.0)), np.sqrt(s22))
    smax = float(max(np.max(s11, initial=0.0), np.max(s22, initial=0.0), 1.0))
    h = 0.5 / math.sqrt(smax)
    prev, _, _ = _trapezoid_once(f, a, b, c, h)
    for _ in range(_TRAP_MAX_LEVELS):
        h /= 2
        cur, uu, vv = _trapezoid_once(f, a, b, c, h)
        scale = np.sqrt(uu * vv) + np.abs(cur)
        gap = np.abs(cur - prev)
        if np.all(gap <= _TRAP_TOL * scale) or 2 * _Z_MAX / h > _TRAP_MAX_NODES:
            if not np.all(gap <= _TRAP_TOL * scale):
                worst = float(np.max(gap / np.where(scale > 0, scale, 1.0)))
                warnings.warn(
                    f"ntksym: quadrature of {what} did not converge (last two rules differ by "
                    f"{worst:.1e} relative); results may be inaccurate at these variances",
                    RuntimeWarning,
                    stacklevel=6,
                )
            return cur.reshape(shape)
        prev = cur
    return cur.reshape(shape)  # pragma: no cover - bounded by _TRAP_MAX_NODES


def trapezoid(
    activation: str | Activation | sp.Expr, s11: Any, s12: Any, s22: Any, *, det: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """Both dual maps by an adaptive Gaussian-weighted trapezoid rule (no closed form needed).

    See :func:`_trapezoid_expectation`; unlike :func:`gauss_hermite` it keeps
    full float64 accuracy for tanh-like activations at large variance.

    Args:
        activation: The activation (its derivative must have pointwise values).
        s11: Variance of u (array-like, broadcastable).
        s12: Covariance of u and v.
        s22: Variance of v.
        det: Optional accurately computed ``s11*s22 - s12**2 >= 0``.

    Returns:
        ``(E[sigma sigma], E[sigma' sigma'])`` as float64 arrays of the broadcast shape.
    """
    act = _as_activation(activation)
    s11, s12, s22, det = _prepare(s11, s12, s22, det)
    with np.errstate(over="ignore", invalid="ignore"):
        k = _trapezoid_expectation(act.numpy, s11, s12, s22, det, f"{act.name}")
        kd = _trapezoid_expectation(
            act.numpy_derivative, s11, s12, s22, det, f"the derivative of {act.name}"
        )
    return k, kd


# --------------------------------------------------------------------------- evaluate
def evaluate(
    activation: str | Activation | sp.Expr,
    s11: Any,
    s12: Any,
    s22: Any,
    *,
    det: Any = None,
    degree: int | None = 64,
) -> tuple[np.ndarray, np.ndarray]:
    """Both dual maps in float64: ``(E[sigma sigma], E[sigma' sigma'])``.

    Uses the closed form when there is one, in a hand-arranged numerically
    stable form (angles by ``arctan2`` of ``sqrt(det)`` and ``s12``, no
    ``1 - rho**2``), and :func:`gauss_hermite` otherwise.

    Args:
        activation: The activation.
        s11: Variance of u (array-like, broadcastable).
        s12: Covariance of u and v.
        s22: Variance of v.
        det: Optional accurately computed ``s11*s22 - s12**2 >= 0``; when
            omitted it is formed from the inputs with error-free products.
        degree: Gauss-Hermite points per dimension for the fallback, or None
            for the adaptive trapezoid rule (:func:`trapezoid`).

    Returns:
        Two float64 arrays of the broadcast shape. For step and sign the ntk
        map is ``+inf`` where ``det == 0`` (E[delta(u) delta(v)] diverges);
        ``exp`` may overflow to ``+inf`` for very large variances.

    Raises:
        InputError: Negative variance, NaN, or ``|s12| > sqrt(s11*s22)``
            beyond rounding.
    """
    act = _as_activation(activation)
    s11a, s12a, s22a, d = _prepare(s11, s12, s22, det)
    try:
        _, numeric = _closed_form_cached(act.name, act.expr, act.params, act.description)
    except NoClosedFormError:
        if degree is None:
            return trapezoid(act, s11a, s12a, s22a, det=d)
        nngp = gauss_hermite(act, s11a, s12a, s22a, degree=degree)
        ntk = gauss_hermite(act, s11a, s12a, s22a, degree=degree, derivative=True)
        return nngp, ntk
    nngp, ntk = numeric(s11a, s12a, s22a, d)
    shape = s11a.shape
    return (
        np.broadcast_to(np.asarray(nngp, dtype=np.float64), shape).copy(),
        np.broadcast_to(np.asarray(ntk, dtype=np.float64), shape).copy(),
    )
