# SPDX-License-Identifier: Apache-2.0
"""Pure-array transforms between imaginary time, Matsubara frequency and Legendre.

Every function here works on plain numpy arrays whose first axis is the mesh
axis (``G_w`` = frequency x target..., ``G_t`` = tau x target...,
``G_l`` = Legendre x target...) so that the solvers and the database can use
them without Gf objects.  Only fermionic functions are supported.

Conventions (TRIQS, Boehnke et al. PRB 84, 075145 (2011)):

* ``G(i w_n) = int_0^beta dtau e^{i w_n tau} G(tau)``,
  ``G(tau) = (1/beta) sum_n e^{-i w_n tau} G(i w_n)``, ``w_n = (2n+1) pi / beta``.
* High-frequency moments: ``G(i w) ~ sum_k c_k / (i w)^k``; an array of moments
  ``m`` has ``m[k] = c_k`` (``m[0]`` is the constant part).
* ``G_l = sqrt(2l+1) int_0^beta dtau P_l(x(tau)) G(tau)``, ``x = 2 tau / beta - 1``.

The tail functions ``F_k(tau) = (1/beta) sum_n e^{-i w_n tau} / (i w_n)^k``
are polynomials in ``tau`` on ``0 < tau < beta`` (``F_1 = -1/2``,
``F_2 = (2 tau - beta)/4``, ``F_3 = tau (beta - tau)/4``, and
``F_k' = -F_{k-1}``, ``F_k(0) + F_k(beta) = 0`` for ``k >= 2``).  The Fourier
transforms subtract the tail, transform the smooth remainder with an FFT and
add the tail back analytically, so their error is set by the first moment
not subtracted (see ``doc/gf.rst`` for the error estimates).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.polynomial import Polynomial
from numpy.polynomial import legendre as npleg
from scipy.special import spherical_jn

__all__ = [
    "matsubara_freqs",
    "semicircle_g",
    "tail_polynomials",
    "tail_tau",
    "tail_iw",
    "fit_tail",
    "moments_from_tau",
    "iw_to_tau",
    "density_from_iw",
    "tau_to_iw",
    "legendre_matrix_iw",
    "legendre_to_iw",
    "legendre_to_tau",
    "tau_to_legendre",
    "iw_to_legendre",
]

#: Default number of moments (beyond the constant) used by the transforms.
DEFAULT_TAIL_ORDER = 8


def _mm(a, b):
    """Matrix product without BLAS threading.

    The products here are small (a few thousand by a few columns); threaded
    BLAS makes them 10-100x slower when the cores are busy (MPI ranks, other
    jobs), so they use numpy's own loops.
    """
    if a.shape[1] == 0:
        return np.zeros((a.shape[0], b.shape[1]), dtype=np.result_type(a, b))
    if a.shape[1] <= 16:
        out = a[:, 0, None] * b[0]
        for j in range(1, a.shape[1]):
            out = out + a[:, j, None] * b[j]
        return out
    return np.einsum("ij,jk->ik", a, b)


def matsubara_freqs(beta: float, n_iw: int) -> np.ndarray:
    """Fermionic ``i w_n`` for ``n = -n_iw ... n_iw-1`` (TRIQS's mesh order; read-only, cached)."""
    return _matsubara_freqs(float(beta), int(n_iw))


@lru_cache(maxsize=64)
def _matsubara_freqs(beta: float, n_iw: int) -> np.ndarray:
    n = np.arange(-n_iw, n_iw)
    out = 1j * np.pi * (2 * n + 1) / beta
    out.setflags(write=False)
    return out


def semicircle_g(zeta, D=1.0, center=0.0):
    """Local Green's function of the semicircular DOS (Bethe lattice, half bandwidth ``D``).

    .. math:: G(\\zeta) = \\int d\\epsilon \\frac{\\rho(\\epsilon)}{\\zeta - \\epsilon}
              = \\frac{2}{w + \\sqrt{w - D}\\sqrt{w + D}},\\quad w = \\zeta - c,\\qquad
              \\rho(\\epsilon) = \\frac{2}{\\pi D^2}\\sqrt{D^2 - (\\epsilon - c)^2} .

    Parameters
    ----------
    zeta : complex ndarray, any shape
        ``i w_n + mu - Sigma(i w_n)``, off the real axis.
    D : float
        Half bandwidth.
    center : float
        Centre ``c`` of the band.

    Returns
    -------
    complex ndarray, the shape of ``zeta``
        The branch with ``G ~ 1/zeta`` at large ``|zeta|`` (``Im G < 0`` for
        ``Im zeta > 0``); the form above is free of the cancellation of ``2 (w - s) / D^2``
        at large ``|zeta|``.
    """
    w = np.asarray(zeta, complex) - center
    return 2.0 / (w + np.sqrt(w - D) * np.sqrt(w + D))


@lru_cache(maxsize=64)
def tail_polynomials(beta: float, order: int) -> tuple[Polynomial, ...]:
    """Polynomials ``F_1 ... F_order`` with ``F_k(tau) = T sum_n e^{-i w_n tau} (i w_n)^-k``.

    Returns a tuple whose entry ``k-1`` is ``F_k`` (valid on ``0 < tau < beta``).
    """
    polys = [Polynomial([-0.5])]
    for _ in range(2, order + 1):
        p = -polys[-1].integ()
        # fix the constant by antiperiodicity F_k(0) + F_k(beta) = 0
        p = p - 0.5 * (p(0.0) + p(beta))
        polys.append(p)
    return tuple(polys)


def _flat(a):
    a = np.asarray(a)
    return a.reshape(a.shape[0], -1), a.shape[1:]


def tail_tau(moments, beta: float, tau) -> np.ndarray:
    """``sum_{k>=1} c_k F_k(tau)``: the tau-space image of a high-frequency tail.

    ``moments`` has shape ``(K+1, ...)``; the constant ``moments[0]`` is ignored
    (it is a delta function at tau = 0).  Returns shape ``(len(tau), ...)``.
    """
    m, tshape = _flat(moments)
    tau = np.asarray(tau, dtype=float)
    order = m.shape[0] - 1
    out = np.zeros((tau.size, m.shape[1]), dtype=np.result_type(m, float))
    if order >= 1:
        polys = tail_polynomials(float(beta), order)
        for k in range(1, order + 1):
            out += polys[k - 1](tau)[:, None] * m[k][None, :]
    return out.reshape((tau.size, *tshape))


def tail_iw(moments, iw) -> np.ndarray:
    """``sum_k c_k / (i w)^k`` evaluated at the complex points ``iw``."""
    m, tshape = _flat(moments)
    iw = np.asarray(iw)
    inv = 1.0 / iw
    out = np.zeros((iw.size, m.shape[1]), dtype=complex)
    pw = np.ones_like(inv)
    for k in range(m.shape[0]):
        out += pw[:, None] * m[k][None, :]
        pw = pw * inv
    return out.reshape((iw.size, *tshape))


_DESIGNS: dict = {}


def _tail_design(size, w_hi, w_lo, n_known, max_order, tail_fraction, iw):
    """Window, scaled basis and pseudo-inverse of the tail fit (cached: depends on the mesh)."""
    key = (size, w_hi, w_lo, n_known, max_order, tail_fraction)
    hit = _DESIGNS.get(key)
    if hit is not None:
        return hit
    n_pos = int(np.sum(iw.imag > 0))
    n_fit = max(8, int(round(tail_fraction * n_pos)))
    if n_fit > n_pos:
        raise ValueError(
            f"cannot fit a tail on {n_pos} positive frequencies; use a mesh with n_iw >= 8"
        )
    order = iw.imag.argsort()
    win = np.concatenate([order[:n_fit], order[-n_fit:]])
    z = iw[win]
    wmax = np.abs(z).max()
    # scaled basis (w_max / (i w))^k keeps the least-squares problem well conditioned
    x = (wmax / z[:, None]) ** np.arange(max_order + 1)[None, :]
    scale = (1.0 / wmax) ** np.arange(max_order + 1)
    pinv = np.linalg.pinv(x[:, n_known:], rcond=1e-13)
    if len(_DESIGNS) > 64:
        _DESIGNS.clear()
    _DESIGNS[key] = (win, x, scale, pinv)
    return _DESIGNS[key]


def fit_tail(
    G_w,
    iw,
    known_moments=None,
    max_order: int = DEFAULT_TAIL_ORDER,
    tail_fraction: float = 0.4,
    hermitian: bool = True,
):
    """Least-squares fit of the high-frequency moments of ``G_w``.

    The fit uses the outer ``tail_fraction`` of the frequencies on each side
    (at least 8 points each) and keeps the ``known_moments`` fixed.

    Parameters
    ----------
    G_w : ndarray, shape (n_w, ...)
        Values on the points ``iw``.
    iw : ndarray, shape (n_w,)
        Matsubara points (TRIQS order, symmetric around 0).
    known_moments : ndarray, shape (k, ...), optional
        Moments ``c_0 ... c_{k-1}`` that are known and not fitted.  Default:
        ``c_0 = 0`` (a function that vanishes at infinity).
    max_order : int
        Highest moment fitted.
    tail_fraction : float
        Fraction of the positive frequencies used (the largest ones).
    hermitian : bool
        Symmetrise the fitted matrices ``c_k -> (c_k + c_k^dagger)/2``
        (true for Green's functions and self-energies, TRIQS's
        ``fit_hermitian_tail``).

    Returns
    -------
    moments : ndarray, shape (max_order+1, ...)
    err : float
        Maximum absolute residual of the fit in the window.
    """
    G, tshape = _flat(G_w)
    iw = np.asarray(iw)
    if known_moments is None:
        known = np.zeros((1, G.shape[1]), dtype=complex)
    else:
        known = np.asarray(known_moments, dtype=complex).reshape(-1, G.shape[1])
    n_known = known.shape[0]
    if n_known > max_order:
        return known.reshape((n_known, *tshape)), 0.0
    design = _tail_design(iw.size, float(iw.imag.max()), float(iw.imag.min()), n_known,
                          int(max_order), float(tail_fraction), iw)
    win, x, scale, pinv = design
    a = x[:, n_known:]
    rhs = G[win] - _mm(x[:, :n_known] * scale[:n_known], known)
    sol = _mm(pinv, rhs)
    fitted = sol / scale[n_known:, None]
    moments = np.concatenate([known, fitted], axis=0)
    err = float(np.abs(rhs - _mm(a, sol)).max()) if rhs.size else 0.0
    moments = moments.reshape((max_order + 1, *tshape))
    if hermitian and len(tshape) == 2 and tshape[0] == tshape[1]:
        fit_part = moments[n_known:]
        moments[n_known:] = 0.5 * (fit_part + np.conj(np.swapaxes(fit_part, -1, -2)))
    elif hermitian and len(tshape) < 2:
        moments[n_known:] = moments[n_known:].real
    return moments, err


def _one_sided_derivatives(G_t, h, nd=2, npts=8):
    """Derivatives 1..nd at the first point of uniform samples (one-sided stencil)."""
    from math import factorial

    k = np.arange(npts)
    # Taylor matrix: f(k h) = sum_m f^(m) (k h)^m / m!
    A = (k[:, None] * h) ** np.arange(npts)[None, :] / np.array(
        [factorial(m) for m in range(npts)]
    )
    coef = np.linalg.solve(A, G_t[:npts])
    return coef[1 : nd + 1]


def moments_from_tau(G_t, beta: float, order: int = 3) -> np.ndarray:
    """High-frequency moments ``c_0..c_order`` (``order <= 3``) from jumps at tau = 0, beta.

    ``c_1 = -(G(0) + G(beta))``, ``c_2 = G'(0) + G'(beta)``,
    ``c_3 = -(G''(0) + G''(beta))``; derivatives from 8-point one-sided stencils.
    """
    G, tshape = _flat(G_t)
    n_tau = G.shape[0]
    h = beta / (n_tau - 1)
    m = np.zeros((order + 1, G.shape[1]), dtype=G.dtype)
    if order >= 1:
        m[1] = -(G[0] + G[-1])
    if order >= 2:
        npts = min(8, n_tau)
        d0 = _one_sided_derivatives(G, h, 2, npts)
        dB = _one_sided_derivatives(G[::-1], -h, 2, npts)
        m[2] = d0[0] + dB[0]
        if order >= 3:
            m[3] = -(d0[1] + dB[1])
    if order > 3:
        raise ValueError("moments_from_tau estimates moments up to order 3 only")
    return m.reshape((order + 1, *tshape))


#: Moments subtracted analytically as polynomials in tau (higher ones would
#: cancel catastrophically at large beta); the rest of the fitted tail only
#: extends the remainder beyond the mesh.
N_SUBTRACT = 3
#: The remainder is extended with the fitted tail up to ``EXTEND * n_iw``.
EXTEND = 8


def _check_no_constant(m):
    if np.abs(m[0]).max() > 1e-10 * max(1.0, np.abs(m).max()):
        raise ValueError(
            "the function has a constant high-frequency part (moment c_0 = "
            f"{np.abs(m[0]).max():.3g}); its Fourier transform has a delta function at tau=0. "
            "Subtract the constant first (e.g. Sigma_iw - Sigma_inf) and transform the rest."
        )


def _split_tail(G, beta, moments):
    """``(R, m_sub, m_high)``: the remainder ``G - sum_{k<=N_SUBTRACT} c_k (i w)^-k`` on the
    mesh, the subtracted moments, and the higher fitted moments (zero below ``N_SUBTRACT``)
    that extend the remainder beyond the mesh (see :func:`_extension`)."""
    n_iw = G.shape[0] // 2
    iw = matsubara_freqs(beta, n_iw)
    if moments is None:
        moments, _ = fit_tail(G, iw)
    m = np.asarray(moments).reshape(-1, G.shape[1])
    _check_no_constant(m)
    k_sub = min(N_SUBTRACT, m.shape[0] - 1)
    m_sub = m[: k_sub + 1]
    R = G - tail_iw(m_sub, iw)
    m_high = m[k_sub + 1 :]
    return R, m_sub, m_high


@lru_cache(maxsize=32)
def _extension(beta: float, n_iw: int, k_first: int, k_count: int):
    """Matsubara indices ``n_iw <= |n| < EXTEND n_iw`` and ``P[n, j] = (i w_n)^-(k_first + j)``."""
    n_ext = EXTEND * n_iw
    n = np.concatenate([np.arange(-n_ext, -n_iw), np.arange(n_iw, n_ext)])
    iw = 1j * np.pi * (2 * n + 1) / beta
    P = iw[:, None] ** -(k_first + np.arange(k_count))[None, :]
    P.setflags(write=False)
    return n, P


@lru_cache(maxsize=32)
def _extension_bins(beta: float, n_iw: int, k_first: int, k_count: int, M: int):
    """``B[m, j] = sum_{n in extension, n = m mod M} (i w_n)^-(k_first + j)``."""
    n, P = _extension(beta, n_iw, k_first, k_count)
    idx = n % M
    B = np.stack([np.bincount(idx, P[:, j].real, M) + 1j * np.bincount(idx, P[:, j].imag, M)
                  for j in range(k_count)], axis=1)
    B.setflags(write=False)
    return B


@lru_cache(maxsize=32)
def _extension_sums(beta: float, n_iw: int, k_first: int, k_count: int):
    """``S[j] = sum_{n in extension} (i w_n)^-(k_first + j)``."""
    return _extension(beta, n_iw, k_first, k_count)[1].sum(axis=0)


def density_from_iw(G_w, beta: float, moments=None) -> np.ndarray:
    """``-G(beta^-)`` (the TRIQS density for diagonal elements) from Matsubara data.

    Same tail treatment as :func:`iw_to_tau`, evaluated only at ``tau = beta``.
    """
    G, tshape = _flat(G_w)
    R, m_sub, m_high = _split_tail(G, beta, moments)
    # G(beta^-) = T sum_n e^{-i w_n beta} R_n + tails = -T sum_n R_n + tails
    total = R.sum(axis=0)
    if m_high.shape[0]:
        S = _extension_sums(float(beta), G.shape[0] // 2, m_sub.shape[0], m_high.shape[0])
        total = total + np.einsum('j,jc->c', S, m_high)
    g_beta = -total / beta + tail_tau(m_sub, beta, [beta])[0]
    return (-g_beta).reshape(tshape)


#: Smallest ``tau/beta > 0`` of :func:`log_tau_mesh`.
LOG_MESH_X_MIN = 1e-6


def log_tau_mesh(n: int, x_min: float = LOG_MESH_X_MIN) -> np.ndarray:
    """``tau/beta`` points dense towards both ends: 0, ``m = (n - 1)/2`` points geometrically
    spaced from ``x_min`` to 1/2, their mirror images ``1 - x`` (1/2 once), 1 (``n`` odd,
    >= 7).  ``G(tau)`` near 0 and beta decays as ``e^{-E tau}`` on every scale ``1/E``; with
    ``n = 201`` there are about 17 points per decade of ``tau`` down to ``x_min beta``."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 7 or n % 2 == 0:
        raise ValueError(f"a log tau mesh needs an odd number of points >= 7, got {n!r}")
    m = (int(n) - 1) // 2
    half = np.geomspace(x_min, 0.5, m)
    half[-1] = 0.5
    return np.concatenate([[0.0], half, 1.0 - half[-2::-1], [1.0]])


#: Uniform tau points a solver returns before :func:`uniform_tau_to_points` takes its G to a
#: non-uniform mesh (at beta = 400 the spacing 0.024 resolves ``e^{-E tau}`` up to E ~ 10).
DENSE_N_TAU = 16385


#: Half width (nodes) of the window :func:`spline_weights` builds each point's weights on.
SPLINE_WINDOW = 60


@lru_cache(maxsize=8)
def _spline_weights_cached(n: int, x_bytes: bytes):
    from scipy import sparse
    from scipy.interpolate import make_interp_spline

    x = np.frombuffer(x_bytes, float)
    xd = np.linspace(0.0, 1.0, n)
    rows, cols, vals = [], [], []
    L = SPLINE_WINDOW
    for i, xi in enumerate(x):
        c = int(np.clip(np.rint(xi * (n - 1)), 0, n - 1))
        a, b = max(0, c - L), min(n, c + L + 1)
        if b - a < 6:  # (a grid this short is splined whole)
            a, b = 0, n
        w = make_interp_spline(xd[a:b], np.eye(b - a), k=5, axis=0)(np.array([xi]))[0]
        keep = np.flatnonzero(w != 0.0)
        rows.append(np.full(keep.size, i))
        cols.append(a + keep)
        vals.append(w[keep])
    return sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows),
                                                      np.concatenate(cols))),
                             shape=(len(x), n))


def spline_weights(n: int, x):
    """Sparse ``(len(x), n)`` matrix ``W`` with ``G(x) = W @ G_uniform``: the quintic
    (not-a-knot) interpolating spline of ``n`` uniform values on ``[0, 1]`` at the points
    ``x``.  Each row is built on the ``2 SPLINE_WINDOW + 1`` nodes around its point (the
    whole grid's spline weighs far nodes by factors ``0.43^distance``: beyond 60 nodes they
    are below 1e-22); cached per ``(n, x)``."""
    x = np.ascontiguousarray(np.asarray(x, float).ravel())
    return _spline_weights_cached(int(n), x.tobytes())


def uniform_tau_to_points(G_t, x) -> np.ndarray:
    """Quintic spline of ``G`` on a uniform mesh of ``[0, beta]`` (last axis) at the points
    ``x = tau/beta`` (a non-uniform stored mesh such as :func:`log_tau_mesh`), through the
    cached :func:`spline_weights` (the same values as ``make_interp_spline(..., k=5)`` on
    the whole grid, to round-off; ~100x faster when the points are reused)."""
    G_t = np.asarray(G_t)
    x = np.asarray(x, float)
    W = spline_weights(G_t.shape[-1], x)
    flat = G_t.reshape(-1, G_t.shape[-1])
    out = (W @ flat.T).T
    return out.reshape(*G_t.shape[:-1], *x.shape)


def iw_to_tau(G_w, beta: float, n_tau: int, moments=None) -> np.ndarray:
    """Fourier transform from the full Matsubara mesh to a uniform tau mesh.

    Parameters
    ----------
    G_w : ndarray, shape (2 n_iw, ...)
        ``G(i w_n)`` for ``n = -n_iw ... n_iw - 1``.
    beta : float
    n_tau : int
        Number of tau points (both ends included).
    moments : ndarray, shape (K+1, ...), optional
        High-frequency moments (``moments[0]`` must vanish).  Fitted when omitted.

    Returns
    -------
    G_t : ndarray, shape (n_tau, ...), complex.  ``G_t[0]`` is ``G(0+)`` and
    ``G_t[-1]`` is ``G(beta-)``.
    """
    G, tshape = _flat(G_w)
    if G.shape[0] % 2:
        raise ValueError("iw_to_tau needs a fermionic mesh with an even number of points")
    n_iw = G.shape[0] // 2
    R, m_sub, m_high = _split_tail(G, beta, moments)
    M = n_tau - 1
    bins = np.zeros((M, G.shape[1]), dtype=complex)
    idx = np.arange(-n_iw, n_iw) % M
    if 2 * n_iw <= M:
        bins[idx] = R
    else:  # folded onto the coarser grid (bincount: ~3x faster than np.add.at)
        for c in range(R.shape[1]):
            bins[:, c] = np.bincount(idx, weights=R[:, c].real, minlength=M) + 1j * np.bincount(
                idx, weights=R[:, c].imag, minlength=M)
    if m_high.shape[0]:
        bins += _mm(_extension_bins(float(beta), n_iw, m_sub.shape[0], m_high.shape[0], M),
                    m_high)
    S = np.fft.fft(bins, axis=0) * _half_shift(M)[:, None]
    out = np.empty((n_tau, G.shape[1]), dtype=complex)
    out[:M] = S / beta
    out[M] = -S[0] / beta
    out += tail_tau(m_sub, beta, _tau_grid(float(beta), n_tau))
    return out.reshape((n_tau, *tshape))


@lru_cache(maxsize=16)
def _half_shift(M: int) -> np.ndarray:
    return np.exp(-1j * np.pi * np.arange(M) / M)


@lru_cache(maxsize=16)
def _tau_grid(beta: float, n_tau: int) -> np.ndarray:
    return np.linspace(0.0, beta, n_tau)


def tau_to_iw(G_t, beta: float, n_iw: int, moments=None) -> np.ndarray:
    """Fourier transform from a uniform tau mesh to ``2 n_iw`` Matsubara points.

    The moments ``c_1..c_3`` (from ``moments`` or estimated from the jumps
    of ``G`` and its derivatives at tau = 0, beta) are subtracted as the
    polynomials ``F_k(tau)``; the remainder is smooth and antiperiodic and its
    trapezoidal sum (by FFT) is exact up to aliasing at ``w +- 2 pi / h``.
    """
    G, tshape = _flat(G_t)
    n_tau = G.shape[0]
    if n_tau < 3:
        raise ValueError("tau_to_iw needs at least 3 tau points")
    if moments is None:
        moments = moments_from_tau(G, beta, order=3 if n_tau >= 8 else 1)
    m = np.asarray(moments, dtype=complex).reshape(-1, G.shape[1])
    tau = np.linspace(0.0, beta, n_tau)
    R = G - tail_tau(m, beta, tau)
    M = n_tau - 1
    h = beta / M
    Rw = R[:M].astype(complex)
    Rw[0] = 0.5 * (R[0] - R[M])
    Rw *= np.exp(1j * np.pi * np.arange(M) / M)[:, None]
    F = np.fft.ifft(Rw, axis=0) * M  # F[n mod M] = sum_j Rw_j e^{2 pi i n j / M}
    n = np.arange(-n_iw, n_iw)
    out = h * F[n % M]
    out += tail_iw(m, matsubara_freqs(beta, n_iw))
    return out.reshape((2 * n_iw, *tshape))


@lru_cache(maxsize=32)
def _legendre_matrix_range(n_first: int, n_count: int, n_l: int) -> np.ndarray:
    n = np.arange(n_first, n_first + n_count)
    l = np.arange(n_l)
    x = np.abs((2 * n + 1) * np.pi / 2)[:, None]
    jl = spherical_jn(l[None, :], x)
    # j_l(-x) = (-1)^l j_l(x)
    jl = jl * np.where(((2 * n + 1) < 0)[:, None] & (l[None, :] % 2 == 1), -1.0, 1.0)
    phase = ((-1.0) ** (n % 2))[:, None] * (1j ** ((l + 1) % 4))[None, :]
    T = np.sqrt(2 * l + 1)[None, :] * phase * jl
    T.setflags(write=False)
    return T


def legendre_matrix_iw(n, n_l: int) -> np.ndarray:
    """``T_nl = sqrt(2l+1) (-1)^n i^{l+1} j_l((2n+1) pi / 2)``, shape ``(len(n), n_l)``.

    ``G(i w_n) = sum_l T_nl G_l`` (Boehnke et al. 2011, Eq. (E2)).  Contiguous
    index ranges are cached (the spherical Bessel functions dominate the cost).
    """
    n = np.asarray(n)
    if n.size and np.all(np.diff(n) == 1):
        return _legendre_matrix_range(int(n[0]), int(n.size), int(n_l))
    T = _legendre_matrix_range(int(n.min()), int(n.max() - n.min() + 1), int(n_l))
    return T[n - n.min()]


def legendre_to_iw(G_l, n_iw: int) -> np.ndarray:
    """``G(i w_n) = sum_l T_nl G_l`` on ``n = -n_iw ... n_iw - 1``."""
    Gl, tshape = _flat(G_l)
    T = legendre_matrix_iw(np.arange(-n_iw, n_iw), Gl.shape[0])
    return _mm(T, Gl).reshape((2 * n_iw, *tshape))


def legendre_to_tau(G_l, beta: float, tau) -> np.ndarray:
    """``G(tau) = sum_l sqrt(2l+1)/beta P_l(x(tau)) G_l`` at the points ``tau``."""
    Gl, tshape = _flat(G_l)
    tau = np.asarray(tau, dtype=float)
    x = 2 * tau / beta - 1
    n_l = Gl.shape[0]
    V = npleg.legvander(x, n_l - 1) * (np.sqrt(2 * np.arange(n_l) + 1) / beta)[None, :]
    return _mm(V, Gl).reshape((tau.size, *tshape))


#: Gauss points per tau interval in :func:`tau_to_legendre`.
_GAUSS_PER_INTERVAL = 6


@lru_cache(maxsize=16)
def _legendre_nodes(n_tau: int, n_l: int):
    """Gauss nodes on every interval of the uniform grid in ``x in [-1, 1]`` and the
    matrix ``W[l, q] = sqrt(2l+1) P_l(x_q) w_q / 2``."""
    x = np.linspace(-1.0, 1.0, n_tau)
    xg, wg = npleg.leggauss(_GAUSS_PER_INTERVAL)
    h = x[1] - x[0]
    nodes = (x[:-1, None] + h * (xg[None, :] + 1) / 2).ravel()
    weights = np.tile(wg * h / 2, n_tau - 1)
    P = npleg.legvander(nodes, n_l - 1) * np.sqrt(2 * np.arange(n_l) + 1)[None, :]
    return x, nodes, np.ascontiguousarray((P * weights[:, None]).T / 2)


def tau_to_legendre(G_t, beta: float, n_l: int) -> np.ndarray:
    """``G_l = sqrt(2l+1) int P_l(x(tau)) G(tau) dtau`` from samples on a uniform tau mesh.

    ``G(tau)`` is interpolated by a quintic spline (error ``O(h^6)``; lower
    degree on grids under 12 points) and integrated against ``P_l`` with Gauss
    quadrature on every grid interval, which resolves ``P_l`` near the ends
    where it varies on the scale ``1/l^2``.
    """
    from scipy.interpolate import make_interp_spline

    G, tshape = _flat(G_t)
    n_tau = G.shape[0]
    k = 5 if n_tau >= 12 else min(3, n_tau - 1)
    x, nodes, W = _legendre_nodes(n_tau, n_l)
    parts = [G.real, G.imag] if np.iscomplexobj(G) else [G]
    vals = [make_interp_spline(x, p, k=k)(nodes) for p in parts]
    Gq = vals[0] + 1j * vals[1] if len(vals) == 2 else vals[0]
    return (beta * _mm(W, Gq)).reshape((n_l, *tshape))


@lru_cache(maxsize=32)
def _legendre_of_tail(beta: float, n_l: int, order: int) -> np.ndarray:
    """``L[l, k-1] = sqrt(2l+1) int_0^beta P_l(x) F_k(tau) dtau`` (exact Gauss quadrature)."""
    x, wq = npleg.leggauss(max(n_l, order) + 4)
    tau = beta * (x + 1) / 2
    P = npleg.legvander(x, n_l - 1) * np.sqrt(2 * np.arange(n_l) + 1)[None, :]
    polys = tail_polynomials(float(beta), order)
    Fk = np.stack([p(tau) for p in polys], axis=1)
    return (P * (wq * beta / 2)[:, None]).T @ Fk


@lru_cache(maxsize=32)
def _legendre_of_extension(beta: float, n_iw: int, n_l: int, k_first: int, k_count: int):
    """``L[l, j] = sum_{n in extension} conj(T_nl) (i w_n)^-(k_first + j)``."""
    n, P = _extension(beta, n_iw, k_first, k_count)
    T = legendre_matrix_iw(np.arange(-EXTEND * n_iw, EXTEND * n_iw), n_l)
    T_ext = np.concatenate([T[: (EXTEND - 1) * n_iw], T[(EXTEND + 1) * n_iw :]])
    return np.conj(T_ext).T @ P


@lru_cache(maxsize=32)
def _legendre_matrix_h(n_iw: int, n_l: int) -> np.ndarray:
    """``conj(T).T`` on the mesh ``-n_iw ... n_iw-1``, contiguous (cached)."""
    out = np.ascontiguousarray(np.conj(legendre_matrix_iw(np.arange(-n_iw, n_iw), n_l)).T)
    out.setflags(write=False)
    return out


@lru_cache(maxsize=32)
def _legendre_matrix_h_pos(n_iw: int, n_l: int) -> np.ndarray:
    """The ``w_n > 0`` half of :func:`_legendre_matrix_h`, contiguous (cached)."""
    out = np.ascontiguousarray(_legendre_matrix_h(n_iw, n_l)[:, n_iw:])
    out.setflags(write=False)
    return out


def iw_to_legendre(G_w, beta: float, n_l: int, moments=None) -> np.ndarray:
    """``G_l = sum_n conj(T_nl) G(i w_n)`` with the tail summed analytically.

    The remainder ``G - sum_{k<=3} c_k (i w)^-k`` (extended beyond the mesh by
    the fitted higher moments) is summed over ``n``; the subtracted tail
    contributes ``sqrt(2l+1) int P_l F_k`` exactly.
    """
    G, tshape = _flat(G_w)
    n_iw = G.shape[0] // 2
    R, m_sub, m_high = _split_tail(G, beta, moments)
    if np.array_equal(R[n_iw - 1::-1], R[n_iw:].conj()):
        # every column hermitian (a real G(tau)): conj(T_{-n-1,l}) R_{-n-1} is the complex
        # conjugate of conj(T_nl) R_n, so the pairs sum to twice the real part -- half the
        # matrix read (it is the cost: memory-bound), and odd-l coefficients of a
        # particle-hole symmetric G come out exactly zero term by term
        out = 2.0 * _mm(_legendre_matrix_h_pos(n_iw, n_l), R[n_iw:]).real
    else:
        out = _mm(_legendre_matrix_h(n_iw, n_l), R)
    if m_high.shape[0]:
        out = out + _mm(_legendre_of_extension(
            float(beta), n_iw, n_l, m_sub.shape[0], m_high.shape[0]), m_high)
    order = m_sub.shape[0] - 1
    if order >= 1:
        out = out + _mm(_legendre_of_tail(float(beta), n_l, order), m_sub[1:])
    return out.reshape((n_l, *tshape))
