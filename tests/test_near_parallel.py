"""The longer Mehler series (degree up to 256) of the generated NumPy quadrature modules.

Near |rho| = 1 the series of degree 24 leaves too much out; ``runtime/numpy_mehler.py``
then sums up to a degree of its ladder, where its bound (the mass of the omitted terms,
from the residual of the truncated series, which nothing cancels in) says the sum is
within 1e-14. These tests compare it with 30-digit mpmath references stored in
``data/near_parallel_reference.json`` (written by ``data/make_near_parallel_reference.py``
from :mod:`ntksym.reference`): variances 1e-4..1e4, correlations up to 1 - 1e-12, twins at
correlation 1; and plant errors (a dropped term, a dropped tail) to see them caught.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ntksym import reference
from ntksym.codegen import load

DATA = json.loads((Path(__file__).parent / "data" / "near_parallel_reference.json").read_text())
NAMES = sorted({p[0] for p in DATA["pairs"]})
# Asked: 1e-13 of each reference entry (the series' own bound is 1e-14 of
# max(|E|, 0.2 sqrt(E[f(u)^2] E[f(v)^2])), looser for entries below that floor).
NEAR_BOUND = 1e-13


def _points(name):
    rows = np.array([p[1:] for p in DATA["pairs"] if p[0] == name])
    return rows.T  # s1, s2, s12, det, e, ed


def _errors(m, name):
    """Relative errors of the series (d = 0, 1) at the stored points, and where it answers."""
    m._MEMO.clear()
    s1, s2, s12, det, e, ed = _points(name)
    out = []
    for d, ref in ((0, e), (1, ed)):
        f = lambda v, d=d: m._fn(d, v)  # noqa: E731
        with np.errstate(divide="ignore"):  # (log 0 of a planted zero tail)
            P, ok = m._series(s1, s2, s12, det, np.sqrt(s1), np.sqrt(s2), f, None)
        out.append((np.abs(P - ref) / np.abs(ref), np.asarray(ok), s1, s2))
    m._MEMO.clear()
    return out


@pytest.mark.parametrize("name", NAMES)
def test_the_series_near_parallel_agrees_with_mpmath(name):
    m = load(name, "numpy")
    for err, ok, s1, s2 in _errors(m, name):
        assert ok.any() and err[ok].max() <= NEAR_BOUND, err[ok].max()
        # it answers at moderate variances (measured: all pairs with variances <= 1; the
        # adaptive rule takes the others, up to 1e4, where sigma is kink-like)
        assert ok[np.maximum(s1, s2) <= 1.0].all()


def test_a_dropped_term_is_caught(monkeypatch):
    """The longer series without its term 25 (tanh's a_25^2 ~ 1e-9 at variance 1)."""
    m = load("tanh", "numpy")
    horner = m._horner

    def dropped(a1, a2, rho, K):
        if K > m._KLOW:
            a1 = a1.copy()
            a1[m._KLOW + 1] = 0.0
        return horner(a1, a2, rho, K)

    monkeypatch.setattr(m, "_horner", dropped)
    worst = max(err[ok].max() for err, ok, *_ in _errors(m, "tanh"))
    assert worst > 100 * NEAR_BOUND, worst


def test_a_dropped_tail_is_caught(monkeypatch):
    """The bound without the mass of the omitted terms takes wrong entries."""
    m = load("tanh", "numpy")
    tails = m._tails

    def no_tail(a, E, err, R):
        T, *rest = tails(a, E, err, R)
        return (0.0 * T, *rest)

    monkeypatch.setattr(m, "_tails", no_tail)
    worst = max(err[ok].max() for err, ok, *_ in _errors(m, "tanh"))
    assert worst > 100 * NEAR_BOUND, worst


@pytest.mark.slow
def test_stored_near_parallel_references_are_reproduced():
    """Recompute one stored entry with ntksym.reference (checks the data file)."""
    for name, s1, s2, s12, _, e, ed in DATA["pairs"][1:2]:
        assert float(reference.dual(name, s1, s12, s2, dps=30)) == e
        assert float(reference.dual(name, s1, s12, s2, dps=30, derivative=True)) == ed
