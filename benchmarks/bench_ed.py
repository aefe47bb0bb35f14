# SPDX-License-Identifier: Apache-2.0
"""Benchmark of the ED solver on one core.

Seconds per AIM (median over seeded random AIMs) for n_bath = 4 (full
diagonalisation), 6 and 8 (Lanczos) at beta = 50 and 10, the peak memory, the
ratio to n_bath = 4 in the same run, the cost of building the result from the
poles (``solution_from_poles`` of :mod:`triqs_mlsolver.solvers.solution` vs the
evaluation used by the ED solver), and a cProfile summary of n_bath = 8 at
beta = 50.

One core: ``OMP_NUM_THREADS``/``OPENBLAS_NUM_THREADS``/``MKL_NUM_THREADS`` are
set to 1 before numpy is imported (threadpoolctl is used as well when it is
installed).  The random AIMs are DMFT-like: ``U`` in [1, 4], ``mu = U/2 +-
0.5``, bath levels uniform in [-2, 2], ``sum_k V_k^2 = (D^2/4) x [0.5, 1.5]``.

Usage::

    PYTHONPATH=python python benchmarks/bench_ed.py [--n-aims 5] [--quick]
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import cProfile  # noqa: E402
import io  # noqa: E402
import pstats  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402

import numpy as np  # noqa: E402
from triqs_mlsolver.aim.params import AIMParams  # noqa: E402
from triqs_mlsolver.solvers.ed import TooManyStatesError, ed_poles, solve_ed  # noqa: E402
from triqs_mlsolver.solvers.solution import solution_from_poles  # noqa: E402

try:  # pragma: no cover - optional
    from threadpoolctl import threadpool_limits

    _LIMITS = threadpool_limits(limits=1)
    THREADS = "threadpoolctl limits=1 + OMP/OPENBLAS/MKL_NUM_THREADS=1"
except ImportError:
    THREADS = "OMP/OPENBLAS/MKL_NUM_THREADS=1 (threadpoolctl not installed)"

MESH = dict(n_iw=1025, n_tau=10001, n_l=30)


def random_aim(k, beta, seed):
    rng = np.random.default_rng(seed)
    U = rng.uniform(1.0, 4.0)
    mu = U / 2 + rng.uniform(-0.5, 0.5)
    eps = np.sort(rng.uniform(-2.0, 2.0, k))
    V = rng.uniform(0.5, 1.5, k)
    V *= np.sqrt(0.25 * rng.uniform(0.5, 1.5) / np.sum(V**2))
    return AIMParams(U=U, mu=mu, beta=beta, eps_k=eps, V_k=V)


def run_config(k, beta, n_aims, **options):
    times, parts, fails, poles, kept = [], [], 0, [], []
    for seed in range(n_aims):
        p = random_aim(k, beta, seed)
        t0 = time.perf_counter()
        try:
            sol = solve_ed(p, **MESH, **options)
        except TooManyStatesError:
            fails += 1
            continue
        times.append(time.perf_counter() - t0)
        d = sol.diagnostics
        parts.append((d["time_poles"], d["time_solution"]))
        poles.append(d["n_poles"][0])
        kept.append(d.get("n_states_kept", 4 ** (k + 1)))
    # peak memory of one solve (tracemalloc tracks numpy's buffers)
    tracemalloc.start()
    try:
        solve_ed(random_aim(k, beta, 0), **MESH, **options)
    except TooManyStatesError:
        pass
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return dict(times=times, parts=parts, fails=fails, poles=poles, kept=kept, peak=peak)


def fmt_row(k, beta, label, r, base):
    if not r["times"]:
        return f"{k:>3} {beta:>5g} {label:<28} all {r['fails']} AIMs: TooManyStatesError"
    med = statistics.median(r["times"])
    tp = statistics.median(x[0] for x in r["parts"])
    ts = statistics.median(x[1] for x in r["parts"])
    ratio = f"{med / base:7.1f}" if base else "    1.0"
    return (f"{k:>3} {beta:>5g} {label:<28} {med:8.3f} {min(r['times']):7.3f} "
            f"{max(r['times']):7.3f} {tp:7.3f} {ts:7.3f} {ratio} "
            f"{statistics.median(r['poles']):7.0f} {statistics.median(r['kept']):6.0f} "
            f"{r['peak'] / 2**20:8.1f} {r['fails']:>5}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-aims", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="beta = 50 only, 3 AIMs")
    args = ap.parse_args()
    n_aims = 3 if args.quick else args.n_aims
    betas = (50.0,) if args.quick else (50.0, 10.0)
    print(f"threads: {THREADS}")
    print(f"mesh: {MESH}; {n_aims} random AIMs per row (seeds 0..{n_aims - 1})")
    print("times in s: median / min / max per AIM; t_poles = diagonalisation + Green's "
          "function poles, t_sol = G_iw/G_tau/G_l/Sigma from the poles; peak = tracemalloc")
    head = (f"{'k':>3} {'beta':>5} {'method / options':<28} {'median':>8} {'min':>7} "
            f"{'max':>7} {'t_poles':>7} {'t_sol':>7} {'ratio':>7} {'poles':>7} "
            f"{'kept':>6} {'peak MB':>8} {'fails':>5}")
    print(head)
    print("-" * len(head))
    for beta in betas:
        base = None
        rows = [(4, "full", {}), (6, "lanczos", {}), (8, "lanczos", {})]
        if not args.quick:
            rows.append((8, "lanczos n_lanczos=50", {"n_lanczos": 50}))
        if beta <= 10 and not args.quick:
            rows.append((8, "lanczos cutoff=1e-6", {"cutoff": 1e-6}))
        for k, label, opts in rows:
            r = run_config(k, beta, n_aims, **opts)
            print(fmt_row(k, beta, label, r, base), flush=True)
            if k == 4 and r["times"]:
                base = statistics.median(r["times"])
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"max RSS of the process: {rss:.0f} MB")

    # cost of building the solution from the poles
    print("\nbuilding the result from the poles (same poles, beta = 50):")
    for k in (4, 8):
        p = random_aim(k, 50.0, 1)
        poles, _ = ed_poles(p)
        t0 = time.perf_counter()
        solution_from_poles(p, poles, **MESH)
        t1 = time.perf_counter()
        sol = solve_ed(p, **MESH)
        print(f"  k={k}: {poles[0][0].size} poles/spin: solution_from_poles "
              f"{t1 - t0:.3f} s, ED's evaluation {sol.diagnostics['time_solution']:.3f} s")

    # profile of the reference solver
    p = random_aim(8, 50.0, 1)
    prof = cProfile.Profile()
    prof.enable()
    sol = solve_ed(p, **MESH)
    prof.disable()
    d = sol.diagnostics
    print(f"\ncProfile, k = 8, beta = 50 (seed 1): spectrum {d['time_spectrum']:.3f} s, "
          f"Green's functions {d['time_green']:.3f} s ({d['n_chains']} Lanczos chains of "
          f"depth {d['lanczos_depths']['max']}, {d['n_states_kept']} states kept), "
          f"solution {d['time_solution']:.3f} s")
    s = io.StringIO()
    pstats.Stats(prof, stream=s).sort_stats("cumulative").print_stats(10)
    print(s.getvalue())


if __name__ == "__main__":
    main()
