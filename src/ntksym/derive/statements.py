"""Statement shapes: an ordered chain, a statement over a range, and their pairs.

``Chain`` is ``a = b = c`` kept in order, ``ForAll`` a statement for ``var = lo..hi``, and
:func:`pairs` the ``(lhs, rhs)`` pairs any statement asserts.
"""

from __future__ import annotations

import itertools
from typing import Any

import sympy as sp

from ntksym.derive.symbols import Tends, latex

__all__ = ["Chain", "ForAll", "chain_members", "members", "pairs", "statement_parts"]


class Chain(sp.Basic):
    """``a = b = c = ...`` kept in order (``And`` would sort its arguments)."""

    @property
    def lhs(self) -> sp.Expr:
        """First member."""
        return self.args[0]

    @property
    def rhs(self) -> sp.Expr:
        """Last member."""
        return self.args[-1]

    def _latex(self, printer: object) -> str:
        return " = ".join(latex(a) for a in self.args)


class ForAll(sp.Basic):
    """A statement asserted for ``var = lo..hi`` (the seed's "for l = 0,...,L-1")."""

    @property
    def statement(self) -> sp.Basic:
        """The statement."""
        return self.args[0]

    @property
    def domain(self) -> tuple[sp.Symbol, sp.Expr, sp.Expr]:
        """``(var, lo, hi)``."""
        return tuple(self.args[1])

    def _latex(self, printer: Any) -> str:
        v, lo, hi = self.domain
        return latex(self.statement) + rf",\quad {latex(v)} = {latex(lo)},\dots,{latex(hi)}"


def statement_parts(stmt: sp.Basic) -> list[tuple[sp.Expr, sp.Expr]]:
    """The (lhs, rhs) pairs a statement asserts.

    One for ``Eq``/``Tends``, several for a chain written as ``And(Eq, Eq, ...)``.
    """
    if isinstance(stmt, sp.And):
        out: list[tuple[sp.Expr, sp.Expr]] = []
        for a in stmt.args:
            out.extend(statement_parts(a))
        return out
    if isinstance(stmt, (sp.Eq, Tends)):
        return [(stmt.lhs, stmt.rhs)]
    raise TypeError(f"not a statement: {stmt!r}")


def pairs(stmt: sp.Basic) -> list[tuple[sp.Expr, sp.Expr]]:
    """Consecutive (lhs, rhs) pairs of a statement.

    Statements are ``Eq``, ``Tends``, :class:`Chain` or a ``Tuple`` of statements (a
    conjunction in order).
    """
    if isinstance(stmt, sp.Tuple):
        return [p for s in stmt for p in pairs(s)]
    if isinstance(stmt, Chain):
        return list(itertools.pairwise(stmt.args))
    return statement_parts(stmt)


def chain_members(stmt: sp.Basic) -> list[sp.Expr]:
    """``a = b = c`` as ``[a, b, c]`` (for an ``Eq`` simply ``[lhs, rhs]``)."""
    parts = list(itertools.pairwise(stmt.args)) if isinstance(stmt, Chain) else pairs(stmt)
    out = [parts[0][0]]
    for lhs, rhs in parts:
        if lhs != out[-1]:
            out.append(lhs)
        out.append(rhs)
    return out


def members(stmt: sp.Basic) -> list[sp.Basic]:
    """Every member of a statement in order (a limit claim: its two sides)."""
    if isinstance(stmt, Tends):
        return [stmt.lhs, stmt.rhs]
    if isinstance(stmt, sp.Tuple):
        return [m for s in stmt for m in members(s)]
    if isinstance(stmt, Chain):
        return list(stmt.args)
    if isinstance(stmt, sp.Eq):
        return [stmt.lhs, stmt.rhs]
    return [stmt]
