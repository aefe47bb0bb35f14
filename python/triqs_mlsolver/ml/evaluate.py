# SPDX-License-Identifier: Apache-2.0
"""Error tables of a model, the cheap solvers, ridge and KRR on unseen samples.

``triqs-mlsolver evaluate MODEL DB`` (or :func:`evaluate`).  Only samples
never seen in training are used, decided by their content
(:func:`unseen_samples`): every sample of ``DB`` whose solves succeeded and whose
content hash (:func:`~triqs_mlsolver.database.integrity.sample_hashes`) is not
among the model's training and validation samples -- on its training database
that is its test split, on a regenerated or ``--extend``-ed copy the same test
samples plus the new ones, on an unrelated database every sample; the number
excluded is reported (``--split validation``: the model's validation samples
found in ``DB``).  Models written before sample hashes were recorded (model
format 1, and the shipped models re-hashed from it) fall back to the file's
sha256 (the recorded split on the training file itself; on another file with
the training database's sampler seed the recorded training and validation
sample numbers are excluded, assuming the same recipe; otherwise every sample)
and say so.

Quantities, per method, overall, per beta and per U bin:

* ``G(tau)``: MAE, RMS and max of ``G - G_ref`` on the stored tau grid;
* ``G_l``: RMS of ``(G_l - G_l^ref) / beta`` (dimensionless, ``l < L``);
* ``Sigma(iw0)``: MAE and max of ``|Sigma - Sigma_ref| / D`` at the first
  Matsubara frequency, ``Sigma = G0^-1 - G^-1`` with the sample's
  ``G0^-1(i w_0) = i w_0 + mu - Delta(i w_0)`` and ``G(i w_0)`` from ``G_l``;
* ``Z0 = 1 / (1 - Im Sigma(i w_0) / w_0)``: MAE and max.  This is the
  finite-temperature first-Matsubara estimate of the quasiparticle weight,
  not the T = 0 residue.

A spin-resolved model (doc/ml.rst, "Spin-resolved models") is evaluated per row: one
per spin of a spin-polarised sample, one for a spin-symmetric sample; every method (the
cheap solvers too) is compared with the reference's function of that spin, and the
tables get the bins ``polarised`` and ``spin-symmetric`` (a count row ``(rows)``).  A
spin-symmetric model is evaluated on the spin-symmetric samples only; the number of
spin-polarised samples left out is printed and in ``info["polarised_excluded"]``.

Methods: every cheap solver, the model, ``model+guard`` (the model where its
ensemble spread is below the model file's out-of-domain limit, the reference
where it is above: what ``MLSolver(fallback='ed')`` does; the number handed
over is printed), ridge and KRR.

Ratios (:func:`ratio_table`): the RMS of G(tau) of the model, ``model+guard``,
ridge and KRR divided by that of the best cheap solver *of each bin* (the
issue's acceptance measure), with a paired bootstrap interval (the samples of
the bin resampled with replacement, numerator and denominator on the same
resample).  The errors are heavy-tailed -- a few samples can carry most of a
bin's squared error -- so a ratio from a few hundred samples is uncertain by
tens of per cent, and the interval says by how much.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..database.reader import beta_classes, beta_label, error_stats, tau_weights
from ..gf import transforms as tr
from .baselines import fit_krr, fit_ridge
from .dataset import SampleSet, add_fit_residuals, load_samples

__all__ = [
    "unseen_samples",
    "errors_of_prediction",
    "cheap_solvers",
    "worst_samples",
    "format_worst",
    "ratio_table",
    "cell_table",
    "cells_of_rows",
    "edge_bins",
    "ratios_of_bins",
    "format_cell_table",
    "format_ratio_table",
    "sigma_z_from_legendre",
    "EvaluationResult",
    "evaluate",
    "format_table",
    "plot_evaluation",
]

QUANTITIES = ("G(tau)", "G_l/beta", "Sigma(iw0)/D", "Z0")
#: Edges of the filling bins (total filling n of the reference).
N_EDGES = (0.0, 0.6, 0.95, 1.05, 1.4, 2.0)
#: The (beta D, U/D, n) grid of :func:`cell_table` (issue 18's per-cell criterion).
CELL_BETA_D_EDGES = (1.0, 5.0, 25.0, 100.0, 400.0)
CELL_U_EDGES = (0.0, 2.5, 5.0, 7.5, 10.0)
CELL_N_EDGES = (0.0, 0.95, 1.05, 2.0)
#: RMS of G(tau) below which errors are not told apart in ratios: the resolution of the
#: reference ED (its error estimate is at least 1e-7, ``solvers.ed.RESOLUTION``).
RMS_FLOOR = 1e-7
#: Cells with fewer rows are shown but not counted in the worst-cell summary.
MIN_CELL_ROWS = 10


def errors_of_prediction(G_pred_bt, G_ref_bt, beta_b, x_stored=None, D_b=None) -> dict:
    """``{"all": stats, beta: stats}`` of ``G_pred - G_ref`` (MAE, RMS, max): per beta, or
    per bin of ``beta D`` (``D_b`` default 1) when there are many temperatures
    (:func:`~triqs_mlsolver.database.reader.beta_classes`); weighted by :func:`tau_weights`
    of ``x_stored``."""
    d = np.asarray(G_pred_bt) - np.asarray(G_ref_bt)
    w = None if x_stored is None else tau_weights(x_stored)
    out = {"all": error_stats(d, w)}
    for key, m in beta_classes(beta_b, D_b):
        out[beta_label(key)] = error_stats(d[m], w)
    return out


def sigma_z_from_legendre(G_bl, samples: SampleSet):
    """``Sigma(i w_0)`` and ``Z0`` from Legendre coefficients and the samples' baths."""
    p = samples.params
    beta = p["beta"]
    T0 = tr.legendre_matrix_iw(np.array([0]), G_bl.shape[1])[0]
    G0 = G_bl @ T0
    iw0 = 1j * np.pi / beta
    delta = (p["V_k"] ** 2 / (iw0[:, None] - p["eps_k"])).sum(axis=1)
    sigma = iw0 + p["mu"] - delta - 1.0 / G0
    Z = 1.0 / (1.0 - sigma.imag / (np.pi / beta))
    return sigma, Z


@dataclass
class EvaluationResult:
    """Predictions and errors on a set of unseen samples.

    Attributes
    ----------
    samples : SampleSet
    reference : str
    G_tau : dict method -> ndarray (b, T)
    G_l : dict method -> ndarray (b, L)
    sigma0, Z0 : dict method -> ndarray (b,)
    spread : ndarray (b, T), the ensemble spread of the model
    bins : dict bin label -> bool mask (b,)
    table : dict quantity -> method -> bin -> stats
    info : dict (split used, baselines' hyperparameters, timings)
    """

    samples: SampleSet
    reference: str
    G_tau: dict
    G_l: dict
    sigma0: dict
    Z0: dict
    spread: np.ndarray
    bins: dict
    table: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    filling: np.ndarray | None = None  # total filling of the reference, per row


def _spans(x, edges) -> list:
    """``[((lo, hi), mask)]``: the half-open bins ``[lo, hi)`` of ``edges`` (the last one
    closed) and which values of ``x`` fall in each."""
    return [((lo, hi), (x >= lo) & ((x <= hi) if hi == edges[-1] else (x < hi)))
            for lo, hi in zip(edges[:-1], edges[1:])]


def edge_bins(x, edges, name) -> dict:
    """``{label: mask}`` of :func:`_spans`: the half-open bins ``name in [lo,hi)`` of
    ``edges`` (the last one closed) and which values of ``x`` fall in each."""
    return {f"{name} in [{lo:g},{hi:g}{']' if hi == edges[-1] else ')'}": m
            for (lo, hi), m in _spans(x, edges)}


def _bins(samples: SampleSet, u_edges, filling=None, n_edges=None):
    b = {"all": np.ones(len(samples), bool)}
    if samples.spin_resolved:
        b["polarised"] = samples.polarised.copy()
        b["spin-symmetric"] = ~samples.polarised
    for key, m in beta_classes(samples.beta, samples.params["D"]):
        b[beta_label(key)] = m
    b.update(edge_bins(samples.params["U"], u_edges, "U"))
    if filling is not None and n_edges is not None:
        b.update({k: m for k, m in edge_bins(filling, n_edges, "n").items() if m.any()})
    return b


def _table(res: EvaluationResult):
    s = res.samples
    ref = res.reference
    D = s.params["D"]
    beta = s.beta
    tab = {q: {} for q in QUANTITIES}
    for m in res.G_tau:
        dG = res.G_tau[m] - s.G_tau[ref]
        dl = (res.G_l[m] - s.G_l[ref][:, : res.G_l[m].shape[1]]) / beta[:, None]
        ds = np.abs(res.sigma0[m] - res.sigma0[ref]) / D
        dz = np.abs(res.Z0[m] - res.Z0[ref])
        wt = tau_weights(s.x_stored)
        for q, d in zip(QUANTITIES, (dG, dl, ds, dz)):
            w = wt if q == "G(tau)" else None
            tab[q][m] = {b: error_stats(d[mask], w) for b, mask in res.bins.items()}
    return tab


def cheap_solvers(model, db) -> list:
    """The cheap solvers an evaluation of ``model`` on ``db`` shows: the database's cheap
    solvers and the model's inputs that ``db`` holds, without the reference."""
    return [x for x in dict.fromkeys([*db.cheap, *model.spec.inputs])
            if x in db.solvers and x != model.reference]


def evaluate(model, db, *, split="test", baselines=True, krr=True, u_edges=(1, 4, 7, 10),
             log=print, krr_n_fit=4000, krr_n_cv=1000, cheap=None,
             training_database=None, max_reference_error=None, max_disagreement=None,
             n_edges=N_EDGES) -> EvaluationResult:
    """Evaluate ``model`` on the unseen samples of ``db`` (see the module docstring).

    ``cheap``: the cheap solvers :func:`ratio_table` compares with (default: all of
    :func:`cheap_solvers`), checked before any work; the evaluated samples are those on
    which they, the model's inputs and the reference succeeded.  ``training_database``: where the
    model's training database is (for the ridge/KRR baselines, fitted on its training
    samples); default: looked for by the file name the model records, next to ``db``, to
    the model file and in the working folder (model files record no machine path).  It is
    identified by the content hashes of its samples, never by its name.
    ``max_reference_error``: samples whose reference reports a larger error estimate are
    left out and counted (default: the model's ``[data] max_reference_error``, 0 = none).
    ``max_disagreement``: samples where the model's ``[data] disagreement`` pair of cheap
    solvers disagree by more (MLSolver's guard sends them to the reference) are left out and
    counted (default: the model's ``[data] max_disagreement``, 0 = none).
    ``n_edges``: edges of the filling bins (total filling ``n`` of the reference; bins
    without samples are not shown; ``None``: no filling bins)."""
    from .modelfile import check_compatible
    from .train import disagreement_excluded, reference_excluded

    check_compatible(model, db)
    meta = getattr(model, "metadata", {}) or {}
    spec, ref = model.spec, model.reference
    avail = cheap_solvers(model, db)
    if cheap is not None:
        unknown = [c for c in cheap if c not in avail]
        if unknown or not cheap:
            raise ValueError(f"cheap solvers {list(unknown or cheap)}: not cheap solvers of "
                             f"{db.path} (it has {avail})")
    # the samples must have succeeded for the solvers compared with and the model's inputs
    # (a cheap solver left out by ``cheap`` does not remove the samples it failed on)
    solvers = [*dict.fromkeys([*(avail if cheap is None else cheap), *spec.inputs]), ref]
    idx, info = unseen_samples(meta, db, solvers, split=split)
    data_cfg = ((meta.get("training") or {}).get("config") or {}).get("data", {})
    if max_reference_error is None:
        max_reference_error = float(data_cfg.get("max_reference_error", 0.0) or 0.0)
    if max_disagreement is None:
        max_disagreement = float(data_cfg.get("max_disagreement", 0.0) or 0.0)
    pair = list(data_cfg.get("disagreement", []) or [])
    if max_disagreement and len(pair) != 2:
        raise ValueError(f"max_disagreement = {max_disagreement:g}: the model records no "
                         "[data] disagreement pair of solvers; give 0 (keep every sample)")
    bad_ref = reference_excluded(db, ref, idx, max_reference_error)
    if len(bad_ref):
        idx = np.asarray(idx)[~np.isin(idx, bad_ref)]
    info["reference_excluded"] = int(len(bad_ref))
    if log:
        log(info["selection"])
        if info.get("warning"):
            log(f"warning: {info['warning']}")
        if max_reference_error:
            log(f"left out {len(bad_ref)} samples whose reference error estimate is above "
                f"{max_reference_error:g}")
    samples = load_samples(db, spec.representation, solvers, idx,
                           spin_resolved=spec.spin_resolved)
    if len(samples) == 0:
        raise ValueError(f"no samples to evaluate in {db.path} ({info['split']})")
    info["polarised_excluded"] = int(len(samples.polarised_excluded))
    disagreeing = disagreement_excluded(samples, np.unique(samples.index), pair,
                                        max_disagreement)
    if len(disagreeing):
        samples = samples.subset(np.flatnonzero(~np.isin(samples.index, disagreeing)))
    info["disagreement_excluded"] = int(len(disagreeing))
    samples = add_fit_residuals(samples, db, spec)
    if log and max_disagreement:
        log(f"left out {len(disagreeing)} samples where {' and '.join(pair)} disagree by more "
            f"than {max_disagreement:g} (MLSolver's guard gives them to the reference)")
    if spec.spin_resolved:
        info["rows"] = {"rows": int(len(samples)),
                        "samples": int(len(np.unique(samples.index))),
                        "polarised_samples": int(len(np.unique(
                            samples.index[samples.polarised])))}
        if log:
            r = info["rows"]
            log(f"spin-resolved model: {r['rows']} rows of {r['samples']} samples "
                f"({r['polarised_samples']} spin-polarised: one row per spin)")
    elif log and info["polarised_excluded"]:
        log(f"{info['polarised_excluded']} spin-polarised samples left out (the model is "
            "spin-symmetric)")
    n_l = samples.G_l[ref].shape[1]
    G_tau, G_l, sig, Z = {}, {}, {}, {}
    for s in solvers:
        G_tau[s] = samples.G_tau[s]
        G_l[s] = samples.G_l[s]
    t0 = time.perf_counter()
    pred = model.predict(samples)
    info["model_seconds"] = time.perf_counter() - t0
    methods = {"model": (pred, model)}
    if baselines:
        train_db, tr_idx = _training_samples(meta, db, info, getattr(model, "path", None),
                                             training_database)
        if train_db is None:
            if log:
                log("baselines skipped: the training database is not available")
        else:
            train = add_fit_residuals(
                load_samples(train_db, spec.representation,
                             list(dict.fromkeys([*spec.inputs, ref])), tr_idx,
                             spin_resolved=spec.spin_resolved), train_db, spec)
            cfg = meta.get("training", {}).get("config", {}).get("features", {})
            kw = {"ph_augment": cfg.get("ph_augment", True),
                  "input_transform": cfg.get("input_transform", "identity"),
                  "target_transform": cfg.get("target_transform", "identity"),
                  "clip": model.clip}
            t0 = time.perf_counter()
            ridge = fit_ridge(spec, ref, train, **kw)
            info["ridge"] = {**ridge.info, "seconds": time.perf_counter() - t0}
            methods["ridge"] = (ridge.predict(samples), ridge)
            if log:
                log(f"ridge: {info['ridge']}")
            if krr:
                t0 = time.perf_counter()
                k = fit_krr(spec, ref, train, n_fit=krr_n_fit, n_cv=krr_n_cv, **kw)
                info["krr"] = {**k.info, "seconds": time.perf_counter() - t0}
                methods["krr"] = (k.predict(samples), k)
                if log:
                    log(f"krr: {info['krr']}")
    for name, (p, _) in methods.items():
        G_tau[name] = p.G_tau
        G_l[name] = p.G_l(samples, spec, n_l)
        if name == "model":
            _add_guarded(G_tau, G_l, samples, ref, pred, meta, info)
    for m in G_l:
        sig[m], Z[m] = sigma_z_from_legendre(G_l[m], samples)
    info["cheap"] = list(avail if cheap is None else cheap)
    filling = np.asarray(db.read(ref, "density"))[samples.index].sum(axis=1)
    res = EvaluationResult(samples, ref, {m: G_tau[m] for m in G_tau if m != ref},
                           G_l, sig, Z, pred.G_tau_spread,
                           _bins(samples, u_edges, filling, n_edges), info=info,
                           filling=filling)
    res.table = _table(res)
    return res


def unseen_samples(meta: dict, db, solvers, *, split="test"):
    """``(indices, info)``: the samples of ``db`` the model never saw, by content.

    ``meta``: the model file's metadata; ``solvers``: the samples must have succeeded for
    all of them.  With the sample hashes of the model file
    (:func:`~triqs_mlsolver.ml.modelfile.sample_hash_sets`): ``split="test"`` keeps the
    samples whose hash is not among the training and validation ones (any database:
    the training file, a regenerated or extended copy, an unrelated one), ``"validation"``
    the model's validation samples found in ``db``.  ``info`` holds ``excluded``
    (``{"train", "validation"}``: samples left out because the model saw them),
    ``identified_by``, a one-line ``selection`` and, for a model without sample hashes,
    a ``warning`` that says what could not be checked.
    """
    from .modelfile import file_sha256, sample_hash_sets

    if split not in ("test", "validation"):
        raise ValueError(f"split {split!r}: use 'test' (samples the model never saw) or "
                         "'validation'")
    ok = np.ones(len(db), bool)
    for s in solvers:
        ok &= db.read(s, "ok")
    rec = meta.get("database") or {}
    same_file = bool(rec.get("sha256")) and file_sha256(db.path) == rec["sha256"]
    info = {"database": str(db.path), "same_as_training": same_file}
    sets = sample_hash_sets(meta)
    if sets is not None:
        h = db.sample_hashes()
        seen_t, seen_v = np.isin(h, sets["train"]), np.isin(h, sets["validation"])
        info["identified_by"] = "content hash of each sample's parameters"
        info["excluded"] = {"train": int((ok & seen_t).sum()),
                            "validation": int((ok & seen_v & ~seen_t).sum())}
        if split == "test":
            sel = ok & ~seen_t & ~seen_v
            n_test = int((sel & np.isin(h, sets["test"])).sum())
            info["split"] = "samples the model never saw (by content hash)"
            info["selection"] = (
                f"{int(sel.sum())} samples the model never saw ({n_test} of its test split); "
                f"excluded {info['excluded']['train']} training and "
                f"{info['excluded']['validation']} validation samples found in {db.path} by "
                "their content hash")
        else:
            sel = ok & seen_v
            info["split"] = "the model's validation samples (by content hash)"
            info["selection"] = (f"{int(sel.sum())} of the model's {len(sets['validation'])} "
                                 f"validation samples found in {db.path} (by content hash)")
        return np.flatnonzero(sel), info
    # a model without sample hashes: only sample numbers and the file's hash are known
    info["identified_by"] = "file sha256 (the model records no sample hashes)"
    sp = meta.get("split") or {}
    same_seed = rec.get("seed") is not None and int(db.attrs.get("seed", -1)) == \
        int(rec["seed"]) and rec.get("reference") == db.reference
    why = ("the model file records no content hashes of its samples (written before model "
           "format 2, or re-hashed from it)")
    if same_file:
        idx = np.asarray(sp[split], dtype=np.int64)
        info["split"] = split
        info["excluded"] = {"train": len(sp.get("train", [])),
                            "validation": len(sp.get("validation", []))} \
            if split == "test" else {}
        info["selection"] = (f"the model's {split} split of its training database "
                             f"({len(idx)} samples; identified by the file's sha256)")
        return idx, info
    if split == "validation":
        raise ValueError(f"{why}: its validation samples are known only in its training "
                         "database file itself; evaluate with --split test")
    sel = ok.copy()
    if same_seed:
        tr, va = (np.asarray([i for i in sp.get(k, []) if i < len(db)], dtype=np.int64)
                  for k in ("train", "validation"))
        info["excluded"] = {"train": int(ok[tr].sum()), "validation": int(ok[va].sum())}
        sel[tr] = False
        sel[va] = False
        info["split"] = "all samples but the training database's train/validation numbers"
        info["warning"] = (f"{why}; {db.path} has the training database's sampler seed "
                           f"({rec['seed']}), so it is taken for a regenerated or extended copy "
                           "of it and the model's training and validation sample numbers are "
                           "excluded (if it was made with another recipe, unseen samples are "
                           "lost, none is counted twice)")
    else:
        info["excluded"] = {"train": 0, "validation": 0}
        info["split"] = "all samples (a database the model was not trained on)"
        info["warning"] = (f"{why}; {db.path} is not its training file and has another "
                           "sampler seed, so every sample is taken as unseen -- which cannot "
                           "be checked")
    info["selection"] = (f"{int(sel.sum())} samples; excluded {info['excluded']['train']} "
                         f"training and {info['excluded']['validation']} validation sample "
                         "numbers")
    return np.flatnonzero(sel), info


def _training_samples(meta, db, info, model_path=None, given=None):
    """``(database, indices)`` of the model's training + validation samples for the
    baselines: found by content hash in ``db`` or in the recorded training database, or
    by the file hash for a model without sample hashes; ``(None, None)`` if unavailable."""
    from ..database import Database
    from .modelfile import file_sha256, sample_hash_sets

    rec = meta.get("database") or {}
    sets = sample_hash_sets(meta)
    cands = [db]
    # the training database: by its file name (models record no machine path) next to
    # the evaluated database, the model file or in the working folder; older models
    # recorded a path.
    # Whatever is found is identified by content below, never by its name.
    places = [Path(given)] if given is not None else []
    places += [Path(rec["path"])] if rec.get("path") else []
    if rec.get("file"):
        places += [Path(db.path).parent / rec["file"], Path.cwd() / rec["file"]]
        if model_path:
            places.append(Path(model_path).parent / rec["file"])
    seen = {Path(db.path).resolve()}
    for place in places:
        if place.is_file() and place.resolve() not in seen:
            seen.add(place.resolve())
            try:
                cands.append(Database(place))
            except ValueError:
                pass
    for cand in cands:
        if sets is not None:
            want = np.union1d(sets["train"], sets["validation"])
            h = cand.sample_hashes()
            hit = np.isin(h, want)
            if len(np.unique(h[hit])) == len(want):
                return cand, np.flatnonzero(hit)
        elif (info["same_as_training"] and cand is db) or (
                cand is not db and file_sha256(cand.path) == rec.get("sha256")):
            sp = meta["split"]
            return cand, np.sort(np.asarray(sp["train"] + sp["validation"], dtype=np.int64))
    return None, None


def _add_guarded(G_tau, G_l, samples, ref, pred, meta, info):
    """The row ``model+guard``: the model where its ensemble spread is below the
    out-of-domain limit (SPREAD_FACTOR x the 99 % validation quantile), the reference
    where it is above -- what ``MLSolver(fallback='ed')`` returns (there the fallback is ED
    with the model's bath size, here the database's reference).  ``info['guard']`` holds
    the limit and how many samples were handed to the reference."""
    q99 = (meta.get("spread") or {}).get("q99")
    if q99 is None or len(pred.G_tau_spread) == 0:
        return
    from .inference import SPREAD_FACTOR

    limit = SPREAD_FACTOR * float(q99)
    flag = pred.G_tau_spread.max(axis=1) > limit
    G_tau["model+guard"] = np.where(flag[:, None], samples.G_tau[ref], G_tau["model"])
    G_l["model+guard"] = np.where(flag[:, None], samples.G_l[ref][:, :G_l["model"].shape[1]],
                                  G_l["model"])
    beta = samples.params["beta"]
    info["guard"] = {"spread_limit": limit, "flagged": int(flag.sum()),
                     "samples": int(len(flag)),
                     "flagged_per_beta": {beta_label(k): int(flag[m].sum())
                                          for k, m in beta_classes(beta, samples.params["D"])}}


def format_table(res: EvaluationResult, quantity="G(tau)", stat="RMS", fmt="text") -> str:
    """One quantity/statistic as a table: methods x bins (text or reStructuredText)."""
    tab = res.table[quantity]
    bins = list(res.bins)
    methods = list(tab)
    head = ["method"] + bins
    rows = [[m] + [f"{tab[m][b][stat]:.2e}" for b in bins] for m in methods]
    count = "(rows)" if res.samples.spin_resolved else "(samples)"
    rows.append([count] + [str(int(res.bins[b].sum())) for b in bins])
    return _render(head, rows, fmt, f"{quantity} {stat} against {res.reference}")


def _render(head, rows, fmt, title) -> str:
    """Columns of strings as a reStructuredText simple table or right-aligned text."""
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    if fmt == "rst":
        sep = "  ".join("=" * w for w in widths)
        lines = [sep, "  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip(), sep]
        lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        lines.append(sep)
        return "\n".join(lines)
    lines = [title, " ".join(h.rjust(w) for h, w in zip(head, widths))]
    lines += [" ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(lines)


def _sample_mse(res: EvaluationResult):
    """``({method: mean square error of G(tau) per sample}, [cheap solvers among them])``."""
    ref = res.samples.G_tau[res.reference]
    w = tau_weights(res.samples.x_stored)
    w = 1.0 if w is None else w
    mse = {m: ((G - ref) ** 2 * w).mean(axis=1) for m, G in res.G_tau.items()}
    return mse, [c for c in res.info.get("cheap", []) if c in mse]


def ratio_table(res: EvaluationResult, *, n_boot=2000, level=0.95, seed=0) -> dict:
    """``{method: {bin: {"ratio", "lo", "hi", "best"}}}``: RMS of G(tau) of each learned method
    over that of the best cheap solver of the bin (``best``), with the ``level`` paired
    bootstrap interval ``[lo, hi]`` (``n_boot`` resamples of the bin's samples)."""
    mse, cheap = _sample_mse(res)
    methods = [m for m in ("model", "model+guard", "ridge", "krr") if m in mse]
    return ratios_of_bins(mse, cheap, methods, res.bins, n_boot=n_boot, level=level,
                          seed=seed)


def ratios_of_bins(mse: dict, cheap, methods, bins: dict, *, n_boot=2000, level=0.95,
                   seed=0) -> dict:
    """:func:`ratio_table` from per-row mean square errors: ``mse`` maps each method and
    cheap solver to one value per row (the same rows), ``bins`` each bin's name to a row
    mask.  Used for answers that are not one model's, e.g. MLSolver's outputs with their
    fallback (``example/mlsolver_on_database.py``)."""
    if not cheap:
        raise ValueError("no cheap solver in the evaluation to compare with")
    rng = np.random.default_rng(seed)
    q = ((1 - level) / 2, (1 + level) / 2)
    out = {m: {} for m in methods}
    for b, mask in bins.items():
        idx = np.flatnonzero(mask)
        if len(idx) == 0:
            continue
        for m, r in _ratio_of(mse, idx, cheap, methods, rng, n_boot, q).items():
            out[m][b] = r
    return out


def _ratio_of(mse, idx, cheap, methods, rng, n_boot, q) -> dict:
    """Ratios of ``methods`` to the best cheap solver on the rows ``idx``, paired bootstrap.
    Mean square errors below ``RMS_FLOOR**2`` count as ``RMS_FLOOR**2`` (both sides): a
    cheap solver that is exact on a bin (ED-3 on 3-site baths) is not beaten by rounding."""
    floor = RMS_FLOOR**2
    best = min(cheap, key=lambda c: mse[c][idx].mean())
    boot = idx[rng.integers(0, len(idx), size=(n_boot, len(idx)))]
    den = np.maximum(mse[best][boot].mean(axis=1), floor)
    out = {}
    for m in methods:
        r = np.sqrt(np.maximum(mse[m][boot].mean(axis=1), floor) / den)
        lo, hi = np.quantile(r, q)
        out[m] = {"ratio": float(np.sqrt(max(mse[m][idx].mean(), floor)
                                          / max(mse[best][idx].mean(), floor))),
                  "lo": float(lo), "hi": float(hi), "best": best,
                  "rms": float(np.sqrt(mse[m][idx].mean())),
                  "rms_best": float(np.sqrt(mse[best][idx].mean()))}
    return out


def cell_table(res: EvaluationResult, *, beta_d_edges=CELL_BETA_D_EDGES, u_edges=CELL_U_EDGES,
               n_edges=CELL_N_EDGES, n_boot=2000, level=0.95, seed=0) -> list:
    """The per-cell criterion: RMS of G(tau) of the model (and ``model+guard``) over the
    best cheap solver of each (beta D, U/D, n) cell, with a paired bootstrap interval.

    ``U/D`` and ``beta D`` use the sample's ``D``; ``n`` is the reference's total filling.
    Returns one dict per non-empty cell: ``beta_D``, ``U``, ``n`` (the bin edges),
    ``rows``, and per method ``ratio``, ``lo``, ``hi``, ``best``, ``rms``, ``rms_best``."""
    if res.filling is None:
        raise ValueError("the evaluation has no filling per row")
    mse, cheap = _sample_mse(res)
    methods = [m for m in ("model", "model+guard") if m in mse]
    s = res.samples
    D = s.params["D"]
    return cells_of_rows(mse, cheap, methods, s.beta * D, s.params["U"] / D, res.filling,
                         beta_d_edges=beta_d_edges, u_edges=u_edges, n_edges=n_edges,
                         n_boot=n_boot, level=level, seed=seed)


def cells_of_rows(mse: dict, cheap, methods, beta_d, u, n, *, beta_d_edges=CELL_BETA_D_EDGES,
                  u_edges=CELL_U_EDGES, n_edges=CELL_N_EDGES, n_boot=2000, level=0.95,
                  seed=0) -> list:
    """:func:`cell_table` from per-row mean square errors (``mse`` as in
    :func:`ratios_of_bins`) and each row's ``beta D``, ``U/D`` and total filling ``n``."""
    if not cheap:
        raise ValueError("no cheap solver in the evaluation to compare with")
    bd, u, n = (np.asarray(a, float) for a in (beta_d, u, n))
    rng = np.random.default_rng(seed)
    q = ((1 - level) / 2, (1 + level) / 2)
    out = []
    for b_span, mb in _spans(bd, beta_d_edges):
        for u_span, mu in _spans(u, u_edges):
            for n_span, mn in _spans(n, n_edges):
                idx = np.flatnonzero(mb & mu & mn)
                if len(idx) == 0:
                    continue
                out.append({"beta_D": b_span, "U": u_span, "n": n_span, "rows": int(len(idx)),
                            **_ratio_of(mse, idx, cheap, methods, rng, n_boot, q)})
    return out


def format_cell_table(cells: list, fmt="text", level=0.95) -> str:
    """:func:`cell_table` as text or reStructuredText, with the worst cell of at least
    ``MIN_CELL_ROWS`` rows named last."""
    if not cells:
        return ""
    meta = ("beta_D", "U", "n", "rows")
    methods = [m for m in cells[0] if m not in meta]
    head = ["beta*D", "U/D", "n", "rows", "best cheap", "RMS best"] + [
        f"{m} / best [{100 * level:g} %]" for m in methods]
    rows = []
    for c in cells:
        m0 = c[methods[0]]
        rows.append([f"{c['beta_D'][0]:g}-{c['beta_D'][1]:g}", f"{c['U'][0]:g}-{c['U'][1]:g}",
                     f"{c['n'][0]:g}-{c['n'][1]:g}", str(c["rows"]), m0["best"],
                     f"{m0['rms_best']:.1e}"]
                    + [f"{c[m]['ratio']:.3f} [{c[m]['lo']:.3f}, {c[m]['hi']:.3f}]"
                       for m in methods])
    text = _render(head, rows, fmt, "G(tau) RMS per (beta D, U/D, n) cell / best cheap solver "
                                    "of the cell")
    big = [c for c in cells if c["rows"] >= MIN_CELL_ROWS]
    if big:
        lines = []
        for m in methods:
            w = max(big, key=lambda c: c[m]["ratio"])
            lines.append(f"worst cell of >= {MIN_CELL_ROWS} rows, {m}: {w[m]['ratio']:.3f} "
                         f"[{w[m]['lo']:.3f}, {w[m]['hi']:.3f}] at beta*D {w['beta_D']}, "
                         f"U/D {w['U']}, n {w['n']} ({w['rows']} rows); cells above 1.0: "
                         f"{sum(c[m]['ratio'] > 1.0 for c in big)} of {len(big)}")
        text += "\n" + "\n".join(lines)
    return text


def worst_samples(res: EvaluationResult, k=10, method="model", against=None) -> list:
    """The ``k`` samples (rows) with the largest RMS error of G(tau) of ``method``: dicts
    with the database index (and for spin-resolved rows the ``spin``), beta, U, D,
    ``mu - U/2``, the error, the error of ``against`` (default: the
    best cheap solver over all samples), the ensemble spread, and the sample's share of the
    squared error of its beta bin (errors are heavy-tailed; this says how much one sample
    decides a bin's ratio)."""
    s = res.samples
    mse, cheap = _sample_mse(res)
    if method not in mse:
        raise ValueError(f"no method {method!r} in the evaluation (it has {list(mse)})")
    if against is None:
        against = min(cheap, key=lambda c: mse[c].mean()) if cheap else None
    p = s.params
    out = []
    for i in np.argsort(-mse[method])[:k]:
        same_beta = s.beta == s.beta[i]
        out.append({
            "index": int(s.index[i]), "beta": float(s.beta[i]), "U": float(p["U"][i]),
            "D": float(p["D"][i]), "mu-U/2": float(p["mu"][i] - p["U"][i] / 2),
            "rms": float(np.sqrt(mse[method][i])),
            "against": against,
            "rms_against": None if against is None else float(np.sqrt(mse[against][i])),
            "spread": float(res.spread[i].max()) if len(res.spread) else 0.0,
            "share_of_beta_bin": float(mse[method][i] / mse[method][same_beta].sum()),
        })
        if s.spin_resolved:  # the row's spin ("up", "down"; "both" for a symmetric sample)
            out[-1]["spin"] = "both" if not s.polarised[i] else ("up", "down")[s.spin[i]]
    return out


def format_worst(rows, method="model") -> str:
    """:func:`worst_samples` as a text table."""
    if not rows:
        return ""
    ag = rows[0]["against"]
    head = ["index", "beta", "U", "D", "mu-U/2", f"{method} RMS", f"{ag} RMS", "spread",
            "share of bin"]
    body = [[str(r["index"]) + (f" {r['spin']}" if "spin" in r else ""), f"{r['beta']:g}",
             f"{r['U']:.3f}", f"{r['D']:.3f}",
             f"{r['mu-U/2']:+.3f}", f"{r['rms']:.2e}",
             "-" if r["rms_against"] is None else f"{r['rms_against']:.2e}",
             f"{r['spread']:.1e}", f"{100 * r['share_of_beta_bin']:.0f} %"] for r in rows]
    return _render(head, body, "text",
                   f"worst samples of {method} (RMS of G(tau)), share of their beta bin's "
                   "squared error")


def format_ratio_table(ratios: dict, bins, fmt="text", level=0.95) -> str:
    """:func:`ratio_table` as text or reStructuredText: ``ratio [lo, hi]`` per bin."""
    bins = [b for b in bins if any(b in r for r in ratios.values())]
    methods = list(ratios)
    head = ["method"] + bins
    rows = [[m] + [f"{ratios[m][b]['ratio']:.3f} [{ratios[m][b]['lo']:.3f}, "
                   f"{ratios[m][b]['hi']:.3f}]" for b in bins] for m in methods]
    any_m = ratios[methods[0]]
    rows.append(["(best cheap)"] + [any_m[b]["best"] for b in bins])
    return _render(head, rows, fmt, f"G(tau) RMS / best cheap solver of the bin, "
                                    f"{100 * level:g} % bootstrap interval")


def plot_evaluation(res: EvaluationResult, outdir, *, history=None, n_examples=4) -> list:
    """PNG plots: learning curves, error histograms, G(tau) comparisons."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    files = []
    if history:
        fig, ax = plt.subplots(figsize=(6, 3.8))
        for k, h in enumerate(history):
            ep = [r["epoch"] for r in h]
            ax.semilogy(ep, [r["train"] for r in h], color=f"C{k}", lw=1, label=f"train {k}")
            ax.semilogy(ep, [r["validation"] for r in h], color=f"C{k}", ls="--", lw=1,
                        label=f"validation {k}")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.legend(fontsize=7)
        fig.tight_layout()
        files.append(outdir / "learning_curves.png")
        fig.savefig(files[-1], dpi=110)
        plt.close(fig)
    s = res.samples
    ref = s.G_tau[res.reference]
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for m, G in res.G_tau.items():
        rms = np.sqrt(((G - ref) ** 2).mean(axis=1))
        ax.hist(np.log10(rms + 1e-17), bins=40, histtype="step", lw=2 if m == "model" else 1,
                label=m)
    ax.set_xlabel(f"log10 RMS error of G(tau) per sample vs {res.reference}")
    ax.set_ylabel("samples")
    ax.legend(fontsize=7)
    fig.tight_layout()
    files.append(outdir / "error_histograms.png")
    fig.savefig(files[-1], dpi=110)
    plt.close(fig)
    err = np.sqrt(((res.G_tau["model"] - ref) ** 2).mean(axis=1))
    picks = np.argsort(err)[:: max(1, len(err) // n_examples)][:n_examples]
    fig, axes = plt.subplots(2, len(picks), figsize=(3.2 * len(picks), 5.5), squeeze=False)
    x = s.x_stored
    for j, i in enumerate(picks):
        a0, a1 = axes[0, j], axes[1, j]
        a0.plot(x, ref[i], "k", lw=2, label=res.reference)
        a0.plot(x, res.G_tau["model"][i], "C3--", label="model")
        a0.set_title(f"U={s.params['U'][i]:.2g} beta={s.beta[i]:g} D={s.params['D'][i]:.2g}",
                     fontsize=8)
        for m, G in res.G_tau.items():
            a1.semilogy(x, np.abs(G[i] - ref[i]) + 1e-17, lw=2 if m == "model" else 0.8,
                        label=m)
        a1.set_xlabel("tau / beta")
        if j == 0:
            a0.set_ylabel("G(tau)")
            a1.set_ylabel("|G - G_ref|")
            a0.legend(fontsize=7)
            a1.legend(fontsize=6)
    fig.tight_layout()
    files.append(outdir / "g_tau_examples.png")
    fig.savefig(files[-1], dpi=110)
    plt.close(fig)
    return files
