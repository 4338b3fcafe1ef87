"""Generated NNGP/NTK Gram kernels: SymPy -> cse -> jinja2 -> NumPy or Numba module.

``generate`` writes a module, ``render`` returns its text, ``load`` imports it
(from ``generated/`` or the per-user cache).
"""

from ntksym.codegen.files import GeneratedFileError, generate, load, write_generated
from ntksym.codegen.render import BACKENDS, render
from ntksym.codegen.spec import KernelSpec, kernel_spec

__all__ = [
    "BACKENDS",
    "GeneratedFileError",
    "KernelSpec",
    "generate",
    "kernel_spec",
    "load",
    "render",
    "write_generated",
]
