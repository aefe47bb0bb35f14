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
stored tau points with the trapezoid weights of ``evaluate``, both spins).
"""

import argparse
import os
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor

import numpy as np

N_IW, N_TAU, N_L = 1025, 16385, 40  # G(tau) splined onto the stored points as generate does
_STATE = {}


def _init(model_path, db_path):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
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
                   warn=False)
    d = sol.diagnostics
    from triqs_mlsolver.gf.transforms import uniform_tau_to_points

    G = uniform_tau_to_points(np.asarray(sol.G_tau).real, np.asarray(db.tau_over_beta))
    ref = np.asarray(db.read(db.reference, "G_tau")[int(i)])
    proj = d.get("projection") or {}
    answered_by = "reference ED" if d["fallback_used"] else d["model"]
    return {"index": int(i), "reasons": list(d["out_of_domain"]), "invalid": list(d["invalid"]),
            "rms": _rms(G - ref, db), "seconds": time.perf_counter() - t0,
            "projected": bool(proj.get("accepted")), "projection_tried": bool(proj),
            "projection_reason": proj.get("reason", ""),
            "projection_seconds": d["timings"].get("projection", 0.0),
            "answered_by": answered_by}


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
    if "failed" in reason or "solver" in reason:
        return "cheap solver"
    return "domain"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("database")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--limit", type=int, default=0, help="only the first N unseen samples")
    args = ap.parse_args(argv)
    from triqs_mlsolver.database import Database
    from triqs_mlsolver.ml import load_model
    from triqs_mlsolver.ml.evaluate import unseen_samples
    from triqs_mlsolver.mlsolver import DEFAULT_MODELS

    db = Database(args.database)
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
        _init(args.model, args.database)
        rows = [_one(i) for i in idx]
    else:
        import multiprocessing

        # spawned workers: forking after torch is loaded can hang them
        with ProcessPoolExecutor(args.jobs, initializer=_init,
                                 initargs=(args.model, args.database),
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
