# SPDX-License-Identifier: Apache-2.0
"""Causal projection of an approximate impurity answer.

A learned correction is accurate to ~1e-4 in ``G(tau)`` but is not built to respect
the exact properties of :mod:`triqs_mlsolver.validity`; where it does not (a nearly
empty or full impurity, ``Im Sigma`` crossing zero where it nearly vanishes), this
module replaces the answer by the nearest one that respects them by construction:

* ``Sigma_s(i w) = s_0 + sum_k a_k / (i w - e_k)`` with ``a_k >= 0`` on a fixed grid of
  real energies ``e_k`` (:func:`pole_grid`) -- the Matsubara values of a self-energy
  with a non-negative spectral function, so ``Im Sigma_s(i w_n) <= 0`` at every
  ``w_n > 0`` and ``Sigma`` is analytic off the real axis.  The weights are the
  non-negative least-squares fit to the given ``Sigma`` with weights ``|G(i w_n)|^2``
  (an error ``d Sigma`` moves ``G`` by ``G^2 d Sigma``; the weighted fit minimises the
  change of ``G``, and by Parseval of ``G(tau)``).  The constant is then replaced by
  ``s_0 = U n_-s`` (Hartree), solved with the densities it gives.
* ``G = 1/(G0^-1 - Sigma)``: with a Hermitian bath it is the Green's function of an
  auxiliary non-interacting system (impurity, bath, one site per pole of ``Sigma``), so
  its spectral function is non-negative: ``G(tau) <= 0``, ``0 <= n_s <= 1``,
  ``G(0+) + G(beta-) = -1``.  For a discrete bath ``G`` is known exactly as poles
  (:func:`~triqs_mlsolver.solvers.solution.impurity_poles`): ``G(tau)``, ``G_l`` and the
  density hold for any level, even one far beyond the Matsubara mesh.  For a continuous
  ``Delta`` the same is done with a positive-pole fit of ``Delta``; the remainder
  ``G - G_poles`` (small, fast-decaying) is transformed with a tail fit.
* ``<n_up n_dn>`` by Galitskii-Migdal, then projected onto its exact bounds
  ``[max(0, n_up + n_dn - 1), min(n_up, n_dn)]``.

Each step is a projection onto a set that holds the exact answer, so it does not move
the answer away from the exact one by more than the violation it removes (pointwise
for ``Sigma`` in the ``|G|^2`` norm and for ``<n_up n_dn>``).  ``MLSolver`` uses it only
for answers that violate a check, and only when the projection changes ``G(tau)`` by
less than the ensemble's own spread for that input (see ``doc/mlsolver.rst``).
"""

from __future__ import annotations

import functools

import numpy as np
from scipy.optimize import nnls

from .gf import transforms as tr
from .solvers.solution import (
    AIMSolution,
    add_remainder_transforms,
    galitskii_migdal,
    impurity_poles,
    iw_of_poles,
    legendre_of_poles,
    tau_of_poles_grid,
)
from .validity import double_occupancy_bounds

__all__ = ["pole_grid", "sigma_range", "fit_positive_poles", "impurity_poles", "causal_projection"]

#: Ratio of neighbouring energies of the pole grid (about 24 per decade and sign).
POLE_RATIO = 1.1
#: At most this many passes of ``n_s -> s_0 = U n_-s -> fit -> n_s`` (converges in 3-6).
HARTREE_ITERATIONS = 12


def sigma_range(U, mu, m0) -> float:
    """The energies within which the self-energy's spectral weight is fitted:
    ``3 max(U, D) + |mu - U/2|`` with ``D = 2 sqrt(m_0)`` (Hubbard bands at ``+-U/2``
    around the level, widened by the bath).  A weight far beyond them is the answer's
    noise: it would mimic a constant and spoil the Hartree term at the largest frequency."""
    return 3.0 * max(float(U), 2.0 * np.sqrt(max(float(m0), 0.0))) + abs(float(mu) - 0.5 * U)


def pole_grid(beta: float, e_max: float, ratio: float = POLE_RATIO) -> np.ndarray:
    """Real energies ``0, +-e_j``: geometric from ``0.1 pi / beta`` (finer than the
    Matsubara mesh resolves) to ``e_max`` (at least twice that), ``ratio`` between
    neighbours."""
    e_min = 0.1 * np.pi / beta
    e_max = max(float(e_max), 2.0 * e_min)
    n = max(2, int(np.ceil(np.log(e_max / e_min) / np.log(ratio))) + 1)
    pos = np.geomspace(e_min, e_max, n)
    return np.concatenate([-pos[::-1], [0.0], pos])


@functools.lru_cache(maxsize=16)
def _fit_points(n_iw: int, n_dense: int = 48, n_log: int = 96):
    """Indices ``n >= 0`` of the positive frequencies used in the fits (all of the first
    ``n_dense``, log-spaced beyond) and their quadrature weights (the number of
    frequencies each stands for), so the fit approximates the sum over the whole mesh."""
    idx = np.unique(np.concatenate([
        np.arange(min(n_dense, n_iw)),
        np.round(np.geomspace(min(n_dense, n_iw - 1) or 1, n_iw - 1, n_log)).astype(int)]))
    edges = np.concatenate([[0.0], 0.5 * (idx[1:] + idx[:-1]), [n_iw - 0.5]])
    return idx, np.diff(edges).clip(min=1.0)


def fit_positive_poles(F_pos, w_pos, weight, eps):
    """Non-negative ``a_k`` with ``F(i w) ~ sum_k a_k / (i w - e_k)`` (least squares, rows
    weighted by ``weight``) at the positive frequencies ``w_pos``."""
    den = w_pos[:, None] ** 2 + eps[None, :] ** 2
    A = np.vstack([-eps[None, :] / den, -w_pos[:, None] / den])
    wt = np.concatenate([weight, weight])
    b = np.concatenate([F_pos.real, F_pos.imag])
    a, _ = nnls(A * wt[:, None], b * wt, maxiter=20 * A.shape[1])
    return a


def _start_density(G_w, iw, beta):
    """The answer's density from its ``G(i w)`` (tail-corrected), clipped to [0, 1]."""
    m, _ = tr.fit_tail(G_w, iw, known_moments=np.array([0.0, 1.0]), max_order=4)
    return float(np.clip(tr.density_from_iw(G_w, beta, m).real, 0.0, 1.0))


def causal_projection(params, Sigma_sw, G_sw, *, n_iw, n_tau, n_l):
    """The answer ``(Sigma_sw, G_sw)`` projected onto causal ones (module docstring).

    Returns ``(solution, info)``: an :class:`AIMSolution` (``solver="ml"``) and a dict
    with ``sigma_residual`` (the largest ``|G|^2``-weighted change of ``Sigma``),
    ``double_occupancy_clipped`` (how far ``<n_up n_dn>`` was moved onto its bounds) and
    ``n_poles`` (per spin)."""
    beta, U = params.beta, float(params.U)
    iw = tr.matsubara_freqs(beta, n_iw)
    w = iw.imag[n_iw:]
    idx, quad = _fit_points(n_iw)
    mu = np.broadcast_to(np.asarray(params.mu, float), (2,))
    delta = params.delta_iw(n_iw)
    # the hybridisation's weight m_0 from Delta ~ m_0 / (i w) at the largest frequency
    m0 = float(np.max(-delta[:, -1].imag * w[-1]))
    eps = pole_grid(beta, min(float(w[-1]), sigma_range(U, float(np.mean(mu)), m0)))
    Sigma_sw, G_sw = np.asarray(Sigma_sw), np.asarray(G_sw)
    same = params.spin_symmetric and np.array_equal(Sigma_sw[0], Sigma_sw[1]) \
        and np.array_equal(G_sw[0], G_sw[1])
    spins = (0,) if same else (0, 1)
    wt = {s: np.abs(G_sw[s, n_iw:][idx]) ** 2 * np.sqrt(quad) for s in spins}
    # the bath: exact poles, or a positive-pole fit of a continuous Delta
    bath = {}
    for s in spins:
        if params.has_discrete_bath:
            bath[s] = (np.asarray(params.eps_k[s], float), np.asarray(params.V_k[s], float))
        else:
            b = fit_positive_poles(delta[s, n_iw:][idx], w[idx], wt[s], eps)
            keep = b > 0
            bath[s] = (eps[keep], np.sqrt(b[keep]))
    dens = np.array([_start_density(G_sw[s], iw, beta) for s in range(2)])
    for _ in range(HARTREE_ITERATIONS):  # n_s -> s_0 = U n_-s -> fit, poles of G -> n_s
        s0 = U * dens[::-1]
        fits, poles = {}, {}
        for s in spins:
            a = fit_positive_poles(Sigma_sw[s, n_iw:][idx] - s0[s], w[idx], wt[s], eps)
            fits[s] = (eps[a > 0], a[a > 0])
            poles[s] = impurity_poles(s0[s] - mu[s], np.concatenate([bath[s][0], fits[s][0]]),
                                      np.concatenate([bath[s][1], np.sqrt(fits[s][1])]))
        if same:
            fits[1], poles[1] = fits[0], poles[0]
        new = np.array([float(np.sum(W / (1.0 + np.exp(np.clip(beta * E, -700, 700)))))
                        for E, W in (poles[0], poles[1])])
        change = np.abs(new - dens).max()
        dens = new
        if change < 1e-12:
            break
    Sigma = np.stack([s0[s] + iw_of_poles(*fits[s], beta, n_iw) for s in range(2)])
    G_poles = np.stack([iw_of_poles(*poles[s], beta, n_iw) for s in range(2)])
    G_tau = np.stack([tau_of_poles_grid(*poles[s], beta, n_tau) for s in range(2)])
    G_l = np.stack([legendre_of_poles(*poles[s], beta, n_l) for s in range(2)])
    if params.has_discrete_bath:
        G_iw = G_poles
    else:  # the exact Dyson equation with the input's Delta; the small remainder transformed
        G_iw = 1.0 / (iw[None, :] + mu[:, None] - delta - Sigma)
        G_tau, G_l = add_remainder_transforms(G_tau, G_l, G_iw - G_poles, iw, beta,
                                              n_known=2, max_order=4)
    density_out = -G_tau[:, -1]
    c1 = np.array([fits[s][1].sum() for s in range(2)])
    ud = galitskii_migdal(Sigma, G_iw, beta, s0, c1, density_out)
    d = float(np.mean(ud) / U) if U > 0 else float(density_out[0] * density_out[1])
    lo, hi = double_occupancy_bounds(density_out)
    d_proj = min(max(d, lo), hi)
    resid = max(float(np.max(np.abs(Sigma[s] - Sigma_sw[s]) * np.abs(G_sw[s]) ** 2))
                for s in range(2))
    info = {"sigma_residual": resid, "double_occupancy_clipped": abs(d_proj - d),
            "n_poles": [len(fits[s][1]) for s in range(2)]}
    sol = AIMSolution(beta=beta, G_iw=G_iw, G_tau=G_tau, G_l=G_l, Sigma_iw=Sigma, solver="ml",
                      density=density_out, double_occupancy=d_proj)
    return sol, info
