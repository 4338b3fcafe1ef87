"""``ntksym train``: finite networks trained by gradient descent vs the infinite-width prediction.

The study is :func:`ntksym.training.width_study` (see there for what is compared and why);
this module parses the options, prints the table and, with ``-o DIR``, draws the figure
(which needs the ``plot`` extra, checked before the study starts).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ntksym.cli.options import (
    ProgressBar,
    add_network_options,
    parse_widths,
    require_matplotlib,
    writable_directory,
)
from ntksym.training import plot_study, width_study

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the command's options."""
    parser.add_argument(
        "--widths", default="64,256,1024,4096,16384", help="comma-separated hidden widths"
    )
    parser.add_argument("--seeds", type=int, default=16, help="networks per width")
    add_network_options(
        parser,
        activation="tanh",
        depth=2,
        bias_std=0.3,
        weight_std=None,
        min_depth=2,
        activation_help="registered activation name (tanh: smooth, as the theory assumes)",
    )
    parser.add_argument("--steps", type=int, default=200, help="gradient-descent steps")
    parser.add_argument(
        "--learning-rate",
        type=float,
        default=None,
        help="step size (default 0.5 / largest NTK eigenvalue)",
    )
    parser.add_argument("--train-points", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "-o",
        "--output",
        default=None,
        metavar="DIR",
        help="write training_curves.pdf/.png into DIR",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Run the study, print the gap table and fitted rate; 0 if the gap shrinks significantly."""
    widths = parse_widths(args.widths)
    if args.output:
        require_matplotlib("ntksym train -o DIR")
        writable_directory(Path(args.output), "-o/--output")
    study = width_study(
        widths,
        n_seeds=args.seeds,
        depth=args.depth,
        activation=args.activation,
        bias_std=args.bias_std,
        learning_rate=args.learning_rate,
        steps=args.steps,
        n_train=args.train_points,
        seed=args.seed,
        progress=ProgressBar("ntksym train", "networks", not args.quiet),
    )
    print(
        f"{args.activation}, depth {study.depth}, eta = {study.learning_rate:.4g}, "
        f"t = {study.steps}, {study.n_seeds} seeds per width"
    )
    print(f"{'width':>8}  {'RMS gap ||f_t - hat f_t||':>26}  {'std. error':>11}")
    for n, m, e in zip(study.widths, study.gap_mean, study.gap_stderr, strict=True):
        print(f"{n:>8d}  {m:>26.5f}  {e:>11.5f}")
    dev = (study.slope + 0.5) / study.slope_stderr
    print(
        f"\nfitted rate: gap ~ width^({study.slope:+.3f} ± {study.slope_stderr:.3f}) "
        f"(theory -0.5; {dev:+.1f} sigma), chi2/dof {study.chi2_dof:.2f}"
    )
    print(
        f"against the linearised model trained by the same discrete steps: "
        f"width^({study.slope_gd:+.3f} ± {study.slope_gd_stderr:.3f})"
    )
    print(f"discretisation floor (GD vs gradient flow, infinite width): {study.floor:.2e}")
    print(
        f"infinite-width expected training loss at t = {study.steps}: "
        f"{study.loss_infinite[-1]:.4g}; finite widths: "
        + ", ".join(
            f"{n}: {v:.4g}" for n, v in zip(study.widths, study.loss_mean[:, -1], strict=True)
        )
    )
    print(f"{study.seconds:.1f} s")
    if args.output:
        for p in plot_study(study, args.output):
            print(f"wrote {p}")
    return 0 if study.slope + 3 * study.slope_stderr < 0 else 1
