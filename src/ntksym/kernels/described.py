"""``ntksym.kernel``: the homogeneous shorthand, or the kernel of a described network.

``ntksym.kernel("relu", depth=3, bias_std=0.1)`` is the homogeneous network of
:mod:`ntksym.kernels.api` (one activation and one pair of variances at every layer, NTK
parameterization). ``ntksym.kernel(net)`` with ``net`` a network description
(:mod:`ntksym.architecture.description`), a ``ntksym.stax`` layer or its
``(init_fn, apply_fn, kernel_fn)`` triple gives a :class:`DescribedKernel`, evaluated by
:func:`ntksym.kernels.architecture.evaluate` (the generated kernel when the description is
homogeneous, the float64 layer maps otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, overload

import numpy as np

from ntksym.architecture.description import Net, as_description
from ntksym.architecture.walk import check
from ntksym.errors import InputError
from ntksym.kernels import api
from ntksym.kernels.architecture import BACKENDS, evaluate
from ntksym.typing import ActivationLike

__all__ = ["DescribedKernel", "kernel"]


@dataclass(frozen=True)
class DescribedKernel:
    """The infinite-width NNGP/NTK of a described network, called like a :class:`Kernel`.

    Supported from :class:`~ntksym.kernels.api.Kernel`'s interface: ``k(X1, X2=None,
    get="ntk")`` with ``get`` one name (an array) or a tuple (a named tuple), two 1-D
    vectors for the kernel of one pair (scikit-learn's callable-kernel form), equality and
    hashing, and use as the ``kernel`` of :func:`ntksym.predict.gradient_descent_mse`. Not
    supported (they need the homogeneous recursion's ``activation`` and ``depth``):
    :meth:`Kernel.replace`, ``degree``, the ``.npy`` tiles and Dask.

    Attributes:
        description: The network (one output).
        backend: A value of ``ntksym.kernels.architecture.BACKENDS``.
    """

    description: Net
    backend: str = "auto"

    def __call__(self, X1: Any, X2: Any = None, get: Any = "ntk") -> Any:
        """Gram matrix (or matrices) between the rows of X1 and X2 (X1 with itself if None).

        Raises:
            InputError: Bad inputs or ``get``, or kernels that are not finite there.
        """
        wanted = api.parse_get(get)
        pair = api.single_rows(X1, X2)
        if pair is not None:
            out = self(pair[0], pair[1], get=get)
            if isinstance(out, np.ndarray):
                return float(out[0, 0])
            return type(out)(*(float(m[0, 0]) for m in out))
        out = evaluate(self.description, X1, X2, wanted, self.backend)
        if isinstance(get, str):
            return out[0]
        return api.result_type(wanted)(*out)


def _described(net: Net, args: tuple[Any, ...], kwargs: dict[str, Any]) -> DescribedKernel:
    backend = kwargs.pop("backend", "auto")
    if args or kwargs:
        raise InputError(
            "a described network carries its own depth, variances and activations: "
            "ntksym.kernel(net) takes only backend=, got "
            f"{len(args)} more positional and keyword arguments {sorted(kwargs)}"
        )
    if backend not in BACKENDS:
        raise InputError(
            f"backend of a described network must be one of {', '.join(BACKENDS)}, got {backend!r}"
        )
    outputs = check(net)
    if outputs != 1:
        raise InputError(
            f"ntksym.kernel needs a network with one output, this one ends in {outputs} "
            "branches; join them with FanInSum(), or call its stax kernel_fn (a list of kernels)"
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
