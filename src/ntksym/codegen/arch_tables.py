"""The program tables of a fused kernel: one row of integers and one of floats per step.

The static interpreter ``_run_steps`` (``arch_runtime.py``) reads a network's
:class:`~ntksym.codegen.arch_program.Program` as two NumPy tables written into its module
(:func:`tables_source`): the integers of :data:`INT_COLUMNS` and the floats of
:data:`FLOAT_COLUMNS`. The ``det`` column says how a step reads its input's determinant:
1 carried, 0 formed by subtraction, 2 formed by subtraction with the nearly parallel pairs
marked NaN (a guarded kinked activation, :attr:`Step.guard
<ntksym.codegen.arch_program.Step.guard>`). ``GUARDED`` says whether any step is, or is an
activation without a closed form (kind ``"quad"``, whose uncertified entries are NaN
too); the ``slot`` column numbers those steps, in order (their tables of Mehler
coefficients, :mod:`ntksym.codegen.arch_quad`). ``LONG`` names each activation's
diagonal map in long double (``_l{m}``, :func:`ntksym.codegen.long_diag.long_diag_source`)
or None.
"""

from __future__ import annotations

from ntksym.codegen.arch_program import Program, Step
from ntksym.codegen.long_diag import long_diag_source
from ntksym.codegen.spec import affine_diag

__all__ = ["FLOAT_COLUMNS", "INT_COLUMNS", "KINDS", "tables_source"]

#: The step kinds, numbered as in the table's first column.
KINDS = ("input_dense", "dense", "act", "layer_norm", "sum", "dropout", "quad")
#: The integer columns of the program table.
INT_COLUMNS = ("kind", "out", "a", "b", "act", "standard", "det", "zero_ntk", "slot")
#: The float columns of the program table (``width`` is ``s_in`` on the inputs; ``w2`` is
#: ``1 / rate`` for a Dropout; ``diag_a``, ``diag_d``: an activation's ``E[sigma(u)^2] =
#: diag_a S + diag_d`` where it is affine in ``S``, NaN elsewhere, for the variances' low
#: parts, :func:`ntksym.codegen.spec.affine_diag`).
FLOAT_COLUMNS = ("w2", "b2", "width", "bias", "eps", "diag_a", "diag_d")

_IND = "    "


def _f(x: float) -> str:
    return repr(float(x))


def _int_row(step: Step, prog: Program, slot: int) -> list[int]:
    a = step.src[0] if step.src else -1
    b = step.src[1] if len(step.src) > 1 else -1
    # whether the determinant the step reads (a sum: the one it forms) is carried
    det = prog.det_known[step.out] if step.kind in ("sum", "input_dense") else prog.det_known[a]
    kind = KINDS.index(step.kind)
    how = 2 if step.guard else int(det)  # (2: formed by subtraction, near pairs marked)
    return [kind, step.out, a, b, step.act, int(step.standard), how, int(step.zero_ntk), slot]


def _float_row(step: Step, prog: Program) -> list[str]:
    width = float(step.s_in) if step.kind == "input_dense" else (step.width or 0.0)
    aff = affine_diag(prog.specs[step.act].activation) if step.kind == "act" else None
    diag = ["math.nan", "math.nan"] if aff is None else [_f(aff[0]), _f(aff[1])]
    return [_f(step.w2), _f(step.b2), _f(width), "1.0" if step.bias else "0.0", _f(step.eps)] + diag


def tables_source(prog: Program) -> str:
    """``NSTATES``, ``OUTPUT`` and the tables ``PROGRAM_I``, ``PROGRAM_F`` as module code."""
    quad = [s.out for s in prog.steps if s.kind == "quad"]
    ints = [_int_row(s, prog, quad.index(s.out) if s.out in quad else -1) for s in prog.steps]
    floats = [_float_row(s, prog) for s in prog.steps]
    lines = [f"NSTATES = {len(prog.steps)}", f"OUTPUT = {prog.output}"]
    # whether some pairs may come out as NaN, to be computed again by the layer maps
    lines.append(f"GUARDED = {any(s.guard for s in prog.steps) or bool(quad)}")
    funcs = ", ".join(f"(_q{q}_f, _q{q}_g)" for q in range(len(prog.quads)))
    lines.append(f"QUAD = ({funcs}{',' if len(prog.quads) == 1 else ''})")
    longs = [f"_l{m}" if long_diag_source(s.activation, f"_l{m}") else "None" for m, s in
             enumerate(prog.specs)]  # fmt: skip
    lines.append(f"LONG = ({', '.join(longs)}{',' if len(longs) == 1 else ''})")
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
