"""The network a derivation's rules work on, built from the derivation's own statements.

A derivation names the steps that define its network (the seed's (1)-(3): ``alpha^(0)
= x``, ``alpha~^(l+1) = ...``, ``alpha^(l) = sigma(alpha~^(l))``) and the hypotheses its
rules may use (the seed's (19): ``Theta^(L)_{ii'} -> Theta_inf^(L) delta_{ii'}``). While
the derivation runs, a :class:`Network` made of those statements is *active*
(:func:`using_network`): the ``definition`` rule and the exact finite-width checker unfold
network objects with its definitions, and the ``induction_hypothesis`` rule rewrites with
its hypotheses. Change a definition in a copy of the derivation and every step that
unfolds it derives something else.

Without an active network (a rule called outside a derivation run, or a derivation that
names no definitions) the rules fall back to the standard network of
:func:`ntksym.derive.rules_network.definition_of`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

import sympy as sp

from ntksym.derive.registry import fresh
from ntksym.derive.statements import ForAll
from ntksym.derive.symbols import (
    NAMES,
    OBJECTS,
    L,
    Tends,
    as_expr,
    l,
    latex,
    make_object,
    width,
    width_layer,
)
from ntksym.errors import InputError

__all__ = ["Network", "active_network", "move_layers", "network_key", "using_network"]

_ACTIVE: ContextVar[Network | None] = ContextVar("ntksym_network", default=None)


def active_network() -> Network | None:
    """The network of the derivation being run, or None outside a run."""
    return _ACTIVE.get()


def network_key() -> tuple | None:
    """A hashable key of the active network's statements (None outside a run)."""
    net = _ACTIVE.get()
    return None if net is None else net.key


@contextmanager
def using_network(net: Network | None) -> Iterator[Network | None]:
    """Make ``net`` the active network inside the ``with`` block (None: the built-in one)."""
    token = _ACTIVE.set(net)
    try:
        yield net
    finally:
        _ACTIVE.reset(token)


def move_layers(expr: sp.Basic, rep: Mapping[sp.Symbol, sp.Expr], prime: bool = False) -> sp.Basic:
    """Substitute ``rep`` into the layers of network objects, widths and plain symbols.

    Registered objects carry their layer in their name (``W^(l)``), so ``subs`` alone
    would not move them; this rebuilds each from its registry entry. With ``prime=True``
    every input-dependent object (``x``, ``alpha``, ``alpha~``) is taken at ``x'``.
    """

    def is_reg(e: sp.Basic) -> bool:
        return isinstance(e, sp.Indexed) and e.base in OBJECTS

    def move(e: sp.Indexed) -> sp.Indexed:
        info = OBJECTS[e.base]
        layer = as_expr(info.layer).subs(rep)
        p = info.prime or (prime and info.kind in ("x", "a", "z"))
        return make_object(info.kind, layer, p)[tuple(i.subs(rep) for i in e.indices)]

    out = expr.replace(is_reg, move)
    widths = {}
    for s in out.free_symbols:
        layer = width_layer(s)
        if layer is not None:
            widths[s] = width(as_expr(layer).subs(rep))
    return out.xreplace(widths).xreplace(dict(rep))


def _fresh_bound(expr: sp.Basic) -> sp.Basic:
    """Every summation index renamed to a fresh dummy (so that names cannot clash)."""

    def rename(s: sp.Sum) -> sp.Sum:
        stem = {v: str(v.name).rstrip("0123456789_") or "j" for v in s.variables}
        return s.xreplace({v: fresh(stem[v]) for v in s.variables})

    return expr.replace(lambda e: isinstance(e, sp.Sum), rename)


@dataclass(frozen=True)
class _Definition:
    """One definition ``kind^(layer(var))_index := rhs`` for ``var >= lo`` (or at one layer)."""

    kind: str
    layer: sp.Expr
    index: sp.Symbol
    rhs: sp.Expr
    var: sp.Symbol | None
    lo: sp.Expr | None

    def at(self, m: sp.Expr) -> sp.Expr | None:
        """The variable's value that puts the left side at layer ``m``, or None."""
        if self.var is None:
            return sp.S.Zero if sp.expand(self.layer - m) == 0 else None
        shift = sp.expand(self.layer - self.var)
        if self.var in shift.free_symbols:
            sols = sp.solve(sp.Eq(self.layer, m), self.var)
            if len(sols) != 1:
                return None
            val = sols[0]
        else:
            val = sp.expand(m - shift)
        if sp.expand(val - self.lo).is_negative:
            return None  # below the definition's range
        return val


def _definition(label: str, stmt: sp.Basic) -> _Definition:
    var = lo = None
    body = stmt
    if isinstance(stmt, ForAll):
        body = stmt.statement
        var, lo, _ = stmt.domain
    lhs = getattr(body, "lhs", None)
    if not (
        isinstance(body, sp.Eq)
        and isinstance(lhs, sp.Indexed)
        and lhs.base in OBJECTS
        and OBJECTS[lhs.base].kind in ("a", "z")
        and len(lhs.indices) == 1
        and isinstance(lhs.indices[0], sp.Symbol)
        and not OBJECTS[lhs.base].prime
    ):
        raise InputError(
            f"({label}) cannot define the network: a definition is 'alpha^(layer)_k = ...' "
            f"or 'alpha~^(layer)_k = ...' at x (optionally ForAll over a layer range); "
            f"got ${latex(stmt)}$"
        )
    info = OBJECTS[lhs.base]
    return _Definition(info.kind, as_expr(info.layer), lhs.indices[0], body.rhs, var, lo)


def _hypothesis(label: str, stmt: sp.Basic) -> tuple[sp.Expr, sp.Expr]:
    lhs = getattr(stmt, "lhs", None)
    if not (
        isinstance(stmt, (sp.Eq, Tends))
        and isinstance(lhs, sp.Function)
        and lhs.func.__name__ in NAMES
    ):
        raise InputError(
            f"({label}) cannot be used as a hypothesis: it must be 'kernel = ...' or "
            f"'kernel -> ...' with a named kernel on the left; got ${latex(stmt)}$"
        )
    # the indices of the named kernel are pattern variables, its layer is not
    wild = {s: sp.Wild(f"w_{s.name}") for s in lhs.free_symbols if s not in (l, L)}
    wild = {s: w for s, w in wild.items() if s.is_integer}
    return lhs.xreplace(wild), stmt.rhs.xreplace(wild)


def is_definition(stmt: sp.Basic) -> bool:
    """Whether ``stmt`` has the shape of a network definition."""
    try:
        _definition("", stmt)
    except InputError:
        return False
    return True


@dataclass(frozen=True)
class Network:
    """The definitions and hypotheses of one derivation, used by the rules.

    Attributes:
        statements: the statement of each network label (its derived form when the step
            corrected it, e.g. a definition's range, else the printed one).
        printed: the printed statement of each network label.
    """

    statements: dict = field(default_factory=dict)
    printed: dict = field(default_factory=dict)
    # derived from ``statements`` in __post_init__; not arguments, not compared
    key: tuple = field(init=False, repr=False, compare=False)
    _defs: tuple[_Definition, ...] = field(init=False, repr=False, compare=False)
    _hyps: tuple[tuple[sp.Expr, sp.Expr], ...] = field(init=False, repr=False, compare=False)
    _cache: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        defs, hyps = [], []
        for label, stmt in self.statements.items():
            if is_definition(stmt):
                defs.append(_definition(label, stmt))
            else:
                hyps.append(_hypothesis(label, stmt))
        # a definition at one layer (alpha^(0) = x) before the ones over a range
        defs.sort(key=lambda d: d.var is not None)
        object.__setattr__(self, "_defs", tuple(defs))
        object.__setattr__(self, "_hyps", tuple(hyps))
        object.__setattr__(self, "_cache", {})
        object.__setattr__(self, "key", tuple(self.statements.items()))

    def definition_of(self, ind: sp.Indexed) -> sp.Expr | None:
        """The right-hand side defining the network entry ``ind``, or None."""
        info = OBJECTS.get(ind.base)
        if info is None or len(ind.indices) != 1:
            return None
        key = (info.kind, as_expr(info.layer), info.prime)
        cache = self._cache
        if key not in cache:
            cache[key] = self._template(*key)
        if cache[key] is None:
            return None
        template, index, bound = cache[key]
        # fresh summation indices at every use, so that two unfoldings cannot share one
        rep = {v: fresh(str(v.name).rstrip("0123456789_") or "j") for v in bound}
        return template.xreplace({**rep, index: ind.indices[0]})

    def _template(self, kind: str, layer: sp.Expr, prime: bool) -> tuple | None:
        """The first matching definition moved to ``layer`` (and ``x'``), with its sums."""
        for d in self._defs:
            if d.kind != kind:
                continue
            val = d.at(layer)
            if val is None:
                continue
            rhs = _fresh_bound(d.rhs)
            rep = {d.var: val} if d.var is not None else {}
            out = move_layers(rhs, rep, prime=prime)
            bound = {v for t in out.atoms(sp.Sum) for v in t.variables}
            return out, d.index, tuple(sorted(bound, key=str))
        return None

    def apply_hypotheses(self, expr: sp.Basic) -> sp.Basic:
        """Rewrite ``expr`` with every hypothesis (left side -> right side)."""
        for pattern, template in self._hyps:
            expr = expr.replace(pattern, template)
        return expr

    @property
    def has_definitions(self) -> bool:
        """Whether the network carries definitions of network objects."""
        return bool(self._defs)

    @property
    def has_hypotheses(self) -> bool:
        """Whether the network carries hypotheses for the rules."""
        return bool(self._hyps)


def check_statements(labels: tuple[str, ...], statements: Mapping[str, sp.Basic]) -> None:
    """Raise :class:`InputError` when a network label's statement has no usable shape."""
    for label in labels:
        stmt = statements[label]
        if not is_definition(stmt):
            _hypothesis(label, stmt)
