# SPDX-License-Identifier: Apache-2.0
"""Errors and loss weights for databases with a continuous temperature and a non-uniform
stored tau mesh (the single-band recipe: beta D log-uniform in 1 ... 400, "log" mesh)."""

import numpy as np
import pytest
from triqs_mlsolver.database.reader import BETA_D_EDGES, error_stats, tau_weights
from triqs_mlsolver.gf.transforms import log_tau_mesh
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
