"""Infinite-width NNGP and NTK Gram matrices: ``ntksym.kernel("relu", depth=3)``.

The recursion is the one derived in the seed notes (after Jacot, Gabriel &
Hongler 2018), in the NTK parameterization, with ``weight_std`` written
``w`` and ``bias_std`` written ``b``:

    Sigma^(1)(x, x') = w^2 x.x'/n0 + b^2,                Theta^(1) = Sigma^(1),
    Sigma^(l+1)      = w^2 E[sigma(u) sigma(v)] + b^2,
    Sigmadot^(l+1)   = w^2 E[sigma'(u) sigma'(v)],
    Theta^(l+1)      = Theta^(l) Sigmadot^(l+1) + Sigma^(l+1),

where ``(u, v)`` is a centred Gaussian pair with covariance ``Sigma^(l)`` on
``{x, x'}``. ``depth`` is ``L``, the number of affine layers, so a depth-L
network has ``L - 1`` nonlinearities; the NNGP is ``Sigma^(L)`` and the NTK
``Theta^(L)``. This is what neural-tangents computes for
``stax.serial(Dense(W_std=w, b_std=b, parameterization="ntk"), act, ...)``.

Backends (the ``backend`` argument of :func:`kernel`):

* ``"auto"`` (default): activations with a numerically stable generated
  module (:mod:`ntksym.codegen`: relu, leaky_relu, abs, identity, erf, step,
  sign, exp, sin, cos, gaussian, gelu) use it, and so do smooth activations
  without a closed form (tanh, sigmoid, softplus, silu, smooth user expressions:
  no kinks, a pointwise derivative), whose generated module integrates each pair
  by an adaptive trapezoid rule (to about 1e-15 per layer, at any variance and
  correlation); Numba when Numba imports and NumPy otherwise (a one-time warning
  says so). Every other activation uses ``"dual"``, and so does any activation
  without a closed form when ``degree`` is given.
* ``"numba"`` / ``"numpy"``: the generated module of that backend (activations
  with a stable or SymPy closed form, or smooth ones as above).
* ``"dual"``: the dual maps of :mod:`ntksym.dual` (closed forms where they
  exist) evaluated layer by layer with vectorised NumPy in float64. Activations
  without a closed form are integrated by an adaptive Gaussian-weighted
  trapezoid rule (:func:`ntksym.dual.trapezoid`), or by a fixed Gauss-Hermite rule
  when ``degree`` is given. The first layer's determinant ``S11 S22 - S12^2`` is
  formed from the inputs without cancellation (see :func:`_first_layer`).
"""

from __future__ import annotations

import importlib
import numbers
import threading
import types
import warnings
from collections import namedtuple
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal, NamedTuple, overload

import numpy as np

from ntksym._validate import nonnegative_std, real_matrix
from ntksym.activations import Activation, get_activation
from ntksym.errors import InputError
from ntksym.typing import ActivationLike, ArrayLike, KernelName

__all__ = ["Kernel", "Kernels", "kernel", "validate_inputs", "GET_OPTIONS", "BACKENDS"]

GET_OPTIONS = ("nngp", "ntk")
#: Values of ``kernel(..., backend=...)``.
BACKENDS = ("auto", "numba", "numpy", "dual")
Get = Literal["nngp", "ntk"] | tuple[str, ...]


class Kernels(NamedTuple):
    """NNGP and NTK Gram matrices, returned when ``get`` asks for both."""

    nngp: np.ndarray
    ntk: np.ndarray


def _check_depth(depth: Any) -> int:
    if isinstance(depth, bool) or not isinstance(depth, numbers.Integral):
        raise InputError(
            f"depth must be a positive integer (number of affine layers), got {depth!r}"
        )
    if depth < 1:
        raise InputError(f"depth must be at least 1 (number of affine layers), got {depth}")
    return int(depth)


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
    out = [None if X is None else real_matrix(X, name) for name, X in (("X1", X1), ("X2", X2))]
    if out[1] is not None and out[0].shape[1] != out[1].shape[1]:
        raise InputError(
            f"X1 and X2 must have the same number of features, got {out[0].shape[1]} and "
            f"{out[1].shape[1]}"
        )
    return out[0], out[1]


@cache
def _result_type(fields: tuple[str, ...]) -> type:
    if fields == Kernels._fields:
        return Kernels
    return namedtuple("Kernels", fields)  # noqa: PYI024 - mirrors neural-tangents' kernel_fn


def _parse_get(get: Any) -> tuple[str, ...]:
    items = (
        (get,) if isinstance(get, str) else tuple(get) if isinstance(get, (tuple, list)) else None
    )
    if not items or any(g not in GET_OPTIONS for g in items):
        raise InputError(f"get must be 'nngp', 'ntk' or a tuple of them, got {get!r}")
    return items


def _first_layer(
    X1: np.ndarray, X2: np.ndarray, w2: float, b2: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sigma^(1) on the pairs and diagonals, its determinant, and which pairs coincide.

    ``det = S11 S22 - S12^2`` equals ``a^2 (|x|^2|x'|^2 - (x.x')^2) + a b^2 |x - x'|^2``
    with ``a = w^2/n0``. The first term is ``|x|^2 |x'|^2 sin^2(angle)``, and
    ``sin^2 = (1 - cos)(1 + cos)`` with ``1 - cos = |x/|x| - x'/|x'||^2 / 2``
    computed from the unit vectors, so no term cancels for nearly parallel
    or anti-parallel pairs.
    """
    n0 = X1.shape[1]
    a = w2 / n0
    n1 = np.einsum("ij,ij->i", X1, X1)
    n2 = np.einsum("ij,ij->i", X2, X2)
    gram = X1 @ X2.T
    s11 = a * n1 + b2
    s22 = a * n2 + b2
    s12 = a * gram + b2
    with np.errstate(invalid="ignore", divide="ignore"):
        norm1, norm2 = np.sqrt(n1), np.sqrt(n2)
        U1 = X1 / np.where(norm1 > 0, norm1, 1.0)[:, None]
        U2 = X2 / np.where(norm2 > 0, norm2, 1.0)[:, None]
        cos = np.clip(U1 @ U2.T, -1.0, 1.0)
    # Pairs within 1e-3 of (anti-)parallel: recompute 1 -+ cos from differences.
    near = np.argwhere(np.abs(cos) > 1 - 1e-3)
    one_minus = 1.0 - cos
    one_plus = 1.0 + cos
    if len(near):
        i, j = near[:, 0], near[:, 1]
        diff = np.einsum("kj,kj->k", U1[i] - U2[j], U1[i] - U2[j]) / 2
        summ = np.einsum("kj,kj->k", U1[i] + U2[j], U1[i] + U2[j]) / 2
        one_minus[i, j] = diff
        one_plus[i, j] = summ
    sin2 = np.clip(one_minus * one_plus, 0.0, 1.0)
    det = a * a * np.outer(n1, n2) * sin2
    if b2 > 0:
        dist2 = np.maximum(n1[:, None] + n2[None, :] - 2 * gram, 0.0)
        if len(near):
            i, j = near[:, 0], near[:, 1]
            dist2[i, j] = np.einsum("kj,kj->k", X1[i] - X2[j], X1[i] - X2[j])
        det = det + a * b2 * dist2
    coincide = np.zeros(s12.shape, dtype=bool)
    if len(near):
        i, j = near[:, 0], near[:, 1]
        same = np.all(X1[i] == X2[j], axis=1)
        coincide[i[same], j[same]] = True
        s12[i[same], j[same]] = s11[i[same]]
        det[i[same], j[same]] = 0.0
    return s11, s22, s12, det, coincide


# ----------------------------------------------------------------------------- generated modules
_MODULES: dict[tuple[str, str, str], tuple[types.ModuleType | None, str]] = {}
_MODULES_LOCK = threading.Lock()
_WARNED_NO_NUMBA = False


def _numba_available() -> bool:
    """Whether Numba imports here; warns once (per process) when it does not."""
    global _WARNED_NO_NUMBA
    try:
        importlib.import_module("numba")
    except ImportError:
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


def _generated(act: Activation, backend: str, quadrature: bool = True) -> types.ModuleType | None:
    """The generated module to use for ``act`` under ``backend``, or None for the dual path.

    ``"auto"`` takes stable generated maps (accurate to rounding) and, when ``quadrature``
    is true, the quadrature modules of smooth activations (:func:`_smooth`); ``"numba"``
    and ``"numpy"`` also take SymPy closed forms, and refuse the quadrature modules of
    activations that are not smooth.
    """
    if backend == "dual":
        return None
    from ntksym import codegen

    chosen = backend
    if backend == "auto":
        chosen = "numba" if _numba_available() else "numpy"
    cache_key = (act.name, sp_key(act), chosen)
    with _MODULES_LOCK:
        if cache_key not in _MODULES:
            _MODULES[cache_key] = (None, codegen.kernel_spec(act).kind)
        module, kind = _MODULES[cache_key]
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


@dataclass(frozen=True)
class Kernel:
    """The infinite-width NNGP/NTK of a fully connected network.

    Attributes:
        activation: The nonlinearity.
        depth: Number of affine layers ``L`` (``L - 1`` nonlinearities).
        bias_std: Standard deviation ``beta`` of the biases' scale.
        weight_std: Standard deviation of the weights' scale.
        degree: Gauss-Hermite degree for activations without a closed form on
            the ``"dual"`` path, or None for the adaptive trapezoid rule.
        backend: ``"auto"``, ``"numba"``, ``"numpy"`` or ``"dual"`` (see the module).
    """

    activation: Activation
    depth: int
    bias_std: float = 0.0
    weight_std: float = 1.0
    degree: int | None = None
    backend: str = "auto"

    def replace(self, **changes: Any) -> Kernel:
        """A copy with some fields changed (validated like :func:`kernel`)."""
        fields = {
            "activation": self.activation,
            "depth": self.depth,
            "bias_std": self.bias_std,
            "weight_std": self.weight_std,
            "degree": self.degree,
            "backend": self.backend,
        }
        fields.update(changes)
        return kernel(**fields)

    @overload
    def __call__(
        self, X1: ArrayLike, X2: ArrayLike | None = None, get: KernelName = "ntk"
    ) -> np.ndarray: ...

    @overload
    def __call__(
        self, X1: ArrayLike, X2: ArrayLike | None = None, *, get: tuple[str, ...]
    ) -> Kernels: ...

    def __call__(self, X1: ArrayLike, X2: ArrayLike | None = None, get: Get = "ntk") -> Any:
        """Gram matrix (or matrices) between the rows of X1 and X2.

        Args:
            X1: Inputs, shape (N1, d).
            X2: Inputs, shape (N2, d); None means X1 against itself.
            get: ``"nngp"``, ``"ntk"`` or a tuple of both (then a
                :class:`Kernels` named tuple in that order of fields).

        Returns:
            Float64 array(s) of shape (N1, N2).

        Raises:
            InputError: Bad inputs, or a kernel that is infinite at these
                inputs (e.g. the NTK of ``step`` on coincident inputs).
        """
        wanted = _parse_get(get)
        X1, X2 = validate_inputs(X1, X2)
        module = _generated(self.activation, self.backend, quadrature=self.degree is None)
        if module is not None:
            nngp, ntk = self._compute_generated(module, X1, X2, need_ntk="ntk" in wanted)
            result = {"nngp": nngp, "ntk": ntk}
            if isinstance(get, str):
                return result[get]
            return _result_type(wanted)(*(result[g] for g in wanted))
        symmetric = X2 is None
        nngp, ntk = self._compute(X1, X1 if symmetric else X2, need_ntk="ntk" in wanted)
        if symmetric:
            nngp = (nngp + nngp.T) / 2
            ntk = None if ntk is None else (ntk + ntk.T) / 2
        result = {"nngp": nngp, "ntk": ntk}
        if isinstance(get, str):
            return result[get]
        return _result_type(wanted)(*(result[g] for g in wanted))

    def _infinite_ntk(self) -> InputError:
        return InputError(
            f"the NTK of {self.activation.name!r} is infinite or undefined at some of these "
            "inputs (its derivative dual map diverges for coincident or parallel inputs); "
            "ask for get='nngp' or use a smooth activation"
        )

    def _compute_generated(
        self, module: types.ModuleType, X1: np.ndarray, X2: np.ndarray | None, need_ntk: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Both matrices from a generated module (exactly symmetric when X2 is None)."""
        if need_ntk and not module.HAS_NTK:
            raise self._infinite_ntk()
        args = (X1, X2, self.depth, self.bias_std, self.weight_std)
        try:
            if need_ntk:
                return module.nngp_ntk(*args)
            return module.nngp(*args), None
        except ValueError as exc:  # the generated modules raise ValueError only
            raise InputError(
                f"{self.activation.name!r} kernel, depth {self.depth}: {exc}"
            ) from None

    def _dual_maps(self, s11: Any, s12: Any, s22: Any, det: Any) -> tuple[np.ndarray, np.ndarray]:
        from ntksym import dual

        return dual.evaluate(self.activation, s11, s12, s22, det=det, degree=self.degree)

    def _compute(
        self, X1: np.ndarray, X2: np.ndarray, need_ntk: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:

        w2, b2 = self.weight_std**2, self.bias_std**2
        s11, s22, s12, det, coincide = _first_layer(X1, X2, w2, b2)
        theta = s12.copy() if need_ntk else None
        for _ in range(self.depth - 1):
            k, kdot = self._dual_maps(s11[:, None], s12, s22[None, :], det)
            k11, _ = self._dual_maps(s11, s11, s11, np.zeros_like(s11))
            k22, _ = self._dual_maps(s22, s22, s22, np.zeros_like(s22))
            s12 = w2 * np.asarray(k) + b2
            s11 = w2 * np.asarray(k11) + b2
            s22 = w2 * np.asarray(k22) + b2
            if need_ntk:
                theta = theta * (w2 * np.asarray(kdot)) + s12
            # Identical inputs keep a singular covariance at every layer; elsewhere the
            # determinant is formed by subtraction (ntksym.codegen carries it stably).
            det = np.maximum(s11[:, None] * s22[None, :] - s12 * s12, 0.0)
            det[coincide] = 0.0
        if need_ntk and not np.all(np.isfinite(theta)):
            raise self._infinite_ntk()
        if not np.all(np.isfinite(s12)):
            raise InputError(
                f"the NNGP of {self.activation.name!r} overflowed at these inputs (depth "
                f"{self.depth}); reduce the input scale or the depth"
            )
        return s12, theta


def kernel(
    activation: ActivationLike = "relu",
    depth: int = 2,
    bias_std: float = 0.0,
    weight_std: float = 1.0,
    *,
    degree: int | None = None,
    backend: str = "auto",
    **activation_params: Any,
) -> Kernel:
    """Build the infinite-width kernel function of a fully connected network.

    Args:
        activation: A registered name (``"relu"``, ``"erf"``, ...), an
            expression in ``u`` (``"tanh(2*u)"``), a SymPy expression or an
            :class:`~ntksym.activations.Activation`.
        depth: Number of affine layers L >= 1 (L - 1 nonlinearities).
        bias_std: Bias scale beta >= 0.
        weight_std: Weight scale >= 0.
        degree: For activations without a closed form: None (default) for an
            adaptive trapezoid rule accurate to about 1e-14 (in the generated
            module, or on the ``"dual"`` path), or a fixed Gauss-Hermite degree
            (2..512), which sends them to the ``"dual"`` path.
        backend: ``"auto"`` (generated kernels for activations with a stable
            closed form and for smooth ones without a closed form: Numba if it
            imports, else NumPy with a warning; the dual maps otherwise),
            ``"numba"``, ``"numpy"`` or ``"dual"``.
        **activation_params: Parameters of a registered family (``slope=0.2``).

    Returns:
        A :class:`Kernel`; call it as ``k(X1, X2=None, get="ntk")``.

    Example:
        >>> import numpy as np
        >>> k = kernel("relu", depth=3, bias_std=0.1)
        >>> K = k(np.eye(3), get=("nngp", "ntk"))
        >>> K.ntk.shape
        (3, 3)
    """
    act = get_activation(activation, **activation_params)
    if degree is not None and (
        isinstance(degree, bool)
        or not isinstance(degree, numbers.Integral)
        or not 2 <= degree <= 512
    ):
        raise InputError(f"degree must be None or an integer from 2 to 512, got {degree!r}")
    if backend not in BACKENDS:
        raise InputError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    return Kernel(
        activation=act,
        depth=_check_depth(depth),
        bias_std=nonnegative_std("bias_std", bias_std),
        weight_std=nonnegative_std("weight_std", weight_std),
        degree=None if degree is None else int(degree),
        backend=backend,
    )
