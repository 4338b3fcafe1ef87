"""Explanations of a difference between printed and derived statements.

:func:`explain` names the smallest differing subterms; :func:`counterexample` finds
concrete index values at which the two differ.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sympy as sp

from ntksym.derive.canonical import pull_constants, rename_indices, symbolic_equal
from ntksym.derive.finite_width import expand_sums
from ntksym.derive.rules import Context
from ntksym.derive.statements import members
from ntksym.derive.symbols import Tends, latex, width_layer
from ntksym.derive.text import Config, Math, Text
from ntksym.derive.wellformed import unknown_symbols

__all__ = [
    "Counterexample",
    "Difference",
    "FirstDifference",
    "StrayIndex",
    "UndefinedSymbols",
    "render_parts",
    "counterexample",
    "differences",
    "explain",
    "find_counterexample",
    "first_difference",
    "short_explain",
]


def tex(e: sp.Basic) -> str:
    """``$...$`` LaTeX of one object (the default ``show`` of the renderers)."""
    return f"${latex(e)}$"


@dataclass(frozen=True)
class Difference:
    """One smallest subterm where the printed and the derived statement differ.

    Attributes:
        kind: ``"index"`` (two objects that differ in their indices only) or ``"term"``.
        printed: the subterm as printed (summation indices renamed ``s_0, s_0', ...``).
        derived: the subterm as derived.
    """

    kind: str
    printed: sp.Basic
    derived: sp.Basic

    def text(self) -> Text:
        """The line as :class:`Text` (the two subterms as formulas)."""
        return Text(f"{self.kind}: ", self.printed, " printed, ", self.derived, " derived")

    def render(self, show: Callable[[sp.Basic], str] = tex) -> str:
        """One line, e.g. ``index: $w_{ii}$ printed, $w_{ji}$ derived``."""
        return f"{self.kind}: {show(self.printed)} printed, {show(self.derived)} derived"


@dataclass(frozen=True)
class Counterexample:
    """Concrete widths and index values at which printed and derived members differ.

    Attributes:
        widths: ``(width symbol, value)`` pairs (every width is set to the same small n).
        values: ``(index, value)`` pairs.
        member: which member differs (``"right-hand side"``, ``"limit"``, ``"member 3"``).
        position: its position (0 for the left-hand side or the finite-width side).
        anchored: whether every earlier member agrees symbolically, so that both
            statements claim something about the same quantity (limits are unique) and
            the difference is evidence against one of them (a relabelled left-hand side
            is not).
    """

    widths: tuple[tuple[sp.Symbol, int], ...]
    values: tuple[tuple[sp.Symbol, int], ...]
    member: str
    position: int = 0
    anchored: bool = False

    def text(self) -> Text:
        """The line as :class:`Text` (the widths and index values as one formula)."""
        return Text(
            "counterexample: at ",
            Config(values=self.widths + self.values),
            f" the printed {self.member} differs from the derived one",
        )

    def render(self, show: Callable[[sp.Basic], str] = latex) -> str:
        """One line, e.g. ``counterexample: at n_{L}=2, i'=1 the printed ... differs``."""
        ws = ", ".join(f"{show(w)}={n}" for w, n in self.widths)
        where = ", ".join(f"{s}={v}" for s, v in self.values)
        sep = ", " if ws and where else ""
        return (
            f"counterexample: at {ws}{sep}{where} the printed {self.member} differs from the "
            "derived one"
        )

    def as_dict(self) -> dict[str, object]:
        """JSON-ready: widths and index values by name, and the member."""
        return {
            "widths": {latex(w): n for w, n in self.widths},
            "values": {s.name: v for s, v in self.values},
            "member": self.member,
        }


def _diff(p: sp.Basic, d: sp.Basic) -> list[tuple[sp.Basic, sp.Basic]]:
    if p == d:
        return []
    atomic = (sp.Indexed, sp.KroneckerDelta)
    if isinstance(p, atomic) or isinstance(d, atomic):
        return [(p, d)]
    if type(p) is type(d) and isinstance(p, (sp.Add, sp.Mul)):
        pa, da = _flat(p), _flat(d)
        for a in list(pa):
            if a in da:
                pa.remove(a)
                da.remove(a)
        if len(pa) == len(da):
            return [x for a, c in zip(pa, da, strict=True) for x in _diff(a, c)]
        return [(p.func(*pa), d.func(*da))]
    if type(p) is type(d) and len(p.args) == len(d.args) and p.args:
        return [x for a, c in zip(p.args, d.args, strict=True) for x in _diff(a, c)]
    return [(p, d)]


@dataclass(frozen=True)
class FirstDifference:
    """The first of ``1 + more`` differences (a one-line summary names only the first)."""

    difference: Difference
    more: int = 0

    def text(self) -> Text:
        """The first difference, then ``(+n more)``, as :class:`Text`."""
        return Text(self.difference.text(), f" (+{self.more} more)" if self.more else "")

    def render(self, show: Callable[[sp.Basic], str] = tex) -> str:
        """The first difference, then ``(+n more)``."""
        return self.difference.render(show) + (f" (+{self.more} more)" if self.more else "")


@dataclass(frozen=True)
class StrayIndex:
    """An index free on one side of an equality only, with the factors that carry it."""

    index: sp.Symbol
    carriers: tuple[sp.Basic, ...]
    prefix: str = ""

    def text(self) -> Text:
        """The line as :class:`Text`."""
        inside = Text.join(", ", self.carriers)
        return Text(self.prefix, self.index, " is free on one side only (in ", inside, ")")

    def render(self, show: Callable[[sp.Basic], str] = tex) -> str:
        r"""E.g. ``j is free on one side only (in $\delta_{jk}$)``."""
        inside = ", ".join(show(c) for c in self.carriers)
        return f"{self.prefix}{self.index.name} is free on one side only (in {inside})"


@dataclass(frozen=True)
class UndefinedSymbols:
    """Symbols a printed line uses without defining them (a line that breaks off)."""

    symbols: tuple[sp.Symbol, ...]

    def text(self) -> Text:
        """The line as :class:`Text`."""
        names = Text.join(", ", sorted(self.symbols, key=latex))
        return Text("undefined symbol ", names, " (the line breaks off)")

    def render(self, show: Callable[[sp.Basic], str] = tex) -> str:
        r"""E.g. ``undefined symbol $\delta_{i\ldots}$ (the line breaks off)``."""
        names = ", ".join(sorted(show(t) for t in self.symbols))
        return f"undefined symbol {names} (the line breaks off)"


def render_parts(parts: tuple[Any, ...], show: Callable[[sp.Basic], str] | None = None) -> str:
    """A one-line summary from its parts: words, :class:`Text`, objects with ``render(show)``.

    ``show`` prints one SymPy object (default: ``$...$`` LaTeX, and bare LaTeX for the
    widths of a counterexample); pass :func:`ntksym.derive.plaintext.plain` for a terminal
    (formula records then print in their plain form).
    """
    out = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
        elif isinstance(part, Text):
            out.append(str(part) if show is None else part.render(_shower(show)))
        elif show is None:
            out.append(part.render())
        else:
            out.append(part.render(show))
    return "; ".join(out)


def _shower(show: Callable[[sp.Basic], str]) -> Callable[[Math], str]:
    return lambda m: show(m.value) if isinstance(m.value, sp.Basic) else m.plain()


def first_difference(printed: sp.Basic, derived: sp.Basic) -> FirstDifference | str:
    """The first difference and how many follow (``"identical"`` if none)."""
    diffs = differences(printed, derived)
    return FirstDifference(diffs[0], len(diffs) - 1) if diffs else "identical"


def differences(printed: sp.Basic, derived: sp.Basic) -> list[Difference]:
    """The smallest subterms where ``printed`` and ``derived`` differ, in order."""
    out = []
    for p, d in _diff(_rename_all(printed), _rename_all(derived)):
        out.append(Difference("index" if _only_indices_differ(p, d) else "term", p, d))
    return out


def explain(printed: sp.Basic, derived: sp.Basic) -> Text:
    """One line naming where ``printed`` and ``derived`` differ (smallest subterms)."""
    diffs = differences(printed, derived)
    if not diffs:
        return Text("identical")
    more = f" (+{len(diffs) - 5} more)" if len(diffs) > 5 else ""
    return Text(Text.join("; ", (d.text() for d in diffs[:5])), more)


def short_explain(printed: sp.Basic, derived: sp.Basic) -> str:
    """The first (smallest) difference between printed and derived, in one line."""
    return render_parts((first_difference(printed, derived),))


def _flat(e: sp.Basic) -> list[sp.Basic]:
    if not isinstance(e, sp.Mul):
        return list(e.args)
    out: list[sp.Basic] = []
    for f in e.args:
        if isinstance(f, sp.Pow) and f.exp.is_Integer and 0 < f.exp <= 4:
            out.extend([f.base] * int(f.exp))
        else:
            out.append(f)
    return out


def _rename_all(stmt: sp.Basic) -> sp.Basic:
    if isinstance(stmt, (sp.Expr,)) and not isinstance(stmt, sp.MatrixBase):
        return rename_indices(pull_constants(stmt))
    if stmt.args:
        return stmt.func(*[_rename_all(a) for a in stmt.args])
    return stmt


def _only_indices_differ(p: sp.Basic, d: sp.Basic) -> bool:
    if isinstance(p, sp.Indexed) and isinstance(d, sp.Indexed):
        return True
    if isinstance(p, sp.KroneckerDelta) and isinstance(d, sp.KroneckerDelta):
        return True
    return isinstance(p, sp.Symbol) and isinstance(d, sp.Symbol)


def _small(e: sp.Basic, n: int) -> sp.Basic:
    rep = {s: sp.Integer(n) for s in e.free_symbols if width_layer(s) is not None}
    return e.xreplace(rep)


def counterexample(printed: sp.Basic, derived: sp.Basic, ctx: Context, n: int = 2) -> str | None:
    """:func:`find_counterexample` as one line of text (LaTeX widths), or None."""
    found = find_counterexample(printed, derived, ctx, n)
    return None if found is None else found.render()


def find_counterexample(
    printed: sp.Basic, derived: sp.Basic, ctx: Context, n: int = 2
) -> Counterexample | None:
    """Concrete index values at which a printed member differs from the derived one.

    Members are compared position by position (a limit claim by its finite-width side and
    its limit) with every width set to ``n`` and every free index (both sides' indices, the
    printed form's stray ones included) running over ``1..n``; sums are written out and
    the network objects, expectations and named kernels are kept as opaque symbols. Returns
    None when the forms have different shapes or no difference shows.
    """
    pm, dm = members(printed), members(derived)
    if len(pm) != len(dm):
        return None
    for pos, (p, d) in enumerate(zip(pm, dm, strict=True)):
        if p == d or not isinstance(p, sp.Expr) or not isinstance(d, sp.Expr):
            continue
        if unknown_symbols(p):
            return None
        a = _separating(p, d, ctx, n)
        if a is None:
            continue
        widths = sorted(
            (s for s in p.free_symbols | d.free_symbols if width_layer(s) is not None),
            key=latex,
        )
        anchored = pos > 0 and all(
            symbolic_equal(q, e, ctx) for q, e in zip(pm[:pos], dm[:pos], strict=True)
        )
        return Counterexample(
            tuple((w, n) for w in widths),
            tuple((s, int(v)) for s, v in a.items()),
            _member_name(printed, pos, len(pm)),
            pos,
            anchored,
        )
    return None


def _separating(p: sp.Expr, d: sp.Expr, ctx: Context, n: int) -> dict | None:
    """The first assignment of the free indices (values 1..n) at which p and d differ."""
    free = sorted((p.free_symbols | d.free_symbols) & set(ctx.ranges), key=lambda s: s.name)
    for combo in itertools.product(range(1, n + 1), repeat=len(free)):
        a = {s: sp.Integer(v) for s, v in zip(free, combo, strict=True)}
        if any(a.get(u) == a.get(v) and u in a for u, v in ctx.unequal):
            continue
        # subs, not xreplace: an index free here may be bound by a sum elsewhere
        diff = _small(p, n).subs(a) - _small(d, n).subs(a)
        if sp.expand(expand_sums(diff)) != 0:
            return a
    return None


def _member_name(stmt: sp.Basic, pos: int, count: int) -> str:
    if isinstance(stmt, Tends):
        return "finite-width side" if pos == 0 else "limit"
    if count == 2:
        return "left-hand side" if pos == 0 else "right-hand side"
    return f"member {pos + 1}"
