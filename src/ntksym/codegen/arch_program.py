"""A described network lowered to a straight-line program of layer maps on numbered states.

The fused kernel of a network (:mod:`ntksym.codegen.architecture`) carries, for one pair
of inputs, a few numbers per *state* (the values of one branch after one layer): the
covariance ``S12``, its determinant ``D`` when it is carried accurately, and the NTK.
The two variances of a state depend on one input each and are computed once per input
(``_diag_rows``). :func:`lower` walks a description
(:mod:`ntksym.architecture.description`) with :class:`ntksym.architecture.walk.Walker`
(the recursion and the structural rules are written there once) and records one
:class:`Step` per state, in evaluation order.

``Dropout(rate)`` in ``"train"`` mode is a step of its own (``"dropout"``): both variances
divided by ``rate``, and the covariance and NTK of an input paired with itself (the pair
of one example with itself in ``K(X, X)``: one mask) too; other pairs keep theirs
(neural-tangents' ``stax.Dropout``; :mod:`ntksym.kernels.layer_maps`). Its determinant is
``S11 S22 / rate^2 - S12^2 = D / rate^2 + S12^2 (1 / rate^2 - 1)``, a sum of two
non-negative terms; for the pair of one example with itself it is ``D / rate^2`` (zero).

A smooth activation without a closed-form dual map (a spec of kind ``"quadrature"``) is a
step of its own (``"quad"``): its maps come from Mehler's series per pair
(:mod:`ntksym.codegen.arch_quad`), the entries its bound does not certify are left to the
layer maps, and the determinant after it is not carried.

Networks the fused kernel does not cover are refused with a reason (:class:`Unsupported`):
a kinked activation without a closed form (the layer maps' kink-aware rules), a network
that ends in several branches or in its inputs, and every network that breaks one of the
description's rules (the layer path then raises the error that names the rule).

``FanInConcat`` needs no step kind of its own: the width-weighted mean ``sum_i c_i K_i``
of the branches is one scale step per branch (a ``"dense"`` step in the standard form
with ``n_in = 0``, no bias and ``b2 = 0``: covariance and NTK times ``c_i``, determinant
times ``c_i^2``, as the layer path's blocks) followed by the sums. A concatenation that
includes the network inputs themselves is refused (the inputs have no state; the layer
path covers it).

The determinant is carried from the inputs at each first Dense layer, through Dense
layers, LayerNorm, Dropout and sums, and through the activations whose family's next determinant
is checked for near-parallel pairs (:data:`STABLE_DET_FAMILIES`): the map's ``carried``
form where it has one (erf, the mgf family, GELU, polynomials and the piecewise-linear
family, as on the layer path, :mod:`ntksym.kernels.layer_maps`), else its ``det``, given
an accurate determinant at its input. After any other activation (a sum of families, as
``sin(u) + u``, or a ``"quad"`` step), and after a trusted one that was given a
determinant formed by subtraction, it is formed by subtraction where it is next needed; that
costs a kinked activation (the families of ``stable.DET_FAMILIES``, whose maps read the
angle ``atan2(sqrt(D), S12)``) an absolute error of about ``eps / theta`` in the angle
(3e-9 relative in the NTK of a pair 1e-8 apart). Such a step is *guarded*
(:attr:`Step.guard`): the kernel marks the pairs whose determinant by subtraction is below
``NEAR`` (:data:`ntksym.dual.residual.NEAR`) of ``S11 S22`` as not a number, which every
later map passes on, and the caller computes those pairs again by the layer maps, which
carry the determinant there (:func:`ntksym.dual.residual.next_det`;
:func:`ntksym.kernels.architecture.compute`). Above that bound the subtraction's error in
the angle is below about 2e-14, as on the layer path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import sympy as sp

from ntksym.activations import Activation
from ntksym.architecture.description import Dense, Dropout, LayerNorm, Net, Nonlinearity
from ntksym.architecture.walk import Meta, Walker, concat_weights
from ntksym.codegen.mend import keeps_twins
from ntksym.codegen.spec import RHO, KernelSpec, kernel_spec
from ntksym.dual import stable
from ntksym.dual.families import base_family_name
from ntksym.dual.kinks import is_kinked
from ntksym.errors import InputError, NTKSymError

__all__ = ["STABLE_DET_FAMILIES", "Program", "Step", "Unsupported", "lower", "reads_clipped_angle"]

#: Families whose stable layer map carries the determinant accurately for near-parallel
#: pairs (one list, in ``ntksym.dual.stable``, shared with ``ntksym.kernels.layer_maps``:
#: the piecewise-linear, jump and rectified families, erf, the mgf family and GELU). The
#: fused kernel prints their
#: :attr:`KernelSpec.next_det <ntksym.codegen.spec.KernelSpec.next_det>`.
STABLE_DET_FAMILIES = stable.CARRIED_DET_FAMILIES


class Unsupported(NTKSymError):
    """The fused kernel does not cover this network (the message says why)."""


@dataclass(frozen=True)
class Step:
    """One layer map, producing state number ``out`` from the states ``src``.

    Attributes:
        kind: ``"input_dense"`` (a Dense layer on the inputs), ``"dense"``, ``"act"``,
            ``"layer_norm"``, ``"sum"`` (two independent branches), ``"dropout"``
            (``Dropout`` in ``"train"`` mode) or ``"quad"`` (an activation without a
            closed form).
        out: The state it produces (states are numbered in evaluation order).
        src: The states it reads (none for ``"input_dense"``).
        w2: Weight variance ``W_std^2`` (Dense); the factor ``1 / rate`` (Dropout).
        b2: Bias variance ``b_std^2`` (Dense; 0 without a bias).
        bias: Whether the Dense layer has a bias (the standard NTK adds 1).
        standard: Whether the Dense layer is in the standard parameterization.
        width: Its input width over ``s_in`` (the standard NTK's ``n_in``); None on the
            inputs, whose width is known when the kernel is called.
        s_in: The width multiplier ``s_in`` of the standard parameterization (1 without).
        act: Index of the activation in :attr:`Program.specs` (``"act"``) or in
            :attr:`Program.quads` (``"quad"``).
        zero_ntk: The activation passes no gradient (``Sign``): the NTK restarts at 0.
        eps: LayerNorm's ``eps``.
        guard: A kinked activation, or one that reads ``D`` at huge variances
            (:func:`~ntksym.codegen.mend.keeps_twins`), reading a determinant that is not
            carried: its nearly parallel pairs are left to the layer maps (see the module).
    """

    kind: str
    out: int
    src: tuple[int, ...] = ()
    w2: float = 0.0
    b2: float = 0.0
    bias: bool = False
    standard: bool = False
    width: float | None = None
    s_in: int = 1
    act: int = -1
    zero_ntk: bool = False
    eps: float = 0.0
    guard: bool = False


@dataclass(frozen=True)
class Program:
    """A network as a list of steps.

    Attributes:
        steps: One per state, in evaluation order (``steps[k].out == k``).
        specs: The kernel specs of the distinct activations (closed-form maps), each with
            ``det`` the next determinant the kernel prints: the spec's ``next_det`` where
            it is trusted, None elsewhere.
        trusted: Per activation, whether its map's determinant is used (see the module).
        det_known: Per state, whether its determinant is carried.
        output: The state the network outputs.
        quads: The kernel specs of the distinct activations without a closed form.
    """

    steps: tuple[Step, ...]
    specs: tuple[KernelSpec, ...]
    trusted: tuple[bool, ...]
    det_known: tuple[bool, ...]
    output: int
    quads: tuple[KernelSpec, ...] = ()


def _trusted(spec: KernelSpec) -> bool:
    """Whether the activation's stable map carries an accurate determinant."""
    act = spec.activation
    if spec.kind != "stable" or spec.next_det is None:
        return False
    return base_family_name(act) in STABLE_DET_FAMILIES


def reads_clipped_angle(spec: KernelSpec) -> bool:
    """Whether a SymPy closed form (``kind == "closed"``) reads the angle at a cost of sqrt(eps).

    That is ``acos(rho)``, ``asin(rho)``, or a square root whose argument vanishes at
    ``rho = 1`` or ``-1`` (``sqrt(S11 S22 (1 - rho^2))``), with ``rho`` clipped.

    A pair of one input twice has ``rho`` one rounding from 1, so ``acos(rho)`` is about
    1.5e-8 there (``relu(u) + 0.1 erf(u)``: its NTK 1.9e-9 off at depth 2, 2.6e-5 at
    depth 10, session 28). Sums whose cross terms keep away from those points
    (``erf(u) + u``) read ``rho`` harmlessly.
    """
    if spec.kind != "closed":
        return False
    for expr in (spec.nngp, spec.ntk):
        if expr is None:
            continue
        if any(f.args[0].free_symbols == {RHO} for f in expr.atoms(sp.acos, sp.asin)):
            return True
        for p in expr.atoms(sp.Pow):
            if abs(p.exp) == sp.S.Half and RHO in p.base.free_symbols:
                if any(sp.simplify(p.base.subs(RHO, r)) == 0 for r in (1, -1)):
                    return True
    return False


def _reads_the_angle(act: Activation) -> bool:
    """Whether ``act``'s maps read the angle (its family is one of ``stable.DET_FAMILIES``)."""
    return base_family_name(act) in stable.DET_FAMILIES


class _Lowering:
    """The :class:`~ntksym.architecture.walk.Ops` whose payload is a state number.

    The walk (:class:`~ntksym.architecture.walk.Walker`) does the recursion and checks the
    description's rules; each method here records the step of one layer. The payload of
    the inputs is None (their width is known only when the kernel is called).
    """

    def __init__(self) -> None:
        self.steps: list[Step] = []
        self.det: list[bool] = []
        self.acts: list[Activation] = []
        self.specs: list[KernelSpec] = []
        self.trusted: list[bool] = []
        self.quads: list[KernelSpec] = []

    def add(self, step: Step, det_known: bool) -> int:
        self.steps.append(step)
        self.det.append(det_known)
        return step.out

    def activation(self, act: Activation, spec: KernelSpec) -> int:
        if act in self.acts:
            return self.acts.index(act)
        trusted = _trusted(spec)
        self.acts.append(act)
        # the determinant printed: the carried one where trusted, else none (an untrusted
        # one would be unused, and long forms take most of the generation time)
        self.specs.append(replace(spec, det=spec.next_det if trusted else None))
        self.trusted.append(trusted)
        return len(self.acts) - 1

    def dense(self, p: int | None, meta: Meta, layer: Dense) -> int:
        k = len(self.steps)
        # neural-tangents' width multipliers (s_in, s_out) of the standard
        # parameterization: the NTK counts the input width as n_in / s_in
        s_in = layer.s[0]
        common = {
            "w2": layer.w_std**2,
            "b2": layer.b2,
            "bias": layer.b_std is not None,
            "standard": layer.parameterization == "standard",
            "width": None if p is None else meta.width / s_in,
            "s_in": s_in,
        }
        if p is None:
            return self.add(Step("input_dense", k, **common), True)
        return self.add(Step("dense", k, (p,), **common), self.det[p])

    def quadrature(self, p: int, layer: Nonlinearity, spec: KernelSpec) -> int:
        """An activation without a closed form: a ``"quad"`` step (see the module)."""
        if is_kinked(layer.activation):
            raise Unsupported(f"{layer.activation.name} is kinked and has no closed-form dual map")
        if spec not in self.quads:
            self.quads.append(spec)
        step = Step("quad", len(self.steps), (p,), act=self.quads.index(spec))
        return self.add(replace(step, zero_ntk=layer.zero_ntk), False)

    def nonlinearity(self, p: int | None, layer: Nonlinearity) -> int:
        assert p is not None  # (the walk lets activations follow Dense layers only)
        act = layer.activation
        try:
            spec = kernel_spec(act)
        except NTKSymError as exc:
            raise Unsupported(f"no generated layer map for {act.name}: {exc}") from None
        if not (layer.zero_ntk or spec.has_ntk):
            raise Unsupported(f"no generated NTK map for {layer}")
        if spec.kind == "quadrature":
            return self.quadrature(p, layer, spec)
        if reads_clipped_angle(spec):
            raise Unsupported(
                f"{act.name}'s layer map reads the angle through the clipped correlation "
                "(acos(rho), sqrt(1 - rho^2)), which loses sqrt(eps) near |rho| = 1; the "
                "layer maps carry the determinant there"
            )
        m = self.activation(act, spec)
        k = len(self.steps)
        guard = not self.det[p] and (_reads_the_angle(act) or keeps_twins(spec))
        step = Step("act", k, (p,), act=m, zero_ntk=layer.zero_ntk, guard=guard)
        # a trusted map carries the determinant it is given: one formed by subtraction
        # (after a "quad" step or an untrusted map) stays as inaccurate after it
        return self.add(step, self.trusted[m] and self.det[p])

    def layer_norm(self, p: int | None, layer: LayerNorm) -> int:
        assert p is not None  # (the walk lets LayerNorm follow Dense layers only)
        return self.add(Step("layer_norm", len(self.steps), (p,), eps=layer.eps), self.det[p])

    def fan_in_sum(self, ps: Sequence[int | None]) -> int | None:
        state = ps[0]
        for other in ps[1:]:
            assert state is not None and other is not None  # (Gaussian branches only)
            k = len(self.steps)
            self.add(Step("sum", k, (state, other)), self.det[state] and self.det[other])
            state = k
        return state

    def fan_in_concat(self, ps: Sequence[int | None], widths: Sequence[int]) -> int | None:
        """Each branch scaled by ``c_i = n_i / sum n_j``, then summed (see the module)."""
        if any(p is None for p in ps):
            raise Unsupported("FanInConcat of the network inputs with other branches")
        scaled = []
        for p, c in zip(ps, concat_weights(widths), strict=True):
            assert p is not None
            k = len(self.steps)
            # a scale step: the standard Dense kind with n_in = 0 and no bias or b2 leaves
            # S12 -> c S12, D -> c^2 D, Theta -> c Theta (and the variances times c)
            step = Step("dense", k, (p,), w2=c, standard=True, width=0.0)
            scaled.append(self.add(step, self.det[p]))
        return self.fan_in_sum(scaled)

    def dropout(self, p: int | None, layer: Dropout) -> int:
        assert p is not None  # (the walk refuses a Dropout on the inputs)
        # the factor as the layer path forms it (kernels.layer_maps), so the variances agree
        step = Step("dropout", len(self.steps), (p,), w2=1.0 / layer.rate)
        return self.add(step, self.det[p])


def lower(net: Net) -> Program:
    """The program of ``net``.

    Args:
        net: A network description.

    Returns:
        Its :class:`Program`.

    Raises:
        Unsupported: The fused kernel does not cover the network (the reason is given).
    """
    lowering = _Lowering()
    try:
        # inputs of width 1: the width of the inputs enters no step (it is n0f at run time)
        node = Walker(lowering).run(net, (None, Meta(1)))
    except InputError as exc:  # a broken rule: the layer path raises it with its message
        raise Unsupported(str(exc)) from None
    if isinstance(node, list):
        raise Unsupported(f"the network ends in {len(node)} branches")
    state, _ = node
    if state is None:
        raise Unsupported("the network has no Dense layer")
    return _prune(lowering, state)


def _read_by_an_activation(steps: Sequence[Step]) -> list[bool]:
    """Per state, whether an activation step reads its determinant.

    Directly, or after Dense layers, LayerNorm and sums, which carry it.
    """
    needed = [False] * len(steps)
    for step in reversed(steps):
        if step.kind == "act":
            needed[step.src[0]] = True
        elif needed[step.out] and step.kind != "quad":  # (the series reads rho alone)
            for src in step.src:
                needed[src] = True
    return needed


def _prune(lowering: _Lowering, output: int) -> Program:
    """The program, printing an activation's next determinant only where one is read.

    A trusted map whose output no later activation reads (a smooth last layer) prints no
    determinant: the carried forms are long, and compiling them would be wasted.
    """
    steps = lowering.steps
    needed = _read_by_an_activation(steps)
    used = {s.act for s in steps if s.kind == "act" and needed[s.out]}
    trusted = [t and m in used for m, t in enumerate(lowering.trusted)]
    specs = [
        sp if t else replace(sp, det=None) for sp, t in zip(lowering.specs, trusted, strict=True)
    ]
    det: list[bool] = []
    for s in steps:  # the determinant of each state, carried or not, again
        if s.kind == "input_dense":
            det.append(True)
        elif s.kind == "act":
            det.append(trusted[s.act] and det[s.src[0]])
        elif s.kind == "quad":
            det.append(False)
        else:
            det.append(all(det[src] for src in s.src))
    quads = tuple(lowering.quads)
    return Program(tuple(steps), tuple(specs), tuple(trusted), tuple(det), output, quads)
