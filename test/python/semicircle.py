# SPDX-License-Identifier: Apache-2.0
"""Independent references for the semicircular DOS (real-axis quadrature with scipy.quad)."""

import numpy as np
from numpy.polynomial import legendre as npleg
from scipy.integrate import quad


def rho(e, D=1.0):
    return 2.0 / (np.pi * D**2) * np.sqrt(max(D**2 - e**2, 0.0))


def g_tau_exact(tau, beta, D=1.0):
    """G(tau) = -int rho(e) e^{-e tau} / (1 + e^{-beta e}) de, written without overflow."""

    def integrand(e, t):
        if e >= 0:
            w = np.exp(-e * t) / (1.0 + np.exp(-beta * e))
        else:
            w = np.exp(e * (beta - t)) / (np.exp(beta * e) + 1.0)
        return -rho(e, D) * w

    return np.array(
        [quad(integrand, -D, D, args=(t,), epsabs=1e-14, epsrel=1e-12, limit=400)[0] for t in tau]
    )


def g_legendre_exact(l, beta, D=1.0, n_gauss=300):
    """G_l = sqrt(2l+1) int_0^beta P_l(x(tau)) G(tau) dtau by Gauss-Legendre in tau of quad G."""
    x, w = npleg.leggauss(n_gauss)
    tau = beta * (x + 1) / 2
    g = g_tau_exact(tau, beta, D)
    P = npleg.legvander(x, max(l))[:, l]
    return np.sqrt(2 * np.asarray(l) + 1) * (P * (w * beta / 2 * g)[:, None]).sum(axis=0)
