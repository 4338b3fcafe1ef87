"""``ntksym converge``: the finite-width NTK approaching its infinite-width limit.

Samples networks of growing hidden width (:func:`ntksym.empirical.convergence_study`),
prints the mean relative distance of the empirical NTK from the limit with its
standard error at each width, and the fitted log-log slope (theory: -1/2).
"""

from __future__ import annotations

import argparse

import numpy as np

from ntksym.cli.options import add_network_options, parse_widths

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the command's options."""
    add_network_options(parser, activation="relu", depth=3, bias_std=0.1, min_depth=2)
    parser.add_argument(
        "--widths", default="64,128,256,512,1024", help="comma-separated hidden widths"
    )
    parser.add_argument("--inputs", type=int, default=20, help="number of random inputs")
    parser.add_argument("--features", type=int, default=10, help="input dimension n0")
    parser.add_argument("--samples", type=int, default=24, help="networks per width")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    """Run the study and print its table; 0 if the slope is within 3 errors of -1/2."""
    from ntksym import empirical

    widths = parse_widths(args.widths)
    X = np.random.default_rng(args.seed).standard_normal((args.inputs, args.features))
    res = empirical.convergence_study(
        X,
        args.depth,
        widths,
        args.activation,
        args.bias_std,
        args.weight_std,
        n_samples=args.samples,
        seed=args.seed,
    )
    print(f"{'width':>8}  {'mean ||Θ_n − Θ_∞|| / ||Θ_∞||':>30}  {'std. error':>12}")
    for n, m, e in zip(res.widths, res.mean_distance, res.stderr_distance, strict=True):
        print(f"{n:>8d}  {m:>30.5f}  {e:>12.5f}")
    print(
        f"\nfitted slope {res.slope:+.3f} ± {res.slope_stderr:.3f} (theory −0.5); "
        f"chi²/dof {res.chi2_dof:.2f}"
    )
    ok = abs(res.slope + 0.5) <= 3 * res.slope_stderr
    print("consistent with width^(-1/2): " + ("yes" if ok else "no"))
    return 0 if ok else 1
