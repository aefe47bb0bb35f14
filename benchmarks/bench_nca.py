# SPDX-License-Identifier: Apache-2.0
"""Benchmark of the NCA solver: time per solve and discretisation error vs N_tau.

Problem: Bethe-lattice hybridisation ``Delta = (D^2/4) G_semicircle(i w)``
(D = 1) on ``n_iw = 1025`` Matsubara points, ``beta = 50``, ``U = 2``, half
filling (``mu = U/2``).  Output meshes ``n_tau = 10001``, ``n_l = 30`` (the
defaults of :func:`solve_aim`).

Baseline (same script, same mesh): the atomic ("Hubbard-I-like") Green's
function from its four Lehmann poles, ``G(i w) = sum_p W_p / (i w - E_p)`` for
both spins with numpy -- the cheapest physically meaningful impurity "solve".

Reference for the error table: the Richardson-extrapolated NCA on a grid 16x
finer than the default (its own error is ~16^-4 = 1.5e-5 of the default one).

Run::

    PYTHONPATH=python python benchmarks/bench_nca.py
"""

import sys
import time

import numpy as np
from triqs_mlsolver.aim.params import AIMParams
from triqs_mlsolver.gf.transforms import matsubara_freqs
from triqs_mlsolver.solvers import nca
from triqs_mlsolver.solvers.nca import solve_nca

BETA, U, N_IW, N_TAU, N_L = 50.0, 2.0, 1025, 10001, 30
TARGET_S = 0.5


def semicircle_delta(beta, n_iw, D=1.0):
    iw = matsubara_freqs(beta, n_iw)
    w = iw.imag
    return (D**2 / 4) * (2 / D**2) * (iw - 1j * np.sign(w) * np.sqrt(w**2 + D**2))


def atomic_baseline(params, n_iw):
    """Atomic G(i w) of both spins from the four Lehmann poles (numpy)."""
    e = params.eps_d
    E = np.array([0.0, e[0], e[1], e.sum() + params.U])
    w = np.exp(-params.beta * (E - E.min()))
    w /= w.sum()
    iw = params.iw(n_iw)
    out = []
    for s in range(2):  # c^+_s: 0 -> s, -s -> 2
        poles = np.array([E[1 + s] - E[0], E[3] - E[2 - s]])
        weights = np.array([w[0] + w[1 + s], w[2 - s] + w[3]])
        out.append((weights[None, :] / (iw[:, None] - poles[None, :])).sum(axis=1))
    return np.stack(out)


def timing(fn, repeat):
    """Median and best wall time of ``repeat`` calls, seconds."""
    t = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        t.append(time.perf_counter() - t0)
    return float(np.median(t)), min(t)


def main():
    params = AIMParams(U=U, mu=U / 2, beta=BETA, Delta_iw=semicircle_delta(BETA, N_IW))
    n_def = nca.default_n_tau_nca(params)

    solve = lambda **kw: solve_nca(params, n_iw=N_IW, n_tau=N_TAU, n_l=N_L, **kw)  # noqa: E731
    solve()  # warm the caches of the transforms
    t_nca, t_nca_best = timing(solve, 9)
    t_base, _ = timing(lambda: atomic_baseline(params, N_IW), 51)
    sol = solve()
    Dp, Dm, _ = nca.nca_hybridisation_tau(params, n_def)
    C = nca.nca_coupling_table(Dp, Dm)
    E = nca.nca_atomic_energies(params)
    t_march, _ = timing(lambda: nca.nca_propagators(E, C, BETA), 9)

    print(f"NCA, Bethe semicircle, beta = {BETA}, U = {U}, half filling, n_iw = {N_IW}, "
          f"n_tau = {N_TAU}, n_l = {N_L}")
    print(f"default grid n_tau_nca = {n_def}  (N = 8 beta W, W = "
          f"{sol.diagnostics['energy_scale']:.3g})")
    print(f"time per NCA solve (median)  : {t_nca * 1e3:8.1f} ms   "
          f"(best {t_nca_best * 1e3:.1f} ms; target <= {TARGET_S * 1e3:.0f} ms)")
    print(f"  one marching sweep, N = {n_def - 1:5d}: {t_march * 1e3:8.1f} ms "
          f"({t_march / (n_def - 1) * 1e6:.1f} us/step)")
    print(f"atomic 4-pole baseline (med.): {t_base * 1e3:8.3f} ms")
    print(f"ratio NCA / baseline         : {t_nca / t_base:8.0f}")
    print(f"results: d = {sol.double_occupancy:.8f}, Im G(i w0) = {sol.G_iw[0, N_IW].imag:.6f}, "
          f"G(beta/2) = {sol.G_tau[0, N_TAU // 2]:.8f}, residual = "
          f"{sol.diagnostics['residual']:.1e}")

    ref = solve(n_tau_nca=16 * (n_def - 1) + 1)
    print("\nerror vs N_tau (reference: Richardson on 16x the default grid)")
    print(f"{'n_tau_nca':>9} {'richardson':>10} {'time ms':>8} {'max|dG(tau)|':>13} "
          f"{'ratio':>6} {'|dG(iw0)|':>10} {'|d d|':>9}")
    for rich in (False, True):
        prev = None
        for n in ((n_def - 1) // 4 + 1, (n_def - 1) // 2 + 1, n_def, 2 * n_def - 1,
                  4 * n_def - 3):
            t0 = time.perf_counter()
            s = solve(n_tau_nca=n, richardson=rich)
            dt = time.perf_counter() - t0
            err = np.abs(s.G_tau - ref.G_tau).max()
            ratio = f"{prev / err:6.2f}" if prev else " " * 6
            print(f"{n:9d} {rich!s:>10} {dt * 1e3:8.1f} {err:13.2e} {ratio} "
                  f"{abs(s.G_iw[0, N_IW] - ref.G_iw[0, N_IW]):10.2e} "
                  f"{abs(s.double_occupancy - ref.double_occupancy):9.2e}")
            prev = err
    return 0 if t_nca <= TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
