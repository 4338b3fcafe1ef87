"""NTK and NNGP Gaussian processes on scikit-learn's bundled data sets, depths 1-10, vs RBF.

For each data set (digits, breast cancer, wine: classification; diabetes: regression) and each
of ``--repeats`` random splits (seeded; stratified for classification), the features are
standardised on the training part, and every method is fitted on the same split:

* ``NTK`` / ``NNGP`` (``ntksym.sklearn``, ReLU, depths 1-10): a
  ``GaussianProcessRegressor`` with ``NTK(depth) + WhiteKernel``, its hyperparameters
  (``bias_std``, ``weight_std``, which also sets the amplitude, and the noise) fitted by
  maximising the marginal likelihood with the exact gradients. Classification is kernel
  regression on +-1 one-hot targets (as Arora et al. 2020 do), predicting the arg max.
* ``RBF GP``: the same regressor with ``ConstantKernel * RBF + WhiteKernel``.
* ``RBF SVM``: ``SVC`` / ``SVR`` with an RBF kernel, ``C`` and ``gamma`` chosen by 3-fold
  cross-validation on the training part.

Scores are test accuracy (classification) and test R^2 (diabetes): the mean and standard
error over the splits. Writes ``real_data.csv`` (every split), ``real_data.md`` (the table)
and ``real_data.png`` (score vs depth) to ``--out``.

Usage::

    python examples/real_data.py --out docs/figures            # the docs' table and figure
    python examples/real_data.py --datasets wine --depths 1 3 --repeats 2 --out /tmp/rd
"""

from __future__ import annotations

import argparse
import csv
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, SVR

from ntksym.sklearn import NNGP, NTK

#: (loader, classification?, training-set size)
DATASETS: dict[str, tuple[Callable, bool, int]] = {
    "wine": (load_wine, True, 100),
    "breast_cancer": (load_breast_cancer, True, 300),
    "diabetes": (load_diabetes, False, 300),
    "digits": (load_digits, True, 300),
}


@dataclass(frozen=True)
class Split:
    """One standardised train/test split."""

    X: np.ndarray
    y: np.ndarray
    Xt: np.ndarray
    yt: np.ndarray
    classes: np.ndarray | None


def make_split(name: str, seed: int, n_train: int | None = None) -> Split:
    """The ``seed``-th split of data set ``name`` (stratified when it is a classification)."""
    loader, classify, size = DATASETS[name]
    X, y = loader(return_X_y=True)
    n_train = size if n_train is None else n_train
    strat = y if classify else None
    X, Xt, y, yt = train_test_split(X, y, train_size=n_train, random_state=seed, stratify=strat)
    scaler = StandardScaler().fit(X)
    classes = np.unique(y) if classify else None
    if not classify:  # regression targets standardised on the training part too
        mu, sd = y.mean(), y.std()
        y, yt = (y - mu) / sd, (yt - mu) / sd
    return Split(scaler.transform(X), y.astype(float), scaler.transform(Xt), yt, classes)


def _targets(split: Split) -> np.ndarray:
    if split.classes is None:
        return split.y
    return np.where(split.y[:, None] == split.classes[None, :], 1.0, -1.0)


def score(split: Split, pred: np.ndarray) -> float:
    """Test accuracy (classification, ``pred`` one score per class) or test R^2."""
    if split.classes is None:
        return float(1 - np.sum((pred - split.yt) ** 2) / np.sum((split.yt - split.yt.mean()) ** 2))
    return float(np.mean(split.classes[np.argmax(pred, axis=1)] == split.yt))


def gp_score(split: Split, kernel) -> tuple[float, object]:
    """Fit a GP regressor (marginal likelihood, exact gradients) and score it on the test part."""
    gp = GaussianProcessRegressor(kernel=kernel, normalize_y=False, random_state=0)
    gp.fit(split.X, _targets(split))
    return score(split, gp.predict(split.Xt)), gp.kernel_


def infinite_width(kind: str, depth: int):
    """``NTK(relu, depth) + WhiteKernel`` (or NNGP): ``weight_std`` sets the amplitude."""
    cls = NTK if kind == "NTK" else NNGP
    base = cls("relu", depth=depth, bias_std=0.1, weight_std=1.0)
    return base + WhiteKernel(0.1, (1e-6, 1e1))


def rbf_gp() -> object:
    """The RBF baseline GP kernel."""
    return ConstantKernel(1.0, (1e-3, 1e3)) * RBF(3.0, (1e-2, 1e3)) + WhiteKernel(0.1, (1e-6, 1e1))


def svm_score(split: Split) -> float:
    """RBF SVM with C and gamma from 3-fold cross-validation on the training part."""
    grid = {"C": [0.1, 1, 10, 100], "gamma": ["scale", 0.01, 0.1]}
    model = SVC() if split.classes is not None else SVR()
    search = GridSearchCV(model, grid, cv=3).fit(split.X, split.y)
    pred = search.predict(split.Xt)
    if split.classes is None:
        return score(split, pred)
    return float(np.mean(pred == split.yt))


def evaluate(name: str, depths: list[int], repeats: int, n_train: int | None = None) -> list[dict]:
    """Every method on ``repeats`` splits of data set ``name``: one row per fit."""
    rows = []
    for seed in range(repeats):
        split = make_split(name, seed, n_train)
        for kind in ("NTK", "NNGP"):
            for depth in depths:
                s, _ = gp_score(split, infinite_width(kind, depth))
                rows.append(
                    {"dataset": name, "method": kind, "depth": depth, "seed": seed, "score": s}
                )
        rows.append(
            {
                "dataset": name,
                "method": "RBF GP",
                "depth": 0,
                "seed": seed,
                "score": gp_score(split, rbf_gp())[0],
            }
        )
        rows.append(
            {
                "dataset": name,
                "method": "RBF SVM",
                "depth": 0,
                "seed": seed,
                "score": svm_score(split),
            }
        )
    return rows


def summarise(rows: list[dict]) -> dict[tuple[str, str, int], tuple[float, float]]:
    """(dataset, method, depth) -> (mean, standard error) over the splits."""
    groups: dict[tuple[str, str, int], list[float]] = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["method"], r["depth"]), []).append(r["score"])
    out = {}
    for key, v in groups.items():
        a = np.asarray(v)
        se = float(a.std(ddof=1) / np.sqrt(a.size)) if a.size > 1 else float("nan")
        out[key] = (float(a.mean()), se)
    return out


def table(summary: dict, depths: list[int]) -> str:
    """A markdown table: a row per data set and method, a column per depth."""
    head = "| data set | method | " + " | ".join(f"L={d}" for d in depths) + " | RBF |"
    lines = [head, "|" + "---|" * (len(depths) + 3)]
    for name in dict.fromkeys(k[0] for k in summary):
        for method in ("NTK", "NNGP", "RBF GP", "RBF SVM"):
            cells = []
            for d in depths:
                m = summary.get((name, method, d))
                cells.append(f"{m[0]:.3f} ± {m[1]:.3f}" if m else "")
            base = summary.get((name, method, 0))
            cells.append(f"{base[0]:.3f} ± {base[1]:.3f}" if base else "")
            lines.append(f"| {name} | {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def figure(summary: dict, depths: list[int], path: Path) -> None:
    """Score against depth, one panel per data set, RBF baselines as bands."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(k[0] for k in summary))
    fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.2), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        for method, color in (("NTK", "C0"), ("NNGP", "C1")):
            m = np.array([summary[(name, method, d)] for d in depths])
            ax.errorbar(
                depths,
                m[:, 0],
                yerr=m[:, 1],
                color=color,
                marker="o",
                ms=3,
                label=method,
                capsize=2,
            )
        for method, style in (("RBF GP", "--"), ("RBF SVM", ":")):
            mean, se = summary[(name, method, 0)]
            ax.axhline(mean, color="k", ls=style, lw=1, label=method)
            ax.axhspan(mean - se, mean + se, color="k", alpha=0.08)
        ax.set_title(name)
        ax.set_xlabel("depth L")
        ax.set_ylabel("test R²" if name == "diabetes" else "test accuracy")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    """Run the comparison and write the csv, table and figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--depths", nargs="+", type=int, default=list(range(1, 11)))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--n-train", type=int, default=None, help="default: per data set")
    parser.add_argument("--out", default=".", help="directory for the csv, md and png files")
    args = parser.parse_args(argv)
    # bounds reached by the fit (e.g. no noise on wine) are reported in the csv, not warned
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.datasets:  # the files are rewritten after each data set
        t0 = time.perf_counter()
        rows += evaluate(name, args.depths, args.repeats, args.n_train)
        print(f"{name}: {time.perf_counter() - t0:.0f} s", flush=True)
        write(rows, args.depths, out)
    print((out / "real_data.md").read_text())


def write(rows: list[dict], depths: list[int], out: Path) -> None:
    """The csv of every fit, the markdown table and the figure, into ``out``."""
    with open(out / "real_data.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    summary = summarise(rows)
    (out / "real_data.md").write_text(table(summary, depths))
    figure(summary, depths, out / "real_data.png")


if __name__ == "__main__":
    main()
