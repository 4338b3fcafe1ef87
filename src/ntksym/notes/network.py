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
* **Checked**: every ``Sigma^(m)`` and ``Theta^(m)`` step evaluates the recursion up to
  that layer in mpmath (the derived statements of the earlier steps, then this one) and
  compares it with :func:`ntksym.reference.kernel` of the network cut after that layer
  (:mod:`ntksym.notes.network_check`).

Supported layers: ``Dense`` in the NTK parameterization (per-layer ``W_std``,
``b_std``), elementwise activations whose gradient is not zero almost everywhere, and
residual blocks ``FanOut(2), parallel(serial(activation, Dense), Identity), FanInSum``.
Anything else is refused with a message naming what is supported: the engine derives no
map for the standard parameterization, ``LayerNorm`` or ``Dropout`` yet.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import sympy as sp

from ntksym.architecture.description import (
    Dense,
    FanInSum,
    FanOut,
    Identity,
    Net,
    Nonlinearity,
    Parallel,
    Repeat,
    Serial,
    as_description,
)
from ntksym.derive import Derivation, Step
from ntksym.derive.judge import derive_statement
from ntksym.derive.network import using_network
from ntksym.derive.symbols import GaussE, L, Sigma, Sigma_dot, Tends, Theta_inf, index, l, width, x
from ntksym.derive.text import Text, text
from ntksym.errors import InputError

__all__ = [
    "Unit",
    "general_statements",
    "network_architecture",
    "network_derivation",
    "printed_statements",
    "units",
]

SUPPORTED = (
    "Dense(..., parameterization='ntk'), an activation followed by a Dense layer, and "
    "residual blocks FanOut(2), parallel(serial(activation, Dense), Identity), FanInSum"
)


@dataclass(frozen=True)
class Unit:
    """One layer of the recursion: what takes ``alpha~^(m-1)`` to ``alpha~^(m)``.

    Attributes:
        kind: ``"input"`` (the first Dense layer), ``"layer"`` (an activation, then a
            Dense layer) or ``"residual"`` (a residual block around such a pair).
        m: the index of the pre-activation it defines, ``alpha~^(m)``.
        dense: its Dense layer.
        act: its activation (None for the input layer).
        prefix: the network's layers up to this unit (the referee's network).
    """

    kind: str
    m: int
    dense: Dense
    act: Nonlinearity | None
    prefix: tuple[Net, ...]


def _flatten(net: Net) -> list[Net]:
    if isinstance(net, Serial):
        return [leaf for layer in net.layers for leaf in _flatten(layer)]
    if isinstance(net, Repeat):
        return _flatten(net.layer) * net.n
    return [net]


def _dense(layer: Any, where: str) -> Dense:
    if not isinstance(layer, Dense):
        raise InputError(f"{where}: expected a Dense layer, got {layer}; supported: {SUPPORTED}")
    if layer.parameterization != "ntk":
        raise InputError(
            f"{where}: {layer} uses the standard parameterization, for which the engine "
            f"derives no layer map yet; supported: {SUPPORTED}"
        )
    return layer


def _act(layer: Any, where: str) -> Nonlinearity:
    if not isinstance(layer, Nonlinearity):
        raise InputError(f"{where}: expected an activation, got {layer}; supported: {SUPPORTED}")
    if layer.zero_ntk:
        raise InputError(f"{where}: {layer} has a zero gradient, which the derivation excludes")
    return layer


def _branch(par: Parallel, where: str) -> tuple[Nonlinearity, Dense]:
    """The (activation, Dense) of a residual block's branch beside an Identity."""
    branches = list(par.branches)
    if len(branches) != 2 or sum(isinstance(b, Identity) for b in branches) != 1:
        raise InputError(f"{where}: a residual block needs one Identity branch; got {par}")
    (other,) = [b for b in branches if not isinstance(b, Identity)]
    leaves = _flatten(other)
    if len(leaves) != 2:
        raise InputError(
            f"{where}: the residual branch must be serial(activation, Dense); got {other}"
        )
    return _act(leaves[0], where), _dense(leaves[1], where)


def units(net: Any) -> list[Unit]:
    """The network as recursion units (see :class:`Unit`).

    Raises:
        InputError: not a description, or a layer this module does not derive.
    """
    found = as_description(net)
    if found is None:
        raise InputError(f"not a network description or a ntksym.stax layer: {net!r}")
    leaves = _flatten(found)
    if not leaves:
        raise InputError("the network has no layers")
    out = [Unit("input", 1, _dense(leaves[0], "layer 1"), None, tuple(leaves[:1]))]
    n = 1
    while n < len(leaves):
        where, m = f"layer {n + 1}", out[-1].m + 1
        if isinstance(leaves[n], FanOut):
            block = leaves[n : n + 3]
            if (
                len(block) < 3
                or leaves[n].n != 2
                or not isinstance(block[1], Parallel)
                or not isinstance(block[2], FanInSum)
            ):
                raise InputError(
                    f"{where}: a residual block is FanOut(2), parallel(...), FanInSum(); "
                    f"supported: {SUPPORTED}"
                )
            act, dense = _branch(block[1], where)
            out.append(Unit("residual", m, dense, act, tuple(leaves[: n + 3])))
            n += 3
            continue
        if n + 1 >= len(leaves):
            raise InputError(
                f"{where}: the network must end in a Dense layer (or a residual block); "
                f"got {leaves[n]} last"
            )
        act, dense = _act(leaves[n], where), _dense(leaves[n + 1], f"layer {n + 2}")
        out.append(Unit("layer", m, dense, act, tuple(leaves[: n + 2])))
        n += 2
    return out


# ------------------------------------------------------------ the general statements
def _derive_all(deriv: Derivation) -> dict[str, sp.Basic]:
    """Every derived statement of a derivation (derived, not checked)."""
    env: dict[str, sp.Basic] = {}
    for step in deriv.steps:
        with using_network(deriv.network_at(env)):
            got, _verdict = derive_statement(step, env)
        if got is not None:
            env[step.label] = got
    return env


def _rhs(stmt: sp.Basic) -> sp.Expr:
    out = stmt.rhs if isinstance(stmt, (sp.Eq, Tends)) else stmt.args[-1]
    return out.xreplace({d: sp.Integer(1) for d in out.atoms(sp.KroneckerDelta)})


@functools.lru_cache(maxsize=1)
def general_statements() -> dict[str, Any]:
    """The general derived maps, and the symbols to instantiate them.

    Returns:
        ``{"sigma1", "sigma_next", "sigmadot", "theta_next"}`` of ``per_layer``,
        ``{"res_sigma_next", "res_theta_next"}`` of ``residual`` (right-hand sides,
        Kronecker deltas set to 1), and the symbols ``sw``, ``bt``, ``phi``,
        ``phidot``, ``lam``, ``beta``, ``sigma``, ``sigmadot``.
    """
    from ntksym.derivations import per_layer, residual
    from ntksym.derive.symbols import beta, sigma, sigmadot

    pl, rs = _derive_all(per_layer.DERIVATION), _derive_all(residual.DERIVATION)
    return {
        "sigma1": _rhs(pl["1"]),
        "theta1": _rhs(pl["5"]),
        "sigma_next": _rhs(pl["4"]),
        "sigmadot": pl["Sigmadot(L+1)"],
        "theta_next": _rhs(pl["8"]),
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


def number(value: float | None) -> sp.Expr:
    """A layer's scale as a SymPy number (an integer when it is one; 0 for no bias)."""
    if value is None:
        return sp.Integer(0)
    v = float(value)
    return sp.Integer(int(v)) if v == int(v) else sp.Float(repr(v))


def _instantiate(unit: Unit, key: str) -> sp.Expr:
    """The general derived ``key`` at this unit's layer and values."""
    g = general_statements()
    w, b, m = number(unit.dense.w_std), number(unit.dense.b_std), unit.m - 1
    if unit.kind == "input":
        return g[key].xreplace({g["sw"](0): w, g["bt"](0): b})
    if unit.kind == "layer":
        e = g[key].subs({l: m, L: m})
        return e.xreplace({g["sw"](m): w, g["bt"](m): b})
    e = g["res_" + key].subs({l: m, L: m}).xreplace({g["lam"]: w, g["beta"]: b})
    e = e.replace(g["sigma"], lambda a: g["phi"](m, a))
    return e.replace(g["sigmadot_seed"], lambda a: g["phidot"](m, a))


# ------------------------------------------------------------ the printed recursion
_u, _v = sp.symbols("u v", real=True)


def _gauss(f: Any, m: int) -> sp.Expr:
    return GaussE(f(m, _u) * f(m, _v), _u, _v, m)


def printed_statements(unit: Unit) -> dict[str, sp.Basic]:
    """The recursion the unit's layers imply, written from its records (not derived)."""
    g = general_statements()
    w, b, m = number(unit.dense.w_std), number(unit.dense.b_std), unit.m
    if unit.kind == "input":
        i = index("i")
        dot = sp.Sum(x()[i] * x(True)[i], (i, 1, width(0))) / width(0)
        return {"S": sp.Eq(Sigma(1), w**2 * dot + b**2), "T": sp.Eq(Theta_inf(1), Sigma(1))}
    p = m - 1
    phi, phidot = g["phi"], g["phidot"]
    if unit.kind == "layer":
        return {
            "S": sp.Eq(Sigma(m), w**2 * _gauss(phi, p) + b**2),
            "D": sp.Eq(Sigma_dot(m), w**2 * _gauss(phidot, p)),
            "T": sp.Eq(Theta_inf(m), Theta_inf(p) * Sigma_dot(m) + Sigma(m)),
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
    m = unit.m
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
}


def _note(unit: Unit, part: str) -> Text:
    """Which general step, at which layer and values, the statement instantiates."""
    source, label, _rule = _GENERAL[(unit.kind, part)]
    g, d = general_statements(), unit.dense
    at = {"input": "", "layer": ", l = L = ", "residual": ", l = L = "}[unit.kind]
    where = text(
        "engine-derived step ({lab}) of derivation {src}{at}",
        lab=label,
        src=source,
        at=f"{at}{unit.m - 1}" if at else "",
    )
    scale = (g["sw"], g["bt"]) if unit.kind != "residual" else (g["lam"], g["beta"])
    layer = 0 if unit.kind == "input" else unit.m - 1
    w = scale[0](layer) if unit.kind != "residual" else scale[0]
    b = scale[1](layer) if unit.kind != "residual" else scale[1]
    vals = text(
        " with {w} and {b}",
        w=sp.Eq(w, number(d.w_std), evaluate=False),
        b=sp.Eq(b, number(d.b_std), evaluate=False),
    )
    out = Text(where, vals)
    if unit.act is not None:
        phi = g["phi"](unit.m - 1, _u)
        out = Text(
            out, text(", {f}", f=sp.Eq(phi, _act_symbol(unit.act.activation.expr), evaluate=False))
        )
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
    from ntksym.notes.network_check import network_check

    found = as_description(net)
    parts = units(net)
    arch = network_architecture(net, inputs)
    steps, before = [], []
    for unit in parts:
        printed = printed_statements(unit)
        for part in ("S", "D", "T"):
            if part not in printed:
                continue
            label = f"{part}{unit.m}"
            then = _derived(unit, "T") if part == "D" else None
            kernel = _KERNEL.get(part, "ntk")
            check = network_check(tuple(before), unit.prefix, kernel, arch, then=then)
            steps.append(
                Step(
                    label,
                    printed[part],
                    _GENERAL[(unit.kind, part)][2],
                    uses=tuple(before),
                    derive=functools.partial(_derive_part, unit, part),
                    extra_check=check,
                    note=_note(unit, part),
                )
            )
            before.append(label)
    return Derivation(
        name=name,
        title=title or f"The kernels of {found}",
        steps=tuple(steps),
        hypotheses=(
            "NTK parameterization, every weight and bias i.i.d. N(0, 1), limits taken "
            "sequentially (the hypotheses of the per_layer and residual derivations)",
        ),
    )


def network_architecture(net: Any, inputs: Any = None) -> Any:
    """The activations of ``net``'s layers as the numeric checks read them.

    Returns:
        A :class:`~ntksym.derive.layered_numeric.Architecture` with no symbolic values
        (the statements carry numbers) and ``inputs`` (default: three seeded inputs).
    """
    from ntksym.derive.layered_numeric import Architecture
    from ntksym.notes.network_check import default_inputs

    parts, phi = units(net), general_statements()["phi"]
    return Architecture(
        network=as_description(net),
        values={},
        activations={(phi, u.m - 1): u.act.activation for u in parts if u.act is not None},
        depth=len(parts),
        inputs=default_inputs() if inputs is None else inputs,
    )


def _derive_part(unit: Unit, part: str, env: dict) -> sp.Basic:
    return _derived(unit, part)
