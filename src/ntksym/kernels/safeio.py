"""The .npy files of long computations: inputs read with clear errors, outputs never lose data.

Used by :func:`ntksym.kernels.tiles.gram_to_file`:

* :func:`load_matrix` opens an input memory-mapped and refuses, with one clear message,
  what is not a finite real 2-D array (wrong dtype or shape, NaN, a corrupted header).
* :func:`check_output` refuses, before any work, an output that is a directory,
  that is one of the inputs (compared as resolved paths and by inode, so symlinks,
  hard links and relative paths cannot fool it), that already exists (unless
  ``overwrite``), or whose directory cannot be written; it creates missing directories
  and :func:`remove_created` removes exactly those if the run fails.
* :func:`check_space` refuses, before any work, an output larger than the free space of
  its file system (a file of terabytes would otherwise run for hours and then fail).
* :func:`create_file` creates a file with the user's umask (``0666 & ~umask``),
  unlike :func:`tempfile.mkstemp`, whose files are private (``0600``).
* :func:`on_signals` turns SIGTERM and SIGINT into :class:`Interrupted` for the
  duration of a write, so ``finally`` clauses run and remove or keep what they
  must, then restores the previous handlers; :func:`interruptible` runs one long call
  (a block of a Gram matrix) in a worker thread so that the handler runs at once, even
  while compiled code that releases the GIL (``nogil=True``) is computing.
* :func:`write_json` writes a small record atomically (temporary file, fsync,
  rename); :func:`read_resume_record` reads one back and refuses one made with
  different parameters, naming each difference.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import threading
import tokenize
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from ntksym._io import atomic_write_text
from ntksym.errors import InputError

__all__ = [
    "load_matrix",
    "Interrupted",
    "check_output",
    "remove_created",
    "check_space",
    "create_file",
    "temporary_path",
    "on_signals",
    "interruptible",
    "write_json",
    "read_resume_record",
    "array_digest",
    "source_file",
]

#: Version of the resume record's layout; a record of another version is refused.
RECORD_VERSION = 1
#: Seconds the main thread waits for a worker at a time (see :func:`interruptible`).
JOIN_SLICE = 0.1

_T = TypeVar("_T")
#: The worker of the last :func:`interruptible` call (still running if it was interrupted).
_last_worker: threading.Thread | None = None


class Interrupted(KeyboardInterrupt):
    """A SIGTERM or SIGINT received while an output was being written.

    A subclass of :class:`KeyboardInterrupt`, so code that does not expect it stops as
    on Ctrl-C. The message says what was kept or removed on disk.

    Attributes:
        signum: The signal number.
    """

    def __init__(self, signum: int, message: str = "") -> None:
        self.signum = signum
        super().__init__(message or f"interrupted by {signal.Signals(signum).name}")

    @property
    def exit_code(self) -> int:
        """The conventional shell exit status of a process stopped by this signal."""
        return 128 + self.signum

    def __str__(self) -> str:
        return str(self.args[0])


@contextlib.contextmanager
def on_signals(signums: Sequence[int] = (signal.SIGTERM, signal.SIGINT)) -> Iterator[None]:
    """Raise :class:`Interrupted` on the given signals inside the ``with`` block.

    The first signal raises; further ones are ignored until the block has exited
    (so the clean-up it triggers is not itself interrupted), and then the previous
    handlers are restored. Outside the main thread (where Python cannot install
    handlers) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        for s in signums:
            signal.signal(s, signal.SIG_IGN)
        raise Interrupted(signum)

    previous = {s: signal.signal(s, handler) for s in signums}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def interruptible(fn: Callable[[], _T]) -> _T:
    """``fn()``, computed in a worker thread while the main thread waits in short slices.

    Python runs signal handlers only in the main thread, between bytecodes: while the main
    thread itself is inside a long compiled call, a SIGTERM waits for that call to return
    (minutes for a large block). Here the main thread only waits (``join`` in slices of
    :data:`JOIN_SLICE` seconds), so the handler installed by :func:`on_signals` runs within
    a slice, provided the work releases the GIL (the generated Numba kernels are compiled
    with ``nogil=True``; NumPy releases it in its loops; pure Python work is switched out
    every few milliseconds). An interrupted worker (a daemon thread) finishes its call in
    the background, its result dropped; the next call first waits for it. Outside the main
    thread ``fn`` is called directly. What ``fn`` raises is re-raised here.
    """
    global _last_worker
    if threading.current_thread() is not threading.main_thread():
        return fn()
    if _last_worker is not None:
        while _last_worker.is_alive():
            _last_worker.join(JOIN_SLICE)
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the main thread below
            box["error"] = exc

    worker = threading.Thread(target=work, name="ntksym-block", daemon=True)
    _last_worker = worker
    worker.start()
    while worker.is_alive():
        worker.join(JOIN_SLICE)
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def source_file(array: Any) -> Path | None:
    """The file a memory-mapped array (or a view of one) reads, or None."""
    while array is not None:
        name = getattr(array, "filename", None)
        if isinstance(array, np.memmap) and name:
            return Path(name)
        array = getattr(array, "base", None)
    return None


def _same_file(a: Path, b: Path) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist
        return False


def check_output(out: Path, inputs: Sequence[Path], *, overwrite: bool) -> list[Path]:
    """Refuse an output path that would lose data or cannot be written.

    Missing directories above ``out`` are created; the caller removes them with
    :func:`remove_created` if its run then fails, so a failed run leaves nothing behind.

    Args:
        out: The output file.
        inputs: Files the computation reads; the output may never be one of them.
        overwrite: Allow replacing an existing output file.

    Returns:
        The directories this call created, outermost first (empty if all existed).

    Raises:
        InputError: ``out`` is a directory, is one of ``inputs`` (also through a
            symlink, hard link or relative path), exists and ``overwrite`` is off,
            or its directory is missing and cannot be created, or is not writable.
    """
    if out.is_dir():
        raise InputError(
            f"output {str(out)!r} is a directory; give a file name, e.g. {str(out / 'K.npy')!r}"
        )
    for p in inputs:
        if _same_file(out, p):
            raise InputError(
                f"output {str(out)!r} is the input file {str(p)!r}: writing it would destroy "
                "the input; choose another output name"
            )
    if (out.exists() or out.is_symlink()) and not overwrite:
        raise InputError(
            f"output {str(out)!r} already exists; choose another name or pass --force "
            "(overwrite=True) to replace it"
        )
    parent = out.parent
    created = _make_directories(parent)
    try:
        if not parent.is_dir():
            raise InputError(f"{str(parent)!r} is not a directory; choose another output path")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise InputError(
                f"cannot write to the directory {str(parent)!r} (permission denied); choose a "
                "directory you can write to"
            )
    except BaseException:
        remove_created(created)
        raise
    return created


def _make_directories(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; the ones created, outermost first."""
    missing: list[Path] = []
    while not (folder.exists() or folder.is_symlink()) and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    created: list[Path] = []
    for d in reversed(missing):
        try:
            d.mkdir()
        except FileExistsError:  # made meanwhile by someone else: not ours to remove
            continue
        except OSError as exc:
            remove_created(created)
            raise InputError(
                f"cannot create the output directory {str(d)!r} ({exc.strerror}); "
                "choose a directory you can write to"
            ) from None
        created.append(d)
    return created


def remove_created(created: Sequence[Path]) -> None:
    """Remove the directories :func:`check_output` created, innermost first, if empty.

    A directory that holds anything (a kept ``--resume`` state, a file someone else put
    there) stays, and so do its parents.
    """
    for d in reversed(created):
        try:
            d.rmdir()
        except OSError:
            return


def check_space(out: Path, nbytes: int, kept: Path | None = None) -> None:
    """Refuse an output of ``nbytes`` that the file system of ``out`` cannot hold.

    Args:
        out: The output path (its directory exists: see :func:`check_output`).
        nbytes: Size of the finished file.
        kept: A partial file of an earlier run that this one continues; the space its
            written blocks already take counts as available.

    Raises:
        InputError: Saying how much is needed, how much is free, and what to change.
    """
    try:
        usage = shutil.disk_usage(out.parent)
    except OSError:  # pragma: no cover - a file system that does not say: let the write tell
        return
    if usage.total == 0:  # /proc, /sys: no storage; creating the file gives the clear error
        return
    free = usage.free
    if kept is not None and kept.exists():
        free += kept.stat().st_blocks * 512
    if nbytes > free:
        raise InputError(
            f"the output {str(out)!r} needs {_size(nbytes)} and its file system has "
            f"{_size(free)} free; free some space, write elsewhere, store float32 "
            "(--dtype float32) or compute fewer rows"
        )


def _size(nbytes: float) -> str:
    """A byte count in the largest binary unit that keeps it at or above 1."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if nbytes < 1024 or unit == "TiB":
            return f"{nbytes:.3g} {unit}"
        nbytes /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def create_file(path: Path) -> None:
    """Create the empty file ``path`` (which must not exist) with the user's umask.

    Raises:
        FileExistsError: ``path`` exists.
        InputError: It cannot be created (read-only or virtual file system, ...).
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
        raise
    except OSError as exc:
        raise InputError(
            f"cannot create a file in {str(path.parent)!r} ({exc.strerror}); choose a "
            "directory you can write to"
        ) from None
    os.close(fd)


def temporary_path(out: Path) -> Path:
    """Create and return a new, empty, hidden temporary file beside ``out``.

    A signal (:class:`Interrupted`) or any error after the file was created removes it
    before it propagates, so the caller never has to clean up a file it was not given.
    """
    while True:
        tmp = out.parent / f".{out.name}.{secrets.token_hex(4)}.tmp"
        try:
            create_file(tmp)
            return tmp
        except FileExistsError:  # pragma: no cover - a 32-bit collision
            continue
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as JSON to ``path`` atomically (never a half-written file)."""
    atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True))


def array_digest(array: Any, rows_per_chunk: int = 4096) -> str:
    """SHA-256 of an array's dtype, shape and values, read a block of rows at a time."""
    h = hashlib.sha256(f"{np.dtype(array.dtype).str} {tuple(array.shape)}".encode())
    for r0 in range(0, array.shape[0], rows_per_chunk):
        h.update(np.ascontiguousarray(array[r0 : r0 + rows_per_chunk]).tobytes())
    return h.hexdigest()


def read_resume_record(path: Path, params: dict[str, Any]) -> set[int]:
    """The finished block numbers of a resume record made with exactly ``params``.

    Raises:
        InputError: The record is unreadable, of another version, or was made with
            different parameters (each difference is named).
    """
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        version, recorded, done = record["version"], record["params"], record["done"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(
            f"the resume record {str(path)!r} is unreadable ({exc}); delete it and the "
            "partial file beside it to start again"
        ) from None
    if version != RECORD_VERSION:
        raise InputError(
            f"the resume record {str(path)!r} has version {version!r}, this ntksym writes "
            f"{RECORD_VERSION}; delete it and the partial file to start again"
        )
    wanted = json.loads(json.dumps(params))
    diffs = [
        f"{key}: {recorded.get(key)!r} then, {wanted.get(key)!r} now"
        for key in sorted(set(recorded) | set(wanted))
        if recorded.get(key) != wanted.get(key)
    ]
    if diffs:
        raise InputError(
            "cannot resume: the stopped run used other parameters ("
            + "; ".join(diffs)
            + "); repeat the original command with --resume, or delete "
            f"{str(path)!r} and its partial file to start afresh"
        )
    if not isinstance(done, list) or not all(isinstance(b, int) for b in done):
        raise InputError(f"the resume record {str(path)!r} is corrupted; delete it to restart")
    return set(done)


def _corrupted(name: str, path: Path, exc: BaseException) -> InputError:
    detail = " ".join(str(exc).split())[:120]
    return InputError(
        f"{name} {str(path)!r} has a corrupted .npy header or is truncated ({detail}); "
        "save the array again with numpy.save"
    )


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
        text = str(exc)
        if "header" not in text.lower() and "EOF" not in text and "length" not in text:
            raise InputError(
                f"{name} {str(p)!r} cannot be read without pickle ({exc}); save a float array "
                "with numpy.save"
            ) from None
        raise _corrupted(name, p, exc) from None
    except (OSError, SyntaxError, EOFError, tokenize.TokenError) as exc:
        raise _corrupted(name, p, exc) from None
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
