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
  without a closed form when ``degree`` is given; except that a kinked one (a typed sum
  such as ``"relu(u) + 0.1*erf(u)"``) of depth 3 or more uses the float64 layer maps of
  the described networks (:func:`ntksym.kernels.dual_path.layer_recursion`), which carry
  the determinants that ``"dual"`` forms by subtraction.
* ``"numba"`` / ``"numpy"``: the generated module of that backend (activations
  with a stable or SymPy closed form, or smooth ones as above). Typed sums of
  closed forms (``"relu(u) + 0.1*erf(u)"``) run ``"dual"`` under every backend: their
  float64 maps take the accurate determinant, their generic module would clip rho.
* ``"dual"``: the dual maps of :mod:`ntksym.dual` (closed forms where they
  exist) evaluated layer by layer with vectorised NumPy in float64 (faster than the
  layer maps, but from layer 3 on its determinants are formed by subtraction: a kinked
  activation then reads the angle of a pair 1e-8 apart to about 1e-8 of its size). Activations
  without a closed form are integrated by an adaptive Gaussian-weighted
  trapezoid rule (:func:`ntksym.dual.trapezoid`), or by a fixed Gauss-Hermite rule
  when ``degree`` is given. The first layer's determinant ``S11 S22 - S12^2`` is
  formed from the inputs without cancellation (see :func:`ntksym.kernels.dual_path.first_layer`).
"""

from __future__ import annotations

import numbers
import time
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, overload

import numpy as np

from ntksym._validate import nonnegative_std
from ntksym.activations import Activation, get_activation
from ntksym.dual.kinks import kink_points
from ntksym.errors import InputError
from ntksym.kernels.call import (
    GET_OPTIONS,
    STORAGE_DTYPES,
    Kernels,
    gram_call,
    parse_get,
    result_type,
    single_rows,
    storage_dtype,
    validate_inputs,
)
from ntksym.kernels.dispatch import (
    announce_compilation,
    background_module,
    generated_module,
    numpy_first,
    start_compilation,
)
from ntksym.kernels.dual_path import dual_recursion, layer_recursion
from ntksym.kernels.finite import check_cost, check_finite
from ntksym.kernels.tileplan import sampled_rate
from ntksym.typing import ActivationLike, ArrayLike, KernelName

__all__ = ["Get", "Kernels", "validate_inputs", "Kernel", "kernel"]
# (the argument handling lives in kernels.call; these names stay importable from here)
__all__ += [
    "GET_OPTIONS",
    "STORAGE_DTYPES",
    "gram_call",
    "parse_get",
    "result_type",
    "single_rows",
    "storage_dtype",
]


#: Values of ``kernel(..., backend=...)``.
BACKENDS = ("auto", "numba", "numpy", "dual")


Get = Literal["nngp", "ntk"] | tuple[str, ...]


def _check_depth(depth: Any) -> int:
    if isinstance(depth, bool) or not isinstance(depth, numbers.Integral):
        raise InputError(
            f"depth must be a positive integer (number of affine layers), got {depth!r}"
        )
    if depth < 1:
        raise InputError(f"depth must be at least 1 (number of affine layers), got {depth}")
    return int(depth)


def check_backend(backend: Any, allowed: tuple[str, ...], what: str = "backend") -> str:
    """``backend`` if it is one of ``allowed``, else an InputError listing them."""
    if not isinstance(backend, str) or backend not in allowed:
        raise InputError(f"{what} must be one of {', '.join(allowed)}; got {backend!r}")
    return backend


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

    @property
    def _has_kinks(self) -> bool:
        """Whether the activation has kinks (its maps read the angle from ``D``)."""
        return bool(kink_points(self.activation))

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
        return kernel(**fields)  # type: ignore[arg-type]  # checked by kernel() itself

    @overload
    def __call__(
        self,
        X1: ArrayLike,
        X2: ArrayLike | None = None,
        get: KernelName = "ntk",
        dtype: Any = None,
        out: np.ndarray | None = None,
    ) -> np.ndarray: ...

    @overload
    def __call__(
        self,
        X1: ArrayLike,
        X2: ArrayLike | None = None,
        *,
        get: tuple[str, ...],
        dtype: Any = None,
        out: tuple[np.ndarray, ...] | None = None,
    ) -> Kernels: ...

    def __call__(
        self,
        X1: ArrayLike,
        X2: ArrayLike | None = None,
        get: Get = "ntk",
        dtype: Any = None,
        out: Any = None,
    ) -> Any:
        """Gram matrix (or matrices) between the rows of X1 and X2.

        Args:
            X1: Inputs, shape (N1, d).
            X2: Inputs, shape (N2, d); None means X1 against itself.
            get: ``"nngp"``, ``"ntk"`` or a tuple of both (then a
                :class:`Kernels` named tuple in that order of fields).
            dtype: Storage of the result: None or ``np.float64`` (default), or
                ``np.float32`` (computed in float64 and rounded once: half the memory,
                relative error at most 2^-24 ~ 6e-8 per entry).
            out: None, or the arrays to write the result into: one array for a single
                ``get`` name, a tuple in the order of ``get`` otherwise; each C-contiguous,
                writeable, of shape (N1, N2) and the storage ``dtype``, sharing no memory
                with the inputs or each other. For repeated calls of one shape: the
                generated kernels then write into memory that is already mapped (on the
                machines measured, mapping fresh pages costs about 1 s/GB). The same
                values as without ``out``; on an error the contents are undefined.

        Returns:
            Array(s) of shape (N1, N2) in ``dtype``. When X1 and X2 are both 1-D (two single
            inputs, as scikit-learn's ``pairwise_kernels`` passes them to a callable kernel,
            e.g. in ``KernelRidge(kernel=k)``), the kernel of that pair as a float.

        Raises:
            InputError: Bad inputs, or a kernel that is infinite at these
                inputs (e.g. the NTK of ``step`` on coincident inputs).
        """
        return gram_call(self._gram, X1, X2, get, dtype, out)

    def _gram(
        self,
        X1: np.ndarray,
        X2: np.ndarray | None,
        wanted: tuple[str, ...],
        outs: list[np.ndarray] | None = None,
    ) -> list[np.ndarray]:
        """The ``wanted`` float64 matrices of checked inputs (exactly symmetric if X2 is None).

        A generated kernel writes into those of ``outs`` (checked, in the order of
        ``wanted``) that are float64; the caller copies the others in.
        """
        check_cost(X1.shape[0], None if X2 is None else X2.shape[0], self.depth)
        check_finite(self.activation, X1, X2, self.depth, self.bias_std, self.weight_std)
        probe = self._probe(X1, X2)
        module = None
        if self.backend == "auto" and self.degree is None:  # (before Numba is imported)
            n2 = X1.shape[0] if X2 is None else X2.shape[0]
            module = numpy_first(self.activation, X1.shape[0] * n2 * self.depth, probe)
        if module is None:
            module = generated_module(self.activation, self.backend, self.degree is None)
        if module is not None:
            direct = {
                g: o for g, o in zip(wanted, outs or (), strict=False) if o.dtype == np.float64
            }
            pair = (direct.get("nngp"), direct.get("ntk"))
            nngp, ntk = self._compute_generated(module, X1, X2, "ntk" in wanted, pair, probe)
        else:
            nngp, ntk = self._compute(X1, X1 if X2 is None else X2, need_ntk="ntk" in wanted)
            if X2 is None:
                nngp = (nngp + nngp.T) / 2
                ntk = None if ntk is None else (ntk + ntk.T) / 2
        result = {"nngp": nngp, "ntk": ntk}
        return [result[g] for g in wanted]  # type: ignore[misc]  # ntk is there when wanted

    def _infinite_ntk(self) -> InputError:
        return InputError(
            f"the NTK of {self.activation.name!r} is infinite or undefined at some of these "
            "inputs (its derivative dual map diverges for coincident or parallel inputs); "
            "ask for get='nngp' or use a smooth activation"
        )

    def _compute_generated(
        self,
        module: types.ModuleType,
        X1: np.ndarray,
        X2: np.ndarray | None,
        need_ntk: bool,
        out: tuple[np.ndarray | None, np.ndarray | None] = (None, None),
        probe: Callable[[types.ModuleType], float] | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Both matrices from a generated module (exactly symmetric when X2 is None).

        ``out``: the arrays (or None) the module writes the NNGP and the NTK into;
        ``probe``: the call's :meth:`_probe` (made here if None).
        """
        if need_ntk and not module.HAS_NTK:
            raise self._infinite_ntk()
        args = (X1, X2, self.depth, self.bias_std, self.weight_std)
        if self.backend == "auto":  # (an explicit "numba" waits for the compilation)
            n2 = X1.shape[0] if X2 is None else X2.shape[0]
            work = X1.shape[0] * n2 * self.depth
            probe = self._probe(X1, X2) if probe is None else probe
            stand_in = background_module(self.activation, module, work, probe)
            module = module if stand_in is None else stand_in
        announce_compilation(module, X2 is None, self.activation.name)
        try:
            if need_ntk:
                return module.nngp_ntk(*args, out=out)
            return module.nngp(*args, out=out[0]), None
        except ValueError as exc:  # the generated modules raise ValueError only
            raise InputError(
                f"{self.activation.name!r} kernel, depth {self.depth}: {exc}"
            ) from None
        finally:
            start_compilation()  # (after the answer: see background_module)

    def _probe(self, X1: np.ndarray, X2: np.ndarray | None) -> Callable[[types.ModuleType], float]:
        """A module's marginal CPU seconds per entry-layer on pairs sampled from the inputs.

        :func:`ntksym.kernels.tileplan.sampled_rate` of ``module.nngp`` (16 rows against 16
        and 112 columns, the difference per extra entry), per layer, in CPU time
        (``time.process_time``): the probe compares two modules' costs (and a compilation's,
        in CPU seconds), which time spent waiting for other processes would blur. Each
        module is timed once per call (:func:`numpy_first` and :func:`background_module`
        both ask).
        """
        rates: dict[str, float] = {}  # (a module is timed once per call)
        args = (self.depth, self.bias_std, self.weight_std)

        def probe(module: types.ModuleType) -> float:
            if module.__name__ not in rates:
                rate = sampled_rate(
                    lambda A, B: module.nngp(A, B, *args), X1, X2, time.process_time
                )
                rates[module.__name__] = rate / self.depth
            return rates[module.__name__]

        return probe

    def _compute(
        self, X1: np.ndarray, X2: np.ndarray, need_ntk: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        args = (self.activation, X1, X2, self.depth, self.bias_std, self.weight_std)
        if self.backend == "auto" and self.degree is None and self.depth >= 3 and self._has_kinks:
            # (the dual path's determinants by subtraction would cost eps / theta in the
            # angle of a nearly parallel pair; the layer maps carry them)
            return layer_recursion(*args, need_ntk=need_ntk)
        nngp, ntk = dual_recursion(*args, degree=self.degree, need_ntk=need_ntk)
        if ntk is not None and not np.all(np.isfinite(ntk)):
            raise self._infinite_ntk()
        if not np.all(np.isfinite(nngp)):
            raise InputError(
                f"the NNGP of {self.activation.name!r} overflowed at these inputs (depth "
                f"{self.depth}); reduce the input scale or the depth"
            )
        return nngp, ntk


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
    return Kernel(
        activation=act,
        depth=_check_depth(depth),
        bias_std=nonnegative_std("bias_std", bias_std),
        weight_std=nonnegative_std("weight_std", weight_std),
        degree=None if degree is None else int(degree),
        backend=check_backend(backend, BACKENDS),
    )
