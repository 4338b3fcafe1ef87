"""The derived next determinant after typed Gaussian-MGF expressions, and its gate.

``ntksym.dual.families.mgf_expr_det`` derives ``N11 N22 - S12'^2`` without cancellation;
``mgf_expr_check`` certifies it against mpmath on a fixed scan before the homogeneous
modules print it (``ntksym.codegen.mend``). These tests check the form off that scan, that
the certification refuses planted errors, and that the modules print it exactly where a
certified form exists.
"""

from __future__ import annotations

import math
import random

import mpmath as mp
import numpy as np
import pytest
import sympy as sp

from ntksym.activations import u
from ntksym.codegen.render import render, render_spec
from ntksym.codegen.spec import kernel_spec
from ntksym.dual import derive
from ntksym.dual.families import mgf_expr_check as check
from ntksym.dual.families.mgf_expr_det import expression_det
from ntksym.dual.stable import U


def _reference(expr: sp.Expr, x: list, y: list, w2: float, b2: float) -> tuple:
    """``(D', N11 N22, args)`` at the pair ``x, y`` in mpmath (50 digits)."""
    e = derive.exp_quadratic_expectation(expr, expr)
    moment = sp.lambdify((derive.S11, derive.S12, derive.S22), e, "mpmath")
    pairs = ((x, x), (y, y), (x, y))
    s11, s22, s12 = (sum(a * b for a, b in zip(p, q, strict=True)) for p, q in pairs)
    r1, r2 = mp.sqrt(s11), mp.sqrt(s22)
    gap = (s11 * s22 - s12**2) / (r1 * r2 + abs(s12))
    n11, n22, n12 = (w2 * moment(*a) + b2 for a in ((s11,) * 3, (s22,) * 3, (s11, s12, s22)))
    return n11 * n22 - n12**2, n11 * n22, (float(r2), float(r1 - r2), float(gap)), s12 > 0


@pytest.mark.parametrize("text", ["sin(u) + u", "cos(u) + u"])
def test_the_certified_form_holds_off_its_scan(text: str) -> None:
    """Pairs the scan never saw (another seed, eight dimensions, scales 3e-2..3e5, steps
    1e-6..1e-10): the sine of the next angle within the tolerance, each pair."""
    expr = sp.sympify(text, locals={"u": u})
    found = check.certified_det(expr)
    assert found is not None
    rnd = random.Random(11)
    worst = 0.0
    with mp.workdps(50), np.errstate(all="ignore"):
        for scale in (3e-2, 1.0, 30.0, 3e3, 3e5):
            for step in (1e-6, 1e-8, 1e-10):
                for sign in (1.0, -1.0):
                    x = [mp.mpf(rnd.gauss(0, 1) * scale) for _ in range(8)]
                    y = [sign * a + mp.mpf(rnd.gauss(0, 1) * scale * step) for a in x]
                    ref, nn, args, pos = _reference(expr, x, y, 1.3, 0.2)
                    got = float(found.numeric[0 if pos else 1](*args, 1.3, 0.2))
                    if ref < check.GATE * nn:
                        sine = abs(mp.sqrt(max(got, 0.0)) - mp.sqrt(ref)) / mp.sqrt(nn)
                        worst = max(worst, float(sine))
    assert worst <= check.TOLERANCE


def test_the_certification_refuses_planted_errors() -> None:
    """A relative error of 1e-6 in the form, a sign flipped in its anti-parallel branch
    or the two branches swapped is found by the scan. (A relative error e of a small D' moves
    the next angle's sine by e sin / 2 only, which is why the plant is not smaller.)"""
    expr = sp.cos(u) + u
    forms = expression_det(expr)
    assert forms is not None
    good = max(err for _v, err in check.scan(expr, check.numeric(forms)))
    assert good <= check.TOLERANCE
    planted = [
        (forms[0] * (1 + sp.Rational(1, 10**6)), forms[1]),
        (forms[0], forms[1].xreplace({U: -U})),
        (forms[1], forms[0]),
    ]
    worst = [max(err for _v, err in check.scan(expr, check.numeric(bad))) for bad in planted]
    assert min(worst) > 10 * check.TOLERANCE, worst


def test_a_non_finite_form_is_refused() -> None:
    """A form that gives NaN at some scanned pair is refused (error inf there)."""
    expr = sp.cos(u) + u
    forms = expression_det(expr)
    assert forms is not None
    bad = (forms[0] * sp.sqrt(U - sp.Rational(1, 10**6)), forms[1])
    assert max(err for _v, err in check.scan(expr, check.numeric(bad))) == math.inf


@pytest.mark.parametrize(
    "activation, mended",
    [("sin(u) + u", True), ("exp", True), ("cos(u) + u", True), ("erf", False),
     ("relu", False), ("u**3 + u", False)],
)  # fmt: skip
def test_the_mend_is_printed_where_certified(activation: str, mended: bool) -> None:
    """Maps that keep twins by hand get the mend when a certified form exists; others
    (their own next determinant, moderate variances, or no ``D`` read) do not."""
    rs = render_spec(kernel_spec(activation), "numpy")
    assert (rs.mend is not None) is mended
    assert ("def _pair_mend(" in render(activation, "numba")) is mended


@pytest.mark.parametrize(
    "text",
    ["u*sin(u)", "sin(u) + 0.3*u**3", "u**2*sin(u) + u",
     "1.4142135623730951*sin(1.1832159566199232*u + 0.7853981633974483)"],
)  # fmt: skip
def test_heavy_expressions_are_left_before_the_derivation(text: str) -> None:
    """Expressions whose forms would be too large to certify (hundreds of thousands of
    nodes, half a minute and more to derive), or whose phase constants made SymPy's
    expansion run for minutes in gigabytes (``Rbf(0.7)``, last), are declined before
    deriving anything."""
    expr = sp.sympify(text, locals={"u": u})
    assert derive.exp_quadratic_terms(expr) is not None  # (of the family: not why)
    assert expression_det(expr) is None
    assert check.certified_det(expr) is None
