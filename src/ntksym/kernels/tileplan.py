"""How large a block of :func:`ntksym.kernels.tiles.gram_to_file` is: bounded in memory and time.

A block of ``t x t`` kernel entries is one kernel call, and the unit a resumable run keeps:
an interruption loses at most the block being computed. Its side ``t`` is the largest that

* keeps the working memory within ``--memory`` (:func:`choose_tile`, see the module
  docstring of :mod:`ntksym.kernels.tiles`), and
* keeps one block's time within ``--block-seconds`` (default :data:`DEFAULT_BLOCK_SECONDS`):
  :func:`measure_rate` times the kernel on a sample of the inputs' own pairs
  (:func:`sampled_rate`, which :meth:`ntksym.kernels.api.Kernel._probe` uses too: 16 rows
  against 16 and against 112 columns; the difference leaves out the cost per call), and
  :func:`time_tile` turns that rate into a side, rounded down to a power of two so that
  small changes of the measured rate (a machine's load) seldom change the plan,

but never below :data:`MIN_TILE` (a kernel slower than ``block_seconds / MIN_TILE**2``
seconds per entry has longer blocks). The rate is measured in wall-clock seconds, what a
user waiting for a block experiences: a loaded machine gives smaller blocks. The bound is
soft: the rate is measured once, before the run, and the plan is not changed during it (a
block of another side could round the Gram product's last bits differently, and one output
never mixes two plans), so blocks overrun when the load rises during a run (1.1x measured).

The measurement is skipped when it cannot matter: with ``--tile``, when the whole matrix
fits in a ``MIN_TILE`` block, when the first small call already bounds the block time, and
on a resumed run, which continues the plan its record holds (see
:func:`ntksym.kernels.tiles.gram_to_file`).
"""

from __future__ import annotations

import functools
import json
import math
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ntksym.errors import InputError

__all__ = [
    "DEFAULT_BLOCK_SECONDS",
    "MIN_TILE",
    "check_block_seconds",
    "choose_tile",
    "measure_rate",
    "parse_bytes",
    "recorded_tile",
    "sampled_rate",
    "time_tile",
    "timed_tile",
]

_UNITS = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
#: float64 numbers of working memory per kernel entry of a block, by backend.
PER_ENTRY = {"numba": 4, "numpy": 24, "dual": 40}
#: Default bound on one block's time (seconds).
DEFAULT_BLOCK_SECONDS = 60.0
#: The smallest block side the time bound may choose (a call of 64 x 64 entries still
#: spends most of its time on entries rather than on the per-call checks).
MIN_TILE = 64
#: Rows of the timing sample, and its two column counts.
_PROBE_ROWS, _PROBE_COLS = 16, (16, 112)


def parse_bytes(text: str) -> int:
    """``"1G"``, ``"512MiB"``, ``"2e9"`` -> a number of bytes (binary units)."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][0-9]+)?)\s*([kKmMgGtT]?)(?:i?[bB])?\s*", text)
    if m is None:
        raise InputError(f"--memory must look like 1G, 512M or 2e9 (bytes), got {text!r}")
    value = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if value < 2**20:
        raise InputError(f"--memory must be at least 1M, got {text!r}")
    if not value <= 2**80:  # (also inf: "1e400" is a float overflow)
        raise InputError(f"--memory must be at most 2^80 bytes, got {text!r}")
    return int(value)


def choose_tile(memory: int, d: int, backend: str) -> int:
    """Largest block side ``t`` with ``8 (c t^2 + 2 t d) <= memory`` (see :mod:`.tiles`)."""
    c = PER_ENTRY[backend]
    n = memory / 8
    t = (-2 * d + math.sqrt(4 * d * d + 4 * c * n)) / (2 * c)
    return max(1, int(t))


def check_block_seconds(value: Any) -> float:
    """``value`` as a float if it is a finite number of seconds >= 1, else an InputError."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if isinstance(value, bool) or not math.isfinite(seconds) or seconds < 1.0:
        raise InputError(
            "--block-seconds (block_seconds) must be a finite number of seconds >= 1 (the "
            f"longest a block of the Gram matrix should take; default 60), got {value!r}"
        )
    return seconds


def time_tile(rate: float, block_seconds: float, memory_tile: int, n1: int, n2: int) -> int:
    """The block side for a measured ``rate`` (seconds per kernel entry): a pure function.

    The largest side ``t`` whose largest block, ``min(t, n1) x min(t, n2)`` entries, takes at
    most ``block_seconds`` at ``rate``, rounded down to a power of two; never above
    ``memory_tile`` and never below ``min(MIN_TILE, memory_tile)``. A rate of 0 (too fast to
    measure) gives ``memory_tile``.

    Args:
        rate: Seconds per entry (>= 0).
        block_seconds: The bound on one block's time.
        memory_tile: The side the memory budget allows (:func:`choose_tile`, or ``--tile``).
        n1: Rows of the Gram matrix.
        n2: Columns of the Gram matrix.
    """
    if not rate > 0 or rate * n1 * n2 <= block_seconds:
        return memory_tile
    short = min(n1, n2)
    side = math.sqrt(block_seconds / rate)
    if side > short:  # blocks are side x short: the long side alone takes up the time
        side = block_seconds / (rate * short)
    power = 2 ** int(math.floor(math.log2(side))) if side >= 1 else 1
    return min(memory_tile, max(MIN_TILE, power))


def _best_of_two(call: Callable[[], Any], clock: Callable[[], float]) -> float:
    """The better of two ``clock`` times of ``call()`` (the first may compile)."""
    best = math.inf
    for _ in range(2):
        start = clock()
        call()
        best = min(best, clock() - start)
    return best


def sampled_rate(
    call: Callable[[np.ndarray, np.ndarray], Any],
    X1: Any,
    X2: Any,
    clock: Callable[[], float],
    small_enough: float = 0.0,
) -> float:
    """Seconds of ``clock`` per kernel entry of ``call(rows, cols)`` on pairs of the inputs.

    The one sampling and timing of a kernel's rate, shared by the block planner
    (:func:`measure_rate`: wall-clock, since it bounds how long a user waits for a block)
    and the dispatcher's probe (:meth:`ntksym.kernels.api.Kernel._probe`: CPU time, since
    it compares the costs of two modules, which waiting for other processes would blur).

    16 rows spread evenly over X1 against 16 columns spread over X2 (X1 if None), the
    better of two calls; if that call's time per entry (an overestimate: it includes the
    cost per call and per input) is at most ``small_enough``, it is returned at once.
    Otherwise also 16 rows against 112 columns, and the rate is the difference per extra
    entry, which leaves out the cost per call (a small sample would otherwise count it as
    if it were per entry, by a factor of 5 to 20). Where the difference is lost in noise
    (or there are too few columns for two sizes) the larger call's time per entry, an
    upper bound, is returned.
    """
    other = X1 if X2 is None else X2
    rows = np.asarray(X1[np.linspace(0, X1.shape[0] - 1, _PROBE_ROWS).astype(int)], np.float64)
    n_small, n_large = (min(n, other.shape[0]) for n in _PROBE_COLS)
    times = []
    for n in (n_small, n_large):
        cols = np.asarray(other[np.linspace(0, other.shape[0] - 1, n).astype(int)], np.float64)
        times.append(_best_of_two(functools.partial(call, rows, cols), clock))
        upper = times[-1] / (_PROBE_ROWS * n)
        if n == n_small and upper <= small_enough:
            return upper
    extra = _PROBE_ROWS * (n_large - n_small)
    if extra > 0 and times[1] > times[0]:
        return (times[1] - times[0]) / extra
    return times[-1] / (_PROBE_ROWS * n_large)


def measure_rate(
    k: Any, X1: Any, X2: Any, wanted: tuple[str, ...], small_enough: float = 0.0
) -> float:
    """Wall-clock seconds per kernel entry of ``k`` on pairs sampled from the inputs.

    :func:`sampled_rate` of ``k(rows, cols, get=wanted)`` with ``time.perf_counter``.

    Args:
        k: A kernel called as ``k(A, B, get=wanted)``.
        X1: Inputs (N1, d); the rows are sampled evenly from it.
        X2: Inputs (N2, d) or None (columns sampled from X1).
        wanted: The matrices the run computes.
        small_enough: A rate below which the answer no longer matters (the block time
            bound divided by the entries of the largest block).
    """
    return sampled_rate(lambda A, B: k(A, B, get=wanted), X1, X2, time.perf_counter, small_enough)


def timed_tile(k: Any, X1: Any, X2: Any, get: str, limit: int, block_seconds: float) -> int:
    """The memory bound ``limit``, lowered until a block of ``k`` takes ``block_seconds``.

    Measures ``k`` (:func:`measure_rate`) only when the largest block holds more than
    ``MIN_TILE**2`` entries, and passes the rate to :func:`time_tile`.
    """
    n1 = X1.shape[0]
    n2 = n1 if X2 is None else X2.shape[0]
    largest = min(limit, n1) * min(limit, n2)
    if largest <= MIN_TILE**2:  # (the time bound never goes below MIN_TILE)
        return limit
    wanted = ("nngp", "ntk") if get == "both" else (get,)
    rate = measure_rate(k, X1, X2, wanted, small_enough=block_seconds / largest)
    return time_tile(rate, block_seconds, limit, n1, n2)


def recorded_tile(record: Path, limit: int, memory: int) -> int | None:
    """The block side a stopped resumable run wrote in ``record`` (None: no usable record).

    A resumed run continues that run's plan, whatever the time bound would choose now: the
    last bits of a block's Gram product (a BLAS matrix product) can depend on the block's
    shape, so one output never mixes two plans. A record that is missing or unreadable gives
    None and is left to :func:`ntksym.kernels.safeio.read_resume_record` to report.

    Raises:
        InputError: The recorded side exceeds ``limit``, what ``memory`` allows now.
    """
    try:
        tile = json.loads(record.read_text(encoding="utf-8"))["params"]["tile"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < 1:
        return None
    if tile > limit:
        raise InputError(
            f"cannot resume: the stopped run used blocks of side {tile}, and --memory "
            f"{memory} bytes allows at most {limit} here; resume with the original --memory "
            f"(or pass --tile {tile}), or delete {str(record)!r} and its partial file"
        )
    return tile
