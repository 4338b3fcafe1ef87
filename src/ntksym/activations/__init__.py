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

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import mpmath
import numpy as np
import sympy as sp

from ntksym.activations.overflow import exp_safe
from ntksym.errors import ActivationError, UnsafeExpressionError

__all__ = [
    "u",
    "Activation",
    "REGISTRY",
    "get_activation",
    "parse_expression",
    "registered_names",
]

#: The variable every activation is written in.
u = sp.Symbol("u", real=True)

MAX_EXPRESSION_LENGTH = 500
MAX_AST_DEPTH = 40
MAX_AST_NODES = 400
MAX_INTEGER_EXPONENT = 64
MAX_CONSTANT_MAGNITUDE = 1e12


# --------------------------------------------------------------------------- numerics
def _np_erf(x: Any) -> Any:
    """Vectorised ``math.erf`` (NumPy itself has no erf and SciPy is not required)."""
    x = np.asarray(x, dtype=float)
    return np.vectorize(math.erf, otypes=[float])(x) if x.ndim else math.erf(float(x))


def _np_heaviside(x: Any, h0: Any = 0.5) -> Any:
    return np.heaviside(x, h0)


def _no_delta(*_: Any) -> Any:
    raise ActivationError(
        "this derivative contains a Dirac delta (the activation has a jump); it has no "
        "pointwise value: use a closed-form dual kernel instead"
    )


_NUMPY_MODULES: list[Any] = [
    {"erf": _np_erf, "Heaviside": _np_heaviside, "DiracDelta": _no_delta},
    "numpy",
]


def _mp_heaviside(x: Any, h0: Any = 0.5) -> Any:
    return mpmath.mpf(1) if x > 0 else (mpmath.mpf(0) if x < 0 else mpmath.mpf(h0))


def _mp_sign(x: Any) -> Any:
    return mpmath.sign(x)


_MPMATH_MODULES: list[Any] = [
    {
        "Heaviside": _mp_heaviside,
        "sign": _mp_sign,
        "DiracDelta": _no_delta,
        "Max": max,
        "Min": min,
        "Abs": abs,
    },
    "mpmath",
]


# --------------------------------------------------------------------------- the object
@dataclass(frozen=True)
class Activation:
    """A scalar activation function sigma(u).

    Attributes:
        name: Registry name (``"relu"``, ``"leaky_relu(0.1)"``) or the
            normalised text of a user expression.
        expr: The activation as a SymPy expression in :data:`u`.
        description: One line saying what it is.
        params: Parameters that distinguish members of a family, e.g.
            ``(("slope", 0.1),)``; used as part of the identity of the activation.
    """

    name: str
    expr: sp.Expr
    description: str = ""
    params: tuple[tuple[str, Any], ...] = field(default=())

    @cached_property
    def derivative(self) -> sp.Expr:
        """D sigma / du, derived by SymPy (see the module docstring for kinks)."""
        return sp.diff(self.expr, u)

    @cached_property
    def has_distributional_derivative(self) -> bool:
        """True when the derivative contains a Dirac delta (step, sign, ...)."""
        return self.derivative.has(sp.DiracDelta)

    @cached_property
    def kinks(self) -> tuple[float, ...]:
        """Real points where sigma or sigma' is not smooth, sorted.

        Quadrature rules split their domain at these points.
        """
        return _kinks(self.expr)

    @cached_property
    def numpy(self) -> Callable[[Any], Any]:
        """Vectorised NumPy evaluation of sigma (overflow-safe, see ntksym.activations.overflow)."""
        return _lambdify_numpy(exp_safe(self.expr, u))

    @cached_property
    def numpy_derivative(self) -> Callable[[Any], Any]:
        """Vectorised NumPy evaluation of sigma' (refused for distributional derivatives)."""
        if self.has_distributional_derivative:
            raise ActivationError(
                f"the derivative of {self.name!r} is {self.derivative}, which contains a Dirac "
                "delta; it has no pointwise value"
            )
        return _lambdify_numpy(exp_safe(self.derivative, u))

    @cached_property
    def mpmath(self) -> Callable[[Any], Any]:
        """Mpmath evaluation of sigma at an ``mpf``."""
        return sp.lambdify(u, self.expr, modules=_MPMATH_MODULES)

    @cached_property
    def mpmath_derivative(self) -> Callable[[Any], Any]:
        """Mpmath evaluation of sigma' (refused for distributional derivatives)."""
        if self.has_distributional_derivative:
            raise ActivationError(
                f"the derivative of {self.name!r} contains a Dirac delta; it has no pointwise value"
            )
        return sp.lambdify(u, self.derivative, modules=_MPMATH_MODULES)

    @property
    def registered_base(self) -> str | None:
        """The registry family this activation is exactly a member of, else None.

        ``"leaky_relu"`` for ``get_activation("leaky_relu", slope=0.2)``; None for a
        user expression, even one that happens to equal a registered activation.
        """
        base = self.name.split("(", 1)[0]
        if base not in REGISTRY:
            return None
        try:
            ref = REGISTRY[base](**dict(self.params))
        except Exception:  # noqa: BLE001 - a user activation that only shares the name
            return None
        return base if ref.expr == self.expr else None

    def __call__(self, x: Any) -> Any:
        """Evaluate sigma with NumPy."""
        return self.numpy(x)

    def __repr__(self) -> str:
        return f"Activation({self.name!r}, {sp.sstr(self.expr)})"


def _lambdify_numpy(expr: sp.Expr) -> Callable[[Any], Any]:
    f = sp.lambdify(u, expr, modules=_NUMPY_MODULES)

    def wrapped(x: Any) -> Any:
        x = np.asarray(x, dtype=float)
        return np.broadcast_to(np.asarray(f(x), dtype=float), x.shape).copy()

    wrapped.__doc__ = f"NumPy evaluation of {sp.sstr(expr)}."
    return wrapped


def _kinks(expr: sp.Expr) -> tuple[float, ...]:
    """Zeros of the arguments of the non-smooth atoms in ``expr``."""
    candidates: list[sp.Expr] = []
    for atom in expr.atoms(sp.Max, sp.Min):
        args = list(atom.args)
        candidates += [a - b for i, a in enumerate(args) for b in args[i + 1 :]]
    for atom in expr.atoms(sp.Abs, sp.Heaviside, sp.sign, sp.DiracDelta):
        candidates.append(atom.args[0])
    points: set[float] = set()
    for c in candidates:
        if not c.has(u):
            continue
        poly = sp.Poly(c, u) if c.is_polynomial(u) else None
        if poly is None or poly.degree() > 4:
            continue
        for r in sp.real_roots(poly) if poly.domain.is_Exact else poly.nroots():
            if r.is_real:
                points.add(float(r))
    return tuple(sorted(points))


# --------------------------------------------------------------------------- registry
def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ActivationError(f"{name} must be a non-negative integer, got {value!r}")
    if value > MAX_INTEGER_EXPONENT:
        raise ActivationError(f"{name} must be at most {MAX_INTEGER_EXPONENT}, got {value}")
    return int(value)


def _finite_number(name: str, value: Any) -> sp.Expr:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number, sp.Number)):
        raise ActivationError(f"{name} must be a real number, got {value!r}")
    if not math.isfinite(float(value)):
        raise ActivationError(f"{name} must be finite, got {value!r}")
    if isinstance(value, sp.Number):
        return value
    if isinstance(value, (int, np.integer)):
        return sp.Integer(int(value))
    return sp.Rational(float(value)).limit_denominator(10**12)


def _leaky_relu(slope: Any = 0.01) -> Activation:
    a = _finite_number("slope", slope)
    return Activation(
        f"leaky_relu({slope})",
        sp.Max(0, u) + a * sp.Min(0, u),
        "max(0,u) + slope*min(0,u)",
        (("slope", slope),),
    )


def _monomial(k: Any = 1) -> Activation:
    k = _positive_int("k", k)
    return Activation(f"monomial({k})", u**k, "u**k", (("k", k),))


_SIMPLE: dict[str, tuple[sp.Expr, str]] = {
    "identity": (u, "the identity u (a linear network)"),
    "relu": (sp.Max(0, u), "rectified linear unit max(0, u)"),
    "abs": (sp.Abs(u), "absolute value |u|"),
    "step": (sp.Heaviside(u), "Heaviside step (0 for u<0, 1 for u>0)"),
    "sign": (sp.sign(u), "sign function"),
    "erf": (sp.erf(u), "error function"),
    "tanh": (sp.tanh(u), "hyperbolic tangent"),
    "sigmoid": (1 / (1 + sp.exp(-u)), "logistic sigmoid"),
    "softplus": (sp.log(1 + sp.exp(u)), "softplus log(1 + e^u)"),
    "gelu": (u * (1 + sp.erf(u / sp.sqrt(2))) / 2, "Gaussian error linear unit u*Phi(u)"),
    "silu": (u / (1 + sp.exp(-u)), "sigmoid linear unit (swish) u*sigmoid(u)"),
    "sin": (sp.sin(u), "sine"),
    "cos": (sp.cos(u), "cosine"),
    "exp": (sp.exp(u), "exponential"),
    "gaussian": (sp.exp(-(u**2) / 2), "Gaussian bump exp(-u^2/2)"),
}

#: Named activations: name -> factory taking the family's parameters.
REGISTRY: dict[str, Callable[..., Activation]] = {
    name: (lambda name=name, expr=expr, desc=desc: Activation(name, expr, desc))
    for name, (expr, desc) in _SIMPLE.items()
}
REGISTRY["leaky_relu"] = _leaky_relu
REGISTRY["monomial"] = _monomial


def registered_names() -> list[str]:
    """Names of the registered activations, sorted."""
    return sorted(REGISTRY)


def get_activation(spec: str | Activation | sp.Expr, **params: Any) -> Activation:
    """Turn a name, a user expression or a SymPy expression into an :class:`Activation`.

    Args:
        spec: A registered name (``"relu"``, ``"leaky_relu"``), an expression
            string in ``u`` (``"tanh(2*u)"``), a SymPy expression in one
            symbol, or an :class:`Activation` (returned unchanged).
        **params: Parameters of a registered family, e.g. ``slope=0.2`` for
            ``leaky_relu`` or ``k=3`` for ``monomial``.

    Returns:
        The activation.

    Raises:
        ActivationError: Unknown name, bad parameter, or an expression that is
            not a function of one variable.
        UnsafeExpressionError: The expression string contains something the
            allow-list parser refuses.

    Example:
        >>> get_activation("leaky_relu", slope=0.2).expr
        Max(0, u) + Min(0, u)/5
    """
    if isinstance(spec, Activation):
        if params:
            raise ActivationError("parameters can only be given with a registered name")
        return spec
    if isinstance(spec, sp.Expr):
        if params:
            raise ActivationError("parameters can only be given with a registered name")
        return _from_sympy(spec)
    if not isinstance(spec, str):
        raise ActivationError(
            f"an activation is a name, an expression string or a SymPy expression; got "
            f"{type(spec).__name__}"
        )
    key = spec.strip()
    if key in REGISTRY:
        try:
            return REGISTRY[key](**params)
        except TypeError as exc:
            raise ActivationError(f"bad parameters for activation {key!r}: {exc}") from None
    if params:
        raise ActivationError(
            f"unknown activation {key!r}; parameters are only accepted for the registered "
            f"families: {', '.join(registered_names())}"
        )
    expr = parse_expression(key)
    return Activation(sp.sstr(expr), expr, f"user expression {key!r}")


def _from_sympy(expr: sp.Expr) -> Activation:
    free = expr.free_symbols
    if len(free) > 1:
        raise ActivationError(
            f"an activation has one variable; {sp.sstr(expr)} has {sorted(map(str, free))}"
        )
    if free:
        (s,) = free
        expr = expr.subs(s, u)
    return Activation(sp.sstr(expr), expr, "SymPy expression")


# --------------------------------------------------------------------------- safe parser
def _relu(x: sp.Expr) -> sp.Expr:
    return sp.Max(0, x)


_FUNCTIONS: dict[str, tuple[Callable[..., sp.Expr], int | None]] = {
    # name: (builder, number of arguments; None means two or more)
    "max": (sp.Max, None),
    "min": (sp.Min, None),
    "abs": (sp.Abs, 1),
    "exp": (sp.exp, 1),
    "log": (sp.log, 1),
    "sqrt": (sp.sqrt, 1),
    "sin": (sp.sin, 1),
    "cos": (sp.cos, 1),
    "tan": (sp.tan, 1),
    "atan": (sp.atan, 1),
    "arctan": (sp.atan, 1),
    "sinh": (sp.sinh, 1),
    "cosh": (sp.cosh, 1),
    "tanh": (sp.tanh, 1),
    "erf": (sp.erf, 1),
    "erfc": (sp.erfc, 1),
    "sign": (sp.sign, 1),
    "step": (sp.Heaviside, 1),
    "heaviside": (sp.Heaviside, 1),
    "relu": (_relu, 1),
    "sigmoid": (lambda x: 1 / (1 + sp.exp(-x)), 1),
    "softplus": (lambda x: sp.log(1 + sp.exp(x)), 1),
    "gelu": (lambda x: x * (1 + sp.erf(x / sp.sqrt(2))) / 2, 1),
    "silu": (lambda x: x / (1 + sp.exp(-x)), 1),
}
_CONSTANTS: dict[str, sp.Expr] = {"pi": sp.pi, "e": sp.E}
_BINOPS: dict[type, Callable[[sp.Expr, sp.Expr], sp.Expr]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
}


def parse_expression(text: str) -> sp.Expr:
    """Parse an activation written in ``u`` through an allow-list.

    Allowed: numbers, the variable ``u``, the constants ``pi`` and ``e``, the
    operators ``+ - * / **`` and unary ``+ -``, and calls of the functions
    ``max, min, abs, exp, log, sqrt, sin, cos, tan, atan, sinh, cosh, tanh,
    erf, erfc, sign, step, heaviside, relu, sigmoid, softplus, gelu, silu``
    with positional arguments. Everything else (attributes, subscripts,
    names, keywords, lambdas, comprehensions, strings, comparisons, ...) is
    refused. The text is never evaluated: the SymPy expression is built node
    by node from the syntax tree.

    Args:
        text: The expression, at most 500 characters.

    Returns:
        The SymPy expression in :data:`u`.

    Raises:
        UnsafeExpressionError: Naming the offending part and what is allowed.

    Example:
        >>> parse_expression("max(0, u) + 0.1*u")
        0.1*u + Max(0, u)
    """
    if not isinstance(text, str):
        raise UnsafeExpressionError(f"expected a string, got {type(text).__name__}")
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise UnsafeExpressionError(
            f"expression is {len(text)} characters long; at most {MAX_EXPRESSION_LENGTH} allowed"
        )
    if not text.strip():
        raise UnsafeExpressionError("empty expression")
    if "\x00" in text:
        raise UnsafeExpressionError("expression contains a NUL character")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise UnsafeExpressionError(f"not a valid expression: {exc.msg}") from None
    except (RecursionError, MemoryError, ValueError):
        raise UnsafeExpressionError("expression is nested too deeply") from None
    nodes = sum(1 for _ in ast.walk(tree))
    if nodes > MAX_AST_NODES:
        raise UnsafeExpressionError(f"expression has {nodes} syntax nodes; at most {MAX_AST_NODES}")
    _check_depth(tree.body, 0)
    try:
        expr = _build(tree.body)
    except RecursionError:
        raise UnsafeExpressionError("expression is nested too deeply") from None
    if not isinstance(expr, sp.Expr):
        raise UnsafeExpressionError(f"{text!r} is not a scalar expression")
    extra = expr.free_symbols - {u}
    if extra:
        raise UnsafeExpressionError(f"unknown variables {sorted(map(str, extra))}; use u")
    if expr.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
        raise UnsafeExpressionError(f"{text!r} is undefined (division by zero or infinity)")
    return expr


def _check_depth(node: ast.AST, depth: int) -> None:
    if depth > MAX_AST_DEPTH:
        raise UnsafeExpressionError(f"expression is nested deeper than {MAX_AST_DEPTH} levels")
    for child in ast.iter_child_nodes(node):
        _check_depth(child, depth + 1)


def _snippet(node: ast.AST) -> str:
    try:
        return ast.unparse(node)[:60]
    except Exception:  # noqa: BLE001 - only used to name the offending part
        return type(node).__name__


def _build(node: ast.AST) -> sp.Expr:
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UnsafeExpressionError(
                f"constant {value!r} is not allowed: only real numbers may appear"
            )
        if not math.isfinite(value) or abs(value) > MAX_CONSTANT_MAGNITUDE:
            raise UnsafeExpressionError(
                f"number {value!r} is out of range: |x| must be at most {MAX_CONSTANT_MAGNITUDE:g}"
            )
        return sp.Integer(value) if isinstance(value, int) else sp.Float(value)
    if isinstance(node, ast.Name):
        if node.id == "u":
            return u
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        raise UnsafeExpressionError(
            f"unknown name {node.id!r}: the variable is u; constants are pi and e"
        )
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        operand = _build(node.operand)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp):
        left, right = _build(node.left), _build(node.right)
        if isinstance(node.op, ast.Pow):
            return _power(left, right, node)
        op = _BINOPS.get(type(node.op))
        if op is None:
            raise UnsafeExpressionError(
                f"operator {type(node.op).__name__} in {_snippet(node)!r} is not allowed; "
                "allowed: + - * / **"
            )
        return op(left, right)
    if isinstance(node, ast.Call):
        return _call(node)
    raise UnsafeExpressionError(
        f"{type(node).__name__} ({_snippet(node)!r}) is not allowed; allowed are numbers, u, "
        "pi, e, + - * / ** and calls of: " + ", ".join(sorted(_FUNCTIONS))
    )


def _power(base: sp.Expr, exponent: sp.Expr, node: ast.AST) -> sp.Expr:
    if exponent.is_number:
        value = complex(exponent.evalf(20))
        if base.is_number:
            magnitude = abs(complex(base.evalf(20)))
            if magnitude > 1 and abs(value) * math.log10(magnitude) > 300:
                raise UnsafeExpressionError(
                    f"{_snippet(node)!r} is too large a number (over 1e300)"
                )
        if abs(value) > MAX_INTEGER_EXPONENT:
            raise UnsafeExpressionError(
                f"exponent in {_snippet(node)!r} is too large: |exponent| must be at most "
                f"{MAX_INTEGER_EXPONENT}"
            )
    elif base.is_number and abs(complex(base.evalf(20))) > MAX_INTEGER_EXPONENT:
        raise UnsafeExpressionError(
            f"base in {_snippet(node)!r} is too large for a variable exponent (at most "
            f"{MAX_INTEGER_EXPONENT})"
        )
    return sp.Pow(base, exponent)


def _call(node: ast.Call) -> sp.Expr:
    if not isinstance(node.func, ast.Name):
        raise UnsafeExpressionError(
            f"call of {_snippet(node.func)!r} is not allowed: only plain function names, one of "
            + ", ".join(sorted(_FUNCTIONS))
        )
    name = node.func.id
    if name not in _FUNCTIONS:
        raise UnsafeExpressionError(
            f"unknown function {name!r}; allowed: {', '.join(sorted(_FUNCTIONS))}"
        )
    if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
        raise UnsafeExpressionError(f"{name}() takes positional arguments only")
    builder, arity = _FUNCTIONS[name]
    n = len(node.args)
    if (arity is None and n < 2) or (arity is not None and n != arity):
        expected = "two or more" if arity is None else str(arity)
        raise UnsafeExpressionError(f"{name}() takes {expected} argument(s), got {n}")
    return builder(*(_build(a) for a in node.args))
