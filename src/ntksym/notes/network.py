"""The derivation of one described network's kernels, from the engine's general ones.

:func:`network_derivation` takes a network description (a :mod:`ntksym.stax` layer or
an :mod:`ntksym.architecture` record) and returns a
:class:`~ntksym.derive.Derivation` for *that* network: one step per kernel of every
layer, ``Sigma^(m)``, ``Sigmadot^(m)`` and ``Theta^(m)``, with the network's own
variances and activations.

* **Printed** is the recursion the description implies, written from its layer records
  (this module's own reading of each layer: the layer-map table of
  ``docs/architectures.md``).
* **Derived** is the engine's general statement instantiated at that layer: the
  derived ``Sigma^(1)``, NNGP map, ``Sigmadot`` and NTK map of
  :mod:`ntksym.derivations.per_layer` for a Dense layer after an activation, and those
  of :mod:`ntksym.derivations.residual` for a residual block ``x + Dense(phi(x))``, with
  the layer symbols ``l``, ``L`` set to the network's layer and ``sigma_w^(l)``,
  ``beta^(l)``, ``lambda``, ``phi_l`` to its values. The general derivations are
  derived (not re-checked) once per process.
* **Checked**: every step evaluates the recursion up to that layer in mpmath (the
  derived statements of the earlier steps, then this one; a ``Sigmadot`` step through
  the NTK step that uses it) and compares it with :func:`ntksym.reference.kernel` of
  the network cut after that layer (:mod:`ntksym.notes.network_check`).

Derived: ``Dense`` in the NTK parameterization (per-layer ``W_std``, ``b_std``) after
an elementwise activation, residual blocks ``FanOut(2), parallel(serial(activation,
Dense), Identity), FanInSum``, ``LayerNorm`` (``derivations/layer_norm.py`` at the
layer's ``eps``) and a ``Dropout(rate)`` between an activation and a Dense layer
(``dropout.py``'s map composed with the Dense layer's; :mod:`ntksym.notes.network_layers`);
``Dense(..., parameterization="standard")`` from ``derivations/standard.py`` and
``Sign`` (before a Dense layer of either parameterization, a Dropout between them or not,
inside a residual block, or last) from ``derivations/sign.py``
(:mod:`ntksym.notes.network_engine`; what a standard NTK step takes from
neural-tangents' convention rather than from the engine, its note says).
Blocks of n branches joined by ``FanInSum`` or ``FanInConcat`` are derived from
``fan_in_sum``'s n-branch form and ``fan_in_concat``'s width-weighted mean
(:mod:`ntksym.notes.network_branches`); a branch's layers before its last pair get steps
of their own, named ``m.b.j`` and checked against the referee of the network cut inside
the branch (the layers before the block, then the branch up to that layer); a block
inside a branch is one such layer, its own branches' layers named from its name
(``m.b.j.b'.j'``) and their activations named apart from the enclosing block's.
A Dense layer with no activation before it (right after a Dense layer, a LayerNorm or a
block, a Dropout between them or not) is ``per_layer``'s map with the identity for
``phi_l``; a network ending in an activation ends with the kernels of ``phi(h)``:
``per_layer``'s (4), ``Sigmadot(L+1)`` and (6) at ``sigma_w = 1``, ``beta = 0``, (7)
left out (:func:`~ntksym.notes.network_layers.activation_statement`).
A branch whose last Dense layer is standard or follows a Dropout, a branch ending in a
block, and every branch of a block on the network's input (its first Dense layer
``per_layer``'s (1) and (5) or ``standard``'s), is read whole (each of its layers a step
of its own) and the block adds its last layer's kernels.
A branch may start or end with a LayerNorm (read whole when it ends in one; summed only
with branches ending in a Dense layer of their own). ``Identity`` and
``Dropout(mode="test")`` are skipped; other shapes (two activations in a row, which the
kernels refuse too; a sum whose cross terms vanish only by LayerNorm's oddness) are
refused with a message naming what is supported (:mod:`ntksym.notes.network_rules`).
"""

from __future__ import annotations

import functools
from typing import Any

import sympy as sp

from ntksym.architecture.description import as_description
from ntksym.derive import Derivation, Step
from ntksym.derive.symbols import GaussE, L, Sigma, Sigma_dot, Theta_inf, index, l, width, x
from ntksym.derive.text import Math, Text, text
from ntksym.notes.network_branches import (
    branch_activations,
    branch_derived,
    branch_functions,
    branch_note,
    branch_printed,
    in_branch,
)
from ntksym.notes.network_engine import (
    STANDARD_CONVENTION,
    STANDARD_KINDS,
    engine_derived,
    engine_maps,
    engine_note,
    is_sign,
    sign_note,
    sign_records,
    through_sign,
)
from ntksym.notes.network_layers import (
    activation_note,
    activation_printed,
    activation_statement,
    compose_dropout,
    general_statements,
    norm_note,
    norm_printed,
    norm_statement,
    number,
)
from ntksym.notes.network_units import NO_ACTIVATION, Unit, units

__all__ = [
    "Unit",
    "general_statements",
    "network_architecture",
    "network_derivation",
    "printed_statements",
    "units",
]


# ------------------------------------------------------------ the general statements
def _instantiate(unit: Unit, key: str) -> sp.Expr:
    """The general derived ``key`` at this unit's layer and values."""
    g = general_statements()
    w, b, m = number(unit.affine.w_std), number(unit.affine.b_std), unit.m - 1
    if unit.kind == "input":
        return g[key].xreplace({g["sw"](0): w, g["bt"](0): b})
    if unit.kind in ("layer", "layer_sign", "layer_dropout"):
        e = g[key].subs({l: m, L: m})
        return compose_dropout(unit, e.xreplace({g["sw"](m): w, g["bt"](m): b}))
    e = g["res_" + key].subs({l: m, L: m}).xreplace({g["lam"]: w, g["beta"]: b})
    e = e.replace(g["sigma"], lambda a: g["phi"](m, a))
    return e.replace(g["sigmadot_seed"], lambda a: g["phidot"](m, a))


# ------------------------------------------------------------ the printed recursion
_u, _v = sp.symbols("u v", real=True)


def _gauss(f: Any, m: int) -> sp.Expr:
    return GaussE(f(m, _u) * f(m, _v), _u, _v, m)


def printed_statements(unit: Unit) -> dict[str, sp.Basic]:
    """The recursion the unit's layers imply, written from its records (not derived)."""
    out = _printed(unit)
    if is_sign(unit):  # (its expectations by Sheppard's formula and 0)
        return sign_records(unit, out)
    return out


def _printed(unit: Unit) -> dict[str, sp.Basic]:
    g = general_statements()
    if unit.kind == "layer_norm":
        return norm_printed(unit)
    if unit.kind == "activation":
        return activation_printed(unit)
    if unit.kind in ("branches", "concat"):
        return branch_printed(unit)
    if unit.kind == "layer_dropout" or unit.kind in STANDARD_KINDS:
        from ntksym.notes.network_printed import printed_records

        return printed_records(unit, g["phi"], g["phidot"])
    w, b, m = number(unit.affine.w_std), number(unit.affine.b_std), unit.m
    if unit.kind == "input":
        i = index("i")
        dot = sp.Sum(x()[i] * x(True)[i], (i, 1, width(0))) / width(0)
        return {"S": sp.Eq(Sigma(1), w**2 * dot + b**2), "T": sp.Eq(Theta_inf(1), Sigma(1))}
    p = m - 1
    phi, phidot = g["phi"], g["phidot"]
    theta = sp.Eq(Theta_inf(m), Theta_inf(p) * Sigma_dot(m) + Sigma(m))
    if unit.kind in ("layer", "layer_sign"):
        return {
            "S": sp.Eq(Sigma(m), w**2 * _gauss(phi, p) + b**2),
            "D": sp.Eq(Sigma_dot(m), w**2 * _gauss(phidot, p)),
            "T": theta,
        }
    return {
        "S": sp.Eq(Sigma(m), Sigma(p) + w**2 * _gauss(phi, p) + b**2),
        "T": sp.Eq(
            Theta_inf(m),
            Theta_inf(p) * (1 + w**2 * _gauss(phidot, p)) + w**2 * _gauss(phi, p) + b**2,
        ),
    }


def _derived(unit: Unit, part: str) -> sp.Basic:
    """The derived statement of one part (``S``, ``D``, ``T``) of a unit."""
    out = _derived_map(unit, part)
    if is_sign(unit):  # (the layer's map, its expectations by derivation sign)
        return through_sign(unit, out)
    return out


def _derived_map(unit: Unit, part: str) -> sp.Basic:
    m = unit.m
    if unit.kind == "layer_norm":
        name = Sigma(m) if part == "S" else Theta_inf(m)
        return sp.Eq(name, norm_statement(unit, part))
    if unit.kind == "activation":
        return activation_statement(unit, part)
    if unit.kind in ("branches", "concat"):
        return branch_derived(unit, part, _derived)
    if unit.kind in STANDARD_KINDS:
        return engine_derived(unit, part)
    if unit.kind == "input":
        if part == "S":
            return sp.Eq(Sigma(1), _instantiate(unit, "sigma1"))
        return sp.Eq(Theta_inf(1), _instantiate(unit, "theta1"))
    if part == "S":
        return sp.Eq(Sigma(m), _instantiate(unit, "sigma_next"))
    if part == "D":
        return sp.Eq(Sigma_dot(m), _instantiate(unit, "sigmadot"))
    return sp.Eq(Theta_inf(m), _instantiate(unit, "theta_next"))


# ------------------------------------------------------------ the document
_KERNEL = {"S": "nngp", "T": "ntk", "D": "ntk"}
_GENERAL = {
    ("input", "S"): ("per_layer", "1", "expectation"),
    ("input", "T"): ("per_layer", "5", "delta_sum"),
    ("layer", "S"): ("per_layer", "4", "gaussian_process"),
    ("layer", "D"): ("per_layer", "6", "law_of_large_numbers"),
    ("layer", "T"): ("per_layer", "8", "algebra"),
    ("residual", "S"): ("residual", "4", "gaussian_covariance"),
    ("residual", "T"): ("residual", "8", "algebra"),
    ("activation", "S"): ("per_layer", "4", "gaussian_process"),
    ("activation", "D"): ("per_layer", "6", "law_of_large_numbers"),
    ("activation", "T"): ("per_layer", "6", "law_of_large_numbers"),
    ("layer_norm", "S"): ("layer_norm", "4", "field_moments"),
    ("layer_norm", "T"): ("layer_norm", "6", "power_counting"),
    ("layer_dropout", "S"): ("per_layer", "4", "bernoulli_moments"),
    ("layer_dropout", "D"): ("per_layer", "6", "bernoulli_moments"),
    ("layer_dropout", "T"): ("per_layer", "8", "algebra"),
    ("layer_sign", "S"): ("per_layer", "4", "sheppard"),
    ("layer_sign", "D"): ("per_layer", "6", "almost_everywhere"),
    ("layer_sign", "T"): ("per_layer", "8", "algebra"),
    ("branches", "S"): ("fan_in_sum", "3", "independent_zero_mean"),
    ("branches", "T"): ("fan_in_sum", "7", "independent_zero_mean"),
    ("concat", "S"): ("fan_in_concat", "4", "continuous_mapping"),
    ("concat", "T"): ("fan_in_concat", "5", "continuous_mapping"),
    ("input_standard", "S"): ("standard", "1", "expectation"),
    ("input_standard", "T"): ("standard", "5", "chain_rule"),
}
for _part, _how in (("S", "gaussian_process"), ("D", "law_of_large_numbers"), ("T", "algebra")):
    for _kind in ("layer_standard", "layer_dropout_standard"):
        _GENERAL[(_kind, _part)] = ("standard", "4", _how)
#: The rules of a ``Sign`` unit's expectations (its ``T`` keeps the layer's rule).
_SIGN_RULES = {"S": "sheppard", "D": "almost_everywhere"}


def _rule(unit: Unit, part: str) -> str:
    """The rule of a unit's step: the general step's, or Sign's for its expectations."""
    if is_sign(unit) and part in _SIGN_RULES:
        return _SIGN_RULES[part]
    return _GENERAL[(unit.kind, part)][2]


def _note(unit: Unit, part: str) -> Text:
    """Which general step, at which layer and values, the statement instantiates."""
    source, label, _rule = _GENERAL[(unit.kind, part)]
    if unit.kind == "layer_norm":
        return norm_note(unit, label)
    if unit.kind == "activation":
        out = activation_note(unit, part)
        return Text(out, sign_note(part)) if is_sign(unit) else out
    if unit.kind in ("branches", "concat"):
        return branch_note(unit, part)
    g, d = general_statements(), unit.affine
    at = "" if unit.kind == "input" else ", l = L = "
    where = text(
        "engine-derived step ({lab}) of derivation {src}{at}",
        lab=label,
        src=source,
        at=f"{at}{unit.m - 1}" if at else "",
    )
    if unit.kind in STANDARD_KINDS:
        where = engine_note(unit, part)
    scale = (g["sw"], g["bt"]) if unit.kind != "residual" else (g["lam"], g["beta"])
    layer = 0 if unit.kind == "input" else unit.m - 1
    w = scale[0](layer) if unit.kind != "residual" else scale[0]
    b = scale[1](layer) if unit.kind != "residual" else scale[1]
    if unit.kind in STANDARD_KINDS:
        w, b = engine_maps()["st"].sw, g["beta"]
    vals = text(
        " with {w} and {b}",
        w=sp.Eq(w, number(d.w_std), evaluate=False),
        b=sp.Eq(b, number(d.b_std), evaluate=False),
    )
    out = Text(where, vals)
    if unit.dropout is not None:
        out = Text(out, f", its input through {unit.dropout} (derivation dropout, (3)-(6))")
    if unit.act is not None:
        phi = g["phi"](unit.m - 1, _u)
        out = Text(
            out, text(", {f}", f=sp.Eq(phi, _act_symbol(unit.act.activation.expr), evaluate=False))
        )
    if is_sign(unit):
        out = Text(out, sign_note(part))
    if unit.act is NO_ACTIVATION:
        out = Text(
            out,
            " (no activation: the Dense layer is linear in its input, so its input's "
            "covariance is all it sees: that of a Dense layer's or a LayerNorm's Gaussian "
            "field, or after FanInConcat its width-weighted mean)",
        )
    if unit.kind in STANDARD_KINDS and part == "T":
        out = Text(out, STANDARD_CONVENTION)
    return out


def _act_symbol(expr: sp.Expr) -> sp.Expr:
    from ntksym.activations.expr import u as act_u

    return expr.xreplace({act_u: _u})


def network_derivation(
    net: Any, inputs: Any = None, name: str = "network", title: str | None = None
) -> Derivation:
    """The derivation of ``net``'s kernels (see the module docstring).

    Args:
        net: a :mod:`ntksym.stax` layer, its triple, or an :mod:`ntksym.architecture`
            description.
        inputs: the inputs of the numeric check, shape ``(N, n0)`` (default: three
            seeded Gaussian inputs in three dimensions).
        name: the derivation's name.
        title: its title (default: the network in ``stax`` syntax).

    Returns:
        A :class:`~ntksym.derive.Derivation`; ``run()`` checks it.

    Raises:
        InputError: a layer that is not supported (the message names what is).
    """
    found = as_description(net)
    parts = units(net)
    arch = network_architecture(net, inputs)
    steps: list[Step] = []
    memo: dict = {}  # (the values of the statements the checks have evaluated)
    for unit in parts:
        steps += _derived_steps(unit, tuple(s.label for s in steps), arch, memo)
    return Derivation(
        name=name,
        title=title or f"The kernels of {found}",
        steps=tuple(steps),
        hypotheses=(
            "every weight and bias i.i.d. N(0, 1) in the NTK parameterization (with variance "
            "sigma_w^2/n in the standard one), limits taken sequentially (the hypotheses of "
            "the engine's derivations the steps name)",
        ),
    )


def _derived_steps(unit: Unit, before: tuple[str, ...], arch: Any, memo: dict) -> list[Step]:
    """The steps of a unit whose maps the engine derives (printed, derived, checked).

    A unit inside a branch has its statements written at the block's placeholder layer
    and renamed (:func:`~ntksym.notes.network_branches.in_branch`); its check is against
    the referee of the network before the block followed by the branch cut there.
    """
    from ntksym.notes.network_check import network_check

    printed = printed_statements(unit)
    name = dict(unit.names).get(unit.m, unit.m)
    out: list[Step] = []
    for part in ("S", "D", "T"):
        if part not in printed:
            continue
        then = in_branch(unit, _derived(unit, "T")) if part == "D" else None
        done = before + tuple(s.label for s in out)
        check = network_check(done, unit.prefix, _KERNEL[part], arch, then=then, memo=memo)
        out.append(
            Step(
                f"{part}{name}",
                in_branch(unit, printed[part]),
                _rule(unit, part),
                uses=done,
                derive=functools.partial(_derive_part, unit, part),
                extra_check=check,
                note=_branch_note(unit, _note(unit, part)),
            )
        )
    return out


def _branch_note(unit: Unit, note: Text) -> Text:
    """A note of a unit inside a branch: its formulas renamed, the layer it reads named."""
    if not unit.names:
        return note
    names = dict(unit.names)
    pieces = [Math(in_branch(unit, p.value)) if isinstance(p, Math) else p for p in note.pieces]
    if unit.m - 1 in names:
        at = f"l = L = {unit.m - 1}"
        pieces = [
            p.replace(at, f"l = L = {names[unit.m - 1]}") if isinstance(p, str) else p
            for p in pieces
        ]
    where = str(names[unit.m]).split(".")[1]
    return Text(*pieces, f" (inside branch {where} of the block of layer {unit.m})")


def network_architecture(net: Any, inputs: Any = None) -> Any:
    """The activations of ``net``'s layers as the numeric checks read them.

    Returns:
        A :class:`~ntksym.derive.layered_numeric.Architecture` with no symbolic values
        (the statements carry numbers) and ``inputs`` (default: three seeded inputs).
    """
    from ntksym.derive.layered_numeric import Architecture
    from ntksym.notes.network_check import default_inputs

    parts, phi = units(net), general_statements()["phi"]
    acts = {}
    for u in parts:
        if u.kind in ("branches", "concat"):
            acts.update(branch_activations(u))
        elif u.act is not None:
            f = branch_functions(u.branch)[0] if u.names else phi
            acts[(f, dict(u.names).get(u.m - 1, u.m - 1))] = u.act.activation
    return Architecture(
        network=as_description(net),
        values={},
        activations=acts,
        depth=len(parts),
        inputs=default_inputs() if inputs is None else inputs,
    )


def _derive_part(unit: Unit, part: str, env: dict) -> sp.Basic:
    return in_branch(unit, _derived(unit, part))
