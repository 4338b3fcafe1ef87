r"""Turn the engine's human text into prose with real mathematics.

The derivation engine writes its rule descriptions, check details and notes for a terminal:
plain text in which expressions printed by SymPy are already LaTeX between dollar signs
(``index: $b_{0}^{(0)}$ printed``), while short formulas of its own are ASCII
(``w^(l), b^(l)``, ``alpha~^(m)_i(x)``, ``n_1, ..., n_{l-1} -> oo``, ``chi2/dof``,
``|rate + 1/2| <= 3 s.e.``). :func:`prose_math` finds the ASCII formulas and rewrites them
as ``$...$`` LaTeX, so that the notes' LaTeX and Markdown filters only have to escape
what is left, which is ordinary words.

The rewriting is deliberately conservative: a word becomes mathematics only if it has the
marks of a formula (a sub- or superscript, a tilde accent, a Greek name, an arrow, an
assignment ``n=(2,3)``, a double-backtick code span of a docstring). Machine-made
summation indices (``s_{0}``) inside the mathematics are renamed to a free letter.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["ascii_math", "prose_math", "rename_machine_indices"]

_GREEK = ("alpha", "beta", "sigma", "Sigma", "theta", "Theta", "delta", "chi")
#: Greek names that are mathematics even without an index ("delta sums" is prose).
_BARE_GREEK = ("alpha", "beta", "sigma", "Sigma", "theta", "Theta")
#: Known formulas whose ASCII spelling is too loose for the token rules.
_FORMULAS = {
    "E[product of w's and b's]": r"\mathbb{E}[\text{product of } w\text{'s and } b\text{'s}]",
    "E[exp(b'w - w'Aw/2)] = det(I+Sigma A)^(-1/2) exp(b'(I+Sigma A)^(-1) Sigma b/2)": (
        r"\mathbb{E}\bigl[e^{b^{\mathsf T}w - w^{\mathsf T}Aw/2}\bigr]"
        r" = \det(I+\Sigma A)^{-1/2}\exp\bigl(\tfrac12 b^{\mathsf T}(I+\Sigma A)^{-1}\Sigma b\bigr)"
    ),
}


def _balanced_paren(s: str, start: int) -> int:
    """Index just past the parenthesis group opening at ``s[start]`` (or -1)."""
    depth = 0
    for n in range(start, len(s)):
        depth += {"(": 1, ")": -1}.get(s[n], 0)
        if depth == 0:
            return n + 1
    return -1


def ascii_math(s: str) -> str:
    r"""LaTeX for one ASCII formula of the engine (without the dollar signs).

    >>> ascii_math("alpha~^(m)_i(x)")
    '\\tilde\\alpha^{(m)}_{i}(x)'
    >>> ascii_math("(1/n) sum_{i=1}^n g_i -> E[g_i]")
    '\\frac1n\\sum_{i=1}^n g_{i} \\to \\mathbb{E}[g_{i}]'
    """
    s = s.strip()
    if s in _FORMULAS:
        return _FORMULAS[s]
    t = s
    t = t.replace("[...]", r"[\dots]").replace("...", r"\dots")
    t = re.sub(r"(?<![\\A-Za-z])sum_", r"\\sum_", t)
    t = re.sub(r"\(1/(\w)\)\s*", r"\\frac1\1", t)
    t = re.sub(r"\bsigmadot\b", r"\\dot\\sigma", t)
    t = re.sub(r"\bTheta_inf\b", r"\\Theta_\\infty", t)
    t = re.sub(r"\bchi2\b", r"\\chi^2", t)
    t = re.sub(r"\b(" + "|".join(_GREEK) + r")~", r"\\tilde\\\1", t)
    t = re.sub(r"(?<![\\\w])(" + "|".join(_GREEK) + r")(?![a-zA-Z])", r"\\\1", t)
    t = re.sub(r"(\w)~N\(", r"\1\\sim\\mathcal{N}(", t)
    # W[l][r, c]: the engine's name of a weight entry
    t = re.sub(r"\bW\[(\d+)\]\[(\d+), ?(\d+)\]", r"w^{(\1)}_{\2\3}", t)
    # superscripts: ^(l) keeps its parentheses (a layer), ^(-1/2) is an exponent; ^T
    out, n = [], 0
    while n < len(t):
        if t.startswith("^(", n):
            end = _balanced_paren(t, n + 1)
            if end > 0:
                inner = t[n + 2 : end - 1]
                out.append(f"^{{{inner}}}" if inner.startswith("-") else f"^{{({inner})}}")
                n = end
                continue
        out.append(t[n])
        n += 1
    t = "".join(out)
    t = re.sub(r"\^T\b", r"^{\\mathsf T}", t)
    # unbraced subscripts of several characters: w_ki, delta_kk', theta_p, n_1
    t = re.sub(
        r"_([A-Za-z0-9']+)",
        lambda m: "_" + (m.group(1) if len(m.group(1)) == 1 else "{" + m.group(1) + "}"),
        t,
    )
    t = re.sub(r"(?<![\\\w])E(?=[\[_])", r"\\mathbb{E}", t)
    t = re.sub(r"^E$", r"\\mathbb{E}", t)
    t = t.replace("->", r"\to").replace("<=", r"\le").replace(">=", r"\ge")
    t = t.replace("+-", r"\pm")
    t = re.sub(r"\boo\b", r"\\infty", t)
    t = t.replace(" (x) ", r" \otimes ")
    t = re.sub(r"(\d)x(\d)", r"\1\\times \2", t)
    return t


# A word that is a formula: has a sub/superscript, a tilde accent, or is a Greek name.
_MATHWORD = (
    r"(?:[A-Za-z0-9()\[\]{}',+\-/=.]*?"
    r"(?:[_^]|(?:" + "|".join(_GREEK) + r")~)[A-Za-z0-9()\[\]{}',+\-/=~^_.]*"
    r"|(?:" + "|".join(_BARE_GREEK) + r"|sigmadot|Theta_inf)(?![A-Za-z~]))"
)
_ASSIGN = r"(?:[A-Za-z](?:_\{[^{}\s]*\}|_[A-Za-z0-9])?'?=(?:\([\d, ]+\)|-?\d+))"

_RULES: list[tuple[re.Pattern[str], object]] = []


def _rule(pattern: str) -> object:
    def deco(fn: object) -> object:
        _RULES.append((re.compile(pattern), fn))
        return fn

    return deco


@_rule(r"``(.+?)``")
def _code(m: re.Match[str]) -> str | None:
    inner = m.group(1)
    if not re.search(r"[_^~=\[]|->", inner):  # a name such as ``Derivative``: not a formula
        return None
    return ascii_math(inner)


@_rule("|".join(re.escape(f) for f in _FORMULAS))
def _known(m: re.Match[str]) -> str:
    return _FORMULAS[m.group(0)]


@_rule(r"\|rate \+ 1/2\| <= (\d+) s\.e\.(?: \+ ([\d.]+))?")
def _rate_bound(m: re.Match[str]) -> str:
    tol = rf" + {m.group(2)}" if m.group(2) else ""
    return rf"\lvert\text{{rate}} + \tfrac12\rvert \le {m.group(1)}\,\text{{s.e.}}{tol}"


@_rule(r"\brate (-?\d+\.\d+) \+- (\d+\.\d+)")
def _rate(m: re.Match[str]) -> str:
    return rf"\text{{rate}} = {m.group(1)} \pm {m.group(2)}"


@_rule(r"\bchi2/dof (\d+(?:\.\d+)?)")
def _chi2(m: re.Match[str]) -> str:
    return rf"\chi^2/\mathrm{{dof}} = {m.group(1)}"


@_rule(r"\b(\d+(?:\.\d+)?)e([+-]?\d+)\b")
def _sci(m: re.Match[str]) -> str:
    return rf"{m.group(1)}\times 10^{{{int(m.group(2))}}}"


@_rule(r"\b(\d+)x(\d+)\b")
def _times(m: re.Match[str]) -> str:
    return rf"{m.group(1)}\times {m.group(2)}"


@_rule(r"\btheta_p=W\[(\d+)\]\[(\d+), ?(\d+)\]")
def _param(m: re.Match[str]) -> str:
    return rf"\theta_p = w^{{({m.group(1)})}}_{{{m.group(2)}{m.group(3)}}}"


@_rule(r"\bN\((-?[\w.]+), ?([\w.^]+)\)")
def _normal(m: re.Match[str]) -> str:
    return rf"\mathcal{{N}}({m.group(1)}, {ascii_math(m.group(2))})"


@_rule(r"\b[A-Za-z](?:, [A-Za-z])+(?= i\.i\.d\.)")
def _variables(m: re.Match[str]) -> str:
    return m.group(0)


@_rule(_ASSIGN + r"(?:(?:, | )" + _ASSIGN + r")*")
def _assignments(m: re.Match[str]) -> str:
    parts = re.findall(_ASSIGN, m.group(0))
    return r",\ ".join(ascii_math(p) for p in parts)


@_rule(r"\b[a-zA-Z] (?:=|<=|>=) \d+\b")
def _relation(m: re.Match[str]) -> str:
    return ascii_math(m.group(0))


@_rule(r"\(x, x'\)")
def _pair(m: re.Match[str]) -> str:
    return "(x, x')"


@_rule(
    r"(?<=\bfree index )[a-z]'?(?![\w^_(])|(?<=\bover )[a-z]'?(?![\w^_(])"
    r"|\b[a-z]'?(?= is free\b)"
)
def _index(m: re.Match[str]) -> str:
    return m.group(0)


@_rule(r"\(1/n\) sum_\S+(?: " + _MATHWORD + r")*")
def _mean(m: re.Match[str]) -> str:
    return ascii_math(m.group(0))


@_rule(
    r"(?:" + _MATHWORD + r"|\b[A-Za-z]\(x'?\)|\[\.\.\.\]|\b(?!a\b)[a-z](?= \S*[_^~]))"
    r"(?:,? (?:" + _MATHWORD + r"|\.\.\.|\[\.\.\.\]|[A-Za-z]\(x'?\)|[a-z]'?(?![\w(])"
    r"|\(x\)(?= )|->|oo\b))*"
    r"(?: -> oo\b)?"
)
def _formula(m: re.Match[str]) -> str | None:
    text = m.group(0)
    # a run of formula words; it must contain a real formula, not only J(x) or u
    if not re.search(r"[_^~]|" + "|".join(_BARE_GREEK) + r"|sigmadot", text):
        return None
    return ascii_math(text)


@_rule(r"\[\.\.\.\]")
def _elided(m: re.Match[str]) -> str:
    return r"[\dots]"


@_rule(r"(?<= )->(?= )")
def _arrow(m: re.Match[str]) -> str:
    return r"\to"


@_rule(r"(?<![\w.])E(?= is\b)")
def _expect(m: re.Match[str]) -> str:
    return r"\mathbb{E}"


def _trim(piece: str) -> tuple[str, str]:
    """Split trailing punctuation that belongs to the sentence, not the formula."""
    tail = ""
    while piece and piece[-1] in ",;:.)":
        if piece[-1] == ")" and piece.count("(") >= piece.count(")"):
            break
        if piece[-1] == "." and re.search(r"\d\.$|\.\.\.$", piece):
            break
        tail = piece[-1] + tail
        piece = piece[:-1]
    return piece, tail


_SPLIT = re.compile(r"(\$[^$]+\$)")


def _convert_plain(text: str) -> str:
    pieces: list[str] = []

    def math(tex: str) -> str:
        pieces.append(tex)
        return f"\x00{len(pieces) - 1}\x00"

    for pattern, fn in _RULES:

        def repl(m: re.Match[str], fn: object = fn, pattern: re.Pattern[str] = pattern) -> str:
            whole = m.group(0)
            if "\x00" in whole:
                return whole
            core, tail = _trim(whole) if fn is _formula else (whole, "")
            if core != whole:
                m2 = pattern.fullmatch(core)
                if m2 is None:
                    return whole
                m = m2
            tex = fn(m)  # type: ignore[operator]
            return whole if tex is None else math(tex) + tail

        text = pattern.sub(repl, text)
    out = re.sub(r"\x00(\d+)\x00", lambda m: "$" + pieces[int(m.group(1))] + "$", text)
    # neighbouring formulas separated by a space are one formula: "$a$ $\to$ $b$"
    prev = None
    while prev != out:
        prev = out
        out = re.sub(r"\$([^$]+)\$ \$(\\to|\\otimes)\$ \$([^$]+)\$", r"$\1 \2 \3$", out)
    return out


_MACHINE = re.compile(r"s_\{(\d+)('?)\}")


def rename_machine_indices(text: str, prefer: Iterable[str] = ()) -> str:
    r"""Rename the engine's fresh summation indices ``s_{0}`` in ``$...$`` math.

    The same machine index gets the same letter everywhere in ``text``; the letter is
    the first of ``prefer`` (e.g. the summation indices of the displayed statement) and
    then of ``j, m, q, r, t`` that does not already occur as an index in the mathematics.

    Args:
        text: Prose with ``$...$`` mathematics.
        prefer: Letters to try first.

    Returns:
        The text with ``s_{N}`` replaced by a letter and ``s_{N'}`` by the letter primed.
    """
    maths = [p for p in _SPLIT.findall(text)]
    found = sorted({m.group(1) for p in maths for m in _MACHINE.finditer(p)}, key=int)
    if not found:
        return text
    clean = _MACHINE.sub("", " ".join(maths))
    used = set()
    for m in re.finditer(r"_\{([^{}]*)\}|_([A-Za-z])|\\sum_\{([a-z])", clean):
        used |= set(re.sub(r"\\[A-Za-z]+|n_|L|l", "", "".join(g for g in m.groups() if g)))
    letters: dict[str, str] = {}
    for num in found:
        for cand in [*prefer, "j", "m", "q", "r", "t"]:
            if len(cand) == 1 and cand not in used and cand not in letters.values():
                letters[num] = cand
                break
        else:
            return text
    return _SPLIT.sub(
        lambda p: _MACHINE.sub(lambda m: letters[m.group(1)] + m.group(2), p.group(0)), text
    )


def prose_math(text: str, prefer: Iterable[str] = ()) -> str:
    r"""The engine's human text with its ASCII formulas written as ``$...$`` LaTeX.

    Mathematics already between dollar signs is kept (apart from renaming machine
    indices, see :func:`rename_machine_indices`); everything else is left as words for
    the LaTeX or Markdown escaping of :mod:`ntksym.notes.build`.

    >>> prose_math("E is over w^(l), b^(l) given the earlier layers")
    '$\\mathbb{E}$ is over $w^{(l)}, b^{(l)}$ given the earlier layers'
    >>> prose_math("accepted if |rate + 1/2| <= 3 s.e. + 0.02")
    'accepted if $\\lvert\\text{rate} + \\tfrac12\\rvert \\le 3\\,\\text{s.e.} + 0.02$'

    Args:
        text: Plain text, possibly with ``$...$`` math.
        prefer: Letters to use first for machine indices.

    Returns:
        Text whose mathematics is all inside single dollar signs.
    """
    parts = _SPLIT.split(str(text))
    out = "".join(
        p if p.startswith("$") and p.endswith("$") and len(p) > 1 else _convert_plain(p)
        for p in parts
    )
    return rename_machine_indices(out, prefer)
