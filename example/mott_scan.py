# SPDX-License-Identifier: Apache-2.0
"""Bethe-lattice Mott scan: Z0(U) with several solvers, up and down sweeps.

    python example/mott_scan.py --solvers ed ipt hubbard_i --beta 50 \\
        --U 0.5 1.0 1.5 2.0 2.5 3.0 3.5 --n-bath 8 --out mott_scan

Half filling, D = 1.  For each solver: an up-sweep from the metallic start
(each U continues from the previous solution) and a down-sweep from the
insulating start; where the two differ the solver shows coexistence.  ED
refits its bath (``--n-bath`` sites) to the hybridisation every iteration.
Writes ``OUT.json`` (all numbers), ``OUT.png`` (Z0 and -beta G(beta/2)/pi
against U) and prints a table.  ``--reuse FILE`` takes the solvers already in
an earlier ``OUT.json`` (same beta and U) instead of recomputing them (ED-8
takes ~25 min); ``--reference ed`` adds the distance of every solver's Z0 to
that solver's (the MLSolver acceptance: ``--solvers ml ipt hubbard_i ed
--reuse doc/figures/mott_beta50.json --reference ed``).  Z0 = 1/(1 - Im Sigma(i w_0)/w_0) is the
finite-temperature estimate of the quasiparticle weight.
"""

import argparse
import json
import time

import numpy as np
from triqs_mlsolver.dmft import bethe_dmft


def sweep(solver, Us, beta, start, opts, n_iw, tol):
    rows, G = [], start
    for U in Us:
        t0 = time.perf_counter()
        r = bethe_dmft(solver, U, beta, n_iw=n_iw, n_tau=4 * n_iw + 1, start=G, tol=tol,
                       max_iter=300, mixing=0.7 if solver.startswith("ed") else 0.5,
                       solver_options=opts)
        G = r.G_iw
        rows.append({"U": U, "Z0": float(r.Z[0]), "A0": r.g_beta_half,
                     "d": r.double_occupancy, "ImG0": float(r.G_iw[0, n_iw].imag),
                     "converged": r.converged, "iterations": r.iterations,
                     "seconds": time.perf_counter() - t0})
        print(f"  {solver:10s} U={U:5.2f} Z0={rows[-1]['Z0']:.4f} "
              f"-bG(b/2)/pi={rows[-1]['A0']:.4f} it={r.iterations} "
              f"({rows[-1]['seconds']:.1f} s)", flush=True)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--solvers", nargs="+", default=["ipt", "hubbard_i"])
    ap.add_argument("--beta", type=float, default=50.0)
    ap.add_argument("--U", type=float, nargs="+", default=[0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5])
    ap.add_argument("--n-bath", type=int, default=8, help="bath sites of ED")
    ap.add_argument("--n-iw", type=int, default=1024)
    ap.add_argument("--tol", type=float, default=1e-5)
    ap.add_argument("--no-down", action="store_true", help="skip the down-sweeps")
    ap.add_argument("--out", default="mott_scan")
    ap.add_argument("--reuse", help="earlier OUT.json whose solvers are taken, not recomputed")
    ap.add_argument("--reference", help="solver whose Z0 the others are compared with")
    args = ap.parse_args()
    Us = sorted(args.U)
    result = {"beta": args.beta, "U": Us, "n_bath": args.n_bath, "solvers": {}}
    if args.reuse:
        with open(args.reuse) as f:
            old = json.load(f)
        if old["beta"] != args.beta or sorted(old["U"]) != Us:
            raise SystemExit(f"--reuse {args.reuse}: beta={old['beta']}, U={old['U']} differ "
                             f"from this run's beta={args.beta}, U={Us}")
        result["solvers"].update({k: v for k, v in old["solvers"].items()
                                  if k in args.solvers})
    if args.reference and args.reference not in args.solvers:
        raise SystemExit(f"--reference {args.reference} must be one of --solvers")
    for s in args.solvers:
        if s in result["solvers"]:
            print(f"  {s}: taken from {args.reuse}")
            continue
        opts = {"n_bath": args.n_bath} if s == "ed" else {}
        up = sweep(s, Us, args.beta, "metal", opts, args.n_iw, args.tol)
        down = [] if args.no_down else sweep(s, Us[::-1], args.beta, "insulator", opts,
                                             args.n_iw, args.tol)[::-1]
        result["solvers"][s] = {"up": up, "down": down}
    print(f"\nBethe lattice, half filling, D = 1, beta = {args.beta:g}; Z0 (up / down sweep)")
    print(f"{'U':>5s} " + " ".join(f"{s:>17s}" for s in args.solvers))
    for i, U in enumerate(Us):
        cells = []
        for s in args.solvers:
            r = result["solvers"][s]
            z_up = r["up"][i]["Z0"]
            z_dn = r["down"][i]["Z0"] if r["down"] else np.nan
            cells.append(f"{z_up:8.4f}/{z_dn:8.4f}")
        print(f"{U:5.2f} " + " ".join(cells))
    if args.reference:
        ref = result["solvers"][args.reference]
        print(f"\n|Z0 - Z0({args.reference})|, up sweep (down sweep where computed)")
        print(f"{'U':>5s} " + " ".join(f"{s:>17s}" for s in args.solvers
                                        if s != args.reference))
        worst = {}
        for i, U in enumerate(Us):
            cells = []
            for s in args.solvers:
                if s == args.reference:
                    continue
                r = result["solvers"][s]
                du = abs(r["up"][i]["Z0"] - ref["up"][i]["Z0"])
                dd = abs(r["down"][i]["Z0"] - ref["down"][i]["Z0"]) if (
                    r["down"] and ref["down"]) else np.nan
                worst[s] = max(worst.get(s, 0.0), du, 0.0 if np.isnan(dd) else dd)
                cells.append(f"{du:8.4f}/{dd:8.4f}")
            print(f"{U:5.2f} " + " ".join(cells))
        print("  max  " + " ".join(f"{worst[s]:17.4f}" for s in worst))
        result["max_abs_dZ0"] = {"reference": args.reference, **worst}
    with open(args.out + ".json", "w") as f:
        json.dump(result, f, indent=1)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(10, 3.8))
    for s in args.solvers:
        r = result["solvers"][s]
        line, = ax[0].plot(Us, [x["Z0"] for x in r["up"]], "o-", label=f"{s} (up)")
        ax[1].plot(Us, [x["A0"] for x in r["up"]], "o-", color=line.get_color())
        if r["down"]:
            ax[0].plot(Us, [x["Z0"] for x in r["down"]], "s--", color=line.get_color(),
                       mfc="none", label=f"{s} (down)")
            ax[1].plot(Us, [x["A0"] for x in r["down"]], "s--", color=line.get_color(),
                       mfc="none")
    ax[0].set_ylabel(r"$Z_0 = 1/(1-\mathrm{Im}\Sigma(i\omega_0)/\omega_0)$")
    ax[1].set_ylabel(r"$-\beta G(\beta/2)/\pi$")
    for a in ax:
        a.set_xlabel("U / D")
        a.grid(alpha=0.3)
    ax[0].legend(fontsize=8)
    fig.suptitle(f"Bethe lattice DMFT, half filling, beta = {args.beta:g}")
    fig.tight_layout()
    fig.savefig(args.out + ".png", dpi=120)
    print(f"wrote {args.out}.json and {args.out}.png")


if __name__ == "__main__":
    main()
