"""Tables of the LaTeX-to-MathML converter: what each command of the notes' subset means.

MathML Core (what Chromium renders natively) has no ``mathvariant`` other than
``normal``, so blackboard, calligraphic, sans-serif and bold letters are the Unicode
mathematical alphanumeric characters, as the MathML Core specification recommends.
"""

from __future__ import annotations

__all__ = [
    "ACCENTS",
    "BIG",
    "DELIMITERS",
    "FUNCTIONS",
    "IDENTIFIERS",
    "LARGE_OPERATORS",
    "OPERATORS",
    "SPACES",
    "styled",
]

#: Letters, Greek and other identifiers: command -> character.
IDENTIFIERS: dict[str, str] = {
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ϵ",
    "varepsilon": "ε", "zeta": "ζ", "eta": "η", "theta": "θ", "vartheta": "ϑ",
    "iota": "ι", "kappa": "κ", "lambda": "λ", "mu": "μ", "nu": "ν", "xi": "ξ",
    "pi": "π", "varpi": "ϖ", "rho": "ρ", "varrho": "ϱ", "sigma": "σ", "varsigma": "ς",
    "tau": "τ", "upsilon": "υ", "phi": "ϕ", "varphi": "φ", "chi": "χ", "psi": "ψ",
    "omega": "ω", "Gamma": "Γ", "Delta": "Δ", "Theta": "Θ", "Lambda": "Λ", "Xi": "Ξ",
    "Pi": "Π", "Sigma": "Σ", "Upsilon": "Υ", "Phi": "Φ", "Psi": "Ψ", "Omega": "Ω",
    "infty": "∞", "partial": "∂", "nabla": "∇", "ell": "ℓ", "emptyset": "∅",
    "hbar": "ℏ", "imath": "ı", "jmath": "ȷ",
}  # fmt: skip

#: Operators, relations and punctuation: command -> character.
OPERATORS: dict[str, str] = {
    "cdot": "⋅", "cdots": "⋯", "dots": "…", "ldots": "…", "vdots": "⋮", "ddots": "⋱",
    "times": "×", "div": "÷", "pm": "±", "mp": "∓", "otimes": "⊗", "oplus": "⊕",
    "circ": "∘", "ast": "∗", "star": "⋆", "to": "→", "rightarrow": "→",
    "leftarrow": "←", "Rightarrow": "⇒", "Leftarrow": "⇐", "iff": "⟺",
    "implies": "⟹", "mapsto": "↦", "le": "≤", "leq": "≤", "ge": "≥", "geq": "≥",
    "neq": "≠", "ne": "≠", "approx": "≈", "sim": "∼", "simeq": "≃", "equiv": "≡",
    "propto": "∝", "ll": "≪", "gg": "≫", "in": "∈", "notin": "∉", "subset": "⊂",
    "subseteq": "⊆", "cup": "∪", "cap": "∩", "setminus": "∖", "mid": "∣",
    "wedge": "∧", "land": "∧", "vee": "∨", "lor": "∨", "neg": "¬", "lnot": "¬",
    "forall": "∀", "exists": "∃", "prime": "′", "colon": ":",
    "{": "{", "}": "}", "|": "‖", "_": "_", "%": "%", "#": "#", "&": "&", "$": "$",
}  # fmt: skip

#: Delimiters after ``\left``, ``\right``, ``\bigl`` ...: command -> character.
DELIMITERS: dict[str, str] = {
    "(": "(", ")": ")", "[": "[", "]": "]", "|": "|", "/": "/", ".": "",
    "\\{": "{", "\\}": "}", "\\|": "‖", "\\lvert": "|", "\\rvert": "|",
    "\\lVert": "‖", "\\rVert": "‖", "\\vert": "|", "\\Vert": "‖",
    "\\langle": "⟨", "\\rangle": "⟩", "\\lfloor": "⌊", "\\rfloor": "⌋",
    "\\lceil": "⌈", "\\rceil": "⌉",
}  # fmt: skip

#: Size commands before a delimiter: command -> size in em.
BIG: dict[str, float] = {
    "big": 1.2, "bigl": 1.2, "bigr": 1.2, "bigm": 1.2,
    "Big": 1.6, "Bigl": 1.6, "Bigr": 1.6, "Bigm": 1.6,
    "bigg": 2.1, "biggl": 2.1, "biggr": 2.1, "Bigg": 2.6, "Biggl": 2.6, "Biggr": 2.6,
}  # fmt: skip

#: Function names set upright; the ones in ``LIMIT_FUNCTIONS`` take limits below.
FUNCTIONS: frozenset[str] = frozenset(
    "sin cos tan cot sec csc sinh cosh tanh coth arcsin arccos arctan exp log ln det "
    "dim ker lim max min sup inf arg deg gcd Pr liminf limsup".split()
)

#: Large operators with limits (display) or scripts (inline).
LARGE_OPERATORS: dict[str, str] = {
    "sum": "∑", "prod": "∏", "coprod": "∐", "bigcup": "⋃", "bigcap": "⋂",
    "bigotimes": "⨂", "bigoplus": "⨁", "int": "∫", "iint": "∬", "oint": "∮",
}  # fmt: skip

#: Accents: command -> (character, stretchy).
ACCENTS: dict[str, tuple[str, bool]] = {
    "dot": ("˙", False), "ddot": ("¨", False), "tilde": ("˜", False),
    "hat": ("^", False), "bar": ("¯", False), "vec": ("→", False), "check": ("ˇ", False),
    "breve": ("˘", False), "acute": ("´", False), "grave": ("`", False),
    "widetilde": ("˜", True), "widehat": ("^", True), "overline": ("‾", True),
    "overrightarrow": ("→", True),
}  # fmt: skip

#: Spaces: command -> width in em.
SPACES: dict[str, float] = {
    ",": 3 / 18, ":": 4 / 18, ";": 5 / 18, "!": -3 / 18, " ": 0.25, "quad": 1.0,
    "qquad": 2.0, "enspace": 0.5, "thinspace": 3 / 18, "medspace": 4 / 18,
    "thickspace": 5 / 18, "negthinspace": -3 / 18,
}  # fmt: skip

# first code points of the styled Latin alphabets (capital A, small a)
_ALPHABETS: dict[str, tuple[int, int]] = {
    "mathbb": (0x1D538, 0x1D552),
    "mathcal": (0x1D49C, 0x1D4B6),
    "mathsf": (0x1D5A0, 0x1D5BA),
    "mathbf": (0x1D400, 0x1D41A),
    "boldsymbol": (0x1D400, 0x1D41A),
    "mathfrak": (0x1D504, 0x1D51E),
    "mathtt": (0x1D670, 0x1D68A),
}
# letters that Unicode had encoded before the mathematical alphanumerics block
_HOLES: dict[str, dict[str, str]] = {
    "mathbb": {"C": "ℂ", "H": "ℍ", "N": "ℕ", "P": "ℙ", "Q": "ℚ", "R": "ℝ", "Z": "ℤ"},
    "mathcal": {
        "B": "ℬ", "E": "ℰ", "F": "ℱ", "H": "ℋ", "I": "ℐ", "L": "ℒ", "M": "ℳ", "R": "ℛ",
        "e": "ℯ", "g": "ℊ", "o": "ℴ",
    },
    "mathfrak": {"C": "ℭ", "H": "ℌ", "I": "ℑ", "R": "ℜ", "Z": "ℨ"},
}  # fmt: skip
_DIGITS: dict[str, int] = {"mathbb": 0x1D7D8, "mathsf": 0x1D7E2, "mathbf": 0x1D7CE}


def styled(command: str, text: str) -> str | None:
    """``text`` in the alphabet of ``command`` (``mathbb`` ...), or None if not a style."""
    if command not in _ALPHABETS:
        return None
    upper, lower = _ALPHABETS[command]
    out = []
    for c in text:
        if c in _HOLES.get(command, {}):
            out.append(_HOLES[command][c])
        elif "A" <= c <= "Z":
            out.append(chr(upper + ord(c) - ord("A")))
        elif "a" <= c <= "z":
            out.append(chr(lower + ord(c) - ord("a")))
        elif c.isdigit() and command in _DIGITS:
            out.append(chr(_DIGITS[command] + int(c)))
        else:
            out.append(c)
    return "".join(out)
