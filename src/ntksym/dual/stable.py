"""Numerically stable layer maps for the activations with closed-form dual kernels.

A *layer map* takes the 2x2 covariance of a pair at layer ``l`` and returns what
the next layer needs. Its inputs are the symbols of :data:`INPUTS`:

``S11, S22, S12``
    the covariance entries ``Sigma^(l)(x,x), Sigma^(l)(x',x'), Sigma^(l)(x,x')``;
``D``
    its determinant ``S11*S22 - S12**2``, carried *accurately* from layer to layer
    (formed without cancellation from the inputs at layer 1, see the templates);
``N11, N22``
    the next layer's diagonal variances (computed once per row and column);
``W2, B2``
    ``weight_std**2`` and ``bias_std**2``.

Its outputs are ``nngp = E[sigma(u) sigma(v)]``, ``ntk = E[sigma'(u) sigma'(v)]`` (or
None when sigma' is a Dirac delta) and ``det``, the next layer's determinant
``N11*N22 - (W2*nngp + B2)**2``, or None to let the template form it directly.

Why carry ``D``: for positively homogeneous activations (ReLU and relatives) the
pair's angle ``theta`` keeps shrinking like ``sqrt(1 - rho)`` through the layers, and
``rho = 1 - epsilon`` rounded to float64 gives ``arccos(rho)`` with an absolute error of
``sqrt(epsilon)`` ~ 1e-8 (measured: docs/performance.md, accuracy of peers). Here every angle is
``atan2(sqrt(D), S12)`` and the next determinant is a product of two gaps,
``(M' - S12') (M' + S12')`` with ``M' = sqrt(N11 N22)``, each written as a sum of
non-negative terms, so no step subtracts nearly equal numbers.

The maps of each family live in :mod:`ntksym.dual.families`; this module holds the
symbols and the stable pieces several families share. Each closed form cites its source in
its docstring.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

S11, S22, N11, N22 = sp.symbols("S11 S22 N11 N22", nonnegative=True)
S12 = sp.Symbol("S12", real=True)
D = sp.Symbol("D", nonnegative=True)
W2, B2 = sp.symbols("W2 B2", nonnegative=True)

#: Every symbol a layer map may use, in the order the generated ``_pair`` takes them.
INPUTS: tuple[sp.Symbol, ...] = (S11, S22, S12, D, N11, N22, W2, B2)

R11, R22, Q11, Q22 = sp.symbols("R11 R22 Q11 Q22", nonnegative=True)
#: Square roots of the four variances. The templates compute them once per row, column
#: and layer and pass them to ``_pair`` after :data:`INPUTS`, so a layer map written with
#: ``sqrt(S11)`` etc. costs no square root per entry (see ``render.render_spec``).
ROOTS: dict[sp.Expr, sp.Symbol] = {
    sp.sqrt(S11): R11,
    sp.sqrt(S22): R22,
    sp.sqrt(N11): Q11,
    sp.sqrt(N22): Q22,
}


#: ``sqrt(S11) - sqrt(S22)``, signed. A map that uses it gets it as one more argument
#: after :data:`ROOTS`: ``R11 - R22`` past layer 1; at layer 1 the templates form it from
#: the inputs for the pairs with ``|rho| > 0.99``, ``c (|x| - |x'|)(|x| + |x'|) /
#: (R11 + R22)`` with ``|x| - |x'|`` as accurate as the first determinant. Its two
#: rounded variances alone would leave it an absolute error of ``2^-53 sqrt(S)``
#: (1e-10 at variance 1e12), which bounds near-parallel distances such as
#: :func:`distances`.
U = sp.Symbol("U", real=True)


class Atan2Q(sp.Function):
    """``atan2(y, x)`` known to have ``y >= 0`` and ``x >= 0`` (first quadrant).

    Printed as the generated module's cheaper ``_atan2q`` by the loop printer (see
    ``codegen.sign_variants``, which introduces it; ``_atan2q(0, 0)`` is 0, as ``atan2``);
    SymPy leaves it unevaluated.
    """

    nargs = 2


#: Smallest positive normal float64; guards 0/0 when a variance is exactly zero.
TINY = sp.Float("2.2250738585072014e-308", 17)


@dataclass(frozen=True)
class LayerMap:
    """One layer of the kernel recursion as SymPy expressions in :data:`INPUTS`.

    Attributes:
        nngp: ``E[sigma(u) sigma(v)]`` for the pair.
        ntk: ``E[sigma'(u) sigma'(v)]``, or None when sigma' has a Dirac delta.
        det: The next layer's determinant formed stably, or None (the template
            then forms ``N11*N22 - S12'**2`` directly).
        method: How the forms were obtained (shown in the generated docstring).
        diag: ``E[sigma(u)^2]`` in ``spec.S`` when given by hand; by default it is the
            nngp map on the diagonal, simplified by SymPy.
        carried: The next determinant accurate relative to itself (near-parallel pairs,
            unequal variances), for networks in which a layer that needs it follows (a
            kinked one: relu's map reads ``sqrt(D)``); None when ``det`` already is, or
            has no such form. The smooth families give it here instead of in ``det``:
            their own maps read D only through sums that never cancel, so the
            homogeneous kernels (which print ``det``) need not pay for it. Same symbols
            and meaning as ``det``; see :func:`next_det`.
    """

    nngp: sp.Expr
    ntk: sp.Expr | None
    det: sp.Expr | None
    method: str
    diag: sp.Expr | None = None
    carried: sp.Expr | None = None


#: Families whose printed ``det`` is accurate relative to itself for near-parallel pairs
#: (checked against mpmath: ``tests/test_stax_checks.py``, ``tests/test_smooth_det.py``).
#: GELU's ``det`` is not (35% off at variances 1 and 1 + 1e-9 near parallel); its
#: ``carried`` form is.
DET_FAMILIES: tuple[str, ...] = ("piecewise_linear", "jump", "rectified")

#: Families whose :func:`next_det` is accurate that way: :data:`DET_FAMILIES` and those
#: with a ``carried`` form (``tests/test_smooth_det.py``). ``mgf_expression`` gives one
#: for ``a sin(b u + c)`` and ``a cos(b u + c)`` only (``tests/test_phase_det.py``); its
#: other members have none, so nothing is trusted for them.
CARRIED_DET_FAMILIES: tuple[str, ...] = (
    *DET_FAMILIES,
    "erf",
    "mgf",
    "gelu",
    "mgf_expression",
    "polynomial",
)


def next_det(lm: LayerMap) -> sp.Expr | None:
    """The most accurate next determinant of ``lm``: ``carried`` if given, else ``det``."""
    return lm.carried if lm.carried is not None else lm.det


def angle_parts() -> tuple[sp.Expr, sp.Expr, sp.Expr, sp.Expr, sp.Expr]:
    """``M = sqrt(S11 S22)``, ``R = sqrt(D)``, and the gaps ``M - S12``, ``M + S12``.

    ``M - S12 = D / (M + S12)`` is used when ``S12 > 0`` (no cancellation there), and
    symmetrically for ``M + S12``.
    """
    m = sp.sqrt(S11 * S22)
    r = sp.sqrt(D)
    gap = sp.Piecewise((D / (m + S12), S12 > 0), (m - S12, True))
    anti = sp.Piecewise((D / (m - S12), S12 < 0), (m + S12, True))
    theta = sp.atan2(r, S12)
    return m, r, gap, anti, theta


def det_from_gaps(
    c: sp.Expr, gap_e: sp.Expr, anti_e: sp.Expr, root_gap: sp.Expr | None = None
) -> sp.Expr:
    """Next determinant for a positively homogeneous activation (E[sigma(u)^2] = c*S).

    With ``P' = W2*c*M + B2`` (the value of ``S12'`` at rho = 1),
    ``M' - P' = W2*B2*c*(sqrt(S11) - sqrt(S22))**2 / (M' + P')`` exactly, so
    ``M' - S12' = (M' - P') + W2*gap_e`` and ``M' + S12' = (M' - P') + W2*anti_e + 2*B2``
    with ``gap_e = c*M - E >= 0`` and ``anti_e = c*M + E >= 0``.
    """
    m = sp.sqrt(S11 * S22)
    mn = sp.sqrt(N11 * N22)
    pn = W2 * c * m + B2
    if root_gap is None:
        root_gap = sp.sqrt(S11) - sp.sqrt(S22)
    q = W2 * B2 * c * root_gap**2 / sp.Max(mn + pn, TINY)
    return (q + W2 * gap_e) * (q + W2 * anti_e + 2 * B2)


def h_series(x: sp.Expr, terms: int = 11) -> sp.Expr:
    """``sin x - x cos x`` as its Taylor series, for ``0 <= x < 1`` (no cancellation there).

    ``sin x - x cos x = sum_k (-1)^(k+1) 2k x^(2k+1) / (2k+1)!``; 11 terms reach 1e-19
    relative at ``x = 1``. Callers use it below 1 only: above, the direct form they
    already have cancels by at most a factor 3. See :func:`gap_kink` for fewer terms.
    """
    # x^3 P(x^2) in Horner form (SymPy keeps the nesting; the generated code then needs
    # one multiply-add per term instead of a power each)
    coeffs = [
        (-1) ** (k + 1) * sp.Rational(2 * k, sp.factorial(2 * k + 1)) for k in range(1, terms + 1)
    ]
    poly: sp.Expr = coeffs[-1]
    for ck in reversed(coeffs[:-1]):
        poly = ck + x**2 * poly
    return x**3 * poly


def arccos_parts() -> tuple[sp.Expr, ...]:
    """Angles and the degree-1 arc-cosine numerators, each without cancellation.

    ``theta = atan2(R, S12)`` and ``phi = pi - theta = atan2(R, -S12)`` (both accurate
    in absolute terms). ``kp = M (sin theta + phi cos theta)`` and
    ``kn = M (sin phi + theta cos phi)`` (the same with v -> -v); where the direct form
    would cancel (``phi < 1`` for ``kp``), ``kp = M (sin phi - phi cos phi)`` by its series.
    """
    m, r, gap, anti, theta = angle_parts()
    phi = sp.atan2(r, -S12)
    # phi < 1 implies S12 < 0 (phi >= pi/2 otherwise), and there r + phi S12 = M h(phi)
    # cancels; for phi >= 1 the direct form loses at most a factor 3 (h(1) = 0.30 vs
    # sin 1 = 0.84) and needs no 1/M. Likewise for kn with theta.
    # (S12 < 0 is implied; spelling it out lets sign_variants.positive_variant drop it)
    kp = sp.Piecewise((m * h_series(phi), (S12 < 0) & (phi < 1)), (r + phi * S12, True))
    kn = sp.Piecewise((m * h_series(theta), (S12 > 0) & (theta < 1)), (r - theta * S12, True))
    return m, r, gap, anti, theta, phi, kp, kn


#: Below this angle :func:`gap_kink` takes the series (5 terms; see there).
GAP_SERIES_BELOW = sp.Rational(1, 4)


def gap_kink(m: sp.Expr, r: sp.Expr, t: sp.Expr, s: sp.Expr) -> sp.Expr:
    """``r - t s = m (sin t - t cos t)`` (``s = m cos t``) where it is a small correction.

    In a gap ``M - E`` of the arc-cosine kernels (ReLU, leaky ReLU, ``|u|``) this term is
    about ``2 t / (3 pi)`` of the gap's main term ``pi (M - S12)``, which is accurate to
    itself. Formed by subtraction it carries an absolute error ``~eps m t``, that is
    ``~eps / t`` of the gap (5e-9 at ``t = 1e-8``; a later ``Sign`` makes the angle
    ``sqrt(t)`` and passes it on). Below ``t = 1/4`` five terms of :func:`h_series` leave
    a truncation of ``6e-9 t^10`` relative (at most 3e-16 of the gap); above it the
    subtraction's error is below 6e-16 of the gap. Five terms, not ``arccos_parts``'s
    eleven, since the term is needed only to ``eps / t`` of itself: the fused kernels
    print it in every pair's next determinant (the homogeneous kernels print the plain
    form; ``ntksym.dual.families.piecewise_linear``).
    """
    return sp.Piecewise((m * h_series(t, 5), t < GAP_SERIES_BELOW), (r - t * s, True))
