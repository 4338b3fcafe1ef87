"""``ntksym.kernel``: the homogeneous shorthand, or the kernel of a described network.

``ntksym.kernel("relu", depth=3, bias_std=0.1)`` is the homogeneous network of
:mod:`ntksym.kernels.api` (one activation and one pair of variances at every layer, NTK
parameterization). ``ntksym.kernel(net)`` with ``net`` a network description
(:mod:`ntksym.architecture.description`), a ``ntksym.stax`` layer or its
``(init_fn, apply_fn, kernel_fn)`` triple gives a :class:`DescribedKernel`, evaluated by
:func:`ntksym.kernels.architecture.compute` (the generated kernel when the description is
homogeneous, the float64 layer maps otherwise).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, overload

import numpy as np

from ntksym.architecture.description import Net, as_description
from ntksym.architecture.walk import check
from ntksym.codegen.architecture import supported
from ntksym.errors import InputError
from ntksym.kernels import api
from ntksym.kernels.architecture import BACKENDS, FUSED_MIN_PAIRS, compute, homogeneous
from ntksym.typing import ActivationLike

__all__ = ["REPLACEABLE", "DescribedKernel", "kernel", "build_kernel"]


#: What :meth:`DescribedKernel.replace` may change (the rest is in the description).
REPLACEABLE = ("description", "backend")


@dataclass(frozen=True)
class DescribedKernel:
    """The infinite-width NNGP/NTK of a described network, called like a :class:`Kernel`.

    It shares :class:`~ntksym.kernels.api.Kernel`'s call, ``k(X1, X2=None, get="ntk",
    dtype=None, out=None)`` (the same argument handling,
    :func:`ntksym.kernels.api.gram_call`): one name in ``get`` gives an array, a tuple a
    named tuple; two 1-D vectors give the kernel of that pair (scikit-learn's
    callable-kernel form); ``dtype=np.float32`` stores the float64 result rounded once;
    ``out`` takes arrays to write the result into, for repeated calls of one shape. It
    is hashable (equal descriptions, equal kernels), goes wherever a homogeneous kernel
    goes (:func:`ntksym.predict.gradient_descent_mse`, the ``.npy`` tiles of
    :func:`ntksym.kernels.tiles.gram_to_file`, :func:`ntksym.dask.gram`), and
    :meth:`replace` changes its ``description`` or ``backend``.

    Attributes:
        description: The network (one output).
        backend: A value of ``ntksym.kernels.architecture.BACKENDS``.
    """

    description: Net
    backend: str = "auto"

    @property
    def degree(self) -> None:
        """Always None: activations without a closed form are integrated adaptively.

        ``Kernel.degree`` is the fixed Gauss-Hermite degree of the homogeneous ``"dual"``
        path (not a polynomial degree of the kernel); a described network's layer maps
        always use the adaptive trapezoid rule (about 1e-14 per layer), so there is no
        degree to choose and :meth:`replace` refuses one.
        """
        return None

    def replace(self, **changes: Any) -> DescribedKernel:
        """A copy with ``description`` and/or ``backend`` changed (validated like :func:`kernel`).

        Raises:
            InputError: Any other field (``activation``, ``depth``, ``bias_std``,
                ``weight_std``, ``degree``): a described network carries its activations,
                depth and variances in its description; build another one with
                ``ntksym.stax`` and pass it as ``description=``.
        """
        other = sorted(set(changes) - set(REPLACEABLE))
        if other:
            raise InputError(
                f"DescribedKernel.replace changes only {' and '.join(REPLACEABLE)}, got "
                f"{', '.join(other)}: the activations, depth and variances live in the "
                "description (build another with ntksym.stax and pass description=it), and "
                "its activations without a closed form are always integrated adaptively "
                "(no Gauss-Hermite degree)"
            )
        net = changes.get("description", self.description)
        return kernel(net, backend=changes.get("backend", self.backend))

    def __call__(
        self, X1: Any, X2: Any = None, get: Any = "ntk", dtype: Any = None, out: Any = None
    ) -> Any:
        """Gram matrix (or matrices) between the rows of X1 and X2 (X1 with itself if None).

        Arguments and results as :meth:`ntksym.kernels.api.Kernel.__call__`, ``out``
        included (checked alike; the same values bit for bit as without it): the fused and
        homogeneous kernels write into it (the fused module forms the Gram product in the
        NNGP array), the layer maps write their blocks of rows into it.

        Raises:
            InputError: Bad inputs, ``get``, ``dtype`` or ``out``, or kernels that are not
                finite there.
        """
        return api.gram_call(self._gram, X1, X2, get, dtype, out)

    def identity(self) -> dict[str, str]:
        """What names this network in a resume record: its text and the SHA-256 of its repr."""
        text = repr(self.description)
        return {
            "network": str(self.description),
            "network_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        }

    def resolved(self, n_pairs: int) -> DescribedKernel:
        """This kernel with ``backend="auto"`` fixed to what one call of ``n_pairs`` entries uses.

        A Gram matrix computed in blocks (the ``.npy`` tiles, Dask) must give the numbers of
        one call, but ``"auto"`` picks the fused module or the layer maps by the size of
        each call (:data:`~ntksym.kernels.architecture.FUSED_MIN_PAIRS`): every block
        therefore uses the backend of the whole matrix. Homogeneous networks keep
        ``"auto"`` (their generated kernel does not depend on the size).
        """
        if self.backend != "auto" or homogeneous(self.description) is not None:
            return self
        fused = n_pairs >= FUSED_MIN_PAIRS and not supported(self.description)
        return DescribedKernel(self.description, "fused" if fused else "layers")

    def _gram(
        self,
        X1: np.ndarray,
        X2: np.ndarray | None,
        wanted: tuple[str, ...],
        outs: list[np.ndarray] | None = None,
    ) -> list[np.ndarray]:
        """The ``wanted`` float64 matrices of checked inputs, written into float64 ``outs``.

        ``outs`` (checked by :func:`ntksym.kernels.call.gram_call`) share the storage dtype:
        float32 ones are left to the caller, which rounds the result into them.
        """
        direct = outs if outs and outs[0].dtype == np.float64 else None
        values = compute(self.description, X1, X2, wanted, self.backend, direct)
        return [values[g] for g in wanted]


def _described(net: Net, args: tuple[Any, ...], kwargs: dict[str, Any]) -> DescribedKernel:
    backend = kwargs.pop("backend", "auto")
    if args or kwargs:
        raise InputError(
            "a described network carries its own depth, variances and activations: "
            "ntksym.kernel(net) takes only backend=, got "
            f"{len(args)} more positional and keyword arguments {sorted(kwargs)}"
        )
    api.check_backend(backend, BACKENDS, "backend of a described network")
    outputs = check(net)
    if outputs != 1:
        raise InputError(
            f"ntksym.kernel needs a network with one output, this one ends in {outputs} "
            "branches; join them with FanInSum() or FanInConcat(), or call its stax kernel_fn "
            "(a list of kernels)"
        )
    return DescribedKernel(net, backend)


@overload
def kernel(activation: Net, *, backend: str = "auto") -> DescribedKernel: ...


@overload
def kernel(
    activation: ActivationLike = "relu",
    depth: int = 2,
    bias_std: float = 0.0,
    weight_std: float = 1.0,
    *,
    degree: int | None = None,
    backend: str = "auto",
    **activation_params: Any,
) -> api.Kernel: ...


def kernel(activation: Any = "relu", *args: Any, **kwargs: Any) -> Any:
    """The kernel function of a fully connected network.

    ``kernel(activation, depth=2, bias_std=0.0, weight_std=1.0, *, degree=None,
    backend="auto", **activation_params)`` is the homogeneous network
    (:func:`ntksym.kernels.api.kernel`, which documents those arguments); ``kernel(net,
    backend="auto")`` with a network description, a ``ntksym.stax`` layer or its triple is
    that network's :class:`DescribedKernel`.

    Returns:
        A :class:`~ntksym.kernels.api.Kernel` or a :class:`DescribedKernel`; call it as
        ``k(X1, X2=None, get="ntk")``.

    Raises:
        InputError: Bad arguments, other arguments than ``backend`` with a description,
            or a description that is not well formed or ends in several branches.

    Example:
        >>> import numpy as np
        >>> from ntksym import stax
        >>> net = stax.serial(stax.Dense(64, 1.2), stax.Relu(), stax.Dense(1, 0.9, 0.1))
        >>> kernel(net)(np.eye(3)).shape
        (3, 3)
    """
    net = as_description(activation)
    if net is None:
        return api.kernel(activation, *args, **kwargs)
    return _described(net, args, dict(kwargs))


def build_kernel(
    network: Any,
    activation: Any,
    depth: Any,
    bias_std: Any = 0.0,
    weight_std: Any = 1.0,
    backend: str = "auto",
    caller: str = "this function",
) -> api.Kernel | DescribedKernel:
    """The kernel of functions that take ``network=`` or the homogeneous parameters.

    Args:
        network: A description, ``ntksym.stax`` layer or triple, a
            :class:`DescribedKernel` (its backend replaced by a non-``"auto"`` ``backend``),
            or None for the homogeneous network of the other arguments.
        activation: The homogeneous network's activation (None with ``network``).
        depth: Its number of affine layers (None with ``network``).
        bias_std: Its bias scale (0.0 with ``network``).
        weight_std: Its weight scale (1.0 with ``network``).
        backend: The backend, checked against the kind of kernel.
        caller: The function's name, for the error messages.

    Raises:
        InputError: Neither or both of ``network`` and the homogeneous parameters, or a
            ``network`` that is not a description.
    """
    if network is None:
        if activation is None or depth is None:
            raise InputError(
                f"{caller} needs activation= and depth= (the homogeneous network), or "
                "network= (a network description or ntksym.stax layer)"
            )
        return api.kernel(activation, depth, bias_std, weight_std, backend=backend)
    if activation is not None or depth is not None or (bias_std, weight_std) != (0.0, 1.0):
        raise InputError(
            f"{caller} takes network= or the homogeneous activation=, depth=, bias_std=, "
            "weight_std=, not both: a described network carries its own activations, depth "
            "and variances"
        )
    if isinstance(network, DescribedKernel):
        return network if backend == "auto" else network.replace(backend=backend)
    if as_description(network) is None:
        raise InputError(
            f"network= must be a network description or a ntksym.stax layer, got "
            f"{type(network).__name__}; for the homogeneous network pass activation= and depth="
        )
    return kernel(network, backend=backend)
