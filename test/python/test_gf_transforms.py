# SPDX-License-Identifier: Apache-2.0
"""Fourier and Legendre transforms against exact results and independent quadrature."""

import h5py
import numpy as np
import pytest
from semicircle import g_legendre_exact, g_tau_exact
from triqs_mlsolver.gf import (
    Fourier,
    GfImFreq,
    GfImTime,
    GfLegendre,
    LegendreToMatsubara,
    LegendreToTime,
    MatsubaraToLegendre,
    SemiCircular,
    TimeToLegendre,
    fit_hermitian_tail,
    inverse,
    iOmega_n,
)
from triqs_mlsolver.gf import transforms as tr

BETAS = [1.0, 10.0, 100.0]


def semicircle_iw(beta, n_iw=1025):
    g = GfImFreq(beta=beta, n_points=n_iw, indices=[0])
    g << SemiCircular(1.0)
    return g


@pytest.mark.parametrize("beta", BETAS)
def test_semicircle_fourier_to_tau_is_exact(beta):
    g = semicircle_iw(beta)
    gt = GfImTime(beta=beta, n_points=10001, indices=[0])
    gt << Fourier(g)
    sel = np.r_[0:10001:200, 10000]
    exact = g_tau_exact(gt.mesh.values()[sel], beta)
    assert np.abs(gt.data[sel, 0, 0] - exact).max() < 1e-8
    assert np.abs(gt.data.imag).max() < 1e-10
    # G(0+) + G(beta-) = -1 (the 1/iw moment), independent of the fitted tail
    assert abs(gt.data[0, 0, 0] + gt.data[-1, 0, 0] + 1) < 1e-10


@pytest.mark.parametrize("beta", BETAS)
def test_semicircle_fourier_round_trip(beta):
    g = semicircle_iw(beta)
    gt = GfImTime(beta=beta, n_points=10001, indices=[0])
    gt << Fourier(g)
    back = g.copy()
    back << Fourier(gt)
    assert np.abs(back.data - g.data).max() < 1e-8


def test_fourier_known_moments_and_matrix_target():
    """A 2x2 function with off-diagonal poles: G = (iw - h)^-1, exact G(tau) by diagonalisation."""
    beta = 20.0
    h = np.array([[0.3, 0.2], [0.2, -0.5]])
    g = GfImFreq(beta=beta, n_points=512, target_shape=(2, 2))
    g << inverse(iOmega_n - h)
    gt = GfImTime(beta=beta, n_points=2001, target_shape=(2, 2))
    moments = np.array([np.zeros((2, 2)), np.eye(2), h, h @ h])
    gt << Fourier(g, known_moments=moments)
    e, U = np.linalg.eigh(h)
    tau = gt.mesh.values()
    exact = -np.einsum("ia,ta,ja->tij", U, np.exp(-np.outer(tau, e)) / (1 + np.exp(-beta * e)), U)
    assert np.abs(gt.data - exact).max() < 1e-10
    # density: rho = U f(e) U^T
    rho = U @ np.diag(1 / (np.exp(beta * e) + 1)) @ U.T
    assert np.abs(g.density() - rho).max() < 1e-10
    assert np.abs(gt.density() - rho).max() < 1e-10


@pytest.mark.parametrize("beta", [10.0, 100.0])
def test_fit_tail_recovers_semicircle_moments(beta):
    g = semicircle_iw(beta)
    tail, err = fit_hermitian_tail(g)
    # semicircle: c1 = 1, c2 = 0, c3 = D^2/4
    assert abs(tail[1, 0, 0] - 1) < 1e-9
    assert abs(tail[2, 0, 0]) < 1e-9
    assert abs(tail[3, 0, 0] - 0.25) < 1e-6
    assert err < 1e-12


@pytest.mark.parametrize("beta", BETAS)
def test_semicircle_legendre_equals_independent_quadrature(beta):
    g = semicircle_iw(beta)
    gl = GfLegendre(beta=beta, n_points=30, indices=[0])
    gl << MatsubaraToLegendre(g)
    exact = g_legendre_exact(np.arange(30), beta)
    assert np.abs(gl.data[:, 0, 0] - exact).max() < 1e-9
    # particle-hole symmetry: odd coefficients vanish
    assert np.abs(gl.data[1::2]).max() < 1e-12


@pytest.mark.parametrize("beta", [10.0, 100.0])
def test_legendre_round_trips_converge_with_n_l(beta):
    """tau -> l -> tau and iw -> l -> iw: the error decreases (exponentially) with n_l."""
    g = semicircle_iw(beta)
    gt = GfImTime(beta=beta, n_points=4001, indices=[0])
    gt << Fourier(g)
    n_ls = [10, 20, 40, 80] if beta == 10 else [20, 40, 80, 160]
    err_tau, err_iw = [], []
    for n_l in n_ls:
        gl = GfLegendre(beta=beta, n_points=n_l, indices=[0])
        gl << TimeToLegendre(gt)
        back = gt.copy()
        back << LegendreToTime(gl)
        err_tau.append(np.abs(back.data - gt.data).max())
        gl2 = GfLegendre(beta=beta, n_points=n_l, indices=[0])
        gl2 << MatsubaraToLegendre(g)
        wback = g.copy()
        wback << LegendreToMatsubara(gl2)
        err_iw.append(np.abs(wback.data - g.data).max())
    for errs in (err_tau, err_iw):
        assert all(b < a / 5 for a, b in zip(errs, errs[1:]) if a > 1e-9), errs
    assert err_tau[-1] < 1e-8 and err_iw[-1] < 1e-8


def test_legendre_matrix_is_the_transform_of_the_basis():
    """T_nl against direct quadrature of sqrt(2l+1)/beta int e^{iw tau} P_l(x(tau))."""
    beta, n_l = 5.0, 12
    x, w = np.polynomial.legendre.leggauss(200)
    tau = beta * (x + 1) / 2
    n = np.arange(-6, 6)
    P = np.polynomial.legendre.legvander(x, n_l - 1)
    iw = 1j * np.pi * (2 * n + 1) / beta
    direct = np.einsum("q,nq,ql->nl", w * beta / 2, np.exp(np.outer(iw, tau)), P)
    direct *= np.sqrt(2 * np.arange(n_l) + 1) / beta
    assert np.abs(tr.legendre_matrix_iw(n, n_l) - direct).max() < 1e-13


def test_tau_to_legendre_resolves_high_l():
    """Up to l = 80 at n_tau = 1001: the spline + per-interval Gauss rule stays exact."""
    beta = 10.0
    iw = tr.matsubara_freqs(beta, 1025)
    G = 2 / (iw + 1j * np.sign(iw.imag) * np.sqrt(np.abs(iw) ** 2 + 1))
    exact = g_legendre_exact(np.arange(80), beta)
    gl = tr.tau_to_legendre(tr.iw_to_tau(G, beta, 1001), beta, 80)
    assert np.abs(gl - exact).max() < 1e-10


def _read_triqs(f, path):
    d = f[path + "/data"][()]
    return d[..., 0] + 1j * d[..., 1]


@pytest.mark.parametrize("beta", [1, 10, 100])
def test_transforms_match_real_triqs(triqs_archives, beta):
    """Our transforms against what TRIQS 3.2 computed, to the accuracy of TRIQS's method."""
    with h5py.File(triqs_archives / "transforms.h5", "r") as f:
        b = f"beta_{beta}"
        g = semicircle_iw(float(beta))
        # TRIQS evaluates 2(z - sqrt(z^2 - 1)) with a cancellation: |err| ~ eps * w_max
        assert np.abs(g.data[:, 0, 0] - _read_triqs(f, b + "/semicircle_iw")[:, 0, 0]).max() < (
            2e-16 * 2 * np.pi * 1025 / beta * 10
        )
        gt = GfImTime(beta=beta, n_points=4101, indices=[0])
        gt << Fourier(g)
        assert np.abs(gt.data - _read_triqs(f, b + "/semicircle_tau")).max() < 1e-8
        # TRIQS's MatsubaraToLegendre integrates G(tau) on 50000 tau bins with the
        # trapezoidal rule: Euler-Maclaurin error h^2/12 |f'(beta) - f'(0)|, f = P_l G.
        gl = GfLegendre(beta=beta, n_points=50, indices=[0])
        gl << MatsubaraToLegendre(g)
        h = beta / 50000
        l = np.arange(50)
        dG = 0.5 * (1 / 4 + 1)  # |G'(0)| = |G'(beta)| <= c2-ish bound: -G'(0) = <H^2>-like, < 1
        bound = h**2 / 12 * np.sqrt(2 * l + 1) * (l * (l + 1) / beta * 2 * 0.5 + 2 * dG)
        diff = np.abs(gl.data[:, 0, 0] - _read_triqs(f, b + "/semicircle_l")[:, 0, 0])
        assert np.all(diff < 2 * bound + 1e-12)
        # LegendreToMatsubara is exact for given coefficients: applied to TRIQS's own G_l
        gl_triqs = GfLegendre(beta=beta, n_points=50, indices=[0])
        gl_triqs.data[...] = _read_triqs(f, b + "/semicircle_l")
        back = g.copy()
        back << LegendreToMatsubara(gl_triqs)
        assert np.abs(back.data - _read_triqs(f, b + "/semicircle_iw_from_l")).max() < 1e-12
        # hybridised function: TRIQS's own tail-fit error is ~5e-8 at beta=100 (measured
        # against our transform converged in n_iw), so compare at 1e-7
        hyb = g.copy()
        hyb << inverse(iOmega_n + 0.3 - 0.25 * g)
        assert np.abs(hyb.data - _read_triqs(f, b + "/hybridised_iw")).max() < 1e-13
        ht = gt.copy()
        ht << Fourier(hyb)
        assert np.abs(ht.data - _read_triqs(f, b + "/hybridised_tau")).max() < 1e-7


def test_scaled_spherical_bessel_of_far_poles():
    """``e^{-x} i_l(x)`` behind ``legendre_of_poles``: the recurrence and, beyond
    ``50 n_l^2``, the closed form agree with scipy's ``spherical_in`` (exponentially scaled
    by hand where it does not overflow) and, far out, with the asymptote ``1/(2x)``; a pole
    at 1e30 (a fitted bath site sent away: it once made the recurrence run ~1e16 steps)
    goes by the closed form."""
    from scipy.special import spherical_in
    from triqs_mlsolver.solvers.solution import _scaled_spherical_in, legendre_of_poles

    n_l = 40
    x = np.array([0.3, 12.0, 300.0, 700.0])  # scipy's i_l still finite here
    want = np.stack([spherical_in(np.arange(n_l), v) * np.exp(-v) for v in x])
    np.testing.assert_allclose(_scaled_spherical_in(n_l, x), want, rtol=1e-12)
    # either side of the switch, and far out: 1/(2x) (1 - l(l+1)/(2x) + ...)
    side = _scaled_spherical_in(n_l, np.array([0.99, 1.01]) * 50 * n_l**2)
    l = np.arange(n_l)
    for v, row in zip(np.array([0.99, 1.01]) * 50 * n_l**2, side):
        first = (1 - l * (l + 1) / (2 * v)) / (2 * v)
        np.testing.assert_allclose(row, first, rtol=(l.max() ** 2 / (2 * v)) ** 2)
    far = legendre_of_poles(np.array([-0.5, 1e30]), np.array([0.5, 0.5]), 100.0, n_l)
    assert np.all(np.isfinite(far))
    near = legendre_of_poles(np.array([-0.5]), np.array([0.5]), 100.0, n_l)
    np.testing.assert_allclose(far, near, atol=1e-25)  # the far pole's G is ~1/(beta E) ~ 0


def test_legendre_of_hermitian_input_uses_half_the_mesh():
    """iw_to_legendre sums a hermitian G (a real G(tau)) over w_n > 0 only (twice the real
    part): the same G_l as the full sum to round-off, for one and for two columns; a
    non-hermitian column (an off-diagonal element) keeps the full sum."""
    from triqs_mlsolver.gf import transforms as tr

    beta, n_iw, n_l = 50.0, 1025, 40
    iw = tr.matsubara_freqs(beta, n_iw)
    G = np.stack([1 / (iw + 0.3 - 0.25 * tr.semicircle_g(iw, 1.0)),
                  1 / (iw - 0.2 - 0.25 * tr.semicircle_g(iw, 1.0))], axis=1)
    m, _ = tr.fit_tail(G, iw, known_moments=np.array([[0.0, 0.0], [1.0, 1.0]]))

    def full_sum(Gc, mc):
        R, m_sub, m_high = tr._split_tail(Gc, beta, mc)
        out = tr._legendre_matrix_h(n_iw, n_l) @ R
        out = out + tr._legendre_of_extension(beta, n_iw, n_l, m_sub.shape[0],
                                              m_high.shape[0]) @ m_high
        return out + tr._legendre_of_tail(beta, n_l, m_sub.shape[0] - 1) @ m_sub[1:]

    # round-off scale: the remainder's sum (~1e3) cancels against the tail's down to G_l ~ 4
    scale = np.abs(tr._legendre_matrix_h(n_iw, n_l) @ tr._split_tail(G, beta, m)[0]).max()
    np.testing.assert_allclose(tr.iw_to_legendre(G, beta, n_l, m), full_sum(G, m), rtol=0,
                               atol=1e-14 * scale)
    np.testing.assert_allclose(tr.iw_to_legendre(G[:, 0], beta, n_l, m[:, 0]),
                               full_sum(G[:, :1], m[:, :1])[:, 0], rtol=0, atol=1e-14 * scale)
    # not hermitian: G(-i w) != conj G(i w) (an odd-in-w imaginary part added)
    H = G[:, 0] + 0.01 / (iw - 1.0)
    mh, _ = tr.fit_tail(H, iw, known_moments=np.array([0.0, 1.01]), hermitian=False)
    got = tr.iw_to_legendre(H, beta, n_l, mh)
    np.testing.assert_allclose(got, full_sum(H[:, None], mh[:, None])[:, 0], rtol=0,
                               atol=1e-14 * scale)
