"""ntksym: the Neural Tangent Kernel derivation, machine-checked and compiled.

See the README for a tour. The public API is re-exported here.
"""

from ntksym.activations import Activation, get_activation, parse_expression, registered_names
from ntksym.errors import (
    ActivationError,
    InputError,
    NoClosedFormError,
    NTKSymError,
    UnsafeExpressionError,
)

__version__ = "0.1.0"

__all__ = [
    "Activation",
    "ActivationError",
    "InputError",
    "NTKSymError",
    "NoClosedFormError",
    "UnsafeExpressionError",
    "__version__",
    "get_activation",
    "parse_expression",
    "registered_names",
]
