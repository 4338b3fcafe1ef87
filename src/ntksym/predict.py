r"""Infinite-width predictions under gradient descent on the squared loss.

For a network in the infinite-width limit, training by gradient flow on the
loss :math:`\mathcal L = \tfrac12 \lVert f(X) - Y\rVert^2` (a *sum* over the
training outputs, not a mean) with learning rate :math:`\eta` follows the
linearised dynamics (Jacot, Gabriel & Hongler 2018, §4-5; Lee et al. 2019,
"Wide Neural Networks of Any Depth Evolve as Linear Models Under Gradient
Descent", eq. (9)-(16)):

.. math::

    \frac{d f_t(X)}{dt} = -\eta\, \Theta\, (f_t(X) - Y),\qquad
    f_t(x) = f_0(x) + \Theta(x, X)\, \Theta^{-1} (I - e^{-\eta \Theta t}) (Y - f_0(X)),

with :math:`\Theta = \Theta(X, X)` the NTK. :math:`t` counts gradient-descent
steps of size :math:`\eta` (``t = k`` after ``k`` small steps). Over random
initialisations :math:`f_0` is a centred Gaussian process with the NNGP
:math:`K` as covariance, so the outputs are Gaussian with mean

.. math::

    \mu_t(x) = \Theta(x, X)\, \Theta^{-1} (I - e^{-\eta\Theta t})\, Y

and covariance (Lee et al. 2019, eq. (16)), with
:math:`A_t = \Theta^{-1}(I - e^{-\eta\Theta t})\,\Theta(X, x)`,

.. math::

    \Sigma_t(x, x') = K(x, x') + A_t(x)^{\mathsf T} K(X, X) A_t(x')
        - \big(A_t(x)^{\mathsf T} K(X, x') + K(x, X) A_t(x')\big).

``get="nngp"`` replaces the NTK by the NNGP in the dynamics, which trains only
the last layer; its covariance is then
:math:`K(x,x') - K(x,X) K^{-1}(I - e^{-2\eta K t}) K(X,x')` and at
:math:`t = \infty` both are the exact Gaussian-process posterior.

Conventions follow neural-tangents' ``predict.gradient_descent_mse_ensemble``
except for the loss normalisation: neural-tangents minimises the *mean*
:math:`\tfrac{1}{2 m}\lVert f - Y\rVert^2` over the ``m = Y.size`` outputs, so
its prediction at time ``t`` equals this module's at time ``t / m`` (or with
``learning_rate / m``). The ridge (``diag_reg``) is added to the train-train
kernel of the dynamics only, relative to the mean diagonal unless
``diag_reg_absolute=True``, as there.

Numerics: one symmetric eigendecomposition :math:`\Theta = V \Lambda V^{\mathsf T}`
per kernel, reused for every ``t``; the factor
:math:`(1 - e^{-\eta\lambda t})/\lambda` is evaluated as
``-expm1(-eta*lambda*t)/lambda`` (``eta*t`` for ``lambda = 0``), which keeps
every digit for small eigenvalues and small times.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from ntksym.errors import InputError
from ntksym.kernels import validate_inputs

__all__ = ["Gaussian", "PredictFn", "gradient_descent_mse", "psd_tolerance"]

GETS = ("ntk", "nngp")


class Gaussian(NamedTuple):
    """Mean and covariance of the outputs on the test points.

    Attributes:
        mean: shape ``t.shape + (N_test,) + Y.shape[1:]``.
        covariance: shape ``t.shape + (N_test, N_test)``, shared by every output
            column (the kernel is ``Theta (x) I`` over outputs).
    """

    mean: np.ndarray
    covariance: np.ndarray


PredictFn = Callable[..., "np.ndarray | Gaussian"]


def psd_tolerance(evals: np.ndarray) -> float:
    """Eigenvalues within this of zero count as zero: ``100 N eps max|lambda|``."""
    n = evals.shape[0]
    return 100.0 * n * np.finfo(np.float64).eps * float(np.max(np.abs(evals), initial=0.0))


def _check_real(name: str, value: Any, minimum: float, strict: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputError(f"{name} must be a finite real number, got {value!r}")
    v = float(value)
    bad = not math.isfinite(v) or (v <= minimum if strict else v < minimum)
    if bad:
        rel = ">" if strict else ">="
        raise InputError(f"{name} must be a finite real number {rel} {minimum:g}, got {value!r}")
    return v


def _check_targets(Y: Any, n: int) -> np.ndarray:
    try:
        arr = np.asarray(Y)
    except Exception as exc:  # ragged lists
        raise InputError(f"Y_train must be an array of real numbers: {exc}") from None
    if arr.dtype.kind not in "iuf":
        raise InputError(f"Y_train must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim not in (1, 2):
        raise InputError(f"Y_train must have shape (N,) or (N, k), got shape {arr.shape}")
    if arr.shape[0] != n:
        raise InputError(
            f"Y_train has {arr.shape[0]} rows but X_train has {n} training inputs; they must match"
        )
    arr = np.asarray(arr, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise InputError(
            f"Y_train contains {int(np.count_nonzero(~np.isfinite(arr)))} NaN or infinite value(s)"
        )
    return arr


def _check_times(t: Any) -> np.ndarray:
    if t is None:
        return np.asarray(np.inf)
    try:
        arr = np.asarray(t, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"t must be None, a real number or an array of them, got {t!r}") from None
    if np.any(np.isnan(arr)):
        raise InputError("t contains NaN; times must be >= 0 (np.inf or None for t = infinity)")
    if np.any(arr < 0):
        raise InputError(f"t must be >= 0, got minimum {float(arr.min())!r}")
    return arr


def _kernel_matrix(kern: Any, X1: np.ndarray, X2: np.ndarray | None, get: tuple) -> Any:
    out = kern(X1, X2, get=get)
    for g in get:
        m = np.asarray(getattr(out, g), dtype=np.float64)
        if not np.all(np.isfinite(m)):
            raise InputError(f"the {g.upper()} has NaN or infinite entries at these inputs")
    return out


class _Eigen(NamedTuple):
    evals: np.ndarray  # clipped at 0
    evecs: np.ndarray
    smallest: float  # before clipping
    tol: float


def gradient_descent_mse(
    kernel: Any,
    X_train: Any,
    Y_train: Any,
    learning_rate: float = 1.0,
    ridge: float = 0.0,
    *,
    diag_reg_absolute: bool = False,
    loss: str = "sum",
) -> PredictFn:
    r"""Outputs of infinitely wide networks trained by gradient flow on the squared loss.

    Args:
        kernel: A :class:`ntksym.kernels.Kernel` (from :func:`ntksym.kernel`), or any
            callable ``kernel(X1, X2, get=("nngp", "ntk"))`` returning an object with
            ``nngp`` and ``ntk`` Gram matrices.
        X_train: Training inputs, shape (N, d).
        Y_train: Targets, shape (N,) or (N, k).
        learning_rate: ``eta > 0``; the dynamics are ``df/dt = -eta Theta (f - Y)``.
        ridge: Diagonal regulariser ``>= 0`` added to the train-train kernel of the
            dynamics, in units of its mean diagonal (neural-tangents' ``diag_reg``).
        diag_reg_absolute: Whether ``ridge`` is in absolute units instead.
        loss: ``"sum"`` (default, unchanged from earlier releases): the loss
            ``||f - Y||^2 / 2``; ``"mean"``: neural-tangents' ``||f - Y||^2 / (2 m)`` with
            ``m = Y.size``, whose time ``t`` is the sum loss's ``t / m``.

    Returns:
        ``predict_fn(X_test=None, t=None, get="ntk", compute_cov=False)``: the mean
        over initialisations of the outputs at ``X_test`` (None means ``X_train``)
        at time(s) ``t`` (a scalar or array, ``>= 0``; None or ``np.inf`` for
        ``t = infinity``, i.e. kernel regression), shape ``t.shape + (N_test,) +
        Y.shape[1:]``; with ``compute_cov=True`` a :class:`Gaussian` (mean,
        covariance). ``get`` is ``"ntk"`` (gradient descent on every layer) or
        ``"nngp"`` (last layer only: Bayesian NNGP posterior at ``t = infinity``).

    Raises:
        InputError: bad shapes, NaN, non-positive learning rate, negative ridge; and,
            when ``predict_fn`` is called, a train-train kernel that is not positive
            semi-definite, or a singular one at ``t = infinity`` (the message gives
            the smallest eigenvalue and suggests a ridge).

    Example:
        >>> import numpy as np, ntksym
        >>> X = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
        >>> predict = gradient_descent_mse(ntksym.kernel("relu", 3, 0.1), X, [1.0, -1.0, 0.5])
        >>> np.round(predict(X, t=np.inf), 10)
        array([ 1. , -1. ,  0.5])
    """
    if not callable(kernel):
        raise InputError(
            f"kernel must be an ntksym.kernel(...) or a callable kernel(X1, X2, get), "
            f"got {type(kernel).__name__}"
        )
    Xtr, _ = validate_inputs(X_train)
    Y = _check_targets(Y_train, Xtr.shape[0])
    eta = _check_real("learning_rate", learning_rate, 0.0, strict=True)
    reg = _check_real("ridge", ridge, 0.0, strict=False)
    if loss not in ("sum", "mean"):
        raise InputError(
            f"loss must be 'sum' or 'mean' (neural-tangents' convention), got {loss!r}"
        )
    if loss == "mean":  # d/dt f = -(eta / m) Theta (f - Y)
        eta /= Y.size
    k_dd = _kernel_matrix(kernel, Xtr, None, ("nngp", "ntk"))
    train = {g: np.asarray(getattr(k_dd, g), dtype=np.float64) for g in GETS}
    return _Predictor(kernel, Xtr, Y, eta, reg, diag_reg_absolute, train)


class _Predictor:
    """The ``predict_fn`` of :func:`gradient_descent_mse` (eigen-decompositions cached)."""

    def __init__(
        self,
        kernel: Any,
        Xtr: np.ndarray,
        Y: np.ndarray,
        eta: float,
        reg: float,
        absolute: bool,
        train: dict[str, np.ndarray],
    ) -> None:
        self.kernel, self.Xtr, self.Y, self.eta = kernel, Xtr, Y, eta
        self.reg, self.absolute, self.train = reg, absolute, train
        self._eigen: dict[str, _Eigen] = {}

    def __call__(
        self,
        X_test: Any = None,
        t: Any = None,
        get: str = "ntk",
        compute_cov: bool = False,
    ) -> np.ndarray | Gaussian:
        """Mean (and covariance) of the outputs at ``X_test`` at time(s) ``t``."""
        if get not in GETS:
            raise InputError(f"get must be 'ntk' or 'nngp', got {get!r}")
        times = _check_times(t)
        Xtr, kernel = self.Xtr, self.kernel
        Xte = Xtr if X_test is None else validate_inputs(X_test)[0]
        if Xte.shape[1] != Xtr.shape[1]:
            raise InputError(f"X_test has {Xte.shape[1]} features but X_train has {Xtr.shape[1]}")
        if get not in self._eigen:
            self._eigen[get] = _eigen(self.train[get], self.reg, self.absolute, get)
        e = self._eigen[get]
        h = _flow_factor(e, self.eta, times, get)  # (T, N)
        k_td = _kernel_matrix(kernel, Xte, Xtr, ("nngp", "ntk"))
        KtdV = np.asarray(getattr(k_td, get), dtype=np.float64) @ e.evecs  # (Nte, N)
        Z = e.evecs.T @ self.Y.reshape(self.Y.shape[0], -1)  # (N, k)
        mean = np.einsum("ai,ti,ik->tak", KtdV, h, Z)
        mean = mean.reshape(times.shape + (Xte.shape[0],) + self.Y.shape[1:])
        if not compute_cov:
            return mean
        nngp_tt = np.asarray(_kernel_matrix(kernel, Xte, None, ("nngp",)).nngp)
        if get == "nngp":
            h2 = _flow_factor(e, self.eta, 2 * times, get)
            cov = nngp_tt[None] - np.einsum("ai,ti,bi->tab", KtdV, h2, KtdV)
        else:
            nngp_td = np.asarray(k_td.nngp)
            cov = _ntk_covariance(e, h, KtdV, nngp_td, self.train["nngp"], nngp_tt)
        cov = (cov + np.swapaxes(cov, 1, 2)) / 2
        cov = cov.reshape(times.shape + (Xte.shape[0], Xte.shape[0]))
        return Gaussian(mean, cov)


def _eigen(A: np.ndarray, reg: float, absolute: bool, g: str) -> _Eigen:
    """Eigen-decomposition of the (regularised) train-train kernel ``A``, checked PSD."""
    A = (A + A.T) / 2
    if reg:
        scale = reg if absolute else reg * float(np.trace(A)) / A.shape[0]
        A = A + scale * np.eye(A.shape[0])
    evals, evecs = np.linalg.eigh(A)
    tol = psd_tolerance(evals)
    smallest = float(evals[0])
    if smallest < -tol:
        raise InputError(
            f"the train-train {g.upper()} is not positive semi-definite: smallest "
            f"eigenvalue {smallest:.3e} (largest {float(evals[-1]):.3e}); gradient "
            "flow would diverge. Check the kernel, or add a ridge (ridge=1e-6 or more)"
        )
    return _Eigen(np.maximum(evals, 0.0), evecs, smallest, tol)


def _flow_factor(e: _Eigen, eta: float, times: np.ndarray, g: str) -> np.ndarray:
    """``(1 - exp(-eta lambda t)) / lambda`` for every time and eigenvalue."""
    lam = e.evals[None, :]
    tt = times.reshape(-1, 1)
    if np.any(np.isinf(tt)) and e.evals[0] <= e.tol:
        raise InputError(
            f"the train-train {g.upper()} is singular (smallest eigenvalue "
            f"{e.smallest:.3e}, tolerance {e.tol:.1e}), so t = infinity (kernel "
            "regression) is undefined; add a ridge (e.g. ridge=1e-6) or use a finite t"
        )
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        x = eta * lam * tt
        h = np.where(lam > 0, -np.expm1(-x) / np.where(lam > 0, lam, 1.0), eta * tt)
    return np.where(np.isinf(tt), 1.0 / np.where(lam > 0, lam, 1.0), h)


def _ntk_covariance(
    e: _Eigen,
    h: np.ndarray,
    KtdV: np.ndarray,
    nngp_td: np.ndarray,
    nngp_dd: np.ndarray,
    nngp_tt: np.ndarray,
) -> np.ndarray:
    """Covariance over initialisations of the NTK-trained outputs at every time."""
    B = KtdV.T  # V^T Theta(X, x): (N, Nte)
    C = e.evecs.T @ np.asarray(nngp_td, dtype=np.float64).T  # V^T K(X, x)
    Kn = e.evecs.T @ nngp_dd @ e.evecs
    hB = h[:, :, None] * B[None]  # (T, N, Nte)
    cross = np.einsum("tia,ib->tab", hB, C)
    cov = nngp_tt[None] + np.einsum("tia,ij,tjb->tab", hB, Kn, hB) - cross
    return cov - np.swapaxes(cross, 1, 2)
