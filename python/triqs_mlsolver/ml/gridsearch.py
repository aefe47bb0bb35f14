# SPDX-License-Identifier: Apache-2.0
"""Hyperparameter grid search with a small budget per configuration.

``triqs-mlsolver gridsearch config.toml -o DIR``: the config is a training
config (:mod:`triqs_mlsolver.ml.train`) plus a ``[grid]`` table.  Each key
of ``[grid]`` is ``"section.key"`` with a list of values, or a section name
with a list of partial tables (to vary several keys together, e.g. the
representation); the grid is their Cartesian product.  The budget per point
is the config's ``[training] max_epochs`` and ``max_minutes``.

.. code-block:: toml

    [data]
    database = "default_db.h5"
    [training]
    max_epochs = 40
    max_minutes = 2.0
    [grid]
    "model.depth" = [1, 2, 3]
    "model.width" = [51, 128]
    "model.activation" = ["tanh", "silu"]
    "training.lr" = [2e-4, 1e-3]
    "training.batch_size" = [8, 64]
    "features.input_transform" = ["identity", "tanh"]
    "features.inputs" = [["ed3"], ["ed1", "ed2", "ed3"], ["ipt", "nca", "ed1", "ed2", "ed3"]]
    features = [{kind = "tau", n = 51, mesh = "adaptive"}, {kind = "legendre", n = 30}]

Configurations are ranked by the RMS error of G(tau) on the validation part
(the test split is not evaluated here, so selecting on this table does not
leak the test set).  Results: ``DIR/results.csv`` and ``DIR/results.md``.
"""

from __future__ import annotations

import copy
import csv
import itertools
import json
import time
from pathlib import Path

from .._config import read_toml
from .train import DEFAULTS, TrainConfigError, train, validate_train_config

__all__ = ["expand_grid", "run_grid"]


def expand_grid(raw: dict) -> list[tuple[dict, dict]]:
    """``[(point, raw_config), ...]`` for the ``[grid]`` of the raw config ``raw``."""
    raw = copy.deepcopy(raw)
    grid = raw.pop("grid", None)
    if not grid:
        raise TrainConfigError("the grid-search config needs a non-empty [grid] table")
    axes = []
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise TrainConfigError(f"[grid] {key}: expected a non-empty list of values")
        if "." in key:
            sec, k = key.split(".", 1)
            if sec not in DEFAULTS or k not in DEFAULTS[sec]:
                raise TrainConfigError(
                    f"[grid] {key!r}: not a training config key (section.key, e.g. "
                    "'model.width')"
                )
            axes.append([(key, {sec: {k: v}}) for v in values])
        elif key in DEFAULTS:
            if not all(isinstance(v, dict) for v in values):
                raise TrainConfigError(f"[grid] {key}: expected a list of tables")
            axes.append([(key, {key: v}) for v in values])
        else:
            raise TrainConfigError(f"[grid] {key!r}: unknown section or key")
    out = []
    for combo in itertools.product(*axes):
        cfg = copy.deepcopy(raw)
        point = {}
        for key, upd in combo:
            for sec, body in upd.items():
                cfg.setdefault(sec, {}).update(body)
                point[key] = body if "." not in key else next(iter(body.values()))
        validate_train_config(cfg)  # fail before any training
        out.append((point, cfg))
    return out


def _fmt(v):
    return json.dumps(v, separators=(",", ":")) if isinstance(v, (list, dict)) else str(v)


def run_grid(config, outdir, *, quiet=False, db=None) -> str:
    """Run the grid of ``config`` (a path or a raw dict); returns the results as Markdown."""
    from ..database import Database

    if isinstance(config, (str, Path)):
        p = Path(config)
        raw = read_toml(p, TrainConfigError, "")
        dbp = raw.get("data", {}).get("database")
        if isinstance(dbp, list):
            raise TrainConfigError(
                f"{p}: [data] database lists {len(dbp)} files; gridsearch compares settings "
                f"on one database: give one file (train accepts several)")
        if dbp and not Path(dbp).is_absolute():
            raw["data"]["database"] = str((p.parent / dbp).resolve())
    else:
        raw = copy.deepcopy(config)
    points = expand_grid(raw)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    if db is None:
        dbp = validate_train_config(points[0][1])["data"]["database"]
        if isinstance(dbp, list):
            if len(dbp) != 1:
                raise TrainConfigError(
                    f"[data] database lists {len(dbp)} files; gridsearch compares settings "
                    f"on one database: give one file (train accepts several)")
            dbp = dbp[0]
        db = Database(dbp)
    rows = []
    keys = list(points[0][0])
    for n, (point, cfg_raw) in enumerate(points):
        cfg = validate_train_config(cfg_raw)
        t0 = time.perf_counter()
        _, rep = train(cfg, db=db, quiet=True, save=False, test_errors=False)
        e = rep["errors"]["validation"]
        row = {k: _fmt(point[k]) for k in keys}
        row["val_RMS"] = e["all"]["RMS"]
        for b, st in e.items():
            if b != "all":
                row[f"val_RMS_{b}"] = st["RMS"]
        row["epochs"] = sum(m["epochs"] for m in rep["training"]["members"])
        row["seconds"] = round(time.perf_counter() - t0, 1)
        rows.append(row)
        if not quiet:
            print(f"[{n + 1}/{len(points)}] {point} -> validation RMS {row['val_RMS']:.3e} "
                  f"({row['seconds']} s)", flush=True)
    rows.sort(key=lambda r: r["val_RMS"])
    cols = list(dict.fromkeys(k for r in rows for k in r))
    with open(outdir / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
    cell = lambda v: f"{v:.3e}" if isinstance(v, float) else str(v)  # noqa: E731
    md = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    md += ["| " + " | ".join(cell(r.get(c, "")) for c in cols) + " |" for r in rows]
    text = "\n".join(md)
    (outdir / "results.md").write_text(text + "\n")
    return text
