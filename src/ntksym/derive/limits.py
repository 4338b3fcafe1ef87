"""A printed equality of which only the limit was derived.

The seed's (26) and (27) print ``Theta^(L+1)_kk' = ...`` although the rules derive
``Theta^(L+1)_kk' -> ...`` as ``n_L -> oo`` (they use the limits (24) and (25)). The
printed relation is stronger than the derived one, and at finite width it is false: the
NTK of a finite network depends on its parameters, the kernels on the right do not.
:func:`stronger_than_derived` recognises the case and gives the verdict with that
evidence, computed exactly at a small width (:func:`finite_width_dependence`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sympy as sp

from ntksym.derive.canonical import symbolic_equal
from ntksym.derive.finite_width import NotExact, concretize, nonzero_at_random_point
from ntksym.derive.network import network_key
from ntksym.derive.steps import Step, Verdict
from ntksym.derive.symbols import OBJECTS, L, PSum, Tends, alpha_t, latex, theta
from ntksym.derive.text import Tex, Text, text

__all__ = ["StrongerRelation", "finite_width_dependence", "stronger_than_derived"]

#: The smallest network on which a depth-(L+1) NTK is evaluated: L = 1, widths (1, 1, 1).
DEFAULT_CONFIG = ({L: 1}, {0: 1, 1: 1, 2: 1})


def _ntk_value(name: sp.Expr) -> sp.Expr | None:
    """The finite-width NTK entry ``Theta^(m)_{ab}`` by (6): the sum over parameters."""
    if not (isinstance(name, sp.Function) and name.func.__name__ == "Theta"):
        return None
    if len(name.args) != 3:
        return None
    m, a, c = name.args
    dz = sp.Derivative(alpha_t(m)[a], theta) * sp.Derivative(alpha_t(m, True)[c], theta)
    return PSum(dz)


@dataclass(frozen=True)
class StrongerRelation:
    """The one-line summary: printed '=', derived a limit, and the finite-width evidence.

    Attributes:
        width: the width that tends to infinity in the derived statement.
        where: the configuration (``L=1 n=(1,2,1) k=1, k'=1``).
        param: a parameter the left side depends on there.
    """

    width: sp.Expr
    where: str
    param: sp.Expr

    def text(self) -> Text:
        """The summary as :class:`Text` (the width and the parameter as formulas)."""
        return text(
            "relation: '=' printed, only the limit as {n} {oo} derived; at {where} the left "
            "side depends on {p}, the right side is deterministic",
            n=self.width,
            oo=Tex(r"\to\infty", "-> oo"),
            where=self.where,
            p=self.param,
        )

    def render(self, show: Callable[[sp.Basic], str] | None = None) -> str:
        """The summary, with SymPy objects printed by ``show`` (default ``$LaTeX$``)."""
        show = show or (lambda e: f"${latex(e)}$")
        return (
            f"relation: '=' printed, only the limit as {show(self.width)} -> oo derived; "
            f"at {self.where} the left side depends on {show(self.param)}, the right side "
            "is deterministic"
        )


def finite_width_dependence(
    name: sp.Expr, ctx: Any, configs: tuple = ()
) -> tuple[str, sp.Expr] | None:
    """How the finite-width value of a named kernel depends on the parameters, or None.

    The NTK entry ``Theta^(m)_{ab}`` is evaluated exactly by (6) at the first
    configuration (``DEFAULT_CONFIG`` when none is given) with every free index 1 and
    every parameter of the network as theta~; returns the configuration (as text) and the
    first parameter the value depends on (a nonzero derivative). None for other names,
    or when nothing could be evaluated.
    """
    layers, widths = (configs or (DEFAULT_CONFIG,))[0]
    key = (name, tuple(layers.items()), tuple(widths.items()), network_key())
    if key not in _DEPENDENCE:
        _DEPENDENCE[key] = _dependence(name, ctx, layers, widths)
    return _DEPENDENCE[key]


_DEPENDENCE: dict[tuple, tuple[str, sp.Expr] | None] = {}


def _dependence(name: sp.Expr, ctx: Any, layers: dict, widths: dict) -> tuple | None:
    value = _ntk_value(name)
    if value is None:
        return None
    depth = sp.sympify(name.args[0]).subs({k: v for k, v in layers.items() if k != "theta_layers"})
    if not depth.is_Integer or any(m not in widths for m in range(int(depth) + 1)):
        return None
    layers = {**layers, "theta_layers": int(depth)}
    assign = {s: sp.Integer(1) for s in name.args[1:] if isinstance(s, sp.Symbol)}
    try:
        val = concretize(value, layers, widths, assign, ctx=ctx)
    except NotExact:
        return None
    params = sorted(
        (e for e in val.atoms(sp.Indexed) if e.base in OBJECTS and OBJECTS[e.base].kind in "Wb"),
        key=sp.default_sort_key,
    )
    for p in params:
        d = sp.expand(sp.diff(val, p))
        if d != 0 and (nonzero_at_random_point(d) or sp.simplify(d) != 0):
            where = ", ".join(f"{k}={v}" for k, v in layers.items() if k != "theta_layers")
            at = ", ".join(f"{s}=1" for s in assign)
            n = ",".join(str(widths[m]) for m in sorted(widths))
            return f"{where} n=({n}) {at}", p
    return None


def _same_relation(printed: sp.Eq, derived: Tends, step: Step) -> bool:
    """Whether ``printed`` says ``derived`` with '=' (free indices renamed if need be)."""
    as_eq = sp.Eq(derived.lhs, derived.rhs, evaluate=False)
    if symbolic_equal(printed, as_eq, step.ctx):
        return True
    ranges = step.ctx.ranges
    free = sorted((printed.free_symbols | as_eq.free_symbols) & set(ranges), key=str)
    if not 1 < len(free) <= 4:
        return False
    for perm in itertools.permutations(free):
        rep = dict(zip(free, perm, strict=True))
        if all(a == c for a, c in rep.items()) or any(
            ranges[a] != ranges[c] for a, c in rep.items()
        ):
            continue
        if symbolic_equal(printed.xreplace(rep), as_eq, step.ctx):
            return True
    return False


def stronger_than_derived(step: Step, derived: sp.Basic, evidence: Any) -> Verdict | None:
    """The verdict for a printed '=' where only a limit was derived; None otherwise.

    ``evidence`` is the outcome of the derived statement's own checks (attributes ``ok``,
    ``method``, ``detail``). With a finite-width dependence of the left side the printed
    equality is false at finite width: ``misprint``. Without one nothing decides whether
    the stronger claim holds: ``unchecked``, saying so.
    """
    printed = step.printed
    if not (isinstance(printed, sp.Eq) and isinstance(derived, Tends)):
        return None
    if not _same_relation(printed, derived, step):
        return None
    n = derived.args[2]
    claim = text(
        "the printed '=' is stronger than what was derived: only the limit as {n} -> oo follows",
        n=n,
    )
    dep = finite_width_dependence(printed.lhs, step.ctx, tuple(step.configs))
    if dep is None:
        return Verdict(
            "unchecked", "", Text(claim, "; no finite-width check could decide the equality")
        )
    where, param = dep
    why = text(
        "at finite width the left side is random (at {where} it depends on {p}), the right "
        "side is deterministic",
        where=where,
        p=param,
    )
    detail = Text(claim, "; ", why)
    if evidence.ok:
        detail = Text(detail, "; derived ", evidence.detail, f" ({evidence.method})")
    return Verdict(
        "misprint",
        "exact-finite-width",
        detail,
        parts=(StrongerRelation(n, where, param),),
    )
