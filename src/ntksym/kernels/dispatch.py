"""Which generated module computes a kernel, and the per-process cache of loaded modules."""

from __future__ import annotations

import importlib
import math
import os
import sys
import threading
import types
import warnings
from collections.abc import Callable

from ntksym.activations import Activation
from ntksym.errors import InputError

__all__ = [
    "BACKGROUND_ENV",
    "BACKGROUND_WORK",
    "BACKGROUND_WORK_QUADRATURE",
    "announce_compilation",
    "background_module",
    "generated_module",
    "numpy_first",
    "sp_key",
    "start_compilation",
]


# ----------------------------------------------------------------------------- generated modules
_MODULES: dict[tuple[str, str, str], tuple[types.ModuleType | None, str]] = {}


_MODULES_LOCK = threading.Lock()


_WARNED_NO_NUMBA = False


def _numba_imports() -> bool:
    """Whether Numba imports here (no warning)."""
    try:
        importlib.import_module("numba")
    except ImportError:
        return False
    return True


def _numba_available() -> bool:
    """Whether Numba imports here; warns once (per process) when it does not."""
    global _WARNED_NO_NUMBA
    if not _numba_imports():
        if not _WARNED_NO_NUMBA:
            _WARNED_NO_NUMBA = True
            warnings.warn(
                "ntksym: Numba is not installed; using the generated NumPy kernels "
                "(slower, same results). pip install numba for the fused kernels.",
                RuntimeWarning,
                stacklevel=4,
            )
        return False
    return True


def _smooth(act: Activation) -> bool:
    """Whether the generated quadrature suits ``act``: no kinks, a pointwise derivative.

    The adaptive trapezoid rule converges geometrically only for integrands analytic
    near the real line; at a kink it would stop at its finest step, inaccurate.
    """
    return not act.kinks and not act.has_distributional_derivative


def _typed_sum(act: Activation) -> bool:
    """Whether ``act`` is a typed sum of closed forms (:mod:`ntksym.dual.families.sums`).

    Its generated module would be the generic SymPy closed form with ``rho`` clipped
    (arc-cosines of a rounded correlation: 1e-9 near parallel inputs, 1e-6 one layer on),
    while its float64 dual maps take the accurate determinant (2e-16), so every backend
    runs the dual path for it.
    """
    from ntksym import dual
    from ntksym.dual.families import family_of

    family = family_of(act)
    # a sum with a term that has no closed form (relu(u) + tanh(u)) is not one: derive to know
    return family is not None and family.name == "sums" and dual.has_closed_form(act)


_KINDS: dict[tuple[str, str], str] = {}


def _kind(act: Activation) -> str:
    """The kind of ``act``'s generated module ("stable", "sympy", "quadrature"), or "dual"."""
    from ntksym import codegen

    key = (act.name, sp_key(act))
    if key not in _KINDS:
        _KINDS[key] = "dual" if _typed_sum(act) else codegen.kernel_spec(act).kind
    return _KINDS[key]


def numpy_first(
    act: Activation, work: int, probe: Callable[[types.ModuleType], float]
) -> types.ModuleType | None:
    """The NumPy quadrature module of ``act`` if it answers this call faster than Numba would.

    For a smooth activation without a closed form and a call above
    :data:`PROBE_WORK_QUADRATURE` entry-layers: where ``probe`` (CPU seconds per entry-layer
    of the NumPy module on a sample of the call's inputs) is below half the compiled rule's
    (:data:`QUADRATURE_NUMBA_SECONDS`), the Mehler series takes most entries and the NumPy
    module answers, as :func:`background_module` would decide, but before Numba is imported
    (about 0.5 s of a first call). None otherwise (then :func:`generated_module` and
    :func:`background_module` decide as before). For ``backend="auto"`` only; disabled,
    like the background compilation, by ``NTKSYM_BACKGROUND_COMPILE=0``.
    """
    if os.environ.get(BACKGROUND_ENV, "1") == "0" or work <= PROBE_WORK_QUADRATURE:
        return None
    if _kind(act) != "quadrature" or not _smooth(act):
        return None
    numpy_module, _, serves = _probed_numpy(act, probe)
    return numpy_module if serves else None


def _probed_numpy(
    act: Activation, probe: Callable[[types.ModuleType], float]
) -> tuple[types.ModuleType | None, float, bool]:
    """``act``'s NumPy module, its ``probe`` rate, and whether it answers at any size.

    It does where the rate is below half the compiled rule's
    (:data:`QUADRATURE_NUMBA_SECONDS`): the Mehler series then takes most entries, which
    the Numba module still integrates one by one. (None, inf, False) without a NumPy module.
    """
    numpy_module = generated_module(act, "numpy")
    if numpy_module is None:
        return None, math.inf, False
    rate = probe(numpy_module)
    return numpy_module, rate, rate < QUADRATURE_NUMBA_SECONDS / 2


def generated_module(
    act: Activation, backend: str, quadrature: bool = True
) -> types.ModuleType | None:
    """The generated module to use for ``act`` under ``backend``, or None for the dual path.

    ``"auto"`` takes stable generated maps (accurate to rounding) and, when ``quadrature``
    is true, the quadrature modules of smooth activations (:func:`_smooth`); ``"numba"``
    and ``"numpy"`` also take SymPy closed forms, and refuse the quadrature modules of
    activations that are not smooth. Typed sums of closed forms run the dual path under
    every backend (:func:`_typed_sum`).
    """
    if backend == "dual":
        return None
    from ntksym import codegen

    chosen = backend
    if backend == "auto":
        chosen = "numba" if _numba_available() else "numpy"
    elif backend == "numba" and not _numba_imports():
        raise InputError(
            "backend='numba' needs Numba, which does not import here; install it "
            "(pip install numba) or use backend='numpy' or 'auto'"
        )
    cache_key = (act.name, sp_key(act), chosen)
    with _MODULES_LOCK:
        if cache_key not in _MODULES:
            _MODULES[cache_key] = (None, _kind(act))
        module, kind = _MODULES[cache_key]
        if kind == "dual":
            return None
        smooth = kind != "quadrature" or _smooth(act)
        if backend == "auto":
            wanted = kind == "stable" or (kind == "quadrature" and smooth and quadrature)
        elif not smooth:
            raise InputError(
                f"backend={backend!r} needs a closed-form dual kernel or a smooth activation, "
                f"and {act.name!r} has kinks at {list(act.kinks)} or a Dirac delta derivative "
                f"(its generated module would use {kind}, which converges slowly there); use "
                "backend='auto' or 'dual'"
            )
        else:
            wanted = True
        if wanted and module is None:
            module = codegen.load(act, chosen)
            _MODULES[cache_key] = (module, kind)
    return module if wanted else None


def sp_key(act: Activation) -> str:
    """A string identifying an activation's expression (for the module cache)."""
    import sympy as sp

    return sp.srepr(act.expr)


_ANNOUNCED: set[tuple[str, str]] = set()

#: Calls with at most this many entries times layers are answered by the generated NumPy
#: module while Numba compiles the fused kernel in the background (the NumPy module takes
#: about 0.1 s per million entry-layers for relu; a compilation takes 5 to 40 s).
BACKGROUND_WORK = 4_000_000
#: The same for the quadrature modules (tanh, sigmoid, typed smooth expressions). Their NumPy
#: module answers most entries by the Mehler series, about 0.8 us per entry-layer for tanh's
#: NNGP (twice that with the NTK; N = 1000 at depth 3 is 3e6), against a compilation of about
#: 10 s of CPU time; entries the series cannot take (correlations near +-1) cost about 70 us
#: each (docs/performance.md, issue 13).
BACKGROUND_WORK_QUADRATURE = 3_000_000
#: Above this many entry-layers a quadrature stand-in is first timed on a sample of the
#: call's own inputs (:func:`background_module`'s ``probe``), since its cost per entry
#: ranges over two orders of magnitude with the inputs' correlations.
PROBE_WORK_QUADRATURE = 50_000
#: What waiting costs instead (CPU seconds, this machine's order of magnitude): compiling a
#: Numba quadrature module, and its run time per entry-layer.
QUADRATURE_COMPILE_SECONDS = 15.0
QUADRATURE_NUMBA_SECONDS = 25e-6
#: Set to "0" to make every call wait for the Numba compilation instead.
BACKGROUND_ENV = "NTKSYM_BACKGROUND_COMPILE"
_COMPILERS: dict[str, threading.Thread] = {}
_COMPILERS_LOCK = threading.Lock()


def _index_missing(module: types.ModuleType, entry: str) -> bool | None:
    """Whether Numba's disk cache lacks ``entry`` of ``module`` (None: cannot tell)."""
    try:
        index = getattr(module, entry)._cache._cache_file._index_path
    except AttributeError:  # another Numba version: say nothing rather than guess
        return None
    return not os.path.exists(index)


def announce_compilation(module: types.ModuleType, symmetric: bool, name: str) -> None:
    """Say once, on stderr, that Numba is about to compile ``module`` for this machine.

    Numba keeps compiled code in a disk cache; its index file for the entry point about to
    run is missing exactly when this call will compile (seconds) rather than load (a
    fraction of a second). Silent for NumPy modules, and if Numba's cache layout is not the
    one expected.
    """
    entry = "_fused_sym" if symmetric else "_fused"
    key = (module.__name__, entry)
    if getattr(module, "BACKEND", None) != "numba" or key in _ANNOUNCED:
        return
    _ANNOUNCED.add(key)
    if _index_missing(module, entry) and module.__name__ not in _COMPILERS:
        sys.stderr.write(
            f"ntksym: compiling the {name} kernel for this machine (once: Numba caches it on "
            "disk; a few seconds, longer for GELU)\n"
        )
        sys.stderr.flush()


def _compile(module: types.ModuleType) -> None:
    """Run ``module`` once on tiny inputs of both call shapes.

    Numba compiles both entry points (and the row blocks they share) and writes them to its
    disk cache.
    """
    import numpy as np

    X = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    module.nngp(X, None, 2)
    module.nngp(X, X[:2], 2)


def background_module(
    act: Activation,
    module: types.ModuleType,
    work: int,
    probe: Callable[[types.ModuleType], float] | None = None,
) -> types.ModuleType | None:
    """The NumPy module to answer with (``module`` compiling, or slower), or None for it.

    For a Numba module whose compiled code is not in Numba's disk cache, and a call of at
    most :data:`BACKGROUND_WORK` entry-layers (:data:`BACKGROUND_WORK_QUADRATURE` for a
    quadrature module, whose NumPy module is slower): starts (once per process) a thread that
    compiles ``module``, says so on stderr, and returns the generated NumPy module of ``act``
    (the same results up to rounding) until the thread is done. The thread is not a daemon: a
    process that ends sooner waits for it, so that the next process finds the cache.
    Disabled by ``NTKSYM_BACKGROUND_COMPILE=0``.

    ``probe`` (for quadrature calls above :data:`PROBE_WORK_QUADRATURE`): runs the NumPy
    module on a sample of the call's inputs and returns its CPU seconds per entry-layer.
    Where that rate is below half the compiled rule's (:data:`QUADRATURE_NUMBA_SECONDS`:
    the Mehler series takes most entries, which the Numba module still integrates one by
    one), the NumPy module answers the call whatever its size, and nothing is compiled.
    Otherwise it stands in only if the rate times ``work`` is below what waiting would cost
    (:data:`QUADRATURE_COMPILE_SECONDS` plus :data:`QUADRATURE_NUMBA_SECONDS` per
    entry-layer): nearly parallel inputs, which the series cannot take, cost ~90 us per
    entry-layer in NumPy against ~25 us compiled.
    """
    if getattr(module, "BACKEND", None) != "numba" or os.environ.get(BACKGROUND_ENV, "1") == "0":
        return None
    quadrature = hasattr(module, "_outer")  # (_outer: the quadrature's two-dimensional rule)
    numpy_module = None
    if quadrature and probe is not None and work > PROBE_WORK_QUADRATURE:
        numpy_module, rate, serves = _probed_numpy(act, probe)
        if serves:
            return numpy_module
        if rate * work > QUADRATURE_COMPILE_SECONDS + QUADRATURE_NUMBA_SECONDS * work:
            return None
    if work > (BACKGROUND_WORK_QUADRATURE if quadrature else BACKGROUND_WORK):
        return None
    with _COMPILERS_LOCK:
        thread = _COMPILERS.get(module.__name__)
        if thread is None:
            if not any(_index_missing(module, e) for e in ("_fused_sym", "_fused")):
                return None  # (compiled: loading takes a fraction of a second)
            thread = threading.Thread(
                target=_compile, args=(module,), name=f"ntksym-compile-{module.__name__}"
            )
            _COMPILERS[module.__name__] = thread
            sys.stderr.write(
                f"ntksym: compiling the {act.name} kernel for this machine in the background "
                "(once: Numba caches it on disk); the NumPy kernel answers meanwhile\n"
            )
            sys.stderr.flush()
    if thread.ident is not None and not thread.is_alive():  # (started, and done)
        return None
    return numpy_module or generated_module(act, "numpy")


def start_compilation() -> None:
    """Start the compilations :func:`background_module` prepared (no-op when there are none)."""
    with _COMPILERS_LOCK:
        for thread in _COMPILERS.values():
            if thread.ident is None:
                thread.start()
