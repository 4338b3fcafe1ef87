"""Time ``ntksym notes`` for the seed (with the training chapter): before/after, medians.

Usage::

    python benchmarks/bench_notes.py                 # 3 rounds, PDF + Markdown + HTML
    python benchmarks/bench_notes.py --reps 5 --no-pdf

Each run is a fresh interpreter building the full notes of ``seed.py`` and
``linearised.py`` into a new directory, in three configurations run in turn (A B C A B C
...), so a machine whose speed drifts affects them alike:

* ``serial``: one process and no certification cache, which is how the notes were built
  before (``--jobs 1 --no-cache``);
* ``cold``: the closed forms certified by worker processes while the derivations are
  checked, with an empty cache (a first build);
* ``warm``: the same with the cache a previous build filled (a rebuild after a change
  to the prose, the derivations or the templates).

Printed for each: wall-clock and CPU seconds (user + system of the build and its
workers) of every run and their medians, and the ratio of medians to ``serial``. The
load average is printed too: on a shared machine wall-clock times are only comparable
within one call.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DERIVATIONS = ROOT / "src" / "ntksym" / "derivations"
MODES = ("serial", "cold", "warm")


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def one_run(mode: str, outdir: Path, cache: Path, formats: list[str]) -> tuple[float, float]:
    """Wall-clock and CPU seconds of one build in ``mode``."""
    cmd = [sys.executable, "-m", "ntksym", "notes", str(DERIVATIONS / "seed.py")]
    cmd += [str(DERIVATIONS / "linearised.py"), "-o", str(outdir), *formats]
    if mode == "serial":
        cmd += ["--jobs", "1", "--no-cache"]
    env = {**os.environ, "NTKSYM_CACHE_DIR": str(cache)}
    cpu0, t0 = _children_cpu(), time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    wall, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
    if proc.returncode != 0:
        raise SystemExit(f"ntksym notes exited with {proc.returncode}:\n{proc.stderr[-2000:]}")
    return wall, cpu


def main() -> None:
    """Run the rounds and print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--reps", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--no-pdf", action="store_true", help="skip the PDF (no TeX)")
    args = parser.parse_args()
    formats = ["--markdown", "--html"] + ([] if args.no_pdf else ["--pdf"])
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start")
    times: dict[str, list[tuple[float, float]]] = {m: [] for m in MODES}
    with tempfile.TemporaryDirectory(prefix="bench-notes-") as tmp:
        root = Path(tmp)
        warm_cache = root / "warm-cache"
        one_run("cold", root / "prime", warm_cache, formats)  # fills the warm cache
        for rep in range(args.reps):
            for mode in MODES:
                cache = warm_cache if mode == "warm" else root / f"cache-{mode}-{rep}"
                wall, cpu = one_run(mode, root / f"{mode}-{rep}", cache, formats)
                times[mode].append((wall, cpu))
                print(f"  round {rep + 1} {mode:6s}: {wall:6.1f} s wall, {cpu:6.1f} s CPU")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    base = statistics.median(w for w, _ in times["serial"])
    base_cpu = statistics.median(c for _, c in times["serial"])
    for mode in MODES:
        wall = statistics.median(w for w, _ in times[mode])
        cpu = statistics.median(c for _, c in times[mode])
        print(
            f"{mode:6s}: median {wall:6.1f} s wall ({wall / base:.2f} x serial), "
            f"{cpu:6.1f} s CPU ({cpu / base_cpu:.2f} x serial) over {len(times[mode])} runs"
        )


if __name__ == "__main__":
    main()
