# SPDX-License-Identifier: Apache-2.0
"""Fitting a continuous hybridisation ``Delta(i w)`` by ``k`` discrete bath sites.

Cost (Caffarel-Krauth, PRL 72, 1545 (1994))::

    chi2 = (1/N) sum_{0 <= w_n <= w_max} W_n |Delta(i w_n) - sum_k V_k^2 / (i w_n - eps_k)|^2

minimised with MINPACK's Levenberg-Marquardt (``scipy.optimize.leastsq``, analytic
Jacobian) from several starts: a uniform spread of levels over the band plus
seeded random perturbations, and the caller's ``initial`` bath (warm start in
DMFT).  ``ph_symmetric=True`` restricts the bath to pairs ``(+eps_p, -eps_p)``
with equal ``V_p`` (plus a level at 0 for odd ``k``), which guarantees
``Re Delta = 0``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import leastsq

__all__ = ["BathFit", "fit_bath"]


@dataclass
class BathFit:
    """Result of :func:`fit_bath`.

    Attributes
    ----------
    eps_k, V_k : ndarray (k,)
        Bath energies and hoppings (``V_k >= 0``), sorted by energy.
    chi2 : float
        Mean of ``W_n |Delta - Delta_fit|^2`` over the fitted frequencies.
    max_error : float
        ``max |Delta - Delta_fit|`` over the fitted frequencies.
    n_fit : int
        Number of positive frequencies fitted.
    sum_V2 : float
        ``sum_k V_k^2`` (compare with the 1/iw moment of Delta).
    """

    eps_k: np.ndarray
    V_k: np.ndarray
    chi2: float
    max_error: float
    n_fit: int
    sum_V2: float


def _expand(x, k, ph):
    """Parameter vector -> (eps, V)."""
    if not ph:
        return x[:k], x[k:]
    n_pair = k // 2
    e, v = x[:n_pair], x[n_pair : 2 * n_pair]
    eps = np.concatenate([e, -e])
    V = np.concatenate([v, v])
    if k % 2:
        eps = np.append(eps, 0.0)
        V = np.append(V, x[2 * n_pair])
    return eps, V


def _pack(eps, V, ph):
    if not ph:
        return np.concatenate([eps, V])
    k = len(eps)
    order = np.argsort(-eps)
    n_pair = k // 2
    e = np.abs(eps[order][:n_pair])
    v = np.abs(V[order][:n_pair])
    x = np.concatenate([e, v])
    if k % 2:
        x = np.append(x, np.abs(V[order][n_pair]))
    return x


def fit_bath(delta_w, beta, n_bath, *, ph_symmetric=False, n_starts=4, seed=0, initial=None,
             w_max=None, weight="uniform", D=1.0):
    """Fit ``Delta(i w_n)`` (one spin, full TRIQS mesh ``2 n_iw``) with ``n_bath`` sites.

    Parameters
    ----------
    delta_w : ndarray (2 n_iw,), complex
    beta : float
    n_bath : int
    ph_symmetric : bool
        Particle-hole symmetric parametrisation.
    n_starts : int
        Maximum number of starts (the deterministic spread counts as one); the
        search stops early when two starts reach the same minimum.
    seed : int
        Seed of the random starts.
    initial : tuple (eps_k, V_k), optional
        A starting bath (e.g. the previous DMFT iteration's); tried first.
    w_max : float, optional
        Largest frequency fitted; default ``10 D`` but at least 32 frequencies.
    weight : {'uniform', '1/n', '1/w'}
        ``W_n`` of the cost function.
    D : float
        Energy scale used for the default ``w_max`` and the starting levels.

    Returns
    -------
    BathFit
    """
    delta_w = np.asarray(delta_w, complex)
    if delta_w.ndim != 1 or delta_w.size % 2:
        raise ValueError("delta_w must be a 1-d array on the full fermionic mesh (2 n_iw points)")
    if not np.all(np.isfinite(delta_w)):
        raise ValueError("Delta(i w) contains NaN or infinite values")
    if isinstance(n_bath, bool) or not isinstance(n_bath, (int, np.integer)) or n_bath < 1:
        raise ValueError(f"n_bath={n_bath!r} must be a positive integer")
    n_iw = delta_w.size // 2
    w = np.pi * (2 * np.arange(n_iw) + 1) / beta
    dpos = delta_w[n_iw:]
    if w_max is None:
        w_max = 10.0 * D
    n_fit = int(max(min(32, n_iw), np.searchsorted(w, w_max, side="right")))
    n_fit = min(n_fit, n_iw)
    z = 1j * w[:n_fit]
    target = dpos[:n_fit]
    if weight == "uniform":
        Wn = np.ones(n_fit)
    elif weight == "1/n":
        Wn = 1.0 / (np.arange(n_fit) + 1)
    elif weight == "1/w":
        Wn = 1.0 / w[:n_fit]
    else:
        raise ValueError(f"weight={weight!r}; use 'uniform', '1/n' or '1/w'")
    sw = np.sqrt(Wn)
    k = int(n_bath)
    # 1/iw moment of Delta = sum V^2, from the largest frequencies
    m1 = max(float((1j * w[-1] * dpos[-1]).real), 1e-12)

    # Residuals r_n = sqrt(W_n) (Delta_fit - Delta)(i w_n) as interleaved (Re, Im) floats,
    # Jacobian in MINPACK's column-derivative layout (n_par, 2 n_fit): both are zero-copy
    # float views of complex arrays.  One evaluation gives both; lmder asks for the
    # Jacobian at the point it has just evaluated, so it is kept.
    zt = z[None, :]
    sw_t = sw[None, :]
    n_par = len(_pack(np.zeros(k), np.zeros(k), ph_symmetric))
    cache = {}

    def resid(x):
        eps, V = _expand(x, k, ph_symmetric)
        inv = 1.0 / (zt - eps[:, None])  # (k, n_fit)
        r = (V**2 @ inv - target) * sw
        Jc = np.empty((2 * k, n_fit), complex)  # d/d eps_k, d/d V_k
        np.multiply((V**2)[:, None] * sw_t, inv * inv, out=Jc[:k])
        np.multiply((2 * V)[:, None] * sw_t, inv, out=Jc[k:])
        if ph_symmetric:
            n_pair = k // 2
            J = np.empty((n_par, n_fit), complex)
            J[:n_pair] = Jc[:n_pair] - Jc[n_pair:2 * n_pair]
            J[n_pair:2 * n_pair] = Jc[k:k + n_pair] + Jc[k + n_pair:k + 2 * n_pair]
            if k % 2:
                J[2 * n_pair] = Jc[2 * k - 1]
            Jc = J
        cache["x"], cache["J"] = x.copy(), Jc
        return r.view(float)

    def jac(x):
        if "x" not in cache or not np.array_equal(x, cache["x"]):
            resid(x)
        return cache["J"].view(float)

    rng = np.random.default_rng(seed)
    starts = []
    if initial is not None:
        e0, v0 = (np.asarray(a, float).ravel() for a in initial)
        if e0.size != k or v0.size != k:
            raise ValueError(f"initial bath has {e0.size} levels, expected n_bath={k}")
        starts.append(_pack(e0, v0, ph_symmetric))
    spread = np.linspace(-D, D, k + 2)[1:-1] if k > 1 else np.zeros(1)
    base_V = np.full(k, np.sqrt(m1 / k))
    starts.append(_pack(spread, base_V, ph_symmetric))
    while len(starts) < max(n_starts, 1) + (initial is not None):
        e = spread * rng.uniform(0.3, 2.0) + rng.normal(0, 0.2 * D, k)
        v = base_V * rng.uniform(0.5, 1.5, k)
        starts.append(_pack(e, v, ph_symmetric))

    # Stop as soon as two starts reach the same minimum (relative 1e-8 in the cost):
    # the usual sign that it is the global one; otherwise try every start.
    # MINPACK lmder (Levenberg-Marquardt, scaling from the Jacobian's column norms) through
    # scipy's thin wrapper: the problem is tiny, so the per-iteration Python overhead of
    # least_squares would be most of the cost (benchmarks/bench_mlsolver.py).
    best, best_cost, agree = None, np.inf, False
    for x0 in starts:
        out = leastsq(resid, x0, Dfun=jac, col_deriv=True, full_output=True, xtol=1e-14,
                      ftol=1e-14, gtol=1e-14, maxfev=2000)
        x, info = out[0], out[2]
        cost = 0.5 * float(info["fvec"] @ info["fvec"])
        if best is not None and abs(cost - best_cost) <= 1e-8 * max(best_cost, 1e-300):
            agree = True
        if cost < best_cost:
            best, best_cost = x, cost
        if agree:
            break
    if best is None:
        raise RuntimeError(f"the bath fit ({k} sites) did not reach a finite cost from any "
                           "start; check Delta(i w) for overflow")
    eps, V = _expand(best, k, ph_symmetric)
    V = np.abs(V)
    order = np.argsort(eps)
    eps, V = eps[order], V[order]
    fit = (V**2 / (z[:, None] - eps[None, :])).sum(axis=1)
    err = np.abs(fit - target)
    return BathFit(eps_k=eps, V_k=V, chi2=float(np.mean(Wn * err**2)),
                   max_error=float(err.max()), n_fit=n_fit, sum_V2=float(np.sum(V**2)))
