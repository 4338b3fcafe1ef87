"""``ntksym notes`` in the fast run: the TeX-free part of a build, on the smallest derivation.

The thorough build of the seed's notes (with the PDF) is in test_notes_build.py (slow).
"""

from __future__ import annotations

import pytest

pytest.importorskip("matplotlib", reason="the notes' figures need matplotlib (test extra)")

from ntksym.cli import main  # noqa: E402
from ntksym.derive.loader import package_derivations_dir  # noqa: E402

DERIVATION = package_derivations_dir() / "weight_variance.py"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("notes")
    code = main(["notes", str(DERIVATION), "-o", str(out), "--markdown", "--quick"])
    return code, out


def test_notes_command_writes_tex_markdown_and_figures(built):
    code, out = built
    assert code == 0
    tex = (out / "ntk_notes.tex").read_text()
    md = (out / "ntk_notes.md").read_text()
    assert "\\documentclass" in tex and "\\end{document}" in tex
    assert (out / "figures" / "ntk_convergence.png").is_file()
    assert "$" in md and "![" in md
    # every step of the derivation is displayed with its label, in both outputs
    from ntksym.derive.loader import load_derivation

    for step in load_derivation(DERIVATION).steps:
        assert f"\\tag{{{step.label}}}" in tex, step.label
        assert f"({step.label})" in md, step.label
    # nothing half-written is left behind
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]
