# SPDX-License-Identifier: Apache-2.0
"""Helpers shared by several test files (imported as ``from helpers import ...``)."""

import os

import h5py
import numpy as np


def h5_datasets(path):
    """``{name: value}`` of every dataset in the HDF5 file ``path``."""
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: out.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset)
                     else None)
    return out


def assert_same_h5_data(a, b):
    """The files ``a`` and ``b`` hold the same datasets, bit for bit (NaN equal to NaN),
    apart from the wall times."""
    da, db = h5_datasets(a), h5_datasets(b)
    assert da.keys() == db.keys()
    for k in da:
        if not k.endswith("wall_time"):
            assert np.array_equal(da[k], db[k], equal_nan=da[k].dtype.kind == "f"), k


def run_in(folder, *argv, quiet=True):
    """``triqs-mlsolver [-q] run ARGV...`` in-process with ``folder`` as the working directory."""
    from triqs_mlsolver.cli.main import main

    cwd = os.getcwd()
    os.chdir(folder)
    try:
        return main([*(["-q"] if quiet else []), "run", *map(str, argv)])
    finally:
        os.chdir(cwd)
