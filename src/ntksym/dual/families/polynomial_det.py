"""A stable layer map for polynomial activations, with the next determinant carried.

For a polynomial ``f`` the maps are Isserlis' polynomials in ``S11, S22, S12``, exact in
float64 up to rounding; what they lack is the next determinant ``N11 N22 - S12'^2`` without
cancellation, which a kinked layer after ``f`` needs for nearly parallel pairs (formed by
subtraction it costs the angle ``~eps / theta``: 3e-9 relative in a ReLU's NTK on a pair
1e-8 apart).

It comes from the Hermite expansion, which for a polynomial is finite: with ``u = r z``,

    f(r z) = sum_k A_k(r) He_k(z) / k!,   A_k(r) = sum_j c_j r^j j! / (((j - k)/2)! 2^((j - k)/2))

(``j - k`` even and non-negative; ``z^j = sum_k j! / (k! ((j-k)/2)! 2^((j-k)/2)) He_k``), so
Mehler's formula gives ``E[f(u) f(v)] = sum_k a_k b_k rho^k / k!`` with ``a_k = A_k(R1)``,
``b_k = A_k(R2)``, ``R_i = sqrt(S_ii)``, ``rho = S12 / (R1 R2)`` (Mehler 1866; O'Donnell,
*Analysis of Boolean Functions*, 2014, ch. 11). Lagrange's identity then splits

    E11 E22 - E12^2 = sum_{j<k} (a_j b_k - a_k b_j)^2 / (j! k!)
                      + (sum_k a_k b_k m_k / k!) (sum_k a_k b_k p_k / k!),
    E11 + E22 - 2 E12 = sum_k (a_k - b_k)^2 / k! + 2 sum_k a_k b_k m_k / k!,

with ``m_k = 1 - rho^k`` and ``p_k = 1 + rho^k``. Each part is small only for a reason
that is written out: ``a_j b_k - a_k b_j`` and ``a_k - b_k`` vanish at ``R1 = R2``, so they
are ``U = R1 - R2`` (the carried root gap) times polynomials in ``R1, R2`` (exact division);
``1 - t^k = (1 - t) (1 + t + ... + t^(k-1))`` with ``t = |rho|`` and
``1 - t = D / (R1 R2 (R1 R2 + |S12|))`` from the carried determinant (for ``S12 < 0`` an odd
``k`` swaps ``m_k`` and ``p_k``). The next determinant after the Dense layer that follows is
``W2^2 (E11 E22 - E12^2) + W2 B2 (E11 + E22 - 2 E12)``.

:func:`tests.test_polynomial_det` checks the forms against the direct ones as an exact
identity, and the kernels against mpmath.
"""

from __future__ import annotations

import math

import sympy as sp

from ntksym.activations import Activation, get_activation, u
from ntksym.dual import derive as _d
from ntksym.dual.stable import B2, S11, S12, S22, W2, D, LayerMap, U

__all__ = ["hermite_coefficients", "layer_map", "monomial"]

_R1, _R2 = sp.symbols("R1 R2", positive=True)


def hermite_coefficients(f: sp.Expr, r: sp.Symbol) -> dict[int, sp.Expr]:
    """``A_k(r)`` of the polynomial ``f`` (``f(r z) = sum_k A_k(r) He_k(z) / k!``), by ``k``."""
    out: dict[int, sp.Expr] = {}
    for (j,), c in sp.Poly(f, u).terms():
        for k in range(j % 2, j + 1, 2):
            h = (j - k) // 2
            term = c * r**j * sp.Integer(math.factorial(j)) / (math.factorial(h) * 2**h)
            out[k] = out.get(k, sp.Integer(0)) + term
    return {k: sp.expand(a) for k, a in sorted(out.items()) if a != 0}


def _gap_quotient(expr: sp.Expr) -> sp.Expr:
    """``expr(R1, R2) / (R1 - R2)`` for an ``expr`` that vanishes at ``R1 = R2`` (exact)."""
    q, r = sp.div(sp.Poly(sp.expand(expr), _R1, _R2), sp.Poly(_R1 - _R2, _R1, _R2))
    if not r.is_zero:
        raise ValueError(f"{expr} does not vanish at R1 = R2")
    return q.as_expr()


def _carried(f: sp.Expr) -> sp.Expr:
    """The next determinant after ``f`` and a Dense layer ``(W2, B2)``, without cancellation."""
    coeffs = hermite_coefficients(f, _R1)
    at = {k: (a, a.xreplace({_R1: _R2})) for k, a in coeffs.items()}  # (a_k, b_k) in R1, R2
    ks = sorted(at)
    w = {k: sp.Rational(1, math.factorial(k)) for k in ks}
    lagrange = sum(
        (
            w[j] * w[k] * _gap_quotient(at[j][0] * at[k][1] - at[k][0] * at[j][1]) ** 2
            for i, j in enumerate(ks)
            for k in ks[i + 1 :]
        ),
        sp.Integer(0),
    )
    spread = sum((w[k] * _gap_quotient(at[k][0] - at[k][1]) ** 2 for k in ks), sp.Integer(0))
    m = sp.sqrt(S11) * sp.sqrt(S22)
    s = sp.Abs(S12)
    # (a zero variance: m = 0, S12 = D = 0, and only k = 0 has a_k b_k != 0, where t does
    # not enter: t = 0 there, so that no 0/0 and no 0 * inf of its powers appear)
    t = sp.Piecewise((s / m, m > 0), (0, True))
    one_minus_t = sp.Piecewise((D / (m * (m + s)), m > 0), (1, True))

    def parts(negative: bool) -> tuple[sp.Expr, sp.Expr]:
        small, large = sp.Integer(0), sp.Integer(0)
        for k in ks:
            ab = w[k] * at[k][0] * at[k][1]
            q = sum((t**i for i in range(k)), sp.Integer(0))
            lo, hi = one_minus_t * q, 1 + t**k  # 1 - t^k, 1 + t^k
            if negative and k % 2:
                lo, hi = hi, lo
            small += ab * lo
            large += ab * hi
        return small, large

    roots = {_R1: sp.sqrt(S11), _R2: sp.sqrt(S22)}
    lagrange, spread = (e.xreplace(roots) for e in (lagrange, spread))
    forms = []
    for negative in (False, True):
        mm, pp = (e.xreplace(roots) for e in parts(negative))
        det = U**2 * lagrange + mm * pp
        gap = U**2 * spread + 2 * mm
        forms.append(W2**2 * det + W2 * B2 * gap)
    return sp.Piecewise((forms[0], S12 >= 0), (forms[1], True))


def layer_map(act: Activation) -> LayerMap | None:
    """Isserlis' maps of a polynomial ``act`` and the next determinant carried; else None."""
    if not act.expr.is_polynomial(u):
        return None
    to_stable = {_d.S11: S11, _d.S12: S12, _d.S22: S22}
    nngp = _d.polynomial_expectation(act.expr, act.expr).xreplace(to_stable)
    ntk = _d.polynomial_expectation(act.derivative, act.derivative).xreplace(to_stable)
    return LayerMap(
        nngp, ntk, None, "Isserlis; determinant by Mehler and Lagrange", carried=_carried(act.expr)
    )


def monomial(k: int = 1) -> LayerMap:
    """The stable map of the registered ``monomial(k)``, ``u^k``."""
    lm = layer_map(get_activation("monomial", k=k))
    assert lm is not None
    return lm
