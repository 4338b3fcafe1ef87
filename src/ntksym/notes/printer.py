r"""A LaTeX printer in the notation of the NTK notes.

SymPy's :class:`~sympy.printing.latex.LatexPrinter` prints the engine's objects in its
own way: ``{f}_{k}``, ``\\sigma{\\left(z \\right)}``, sums over several indices as a
``\\substack`` of inequalities, machine-made summation indices such as ``j_{593}``,
``\\frac{d}{d\\theta}`` for derivatives and ``cases`` blocks for index ranges. The
:class:`NotesPrinter` below prints them as a teacher writes them on a board:
``w^{(l)}_{ki}``, ``x'_i``, ``\\delta_{kk'}``, ``\\dot{\\sigma}(\\cdot)``, ``\\Theta_\\infty``,
nested sums with limits, readable summation indices, ``\\frac{1}{\\sqrt{n_l}}\\sum\\cdots``.

The printer is a subclass of the engine's
:class:`~ntksym.derive.symbols.SeedLatexPrinter`: it reads the same symbol registry (what
each ``IndexedBase`` stands for) and the same name tables (``KIND_TEX``, ``NAME_TEX``,
``SYMBOL_TEX``), and changes only the layout (superscript before subscript, plain
parentheses, readable summation indices); it never parses names of registered objects.
"""

from __future__ import annotations

import re
from typing import Any

import sympy as sp
from sympy.core.function import AppliedUndef
from sympy.printing.latex import LatexPrinter, greek_letters_set

from ntksym.derive import symbols as S
from ntksym.derive.symbols import SeedLatexPrinter
from ntksym.notes.order import reading_order_factors, reading_order_terms

__all__ = ["NotesPrinter", "is_machine", "notes_latex", "statement_members"]

#: Names of summation indices made by the engine (``j_593``, ``s_0``, ``s_0'``) or by
#: SymPy (``Dummy``), which the printer replaces by readable letters.
_MACHINE = re.compile(r"^[a-z]_\{?\d+\}?'*$")
#: Readable index letters, tried in this order after the machine index's own letter.
_POOL = ("i", "j", "m", "r", "s", "q", "t", "i'", "j'", "m'", "r'", "s'")


def is_machine(v: sp.Symbol) -> bool:
    """Whether ``v`` is a summation index made by the engine or by SymPy (not a reader's)."""
    return isinstance(v, sp.Dummy) or bool(_MACHINE.match(v.name))


def _is_range_condition(cond: sp.Basic) -> bool:
    """Whether a Piecewise condition only bounds integer indices (``m <= n_0``)."""
    if cond is sp.true:
        return True
    if isinstance(cond, (sp.And, sp.Or)):
        return all(_is_range_condition(a) for a in cond.args)
    if isinstance(cond, sp.core.relational.Relational):
        return all(s.is_integer for s in cond.free_symbols)
    return False


def _minmax_args(expr: sp.Basic) -> list[sp.Basic]:
    """Arguments of Max/Min with numbers first, as one writes max(0, u)."""
    return sorted(expr.args, key=lambda a: (not a.is_number, sp.default_sort_key(a)))


def statement_members(stmt: sp.Basic) -> list[sp.Basic]:
    """The members ``a, b, c, ...`` of a statement ``a = b = c`` (or ``a -> b``).

    A :class:`~ntksym.derive.ForAll` gives the members of its statement; anything else
    is a single member.
    """
    from ntksym.derive import Chain, ForAll, Tends

    if isinstance(stmt, ForAll):
        return statement_members(stmt.statement)
    if isinstance(stmt, (Chain, sp.Eq)):
        return list(stmt.args)
    if isinstance(stmt, Tends):
        return [stmt.args[0], stmt.args[1]]
    return [stmt]


class NotesPrinter(SeedLatexPrinter):
    r"""LaTeX printer for the teaching notes (a subclass of the engine's printer).

    Settings (besides SymPy's):
        dot_derivative: print ``sigma'`` as ``\dot{\sigma}`` (the seed's notation) when
            True, as ``\sigma'`` when False.
        matrix_ellipsis: put ``\vdots`` between the rows of a column vector (the seed
            displays vectors by their first, k-th and last entries).
        highlight: subexpressions printed inside ``\hl{...}`` (a misprint's differing
            subterms; the notes define ``\hl`` as a coloured box).

    Objects of the derivation engine (``E``, ``GaussE``, ``Tends``, ``PSum``, ``Dim``,
    ``Chain``, ``ForAll``) are printed here rather than by their own ``_latex``
    methods, so the whole statement uses one notation.
    """

    printmethod = "_ntksym_notes_latex"
    _default_settings: dict[str, Any] = {
        **LatexPrinter._default_settings,
        "dot_derivative": True,
        "matrix_ellipsis": True,
        "highlight": (),
    }

    def __init__(self, settings: dict[str, Any] | None = None) -> None:
        super().__init__(settings)
        self._taken: list[set[str]] = []
        self._marked = frozenset(self._settings["highlight"])

    def _print(self, expr: Any, **kwargs: Any) -> str:
        out = super()._print(expr, **kwargs)
        if self._marked and isinstance(expr, sp.Basic) and expr in self._marked:
            return r"\hl{" + out + "}"
        return out

    # ------------------------------------------------------------------ entry point
    def doprint(self, expr: Any) -> str:
        """Print ``expr``; summation indices are renamed apart from its free symbols."""
        names = set()
        if isinstance(expr, sp.Basic):
            names = {s.name for s in expr.free_symbols if isinstance(s, sp.Symbol)}
        self._taken = [names]
        return super().doprint(expr)

    # ------------------------------------------------------------------ symbols
    def _print_Symbol(self, expr: sp.Symbol, style: str = "plain") -> str:
        if "'" in expr.name and expr.name not in S.SYMBOL_TEX:
            return expr.name
        return super()._print_Symbol(expr, style=style)

    def _print_Indexed(self, expr: sp.Indexed) -> str:
        idx = "".join(self._print(i) for i in expr.indices)
        info = S.OBJECTS.get(expr.base)
        if info is None:
            return f"{self._print(expr.base.label)}_{{{idx}}}"
        name = S.KIND_TEX[info.kind]
        if info.kind == "x":
            return ("x'" if info.prime else "x") + f"_{{{idx}}}"
        arg = ("(x')" if info.prime else "(x)") if info.kind in ("a", "z") else ""
        return f"{name}^{{({self._print(info.layer)})}}_{{{idx}}}{arg}"

    # ------------------------------------------------------------------ functions
    def _apply(self, name: str, args: str, exp: str | None) -> str:
        # plain parentheses around plain arguments (sin(u), max(0, u)); sized ones otherwise
        if re.fullmatch(r"[A-Za-z0-9 ,.'\-]+", args):
            tex = rf"{name}({args})"
        else:
            tex = rf"{name}\left({args}\right)"
        return tex if exp is None else rf"{tex}^{{{exp}}}"

    def _print_TrigonometricFunction(self, expr: sp.Function, exp: str | None = None) -> str:
        name = expr.func.__name__
        if name in ("sin", "cos", "tan", "sinh", "cosh", "tanh") and len(expr.args) == 1:
            head = "\\" + name + ("" if exp is None else f"^{{{exp}}}")  # \cos^{2}(u)
            return self._apply(head, self._print(expr.args[0]), None)
        return super()._print_Function(expr, exp)

    # SymPy's printer dispatches functions on their own class name only
    _print_sin = _print_cos = _print_tan = _print_TrigonometricFunction
    _print_sinh = _print_cosh = _print_tanh = _print_TrigonometricFunction

    def _print_Max(self, expr: sp.Max, exp: str | None = None) -> str:
        return self._apply(r"\max", ", ".join(self._print(a) for a in _minmax_args(expr)), exp)

    def _print_Min(self, expr: sp.Min, exp: str | None = None) -> str:
        return self._apply(r"\min", ", ".join(self._print(a) for a in _minmax_args(expr)), exp)

    def _print_Abs(self, expr: sp.Abs, exp: str | None = None) -> str:
        tex = rf"\lvert {self._print(expr.args[0])}\rvert"
        return tex if exp is None else rf"{tex}^{{{exp}}}"

    def _print_Function(self, expr: sp.Function, exp: str | None = None) -> str:
        named = self._named(expr, exp)
        if named is not None:
            return named
        name = expr.func.__name__
        args = ", ".join(self._print(a) for a in expr.args)
        if name == "sigma":
            return self._apply(r"\sigma", args, exp)
        if name == "sigmadot":
            return self._apply(self._sigma_prime(), args, exp)
        if isinstance(expr, AppliedUndef):
            return self._undefined(name, args, exp)
        return LatexPrinter._print_Function(self, expr, exp)

    def _undefined(self, name: str, args: str, exp: str | None) -> str:
        """An undefined function: ``f(t)``, a Greek name, ``f_0(x)``, or E as an expectation."""
        if name == "E":
            tex = r"\mathbb{E}\left[" + args + r"\right]"
            return tex if exp is None else rf"{tex}^{{{exp}}}"
        if len(name) == 1 or name in greek_letters_set or "_" in name or "^" in name:
            head = LatexPrinter._print_Symbol(self, sp.Symbol(name))
        else:
            head = rf"\mathrm{{{name}}}"
        return self._apply(head, args, exp)

    def _print_AllParams(self, expr: sp.Basic, exp: str | None = None) -> str:
        body = self._print(expr.args[0])
        if isinstance(expr.args[0], (sp.Add, sp.Mul)):
            body = rf"\left({body}\right)"
        return r"\sum_{p} " + body

    def _print_Tr(self, expr: sp.Basic) -> str:
        # the engine's Tr is the transpose of a row vector (SymPy's own Tr is a trace)
        return self._print(expr.args[0]) + r"^{\mathsf T}"

    def _print_Mat(self, expr: sp.Basic) -> str:
        e, (r, lo, hi), (c, lo2, hi2) = expr.args
        rows = rf"{self._print(r)}={self._print(lo)},\dots,{self._print(hi)}"
        cols = rf"{self._print(c)}={self._print(lo2)},\dots,{self._print(hi2)}"
        return rf"\Bigl[{self._print(e)}\Bigr]_{{\substack{{{rows}\\ {cols}}}}}"

    def _sigma_prime(self) -> str:
        return r"\dot{\sigma}" if self._settings["dot_derivative"] else r"\sigma'"

    def _print_Derivative(self, expr: sp.Derivative) -> str:
        f = expr.expr
        # sigma'(u) written as a derivative of the abstract activation
        if (
            isinstance(f, sp.Function)
            and f.func.__name__ == "sigma"
            and len(expr.variable_count) == 1
            and expr.variable_count[0][1] == 1
            and f.args == (expr.variable_count[0][0],)
        ):
            return self._apply(self._sigma_prime(), self._print(f.args[0]), None)
        if len(expr.variable_count) == 1 and expr.variable_count[0][1] == 1:
            v = expr.variable_count[0][0]
            vt = self._print(v)
            if isinstance(f, (sp.Indexed, sp.Function, sp.Symbol)):
                return rf"\frac{{\partial {self._print(f)}}}{{\partial {vt}}}"
            return rf"\frac{{\partial}}{{\partial {vt}}}\left({self._print(f)}\right)"
        return super()._print_Derivative(expr)

    def _print_Subs(self, subs: sp.Subs) -> str:
        expr, old, new = subs.args
        # Subs(Derivative(sigma(_x), _x), _x, z) is sigma'(z)
        if (
            isinstance(expr, sp.Derivative)
            and len(old) == 1
            and isinstance(expr.expr, sp.Function)
            and expr.expr.func.__name__ == "sigma"
            and expr.expr.args == (old[0],)
            and expr.variable_count == ((old[0], 1),)
        ):
            return self._apply(self._sigma_prime(), self._print(new[0]), None)
        return self._print(expr.xreplace(dict(zip(old, new, strict=True))))

    def _print_Heaviside(self, expr: sp.Heaviside, exp: str | None = None) -> str:
        return self._apply("H", self._print(expr.args[0]), exp)

    def _print_sign(self, expr: sp.sign, exp: str | None = None) -> str:
        return self._apply(r"\mathrm{sign}", self._print(expr.args[0]), exp)

    def _print_acos(self, expr: sp.acos, exp: str | None = None) -> str:
        return self._apply(r"\arccos", self._print(expr.args[0]), exp)

    def _print_asin(self, expr: sp.asin, exp: str | None = None) -> str:
        return self._apply(r"\arcsin", self._print(expr.args[0]), exp)

    def _print_erf(self, expr: sp.erf, exp: str | None = None) -> str:
        return self._apply(r"\mathrm{erf}", self._print(expr.args[0]), exp)

    # ------------------------------------------------------------------ sums, products
    def _readable(self, v: sp.Symbol, body: sp.Basic, lo: sp.Basic, hi: sp.Basic) -> sp.Symbol:
        if not is_machine(v):
            return v
        used = set().union(*self._taken) | {
            s.name
            for s in (body.free_symbols | lo.free_symbols | hi.free_symbols)
            if isinstance(s, sp.Symbol)
        }
        first = v.name.split("_")[0]
        for name in (first, *_POOL):
            if name not in used:
                return sp.Symbol(name, integer=True, positive=True)
        return v

    def _print_Sum(self, expr: sp.Sum) -> str:
        body = expr.function
        heads = []
        added: set[str] = set()
        self._taken.append(added)
        try:
            for v, lo, hi in expr.limits:
                new = self._readable(v, body, lo, hi)
                if new != v:
                    body = body.xreplace({v: new})
                added.add(new.name)
                heads.append(
                    rf"\sum_{{{self._print(new)}={self._print(lo)}}}^{{{self._print(hi)}}}"
                )
            inner = self._print(body)
        finally:
            self._taken.pop()
        if isinstance(body, sp.Add):
            inner = rf"\left({inner}\right)"
        # SymPy's first limit is the innermost sum
        return " ".join(reversed(heads)) + " " + inner

    def _print_Mul(self, expr: sp.Mul) -> str:
        # (1/sqrt(n)) * sum ...: keep the normalisation in front, as in the notes
        if expr.has(sp.Sum):
            den = [f for f in expr.args if f.is_Pow and f.exp.is_negative and not f.has(sp.Sum)]
            num = [f for f in expr.args if f not in den]
            if den:
                coeff = sp.Mul(*[f for f in num if f.is_Number])
                rest = sp.Mul(*[f for f in num if not f.is_Number])
                denom = sp.Mul(*[sp.Pow(f.base, -f.exp) for f in den])
                sign = "- " if coeff.is_negative else ""
                c = abs(coeff)
                frac = rf"\frac{{{self._print(c.p if c.is_Rational else c)}}}"
                frac += rf"{{{self._print(denom * (c.q if c.is_Rational else 1))}}}"
                inner = self._print(rest)
                if isinstance(rest, sp.Add):
                    inner = rf"\left({inner}\right)"
                return f"{sign}{frac} {inner}"
        return self._in_reading_order(expr) or super()._print_Mul(expr)

    def _in_reading_order(self, expr: sp.Mul) -> str | None:
        """A product in the seed's factor order, or None when SymPy's order is the same.

        See :mod:`ntksym.notes.order` (x before x', layer kernels by layer).
        """
        coeff, rest = expr.as_coeff_Mul()
        factors = rest.as_ordered_factors() if isinstance(rest, sp.Mul) else [rest]
        if any(f.is_Pow and f.exp.is_negative for f in factors):
            return None  # a fraction: SymPy's layout
        ordered = reading_order_factors(factors, self._print)
        if ordered == factors:
            return None
        last = len(ordered) - 1
        parts = []
        for n, f in enumerate(ordered):
            tex = self._print(f)
            if self._needs_mul_brackets(f, first=n == 0, last=n == last):
                tex = rf"\left({tex}\right)"
            parts.append(tex)
        body = " ".join(parts)
        if coeff == 1:
            return body
        return ("- " if coeff == -1 else self._print(coeff) + " ") + body

    def _as_ordered_terms(self, expr: sp.Basic, order: Any = None) -> list[sp.Basic]:
        # the terms of a sum over layers: earliest layer first (ntksym.notes.order)
        return reading_order_terms(super()._as_ordered_terms(expr, order=order))

    def _print_Piecewise(self, expr: sp.Piecewise) -> str:
        # A range condition such as m <= n_0 holds wherever the index is used: print
        # the value rather than a cases block.
        if all(_is_range_condition(c) for _, c in expr.args) and expr.args[-1][1] is sp.true:
            if len(expr.args) == 2 and expr.args[-1][0] == 0:
                return self._print(expr.args[0][0])
        return super()._print_Piecewise(expr)

    def _print_ImmutableDenseMatrix(self, expr: sp.MatrixBase) -> str:
        if self._settings["matrix_ellipsis"] and expr.shape[1] == 1 and expr.shape[0] >= 3:
            rows = [self._print(e) for e in expr]
            body = r" \\ \vdots \\ ".join(rows)
            return r"\begin{bmatrix}" + body + r"\end{bmatrix}"
        return super()._print_ImmutableDenseMatrix(expr)

    _print_ImmutableMatrix = _print_ImmutableDenseMatrix

    # ------------------------------------------------------------------ engine objects
    def _print_E(self, expr: sp.Function, exp: str | None = None) -> str:
        sub = ""
        if len(expr.args) > 1:
            m = self._print(expr.args[1])
            sub = "_{w^{(" + m + ")}, b^{(" + m + ")}}"
        return r"\mathbb{E}" + sub + r"\left[" + self._print(expr.args[0]) + r"\right]"

    def _print_GaussE(self, expr: sp.Function, exp: str | None = None) -> str:
        f, uu, vv, layer = expr.args
        gx, gxp = sp.Symbol("g(x)"), sp.Symbol("g(x')")
        body = self._print(f.xreplace({uu: gx, vv: gxp}))
        return (
            r"\mathbb{E}_{g\sim\mathcal{N}(0,\Sigma^{("
            + self._print(layer)
            + r")})}\left["
            + body
            + r"\right]"
        )

    def _print_Tends(self, expr: sp.Function, exp: str | None = None) -> str:
        a, c, n = (self._print(t) for t in expr.args)
        return rf"{a} \xrightarrow[{n}\to\infty]{{}} {c}"

    def _print_PSum(self, expr: sp.Function, exp: str | None = None) -> str:
        body = self._print(expr.args[0])
        if isinstance(expr.args[0], (sp.Add, sp.Mul)):
            body = rf"\left({body}\right)"
        return r"\sum_{p=1}^{|\tilde{\theta}|} " + body

    def _print_Dim(self, expr: sp.Function, exp: str | None = None) -> str:
        return r"\dim " + self._print(expr.args[0])

    def _print_Chain(self, expr: sp.Basic) -> str:
        return " = ".join(self._print(a) for a in expr.args)

    def _print_ForAll(self, expr: sp.Basic) -> str:
        v, lo, hi = expr.domain
        return (
            self._print(expr.statement)
            + rf",\quad {self._print(v)} = {self._print(lo)},\dots,{self._print(hi)}"
        )

    def _print_Basic(self, expr: sp.Basic) -> str:
        # other engine objects (vectors, matrices, ...) print themselves through this
        # printer, so their entries still use the notes' notation
        own = getattr(expr, "_latex", None)
        if own is not None:
            return own(self)
        return super()._print_Basic(expr)

    def _print_Tuple(self, expr: sp.Tuple) -> str:
        return r",\quad ".join(self._print(a) for a in expr.args)


def notes_latex(expr: Any, **settings: Any) -> str:
    r"""LaTeX for ``expr`` in the notation of the notes.

    Args:
        expr: A SymPy expression or statement of the derivation engine (``None`` gives
            an empty string).
        **settings: :class:`NotesPrinter` settings (``dot_derivative=False`` prints
            ``\sigma'`` instead of ``\dot{\sigma}``).

    Returns:
        The LaTeX string (math mode, without delimiters).

    Example:
        >>> import sympy as sp
        >>> notes_latex(sp.KroneckerDelta(sp.Symbol("k"), sp.Symbol("k'")))
        "\\delta_{kk'}"
    """
    if expr is None:
        return ""
    return NotesPrinter(settings).doprint(expr)
