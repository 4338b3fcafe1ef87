"""Where an activation is not smooth: the split points of a kink-aware quadrature.

A Gaussian expectation of a function with a kink (a jump in its value or in one of its
derivatives) converges only algebraically under a rule that steps across the kink; split
there, each piece is smooth up to its ends and a double-exponential rule on it converges
geometrically again. The points are found by the one kink finder of the package,
:func:`ntksym.activations.expr.kinks_of` (nested Max/Min/Abs/Heaviside/sign/Piecewise solved
branch by branch, each candidate kept only where the pieces on its two sides differ); the
rule itself is :mod:`ntksym.dual.kinked_rule`.
"""

from __future__ import annotations

from ntksym.activations import Activation
from ntksym.activations.expr import kinks_of

__all__ = ["kink_points", "is_kinked"]


def kink_points(act: Activation) -> tuple[float, ...]:
    """Real points where sigma or sigma' is not smooth, sorted.

    The kinks of sigma (:attr:`Activation.kinks`) together with those of sigma' (which
    :func:`~ntksym.activations.expr.kinks_of` shows are among them; the union only guards
    against an expression SymPy differentiates into a new switch). ``max(min(u, 1), -1)``
    gives -1 and 1; ``max(abs(u) - 1, 0)`` gives -1 and 1 (not 0, where it is flat).

    Args:
        act: The activation.

    Returns:
        The points, sorted, without repeats.
    """
    return tuple(sorted(set(act.kinks) | set(kinks_of(act.derivative))))


def is_kinked(act: Activation) -> bool:
    """Whether ``act`` has kinks and a pointwise derivative (the kink-aware rule's domain)."""
    return bool(kink_points(act)) and not act.has_distributional_derivative
