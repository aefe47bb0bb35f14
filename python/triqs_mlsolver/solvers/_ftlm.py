# SPDX-License-Identifier: Apache-2.0
"""Finite-temperature Lanczos (FTLM) for the sectors with very many thermal states (private).

Used by Path B of :mod:`.ed` for the sectors that would need more eigenstates than
``n_states_max`` (high temperature, large sectors).  Jaklic & Prelovsek, PRB 49, 5065
(1994); Adv. Phys. 49, 1 (2000).  The trace over a sector (or over the complement of
its eigenstates already known exactly, "hybrid" use) is sampled with ``R`` normalised
Gaussian random vectors ``|r>``:

.. math::

    \\mathrm{Tr}_c[e^{-\\beta H} A] \\approx \\frac{D_c}{R} \\sum_r \\sum_i
        e^{-\\beta \\epsilon_i} \\langle r|\\psi_i\\rangle\\langle\\psi_i|A|r\\rangle ,

``(eps_i, psi_i)`` the Ritz pairs of an ``M``-step Lanczos run (full
reorthogonalisation, also against the exact states) started from ``|r>``, ``D_c`` the
dimension sampled.  Dynamics by the two-chain form: a second Lanczos run from
``d^+|r>`` (particle) or ``d|r>`` (hole) in the target sector gives Ritz pairs
``(e_j, phi_j)`` and poles ``e_j - eps_i`` (``eps_i - e_j``) with weights
``(D_c/R) e^{-beta eps_i} <r|psi_i><psi_i|d|phi_j><phi_j|d^+|r>``.

Properties used by the solver and checked by the tests:

* **Sum rule exact per random vector**: ``d^+|r>`` lies in the second Krylov space, so the
  particle weights of ``psi_i`` add up to ``<psi_i|d d^+|r>`` and the hole weights to
  ``<psi_i|d^+ d|r>``; together ``e^{-beta eps_i} |<r|psi_i>|^2``, that random vector's
  contribution to ``Z``.  With ``Z`` estimated from the same vectors,
  ``G(0+) + G(beta-) = -1`` holds to rounding.
* **Unbiased** for ``Z`` and for every unnormalised average; ``G = N/Z`` is a ratio and its
  statistical error is estimated by the jackknife over the ``R`` replicas (replica ``rho``
  uses the ``rho``-th random vector of every sampled sector).
* Individual pole weights may be negative (the two Ritz bases differ); the sums above
  are not affected.  The poles are accumulated on an energy grid of spacing ``h`` with
  the weight of each pole split linearly between its two neighbouring grid points,
  which keeps the zeroth and first moments exactly and moves ``G(tau)`` by at most
  ``~ (h beta)^2/8`` times the sampled weight.
"""

from __future__ import annotations

import numpy as np

from . import _ed_core as core

__all__ = ["lanczos_ritz", "ftlm_sample", "bin_poles"]

#: A Lanczos run stops when the new vector's norm after reorthogonalisation is below this
#: fraction of ``||H q||`` (the Krylov space is invariant; the rest is rounding noise).
INVARIANT_TOL = 1e-8


def lanczos_ritz(mv, V0, n_steps, *, deflate=None, b_tol=1e-12):
    """``n_steps`` Lanczos steps from each row of ``V0`` (normalised), all runs batched,
    with full reorthogonalisation (classical Gram-Schmidt, also against ``deflate``).

    Parameters
    ----------
    mv : callable ``(nb, dim) -> (nb, dim)``
    V0 : ndarray (nb, dim), rows normalised
    deflate : ndarray (n, dim), optional
        Orthonormal vectors to keep the Krylov spaces orthogonal to (exact eigenstates).

    Returns
    -------
    eps : ndarray (nb, m)
        Ritz values (``m = min(n_steps, dim)``; a run whose Krylov space became invariant
        earlier has Ritz values of weight ``s0 = 0`` in the unused slots).
    psi : ndarray (nb, m, dim)
        Ritz vectors.
    s0 : ndarray (nb, m)
        ``<v0|psi_i>``.
    """
    nb, dim = V0.shape
    m = min(n_steps, dim)
    Q = np.zeros((nb, m, dim))
    a = np.zeros((nb, m))
    b = np.zeros((nb, m))
    Q[:, 0] = V0
    alive = np.ones(nb, bool)
    for j in range(m):
        q = Q[:, j]
        w = mv(q)
        hq = np.linalg.norm(w, axis=1)
        a[:, j] = np.einsum("bd,bd->b", q, w)
        Qj = Q[:, : j + 1]
        w -= np.matmul(np.matmul(Qj, w[:, :, None]).transpose(0, 2, 1), Qj)[:, 0]
        if deflate is not None and deflate.shape[0]:
            w -= (w @ deflate.T) @ deflate
        if j == m - 1:
            break
        nrm = np.linalg.norm(w, axis=1)
        # invariant Krylov space: what is left after the orthogonalisation is rounding
        alive &= (nrm > b_tol) & (nrm > INVARIANT_TOL * hq)
        b[:, j] = np.where(alive, nrm, 0.0)
        Q[:, j + 1] = np.where(alive[:, None], w / np.where(alive, nrm, 1.0)[:, None], 0.0)
    # Rayleigh-Ritz with the tridiagonal (exact in the reorthogonalised basis); a dead
    # run's zero rows decouple and their Ritz vectors have no overlap with v0
    T = np.zeros((nb, m, m))
    idx = np.arange(m)
    T[:, idx, idx] = a
    T[:, idx[:-1], idx[1:]] = b[:, :-1]
    T[:, idx[1:], idx[:-1]] = b[:, :-1]
    eps, S = np.linalg.eigh(T)
    psi = np.matmul(S.transpose(0, 2, 1), Q)
    return eps, psi, S[:, 0, :].copy()


def bin_poles(E, W, h):
    """Poles on a grid of spacing ``h``: each weight split linearly between the two
    neighbouring grid points (zeroth and first moments exact).  Returns ``(E_g, W_g)``
    for the occupied grid points."""
    E = np.asarray(E, float)
    W = np.asarray(W, float)
    if E.size == 0:
        return E, W
    q = E / h
    i = np.floor(q)
    f = q - i  # in [0, 1)
    i = i.astype(np.int64)
    i0 = int(i.min())
    i -= i0
    n = int(i.max()) + 2
    Wg = np.bincount(i, weights=W * (1 - f), minlength=n) + np.bincount(
        i + 1, weights=W * f, minlength=n)
    occ = np.nonzero(Wg)[0]
    return h * (occ + i0), Wg[occ]


def ftlm_sample(model, sectors, E0, beta, *, n_random, n_steps, seed=0, tau_check=None):
    """FTLM contributions of ``sectors`` (canonical keys -> exact vectors or None).

    Parameters
    ----------
    model : ``_ed_core._Model``
    sectors : dict key -> ndarray (n_exact, dim) or None
        The sectors to sample; the trace runs over the complement of the given exact
        eigenvectors (which the exact path accounts for).
    E0 : float
        Energy reference of the Boltzmann factors.
    n_random : int
        Random vectors per sector (= number of replicas).
    n_steps : int
        Lanczos steps of each run.
    tau_check : ndarray, optional
        ``tau`` points at which each replica's unnormalised ``-N(tau)`` is returned (for
        the jackknife error).

    Returns
    -------
    dict with ``Z`` (R,), ``static`` (R, 4) = unnormalised ``<n_up n_dn>``, ``<n_up>``,
    ``<n_dn>``, ``<H>``; ``poles`` = per spin ``(E, W)`` summed over replicas (not yet
    divided by ``R``); ``N_tau`` (R, 2, n_check) per replica; ``n_poles_raw``.
    """
    up, dn = model.up, model.dn
    sym = model.spin_symmetric
    R = int(n_random)
    Z = np.zeros(R)
    static = np.zeros((R, 4))
    Es = ([], [])
    Ws = ([], [])
    tau_check = np.zeros(0) if tau_check is None else np.asarray(tau_check, float)
    N_tau = np.zeros((R, 2, tau_check.size))
    n_raw = 0

    for key, exact in sectors.items():
        sec = model.sectors[key]
        a, b = key
        mult = float(model.multiplicity(key))
        n_ex = 0 if exact is None else exact.shape[0]
        Dc = sec.dim - n_ex
        if Dc <= 0:
            continue
        rng = np.random.default_rng([seed, 7919, a, b])
        r = rng.standard_normal((R, sec.dim))
        if n_ex:
            for _ in range(2):
                r -= (r @ exact.T) @ exact
        r /= np.linalg.norm(r, axis=1)[:, None]
        eps, psi, s0 = lanczos_ritz(sec.matvec_flat, r, n_steps, deflate=exact)  # (R, m)
        bf = np.exp(-beta * (eps - E0))
        c = Dc * mult * bf * s0  # (R, m)
        Z += np.einsum("rm,rm->r", c, s0)
        static[:, 3] += np.einsum("rm,rm->r", c, eps * s0)
        R3 = r.reshape(R, sec.du, sec.dd)
        for col, diag in enumerate((sec.nn_ud, up.nd[a][:, None] * np.ones(sec.dd),
                                    np.ones(sec.du)[:, None] * dn.nd[b][None, :])):
            Ar = (diag[None] * R3).reshape(R, -1)
            static[:, col] += np.einsum("rm,rm->r", c, np.matmul(psi, Ar[:, :, None])[:, :, 0])
        P = psi.reshape(R * psi.shape[1], sec.du, sec.dd)
        for s in (0, 1):
            # spin-symmetric: (G_up + G_dn)/2 of this sector, times its multiplicity
            tgt_spin, fac = (0, 0.5) if sym else (s, 1.0)
            for dag in (True, False):
                v = core.apply_op(R3, up, dn, a, b, s, dag)
                if v is None:
                    continue
                v = v.reshape(R, -1)
                nv = np.linalg.norm(v, axis=1)
                ok = nv > 0
                if not ok.any():
                    continue
                t = (a + (1 if dag else -1), b) if s == 0 else (a, b + (1 if dag else -1))
                e2, phi, s2 = lanczos_ritz(model.sectors[t].matvec_flat,
                                           v / np.where(ok, nv, 1.0)[:, None], n_steps)
                Y = core.apply_op(P, up, dn, a, b, s, dag).reshape(R, psi.shape[1], -1)
                M = np.matmul(Y, phi.transpose(0, 2, 1))  # <psi_i| d (or d^+) |phi_j>
                W = fac * (c[:, :, None] * M) * (nv[:, None] * s2)[:, None, :]
                W[~ok] = 0.0
                E = (e2[:, None, :] - eps[:, :, None]) if dag else (eps[:, :, None]
                                                                    - e2[:, None, :])
                Es[tgt_spin].append(E.ravel())
                Ws[tgt_spin].append(W.ravel())
                n_raw += W.size
                if tau_check.size:
                    # N(tau) = sum_p W_p e^{-tau E_p} / (1 + e^{-beta E_p}), per replica
                    Ef = E.reshape(R, -1)
                    ker = np.exp(-tau_check[None, :, None] * Ef[:, None, :]
                                 - np.logaddexp(0, -beta * Ef)[:, None, :])
                    contrib = np.einsum("rtp,rp->rt", ker, W.reshape(R, -1))
                    if sym:
                        N_tau[:, 0] += contrib
                        N_tau[:, 1] += contrib
                    else:
                        N_tau[:, s] += contrib
    if sym:
        Es = (Es[0], Es[0])
        Ws = (Ws[0], Ws[0])
    poles = [(np.concatenate(Es[s]) if Es[s] else np.zeros(0),
              np.concatenate(Ws[s]) if Ws[s] else np.zeros(0)) for s in (0, 1)]
    return dict(Z=Z, static=static, poles=poles, N_tau=N_tau, n_poles_raw=n_raw)
