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
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from .base import register_solver
from .solution import (
    double_occupancy_from_ud,
    galitskii_migdal,
    solution_from_iw,
    solution_from_poles,
)

__all__ = ["atomic_occupations", "sigma_hubbard_i", "solve_hubbard_i"]


def atomic_occupations(U, mu, beta):
    """Thermal ``(n_up, n_dn, d)`` of the isolated atom with ``eps_s = -mu_s``."""
    eps = -np.asarray(mu, float)
    E = np.array([0.0, eps[0], eps[1], eps[0] + eps[1] + U])
    w = np.exp(-beta * (E - E.min()))
    p = w / w.sum()
    return np.array([p[1] + p[3], p[2] + p[3]]), float(p[3])


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
        k = eps_k.size
        # one-body matrix: impurity (0), bath (1..k), auxiliary level of Sigma (k+1)
        H = np.zeros((k + 2, k + 2))
        H[0, 0] = -mu[s] + shift
        H[0, 1 : k + 1] = H[1 : k + 1, 0] = V_k
        H[1 : k + 1, 1 : k + 1] = np.diag(eps_k)
        H[0, k + 1] = H[k + 1, 0] = np.sqrt(w2)
        H[k + 1, k + 1] = a
        if w2 == 0.0:  # no pole in Sigma: drop the decoupled auxiliary level
            H = H[: k + 1, : k + 1]
        E, vecs = np.linalg.eigh(H)
        W = vecs[0] ** 2
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
