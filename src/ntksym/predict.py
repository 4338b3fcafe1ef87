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

Conventions are neural-tangents' (``gradient_descent_mse_ensemble``, ``gp_inference``,
``max_learning_rate``) except that the default loss is the sum; ``loss="mean"`` takes
its :math:`\tfrac{1}{2 m}\lVert f - Y\rVert^2` (``m = Y.size``: time ``t`` there is
``t / m`` here). The ridge is relative to the mean diagonal unless absolute, as there.

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

__all__ = [
    "Gaussian",
    "PredictFn",
    "gp_inference",
    "gradient_descent_mse",
    "max_learning_rate",
    "psd_tolerance",
]

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


def max_learning_rate(ntk_train_train: Any, y_train_size: int | None = None) -> float:
    """The learning rate above which gradient descent on the linearised network diverges.

    For the mean loss ``||f - Y||^2 / (2 m)`` (``m`` training outputs), a step
    ``f <- f - (eta / m) Theta (f - Y)`` contracts exactly when ``eta < 2 m / lambda_max``,
    as neural-tangents' ``max_learning_rate`` (no momentum). Sum loss: ``2 / lambda_max``.

    Args:
        ntk_train_train: The train-train NTK, shape (N, N).
        y_train_size: ``m = Y_train.size``; None means N (one output per input).

    Returns:
        ``2 m / lambda_max``.

    Raises:
        InputError: A matrix that is not square, finite and positive; a bad size.
    """
    A = np.asarray(ntk_train_train, dtype=np.float64)
    if A.ndim != 2 or A.shape[0] != A.shape[1] or not np.all(np.isfinite(A)):
        raise InputError(f"ntk_train_train must be a finite square matrix, got shape {A.shape}")
    m = A.shape[0] if y_train_size is None else y_train_size
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
        raise InputError(f"y_train_size must be a positive integer or None, got {m!r}")
    top = float(np.linalg.eigvalsh((A + A.T) / 2)[-1])
    if top > 0:
        return 2.0 * int(m) / top
    raise InputError(f"the NTK's largest eigenvalue is {top:.3e}; it must be > 0")


def gp_inference(
    k_train_train: Any, Y_train: Any, diag_reg: float = 0.0, *, diag_reg_absolute: bool = False
) -> Callable[..., Any]:
    """Gaussian-process posterior of the NNGP, and the infinite-time NTK ensemble.

    As neural-tangents' ``predict.gp_inference``: ``"nngp"`` is the Bayesian network's exact
    posterior, ``"ntk"`` an infinite ensemble trained by gradient flow to ``t = infinity``
    (:func:`gradient_descent_mse`). ``diag_reg`` is in units of the mean diagonal.

    Args:
        k_train_train: The train-train kernels: ``k(X, get=("nngp", "ntk"))`` (anything with
            ``nngp`` and ``ntk`` attributes), or one (N, N) matrix (then ``get`` may only
            name it as ``"nngp"`` and the NTK covariance is unavailable).
        Y_train: Targets, shape (N,) or (N, k).
        diag_reg: Regulariser ``>= 0`` added to the train-train diagonal.
        diag_reg_absolute: ``diag_reg`` in absolute units.

    Returns:
        ``predict_fn(get="nngp", k_test_train=None, k_test_test=None)``: the posterior mean
        at the test points, shape (N_test,) + Y.shape[1:], and with ``k_test_test`` a
        :class:`Gaussian` (mean, covariance (N_test, N_test)). ``k_test_train`` as
        ``k(X_test, X, get=("nngp", "ntk"))``; None predicts on the training set
        (``N(Y, 0)``). The NTK covariance needs both kernels in every argument;
        ``k_test_test`` needs only the NNGP. A tuple ``get`` returns a dict.

    Raises:
        InputError: Bad shapes, a negative ``diag_reg``, or a regularised train-train
            kernel that is not positive definite (the message suggests a ``diag_reg``).
    """
    both = hasattr(k_train_train, "nngp")
    train = {g: _field(k_train_train, g) for g in GETS if both or g == "nngp"}
    n = train["nngp"].shape[0]
    Y = _check_targets(Y_train, n)
    reg = _check_real("diag_reg", diag_reg, 0.0, strict=False)
    chol = {g: _cholesky(A, reg, diag_reg_absolute, g) for g, A in train.items()}

    def solve(g: str, B: np.ndarray) -> np.ndarray:  # (A + reg I)^-1 B by the factor L L^T
        return np.linalg.solve(chol[g].T, np.linalg.solve(chol[g], B))

    def one(g: str, k_td: Any, k_tt: Any) -> np.ndarray | Gaussian:
        if g not in chol:
            raise InputError(f"get={g!r} needs the train-train {g.upper()}; pass k(X, get=both)")
        if k_td is None:  # the training set: exactly the targets, no variance
            return Y if k_tt is None else Gaussian(Y, np.zeros((n, n)))
        td = _field(k_td, g)
        mean = td @ solve(g, Y)
        if k_tt is None:
            return mean
        nn_td, tt, A = _field(k_td, "nngp"), _field(k_tt, "nngp"), solve(g, td.T)
        if g == "nngp":
            cov = tt - td @ A
        else:  # the ensemble trained by gradient flow to t = infinity (Lee et al. eq. 16)
            cross = nn_td @ A
            cov = tt + A.T @ train["nngp"] @ A - cross - cross.T
        return Gaussian(mean, (cov + cov.T) / 2)

    def predict_fn(get: Any = "nngp", k_test_train: Any = None, k_test_test: Any = None) -> Any:
        gets = (get,) if isinstance(get, str) else tuple(get)
        if not gets or any(g not in GETS for g in gets):
            raise InputError(f"get must be 'nngp', 'ntk' or a tuple of them, got {get!r}")
        out = {g: one(g, k_test_train, k_test_test) for g in gets}
        return out[get] if isinstance(get, str) else out

    return predict_fn


def _field(k: Any, g: str) -> np.ndarray:
    """The ``g`` kernel of a kernels tuple, or the matrix itself (as the NNGP)."""
    m = getattr(k, g, None) if hasattr(k, "nngp") else (k if g == "nngp" else None)
    if m is None:
        raise InputError(f"the {g.upper()} is needed here: pass k(X1, X2, get=('nngp', 'ntk'))")
    arr = np.asarray(m, dtype=np.float64)
    if arr.ndim != 2 or not np.all(np.isfinite(arr)):
        raise InputError(f"a kernel matrix must be finite and 2-D, got shape {arr.shape}")
    return arr


def _cholesky(A: np.ndarray, reg: float, absolute: bool, g: str) -> np.ndarray:
    """Lower Cholesky factor of the regularised train-train kernel (checked square, PD)."""
    if A.shape[0] != A.shape[1]:
        raise InputError(f"the train-train {g.upper()} must be square, got shape {A.shape}")
    A = (A + A.T) / 2
    scale = reg if absolute else reg * float(np.trace(A)) / A.shape[0]
    try:
        return np.linalg.cholesky(A + scale * np.eye(A.shape[0]))
    except np.linalg.LinAlgError:
        smallest = float(np.linalg.eigvalsh(A)[0])
        raise InputError(
            f"the regularised train-train {g.upper()} is not positive definite (smallest "
            f"eigenvalue of the kernel {smallest:.3e}); pass diag_reg > 0 (e.g. 1e-6)"
        ) from None
