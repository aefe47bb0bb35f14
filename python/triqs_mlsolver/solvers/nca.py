# SPDX-License-Identifier: Apache-2.0
"""Non-crossing approximation (NCA) for the single-orbital AIM, in imaginary time.

The method (PHYSICS.md §2.4; Bickers, RMP 59, 845 (1987); Eckstein and Werner,
PRB 82, 115115 (2010) for the imaginary-time form).  Local states
``a in {0, up, dn, 2}`` with ``E_0 = 0``, ``E_s = eps_ds``,
``E_2 = eps_d,up + eps_d,dn + U``.  The pseudo-particle propagators solve

.. math::

    \\partial_\\tau R_a(\\tau) = -E_a R_a(\\tau)
        + \\int_0^\\tau d\\tau' S_a(\\tau - \\tau') R_a(\\tau'), \\qquad R_a(0) = 1,

    S_a(\\tau) = \\sum_{b s} |\\langle b|c^\\dagger_s|a\\rangle|^2 D^-_s(\\tau) R_b(\\tau)
               + \\sum_{b s} |\\langle b|c_s|a\\rangle|^2 D^+_s(\\tau) R_b(\\tau),

with ``D+_s(tau) = -Delta_s(tau)`` (an electron leaves into the bath) and
``D-_s(tau) = -Delta_s(beta - tau)`` (one enters from the bath); both are
``>= 0`` for a physical bath.  Then ``Z = sum_a R_a(beta)``,
``p_a = R_a(beta)/Z`` and

.. math::

    G_s(\\tau) = -\\frac{1}{Z} \\sum_{ab} |\\langle b|c^\\dagger_s|a\\rangle|^2
                 R_a(\\beta - \\tau) R_b(\\tau).

NCA is exact for ``Delta = 0``.  At small hybridisation ``V`` the state
probabilities (so the double occupancy ``p_2``) are right to ``O(V^2)``, error
``O(V^4)``, while ``G(tau)`` has an ``O(V^2)`` error (the vertex correction with
one crossing line is missing; that is OCA).  ``G(0+) + G(beta-) = -1`` holds
identically because ``R_a(0) = 1``, and so does the symmetry
``G(tau) = G(beta - tau)``, ``n_s = 1/2`` at particle-hole symmetry.

Solving the equations: causal marching, not an S <-> R fixed point
------------------------------------------------------------------
``S_a(tau)`` needs the ``R_b`` at the *same* ``tau`` only, so on a uniform grid
``tau_n = n h`` (``h = beta/N``) the fully self-consistent discrete equations
are solved in one forward sweep: at step ``n`` the four unknowns ``R_a(tau_n)``
obey a 4x4 linear system (the ``S_a(tau_n) R_a(0)`` endpoint term of the memory
couples them), whose matrices depend on ``Delta(tau_n)`` only and are inverted
for all ``n`` at once beforehand.  There is no outer iteration that could fail
to converge; instead the residual of the discrete equations is recomputed
independently at the end (FFT convolution) and must be below ``residual_tol``
(else :class:`NCAResidualError`).  It is ~1e-15 in practice.

Integrator (why this one)
-------------------------
Exponential (integrating-factor) trapezoid for the local term and the trapezoid
rule for the memory::

    R_n = e^{-E h} R_{n-1} + (h/2) (e^{-E h} Q_{n-1} + Q_n)
    Q_n = h [ S_n R_0 / 2 + sum_{j=1}^{n-1} S_{n-j} R_j + S_0 R_n / 2 ]

* It is exact for ``Delta = 0`` (``R_a = e^{-E_a tau}`` to round-off), so the
  atomic limit carries no discretisation error at all and the error at small
  ``V`` is ``O(V^2 h^p)``, never masking the ``O(V^4)`` NCA error.
* It is covariant under the gauge ``R_a(tau) -> e^{-lambda tau} R_a(tau)``,
  ``E_a -> E_a + lambda`` *exactly* (not only up to ``O(h^2)`` as Crank-Nicolson
  or an exponential integrator with linear interpolation would be).  So the
  pseudo-chemical potential ``lambda`` can be changed on the fly (the history is
  rescaled whenever ``max_a R_a(tau_n)`` leaves ``[e^-50, e^50]``) without
  changing the result: no overflow at any ``beta``, and nothing to iterate.
  ``E_a`` are first shifted by ``min_a E_a``.
* Every piece is a trapezoid rule of a smooth integrand and the step is
  time-symmetric, so the global error has an expansion in even powers of ``h``
  (Euler-Maclaurin; Linz, *Analytical and numerical methods for Volterra
  equations*, SIAM 1985).  One Richardson step,
  ``G = G_h + (G_h - G_2h)/3``, therefore gives ``O(h^4)`` for 25 % extra cost
  (the ``2h`` sweep is on every other point).  The correction is interpolated
  onto the fine grid with a cubic spline (its error is ``O(h^6)``).  It keeps
  the normalisation and the particle-hole symmetry exactly (it is linear).

PHYSICS.md suggests Crank-Nicolson with trapezoid memory; this scheme has the
same order and cost but the two exact properties above.

Measured (``benchmarks/bench_nca.py``; semicircular bath, ``U = 2``, half
filling, ``beta = 50``; reference: the same on a 16x finer grid): the raw
scheme converges as ``h^2`` (error ratio 3.96, 3.99, 4.00 per halving of
``h``), the extrapolated one as ``h^4`` (ratio 16.1 once ``h W <= 0.06``; ~20
on coarser grids, where the ``h^6`` term still shows).  At the default grid
(``N = 400``) ``max |G(tau) - G_exact|`` is 5e-5 raw and 8e-7 extrapolated, the
double occupancy 4e-4 raw and 1e-6 extrapolated.  Against exact
diagonalisation of a one-site AIM (``U = 1``, ``eps_d = -0.3``,
``eps_b = 0.4``, ``beta = 4``) the NCA error of ``p_a`` is 6.0e-4, 4.2e-5,
2.7e-6 and that of ``G(tau)`` 1.9e-2, 5.3e-3, 1.4e-3 for ``V = 0.2, 0.1,
0.05`` (ratios -> 16 and 4), with grid errors below 1e-8.

Cost: one sweep is a Python loop over ``N`` steps whose body is vectorised
(the memory sum is one ``einsum`` over the history, O(N) flops), so a sweep is
O(N^2) flops with ~12 us of interpreter time per step.  A whole solve at
``beta = 50``, ``n_iw = 1025`` takes about 18 ms (two sweeps, 7 ms; the rest
is the Fourier/Legendre transforms), and 0.3 s at ``beta = 1000`` (N = 8000).

Grid
----
``N = n_tau_nca - 1`` intervals.  Default: ``N = 8 beta W`` (even, at least 64)
with ``W = max(D, max_a E_a - min_a E_a, max|eps_k|, sqrt(sum V^2))`` the
largest energy scale.  Below ``h W = 1`` (``N < beta W``) the result is not
meaningful and a ``ValueError`` is raised.  With Richardson extrapolation
``N`` must be even (``n_tau_nca`` odd).

Hybridisation
-------------
Discrete bath: ``Delta_s(tau) = -sum_k V_sk^2 e^{-eps_sk tau}/(1 + e^{-beta eps_sk})``
evaluated analytically.  ``Delta_iw`` input: transformed with
:func:`~triqs_mlsolver.gf.transforms.iw_to_tau`, with the tail (``c_1 = sum V^2``
and higher moments) fitted on the outer 40 % of the mesh.

Output
------
``G(tau)`` on the NCA grid is interpolated by a quintic spline (error
``O(h^6)``, end points kept exactly) onto at least ``4 n_iw`` intervals, so
that the FFT in :func:`solution_from_tau` does not alias below ``w_max``; that
gives ``G_iw``, ``G_l`` and ``Sigma_iw = G0^-1 - G^-1`` (Hartree term
included).  ``G_tau`` is the same spline at ``n_tau`` points.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy.interpolate import make_interp_spline
from scipy.signal import fftconvolve

from ..errors import TriqsMLSolverError, TriqsMLSolverWarning
from ..gf import transforms as tr
from .base import register_solver
from .solution import AIMSolution, solution_from_tau, tau_of_poles

__all__ = [
    "solve_nca",
    "nca_hybridisation_tau",
    "nca_atomic_energies",
    "nca_coupling_table",
    "nca_propagators",
    "nca_green_tau",
    "default_n_tau_nca",
    "NCAResidualError",
    "NCAGridWarning",
    "STATES",
]

#: Local many-body states, in the order of the ``a`` axis of every array here.
STATES = ("0", "up", "dn", "2")

#: Default points of the NCA grid per unit of ``beta * W`` (see module doc).
POINTS_PER_ENERGY = 8
#: Smallest default grid.
MIN_INTERVALS = 64
#: The history is rescaled when ``max_a R_a`` leaves ``[e^-RESCALE, e^RESCALE]``.
RESCALE = 50.0
#: ``-Delta(tau) < -NONCAUSAL_WARN max|Delta|`` warns, ``< -NONCAUSAL_RAISE max|Delta|`` raises.
NONCAUSAL_WARN, NONCAUSAL_RAISE = 1e-8, 1e-3
#: Warn when the Richardson error estimate of the unextrapolated G exceeds this.
GRID_WARN = 1e-2


class NCAResidualError(TriqsMLSolverError, ArithmeticError):
    """The discrete NCA equations are not satisfied by the computed propagators."""


class NCAGridWarning(TriqsMLSolverWarning):
    """The NCA tau grid is coarse for the energy scales of the problem."""


# -- building blocks ---------------------------------------------------------------
def nca_atomic_energies(params) -> np.ndarray:
    """``E_a`` of the states ``(0, up, dn, 2)``: ``(0, e_up, e_dn, e_up + e_dn + U)``."""
    e = params.eps_d
    return np.array([0.0, e[0], e[1], e[0] + e[1] + params.U])


def _delta_tail(params):
    """Fitted high-frequency moments of ``Delta_iw`` per spin, shape ``(2, K+1)`` (or None)."""
    if params.Delta_iw is None:
        return None
    iw = params.iw(params.Delta_iw.shape[1] // 2)
    m0, _ = tr.fit_tail(params.Delta_iw[0], iw, known_moments=np.zeros(1))
    if np.array_equal(params.Delta_iw[0], params.Delta_iw[1]):
        m1 = m0
    else:
        m1, _ = tr.fit_tail(params.Delta_iw[1], iw, known_moments=np.zeros(1))
    return np.stack([m0, m1])


def _energy_scale(params, tail=None) -> float:
    E = nca_atomic_energies(params)
    w = max(params.D, E.max() - E.min())
    if params.has_discrete_bath:
        w = max(w, float(np.abs(params.eps_k).max()), float(np.sqrt((params.V_k**2).sum(1)).max()))
    elif params.Delta_iw is not None:
        tail = _delta_tail(params) if tail is None else tail
        w = max(w, math.sqrt(float(np.abs(tail[:, 1].real).max())))
    return float(w)


def default_n_tau_nca(params, *, _tail=None) -> int:
    """Default number of NCA tau points, ``N + 1`` with ``N = 8 beta W`` even (>= 64)."""
    w = _energy_scale(params, _tail)
    # (1 - 1e-12): round-off in W must not push N across an integer
    n = max(MIN_INTERVALS, math.ceil(POINTS_PER_ENERGY * params.beta * w * (1 - 1e-12)))
    return n + (n % 2) + 1


def nca_hybridisation_tau(params, n_tau, *, tail=None):
    """``D+_s(tau) = -Delta_s(tau)`` and ``D-_s(tau) = -Delta_s(beta - tau)``.

    Parameters
    ----------
    params : AIMParams
    n_tau : int
        Points of the uniform grid on ``[0, beta]`` (both ends included).
    tail : ndarray (2, K+1), optional
        High-frequency moments of ``Delta_iw`` (``c_0 = 0``); fitted if omitted.

    Returns
    -------
    Dp_st, Dm_st : ndarray (2, n_tau)
        Non-negative for a physical bath.
    c1_s : ndarray (2,)
        ``sum_k V_sk^2``: exact for a discrete bath, fitted for ``Delta_iw``.
    """
    beta = params.beta
    tau = np.linspace(0.0, beta, n_tau)
    if params.has_discrete_bath:
        w2 = params.V_k**2
        delta = np.stack([tau_of_poles(params.eps_k[s], w2[s], beta, tau) for s in range(2)])
        delta_rev = np.stack([tau_of_poles(params.eps_k[s], w2[s], beta, beta - tau)
                              for s in range(2)])
        return -delta, -delta_rev, w2.sum(axis=1)
    if params.Delta_iw is None:
        z = np.zeros((2, n_tau))
        return z, z.copy(), np.zeros(2)
    tail = _delta_tail(params) if tail is None else tail
    delta = np.stack([tr.iw_to_tau(params.Delta_iw[s], beta, n_tau, tail[s]).real
                      for s in range(2)])
    return -delta, -delta[:, ::-1].copy(), tail[:, 1].real.copy()


def nca_coupling_table(Dp_st, Dm_st) -> np.ndarray:
    """``C[t, a, b]`` with ``S_a(tau_t) = sum_b C[t, a, b] R_b(tau_t)``.

    All the squared matrix elements ``|<b|c^+_s|a>|^2`` are 1 for the allowed
    transitions of one orbital (``0 <-> s``, ``-s <-> 2``).
    """
    n_t = Dp_st.shape[1]
    C = np.zeros((n_t, 4, 4))
    up, dn = 0, 1
    C[:, 0, 1], C[:, 0, 2] = Dm_st[up], Dm_st[dn]    # 0 absorbs s -> s
    C[:, 1, 0], C[:, 1, 3] = Dp_st[up], Dm_st[dn]    # up emits up -> 0, absorbs dn -> 2
    C[:, 2, 0], C[:, 2, 3] = Dp_st[dn], Dm_st[up]    # dn emits dn -> 0, absorbs up -> 2
    C[:, 3, 1], C[:, 3, 2] = Dp_st[dn], Dp_st[up]    # 2 emits dn -> up, emits up -> dn
    return C


def nca_propagators(E_a, C_tab, beta):
    """March the discrete NCA equations (module docstring) over ``[0, beta]``.

    Parameters
    ----------
    E_a : ndarray (4,)
        Atomic energies (any constant shift; it is removed).
    C_tab : ndarray (N+1, 4, 4)
        :func:`nca_coupling_table` on the uniform grid ``tau_n = n beta / N``.
    beta : float

    Returns
    -------
    R_ta : ndarray (N+1, 4)
        ``e^{-lambda tau} R_a(tau)`` (positive), ``R_a(0) = 1``, in the gauge
        ``sum_a R_a(beta) = 1``.
    lam : float
        The total shift: the propagators solve the equations with the energies
        ``E_a - min_a E_a + lam``.  ``min_a E_a - lam = -T log Z`` with
        ``Z = sum_a R_a(beta)`` for the unshifted energies (the NCA impurity free
        energy relative to the free bath).
    """
    n_t = C_tab.shape[0]
    N = n_t - 1
    h = beta / N
    tau = np.linspace(0.0, beta, n_t)
    E = np.asarray(E_a, float) - np.min(E_a)
    # state-major, time-contiguous storage; S is kept time-reversed (Sr[:, N - j] = S_j)
    # so that the memory sum is a forward slice
    R = np.zeros((4, n_t))
    Sr = np.zeros((4, n_t))
    Q = np.zeros((4, n_t))
    R[:, 0] = 1.0
    S0 = C_tab[0].sum(axis=1)
    Sr[:, N] = S0
    M = np.eye(4)[None] - 0.25 * h * h * (C_tab + S0[None, :, None] * np.eye(4)[None])
    Minv = np.linalg.inv(M)
    decay = np.exp(-E * h)
    lam = 0.0
    half_h, half_h2 = 0.5 * h, 0.5 * h * h
    for n in range(1, n_t):
        if n > 1:
            hist = np.einsum("aj,aj->a", Sr[:, N - n + 1 : N], R[:, 1:n])
        else:
            hist = np.zeros(4)
        rhs = decay * (R[:, n - 1] + half_h * Q[:, n - 1]) + half_h2 * hist
        Rn = Minv[n] @ rhs
        Sn = C_tab[n] @ Rn
        R[:, n] = Rn
        Sr[:, N - n] = Sn
        Q[:, n] = h * (0.5 * Sn + hist + 0.5 * S0 * Rn)
        big = Rn.max()
        if not (math.exp(-RESCALE) < big < math.exp(RESCALE)):
            if not np.isfinite(big) or big <= 0:
                raise NCAResidualError(
                    f"the NCA propagators became {big} at tau = {tau[n]:.4g}; the tau grid "
                    f"(n_tau_nca = {n_t}) is far too coarse or the hybridisation is unphysical"
                )
            dl = math.log(big) / tau[n]
            f = np.exp(-dl * tau[: n + 1])
            R[:, : n + 1] *= f
            Q[:, : n + 1] *= f
            Sr[:, N - n :] *= f[::-1]
            decay = decay * math.exp(-dl * h)
            lam += dl
    # final gauge: sum_a R_a(beta) = 1, the propagators are then O(1) at both ends
    dl = math.log(R[:, N].sum()) / beta
    R *= np.exp(-dl * tau)[None, :]
    return R.T.copy(), lam + dl


def _residual(R_ta, E_a, C_tab, beta, lam) -> float:
    """Max residual of the discrete equations, relative to ``max R`` (FFT convolution)."""
    n_t = R_ta.shape[0]
    h = beta / (n_t - 1)
    E = np.asarray(E_a, float) - np.min(E_a) + lam
    S = np.einsum("tab,tb->ta", C_tab, R_ta)
    conv = fftconvolve(S, R_ta, axes=0)[:n_t]
    Q = h * (conv - 0.5 * S * R_ta[0][None, :] - 0.5 * S[0][None, :] * R_ta)
    d = np.exp(-E * h)[None, :]
    r = R_ta[1:] - d * R_ta[:-1] - 0.5 * h * (d * Q[:-1] + Q[1:])
    return float(np.abs(r).max() / np.abs(R_ta).max())


def nca_green_tau(R_ta):
    """``G_s(tau)`` and the state probabilities from the propagators.

    Parameters
    ----------
    R_ta : ndarray (N+1, 4)
        Pseudo-particle propagators on a uniform grid (any common gauge).

    Returns
    -------
    G_st : ndarray (2, N+1)
        ``G_s(tau_t)``, ``<= 0``, with ``G(0) + G(beta) = -1``.
    p_a : ndarray (4,)
        ``R_a(beta) / Z``.
    """
    Z = R_ta[-1].sum()
    Rb = R_ta[::-1]  # R_a(beta - tau)
    G_up = -(Rb[:, 0] * R_ta[:, 1] + Rb[:, 2] * R_ta[:, 3]) / Z
    G_dn = -(Rb[:, 0] * R_ta[:, 2] + Rb[:, 1] * R_ta[:, 3]) / Z
    return np.stack([G_up, G_dn]), R_ta[-1] / Z


# -- the solver ----------------------------------------------------------------------
def _check_int(name, val, lo):
    if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < lo:
        raise ValueError(f"{name}={val!r} must be an integer >= {lo}")
    return int(val)


def solve_nca(params, *, n_iw, n_tau, n_l, n_tau_nca=None, richardson=True,
              residual_tol=1e-9) -> AIMSolution:
    """Solve the single-orbital AIM in the non-crossing approximation.

    Parameters
    ----------
    params : AIMParams
        Finite ``U``, spin polarisation allowed; discrete bath, ``Delta_iw`` or none.
    n_iw, n_tau, n_l : int
        Output meshes (positive Matsubara frequencies, tau points, Legendre
        coefficients).
    n_tau_nca : int or None
        Points of the internal uniform tau grid on which the Volterra equations
        are solved (``N + 1``; odd with ``richardson``).  ``None``: ``8 beta W + 1``
        (see the module docstring), at least 65.
    richardson : bool
        Combine the grids ``h`` and ``2h`` to cancel the ``h^2`` error (default).
    residual_tol : float
        Largest accepted residual of the discrete equations, relative to
        ``max R`` (a check on round-off, not a convergence criterion).

    Returns
    -------
    AIMSolution
        ``G_iw``, ``G_tau`` (resampled to ``n_tau`` points by a quintic spline),
        ``G_l``, ``Sigma_iw`` (Hartree included), ``density``,
        ``double_occupancy = p_2`` and ``diagnostics`` with ``state_probabilities``
        (order ``STATES``), ``n_tau_nca``, ``lambda`` (the pseudo-chemical
        potential ``-T log sum_a R_a(beta)``, i.e. the NCA impurity free energy
        relative to the free bath), ``residual``, ``tau_error_estimate`` (Richardson estimate of
        the error of the unextrapolated ``G``; the returned one is ``O(h^4)``),
        ``delta_moment`` (``sum V^2`` per spin), ``energy_scale``.

    Raises
    ------
    ValueError
        Bad grid sizes, an inconsistent ``Delta_iw`` or a non-causal hybridisation.
    NCAResidualError
        The marching lost accuracy (overflow or round-off).
    """
    n_iw = _check_int("n_iw", n_iw, 1)
    n_tau = _check_int("n_tau", n_tau, 2)
    n_l = _check_int("n_l", n_l, 1)
    if not isinstance(richardson, (bool, np.bool_)):
        raise ValueError(f"richardson={richardson!r} must be True or False")
    if not (isinstance(residual_tol, (int, float)) and residual_tol > 0):
        raise ValueError(f"residual_tol={residual_tol!r} must be a positive number")
    if params.Delta_iw is not None and params.Delta_iw.shape[1] != 2 * n_iw:
        raise ValueError(
            f"Delta_iw has {params.Delta_iw.shape[1] // 2} positive frequencies but n_iw={n_iw} "
            "was requested; solve on the mesh of Delta_iw"
        )
    beta = params.beta
    tail = _delta_tail(params)
    W = _energy_scale(params, tail)
    n_min = max(9, math.ceil(beta * W) + 1)
    if n_tau_nca is None:
        n_tau_nca = default_n_tau_nca(params, _tail=tail)
    else:
        n_tau_nca = _check_int("n_tau_nca", n_tau_nca, 1)
        if n_tau_nca < n_min:
            n_good = default_n_tau_nca(params, _tail=tail)
            raise ValueError(
                f"n_tau_nca={n_tau_nca} is too small: the grid step beta/(n_tau_nca-1) must be "
                f"below 1/W with W = {W:.4g} the largest energy scale (beta = {beta:.4g}); use "
                f"n_tau_nca >= {n_min + (n_min + 1) % 2}, about {n_good} for "
                "1e-6 accuracy, or None for the default"
            )
        if richardson and n_tau_nca % 2 == 0:
            raise ValueError(
                f"n_tau_nca={n_tau_nca} must be odd with richardson=True (the half grid must be a "
                f"subgrid); use {n_tau_nca + 1}"
            )

    Dp, Dm, c1 = nca_hybridisation_tau(params, n_tau_nca, tail=tail)
    scale = max(float(np.abs(Dp).max()), float(np.abs(Dm).max()), 1e-300)
    d_min = float(min(Dp.min(), Dm.min()))
    if d_min < -NONCAUSAL_RAISE * scale:
        raise ValueError(
            f"-Delta(tau) reaches {d_min:.3g} (max {scale:.3g}): the hybridisation is not causal "
            "(its spectral function is negative somewhere). Check the sign of Delta_iw: it must "
            "behave as +sum V^2/(i w) at high frequency, with Im Delta(i w_n) < 0 for w_n > 0"
        )
    if d_min < -NONCAUSAL_WARN * scale:
        warnings.warn(
            f"-Delta(tau) is slightly negative somewhere ({d_min:.3g}, max {scale:.3g}); the "
            "transform of Delta_iw is inaccurate (check its tail and n_iw). NCA needs "
            "-Delta(tau) >= 0.",
            TriqsMLSolverWarning,
            stacklevel=2,
        )
    E = nca_atomic_energies(params)
    C = nca_coupling_table(Dp, Dm)
    R, lam = nca_propagators(E, C, beta)
    residual = _residual(R, E, C, beta, lam)
    if not residual <= residual_tol:
        raise NCAResidualError(
            f"the NCA propagators satisfy the discrete equations only to {residual:.3g} "
            f"(residual_tol = {residual_tol:.3g}); round-off has been amplified. Use a finer "
            "grid (n_tau_nca) or report the parameters"
        )
    G, p = nca_green_tau(R)
    err_est = None
    if richardson:
        R2, _ = nca_propagators(E, C[::2], beta)
        G2, p2 = nca_green_tau(R2)
        corr_c = (G[:, ::2] - G2) / 3.0
        tau = np.linspace(0.0, beta, n_tau_nca)
        corr = make_interp_spline(tau[::2], corr_c, k=3, axis=1)(tau)
        G = G + corr
        p = p + (p - p2) / 3.0
        err_est = float(np.abs(corr).max())
        if err_est > GRID_WARN:
            warnings.warn(
                f"the NCA tau grid is coarse: the h^2 error is {err_est:.2g}; increase "
                f"n_tau_nca (now {n_tau_nca})",
                NCAGridWarning,
                stacklevel=2,
            )
    diagnostics = {
        "method": "NCA, causal marching (exponential trapezoid)"
                  + (" + Richardson" if richardson else ""),
        "n_tau_nca": n_tau_nca,
        "richardson": bool(richardson),
        "state_probabilities": p,
        "lambda": float(np.min(E) - lam),
        "residual": residual,
        "tau_error_estimate": err_est,
        "delta_moment": c1,
        "energy_scale": W,
    }
    # G(i w), G_l and G_tau from G(tau) on the NCA grid (spline-resampled inside)
    sol = solution_from_tau(params, G, n_iw=n_iw, n_tau=n_tau, n_l=n_l,
                            double_occupancy=float(p[3]), diagnostics=diagnostics)
    return sol


SPEC = register_solver(
    "nca",
    solve_nca,
    options={"n_tau_nca": None, "richardson": True, "residual_tol": 1e-9},
    description="Non-crossing approximation (bold first-order hybridisation expansion) in "
                "imaginary time; exact at Delta = 0, O(V^2) error in G(tau).",
)
