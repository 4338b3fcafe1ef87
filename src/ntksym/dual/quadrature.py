"""Dual maps by quadrature, for activations without a closed form.

Gauss-Hermite of a chosen degree, and an adaptive trapezoid rule after a sinh-type map
(Trefethen & Weideman, SIAM Review 56, 2014) that keeps its accuracy at large variances.
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
from ntksym.dual.kinks import is_kinked
from ntksym.errors import ActivationError, InputError

__all__ = ["gauss_hermite", "trapezoid"]


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
    exceeds 1e-12). Others go to the trapezoid rule of :func:`_trapezoid_expectation`,
    which, unlike :func:`gauss_hermite`, keeps full float64 accuracy for tanh-like
    activations at large variance (and warns where it does not converge).

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
    """
    act = get_activation(activation)
    s11, s12, s22, det = prepare(s11, s12, s22, det)
    if is_kinked(act) and _numba_available():
        from ntksym.dual.kinked import kinked_maps

        return kinked_maps(act, s11, s12, s22, det, ntk=ntk)
    kd = None
    with np.errstate(over="ignore", invalid="ignore"):
        k = _trapezoid_expectation(act.numpy, s11, s12, s22, det, f"{act.name}")
        if ntk:
            kd = _trapezoid_expectation(
                act.numpy_derivative, s11, s12, s22, det, f"the derivative of {act.name}"
            )
    return k, kd
