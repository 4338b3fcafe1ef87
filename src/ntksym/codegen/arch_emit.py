"""The network-specific Python of a fused kernel: its program tables and activation steps.

A fused module (:mod:`ntksym.codegen.architecture`) is layer-major: per chunk of at most
256 columns of one row, each step of the network's program
(:class:`~ntksym.codegen.arch_program.Program`) is one short loop over the chunk
(``arch_runtime.py``, region ``steps``). What depends on the network is written here:

* two tables, one row per step (:mod:`ntksym.codegen.arch_tables`), read by the static
  interpreter ``_run_steps``; a network's depth adds rows, not code to compile;
* per distinct activation ``m``, its chunk loop ``_a{m}_step`` (:func:`activation_step`)
  around the generated layer map ``_a{m}_pair_any`` of its family, with ``W2 = 1``,
  ``B2 = 0``: ``E[sigma sigma]``, ``E[sigma' sigma']`` and, for the families whose map
  carries it (:attr:`Program.trusted`), the output's determinant; ``Theta -> Theta
  E[sigma' sigma']``; where the input's determinant is not carried it is formed first by
  subtraction (Dekker's products, ``_cdet``). The maps are printed so that these loops
  vectorise (:func:`loop_spec`: ``W2 = 1``, ``B2 = 0``, half-integer powers by square
  roots, negative integer powers as reciprocals; :func:`hoist_calls`: libm calls in a
  loop of their own);
* per distinct activation, ``_a{m}_plain`` (:func:`plain_step`): the same chunk loop
  without a carried determinant, for the chunks whose pairs all have ``1 - rho^2 > tau``
  (``arch_runtime.py``, region ``loops``), which it checks first;
* the dispatch from an activation's number to its functions, written into the static
  interpreter where it calls the stand-ins ``_act_step``, ``_act_plain`` and
  ``_act_diag`` (:func:`inline_dispatch`).

Only numbers taken from the description (``repr`` of floats and integers) and state
numbers enter this code; the activations enter as SymPy-printed layer maps
(:func:`ntksym.codegen.render.render_spec`).
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import sympy as sp

from ntksym.codegen.arch_program import Program
from ntksym.codegen.render import LLVM_INLINED, RenderSpec
from ntksym.codegen.shared_xreplace import shared_xreplace
from ntksym.codegen.spec import KernelSpec
from ntksym.dual.residual import NEAR
from ntksym.dual.stable import B2, W2

__all__ = [
    "activation_step",
    "drop_quad",
    "hoist_calls",
    "inline_dispatch",
    "loop_spec",
    "plain_step",
]

_IND = "    "


class RootPow(sp.Function):
    """``RootPow(x, n)`` is ``x**(n/2)`` for an odd ``n``, printed with ``math.sqrt``.

    Numba compiles ``x**1.5`` as a call to ``pow``, which LLVM does not vectorise (and
    which costs tens of ns); ``x*math.sqrt(x)`` vectorises, within 2 ulp.
    """

    def _pythoncode(self, printer: Any) -> str:
        x = f"({printer._print(self.args[0])})"
        n = int(self.args[1])
        k = (abs(n) - 1) // 2
        root = f"math.sqrt{x}" if k == 0 else f"({x}**{k}*math.sqrt{x})"
        return root if n > 0 else f"(1.0/{root})"


def _half_powers(expr: sp.Expr) -> sp.Expr:
    """``expr`` with every ``x**(n/2)``, odd ``|n| >= 3``, as :class:`RootPow`.

    Not where ``x`` is a symbol: the roots of the variances come precomputed.
    """

    def half(e: sp.Expr) -> bool:
        q = e.exp if e.is_Pow else None
        return bool(q is not None and q.is_Rational and q.q == 2 and abs(q.p) >= 3)

    def root(e: sp.Expr) -> sp.Expr:
        return e if e.base.is_Symbol else RootPow(e.base, e.exp.p)

    return expr.replace(lambda e: e.is_Pow and half(e), root)


class InvPow(sp.Function):
    """``InvPow(x, n)`` is ``x**(-n)`` for an integer ``n >= 2``, printed ``1.0/x**n``.

    Numba compiles ``x**(-n)`` (a negative constant exponent) as a call that checks for
    a zero base, and the loop that makes it does not vectorise (GELU's carried
    determinant has 30 of them: hundreds of ns per entry); ``x**n`` is unrolled into
    products, and ``1.0/x**n`` vectorises (one rounding more than the product alone).
    """

    def _pythoncode(self, printer: Any) -> str:
        return f"(1.0/({printer._print(self.args[0])})**{int(self.args[1])})"


def _negative_powers(expr: sp.Expr) -> sp.Expr:
    """``expr`` with every ``x**(-n)``, integer ``n >= 2``, as :class:`InvPow`."""

    def neg(e: sp.Expr) -> bool:
        return bool(e.is_Pow and e.exp.is_Integer and e.exp < -1)

    return expr.replace(neg, lambda e: InvPow(e.base, -e.exp))


def loop_spec(spec: KernelSpec) -> KernelSpec:
    """``spec`` as the activation step prints it, with ``W2 = 1``, ``B2 = 0``.

    The Dense layer is a step of its own, so the map's terms in ``B2`` vanish; half-integer
    powers become :class:`RootPow`, negative integer powers :class:`InvPow` (both so
    that the loop vectorises).
    """

    def form(e: sp.Expr | None) -> sp.Expr | None:
        if e is None:
            return None
        # (xreplace, not subs: a symbol set to a number, and 100x faster on GELU's maps)
        dense_apart = shared_xreplace(e, {W2: sp.Integer(1), B2: sp.Integer(0)})
        return _negative_powers(_half_powers(dense_apart))

    return replace(spec, nngp=form(spec.nngp), ntk=form(spec.ntk), det=form(spec.det),
                   diag=form(spec.diag))  # fmt: skip


#: A call to a libm function (not ``sqrt``, ``copysign``, ...), which stops LLVM
#: vectorising the loop that makes it.
_CALL = re.compile(r"\bmath\.(?!sqrt\b|copysign\b|fabs\b|floor\b|ceil\b)\w+\(")
_TERM = re.compile(r"\bt\d+\b")
_VARIANTS = (("any", "intermediate"), ("pos", "pos_intermediate"))


def _hoist(lines: tuple[tuple[str, str], ...]) -> tuple[list, list, list[str]]:
    """The map's terms with libm calls taken out: ``(new, pre, calls)``.

    ``calls``: the terms that call libm; ``pre``: they and the terms they need, in order;
    ``new``: the map's terms with ``calls[i]`` read from the argument ``H{i}``.
    """
    calls = [name for name, code in lines if _CALL.search(code)]
    need = set(calls)
    for name, code in reversed(lines):
        if name in need:
            need |= set(_TERM.findall(code))
    pre = [(n, c) for n, c in lines if n in need]
    new = [(n, f"H{calls.index(n)}" if n in calls else c) for n, c in lines]
    return new, pre, calls


def _rows(hoisted: dict[str, int]) -> int:
    """The rows of scratch the hoisted terms take (the longer list of the two maps)."""
    return max(hoisted.get("any", 0), hoisted.get("pos", 0))


def hoist_calls(rs: RenderSpec, m: int) -> tuple[RenderSpec, str, dict[str, int]]:
    """Activation ``m``'s layer maps with their libm calls taken out of the hot loop.

    A term of a map that calls libm (``log1p`` in erf's carried determinant, ``exp`` in
    the mgf family) keeps the whole loop scalar. Such terms are computed first, in a loop
    of their own (``_a{m}_pre_any``, ``_a{m}_pre_pos``: the terms and what they need, into
    rows of scratch), and the maps read them as the arguments ``H0, H1, ...`` (the same
    in both maps: the longer list; a map ignores the ones it does not have).

    Where the only call is ``log1p`` (erf's carried determinant), ``_a{m}_near_{variant}``
    is the same code with :func:`_log1p_near` (a series, no call, NaN outside
    ``|x| <= 0.3``): its loop vectorises, and a second loop calls libm only for the
    entries it leaves NaN (the variances of most pairs are close: ``|x|`` is small).

    Returns:
        The render spec to print, the source of the ``_pre`` functions, and the number of
        terms each map (``"any"``, ``"pos"``) takes from its ``_pre`` function (and
        ``"any_near"``, ``"pos_near"``: 1 where the ``_near`` function exists).
    """
    if rs.clip_rho:  # (the template's own RHO lines would be missing from the _pre code)
        return rs, "", {"any": 0, "pos": 0}
    changes: dict[str, Any] = {}
    sources, counts = [], {}
    for variant, field in _VARIANTS:
        new, pre, calls = _hoist(getattr(rs, field))
        counts[variant] = len(calls)
        if not calls or (variant == "pos" and not rs.pos_variant):
            continue
        changes[field] = tuple(new)
        body = [f"{_IND}{n} = {c}" for n, c in pre] + [f"{_IND}return ({', '.join(calls)},)"]
        code = "\n".join(body) + "\n"
        head = LLVM_INLINED + "\n"
        sources.append(head + f"def _a{m}_pre_{variant}({rs.pair_args}):\n" + code)
        if {c.group() for c in _CALL.finditer(code)} == {"math.log1p("}:
            near = code.replace("math.log1p(", "_log1p_near(")
            sources.append(head + f"def _a{m}_near_{variant}({rs.pair_args}):\n" + near)
            counts[f"{variant}_near"] = 1
    n = _rows(counts)
    if n:
        changes["pair_args"] = rs.pair_args + "".join(f", H{i}" for i in range(n))
    return replace(rs, **changes), "\n\n".join(sources), counts


def _act_loop(
    name: str, carry: bool, variant: str, hoisted: dict[str, int], gap: bool
) -> list[str]:
    """The loops of an activation's maps ``{name}_pair_{variant}`` over a chunk.

    ``"pos"`` (the cheaper map, right where ``S12 > 0``) or ``"any"`` (the general map)
    writes every entry. Each variant's map is inlined in one loop only (compile time), and
    the loop computes the NTK row whether or not it is asked (the rows then hold zeros):
    no second copy of the loop. No entry depends on the others. The terms that call libm
    (``hoisted``, :func:`hoist_calls`) come first, in a loop of their own. With ``carry``
    the map's next determinant is written to ``Dk``.
    """
    args = "va, VB[q], Sa[q], Da[q], vk, VK[q], 1.0, 0.0, ra, RB[q], rk, RK[q]"
    if gap:  # (the map takes the root gap U last)
        args += ", _rgap(va, la, VB[q], VB[off + q], ra, RB[q])"
    out = []
    n, total = hoisted[variant], _rows(hoisted)
    if n and hoisted.get(f"{variant}_near"):
        nan = " or ".join(f"H[{i}, q] != H[{i}, q]" for i in range(n))
        out += ["for q in range(m):", f"{_IND}h = {name}_near_{variant}({args})"]
        out += [f"{_IND}H[{i}, q] = h[{i}]" for i in range(n)]
        out += ["for q in range(m):", f"{_IND}if {nan}:  # outside the series: libm"]
        out += [f"{2 * _IND}h = {name}_pre_{variant}({args})"]
        out += [f"{2 * _IND}H[{i}, q] = h[{i}]" for i in range(n)]
    elif n:
        out += ["for q in range(m):", f"{_IND}h = {name}_pre_{variant}({args})"]
        out += [f"{_IND}H[{i}, q] = h[{i}]" for i in range(n)]
    extra = "".join(f", H[{i}, q]" if i < n else ", 0.0" for i in range(total))
    body = [f"e, ed, dn = {name}_pair_{variant}({args}{extra})"]
    if carry:
        body.append("dn = _sel(CO[q], 0.0, _fin(dn, _cdet(vk, e, VK[q])))")
    body.append("ed = _sel(zero, 0.0, Ta[q] * ed)")
    body += ["Sk[q] = e", "Tk[q] = ed"]
    if carry:
        body.append("Dk[q] = dn")
    return out + ["for q in range(m):"] + [_IND + line for line in body]


def activation_step(prog: Program, m: int, pos: bool, hoisted: dict[str, int], gap: bool) -> str:
    """``_a{m}_step``: activation ``m`` from state ``a`` to state ``k`` over one chunk.

    Args (of the generated function): the chunk arrays ``S``, ``D``, ``T``; the states
    ``a``, ``k``; the chunk's length ``m``; the row input's variances and roots at ``a``
    and ``k`` (``va, ra, vk, rk``) and the columns' (``VB, RB, VK, RK``); the low parts of
    the row's and the columns' variances at ``a`` (``la``, and ``VB[off + q]``: ``VB`` is
    the row of variances from the chunk's first column on, its low parts at ``off`` on;
    the root gap's double-double variances, ``arch_pairs._rgap``); ``CO`` (pairs
    of one input twice); ``det`` (1: the input's determinant is carried in ``D[a]``; 0:
    it is formed by subtraction; 2: so formed, and guarded: each pair other than one
    input twice whose determinant is below ``NEAR S11 S22`` gets NaN, see
    :attr:`Step.guard <ntksym.codegen.arch_program.Step.guard>`);
    ``zero`` (the activation passes no gradient). The loops read and write 1-d rows of
    the chunk arrays (``Sa = S[a]``, ...), which LLVM vectorises.

    Args:
        prog: The program.
        m: The activation's number.
        pos: Whether its layer map has a cheaper variant ``_a{m}_pair_pos`` for
            ``S12 > 0``: it computes the chunk where every covariance of the chunk is
            ``> 0``; elsewhere the general map ``_a{m}_pair_any`` computes every entry
            (one pass, not the cheap map and then the general one).
        hoisted: How many terms each map (``"any"``, ``"pos"``) reads from its loop of
            libm calls (:func:`hoist_calls`).
        gap: Whether the printed maps take the root gap ``U = sqrt(S11) - sqrt(S22)``
            (:attr:`RenderSpec.uses_gap <ntksym.codegen.render.RenderSpec.uses_gap>`).

    Returns:
        The function's source.
    """
    lines = [
        '@numba.njit(cache=True, error_model="numpy", fastmath={"contract"})',
        f"def _a{m}_step(S, D, T, a, k, m, va, ra, vk, rk, VB, RB, VK, RK, la, off, CO, det,"
        " zero):",
        f'{_IND}"""Activation {m} from state a to state k on one chunk of a row."""',
        f"{_IND}Sa, Da, Ta, Sk, Dk, Tk = S[a], D[a], T[a], S[k], D[k], T[k]",
        f"{_IND}if det != 1:  # formed by subtraction, into the unused row of state a",
        f"{2 * _IND}for q in range(m):",
        f"{3 * _IND}Da[q] = _sel(CO[q], 0.0, _cdet(va, Sa[q], VB[q]))",
        f"{_IND}if det == 2:  # guarded: nearly parallel pairs are left to the layer maps",
        f"{2 * _IND}lim = {NEAR!r} * va",
        f"{2 * _IND}for q in range(m):",
        f"{3 * _IND}Da[q] = _sel(Da[q] < lim * VB[q] and not CO[q], math.nan, Da[q])",
    ]
    lines += _map_loops(f"_a{m}", prog.trusted[m], pos, hoisted, gap)
    return "\n".join(lines) + "\n"


def _map_loops(name: str, carry: bool, pos: bool, hoisted: dict[str, int], gap: bool) -> list[str]:
    """The body of a chunk step after the input's determinant: the map's loops.

    The cheaper ``pos`` variant where every covariance of the chunk is ``> 0``, the
    general map elsewhere (:func:`_act_loop`).
    """
    lines = []
    if _rows(hoisted):
        lines.append(f"{_IND}H = numpy.empty(({_rows(hoisted)}, m))")
    if pos:
        lines += [
            f"{_IND}pos = True",
            f"{_IND}for q in range(m):",
            f"{2 * _IND}pos &= Sa[q] > 0.0",
            f"{_IND}if pos:",
        ]
        lines += [2 * _IND + line for line in _act_loop(name, carry, "pos", hoisted, gap)]
        lines.append(f"{_IND}else:")
        lines += [2 * _IND + line for line in _act_loop(name, carry, "any", hoisted, gap)]
    else:
        lines += [_IND + line for line in _act_loop(name, carry, "any", hoisted, gap)]
    return lines


def plain_step(m: int, name: str, pos: bool, hoisted: dict[str, int], gap: bool) -> str:
    """``_a{m}_plain``: activation ``m`` on one chunk without a carried determinant.

    The input's determinant is formed by subtraction (``_cdet``, into the unused row of
    state ``a``), and the chunk is computed by the maps ``{name}_pair_*``, which print no
    next determinant (for an activation whose map carries one, a second rendering of its
    spec without it: :func:`ntksym.codegen.architecture.fused_source`), only if every
    pair of the chunk has ``S11 S22 - S12^2 > tau S11 S22``, i.e. ``1 - rho^2 > tau``;
    else the function writes nothing more and returns False (the kernel then runs the
    chunk again, carrying the determinant: ``_run_steps``). Pairs of one input twice
    (``CO``), and every determinant that is not a finite number above the bound, fail it.

    Args:
        m: The activation's number.
        name: The prefix of the maps (``_a{m}`` for a map that carries no determinant,
            ``_p{m}`` for the second rendering).
        pos: Whether the maps ``name`` have a ``pos`` variant (:func:`activation_step`).
        hoisted: Their terms read from loops of libm calls (:func:`activation_step`).
        gap: Whether they take the root gap ``U`` (:func:`activation_step`).

    Returns:
        The function's source.
    """
    lines = [
        '@numba.njit(cache=True, error_model="numpy", fastmath={"contract"})',
        f"def _a{m}_plain(S, D, T, a, k, m, va, ra, vk, rk, VB, RB, VK, RK, la, off, CO, zero,"
        " tau):",
        f'{_IND}"""Activation {m} on one chunk without a carried determinant, if it may."""',
        f"{_IND}Sa, Da, Ta, Sk, Dk, Tk = S[a], D[a], T[a], S[k], D[k], T[k]",
        f"{_IND}lim = tau * va",
        f"{_IND}ok = True",
        f"{_IND}for q in range(m):",
        f"{2 * _IND}d = _sel(CO[q], 0.0, _cdet(va, Sa[q], VB[q]))",
        f"{2 * _IND}Da[q] = d",
        f"{2 * _IND}ok &= d > lim * VB[q]",
        f"{_IND}if not ok:",
        f"{2 * _IND}return False",
    ]
    lines += _map_loops(name, False, pos, hoisted, gap)
    lines.append(f"{_IND}return True")
    return "\n".join(lines) + "\n"


#: The calls of the stand-in dispatchers in the region ``steps`` of ``arch_runtime.py``.
_DISPATCH_CALLS = {
    "step": re.compile(r"^( *)_act_step\(PI\[st, 4\], ([^()]*)\)\n", re.M),
    "plain": re.compile(
        r"^( *)elif not _act_plain\(PI\[st, 4\], ([^()]*)\):\n\1    return False\n", re.M
    ),
    "diag": re.compile(r"^( *)v = _act_diag\(act, ([^()]*)\)\n", re.M),
}


def _dispatch(kind: str, ind: str, args: str, n: int) -> str:
    """The if-chain that calls activation ``PI[st, 4]``'s (``act``'s) function directly."""
    out = []
    for m in range(n):
        if kind == "step":
            out += [f"{'if' if m == 0 else 'elif'} PI[st, 4] == {m}:", f"{_IND}_a{m}_step({args})"]
        elif kind == "plain":
            out += [f"elif PI[st, 4] == {m}:", f"{_IND}if not _a{m}_plain({args}):"]
            out.append(f"{2 * _IND}return False")
        else:
            out += [f"{'if' if m == 0 else 'elif'} act == {m}:", f"{_IND}v = _a{m}_diag({args})"]
    if kind == "diag":  # (as the stand-in: no such activation)
        out += ["else:", f"{_IND}v = math.nan"] if n else ["v = math.nan"]
    elif kind == "plain":
        out += ["else:", f"{_IND}return False"]
    elif not n:
        out.append("pass")
    return "".join(f"{ind}{line}\n" for line in out)


def inline_dispatch(steps: str, prog: Program) -> str:
    """The region ``steps`` with the activation dispatch written into its callers.

    ``_run_steps`` and ``_diag_rows`` (``arch_runtime.py``) call the stand-ins
    ``_act_step``, ``_act_plain`` and ``_act_diag`` with the activation's number; in a
    fused module each call becomes an if-chain on that number calling ``_a{m}_step``,
    ``_a{m}_plain`` or ``_a{m}_diag`` itself. No dispatcher is compiled: each compiled
    level links every step's code into its own module and optimises and compiles it
    again (about 1.5 s of the cold first call of ``mixed``; docs/performance.md, branch
    compile3).

    Raises:
        ValueError: A call is not found exactly once (the region changed).
    """
    n = len(prog.specs)
    for kind, pattern in _DISPATCH_CALLS.items():
        calls = pattern.findall(steps)
        if len(calls) != 1:
            raise ValueError(f"region steps: {len(calls)} calls of the {kind} dispatcher, not 1")
        match = pattern.search(steps)
        assert match is not None
        chain = _dispatch(kind, match.group(1), match.group(2), n)
        steps = steps[: match.start()] + chain + steps[match.end() :]
    return steps


_QUAD_BRANCH = re.compile(r"^        elif kind == 6:\n(?:            .*\n)+", re.M)


def drop_quad(steps: str) -> str:
    """The region ``steps`` without its branch for activations without a closed form.

    For a program with no such step: the branch would only lengthen the compilation of
    ``_run_steps`` (about 4 s of the cold first call of ``mixed``, session 19).

    Raises:
        ValueError: The branch is not found exactly once (the region changed).
    """
    found = _QUAD_BRANCH.findall(steps)
    if len(found) != 1:
        raise ValueError(f"region steps: {len(found)} branches for kind 6, not 1")
    return _QUAD_BRANCH.sub("", steps)
