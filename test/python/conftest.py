# SPDX-License-Identifier: Apache-2.0
"""Shared fixtures: the light backend is forced for the whole test session."""

import os
from pathlib import Path

os.environ.setdefault("TRIQS_MLSOLVER_BACKEND", "light")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402

#: ../shared beside the clone (CI lays it there).
SHARED = Path(__file__).resolve().parents[2].parent / "shared"
TRIQS_ARCHIVES = SHARED / "triqs-archives"


@pytest.fixture(scope="session")
def triqs_archives():
    if not TRIQS_ARCHIVES.is_dir():
        pytest.skip(f"reference archives not found at {TRIQS_ARCHIVES} (../shared)")
    return TRIQS_ARCHIVES
