"""The notes as one self-contained web page: MathML for every formula, figures inlined.

The page is rendered from the same context as the LaTeX and Markdown notes
(:func:`ntksym.notes.build.build_notes`) by ``templates/notes.html.j2``, with jinja2's
HTML autoescaping on. Formulas are converted to MathML Core by
:func:`ntksym.notes.mathml.to_mathml`, which browsers lay out natively, and the figures
are embedded as PNG data URIs, so the file can be opened, mailed or served alone and
fetches nothing when it is viewed.
"""

from __future__ import annotations

import base64
import functools
import html
import re
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from ntksym.derive.text import Math, Text, as_text
from ntksym.errors import NotesBuildError
from ntksym.notes.mathml import to_mathml
from ntksym.notes.printer import notes_latex

__all__ = [
    "html_math",
    "html_prose",
    "html_text",
    "dual_lines",
    "environment",
    "png_data_uri",
    "render_html",
]


def html_math(tex: str, display: bool | str = False) -> Markup:
    """A LaTeX formula as a MathML ``<math>`` element (see :func:`to_mathml`'s ``display``)."""
    return Markup(to_mathml(str(tex), display=display))


def _words(piece: str) -> str:
    out = []
    for n, chunk in enumerate(piece.split("``")):
        esc = html.escape(chunk, quote=False)
        out.append(f"<code>{esc}</code>" if n % 2 else esc)
    return "".join(out)


def html_text(value: Text | str) -> Markup:
    """A :class:`~ntksym.derive.text.Text` as HTML: words escaped, formulas as MathML.

    A plain string is words only (``<``, ``&`` and ``$`` are shown as written).
    """

    def math(m: Math) -> str:
        return to_mathml(m.latex(notes_latex))

    return Markup(as_text(value).render(math, _words))


def html_prose(value: str) -> Markup:
    r"""Template prose with ``$...$`` formulas: the formulas become MathML.

    The text between the dollar signs is the template's own (already HTML), so it is
    kept; the formulas are LaTeX (HTML entities such as ``&amp;`` are undone first).
    """
    parts = str(value).split("$")
    if len(parts) % 2 == 0:
        raise NotesBuildError(f"unbalanced $ in the HTML template's prose: {value[:80]!r}")
    out = [
        to_mathml(html.unescape(p)) if n % 2 else p for n, p in enumerate(parts)
    ]  # fmt: skip
    return Markup("".join(out))


def _sci(value: float | None, digits: int) -> Markup:
    """A relative error as MathML (``< 10^{-30}`` when it rounds to zero)."""
    if value is None:
        return Markup("–")
    if value == 0.0 or value < 10.0 ** (-digits):
        return html_math(rf"<10^{{-{digits}}}")
    mant, exp = f"{value:.1e}".split("e")
    return html_math(rf"{mant}\times 10^{{{int(exp)}}}")


def png_data_uri(path: Path) -> str:
    """The PNG file ``path`` as a ``data:`` URI (the page carries its figures)."""
    data = Path(path).read_bytes()
    if not data.startswith(b"\x89PNG"):
        raise NotesBuildError(f"{path} is not a PNG file; the web page embeds PNG figures")
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def dual_lines(nngp: str, ntk: str) -> list[str]:
    """The display lines of a pair of dual maps (the second omitted when it is empty)."""
    lines = [r"\mathbb{E}[\sigma(u)\sigma(v)] = " + nngp]
    if ntk:
        lines.append(r"\mathbb{E}[\dot\sigma(u)\dot\sigma(v)] = " + ntk)
    return lines


def _anchor(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", str(text)).strip("-").lower()


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The web page's jinja2 environment (autoescaped, MathML filters)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("ntksym.notes", "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=True,
    )
    env.filters["text"] = html_text
    env.filters["math"] = html_math
    env.filters["display"] = functools.partial(html_math, display=True)
    env.filters["displayline"] = functools.partial(html_math, display="line")
    env.filters["prose"] = html_prose
    env.filters["sci"] = _sci
    env.filters["png"] = png_data_uri
    env.filters["anchor"] = _anchor
    env.globals["dual_lines"] = dual_lines
    return env


def render_html(context: dict[str, Any]) -> str:
    """Render the web page of the notes from the template context of the LaTeX notes."""
    return environment().get_template("notes.html.j2").render(**context)
