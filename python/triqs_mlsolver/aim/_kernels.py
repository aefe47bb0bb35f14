# SPDX-License-Identifier: Apache-2.0
"""Compiled kernels of the bath fit (private; see :mod:`.bath`).

The fit evaluates its residual and Jacobian (joint search and polish), Hessian (Newton
polish) or variable projection (levels-only search: columns, Householder QR, weights) some
30-60 times per fit on ~100 frequencies; in numpy each evaluation is a handful of small
temporaries and LAPACK calls (~20-35 us), here one pass (~2-10 us): the 2- and 3-site fits
of MLSolver's inputs 1.27 -> 0.82 ms and 1.59 -> 1.20 ms.  numba is a dependency; without
it (``HAVE_NUMBA`` False) the numpy path serves, with the same results to round-off
(tested).  Round-off differences can still send the multi-start search to another local
minimum on rare, ill-conditioned inputs (doc/solvers/ed.rst).
"""

from __future__ import annotations

import numpy as np

try:  # pragma: no cover - exercised by the import itself
    import numba as _nb
except ImportError:  # pragma: no cover - numba is a dependency; the numpy path serves
    _nb = None

HAVE_NUMBA = _nb is not None

__all__ = ["HAVE_NUMBA", "residual_jacobian", "residual_jacobian_hessian", "vp_project"]


def _resid_jac(eps, V, z, sw, b, r, Jf):  # pragma: no cover - compiled
    """``r_n = sum_j V_j^2 sw_n / (z_n - eps_j) - b_n``; ``Jf[j] = dr/d eps_j``,
    ``Jf[k + j] = dr/dV_j``."""
    k = eps.size
    for n in range(z.size):
        acc = 0j
        for j in range(k):
            inv = 1.0 / (z[n] - eps[j])
            s = sw[n] * inv
            v2s = V[j] * V[j] * s
            acc += v2s
            Jf[j, n] = v2s * inv
            Jf[k + j, n] = 2.0 * V[j] * s
        r[n] = acc - b[n]


_resid_jac_c = _nb.njit(cache=True, nogil=True)(_resid_jac) if HAVE_NUMBA else None


def residual_jacobian(eps, V, z, sw, b):
    """``(r, Jf)`` of :func:`_resid_jac` (compiled)."""
    k, N = eps.size, z.size
    r = np.empty(N, complex)
    Jf = np.empty((2 * k, N), complex)
    _resid_jac_c(np.ascontiguousarray(eps, float), np.ascontiguousarray(V, float), z, sw, b,
                 r, Jf)
    return r, Jf


def _vp_project(p, z, sw, bf, free):  # pragma: no cover - compiled
    """The variable projection of ``bath._Problem.project`` (unconstrained bath) up to the
    weights: columns ``C_j = sw / (z - p_j)``, ``dC_j = C_j / (z - p_j)``, Householder QR of
    the interleaved real basis, ``c`` by back substitution.  ``ok`` is False where the
    caller must take its own path (``c`` not positive outside the ``free`` mode, a
    singular or non-finite triangle: Lawson-Hanson NNLS there)."""
    m = p.size
    N = z.size
    dC = np.empty((m, N), np.complex128)
    A = np.empty((2 * N, m))  # the columns C_j, interleaved (Re, Im)
    for j in range(m):
        for n in range(N):
            inv = 1.0 / (z[n] - p[j])
            c_ = sw[n] * inv
            dC[j, n] = c_ * inv
            A[2 * n, j] = c_.real
            A[2 * n + 1, j] = c_.imag
    Q, R = np.linalg.qr(A)
    rhs = np.zeros(m)
    for i in range(m):
        for n in range(2 * N):
            rhs[i] += Q[n, i] * bf[n]
    c = np.zeros(m)
    ok = True
    for i in range(m - 1, -1, -1):
        s = rhs[i]
        for j in range(i + 1, m):
            s -= R[i, j] * c[j]
        if R[i, i] == 0.0:
            ok = False
            break
        c[i] = s / R[i, i]
    if ok:
        for i in range(m):
            if not np.isfinite(c[i]) or (not free and c[i] <= 0.0):
                ok = False
    r = A @ c - bf
    return ok, c, r, Q, dC


_vp_project_c = _nb.njit(cache=True, nogil=True)(_vp_project) if HAVE_NUMBA else None


def vp_project(p, z, sw, bf, free):
    """``(ok, c, r, Q, dC)`` of :func:`_vp_project` (compiled)."""
    return _vp_project_c(np.ascontiguousarray(p, float), z, sw, bf, bool(free))


def _hessian(eps, V, z, sw, r, Jf, H):  # pragma: no cover - compiled
    """The exact Hessian of the cost as ``bath._Problem._derivatives`` writes it:
    ``Re Jf Jf^H`` plus the second-derivative terms contracted with ``r^*``."""
    k = eps.size
    n2 = Jf.shape[0]
    for a in range(n2):
        for b_ in range(a, n2):
            s = 0.0
            for n in range(z.size):
                s += Jf[a, n].real * Jf[b_, n].real + Jf[a, n].imag * Jf[b_, n].imag
            H[a, b_] = s
            H[b_, a] = s
    for j in range(k):
        s_e = 0.0
        s_x = 0.0
        s_v = 0.0
        for n in range(z.size):
            inv = 1.0 / (z[n] - eps[j])
            si = sw[n] * inv
            rc = r[n].conjugate()
            s_e += (Jf[j, n] * inv * rc).real
            s_x += (si * inv * rc).real
            s_v += (si * rc).real
        H[j, j] += 2.0 * s_e
        H[j, j + k] += 2.0 * V[j] * s_x
        H[j + k, j] += 2.0 * V[j] * s_x
        H[j + k, j + k] += 2.0 * s_v


_hessian_c = _nb.njit(cache=True, nogil=True)(_hessian) if HAVE_NUMBA else None


def residual_jacobian_hessian(eps, V, z, sw, b):
    """``(r, Jf, H)``: :func:`residual_jacobian` and the Hessian of :func:`_hessian`."""
    r, Jf = residual_jacobian(eps, V, z, sw, b)
    H = np.empty((Jf.shape[0], Jf.shape[0]))
    _hessian_c(np.ascontiguousarray(eps, float), np.ascontiguousarray(V, float), z, sw, r, Jf,
               H)
    return r, Jf, H
