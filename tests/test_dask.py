"""ntksym.dask.gram on a local dask.distributed cluster (skipped when dask is absent)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("dask.array")
distributed = pytest.importorskip("dask.distributed")

import dask  # noqa: E402
import dask.array as da  # noqa: E402
from conftest import TOL  # noqa: E402

import ntksym  # noqa: E402
import ntksym.dask as nd  # noqa: E402
from ntksym.errors import InputError  # noqa: E402


@pytest.fixture(scope="module")
def client():  # noqa: ANN201
    with distributed.Client(
        processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None
    ) as c:
        yield c


def _ints(n: int, d: int, seed: int) -> np.ndarray:
    """Small integers: Gram products are exact, so blocks must equal one shot bit for bit."""
    return np.random.default_rng(seed).integers(-5, 6, size=(n, d)).astype(np.float64)


def test_symmetric_blocks_equal_one_shot_on_cluster(client) -> None:  # noqa: ANN001
    X = _ints(53, 7, seed=0)
    X[11] = X[2]
    K = nd.gram(X, activation="relu", depth=4, bias_std=0.2, get=("nngp", "ntk"), chunks=10)
    assert isinstance(K.ntk, da.Array) and K.ntk.chunks == ((10,) * 5 + (3,),) * 2
    nngp, ntk = dask.compute(*K)
    one = ntksym.kernel("relu", 4, 0.2)(X, get=("nngp", "ntk"))
    np.testing.assert_array_equal(nngp, one.nngp)
    np.testing.assert_array_equal(ntk, one.ntk)
    np.testing.assert_array_equal(ntk, ntk.T)


def test_two_inputs_and_dask_arraygaussian_inputs(client) -> None:  # noqa: ANN001
    X, Y = _ints(40, 6, seed=1), _ints(25, 6, seed=2)
    K = nd.gram(X, Y, activation="erf", depth=3, bias_std=0.1, weight_std=1.3, chunks=8)
    one = ntksym.kernel("erf", 3, 0.1, 1.3)(X, Y)
    np.testing.assert_array_equal(K.compute(), one)
    Kd = nd.gram(da.from_array(X, chunks=(15, 6)), da.from_array(Y, chunks=(9, 6)),
                 activation="erf", depth=3, bias_std=0.1, weight_std=1.3, get="ntk")  # fmt: skip
    assert Kd.chunks == ((15, 15, 10), (9, 9, 7))
    np.testing.assert_array_equal(Kd.compute(), one)


def test_float_inputs_match_reference(client) -> None:  # noqa: ANN001
    from ntksym import reference

    rng = np.random.default_rng(3)
    X = rng.standard_normal((12, 4))
    K = nd.gram(X, activation="abs", depth=3, bias_std=0.3, get="nngp", chunks=5).compute()
    ref = reference.kernel("abs", X, depth=3, bias_std=0.3)[0]
    np.testing.assert_allclose(K, ref, rtol=TOL.kernel)


@pytest.mark.parametrize(
    ("X", "kwargs", "match"),
    [
        (np.ones(3), {}, "2-D"),
        (np.array([[1.0, np.nan]]), {}, "NaN"),
        (np.ones((2, 2)), {"chunks": 0}, "chunks"),
        (np.ones((2, 2)), {"depth": 0}, "at least 1"),
        (np.ones((2, 2)), {"activation": "relu6"}, "unknown"),
        (np.ones((2, 2)), {"get": "both"}, "get must be"),
        (da.ones((2, 2), dtype=complex), {}, "real numbers"),
    ],
)
def test_bad_input_is_named_before_computing(X, kwargs, match) -> None:  # noqa: ANN001
    args = {"activation": "relu", "depth": 2} | kwargs
    with pytest.raises((InputError, ValueError), match=match):
        nd.gram(X, **args)
