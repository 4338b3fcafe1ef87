"""CPU time of the kinked rules' dual maps, this tree against another checkout, in one run.

Times ``ntksym.dual.kinked.kinked_maps`` (both maps) on random covariances (variances
0.5..2, |rho| < 0.99, seeded) for the split rule (the common path of kinked sums) and the
rule on sigma itself (products such as ``max(u, 0)*tanh(u)``), after a warm-up call, best
of ``repeats``; each tree runs in its own process, alternately, and the ratio is printed.

    python benchmarks/bench_kinked_maps.py OTHER_SRC [repeats]

``OTHER_SRC`` is the ``src`` directory of the other checkout (e.g. a worktree of main:
``git worktree add /tmp/base main`` then ``/tmp/base/src``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings

import numpy as np

CASES = [  # (activation, covariances)
    ("relu(u) + 0.1*tanh(u)", 1600),
    ("max(min(u, 1), -1) + 0.1*tanh(u)", 1600),
    ("max(u, 0)*tanh(u)", 200),
    ("max(min(u, 1), -1)*tanh(u)", 200),
]


def _covariances(n: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(0)
    s11, s22 = rng.uniform(0.5, 2.0, n), rng.uniform(0.5, 2.0, n)
    s12 = rng.uniform(-0.99, 0.99, n) * np.sqrt(s11 * s22)
    return s11, s12, s22, s11 * s22 - s12 * s12


def _child(repeats: int) -> None:
    """In the process of one tree: best CPU seconds per case, as JSON on stdout."""
    from ntksym.activations import get_activation
    from ntksym.dual import kinked

    out = {}
    for name, n in CASES:
        act = get_activation(name)
        args = _covariances(n)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kinked.kinked_maps(act, *(x[:2] for x in args))  # (compiles)
            best = np.inf
            for _ in range(repeats):
                t = time.process_time()
                kinked.kinked_maps(act, *args)
                best = min(best, time.process_time() - t)
        out[name] = best
    print(json.dumps(out))


def _run(src: str, repeats: int) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=src)
    res = subprocess.run(
        [sys.executable, __file__, "--child", str(repeats)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    if sys.argv[1] == "--child":
        _child(int(sys.argv[2]))
        return
    other = sys.argv[1]
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    here = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
    best: dict[str, dict[str, float]] = {"other": {}, "here": {}}
    for _ in range(2):  # alternately, so that a change of load hits both
        for key, src in (("other", other), ("here", here)):
            for name, t in _run(src, repeats).items():
                best[key][name] = min(best[key].get(name, np.inf), t)
    print(f"load average {os.getloadavg()[0]:.1f}; CPU seconds, best of {2 * repeats}")
    print("| activation | covariances | other: CPU s | here: CPU s | here / other |")
    print("|---|---|---|---|---|")
    for name, n in CASES:
        a, b = best["other"][name], best["here"][name]
        print(f"| `{name}` | {n} | {a:.3f} | {b:.3f} | {b / a:.2f} |")


if __name__ == "__main__":
    main()
