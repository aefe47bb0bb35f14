# SPDX-License-Identifier: Apache-2.0
"""Hubbard-I, IPT, bath fitting and the TRIQS-style protocol: exact limits and bad input."""

import numpy as np
import pytest
from triqs_mlsolver.aim import AIMParams, delta_from_bath, fit_bath
from triqs_mlsolver.dmft import bethe_dmft, semicircle_g
from triqs_mlsolver.errors import GfStructError, UnknownParameterError
from triqs_mlsolver.gf import inverse, iOmega_n
from triqs_mlsolver.gf.transforms import matsubara_freqs
from triqs_mlsolver.operators import n
from triqs_mlsolver.solvers import HubbardISolver, IPTSolver, solve_aim

N_IW, N_TAU, N_L = 256, 1001, 30


def bethe_delta(beta, n_iw=N_IW, D=1.0):
    return D**2 / 4 * semicircle_g(matsubara_freqs(beta, n_iw), D)


def discrete_params(U, mu, beta, seed=1, k=3, ph=False):
    rng = np.random.default_rng(seed)
    if ph:
        e = rng.uniform(0.1, 1.0, k // 2)
        V = rng.uniform(0.1, 0.5, k // 2)
        eps, Vk = np.concatenate([-e, e]), np.concatenate([V, V])
    else:
        eps, Vk = rng.uniform(-1, 1, k), rng.uniform(0.1, 0.5, k)
    return AIMParams(U=U, mu=mu, beta=beta, eps_k=eps, V_k=Vk)


# -- U = 0: the non-interacting G0 ------------------------------------------------
@pytest.mark.parametrize("solver", ["hubbard_i", "ipt"])
@pytest.mark.parametrize("bath", ["discrete", "continuous"])
@pytest.mark.parametrize("mu", [0.0, 0.37])
def test_U0_gives_G0(solver, bath, mu):
    beta = 20.0
    if bath == "discrete":
        p = discrete_params(0.0, mu, beta, k=4, ph=True)
    else:
        p = AIMParams(U=0.0, mu=mu, beta=beta, Delta_iw=bethe_delta(beta))
    sol = solve_aim(solver, p, n_iw=N_IW, n_tau=N_TAU, n_l=N_L)
    assert np.abs(sol.G_iw - p.g0_iw(N_IW)).max() < 1e-10
    assert np.abs(sol.Sigma_iw).max() < 1e-10


def test_U0_tau_of_discrete_bath_is_exact_for_hubbard_i():
    """G0(tau) of a discrete bath from the one-body eigenproblem, to 1e-10."""
    p = discrete_params(0.0, 0.2, 10.0, k=3)
    sol = solve_aim("hubbard_i", p, n_iw=N_IW, n_tau=N_TAU, n_l=N_L)
    H = np.diag(np.concatenate([[-0.2], p.eps_k[0]]))
    H[0, 1:] = H[1:, 0] = p.V_k[0]
    E, U = np.linalg.eigh(H)
    tau = np.linspace(0, 10.0, N_TAU)
    exact = -(U[0] ** 2 * np.exp(-np.outer(tau, E)) / (1 + np.exp(-10.0 * E))).sum(axis=1)
    assert np.abs(sol.G_tau[0] - exact).max() < 1e-10


# -- atomic limit ---------------------------------------------------------------------
@pytest.mark.parametrize("U, mu, beta", [(2.0, 1.0, 10.0), (3.0, 0.7, 10.0), (4.0, 2.0, 50.0)])
def test_hubbard_i_atomic_limit_is_the_two_pole_g(U, mu, beta):
    p = AIMParams(U=U, mu=mu, beta=beta)
    sol = solve_aim("hubbard_i", p, n_iw=N_IW, n_tau=N_TAU, n_l=N_L)
    E = np.array([0.0, -mu, -mu, -2 * mu + U])
    w = np.exp(-beta * (E - E.min()))
    Z = w.sum()
    nb = (w[2] + w[3]) / Z
    iw = matsubara_freqs(beta, N_IW)
    exact = (1 - nb) / (iw + mu) + nb / (iw + mu - U)
    assert np.abs(sol.G_iw[0] - exact).max() < 1e-10
    tau = np.linspace(0, beta, N_TAU)
    f = lambda e: np.exp(-e * tau) / (1 + np.exp(-beta * e))  # noqa: E731
    assert np.abs(sol.G_tau[0] + (1 - nb) * f(-mu) + nb * f(U - mu)).max() < 1e-10
    assert abs(sol.double_occupancy - w[3] / Z) < 1e-12
    if abs(mu - U / 2) < 1e-15:
        assert abs(sol.double_occupancy - 1 / (2 + 2 * np.exp(beta * U / 2))) < 1e-12


def test_hubbard_i_with_a_spin_filled_to_rounding():
    """mu_up = 18.7 at beta = 3.5: n_up = p_up + p_2 rounds to 1 + 2e-16, which made the
    weight U^2 n (1 - n) of Sigma_dn's pole negative and G NaN (5 samples of the 30,000 of
    the single-band database)."""
    eps, V = np.array([[-0.5, 0.7], [-0.5, 0.7]]), np.array([[0.4, 0.3], [0.4, 0.3]])
    p = AIMParams(U=4.396994499655314, mu=np.array([18.67781141546495, 5.046897849424337]),
                  beta=3.548695447042514, eps_k=eps, V_k=V)
    sol = solve_aim("hubbard_i", p, n_iw=N_IW, n_tau=N_TAU, n_l=N_L)
    assert np.all(np.isfinite(sol.G_iw)) and np.all(np.isfinite(sol.G_tau))
    assert 0.0 <= sol.density[0] <= 1.0 and np.all(sol.G_tau <= 0.0)


def test_hubbard_i_on_the_triqs_reference(triqs_archives):
    """triqs_hubbardI 3.2 at beta=10 (U=2 mu=1 and U=3 mu=0.7): G_iw, Sigma_iw, G_tau, G_l."""
    import h5py

    with h5py.File(triqs_archives / "transforms.h5", "r") as f:
        for key, U, mu in [("hubbardI_half_filled", 2.0, 1.0), ("hubbardI_shifted", 3.0, 0.7)]:
            def rd(name, key=key):
                d = f[f"{key}/{name}/up/data"][()]
                return (d[..., 0] + 1j * d[..., 1])[:, 0, 0]

            G_iw = rd("G_iw")
            n_iw = G_iw.shape[0] // 2
            G_tau, G_l = rd("G_tau"), rd("G_l")
            p = AIMParams(U=U, mu=mu, beta=10.0)
            sol = solve_aim("hubbard_i", p, n_iw=n_iw, n_tau=G_tau.shape[0], n_l=G_l.shape[0])
            assert np.abs(sol.G_iw[0] - G_iw).max() < 1e-12
            assert np.abs(sol.Sigma_iw[0] - rd("Sigma_iw")).max() < 1e-10
            # triqs_hubbardI gets G_tau by Fourier of G_iw (n_iw=200, fitted tail)
            assert np.abs(sol.G_tau[0] - G_tau.real).max() < 1e-6
            # and G_l by TRIQS's MatsubaraToLegendre (trapezoid on 50000 tau bins, see
            # test_transforms_match_real_triqs for the bound)
            assert np.abs(sol.G_l[0] - G_l.real).max() < 1e-5


# -- particle-hole symmetry -------------------------------------------------------------
@pytest.mark.parametrize("solver", ["hubbard_i", "ipt"])
@pytest.mark.parametrize("bath", ["discrete", "continuous"])
def test_half_filling_particle_hole_symmetry(solver, bath):
    U, beta = 2.5, 20.0
    if bath == "discrete":
        p = discrete_params(U, U / 2, beta, k=4, ph=True)
    else:
        p = AIMParams(U=U, mu=U / 2, beta=beta, Delta_iw=bethe_delta(beta))
    assert p.is_particle_hole_symmetric()
    sol = solve_aim(solver, p, n_iw=N_IW, n_tau=N_TAU, n_l=N_L)
    assert np.abs(sol.G_tau - sol.G_tau[:, ::-1]).max() < 1e-10
    assert np.abs(sol.density - 0.5).max() < 1e-10
    assert np.abs(sol.G_l[:, 1::2]).max() < 1e-10


# -- IPT ----------------------------------------------------------------------------------
def test_ipt_atomic_self_energy_sign():
    """With G0 = 1/iw (V = 0) IPT gives the atomic Sigma = U/2 + U^2/(4 iw) exactly."""
    U, beta = 2.0, 10.0
    p = AIMParams(U=U, mu=U / 2, beta=beta)
    sol = solve_aim("ipt", p, n_iw=N_IW, n_tau=N_TAU, n_l=N_L, n_tau_internal=4 * N_IW + 1)
    iw = matsubara_freqs(beta, N_IW)
    assert np.abs(sol.Sigma_iw[0] - (U / 2 + U**2 / (4 * iw))).max() < 1e-9


def test_ipt_away_from_half_filling_has_exact_tail_and_atomic_limit():
    U, beta, mu = 3.0, 10.0, 0.6
    p = AIMParams(U=U, mu=mu, beta=beta, Delta_iw=bethe_delta(beta, 1024))
    sol = solve_aim("ipt", p, n_iw=1024, n_tau=N_TAU, n_l=N_L)
    nb = sol.density[1]
    iw = matsubara_freqs(beta, 1024)
    # Sigma -> U n + U^2 n (1 - n) / iw
    c1 = ((sol.Sigma_iw[0] - U * nb) * iw)[-1].real
    assert abs(c1 - U**2 * nb * (1 - nb)) < 2e-3 * U**2 * nb * (1 - nb)
    assert sol.diagnostics["residual"] < 1e-8
    # atomic limit: Kajueter-Kotliar is exact there (B fixes it)
    pa = AIMParams(U=U, mu=mu, beta=beta)
    sa = solve_aim("ipt", pa, n_iw=1024, n_tau=N_TAU, n_l=N_L)
    sh = solve_aim("hubbard_i", pa, n_iw=1024, n_tau=N_TAU, n_l=N_L)
    assert np.abs(sa.G_iw - sh.G_iw).max() < 1e-8


def test_ipt_double_occupancy_weak_coupling():
    """Galitskii-Migdal d of IPT is second-order exact: d = 1/4 - c U + O(U^2) check vs U=0."""
    beta = 20.0
    p = AIMParams(U=1e-3, mu=0.5e-3, beta=beta, Delta_iw=bethe_delta(beta, 1024))
    sol = solve_aim("ipt", p, n_iw=1024, n_tau=N_TAU, n_l=N_L)
    assert abs(sol.double_occupancy - 0.25) < 1e-3


@pytest.mark.slow
def test_ipt_dmft_mott_transition_beta50():
    r2 = bethe_dmft("ipt", 2.0, 50.0, n_iw=1024, n_tau=2049, tol=1e-7)
    r35 = bethe_dmft("ipt", 3.5, 50.0, n_iw=1024, n_tau=2049, start="insulator", tol=1e-7)
    assert r2.converged and r35.converged
    assert not r2.is_insulating() and r2.Z[0] > 0.2
    assert r35.is_insulating() and r35.Z[0] < 0.01


def test_ipt_dmft_metal_and_insulator_quick():
    r2 = bethe_dmft("ipt", 2.0, 50.0, n_iw=512, n_tau=1025, tol=1e-6)
    r35 = bethe_dmft("ipt", 3.5, 50.0, n_iw=512, n_tau=1025, start="insulator", tol=1e-6)
    assert r2.converged and r35.converged
    assert r2.g_beta_half > 0.5 and r35.g_beta_half < 1e-3


# -- bath fitting ---------------------------------------------------------------------------
def test_fit_bath_recovers_a_discrete_bath_exactly():
    beta = 50.0
    iw = matsubara_freqs(beta, 512)
    e, V = np.array([-0.7, -0.1, 0.4]), np.array([0.3, 0.5, 0.2])
    d = delta_from_bath(np.stack([e, e]), np.stack([V, V]), iw)[0]
    fit = fit_bath(d, beta, 3, n_starts=4, seed=3)
    assert np.abs(fit.eps_k - e).max() < 1e-8 and np.abs(fit.V_k - V).max() < 1e-8
    assert fit.chi2 < 1e-20


def test_fit_bath_semicircle_converges_with_k_and_respects_sum_rule():
    beta = 50.0
    d = bethe_delta(beta, 512)
    chi = [fit_bath(d, beta, k, ph_symmetric=True).chi2 for k in (2, 4, 6)]
    assert chi[0] > 10 * chi[1] > 100 * chi[2]
    fit = fit_bath(d, beta, 6, ph_symmetric=True)
    assert abs(fit.sum_V2 - 0.25) < 2e-3  # Bethe sum rule: sum V^2 = D^2/4
    assert np.allclose(np.sort(fit.eps_k), -np.sort(fit.eps_k)[::-1], atol=1e-12)


def test_fit_bath_bad_input():
    d = bethe_delta(10.0, 64)
    with pytest.raises(ValueError, match="n_bath"):
        fit_bath(d, 10.0, 0)
    with pytest.raises(ValueError, match="NaN"):
        fit_bath(np.full(128, np.nan, complex), 10.0, 2)
    with pytest.raises(ValueError, match="weight"):
        fit_bath(d, 10.0, 2, weight="cubic")


# -- TRIQS-style protocol and bad input -------------------------------------------------------
def test_triqs_style_solver_round_trip_of_bethe_input():
    beta, U, t = 20.0, 2.0, 0.5
    S = IPTSolver(beta=beta, gf_struct=[("up", 1), ("down", 1)], n_iw=N_IW, n_tau=N_TAU)
    for name, g0 in S.G0_iw:
        g0 << inverse(iOmega_n + U / 2 - t**2 * S.G0_iw[name].copy().zero() - 0.25 * 0)
    # G0 = 1/(iw + mu - t^2 G) with G the semicircle
    from triqs_mlsolver.gf import SemiCircular

    G = S.G_iw.copy()
    G << SemiCircular(1.0)
    for name, g0 in S.G0_iw:
        g0 << inverse(iOmega_n + U / 2 - t**2 * G[name])
    S.solve(h_int=U * n("up", 0) * n("down", 0))
    p = AIMParams(U=U, mu=U / 2, beta=beta, Delta_iw=bethe_delta(beta))
    ref = solve_aim("ipt", p, n_iw=N_IW, n_tau=N_TAU, n_l=N_L)
    assert np.abs(S.G_iw["up"].data[:, 0, 0] - ref.G_iw[0]).max() < 1e-9
    assert np.abs(S.G_tau["down"].data[:, 0, 0] - ref.G_tau[1]).max() < 1e-9
    # Dyson: Sigma = G0^-1 - G^-1
    sig = inverse(S.G0_iw) - inverse(S.G_iw)
    assert np.abs(sig["up"].data - S.Sigma_iw["up"].data).max() < 1e-10
    assert S.last_solve_parameters["U"] == U
    assert abs(S.last_solve_parameters["mu"][0] - U / 2) < 1e-9


def test_h_int_with_shifted_densities_moves_mu():
    beta, U = 10.0, 2.0
    S = HubbardISolver(beta=beta, gf_struct=[("up", 1), ("down", 1)], n_iw=64, n_tau=101)
    for _, g0 in S.G0_iw:
        g0 << inverse(iOmega_n)
    S.solve(h_int=U * (n("up", 0) - 0.5) * (n("down", 0) - 0.5))
    assert S.last_solve_parameters["mu"] == pytest.approx([1.0, 1.0], abs=1e-9)
    assert np.abs(S.density - 0.5).max() < 1e-12


@pytest.mark.parametrize(
    "make, exc, match",
    [
        (lambda: AIMParams(U=2.0, mu=1.0, beta=0.0), ValueError, "beta"),
        (lambda: AIMParams(U=-1.0, mu=1.0, beta=10.0), ValueError, ">= 0"),
        (lambda: AIMParams(U=2 + 1j, mu=1.0, beta=10.0), ValueError, "real"),
        (lambda: AIMParams(U=2.0, mu=np.nan, beta=10.0), ValueError, "NaN"),
        (lambda: AIMParams(U=2.0, mu=1.0, beta=10.0, eps_k=[0.1]), ValueError, "both"),
        (lambda: solve_aim("ipt", AIMParams(U=2.0, mu=1.0, beta=10.0), n_iw=16, n_tau=33,
                           n_l=4, tolerance=1e-3), UnknownParameterError, "tolerance"),
        (lambda: solve_aim("cthyb2", AIMParams(U=2.0, mu=1.0, beta=10.0)), KeyError, "available"),
    ],
)
def test_bad_physics_input(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_bad_solver_front_input():
    with pytest.raises(GfStructError, match=r"\[\('up', 1\), \('down', 1\)\]"):
        IPTSolver(beta=10.0, gf_struct=[("up", 2)])
    with pytest.raises(UnknownParameterError, match="n_cycles"):
        IPTSolver(beta=10.0, gf_struct=[("up", 1), ("down", 1)], n_cycles=100)
    S = IPTSolver(beta=10.0, gf_struct=[("up", 1), ("down", 1)], n_iw=32, n_tau=65, n_l=10)
    for _, g0 in S.G0_iw:
        g0 << inverse(iOmega_n + 1.0)
    with pytest.raises(ValueError, match="not in gf_struct"):
        S.solve(h_int=2.0 * n("up", 0) * n("dn", 0))
    with pytest.raises(UnknownParameterError, match="n_warmup"):
        S.solve(h_int=2.0 * n("up", 0) * n("down", 0), n_warmup=10)
    with pytest.raises(TypeError, match="h_int"):
        S.solve()
    S.G0_iw["up"].data[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        S.solve(h_int=2.0 * n("up", 0) * n("down", 0))


def test_hubbard_i_double_occupancy_same_for_discrete_and_continuous_bath():
    """The pole (exact) and Matsubara-sum (tail-corrected) Galitskii-Migdal routes agree."""
    p = discrete_params(2.0, 0.8, 20.0, k=4)
    disc = solve_aim("hubbard_i", p, n_iw=2048, n_tau=N_TAU, n_l=N_L)
    cont = solve_aim("hubbard_i", AIMParams(U=2.0, mu=0.8, beta=20.0,
                                            Delta_iw=p.delta_iw(2048)),
                     n_iw=2048, n_tau=N_TAU, n_l=N_L)
    assert np.abs(disc.G_iw - cont.G_iw).max() < 1e-12
    # truncation of the Matsubara sum: next tail term ~ c3/(i w)^4, T sum_{|n|>N} ~ beta^3/N^3
    assert abs(disc.double_occupancy - cont.double_occupancy) < 1e-6


@pytest.mark.slow
def test_ipt_uc2_at_beta50_is_bracketed():
    """The metallic solution (continued from U = 2.9) disappears between U = 2.95 and 3.05.

    Our hysteresis scan in doc/dmft.rst gives U_c2(beta=50) = 2.97 +- 0.03.
    """
    r = bethe_dmft("ipt", 2.9, 50.0, n_iw=1024, n_tau=2049, tol=1e-8, max_iter=2000)
    assert not r.is_insulating()
    r2 = bethe_dmft("ipt", 2.95, 50.0, n_iw=1024, n_tau=2049, start=r.G_iw, tol=1e-8,
                    max_iter=2000)
    assert r2.converged and not r2.is_insulating()
    r3 = bethe_dmft("ipt", 3.05, 50.0, n_iw=1024, n_tau=2049, start=r2.G_iw, tol=1e-8,
                    max_iter=2000)
    assert r3.converged and r3.is_insulating()


def test_solver_round_trips_through_hdf5(tmp_path):
    from triqs_mlsolver.gf import HDFArchive, SemiCircular

    S = IPTSolver(beta=10.0, gf_struct=[("up", 1), ("down", 1)], n_iw=32, n_tau=65, n_l=8)
    G = S.G_iw.copy()
    G << SemiCircular(1.0)
    for name, g0 in S.G0_iw:
        g0 << inverse(iOmega_n + 1.0 - 0.25 * G[name])
    S.solve(h_int=2.0 * n("up", 0) * n("down", 0))
    with HDFArchive(tmp_path / "s.h5", "w") as ar:
        ar["solver"] = S
    with HDFArchive(tmp_path / "s.h5", "r") as ar:
        T = ar["solver"]
    assert isinstance(T, IPTSolver) and T.constr_params == S.constr_params
    assert "n_tau_internal" in S.last_solve_parameters  # None-valued option, omitted
    for key in ("G0_iw", "G_iw", "Sigma_iw", "G_tau", "G_l"):
        assert np.array_equal(getattr(T, key)["up"].data, getattr(S, key)["up"].data)
    assert T.last_solve_parameters == {k: v for k, v in S.last_solve_parameters.items()
                                       if v is not None}
    assert T.double_occupancy == S.double_occupancy
