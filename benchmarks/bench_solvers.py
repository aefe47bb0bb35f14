# SPDX-License-Identifier: Apache-2.0
"""Time per solve of every cheap solver at beta = 50, n_iw = 1025 (issue targets in brackets).

Bethe-lattice hybridisation Delta = G_semicircle / 4 (D = 1), U = 2, half
filling, n_tau = 10001, n_l = 30: the full result (G_iw, G_tau, G_l,
Sigma_iw) is built in every solve.  Hubbard-I is the baseline of the run.
IPT is also timed off half filling (Kajueter-Kotliar, mu = 0.6).

    python benchmarks/bench_solvers.py [--repeat 20]
"""

import argparse

from _timing import median_time
from triqs_mlsolver.aim import AIMParams
from triqs_mlsolver.dmft import semicircle_g
from triqs_mlsolver.gf.transforms import matsubara_freqs
from triqs_mlsolver.solvers import available_solvers, solve_aim

TARGETS = {"hubbard_i": 1e-3, "ipt": 5e-3, "ed4": 50e-3, "nca": 0.5}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--beta", type=float, default=50.0)
    args = ap.parse_args()
    beta, n_iw = args.beta, 1025
    delta = 0.25 * semicircle_g(matsubara_freqs(beta, n_iw))
    half = AIMParams(U=2.0, mu=1.0, beta=beta, Delta_iw=delta)
    away = AIMParams(U=2.0, mu=0.6, beta=beta, Delta_iw=delta)
    cases = [("hubbard_i", half, "half filling"), ("ipt", half, "half filling"),
             ("ipt", away, "mu = 0.6 (KK)"), ("nca", half, "half filling")]
    cases += [(f"ed{k}", half, "half filling (bath fit incl.)")
              for k in (1, 2, 3, 4) if f"ed{k}" in available_solvers()]
    cases += [(f"ed{k}w", half, "half filling (1/w fit incl.)")
              for k in (2, 3) if f"ed{k}w" in available_solvers()]
    cases += [("ed3e", half, "half filling (1/w fit, re-embedded)")]
    rows = []
    for name, p, label in cases:
        t = median_time(lambda n=name, p=p: solve_aim(n, p, n_iw=n_iw, n_tau=10001, n_l=30),
                        args.repeat)
        rows.append((name, label, t))
    base = rows[0][2]
    print(f"time per solve, beta={beta:g}, n_iw={n_iw}, n_tau=10001, n_l=30 "
          f"(median of {args.repeat})")
    print(f"{'solver':10s} {'case':32s} {'ms':>9s} {'/ hubbard_i':>12s} {'target ms':>10s}")
    for name, label, t in rows:
        tgt = TARGETS.get(name)
        ttxt = f"{1e3 * tgt:10.1f}" if tgt and label != "mu = 0.6 (KK)" else f"{'':>10s}"
        print(f"{name:10s} {label:32s} {1e3 * t:9.2f} {t / base:12.2f} {ttxt}")


if __name__ == "__main__":
    main()
