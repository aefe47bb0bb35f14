# SPDX-License-Identifier: Apache-2.0
"""The reference ED at every temperature: default options against complete
diagonalisation, finite-temperature Lanczos (FTLM) error bars against the exact answer,
the bath-size-converged ``n_bath='auto'`` reference and the k = 8 grid of the issue.

Tolerances come from the method:

* default options (Boltzmann cutoff 1e-7, adaptive continued fractions) against
  ``method='full'``: 1e-6 in ``G(i w_n)`` (the issue's bound; measured <= 3e-8);
* FTLM is stochastic: its jackknife bar must describe the actual error (about 68 % of
  the points within one bar, 95 % within two), while the sum rule holds exactly;
* ``G(0+) + G(beta-) = -1`` to 1e-8 everywhere, ``G(tau) <= 0``.
"""

import numpy as np
import pytest
from triqs_mlsolver.aim.params import AIMParams
from triqs_mlsolver.dmft.lattice import semicircle_g
from triqs_mlsolver.gf.transforms import matsubara_freqs
from triqs_mlsolver.solvers.ed import AUTO_TOL, RESOLUTION, ed_poles, solve_ed
from triqs_mlsolver.solvers.solution import iw_of_poles, tau_of_poles


def random_aim(k, beta, seed, U=2.0, polarised=True):
    rng = np.random.default_rng(seed)
    eps = np.sort(rng.uniform(-2, 2, (2, k)), axis=1)
    V = rng.uniform(0.2, 0.6, (2, k))
    mu = U / 2 + rng.uniform(-0.5, 0.5) + (np.array([0.15, -0.15]) if polarised else 0.0)
    if not polarised:
        eps, V = eps[0], V[0]
    return AIMParams(U=U, mu=mu, beta=beta, eps_k=eps, V_k=V)


def bethe_delta(beta, n_iw, D=1.0):
    """Delta = t^2 G of the U = 0 Bethe lattice (t = D/2), both spins."""
    iw = matsubara_freqs(beta, n_iw)
    return np.tile(D**2 / 4 * semicircle_g(iw, D), (2, 1))


# -- 1. default options against complete diagonalisation -------------------------------------
@pytest.mark.parametrize("k, beta", [(5, 1.0), (5, 10.0), (5, 50.0), (6, 10.0), (6, 50.0)])
@pytest.mark.parametrize("polarised", [False, True])
def test_default_path_equals_full_diagonalisation(k, beta, polarised):
    p = random_aim(k, beta, seed=k + int(beta), polarised=polarised)
    P_full, st_full = ed_poles(p, method="full")
    sol = solve_ed(p, n_iw=256, n_tau=201, n_l=20, n_bath=None)  # default method: Lanczos
    assert sol.diagnostics["method"] == "lanczos"
    for s in range(2):
        G_full = iw_of_poles(*P_full[s], beta, 256)
        np.testing.assert_allclose(sol.G_iw[s], G_full, rtol=0, atol=1e-6)
    assert sol.double_occupancy == pytest.approx(st_full["double_occupancy"], abs=1e-6)
    np.testing.assert_allclose(sol.G_tau[:, 0] + sol.G_tau[:, -1], -1.0, rtol=0, atol=1e-10)


# -- 2. FTLM: honest error bars, exact sum rule ----------------------------------------------
def test_ftlm_error_bar_is_honest():
    """Force FTLM on every sector of k = 5 at beta = 1 (dim_fallback = 8): the errors
    against complete diagonalisation, in units of the jackknife bar, over 33 tau points x
    2 spins x 6 AIMs, are distributed as a standard error should be."""
    z = []
    for seed in range(6):
        p = random_aim(5, 1.0, seed)
        P_full, _ = ed_poles(p, method="full")
        P, st = ed_poles(p, method="lanczos", dim_full=8, dim_fallback=8, n_states_max=4,
                         seed=seed)
        f = st["ftlm"]
        assert f["weight"] > 0.9  # FTLM carries the thermal weight here
        tau, bar = np.array(f["tau"]), np.array(f["error_tau"])
        for s in range(2):
            G, G_ex = tau_of_poles(*P[s], 1.0, tau), tau_of_poles(*P_full[s], 1.0, tau)
            assert G[0] + G[-1] == pytest.approx(-1.0, abs=1e-10)  # exact per random vector
            assert np.all(G <= 0)
            z.append((G - G_ex)[1:-1] / bar[s, 1:-1])
    z = np.concatenate(z)
    # a bar that is too small (or too large by 2x) fails these
    assert 0.5 < np.sqrt(np.mean(z**2)) < 1.5
    assert np.mean(np.abs(z) < 2) > 0.9


def test_ftlm_error_bar_shrinks_with_more_random_vectors():
    p = random_aim(5, 1.0, seed=3)
    kw = dict(method="lanczos", dim_full=8, dim_fallback=8, n_states_max=4)
    e16 = ed_poles(p, ftlm_random=16, **kw)[1]["ftlm"]["error_G_tau"]
    e64 = ed_poles(p, ftlm_random=64, **kw)[1]["ftlm"]["error_G_tau"]
    assert 0.3 < e64 / e16 < 0.75  # 1/sqrt(4) = 0.5 up to the scatter of the estimate


# -- 3. the 'auto' reference ------------------------------------------------------------------
def test_auto_reference_converges_and_reports_its_error():
    beta, n_iw = 10.0, 512
    p = AIMParams(U=2.0, mu=1.0, beta=beta, Delta_iw=bethe_delta(beta, n_iw))
    sol = solve_ed(p, n_iw=n_iw, n_tau=401, n_l=30)  # n_bath='auto' is the default
    ref = sol.diagnostics["reference"]
    assert ref["kind"] == "auto" and ref["converged"]
    assert ref["error_estimate"] <= AUTO_TOL and ref["n_bath"] == sol.diagnostics["n_bath"]
    assert [h["n_bath"] for h in ref["history"]] == list(range(3, ref["n_bath"] + 1))
    # the estimate is honest: a larger bath differs by less than it
    big = solve_ed(p, n_iw=n_iw, n_tau=401, n_l=30, n_bath=ref["n_bath"] + 1)
    assert np.sqrt(np.mean((big.G_tau - sol.G_tau) ** 2)) <= ref["error_estimate"]


def test_auto_reference_of_a_discrete_bath_is_that_bath():
    p = random_aim(4, 20.0, seed=1)
    a = solve_ed(p, n_iw=128, n_tau=101, n_l=20)
    b = solve_ed(p, n_iw=128, n_tau=101, n_l=20, n_bath=None)
    np.testing.assert_array_equal(a.G_tau, b.G_tau)
    assert a.diagnostics["reference"]["kind"] == "discrete bath as given"
    assert a.diagnostics["reference"]["error_estimate"] == RESOLUTION


def test_auto_reference_tolerance_is_an_option():
    beta, n_iw = 10.0, 256
    p = AIMParams(U=2.0, mu=1.0, beta=beta, Delta_iw=bethe_delta(beta, n_iw))
    loose = solve_ed(p, n_iw=n_iw, n_tau=201, n_l=20, auto_tol=1e-2).diagnostics["reference"]
    tight = solve_ed(p, n_iw=n_iw, n_tau=201, n_l=20, auto_tol=1e-6).diagnostics["reference"]
    assert loose["n_bath"] < tight["n_bath"]
    assert loose["error_estimate"] <= 1e-2 and tight["error_estimate"] <= 1e-6


# -- 4. k = 8 everywhere: no error, G(tau) <= 0, sum rule -------------------------------------
BETAS = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0)
US = (0.0, 1.0, 4.0, 10.0)


def grid_aim(beta, U, doped, polarised):
    """An 8-site bath discretising the semicircle; half filling or n ~ 0.7; optionally a
    Zeeman-split level and a spin-dependent bath."""
    x = np.cos(np.pi * (np.arange(8) + 0.5) / 8)  # Chebyshev nodes: denser at the band edges
    eps = np.sort(x)
    V = np.sqrt((1 - eps**2) / np.sum(1 - eps**2)) * 0.5  # sum V^2 = t^2 = 1/4
    mu = (-0.23 + 0.35 * U) if doped else U / 2
    if polarised:
        return AIMParams(U=U, mu=mu + np.array([0.2, -0.2]), beta=beta,
                         eps_k=np.stack([eps, 0.9 * eps]), V_k=np.stack([V, 1.1 * V]))
    return AIMParams(U=U, mu=mu, beta=beta, eps_k=eps, V_k=V)


def _check_valid(sol):
    np.testing.assert_allclose(sol.G_tau[:, 0] + sol.G_tau[:, -1], -1.0, rtol=0, atol=1e-8)
    assert np.all(sol.G_tau <= 0.0)
    assert np.all(np.isfinite(sol.G_iw))


@pytest.mark.parametrize("beta, U, doped, polarised", [
    (200.0, 4.0, False, False), (20.0, 1.0, True, True), (100.0, 10.0, False, True),
])
def test_k8_grid_fast_part(beta, U, doped, polarised):
    _check_valid(solve_ed(grid_aim(beta, U, doped, polarised), n_iw=256, n_tau=401, n_l=30,
                          n_bath=None))


@pytest.mark.slow
@pytest.mark.parametrize("polarised", [False, True])
@pytest.mark.parametrize("doped", [False, True])
@pytest.mark.parametrize("U", US)
@pytest.mark.parametrize("beta", BETAS)
def test_k8_grid(beta, U, doped, polarised):
    _check_valid(solve_ed(grid_aim(beta, U, doped, polarised), n_iw=256, n_tau=401, n_l=30,
                          n_bath=None))


# -- 5. the 'auto' reference in DMFT ----------------------------------------------------------
@pytest.mark.slow
def test_auto_reference_in_bethe_dmft_matches_k8():
    """Bethe DMFT at beta = 50, U = 2 (half filling, metallic start): the 'auto' reference
    and ED with 8 bath sites give Z0 within 0.002 (the issue's bound; the auto estimate is
    <= 1e-4 in G(tau), which moves Z0 by far less)."""
    from triqs_mlsolver.dmft import bethe_dmft

    kw = dict(n_iw=1025, n_tau=2001, tol=1e-5, max_iter=60, mixing=0.7)
    r8 = bethe_dmft("ed", 2.0, 50.0, solver_options={"n_bath": 8}, **kw)
    ra = bethe_dmft("ed", 2.0, 50.0, solver_options={"n_bath": "auto"}, **kw)
    assert r8.converged and ra.converged
    ref = ra.solution.diagnostics["reference"]
    assert ref["converged"] and ref["error_estimate"] <= 1e-4
    assert abs(ra.Z[0] - r8.Z[0]) < 0.002
