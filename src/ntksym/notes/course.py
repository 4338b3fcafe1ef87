"""The course around the steps: chapters, theorem statements, one sentence per step.

The engine checks statements; a course also says what they are for. This module holds
the words the notes add to a derivation, keyed by the derivation's name: how its steps
group into chapters, the theorem each chapter proves (hypotheses, conclusion, kind of
convergence), one sentence per step, and the limit in which a step holds when the
source writes it as an equality. Displayed equations are never written here: a theorem
names the steps whose statements it displays, and the notes print those statements from
the derivation being rendered. A derivation without an entry gets one generic chapter.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ntksym.derive.text import Tex, Text

__all__ = [
    "Chapter",
    "RULE_TEXT",
    "chapters_for",
    "limit_of",
    "rule_text",
    "step_sentence",
]


def _w(*parts: str) -> Text:
    """Words and formulas alternating: words, LaTeX, words, ... (LaTeX as its own plain form)."""
    return Text(*(Tex(p, p) if n % 2 else p for n, p in enumerate(parts) if p))


#: Each rule in mathematical language (never the name of a routine).
RULE_TEXT: dict[str, Text] = {
    "definition": Text("definition"),
    "hypothesis": Text("hypothesis of the argument"),
    "algebra": Text("algebra: expanding and collecting terms"),
    "chain_rule": Text("chain rule for partial derivatives"),
    "delta_sum": _w("summing Kronecker deltas: ", r"\sum_j \delta_{jk} a_j = a_k"),
    "expectation": Text(
        "linearity of expectation, independence of the parameters and their Gaussian moments"
    ),
    "gaussian_moments": Text("moments of independent Gaussians (Wick/Isserlis theorem)"),
    "gaussian_process": Text(
        "the previous layer is a centred Gaussian process in the limit (induction hypothesis)"
    ),
    "independence": _w("independence: ", r"\mathbb{E}[AB] = \mathbb{E}[A]\,\mathbb{E}[B]"),
    "induction_hypothesis": Text("induction hypothesis on the depth"),
    "law_of_large_numbers": Text(
        "law of large numbers for an average of independent, identically distributed terms"
    ),
    "linearity": Text("linearity of expectation"),
    "outer_product": _w("outer product of column vectors: ", r"(u\otimes v)_{rc} = u_r v_c"),
    "parameter_sum": Text("linearity of the sum over parameters"),
}


def rule_text(rule: str) -> Text:
    """The rule ``rule`` in mathematical language (its name when it has no entry)."""
    return RULE_TEXT.get(rule, Text(rule.replace("_", " ")))


@dataclass(frozen=True)
class Chapter:
    """A chapter of the notes: a theorem (or a setting) and the steps that prove it.

    Attributes:
        key: short identifier (LaTeX label); title: the heading.
        labels: the step labels the chapter shows, in order (empty: every step).
        intro: words before the theorem.
        theorem: the theorem's name (empty for a chapter without a theorem).
        hypotheses: what the theorem assumes, one item each.
        conclusion: what it asserts, naming the displays of ``shows``.
        convergence: the kind of convergence and the limit taken.
        shows: step labels whose statements the theorem displays.
    """

    key: str
    title: str
    labels: tuple[str, ...] = ()
    intro: Text = field(default_factory=Text)
    theorem: str = ""
    hypotheses: tuple[Text, ...] = ()
    conclusion: Text = field(default_factory=Text)
    convergence: Text = field(default_factory=Text)
    shows: tuple[str, ...] = ()


_GAUSS = _w(
    "all weights ", r"w^{(l)}_{ki}", " and biases ", r"b^{(l)}_k",
    " are independent standard normal variables (NTK parameterization: the factor ",
    r"1/\sqrt{n_l}", " sits in the forward pass)",
)  # fmt: skip
_SEQ = _w(
    "the hidden widths grow one after the other, ", r"n_1\to\infty", ", then ",
    r"n_2\to\infty", ", and so on up to ", r"n_{L-1}\to\infty", " (the sequential limit)",
)  # fmt: skip

_SEED = (
    Chapter(
        "setting",
        "Setting: the network and its tangent kernel",
        ("1", "2", "3", "4", "5", "6.1", "6.2", "6.3", "6.4"),
        intro=_w(
            "The network of depth ",
            "L",
            " is defined layer by layer by (1)--(4); its "
            "neural tangent kernel (5)--(6) is the Gram matrix of the output's gradients "
            "with respect to all parameters.",
        ),
    ),
    Chapter(
        "nngp",
        "The output at initialisation is a Gaussian process",
        ("7", "8", "9", "10", "11", "12", "12.2"),
        intro=Text(
            "Each output unit is a sum of many independent contributions; the central "
            "limit theorem makes it Gaussian, and the law of large numbers makes its "
            "covariance deterministic. The argument is an induction on the depth."
        ),
        theorem="Theorem 1 (the NNGP limit)",
        hypotheses=(
            _GAUSS,
            _w("the activation ", r"\sigma", " is continuous and grows at most polynomially"),
            _SEQ,
        ),
        conclusion=_w(
            "the pre-activations ",
            r"\tilde\alpha^{(l)}_k",
            " of layer ",
            "l",
            " converge in distribution to independent centred Gaussian processes, the same "
            "for every unit ",
            "k",
            ", with the covariance ",
            r"\Sigma^{(l)}",
            " of (10) for the first layer and of the recursion (12.2) after it.",
        ),  # fmt: skip
        convergence=Text("convergence in distribution, in the sequential limit"),
        shows=("10", "12.2"),
    ),
    Chapter(
        "ntk",
        "The tangent kernel at initialisation is deterministic",
        ("13", "14", "15", "16", "17", "18", "19", "20", "21", "22")
        + ("23.1", "23.2", "23.3", "23.4", "23.5", "23.6", "23.7", "23.8")
        + ("24", "24.2", "25", "26", "27"),
        intro=_w(
            "The kernel ",
            r"\Theta^{(L)}",
            " is a sum over all parameters. For the "
            "first layer it is computed exactly; for a deeper network the gradient splits "
            "into the last layer's parameters and the earlier ones, and each part is an "
            "average over the ",
            r"n_L",
            " units of the last hidden layer.",
        ),  # fmt: skip
        theorem="Theorem 2 (the NTK at initialisation)",
        hypotheses=(
            _GAUSS,
            _w(
                "the activation ",
                r"\sigma",
                " is Lipschitz and twice differentiable with a bounded second derivative",
            ),
            _SEQ,
        ),
        conclusion=_w(
            "for every pair of inputs, ",
            r"\Theta^{(L)}_{kk'}(x,x')",
            " converges to ",
            r"\Theta^{(L)}_\infty(x,x')\,\delta_{kk'}",
            ": deterministic, and the same "
            "for every output unit. The first layer is (18); the recursion is (27), with ",
            r"\dot\Sigma^{(l)} = \mathbb{E}[\dot\sigma(u)\dot\sigma(v)]",
            " for the Gaussian pair of Theorem 1.",
        ),  # fmt: skip
        convergence=Text(
            "convergence in probability, in the sequential limit (Jacot et al. 2018, Theorem 1)"
        ),
        shows=("18", "27"),
    ),
)

_LINEARISED = (
    Chapter(
        "training",
        "Training: the linearised network and kernel regression",
        (),
        intro=_w(
            "At infinite width the kernel does not move during training (Jacot et al. "
            "2018, Theorem 2): gradient flow on the parameters becomes gradient flow on the "
            "function values, ",
            r"\partial_t f = -\eta\,\Theta\,\nabla_f \mathcal{L}",
            ", a linear equation when the loss is the squared error. The network then "
            "trains like its first-order Taylor model, which the steps below solve.",
        ),  # fmt: skip
        theorem="Theorem 3 (training dynamics)",
        hypotheses=(
            _w(
                "gradient flow with learning rate ",
                r"\eta",
                " on the squared loss over the training inputs ",
                "X",
            ),
            _w(
                "the kernel on the training inputs, ",
                r"\Theta = \Theta(X,X)",
                ", is positive definite",
            ),  # fmt: skip
            Text(
                "the network stays in its linear regime: exact for the linearised model, "
                "and for the network itself in the infinite-width limit (Lee et al. 2019, "
                "Theorem 2.1)"
            ),
        ),
        conclusion=_w(
            "the training outputs relax exponentially to the targets, (4); at a test "
            "input the output follows (5), and as ",
            r"t\to\infty",
            " it is the kernel-regression predictor (7) with the kernel ",
            r"\Theta",
            ". Averaged over initialisations the mean prediction is (6).",
        ),  # fmt: skip
        convergence=_w(
            "exact for the linearised model at every time ",
            "t",
            "; for the network, uniformly in time as the widths grow",
        ),
        shows=("4", "7"),
    ),
)

_CHAPTERS: dict[str, tuple[Chapter, ...]] = {"seed": _SEED, "linearised": _LINEARISED}


def chapters_for(name: str, title: Text) -> tuple[Chapter, ...]:
    """The chapters of derivation ``name`` (one chapter of all its steps if unknown)."""
    if name in _CHAPTERS:
        return _CHAPTERS[name]
    return (Chapter(name, str(title)),)


_SEED_SENTENCES: dict[str, Text] = {
    "1": Text("The input layer is the input itself."),
    "2": Text("Each pre-activation is a scaled sum over the previous layer's units plus a bias."),
    "3": _w("The activations apply ", r"\sigma", " to each pre-activation."),
    "4": Text("The network's output is the last layer's pre-activation."),
    "5": Text(
        "The tangent kernel sums, over all parameters, the product of the output's "
        "partial derivatives at the two inputs."
    ),
    "6.1": Text("The same sum written as an outer product of gradient columns."),
    "6.2": Text("The gradient columns written by their entries."),
    "6.3": Text("The outer product written out: its first row."),
    "6.4": Text("Its last row; every entry has the form of (5)."),
    "7": Text("The definition (2) once more, the starting point of the induction."),
    "8": Text("The weights and biases have mean zero, so every pre-activation has mean zero."),
    "9": Text(
        "Different units use independent rows of weights, so they are uncorrelated; "
        "jointly Gaussian, they are independent."
    ),
    "10": _w(
        "For the first layer the covariance is computed exactly: it is ", r"\Sigma^{(1)}", "."
    ),  # fmt: skip
    "11": _w(
        "Given the earlier layers, the covariance of layer ",
        "l+1",
        " is an average over the ",
        "n_l",
        " units of layer ",
        "l",
        ".",
    ),  # fmt: skip
    "12": Text("By the law of large numbers the average tends to its expectation."),
    "12.2": _w(
        "By the induction hypothesis layer ",
        "l",
        " is Gaussian with covariance ",
        r"\Sigma^{(l)}",
        ": the expectation is a two-dimensional Gaussian integral.",
    ),
    "13": Text("The first layer's pre-activations, the base case of the NTK."),
    "14": Text("Each pre-activation depends on one row of first-layer weights."),
    "15": _w("Products of the weight derivatives at ", "x", " and ", "x'", "."),
    "16": Text("The same for the biases."),
    "17": _w(
        "Summing over all first-layer parameters; the ", r"\delta", "s collapse the sums."
    ),  # fmt: skip
    "18": Text("The first layer's kernel is the covariance (10), times the identity."),
    "19": _w(
        "The induction hypothesis: the claim holds for the network of depth ",
        "L",
        ". The source writes the limit as ",
        r"n_L\to\infty",
        "; for that network the widths that grow are ",
        r"n_1,\dots,n_{L-1}",
        ".",
    ),  # fmt: skip
    "20": Text("The layer added on top of the network of depth L."),
    "21": Text("The chain rule through the new layer, for a parameter of the earlier layers."),
    "22": Text("The product of the two derivatives."),
    "23.1": Text("Summing over the earlier parameters."),
    "23.2": Text("The sum over parameters moves inside the sums over units."),
    "23.3": Text("The inner sum is the kernel of the network of depth L."),
    "23.4": Text("Which tends to its limit by the induction hypothesis (19)."),
    "23.5": _w("The ", r"\delta_{ii'}", " of the limit collapses one sum over units."),
    "23.6": Text("Rearranged."),
    "23.7": Text("Rearranged."),
    "23.8": Text("The form in which the law of large numbers applies."),
    "24": _w("An average over the ", "n_L", " units tends to its expectation."),
    "24.2": Text("Independent weights of the last layer leave their second moment."),
    "25": Text("The last layer's own parameters give the covariance of the new layer."),
    "26": Text("The two parts add up."),
    "27": Text("Collected: the recursion for the limiting kernel."),
}

_LINEARISED_SENTENCES: dict[str, Text] = {
    "1": Text("The network replaced by its first-order Taylor model around initialisation."),
    "2": Text("Gradient flow on the parameters, with the chain rule through the model."),
    "3": _w(
        "Multiplying by the Jacobian turns it into a flow of the outputs, with ",
        r"\Theta = JJ^{\mathsf T}",
        ".",
    ),  # fmt: skip
    "4": Text("A linear equation with constant coefficients, solved by the exponential."),
    "5": Text("At a test input the output moves by the kernel between it and the data."),
    "6": Text("Averaged over initialisations: the mean and covariance of the prediction."),
    "7": Text("At infinite time: kernel regression, interpolating the training targets."),
}

_SENTENCES = {"seed": _SEED_SENTENCES, "linearised": _LINEARISED_SENTENCES}


def step_sentence(name: str, label: str) -> Text:
    """The sentence saying what step ``label`` of derivation ``name`` does (may be empty)."""
    return _SENTENCES.get(name, {}).get(label, Text())


#: Steps the source writes as equalities although they hold only in a limit.
_LIMITS: dict[str, dict[str, Tex]] = {
    "seed": {
        "19": Tex(r"n_1,\dots,n_{L-1}\to\infty", "n_1, ..., n_{L-1} -> oo"),
        "26": Tex(r"n_1,\dots,n_{L}\to\infty", "n_1, ..., n_L -> oo"),
        "27": Tex(r"n_1,\dots,n_{L}\to\infty", "n_1, ..., n_L -> oo"),
    },
}


def limit_of(name: str, label: str) -> Tex | None:
    """The limit in which step ``label`` holds, when the source leaves it implicit."""
    return _LIMITS.get(name, {}).get(label)
