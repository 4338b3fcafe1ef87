"""ntksym.stax against neural-tangents' stax for the same networks (optional peer)."""

import numpy as np
import pytest

from ntksym import stax

RNG = np.random.default_rng(99)
X1 = RNG.standard_normal((6, 5))
X2 = RNG.standard_normal((4, 5))


def build(s, width=64):
    """Architectures spelled identically in both libraries (``s`` is either stax module)."""
    block = s.serial(
        s.FanOut(2),
        s.parallel(s.serial(s.Relu(), s.Dense(width, 1.2, 0.1)), s.Identity()),
        s.FanInSum(),
        s.LayerNorm(),
    )
    return {
        "relu-ntk": s.serial(s.Dense(width, 1.4, 0.3), s.Relu(), s.Dense(width, 1.4, 0.3)),
        "mixed-standard": s.serial(
            s.Dense(width, 1.3, 0.2, parameterization="standard"),
            s.Erf(1.2, 0.7, 0.1),
            s.Dense(width, 1.1, 0.3, parameterization="standard"),
            s.Gelu(),
            s.Dense(width, 0.8, None, parameterization="standard"),
            s.LeakyRelu(0.2),
            s.Dense(3, 1.5, 0.2, parameterization="standard"),
        ),
        "residual-layernorm": s.serial(
            s.Dense(width, 1.1), s.repeat(block, 3), s.Sin(1.0, 1.3, 0.4), s.Dense(1)
        ),
        "smooth": s.serial(
            s.Dense(width, 1.0, 0.2),
            s.Exp(0.5, 0.4),
            s.Dense(width, 0.9, 0.1),
            s.Gaussian(1.3, -0.6),
            s.Dense(width, 1.2),
            s.Cos(0.9, 1.2, 0.2),
            s.Dense(width, 1.1, 0.05),
            s.Sigmoid_like(),
            s.Dense(width),
            s.Sign(),
            s.Dense(1, 1.0, 0.1),
        ),
        "dropout": s.serial(
            s.Dense(width, 1.2, 0.1),
            s.Relu(),
            s.Dropout(0.7),
            s.Dense(width, 1.1, 0.2),
            s.Erf(),
            s.Dropout(0.5),
            s.Dense(1),
        ),
        "standard-width-multipliers": s.serial(
            s.Dense(width, 1.2, 0.1, parameterization="standard", s=(2, 3)),
            s.Relu(),
            s.Dense(width, 1.1, 0.2, parameterization="standard", s=(3, 2)),
            s.Gelu(),
            s.Dense(1, 0.9, None, parameterization="standard", s=(2, 1)),
        ),
        # a pre-LayerNorm residual block (x + Dense(gelu(Dense(LN(x))))), as in a
        # transformer's MLP, and Sign before a standard Dense layer (the notes cover both
        # since session 18)
        "pre-layernorm": s.serial(
            s.Dense(width, 1.0, 0.1),
            s.repeat(
                s.serial(
                    s.FanOut(2),
                    s.parallel(
                        s.Identity(),
                        s.serial(
                            s.LayerNorm(),
                            s.Dense(width, 1.0, 0.05),
                            s.Gelu(),
                            s.Dense(width, 0.9, 0.05),
                        ),
                    ),
                    s.FanInSum(),
                ),
                2,
            ),
            s.LayerNorm(),
            s.Dense(1),
        ),
        "sign-standard": s.serial(
            s.Dense(width, 1.2, 0.1),
            s.Sign(),
            s.Dense(width, 1.1, 0.2, parameterization="standard"),
            s.Relu(),
            s.Dense(1),
        ),
        "abrelu-abs-monomial": s.serial(
            s.Dense(width, 1.0, 0.2),
            s.ABRelu(-0.4, 1.3),
            s.Dense(width, 0.9, 0.1),
            s.Abs(),
            s.Dense(width, 0.5, 0.1),
            s.Monomial(2),
            s.Dense(1),
        ),
    }


@pytest.mark.optional
@pytest.mark.parametrize("name", list(build(stax)))
def test_agrees_with_neural_tangents(name):
    pytest.importorskip("neural_tangents")
    import jax

    jax.config.update("jax_enable_x64", True)
    from neural_tangents import stax as nt_stax

    ours = build(stax)[name]
    theirs = build(nt_stax)[name]
    for x2 in (None, X2):
        a = ours.kernel_fn(X1, x2, get=("nngp", "ntk"))
        b = theirs[2](X1, x2, ("nngp", "ntk"))
        for g in ("nngp", "ntk"):
            mine, peer = getattr(a, g), np.asarray(getattr(b, g))
            assert np.max(np.abs(mine - peer)) <= 1e-10 * np.max(np.abs(mine)), (g, name)


@pytest.mark.optional
@pytest.mark.parametrize("degree", [2, 3])
def test_rectified_monomial_agrees_with_neural_tangents(degree):
    """stax.RectifiedMonomial against neural-tangents' on distinct inputs.

    neural-tangents 0.6.5 divides by sin(theta) and returns NaN for every input paired
    with itself (its diagonal variances too), so one such layer, X1 against X2, is what
    can be compared.
    """
    pytest.importorskip("neural_tangents")
    import jax

    jax.config.update("jax_enable_x64", True)
    from neural_tangents import stax as nt_stax

    def net(s):
        return s.serial(s.Dense(64, 1.1, 0.2), s.RectifiedMonomial(degree), s.Dense(1, 0.9, 0.1))

    a = net(stax).kernel_fn(X1, X2, get=("nngp", "ntk"))
    b = net(nt_stax)[2](X1, X2, ("nngp", "ntk"))
    for g in ("nngp", "ntk"):
        mine, peer = getattr(a, g), np.asarray(getattr(b, g))
        assert np.max(np.abs(mine - peer)) <= 1e-10 * np.max(np.abs(mine)), g


#: ntksym.stax's own spelling where neural-tangents' differs on purpose: an expression string
#: instead of Python callables (the issue's ``Elementwise(expression)``).
OWN_SIGNATURES = {"Elementwise"}


@pytest.mark.optional
def test_signatures_are_neural_tangents():
    """Every function both stax modules have takes the same parameters in the same order
    with the same defaults (names and defaults read from neural-tangents itself)."""
    pytest.importorskip("neural_tangents")
    import inspect

    from neural_tangents import stax as nt_stax

    compared = []
    for name in stax.__all__:
        theirs = getattr(nt_stax, name, None)
        if theirs is None or name in OWN_SIGNATURES or not callable(theirs):
            continue
        ours = inspect.signature(getattr(stax, name)).parameters
        peer = inspect.signature(inspect.unwrap(theirs)).parameters
        assert list(ours) == list(peer), name
        for p in peer.values():
            assert ours[p.name].default == p.default, (name, p.name)
            assert ours[p.name].kind == p.kind, (name, p.name)
        compared.append(name)
    assert {"Dense", "LayerNorm", "Dropout", "Erf", "Gelu", "serial", "repeat"} <= set(compared)
