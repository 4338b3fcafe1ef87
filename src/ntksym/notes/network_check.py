"""The numeric check of a described network's derivation: its recursion against the referee.

A step ``Sigma^(m) = ...`` or ``Theta^(m) = ...`` of
:func:`ntksym.notes.network.network_derivation` is checked by evaluating, in mpmath,
the derived statements of every earlier step and then the statement itself, at every
pair of a few inputs, and comparing the value with :func:`ntksym.reference.kernel` of
the network cut after layer ``m`` (its own quadrature of every layer map). The Gaussian
expectations are :func:`ntksym.reference.dual` of the layer's activation
(:func:`ntksym.derive.layered_numeric.expression_value`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import sympy as sp

from ntksym.architecture.description import Net, Serial
from ntksym.derive.layered_numeric import Architecture, expression_value, input_covariance
from ntksym.derive.symbols import GaussE, Sigma, scalar
from ntksym.derive.text import Number, Text

__all__ = [
    "DPS",
    "TOLERANCE",
    "SAME_EXAMPLE",
    "SigmaXX",
    "SigmaYY",
    "default_inputs",
    "network_check",
    "recursion_values",
]

#: Digits of the evaluation and of the referee.
DPS = 20
#: Largest relative difference accepted against the referee.
TOLERANCE = 1e-12
#: The three pairs of inputs a Gaussian expectation at ``(x, x')`` needs.
_KEYS = ("11", "22", "12")


#: ``delta_{x x'}``: 1 for an input paired with itself (one example, one Dropout mask).
SAME_EXAMPLE = scalar("delta_{x x'}", positive=False)


class SigmaXX(sp.Function):
    """``Sigma^(p)(x, x)``: the first input's variance (a LayerNorm's denominator)."""

    nargs = 1
    is_real = True

    def _latex(self, printer: Any, exp: str | None = None) -> str:
        s = r"\Sigma^{(" + printer._print(self.args[0]) + ")}(x, x)"
        return s if exp is None else r"\left(" + s + r"\right)^{" + exp + "}"

    _ntksym_notes_latex = _latex

    def _ntksym_plain(self, printer: Any) -> str:
        return f"Sigma^({self.args[0]})(x, x)"


class SigmaYY(sp.Function):
    """``Sigma^(p)(x', x')``: the second input's variance."""

    nargs = 1
    is_real = True

    def _latex(self, printer: Any, exp: str | None = None) -> str:
        s = r"\Sigma^{(" + printer._print(self.args[0]) + ")}(x', x')"
        return s if exp is None else r"\left(" + s + r"\right)^{" + exp + "}"

    _ntksym_notes_latex = _latex

    def _ntksym_plain(self, printer: Any) -> str:
        return f"Sigma^({self.args[0]})(x', x')"


def default_inputs(n_inputs: int = 3) -> np.ndarray:
    """``n_inputs`` seeded Gaussian inputs in three dimensions."""
    return np.random.default_rng(14).standard_normal((n_inputs, 3))


def _covariances(expr: sp.Expr, names: dict[str, dict], key: str) -> tuple:
    """``(Sigma(x, x), Sigma(x, x'), Sigma(x', x'))`` of the layer the expectations are over."""
    layers = {g.args[3] for g in expr.atoms(GaussE)}
    if not layers:
        return (0, 0, 0)
    if len(layers) > 1:
        raise ValueError(f"expectations over several layers in one statement: {sorted(layers)}")
    s = Sigma(layers.pop())
    first = "22" if key == "22" else "11"
    second = "11" if key == "11" else "22"
    return (names[first][s], names[key][s], names[second][s])


def _with_diagonals(names: dict[str, dict], key: str) -> dict:
    """The values of pair ``key``, and ``SigmaXX(p)``, ``SigmaYY(p)`` of every known layer."""
    first = "22" if key == "22" else "11"
    second = "11" if key == "11" else "22"
    out = dict(names[key])
    for name, value in names[first].items():
        if name.func == Sigma:
            out[SigmaXX(*name.args)] = value
            out[SigmaYY(*name.args)] = names[second][name]
    return out


def _one_input(expr: sp.Expr) -> sp.Expr:
    """``expr`` at a pair of equal inputs: ``Sigma(x, x) = Sigma(x, x') = Sigma(x', x')``.

    Written with one positive symbol per layer, so that a correlation
    ``Sigma / sqrt(Sigma(x, x) Sigma(x', x'))`` is exactly 1: evaluated in ``dps`` digits
    it would round to ``1 - 1e-20`` and ``asin`` of it lose half the digits.
    """
    out = expr
    for f in expr.atoms(SigmaXX, SigmaYY):
        t = sp.Dummy("t", positive=True)
        (p,) = f.args
        out = out.xreplace({SigmaXX(p): t, SigmaYY(p): t, Sigma(p): t}).xreplace({t: Sigma(p)})
    return out


def _value(rhs: sp.Expr, names: dict, known: dict, key: str, arch: Architecture, dps: int) -> Any:
    """``rhs`` at pair ``key``; each Gaussian expectation over its own layer's kernel.

    A block's statement has expectations over several layers when its branches have
    layers of their own; each is evaluated at its layer's covariances, then the rest.
    """
    gauss = rhs.atoms(GaussE)
    if len({g.args[3] for g in gauss}) <= 1:
        return expression_value(rhs, known, _covariances(rhs, names, key), arch, dps)
    each = {
        g: sp.Float(str(expression_value(g, known, _covariances(g, names, key), arch, dps)), dps)
        for g in gauss
    }
    return expression_value(rhs.xreplace(each), known, (0, 0, 0), arch, dps)


def recursion_values(
    statements: Sequence[sp.Eq],
    arch: Architecture,
    a: Sequence[float],
    c: Sequence[float],
    dps: int = DPS,
    same: bool = False,
    memo: dict | None = None,
    keep: int = 0,
) -> dict[sp.Basic, Any]:
    """The value at ``(a, c)`` of every left side of ``statements``, evaluated in order.

    Each statement is ``name = expression`` in earlier names, Gaussian expectations over
    an earlier ``Sigma^(p)`` and numbers; ``Sigma^(1)`` is the input covariance.
    ``same`` says that ``a`` and ``c`` are one example (``SAME_EXAMPLE`` is then 1 at
    ``(a, c)``; it is always 1 at ``(a, a)`` and ``(c, c)``).

    ``memo`` (one per derivation: its statements' activations are ``arch``'s) keeps the
    values after the first ``keep`` statements, and a call whose statements start with
    ones already evaluated there continues from them: the checks of a derivation's steps
    each evaluate the statements before them, which are the earlier steps' (without it a
    network of ``L`` steps costs ``L^2`` statements).

    Raises:
        ValueError, NotImplementedError, KeyError: a statement cannot be evaluated.
    """
    pairs = {"11": (a, a), "22": (c, c), "12": (a, c)}
    where = (tuple(a), tuple(c), same, dps)
    start, names = _memoized(memo, where, statements)
    for n, st in enumerate(statements[start:], start=start + 1):
        for key in _KEYS:
            if st.rhs.atoms(sp.Indexed):  # a sum over the inputs' entries
                val = input_covariance(st.rhs, *pairs[key], arch)
            else:
                known = _with_diagonals(names, key)
                one = key != "12" or list(a) == list(c)
                rhs = _one_input(st.rhs) if one else st.rhs
                val = _value(rhs, names, known, key, arch, dps)
            names[key][st.lhs] = val
        if memo is not None and n == keep:
            memo[(where, tuple(statements[:n]))] = {k: dict(v) for k, v in names.items()}
    return names["12"]


def _memoized(
    memo: dict | None, where: tuple, statements: Sequence[sp.Eq]
) -> tuple[int, dict[str, dict]]:
    """How many leading statements ``memo`` has evaluated at ``where``, and their values."""
    for n in range(len(statements), 0, -1) if memo else ():
        hit = memo.get((where, tuple(statements[:n])))  # type: ignore[union-attr]
        if hit is not None:
            return n, {k: dict(v) for k, v in hit.items()}
    names: dict[str, dict] = {key: {} for key in _KEYS}
    for key in _KEYS:
        names[key][SAME_EXAMPLE] = 1 if (key != "12" or where[2]) else 0
    return 0, names


#: The referee's Gram matrices, by (network, inputs).
_REFEREE: dict[tuple, tuple] = {}


def referee(prefix: tuple[Net, ...], X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NNGP and NTK of the network made of ``prefix``, by :func:`ntksym.reference.kernel`."""
    from ntksym.reference import kernel

    key = (Serial(tuple(prefix)), X.tobytes(), X.shape)
    if key not in _REFEREE:
        _REFEREE[key] = kernel(key[0], X, dps=DPS)
    return _REFEREE[key]


def network_check(
    before: Sequence[str],
    prefix: tuple[Net, ...],
    kernel: str,
    arch: Architecture,
    tolerance: float = TOLERANCE,
    then: sp.Eq | None = None,
    memo: dict | None = None,
) -> Callable:
    """An ``extra_check``: this step's kernel against the referee of the cut network.

    Args:
        before: labels of the earlier steps whose derived statements the value needs.
        prefix: the network's layers up to this step's layer.
        kernel: ``"nngp"`` or ``"ntk"``: which Gram matrix the statement's left side is.
        arch: the activations of the layers (values are numbers in the statements).
        tolerance: largest relative difference accepted.
        then: a statement evaluated after this one whose left side is the kernel compared
            (a ``Sigmadot`` step is checked through the NTK step that uses it).
        memo: the derivation's values of statements already evaluated (see
            :func:`recursion_values`), shared by its steps' checks.
    """

    def check(stmt: sp.Basic, ctx: Any, env: dict) -> tuple[bool, str, Text]:
        missing = [lab for lab in before if lab not in env]
        if missing:
            return False, "numeric", Text(f"earlier steps not derived: {', '.join(missing)}")
        X = np.asarray(arch.inputs, dtype=float)
        ref = referee(prefix, X)[0 if kernel == "nngp" else 1]
        worst = 0.0
        try:
            for p in range(len(X)):
                for q in range(p, len(X)):
                    stmts = (
                        [env[lab] for lab in before] + [stmt] + ([then] if then is not None else [])
                    )
                    values = recursion_values(
                        stmts,
                        arch,
                        list(X[p]),
                        list(X[q]),
                        same=p == q,
                        memo=memo,
                        keep=len(before) + 1,
                    )
                    got = values[stmts[-1].lhs]
                    gap = abs(float(got) - ref[p, q]) / max(abs(ref[p, q]), 1e-300)
                    worst = max(worst, gap)
        except (ValueError, NotImplementedError, KeyError) as exc:
            return False, "numeric", Text(f"the recursion cannot be evaluated: {exc}")
        through = "" if then is None else ", through the NTK step that uses it"
        detail = Text(
            f"recursion vs ntksym.reference.kernel of the network cut here ({kernel}{through}, "
            f"{len(X)} inputs): worst rel. diff ",
            Number(worst),
        )
        return bool(worst <= tolerance), "numeric", detail

    return check
