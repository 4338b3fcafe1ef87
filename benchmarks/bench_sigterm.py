"""How long ``ntksym gram`` takes to stop after SIGTERM arrives during a long Numba block.

Peers, side by side in one run: this tree and another source tree (``--base``, e.g. a
checkout of main: ``git worktree add /tmp/base main`` then ``--base /tmp/base/src``). For
each, ``ntksym gram`` of 600 integer-valued rows (d = 4), relu, depth ``--depth``,
``--tile 300`` (3 blocks), ``--resume``, backend numba, is started; when the resume
record shows the first block finished and the process has then used 1 s more CPU time
(so that it is inside the second block), SIGTERM is sent. Printed per tree: the exit status,
the wall time from the signal to the exit, the CPU time the process used after the signal
(from ``/proc`` before and ``wait4`` after) and the CPU time of its first block, and the
ratio (base / this tree) of the CPU time after the signal. A tree that ends the block before
it handles the signal spends about one block of CPU time after it.

Usage::

    python benchmarks/bench_sigterm.py --base /tmp/base/src [--depth 5000]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parents[1] / "src"
#: CPU seconds the process spends in the second block before the signal is sent.
SETTLE = 1.0


def _cpu(pid: int) -> float:
    """User + system CPU seconds of a running process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop(src: Path, depth: int, folder: Path) -> dict[str, float]:
    """Run one interrupted gram with ``src`` first on the path; its figures."""
    data, out = folder / "X.npy", folder / "K.npy"
    X = np.random.default_rng(5).integers(-5, 6, size=(600, 4)).astype(np.float64)
    np.save(data, X)
    env = {**os.environ, "PYTHONPATH": str(src), "NTKSYM_BACKGROUND_COMPILE": "0"}
    args = [
        sys.executable, "-m", "ntksym", "gram", str(data), "--activation", "relu",
        "--depth", str(depth), "--bias-std", "0.1", "--weight-std", "1.4142135623730951",
        "--backend", "numba", "--tile", "300", "--resume", "-o", str(out), "--quiet",
    ]  # fmt: skip
    record = out.with_name(out.name + ".partial.json")
    proc = subprocess.Popen(args, env=env, stderr=subprocess.PIPE)
    started = time.monotonic()
    while proc.poll() is None:
        try:
            if json.loads(record.read_text())["done"]:
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.01)
    cpu_first = _cpu(proc.pid)
    # wait until the process has spent 1 s of CPU more: it is inside the second block's
    # compiled call (between blocks it runs Python for milliseconds only)
    while proc.poll() is None and _cpu(proc.pid) < cpu_first + SETTLE:
        time.sleep(0.01)
    cpu_at_signal = _cpu(proc.pid)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, status, usage = os.wait4(proc.pid, 0)
    ended = time.monotonic()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "exit": proc.returncode,
        "wall to signal s": sent - started,
        "cpu to first block s": cpu_first,
        "wall after signal s": ended - sent,
        "cpu after signal s": usage.ru_utime + usage.ru_stime - cpu_at_signal,
    }


def main() -> None:
    """Print the figures of both trees and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="the other tree's src/")
    parser.add_argument("--depth", type=int, default=5000)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f}; depth {args.depth}, 3 blocks of 300 x 300")
    rows = {}
    for name, src in (("base", args.base), ("this tree", HERE)):
        with tempfile.TemporaryDirectory() as folder:
            rows[name] = stop(src, args.depth, Path(folder))
        print(name, {k: round(v, 2) for k, v in rows[name].items()})
    ratio = rows["base"]["cpu after signal s"] / max(rows["this tree"]["cpu after signal s"], 1e-3)
    print(f"CPU after the signal, base / this tree: {ratio:.3g}")


if __name__ == "__main__":
    main()
