# SPDX-License-Identifier: Apache-2.0
"""The Anderson impurity model: parameters, hybridisation and bath fitting."""

from .bath import BathFit, fit_bath
from .params import AIMParams, delta_from_bath

__all__ = ["AIMParams", "delta_from_bath", "fit_bath", "BathFit"]
