"""Copy me: fit an NTK Gaussian process with scikit-learn, predict with error bars, plot.

A noisy sine on [-3, 3]. Each scalar input x is fed to the network as (x, 1): the constant
feature lets the kernel, which depends on the inputs' norms and angle, tell inputs apart by
their position. ``bias_std``, ``weight_std`` and the noise level are fitted by maximising the
marginal likelihood (scikit-learn's L-BFGS-B with ntksym's exact gradients).

Usage::

    python examples/ntk_gp_regression.py                 # writes ntk_gp_regression.png
    python examples/ntk_gp_regression.py --out fit.png --depth 5
"""

from __future__ import annotations

import argparse

import numpy as np
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import WhiteKernel

from ntksym.sklearn import NTK


def features(x: np.ndarray) -> np.ndarray:
    """The network's inputs (x, 1) for scalar x."""
    return np.column_stack([x, np.ones_like(x)])


def fit(depth: int = 3, n: int = 40, seed: int = 0) -> tuple[GaussianProcessRegressor, tuple]:
    """Fit the GP to ``n`` noisy samples of sin(x); returns it and the data (x, y)."""
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(-3, 3, n))
    y = np.sin(x) + 0.1 * rng.standard_normal(n)
    kernel = NTK("relu", depth=depth, bias_std=0.5, weight_std=1.0) + WhiteKernel(0.01)
    gp = GaussianProcessRegressor(kernel=kernel, normalize_y=True, random_state=seed)
    gp.fit(features(x), y)
    return gp, (x, y)


def plot(gp: GaussianProcessRegressor, data: tuple, path: str) -> None:
    """Posterior mean and a 2-standard-deviation band against the data and the truth."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = np.linspace(-4, 4, 400)
    mean, std = gp.predict(features(grid), return_std=True)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.fill_between(grid, mean - 2 * std, mean + 2 * std, alpha=0.25, label="mean ± 2 sd")
    ax.plot(grid, mean, label="NTK GP mean")
    ax.plot(grid, np.sin(grid), "k--", lw=1, label="sin x")
    ax.plot(*data, "k.", ms=4, label="data")
    ax.set_title(str(gp.kernel_), fontsize=7)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    """Fit, print the fitted kernel and the log marginal likelihood, plot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--out", default="ntk_gp_regression.png")
    args = parser.parse_args(argv)
    gp, data = fit(args.depth)
    print("fitted:", gp.kernel_)
    print(f"log marginal likelihood: {gp.log_marginal_likelihood_value_:.3f}")
    plot(gp, data, args.out)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
