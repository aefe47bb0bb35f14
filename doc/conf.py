# SPDX-License-Identifier: Apache-2.0
"""Sphinx configuration of the triqs_mlsolver documentation (built with -W in the tests)."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
os.environ.setdefault("TRIQS_MLSOLVER_BACKEND", "light")

import triqs_mlsolver  # noqa: E402

project = "triqs_mlsolver"
author = "triqs_mlsolver developers"
release = version = triqs_mlsolver.__version__
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "numpydoc",
]
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
autodoc_member_order = "bysource"
exclude_patterns = ["_build"]
html_theme = "alabaster"
nitpicky = False
