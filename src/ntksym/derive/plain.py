"""Plain-text rendering of the engine's LaTeX snippets, for a terminal."""

from __future__ import annotations

import re

__all__ = ["plain_text"]

_PLAIN_MACROS = (
    (r"\\tilde\{?\\(\w+)\}?", r"\1~"),
    (r"\\dot\{?\\(\w+)\}?", r"\1'"),
    (r"\\frac\{\\partial\}\{\\partial ([^{}]*)\}", r"d/d\1 "),
    (r"\\frac\{([^{}]*)\}\{([^{}]*)\}", r"(\1)/(\2)"),
    (r"\\sqrt\{([^{}]*)\}", r"sqrt(\1)"),
    (r"\\(?:left|right|bigl|bigr)(?=[()\[\]|.])", ""),
    (r"\\(?:dots|ldots|cdots)", "..."),
    (r"\\mathbb\{(\w)\}", r"\1"),
    (r"\\times", "x"),
    (r"\\(?:,|;|quad|qquad)", " "),
    (r"\\(\w+)", r"\1"),
)


def plain_text(text: str) -> str:
    r"""The engine's human text for a terminal: ``$...$`` LaTeX made readable ASCII.

    >>> plain_text(r"index: $\tilde{\alpha}_{k}^{(l)}(x)$ printed")
    'index: alpha~_{k}^{(l)}(x) printed'
    """

    def one(m: re.Match[str]) -> str:
        s = m.group(1)
        for pattern, repl in _PLAIN_MACROS:
            s = re.sub(pattern, repl, s)
        return " ".join(s.split())

    return re.sub(r"\$([^$]+)\$", one, text)
