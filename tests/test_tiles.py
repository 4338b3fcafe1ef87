"""K(X, X) of the Numba modules across tiles: the mirror and the non-finite count per tile.

The Numba kernel computes the upper triangle in tiles of 16 rows x 256 columns, copies
each tile into the lower triangle and counts its non-finite entries while it is in cache,
and skips the last layer's determinant. These tests use N = 300 (two column chunks, a
ragged last block of 12 rows) and compare with the NumPy backend, a separate
implementation (whole-row blocks, its own mirror), and with the K(X1, X2) path.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TOL

from ntksym.codegen import load


def _inputs(n: int = 300, d: int = 7) -> np.ndarray:
    return np.random.default_rng(11).standard_normal((n, d))


@pytest.mark.parametrize("name", ["relu", "erf"])
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_symmetric_tiles_match_numpy_backend_and_the_pair_path(name: str, depth: int) -> None:
    X = _inputs()
    fast, ref = load(name, "numba"), load(name, "numpy")
    K, T = fast.nngp_ntk(X, None, depth, 0.1, 1.2)
    assert np.array_equal(K, K.T) and np.array_equal(T, T.T)
    Kr, Tr = ref.nngp_ntk(X, None, depth, 0.1, 1.2)
    K2, T2 = fast.nngp_ntk(X, X.copy(), depth, 0.1, 1.2)
    # entries near 0 are sums that cancel (S12 + Theta W2 E'), whose rounding in either
    # backend is relative to the terms, not to the sum: tolerance relative to the largest
    for got, want in ((K, Kr), (T, Tr), (K, K2), (T, T2)):
        np.testing.assert_allclose(got, want, rtol=0, atol=TOL.kernel * np.abs(want).max())
    # the NNGP alone (no NTK, no last determinant) is the same NNGP
    Kn = fast.nngp(X, None, depth, 0.1, 1.2)
    np.testing.assert_allclose(Kn, K, rtol=0, atol=TOL.map * np.abs(K).max())


@pytest.mark.parametrize("get", ["nngp", "nngp_ntk"])
def test_overflow_in_a_late_tile_is_an_error(get: str) -> None:
    # row 290's products with every row overflow: in the second column chunk of the
    # first blocks, and in the ragged last block
    X = _inputs()
    X[290] *= 1e160
    m = load("relu", "numba")
    with pytest.raises(ValueError, match="overflowed"), np.errstate(all="ignore"):
        getattr(m, get)(X, None, 2, 0.1, 1.0)
