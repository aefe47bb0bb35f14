# SPDX-License-Identifier: Apache-2.0
"""``triqs-mlsolver dmft config.toml``: DMFT U scans of several solvers from a TOML config.

For every solver of ``[solvers] names`` and every sweep direction, runs
:func:`triqs_mlsolver.dmft.scan_U` over ``[scan] U`` on the configured
lattice, then prints a table (U, solver, direction, Z, n, d, m = n_up - n_dn,
insulating?, iterations, converged, model), and writes into ``[output] directory``:

* ``dmft_scan.txt``: the table;
* ``dmft_scan.h5`` (``[output] archive``): an archive in the TRIQS HDF5 scheme
  (layout in doc/dmft.rst), root attributes ``format``, ``format_version``,
  ``package_version``, ``created``, ``mpi_size`` and ``config`` (TOML);
* ``Z_of_U.png`` (``[output] plot``): ``Z0(U)`` and ``-beta G(beta/2)/pi``, one
  curve per solver and direction.

Under ``mpirun`` the (solver, direction) sweeps are shared out over the ranks;
rank 0 prints, shows the progress bar and writes the files.

The table's ``model`` column and the archive's ``history/fallback`` and
``history/out_of_domain`` mark every iteration where an ML solver's model was not
trusted (served by the reference ED, or used outside its domain with
``fallback='none'``).  An output directory with files of an earlier run is refused
unless ``--overwrite`` is given.

Exit codes: 0 success (points that did not converge are listed as a warning),
1 a solver failed on some sweep, 2 bad command line or configuration, or output
files of an earlier run (without ``--overwrite``).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

#: Layout name and version of ``dmft_scan.h5`` (root attributes).
ARCHIVE_FORMAT = "triqs_mlsolver.dmft_scan"
ARCHIVE_FORMAT_VERSION = 1
#: The files a run writes into the output directory.
TABLE_FILE, ARCHIVE_FILE, PLOT_FILE = "dmft_scan.txt", "dmft_scan.h5", "Z_of_U.png"


def add_parser(sub):
    p = sub.add_parser(
        "dmft", help="DMFT U scans (up/down) of several solvers from a TOML config",
        description="Run DMFT U scans (up from the metal, down from the insulator) of every "
                    "configured solver; print a table, write an HDF5 archive and a Z(U) plot. "
                    "Start from `triqs-mlsolver dmft --print-example > dmft.toml`.",
    )
    p.add_argument("config", nargs="?", type=Path, help="TOML configuration (keys: doc/dmft.rst)")
    p.add_argument("-o", "--output", type=Path, default=None,
                   help="output directory (overrides [output] directory)")
    p.add_argument("--print-example", action="store_true",
                   help="print the shipped example configuration and exit")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the output files of an earlier run in the output directory "
                        "(without it, existing dmft_scan.txt/.h5 or Z_of_U.png are refused)")
    verb = p.add_mutually_exclusive_group()
    verb.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                      help="print only the table (no progress bar)")
    verb.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                      help="also print the settings in force and every point as it finishes")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from .. import mpi
    from ..dmft.config import config_to_toml, example_config_path, load_config

    quiet = bool(getattr(args, "quiet", False))
    verbose = bool(getattr(args, "verbose", False))
    if quiet and verbose:
        print("triqs-mlsolver dmft: error: --quiet and --verbose exclude each other",
              file=sys.stderr)
        return 2
    if args.print_example:
        if mpi.is_master_node():
            print(example_config_path().read_text(), end="")
        return 0
    if args.config is None:
        print("triqs-mlsolver dmft: error: give a config file (start from "
              "`triqs-mlsolver dmft --print-example > dmft.toml`)", file=sys.stderr)
        return 2
    cfg = load_config(args.config)  # DMFTConfigError (ValueError): exit code 2
    outdir = args.output if args.output is not None else Path(cfg["output"]["directory"])
    master = mpi.is_master_node()
    writes = cfg["output"]["archive"] or cfg["output"]["plot"]
    if writes and not getattr(args, "overwrite", False):
        names = [TABLE_FILE] + ([ARCHIVE_FILE] if cfg["output"]["archive"] else []) \
            + ([PLOT_FILE] if cfg["output"]["plot"] else [])
        there = [n for n in names if (outdir / n).exists()]
        if there:
            if master:
                print(f"triqs-mlsolver dmft: error: {outdir} already holds "
                      f"{', '.join(there)} from an earlier run; pass --overwrite to replace "
                      "them, or choose another directory with -o DIR", file=sys.stderr)
            return 2
    if master and writes:
        outdir.mkdir(parents=True, exist_ok=True)
    if master and verbose:
        print(f"# triqs-mlsolver dmft {args.config}: settings in force\n"
              + config_to_toml(cfg))

    t0 = time.perf_counter()
    preflight(cfg)  # a solver that rejects its options: DMFTConfigError, exit code 2
    results, failures = _run_sweeps(cfg, quiet=quiet, verbose=verbose and master)
    gathered = mpi.gather((results, failures))
    if not master:
        return 0
    sweeps = [s for r, _ in gathered for s in r]
    failures = [f for _, f in gathered for f in f]
    order = {n: i for i, n in enumerate(cfg["solvers"]["names"])}
    sweeps.sort(key=lambda s: (order[s.solver], s.direction != "up"))

    m = cfg["model"]
    mu_txt = "mu = U/2 (half filling)" if m["mu"] == "half-filling" else f"mu = {m['mu']:g}"
    table = format_table(sweeps)
    if not quiet:
        print(f"\n{m['lattice']} lattice, D = {m['D']:g}, beta = {m['beta']:g}, {mu_txt}; "
              "Z = 1/(1 - Im Sigma(i w_0)/w_0), a finite-T estimate; insulating: "
              "-beta G(beta/2)/pi < 0.1")
    print(table)
    written = []
    if cfg["output"]["archive"] or cfg["output"]["plot"]:
        (outdir / TABLE_FILE).write_text(table + "\n")
        written.append(outdir / TABLE_FILE)
    if cfg["output"]["archive"]:
        written.append(write_archive(outdir / ARCHIVE_FILE, cfg, sweeps))
    if cfg["output"]["plot"] and sweeps:
        written.append(plot_z(outdir / PLOT_FILE, cfg, sweeps))
    served = [(s.solver, s.direction, u, f, o) for s in sweeps
              for u, f, o in zip(s.U, s.fallback_iterations, s.out_of_domain_iterations)
              if f or o]
    if served:
        pts = ", ".join(f"{n} {d} U={u:g}" for n, d, u, _, _ in served)
        print(f"note: at {len(served)} point(s) the ML model was not trusted for some "
              f"iterations ({pts}); column 'model': 'ED k/n' = k iterations solved by the "
              "reference ED (the fallback), 'OOD k/n' = k used outside the model's domain "
              "(fallback='none'). Archive: history/fallback, history/out_of_domain",
              file=sys.stderr)
    not_conv = [(s.solver, s.direction, u) for s in sweeps
                for u, c in zip(s.U, s.converged) if not c]
    if not_conv:
        pts = ", ".join(f"{n} {d} U={u:g}" for n, d, u in not_conv)
        print(f"warning: {len(not_conv)} point(s) did not converge within max_iter = "
              f"{cfg['loop']['max_iter']} ({pts}); raise [loop] max_iter or lower mixing",
              file=sys.stderr)
    for msg in failures:
        print(f"triqs-mlsolver dmft: error: {msg}", file=sys.stderr)
    if not quiet and written:
        print("wrote " + ", ".join(str(w) for w in written)
              + f" in {time.perf_counter() - t0:.1f} s")
    return 1 if failures else 0


def preflight(cfg):
    """One impurity solve per solver (first U, metallic start, the configured grids and
    options), so that options a solver rejects (wrong type, missing ``n_bath`` of ED, ...)
    are reported as a configuration error before any sweep starts."""
    from ..aim.params import AIMParams
    from ..dmft.config import DMFTConfigError, lattice_from_config
    from ..gf.transforms import matsubara_freqs
    from ..solvers import solve_aim

    m, lp = cfg["model"], cfg["loop"]
    lattice = lattice_from_config(cfg)
    U = cfg["scan"]["U"][0]
    mu = U / 2 if m["mu"] == "half-filling" else m["mu"]
    iw = matsubara_freqs(m["beta"], lp["n_iw"])
    delta = lattice.initial_hybridisation("metal", iw, mu, U)
    for name in cfg["solvers"]["names"]:
        opts = cfg["solvers"].get(name, {})
        params = AIMParams(U=U, mu=mu, beta=m["beta"], Delta_iw=delta, D=lattice.half_bandwidth)
        try:
            solve_aim(name, params, n_iw=lp["n_iw"], n_tau=lp["n_tau"], n_l=lp["n_l"], **opts)
        except (ValueError, TypeError) as exc:
            raise DMFTConfigError(
                f"solver {name!r} rejects this configuration ([solvers.{name}] = {opts}, "
                f"[loop] n_iw/n_tau/n_l = {lp['n_iw']}/{lp['n_tau']}/{lp['n_l']}): {exc}"
            ) from None


def _run_sweeps(cfg, *, quiet, verbose):
    """This rank's share of the (solver, direction) sweeps: ``(sweeps, failure messages)``."""
    from tqdm import tqdm

    from .. import mpi
    from ..dmft import scan_U
    from ..dmft.config import lattice_from_config

    m, lp, sc = cfg["model"], cfg["loop"], cfg["scan"]
    lattice = lattice_from_config(cfg)
    directions = ["up", "down"] if sc["direction"] == "both" else [sc["direction"]]
    tasks = [(n, d) for n in cfg["solvers"]["names"] for d in directions]
    mine = tasks[mpi.rank::mpi.size]
    bar = tqdm(total=len(mine) * len(sc["U"]), desc="DMFT", unit="point", file=sys.stderr,
               disable=quiet or not mpi.is_master_node())
    results, failures = [], []

    for name, direction in mine:
        def progress(d, r, name=name):
            bar.update()
            bar.set_postfix_str(f"{name} {d} U={r.U:g}")
            if verbose:
                bar.write(f"  {name:10s} {d:4s} U={r.U:6.3f}  Z0={np.mean(r.Z):.4f}  "
                          f"-bG(b/2)/pi={r.g_beta_half:.4f}  it={r.iterations}"
                          f"{'' if r.converged else ' (not converged)'}")

        try:
            scan = scan_U(name, sc["U"], m["beta"], direction=direction, lattice=lattice,
                          mu=None if m["mu"] == "half-filling" else m["mu"],
                          n_iw=lp["n_iw"], n_tau=lp["n_tau"], n_l=lp["n_l"],
                          mixing=lp["mixing"], tol=lp["tol"], max_iter=lp["max_iter"],
                          solver_options=cfg["solvers"].get(name, {}), callback=progress)
        except Exception as exc:  # a solver failure: report it, go on with the others
            failures.append(f"solver {name!r}, {direction} sweep failed: "
                            f"{type(exc).__name__}: {exc}")
            continue
        results.extend(scan.sweeps)
    bar.close()
    return results, failures


def _trust_text(s, i):
    """The ``model`` column: how many iterations the ML model served, the reference ED
    served (fallback) or the model served outside its domain (fallback='none')."""
    fb, ood = int(s.fallback_iterations[i]), int(s.out_of_domain_iterations[i])
    if fb:
        return f"ED {fb}/{s.iterations[i]}"
    if ood:
        return f"OOD {ood}/{s.iterations[i]}"
    return "-"


def format_table(sweeps) -> str:
    """The result table, one line per (solver, direction, U).

    ``m`` is ``n_up - n_dn`` of the impurity (the staggered magnetisation on
    ``bethe_afm``).  The ``model`` column marks points where an ML solver's model was not trusted:
    ``ED k/n`` -- k of the n iterations were served by the reference ED (the fallback);
    ``OOD k/n`` -- k iterations used the model outside its domain (``fallback='none'``);
    ``-`` -- every iteration by the model (or a solver without a model)."""
    head = (f"{'U':>6s}  {'solver':10s} {'dir':4s} {'Z':>8s} {'n':>7s} {'d':>8s} "
            f"{'m':>7s} {'insulating':>10s} {'iter':>5s} {'converged':>9s} {'model':>9s}")
    lines = [head, "-" * len(head)]
    for s in sweeps:
        for i, U in enumerate(s.U):
            d = s.double_occupancy[i]
            dtxt = f"{d:8.5f}" if math.isfinite(d) else f"{'n/a':>8s}"
            lines.append(
                f"{U:6.3f}  {s.solver:10s} {s.direction:4s} {s.Z[i]:8.4f} {s.n[i]:7.4f} "
                f"{dtxt} {s.magnetisation[i]:7.4f} {'yes' if s.insulating[i] else 'no':>10s} "
                f"{s.iterations[i]:5d} "
                f"{'yes' if s.converged[i] else 'NO':>9s} {_trust_text(s, i):>9s}")
    return "\n".join(lines)


def write_archive(path, cfg, sweeps) -> Path:
    """Write the scan to ``path`` (TRIQS HDF5 scheme), layout in doc/dmft.rst.

    ``config`` (TOML), ``package_version``; ``<solver>/<direction>/summary`` (the
    :class:`~triqs_mlsolver.dmft.Sweep` arrays) and
    ``<solver>/<direction>/U_<U>/{parameters, history, result/}`` per point; the
    root attributes make the file self-describing.
    """
    import h5py

    from .. import __version__, mpi
    from ..dmft._archive import ArchiveTarget, storable
    from ..dmft.config import config_to_toml
    from ..dmft.loop import write_run
    from ..gf import HDFArchive

    toml_text = config_to_toml(cfg)
    with HDFArchive(path, "w") as ar:
        ar["config"] = toml_text
        ar["package_version"] = __version__
        ar["format"] = ARCHIVE_FORMAT
    for s in sweeps:
        base = f"{s.solver}/{s.direction}"
        ArchiveTarget(path, base, fresh=False).write({"summary": storable(s.as_dict())})
        for run in s.runs:
            write_run(ArchiveTarget(path, f"{base}/U_{run.U:.6g}", fresh=True), run,
                      parameters=True)
    with h5py.File(path, "a") as f:
        f.attrs["format"] = ARCHIVE_FORMAT
        f.attrs["format_version"] = ARCHIVE_FORMAT_VERSION
        f.attrs["package_version"] = __version__
        f.attrs["created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        f.attrs["mpi_size"] = mpi.size
        f.attrs["config"] = toml_text
    return Path(path)


def plot_z(path, cfg, sweeps) -> Path:
    """``Z0(U)`` and ``-beta G(beta/2)/pi`` against ``U``: one curve per solver and direction."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    colours = {}
    for s in sweeps:
        style = dict(marker="o", ls="-") if s.direction == "up" else dict(
            marker="s", ls="--", mfc="none")
        kw = {"color": colours[s.solver]} if s.solver in colours else {}
        (line,) = axes[0].plot(s.U, s.Z, label=f"{s.solver} ({s.direction})", **style, **kw)
        colours.setdefault(s.solver, line.get_color())
        axes[1].plot(s.U, s.g_beta_half, color=line.get_color(), **style)
    axes[0].set_ylabel(r"$Z_0 = 1/(1-\mathrm{Im}\Sigma(i\omega_0)/\omega_0)$")
    axes[1].set_ylabel(r"$-\beta G(\beta/2)/\pi$")
    for ax in axes:
        ax.set_xlabel(f"U / D (D = {cfg['model']['D']:g})")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    m = cfg["model"]
    fig.suptitle(f"DMFT, {m['lattice']} lattice, beta = {m['beta']:g}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
