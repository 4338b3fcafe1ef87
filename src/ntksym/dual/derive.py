"""SymPy derivations of dual kernels (private helper of :mod:`ntksym.dual`).

Each function here *derives* a bivariate-Gaussian expectation with SymPy,
using only one-dimensional integrals and hand-written Gaussian rules; SymPy's
two-dimensional ``integrate`` and ``sympy.stats`` are never used (they time
out or return wrong values for these integrals). The rules are:

* :func:`isserlis_moment` -- E[u^j v^k] by counting Isserlis/Wick pairings.
* :func:`homogeneous` -- piecewise-homogeneous activations
  ``c_+ x^n`` (x > 0), ``c_- |x|^n`` sign-adjusted (x < 0), n = 0 or 1, by
  whitening (u, v) and integrating in polar coordinates over the four
  angular sectors cut out by the signs of u and v (Cho & Saul 2009).
* :func:`exp_quadratic_expectation` -- E[f(u) g(v)] for f, g finite sums of
  ``c u^j exp(alpha u - p u^2 / 2)`` by the Gaussian moment generating
  function with a quadratic term, differentiated in alpha and beta.
* :func:`price_integrate` -- Price's theorem: the nngp map is the integral in
  s12 of the derivative map, from s12 = 0 where u and v are independent.
* :func:`arcsine_ansatz_integrate` -- antiderivatives in s12 of expressions in
  ``sqrt(c - s12**2)`` and ``asin(s12/sqrt(c))`` by an ansatz with unknown
  coefficients, solved as a linear system and checked exactly.
* :func:`price_twice` -- Price's theorem applied twice, from the MGF form of
  sigma'' (GELU).

All results are expressions in the symbols ``s11, s12, s22`` (and, where
asked, ``det`` standing for ``s11*s22 - s12**2``).
"""

from __future__ import annotations

import itertools

import sympy as sp

from ntksym.activations import u

__all__ = [
    "S11",
    "S12",
    "S22",
    "DET",
    "isserlis_moment",
    "polynomial_expectation",
    "homogeneous",
    "exp_quadratic_terms",
    "exp_quadratic_expectation",
    "price_integrate",
    "ROOT",
    "ASIN",
    "gaussian_expectation_1d",
    "arcsine_ansatz_integrate",
    "arcsine_functions",
    "price_twice",
]

S11 = sp.Symbol("s11", positive=True)
S12 = sp.Symbol("s12", real=True)
S22 = sp.Symbol("s22", positive=True)
#: Stands for s11*s22 - s12**2 in forms meant for stable numerics.
DET = sp.Symbol("det", nonnegative=True)

_theta = sp.Symbol("theta", real=True)
_phi = sp.Symbol("phi", real=True)
_r = sp.Symbol("r", positive=True)


# --------------------------------------------------------------------------- Isserlis
def isserlis_moment(j: int, k: int) -> sp.Expr:
    """E[u^j v^k] for centred jointly Gaussian (u, v), by Isserlis' theorem.

    The moment is the sum over perfect matchings of j copies of u and k
    copies of v of the product of the paired covariances. A matching with m
    u-v pairs is counted by choosing the m paired u's and v's (C(j,m) C(k,m)),
    matching them (m!), and pairing the remaining u's among themselves
    ((j-m-1)!!) and the remaining v's among themselves ((k-m-1)!!).

    Args:
        j: Power of u (>= 0).
        k: Power of v (>= 0).

    Returns:
        A polynomial in S11, S12, S22.
    """
    total = sp.Integer(0)
    for m in range(min(j, k) + 1):
        if (j - m) % 2 or (k - m) % 2:
            continue
        count = (
            sp.binomial(j, m)
            * sp.binomial(k, m)
            * sp.factorial(m)
            * sp.factorial2(j - m - 1)
            * sp.factorial2(k - m - 1)
        )
        total += count * S12**m * S11 ** ((j - m) // 2) * S22 ** ((k - m) // 2)
    return total


def polynomial_expectation(f: sp.Expr, g: sp.Expr) -> sp.Expr:
    """E[f(u) g(v)] for polynomials f, g in :data:`u`, by Isserlis' theorem."""
    pf = sp.Poly(f, u)
    pg = sp.Poly(g, u)
    total = sp.Integer(0)
    for (j,), cf in pf.terms():
        for (k,), cg in pg.terms():
            total += cf * cg * isserlis_moment(j, k)
    return sp.expand(total)


# --------------------------------------------------------------------------- polar
def homogeneous(degree: int, c_pos: sp.Expr, c_neg: sp.Expr) -> sp.Expr:
    """E[sigma(u) sigma(v)] for a piecewise-homogeneous sigma, by polar integration.

    ``sigma(x) = c_pos * x**degree`` for x > 0 and ``c_neg * x**degree`` for
    x < 0 (so degree 1 is ``c_pos*max(0,x) + c_neg*min(0,x)`` and degree 0 is
    ``c_pos*H(x) + c_neg*H(-x)``). Whitening gives
    ``u = sqrt(s11) r cos(phi)``, ``v = sqrt(s22) r cos(phi - theta)`` with
    ``cos(theta) = rho``; the radial integral is done once, and the angular
    one over the four sectors on which u and v keep their signs.

    Reference: Y. Cho and L. K. Saul, "Kernel methods for deep learning",
    NIPS 2009 (arc-cosine kernels).

    Args:
        degree: 0 or 1.
        c_pos: Coefficient on the positive half-line.
        c_neg: Coefficient on the negative half-line.

    Returns:
        An expression in S11, S12, S22 (theta eliminated through acos).
    """
    if degree not in (0, 1):
        raise ValueError("degree must be 0 or 1")
    n = degree
    radial = sp.integrate(_r ** (2 * n + 1) * sp.exp(-(_r**2) / 2), (_r, 0, sp.oo)) / (2 * sp.pi)
    shape = (sp.cos(_phi) * sp.cos(_phi - _theta)) ** n
    h = sp.pi / 2
    sectors = [  # (phi range, sign of u, sign of v) for theta in [0, pi]
        ((-h, _theta - h), c_pos, c_neg),
        ((_theta - h, h), c_pos, c_pos),
        ((h, _theta + h), c_neg, c_pos),
        ((_theta + h, 3 * h), c_neg, c_neg),
    ]
    angular = sp.Integer(0)
    for (lo, hi), cu, cv in sectors:
        angular += cu * cv * sp.integrate(sp.expand_trig(shape), (_phi, lo, hi))
    res = sp.expand(sp.expand_trig(radial * (S11 * S22) ** sp.Rational(n, 2) * angular))
    root = sp.sqrt(S11) * sp.sqrt(S22)
    res = res.subs({sp.sin(_theta): sp.sqrt(S11 * S22 - S12**2) / root, sp.cos(_theta): S12 / root})
    res = res.subs(_theta, sp.acos(S12 / root))
    if res.has(_theta, _phi):
        raise RuntimeError("polar integration left an angle in the result")
    return sp.simplify(res)


# --------------------------------------------------------------------------- MGF
def exp_quadratic_terms(expr: sp.Expr) -> list[tuple[sp.Expr, int, sp.Expr, sp.Expr]] | None:
    """Split ``expr`` into terms ``c * u**j * exp(alpha*u - p*u**2/2)``.

    Trigonometric and hyperbolic functions are rewritten as exponentials
    first. Returns ``[(c, j, alpha, p), ...]`` or ``None`` when ``expr`` is
    not of that form or a term grows like exp(+u^2) (``p`` must be >= 0).
    """
    e = sp.expand(sp.powsimp(sp.expand(expr.rewrite(sp.exp))))
    out: list[tuple[sp.Expr, int, sp.Expr, sp.Expr]] = []
    for term in sp.Add.make_args(e):
        coeff, dep = term.as_independent(u, as_Add=False)
        j = 0
        exponent = sp.Integer(0)
        for f in sp.Mul.make_args(dep):
            if f == 1:
                continue
            if f == u:
                j += 1
            elif f.is_Pow and f.base == u and f.exp.is_Integer and f.exp > 0:
                j += int(f.exp)
            elif isinstance(f, sp.exp):
                exponent += f.args[0]
            elif f.is_Pow and isinstance(f.base, sp.exp) and f.exp.is_number:
                exponent += f.base.args[0] * f.exp
            else:
                return None
        exponent = sp.expand(exponent)
        if exponent.has(u):
            if not exponent.is_polynomial(u):
                return None
            poly = sp.Poly(exponent, u)
            if poly.degree() > 2:
                return None
            c2, c1, c0 = (poly.coeff_monomial(u**i) for i in (2, 1, 0))
        else:
            c2, c1, c0 = sp.Integer(0), sp.Integer(0), exponent
        p = -2 * c2
        if not (p.is_real and p >= 0):
            return None
        out.append((coeff * sp.exp(c0), j, c1, p))
    return out


def _mgf(alpha: sp.Expr, beta: sp.Expr, p: sp.Expr, q: sp.Expr) -> sp.Expr:
    """E[exp(alpha u + beta v - (p u^2 + q v^2)/2)], in S11, S12, S22 and DET.

    With A = diag(p, q): det(I + Sigma A)^(-1/2) * exp(b' (I + Sigma A)^(-1) Sigma b / 2),
    where (I + Sigma A)^(-1) Sigma = [[s11 + q det, s12], [s12, s22 + p det]] / Delta
    and Delta = det(I + Sigma A) = 1 + p s11 + q s22 + p q det.
    """
    delta = 1 + p * S11 + q * S22 + p * q * DET
    quad = alpha**2 * (S11 + q * DET) + 2 * alpha * beta * S12 + beta**2 * (S22 + p * DET)
    return sp.exp(quad / (2 * delta)) / sp.sqrt(delta)


def exp_quadratic_expectation(f: sp.Expr, g: sp.Expr, *, with_det: bool = False) -> sp.Expr | None:
    """E[f(u) g(v)] for f, g sums of ``c u^j exp(alpha u - p u^2/2)`` (Gaussian MGF).

    Powers of u and v are produced by differentiating the moment generating
    function in alpha and beta. Returns ``None`` if f or g is not of this form.

    Args:
        f: Expression in :data:`u` for the first factor.
        g: Expression in :data:`u` for the second factor (evaluated at v).
        with_det: Keep the symbol :data:`DET` for s11*s22 - s12**2 (for
            stable numerics) instead of substituting it.
    """
    tf, tg = exp_quadratic_terms(f), exp_quadratic_terms(g)
    if tf is None or tg is None:
        return None
    a, b = sp.symbols("alpha beta")
    total = sp.Integer(0)
    for (cf, j, af, pf), (cg, k, ag, pg) in itertools.product(tf, tg):
        m = _mgf(a, b, pf, pg)
        if j or k:
            m = sp.diff(m, a, j, b, k) if j and k else sp.diff(m, a, j) if j else sp.diff(m, b, k)
        total += cf * cg * m.subs({a: af, b: ag})
    total = _tidy(total)
    if not with_det:
        total = _tidy(total.subs(DET, S11 * S22 - S12**2))
    return total


def _tidy(expr: sp.Expr) -> sp.Expr:
    """Bring a sum of complex exponentials back to real functions where possible."""
    e = sp.powsimp(sp.expand(expr))
    if e.has(sp.I):
        e = sp.expand(sp.expand_complex(e))
        e = e.rewrite(sp.cosh)
    return sp.simplify(sp.factor_terms(e))


# --------------------------------------------------------------------------- Price
def price_integrate(derivative_map: sp.Expr, at_zero: sp.Expr) -> sp.Expr:
    """Integrate a derivative map over s12 from 0 (Price's theorem).

    d/ds12 E[sigma(u) sigma(v)] = E[sigma'(u) sigma'(v)] (R. Price, "A useful
    theorem for nonlinear devices having Gaussian inputs", IRE Trans. Inf.
    Theory 1958), and at s12 = 0 the expectation factorises into
    ``at_zero = E[sigma(u)] E[sigma(v)]``.

    Args:
        derivative_map: E[sigma' sigma'] in S11, S12, S22.
        at_zero: The value of the nngp map at s12 = 0.

    Returns:
        The nngp map.
    """
    t = sp.Symbol("t", real=True)
    integrand = derivative_map.subs(S12, t)
    res = sp.integrate(integrand, (t, 0, S12), conds="none")
    if isinstance(res, sp.Integral) or res.has(sp.Integral):
        raise RuntimeError("SymPy could not integrate the derivative map over s12")
    return sp.simplify(at_zero + res)


# --------------------------------------------------------------------------- ansatz
#: Stands for sqrt(c - s12**2) in :func:`arcsine_ansatz_integrate`.
ROOT = sp.Symbol("root", positive=True)
#: Stands for asin(s12 / sqrt(c)) in :func:`arcsine_ansatz_integrate`.
ASIN = sp.Symbol("asin", real=True)

_VAR = sp.Symbol("s", positive=True)


def gaussian_expectation_1d(f: sp.Expr, variance: sp.Expr) -> sp.Expr:
    """E[f(u)] for u ~ N(0, variance), by SymPy's one-dimensional ``integrate``.

    Args:
        f: Expression in :data:`u`.
        variance: A positive symbol or expression.

    Raises:
        RuntimeError: SymPy left the integral unevaluated.
    """
    dens = sp.exp(-(u**2) / (2 * _VAR)) / sp.sqrt(2 * sp.pi * _VAR)
    res = sp.integrate(sp.expand(f * dens), (u, -sp.oo, sp.oo), conds="none")
    if isinstance(res, sp.Integral) or res.has(sp.Integral):
        raise RuntimeError(f"SymPy could not integrate E[{f}] over the Gaussian")
    return sp.simplify(res.subs(_VAR, variance))


def _d_ds12(expr: sp.Expr) -> sp.Expr:
    """d/ds12 with ROOT = sqrt(c - s12^2) and ASIN = asin(s12/sqrt(c)) as functions of s12.

    d ROOT/ds12 = -s12/ROOT and d ASIN/ds12 = 1/ROOT, whatever c is.
    """
    return sp.diff(expr, S12) + (sp.diff(expr, ASIN) - S12 * sp.diff(expr, ROOT)) / ROOT


def _reduced_numerator(expr: sp.Expr, c: sp.Expr) -> sp.Expr:
    """Numerator of ``expr`` with ROOT**2 replaced by c - s12**2 (degree <= 1 in ROOT)."""
    num, _ = sp.fraction(sp.together(expr))
    num = sp.expand(num)
    if num.has(ROOT):
        rel = sp.Poly(ROOT**2 - (c - S12**2), ROOT)
        num = sp.expand(sp.Poly(num, ROOT).rem(rel).as_expr())
    return num


def arcsine_ansatz_integrate(
    integrand: sp.Expr,
    c: sp.Expr,
    *,
    root_powers: tuple[int, ...],
    asin_degree: int = 1,
    poly_degree: int = 2,
) -> sp.Expr:
    """An antiderivative in s12 by an ansatz with unknown coefficients.

    The integrand is an expression in :data:`S12`, :data:`ROOT` (standing for
    ``sqrt(c - s12**2)``) and :data:`ASIN` (``asin(s12/sqrt(c))``), with c free
    of s12. The ansatz is

        F = sum_{j in {0,1}, k in root_powers} a_jk s12^j ROOT^k
            + sum_{j <= asin_degree} b_j s12^j ASIN + sum_{1 <= j <= poly_degree} p_j s12^j

    (``s12^2 = c - ROOT^2`` makes higher powers of s12 next to ROOT redundant).
    dF/ds12 - integrand, brought over one denominator with ROOT^2 reduced, is
    a polynomial in s12, ROOT, ASIN whose coefficients are linear in the
    unknowns; they must all vanish. The solution is then checked exactly: the
    reduced numerator of dF/ds12 - integrand must expand to 0.

    Args:
        integrand: Expression in S12, ROOT, ASIN and symbols free of s12.
        c: The constant under the root.
        root_powers: Powers k of ROOT in the ansatz (odd integers).
        asin_degree: Highest power of s12 multiplying ASIN.
        poly_degree: Highest power of s12 in the polynomial part.

    Returns:
        F in S12, ROOT, ASIN, with F's constant of integration left to the caller.

    Raises:
        RuntimeError: The ansatz has no solution, or the check fails.
    """
    basis = [S12**j * ROOT**k for j in (0, 1) for k in root_powers]
    basis += [S12**j * ASIN for j in range(asin_degree + 1)]
    basis += [S12**j for j in range(1, poly_degree + 1)]
    coeffs = sp.symbols(f"a0:{len(basis)}")
    ansatz = sum((a * b for a, b in zip(coeffs, basis, strict=True)), sp.Integer(0))
    num = _reduced_numerator(_d_ds12(ansatz) - integrand, c)
    equations = sp.Poly(num, S12, ROOT, ASIN).coeffs()
    solutions = sp.linsolve(equations, coeffs)
    if not solutions:
        raise RuntimeError("the arcsine ansatz has no solution for this integrand")
    (solution,) = solutions
    free = {a: 0 for a in coeffs}  # an underdetermined part only shifts the constant
    values = {a: sp.factor(v.subs(free)) for a, v in zip(coeffs, solution, strict=True)}
    result = ansatz.subs(values)
    if _reduced_numerator(_d_ds12(result) - integrand, c) != 0:
        raise RuntimeError("the arcsine ansatz solution does not differentiate back")
    return result


def arcsine_functions(expr: sp.Expr, c: sp.Expr) -> sp.Expr:
    """Replace ROOT and ASIN by ``sqrt(c - s12**2)`` and ``asin(s12/sqrt(c))``."""
    return expr.subs({ROOT: sp.sqrt(c - S12**2), ASIN: sp.asin(S12 / sp.sqrt(c))})


def _at_zero(expr: sp.Expr, c: sp.Expr) -> sp.Expr:
    """An expression in S12, ROOT, ASIN at s12 = 0 (ROOT = sqrt(c), ASIN = 0)."""
    return expr.subs({ROOT: sp.sqrt(c), ASIN: 0}).subs(S12, 0)


def price_twice(
    sigma: sp.Expr, first: sp.Expr, second: sp.Expr
) -> tuple[sp.Expr, sp.Expr, sp.Expr] | None:
    """Both dual maps from sigma'' by Price's theorem applied twice.

    Price's theorem (d/ds12 E[f(u) g(v)] = E[f'(u) g'(v)]) gives

        E[sigma' sigma'](s12) = E[sigma'(u)] E[sigma'(v)] + int_0^s12 E[sigma'' sigma''] dt,
        E[sigma sigma](s12) = E[sigma(u)] E[sigma(v)] + int_0^s12 E[sigma' sigma'] dt,

    where the values at s12 = 0 factorise (u, v independent) into 1-D Gaussian
    expectations. This works when sigma'' is a sum of ``u**j exp(-u**2/2)``
    terms (the Gaussian MGF gives E[sigma'' sigma''] as a rational function of
    s12 and ``sqrt(c - s12**2)`` with c = (1+s11)(1+s22)); both integrals are
    done by :func:`arcsine_ansatz_integrate`.

    Args:
        sigma: The activation in :data:`u`.
        first: sigma'.
        second: sigma''.

    Returns:
        ``(nngp, ntk, c)`` in S11, S12, S22, ROOT, ASIN, or None when sigma''
        is not of that form.
    """
    terms = exp_quadratic_terms(second)
    if not terms or any(alpha != 0 or p != 1 for _, _, alpha, p in terms):
        return None
    c = (1 + S11) * (1 + S22)
    inner = exp_quadratic_expectation(second, second, with_det=True)
    if inner is None:
        return None
    # With p = q = 1 the MGF's determinant is 1 + s11 + s22 + det = c - s12**2 = ROOT**2.
    inner = sp.simplify(inner.subs(DET, ROOT**2 - (c - S11 * S22)))
    if not inner.is_rational_function(S12, ROOT):
        return None
    deepest = max(sp.Poly(sp.denom(inner), ROOT).degree(), 1)
    odd = tuple(range(-deepest + 2, 2, 2))
    m1, m0 = gaussian_expectation_1d(first, _VAR), gaussian_expectation_1d(sigma, _VAR)
    e1 = {var: m1.subs(_VAR, var) for var in (S11, S22)}
    e0 = {var: m0.subs(_VAR, var) for var in (S11, S22)}
    f1 = arcsine_ansatz_integrate(inner, c, root_powers=odd, asin_degree=0, poly_degree=0)
    ntk = e1[S11] * e1[S22] + f1 - _at_zero(f1, c)
    f2 = arcsine_ansatz_integrate(ntk, c, root_powers=odd, asin_degree=1, poly_degree=2)
    nngp = e0[S11] * e0[S22] + f2 - _at_zero(f2, c)
    return _collected(nngp), _collected(ntk), c


def _collected(expr: sp.Expr) -> sp.Expr:
    """A sum of simple terms: expanded, collected in ASIN and ROOT, coefficients factored."""
    return sp.collect(sp.expand(sp.together(expr)), [ASIN, ROOT], sp.factor)
