"""``ntksym gram DATA.npy --activation relu --depth 5 [...] -o K.npy``: Gram matrices of files.

The work is done by :func:`ntksym.kernels.tiles.gram_to_file` (see there for the memory
bound, the protection of existing files and ``--resume``). ``--network NET.py`` instead of
the homogeneous network's options takes a described network from a Python file that
defines ``net`` (a ``ntksym.stax`` layer, its triple or a description); the file is
imported as a module, as ``ntksym verify`` imports derivation files (a string is never
evaluated).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ntksym.architecture.description import Net
from ntksym.architecture.loading import load_network
from ntksym.cli.options import ProgressBar, add_network_options
from ntksym.errors import InputError
from ntksym.kernels.safeio import check_output, remove_created
from ntksym.kernels.tiles import gram_to_file, load_matrix, parse_bytes, resume_paths

__all__ = ["configure", "run"]

#: Show a progress bar by default when there are at least this many kernel entries.
PROGRESS_MIN_ENTRIES = 4_000_000


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the gram arguments to ``parser``."""
    parser.description = (
        "NNGP/NTK Gram matrix of the rows of DATA.npy (against --x2 or itself), written to a "
        ".npy file block by block through a memory map: working memory stays within --memory "
        "(one block of c*t^2 float64 numbers, c = 4 for Numba, 24 for NumPy), whatever the "
        "size of the inputs and output. The output appears only when complete; an existing "
        "file is replaced only with --force, an input file never."
    )
    parser.add_argument("data", help="inputs: a .npy file of shape (N, d), real dtype")
    add_network_options(parser)
    for action in parser._actions:  # (argparse has no public way to relax ``required``)
        if action.dest in ("activation", "depth"):
            action.required = False
            action.help = (action.help or "").replace("(required)", "(required without --network)")
    parser.add_argument(
        "--network",
        default=None,
        metavar="NET.py",
        help="a Python file defining `net`, a ntksym.stax network (e.g. net = stax.serial("
        "stax.Dense(512, 1.5, 0.1), stax.Relu(), stax.Dense(1))): its kernel instead of "
        "--activation/--depth/--bias-std/--weight-std",
    )
    parser.add_argument(
        "--get",
        choices=("nngp", "ntk", "both"),
        default="ntk",
        help="default: ntk; 'both' writes shape (2, N1, N2): [0] NNGP, [1] NTK",
    )
    parser.add_argument("--x2", default=None, help="second inputs .npy (N2, d); default: DATA")
    parser.add_argument("-o", "--output", required=True, help="output .npy file")
    parser.add_argument("--force", action="store_true", help="replace an existing output file")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="make the run resumable: finished blocks are kept in OUTPUT.partial (with a "
        "record, OUTPUT.partial.json) if it is stopped, and the same command with --resume "
        "continues it, checking and skipping the kept blocks",
    )
    parser.add_argument(
        "--backend",
        choices=("auto", "numba", "numpy", "dual", "layers", "fused"),
        default="auto",
        help="default: auto; numba, numpy, dual for the homogeneous network, layers and "
        "fused for --network",
    )
    parser.add_argument(
        "--memory",
        default="1G",
        help="working-memory budget (bytes; K/M/G suffixes), default 1G; picks the block size",
    )
    parser.add_argument(
        "--block-seconds",
        default="60",
        metavar="S",
        help="longest a block should take (wall-clock seconds, >= 1), default 60: the block "
        "side is lowered (to a power of two, not below 64) after timing the kernel on a "
        "sample of the inputs, so that a stopped --resume run loses at most about that much; "
        "a soft bound: the rate is measured once, before the run, so blocks take longer if "
        "the machine's load rises during it (or if 64 x 64 entries already take longer)",
    )
    parser.add_argument(
        "--tile", type=int, default=None, help="block side (overrides --memory, --block-seconds)"
    )
    parser.add_argument(
        "--dtype",
        choices=("float64", "float32"),
        default="float64",
        help="stored dtype, default float64; float32 halves the file (computed in float64, "
        "rounded once: relative error <= 6e-8 per entry)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _network(args: argparse.Namespace) -> Net | None:
    """The ``--network`` description (checked against the homogeneous options), or None."""
    if args.network is None:
        if args.activation is None or args.depth is None:
            raise InputError("gram needs --activation and --depth, or --network NET.py")
        return None
    given = [
        flag
        for flag, value, default in (
            ("--activation", args.activation, None),
            ("--depth", args.depth, None),
            ("--bias-std", args.bias_std, 0.0),
            ("--weight-std", args.weight_std, 1.0),
        )
        if value != default
    ]
    if given:
        raise InputError(
            f"--network carries its own activations, depth and variances: drop {', '.join(given)}"
        )
    return load_network(args.network)


def run(args: argparse.Namespace) -> int:
    """Compute and write the Gram matrix; print its path. Returns 0."""
    inputs = [Path(p) for p in (args.data, args.x2) if p is not None]
    created = check_output(Path(args.output), inputs, overwrite=args.force)  # before reading
    try:
        return _run(args)
    except BaseException:  # an error or a signal: remove the directories made above, if empty
        remove_created(created)
        raise


def _run(args: argparse.Namespace) -> int:
    """:func:`run` once the output's directory exists."""
    network = _network(args)
    X1 = load_matrix(args.data, "DATA")
    X2 = load_matrix(args.x2, "--x2") if args.x2 is not None else None
    partial, _ = resume_paths(args.output)
    if not args.resume and partial.exists():
        print(
            f"ntksym gram: note: {partial} holds the finished blocks of a stopped resumable "
            "run; this run starts afresh and leaves them (pass --resume to continue instead)",
            file=sys.stderr,
        )
    entries = X1.shape[0] * (X1 if X2 is None else X2).shape[0]
    bar = ProgressBar("ntksym gram", "block", not args.quiet and entries >= PROGRESS_MIN_ENTRIES)
    path = gram_to_file(
        X1,
        X2,
        args.output,
        activation=args.activation,
        depth=args.depth,
        bias_std=args.bias_std,
        weight_std=args.weight_std,
        network=network,
        get=args.get,
        backend=args.backend,
        memory=parse_bytes(args.memory),
        tile=args.tile,
        block_seconds=args.block_seconds,
        progress=bar,
        overwrite=args.force,
        resume=args.resume,
        dtype=args.dtype,
    )
    print(path)
    return 0
