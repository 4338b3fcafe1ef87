"""The NTK and NNGP as scikit-learn Gaussian-process kernels: ``ntksym.sklearn.NTK``.

``NTK(activation="relu", depth=3, bias_std=0.1, weight_std=1.0)`` is a
:class:`sklearn.gaussian_process.kernels.Kernel`: it works in
:class:`~sklearn.gaussian_process.GaussianProcessRegressor` and
:class:`~sklearn.gaussian_process.GaussianProcessClassifier`, composes with the other kernels
(``ConstantKernel() * NTK() + WhiteKernel()``), and is cloned, pickled and searched over by
``GridSearchCV`` like any other. ``bias_std`` and ``weight_std`` are its hyperparameters (fitted
in log space, as scikit-learn does for every kernel); ``activation`` and ``depth`` are fixed per
instance. The gradients with respect to the hyperparameters are exact
(:func:`ntksym.kernels.gradients.kernel_gradients`), not finite differences.

Install with ``pip install "ntksym[sklearn]"``; ``import ntksym`` never imports scikit-learn.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

try:
    from sklearn.gaussian_process.kernels import Hyperparameter
    from sklearn.gaussian_process.kernels import Kernel as SklearnKernel
except ImportError:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError("ntksym.sklearn needs scikit-learn: pip install 'ntksym[sklearn]'") from None

from ntksym import dual
from ntksym.errors import InputError
from ntksym.kernels import Kernel, kernel, validate_inputs
from ntksym.kernels.gradients import kernel_gradients
from ntksym.typing import KernelName

__all__ = ["NNGP", "NTK"]

Bounds = tuple[float, float] | str


class _InfiniteWidthKernel(SklearnKernel):
    """What NTK and NNGP share; ``_get`` says which of the two it is."""

    _get: ClassVar[KernelName] = "ntk"

    def __init__(
        self,
        activation: Any = "relu",
        depth: int = 3,
        bias_std: float = 0.1,
        weight_std: float = 1.0,
        bias_std_bounds: Bounds = (1e-5, 1e2),
        weight_std_bounds: Bounds = (1e-2, 1e2),
    ) -> None:
        # scikit-learn's convention: store the arguments as given (clone and get_params
        # rely on it) and check them where they are used
        self.activation = activation
        self.depth = depth
        self.bias_std = bias_std
        self.weight_std = weight_std
        self.bias_std_bounds = bias_std_bounds
        self.weight_std_bounds = weight_std_bounds

    @property
    def hyperparameter_bias_std(self) -> Hyperparameter:
        """The bias scale, fitted in log space within ``bias_std_bounds``."""
        return Hyperparameter("bias_std", "numeric", self.bias_std_bounds)

    @property
    def hyperparameter_weight_std(self) -> Hyperparameter:
        """The weight scale, fitted in log space within ``weight_std_bounds``."""
        return Hyperparameter("weight_std", "numeric", self.weight_std_bounds)

    def kernel(self) -> Kernel:
        """The :class:`ntksym.Kernel` with this instance's parameters (checked)."""
        return kernel(self.activation, self.depth, self.bias_std, self.weight_std)

    def __call__(
        self, X: Any, Y: Any = None, eval_gradient: bool = False
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """The Gram matrix ``k(X, Y)``, and optionally its gradient.

        Args:
            X: Inputs, shape (n_samples_X, n_features).
            Y: Inputs, shape (n_samples_Y, n_features); None means ``X`` against itself.
            eval_gradient: Also return the gradient with respect to the log of every
                hyperparameter that is not fixed (only when ``Y`` is None).

        Returns:
            ``K`` of shape (n_samples_X, n_samples_Y), and with ``eval_gradient`` the
            gradient of shape (n_samples_X, n_samples_X, n_free_hyperparameters), in the
            order of :attr:`hyperparameters` (``bias_std``, then ``weight_std``).

        Raises:
            ValueError: ``eval_gradient`` with ``Y`` given (scikit-learn's rule).
            InputError: Bad inputs or parameters, or a hyperparameter to fit that is 0
                (it is fitted in log space).
        """
        k = self.kernel()
        if not eval_gradient:
            return k(X, Y, get=self._get)
        if Y is not None:
            raise ValueError("Gradient can only be evaluated when Y is None.")
        free = [hp for hp in self.hyperparameters if not hp.fixed]
        for hp in free:
            if getattr(k, hp.name) <= 0:
                raise InputError(
                    f"{hp.name} must be > 0 to be fitted (scikit-learn fits it in log "
                    f"space), got {getattr(k, hp.name)}; set {hp.name}_bounds='fixed' to keep it"
                )
        K, dK = kernel_gradients(k, X, get=self._get)
        order = ("bias_std", "weight_std")
        cols = [order.index(hp.name) for hp in free]
        # d/d log p = p d/dp
        scale = np.array([k.bias_std, k.weight_std])[cols]
        return K, dK[:, :, cols] * scale

    def diag(self, X: Any) -> np.ndarray:
        """``k(x, x)`` for every row of ``X``, by the diagonal recursion alone (O(N depth)).

        Args:
            X: Inputs, shape (n_samples, n_features).

        Returns:
            The diagonal of ``k(X)``, shape (n_samples,).
        """
        return diagonal(self.kernel(), X, self._get)

    def is_stationary(self) -> bool:
        """False: the kernel depends on the inputs' norms, not only on their difference."""
        return False

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(activation={self.activation!r}, depth={self.depth}, "
            f"bias_std={self.bias_std:.3g}, weight_std={self.weight_std:.3g})"
        )


class NTK(_InfiniteWidthKernel):
    """The neural tangent kernel ``Theta^(L)`` of a fully connected network.

    Args:
        activation: A registered name (``"relu"``, ``"erf"``, ...) or an expression in ``u``.
        depth: Number of affine layers L >= 1.
        bias_std: Bias scale (a hyperparameter).
        weight_std: Weight scale (a hyperparameter).
        bias_std_bounds: Bounds of ``bias_std`` for fitting, or ``"fixed"``.
        weight_std_bounds: Bounds of ``weight_std`` for fitting, or ``"fixed"``.

    Example:
        >>> import numpy as np
        >>> k = NTK("relu", depth=3, bias_std=0.1)
        >>> K, dK = k(np.eye(3), eval_gradient=True)
        >>> dK.shape
        (3, 3, 2)
    """

    _get: ClassVar[KernelName] = "ntk"


class NNGP(_InfiniteWidthKernel):
    """The NNGP kernel ``Sigma^(L)`` (the network's prior covariance); arguments as :class:`NTK`.

    Example:
        >>> import numpy as np
        >>> NNGP("erf", depth=2).diag(np.ones((2, 3))).shape
        (2,)
    """

    _get: ClassVar[KernelName] = "nngp"


def diagonal(kern: Kernel, X: Any, get: str = "ntk") -> np.ndarray:
    """``Sigma^(L)(x, x)`` or ``Theta^(L)(x, x)`` for every row of ``X`` (the diagonal chain).

    Args:
        kern: The kernel.
        X: Inputs, shape (N, d).
        get: ``"nngp"`` or ``"ntk"``.

    Returns:
        Float64 array of shape (N,).

    Raises:
        InputError: Bad inputs, or a value that is not finite (the NTK of step or sign).
    """
    A, _ = validate_inputs(X)
    w2, b2 = kern.weight_std**2, kern.bias_std**2
    var = w2 * np.einsum("ij,ij->i", A, A) / A.shape[1] + b2
    theta = var.copy()
    for _ in range(kern.depth - 1):
        e, ed = dual.evaluate(
            kern.activation, var, var, var, det=np.zeros_like(var), degree=kern.degree
        )
        var = w2 * e + b2
        theta = theta * (w2 * ed) + var
    out = theta if get == "ntk" else var
    if not np.all(np.isfinite(out)):
        raise InputError(
            f"the {get.upper()} of {kern.activation.name!r} (depth {kern.depth}) is not finite "
            "on the diagonal at these inputs"
        )
    return out
