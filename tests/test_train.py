"""ntksym train: exact gradients, finite networks tracking the infinite-width prediction."""

import sys

import numpy as np
import pytest

from ntksym.cli import main
from ntksym.empirical import Network
from ntksym.errors import InputError
from ntksym.training import circle_problem, mse_gradients, train, width_study


def _loss(net, X, Y):
    return 0.5 * float(np.sum((net(X) - Y) ** 2))


@pytest.mark.parametrize(
    "act, widths", [("relu", [2, 5, 4, 1]), ("tanh", [3, 6, 2]), ("erf", [2, 4, 3, 2])]
)
def test_gradients_match_finite_differences(act, widths):
    rng = np.random.default_rng(3)
    net = Network(widths, act, bias_std=0.4, weight_std=1.3, seed=5)
    X = rng.standard_normal((5, widths[0]))
    Y = rng.standard_normal((5, widths[-1]))
    loss, f, gW, gb = mse_gradients(net, X, Y)
    assert loss == pytest.approx(_loss(net, X, Y), rel=1e-14)
    h = 1e-6
    for params, grads in ((net.weights, gW), (net.biases, gb)):
        for P, G in zip(params, grads, strict=True):
            for idx in [tuple(rng.integers(0, s) for s in P.shape) for _ in range(4)]:
                old = P[idx]
                P[idx] = old + h
                up = _loss(net, X, Y)
                P[idx] = old - h
                dn = _loss(net, X, Y)
                P[idx] = old
                assert G[idx] == pytest.approx((up - dn) / (2 * h), rel=1e-5, abs=1e-7)


def test_one_small_step_moves_outputs_by_the_empirical_ntk():
    # f(theta - eta g) - f(theta) = -eta Theta_emp (f - y) + O(eta^2): ties the gradient
    # to the independent reverse-mode NTK of ntksym.empirical
    X, Y, _, _ = circle_problem(6, 4, seed=2)
    net = Network([2, 40, 40, 1], "tanh", bias_std=0.3, seed=1)
    theta = net.ntk(X)[:, :, 0, 0]
    f0 = net(X)
    eta = 1e-6
    train(net, X, Y, eta, 1)
    np.testing.assert_allclose(net(X) - f0, -eta * theta @ (f0 - Y), rtol=1e-4)


def test_training_reduces_loss_and_records():
    X, Y, _, _ = circle_problem(8, 4)
    net = Network([2, 64, 1], "relu", bias_std=0.3, seed=0)
    losses, outs = train(net, X, Y, 0.05, 50, record=(0, 50))
    assert losses.shape == (51,) and losses[-1] < 0.2 * losses[0]
    assert len(outs) == 2 and outs[0].shape == (8, 1)


def test_circle_problem():
    X, Y, Xt, Yt = circle_problem(10, 20, seed=1)
    np.testing.assert_allclose(np.sum(X**2, axis=1), 1.0)
    np.testing.assert_allclose(Y[:, 0], 2 * X[:, 0] * X[:, 1], atol=1e-14)  # sin 2phi
    assert Xt.shape == (20, 2) and Yt.shape == (20, 1)


def test_gap_shrinks_with_width_fast():
    s = width_study((32, 512, 8192), n_seeds=5, steps=60, n_train=10, n_test=24, seed=1)
    assert np.all(np.diff(s.gap_mean) < 0)
    # against the same discrete steps of the linearised infinite-width model (no floor)
    assert np.all(np.diff(s.gap_gd_mean) < 0)
    assert s.slope_gd + 3 * s.slope_gd_stderr < 0  # significantly decreasing
    assert -0.8 < s.slope_gd < -0.3
    assert s.floor < 0.5 * s.gap_mean[-1]
    # finite networks' training loss at the end approaches the infinite-width expectation
    rel = np.abs(s.loss_mean[:, -1] - s.loss_infinite[-1]) / s.loss_infinite[-1]
    assert rel[-1] < 0.5
    assert s.loss_infinite[0] > s.loss_infinite[-1]


@pytest.mark.slow
def test_gap_rate_thorough_smooth_activation():
    s = width_study((64, 256, 1024, 4096), n_seeds=12, activation="tanh", steps=200)
    assert abs(s.slope + 0.5) < 3 * s.slope_stderr + 0.05
    assert s.slope_stderr < 0.1


def test_bad_study_inputs():
    with pytest.raises(InputError, match="two distinct"):
        width_study((64, 64))
    with pytest.raises(InputError, match="n_seeds"):
        width_study((64, 128), n_seeds=1)
    with pytest.raises(InputError, match="unstable"):
        width_study((64, 128), learning_rate=10.0)


def test_cli_train(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    rc = main(
        [
            "train",
            "--widths",
            "32,512",
            "--seeds",
            "3",
            "--steps",
            "20",
            "--train-points",
            "8",
            "--quiet",
            "-o",
            str(tmp_path),
        ]
    )
    out = capsys.readouterr().out
    # seeded: the gap shrinks significantly (measured slope -0.492 +- 0.121)
    assert rc == 0, out
    assert "fitted rate: gap ~ width^(-0.49" in out and "discretisation floor" in out
    for name in ("training_curves.pdf", "training_curves.png"):
        assert (tmp_path / name).stat().st_size > 1000
    assert main(["train", "--widths", "a,b"]) == 2


def test_cli_train_without_matplotlib_fails_before_the_study(tmp_path, capsys, monkeypatch):
    import ntksym.cli.train as command

    def no_study(*args, **kwargs):
        raise AssertionError("the study ran although its figure cannot be drawn")

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    monkeypatch.setattr(command, "width_study", no_study)
    assert main(["train", "--widths", "32,64", "-o", str(tmp_path / "figs")]) == 2
    err = capsys.readouterr().err
    assert "matplotlib" in err and "pip install 'ntksym[plot]'" in err
    assert not (tmp_path / "figs").exists()
