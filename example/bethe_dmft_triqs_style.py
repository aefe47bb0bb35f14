# SPDX-License-Identifier: Apache-2.0
"""Bethe-lattice DMFT written like the TRIQS cthyb tutorial, with a cheap solver.

Run:  python example/bethe_dmft_triqs_style.py [--solver ipt|hubbard_i|nca|ed] [--U 2.0]

The loop is the one of the TRIQS documentation (doc/guide/dmft.py of
triqs_cthyb); only the solver import differs.  Results go to an archive in the
TRIQS HDF5 scheme.
"""

import argparse

from triqs_mlsolver.gf import HDFArchive, SemiCircular, inverse, iOmega_n
from triqs_mlsolver.operators import n
from triqs_mlsolver.solvers import EDSolver, HubbardISolver, IPTSolver, NCASolver

SOLVERS = {"ipt": IPTSolver, "hubbard_i": HubbardISolver, "nca": NCASolver, "ed": EDSolver}

ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
ap.add_argument("--solver", choices=sorted(SOLVERS), default="ipt")
ap.add_argument("--U", type=float, default=2.0)
ap.add_argument("--beta", type=float, default=50.0)
ap.add_argument("--n-loops", type=int, default=30)
ap.add_argument("--n-iw", type=int, default=1025)
ap.add_argument("--out", default="bethe_dmft.h5")
args = ap.parse_args()

U, beta, t = args.U, args.beta, 0.5
S = SOLVERS[args.solver](beta=beta, gf_struct=[("up", 1), ("down", 1)], n_iw=args.n_iw,
                         n_tau=4 * args.n_iw + 1)
S.G_iw << SemiCircular(2 * t)
options = {"n_bath": 6} if args.solver == "ed" else {}

with HDFArchive(args.out, "w") as ar:
    for it in range(args.n_loops):
        for name, g0 in S.G0_iw:
            g0 << inverse(iOmega_n + U / 2.0 - t**2 * S.G_iw[name])
        previous = S.G_iw.copy()
        S.solve(h_int=U * n("up", 0) * n("down", 0), **options)
        # paramagnetic solution: symmetrise the spins
        g = 0.5 * (S.G_iw["up"] + S.G_iw["down"])
        for _, gb in S.G_iw:
            gb << g
        diff = max(abs(S.G_iw[b].data - previous[b].data).max() for b in ("up", "down"))
        ar[f"G_iw-{it}"] = S.G_iw
        ar[f"Sigma_iw-{it}"] = S.Sigma_iw
        print(f"iteration {it:3d}  max|dG| = {diff:.2e}")
        if diff < 1e-6:
            break
    ar["solver"] = S

w0 = 3.141592653589793 / beta
Z = 1.0 / (1.0 - S.Sigma_iw["up"].data[args.n_iw, 0, 0].imag / w0)
print(f"{args.solver}: U = {U}, beta = {beta}: Z0 = {Z:.4f}, "
      f"<n_up n_dn> = {S.double_occupancy:.5f}")
