"""Time ``ntksym verify`` on the seed's derivation: full and ``--quick`` runs.

Usage::

    python benchmarks/bench_verify.py            # 3 repetitions of each, median
    python benchmarks/bench_verify.py --reps 5
    python benchmarks/bench_verify.py --rates    # the Monte-Carlo rates with 400 seeds

Each repetition runs in a fresh interpreter (``python -m ntksym verify --json``), so the
one-time costs (imports, SymPy caches, the closed-form dual kernels the checks use) are
counted as a user sees them. Printed: wall-clock seconds of each run, the median, and the
five slowest steps of the median run with their own seconds.

``--rates`` measures, with many more seeds than the verification uses, the fitted
``n^(-1/2)`` exponents of the four Monte-Carlo limit checks; their distance from -1/2 is
the model error that ``ntksym.derive.numeric.RATE_ALLOWANCE`` has to cover.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "src" / "ntksym" / "derivations" / "seed.py"


def one_run(quick: bool) -> tuple[float, list[dict]]:
    """Wall-clock seconds of one ``ntksym verify`` run and its JSON rows."""
    cmd = [sys.executable, "-m", "ntksym", "verify", str(SEED), "--json"]
    if quick:
        cmd.append("--quick")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"verify exited with {proc.returncode}:\n{proc.stderr[-2000:]}")
    return seconds, json.loads(proc.stdout)


def bench(quick: bool, reps: int) -> dict:
    """Run ``reps`` times; return the times, the median and the median run's rows."""
    runs = [one_run(quick) for _ in range(reps)]
    times = [t for t, _ in runs]
    med = statistics.median(times)
    rows = min(runs, key=lambda r: abs(r[0] - med))[1]
    return {"times": times, "median": med, "rows": rows}


def report(name: str, res: dict) -> None:
    """Print one mode's timings and its slowest five steps."""
    times = ", ".join(f"{t:.1f}" for t in res["times"])
    steps = sum(r["seconds"] for r in res["rows"])
    print(
        f"{name}: median {res['median']:.1f} s over {len(res['times'])} runs ({times} s); "
        f"{len(res['rows'])} steps, {steps:.1f} s inside the steps"
    )
    for r in sorted(res["rows"], key=lambda r: -r["seconds"])[:5]:
        print(f"    ({r['label']:>5}) {r['seconds']:6.2f} s  {r['verdict']:<9} {r['method']}")


def rates(n_samples: int = 400) -> None:
    """The limit checks' fitted exponents with many seeds (model error of the power law)."""
    sys.path.insert(0, str(ROOT))
    import derivations.seed as seed

    from ntksym.derive import numeric as num
    from ntksym.derive.symbols import L, l

    env: dict = {}
    for step in seed.DERIVATION.steps:
        env[step.label] = step.derive(env) if step.derive is not None else step.printed
    s1 = env["10"].args[-1]
    from ntksym.derive.rules import apply_rule

    nxt12 = apply_rule("gaussian_process", env["12"].rhs, seed.C_l)
    lim24 = env["24"].rhs
    for r in ("linearity", "independence", "gaussian_moments", "gaussian_process"):
        lim24 = apply_rule(r, lim24, seed.CL)
    for root in (101, 202):
        fits = {
            "12": num.nngp_monte_carlo(s1, nxt12, l, 2, n_samples=n_samples, seed=root)[0],
            "24": num.gradient_sum_monte_carlo(s1, lim24, L, n_samples=n_samples, seed=root)[0],
            "25": num.nngp_monte_carlo(
                s1,
                env["12.2"].rhs,
                l,
                3,
                widths=(64, 128, 256, 512),
                n_samples=n_samples,
                seed=root,
            )[0],
        }
        parts = num.parts_from(env, **seed.RECURSION_LABELS)
        ok, detail = num.monte_carlo(parts, n_samples=n_samples, seed=root)
        print(f"seed {root} (27): {detail}")
        for lab, fit in fits.items():
            print(
                f"seed {root} ({lab}): rate {fit.slope:.4f} +- {fit.slope_stderr:.4f} "
                f"chi2/dof {fit.chi2_dof:.2f}"
            )


def main() -> None:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--rates", action="store_true", help="measure the Monte-Carlo rates")
    args = p.parse_args()
    if args.rates:
        rates()
        return
    print(f"python {sys.version.split()[0]}, {SEED.relative_to(ROOT)}")
    report("full", bench(False, args.reps))
    report("quick", bench(True, args.reps))


if __name__ == "__main__":
    main()
