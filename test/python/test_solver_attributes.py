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

The static results of triqs_cthyb are compared with numbers computed here as well:
``Delta_infty`` with the level ``-mu`` put into ``G0_iw``; ``h_loc`` through its matrix in the
Fock space of the two spin orbitals (built here with the Jordan-Wigner signs) against
``U n_up n_dn - mu (n_up + n_dn)``; the density matrix against ``n_up``, ``n_dn`` and
``<n_up n_dn>`` of the solution and, at ``U = 0`` in a Zeeman field, against the exact
occupations of the one-body problem.  The HDF5 dump is checked for triqs_cthyb's keys (its
``h5_write`` of ``solver_core``) and, with real TRIQS (``-m triqs``), against a real
triqs_cthyb dump.
"""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from helpers import run_in

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
    import json
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
    out['Delta_infty'] = np.array([m[0, 0] for m in S.Delta_infty])
    out['diagnostics'] = np.array([S.average_sign, S.average_order, S.auto_corr_time,
                                   S.solve_status])
    np.savez('out.npz', **out)
    with open('static.json', 'w') as f:
        json.dump({{'h_loc': [[[[bool(dag), [str(i[0]), int(i[1])]] for dag, i in m],
                               complex(coef).real] for m, coef in S.h_loc],
                   'h_loc_text': str(S.h_loc),
                   'solve_parameters': sorted(S.solve_parameters),
                   'same_dict': S.solve_parameters is S.last_solve_parameters}}, f)
"""



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


# -- the static results: Delta_infty, h_loc, the density matrix -----------------------------
#: triqs_cthyb 3.2's h5_write of solver_core (c++/triqs_cthyb/solver_core.hpp).
CTHYB_KEYS = {"container_set", "constr_parameters", "solve_parameters", "G0_iw", "Delta_tau",
              "h_diag", "h_loc", "density_matrix", "average_sign", "average_order",
              "auto_corr_time", "solve_status", "Delta_infty_vec"}


def fock_matrix(terms, fops):
    """Matrix of ``sum coef * monomial`` on the Fock states of ``fops`` (bit k = fops[k])."""
    dim = 2 ** len(fops)
    H = np.zeros((dim, dim))
    for monomial, coef in terms:
        for state in range(dim):
            s, sign = state, 1.0
            for dag, (block, index) in reversed(monomial):
                k = fops.index((block, index))
                occupied = (s >> k) & 1
                if occupied == dag:  # c_dag on an occupied or c on an empty mode
                    sign = 0.0
                    break
                sign *= (-1) ** bin(s & ((1 << k) - 1)).count("1")
                s ^= 1 << k
            if sign:
                H[s, state] += coef * sign
    return H


@pytest.mark.parametrize("solver", CASES)
def test_delta_infty_is_the_level_of_G0(solved, solver):
    d, _ = solved[solver]
    mu = CASES[solver][2]
    # the level is the constant of a tail fit of iw - G0^-1 (order 4, n_iw = 128): its error is
    # ~ |c_5| / w_max^5 < 1e-9 for this bath
    np.testing.assert_allclose(d["Delta_infty"], [-mu, -mu], rtol=0, atol=1e-9)


@pytest.mark.parametrize("solver", CASES)
def test_h_loc_is_h_int_plus_the_level(solved, solver):
    _, where = solved[solver]
    U, mu = CASES[solver][1], CASES[solver][2]
    static = json.loads((where / "static.json").read_text())
    terms = [([(dag, (b, i)) for dag, (b, i) in m], coef) for m, coef in static["h_loc"]]
    fops = [("up", 0), ("down", 0)]
    H = fock_matrix(terms, fops)
    # |0>, |up>, |dn>, |up dn>: 0, -mu, -mu, U - 2 mu (to the accuracy of the level)
    np.testing.assert_allclose(H, np.diag([0.0, -mu, -mu, U - 2 * mu]), rtol=0, atol=1e-9)
    assert static["same_dict"] and {"n_cycles", "length_cycle"} <= set(static["solve_parameters"])


@pytest.mark.parametrize("solver", CASES)
def test_monte_carlo_diagnostics_are_not_applicable(solved, solver):
    d, _ = solved[solver]
    sign, order, corr, status = d["diagnostics"]
    assert sign == 1.0 and np.isnan(order) and np.isnan(corr) and status == 0


@pytest.mark.parametrize("solver", CASES)
def test_archive_has_cthybs_keys_and_reads_back(solved, solver):
    import h5py
    from triqs_mlsolver.gf import HDFArchive

    d, where = solved[solver]
    with h5py.File(where / "solver.h5", "r") as f:
        keys = set(f["S"])
        assert f["S"]["average_order"][()] != f["S"]["average_order"][()]  # NaN stored
    light_atom_diag = importlib.util.find_spec("triqs_mlsolver.light.atom_diag") is not None
    # h_diag: the AtomDiag, stored with real TRIQS only (rebuilt from h_loc on reading)
    expected = CTHYB_KEYS - {"h_diag"} - (set() if light_atom_diag else {"density_matrix"})
    assert expected <= keys, expected - keys
    with HDFArchive(where / "solver.h5", "r") as ar:
        back = ar["S"]
    static = json.loads((where / "static.json").read_text())
    assert str(back.h_loc) == static["h_loc_text"]
    np.testing.assert_array_equal([m[0, 0] for m in back.Delta_infty], d["Delta_infty"])
    assert np.isnan(back.average_order) and back.solve_status == 0


# -- the density matrix ----------------------------------------------------------------------
class ShuffledAtomDiag:
    """An AtomDiag-like object of U n_up n_dn with an unusual layout: operators in the order
    (down, up), subspaces listed from the doubly occupied one down, and the one-particle states
    in one 2-dim subspace whose eigenbasis is rotated (degenerate levels: any basis is one)."""

    fops = [("down", 0), ("up", 0)]
    n_subspaces = 3
    c, s = np.cos(0.3), np.sin(0.3)
    fock_states = [[3], [2, 1], [0]]  # bit 0 = down, bit 1 = up
    unitary_matrices = [np.eye(1), np.array([[c, -s], [s, c]]), np.eye(1)]


def test_density_matrix_is_projected_on_any_eigenbasis():
    from triqs_mlsolver.solvers.base import density_matrix_in_eigenbasis, occupation_probabilities

    n_up, n_dn, d = 0.6, 0.45, 0.2
    p = occupation_probabilities([n_up, n_dn], d)
    np.testing.assert_allclose(p, [[1 - n_up - n_dn + d, n_dn - d], [n_up - d, d]], atol=1e-15)
    rho = density_matrix_in_eigenbasis(p, ShuffledAtomDiag(), ("up", "down"))
    U = ShuffledAtomDiag.unitary_matrices[1]
    # Fock states 2 = |up> (prob n_up - d), 1 = |dn> (prob n_dn - d): rho = U^T diag(p) U
    np.testing.assert_allclose(rho[0], [[d]], atol=1e-15)
    np.testing.assert_allclose(rho[1], U.T @ np.diag([n_up - d, n_dn - d]) @ U, atol=1e-15)
    np.testing.assert_allclose(rho[2], [[1 - n_up - n_dn + d]], atol=1e-15)
    assert sum(np.trace(r) for r in rho) == pytest.approx(1.0, abs=1e-15)
    # a d outside [max(0, n_up + n_dn - 1), min(n_up, n_dn)] is clipped: still probabilities
    for bad in (-0.01, 0.5):
        q = occupation_probabilities([n_up, n_dn], bad)
        assert np.all(q >= 0) and q.sum() == pytest.approx(1.0, abs=1e-15)


def test_without_an_atom_diag_the_error_names_it(monkeypatch, tmp_path):
    """No light triqs.atom_diag: h_loc_diagonalization and density_matrix say what is missing
    when read; the rest works, and the solver is still stored (without density_matrix)."""
    from triqs_mlsolver.gf import HDFArchive, SemiCircular, inverse, iOmega_n
    from triqs_mlsolver.operators import n
    from triqs_mlsolver.solvers import IPTSolver

    monkeypatch.setitem(sys.modules, "triqs_mlsolver.light.atom_diag", None)
    S = IPTSolver(beta=BETA, gf_struct=[("up", 1), ("down", 1)], n_iw=32, n_tau=129, n_l=8)
    for _, g0 in S.G0_iw:
        g0 << inverse(iOmega_n + 1.0 - 0.25 * SemiCircular(1.0))
    S.solve(h_int=2.0 * n("up", 0) * n("down", 0))
    for attr in ("h_loc_diagonalization", "density_matrix"):
        with pytest.raises(ImportError, match="triqs.atom_diag.AtomDiag.*install TRIQS"):
            getattr(S, attr)
    np.testing.assert_allclose([m[0, 0] for m in S.Delta_infty], [-1.0, -1.0], atol=1e-9)
    assert "density_matrix" not in S.__reduce_to_dict__()
    with HDFArchive(tmp_path / "s.h5", "w") as ar:
        ar["S"] = S
    with HDFArchive(tmp_path / "s.h5", "r") as ar:
        assert np.array_equal(ar["S"].G_iw["up"].data, S.G_iw["up"].data)


STATIC_SCRIPT = """\
    # Static observables of an impurity in a magnetic field, from its density matrix
    import json
    import sys
    from triqs.gf import *
    from triqs.operators import *
    from triqs.atom_diag import trace_rho_op
    from triqs_cthyb import Solver

    U, h = float(sys.argv[1]), float(sys.argv[2])
    e_f, beta = -U / 2, 10.0
    eps, V = [-0.7, 0.1, 0.9], [0.5, 0.3, 0.4]

    S = Solver(beta=beta, gf_struct=[('up', 1), ('down', 1)], n_iw=128, n_tau=1001)
    for spin, sign in (('up', +1), ('down', -1)):
        delta = S.G0_iw[spin].copy()
        delta.zero()
        for e, v in zip(eps, V):
            delta << delta + v**2 * inverse(iOmega_n - e)
        S.G0_iw[spin] << inverse(iOmega_n - e_f + sign * h / 2 - delta)

    S.solve(h_int=U * n('up', 0) * n('down', 0), n_cycles=200000, length_cycle=100,
            measure_density_matrix=True, use_norm_as_weight=True)

    rho = S.density_matrix
    h_loc_diag = S.h_loc_diagonalization
    json.dump({'n_up': trace_rho_op(rho, n('up', 0), h_loc_diag).real,
               'n_dn': trace_rho_op(rho, n('down', 0), h_loc_diag).real,
               'd': trace_rho_op(rho, n('up', 0) * n('down', 0), h_loc_diag).real,
               'trace': sum(float(m.trace().real) for m in rho),
               'density': [float(x) for x in S.density],
               'double_occupancy': S.double_occupancy}, open('static.json', 'w'))
    """


@pytest.mark.parametrize("solver, U", [("hubbard_i", 0.0), ("ed", 4.0)])
def test_static_script_with_a_field(tmp_path, solver, U):
    """cthyb's doc/guide/static.py pattern: measure_density_matrix, trace_rho_op, Zeeman field.

    U = 0 (Hubbard-I is exact there): the occupations of the one-body problem, d = n_up n_dn.
    U = 4 (ED on the exact 3-site bath): the traces are the solver's own n_s and <n_up n_dn>,
    and the field h > 0 (favouring up) polarises the impurity."""
    pytest.importorskip("triqs_mlsolver.light.atom_diag")
    h = 0.3
    (tmp_path / "static.py").write_text(textwrap.dedent(STATIC_SCRIPT))
    opts = ["--n-bath", "3"] if solver == "ed" else []
    assert run_in(tmp_path, "--solver", solver, *opts, tmp_path / "static.py", U, h) == 0
    got = json.loads((tmp_path / "static.json").read_text())
    assert got["trace"] == pytest.approx(1.0, abs=1e-12)
    if U == 0:
        n_exact = []
        for sign in (+1, -1):
            w_j, E_j = impurity_poles(0.0 + sign * h / 2, np.array([-0.7, 0.1, 0.9]),
                                      np.array([0.5, 0.3, 0.4]))
            n_exact.append(float((w_j / (1 + np.exp(BETA * E_j))).sum()))
        np.testing.assert_allclose([got["n_up"], got["n_dn"]], n_exact, rtol=0, atol=1e-10)
        assert got["d"] == pytest.approx(n_exact[0] * n_exact[1], abs=1e-10)
    else:
        np.testing.assert_allclose([got["n_up"], got["n_dn"]], got["density"], rtol=0,
                                   atol=1e-12)
        assert got["d"] == pytest.approx(got["double_occupancy"], abs=1e-12)
        assert got["n_up"] > got["n_dn"] + 0.01 and 0 < got["d"] < min(got["n_up"], got["n_dn"])


# -- real TRIQS: ar['solver'] = S with real h5, and real triqs_cthyb's layout ----------------
HAVE_TRIQS = (importlib.util.find_spec("triqs") is not None
              and importlib.util.find_spec("h5") is not None)

REAL_TRIQS_SCRIPT = """\
    import importlib.util, json, sys, warnings
    import h5py
    import numpy as np
    warnings.simplefilter("ignore")
    from h5 import HDFArchive
    from triqs.gf import SemiCircular, inverse, iOmega_n
    from triqs.operators import n
    from triqs_mlsolver.cli.run import ServedTriqs

    def fill_and_solve(Solver):
        S = Solver(beta=10.0, gf_struct=[('up', 1), ('down', 1)], n_iw=64, n_tau=257, n_l=20)
        for _, g0 in S.G0_iw:
            g0 << inverse(iOmega_n + 1.0 - 0.25 * SemiCircular(1.0))
        S.solve(h_int=2.0 * n('up', 0) * n('down', 0), n_cycles=2000, length_cycle=50,
                n_warmup_cycles=200, measure_density_matrix=True, use_norm_as_weight=True)
        return S

    def layout(path):
        with h5py.File(path, 'r') as f:
            g = f['S']
            return {k: ('group' if isinstance(g[k], h5py.Group) else g[k].dtype.kind)
                    for k in g}

    with ServedTriqs('ipt', light=False):
        from triqs_cthyb import Solver
        S = fill_and_solve(Solver)
    from triqs.atom_diag import AtomDiag, trace_rho_op
    assert isinstance(S.h_loc_diagonalization, type(AtomDiag(S.h_loc, S.fundamental_operators)))
    d = trace_rho_op(S.density_matrix, n('up', 0) * n('down', 0), S.h_loc_diagonalization)
    assert abs(d - S.double_occupancy) < 1e-12, (d, S.double_occupancy)
    with HDFArchive('ours.h5', 'w') as ar:
        ar['S'] = S
    with HDFArchive('ours.h5', 'r') as ar:
        back = ar['S']
    assert type(back).__name__ == 'IPTSolver'
    assert np.array_equal(back.G_iw['up'].data, S.G_iw['up'].data)
    assert back.h_loc == S.h_loc
    out = {'ours': layout('ours.h5')}
    if importlib.util.find_spec('triqs_cthyb') is not None:
        import triqs_cthyb
        C = fill_and_solve(triqs_cthyb.Solver)
        with HDFArchive('cthyb.h5', 'w') as ar:
            ar['S'] = C
        out['cthyb'] = layout('cthyb.h5')
    json.dump(out, open('layouts.json', 'w'))
    print('ok')
    """


@pytest.mark.triqs
@pytest.mark.skipif(not HAVE_TRIQS, reason="real TRIQS (triqs + h5) not importable")
def test_real_h5_round_trip_and_cthyb_layout(tmp_path):
    """With real TRIQS: ``ar['S'] = S`` writes (the Format is registered) and reads back; where
    triqs_cthyb is installed, every key of its dump is in ours, as a group or a dataset of
    the same kind."""
    (tmp_path / "real.py").write_text(textwrap.dedent(REAL_TRIQS_SCRIPT))
    env = dict(os.environ, TRIQS_MLSOLVER_BACKEND="auto")
    r = subprocess.run([sys.executable, "real.py"], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr
    layouts = json.loads((tmp_path / "layouts.json").read_text())
    assert CTHYB_KEYS <= set(layouts["ours"]), CTHYB_KEYS - set(layouts["ours"])
    if "cthyb" not in layouts:
        pytest.skip("triqs_cthyb not importable: layout compared with its h5_write only")
    for key, kind in layouts["cthyb"].items():
        assert key in layouts["ours"], key
        # numbers: float and int kinds as cthyb writes them (average_sign f, solve_status i)
        assert layouts["ours"][key] == kind, (key, layouts["ours"][key], kind)
