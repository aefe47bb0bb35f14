# SPDX-License-Identifier: Apache-2.0
"""Machine learning of the correction ``G_ref - G_cheap`` (representations, models, training).

Layers, lowest first: :mod:`.representations` (pure arrays: tau meshes,
Legendre, transforms, particle-hole images, descriptors) ->
:mod:`.dataset` (database -> encoded samples, features, targets, splits) ->
:mod:`.models` (networks and the prediction pipeline with the physical
constraints), :mod:`.baselines` (ridge, KRR) -> :mod:`.modelfile`
(safetensors + JSON) -> :mod:`.train`, :mod:`.evaluate`, :mod:`.gridsearch`
(drivers).  torch and scikit-learn are imported only where needed.

``train_model`` is :func:`triqs_mlsolver.ml.train.train` (exported under
another name so that ``triqs_mlsolver.ml.train`` remains the module).
"""

from .dataset import FeatureSpec, SampleSet, load_samples, split_indices
from .modelfile import (
    ModelExistsError,
    ModelFormatError,
    ModelMismatchError,
    load_model,
    publish_model,
    read_metadata,
    save_model,
)
from .models import PRESETS, CorrectionModel, Prediction, build_mlp
from .representations import (
    Representation,
    SigmaTarget,
    Transform,
    constraint_projection,
    descriptors,
    ph_image_params,
    project_tau_physical,
    tau_mesh,
)
from .train import TrainConfigError, load_train_config, validate_train_config
from .train import train as train_model  # the name 'train' stays the module

__all__ = [
    "Representation",
    "SigmaTarget",
    "Transform",
    "tau_mesh",
    "descriptors",
    "ph_image_params",
    "constraint_projection",
    "project_tau_physical",
    "FeatureSpec",
    "SampleSet",
    "load_samples",
    "split_indices",
    "PRESETS",
    "build_mlp",
    "CorrectionModel",
    "Prediction",
    "save_model",
    "load_model",
    "read_metadata",
    "publish_model",
    "ModelFormatError",
    "ModelMismatchError",
    "ModelExistsError",
    "TrainConfigError",
    "validate_train_config",
    "load_train_config",
    "train_model",
]
