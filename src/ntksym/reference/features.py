"""Where the referee's integrands change fast: kinks and steep smooth terms, and graded splits.

A Gauss-Legendre piece converges geometrically only when its integrand is smooth *on the
piece's own length*. Two kinds of feature break that in the referee's standardised
coordinates: a kink (width 0), and a smooth term that changes on a length much shorter than
the Gaussian's, such as ``erf(u)`` or ``tanh(u)`` at variance 1e4 (a step 0.01 wide in
standard deviations), or the conditional smoothing of a kink of ``sigma(v)`` when
``|rho|`` is close to 1 (a step ``sqrt(1 - rho^2)`` wide). Around a feature of centre ``c``
and width ``w`` the pieces are graded geometrically, ``c +- w 2^j`` up to the Gaussian's
scale: each piece then sees the feature at a distance comparable to its own length.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import mpmath
import sympy as sp

from ntksym.activations import Activation
from ntksym.activations.expr import u
from ntksym.reference.homogeneous import sympy_to_mpf

__all__ = ["Feature", "smooth_features", "graded_points", "oscillation_frequency", "split_periods"]

#: (centre, width) of a feature; width 0 is a kink.
Feature = tuple[Any, Any]

#: Smooth functions whose argument sets a length: a step, a bump or a fast exponential.
_STEEP = (sp.erf, sp.erfc, sp.tanh, sp.atan, sp.exp, sp.sech, sp.cosh, sp.sinh)
#: Periodic functions: sin(a u + b) turns on the length 2 pi / |a|.
_PERIODIC = (sp.sin, sp.cos)
#: Longest Gauss-Legendre piece, in periods of the fastest oscillation (see split_periods).
PERIODS_PER_PIECE = 8
#: Features narrower than this (in standard deviations) get graded pieces.
GRADE_BELOW = mpmath.mpf(1) / 4


def smooth_features(act: Activation, derivative: bool) -> list[Feature]:
    """Centres and widths (in units of u) of the steep smooth terms of sigma or sigma'.

    A term ``F(a u + b)`` (F one of erf, erfc, tanh, atan, exp, sech, cosh, sinh) changes
    around ``-b/a`` on the length ``1/|a|``; ``F(a u^2 + b u + c)`` around ``-b/(2a)`` on
    ``1/sqrt(2|a|)``. Other terms give no feature (they cost accuracy checks, not splits).

    Args:
        act: The activation.
        derivative: Analyse sigma' instead of sigma.

    Returns:
        The features, without repeats.
    """
    expr = act.derivative if derivative else act.expr
    found: set[Feature] = set()
    for atom in expr.atoms(*_STEEP):
        arg = atom.args[0]
        if not arg.has(u) or not arg.is_polynomial(u):
            continue
        coeffs = sp.Poly(arg, u).all_coeffs()
        if any(not c.is_number or not c.is_real for c in coeffs) or len(coeffs) > 3:
            continue
        if len(coeffs) == 2:
            a, b = (sympy_to_mpf(c) for c in coeffs)
            found.add((-b / a, 1 / abs(a)))
        else:
            a, b, _ = (sympy_to_mpf(c) for c in coeffs)
            found.add((-b / (2 * a), 1 / mpmath.sqrt(2 * abs(a))))
    return sorted(found)


def graded_points(features: Sequence[Feature], half_width: Any, digits: float) -> list[Any]:
    """Split points for ``features`` (in standard deviations) inside ``[-half_width, half_width]``.

    Each centre, and for a feature narrower than :data:`GRADE_BELOW` the points
    ``centre +- width 2^j`` up to a distance of 1, or of ``reach * width`` when that is
    shorter: with ``reach = max(64, 2.5 digits)``, a step of the kind above (an erf, a tanh, a
    Gaussian-smoothed kink) is within ``10^-digits`` of its limits beyond that distance, so
    the piece outside sees a smooth function to the accuracy asked.
    """
    reach = max(64, 2.5 * digits)
    points = []
    for centre, width in features:
        if not mpmath.isfinite(centre) or abs(centre) >= half_width + 1:
            continue
        points.append(centre)
        if 0 < width < GRADE_BELOW:
            d = width
            while d < 1 and d < reach * width:
                points += [centre - d, centre + d]
                d *= 2
    return sorted({p for p in points if -half_width < p < half_width})


def oscillation_frequency(act: Activation, derivative: bool) -> Any:
    """Largest angular frequency ``|a|`` of a term ``sin(a u + b)`` or ``cos(a u + b)``, or 0.

    A Gaussian-weighted integrand that oscillates many times on one Gauss-Legendre piece
    is not resolved by the piece's highest degree, and mpmath's error estimate (the
    extrapolated difference of its last degrees) is then unreliable: ``abs(u) + sin(u)``
    at variance 1e4 has about 64 periods of ``sin(u) sin(v)`` between the split points
    ``z1 = 0`` and ``2``. Only arguments linear in ``u`` with real numeric coefficients
    count; others give 0 (their pieces are checked by the estimate only).
    """
    expr = act.derivative if derivative else act.expr
    fastest = mpmath.mpf(0)
    for atom in expr.atoms(*_PERIODIC):
        arg = atom.args[0]
        if not arg.has(u) or not arg.is_polynomial(u):
            continue
        coeffs = sp.Poly(arg, u).all_coeffs()
        if len(coeffs) == 2 and all(c.is_number and c.is_real for c in coeffs):
            fastest = max(fastest, abs(sympy_to_mpf(coeffs[0])))
    return fastest


def split_periods(points: Sequence[Any], period: Any, reach: Any) -> list[Any]:
    """Break points with every gap inside ``[-reach, reach]`` cut to a few periods.

    Each gap longer than :data:`PERIODS_PER_PIECE` periods is cut into equal pieces no
    longer than that, so a Gauss-Legendre piece sees a few oscillations (its degree 6 then
    resolves them to the working precision); outside ``[-reach, reach]`` the Gaussian weight
    is negligible and the gaps are kept.
    """
    if not period or not mpmath.isfinite(period):
        return list(points)
    longest = PERIODS_PER_PIECE * period
    out = [points[0]]
    for a, b in zip(points[:-1], points[1:], strict=True):
        lo, hi = max(a, -reach), min(b, reach)
        if hi - lo > longest:
            n = int(mpmath.ceil((hi - lo) / longest))
            out += [p for p in (a, lo) if p > out[-1]]
            out += [lo + (hi - lo) * k / n for k in range(1, n)]
            out += [p for p in (hi,) if p > out[-1]]
        if b > out[-1]:
            out.append(b)
    return out
