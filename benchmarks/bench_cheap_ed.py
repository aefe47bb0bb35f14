# SPDX-License-Identifier: Apache-2.0
"""The cheap ED solvers (MLSolver's inputs) with the compiled kernels against the numpy paths.

Session 14 compiled the small-bath ED (every sector of a Fock space of <= 256 states,
the Lehmann sums), the pole sums G(i w_n) and G_l, and the bath fit's residual,
Jacobian, Hessian and variable projection (``solvers/_ed_kernels.py``,
``aim/_kernels.py``).  Each solver is timed both ways in this process on MLSolver's
grids (n_iw = 1025, n_tau = 201, n_l = 40), Bethe ``Delta = G_sc/4``, U = 2, at half
filling (beta = 50), doped (mu = 0.6, beta = 50) and in a Zeeman field (mu = 1 +- 0.1,
beta = 20); the numpy path is the baseline of each row, and the largest difference of
G(tau) between the two is printed.

    python benchmarks/bench_cheap_ed.py [--repeat 20]
"""

from _one_thread import THREADS  # first: one BLAS thread, before numpy is imported

# isort: split

import argparse

import numpy as np
from _timing import median_time
from triqs_mlsolver.aim import AIMParams, bath
from triqs_mlsolver.dmft import semicircle_g
from triqs_mlsolver.gf.transforms import matsubara_freqs
from triqs_mlsolver.solvers import _ed_core, solution, solve_aim

GRID = dict(n_iw=1025, n_tau=201, n_l=40)


def compiled(on):
    _ed_core.USE_KERNELS = solution.USE_KERNELS = bath.USE_KERNELS = on


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    cases = []
    for beta, mu, label in ((50.0, 1.0, "half filling, beta 50"), (50.0, 0.6, "mu 0.6, beta 50"),
                            (20.0, np.array([1.1, 0.9]), "field 0.1, beta 20")):
        delta = np.tile(0.25 * semicircle_g(matsubara_freqs(beta, GRID["n_iw"])), (2, 1))
        cases.append((label, AIMParams(U=2.0, mu=mu, beta=beta, Delta_iw=delta)))
    print(f"cheap ED solvers, compiled vs numpy (median of {args.repeat}; {THREADS})")
    print(f"{'solver':7s} {'case':24s} {'numpy ms':>9s} {'compiled ms':>12s} {'speed-up':>9s} "
          f"{'max |dG(tau)|':>14s}")
    for name in ("ed2w", "ed3w", "ed3e", "ed4e"):
        for label, p in cases:
            out, t = {}, {}
            for on in (False, True):
                compiled(on)
                t[on] = median_time(lambda n=name, p=p: solve_aim(n, p, **GRID), args.repeat)
                out[on] = solve_aim(name, p, **GRID).G_tau
            compiled(True)
            print(f"{name:7s} {label:24s} {1e3 * t[False]:9.2f} {1e3 * t[True]:12.2f} "
                  f"{t[False] / t[True]:9.2f} {np.abs(out[True] - out[False]).max():14.1e}")


if __name__ == "__main__":
    main()
