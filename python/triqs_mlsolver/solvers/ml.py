# SPDX-License-Identifier: Apache-2.0
"""Registers the machine-learning corrected solver ``"ml"`` in the solver registry.

The physics lives in :func:`triqs_mlsolver.mlsolver.solve_ml`; it is imported on
the first call (it needs torch and the model), so listing the solvers stays
cheap and the layering of DESIGN.md holds: the solver layer reaches the ML
layer only through the solver protocol.
"""

from __future__ import annotations

from .base import register_solver


def _solve(params, *, n_iw, n_tau, n_l, **options):
    from ..mlsolver import solve_ml

    return solve_ml(params, n_iw=n_iw, n_tau=n_tau, n_l=n_l, **options)


register_solver(
    "ml", _solve,
    options={"model": None, "fallback": "ed", "spread_tol": None, "warn": True, "record": None},
    description="cheap solvers corrected by a trained network (MLSolver; default model shipped)",
)
