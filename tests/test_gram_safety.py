"""``ntksym gram`` never loses data: existing outputs, inputs, signals, permissions, --resume."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import ntksym
from ntksym.cli import main
from ntksym.errors import InputError
from ntksym.kernels.tiles import gram_to_file

# A subprocess running the real command line whose progress callback sends the process a
# signal after a given number of blocks: an interruption "midway", at a known point.
_DRIVER = """
import os, signal, sys
import ntksym.cli.gram as gram
after, signum = int(sys.argv[1]), getattr(signal, sys.argv[2])
class Bar:
    def __init__(self, *args):
        pass
    def __call__(self, done, total):
        if done == after:
            os.kill(os.getpid(), signum)
gram.ProgressBar = Bar
from ntksym.cli import main
sys.exit(main(sys.argv[3:]))
"""

DEPTH, BIAS = 3, 0.2


def _inputs(tmp_path: Path, n: int = 30, d: int = 4, seed: int = 0) -> Path:
    X = np.random.default_rng(seed).integers(-5, 6, size=(n, d)).astype(np.float64)
    np.save(tmp_path / "X.npy", X)
    return tmp_path / "X.npy"


def _args(data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "gram", str(data), "--activation", "relu", "--depth", str(DEPTH), "--bias-std", str(BIAS),
        "--backend", "numpy", "--tile", "6", "-o", str(out), "--quiet", *extra,
    ]  # fmt: skip


def _expected(data: Path) -> np.ndarray:
    return ntksym.kernel("relu", DEPTH, BIAS, backend="numpy")(np.load(data), get="ntk")


def _interrupt(args: list[str], after: int, sig: str = "SIGTERM") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", _DRIVER, str(after), sig, *args],
        capture_output=True,
        text=True,
    )


def _debris(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp" in p.name or ".partial" in p.name)


def test_existing_output_is_refused_unless_force(tmp_path: Path, capsys) -> None:
    data = _inputs(tmp_path)
    out = tmp_path / "K.npy"
    out.write_bytes(b"precious results")
    assert main(_args(data, out)) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "--force" in err and "Traceback" not in err
    assert out.read_bytes() == b"precious results"
    assert main(_args(data, out, "--force")) == 0
    np.testing.assert_array_equal(np.load(out), _expected(data))
    assert _debris(tmp_path) == []


@pytest.mark.parametrize("how", ["same", "relative", "symlink", "hardlink", "x2"])
def test_output_equal_to_an_input_is_always_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, how: str
) -> None:
    data = _inputs(tmp_path)
    before = data.read_bytes()
    other = tmp_path / "sub"
    other.mkdir()
    extra: list[str] = ["--force"]
    if how == "same":
        out = str(data)
    elif how == "relative":
        monkeypatch.chdir(other)
        out = "../X.npy"
    elif how == "symlink":
        (other / "link.npy").symlink_to(data)
        out = str(other / "link.npy")
    elif how == "hardlink":
        os.link(data, other / "hard.npy")
        out = str(other / "hard.npy")
    else:
        np.save(other / "Y.npy", np.ones((3, 4)))
        extra += ["--x2", str(other / "Y.npy")]
        out = str(other / "Y.npy")
        before = (other / "Y.npy").read_bytes()
    assert main(_args(data, Path(out), *extra)) == 2
    err = capsys.readouterr().err
    assert "would destroy the input" in err
    assert (Path(out).read_bytes() if how == "x2" else data.read_bytes()) == before


def test_library_refuses_to_write_over_its_memory_mapped_input(tmp_path: Path) -> None:
    data = _inputs(tmp_path)
    before = data.read_bytes()
    X = np.load(data, mmap_mode="r")
    with pytest.raises(InputError, match="would destroy the input"):
        gram_to_file(X[:10], None, data, activation="relu", depth=2, overwrite=True)
    assert data.read_bytes() == before


@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_output_mode_follows_the_umask(tmp_path: Path, mask: int) -> None:
    data = _inputs(tmp_path, n=8)
    old = os.umask(mask)
    try:
        assert main(_args(data, tmp_path / "K.npy")) == 0
    finally:
        os.umask(old)
    assert (tmp_path / "K.npy").stat().st_mode & 0o777 == 0o666 & ~mask


@pytest.mark.parametrize(("sig", "code"), [("SIGTERM", 143), ("SIGINT", 130)])
def test_signal_midway_removes_the_temporary_file(tmp_path: Path, sig: str, code: int) -> None:
    data = _inputs(tmp_path)
    out = tmp_path / "K.npy"
    np.save(out, np.arange(6.0))
    before = out.read_bytes()
    proc = _interrupt(_args(data, out, "--force"), after=3, sig=sig)
    assert proc.returncode == code, proc.stderr
    assert f"interrupted by {sig}" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert _debris(tmp_path) == []
    assert out.read_bytes() == before  # the old output is intact


def test_sigterm_from_outside_midway_leaves_nothing(tmp_path: Path) -> None:
    """As ``timeout`` or a scheduler sends it: once the temporary file exists, the write
    has started under the handlers; the signal must remove it and leave the old output."""
    data = _inputs(tmp_path, n=3000, d=3)  # 2850 blocks of 40: seconds of work
    out = tmp_path / "K.npy"
    np.save(out, np.arange(3.0))
    before = out.read_bytes()
    args = [*_args(data, out, "--force")]
    args[args.index("--tile") + 1] = "40"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ntksym", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    while proc.poll() is None and not any(".tmp" in p.name for p in tmp_path.iterdir()):
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate()
    assert proc.returncode == 143, err  # fails if the run ended before the signal
    assert "interrupted by SIGTERM" in err and "Traceback" not in err
    assert _debris(tmp_path) == []
    assert out.read_bytes() == before


def _record(out: Path) -> dict:
    return json.loads(out.with_name(out.name + ".partial.json").read_text())


def test_resume_continues_a_stopped_run(tmp_path: Path) -> None:
    data = _inputs(tmp_path)  # 30 rows, tile 6: 5 diagonal + 10 upper blocks
    out = tmp_path / "K.npy"
    proc = _interrupt(_args(data, out, "--resume"), after=4)
    assert proc.returncode == 143, proc.stderr
    assert "4 of 15 blocks are kept" in proc.stderr and "--resume" in proc.stderr
    assert not out.exists()
    assert _debris(tmp_path) == ["K.npy.partial", "K.npy.partial.json"]
    assert len(_record(out)["done"]) == 4
    assert oct((tmp_path / "K.npy.partial").stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    calls: list[tuple[int, int]] = []
    gram_to_file(
        np.load(data, mmap_mode="r"), None, out, activation="relu", depth=DEPTH, bias_std=BIAS,
        backend="numpy", tile=6, get="ntk", resume=True, progress=lambda d, t: calls.append((d, t)),
    )  # fmt: skip
    assert calls[0] == (4, 15) and calls[-1] == (15, 15) and len(calls) == 12
    np.testing.assert_array_equal(np.load(out), _expected(data))
    assert _debris(tmp_path) == []


def test_resume_after_sigkill_redoes_only_unrecorded_blocks(tmp_path: Path) -> None:
    # no handler runs on SIGKILL: the record lists only blocks flushed before it was written
    data = _inputs(tmp_path)
    out = tmp_path / "K.npy"
    proc = _interrupt(_args(data, out, "--resume"), after=5, sig="SIGKILL")
    assert proc.returncode == -9
    assert len(_record(out)["done"]) <= 5
    assert main(_args(data, out, "--resume")) == 0
    np.testing.assert_array_equal(np.load(out), _expected(data))
    assert _debris(tmp_path) == []


def test_a_run_without_resume_leaves_the_partial_state_alone(tmp_path: Path, capsys) -> None:
    data = _inputs(tmp_path)
    out = tmp_path / "K.npy"
    assert _interrupt(_args(data, out, "--resume"), after=2).returncode == 143
    kept = (tmp_path / "K.npy.partial").read_bytes(), (tmp_path / "K.npy.partial.json").read_text()
    assert main(_args(data, out)) == 0
    assert "pass --resume to continue" in capsys.readouterr().err
    np.testing.assert_array_equal(np.load(out), _expected(data))
    assert (tmp_path / "K.npy.partial").read_bytes() == kept[0]
    assert (tmp_path / "K.npy.partial.json").read_text() == kept[1]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (["--depth", "4"], "depth: 3 then, 4 now"),
        (["--tile", "7"], "tile: 6 then, 7 now"),
        (["--get", "both"], "get: 'ntk' then, 'both' now"),
        (["--activation", "erf"], "activation: 'relu' then, 'erf' now"),
        ("inputs", "inputs:"),
    ],
)
def test_resume_with_other_parameters_is_refused(
    tmp_path: Path, capsys, change: list[str] | str, match: str
) -> None:
    data = _inputs(tmp_path)
    out = tmp_path / "K.npy"
    assert _interrupt(_args(data, out, "--resume"), after=2).returncode == 143
    partial = (tmp_path / "K.npy.partial").read_bytes()
    if change == "inputs":
        X = np.load(data)
        X[7, 1] += 1
        np.save(data, X)
        change = []
    args = _args(data, out, "--resume")
    opt = {a: i for i, a in enumerate(args)}
    for name, value in zip(change[::2], change[1::2], strict=True):
        if name in opt:
            args[opt[name] + 1] = value
        else:
            args += [name, value]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "cannot resume" in err and match in err
    assert (tmp_path / "K.npy.partial").read_bytes() == partial and not out.exists()


@pytest.mark.parametrize("damage", ["nan", "value", "record"])
def test_damaged_resume_state_is_refused(tmp_path: Path, capsys, damage: str) -> None:
    data = _inputs(tmp_path)
    out = tmp_path / "K.npy"
    assert _interrupt(_args(data, out, "--resume"), after=3).returncode == 143
    K = np.load(tmp_path / "K.npy.partial", mmap_mode="r+")
    if damage == "nan":
        K[0, 8] = np.nan  # block 1: rows 0-5, columns 6-11
        match = "holds NaN or infinity"
    elif damage == "value":
        K[12, 15] *= 1.001  # block 2: rows 0-5, columns 12-17 (mirrored) -> the last kept
        K[0:6, 12:18] *= 1.001
        match = "differs from its recomputation"
    else:
        (tmp_path / "K.npy.partial.json").unlink()
        match = "resume state is incomplete"
    K.flush()
    del K
    assert main(_args(data, out, "--resume")) == 2
    assert match in capsys.readouterr().err
    assert not out.exists()


def test_a_finished_resumable_run_then_refuses_to_overwrite(tmp_path: Path, capsys) -> None:
    data = _inputs(tmp_path, n=12)
    out = tmp_path / "K.npy"
    assert main(_args(data, out, "--resume")) == 0
    np.testing.assert_array_equal(np.load(out), _expected(data))
    assert _debris(tmp_path) == []
    assert main(_args(data, out, "--resume")) == 2
    assert "already exists" in capsys.readouterr().err


def test_signal_handlers_are_restored_and_threads_work(tmp_path: Path) -> None:
    data = _inputs(tmp_path, n=8)
    X = np.load(data, mmap_mode="r")
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    gram_to_file(X, None, tmp_path / "A.npy", activation="relu", depth=DEPTH, bias_std=BIAS)
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before
    # outside the main thread no handler can be installed: the write still works
    errors: list[BaseException] = []

    def work() -> None:
        try:
            gram_to_file(X, None, tmp_path / "B.npy", activation="relu", depth=DEPTH, bias_std=BIAS)
        except BaseException as exc:  # reported below
            errors.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert errors == []
    np.testing.assert_array_equal(np.load(tmp_path / "A.npy"), np.load(tmp_path / "B.npy"))
    np.testing.assert_allclose(np.load(tmp_path / "A.npy"), _expected(data), rtol=1e-14)


def test_the_generated_numba_entry_points_release_the_gil() -> None:
    """The calls a Gram block makes from Python into compiled code run without the GIL, so
    the main thread can run the signal handler meanwhile (see the next two tests)."""
    import importlib

    from ntksym.codegen import arch_driver, arch_runtime

    generated = Path(ntksym.__file__).parent / "generated"
    names = sorted(p.stem for p in generated.glob("*_numba.py"))
    assert names, "no committed Numba modules found"
    for name in names:
        module = importlib.import_module(f"ntksym.generated.{name}")
        for entry in (module._fused_sym, module._fused):
            assert entry.targetoptions.get("nogil") is True, (name, entry.__name__)
    # a fused module's blocks of rows run _block, then _mirror (on a thread pool, or on the
    # caller's thread); _fused itself is Python since compile2
    for entry in (arch_runtime._block, arch_driver._mirror, arch_runtime._diag_rows):
        assert entry.targetoptions.get("nogil") is True, entry.__name__


def test_a_signal_is_handled_while_compiled_code_is_running() -> None:
    """``interruptible`` raises Interrupted while a GIL-free compiled call is still busy.

    The call spins until ``flag[0]`` is set. Run on the main thread it could only end when
    the watchdog sets the flag (a liveness guard of 60 s, not a timing assertion): then the
    test fails, because the interruption came after the call, not during it."""
    import numba

    from ntksym.kernels.safeio import Interrupted, interruptible, on_signals

    @numba.njit(nogil=True)
    def spin(flag: np.ndarray, started: np.ndarray) -> int:
        started[0] = 1
        n = 0
        while flag[0] == 0:
            n += 1
        return n

    flag, started = np.zeros(1, np.int64), np.zeros(1, np.int64)
    spin(np.ones(1, np.int64), started)  # compile outside the test
    started[0] = 0
    by_watchdog = threading.Event()

    def watchdog() -> None:
        if not released.wait(60):
            by_watchdog.set()
            flag[0] = 1

    def send() -> None:
        while started[0] == 0 and not released.is_set():
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGTERM)

    released = threading.Event()
    threads = [threading.Thread(target=watchdog), threading.Thread(target=send)]
    for t in threads:
        t.start()
    try:
        with pytest.raises(Interrupted) as info, on_signals():
            interruptible(lambda: spin(flag, started))
        assert info.value.exit_code == 128 + signal.SIGTERM
    finally:
        released.set()
        flag[0] = 1
        for t in threads:
            t.join()
    assert not by_watchdog.is_set(), "the signal was handled only after the compiled call"
    # the worker's errors reach the caller, and its value is returned
    with pytest.raises(InputError, match="from the worker"):
        interruptible(lambda: (_ for _ in ()).throw(InputError("from the worker")))
    assert interruptible(lambda: 42) == 42


def _cpu_seconds(pid: int) -> float:
    """CPU time a running process has used (Linux /proc; infinite where there is none)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("inf")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.slow
def test_sigterm_during_a_long_numba_block_stops_at_once_and_resume_finishes(
    tmp_path: Path,
) -> None:
    """SIGTERM arriving while the second of three long Numba blocks is computing.

    Block size by estimated cost (``kernels.finite``: 2 ns per entry and layer on one
    core): 300 x 300 entries at depth 5000 is 0.9 s estimated, several seconds measured
    under load. The process must end (120 s is only a liveness guard), keep the first block
    and nothing hidden, and ``--resume`` must then give exactly the uninterrupted result
    (integer inputs: the Gram products are exact whatever the block shape)."""
    X = np.random.default_rng(5).integers(-5, 6, size=(600, 4)).astype(np.float64)
    data, out = tmp_path / "X.npy", tmp_path / "K.npy"
    np.save(data, X)
    depth, weight = 5000, 2**0.5
    args = [
        "gram", str(data), "--activation", "relu", "--depth", str(depth), "--bias-std", "0.1",
        "--weight-std", repr(weight), "--backend", "numba", "--tile", "300", "--resume",
        "-o", str(out), "--quiet",
    ]  # fmt: skip
    record = out.with_name(out.name + ".partial.json")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ntksym", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    while proc.poll() is None:
        with contextlib.suppress(OSError, ValueError):
            if json.loads(record.read_text())["done"]:
                break
        time.sleep(0.01)
    settled = _cpu_seconds(proc.pid) + 0.5  # then inside the second block's compiled call
    while proc.poll() is None and _cpu_seconds(proc.pid) < settled:
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    text = err.decode()
    assert proc.returncode == 143, text  # fails if the run ended before the signal
    assert "interrupted by SIGTERM" in text and "of 3 blocks are kept" in text, text
    assert "Traceback" not in text
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert _record(out)["done"] in ([0], [0, 1])  # the first block, at most one more
    assert main(args) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["K.npy", "X.npy"]
    k = ntksym.kernel("relu", depth, 0.1, weight, backend="numba")
    np.testing.assert_allclose(np.load(out), k(X), rtol=1e-13, atol=0)


def test_a_failed_run_removes_exactly_the_directories_it_created(tmp_path: Path) -> None:
    """``-o keep/new/deeper/K.npy`` creates ``new`` and ``deeper``: an error or a signal
    removes those two, never ``keep`` (which existed), nor a directory holding anything."""
    data = _inputs(tmp_path, n=12)
    keep = tmp_path / "keep"
    keep.mkdir()
    out = keep / "new" / "deeper" / "K.npy"
    bad = tmp_path / "bad.npy"
    bad.write_text("not an array")
    # an error after the directories were made: a bad --x2 file (read after check_output)
    assert main([*_args(data, out), "--x2", str(bad)]) == 2
    assert keep.is_dir() and list(keep.iterdir()) == []
    # an error inside the library call: an infinite kernel
    with pytest.raises(InputError, match="infinite"):
        gram_to_file(np.load(data) * 10, None, out, activation="exp(u**2)", depth=3)
    assert list(keep.iterdir()) == []
    # a signal midway (the temporary file was in `deeper`)
    for sig, code in (("SIGTERM", 143), ("SIGINT", 130)):
        proc = _interrupt(_args(data, out), after=1, sig=sig)
        assert proc.returncode == code, proc.stderr
        assert list(keep.iterdir()) == []
    # a stopped resumable run keeps its state, so its directories stay
    proc = _interrupt(_args(data, out, "--resume"), after=1)
    assert proc.returncode == 143, proc.stderr
    assert sorted(p.name for p in out.parent.iterdir()) == ["K.npy.partial", "K.npy.partial.json"]
    assert main(_args(data, out, "--resume")) == 0
    np.testing.assert_array_equal(np.load(out), _expected(data))
    # an output directory that existed before a failed run is never removed
    assert main([*_args(data, out.with_name("L.npy")), "--x2", str(bad)]) == 2
    assert sorted(p.name for p in out.parent.iterdir()) == ["K.npy"]
