r"""The NTK as a matrix: vectors, outer products, and their exact value at concrete widths.

The seed writes the kernel (5)-(6) as a sum over parameters of tensor products of
gradient vectors, and displays the resulting ``n_L x n_L`` matrix row by row. The objects
here transcribe those displays as printed (including a row displayed in place of the
matrix) and evaluate them exactly for a concrete network:

* :class:`Vec` — the row ``[e_{v=lo}, ..., e_{v=hi}]``; :class:`Tr` — its transpose;
* :class:`Grad` — the gradient ``dF^(L)(theta, x)/d theta_p`` as a column (the seed's
  ``\partial_{\theta_p} F^{(L)}``);
* :class:`Outer` — ``u (x) v`` of two column vectors, ``u v^T``;
* :class:`Mat` — the matrix ``[e]_{r,c}`` with entries given by an expression;
* :class:`Member` — a displayed value followed by ``\in R^{rows x cols}``.

:func:`exact_matrix` builds the network with every parameter an explicit symbol,
computes the reference ``Theta^(L)(x, x') = J(x) J(x')^T`` with SymPy's ``jacobian``
(independently of how the statement assembles it), evaluates the statement's matrix
objects and compares shape and entries.
"""

from __future__ import annotations

from typing import Any

import sympy as sp
from sympy.printing.latex import LatexPrinter

from ntksym.derive.finite_width import concrete_layers, parameters, unfold_all
from ntksym.derive.network import network_key
from ntksym.derive.plaintext import plain
from ntksym.derive.rules import Context, RuleError, rule
from ntksym.derive.statements import pairs
from ntksym.derive.symbols import (
    NAMES,
    PSum,
    alpha_t,
    as_expr,
    theta,
    width,
    width_layer,
)
from ntksym.derive.text import Config, Shape, Tex, Text, text

__all__ = ["AllParams", "Vec", "Tr", "Grad", "Outer", "Mat", "Member", "has_matrix", "exact_matrix"]


class AllParams(PSum):
    """``sum_{p=1}^{P} expr``: the sum over every parameter of the network (5)-(6)."""

    def _latex(self, printer: LatexPrinter) -> str:
        return r"\sum_{p=1}^{P}" + printer.parenthesize(self.args[0], 1000)


class Vec(sp.Expr):
    """The row vector ``[expr at var=lo, ..., expr at var=hi]``."""

    @property
    def expr(self) -> sp.Expr:
        """The entry expression."""
        return self.args[0]

    @property
    def limits(self) -> tuple:
        """``(var, lo, hi)``."""
        return tuple(self.args[1])

    def _latex(self, printer: LatexPrinter) -> str:
        v, lo, hi = self.limits
        first = printer._print(self.expr.xreplace({v: lo}))
        last = printer._print(self.expr.xreplace({v: hi}))
        return r"\left[" + first + r", \cdots, " + last + r"\right]"


class Tr(sp.Expr):
    """The transpose of a vector or matrix object."""

    def _latex(self, printer: LatexPrinter) -> str:
        return printer._print(self.args[0]) + "^{T}"


class Grad(sp.Expr):
    """``dF^(L)(theta, x)/d theta_p`` (``x'`` when ``prime``) as an ``n_L``-column."""

    def __new__(cls, layer: sp.Expr | int, prime: bool = False) -> Grad:  # noqa: D102
        return super().__new__(cls, as_expr(layer), sp.Integer(int(bool(prime))))

    @property
    def layer(self) -> sp.Expr:
        """The depth ``L``."""
        return self.args[0]

    @property
    def prime(self) -> bool:
        """Evaluated at ``x'``."""
        return bool(self.args[1])

    def column(self) -> Tr:
        """The same column written out entrywise."""
        k = sp.Dummy("k", integer=True, positive=True)
        d = sp.Derivative(alpha_t(self.layer, self.prime)[k], theta, evaluate=False)
        return Tr(Vec(d, sp.Tuple(k, 1, width(self.layer))))

    def _latex(self, printer: LatexPrinter) -> str:
        arg = "x'" if self.prime else "x"
        return (
            r"\frac{\partial F^{("
            + printer._print(self.layer)
            + r")}(\theta,"
            + arg
            + r")}{\partial \theta_{p}}"
        )


class Outer(sp.Expr):
    """``u (x) v`` of two column vectors: the matrix ``u v^T``."""

    def _latex(self, printer: LatexPrinter) -> str:
        return printer._print(self.args[0]) + r" \otimes " + printer._print(self.args[1])


class Mat(sp.Expr):
    """The matrix with entry ``expr`` at row ``r`` and column ``c``."""

    def _latex(self, printer: LatexPrinter) -> str:
        e, (r, lo, hi), (c, lo2, hi2) = self.args
        return (
            r"\left["
            + printer._print(e)
            + r"\right]_{"
            + printer._print(r)
            + "="
            + printer._print(lo)
            + r".."
            + printer._print(hi)
            + ",\\,"
            + printer._print(c)
            + "="
            + printer._print(lo2)
            + r".."
            + printer._print(hi2)
            + "}"
        )


class Member(sp.Expr):
    r"""A displayed value claimed to lie in ``R^{rows x cols}``."""

    def _latex(self, printer: LatexPrinter) -> str:
        e, rows, cols = self.args
        return (
            printer._print(e)
            + r" \in \mathbb{R}^{"
            + printer._print(rows)
            + r" \times "
            + printer._print(cols)
            + "}"
        )


MATRIX_TYPES = (Vec, Tr, Grad, Outer, Mat, Member)


def has_matrix(stmt: sp.Basic) -> bool:
    """Whether a statement contains any matrix object of this module."""
    return any(stmt.has(t) for t in MATRIX_TYPES)


# ----------------------------------------------------------------------------- the rule
def _as_column(e: sp.Basic) -> tuple[sp.Expr, tuple] | None:
    """``(entry, (var, lo, hi))`` when ``e`` is a column vector object."""
    if isinstance(e, Grad):
        e = e.column()
    if isinstance(e, Tr) and isinstance(e.args[0], Vec):
        v = e.args[0]
        return v.expr, v.limits
    return None


@rule(
    "outer_product",
    description=text(
        "{f} for column vectors; a sum over {p} moves into entries",
        f=Tex(r"u \otimes v = [u_r v_c]_{r,c}", "u (x) v = [u_r v_c]_{r,c}"),
        p=sp.Symbol("p"),
    ),
)
def outer_product(expr: sp.Expr, ctx: Context) -> sp.Expr:
    """``u (x) v = [u_r v_c]_{r,c}`` for column vectors; a sum over p moves into entries.

    Raises:
        RuleError: a factor of ``(x)`` is not a column vector.
    """

    def expand(o: Outer) -> Mat:
        cu, cv = _as_column(o.args[0]), _as_column(o.args[1])
        if cu is None or cv is None:
            raise RuleError(f"outer product of non-column vectors: {plain(o)}")
        (eu, (ru, lo, hi)), (ev, (rv, lo2, hi2)) = cu, cv
        r = sp.Dummy("r", integer=True, positive=True)
        c = sp.Dummy("c", integer=True, positive=True)
        return Mat(
            eu.xreplace({ru: r}) * ev.xreplace({rv: c}), sp.Tuple(r, lo, hi), sp.Tuple(c, lo2, hi2)
        )

    out = expr.replace(lambda t: isinstance(t, Outer), expand)

    def psum_in(ps: PSum) -> sp.Expr:
        inner = ps.args[0]
        if isinstance(inner, Mat):
            return Mat(ps.func(inner.args[0]), *inner.args[1:])
        return ps

    return out.replace(lambda t: isinstance(t, PSum), psum_in)


# ----------------------------------------------------------------------------- exact value
class _Net:
    """A concrete network: explicit outputs at ``x`` and ``x'`` and its parameters."""

    def __init__(self, depth: int, widths: dict[int, int]) -> None:

        self.depth, self.widths = depth, widths
        n_out = widths[depth]
        self.params = list(parameters({"theta_layers": depth}, widths))
        self.F = {
            prime: sp.Matrix(
                [unfold_all(alpha_t(depth, prime)[k], widths) for k in range(1, n_out + 1)]
            )
            for prime in (False, True)
        }
        # the reference NTK, assembled by jacobian and a matrix product
        self.theta = self.F[False].jacobian(self.params) * self.F[True].jacobian(self.params).T
        self._derivs: dict[tuple, sp.Expr] = {}

    @classmethod
    def build(cls, depth: int, widths: dict[int, int]) -> _Net:
        """The network of this depth and widths (built once per active network)."""
        key = (depth, tuple(sorted(widths.items())), network_key())
        if key not in _NETS:
            if len(_NETS) > 64:
                _NETS.clear()
            _NETS[key] = cls(depth, widths)
        return _NETS[key]

    def scalar(self, e: sp.Expr) -> sp.Expr:
        """Evaluate derivatives of the outputs with respect to concrete parameters."""

        def is_d(t: sp.Basic) -> bool:
            return isinstance(t, sp.Derivative) and isinstance(t.expr, sp.Indexed)

        def dval(t: sp.Derivative) -> sp.Expr:
            from ntksym.derive.symbols import OBJECTS

            info = OBJECTS.get(t.expr.base)
            if info is None or info.kind != "z":
                raise RuleError(f"cannot evaluate {plain(t)}")
            (k,) = t.expr.indices
            if not (k.is_Integer and 1 <= int(k) <= self.widths[self.depth]):
                raise _Undefined(f"output index {k} out of range 1..{self.widths[self.depth]}")
            (p,) = t.variables
            key = (info.prime, int(k), p)
            if key not in self._derivs:
                self._derivs[key] = sp.diff(self.F[info.prime][int(k) - 1], p)
            return self._derivs[key]

        return e.replace(is_d, dval)


_NETS: dict[tuple, _Net] = {}


class _Undefined(Exception):
    pass


def _conc(e: sp.Expr, depth: int, widths: dict, layer_sym: sp.Symbol) -> sp.Expr:
    rep = {layer_sym: depth}
    for s in e.free_symbols:
        wl = width_layer(s)
        if wl is not None:
            rep[s] = widths[int(as_expr(wl).subs(layer_sym, depth))]
    return e.xreplace(rep)


def _value(e: sp.Basic, net: _Net, layer_sym: sp.Symbol, p: sp.Expr | None) -> Any:
    """The matrix (or scalar) value of a statement member for one parameter ``p``."""
    if isinstance(e, sp.Function) and e.func.__name__ == "Theta" and len(e.args) == 1:
        return net.theta
    if isinstance(e, PSum):
        if p is not None:
            raise _Undefined("nested sums over parameters")
        vals = [_value(e.args[0], net, layer_sym, q) for q in net.params]
        out = vals[0]
        for v in vals[1:]:
            out = out + v
        return out
    if isinstance(e, Member):
        return _value(e.args[0], net, layer_sym, p)
    if isinstance(e, Grad):
        return _value(e.column(), net, layer_sym, p)
    if isinstance(e, Tr):
        return _value(e.args[0], net, layer_sym, p).T
    if isinstance(e, Vec):
        v, lo, hi = e.limits
        lo, hi = (int(_conc(as_expr(t), net.depth, net.widths, layer_sym)) for t in (lo, hi))
        return sp.Matrix(
            [
                [
                    _value(e.expr.xreplace({v: sp.Integer(q)}), net, layer_sym, p)
                    for q in range(lo, hi + 1)
                ]
            ]
        )
    if isinstance(e, Outer):
        u, w = (_value(a, net, layer_sym, p) for a in e.args)
        if not (isinstance(u, sp.MatrixBase) and isinstance(w, sp.MatrixBase)):
            raise _Undefined("(x) of non-vectors")
        if u.shape[1] != 1 or w.shape[1] != 1:
            raise _Undefined(f"(x) of a {u.shape} and a {w.shape} array: not column vectors")
        return u * w.T
    if isinstance(e, Mat):
        body, (r, lo, hi), (c, lo2, hi2) = e.args
        bounds = [
            int(_conc(as_expr(t), net.depth, net.widths, layer_sym)) for t in (lo, hi, lo2, hi2)
        ]
        return sp.Matrix(
            [
                [
                    _value(body.xreplace({r: sp.Integer(a), c: sp.Integer(q)}), net, layer_sym, p)
                    for q in range(bounds[2], bounds[3] + 1)
                ]
                for a in range(bounds[0], bounds[1] + 1)
            ]
        )
    if isinstance(e, sp.Expr):
        if e.has(*MATRIX_TYPES) or any(
            isinstance(f, sp.Function) and f.func.__name__ in NAMES for f in e.atoms(sp.Function)
        ):
            raise _Undefined(f"cannot evaluate {plain(e)} as a matrix entry")

        e = concrete_layers(e, {layer_sym: net.depth}, net.widths)
        if p is not None:
            e = e.xreplace({theta: p})
        return sp.expand(net.scalar(e))
    raise _Undefined(f"cannot evaluate {type(e).__name__}")


def _claimed_shapes(e: sp.Basic, net: _Net, layer_sym: sp.Symbol) -> list[tuple[int, int]]:
    def size(t: sp.Basic) -> int:
        return int(_conc(as_expr(t), net.depth, net.widths, layer_sym))

    # a Member's arguments are (value, rows, cols)
    return [(size(m.args[1]), size(m.args[2])) for m in e.atoms(Member)]


def _fmt(depth: int, widths: dict) -> Config:
    return Config((("L", depth),), tuple(widths[k] for k in sorted(widths)))


#: The reference of the matrix check, as a formula of its details.
_JJT = Tex(r"J(x) J(x')^{\mathsf T}", "J(x) J(x')^T")


def _is_zero(m: sp.Matrix) -> bool:
    return all(sp.expand(t) == 0 for t in m)


def exact_matrix(
    stmt: sp.Basic, layer_sym: sp.Symbol, configs: list[tuple[dict, dict]]
) -> tuple[bool, Text]:
    """Check a matrix statement ``Theta^(L) = member = ...`` exactly at concrete widths.

    Each member is evaluated as an explicit matrix for the network of each configuration
    (``({L: depth}, {layer: width})``) and compared, shape and entries, with the reference
    ``J(x) J(x')^T``. A member displayed with ``in R^{a x b}`` must also have that shape.

    Returns:
        ``(holds, detail)``: the first discrepancy in words, or the configurations checked.
    """
    done = []
    members: list[sp.Basic] = []
    for lhs, rhs in pairs(stmt):
        for m in (lhs, rhs):
            if m not in members:
                members.append(m)
    for layers, widths in configs:
        depth = int(layers[layer_sym])
        net = _Net.build(depth, widths)
        ref = net.theta
        where = _fmt(depth, widths)
        for m in members:
            try:
                val = _value(m, net, layer_sym, None)
            except _Undefined as exc:
                return False, Text("undefined at ", where, f": {exc}")
            for shape in _claimed_shapes(m, net, layer_sym):
                if val.shape != shape:
                    return False, Text(
                        "at ",
                        where,
                        " the display is a ",
                        Shape(*val.shape),
                        " array, not ",
                        Shape(*shape),
                        " as claimed",
                        _which_row(val, ref),
                    )
            if val.shape != ref.shape:
                return False, Text(
                    "at ",
                    where,
                    " the display is ",
                    Shape(*val.shape),
                    ", Theta is ",
                    Shape(*ref.shape),
                    _which_row(val, ref),
                )
            if not _is_zero(val - ref):
                bad = next(
                    (r, c)
                    for r in range(ref.rows)
                    for c in range(ref.cols)
                    if sp.expand(val[r, c] - ref[r, c]) != 0
                )
                return False, Text(f"entry ({bad[0] + 1},{bad[1] + 1}) differs at ", where)
        done.append(where)
    return True, Text("exact (vs ", _JJT, ") at ", Text.join("; ", done))


def _which_row(val: sp.Matrix, ref: sp.Matrix) -> Text:
    if val.rows == 1 and val.cols == ref.cols:
        for r in range(ref.rows):
            if _is_zero(val - ref[r, :]):
                return Text(f" (it is row {r + 1} of the ", Shape(ref.rows, ref.cols), " matrix)")
    return Text()
