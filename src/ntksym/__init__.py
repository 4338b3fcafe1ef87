"""ntksym: the Neural Tangent Kernel derivation, machine-checked and compiled.

See the README for a tour. The public API is re-exported here.
"""

from ntksym.activations import Activation, get_activation, parse_expression, registered_names
from ntksym.empirical import Network, convergence_study, monte_carlo_ntk
from ntksym.errors import (
    ActivationError,
    GeneratedFileError,
    InputError,
    MatplotlibMissingError,
    NoClosedFormError,
    NotesBuildError,
    NTKSymError,
    QuadratureError,
    TeXMissingError,
    UnsafeExpressionError,
)
from ntksym.kernels import Kernel, Kernels, kernel
from ntksym.version import __version__


def __getattr__(name: str) -> object:
    """``ntksym.stax`` on first use (it is not imported with the package)."""
    if name == "stax":
        import importlib

        return importlib.import_module("ntksym.stax")
    raise AttributeError(f"module 'ntksym' has no attribute {name!r}")


__all__ = [
    "Activation",
    "ActivationError",
    "GeneratedFileError",
    "MatplotlibMissingError",
    "NotesBuildError",
    "QuadratureError",
    "TeXMissingError",
    "Kernel",
    "Kernels",
    "Network",
    "InputError",
    "NTKSymError",
    "NoClosedFormError",
    "UnsafeExpressionError",
    "__version__",
    "convergence_study",
    "get_activation",
    "kernel",
    "monte_carlo_ntk",
    "parse_expression",
    "registered_names",
]
