"""The command line, run as a user runs it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ntksym.cli import main


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ntksym", *args], capture_output=True, text=True, timeout=600
    )


def test_help_lists_commands() -> None:
    out = _run("--help")
    assert out.returncode == 0
    for command in ("demo", "verify", "codegen", "gram", "notes", "converge"):
        assert command in out.stdout


def test_no_command_prints_help_and_fails(capsys: pytest.CaptureFixture) -> None:
    assert main([]) == 2
    assert "usage" in capsys.readouterr().out


def test_demo_agrees_with_reference() -> None:
    out = _run("demo", "--depth", "2")
    assert out.returncode == 0, out.stderr
    assert "largest relative difference" in out.stdout
    assert "agreement: OK" in out.stdout


def test_demo_bad_activation_is_a_clear_error() -> None:
    out = _run("demo", "--activation", "__import__('os')")
    assert out.returncode == 2
    assert "error" in out.stderr and "unknown function '__import__'" in out.stderr
    assert "Traceback" not in out.stderr


def test_converge_reports_slope(capsys: pytest.CaptureFixture) -> None:
    code = main(
        ["converge", "--widths", "32,128,512", "--samples", "12", "--inputs", "3", "--depth", "2"]
    )
    out = capsys.readouterr().out
    assert "fitted slope" in out
    # seeded: the rate is consistent with width^(-1/2) (measured -0.525 +- 0.055)
    assert code == 0 and "consistent with width^(-1/2): yes" in out


def test_converge_bad_widths() -> None:
    assert main(["converge", "--widths", "a,b"]) == 2
