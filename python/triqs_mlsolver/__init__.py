# SPDX-License-Identifier: Apache-2.0
"""triqs_mlsolver: machine learning as a DMFT impurity solver, in the TRIQS ecosystem.

``from triqs_mlsolver import Solver`` gives :class:`~triqs_mlsolver.mlsolver.MLSolver`,
the drop-in for ``triqs_cthyb.Solver`` (imported on first use: torch loads only then).
"""

__version__ = "0.1.0"

__all__ = ["__version__", "MLSolver", "Solver"]


def __getattr__(name):
    if name in ("MLSolver", "Solver"):
        from .mlsolver import MLSolver

        return MLSolver
    raise AttributeError(f"module 'triqs_mlsolver' has no attribute {name!r}")
