# SPDX-License-Identifier: Apache-2.0
"""``triqs-mlsolver``: command-line entry point.

Sub-commands (``triqs-mlsolver COMMAND --help`` for each):

* ``demo``     Bethe-lattice Mott scan with the available solvers: table + Z(U) plot.
* ``dmft``     DMFT U scans of several solvers from a TOML config: table, archive, plot.
* ``generate`` MPI-parallel, crash-safe generation of a training database.
* ``inspect``  summary, error tables, plots and TRIQS export of a database.
* ``train``, ``evaluate``, ``gridsearch``, ``model-info``  the correction models.
* ``solvers``  list the registered impurity solvers.
* ``run``      an unmodified TRIQS script, with its impurity solver served here.

Exit codes: 0 success, 1 runtime failure, 2 bad command line or input.
"""

from __future__ import annotations

import argparse
import sys

from .. import __version__
from ..errors import TriqsMLSolverError

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="triqs-mlsolver",
        description="Machine learning as a DMFT impurity solver (TRIQS ecosystem).",
    )
    p.add_argument("--version", action="version", version=f"triqs-mlsolver {__version__}")
    verb = p.add_mutually_exclusive_group()
    verb.add_argument("-q", "--quiet", action="store_true", help="print only results")
    verb.add_argument("-v", "--verbose", action="store_true", help="print more detail")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    from . import database, demo, dmft, ml, run

    demo.add_parser(sub)
    dmft.add_parser(sub)
    database.add_parsers(sub)
    ml.add_parsers(sub)
    run.add_parser(sub)
    s = sub.add_parser("solvers", help="list the registered impurity solvers")
    s.set_defaults(func=_cmd_solvers)
    return p


def _cmd_solvers(args) -> int:
    from ..solvers import available_solvers, get_solver

    for name in available_solvers():
        spec = get_solver(name)
        print(f"{name:12s} {spec.description}")
        if args.verbose and spec.options:
            print(f"{'':12s} options: {spec.options}")
    return 0


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, KeyError, FileNotFoundError, IndexError) as exc:
        print(f"triqs-mlsolver {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except TriqsMLSolverError as exc:  # ran, but failed (e.g. training diverged)
        print(f"triqs-mlsolver {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
