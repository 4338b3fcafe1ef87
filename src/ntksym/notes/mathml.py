r"""LaTeX to MathML Core for the notes' web page, offline and without a dependency.

The notes' formulas are LaTeX written by one printer
(:class:`~ntksym.notes.printer.NotesPrinter`) and by the authors of the prose, so they
use a known subset of LaTeX: letters, Greek, ``\frac``, ``\sqrt``, scripts and primes,
sums with limits, ``\left``/``\right`` and ``\bigl`` delimiters, accents such as
``\dot``/``\tilde``, ``\mathbb``/``\mathcal``/``\mathsf``/``\mathrm``, ``\text``,
``\xrightarrow``, ``\boxed`` and the notes' ``\hl``, and the environments ``aligned``,
``bmatrix``, ``pmatrix``, ``cases``, ``array`` and ``\substack``. :func:`to_mathml`
turns such a formula into MathML Core, which Chromium (109 and later) and Firefox lay out
natively, so the page needs no script and fetches nothing when it is viewed.

A command outside the subset is an error naming it (never copied through as raw TeX),
so a formula the page cannot show stops the build instead of reaching a reader.

>>> to_mathml(r"\frac{1}{\sqrt{n_l}}")
'<math><mfrac><mn>1</mn><msqrt><msub><mi>n</mi><mi>l</mi></msub></msqrt></mfrac></math>'
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from ntksym.errors import NotesBuildError
from ntksym.notes import mathml_tables as T

__all__ = ["to_mathml"]

_TOKEN = re.compile(r"\\[A-Za-z]+\*?|\\.|\d+(?:\.\d+)?|\s+|.", re.S)
_FENCES = frozenset("()[]{}|‖⟨⟩⌊⌋⌈⌉")
_IGNORED = frozenset(("limits", "nolimits", "nonumber", "notag", "allowbreak", "relax"))
_COLOURS = {"BrickRed": "#b22222", "ForestGreen": "#228b22", "BurntOrange": "#cc5500"}
_ENVIRONMENTS = {
    "aligned": ("", ""),
    "align*": ("", ""),
    "gathered": ("", ""),
    "split": ("", ""),
    "matrix": ("", ""),
    "array": ("", ""),
    "bmatrix": ("[", "]"),
    "pmatrix": ("(", ")"),
    "vmatrix": ("|", "|"),
    "cases": ("{", ""),
}


def _esc(s: str) -> str:
    return html.escape(s, quote=True)


def _row(items: list[str]) -> str:
    return items[0] if len(items) == 1 else "<mrow>" + "".join(items) + "</mrow>"


def _mo(char: str, attrs: str = "") -> str:
    return f"<mo{attrs}>{_esc(char)}</mo>"


@dataclass
class _Item:
    """One atom of a row, with the scripts attached to it so far."""

    base: str
    sub: str | None = None
    sup: str | None = None
    limits: bool = False  # scripts go under and over (large operators, lim, arrows)

    def mathml(self) -> str:
        b, sub, sup = self.base, self.sub, self.sup
        if sub is None and sup is None:
            return b
        under, over = ("munder", "mover") if self.limits else ("msub", "msup")
        if sub is not None and sup is not None:
            tag = "munderover" if self.limits else "msubsup"
            return f"<{tag}>{b}{sub}{sup}</{tag}>"
        if sub is not None:
            return f"<{under}>{b}{sub}</{under}>"
        return f"<{over}>{b}{sup}</{over}>"


class _Parser:
    """A recursive-descent parser over the tokens of one formula."""

    def __init__(self, tex: str) -> None:
        self.tex = tex
        self.toks = [t for t in _TOKEN.findall(tex)]
        self.pos = 0

    # ----------------------------------------------------------------- tokens
    def error(self, what: str) -> NotesBuildError:
        return NotesBuildError(
            f"cannot render the formula {self.tex!r} as MathML: {what}. The web page "
            "renders the notes' LaTeX subset (see ntksym.notes.mathml); add the command "
            "to ntksym.notes.mathml_tables or write the formula with known commands"
        )

    def peek(self, skip_space: bool = True) -> str | None:
        while skip_space and self.pos < len(self.toks) and self.toks[self.pos].isspace():
            self.pos += 1
        return self.toks[self.pos] if self.pos < len(self.toks) else None

    def take(self, skip_space: bool = True) -> str:
        tok = self.peek(skip_space)
        if tok is None:
            raise self.error("it ends too early")
        self.pos += 1
        return tok

    def expect(self, tok: str) -> None:
        got = self.take()
        if got != tok:
            raise self.error(f"expected {tok!r}, found {got!r}")

    def raw_group(self) -> str:
        """The source text of a ``{...}`` argument (or of a single token)."""
        tok = self.take()
        if tok != "{":
            return tok
        depth = 1
        out: list[str] = []
        while True:
            tok = self.take(skip_space=False)
            depth += {"{": 1, "}": -1}.get(tok, 0)
            if depth == 0:
                return "".join(out)
            out.append(tok)

    def optional(self) -> str | None:
        """The mathematics of an optional ``[...]`` argument, if there is one."""
        if self.peek() != "[":
            return None
        self.take()
        items = self.row({"]"})
        self.expect("]")
        return _row(items) if items else "<mrow></mrow>"

    def argument(self) -> str:
        """One argument: a braced group or a single token, as MathML."""
        if self.peek() == "{":
            self.take()
            items = self.row({"}"})
            self.expect("}")
            return _row(items) if items else "<mrow></mrow>"
        tok = self.take()
        if tok[0].isdigit() and len(tok) > 1:  # \tfrac12: each digit is an argument
            self.toks[self.pos - 1 : self.pos] = [tok[0], tok[1:]]
            tok = tok[0]
        item = self.atom(tok)
        return item.mathml() if item is not None else "<mrow></mrow>"

    # ----------------------------------------------------------------- rows
    def row(self, stop: set[str]) -> list[str]:
        """Atoms up to (not including) a token of ``stop`` or the end."""
        items: list[_Item] = []
        while True:
            tok = self.peek()
            if tok is None or tok in stop:
                break
            self.take()
            if tok in ("^", "_", "'"):
                last = items[-1] if items else _Item("<mrow></mrow>")
                if not items:
                    items.append(last)
                self.script(last, tok)
                continue
            if tok in ("\\color", "\\displaystyle", "\\textstyle"):
                items.append(_Item(self.styled_rest(tok, stop)))
                break
            item = self.atom(tok)
            if item is not None:
                items.append(item)
        return [i.mathml() for i in items]

    def script(self, item: _Item, tok: str) -> None:
        if tok == "'":
            prime = _mo("′")
            item.sup = prime if item.sup is None else _row([item.sup, prime])
            return
        arg = self.argument()
        if tok == "_":
            if item.sub is not None:
                raise self.error("a double subscript")
            item.sub = arg
        else:
            item.sup = arg if item.sup is None else _row([item.sup, arg])

    def styled_rest(self, tok: str, stop: set[str]) -> str:
        if tok == "\\color":
            name = self.raw_group()
            body = _row(self.row(stop) or ["<mrow></mrow>"])
            return f'<mrow style="color:{_esc(_COLOURS.get(name, name))}">{body}</mrow>'
        flag = "true" if tok == "\\displaystyle" else "false"
        return f'<mstyle displaystyle="{flag}">{_row(self.row(stop) or [""])}</mstyle>'

    # ----------------------------------------------------------------- atoms
    def atom(self, tok: str) -> _Item | None:
        if tok == "{":
            items = self.row({"}"})
            self.expect("}")
            return _Item(_row(items) if items else "<mrow></mrow>")
        if tok[0].isdigit():
            return _Item(f"<mn>{tok}</mn>")
        if tok.isalpha():
            return _Item(f"<mi>{_esc(tok)}</mi>")
        if tok == "~":
            return _Item('<mspace width="0.25em"></mspace>')
        if tok in "}&":
            raise self.error(f"an unexpected {tok!r}")
        if tok in _FENCES:  # a plain parenthesis keeps its size (only \left ones stretch)
            return _Item(_mo(tok, ' stretchy="false"'))
        if not tok.startswith("\\"):
            return _Item(_mo("−" if tok == "-" else tok))
        return self.command(tok[1:])

    def command(self, name: str) -> _Item | None:
        if name in T.IDENTIFIERS:
            upright = name[0].isupper() or name in ("infty", "partial", "nabla")
            attr = ' mathvariant="normal"' if upright else ""
            return _Item(f"<mi{attr}>{T.IDENTIFIERS[name]}</mi>")
        if name in T.OPERATORS:
            char = T.OPERATORS[name]
            return _Item(_mo(char, ' stretchy="false"' if char in _FENCES else ""))
        if name in T.SPACES:
            return _Item(f'<mspace width="{T.SPACES[name]:.3f}em"></mspace>')
        if name in T.LARGE_OPERATORS:
            limits = not name.endswith("int")
            attrs = ' largeop="true" movablelimits="true"' if limits else ' largeop="true"'
            return _Item(_mo(T.LARGE_OPERATORS[name], attrs), limits=limits)
        if name in T.FUNCTIONS:
            limits = name in ("lim", "max", "min", "sup", "inf", "liminf", "limsup")
            if limits:
                return _Item(_mo(name, ' movablelimits="true" form="prefix"'), limits=True)
            return _Item(f"<mi>{name}</mi>")
        if name in T.BIG:
            return _Item(self.delimiter(self.take(), f"{T.BIG[name]}em"))
        if "\\" + name in T.DELIMITERS:
            return _Item(_mo(T.DELIMITERS["\\" + name], ' stretchy="false"'))
        if name in _IGNORED:
            return None
        if name in T.ACCENTS:
            char, stretchy = T.ACCENTS[name]
            acc = _mo(char, ' stretchy="true"' if stretchy else ' stretchy="false"')
            return _Item(f'<mover accent="true">{self.argument()}{acc}</mover>')
        return self.structure(name)

    def delimiter(self, tok: str, size: str | None = None) -> str:
        if tok not in T.DELIMITERS:
            raise self.error(f"{tok!r} is not a delimiter")
        char = T.DELIMITERS[tok]
        if not char:
            return "<mrow></mrow>"
        if size is None:
            return _mo(char, ' stretchy="true" fence="true" lspace="0em" rspace="0em"')
        return _mo(char, f' stretchy="true" symmetric="true" minsize="{size}" maxsize="{size}"')

    def structure(self, name: str) -> _Item:
        """Commands with arguments: fractions, roots, fences, fonts, boxes, environments."""
        if name in ("frac", "tfrac", "dfrac", "binom"):
            num, den = self.argument(), self.argument()
            if name == "binom":
                frac = f'<mfrac linethickness="0">{num}{den}</mfrac>'
                return _Item(_row([_mo("("), frac, _mo(")")]))
            frac = f"<mfrac>{num}{den}</mfrac>"
            if name != "frac":
                flag = "false" if name == "tfrac" else "true"
                frac = f'<mstyle displaystyle="{flag}">{frac}</mstyle>'
            return _Item(frac)
        if name == "sqrt":
            index = self.optional()
            body = self.argument()
            return _Item(
                f"<msqrt>{body}</msqrt>" if index is None else f"<mroot>{body}{index}</mroot>"
            )
        if name == "left":
            opening = self.delimiter(self.take())
            inner = self.row({"\\right"})
            self.expect("\\right")
            return _Item(_row([opening, *inner, self.delimiter(self.take())]))
        styled = T.styled(name, "")
        if styled is not None:
            return _Item(f"<mi>{_esc(T.styled(name, self.raw_group()) or '')}</mi>")
        if name in ("mathrm", "operatorname", "mathit", "textup"):
            return _Item(self.upright(self.raw_group(), italic=name == "mathit"))
        if name in ("text", "textrm", "textsf", "textit", "texttt", "mbox", "textnormal"):
            return _Item(f"<mtext>{_esc(self.text(self.raw_group()))}</mtext>")
        if name in ("hl", "boxed"):
            cls = "hl" if name == "hl" else "boxed"
            return _Item(f'<mrow class="{cls}">{self.argument()}</mrow>')
        if name == "textcolor":
            colour = self.raw_group()
            return _Item(
                f'<mrow style="color:{_esc(_COLOURS.get(colour, colour))}">{self.argument()}</mrow>'
            )
        if name in ("xrightarrow", "xleftarrow"):
            below = self.optional()
            above = self.argument()
            # a long arrow glyph: stretching needs a math font, which a reader may lack
            arrow = _mo("⟶" if name == "xrightarrow" else "⟵", ' stretchy="false"')
            if below is None:
                return _Item(f"<mover>{arrow}{above}</mover>")
            return _Item(f"<munderover>{arrow}{below}{above}</munderover>")
        if name in ("overset", "stackrel", "underset"):
            top, base = self.argument(), self.argument()
            tag = "munder" if name == "underset" else "mover"
            return _Item(f"<{tag}>{base}{top}</{tag}>")
        if name == "substack":
            rows = _Parser(self.raw_group())
            return _Item(rows.table_body(None, stop=set()))
        if name == "begin":
            return _Item(self.environment(self.raw_group()))
        raise self.error(f"the command \\{name} is not in the supported subset")

    def upright(self, raw: str, italic: bool = False) -> str:
        word = raw.replace("\\,", " ").replace("\\ ", " ")
        if re.fullmatch(r"[A-Za-z0-9 ]+", word):
            attr = "" if italic or len(word) > 1 else ' mathvariant="normal"'
            return f"<mi{attr}>{_esc(word)}</mi>"
        return _row(_Parser(raw).row(set()) or ["<mrow></mrow>"])

    def text(self, raw: str) -> str:
        out = re.sub(
            r"\\([ ,;:!_%&#$])", lambda m: " " if m.group(1) in " ,;:!" else m.group(1), raw
        )
        # spaces as no-break spaces: HTML would trim them at the ends of <mtext>
        out = out.replace("~", " ").replace("{}", "").replace(" ", "\u00a0")
        if "\\" in out or "$" in out:
            raise self.error(f"the text {raw!r} has commands or math inside (not supported)")
        return out

    def environment(self, env: str) -> str:
        if env not in _ENVIRONMENTS:
            raise self.error(f"the environment {env!r} is not in the supported subset")
        if env == "array":
            self.raw_group()  # the column specification
        body = self.table_body(env, stop={"\\end"})
        self.expect("\\end")
        if self.raw_group() != env:
            raise self.error(f"\\begin{{{env}}} is not closed by \\end{{{env}}}")
        left, right = _ENVIRONMENTS[env]
        if not left and not right:
            return body
        fences = [self.delimiter(left if left != "{" else "\\{"), body]
        if right:
            fences.append(self.delimiter(right))
        return _row(fences)

    def table_body(self, env: str | None, stop: set[str]) -> str:
        r"""Rows separated by ``\\\\`` and cells by ``&``, as an ``mtable``."""
        rows: list[list[str]] = [[]]
        while True:
            cell = self.row({"&", "\\\\", *stop})
            rows[-1].append(_row(cell) if cell else "<mrow></mrow>")
            tok = self.peek()
            if tok == "&":
                self.take()
            elif tok == "\\\\":
                self.take()
                self.optional()  # a row gap such as \\[1ex] is dropped
                rows.append([])
            else:
                break
        if rows[-1] == ["<mrow></mrow>"] and len(rows) > 1:
            rows.pop()
        aligned = env in ("aligned", "align*", "split")
        out = []
        for cells in rows:
            tds = []
            for n, c in enumerate(cells):
                side = (
                    ("right" if n % 2 == 0 else "left")
                    if aligned
                    else "left"
                    if env == "cases"
                    else "center"
                )
                tds.append(f'<mtd style="text-align:{side}">{c}</mtd>')
            out.append("<mtr>" + "".join(tds) + "</mtr>")
        script = ' displaystyle="false"' if env is None else ""
        return f"<mtable{script}>" + "".join(out) + "</mtable>"


def to_mathml(tex: str, display: bool | str = False) -> str:
    r"""The MathML Core ``<math>`` element of a LaTeX formula of the notes' subset.

    Args:
        tex: LaTeX in math mode, without delimiters.
        display: True for a display (``display="block"``: centred, large operators
            with limits above and below), ``"line"`` for a line of a display set flush
            left (display style in an inline box), False for inline mathematics.

    Returns:
        The ``<math>`` element as a string.

    Raises:
        NotesBuildError: the formula uses a command or environment outside the subset,
            or its braces do not match (the message names what is wrong).
    """
    parser = _Parser(tex)
    items = parser.row(set())
    if parser.peek() is not None:
        raise parser.error(f"an unmatched {parser.peek()!r}")
    attr = ' display="block"' if display else ""
    if display == "line":  # a line of a display set flush left: display style, inline box
        attr = ' displaystyle="true"'
    return f"<math{attr}>" + "".join(items) + "</math>"
