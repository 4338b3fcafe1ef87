"""float32 storage, computed in float64 and rounded once: ``k(X, dtype=...)``, ``gram --dtype``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import ntksym
from ntksym.cli import main
from ntksym.errors import InputError
from ntksym.kernels.tiles import gram_to_file

#: Relative error of rounding a float64 to the nearest float32 (unit roundoff).
U32 = 2.0**-24


def _inputs(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 6))


@pytest.mark.parametrize("act", ["relu", "erf"])
def test_float32_is_the_float64_result_rounded_once(act: str) -> None:
    X, Y = _inputs(40, 0), _inputs(17, 1)
    k = ntksym.kernel(act, depth=4, bias_std=0.2)
    for args in ((X,), (X, Y)):
        both64 = k(*args, get=("nngp", "ntk"))
        both32 = k(*args, get=("nngp", "ntk"), dtype=np.float32)
        for m64, m32 in zip(both64, both32, strict=True):
            assert m32.dtype == np.float32 and m32.shape == m64.shape
            err = np.abs(m32.astype(np.float64) - m64) / np.abs(m64)
            assert err.max() <= U32  # round to nearest: at most half an ulp
            assert err.max() > 0  # the rounding did happen
        single = k(*args, get="ntk", dtype="float32")
        np.testing.assert_array_equal(single, both32.ntk)
    assert k(X, dtype=np.float64).dtype == np.float64
    assert k(X, dtype=None).dtype == np.float64


@pytest.mark.parametrize("bad", [np.float16, np.int32, "complex128", "f8x", object])
def test_other_dtypes_are_refused(bad: object) -> None:
    k = ntksym.kernel("relu", depth=2)
    with pytest.raises(InputError, match="dtype must be float64 or float32"):
        k(_inputs(3, 0), dtype=bad)


def test_gram_file_is_float32_and_matches_the_kernel(tmp_path: Path) -> None:
    X = _inputs(30, 2)
    np.save(tmp_path / "X.npy", X)
    args = ["gram", str(tmp_path / "X.npy"), "--activation", "relu", "--depth", "3"]
    args += ["--bias-std", "0.3", "--quiet", "--tile", "8", "--get", "both"]
    assert main([*args, "-o", str(tmp_path / "K32.npy"), "--dtype", "float32"]) == 0
    assert main([*args, "-o", str(tmp_path / "K64.npy")]) == 0
    K32, K64 = np.load(tmp_path / "K32.npy"), np.load(tmp_path / "K64.npy")
    assert K32.dtype == np.float32 and K64.dtype == np.float64
    np.testing.assert_array_equal(K32, K64.astype(np.float32))
    assert (tmp_path / "K32.npy").stat().st_size < 0.55 * (tmp_path / "K64.npy").stat().st_size
    np.testing.assert_array_equal(K32[1], K32[1].T)


def test_gram_to_file_resumes_in_float32(tmp_path: Path) -> None:
    X = _inputs(20, 3)
    kw = {"activation": "erf", "depth": 2, "tile": 6, "resume": True, "dtype": np.float32}
    out = gram_to_file(X, None, tmp_path / "K.npy", **kw)
    K = np.load(out)
    assert K.dtype == np.float32
    np.testing.assert_allclose(K, ntksym.kernel("erf", 2)(X), rtol=U32, atol=0)
    with pytest.raises(InputError, match="dtype must be float64 or float32"):
        gram_to_file(X, None, tmp_path / "K2.npy", activation="erf", depth=2, dtype="int8")


def test_cli_refuses_other_dtypes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    np.save(tmp_path / "X.npy", _inputs(4, 0))
    args = ["gram", str(tmp_path / "X.npy"), "--depth", "2", "-o", str(tmp_path / "K.npy")]
    with pytest.raises(SystemExit) as exc:
        main([*args, "--dtype", "float16"])
    assert exc.value.code == 2
    assert "float32" in capsys.readouterr().err
