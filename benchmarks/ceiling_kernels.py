"""The cheapest kernel of a network's form: a measured ceiling for the speed-up over a peer.

A *ceiling kernel* computes the NNGP and the NTK ``K(X, X)`` of one fully connected network
(NTK parameterization) the way neural-tangents does, with everything a fast kernel of that
form would do and nothing more:

* the Gram product by BLAS, written into the first output (``np.matmul(..., out=K)``);
* per pair of the upper triangle, one row at a time in chunks of 256 columns, each layer's
  map in a short loop that LLVM vectorises (the minimal maps of ``bench_bound.py``: no
  carried determinant, the diagonal terms hoisted per layer and column, ``atan2`` as the
  branch-free ``_atan2`` of the generated modules);
* the fused modules' blocked mirror of both upper triangles into the lower ones;
* no checks: no non-finite count, no near-parallel rescue, no input validation.

So it loses digits where neural-tangents does (near-parallel pairs) and is *not* a kernel to
use: it is a bound to measure. If this kernel, timed side by side with neural-tangents, is
below a speed-up goal, no kernel that forms the Gram product and one inverse trigonometric
function per layer and pair reaches that goal on the machine: the carried determinant and
the checks of ntksym's fused kernels only add to it.

Networks (:func:`program`): ``residual`` and ``mixed`` as in ``bench_stax.py``, and the
homogeneous ``relu<L>`` / ``erf<L>`` of ``bench_gram.py`` (``L - 1`` Dense-activation layers,
then Dense; ``b_std = 0.1``, ``W_std = 1``). Sources of the maps: ReLU, Cho & Saul (2009);
erf, Williams (1997); GELU, Tsuchida et al. (2021), arXiv:2002.08517.
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np

from ntksym.codegen.runtime.numba_atan2 import _atan2
from ntksym.codegen.runtime.numba_mirror import mirror_all

PI = math.pi
FM = {"contract"}
CHUNK = 256
DENSE, RELU, ERF, GELU, PUSH, ADD = range(6)
ACTS = {"relu": RELU, "erf": ERF, "gelu": GELU}


@numba.njit(inline="always", error_model="numpy", fastmath=FM)
def relu_map(s12: float, a: float, b: float) -> tuple[float, float]:
    """ReLU's E[s s] and E[s' s'] from S12 and ``a = sqrt(S11 S22)`` (``b`` unused)."""
    h = math.sqrt(max(a * a - s12 * s12, 0.0))
    th = _atan2(h, s12)
    return (h + (PI - th) * s12) * (0.5 / PI), (PI - th) * (0.5 / PI)


@numba.njit(inline="always", error_model="numpy", fastmath=FM)
def erf_map(s12: float, a: float, b: float) -> tuple[float, float]:
    """erf's maps from S12 and ``b = (1 + 2 S11)(1 + 2 S22)`` (``a`` unused)."""
    h = math.sqrt(b - 4.0 * s12 * s12)
    return (2.0 / PI) * _atan2(2.0 * s12, h), (4.0 / PI) / h


@numba.njit(inline="always", error_model="numpy", fastmath=FM)
def gelu_map(s12: float, a: float, b: float) -> tuple[float, float]:
    """GELU's maps from S12, ``a = S11 S22`` and ``b = (1 + S11)(1 + S22)``."""
    d2 = b - s12 * s12
    d = math.sqrt(d2)
    t = _atan2(s12, d)
    e = ((s12 * s12 + a * d2) / (b * d) + s12 * t) * (0.5 / PI) + 0.25 * s12
    ed = (1.0 / d2 + (1.0 - a) / b + 1.0) * s12 / d * (0.5 / PI) + 0.25 + t * (0.5 / PI)
    return e, ed


@numba.njit(inline="always", error_model="numpy", fastmath=FM)
def _hoisted(op: int, s: float) -> tuple[float, float]:
    """The column terms of activation ``op`` at diagonal variance ``s`` (see the maps)."""
    if op == RELU:
        return math.sqrt(s), 0.0
    if op == ERF:
        return 0.0, 1.0 + 2.0 * s
    return s, 1.0 + s


@numba.njit(error_model="numpy", fastmath=FM)
def _diagonal(ops, w2, b2, sq, P, Q):  # type: ignore[no-untyped-def]
    """Every layer's diagonal variance, into the hoisted column terms ``P``, ``Q``."""
    for j in range(sq.shape[0]):
        s = w2[0] * sq[j] + b2[0]
        s0 = s
        for k in range(1, ops.shape[0]):
            op = ops[k]
            if op == DENSE:
                s = w2[k] * s + b2[k]
            elif op == PUSH:
                s0 = s
            elif op == ADD:
                s += s0
            else:
                P[k, j], Q[k, j] = _hoisted(op, s)
                a, b = P[k, j] * P[k, j], Q[k, j] * Q[k, j]
                if op == RELU:
                    s = relu_map(s, a, b)[0]
                elif op == ERF:
                    s = erf_map(s, a, b)[0]
                else:
                    s = gelu_map(s, a, b)[0]


@numba.njit(error_model="numpy", fastmath=FM)
def _act(op, S, T, m, pi, qi, Pk, Qk):  # type: ignore[no-untyped-def]
    """One activation on a chunk of ``m`` pairs (one loop per kind: each vectorises)."""
    if op == RELU:
        for q in range(m):
            e, ed = relu_map(S[q], pi * Pk[q], qi * Qk[q])
            S[q], T[q] = e, T[q] * ed
    elif op == ERF:
        for q in range(m):
            e, ed = erf_map(S[q], pi * Pk[q], qi * Qk[q])
            S[q], T[q] = e, T[q] * ed
    else:
        for q in range(m):
            e, ed = gelu_map(S[q], pi * Pk[q], qi * Qk[q])
            S[q], T[q] = e, T[q] * ed


@numba.njit(error_model="numpy", fastmath=FM)
def _rows(K, Th, ops, w2, b2, P, Q, inv_d):  # type: ignore[no-untyped-def]
    """The upper triangle, row by row: K holds the Gram product on entry."""
    n = K.shape[0]
    S, T = np.empty(CHUNK), np.empty(CHUNK)
    S0, T0 = np.empty(CHUNK), np.empty(CHUNK)
    for i in range(n):
        for c in range(i, n, CHUNK):
            m = min(CHUNK, n - c)
            G = K[i, c : c + m]
            for q in range(m):
                s = w2[0] * inv_d * G[q] + b2[0]
                S[q], T[q] = s, s
            for k in range(1, ops.shape[0]):
                op = ops[k]
                if op == DENSE:
                    for q in range(m):
                        s = w2[k] * S[q] + b2[k]
                        S[q], T[q] = s, w2[k] * T[q] + s
                elif op == PUSH:
                    S0[:m], T0[:m] = S[:m], T[:m]
                elif op == ADD:
                    for q in range(m):
                        S[q], T[q] = S[q] + S0[q], T[q] + T0[q]
                else:
                    _act(op, S, T, m, P[k, i], Q[k, i], P[k, c : c + m], Q[k, c : c + m])
            K[i, c : c + m] = S[:m]
            Th[i, c : c + m] = T[:m]


def program(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(ops, W_std**2, b_std**2)`` of network ``name`` (see the module docstring)."""
    layers: list[tuple[int, float, float]] = []

    def dense(w: float, b: float) -> None:
        layers.append((DENSE, w * w, b * b))

    if name == "residual":  # as bench_stax.build: Dense, 8 x (x + Dense(Relu(x))), Relu, Dense
        dense(1.0, 0.1)
        for _ in range(8):
            layers.append((PUSH, 0.0, 0.0))
            layers.append((RELU, 0.0, 0.0))
            dense(1.2, 0.1)
            layers.append((ADD, 0.0, 0.0))
        layers.append((RELU, 0.0, 0.0))
        dense(1.0, 0.1)
    elif name == "mixed":  # as bench_stax.build
        for i, act in enumerate(["relu", "erf", "gelu"] * 3):
            dense(1.0 + 0.05 * i, 0.05 + 0.02 * i)
            layers.append((ACTS[act], 0.0, 0.0))
        dense(1.1, 0.1)
    elif name.rstrip("0123456789") in ("relu", "erf"):  # as bench_gram.nt_kernel_fn
        act, depth = name.rstrip("0123456789"), int(name[len(name.rstrip("0123456789")) :])
        for _ in range(depth - 1):
            dense(1.0, 0.1)
            layers.append((ACTS[act], 0.0, 0.0))
        dense(1.0, 0.1)
    else:
        raise ValueError(f"no ceiling program for {name!r}")
    ops, w2, b2 = zip(*layers, strict=True)
    return np.array(ops, np.int64), np.array(w2), np.array(b2)


def ceiling_kernel(name: str) -> Any:
    """A call ``f(X, out=(K, T))`` filling ``K``, ``T`` with the NNGP and the NTK of ``name``."""
    ops, w2, b2 = program(name)

    def call(X: np.ndarray, out: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, ...]:
        K, Th = out
        n, d = X.shape
        P, Q = np.zeros((len(ops), n)), np.zeros((len(ops), n))
        _diagonal(ops, w2, b2, np.einsum("ij,ij->i", X, X) / d, P, Q)
        np.matmul(X, X.T, out=K)
        _rows(K, Th, ops, w2, b2, P, Q, 1.0 / d)
        mirror_all(K, Th, True)  # the generated kernels' mirror, 64 x 64 tiles
        return K, Th

    return call
