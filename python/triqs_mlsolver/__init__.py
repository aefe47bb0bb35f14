# SPDX-License-Identifier: Apache-2.0
"""triqs_mlsolver: machine learning as a DMFT impurity solver, in the TRIQS ecosystem."""

__version__ = "0.1.0"

__all__ = ["__version__"]
