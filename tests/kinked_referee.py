"""Independent values of the dual maps of piecewise-analytic activations (test helper).

The activation is given by hand as its pieces: break points t_1 < ... < t_k and, per
interval, a function of the Taylor series of u and of tanh(u) at a point, so nothing here
uses the package's kink finder, split, derivatives or rules (sigma' is the derivative of
each piece's series). With u = a z1 and, given u, v ~ N(beta u, c^2) (beta = s12 / s11,
c^2 = det / s11),

    E[g(u) g(v)] = E[g(a z1) I(beta a z1)],  I(m) = sum_j E[h_j(m + c z) 1{t_j < m + c z < t_j+1}].

:func:`pair` (|rho| near 1, c <= 0.02): the inner expectation is a closed sum, each h_j's
Taylor series at m (tanh's by its recurrence t' = 1 - t^2) against the truncated normal
moments M_n = int_alpha^beta z^n phi(z) dz = alpha^(n-1) phi(alpha) - beta^(n-1) phi(beta)
+ (n - 1) M_(n-2), an asymptotic series in c taken to about 1e-24; the outer integral is
mpmath's Gauss-Legendre rule over z1 split at 0, at t_j / a, on the activation's feature
scale around 0, and graded (factors of 4) around the inner expectation's smoothed kinks
at t_j / (beta a), c / |beta a| wide; 22 digits.

:func:`pair_f64` (any c): both integrals by QUADPACK (scipy's adaptive Gauss-Kronrod) in
float64, split at the same points: about 1e-14, enough to judge a 1e-12 target, and
fast where a nested mpmath quadrature takes minutes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import mpmath


class Series:
    """A truncated Taylor series (coefficients a_0..a_K, a_n = f^(n)(m) / n!)."""

    def __init__(self, coef: list[Any]) -> None:
        self.coef = coef

    def __add__(self, other: Any) -> Series:
        if isinstance(other, Series):
            return Series([x + y for x, y in zip(self.coef, other.coef, strict=True)])
        return Series([self.coef[0] + other, *self.coef[1:]])

    __radd__ = __add__

    def __neg__(self) -> Series:
        return Series([-x for x in self.coef])

    def __sub__(self, other: Any) -> Series:
        return self + (-other)

    def __rsub__(self, other: Any) -> Series:
        return (-self) + other

    def __mul__(self, other: Any) -> Series:
        if not isinstance(other, Series):
            return Series([x * other for x in self.coef])
        a, b = self.coef, other.coef
        return Series([sum(a[i] * b[n - i] for i in range(n + 1)) for n in range(len(a))])

    __rmul__ = __mul__

    def __truediv__(self, x: Any) -> Series:
        return Series([y / x for y in self.coef])

    def derivative(self) -> Series:
        """The series of f' (one term shorter)."""
        return Series([n * self.coef[n] for n in range(1, len(self.coef))])


def _tanh_series(m: Any, k: int) -> Series:
    """tanh(m + x) to x^k: t' = 1 - t^2, so (n + 1) t_(n+1) = [n = 0] - sum t_i t_(n-i)."""
    t = [mpmath.tanh(m) if isinstance(m, mpmath.mpf) else math.tanh(m)]
    for n in range(k):
        conv = sum(t[i] * t[n - i] for i in range(n + 1))
        t.append(((1 if n == 0 else 0) - conv) / (n + 1))
    return Series(t)


Piece = Callable[[Series, Series], Series]

#: name -> (break points, per interval a function of the series of u and of tanh(u))
PIECES: dict[str, tuple[tuple[float, ...], tuple[Piece, ...]]] = {
    "max(u, 0)*tanh(u)": ((0.0,), (lambda u, t: u * 0, lambda u, t: u * t)),
    "max(min(u, 1), -1)*tanh(u)": (
        (-1.0, 1.0),
        (lambda u, t: -t, lambda u, t: u * t, lambda u, t: t),
    ),
    "max(min(u, 1), -1) + 0.1*tanh(u)": (
        (-1.0, 1.0),
        (lambda u, t: t / 10 - 1, lambda u, t: u + t / 10, lambda u, t: t / 10 + 1),
    ),
    "relu(u) + 0.1*tanh(u)": ((0.0,), (lambda u, t: t / 10, lambda u, t: u + t / 10)),
}


def _piece_series(piece: Piece, m: Any, k: int, derivative: bool) -> list[Any]:
    """Taylor coefficients of h (or h') at m, to x^k."""
    kk = k + 1 if derivative else k
    one = mpmath.mpf(1) if isinstance(m, mpmath.mpf) else 1.0
    u = Series([m, one, *([one * 0] * (kk - 1))])
    s = piece(u, _tanh_series(m, kk))
    return (s.derivative() if derivative else s).coef


def _moments(alpha: Any, beta: Any, n: int) -> list[Any]:
    """M_0..M_(n-1): int_alpha^beta z^k phi(z) dz, without cancellation in M_0."""

    def phi_x(x: Any, k: int) -> Any:
        return mpmath.mpf(0) if mpmath.isinf(x) else x**k * mpmath.npdf(x)

    r2 = mpmath.sqrt(2)
    if alpha > 0:
        m0 = (mpmath.erfc(alpha / r2) - mpmath.erfc(beta / r2)) / 2
    else:
        m0 = (mpmath.erfc(-beta / r2) - mpmath.erfc(-alpha / r2)) / 2
    out = [m0, phi_x(alpha, 0) - phi_x(beta, 0)]
    for k in range(2, n):
        out.append(phi_x(alpha, k - 1) - phi_x(beta, k - 1) + (k - 1) * out[k - 2])
    return out


def _terms(c: float) -> int:
    """Series length: (0.64 c sqrt(K))^K (the terms' size for tanh's radius pi/2) < 1e-24."""
    k = 2
    while k < 40 and (0.64 * c * math.sqrt(k)) ** k >= 1e-24:
        k += 1
    return k


def _edges(breaks: Sequence[float]) -> list[Any]:
    return [-mpmath.inf, *(mpmath.mpf(t) for t in breaks), mpmath.inf]


def _inner(name: str, m: Any, c: Any, k: int, derivative: bool) -> Any:
    """E[g(m + c z)], z ~ N(0, 1), by the series (c small)."""
    breaks, pieces = PIECES[name]
    edges = _edges(breaks)
    total = mpmath.mpf(0)
    for j, piece in enumerate(pieces):
        lo, hi = (edges[j] - m) / c, (edges[j + 1] - m) / c
        if hi < -40 or lo > 40:  # (a piece 40 standard deviations away: exp(-800))
            continue
        coef = _piece_series(piece, m, k, derivative)
        moments = _moments(lo, hi, k + 1)
        total += mpmath.fsum(coef[n] * c**n * moments[n] for n in range(k + 1))
    return total


def _value(name: str, x: Any, derivative: bool) -> Any:
    """g(x); at a break point the mean of the two sides (measure zero)."""
    breaks, pieces = PIECES[name]
    j = sum(1 for t in breaks if x > t)  # (x in (edges[j], edges[j + 1]])
    at = [j, j + 1] if j < len(breaks) and x == breaks[j] else [j]
    return mpmath.fsum(_piece_series(pieces[i], x, 1, derivative)[0] for i in at) / len(at)


def outer_points(breaks: Sequence[float], a: float, beta_a: float, c: float) -> list[float]:
    """Break points of the outer integral in z1 (see the module docstring), |z1| < 14."""
    pts = {0.0}
    for k in (0.3, 1, 3, 10, 30):
        pts |= {k / a, -k / a}
    for t in breaks:
        pts.add(t / a)
        width = c / abs(beta_a) if beta_a != 0 else math.inf
        while width < 1:
            pts |= {t / beta_a, t / beta_a - width, t / beta_a + width}
            width *= 4
    return sorted(x for x in pts if abs(x) < 14)


def pair(name: str, s11: float, s12: float, s22: float, det: float, *, derivative: bool) -> float:
    """E[g(u) g(v)] (g = sigma, or sigma' when ``derivative``), s11 > 0, c <= 0.02."""
    with mpmath.workdps(22):
        a = mpmath.sqrt(mpmath.mpf(s11))
        beta = mpmath.mpf(s12) / mpmath.mpf(s11)
        c = mpmath.sqrt(mpmath.mpf(det) / mpmath.mpf(s11))
        assert c <= 0.02, "the series needs c <= 0.02: use pair_f64"
        k = _terms(float(c))

        def integrand(z: Any) -> Any:
            x = a * z
            gx = _value(name, x, derivative)
            if gx == 0:
                return gx
            return gx * _inner(name, beta * x, c, k, derivative) * mpmath.npdf(z)

        pts = outer_points(PIECES[name][0], float(a), float(beta * a), float(c))
        pts = [-mpmath.inf, *(mpmath.mpf(x) for x in pts), mpmath.inf]
        return float(mpmath.quad(integrand, pts, method="gauss-legendre"))


def _f64(name: str, derivative: bool) -> list[Callable[[float], float]]:
    """The pieces of g as float64 functions (the series' first coefficient)."""
    _, pieces = PIECES[name]

    def make(piece: Piece) -> Callable[[float], float]:
        return lambda x: float(_piece_series(piece, float(x), 1, derivative)[0])

    return [make(p) for p in pieces]


def pair_f64(
    name: str, s11: float, s12: float, s22: float, det: float, *, derivative: bool
) -> float:
    """E[g(u) g(v)] by nested QUADPACK (float64), s11 > 0, det > 0."""
    from scipy.integrate import quad

    breaks = PIECES[name][0]
    hs = _f64(name, derivative)
    edges = [-math.inf, *breaks, math.inf]
    a, beta, c = math.sqrt(s11), s12 / s11, math.sqrt(det / s11)
    opts = {"epsabs": 0.0, "epsrel": 2e-14, "limit": 400}

    def g(x: float) -> float:
        return hs[sum(1 for t in breaks if x > t)](x)

    def inner(m: float) -> float:
        total = 0.0
        for j, h in enumerate(hs):
            lo, hi = max((edges[j] - m) / c, -14.0), min((edges[j + 1] - m) / c, 14.0)
            if lo >= hi:
                continue
            pts = [x for x in (-m / c + d / c for d in (-3, -1, 0, 1, 3)) if lo < x < hi]
            f = lambda z, h=h: h(m + c * z) * math.exp(-0.5 * z * z)  # noqa: E731
            total += quad(f, lo, hi, points=pts or None, **opts)[0]
        return total / math.sqrt(2 * math.pi)

    def integrand(z: float) -> float:
        gx = g(a * z)
        return 0.0 if gx == 0.0 else gx * inner(beta * a * z) * math.exp(-0.5 * z * z)

    pts = outer_points(breaks, a, beta * a, c)
    edges_z = [-14.0, *pts, 14.0]
    total = sum(
        quad(integrand, lo, hi, **opts)[0] for lo, hi in zip(edges_z, edges_z[1:], strict=False)
    )
    return total / math.sqrt(2 * math.pi)


def diagonal(name: str, s: float, *, derivative: bool) -> float:
    """E[g(u)^2], u ~ N(0, s): the Cauchy-Schwarz scale's factors (mpmath, 22 digits)."""
    breaks, _ = PIECES[name]
    with mpmath.workdps(22):
        a = mpmath.sqrt(mpmath.mpf(s))
        pts = outer_points(breaks, float(a), 0.0, 1.0)
        pts = [-mpmath.inf, *(mpmath.mpf(x) for x in pts), mpmath.inf]
        return float(
            mpmath.quad(lambda z: _value(name, a * z, derivative) ** 2 * mpmath.npdf(z), pts)
        )
