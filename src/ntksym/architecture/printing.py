r"""A network description as mathematics: its layers' equations and the kernel recursion.

Names follow the seed (``docs/design.md``): the input is :math:`\alpha^{(0)} = x`, the
output of the Dense layer that takes :math:`\alpha^{(j)}` is a pre-activation
:math:`\tilde\alpha^{(k)} = \sigma_w W^{(k-1)} \alpha^{(j)} / \sqrt{n_j} + \sigma_b
b^{(k-1)}`, and every other new value (an activation of :math:`\tilde\alpha^{(k)}`, a
LayerNorm, a Dropout, a residual sum, a concatenation) is an :math:`\alpha^{(k)}`,
numbered in the order the walk meets it. The recursion names the covariance and NTK of
:math:`\tilde\alpha^{(k)}` :math:`\Sigma^{(k)}, \Theta^{(k)}` (the seed's) and those of
:math:`\alpha^{(k)}` :math:`\bar\Sigma^{(k)}, \bar\Theta^{(k)}`.

:func:`network` and :func:`recursion` return :class:`Step` records (what each equation
computes, from which names, with which constants) rather than strings only, so that a
test can evaluate the printed structure on its own; ``.latex()`` and ``.text()`` print
them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sympy as sp

from ntksym.architecture.description import (
    Dense,
    Dropout,
    FanInConcat,
    FanInSum,
    FanOut,
    LayerNorm,
    Net,
    Nonlinearity,
    Parallel,
    as_description,
)
from ntksym.architecture.leaves import no_op, sequence
from ntksym.architecture.walk import check
from ntksym.errors import InputError

__all__ = ["Step", "Printout", "network", "recursion", "latex", "text"]

THIN = r"\,"

#: Kinds of :class:`Step`.
KINDS = ("input", "dense", "activation", "layer_norm", "dropout", "sum", "concat")


@dataclass(frozen=True)
class Step:
    r"""One equation: a value (an index and whether it is a Dense output) from ``sources``.

    Attributes:
        kind: One of :data:`KINDS`.
        index: ``k`` of the value defined.
        tilde: Whether the value is a Dense output :math:`\tilde\alpha^{(k)}`.
        sources: ``(index, tilde)`` of the values it is computed from.
        layer: The layer record (None for the input, the sum and the concatenation).
        n_in: The width of the source (Dense only).
        widths: The sources' widths (concatenation only; 0 for inputs of unknown width).
    """

    kind: str
    index: int
    tilde: bool
    sources: tuple[tuple[int, bool], ...] = ()
    layer: Dense | Nonlinearity | LayerNorm | Dropout | None = None
    n_in: int = 0
    widths: tuple[int, ...] = ()


def _walk(net: Net, node: Any, steps: list[Step], counter: list[int]) -> Any:
    """The node (``(index, tilde, width)`` or a list) after ``net``; appends the steps."""
    inner = sequence(net)
    if inner is not None:
        for layer in inner:
            node = _walk(layer, node, steps, counter)
        return node
    if no_op(net):
        return node
    if isinstance(net, FanOut):
        return [node] * net.n
    if isinstance(net, Parallel):
        assert isinstance(node, list)
        return [_walk(b, x, steps, counter) for b, x in zip(net.branches, node, strict=True)]
    if isinstance(net, FanInSum):
        assert isinstance(node, list)
        if len(node) == 1:
            return node[0]
        counter[0] += 1
        sources = tuple((i, t) for i, t, _ in node)
        steps.append(Step("sum", counter[0], False, sources))
        return counter[0], False, node[0][2]
    if isinstance(net, FanInConcat):
        assert isinstance(node, list)
        if all(x == node[0] for x in node):  # copies of one value: the same kernel
            return node[0][0], node[0][1], node[0][2] * len(node)
        counter[0] += 1
        sources = tuple((i, t) for i, t, _ in node)
        widths = tuple(w for _, _, w in node)
        steps.append(Step("concat", counter[0], False, sources, widths=widths))
        return counter[0], False, sum(widths)
    index, tilde, width = node
    if isinstance(net, Dense):
        counter[0] += 1
        steps.append(Step("dense", counter[0], True, ((index, tilde),), net, width))
        return counter[0], True, net.width
    assert isinstance(net, Nonlinearity | LayerNorm | Dropout)  # (the rest: sequence, no_op)
    kind = {Nonlinearity: "activation", LayerNorm: "layer_norm", Dropout: "dropout"}[type(net)]
    # an activation of a fresh pre-activation keeps its index: alpha^(k) = phi(alpha~^(k))
    if not (kind == "activation" and tilde and not _used(steps, index)):
        counter[0] += 1
    steps.append(Step(kind, counter[0], False, ((index, tilde),), net))
    return counter[0], False, width


def _used(steps: list[Step], index: int) -> bool:
    return any(s.index == index and not s.tilde for s in steps)


def network(net: Net | Any, n_inputs: int | None = None) -> list[Step]:
    r"""The steps of ``net`` in order, the first defining the input :math:`\alpha^{(0)}`.

    Args:
        net: A description with one output (checked as every evaluator checks it), or a
            ``ntksym.stax`` layer or triple holding one.
        n_inputs: The input dimension, printed as a number if given (else ``n_0``).

    Raises:
        InputError: A network that is not well formed, or that ends in several branches.
    """
    found = as_description(net)
    if found is None:
        raise InputError(f"not a network description or a ntksym.stax layer: {net!r}")
    net = found
    outputs = check(net, n_inputs or 1)
    if outputs != 1:
        raise InputError(f"a printed network needs one output; this one ends in {outputs}")
    steps = [Step("input", 0, False, (), None, n_inputs or 0)]
    _walk(net, (0, False, n_inputs or 0), steps, [0])
    return steps


# --------------------------------------------------------------------------- names
def _num(x: float, tex: bool = True) -> str:
    """A number as it was given: ``2``, ``1.1``, ``10^{-12}`` / ``1e-12``."""
    if x == int(x) and abs(x) < 1e15:
        return str(int(x))
    r = repr(float(x))
    if "e" not in r or not tex:
        return r
    mantissa, exponent = r.split("e")
    power = f"10^{{{int(exponent)}}}"
    return power if mantissa in ("1", "1.0") else rf"{mantissa} \cdot {power}"


def _sq(x: float, tex: bool) -> str:
    """``x^2`` as printed (``1.1^{2}``), keeping the standard deviation visible."""
    return f"{_num(x, tex)}^{{2}}" if tex else f"{_num(x, tex)}^2"


def _name(source: tuple[int, bool], what: str = "alpha", tex: bool = True) -> str:
    index, tilde = source
    if not tex:
        return f"{what}{'~' if tilde else ''}[{index}]"
    base = {"alpha": r"\alpha", "Sigma": r"\Sigma", "Theta": r"\Theta"}[what]
    if what == "alpha":
        base = r"\tilde{\alpha}" if tilde else base
    elif not tilde:
        base = rf"\bar{{{base}}}"
    return f"{base}^{{({index})}}"


def _kernel_name(source: tuple[int, bool], what: str, tex: bool) -> str:
    if tex:
        return _name(source, what, True)
    return f"{what}{'' if source[1] else 'bar'}[{source[0]}]"


def _width(step: Step, tex: bool) -> str:
    ((index, _),) = step.sources
    if step.n_in:
        return str(step.n_in)
    return f"n_{{{index}}}" if tex else f"n{index}"


def _phi(layer: Nonlinearity, tex: bool) -> str:
    expr = layer.activation.expr
    return sp.latex(expr) if tex else sp.sstr(expr)


# --------------------------------------------------------------------------- equations
def _layer_eq(step: Step, tex: bool) -> str:  # noqa: C901 - one branch per layer type
    me = _name((step.index, step.tilde), "alpha", tex)
    if step.kind == "input":
        return f"{me} = x" + (r" \in \mathbb{R}^{" + _width_in(step, tex) + "}" if tex else "")
    src = [_name(s, "alpha", tex) for s in step.sources]
    layer = step.layer
    if step.kind == "sum":
        return f"{me} = " + " + ".join(src)
    if step.kind == "concat":
        if tex:
            return rf"{me} = \begin{{pmatrix}} " + r" \\ ".join(src) + r" \end{pmatrix}"
        return f"{me} = concat({', '.join(src)})"
    if isinstance(layer, Dense):
        return _dense_eq(step, layer, me, src[0], tex)
    if isinstance(layer, Nonlinearity):
        arg = src[0]
        phi = _phi(layer, tex)
        return (
            rf"{me} = \phi_{{{step.index}}}({arg}),\quad \phi_{{{step.index}}}(u) = {phi}"
            if tex
            else f"{me} = phi{step.index}({arg}), phi{step.index}(u) = {phi}"
        )
    if isinstance(layer, LayerNorm):
        a, eps = src[0], _num(layer.eps, tex)
        if tex:
            return (
                rf"{me} = \frac{{{a} - \operatorname{{mean}}({a})}}"
                rf"{{\sqrt{{\operatorname{{var}}({a}) + {eps}}}}}"
            )
        return f"{me} = ({a} - mean({a})) / sqrt(var({a}) + {layer.eps!r})"
    assert isinstance(layer, Dropout)
    r = _num(layer.rate, tex)
    if tex:
        return (
            rf"{me} = \frac{{m^{{({step.index})}} \odot {src[0]}}}{{{r}}},\quad "
            rf"m^{{({step.index})}}_i \sim \mathrm{{Bernoulli}}({r})"
        )
    return f"{me} = m[{step.index}] * {src[0]} / {layer.rate!r}, m_i ~ Bernoulli({layer.rate!r})"


def _dense_eq(step: Step, layer: Dense, me: str, src: str, tex: bool) -> str:
    """The NTK parameterization as the seed writes it; the standard one with its laws."""
    n, w, k = _width(step, tex), layer.w_std, step.index - 1
    W, b = (f"W^{{({k})}}", f"b^{{({k})}}") if tex else (f"W[{k}]", f"b[{k}]")
    if layer.parameterization == "ntk":
        bias = "" if layer.b_std is None else f" + {_coef(layer.b_std, tex)}{b}"
        frac = rf"\frac{{{_num(w)}}}{{\sqrt{{{n}}}}}" if tex else f"{_num(w, tex)}/sqrt({n}) "
        return f"{me} = {frac}{W} {src}{bias}"
    s_in = layer.s[0]
    root = rf"\frac{{1}}{{\sqrt{{{s_in}}}}}" if tex else f"1/sqrt({s_in}) "
    bias = "" if layer.b_std is None else f" + {b}"
    var = (" " if tex else " * ").join(
        ([] if w == 1.0 else [_sq(w, tex)]) + ([] if s_in == 1 else [str(s_in)])
    ) or "1"
    if tex:
        law = rf"W^{{({k})}}_{{ij}} \sim \mathcal{{N}}\!\left(0, \frac{{{var}}}{{{n}}}\right)"
        if layer.b_std is not None:
            law += rf",\ b^{{({k})}}_i \sim \mathcal{{N}}\!\left(0, {_sq(layer.b_std, tex)}\right)"
        return rf"{me} = {'' if s_in == 1 else root}{W} {src}{bias},\quad {law}"
    law = f"W[{k}]_ij ~ N(0, {var}/{n})"
    if layer.b_std is not None:
        law += f", b[{k}]_i ~ N(0, {_sq(layer.b_std, tex)})"
    return f"{me} = {'' if s_in == 1 else root}{W} {src}{bias}, {law}"


def _width_in(step: Step, tex: bool) -> str:
    return str(step.n_in) if step.n_in else ("n_{0}" if tex else "n0")


def _coef(x: float, tex: bool) -> str:
    if x == 1.0:
        return ""
    return _num(x, tex) + r"\," if tex else f"{_num(x, tex)} "


def _dense_kernel(step: Step, me: tuple[int, bool], tex: bool) -> Iterator[str]:
    layer = step.layer
    assert isinstance(layer, Dense)
    (src,) = step.sources
    S, T = _kernel_name(me, "Sigma", tex), _kernel_name(me, "Theta", tex)
    Sin, Tin = _kernel_name(src, "Sigma", tex), _kernel_name(src, "Theta", tex)
    b2 = layer.b2
    w = "" if layer.w_std == 1.0 else _sq(layer.w_std, tex) + (THIN if tex else " ")
    bias = "" if b2 == 0 else f" + {_sq(layer.b_std or 0.0, tex)}"
    yield f"{S} = {w}{Sin}{bias}"
    if layer.parameterization == "ntk":
        yield f"{T} = {w}{Tin} + {S}"
        return
    n = _width(step, tex)
    n_eff = (
        n
        if layer.s[0] == 1
        else (rf"\frac{{{n}}}{{{layer.s[0]}}}" if tex else f"({n}/{layer.s[0]})")
    )
    one = "" if layer.b_std is None else " + 1"
    gap = THIN if tex else " "
    yield f"{T} = {w}{Tin} + {n_eff}{gap}{Sin}{one}"


def _concat_kernel(
    step: Step, S: str, T: str, ins: list[tuple[str, str]], tex: bool
) -> Iterator[str]:
    """The width-weighted mean of the branches' kernels (plain mean for equal widths)."""
    ws = [str(w) if w else ("n_{0}" if tex else "n0") for w in step.widths]
    equal = len(set(ws)) == 1
    total = str(len(ws)) if equal else (str(sum(step.widths)) if all(step.widths) else None)
    total = total or " + ".join(ws)
    for Q, names in ((S, [s for s, _ in ins]), (T, [t for _, t in ins])):
        if equal:
            terms = " + ".join(names)
        else:
            sep = THIN if tex else " "
            terms = " + ".join(f"{w}{sep}{n}" for w, n in zip(ws, names, strict=True))
        yield rf"{Q} = \frac{{{terms}}}{{{total}}}" if tex else f"{Q} = ({terms}) / {total}"


def _kernel_eqs(step: Step, tex: bool) -> Iterator[str]:
    me = (step.index, step.tilde)
    S, T = _kernel_name(me, "Sigma", tex), _kernel_name(me, "Theta", tex)
    xx = ("(x, x')", "(x, x)", "(x', x')")
    if step.kind == "input":
        yield (
            rf"{S}(x, x') = \frac{{x \cdot x'}}{{{_width_in(step, tex)}}}"
            if tex
            else f"{S}(x, x') = x . x' / {_width_in(step, tex)}"
        )
        yield f"{T} = 0"
        return
    if step.kind == "dense":
        yield from _dense_kernel(step, me, tex)
        return
    ins = [(_kernel_name(s, "Sigma", tex), _kernel_name(s, "Theta", tex)) for s in step.sources]
    if step.kind == "sum":
        yield f"{S} = " + " + ".join(s for s, _ in ins)
        yield f"{T} = " + " + ".join(t for _, t in ins)
        return
    if step.kind == "concat":
        yield from _concat_kernel(step, S, T, ins, tex)
        return
    (Sin, Tin), layer = ins[0], step.layer
    k = step.index
    if isinstance(layer, Nonlinearity):
        dot = rf"\dot{{\Sigma}}^{{({k})}}" if tex else f"Sigmadot[{k}]"
        if tex:
            law = rf"(u, v) \sim \mathcal{{N}}\!\left(0, {Sin}\right)"
            yield rf"{S} = \mathbb{{E}}[\phi_{{{k}}}(u)\,\phi_{{{k}}}(v)],\quad {law}"
            yield rf"{dot} = \mathbb{{E}}[\phi_{{{k}}}'(u)\,\phi_{{{k}}}'(v)]"
        else:
            yield f"{S} = E[phi{k}(u) phi{k}(v)], (u, v) ~ N(0, {Sin})"
            yield f"{dot} = E[phi{k}'(u) phi{k}'(v)]"
        gap = THIN if tex else " "
        yield f"{T} = 0" if layer.zero_ntk else f"{T} = {Tin}{gap}{dot}"
        return
    if isinstance(layer, LayerNorm):
        eps = _num(layer.eps, tex)
        for Q, Qin in ((S, Sin), (T, Tin)):
            if tex:
                den = rf"\sqrt{{({eps} + {Sin}{xx[1]})({eps} + {Sin}{xx[2]})}}"
                yield rf"{Q}{xx[0]} = \frac{{{Qin}{xx[0]}}}{{{den}}}"
            else:
                den = f"sqrt(({eps} + {Sin}{xx[1]}) ({eps} + {Sin}{xx[2]}))"
                yield f"{Q}{xx[0]} = {Qin}{xx[0]} / {den}"
        return
    assert isinstance(layer, Dropout)
    r = _num(layer.rate, tex) if tex else repr(layer.rate)
    for Q, Qin in ((S, Sin), (T, Tin)):
        if tex:
            yield (
                rf"{Q}{xx[0]} = {Qin}{xx[0]} \left(1 + \left(\frac{{1}}{{{r}}} - 1\right)"
                r"\delta_{x x'}\right)"
            )
        else:
            yield f"{Q}{xx[0]} = {Qin}{xx[0]} (1 + (1/{r} - 1) delta(x, x'))"


@dataclass(frozen=True)
class Printout:
    """Equations of a network or of its recursion, printable as LaTeX or plain text."""

    steps: tuple[Step, ...]
    kernels: bool

    def lines(self, tex: bool) -> list[str]:
        """One equation per line."""
        out: list[str] = []
        for step in self.steps:
            out += list(_kernel_eqs(step, tex)) if self.kernels else [_layer_eq(step, tex)]
        last = (self.steps[-1].index, self.steps[-1].tilde)
        if self.kernels:
            nngp, ntk = (_kernel_name(last, w, tex) for w in ("Sigma", "Theta"))
            out.append(
                rf"K_{{\mathrm{{NNGP}}}} = {nngp},\quad K_{{\mathrm{{NTK}}}} = {ntk}"
                if tex
                else f"NNGP = {nngp}, NTK = {ntk}"
            )
        else:
            out.append(f"f(x) = {_name(last, 'alpha', tex)}")
        return out

    def latex(self) -> str:
        """An ``align*`` environment (needs amsmath), one equation per line."""
        body = " \\\\\n".join("  " + line.replace(" = ", " &= ", 1) for line in self.lines(True))
        return "\\begin{align*}\n" + body + "\n\\end{align*}"

    def text(self) -> str:
        """Plain text, one equation per line."""
        return "\n".join(self.lines(False))

    def __str__(self) -> str:
        return self.text()


def latex(net: Net | Any, n_inputs: int | None = None) -> Printout:
    """The network's layers as equations (``.latex()``, ``.text()``)."""
    return Printout(tuple(network(net, n_inputs)), kernels=False)


def text(net: Net | Any, n_inputs: int | None = None) -> str:
    """The network's layers as plain-text equations."""
    return latex(net, n_inputs).text()


def recursion(net: Net | Any, n_inputs: int | None = None) -> Printout:
    r"""The NNGP/NTK recursion the network implies (``.latex()``, ``.text()``).

    :math:`\dot\Sigma` here is the activation's own :math:`E[\phi'\phi']`; the seed's
    :math:`\dot\Sigma^{(l+1)}` is :math:`\sigma_w^2` times it (its Dense scale folded in).
    """
    return Printout(tuple(network(net, n_inputs)), kernels=True)
