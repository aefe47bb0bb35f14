# SPDX-License-Identifier: Apache-2.0
"""Adapter: ``triqs_cthyb`` behind the solver protocol (only when it is importable).

Registers ``'cthyb'`` so that databases can be generated with CT-HYB as the
reference.  The AIM is handed to ``triqs_cthyb.Solver`` as ``G0_iw`` (the
discrete bath or ``Delta_iw`` of :class:`~triqs_mlsolver.aim.AIMParams`) and
``h_int = U n_up n_dn``; the measured Legendre coefficients (``measure_G_l``)
give ``G_l``, from which ``G_iw`` and ``G_tau`` are rebuilt, so the result is
smooth and has the exact ``1/iw`` tail.  Monte Carlo noise remains: the
statistical error is not estimated here (run several seeds for that).

Nothing here runs without TRIQS (nor with ``TRIQS_MLSOLVER_BACKEND=light``); the tests skip it.
"""

from __future__ import annotations

import numpy as np

from ..gf import transforms as tr
from ..gf._backend import BACKEND
from .base import register_solver
from .solution import AIMSolution

# only with real TRIQS in use: importing triqs_cthyb brings the real triqs modules into a
# process that runs on the light layer (TRIQS_MLSOLVER_BACKEND=light, the test suite's
# setting), where `triqs-mlsolver run` serves its own triqs modules
AVAILABLE = False
if BACKEND == "triqs":  # pragma: no cover - needs TRIQS
    try:
        import triqs_cthyb as _cthyb
        from triqs.operators import n as _triqs_n

        AVAILABLE = True
    except ImportError:
        pass

__all__ = ["AVAILABLE", "solve_cthyb"]


def solve_cthyb(params, *, n_iw, n_tau, n_l, n_cycles=100000, length_cycle=100,
                n_warmup_cycles=5000, random_seed=34788, n_tau_solver=None):  # pragma: no cover
    """CT-HYB solution of ``params`` through ``triqs_cthyb.Solver`` (Legendre measurement)."""
    if not AVAILABLE:
        raise ImportError("triqs_cthyb is not importable; install TRIQS and triqs_cthyb")
    beta = params.beta
    S = _cthyb.Solver(beta=beta, gf_struct=[("up", 1), ("down", 1)], n_iw=n_iw,
                      n_tau=n_tau_solver or max(n_tau, 10 * n_iw + 1), n_l=n_l)
    g0 = params.g0_iw(n_iw)
    for s, name in enumerate(("up", "down")):
        S.G0_iw[name].data[:, 0, 0] = g0[s]
    h_int = params.U * _triqs_n("up", 0) * _triqs_n("down", 0)
    S.solve(h_int=h_int, n_cycles=n_cycles, length_cycle=length_cycle,
            n_warmup_cycles=n_warmup_cycles, random_seed=random_seed, measure_G_l=True,
            measure_density_matrix=True, use_norm_as_weight=True)
    G_l = np.stack([S.G_l[name].data[:, 0, 0].real for name in ("up", "down")])
    G_iw = np.stack([tr.legendre_to_iw(gl, n_iw) for gl in G_l])
    tau = np.linspace(0, beta, n_tau)
    G_tau = np.stack([tr.legendre_to_tau(gl, beta, tau).real for gl in G_l])
    sigma = 1.0 / g0 - 1.0 / G_iw
    rho = S.density_matrix
    d = None
    try:
        from triqs.atom_diag import trace_rho_op

        nn = _triqs_n("up", 0) * _triqs_n("down", 0)
        d = float(trace_rho_op(rho, nn, S.h_loc_diagonalization).real)
    except Exception:  # noqa: BLE001 - optional observable
        d = None
    return AIMSolution(beta=beta, G_iw=G_iw, G_tau=G_tau, G_l=G_l, Sigma_iw=sigma,
                       density=-G_tau[:, -1], double_occupancy=d,
                       diagnostics={"average_sign": float(S.average_sign)})


if AVAILABLE:  # pragma: no cover
    register_solver(
        "cthyb",
        solve_cthyb,
        options={"n_cycles": 100000, "length_cycle": 100, "n_warmup_cycles": 5000,
                 "random_seed": 34788, "n_tau_solver": None},
        description="triqs_cthyb CT-HYB (Legendre measurement); reference solver",
    )
