"""The allow-list parser for activations a user types as text.

:func:`parse_expression` walks Python's ``ast`` of the text with an allow-list of names,
functions and operators and builds the SymPy expression itself; no user text ever reaches
``eval``, ``sympify`` or ``parse_expr``. Size limits bound the work before any is done.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable

import sympy as sp

from ntksym.activations.expr import u
from ntksym.errors import UnsafeExpressionError

__all__ = ["parse_expression"]


MAX_EXPRESSION_LENGTH = 500


MAX_AST_DEPTH = 40


MAX_AST_NODES = 400


MAX_INTEGER_EXPONENT = 64


MAX_CONSTANT_MAGNITUDE = 1e12


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
