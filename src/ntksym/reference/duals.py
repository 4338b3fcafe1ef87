"""Reference dual maps E[sigma(u) sigma(v)] and E[sigma'(u) sigma'(v)] in mpmath.

By quadrature (never using a closed form) or, when asked, by a closed form evaluated in mpmath.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mpmath
import sympy as sp

from ntksym.activations import Activation
from ntksym.dual import check_covariance
from ntksym.dual.growth import growth_rate
from ntksym.errors import ActivationError, InputError, NoClosedFormError, NTKSymError
from ntksym.reference.convert import (
    GUARD_DIGITS,
    ActivationLike,
    ReferenceNotConverged,
    as_activation,
    check_dps,
    check_method,
    covariance,
)
from ntksym.reference.features import oscillation_frequency, smooth_features
from ntksym.reference.homogeneous import (
    Homogeneous,
    analysis,
    half_moment,
    homogeneous_dual,
    pointwise,
    sympy_to_mpf,
)
from ntksym.reference.tanh_sinh import (
    gauss_expect_1d,
    general_dual,
    oscillation_beyond_reach,
)

__all__ = ["dual_quadrature", "dual_closed_form", "dual"]


mp = mpmath.mp


# --------------------------------------------------------------------------- public: quadrature
def dual_quadrature(
    activation: ActivationLike,
    s11: Any,
    s12: Any,
    s22: Any,
    *,
    dps: int = 30,
    derivative: bool = False,
    error: bool = False,
) -> Any:
    """Dual kernel of an activation by quadrature in mpmath, independent of any closed form.

    Computes ``E[sigma(u) sigma(v)]`` (or ``E[sigma'(u) sigma'(v)]`` when
    ``derivative``) for ``(u, v) ~ N(0, [[s11, s12], [s12, s22]])``. Piecewise
    positively homogeneous activations use whitened polar coordinates with the
    radial integral done exactly; all others an iterated 1-D tanh-sinh
    quadrature (see the module docstring). Zero variances are allowed: then
    ``u = 0`` and the value of ``sigma(0)`` follows SymPy's convention
    (``Heaviside(0) = 1/2``, ``sign(0) = 0``).

    Args:
        activation: A registered name, a user expression or an Activation.
        s11: Variance of ``u`` (>= 0); int, float, mpf or a decimal string.
            Floats are converted exactly.
        s12: Covariance of ``u`` and ``v`` with ``s12^2 <= s11*s22``.
        s22: Variance of ``v`` (>= 0).
        dps: Decimal digits of the result (15..1000); the work is done with
            15 guard digits.
        derivative: Use ``sigma'`` instead of ``sigma``.
        error: Also return an error estimate.

    Returns:
        The expectation as an ``mpf`` (rounded to ``dps`` digits), or
        ``(value, error_estimate)`` when ``error`` is true; the estimate bounds
        the quadrature error (as estimated from successive refinements) plus the
        final rounding.

    Raises:
        InputError: Non-finite or non-numeric input, negative variance, a
            covariance that is not positive semidefinite, a bad ``dps``, or a
            step-like derivative at ``|rho| = 1`` or a zero variance (where
            ``E[delta(u) delta(v)]`` is infinite), or a covariance at which the map is
            infinite (:func:`ntksym.dual.check_covariance`).
        ActivationError: The activation is not real or cannot be evaluated, or
            its derivative contains a Dirac delta that is not a single jump at 0.
        ReferenceNotConverged: (a QuadratureError) the quadrature's error estimate exceeds
            ``10^-(dps-5)`` relative to the size of the integrand; the message names the
            expression, the covariance, the estimate and the target.

    Example:
        >>> from mpmath import mp, nstr
        >>> nstr(dual_quadrature("relu", 1, 0, 1), 15)  # 1/(2 pi)
        '0.159154943091895'
    """
    act = as_activation(activation)
    dps = check_dps(dps)
    with mp.workdps(dps + GUARD_DIGITS):
        a11, a12, a22, det = covariance(s11, s12, s22)
        check_covariance(act, a11, a12, a22)  # (a divergent integral has no estimate)
        try:
            value, err = _quadrature(act, a11, a12, a22, det, derivative, dps)
        except (OverflowError, MemoryError):
            raise InputError(_beyond_mpmath(act, a11, a12, a22)) from None
        with mp.workdps(dps):
            rounded = +value
        # the estimate also covers roundoff at working precision and the final rounding
        err += abs(value) * mpmath.mpf(10) ** (5 - mp.dps) + abs(value - rounded)
    with mp.workdps(dps):
        err = +err * (1 + mpmath.mpf(10) ** (3 - dps))  # round the estimate up
    return (rounded, err) if error else rounded


def _quadrature(
    act: Activation, a11: Any, a12: Any, a22: Any, det: Any, derivative: bool, dps: int
) -> tuple[Any, Any]:
    if derivative and act.has_distributional_derivative:
        return _delta_dual(act, a11, a22, det)
    h = analysis(act, derivative)
    if a11 == 0 or a22 == 0:
        return _degenerate(act, derivative, h, a11, a22, dps)
    if h is not None:
        return homogeneous_dual(h, a11, a12, a22, det)
    _check_scale(act, derivative, a11, a22)
    f = pointwise(act, derivative)
    kinks = [mpmath.mpf(k) for k in act.kinks]
    features = smooth_features(act, derivative)
    frequency = oscillation_frequency(act, derivative)
    # E[f(u) f(v)] is symmetric: the larger variance outside leaves the inner integral the
    # smaller conditional deviation sqrt(det / a_outer), so fewer oscillations
    out, inn = (a22, a11) if frequency and a22 > a11 else (a11, a22)
    beyond = oscillation_beyond_reach(frequency, kinks, out, a12, det, _target(dps))
    if beyond is not None:
        raise ReferenceNotConverged(
            f"the mpmath reference of {_what(act, derivative)} at (s11, s12, s22) = "
            f"({mpmath.nstr(a11, 17)}, {mpmath.nstr(a12, 17)}, {mpmath.nstr(a22, 17)}) is not "
            f"attempted: {beyond} (it would run for hours and not converge)"
        )
    value, err, size = general_dual(f, kinks, out, a12, inn, det, _target(dps), features, frequency)
    if err > mpmath.mpf(10) ** (-(dps - 5)) * max(abs(value), size):
        raise ReferenceNotConverged(
            f"the mpmath reference of {_what(act, derivative)} at (s11, s12, s22) = "
            f"({mpmath.nstr(a11, 17)}, {mpmath.nstr(a12, 17)}, {mpmath.nstr(a22, 17)}) did not "
            f"converge: error estimate {mpmath.nstr(err, 3)} for the value "
            f"{mpmath.nstr(value, 17)}, above the target "
            f"{mpmath.nstr(mpmath.mpf(10) ** (5 - dps), 3)} relative to "
            f"{mpmath.nstr(max(abs(value), size), 3)} (dps={dps})"
        )
    # never claim more than the accuracy the nested rules were asked for: their level
    # heuristics can be optimistic when inner errors, not the outer step, dominate
    return value, max(err, _target(dps) * max(abs(value), size))


def _check_scale(act: Activation, derivative: bool, a11: Any, a22: Any) -> None:
    """Refuse a pair whose own variances have an infinite second moment.

    The iterated rule sets its tolerances relative to ``sqrt(E[f(u)^2] E[f(v)^2])``. For
    ``|sigma(u)| = exp(a u^2 + ...)`` that scale is infinite once a variance reaches
    ``1/(4a)``, while the pair itself stays finite up to ``1/(2a)`` (e.g. independent
    ``u, v``): the tolerances are then meaningless and the value is not certified
    (``exp(u**2)`` at ``(0.3, 0, 0.3)`` gave 2.49998 for the exact 2.5, with an estimate of
    1e1967). Such a pair is refused rather than answered.
    """
    rate = growth_rate(act)
    if rate > 0 and 4 * rate * max(a11, a22) >= 1:
        raise ReferenceNotConverged(
            f"the mpmath reference of {_what(act, derivative)} at variances "
            f"({mpmath.nstr(a11, 17)}, {mpmath.nstr(a22, 17)}) cannot be certified: sigma "
            f"grows like exp({rate:g} u^2), so E[sigma(u)^2] is infinite at variances from "
            f"1/(4*{rate:g}) = {1 / (4 * rate):.6g} on, and the rule's error control is relative "
            "to it; the pair itself may be finite (up to the largest eigenvalue 1/(2a)), but "
            "this referee does not answer there"
        )


def _what(act: Activation, derivative: bool) -> str:
    which = "E[sigma'(u) sigma'(v)]" if derivative else "E[sigma(u) sigma(v)]"
    return f"{which} for sigma = {sp.sstr(act.expr)} ({act.name!r})"


def _target(dps: int) -> Any:
    """Relative accuracy asked of each quadrature: three digits beyond ``dps``."""
    return mpmath.mpf(10) ** (-(dps + 3))


def _degenerate(
    act: Activation, derivative: bool, h: Homogeneous | None, a11: Any, a22: Any, dps: int
) -> tuple[Any, Any]:
    """One or both variances zero: u (or v) is 0 almost surely."""
    f = pointwise(act, derivative)
    f0 = f(mpmath.mpf(0))
    var = a22 if a11 == 0 else a11
    if var == 0 or f0 == 0:
        return f0 * f0 if var == 0 else mpmath.mpf(0), mpmath.mpf(0)
    if h is not None:
        return f0 * half_moment(h, var), mpmath.mpf(0)
    kinks = [mpmath.mpf(k) for k in act.kinks]
    features = smooth_features(act, derivative)
    val, err = gauss_expect_1d(f, mpmath.sqrt(var), 0, kinks, _target(dps), features=features)
    if err > mpmath.mpf(10) ** (-(dps - 5)) * max(abs(val), mpmath.eps):
        raise ReferenceNotConverged(
            f"the mpmath reference of {_what(act, derivative)} with one variance 0 and the other "
            f"{mpmath.nstr(var, 17)} did not converge: error estimate {mpmath.nstr(err, 3)} for "
            f"E[sigma(u)] = {mpmath.nstr(val, 17)} (dps={dps})"
        )
    return f0 * val, abs(f0) * err


def _delta_dual(act: Activation, a11: Any, a22: Any, det: Any) -> tuple[Any, Any]:
    """E[sigma'(u) sigma'(v)] for sigma piecewise constant with one jump J at 0: J^2 p(0, 0)."""
    h = analysis(act, False)
    if h is None or h.ap != 0 or h.am != 0:
        raise ActivationError(
            f"the derivative of {act.name!r} is {act.derivative}, which contains a Dirac delta "
            "and is not a single jump at 0; no pointwise derivative exists, so "
            "E[sigma'(u) sigma'(v)] cannot be computed by quadrature"
        )
    jump = sympy_to_mpf(h.cp) - sympy_to_mpf(h.cm)
    if jump == 0:
        return mpmath.mpf(0), mpmath.mpf(0)
    if det == 0 or a11 == 0 or a22 == 0:
        raise InputError(
            f"E[sigma'(u) sigma'(v)] for {act.name!r} (sigma' = {jump} * delta(u)) is infinite "
            "when the covariance is singular (|rho| = 1 or a zero variance)"
        )
    return jump * jump / (2 * mpmath.pi * mpmath.sqrt(det)), mpmath.mpf(0)


# --------------------------------------------------------------------------- public: closed form
_CLOSED_FORM_CACHE: dict[tuple[Activation, bool], Callable[..., Any]] = {}


def _closed_form_function(act: Activation, derivative: bool) -> Callable[..., Any]:
    key = (act, derivative)
    if key not in _CLOSED_FORM_CACHE:
        from ntksym import dual as dual_module  # lazy: written alongside this module

        maps = dual_module.closed_form(act)
        expr = maps.ntk if derivative else maps.nngp
        symbols = (dual_module.S11, dual_module.S12, dual_module.S22)
        func = sp.lambdify(symbols, expr, modules="mpmath")
        _CLOSED_FORM_CACHE[key] = func
    return _CLOSED_FORM_CACHE[key]


def dual_closed_form(
    activation: ActivationLike,
    s11: Any,
    s12: Any,
    s22: Any,
    *,
    dps: int = 30,
    derivative: bool = False,
) -> Any:
    """Evaluate the closed-form dual kernel of :mod:`ntksym.dual` at ``dps`` digits.

    The SymPy expression ``closed_form(activation).nngp`` (or ``.ntk`` when
    ``derivative``) is lambdified to mpmath and evaluated at the exactly
    converted inputs with 15 guard digits.

    Args:
        activation: A registered name, a user expression or an Activation.
        s11: Variance of ``u``.
        s12: Covariance.
        s22: Variance of ``v``.
        dps: Decimal digits (15..1000).
        derivative: Evaluate the derivative map ``E[sigma'(u) sigma'(v)]``.

    Returns:
        The value as an ``mpf``.

    Raises:
        NoClosedFormError: No closed form is registered for the activation.
        InputError: Bad inputs, the closed form is singular at this point, or the map
            is infinite there (:func:`ntksym.dual.check_covariance`).
    """
    act = as_activation(activation)
    dps = check_dps(dps)
    func = _closed_form_function(act, derivative)
    with mp.workdps(dps + GUARD_DIGITS):
        a11, a12, a22, det = covariance(s11, s12, s22)
        check_covariance(act, a11, a12, a22)  # (past it the formula still gives numbers)
        try:
            with mp.workdps(mp.dps + _lost_digits(a11, a22, det)):
                value = func(a11, a12, a22)
        except (ZeroDivisionError, ValueError) as exc:
            raise InputError(
                f"the closed form for {act.name!r} cannot be evaluated at (s11, s12, s22) = "
                f"({s11!r}, {s12!r}, {s22!r}): {exc}"
            ) from None
        except (OverflowError, MemoryError):  # (mpmath's exp of an argument ~ 2^(1e12))
            raise InputError(_beyond_mpmath(act, a11, a12, a22)) from None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = mpmath.mpf(value)  # a constant closed form
        spurious = mpmath.eps * 16 * (max(abs(value.real), 1) if det == 0 else abs(value.real))
        if isinstance(value, mpmath.mpc) and abs(value.imag) <= spurious:
            value = value.real  # at det == 0: past a branch point by rounding (_lost_digits)
        if not isinstance(value, mpmath.mpf) or not mpmath.isfinite(value):
            raise InputError(
                f"the closed form for {act.name!r} is not a finite real number at "
                f"(s11, s12, s22) = ({s11!r}, {s12!r}, {s22!r}): {value}"
            )
    with mp.workdps(dps):
        return +value


def _beyond_mpmath(act: Activation, a11: Any, a12: Any, a22: Any) -> str:
    """The message for a map whose value no mpf can hold.

    (``exp`` of ``exp(1e12)``: mpmath raises MemoryError or OverflowError building its
    mantissa.)
    """
    at = ", ".join(mpmath.nstr(a, 5) for a in (a11, a12, a22))
    return (
        f"the dual map of {act.name!r} overflows at (s11, s12, s22) = ({at}): its value is "
        "beyond any number mpmath can hold; scale the inputs or the weights down"
    )


def _lost_digits(a11: Any, a22: Any, det: Any) -> int:
    """Extra digits for a closed form at a (nearly) singular covariance.

    Closed forms read the angle through ``acos(s12 / sqrt(s11 s22))`` or ``sqrt(s11 s22 -
    s12^2)``, whose absolute error near ``|rho| = 1`` is ``sqrt(eps)``, not ``eps``: with
    ``1 - rho^2 = det / (s11 s22)`` they lose half its digits. At a singular covariance
    (``det == 0``, an input paired with itself) that left the diagonal of the referee's
    recursion 1e-23 off at 30 digits, and the next determinant of a near-parallel pair,
    ``k11 k22 - k12^2`` (1e-19 of ``k11 k22``), 1e-4 relative, hence its NTK 5e-13 off at
    depth 20 (``Abs``, ``ABRelu``). The inputs are exact, so evaluating with the lost
    digits added (all of them at ``det == 0``, where ``rho`` is then +-1 to twice the
    working precision and an argument pushed past a branch point leaves only an
    imaginary part of the working precision's size) restores the working precision.
    """
    if det == 0:
        return mp.dps
    if a11 == 0 or a22 == 0:
        return 0
    lost = -mpmath.log10(det / (a11 * a22)) / 2
    return min(mp.dps, max(0, int(mpmath.ceil(lost)) + 1))


def _has_closed_form(act: Activation) -> bool:
    try:
        from ntksym import dual as dual_module
    except ImportError:
        return False
    try:
        return bool(dual_module.has_closed_form(act))
    except NTKSymError:
        return False


def dual(
    activation: ActivationLike,
    s11: Any,
    s12: Any,
    s22: Any,
    *,
    dps: int = 30,
    derivative: bool = False,
    method: str = "auto",
) -> Any:
    """Dual kernel ``E[sigma(u) sigma(v)]`` (or of ``sigma'``) at ``dps`` digits.

    Args:
        activation: A registered name, a user expression or an Activation.
        s11: Variance of ``u``.
        s12: Covariance.
        s22: Variance of ``v``.
        dps: Decimal digits (15..1000).
        derivative: Use ``sigma'``.
        method: ``"quadrature"`` (:func:`dual_quadrature`), ``"closed_form"``
            (:func:`dual_closed_form`) or ``"auto"``: the closed form when one
            exists and can be evaluated at this point, otherwise quadrature.

    Returns:
        The value as an ``mpf``.
    """
    method = check_method(method)
    act = as_activation(activation)
    if method == "closed_form":
        return dual_closed_form(act, s11, s12, s22, dps=dps, derivative=derivative)
    if method == "auto" and _has_closed_form(act):
        try:
            return dual_closed_form(act, s11, s12, s22, dps=dps, derivative=derivative)
        except (NoClosedFormError, InputError):
            pass  # quadrature below repeats the input checks with its own messages
    return dual_quadrature(act, s11, s12, s22, dps=dps, derivative=derivative)
