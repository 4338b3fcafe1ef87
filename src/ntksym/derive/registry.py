"""The rule registry: ``RULES[name](expr, ctx) -> expr`` and the :class:`Context` rules see.

Rules register themselves with :func:`rule`, optionally with a one-line description
(:data:`DESCRIPTIONS`, shown by the notes; see :func:`describe`); :func:`apply_rule`
applies one by name and tags an exception with the name of the rule that raised it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sympy as sp

from ntksym.errors import NTKSymError

__all__ = [
    "DESCRIPTIONS",
    "PARAMETERIZATIONS",
    "RULES",
    "Context",
    "RuleError",
    "apply_rule",
    "describe",
    "fresh",
    "rule",
]


class RuleError(NTKSymError):
    """A rule does not apply to the expression it was given."""


@dataclass(frozen=True)
class Context:
    """What a rule may assume.

    Attributes:
        ranges: upper bound of each free index (``k -> n_{l+1}``); lower bounds are 1.
        unequal: pairs of indices assumed different (e.g. ``(k, k')`` in (9)).
        weight_var: variance of the weights ``w`` (1 in the seed).
        bias_var: variance of the biases ``b`` (1 in the seed).
        names: values of named quantities (``Sigma^(1)(x,x')``) for the exact checks.
        weight_scale: factor in front of ``W alpha / sqrt(n)`` in (2) (1 in the seed;
            ``sigma_w`` in the NTK parameterization with a weight scale).
        parameterization: ``"ntk"`` (the seed's (2): ``weight_scale W alpha / sqrt(n_m)
            + beta b``) or ``"standard"`` (``W alpha + beta b`` with no ``1/sqrt(n)``, and
            ``Var(w^(m)) = weight_var * weight_scale^2 / n_m``).
        facts: what the layer rules (:mod:`ntksym.derive.rules_layers`) may use, by kind
            (``"masks"``, ``"zero_mean"``, ``"moments"``, ``"limits"``); each derivation
            declares its own, so two derivations never share them.
    """

    ranges: dict = field(default_factory=dict)
    unequal: tuple = ()
    weight_var: sp.Expr = sp.Integer(1)
    bias_var: sp.Expr = sp.Integer(1)
    names: dict = field(default_factory=dict)
    weight_scale: sp.Expr = sp.S.One
    parameterization: str = "ntk"
    facts: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.parameterization not in PARAMETERIZATIONS:
            raise RuleError(
                f"unknown parameterization {self.parameterization!r}; "
                f"allowed: {', '.join(PARAMETERIZATIONS)}"
            )

    def replace(self, **kw: object) -> Context:
        """A copy with some fields changed."""
        d = {f: getattr(self, f) for f in self.__dataclass_fields__}
        d.update(kw)
        return Context(**d)


#: The forward passes :class:`Context` knows (see its ``parameterization``).
PARAMETERIZATIONS = ("ntk", "standard")

RULES: dict[str, Callable[[sp.Expr, Context], sp.Expr]] = {}
#: One-line descriptions of the rules, by name: :class:`ntksym.derive.text.Text` (words
#: and formulas) or plain strings (shown as words, never read as mathematics).
DESCRIPTIONS: dict[str, Any] = {}


def rule(name: str, description: Any = None) -> Callable:
    """Register a rule under ``name``, with an optional one-line ``description``.

    Args:
        name: the rule's name (what steps cite).
        description: a :class:`ntksym.derive.text.Text` or a plain string; without one
            the first line of the rule's docstring is shown, as words.
    """

    def deco(fn: Callable) -> Callable:
        RULES[name] = fn
        if description is not None:
            DESCRIPTIONS[name] = description
        return fn

    return deco


def describe(name: str) -> Any:
    """The one-line description of rule ``name``.

    Its registered description, else the first line of its docstring (a string: words),
    else the name with spaces.
    """
    if name in DESCRIPTIONS:
        return DESCRIPTIONS[name]
    fn = RULES.get(name)
    doc = (fn.__doc__ or "").strip().splitlines() if fn is not None else []
    return doc[0].strip().rstrip(".") if doc else name.replace("_", " ")


def apply_rule(name: str, expr: sp.Expr, ctx: Context | None = None) -> sp.Expr:
    """Apply the rule ``name``; unknown names raise ``NotImplementedError`` naming them.

    An exception raised by the rule propagates with the attribute ``ntksym_rule`` set to
    the name of the innermost rule that raised it (the engine reports it).
    """
    if name not in RULES:
        raise NotImplementedError(f"no rule {name!r}; known rules: {sorted(RULES)}")
    try:
        return RULES[name](expr, ctx or Context())
    except Exception as exc:
        if not getattr(exc, "ntksym_rule", ""):
            exc.ntksym_rule = name  # type: ignore[attr-defined]  # the innermost rule
        raise


_counter = itertools.count()


def fresh(stem: str = "j") -> sp.Dummy:
    """A fresh summation index."""
    return sp.Dummy(f"{stem}{next(_counter)}", integer=True, positive=True)
