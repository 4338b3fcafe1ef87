"""The network-specific Python of a fused kernel: its program tables and activation steps.

A fused module (:mod:`ntksym.codegen.architecture`) is layer-major: per chunk of at most
256 columns of one row, each step of the network's program
(:class:`~ntksym.codegen.arch_program.Program`) is one short loop over the chunk
(``arch_runtime.py``, region ``steps``). What depends on the network is written here:

* two tables, one row per step (:func:`tables_source`): the integers of
  :data:`INT_COLUMNS` and the floats of :data:`FLOAT_COLUMNS`, read by the static
  interpreter ``_run_steps``; a network's depth adds rows, not code to compile;
* per distinct activation ``m``, its chunk loop ``_a{m}_step`` (:func:`activation_step`)
  around the generated layer map ``_a{m}_pair_any`` of its family, with ``W2 = 1``,
  ``B2 = 0``: ``E[sigma sigma]``, ``E[sigma' sigma']`` and, for the families whose map
  carries it (:attr:`Program.trusted`), the output's determinant; ``Theta -> Theta
  E[sigma' sigma']``; where the input's determinant is not carried it is formed first by
  subtraction (Dekker's products, ``_cdet``);
* the dispatchers ``_act_step`` and ``_act_diag`` from an activation's number to its
  functions (:func:`dispatch_source`).

Only numbers taken from the description (``repr`` of floats and integers) and state
numbers enter this code; the activations enter as SymPy-printed layer maps
(:func:`ntksym.codegen.render.render_spec`).
"""

from __future__ import annotations

from ntksym.codegen.arch_program import Program, Step
from ntksym.dual.stable import U

__all__ = [
    "FLOAT_COLUMNS",
    "INT_COLUMNS",
    "KINDS",
    "activation_step",
    "dispatch_source",
    "tables_source",
]

#: The step kinds, numbered as in the table's first column.
KINDS = ("input_dense", "dense", "act", "layer_norm", "sum")
#: The integer columns of the program table.
INT_COLUMNS = ("kind", "out", "a", "b", "act", "standard", "det", "zero_ntk")
#: The float columns of the program table (``width`` is ``s_in`` on the inputs).
FLOAT_COLUMNS = ("w2", "b2", "width", "bias", "eps")

_IND = "    "


def _f(x: float) -> str:
    return repr(float(x))


def _int_row(step: Step, prog: Program) -> list[int]:
    a = step.src[0] if step.src else -1
    b = step.src[1] if len(step.src) > 1 else -1
    # whether the determinant the step reads (a sum: the one it forms) is carried
    det = prog.det_known[step.out] if step.kind in ("sum", "input_dense") else prog.det_known[a]
    kind = KINDS.index(step.kind)
    return [kind, step.out, a, b, step.act, int(step.standard), int(det), int(step.zero_ntk)]


def _float_row(step: Step) -> list[str]:
    width = float(step.s_in) if step.kind == "input_dense" else (step.width or 0.0)
    return [_f(step.w2), _f(step.b2), _f(width), "1.0" if step.bias else "0.0", _f(step.eps)]


def tables_source(prog: Program) -> str:
    """``NSTATES``, ``OUTPUT`` and the tables ``PROGRAM_I``, ``PROGRAM_F`` as module code."""
    ints = [_int_row(s, prog) for s in prog.steps]
    floats = [_float_row(s) for s in prog.steps]
    lines = [f"NSTATES = {len(prog.steps)}", f"OUTPUT = {prog.output}"]
    lines.append(f"# columns: {', '.join(INT_COLUMNS)}")
    lines.append("PROGRAM_I = numpy.array(")
    lines.append(f"{_IND}[")
    lines += [f"{2 * _IND}[{', '.join(map(str, r))}]," for r in ints]
    lines.append(f"{_IND}],")
    lines.append(f"{_IND}dtype=numpy.int64,")
    lines.append(")")
    lines.append(f"# columns: {', '.join(FLOAT_COLUMNS)}")
    lines.append("PROGRAM_F = numpy.array(")
    lines.append(f"{_IND}[")
    lines += [f"{2 * _IND}[{', '.join(r)}]," for r in floats]
    lines.append(f"{_IND}],")
    lines.append(f"{_IND}dtype=numpy.float64,")
    lines.append(")")
    return "\n".join(lines) + "\n"


def _uses_gap(prog: Program, m: int) -> bool:
    """Whether the layer map of activation ``m`` takes the root gap ``U`` (last argument)."""
    spec = prog.specs[m]
    exprs = [e for e in (spec.nngp, spec.ntk, spec.det) if e is not None]
    return any(U in e.free_symbols for e in exprs)


def _act_loop(prog: Program, m: int, ntk: bool, variant: str) -> list[str]:
    """The loop of activation ``m`` over a chunk, by its map's ``variant``.

    ``"any"``: the general map; ``"pos"``: the cheaper one (every covariance of the chunk
    is > 0); ``"both"``: the cheaper one where ``S12 > 0``, the general one elsewhere.
    """
    args = "va, VB[q], S[a, q], D[a, q], vk, VK[q], 1.0, 0.0, ra, RB[q], rk, RK[q]"
    if _uses_gap(prog, m):
        args += ", ra - RB[q]"
    if variant == "both":  # (rare: calls, not inlined)
        body = [
            f"e1, ed1, dn1 = _a{m}c_pair_pos({args})",
            f"e0, ed0, dn0 = _a{m}c_pair_any({args})",
            "p = S[a, q] > 0.0",
            "e = _sel(p, e1, e0)",
            "ed = _sel(p, ed1, ed0)",
            "dn = _sel(p, dn1, dn0)",
        ]
    else:
        body = [f"e, ed, dn = _a{m}_pair_{variant}({args})"]
    body.append("S[k, q] = e")
    if prog.trusted[m]:
        body.append("D[k, q] = _sel(CO[q], 0.0, _fin(dn, _cdet(vk, e, VK[q])))")
    if ntk:
        body.append("T[k, q] = _sel(zero, 0.0, T[a, q] * ed)")
    return ["for q in range(m):"] + [_IND + line for line in body]


def activation_step(prog: Program, m: int, pos: bool) -> str:
    """``_a{m}_step``: activation ``m`` from state ``a`` to state ``k`` over one chunk.

    Args (of the generated function): the chunk arrays ``S``, ``D``, ``T``; the states
    ``a``, ``k``; the chunk's length ``m``; the row input's variances and roots at ``a``
    and ``k`` (``va, ra, vk, rk``) and the columns' (``VB, RB, VK, RK``); ``CO`` (pairs
    of one input twice); ``det`` (the input's determinant is carried in ``D[a]``);
    ``zero`` (the activation passes no gradient); ``ntk``.

    Args:
        prog: The program.
        m: The activation's number.
        pos: Whether its layer map has a cheaper variant ``_a{m}_pair_pos`` for
            ``S12 > 0`` (used for a whole chunk where every covariance is positive, and
            entry by entry otherwise, so that no entry depends on the others; this rare
            case calls the layer maps ``_a{m}c_...`` that Numba does not inline).

    Returns:
        The function's source.
    """
    lines = [
        '@numba.njit(cache=True, error_model="numpy")',
        f"def _a{m}_step(S, D, T, a, k, m, va, ra, vk, rk, VB, RB, VK, RK, CO, det, zero, ntk):",
        f'{_IND}"""Activation {m} from state a to state k on one chunk of a row."""',
        f"{_IND}if not det:  # formed by subtraction, into the unused row of state a",
        f"{2 * _IND}for q in range(m):",
        f"{3 * _IND}D[a, q] = _sel(CO[q], 0.0, _cdet(va, S[a, q], VB[q]))",
    ]
    if pos:
        lines += [
            f"{_IND}pos = True",
            f"{_IND}for q in range(m):",
            f"{2 * _IND}pos &= S[a, q] > 0.0",
        ]
        cases = [("pos and ntk", "pos", True), ("pos", "pos", False)]
        cases += [("ntk", "both", True), ("", "both", False)]
    else:
        cases = [("ntk", "any", True), ("", "any", False)]
    for i, (test, variant, ntk) in enumerate(cases):
        head = f"if {test}:" if i == 0 else (f"elif {test}:" if test else "else:")
        lines.append(_IND + head)
        lines += [2 * _IND + line for line in _act_loop(prog, m, ntk, variant)]
    return "\n".join(lines) + "\n"


def dispatch_source(prog: Program) -> str:
    """``_act_step`` and ``_act_diag``: activation number -> its chunk loop, diagonal map."""
    n = len(prog.specs)
    step = [
        '@numba.njit(cache=True, error_model="numpy")',
        "def _act_step(act, S, D, T, a, k, m, va, ra, vk, rk, VB, RB, VK, RK, CO, det, zero, ntk):",
        f'{_IND}"""Activation number act from state a to state k on one chunk of a row."""',
    ]
    diag = [
        '@numba.njit(cache=True, error_model="numpy")',
        "def _act_diag(act, v):",
        f'{_IND}"""E[sigma(u)^2] for u ~ N(0, v), sigma activation number act."""',
    ]
    args = "S, D, T, a, k, m, va, ra, vk, rk, VB, RB, VK, RK, CO, det, zero, ntk"
    for m in range(n):
        test = "if" if m == 0 else "elif"
        step += [f"{_IND}{test} act == {m}:", f"{2 * _IND}_a{m}_step({args})"]
        diag += [f"{_IND}if act == {m}:", f"{2 * _IND}return _a{m}_diag(v)"]
    if n == 0:
        step.append(f"{_IND}return")
    diag.append(f"{_IND}return math.nan")
    return "\n".join(step) + "\n\n\n" + "\n".join(diag) + "\n"
