# SPDX-License-Identifier: Apache-2.0
"""The causal projection of an approximate answer (triqs_mlsolver.causal), against exact
ED solutions: it keeps an exact answer, repairs a spoiled one towards the exact one, holds
a level far beyond the Matsubara mesh, and works for a continuous hybridisation."""

import numpy as np
import pytest
from triqs_mlsolver.aim.params import AIMParams, delta_from_bath
from triqs_mlsolver.causal import causal_projection, impurity_poles, pole_grid
from triqs_mlsolver.solvers import solve_aim
from triqs_mlsolver.solvers.solution import AIMSolution, solution_from_iw
from triqs_mlsolver.validity import check_solution

N_IW, N_TAU, N_L = 512, 2049, 40


def _params(beta=50.0, U=3.0, mu=1.8, h=0.0, eps=(-1.2, -0.3, 0.4, 1.1),
            V=(0.35, 0.45, 0.45, 0.35)):
    return AIMParams(U=U, mu=np.array([mu + h, mu - h]), beta=beta,
                     eps_k=np.array([eps, eps]), V_k=np.array([V, V]))


def _exact(p):
    return solve_aim("ed", p, n_iw=N_IW, n_tau=N_TAU, n_l=N_L, n_bath=len(p.eps_k[0]))


def _project(p, sol, **kw):
    return causal_projection(p, sol.Sigma_iw, sol.G_iw, n_iw=N_IW, n_tau=N_TAU,
                             n_l=N_L, **kw)


def _rms(a, b):
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def test_impurity_poles_are_those_of_the_resolvent():
    E, W = impurity_poles(0.3, np.array([-1.0, 0.5, 2.0]), np.array([0.4, 0.2, 0.7]))
    z = 0.37 + 0.21j
    G = 1.0 / (z - 0.3 - np.sum(np.array([0.16, 0.04, 0.49]) / (z - np.array([-1, 0.5, 2]))))
    assert abs(np.sum(W / (z - E)) - G) < 1e-13
    assert abs(W.sum() - 1.0) < 1e-13 and np.all(W >= 0)
    eps = pole_grid(100.0, 30.0)
    assert eps[0] == -eps[-1] and 0.0 in eps and abs(eps[-1] - 30.0) < 1e-12


@pytest.mark.parametrize("h", [0.0, 0.15])
def test_exact_answers_are_kept(h):
    """An exact (valid) answer is moved by far less than the models' accuracy (~1e-4 RMS
    of G(tau)): the positive-pole fit holds a true self-energy."""
    p = _params(h=h)
    exact = _exact(p)
    proj, info = _project(p, exact)
    assert check_solution(proj, U=p.U, g0_iw=p.g0_iw(N_IW)) == []
    assert np.abs(proj.G_tau - exact.G_tau).max() < 2e-5
    np.testing.assert_allclose(proj.density, exact.density, atol=2e-6)
    assert abs(proj.double_occupancy - exact.double_occupancy) < 2e-5
    assert info["double_occupancy_clipped"] == 0.0


def test_a_non_causal_self_energy_is_repaired_towards_the_exact_one():
    """Sigma spoiled as the learned corrections are (Im Sigma > 0 at the lowest
    frequencies, a wrong double occupancy): the projection is valid and closer to the exact
    answer than the spoiled one, in G(tau) and in <n_up n_dn> (the projection onto a convex
    set holding the exact Sigma does not move away from it)."""
    p = _params(beta=100.0, U=2.0, mu=1.0)
    exact = _exact(p)
    iw = p.iw(N_IW)
    # Im Sigma > 0 at the lowest frequencies (twice as deep as Im Sigma(i w_0) there)
    depth = 2.0 * abs(exact.Sigma_iw[0, N_IW].imag) + 0.01
    bump = 1j * depth * np.sign(iw.imag) * np.exp(-np.abs(iw.imag) / (2 * np.pi / p.beta))
    Sigma = exact.Sigma_iw + bump[None, :]
    G = 1.0 / (1.0 / p.g0_iw(N_IW) - Sigma)
    spoiled = solution_from_iw(p, G, n_tau=N_TAU, n_l=N_L)
    spoiled.double_occupancy = -0.002
    assert any("Im Sigma" in v for v in check_solution(spoiled, U=p.U))
    proj, info = _project(p, spoiled)
    assert check_solution(proj, U=p.U, g0_iw=p.g0_iw(N_IW)) == []
    assert np.all(proj.Sigma_iw[:, N_IW:].imag <= 0)
    e_spoiled, e_proj = _rms(spoiled.G_tau, exact.G_tau), _rms(proj.G_tau, exact.G_tau)
    assert e_proj < e_spoiled, (e_proj, e_spoiled)
    assert abs(proj.double_occupancy - exact.double_occupancy) < \
        abs(spoiled.double_occupancy - exact.double_occupancy)


def test_a_level_beyond_the_mesh_keeps_the_density_physical():
    """A nearly empty impurity whose level (~8 D) lies beyond the largest Matsubara
    frequency (~5 D): the transform of the exact G(i w) with a fitted tail gets the density
    wrong by 0.08; the projection's poles get it to the accuracy of its Sigma fit (2e-6)."""
    p = _params(beta=150.0, U=5.0, mu=-8.0, eps=(-0.4, 2.0, 8.3, 9.4), V=(0.2, 0.3, 0.34, 0.37))
    N = 128
    exact = solve_aim("ed", p, n_iw=N, n_tau=N_TAU, n_l=N_L, n_bath=4)
    assert p.iw(N)[-1].imag < 6.0 and exact.density[0] < 1e-2
    via_iw = solution_from_iw(p, exact.G_iw, n_tau=N_TAU, n_l=N_L)
    proj, _ = causal_projection(p, exact.Sigma_iw, exact.G_iw, n_iw=N,
                                n_tau=N_TAU, n_l=N_L)
    assert check_solution(proj, U=p.U) == []
    err_iw = abs(via_iw.density[0] - exact.density[0])
    err_proj = abs(proj.density[0] - exact.density[0])
    assert err_proj < 1e-5 and err_proj < 1e-3 * err_iw, (err_proj, err_iw)


def test_continuous_hybridisation():
    """Delta given on the Matsubara mesh only (as in DMFT): the bath is a positive-pole
    fit, G the exact Dyson solution with the given Delta."""
    pd = _params(beta=40.0, U=2.5, mu=1.0, h=0.1)
    exact = _exact(pd)
    pc = AIMParams(U=pd.U, mu=pd.mu, beta=pd.beta,
                   Delta_iw=delta_from_bath(pd.eps_k, pd.V_k, pd.iw(N_IW)))
    proj, _ = _project(pc, exact)
    assert check_solution(proj, U=pc.U, g0_iw=pc.g0_iw(N_IW)) == []
    assert np.abs(proj.G_tau - exact.G_tau).max() < 2e-5
    np.testing.assert_allclose(proj.G_iw, 1.0 / (1.0 / pc.g0_iw(N_IW) - proj.Sigma_iw),
                               atol=1e-12)


def test_double_occupancy_is_projected_onto_its_bounds():
    p = _params(beta=30.0, U=4.0, mu=2.0)
    exact = _exact(p)
    sol = AIMSolution(beta=p.beta, G_iw=exact.G_iw, G_tau=exact.G_tau, G_l=exact.G_l,
                      Sigma_iw=exact.Sigma_iw, density=exact.density, double_occupancy=0.0)
    proj, info = _project(p, sol)
    lo = max(0.0, proj.density.sum() - 1.0)
    assert lo - 1e-15 <= proj.double_occupancy <= min(proj.density) + 1e-15


def test_mlsolver_answers_a_nearly_empty_impurity_validly():
    """A validation AIM of the single-band database (beta D = 243, U = 5.4, levels ~8 D
    above the Fermi energy, n ~ 1e-30): the levels lie beyond the Matsubara mesh.  Through
    G_iw and moment tails the model's answer had n = -0.003 (G(beta) > 0) and needed this
    projection; built in tau (the base's G(tau) plus the correction: ``beyond_mesh``) it is
    valid as it stands, with the density of the exact ED within 1e-5 (measured 3e-7)."""
    from triqs_mlsolver.mlsolver import solve_ml

    p = AIMParams(U=5.399031041401731, beta=243.3066019577391,
                  mu=np.array([-8.377276002149998, -8.420786080653464]),
                  eps_k=np.array([[-0.375, 8.30602901920793, 9.42033813048069],
                                  [-0.375, 8.76728429563473, 9.881876974342537]]),
                  V_k=np.array([[0.0, 0.33934074060941566, 0.3672138103617671],
                                [0.0, 0.33986611130602806, 0.36672801553222373]]))
    sol = solve_ml(p, n_iw=1025, n_tau=2049, n_l=40, model="triqs_mlsolver_single_band_v1",
                   fallback="raise", exact_max_bath=0)  # the model, not the exact path
    assert sol.diagnostics["beyond_mesh"] and sol.diagnostics["projection"] is None
    assert check_solution(sol, U=p.U, g0_iw=p.g0_iw(1025)) == []
    exact = solve_aim("ed", p, n_iw=1025, n_tau=2049, n_l=40, n_bath=3)
    assert np.abs(sol.density - exact.density).max() < 1e-5


def test_the_projection_is_used_only_within_a_finite_spread_limit():
    """MLSolver's rule: a valid projection is used when it moves G(tau) by no more than the
    model's spread limit; a model without one (limit inf) gets none."""
    from triqs_mlsolver.mlsolver import _project

    p = _params(beta=100.0, U=2.0, mu=1.0)
    exact = _exact(p)
    iw = p.iw(N_IW)
    depth = 2.0 * abs(exact.Sigma_iw[0, N_IW].imag) + 0.01  # Im Sigma > 0 at low w
    bump = 1j * depth * np.sign(iw.imag) * np.exp(-np.abs(iw.imag) / (2 * np.pi / p.beta))
    Sigma = exact.Sigma_iw + bump[None, :]
    spoiled = solution_from_iw(p, 1.0 / (1.0 / p.g0_iw(N_IW) - Sigma), n_tau=N_TAU, n_l=N_L)
    g0 = p.g0_iw(N_IW)
    bad = check_solution(spoiled, U=p.U, g0_iw=g0)
    assert bad
    results = {}
    for limit in (np.inf, 1e-9, 1.0):
        diag = {"timings": {}}
        sol, left = _project(p, spoiled, bad, g0, limit, N_IW, N_TAU, N_L, diag)
        results[limit] = (sol is spoiled, left, diag["projection"])
    assert results[np.inf][0] and results[np.inf][1] == bad
    assert "no spread limit" in results[np.inf][2]["reason"]
    assert results[1e-9][0] and "moves G(tau)" in results[1e-9][1][-1]
    assert not results[1.0][0] and results[1.0][1] == [] and results[1.0][2]["accepted"]
