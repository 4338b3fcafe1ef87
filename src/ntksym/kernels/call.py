"""The argument handling every kernel call shares: inputs, ``get``, ``dtype`` and ``out``.

:func:`gram_call` is the body of ``k(X1, X2=None, get="ntk", dtype=None, out=None)`` for
:class:`ntksym.kernels.api.Kernel` and the described networks' kernels.

Output buffers (``out=``): a Gram matrix of N = 8000 inputs is 512 MB, and on the machines
measured in ``docs/performance.md`` the first write to freshly allocated memory costs as
much as the whole kernel of a shallow network (the kernel maps in each page). A caller that
computes many Gram matrices of one shape passes arrays back as ``out`` and pays that once.
The generated kernels write into ``out`` directly (the Gram product ``X1 @ X2.T`` is formed
there and overwritten in place); the other paths (``backend="dual"``, ``dtype=np.float32``)
compute as usual and copy the result in (:func:`fill_outs`).
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable
from functools import cache
from typing import Any, NamedTuple

import numpy as np

from ntksym._validate import real_matrix
from ntksym.errors import InputError

__all__ = [
    "GET_OPTIONS",
    "STORAGE_DTYPES",
    "GramFunction",
    "Kernels",
    "check_outs",
    "fill_outs",
    "gram_call",
    "parse_get",
    "result_type",
    "single_rows",
    "storage_dtype",
    "validate_inputs",
]


GET_OPTIONS = ("nngp", "ntk")


class Kernels(NamedTuple):
    """NNGP and NTK Gram matrices, returned when ``get`` asks for both."""

    nngp: np.ndarray
    ntk: np.ndarray


def validate_inputs(X1: Any, X2: Any = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Check Gram-matrix inputs and return them as float64 arrays.

    Args:
        X1: Array of shape (N1, d): N1 inputs with d features.
        X2: Optional array of shape (N2, d); None means X1 against itself.

    Returns:
        ``(X1, X2)`` as C-contiguous float64 arrays (``X2`` stays None).

    Raises:
        InputError: Not 2-D, empty, not a real dtype, not finite, or the
            feature dimensions differ.
    """
    A = real_matrix(X1, "X1")
    B = None if X2 is None else real_matrix(X2, "X2")
    if B is not None and A.shape[1] != B.shape[1]:
        raise InputError(
            f"X1 and X2 must have the same number of features, got {A.shape[1]} and {B.shape[1]}"
        )
    return A, B


def single_rows(X1: Any, X2: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """Two 1-D vectors as one-row matrices (a single pair); None for any other inputs.

    Raises:
        InputError: Exactly one of the two is 1-D (the rule is: both 1-D, or both 2-D).
    """
    if X2 is None:
        return None
    dims = (np.ndim(X1), np.ndim(X2))
    if dims == (1, 1):
        return np.asarray(X1)[None, :], np.asarray(X2)[None, :]
    if 1 in dims:
        raise InputError(
            f"X1 and X2 have {dims[0]} and {dims[1]} dimensions; pass two 2-D arrays of shape "
            "(n_inputs, n_features), or two 1-D vectors for the kernel of that single pair"
        )
    return None


@cache
def result_type(fields: tuple[str, ...]) -> type:
    """The named tuple returned for the kernels ``fields`` (:class:`Kernels` for both)."""
    if fields == Kernels._fields:
        return Kernels
    return namedtuple("Kernels", fields)  # noqa: PYI024 - mirrors neural-tangents' kernel_fn


def parse_get(get: Any) -> tuple[str, ...]:
    """The kernel names a ``get`` argument asks for, checked (``InputError`` otherwise)."""
    items = (
        (get,) if isinstance(get, str) else tuple(get) if isinstance(get, (tuple, list)) else None
    )
    if not items or any(not isinstance(g, str) or g not in GET_OPTIONS for g in items):
        raise InputError(f"get must be 'nngp', 'ntk' or a tuple of them, got {get!r}")
    if len(set(items)) != len(items):
        raise InputError(f"get names a kernel twice: {get!r}; ask for each at most once")
    return items


#: The dtypes a Gram matrix may be stored in (it is always computed in float64).
STORAGE_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))


def storage_dtype(dtype: Any) -> np.dtype:
    """The checked storage dtype: None or float64 (the default), or float32.

    Args:
        dtype: Anything :class:`numpy.dtype` accepts (``np.float32``, ``"float32"``), or None.

    Returns:
        ``np.dtype(np.float64)`` or ``np.dtype(np.float32)``.

    Raises:
        InputError: Any other dtype.
    """
    try:
        dt = np.dtype(np.float64 if dtype is None else dtype)
    except (TypeError, ValueError):
        dt = None
    if dt is None or all(dt != ok for ok in STORAGE_DTYPES):
        raise InputError(
            f"dtype must be float64 or float32 (the kernel is computed in float64 and stored "
            f"in one of them), got {dtype!r}"
        )
    return dt


#: ``compute(X1, X2, wanted)``: the ``wanted`` float64 Gram matrices of checked inputs
#: (with ``out=``, ``compute(X1, X2, wanted, outs)``, which may write into ``outs``).
GramFunction = Callable[..., list[np.ndarray]]


def gram_call(
    compute: GramFunction, X1: Any, X2: Any, get: Any, dtype: Any, out: Any = None
) -> Any:
    """The argument handling shared by every kernel's ``k(X1, X2=None, get="ntk", dtype=None)``.

    Checks ``get`` and ``dtype``, answers two 1-D vectors with the kernel of that pair
    (floats), checks 2-D inputs (:func:`validate_inputs`), calls ``compute`` and returns
    one array for a single ``get`` name, a named tuple (:func:`result_type`) otherwise, in
    the storage ``dtype``.

    Args:
        compute: Computes the float64 matrices of checked inputs (``X2`` None for
            ``K(X1, X1)``), in the order of ``wanted``.
        X1: Inputs (N1, d), or a 1-D vector.
        X2: Inputs (N2, d), a 1-D vector (with a 1-D ``X1``), or None.
        get: ``"nngp"``, ``"ntk"`` or a tuple of them.
        dtype: Storage dtype (see :func:`storage_dtype`).
        out: None, or arrays to write the result into (see
            :func:`ntksym.kernels.outputs.check_outs`); they are returned.

    Raises:
        InputError: Bad ``get``, ``dtype``, ``out`` or inputs (and whatever ``compute``
            raises).
    """
    wanted = parse_get(get)
    store = storage_dtype(dtype)
    pair = single_rows(X1, X2)
    if pair is not None:  # scikit-learn's callable form: one pair of 1-D rows
        if out is not None:
            raise InputError("out= needs 2-D inputs; two 1-D vectors give floats")
        A, B = validate_inputs(*pair)
        values: list[Any] = [float(m[0, 0]) for m in compute(A, B, wanted)]
    elif out is not None:
        A, B = validate_inputs(X1, X2)
        shape = (A.shape[0], A.shape[0] if B is None else B.shape[0])
        outs = check_outs(out, wanted, isinstance(get, str), shape, store, (A, B))
        values = fill_outs(compute(A, B, wanted, outs), outs)
    else:
        A, B = validate_inputs(X1, X2)
        values = compute(A, B, wanted)
        if store != np.float64:
            values = [m.astype(store) for m in values]
    if isinstance(get, str):
        return values[0]
    return result_type(wanted)(*values)


def _check_one(name: str, A: Any, shape: tuple[int, int], store: np.dtype) -> np.ndarray:
    need = f"a writeable C-contiguous {store} numpy array of shape {shape}"
    if not isinstance(A, np.ndarray):
        raise InputError(f"{name} must be {need}, got {type(A).__name__}")
    problem = (
        f"shape {A.shape}" if A.shape != shape
        else f"dtype {A.dtype}" if A.dtype != store
        else "a non-contiguous layout" if not (A.flags.c_contiguous and A.flags.aligned)
        else "a read-only buffer" if not A.flags.writeable
        else None
    )  # fmt: skip
    if problem is not None:
        raise InputError(
            f"{name} has {problem}; it must be {need} (the storage dtype is the dtype "
            "argument: float64 unless dtype=np.float32)"
        )
    return A


def check_outs(
    out: Any,
    wanted: tuple[str, ...],
    single: bool,
    shape: tuple[int, int],
    store: np.dtype,
    inputs: tuple[np.ndarray, np.ndarray | None],
) -> list[np.ndarray]:
    """The checked output arrays of a call, one per name in ``wanted``.

    Args:
        out: One array when ``get`` is a single name (``single``), else a tuple or list of
            arrays in the order of ``get``.
        wanted: The kernel names asked for.
        single: Whether ``get`` was one name (then ``out`` is one array).
        shape: (N1, N2) of the result.
        store: The storage dtype.
        inputs: The checked inputs (C-contiguous), which ``out`` must not overlap.

    Returns:
        The arrays, in the order of ``wanted``.

    Raises:
        InputError: Not an array (or not as many as ``get`` names), wrong shape or dtype,
            not C-contiguous, read-only, sharing memory with an input or with another output.
    """
    if single:
        items = [out]
        names = ["out"]
    else:
        if not isinstance(out, (tuple, list)) or len(out) != len(wanted):
            raise InputError(
                f"out must be a tuple of {len(wanted)} arrays, one per kernel of get={wanted!r} "
                f"in that order, got {type(out).__name__}"
                + (f" of length {len(out)}" if isinstance(out, (tuple, list)) else "")
            )
        items = list(out)
        names = [f"out[{i}] ({g})" for i, g in enumerate(wanted)]
    arrays = [_check_one(n, A, shape, store) for n, A in zip(names, items, strict=True)]
    for name, A in zip(names, arrays, strict=True):
        for xname, X in zip(("X1", "X2"), inputs, strict=True):
            # (both C-contiguous: overlapping bounds are overlapping memory)
            if X is not None and np.may_share_memory(A, X):
                raise InputError(
                    f"{name} shares memory with {xname}, which the kernel reads while it "
                    f"writes {name}; pass a separate array"
                )
    if len(arrays) == 2 and np.may_share_memory(arrays[0], arrays[1]):
        raise InputError(f"{names[0]} and {names[1]} share memory; pass two separate arrays")
    return arrays


def fill_outs(values: list[np.ndarray], outs: list[np.ndarray]) -> list[np.ndarray]:
    """``outs``, each holding its value (copied in, rounded to its dtype, unless it is there)."""
    for v, o in zip(values, outs, strict=True):
        if v is not o:
            np.copyto(o, v, casting="same_kind")
    return outs
