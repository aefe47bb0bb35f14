# SPDX-License-Identifier: Apache-2.0
"""Tests of the NCA solver against exact limits, brute-force ED and its own convergence.

Tolerances come from the method (see the docstring of ``solvers/nca.py``):

* the integrator is exact for ``Delta = 0``, so the atomic limit is checked to
  round-off (``N eps``), on a coarse and a fine grid alike;
* NCA itself errs by ``O(V^4)`` in the state probabilities and ``O(V^2)`` in
  ``G(tau)``: the *scaling* of the error against exact diagonalisation is tested;
* the discretisation error is ``O(h^2)`` raw and ``O(h^4)`` after the Richardson
  step: the ratio of successive changes under grid doubling is tested;
* normalisation and particle-hole symmetry hold by construction (to round-off).
"""

import math

import numpy as np
import pytest
from triqs_mlsolver.aim.params import AIMParams
from triqs_mlsolver.errors import UnknownParameterError
from triqs_mlsolver.gf.transforms import matsubara_freqs
from triqs_mlsolver.solvers import nca
from triqs_mlsolver.solvers.base import check_options
from triqs_mlsolver.solvers.nca import solve_nca


# -- an independent reference: brute-force ED of a one-bath-site AIM (16 states) ------
def _fock_annihilators(n_modes):
    """Jordan-Wigner matrices of ``c_i`` on ``2**n_modes`` states."""
    eye, zs = np.eye(2), np.diag([1.0, -1.0])
    a = np.array([[0.0, 1.0], [0.0, 0.0]])
    ops = []
    for i in range(n_modes):
        m = np.ones((1, 1))
        for j in range(n_modes):
            m = np.kron(m, zs if j < i else (a if j == i else eye))
        ops.append(m)
    return ops


def ed_one_site_aim(U, eps_d, eps_b, V, beta, tau):
    """Exact ``G_up(tau)`` and the impurity state probabilities ``(p_0, p_up, p_dn, p_2)``.

    Modes ``d_up, d_dn, c_up, c_dn``; ``H = sum_s eps_ds n_ds + U n_up n_dn +
    eps_b sum_s n_cs + V sum_s (d_s^+ c_s + h.c.)``.
    """
    du, dd, cu, cd = _fock_annihilators(4)
    n = lambda c: c.T @ c  # noqa: E731
    H = (eps_d[0] * n(du) + eps_d[1] * n(dd) + U * n(du) @ n(dd) + eps_b * (n(cu) + n(cd))
         + V * (du.T @ cu + cu.T @ du + dd.T @ cd + cd.T @ dd))
    E, X = np.linalg.eigh(H)
    E = E - E.min()
    w = np.exp(-beta * E)
    Z = w.sum()
    d_mn = X.T @ du @ X
    t = np.asarray(tau)[:, None, None]
    G = -(np.exp(-(beta - t) * E[None, :, None] - t * E[None, None, :]) * d_mn[None] ** 2).sum(
        axis=(1, 2)) / Z
    one = np.eye(16)
    nu, nd = n(du), n(dd)
    proj = [(one - nu) @ (one - nd), nu @ (one - nd), (one - nu) @ nd, nu @ nd]
    rho = (X * (w / Z)) @ X.T
    return G, np.array([np.trace(rho @ P) for P in proj])


def semicircle_delta(beta, n_iw, D=1.0):
    """``Delta = (D^2/4) G_semicircle(i w)`` (Bethe lattice)."""
    iw = matsubara_freqs(beta, n_iw)
    w = iw.imag
    return (D**2 / 4) * (2 / D**2) * (iw - 1j * np.sign(w) * np.sqrt(w**2 + D**2))


# -- 1. atomic limit: exact ------------------------------------------------------------
@pytest.mark.parametrize("n_tau_nca", [65, 1001])
@pytest.mark.parametrize("richardson", [False, True])
def test_atomic_limit_exact(n_tau_nca, richardson):
    """Delta = 0: R_a = e^{-E_a tau} is reproduced exactly by the exponential
    trapezoid, so G and p_2 are exact to round-off on any grid (a Crank-Nicolson
    scheme would be off by ~(h U)^2/12 = 1e-3 on the 65-point grid)."""
    U, mu, beta = 1.5, np.array([0.7, 0.2]), 7.0
    p = AIMParams(U=U, mu=mu, beta=beta)
    s = solve_nca(p, n_iw=64, n_tau=n_tau_nca, n_l=30, n_tau_nca=n_tau_nca,
                  richardson=richardson)
    E = np.array([0.0, -mu[0], -mu[1], -mu.sum() + U])
    Z = np.exp(-beta * E).sum()
    tau = np.linspace(0, beta, n_tau_nca)
    for sg in range(2):  # c^+_s: 0 -> s and -s -> 2
        G = -(np.exp(-E[1 + sg] * tau) + np.exp(-E[2 - sg] * (beta - tau) - E[3] * tau)) / Z
        assert np.abs(s.G_tau[sg] - G).max() < 1e-13
    assert abs(s.double_occupancy - math.exp(-beta * E[3]) / Z) < 1e-14
    np.testing.assert_allclose(s.diagnostics["state_probabilities"], np.exp(-beta * E) / Z,
                               rtol=0, atol=1e-14)
    assert abs(s.diagnostics["lambda"] + math.log(Z) / beta) < 1e-13  # -T log Z


def test_atomic_limit_half_filling_iw():
    """PHYSICS.md: G = (1/2)[1/(iw - U/2) + 1/(iw + U/2)], d = 1/(2 + 2 e^{beta U/2}).

    G(i w) passes through the tau -> i w transform of the quintic spline of G on
    the default grid (81 points): error ~ (h U/2)^6 G ~ 1e-8."""
    U, beta = 2.0, 10.0
    p = AIMParams(U=U, mu=U / 2, beta=beta)
    s = solve_nca(p, n_iw=200, n_tau=301, n_l=30)
    iw = p.iw(200)
    G_exact = 0.5 * (1 / (iw - U / 2) + 1 / (iw + U / 2))
    assert np.abs(s.G_iw - G_exact).max() < 1e-7
    assert abs(s.double_occupancy - 1 / (2 + 2 * math.exp(beta * U / 2))) < 1e-15
    # Sigma = U/2 + U^2/(4 i w) (Hartree included)
    assert np.abs(s.Sigma_iw - (U / 2 + U**2 / (4 * iw))).max() < 1e-5


# -- 2. small V against exact diagonalisation --------------------------------------------
def test_small_v_error_scaling_against_ed():
    """p_a error O(V^4), G(tau) error O(V^2) (PHYSICS.md §2.4).

    With r(V) = err(V)/err(V/2) -> 2^k (1 + (3/4) a V^2 + ...), the ratio at
    V = 0.1 must be 2^k within the O(V^2) correction (measured 2.4 % for p,
    2.5 % for G: tolerance 6 %), and the deviations 2^k - r at V = 0.2 and 0.1
    must differ by the factor 4 of a V^2 correction (tolerance 3..5.3).  The
    grid error (O(V^2 h^4), below 1e-9 here) is far below the smallest NCA error
    (2.7e-6 for p_2 at V = 0.05)."""
    U, mu, eps_b, beta = 1.0, 0.3, 0.4, 4.0
    n_t = 401
    tau = np.linspace(0, beta, n_t)
    err_p, err_g = [], []
    for V in (0.2, 0.1, 0.05):
        p = AIMParams(U=U, mu=mu, beta=beta, eps_k=[eps_b], V_k=[V])
        s = solve_nca(p, n_iw=64, n_tau=n_t, n_l=30, n_tau_nca=n_t)
        G_ed, p_ed = ed_one_site_aim(U, [-mu, -mu], eps_b, V, beta, tau)
        err_p.append(np.abs(s.diagnostics["state_probabilities"] - p_ed).max())
        err_g.append(np.abs(s.G_tau[0] - G_ed).max())
        assert abs(s.double_occupancy - p_ed[3]) <= err_p[-1]
        assert np.abs(s.G_tau[0] - s.G_tau[1]).max() < 1e-14  # spin-symmetric input
    for err, k in ((err_p, 4), (err_g, 2)):
        r1, r2 = err[0] / err[1], err[1] / err[2]
        assert abs(r2 / 2**k - 1) < 0.06, (k, r1, r2)
        assert 3.0 < (2**k - r1) / (2**k - r2) < 5.3, (k, r1, r2)
    # measured 6.05e-4 -> 4.17e-5 -> 2.67e-6 (p_2); PHYSICS.md quotes 1.2e-3 -> 6.9e-5
    # -> 4.2e-6 for the double occupancy of another model: same order of magnitude
    assert 1e-6 < err_p[2] < 1e-5 and 1e-4 < err_p[0] < 2e-3


# -- 3. particle-hole symmetry ------------------------------------------------------------
def _assert_ph_symmetric(s):
    G = s.G_tau
    assert np.abs(G - G[:, ::-1]).max() < 1e-10
    assert np.abs(s.density - 0.5).max() < 1e-10
    assert np.abs(G[0] - G[1]).max() < 1e-10
    assert np.abs(s.G_iw.real).max() < 1e-10


def test_particle_hole_symmetry_discrete_bath():
    bath_e = [-0.6, 0.0, 0.6]
    bath_v = [0.3, 0.4, 0.3]
    p = AIMParams(U=2.0, mu=1.0, beta=10.0, eps_k=bath_e, V_k=bath_v)
    assert p.is_particle_hole_symmetric()
    s = solve_nca(p, n_iw=128, n_tau=301, n_l=40)
    _assert_ph_symmetric(s)
    pr = s.diagnostics["state_probabilities"]
    assert abs(pr[0] - pr[3]) < 1e-12 and abs(pr[1] - pr[2]) < 1e-12


def test_particle_hole_symmetry_semicircle():
    beta, n_iw = 20.0, 400
    p = AIMParams(U=2.5, mu=1.25, beta=beta, Delta_iw=semicircle_delta(beta, n_iw))
    s = solve_nca(p, n_iw=n_iw, n_tau=501, n_l=40)
    _assert_ph_symmetric(s)
    # fitted 1/iw moment of Delta = sum V^2 = D^2/4
    np.testing.assert_allclose(s.diagnostics["delta_moment"], 0.25, rtol=0, atol=1e-6)


# -- 4. normalisation, sign, sum rules ------------------------------------------------------
@pytest.mark.parametrize("richardson", [False, True])
def test_normalisation_and_sign(richardson):
    """Generic case: spin-polarised, no particle-hole symmetry, two bath sites."""
    p = AIMParams(U=3.0, mu=[1.1, 0.6], beta=15.0, eps_k=[[-0.4, 0.7], [-0.3, 0.9]],
                  V_k=[[0.5, 0.3], [0.4, 0.35]])
    s = solve_nca(p, n_iw=128, n_tau=333, n_l=40, richardson=richardson)
    pr = s.diagnostics["state_probabilities"]
    assert np.abs(s.G_tau[:, 0] + s.G_tau[:, -1] + 1).max() < 1e-10
    assert s.G_tau.max() < 0
    assert abs(pr.sum() - 1) < 1e-13
    # n_s = p_s + p_2 is an identity of the NCA G(beta)
    np.testing.assert_allclose(s.density, [pr[1] + pr[3], pr[2] + pr[3]], rtol=0, atol=1e-13)
    assert s.double_occupancy == pr[3]
    assert s.diagnostics["residual"] < 1e-12


def test_gauge_rescaling_is_exact(monkeypatch):
    """The pseudo-chemical-potential rescaling changes nothing but round-off
    (the discrete equations are covariant), also at large beta."""
    beta, n_iw = 200.0, 1000
    p = AIMParams(U=4.0, mu=[2.2, 1.8], beta=beta, Delta_iw=semicircle_delta(beta, n_iw))
    a = solve_nca(p, n_iw=n_iw, n_tau=201, n_l=30)
    monkeypatch.setattr(nca, "RESCALE", 2.0)  # rescale every few steps
    b = solve_nca(p, n_iw=n_iw, n_tau=201, n_l=30)
    assert np.abs(a.G_tau - b.G_tau).max() < 1e-13
    assert abs(a.diagnostics["lambda"] - b.diagnostics["lambda"]) < 1e-12
    assert np.all(np.isfinite(a.G_iw)) and a.G_tau.max() < 0


# -- 5. discretisation convergence -----------------------------------------------------------
@pytest.mark.parametrize("richardson,order", [(False, 2), (True, 4)])
def test_grid_convergence_order(richardson, order):
    """Max change of G(tau) on the common points when h halves: ratio 2^order.

    Measured 4.0002 / 4.00005 (raw) and 16.08 / 16.01 (Richardson) for the
    pairs (200, 400, 800) and (400, 800, 1600) intervals.  The deviation is the
    next term of the h^2 expansion, relative size ~ (h W)^2 = 3e-3 on the
    coarsest grid here (W = 1.3): tolerance 2 % on the finer pair, 5 % on the
    coarser one."""
    beta = 8.0
    p = AIMParams(U=2.0, mu=0.7, beta=beta, eps_k=[-0.5, 0.8], V_k=[0.5, 0.4])
    G = {}
    for n in (201, 401, 801, 1601):
        G[n] = solve_nca(p, n_iw=32, n_tau=n, n_l=20, n_tau_nca=n,
                         richardson=richardson).G_tau
    d1 = np.abs(G[401][:, ::2] - G[201]).max()
    d2 = np.abs(G[801][:, ::4] - G[401][:, ::2]).max()
    d3 = np.abs(G[1601][:, ::8] - G[801][:, ::4]).max()
    assert abs(d2 / d3 / 2**order - 1) < 0.02, (d1 / d2, d2 / d3)
    assert abs(d1 / d2 / 2**order - 1) < 0.05, (d1 / d2, d2 / d3)


def test_default_grid_accuracy():
    """Default grid (N = 8 beta W) against a 16x finer one: G(tau) to < 1e-5."""
    beta, n_iw = 30.0, 400
    p = AIMParams(U=2.0, mu=1.0, beta=beta, Delta_iw=semicircle_delta(beta, n_iw))
    s = solve_nca(p, n_iw=n_iw, n_tau=241, n_l=30)
    n_def = s.diagnostics["n_tau_nca"]
    ref = solve_nca(p, n_iw=n_iw, n_tau=241, n_l=30, n_tau_nca=16 * (n_def - 1) + 1)
    assert np.abs(s.G_tau - ref.G_tau).max() < 1e-5
    # the reported h^2-error estimate is the size of the Richardson correction
    assert 1e-5 < s.diagnostics["tau_error_estimate"] < 1e-3


# -- 6. bad input ----------------------------------------------------------------------------
def test_bad_input():
    p = AIMParams(U=2.0, mu=1.0, beta=10.0, eps_k=[0.0], V_k=[0.3])
    with pytest.raises(UnknownParameterError, match="n_tau_ncaa"):
        check_options(nca.SPEC, {"n_tau_ncaa": 101})
    with pytest.raises(TypeError):
        solve_nca(p, n_iw=16, n_tau=11, n_l=10, tolerance=1e-3)
    with pytest.raises(ValueError, match="too small"):
        solve_nca(p, n_iw=16, n_tau=11, n_l=10, n_tau_nca=9)
    with pytest.raises(ValueError, match="odd"):
        solve_nca(p, n_iw=16, n_tau=11, n_l=10, n_tau_nca=100)
    with pytest.raises(ValueError, match="integer"):
        solve_nca(p, n_iw=16, n_tau=11, n_l=10, n_tau_nca=100.5)
    with pytest.raises(ValueError, match="richardson"):
        solve_nca(p, n_iw=16, n_tau=11, n_l=10, richardson="yes")
    q = AIMParams(U=2.0, mu=1.0, beta=10.0, Delta_iw=semicircle_delta(10.0, 50))
    with pytest.raises(ValueError, match="n_iw"):
        solve_nca(q, n_iw=60, n_tau=11, n_l=10)
    with pytest.raises(ValueError, match="not causal"):
        solve_nca(AIMParams(U=2.0, mu=1.0, beta=10.0, Delta_iw=-semicircle_delta(10.0, 50)),
                  n_iw=50, n_tau=11, n_l=10)
    # an even grid is fine without the Richardson step
    s = solve_nca(p, n_iw=16, n_tau=11, n_l=10, n_tau_nca=100, richardson=False)
    assert s.diagnostics["n_tau_nca"] == 100


def test_registry():
    from triqs_mlsolver.solvers.base import solve_aim

    p = AIMParams(U=2.0, mu=1.0, beta=10.0, eps_k=[0.0], V_k=[0.3])
    assert nca.SPEC.function is solve_nca
    with pytest.raises(UnknownParameterError, match="n_tau_ncaa"):
        solve_aim("nca", p, n_iw=16, n_tau=11, n_l=10, n_tau_ncaa=101)
    s = solve_aim("nca", p, n_iw=16, n_tau=11, n_l=10)
    assert s.solver == "nca" and s.settings["richardson"] is True


def test_triqs_front_matches_pure_function():
    """Solver front: G0_iw = 1/(i w + mu - Delta) of the semicircle; the
    hybridisation recovered by params_from_g0 must give the same NCA result."""
    from triqs_mlsolver.operators import n
    from triqs_mlsolver.solvers import NCASolver

    beta, n_iw, U = 20.0, 256, 2.0
    delta = semicircle_delta(beta, n_iw)
    S = NCASolver(beta=beta, gf_struct=[("up", 1), ("down", 1)], n_iw=n_iw, n_tau=201, n_l=30)
    g0 = 1.0 / (matsubara_freqs(beta, n_iw) + U / 2 - delta)
    for name in ("up", "down"):
        S.G0_iw[name].data[:, 0, 0] = g0
    S.solve(h_int=U * n("up", 0) * n("down", 0))
    ref = solve_nca(AIMParams(U=U, mu=U / 2, beta=beta, Delta_iw=delta), n_iw=n_iw, n_tau=201,
                    n_l=30)
    # the front refits mu from the tail of G0^-1 (error ~1e-15): same grid, same result
    assert S.solution.diagnostics["n_tau_nca"] == ref.diagnostics["n_tau_nca"]
    assert np.abs(S.G_tau["up"].data[:, 0, 0] - ref.G_tau[0]).max() < 1e-12
    assert np.abs(S.G_iw["down"].data[:, 0, 0] - ref.G_iw[1]).max() < 1e-10
    assert abs(S.double_occupancy - ref.double_occupancy) < 1e-12
