"""The network-specific Python of a fused kernel: ``_diag_rows`` and ``_row``.

Both are written from a :class:`~ntksym.codegen.arch_program.Program`, one line (or a
few) per step, in variables named by state number ``k``: ``s{k}`` (the covariance of the
pair), ``d{k}`` (its determinant, where carried), ``t{k}`` (the NTK), ``va{k}``/``ra{k}``
(the row input's variance at that state and its square root) and ``vb{k}``/``rb{k}``
(the column input's). The maps are :mod:`ntksym.kernels.layer_maps`'s, written per pair:

* first Dense layer (``c = W2 / n0``): ``S12 = c x.x' + B2``,
  ``D = c^2 det_x + c B2 ((|x| - |x'|)^2 + 2 (|x||x'| - x.x'))`` from the inputs'
  own determinant, formed without cancellation (``_prep``);
* Dense: ``S12 -> W2 S12 + B2``, ``D -> W2^2 D + W2 B2 ((R11 - R22)^2 + 2 gap)``,
  ``Theta -> W2 Theta + S12'`` (NTK) or ``W2 Theta + n_in S12 + [bias]`` (standard);
* activation: the generated layer map of its family (``_a{m}_pair_any``) with
  ``W2 = 1``, ``B2 = 0``: ``E[sigma sigma]``, ``E[sigma' sigma']`` and, for the families
  that carry it, the output's determinant; ``Theta -> Theta E[sigma' sigma']``;
* LayerNorm: every entry divided by ``sqrt((eps + S11)(eps + S22))``;
* a sum of two branches: everything summed, the determinant as a sum of gaps.

Only numbers taken from the description (``repr`` of floats and integers) and state
numbers enter this code; the activations enter as SymPy-printed layer maps
(:func:`ntksym.codegen.render.render_spec`).
"""

from __future__ import annotations

from ntksym.codegen.arch_program import Program, Step
from ntksym.dual.stable import U

__all__ = ["diag_rows_source", "row_source"]

_IND = "    "


def _f(x: float) -> str:
    return repr(float(x))


def _diag_line(step: Step) -> str:
    k = step.out
    if step.kind == "input_dense":
        return f"v{k} = {_f(step.w2)} / n0f * sq[i] + {_f(step.b2)}"
    a = step.src[0] if step.src else -1
    if step.kind == "dense":
        return f"v{k} = {_f(step.w2)} * v{a} + {_f(step.b2)}"
    if step.kind == "act":
        return f"v{k} = _a{step.act}_diag(v{a})"
    if step.kind == "layer_norm":
        return f"v{k} = v{a} / ({_f(step.eps)} + v{a})"
    return f"v{k} = v{step.src[0]} + v{step.src[1]}"


def diag_rows_source(prog: Program) -> str:
    """``_diag_rows(sq, n0f, V, R)``: every state's variance of each input, and its root."""
    lines = [
        '@numba.njit(cache=True, error_model="numpy")',
        "def _diag_rows(sq, n0f, V, R):",
        f'{_IND}"""Each input\'s variance at every state (V[i, k]) and its square root."""',
        f"{_IND}for i in range(sq.shape[0]):",
    ]
    for step in prog.steps:
        k = step.out
        lines.append(2 * _IND + _diag_line(step))
        lines.append(f"{2 * _IND}V[i, {k}] = v{k}")
        lines.append(f"{2 * _IND}R[i, {k}] = math.sqrt(v{k})")
    return "\n".join(lines) + "\n"


def _ntk_width(step: Step) -> str:
    """The standard NTK's input width ``n_in / s_in`` as code."""
    if step.width is not None:
        return _f(step.width)
    return "n0f" if step.s_in == 1 else f"(n0f / {_f(step.s_in)})"


def _dense_lines(step: Step, prog: Program, ntk: bool) -> list[str]:
    k, w2, b2 = step.out, _f(step.w2), _f(step.b2)
    bias = "1.0" if step.bias else "0.0"
    if step.kind == "input_dense":
        out = [f"s{k} = c{k} * g + {b2}"]
        if step.b2 == 0.0:
            out.append(f"d{k} = c{k} * c{k} * dx")
        else:
            out.append(f"d{k} = c{k} * c{k} * dx + c{k} * {b2} * (dn * dn + om)")
        if ntk:
            std = f"t{k} = {_ntk_width(step)} * (g / n0f) + {bias}"
            out.append(std if step.standard else f"t{k} = s{k}")
        return out
    a = step.src[0]
    out = [f"s{k} = {w2} * s{a} + {b2}"]
    if prog.det_known[a]:
        w4 = _f(step.w2 * step.w2)
        if step.b2 == 0.0:
            out.append(f"d{k} = {w4} * d{a}")
        else:
            gap = f"_gap(ra{a} * rb{a}, s{a}, d{a})"
            more = f"{_f(step.w2 * step.b2)} * ((ra{a} - rb{a}) ** 2 + 2.0 * {gap})"
            out.append(f"d{k} = _sel(co, 0.0, {w4} * d{a} + {more})")
    if ntk:
        if step.standard:
            out.append(f"t{k} = {w2} * t{a} + {_ntk_width(step)} * s{a} + {bias}")
        else:
            out.append(f"t{k} = {w2} * t{a} + s{k}")
    return out


def _act_lines(step: Step, prog: Program, ntk: bool) -> list[str]:
    k, a, m = step.out, step.src[0], step.act
    out = []
    if prog.det_known[a]:
        det = f"d{a}"
    else:
        det = f"x{k}"
        out.append(f"x{k} = _sel(co, 0.0, _cdet(va{a}, s{a}, vb{a}))")
    args = f"va{a}, vb{a}, s{a}, {det}, va{k}, vb{k}, 1.0, 0.0, ra{a}, rb{a}, ra{k}, rb{k}"
    if _uses_gap(prog, m):
        args += f", ra{a} - rb{a}"
    out.append(f"e{k}, ed{k}, dn{k} = _a{m}_pair_any({args})")
    out.append(f"s{k} = e{k}")
    if prog.trusted[m]:
        out.append(f"d{k} = _sel(co, 0.0, _fin(dn{k}, _cdet(va{k}, s{k}, vb{k})))")
    if ntk:
        out.append(f"t{k} = 0.0" if step.zero_ntk else f"t{k} = t{a} * ed{k}")
    return out


def _uses_gap(prog: Program, m: int) -> bool:
    """Whether the layer map of activation ``m`` takes the root gap ``U`` (last argument)."""
    spec = prog.specs[m]
    exprs = [e for e in (spec.nngp, spec.ntk, spec.det) if e is not None]
    return any(U in e.free_symbols for e in exprs)


def _norm_lines(step: Step, prog: Program, ntk: bool) -> list[str]:
    k, a, eps = step.out, step.src[0], _f(step.eps)
    out = [
        f"p{k} = ({eps} + va{a}) * ({eps} + vb{a})",
        f"h{k} = math.sqrt(p{k})",
        f"s{k} = s{a} / h{k}",
    ]
    if prog.det_known[a]:
        out.append(f"d{k} = d{a} / p{k}")
    if ntk:
        out.append(f"t{k} = t{a} / h{k}")
    return out


def _sum_lines(step: Step, prog: Program, ntk: bool) -> list[str]:
    k, (a, b) = step.out, step.src
    out = [f"s{k} = s{a} + s{b}"]
    if prog.det_known[k]:
        near = f"(s{a} > 0.0) & (s{b} > 0.0)"
        gaps = f"xa{k} * xa{k} + 2.0 * ma{k} * gb{k} + 2.0 * mb{k} * ga{k} - 2.0 * ga{k} * gb{k}"
        direct = f"va{a} * vb{b} + va{b} * vb{a} - 2.0 * s{a} * s{b}"
        out += [
            f"ma{k} = ra{a} * rb{a}",
            f"mb{k} = ra{b} * rb{b}",
            f"ga{k} = _gap(ma{k}, s{a}, d{a})",
            f"gb{k} = _gap(mb{k}, s{b}, d{b})",
            f"xa{k} = math.sqrt(va{a} * vb{b}) - math.sqrt(va{b} * vb{a})",
            f"cr{k} = _sel({near}, {gaps}, {direct})",
            f"d{k} = _sel(co, 0.0, _max(d{a} + d{b} + cr{k}, 0.0))",
        ]
    if ntk:
        out.append(f"t{k} = t{a} + t{b}")
    return out


_EMIT = {
    "input_dense": _dense_lines,
    "dense": _dense_lines,
    "act": _act_lines,
    "layer_norm": _norm_lines,
    "sum": _sum_lines,
}


def row_source(prog: Program) -> str:
    """``_row(...)``: every state of every pair of row i (columns j0 on), outputs into K, T.

    One loop computes the NTK too (a few products per layer) and stores it only when
    asked: a second loop without it would double the compile time.
    """
    lines = [
        '@numba.njit(cache=True, error_model="numpy")',
        "def _row(i, j0, G, V1, R1, V2, R2, DX, DN, OM, CO, n0f, K, T, ntk):",
        f'{_IND}"""Row i of the kernels from column j0 on: the whole network per pair."""',
    ]
    for step in prog.steps:
        k = step.out
        lines.append(f"{_IND}va{k} = V1[i, {k}]")
        lines.append(f"{_IND}ra{k} = R1[i, {k}]")
        if step.kind == "input_dense":
            lines.append(f"{_IND}c{k} = {_f(step.w2)} / n0f")
    body = ["j = j0 + q", "g = G[i, j]", "dx = DX[q]", "dn = DN[q]", "om = OM[q]", "co = CO[q]"]
    for step in prog.steps:
        body += [f"vb{step.out} = V2[j, {step.out}]", f"rb{step.out} = R2[j, {step.out}]"]
    for step in prog.steps:
        body += _EMIT[step.kind](step, prog, True)
    body.append(f"K[i, j] = s{prog.output}")
    lines.append(f"{_IND}for q in range(G.shape[1] - j0):")
    lines += [2 * _IND + line for line in body]
    lines.append(f"{2 * _IND}if ntk:")
    lines.append(f"{3 * _IND}T[i, j] = t{prog.output}")
    return "\n".join(lines) + "\n"
