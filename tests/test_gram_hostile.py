"""Hostile and huge inputs to ``ntksym gram`` and ``ntksym.kernel`` not tried before (issue 13).

Each asserts the clear error (an ``InputError`` naming what is wrong and the fix, exit 2 on
the command line) and that nothing is left on disk.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import ntksym
from ntksym.cli import main
from ntksym.errors import InputError
from ntksym.kernels.tileplan import parse_bytes


@pytest.mark.parametrize("text", ["1e400", "1e30", "9e99G"])
def test_an_absurd_memory_budget_is_refused(text: str) -> None:
    # "1e400" was float('inf') and then int(inf): a raw OverflowError
    with pytest.raises(InputError, match="--memory must be at most 2\\^80 bytes"):
        parse_bytes(text)


def _rows(scale: float) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((5, 3)) * scale


@pytest.mark.parametrize(
    ("activation", "backend"),
    [("relu", "numba"), ("relu", "dual"), ("tanh", "numpy"), ("erf", "numpy")],
)
def test_inputs_whose_squared_norm_overflows_are_refused(activation: str, backend: str) -> None:
    # |x|^2 = 1e400: tanh's NumPy module (the stand-in while Numba compiles) raised a raw
    # UFuncTypeError, the dual path named an internal 's11', the others blamed 'the NNGP'
    k = ntksym.kernel(activation, 3, backend=backend)
    with pytest.raises(InputError, match="squared norm .* row 0 of X1 overflows float64"):
        k(_rows(1e200))
    X2 = _rows(1.0)
    X2[3] *= 1e300
    with pytest.raises(InputError, match="row 3 of X2 overflows float64.*scale the inputs"):
        k(_rows(1.0), X2, get="nngp")


def test_a_first_layer_variance_that_overflows_is_refused() -> None:
    k = ntksym.kernel("erf", 2, weight_std=1e160)  # |x|^2 is finite, w^2 |x|^2 / d is not
    with pytest.raises(InputError, match="first-layer variance .* weight_std or bias_std down"):
        k(_rows(1.0))
    k = ntksym.kernel("relu", 1, weight_std=1e150)  # finite: 1e300 |x|^2 / d
    assert np.all(np.isfinite(k(_rows(1.0))))


def test_gram_refuses_huge_inputs_and_memory_before_writing(tmp_path: Path, capsys) -> None:
    np.save(tmp_path / "X.npy", _rows(1e200))
    out = tmp_path / "K.npy"
    args = ["gram", str(tmp_path / "X.npy"), "--activation", "tanh", "--depth", "2", "-o", str(out)]
    assert main([*args, "--quiet"]) == 2
    assert "overflows float64" in capsys.readouterr().err
    np.save(tmp_path / "X.npy", _rows(1.0))
    assert main([*args, "--memory", "1e400", "--quiet"]) == 2
    assert "--memory must be at most" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["X.npy"]
