# SPDX-License-Identifier: Apache-2.0
"""``triqs-mlsolver generate`` and ``triqs-mlsolver inspect``."""

from __future__ import annotations

from pathlib import Path


def add_parsers(sub):
    g = sub.add_parser(
        "generate",
        help="generate a training database (MPI: mpirun -n N triqs-mlsolver generate ...)",
        description="Solve random AIMs with every configured solver and write an HDF5 "
                    "database. Run under mpirun for several ranks; a killed run continues "
                    "with --resume.",
    )
    g.add_argument("config", nargs="?", type=Path, default=None,
                   help="TOML config (default: the shipped single-band recipe "
                        "data/single_band_database.toml, 10000 samples, the default model's "
                        "database; keys a config file leaves out take the seed recipe's "
                        "values, see doc/database.rst)")
    g.add_argument("-o", "--output", type=Path, required=True, help="database file to write")
    g.add_argument("--resume", action="store_true",
                   help="continue an interrupted run (same config and output)")
    g.add_argument("--keep-parts", action="store_true",
                   help="keep the chunk files after the merge")
    g.add_argument("--n-samples", type=int, default=None,
                   help="override [sampler] n_samples of the config")
    g.add_argument("--from", type=Path, default=None, metavar="VISITED.h5", dest="visited",
                   help="the AIMs a solver recorded (MLSolver(record=...)): sampler mode "
                        "'visited', one sample per visit (spin-polarised ones stored per "
                        "spin), its hybridisation fitted by [sampler] n_bath sites per spin; "
                        "[sampler] visited_only = "
                        "'out_of_domain' keeps the visits the model was not trusted for")
    g.add_argument("--extend", type=Path, default=None, metavar="OLD.h5",
                   help="reuse a finished database made with the same config but fewer "
                        "samples and/or fewer cheap solvers; only what is new is solved")
    g.add_argument("--recompute", nargs="+", default=(), metavar="SOLVER",
                   help="with --extend: solve these cheap solvers of OLD.h5 again on its "
                        "samples instead of copying their results (after a change of a "
                        "solver's code)")
    g.set_defaults(func=run_generate)

    i = sub.add_parser("inspect", help="summarise a database; plots; TRIQS export",
                       description="Counts, failures, parameter ranges, timings, the "
                                   "reference's own error estimate (median/max, how many "
                                   "not converged, bath sizes) and the per-solver error of "
                                   "G(tau) against the reference (MAE/RMS/max, per beta).")
    i.add_argument("database", type=Path)
    i.add_argument("--plot", type=Path, metavar="DIR", help="write PNG plots into DIR")
    i.add_argument("--sample", type=int, default=0, help="sample shown in the G(tau) plot")
    i.add_argument("--export", nargs=2, metavar=("I", "OUT"),
                   help="write sample I as TRIQS BlockGfs to the archive OUT")
    i.add_argument("--check", action="store_true",
                   help="verify the layout against the schema, every checksum and the value "
                        "rules (non-finite or impossible values, named by sample)")
    i.add_argument("--upgrade", type=Path, metavar="NEW.h5", default=None,
                   help="write a copy of a database of an older format in the current "
                        "format (checksums; per-spin parameters and n_bath derived from the "
                        "spin-symmetric ones), after checking every value and checksum")
    i.set_defaults(func=run_inspect)


def default_recipe() -> Path:
    """The recipe ``generate`` runs without a config: the single-band database (the default
    model's)."""
    return Path(__file__).resolve().parents[1] / "data" / "single_band_database.toml"


def run_generate(args) -> int:
    import sys

    from .. import mpi
    from ..database import ConfigError, generate, load_config, validate_config
    from ..database.integrity import DiskFullError

    cfg = load_config(default_recipe() if args.config is None else args.config)
    raw = {sec: dict(body) for sec, body in cfg.items()}
    if getattr(args, "visited", None) is not None:
        cfg = _visited_config(raw, args.visited, args.n_samples)
    elif args.n_samples is not None:
        raw["sampler"]["n_samples"] = args.n_samples
        cfg = validate_config(raw)
    try:
        out = generate(cfg, args.output, resume=args.resume, quiet=args.quiet,
                       keep_parts=args.keep_parts, extend=args.extend,
                       recompute=tuple(args.recompute))
    except (ConfigError, DiskFullError):
        if mpi.is_master_node():
            raise
        # every rank raises the same refusal: rank 0 says it once, the others exit with
        # main's code for it
        return 1 if isinstance(sys.exc_info()[1], DiskFullError) else 2
    if mpi.is_master_node() and not args.quiet:
        size = out.stat().st_size / 2**20
        print(f"wrote {out} ({cfg['sampler']['n_samples']} samples, {size:.1f} MiB)")
    return 0


def _visited_config(raw, path, n_samples):
    """The config of ``generate --from path``: sampler mode 'visited', the file's content
    hash (so --resume refuses a changed file), as many samples as it has usable visits."""
    from ..database import ConfigError, validate_config
    from ..database.sampler import visited_samples
    from ..ml.modelfile import file_sha256

    if not Path(path).is_file():
        raise ConfigError(f"--from {path}: no such file; give the file of visited AIMs a "
                          "solver recorded (MLSolver(record='visited.h5'))")
    s = raw["sampler"]
    s.update(mode="visited", visited=str(Path(path).resolve()),
             visited_sha256=file_sha256(path))
    try:
        usable, total = visited_samples(validate_config(raw))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--from {path}: {exc}") from None
    if not usable:
        if s["visited_only"] != "all" and total:
            raise ConfigError(f"--from {path}: none of its {total} visits is out of the "
                              "model's domain; use [sampler] visited_only = 'all'")
        raise ConfigError(f"--from {path}: the file holds no visits")
    if n_samples is not None and n_samples > len(usable):
        raise ConfigError(f"--n-samples {n_samples}: {path} has {len(usable)} usable visits")
    s["n_samples"] = len(usable) if n_samples is None else n_samples
    return validate_config(raw)


def run_inspect(args) -> int:
    import warnings

    from ..database import Database, export_sample, plot_database, summary
    from ..database.integrity import UncheckedDatabaseWarning

    if args.upgrade is not None:
        from ..database.generate import upgrade_database

        out = upgrade_database(args.database, args.upgrade)
        print(f"wrote {out} (format v{Database(out).format_version}, with checksums; every "
              "value passed the value rules)")
        return 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UncheckedDatabaseWarning)
        db = Database(args.database)
    for w in caught:  # said once, as a line of the report (not a Python warning)
        if issubclass(w.category, UncheckedDatabaseWarning):
            print(f"warning: {w.message}")
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if args.check:
        sizes = db.check()
        print(f"schema ok (format v{db.format_version}): {sizes}")
        n = db.verify()
        if db.checksums:
            print(f"checksums ok: {n} datasets and the attributes; values ok (the value rules "
                  "of doc/database.rst)")
        else:
            print(f"checksums: none (format v{db.format_version}, written before checksums): "
                  "the bits are NOT verified; values ok (the value rules of doc/database.rst)")
    print(summary(db))
    if args.plot:
        for f in plot_database(db, args.plot, sample=args.sample):
            print(f"wrote {f}")
    if args.export:
        try:
            idx = int(args.export[0])
        except ValueError:
            raise ValueError(
                f"--export takes a sample index and a file, got {args.export}"
            ) from None
        print(f"wrote {export_sample(db, idx, args.export[1])}")
    return 0
