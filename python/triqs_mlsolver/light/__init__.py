# SPDX-License-Identifier: Apache-2.0
"""TRIQS APIs that only the light TRIQS layer serves (no real TRIQS installed).

``triqs-mlsolver run`` serves ``triqs``, ``h5`` and ``pytriqs`` from this package's
own code when TRIQS is not importable (:mod:`triqs_mlsolver.cli.run`).  The Green's
functions, operators, archives and MPI shims live in :mod:`triqs_mlsolver.gf`,
:mod:`triqs_mlsolver.operators` and :mod:`triqs_mlsolver.mpi`; what scripts import
beyond them (lattices, ``SumkDiscreteFromLattice``, ``h5diff``, ...) lives here.

Each submodule listed in :data:`SUBMODULES` declares ``SERVED``:
``{TRIQS module name: tuple of the names it exports there}``.  The names are TRIQS's
own spelling; everything else in the submodule is private to the layer.
"""

from __future__ import annotations

import importlib

#: Submodules of this package that declare ``SERVED`` (a missing one is skipped).
SUBMODULES = ("lattice", "sumk", "utility", "plot", "atom_diag")


def served_modules() -> dict:
    """``{TRIQS module name: (source module, exported names)}`` of every submodule."""
    table = {}
    for sub in SUBMODULES:
        full = f"{__name__}.{sub}"
        try:
            mod = importlib.import_module(full)
        except ModuleNotFoundError as exc:
            if exc.name == full:
                continue
            raise
        for name, names in mod.SERVED.items():
            table[name] = (mod, tuple(names))
    return table
