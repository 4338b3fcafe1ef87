"""NNGP/NTK Gram matrices as :mod:`dask.array`: ``ntksym.dask.gram(X1, X2, ...)``.

Each output block ``K[I, J]`` is one task that calls the generated kernel (the
same code path as :func:`ntksym.kernel`) on the rows ``X1[I]`` and ``X2[J]``, so
the same code runs on a laptop's threads or on a ``dask.distributed`` cluster.
For ``K(X, X)`` only the blocks on and above the diagonal are computed; the
others are their transposes, so the result is exactly symmetric. ``network=`` takes a
described network (a ``ntksym.stax`` layer) instead of the homogeneous parameters.

Needs the optional extra: ``pip install "ntksym[dask]"``.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ntksym.errors import InputError
from ntksym.kernels.api import Kernels, kernel, parse_get, result_type, validate_inputs
from ntksym.kernels.described import DescribedKernel, build_kernel

__all__ = ["gram"]


def _block(
    A: np.ndarray,
    B: np.ndarray | None,
    params: tuple[Any, int, float, float, str] | DescribedKernel,
    get: tuple[str, ...],
) -> np.ndarray:
    """One block: shape (nA, nB), or (2, nA, nB) for both matrices."""
    if isinstance(params, DescribedKernel):
        k: Any = params
    else:
        activation, depth, bias_std, weight_std, backend = params
        k = kernel(activation, depth, bias_std, weight_std, backend=backend)
    res = k(A, B, get=get)
    return np.stack(res) if len(get) == 2 else res[0]


def _task_params(k: Any, n_pairs: int, activation: Any) -> tuple[Any, Any]:
    """What each task gets to rebuild the kernel, and what names it in the graph's keys."""
    if isinstance(k, DescribedKernel):
        resolved = k.resolved(n_pairs)  # every block on the whole matrix's backend
        return resolved, (resolved.identity()["network_sha256"], resolved.backend)
    params = (activation, k.depth, k.bias_std, k.weight_std, k.backend)
    return params, params


def _check_chunks(chunks: Any) -> None:
    if chunks is not None and (
        isinstance(chunks, bool) or not isinstance(chunks, numbers.Integral) or chunks < 1
    ):
        raise InputError(f"chunks must be a positive integer (rows per block), got {chunks!r}")


def _mirror(block: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.swapaxes(block, -1, -2))


def _as_dask(X: Any, name: str, rows: int | None) -> Any:
    import dask.array as da

    if isinstance(X, da.Array):
        if X.ndim != 2:
            raise InputError(f"{name} must be 2-D with shape (n_inputs, n_features), got {X.shape}")
        if X.dtype.kind not in "fiu":
            raise InputError(f"{name} must hold real numbers (float or integer), got {X.dtype}")
        X = X.astype(np.float64)
    else:
        X, _ = validate_inputs(X)
        X = da.from_array(X, chunks=(X.shape[0], X.shape[1]))
    row_chunks = rows if rows is not None else (X.chunks[0] if len(X.chunks[0]) > 1 else 1000)
    return X.rechunk((row_chunks, -1))


def gram(
    X1: Any,
    X2: Any = None,
    *,
    activation: Any = None,
    depth: int | None = None,
    bias_std: float = 0.0,
    weight_std: float = 1.0,
    get: str | tuple[str, ...] = "ntk",
    chunks: int | None = None,
    backend: str = "auto",
    network: Any = None,
) -> Any:
    """Lazy NNGP/NTK Gram matrix whose blocks are computed by the generated kernel.

    Args:
        X1: Inputs (N1, d): a NumPy array (checked now) or a dask array (checked
            per block when computed).
        X2: Inputs (N2, d), or None for ``K(X1, X1)`` (exactly symmetric).
        activation: Registered name, expression or Activation, as for :func:`ntksym.kernel`.
        depth: Number of affine layers L >= 1.
        bias_std: Bias scale >= 0.
        weight_std: Weight scale >= 0.
        get: ``"nngp"``, ``"ntk"``, or a tuple of both (then a
            :class:`~ntksym.kernels.Kernels` of two dask arrays sharing their tasks:
            compute them together with ``dask.compute(*result)``).
        chunks: Rows per block (blocks are ``chunks x chunks``); default: the
            dask arrays' row chunks, else 1000.
        backend: ``"auto"``, ``"numba"``, ``"numpy"``, ``"dual"``; with ``network``,
            ``"auto"`` (every block on the whole matrix's backend), ``"layers"``, ``"fused"``.
        network: A description, ``ntksym.stax`` layer or triple, or a ``DescribedKernel``,
            instead of ``activation`` and ``depth``.

    Returns:
        A ``dask.array.Array`` of shape (N1, N2), or a Kernels of them.

    Raises:
        InputError: Bad inputs or parameters (found before any task runs).
        ImportError: dask is not installed.
    """
    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    wanted = parse_get(get)
    _check_chunks(chunks)
    k = build_kernel(network, activation, depth, bias_std, weight_std, backend, "dask.gram")
    A = _as_dask(X1, "X1", chunks)
    symmetric = X2 is None
    B = A if symmetric else _as_dask(X2, "X2", chunks)
    if A.shape[1] != B.shape[1]:
        raise InputError(
            f"X1 and X2 must have the same number of features, got {A.shape[1]} and {B.shape[1]}"
        )
    params, token = _task_params(k, A.shape[0] * B.shape[0], activation)
    both = len(wanted) == 2
    name = "ntksym-gram-" + tokenize(A, None if symmetric else B, token, wanted)
    lead = (0,) if both else ()
    dsk: dict = {}
    for i in range(len(A.chunks[0])):
        for j in range(len(B.chunks[0])):
            key = (name, *lead, i, j)
            if symmetric and j < i:
                dsk[key] = (_mirror, (name, *lead, j, i))
            elif symmetric and i == j:
                dsk[key] = (_block, (A.name, i, 0), None, params, wanted)
            else:
                dsk[key] = (_block, (A.name, i, 0), (B.name, j, 0), params, wanted)
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[A] if symmetric else [A, B])
    out_chunks = ((2,), A.chunks[0], B.chunks[0]) if both else (A.chunks[0], B.chunks[0])
    K = da.Array(graph, name, chunks=out_chunks, dtype=np.float64)
    if not both:
        return K
    parts = {wanted[0]: K[0], wanted[1]: K[1]}
    if wanted == Kernels._fields:
        return Kernels(parts["nngp"], parts["ntk"])

    return result_type(wanted)(*(parts[g] for g in wanted))
