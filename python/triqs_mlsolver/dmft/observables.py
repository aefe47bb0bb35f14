# SPDX-License-Identifier: Apache-2.0
"""Observables of a DMFT solution: quasiparticle weight, filling, double occupancy,
and the metal/insulator indicator ``-beta G(beta/2)/pi``.

All are pure functions of plain arrays (axes: ``s`` spin, ``w`` Matsubara
point in TRIQS order, ``t`` uniform tau point on ``[0, beta]``).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "INSULATOR_THRESHOLD",
    "quasiparticle_weight",
    "g_beta_half",
    "is_insulating",
    "double_occupancy_or_nan",
]

#: ``-beta G(beta/2)/pi`` below this value is reported as insulating.  At
#: ``beta = 50`` a correlated metal has ~0.5 (the U = 0 value is ``2/pi = 0.64``)
#: and a Mott insulator < 1e-2.
INSULATOR_THRESHOLD = 0.1


def quasiparticle_weight(Sigma_sw, beta):
    """First-Matsubara estimate of the quasiparticle weight, per spin.

    .. math:: Z_0 = \\frac{1}{1 - \\mathrm{Im}\\,\\Sigma(i\\omega_0)/\\omega_0},
              \\qquad \\omega_0 = \\pi/\\beta .

    This is the finite-temperature estimate: it tends to the quasiparticle
    residue ``Z`` as ``beta -> inf`` in a Fermi liquid, and is small (not 0)
    in an insulator.

    Parameters
    ----------
    Sigma_sw : complex ndarray (2, 2 n_iw)
        Self-energy on the full Matsubara mesh (TRIQS order: ``w_0`` at index ``n_iw``).
    beta : float

    Returns
    -------
    ndarray (2,)
    """
    Sigma_sw = np.asarray(Sigma_sw)
    w0 = math.pi / beta
    return 1.0 / (1.0 - Sigma_sw[:, Sigma_sw.shape[1] // 2].imag / w0)


def g_beta_half(G_st, beta):
    """``-beta G(beta/2) / pi`` per spin: the low-energy spectral weight.

    .. math:: -\\frac{\\beta}{\\pi} G(\\beta/2) = \\frac{1}{\\pi}\\int d\\omega
              \\frac{A(\\omega)\\,\\beta/2}{\\cosh(\\beta\\omega/2)}
              \\xrightarrow{T\\to 0} A(0)

    (``2/pi = 0.64`` for the semicircle at ``D = 1``; ~0 in an insulator).

    Parameters
    ----------
    G_st : ndarray (2, n_tau)
        ``G(tau)`` on the uniform grid ``tau_j = j beta/(n_tau - 1)``; for even
        ``n_tau`` the two middle points are averaged (linear interpolation).
    beta : float

    Returns
    -------
    ndarray (2,)
    """
    G_st = np.asarray(G_st, float)
    n = G_st.shape[1]
    if n < 3:
        raise ValueError(f"G_tau has {n} points; at least 3 are needed to read G(beta/2)")
    mid = G_st[:, (n - 1) // 2] if n % 2 else 0.5 * (G_st[:, n // 2 - 1] + G_st[:, n // 2])
    return -beta * mid / math.pi


def is_insulating(g_half, threshold=INSULATOR_THRESHOLD):
    """``-beta G(beta/2)/pi`` (spin average) below ``threshold``.

    Parameters
    ----------
    g_half : float or ndarray (2,)
        :func:`g_beta_half`.
    threshold : float

    Returns
    -------
    bool
    """
    return bool(float(np.mean(g_half)) < threshold)


def double_occupancy_or_nan(solution) -> float:
    """``<n_up n_dn>`` of an :class:`~triqs_mlsolver.solvers.AIMSolution`, NaN if the
    solver does not give it."""
    d = solution.double_occupancy
    return float("nan") if d is None else float(d)
