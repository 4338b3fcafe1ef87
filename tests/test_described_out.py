"""``out=`` for described networks: ``ntksym.kernel(net)(X, out=...)`` and ``kernel_fn``.

The same semantics as the homogeneous kernel's ``out`` (tests/test_out_buffers.py): the
values of a call without ``out``, bit for bit, in the caller's arrays, which are
returned; every bad array refused by the same checks before any work. The fused network
is test_fused.py's (one Numba compile for both files).
"""

import numpy as np
import pytest
from test_fused import NET

import ntksym
from ntksym import stax
from ntksym.codegen import architecture
from ntksym.errors import InputError

X = np.random.default_rng(21).standard_normal((37, 6))
Y = np.random.default_rng(22).standard_normal((11, 6))
HOMOGENEOUS = stax.serial(stax.Dense(8, 1.3, 0.2), stax.Erf(), stax.Dense(1, 1.3, 0.2))
BOTH = ("nngp", "ntk")


def _garbage(shape, dtype=np.float64):
    """An output array full of NaN, so that an entry left unwritten shows."""
    return np.full(shape, np.nan, dtype=dtype)


def _calls(layer, backend, x1):
    """The two ways in: the DescribedKernel and the stax kernel_fn (same arguments)."""
    k = ntksym.kernel(layer, backend=backend)
    return [
        lambda x2, get, out=None: k(x1, x2, get=get, out=out),
        lambda x2, get, out=None: layer.kernel_fn(x1, x2, get=get, backend=backend, out=out),
    ]


@pytest.mark.parametrize(
    "layer, backend, n", [(NET, "fused", 37), (NET, "layers", 37), (HOMOGENEOUS, "auto", 37)]
)
def test_out_holds_exactly_the_fresh_result(layer, backend, n):
    """Both kernels, each alone, in either order, K(X, X) and K(X, Y), called twice into
    the same arrays: bit for bit the result without out=, in the arrays passed in."""
    for call in _calls(layer, backend, X[:n]):
        for X2 in (None, Y[: n // 2 + 1]):
            shape = (n, n if X2 is None else len(X2))
            fresh = call(X2, BOTH)
            outs = (_garbage(shape), _garbage(shape))
            for _ in range(2):  # reused: the second call gives the same again
                got = call(X2, BOTH, outs)
                assert got.nngp is outs[0] and got.ntk is outs[1]
                np.testing.assert_array_equal(got.nngp, fresh.nngp)
                np.testing.assert_array_equal(got.ntk, fresh.ntk)
            swapped = call(X2, ("ntk", "nngp"), (_garbage(shape), _garbage(shape)))
            np.testing.assert_array_equal(swapped.ntk, fresh.ntk)
            np.testing.assert_array_equal(swapped.nngp, fresh.nngp)
            for g in BOTH:
                o = _garbage(shape)
                assert call(X2, g, o) is o
                np.testing.assert_array_equal(o, getattr(fresh, g))
            if X2 is None:
                np.testing.assert_array_equal(outs[1], outs[1].T)  # exactly symmetric


def test_fused_module_forms_the_kernels_in_the_callers_arrays():
    """The fused module's Gram product goes into the NNGP array, the NTK into its array:
    no result copied in (the arrays come back as they went)."""
    fk = architecture.fused_kernel(NET.description)
    fresh = fk(X)
    K, T = _garbage((37, 37)), _garbage((37, 37))
    got = fk(X, None, True, out=(K, T))
    assert got[0] is K and got[1] is T
    np.testing.assert_array_equal(K, fresh[0])
    np.testing.assert_array_equal(T, fresh[1])
    Q = _garbage((37, 11))
    nngp, ntk = fk(X, Y, False, out=(Q, None))
    assert nngp is Q and ntk is None
    np.testing.assert_array_equal(Q, fk(X, Y)[0])


def test_float32_storage_is_rounded_into_out():
    k = ntksym.kernel(NET, backend="fused")
    o32 = _garbage((37, 11), np.float32)
    assert k(X, Y, get="nngp", dtype=np.float32, out=o32) is o32
    np.testing.assert_array_equal(o32, k(X, Y, get="nngp", dtype=np.float32))


def _aliasing():
    """X's values at the start of a buffer that is also a (37, 37) output."""
    buf = np.zeros(37 * 37)
    Z = buf[: X.size].reshape(X.shape)
    Z[:] = X
    return Z, buf.reshape(37, 37)


def _read_only():
    A = np.zeros((37, 37))
    A.flags.writeable = False
    return A


def _bad_outs():
    Z, big = _aliasing()
    first = np.zeros((37, 37))
    return [
        (X, "ntk", np.zeros((37, 36)), r"out has shape \(37, 36\); it must be a writeable"),
        (X, "ntk", np.zeros((37, 37), np.float32), "out has dtype float32"),
        (X, "nngp", np.zeros((37, 37), order="F"), "out has a non-contiguous layout"),
        (X, "ntk", np.zeros((37, 74))[:, ::2], "out has a non-contiguous layout"),
        (X, "ntk", _read_only(), "out has a read-only buffer"),
        (Z, "nngp", big, "out shares memory with X1"),
        (X, BOTH, np.zeros((37, 37)), "out must be a tuple of 2 arrays"),
        (X, BOTH, (first, first[:, :]), r"out\[0\] \(nngp\) and out\[1\] \(ntk\) share memory"),
    ]


@pytest.mark.parametrize("backend", ["fused", "layers"])
@pytest.mark.parametrize("case", range(len(_bad_outs())))
def test_bad_out_is_refused_saying_what_is_wrong(backend, case):
    x, get, out, match = _bad_outs()[case]
    with pytest.raises(InputError, match=match):
        ntksym.kernel(NET, backend=backend)(x, get=get, out=out)
    with pytest.raises(InputError, match=match):
        NET.kernel_fn(x, get=get, backend=backend, out=out)


def test_out_aliasing_x2_or_a_network_with_branches_is_refused_before_any_work():
    Z, big = _aliasing()
    o = _garbage((37, 37))
    with pytest.raises(InputError, match="shares memory with X2"):
        NET.kernel_fn(X[:37], Z, get=BOTH, backend="fused", out=(o, big))
    assert np.isnan(o).all()  # checked before any work: the good array is untouched
    two = stax.serial(stax.Dense(4), stax.FanOut(2), stax.parallel(stax.Relu(), stax.Erf()))
    with pytest.raises(InputError, match="out= needs a network with one output.* 2 branches"):
        two.kernel_fn(X, get="nngp", out=o)
    with pytest.raises(InputError, match=r"out=None\) only; got keyword arguments \['outs'\]"):
        NET.kernel_fn(X, outs=o)
