# SPDX-License-Identifier: Apache-2.0
"""MLSolver.solve against IPT alone and ED-8 in the same run; the 20-point Mott scan.

Targets (issue 7): ``MLSolver.solve`` <= 20 ms per call at n_iw = 1025,
>= 50x faster than ED-8 end to end, the 20-point Mott scan <= 30 s.

One call = the TRIQS-style front end to end: read mu and Delta from ``G0_iw``,
run the model's cheap solvers, the network ensemble, build ``G_iw``,
``Sigma_iw`` (tail replaced), ``G_tau`` (n_tau = 10001) and ``G_l``.  The
same front is timed for IPT (the baseline of the run) and for ED with 8 bath
sites (bath fit included).  Bethe lattice, D = 1, U = 2, beta = 50, half
filling, ``Delta = G_sc/4``.

The Mott scan: Bethe-lattice DMFT with the ML solver at beta = 50 for 20
values of U in [0.5, 4.0] (up sweep, each U starting from the previous
solution, tol 1e-5 on G(i w)), timed in total, with IPT's scan as baseline.

IPT and MLSolver are timed back to back (the table; each solver's data warm in the caches)
and, since session 14, also alternating call by call (the last line: one machine state for
both, each finding the caches filled by the other, as in a DMFT loop); the second ratio is
~10 % lower (IPT slows more).

    python benchmarks/bench_mlsolver.py [--repeat 20] [--no-ed] [--no-scan] [--model FILE]
"""

from _one_thread import THREADS  # first: one BLAS thread, before numpy is imported

# isort: split

import argparse
import time
import warnings

import numpy as np
from _timing import interleaved_median_times, median_time
from triqs_mlsolver.dmft import bethe_dmft
from triqs_mlsolver.gf import SemiCircular, inverse, iOmega_n
from triqs_mlsolver.mlsolver import MLSolver
from triqs_mlsolver.operators import n
from triqs_mlsolver.solvers import EDSolver, IPTSolver


def make(cls, beta, n_iw, **kw):
    S = cls(beta=beta, gf_struct=[("up", 1), ("down", 1)], n_iw=n_iw, n_tau=10001, n_l=30,
            **kw)
    G = S.G_iw.copy()
    G << SemiCircular(1.0)
    for name, g0 in S.G0_iw:
        g0 << inverse(iOmega_n + 1.0 - 0.25 * G[name])
    return S


def scan(solver, Us, beta, n_iw):
    t0 = time.perf_counter()
    G, its = "metal", 0
    for U in Us:
        r = bethe_dmft(solver, U, beta, n_iw=n_iw, n_tau=2049, start=G, tol=1e-5, max_iter=200)
        G, its = r.G_iw, its + r.iterations
    return time.perf_counter() - t0, its


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--no-ed", action="store_true", help="skip ED-8 (about 1-10 s per call)")
    ap.add_argument("--no-scan", action="store_true", help="skip the Mott scans")
    ap.add_argument("--model", default=None,
                    help="model file (default: MLSolver's default model)")
    args = ap.parse_args()
    beta, n_iw, U = 50.0, 1025, 2.0
    h_int = U * n("up", 0) * n("down", 0)
    warnings.simplefilter("ignore")
    ml = make(MLSolver, beta, n_iw, model=args.model)
    ipt = make(IPTSolver, beta, n_iw)
    # back to back (each solver's data warm in the caches; the machine's speed may drift
    # between the two blocks) and alternating call by call (one machine state for both;
    # each finds the caches filled by the other, as in a DMFT loop)
    t_ipt = median_time(lambda: ipt.solve(h_int=h_int), args.repeat)
    t_ml = median_time(lambda: ml.solve(h_int=h_int), args.repeat)
    t_ipt_alt, t_ml_alt = interleaved_median_times([lambda: ipt.solve(h_int=h_int),
                                                    lambda: ml.solve(h_int=h_int)],
                                                   args.repeat)
    parts = {k: [] for k in ml.ml_report["timings"]}
    for _ in range(args.repeat):
        ml.solve(h_int=h_int)
        for k, v in ml.ml_report["timings"].items():
            parts[k].append(v)
    rows = [("ipt (baseline)", t_ipt, None), ("MLSolver", t_ml, 20e-3)]
    rows += [(f"  of which {k}", float(np.median(v)), None) for k, v in parts.items()]
    if not args.no_ed:
        ed = make(EDSolver, beta, n_iw)
        t_ed = median_time(lambda: ed.solve(h_int=h_int, n_bath=8), max(2, args.repeat // 10))
        rows.append(("ED-8 (bath fit incl.)", t_ed, None))
    print(f"MLSolver.solve, Bethe U={U:g} beta={beta:g} n_iw={n_iw} n_tau=10001 n_l=30, "
          f"model {ml.ml_report['model']} (median of {args.repeat}; {THREADS})")
    print(f"{'':26s} {'ms':>9s} {'/ ipt':>8s} {'target ms':>10s}")
    for name, t, tgt in rows:
        tt = f"{1e3 * tgt:10.0f}" if tgt else ""
        print(f"{name:26s} {1e3 * t:9.2f} {t / t_ipt:8.2f} {tt}")
    print(f"alternating call by call: ipt {1e3 * t_ipt_alt:.2f} ms, MLSolver "
          f"{1e3 * t_ml_alt:.2f} ms = {t_ml_alt / t_ipt_alt:.2f} x ipt")
    if not args.no_ed:
        print(f"ED-8 / MLSolver = {t_ed / t_ml:.0f}x (target >= 50x)")
    if not args.no_scan:
        Us = list(np.linspace(0.5, 4.0, 20))
        s_ipt, i_ipt = scan("ipt", Us, beta, n_iw)
        s_ml, i_ml = scan("ml", Us, beta, n_iw)
        print(f"20-point Mott scan (beta={beta:g}, U=0.5..4): ipt {s_ipt:.1f} s ({i_ipt} "
              f"iterations), ml {s_ml:.1f} s ({i_ml} iterations) = {s_ml / s_ipt:.1f}x ipt "
              "(target ml <= 30 s)")


if __name__ == "__main__":
    main()
