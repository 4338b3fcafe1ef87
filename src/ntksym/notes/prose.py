"""The notes' running prose (motivation, notation, limitations), shared by every format.

Paragraphs are :class:`~ntksym.derive.text.Text` (words and inline formulas), so the
LaTeX and the Markdown templates print the same words. No displayed equation is written
here: displays come from the derivations.
"""

from __future__ import annotations

from ntksym.derive.text import Tex, Text

__all__ = ["LIMITATIONS", "MOTIVATION", "NOTATION", "PARAMETERIZATION", "REFERENCES"]


def _w(*parts: str) -> Text:
    """Words and formulas alternating: words, LaTeX, words, ... (LaTeX as its own plain form)."""
    return Text(*(Tex(p, p) if n % 2 else p for n, p in enumerate(parts) if p))


MOTIVATION: tuple[Text, ...] = (
    _w(
        "Train a network ", r"f_\theta", " by gradient flow on a loss ", r"\mathcal{L}",
        " of its outputs on the training inputs ", "X",
        ". The parameters move along ", r"-\partial_\theta\mathcal{L}",
        ", and by the chain rule the outputs move along ",
        r"\partial_t f_\theta(x) = -\eta\,\Theta(x,X)\,\nabla_f\mathcal{L}",
        ", where ", r"\Theta(x,x') = \sum_p \partial_{\theta_p} f(x)\,\partial_{\theta_p} f(x')",
        " is the neural tangent kernel (NTK). In function space, training is a kernel "
        "gradient descent with the kernel ", r"\Theta", ".",
    ),
    _w(
        "In general ", r"\Theta", " is random (it depends on the initial parameters) and "
        "changes during training. As the widths of the hidden layers grow it becomes "
        "deterministic (Theorem 2) and constant in time; with the squared loss the "
        "dynamics are then linear and solved in closed form, and the trained network is "
        "kernel regression with the kernel ", r"\Theta_\infty", " (Theorem 3). Before "
        "training, the same limit makes the network a Gaussian process (Theorem 1), the "
        "neural-network Gaussian process (NNGP) of the initial function.",
    ),
    Text(
        "These notes follow the derivation of Y. Chen's lecture notes (2020), keep their "
        "equation numbers, and show each step as the source printed it. Each step was "
        "derived again from the definitions by a rule stated next to it and checked; where "
        "the source has a slip, the printed and the corrected statement stand side by side "
        "with the difference marked."
    ),
)  # fmt: skip

#: Rows of the notation table: (symbol, meaning).
NOTATION: tuple[tuple[Tex, Text], ...] = (
    (Tex("L", "L"), Text("number of affine layers (depth)")),
    (Tex("n_l", "n_l"), _w("width of layer ", "l", "; ", "n_0", " is the input dimension")),
    (Tex(r"x,\ x'", "x, x'"), _w("two inputs in ", r"\mathbb{R}^{n_0}")),
    (Tex(r"w^{(l)}_{ki},\ b^{(l)}_k", "w, b"), Text("weights and biases of layer l")),
    (Tex(r"\theta", "theta"), Text("all parameters, indexed by p")),
    (Tex(r"\beta", "beta"), Text("scale of the biases")),
    (
        Tex(r"\tilde\alpha^{(l)}_k(x)", "alpha~"),
        _w("pre-activation of unit ", "k", " of layer ", "l"),
    ),  # fmt: skip
    (Tex(r"\alpha^{(l)}_k(x)", "alpha"), _w("activation: ", r"\sigma(\tilde\alpha^{(l)}_k)")),
    (Tex(r"\sigma,\ \dot\sigma", "sigma"), Text("the activation function and its derivative")),
    (Tex(r"\Sigma^{(l)}(x,x')", "Sigma"), Text("limiting covariance of layer l (NNGP kernel)")),
    (
        Tex(r"\dot\Sigma^{(l)}(x,x')", "Sigma dot"),
        _w("the same covariance for ", r"\dot\sigma"),
    ),  # fmt: skip
    (
        Tex(r"\Theta^{(l)}_{kk'}(x,x')", "Theta"),
        _w("tangent kernel of the first ", "l", " layers, outputs ", "k, k'"),
    ),  # fmt: skip
    (Tex(r"\Theta^{(l)}_\infty(x,x')", "Theta_inf"), Text("its limit as the widths grow")),
    (Tex(r"\delta_{kk'}", "delta"), Text("Kronecker delta")),
)

PARAMETERIZATION = _w(
    "NTK versus standard parameterization: here the weights have unit variance and the "
    "factor ", r"1/\sqrt{n_l}", " sits in the forward pass. In the standard "
    "parameterization the weights are drawn with variance ", r"\sigma_w^2/n_l",
    " instead. Both give the same network at initialisation and the same NNGP kernel, "
    "but the standard parameterization's tangent kernel grows with the width unless the "
    "learning rates are scaled layer by layer.",
)  # fmt: skip

LIMITATIONS: tuple[Text, ...] = (
    _w(
        "Finite width. At width ", "n", " the kernel fluctuates around its limit by ",
        r"O(n^{-1/2})", " (the figure of the previous section) and drifts during training "
        "by ", r"O(n^{-1/2})", " as well; finite-width corrections change both the "
        "predictions and their uncertainty.",
    ),
    Text(
        "No feature learning. A constant kernel means the hidden representations do not "
        "adapt to the data: in this regime (lazy training) the network is no better than "
        "the kernel method it converges to. Networks that learn features leave the regime, "
        "for instance under the mean-field scaling."
    ),
    _w(
        "Sequential limits. The proofs here take ", r"n_1\to\infty", " first, then ",
        r"n_2\to\infty", ", and so on. The same limits hold when all widths grow together "
        "(Yang 2019; Arora et al. 2019), but that needs a different argument.",
    ),
    Text(
        "Gradient flow and the squared loss. Discrete steps need a learning rate below "
        "2 over the largest eigenvalue of the kernel; for other losses the dynamics are "
        "not linear and have no closed form."
    ),
)  # fmt: skip

#: The bibliography of every format: (key, entry). The closed forms of the dual-kernel
#: table cite these works by author; each was checked against what it contains.
REFERENCES: tuple[tuple[str, Text], ...] = (
    ("jacot2018", Text(
        "A. Jacot, F. Gabriel, C. Hongler. Neural tangent kernel: convergence and "
        "generalization in neural networks. NeurIPS 2018."
    )),
    ("lee2018", Text(
        "J. Lee, Y. Bahri, R. Novak, S. S. Schoenholz, J. Pennington, J. Sohl-Dickstein. "
        "Deep neural networks as Gaussian processes. ICLR 2018."
    )),
    ("lee2019", Text(
        "J. Lee, L. Xiao, S. S. Schoenholz, Y. Bahri, R. Novak, J. Sohl-Dickstein, "
        "J. Pennington. Wide neural networks of any depth evolve as linear models under "
        "gradient descent. NeurIPS 2019."
    )),
    ("arora2019", Text(
        "S. Arora, S. S. Du, W. Hu, Z. Li, R. Salakhutdinov, R. Wang. On exact computation "
        "with an infinitely wide neural net. NeurIPS 2019."
    )),
    ("yang2019", Text(
        "G. Yang. Scaling limits of wide neural networks with weight sharing. 2019."
    )),
    ("chosaul2009", Text(
        "Y. Cho, L. K. Saul. Kernel methods for deep learning. NIPS 2009 (the arc-cosine "
        "kernels: ReLU, leaky ReLU, absolute value, step, sign)."
    )),
    ("williams1997", Text(
        "C. K. I. Williams. Computing with infinite networks. NIPS 1997 (the erf kernel)."
    )),
    ("tsuchida2021", Text(
        "R. Tsuchida, T. Pearce, C. van der Heide, F. Roosta, M. Gallagher. Avoiding kernel "
        "fixed points: computing with ELU and GELU infinite networks. AAAI 2021 (the GELU "
        "kernel)."
    )),
    ("novak2020", Text(
        "R. Novak, L. Xiao, J. Hron, J. Lee, A. A. Alemi, J. Sohl-Dickstein, S. S. Schoenholz. "
        "Neural Tangents: fast and easy infinite neural networks in Python. ICLR 2020 (its "
        "layers Exp, Gaussian, Sin and Cos implement the closed forms derived here)."
    )),
    ("rahimi2007", Text(
        "A. Rahimi, B. Recht. Random features for large-scale kernel machines. NIPS 2007 "
        "(random Fourier features: the cos(u - v) part of the sin and cos kernels)."
    )),
    ("price1958", Text(
        "R. Price. A useful theorem for nonlinear devices having Gaussian inputs. IRE "
        "Transactions on Information Theory 4, 1958."
    )),
    ("isserlis1918", Text(
        "L. Isserlis. On a formula for the product-moment coefficient of any order of a "
        "normal frequency distribution in any number of variables. Biometrika 12, 1918."
    )),
    ("chen2020", Text(
        "Y. Chen. NTK derivation (lecture notes, 2020): the source whose equation numbers "
        "these notes keep."
    )),
)  # fmt: skip
