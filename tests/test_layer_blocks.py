"""The layer maps in blocks of rows (``ntksym.kernels.layer_blocks``).

Blocks must give the bits of one whole evaluation (networks with closed-form maps: a
Dropout-train network, whose self pairs a block must locate, and a network ending in two
branches), K(X, X) exactly symmetric, the NNGP alone when only it is asked for, and the
memory of ``kernel_fn(..., backend="layers")`` within 1.3x of its outputs (tracemalloc).
Activations without a closed form (quadrature) agree to rounding of the kernel's scale.
"""

import tracemalloc

import numpy as np
import pytest
from conftest import count_coefficients

from ntksym import stax
from ntksym.architecture.description import as_description
from ntksym.kernels.layer_blocks import block_rows, evaluate_layers, live_branches

RNG = np.random.default_rng(5)
X = RNG.standard_normal((37, 5))
X[20] = X[3]  # a repeated input: another example (another Dropout mask) than row 3
Y = RNG.standard_normal((23, 5))
BOTH = ("nngp", "ntk")

NETS = {
    "dropout": stax.serial(
        stax.Dense(64, 1.2, 0.1),
        stax.Relu(),
        stax.Dropout(0.7),
        stax.Dense(64, 1.1, 0.2),
        stax.Erf(),
        stax.Dropout(0.5),
        stax.Dense(1, 0.9, 0.1),
    ),
    "two-branches": stax.serial(
        stax.Dense(64, 1.2, 0.1),
        stax.Gelu(),
        stax.FanOut(2),
        stax.parallel(
            stax.serial(stax.Dense(8, 1.0, 0.1), stax.Relu(), stax.Dropout(0.8)),
            stax.Dense(8, 0.7, 0.3),
        ),
    ),
}


def _run(name, B, wanted, rows):
    return evaluate_layers(as_description(NETS[name]), X, B, wanted, rows=rows)


@pytest.mark.parametrize("name", sorted(NETS))
@pytest.mark.parametrize("rows", [3, 16, 21])
def test_blocks_give_the_bits_of_one_block(name, rows):
    for B in (None, Y):
        whole, several = _run(name, B, BOTH, X.shape[0])
        blocked, several_b = _run(name, B, BOTH, rows)
        assert several == several_b == (name == "two-branches")
        assert len(whole) == len(blocked) == live_branches(as_description(NETS[name]))[1]
        for a, b in zip(whole, blocked, strict=True):
            for kind in BOTH:
                assert np.array_equal(a[kind], b[kind]), (kind, B is None)
                if B is None:
                    assert np.array_equal(b[kind], b[kind].T)


@pytest.mark.parametrize("name", sorted(NETS))
def test_nngp_alone_is_the_nngp_of_both(name):
    for B in (None, Y):
        both, _ = _run(name, B, BOTH, 7)
        alone, _ = _run(name, B, ("nngp",), 7)
        for a, b in zip(both, alone, strict=True):
            assert set(b) == {"nngp"}
            assert np.array_equal(a["nngp"], b["nngp"])


def test_blocks_keep_dropouts_self_pairs():
    """Row i's own pair is the diagonal at global index i in every block; a twin is not."""
    same, _ = _run("dropout", None, BOTH, 5)
    copy, _ = _run("dropout", X.copy(), BOTH, 5)  # K(X, X') with X' == X: other examples
    for kind in BOTH:
        k, c = same[0][kind], copy[0][kind]
        diag = np.eye(X.shape[0], dtype=bool)
        assert np.all(np.diag(k) > 1.1 * np.diag(c))  # one mask: divided by the rates
        np.testing.assert_allclose(k[~diag], c[~diag], rtol=0, atol=1e-15 * np.abs(k).max())
        assert k[3, 20] < 0.9 * k[3, 3]  # the twin of row 3 keeps independent masks


def test_quadrature_activations_agree_to_rounding():
    """Blocks change the vectorised rule's batches: the kernels agree to ~1e-15 of scale."""
    net = as_description(
        stax.serial(stax.Dense(16, 1.2, 0.1), stax.Elementwise("tanh(u)"), stax.Dense(1, 0.9))
    )
    A, B = X[:8], Y[:5]
    for other in (None, B):
        whole, _ = evaluate_layers(net, A, other, BOTH, rows=10)
        blocked, _ = evaluate_layers(net, A, other, BOTH, rows=4)
        for kind in BOTH:
            w, b = whole[0][kind], blocked[0][kind]
            assert np.max(np.abs(w - b)) <= 1e-14 * np.max(np.abs(w))
            if other is None:
                assert np.array_equal(b, b.T)


def test_quadrature_coefficients_are_taken_per_variance_not_per_entry(monkeypatch):
    """The Mehler series of a quadrature activation takes Hermite coefficients for each
    variance of a layer once per block of rows (its rows) and once in all (its columns, kept
    in the series' memo), not for each entry of the block: with 48 x 48 inputs in blocks of
    4 rows, the variances integrated stay a few times N per layer (the broadcast copies
    passed before took 2 N per block and map: 48 N per layer here)."""
    from ntksym.codegen.runtime import numpy_mehler

    net = as_description(
        stax.serial(stax.Dense(16, 1.2, 0.1), stax.Elementwise("tanh(u)"), stax.Dense(1, 0.9))
    )
    A = np.random.default_rng(8).standard_normal((48, 5))
    evaluate_layers(net, A[:6], None, BOTH, rows=4)  # (warm: the activation's derivation)
    numpy_mehler._MEMO.clear()
    seen = count_coefficients(monkeypatch, numpy_mehler)
    out, _ = evaluate_layers(net, A, None, BOTH, rows=4)
    assert np.all(np.isfinite(out[0]["ntk"]))
    # one layer of tanh, two maps (E[s s], E[s' s']), each at most: the rows (48, block by
    # block), the rows' own variances for the diagonal (48) and the columns (48, once)
    assert 0 < sum(seen) <= 2 * 3 * 48, seen


def test_block_rows_bound_the_temporaries():
    net = as_description(NETS["dropout"])
    assert block_rows(net, 100, 100, 2) == 100  # small: one block (the floor budget)
    rows = block_rows(net, 8000, 8000, 2)
    assert 1 <= rows < 8000
    assert rows * 8000 * 8 * 40 <= 0.2 * 2 * 8000**2 * 8
    tanh = as_description(stax.serial(stax.Dense(8), stax.Elementwise("tanh(u)"), stax.Dense(1)))
    assert block_rows(tanh, 8000, 8000, 2) * 8000 >= 65536  # quadrature: large blocks


@pytest.mark.slow
def test_layer_path_memory_is_bounded_by_the_outputs():
    """tracemalloc's peak of kernel_fn(backend="layers") at N=1500: <= 1.3x the outputs."""
    net = stax.serial(
        stax.Dense(64, 1.2, 0.1), stax.Relu(), stax.Dropout(0.8), stax.Dense(1, 0.9, 0.1)
    )
    Xl = np.random.default_rng(0).standard_normal((1500, 8))
    # warm: the maps' one-time derivation and lambdify are not the call's working memory
    # (without this the test failed when run alone: 1.41x)
    net.kernel_fn(Xl[:20], None, ("nngp", "ntk"), backend="layers")
    tracemalloc.start()
    try:
        nngp, ntk = net.kernel_fn(Xl, None, ("nngp", "ntk"), backend="layers")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= 1.3 * (nngp.nbytes + ntk.nbytes)
    assert np.array_equal(nngp, nngp.T)


def test_symmetrize_copies_the_upper_triangle_across_tiles():
    from ntksym.kernels.layer_blocks import _SYM_TILE, symmetrize

    n = 2 * _SYM_TILE + 37  # a partial tile at the end
    K = np.random.default_rng(9).standard_normal((n, n))
    upper = np.triu(K)
    symmetrize(K)
    np.testing.assert_array_equal(np.triu(K), upper)
    np.testing.assert_array_equal(K, K.T)


def test_a_tiled_gram_holds_the_bits_of_one_call_where_orientations_round_apart(tmp_path):
    # integer inputs: the Gram products are exact whatever the block; the erf network's maps
    # round K(x, y) and K(y, x) apart by an ulp at some pairs, which averaging would expose
    from ntksym import kernel
    from ntksym.kernels.tiles import gram_to_file

    Z = np.random.default_rng(0).integers(-5, 6, size=(20, 5)).astype(np.float64)
    net = stax.serial(stax.Dense(16, 1.3, 0.2), stax.Erf(), stax.Dense(1, 1.1, 0.1))
    k = kernel(net, backend="layers")
    whole = k(Z)
    cross = np.array([[k(Z[i : i + 1], Z[j : j + 1])[0, 0] for j in range(20)] for i in range(20)])
    assert np.any(cross != cross.T)  # the two orientations differ somewhere
    out = gram_to_file(Z, None, tmp_path / "K.npy", network=net, backend="layers", tile=5)
    np.testing.assert_array_equal(np.load(out), whole)
    np.testing.assert_array_equal(whole, whole.T)


def test_k_xx_blocks_compute_the_upper_triangle_only(monkeypatch):
    """K(X, X): each block of rows runs against the columns from its first row on (about
    half the pairs), and its upper triangle holds the bits of the full rectangle K(X, X')
    with X' a copy of X (every pair computed; not the diagonal: Dropout's self pairs)."""
    from ntksym.kernels import layer_blocks

    shapes = []
    real = layer_blocks.input_block

    def spy(X1, X2, *args, **kwargs):
        shapes.append((X1.shape[0], X2.shape[0]))
        return real(X1, X2, *args, **kwargs)

    monkeypatch.setattr(layer_blocks, "input_block", spy)
    net = as_description(NETS["two-branches"])
    n, rows = X.shape[0], 5
    half, _ = evaluate_layers(net, X, None, BOTH, rows=rows)
    assert [c for _, c in shapes] == list(range(n, 0, -rows))
    assert sum(r * c for r, c in shapes) <= n * (n + rows) / 2
    full, _ = evaluate_layers(net, X, X.copy(), BOTH, rows=rows)
    upper = np.triu(np.ones((n, n), dtype=bool), 1)
    for a, b in zip(half, full, strict=True):
        for kind in BOTH:
            np.testing.assert_array_equal(a[kind][upper], b[kind][upper])
            np.testing.assert_array_equal(a[kind], a[kind].T)


def test_k_xx_blocks_grow_as_their_columns_shrink():
    net = as_description(NETS["dropout"])
    n = 8000
    first, late = block_rows(net, n, n, 2, n), block_rows(net, n, n, 2, n // 4)
    assert first == block_rows(net, n, n, 2)
    assert 3 * first <= late <= 4 * first + 1  # the same bytes per block
