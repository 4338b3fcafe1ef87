"""The next determinant after a typed Gaussian-MGF expression, mended where it cancels.

A homogeneous module whose map reads ``D`` and passes a huge variance on (``sin(u) + u``:
:func:`keeps_twins`) forms the next determinant directly,
``N11 N22 - S12'^2``. For a pair near coincidence (or anti-parallel, for an odd map) that
is the rounding of two numbers of size ``N^2``, and the next layer reads it. Where the
derivation of :mod:`ntksym.dual.families.mgf_expr_det` gives a form certified by
:mod:`ntksym.dual.families.mgf_expr_check`, the module computes that form instead, but
only at the entries whose direct difference cancels (``< GATE N11 N22``), whose error
there would show (:data:`SCALE`) and whose variances are at least the
certified floor: the form is thousands of operations, the direct difference one.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp
from sympy.printing.pycode import PythonCodePrinter

from ntksym.codegen.spec import KernelSpec, S
from ntksym.dual.families.mgf_expr_check import GATE, certified_det
from ntksym.dual.stable import D

__all__ = ["SCALE", "MendSpec", "keeps_twins", "mend_spec"]

#: The map reads the next determinant D' through ``exp(-gamma)``, ``gamma`` about
#: ``D' / (2 N)``: the direct difference's rounding, ``eps N^2``, moves ``gamma`` by
#: about ``eps N / 2``, at most ``2 eps`` where ``N < 4``. Only pairs with ``N >= 4`` are
#: mended. (A bound on ``gamma`` too would hold for ``sin(u) + u``, whose terms in
#: ``exp(-gamma)`` sit beside terms of size 1, but not for ``exp``, which is that term
#: alone; and on nearly parallel inputs it bought 4 %.)
SCALE = 4.0


@dataclass(frozen=True)
class MendSpec:
    """What the templates print for the mended determinant (``_pair_mend``).

    Attributes:
        gate: Entries whose direct difference is below ``gate N11 N22`` are mended, ...
        scale: ... and with ``sqrt(N11 N22) >= scale`` (:data:`SCALE`), ...
        floor: ... and only those with ``min(S11, S22) >= floor`` (the certified range).
        pos_lines: ``(name, code)`` lines of the form for ``S12 > 0``.
        pos_code: Its value.
        neg_lines: Lines of the form for ``S12 <= 0`` (names apart from ``pos_lines``).
        neg_code: Its value.
        worst: The certification's worst error (a comment in the module).
    """

    gate: str
    scale: str
    floor: str
    pos_lines: tuple[tuple[str, str], ...]
    pos_code: str
    neg_lines: tuple[tuple[str, str], ...]
    neg_code: str
    worst: str


def _printed(expr: sp.Expr, pr: PythonCodePrinter, prefix: str) -> tuple[tuple, str]:
    """Common subexpressions of ``expr`` (named ``prefix0, ...``) and its value, printed."""
    reps, (reduced,) = sp.cse([expr], symbols=sp.numbered_symbols(prefix), order="canonical")
    return tuple((str(v), pr.doprint(e)) for v, e in reps), pr.doprint(reduced)


def keeps_twins(spec: KernelSpec) -> bool:
    """Whether the map needs its next determinant kept (twins by hand, a mend where found).

    A next determinant formed directly, ``N11 N22 - S12'^2``, is the rounding of two
    numbers of size ``N^2``: harmless after an activation whose variance stays moderate
    (erf, sin), but a map that reads ``D`` where ``N`` is huge (``sin(u) + u`` at 1e8:
    ``exp(-D/S)``) turns it into 1e-8 of the kernel. Such a map passes a huge variance
    on: ``E[sigma(u)^2] > 1e3`` at ``S = 1e6``. (Others skip both, a few % of a layer.)
    """
    if not any(D in e.free_symbols for e in (spec.nngp, spec.ntk) if e is not None):
        return False
    try:
        return not float(spec.diag.subs(S, 10**6).evalf()) <= 1e3
    except (TypeError, ValueError, ArithmeticError):
        return True  # (not a number there: keep the test)


def mend_spec(spec: KernelSpec, pr: PythonCodePrinter) -> MendSpec | None:
    """The mend of ``spec``'s next determinant, or None where there is no certified form."""
    if spec.kind != "stable":
        return None
    found = certified_det(spec.activation.expr)
    if found is None:
        return None
    pos_lines, pos_code = _printed(found.forms[0], pr, "p")
    neg_lines, neg_code = _printed(found.forms[1], pr, "q")
    return MendSpec(
        repr(GATE),
        repr(SCALE),
        repr(found.min_variance),
        pos_lines,
        pos_code,
        neg_lines,
        neg_code,
        f"{found.worst:.1e}",
    )
