"""The notes' table of closed-form dual kernels, each certified against mpmath quadrature."""

from __future__ import annotations

import functools
import hashlib
import json
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import sympy as sp

from ntksym._io import atomic_write_text
from ntksym.derive.text import Tex, Text
from ntksym.notes.printer import notes_latex
from ntksym.notes.worked import dual_formulas

__all__ = [
    "CERT_COVARIANCES",
    "DualRow",
    "PendingTable",
    "certification_cache",
    "dual_row",
    "dual_table",
    "source_text",
    "start_dual_table",
]

#: Covariances ``(s11, s12, s22)`` at which closed forms are certified (exact decimals).
CERT_COVARIANCES = (
    ("1", "0.3", "1"),
    ("2", "-0.7", "0.5"),
    ("0.5", "0.49", "0.6"),
    ("1.5", "1.2", "1.25"),
)


@dataclass(frozen=True)
class DualRow:
    """One activation of the closed-form table.

    Attributes:
        name: registered name with parameters (``leaky_relu(0.1)``).
        sigma: the activation as LaTeX in ``u``.
        method: how ntksym obtained the maps; source: the citation (:class:`Text`).
        derived: True when ntksym's SymPy code derived the maps.
        has_ntk: whether the derivative map has a closed form.
        worst_nngp, worst_ntk: worst relative difference from mpmath quadrature.
        dps: working digits of the comparison; points: covariances compared.
        nngp_tex, ntk_tex: the two maps as LaTeX in the seed's notation (``""``: none).
        source_plain: the citation as the dual family gives it (``source`` is made from it).
    """

    name: str
    sigma: str
    method: str
    source: Text
    derived: bool
    has_ntk: bool
    worst_nngp: float
    worst_ntk: float | None
    dps: int
    points: int = field(default=0)
    nngp_tex: str = ""
    ntk_tex: str = ""
    source_plain: str = ""


#: Formulas the dual families' citations quote (plain strings of :mod:`ntksym.dual`,
#: which is upstream of the engine's :class:`Text`), with their LaTeX.
QUOTED_FORMULAS = (
    Tex(
        r"\mathbb{E}\bigl[e^{b^{\mathsf T}w - w^{\mathsf T}Aw/2}\bigr]"
        r" = \det(I+\Sigma A)^{-1/2}"
        r"\exp\bigl(\tfrac12 b^{\mathsf T}(I+\Sigma A)^{-1}\Sigma b\bigr)",
        "E[exp(b'w - w'Aw/2)] = det(I+Sigma A)^(-1/2) exp(b'(I+Sigma A)^(-1) Sigma b/2)",
    ),
)


def source_text(source: str) -> Text:
    """A citation as :class:`Text`.

    The formulas of :data:`QUOTED_FORMULAS` it quotes verbatim become formulas (found by
    exact comparison, not by a pattern); everything else stays words.
    """
    for f in QUOTED_FORMULAS:
        head, found, tail = source.partition(f.plain())
        if found:
            return Text(source_text(head), f, source_text(tail))
    return Text(source)


#: Parameters used for the families in the table.
FAMILY_PARAMS: dict[str, dict[str, Any]] = {"leaky_relu": {"slope": 0.1}, "monomial": {"k": 3}}


def _worst(act: Any, derivative: bool, covs: Sequence[tuple[str, str, str]], dps: int) -> float:
    import mpmath

    from ntksym import reference

    worst = mpmath.mpf(0)
    with mpmath.workdps(dps + 10):
        for c in covs:
            a = reference.dual_closed_form(act, *c, dps=dps, derivative=derivative)
            q = reference.dual_quadrature(act, *c, dps=dps, derivative=derivative)
            scale = max(abs(q), mpmath.mpf(10) ** (-dps))
            worst = max(worst, abs(a - q) / scale)
    return float(worst)


def dual_row(
    name: str, covariances: Sequence[tuple[str, str, str]], dps: int, cache: Path | None = None
) -> DualRow:
    """The certified row of activation ``name`` (read from ``cache`` when it holds it).

    Args:
        name: A registered name with a closed form.
        covariances: ``(s11, s12, s22)`` triples as exact decimal strings.
        dps: Decimal digits of both evaluations.
        cache: Directory of certified rows, or None for no cache. A row is stored under
            a key made of its inputs and of the source of every module its content
            depends on (see :func:`_row_key`), so a change to any of them recomputes it.
    """
    path = cache / f"{_row_key(name, covariances, dps)}.json" if cache is not None else None
    if path is not None and path.is_file():
        try:
            return _from_json(json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, KeyError, TypeError):
            pass  # an unreadable entry is recomputed and rewritten
    from ntksym import dual
    from ntksym.activations import get_activation, u

    act = get_activation(name, **FAMILY_PARAMS.get(name, {}))
    maps = dual.closed_form(act)
    has_ntk = maps.ntk is not None
    nngp_tex, ntk_tex = dual_formulas(maps)
    row = DualRow(
        name=act.name,
        sigma=notes_latex(act.expr.xreplace({u: sp.Symbol("u")})),
        method=maps.method,
        source=source_text(maps.source),
        derived=maps.derived,
        has_ntk=has_ntk,
        worst_nngp=_worst(act, False, covariances, dps),
        worst_ntk=_worst(act, True, covariances, dps) if has_ntk else None,
        dps=dps,
        points=len(covariances),
        nngp_tex=nngp_tex,
        ntk_tex=ntk_tex,
        source_plain=maps.source,
    )
    if path is not None:
        atomic_write_text(path, json.dumps(_to_json(row), indent=1))
    return row


#: Packages and modules whose source decides a row's content (its cache key).
_KEY_SOURCES = (
    "activations",
    "dual",
    "reference",
    "derive/symbols.py",
    "notes/duals.py",
    "notes/printer.py",
    "notes/order.py",
    "notes/worked.py",
)


@functools.lru_cache(maxsize=1)
def _fingerprint() -> str:
    import mpmath

    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256(f"sympy {sp.__version__} mpmath {mpmath.__version__}".encode())
    for part in _KEY_SOURCES:
        target = root / part
        files = sorted(target.rglob("*.py")) if target.is_dir() else [target]
        for f in files:
            digest.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes())
    return digest.hexdigest()


def _row_key(name: str, covariances: Sequence[tuple[str, str, str]], dps: int) -> str:
    data = json.dumps([name, FAMILY_PARAMS.get(name, {}), list(covariances), dps, _fingerprint()])
    return hashlib.sha256(data.encode()).hexdigest()[:32]


def _to_json(row: DualRow) -> dict[str, Any]:
    out = {f.name: getattr(row, f.name) for f in fields(row) if f.name != "source"}
    return out


def _from_json(data: dict[str, Any]) -> DualRow:
    return DualRow(source=source_text(data["source_plain"]), **data)


def certification_cache() -> Path:
    """Where certified rows are kept: ``$NTKSYM_CACHE_DIR/notes`` or ``~/.cache/ntksym/notes``."""
    from ntksym.codegen.files import cache_dir

    return cache_dir().parent / "notes"


#: Rows submitted first to the worker processes (the slowest quadratures).
_SLOW_FIRST = ("gelu", "erf", "gaussian", "exp")


def start_dual_table(
    names: Sequence[str] | None = None,
    *,
    covariances: Sequence[tuple[str, str, str]] = CERT_COVARIANCES,
    dps: int = 30,
    jobs: int = 1,
    cache: Path | None = None,
) -> PendingTable:
    """Start certifying the closed-form dual kernels (:meth:`PendingTable.result` waits).

    For every activation the closed forms of ``E[sigma(u) sigma(v)]`` and
    ``E[sigma'(u) sigma'(v)]`` (:func:`ntksym.dual.closed_form`) are evaluated with
    :func:`ntksym.reference.dual_closed_form` and compared with the independent quadrature
    :func:`ntksym.reference.dual_quadrature`, both at ``dps`` digits, at each covariance.
    With ``jobs > 1`` the rows are computed by that many worker processes while the
    caller goes on with other work.

    Args:
        names: Registered names (default: :func:`ntksym.dual.closed_form_names`).
        covariances: ``(s11, s12, s22)`` triples as exact decimal strings.
        dps: Decimal digits of both evaluations.
        jobs: Worker processes (1: compute in this process when collected).
        cache: Directory of certified rows (see :func:`dual_row`), or None.

    Returns:
        A :class:`PendingTable`; its ``result()`` is one :class:`DualRow` per
        activation, in the order of ``names``.
    """
    from ntksym import dual

    todo = list(names) if names is not None else list(dual.closed_form_names())
    return PendingTable(todo, covariances, dps, jobs, cache)


class PendingTable:
    """Rows being certified: :meth:`result` waits for them, :meth:`cancel` drops them."""

    def __init__(
        self,
        names: list[str],
        covariances: Sequence[tuple[str, str, str]],
        dps: int,
        jobs: int,
        cache: Path | None,
    ) -> None:
        self._args = (covariances, dps, cache)
        self._names = names
        self._pool: ProcessPoolExecutor | None = None
        self._futures: dict[str, Any] = {}
        if jobs > 1:
            method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
            self._pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context(method))
            first = sorted(names, key=lambda n: _SLOW_FIRST.index(n) if n in _SLOW_FIRST else 99)
            self._futures = {n: self._pool.submit(dual_row, n, *self._args) for n in first}

    def result(self) -> list[DualRow]:
        """The rows in the order of the names (computed here when there are no workers)."""
        if self._pool is None:
            return [dual_row(n, *self._args) for n in self._names]
        try:
            return [self._futures[n].result() for n in self._names]
        finally:
            self.cancel()

    def cancel(self) -> None:
        """Stop the workers (rows not yet started are dropped)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def dual_table(
    names: Sequence[str] | None = None,
    *,
    covariances: Sequence[tuple[str, str, str]] = CERT_COVARIANCES,
    dps: int = 30,
    jobs: int = 1,
    cache: Path | None = None,
) -> list[DualRow]:
    """The certified rows, computed now (see :func:`start_dual_table`)."""
    pending = start_dual_table(names, covariances=covariances, dps=dps, jobs=jobs, cache=cache)
    return pending.result()
