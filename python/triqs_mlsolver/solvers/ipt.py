# SPDX-License-Identifier: Apache-2.0
"""Iterative perturbation theory (IPT): second-order self-energy of the AIM.

Half filling (``mu = U/2``, particle-hole symmetric ``Delta``; Georges and
Kotliar, PRB 45, 6479 (1992)): with the Hartree term absorbed in ``mu``,

.. math::

    \\mathcal{G}_0(i\\omega) = 1/(i\\omega - \\Delta(i\\omega)),\\quad
    \\Sigma(\\tau) = -U^2 \\mathcal{G}_0(\\tau)^2 \\mathcal{G}_0(-\\tau)
                  = U^2 \\mathcal{G}_0(\\tau)^2\\mathcal{G}_0(\\beta - \\tau),\\quad
    \\Sigma(i\\omega) = U/2 + \\int_0^\\beta e^{i\\omega\\tau}\\Sigma(\\tau) d\\tau .

``Re G`` and ``Re (Sigma - U/2)`` vanish by symmetry and are set to zero
exactly (round-off otherwise grows into a spurious symmetry-broken solution
in DMFT loops; see PHYSICS.md §2.1).

Away from half filling: the Kajueter-Kotliar interpolation (PRL 77, 131
(1996)), per spin ``s`` with ``n = n_{-s}``:

.. math::

    \\tilde{\\mathcal{G}}_{0,s} = 1/(i\\omega + \\tilde\\mu_{0,s} - \\Delta_s),\\quad
    \\Sigma_s = U n + \\frac{A \\Sigma^{(2)}_s}{1 - B \\Sigma^{(2)}_s},\\quad
    A = \\frac{n(1-n)}{n_0(1-n_0)},\\quad
    B = \\frac{(1-n) U - \\mu_s + \\tilde\\mu_{0,s}}{U^2 n_0 (1-n_0)}

with ``Sigma2_s(tau) = U^2 G0~_s(tau) G0~_{-s}(tau) G0~_{-s}(beta - tau)`` and
``n_0 = n_{0,-s}`` the density of ``G0~_{-s}``.  ``A`` makes the ``1/iw``
tail exact (``U^2 n(1-n)``), ``B`` the atomic limit.  The pseudo chemical
potential ``mu0~_s`` is fixed by the finite-temperature condition
``n_{0,s} = n_s`` (the density of ``G0~_s`` equals that of ``G_s``), the
common choice at finite T (Kajueter and Kotliar use the Friedel sum rule,
valid at T = 0 only).  The four unknowns ``(n_s, mu0~_s)`` are found with
``scipy.optimize.root``; at half filling the scheme reduces exactly to the
first form (``A = 1``, ``B = 0``, ``mu0~ = mu - U/2``), which is then used.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq, root

from ..gf import transforms as tr
from .base import register_solver
from .solution import double_occupancy_from_ud, galitskii_migdal, solution_from_iw

__all__ = ["sigma2_iw", "solve_ipt"]


def _g_tau(G_w, beta, n_tau, c2):
    """G(tau) of a function with moments c1 = 1, c2 (c3... fitted)."""
    iw = tr.matsubara_freqs(beta, G_w.shape[0] // 2)
    m, _ = tr.fit_tail(G_w, iw, known_moments=np.array([0.0, 1.0, c2]))
    return tr.iw_to_tau(G_w, beta, n_tau, m).real


def _density(G_w, beta, c2):
    """n = -G(beta^-) with the tail handled (c1 = 1, c2 known)."""
    iw = tr.matsubara_freqs(beta, G_w.shape[0] // 2)
    m, _ = tr.fit_tail(G_w, iw, known_moments=np.array([0.0, 1.0, c2]), max_order=4)
    return float(tr.density_from_iw(G_w, beta, m).real)


def sigma2_iw(g0_tau_s, U, beta, n_iw):
    """Second-order ``Sigma2_s(i w)`` (no Hartree term) from ``G0_s(tau)``: ``(2, 2 n_iw)``."""
    out = []
    for s in range(2):
        o = 1 - s
        sig_t = U**2 * g0_tau_s[s] * g0_tau_s[o] * g0_tau_s[o][::-1]
        out.append(tr.tau_to_iw(sig_t, beta, n_iw))
    return np.stack(out)


def _mu0_for_density(target, delta_s, iw, beta, tol, guess=0.0):
    """``mu0~`` with ``n(1/(iw + mu0~ - Delta)) = target``.

    Newton steps with the exact derivative ``dn/dmu = -T sum_n G(i w_n)^2 > 0``
    (the density is monotone in mu0~), safeguarded by bisection on a bracket.
    """

    def f(m):
        g = 1.0 / (iw + m - delta_s)
        # dn/dm = -T sum_n G^2; the 1/(iw)^2 tail beyond the mesh is summed exactly
        # (T sum_n (iw_n)^-2 = -beta/4), otherwise the slope is off by ~beta/(2 pi^2 n_iw)
        slope = -float((g * g - 1.0 / (iw * iw)).sum().real / beta) + beta / 4
        return _density(g, beta, -m) - target, slope

    lo, hi = -np.inf, np.inf
    m = float(guess)
    for _ in range(100):
        val, slope = f(m)
        if abs(val) < tol:
            return m
        if val > 0:
            hi = min(hi, m)
        else:
            lo = max(lo, m)
        step = m - val / slope if slope > 0 else np.nan
        if np.isfinite(lo) and np.isfinite(hi):
            if hi - lo < 1e-13 * (1.0 + abs(m)):
                return m  # bracket closed: the density is resolved to its own precision
            m = step if lo < step < hi else 0.5 * (lo + hi)
        elif np.isfinite(step) and abs(step - m) < 10.0:
            m = step
        else:
            m = m - 10.0 if val > 0 else m + 10.0
    raise RuntimeError(f"IPT: no mu0~ gives density {target} (last {m}, residual {val:.2e})")


def _kajueter_kotliar(params, iw, delta, nt, tol, max_iter):
    """Solve the KK conditions: inner ``n0_s(mu0~_s) = n_s`` (Brent), outer ``n_G(n) = n``."""
    U, beta, mu = params.U, params.beta, params.mu
    n_iw = iw.size // 2
    state = {"evaluations": 0}

    def evaluate(n):
        n = np.clip(np.asarray(n, float), 1e-12, 1 - 1e-12)
        guess = state.get("mu0", mu - U * n[::-1])
        if params.spin_symmetric and n[0] == n[1]:
            m0 = _mu0_for_density(n[0], delta[0], iw, beta, tol, guess[0])
            mu0 = np.array([m0, m0])
        else:
            mu0 = np.array([_mu0_for_density(n[s], delta[s], iw, beta, tol, guess[s])
                            for s in range(2)])
        g0 = 1.0 / (iw[None, :] + mu0[:, None] - delta)
        g0t = np.stack([_g_tau(g0[s], beta, nt, -mu0[s]) for s in range(2)])
        s2 = sigma2_iw(g0t, U, beta, n_iw)
        sig = np.empty_like(s2)
        for s in range(2):
            nb = n[1 - s]  # n0 = n by construction of mu0~
            B = ((1 - nb) * U - mu[s] + mu0[s]) / (U**2 * nb * (1 - nb)) if U > 0 else 0.0
            sig[s] = U * nb + s2[s] / (1 - B * s2[s])  # A = 1 since n0 = n
        G = 1.0 / (iw[None, :] + mu[:, None] - delta - sig)
        nG = np.array([_density(G[s], beta, -mu[s] + U * n[1 - s]) for s in range(2)])
        state.update(G=G, sigma=sig, n=nG, mu0=mu0)
        state["evaluations"] += 1
        return nG - n

    # starting density: the Hartree-like G0 at mu - U/2 (exact at half filling)
    g_start = 1.0 / (iw[None, :] + (mu - U / 2)[:, None] - delta)
    n_start = np.array([_density(g_start[s], beta, -(mu[s] - U / 2)) for s in range(2)])
    if params.spin_symmetric:
        # bracket the root of n_G(n) - n around n_start, widening step by step; extreme
        # densities (mu0~ far outside the mesh) are never probed unless needed
        def F(x):
            return evaluate([x, x])[0]

        edge = 1e-4
        n0 = float(np.clip(n_start[0], 0.05, 0.95))
        lo, hi = n0 - 0.02, n0 + 0.02
        f_lo, f_hi = F(lo), F(hi)
        width = 0.05
        while f_lo < 0 and lo > edge:
            lo, hi, f_hi = max(edge, lo - width), lo, f_lo
            f_lo, width = F(lo), 2 * width
        while f_hi > 0 and hi < 1 - edge:
            lo, f_lo, hi = hi, f_hi, min(1 - edge, hi + width)
            f_hi, width = F(hi), 2 * width
        if f_lo < 0 or f_hi > 0:
            raise RuntimeError(
                f"IPT (Kajueter-Kotliar): no density in [{edge}, {1 - edge}] satisfies n_G = n "
                f"(U={U}, mu={mu.tolist()}, beta={beta})"
            )
        n_star = brentq(F, lo, hi, xtol=tol, maxiter=max_iter)
        resid = evaluate([n_star, n_star])
    else:
        res = root(evaluate, n_start, method="hybr", tol=tol, options={"maxfev": max_iter})
        resid = evaluate(res.x)
    if np.abs(resid).max() > 1e-8:
        raise RuntimeError(
            f"IPT (Kajueter-Kotliar) did not reach n_G = n: residual {np.abs(resid).max():.2e} "
            f"(U={U}, mu={mu.tolist()}, beta={beta}); try a larger max_iter"
        )
    info = {"mu0_tilde": state["mu0"].tolist(), "n_evaluations": state["evaluations"],
            "residual": float(np.abs(resid).max())}
    return state["G"], state["sigma"], state["n"], info


def solve_ipt(params, *, n_iw, n_tau, n_l, n_tau_internal=None, tol=1e-10, max_iter=200):
    """IPT solution of ``params`` (see the module docstring)."""
    U, beta, mu = params.U, params.beta, params.mu
    iw = params.iw(n_iw)
    delta = params.delta_iw(n_iw)
    nt = int(n_tau_internal) if n_tau_internal else 4 * n_iw + 1
    if nt < 2 * n_iw:
        raise ValueError(f"n_tau_internal={nt} must be at least 2*n_iw={2 * n_iw}")
    diag = {"n_tau_internal": nt}
    if params.is_particle_hole_symmetric():
        g0 = 1.0 / (iw[None, :] - 1j * delta.imag)
        g0t = np.stack([_g_tau(g0[s], beta, nt, 0.0) for s in range(2)])
        s2 = sigma2_iw(g0t, U, beta, n_iw)
        sigma = U / 2 + 1j * s2.imag
        G = 1j * (1.0 / (iw[None, :] - 1j * delta.imag - 1j * s2.imag)).imag
        diag["scheme"] = "half-filling"
        n = np.array([0.5, 0.5])
    else:
        diag["scheme"] = "kajueter-kotliar"
        G, sigma, n, info = _kajueter_kotliar(params, iw, delta, nt, tol, max_iter)
        diag.update(info)
    c2 = -mu + U * n[::-1]
    moments = [np.array([0.0, 1.0, c2[s]]) for s in range(2)]
    sol = solution_from_iw(params, G, n_tau=n_tau, n_l=n_l, moments=moments, diagnostics=diag)
    sol.Sigma_iw = sigma
    nb = sol.density[::-1]
    ud = galitskii_migdal(sigma, G, beta, U * nb, U**2 * nb * (1 - nb), sol.density)
    sol.double_occupancy = double_occupancy_from_ud(ud, U, sol.density)
    return sol


register_solver(
    "ipt",
    solve_ipt,
    options={"n_tau_internal": None, "tol": 1e-10, "max_iter": 200},
    description="IPT: second-order self-energy; Kajueter-Kotliar interpolation off half filling",
)
