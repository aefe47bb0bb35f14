# SPDX-License-Identifier: Apache-2.0
"""Database generation throughput with 1 and 2 MPI ranks (default config, few samples).

    python benchmarks/bench_generate.py [--n-samples 24] [--config FILE]

Runs ``triqs-mlsolver generate`` twice in subprocesses (1 rank, then
``mpiexec -n 2``) on the same config and prints samples/s and the speed-up
(target >= 1.8x on 2 cores).  Start-up (imports, MPI launch) is included, as a
user sees it; use more samples to amortise it.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(n_ranks, cfg, n, out):
    cmd = [sys.executable, "-m", "triqs_mlsolver.cli.main", "-q", "generate", "-o", str(out),
           "--n-samples", str(n)]
    if cfg:
        cmd.insert(-4, str(cfg))
    if n_ranks > 1:
        mpiexec = Path(sys.executable).with_name("mpiexec")
        cmd = [str(mpiexec) if mpiexec.exists() else shutil.which("mpiexec"), "-n",
               str(n_ranks), *cmd]
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python"))
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-samples", type=int, default=24)
    ap.add_argument("--config", type=Path, default=None, help="default: the built-in recipe")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        t1 = run(1, args.config, args.n_samples, Path(d) / "one.h5")
        t2 = run(2, args.config, args.n_samples, Path(d) / "two.h5")
    print(f"generate, {args.n_samples} samples, config: {args.config or 'built-in default'}")
    print(f"{'ranks':>5s} {'wall [s]':>9s} {'samples/s':>10s} {'speed-up':>9s}")
    print(f"{1:5d} {t1:9.1f} {args.n_samples / t1:10.2f} {1.0:9.2f}")
    print(f"{2:5d} {t2:9.1f} {args.n_samples / t2:10.2f} {t1 / t2:9.2f}")


if __name__ == "__main__":
    main()
