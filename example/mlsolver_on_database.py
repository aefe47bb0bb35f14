# SPDX-License-Identifier: Apache-2.0
"""MLSolver on every unseen sample of a database: validity, fallback share, accuracy.

    python example/mlsolver_on_database.py MODEL single_band_test.h5 [--jobs 2] [--limit N]

``MODEL``: a model name or file, or ``default`` (MLSolver's default chain,
``DEFAULT_MODELS``: each AIM answered by the first model whose domain holds it; the
samples are those none of them saw).

Each AIM of the database (its discrete bath, as the generator gave it to every solver)
that the model never saw (by content hash) is solved by ``solve_ml`` with
``fallback="none"``, so the model's own answer is kept and every reason it would have
been handed to the reference ED is recorded: outside the training domain (checked before
any solver runs), a cheap solver failing, the ensemble spread above its limit, or an
exact property violated (:func:`triqs_mlsolver.validity.check_solution`) and not repaired
by the causal projection (:mod:`triqs_mlsolver.causal`).  Prints the
counts, the share of in-domain samples the default ``fallback="ed"`` would send to the
reference, and the RMS of G(tau) of the answers against the stored reference (on the
stored tau points with the trapezoid weights of ``evaluate``, both spins).  A discrete
bath of at most ``EXACT_MAX_BATH`` sites is solved exactly (MLSolver's rule, not the
model), where the model's cheap solvers agree below its ``AGREEMENT_LIMITS`` level its
base answers, and where they disagree by its ``ESCALATION`` level or more a larger cheap
solver answers: all three are counted.  ``--exact-max-bath 0`` sends every AIM through the
models, as MLSolver meets a continuous hybridisation (a DMFT loop's ``G0_iw``).

``--delivered`` also solves every AIM the default would hand to the reference with
``fallback="ed"``, so the RMS of what a user gets is measured, not assumed; ``--tables``
prints issue 18's ratio tables (per bin and per (beta D, U/D, n) cell, over the best stored
cheap solver, paired bootstrap) for the model's answers and for those outputs; ``--json``
keeps one record per AIM.

    python example/mlsolver_on_database.py default single_band_test.h5 --delivered --tables
"""

import os

# one BLAS thread per process, set before numpy is imported: the spawned workers import
# this module first, so a setting in their initializer came too late (two workers then ran
# two threads each on two cores, and the recorded times of the slower solves grew 5-20x)
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402

import numpy as np  # noqa: E402

N_IW, N_TAU, N_L = 1025, 16385, 40  # G(tau) splined onto the stored points as generate does
_STATE = {}


def _init(model_path, db_path, delivered=False, exact_max_bath=None):
    _STATE["delivered"] = delivered
    _STATE["exact"] = {} if exact_max_bath is None else {"exact_max_bath": exact_max_bath}
    from triqs_mlsolver.database import Database
    from triqs_mlsolver.ml import load_model

    _STATE["model"] = None if model_path == "default" else load_model(model_path)
    _STATE["db"] = Database(db_path)


def _one(i):
    from triqs_mlsolver.mlsolver import solve_ml

    db, model = _STATE["db"], _STATE["model"]
    p = db.aim_params(int(i))
    t0 = time.perf_counter()
    sol = solve_ml(p, n_iw=N_IW, n_tau=N_TAU, n_l=N_L, model=model, fallback="none",
                   warn=False, **_STATE["exact"])
    d = sol.diagnostics
    from triqs_mlsolver.gf.transforms import uniform_tau_to_points

    G = uniform_tau_to_points(np.asarray(sol.G_tau).real, np.asarray(db.tau_over_beta))
    ref = np.asarray(db.read(db.reference, "G_tau")[int(i)])
    proj = d.get("projection") or {}
    answered_by = "reference ED" if d["fallback_used"] else d["model"]
    guard = d.get("disagreement") or {}
    row = {"disagreement": guard.get("value"), "disagreement_limit": guard.get("limit"),
           "spread_max": d.get("spread_max"), "spread_limit": d.get("spread_limit")}
    if _STATE.get("delivered") and (d["out_of_domain"] or d["invalid"]):
        # what the default fallback='ed' gives the user for this AIM: the reference ED
        t1 = time.perf_counter()
        fb = solve_ml(p, n_iw=N_IW, n_tau=N_TAU, n_l=N_L, model=model, fallback="ed",
                      warn=False, **_STATE["exact"])
        Gf = uniform_tau_to_points(np.asarray(fb.G_tau).real, np.asarray(db.tau_over_beta))
        row.update(fallback_rms=_rms(Gf - ref, db), fallback_seconds=time.perf_counter() - t1,
                   fallback_reference=fb.diagnostics.get("reference"))
    return {**row, "index": int(i), "reasons": list(d["out_of_domain"]),
            "invalid": list(d["invalid"]),
            "rms": _rms(G - ref, db), "seconds": time.perf_counter() - t0,
            "projected": bool(proj.get("accepted")), "projection_tried": bool(proj),
            "projection_reason": proj.get("reason", ""),
            "projection_seconds": d["timings"].get("projection", 0.0),
            "answered_by": answered_by, "exact": bool(d.get("exact")),
            "base_only": bool(d.get("base_only")),
            "escalated": bool(d.get("escalated") and "failed" not in d["escalated"])}


def _rms(d, db):
    """RMS over tau (trapezoid weights on a non-uniform stored mesh, as ``evaluate``) and
    the spins."""
    from triqs_mlsolver.database.reader import tau_weights

    w = tau_weights(np.asarray(db.tau_over_beta))
    return float(np.sqrt(np.mean(d**2 * (1.0 if w is None else w))))


def _kind(reason: str) -> str:
    if reason.startswith("ensemble spread"):
        return "spread"
    if reason.startswith("invalid"):
        return "invalid"
    if reason.startswith("cheap solvers"):
        return "disagreement"
    if reason.startswith("escalated answer"):
        return "escalation guard"
    if "failed" in reason or "solver" in reason:
        return "cheap solver"
    return "domain"


def _row_meta(db, idx_rows) -> dict:
    """Per solved AIM: ``beta D``, ``U/D``, the reference's total filling, the bath size and
    whether it is spin-polarised (the database's own rule)."""
    p = db.params
    D = np.asarray(p["D"])[idx_rows]
    return {"beta": np.asarray(p["beta"])[idx_rows] * D, "U": np.asarray(p["U"])[idx_rows] / D,
            "n": np.asarray(db.read(db.reference, "density"))[idx_rows].sum(axis=1),
            "n_bath": np.asarray(p["n_bath"])[idx_rows],
            "polarised": np.asarray(db.polarised)[idx_rows]}


def _print_tables(rows, cheap_rms, meta, *, delivered):
    """The issue-18 ratio tables for the rows solved here: RMS of G(tau) of the model's own
    answers (``model``: fallback='none') and of what the user gets (``MLSolver``: the
    reference ED's answer where the default sends the AIM there) over the best stored cheap
    solver of each bin and cell (all of the database's cheap solvers: the strictest)."""
    from triqs_mlsolver.database.reader import beta_classes, beta_label
    from triqs_mlsolver.ml.evaluate import (
        N_EDGES,
        cells_of_rows,
        edge_bins,
        format_cell_table,
        format_ratio_table,
        ratios_of_bins,
    )

    mse = {k: v ** 2 for k, v in cheap_rms.items()}
    mse["model"] = np.array([r["rms"] for r in rows]) ** 2
    methods = ["model"]
    if delivered:
        mse["MLSolver"] = np.array([r.get("fallback_rms", r["rms"]) for r in rows]) ** 2
        methods.append("MLSolver")
    bd, u, n, pol = meta["beta"], meta["U"], meta["n"], meta["polarised"]
    bins = {"all": np.ones(len(rows), bool)}
    if pol.any():
        bins.update({"polarised": pol, "spin-symmetric": ~pol})
    bins.update({"bath <= 4 sites": meta["n_bath"] <= 4, "bath >= 5 sites": meta["n_bath"] >= 5})
    bins.update({beta_label(k): m for k, m in beta_classes(bd)})
    bins.update(edge_bins(u, (0.0, 2.5, 5.0, 7.5, 10.0), "U/D"))
    bins.update({k: m for k, m in edge_bins(n, N_EDGES, "n").items() if m.any()})
    cheap = list(cheap_rms)
    ratios = ratios_of_bins(mse, cheap, methods, bins)
    print(format_ratio_table(ratios, list(bins)))
    print(format_cell_table(cells_of_rows(mse, cheap, methods, bd, u, n)))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("database")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--limit", type=int, default=0, help="only the first N unseen samples")
    ap.add_argument("--delivered", action="store_true",
                    help="also solve every AIM the default would send to the reference with "
                         "fallback='ed' and report the RMS of what the user gets")
    ap.add_argument("--tables", action="store_true",
                    help="ratio tables (per beta, U, filling bin and per (beta D, U/D, n) "
                         "cell, paired bootstrap) of the model's answers and, with "
                         "--delivered, of MLSolver's outputs over the best stored cheap "
                         "solver")
    ap.add_argument("--cheap", nargs="+", metavar="SOLVER",
                    help="the stored cheap solvers the ratios are taken over (default: all of "
                         "the database's; e.g. leave out one the model itself uses)")
    ap.add_argument("--exact-max-bath", type=int, metavar="N",
                    help="solve discrete baths of at most N sites exactly (default: "
                         "MLSolver's EXACT_MAX_BATH); 0: every AIM through the models, as a "
                         "continuous hybridisation from a DMFT loop is")
    ap.add_argument("--json", metavar="FILE", help="write one record per AIM (errors, "
                    "reasons, disagreement, spread, stored cheap solvers' errors)")
    args = ap.parse_args(argv)
    from triqs_mlsolver.database import Database
    from triqs_mlsolver.ml import load_model
    from triqs_mlsolver.ml.evaluate import unseen_samples
    from triqs_mlsolver.mlsolver import DEFAULT_MODELS

    db = Database(args.database)
    asked = set(args.cheap or ())
    unknown = sorted(asked - set(db.solvers) | ({db.reference} & asked))
    if unknown:
        ap.error(f"--cheap {' '.join(unknown)}: not a cheap solver of {args.database} "
                 f"(it has {', '.join(s for s in db.solvers if s != db.reference)})")
    names = DEFAULT_MODELS if args.model == "default" else [args.model]
    idx = None
    for name in names:  # the default chain: samples none of its models saw
        model = load_model(name)
        seen_ok, info = unseen_samples(model.metadata, db, [db.reference])
        idx = seen_ok if idx is None else np.intersect1d(idx, seen_ok)
        print(f"{name}: {info['selection']}")
    if args.limit:
        idx = idx[: args.limit]
    t0 = time.perf_counter()
    if args.jobs <= 1:
        _init(args.model, args.database, args.delivered, args.exact_max_bath)
        rows = [_one(i) for i in idx]
    else:
        import multiprocessing

        # spawned workers: forking after torch is loaded can hang them
        with ProcessPoolExecutor(args.jobs, initializer=_init,
                                 initargs=(args.model, args.database, args.delivered,
                                           args.exact_max_bath),
                                 mp_context=multiprocessing.get_context("spawn")) as pool:
            rows = list(pool.map(_one, idx, chunksize=8))
    kinds = [{_kind(r) for r in row["reasons"]} | ({"invalid"} if row["invalid"] else set())
             for row in rows]
    in_domain = [k for k in kinds if "domain" not in k]
    sent = sum(bool(k) for k in in_domain)
    invalid = sum(bool(row["invalid"]) for row in rows)
    print(f"{len(rows)} samples solved by MLSolver (fallback='none') in "
          f"{time.perf_counter() - t0:.0f} s")
    print(f"  outside the training domain: {len(rows) - len(in_domain)}")
    print("  answered by: " + ", ".join(f"{k}: {v}" for k, v in
                                       Counter(row["answered_by"] for row in rows).items()))
    print(f"  of these, the base solver's own answer (agreement gate): "
          f"{sum(r['base_only'] for r in rows)}; a larger cheap solver's (escalation): "
          f"{sum(r['escalated'] for r in rows)}")
    print(f"  in domain: {len(in_domain)}; would be sent to the reference ED: {sent} "
          f"({100 * sent / max(len(in_domain), 1):.2f} %): "
          + ", ".join(f"{k}: {n}" for k, n in Counter(
              x for k in in_domain for x in k).items()))
    tried = sum(row["projection_tried"] for row in rows)
    projected = [row for row in rows if row["projected"]]
    print(f"  answers that violated an exact property: {tried}; replaced by their causal "
          f"projection: {len(projected)}; left invalid: {invalid}")
    for row in rows:
        if row["projection_tried"] and not row["projected"]:
            print(f"    sample {row['index']}: projection not used: {row['projection_reason']}")
    if projected:
        r = np.array([row["rms"] for row in projected])
        t = np.median([row["projection_seconds"] for row in projected])
        print(f"  RMS of G(tau) of the projected answers: {np.sqrt(np.mean(r ** 2)):.3e}; "
              f"median time of a projection {1e3 * t:.0f} ms")
    for row in rows:
        if row["invalid"]:
            print(f"    sample {row['index']}: {row['invalid']}")
    rms = np.array([r["rms"] for r in rows])
    ok = np.array([not k for k in kinds])
    print(f"  RMS of G(tau) against the reference: all {np.sqrt(np.mean(rms ** 2)):.3e}, "
          f"trusted answers {np.sqrt(np.mean(rms[ok] ** 2)):.3e}")
    idx_rows = np.array([r["index"] for r in rows], dtype=int)
    G_ref = np.asarray(db.read(db.reference, "G_tau"))[idx_rows]
    cheap_rms = {}
    for name in db.solvers:
        if name == db.reference or (args.cheap and name not in args.cheap):
            continue
        G_c = np.asarray(db.read(name, "G_tau"))[idx_rows]
        ok_c = np.all(np.isfinite(G_c), axis=(1, 2))
        if ok_c.all():
            cheap_rms[name] = np.array([_rms(a - b, db) for a, b in zip(G_c, G_ref)])
    total = {k: float(np.sqrt(np.mean(v ** 2))) for k, v in cheap_rms.items()}
    if total:
        best = min(total, key=total.get)
        print("  the stored cheap solvers on the same AIMs (RMS of G(tau)): " + ", ".join(
            f"{k} {v:.3e}" for k, v in sorted(total.items(), key=lambda kv: kv[1])))
        print(f"  model's answers / {best}: all {np.sqrt(np.mean(rms ** 2)) / total[best]:.3f}")
    if args.delivered:
        fb = [r for r in rows if "fallback_rms" in r]
        out = np.array([r.get("fallback_rms", r["rms"]) for r in rows])
        print(f"  what the default fallback='ed' delivers: {len(fb)} AIMs answered by the "
              f"reference ED (median {np.median([r['fallback_seconds'] for r in fb] or [0]):.1f}"
              f" s, max {max([r['fallback_seconds'] for r in fb] or [0]):.1f} s, RMS "
              f"{np.sqrt(np.mean(np.array([r['fallback_rms'] for r in fb] or [0]) ** 2)):.2e}); "
              f"RMS of G(tau) of all outputs {np.sqrt(np.mean(out ** 2)):.3e}"
              + (f" = {np.sqrt(np.mean(out ** 2)) / total[best]:.3f}x {best}" if total else ""))
    meta = _row_meta(db, idx_rows)
    if total and args.tables:
        _print_tables(rows, cheap_rms, meta, delivered=args.delivered)
    if args.json:
        import json

        for k, row in enumerate(rows):
            row["cheap_rms"] = {name: float(v[k]) for name, v in cheap_rms.items()}
            row.update(beta=float(meta["beta"][k]), U=float(meta["U"][k]),
                       n=float(meta["n"][k]), n_bath=int(meta["n_bath"][k]))
        with open(args.json, "w") as fh:
            json.dump(rows, fh, default=str)
    ref, cheap = db.reference, model.spec.base
    worst = np.argsort(-np.where(ok, rms, -1.0))[:5]
    print(f"  worst trusted answers (RMS of G(tau); the base {cheap} on the same AIM):")
    for k in worst:
        i = rows[k]["index"]
        base = "not in the database" if cheap not in db.solvers else format(_rms(
            np.asarray(db.read(cheap, "G_tau")[i]) - np.asarray(db.read(ref, "G_tau")[i]),
            db), ".2e")
        print(f"    sample {i}: beta = {db.params['beta'][i]:.4g}, U = {db.params['U'][i]:.3g}, "
              f"n = {np.sum(db.read(ref, 'density')[i]):.3f}: {rms[k]:.2e} ({cheap} {base})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
