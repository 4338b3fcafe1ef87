"""Gram matrices of arrays too large for memory, written to ``.npy`` files block by block.

The output is always written through :func:`numpy.lib.format.open_memmap` into a
temporary file beside ``-o`` (created with the user's umask) and renamed into place
when complete, so an interrupted run never leaves a half-written ``K.npy``; on an
error, SIGTERM or SIGINT the temporary file is removed. An existing output is replaced
only on request, and an input never. A resumable run (``resume=True``, ``--resume``)
instead keeps its finished blocks in ``K.npy.partial`` with a record of them and of
the run's parameters in ``K.npy.partial.json``; running it again continues where it
stopped (see :func:`gram_to_file`). The work is split into
square blocks of ``t x t`` entries (``t`` = ``--tile``, or the largest that ``--memory``
allows, lowered until one block takes at most ``--block-seconds``, 60 by default: see
:mod:`ntksym.kernels.tileplan`); for ``K(X, X)`` only the blocks on and above the diagonal are
computed and each is mirrored, so the result is exactly symmetric. A described network
(``network=``) is tiled the same way, every block on the backend one call of the whole
matrix would use (:meth:`ntksym.kernels.described.DescribedKernel.resolved`).

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

import contextlib
import os
import signal
import time
import tokenize
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ntksym.errors import InputError, NTKSymError
from ntksym.kernels.api import storage_dtype
from ntksym.kernels.described import DescribedKernel, build_kernel
from ntksym.kernels.dispatch import generated_module, sp_key
from ntksym.kernels.safeio import (
    RECORD_VERSION,
    Interrupted,
    array_digest,
    check_output,
    check_space,
    create_file,
    interruptible,
    load_matrix,
    on_signals,
    read_resume_record,
    remove_created,
    source_file,
    temporary_path,
    write_json,
)
from ntksym.kernels.tileplan import (
    DEFAULT_BLOCK_SECONDS,
    check_block_seconds,
    choose_tile,
    parse_bytes,
    recorded_tile,
    timed_tile,
)

__all__ = ["gram_to_file", "load_matrix", "parse_bytes", "choose_tile", "resume_paths"]

#: Seconds between rewrites of a resumable run's record (see ``_resumable_run``).
RECORD_INTERVAL = 1.0
#: ``progress(done, total)``: called after each finished block.
_Report = Callable[[int, int], None]


@dataclass(frozen=True)
class _Plan:
    """The blocks of a Gram matrix: row and column ranges, and which pairs to compute."""

    rows: list[tuple[int, int]]
    cols: list[tuple[int, int]]
    blocks: list[tuple[int, int]]
    shape: tuple[int, ...]
    wanted: tuple[str, ...]
    symmetric: bool
    dtype: np.dtype = np.dtype(np.float64)


def _plan(n1: int, n2: int | None, tile: int, get: str, dtype: Any = np.float64) -> _Plan:
    symmetric = n2 is None
    rows = [(a, min(a + tile, n1)) for a in range(0, n1, tile)]
    cols = rows if n2 is None else [(a, min(a + tile, n2)) for a in range(0, n2, tile)]
    blocks = [(i, j) for i in range(len(rows)) for j in range(len(cols)) if not symmetric or j >= i]
    n2 = n1 if n2 is None else n2
    return _Plan(
        rows=rows,
        cols=cols,
        blocks=blocks,
        shape=(2, n1, n2) if get == "both" else (n1, n2),
        wanted=("nngp", "ntk") if get == "both" else (get,),
        symmetric=symmetric,
        dtype=np.dtype(dtype),
    )


def _compute(k: Any, plan: _Plan, X1: Any, X2: Any, b: int) -> list[np.ndarray]:
    """Block ``b``'s matrices in the stored dtype, on a worker thread (a signal stops it)."""
    i, j = plan.blocks[b]
    (r0, r1), (c0, c1) = plan.rows[i], plan.cols[j]
    A = np.asarray(X1[r0:r1], dtype=np.float64)
    other = X1 if plan.symmetric else X2
    B = None if plan.symmetric and i == j else np.asarray(other[c0:c1], dtype=np.float64)
    return interruptible(lambda: list(k(A, B, get=plan.wanted, dtype=plan.dtype)))


def _views(K: np.ndarray, plan: _Plan) -> list[np.ndarray]:
    return [K[0], K[1]] if len(plan.shape) == 3 else [K]


def _stored(K: np.ndarray, plan: _Plan, b: int) -> list[np.ndarray]:
    """The entries of block ``b`` as they are in ``K`` (one array per requested matrix)."""
    i, j = plan.blocks[b]
    (r0, r1), (c0, c1) = plan.rows[i], plan.cols[j]
    return [view[r0:r1, c0:c1] for view in _views(K, plan)]


def _store(K: np.ndarray, plan: _Plan, b: int, result: list[np.ndarray]) -> None:
    """Write block ``b`` (and, for ``K(X, X)``, its mirror image) into ``K``."""
    i, j = plan.blocks[b]
    (r0, r1), (c0, c1) = plan.rows[i], plan.cols[j]
    for view, block in zip(_views(K, plan), result, strict=True):
        view[r0:r1, c0:c1] = block
        if plan.symmetric and i != j:
            view[c0:c1, r0:r1] = block.T


def _signal_name(exc: Interrupted) -> str:
    return signal.Signals(exc.signum).name


def _one_run(k: Any, plan: _Plan, X1: Any, X2: Any, out: Path, report: _Report) -> None:
    """All blocks into a hidden temporary file, renamed to ``out`` when complete."""
    kept = f"{str(out)!r} is as it was" if out.exists() else f"{str(out)!r} was not written"
    tmp: Path | None = None
    try:  # from the temporary file's creation on, a signal or an error removes it
        tmp = temporary_path(out)
        K = np.lib.format.open_memmap(tmp, mode="w+", dtype=plan.dtype, shape=plan.shape)
        for b in range(len(plan.blocks)):
            _store(K, plan, b, _compute(k, plan, X1, X2, b))
            report(b + 1, len(plan.blocks))
        K.flush()
        del K
        os.replace(tmp, out)
    except Interrupted as exc:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise Interrupted(
            exc.signum,
            f"interrupted by {_signal_name(exc)}; the unfinished temporary file was removed "
            f"and {kept} (to make a run that can be continued, pass --resume / resume=True)",
        ) from None
    except BaseException:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise


def resume_paths(out: str | os.PathLike[str]) -> tuple[Path, Path]:
    """The partial file and the record of a resumable run writing ``out``."""
    out = Path(out)
    return out.with_name(out.name + ".partial"), out.with_name(out.name + ".partial.json")


def _open_partial(partial: Path, record: Path, plan: _Plan) -> np.memmap:
    try:
        K = np.lib.format.open_memmap(partial, mode="r+")
    except (ValueError, OSError, SyntaxError, EOFError, tokenize.TokenError) as exc:
        raise InputError(
            f"the partial file {str(partial)!r} is unreadable ({exc}); delete it and "
            f"{str(record)!r} to start again"
        ) from None
    if K.shape != plan.shape or K.dtype != plan.dtype:
        raise InputError(
            f"the partial file {str(partial)!r} holds {K.dtype} {K.shape}, expected "
            f"{plan.dtype} {plan.shape}; delete it and {str(record)!r} to start again"
        )
    return K


def _check_kept(
    k: Any, plan: _Plan, X1: Any, X2: Any, K: np.ndarray, done: set[int], partial: Path
) -> None:
    """Refuse kept blocks that are out of range, not finite, or differ from a recomputation.

    The first and the last finished block are recomputed (the last one is the most
    likely to have been damaged by the interruption).
    """
    fix = f"delete {str(partial)!r} and its .json record to start again"
    for b in sorted(done):
        if not 0 <= b < len(plan.blocks):
            raise InputError(f"the resume record names block {b}, which does not exist; {fix}")
        for kept in _stored(K, plan, b):
            if not np.all(np.isfinite(kept)):
                raise InputError(
                    f"block {b} kept in {str(partial)!r} holds NaN or infinity; the partial "
                    f"file is damaged: {fix}"
                )
    for b in sorted({min(done), max(done)} if done else set()):
        fresh = _compute(k, plan, X1, X2, b)
        for kept, new in zip(_stored(K, plan, b), fresh, strict=True):
            if not np.allclose(kept, new, rtol=1e-12, atol=0.0):
                raise InputError(
                    f"block {b} kept in {str(partial)!r} differs from its recomputation (the "
                    f"file was changed or belongs to other inputs); {fix}"
                )


def _save(K: np.memmap, record: Path, params: dict[str, Any], done: set[int]) -> None:
    """Flush the finished blocks to disk, then record them (never the other way round)."""
    K.flush()
    write_json(record, {"version": RECORD_VERSION, "params": params, "done": sorted(done)})


def _open_state(
    k: Any, plan: _Plan, X1: Any, X2: Any, out: Path, params: dict[str, Any]
) -> tuple[np.memmap, set[int]]:
    """The partial file and its finished blocks (checked), or a new empty pair."""
    partial, record = resume_paths(out)
    if partial.exists() != record.exists():
        have, lack = (partial, record) if partial.exists() else (record, partial)
        raise InputError(
            f"found {str(have)!r} without {str(lack)!r}: the resume state is incomplete; "
            f"delete {str(have)!r} to start again"
        )
    if partial.exists():
        done = read_resume_record(record, params)
        K = _open_partial(partial, record, plan)
        _check_kept(k, plan, X1, X2, K, done, partial)
        return K, done
    create_file(partial)
    K = np.lib.format.open_memmap(partial, mode="w+", dtype=plan.dtype, shape=plan.shape)
    _save(K, record, params, set())
    return K, set()


def _resumable_run(
    k: Any, plan: _Plan, X1: Any, X2: Any, out: Path, params: dict[str, Any], report: _Report
) -> None:
    """Continue (or start) a run whose finished blocks survive an interruption.

    The record is rewritten at most every :data:`RECORD_INTERVAL` seconds and whenever the
    run stops, so a run killed without warning (SIGKILL, a crash) redoes at most that much.
    """
    partial, record = resume_paths(out)
    K, done = _open_state(k, plan, X1, X2, out, params)
    total, finished = len(plan.blocks), False
    report(len(done), total)
    saved = time.monotonic()
    try:
        for b in range(total):
            if b in done:
                continue
            _store(K, plan, b, _compute(k, plan, X1, X2, b))
            done.add(b)
            if time.monotonic() - saved >= RECORD_INTERVAL:
                _save(K, record, params, done)
                saved = time.monotonic()
            report(len(done), total)
        K.flush()
        os.replace(partial, out)
        finished = True
        record.unlink()
    except NTKSymError:  # the same error would recur: the partial result is of no use
        partial.unlink(missing_ok=True)
        record.unlink(missing_ok=True)
        raise
    except BaseException as exc:  # a signal, a full disk, ...: keep what is finished
        if not finished:
            with contextlib.suppress(Exception):
                _save(K, record, params, done)
        if isinstance(exc, Interrupted):
            raise Interrupted(
                exc.signum,
                f"interrupted by {_signal_name(exc)}; {len(done)} of {total} blocks are kept "
                f"in {str(partial)!r}: run the same command again with --resume to continue",
            ) from None
        raise


def gram_to_file(
    X1: Any,
    X2: Any,
    out: str | os.PathLike[str],
    *,
    activation: Any = None,
    depth: int | None = None,
    bias_std: float = 0.0,
    weight_std: float = 1.0,
    get: str = "ntk",
    backend: str = "auto",
    memory: int = 2**30,
    tile: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    overwrite: bool = False,
    resume: bool = False,
    dtype: Any = np.float64,
    network: Any = None,
    block_seconds: float = DEFAULT_BLOCK_SECONDS,
) -> Path:
    """Compute a Gram matrix block by block into the ``.npy`` file ``out``.

    The output is checked before any work (see :func:`ntksym.kernels.safeio.check_output`):
    it may never be one of the input files (memory-mapped inputs are recognised by their
    file) and may replace an existing file only with ``overwrite``. SIGTERM and SIGINT
    during the write raise :class:`~ntksym.kernels.safeio.Interrupted` after cleaning up.

    Args:
        X1: Inputs (N1, d), e.g. a memory-mapped array.
        X2: Inputs (N2, d), or None for ``K(X1, X1)`` (upper blocks only, mirrored).
        out: Output path; for ``get="both"`` it holds shape ``(2, N1, N2)``
            (``[0]`` the NNGP, ``[1]`` the NTK), else ``(N1, N2)``.
        activation: Registered name or expression, as for :func:`ntksym.kernel` (the
            homogeneous network; with ``depth``, ``bias_std`` and ``weight_std``).
        depth: Number of affine layers.
        bias_std: Bias scale.
        weight_std: Weight scale.
        get: ``"nngp"``, ``"ntk"`` or ``"both"``.
        backend: ``"auto"``, ``"numba"``, ``"numpy"``, ``"dual"``; with ``network``,
            ``"auto"`` (every block on the whole matrix's backend), ``"layers"``, ``"fused"``.
        memory: Working-memory budget in bytes (bounds the block side; see module).
        tile: Block side, overriding ``memory`` and ``block_seconds``.
        progress: Called as ``progress(done, total)`` after each block.
        overwrite: Replace an existing ``out``.
        resume: Make the run resumable: finished blocks are kept in ``out + ".partial"``
            with a record ``out + ".partial.json"`` and survive an interruption; when they
            exist (and were made with the same parameters and inputs) they are checked
            and skipped. ``out`` appears only when every block is done.
        dtype: Stored dtype, ``float64`` (default) or ``float32`` (computed in float64,
            rounded once when stored: half the file, relative error <= 2^-24).
        network: A description, ``ntksym.stax`` layer or triple, or a ``DescribedKernel``,
            instead of ``activation`` and ``depth``. A resumable run records it (its text
            and the SHA-256 of its repr) and refuses to continue with another network.
        block_seconds: Bound on one block's time (wall-clock seconds, >= 1; see
            :mod:`ntksym.kernels.tileplan`): the block side is lowered, to a power of two
            not below ``MIN_TILE``, until a block of the kernel's measured rate fits. A
            resumed run keeps the side its record holds.

    Returns:
        The output path.

    Raises:
        InputError: Bad parameters, an output that would lose data or cannot be written,
            a resume record made with other parameters, or a kernel that is not finite.
        Interrupted: SIGTERM or SIGINT arrived; the message says what is on disk.
    """
    if get not in ("nngp", "ntk", "both"):
        raise InputError(f"get must be 'nngp', 'ntk' or 'both', got {get!r}")
    seconds = check_block_seconds(block_seconds)
    out = Path(out)
    sources = [p for p in (source_file(X1), source_file(X2)) if p is not None]
    created = check_output(out, sources, overwrite=overwrite)
    try:  # a failed run removes the directories it created (if they are still empty)
        k = build_kernel(network, activation, depth, bias_std, weight_std, backend, "gram_to_file")
        _write(k, X1, X2, out, get, memory, tile, progress, resume, dtype, seconds)
    except BaseException:
        remove_created(created)
        raise
    return out


def _write(
    k: Any, X1: Any, X2: Any, out: Path, get: str, memory: int, tile: int | None,
    progress: _Report | None, resume: bool, dtype: Any, block_seconds: float,
) -> None:  # fmt: skip
    """The work of :func:`gram_to_file` once its output is checked and its kernel built."""
    k, kind = _resolved(k, X1.shape[0] * (X1 if X2 is None else X2).shape[0])
    n2 = None if X2 is None else X2.shape[0]
    tile, limit = _checked_tile(X1, X2, kind, memory, tile), choose_tile(memory, X1.shape[1], kind)
    entries = X1.shape[0] * (X1.shape[0] if n2 is None else n2) * (2 if get == "both" else 1)
    nbytes = entries * np.dtype(storage_dtype(dtype)).itemsize  # (checked before any timing)
    check_space(out, nbytes, resume_paths(out)[0] if resume else None)
    if tile is None and resume:  # (a stopped run's plan, if there is one)
        tile = recorded_tile(resume_paths(out)[1], limit, memory)
    if tile is None:
        tile = timed_tile(k, X1, X2, get, limit, block_seconds)
    plan = _plan(X1.shape[0], n2, tile, get, storage_dtype(dtype))
    report = progress if progress is not None else (lambda done, total: None)
    with on_signals():
        if resume:
            _resumable_run(k, plan, X1, X2, out, _params(k, kind, plan, tile, get, X1, X2), report)
        else:
            _one_run(k, plan, X1, X2, out, report)


def _resolved(k: Any, n_pairs: int) -> tuple[Any, str]:
    """The kernel every block uses, and its class of working memory (see ``PER_ENTRY``)."""
    if isinstance(k, DescribedKernel):
        return k.resolved(n_pairs), "dual"  # (the layer maps' working memory: the most)
    module = generated_module(k.activation, k.backend)
    return k, "dual" if module is None else module.BACKEND


def _checked_tile(X1: Any, X2: Any, kind: str, memory: int, tile: int | None) -> int | None:
    """``tile`` (checked; None: to be chosen), once the inputs' columns are seen to agree."""
    d = X1.shape[1]
    if X2 is not None and X2.shape[1] != d:
        raise InputError(
            f"DATA and --x2 must have the same number of columns: {d} vs {X2.shape[1]}"
        )
    if tile is not None and (isinstance(tile, bool) or not isinstance(tile, int) or tile < 1):
        raise InputError(f"tile must be a positive integer, got {tile!r}")
    return tile


def _homogeneous_identity(k: Any) -> dict[str, Any]:
    return {
        "activation": k.activation.name,
        "expression": sp_key(k.activation),
        "depth": int(k.depth),
        "bias_std": float(k.bias_std),
        "weight_std": float(k.weight_std),
    }


def _params(
    k: Any, kind: str, plan: _Plan, tile: int, get: str, X1: Any, X2: Any
) -> dict[str, Any]:
    """Everything a resumed run must share with the run it continues."""
    return {
        **(k.identity() if isinstance(k, DescribedKernel) else _homogeneous_identity(k)),
        "get": get,
        "tile": tile,
        "backend": kind,
        "shape": list(plan.shape),
        "dtype": plan.dtype.str,
        "inputs": [
            {"shape": list(X.shape), "dtype": np.dtype(X.dtype).str, "sha256": array_digest(X)}
            for X in (X1, X2)
            if X is not None
        ],
    }
