"""The piecewise-linear family's carried determinant, and networks where a ``Sign`` reads it.

``Sign`` turns an input angle ``theta`` into one of about ``sqrt(theta)``: a relative error
``delta`` of the determinant before it becomes an absolute error of about
``sqrt(theta) delta`` in the angle a later kinked layer reads. The arc-cosine maps' next
determinant formed by subtraction is ``eps / theta`` of itself (5e-9 at ``theta = 1e-8``);
their ``carried`` form (:func:`ntksym.dual.stable.gap_kink`) is checked here against the
determinant at 60 digits of the textbook closed form (Cho & Saul 2009), then whole networks
against the mpmath referee (session 20: 1.6e-6 on the fused path and 1e-12 on the layer
maps before).
"""

import functools

import mpmath as mp
import numpy as np
import pytest
import sympy as sp
import test_random_networks as grammar
from test_smooth_det import pairs

from ntksym import stax
from ntksym.dual import stable as st
from ntksym.dual.families import piecewise_linear as pl
from ntksym.dual.family import numpy_function
from ntksym.errors import InputError
from ntksym.reference.convert import ReferenceNotConverged

DPS = 60


def _leaky(a):
    """``E[f(u) f(v)]`` of ``f = relu(u) - a relu(-u)`` (``a = -1``: ``|u|``).

    ``M (k(t) (1 + a^2) - 2 a k(pi - t)) / (2 pi)`` with ``k(t) = sin t + (pi - t) cos t``,
    ``k(pi - t) = sin t - t cos t`` and ``t`` the angle of the pair.
    """

    def e(v1, v2, s):
        slope = mp.mpf(a)  # (at the caller's precision)
        m = mp.sqrt(v1 * v2)
        t = mp.atan2(mp.sqrt(v1 * v2 - s * s), s)
        kp = mp.sin(t) + (mp.pi - t) * mp.cos(t)
        kn = mp.sin(t) - t * mp.cos(t)
        return ((1 + slope**2) * kp - 2 * slope * kn) * m / (2 * mp.pi)

    return e


#: (layer map, a in relu(u) - a relu(-u) = max(0, u) + a min(0, u)); E[f(u)^2] = (1 + a^2) S / 2
FAMILIES = {
    "relu": (pl.relu, "0"),
    "leaky_relu(0.2)": (lambda: pl.leaky_relu(0.2), "0.2"),
    "leaky_relu(-0.3)": (lambda: pl.leaky_relu(-0.3), "-0.3"),
    "abs": (pl.absolute, "-1"),
}
ANGLES = [1e-2, 1e-4, 1e-6, 1e-8, 1e-10, 1e-12, np.pi - 1e-8]


def _cases(variances):
    """``(S11, S22, S12)`` at :data:`ANGLES`, the covariance valid exactly."""
    return pairs(variances, ANGLES)


def _errors(expr, family, cases, w2, b2):
    """Relative errors of the next determinant ``expr`` against 60 digits."""
    a = FAMILIES[family][1]
    e, c_exact = _leaky(a), (1 + sp.Rational(a) ** 2) / 2
    pairs = ((st.N11, st.S11), (st.N22, st.S22))
    expr = expr.xreplace({n: st.W2 * c_exact * s + st.B2 for n, s in pairs})
    fn = numpy_function((st.S11, st.S22, st.S12, st.D, st.W2, st.B2, st.U), expr, cse=True)
    errors = []
    for v1, v2, s12 in cases:
        with mp.workdps(DPS):
            x1, x2, s = mp.mpf(v1), mp.mpf(v2), mp.mpf(s12)
            det = x1 * x2 - s * s
            c = (1 + mp.mpf(a) ** 2) / 2
            g1, g2, g12 = c * x1, c * x2, e(x1, x2, s)
            ref = w2**2 * (g1 * g2 - g12**2) + w2 * b2 * (g1 + g2 - 2 * g12)
        with np.errstate(all="ignore"):
            # the roots' gap as the layer maps form it (from the variances' difference)
            u = (v1 - v2) / (np.sqrt(v1) + np.sqrt(v2))
            got = float(fn(v1, v2, s12, float(det), w2, b2, u))
        scale = w2**2 * g1 * g2
        # an exactly singular pair: 0 to the 60 digits
        exact_zero = abs(ref) <= scale * mp.mpf(10) ** (-40)
        err = float(abs(got) / scale) if exact_zero else float(abs((got - ref) / ref))
        errors.append((err, (v1, v2, s12)))
    return errors


#: Variances equal and apart; with a bias the next determinant reads their roots' gap, here from
#: their difference as the layer maps and fused kernels form it.
UNEQUAL = [(1.0, 1.0), (1.0, 1 + 1e-9), (0.3, 0.3000001), (1e-4, 1e4)]


@pytest.mark.parametrize("family", list(FAMILIES))
def test_carried_determinant_matches_mpmath(family):
    """Angles 1e-2..1e-12 and anti-parallel, variances equal, 1e-9 and 3e-7 apart and
    1e-4 against 1e4, with and without a bias: within 1e-13."""
    carried = FAMILIES[family][0]().carried
    for b2 in (0.0, 0.5):
        worst = max(_errors(carried, family, _cases(UNEQUAL), 1.7, b2))
        assert worst[0] <= 1e-13, (b2, worst)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_plain_determinant_fails_where_the_carried_one_holds(family):
    """The check can fail: ``det`` (formed by subtraction, what the homogeneous kernels
    print) is more than 1e-10 off at variances 0.3 and 0.3000001, 1e-8 apart in angle."""
    plain = FAMILIES[family][0]().det
    worst = max(_errors(plain, family, _cases([(0.3, 0.3000001)]), 1.7, 0.0))
    assert worst[0] > 1e-10, worst


def _networks():
    d = stax.Dense
    return {
        # a kinked map's determinant, read by two Signs and then a kinked layer
        "leaky-sign": stax.serial(
            d(8), stax.LeakyRelu(0.2), d(8), stax.Sign(), d(8), stax.Sign(), d(8),
            stax.Relu(), d(1),
        ),
        "abs-sign": stax.serial(
            d(8), stax.Abs(), d(8), stax.Sign(), d(8), stax.Sign(), d(8), stax.Relu(), d(1)
        ),
        # biases: the next determinant reads the variances' roots' gap (2.7e-13 when it
        # was formed by subtracting the rounded roots)
        "relu-sign-bias": stax.serial(
            d(8, b_std=0.1), stax.Relu(), d(8, b_std=0.1), stax.Sign(), d(8, b_std=0.1),
            stax.Sign(), d(8, b_std=0.1), stax.Abs(), d(1),
        ),
        # a determinant formed by subtraction after a series step, then a trusted smooth
        # map, then a kinked one: the fused kernel must guard it (2.4e-8 before)
        "tanh-sin-abs": stax.serial(
            d(8, b_std=0.1), stax.Elementwise("tanh(u)"), d(8), stax.Sin(), d(8), stax.Abs(),
            d(1),
        ),
        # biased branches of unequal variances summed, then three Signs: the sum's cross
        # term sqrt(a11 b22) - sqrt(a22 b11) (8.0e-13 when formed by subtracting the
        # rounded roots, on both paths)
        "sum-sign": stax.serial(
            stax.FanOut(2),
            stax.parallel(
                d(8, b_std=0.1), stax.serial(d(8, W_std=2.0, b_std=0.7), stax.Relu(),
                d(8, b_std=0.3)),
            ),
            stax.FanInSum(), stax.Sign(), d(8), stax.Sign(), d(8), stax.Sign(), d(8),
            stax.Relu(), d(1),
        ),
    }  # fmt: skip


@functools.cache
def _referee(name):
    """The network, its inputs and its kernels at 50 digits (shared by both backends)."""
    net = _networks()[name]
    X = grammar._hostile()[[0, 1, 2, 3, 5, 6]]
    ((nngp, ntk),) = stax.reference_kernels(net, X, dps=50)
    return net, X, (nngp, ntk)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["layers", "fused"])
@pytest.mark.parametrize("name", list(_networks()))
def test_networks_reading_the_determinant_keep_full_precision(name, backend):
    """The random grammar's hostile inputs (a pair 1e-8 apart, a near anti-parallel one,
    norms 30 and 1e-3; not the zero input, where Sign's NTK is 0/0 relative): within
    1e-13 of the referee at 50 digits (30 digits cannot resolve the pair x, 30 x after
    LeakyRelu: its covariance there is singular to 1e-34)."""
    net, X, (nngp, ntk) = _referee(name)
    got = net.kernel_fn(X, backend=backend)
    assert np.max(np.abs(got.nngp - nngp) / np.abs(nngp)) <= 1e-13
    assert np.max(np.abs(got.ntk - ntk) / np.abs(ntk)) <= 1e-13


def test_referee_says_when_its_digits_cannot_resolve_a_pair():
    """x and 30 x (30 x rounded) after LeakyRelu and Sign: at 30 digits the walk's own
    covariance comes out singular; the referee says so and asks for more digits, where
    50 digits agree with the layer maps."""
    net = _networks()["leaky-sign"]
    X = grammar._hostile()[[0, 3]]
    with pytest.raises(InputError, match=r"dps=30 cannot resolve .* Sign\(\).*dps=50"):
        stax.reference_kernels(net, X, dps=30)
    ((nngp, ntk),) = stax.reference_kernels(net, X, dps=50)
    got = net.kernel_fn(X, backend="layers")
    assert np.max(np.abs(got.ntk - ntk) / np.abs(ntk)) <= 1e-13


def test_confirm_catches_the_referees_own_silent_loss():
    """Between 32 and 41 digits the referee resolves x and 30 x after LeakyRelu and Sign
    without an error but not to float64 (its NTK 2.4e-6 off at 32 digits, 2.3e-8 at 34,
    2.3e-14 at 40; measured against 60): ``confirm`` (a second run at ``dps + 20``) says
    so, and passes where the digits hold."""
    net = _networks()["leaky-sign"]
    X = grammar._hostile()[[0, 3]]
    ((_, ntk34),) = stax.reference_kernels(net, X, dps=34)
    ((nngp, ntk),) = stax.reference_kernels(net, X, dps=50, confirm=True)
    assert np.max(np.abs(ntk34 - ntk) / np.abs(ntk)) > 1e-9  # (the loss is real)
    with pytest.raises(ReferenceNotConverged, match=r"NNGP at \(0, 1\) is 0.49999999838.* dps=54"):
        stax.reference_kernels(net, X, dps=34, confirm=True)
    got = net.kernel_fn(X, backend="layers")
    assert np.max(np.abs(got.ntk - ntk) / np.abs(ntk)) <= 1e-13


def test_an_indefinite_covariance_is_its_own_error():
    """The referee tells its own singular covariance from other bad input by the class
    (an InputError still, for callers that catch those), not by the message."""
    from ntksym.errors import IndefiniteCovarianceError
    from ntksym.reference import convert

    with pytest.raises(IndefiniteCovarianceError, match="not positive semidefinite"):
        convert.covariance(1.0, 1.0 + 1e-6, 1.0)
    assert issubclass(IndefiniteCovarianceError, InputError)
    with pytest.raises(InputError) as info:
        convert.covariance(-1.0, 0.0, 1.0)
    assert not isinstance(info.value, IndefiniteCovarianceError)
