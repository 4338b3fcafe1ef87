"""Dual maps by quadrature, for activations without a closed form.

Gauss-Hermite of a chosen degree, and the adaptive trapezoid rule after a sinh-type map
(Trefethen & Weideman, SIAM Review 56, 2014) of the generated quadrature modules, which keeps
its accuracy at large variances: one rule, written once in
``ntksym.codegen.runtime.numpy_quadrature`` (standalone, copied into the generated modules)
and used here through its ``bound`` copy for each activation.
"""

from __future__ import annotations

import functools
import math
import warnings
from typing import Any, Literal, overload

import numpy as np
import sympy as sp

from ntksym.activations import Activation, get_activation
from ntksym.dual.covariance import prepare
from ntksym.dual.growth import check_covariance
from ntksym.dual.kinks import is_kinked
from ntksym.errors import ActivationError, InputError

__all__ = ["gauss_hermite", "trapezoid", "trapezoid_prepared"]


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
        InputError: Invalid covariance or degree, or one at which the map is infinite
            (:func:`ntksym.dual.check_covariance`).
    """
    act = get_activation(activation)
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
    s11, s12, s22, det = prepare(s11, s12, s22, None)
    check_covariance(act, s11, s12, s22)
    x, w = _hermite_rule(int(degree))
    shape = s11.shape
    a, c, d = (np.ravel(t) for t in (s11, s12, det))
    out = np.empty(a.shape, dtype=np.float64)
    chunk = max(1, 65536 // (degree * degree))
    for start in range(0, a.size, chunk):
        sl = slice(start, start + chunk)
        sa, coef, cond = _conditional(a[sl], c[sl], np.ravel(s22)[sl], d[sl])
        uu = sa[:, None] * x[None, :]
        vv = coef[:, None, None] * x[None, :, None] + cond[:, None, None] * x[None, None, :]
        fu = fn(uu)
        inner = np.asarray(fn(vv)) @ w
        out[sl] = np.sum(w[None, :] * fu * inner, axis=1)
    if not np.all(np.isfinite(out)):
        raise InputError(f"Gauss-Hermite quadrature of {act.name!r} overflowed at these variances")
    return out.reshape(shape)


def _conditional(
    s11: np.ndarray, s12: np.ndarray, s22: np.ndarray, det: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(a, b, c)`` with ``u = a z1``, ``v = b z1 + c z2`` for independent standard normals.

    ``a = sqrt(s11)``, ``b = s12 / a``, ``c = sqrt(det / s11)``; at ``s11 = 0`` (u = 0),
    ``b = 0`` and ``c = sqrt(s22)``.
    """
    a = np.sqrt(s11)
    pos = a > 0
    safe = np.where(pos, a, 1.0)
    b = np.where(pos, s12 / safe, 0.0)
    c = np.where(pos, np.sqrt(np.maximum(det, 0.0)) / safe, np.sqrt(s22))
    return a, b, c


@functools.lru_cache(maxsize=32)
def _rule(act: Activation, ntk: bool) -> Any:
    """The generated modules' adaptive rule bound to ``act`` (see ``numpy_quadrature.bound``).

    Without ``ntk`` the derivative is the zero function: not evaluated, and always converged.
    """
    from ntksym.codegen.runtime import numpy_quadrature

    dact = act.numpy_derivative if ntk else np.zeros_like
    return numpy_quadrature.bound(act.numpy, dact)


def _numba_available() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


@overload
def trapezoid(
    activation: str | Activation | sp.Expr,
    s11: Any,
    s12: Any,
    s22: Any,
    *,
    det: Any = None,
    ntk: Literal[True] = True,
) -> tuple[np.ndarray, np.ndarray]: ...


@overload
def trapezoid(
    activation: str | Activation | sp.Expr,
    s11: Any,
    s12: Any,
    s22: Any,
    *,
    det: Any = None,
    ntk: bool,
) -> tuple[np.ndarray, np.ndarray | None]: ...


def trapezoid(
    activation: str | Activation | sp.Expr,
    s11: Any,
    s12: Any,
    s22: Any,
    *,
    det: Any = None,
    ntk: bool = True,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Both dual maps by an adaptive Gaussian-weighted quadrature (no closed form needed).

    Kinked activations with a pointwise derivative (:func:`ntksym.dual.kinks.is_kinked`)
    go, when Numba is installed, to the kink-aware rule of :mod:`ntksym.dual.kinked`
    (split at the kinks: accurate to about 1e-15, with a warning where its error estimate
    exceeds 1e-12). Others go to the rule of the generated quadrature modules
    (``ntksym.codegen.runtime.numpy_quadrature``: per pair, an adaptive trapezoid rule
    after a sinh-type map, step halved until two rules agree), which, unlike
    :func:`gauss_hermite`, keeps full float64 accuracy for tanh-like activations at
    large variance.

    Args:
        activation: The activation (its derivative must have pointwise values).
        s11: Variance of u (array-like, broadcastable).
        s12: Covariance of u and v.
        s22: Variance of v.
        det: Optional accurately computed ``s11*s22 - s12**2 >= 0``.
        ntk: Whether to compute the derivative map (with False it is not evaluated at all,
            and None is returned in its place).

    Returns:
        ``(E[sigma sigma], E[sigma' sigma'])`` as float64 arrays of the broadcast shape.

    Raises:
        InputError: Invalid covariance, or one at which the maps are infinite
            (:func:`ntksym.dual.check_covariance`).
    """
    act = get_activation(activation)
    prepared = prepare(s11, s12, s22, det)
    check_covariance(act, *prepared[:3])
    return trapezoid_prepared(act, s11, s22, prepared, ntk=ntk)


def trapezoid_prepared(
    act: Activation,
    v11: Any,
    v22: Any,
    prepared: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    *,
    ntk: bool = True,
) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`trapezoid` on a covariance that ``prepare`` and ``check_covariance`` passed.

    Args:
        act: The activation.
        v11: The variances of u as given (a column of rows, say): the Mehler series takes
            each variance's coefficients once, where a broadcast copy would take them per
            entry.
        v22: The same for v.
        prepared: ``ntksym.dual.covariance.prepare``'s ``(s11, s12, s22, det)``.
        ntk: Whether to compute the derivative map.
    """
    s11, s12, s22, det = prepared
    v11, v22 = np.asarray(v11, dtype=np.float64), np.asarray(v22, dtype=np.float64)
    if is_kinked(act):
        if _numba_available():
            from ntksym.dual.kinked import kinked_maps

            return kinked_maps(act, s11, s12, s22, det, ntk=ntk)
        warnings.warn(
            f"ntksym: {act.name} has kinks at {list(act.kinks)}; without Numba its dual maps "
            "come from the smooth rule, which converges slowly across a kink (install numba "
            "for the kink-aware rule)",
            RuntimeWarning,
            stacklevel=3,  # (the caller of trapezoid or of dual.evaluate)
        )
    shape = np.broadcast(s11, s12, s22, det).shape
    with np.errstate(over="ignore", invalid="ignore"):
        k, kd = _rule(act, ntk).pair_maps(v11, s12, v22, det)
    return np.reshape(k, shape), (np.reshape(kd, shape) if ntk else None)
