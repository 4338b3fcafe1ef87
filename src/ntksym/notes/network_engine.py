"""The standard parameterization and ``Sign`` in a described network, from the engine.

:mod:`ntksym.notes.network` instantiates ``per_layer``'s and ``residual``'s general
statements at a network's layers; this module does the same for two more documents:

* ``derivations/standard.py`` (Sohl-Dickstein et al. 2020; Lee et al. 2019, appendix)
  for a ``Dense(..., parameterization="standard")`` layer: ``Sigma^(m)`` is its (4) and
  ``Sigmadot^(m)`` its ``Sigmadot(L+1)`` at ``l = L = m - 1``; ``Theta^(m)`` adds (9)
  (the earlier layers' kernel through the layer, ``Theta^(m-1) Sigmadot^(m)``), the last
  layer's weight part, which (6) shows is ``n_{m-1}`` times ``E[phi phi]``, and the bias
  part. On the input layer ``Sigma^(1)`` is (1) and ``Theta^(1)`` is (5) written out with
  (1): its weight part is ``x.x'``. Two pieces come from neural-tangents' convention, not
  from the document, and the note of every such step says so: the trained bias is
  ``b_std b`` itself (its gradient is that of ``standard.py``'s ``beta b`` divided by
  ``beta``, so its term is ``beta^2 / beta^2 = 1``), and the width multiplier ``s_in``
  divides the weight part. (9) is derived for the learning-rate-scaled kernel; its
  factorisation through the earlier layers' kernel is applied here to the unscaled
  standard ``Theta^(m-1)``, the widths kept as finite numbers (as neural-tangents does):
  the referee check of every step covers that reading.
* ``derivations/sign.py`` for ``Sign``: the map of the layers after it (``per_layer``'s
  for an NTK-parameterization Dense layer, ``standard``'s, a Dropout's composed with
  either, or none when the network ends in ``Sign``) with ``E[sign u sign v]`` replaced by
  the derived ``(2/pi) arcsin(rho)`` (Sheppard 1899) at the kernels of the layer before,
  and ``E[sign' sign']`` by 0 (the derivative almost everywhere, as neural-tangents).

A Dropout before a standard Dense layer is composed as before it an NTK one
(:func:`ntksym.notes.network_layers.compose_dropout`).
"""

from __future__ import annotations

import functools
from typing import Any

import sympy as sp

from ntksym.derive.symbols import GaussE, Sigma, Sigma_dot, Theta_inf
from ntksym.derive.text import Text, text
from ntksym.notes.network_check import SigmaXX, SigmaYY
from ntksym.notes.network_layers import (
    compose_dropout,
    derive_all,
    general_statements,
    number,
    of_derivatives,
)
from ntksym.notes.network_units import Unit

__all__ = [
    "STANDARD_CONVENTION",
    "STANDARD_KINDS",
    "engine_derived",
    "engine_maps",
    "engine_note",
    "is_sign",
    "sign_covariance",
    "sign_note",
    "sign_records",
    "through_sign",
]

#: What a standard ``Theta`` step takes from neural-tangents' convention, not the engine.
STANDARD_CONVENTION = (
    "; stated, neural-tangents' convention: the trained bias is b_std b (its term 1, not "
    "beta^2), the weight part is divided by s_in, and (9), derived for the learning-rate-"
    "scaled kernel, is applied to the unscaled Theta^(m-1) with the widths kept finite"
)
#: Kinds whose maps come from ``standard.py``.
STANDARD_KINDS = ("input_standard", "layer_standard", "layer_dropout_standard")


def _expectation_free(e: sp.Expr) -> sp.Expr:
    return e.replace(lambda t: isinstance(t, GaussE), lambda t: sp.Integer(0))


@functools.lru_cache(maxsize=1)
def engine_maps() -> dict[str, Any]:
    """The derived statements of ``standard`` and ``sign`` (derived once, not checked)."""
    from ntksym.derivations import sign, standard

    st, sg = derive_all(standard.DERIVATION), derive_all(sign.DERIVATION)
    return {"st": standard, "sg": sign, "st_env": st, "sg_env": sg}


def _standard_at(expr: sp.Expr, layer: sp.Symbol, unit: Unit) -> sp.Expr:
    """A ``standard.py`` expression at this unit: its layer, scales and activation."""
    from ntksym.derive.symbols import beta, sigma, sigmadot

    g, st, d, p = general_statements(), engine_maps()["st"], unit.affine, unit.m - 1
    e = expr.subs(layer, p).xreplace({st.sw: number(d.w_std), beta: number(d.b_std)})
    e = e.replace(sigma, lambda a: g["phi"](p, a))
    return e.replace(sigmadot, lambda a: g["phidot"](p, a))


def _bias_term(unit: Unit) -> sp.Expr:
    """The bias part of ``standard.py``'s (4), over ``beta^2``: neural-tangents' bias."""
    from ntksym.derive.symbols import beta

    if unit.affine.b_std is None:
        return sp.Integer(0)
    e = engine_maps()["st_env"]
    return sp.simplify(_expectation_free(e["4"].rhs) / beta**2)


def _standard_input(unit: Unit, part: str) -> sp.Eq:
    from ntksym.derive.symbols import beta

    e, st, d = engine_maps()["st_env"], engine_maps()["st"], unit.affine
    sigma1 = e["1"].args[-1]
    if part == "S":
        return sp.Eq(Sigma(1), sigma1.xreplace({st.sw: number(d.w_std), beta: number(d.b_std)}))
    dk = e["5"].args[-1].atoms(sp.KroneckerDelta).pop()
    full = sp.expand(sp.simplify((e["5"].args[-1] / dk).subs(Sigma(1), sigma1)))
    weight = full.subs(beta, 0)
    bias = sp.simplify((full - weight) / beta**2) if d.b_std is not None else 0
    return sp.Eq(Theta_inf(1), weight / d.s[0] + bias)


def _standard_next(unit: Unit, part: str) -> sp.Eq:
    from ntksym.derive.symbols import L, l

    e, m, d = engine_maps()["st_env"], unit.m, unit.affine
    if part == "S":
        out = sp.Eq(Sigma(m), _standard_at(e["4"].rhs, l, unit))
    elif part == "D":
        out = sp.Eq(Sigma_dot(m), _standard_at(e["Sigmadot(L+1)"], L, unit))
    else:
        dk = e["9"].rhs.atoms(sp.KroneckerDelta).pop()
        factor = sp.simplify(e["9"].rhs / dk / e["Sigmadot(L+1)"])
        if factor != Theta_inf(L):
            raise ValueError(f"(9) is not Theta^(L) Sigmadot^(L+1): {e['9'].rhs}")
        factor = factor.subs(L, m - 1)
        weight = unit.n_in * _standard_at(e["6"].rhs / dk, L, unit) / d.s[0]
        rhs = factor * Sigma_dot(m) + weight + _bias_term(unit)
        out = sp.Eq(Theta_inf(m), rhs)
    return sp.Eq(out.lhs, compose_dropout(unit, out.rhs))


def _sign_of(unit: Unit) -> tuple[sp.Expr, sp.Expr]:
    """``E[sign sign]`` at the kernels of layer ``m - 1``, and ``E[sign' sign']``."""
    g = engine_maps()
    sg, env, p = g["sg"], g["sg_env"], unit.m - 1
    cov = env["3"].rhs.xreplace({sg.S11: SigmaXX(p), sg.S22: SigmaYY(p), sg.S12: Sigma(p)})
    grad = sp.simplify(env["4"].rhs / sg.T12)
    return cov, grad


#: Kinds whose activation is their own (a block's ``act`` is its first branch's).
_OWN_ACTIVATION = ("layer_sign", "layer_dropout", "residual", "activation", *STANDARD_KINDS)


def is_sign(unit: Unit) -> bool:
    """Whether the unit's own activation is ``Sign`` (no gradient passes it)."""
    return unit.kind in _OWN_ACTIVATION and unit.act is not None and unit.act.zero_ntk


def through_sign(unit: Unit, stmt: sp.Eq) -> sp.Eq:
    """A derived statement of a unit with ``Sign``: its expectations by derivation sign.

    ``E[phi phi]`` becomes step (3), ``(2/pi) arcsin(rho)`` at the kernels of layer
    ``m - 1``, and ``E[phi' phi']`` step (4), 0: whatever map surrounds them (a Dense
    layer in either parameterization, a Dropout before it, or none: the network's output).
    """
    cov, grad = _sign_of(unit)
    return _expectations(stmt, cov, grad)


def _expectations(stmt: sp.Eq, cov: sp.Expr, grad: sp.Expr) -> sp.Eq:
    """``stmt`` with each ``E[phi phi]`` replaced by ``cov``, each ``E[phi' phi']`` by ``grad``."""
    rhs = stmt.rhs.replace(
        lambda t: isinstance(t, GaussE), lambda e: grad if of_derivatives(e) else cov
    )
    return sp.Eq(stmt.lhs, rhs)


def engine_derived(unit: Unit, part: str) -> sp.Eq:
    """The derived statement of ``part`` for a standard unit.

    Args:
        unit: the unit (kind in :data:`STANDARD_KINDS`).
        part: ``"S"``, ``"D"`` or ``"T"``.
    """
    if unit.kind == "input_standard":
        return _standard_input(unit, part)
    return _standard_next(unit, part)


def sign_covariance(p: Any, w2: sp.Expr, b2: sp.Expr) -> sp.Expr:
    """``w2 (2/pi) arcsin(rho) + b2``: ``Sign`` at layer ``p``'s kernels, then a Dense layer."""
    rho = Sigma(p) / (sp.sqrt(SigmaXX(p)) * sp.sqrt(SigmaYY(p)))
    return w2 * 2 * sp.asin(rho) / sp.pi + b2


def sign_records(unit: Unit, printed: dict[str, sp.Basic]) -> dict[str, sp.Basic]:
    """Printed statements of a unit with ``Sign``, its expectations read from the records.

    ``E[sign u sign v]`` is ``(2/pi) arcsin(rho)`` (Sheppard's orthant probability, written
    here, not taken from derivation sign) and ``E[sign' sign']`` is 0 (neural-tangents'
    derivative almost everywhere).
    """
    cov = sign_covariance(unit.m - 1, sp.Integer(1), sp.Integer(0))
    return {part: _expectations(stmt, cov, sp.Integer(0)) for part, stmt in printed.items()}


def sign_note(part: str) -> Text:
    """Which step of derivation sign a ``Sign`` unit's statement of ``part`` takes."""
    step = "(3), (2/pi) arcsin(rho)" if part == "S" else "(4), 0"
    return Text(f"; E[sign sign] and E[sign' sign'] by step {step} of derivation sign")


_SOURCES = {
    ("input_standard", "S"): "(1)",
    ("input_standard", "T"): "(5) with (1): the weight part x.x'",
    "S": "(4)",
    "D": "Sigmadot(L+1) (from (9))",
    "T": "(9), (6) times the input width, and the bias part of (4)",
}


def engine_note(unit: Unit, part: str) -> Text:
    """Which steps of ``standard`` the statement instantiates (and conventions)."""
    src = _SOURCES.get((unit.kind, part)) or _SOURCES[part]
    out = text("engine-derived {src} of derivation standard", src=src)
    if unit.kind != "input_standard":
        out = Text(out, f", l = L = {unit.m - 1}")
    return out
