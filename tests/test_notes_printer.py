"""Exact-text tests of the notes' LaTeX printer on the tricky expressions."""

import pytest
import sympy as sp

from ntksym.derive import Chain, ForAll, Tends
from ntksym.derive.symbols import (
    ZF,
    E,
    GaussE,
    L,
    PSum,
    Sigma,
    Sigma_dot,
    Theta,
    Theta_inf,
    W,
    alpha,
    alpha_t,
    b,
    beta,
    index,
    l,
    sigma,
    sigmadot,
    theta,
    width,
    x,
)
from ntksym.derive.text import Text
from ntksym.notes.build import md_text, tex_text
from ntksym.notes.content import statement_lines
from ntksym.notes.printer import notes_latex

k, kp, i, ip, j = (index(s) for s in ("k", "k'", "i", "i'", "j"))
n0, nl, nL = width(0), width(l), width(L)


def test_indexed_objects_in_seed_notation():
    assert notes_latex(W(l)[k, i]) == "w^{(l)}_{ki}"
    assert notes_latex(W(L)[kp, i]) == "w^{(L)}_{k'i}"
    assert notes_latex(b(0)[k]) == "b^{(0)}_{k}"
    assert notes_latex(x(True)[i]) == "x'_{i}"
    assert notes_latex(x()[i]) == "x_{i}"
    assert notes_latex(alpha_t(l + 1)[k]) == r"\tilde{\alpha}^{(l + 1)}_{k}(x)"
    assert notes_latex(alpha(L, True)[i]) == r"\alpha^{(L)}_{i}(x')"
    assert notes_latex(sp.IndexedBase("f")[k]) == "f_{k}"


def test_kronecker_deltas_with_primes():
    assert notes_latex(sp.KroneckerDelta(k, kp)) == r"\delta_{kk'}"
    assert notes_latex(sp.KroneckerDelta(i, ip) * sp.KroneckerDelta(j, kp)) == (
        r"\delta_{ii'} \delta_{jk'}"
    )
    assert notes_latex(beta**2 * sp.KroneckerDelta(j, k)) == r"\beta^{2} \delta_{jk}"


def test_derivatives_of_sigma():
    z = alpha_t(L)[i]
    assert notes_latex(sigmadot(z)) == r"\dot{\sigma}\left(\tilde{\alpha}^{(L)}_{i}(x)\right)"
    assert notes_latex(sigmadot(z), dot_derivative=False) == (
        r"\sigma'\left(\tilde{\alpha}^{(L)}_{i}(x)\right)"
    )
    assert notes_latex(sigma(z)) == r"\sigma\left(\tilde{\alpha}^{(L)}_{i}(x)\right)"
    t, y = sp.symbols("t y")
    g = sp.Function("g")
    # SymPy's chain rule: sigma'(g(t)) appears as Derivative(sigma(g(t)), g(t))
    d = sp.diff(sigma(g(t)), t)
    tex = notes_latex(d, dot_derivative=False)
    assert tex == r"\frac{\partial g(t)}{\partial t} \sigma'\left(g(t)\right)"
    assert "dsigma" not in tex and r"\operatorname" not in tex
    # ... and, in other SymPy versions, as Subs(Derivative(sigma(y), y), y, z)
    sub = sp.Subs(sp.Derivative(sigma(y), y), y, z)
    assert notes_latex(sub) == r"\dot{\sigma}\left(\tilde{\alpha}^{(L)}_{i}(x)\right)"
    assert notes_latex(sp.Derivative(sigma(y), y)) == r"\dot{\sigma}(y)"


def test_partial_derivatives_and_parameter_sum():
    dz = sp.Derivative(ZF(L)(i, theta), theta)
    assert notes_latex(dz) == (
        r"\frac{\partial \tilde{\alpha}^{(L)}_{i}(x)}{\partial \tilde{\theta}_p}"
    )
    dw = sp.Derivative(alpha_t(1)[k], W(0)[j, i])
    assert notes_latex(dw) == r"\frac{\partial \tilde{\alpha}^{(1)}_{k}(x)}{\partial w^{(0)}_{ji}}"
    assert notes_latex(PSum(dz)) == (
        r"\sum_{p=1}^{|\tilde{\theta}|} "
        r"\frac{\partial \tilde{\alpha}^{(L)}_{i}(x)}{\partial \tilde{\theta}_p}"
    )
    assert notes_latex(PSum(dz * dz.subs(i, ip))).startswith(
        r"\sum_{p=1}^{|\tilde{\theta}|} \left(\frac{\partial"
    )


def test_indexed_sums_with_limits_and_normalisation_in_front():
    s = sp.Sum(W(l)[k, j] * alpha(l)[j], (j, 1, nl)) / sp.sqrt(nl) + beta * b(l)[k]
    assert notes_latex(s) == (
        r"\beta b^{(l)}_{k} + \frac{1}{\sqrt{n_{l}}} "
        r"\sum_{j=1}^{n_{l}} w^{(l)}_{kj} \alpha^{(l)}_{j}(x)"
    )
    double = sp.Sum(x()[i] * x(True)[i] * sp.KroneckerDelta(j, k), (i, 1, n0), (j, 1, width(1)))
    assert notes_latex(double) == (
        r"\sum_{j=1}^{n_{1}} \sum_{i=1}^{n_{0}} \delta_{jk} x_{i} x'_{i}"
    )
    assert r"\substack" not in notes_latex(double)


def test_machine_indices_are_renamed_apart_from_free_ones():
    j593 = sp.Symbol("j_593", integer=True, positive=True)
    s0 = sp.Symbol("s_0", integer=True, positive=True)
    expr = sp.Sum(W(L)[k, j593] * alpha(L)[j593], (j593, 1, nL))
    assert notes_latex(expr) == r"\sum_{j=1}^{n_{L}} w^{(L)}_{kj} \alpha^{(L)}_{j}(x)"
    # j is free, so the bound s_0 may not become j; i is free too
    e2 = sp.KroneckerDelta(i, j) * sp.Sum(sp.KroneckerDelta(ip, s0) * W(L)[k, s0], (s0, 1, nL))
    assert notes_latex(e2) == (r"\delta_{ij} \sum_{s=1}^{n_{L}} \delta_{i's} w^{(L)}_{ks}")
    nested = sp.Sum(sp.Sum(x()[s0] * x(True)[j593], (j593, 1, n0)), (s0, 1, n0))
    assert notes_latex(nested) == r"\sum_{s=1}^{n_{0}} \sum_{j=1}^{n_{0}} x_{s} x'_{j}"


def test_index_range_piecewise_is_not_a_cases_block():
    m = index("m")
    pw = sp.Piecewise((x()[m] / sp.sqrt(n0), m <= n0), (0, True))
    assert notes_latex(pw) == r"\frac{x_{m}}{\sqrt{n_{0}}}"
    # a genuine case distinction stays one
    t = sp.Symbol("t", real=True)
    assert r"\begin{cases}" in notes_latex(sp.Piecewise((t, t > 0), (0, True)))


def test_kernels_expectations_and_limits():
    assert notes_latex(Theta_inf(L)) == r"\Theta_{\infty}^{(L)}(x,x')"
    assert notes_latex(Sigma_dot(L + 1)) == r"\dot{\Sigma}^{(L + 1)}(x,x')"
    assert notes_latex(Theta(1, k, kp)) == r"\Theta^{(1)}_{kk'}(x,x')"
    assert notes_latex(E(W(L)[k, i] * W(L)[kp, i])) == (
        r"\mathbb{E}\left[w^{(L)}_{ki} w^{(L)}_{k'i}\right]"  # the source's order: k, then k'
    )
    u, v = sp.symbols("u v")
    assert notes_latex(GaussE(sigma(u) * sigma(v), u, v, l)) == (
        r"\mathbb{E}_{g\sim\mathcal{N}(0,\Sigma^{(l)})}\left["
        r"\sigma\left(g(x)\right) \sigma\left(g(x')\right)\right]"
    )
    tends = Tends(Theta(L, i, ip), Theta_inf(L) * sp.KroneckerDelta(i, ip), nL)
    assert notes_latex(tends) == (
        r"\Theta^{(L)}_{ii'}(x,x') \xrightarrow[n_{L}\to\infty]{} "
        r"\Theta_{\infty}^{(L)}(x,x') \delta_{ii'}"
    )


def test_statements_as_display_lines():
    chain = Chain(Theta(1, k, kp), Sigma(1) * sp.KroneckerDelta(k, kp))
    assert statement_lines(chain) == [
        r"\Theta^{(1)}_{kk'}(x,x')",
        r"{}= \Sigma^{(1)}(x,x') \delta_{kk'}",
    ]
    fa = ForAll(sp.Eq(alpha(l)[k], sigma(alpha_t(l)[k])), sp.Tuple(l, 1, L - 1))
    assert statement_lines(fa)[-1].endswith(r",\quad l = 1,\dots,L - 1")
    assert statement_lines(None) == []


@pytest.mark.parametrize(
    ("text", "tex"),
    [
        ("a_b & 50% #1", r"a\_b \& 50\% \#1"),
        # a plain string is words: dollar signs are escaped, never read as mathematics
        ("index: $w_{ii}$ printed", r"index: \$w\_\{ii\}\$ printed"),
        ("x~^(l)", r"x\textasciitilde{}\textasciicircum{}(l)"),
        (Text("index: ", W(0)[i, i], " printed"), "index: $w^{(0)}_{ii}$ printed"),
    ],
)
def test_text_escaping_keeps_math(text, tex):
    assert tex_text(text) == tex


def test_markdown_escaping_keeps_math():
    assert md_text(Text("a*b_c ", x()[i] ** 2)) == r"a\*b\_c $x_{i}^{2}$"
    assert md_text("costs $5 * 2") == r"costs \$5 \* 2"


# ---------------------------------------------------------------- the source's order
def _seed_display(label: str) -> str:
    from ntksym.derive.loader import load_derivation, package_derivations_dir

    seed = load_derivation(package_derivations_dir() / "seed.py")
    return " ".join(statement_lines(seed.step(label).printed))


@pytest.mark.parametrize(
    ("label", "first", "then"),
    [
        # x before x' (SymPy sorts the primed factor first)
        ("9", r"\tilde{\alpha}^{(l + 1)}_{k}(x)", r"\tilde{\alpha}^{(l + 1)}_{k'}(x')"),
        ("12.2", r"\sigma\left(g(x)\right)", r"\sigma\left(g(x')\right)"),
        ("24.2", r"\dot{\sigma}\left(g(x)\right)", r"\dot{\sigma}\left(g(x')\right)"),
        # the recursion as the seed writes it: Theta_inf Sigmadot delta + Sigma delta
        ("26", r"\Theta_{\infty}^{(L)}(x,x') \dot{\Sigma}^{(L + 1)}", r"+ \Sigma^{(L + 1)}"),
        (
            "27",
            r"\left(\Theta_{\infty}^{(L)}(x,x') \dot{\Sigma}",
            r"+ \Sigma^{(L + 1)}(x,x')\right)",
        ),
    ],
)
def test_seed_displays_keep_the_source_term_order(label, first, then):
    shown = _seed_display(label)
    assert first in shown and then in shown, shown
    assert shown.index(first) < shown.index(then), shown


def test_reading_order_only_permutes_and_leaves_other_products_alone():
    from ntksym.notes.order import reading_order_factors, reading_order_terms

    g, gp = sp.Symbol("g(x)"), sp.Symbol("g(x')")
    twins = [sigma(gp), sigma(g)]
    assert reading_order_factors(twins, notes_latex) == [sigma(g), sigma(gp)]
    kernels = [Sigma_dot(L + 1), Theta_inf(L)]
    assert reading_order_factors(kernels, notes_latex) == [Theta_inf(L), Sigma_dot(L + 1)]
    plain = [beta, sigma(g), W(l)[k, i]]  # nothing to reorder: SymPy's order is kept
    assert reading_order_factors(plain, notes_latex) == plain
    terms = [Sigma(L + 1), Sigma_dot(L + 1) * Theta_inf(L)]
    assert reading_order_terms(terms) == terms[::-1]
    assert reading_order_terms([beta**2, Sigma(l)]) == [beta**2, Sigma(l)]  # beta has no layer
    assert reading_order_terms([Sigma(l), Sigma(L)]) == [Sigma(l), Sigma(L)]  # l, L: no order
    # printing in the reading order never changes the statement that is printed
    stmt = sp.Eq(Theta(L + 1, k, kp), Sigma(L + 1) + Sigma_dot(L + 1) * Theta_inf(L))
    before = sp.srepr(stmt)
    notes_latex(stmt)
    assert sp.srepr(stmt) == before
