"""Activations as SymPy expressions, a registry of named ones and a safe parser.

An activation is a SymPy expression in the single real variable :data:`u`.
Its derivative is obtained by SymPy; at the points where the activation is
not differentiable (the *kinks*, e.g. ``u = 0`` for ReLU) SymPy's conventions
apply: ``d/du Max(0, u) = Heaviside(u)`` with ``Heaviside(0) = 1/2`` (the mean
of the one-sided derivatives) and ``d/du Abs(u) = sign(u)`` with
``sign(0) = 0``. These points have probability zero under every Gaussian
used in the kernels, so the choice does not change any expectation; it only
matters for a finite network whose pre-activation is exactly zero. Step and
sign have a distributional derivative (a Dirac delta); such activations have
closed-form dual kernels but no pointwise derivative to evaluate numerically.

User expressions (``"max(0, u) + 0.1*u"``, ``"tanh(2*u)"``) go through
:func:`parse_expression`, which walks Python's ``ast`` with an allow-list and
builds the SymPy expression itself. No user text ever reaches ``eval``,
``sympify`` or ``parse_expr``.
"""

from ntksym.activations.expr import u
from ntksym.activations.parser import parse_expression
from ntksym.activations.registry import REGISTRY, Activation, get_activation, registered_names

__all__ = [
    "u",
    "Activation",
    "REGISTRY",
    "get_activation",
    "parse_expression",
    "registered_names",
]
