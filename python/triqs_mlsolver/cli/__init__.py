# SPDX-License-Identifier: Apache-2.0
"""The ``triqs-mlsolver`` command line."""
