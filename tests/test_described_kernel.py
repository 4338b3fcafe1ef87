"""A described network's kernel wherever the homogeneous one goes: tiles, Dask, replace, call."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest

import ntksym
from ntksym import stax
from ntksym.errors import InputError
from ntksym.kernels.architecture import FUSED_MIN_PAIRS, evaluate
from ntksym.kernels.described import DescribedKernel
from ntksym.kernels.safeio import Interrupted
from ntksym.kernels.tiles import gram_to_file, resume_paths

#: Residual block, LayerNorm, standard parameterization and train-mode Dropout in one net.
MIXED = stax.serial(
    stax.Dense(16, 1.3, 0.2),
    stax.FanOut(2),
    stax.parallel(stax.serial(stax.Erf(), stax.Dense(16, 1.1, 0.1)), stax.Identity()),
    stax.FanInSum(),
    stax.Relu(),
    stax.Dense(16, 1.2, 0.3, parameterization="standard"),
    stax.LayerNorm(),
    stax.Dropout(0.8),
    stax.Dense(1, 0.9, 0.05),
)
OTHER = stax.serial(stax.Dense(16, 1.0, 0.1), stax.Relu(), stax.Dense(1, 0.8, 0.1))


def _x(n: int, d: int = 5, seed: int = 0) -> np.ndarray:
    """Small integers: the inputs' products are exact whatever the block's shape."""
    X = np.random.default_rng(seed).integers(-5, 6, size=(n, d)).astype(np.float64)
    X[3] = X[1]  # a repeated input (a different example): no dropout factor between them
    return X


def test_tiles_hold_the_numbers_of_one_call(tmp_path: Path) -> None:
    X, Y = _x(23), _x(9, seed=1)
    k = ntksym.kernel(MIXED)
    one = k(X, get=("nngp", "ntk"))
    out = gram_to_file(X, None, tmp_path / "K.npy", network=MIXED, get="both", tile=7)
    tiled = np.load(out)
    np.testing.assert_array_equal(tiled[0], one.nngp)
    np.testing.assert_array_equal(tiled[1], one.ntk)
    np.testing.assert_array_equal(tiled[1], tiled[1].T)  # mirrored blocks: exact symmetry
    # the layer maps, independently: Dropout scales only an example paired with itself
    assert tiled[1][1, 1] > tiled[1][1, 3] * 1.2
    cross = gram_to_file(X, Y, tmp_path / "C.npy", network=k, get="nngp", tile=4)
    np.testing.assert_array_equal(np.load(cross), k(X, Y, get="nngp"))


def test_tiles_float32_and_explicit_backend(tmp_path: Path) -> None:
    X = _x(12)
    out = gram_to_file(
        X, None, tmp_path / "K.npy", network=OTHER, backend="layers", tile=5, dtype="float32"
    )
    K = np.load(out)
    assert K.dtype == np.float32
    np.testing.assert_array_equal(K, ntksym.kernel(OTHER, backend="layers")(X, dtype=np.float32))


def test_tiles_refuse_existing_output_and_the_input(tmp_path: Path) -> None:
    data = tmp_path / "X.npy"
    np.save(data, _x(8))
    X = np.load(data, mmap_mode="r")
    out = gram_to_file(X, None, tmp_path / "K.npy", network=MIXED)
    before = out.read_bytes()
    with pytest.raises(InputError, match="already exists"):
        gram_to_file(X, None, out, network=OTHER)
    assert out.read_bytes() == before
    with pytest.raises(InputError, match="input"):
        gram_to_file(X, None, data, network=MIXED, overwrite=True)
    gram_to_file(X, None, out, network=OTHER, overwrite=True)
    np.testing.assert_array_equal(np.load(out), ntksym.kernel(OTHER)(X))


def _sigterm_after(blocks: int):  # noqa: ANN202
    def progress(done: int, total: int) -> None:
        if done == blocks:
            os.kill(os.getpid(), signal.SIGTERM)

    return progress


def test_resume_keeps_blocks_and_refuses_another_network(tmp_path: Path) -> None:
    X = _x(20)
    out = tmp_path / "K.npy"
    partial, record = resume_paths(out)
    with pytest.raises(Interrupted, match="3 of 10 blocks are kept"):
        gram_to_file(X, None, out, network=MIXED, tile=5, resume=True, progress=_sigterm_after(3))
    assert partial.exists() and record.exists() and not out.exists()
    assert "network_sha256" in record.read_text() and "LayerNorm" in record.read_text()
    with pytest.raises(InputError, match="network"):
        gram_to_file(X, None, out, network=OTHER, tile=5, resume=True)
    with pytest.raises(InputError, match="activation"):
        gram_to_file(X, None, out, activation="relu", depth=3, tile=5, resume=True)
    seen: list[tuple[int, int]] = []
    gram_to_file(
        X, None, out, network=MIXED, tile=5, resume=True, progress=lambda d, t: seen.append((d, t))
    )
    assert seen[0] == (3, 10) and seen[-1] == (10, 10) and len(seen) == 8
    np.testing.assert_array_equal(np.load(out), ntksym.kernel(MIXED)(X))
    assert not partial.exists() and not record.exists()


def test_sigterm_without_resume_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "K.npy"
    with pytest.raises(Interrupted, match="was not written"):
        gram_to_file(_x(20), None, out, network=MIXED, tile=5, progress=_sigterm_after(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"network": MIXED, "activation": "relu"}, "not both"),
        ({"network": MIXED, "depth": 3}, "not both"),
        ({"network": MIXED, "bias_std": 0.1}, "not both"),
        ({}, "activation= and depth="),
        ({"network": "relu"}, "network= must be a network description"),
        ({"network": MIXED, "backend": "numba"}, "backend of a described network"),
    ],
)
def test_tiles_say_what_is_wrong(tmp_path: Path, kwargs: dict, match: str) -> None:
    with pytest.raises(InputError, match=match):
        gram_to_file(_x(4), None, tmp_path / "K.npy", **kwargs)
    assert not (tmp_path / "K.npy").exists()


def test_dask_blocks_hold_the_numbers_of_one_call() -> None:
    pytest.importorskip("dask.array")
    import dask

    import ntksym.dask as nd

    X, Y = _x(17), _x(6, seed=2)
    k = ntksym.kernel(MIXED)
    one = k(X, get=("nngp", "ntk"))
    lazy = nd.gram(X, network=MIXED, get=("nngp", "ntk"), chunks=5)
    nngp, ntk = dask.compute(*lazy, scheduler="sync")
    np.testing.assert_array_equal(nngp, one.nngp)
    np.testing.assert_array_equal(ntk, one.ntk)
    np.testing.assert_array_equal(ntk, ntk.T)
    cross = nd.gram(X, Y, network=k, chunks=4).compute(scheduler="sync")
    np.testing.assert_array_equal(cross, k(X, Y))
    with pytest.raises(InputError, match="not both"):
        nd.gram(X, network=MIXED, activation="relu", depth=2)


def test_auto_is_fixed_to_the_backend_of_the_whole_matrix() -> None:
    k = ntksym.kernel(OTHER)
    assert k.resolved(10).backend == "layers"
    assert k.resolved(FUSED_MIN_PAIRS).backend == "fused"  # (chosen without compiling)
    assert ntksym.kernel(MIXED).resolved(FUSED_MIN_PAIRS).backend == "fused"  # (Dropout too)
    quadrature = stax.serial(stax.Dense(8, 1.1), stax.Gelu(approximate=True), stax.Dense(1))
    assert ntksym.kernel(quadrature).resolved(FUSED_MIN_PAIRS).backend == "fused"  # (series)
    kinked = stax.serial(stax.Dense(8, 1.1), stax.Elementwise("abs(u) + tanh(u)"), stax.Dense(1))
    assert ntksym.kernel(kinked).resolved(FUSED_MIN_PAIRS).backend == "layers"  # (not covered)
    homogeneous = ntksym.kernel(
        stax.serial(stax.Dense(8, 1.2, 0.1), stax.Relu(), stax.Dense(1, 1.2, 0.1))
    )
    assert homogeneous.resolved(FUSED_MIN_PAIRS) is homogeneous
    assert k.replace(backend="layers").resolved(FUSED_MIN_PAIRS).backend == "layers"


def test_replace_and_degree() -> None:
    k = ntksym.kernel(MIXED)
    X = _x(6)
    assert k.degree is None
    assert k.replace(backend="layers") == DescribedKernel(k.description, "layers")
    other = k.replace(description=OTHER)
    assert (
        isinstance(other, DescribedKernel) and other.description == ntksym.kernel(OTHER).description
    )
    np.testing.assert_array_equal(other(X), evaluate(other.description, X, None, "ntk"))
    for bad in ({"depth": 3}, {"degree": 20}, {"activation": "relu"}):
        with pytest.raises(InputError, match="changes only description and backend"):
            k.replace(**bad)
    with pytest.raises(InputError, match="backend of a described network"):
        k.replace(backend="dual")


@pytest.mark.parametrize("net", [MIXED, "relu"])
def test_one_signature_for_both_kinds(net: object) -> None:
    k = ntksym.kernel(net) if net != "relu" else ntksym.kernel("relu", depth=3, bias_std=0.1)
    X = _x(5)
    both = k(X, get=("ntk", "nngp"))
    assert both._fields == ("ntk", "nngp")
    np.testing.assert_array_equal(both.ntk, k(X))
    pair = k(X[0], X[2], get=("nngp", "ntk"))
    assert isinstance(pair.nngp, float) and pair.ntk == k(X[:1], X[2:3])[0, 0]
    single = k(X, dtype=np.float32)
    assert single.dtype == np.float32 and np.array_equal(single, k(X).astype(np.float32))
    with pytest.raises(InputError, match="get must be 'nngp', 'ntk'"):
        k(X, get="both")
    with pytest.raises(InputError, match="dtype must be float64 or float32"):
        k(X, dtype=np.int32)
    with pytest.raises(InputError, match="same number of features"):
        k(X, X[:, :2])
    with pytest.raises(InputError, match="two 1-D vectors"):
        k(X, X[0])


# ---------------------------------------------------------------- Jacobian of a described net
JACOBIAN_NETS = {
    "residual": stax.serial(
        stax.Dense(6, 1.2, 0.1),
        stax.FanOut(2),
        stax.parallel(
            stax.serial(stax.Elementwise("tanh(u)"), stax.Dense(6, 1.1, 0.2)), stax.Identity()
        ),
        stax.FanInSum(),
        stax.Relu(),
        stax.Dense(2, 0.9, 0.3),
    ),
    "layernorm": stax.serial(
        stax.Dense(7, 1.3, 0.2), stax.LayerNorm(), stax.Erf(), stax.Dense(2, 1.0, 0.1)
    ),
    "standard": stax.serial(
        stax.Dense(5, 1.4, 0.3, parameterization="standard"),
        stax.Gelu(),
        stax.Dense(3, 0.8, None, parameterization="standard", s=(2, 1)),
        stax.Dense(2, 1.1, 0.2, parameterization="standard"),
    ),
    "repeat_sign": stax.serial(
        stax.Dense(5, 1.1, 0.1),
        stax.repeat(stax.serial(stax.Relu(), stax.Dense(5, 1.2, 0.1)), 2),
        stax.Sign(),  # (no gradient passes it: the earlier parameters' columns are zero)
        stax.Dense(2, 1.0, 0.2),
    ),
    "dropout": stax.serial(
        stax.Dense(6, 1.2, 0.1), stax.Relu(), stax.Dropout(0.7), stax.Dense(2, 1.0, 0.2)
    ),
}


@pytest.mark.parametrize("name", sorted(JACOBIAN_NETS))
def test_jacobian_against_finite_differences_and_the_exact_ntk(name: str) -> None:
    from ntksym.empirical.architecture import apply
    from ntksym.empirical.jacobian import flatten, unflatten

    net = ntksym.Network(JACOBIAN_NETS[name], 3, seed=4)
    X = np.random.default_rng(5).standard_normal((4, 3))
    J = net.jacobian(X, rng=11)
    assert J.shape == (4, 2, net.n_params)
    theta = flatten(net.params)
    assert theta.size == net.n_params
    np.testing.assert_array_equal(flatten(unflatten(net.params, theta)), theta)
    # central differences of the outputs, the Dropout masks fixed by the same seed
    h = 1e-6
    for p in sorted({0, net.n_params - 1, *np.random.default_rng(6).integers(0, theta.size, 12)}):
        step = np.zeros_like(theta)
        step[p] = h
        up = apply(net.description, unflatten(net.params, theta + step), X, rng=11)
        down = apply(net.description, unflatten(net.params, theta - step), X, rng=11)
        np.testing.assert_allclose(J[:, :, p], (up - down) / (2 * h), rtol=1e-6, atol=1e-8)
    # J J^T equals the reverse-mode NTK of the same draw, with a second set of inputs too
    Y = np.random.default_rng(7).standard_normal((3, 3))
    for args in ((X,), (X, Y)):
        exact = net.ntk(*args, rng=11)
        via_j = net.ntk_jacobian(*args, rng=11)
        assert np.max(np.abs(via_j - exact)) <= 1e-12 * np.max(np.abs(exact))


def test_jacobian_dropout_masks_come_from_the_rng() -> None:
    net = ntksym.Network(JACOBIAN_NETS["dropout"], 3, seed=4)
    X = np.random.default_rng(5).standard_normal((4, 3))
    np.testing.assert_array_equal(net.jacobian(X, rng=3), net.jacobian(X, rng=3))
    assert not np.array_equal(net.jacobian(X, rng=3), net.jacobian(X, rng=4))
    with pytest.raises(InputError, match="rng"):
        net.jacobian(X)
    test_mode = stax.serial(
        stax.Dense(6), stax.Relu(), stax.Dropout(0.7, mode="test"), stax.Dense(1)
    )
    assert ntksym.Network(test_mode, 3).jacobian(X).shape[:2] == (4, 1)
    with pytest.raises(InputError, match="X has 2 features per input, but 3"):
        net.jacobian(X[:, :2], rng=3)


# ---------------------------------------------------------------- ntksym gram --network
NET_FILE = """from ntksym import stax

net = stax.serial(
    stax.Dense(16, 1.3, 0.2),
    stax.FanOut(2),
    stax.parallel(stax.serial(stax.Erf(), stax.Dense(16, 1.1, 0.1)), stax.Identity()),
    stax.FanInSum(),
    stax.Relu(),
    stax.Dense(16, 1.2, 0.3, parameterization="standard"),
    stax.LayerNorm(),
    stax.Dropout(0.8),
    stax.Dense(1, 0.9, 0.05),
)
"""


def test_cli_gram_of_a_network_file(tmp_path: Path, capsys) -> None:
    from ntksym.cli import main

    X = _x(14)
    np.save(tmp_path / "X.npy", X)
    (tmp_path / "net.py").write_text(NET_FILE)
    args = ["gram", str(tmp_path / "X.npy"), "--network", str(tmp_path / "net.py"), "--quiet"]
    assert (
        main([*args, "--get", "both", "--tile", "4", "--resume", "-o", str(tmp_path / "K.npy")])
        == 0
    )
    K = np.load(tmp_path / "K.npy")
    one = ntksym.kernel(MIXED)(X, get=("nngp", "ntk"))
    np.testing.assert_array_equal(K[0], one.nngp)
    np.testing.assert_array_equal(K[1], one.ntk)
    assert main([*args, "-o", str(tmp_path / "K.npy")]) == 2
    assert "already exists" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "extra", "match"),
    [
        (NET_FILE, ["--depth", "3"], "drop --depth"),
        (NET_FILE, ["--activation", "relu", "--bias-std", "0.1"], "drop --activation, --bias-std"),
        (NET_FILE, ["--backend", "numba"], "backend of a described network"),
        ("net = 3\n", [], "defines no `net` that is a ntksym.stax network"),
        ("net = (\n", [], "syntax error"),
        ("raise ValueError('boom')\n", [], "raised ValueError: boom"),
        (None, [], "gram needs --activation and --depth, or --network"),
    ],
)
def test_cli_network_errors_are_one_line(
    tmp_path: Path, capsys, text: str | None, extra: list[str], match: str
) -> None:
    from ntksym.cli import main

    np.save(tmp_path / "X.npy", _x(4))
    args = ["gram", str(tmp_path / "X.npy"), "-o", str(tmp_path / "K.npy"), *extra]
    if text is not None:
        (tmp_path / "bad.py").write_text(text)
        args += ["--network", str(tmp_path / "bad.py")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err
    assert not (tmp_path / "K.npy").exists()


def test_cli_refuses_to_resume_with_another_network_file(tmp_path: Path, capsys) -> None:
    from ntksym.cli import main

    X = _x(20)
    np.save(tmp_path / "X.npy", X)
    out = tmp_path / "K.npy"
    with pytest.raises(Interrupted):
        gram_to_file(X, None, out, network=MIXED, tile=5, resume=True, progress=_sigterm_after(2))
    (tmp_path / "other.py").write_text(NET_FILE.replace("Dropout(0.8)", "Dropout(0.7)"))
    args = ["gram", str(tmp_path / "X.npy"), "-o", str(out), "--tile", "5", "--resume"]
    assert main([*args, "--network", str(tmp_path / "other.py"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "cannot resume" in err and "network_sha256" in err
    (tmp_path / "same.py").write_text(NET_FILE)
    assert main([*args, "--network", str(tmp_path / "same.py"), "--quiet"]) == 0
    np.testing.assert_array_equal(np.load(out), ntksym.kernel(MIXED)(X))


@pytest.mark.exhaustive
def test_fused_tiles_and_dask_hold_the_numbers_of_one_call(tmp_path: Path) -> None:
    # 300 x 300 entries: "auto" takes the generated fused module (compiled once, ~30 s)
    X = _x(300, d=8)
    k = ntksym.kernel(OTHER)
    assert k.resolved(300 * 300).backend == "fused"
    one = k(X, get=("nngp", "ntk"))
    out = gram_to_file(X, None, tmp_path / "K.npy", network=OTHER, get="both", tile=128)
    np.testing.assert_array_equal(np.load(out)[0], one.nngp)
    np.testing.assert_array_equal(np.load(out)[1], one.ntk)
    np.testing.assert_array_equal(one.ntk, one.ntk.T)
    np.testing.assert_allclose(one.ntk, k.replace(backend="layers")(X), rtol=1e-12)
    pytest.importorskip("dask.array")
    import ntksym.dask as nd

    lazy = nd.gram(X, network=OTHER, chunks=100)
    np.testing.assert_array_equal(lazy.compute(scheduler="sync"), one.ntk)
