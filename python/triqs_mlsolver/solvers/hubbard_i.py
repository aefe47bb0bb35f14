# SPDX-License-Identifier: Apache-2.0
"""Hubbard-I: the self-energy of the isolated atom used with the full hybridisation.

The atom (``Delta = 0``) is diagonalised exactly: states ``|0>, |up>, |dn>,
|2>`` with energies ``0, eps_up, eps_dn, eps_up + eps_dn + U``
(``eps_s = -mu_s``), thermal occupations ``n_s``, and

.. math::

    G^{at}_\\sigma(z) = \\frac{1 - n_{\\bar\\sigma}}{z - \\epsilon_\\sigma}
                     + \\frac{n_{\\bar\\sigma}}{z - \\epsilon_\\sigma - U},\\qquad
    \\Sigma_\\sigma(z) = U n_{\\bar\\sigma}
      + \\frac{U^2 n_{\\bar\\sigma}(1-n_{\\bar\\sigma})}{z - \\epsilon_\\sigma
      - U(1 - n_{\\bar\\sigma})}.

The impurity Green's function is ``G = 1/(z - eps - Delta(z) - Sigma(z))``
(the convention of ``triqs_hubbardI``: ``G_iw = inverse(inverse(G0_iw) - Sigma_atom)``;
the Hartree term is part of ``Sigma``).  For a discrete bath this ``G`` is the
impurity element of the resolvent of a one-body matrix (impurity, bath sites
and one auxiliary level carrying the pole of ``Sigma``), so its poles, and
``G(tau)``, ``G_l`` are exact; for a continuous ``Delta(i w)`` the tail-
corrected transforms are used.  The double occupancy follows from the
Galitskii-Migdal formula ``U <n_up n_dn> = T sum_n Sigma(i w_n) G(i w_n) e^{i w_n 0+}``
evaluated exactly on the poles.

Single orbital only (spin-polarised parameters allowed).

``triqs_hubbardI.Solver`` itself returns the *atomic* results: ``G_iw`` is
``G^{at}`` (not the impurity ``G`` with the hybridisation), ``Sigma_iw`` the atomic
self-energy, and on the real axis ``G_w(w) = G^{at}(w + i idelta)`` with
``Sigma_w = w - eps_0 - 1/G_w`` (``eps_0`` the level read from ``G0_iw``).
:func:`atomic_poles`, :func:`atomic_solution` and :func:`atomic_g_w` compute them in
closed form for ``triqs-mlsolver run --serve-hubbardI``
(:class:`triqs_mlsolver.cli.run.HubbardIInterface`), on meshes of any size
(``n_iw = 5``, ``n_tau = 2`` as in triqs_hubbardI's tests).
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from ..gf._meshes import MeshReFreq  # the light layer's, stored in HDF5 as TRIQS's
from .base import register_solver
from .solution import (
    AIMSolution,
    double_occupancy_from_ud,
    galitskii_migdal,
    impurity_poles,
    iw_of_poles,
    legendre_of_poles,
    solution_from_iw,
    solution_from_poles,
    tau_of_poles_grid,
)

__all__ = ["atomic_occupations", "sigma_hubbard_i", "solve_hubbard_i", "atomic_poles",
           "atomic_solution", "atomic_g_w", "real_frequency_mesh", "MeshReFreq"]


def atomic_occupations(U, mu, beta):
    """Thermal ``(n_up, n_dn, d)`` of the isolated atom with ``eps_s = -mu_s``."""
    eps = -np.asarray(mu, float)
    E = np.array([0.0, eps[0], eps[1], eps[0] + eps[1] + U])
    w = np.exp(-beta * (E - E.min()))
    p = w / w.sum()
    # p_1 + p_3 can exceed 1 by a rounding error (then U^2 n (1 - n) < 0: a NaN pole weight)
    return np.clip(np.array([p[1] + p[3], p[2] + p[3]]), 0.0, 1.0), float(p[3])


def sigma_hubbard_i(U, mu, beta, z):
    """Atomic self-energy ``Sigma_s(z)``, shape ``(2, len(z))``, and its pole data."""
    n, _ = atomic_occupations(U, mu, beta)
    out, poles = [], []
    for s in range(2):
        nb = n[1 - s]
        eps = -mu[s]
        a = eps + U * (1 - nb)
        w2 = U**2 * nb * (1 - nb)
        out.append(U * nb + w2 / (z - a))
        poles.append((U * nb, w2, a))
    return np.stack(out), poles


def atomic_poles(U, mu, beta):
    """Lehmann poles of the atomic Green's function, ``G_s(z) = sum_p W_sp / (z - E_sp)``.

    ``E_s = (eps_s, eps_s + U)`` with ``eps_s = -mu_s``, ``W_s = (1 - n_{-s}, n_{-s})`` with
    the thermal occupation ``n_{-s}`` of the other spin (:func:`atomic_occupations`).

    Returns
    -------
    E_sp, W_sp : ndarray, shape (2, 2)
    """
    mu = np.asarray(mu, float).reshape(2)
    n, _ = atomic_occupations(U, mu, beta)
    E = np.stack([[-mu[s], -mu[s] + U] for s in range(2)])
    W = np.stack([[1.0 - n[1 - s], n[1 - s]] for s in range(2)])
    return E, W


def atomic_solution(U, mu, beta, *, n_iw, n_tau, n_l) -> AIMSolution:
    """The isolated atom (``Delta = 0``) exactly: ``G_iw``, ``G_tau``, ``G_l`` from
    :func:`atomic_poles`, ``Sigma_iw`` = :func:`sigma_hubbard_i`, the thermal density and
    double occupancy.  Any mesh size (``n_iw >= 1``, ``n_tau >= 2``, ``n_l >= 1``)."""
    mu = np.asarray(mu, float).reshape(2)
    E, W = atomic_poles(U, mu, beta)
    G_iw = np.stack([iw_of_poles(E[s], W[s], beta, n_iw) for s in range(2)])
    G_tau = np.stack([tau_of_poles_grid(E[s], W[s], beta, n_tau) for s in range(2)])
    G_l = np.stack([legendre_of_poles(E[s], W[s], beta, n_l) for s in range(2)])
    iw = 1j * np.pi * (2 * np.arange(-n_iw, n_iw) + 1) / beta
    sigma, _ = sigma_hubbard_i(U, mu, beta, iw)
    n, d = atomic_occupations(U, mu, beta)
    return AIMSolution(beta=float(beta), G_iw=G_iw, G_tau=G_tau, G_l=G_l, Sigma_iw=sigma,
                       density=n, double_occupancy=d, solver="hubbard_i_atom",
                       diagnostics={"poles": E, "weights": W})


def atomic_g_w(U, mu, beta, w, idelta):
    """``G_s(w + i idelta)`` of the atom on real frequencies ``w``, shape ``(2, len(w))``:
    the broadening of triqs_hubbardI (``triqs.atom_diag.atomic_g_w``), one ``+ i idelta``
    added to every frequency."""
    E, W = atomic_poles(U, mu, beta)
    z = np.asarray(w, float) + 1j * float(idelta)
    return np.stack([(W[s][None, :] / (z[:, None] - E[s][None, :])).sum(axis=1)
                     for s in range(2)])


# -- real-frequency mesh ---------------------------------------------------------------------
def real_frequency_mesh(w_min, w_max, n_w):
    """A real-frequency mesh of ``n_w`` points on ``[w_min, w_max]``, both ends included
    (TRIQS's ``MeshReFreq``): TRIQS's own where the Green's functions are TRIQS's, else
    the light layer's :class:`~triqs_mlsolver.gf._meshes.MeshReFreq`."""
    from .. import gf

    if gf.using_triqs():  # pragma: no cover - needs a TRIQS installation
        from ..gf._backend import triqs_gf_module as tg

        for kwargs in ({"window": (w_min, w_max), "n_w": n_w},
                       {"window": (w_min, w_max), "n_points": n_w}):
            try:
                return tg.MeshReFreq(**kwargs)
            except TypeError:
                continue
        return tg.MeshReFreq(w_min, w_max, n_w)
    return MeshReFreq(window=(w_min, w_max), n_w=n_w)


def _fermi(x, beta):
    return expit(-beta * x)


def solve_hubbard_i(params, *, n_iw, n_tau, n_l):
    """Hubbard-I solution of ``params`` (see the module docstring)."""
    U, beta, mu = params.U, params.beta, params.mu
    iw = params.iw(n_iw)
    sigma, sig_poles = sigma_hubbard_i(U, mu, beta, iw)
    n_at, d_at = atomic_occupations(U, mu, beta)
    diag = {"atomic_density": n_at.tolist(), "atomic_double_occupancy": d_at}
    if params.Delta_iw is not None:
        G = 1.0 / (iw[None, :] + mu[:, None] - params.delta_iw(n_iw) - sigma)
        c2 = -mu + np.array([s[0] for s in sig_poles])
        moments = [np.array([0.0, 1.0, c2[s]]) for s in range(2)]
        sol = solution_from_iw(params, G, n_tau=n_tau, n_l=n_l, moments=moments,
                               diagnostics=diag)
        nb = n_at[::-1]
        ud = galitskii_migdal(sigma, G, beta, U * nb, U**2 * nb * (1 - nb), sol.density)
        sol.double_occupancy = double_occupancy_from_ud(ud, U, sol.density)
        return sol
    poles, gm = [], []
    for s in range(2):
        shift, w2, a = sig_poles[s]
        eps_k = params.eps_k[s] if params.eps_k is not None else np.zeros(0)
        V_k = params.V_k[s] if params.V_k is not None else np.zeros(0)
        # impurity, bath, and the auxiliary level of Sigma's pole (none when w2 = 0)
        if w2 != 0.0:
            eps_k, V_k = np.append(eps_k, a), np.append(V_k, np.sqrt(w2))
        E, W = impurity_poles(-mu[s] + shift, eps_k, V_k)
        poles.append((E, W))
        # Galitskii-Migdal: T sum Sigma G e^{iw0+} = shift*n + w2 sum_p W_p (f(E_p)-f(a))/(E_p-a)
        dE = E - a
        close = np.abs(dE) < 1e-10
        safe = np.where(close, 1.0, dE)
        dfde = -beta * _fermi(E, beta) * (1 - _fermi(E, beta))
        ratio = np.where(close, dfde, (_fermi(E, beta) - _fermi(a, beta)) / safe)
        gm.append(shift * np.sum(W * _fermi(E, beta)) + w2 * np.sum(W * ratio))
    sol = solution_from_poles(params, poles, n_iw=n_iw, n_tau=n_tau, n_l=n_l, diagnostics=diag)
    sol.double_occupancy = double_occupancy_from_ud(gm, U, sol.density)
    return sol


register_solver(
    "hubbard_i",
    solve_hubbard_i,
    options={},
    description="Hubbard-I: atomic self-energy with the full hybridisation (strong coupling)",
)
