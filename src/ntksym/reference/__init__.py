"""High-precision mpmath references for the dual kernels and the NTK recursion.

Everything here is computed in mpmath at a chosen number of decimal digits
(``dps``) and never relies on a closed-form dual kernel unless asked to
(``method="closed_form"``, or ``"auto"`` when one exists). It is the referee
against which the closed forms of :mod:`ntksym.dual` and the generated float64
kernels are checked.

The dual kernel ``E[sigma(u) sigma(v)]`` for ``(u, v) ~ N(0, [[s11, s12], [s12, s22]])``
is computed by one of two quadratures, both written from the definition:

* **Piecewise positively homogeneous activations** (ReLU, leaky ReLU, abs, step,
  sign, identity, monomials, ``max(0,u) + 0.1*u``, ...), i.e. ``sigma(t) = c+ t^a+``
  and ``sigma(-t) = c- t^a-`` for ``t > 0``. After whitening,
  ``u = sqrt(s11) r cos(phi)`` and ``v = sqrt(s22) r cos(phi - theta)`` with
  ``theta = atan2(sqrt(det), s12)`` the angle between the two inputs. The
  radial integral is done exactly,
  ``int_0^inf r^(a+b+1) exp(-r^2/2) dr = 2^((a+b)/2) Gamma((a+b)/2 + 1)``,
  and the angular integral is split at the four angles where ``u`` or ``v``
  changes sign; each of the four sectors is rewritten as
  ``int_0^g sin(p)^a sin(g - p)^b dp`` with ``g = theta`` or ``pi - theta``
  (each computed without cancellation), so the result stays accurate as
  ``|rho| -> 1``.
* **Everything else** (erf, tanh, GELU, user expressions, ...): iterated 1-D
  tanh-sinh quadrature, ``E = E_z1[sigma(u) E_z2[sigma(v)]]`` with
  ``u = sqrt(s11) z1`` and ``v = (s12/sqrt(s11)) z1 + sqrt(det/s11) z2``. Both
  integrals are split where an argument crosses a kink of ``sigma`` or zero.
  The inner quadrature's own error estimate is propagated through the outer one.

Derivative kernels ``E[sigma'(u) sigma'(v)]`` use the same two routes with
``sigma'``. Step-like activations (piecewise constant with a jump ``J`` at 0,
e.g. step and sign) have ``sigma' = J delta(u)``; for them the value is
``J^2 p(0, 0)`` with ``p(0, 0) = 1 / (2 pi sqrt(det))`` the Gaussian density at
the origin, which is the definition of the expectation, not a derived formula.

Split points come from the one kink finder of the package
(:func:`ntksym.activations.expr.kinks_of`, nested Max/Min/Abs/... solved branch by branch)
and from :mod:`ntksym.reference.features`: around a steep smooth term (``erf(u)`` at
variance 1e4 is a step 0.01 standard deviations wide) and around the smoothed image of a kink
of ``sigma(v)`` in the outer variable (a step ``sqrt(1 - rho^2)`` wide as ``|rho| -> 1``) the
pieces are graded geometrically, so every Gauss-Legendre piece sees a function smooth on its
own length. Every integral carries an error estimate (the difference of two levels of its
rule, never a single level); when the estimate exceeds the target, :class:`ReferenceNotConverged`
(a :class:`QuadratureError`) names the expression, the covariance and the estimate instead of
returning a number.

The determinant ``det = s11 s22 - s12^2`` is always formed exactly from the
(converted) inputs, so ``1 - rho^2 = det / (s11 s22)`` keeps its digits for
nearly parallel inputs.
"""

from ntksym.reference.convert import QuadratureError, ReferenceNotConverged
from ntksym.reference.duals import dual, dual_closed_form, dual_quadrature
from ntksym.reference.recursion import Recursion, kernel, recursion

__all__ = [
    "QuadratureError",
    "Recursion",
    "ReferenceNotConverged",
    "dual",
    "dual_closed_form",
    "dual_quadrature",
    "kernel",
    "recursion",
]
