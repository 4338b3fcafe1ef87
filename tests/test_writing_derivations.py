"""The guide ``docs/writing-derivations.md`` runs: its python blocks, in order, in a temp dir.

Each block is executed in one shared namespace (as a reader would paste them into one
session); a block whose first line is ``# file: NAME.py`` is also saved under that name so
that later blocks can load or verify it. The blocks assert the verdicts the guide claims;
this test also checks that the guide shows a real example of every verdict.
"""

import re
from pathlib import Path

import pytest

from ntksym.derive import VERDICTS, StepResult

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "writing-derivations.md"
FENCE = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def python_blocks(text: str) -> list[str]:
    """The contents of the ```python fences, in order."""
    return FENCE.findall(text)


def test_fence_parser_finds_only_python_blocks():
    text = "a\n```python\nx = 1\n```\n```text\nno\n```\n```python\ny = 2\n```\n"
    assert python_blocks(text) == ["x = 1\n", "y = 2\n"]


@pytest.fixture(scope="module")
def guide_namespace(tmp_path_factory):
    blocks = python_blocks(GUIDE.read_text(encoding="utf-8"))
    assert len(blocks) >= 6, "the guide lost its examples"
    where = tmp_path_factory.mktemp("guide")
    mp = pytest.MonkeyPatch()
    mp.chdir(where)
    ns: dict = {"__name__": "guide"}
    try:
        for n, block in enumerate(blocks):
            first = block.splitlines()[0]
            m = re.fullmatch(r"# file: (\w+\.py)", first)
            if m:
                (where / m.group(1)).write_text(block, encoding="utf-8")
            code = compile(block, f"{GUIDE.name}[block {n}]", "exec")
            exec(code, ns)  # noqa: S102 - the guide's own code, the point of this test
    finally:
        mp.undo()
    return ns


def test_guide_runs_and_shows_every_verdict(guide_namespace):
    shown = {v.verdict for v in guide_namespace.values() if isinstance(v, StepResult)}
    for v in guide_namespace.values():
        if isinstance(v, dict):
            shown |= {r.verdict for r in v.values() if isinstance(r, StepResult)}
    assert shown == set(VERDICTS)


def test_guide_text_shows_each_verdict_with_its_output():
    text = GUIDE.read_text(encoding="utf-8")
    for verdict in VERDICTS:
        assert re.search(rf"^```text\n(?:.*\n)*?.*\b{verdict}\b", text, re.MULTILINE), verdict


def test_a_declared_scalar_is_accepted_and_an_undeclared_one_is_not():
    import sympy as sp

    from ntksym.derive.wellformed import unknown_symbols, well_formed
    from ntksym.errors import InputError
    from ntksym.extend import beta, index, scalar

    kappa = scalar("kappa")
    assert scalar("kappa") == kappa and kappa.is_positive and not kappa.is_integer
    assert unknown_symbols(kappa**2 * beta) == set()
    nu = sp.Symbol("nu_undeclared", positive=True)
    ok, detail = well_formed(sp.Eq(nu * beta, beta))
    assert not ok and "undefined symbol" in detail
    index("k")
    for bad in ("", "k", 3):
        with pytest.raises(InputError):
            scalar(bad)
    with pytest.raises(InputError, match="other assumptions"):
        scalar("kappa", positive=False)
