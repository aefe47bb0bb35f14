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


def polarised_family_aim(i, *, seed, n_sites, eps_max, V_range):
    """Hand-made AIM ``i`` of the spin-resolved tests: ``i % 3 == 0`` spin-symmetric, ``1`` a
    Zeeman field ``mu_s = mu +- h``, ``2`` a different bath per spin (levels shifted by
    ``+-d``, hoppings scaled for spin down); ``n_sites`` levels in ``[-eps_max, eps_max]``,
    hoppings in ``V_range``.  ``D = 2 sqrt(m_0)`` with ``m_0`` the spin-averaged bath weight:
    MLSolver's energy unit, so that an input built from ``G0_iw`` has the database's
    descriptors."""
    from triqs_mlsolver.aim import AIMParams

    rng = np.random.default_rng([seed, i])
    U, beta = rng.uniform(1.0, 3.0), rng.uniform(5.0, 15.0)
    eps, V = np.sort(rng.uniform(-eps_max, eps_max, n_sites)), rng.uniform(*V_range, n_sites)
    mu = U / 2 + rng.uniform(-0.3, 0.3)
    mu_s, eps_s, V_s = np.array([mu, mu]), np.array([eps, eps]), np.array([V, V])
    if i % 3 == 1:
        h = rng.uniform(0.05, 0.3)
        mu_s = np.array([mu + h, mu - h])
    elif i % 3 == 2:
        d, r = rng.uniform(0.1, 0.4), rng.uniform(0.75, 1.25)
        eps_s, V_s = np.array([eps + d, eps - d]), np.array([V, V * r])
    D = 2 * np.sqrt(np.mean((V_s**2).sum(axis=1)))
    return AIMParams(U=U, mu=mu_s, beta=beta, eps_k=eps_s, V_k=V_s, D=D)


def hand_made_database(path, sample, *, n_samples, n_bath, cheap, grid):
    """Generate a database of the AIMs ``sample(i)`` (the sampler replaced), reference ED."""
    import importlib

    import pytest
    from triqs_mlsolver.database import generate, validate_config

    gen = importlib.import_module("triqs_mlsolver.database.generate")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(gen, "sample_params", lambda cfg, i: sample(i))
        generate(validate_config({
            "sampler": {"n_samples": n_samples, "n_bath": n_bath, "seed": 1},
            "solvers": {"cheap": list(cheap), "reference": "ed"},
            "grid": dict(grid)}), path, quiet=True)
    return path


def train_config(raw, over):
    """``validate_train_config`` of ``raw`` with the sections of ``over`` merged in."""
    from triqs_mlsolver.ml.train import validate_train_config

    raw = {sec: dict(body) for sec, body in raw.items()}
    for sec, body in over.items():
        raw.setdefault(sec, {}).update(body)
    return validate_train_config(raw)
