# SPDX-License-Identifier: Apache-2.0
"""``triqs-mlsolver demo``: the Bethe-lattice Mott transition with every available solver.

The machine-learning solver ``ml`` (``MLSolver``'s core, the shipped default
model) is compared with IPT, Hubbard-I and ED (4 bath sites here, for speed;
doc/mlsolver.rst compares with ED-8).

Runs paramagnetic DMFT at half filling (``D = 1``) for a few values of ``U``,
sweeping up from a metallic start (each ``U`` continues from the previous
solution), prints a table of ``Z0 = 1/(1 - Im Sigma(i w_0)/w_0)`` (the
finite-temperature estimate of the quasiparticle weight), of
``-beta G(beta/2)/pi`` (-> A(0) as T -> 0) and of the double occupancy, and
writes a Z(U) plot.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

DEFAULT_SOLVERS = ("ml", "ipt", "hubbard_i", "ed")


def add_parser(sub):
    p = sub.add_parser("demo", help="Bethe-lattice Mott scan: table and Z(U) plot",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--beta", type=float, default=50.0, help="inverse temperature (default 50)")
    p.add_argument("--U", type=float, nargs="+", default=[0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5],
                   help="interaction values (default 0.5 ... 3.5)")
    p.add_argument("--solvers", nargs="+", default=None,
                   help=f"solvers to compare (default: those of {DEFAULT_SOLVERS} available)")
    p.add_argument("--n-iw", type=int, default=512, help="Matsubara frequencies (default 512)")
    p.add_argument("--out", type=Path, default=Path("demo_output"),
                   help="output folder for the plot and the table (default ./demo_output)")
    p.set_defaults(func=run)
    return p


def _solver_setup(name):
    """(registry name, options) for the demo's solvers: ED uses a 4-site bath fit."""
    if name == "ed":
        return "ed", {"n_bath": 4}
    return name, {}


def run(args) -> int:
    from tqdm import tqdm

    from ..dmft import bethe_dmft
    from ..solvers import available_solvers

    avail = available_solvers()
    names = args.solvers or [s for s in DEFAULT_SOLVERS if s in avail]
    for s in names:
        if s not in avail:
            raise ValueError(f"unknown solver {s!r}; available: {', '.join(avail)}")
    Us = sorted(args.U)
    if any(u < 0 for u in Us):
        raise ValueError("--U values must be >= 0")
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    t0 = time.perf_counter()
    bar = tqdm(total=len(names) * len(Us), desc="DMFT", unit="point", disable=args.quiet)
    for name in names:
        reg, opts = _solver_setup(name)
        start = "metal"
        for U in Us:
            bar.set_postfix_str(f"{name} U={U:g}")
            r = bethe_dmft(reg, U, args.beta, n_iw=args.n_iw, n_tau=4 * args.n_iw + 1,
                           start=start, tol=1e-6, max_iter=400, solver_options=opts)
            start = r.G_iw
            a0 = r.g_beta_half + 0.0  # no "-0.0000" in the table
            rows.append((name, U, float(r.Z[0]), a0 if abs(a0) > 5e-5 else 0.0, r.double_occupancy,
                         r.converged, r.iterations))
            bar.update()
    bar.close()
    header = f"{'solver':10s} {'U':>5s} {'Z0':>8s} {'-bG(b/2)/pi':>12s} {'<n_up n_dn>':>12s} conv"
    lines = [header, "-" * len(header)]
    for name, U, Z, a0, d, conv, it in rows:
        dtxt = f"{d:12.5f}" if d is not None else f"{'n/a':>12s}"
        lines.append(f"{name:10s} {U:5.2f} {Z:8.4f} {a0:12.4f} {dtxt} {'yes' if conv else 'NO'}"
                     f" ({it})")
    table = "\n".join(lines)
    print(f"\nBethe lattice, half filling, D = 1, beta = {args.beta:g} "
          "(Z0 = 1/(1 - Im Sigma(i w_0)/w_0), a finite-T estimate)")
    print(table)
    (args.out / "mott_scan.txt").write_text(table + "\n")
    _plot(rows, names, args)
    if not args.quiet:
        print(f"\nwrote {args.out / 'mott_scan.png'} and {args.out / 'mott_scan.txt'} "
              f"in {time.perf_counter() - t0:.1f} s")
    return 0


def _plot(rows, names, args):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for name in names:
        r = [x for x in rows if x[0] == name]
        U = np.array([x[1] for x in r])
        axes[0].plot(U, [x[2] for x in r], "o-", label=name)
        axes[1].plot(U, [x[3] for x in r], "o-", label=name)
    axes[0].set_xlabel("U / D")
    axes[0].set_ylabel(r"$Z_0 = 1/(1 - \mathrm{Im}\Sigma(i\omega_0)/\omega_0)$")
    axes[1].set_xlabel("U / D")
    axes[1].set_ylabel(r"$-\beta G(\beta/2)/\pi$")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"Bethe lattice DMFT, half filling, beta = {args.beta:g}")
    fig.tight_layout()
    fig.savefig(args.out / "mott_scan.png", dpi=120)
    plt.close(fig)
