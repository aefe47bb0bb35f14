# SPDX-License-Identifier: Apache-2.0
"""The cost of MLSolver's answers that need ED-5e: ``single_band_v4``'s escalation
(``mlsolver.ESCALATION``: ED-5e's answer where ED-3e and ED-4e disagree) and the default
chain's ED-5e model (base ED-5e: ``single_band_v6`` at beta D >= 50 since session 18, >= 20
since session 19; ``single_band_v10`` at beta D >= 16 since session 20), against v4's
network answer on the same input and IPT alone.

Session 17 made the default single-band model answer with ED-5e (5 fitted bath sites, the
self-energy re-embedded) where its cheap solvers ED-3e and ED-4e disagree by 8e-5 or more
(doc/mlsolver.rst, "Escalation").  Inputs outside the Bethe corner, all escalated:

* a continuous Bethe hybridisation (D = 1, ``Delta = G_sc/4``) at beta D = 200, U/D = 2.5,
  doped (mu = U/2 + 0.5) -- what a DMFT loop hands over;
* an 8-site discrete Bethe bath (Gauss-Chebyshev, D = 2) at beta D = 200, U/D = 2.5,
  mu = U/2 + 1 -- the kind of AIM the single-band databases hold;
* (session 19) a continuous Bethe hybridisation at beta D = 20 (the ED-5e model's floor),
  U/D = 5 (outside the Bethe corner), mu = U/2 + 0.5, where ED-5e costs most.

Each is solved by ``solve_ml`` with ``single_band_v4`` (escalated), by v4 with the
escalation switched off (its network answers), by the default chain (its ED-5e model:
its network, or ED-5e's own answer where its gate holds), by IPT alone (the baseline of the
run) and by ED-5e alone, alternating call by call (one machine state for all), on
``bench_mlsolver``'s grids (n_iw = 1025, n_tau = 10001, n_l = 30); the reference ED is
timed once.  Prints milliseconds and ratios to IPT.

    python benchmarks/bench_escalation.py [--repeat 10]
"""

from _one_thread import THREADS  # first: one BLAS thread, before numpy is imported

# isort: split

import argparse
import time
import warnings

import numpy as np
from _timing import interleaved_median_times
from triqs_mlsolver import mlsolver
from triqs_mlsolver.aim import AIMParams
from triqs_mlsolver.dmft import semicircle_g
from triqs_mlsolver.gf.transforms import matsubara_freqs
from triqs_mlsolver.solvers import solve_aim

GRID = dict(n_iw=1025, n_tau=10001, n_l=30)


def inputs():
    beta, U = 200.0, 2.5
    delta = np.tile(0.25 * semicircle_g(matsubara_freqs(beta, GRID["n_iw"])), (2, 1))
    yield "Bethe Delta, beta D 200", AIMParams(U=U, mu=U / 2 + 0.5, beta=beta, Delta_iw=delta)
    # at the ED-5e model's floor (session 19): outside the Bethe corner by U/D = 5
    d20 = np.tile(0.25 * semicircle_g(matsubara_freqs(20.0, GRID["n_iw"])), (2, 1))
    yield "Bethe Delta, beta D 20", AIMParams(U=5.0, mu=3.0, beta=20.0, Delta_iw=d20)
    k = np.arange(1, 9)
    eps = 2.0 * np.cos(k * np.pi / 9)
    w = np.sin(k * np.pi / 9) ** 2
    V = np.sqrt(w / w.sum())
    yield "8-site bath, beta D 200", AIMParams(U=5.0, mu=3.5, beta=100.0,
                                               eps_k=np.array([eps, eps]),
                                               V_k=np.array([V, V]), D=2.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=10)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    name = "triqs_mlsolver_single_band_v4"
    level = mlsolver.ESCALATION[name]

    def ml(p, escalate):
        mlsolver.ESCALATION[name] = level if escalate else level._replace(level=np.inf)
        try:
            return mlsolver.solve_ml(p, model=name, **GRID)
        finally:
            mlsolver.ESCALATION[name] = level

    def chain(p):
        return mlsolver.solve_ml(p, **GRID)

    print(f"v4's escalation, v4's network, the default chain ({mlsolver.DEFAULT_MODELS[1]}) "
          f"and IPT (median of {args.repeat}, alternating; {THREADS})")
    print(f"{'input':26s} {'escalated ms':>13s} {'network ms':>11s} {'chain ms':>8s} "
          f"{'IPT ms':>8s} {'ED-5e ms':>9s} {'esc/IPT':>8s} {'net/IPT':>8s} {'ch/IPT':>7s} "
          f"{'reference s':>12s}  chain's path")
    for label, p in inputs():
        d = ml(p, True).diagnostics
        if not d["escalated"] or d["fallback_used"]:
            raise SystemExit(f"{label}: not escalated (disagreement {d['disagreement']}); "
                             "the benchmark's input no longer takes the path it times")
        c = chain(p).diagnostics
        if c["model"] != mlsolver.DEFAULT_MODELS[1] or c["fallback_used"]:
            raise SystemExit(f"{label}: the default chain answered with {c['model']} "
                             f"(fallback {c['fallback_used']}), not {mlsolver.DEFAULT_MODELS[1]}")
        path = "ED-5e (gate)" if c["base_only"] else "network"
        t_esc, t_net, t_ch, t_ipt, t_e5 = interleaved_median_times(
            [lambda p=p: ml(p, True), lambda p=p: ml(p, False), lambda p=p: chain(p),
             lambda p=p: solve_aim("ipt", p, **GRID), lambda p=p: solve_aim("ed5e", p, **GRID)],
            args.repeat)
        t0 = time.perf_counter()
        solve_aim("ed", p, **GRID)
        t_ref = time.perf_counter() - t0
        print(f"{label:26s} {1e3 * t_esc:13.1f} {1e3 * t_net:11.1f} {1e3 * t_ch:8.1f} "
              f"{1e3 * t_ipt:8.1f} {1e3 * t_e5:9.1f} {t_esc / t_ipt:8.2f} {t_net / t_ipt:8.2f} "
              f"{t_ch / t_ipt:7.2f} {t_ref:12.2f}  {path}")


if __name__ == "__main__":
    main()
