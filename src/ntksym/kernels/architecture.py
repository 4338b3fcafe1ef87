"""``kernel_fn`` of a described network: the generated kernel when it fits, else the layer maps.

A *homogeneous* network (``Dense``, activation, ``Dense``, ..., ``Dense``, every Dense in
the NTK parameterization with one ``W_std`` and one ``b_std``, one activation
throughout) is exactly ``ntksym.kernel(activation, depth, b_std, W_std)``, and is sent
to its generated module (:func:`homogeneous`). Every other network that the fused kernel
covers (:mod:`ntksym.codegen.architecture`) runs its own generated module when the Gram
matrix has at least :data:`FUSED_MIN_PAIRS` entries; the rest is evaluated layer by
layer in float64 (:mod:`ntksym.kernels.layer_maps`), in blocks of rows that bound the
memory (:mod:`ntksym.kernels.layer_blocks`).
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any

import numpy as np

from ntksym.activations import Activation, get_activation
from ntksym.architecture.description import Dense, Identity, Net, Nonlinearity
from ntksym.architecture.leaves import leaves
from ntksym.architecture.walk import check
from ntksym.codegen.architecture import Unsupported, fused_kernel
from ntksym.errors import InputError
from ntksym.kernels.api import Kernels, kernel, validate_inputs
from ntksym.kernels.call import check_outs, fill_outs
from ntksym.kernels.finite import squared_norms
from ntksym.kernels.layer_blocks import evaluate_layers

__all__ = ["BACKENDS", "FUSED_MIN_PAIRS", "compute", "homogeneous", "parse_get", "evaluate"]

#: Values of ``kernel_fn(..., backend=...)``: ``"auto"`` dispatches homogeneous networks to
#: the generated kernels and every other network the fused kernel covers to its generated
#: module (:mod:`ntksym.codegen.architecture`), ``"fused"`` always to the latter, and
#: ``"layers"`` always walks the layer maps.
BACKENDS = ("auto", "layers", "fused")
#: ``"auto"`` uses the fused kernel from this many Gram entries on: below, the layer maps
#: answer in well under a second, less than generating and compiling a module would take.
FUSED_MIN_PAIRS = 256 * 256

_KINDS = ("nngp", "ntk")

#: Checked float64 output arrays in the order of the kernels asked for, or None.
Outs = list[np.ndarray] | None


def parse_get(get: Any) -> tuple[str, ...]:
    """The kernels a ``get`` argument asks for: ``"nngp"``, ``"ntk"``, a tuple, or None (both)."""
    if get is None:
        return _KINDS
    items = (
        (get,) if isinstance(get, str) else tuple(get) if isinstance(get, (tuple, list)) else None
    )
    if not items or any(not isinstance(g, str) or g not in _KINDS for g in items):
        raise InputError(f"get must be 'nngp', 'ntk', a tuple of them or None, got {get!r}")
    if len(set(items)) != len(items):
        raise InputError(f"get names a kernel twice: {get!r}; ask for each at most once")
    return items


def _flatten(net: Net) -> list[Net] | None:
    """The layers of a chain of Dense, activations and Identity as it runs, or None if not one.

    Every layer written counts, ``Repeat(layer, 0)``'s included; Identity is dropped.
    """
    if not all(isinstance(x, (Dense, Nonlinearity, Identity)) for x in leaves(net, repeat="once")):
        return None
    return list(leaves(net, skip="identity"))


def homogeneous(net: Net) -> tuple[Activation, int, float, float] | None:
    """``(activation, depth, b_std, W_std)`` of ``ntksym.kernel``'s network, or None."""
    flat = _flatten(net)
    if not flat or len(flat) % 2 == 0:
        return None
    denses = [x for x in flat[0::2] if isinstance(x, Dense)]
    acts = [x for x in flat[1::2] if isinstance(x, Nonlinearity)]
    if len(denses) + len(acts) != len(flat):
        return None
    first = denses[0]
    if any(
        d.parameterization != "ntk" or (d.w_std, d.b2) != (first.w_std, first.b2) for d in denses
    ):
        return None
    if any(a.zero_ntk or a.activation != acts[0].activation for a in acts):
        return None
    act = acts[0].activation if acts else get_activation("identity")
    return act, len(denses), first.b_std or 0.0, first.w_std


def _result(values: dict[str, np.ndarray], wanted: tuple[str, ...], get: Any) -> Any:
    if isinstance(get, str):
        return values[get]
    if wanted == _KINDS:
        return Kernels(values["nngp"], values["ntk"])
    return namedtuple("Kernels", wanted)(*(values[g] for g in wanted))  # noqa: PYI024


def _fused(
    net: Net, A: Any, B: Any, wanted: tuple[str, ...], backend: str, given: dict[str, Any]
) -> Any:
    """The kernels by the network's generated fused module, or None where it has none.

    With arrays in ``given`` (checked float64 arrays by kernel name), the module forms the
    Gram product in the NNGP array and writes the NTK into its array.
    """
    try:
        fk = fused_kernel(net)
    except Unsupported as exc:
        if backend == "fused":
            raise InputError(
                f"backend='fused' does not cover this network ({exc}); use 'auto' or 'layers'"
            ) from None
        return None
    nngp, ntk = fk(A, B, ntk="ntk" in wanted, out=(given.get("nngp"), given.get("ntk")))
    values: dict[str, Any] = {"nngp": nngp, "ntk": ntk}  # (ntk is None when not wanted)
    if getattr(fk.module, "GUARDED", False):
        _recompute_marked(net, A, B, wanted, values)
    bad = [name for name in wanted if not np.all(np.isfinite(values[name]))]
    if bad:
        raise InputError(
            f"the {bad[0].upper()} of this network is infinite or undefined at some of these "
            "inputs (a dual map diverged or overflowed); reduce the input scale or the "
            "depth, or ask for the other kernel"
        )
    return values


#: Rows of the outputs scanned at once for entries the fused kernel marked.
_MARK_ROWS = 256


def _recompute_marked(
    net: Net, A: np.ndarray, B: np.ndarray | None, wanted: tuple[str, ...], values: dict
) -> None:
    """The entries a guarded fused kernel left NaN, computed again by the layer maps.

    A kinked activation after one that carries no determinant marks its nearly parallel
    pairs (:attr:`ntksym.codegen.arch_program.Step.guard`); the layer maps carry the
    determinant there (:func:`ntksym.dual.residual.next_det`). An activation without a
    closed form marks the pairs its Mehler series does not certify
    (:mod:`ntksym.codegen.arch_quad`); the layer maps run the longer series and the
    adaptive rule there. Rows are taken
    :data:`_MARK_ROWS` at a time, each block against the columns it marked; for ``K(X,
    X)`` the entries on and above the diagonal are computed and written to both halves
    (exactly symmetric). An entry that is NaN for another reason (an overflow) stays non-finite on
    the layer maps too, which then refuse it.
    """
    X2 = A if B is None else B
    for r0 in range(0, A.shape[0], _MARK_ROWS):
        r1 = min(A.shape[0], r0 + _MARK_ROWS)
        marked = np.zeros((r1 - r0, X2.shape[0]), dtype=bool)
        for name in wanted:
            marked |= np.isnan(values[name][r0:r1])
        if B is None:  # (the diagonal too: a series' coefficients may not have converged)
            marked &= np.arange(X2.shape[0])[None, :] >= np.arange(r0, r1)[:, None]
        rows, cols = np.flatnonzero(marked.any(axis=1)), np.flatnonzero(marked.any(axis=0))
        if rows.size == 0:
            continue
        got = evaluate_layers(net, A[r0 + rows], X2[cols], wanted)[0][0]
        sub = marked[np.ix_(rows, cols)]
        ii, jj = np.nonzero(sub)
        for name in wanted:
            values[name][r0 + rows[ii], cols[jj]] = got[name][ii, jj]
            if B is None:
                values[name][cols[jj], r0 + rows[ii]] = got[name][ii, jj]


def evaluate(
    net: Net,
    x1: Any,
    x2: Any = None,
    get: Any = _KINDS,
    backend: str = "auto",
    out: Any = None,
) -> Any:
    """The NNGP and/or NTK Gram matrices of ``net`` between the rows of ``x1`` and ``x2``.

    Returns an array for a single ``get``, a ``Kernels`` named tuple otherwise; a list of
    them when the network ends in several branches.

    ``out``: None, or the float64 arrays to write the result into (one for a single
    ``get`` name, a tuple in the order of ``get`` otherwise; a network with one output),
    checked as :meth:`ntksym.kernels.api.Kernel.__call__` checks its ``out``
    (:func:`ntksym.kernels.call.check_outs`) and returned. The same values, bit for bit.
    """
    wanted = parse_get(get)
    if backend not in BACKENDS:
        raise InputError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    A, B = validate_inputs(x1, x2)
    outs = None if out is None else _check_outs(net, out, wanted, isinstance(get, str), A, B)
    values = compute(net, A, B, wanted, backend, outs)
    if isinstance(values, list):
        return [_result(v, wanted, get) for v in values]
    if outs is not None:
        fill_outs([values[g] for g in wanted], outs)
        values = dict(zip(wanted, outs, strict=True))
    return _result(values, wanted, get)


def _check_outs(
    net: Net, out: Any, wanted: tuple[str, ...], single: bool, A: np.ndarray, B: Any
) -> list[np.ndarray]:
    branches = check(net)
    if branches != 1:
        raise InputError(
            f"out= needs a network with one output, this one ends in {branches} branches; "
            "call kernel_fn without out= (a list of kernels), or join them with FanInSum() or "
            "FanInConcat()"
        )
    shape = (A.shape[0], (A if B is None else B).shape[0])
    return check_outs(out, wanted, single, shape, np.dtype(np.float64), (A, B))


def compute(
    net: Net,
    A: np.ndarray,
    B: np.ndarray | None,
    wanted: tuple[str, ...],
    backend: str,
    outs: Outs = None,
) -> Any:
    """The ``wanted`` kernels of checked inputs, a dict by name (a list of them with branches).

    ``outs``: None, or checked float64 arrays in the order of ``wanted`` (a network with
    one output) that the generated kernels and the layer maps' row blocks write into.
    Exactly symmetric when ``B`` is None. Inputs whose squared norms overflow float64 are
    refused first (:func:`ntksym.kernels.finite.squared_norms`), on every path.
    """
    for X, name in ((A, "X1"), (B, "X2")):
        if X is not None:
            squared_norms(X, name)
    hom = homogeneous(net) if backend == "auto" else None
    if hom is not None:
        act, depth, b_std, w_std = hom
        k = kernel(act, depth, b_std, w_std)
        got = k(A, B, get=wanted, out=None if outs is None else tuple(outs))
        return dict(zip(wanted, got, strict=True))
    pairs = A.shape[0] * (A if B is None else B).shape[0]
    use_fused = backend == "fused" or (backend == "auto" and pairs >= FUSED_MIN_PAIRS)
    given = dict(zip(wanted, outs or (), strict=False))
    fused = _fused(net, A, B, wanted, backend, given) if use_fused else None
    if fused is not None:
        return fused
    results, several = evaluate_layers(net, A, B, wanted, given=given)
    return results if several else results[0]
