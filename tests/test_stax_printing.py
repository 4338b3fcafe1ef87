"""A description printed as mathematics: the equations' content, an independent numerical
evaluation of the printed recursion's structure, and the LaTeX compiling."""

import shutil
import subprocess

import numpy as np
import pytest

from ntksym import stax
from ntksym.architecture import printing
from ntksym.errors import InputError

RNG = np.random.default_rng(8)
X = RNG.standard_normal((3, 4))

BLOCK = stax.serial(
    stax.FanOut(2),
    stax.parallel(stax.serial(stax.Erf(), stax.Dense(32, 1.2, 0.1)), stax.Identity()),
    stax.FanInSum(),
    stax.LayerNorm(eps=0.05),
)
NETS = {
    "residual": stax.serial(
        stax.Dense(32, 1.1), stax.repeat(BLOCK, 2), stax.Cos(0.9, 1.2, 0.2), stax.Dense(1)
    ),
    "standard-dropout": stax.serial(
        stax.Dense(32, 1.3, 0.2, parameterization="standard", s=(1, 2)),
        stax.Sin(1.0, 0.8, 0.3),
        stax.Dropout(0.6),
        stax.Dense(16, 0.9, 0.1, parameterization="standard", s=(3, 1)),
        stax.Erf(),
        stax.Dropout(0.5, mode="test"),
        stax.Dense(1, 1.1, None, parameterization="standard"),
    ),
}

GH_Z, GH_W = np.polynomial.hermite_e.hermegauss(120)
GH_W = GH_W / GH_W.sum()


def expectation(f, g, s11, s12, s22):
    """E[f(u) g(v)] for (u, v) ~ N(0, [[s11, s12], [s12, s22]]) by product Gauss-Hermite."""
    z1, z2 = np.meshgrid(GH_Z, GH_Z, indexing="ij")
    u = np.sqrt(s11) * z1
    v = s12 / np.sqrt(s11) * z1 + np.sqrt(max(s22 - s12 * s12 / s11, 0.0)) * z2
    return float(np.einsum("i,j,ij->", GH_W, GH_W, f(u) * g(v)))


def evaluate_steps(steps, x, y, same):
    """Walk the printed steps for one pair: ``(s11, s22, s12, theta)`` per value."""
    vals = {}
    for st in steps:
        key = (st.index, st.tilde)
        if st.kind == "input":
            vals[key] = (x @ x / len(x), y @ y / len(y), x @ y / len(x), 0.0)
            continue
        ins = [vals[s] for s in st.sources]
        s11, s22, s12, th = ins[0]
        lay = st.layer
        if st.kind == "sum":
            vals[key] = tuple(sum(v[i] for v in ins) for i in range(4))
        elif st.kind == "dense":
            w2, b2 = lay.w_std**2, lay.b2
            new = (w2 * s11 + b2, w2 * s22 + b2, w2 * s12 + b2)
            if lay.parameterization == "ntk":
                theta = w2 * th + new[2]
            else:
                theta = w2 * th + st.n_in / lay.s[0] * s12 + (lay.b_std is not None)
            vals[key] = (*new, theta)
        elif st.kind == "activation":
            f, df = lay.activation.numpy, lay.activation.numpy_derivative
            k11 = expectation(f, f, s11, s11, s11)
            k22 = expectation(f, f, s22, s22, s22)
            k12 = expectation(f, f, s11, s12, s22)
            dot = expectation(df, df, s11, s12, s22)
            vals[key] = (k11, k22, k12, 0.0 if lay.zero_ntk else th * dot)
        elif st.kind == "layer_norm":
            d = np.sqrt((lay.eps + s11) * (lay.eps + s22))
            vals[key] = (s11 / (lay.eps + s11), s22 / (lay.eps + s22), s12 / d, th / d)
        else:
            r = 1 / lay.rate
            g = r if same else 1.0
            vals[key] = (r * s11, r * s22, g * s12, g * th)
    return vals[(steps[-1].index, steps[-1].tilde)]


@pytest.mark.parametrize("name", list(NETS))
def test_printed_recursion_evaluates_to_the_kernel(name):
    """The recursion's steps, evaluated here by quadrature, give kernel_fn's Gram matrices."""
    net = NETS[name]
    steps = printing.recursion(net.description, X.shape[1]).steps
    K = net.kernel_fn(X)
    for i in range(len(X)):
        for j in range(i, len(X)):
            _, _, nngp, ntk = evaluate_steps(steps, X[i], X[j], i == j)
            assert abs(nngp - K.nngp[i, j]) < 1e-9 * np.abs(K.nngp).max(), (i, j)
            assert abs(ntk - K.ntk[i, j]) < 1e-9 * np.abs(K.ntk).max(), (i, j)


def test_a_wrong_structure_is_seen():
    """Printing the Dropout as an identity changes the value: the check has power."""
    net = NETS["standard-dropout"]
    steps = printing.recursion(net.description, X.shape[1]).steps
    K = net.kernel_fn(X)
    wrong = [
        printing.Step("sum", s.index, s.tilde, s.sources) if s.kind == "dropout" else s
        for s in steps
    ]
    assert abs(evaluate_steps(steps, X[0], X[0], True)[2] - K.nngp[0, 0]) < 1e-9
    assert abs(evaluate_steps(wrong, X[0], X[0], True)[2] - K.nngp[0, 0]) > 1e-3


def test_seed_network_prints_the_seed_recursion():
    net = stax.serial(
        stax.Dense(64, 1.3, 0.2), stax.Relu(), stax.Dense(64, 1.3, 0.2), stax.Relu(), stax.Dense(1)
    )
    layers = net.equations().text().splitlines()
    assert layers[1] == "alpha~[1] = 1.3/sqrt(n0) W[0] alpha[0] + 0.2 b[0]"
    assert layers[2] == "alpha[1] = phi1(alpha~[1]), phi1(u) = Max(0, u)"
    assert layers[3] == "alpha~[2] = 1.3/sqrt(64) W[1] alpha[1] + 0.2 b[1]"
    assert layers[-1] == "f(x) = alpha~[3]"
    rec = net.recursion(5).text().splitlines()
    assert rec[0] == "Sigmabar[0](x, x') = x . x' / 5"
    assert "Sigma[2] = 1.3^2 Sigmabar[1] + 0.2^2" in rec
    assert "Theta[2] = 1.3^2 Thetabar[1] + Sigma[2]" in rec
    assert "Thetabar[1] = Theta[1] Sigmadot[1]" in rec
    assert rec[-1] == "NNGP = Sigma[3], NTK = Theta[3]"
    tex = net.latex()
    assert r"\tilde{\alpha}^{(2)} &= \frac{1.3}{\sqrt{64}}W^{(1)} \alpha^{(1)}" in tex
    assert r"\max\left(0, u\right)" in tex


def test_standard_layers_print_their_laws_and_widths():
    rec = NETS["standard-dropout"].recursion(4).text()
    assert "Theta[1] = 1.3^2 Thetabar[0] + 4 Sigmabar[0] + 1" in rec
    assert "Theta[3] = 0.9^2 Thetabar[2] + (64/3) Sigmabar[2] + 1" in rec
    assert "(1 + (1/0.6 - 1) delta(x, x'))" in rec
    eqs = NETS["standard-dropout"].equations(4).text()
    assert "W[0]_ij ~ N(0, 1.3^2/4), b[0]_i ~ N(0, 0.2^2)" in eqs
    assert "1/sqrt(3) W[2] alpha[2] + b[2], W[2]_ij ~ N(0, 0.9^2 * 3/64)" in eqs
    assert "Bernoulli(0.6)" in eqs and "Bernoulli(0.5)" not in eqs  # test mode: identity


def test_branching_outputs_are_refused():
    with pytest.raises(InputError, match="ends in 2"):
        printing.latex(stax.serial(stax.Dense(3), stax.FanOut(2)).description)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="needs pdflatex")
def test_latex_compiles(tmp_path):
    body = "\n".join(
        part
        for net in NETS.values()
        for part in (net.latex(), net.recursion().latex(), net.recursion(4).latex())
    )
    doc = (
        "\\documentclass{article}\n\\usepackage{amsmath,amssymb}\n\\begin{document}\n"
        f"{body}\n\\end{{document}}\n"
    )
    (tmp_path / "net.tex").write_text(doc, encoding="utf-8")
    run = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "net.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:]
    assert (tmp_path / "net.pdf").stat().st_size > 1000
