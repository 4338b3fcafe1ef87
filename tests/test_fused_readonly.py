"""The fused kernel's compiled code is cached when the package itself is read-only.

As after ``pip install`` into a system site-packages: the package directory cannot be
written, so the generated module of a described network and Numba's cache of it must both
live in ``$NTKSYM_CACHE_DIR`` (:mod:`ntksym.codegen.architecture`). A copy of the package
under test is made read-only and run, as an unprivileged user when the tests run as root
(root may write anywhere), in two fresh processes on one empty cache directory: the first
compiles, the second must load every compiled function from the cache (Numba's counters
of hits and misses), and neither may write into the package.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import ntksym

NOBODY = 65534

_CHILD = """
import json
import numpy as np
from ntksym import stax
from ntksym.codegen.architecture import fused_kernel

net = stax.serial(stax.Dense(8, 1.2, 0.1), stax.Relu(), stax.Dense(1, 1.0, 0.1))
X = np.random.default_rng(0).standard_normal((40, 5))
out = net.kernel_fn(X, backend="fused")
mod = fused_kernel(net.description).module
stats = {name: getattr(mod, name).stats for name in ("_block", "_diag_rows")}
print(json.dumps({
    "module": mod.__file__,
    "hits": sum(sum(s.cache_hits.values()) for s in stats.values()),
    "misses": sum(sum(s.cache_misses.values()) for s in stats.values()),
    "nngp": out.nngp.tolist(),
}))
"""


def _prefix() -> list[str]:
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("root without setpriv: no user for whom a directory is read-only")
    return [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]


def _tree(root: Path) -> dict[str, float]:
    return {str(p.relative_to(root)): p.stat().st_mtime for p in root.rglob("*")}


@pytest.fixture
def site() -> Iterator[Path]:
    """A read-only copy of the package under test, and a writable cache beside it."""
    root = Path(tempfile.mkdtemp(prefix="ntksym-ro-"))
    root.chmod(0o755)
    pkg = Path(ntksym.__file__).parent
    shutil.copytree(pkg, root / "site" / "ntksym", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "cache").mkdir(mode=0o777)
    (root / "cache").chmod(0o777)
    for p in [root / "site", *(root / "site").rglob("*")]:
        p.chmod(0o555 if p.is_dir() else 0o444)
    yield root
    for p in [root / "site", *(root / "site").rglob("*")]:
        p.chmod(0o755)
    shutil.rmtree(root)


@pytest.mark.slow
def test_compiled_code_is_cached_outside_a_read_only_package(site: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_", "NTKSYM_"))}
    env.update(
        PYTHONPATH=str(site / "site"),
        NTKSYM_CACHE_DIR=str(site / "cache"),
        HOME=str(site / "cache"),
        NUMBA_NUM_THREADS="1",
    )
    before = _tree(site / "site")
    runs = []
    for _ in range(2):
        proc = subprocess.run(
            [*_prefix(), sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    cold, cached = runs
    assert cold["module"].startswith(str(site / "cache"))
    assert cold["misses"] > 0  # the first process compiled, and wrote Numba's cache
    assert cached["misses"] == 0 and cached["hits"] >= 2  # the second loaded it
    assert cached["nngp"] == cold["nngp"]
    assert _tree(site / "site") == before  # nothing written into the package
    assert list((site / "cache" / "kernels" / "__pycache__").glob("arch_*.nbi"))
