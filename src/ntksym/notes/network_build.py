"""The notes of one described network: ``ntksym notes --network FILE.py``.

:func:`build_network_notes` checks the derivation of a network
(:func:`ntksym.notes.network.network_derivation`), turns it into the notes' step views
(:func:`ntksym.notes.content.derivation_view`) and renders them with the notes'
printers and filters into ``templates/network.tex.j2`` (and ``.md.j2``, ``.html.j2``);
the PDF is compiled as the notes' is (:func:`ntksym.notes.build.compile_pdf`).
:func:`~ntksym.architecture.loading.load_network` (re-exported here) reads the network
from a Python file that defines ``net``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sympy as sp

from ntksym._io import atomic_write_text
from ntksym.architecture.description import as_description
from ntksym.architecture.loading import load_network
from ntksym.derive.text import Text
from ntksym.errors import InputError
from ntksym.notes.build import (
    NotesBuild,
    compile_pdf,
    environment,
    pdf_pages,
    refuse_foreign,
)
from ntksym.notes.content import METHOD_TEXT, derivation_view
from ntksym.version import __version__

__all__ = [
    "build_network_notes",
    "load_network",
    "network_context",
    "render_network",
    "unit_rows",
]


def _method(method: str) -> Text:
    words = [METHOD_TEXT.get(m, m) for m in method.split("+")]
    return Text(" and ".join(words))


def unit_rows(net: Any) -> list[tuple[Any, Text]]:
    """One row per layer of the recursion: ``(m, what takes alpha~^(m-1) to alpha~^(m))``.

    A layer inside a branch is named as its steps are (``m.b.j``: layer ``j`` of branch
    ``b`` of the block that defines ``alpha~^(m)``).
    """
    from ntksym.activations.expr import u as act_u
    from ntksym.notes.network import general_statements, units
    from ntksym.notes.network_branches import in_branch

    phi, u = general_statements()["phi"], sp.Symbol("u", real=True)
    rows: list[tuple[Any, Text]] = []
    for unit in units(net):
        m = dict(unit.names).get(unit.m, unit.m)
        if unit.norm is not None:
            rows.append((m, Text(str(unit.norm))))
            continue
        if unit.kind in ("branches", "concat"):
            parts = ["the Identity"] * unit.skip + [
                f"{a} then {d}" if a is not None else f"layers ending in {d or 'a block'}"
                for a, d in unit.branches
            ]
            listed = ", ".join(parts[:-1]) + f" and {parts[-1]}"
            what = "sum" if unit.kind == "branches" else "concatenation (FanInConcat)"
            longer = any(q != unit.m - 1 for q in unit.sources)
            pairs = any(
                a is not None and q != unit.m - 1
                for (a, _d), q in zip(unit.branches, unit.sources, strict=True)
            )
            last = ""
            if longer:
                last = " (each branch's layers above" + (", then its last pair)" if pairs else ")")
            rows.append((m, Text(f"the {what} of {len(parts)} branches: {listed}{last}")))
            continue
        if unit.act is None:
            rows.append((m, Text(f"{unit.dense} on the input ", sp.Symbol("x"))))
            continue
        f = sp.Eq(phi(unit.m - 1, u), unit.act.activation.expr.xreplace({act_u: u}))
        what = "a residual block: the identity plus " if unit.kind == "residual" else ""
        then = f" then {unit.dense}" if unit.dense is not None else ", the network's output"
        if unit.dropout is not None:
            then = f" then {unit.dropout} and {unit.dense}"
        rows.append((m, Text(f"{what}{unit.act}{then}, with ", in_branch(unit, f))))
    return rows


def network_context(net: Any, quick: bool = False, inputs: Any = None) -> dict[str, Any]:
    """Check the network's derivation; the templates' data."""
    from ntksym.notes.network import network_derivation

    deriv = network_derivation(net, inputs=inputs)
    view = derivation_view(deriv, quick=quick)
    return {
        "version": __version__,
        "network": Text(str(as_description(net))),
        "units": unit_rows(net),
        "view": view,
        "methods": {s.label: _method(s.method) for s in view.steps},
        "derivations": [view],
    }


def render_network(context: dict[str, Any], kind: str) -> str:
    """Render the network notes' template ``kind`` (``"tex"``, ``"md"`` or ``"html"``)."""
    if kind not in ("tex", "md", "html"):
        raise InputError(f"kind must be one of tex, md, html, got {kind!r}")
    if kind == "html":
        from ntksym.notes.html import environment as html_environment

        return html_environment().get_template("network.html.j2").render(**context)
    return environment(kind).get_template(f"network.{kind}.j2").render(**context)


def build_network_notes(
    net: Any,
    outdir: Path,
    *,
    pdf: bool = False,
    markdown: bool = False,
    html: bool = False,
    quick: bool = False,
    name: str = "network_notes",
    force: bool = False,
    progress: Callable[[str], None] | None = None,
) -> NotesBuild:
    """Write the notes of one network's derivation into ``outdir``.

    Args:
        net: a :mod:`ntksym.stax` layer (or triple) or an architecture description.
        outdir: output directory (created).
        pdf: also compile the PDF.
        markdown: also write the Markdown notes.
        html: also write the web page.
        quick: skip the numeric checks (the engine's quick mode).
        name: file stem of the outputs.
        force: replace output files that ntksym did not write.
        progress: called with a short message before each stage.

    Returns:
        A :class:`~ntksym.notes.build.NotesBuild` (no figures).

    Raises:
        InputError: not a network, or a layer the derivation does not cover.
        GeneratedFileError: an output file is not ntksym's and ``force`` is off.
        TeXMissingError, NotesBuildError: for ``pdf``, as :func:`compile_pdf`.
    """
    t0 = time.perf_counter()
    say = progress or (lambda _msg: None)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    outs = {"tex": outdir / f"{name}.tex"}
    if markdown:
        outs["md"] = outdir / f"{name}.md"
    if html:
        outs["html"] = outdir / f"{name}.html"
    if not force:
        refuse_foreign(list(outs.values()))
    say("deriving and checking the network's recursion")
    context = network_context(net, quick=quick)
    for kind, path in outs.items():
        atomic_write_text(path, render_network(context, kind))
    pdf_path, pages = None, None
    if pdf:
        say("compiling the PDF")
        pdf_path = compile_pdf(outs["tex"])
        pages = pdf_pages(pdf_path)
    return NotesBuild(
        tex=outs["tex"],
        figures=[],
        pdf=pdf_path,
        markdown=outs.get("md"),
        html=outs.get("html"),
        pages=pages,
        seconds=time.perf_counter() - t0,
        context=context,
    )
