# SPDX-License-Identifier: Apache-2.0
"""Errors and loss weights for databases with a continuous temperature and a non-uniform
stored tau mesh (the single-band recipe: beta D log-uniform in 1 ... 400, "log" mesh)."""

import numpy as np
import pytest
from triqs_mlsolver.database.reader import BETA_D_EDGES, error_stats, tau_weights
from triqs_mlsolver.gf.transforms import log_tau_mesh, matsubara_freqs, uniform_tau_to_points
from triqs_mlsolver.ml.evaluate import errors_of_prediction


def test_tau_weights():
    assert tau_weights(np.linspace(0, 1, 201)) is None  # uniform: plain means, as before
    x = log_tau_mesh(201)
    w = tau_weights(x)
    assert w.mean() == pytest.approx(1.0)
    # weighted mean of f(x) ~ int_0^1 f dx: the trapezoid rule on a mesh of ratio
    # r = (0.5/1e-6)^(1/99) = 1.14, local relative error h^2 f''/(12 f) = (r-1)^2 (a x)^2 / 12,
    # about 2e-3 x <(a x)^2> ~ 4e-3 for f = e^{-a x} (weight near x ~ 1/a), 1e-3 for x^2
    for f, exact in ((lambda t: t**2, 1 / 3), (lambda t: np.exp(-50 * t), (1 - np.exp(-50)) / 50)):
        assert np.mean(w * f(x)) == pytest.approx(exact, rel=5e-3)
    # a plain mean would weigh the ends: far from the integral
    assert abs(np.mean(np.exp(-50 * x)) - 1 / 50) > 0.1


def test_weighted_error_stats_and_beta_bins():
    x = log_tau_mesh(101)
    rng = np.random.default_rng(0)
    beta = np.exp(rng.uniform(0, np.log(400), 300))
    d = np.outer(np.full(300, 1e-3), np.ones_like(x))  # a constant error 1e-3
    e = errors_of_prediction(d, np.zeros_like(d), beta, x)
    assert e["all"]["RMS"] == pytest.approx(1e-3)
    bins = [k for k in e if k != "all"]
    assert all(k.startswith("beta*D in") for k in bins)
    assert len(bins) == len(BETA_D_EDGES) - 1
    assert sum(e[k]["n"] for k in bins) == 300
    # a handful of temperatures keep one class each (the Bethe databases)
    e2 = errors_of_prediction(d[:6], np.zeros_like(d[:6]), np.array([20., 50, 100] * 2), x)
    assert set(e2) == {"all", "beta=20", "beta=50", "beta=100"}
    s = error_stats(np.ones((2, 5)), np.array([0.5, 1.5, 1.0, 1.0, 1.0]))
    assert s["RMS"] == pytest.approx(1.0) and s["n"] == 2


def test_beta_loss_weights_for_a_continuous_beta():
    from triqs_mlsolver.ml import train as T

    class Spec:  # the parts of FeatureSpec _beta_weights uses
        sigma = None

        class representation:  # noqa: N801 - a stand-in namespace
            @staticmethod
            def metric():
                return np.ones(3)

        @staticmethod
        def scale(samples):
            return np.ones((len(samples), 1))

        base = "cheap"

    class Samples:
        def __init__(self, beta, err):
            self.beta = beta
            self.params = {"D": np.ones_like(beta)}
            self.y = {"cheap": np.zeros((len(beta), 3)), "ref": err[:, None] * np.ones(3)}

        def __len__(self):
            return len(self.beta)

    rng = np.random.default_rng(1)
    beta = np.exp(rng.uniform(0, np.log(400), 800))
    err = np.where(beta > 50, 1e-2, 1e-5)  # the cheap solver is far worse at low T
    w = T._beta_weights(Spec, "ref", Samples(beta, err))
    # every log(beta D) class carries the same total relative error: the weights undo the
    # 1e6 ratio of squared errors between low and high temperature (within a class)
    lo, hi = beta < 20, beta > 100
    assert (w[lo] * err[lo] ** 2).mean() == pytest.approx((w[hi] * err[hi] ** 2).mean(),
                                                          rel=1e-6)
    # but no per-sample weighting: equal errors get equal weights inside a class
    assert len(np.unique(np.round(w[lo], 12))) <= 2


def test_correction_from_the_log_mesh_to_matsubara():
    """MLSolver's path for models of a log-mesh database: a correction known at the stored
    points reaches G(i w_n) through a spline and the tail-corrected Fourier transform.  The
    exact difference of two ED solutions (a 4-site and a 2-site bath) at beta D = 400."""
    from triqs_mlsolver.aim import AIMParams
    from triqs_mlsolver.mlsolver import correction_iw_from_points
    from triqs_mlsolver.solvers.ed import ed_poles
    from triqs_mlsolver.solvers.solution import iw_of_poles, tau_of_poles

    beta = 400.0
    a = AIMParams(U=3.0, mu=1.8, beta=beta, eps_k=[-0.8, -0.2, 0.15, 0.7],
                  V_k=[0.2, 0.3, 0.25, 0.2])
    b = AIMParams(U=3.0, mu=1.8, beta=beta, eps_k=[-0.5, 0.4], V_k=[0.35, 0.33])
    pa, pb = ed_poles(a, method="full")[0][0], ed_poles(b, method="full")[0][0]
    x = log_tau_mesh(201)
    dG_x = tau_of_poles(*pa, beta, beta * x) - tau_of_poles(*pb, beta, beta * x)
    got = correction_iw_from_points(x, dG_x[None], beta, 1025)[0]
    exact = iw_of_poles(*pa, beta, 1025) - iw_of_poles(*pb, beta, 1025)
    err = np.abs(got - exact)
    # the spline on the geometric mesh (ratio 1.14) interpolates to ~(0.14)^4/384 x the
    # curvature, 1e-6 - 1e-5 of Delta G; G(i w_0) integrates it over beta: 1.3e-5 of the
    # largest |Delta G(i w_n)| measured, 1e-4 allowed
    assert err.max() <= 1e-4 * np.abs(exact).max()


def test_correction_tail_from_moments_removes_the_noise_of_the_ends():
    """A correction with noise on the fine log points near tau = 0, beta (what a network
    gives): transformed as it is, G = G_b + Delta G has a self-energy far off at high
    frequency (|delta Sigma| ~ w^2 |delta G|); with the exact moments of Delta G and the
    taper above w_cut, Sigma(i w_max) is close to the exact one and G below w_cut
    unchanged to the noise level."""
    from triqs_mlsolver.aim import AIMParams
    from triqs_mlsolver.mlsolver import _correction_moments, correction_iw_from_points
    from triqs_mlsolver.solvers import solve_aim

    beta, n_iw = 50.0, 1025
    U, mu = 3.0, 1.2
    a = AIMParams(U=U, mu=mu, beta=beta, eps_k=[-0.8, -0.2, 0.15, 0.7],
                  V_k=[0.2, 0.3, 0.25, 0.2])
    b = AIMParams(U=U, mu=mu, beta=beta, eps_k=[-0.5, 0.4], V_k=[0.35, 0.33])
    grid = dict(n_iw=n_iw, n_tau=16385, n_l=30)
    sa, sb = solve_aim("ed", a, **grid), solve_aim("ed2", b, **grid)
    x = log_tau_mesh(201)
    Ga, Gb = uniform_tau_to_points(sa.G_tau[:1], x), uniform_tau_to_points(sb.G_tau[:1], x)
    rng = np.random.default_rng(1)
    noise = 1e-5 * rng.normal(size=x.size) * (np.minimum(x, 1 - x) < 0.01)
    noise[[0, -1]] = 0.0
    dG_x = Ga - Gb + noise
    iw = matsubara_freqs(beta, n_iw)
    # Delta G's moments from the (model's) densities and the base's self-energy; the
    # hybridisations differ here, so add their m_0 difference to c_3 by hand
    mom = _correction_moments(U, mu, Ga[:, -1], sb.Sigma_iw, iw)
    mom[:, 3] += (np.sum(a.V_k**2) - np.sum(b.V_k**2))
    g0a = 1.0 / a.g0_iw(n_iw)[0]
    exact_sigma = sa.Sigma_iw[0]
    plain = correction_iw_from_points(x, dG_x, beta, n_iw)[0]
    w_cut = 20.0
    tapered = correction_iw_from_points(x, dG_x, beta, n_iw, moments=mom, w_cut=w_cut)[0]
    sig_plain = g0a - 1.0 / (sb.G_iw[0] + plain)
    sig_tap = g0a - 1.0 / (sb.G_iw[0] + tapered)
    # noise 1e-5 on the end points -> ~1e-2 in Sigma(i w_max = 128); with the moments the
    # rest is the c_4/w^2 of the truncated tail, ~1e-4
    err_plain = abs(sig_plain[-1] - exact_sigma[-1])
    err_tap = abs(sig_tap[-1] - exact_sigma[-1])
    assert err_plain > 3e-3 and err_tap < 2e-4 and err_tap < err_plain / 30
    low = np.abs(iw.imag) <= w_cut
    exact_dG = sa.G_iw[0] - sb.G_iw[0]
    assert np.abs(tapered[low] - exact_dG[low]).max() < 1e-5
    assert np.abs(tapered[low] - plain[low]).max() < 1e-12 + np.abs(
        plain[low] - exact_dG[low]).max() + 1e-6


def test_samples_with_an_inaccurate_reference_are_left_out():
    """[data] max_reference_error: the reference's own error estimate decides (NaN = no
    estimate: kept), the same rule in training and evaluation."""
    from triqs_mlsolver.ml.train import TrainConfigError, reference_excluded, validate_train_config

    class DB:
        @staticmethod
        def read(solver, key):
            assert (solver, key) == ("ed", "error_estimate")
            return np.array([1e-7, 3e-2, np.nan, 2e-4, 5e-5])

    np.testing.assert_array_equal(reference_excluded(DB, "ed", [0, 1, 2, 3, 4], 1e-4), [1, 3])
    np.testing.assert_array_equal(reference_excluded(DB, "ed", [0, 2, 4], 1e-4), [])
    assert len(reference_excluded(DB, "ed", [0, 1, 2, 3, 4], 0.0)) == 0  # 0: keep all
    with pytest.raises(TrainConfigError, match="max_reference_error"):
        validate_train_config({"data": {"database": "x.h5", "max_reference_error": -1.0}})
