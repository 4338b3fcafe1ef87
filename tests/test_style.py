"""The checkout is ruff-clean (lint and format), as docs/design.md asks; CI runs this."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TARGETS = [str(ROOT / d) for d in ("src", "tests", "benchmarks") if (ROOT / d).is_dir()]

pytestmark = pytest.mark.skipif(
    shutil.which("ruff") is None or not (ROOT / "pyproject.toml").is_file(),
    reason="needs ruff (the test extra) and a checkout",
)


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]])
def test_ruff(command):
    proc = subprocess.run(
        ["ruff", *command, *TARGETS], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
