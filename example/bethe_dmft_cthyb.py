# SPDX-License-Identifier: Apache-2.0
# ruff: noqa: F403, F405  (TRIQS's star-import idiom)
#
# Paramagnetic DMFT for the one-band Hubbard model on the Bethe lattice, written the way a
# TRIQS user writes it: triqs.gf, triqs.operators, h5, triqs.utility.mpi and the impurity
# solver of triqs_cthyb.  It runs unchanged with real TRIQS and triqs_cthyb (python
# bethe_dmft_cthyb.py) and with the solver served by triqs_mlsolver:
#
#     triqs-mlsolver run example/bethe_dmft_cthyb.py                         # MLSolver
#     triqs-mlsolver run --solver ipt example/bethe_dmft_cthyb.py --U 2.5    # IPT, U = 2.5
#
# Lattice: semicircular density of states of half bandwidth D = 2t, so the impurity sees
# Delta(iw) = t^2 G(iw) and G0^-1(iw) = iw + mu - t^2 G(iw).  Half filling at mu = U/2.
# Each iteration stores G_iw, G_tau and Sigma_iw in bethe_dmft_cthyb.h5 (keys
# "G_iw-<iteration>", ...); the last solver object is stored as "solver".  The Monte Carlo
# keywords of S.solve() matter only to the real CT-HYB; test/python/test_run.py runs this
# script.

import argparse

import numpy as np
import triqs.utility.mpi as mpi
from h5 import HDFArchive
from triqs.gf import *
from triqs.operators import *
from triqs_cthyb import Solver

parser = argparse.ArgumentParser(description="Bethe-lattice DMFT with triqs_cthyb.Solver")
parser.add_argument("--U", type=float, default=2.0, help="Hubbard interaction")
parser.add_argument("--beta", type=float, default=40.0, help="inverse temperature")
parser.add_argument("--D", type=float, default=1.0, help="half bandwidth")
parser.add_argument("--loops", type=int, default=6, help="DMFT iterations")
parser.add_argument("--out", default="bethe_dmft_cthyb.h5", help="archive written")
args = parser.parse_args()

t = args.D / 2.0
mu = args.U / 2.0
h_int = args.U * n("up", 0) * n("down", 0)

S = Solver(beta=args.beta, gf_struct=[("up", 1), ("down", 1)], n_iw=1025, n_tau=10001, n_l=40)

# start from the non-interacting lattice: G = semicircle of half bandwidth D
S.G_iw << SemiCircular(args.D)

if mpi.is_master_node():
    with HDFArchive(args.out, "w") as ar:
        ar["parameters"] = {"U": args.U, "beta": args.beta, "D": args.D, "mu": mu}

for it in range(args.loops):
    # paramagnetic self-consistency: both spins see the spin-averaged lattice G
    G_avg = 0.5 * (S.G_iw["up"] + S.G_iw["down"])
    for _, g0 in S.G0_iw:
        g0 << inverse(iOmega_n + mu - t**2 * G_avg)

    G_previous = S.G_iw.copy()
    S.solve(h_int=h_int,
            n_cycles=20000,
            length_cycle=100,
            n_warmup_cycles=2000,
            measure_G_l=True)

    change = max(np.abs(S.G_iw[name].data - G_previous[name].data).max()
                 for name, _ in S.G_iw)
    n_iw0 = len(S.Sigma_iw["up"].mesh) // 2          # index of the first positive frequency
    Z = 1.0 / (1.0 - S.Sigma_iw["up"].data[n_iw0, 0, 0].imag * args.beta / np.pi)
    mpi.report(f"iteration {it}: max |G_new - G_old| = {change:.3e}, Z(iw_0) = {Z:.4f}")

    if mpi.is_master_node():
        with HDFArchive(args.out, "a") as ar:
            ar[f"G_iw-{it}"] = S.G_iw
            ar[f"G_tau-{it}"] = S.G_tau
            ar[f"Sigma_iw-{it}"] = S.Sigma_iw

if mpi.is_master_node():
    with HDFArchive(args.out, "a") as ar:
        ar["solver"] = S
        ar["iterations"] = args.loops
