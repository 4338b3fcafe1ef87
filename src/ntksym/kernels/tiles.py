"""Gram matrices of arrays too large for memory, written to ``.npy`` files block by block.

The output is always written through :func:`numpy.lib.format.open_memmap` into a
temporary file beside ``-o`` and renamed into place when complete, so an
interrupted run never leaves a half-written ``K.npy``. The work is split into
square blocks of ``t x t`` entries (``t`` = ``--tile``, or chosen from
``--memory``); for ``K(X, X)`` only the blocks on and above the diagonal are
computed and each is mirrored, so the result is exactly symmetric.

Memory bound: inputs are opened memory-mapped (``mmap_mode="r"``) and read one
block of rows at a time, and the output is a memory-mapped file, so neither
needs to fit in RAM. The working memory is that of one block: the generated
kernel holds ``c * t**2`` float64 numbers (the Gram product, NNGP, NTK and the
mirrored copy: ``c = 4`` for the Numba backend, ``c = 24`` for the NumPy backend's
temporaries) plus ``2 t d`` input numbers. ``t`` is the largest block with
``8 (c t^2 + 2 t d) <= --memory`` (default 1 GiB), so working memory stays within
``--memory`` (plus the interpreter and the page cache of the mapped files,
which the operating system reclaims as needed).
"""

from __future__ import annotations

import math
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ntksym.errors import InputError
from ntksym.kernels.dispatch import generated_module

__all__ = ["gram_to_file", "load_matrix", "parse_bytes", "choose_tile"]

_UNITS = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
#: float64 numbers of working memory per kernel entry of a block, by backend.
_PER_ENTRY = {"numba": 4, "numpy": 24, "dual": 40}
#: Show a progress bar when there are at least this many kernel entries.
_PROGRESS_MIN_ENTRIES = 4_000_000


def parse_bytes(text: str) -> int:
    """``"1G"``, ``"512MiB"``, ``"2e9"`` -> a number of bytes (binary units)."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][0-9]+)?)\s*([kKmMgGtT]?)(?:i?[bB])?\s*", text)
    if m is None:
        raise InputError(f"--memory must look like 1G, 512M or 2e9 (bytes), got {text!r}")
    value = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if value < 2**20:
        raise InputError(f"--memory must be at least 1M, got {text!r}")
    return int(value)


def choose_tile(memory: int, d: int, backend: str) -> int:
    """Largest block side ``t`` with ``8 (c t^2 + 2 t d) <= memory`` (see the module docstring)."""
    c = _PER_ENTRY[backend]
    n = memory / 8
    t = (-2 * d + math.sqrt(4 * d * d + 4 * c * n)) / (2 * c)
    return max(1, int(t))


def load_matrix(path: str, name: str) -> np.ndarray:
    """Open a ``.npy`` file of shape (N, d) memory-mapped, checking dtype, shape and finiteness.

    Raises:
        InputError: Missing or unreadable file, object/complex/string dtype, not 2-D,
            empty, or containing NaN or infinity (the first offending entry is named).
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{name}: no such file {str(p)!r}")
    with open(p, "rb") as f:
        magic = f.read(6)
    if magic != b"\x93NUMPY":
        raise InputError(
            f"{name} {str(p)!r} is not a .npy file (no NumPy header); save it with numpy.save"
        )
    try:
        arr = np.load(p, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        raise InputError(
            f"{name} {str(p)!r} cannot be read without pickle ({exc}); save a float array "
            "with numpy.save"
        ) from None
    except OSError as exc:
        raise InputError(f"{name} {str(p)!r} is not a .npy file: {exc}") from None
    if not isinstance(arr, np.ndarray):
        raise InputError(f"{name} {str(p)!r} holds several arrays (.npz); give one .npy array")
    if arr.dtype.kind not in "fiu":
        raise InputError(
            f"{name} {str(p)!r} must hold real numbers (float or integer dtype), got {arr.dtype}"
        )
    if arr.ndim != 2:
        raise InputError(
            f"{name} {str(p)!r} must be 2-D with shape (n_inputs, n_features), got shape "
            f"{arr.shape}"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(f"{name} {str(p)!r} must have at least one row and column: {arr.shape}")
    step = max(1, 2**22 // arr.shape[1])
    for r0 in range(0, arr.shape[0], step):
        block = np.asarray(arr[r0 : r0 + step], dtype=np.float64)
        bad = ~np.isfinite(block)
        if bad.any():
            r, c = np.argwhere(bad)[0]
            raise InputError(
                f"{name} {str(p)!r} contains NaN or infinity at row {r0 + r}, column {c}; "
                "inputs must be finite"
            )
    return arr


class _Progress:
    """A plain-text progress bar on stderr, redrawn in place at most ~4 times a second."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.done, self.enabled = total, 0, enabled
        self.start = self.last = time.monotonic()

    def step(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and (now - self.last > 0.25 or self.done == self.total):
            self.last = now
            frac = self.done / self.total
            bar = "#" * int(30 * frac) + "." * (30 - int(30 * frac))
            el = now - self.start
            eta = el / frac - el if frac > 0 else float("nan")
            sys.stderr.write(
                f"\rntksym gram [{bar}] {100 * frac:5.1f}% block {self.done}/{self.total} "
                f"{el:6.1f}s elapsed, ~{eta:5.0f}s left"
            )
            if self.done == self.total:
                sys.stderr.write("\n")
            sys.stderr.flush()


def gram_to_file(
    X1: Any,
    X2: Any,
    out: str | os.PathLike[str],
    *,
    activation: str,
    depth: int,
    bias_std: float = 0.0,
    weight_std: float = 1.0,
    get: str = "ntk",
    backend: str = "auto",
    memory: int = 2**30,
    tile: int | None = None,
    progress: bool | None = None,
) -> Path:
    """Compute a Gram matrix block by block into the ``.npy`` file ``out``.

    Args:
        X1: Inputs (N1, d), e.g. a memory-mapped array.
        X2: Inputs (N2, d), or None for ``K(X1, X1)`` (upper blocks only, mirrored).
        out: Output path; for ``get="both"`` it holds shape ``(2, N1, N2)``
            (``[0]`` the NNGP, ``[1]`` the NTK), else ``(N1, N2)``.
        activation: Registered name or expression, as for :func:`ntksym.kernel`.
        depth: Number of affine layers.
        bias_std: Bias scale.
        weight_std: Weight scale.
        backend: ``"auto"``, ``"numba"``, ``"numpy"`` or ``"dual"``.
        get: ``"nngp"``, ``"ntk"`` or ``"both"``.
        memory: Working-memory budget in bytes (picks the block side; see module).
        tile: Block side, overriding ``memory``.
        progress: Show a progress bar on stderr (default: for large outputs).

    Returns:
        The output path.

    Raises:
        InputError: Bad parameters or a kernel that is not finite.
    """
    import ntksym

    if get not in ("nngp", "ntk", "both"):
        raise InputError(f"get must be 'nngp', 'ntk' or 'both', got {get!r}")
    k = ntksym.kernel(activation, depth, bias_std, weight_std, backend=backend)
    module = generated_module(k.activation, backend)
    kind = "dual" if module is None else module.BACKEND
    d = X1.shape[1]
    if X2 is not None and X2.shape[1] != d:
        raise InputError(
            f"DATA and --x2 must have the same number of columns: {d} vs {X2.shape[1]}"
        )
    if tile is None:
        tile = choose_tile(memory, d, kind)
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < 1:
        raise InputError(f"tile must be a positive integer, got {tile!r}")
    symmetric = X2 is None
    n1 = X1.shape[0]
    n2 = n1 if symmetric else X2.shape[0]
    rows = [(a, min(a + tile, n1)) for a in range(0, n1, tile)]
    cols = rows if symmetric else [(a, min(a + tile, n2)) for a in range(0, n2, tile)]
    blocks = [(i, j) for i in range(len(rows)) for j in range(len(cols)) if not symmetric or j >= i]
    wanted = ("nngp", "ntk") if get == "both" else (get,)
    shape = (2, n1, n2) if get == "both" else (n1, n2)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp.npy", dir=out.parent)
    os.close(fd)
    bar = _Progress(len(blocks), n1 * n2 >= _PROGRESS_MIN_ENTRIES if progress is None else progress)
    try:
        K = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float64, shape=shape)
        views = [K[0], K[1]] if get == "both" else [K]
        for i, j in blocks:
            (r0, r1), (c0, c1) = rows[i], cols[j]
            A = np.asarray(X1[r0:r1], dtype=np.float64)
            if symmetric and i == j:
                res = k(A, None, get=wanted)
            else:
                B = np.asarray((X1 if symmetric else X2)[c0:c1], dtype=np.float64)
                res = k(A, B, get=wanted)
            for view, block in zip(views, res, strict=True):
                view[r0:r1, c0:c1] = block
                if symmetric and i != j:
                    view[c0:c1, r0:r1] = block.T
            bar.step()
        K.flush()
        del K, views
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return out
