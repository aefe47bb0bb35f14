# SPDX-License-Identifier: Apache-2.0
"""Reading and analysing databases: summary, error tables, plots, TRIQS export."""

from __future__ import annotations

import warnings
from pathlib import Path

import h5py
import numpy as np

from ..gf import transforms as tr
from . import integrity as _integ
from .schema import (
    ADDED,
    CHECKSUMS_FROM,
    FORMAT,
    FORMAT_VERSION,
    LEGACY_PARAMS,
    REFERENCE_ERROR_KEYS,
    SCHEMA,
    Derived,
    added_value,
    check_schema,
)

__all__ = ["Database", "error_stats", "error_table", "summary", "export_sample", "plot_database"]


class Database:
    """A database file opened for reading (checks the format and version).

    Files of every layout version up to :data:`~.schema.FORMAT_VERSION` are read; a dataset
    that the file's version predates (:data:`~.schema.ADDED`) reads as its "not known"
    value (NaN, -1, False), and the per-spin parameters of format 4 are derived from the
    spin-symmetric ones (``mu_s``, ``eps_k_s``, ``V_k_s``: ``mu``, ``eps_k``, ``V_k`` on both
    spins; ``n_bath``: ``K``).

    Checksums (format 3 and later, :mod:`~triqs_mlsolver.database.integrity`): the
    attributes, ``params/*``, ``tau_over_beta`` and ``status/*`` are verified here, every
    other dataset when :meth:`read` reads it; a mismatch or a missing checksum raises
    :class:`~triqs_mlsolver.database.integrity.DatabaseIntegrityError`.  A file of an older
    format has no checksums: it is read with an
    :class:`~triqs_mlsolver.database.integrity.UncheckedDatabaseWarning` that says so and
    how to add them (``triqs-mlsolver inspect OLD.h5 --upgrade NEW.h5``).

    Attributes
    ----------
    path : Path
    format_version : int, the layout version of the file
    checksums : bool, the file carries checksums (and they are verified)
    solvers : list of str
    reference : str
    params : dict of ndarray
        ``params/<name>`` of every sample: ``U, mu, beta, D`` (N,), ``eps_k, V_k`` (N, K)
        (the legacy fields: spin up), ``mu_s`` (N, 2), ``eps_k_s, V_k_s`` (N, 2, K) (per
        spin), ``n_bath`` (N,) int (sites used; the rest of the bath arrays is padding,
        ``eps_k = V_k = 0``); for every format version.
    polarised : ndarray (N,) bool
        The sample is spin-polarised: its spins differ in ``mu_s``, ``eps_k_s`` or
        ``V_k_s`` by more than 1e-12 (:func:`~triqs_mlsolver.database.integrity.polarised`).
    attrs : dict, the root attributes
    """

    def __init__(self, path):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(
                f"database {str(self.path)!r} not found; generate one with "
                "'triqs-mlsolver generate CONFIG -o FILE'"
            )
        try:
            f = h5py.File(self.path, "r")
        except OSError:
            raise ValueError(
                f"{self.path} is not an HDF5 file (or it is truncated); give a database "
                "written by 'triqs-mlsolver generate CONFIG -o FILE'"
            ) from None
        with f:
            fmt = f.attrs.get("format")
            if fmt != FORMAT:
                raise ValueError(
                    f"{self.path} is an HDF5 file but not a triqs_mlsolver database "
                    f"(format {fmt!r}, expected {FORMAT!r}); give a database written by "
                    "'triqs-mlsolver generate' (a TRIQS archive of Green's functions is read "
                    "with triqs_mlsolver.gf.HDFArchive instead)"
                )
            ver = int(f.attrs["format_version"])
            if ver > FORMAT_VERSION:
                raise ValueError(
                    f"{self.path} has format version {ver}, newer than this "
                    f"package reads ({FORMAT_VERSION}); upgrade triqs_mlsolver"
                )
            self.format_version = ver
            self.checksums = ver >= CHECKSUMS_FROM
            file = str(self.path)
            # a checksum that is there is always verified (also in a file that claims an
            # older version); from version 3 on a missing one is an error
            _integ.verify_attrs(f, file=file, required=self.checksums)
            self.attrs = {
                k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()
            }
            self.solvers = [str(s) for s in f.attrs["solvers"]]
            self.reference = str(f.attrs["reference"])

            def get(name):
                return _integ.verify_dataset(f[name], file=file, required=self.checksums)

            self.params = {k: get(f"params/{k}") for k in f["params"]}
            legacy = {k: self.params[k] for k in LEGACY_PARAMS}
            for pat, (added_in, fill) in ADDED.items():
                name = pat.split("/", 1)[1]
                if (pat.startswith("params/") and name not in self.params
                        and added_in > ver and isinstance(fill, Derived)):
                    self.params[name] = added_value(pat, len(legacy["U"]), legacy)
            self.polarised = _integ.polarised(self.params)
            self.tau_over_beta = get("tau_over_beta")
            self.ok = get("status/ok")
            self.reason = np.array(
                [r.decode() if isinstance(r, bytes) else r for r in get("status/reason")],
                dtype=object,
            )
        self._hashes = None
        if not self.checksums:
            warnings.warn(
                f"{self.path} is a format v{ver} database, written before checksums: its "
                "data cannot be verified and a damaged value may go unnoticed; write a "
                f"checked copy with 'triqs-mlsolver inspect {self.path} --upgrade NEW.h5' "
                "(it checks every value and adds checksums)",
                _integ.UncheckedDatabaseWarning, stacklevel=2)

    def __len__(self):
        return len(self.params["U"])

    @property
    def cheap(self):
        return [s for s in self.solvers if s != self.reference]

    def read(self, solver, key):
        """Dataset ``solvers/<solver>/<key>`` as an array (the "not known" values, NaN / -1 /
        False, for a dataset that the file's format version predates)."""
        if solver not in self.solvers:
            raise KeyError(f"no solver {solver!r} in {self.path}; it has {self.solvers}")
        with h5py.File(self.path, "r") as f:
            path = f"solvers/{solver}/{key}"
            if path in f:
                return _integ.verify_dataset(f[path], file=str(self.path),
                                             required=self.checksums)
        pat = (f"solvers/{{reference}}/{key}" if solver == self.reference
               else f"solvers/{{solver}}/{key}")
        if pat in ADDED and ADDED[pat][0] > self.format_version:
            return np.full(len(self), ADDED[pat][1], dtype=SCHEMA[pat][1])
        if solver != self.reference and f"solvers/{{reference}}/{key}" in SCHEMA:
            raise KeyError(f"{key!r} is stored for the reference solver only "
                           f"({self.reference!r}), not for {solver!r}")
        kinds = ("solver", "reference") if solver == self.reference else ("solver",)
        keys = [q.rsplit("/", 1)[1] for q in SCHEMA
                if any(q.startswith(f"solvers/{{{k}}}/") for k in kinds)]
        raise KeyError(f"no dataset {path!r} in {self.path} (format v{self.format_version}); "
                       f"the keys of {solver!r} are {keys}")

    def reference_error(self) -> dict:
        """The reference solver's own error estimate per sample.

        Returns
        -------
        dict of ndarray (N,)
            ``error_estimate`` (float: estimated RMS error of the reference's ``G(tau)`` over
            tau and spins, from the bath-size convergence of the ED with its FTLM error bar
            included; NaN where the solve failed, the reference gives no estimate or the
            file predates format version 2), ``n_bath`` (int: bath sites diagonalised, -1
            where not known) and ``converged`` (bool: the reference reached its tolerance).
        """
        return {k: self.read(self.reference, k) for k in REFERENCE_ERROR_KEYS}

    def check(self):
        """Verify the layout against the documented schema."""
        return check_schema(self.path)

    def verify(self) -> int:
        """Verify every checksum (format 3 and later) and apply the value rules to every
        dataset (:mod:`~triqs_mlsolver.database.integrity`); returns the number of datasets
        whose checksum was verified (0 for an older format)."""
        n = _integ.verify_file(self.path, required=self.checksums)
        _integ.check_file_values(self.path)
        return n if self.checksums else 0

    def aim_params(self, i: int):
        """The :class:`~triqs_mlsolver.aim.AIMParams` of sample ``i``: per spin, the padded
        bath sites stripped (the AIM the solvers were given, up to the sign of ``V_k``)."""
        from ..aim import AIMParams

        if not -len(self) <= i < len(self):
            raise IndexError(f"sample {i} out of range: {self.path} has {len(self)} samples "
                             f"(0..{len(self) - 1})")
        p = self.params
        nb = int(p["n_bath"][i])
        return AIMParams(U=float(p["U"][i]), mu=np.array(p["mu_s"][i], float),
                         beta=float(p["beta"][i]), D=float(p["D"][i]),
                         eps_k=np.array(p["eps_k_s"][i][:, :nb], float),
                         V_k=np.array(p["V_k_s"][i][:, :nb], float))

    def sample_hashes(self) -> np.ndarray:
        """The content hash of every sample, ``(N,)`` uint64
        (:func:`~triqs_mlsolver.database.integrity.sample_hashes`)."""
        if self._hashes is None:
            self._hashes = _integ.sample_hashes(self.params)  # n_bath, per spin: see there
        return self._hashes


def is_uniform(x) -> bool:
    """The stored points ``x = tau/beta`` are the uniform grid ``linspace(0, 1, len(x))``."""
    x = np.asarray(x, float)
    return len(x) < 3 or bool(np.allclose(np.diff(x), 1.0 / (len(x) - 1), rtol=0, atol=1e-12))


def beta_classes(beta, D=None) -> list:
    """``[(key, mask)]``: one class per temperature (key the float beta) when there are at
    most ``MAX_BETA_CLASSES``, else the non-empty bins of ``beta D`` (``D`` default 1) with
    edges ``BETA_D_EDGES`` (key ``"beta*D in [lo,hi)"``).  One rule for the database
    summary, the evaluation tables and the training reports."""
    beta = np.asarray(beta, float)
    betas = np.unique(beta)
    if len(betas) <= MAX_BETA_CLASSES:
        return [(float(b), beta == b) for b in betas]
    bd = beta * (1.0 if D is None else np.asarray(D, float))
    out = [(f"beta*D in [{lo:g},{hi:g})", (bd >= lo) & (bd < hi))
           for lo, hi in zip(BETA_D_EDGES[:-1], BETA_D_EDGES[1:])]
    return [(k, m) for k, m in out if m.any()]


def beta_label(key) -> str:
    """The table label of a :func:`beta_classes` key."""
    return f"beta={key:g}" if isinstance(key, float) else key


def tau_weights(x):
    """Quadrature weights of the stored points ``x = tau/beta`` for means over ``tau``:
    ``None`` on a uniform grid (plain means, as always), else trapezoidal weights scaled to
    mean 1, so that a weighted mean square approximates ``int_0^1 |d(x)|^2 dx`` (a ``"log"``
    mesh puts most points near the ends, which a plain mean would overweight)."""
    x = np.asarray(x, float)
    if is_uniform(x):
        return None
    w = np.zeros_like(x)
    d = np.diff(x)
    w[:-1] += d / 2
    w[1:] += d / 2
    return w * (len(x) / w.sum())


def disagreement_rms(G_a, G_b, x) -> float:
    """RMS over ``tau`` of ``G_a - G_b`` (rows: spins or samples; last axis the stored points
    ``x = tau/beta``, weighted by :func:`tau_weights`), the largest row: the disagreement of
    two cheap solvers that the sampler's ``select`` and MLSolver's guard compare."""
    return float(disagreement_rms_rows(G_a, G_b, x).max())


def disagreement_rms_rows(G_a, G_b, x) -> np.ndarray:
    """The RMS over ``tau`` of ``G_a - G_b`` of every row (the values whose largest
    :func:`disagreement_rms` returns): shape ``G_a.shape[:-1]``."""
    w = tau_weights(x)
    d2 = (np.asarray(G_a) - np.asarray(G_b)) ** 2 * (1.0 if w is None else w)
    return np.sqrt(d2.mean(axis=-1))


def error_stats(diff, weights=None) -> dict:
    """MAE, RMS and max of ``|diff|`` over all entries, and the number of samples ``n``
    (first axis); NaN statistics for an empty selection.  ``weights`` (last axis, mean 1,
    :func:`tau_weights`) weigh the MAE and RMS."""
    a = np.abs(np.asarray(diff))
    if a.size == 0:
        return {"MAE": float("nan"), "RMS": float("nan"), "max": float("nan"), "n": 0}
    if weights is None:
        return {"MAE": float(a.mean()), "RMS": float(np.sqrt((a**2).mean())),
                "max": float(a.max()), "n": int(a.shape[0])}
    w = np.asarray(weights, float)
    return {"MAE": float((a * w).mean()), "RMS": float(np.sqrt((a**2 * w).mean())),
            "max": float(a.max()), "n": int(a.shape[0])}


def error_table(db: Database, mask=None) -> dict:
    """Per-solver error of G(tau) against the reference: overall and per beta (per bin
    of ``beta D``, keys ``"beta*D in [lo,hi)"``, when there are more than
    ``MAX_BETA_CLASSES`` temperatures); weighted by :func:`tau_weights`.

    Returns ``{solver: {'all': stats, beta or bin: stats, ...}}`` over samples where both
    solves succeeded (and ``mask``, if given).
    """
    ref = db.read(db.reference, "G_tau")
    ok_ref = db.read(db.reference, "ok")
    classes = beta_classes(db.params["beta"], db.params["D"])
    w = tau_weights(db.tau_over_beta)
    out = {}
    for s in db.cheap:
        g = db.read(s, "G_tau")
        ok = ok_ref & db.read(s, "ok")
        if mask is not None:
            ok &= mask
        if not ok.any():
            continue
        row = {"all": error_stats(g[ok] - ref[ok], w)}
        for key, m in classes:
            sel = ok & m
            if sel.any():
                row[key] = error_stats(g[sel] - ref[sel], w)
        out[s] = row
    return out


#: More temperatures than this: :func:`error_table` bins ``beta D`` with these edges.
MAX_BETA_CLASSES = 12
BETA_D_EDGES = (0.0, 3.0, 10.0, 30.0, 100.0, 200.0, np.inf)


def summary(db: Database) -> str:
    """Human-readable summary: counts, failures, parameter ranges, errors, timings."""
    lines = [
        f"database {db.path}  (format v{db.attrs['format_version']}, "
        f"triqs_mlsolver {db.attrs['package_version']}, git {str(db.attrs['git_hash'])[:10]})",
        f"samples: {len(db)}, all solvers ok: {int(db.ok.sum())}, "
        f"with a failure: {int((~db.ok).sum())};  seed {db.attrs['seed']}, "
        f"MPI sizes {[int(x) for x in np.atleast_1d(db.attrs['mpi_size'])]}",
        f"solvers: {', '.join(db.cheap)}; reference: {db.reference}",
        ("checksums: every dataset and the attributes carry one; verified on reading"
         if db.checksums else
         f"checksums: none (format v{db.format_version}, before checksums): the data are not "
         "verified; 'inspect --upgrade NEW.h5' writes a checked copy"),
        "",
        "parameters:",
    ]
    for k in ("U", "mu", "beta", "D"):
        v = db.params[k]
        lines.append(f"  {k:5s} min {v.min():9.4g}  max {v.max():9.4g}  mean {v.mean():9.4g}")
    classes = beta_classes(db.params["beta"], db.params["D"])
    lines.append(("  beta values: " if isinstance(classes[0][0], float) else "  beta*D bins: ")
                 + ", ".join(f"{beta_label(k).removeprefix('beta=')} ({int(m.sum())})"
                             for k, m in classes))
    vals, counts = np.unique(db.params["n_bath"], return_counts=True)
    lines.append("  bath sites: " + ", ".join(f"{v} ({c})" for v, c in zip(vals, counts))
                 + f";  spin-polarised samples: {int(db.polarised.sum())}")
    lines += ["", "time per solve [ms] (median / max) and failures:"]
    for s in db.solvers:
        t = db.read(s, "wall_time") * 1e3
        ok = db.read(s, "ok")
        lines.append(
            f"  {s:12s} {np.nanmedian(t):9.2f} / {np.nanmax(t):9.2f}   failed: {int((~ok).sum())}"
        )
    failed = np.flatnonzero(~db.ok)
    for i in failed[:5]:
        lines.append(f"    sample {i}: {db.reason[i]}")
    lines += ["", *_reference_error_lines(db)]
    tab = error_table(db)
    if tab:
        lines += ["", f"error of G(tau) against {db.reference} (MAE / RMS / max):"]
        betas = list(dict.fromkeys(b for row in tab.values() for b in row if b != "all"))
        if all(isinstance(b, float) for b in betas):
            betas.sort()
        head = f"  {'solver':12s} {'all':>26s} " + " ".join(
            f"{beta_label(b):>26s}" for b in betas)
        lines.append(head)
        for s, row in tab.items():
            cells = [row["all"]] + [row.get(b) for b in betas]
            txt = " ".join(
                f"{c['MAE']:8.2e}/{c['RMS']:8.2e}/{c['max']:8.2e}" if c else f"{'-':>26s}"
                for c in cells
            )
            lines.append(f"  {s:12s} {txt}")
    return "\n".join(lines)


def _reference_error_lines(db: Database) -> list[str]:
    """The summary's paragraph on the reference's own error estimate."""
    head = (f"error estimate of the reference {db.reference} (RMS of G(tau): bath-size "
            "convergence, FTLM error bar)")
    if db.format_version < ADDED["solvers/{reference}/error_estimate"][0]:
        return [f"{head}: not stored (format v{db.format_version}; stored from v2 on)"]
    r = db.reference_error()
    err, nb, conv = r["error_estimate"], r["n_bath"], r["converged"]
    known = ~np.isnan(err)
    if not known.any():
        return [f"{head}: none ({db.reference} reports no estimate)"]
    fin = err[known & np.isfinite(err)]
    lines = [f"{head}:",
             f"  median {np.median(fin) if fin.size else np.nan:9.2e}  "
             f"max {np.max(err[known]):9.2e}  over {int(known.sum())} samples; "
             f"not converged: {int((known & ~conv).sum())}; no estimate: {int((~known).sum())}"]
    if (nb >= 0).any():
        K = db.params["eps_k"].shape[1]
        vals, counts = np.unique(nb[nb >= 0], return_counts=True)
        lines.append("  bath sites diagonalised: " + ", ".join(
            f"{v}{' (the sampled bath)' if v == K else ''}: {c}" for v, c in zip(vals, counts)))
    return lines


#: Uniform tau points of an exported G(tau) when the database stores a "log" tau mesh.
EXPORT_N_TAU = 2001


def export_sample(db: Database, i: int, out) -> Path:
    """Write sample ``i`` of every solver as TRIQS BlockGfs (G_tau, G_l, G_iw) to ``out``
    (a database with a ``"log"`` tau mesh: G(tau) splined onto ``EXPORT_N_TAU`` uniform
    points, as a TRIQS ``MeshImTime`` is uniform)."""
    from ..gf import BlockGf, Gf, HDFArchive, MeshImFreq, MeshImTime, MeshLegendre

    if not 0 <= i < len(db):
        raise IndexError(
            f"sample {i} out of range: the database has {len(db)} samples (0..{len(db) - 1})"
        )
    beta = float(db.params["beta"][i])
    n_iw = int(db.attrs["n_iw"])
    out = Path(out)
    with HDFArchive(out, "w") as ar:
        ar["params"] = {
            k: (v[i].tolist() if v.ndim > 1 or v.dtype.kind == "i" else float(v[i]))
            for k, v in db.params.items()
        }
        x = np.asarray(db.tau_over_beta)
        uniform = is_uniform(x)
        for s in db.solvers:
            G_tau, G_l = db.read(s, "G_tau")[i], db.read(s, "G_l")[i]
            if not uniform:  # a "log" tau mesh: a cubic spline on a uniform TRIQS mesh
                from scipy.interpolate import CubicSpline

                G_tau = CubicSpline(x, G_tau, axis=-1)(np.linspace(0.0, 1.0, EXPORT_N_TAU))
            meshes = {
                "G_tau": MeshImTime(beta=beta, statistic="Fermion", n_tau=G_tau.shape[1]),
                "G_l": MeshLegendre(beta=beta, statistic="Fermion", max_n=G_l.shape[1]),
                "G_iw": MeshImFreq(beta=beta, statistic="Fermion", n_iw=n_iw),
            }
            datas = {
                "G_tau": G_tau,
                "G_l": G_l,
                "G_iw": np.stack([tr.legendre_to_iw(gl, n_iw) for gl in G_l]),
            }
            grp = {}
            for key, mesh in meshes.items():
                blocks = [Gf(mesh=mesh, data=datas[key][sp][:, None, None]) for sp in range(2)]
                grp[key] = BlockGf(name_list=["up", "down"], block_list=blocks, make_copies=False)
            ar[s] = grp
    return out


def plot_database(db: Database, outdir, sample=0) -> list[Path]:
    """PNG plots: parameter coverage, error distributions, G(tau) of one sample."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    files = []
    fig, ax = plt.subplots(1, 3, figsize=(11, 3.3))
    p = db.params
    ax[0].scatter(p["U"], 2 * p["D"], s=3, c=np.log(p["beta"]), cmap="viridis")
    ax[0].set_xlabel("U")
    ax[0].set_ylabel("W = 2D")
    ax[1].hist(p["U"] / 2 - p["mu"], bins=40)
    ax[1].set_xlabel("eps = U/2 - mu")
    vals, counts = np.unique(p["beta"], return_counts=True)
    ax[2].bar([f"{v:g}" for v in vals], counts)
    ax[2].set_xlabel("beta")
    fig.suptitle("parameter coverage")
    fig.tight_layout()
    files.append(outdir / "coverage.png")
    fig.savefig(files[-1], dpi=110)
    plt.close(fig)

    ref = db.read(db.reference, "G_tau")
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for s in db.cheap:
        ok = db.read(s, "ok") & db.read(db.reference, "ok")
        rms = np.sqrt(((db.read(s, "G_tau")[ok] - ref[ok]) ** 2).mean(axis=(1, 2)))
        ax.hist(np.log10(rms + 1e-16), bins=40, histtype="step", label=s)
    ax.set_xlabel(f"log10 RMS error of G(tau) vs {db.reference}")
    ax.set_ylabel("samples")
    ax.legend()
    fig.tight_layout()
    files.append(outdir / "errors.png")
    fig.savefig(files[-1], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 3.8))
    tau = db.tau_over_beta
    for s in db.solvers:
        ax.plot(tau, db.read(s, "G_tau")[sample, 0], lw=2.5 if s == db.reference else 1.2, label=s)
    ax.set_xlabel("tau / beta")
    ax.set_ylabel("G(tau)")
    ax.set_title(
        f"sample {sample}: U={p['U'][sample]:.3g}, mu={p['mu'][sample]:.3g}, "
        f"beta={p['beta'][sample]:g}, D={p['D'][sample]:.3g}"
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    files.append(outdir / f"sample_{sample}.png")
    fig.savefig(files[-1], dpi=110)
    plt.close(fig)
    return files
