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

Printed for each run: wall-clock seconds, the CPU seconds of the main process and of its
helpers (the certifying workers and TeX), and what the wall-clock time would be on two
idle cores, ``max(main, (main + helpers) / 2)`` for a parallel build and ``main +
helpers`` for the serial one (a lower bound: it assumes perfect sharing). Then the
medians, and their ratios to ``serial``. On a shared, loaded machine the measured
wall-clock times mostly say how busy the machine was (the load average is printed); the
CPU seconds do not depend on it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DERIVATIONS = ROOT / "src" / "ntksym" / "derivations"
MODES = ("serial", "cold", "warm")


#: Runs ``python -m ntksym ...`` and prints, at exit, its own CPU and its children's.
WRAPPER = """
import atexit, json, resource, runpy, sys
def report():
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    print("CPU " + json.dumps([own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime]),
          file=sys.stderr)
atexit.register(report)
sys.argv = ["ntksym", *sys.argv[1:]]
runpy.run_module("ntksym", run_name="__main__")
"""


def one_run(mode: str, outdir: Path, cache: Path, formats: list[str]) -> dict[str, float]:
    """Wall-clock seconds, main and helper CPU seconds of one build in ``mode``."""
    cmd = [sys.executable, "-c", WRAPPER, "notes", str(DERIVATIONS / "seed.py")]
    cmd += [str(DERIVATIONS / "linearised.py"), "-o", str(outdir), *formats]
    if mode == "serial":
        cmd += ["--jobs", "1", "--no-cache"]
    env = {**os.environ, "NTKSYM_CACHE_DIR": str(cache)}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"ntksym notes exited with {proc.returncode}:\n{proc.stderr[-2000:]}")
    main_cpu, helpers = json.loads(proc.stderr.rsplit("CPU ", 1)[1])
    if mode == "serial":
        idle = main_cpu + helpers
    else:
        idle = max(main_cpu, (main_cpu + helpers) / 2)
    return {"wall": wall, "main": main_cpu, "helpers": helpers, "idle": idle}


def main() -> None:
    """Run the rounds and print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--reps", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--no-pdf", action="store_true", help="skip the PDF (no TeX)")
    args = parser.parse_args()
    formats = ["--markdown", "--html"] + ([] if args.no_pdf else ["--pdf"])
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start")
    runs: dict[str, list[dict[str, float]]] = {m: [] for m in MODES}
    with tempfile.TemporaryDirectory(prefix="bench-notes-") as tmp:
        root = Path(tmp)
        warm_cache = root / "warm-cache"
        one_run("cold", root / "prime", warm_cache, formats)  # fills the warm cache
        for rep in range(args.reps):
            for mode in MODES:
                cache = warm_cache if mode == "warm" else root / f"cache-{mode}-{rep}"
                r = one_run(mode, root / f"{mode}-{rep}", cache, formats)
                runs[mode].append(r)
                print(
                    f"  round {rep + 1} {mode:6s}: {r['wall']:6.1f} s wall, CPU {r['main']:5.1f} s "
                    f"main + {r['helpers']:5.1f} s helpers; two idle cores: {r['idle']:5.1f} s"
                )
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    med = {m: {k: statistics.median(r[k] for r in runs[m]) for k in runs[m][0]} for m in MODES}
    for mode in MODES:
        m, b = med[mode], med["serial"]
        cpu, base_cpu = m["main"] + m["helpers"], b["main"] + b["helpers"]
        print(
            f"{mode:6s}: median {m['wall']:6.1f} s wall ({m['wall'] / b['wall']:.2f} x serial), "
            f"{cpu:5.1f} s CPU ({cpu / base_cpu:.2f} x), two idle cores {m['idle']:5.1f} s "
            f"({m['idle'] / b['idle']:.2f} x) over {len(runs[mode])} runs"
        )


if __name__ == "__main__":
    main()
