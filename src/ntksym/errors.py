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
    "NoClosedFormError",
]


class NTKSymError(Exception):
    """Base class of every error raised by ntksym."""


class ActivationError(NTKSymError, ValueError):
    """An activation name or expression that ntksym cannot use."""


class UnsafeExpressionError(ActivationError):
    """A user expression that the allow-list parser refuses."""


class InputError(NTKSymError, ValueError):
    """Bad numerical input: shape, dtype, non-finite values, depth or scale."""


class NoClosedFormError(NTKSymError, NotImplementedError):
    """No closed-form dual kernel is registered for an activation."""
