"""The error function and its complement on NumPy arrays, to about one ulp.

NumPy has no ``erf`` and SciPy is not required; ``numpy.vectorize(math.erf)`` calls the
C library once per element through Python, 85-120 ns each on a quiet core. These are a
few dozen array operations instead, 35-47 ns an element (``benchmarks/bench_erf.py``;
SciPy's ``special.erf`` takes 16-18). The generated NumPy modules include
the region ``erf`` (their ``_erf`` and ``_erfc``), and :mod:`ntksym.activations.expr`
imports it for every float64 evaluation of an expression.

How they are computed (``a = |x|``):

- ``a < 1``: ``erf(x) = x + x R(x^2)``, ``R`` a polynomial of degree 15 in ``x^2``;
  ``erfc = 1 - erf`` for ``a < 1/2``, where it is at least 0.47.
- ``1/2 <= a < 6``: ``erfc(a) = exp(-a^2) g(a)``, where ``g(a) = erfc(a) exp(a^2)`` is
  smooth and slowly varying: a polynomial of degree 17 on each of ``[1/2, 1)``, ``[1,
  2)``, ..., ``[5, 6)`` in the interval's own variable ``s`` in ``[-1, 1]``. ``erf = 1 -
  erfc`` from ``a = 1`` (the complement is at most 0.16, so nothing cancels);
  ``erfc(-a) = 2 - erfc(a)``.
- ``a >= 6``: ``erf = sign(x)`` (``erfc(6) = 2.2e-17`` is below half an ulp of 1), and
  ``erfc(a) = exp(-a^2) T(1 / a^2) / a``, ``T`` of degree 11 on ``[0, 1/36]``, down to the
  underflow near ``a = 27.2``.
- ``exp(-a^2)`` is ``exp(-h^2) exp(-(a - h)(a + h))`` with ``h`` the leading 26 bits of
  ``a``, so that ``h^2`` is exact: a rounded ``a^2`` would cost ``a^2`` ulps of ``erfc``.

The tables are Chebyshev interpolants, fitted with mpmath at 60 digits and written as
monomials in ``s`` (``tests/test_numpy_erf.py`` fits them again and compares; it also
measures the error against mpmath: at most about one ulp). NaN stays NaN, ``erf(+-inf) =
+-1``, ``erfc(+inf) = 0`` and ``erfc(-inf) = 2``.
"""

# The region's functions carry no annotations (they are copied as they are), so mypy
# checks their bodies with the types it infers.
# mypy: check-untyped-defs

# The region is copied into the generated modules byte for byte: ruff checks the rest.
# ruff: noqa: D205, D209, D403, E501
# fmt: off

import numpy

# region erf
# erf and erfc on arrays, about one ulp: a polynomial for |x| < 1, erfc(a) = exp(-a^2) g(a)
# with g a polynomial on unit intervals up to 6, and an expansion in 1 / a^2 beyond
# (ntksym.codegen.runtime.numpy_erf explains the tables and how they were fitted).
_ERF_R = (-0.03453126133013269, -0.1405360890227171, 0.019852496688983708, -0.0022854855611440673, 0.0002175171560415978, -1.7537169441491903e-05, 1.2233827383720792e-06, -7.511569160771833e-08, 4.11580054144166e-09, -2.0352493691214596e-10, 9.16768920690876e-12, -3.791123021807254e-13, 1.448819924010489e-14, -5.146073259836e-16, 1.7134719857678866e-17, -5.330228513543911e-19)
_ERFC_G = numpy.array((
    (0.5069376502931449, -0.09199317291394885, 0.014434883221956143, -0.002028688468670017, 0.00026090055674831536, -3.114966996062678e-05, 3.4885738930505403e-06, -3.693562193120329e-07, 3.719539429963562e-08, -3.5801393947361e-09, 3.306871986327303e-10, -2.9409974692097485e-11, 2.5256013797327882e-12, -2.0993480743962602e-13, 1.6922040253570582e-14, -1.3259537868275277e-15, 1.0364326018855605e-16, -7.69708947798286e-18),
    (0.3215854164543175, -0.08181145886628004, 0.019037759963869347, -0.004116363162445329, 0.0008360838095667819, -0.0001608111733745461, 2.9470857452441112e-05, -5.171328643696019e-06, 8.723044760263366e-07, -1.4191195815474282e-07, 2.232841289840529e-08, -3.405755489104501e-09, 5.04660275957676e-10, -7.276757137420257e-11, 1.0198183507810793e-11, -1.3992758101971656e-12, 2.0291817549924027e-13, -2.653391343981901e-14),
    (0.2108063640611436, -0.037173673394897334, 0.006234499271664226, -0.001000196172762701, 0.0001541898009813415, -2.2924716785600132e-05, 3.297184754431634e-06, -4.5991378666819117e-07, 6.235098888731702e-08, -8.231046817245061e-09, 1.059787540163483e-09, -1.3327762030708664e-10, 1.6391982667860516e-11, -1.973859529748696e-12, 2.326172177382197e-13, -2.6933879017350214e-14, 3.2400458281168157e-15, -3.6122375599135015e-16),
    (0.1552936556088943, -0.020661788916626248, 0.0026652832981276437, -0.0003341343049554566, 4.079289542993098e-05, -4.858403694593994e-06, 5.653391306474615e-07, -6.435927000423949e-08, 7.176515040106951e-09, -7.8464804091367e-10, 8.41989333635227e-11, -8.875248560218784e-12, 9.196820640859088e-13, -9.375165829249903e-14, 9.400614181556662e-15, -9.292131733080332e-16, 9.43765973818489e-17, -9.05513302747996e-18),
    (0.12248480427384142, -0.013007964315469907, 0.0013532813586530615, -0.00013807201459872584, 1.3829153408066116e-05, -1.3609633926130807e-06, 1.317069062123554e-07, -1.254294547869835e-08, 1.176274806557829e-09, -1.0869290112424733e-10, 9.901934667547462e-12, -8.897948841894528e-13, 7.89077917254458e-14, -6.908756478888895e-15, 5.972043559620732e-16, -5.1031820020701645e-17, 4.448282499379169e-18, -3.7125414778325373e-19),
    (0.10096221839949909, -0.008897382350511301, 0.0007727531359686925, -6.618297580928075e-05, 5.592550258325534e-06, -4.664922967699878e-07, 3.8427916154638456e-08, -3.127515647782721e-09, 2.51577751817152e-10, -2.000890987940505e-11, 1.573987148892717e-12, -1.225023244264481e-13, 9.43591324992353e-15, -7.195176758409346e-16, 5.4315320323485405e-17, -4.062207482849963e-18, 3.0839694738888975e-19, -2.263375199125289e-20),
))
_ERFC_T = (0.5603505205560211, -0.003762724873077514, 7.38713831321479e-05, -2.357833330709325e-06, 1.0286465741477058e-07, -5.6376551193088024e-09, 3.6926557128003245e-10, -2.7969670549855024e-11, 2.3922875992320455e-12, -2.2726445822587304e-13, 2.4679228766012223e-14, -2.8022377741339723e-15)


def _poly(co, s):
    """Horner's rule: sum of co[j] s^j (co a tuple or a row of a table, s an array)."""
    acc = co[-1]
    for c in co[-2::-1]:
        acc = acc * s + c
    return acc


def _exp_neg_sq(a):
    """exp(-a^2) without the rounding of a^2: a = h + l, h of 26 bits, h^2 exact."""
    c = a * 134217729.0
    h = c - (c - a)
    return numpy.exp(-h * h) * numpy.exp(-(a - h) * (a + h))


def _erfc_pos(a, exp):
    """erfc(a) for finite a >= 1/2 (an array), exp(-a^2) by ``exp``: each interval's
    polynomial on its entries."""
    out = numpy.zeros(a.shape)
    k = numpy.minimum(a, 6.0).astype(numpy.int64)  # 0 on [1/2, 1), 6 beyond the table
    for i, co in enumerate(_ERFC_G):
        sel = numpy.flatnonzero(k == i)
        if sel.size:
            m = a[sel]
            s = (m - 0.75) * 4.0 if i == 0 else (m - i) * 2.0 - 1.0
            out[sel] = exp(m) * _poly(co, s)
    sel = numpy.flatnonzero((k == 6) & (a < 27.5))
    if sel.size:
        f = a[sel]
        out[sel] = exp(f) * _poly(_ERFC_T, 72.0 / (f * f) - 1.0) / f
    return out


def _erf_head(x):
    """x + x R(x^2), erf(x) for |x| < 1."""
    return x + x * _poly(_ERF_R, (x * x) * 2.0 - 1.0)


def _exp_neg_sq_plain(a):
    """exp(-a^2) with a^2 rounded: enough for erf = 1 - erfc, where erfc(a) a^2 < 0.1."""
    return numpy.exp(-a * a)


def _erf_block(x):
    a = numpy.abs(x)
    out = numpy.sign(x)  # |x| >= 6, and NaN
    sel = numpy.flatnonzero(a < 1.0)
    out[sel] = _erf_head(x[sel])
    sel = numpy.flatnonzero((a >= 1.0) & (a < 6.0))
    if sel.size:
        out[sel] = numpy.copysign(1.0 - _erfc_pos(a[sel], _exp_neg_sq_plain), x[sel])
    return out


def _erfc_block(x):
    a = numpy.abs(x)
    out = numpy.where(x > 0.0, 0.0, 2.0)
    out[numpy.isnan(x)] = numpy.nan
    sel = numpy.flatnonzero(a < 0.5)
    out[sel] = 1.0 - _erf_head(x[sel])
    sel = numpy.flatnonzero((a >= 0.5) & (a < 27.5))
    if sel.size:
        tail = _erfc_pos(a[sel], _exp_neg_sq)
        out[sel] = numpy.where(x[sel] > 0.0, tail, 2.0 - tail)
    return out


def _blocks(block, x):
    """block(x) over a float array (or scalar) of any shape, 65536 entries at a time (so
    that the temporaries stay in the cache)."""
    shape = numpy.shape(x)
    x = numpy.asarray(x, dtype=float).ravel()
    out = numpy.empty(x.shape)
    for lo in range(0, x.size, 65536):
        out[lo:lo + 65536] = block(x[lo:lo + 65536])
    return out.reshape(shape)[()]


def _erf(x):
    """erf of a float array (or scalar), elementwise."""
    return _blocks(_erf_block, x)


def _erfc(x):
    """erfc of a float array (or scalar), elementwise, without the cancellation of 1 - erf."""
    return _blocks(_erfc_block, x)
# endregion erf


#: Public names, for the float64 evaluation of expressions.
erf = _erf
erfc = _erfc
