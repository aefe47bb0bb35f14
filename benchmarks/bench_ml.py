# SPDX-License-Identifier: Apache-2.0
"""Inference time of a correction model against the cheap solvers it corrects (same run).

The model's time per sample covers features -> transforms -> network(s) ->
constraint projection -> G on the stored tau grid, at batch 1 and batch
1024 (samples of the database, repeated if it has fewer).  The cheap
solvers are timed with ``solve_aim`` on the database's first sample with the
database's grid (``n_iw``, ``n_tau``, ``n_l``).  The model needs the cheap
solvers' results as input, so the ML solve costs (sum of its input solvers)
+ (model time); an ``ed<k>e`` input next to ``ed<k>w`` costs only its re-embedding
(``embed_solution``, timed on its own), as in MLSolver.

    python benchmarks/bench_ml.py MODEL DB.h5 [--repeat 20] [--threads 1] [--solvers ...]

MODEL is a model file or a shipped model's name.  Ratios are to Hubbard-I (the
cheapest solver) in the same run when it is among the timed solvers.
"""

import argparse

import numpy as np
from _timing import median_time
from triqs_mlsolver.aim import AIMParams
from triqs_mlsolver.database import Database
from triqs_mlsolver.ml import load_model
from triqs_mlsolver.ml.dataset import SampleSet, add_fit_residuals, load_samples
from triqs_mlsolver.solvers import solve_aim
from triqs_mlsolver.solvers.ed import embed_solution, embedded_source


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("database")
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--solvers", nargs="*", default=None,
                    help="cheap solvers to time (default: the model's inputs)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    model = load_model(args.model)
    db = Database(args.database)
    solvers = list(dict.fromkeys([*model.spec.inputs]))
    idx = np.flatnonzero(db.ok)[:1024]
    samples = add_fit_residuals(load_samples(db, model.spec.representation, solvers, idx,
                                             spin_resolved=model.spec.spin_resolved),
                                db, model.spec)
    while len(samples) < 1024:
        samples = SampleSet.concatenate([samples, samples])
    big = samples.subset(np.arange(1024))
    one = samples.subset(np.arange(1))
    t1 = median_time(lambda: model.predict(one), args.repeat)
    t1024 = median_time(lambda: model.predict(big), max(3, args.repeat // 5))
    p = db.params
    i = int(idx[0])
    params = AIMParams(U=p["U"][i], mu=p["mu"][i], beta=p["beta"][i], eps_k=p["eps_k"][i],
                       V_k=p["V_k"][i], D=p["D"][i])
    grid = {"n_iw": int(db.attrs["n_iw"]), "n_tau": len(db.tau_over_beta),
            "n_l": int(next(iter(samples.G_l.values())).shape[1])}
    rows = []
    for s in args.solvers or solvers:
        rows.append((s, median_time(lambda s=s: solve_aim(s, params, **grid), args.repeat)))
    in_ml = {s: t for s, t in rows if s in solvers}
    embeds = []
    for s in solvers:  # what MLSolver does: ed<k>e re-embeds ed<k>w's solution
        src = embedded_source(s)
        if src in solvers:
            sol = solve_aim(src, params, **grid)
            in_ml[s] = median_time(lambda sol=sol: embed_solution(params, sol, n_tau=grid["n_tau"],
                                                                  n_l=grid["n_l"]), args.repeat)
            embeds.append((f"{s} = embed {src}", in_ml[s]))
    print(f"model {args.model}: {len(model.nets)} member(s), "
          f"{model.architecture['depth']} x {model.architecture['width']} "
          f"{model.architecture['activation']}, torch threads {torch.get_num_threads()}")
    print(f"sample {i}: beta = {params.beta:g}, U = {params.U:.3g}, D = {params.D:.3g}; "
          f"grid {grid}")
    base = dict(rows).get("hubbard_i")  # the cheapest solver: the baseline of the ratios
    ratio = (lambda t: f"{t / base:10.2f}") if base else (lambda t: "")
    print(f"{'':28s} {'time per sample':>16s} {'/ hubbard_i' if base else '':>10s}")
    print(f"{'model, batch 1':28s} {t1 * 1e3:13.3f} ms {ratio(t1)}")
    print(f"{'model, batch 1024':28s} {t1024 / 1024 * 1e3:13.4f} ms {ratio(t1024 / 1024)}")
    for s, t in rows:
        print(f"{'solve_aim ' + s:28s} {t * 1e3:13.3f} ms {ratio(t)}")
    for s, t in embeds:
        print(f"{s:28s} {t * 1e3:13.3f} ms {ratio(t)}")
    total = sum(in_ml.values())
    print(f"{'ML solve (inputs + model)':28s} {(total + t1) * 1e3:13.3f} ms {ratio(total + t1)}")

if __name__ == "__main__":
    main()
