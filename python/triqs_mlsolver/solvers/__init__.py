# SPDX-License-Identifier: Apache-2.0
"""AIM solvers behind one protocol (see :mod:`triqs_mlsolver.solvers.base`)."""

from .base import (
    Solver,
    SolverSpec,
    available_solvers,
    get_solver,
    params_from_g0,
    parse_h_int,
    register_solver,
    solve_aim,
)
from .solution import AIMSolution

__all__ = [
    "Solver",
    "SolverSpec",
    "AIMSolution",
    "available_solvers",
    "get_solver",
    "register_solver",
    "solve_aim",
    "parse_h_int",
    "params_from_g0",
    "HubbardISolver",
    "IPTSolver",
    "NCASolver",
    "EDSolver",
]


class HubbardISolver(Solver):
    """TRIQS-style Hubbard-I solver (see :mod:`triqs_mlsolver.solvers.hubbard_i`)."""

    solver_name = "hubbard_i"


class IPTSolver(Solver):
    """TRIQS-style IPT solver (see :mod:`triqs_mlsolver.solvers.ipt`)."""

    solver_name = "ipt"


class NCASolver(Solver):
    """TRIQS-style NCA solver (see :mod:`triqs_mlsolver.solvers.nca`)."""

    solver_name = "nca"


class EDSolver(Solver):
    """TRIQS-style exact-diagonalisation solver (see :mod:`triqs_mlsolver.solvers.ed`).

    ``solve(h_int=..., n_bath=k)`` fits the hybridisation of ``G0_iw`` with
    ``k`` bath sites and diagonalises the resulting AIM.
    """

    solver_name = "ed"
