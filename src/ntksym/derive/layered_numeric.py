"""A derived recursion with layer-indexed parameters, checked against ``ntksym.stax``.

The derived statements of a derivation (``Sigma^(1)``, the map ``Sigma^(l) ->
Sigma^(l+1)``, ``Sigmadot^(L+1)`` and the map ``Theta^(L) -> Theta^(L+1)``) are evaluated
as they came out of the rules, layer by layer, at concrete values of the derivation's
symbols (:class:`Architecture`): per-layer scales ``sigma_w(m)``, ``beta(m)`` and one
activation per layer. The Gaussian expectations ``E_{g ~ N(0, Sigma^(m))}`` are
:func:`ntksym.reference.dual` (mpmath). Two independent references evaluate the *same
architecture*, written in neural-tangents' ``stax`` vocabulary:

* :func:`ntksym.stax.reference_kernels`: the mpmath referee of the described network
  (every dual map by quadrature), method ``numeric``;
* :func:`ntksym.stax.monte_carlo`: finite networks of growing width; the derived limit
  must lie within the Monte-Carlo error bars and the network-to-network spread must
  shrink like ``width^(-1/2)`` (:class:`Fluctuation`), method ``monte-carlo``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import mpmath
import numpy as np
import sympy as sp

from ntksym.derive.layered import activation_of
from ntksym.derive.recursion import DerivedRecursion
from ntksym.derive.statements import Chain
from ntksym.derive.steps import CheckFn
from ntksym.derive.symbols import (
    OBJECTS,
    GaussE,
    L,
    Sigma,
    Sigma_dot,
    Tends,
    Theta_inf,
    l,
    sigma,
    sigmadot,
)
from ntksym.derive.text import Measured, Number, Tex, Text, text
from ntksym.stats import fit_power_law

if TYPE_CHECKING:
    from ntksym.typing import ActivationLike

#: "tends to", in a check's detail.
ARROW = Tex(r"\to", "->")

__all__ = [
    "Architecture",
    "Fluctuation",
    "evaluate_recursion",
    "expression_value",
    "input_covariance",
    "kernel_check",
    "parts_of",
    "reference_gap",
]


@dataclass(frozen=True)
class Architecture:
    """One concrete network: the derivation's symbols at values, and the same in ``stax``.

    Attributes:
        network: a :mod:`ntksym.stax` layer (``stax.serial(...)``) of the same network,
            with width ``width`` in its hidden layers, or a function ``width -> layer``
            (the Monte-Carlo check builds it at several widths).
        values: the value of every scalar the derived statements contain
            (``{sw(0): 1.2, beta: 0.3}``).
        activations: the activation (what :func:`ntksym.reference.dual` takes: a name, an
            expression or an Activation) of each activation function at each layer:
            ``{(phi, 1): "relu", (phi, 2): "erf"}``; the key ``sigma`` stands for the
            seed's single ``sigma``.
        depth: the number of layers of the recursion (the output is ``Theta^(depth)``).
        inputs: the inputs, shape (N, n0).
        widths: the hidden widths of the Monte-Carlo check.
        n_samples: the networks drawn per width.
    """

    network: Any
    values: Mapping[sp.Basic, float]
    activations: Mapping[Any, ActivationLike]
    depth: int
    inputs: Any = field(default_factory=lambda: _default_inputs())
    widths: tuple[int, ...] = (64, 128, 256, 512)
    n_samples: int = 48

    def layer(self, width: int) -> Any:
        """The ``stax`` network at hidden width ``width``."""
        return self.network(width) if callable(self.network) else self.network

    def activation(self, f: sp.Basic) -> tuple[ActivationLike, bool]:
        """The activation whether ``f`` (an applied function) is its derivative."""
        found = activation_of(f)
        if found is not None:
            act, layer, deriv = found
            # a layer is a number, or a named layer (the notes' layers inside a branch)
            key = (act, layer if isinstance(layer, sp.Symbol) else int(layer))
        elif f.func in (sigma, sigmadot):
            key, deriv = sigma, f.func == sigmadot
        else:
            raise NotImplementedError(f"no activation known for {f}")
        if key not in self.activations:
            raise NotImplementedError(f"no activation given for {f} (key {key})")
        return self.activations[key], deriv


def _default_inputs() -> Any:
    return np.random.default_rng(30).standard_normal((3, 3))


def _factor(F: sp.Expr, var: sp.Symbol) -> sp.Expr:
    return sp.Mul(*[f for f in sp.Mul.make_args(F) if var in f.free_symbols])


def _gauss(F: sp.Expr, u: sp.Symbol, v: sp.Symbol, S: tuple, arch: Architecture, dps: int) -> Any:
    """``E[F(u, v)]`` for ``(u, v) ~ N(0, [[s11, s12], [s12, s22]])``."""
    from ntksym.reference import dual

    s11, s12, s22 = S
    plain = {u * v: s12, u**2: s11, v**2: s22}
    if F in plain:
        return plain[F]
    fu, fv = _factor(F, u), _factor(F, v)
    if sp.expand(F - fu * fv) != 0 or fu.free_symbols & {v} or fv.free_symbols & {u}:
        raise NotImplementedError(f"no numeric rule for E[{F}]")
    for g, s in ((fu, s11), (fv, s22)):
        if g != 1 and fu * fv == g and isinstance(g, sp.Pow) and g.exp == 2:
            name, deriv = arch.activation(g.base)
            return dual(name, s, s, s, dps=dps, derivative=deriv)
    (nu, du), (nv, dv) = arch.activation(fu), arch.activation(fv)
    if (nu, du) != (nv, dv) or fu.xreplace({u: v}) != fv:
        raise NotImplementedError(f"E[{F}]: the two factors are different functions")
    return dual(nu, s11, s12, s22, dps=dps, derivative=du)


def expression_value(expr: sp.Expr, names: dict, S: tuple, arch: Architecture, dps: int) -> Any:
    """An expression in Gaussian expectations, named kernels and scalars, as an mpf.

    Args:
        expr: the expression (``GaussE`` over one covariance, names, numbers).
        names: values of the named kernels it contains (``{Sigma(2): mpf, ...}``).
        S: ``(Sigma(x, x), Sigma(x, x'), Sigma(x', x'))`` of the expectations.
        arch: the activations and the values of the scalars.
        dps: digits.

    Raises:
        ValueError: something is left unevaluated.
        NotImplementedError: an expectation of a form with no numeric rule.
    """

    def ev(g: GaussE) -> sp.Expr:
        F, u, v, _ = g.args
        return sp.Float(str(_gauss(F, u, v, S, arch, dps)), dps)

    out = expr.replace(lambda t: isinstance(t, GaussE), ev)
    out = out.xreplace({k: sp.Float(str(v), dps) for k, v in names.items()})
    out = out.xreplace({k: sp.Float(v, dps) for k, v in arch.values.items()})
    val = sp.N(out, dps)
    if val.free_symbols or not val.is_Number:
        raise ValueError(f"could not evaluate {expr} (left: {sorted(map(str, val.free_symbols))})")
    return mpmath.mpf(str(val))


def input_covariance(
    expr: sp.Expr, a: Sequence[float], c: Sequence[float], arch: Architecture
) -> Any:
    """A derived ``Sigma^(1)`` (a sum over the inputs' entries) at inputs ``a``, ``c`` (mpf).

    Raises:
        ValueError: the expression depends on more than the inputs and numbers.
    """
    rep: dict = {s: len(a) for s in expr.free_symbols if s.name == "n_{0}"}
    e = expr.xreplace(rep).doit()
    vals = {}
    for ind in e.atoms(sp.Indexed):
        info = OBJECTS.get(ind.base)
        if info is None or info.kind not in ("x", "a") or info.layer != 0:
            raise ValueError(f"Sigma^(1) depends on {ind}, not only on the inputs")
        vals[ind] = sp.Float(float((c if info.prime else a)[int(ind.indices[0]) - 1]), 30)
    return expression_value(e.xreplace(vals), {}, (0, 0, 0), arch, 30)


def evaluate_recursion(
    parts: DerivedRecursion,
    arch: Architecture,
    a: Sequence[float],
    c: Sequence[float],
    dps: int = 30,
) -> tuple[list, list]:
    """``(Sigma^(m)(a, c), Theta^(m)(a, c))`` for ``m = 1..arch.depth`` (mpmath).

    ``Sigma^(m+1)`` is ``parts.sigma_next`` at ``l = m`` (its Gaussian expectations over
    ``Sigma^(m)``, and ``Sigma^(m)`` itself where it appears), ``Theta^(m+1)`` is
    ``parts.theta_next`` at ``L = m`` with ``Theta_inf^(m)``, ``Sigmadot^(m+1)``,
    ``Sigma^(m+1)``, ``Sigma^(m)`` by their values.
    """
    with mpmath.workdps(dps):
        s = {
            key: input_covariance(parts.sigma1, p, q, arch) for key, (p, q) in _pairs(a, c).items()
        }
        sig, th = [s["12"]], [s["12"]]
        for m in range(1, arch.depth):
            nxt = parts.sigma_next.subs(l, m)
            S = (s["11"], s["12"], s["22"])
            new = {
                key: expression_value(nxt, {Sigma(m): s[key]}, (s[d1], s[key], s[d2]), arch, dps)
                for key, d1, d2 in (("11", "11", "11"), ("12", "11", "22"), ("22", "22", "22"))
            }
            names = {Sigma(m): s["12"], Sigma(m + 1): new["12"], Theta_inf(m): th[-1]}
            names[Sigma_dot(m + 1)] = expression_value(
                parts.sigmadot_next.subs(L, m), names, S, arch, dps
            )
            th.append(expression_value(parts.theta_next.subs(L, m), names, S, arch, dps))
            s = new
            sig.append(s["12"])
        return sig, th


def _pairs(a: Sequence[float], c: Sequence[float]) -> dict:
    return {"11": (a, a), "12": (a, c), "22": (c, c)}


def parts_of(env: dict, labels: Mapping[str, str]) -> DerivedRecursion:
    """The derived pieces from a derivation's environment, by step label.

    ``labels`` maps ``sigma1``, ``sigma_next`` and optionally ``sigmadot``, ``theta`` to
    env keys (absent pieces are 0: an NNGP check needs none). ``theta`` may be a limit
    ``Theta^(L+1)_kk' -> ... delta_kk'`` or an equality; its Kronecker deltas are set to 1.
    """

    def rhs(key: str) -> sp.Expr:
        if key not in labels:
            return sp.Integer(0)
        stmt = env[labels[key]]
        if isinstance(stmt, (sp.Eq, Tends)):
            return stmt.rhs
        return stmt.args[-1] if isinstance(stmt, Chain) else stmt

    tn = rhs("theta")
    tn = tn.xreplace({d: sp.Integer(1) for d in tn.atoms(sp.KroneckerDelta)})
    return DerivedRecursion(rhs("sigma1"), rhs("sigma_next"), rhs("sigmadot"), tn)


#: The referee's Gram matrices, by (description, inputs): an NNGP step and the final
#: step of one derivation compare with the same network.
_REFERENCE: dict[tuple, tuple] = {}
#: Digits of the mpmath referee and of the derived recursion in the comparison.
DPS = 15


def _reference(description: Any, X: Any) -> tuple[Any, Any]:
    from ntksym.stax import reference_kernels

    key = (description, np.asarray(X).tobytes(), np.asarray(X).shape)
    if key not in _REFERENCE:
        ((nngp, ntk),) = reference_kernels(description, X, dps=DPS)
        _REFERENCE[key] = (nngp, ntk)
    return _REFERENCE[key]


def reference_gap(parts: DerivedRecursion, arch: Architecture, keys: Sequence[str]) -> float:
    """Worst relative difference, over every pair of inputs, against ``reference_kernels``."""
    X = arch.inputs
    nngp, ntk = _reference(arch.layer(1).description, X)
    worst = 0.0
    for p in range(len(X)):
        for q in range(p, len(X)):
            sig, th = evaluate_recursion(parts, arch, list(X[p]), list(X[q]), dps=DPS)
            for key, got, ref in (("nngp", sig[-1], nngp[p, q]), ("ntk", th[-1], ntk[p, q])):
                if key in keys:
                    worst = max(worst, float(abs(float(got) - ref) / max(abs(ref), 1e-300)))
    return worst


@dataclass(frozen=True)
class Fluctuation:
    """Monte Carlo at several widths: bias within error bars, spread ~ width^(-1/2).

    Attributes:
        widths: the hidden widths.
        z: worst ``|mean - limit| / stderr`` over the Gram entries, per width.
        spread: relative network-to-network spread (RMS over the Gram entries), per width.
        slope, slope_stderr: the fitted exponent of ``spread`` against width (theory -1/2).
    """

    widths: tuple[int, ...]
    z: tuple[float, ...]
    spread: tuple[float, ...]
    slope: float
    slope_stderr: float

    def consistent(self, z_max: float = 5.0, allowance: float = 0.1) -> bool:
        """Limit within ``z_max`` error bars at the widest width; rate -1/2 within 3 s.e."""
        rate_ok = abs(self.slope + 0.5) <= 3 * self.slope_stderr + allowance
        return bool(self.z[-1] <= z_max and rate_ok and self.slope_stderr < 0.1)

    def describe(self) -> Text:
        """One line: the error-bar distance at the widest width, the spread and its rate."""
        return text(
            "limit within {z} error bars at n={n}; spread {s0} {to} {s1}, {rate} "
            "(accepted if within 3 s.e. + 0.1 of -1/2)",
            z=Number(self.z[-1], ".2g"),
            n=Number(self.widths[-1], "d"),
            s0=Number(self.spread[0], ".3g"),
            to=ARROW,
            s1=Number(self.spread[-1], ".3g"),
            rate=Measured("rate", self.slope, self.slope_stderr),
        )


def fluctuation(
    arch: Architecture,
    limit: Any,
    kernel: str,
    seed: int = 41,
) -> Fluctuation:
    """:func:`ntksym.stax.monte_carlo` at each width against the derived ``limit`` Gram."""
    from ntksym.stax import monte_carlo

    widths, n_samples = arch.widths, arch.n_samples

    zs, spread, err = [], [], []
    root = np.random.SeedSequence(seed)
    for n, child in zip(widths, root.spawn(len(widths)), strict=True):
        mc = monte_carlo(
            arch.layer(n), arch.inputs, n_samples=n_samples, seed=np.random.default_rng(child)
        )
        mean, sem = (mc.ntk, mc.ntk_sem) if kernel == "ntk" else (mc.nngp, mc.nngp_sem)
        zs.append(float(np.max(np.abs(mean - limit) / np.maximum(sem, 1e-300))))
        sd = sem * np.sqrt(n_samples)
        spread.append(float(np.sqrt(np.mean(sd**2)) / np.sqrt(np.mean(limit**2))))
        err.append(spread[-1] / np.sqrt(2 * (n_samples - 1)))
    fit = fit_power_law(np.asarray(widths, float), np.asarray(spread), np.asarray(err))
    return Fluctuation(tuple(widths), tuple(zs), tuple(spread), fit.slope, fit.slope_stderr)


def _limit_gram(parts: DerivedRecursion, arch: Architecture, kernel: str) -> Any:
    X = arch.inputs
    out = np.empty((len(X), len(X)))
    for p in range(len(X)):
        for q in range(p, len(X)):
            sig, th = evaluate_recursion(parts, arch, list(X[p]), list(X[q]), dps=20)
            out[p, q] = out[q, p] = float((th if kernel == "ntk" else sig)[-1])
    return out


def kernel_check(
    labels: Mapping[str, str],
    arch: Architecture,
    own: str = "theta",
    monte_carlo: bool = True,
    tolerance: float = 1e-12,
) -> CheckFn:
    """An ``extra_check``: the derived recursion against ``stax`` on the same architecture.

    Args:
        labels: env keys (step labels) of ``sigma1``, ``sigma_next`` and, for the NTK,
            ``sigmadot`` and ``theta``.
        arch: the concrete network (values, activations, the ``stax`` description).
        own: which piece the checked statement is (``"sigma_next"`` for an NNGP step:
            only the NNGP is compared; ``"theta"``: both kernels).
        monte_carlo: also compare with finite networks (:func:`fluctuation`), on the NTK
            when ``own`` is ``"theta"``, else on the NNGP.
        tolerance: largest relative difference accepted against the mpmath referee.
    """
    kernels = ("nngp", "ntk") if own == "theta" else ("nngp",)
    if own != "theta":  # an NNGP step needs no NTK pieces
        labels = {key: labels[key] for key in ("sigma1", "sigma_next") if key in labels}

    def check(stmt: sp.Basic, ctx: Any, env: dict) -> tuple[bool, str, Text]:
        key = f"<{own}>"
        parts = parts_of({**env, key: stmt}, {**labels, own: key})
        try:
            gap = reference_gap(parts, arch, kernels)
        except (ValueError, NotImplementedError, KeyError) as exc:
            return False, "numeric", Text(f"the recursion cannot be evaluated: {exc}")
        detail = Text(
            f"recursion vs ntksym.stax.reference_kernels ({', '.join(kernels)}): worst rel. diff ",
            Number(gap),
        )
        if gap > tolerance or not monte_carlo:
            return bool(gap <= tolerance), "numeric", detail
        fl = fluctuation(arch, _limit_gram(parts, arch, kernels[-1]), kernels[-1])
        return (
            bool(fl.consistent()),
            "numeric+monte-carlo",
            Text(detail, f"; monte-carlo ({kernels[-1]}): ", fl.describe()),
        )

    return check
