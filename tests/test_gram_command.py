"""``ntksym gram``: tiles equal one shot, bounded-memory blocks, bad input -> exit code 2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import ntksym
from ntksym import reference
from ntksym.cli import main
from ntksym.cli.options import ProgressBar
from ntksym.errors import InputError
from ntksym.kernels.tiles import choose_tile, gram_to_file, parse_bytes


def _int_inputs(n: int, d: int, seed: int) -> np.ndarray:
    """Small integers: every dot product is exact in float64, whatever the BLAS order."""
    return np.random.default_rng(seed).integers(-6, 7, size=(n, d)).astype(np.float64)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("with_x2", [False, True])
def test_tiles_equal_one_shot_exactly(tmp_path: Path, backend: str, with_x2: bool) -> None:
    X = _int_inputs(37, 5, seed=1)
    Y = _int_inputs(23, 5, seed=2) if with_x2 else None
    X[5] = X[3]  # a coincident pair
    X[9] = -X[4]  # an anti-parallel pair
    np.save(tmp_path / "X.npy", X)
    args = ["gram", str(tmp_path / "X.npy"), "--activation", "relu", "--depth", "6"]
    args += ["--bias-std", "0.3", "--get", "both", "--backend", backend, "--quiet"]
    if with_x2:
        np.save(tmp_path / "Y.npy", Y)
        args += ["--x2", str(tmp_path / "Y.npy")]
    assert main([*args, "-o", str(tmp_path / "tiled.npy"), "--tile", "8"]) == 0
    tiled = np.load(tmp_path / "tiled.npy")
    one = ntksym.kernel("relu", 6, 0.3, backend=backend)(X, Y, get=("nngp", "ntk"))
    np.testing.assert_array_equal(tiled[0], one.nngp)
    np.testing.assert_array_equal(tiled[1], one.ntk)
    if not with_x2:
        np.testing.assert_array_equal(tiled[1], tiled[1].T)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_file_matches_reference_on_float_inputs(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    X, Y = rng.standard_normal((9, 4)), rng.standard_normal((4, 4))
    np.save(tmp_path / "X.npy", X.astype(np.float32))
    np.save(tmp_path / "Y.npy", Y)
    out = tmp_path / "K.npy"
    code = main(
        [
            "gram",
            str(tmp_path / "X.npy"),
            "--x2",
            str(tmp_path / "Y.npy"),
            "--activation",
            "erf",
            "--depth",
            "3",
            "--bias-std",
            "0.2",
            "--weight-std",
            "1.3",
            "--get",
            "nngp",
            "--tile",
            "4",
            "-o",
            str(out),
            "--quiet",
        ]  # fmt: skip
    )
    assert code == 0
    ref = reference.kernel(
        "erf", X.astype(np.float32).astype(np.float64), Y, depth=3, bias_std=0.2, weight_std=1.3
    )[0]
    np.testing.assert_allclose(np.load(out), ref, rtol=1e-13)


def test_progress_bar_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    X = _int_inputs(20, 3, seed=4)
    calls: list[tuple[int, int]] = []
    bar = ProgressBar("ntksym gram", "block")

    def progress(done: int, total: int) -> None:
        calls.append((done, total))
        bar(done, total)

    gram_to_file(X, None, tmp_path / "K.npy", activation="relu", depth=2, tile=5, progress=progress)
    assert calls == [(b, 10) for b in range(1, 11)]  # 4 diagonal + 6 upper blocks
    err = capsys.readouterr().err
    assert "100.0% block 10/10" in err


def test_memory_budget_bounds_the_block() -> None:
    for backend, c in (("numba", 4), ("numpy", 24)):
        for mem in (2**20, 2**30, 7 * 2**30):
            t = choose_tile(mem, 256, backend)
            assert 8 * (c * t * t + 2 * t * 256) <= mem < 8 * (c * (t + 1) ** 2 + 2 * (t + 1) * 256)
    assert parse_bytes("1G") == 2**30
    assert parse_bytes("512MiB") == 512 * 2**20
    assert parse_bytes("2e9") == 2 * 10**9
    with pytest.raises(InputError, match="--memory"):
        parse_bytes("lots")


def _bad_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    nan = np.ones((3, 2))
    nan[1, 1] = np.nan
    cases = {
        "missing": (tmp_path / "missing.npy", None, "no such file"),
        "1-D": (tmp_path / "v.npy", np.ones(3), "must be 2-D"),
        "NaN": (tmp_path / "nan.npy", nan, "NaN or infinity at row 1, column 1"),
        "object": (tmp_path / "obj.npy", np.array([[1.0, None]], dtype=object), "pickle"),
        "complex": (tmp_path / "c.npy", np.ones((2, 2), dtype=complex), "real numbers"),
        "empty": (tmp_path / "e.npy", np.ones((0, 2)), "at least one row"),
        "text": (tmp_path / "t.npy", None, "not a .npy file"),
    }
    for path, arr, _ in cases.values():
        if arr is not None:
            np.save(path, arr, allow_pickle=True)
    (tmp_path / "t.npy").write_text("x,y\n1,2\n")
    return {k: (p, m) for k, (p, _, m) in cases.items()}


@pytest.mark.parametrize("case", ["missing", "1-D", "NaN", "object", "complex", "empty", "text"])
def test_bad_input_files_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    path, match = _bad_files(tmp_path)[case]
    out = tmp_path / "K.npy"
    code = main(["gram", str(path), "--activation", "relu", "--depth", "2", "-o", str(out)])
    assert code == 2
    err = capsys.readouterr().err
    assert "ntksym gram: error:" in err and match in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--activation", "relu6", "--depth", "2"], "unknown"),
        (["--activation", "relu", "--depth", "0"], "at least 1"),
        (["--activation", "relu", "--depth", "2", "--bias-std", "-1"], ">= 0"),
        (["--activation", "relu", "--depth", "2", "--memory", "1k"], "at least 1M"),
        (["--activation", "relu", "--depth", "2", "--x2", "{Y}"], "same number of columns"),
    ],
)
def test_bad_parameters_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], match: str
) -> None:
    np.save(tmp_path / "X.npy", np.ones((3, 2)))
    np.save(tmp_path / "Y.npy", np.ones((3, 4)))
    extra = [e.replace("{Y}", str(tmp_path / "Y.npy")) for e in extra]
    code = main(["gram", str(tmp_path / "X.npy"), *extra, "-o", str(tmp_path / "K.npy")])
    assert code == 2
    assert match in capsys.readouterr().err
    assert not (tmp_path / "K.npy").exists()
