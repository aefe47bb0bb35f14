# SPDX-License-Identifier: Apache-2.0
"""``triqs-mlsolver train``, ``evaluate``, ``gridsearch`` and ``model-info``."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["add_parsers", "run_train", "run_evaluate", "run_gridsearch", "run_model_info",
           "run_model_rehash"]


def add_parsers(sub):
    t = sub.add_parser(
        "train", help="train a correction model from a database (TOML config)",
        description="Train the network that corrects a cheap solver towards the reference "
                    "(see doc/ml.rst for the config keys). The held-out test split is never "
                    "used in training; the model file records it.")
    t.add_argument("config", type=Path, help="TOML training config")
    t.add_argument("-o", "--output", type=Path, default=None,
                   help="model file to write (overrides [output] model)")
    t.add_argument("--database", type=Path, default=None, action="append", metavar="DB.h5",
                   help="database to train on (overrides [data] database); repeat it to "
                        "train on several (each split alone, the samples concatenated)")
    t.add_argument("--init-model", default=None, metavar="PARENT.safetensors",
                   help="continue from this model (overrides [training] init_model): its "
                        "transforms are reused and member k starts from its member k; the "
                        "config must fit it (features, architecture, members)")
    t.add_argument("--lr", type=float, default=None,
                   help="override [training] lr (e.g. a smaller one with --init-model)")
    t.add_argument("--max-epochs", type=int, default=None,
                   help="override [training] max_epochs (0 with --init-model: the parent's "
                        "weights unchanged)")
    t.add_argument("--resume", action="store_true",
                   help="continue an interrupted run of the same config and database from "
                        "<model>.checkpoints/: its finished ensemble members are reused, the "
                        "others continue after their last checkpoint")
    t.set_defaults(func=run_train)

    e = sub.add_parser(
        "evaluate", help="error tables of a model, the cheap solvers, ridge and KRR",
        description="MAE/RMS/max of G(tau), error of G_l, Sigma(i w_0) and Z0, per beta and "
                    "per U bin, on samples the model never saw: every sample whose content "
                    "hash is not among the model's training and validation samples (its test "
                    "split on the training database; the number excluded is printed).")
    e.add_argument("model", type=Path, help="model file (.safetensors)")
    e.add_argument("database", type=Path)
    e.add_argument("--split", choices=("test", "validation"), default="test",
                   help="test: the samples the model never saw (default); validation: its "
                        "validation samples found in the database")
    e.add_argument("--no-baselines", action="store_true", help="skip ridge and KRR")
    e.add_argument("--no-krr", action="store_true", help="skip KRR (the slowest baseline)")
    e.add_argument("--training-database", default=None, metavar="DB.h5",
                   help="the model's training database, for the ridge/KRR baselines (default: "
                        "the file name the model records, looked for next to the evaluated "
                        "database, the model and in the working folder; checked by content)")
    e.add_argument("--plot", type=Path, metavar="DIR",
                   help="write learning curves, error histograms and G(tau) plots into DIR")
    e.add_argument("--u-edges", type=float, nargs="+", default=None, metavar="U",
                   help="edges of the U bins (default: 1 4 7 10, the seed database's range)")
    e.add_argument("--n-edges", type=float, nargs="+", default=None, metavar="N",
                   help="edges of the filling bins (total filling of the reference; default: "
                        "0 0.6 0.95 1.05 1.4 2; empty bins are not shown)")
    e.add_argument("--cells", action="store_true",
                   help="also print the (beta D, U/D, n) cell table: the model's RMS of G(tau) "
                        "over the best cheap solver of each cell, with bootstrap intervals")
    e.add_argument("--cheap", nargs="+", metavar="SOLVER", default=None,
                   help="the cheap solvers the ratio table compares with (default: every "
                        "cheap solver of the database, e.g. to leave out solvers a recipe "
                        "does not have)")
    e.add_argument("--max-reference-error", type=float, default=None, metavar="ERR",
                   help="leave out samples whose reference error estimate is above ERR "
                        "(default: the model's [data] max_reference_error)")
    e.add_argument("--max-disagreement", type=float, default=None, metavar="ERR",
                   help="leave out samples where the model's [data] disagreement pair of "
                        "cheap solvers disagree by more than ERR (RMS of G(tau); default: "
                        "the model's [data] max_disagreement; 0: keep every sample)")
    e.add_argument("--worst", type=int, default=0, metavar="K",
                   help="list the K samples with the largest model error (database index, "
                        "parameters, errors, spread, share of their beta bin)")
    e.add_argument("--rst", action="store_true", help="print reStructuredText tables")
    e.add_argument("--json", type=Path, metavar="FILE", help="write the tables as JSON")
    e.set_defaults(func=run_evaluate)

    g = sub.add_parser(
        "gridsearch", help="hyperparameter grid search with a small budget per config",
        description="Train one model per point of the [grid] table of the config and rank "
                    "them by validation error (the test split is not used).")
    g.add_argument("config", type=Path, help="TOML training config with a [grid] table")
    g.add_argument("-o", "--output", type=Path, default=Path("gridsearch"),
                   help="folder for the results table (results.csv, results.md)")
    g.set_defaults(func=run_gridsearch)

    i = sub.add_parser("model-info", help="print the metadata of a model file",
                       description="Prints the JSON metadata (loads no code) after checking "
                                   "the file's integrity hash; a format-1 file (no hash over "
                                   "its metadata) is shown with a warning.")
    i.add_argument("model", type=Path)
    i.add_argument("--full", action="store_true", help="include the split and histories")
    i.set_defaults(func=run_model_info)

    r = sub.add_parser("model-rehash", help="re-hash a format-1 model file (metadata covered)",
                       description="Write a model file of format 1, whose metadata no hash "
                                   "covered, as a new file of the current format: the same "
                                   "weights and metadata under one integrity hash. The old "
                                   "weights hash is checked; check the metadata (model-info) "
                                   "first, nothing vouched for it.")
    r.add_argument("model", type=Path, help="the format-1 model file")
    r.add_argument("output", type=Path, help="the new model file (.safetensors; must not exist)")
    r.set_defaults(func=run_model_rehash)


def _log(args):
    return None if getattr(args, "quiet", False) else print


def run_train(args) -> int:
    from ..ml.train import load_train_config, train, validate_train_config

    cfg = load_train_config(args.config)
    if args.output is not None:
        cfg["output"]["model"] = str(args.output)
    if args.database:
        dbs = [str(d) for d in args.database]
        cfg["data"]["database"] = dbs[0] if len(dbs) == 1 else dbs
    if args.init_model is not None:
        cfg["training"]["init_model"] = str(args.init_model)
    if args.lr is not None:
        cfg["training"]["lr"] = args.lr
    if args.max_epochs is not None:
        cfg["training"]["max_epochs"] = args.max_epochs
    cfg = validate_train_config(cfg)
    train(cfg, quiet=getattr(args, "quiet", False), resume=args.resume)
    return 0


def run_evaluate(args) -> int:
    from ..database import Database
    from ..ml.evaluate import (
        N_EDGES,
        QUANTITIES,
        cell_table,
        evaluate,
        format_cell_table,
        format_ratio_table,
        format_table,
        format_worst,
        plot_evaluation,
        ratio_table,
        worst_samples,
    )
    from ..ml.modelfile import load_model

    model = load_model(args.model)
    db = Database(args.database)
    edges = (1, 4, 7, 10) if args.u_edges is None else tuple(args.u_edges)
    if len(edges) < 2 or any(b <= a for a, b in zip(edges[:-1], edges[1:])):
        raise ValueError(f"--u-edges {list(edges)}: give at least two increasing values")
    n_edges = N_EDGES if args.n_edges is None else tuple(args.n_edges)
    if len(n_edges) < 2 or any(b <= a for a, b in zip(n_edges[:-1], n_edges[1:])):
        raise ValueError(f"--n-edges {list(n_edges)}: give at least two increasing values")
    res = evaluate(model, db, split=args.split, baselines=not args.no_baselines,
                   krr=not args.no_krr, log=_log(args), u_edges=edges, cheap=args.cheap,
                   training_database=args.training_database,
                   max_reference_error=args.max_reference_error,
                   max_disagreement=args.max_disagreement, n_edges=n_edges)
    fmt = "rst" if args.rst else "text"
    print(f"model {args.model} on {db.path} ({res.info['split']}, {len(res.samples)} samples)")
    if _log(args) is None:  # (otherwise evaluate logged them)
        print(res.info["selection"])
        if res.info.get("warning"):
            print(f"warning: {res.info['warning']}")
    if "guard" in res.info:
        g = res.info["guard"]
        print(f"model+guard: {g['flagged']} of {g['samples']} samples have an ensemble spread "
              f"above {g['spread_limit']:.2e} and are taken from the reference "
              f"(per beta: {g['flagged_per_beta']})")
    for q in QUANTITIES:
        stats = ("RMS", "MAE", "max") if q == "G(tau)" else ("RMS",) if q == "G_l/beta" \
            else ("MAE", "max")
        for st in stats:
            print()
            if fmt == "rst":
                print(f"{q} {st}\n")
            print(format_table(res, q, st, fmt=fmt))
    ratios = ratio_table(res)
    print()
    if fmt == "rst":
        print("G(tau) RMS / best cheap solver of the bin, 95 % bootstrap interval\n")
    print(format_ratio_table(ratios, list(res.bins), fmt=fmt))
    cells = None
    if args.cells:
        cells = cell_table(res)
        print()
        print(format_cell_table(cells, fmt=fmt))
    if args.worst > 0:
        print()
        print(format_worst(worst_samples(res, args.worst)))
    if args.json:
        args.json.write_text(json.dumps({"info": res.info, "table": res.table,
                                         "ratios": ratios, "cells": cells}, indent=1,
                                        default=float))
        print(f"wrote {args.json}")
    if args.plot:
        hist = (getattr(model, "metadata", {}) or {}).get("training", {}).get("history")
        for f in plot_evaluation(res, args.plot, history=hist):
            print(f"wrote {f}")
    return 0


def run_model_rehash(args) -> int:
    from ..ml.modelfile import rehash_model

    out = rehash_model(args.model, args.output)
    print(f"wrote {out} (the same weights and metadata, under an integrity hash that covers "
          "both)")
    return 0


def run_gridsearch(args) -> int:
    from ..ml.gridsearch import run_grid

    table = run_grid(args.config, args.output, quiet=getattr(args, "quiet", False))
    print(table)
    return 0


def run_model_info(args) -> int:
    import sys

    from ..ml.modelfile import LegacyModelError, read_metadata

    try:
        meta = read_metadata(args.model)
    except LegacyModelError as exc:
        meta = read_metadata(args.model, verify=False)
        print(f"warning: {exc}", file=sys.stderr)
    if not args.full:
        meta = dict(meta)
        if isinstance(meta.get("samples"), dict):
            meta["samples"] = {k: (f"{len(v) * 3 // 4 // 8} sample hashes"
                                   if k != "scheme" else v)
                               for k, v in meta["samples"].items()}
        if "split" in meta:
            meta["split"] = {k: (f"{len(v)} samples" if isinstance(v, list) else v)
                             for k, v in meta["split"].items()}
        if isinstance(meta.get("databases"), list):
            meta["databases"] = [
                {**d, "split": {k: (f"{len(v)} samples" if isinstance(v, list) else v)
                                for k, v in d["split"].items()}}
                if isinstance(d, dict) and isinstance(d.get("split"), dict) else d
                for d in meta["databases"]]
        tr = dict(meta.get("training", {}))
        if "history" in tr:
            tr["history"] = f"{len(tr['history'])} learning curves"
        meta["training"] = tr
        for k in ("transforms",):
            if k in meta:
                meta[k] = {n: {"name": t["name"], "components": len(t["shift"])}
                           for n, t in meta[k].items()}
    print(json.dumps(meta, indent=1, default=str))
    return 0
