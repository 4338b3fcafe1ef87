"""Generation's substitutions by ``xreplace`` against SymPy's ``subs`` (ntksym.codegen.render).

``render._with_roots`` (the variances' square roots as symbols) and
``sign_variants.positive_variant`` (the map under ``S12 > 0``) once called ``subs``; they now
rebuild the expression with ``xreplace`` (seconds less per generated fused module with
GELU). The printed code must not change: on the layer maps of several families, as the
homogeneous kernels print them and as the fused steps do (``arch_emit.loop_spec``), both
give equal expressions (``==``) and the same text. The former ``subs`` forms are written
out here as the reference.
"""

import importlib

import pytest
import sympy as sp

from ntksym.codegen.arch_emit import loop_spec
from ntksym.codegen.shared_xreplace import shared_xreplace
from ntksym.codegen.spec import kernel_spec
from ntksym.dual.stable import ROOTS, S12, Atan2Q

render = importlib.import_module("ntksym.codegen.render")
sign_variants = importlib.import_module("ntksym.codegen.sign_variants")


def _positive_by_subs(expr: sp.Expr) -> sp.Expr:
    """``sign_variants.positive_variant`` as it was, with ``subs``."""
    pos = sign_variants._S12_POS

    def quadrant(e: sp.Expr) -> sp.Expr:
        y, x = e.args
        yp, xp = y.subs(S12, pos), x.subs(S12, pos)
        if yp.is_nonnegative and xp.is_positive:
            return Atan2Q(y, x)
        if yp.is_nonnegative and xp.is_negative:
            return sp.pi - Atan2Q(y, -x)
        return e

    hold = sp.Function("atan2_hold")

    def convert(e: sp.Expr) -> sp.Expr:
        q = quadrant(e)
        return hold(*q.args) if isinstance(q, sp.atan2) else q

    out = expr.replace(lambda e: isinstance(e, sp.atan2), convert)
    out = out.subs(S12, pos).subs(pos, S12)
    return out.replace(lambda e: isinstance(e, hold), lambda e: sp.atan2(*e.args))


def _outputs(spec) -> list[sp.Expr]:
    outs = [spec.nngp, spec.ntk if spec.ntk is not None else sp.Float(0.0)]
    return outs + ([spec.det] if spec.det is not None else [])


@pytest.mark.parametrize(
    "activation", ["relu", "erf", "gelu", "abs", "step", "sin", "2*erf(0.5*u) + 0.1"]
)
def test_xreplace_substitutions_equal_subs(activation):
    spec = kernel_spec(activation)
    for form in (spec, loop_spec(spec)):
        for expr in _outputs(form):
            by_subs = expr.subs(ROOTS)
            fast = render._with_roots.__wrapped__(expr)
            assert fast == by_subs and str(fast) == str(by_subs)
            pos_subs = _positive_by_subs(by_subs)
            pos_fast = sign_variants.positive_variant.__wrapped__(fast)
            assert pos_fast == pos_subs and str(pos_fast) == str(pos_subs)


def test_roots_of_the_variances_as_subs_makes_them():
    s11, r11 = next(iter(ROOTS)).base, next(iter(ROOTS.values()))
    for expr, want in [
        (sp.sqrt(s11), r11),
        (s11 ** sp.Rational(3, 2), r11**3),
        (1 / sp.sqrt(s11), 1 / r11),
        (s11, r11**2),
        (sp.exp(-s11 / 2), sp.exp(-(r11**2) / 2)),
    ]:
        assert render._with_roots(expr) == want == expr.subs(ROOTS)


@pytest.mark.parametrize("name", ["erf", "sin", "gelu"])
def test_shared_xreplace_equals_xreplace_on_the_carried_determinants(name):
    """The graph walk (each distinct subexpression rebuilt once) gives ``xreplace``'s result."""
    from ntksym.dual.families import erf, gelu, mgf_det

    det = {"erf": erf.erf_det, "sin": mgf_det.sin_det, "gelu": lambda: gelu.gelu().carried}[name]()
    squares = {var: root**2 for var, root in ((k.base, v) for k, v in ROOTS.items())}
    assert shared_xreplace(det, squares) == det.xreplace(squares)
