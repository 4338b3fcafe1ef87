"""A sum of n parallel branches, for the n of a block: the kernels add (n-branch fan_in_sum).

``fan_in_sum.py`` derives for two branches that the cross terms of a sum of fields vanish
when a branch ends in a Dense layer of its own, so that the kernels add. A block
``FanOut(n), parallel(...), FanInSum()`` of a described network has any n >= 2:
:func:`block_sum` writes the same derivation for that n, with ``dense_branches`` branches
``A_b`` ending in their own Dense layers (parameters ``U_b``, ``c_b``) and, with ``skip``,
one more that is the block's input ``z`` itself (the ``Identity`` of the block). Its steps
mirror the two-branch document's labels: (1) bilinearity gives all n^2 terms of the
covariance; (2) each of the n(n-1) cross terms is unfolded and averaged by the rules
(``independent_zero_mean``: every cross term has a branch's own zero-mean Dense layer);
(3) the kernels add, ``Sigma_1 + ... + Sigma_n`` (``+ Sigma_z``); (6) and (7) the same
for the tangent kernel of a parameter before the ``FanOut`` (``Theta_z`` is the block
input's). The whole sum is derived at once for the block's n, not by induction on the
two-branch result. (3) and (7) are checked against the code's float64 and mpmath
``FanInSum`` of n blocks at seeded random values.

This module has no ``DERIVATION`` of its own (its name starts with an underscore, so
``ntksym verify`` and the course notes do not list it): the derivation is built for the
n of a block, by :mod:`ntksym.notes.network_branches` and the tests.

Reference: as ``fan_in_sum.py``: Novak et al. (2020), neural-tangents' ``stax.FanInSum``;
Yang (2019), "Tensor programs I".
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import sympy as sp

from ntksym.derivations.fan_in_sum import SZ, D, code_check, dense, k, n, z, zp
from ntksym.derive.rules_layers import Ex, facts
from ntksym.errors import InputError
from ntksym.extend import Context, Derivation, PSum, Step, apply_rule, index, scalar, text, theta

__all__ = ["block_sum", "branch_symbols"]

TZ = scalar("Theta_z", False)
zf, zpf = sp.Function("z")(k, theta), sp.Function("z'")(k, theta)


def _branch(b: int) -> dict[str, Any]:
    """Branch ``b``'s field at ``x`` and ``x'``, unfolded and as functions of ``theta``."""
    jb = index(f"j_{b}")
    w, bias = sp.IndexedBase(f"U_{b}"), sp.IndexedBase(f"c_{b}")
    sw, sb = scalar(f"sigma_{b}"), scalar(f"beta_{b}")
    inp, inpp = sp.IndexedBase(f"a_{b}"), sp.IndexedBase(f"a_{b}'")
    fin, finp = sp.Function(f"a_{b}"), sp.Function(f"a_{b}'")
    field, fieldp = sp.IndexedBase(f"A_{b}"), sp.IndexedBase(f"A_{b}'")
    return {
        "index": jb,
        "params": (w, bias),
        "x": field[k],
        "x'": fieldp[k],
        "defs": {
            field[k]: dense(w, bias, lambda t: inp[t], sw, sb, jb),
            fieldp[k]: dense(w, bias, lambda t: inpp[t], sw, sb, jb),
        },
        "f": sp.Function(f"A_{b}")(k, theta),
        "f'": sp.Function(f"A_{b}'")(k, theta),
        "unfolded": dense(w, bias, lambda t: fin(t, theta), sw, sb, jb),
        "unfolded'": dense(w, bias, lambda t: finp(t, theta), sw, sb, jb),
        "S": scalar(f"Sigma_{b}", False),
        "T": scalar(f"Theta_{b}", False),
    }


def _skip() -> dict[str, Any]:
    """The Identity branch: the block's input ``z`` (no Dense layer, nothing to unfold)."""
    return {
        "x": z[k],
        "x'": zp[k],
        "defs": {},
        "params": (),
        "f": zf,
        "f'": zpf,
        "unfolded": zf,
        "unfolded'": zpf,
        "S": SZ,
        "T": TZ,
    }


def _pairs(bs: list[dict[str, Any]], cross: bool) -> list[tuple[dict, dict]]:
    return [(p, q) for p in bs for q in bs if (p is not q) == cross]


def _ntk_term(p: dict[str, Any], q: dict[str, Any], key: str = "f") -> sp.Expr:
    """``E[sum_theta dA_p/dtheta dA'_q/dtheta]`` (``key="unfolded"``: with A unfolded)."""
    left = sp.diff(p[key], theta) if key == "unfolded" else D(p[key])
    right = sp.diff(q[key + "'"], theta) if key == "unfolded" else D(q[key + "'"])
    return Ex(PSum(left * right))


def block_sum(dense_branches: int, skip: bool = False) -> Derivation:
    """The derivation of a block of ``dense_branches`` Dense branches (and the skip ``z``).

    Steps: (1) the covariance of the sum by bilinearity, n^2 terms; (2) the sum of its
    n(n-1) cross terms is 0, each unfolded and averaged (the branch ends in its own
    zero-mean Dense layer); (3) the kernels add: ``Sigma_1 + ... (+ Sigma_z)``; (6) and
    (7) the same for the tangent kernel at a parameter before the ``FanOut``
    (``Theta_z`` is the block input's). (3) and (7) are checked against the code's
    float64 and mpmath ``FanInSum`` of as many blocks.

    Raises:
        InputError: fewer than two branches, or no branch with a Dense layer.
    """
    if not isinstance(dense_branches, int) or dense_branches < 1 or dense_branches + skip < 2:
        raise InputError(
            f"a block needs two branches, one at least with a Dense layer; got "
            f"{dense_branches} Dense branches{' and the skip' if skip else ''}"
        )
    return _block_sum(dense_branches, skip)


def _block_parts(bs: list[dict[str, Any]]) -> dict[str, Any]:
    """The block's context (every ``U_b``, ``c_b`` zero-mean) and the sides of its steps."""
    moments = {Ex(br["x"] * br["x'"]): br["S"] for br in bs}
    moments.update({_ntk_term(br, br): br["T"] for br in bs})
    ranges = {k: n, **{br["index"]: n for br in bs if "index" in br}}
    zero = {par for br in bs for par in br["params"]}
    return {
        "bs": bs,
        "defs": {key: val for br in bs for key, val in br["defs"].items()},
        "ctx": Context(ranges=ranges, facts=facts(zero_mean=zero, moments=moments)),
        "total": Ex(sp.Add(*[br["x"] for br in bs]) * sp.Add(*[br["x'"] for br in bs])),
        "crosses": sp.Add(*[Ex(p["x"] * q["x'"]) for p, q in _pairs(bs, True)]),
        "owns": sp.Add(*[Ex(p["x"] * q["x'"]) for p, q in _pairs(bs, False)]),
        "ntk": Ex(PSum(D(sp.Add(*[br["f"] for br in bs])) * D(sp.Add(*[br["f'"] for br in bs])))),
        "ntk_crosses": sp.Add(*[_ntk_term(p, q) for p, q in _pairs(bs, True)]),
    }


def _zero_each(e: sp.Expr, ctx: Context) -> sp.Expr:
    """A cross term (unfolded) expanded and its zero-mean factors averaged."""
    return sp.simplify(apply_rule("independent_zero_mean", apply_rule("bilinearity", e, ctx), ctx))


def _n1(b: dict[str, Any], env: dict) -> sp.Basic:
    return sp.Eq(b["total"], apply_rule("bilinearity", b["total"], b["ctx"]))


def _n2(b: dict[str, Any], env: dict) -> sp.Basic:
    terms = [_zero_each(t.xreplace(b["defs"]), b["ctx"]) for t in b["crosses"].args]
    return sp.Eq(b["crosses"], sp.Add(*terms))


def _n3(b: dict[str, Any], env: dict) -> sp.Basic:
    rest = sp.expand(env["1"].rhs - env["2"].lhs) + env["2"].rhs
    return sp.Eq(b["total"], apply_rule("field_moments", rest, b["ctx"]))


def _n6(b: dict[str, Any], env: dict) -> sp.Basic:
    terms = []
    for p, q in _pairs(b["bs"], True):
        grads = _ntk_term(p, q, "unfolded").args[0]
        terms.append(_zero_each(Ex(apply_rule("parameter_sum", grads, b["ctx"])), b["ctx"]))
    return sp.Eq(b["ntk_crosses"], sp.Add(*terms))


def _n7(b: dict[str, Any], env: dict) -> sp.Basic:
    ctx, ntk = b["ctx"], b["ntk"]
    grads = ntk.args[0].replace(lambda t: isinstance(t, sp.Derivative), lambda t: t.doit())
    terms = apply_rule(
        "bilinearity", Ex(apply_rule("parameter_sum", PSum(grads.args[0]), ctx)), ctx
    )
    rest = sp.expand(terms - env["6"].lhs) + env["6"].rhs
    return sp.Eq(ntk, apply_rule("field_moments", rest, ctx))


def _fields(dense_branches: int, skip: bool) -> list[dict[str, Any]]:
    return ([_skip()] if skip else []) + [_branch(b) for b in range(1, dense_branches + 1)]


@functools.lru_cache(maxsize=8)
def _block_sum(dense_branches: int, skip: bool) -> Derivation:
    bs = _fields(dense_branches, skip)
    b = _block_parts(bs)
    rng = np.random.default_rng(29)
    syms = [br[key] for br in bs for key in ("S", "T")]
    points = [
        dict(zip(syms, map(float, rng.uniform(-2, 2, len(syms))), strict=True)) for _ in range(5)
    ]
    s_keys, t_keys = tuple(br["S"] for br in bs), tuple(br["T"] for br in bs)
    what = f"{dense_branches} Dense branches" + (" and the skip z" if skip else "")
    ctx, at = b["ctx"], functools.partial
    zm = "independent_zero_mean"
    return Derivation(
        name="fan_in_sum",
        title=f"A sum of {len(bs)} parallel branches ({what}): the kernels add",
        steps=(
            Step(
                "1",
                sp.Eq(b["total"], b["crosses"] + b["owns"]),
                "bilinearity",
                derive=at(_n1, b),
                ctx=ctx,
            ),
            Step(
                "2",
                sp.Eq(b["crosses"], 0),
                zm,
                derive=at(_n2, b),
                ctx=ctx,
                note="each cross term has a branch's own zero-mean Dense layer",
            ),
            Step(
                "3",
                sp.Eq(b["total"], sp.Add(*s_keys)),
                zm,
                uses=("1", "2"),
                derive=at(_n3, b),
                ctx=ctx,
                extra_check=code_check("s12", s_keys, points),
            ),
            Step(
                "6",
                sp.Eq(b["ntk_crosses"], 0),
                zm,
                derive=at(_n6, b),
                ctx=ctx,
                note="p before the FanOut",
            ),
            Step(
                "7",
                sp.Eq(b["ntk"], sp.Add(*t_keys)),
                zm,
                uses=("6",),
                derive=at(_n7, b),
                ctx=ctx,
                extra_check=code_check("ntk", t_keys, points),
                note="the branches' own parameters give no cross term",
            ),
        ),
        hypotheses=(
            text(
                "every branch's own U_b, c_b zero-mean, independent of each other and of the "
                "branches' inputs"
            ),
        ),
    )


def branch_symbols(dense_branches: int, skip: bool = False) -> list[tuple[sp.Symbol, sp.Symbol]]:
    """The ``(Sigma_b, Theta_b)`` of each branch in :func:`block_sum`'s order (the skip first)."""
    return [(br["S"], br["T"]) for br in _fields(dense_branches, skip)]
