"""The forward-mode recursion of :mod:`ntksym.kernels.gradients` compiled by Numba, entry by entry.

Each activation's layer maps (``nngp``, ``ntk``, ``det`` of
:func:`ntksym.codegen.spec.kernel_spec`) are differentiated by SymPy with respect to the
layer-map arguments (:data:`ntksym.kernels.partials.ARGS`) and printed as one scalar
Jacobian-vector product: ``layer(*ARGS, *tangents)`` returns the three maps and their
derivatives along the two tangents (``bias_std^2`` and ``weight_std^2``). Only partials that
are not identically zero are printed; a partial meets its tangent only when the tangent is
nonzero, so a partial that is infinite where its tangent vanishes (``1/sqrt(D)`` at ``D = 0``)
contributes zero. The body is branch-free (printed by
:class:`ntksym.codegen.printers.NumbaLoopPrinter`: a Piecewise evaluates both sides and selects,
``atan2`` is the generated kernels' polynomial one), so the loop over a row's columns that
inlines it vectorises, as the generated kernels' layer loop does.

:func:`gradient_rows` then runs every entry of a block of rows through all the layers, layer 1
included (its determinant is formed by the generated kernels' cancellation-free
``det_near`` for nearly parallel pairs), in parallel over rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache
from typing import Any

import numba
import numpy as np
import sympy as sp

from ntksym.activations import Activation
from ntksym.codegen.printers import NumbaLoopPrinter
from ntksym.codegen.runtime.numba_atan2 import LOOP_HELPERS
from ntksym.codegen.runtime.numba_fused import det_near
from ntksym.codegen.spec import kernel_spec
from ntksym.kernels.partials import ARGS

__all__ = ["compiled_layer", "gradient_rows", "layer_source", "mirror"]

#: The layer-map arguments that carry a tangent (all but the scales W2, B2).
STATE = tuple(a for a in ARGS if str(a) not in ("W2", "B2"))
#: The scales, whose tangents are the constants [p = b2] and [p = w2].
W2_SYM, B2_SYM = (next(a for a in ARGS if str(a) == n) for n in ("W2", "B2"))
#: A power of two whose square underflows to zero: ``det_near(..., c=_TINY, B2=1/_TINY)``
#: returns ``|x - x'|^2`` alone (the ``c^2 G`` term vanishes, ``c B2 = 1`` exactly).
_TINY = 2.0**-600


def _heaviside_free(expr: sp.Expr) -> sp.Expr:
    """Heaviside steps (from differentiating Max) as Piecewise, which the printer knows."""
    return expr.replace(
        lambda e: isinstance(e, sp.Heaviside),
        lambda e: sp.Piecewise((sp.Float(1.0), e.args[0] > 0), (sp.Float(0.0), True)),
    )


class _Printer(NumbaLoopPrinter):
    """Branch-free printer with ``x**(-n)`` as ``1.0/x**n`` (Numba raises on ``0.0**(-n)``)."""

    def _print_Pow(self, expr: sp.Pow, rational: bool = False) -> str:
        b, e = expr.as_base_exp()
        if e.is_Integer and e < 0:
            return f"(1.0/({self._print(b ** (-e))}))"
        return super()._print_Pow(expr, rational=rational)


def _tangent(p: int, a: sp.Symbol) -> str:
    return f"t{p}_{a}"


def _partials(maps: list[sp.Expr | None]) -> list[tuple[int, sp.Symbol, sp.Expr]]:
    """``(map, argument, partial)`` for every partial that is not identically zero."""
    parts = []
    for k, expr in enumerate(maps):
        for a in (*STATE, B2_SYM, W2_SYM) if expr is not None else ():
            part = sp.diff(expr, a)
            if part != 0:
                parts.append((k, a, part))
    return parts


def _body(maps: list[sp.Expr | None]) -> list[str]:
    """Lines computing the maps and their derivatives along both tangents, then returning."""
    printer = _Printer({"fully_qualified_modules": True})
    parts = _partials(maps)
    outs = [sp.Integer(0) if e is None else e for e in maps] + [part for _, _, part in parts]
    temps, reduced = sp.cse([_heaviside_free(e) for e in outs])
    lines = [f"{name} = {printer.doprint(value)}" for name, value in temps]
    lines += [f"v{k} = {printer.doprint(e)}" for k, e in enumerate(reduced[:3])]
    lines += [f"d{k}_{p} = 0.0" for k in range(3) for p in range(2)]
    for (k, a, _), part in zip(parts, reduced[3:], strict=True):
        code = printer.doprint(part)
        if a in (B2_SYM, W2_SYM):  # tangent 1 along its own scale, 0 along the other
            lines.append(f"d{k}_{0 if a == B2_SYM else 1} += {code}")
            continue
        lines.append(f"q = {code}")
        for p in range(2):  # a zero tangent meets no partial (which may be infinite there)
            t = _tangent(p, a)
            lines.append(f"d{k}_{p} += _sel({t} != 0.0, q * {t}, 0.0)")
    out = ", ".join(["v0", "v1", "v2"] + [f"d{k}_{p}" for k in range(3) for p in range(2)])
    return ["    " + line for line in [*lines, f"return {out}"]]


def layer_source(maps: list[sp.Expr | None]) -> str:
    """Python source of ``layer(*ARGS, *tangents)``: the maps and their tangent derivatives.

    Args:
        maps: ``[nngp, ntk, det]`` as SymPy expressions in :data:`ARGS` (None: absent).

    Returns:
        The source of a branch-free function returning ``(nngp, ntk, det, dnngp_b, dnngp_w,
        dntk_b, dntk_w, ddet_b, ddet_w)``; the tangents are ``t{p}_{arg}`` for the arguments
        in :data:`STATE`, ``p = 0`` along ``b2`` and ``p = 1`` along ``w2``. Absent maps are 0.
    """
    tangents = [_tangent(p, a) for p in range(2) for a in STATE]
    head = f"def layer({', '.join([*map(str, ARGS), *tangents])}):"
    return "\n".join([head, *_body(maps)]) + "\n"


#: The column loop of one layer of one row, compiled with the activation's layer maps.
_COLUMNS = """
def columns(row, cols, w2, b2, state):
    v1, r1, h1, m1, a10, a11, n10, n11 = row
    V2, R2, H2, M2, A20, A21, N20, N21 = cols
    S, D, S0, S1, D0, D1, T, T0, T1 = state
    for q in range(S.shape[0]):
        v2, r2, h2, m2 = V2[q], R2[q], H2[q], M2[q]
        a20, a21, n20, n21 = A20[q], A21[q], N20[q], N21[q]
        s12, d = S[q], D[q]
        m = r1 * r2
        ok = m > 0.0
        rho = _sel(ok, _min(1.0, _max(-1.0, s12 / m)), 0.0)
        ok = ok & (d > 0.0)
        p0 = _sel(ok, (S0[q] - s12 / 2 * (a10 / v1 + a20 / v2)) / m, 0.0)
        p1 = _sel(ok, (S1[q] - s12 / 2 * (a11 / v1 + a21 / v2)) / m, 0.0)
        e, ed, dn, e0, e1, ed0, ed1, dn0, dn1 = layer(
            v1, v2, s12, d, m1, m2, w2, b2, r1 - r2, rho,
            a10, a20, S0[q], D0[q], n10, n20, a10 * h1 - a20 * h2, p0,
            a11, a21, S1[q], D1[q], n11, n21, a11 * h1 - a21 * h2, p1,
        )
        new = w2 * e + b2
        new0, new1 = w2 * e0 + 1.0, w2 * e1 + e
        if not HAS_DET:
            dn = m1 * m2 - new * new
            dn0 = n10 * m2 + m1 * n20 - 2 * new * new0
            dn1 = n11 * m2 + m1 * n21 - 2 * new * new1
        sd = w2 * ed
        T0[q] = T0[q] * sd + T[q] * (w2 * ed0) + new0
        T1[q] = T1[q] * sd + T[q] * (w2 * ed1 + ed) + new1
        T[q] = T[q] * sd + new
        S[q], D[q], S0[q], S1[q], D0[q], D1[q] = new, _max(dn, 0.0), new0, new1, dn0, dn1

"""


@cache
def compiled_layer(act: Activation) -> Callable[..., Any]:
    """One layer of a chunk of a row's columns for ``act``, compiled.

    The layer maps' Jacobian-vector products (:func:`layer_source`, printed from SymPy,
    never from user text) are inlined into a branch-free column loop that LLVM vectorises.

    Args:
        act: An activation with closed-form layer maps.

    Returns:
        ``columns(row, cols, w2, b2, state)`` (see :func:`gradient_rows`).
    """
    spec = kernel_spec(act)
    source = layer_source([spec.nngp, spec.ntk, spec.det]) + _COLUMNS
    namespace: dict[str, Any] = {"math": math, "HAS_DET": spec.det is not None, **LOOP_HELPERS}
    code = compile(source, f"<ntksym gradient layer of {act.name}>", "exec")
    exec(code, namespace)  # noqa: S102 - source printed by SymPy from SymPy expressions
    namespace["layer"] = numba.njit(error_model="numpy", inline="always")(namespace["layer"])
    return numba.njit(error_model="numpy", fastmath={"contract"})(namespace["columns"])


#: Columns per chunk of a row: every layer of a chunk runs before the next chunk.
_CHUNK = 256


@numba.njit(error_model="numpy")
def _first(i: int, c0: int, inputs: Any, scales: Any, row0: int, state: Any) -> None:
    """Layer 1 of columns ``c0, c0 + 1, ...`` of row ``i`` into ``state`` (see gradient_rows).

    ``|x|^2 |x'|^2 - (x.x')^2`` and ``|x - x'|^2`` by the plain formulas in a loop that
    vectorises, then again without cancellation (``det_near``) for the pairs with
    ``|rho| > 0.99``; both are 0 for the pair of an input with itself.
    """
    X1, X2, a1, a2, G = inputs
    c, w2, b2 = scales
    S, D, S0, S1, D0, D1, T, T0, T1 = state
    lagrange, dist2 = T0, T1  # scratch until the end
    n0, ai, m = X1.shape[1], a1[i], S.shape[0]
    near = 0
    for q in range(m):
        g, b = G[i, c0 + q], a2[c0 + q]
        ab = ai * b
        lagrange[q] = (ab - g) * (ab + g)
        dist2[q] = (ai - b) * (ai - b) + 2.0 * (ab - g)
        near += (ab > 0.0) & (abs(g) > 0.99 * ab)
    if near:
        for q in range(m):
            j, g = c0 + q, G[i, c0 + q]
            ab = ai * a2[j]
            if ab > 0.0 and abs(g) > 0.99 * ab and (row0 < 0 or j != row0 + i):
                lagrange[q] = det_near(g, ai, a2[j], X1, i, X2, j, 1.0, 0.0)[0]
                dist2[q] = det_near(g, ai, a2[j], X1, i, X2, j, _TINY, 1.0 / _TINY)[0]
    if row0 >= 0 and c0 <= row0 + i < c0 + m:
        lagrange[row0 + i - c0], dist2[row0 + i - c0] = 0.0, 0.0
    for q in range(m):
        g = G[i, c0 + q]
        S[q], D[q] = c * g + b2, c * c * lagrange[q] + c * b2 * dist2[q]
        S0[q], S1[q] = 1.0, g / n0
        D0[q], D1[q] = c * dist2[q], (2 * c * lagrange[q] + b2 * dist2[q]) / n0
        T[q], T0[q], T1[q] = S[q], S0[q], S1[q]


@numba.njit(error_model="numpy", parallel=True)
def gradient_rows(
    columns: Any, depth: int, inputs: Any, chains: Any, scales: Any, flags: Any, out: Any, grad: Any
) -> None:
    """Every entry through all the layers: values in ``out``, derivatives in ``grad``.

    ``columns`` is :func:`compiled_layer`'s column loop,
    ``inputs = (X1, X2, a1, a2, G)`` (rows, columns, their norms, the Gram product, which
    may be ``out`` itself: a chunk of a row is read before it is written),
    ``chains = (rows, cols)``, each ``(V, R, H, dV)``: the diagonal variances (depth, n), their
    roots, ``1 / (2 R)`` (0 where R = 0) and derivatives (depth, 2, n);
    ``scales = (c, w2, b2)`` with ``c = w2 / n0``, ``flags = (want_ntk, row0)``: with
    ``row0 >= 0`` row ``i`` is column ``row0 + i`` and only entries with ``j >= row0 + i``
    are computed (see :func:`mirror`). ``grad[..., 0]`` is along ``b2``, ``[..., 1]`` ``w2``.
    """
    (V1, R1, H1, dV1), (V2, R2, H2, dV2) = chains
    want_ntk, row0 = flags
    n1, n2 = out.shape
    k = 6 if want_ntk else 0  # T, T0, T1 or S (then D), S0, S1 in the buffer
    for t in numba.prange(n1):
        # rows 0, n1-1, 1, n1-2, ...: long and short rows of a triangle alternate, so the
        # static chunks of prange get equal work
        i = t // 2 if t % 2 == 0 else n1 - 1 - t // 2
        buf = np.empty((9, _CHUNK))
        for c0 in range(max(0, row0 + i) if row0 >= 0 else 0, n2, _CHUNK):
            w = min(c0 + _CHUNK, n2) - c0
            state = (buf[0, :w], buf[1, :w], buf[2, :w], buf[3, :w], buf[4, :w],
                     buf[5, :w], buf[6, :w], buf[7, :w], buf[8, :w])  # fmt: skip
            _first(i, c0, inputs, scales, row0, state)
            for lay in range(1, depth):
                now, nxt = lay - 1, lay
                row = (V1[now, i], R1[now, i], H1[now, i], V1[nxt, i],
                       dV1[now, 0, i], dV1[now, 1, i], dV1[nxt, 0, i], dV1[nxt, 1, i])  # fmt: skip
                j = slice(c0, c0 + w)
                cols = (V2[now, j], R2[now, j], H2[now, j], V2[nxt, j],
                        dV2[now, 0, j], dV2[now, 1, j], dV2[nxt, 0, j], dV2[nxt, 1, j])  # fmt: skip
                columns(row, cols, scales[1], scales[2], state)
            out[i, c0 : c0 + w] = buf[k, :w]
            for q in range(w):
                grad[i, c0 + q, 0] = buf[k + 1 + (k == 0), q]
                grad[i, c0 + q, 1] = buf[k + 2 + (k == 0), q]


@numba.njit(error_model="numpy", parallel=True)
def mirror(out: Any, grad: Any) -> None:
    """Copy the upper triangle of the square ``out`` and ``grad`` into their lower triangle."""
    n = out.shape[0]
    for t in numba.prange((n + 63) // 64):
        j0 = 64 * t
        for i in range(min(j0 + 64, n)):
            for j in range(max(j0, i + 1), min(j0 + 64, n)):
                out[j, i] = out[i, j]
                grad[j, i, 0], grad[j, i, 1] = grad[i, j, 0], grad[i, j, 1]
