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
"not known" value, :data:`~.schema.ADDED`); ``--extend OLD.h5`` starts the
parts folder from a finished database made with the same config but fewer
samples and/or fewer cheap solvers (its samples are the first ones of the
larger run, see below; added cheap solvers are run on them on rank 0; a
dataset that OLD's format predates gets its "not known" value), so a
database grows without recomputing its reference.  At the end
rank 0 merges the chunks, sorted by sample index, into ``OUTPUT`` (again
through a temporary file and a rename) and removes the parts folder.

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
from ..solvers import solve_aim
from .config import ConfigError, config_to_toml
from .sampler import sample_arrays, sample_params
from .schema import ADDED, FORMAT, FORMAT_VERSION, REFERENCE_ERROR_KEYS, SCHEMA

__all__ = ["generate", "solve_sample", "reference_error_of", "merge_parts", "parts_dir_of",
           "scan_parts"]

#: Per-sample keys of every solver (``solvers/{solver}/<key>``).
SOLVER_KEYS = ("G_tau", "G_l", "density", "double_occupancy", "wall_time", "ok", "error")

_CHUNK_RE = re.compile(r"chunk-(\d+)-(\d+)-r(\d+)\.h5$")
_STR = h5py.string_dtype()


def parts_dir_of(output) -> Path:
    out = Path(output)
    return out.with_name(out.name + ".parts")


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


def solve_sample(cfg: dict, i: int, solvers=None) -> dict:
    """Solve sample ``i`` with every configured solver (or only ``solvers``); failures are
    recorded, not raised."""
    g = cfg["grid"]
    params = sample_params(cfg, i)
    rec = {"index": i, "params": sample_arrays(params), "solvers": {}}
    reference = cfg["solvers"]["reference"]
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
            sol = solve_aim(name, params, n_iw=g["n_iw"], n_tau=g["n_tau"], n_l=g["n_l"])
            if not (np.all(np.isfinite(sol.G_tau)) and np.all(np.isfinite(sol.G_l))):
                raise FloatingPointError("the solution contains NaN or infinite values")
            r.update(
                ok=True,
                G_tau=np.asarray(sol.G_tau, float),
                G_l=np.asarray(sol.G_l, float),
                density=np.asarray(sol.density, float),
                double_occupancy=(
                    np.nan if sol.double_occupancy is None else float(sol.double_occupancy)
                ),
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


def _write_chunk(parts: Path, records: list, rank: int) -> Path:
    first, count = records[0]["index"], len(records)
    final = parts / f"chunk-{first:08d}-{count}-r{rank}.h5"
    tmp = final.with_suffix(".h5.tmp")
    with h5py.File(tmp, "w") as f:
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
    os.replace(tmp, final)
    return final


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
    out_dir = output.resolve().parent
    if not out_dir.is_dir():
        return f"output folder {out_dir} does not exist; create it or choose another -o"
    if not os.access(out_dir, os.W_OK):
        return f"output folder {out_dir} is not writable; choose another -o"
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
    (parts / "config.toml").write_text(text)
    return None


def _check_extend(cfg: dict, source: Path) -> tuple[str | None, int, list]:
    """``(error message or None, number of samples of source, its solvers)`` for
    ``--extend source``: the same config except a larger ``n_samples`` and/or more cheap
    solvers."""
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
    if n_new < n_old or (n_new == n_old and not added):
        return (f"{source} has {n_old} samples and the solvers {solver_names(old)} already; "
                f"give a larger n_samples (e.g. --n-samples {2 * n_old}) or more cheap solvers "
                "to extend it", 0, [])
    return None, n_old, solver_names(old)


def _seed_parts_from(cfg: dict, source: Path, parts: Path, n_old: int, old_solvers: list,
                     quiet=True) -> None:
    """Write the samples of the finished database ``source`` into ``parts`` as one chunk
    (sample ``i`` depends only on the seed and ``i``, so they are the first ``n_old``
    samples of the larger run); solvers the config adds are run on them here."""
    from tqdm import tqdm

    names = solver_names(cfg)
    added = [s for s in names if s not in old_solvers]
    final = parts / f"chunk-{0:08d}-{n_old}-r0.h5"
    tmp = final.with_suffix(".h5.tmp")
    new = {s: {k: [] for k in _keys(cfg, s)} for s in added}
    for i in tqdm(range(n_old) if added else [], desc=f"adding {', '.join(added)}",
                  unit="sample", disable=quiet):
        rec = solve_sample(cfg, i, solvers=added)
        for s in added:
            for k in new[s]:
                new[s][k].append(rec["solvers"][s][k])
    with h5py.File(source, "r") as src, h5py.File(tmp, "w") as f:
        f["index"] = np.arange(n_old, dtype=np.int64)
        for key in src["params"]:
            f[f"params/{key}"] = src[f"params/{key}"][()]
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
                    f[path] = src[path][()]
                else:  # a dataset newer than the source's format: not known for its samples
                    f[path] = _unknown(key, n_old)
        run = {"mpi_size": int(np.max(np.atleast_1d(src.attrs["mpi_size"]))),
               "extended_from": str(source), "n_samples": n_old, "solvers": old_solvers,
               "created": str(src.attrs.get("created", "")),
               "git_hash": str(src.attrs.get("git_hash", "")),
               "its_origin": json.loads(str(src.attrs.get("extended_from", "[]")))}
    os.replace(tmp, final)
    (parts / "run-extend.json").write_text(json.dumps(run))


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
            idx = f["index"][()]
            for key in data:
                if key not in f and key.rsplit("/", 1)[1] in REFERENCE_ERROR_KEYS:
                    continue  # a chunk of a run before format 2: the fill value stands
                vals = f[key][()]
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
    runs = [json.loads(p.read_text()) for p in sorted(parts.glob("run-*.json"))]
    extended = [r for r in runs if "extended_from" in r]
    tmp = output.with_name(output.name + ".tmp")
    with h5py.File(tmp, "w") as f:
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
        f["tau_over_beta"] = np.linspace(0.0, 1.0, g["n_tau"])
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
    os.replace(tmp, output)
    if not keep_parts:
        for p in parts.iterdir():
            p.unlink()
        parts.rmdir()
    return output


def generate(
    cfg: dict, output, *, resume=False, comm=None, quiet=False, keep_parts=False, max_chunks=None,
    extend=None,
):
    """Generate the database ``output`` described by the validated ``cfg`` (all ranks call it).

    ``extend``: a finished database made with the same config but fewer samples and/or
    fewer cheap solvers; its samples are reused (they are the first ones of this run) and
    only what is new is solved.  ``max_chunks`` stops each rank after that many chunks
    without merging (for tests of interrupted runs).  Returns the output path (rank 0) or None.
    """
    from threadpoolctl import threadpool_limits
    from tqdm import tqdm

    comm = comm or _mpi.world
    rank, size = comm.Get_rank(), comm.Get_size()
    output = Path(output)
    parts = parts_dir_of(output)
    err, n_old, old_solvers = None, 0, []
    if rank == 0 and extend is not None:
        extend = Path(extend)
        if not extend.is_file():
            err = f"--extend {extend}: no such database file"
        elif extend.resolve() == output.resolve():
            err = "--extend and -o name the same file; write the larger database to a new file"
        else:
            err, n_old, old_solvers = _check_extend(cfg, extend)
    if rank == 0 and err is None:
        err = _prepare(cfg, output, resume)
    err = comm.bcast(err, root=0)
    if err:
        raise ConfigError(err)
    if rank == 0 and extend is not None and not set(range(n_old)) <= set(scan_parts(parts)):
        _seed_parts_from(cfg, extend, parts, n_old, old_solvers, quiet=quiet)
    if rank == 0:
        n_run = len(list(parts.glob("run-*.json")))
        (parts / f"run-{n_run:03d}.json").write_text(
            json.dumps(
                {"mpi_size": size, "started": _dt.datetime.now(_dt.timezone.utc).isoformat()}
            )
        )
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
            _write_chunk(parts, records, rank)
            n_chunks += 1
    comm.barrier()
    result = None
    if rank == 0:
        bar.n = _count_done(parts)
        bar.refresh()
        bar.close()
        if max_chunks is None:
            result = merge_parts(cfg, output, keep_parts=keep_parts)
    comm.barrier()
    return result
