# SPDX-License-Identifier: Apache-2.0
"""triqs_cthyb's result attributes filled by every solver served by ``triqs-mlsolver run``.

A TRIQS-style script (written below, run unmodified with ``--solver ...``) fills
``G0_iw`` with a discrete bath, solves, and saves ``Delta_tau``, ``G_iw``,
``G_iw_raw``, ``Sigma_iw``, ``Sigma_iw_raw``, ``G_tau`` and ``G_l``.  They are
compared with closed forms computed here, independently of the package:

* ``Delta(tau) = -sum_k V_k^2 e^{-eps_k tau} / (1 + e^{-beta eps_k})`` for every solver;
* at ``U = 0`` the impurity Green's function of the one-body Hamiltonian
  (``G(i w) = sum_j w_j / (i w - E_j)``, its ``G(tau)`` and a Gauss-Legendre
  quadrature of ``G_l``) for the solvers exact there (IPT, Hubbard-I, ED on its
  own bath size).

Tolerances: the tau-space results come from Matsubara sums on ``n_iw = 128``
frequencies; the error of such a sum truncated at ``n_iw`` with the moments
``c_1..c_3`` handled exactly is at most ``(2/beta) sum_{n >= n_iw} sum_j w_j |E_j|^3 /
w_n^4`` (:func:`truncation_bound`, ~1e-8 here).  The transforms also extend the sum with
the fitted higher moments, which lowers the error further (to ~1e-12, the rounding of
``i w - G0^-1`` at the largest frequencies), so this bound holds with a wide margin while
a wrong level, sign or tail (errors >= 1e-5 relative) fails it.
``|delta G_l| <= sqrt(2l+1) beta max |delta G(tau)|``.
"""

import os
import textwrap

import numpy as np
import pytest
from triqs_mlsolver.cli.main import main

BETA, N_IW, N_TAU, N_L = 10.0, 128, 1001, 30
#: (solver, extra run options, U, mu, bath energies, hoppings, exact at U = 0)
CASES = {
    "ipt": ([], 0.0, 0.0, (-0.6, 0.0, 0.6), (0.4, 0.3, 0.4), True),
    "hubbard_i": ([], 0.0, 0.3, (-0.7, 0.2, 0.9), (0.5, 0.3, 0.4), True),
    "nca": ([], 2.0, 1.0, (-0.6, 0.0, 0.6), (0.4, 0.3, 0.4), False),
    "ed": (["--n-bath", "3"], 0.0, 0.3, (-0.7, 0.2, 0.9), (0.5, 0.3, 0.4), True),
}
RESULTS = ("Delta_tau", "G_iw", "G_iw_raw", "Sigma_iw", "Sigma_iw_raw", "G_tau", "G_l")

SCRIPT = f"""\
    # A TRIQS script: an Anderson impurity with a discrete bath, solved once.
    import sys
    import numpy as np
    from triqs.gf import *
    from triqs.operators import *
    from h5 import HDFArchive
    from triqs_cthyb import Solver

    U, mu = float(sys.argv[1]), float(sys.argv[2])
    eps = [float(x) for x in sys.argv[3].split(',')]
    V = [float(x) for x in sys.argv[4].split(',')]

    S = Solver(beta={BETA}, gf_struct=[('up', 1), ('down', 1)], n_iw={N_IW}, n_tau={N_TAU},
               n_l={N_L})
    for name, g0 in S.G0_iw:
        delta = g0.copy()
        delta.zero()
        for e, v in zip(eps, V):
            delta << delta + v**2 * inverse(iOmega_n - e)
        g0 << inverse(iOmega_n + mu - delta)
    S.solve(h_int=U * n('up', 0) * n('down', 0), n_cycles=100000, length_cycle=50)

    with HDFArchive('solver.h5', 'w') as ar:
        ar['S'] = S
    out = {{key: np.stack([g.data[:, 0, 0] for _, g in getattr(S, key)])
            for key in {RESULTS!r}}}
    fit = S.solution.diagnostics.get('bath_fit')  # ED: the bath fitted to G0_iw, if any
    out['fit_error'] = max(fit['max_error']) if fit else 0.0
    np.savez('out.npz', **out)
"""


def run_in(folder, *argv):
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        return main(["-q", "run", *map(str, argv)])
    finally:
        os.chdir(cwd)


def tau_of_poles(w_j, E_j, tau):
    """``-sum_j w_j e^{-E_j tau} / (1 + e^{-beta E_j})`` (0 <= tau <= beta)."""
    return -(w_j * np.exp(-np.outer(tau, E_j)) / (1.0 + np.exp(-BETA * E_j))).sum(axis=1)


def truncation_bound(w_j, E_j):
    """Error bound of the Matsubara sum for ``sum_j w_j / (i w - E_j)`` in tau (see top)."""
    n = np.arange(N_IW, 10**6)
    w_n = np.pi * (2 * n + 1) / BETA
    return 2.0 / BETA * np.sum(np.abs(w_j * E_j**3).sum() / w_n**4)


def impurity_poles(mu, eps, V):
    """Poles ``E_j`` and weights ``w_j`` of the U = 0 impurity Green's function."""
    H = np.diag(np.r_[-mu, eps])
    H[0, 1:] = H[1:, 0] = V
    E, vec = np.linalg.eigh(H)
    return vec[0] ** 2, E


@pytest.fixture(scope="module")
def solved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("attrs")
    script = folder / "aim.py"
    script.write_text(textwrap.dedent(SCRIPT))
    out = {}
    for solver, (opts, U, mu, eps, V, _) in CASES.items():
        where = folder / solver
        where.mkdir()
        csv = [",".join(map(str, x)) for x in (eps, V)]
        assert run_in(where, "--solver", solver, *opts, script, U, mu, *csv) == 0, solver
        out[solver] = dict(np.load(where / "out.npz")), where
    return out


@pytest.mark.parametrize("solver", CASES)
def test_delta_tau_is_the_discrete_bath_hybridisation(solved, solver):
    d, _ = solved[solver]
    _, _, _, eps, V, _ = CASES[solver]
    V2, eps = np.array(V) ** 2, np.array(eps)
    exact = tau_of_poles(V2, eps, np.linspace(0, BETA, N_TAU))
    assert d["Delta_tau"].shape == (2, N_TAU)
    tol = truncation_bound(V2, eps)
    np.testing.assert_allclose(d["Delta_tau"], np.stack([exact, exact]), rtol=0, atol=tol)
    # the level mu is not in Delta: Delta(0+) + Delta(beta-) = -sum V^2 (a constant would
    # leave a delta function at tau = 0, i.e. a wrong jump)
    np.testing.assert_allclose(d["Delta_tau"][:, 0] + d["Delta_tau"][:, -1], -V2.sum(),
                               rtol=0, atol=2 * tol)


@pytest.mark.parametrize("solver", CASES)
def test_raw_results_are_the_results(solved, solver):
    d, _ = solved[solver]
    np.testing.assert_array_equal(d["G_iw_raw"], d["G_iw"])
    np.testing.assert_array_equal(d["Sigma_iw_raw"], d["Sigma_iw"])
    assert d["G_iw"].shape == (2, 2 * N_IW) and d["G_tau"].shape == (2, N_TAU)
    assert d["G_l"].shape == (2, N_L)


@pytest.mark.parametrize("solver", [s for s, case in CASES.items() if case[-1]])
def test_green_functions_at_U0_are_the_exact_ones(solved, solver):
    d, _ = solved[solver]
    _, _, mu, eps, V, _ = CASES[solver]
    w_j, E_j = impurity_poles(mu, np.array(eps), np.array(V))
    iw = 1j * np.pi * (2 * np.arange(-N_IW, N_IW) + 1) / BETA
    # ED sees the bath through a fit: |dG(iw)| <= |dDelta| / w_0^2, |dG(tau)| <= |dDelta| beta / 4
    fit = float(d["fit_error"])
    tol_iw = 1e-12 + fit * (BETA / np.pi) ** 2  # 1e-12: rounding of Dyson / Lehmann sums
    tol_tau = truncation_bound(w_j, E_j) + fit * BETA / 4
    G_iw = (w_j / (iw[:, None] - E_j)).sum(axis=1)
    np.testing.assert_allclose(d["G_iw"], np.stack([G_iw, G_iw]), rtol=0, atol=tol_iw)
    G_tau = tau_of_poles(w_j, E_j, np.linspace(0, BETA, N_TAU))
    np.testing.assert_allclose(d["G_tau"], np.stack([G_tau, G_tau]), rtol=0, atol=tol_tau)
    # G_l = sqrt(2l+1) int_0^beta P_l(2 tau/beta - 1) G(tau) dtau by Gauss-Legendre quadrature
    # (100 nodes: exact to rounding for this entire integrand)
    x, wq = np.polynomial.legendre.leggauss(100)
    l = np.arange(N_L)
    G_l = np.sqrt(2 * l + 1) * (BETA / 2) * ((wq * tau_of_poles(w_j, E_j, BETA * (x + 1) / 2))
                                             @ np.polynomial.legendre.legvander(x, N_L - 1))
    err_l = np.abs(d["G_l"] - G_l).max(axis=0)
    assert np.all(err_l <= np.sqrt(2 * l + 1) * BETA * tol_tau), err_l
    # Sigma = G0^-1 - G^-1 = 0 up to the bath fit (ED) and rounding (|G^-1| <= ~100 here)
    np.testing.assert_allclose(d["Sigma_iw"], 0, rtol=0, atol=fit + 1e-12)


@pytest.mark.parametrize("solver", ["ed", "nca"])
def test_results_round_trip_through_hdf5(solved, solver):
    from triqs_mlsolver.gf import HDFArchive

    d, where = solved[solver]
    with HDFArchive(where / "solver.h5", "r") as ar:
        back = ar["S"]
    for key in RESULTS:
        got = np.stack([g.data[:, 0, 0] for _, g in getattr(back, key)])
        np.testing.assert_array_equal(got, d[key], err_msg=key)


def test_archives_without_the_cthyb_results_still_read():
    """Layout version 1 as written before Delta_tau, G_iw_raw, Sigma_iw_raw were stored."""
    from triqs_mlsolver.solvers import IPTSolver

    S = IPTSolver(beta=BETA, gf_struct=[("up", 1), ("down", 1)], n_iw=16, n_tau=65, n_l=8)
    d = S.__reduce_to_dict__()
    for key in ("Delta_tau", "G_iw_raw", "Sigma_iw_raw"):
        del d[key]
    back = IPTSolver.__factory_from_dict__("S", d)
    assert back.Delta_tau["up"].data.shape == (65, 1, 1)


def test_served_hubbardI_raw_result_is_its_atomic_G(tmp_path):
    from triqs_mlsolver.cli.run import ServedTriqs

    with ServedTriqs("ipt", serve_hubbardI=True):
        from triqs.gf import SemiCircular, inverse, iOmega_n
        from triqs.operators import n
        from triqs_hubbardI import Solver

        S = Solver(beta=BETA, gf_struct=[("up", 1), ("down", 1)], n_iw=64, n_tau=257)
        for _, g0 in S.G0_iw:
            g0 << inverse(iOmega_n + 1.0 - 0.25 * SemiCircular(1.0))
        S.solve(h_int=2.0 * n("up", 0) * n("down", 0))
    iw = 1j * np.pi * (2 * np.arange(-64, 64) + 1) / BETA
    atomic = 0.5 / (iw - 1.0) + 0.5 / (iw + 1.0)  # U = 2 at half filling
    for name in ("up", "down"):
        np.testing.assert_array_equal(S.G_iw_raw[name].data, S.G_iw[name].data)
        np.testing.assert_allclose(S.G_iw[name].data[:, 0, 0], atomic, rtol=0, atol=1e-10)
