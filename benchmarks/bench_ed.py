# SPDX-License-Identifier: Apache-2.0
"""Benchmark of the reference ED solver on one core, bath fit included, IPT as the baseline.

What it times: ``solve_ed(AIMParams(U, mu, beta, Delta_iw), n_iw=1025,
n_tau=10001, n_l=30, n_bath=k)`` for ``k = 4, 6, 8`` (a fitted bath of ``k``
sites, default options) and ``n_bath='auto'`` (the reference: the bath grows
from ``ed.AUTO_K_MIN`` to at most ``ed.AUTO_K_MAX = 8`` sites until successive
sizes agree in G(tau) to ``ed.AUTO_TOL = 1e-4`` RMS; the header prints the
values in force), wall time of the whole call (fit, diagonalisation,
G_iw/G_tau/G_l/Sigma).  IPT
(``solve_aim('ipt', ...)`` on the same mesh, median of 3 after a warm-up) is
timed on every AIM in the same process; every time is printed beside its
ratio to IPT, the part of the numbers that carries over to other machines.

The AIMs (DMFT-like): ``Delta = t^2 G`` (``t = D/2``, ``D = 1``) with ``G``
from Bethe-lattice DMFT iterations with the package's IPT
(:func:`triqs_mlsolver.dmft.bethe.bethe_dmft`), ``U in {1, 2, 3, 4}``, starts
``'metal'`` and ``'insulator'``, after 1 and 3 iterations and converged
(``max_iter=100``): 24 AIMs per beta.  They are taken in a fixed interleaved
order (U fastest, then the iteration count, then the start; any first 8 hold
every U and both starts), and ``n`` AIMs means the first ``n`` of that order.
Variants of each AIM:

``half``       ``mu = U/2``, ``Delta`` of the half-filled DMFT run;
``doped``      ``mu = U/2 + 0.4``, the same ``Delta``;
``half-pol``   ``mu = U/2 + (+0.15, -0.15)``, ``Delta_up`` as ``half``,
               ``Delta_dn = t^2 G`` of a doped DMFT run (``mu = U/2 + 0.4``, same
               start and number of iterations);
``doped-pol``  ``mu = U/2 + 0.4 + (+0.15, -0.15)``, the ``Delta`` of ``half-pol``.

Output: one table row per configuration (k or auto, beta, variant): the number
of AIMs solved of those planned (``b`` after it when the rest was skipped
because the row had used its ``--budget`` seconds of ED), median and max seconds
per AIM with the ratio to IPT on the same AIM beside each, max/median, IPT's
median time, the median fit time, median number of states kept and how many
solves used finite-temperature Lanczos; a failed ED solve (or IPT, off half
filling) is counted in the row and left out of the statistics (its message is
in the JSON).  For ``auto`` also the error estimate (median/max), the
histogram of chosen bath sizes, how many converged to the tolerance, and at
``beta <= --check-max-beta`` the check of the estimate: RMS ``|G_auto - G_8|``
over tau and spins against ``k = 8`` on the same AIM (from the ``k = 8`` row
when it ran on that AIM, ``0`` by construction when auto chose 8, else solved
for the check outside the timed auto solve, at most ``--check-budget`` seconds
of such solves per row), the largest ratio of that RMS to the estimate among
the AIMs where auto stopped below 8, the largest FTLM error bar of the ``G_8``
compared (at beta = 1 k = 8 uses FTLM and its bar, not auto's error, sets the
difference), and RMS ``|G_auto - G_6|`` against the ``k = 6`` row (no FTLM at
k = 6 in these runs) where auto stopped below 6.

One core: ``OMP_NUM_THREADS``/``OPENBLAS_NUM_THREADS``/``MKL_NUM_THREADS`` are
set to 1 before numpy is imported (threadpoolctl as well when installed).

Usage (from the repository root)::

    python benchmarks/bench_ed.py                      # the default plan, ~20 min, one core
    python benchmarks/bench_ed.py --quick              # 2 AIMs per row, beta = 50: ~1 min
    python benchmarks/bench_ed.py --k 8 --betas 50 10 --variants half --n-aims 24
    python benchmarks/bench_ed.py --k 8 auto --betas 200 --budget 300 --json /tmp/ed.json
    python benchmarks/bench_ed.py --show-plan          # the default number of AIMs per row

The default plan (``--show-plan``; 765 solves, 21 min on the loaded 2-core
development machine with commit 458937f) runs ``k = 8`` on the 24 half-filled
AIMs at beta = 50 and 10 and on fewer AIMs elsewhere (at beta = 1 it uses FTLM,
35-65 s per AIM), ``auto`` on all 24 half-filled and doped AIMs at every beta;
``--n-aims N`` uses N AIMs in every row instead.  ``--json OUT`` writes every
solve (times, diagnostics, the auto reference's history) and the code version
after each row, so a stopped run keeps its results.
"""

from _one_thread import THREADS  # first: one BLAS thread, before numpy is imported

# isort: split

import argparse
import collections
import json
import os
import platform
import statistics
import sys
import time

import numpy as np
from triqs_mlsolver.aim.params import AIMParams
from triqs_mlsolver.dmft.bethe import bethe_dmft
from triqs_mlsolver.solvers import ed as _ed
from triqs_mlsolver.solvers import solve_aim
from triqs_mlsolver.solvers.ed import solve_ed

MESH = dict(n_iw=1025, n_tau=10001, n_l=30)
D = 1.0
T2 = D**2 / 4  # t^2 of the Bethe lattice
DOPING = 0.4  # mu - U/2 of the doped variants
POLARISATION = 0.15  # mu_up - mu = mu - mu_dn of the polarised variants
US = (1.0, 2.0, 3.0, 4.0)
STARTS = ("metal", "insulator")
ITERS = (1, 3, 100)  # 100 = max_iter of the converged runs
N_AIMS_MAX = len(US) * len(STARTS) * len(ITERS)
VARIANTS = ("half", "doped", "half-pol", "doped-pol")
KS = ("4", "6", "8", "auto")
BETAS = (50.0, 10.0, 200.0, 1.0)  # acceptance betas first
IPT_REPEAT = 3

# Default AIMs per row: (k, beta) -> (half, every other variant).
PLAN = {
    ("4", 1.0): (24, 24), ("4", 10.0): (24, 24), ("4", 50.0): (24, 24), ("4", 200.0): (24, 24),
    ("6", 1.0): (4, 2), ("6", 10.0): (8, 4), ("6", 50.0): (8, 4), ("6", 200.0): (8, 4),
    ("8", 1.0): (2, 1), ("8", 10.0): (24, 4), ("8", 50.0): (24, 6), ("8", 200.0): (8, 4),
}
# auto: (half, doped, each polarised variant)
PLAN_AUTO = {1.0: (24, 24, 2), 10.0: (24, 24, 2), 50.0: (24, 24, 2), 200.0: (24, 24, 2)}


def planned_n(k, beta, variant):
    """Default number of AIMs of a row (beta outside the plan: that of the nearest beta)."""
    b = min(BETAS, key=lambda x: abs(np.log(x / beta)))
    if k == "auto":
        n_half, n_doped, n_pol = PLAN_AUTO[b]
        return {"half": n_half, "doped": n_doped}.get(variant, n_pol)
    n_half, n_other = PLAN[(k, b)]
    return n_half if variant == "half" else n_other


def aim_order():
    """The 24 (U, start, iterations) in the benchmark's interleaved order."""
    order = []
    for j in range(N_AIMS_MAX):
        half = j % 12  # (j % 4, j % 3) runs over all (U, iterations) pairs for j < 12
        flip = j // 12
        start = STARTS[((half // 4) % 2) ^ flip]
        order.append((US[half % 4], start, ITERS[half % 3]))
    assert len(set(order)) == N_AIMS_MAX
    return order


class AIMSet:
    """The DMFT-like AIMs of one beta, built on first use (IPT DMFT runs are cached)."""

    def __init__(self, beta):
        self.beta = beta
        self.order = aim_order()
        self._g = {}
        self.time_dmft = 0.0

    def _g_iw(self, i, doped):
        key = (i, doped)
        if key not in self._g:
            U, start, it = self.order[i]
            mu = U / 2 + (DOPING if doped else 0.0)
            t0 = time.perf_counter()
            r = bethe_dmft("ipt", U, self.beta, D=D, mu=mu, n_iw=MESH["n_iw"],
                           n_tau=MESH["n_tau"], n_l=MESH["n_l"], start=start, max_iter=it)
            self.time_dmft += time.perf_counter() - t0
            self._g[key] = (np.asarray(r.G_iw), bool(r.converged), int(r.iterations))
        return self._g[key]

    def label(self, i):
        U, start, it = self.order[i]
        return f"U={U:g} {start[:3]} it={'conv' if it == ITERS[-1] else it}"

    def params(self, i, variant):
        U = self.order[i][0]
        g_half = self._g_iw(i, False)[0]
        shift = DOPING if variant.startswith("doped") else 0.0
        if variant.endswith("-pol"):
            g_dop = self._g_iw(i, True)[0]
            delta = T2 * np.stack([g_half[0], g_dop[1]])
            mu = U / 2 + shift + np.array([POLARISATION, -POLARISATION])
        else:
            delta = T2 * g_half
            mu = U / 2 + shift
        return AIMParams(U=U, mu=mu, beta=self.beta, Delta_iw=delta, D=D)


def time_ipt(p):
    """Median wall time of IPT on ``p`` (``IPT_REPEAT`` calls after a warm-up).

    ``None`` when IPT fails on ``p`` (off half filling its Kajueter-Kotliar conditions may
    not be met within IPT's default ``max_iter``); the row then counts the AIM as
    'IPT failed' and leaves it out of the ratios.
    """
    try:
        solve_aim("ipt", p, **MESH)
    except RuntimeError:
        return None
    ts = []
    for _ in range(IPT_REPEAT):
        t0 = time.perf_counter()
        solve_aim("ipt", p, **MESH)
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def rms_tau(a, b):
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def code_version():
    """Git commit, modified files and a hash of the solver sources (the code being timed)."""
    import hashlib
    import subprocess

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def git(*cmd):
        try:
            return subprocess.run(["git", *cmd], cwd=root, capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    src = os.path.join(root, "python", "triqs_mlsolver")
    files = ("solvers/ed.py", "solvers/_ed_core.py", "solvers/_ftlm.py", "aim/bath.py")
    h = hashlib.sha1()
    for f in files:
        with open(os.path.join(src, f), "rb") as fh:
            h.update(fh.read())
    return dict(commit=git("rev-parse", "--short", "HEAD"),
                modified=(git("status", "--porcelain", "--", "python") or "").splitlines(),
                sources_sha1=h.hexdigest()[:12], sources=list(files))


def _check_auto(r, sol, p, key, cache, check_budget):
    """Compare the auto solution with k = 8 (and k = 6) on the same AIM; returns seconds spent.

    k = 8 comes from the k = 8 row when it ran on this AIM, is ``sol`` itself when auto chose
    8, else is solved here while the row's check time is below ``check_budget``.  k = 6 is
    taken from the k = 6 row only (no extra solve); at beta = 1 it is exact where k = 8 uses
    FTLM, whose error bar (``g8_bar``) then limits the k = 8 comparison.
    """
    spent, n_bath = 0.0, r["n_bath"]
    if n_bath == 8:
        r.update(rms_vs_8=0.0, check="auto chose 8", g8_bar=r["ftlm_error"])
    else:
        if ("8",) + key not in cache and check_budget > 0:
            t0 = time.perf_counter()
            try:
                s8 = solve_ed(p, **MESH, n_bath=8)
                cache[("8",) + key] = (np.array(s8.G_tau),
                                       s8.diagnostics.get("ftlm", {}).get("error_G_tau"))
                r["check"] = "solved"
            except Exception as err:  # noqa: BLE001
                r["check"] = f"k=8 failed: {type(err).__name__}: {err}"
            spent = time.perf_counter() - t0
        elif ("8",) + key in cache:
            r["check"] = "k=8 row"
        if ("8",) + key in cache:
            g8, bar = cache[("8",) + key]
            r.update(rms_vs_8=rms_tau(sol.G_tau, g8), g8_bar=bar)
    if n_bath < 6 and ("6",) + key in cache:
        r["rms_vs_6"] = rms_tau(sol.G_tau, cache[("6",) + key][0])
    return spent


def run_row(k, beta, variant, n, aims, budget, cache, check, check_budget):
    """Solve the first ``n`` AIMs of ``aims`` with bath ``k``; stop after ``budget`` seconds.

    ``cache`` keeps ``G_tau`` (and the FTLM bar) of the k = 6 and 8 solves for the check of
    the auto rows, keyed by ``(k, beta, variant, aim)``.
    """
    n_bath = "auto" if k == "auto" else int(k)
    rows, failed, t_row, t_check, skipped = [], [], 0.0, 0.0, 0
    for i in range(n):
        if t_row > budget:
            skipped = n - i
            break
        p = aims.params(i, variant)
        t_ipt = time_ipt(p)
        t0 = time.perf_counter()
        try:
            sol = solve_ed(p, **MESH, n_bath=n_bath)
        except Exception as err:  # noqa: BLE001 - a failed solve is a result of the row
            t_row += time.perf_counter() - t0
            failed.append(dict(aim=i, label=aims.label(i), error=f"{type(err).__name__}: {err}"))
            print(f"  [{k:>4} beta={beta:g} {variant}] {i + 1}/{n} {aims.label(i)}: ED FAILED "
                  f"{failed[-1]['error']}", file=sys.stderr, flush=True)
            continue
        t = time.perf_counter() - t0
        t_row += t
        d = sol.diagnostics
        r = dict(aim=i, label=aims.label(i), time=t, time_ipt=t_ipt,
                 ratio=None if t_ipt is None else t / t_ipt,
                 time_fit=d.get("time_fit"), time_poles=d.get("time_poles"),
                 time_solution=d.get("time_solution"), n_bath=d.get("n_bath"),
                 n_states_kept=d.get("n_states_kept"), ftlm="ftlm" in d,
                 ftlm_error=d.get("ftlm", {}).get("error_G_tau"),
                 fit_chi2=max((d.get("bath_fit") or {}).get("chi2") or [0.0]))
        if k in ("6", "8"):
            cache[(k, beta, variant, i)] = (np.array(sol.G_tau), r["ftlm_error"])
        if k == "auto":
            ref = d["reference"]
            r.update(error_estimate=ref["error_estimate"], converged=ref["converged"],
                     history=ref["history"])
            if check:
                t_check += _check_auto(r, sol, p, (beta, variant, i), cache,
                                       check_budget - t_check)
        rows.append(r)
        extra = (f" n_bath={r['n_bath']} est={r['error_estimate']:.1e}"
                 + (f" vs8={r['rms_vs_8']:.1e}" if "rms_vs_8" in r else "")
                 + (f" (k=8 FTLM bar {r['g8_bar']:.1e})" if r.get("g8_bar") else "")
                 + (f" vs6={r['rms_vs_6']:.1e}" if "rms_vs_6" in r else "")
                 if k == "auto" else "")
        ipt = "IPT failed" if t_ipt is None else f"IPT {1e3 * t_ipt:.1f} ms, x{t / t_ipt:.0f}"
        print(f"  [{k:>4} beta={beta:g} {variant}] {i + 1}/{n} {r['label']}: {t:.3f} s "
              f"({ipt}){extra}", file=sys.stderr, flush=True)
    return dict(k=k, beta=beta, variant=variant, n_planned=n, n_skipped_budget=skipped,
                budget=budget, time_row=t_row, time_check=t_check, solves=rows, failed=failed)


def _ratio(r):
    if r is None:
        return "-"
    return f"{r:.1f}" if r < 9.95 else f"{r:.0f}"


def _g(x, fmt):
    return "-" if x is None else format(x, fmt)


def summarise(res):
    """Summary numbers of a row (``None`` where nothing was solved)."""
    s = res["solves"]
    out = dict(n=len(s), n_planned=res["n_planned"], skipped=res["n_skipped_budget"],
               n_failed=len(res["failed"]))
    if not s:
        return out
    t = [x["time"] for x in s]
    imax = int(np.argmax(t))
    med = statistics.median(t)
    with_ipt = [x for x in s if x["time_ipt"] is not None]
    kept = [x["n_states_kept"] for x in s if x["n_states_kept"] is not None]  # None: full ED
    out.update(median=med, max=t[imax], max_over_median=t[imax] / med,
               ratio_median=statistics.median(x["ratio"] for x in with_ipt) if with_ipt else None,
               ratio_max=s[imax]["ratio"], n_ipt_failed=len(s) - len(with_ipt),
               ipt_median=statistics.median(x["time_ipt"] for x in with_ipt) if with_ipt else None,
               fit_median=statistics.median(x["time_fit"] or 0.0 for x in s),
               kept_median=statistics.median(kept) if kept else None,
               n_ftlm=sum(x["ftlm"] for x in s))
    if res["k"] == "auto":
        err = [x["error_estimate"] for x in s]
        out.update(err_median=statistics.median(err), err_max=max(err),
                   hist=dict(sorted(collections.Counter(x["n_bath"] for x in s).items())),
                   n_converged=sum(x["converged"] for x in s))
        chk = [x for x in s if "rms_vs_8" in x]
        if chk:
            below = [x for x in chk if x["n_bath"] < 8]
            out.update(n_check=len(chk), n_check_below8=len(below),
                       rms8_median=statistics.median(x["rms_vs_8"] for x in chk),
                       rms8_max=max(x["rms_vs_8"] for x in chk),
                       rms8_over_est_max=max((x["rms_vs_8"] / x["error_estimate"]
                                              for x in below if x["error_estimate"] > 0),
                                             default=None),
                       g8_bar_max=max((x["g8_bar"] for x in chk if x.get("g8_bar")),
                                      default=None))
        chk6 = [x["rms_vs_6"] for x in s if "rms_vs_6" in x]
        if chk6:
            out.update(n_check6=len(chk6), rms6_max=max(chk6))
    return out


HEAD = (f"{'k':>4} {'beta':>5} {'variant':<9} {'n':>7} {'median s':>9} {'xIPT':>7} "
        f"{'max s':>8} {'xIPT':>7} {'max/med':>7} {'IPT ms':>7} {'fit s':>6} {'kept':>5} "
        f"{'ftlm':>4}")
HEAD_AUTO = (f"{'beta':>5} {'variant':<9} {'n':>7} {'err med':>8} {'err max':>8} "
             f"{'n_bath histogram':<22} {'conv':>5} {'chk n(<8)':>9} {'|G-G8| med':>10} "
             f"{'|G-G8| max':>10} {'act/est':>7} {'G8 bar':>7} {'|G-G6| max (n)':>14}")


def fmt_row(res, sm):
    n = f"{sm['n']}/{sm['n_planned']}" + ("b" if sm["skipped"] else "")
    if not sm["n"]:
        return (f"{res['k']:>4} {res['beta']:>5g} {res['variant']:<9} {n:>7}  "
                f"(nothing solved; ED failed on {sm['n_failed']})")
    kept = "full" if sm["kept_median"] is None else f"{sm['kept_median']:.0f}"
    ipt_ms = None if sm["ipt_median"] is None else 1e3 * sm["ipt_median"]
    note = f"  IPT failed on {sm['n_ipt_failed']}" if sm["n_ipt_failed"] else ""
    note += f"  ED failed on {sm['n_failed']}" if sm["n_failed"] else ""
    return (f"{res['k']:>4} {res['beta']:>5g} {res['variant']:<9} {n:>7} "
            f"{sm['median']:9.3f} {_ratio(sm['ratio_median']):>7} {sm['max']:8.3f} "
            f"{_ratio(sm['ratio_max']):>7} {sm['max_over_median']:7.1f} "
            f"{_g(ipt_ms, '7.1f'):>7} {sm['fit_median']:6.3f} {kept:>5} {sm['n_ftlm']:>4}{note}")


def fmt_auto(res, sm):
    n = f"{sm['n']}/{sm['n_planned']}" + ("b" if sm["skipped"] else "")
    if not sm["n"]:
        return (f"{res['beta']:>5g} {res['variant']:<9} {n:>7}  "
                f"(nothing solved; ED failed on {sm['n_failed']})")
    hist = " ".join(f"{b}:{c}" for b, c in sm["hist"].items())
    chk = f"{sm['n_check']}({sm['n_check_below8']})" if "n_check" in sm else "-"
    chk6 = f"{sm['rms6_max']:.1e} ({sm['n_check6']})" if "n_check6" in sm else "-"
    return (f"{res['beta']:>5g} {res['variant']:<9} {n:>7} {sm['err_median']:8.1e} "
            f"{sm['err_max']:8.1e} {hist:<22} {sm['n_converged']:>5} {chk:>9} "
            f"{_g(sm.get('rms8_median'), '10.1e'):>10} {_g(sm.get('rms8_max'), '10.1e'):>10} "
            f"{_g(sm.get('rms8_over_est_max'), '7.2g'):>7} {_g(sm.get('g8_bar_max'), '7.1e'):>7} "
            f"{chk6:>14}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--k", nargs="+", choices=KS, default=list(KS),
                    help="bath sizes and/or 'auto' (default: all)")
    ap.add_argument("--betas", nargs="+", type=float, default=list(BETAS),
                    help="inverse temperatures (default: 50 10 200 1, in that order)")
    ap.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    ap.add_argument("--n-aims", type=int, default=None,
                    help=f"AIMs per row (1..{N_AIMS_MAX}) instead of the default plan")
    ap.add_argument("--budget", type=float, default=900.0,
                    help="seconds of ED per row after which its remaining AIMs are skipped")
    ap.add_argument("--check-max-beta", type=float, default=50.0,
                    help="check auto's error estimate against k = 8 up to this beta")
    ap.add_argument("--check-budget", type=float, default=60.0,
                    help="seconds per auto row for k = 8 solves made only for the check")
    ap.add_argument("--quick", action="store_true",
                    help="2 AIMs per row, beta = 50 (unless --betas), budget 60 s")
    ap.add_argument("--json", metavar="OUT", help="write every solve to this JSON file")
    ap.add_argument("--show-plan", action="store_true", help="print the plan and exit")
    args = ap.parse_args()
    if args.n_aims is not None and not 1 <= args.n_aims <= N_AIMS_MAX:
        ap.error(f"--n-aims {args.n_aims}: use 1..{N_AIMS_MAX}")
    if any(not b > 0 for b in args.betas):
        ap.error(f"--betas {args.betas}: every beta must be > 0 (e.g. --betas 50 10)")
    if args.quick:
        args.n_aims = args.n_aims or 2
        if "--betas" not in sys.argv:
            args.betas = [50.0]
        if "--budget" not in sys.argv:
            args.budget = 60.0
    ks = [k for k in KS if k in args.k]  # fixed order: k = 6, 8 fill the cache auto checks use
    configs = [(k, b, v, args.n_aims or planned_n(k, b, v))
               for b in args.betas for k in ks for v in args.variants]

    print(f"threads: {THREADS}; {platform.node()} {platform.machine()}, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
    print(f"mesh: {MESH}; solve_ed default options, bath fit included; IPT: median of "
          f"{IPT_REPEAT} after a warm-up; budget {args.budget:g} s of ED per row; auto: "
          f"k = {_ed.AUTO_K_MIN}..{_ed.AUTO_K_MAX}, tol {_ed.AUTO_TOL:g}")
    print(f"plan: AIMs per row ({len(configs)} rows, {sum(c[3] for c in configs)} solves), "
          f"variants {'/'.join(args.variants)}:")
    for b in args.betas:
        print(f"  beta={b:g}: " + ", ".join(
            f"k={k} " + "/".join(str(n) for kk, bb, _, n in configs if kk == k and bb == b)
            for k in ks))
    if args.show_plan:
        return
    code = code_version()
    print(f"code: commit {code['commit']}, modified under python/: "
          f"{', '.join(m.split()[-1] for m in code['modified']) or 'none'}; "
          f"sha1 of {', '.join(code['sources'])}: {code['sources_sha1']}")
    results, cache, aimsets = [], {}, {}
    meta = dict(code=code, threads=THREADS, mesh=MESH, node=platform.node(),
                cpu_count=os.cpu_count(), loadavg_start=os.getloadavg(), argv=sys.argv,
                budget=args.budget, date=time.strftime("%Y-%m-%d %H:%M:%S"))
    t_start = time.perf_counter()
    for k, beta, variant, n in configs:
        aims = aimsets.setdefault(beta, AIMSet(beta))
        res = run_row(k, beta, variant, n, aims, args.budget, cache,
                      check=beta <= args.check_max_beta, check_budget=args.check_budget)
        res["summary"] = summarise(res)
        results.append(res)
        print(HEAD + "\n" + fmt_row(res, res["summary"]), flush=True)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(dict(meta=meta, results=results), f, indent=1)

    print(f"\n== summary (one core; n = solved/planned, 'b': rest skipped after the "
          f"{args.budget:g} s budget; xIPT = ED time / IPT time on the same AIM, the max "
          f"column that of the slowest AIM) ==")
    print(HEAD)
    print("-" * len(HEAD))
    for res in results:
        print(fmt_row(res, res["summary"]))
    autos = [r for r in results if r["k"] == "auto"]
    if autos:
        print(f"\n'auto' reference: error estimate, chosen bath sizes (size:count), "
              f"converged count; check at beta <= {args.check_max_beta:g}: RMS over tau and "
              f"spins of G_auto - G_8 on chk n AIMs (in brackets: those where auto stopped "
              f"below 8), act/est = max of that RMS / the estimate over those below 8, G8 bar = "
              f"largest FTLM error bar of the G_8 compared (then the k = 8 check is limited by "
              f"it), |G-G6| = RMS against the k = 6 row where auto stopped below 6)")
        print(HEAD_AUTO)
        print("-" * len(HEAD_AUTO))
        for res in autos:
            print(fmt_auto(res, res["summary"]))
    print("\nIPT DMFT runs building the AIMs: "
          + ", ".join(f"beta={b:g}: {a.time_dmft:.1f} s" for b, a in aimsets.items())
          + f"; total wall {time.perf_counter() - t_start:.0f} s; load average "
          f"{os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
