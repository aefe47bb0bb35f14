# SPDX-License-Identifier: Apache-2.0
"""One round of the dynamic database (the seed lecture's "what's next"), measured.

    python example/dynamic_round.py --model triqs_mlsolver_single_band.safetensors \\
        --database single_band_db.h5 --out dynamic_round

1. ML-DMFT runs in a region (default: the square lattice with t'/t = -0.3, beta = 50,
   several U and fillings) record every AIM MLSolver is asked to solve
   (``MLSolver(record=...)``): the *round* runs into ``round_visits.h5``, other runs of the
   same region (other U and mu, never used in the round) into ``heldout_visits.h5``.
2. ``triqs-mlsolver generate RECIPE --from VISITS`` solves both with the reference
   (the recipe's cheap solvers, its grid; the visited hybridisation fitted by 8 sites).
3. ``triqs-mlsolver train --init-model MODEL`` continues the model on the recipe's
   database plus the round's database (the parent's transforms, every database split
   alone, the parent's and each database's test samples never trained on).
4. ``triqs-mlsolver evaluate`` of the model before and after on the held-out database:
   RMS of G(tau) against the reference and the ratio to the best cheap solver.

Each step is skipped when its output exists (rerun after a stop).  Prints the table and
writes ``OUT/summary.json``.
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

RECIPE = Path(__file__).resolve().parents[1] / "python" / "triqs_mlsolver" / "data" / \
    "single_band_database.toml"
TRAIN = Path(__file__).resolve().parents[1] / "python" / "triqs_mlsolver" / "ml" / \
    "single_band_model.toml"
#: (U/D, mu - U/2) of the round's runs and of the held-out runs (square lattice, t'/t=-0.3).
ROUND = [(U, dmu) for U in (2.0, 3.0, 4.0) for dmu in (-0.25, -0.5)]
HELDOUT = [(2.5, -0.375), (3.5, -0.375)]
BETA = 50.0
TPRIME = -0.3


def _lattice():
    from triqs_mlsolver.dmft.lattice import KSumLattice, uniform_k_grid

    t = 0.25
    k = uniform_k_grid(64, 2)
    eps = -2 * t * (np.cos(k[:, 0]) + np.cos(k[:, 1])) \
        - 4 * TPRIME * t * np.cos(k[:, 0]) * np.cos(k[:, 1])
    return KSumLattice(eps, name="square_tprime")


def record(model, runs, path):
    """ML-DMFT runs (from the metal) recording every solve into ``path``."""
    from triqs_mlsolver.dmft import run_dmft

    lat = _lattice()
    for U, dmu in runs:
        r = run_dmft("ml", U, BETA, lattice=lat, mu=U / 2 + dmu, start="metal", n_iw=512,
                     n_tau=2049, n_l=30, mixing=0.5, tol=1e-4, max_iter=30,
                     solver_options={"model": str(model), "record": str(path)})
        print(f"  U={U:g} mu-U/2={dmu:+g}: n = {np.sum(r.density):.3f}, Z0 = "
              f"{np.mean(r.Z):.3f}, {r.iterations} iterations, "
              f"{int(r.history.fallback.sum())} served by ED", flush=True)


def _run(cmd):
    print("$ " + " ".join(map(str, cmd)), flush=True)
    subprocess.run([str(c) for c in cmd], check=True)


def _evaluate(model, db, out_json):
    if not out_json.exists():
        _run(["triqs-mlsolver", "-q", "evaluate", model, db, "--no-baselines",
              "--max-reference-error", "1e-4", "--json", out_json])
    return json.loads(out_json.read_text())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, required=True, help="the model of the round")
    ap.add_argument("--database", type=Path, required=True,
                    help="the model's training database (trained on again with the round's)")
    ap.add_argument("--out", type=Path, default=Path("dynamic_round"))
    ap.add_argument("--ranks", type=int, default=os.cpu_count() or 1,
                    help="MPI ranks of the reference solves")
    ap.add_argument("--max-epochs", type=int, default=60)
    args = ap.parse_args(argv)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    model = args.model.resolve()
    for name, runs in (("round", ROUND), ("heldout", HELDOUT)):
        visits = out / f"{name}_visits.h5"
        if not visits.exists():
            print(f"ML-DMFT runs of the {name} set (square lattice t'/t = {TPRIME}, "
                  f"beta = {BETA:g})")
            record(model, runs, visits)
        db = out / f"{name}_db.h5"
        if not db.exists():
            _run(["mpirun", "-n", args.ranks, "triqs-mlsolver", "generate", RECIPE, "--from",
                  visits, "-o", db, "--resume"])
    new = out / "after_round.safetensors"
    if not new.exists():
        _run(["triqs-mlsolver", "train", TRAIN, "--database", args.database.resolve(),
              "--database", out / "round_db.h5", "--init-model", model, "--max-epochs",
              args.max_epochs, "--lr", "3e-4", "-o", new])
    rows = {}
    for label, m in (("before", model), ("after", new)):
        res = _evaluate(m, out / "heldout_db.h5", out / f"heldout_{label}.json")
        tab, rat = res["table"]["G(tau)"], res["ratios"]
        rows[label] = {"rms": tab["model"]["all"]["RMS"],
                       "ratio": rat["model"]["all"]["ratio"],
                       "lo": rat["model"]["all"]["lo"], "hi": rat["model"]["all"]["hi"],
                       "best": rat["model"]["all"]["best"],
                       "rms_best": tab[rat["model"]["all"]["best"]]["all"]["RMS"]}
    print("\nheld-out AIMs of the region (other U and mu than the round's runs):")
    print(f"{'model':8s} {'RMS G(tau)':>11s} {'/ best cheap':>13s} {'95 % interval':>18s}")
    for label, r in rows.items():
        print(f"{label:8s} {r['rms']:11.3e} {r['ratio']:13.3f} "
              f"[{r['lo']:.3f}, {r['hi']:.3f}]  (best cheap {r['best']}: {r['rms_best']:.3e})")
    (out / "summary.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
