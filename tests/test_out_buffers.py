"""``k(X, out=...)``: results written into the caller's arrays, the same as a fresh call."""

import numpy as np
import pytest

import ntksym
from ntksym.codegen import load
from ntksym.errors import InputError

X = np.random.default_rng(3).standard_normal((37, 5))
Y = np.random.default_rng(4).standard_normal((11, 5))


def _garbage(shape, dtype=np.float64):
    """An output array full of NaN, so that an entry left unwritten shows."""
    return np.full(shape, np.nan, dtype=dtype)


@pytest.mark.parametrize(
    "act, backend",
    [("relu", "numba"), ("erf", "numba"), ("relu", "numpy"), ("erf", "numpy")],
)
def test_out_is_filled_with_exactly_the_fresh_result(act, backend):
    """Both kernels, each alone, K(X, X) and K(X, Y): bit for bit the result of a call
    without out=, returned as the very arrays passed in."""
    k = ntksym.kernel(act, 3, bias_std=0.2, backend=backend)
    for X2 in (None, Y):
        shape = (len(X), len(X) if X2 is None else len(X2))
        fresh = k(X, X2, get=("nngp", "ntk"))
        outs = (_garbage(shape), _garbage(shape))
        got = k(X, X2, get=("nngp", "ntk"), out=outs)
        assert got.nngp is outs[0] and got.ntk is outs[1]
        assert np.array_equal(got.nngp, fresh.nngp) and np.array_equal(got.ntk, fresh.ntk)
        swapped = k(X, X2, get=("ntk", "nngp"), out=(_garbage(shape), _garbage(shape)))
        assert np.array_equal(swapped.ntk, fresh.ntk)
        for g in ("nngp", "ntk"):
            o = _garbage(shape)
            assert k(X, X2, get=g, out=o) is o
            assert np.array_equal(o, getattr(fresh, g))
        # reused: the second call into the same arrays gives the same again
        again = k(X, X2, get=("nngp", "ntk"), out=outs)
        assert np.array_equal(again.ntk, fresh.ntk)


@pytest.mark.parametrize("act", ["relu", "erf"])
def test_generated_modules_take_out_directly(act):
    """The module's own entry points (the ones a user may import without ntksym)."""
    mod = load(ntksym.activations.get_activation(act), "numba")
    fresh_k, fresh_t = mod.nngp_ntk(X, None, 4, 0.1, 1.3)
    K, T = _garbage((37, 37)), _garbage((37, 37))
    got = mod.nngp_ntk(X, None, 4, 0.1, 1.3, out=(K, T))
    assert got[0] is K and got[1] is T
    assert np.array_equal(K, fresh_k) and np.array_equal(T, fresh_t)
    Q = _garbage((37, 11))
    assert mod.nngp(X, Y, 4, 0.1, 1.3, out=Q) is Q
    assert np.array_equal(Q, mod.nngp(X, Y, 4, 0.1, 1.3))
    assert mod.ntk(X, Y, 4, 0.1, 1.3, out=Q) is Q
    assert np.array_equal(Q, mod.nngp_ntk(X, Y, 4, 0.1, 1.3)[1])
    with pytest.raises(ValueError, match=r"out\[1\] \(the NTK\) has dtype float32"):
        mod.nngp_ntk(X, None, 2, out=(None, np.zeros((37, 37), np.float32)))
    with pytest.raises(ValueError, match="out shares memory with X1"):
        buf = np.zeros(37 * 37)
        Z = buf[: 37 * 5].reshape(37, 5)
        Z[:] = X
        mod.nngp(Z, None, 2, out=buf.reshape(37, 37))
    with pytest.raises(ValueError, match="out must be None or a pair"):
        mod.nngp_ntk(X, None, 2, out=K)


def test_the_dual_path_and_float32_storage_copy_into_out():
    """Paths that do not write in place still fill out, with the values of a fresh call."""
    k = ntksym.kernel("relu", 3, backend="dual")
    o = _garbage((37, 37))
    assert k(X, out=o) is o and np.array_equal(o, k(X))
    k = ntksym.kernel("relu", 3)
    o32 = _garbage((37, 11), np.float32)
    assert k(X, Y, get="nngp", dtype=np.float32, out=o32) is o32
    assert np.array_equal(o32, k(X, Y, get="nngp", dtype=np.float32))


def _aliasing():
    buf = np.zeros(37 * 37)
    Z = buf[: 37 * 5].reshape(37, 5)
    Z[:] = X
    return Z, buf.reshape(37, 37)


@pytest.mark.parametrize(
    "get, out, match",
    [
        ("ntk", np.zeros((37, 36)), r"out has shape \(37, 36\); it must be a writeable"),
        ("ntk", np.zeros((37, 37), np.float32), "out has dtype float32"),
        ("ntk", np.zeros((37, 37), np.int64), "out has dtype int64"),
        ("ntk", np.zeros((37, 37), order="F"), "out has a non-contiguous layout"),
        ("ntk", np.zeros((37, 74))[:, ::2], "out has a non-contiguous layout"),
        ("ntk", np.zeros((37, 37)).tolist(), "out must be a writeable .* got list"),
        ("ntk", (np.zeros((37, 37)),), "out must be a writeable .* got tuple"),
        (("nngp", "ntk"), np.zeros((37, 37)), "out must be a tuple of 2 arrays"),
        (("nngp", "ntk"), (np.zeros((37, 37)),), "out must be a tuple of 2 arrays.* length 1"),
        (("nngp", "ntk"), (np.zeros((37, 37)), None), r"out\[1\] \(ntk\) must be a writeable"),
    ],
)
def test_bad_out_is_refused_saying_what_is_allowed(get, out, match):
    with pytest.raises(InputError, match=match):
        ntksym.kernel("relu", 2)(X, get=get, out=out)


def test_read_only_aliasing_and_shared_outputs_are_refused():
    k = ntksym.kernel("relu", 2)
    ro = np.zeros((37, 37))
    ro.flags.writeable = False
    with pytest.raises(InputError, match="out has a read-only buffer"):
        k(X, out=ro)
    Z, big = _aliasing()
    with pytest.raises(InputError, match="out shares memory with X1"):
        k(Z, out=big)
    with pytest.raises(InputError, match="shares memory with X2"):
        k(X, Z, get="nngp", out=big)
    first, second = np.zeros((2, 37, 37))
    with pytest.raises(InputError, match=r"out\[0\] \(nngp\) and out\[1\] \(ntk\) share memory"):
        k(X, get=("nngp", "ntk"), out=(first, first[:, :]))
    # two halves of one buffer are fine: they do not overlap
    got = k(X, get=("nngp", "ntk"), out=(first, second))
    assert np.array_equal(second, k(X)) and got.nngp is first
    with pytest.raises(InputError, match="out= needs 2-D inputs"):
        k(X[0], X[1], out=np.zeros((1, 1)))


def test_a_refused_out_is_left_untouched():
    """Validation comes before any work: a wrong out (or a wrong partner) is not written."""
    k = ntksym.kernel("relu", 2)
    good = _garbage((37, 37))
    with pytest.raises(InputError):
        k(X, get=("nngp", "ntk"), out=(good, np.zeros((37, 37), np.float32)))
    assert np.isnan(good).all()
