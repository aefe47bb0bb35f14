# SPDX-License-Identifier: Apache-2.0
"""Baselines on the same features, targets and split as the network.

* every cheap solver alone (no correction);
* ridge regression (``sklearn.linear_model.RidgeCV``, penalty chosen by
  efficient leave-one-out CV on the training samples);
* kernel ridge regression (``sklearn.kernel_ridge.KernelRidge``, RBF kernel;
  ``alpha`` and ``gamma`` chosen by 3-fold CV on the training samples).  KRR
  costs ``O(n^3)`` in time and ``O(n^2)`` in memory, so the CV runs on a random
  subset of at most ``n_cv`` training samples and the final fit on at most
  ``n_fit`` (documented in the results).

The regressors predict the same transformed target as the network, so the
constraints, the decoding and the error measures are identical
(:class:`~triqs_mlsolver.ml.models.CorrectionPipeline`).
"""

from __future__ import annotations

import numpy as np

from .dataset import FeatureSpec, SampleSet
from .models import CorrectionPipeline, Prediction
from .representations import Transform

__all__ = ["SklearnCorrection", "fit_ridge", "fit_krr", "cheap_prediction"]


class SklearnCorrection(CorrectionPipeline):
    """A correction pipeline whose regressor is a fitted scikit-learn estimator.

    Attributes
    ----------
    estimator : the fitted estimator
    info : dict, chosen hyperparameters and sizes
    """

    kind = "sklearn"

    def __init__(self, spec, reference, input_transform, target_transform, estimator, info,
                 **options):
        super().__init__(spec, reference, input_transform, target_transform, **options)
        self.estimator = estimator
        self.info = info

    def _members(self, Z_bf, gates=None):
        return self.estimator.predict(Z_bf)[None]


def _prepare(spec: FeatureSpec, reference, train: SampleSet, *, ph_augment, input_transform,
             target_transform):
    if ph_augment:
        train = SampleSet.concatenate([train, train.ph_image(spec.representation)])
    X, Y = spec.features(train), spec.target(train, reference)
    itf = Transform(input_transform, mask=spec.function_mask(X.shape[1])).fit(X)
    otf = Transform(target_transform).fit(Y)
    return itf, otf, itf.forward(X), otf.forward(Y)


def fit_ridge(spec, reference, train: SampleSet, *, ph_augment=True,
              input_transform="identity", target_transform="identity", clip=True,
              alphas=None) -> SklearnCorrection:
    """Ridge regression of the (transformed) correction on the (transformed) features."""
    from sklearn.linear_model import RidgeCV

    itf, otf, Z, T = _prepare(spec, reference, train, ph_augment=ph_augment,
                              input_transform=input_transform,
                              target_transform=target_transform)
    alphas = np.logspace(-6, 3, 10) if alphas is None else alphas
    est = RidgeCV(alphas=alphas).fit(Z, T)
    info = {"alpha": float(est.alpha_), "n_train": len(Z)}
    return SklearnCorrection(spec, reference, itf, otf, est, info, clip=clip)


def fit_krr(spec, reference, train: SampleSet, *, ph_augment=True, input_transform="identity",
            target_transform="identity", clip=True, n_cv=1000, n_fit=4000, seed=0,
            alphas=(1e-4, 1e-3, 1e-2, 1e-1), gammas=(0.1, 0.3, 1.0, 3.0)) -> SklearnCorrection:
    """RBF kernel ridge regression; ``gamma`` values are in units of ``1 / n_features``."""
    from sklearn.kernel_ridge import KernelRidge
    from sklearn.model_selection import GridSearchCV, KFold

    itf, otf, Z, T = _prepare(spec, reference, train, ph_augment=ph_augment,
                              input_transform=input_transform,
                              target_transform=target_transform)
    rng = np.random.default_rng(seed)
    nf = Z.shape[1]
    sub = rng.permutation(len(Z))
    cv_idx = sub[: min(n_cv, len(Z))]
    grid = {"alpha": list(alphas), "gamma": [g / nf for g in gammas]}
    search = GridSearchCV(KernelRidge(kernel="rbf"), grid,
                          cv=KFold(3, shuffle=True, random_state=seed),
                          scoring="neg_mean_squared_error")
    search.fit(Z[cv_idx], T[cv_idx])
    fit_idx = sub[: min(n_fit, len(Z))]
    est = KernelRidge(kernel="rbf", **search.best_params_).fit(Z[fit_idx], T[fit_idx])
    info = {"alpha": float(search.best_params_["alpha"]),
            "gamma_times_n_features": float(search.best_params_["gamma"] * nf),
            "n_cv": len(cv_idx), "n_fit": len(fit_idx), "n_train_available": len(Z)}
    return SklearnCorrection(spec, reference, itf, otf, est, info, clip=clip)


def cheap_prediction(samples: SampleSet, solver: str) -> Prediction:
    """A cheap solver alone, as a :class:`Prediction` (no correction)."""
    G = samples.G_tau[solver]
    return Prediction(np.zeros((len(samples), 0)), G.copy(), np.zeros_like(G))
