"""The mpmath referee for a described network: the same walk, pair by pair, at any precision.

Every entry of the Gram matrices runs the network's kernel maps (see
:mod:`ntksym.kernels.layer_maps` for the list) in mpmath at ``dps`` digits plus guard digits.
The inputs' inner products are exact (extended-precision ``fsum`` of the exact float
values) and each activation's two dual maps come from :func:`ntksym.reference.dual`, by
quadrature (``method="quadrature"``, never a closed form) unless asked otherwise, so the
referee shares nothing with the float64 path but the description.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import mpmath
import numpy as np

from ntksym._validate import real_matrix
from ntksym.architecture.description import (
    Dense,
    Dropout,
    LayerNorm,
    Net,
    Nonlinearity,
    as_description,
)
from ntksym.architecture.walk import Meta, Walker, check
from ntksym.errors import IndefiniteCovarianceError, InputError
from ntksym.reference.convert import (
    GUARD_DIGITS,
    ReferenceNotConverged,
    check_dps,
    check_method,
    to_float,
)
from ntksym.reference.duals import dual

__all__ = ["Pair", "MpmathOps", "reference_kernels", "described_kernel"]

mp = mpmath.mp


@dataclass(frozen=True)
class Pair:
    """One pair's covariance entries and NTK, as mpf.

    ``same`` marks an input paired with itself in ``K(X, X)`` (one example: Dropout
    draws one mask for both).
    """

    s11: Any
    s22: Any
    s12: Any
    ntk: Any
    same: bool = False


class MpmathOps:
    """The kernel maps in mpmath (an :class:`~ntksym.architecture.walk.Ops`); duals cached."""

    def __init__(self, dps: int, method: str) -> None:
        self.dps, self.method = dps, method
        self._cache: dict[tuple[Any, ...], Any] = {}

    def _dual(self, layer: Nonlinearity, s11: Any, s12: Any, s22: Any, derivative: bool) -> Any:
        key = (layer.activation, derivative, s11, s12, s22)
        if key not in self._cache:
            try:
                self._cache[key] = dual(
                    layer.activation,
                    s11,
                    s12,
                    s22,
                    dps=self.dps,
                    derivative=derivative,
                    method=self.method,
                )
            except IndefiniteCovarianceError:
                # the walk's own covariance, singular to within the digits asked for
                raise InputError(
                    f"the referee at dps={self.dps} cannot resolve a pair of inputs at {layer}: "
                    "their covariance there is singular to within these digits (nearly "
                    "parallel inputs whose angle earlier layers shrank); ask for more "
                    f"digits (dps={self.dps + 20})"
                ) from None
        return self._cache[key]

    def dense(self, p: Pair, meta: Meta, layer: Dense) -> Pair:
        """Sigma and Theta after a Dense layer."""
        w2 = mpmath.mpf(layer.w_std) ** 2
        b2 = mpmath.mpf(0) if layer.b_std is None else mpmath.mpf(layer.b_std) ** 2
        s11, s22, s12 = (w2 * s + b2 for s in (p.s11, p.s22, p.s12))
        if layer.parameterization == "ntk":
            ntk = w2 * p.ntk + s12
        else:
            n_in = mpmath.mpf(meta.width) / layer.s[0]
            ntk = w2 * p.ntk + n_in * p.s12 + (0 if layer.b_std is None else 1)
        return Pair(s11, s22, s12, ntk, p.same)

    def nonlinearity(self, p: Pair, layer: Nonlinearity) -> Pair:
        """Sigma and Theta after an activation, by quadrature of its dual maps."""
        k12 = self._dual(layer, p.s11, p.s12, p.s22, False)
        k11 = self._dual(layer, p.s11, p.s11, p.s11, False)
        k22 = self._dual(layer, p.s22, p.s22, p.s22, False)
        if layer.zero_ntk:
            ntk = mpmath.mpf(0)
        else:
            ntk = p.ntk * self._dual(layer, p.s11, p.s12, p.s22, True)
        return Pair(k11, k22, k12, ntk, p.same)

    def layer_norm(self, p: Pair, layer: LayerNorm) -> Pair:
        """Every entry divided by the square roots of its two (eps-shifted) variances."""
        eps = mpmath.mpf(layer.eps)
        p1, p2 = eps + p.s11, eps + p.s22
        scale = mpmath.sqrt(p1 * p2)
        return Pair(p.s11 / p1, p.s22 / p2, p.s12 / scale, p.ntk / scale, p.same)

    def dropout(self, p: Pair, layer: Dropout) -> Pair:
        """Variances over ``rate``; covariance and NTK too for an input with itself."""
        f = 1 / mpmath.mpf(layer.rate)
        g = f if p.same else mpmath.mpf(1)
        return Pair(f * p.s11, f * p.s22, g * p.s12, g * p.ntk, p.same)

    def fan_in_sum(self, ps: Sequence[Pair]) -> Pair:
        """The sum of independent branches."""
        s11, s22, s12, ntk = (
            mpmath.fsum(getattr(p, f) for p in ps) for f in ("s11", "s22", "s12", "ntk")
        )
        return Pair(s11, s22, s12, ntk, ps[0].same)

    def fan_in_concat(self, ps: Sequence[Pair], widths: Sequence[int]) -> Pair:
        """The branches' mean weighted by their widths (exact rational weights)."""
        total = mpmath.mpf(sum(widths))
        s11, s22, s12, ntk = (
            mpmath.fsum(w * getattr(p, f) for p, w in zip(ps, widths, strict=True)) / total
            for f in ("s11", "s22", "s12", "ntk")
        )
        return Pair(s11, s22, s12, ntk, ps[0].same)


def _inner(x: Sequence[Any], y: Sequence[Any]) -> Any:
    with mpmath.workprec(2 * mp.prec + 64):
        return mpmath.fsum(a * b for a, b in zip(x, y, strict=True))


def _input_pair(x: Sequence[Any], y: Sequence[Any], same: bool) -> Pair:
    n0 = len(x)
    return Pair(_inner(x, x) / n0, _inner(y, y) / n0, _inner(x, y) / n0, mpmath.mpf(0), same)


def _collect(node: Any, out: list[tuple[Any, Any]]) -> None:
    if isinstance(node, list):
        for branch in node:
            _collect(branch, out)
    else:
        out.append((node[0].s12, node[0].ntk))


def reference_kernels(
    net: Any,
    X1: Any,
    X2: Any = None,
    *,
    dps: int = 30,
    method: str = "quadrature",
    confirm: bool = False,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """NNGP and NTK Gram matrices of a described network in mpmath, rounded to float64.

    A referee for small ``N``: every pair runs the whole walk (dual values shared
    between pairs are cached). Its digits can be lost on hostile inputs (a covariance
    nearly singular, amplified by later layers) without an error: with ``confirm`` the
    walk runs again at ``dps + 20`` digits, and every entry must agree to
    :data:`CONFIRM_ULPS` units in the last place of float64.

    Args:
        net: A ``ntksym.stax`` layer, its ``(init_fn, apply_fn, kernel_fn)`` triple or
            its description (``layer.description`` or a layer record).
        X1: Inputs, shape (N1, n0).
        X2: Inputs, shape (N2, n0); None means X1 against itself.
        dps: Decimal digits of the computation (15..1000).
        method: How each dual map is computed (:func:`ntksym.reference.dual`);
            ``"quadrature"`` by default, independent of every closed form.
        confirm: Run again at ``dps + 20`` and compare (twice the time, or more).

    Returns:
        One ``(nngp, ntk)`` pair of float64 arrays per output of the network (one,
        unless the network ends in several branches), in branch order.

    Raises:
        InputError: Bad inputs, dps or method, or a network that is not well formed.
        ReferenceNotConverged: With ``confirm``, the two runs disagree (the message names
            the entry, both values and the digits to ask for).
    """
    found = as_description(net)
    if found is None:
        raise InputError(
            "reference_kernels takes a network of ntksym.stax (a layer, its (init_fn, "
            f"apply_fn, kernel_fn) triple or its description), got {type(net).__name__}"
        )
    net = found
    dps, method = check_dps(dps), check_method(method)
    A = real_matrix(X1, "X1")
    B = A if X2 is None else real_matrix(X2, "X2")
    if A.shape[1] != B.shape[1]:
        raise InputError(
            f"X1 and X2 must have the same number of features, got {A.shape[1]} and {B.shape[1]}"
        )
    results = _walk_pairs(net, A, B, X2 is None, dps, method)
    if confirm:
        _confirm(results, _walk_pairs(net, A, B, X2 is None, dps + 20, method), dps)
    return results


#: How far apart (float64 units in the last place) a confirmed referee's two runs may be.
CONFIRM_ULPS = 2


def _walk_pairs(
    net: Net, A: np.ndarray, B: np.ndarray, sym: bool, dps: int, method: str
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every pair's walk at ``dps`` digits (with ``sym``: the upper triangle, mirrored)."""
    ops = MpmathOps(dps, method)
    shape = (len(A), len(B))
    results: list[tuple[np.ndarray, np.ndarray]] = []
    with mp.workdps(dps + GUARD_DIGITS):
        rows = [[mpmath.mpf(float(v)) for v in r] for r in A]
        cols = [[mpmath.mpf(float(v)) for v in r] for r in B]
        for i, x in enumerate(rows):
            for j, y in enumerate(cols):
                if sym and j < i:
                    for nngp, ntk in results:
                        nngp[i, j], ntk[i, j] = nngp[j, i], ntk[j, i]
                    continue
                start = _input_pair(x, y, sym and i == j)
                node = Walker(ops).run(net, (start, Meta(width=A.shape[1])))
                found: list[tuple[Any, Any]] = []
                _collect(node, found)
                if not results:
                    results = [(np.empty(shape), np.empty(shape)) for _ in found]
                for (nngp, ntk), (s12, theta) in zip(results, found, strict=True):
                    nngp[i, j], ntk[i, j] = to_float(s12), to_float(theta)
    return results


def _confirm(
    first: list[tuple[np.ndarray, np.ndarray]],
    second: list[tuple[np.ndarray, np.ndarray]],
    dps: int,
) -> None:
    """Raise ReferenceNotConverged where the runs at ``dps`` and ``dps + 20`` disagree."""
    eps = float(np.finfo(np.float64).eps)
    for a_pair, b_pair in zip(first, second, strict=True):
        for name, a, b in zip(("NNGP", "NTK"), a_pair, b_pair, strict=True):
            with np.errstate(invalid="ignore"):
                bad = ~(np.abs(a - b) <= CONFIRM_ULPS * eps * np.maximum(np.abs(a), np.abs(b)))
            bad &= ~((a == b) | (np.isnan(a) & np.isnan(b)))
            if bad.any():
                i, j = (int(k) for k in np.argwhere(bad)[0])
                raise ReferenceNotConverged(
                    f"the referee's {name} at ({i}, {j}) is {float(a[i, j])!r} at dps={dps} and "
                    f"{float(b[i, j])!r} at dps={dps + 20}: its digits do not hold for these "
                    f"inputs; ask for more (dps={dps + 20} with confirm)"
                )


def described_kernel(
    net: Net, X1: Any, X2: Any, *, dps: int, method: str, ntk: bool, **homogeneous: Any
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`ntksym.reference.kernel` of a described network: its one ``(nngp, ntk)`` pair.

    ``homogeneous`` holds the arguments that only the homogeneous network takes (depth and
    scales); they must be unset, since the description carries them. ``ntk=False``
    returns the NTK as NaN, as for the homogeneous network.

    Raises:
        InputError: Such an argument is set, or the network ends in several branches
            (use :func:`reference_kernels`), or anything :func:`reference_kernels` refuses.
    """
    given = sorted(k for k, v in homogeneous.items() if v is not None)
    if given:
        raise InputError(
            f"a described network carries its own depth and scales; do not pass {given} with it"
        )
    outputs = check(net)
    if outputs != 1:
        raise InputError(
            f"ntksym.reference.kernel needs a network with one output, this one ends in "
            f"{outputs} branches; use reference_kernels for one result per branch"
        )
    ((nngp, theta),) = reference_kernels(net, X1, X2, dps=dps, method=method)
    return nngp, theta if ntk else np.full_like(theta, np.nan)
