"""The polynomial family's carried next determinant (``dual/families/polynomial_det.py``).

Checked two ways: as an exact identity against ``N11 N22 - (W2 E12 + B2)^2`` formed from
Isserlis' maps (both signs of ``S12``), and through networks in which a kinked layer reads
it, against ``ntksym.reference.kernel`` (mpmath) on near-parallel and anti-parallel pairs.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import ntksym
from ntksym import stax
from ntksym.activations import get_activation
from ntksym.dual.families import polynomial_det
from ntksym.dual.stable import B2, S11, S12, S22, W2, D, U

_R1, _R2, _T = sp.symbols("R1 R2 t", positive=True)


def _branches(expr: sp.Expr) -> tuple[sp.Expr, sp.Expr]:
    """The ``S12 >= 0`` and ``S12 < 0`` forms (one, when no odd degree tells them apart)."""
    if isinstance(expr, sp.Piecewise):
        return expr.args[0][0], expr.args[1][0]
    return expr, expr


def _identity_gap(nngp: sp.Expr, carried: sp.Expr, sign: int) -> sp.Expr:
    """``carried - (N11 N22 - S12'^2)`` at ``S12 = sign t R1 R2`` (zero for a true form)."""
    e11 = nngp.xreplace({S12: S11, S22: S11})
    e22 = nngp.xreplace({S12: S22, S11: S22})
    sub = {
        S11: _R1**2,
        S22: _R2**2,
        S12: sign * _T * _R1 * _R2,
        D: _R1**2 * _R2**2 * (1 - _T**2),
        U: _R1 - _R2,
    }
    direct = (W2 * e11 + B2) * (W2 * e22 + B2) - (W2 * nngp + B2) ** 2
    form = _branches(carried)[0 if sign > 0 else 1]
    return sp.cancel(sp.expand(form.xreplace(sub) - direct.xreplace(sub)))


@pytest.mark.parametrize("expr", ["u", "u**2", "u**3", "u**3 - u", "u**2 + u", "2*u**4 - u + 1"])
def test_carried_determinant_is_an_exact_identity(expr: str) -> None:
    lm = polynomial_det.layer_map(get_activation(expr))
    assert lm is not None and lm.carried is not None
    for sign in (1, -1):
        assert _identity_gap(lm.nngp, lm.carried, sign) == 0


def test_the_identity_check_catches_a_planted_error() -> None:
    """Without the Lagrange part (the ``U^2`` term) the form is wrong for unequal variances."""
    lm = polynomial_det.layer_map(get_activation("u**3 - u"))
    assert lm is not None and lm.carried is not None
    planted = lm.carried.xreplace({U: 0})
    assert _identity_gap(lm.nngp, planted, 1) != 0


def test_hermite_coefficients_rebuild_the_polynomial() -> None:
    """``sum_k A_k(r) He_k(z) / k!`` is ``f(r z)`` again (SymPy's Hermite polynomials)."""
    f = sp.sympify("2*u**4 - u + 1", locals={"u": ntksym.activations.u})
    z, r = sp.symbols("z r")
    coeffs = polynomial_det.hermite_coefficients(f, r)
    he = {k: sp.Poly(sp.hermite_prob(k, z), z) for k in coeffs}
    total = sum((a * he[k].as_expr() / sp.factorial(k)) for k, a in coeffs.items())
    assert sp.expand(total - f.subs(ntksym.activations.u, r * z)) == 0


def _inputs() -> np.ndarray:
    rng = np.random.default_rng(5)
    x, d, y = rng.standard_normal((3, 6))
    return np.vstack(
        [x, x.copy(), x * (1 + 1e-9), x + 1e-8 * d, -x + 1e-7 * d, -x, 30 * x, np.zeros(6),
         1e-3 * y]
    )  # fmt: skip


def _worst(net: stax.Layer, X: np.ndarray, backend: str, ref: tuple) -> float:
    k = net.kernel_fn(X, backend=backend)
    worst = 0.0
    for name, r in (("nngp", ref[0]), ("ntk", ref[1])):
        r = np.asarray(r, dtype=float)
        floor = 1e-10 * np.sqrt(np.outer(np.diag(r), np.diag(r)))
        keep = np.abs(r) > floor
        got = getattr(k, name)
        worst = max(worst, float(np.max(np.abs(got - r)[keep] / np.abs(r)[keep])))
    return worst


CASES = [
    (stax.Monomial(3), stax.Relu(), None),  # was 3.4e-9 (fused), 7.8e-10 (layers)
    (stax.Elementwise("u**2 + u"), stax.Abs(), 0.2),
    (stax.Monomial(2), stax.Relu(), 0.2),
    (stax.Elementwise("2*u**4 - u + 1"), stax.LeakyRelu(0.1), 0.1),
    (stax.Monomial(3), stax.Sign(), 0.3),
]


@pytest.mark.parametrize(
    ("first", "second", "b_std"),
    [pytest.param(*c, marks=[pytest.mark.slow] if i >= 2 else []) for i, c in enumerate(CASES)],
)
def test_a_kinked_layer_after_a_polynomial_against_the_referee(
    first: stax.Layer, second: stax.Layer, b_std: float | None
) -> None:
    net = stax.serial(
        stax.Dense(64, W_std=1.2, b_std=0.1), first, stax.Dense(64, W_std=0.8, b_std=b_std),
        second, stax.Dense(1),
    )  # fmt: skip
    X = _inputs()
    ref = ntksym.reference.kernel(net, X)
    for backend in ("layers", "fused"):
        assert _worst(net, X, backend, ref) <= 1e-14, backend


def test_a_zero_variance_keeps_the_determinant() -> None:
    """The zero vector through a Dense layer without bias has variance 0 at the monomial:
    its ``rho`` is undefined, and a form with ``|S12| / sqrt(S11 S22)`` raised to powers gave
    NaN there, which sent the whole block of the layer maps to the subtraction (3.1e-12 on
    the NTK of the near-parallel pair beside it)."""
    x = np.random.default_rng(3).standard_normal(6)
    X = np.vstack([x, np.zeros(6), x * (1 + 1e-9)])
    net = stax.serial(
        stax.Dense(64, W_std=1.5), stax.Monomial(3), stax.Dense(64, W_std=1.3, b_std=0.2),
        stax.Relu(), stax.Dense(1),
    )  # fmt: skip
    ref = ntksym.reference.kernel(net, X)
    for backend in ("layers", "fused"):
        assert _worst(net, X, backend, ref) <= 1e-14, backend
