# SPDX-License-Identifier: Apache-2.0
"""Benchmark of the bath fit (:func:`triqs_mlsolver.aim.fit_bath`) against the previous one.

The baseline ``_fit_bath_reference`` below is the implementation that variable
projection replaced (MINPACK Levenberg-Marquardt on the joint ``(eps, V)`` parameters
from a uniform spread and seeded random starts, stopping when two starts agree), copied
verbatim; both run in this process on the same inputs, so the ratios are meaningful
on a loaded machine.

Inputs ("DMFT-like", one spin each, ``n_iw = 1025``, ``D = 1``, ``Delta = t^2 G`` with
``t = 1/2``):

* the semicircle (``U = 0``) at half filling and doped (band centre at ``-0.4``);
* six IPT iterations of the Bethe loop (:func:`triqs_mlsolver.dmft.bethe_dmft`) for
  ``U/D`` in 1, 2, 3, 4, at half filling (``mu = U/2``) and doped (``mu = U/2 - 0.5``);
* spin-polarised: Hubbard-I (``U = 3``) and IPT (``U = 2``) loops with a spin-split
  chemical potential, both spins (at half filling they are mirror images), and a doped
  polarised Hubbard-I one (``beta >= 50``);
* one ED Bethe loop (4 bath sites, 4 iterations, ``U = 2``) at ``beta = 50``;
* three discrete baths of 5-13 random levels (``V`` random, ``sum V^2 = 1/4``; one with
  all levels at ``eps > 0``), i.e. a sum of poles as an ED Green's function gives,
  fitted with fewer sites.

at ``beta`` in 1, 10, 50, 200, fitted with ``k = 4, 6, 8`` sites and weights
``'uniform'`` and ``'1/w'`` (defaults otherwise: ``n_starts = 4``, ``seed = 0``).
The table gives, per ``(k, beta, weight)``, the median time per fit of each
implementation, their ratio, and the largest ``chi2_new / chi2_old``; cases with a
larger new ``chi2`` (beyond relative ``1e-6``) are listed with ``chi2 / mean|Delta|^2``
(values below ~1e-16 are fits exact to 1e-8 relative, where both methods stop on
round-off-limited progress).

One core: ``OMP_NUM_THREADS``/``OPENBLAS_NUM_THREADS``/``MKL_NUM_THREADS`` are set to
1 before numpy is imported (threadpoolctl is used as well when it is installed).

Usage::

    python benchmarks/bench_bath_fit.py [--quick] [--repeat 1] [--k 4 6 8]
"""

from _one_thread import THREADS  # first: one BLAS thread, before numpy is imported

# isort: split

import argparse
import statistics
import time
import warnings

import numpy as np
from scipy.optimize import leastsq
from triqs_mlsolver.aim import delta_from_bath
from triqs_mlsolver.aim.bath import BathFit, fit_bath
from triqs_mlsolver.dmft import bethe_dmft
from triqs_mlsolver.gf.transforms import matsubara_freqs, semicircle_g

N_IW = 1025


# -- the previous implementation (baseline), verbatim ----------------------------------------
def _ref_expand(x, k, ph):
    """Parameter vector -> (eps, V)."""
    if not ph:
        return x[:k], x[k:]
    n_pair = k // 2
    e, v = x[:n_pair], x[n_pair : 2 * n_pair]
    eps = np.concatenate([e, -e])
    V = np.concatenate([v, v])
    if k % 2:
        eps = np.append(eps, 0.0)
        V = np.append(V, x[2 * n_pair])
    return eps, V


def _ref_pack(eps, V, ph):
    if not ph:
        return np.concatenate([eps, V])
    k = len(eps)
    order = np.argsort(-eps)
    n_pair = k // 2
    e = np.abs(eps[order][:n_pair])
    v = np.abs(V[order][:n_pair])
    x = np.concatenate([e, v])
    if k % 2:
        x = np.append(x, np.abs(V[order][n_pair]))
    return x


def _fit_bath_reference(delta_w, beta, n_bath, *, ph_symmetric=False, n_starts=4, seed=0,
                        initial=None, w_max=None, weight="uniform", D=1.0):
    """The previous ``fit_bath`` (multistart MINPACK on the joint parameters)."""
    delta_w = np.asarray(delta_w, complex)
    if delta_w.ndim != 1 or delta_w.size % 2:
        raise ValueError("delta_w must be a 1-d array on the full fermionic mesh (2 n_iw points)")
    if not np.all(np.isfinite(delta_w)):
        raise ValueError("Delta(i w) contains NaN or infinite values")
    if isinstance(n_bath, bool) or not isinstance(n_bath, (int, np.integer)) or n_bath < 1:
        raise ValueError(f"n_bath={n_bath!r} must be a positive integer")
    n_iw = delta_w.size // 2
    w = np.pi * (2 * np.arange(n_iw) + 1) / beta
    dpos = delta_w[n_iw:]
    if w_max is None:
        w_max = 10.0 * D
    n_fit = int(max(min(32, n_iw), np.searchsorted(w, w_max, side="right")))
    n_fit = min(n_fit, n_iw)
    z = 1j * w[:n_fit]
    target = dpos[:n_fit]
    if weight == "uniform":
        Wn = np.ones(n_fit)
    elif weight == "1/n":
        Wn = 1.0 / (np.arange(n_fit) + 1)
    elif weight == "1/w":
        Wn = 1.0 / w[:n_fit]
    else:
        raise ValueError(f"weight={weight!r}; use 'uniform', '1/n' or '1/w'")
    sw = np.sqrt(Wn)
    k = int(n_bath)
    m1 = max(float((1j * w[-1] * dpos[-1]).real), 1e-12)
    zt = z[None, :]
    sw_t = sw[None, :]
    n_par = len(_ref_pack(np.zeros(k), np.zeros(k), ph_symmetric))
    cache = {}

    def resid(x):
        eps, V = _ref_expand(x, k, ph_symmetric)
        inv = 1.0 / (zt - eps[:, None])  # (k, n_fit)
        r = (V**2 @ inv - target) * sw
        Jc = np.empty((2 * k, n_fit), complex)  # d/d eps_k, d/d V_k
        np.multiply((V**2)[:, None] * sw_t, inv * inv, out=Jc[:k])
        np.multiply((2 * V)[:, None] * sw_t, inv, out=Jc[k:])
        if ph_symmetric:
            n_pair = k // 2
            J = np.empty((n_par, n_fit), complex)
            J[:n_pair] = Jc[:n_pair] - Jc[n_pair:2 * n_pair]
            J[n_pair:2 * n_pair] = Jc[k:k + n_pair] + Jc[k + n_pair:k + 2 * n_pair]
            if k % 2:
                J[2 * n_pair] = Jc[2 * k - 1]
            Jc = J
        cache["x"], cache["J"] = x.copy(), Jc
        return r.view(float)

    def jac(x):
        if "x" not in cache or not np.array_equal(x, cache["x"]):
            resid(x)
        return cache["J"].view(float)

    rng = np.random.default_rng(seed)
    starts = []
    if initial is not None:
        e0, v0 = (np.asarray(a, float).ravel() for a in initial)
        if e0.size != k or v0.size != k:
            raise ValueError(f"initial bath has {e0.size} levels, expected n_bath={k}")
        starts.append(_ref_pack(e0, v0, ph_symmetric))
    spread = np.linspace(-D, D, k + 2)[1:-1] if k > 1 else np.zeros(1)
    base_V = np.full(k, np.sqrt(m1 / k))
    starts.append(_ref_pack(spread, base_V, ph_symmetric))
    while len(starts) < max(n_starts, 1) + (initial is not None):
        e = spread * rng.uniform(0.3, 2.0) + rng.normal(0, 0.2 * D, k)
        v = base_V * rng.uniform(0.5, 1.5, k)
        starts.append(_ref_pack(e, v, ph_symmetric))

    best, best_cost, agree = None, np.inf, False
    for x0 in starts:
        out = leastsq(resid, x0, Dfun=jac, col_deriv=True, full_output=True, xtol=1e-14,
                      ftol=1e-14, gtol=1e-14, maxfev=2000)
        x, info = out[0], out[2]
        cost = 0.5 * float(info["fvec"] @ info["fvec"])
        if best is not None and abs(cost - best_cost) <= 1e-8 * max(best_cost, 1e-300):
            agree = True
        if cost < best_cost:
            best, best_cost = x, cost
        if agree:
            break
    if best is None:
        raise RuntimeError(f"the bath fit ({k} sites) did not reach a finite cost from any "
                           "start; check Delta(i w) for overflow")
    eps, V = _ref_expand(best, k, ph_symmetric)
    V = np.abs(V)
    order = np.argsort(eps)
    eps, V = eps[order], V[order]
    fit = (V**2 / (z[:, None] - eps[None, :])).sum(axis=1)
    err = np.abs(fit - target)
    return BathFit(eps_k=eps, V_k=V, chi2=float(np.mean(Wn * err**2)),
                   max_error=float(err.max()), n_fit=n_fit, sum_V2=float(np.sum(V**2)))


# -- inputs -------------------------------------------------------------------------------
def inputs(betas, Us, with_ed=True):
    """``(label, beta, Delta)`` for one spin each (see the module docstring)."""
    t2, out = 0.25, []
    loop = dict(max_iter=6, n_iw=N_IW, n_tau=4097)
    for beta in betas:
        iw = matsubara_freqs(beta, N_IW)
        out.append(("U=0 half", beta, t2 * semicircle_g(iw, 1.0)))
        out.append(("U=0 doped", beta, t2 * semicircle_g(iw + 0.4, 1.0)))
        for U in Us:
            for mu, lab in ((U / 2, "half"), (U / 2 - 0.5, "doped")):
                r = bethe_dmft("ipt", U, beta, mu=mu, **loop)
                out.append((f"IPT U={U:g} {lab}", beta, t2 * r.G_iw[0]))
        if beta >= 50:
            for solver, U, mu, lab in (("hubbard_i", 3.0, [1.8, 1.2], "HI U=3 pol"),
                                       ("ipt", 2.0, [1.1, 0.9], "IPT U=2 pol"),
                                       ("hubbard_i", 3.0, [1.6, 1.0], "HI U=3 pol doped")):
                r = bethe_dmft(solver, U, beta, mu=np.array(mu), paramagnetic=False, **loop)
                for s in range(2):
                    out.append((f"{lab} s{s}", beta, t2 * r.G_iw[s]))
        rng = np.random.default_rng(int(beta))
        for i in range(3):
            nb = int(rng.integers(5, 14))
            e = np.sort(rng.uniform(-2.0, 2.0, nb))
            if i == 2:
                e = np.abs(e) + 0.1
            V = rng.uniform(0.5, 1.5, nb)
            V *= np.sqrt(t2 / np.sum(V**2))
            out.append((f"discrete nb={nb}" + (" eps>0" if i == 2 else ""), beta,
                        delta_from_bath(np.stack([e, e]), np.stack([V, V]), iw)[0]))
        if with_ed and beta == 50:
            r = bethe_dmft("ed", 2.0, beta, max_iter=4, n_iw=N_IW, n_tau=4097,
                           solver_options=dict(n_bath=4))
            out.append(("ED-4 U=2 half", beta, t2 * r.G_iw[0]))
    return out


def timed(fn, repeat, *args, **kw):
    """Best wall time of ``fn(*args, **kw)`` over ``repeat`` calls, and its result."""
    best, res = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        res = fn(*args, **kw)
        best = min(best, time.perf_counter() - t0)
    return best, res


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="beta = 10, 50; U = 2, 4; no ED input (about 30 s)")
    ap.add_argument("--repeat", type=int, default=1, help="time each fit as the best of N")
    ap.add_argument("--k", type=int, nargs="+", default=[4, 6, 8])
    args = ap.parse_args()
    betas = (10.0, 50.0) if args.quick else (1.0, 10.0, 50.0, 200.0)
    Us = (2.0, 4.0) if args.quick else (1.0, 2.0, 3.0, 4.0)
    warnings.simplefilter("ignore")  # the baseline's MINPACK overflow warnings
    cases = inputs(betas, Us, with_ed=not args.quick)
    print(f"threads: {THREADS}")
    print(f"{len(cases)} inputs (n_iw = {N_IW}), k = {args.k}, weights uniform and 1/w; "
          f"time per fit = best of {args.repeat}")
    rows = []
    for label, beta, d in cases:
        for k in args.k:
            for weight in ("uniform", "1/w"):
                t_old, f_old = timed(_fit_bath_reference, args.repeat, d, beta, k,
                                     weight=weight)
                t_new, f_new = timed(fit_bath, args.repeat, d, beta, k, weight=weight)
                n_iw = d.size // 2
                scale = float(np.mean(np.abs(d[n_iw:n_iw + f_new.n_fit]) ** 2))
                rows.append(dict(label=label, beta=beta, k=k, weight=weight, t_old=t_old,
                                 t_new=t_new, chi_old=f_old.chi2, chi_new=f_new.chi2,
                                 scale=scale, starts=f_new.n_starts_used))

    head = (f"{'k':>2} {'beta':>5} {'weight':>7} {'n':>3} {'old ms':>8} {'new ms':>8} "
            f"{'old/new':>8} {'max chi2 new/old':>17} {'worse':>6}")
    print("\nmedian time per fit (ms) over the inputs of each row; old/new = ratio of the "
          "medians; worse = fits with chi2_new > chi2_old (1 + 1e-6)")
    print(head)
    print("-" * len(head))
    for k in args.k:
        for beta in betas:
            for weight in ("uniform", "1/w"):
                sel = [r for r in rows if r["k"] == k and r["beta"] == beta
                       and r["weight"] == weight]
                t_o = statistics.median(r["t_old"] for r in sel)
                t_n = statistics.median(r["t_new"] for r in sel)
                ratio = max(r["chi_new"] / max(r["chi_old"], 1e-300) for r in sel)
                worse = sum(r["chi_new"] > r["chi_old"] * (1 + 1e-6) for r in sel)
                print(f"{k:>2} {beta:>5g} {weight:>7} {len(sel):>3} {1e3 * t_o:8.2f} "
                      f"{1e3 * t_n:8.2f} {t_o / t_n:8.1f} {ratio:17.3g} {worse:>6}")
    print("\nper k, all inputs: ratio of median times, geometric mean of per-fit ratios, "
          "total time")
    for k in args.k:
        sel = [r for r in rows if r["k"] == k]
        t_o = statistics.median(r["t_old"] for r in sel)
        t_n = statistics.median(r["t_new"] for r in sel)
        gm = float(np.exp(np.mean([np.log(r["t_old"] / r["t_new"]) for r in sel])))
        print(f"  k={k}: median {1e3 * t_o:.2f} -> {1e3 * t_n:.2f} ms ({t_o / t_n:.1f}x), "
              f"geometric mean {gm:.1f}x, total {sum(r['t_old'] for r in sel):.2f} -> "
              f"{sum(r['t_new'] for r in sel):.2f} s")
    bad = [r for r in rows if r["chi_new"] > r["chi_old"] * (1 + 1e-6)]
    print(f"\nfits with chi2_new > chi2_old (1 + 1e-6): {len(bad)} of {len(rows)}")
    for r in bad:
        print(f"  {r['label']:<20} beta={r['beta']:<5g} k={r['k']} {r['weight']:<7} "
              f"chi2 new {r['chi_new']:.3e} old {r['chi_old']:.3e} "
              f"(chi2/mean|Delta|^2: new {r['chi_new'] / r['scale']:.1e}, "
              f"old {r['chi_old'] / r['scale']:.1e})")
    better = sum(r["chi_new"] < r["chi_old"] * (1 - 1e-6) for r in rows)
    print(f"fits with chi2_new < chi2_old (1 - 1e-6): {better} of {len(rows)}")


if __name__ == "__main__":
    main()
