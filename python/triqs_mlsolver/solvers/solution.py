# SPDX-License-Identifier: Apache-2.0
"""The result of an impurity solve as plain arrays, and builders from the
representation a solver computes natively (poles, Matsubara or tau data).

Arrays carry a leading spin axis ``s`` (0 = up, 1 = down): ``G_sw`` on the
``2 n_iw`` Matsubara points, ``G_st`` on ``n_tau`` uniform tau points (real),
``G_sl`` Legendre coefficients (real).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..gf import transforms as tr
from . import _ed_kernels as _kernels

#: Use the compiled pole sums of :mod:`._ed_kernels` where numba is available (the tests
#: switch it off to compare with the numpy path).
USE_KERNELS = True

__all__ = [
    "AIMSolution",
    "solution_from_poles",
    "solution_from_iw",
    "solution_from_tau",
    "legendre_of_poles",
    "tau_of_poles",
    "tau_of_poles_grid",
    "iw_of_poles",
    "impurity_poles",
]


@dataclass
class AIMSolution:
    """One AIM solution.

    Attributes
    ----------
    beta : float
    G_iw : ndarray (2, 2 n_iw) complex
    G_tau : ndarray (2, n_tau) float
    G_l : ndarray (2, n_l) float
    Sigma_iw : ndarray (2, 2 n_iw) complex, ``G0^-1 - G^-1`` (Hartree part included)
    density : ndarray (2,), ``<n_s>``
    double_occupancy : float or None, ``<n_up n_dn>`` where the solver knows it
    energy : float or None
    wall_time : float, seconds
    solver : str
    settings : dict, the options the solver ran with
    diagnostics : dict, solver-specific (fit error, states kept, iterations, ...)
    """

    beta: float
    G_iw: np.ndarray
    G_tau: np.ndarray
    G_l: np.ndarray
    Sigma_iw: np.ndarray
    density: np.ndarray
    double_occupancy: float | None = None
    energy: float | None = None
    wall_time: float = 0.0
    solver: str = ""
    settings: dict = field(default_factory=dict)
    diagnostics: dict = field(default_factory=dict)

    @property
    def n_iw(self) -> int:
        return self.G_iw.shape[1] // 2

    @property
    def n_tau(self) -> int:
        return self.G_tau.shape[1]

    @property
    def n_l(self) -> int:
        return self.G_l.shape[1]

    def Z(self) -> np.ndarray:
        """First-Matsubara quasiparticle estimate ``Z0 = 1/(1 - Im Sigma(i w_0)/w_0)`` per spin.

        A finite-temperature estimate, not the T = 0 residue.
        """
        w0 = np.pi / self.beta
        return 1.0 / (1.0 - self.Sigma_iw[:, self.n_iw].imag / w0)


def tau_of_poles(E_p, W_p, beta, tau) -> np.ndarray:
    """``G(tau) = -sum_p W_p e^{-E_p tau} / (1 + e^{-beta E_p})``, overflow-free."""
    E = np.asarray(E_p, float)[None, :]
    W = np.asarray(W_p, float)[None, :]
    t = np.asarray(tau, float)[:, None]
    pos = E >= 0
    # E >= 0: e^{-E tau}/(1+e^{-beta E});  E < 0: e^{E (beta - tau)}/(1+e^{beta E})
    num = np.where(pos, np.exp(-np.where(pos, E, 0) * t), np.exp(np.where(pos, 0, E) * (beta - t)))
    den = 1.0 + np.exp(-beta * np.abs(E))
    return -(W * num / den).sum(axis=1)


def tau_of_poles_grid(E_p, W_p, beta, n_tau):
    """``G(tau_j) = -sum_p W_p e^{-E_p tau_j}/(1 + e^{-beta E_p})`` on the uniform grid.

    The same exact sum as :func:`triqs_mlsolver.solvers.solution.tau_of_poles`, but with
    ``tau_j = j dtau``, ``j = m J + r``: ``e^{-|E| tau_j} = e^{-|E| dtau J m} e^{-|E| dtau r}``,
    so the sum is one matrix product ``(M x P) @ (P x J)`` per sign of ``E`` (poles with
    ``E < 0`` are written in ``beta - tau``), about ``sqrt(n_tau)`` times fewer exponentials.
    Every factor is <= 1 (no overflow); the result agrees with the direct sum to rounding.
    """
    E = np.asarray(E_p, float).ravel()
    W = np.asarray(W_p, float).ravel()
    n_tau = int(n_tau)
    dt = beta / (n_tau - 1)
    J = max(1, int(math.ceil(math.sqrt(n_tau))))
    M = -(-n_tau // J)
    out = np.zeros(n_tau)
    for neg in (False, True):
        sel = (E < 0) if neg else (E >= 0)
        if not np.any(sel):
            continue
        x = np.abs(E[sel]) * dt
        c = W[sel] / (1.0 + np.exp(-beta * np.abs(E[sel])))
        A = c[None, :] * np.exp(-np.outer(np.arange(M) * J, x))
        B = np.exp(-np.outer(x, np.arange(J)))
        S = (A @ B).ravel()[:n_tau]  # S[j] = sum_p c_p e^{-|E_p| dtau j}
        out -= S[::-1] if neg else S
    return out


def iw_of_poles(E_p, W_p, beta, n_iw):
    """``G(i w_n) = sum_p W_p / (i w_n - E_p)`` on the TRIQS mesh (``2 n_iw`` points).

    Real arithmetic on the positive half, ``G(-i w) = conj G(i w)``:
    ``G(i w) = -sum_p W_p (E_p + i w) / (w^2 + E_p^2)``.
    """
    E = np.asarray(E_p, float).ravel()
    W = np.asarray(W_p, float).ravel()
    w = np.pi * (2 * np.arange(n_iw) + 1) / beta
    if _kernels.HAVE_NUMBA and USE_KERNELS:
        pos = _kernels.iw_of_poles_pos(E, W, w)
        return np.concatenate([pos[::-1].conj(), pos])
    w2 = w[:, None] ** 2
    re = np.zeros(n_iw)
    im = np.zeros(n_iw)
    step = 256  # poles per block: temporaries of n_iw x 256 stay in cache
    for i in range(0, E.size, step):
        e = E[i:i + step]
        R = 1.0 / (w2 + e[None, :] ** 2)
        re -= R @ (W[i:i + step] * e)
        im -= R @ W[i:i + step]
    pos = re + 1j * w * im
    return np.concatenate([pos[::-1].conj(), pos])


def _scaled_spherical_in(n_l, x) -> np.ndarray:
    """``e^{-x} i_l(x)`` for ``l < n_l`` and ``x >= 0`` (shape ``(len(x), n_l)``).

    Miller's backward recurrence on the ratios ``r_l = i_l / i_{l-1} = 1 / ((2l+1)/x +
    r_{l+1})`` (stable for the minimal solution ``i_l``, no overflow), started where
    ``i_l / i_0`` is below rounding (``l ~ n_l + sqrt(80 x) + 20``), normalised by
    ``e^{-x} i_0(x) = (1 - e^{-2x}) / (2x)``.  Agrees with scipy's ``spherical_in`` /
    ``ive`` to rounding and is ~20x faster for many poles.
    """
    x = np.asarray(x, float)
    big = x > _X_CLOSED * max(n_l, 1) ** 2
    if np.any(big):  # far poles: the closed form (the recurrence would need ~sqrt(80 x) steps)
        out = np.empty((x.size, n_l))
        out[big] = _scaled_spherical_in_closed(n_l, x[big])
        if not np.all(big):
            out[~big] = _scaled_spherical_in(n_l, x[~big])
        return out
    L = int(n_l + 20 + np.sqrt(80.0 * (x.max() if x.size else 0.0)))
    pos = x > 0  # i_l(0) = 0 for l >= 1: those ratios stay 0
    inv = 1.0 / x[pos]
    r = np.zeros(inv.size)
    tmp = np.empty(inv.size)
    ratios = np.ones((n_l, x.size))
    ratios[1:] = 0.0
    rp = np.empty((n_l, inv.size))
    for l in range(L, 0, -1):
        np.multiply(inv, 2 * l + 1, out=tmp)
        tmp += r
        np.divide(1.0, tmp, out=r)
        if l < n_l:
            rp[l] = r
    ratios[1:, pos] = rp[1:]
    small = x < 1e-8
    xs = np.where(small, 1.0, x)
    s0 = np.where(small, 1.0 - x, -np.expm1(-2.0 * xs) / (2.0 * xs))
    return (s0[None, :] * np.cumprod(ratios, axis=0)).T


#: ``_scaled_spherical_in`` uses the closed form for ``x > _X_CLOSED n_l^2``.
_X_CLOSED = 50.0


def _scaled_spherical_in_closed(n_l, x) -> np.ndarray:
    """``e^{-x} i_l(x)`` from the closed form ``i_l(x) = (e^x S_l(-1/2x) - (-1)^l e^{-x}
    S_l(1/2x)) / 2x`` with ``S_l(t) = sum_k (l+k)!/(k!(l-k)!) t^k`` (a finite sum); for
    ``x > _X_CLOSED n_l^2`` the ``e^{-2x}`` part is below rounding and the alternating sum's
    terms fall by at least ``l^2/2x <= 1/100`` each: no cancellation."""
    x = np.asarray(x, float)
    t = -1.0 / (2.0 * x)
    out = np.empty((x.size, n_l))
    for l in range(n_l):
        term = np.ones_like(x)
        acc = np.ones_like(x)
        for k in range(l):
            term = term * ((l + k + 1) * (l - k) / (k + 1)) * t
            acc += term
        out[:, l] = acc / (2.0 * x)
    return out


def impurity_poles(e_d, sites, hops):
    """Poles ``(E_p, W_p)`` of ``G(z) = 1/(z - e_d - sum_j hops_j^2 / (z - sites_j))``:
    the impurity row of the eigenvectors of the auxiliary single-particle Hamiltonian."""
    m = len(sites) + 1
    H = np.zeros((m, m))
    H[0, 0] = e_d
    H[0, 1:] = H[1:, 0] = hops
    H[np.arange(1, m), np.arange(1, m)] = sites
    E, vec = np.linalg.eigh(H)
    return E, vec[0] ** 2


def legendre_of_poles(E_p, W_p, beta, n_l) -> np.ndarray:
    """Exact ``G_l`` of ``G(tau) = -sum_p W_p e^{-E_p tau}/(1+e^{-beta E_p})``.

    Uses ``int_{-1}^{1} P_l(x) e^{-a x} dx = 2 (-1)^l i_l(a)`` with ``a = beta E / 2``
    and the exponentially scaled Bessel functions (:func:`_scaled_spherical_in`).
    """
    E = np.asarray(E_p, float)
    W = np.asarray(W_p, float)
    l = np.arange(n_l)
    if _kernels.HAVE_NUMBA and USE_KERNELS:
        return -np.sqrt(2 * l + 1) * beta * _kernels.legendre_sum_of_poles(
            E.ravel(), W.ravel(), beta, n_l, _X_CLOSED)
    a = beta * E / 2
    aa = np.abs(a)[:, None]
    # s(a) = e^{-|a|} i_l(|a|) / (1 + e^{-2|a|})
    scaled = _scaled_spherical_in(n_l, np.abs(a)) / (1 + np.exp(-2 * aa))
    # e^{-a} i_l(a) with the sign (-1)^l for a < 0, times (-1)^l from the integral
    sign = np.where((a[:, None] < 0) & (l[None, :] % 2 == 1), -1.0, 1.0) * (-1.0) ** l[None, :]
    return -np.sqrt(2 * l + 1) * beta * (W[:, None] * sign * scaled).sum(axis=0)


def galitskii_migdal(Sigma_sw, G_sw, beta, sigma_inf, c1, density):
    """``<n_up n_dn>`` from ``U d = T sum_n Sigma_s(i w_n) G_s(i w_n) e^{i w_n 0+}``, spin-averaged.

    ``Sigma = sigma_inf + Sigma_c`` with ``Sigma_c ~ c1 / (i w)``; the constant
    contributes ``sigma_inf n_s`` and the ``c1/(i w)^2`` tail of ``Sigma_c G``
    is summed analytically (``T sum_n (i w_n)^-2 = -beta/4``).  Returns
    ``U * d`` per spin (the caller divides by ``U``).
    """
    n_iw = G_sw.shape[1] // 2
    iw = 1j * np.pi * (2 * np.arange(-n_iw, n_iw) + 1) / beta
    out = []
    for s in range(2):
        body = ((Sigma_sw[s] - sigma_inf[s]) * G_sw[s] - c1[s] / iw**2).sum().real / beta
        out.append(sigma_inf[s] * density[s] + body + c1[s] * (-beta / 4))
    return np.array(out)


def double_occupancy_from_ud(ud, U, density) -> float:
    """``<n_up n_dn>`` from the per-spin Galitskii-Migdal values ``U d`` (spin average);
    at ``U = 0`` the exact ``n_up n_dn``."""
    if U > 0:
        return float(np.mean(ud) / U)
    return float(density[0] * density[1])


def add_remainder_transforms(G_tau, G_l, rem, iw, beta, *, n_known, max_order):
    """``G_tau + transform(rem)``, ``G_l + transform(rem)`` per row: an exactly known function
    (e.g. of poles) plus the transforms of a small remainder ``rem`` (rows, ``2 n_iw``) whose
    first ``n_known`` moments vanish (the next ones fitted up to ``max_order``).  The
    remainder is transformed where a moment tail of the whole function could not be (levels
    beyond the Matsubara mesh): being small, its tail error is small."""
    rem = np.atleast_2d(rem)
    m, _ = tr.fit_tail(rem.T, iw, known_moments=np.zeros((n_known, len(rem))),
                       max_order=max_order)
    return (G_tau + tr.iw_to_tau(rem.T, beta, G_tau.shape[1], m).real.T,
            G_l + tr.iw_to_legendre(rem.T, beta, G_l.shape[1], m).real.T)


def _dyson(params, G_sw):
    n_iw = G_sw.shape[1] // 2
    return 1.0 / params.g0_iw(n_iw) - 1.0 / G_sw


def _spin_map(fn, items, same):
    """``[fn(items[0]), fn(items[1])]``, computing once when the spins are the same."""
    first = fn(items[0])
    return np.stack([first, first if same else fn(items[1])])


def _same_spins(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b)) if isinstance(a, tuple) else \
        np.array_equal(a, b)


def density_of_poles(E_p, W_p, beta) -> float:
    """``<n> = -G(beta^-) = sum_p W_p n_F(E_p)`` (the last point of :func:`tau_of_poles_grid`)."""
    from scipy.special import expit

    E = np.asarray(E_p, float).ravel()
    return float(np.sum(np.asarray(W_p, float).ravel() * expit(-beta * E)))


def solution_from_poles(params, poles, *, n_iw, n_tau, n_l, **extra) -> AIMSolution:
    """Build a solution from the Lehmann poles ``[(E_p, W_p)]`` of each spin (exact).

    ``n_tau = n_l = None``: ``G(i w_n)``, the self-energy and the density only (``G_tau``,
    ``G_l`` are ``None``; the density from the poles), for a caller that needs no more."""
    beta = params.beta
    same = _same_spins(tuple(poles[0]), tuple(poles[1]))
    G_iw = _spin_map(lambda p: iw_of_poles(p[0], p[1], beta, n_iw), poles, same)
    # the density from the poles (= -G_tau(beta-) to rounding), the same with or without tau
    density = np.array([density_of_poles(E, W, beta) for E, W in poles])
    if n_tau is None and n_l is None:
        return AIMSolution(beta=params.beta, G_iw=G_iw, G_tau=None, G_l=None,
                           Sigma_iw=_dyson(params, G_iw), density=density, **extra)
    G_tau = _spin_map(lambda p: tau_of_poles_grid(p[0], p[1], beta, n_tau), poles, same)
    G_l = _spin_map(lambda p: legendre_of_poles(p[0], p[1], params.beta, n_l), poles, same)
    return AIMSolution(beta=params.beta, G_iw=G_iw, G_tau=G_tau, G_l=G_l,
                       Sigma_iw=_dyson(params, G_iw), density=density, **extra)


def solution_from_iw(params, G_sw, *, n_tau, n_l, moments=None, **extra) -> AIMSolution:
    """Build a solution from ``G(i w_n)`` (tail-corrected transforms).

    ``moments``: per-spin known moments, shape ``(2, k)``; default ``c0 = 0, c1 = 1``.
    """
    G_sw = np.asarray(G_sw, complex)
    iw = params.iw(G_sw.shape[1] // 2)
    kms = [np.array([0.0, 1.0]) if moments is None else np.asarray(moments[s]) for s in range(2)]
    same = np.array_equal(G_sw[0], G_sw[1]) and np.array_equal(kms[0], kms[1])

    def transform(s):
        m, _ = tr.fit_tail(G_sw[s], iw, known_moments=kms[s])
        return np.concatenate([tr.iw_to_tau(G_sw[s], params.beta, n_tau, m).real,
                               tr.iw_to_legendre(G_sw[s], params.beta, n_l, m).real])

    both = _spin_map(transform, [0, 1], same)
    G_tau, G_l = both[:, :n_tau], both[:, n_tau:]
    return AIMSolution(beta=params.beta, G_iw=G_sw, G_tau=G_tau, G_l=G_l,
                       Sigma_iw=_dyson(params, G_sw), density=-G_tau[:, -1], **extra)


def solution_from_tau(params, G_st, *, n_iw, n_tau, n_l, **extra) -> AIMSolution:
    """Build a solution from ``G(tau)`` on a uniform grid of any size.

    The data are interpolated by a quintic spline (the end values kept
    exactly) onto ``max(n_in, 4 n_iw + 1)`` points for the Fourier transform,
    so that its FFT does not alias below the largest Matsubara frequency, and
    onto ``n_tau`` points for the stored ``G_tau``; ``G_l`` is integrated from
    the input grid (:func:`~triqs_mlsolver.gf.transforms.tau_to_legendre`).
    """
    from scipy.interpolate import make_interp_spline

    G_st = np.asarray(G_st, float)
    beta = params.beta
    n_in = G_st.shape[1]
    grid = np.linspace(0.0, beta, n_in)
    spline = make_interp_spline(grid, G_st, k=min(5, n_in - 1), axis=1)

    def resample(n):
        out = spline(np.linspace(0.0, beta, n))
        out[:, 0], out[:, -1] = G_st[:, 0], G_st[:, -1]
        return out

    n_fine = max(n_in, 4 * n_iw + 1)
    G_fine = G_st if n_fine == n_in else resample(n_fine)
    same = np.array_equal(G_st[0], G_st[1])
    G_iw = _spin_map(lambda g: tr.tau_to_iw(g, beta, n_iw), G_fine, same)
    G_l = _spin_map(lambda g: tr.tau_to_legendre(g, beta, n_l), G_st, same)
    G_tau = G_st if n_tau == n_in else resample(n_tau)
    return AIMSolution(beta=beta, G_iw=G_iw, G_tau=G_tau, G_l=G_l,
                       Sigma_iw=_dyson(params, G_iw), density=-G_st[:, -1], **extra)
