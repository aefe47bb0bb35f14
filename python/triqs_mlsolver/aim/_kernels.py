# SPDX-License-Identifier: Apache-2.0
"""Compiled kernels of the bath fit (private; see :mod:`.bath`).

The fit's residual and Jacobian are evaluated some 30-60 times per fit on ~100
frequencies; in numpy each evaluation is a handful of small temporaries (~20 us), here one
pass (~2 us).  numba is a dependency; without it (``HAVE_NUMBA`` False) the numpy path
serves, with the same results to round-off (tested).
"""

from __future__ import annotations

import numpy as np

try:  # pragma: no cover - exercised by the import itself
    import numba as _nb
except ImportError:  # pragma: no cover - numba is a dependency; the numpy path serves
    _nb = None

HAVE_NUMBA = _nb is not None

__all__ = ["HAVE_NUMBA", "residual_jacobian"]


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
