"""The notes' table of closed-form dual kernels, each certified against mpmath quadrature."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sympy as sp

from ntksym.derive.text import Tex, Text
from ntksym.notes.printer import notes_latex
from ntksym.notes.worked import dual_formulas

__all__ = ["CERT_COVARIANCES", "DualRow", "dual_table", "source_text"]

#: Covariances ``(s11, s12, s22)`` at which closed forms are certified (exact decimals).
CERT_COVARIANCES = (
    ("1", "0.3", "1"),
    ("2", "-0.7", "0.5"),
    ("0.5", "0.49", "0.6"),
    ("1.5", "1.2", "1.25"),
)


@dataclass(frozen=True)
class DualRow:
    """One activation of the closed-form table.

    Attributes:
        name: registered name with parameters (``leaky_relu(0.1)``).
        sigma: the activation as LaTeX in ``u``.
        method: how ntksym obtained the maps; source: the citation (:class:`Text`).
        derived: True when ntksym's SymPy code derived the maps.
        has_ntk: whether the derivative map has a closed form.
        worst_nngp, worst_ntk: worst relative difference from mpmath quadrature.
        dps: working digits of the comparison; points: covariances compared.
        nngp_tex, ntk_tex: the two maps as LaTeX in the seed's notation (``""``: none).
    """

    name: str
    sigma: str
    method: str
    source: Text
    derived: bool
    has_ntk: bool
    worst_nngp: float
    worst_ntk: float | None
    dps: int
    points: int = field(default=0)
    nngp_tex: str = ""
    ntk_tex: str = ""


#: Formulas the dual families' citations quote (plain strings of :mod:`ntksym.dual`,
#: which is upstream of the engine's :class:`Text`), with their LaTeX.
QUOTED_FORMULAS = (
    Tex(
        r"\mathbb{E}\bigl[e^{b^{\mathsf T}w - w^{\mathsf T}Aw/2}\bigr]"
        r" = \det(I+\Sigma A)^{-1/2}"
        r"\exp\bigl(\tfrac12 b^{\mathsf T}(I+\Sigma A)^{-1}\Sigma b\bigr)",
        "E[exp(b'w - w'Aw/2)] = det(I+Sigma A)^(-1/2) exp(b'(I+Sigma A)^(-1) Sigma b/2)",
    ),
)


def source_text(source: str) -> Text:
    """A citation as :class:`Text`.

    The formulas of :data:`QUOTED_FORMULAS` it quotes verbatim become formulas (found by
    exact comparison, not by a pattern); everything else stays words.
    """
    for f in QUOTED_FORMULAS:
        head, found, tail = source.partition(f.plain())
        if found:
            return Text(source_text(head), f, source_text(tail))
    return Text(source)


#: Parameters used for the families in the table.
FAMILY_PARAMS: dict[str, dict[str, Any]] = {"leaky_relu": {"slope": 0.1}, "monomial": {"k": 3}}


def _worst(act: Any, derivative: bool, covs: Sequence[tuple[str, str, str]], dps: int) -> float:
    import mpmath

    from ntksym import reference

    worst = mpmath.mpf(0)
    with mpmath.workdps(dps + 10):
        for c in covs:
            a = reference.dual_closed_form(act, *c, dps=dps, derivative=derivative)
            q = reference.dual_quadrature(act, *c, dps=dps, derivative=derivative)
            scale = max(abs(q), mpmath.mpf(10) ** (-dps))
            worst = max(worst, abs(a - q) / scale)
    return float(worst)


def dual_table(
    names: Sequence[str] | None = None,
    *,
    covariances: Sequence[tuple[str, str, str]] = CERT_COVARIANCES,
    dps: int = 30,
) -> list[DualRow]:
    """Closed-form dual kernels, each certified against mpmath quadrature.

    For every activation the closed forms of ``E[sigma(u) sigma(v)]`` and
    ``E[sigma'(u) sigma'(v)]`` (:func:`ntksym.dual.closed_form`) are evaluated with
    :func:`ntksym.reference.dual_closed_form` and compared with the independent quadrature
    :func:`ntksym.reference.dual_quadrature`, both at ``dps`` digits, at each covariance.

    Args:
        names: Registered names (default: :func:`ntksym.dual.closed_form_names`).
        covariances: ``(s11, s12, s22)`` triples as exact decimal strings.
        dps: Decimal digits of both evaluations.

    Returns:
        One :class:`DualRow` per activation.
    """
    from ntksym import dual
    from ntksym.activations import get_activation, u

    rows = []
    for name in names if names is not None else dual.closed_form_names():
        act = get_activation(name, **FAMILY_PARAMS.get(name, {}))
        maps = dual.closed_form(act)
        has_ntk = maps.ntk is not None
        expr = act.expr
        nngp_tex, ntk_tex = dual_formulas(maps)
        rows.append(
            DualRow(
                name=act.name,
                sigma=notes_latex(expr.xreplace({u: sp.Symbol("u")})),
                method=maps.method,
                source=source_text(maps.source),
                derived=maps.derived,
                has_ntk=has_ntk,
                worst_nngp=_worst(act, False, covariances, dps),
                worst_ntk=_worst(act, True, covariances, dps) if has_ntk else None,
                dps=dps,
                points=len(covariances),
                nngp_tex=nngp_tex,
                ntk_tex=ntk_tex,
            )
        )
    return rows
