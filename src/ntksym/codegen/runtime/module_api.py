"""Input checks and entry points of the generated kernel modules (both backends).

Included by ``_api.py.jinja`` in every generated module: ``checks`` (the validation
of the arguments, which raises ``ValueError`` with a message naming the argument and
what is allowed: a generated module cannot raise ntksym's own exceptions, since it
never imports ntksym), the signature and docstring of ``nngp_ntk`` (its body depends
on whether the activation has an NTK), and ``nngp``/``ntk``.

On its own this module computes the kernels of the identity activation, with the
stand-in ``_compute`` below.
"""

# The regions' functions carry no annotations (they are copied as they are), so mypy
# checks their bodies with the types it infers.
# mypy: check-untyped-defs

import math
import numbers

import numpy


def _compute(X1, X2, depth, B2, W2, ntk=True, out=(None, None)):
    K = W2 / X1.shape[1] * (X1 @ (X1 if X2 is None else X2).T) + B2
    T = K.copy() if ntk else None
    for _ in range(1, depth):
        K = W2 * K + B2
        T = T * W2 + K if ntk else None
    if out[0] is not None:
        out[0][...] = K
        K = out[0]
    if ntk and out[1] is not None:
        out[1][...] = T
        T = out[1]
    return K, T, not numpy.isfinite(K).all(), ntk and not numpy.isfinite(T).all()


# region checks
def _check_array(name, X):
    if isinstance(X, (str, bytes)) or X is None:
        raise ValueError(f"{name} must be a 2-D array of real numbers, got {type(X).__name__}")
    try:
        A = numpy.asarray(X)
    except Exception as exc:
        raise ValueError(f"{name} could not be read as an array: {exc}") from None
    if A.dtype.kind not in "fiu":
        raise ValueError(
            f"{name} must hold real numbers (float or integer dtype), got dtype {A.dtype}"
        )
    if A.ndim != 2:
        raise ValueError(f"{name} must be 2-D with shape (N, features), got shape {A.shape}")
    if A.shape[1] == 0:
        raise ValueError(f"{name} has no features (shape {A.shape}); need at least one column")
    A = numpy.ascontiguousarray(A, dtype=numpy.float64)
    bad = ~numpy.isfinite(A)
    if bad.any():
        r, c = numpy.argwhere(bad)[0]
        raise ValueError(
            f"{name} must be finite; entry ({r}, {c}) is {A[r, c]!r} (or too large for float64)"
        )
    return A


def _check_args(X1, X2, depth, bias_std, weight_std):
    X1 = _check_array("X1", X1)
    if X2 is not None:
        X2 = _check_array("X2", X2)
        if X2.shape[1] != X1.shape[1]:
            raise ValueError(
                f"X1 and X2 must have the same number of features; got {X1.shape[1]} and "
                f"{X2.shape[1]}"
            )
    if isinstance(depth, bool) or not isinstance(depth, numbers.Integral):
        raise ValueError(
            f"depth must be an integer >= 1 (the number of affine layers), got {depth!r}"
        )
    if depth < 1:
        raise ValueError(f"depth must be >= 1 (the number of affine layers), got {depth}")
    stds = []
    for name, v in (("bias_std", bias_std), ("weight_std", weight_std)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise ValueError(f"{name} must be a real number >= 0, got {v!r}")
        v = float(v)
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"{name} must be finite and >= 0, got {v!r}")
        stds.append(v)
    return X1, X2, int(depth), stds[0], stds[1]


def _check_out(name, A, X1, X2):
    """``A`` as the output array of K(X1, X2), checked.

    None, or a writeable, aligned, C-contiguous float64 array of shape (N1, N2) that
    shares no memory with the inputs.
    """
    if A is None:
        return None
    shape = (X1.shape[0], X1.shape[0] if X2 is None else X2.shape[0])
    need = f"a writeable C-contiguous float64 numpy array of shape {shape}"
    if not isinstance(A, numpy.ndarray):
        raise ValueError(f"{name} must be None or {need}, got {type(A).__name__}")
    problem = (
        f"shape {A.shape}" if A.shape != shape
        else f"dtype {A.dtype}" if A.dtype != numpy.float64
        else "a non-contiguous layout" if not (A.flags.c_contiguous and A.flags.aligned)
        else "a read-only buffer" if not A.flags.writeable
        else None
    )  # fmt: skip
    if problem is not None:
        raise ValueError(f"{name} has {problem}; it must be {need}")
    for xname, X in (("X1", X1), ("X2", X2)):
        # (both C-contiguous: overlapping bounds are overlapping memory)
        if X is not None and numpy.may_share_memory(A, X):
            raise ValueError(
                f"{name} shares memory with {xname}, which the kernel reads while it writes "
                f"{name}; pass a separate array"
            )
    return A


def _check_outs(out, X1, X2):
    """The pair (nngp_out, ntk_out) of an ``out`` argument, each checked (see _check_out)."""
    if out is None:
        return None, None
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise ValueError(
            f"out must be None or a pair (nngp_out, ntk_out) of arrays or None, got {out!r}"
        )
    K = _check_out("out[0] (the NNGP)", out[0], X1, X2)
    T = _check_out("out[1] (the NTK)", out[1], X1, X2)
    if K is not None and T is not None and numpy.may_share_memory(K, T):
        raise ValueError("out[0] and out[1] share memory; the NNGP and the NTK need two arrays")
    return K, T


def _finite(K, bad, what):
    if bad:
        raise ValueError(
            f"the {what} overflowed float64 (non-finite entries); scale the inputs or "
            "weight_std down"
        )
    return K
    # endregion checks


# region nngp_ntk_head
def nngp_ntk(X1, X2=None, depth=None, bias_std=0.0, weight_std=1.0, out=None):
    """NNGP and NTK Gram matrices of a depth-``depth`` network.

    Args:
        X1: Inputs, array of shape (N1, n0).
        X2: Inputs, array of shape (N2, n0), or None for X1 against itself
            (then only one triangle is computed and the result is exactly symmetric).
        depth: Number of affine layers L >= 1 (L - 1 nonlinearities).
        bias_std: Bias scale b >= 0.
        weight_std: Weight scale w >= 0.
        out: None, or a pair (nngp_out, ntk_out), each None or a writeable C-contiguous
            float64 array of shape (N1, N2) sharing no memory with the inputs or each
            other: the result is written there and that array is returned (repeated calls
            reuse memory that is already mapped; on an error its contents are undefined).

    Returns:
        (nngp, ntk): two float64 arrays of shape (N1, N2).

    Raises:
        ValueError: Bad input (shape, dtype, non-finite values, depth, scales).
    """
    # endregion nngp_ntk_head
    X1, X2, depth, b, w = _check_args(X1, X2, depth, bias_std, weight_std)
    out = _check_outs(out, X1, X2)
    K, T, bad_k, bad_t = _compute(X1, X2, depth, b * b, w * w, True, out)
    return _finite(K, bad_k, "NNGP"), _finite(T, bad_t, "NTK")


# region nngp_ntk_forms
def nngp(X1, X2=None, depth=None, bias_std=0.0, weight_std=1.0, out=None):
    """NNGP Gram matrix Sigma^(L); same arguments as :func:`nngp_ntk`, ``out`` one array."""
    X1, X2, depth, b, w = _check_args(X1, X2, depth, bias_std, weight_std)
    out = (_check_out("out", out, X1, X2), None)
    K, _, bad_k, _ = _compute(X1, X2, depth, b * b, w * w, False, out)  # (no NTK computed)
    return _finite(K, bad_k, "NNGP")


def ntk(X1, X2=None, depth=None, bias_std=0.0, weight_std=1.0, out=None):
    """NTK Gram matrix Theta^(L); same arguments as :func:`nngp_ntk`, ``out`` one array."""
    return nngp_ntk(X1, X2, depth, bias_std, weight_std, (None, out))[1]
    # endregion nngp_ntk_forms
