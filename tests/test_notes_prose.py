"""The engine's ASCII formulas become real mathematics in the notes; the terminal stays plain."""

import re

import pytest

from ntksym.derive.plain import plain_text
from ntksym.notes.build import md_text, tex_text
from ntksym.notes.prose import ascii_math, prose_math, rename_machine_indices

CASES = [
    # (engine text, the mathematics it must contain)
    ("independence of w^(l) from alpha^(l)", [r"$w^{(l)}$", r"$\alpha^{(l)}$"]),
    ("E[F(alpha~^(m)_i(x))] uses Sigma~^(2)", [r"\tilde\alpha^{(m)}_i(x)", r"\tilde\Sigma^{(2)}"]),
    (
        "``(1/n) sum_{i=1}^n g_i -> E[g_i]`` (i.i.d.)",
        [r"$\frac1n\sum_{i=1}^n g_i \to \mathbb{E}[g_i]$"],
    ),
    ("holds when n_1, ..., n_{l-1} -> oo sequentially", [r"$n_1, \dots, n_{l-1} \to \infty$"]),
    (
        "rate -0.513 +- 0.020 (chi2/dof 1.39; accepted if |rate + 1/2| <= 3 s.e. + 0.02)",
        [
            r"$\text{rate} = -0.513 \pm 0.020$",
            r"$\chi^2/\mathrm{dof} = 1.39$",
            r"$\lvert\text{rate} + \tfrac12\rvert \le 3\,\text{s.e.} + 0.02$",
        ],
    ),
    (
        "exact (vs J(x) J(x')^T) at L=1 n=(2,3); L=2 n=(1,2,2)",
        [r"$J(x) J(x')^{\mathsf T}$)", r"$L=1,\ n=(2,3)$", r"$L=2,\ n=(1,2,2)$"],
    ),
    (
        "Sigma^(1) (x) I_{n_1} read entrywise as Sigma^(1) delta_kk'",
        [r"$\Sigma^{(1)} \otimes I_{n_1}$", r"$\Sigma^{(1)} \delta_{kk'}$"],
    ),
    (
        "(19): ``Theta^(L)_{ii'} -> Theta_inf^(L) delta_{ii'}`` for the smaller network",
        [r"$\Theta^{(L)}_{ii'} \to \Theta_\infty^{(L)} \delta_{ii'}$"],
    ),
    (
        "E is over w^(l), b^(l) given the earlier layers; the sigma form needs l >= 1",
        [r"$\mathbb{E}$ is over $w^{(l)}, b^{(l)}$ given", r"the $\sigma$ form", r"$l \ge 1$"],
    ),
    (
        "printed fails at L=1 n=(1,2,1) k=1, k'=1, theta_p=W[0][1, 1]; worst rel. diff 3.8e-26",
        [r"$L=1,\ n=(1,2,1),\ k=1,\ k'=1$", r"$\theta_p = w^{(0)}_{11}$", r"$3.8\times 10^{-26}$"],
    ),
    ("w, b i.i.d. N(0, 1)", [r"$w, b$ i.i.d. $\mathcal{N}(0, 1)$"]),
]


@pytest.mark.parametrize(("text", "wanted"), CASES)
def test_ascii_formulas_become_math(text, wanted):
    out = prose_math(text)
    for w in wanted:
        assert w in out, (w, out)
    # nothing of the ASCII spelling is left outside the mathematics
    words = re.sub(r"\$[^$]+\$", " ", out)
    for bad in ("alpha", "Sigma", "^(", "->", " oo", "+-", "chi2", "|", "<=", ">=", "~"):
        assert bad not in words, (bad, out)


def test_ordinary_words_are_left_alone():
    for text in (
        "Linearity, then independence, then Gaussian moments, then delta sums",
        "the input layer",
        "Evaluate every ``Derivative`` by SymPy's chain rule",
        "zero covariance is read as independence: true for jointly Gaussian variables",
        "a sum over p moves into entries",
    ):
        out = prose_math(text)
        assert (
            re.sub(r"\$[^$]+\$", "", out).split()[:3] == re.sub(r"\$[^$]+\$", "", text).split()[:3]
        )
    assert prose_math("then delta sums").endswith("delta sums")
    assert "$" not in prose_math("Kronecker deltas inside sums; the input layer")
    assert prose_math("a sum over p moves") == "a sum over $p$ moves"


def test_math_already_written_is_kept_and_machine_indices_renamed():
    text = (
        r"term: $\delta_{i's_{0}}$ printed, $\sum_{s_{0}=1}^{n_{L}} w_{ks_{0}}$ derived; "
        r"at n_{L}=2, i'=1"
    )
    out = prose_math(text)
    assert "s_{0}" not in out
    assert r"$\delta_{i'j}$" in out and r"\sum_{j=1}^{n_{L}} w_{kj}" in out
    assert r"$n_{L}=2,\ i'=1$" in out
    # a letter already used as an index is not reused; the preferred letter wins if free
    assert rename_machine_indices(r"$w_{js_{0}} w_{s_{0'}}$") == r"$w_{jm} w_{m'}$"
    assert rename_machine_indices(r"$w_{s_{0}}$", prefer=["q"]) == r"$w_{q}$"
    assert rename_machine_indices("no math s_{0}") == "no math s_{0}"


def test_tex_and_markdown_escape_the_rest():
    out = prose_math("the n_l terms are i.i.d. with 100% & more #1")
    tex = tex_text(out)
    assert "$n_l$" in tex and r"\%" in tex and r"\&" in tex and r"\#" in tex
    md = md_text(out)
    assert "$n_l$" in md and r"\#" in md


def test_known_formula_of_the_dual_table():
    tex = ascii_math(
        "E[exp(b'w - w'Aw/2)] = det(I+Sigma A)^(-1/2) exp(b'(I+Sigma A)^(-1) Sigma b/2)"
    )
    assert tex.startswith(r"\mathbb{E}") and r"\det(I+\Sigma A)^{-1/2}" in tex


def test_terminal_text_has_no_dollars():
    text = (
        r"index: $\tilde{\alpha}_{k}^{(l)}(x)$ printed, $\dot{\sigma}\left(y\right)$, "
        r"$\sum_{j=1}^{n_{L}} \delta_{i\ldots}$ derived"
    )
    out = plain_text(text)
    assert "$" not in out and "\\" not in out
    assert "alpha~_{k}^{(l)}(x)" in out and "sigma'(y)" in out and "delta_{i...}" in out


def test_verify_table_on_the_seed_has_no_latex(capsys):
    import argparse

    from ntksym.cli.verify import run
    from ntksym.derive.loader import package_derivations_dir

    args = argparse.Namespace(
        paths=[str(package_derivations_dir() / "seed.py")], json=False, quick=True
    )
    assert run(args) == 0
    out = capsys.readouterr().out
    explanations = [ln for ln in out.splitlines() if ln.strip().startswith("->")]
    assert explanations
    for ln in explanations:
        assert "$" not in ln and "\\" not in ln, ln
