"""Single-layer derivations instantiated at a described network's layers.

``derivations/layer_norm.py`` derives LayerNorm's covariance and NTK maps, and
``derivations/dropout.py`` Dropout's (training mode), from the input kernels written as
scalars (``Sigma_11``, ``Sigma_12``, ``Theta_12``, ...). A unit of a described network
(:mod:`ntksym.notes.network_units`) instantiates them: the scalars become the kernels of
the layer before (``Sigma^(p)(x, x)``, ``Sigma^(p)``, ``Theta^(p)``) and the layer's own
numbers (``eps``, the keep rate). A Dropout between an activation and a Dense layer is
composed with ``per_layer``'s Dense map: its input kernel ``E[phi phi]`` goes through
Dropout's derived map, the off-diagonal one for two examples and the one for an example
with itself on ``delta_{x x'} = 1``.

The last unit of a network that ends in an activation (kind ``"activation"``) takes
``per_layer``'s own maps at ``sigma_w = 1``, ``beta = 0`` without the last layer's
parameters (:func:`activation_statement`): neural-tangents' kernels of ``phi(h)``.
"""

from __future__ import annotations

import functools
from typing import Any

import sympy as sp

from ntksym.derive import Derivation
from ntksym.derive.judge import derive_statement
from ntksym.derive.network import using_network
from ntksym.derive.symbols import GaussE, L, Sigma, Sigma_dot, Tends, Theta_inf, l
from ntksym.derive.text import Text, text
from ntksym.notes.network_check import SAME_EXAMPLE, SigmaXX, SigmaYY
from ntksym.notes.network_units import Unit

__all__ = [
    "activation_note",
    "activation_printed",
    "activation_statement",
    "compose_dropout",
    "derive_all",
    "layer_maps",
    "norm_note",
    "norm_printed",
    "norm_statement",
    "of_derivatives",
]


def derive_all(deriv: Derivation) -> dict[str, sp.Basic]:
    """Every derived statement of a derivation (derived, not checked), by label."""
    env: dict[str, sp.Basic] = {}
    for step in deriv.steps:
        with using_network(deriv.network_at(env)):
            got, _verdict = derive_statement(step, env)
        if got is not None:
            env[step.label] = got
    return env


def number(value: float | None) -> sp.Expr:
    """A layer's scale as a SymPy number (an integer when it is one; 0 for no bias)."""
    if value is None:
        return sp.Integer(0)
    v = float(value)
    return sp.Integer(int(v)) if v == int(v) else sp.Float(repr(v))


@functools.lru_cache(maxsize=1)
def layer_maps() -> dict[str, Any]:
    """The derived maps of ``layer_norm`` (4), (6) and ``dropout`` (3)-(6), and the modules."""
    from ntksym.derivations import dropout, layer_norm

    ln, do = derive_all(layer_norm.DERIVATION), derive_all(dropout.DERIVATION)
    one = {d: sp.Integer(1) for d in ln["6"].args[1].atoms(sp.KroneckerDelta)}
    return {
        "ln": layer_norm,
        "ln_S": ln["4"].args[1],
        "ln_T": ln["6"].args[1].xreplace(one),
        "do": dropout,
        "do_S": (do["3"].rhs, do["4"].rhs),
        "do_T": (do["5"].rhs, do["6"].rhs),
    }


def _eps(unit: Unit) -> sp.Expr:
    return number(unit.norm.eps if unit.norm is not None else 0.0)


def norm_statement(unit: Unit, part: str) -> sp.Expr:
    """LayerNorm's derived map ``part`` (``S`` or ``T``) at the kernels of layer ``m - 1``."""
    g, p = layer_maps(), unit.m - 1
    ln = g["ln"]
    return g["ln_" + part].xreplace(
        {
            ln.S11: SigmaXX(p),
            ln.S22: SigmaYY(p),
            ln.S12: Sigma(p),
            ln.T12: Theta_inf(p),
            ln.eps: _eps(unit),
        }
    )


def norm_printed(unit: Unit) -> dict[str, sp.Basic]:
    """LayerNorm's maps as its record implies them (``docs/architectures.md``)."""
    p = unit.m - 1
    den = sp.sqrt(_eps(unit) + SigmaXX(p)) * sp.sqrt(_eps(unit) + SigmaYY(p))
    return {
        "S": sp.Eq(Sigma(p + 1), Sigma(p) / den),
        "T": sp.Eq(Theta_inf(p + 1), Theta_inf(p) / den),
    }


def norm_note(unit: Unit, label: str) -> Text:
    """Which step of ``layer_norm`` the statement instantiates, at which ``eps``."""
    return text(
        "engine-derived step ({lab}) of derivation layer_norm at the kernels of layer "
        "{p}, with {e}",
        lab=label,
        p=unit.m - 1,
        e=sp.Eq(layer_maps()["ln"].eps, _eps(unit), evaluate=False),
    )


def of_derivatives(e: GaussE) -> bool:
    """Whether a Gaussian expectation is of derivatives (``E[phi' phi']``, not ``E[phi phi]``)."""
    return any(f.func.__name__.endswith("dot") for f in e.args[0].atoms(sp.Function))


def compose_dropout(unit: Unit, expr: sp.Expr) -> sp.Expr:
    """Every Gaussian expectation of ``expr`` passed through Dropout's derived map.

    ``E[phi phi]`` (the Dense layer's input covariance) takes Dropout's covariance map,
    ``E[phi' phi']`` (the factor of the NTK through the activation) its NTK map; the
    map for two examples, plus ``delta_{x x'}`` times the change for one example.
    """
    if unit.dropout is None:
        return expr
    g = layer_maps()
    do, rate = g["do"], number(unit.dropout.rate)

    def through(e: GaussE) -> sp.Expr:
        derivative = of_derivatives(e)
        off, same = g["do_T"] if derivative else g["do_S"]
        off_key, same_key = (do.T12, do.T11) if derivative else (do.S12, do.S11)
        two = off.xreplace({off_key: e, do.q: rate})
        one = same.xreplace({same_key: e, do.q: rate})
        return two + SAME_EXAMPLE * (one - two)

    return expr.replace(lambda t: isinstance(t, GaussE), through)


def _rhs(stmt: sp.Basic) -> sp.Expr:
    out = stmt.rhs if isinstance(stmt, (sp.Eq, Tends)) else stmt.args[-1]
    return out.xreplace({d: sp.Integer(1) for d in out.atoms(sp.KroneckerDelta)})


@functools.lru_cache(maxsize=1)
def general_statements() -> dict[str, Any]:
    """The general derived maps, and the symbols to instantiate them.

    Returns:
        ``{"sigma1", "sigma_next", "sigmadot", "theta_next", "theta_through"}`` of
        ``per_layer`` (the last: (6), the earlier layers' parameters through ``phi_L``),
        ``{"res_sigma_next", "res_theta_next"}`` of ``residual`` (right-hand sides,
        Kronecker deltas set to 1), and the symbols ``sw``, ``bt``, ``phi``,
        ``phidot``, ``lam``, ``beta``, ``sigma``, ``sigmadot``.
    """
    from ntksym.derivations import per_layer, residual
    from ntksym.derive.symbols import beta, sigma, sigmadot

    pl, rs = derive_all(per_layer.DERIVATION), derive_all(residual.DERIVATION)
    return {
        "sigma1": _rhs(pl["1"]),
        "theta1": _rhs(pl["5"]),
        "sigma_next": _rhs(pl["4"]),
        "sigmadot": pl["Sigmadot(L+1)"],
        "theta_next": _rhs(pl["8"]),
        "theta_through": _rhs(pl["6"]),
        "res_sigma_next": _rhs(rs["4"]),
        "res_theta_next": _rhs(rs["8"]),
        "sw": per_layer.sw,
        "bt": per_layer.bt,
        "phi": per_layer.phi,
        "phidot": per_layer.phidot,
        "lam": residual.lam,
        "beta": beta,
        "sigma": sigma,
        "sigmadot_seed": sigmadot,
    }


# ------------------------------------------------------------ a network ending in phi(h)
_u, _v = sp.symbols("u v", real=True)


def activation_statement(unit: Unit, part: str) -> sp.Eq:
    """The kernels of ``phi(alpha~^(m-1))``, the network's output, from ``per_layer``.

    ``per_layer``'s (4), ``Sigmadot(L+1)`` and (6) at ``l = L = m - 1`` with
    ``sigma_w = 1`` and ``beta = 0``: the covariance of a readout
    ``sum_j w_j phi(alpha~_j) / sqrt(n)`` is the mean of its inputs' products, whose limit
    (3)-(4) is ``E[phi(u) phi(v)]``; (6), the gradient of the earlier layers' parameters
    through ``phi``, is ``Theta^(m-1) E[phi'(u) phi'(v)]``. (7), the readout's own
    parameters, is left out: there is no Dense layer after ``phi``. This is
    neural-tangents' kernel of a network ending in a nonlinearity.
    """
    g, p, m = general_statements(), unit.m - 1, unit.m
    unit_scale = {g["sw"](p): sp.Integer(1), g["bt"](p): sp.Integer(0)}
    dot = g["sigmadot"].subs(L, p).xreplace(unit_scale)
    if part == "S":
        return sp.Eq(Sigma(m), g["sigma_next"].subs(l, p).xreplace(unit_scale))
    if part == "D":
        return sp.Eq(Sigma_dot(m), dot)
    through = g["theta_through"].subs(L, p).xreplace(unit_scale)
    named = sp.expand(through).xreplace({dot: Sigma_dot(m)})
    if named != Theta_inf(p) * Sigma_dot(m):
        raise ValueError(f"(6) at sigma_w = 1 is not Theta^({p}) Sigmadot^({m}): {through}")
    return sp.Eq(Theta_inf(m), named)


def activation_printed(unit: Unit) -> dict[str, sp.Basic]:
    """The kernels of the output ``phi(h)`` as neural-tangents defines them."""
    g, p, m = general_statements(), unit.m - 1, unit.m
    return {
        "S": sp.Eq(Sigma(m), GaussE(g["phi"](p, _u) * g["phi"](p, _v), _u, _v, p)),
        "D": sp.Eq(Sigma_dot(m), GaussE(g["phidot"](p, _u) * g["phidot"](p, _v), _u, _v, p)),
        "T": sp.Eq(Theta_inf(m), Theta_inf(p) * Sigma_dot(m)),
    }


def activation_note(unit: Unit, part: str) -> Text:
    """Which steps of ``per_layer`` the output activation's statement instantiates."""
    from ntksym.activations.expr import u as act_u

    g, p = general_statements(), unit.m - 1
    assert unit.act is not None
    step = {"S": "(4)", "D": "Sigmadot(L+1) (from (6))", "T": "(6)"}[part]
    phi = sp.Eq(g["phi"](p, _u), unit.act.activation.expr.xreplace({act_u: _u}), evaluate=False)
    out = text(
        "engine-derived step {step} of derivation per_layer, l = L = {p}, with {w} and "
        "{b}, {f}: the network ends in the activation, whose kernels are those of a "
        "readout of unit weight variance and no bias",
        step=step,
        p=p,
        w=sp.Eq(g["sw"](p), 1, evaluate=False),
        b=sp.Eq(g["bt"](p), 0, evaluate=False),
        f=phi,
    )
    if part == "T":
        out = Text(
            out,
            " with its own parameters' term (7) left out (no Dense layer follows: "
            "neural-tangents' NTK of a network ending in a nonlinearity, Theta E[phi' phi'])",
        )
    return out
