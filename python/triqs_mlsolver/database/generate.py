# SPDX-License-Identifier: Apache-2.0
"""MPI-parallel, crash-safe generation of a training database.

Layout on disk while running: ``OUTPUT.parts/`` holds ``config.toml`` (the
validated config of the run), one ``run-<n>.json`` per start (MPI size,
time) and the finished work as chunk files
``chunk-<first sample>-<count>-r<rank>.h5``.  A chunk is written to a
temporary name and renamed when complete, so a killed run leaves only
complete chunks behind (at most ``chunk_size`` samples per rank are lost).
``--resume`` scans the chunks, skips the finished samples and computes the
rest (a chunk written before a dataset was added to the layout gives its
"not known" value, :data:`~.schema.ADDED`, or, for the per-spin parameters and
``params/n_bath`` of format 4, the value derived from its spin-symmetric
parameters); ``--extend OLD.h5`` starts the parts folder from a finished
database made with the same config but fewer samples and/or fewer cheap
solvers (its samples are the first ones of the larger run, see below; added
cheap solvers are run on them on rank 0; a dataset that OLD's format predates
gets its "not known" or derived value), so a database grows without
recomputing its reference.  At the end
rank 0 merges the chunks, sorted by sample index, into ``OUTPUT`` (again
through a temporary file and a rename) and removes the parts folder.

Integrity (:mod:`~triqs_mlsolver.database.integrity`): rank 0 holds ``OUTPUT.lock``
from its first check to the end of the merge, so a second ``generate`` on the same output
(``--resume`` or not) is refused; chunks and the database carry checksums (the merge and
``--extend`` verify them and recompute those of the new file), the value rules are applied
to every sample before it is written, and every file is built in memory and written to a
unique temporary name, then renamed (the database is linked into place, never over an
existing file).  A full disk ends the run with one line (:class:`DiskFullError`) that says
how to continue with ``--resume``; finished chunks stay.

Sample ``i`` is drawn from ``default_rng([seed, i])`` and every solver is
deterministic, so the database does not depend on the number of ranks or on
interruptions.  BLAS runs single-threaded in the workers (one rank per core
is the intended use), which also keeps the floating-point reductions, and so
the results, identical from run to run.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import subprocess
import time
import traceback
from pathlib import Path

import h5py
import numpy as np

from .. import __version__
from .. import mpi as _mpi
from ..gf import transforms as tr
from ..solvers import solve_aim
from . import integrity as _integ
from .config import ConfigError, config_to_toml
from .integrity import DiskFullError
from .sampler import sample_arrays, sample_params
from .schema import (
    ADDED,
    CHECKSUMS_FROM,
    FORMAT,
    FORMAT_VERSION,
    LEGACY_PARAMS,
    REFERENCE_ERROR_KEYS,
    SCHEMA,
    added_value,
)

__all__ = ["generate", "solve_sample", "reference_error_of", "merge_parts", "parts_dir_of",
           "lock_path_of", "scan_parts", "upgrade_database", "DiskFullError"]

#: Per-sample keys of every solver (``solvers/{solver}/<key>``).
SOLVER_KEYS = ("G_tau", "G_l", "density", "double_occupancy", "wall_time", "ok", "error")

_CHUNK_RE = re.compile(r"chunk-(\d+)-(\d+)-r(\d+)\.h5$")
_STR = h5py.string_dtype()


def parts_dir_of(output) -> Path:
    out = Path(output)
    return out.with_name(out.name + ".parts")


def lock_path_of(output) -> Path:
    """``OUTPUT.lock``: the lock a running ``generate`` holds on ``output``."""
    out = Path(output)
    return out.with_name(out.name + ".lock")


def _resume_hint(output) -> str:
    parts = parts_dir_of(output)
    return (f"free space there, then continue with 'triqs-mlsolver generate {parts}/config.toml "
            f"-o {output} --resume' (the finished samples in {parts} are kept)")


def _git_hash() -> str:
    try:
        here = Path(__file__).resolve().parent
        r = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
        return r.stdout.strip() if r.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def solver_names(cfg) -> list[str]:
    return [*cfg["solvers"]["cheap"], cfg["solvers"]["reference"]]


def _keys(cfg, name) -> tuple:
    """Per-sample keys stored for the solver ``name``."""
    ref = name == cfg["solvers"]["reference"]
    return SOLVER_KEYS + (REFERENCE_ERROR_KEYS if ref else ())


def _unknown(key, n):
    """``n`` values of ``solvers/{reference}/<key>`` that say "not known" (NaN, -1, False)."""
    pat = f"solvers/{{reference}}/{key}"
    return np.full(n, ADDED[pat][1], dtype=SCHEMA[pat][1])


#: The ``params/*`` datasets added after version 1 (derived from the legacy ones in files
#: and chunks that predate them).
_ADDED_PARAMS = tuple(p for p in ADDED if p.startswith("params/"))


def _derived_params(get, n) -> dict:
    """``{params/<name>: array}`` of the per-spin parameters and ``n_bath`` of ``n`` samples
    whose file or chunk predates them, from its legacy ``params/*`` (``get(path)`` reads
    one, verified)."""
    legacy = {k: get(f"params/{k}") for k in LEGACY_PARAMS}
    return {pat: added_value(pat, n, legacy) for pat in _ADDED_PARAMS}


def reference_error_of(solution) -> dict:
    """``{error_estimate, n_bath, converged}`` of a solution, from its
    ``diagnostics['reference']`` (the reference ED: bath-size convergence) and
    ``diagnostics['ftlm']['error_G_tau']`` (finite-temperature Lanczos error bar, max over
    tau), the larger of the two; NaN, -1, False when the solution carries no
    ``'reference'`` report (a solver that does not estimate its error)."""
    diag = getattr(solution, "diagnostics", None) or {}
    ref = diag.get("reference")
    if not isinstance(ref, dict):
        return {k: _unknown(k, 1)[0] for k in REFERENCE_ERROR_KEYS}
    err = float(ref.get("error_estimate", np.nan))
    ftlm = (diag.get("ftlm") or {}).get("error_G_tau")
    if ftlm is not None:
        err = float(np.fmax(err, float(ftlm)))  # the larger; fmax ignores a NaN
    n_bath = ref.get("n_bath")
    return {
        "error_estimate": err,
        "n_bath": int(n_bath) if isinstance(n_bath, (int, np.integer)) else -1,
        "converged": bool(ref.get("converged", False)) and np.isfinite(err),
    }


#: Uniform tau points the solvers return before their G(tau) is interpolated to a
#: ``tau_mesh = "log"`` grid (a quintic spline: at beta = 400 the spacing 0.024 resolves
#: ``e^{-E tau}`` up to ``E ~ 10`` to better than 1e-6; tested against the exact Lehmann sum).
DENSE_N_TAU = tr.DENSE_N_TAU
#: Smallest ``tau/beta > 0`` of the ``"log"`` grid.
LOG_MESH_X_MIN = tr.LOG_MESH_X_MIN


def stored_tau_over_beta(grid: dict) -> np.ndarray:
    """The stored ``tau/beta`` points of a ``[grid]``: ``"uniform"`` (``n_tau`` points,
    both ends) or ``"log"``: 0, ``m = (n_tau - 1)/2`` points geometrically spaced from
    ``LOG_MESH_X_MIN`` to 1/2, and their mirror images ``1 - x`` (1/2 once), so that
    ``G(tau)`` is resolved near both ends at any temperature (``e^{-E tau}`` with
    ``beta E`` up to ~1e6) with about 17 points per decade of ``tau`` for ``n_tau = 201``."""
    n = int(grid["n_tau"])
    if grid.get("tau_mesh", "uniform") == "uniform":
        return np.linspace(0.0, 1.0, n)
    return tr.log_tau_mesh(n)



def _solve_stored(name, params, g, x_log):
    """``(solution, G_tau on the stored points)`` of solver ``name``: on a "log" mesh the
    solver returns the dense uniform G, splined onto the stored points."""
    sol = solve_aim(name, params, n_iw=g["n_iw"],
                    n_tau=g["n_tau"] if x_log is None else DENSE_N_TAU, n_l=g["n_l"])
    G_tau = np.asarray(sol.G_tau, float)
    if x_log is not None:
        G_tau = tr.uniform_tau_to_points(G_tau, x_log)
    return sol, G_tau


def stored_G_tau(cfg: dict, name: str, params) -> np.ndarray:
    """``G(tau)`` of solver ``name`` for ``params`` on the database's stored points, as
    :func:`solve_sample` stores it (shape ``(2, n_tau)``; raises what the solver raises, or
    ``FloatingPointError`` for a non-finite result)."""
    g = cfg["grid"]
    x_log = stored_tau_over_beta(g) if g["tau_mesh"] == "log" else None
    G_tau = _solve_stored(name, params, g, x_log)[1]
    if not np.all(np.isfinite(G_tau)):
        raise FloatingPointError(f"{name}: the solution contains NaN or infinite values")
    return G_tau


def solve_sample(cfg: dict, i: int, solvers=None) -> dict:
    """Solve sample ``i`` with every configured solver (or only ``solvers``); failures are
    recorded, not raised."""
    g = cfg["grid"]
    params = sample_params(cfg, i)
    rec = {"index": i, "params": sample_arrays(params, cfg["sampler"]["n_bath"]),
           "solvers": {}}
    reference = cfg["solvers"]["reference"]
    # a "log" mesh: the solvers return the dense uniform G, splined onto the stored points
    x_log = stored_tau_over_beta(g) if g["tau_mesh"] == "log" else None
    for name in solver_names(cfg) if solvers is None else solvers:
        r = {
            "ok": False,
            "error": "",
            "wall_time": np.nan,
            "G_tau": np.full((2, g["n_tau"]), np.nan),
            "G_l": np.full((2, g["n_l"]), np.nan),
            "density": np.full(2, np.nan),
            "double_occupancy": np.nan,
        }
        if name == reference:
            r.update({k: _unknown(k, 1)[0] for k in REFERENCE_ERROR_KEYS})
        t0 = time.perf_counter()
        try:
            sol, G_tau = _solve_stored(name, params, g, x_log)
            if not (np.all(np.isfinite(G_tau)) and np.all(np.isfinite(sol.G_l))):
                raise FloatingPointError("the solution contains NaN or infinite values")
            _integ.check_solver_values(
                name, {"G_tau": G_tau[None],
                       "G_l": np.asarray(sol.G_l, float)[None],
                       "density": np.asarray(sol.density, float)[None]},
                [params.beta], index=[i], file="the solution",
                fix="the solve is recorded as failed")
            d_occ = np.nan if sol.double_occupancy is None else float(sol.double_occupancy)
            if name != reference and not (-_integ.VALUE_TOL <= d_occ <= 1 + _integ.VALUE_TOL):
                # an approximate solver's unphysical estimate (IPT's Galitskii-Migdal value can
                # be slightly negative): not known, its Green's function is kept
                d_occ = np.nan
            r.update(
                ok=True,
                G_tau=G_tau,
                G_l=np.asarray(sol.G_l, float),
                density=np.asarray(sol.density, float),
                double_occupancy=d_occ,
            )
            if name == reference:
                r.update(reference_error_of(sol))
        except Exception as exc:  # noqa: BLE001 - a failed solve is data, not a crash
            last = traceback.extract_tb(exc.__traceback__)[-1]
            r["error"] = (
                f"{type(exc).__name__}: {exc} (at {Path(last.filename).name}:{last.lineno})"
            )
        r["wall_time"] = time.perf_counter() - t0
        rec["solvers"][name] = r
    return rec


def _write_chunk(parts: Path, records: list, rank: int, output: Path) -> Path:
    first, count = records[0]["index"], len(records)
    final = parts / f"chunk-{first:08d}-{count}-r{rank}.h5"

    def fill(f):
        f.attrs["format_version"] = FORMAT_VERSION
        f["index"] = np.array([r["index"] for r in records], dtype=np.int64)
        for key in records[0]["params"]:
            f[f"params/{key}"] = np.array([r["params"][key] for r in records])
        for name, first in records[0]["solvers"].items():
            grp = f.create_group(f"solvers/{name}")
            for key in first:
                vals = [r["solvers"][name][key] for r in records]
                if key == "error":
                    grp.create_dataset(key, data=vals, dtype=_STR)
                else:
                    grp[key] = np.array(vals)
        _integ.seal(f)

    return _integ.atomic_write(final, _integ.h5_image(fill), resume_hint=_resume_hint(output))


def scan_parts(parts: Path) -> dict:
    """``{sample index: chunk path}`` of the complete chunks in ``parts``."""
    done = {}
    for p in sorted(parts.glob("chunk-*.h5")):
        m = _CHUNK_RE.search(p.name)
        if not m:
            continue
        try:
            with h5py.File(p, "r") as f:
                idx = f["index"][()]
        except (OSError, KeyError):
            continue  # unreadable: recompute its samples
        for i in idx:
            done[int(i)] = p
    return done


def _count_done(parts: Path) -> int:
    return sum(int(m.group(2)) for p in parts.glob("chunk-*.h5") if (m := _CHUNK_RE.search(p.name)))


def _prepare(cfg, output: Path, resume: bool) -> str | None:
    """Rank-0 checks before any work; returns an error message or None."""
    parts = parts_dir_of(output)
    text = config_to_toml(cfg)
    if output.exists():
        return (
            f"{output} already exists; choose another -o or delete it "
            "(a finished database is never overwritten)"
        )
    if parts.exists():
        old = (parts / "config.toml").read_text() if (parts / "config.toml").exists() else None
        if not resume:
            return (
                f"{parts} holds the parts of an unfinished run; continue it with --resume "
                "or delete the folder to start again"
            )
        if old is not None and old != text:
            return (
                f"{parts} was started with a different config; use the same config to "
                "--resume, or delete the folder / choose another -o"
            )
    else:
        parts.mkdir()
    _integ.atomic_write(parts / "config.toml", text.encode(), resume_hint=_resume_hint(output))
    return None


def _check_extend(cfg: dict, source: Path, recompute=()) -> tuple[str | None, int, list]:
    """``(error message or None, number of samples of source, its solvers)`` for
    ``--extend source``: the same config except a larger ``n_samples`` and/or more cheap
    solvers, and/or cheap solvers of ``source`` to solve again (``recompute``)."""
    import tomllib

    from .config import validate_config

    try:
        with h5py.File(source, "r") as f:
            if f.attrs.get("format") != FORMAT:
                return (f"{source} is not a triqs_mlsolver database (no format attribute "
                        f"{FORMAT!r}); --extend takes a database written by "
                        "triqs-mlsolver generate", 0, [])
            old = validate_config(tomllib.loads(str(f.attrs["config"])))
    except (OSError, KeyError, tomllib.TOMLDecodeError, ConfigError) as err:
        return f"cannot read the database {source} to extend: {err}", 0, []
    n_old, n_new = old["sampler"]["n_samples"], cfg["sampler"]["n_samples"]
    free = {("sampler", "n_samples"), ("solvers", "cheap")}

    def strip(c):
        return {sec: {k: v for k, v in body.items() if (sec, k) not in free}
                for sec, body in c.items()}

    if strip(old) != strip(cfg):
        diff = sorted(f"[{sec}] {k}" for sec in cfg for k in cfg[sec]
                      if (sec, k) not in free and old.get(sec, {}).get(k) != cfg[sec][k])
        return (f"{source} was made with another config (differs in {', '.join(diff)}); "
                "--extend needs the same config with a larger [sampler] n_samples and/or "
                "more [solvers] cheap", 0, [])
    dropped = [s for s in old["solvers"]["cheap"] if s not in cfg["solvers"]["cheap"]]
    if dropped:
        return (f"{source} has the cheap solvers {dropped} that the config drops; --extend "
                "keeps every solver of the old database (add them to [solvers] cheap)", 0, [])
    added = [s for s in cfg["solvers"]["cheap"] if s not in old["solvers"]["cheap"]]
    unknown = [s for s in recompute if s not in old["solvers"]["cheap"]]
    if unknown:
        return (f"--recompute {' '.join(unknown)}: not among the cheap solvers of {source} "
                f"({', '.join(old['solvers']['cheap'])}); a new solver is added by listing it "
                "in [solvers] cheap", 0, [])
    if n_new < n_old or (n_new == n_old and not added and not recompute):
        return (f"{source} has {n_old} samples and the solvers {solver_names(old)} already; "
                f"give a larger n_samples (e.g. --n-samples {2 * n_old}) or more cheap solvers "
                "to extend it", 0, [])
    try:  # nothing damaged is copied on
        _verify_source(source)
    except (_integ.DatabaseIntegrityError, _integ.DatabaseValueError) as err:
        return f"--extend {source}: {err}", 0, []
    return None, n_old, solver_names(old)


def _source_version(source) -> int:
    with h5py.File(source, "r") as f:
        return int(f.attrs["format_version"])


def _verify_source(source: Path) -> None:
    """Verify every checksum of the finished database ``source`` and apply the value rules
    (a file of a format before checksums gets the value rules and a warning)."""
    import warnings

    sealed = _source_version(source) >= CHECKSUMS_FROM
    _integ.verify_file(source, required=sealed)
    _integ.check_file_values(source)
    if not sealed:
        warnings.warn(f"{source} is a format v{_source_version(source)} database, written "
                      "before checksums: its values pass the value rules but its bits cannot be "
                      "verified", _integ.UncheckedDatabaseWarning, stacklevel=3)


def _added_records(cfg: dict, n_old: int, added: list, comm, quiet=True) -> list | None:
    """The solvers ``added`` by ``--extend`` run on the old samples ``0 ... n_old - 1``,
    shared among the MPI ranks (sample ``i`` on rank ``i mod size``); rank 0 gets every
    record in sample order, the other ranks ``None``."""
    from threadpoolctl import threadpool_limits
    from tqdm import tqdm

    rank, size = comm.Get_rank(), comm.Get_size()
    with threadpool_limits(limits=1):
        mine = [solve_sample(cfg, i, solvers=added)
                for i in tqdm(range(rank, n_old, size), desc=f"adding {', '.join(added)}",
                              unit="sample", disable=quiet or rank != 0)]
    gathered = comm.gather(mine, root=0)
    if rank != 0:
        return None
    return sorted((r for part in gathered for r in part), key=lambda r: r["index"])


def _seed_parts_from(cfg: dict, source: Path, output: Path, n_old: int, old_solvers: list,
                     records=None) -> None:
    """Write the samples of the finished database ``source`` into ``parts`` as one chunk
    (sample ``i`` depends only on the seed and ``i``, so they are the first ``n_old``
    samples of the larger run), with ``records`` of the solvers the config adds
    (:func:`_added_records`)."""
    names = solver_names(cfg)
    added = [s for s in names if s not in old_solvers]
    parts = parts_dir_of(output)
    final = parts / f"chunk-{0:08d}-{n_old}-r0.h5"
    new = {s: {k: [] for k in _keys(cfg, s)} for s in added}
    if added and (records is None or len(records) != n_old):
        raise RuntimeError(f"--extend: the added solvers {added} ran on "
                           f"{0 if records is None else len(records)} of {n_old} samples")
    for rec in records if added else []:
        for s in added:
            for k in new[s]:
                new[s][k].append(rec["solvers"][s][k])
    sealed = _source_version(source) >= CHECKSUMS_FROM
    run = {}

    def fill(f):
        with h5py.File(source, "r") as src:
            def get(path):
                return _integ.verify_dataset(src[path], file=str(source), required=sealed)

            f.attrs["format_version"] = FORMAT_VERSION
            f["index"] = np.arange(n_old, dtype=np.int64)
            for key in src["params"]:
                f[f"params/{key}"] = get(f"params/{key}")
            missing = [p for p in _ADDED_PARAMS if p not in src]
            if missing:  # a source before format 4: per spin = the spin-symmetric values
                derived = _derived_params(get, n_old)
                for path in missing:
                    f[path] = derived[path]
            for name in names:
                for key in _keys(cfg, name):
                    path = f"solvers/{name}/{key}"
                    if name in new:
                        data = np.array(new[name][key])
                        if key == "error":
                            f.create_dataset(path, data=data.astype(object), dtype=_STR)
                        else:
                            f[path] = data
                    elif path in src:
                        f[path] = get(path)
                    else:  # a dataset newer than the source's format: not known for its samples
                        f[path] = _unknown(key, n_old)
            run.update({"mpi_size": int(np.max(np.atleast_1d(src.attrs["mpi_size"]))),
                        "extended_from": str(source), "n_samples": n_old,
                        "solvers": old_solvers,
                        "created": str(src.attrs.get("created", "")),
                        "git_hash": str(src.attrs.get("git_hash", "")),
                        "its_origin": json.loads(str(src.attrs.get("extended_from", "[]")))})
        _integ.seal(f)

    hint = _resume_hint(output)
    _integ.atomic_write(final, _integ.h5_image(fill), resume_hint=hint)
    _integ.atomic_write(parts / "run-extend.json", json.dumps(run).encode(), resume_hint=hint)


def upgrade_database(source, output) -> Path:
    """Write ``output``: the database ``source`` (an older format) in the current format,
    with checksums -- after every value rule (and every checksum, if it has them) passed
    on it.

    The data are copied unchanged; datasets the old format lacks get their "not known"
    values or are derived from the legacy parameters (:data:`~.schema.ADDED`: from a
    version 3 file, ``params/mu_s``, ``eps_k_s``, ``V_k_s`` are ``mu``, ``eps_k``, ``V_k``
    on both spins and ``params/n_bath`` is ``K``); the root attribute ``upgraded_from``
    records the old version.  ``output`` must not exist.
    """
    from .schema import check_schema

    source, output = Path(source), Path(output)
    if not source.is_file():
        raise FileNotFoundError(f"--upgrade: no database {source}")
    if output.exists():
        raise ConfigError(f"{output} exists; --upgrade writes a new file (choose another name)")
    with h5py.File(source, "r") as f:
        if f.attrs.get("format") != FORMAT:
            raise ConfigError(f"{source} is not a triqs_mlsolver database")
        ver = int(f.attrs["format_version"])
    if ver >= FORMAT_VERSION:
        raise ConfigError(f"{source} is format v{ver}, the current format (with checksums); "
                          "there is nothing to upgrade")
    err = _check_folder(output)
    if err:
        raise ConfigError(err)
    import warnings

    with warnings.catch_warnings():  # the warning says what this function does
        warnings.simplefilter("ignore", _integ.UncheckedDatabaseWarning)
        _verify_source(source)

    def fill(f):
        with h5py.File(source, "r") as src:
            for k, v in src.attrs.items():
                f.attrs[k] = v
            for name in src:
                src.copy(src[name], f, name)
            f.attrs["format_version"] = FORMAT_VERSION
            f.attrs["upgraded_from"] = json.dumps({
                "format_version": ver, "package_version": __version__,
                "date": _dt.datetime.now(_dt.timezone.utc).isoformat()})
            ref = str(src.attrs["reference"])
            n = int(len(src["params/U"]))
            for pat, (added_in, _) in ADDED.items():
                path = pat.format(reference=ref)
                if added_in > ver and path not in f and pat.startswith("solvers/{reference}/"):
                    f[path] = _unknown(pat.rsplit("/", 1)[1], n)
            if any(p not in f for p in _ADDED_PARAMS):  # verified above
                for path, arr in _derived_params(lambda p: src[p][()], n).items():
                    if path not in f:
                        f[path] = arr
        _integ.seal(f)

    _integ.atomic_write(output, _integ.h5_image(fill), no_clobber=True,
                        resume_hint="free space there and run the upgrade again")
    check_schema(output)
    return output


def merge_parts(cfg: dict, output: Path, *, keep_parts=False) -> Path:
    """Merge the chunks of ``OUTPUT.parts`` into ``OUTPUT`` (rank 0 only)."""
    parts = parts_dir_of(output)
    done = scan_parts(parts)
    N = cfg["sampler"]["n_samples"]
    missing = sorted(set(range(N)) - set(done))
    if missing:
        raise RuntimeError(
            f"cannot merge: {len(missing)} samples missing (first {missing[:5]}); "
            "run again with --resume"
        )
    names = solver_names(cfg)
    g = cfg["grid"]
    nb = cfg["sampler"]["n_bath"]
    data = {
        "params/U": np.empty(N),
        "params/mu": np.empty(N),
        "params/beta": np.empty(N),
        "params/D": np.empty(N),
        "params/eps_k": np.empty((N, nb)),
        "params/V_k": np.empty((N, nb)),
        "params/mu_s": np.empty((N, 2)),
        "params/eps_k_s": np.empty((N, 2, nb)),
        "params/V_k_s": np.empty((N, 2, nb)),
        "params/n_bath": np.empty(N, np.int64),
    }
    for s in names:
        data.update(
            {
                f"solvers/{s}/G_tau": np.empty((N, 2, g["n_tau"])),
                f"solvers/{s}/G_l": np.empty((N, 2, g["n_l"])),
                f"solvers/{s}/density": np.empty((N, 2)),
                f"solvers/{s}/double_occupancy": np.empty(N),
                f"solvers/{s}/wall_time": np.empty(N),
                f"solvers/{s}/ok": np.empty(N, bool),
                f"solvers/{s}/error": np.empty(N, object),
            }
        )
    ref = cfg["solvers"]["reference"]
    for key in REFERENCE_ERROR_KEYS:
        data[f"solvers/{ref}/{key}"] = _unknown(key, N)
    for path in sorted(set(done.values())):
        with h5py.File(path, "r") as f:
            # chunks of this version carry checksums; those of an older run have none
            sealed = int(f.attrs.get("format_version", 0)) >= CHECKSUMS_FROM
            idx = _integ.verify_dataset(f["index"], file=str(path), required=sealed)

            def get(key, f=f, path=path, sealed=sealed):
                return _integ.verify_dataset(f[key], file=str(path), required=sealed)

            derived = (_derived_params(get, len(idx))
                       if any(p not in f for p in _ADDED_PARAMS) else {})
            for key in data:
                if key not in f and key in derived:  # a chunk of a run before format 4
                    data[key][idx] = derived[key]
                    continue
                if key not in f and key.rsplit("/", 1)[1] in REFERENCE_ERROR_KEYS:
                    continue  # a chunk of a run before format 2: the fill value stands
                vals = get(key)
                if key.endswith("/error"):
                    vals = np.array(
                        [v.decode() if isinstance(v, bytes) else v for v in vals], dtype=object
                    )
                data[key][idx] = vals
    ok = np.all([data[f"solvers/{s}/ok"] for s in names], axis=0)
    reason = np.array(
        [
            "; ".join(
                f"{s}: {data[f'solvers/{s}/error'][i]}"
                for s in names
                if not data[f"solvers/{s}/ok"][i]
            )
            for i in range(N)
        ],
        dtype=object,
    )
    # nothing impossible gets a checksum: a damaged chunk or source stops the merge here
    fix = (f"the chunk that holds it in {parts} is damaged: delete it and continue with "
           "--resume (its samples are computed again)")
    _integ.check_params({k.split("/", 1)[1]: v for k, v in data.items()
                         if k.startswith("params/")}, file=str(output), fix=fix)
    for s in names:
        _integ.check_solver_values(
            s, {k: data[f"solvers/{s}/{k}"] for k in ("G_tau", "G_l", "density",
                                                       "double_occupancy", "wall_time")},
            data["params/beta"], ok=data[f"solvers/{s}/ok"], file=str(output), fix=fix)
    runs = [json.loads(p.read_text()) for p in sorted(parts.glob("run-*.json"))]
    extended = [r for r in runs if "extended_from" in r]

    def fill(f):
        f.attrs.update(
            format=FORMAT,
            format_version=FORMAT_VERSION,
            package_version=__version__,
            git_hash=_git_hash(),
            created=_dt.datetime.now(_dt.timezone.utc).isoformat(),
            config=config_to_toml(cfg),
            seed=cfg["sampler"]["seed"],
            n_samples=N,
            mpi_size=np.array([r["mpi_size"] for r in runs] or [1], dtype=np.int64),
            solvers=np.array(names, dtype=_STR),
            reference=cfg["solvers"]["reference"],
            n_iw=g["n_iw"],
        )
        if extended:
            f.attrs["extended_from"] = json.dumps(extended)
        f["tau_over_beta"] = stored_tau_over_beta(g)
        f["status/ok"] = ok
        f.create_dataset("status/reason", data=reason, dtype=_STR)
        for key, arr in data.items():
            if key.endswith("/error"):
                f.create_dataset(key, data=arr, dtype=_STR, compression="gzip")
            elif arr.ndim > 1:
                f.create_dataset(
                    key,
                    data=arr,
                    compression="gzip",
                    shuffle=True,
                    chunks=(min(N, 256), *arr.shape[1:]),
                )
            else:
                f[key] = arr
        from ..solvers import get_solver

        for s in names:
            grp = f[f"solvers/{s}"]
            grp.attrs["options"] = json.dumps(get_solver(s).options, default=str)
            grp.attrs["role"] = "reference" if s == cfg["solvers"]["reference"] else "cheap"
        _integ.seal(f)

    _integ.atomic_write(output, _integ.h5_image(fill), no_clobber=True,
                        resume_hint=f"free space there, then continue with 'triqs-mlsolver "
                        f"generate {parts}/config.toml -o {output} --resume' (every sample is "
                        f"computed and kept in {parts}: only the merge is redone)")
    if not keep_parts:
        for p in parts.iterdir():
            p.unlink()
        parts.rmdir()
    return output


def _check_folder(output: Path) -> str | None:
    out_dir = output.resolve().parent
    if not out_dir.is_dir():
        return f"output folder {out_dir} does not exist; create it or choose another -o"
    if not os.access(out_dir, os.W_OK):
        return f"output folder {out_dir} is not writable; choose another -o"
    return None


def _take_lock(output: Path, quiet: bool):
    """``(lock or None, error message or None)``: rank 0's :class:`OutputLock` of ``output``."""
    import sys

    lock = _integ.OutputLock(lock_path_of(output))
    try:
        lock.acquire()
    except _integ.OutputLockedError as exc:
        return None, f"{exc} (lock file {lock.path})"
    except OSError as exc:
        return None, f"cannot create the lock file {lock.path}: {exc}"
    if lock.took_over:
        old = lock.took_over
        print(f"triqs-mlsolver generate: taking over the lock {lock.path} of an earlier run "
              f"that is gone (pid {old.get('pid', '?')} on {old.get('host', '?')}, started "
              f"{old.get('started', '?')}, is not running)", file=sys.stderr, flush=True)
    return lock, None


def generate(
    cfg: dict, output, *, resume=False, comm=None, quiet=False, keep_parts=False, max_chunks=None,
    extend=None, recompute=(),
):
    """Generate the database ``output`` described by the validated ``cfg`` (all ranks call it).

    ``extend``: a finished database made with the same config but fewer samples and/or
    fewer cheap solvers; its samples are reused (they are the first ones of this run) and
    only what is new is solved.  ``recompute``: cheap solvers of ``extend`` whose stored
    results are not reused but solved again on its samples (after a change of the solver's
    code); every other column is copied.  ``max_chunks`` stops each rank after that many chunks
    without merging (for tests of interrupted runs).  Returns the output path (rank 0) or None.

    Rank 0 holds ``OUTPUT.lock`` for the whole run (another ``generate`` on ``output`` is
    refused with :class:`ConfigError`, before any work, naming the lock's owner); the other
    ranks learn the outcome by broadcast.  A full disk raises :class:`DiskFullError` on
    every rank (one line: the file, ENOSPC, the ``--resume`` command).
    """
    comm = comm or _mpi.world
    rank = comm.Get_rank()
    output = Path(output)
    lock, err, n_old, old_solvers = None, None, 0, []
    if rank == 0:
        err = _check_folder(output)
        if err is None:
            lock, err = _take_lock(output, quiet)
    try:
        if rank == 0 and err is None and extend is not None:
            extend = Path(extend)
            if not extend.is_file():
                err = f"--extend {extend}: no such database file"
            elif extend.resolve() == output.resolve():
                err = ("--extend and -o name the same file; write the larger database to a "
                       "new file")
            else:
                err, n_old, old_solvers = _check_extend(cfg, extend, tuple(recompute))
                # a recomputed solver is solved again on the old samples, like an added one
                old_solvers = [s for s in old_solvers if s not in recompute]
        if rank == 0 and err is None and recompute and extend is None:
            err = "--recompute needs --extend OLD.h5 (the database whose solvers to solve again)"
        if rank == 0 and err is None:
            try:
                err = _prepare(cfg, output, resume)
            except DiskFullError as exc:
                err = exc
        err = comm.bcast(err, root=0)
        if isinstance(err, DiskFullError):
            raise DiskFullError(str(err))
        if err:
            raise ConfigError(err)
        return _run(cfg, output, comm, resume=resume, quiet=quiet, keep_parts=keep_parts,
                    max_chunks=max_chunks, extend=extend, n_old=n_old, old_solvers=old_solvers)
    finally:
        if lock is not None:
            lock.release()


def _run(cfg, output, comm, *, resume, quiet, keep_parts, max_chunks, extend, n_old,
         old_solvers):
    """The work of :func:`generate` once rank 0 holds the lock and the checks passed."""
    from threadpoolctl import threadpool_limits
    from tqdm import tqdm

    rank, size = comm.Get_rank(), comm.Get_size()
    parts = parts_dir_of(output)
    failure = None
    job = None  # (n_old, added solvers) while the old samples are still to be copied
    if rank == 0 and extend is not None and not set(range(n_old)) <= set(scan_parts(parts)):
        job = (n_old, [s for s in solver_names(cfg) if s not in old_solvers])
    job = comm.bcast(job, root=0)
    records = None
    if job is not None and job[1]:  # every rank runs the added solvers on its share
        records = _added_records(cfg, job[0], job[1], comm, quiet=quiet)
    if rank == 0:
        try:
            if job is not None:
                _seed_parts_from(cfg, extend, output, n_old, old_solvers, records=records)
            n_run = len(list(parts.glob("run-*.json")))
            _integ.atomic_write(parts / f"run-{n_run:03d}.json", json.dumps(
                {"mpi_size": size, "started": _dt.datetime.now(_dt.timezone.utc).isoformat()}
            ).encode(), resume_hint=_resume_hint(output))
        except DiskFullError as exc:
            failure = str(exc)
    failure = comm.bcast(failure, root=0)
    if failure:
        raise DiskFullError(failure)
    done = comm.bcast(sorted(scan_parts(parts)) if rank == 0 else None, root=0)
    N = cfg["sampler"]["n_samples"]
    todo = sorted(set(range(N)) - set(done))[rank::size]
    chunk = cfg["output"]["chunk_size"]
    bar = tqdm(
        total=N,
        initial=len(done),
        desc="samples",
        unit="sample",
        smoothing=0.05,
        disable=quiet or rank != 0,
        dynamic_ncols=True,
    )
    n_chunks = 0
    try:
        with threadpool_limits(limits=1):
            for start in range(0, len(todo), chunk):
                if max_chunks is not None and n_chunks >= max_chunks:
                    break
                records = []
                for i in todo[start : start + chunk]:
                    records.append(solve_sample(cfg, i))
                    if rank == 0:
                        bar.n = min(N, _count_done(parts) + len(records))
                        bar.refresh()
                _write_chunk(parts, records, rank, output)
                n_chunks += 1
    except DiskFullError as exc:  # the other ranks finish their chunk and stop with it
        failure = str(exc)
    failures = [f for f in comm.allgather(failure) if f]
    if failures:
        bar.close()
        raise DiskFullError(failures[0])
    result = None
    if rank == 0:
        bar.n = _count_done(parts)
        bar.refresh()
        bar.close()
        if max_chunks is None:
            try:
                result = merge_parts(cfg, output, keep_parts=keep_parts)
            except Exception as exc:
                failure = (type(exc).__name__, str(exc))
                comm.bcast(failure, root=0)
                raise
    failure = comm.bcast(failure, root=0)
    if failure:  # ranks other than 0: rank 0 raised the original
        raise (DiskFullError if failure[0] == "DiskFullError" else RuntimeError)(
            f"rank 0 failed to merge: {failure[0]}: {failure[1]}")
    return result
