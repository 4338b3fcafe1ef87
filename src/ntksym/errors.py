"""Exceptions raised by ntksym.

Every error ntksym raises derives from :class:`NTKSymError`; the subclasses
also derive from the matching built-in exception so that callers who catch
``ValueError`` or ``TypeError`` keep working.
"""

from __future__ import annotations

__all__ = [
    "NTKSymError",
    "ActivationError",
    "UnsafeExpressionError",
    "InputError",
    "NonFiniteError",
    "IndefiniteCovarianceError",
    "NoClosedFormError",
    "QuadratureError",
    "GeneratedFileError",
    "NotesBuildError",
    "TeXMissingError",
    "MatplotlibMissingError",
]


class NTKSymError(Exception):
    """Base class of every error raised by ntksym."""


class ActivationError(NTKSymError, ValueError):
    """An activation name or expression that ntksym cannot use."""


class UnsafeExpressionError(ActivationError):
    """A user expression that the allow-list parser refuses."""


class InputError(NTKSymError, ValueError):
    """Bad numerical input: shape, dtype, non-finite values, depth or scale."""


class NonFiniteError(InputError):
    """A covariance that is not a finite number, or too large to square (an overflow)."""


class IndefiniteCovarianceError(InputError):
    """A 2x2 covariance whose determinant is negative beyond rounding (not PSD)."""


class NoClosedFormError(NTKSymError, NotImplementedError):
    """No closed-form dual kernel is registered for an activation."""


class QuadratureError(NTKSymError, ArithmeticError):
    """A quadrature whose error estimate is too large for the requested precision."""


class GeneratedFileError(NTKSymError, FileExistsError):
    """A target file was edited by hand (or is not a generated file) and ``force`` is off."""


class NotesBuildError(NTKSymError, RuntimeError):
    """The notes could not be built (LaTeX errors; the message names the log)."""


class TeXMissingError(NotesBuildError):
    """Neither latexmk nor pdflatex is installed."""


class MatplotlibMissingError(NTKSymError, ImportError):
    """matplotlib, needed to draw figures, is not installed (``pip install ntksym[plot]``)."""
