"""Figures of the notes, drawn by ntksym itself with matplotlib (vector PDF and PNG).

* :func:`convergence_figure` — the distance of the finite-width empirical NTK from its
  infinite-width limit against the hidden width, on log-log axes, with Monte-Carlo error
  bars and the fitted power law (:func:`ntksym.empirical.convergence_study`).
* :func:`angle_figure` — the limiting NNGP and NTK of two unit inputs against the angle
  between them, for a few depths (:func:`ntksym.kernel`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ntksym.errors import MatplotlibMissingError
from ntksym.kernels.api import kernel

__all__ = [
    "MatplotlibMissingError",
    "FigureSet",
    "ConvergenceSettings",
    "convergence_figure",
    "angle_figure",
    "make_figures",
]


def pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise MatplotlibMissingError(
            "the notes' figures need matplotlib, which is not installed; install it with "
            "`pip install 'ntksym[plot]'` (or `pip install matplotlib`)"
        ) from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "font.size": 9,
            "axes.titlesize": 9,
            "legend.fontsize": 8,
            "figure.dpi": 100,
            "savefig.bbox": "tight",
            "pdf.fonttype": 42,
            "svg.hashsalt": "ntksym",
        }
    )
    return plt


@dataclass(frozen=True)
class ConvergenceSettings:
    """The Monte-Carlo experiment behind the convergence figure.

    Attributes:
        activation: registered activation name.
        depth: number of affine layers ``L``.
        bias_std: ``beta``.
        hidden_widths: the hidden widths ``n``.
        n_samples: networks drawn per width.
        n_inputs: number of inputs (on the unit circle, equally spaced angles).
        seed: root seed.
    """

    activation: str = "relu"
    depth: int = 3
    bias_std: float = 0.1
    hidden_widths: tuple[int, ...] = (32, 64, 128, 256, 512, 1024)
    n_samples: int = 24
    n_inputs: int = 4
    seed: int = 2018

    @classmethod
    def quick(cls) -> ConvergenceSettings:
        """A small experiment (seconds) for tests."""
        return cls(hidden_widths=(16, 32, 64, 128), n_samples=6)


@dataclass(frozen=True)
class FigureSet:
    """Figures written for the notes.

    Attributes:
        convergence: stem (path without suffix) of the convergence figure.
        angle: stem of the kernel-against-angle figure.
        slope, slope_stderr, chi2_dof: the fitted power law of the convergence study.
        settings: the experiment.
        depths: depths of the angle figure.
    """

    convergence: Path
    angle: Path
    slope: float
    slope_stderr: float
    chi2_dof: float
    settings: ConvergenceSettings
    depths: tuple[int, ...]


def _save(fig: Any, stem: Path) -> None:
    fig.savefig(stem.with_suffix(".pdf"), metadata={"CreationDate": None, "Creator": "ntksym"})
    fig.savefig(stem.with_suffix(".png"), dpi=160, metadata={"Software": "ntksym"})


def _circle(n: int) -> np.ndarray:
    angles = np.linspace(0.0, np.pi, n)
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def convergence_figure(stem: Path, settings: ConvergenceSettings) -> Any:
    """Draw the empirical-NTK convergence figure; returns the study's result.

    Args:
        stem: output path without suffix (``.pdf`` and ``.png`` are written).
        settings: the experiment.

    Returns:
        The :class:`ntksym.empirical.ConvergenceResult`.
    """
    plt = pyplot()
    from ntksym.empirical import convergence_study

    res = convergence_study(
        _circle(settings.n_inputs),
        settings.depth,
        list(settings.hidden_widths),
        settings.activation,
        bias_std=settings.bias_std,
        n_samples=settings.n_samples,
        seed=settings.seed,
    )
    w = np.asarray(res.widths, dtype=float)
    fig, ax = plt.subplots(figsize=(4.6, 3.2))
    ax.errorbar(
        w,
        res.mean_distance,
        yerr=res.stderr_distance,
        fmt="o",
        ms=4,
        capsize=3,
        color="C0",
        label=f"empirical NTK ({settings.n_samples} networks per width)",
    )
    grid = np.geomspace(w.min(), w.max(), 50)
    ax.plot(
        grid,
        np.exp(res.intercept) * grid**res.slope,
        "-",
        color="C1",
        label=rf"fit: slope ${res.slope:.3f} \pm {res.slope_stderr:.3f}$",
    )
    ref = res.mean_distance[0] * (grid / w[0]) ** -0.5
    ax.plot(grid, ref, ":", color="0.4", label=r"$n^{-1/2}$ (theory)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("hidden width $n$")
    ax.set_ylabel(r"$\|\hat\Theta_n - \Theta_\infty\|_F \,/\, \|\Theta_\infty\|_F$")
    ax.set_title(
        f"{settings.activation}, depth $L={settings.depth}$, "
        rf"$\beta={settings.bias_std:g}$, {settings.n_inputs} inputs"
    )
    ax.legend(frameon=False)
    ax.grid(True, which="both", alpha=0.3)
    _save(fig, stem)
    plt.close(fig)
    return res


def angle_figure(
    stem: Path,
    depths: Sequence[int] = (1, 2, 3, 5, 10),
    activation: str = "relu",
    bias_std: float = 0.1,
    n_angles: int = 181,
) -> None:
    """Draw the limiting NNGP and NTK against the angle between two unit inputs.

    Each curve is divided by its value at angle 0 (``x' = x``), so depths compare.

    Args:
        stem: output path without suffix.
        depths: depths ``L`` to draw.
        activation: registered activation name.
        bias_std: ``beta``.
        n_angles: number of angles in ``[0, pi]``.
    """
    plt = pyplot()
    X = _circle(n_angles)
    angles = np.linspace(0.0, np.pi, n_angles)
    fig, axes = plt.subplots(1, 2, figsize=(6.4, 2.8), sharex=True)
    for n, depth in enumerate(depths):
        K = kernel(activation, depth=depth, bias_std=bias_std)(X[:1], X, get=("nngp", "ntk"))
        color = plt.cm.viridis(n / max(1, len(depths) - 1))
        # divided by the value at angle 0 (where x' = x), so that depths compare
        axes[0].plot(angles, K.nngp[0] / K.nngp[0, 0], color=color, label=f"$L={depth}$")
        axes[1].plot(angles, K.ntk[0] / K.ntk[0, 0], color=color, label=f"$L={depth}$")
    for ax, name in zip(
        axes,
        (
            r"NNGP $\Sigma^{(L)}(x,x')\,/\,\Sigma^{(L)}(x,x)$",
            r"NTK $\Theta^{(L)}(x,x')\,/\,\Theta^{(L)}(x,x)$",
        ),
        strict=True,
    ):
        ax.set_xlabel(r"angle between $x$ and $x'$")
        ax.set_title(name)
        ax.set_xticks([0, np.pi / 4, np.pi / 2, 3 * np.pi / 4, np.pi])
        ax.set_xticklabels(["0", r"$\pi/4$", r"$\pi/2$", r"$3\pi/4$", r"$\pi$"])
        ax.grid(True, alpha=0.3)
    axes[1].legend(frameon=False, ncol=1)
    fig.suptitle(rf"{activation}, $\beta={bias_std:g}$, $\|x\|=\|x'\|=1$, $n_0=2$", y=1.02)
    _save(fig, stem)
    plt.close(fig)


def make_figures(outdir: Path, *, quick: bool = False) -> FigureSet:
    """Draw both figures into ``outdir/figures``.

    Args:
        outdir: the notes' output directory.
        quick: use the small Monte-Carlo experiment.

    Returns:
        The :class:`FigureSet`.
    """
    figdir = Path(outdir) / "figures"
    figdir.mkdir(parents=True, exist_ok=True)
    settings = ConvergenceSettings.quick() if quick else ConvergenceSettings()
    res = convergence_figure(figdir / "ntk_convergence", settings)
    depths = (1, 2, 3, 5, 10)
    angle_figure(figdir / "kernel_vs_angle", depths)
    return FigureSet(
        convergence=figdir / "ntk_convergence",
        angle=figdir / "kernel_vs_angle",
        slope=float(res.slope),
        slope_stderr=float(res.slope_stderr),
        chi2_dof=float(res.chi2_dof),
        settings=settings,
        depths=depths,
    )
