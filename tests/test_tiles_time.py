"""``ntksym gram``'s blocks bounded in time: the planner, the rate probe, resume across plans.

The planner is a pure function of a measured rate (no wall-clock assertion anywhere: the
probe is tested against a simulated clock, and runs are given a rate).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import ntksym
from ntksym.cli import main
from ntksym.errors import InputError
from ntksym.kernels import tileplan
from ntksym.kernels.tileplan import MIN_TILE, check_block_seconds, measure_rate, time_tile
from ntksym.kernels.tiles import gram_to_file, resume_paths


def _int_inputs(n: int, d: int, seed: int) -> np.ndarray:
    """Small integers: every dot product is exact in float64, whatever the block's shape."""
    return np.random.default_rng(seed).integers(-6, 7, size=(n, d)).astype(np.float64)


@pytest.mark.parametrize(
    ("rate", "limit", "n1", "n2", "expected"),
    [
        (0.0, 5000, 10**5, 10**5, 5000),  # too fast to measure: the memory bound
        (1e-9, 5000, 200, 200, 5000),  # the whole matrix within the bound
        (1e-6, 9000, 10**5, 10**5, 4096),  # sqrt(6e7) = 7746 -> 4096
        (1e-6, 3000, 10**5, 10**5, 3000),  # memory binds first
        (1e-3, 5000, 10**5, 10**5, 128),  # sqrt(6e4) = 245 -> 128
        (1.0, 5000, 10**5, 10**5, MIN_TILE),  # 8 -> never below MIN_TILE
        (1.0, 10, 10**5, 10**5, 10),  # ... unless memory allows less
        (1e-3, 5000, 10**5, 10, 4096),  # blocks of t x 10: 6000 -> 4096
        (1e-3, 5000, 10, 10**5, 4096),
    ],
)
def test_time_tile_for_a_measured_rate(
    rate: float, limit: int, n1: int, n2: int, expected: int
) -> None:
    assert time_tile(rate, 60.0, limit, n1, n2) == expected


@pytest.mark.parametrize("rate", np.geomspace(1e-10, 1e-1, 37))
@pytest.mark.parametrize(("n1", "n2"), [(10**6, 10**6), (10**6, 300), (5000, 7000)])
def test_time_tile_is_the_largest_power_of_two_within_the_bound(
    rate: float, n1: int, n2: int
) -> None:
    limit, seconds = 20000, 60.0
    t = time_tile(rate, seconds, limit, n1, n2)

    def block_time(side: int) -> float:
        return rate * min(side, n1) * min(side, n2)

    assert MIN_TILE <= t <= limit
    if t == limit:
        return
    assert t & (t - 1) == 0  # a power of two
    assert block_time(t) <= seconds or t == MIN_TILE
    assert block_time(2 * t) > seconds


@pytest.mark.parametrize("bad", [0, 0.5, -3, "0", "abc", "nan", "inf", math.inf, True, None])
def test_bad_block_seconds_are_refused(bad: object) -> None:
    with pytest.raises(InputError, match="block.seconds.*>= 1"):
        check_block_seconds(bad)
    assert check_block_seconds("90") == 90.0


def test_bad_block_seconds_on_the_command_line_exit_2(tmp_path: Path, capsys) -> None:
    np.save(tmp_path / "X.npy", np.ones((3, 2)))
    args = ["gram", str(tmp_path / "X.npy"), "--activation", "relu", "--depth", "2"]
    code = main([*args, "--block-seconds", "-1", "-o", str(tmp_path / "K.npy")])
    assert code == 2
    assert "--block-seconds" in capsys.readouterr().err
    assert not (tmp_path / "K.npy").exists()


class _Clock:
    """A simulated clock, advanced by a simulated kernel: ``overhead + rate * entries``."""

    def __init__(self, overhead: float, rate: float) -> None:
        self.now, self.overhead, self.rate, self.calls = 0.0, overhead, rate, []

    def __call__(self) -> float:
        return self.now

    def kernel(self, A: np.ndarray, B: np.ndarray, get: tuple[str, ...]) -> list[np.ndarray]:
        self.calls.append((A.shape[0], B.shape[0], get))
        first = len(self.calls) in (1, 3)  # (the first of each pair compiles: not counted)
        self.now += self.overhead + self.rate * A.size / A.shape[1] * B.shape[0] + 5.0 * first
        return [np.zeros((A.shape[0], B.shape[0]))]


def test_measure_rate_leaves_out_the_cost_per_call(monkeypatch) -> None:
    clock = _Clock(overhead=0.5, rate=2e-4)
    monkeypatch.setattr(tileplan.time, "perf_counter", clock)
    X = np.ones((1000, 3))
    assert measure_rate(clock.kernel, X, None, ("ntk",)) == pytest.approx(2e-4, rel=1e-9)
    assert [c[:2] for c in clock.calls] == [(16, 16)] * 2 + [(16, 112)] * 2
    # one call suffices when its time per entry (cost per call included) is already small
    clock = _Clock(overhead=0.0, rate=1e-8)
    monkeypatch.setattr(tileplan.time, "perf_counter", clock)
    rate = measure_rate(clock.kernel, X, X[:50], ("nngp", "ntk"), small_enough=1e-6)
    assert rate == pytest.approx(1e-8, rel=1e-6)
    assert [c[:2] for c in clock.calls] == [(16, 16)] * 2
    assert clock.calls[0][2] == ("nngp", "ntk")


def test_the_kernel_probe_shares_the_sampling_on_cpu_time(monkeypatch) -> None:
    """Kernel._probe times a module's ``nngp`` by the planner's sampling (16 x 16 and
    16 x 112, best of two each) on the CPU clock, per entry-layer, once per module."""
    clock = _Clock(overhead=0.3, rate=6e-5)
    monkeypatch.setattr(tileplan.time, "process_time", clock)
    calls: list[tuple[int, int]] = []

    class Module:
        __name__ = "fake_numpy"

        @staticmethod
        def nngp(A, B, depth, bias_std, weight_std):
            calls.append((depth, bias_std))
            return clock.kernel(A, B, ("nngp",))[0]

    X = np.ones((500, 3))
    probe = ntksym.kernel("tanh", 3, bias_std=0.1)._probe(X, None)
    assert probe(Module) == pytest.approx(6e-5 / 3, rel=1e-9)
    assert probe(Module) == pytest.approx(6e-5 / 3, rel=1e-9)  # (kept, not timed again)
    assert [c[:2] for c in clock.calls] == [(16, 16)] * 2 + [(16, 112)] * 2
    assert calls == [(3, 0.1)] * 4


def _slow(monkeypatch, rate: float) -> list[float]:
    """Make every run measure ``rate`` (seconds per entry); returns the rates handed out."""
    given: list[float] = []

    def fake(*args, **kwargs) -> float:
        given.append(rate)
        return rate

    monkeypatch.setattr(tileplan, "measure_rate", fake)
    return given


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_time_bounded_blocks_give_the_one_shot_matrix(
    tmp_path: Path, monkeypatch, backend: str
) -> None:
    X = _int_inputs(150, 5, seed=1)
    X[7] = X[3]  # a coincident pair
    given = _slow(monkeypatch, 1e-3)  # 5 s allow 70 x 70 -> 64
    calls: list[tuple[int, int]] = []
    gram_to_file(
        X, None, tmp_path / "K.npy", activation="relu", depth=4, bias_std=0.2, get="both",
        backend=backend, block_seconds=5, progress=lambda d, t: calls.append((d, t)),
    )  # fmt: skip
    assert given == [1e-3] and calls[-1] == (6, 6)  # 3 row blocks of 64, 64, 22
    K = np.load(tmp_path / "K.npy")
    one = ntksym.kernel("relu", 4, 0.2, backend=backend)(X, get=("nngp", "ntk"))
    np.testing.assert_array_equal(K[0], one.nngp)
    np.testing.assert_array_equal(K[1], one.ntk)


def test_no_measurement_with_tile_or_a_small_matrix(tmp_path: Path, monkeypatch) -> None:
    given = _slow(monkeypatch, 1.0)
    X = _int_inputs(MIN_TILE, 3, seed=2)
    gram_to_file(X, None, tmp_path / "a.npy", activation="relu", depth=2)
    gram_to_file(np.vstack([X, X]), None, tmp_path / "b.npy", activation="relu", depth=2, tile=9)
    assert given == []


class _Stop(Exception):
    """Raised by a progress callback: a run stopped midway (its finished blocks kept)."""


def _stop_after(blocks: int):
    def progress(done: int, total: int) -> None:
        if done == blocks:
            raise _Stop

    return progress


def test_resume_keeps_the_plan_of_the_stopped_run(tmp_path: Path, monkeypatch) -> None:
    X = _int_inputs(200, 4, seed=3)
    out = tmp_path / "K.npy"
    kw = dict(activation="erf", depth=3, bias_std=0.1, backend="numpy", resume=True)
    _slow(monkeypatch, 1e-3)  # blocks of MIN_TILE = 64 at block_seconds=5: 4 x 4 -> 10
    with pytest.raises(_Stop):
        gram_to_file(X, None, out, block_seconds=5, progress=_stop_after(3), **kw)
    record = resume_paths(out)[1]
    assert '"tile": 64' in record.read_text()
    # the machine is now faster (or idle): the time bound alone would choose one block
    given = _slow(monkeypatch, 1e-9)
    calls: list[tuple[int, int]] = []
    gram_to_file(X, None, out, block_seconds=5, progress=lambda d, t: calls.append((d, t)), **kw)
    assert given == []  # the recorded plan is continued, not measured again
    assert calls[0] == (3, 10) and calls[-1] == (10, 10)
    K = np.load(out)
    np.testing.assert_array_equal(K, ntksym.kernel("erf", 3, 0.1, backend="numpy")(X))
    assert not record.exists()


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"tile": 100}, "tile: 64 then, 100 now"),
        ({"memory": 2**20}, "used blocks of side 64, and --memory 1048576 bytes allows at most"),
    ],
)
def test_resume_refuses_a_plan_it_cannot_continue(
    tmp_path: Path, monkeypatch, change: dict, match: str
) -> None:
    X = _int_inputs(200, 1000, seed=4)  # (1 MiB allows blocks of 43 with d = 1000)
    out = tmp_path / "K.npy"
    kw = dict(activation="relu", depth=2, backend="numpy", resume=True)
    _slow(monkeypatch, 1e-3)
    with pytest.raises(_Stop):
        gram_to_file(X, None, out, block_seconds=5, progress=_stop_after(2), **kw)
    partial = resume_paths(out)[0].read_bytes()
    with pytest.raises(InputError, match=match):
        gram_to_file(X, None, out, **change, **kw)
    assert resume_paths(out)[0].read_bytes() == partial and not out.exists()
