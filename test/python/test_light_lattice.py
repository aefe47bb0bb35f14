# SPDX-License-Identifier: Apache-2.0
"""Light ``triqs.lattice``, ``triqs.sumk`` and ``triqs.dos`` against independent numbers.

References: dispersions written out by hand, direct numpy k sums, the closed-form
square-lattice DOS (complete elliptic integral), exact moments of the cubic
dispersion, the 1/z expansion of G, the unfolding of the AB superlattice, matrix
inverses per k, and analytic Hilbert transforms.  Scripts written the way TRIQS
users write them run through ``triqs-mlsolver run``.  With real TRIQS importable, a
``triqs``-marked test compares the classes with TRIQS's own on the same inputs.
"""

import importlib.util
import os
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.special import ellipkm1
from triqs_mlsolver.gf import BlockGf, Gf, HDFArchive, MeshImFreq
from triqs_mlsolver.light import served_modules
from triqs_mlsolver.light.lattice import (
    DOS,
    BravaisLattice,
    BrillouinZone,
    DOSFromFunction,
    TBLattice,
    TBSuperLattice,
    TightBinding,
    dos,
    dos_from_file,
    dos_patch,
    energies_on_bz_path,
    hopping_stack,
)
from triqs_mlsolver.light.sumk import HilbertTransform, SumkDiscreteFromLattice, local_sum

ROOT = Path(__file__).resolve().parents[2]
HAVE_TRIQS = (importlib.util.find_spec("triqs") is not None
              and importlib.util.find_spec("h5") is not None)
#: Rounding floor of sums of O(1) terms in double precision (a few hundred ulps).
ROUND = 1e-13


def square(t=1.0, tp=0.0, **kw):
    hop = {(1, 0): [[-t]], (-1, 0): [[-t]], (0, 1): [[-t]], (0, -1): [[-t]]}
    if tp:
        hop.update({d: [[-tp]] for d in [(1, 1), (-1, -1), (1, -1), (-1, 1)]})
    return TBLattice(units=[(1, 0, 0), (0, 1, 0)], hoppings=hop, **kw)


def cubic(t=1.0):
    hop = {}
    for d in range(3):
        for s in (1, -1):
            disp = [0, 0, 0]
            disp[d] = s
            hop[tuple(disp)] = [[-t]]
    return TBLattice(units=np.eye(3), hoppings=hop)


def eps_square(k, t=1.0, tp=0.0):
    """The square-lattice dispersion written out, k in reciprocal-lattice units."""
    cx, cy = np.cos(2 * np.pi * k[..., 0]), np.cos(2 * np.pi * k[..., 1])
    return -2 * t * (cx + cy) - 4 * tp * cx * cy


def triqs_grid(n, dim):
    """The TRIQS grid written out: k_i = (m - n/2 + 1)/n, first component fastest."""
    line = [(m - n / 2 + 1) / n for m in range(n)]
    pts = [[line[i], line[j], line[l]][:dim] for l in range(n if dim > 2 else 1)
           for j in range(n if dim > 1 else 1) for i in range(n)]
    return np.array(pts)


def block_sigma(mesh, names=("up", "down"), n=1, value=None):
    """A BlockGf of n x n blocks, constant in frequency: ``value`` or ``value[block]``."""
    S = BlockGf(mesh=mesh, gf_struct=[(b, n) for b in names])
    if value is not None:
        for b, g in S:
            g.data[...] = value[b] if isinstance(value, dict) else value
    return S


@pytest.fixture(scope="module")
def mesh():
    return MeshImFreq(beta=10.0, S="Fermion", n_iw=64)


# -- geometry and dispersion ----------------------------------------------------------------
def test_square_lattice_dispersion_at_high_symmetry_points():
    t, tp = 0.7, 0.2
    H = square(t, tp)
    # Gamma, X, M: -4t - 4t', 4t', 4t - 4t' (exact sums of cosines of 0 and pi)
    pts = np.array([[0, 0, 0], [0.5, 0, 0], [0.5, 0.5, 0]])
    expected = [-4 * t - 4 * tp, 4 * tp, 4 * t - 4 * tp]
    np.testing.assert_allclose(H.dispersion(pts)[:, 0], expected, rtol=0, atol=ROUND)
    np.testing.assert_allclose(H.dispersion([0.5, 0.5])[0], expected[2], rtol=0, atol=ROUND)
    rng = np.random.default_rng(1)
    k = rng.random((200, 3))
    h = H.fourier(k)
    assert h.shape == (200, 1, 1)
    np.testing.assert_allclose(h[:, 0, 0], eps_square(k, t, tp), rtol=0, atol=ROUND)
    assert H.fourier(k[0]).shape == (1, 1)
    assert H.ndim == 2 and H.n_orbitals == 1 and H.orbital_names == [""]
    np.testing.assert_array_equal(H.units, np.eye(2))
    assert set(H.hoppings) == {(1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, -1), (1, -1),
                               (-1, 1)}


def test_bravais_lattice_and_brillouin_zone():
    bl = BravaisLattice(units=[(1, 1, 0), (-1, 1, 0)], orbital_positions=[(0, 0, 0), (0.5, 0.5)])
    assert bl.ndim == 2 and bl.n_orbitals == 2 and bl.orbital_names == ["", ""]
    np.testing.assert_array_equal(bl.units, [[1, 1, 0], [-1, 1, 0], [0, 0, 1]])
    np.testing.assert_array_equal(bl.orbital_positions[1], [0.5, 0.5, 0])
    np.testing.assert_allclose(bl.lattice_to_real_coordinates([2, 1]), [1, 3, 0], atol=0)
    bz = BrillouinZone(bl)
    # b_i . a_j = 2 pi delta_ij
    np.testing.assert_allclose(bz.units @ bl.units.T, 2 * np.pi * np.eye(3), atol=1e-14)
    assert bz.lattice == bl and bz.ndim == 2
    # only the leading ndim x ndim block of units counts (TRIQS 3.2)
    assert BravaisLattice([(2, 0, 5)]).units[0].tolist() == [2, 0, 0]
    assert BravaisLattice().ndim == 3
    with pytest.raises(ValueError, match="not independent"):
        BravaisLattice([(1, 0), (2, 0)])
    with pytest.raises(ValueError, match="orbital names"):
        BravaisLattice(np.eye(2), [(0, 0, 0)], ["a", "b"])


def test_cubic_dispersion_moments_are_exact_on_the_sum_grid():
    # <eps^p> over the zone: 0, 6t^2, 0, 90t^4 (sum over the terms of (cx+cy+cz)^p with
    # <cos^2> = 1/2, <cos^4> = 3/8).  An n-point rule is exact for harmonics below n,
    # eps^4 has harmonics up to 4 per direction, so n = 6 gives them to rounding.
    t = 0.5
    SK = SumkDiscreteFromLattice(lattice=cubic(t), n_points=6)
    e = SK.hopping[:, 0, 0]
    assert SK.n_kpts() == 216 and np.abs(e.imag).max() < ROUND
    moments = [np.sum(SK.bz_weights * e.real ** p) for p in range(1, 5)]
    np.testing.assert_allclose(moments, [0, 6 * t**2, 0, 90 * t**4], rtol=0, atol=ROUND)


def test_binned_cubic_dos_is_normalised_with_the_exact_moments():
    t, n_eps = 1.0, 600
    d = dos(cubic(t), n_kpts=24, n_eps=n_eps, name="sc")[0]
    de = d.eps[1] - d.eps[0]
    # the extreme grid energies are -+6t cos(pi/24) (grid (i + 1/2)/24), n_eps equal bins
    assert d.name == "sc" and abs(de - 12 * t * np.cos(np.pi / 24) / n_eps) < ROUND
    assert abs(d.eps[0] + 6 * t * np.cos(np.pi / 24) - de / 2) < ROUND
    assert abs(np.sum(d.rho) * de - 1) < ROUND
    # k-grid moments (i + 1/2)/24 are exact (harmonics < 24); binning moves each energy by
    # at most de/2, so |<c^p> - <eps^p>| <= p max|eps|^(p-1) de/2 (|eps| <= 6t).
    for p, exact in [(2, 6 * t**2), (4, 90 * t**4)]:
        moment = np.sum(d.rho * d.eps**p) * de
        assert abs(moment - exact) <= p * (6 * t) ** (p - 1) * de / 2, (p, moment)


def rho_square(e, t=1.0):
    """Square-lattice DOS, rho = K(1 - (e/4t)^2) / (2 pi^2 t), K the elliptic integral."""
    return ellipkm1((e / (4 * t)) ** 2) / (2 * np.pi**2 * t)


def square_dos_transform(z, t):
    """int rho(e)/(z - e) de = int_0^4t rho(e) 2z/(z^2 - e^2) de by quad (error ~1e-14)."""
    def part(e, which):
        return which(rho_square(e, t) * 2 * z / (z * z - e * e))

    re = quad(part, 0, 4 * t, args=(np.real,), epsabs=1e-14, limit=400)[0]
    return re + 1j * quad(part, 0, 4 * t, args=(np.imag,), epsabs=1e-14, limit=400)[0]


def test_binned_square_dos_integrates_to_the_elliptic_formula():
    t, n_k, n_eps = 1.0, 400, 40
    d = dos(square(t), n_kpts=n_k, n_eps=n_eps, name="sq")[0]
    de = d.eps[1] - d.eps[0]
    edges = d.eps[0] - de / 2 + de * np.arange(1, n_eps)
    binned = np.cumsum(d.rho)[:-1] * de
    exact = np.array([quad(rho_square, -4 * t, x, points=[0] if x > 0 else None,
                           epsabs=1e-13, limit=200)[0] for x in edges])
    # counting grid points under a level line: the points within one grid diagonal
    # (sqrt(2)/n_k) of the line, whose length in the zone is at most 2 sqrt(2)
    assert np.abs(binned - exact).max() <= 4.0 / n_k


# -- k sums -----------------------------------------------------------------------------------
@pytest.mark.parametrize("n_points", [6, 7])
def test_square_sum_equals_a_direct_numpy_sum(mesh, n_points):
    t, tp, mu = 1.0, 0.3, 0.4
    SK = SumkDiscreteFromLattice(lattice=square(t, tp), n_points=n_points)
    k = triqs_grid(n_points, 2)
    np.testing.assert_allclose(SK.bz_points, k, rtol=0, atol=0)
    sig = {"up": 0.2 - 0.3j, "down": -0.1 - 0.05j}
    S = block_sigma(mesh, value=sig)
    G = SK(mu=mu, Sigma=S, field={"up": 0.1, "down": [[0.0]]})
    iw = mesh.values()
    for b, shift in [("up", 0.1), ("down", 0.0)]:
        direct = np.mean(1.0 / (iw[:, None] + mu - shift - sig[b]
                                - eps_square(k, t, tp)[None, :]), axis=1)
        np.testing.assert_allclose(G[b].data[:, 0, 0], direct, rtol=0, atol=ROUND)
    assert G is not S and isinstance(G, BlockGf) and G.indices == ["up", "down"]
    out = S.copy()
    assert SK(Sigma=S, mu=mu, result=out) is out


def test_square_sum_converges_to_the_elliptic_dos_integral():
    t, mu, beta = 1.0, 0.3, 10.0
    m = MeshImFreq(beta=beta, S="Fermion", n_iw=16)
    z = m.values()[16:] + mu
    ref = np.array([square_dos_transform(zz, t) for zz in z])
    S = block_sigma(m, names=("up",))
    w = z.imag
    errors = []
    for n in (16, 32, 64, 128):
        g = SumkDiscreteFromLattice(lattice=square(t), n_points=n)(mu=mu, Sigma=S)
        err = np.abs(g["up"].data[16:, 0, 0] - ref)
        # periodic trapezoid rule: 1/(z - eps(k)) is analytic for |Im k| < a with
        # 2t sinh(2 pi a) = w/2, where |1/(z - eps)| <= 2/w; per direction the error is
        # <= 2 (2/w) q/(1-q), q = exp(-2 pi a n) = exp(-n asinh(w/4t)); two directions.
        q = np.exp(-n * np.arcsinh(w / (4 * t)))
        assert np.all(err <= 8 / w * q / (1 - q) + 1e-13), (n, err)
        errors.append(err[0])
    assert errors == sorted(errors, reverse=True) and errors[-1] < 1e-9


def test_high_frequency_tail(mesh):
    # G = 1/z + M2/z^3 + R, z = i w + mu - Sigma, M2 = <eps^2> = 4t^2 (M1 = M3 = 0),
    # |R| <= sum_{p>=4} (4t)^p/|z|^(p+1) = (4t)^4/|z|^5 / (1 - 4t/|z|)
    t, mu = 0.5, -0.3
    m = MeshImFreq(beta=10.0, S="Fermion", n_iw=400)
    G = SumkDiscreteFromLattice(lattice=square(t), n_points=16)(
        mu=mu, Sigma=block_sigma(m, names=("up",)))["up"].data[:, 0, 0]
    z = m.values() + mu
    far = np.abs(z) > 20
    bound = (4 * t) ** 4 / np.abs(z) ** 5 / (1 - 4 * t / np.abs(z))
    assert np.all(np.abs(G - 1 / z - 4 * t**2 / z**3)[far] <= bound[far] + ROUND)
    # the leading 1/(i w) tail: i w G - 1 = -mu/z + i w (M2/z^3 + R)
    w = m.values().imag
    tail = np.abs(1j * w * G - 1)
    assert np.all((tail <= abs(mu) / np.abs(z) + np.abs(w) * (4 * t**2 / np.abs(z) ** 3
                                                               + bound) + ROUND)[far])


def test_sum_is_fast_enough():
    m = MeshImFreq(beta=10.0, S="Fermion", n_iw=1025)
    S = block_sigma(m, names=("up",), value=-0.1j)
    SK = SumkDiscreteFromLattice(lattice=square(), n_points=64)
    best = min(_timed(lambda: SK(mu=0.1, Sigma=S)) for _ in range(3))
    assert best < 1.0, best  # 4096 k points x 2050 frequencies, ~0.05 s on one core


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def test_k_dependent_sigma_and_epsilon_hat(mesh):
    # Sigma(k, eps_k) = a eps_k and epsilon_hat = 2 h(k) rescale the hopping: exact
    a, mu = 0.25, 0.2
    S = block_sigma(mesh, names=("up",), value=-0.2j)
    ref = SumkDiscreteFromLattice(lattice=square(1 + a), n_points=8)(mu=mu, Sigma=S)
    SK = SumkDiscreteFromLattice(lattice=square(1.0), n_points=8)

    def sigma_k(k, eps_k):
        out = S.copy()
        out["up"].data[...] += a * eps_k
        return out

    G = SK(mu=mu, Sigma=sigma_k)
    np.testing.assert_allclose(G["up"].data, ref["up"].data, rtol=0, atol=ROUND)
    G2 = SK(mu=mu, Sigma=S, epsilon_hat=lambda h: (1 + a) * h)
    np.testing.assert_allclose(G2["up"].data, ref["up"].data, rtol=0, atol=ROUND)
    G3 = SK(mu=mu, Sigma=lambda k: S)  # constant function of k = the BlockGf itself
    np.testing.assert_allclose(G3["up"].data, SK(mu=mu, Sigma=S)["up"].data, rtol=0, atol=ROUND)


# -- AB (two-site) superlattice -------------------------------------------------------------
def ab_lattice(t=1.0, **kw):
    return TBSuperLattice(tb_lattice=square(t), super_lattice_units=[(1, 1), (1, -1)], **kw)


def test_ab_superlattice_structure_and_folded_bands():
    t = 0.8
    SL = ab_lattice(t)
    assert SL.Ncluster_sites == 2 and SL.n_orbitals == 2 and SL.orbital_names == ["1", "2"]
    assert list(SL.cluster_sites()) == [[0, 0], [1, 0]]
    np.testing.assert_array_equal(SL.units, [[1, 1], [1, -1]])
    np.testing.assert_array_equal(SL.orbital_positions[1], [1, 0, 0])
    assert SL.change_coordinates_L_to_SL((2, 1)) == ((1, 0), 1)
    # superlattice k (kappa, fractional) is base k = S^-1 kappa; the two bands are
    # eps(k) and eps(k + Q), Q = (1/2, 1/2)
    rng = np.random.default_rng(2)
    kappa = rng.random((50, 2))
    k = kappa @ np.linalg.inv([[1, 1], [1, -1]]).T
    bands = np.sort(np.stack([eps_square(k, t), eps_square(k + 0.5, t)], axis=1), axis=1)
    np.testing.assert_allclose(SL.dispersion(kappa), bands, rtol=0, atol=ROUND)
    # the same superlattice from 3-component units, as 2.x scripts write them
    SL3 = TBSuperLattice(tb_lattice=square(t), super_lattice_units=[(1, 1, 0), (1, -1, 0)])
    assert SL3 == SL


@pytest.mark.parametrize("units", [[(2, 1), (0, 1)], [(2, 0), (0, 2)], [(1, 2), (-1, 1)],
                                   [(3, 1), (1, 2)]])
def test_supercell_bands_are_the_unfolded_base_bands(units):
    # the supercell with N sites at kappa has the base energies eps(S^-1 (kappa + m)):
    # the N distinct values of S^-1 m modulo the base reciprocal lattice
    t, tp = 1.0, 0.35
    S = np.array(units)
    SL = TBSuperLattice(square(t, tp), units)
    N = int(round(abs(np.linalg.det(S))))
    assert SL.Ncluster_sites == N and SL.n_orbitals == N
    frac = np.array(list(SL.cluster_sites())) @ np.linalg.inv(S)  # sites in [0, 1)^2
    assert np.all((frac > -1e-12) & (frac < 1 - 1e-12))
    m = np.stack(np.meshgrid(range(-4, 5), range(-4, 5)), -1).reshape(-1, 2)
    shifts = m @ np.linalg.inv(S).T
    _, first = np.unique(np.round(shifts % 1.0, 9) % 1.0, axis=0, return_index=True)
    folds = shifts[first]  # exact representatives (eps is periodic)
    assert len(folds) == N
    kappa = np.random.default_rng(5).random((20, 2))
    k = kappa @ np.linalg.inv(S).T
    bands = np.sort([[eps_square(kk + q, t, tp) for q in folds] for kk in k], axis=1)
    np.testing.assert_allclose(SL.dispersion(kappa), bands, rtol=0, atol=1e-12)


def test_ab_superlattice_with_equal_sigma_gives_the_plain_lattice_g(mesh):
    t, mu, sigma = 1.0, 0.3, 0.1 - 0.4j
    n = 16
    SK = SumkDiscreteFromLattice(lattice=ab_lattice(t), n_points=n)
    S = block_sigma(mesh, names=("up",), n=2, value=sigma * np.eye(2))
    G = SK(mu=mu, Sigma=S)["up"].data
    iw = mesh.values()[:, None]
    # unfolding: the AA element averages the two bands over the superlattice grid,
    # G_AA = 1/(2 n^2) sum_kappa [g(k) + g(k + Q)], k = S^-1 kappa, g = 1/(z - eps)
    k = SK.bz_points @ np.linalg.inv([[1, 1], [1, -1]]).T
    g = lambda kk: 1 / (iw + mu - sigma - eps_square(kk, t)[None, :])  # noqa: E731
    unfolded = 0.5 * np.mean(g(k) + g(k + 0.5), axis=1)
    np.testing.assert_allclose(G[:, 0, 0], unfolded, rtol=0, atol=ROUND)
    np.testing.assert_allclose(G[:, 1, 1], unfolded, rtol=0, atol=ROUND)
    # and both it and the plain lattice's sum converge to the same integral.  Trapezoid
    # bounds as in test_square_sum_converges_to_the_elliptic_dos_integral, w = |Im z|:
    # a shift i y of kappa_1 moves k by (i y/2, i y/2), |Im eps| <= 4t sinh(pi y) = w/2,
    # so q = exp(-2 n asinh(w/8t)); plain lattice with 4n points: q = exp(-4n asinh(w/4t))
    plain = SumkDiscreteFromLattice(lattice=square(t), n_points=4 * n)(
        mu=mu, Sigma=block_sigma(mesh, names=("up",), value=sigma))["up"].data[:, 0, 0]
    w = np.abs((iw[:, 0] - sigma).imag)
    q_ab = np.exp(-2 * n * np.arcsinh(w / (8 * t)))
    q_plain = np.exp(-4 * n * np.arcsinh(w / (4 * t)))
    bound = 8 / w * (q_ab / (1 - q_ab) + q_plain / (1 - q_plain))
    assert np.all(np.abs(G[:, 0, 0] - plain) <= bound + ROUND)


def test_ab_superlattice_antiferromagnetic_sigma_matches_inverse_per_k(mesh):
    mu = 0.1
    SK = SumkDiscreteFromLattice(lattice=ab_lattice(1.0), n_points=8)
    iw = mesh.values()
    s_a, s_b = 0.6 - 0.2 / iw.imag * 1j, -0.6 - 0.3j  # staggered, frequency dependent
    S = block_sigma(mesh, names=("up", "down"), n=2)
    S["up"].data[:, 0, 0], S["up"].data[:, 1, 1] = s_a, s_b
    S["down"].data[:, 0, 0], S["down"].data[:, 1, 1] = s_b, s_a
    G = SK(mu=mu, Sigma=S)
    for b in ("up", "down"):
        A = (iw + mu)[:, None, None] * np.eye(2) - S[b].data
        ref = np.mean([np.linalg.inv(A - h) for h in SK.hopping], axis=0)
        np.testing.assert_allclose(G[b].data, ref, rtol=0, atol=ROUND)
    # spin flip exchanges the sublattices
    np.testing.assert_allclose(G["up"].data[:, 0, 0], G["down"].data[:, 1, 1], atol=ROUND)


def test_multi_orbital_sum_is_basis_covariant(mesh):
    # two (three) decoupled bands in a rotated orbital basis: G = U G_diag U^dagger
    rng = np.random.default_rng(3)
    for n_orb in (2, 3):
        ts = [1.0, 0.5, 0.3][:n_orb]
        levels = [0.0, 0.7, -0.4][:n_orb]
        U = np.linalg.qr(rng.normal(size=(n_orb, n_orb)) + 1j * rng.normal(size=(n_orb, n_orb)))[0]
        hop = {}
        for d in [(1, 0), (-1, 0), (0, 1), (0, -1)]:
            hop[d] = U @ np.diag([-t for t in ts]) @ U.conj().T
        hop[(0, 0)] = U @ np.diag(levels) @ U.conj().T
        H = TBLattice(units=np.eye(2), hoppings=hop, orbital_positions=[(0, 0, 0)] * n_orb)
        sig = np.array([-0.1j, -0.3j, 0.2 - 0.1j][:n_orb])
        S = block_sigma(mesh, names=("up",), n=n_orb, value=U @ np.diag(sig) @ U.conj().T)
        G = SumkDiscreteFromLattice(lattice=H, n_points=8)(mu=0.2, Sigma=S)["up"].data
        diag = []
        for t, lv, s in zip(ts, levels, sig):
            Sb = block_sigma(mesh, names=("up",), value=s + lv)
            diag.append(SumkDiscreteFromLattice(lattice=square(t), n_points=8)(
                mu=0.2, Sigma=Sb)["up"].data[:, 0, 0])
        ref = np.einsum("ab,wb,cb->wac", U, np.array(diag).T, U.conj())
        np.testing.assert_allclose(G, ref, rtol=0, atol=1e-12)


def test_local_sum_paths_agree_with_a_plain_inverse():
    rng = np.random.default_rng(4)
    w = rng.random(9)
    iw = 1j * np.pi * (2 * np.arange(-5, 5) + 1) / 5.0
    for n in (1, 2, 3):
        E = rng.normal(size=(9, n, n)) + 1j * rng.normal(size=(9, n, n))
        E = E + np.conj(np.swapaxes(E, 1, 2))
        for A in (iw[:, None, None] * np.eye(n),  # identity path (eigenbasis of E)
                  iw[:, None, None] * np.eye(n) + rng.normal(size=(n, n))):  # general
            ref = np.einsum("k,wkab->wab", w, np.linalg.inv(A[:, None] - E[None]))
            np.testing.assert_allclose(local_sum(A, E, w), ref, rtol=0, atol=1e-12)
    # diagonal path, with degenerate energies merged
    E = np.repeat(np.diag([0.5, -1.0])[None], 9, axis=0)
    A = iw[:, None, None] * np.eye(2)
    ref = np.stack([np.diag(w.sum() / (a - np.array([0.5, -1.0]))) for a in iw])
    np.testing.assert_allclose(local_sum(A, E, w), ref, rtol=0, atol=ROUND)


# -- DOS and Hilbert transform -------------------------------------------------------------
def test_hilbert_transform_of_binned_dos_matches_the_k_sum(mesh):
    t, n_k, n_eps, mu = 1.0, 64, 200, 0.2
    d = dos(square(t), n_kpts=n_k, n_eps=n_eps, name="sq")[0]
    g = Gf(mesh=mesh, target_shape=(1, 1))
    G = HilbertTransform(d)(Sigma=g, mu=mu)
    iw = mesh.values()
    k = (np.stack(np.meshgrid(np.arange(n_k), np.arange(n_k)), -1).reshape(-1, 2) + 0.5) / n_k
    direct = np.mean(1 / (iw[:, None] + mu - eps_square(k, t)[None, :]), axis=1)
    # binning moves each energy by <= de/2: |delta G| <= (de/2) / w_n^2
    de = d.eps[1] - d.eps[0]
    assert np.all(np.abs(G.data[:, 0, 0] - direct) <= de / 2 / iw.imag**2 + ROUND)
    # BlockGf in, BlockGf out; the result argument is filled in place
    S = block_sigma(mesh)
    out = S.copy()
    assert HilbertTransform(d)(Sigma=S, mu=mu, result=out) is out
    np.testing.assert_allclose(out["down"].data, G.data, rtol=0, atol=ROUND)


def test_hilbert_transform_of_flat_and_semicircular_dos(mesh):
    D, n_pts = 1.0, 4001
    iw = mesh.values()
    g = Gf(mesh=mesh, target_shape=(1, 1))
    flat = DOSFromFunction(lambda e: 1 / (2 * D), -D, D, n_pts=n_pts)
    G = HilbertTransform(flat)(Sigma=g, mu=0.0)
    exact = np.log((iw + D) / (iw - D)) / (2 * D)
    # equal weights on n_pts points = a midpoint rule on cells of width h = 2D/(n_pts-1)
    # around each point (the two end cells stick out by h/2): error <= h max|g'| = h/w^2
    h = 2 * D / (n_pts - 1)
    assert np.all(np.abs(G.data[:, 0, 0] - exact) <= h / iw.imag**2)
    semi = DOSFromFunction(lambda e: 2 / (np.pi * D**2) * np.sqrt(max(D * D - e * e, 0)),
                           -D, D, n_pts=11)
    HT = HilbertTransform(semi)
    fine = HT(Sigma=g, mu=0.0, n_points_integral=n_pts)
    exact = 2 / D**2 * (iw - 1j * np.sign(iw.imag) * np.sqrt(D**2 + iw.imag**2))
    # the sqrt edges limit the rule to O(h^(3/2)) (Navot's Euler-Maclaurin for x^(1/2)):
    # |zeta(-1/2)| (2 sqrt(2D)/(pi D^2)) h^(3/2) |g(+-D)| ~ 0.19 h^(3/2)/w_n per edge,
    # doubled by the normalisation of the weights: <= 0.75 h^(3/2)/w_n; we allow 1.0
    assert np.all(np.abs(fine.data[:, 0, 0] - exact) <= h**1.5 / np.abs(iw.imag))
    conv = HT(Sigma=g, mu=0.0, test_convergence=1e-4)
    # stops when a doubling changes G by <= 1e-4 max|G|; the rest of a geometric series
    # of ratio 2^(-3/2) is below that change
    assert np.abs(conv.data[:, 0, 0] - exact).max() <= 1e-4 * np.abs(conv.data).max()
    with pytest.raises(ValueError, match="DOSFromFunction"):
        HilbertTransform(DOS(semi.eps, semi.rho))(Sigma=g, n_points_integral=100)


def test_dos_density_and_file(tmp_path):
    D = 2.0
    d = DOS(np.linspace(-D, D, 9), np.full(9, 1 / (2 * D)), "flat")
    for mu in (-3.0, -D, -0.3, 0.0, 1.1, D, 5.0):  # exact for piecewise-linear rho
        assert d.density(mu) == pytest.approx(min(max((mu + D) / (2 * D), 0), 1), abs=1e-14)
    f = tmp_path / "dos.dat"
    np.savetxt(f, np.column_stack([d.eps, d.rho, 2 * d.rho]))
    both = dos_from_file(str(f), name="x")
    assert len(both) == 2 and both[1].name == "x"
    np.testing.assert_allclose(both[1].rho, 2 * d.rho)
    np.testing.assert_allclose(dos_from_file(str(f), single_orbital=1).rho, d.rho)


def test_k_path_helpers_of_triqs_2():
    H = square(1.0)
    e = energies_on_bz_path(H.tb, [0, 0], [0.5, 0.5], 4)
    np.testing.assert_allclose(e[0], eps_square(np.array([[0, 0], [1 / 8, 1 / 8], [0.25, 0.25],
                                                          [3 / 8, 3 / 8]])), atol=ROUND)
    k = np.array([[0, 0.5, 0.25], [0, 0.5, 0.1]])  # columns are k vectors
    np.testing.assert_allclose(hopping_stack(H, k)[0, 0], eps_square(k.T), atol=ROUND)


# -- errors ---------------------------------------------------------------------------------
def test_unknown_keywords_name_the_keyword(mesh):
    with pytest.raises(TypeError, match="hopings"):
        TBLattice(units=np.eye(2), hopings={})
    with pytest.raises(TypeError, match="n_point"):
        SumkDiscreteFromLattice(lattice=square(), n_point=4)
    SK = SumkDiscreteFromLattice(lattice=square(), n_points=4)
    with pytest.raises(TypeError, match="chemical_potential"):
        SK(Sigma=block_sigma(mesh), chemical_potential=0.1)
    with pytest.raises(TypeError, match="beta"):
        HilbertTransform(dos(square(), 8, 10, "d")[0])(Sigma=Gf(mesh=mesh), beta=10)


def test_unsupported_features_say_what_is_served(mesh):
    H = square()
    for call, api in [
        (lambda: SumkDiscreteFromLattice(lattice=H, method="Gauss"), "method='Gauss'"),
        (lambda: SumkDiscreteFromLattice(lattice=H, patch=object()), "patch"),
        (lambda: H.get_kmesh(8), "get_kmesh"),
        (lambda: H.get_rmesh(8), "get_rmesh"),
        (lambda: H.fourier(16), "fourier"),
        (lambda: dos_patch(H.tb, None, 10, 2, "p"), "dos_patch"),
        (lambda: SumkDiscreteFromLattice(lattice=H)(Sigma=block_sigma(mesh),
                                                    selected_blocks=["up"]), "selected_blocks"),
    ]:
        with pytest.raises(NotImplementedError, match="light TRIQS layer") as info:
            call()
        assert api in str(info.value) and "TRIQS" in str(info.value)
    with pytest.raises(ValueError, match="not recognized"):
        SumkDiscreteFromLattice(lattice=H, method="Simpson")


def test_bad_hoppings_and_blocks_are_refused(mesh):
    with pytest.raises(ValueError, match=r"opposite of displacement \(1, 0\)"):
        TBLattice(units=np.eye(2), hoppings={(1, 0): [[1]]})
    with pytest.raises(ValueError, match="Hermitian conjugate"):
        TBLattice(units=np.eye(2), hoppings={(1, 0): [[1j]], (-1, 0): [[1j]]})
    with pytest.raises(ValueError, match="must be 2 integers"):
        TBLattice(units=np.eye(2), hoppings={(1, 0, 0): [[1]], (-1, 0, 0): [[1]]})
    with pytest.raises(ValueError, match=r"must be 1 x 1.*\[\[t\]\]"):
        TBLattice(units=np.eye(2), hoppings={(1, 0): 1.0, (-1, 0): 1.0})
    with pytest.raises(TypeError, match="mapping"):
        TightBinding(BravaisLattice(np.eye(2)), [((1, 0), [[1]])])
    SK = SumkDiscreteFromLattice(lattice=square(), n_points=4)
    with pytest.raises(ValueError, match=r"block 'up' is \(2, 2\).*\(1, 1\)"):
        SK(mu=0, Sigma=block_sigma(mesh, n=2))
    with pytest.raises(ValueError, match="n_points"):
        SumkDiscreteFromLattice(lattice=square(), n_points=0)
    with pytest.raises(TypeError, match="TBLattice"):
        SumkDiscreteFromLattice(lattice=square().tb)
    with pytest.raises(ValueError, match="not independent"):
        TBSuperLattice(square(), [(1, 1), (2, 2)])


def test_triqs_2_spellings_still_work():
    hop = {(1, 0): [[-1.0]], (-1, 0): [[-1.0]], (0, 1): [[-1.0]], (0, -1): [[-1.0]]}
    with pytest.warns(DeprecationWarning, match="hoppings"):
        L = TBLattice(units=[(1, 0, 0), (0, 1, 0)], hopping=hop, orbital_names=range(1),
                      orbital_positions=[(0.0, 0.0, 0.0)] * 1)
    assert L.orbital_names == ["0"] and L == square()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert L.dim == 2 and L.NOrbitalsInUnitCell == 1 and L.OrbitalNames == ["0"]
        np.testing.assert_array_equal(L.MuPattern, np.eye(1))
        assert set(L.hopping_dict()) == set(hop)
        assert L.hopping(np.array([[0.5], [0.5]])).shape == (1, 1, 1)
    assert SumkDiscreteFromLattice(lattice=L, n_points=3).GFBlocIndices == ["0"]


def test_served_table():
    table = served_modules()
    for mod, names in {
        "triqs.lattice": {"BravaisLattice", "BrillouinZone", "TightBinding", "dos"},
        "triqs.lattice.tight_binding": {"TBLattice", "BravaisLattice", "TightBinding", "dos"},
        "triqs.lattice.super_lattice": {"TBSuperLattice"},
        "triqs.sumk": {"SumkDiscreteFromLattice", "SumkDiscrete"},
        "triqs.dos": {"DOS", "DOSFromFunction", "HilbertTransform", "dos_from_file"},
        "pytriqs.lattice.tight_binding": {"TBLattice"},
        "pytriqs.sumk": {"SumkDiscreteFromLattice"},
    }.items():
        source, served = table[mod]
        assert names <= set(served), mod
        assert all(hasattr(source, n) for n in served)


# -- scripts through `triqs-mlsolver run` ---------------------------------------------------
SQUARE_DMFT = """\
from triqs.gf import *
from triqs.operators import n
from triqs.lattice.tight_binding import TBLattice
from triqs.sumk import SumkDiscreteFromLattice
from h5 import HDFArchive
import triqs.utility.mpi as mpi
from triqs_cthyb import Solver

t, U, beta = 0.25, 2.0, 10.0          # half bandwidth 4t = 1
hop = {(1, 0): [[-t]], (-1, 0): [[-t]], (0, 1): [[-t]], (0, -1): [[-t]]}
H = TBLattice(units=[(1, 0, 0), (0, 1, 0)], hoppings=hop, orbital_positions=[(0, 0, 0)])
SK = SumkDiscreteFromLattice(lattice=H, n_points=16)

S = Solver(beta=beta, gf_struct=[('up', 1), ('down', 1)], n_iw=128, n_tau=1001, n_l=30)
mu = U / 2.0
S.Sigma_iw << mu
G = S.G_iw.copy()
for it in range(4):
    G << SK(mu=mu, Sigma=S.Sigma_iw)
    S.G0_iw << inverse(S.Sigma_iw + inverse(G))
    S.solve(h_int=U * n('up', 0) * n('down', 0), n_cycles=10000, length_cycle=100)
    mpi.report(f"iteration {it}: n = {G.total_density():.6f}")

Sigma = S.Sigma_iw.copy()
G << SK(mu=mu, Sigma=Sigma)
if mpi.is_master_node():
    with HDFArchive("square_dmft.h5", "w") as ar:
        ar["G_loc"] = G
        ar["Sigma"] = Sigma
        ar["mu"] = mu
        ar["density"] = G.total_density()
"""

AB_DMFT_TRIQS2 = """\
from pytriqs.gf import *
from pytriqs.operators import *
from pytriqs.lattice.tight_binding import TBLattice
from pytriqs.lattice.super_lattice import TBSuperLattice
from pytriqs.sumk import *
from pytriqs.archive import HDFArchive
from triqs_cthyb import *

beta, t, U = 10., -0.25, 3.
hop = {(1, 0): [[t]], (-1, 0): [[t]], (0, 1): [[t]], (0, -1): [[t]]}
L = TBLattice(units=[(1, 0, 0), (0, 1, 0)], hopping=hop, orbital_names=range(1),
              orbital_positions=[(0., 0., 0.)] * 1)
SL = TBSuperLattice(tb_lattice=L, super_lattice_units=[(1, 1, 0), (1, -1, 0)])
SK = SumkDiscreteFromLattice(lattice=SL, n_points=8)

S = Solver(beta=beta, gf_struct=[('up', [0]), ('down', [0])], n_iw=128, n_tau=1001)
mesh = S.G_iw.mesh
Gloc = BlockGf(name_block_generator=[(s, GfImFreq(indices=SK.GFBlocIndices, mesh=mesh))
                                     for s in ['up', 'down']], make_copies=False)
Sigma_lat = Gloc.copy()
mu = U / 2.
S.Sigma_iw['up'] << mu + 0.3     # a staggered start
S.Sigma_iw['down'] << mu - 0.3
for it in range(3):
    Sigma_lat['up'].data[:, 0, 0] = S.Sigma_iw['up'].data[:, 0, 0]
    Sigma_lat['down'].data[:, 0, 0] = S.Sigma_iw['down'].data[:, 0, 0]
    Sigma_lat['up'].data[:, 1, 1] = S.Sigma_iw['down'].data[:, 0, 0]
    Sigma_lat['down'].data[:, 1, 1] = S.Sigma_iw['up'].data[:, 0, 0]
    density = SK(mu=mu, Sigma=Sigma_lat).total_density()
    Gloc << SK(mu=mu, Sigma=Sigma_lat)
    Gloc1 = S.G_iw.copy()
    Gloc1['up'].data[:, 0, 0] = Gloc['up'].data[:, 0, 0]
    Gloc1['down'].data[:, 0, 0] = Gloc['down'].data[:, 0, 0]
    S.G0_iw << inverse(S.Sigma_iw + inverse(Gloc1))
    S.solve(h_int=U * n('up', 0) * n('down', 0))

ar = HDFArchive('ab_dmft.h5', 'w')
ar['Sigma_lat'] = Sigma_lat
ar['Gloc'] = Gloc
ar['density'] = density
del ar
"""


def run_script(folder, name, code):
    from triqs_mlsolver.cli.main import main

    (folder / name).write_text(code)
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return main(["-q", "run", "--solver", "ipt", str(folder / name)])
    finally:
        os.chdir(cwd)


def test_square_lattice_dmft_script_runs(tmp_path):
    assert run_script(tmp_path, "square_dmft.py", SQUARE_DMFT) == 0
    with HDFArchive(tmp_path / "square_dmft.h5", "r") as ar:
        G, Sigma, mu, density = ar["G_loc"], ar["Sigma"], ar["mu"], ar["density"]
    iw = G.mesh.values()
    k = triqs_grid(16, 2)
    for b in ("up", "down"):
        s = Sigma[b].data[:, 0, 0]
        direct = np.mean(1 / (iw[:, None] + mu - s[:, None] - eps_square(k, 0.25)[None]), axis=1)
        np.testing.assert_allclose(G[b].data[:, 0, 0], direct, rtol=0, atol=ROUND)
    # half filling at mu = U/2: particle-hole symmetric, Re G = 0, n = 1 (IPT: Re Sigma = U/2
    # to the 1e-8 of its fitted tail, test_run.py)
    g = G["up"].data[:, 0, 0]
    assert np.abs(g.real).max() < 1e-7 and np.all(g[len(g) // 2:].imag < 0)
    assert abs(density - 1.0) < 1e-6


def test_ab_superlattice_triqs2_script_runs(tmp_path):
    assert run_script(tmp_path, "ab_dmft.py", AB_DMFT_TRIQS2) == 0
    with HDFArchive(tmp_path / "ab_dmft.h5", "r") as ar:
        Sigma, G = ar["Sigma_lat"], ar["Gloc"]
    SK = SumkDiscreteFromLattice(lattice=ab_lattice(0.25), n_points=8)
    iw = G.mesh.values()
    for b in ("up", "down"):
        A = (iw + 1.5)[:, None, None] * np.eye(2) - Sigma[b].data
        ref = np.mean([np.linalg.inv(A - h) for h in SK.hopping], axis=0)
        np.testing.assert_allclose(G[b].data, ref, rtol=0, atol=ROUND)
    # the Neel ansatz: site 2 of spin up is site 1 of spin down
    np.testing.assert_allclose(G["up"].data[:, 1, 1], G["down"].data[:, 0, 0], atol=ROUND)
    assert np.abs(G["up"].data[:, 0, 0] - G["up"].data[:, 1, 1]).max() > 1e-3


def test_missing_lattice_module_is_explained(tmp_path):
    code = "from triqs.lattice.bz_patch import BZPatch\n"
    from triqs_mlsolver.cli.run import NotServedError, ServedTriqs

    with ServedTriqs("ipt"):
        with pytest.raises(NotServedError, match="triqs.lattice.bz_patch"):
            exec(code, {})


# -- real TRIQS -----------------------------------------------------------------------------
REAL_TRIQS = textwrap.dedent("""
    import numpy as np
    from triqs.gf import BlockGf, MeshImFreq, Gf
    from triqs.lattice.tight_binding import TBLattice as RTB, dos as rdos
    from triqs.lattice.super_lattice import TBSuperLattice as RSL
    from triqs.sumk import SumkDiscreteFromLattice as RSK
    from triqs.dos import HilbertTransform as RHT
    from triqs_mlsolver.light import lattice as L, sumk as K

    rng = np.random.default_rng(0)
    t, tp = 1.0, 0.3
    sq = {(1, 0): [[-t]], (-1, 0): [[-t]], (0, 1): [[-t]], (0, -1): [[-t]],
          (1, 1): [[-tp]], (-1, -1): [[-tp]], (1, -1): [[-tp]], (-1, 1): [[-tp]]}
    cub = {}
    for d in range(3):
        for s in (1, -1):
            v = [0, 0, 0]; v[d] = s; cub[tuple(v)] = [[-t]]
    two = {(0, 0): [[0.2, 0.1], [0.1, -0.2]], (1, 0): [[-t, 0.05], [0.0, -0.5]],
           (-1, 0): [[-t, 0.0], [0.05, -0.5]], (0, 1): [[-t, 0], [0, -0.5]],
           (0, -1): [[-t, 0], [0, -0.5]]}
    cases = [([(1, 0, 0), (0, 1, 0)], sq, [(0, 0, 0)]), (np.eye(3), cub, [(0, 0, 0)]),
             ([(1, 0, 0), (0, 1, 0)], two, [(0, 0, 0), (0.5, 0, 0)])]
    mesh = MeshImFreq(beta=10.0, S="Fermion", n_max=64)
    for units, hop, pos in cases:
        r, m = RTB(units=units, hoppings=hop, orbital_positions=pos), \\
            L.TBLattice(units=units, hoppings=hop, orbital_positions=pos)
        k = rng.random((40, 3))
        assert np.allclose(r.fourier(k), m.fourier(k), atol=1e-12)
        assert np.allclose(r.dispersion(k), m.dispersion(k), atol=1e-12)
        assert np.allclose(r.bl.units, m.bl.units) and np.allclose(r.bz.units, m.bz.units)
        n = r.n_orbitals
        for n_points in (4, 5):
            rs, ms = RSK(lattice=r, n_points=n_points), K.SumkDiscreteFromLattice(
                lattice=m, n_points=n_points)
            assert np.allclose(rs.bz_points, ms.bz_points, atol=1e-14)
            assert np.allclose(rs.hopping, ms.hopping, atol=1e-12)
            S = BlockGf(mesh=mesh, gf_struct=[("up", n), ("dn", n)])
            for _, g in S:
                g.data[...] = -0.2j * np.eye(n) + 0.1 * rng.normal(size=(n, n))
            gr, gm = rs(mu=0.3, Sigma=S), ms(mu=0.3, Sigma=S)
            for b in ("up", "dn"):
                assert np.allclose(gr[b].data, gm[b].data, atol=1e-12)
        dr, dm = rdos(r.tb, n_kpts=20, n_eps=31, name="d"), L.dos(m.tb, 20, 31, "d")
        for a, b in zip(dr, dm):
            assert np.allclose(a.eps, b.eps) and np.allclose(a.rho, b.rho)
        g = Gf(mesh=mesh, target_shape=[1, 1])
        assert np.allclose(RHT(dr[0])(Sigma=g, mu=0.1).data,
                           K.HilbertTransform(dm[0])(Sigma=g, mu=0.1).data, atol=1e-12)
    r, m = RTB(units=[(1, 0, 0), (0, 1, 0)], hoppings=sq), L.TBLattice(
        units=[(1, 0, 0), (0, 1, 0)], hoppings=sq)
    for units in ([(1, 1), (1, -1)], [(2, 0), (0, 2)], [(2, 1), (0, 1)], [(1, 2), (-1, 1)]):
        rs, ms = RSL(tb_lattice=r, super_lattice_units=units), L.TBSuperLattice(m, units)
        assert rs.orbital_names == ms.orbital_names
        assert [list(c) for c in rs.cluster_sites()] == list(ms.cluster_sites())
        assert set(rs.hoppings) == set(ms.hoppings)
        assert all(np.allclose(rs.hoppings[R], ms.hoppings[R]) for R in rs.hoppings)
    print("ok")
""")


@pytest.mark.triqs
@pytest.mark.skipif(not HAVE_TRIQS, reason="real TRIQS (triqs + h5) not importable")
def test_same_numbers_as_real_triqs():
    env = dict(os.environ, TRIQS_MLSOLVER_BACKEND="auto")
    res = subprocess.run([sys.executable, "-c", REAL_TRIQS], env=env, capture_output=True,
                         text=True, cwd=ROOT)
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr
