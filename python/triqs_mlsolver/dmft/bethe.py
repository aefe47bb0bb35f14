# SPDX-License-Identifier: Apache-2.0
"""Bethe-lattice DMFT with any registered solver (plain arrays).

Self-consistency (paramagnet or spin-resolved), half bandwidth ``D``, ``t = D/2``:

.. math:: \\Delta_\\sigma(i\\omega_n) = t^2 G_\\sigma(i\\omega_n),\\qquad
          \\mathcal{G}_{0\\sigma}^{-1} = i\\omega_n + \\mu - t^2 G_\\sigma .

The loop mixes ``G`` linearly, ``G <- a G_new + (1 - a) G``, and stops when
``max |G_new - G| < tol`` on the Matsubara mesh.

This is the original plain loop, kept with its signature and results;
:func:`triqs_mlsolver.dmft.run_dmft` is the general driver (any lattice,
history, archives) and gives the same fixed point on the Bethe lattice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..aim.params import AIMParams
from ..gf.transforms import matsubara_freqs
from ..solvers.base import solve_aim
from .lattice import semicircle_g

__all__ = ["DMFTResult", "bethe_dmft", "initial_g", "semicircle_g"]


def initial_g(kind, iw, U, D=1.0):
    """Starting ``G``: ``'metal'`` (U = 0 semicircle) or ``'insulator'`` (Hubbard-I bands)."""
    if kind == "metal":
        return semicircle_g(iw, D)
    if kind == "insulator":
        return semicircle_g(iw - U**2 / (4 * iw), D)  # Hubbard-I at half filling
    raise ValueError(f"initial guess {kind!r}; use 'metal', 'insulator' or an array")


@dataclass
class DMFTResult:
    """Converged (or last) DMFT iteration.

    Attributes
    ----------
    G_iw, Sigma_iw : ndarray (2, 2 n_iw)
    solution : AIMSolution of the last impurity solve
    Z : ndarray (2,), first-Matsubara estimate ``1/(1 - Im Sigma(i w_0)/w_0)``
    density : ndarray (2,)
    double_occupancy : float or None
    converged : bool
    iterations : int
    history : list of float, ``max |G_new - G|`` per iteration
    """

    U: float
    beta: float
    G_iw: np.ndarray
    Sigma_iw: np.ndarray
    solution: object
    Z: np.ndarray
    density: np.ndarray
    double_occupancy: float | None
    converged: bool
    iterations: int
    history: list = field(default_factory=list)

    @property
    def g_beta_half(self) -> float:
        """``-beta G(beta/2) / pi``, spin-averaged: the low-energy spectral weight proxy."""
        G_t = self.solution.G_tau
        return float(-self.beta * G_t[:, G_t.shape[1] // 2].mean() / np.pi)

    def is_insulating(self, threshold=0.1) -> bool:
        """Insulator when ``-beta G(beta/2)/pi`` (-> A(0) as T -> 0) is below ``threshold``."""
        return self.g_beta_half < threshold


def bethe_dmft(solver, U, beta, *, D=1.0, mu=None, n_iw=1025, n_tau=10001, n_l=30,
               start="metal", mixing=0.5, tol=1e-6, max_iter=300, solver_options=None,
               paramagnetic=True):
    """Run Bethe-lattice DMFT with the registered ``solver``.

    Parameters
    ----------
    solver : str
        Registry name (``'ipt'``, ``'hubbard_i'``, ``'ed'``, ...).
    U, beta, D : float
    mu : float, optional
        Chemical potential; default ``U/2`` (half filling).
    start : 'metal', 'insulator' or ndarray (2, 2 n_iw)
        Initial ``G`` (e.g. the previous U's solution in a scan).
    mixing : float
        Weight of the new ``G`` in the linear mixing.
    paramagnetic : bool
        Average the spins each iteration.
    """
    iw = matsubara_freqs(beta, n_iw)
    mu = U / 2 if mu is None else mu
    if isinstance(start, str):
        G = np.tile(initial_g(start, iw, U, D), (2, 1))
    else:
        G = np.array(start, dtype=complex)
        if G.shape != (2, 2 * n_iw):
            raise ValueError(f"start array has shape {G.shape}, expected (2, {2 * n_iw})")
    t2 = D**2 / 4
    opts = dict(solver_options or {})
    history, sol, converged, it = [], None, False, 0
    while it < max_iter:
        it += 1
        params = AIMParams(U=U, mu=mu, beta=beta, Delta_iw=t2 * G, D=D)
        sol = solve_aim(solver, params, n_iw=n_iw, n_tau=n_tau, n_l=n_l, **opts)
        G_new = sol.G_iw
        if paramagnetic:
            G_new = np.tile(G_new.mean(axis=0), (2, 1))
        diff = float(np.abs(G_new - G).max())
        history.append(diff)
        G = mixing * G_new + (1 - mixing) * G
        if diff < tol:
            converged = True
            break
    return DMFTResult(U=U, beta=beta, G_iw=sol.G_iw, Sigma_iw=sol.Sigma_iw, solution=sol,
                      Z=sol.Z(), density=sol.density, double_occupancy=sol.double_occupancy,
                      converged=converged, iterations=it, history=history)
