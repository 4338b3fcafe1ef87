"""The installed package is complete: run from any directory, with its data files.

CI installs ntksym into a fresh environment and runs these tests from the checkout; with
the src/ layout the tests import the installed copy, so a file missing from the wheel
fails here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import ntksym
from ntksym.codegen.files import package_generated_dir, read_header
from ntksym.codegen.spec import COMMITTED, kernel_spec
from ntksym.derive.loader import package_derivations_dir

PACKAGE = Path(ntksym.__file__).resolve().parent


def test_committed_kernels_ship_with_the_package():
    folder = package_generated_dir()
    assert folder.parent == PACKAGE
    for name in COMMITTED:
        for backend in ("numba", "numpy"):
            path = folder / f"{kernel_spec(name).slug}_{backend}.py"
            assert path.is_file(), f"{path} missing from the installed package"
            assert read_header(path.read_text(encoding="utf-8")) is not None


def test_derivations_templates_and_runtime_ship_with_the_package():
    names = {p.name for p in package_derivations_dir().glob("*.py")}
    assert {"seed.py", "weight_variance.py", "linearised.py"} <= names
    assert list((PACKAGE / "codegen" / "templates").glob("*.jinja"))
    assert list((PACKAGE / "notes" / "templates").glob("*.j2"))
    assert (PACKAGE / "py.typed").is_file()


def test_verify_runs_from_any_directory(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "ntksym", "verify", "--quick"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "== seed" in proc.stdout
    assert list(tmp_path.iterdir()) == []  # it wrote nothing where it ran


def test_codegen_without_output_dir_writes_here_not_into_the_package(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "ntksym", "codegen", "relu", "--backend", "numpy"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "relu_numpy.py").is_file()
