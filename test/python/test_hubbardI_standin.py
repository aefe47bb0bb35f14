# SPDX-License-Identifier: Apache-2.0
"""The Hubbard-I stand-in for ``triqs_hubbardI.Solver`` (``triqs-mlsolver run --serve-hubbardI``).

triqs_hubbardI 3.2 returns the results of the *atom* ``h_loc = h_int + eal n`` with the level
``eal`` read from ``G0_iw``.  For ``h_int = U n_up n_dn`` (plus one-body terms ``s_s n_s``)
they are known in closed form, computed here from the four atomic states and their
Boltzmann weights, independently of the package:

* ``G_s(z) = (1 - n_-s)/(z - e_s) + n_-s/(z - e_s - U)``, ``e_s = eal_s + s_s``;
* ``G_w = G(w + i idelta)`` (triqs.atom_diag's broadening) and triqs_hubbardI's
  ``Sigma_w = (w - eal) - 1/G_w``;
* ``Sigma_iw = (i w - eal) - 1/G(i w)``;
* ``G(tau) = -sum_p W_p e^{-E_p tau}/(1 + e^{-beta E_p})``.

The scripts below are written the way triqs_hubbardI's own tests are (tiny meshes:
``n_iw=5``, ``n_tau=2``, ``n_w=2``; ``Wilson`` bath; mesh sizes passed to ``solve()``).
Tolerances: the closed forms are evaluated with the same formula up to rounding (1e-12);
``Wilson(D)`` is particle-hole symmetric, so the level read from 5 frequencies is exact
(``Re Delta = 0``) up to rounding.
"""

import inspect
import textwrap
import warnings

import numpy as np
import pytest
from helpers import run_in
from scipy.integrate import trapezoid
from triqs_mlsolver.cli.run import HubbardIInterface, IgnoredParameterWarning, ServedTriqs
from triqs_mlsolver.errors import UnknownParameterError
from triqs_mlsolver.solvers.cthyb_keywords import (
    HUBBARDI_CONSTRUCTOR_KEYWORDS,
    HUBBARDI_SOLVE_KEYWORDS,
    split_cthyb_keywords,
)

STRUCT = [("up", 1), ("down", 1)]


def atom(U, e, beta):
    """``(n_s, d)`` and the poles/weights of ``G_s`` of the atom with levels ``e_s``."""
    E = np.array([0.0, e[0], e[1], e[0] + e[1] + U])
    w = np.exp(-beta * (E - E.min()))
    p = w / w.sum()
    n = np.array([p[1] + p[3], p[2] + p[3]])
    poles = [(np.array([e[s], e[s] + U]), np.array([1 - n[1 - s], n[1 - s]])) for s in range(2)]
    return n, p[3], poles


def g_of(poles, z):
    E, W = poles
    return (W[None, :] / (np.asarray(z)[:, None] - E[None, :])).sum(axis=1)


def matsubara(beta, n_iw):
    return 1j * np.pi * (2 * np.arange(-n_iw, n_iw) + 1) / beta



def hubbardI_solver(beta, U, levels, n_iw=5, n_tau=30, n_w=2, h_int_extra=0.0, **kw):
    """A served triqs_hubbardI.Solver solved on a Wilson bath with atomic levels ``levels``."""
    with ServedTriqs("ipt", serve_hubbardI=True):
        from triqs.gf import Wilson, inverse, iOmega_n
        from triqs.operators import n
        from triqs_hubbardI import Solver

        S = Solver(beta=beta, gf_struct=STRUCT, n_iw=n_iw, n_tau=n_tau, n_w=n_w, **kw)
        for (_, g0), e in zip(S.G0_iw, levels):
            g0 << inverse(iOmega_n - e - 0.2**2 * Wilson(1.0))
        h_int = U * n("up", 0) * n("down", 0) + h_int_extra * n("up", 0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", IgnoredParameterWarning)
            S.solve(h_int=h_int, calc_gtau=True, calc_gw=True, calc_gl=True, calc_dm=True)
    return S


@pytest.mark.parametrize("n_iw", [5, 64])
def test_matsubara_results_are_the_atomic_ones(n_iw):
    beta, U, levels, extra = 50.0, 4.0, (-1.7, -2.2), 0.3  # spin-split, off half filling
    S = hubbardI_solver(beta, U, levels, n_iw=n_iw, h_int_extra=extra)
    e = np.array(levels) + np.array([extra, 0.0])  # h_int's one-body term acts on up only
    n, d, poles = atom(U, e, beta)
    iw = matsubara(beta, n_iw)
    for s, name in enumerate(("up", "down")):
        G = g_of(poles[s], iw)
        np.testing.assert_allclose(S.G_iw[name].data[:, 0, 0], G, rtol=0, atol=1e-12)
        np.testing.assert_allclose(S.eal[name], [[levels[s]]], rtol=0, atol=1e-12)
        # triqs_hubbardI: Sigma = inverse(iw - eal) ... = (iw - eal) - 1/G, one-body term included
        np.testing.assert_allclose(S.Sigma_iw[name].data[:, 0, 0], iw - levels[s] - 1 / G,
                                   rtol=0, atol=1e-10)
        tau = np.linspace(0, beta, 30)
        E, W = poles[s]
        G_tau = -(W * np.exp(-np.outer(tau, E)) / (1 + np.exp(-beta * E))).sum(axis=1)
        np.testing.assert_allclose(S.G_tau[name].data[:, 0, 0].real, G_tau, rtol=0, atol=1e-12)
    np.testing.assert_allclose(S.density, n, rtol=0, atol=1e-14)
    assert S.double_occupancy == pytest.approx(d, abs=1e-14)


def test_small_n_iw_is_the_start_of_a_large_one():
    """G_iw on n_iw = 5 is the first 5 (+/-) frequencies of the n_iw = 200 solve."""
    beta, U, levels = 50.0, 4.0, (-1.3, -1.3)
    small = hubbardI_solver(beta, U, levels, n_iw=5)
    big = hubbardI_solver(beta, U, levels, n_iw=200)
    for key in ("G_iw", "Sigma_iw"):
        got = getattr(small, key)["up"].data[:, 0, 0]
        ref = getattr(big, key)["up"].data[200 - 5:200 + 5, 0, 0]
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)


def test_real_frequency_results_have_the_triqs_broadening():
    beta, U, levels, idelta = 20.0, 3.0, (-1.0, -1.4), 0.05
    S = hubbardI_solver(beta, U, levels, n_w=401, w_min=-6.0, w_max=6.0, idelta=idelta)
    w = np.linspace(-6.0, 6.0, 401)  # both ends on the mesh, as TRIQS's MeshReFreq
    np.testing.assert_allclose(S.G_w.mesh.values(), w, rtol=0, atol=1e-14)
    _, _, poles = atom(U, np.array(levels), beta)
    for s, name in enumerate(("up", "down")):
        G = g_of(poles[s], w + 1j * idelta)
        np.testing.assert_allclose(S.G_w[name].data[:, 0, 0], G, rtol=0, atol=1e-12)
        np.testing.assert_allclose(S.Sigma_w[name].data[:, 0, 0], w - levels[s] - 1 / G,
                                   rtol=0, atol=1e-9)
        # the spectral function is positive and integrates to ~1 (Lorentzians cut at +-6)
        A = -S.G_w[name].data[:, 0, 0].imag / np.pi
        assert np.all(A > 0) and abs(trapezoid(A, w) - 1) < 0.01  # scipy: also numpy 1.x
    assert np.all(S.G0_w["up"].data == 0)  # allocated, never filled (as triqs_hubbardI)


def test_density_matrix_and_atom_diag_are_the_atoms():
    pytest.importorskip("triqs_mlsolver.light.atom_diag")
    beta, U, levels = 10.0, 2.0, (-0.7, -1.1)
    S = hubbardI_solver(beta, U, levels)
    n, d, _ = atom(U, np.array(levels), beta)
    with ServedTriqs("ipt"):
        from triqs.atom_diag import atomic_density_matrix, trace_rho_op
        from triqs.operators import n as n_op

        ad = S.ad
        assert ad is S.h_loc_diagonalization
        rho = S.dm
        assert sum(np.trace(r) for r in rho) == pytest.approx(1.0, abs=1e-14)
        for b, ref in (("up", n[0]), ("down", n[1])):
            assert trace_rho_op(rho, n_op(b, 0), ad) == pytest.approx(ref, abs=1e-13)
        assert trace_rho_op(rho, n_op("up", 0) * n_op("down", 0), ad) == pytest.approx(d,
                                                                                     abs=1e-13)
        # triqs_hubbardI's dm is atomic_density_matrix(ad, beta)
        for r, a in zip(rho, atomic_density_matrix(ad, beta)):
            np.testing.assert_allclose(r, a, rtol=0, atol=1e-13)


HUB_SCRIPT = """\
    # A triqs_hubbardI script: the atom in a Wilson bath on tiny meshes
    import numpy as np
    from triqs_hubbardI import *
    from triqs.gf import *
    from triqs.operators import *

    D, V, U = 1.0, 0.2, 4.0
    e_f, beta = -U/2.0, 50
    S = Solver(beta = beta, gf_struct = [ ('up',1), ('down',1) ], n_iw=5, n_tau=2, n_w=20,
               w_min=-5, w_max=5, idelta=0.1)
    for name, g0 in S.G0_iw: g0 << inverse(iOmega_n - e_f - V**2 * Wilson(D))
    S.solve(h_int = U * n('up',0) * n('down',0), calc_gw=True, calc_gtau=True, n_iw=5, n_w=20)
    np.savez('hub.npz', G_w=S.G_w['up'].data[:, 0, 0], G_tau=S.G_tau['up'].data[:, 0, 0],
             G_iw=S.G_iw['up'].data[:, 0, 0])
    """


def test_hubbardI_script_with_calc_gw_runs(tmp_path):
    (tmp_path / "hub.py").write_text(textwrap.dedent(HUB_SCRIPT))
    assert run_in(tmp_path, "--serve-hubbardI", tmp_path / "hub.py") == 0
    out = np.load(tmp_path / "hub.npz")
    U, beta = 4.0, 50.0
    _, _, poles = atom(U, np.array([-2.0, -2.0]), beta)
    w = np.linspace(-5, 5, 20)
    np.testing.assert_allclose(out["G_w"], g_of(poles[0], w + 0.1j), rtol=0, atol=1e-12)
    np.testing.assert_allclose(out["G_iw"], g_of(poles[0], matsubara(beta, 5)), rtol=0,
                               atol=1e-12)
    np.testing.assert_allclose(out["G_tau"].real, [-0.5, -0.5], rtol=0, atol=1e-12)


def test_keywords_are_triqs_hubbardIs():
    """The constructor's signature is triqs_hubbardI's; solve() takes its keywords, the mesh
    sizes its tests pass to solve() (reported: no effect) and cthyb's; a misspelling is an
    error (triqs_hubbardI ignores it silently)."""
    sig = inspect.signature(HubbardIInterface.__init__).parameters
    assert list(sig)[1:] == ["beta", "gf_struct", "n_iw", "n_tau", "n_l",
                             *HUBBARDI_CONSTRUCTOR_KEYWORDS]
    assert {k: sig[k].default for k in HUBBARDI_CONSTRUCTOR_KEYWORDS} == \
        HUBBARDI_CONSTRUCTOR_KEYWORDS
    assert (sig["n_iw"].default, sig["n_tau"].default, sig["n_l"].default) == (1025, 10001, 30)
    S = hubbardI_solver(10.0, 2.0, (-1.0, -1.0), n_iw=16)
    with ServedTriqs("ipt"):
        from triqs.operators import n

        h = 2.0 * n("up", 0) * n("down", 0)
        with pytest.warns(IgnoredParameterWarning, match=r"\['n_iw', 'n_tau', 'n_w'\]"):
            S.solve(h_int=h, n_iw=20, n_tau=2, n_w=2)
        with pytest.raises(UnknownParameterError, match="calc_gww"):
            S.solve(h_int=h, calc_gww=True)
    assert set(HUBBARDI_SOLVE_KEYWORDS) <= set(S.last_solve_parameters)


def test_hubbardI_keywords_in_a_cthyb_stand_in():
    """What MLSolver (imported in place of triqs_hubbardI.Solver) does with them."""
    with pytest.warns(IgnoredParameterWarning, match="calc_dm"):
        own, foreign = split_cthyb_keywords(
            {"calc_gtau": True, "calc_gl": True, "calc_dm": True, "n_iw": 20, "n_w": 2,
             "fallback": "ed"}, {"fallback"}, "MLSolver", reported=None)
    assert own == {"fallback": "ed"} and sorted(foreign) == [
        "calc_dm", "calc_gl", "calc_gtau", "n_iw", "n_w"]
    with pytest.warns(IgnoredParameterWarning, match="calc_gw"):
        split_cthyb_keywords({"calc_gw": False}, (), "MLSolver")
    with pytest.raises(ValueError, match=r"calc_gw=True asks triqs_hubbardI"):
        split_cthyb_keywords({"calc_gw": True}, (), "MLSolver")
