r"""Finite networks trained by gradient descent against the infinite-width prediction.

The library behind ``ntksym train``.

The built-in problem: inputs on the unit circle, ``x = (cos phi, sin phi)``, target
``y = sin(2 phi)``; ``n_train`` training angles drawn uniformly (seeded), test angles evenly
spaced. Networks of :mod:`ntksym.empirical` (NTK parameterization) are trained by full-batch
gradient descent on ``L = 1/2 ||f(X) - Y||^2`` with exact gradients (NumPy back-propagation,
:func:`mse_gradients`); after ``k`` steps of size ``eta`` the training time is ``t = k``, as in
:mod:`ntksym.predict`.

What is compared, and why. A single network's output at initialisation is a draw from the
NNGP, of order one at every width, and gradient descent in the linear regime does not erase it
on test points: ``f_t(x) = f_0(x) + Theta(x,X) Theta^{-1} (I - e^{-eta Theta t})(Y - f_0(X))``.
The infinite-width *mean* ``mu_t`` (the f_0-free part) therefore differs from any one trained
network by an O(1) random amount, and the mean over S seeds differs from it by O(S^{-1/2}) at
every width: neither gap shrinks with width. The quantity that does is the distance of each
trained network from the infinite-width linearised prediction *started from that network's own
f_0*,

.. math::

    \hat f_t(x) = f_0(x) + \mu_t(x; Y) - \mu_t(x; f_0(X)),

(the prediction is linear in the targets), which differs from the finite network only through
the fluctuation of its NTK around the limit and the NTK's drift during training, both of order
``n^{-1/2}`` (Lee et al. 2019, Theorem 2.1; Jacot et al. 2018, Theorem 2). :func:`width_study`
measures the RMS of ``f_t - hat f_t`` over the test points at a fixed ``t``, its mean and
standard error over seeds at each hidden width, and fits ``log gap = a + s log n`` by weighted
least squares (theory: ``s = -1/2``).

Gradient *descent* with a finite step is not gradient flow; the difference, for the linearised
infinite-width model, is computed exactly (``(I - eta Theta)^k`` against ``e^{-eta Theta k}``)
and reported as the discretisation floor, which must be well below the measured gaps.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ntksym.empirical import Network
from ntksym.errors import InputError
from ntksym.kernels import kernel as make_kernel
from ntksym.predict import Gaussian, gradient_descent_mse
from ntksym.stats import fit_power_law

__all__ = [
    "circle_problem",
    "mse_gradients",
    "train",
    "WidthStudy",
    "width_study",
    "plot_study",
]


def circle_problem(
    n_train: int = 16, n_test: int = 64, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The built-in regression problem: ``y = sin(2 phi)`` on the unit circle.

    Returns:
        ``(X_train, Y_train, X_test, Y_test)``; ``X`` of shape (N, 2), ``Y`` of shape (N, 1).
        Training angles are uniform on [0, 2 pi) (seeded), test angles evenly spaced.
    """
    if n_train < 1 or n_test < 1:
        raise InputError(f"n_train and n_test must be >= 1, got {n_train}, {n_test}")
    phi = np.sort(np.random.default_rng(seed).uniform(0, 2 * np.pi, n_train))
    phi_t = (np.arange(n_test) + 0.5) * 2 * np.pi / n_test

    def embed(a: np.ndarray) -> np.ndarray:
        return np.stack([np.cos(a), np.sin(a)], axis=1)

    return embed(phi), np.sin(2 * phi)[:, None], embed(phi_t), np.sin(2 * phi_t)[:, None]


def mse_gradients(
    net: Network, X: np.ndarray, Y: np.ndarray
) -> tuple[float, np.ndarray, list[np.ndarray], list[np.ndarray]]:
    r"""Loss ``1/2 ||f(X) - Y||^2``, outputs and exact gradients by back-propagation.

    With ``delta^(L) = f - Y`` and ``c_l = w / sqrt(n_l)``:
    ``dL/dW^(l) = c_l delta^(l+1)T a^(l)``, ``dL/db^(l) = beta sum_x delta^(l+1)``,
    ``delta^(l) = c_l (delta^(l+1) W^(l)) * sigma'(z^(l))``.

    Returns:
        ``(loss, f(X), [dL/dW^(l)], [dL/db^(l)])``.
    """
    passes = net.forward(X)
    f = passes[-1].preactivations
    delta = f - Y
    gW: list[np.ndarray] = [np.empty(0)] * net.depth
    gb: list[np.ndarray] = [np.empty(0)] * net.depth
    for layer in range(net.depth - 1, -1, -1):
        c = net.weight_std / math.sqrt(net.widths[layer])
        gW[layer] = c * (delta.T @ passes[layer].inputs)
        gb[layer] = net.bias_std * delta.sum(axis=0)
        if layer > 0:
            dsig = net.activation.numpy_derivative(passes[layer - 1].preactivations)
            delta = c * (delta @ net.weights[layer]) * dsig
    return 0.5 * float(np.sum((f - Y) ** 2)), f, gW, gb


def train(
    net: Network,
    X: np.ndarray,
    Y: np.ndarray,
    learning_rate: float,
    steps: int,
    record: Sequence[int] = (),
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Full-batch gradient descent in place; losses after every step and outputs at ``record``.

    Returns:
        ``(losses, outputs)``: ``losses[k]`` is the loss at step ``k`` (``k = 0..steps``);
        ``outputs`` the training outputs ``f(X)`` at each recorded step.
    """
    want = set(record)
    losses = np.empty(steps + 1)
    outs = []
    for k in range(steps + 1):
        loss, f, gW, gb = mse_gradients(net, X, Y)
        losses[k] = loss
        if k in want:
            outs.append(f.copy())
        if k == steps:
            break
        for W, g in zip(net.weights, gW, strict=True):
            W -= learning_rate * g
        for b, g in zip(net.biases, gb, strict=True):
            b -= learning_rate * g
    return losses, outs


@dataclass(frozen=True)
class WidthStudy:
    """Gap between trained finite networks and the infinite-width prediction.

    Attributes:
        widths: hidden widths.
        gap_mean, gap_stderr: RMS over test points of ``f_t - hat f_t`` at ``t = steps``,
            mean and standard error over seeds.
        slope, slope_stderr, intercept, chi2_dof: weighted fit of ``log gap`` on ``log n``.
        floor: the largest, over networks, RMS difference between discrete gradient descent
            and gradient flow of the linearised infinite-width model at the same ``t``.
        gap_gd_mean, gap_gd_stderr, slope_gd, slope_gd_stderr: the same gap and fit against
            the linearised infinite-width model trained by the same discrete steps
            (``(I - eta Theta)^k`` in place of ``e^{-eta Theta t}``), free of the floor.
        times: ``0..steps``.
        loss_mean, loss_std: training loss over time per width (rows), over seeds.
        loss_infinite: expected training loss of the infinite-width ensemble, gradient flow.
        loss_infinite_mean: loss of the infinite-width mean prediction ``mu_t``.
        learning_rate, steps, n_seeds, depth, activation, bias_std: the settings.
        seconds: wall time.
    """

    widths: np.ndarray
    gap_mean: np.ndarray
    gap_stderr: np.ndarray
    slope: float
    slope_stderr: float
    intercept: float
    chi2_dof: float
    floor: float
    gap_gd_mean: np.ndarray
    gap_gd_stderr: np.ndarray
    slope_gd: float
    slope_gd_stderr: float
    times: np.ndarray
    loss_mean: np.ndarray
    loss_std: np.ndarray
    loss_infinite: np.ndarray
    loss_infinite_mean: np.ndarray
    learning_rate: float
    steps: int
    n_seeds: int
    depth: int
    activation: str
    bias_std: float
    seconds: float


def _check_study(widths: Sequence[int], n_seeds: int, depth: int, steps: int) -> list[int]:
    """The sorted distinct widths, after checking the study's sizes."""
    ws = sorted({int(w) for w in widths})
    if len(ws) < 2 or ws[0] < 1:
        raise InputError(f"widths needs at least two distinct positive widths, got {widths!r}")
    if n_seeds < 2:
        raise InputError(f"n_seeds must be >= 2 (an error bar needs two), got {n_seeds}")
    if depth < 2:
        raise InputError(f"depth must be >= 2 (a hidden layer to widen), got {depth}")
    if steps < 1:
        raise InputError(f"steps must be >= 1, got {steps}")
    return ws


@dataclass(frozen=True)
class _Limit:
    """The infinite-width side of the study, shared by every finite network.

    Attributes:
        eta: the step size.
        M_test: the linear map from training residuals to test predictions at ``t = steps``.
        D: discrete descent minus gradient flow of the linearised model, per residual.
        times, loss_infinite, loss_infinite_mean: the infinite-width training curves.
    """

    eta: float
    M_test: np.ndarray
    D: np.ndarray
    times: np.ndarray
    loss_infinite: np.ndarray
    loss_infinite_mean: np.ndarray


def _limit(
    X: np.ndarray,
    Y: np.ndarray,
    Xt: np.ndarray,
    kern: Any,
    learning_rate: float | None,
    steps: int,
) -> _Limit:
    """Step size, prediction operator and loss curves of the infinite-width network."""
    theta = kern(X, get="ntk")
    lam, V = np.linalg.eigh(theta)
    eta = 0.5 / lam[-1] if learning_rate is None else float(learning_rate)
    if not 0 < eta * lam[-1] < 2:
        raise InputError(
            f"learning_rate {eta:g} is unstable: eta * lambda_max = {eta * lam[-1]:.3g} "
            "must be in (0, 2)"
        )
    # The prediction is linear in the targets: with Y = I the predictor returns the operator.
    op = gradient_descent_mse(kern, X, np.eye(len(X)), eta)
    times = np.arange(steps + 1, dtype=float)
    g = gradient_descent_mse(kern, X, Y, eta)(X, times, compute_cov=True)
    M_test = op(Xt, float(steps))  # (n_test, n_train)
    if not isinstance(g, Gaussian) or isinstance(M_test, Gaussian):  # pragma: no cover
        raise TypeError("gradient_descent_mse returned an unexpected type")
    loss_mu = 0.5 * np.sum((g.mean - Y) ** 2, axis=(1, 2))
    loss_inf = loss_mu + 0.5 * np.trace(g.covariance, axis1=1, axis2=2)
    # discrete GD minus gradient flow of the linearised model, test points, per unit residual
    lam_c = np.maximum(lam, 1e-300)
    disc = ((1 - eta * lam) ** steps - np.exp(-eta * lam * steps)) / lam_c
    D = kern(Xt, X, get="ntk") @ V @ (disc[:, None] * V.T)
    return _Limit(eta, M_test, D, times, loss_inf, loss_mu)


def _gaps(
    net: Network, X: np.ndarray, Y: np.ndarray, Xt: np.ndarray, limit: _Limit, steps: int
) -> tuple[float, float, float, np.ndarray]:
    """Train ``net``; its RMS test gaps (to gradient flow, to discrete steps), floor, losses."""
    f0x, f0t = net(X), net(Xt)
    losses, _ = train(net, X, Y, limit.eta, steps)
    pred = f0t + limit.M_test @ (Y - f0x)
    ft = net(Xt)
    shift = limit.D @ (Y - f0x)
    return (
        float(np.sqrt(np.mean((ft - pred) ** 2))),
        float(np.sqrt(np.mean((ft - pred - shift) ** 2))),
        float(np.sqrt(np.mean(shift**2))),
        losses,
    )


def _mean_and_fit(
    ws: list[int], gaps: np.ndarray
) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float, float]]:
    """Mean and standard error over seeds (rows: widths), and the log-log line through them."""
    m = gaps.mean(axis=1)
    e = gaps.std(axis=1, ddof=1) / math.sqrt(gaps.shape[1])
    fit = fit_power_law(np.asarray(ws, dtype=float), m, e)
    return m, e, (fit.slope, fit.slope_stderr, fit.intercept, fit.chi2_dof)


def width_study(
    widths: Sequence[int] = (64, 256, 1024, 4096),
    *,
    n_seeds: int = 6,
    depth: int = 2,
    activation: str = "relu",
    bias_std: float = 0.3,
    learning_rate: float | None = None,
    steps: int = 200,
    n_train: int = 16,
    n_test: int = 64,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> WidthStudy:
    """Train ``n_seeds`` networks per hidden width and compare them with the prediction.

    Args:
        widths: at least two distinct hidden widths.
        n_seeds: networks per width (>= 2).
        depth: number of affine layers (>= 2), all hidden layers of the same width.
        activation: activation name.
        bias_std: bias scale beta.
        learning_rate: step size; None picks ``0.5 / lambda_max(Theta)``.
        steps: gradient-descent steps; the gap is measured at ``t = steps``.
        n_train: training points of the built-in problem.
        n_test: test points.
        seed: root seed (problem and networks).
        progress: called as ``progress(done, total)`` after each network.

    Returns:
        A :class:`WidthStudy`.
    """
    ws = _check_study(widths, n_seeds, depth, steps)
    t0 = time.perf_counter()
    X, Y, Xt, _ = circle_problem(n_train, n_test, seed)
    limit = _limit(X, Y, Xt, make_kernel(activation, depth, bias_std), learning_rate, steps)
    gaps = np.empty((len(ws), n_seeds))
    gaps_gd = np.empty((len(ws), n_seeds))
    losses = np.empty((len(ws), n_seeds, steps + 1))
    floor = 0.0
    for wi, (n, ss) in enumerate(zip(ws, np.random.SeedSequence(seed).spawn(len(ws)), strict=True)):
        for si, child in enumerate(ss.spawn(n_seeds)):
            layers = [2] + [n] * (depth - 1) + [1]
            net = Network(layers, activation, bias_std, 1.0, seed=np.random.default_rng(child))
            gaps[wi, si], gaps_gd[wi, si], fl, losses[wi, si] = _gaps(net, X, Y, Xt, limit, steps)
            floor = max(floor, fl)
            if progress is not None:
                progress(wi * n_seeds + si + 1, len(ws) * n_seeds)
    m, e, (slope, slope_err, a, chi2) = _mean_and_fit(ws, gaps)
    m_gd, e_gd, (slope_gd, slope_gd_err, _, _) = _mean_and_fit(ws, gaps_gd)
    return WidthStudy(
        widths=np.asarray(ws),
        gap_mean=m,
        gap_stderr=e,
        slope=slope,
        slope_stderr=slope_err,
        intercept=a,
        chi2_dof=chi2,
        floor=floor,
        gap_gd_mean=m_gd,
        gap_gd_stderr=e_gd,
        slope_gd=slope_gd,
        slope_gd_stderr=slope_gd_err,
        times=limit.times,
        loss_mean=losses.mean(axis=1),
        loss_std=losses.std(axis=1, ddof=1),
        loss_infinite=limit.loss_infinite,
        loss_infinite_mean=limit.loss_infinite_mean,
        learning_rate=limit.eta,
        steps=steps,
        n_seeds=n_seeds,
        depth=depth,
        activation=str(activation),
        bias_std=bias_std,
        seconds=time.perf_counter() - t0,
    )


def plot_study(study: WidthStudy, out_dir: str | Path) -> list[Path]:
    """Training loss against time, finite widths (mean over seeds, ±1 sd band) and infinite.

    Writes ``training_curves.pdf`` (vector) and ``training_curves.png`` into ``out_dir``.

    Returns:
        The two paths.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    t = study.times[1:]  # log time axis: from the first step on
    cmap = plt.get_cmap("viridis")
    for i, n in enumerate(study.widths):
        c = cmap(i / max(1, len(study.widths) - 1) * 0.85)
        m, s = study.loss_mean[i, 1:], study.loss_std[i, 1:]
        ax.plot(t, m, color=c, lw=1.2, label=f"width {n}")
        ax.fill_between(t, np.maximum(m - s, 1e-12), m + s, color=c, alpha=0.15, lw=0)
    ax.plot(t, study.loss_infinite[1:], "k--", lw=1.6, label=r"infinite width, $E[\mathcal{L}_t]$")
    ax.plot(t, study.loss_infinite_mean[1:], "k:", lw=1.2, label=r"loss of the mean $\mu_t$")
    ax.set(
        xscale="log",
        yscale="log",
        xlabel=r"training time $t$ (steps of size $\eta$)",
        ylabel=r"training loss $\frac{1}{2}\|f_t(X)-Y\|^2$",
        title=f"{study.activation}, depth {study.depth}, {study.n_seeds} seeds per width",
    )
    ax.legend(fontsize=8)
    bx.errorbar(
        study.widths,
        study.gap_mean,
        yerr=study.gap_stderr,
        fmt="o",
        color="C0",
        capsize=3,
        label="measured (mean ± s.e.)",
    )
    w = np.geomspace(study.widths[0], study.widths[-1], 50)
    bx.plot(
        w,
        np.exp(study.intercept) * w**study.slope,
        "C0-",
        lw=1,
        label=f"fit: slope {study.slope:.2f} ± {study.slope_stderr:.2f}",
    )
    bx.plot(w, study.gap_mean[0] * (w / w[0]) ** -0.5, "k--", lw=1, label=r"$n^{-1/2}$")
    bx.axhline(study.floor, color="0.5", lw=0.8, ls=":", label="discretisation floor")
    bx.set(
        xscale="log",
        yscale="log",
        xlabel="hidden width $n$",
        ylabel=r"RMS test gap $\|f_t - \hat f_t\|$" + f" at t = {study.steps}",
        title="finite network vs linearised infinite-width prediction",
    )
    bx.legend(fontsize=8)
    paths = [out / "training_curves.pdf", out / "training_curves.png"]
    fig.savefig(paths[0])
    fig.savefig(paths[1], dpi=150)
    plt.close(fig)
    return paths
