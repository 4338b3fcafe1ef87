"""The layer maps of a described network in blocks of rows: memory bounded by the outputs.

The float64 layer maps (:mod:`ntksym.kernels.layer_maps`) hold a few dozen arrays of the
Gram block's shape at once (covariances, determinants, NTK, the dual maps' temporaries),
so a whole ``N1 x N2`` evaluation takes many times the outputs' memory (17x at N=2000
for a Dropout network). :func:`evaluate_layers` walks the network on blocks of rows
instead, each a ``rows x N2`` evaluation written into the preallocated outputs, with
``rows`` chosen (:func:`block_rows`) so that a block's temporaries stay within
:data:`FRACTION` of the outputs (or :data:`FLOOR_BYTES`, whichever is larger).

Every entry of a network whose activations have closed forms is computed from its own
pair only, so a block gives the bits of the whole evaluation: the Gram product is formed
in chunks of :data:`~.layer_maps.GRAM_ROWS` rows at the same global rows whatever the
block (:func:`~.layer_maps.gram_rows`), and the pair of an example with itself is located
by the block's row offset (``Block.row_offset``: Dropout treats it as one example).
Activations without a closed form are integrated by the generated modules' vectorised
rule, whose sums run over a batch's common node range (and chunks of pairs), so their
entries can differ in the last bits with the block (measured: a few thousand ulps of
entries near zero, about 1e-16 of the kernel's scale); their blocks are larger
(:data:`QUADRATURE_MIN_PAIRS`).

For ``K(X, X)`` a block of rows ``r0:r1`` is evaluated against the columns ``r0:`` only
(the entries on and above the diagonal, and the block's small triangle below it), so about
half the pairs are computed; the lower triangle is then filled by copying the upper one
onto it in place (:func:`symmetrize`), as a tiled evaluation does, so ``K(X, X)`` is exactly
symmetric. Blocks grow taller as their columns shrink (the same memory budget).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ntksym import dual
from ntksym.architecture.description import Net, Nonlinearity
from ntksym.architecture.leaves import leaves, live_branches
from ntksym.architecture.walk import Meta, Walker
from ntksym.errors import InputError, NonFiniteError
from ntksym.kernels import variance_dd
from ntksym.kernels.layer_maps import Float64Ops, gram_rows, input_block

__all__ = [
    "FLOOR_BYTES",
    "FRACTION",
    "PER_ENTRY",
    "QUADRATURE_MIN_PAIRS",
    "QUADRATURE_PER_ENTRY",
    "block_rows",
    "evaluate_layers",
    "by_quadrature",
    "symmetrize",
]

#: A block's temporaries may take this fraction of the outputs' bytes (estimated with
#: :data:`PER_ENTRY`; 0.2 leaves room for its error under the 1.3x of the outputs) ...
FRACTION = 0.2
#: ... or this many bytes, if more (small matrices in one block).
FLOOR_BYTES = 8 * 2**20
#: Working memory of the layer maps per entry of a block and per live branch, in float64
#: numbers (tracemalloc's peak: 40 for a Dropout network with the NTK, 30 without) ...
PER_ENTRY = 40
#: ... and with an activation without a closed form, whose quadrature (the generated
#: modules' rule, with its Mehler series) holds 23-52 per entry (tracemalloc, blocks of
#: 256 and 64 rows at N = 2000; 265 while the series took its coefficients per entry),
#: beside the series' memo of the columns' coefficients (up to ~16 MB per map and layer).
QUADRATURE_PER_ENTRY = 100
#: Small blocks cost the quadrature more per entry (each takes its rows' coefficients and
#: the rule's passes anew: N = 4000, two tanh layers, 48 s CPU in blocks of 16 rows, 31 s
#: of 64, 22 s of 256), so a block of a network with such an activation has at least this
#: many entries (about 50 MB of temporaries): the bound ``FRACTION x outputs`` holds from
#: N ~ 4000 on for such networks, not below (measured at N = 4000: 1.34x the outputs,
#: the memo included).
QUADRATURE_MIN_PAIRS = 65536
#: Side of the square blocks of :func:`symmetrize`.
_SYM_TILE = 256


def by_quadrature(net: Net) -> bool:
    """Whether an activation of ``net`` has no closed form (its maps are integrated)."""
    acts = [
        x.activation
        for x in leaves(net, repeat="once", parallel=True)
        if isinstance(x, Nonlinearity)
    ]
    return any(not dual.has_closed_form(a) for a in acts)


def block_rows(net: Net, n1: int, n2: int, n_kinds: int, cols: int | None = None) -> int:
    """Rows per block: temporaries within ``max(FRACTION x outputs, FLOOR_BYTES)``.

    ``cols``: the columns a block is evaluated against (``n2`` if None; fewer for the
    blocks of ``K(X, X)``, which start at their first row). At least one row, and at least
    :data:`QUADRATURE_MIN_PAIRS` entries when an activation is integrated.
    """
    most, outputs = live_branches(net)
    quad = by_quadrature(net)
    width = max(n2 if cols is None else cols, 1)
    out_bytes = 8.0 * n_kinds * outputs * n1 * n2
    budget = max(FRACTION * out_bytes, float(FLOOR_BYTES))
    per_row = 8.0 * (QUADRATURE_PER_ENTRY if quad else PER_ENTRY) * most * width
    least = -(-QUADRATURE_MIN_PAIRS // width) if quad else 1
    return min(n1, max(least, int(budget // per_row)))


def symmetrize(K: np.ndarray) -> None:
    """Copy the upper triangle of ``K`` onto the lower one in place, tile by tile.

    The entry ``(r, c)`` with ``r < c`` is ``K(x_r, x_c)``, the orientation a tiled
    ``K(X, X)`` computes for its blocks above the diagonal (:mod:`ntksym.kernels.tiles`),
    so a whole call and a tiled one hold the same bits even where the maps round the two
    orientations of a pair differently (by an ulp or so).
    """
    n, t = K.shape[0], _SYM_TILE
    for i in range(0, n, t):
        diag = K[i : i + t, i : i + t]
        lower = np.tril_indices(diag.shape[0], -1)
        diag[lower] = diag.T[lower]
        for j in range(i + t, n, t):
            K[j : j + t, i : i + t] = K[i : i + t, j : j + t].T


def _not_finite(name: str) -> InputError:
    return InputError(
        f"the {name.upper()} of this network is infinite or undefined at some of these "
        "inputs (a dual map diverged or overflowed); reduce the input scale or the depth, "
        "or ask for the other kernel"
    )


def _block(
    net: Net,
    A: np.ndarray,
    X2: np.ndarray,
    rows: slice,
    col0: int,
    same: bool,
    need_ntk: bool,
    lows: tuple[np.ndarray, np.ndarray],
) -> tuple[list[dict[str, np.ndarray | None]], bool]:
    """One block's kernels per output, and whether the network ends in several branches.

    The block's rows are evaluated against the columns ``col0:`` of ``X2``. ``lows``: the
    low parts of all of ``A``'s and ``X2``'s squared norms
    (:func:`~.variance_dd.squared_norms_lo`), formed once for every block.
    """
    cols = X2[col0:]
    # the product against all the columns, then cut: BLAS may round an entry differently
    # in a product with fewer columns, and every block must hold the bits of one evaluation
    G = gram_rows(A, X2, rows.start, rows.stop)[:, col0:]
    offset = rows.start - col0  # (with ``same``: row i's own pair is column i + offset)
    start = input_block(A[rows], cols, need_ntk, same, offset, G, (lows[0][rows], lows[1][col0:]))
    node = Walker(Float64Ops()).run(net, (start, Meta(A.shape[1])))
    ends = node if isinstance(node, list) else [node]
    return [{"nngp": b.s12, "ntk": b.ntk} for b, _ in ends], isinstance(node, list)


def _norms_lo(X: np.ndarray) -> np.ndarray:
    """The low parts of the rows' squared norms as :func:`~.layer_maps.input_block` rounds them."""
    return variance_dd.squared_norms_lo(X, np.einsum("ij,ij->i", X, X))


def _store(
    outs: list[dict[str, np.ndarray]],
    values: list[dict[str, np.ndarray | None]],
    span: slice,
    col0: int,
) -> None:
    """One block's kernels written into the outputs' rows, columns ``col0:``, each finite."""
    for out, value in zip(outs, values, strict=True):
        for name, array in out.items():
            got = value[name]
            if got is None or not np.all(np.isfinite(got)):
                raise _not_finite(name)
            array[span, col0:] = got


def evaluate_layers(
    net: Net,
    A: np.ndarray,
    B: np.ndarray | None,
    wanted: Sequence[str],
    rows: int | None = None,
    given: dict[str, np.ndarray] | None = None,
) -> tuple[list[dict[str, np.ndarray]], bool]:
    """The kernels in ``wanted`` of every output of ``net``, by the layer maps in row blocks.

    Args:
        net: The network description.
        A: Checked inputs, shape (N1, d).
        B: Checked inputs, shape (N2, d), or None for ``K(A, A)`` (then exactly symmetric).
        wanted: Names among ``"nngp"``, ``"ntk"``; only the NNGP's maps run without ``"ntk"``.
        rows: Rows per block; None chooses them by :func:`block_rows`.
        given: Checked float64 arrays of shape (N1, N2) by name to write the kernels into
            (a network with one output; :func:`ntksym.kernels.call.check_outs`), or None.

    Returns:
        One dict of arrays per output, and whether the network ends in several branches.

    Raises:
        InputError: A kernel asked for is not finite somewhere.
    """
    X2 = A if B is None else B
    n1, n2 = A.shape[0], X2.shape[0]
    outs: list[dict[str, np.ndarray]] = []
    several = False
    lows = _norms_lo(A), _norms_lo(X2)
    i0 = 0
    while i0 < n1:
        col0 = i0 if B is None else 0  # K(X, X): the columns from the block's first row
        step = rows if rows is not None else block_rows(net, n1, n2, len(wanted), n2 - col0)
        span = slice(i0, min(n1, i0 + step))
        i0 = span.stop
        # an overflow gives non-finite entries, refused by _store with a clear error: no
        # NumPy warning from inside a map first, and a layer's variances that overflowed
        # before its dual map are the same error
        try:
            with np.errstate(over="ignore", invalid="ignore"):
                values, several = _block(net, A, X2, span, col0, B is None, "ntk" in wanted, lows)
        except NonFiniteError:
            raise _not_finite(wanted[0]) from None
        if not outs:
            given = given or {}
            outs = [
                {n: given[n] if n in given else np.empty((n1, n2)) for n in wanted} for _ in values
            ]
        _store(outs, values, span, col0)
        del values  # (before the next block's temporaries)
    if B is None:
        for out in outs:
            for array in out.values():
                symmetrize(array)
    return outs, several
