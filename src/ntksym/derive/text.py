r"""Structured text: words and mathematics kept apart, printed as LaTeX or as plain text.

The engine's check details, rule descriptions and step notes are :class:`Text` values: a
sequence of pieces, each either a plain word string or a :class:`Math` piece. A
:class:`Math` piece holds a SymPy object (printed by the engine's LaTeX printer, by the
notes' printer, or by :func:`ntksym.derive.plaintext.plain`) or a small typed record for
a formula that is not a SymPy object (:class:`Measured`, :class:`Number`,
:class:`RateBound`, :class:`Config`, :class:`Shape`, or an authored :class:`Tex` with its
LaTeX and its plain form given explicitly). Nothing is ever parsed back from a string:
a word string is rendered as words (escaped by the LaTeX and Markdown writers), never
guessed into mathematics.

>>> t = text("fails at {c}; {r}", c=Config((("L", 1),), (1, 2)), r=Measured("rate", -0.49, 0.02))
>>> t.plain()
'fails at L=1 n=(1,2); rate -0.490 +- 0.020'
>>> t.latex()
'fails at $L=1,\\ n=(1,2)$; $\\text{rate} = -0.490 \\pm 0.020$'
"""

from __future__ import annotations

import string
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import sympy as sp

from ntksym.derive.plaintext import plain
from ntksym.derive.symbols import latex
from ntksym.errors import InputError

__all__ = [
    "Config",
    "Formula",
    "Math",
    "Measured",
    "Number",
    "RateBound",
    "Shape",
    "Tex",
    "Text",
    "as_text",
    "text",
]


@runtime_checkable
class Formula(Protocol):
    """A formula that is not a SymPy object: it knows its LaTeX and its plain form."""

    def latex(self) -> str:
        """LaTeX, math mode, without delimiters."""

    def plain(self) -> str:
        """One line of ASCII for a terminal."""


@dataclass(frozen=True)
class Tex:
    r"""An authored formula: LaTeX and a plain form, both written by the author.

    >>> Tex(r"n_1, \dots, n_{l-1} \to \infty", "n_1, ..., n_{l-1} -> oo").plain()
    'n_1, ..., n_{l-1} -> oo'
    """

    tex: str
    text: str

    def __post_init__(self) -> None:
        for what, s in (("LaTeX", self.tex), ("plain form", self.text)):
            if not isinstance(s, str) or not s.strip():
                raise InputError(f"Tex needs a non-empty {what} string, got {s!r}")
        if "$" in self.tex:
            raise InputError(
                f"Tex LaTeX {self.tex!r} contains '$'; give the formula without delimiters"
            )

    def latex(self) -> str:
        """The LaTeX as written."""
        return self.tex

    def plain(self) -> str:
        """The plain form as written."""
        return self.text


def _sci_tex(s: str) -> str:
    r"""``3.8e-26`` -> ``3.8\times 10^{-26}`` (other numbers unchanged)."""
    if "e" not in s:
        return s
    mant, exp = s.split("e")
    return rf"{mant}\times 10^{{{int(exp)}}}"


@dataclass(frozen=True)
class Number:
    r"""A number printed with a format (``.1e`` gives ``3.8e-26`` / ``3.8\times 10^{-26}``)."""

    value: float
    fmt: str = ".1e"

    def plain(self) -> str:
        """The formatted number."""
        return format(self.value, self.fmt)

    def latex(self) -> str:
        """The number, with a power of ten for scientific notation."""
        return _sci_tex(self.plain())


#: LaTeX of the measured quantities :class:`Measured` knows (its ``name``).
QUANTITY_TEX = {
    "rate": r"\text{rate}",
    "chi2/dof": r"\chi^2/\mathrm{dof}",
    "distance": r"\text{distance}",
    "worst rel. diff": r"\text{worst rel. diff}",
}


@dataclass(frozen=True)
class Measured:
    """A measured value with an optional error bar: ``rate -0.493 +- 0.005``.

    Attributes:
        name: a key of :data:`QUANTITY_TEX` (``"rate"``, ``"chi2/dof"``, ...).
        value: the value; err: its standard error (or None).
        fmt: the format of both numbers.
    """

    name: str
    value: float
    err: float | None = None
    fmt: str = ".3f"

    def __post_init__(self) -> None:
        if self.name not in QUANTITY_TEX:
            raise InputError(
                f"unknown measured quantity {self.name!r}; known: {', '.join(QUANTITY_TEX)}"
            )

    def plain(self) -> str:
        """``rate -0.493 +- 0.005``."""
        err = "" if self.err is None else f" +- {format(self.err, self.fmt)}"
        return f"{self.name} {format(self.value, self.fmt)}{err}"

    def latex(self) -> str:
        r"""``\text{rate} = -0.493 \pm 0.005``."""
        err = "" if self.err is None else rf" \pm {_sci_tex(format(self.err, self.fmt))}"
        return f"{QUANTITY_TEX[self.name]} = {_sci_tex(format(self.value, self.fmt))}{err}"


@dataclass(frozen=True)
class RateBound:
    """The acceptance criterion of a fitted rate: ``|rate + 1/2| <= 3 s.e. + 0.02``."""

    sigmas: int
    allowance: float = 0.0

    def plain(self) -> str:
        """ASCII form."""
        tol = f" + {self.allowance}" if self.allowance else ""
        return f"|rate + 1/2| <= {self.sigmas} s.e.{tol}"

    def latex(self) -> str:
        """LaTeX form."""
        tol = f" + {self.allowance}" if self.allowance else ""
        return rf"\lvert\text{{rate}} + \tfrac12\rvert \le {self.sigmas}\,\text{{s.e.}}{tol}"


@dataclass(frozen=True)
class Shape:
    r"""The shape of an array: ``3x1`` / ``3\times 1``."""

    rows: int
    cols: int

    def plain(self) -> str:
        """``3x1``."""
        return f"{self.rows}x{self.cols}"

    def latex(self) -> str:
        r"""``3\times 1``."""
        return rf"{self.rows}\times {self.cols}"


def _atom_plain(v: Any) -> str:
    return plain(v) if isinstance(v, sp.Basic) else str(v)


def _atom_latex(v: Any) -> str:
    return latex(v) if isinstance(v, sp.Basic) else str(v)


@dataclass(frozen=True)
class Config:
    """Concrete sizes and index values of a check: ``L=1 n=(1,2,1) k=1, k'=1``.

    Attributes:
        layers: ``(name, value)`` pairs such as ``(L, 1)`` (names: SymPy symbols or str).
        widths: the widths ``n_0, n_1, ...`` in order (empty: none).
        values: ``(index, value)`` pairs (SymPy objects, e.g. ``theta_p -> w^(0)_11``).
    """

    layers: tuple[tuple[Any, Any], ...] = ()
    widths: tuple[int, ...] = ()
    values: tuple[tuple[Any, Any], ...] = ()

    def _groups(self, atom: Callable[[Any], str], sep: str) -> list[str]:
        out = [sep.join(f"{atom(k)}={atom(v)}" for k, v in self.layers)]
        out.append("n=(" + ",".join(str(n) for n in self.widths) + ")" if self.widths else "")
        out.append(sep.join(f"{atom(k)}={atom(v)}" for k, v in self.values))
        return [g for g in out if g]

    def plain(self) -> str:
        """``L=1 n=(1,2,1) k=1, k'=1``."""
        return " ".join(self._groups(_atom_plain, ", "))

    def latex(self) -> str:
        r"""``L=1,\ n=(1,2,1),\ k=1,\ k'=1``."""
        return r",\ ".join(self._groups(_atom_latex, r",\ "))


@dataclass(frozen=True)
class Math:
    """One formula of a :class:`Text`: a SymPy object or a :class:`Formula` record."""

    value: Any

    def __post_init__(self) -> None:
        if isinstance(self.value, Text) or not isinstance(self.value, (sp.Basic, Formula)):
            raise InputError(
                f"a formula is a SymPy object or a record with latex() and plain(), "
                f"got {type(self.value).__name__}"
            )

    def latex(self, printer: Callable[[sp.Basic], str] = latex) -> str:
        """LaTeX without delimiters; ``printer`` prints SymPy objects."""
        if isinstance(self.value, sp.Basic):
            return printer(self.value)
        return self.value.latex()

    def plain(self) -> str:
        """Plain text (:func:`ntksym.derive.plaintext.plain` for SymPy objects)."""
        if isinstance(self.value, sp.Basic):
            return plain(self.value)
        return self.value.plain()


Piece = str | Math


def _pieces(parts: Iterable[Any]) -> Iterator[Piece]:
    for p in parts:
        if p is None:
            continue
        if isinstance(p, Text):
            yield from p.pieces
        elif isinstance(p, str):
            if p:
                yield p
        elif isinstance(p, Math):
            yield p
        elif isinstance(p, (int, float)) and not isinstance(p, bool):
            yield str(p)
        elif isinstance(p, (sp.Basic, Formula)):
            yield Math(p)
        else:
            raise InputError(
                f"a text piece is a string, a SymPy object, a formula record or a Text, "
                f"got {type(p).__name__}"
            )


def _merge(pieces: Iterable[Piece]) -> tuple[Piece, ...]:
    out: list[Piece] = []
    for p in pieces:
        if isinstance(p, str) and out and isinstance(out[-1], str):
            out[-1] += p
        else:
            out.append(p)
    return tuple(out)


def _same(s: str) -> str:
    return s


def _legacy(m: Math) -> str:
    return "$" + m.latex() + "$" if isinstance(m.value, sp.Basic) else m.plain()


class Text:
    """Words and formulas; printed as LaTeX (notes) or plain text (terminal).

    ``str(text)`` is the engine's one-line form, as the JSON output and older callers
    know it: words, SymPy objects as ``$...$`` engine LaTeX, records in their plain form.
    ``s in text`` searches that form and the plain one.
    """

    __slots__ = ("pieces",)

    def __init__(self, *parts: Any) -> None:
        self.pieces: tuple[Piece, ...] = _merge(_pieces(parts))

    # ------------------------------------------------------------------ printing
    def render(self, math: Callable[[Math], str], words: Callable[[str], str] = _same) -> str:
        """Each formula through ``math``, each word string through ``words``, joined."""
        return "".join(math(p) if isinstance(p, Math) else words(p) for p in self.pieces)

    def plain(self) -> str:
        """One line of plain text for a terminal (no LaTeX)."""
        return self.render(Math.plain)

    def latex(self, printer: Callable[[sp.Basic], str] = latex) -> str:
        """Words unescaped and formulas as ``$...$`` LaTeX (``printer`` for SymPy)."""
        return self.render(lambda m: "$" + m.latex(printer) + "$")

    def __str__(self) -> str:
        return self.render(_legacy)

    def as_json(self) -> list[Any]:
        """The pieces for JSON: a string per word piece, ``{latex, plain}`` per formula."""
        return [
            {"latex": p.latex(), "plain": p.plain()} if isinstance(p, Math) else p
            for p in self.pieces
        ]

    # ------------------------------------------------------------------ structure
    def map_math(self, fn: Callable[[sp.Basic], sp.Basic]) -> Text:
        """A copy with every SymPy formula replaced by ``fn(formula)``."""
        return Text(
            *(
                Math(fn(p.value)) if isinstance(p, Math) and isinstance(p.value, sp.Basic) else p
                for p in self.pieces
            )
        )

    def symbols(self) -> set[sp.Symbol]:
        """The symbols of the SymPy formulas, bound summation indices included."""
        out: set[sp.Symbol] = set()
        for p in self.pieces:
            if isinstance(p, Math) and isinstance(p.value, sp.Basic):
                out |= p.value.atoms(sp.Symbol)
        return out

    def clauses(self, sep: str = "; ") -> list[Text]:
        """Split at ``sep`` in the word pieces (formulas are never split)."""
        out: list[list[Piece]] = [[]]
        for p in self.pieces:
            if isinstance(p, Math):
                out[-1].append(p)
                continue
            first, *rest = p.split(sep)
            out[-1].append(first)
            out.extend([r] for r in rest)
        return [Text(*c) for c in out]

    @staticmethod
    def join(sep: str, items: Iterable[Any]) -> Text:
        """``sep`` between the items (each a Text, string, SymPy object or record)."""
        parts: list[Any] = []
        for n, item in enumerate(items):
            if n:
                parts.append(sep)
            parts.append(item)
        return Text(*parts)

    # ------------------------------------------------------------------ protocol
    def __add__(self, other: Any) -> Text:
        return Text(self, other)

    def __radd__(self, other: Any) -> Text:
        return Text(other, self)

    def __bool__(self) -> bool:
        return bool(self.pieces)

    def __contains__(self, item: str) -> bool:
        return item in str(self) or item in self.plain()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Text) and self.pieces == other.pieces

    def __hash__(self) -> int:
        return hash(self.pieces)

    def __repr__(self) -> str:
        return f"Text{self.pieces!r}"


def as_text(value: Any) -> Text:
    """A :class:`Text` from a Text, a plain string (words, never parsed) or None."""
    return value if isinstance(value, Text) else Text(value)


def text(template: str, **pieces: Any) -> Text:
    r"""A :class:`Text` from words with ``{name}`` slots filled by the named pieces.

    The template is split at its slots (as :meth:`str.format` would, ``{{`` for a brace);
    a slot takes a SymPy object, a formula record (:class:`Tex`, ...), a Text or words.

    >>> import sympy as sp
    >>> text("at {c} the rule needs {d}", c=sp.Symbol("l"), d=Tex(r"l \ge 1", "l >= 1")).plain()
    'at l the rule needs l >= 1'

    Raises:
        InputError: a slot names no given piece, has a format spec or conversion, or a
            given piece is not used.
    """
    parts: list[Any] = []
    used: set[str] = set()
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise InputError(f"bad text template {template!r}: {exc}") from exc
    for literal, field, spec, conv in parsed:
        parts.append(literal)
        if field is None:
            continue
        if field not in pieces or spec or conv:
            raise InputError(
                f"text template slot {{{field}}} must name one of the given pieces "
                f"({', '.join(sorted(pieces)) or 'none given'}) without format spec"
            )
        used.add(field)
        parts.append(pieces[field])
    unused = set(pieces) - used
    if unused:
        raise InputError(f"text pieces {sorted(unused)} have no slot in {template!r}")
    return Text(*parts)
