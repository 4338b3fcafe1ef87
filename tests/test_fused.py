"""The generated fused kernel of a described network (ntksym.codegen.architecture).

Checked against the float64 layer path (itself checked against mpmath in
test_stax_checks.py) and against the mpmath referee, on adversarial inputs. One network
covers every layer type the fused kernel carries a determinant through (Dense in both
parameterizations, residual FanOut/parallel/FanInSum, FanInConcat, LayerNorm, ReLU-family
and Sign activations) and ends in a smooth one (erf): one Numba compile for the whole file.
"""

import numpy as np
import pytest
from conftest import python_module

import ntksym
from ntksym import stax
from ntksym.codegen import architecture
from ntksym.codegen.arch_program import Unsupported, lower
from ntksym.errors import InputError


def _network():
    block = stax.serial(
        stax.FanOut(2),
        stax.parallel(stax.serial(stax.Relu(), stax.Dense(8, 1.2, 0.1)), stax.Identity()),
        stax.FanInSum(),
        stax.LayerNorm(),
    )
    return stax.serial(
        stax.Dense(8, 1.1, 0.2),
        stax.repeat(block, 2),
        stax.LeakyRelu(0.1),
        stax.Dense(8, 1.3, 0.2, parameterization="standard"),
        stax.ABRelu(-0.4, 1.3),
        stax.FanOut(2),  # two branches of unequal widths concatenated
        stax.parallel(stax.Dense(8, 0.9, 0.5), stax.Dense(4, 1.4, 0.2)),
        stax.FanInConcat(),
        stax.Dense(8, 1.1, 0.3),
        stax.Sign(),
        stax.Dense(8, 1.0, 0.3),
        stax.Erf(1.2, 0.7, 0.1),
        stax.Dense(1, 1.0, 0.1),
    )


NET = _network()


def adversarial_inputs():
    """Near-parallel (1e-8), anti-parallel, rescaled, twin, zero, tiny and huge inputs."""
    x, d, y, z = np.random.default_rng(5).standard_normal((4, 6))
    return np.vstack(
        [x, x + 1e-8 * d, -x + 1e-7 * d, 1e3 * x, x * (1 + 1e-9), np.zeros(6), 1e-6 * y, 1e6 * z]
    )


def rel(a, r):
    return np.max(np.abs(a - r) / np.abs(r))


@pytest.fixture(scope="module")
def fused():
    return architecture.fused_kernel(NET.description)


def test_matches_the_layer_path_on_adversarial_inputs(fused):
    X = adversarial_inputs()
    K, T = fused(X)
    layers = NET.kernel_fn(X, backend="layers")
    assert rel(K, layers.nngp) < 4e-15
    assert rel(T, layers.ntk) < 4e-15
    np.testing.assert_array_equal(K, K.T)  # K(X, X) exactly symmetric
    np.testing.assert_array_equal(T, T.T)
    # K(X1, X2) with twins across the two sets: the same entries as K(X, X), within ulps
    K12, T12 = fused(X[:5], X[3:])
    assert rel(K12, K[:5, 3:]) < 1e-15 and rel(T12, T[:5, 3:]) < 1e-15
    nngp_only, none = fused(X[:5], X[3:], ntk=False)
    assert none is None
    np.testing.assert_array_equal(nngp_only, K12)


def test_matches_mpmath_on_near_parallel_and_anti_parallel_pairs(fused):
    X = adversarial_inputs()
    X1, X2 = X[:1], X[1:3]  # x against x + 1e-8 d and -x + 1e-7 d
    (ref,) = stax.reference_kernels(NET.description, X1, X2, dps=20)
    for ours, r in zip(fused(X1, X2), ref, strict=True):
        assert rel(ours, r) < 1e-13


@pytest.mark.exhaustive
def test_matches_mpmath_on_every_adversarial_pair(fused):
    # measured (branch concat, with the FanInConcat): 5.1e-16 (NNGP) and 5.1e-16 (NTK); the
    # layer path 3.4e-16 and 2.4e-16
    X = adversarial_inputs()
    (ref,) = stax.reference_kernels(NET.description, X, dps=30)
    for ours, r in zip(fused(X), ref, strict=True):
        assert rel(ours, r) < 1e-13


def test_random_inputs_and_kernel_fn_dispatch(fused):
    X = np.random.default_rng(11).standard_normal((256, 6))
    auto = NET.kernel_fn(X)  # 256^2 entries: auto takes the fused kernel
    K, T = fused(X)
    np.testing.assert_array_equal(auto.nngp, K)
    np.testing.assert_array_equal(auto.ntk, T)
    np.testing.assert_array_equal(NET.kernel_fn(X, get="ntk", backend="fused"), T)
    layers = NET.kernel_fn(X[:40], backend="layers")
    small = NET.kernel_fn(X[:40])  # below FUSED_MIN_PAIRS: the layer path itself
    np.testing.assert_array_equal(small.ntk, layers.ntk)
    assert rel(K[:40, :40], layers.nngp) < 4e-15
    assert rel(T[:40, :40], layers.ntk) < 4e-15


def test_cache_is_hit_by_an_equal_description(fused):
    before = architecture.cache_info()
    again = architecture.fused_kernel(_network().description)  # built anew, equal
    assert again is fused
    assert architecture.cache_info().hits == before.hits + 1
    # on disk: the file named by its source's hash holds exactly that source
    text = architecture.fused_source(lower(NET.description))
    assert fused.path.read_text(encoding="utf-8") == text
    assert fused.path.name.startswith("arch_")
    # and an index names it, so that another process skips lowering and rendering
    indexes = fused.path.parent.glob("arch_index_*.txt")
    assert fused.path.name in {p.read_text(encoding="utf-8").strip() for p in indexes}


def test_networks_it_does_not_cover_fall_back_or_are_refused():
    # a kinked activation without a closed form: the layer maps' kink-aware rules
    tanh = stax.serial(stax.Dense(4), stax.Elementwise("abs(u) + tanh(u)"), stax.Dense(1))
    with pytest.raises(Unsupported, match="kinked and has no closed-form"):
        lower(tanh.description)
    two = stax.serial(stax.Dense(4), stax.FanOut(2))
    assert "branches" in architecture.supported(two.description)
    X = np.random.default_rng(2).standard_normal((3, 4))
    with pytest.raises(InputError, match="backend='fused' does not cover"):
        tanh.kernel_fn(X, backend="fused")
    with pytest.raises(InputError, match="backend must be one of auto, layers, fused"):
        tanh.kernel_fn(X, backend="gpu")
    # a network that breaks a rule is refused by the fused kernel and explained by the walk
    bad = stax.serial(stax.Dense(4), stax.Relu(), stax.Relu())
    assert architecture.supported(bad.description)
    with pytest.raises(InputError, match="must follow a Dense layer"):
        bad.kernel_fn(np.ones((300, 4)))


def test_layer_major_chunks_match_the_layer_path_at_ragged_sizes(fused):
    # 300 and 290 columns: a full 256-column chunk and a ragged one, row blocks of 16 and
    # less; symmetric rows start their chunks on the diagonal, so chunk edges move per row
    rng = np.random.default_rng(17)
    X = rng.standard_normal((300, 6))
    X[1] = X[0] + 1e-8 * rng.standard_normal(6)  # a near-parallel pair in a chunk
    layers = NET.kernel_fn(X, backend="layers")
    K, T = fused(X)
    assert rel(K, layers.nngp) < 4e-15 and rel(T, layers.ntk) < 4e-15
    np.testing.assert_array_equal(K, K.T)
    np.testing.assert_array_equal(T, T.T)
    K_only, none = fused(X, ntk=False)  # the NNGP alone: no NTK array
    assert none is None
    np.testing.assert_array_equal(K_only, K)
    Y = rng.standard_normal((290, 6))
    Y[5] = X[3]  # a twin across the two sets
    cross = NET.kernel_fn(X[:37], Y, backend="layers")
    K12, T12 = fused(X[:37], Y)
    assert rel(K12, cross.nngp) < 4e-15 and rel(T12, cross.ntk) < 4e-15
    np.testing.assert_array_equal(fused(X[:37], Y, ntk=False)[0], K12)


def _chunk_inputs():
    """600 rows (each row's upper triangle: three chunks and a ragged one) with two
    near-parallel pairs planted far apart: rows 10 and 500, rows 40 and 41."""
    rng = np.random.default_rng(23)
    X = rng.standard_normal((600, 6))
    X[500] = X[10] + 1e-6 * rng.standard_normal(6)
    X[41] = -X[40] + 1e-6 * rng.standard_normal(6)  # anti-parallel
    return X


def test_chunks_without_carried_determinants_where_every_pair_allows(fused):
    X = _chunk_inputs()
    counts = np.zeros(2, dtype=np.int64)
    K, T = fused.module._compute(X, None, True, fused.module.TAU, counts)
    # both paths in one call: the chunks of the planted pairs and every row's pair with
    # itself carry the determinants, most chunks do not
    assert counts[0] > 2 * counts[1] > 2 * 600
    rows = [0, 10, 40, 41, 300, 500, 599]  # (the layer path on every pair is slow)
    layers = NET.kernel_fn(X[rows], X, backend="layers")
    assert rel(K[rows], layers.nngp) < 4e-15 and rel(T[rows], layers.ntk) < 4e-15
    np.testing.assert_array_equal(K, K.T)
    np.testing.assert_array_equal(T, T.T)
    np.testing.assert_array_equal(fused(X, ntk=False)[0], K)
    cols = [500, 20, 550]  # near-parallel (a carried chunk), and plain chunks of row 10
    (ref,) = stax.reference_kernels(NET.description, X[[10]], X[cols], dps=20)
    (anti,) = stax.reference_kernels(NET.description, X[[40]], X[[41]], dps=20)
    for ours, r, a in zip((K, T), ref, anti, strict=True):
        assert rel(ours[10, cols], r[0]) < 1e-13 and rel(ours[40, 41], a[0, 0]) < 1e-13
    # the switch planted wrong: every chunk plain (tau = 0) loses the near-parallel pairs
    K0, T0 = fused.module._compute(X, None, True, 0.0, counts)
    assert counts[1] < 600 + 4  # the pairs of a row with itself, and few more
    bad = max(rel(K0[10, 500], ref[0][0, 0]), rel(T0[10, 500], ref[1][0, 0]))
    assert bad > 1e-11
    assert rel(K0[10, [20, 550]], ref[0][0, 1:]) < 1e-13  # (the typical pairs are fine)
    # ... and every chunk carried (tau = 1): nothing is left to the plain path
    fused.module._compute(X, None, True, 1.0, counts)
    assert counts[0] == counts[1]


def test_blocks_on_one_thread_and_on_several_agree_bit_for_bit(fused):
    """The blocks of rows run serially (one Numba thread) or by a pool of Python threads
    (several): each entry is computed by the same operations either way."""
    import numba

    X = _chunk_inputs()[:70]  # five blocks of 16 rows, the last one ragged
    Y = _chunk_inputs()[100:133]
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = [fused.module._compute(X, None), fused.module._compute(X, Y)]
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        assert numba.get_num_threads() > 1 or numba.config.NUMBA_NUM_THREADS == 1
        many = [fused.module._compute(X, None), fused.module._compute(X, Y)]
    finally:
        numba.set_num_threads(before)
    for (k1, t1), (k2, t2) in zip(one, many, strict=True):
        np.testing.assert_array_equal(k1, k2)
        np.testing.assert_array_equal(t1, t2)


def test_lowering_goes_through_the_walk():
    # Dropout in test mode is the identity (the walk drops it); in train mode it is a step
    # (tests/test_fused_dropout.py)
    base = [stax.Dense(4, 1.1, 0.2), stax.Relu()]
    plain = lower(stax.serial(*base, stax.Dense(1)).description)
    dropped = lower(stax.serial(*base, stax.Dropout(0.5, mode="test"), stax.Dense(1)).description)
    assert dropped == plain
    train = stax.serial(*base, stax.Dropout(0.5, mode="train"), stax.Dense(1))
    assert [s.kind for s in lower(train.description).steps][-2] == "dropout"
    # the program: one step per state in evaluation order, a sum reads both branches
    res = stax.serial(
        stax.Dense(4),
        stax.FanOut(2),
        stax.parallel(stax.Dense(4), stax.Identity()),
        stax.FanInSum(),
    )
    prog = lower(res.description)
    assert [s.kind for s in prog.steps] == ["input_dense", "dense", "sum"]
    assert prog.steps[2].src == (1, 0) and prog.output == 2


def _python_module(prog):
    """The fused module's source run as plain Python (nothing compiled)."""
    return python_module(architecture.fused_source(prog))


@pytest.mark.parametrize(
    "act",
    [
        stax.Erf(),
        stax.Gelu(),
        stax.Sin(1.1, 0.8),
        stax.Monomial(3),
        stax.Elementwise("u**2 + u"),
    ],
    ids=["erf", "gelu", "sin", "monomial3", "u2+u"],
)
def test_printed_loop_maps_equal_the_spec(act):
    """The maps as the activation step prints them (W2 = 1, B2 = 0, half-integer powers by
    square roots, libm calls hoisted into ``_a0_pre_*``) against the spec's SymPy maps
    evaluated at 50 digits: erf's carried determinant (log1p hoisted), GELU (x**1.5), sin
    (exp and cos hoisted), polynomials' carried determinant (``|rho|`` a Piecewise)."""
    from ntksym.dual import stable

    net = stax.serial(stax.Dense(4, 1.1, 0.2), act, stax.Dense(4, 1.2, 0.1), stax.Relu(),
                      stax.Dense(1))  # fmt: skip
    prog = lower(net.description)
    spec = prog.specs[0]
    ns = _python_module(prog)
    rng = np.random.default_rng(3)
    for variant in ("any", "pos"):
        name = f"_a0_pair_{variant}"
        if name not in ns or ns[name] is ns.get("_a0_pair_any") and variant == "pos":
            continue
        for _ in range(4):
            s11, s22 = rng.uniform(0.2, 3.0, 2)
            s12 = rng.uniform(0.05 if variant == "pos" else -0.9, 0.9) * np.sqrt(s11 * s22)
            d = s11 * s22 - s12 * s12
            n11, n22 = ns["_a0_diag"](s11), ns["_a0_diag"](s22)
            args = (s11, s22, s12, d, n11, n22, 1.0, 0.0) + tuple(np.sqrt([s11, s22, n11, n22]))
            params = ns[name].__code__.co_varnames[: ns[name].__code__.co_argcount]
            if "U" in params:  # the root gap sqrt(S11) - sqrt(S22)
                args += (args[8] - args[9],)
            pre = ns.get(f"_a0_pre_{variant}")
            hoisted = pre(*args) if pre else ()
            ours = ns[name](*args, *hoisted, *[0.0] * (len(params) - len(args) - len(hoisted)))
            vals = {stable.S11: s11, stable.S22: s22, stable.S12: s12, stable.D: d,
                    stable.N11: n11, stable.N22: n22, stable.W2: 1, stable.B2: 0,
                    stable.U: args[8] - args[9]}  # fmt: skip
            vals.update(
                zip((stable.R11, stable.R22, stable.Q11, stable.Q22), args[8:12], strict=True)
            )
            for got, expr in zip(ours, (spec.nngp, spec.ntk, spec.det), strict=True):
                if expr is None:
                    continue
                want = _at_50_digits(expr, vals)
                assert abs(got - want) <= 1e-13 * abs(want) + 1e-300


def _at_50_digits(expr, vals: dict) -> float:
    """The SymPy expression at the given floats, evaluated in mpmath at 50 digits (lambdified
    once: ``subs`` took 40 s a call on erf's determinant, 15 thousand operations)."""
    import mpmath
    import sympy as sp

    syms = sorted(expr.free_symbols, key=str)
    key = (expr, tuple(syms))
    if key not in _MPMATH_FNS:
        _MPMATH_FNS[key] = sp.lambdify(syms, expr, modules="mpmath")
    with mpmath.workdps(50):
        return float(_MPMATH_FNS[key](*[mpmath.mpf(float(vals[s])) for s in syms]))


_MPMATH_FNS: dict = {}


def test_log1p_near_matches_mpmath_and_leaves_the_rest_to_libm():
    """The series log1p of erf's hoisted term (no libm call, so its loop vectorises): within
    2 ulp of mpmath on |x| <= 0.3, signed zeros kept, NaN outside (libm's loop then)."""
    import mpmath

    from ntksym.codegen import arch_pairs

    near = arch_pairs._log1p_near
    rng = np.random.default_rng(11)
    xs = np.concatenate([rng.uniform(-0.3, 0.3, 2000), 10.0 ** rng.uniform(-300, -0.6, 500),
                         -(10.0 ** rng.uniform(-300, -0.6, 500)),
                         [0.3, -0.3, np.nextafter(0.3, 0), 1e-308, 5e-324]])  # fmt: skip
    with mpmath.workdps(40):
        for x in xs:
            want = float(mpmath.log1p(mpmath.mpf(float(x))))
            assert abs(near(x) - want) <= 2 * np.spacing(abs(want)), x
    assert np.copysign(1.0, near(-0.0)) == -1.0 and near(0.0) == 0.0
    for x in (0.30000000000000004, -0.31, 5.0, -1.0, np.inf, np.nan):
        assert np.isnan(near(x))


def test_two_prod_is_exact_and_cdet_is_the_rounded_determinant():
    """``_two_prod`` (an FMA) gives p + e = a b exactly, also where Veltkamp's split of
    Dekker's product overflowed (|a| > 2^996); ``_cdet`` is the determinant s11 s22 - s12^2
    within 2 ulp of its exact value, clipped at 0, whatever the cancellation."""
    from fractions import Fraction as F

    from ntksym.codegen import arch_pairs

    rng = np.random.default_rng(12)
    a = rng.standard_normal(3000) * 10.0 ** rng.uniform(-120, 150, 3000)  # (a b above
    # 2^-960: its rounding error is not subnormal)
    b = rng.standard_normal(3000) * 10.0 ** rng.uniform(-120, 150, 3000)
    for x, y in [*zip(a, b, strict=True), (1e300, 1.5), (2.0**1000, 1 + 2.0**-40)]:
        p, e = arch_pairs._two_prod(x, y)
        assert F(p) + F(e) == F(x) * F(y), (x, y)
    for _ in range(2000):
        s11, s22 = 10.0 ** rng.uniform(-100, 100, 2)
        s12 = np.sqrt(s11 * s22) * (1.0 - 10.0 ** rng.uniform(-16, 0)) * rng.choice([-1, 1])
        want = max(F(s11) * F(s22) - F(s12) ** 2, F(0))
        got = arch_pairs._cdet(s11, s12, s22)
        assert abs(F(got) - want) <= 2 * F(np.spacing(float(want))), (s11, s12, s22)


def test_overflowing_inputs_are_one_input_error_without_numpy_warnings(fused):
    """Inputs near 1e200 overflow the Gram product: every path refuses them with one
    InputError naming the row, and no RuntimeWarning from inside a module comes first."""
    import warnings

    X = np.random.default_rng(3).standard_normal((5, 4)) * 1e200
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(InputError, match="overflows float64"):
            NET.kernel_fn(X, backend="fused")
        with pytest.raises(InputError, match="overflows float64"):
            NET.kernel_fn(X[:2], X[2:], backend="fused")
        with pytest.raises(InputError, match="row 0 of X1 overflows float64"):
            NET.kernel_fn(X, backend="layers")
        with pytest.raises(InputError, match="row 0 of X1 overflows float64"):
            ntksym.kernel(NET, backend="layers")(X)  # (DescribedKernel: the same check)
        with pytest.raises(InputError, match="row 1 of X2 overflows float64"):
            NET.kernel_fn(X[:2] / 1e200, X[1:] / [[1e200], [1], [1], [1]], backend="layers")
