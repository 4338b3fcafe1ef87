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
exp, sin, cos,     Gaussian moment generating function, derived here; the
gaussian           same forms are in Neural Tangents (Novak et al. 2020)
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
from typing import Any

import numpy as np
import sympy as sp

from ntksym.activations import Activation, get_activation
from ntksym.dual import derive as _d
from ntksym.dual.covariance import prepare, prepare_gap
from ntksym.dual.families import closed_form_names, family_of
from ntksym.dual.family import DualMaps, NumericFn
from ntksym.dual.growth import check_covariance, describe_growth, growth_rate
from ntksym.dual.quadrature import gauss_hermite, trapezoid, trapezoid_prepared
from ntksym.errors import NoClosedFormError

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
    "growth_rate",
    "describe_growth",
    "check_covariance",
]

#: Variance of u.
S11 = _d.S11
#: Covariance of u and v.
S12 = _d.S12
#: Variance of v.
S22 = _d.S22


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
    act = get_activation(activation)
    return _closed_form_cached(act.name, act.expr, act.params, act.description)[0]


def _closed_form_cached(
    name: str, expr: sp.Expr, params: tuple, description: str
) -> tuple[DualMaps, NumericFn]:
    derived = _derived(name, expr, params, description)
    if derived is None:
        raise NoClosedFormError(
            f"no closed-form dual kernel for activation {name!r}; closed forms exist for "
            f"{', '.join(closed_form_names())}, polynomials in u, and sums of "
            "u**j*exp(a*u - p*u**2/2) (sin, cos, exp, ...); use gauss_hermite() or evaluate() "
            "for the others"
        )
    return derived


@functools.lru_cache(maxsize=256)
def _derived(
    name: str, expr: sp.Expr, params: tuple, description: str
) -> tuple[DualMaps, NumericFn] | None:
    """The family's derivation of the activation, or None.

    Cached either way: a failed derivation costs tens of milliseconds of SymPy, and the
    layer maps of a described network ask once per block of rows.
    """
    act = Activation(name, expr, description, params)
    family = family_of(act)
    return None if family is None else family.derive(act)


# --------------------------------------------------------------------------- evaluate
def evaluate(
    activation: str | Activation | sp.Expr,
    s11: Any,
    s12: Any,
    s22: Any,
    *,
    det: Any = None,
    degree: int | None = 64,
    root_gap: Any = None,
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
        root_gap: Optional accurately computed ``sqrt(s11) - sqrt(s22)``, which the
            stable closed forms read (a map of ``sin(u) + u`` reads ``U^2 / 2`` beside
            a near pair's small gap); when omitted it is the difference of the rounded
            roots, ``eps sqrt(s)`` off.

    Returns:
        Two float64 arrays of the broadcast shape. For step and sign the ntk
        map is ``+inf`` where ``det == 0`` (E[delta(u) delta(v)] diverges);
        ``exp`` may overflow to ``+inf`` for very large variances.

    Raises:
        InputError: Negative variance, NaN, or ``|s12| > sqrt(s11*s22)``
            beyond rounding; a ``root_gap`` that is not ``sqrt(s11) - sqrt(s22)``; or a
            covariance at which the maps are infinite (sigma grows like ``exp(a u^2)``
            and the covariance's largest eigenvalue reaches ``1/(2a)``, see
            :func:`growth_rate`), instead of the finite numbers the formulas or the
            quadrature would give there.
    """
    act = get_activation(activation)
    prepared = prepare(s11, s12, s22, det)
    s11a, s12a, s22a, d = prepared
    gap = prepare_gap(root_gap, s11a, s22a)
    check_covariance(act, s11a, s12a, s22a)
    try:
        _, numeric = _closed_form_cached(act.name, act.expr, act.params, act.description)
    except NoClosedFormError:
        if degree is None:  # (the variances as given: see trapezoid)
            k, kd = trapezoid_prepared(act, s11, s22, prepared)
            assert kd is not None
            return k, kd
        nngp = gauss_hermite(act, s11a, s12a, s22a, degree=degree)
        ntk = gauss_hermite(act, s11a, s12a, s22a, degree=degree, derivative=True)
        return nngp, ntk
    nngp, ntk = numeric(s11a, s12a, s22a, d, gap)
    shape = s11a.shape
    return (
        np.broadcast_to(np.asarray(nngp, dtype=np.float64), shape).copy(),
        np.broadcast_to(np.asarray(ntk, dtype=np.float64), shape).copy(),
    )
