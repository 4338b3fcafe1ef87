"""Training dynamics of the linearised network: the NTK during training (beyond the seed's §4).

Jacot, Gabriel & Hongler (2018, §4-5) and Lee et al. (2019, "Wide Neural Networks of Any
Depth Evolve as Linear Models Under Gradient Descent", eq. (3)-(9)): replace the network by
its first-order Taylor model around the initial parameters, train it by gradient flow on the
squared loss, and the outputs obey a linear ODE driven by the NTK, solved in closed form.

Each step's ``derive`` redoes the step in SymPy and checks it twice, independently:

* symbolically, on explicit small instances (Jacobians with symbolic entries of several
  shapes; a 2 x 2 NTK written as ``V diag(lambda) V^T`` with a rational rotation ``V``;
  the exponential's power series with a non-commutative ``Theta`` for any size);
* numerically, with a random positive-definite kernel: a fine fourth-order Runge-Kutta
  integration of the ODE against the closed form (eigendecomposition), the eigendecomposition
  exponential against a scaling-and-squaring Taylor series, and the closed form against
  :func:`ntksym.predict.gradient_descent_mse` (mean and covariance).

The step returns its :class:`~ntksym.derive.Verdict` (``verified`` only if every check
passes, ``failed`` naming the first that does not).
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable
from typing import Any

import numpy as np
import sympy as sp

from ntksym.extend import Derivation, Step, Tex, Text, Verdict, text
from ntksym.predict import Gaussian, gradient_descent_mse

#: The kernel as the Jacobian's Gram matrix, a formula of the notes.
JJT = Tex(r"\Theta = J J^{\mathsf T}", "Theta = J J^T")

t, eta = sp.symbols("t eta", positive=True)
Th, y, f0, J, Jt, th, th0, K = sp.symbols("Theta y f_0 J J^T theta theta_0 K", commutative=False)
fX = sp.Function("f", commutative=False)
xs, Xs = sp.symbols("x X")
tx = sp.Symbol(r"\Theta(x,X)", commutative=False)
f0x = sp.Function("f_0", commutative=False)(xs)
Id = sp.Symbol("I", commutative=False)
A = sp.Symbol("A_t", commutative=False)
At = sp.Symbol("A_t^T", commutative=False)
Kxx = sp.Symbol("K_{xx}", commutative=False)
KxX = sp.Symbol("K_{xX}", commutative=False)
KXx = sp.Symbol("K_{Xx}", commutative=False)
Ith = Th**-1
E = sp.exp(-eta * Th * t)
ft = fX(t)


def _ok(checks: list[tuple[str, bool]], method: str) -> Verdict:
    for name, good in checks:
        if not good:
            return Verdict("failed", method, f"check failed: {name}")
    return Verdict("verified", method, "; ".join(name for name, _ in checks))


def _zero(m: sp.Matrix) -> bool:
    return all(sp.cancel(sp.expand(e)) == 0 for e in m)


# ---------------------------------------------------------------- symbolic small instances
def _jacobian_model(n: int, p: int) -> tuple[sp.Matrix, sp.Matrix, sp.Matrix, sp.Matrix]:
    Jm = sp.Matrix(n, p, lambda a, q: sp.Symbol(f"j_{a}{q}", real=True))
    th0v = sp.Matrix(p, 1, lambda q, _: sp.Symbol(f"theta0_{q}", real=True))
    f0v = sp.Matrix(n, 1, lambda a, _: sp.Symbol(f"f0_{a}", real=True))
    yv = sp.Matrix(n, 1, lambda a, _: sp.Symbol(f"y_{a}", real=True))
    return Jm, th0v, f0v, yv


SIZES = ((2, 3), (3, 2), (1, 4))


def _rotation_kernel() -> tuple[sp.Matrix, sp.Matrix, sp.Matrix, tuple[sp.Symbol, sp.Symbol]]:
    """A symbolic 2 x 2 NTK ``V diag(l1, l2) V^T``, V a rational rotation, and its exponential."""
    m, l1, l2 = sp.symbols("m lambda_1 lambda_2", positive=True)
    c, s = (1 - m**2) / (1 + m**2), 2 * m / (1 + m**2)
    V = sp.Matrix([[c, -s], [s, c]])
    theta = V * sp.diag(l1, l2) * V.T
    expo = V * sp.diag(sp.exp(-eta * l1 * t), sp.exp(-eta * l2 * t)) * V.T
    inv = V * sp.diag(1 / l1, 1 / l2) * V.T
    return theta, expo, inv, (l1, l2)


# ---------------------------------------------------------------- numeric instances
def _random_problem(
    n_train: int = 6, n_test: int = 3, seed: int = 7
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n_train + n_test, n_train + n_test + 2))
    ntk = Z @ Z.T / Z.shape[1] + 0.05 * np.eye(n_train + n_test)
    W = rng.standard_normal((n_train + n_test, n_train + n_test + 3))
    nngp = W @ W.T / W.shape[1] + 0.02 * np.eye(n_train + n_test)
    return ntk, nngp, rng.standard_normal(n_train), rng.standard_normal(n_train + n_test)


def _expm_taylor(M: np.ndarray) -> np.ndarray:
    """``exp(M)`` by scaling and squaring a 30-term Taylor series (independent of eigh)."""
    s = max(0, int(np.ceil(np.log2(max(float(np.linalg.norm(M, 1)), 1e-300)))) + 1)
    X = M / 2.0**s
    out, term = np.eye(len(M)), np.eye(len(M))
    for k in range(1, 30):
        term = term @ X / k
        out = out + term
    for _ in range(s):
        out = out @ out
    return out


def _rk4(
    rhs: Callable[[np.ndarray], np.ndarray], x0: np.ndarray, T: float, steps: int
) -> np.ndarray:
    h, x = T / steps, x0.copy()
    for _ in range(steps):
        k1 = rhs(x)
        k2 = rhs(x + h / 2 * k1)
        k3 = rhs(x + h / 2 * k2)
        k4 = rhs(x + h * k3)
        x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return x


def _closed_form(theta: np.ndarray, lr: float, T: float) -> np.ndarray:
    lam, V = np.linalg.eigh(theta)
    return V @ np.diag(np.exp(-lr * lam * T)) @ V.T


_Pair = namedtuple("_Pair", "nngp ntk")


def _lookup(ntk: np.ndarray, nngp: np.ndarray) -> Callable[..., _Pair]:
    """A kernel callable on index inputs (shape (n, 1)) for :mod:`ntksym.predict`."""

    def kern(X1: Any, X2: Any = None, get: Any = ("nngp", "ntk")) -> _Pair:
        i = np.asarray(X1)[:, 0].astype(int)
        j = i if X2 is None else np.asarray(X2)[:, 0].astype(int)
        return _Pair(nngp[np.ix_(i, j)], ntk[np.ix_(i, j)])

    return kern


# ---------------------------------------------------------------- (1) the linearised model
P1 = sp.Eq(sp.Function("f^{lin}", commutative=False)(th), f0 + J * (th - th0), evaluate=False)

# ---------------------------------------------------------------- (2) gradient flow
P2 = sp.Eq(
    sp.Derivative(sp.Function("theta", commutative=False)(t), t, evaluate=False),
    -eta * Jt * (ft - y),
    evaluate=False,
)


def d2(env: dict) -> Verdict:
    checks = []
    for n, p in SIZES:
        Jm, th0v, f0v, yv = _jacobian_model(n, p)
        thv = sp.Matrix(p, 1, lambda q, _: sp.Symbol(f"theta_{q}", real=True))
        flin = f0v + Jm * (thv - th0v)
        loss = sp.Rational(1, 2) * sum((flin[a] - yv[a]) ** 2 for a in range(n))
        grad = sp.Matrix([sp.diff(loss, thv[q]) for q in range(p)])
        checks.append(
            (
                f"grad 1/2||f_lin - y||^2 = J^T (f_lin - y) at (N, P) = ({n}, {p})",
                _zero(grad - Jm.T * (flin - yv)),
            )
        )
    return _ok(checks, "exact-finite-width")


# ---------------------------------------------------------------- (3) the ODE of the outputs
P3 = sp.Eq(sp.Derivative(ft, t, evaluate=False), -eta * Th * (ft - y), evaluate=False)


def d3(env: dict) -> Verdict:
    checks = []
    for n, p in SIZES:
        Jm, th0v, f0v, yv = _jacobian_model(n, p)
        thf = sp.Matrix(p, 1, lambda q, _: sp.Function(f"theta_{q}")(t))
        flin = f0v + Jm * (thf - th0v)
        dflin = flin.diff(t)
        flow = -eta * Jm.T * (flin - yv)  # step (2)
        dflin = dflin.subs({thf[q].diff(t): flow[q] for q in range(p)})
        checks.append(
            (
                f"d f_lin/dt = -eta J J^T (f_lin - y) at (N, P) = ({n}, {p})",
                _zero(dflin + eta * (Jm * Jm.T) * (flin - yv)),
            )
        )
    return _ok(checks, "exact-finite-width")


# ---------------------------------------------------------------- (4) the closed form
P4 = sp.Eq(ft, y + E * (f0 - y), evaluate=False)


def d4(env: dict) -> Verdict:
    checks = []
    # any size: the exponential series S_K satisfies dS_K/dt = -eta Theta S_{K-1}
    series = [
        sum(((-eta * t) ** k / sp.factorial(k)) * Th**k for k in range(kk + 1)) for kk in range(9)
    ]
    checks.append(
        (
            "d/dt sum_k (-eta t Theta)^k/k! = -eta Theta sum_k ... (series, any N)",
            sp.expand(sp.diff(series[8], t) + eta * Th * series[7]) == 0,
        )
    )
    theta, expo, _, _ = _rotation_kernel()
    f0v = sp.Matrix(sp.symbols("f0_1 f0_2", real=True))
    yv = sp.Matrix(sp.symbols("y_1 y_2", real=True))
    sol = yv + expo * (f0v - yv)
    checks.append(
        (
            "ODE df/dt = -eta Theta (f - y), 2 x 2 Theta = V diag(lambda) V^T",
            _zero(sol.diff(t) + eta * theta * (sol - yv)),
        )
    )
    checks.append(("initial condition f_0", _zero(sol.subs(t, 0) - f0v)))
    ntk, _, yn, f0n = _random_problem()
    n, lr, T = len(yn), 0.7, 3.0
    th_n = ntk[:n, :n]
    exact = yn + _closed_form(th_n, lr, T) @ (f0n[:n] - yn)
    ode = _rk4(lambda f: -lr * th_n @ (f - yn), f0n[:n], T, 2000)
    err = float(np.max(np.abs(ode - exact)))
    checks.append(
        (f"RK4 (2000 steps) vs closed form, random 6 x 6 PSD Theta: {err:.1e}", err < 1e-10)
    )
    ref = _expm_taylor(-lr * T * th_n)
    err2 = float(np.max(np.abs(ref - _closed_form(th_n, lr, T))))
    checks.append((f"eigh exponential vs Taylor scaling-and-squaring: {err2:.1e}", err2 < 1e-12))
    return _ok(checks, "symbolic+numeric")


# ---------------------------------------------------------------- (5) test points
P5 = sp.Eq(
    sp.Function("f", commutative=False)(sp.Symbol("x"), t),
    f0x + tx * Ith * (Id - E) * (y - f0),
    evaluate=False,
)


def d5(env: dict) -> Verdict:
    checks = []
    theta, expo, inv, _ = _rotation_kernel()
    p, q = sp.symbols("p q", real=True)
    row = sp.Matrix([[p, q]])
    f0v = sp.Matrix(sp.symbols("f0_1 f0_2", real=True))
    yv = sp.Matrix(sp.symbols("y_1 y_2", real=True))
    a = sp.Symbol("f0_x", real=True)
    fx = sp.Matrix([[a]]) + row * inv * (sp.eye(2) - expo) * (yv - f0v)
    ftrain = yv + expo * (f0v - yv)  # step (4)
    checks.append(
        (
            "d f_t(x)/dt = -eta Theta(x, X) (f_t(X) - y) (2 x 2 instance)",
            _zero(fx.diff(t) + eta * row * (ftrain - yv)),
        )
    )
    checks.append(("f_t(x) at t = 0 is f_0(x)", _zero(fx.subs(t, 0) - sp.Matrix([[a]]))))
    ntk, nngp, yn, f0n = _random_problem()
    n, lr, T = len(yn), 0.7, 3.0

    def rhs(f: np.ndarray) -> np.ndarray:
        return -lr * ntk[:, :n] @ (f[:n] - yn)

    ode = _rk4(rhs, f0n, T, 2000)
    idx = np.arange(len(f0n), dtype=float)[:, None]
    pred = gradient_descent_mse(_lookup(ntk, nngp), idx[:n], yn - f0n[:n], lr)
    closed = f0n + pred(idx, T)
    err = float(np.max(np.abs(ode - closed)))
    checks.append(
        (f"RK4 on train + test outputs vs ntksym.predict closed form: {err:.1e}", err < 1e-10)
    )
    return _ok(checks, "symbolic+numeric")


# ---------------------------------------------------------------- (6) mean and covariance
P6 = sp.Tuple(
    sp.Eq(
        sp.Function("E", commutative=False)(sp.Function("f", commutative=False)(sp.Symbol("x"), t)),
        tx * Ith * (Id - E) * y,
        evaluate=False,
    ),
    sp.Eq(
        sp.Function("Cov", commutative=False)(sp.Symbol("x"), sp.Symbol("x'")),
        Kxx + At * K * A - (At * KXx + KxX * A),
        evaluate=False,
    ),
)


def d6(env: dict) -> Verdict:
    checks = []
    theta, expo, inv, _ = _rotation_kernel()
    p, q = sp.symbols("p q", real=True)
    f0v = sp.Matrix(sp.symbols("f0_1 f0_2", real=True))
    yv = sp.Matrix(sp.symbols("y_1 y_2", real=True))
    a = sp.Symbol("f0_x", real=True)
    fx = sp.Matrix([[a]]) + sp.Matrix([[p, q]]) * inv * (sp.eye(2) - expo) * (yv - f0v)
    mean = fx.subs({a: 0, f0v[0]: 0, f0v[1]: 0})  # E f_0 = 0 and f_t is affine in f_0
    checks.append(
        (
            "E f_t(x) = Theta(x,X) Theta^-1 (I - exp(-eta Theta t)) y (linearity)",
            _zero(mean - sp.Matrix([[p, q]]) * inv * (sp.eye(2) - expo) * yv),
        )
    )
    ntk, nngp, yn, _ = _random_problem()
    n, lr = len(yn), 0.7
    m = ntk.shape[0] - n
    idx = np.arange(n + m, dtype=float)[:, None]
    pred = gradient_descent_mse(_lookup(ntk, nngp), idx[:n], yn, lr)
    worst = 0.0
    for T in (0.0, 0.3, 3.0, np.inf):
        lam, V = np.linalg.eigh(ntk[:n, :n])
        h = 1 / lam if np.isinf(T) else -np.expm1(-lr * lam * T) / lam
        At_ = V @ np.diag(h) @ V.T @ ntk[:n, n:]  # (n, m)
        # f_t(x) = mu + f_0(x) - A_t^T f_0(X): a linear map L of the Gaussian f_0 ~ N(0, K)
        Lmap = np.hstack([-At_.T, np.eye(m)])
        cov = Lmap @ nngp @ Lmap.T
        g = pred(idx[n:], T, compute_cov=True)
        if not isinstance(g, Gaussian):  # compute_cov=True promises one
            raise TypeError(f"predict_fn(compute_cov=True) returned {type(g).__name__}")
        worst = max(
            worst,
            float(np.max(np.abs(g.covariance - cov))),
            float(np.max(np.abs(g.mean - ntk[n:, :n] @ V @ (h * (V.T @ yn))))),
        )
    checks.append(
        (
            f"covariance L K L^T of the linear map f_0 -> f_t vs ntksym.predict, "
            f"t in (0, 0.3, 3, inf): {worst:.1e}",
            worst < 1e-12,
        )
    )
    return _ok(checks, "symbolic+numeric")


# ---------------------------------------------------------------- (7) t -> infinity
P7 = sp.Tuple(
    sp.Eq(
        sp.Function("f", commutative=False)(sp.Symbol("x"), sp.oo),
        f0x + tx * Ith * (y - f0),
        evaluate=False,
    ),
    sp.Eq(fX(sp.oo), y, evaluate=False),
)


def d7(env: dict) -> Verdict:
    theta, expo, inv, (l1, l2) = _rotation_kernel()
    atoms = {e: sp.limit(e, t, sp.oo) for e in expo.atoms(sp.exp)}
    lim = expo.xreplace(atoms)
    checks = [
        ("exp(-eta Theta t) -> 0 for Theta positive definite (lambda_1, lambda_2 > 0)", _zero(lim))
    ]
    checks.append(
        ("Theta Theta^-1 = I, so f_inf(X) = f_0 + (y - f_0) = y", _zero(theta * inv - sp.eye(2)))
    )
    return _ok(checks, "symbolic")


DERIVATION = Derivation(
    name="linearised",
    title="Gradient flow of the linearised network: df/dt = -eta Theta (f - y) and its solution",
    steps=(
        Step(
            "1",
            P1,
            "definition",
            note=text(
                "first-order Taylor model around {t0}; {J}",
                t0=Tex(r"\theta_0", "theta_0"),
                J=Tex(
                    r"J = \partial f/\partial\theta \text{ at } \theta_0",
                    "J = d f / d theta at theta_0",
                ),
            ),
        ),
        Step(
            "2",
            P2,
            "chain_rule",
            derive=d2,
            note=text(
                "gradient flow on {loss} (sum, not mean)",
                loss=Tex(r"\mathcal{L} = \tfrac12\lVert f - y\rVert^2", "L = 1/2 ||f - y||^2"),
            ),
        ),
        Step("3", P3, "chain_rule", uses=("1", "2"), derive=d3, note=Text(JJT)),
        Step("4", P4, "algebra", uses=("3",), derive=d4),
        Step(
            "5",
            P5,
            "algebra",
            uses=("3", "4"),
            derive=d5,
            note=text(
                "{flow}, integrated from 0 to {t}",
                flow=Tex(
                    r"\frac{df(x)}{dt} = -\eta\,\Theta(x, X)\,(f(X) - y)",
                    "df(x)/dt = -eta Theta(x, X)(f(X) - y)",
                ),
                t=Tex("t", "t"),
            ),
        ),
        Step(
            "6",
            P6,
            "algebra",
            uses=("5",),
            derive=d6,
            note=text(
                "{f0} (NNGP); {A}",
                f0=Tex(r"f_0 \sim \mathcal{N}(0, K)", "f_0 ~ N(0, K)"),
                A=Tex(
                    r"A_t = \Theta^{-1}\bigl(I - e^{-\eta\Theta t}\bigr)\,\Theta(X, x)",
                    "A_t = Theta^-1 (I - exp(-eta Theta t)) Theta(X, x)",
                ),
            ),
        ),
        Step(
            "7",
            P7,
            "algebra",
            uses=("5",),
            derive=d7,
            note=text("requires {T} positive definite", T=Tex(r"\Theta(X, X)", "Theta(X, X)")),
        ),
    ),
    hypotheses=(
        "the network stays in its linear regime (exact for the linearised model; "
        "for infinite width, Lee et al. 2019, Theorem 2.1)",
        text(
            "{f0} at infinite width, independent of the NTK, which is deterministic",
            f0=Tex(r"f_0 \sim \mathcal{N}(0, \mathrm{NNGP})", "f_0 ~ N(0, NNGP)"),
        ),
    ),
)
