"""Smoke tests of the example scripts (examples/): their functions on tiny problems."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_real_data_functions_on_a_tiny_run(tmp_path: Path) -> None:
    rd = _load("real_data")
    split = rd.make_split("wine", seed=0, n_train=40)
    assert split.X.shape == (40, 13) and abs(split.X.mean()) < 1e-12  # standardised
    s, fitted = rd.gp_score(split, rd.infinite_width("NTK", 2))
    assert 0.6 < s <= 1.0  # three classes: chance is about 0.4
    assert fitted.k1.bias_std != 0.1  # the marginal likelihood moved the hyperparameters
    assert 0.6 < rd.svm_score(split) <= 1.0
    rows = [
        {"dataset": "wine", "method": m, "depth": d, "seed": seed, "score": 0.8 + 0.1 * seed}
        for m, d in (("NTK", 1), ("NNGP", 1), ("RBF GP", 0), ("RBF SVM", 0))
        for seed in (0, 1)
    ]
    summary = rd.summarise(rows)
    assert summary[("wine", "NTK", 1)] == pytest.approx((0.85, 0.05))
    assert "| wine | NTK | 0.850 ± 0.050 |" in rd.table(summary, [1])
    rd.figure(summary, [1], tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 1000
    reg = rd.make_split("diabetes", seed=0, n_train=30)
    assert rd.score(reg, reg.yt) == pytest.approx(1.0)  # R^2 of a perfect prediction


def test_user_example_fits_and_plots(tmp_path: Path) -> None:
    ex = _load("ntk_gp_regression")
    gp, (x, y) = ex.fit(depth=2, n=25)
    assert np.isfinite(gp.log_marginal_likelihood_value_)
    # the fit raises the likelihood above that of the starting hyperparameters
    assert gp.log_marginal_likelihood_value_ > gp.log_marginal_likelihood(gp.kernel.theta)
    mean = gp.predict(ex.features(x))
    assert np.sqrt(np.mean((mean - np.sin(x)) ** 2)) < 0.2
    ex.plot(gp, (x, y), str(tmp_path / "fit.png"))
    assert (tmp_path / "fit.png").stat().st_size > 1000
