# SPDX-License-Identifier: Apache-2.0
"""Fit-residual features (session 22): ``Delta - Delta_fit`` of a fitted-bath cheap solver.

A small format-4 database of hand-made 6-site AIMs (spin-symmetric, a Zeeman field, a bath
per spin), cheap solvers Hubbard-I, ED-2 and ED-3e (3 sites fitted with 1/w weights: a
residual that is not zero), reference ED.  Checked: the residual of the training rows (fits
made again from the database) equals the one MLSolver reads from the solver's own fit,
against the definition computed here; zero for a bath the solver does not fit; the
particle-hole map; the spin rows; the spec's validation and its model-file record; a model
trained with the features predicts through ``correct`` and ``MLSolver`` as on its rows,
spin-flip equivariant.
"""

import dataclasses

import numpy as np
import pytest

pytest.importorskip("torch")

from helpers import hand_made_database, polarised_family_aim, train_config  # noqa: E402
from triqs_mlsolver.aim import AIMParams  # noqa: E402
from triqs_mlsolver.database import Database  # noqa: E402
from triqs_mlsolver.ml import fit_residual as fr  # noqa: E402
from triqs_mlsolver.ml import load_model  # noqa: E402
from triqs_mlsolver.ml.dataset import (  # noqa: E402
    FeatureSpec,
    add_fit_residuals,
    load_samples,
)
from triqs_mlsolver.ml.inference import correct, sample_from_solutions  # noqa: E402
from triqs_mlsolver.ml.representations import Representation, ph_image_params  # noqa: E402
from triqs_mlsolver.ml.train import TrainConfigError, train  # noqa: E402
from triqs_mlsolver.solvers import solve_aim  # noqa: E402

GRID = {"n_iw": 128, "n_tau": 21, "n_l": 16}
INPUTS = ["hubbard_i", "ed2", "ed3e"]
N_SAMPLES = 24


def hand_sample(i):
    """6 bath sites (:func:`helpers.polarised_family_aim`)."""
    return polarised_family_aim(i, seed=2026, n_sites=6, eps_max=1.2, V_range=(0.15, 0.35))


@pytest.fixture(scope="module")
def db_path(tmp_path_factory):
    return hand_made_database(tmp_path_factory.mktemp("fitres") / "fitres.h5", hand_sample,
                              n_samples=N_SAMPLES, n_bath=6, cheap=INPUTS, grid=GRID)


def _cfg(db, out, **over):
    return train_config({
        "data": {"database": str(db), "test_fraction": 0.2, "validation_fraction": 0.25},
        "features": {"kind": "legendre", "n": 16, "inputs": INPUTS, "base": "ed3e",
                     "spin_resolved": True, "fit_residual": ["ed3e"], "fit_residual_n": 4},
        "model": {"depth": 1, "width": 16, "n_ensemble": 2},
        "training": {"lr": 3e-3, "max_epochs": 30, "patience": 10, "seed": 5},
        "output": {"model": str(out), "checkpoint_every": 0},
    }, over)


@pytest.fixture(scope="module")
def model(db_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("fitres_model") / "m.safetensors"
    train(_cfg(db_path, out), log=lambda s: None)
    return load_model(out)


def _delta(eps, V, beta, n):
    wn = (2 * np.arange(n) + 1) * np.pi / beta
    return (np.asarray(V)[None] ** 2 / (1j * wn[:, None] - np.asarray(eps)[None])).sum(axis=1)


def test_database_rows_equal_the_solvers_own_fits_and_the_definition(db_path):
    """Training remakes each fit from the database (n_iw of the database); MLSolver reads the
    solve's own: equal to rounding, and both ``Delta - Delta_fit`` of that fit."""
    db = Database(db_path)
    n = 6
    for i in range(6):
        p = db.aim_params(i)
        sol = solve_aim("ed3e", p, **GRID)
        fit = sol.diagnostics["bath_fit"]
        spins = [0, 1] if not p.spin_symmetric else [0]
        inf = fr.rows_from_solutions(p, {"ed3e": sol}, ["ed3e"], n, spins)
        stored = fr.rows_from_database(db, [i] * len(spins), spins, ["ed3e"], n)
        for key in ("fitres", "fitres_o"):
            np.testing.assert_allclose(inf[key], stored[key], rtol=0, atol=1e-13)
        for r, s in enumerate(spins):
            R = (_delta(p.eps_k[s], p.V_k[s], p.beta, n)
                 - _delta(fit["eps_k"][s], fit["V_k"][s], p.beta, n)) / p.D
            np.testing.assert_allclose(inf["fitres"][r, 0], np.r_[R.real, R.imag], atol=1e-14)
            # a 3-site fit of a 6-site bath misses something, but not most of Delta
            d = np.abs(_delta(p.eps_k[s], p.V_k[s], p.beta, n)) / p.D
            assert 1e-9 < np.abs(R).max() < 0.5 * d.max()
        if not p.spin_symmetric:
            np.testing.assert_array_equal(inf["fitres_o"][0], inf["fitres"][1])


def test_a_bath_the_solver_does_not_fit_has_zero_residual():
    p = hand_sample(0)
    small = AIMParams(U=p.U, mu=p.mu, beta=p.beta, eps_k=p.eps_k[:, :3], V_k=p.V_k[:, :3],
                      D=p.D)
    sol = solve_aim("ed3e", small, **GRID)
    assert sol.diagnostics.get("bath_fit") is None
    out = fr.rows_from_solutions(small, {"ed3e": sol}, ["ed3e"], 4, [0])
    assert not out["fitres"].any() and not out["fitres_o"].any()


def test_a_continuous_delta_needs_the_frequencies():
    p = hand_sample(0)
    cont = AIMParams(U=p.U, mu=p.mu, beta=p.beta, Delta_iw=p.delta_iw(4), D=p.D)
    sol = solve_aim("ed3e", hand_sample(0), **GRID)
    with pytest.raises(ValueError, match="n_iw >= 6"):
        fr.rows_from_solutions(cont, {"ed3e": sol}, ["ed3e"], 6, [0])
    with pytest.raises(ValueError, match="'ed7e' is not a fitted-bath ED solver"):
        fr.fit_solver("ed7e")


def test_particle_hole_map_of_the_residual():
    """``eps -> -eps`` maps ``Delta(i w)`` to ``-conj(Delta(i w))``, so the image's residual
    with the mirrored fit is ``-conj(R)``: what ph_image_params does to the stored block."""
    p = hand_sample(2)
    sol = solve_aim("ed3e", p, **GRID)
    fit = sol.diagnostics["bath_fit"]
    rows = fr.rows_from_solutions(p, {"ed3e": sol}, ["ed3e"], 5, [0, 1])
    mirror = {"eps_k": [-np.asarray(e) for e in fit["eps_k"]], "V_k": fit["V_k"]}
    image = fr.residual(np.stack([_delta(-p.eps_k[s], p.V_k[s], p.beta, 5) for s in (0, 1)]),
                        p.beta, mirror, 5) / p.D
    mapped = ph_image_params({"U": np.array([p.U] * 2), "mu": p.mu.copy(),
                              "eps_k": p.eps_k.copy(), "V_k": p.V_k.copy(), **rows})
    for r in (0, 1):
        np.testing.assert_allclose(mapped["fitres"][r, 0], np.r_[image[r].real, image[r].imag],
                                   atol=1e-14)
        np.testing.assert_allclose(mapped["fitres_o"][r, 0],
                                   np.r_[image[1 - r].real, image[1 - r].imag], atol=1e-14)


def test_spec_validation_and_record():
    rep = Representation(kind="legendre", n=8)
    spec = FeatureSpec(rep, INPUTS, "ed3e", fit_residual=["ed3e"], fit_residual_n=5)
    d = spec.to_dict()
    assert d["fit_residual"] == ["ed3e"] and d["fit_residual_n"] == 5
    assert FeatureSpec.from_dict(d) == spec
    plain = FeatureSpec(rep, INPUTS, "ed3e")
    assert "fit_residual" not in plain.to_dict()  # files of models without it: unchanged
    assert FeatureSpec.from_dict(plain.to_dict()).fit_residual == []
    for kw, msg in (({"fit_residual": ["ipt"]}, "not a fitted-bath ED solver"),
                    ({"fit_residual": ["ed4e"]}, "must be one of the inputs"),
                    ({"fit_residual": "ed3e"}, "give a list"),
                    ({"fit_residual": ["ed3e", "ed3e"]}, "unique"),
                    ({"fit_residual": ["ed3e"], "fit_residual_n": 0}, "from 1 to 64")):
        with pytest.raises(ValueError, match=msg):
            FeatureSpec(rep, INPUTS, "ed3e", **kw)


def test_config_errors_name_the_key(db_path, tmp_path):
    with pytest.raises(TrainConfigError, match=r"\[features\].*'hubbard_i'"):
        _cfg(db_path, tmp_path / "x.safetensors",
             features={"fit_residual": ["hubbard_i"]})


def test_features_need_the_residuals(db_path):
    db = Database(db_path)
    rep = Representation(kind="legendre", n=16)
    spec = FeatureSpec(rep, INPUTS, "ed3e", spin_resolved=True, fit_residual=["ed3e"],
                       fit_residual_n=4)
    rows = load_samples(db, rep, [*INPUTS, "ed"], spin_resolved=True)
    with pytest.raises(ValueError, match="add_fit_residuals"):
        spec.features(rows)
    rows = add_fit_residuals(rows, db, spec)
    plain = dataclasses.replace(spec, fit_residual=[])
    X, X0 = spec.features(rows), plain.features(rows)
    assert X.shape[1] == X0.shape[1] + 2 * (2 * 4 + 1)  # own and other spin: Re, Im, log
    np.testing.assert_array_equal(X[:, :X0.shape[1]], X0)
    sym = ~rows.polarised
    np.testing.assert_array_equal(rows.params["fitres_o"][sym], rows.params["fitres"][sym])
    with pytest.raises(ValueError, match="particle-hole images"):
        add_fit_residuals(rows.ph_image(rep), db, spec)


def test_model_predicts_through_correct_as_on_its_rows(model, db_path):
    """The features MLSolver builds (the solver's own fit) equal the training rows' and the
    prediction is the same; swapping the spins of the input swaps the predicted spins."""
    db = Database(db_path)
    assert model.spec.fit_residual == ["ed3e"] and model.spec.fit_residual_n == 4
    for i in (0, 1, 2):
        p = db.aim_params(i)
        sols = {s: solve_aim(s, p, **GRID) for s in INPUTS}
        rows = sample_from_solutions(model, p, sols)
        stored = add_fit_residuals(load_samples(db, model.spec.representation, INPUTS,
                                                np.array([i]), spin_resolved=True),
                                   db, model.spec)
        np.testing.assert_allclose(model.spec.features(rows), model.spec.features(stored),
                                   rtol=0, atol=1e-9)
        if p.spin_symmetric:
            continue
        out = correct(model, p, sols, warn=False)
        np.testing.assert_allclose(out.G_tau, model.predict(stored).G_tau, rtol=0, atol=1e-9)
        q = AIMParams(U=p.U, mu=p.mu[::-1].copy(), beta=p.beta, eps_k=p.eps_k[::-1].copy(),
                      V_k=p.V_k[::-1].copy(), D=p.D)
        flipped = correct(model, q, {s: solve_aim(s, q, **GRID) for s in INPUTS}, warn=False)
        np.testing.assert_allclose(flipped.G_tau, out.G_tau[::-1], rtol=0, atol=1e-9)


def test_weights_stored_in_single_precision(model, db_path, tmp_path):
    """``[output] weights_dtype = "float32"`` (v11's file): half the weights' bytes, the same
    predictions to the rounding of the weights (~1e-7 relative, amplified by a few layers),
    recorded in the metadata and kept by a published copy; other values refused."""
    from triqs_mlsolver.ml.modelfile import publish_model, read_metadata, save_model

    db = Database(db_path)
    f64, f32 = tmp_path / "f64.safetensors", tmp_path / "f32.safetensors"
    save_model(model, f64, metadata=dict(model.metadata))
    save_model(model, f32, metadata=dict(model.metadata), weights_dtype="float32")
    m64, m32 = load_model(f64), load_model(f32)
    assert m32.metadata["weights_dtype"] == "float32" and "weights_dtype" not in m64.metadata
    n_w = sum(v.size for v in model.state_tensors().values())
    assert f64.stat().st_size - f32.stat().st_size >= 4 * n_w - 64  # (- the metadata key)
    rows = add_fit_residuals(load_samples(db, model.spec.representation, INPUTS,
                                          spin_resolved=True), db, model.spec)
    g64, g32 = m64.predict(rows).G_tau, m32.predict(rows).G_tau
    corr = np.abs(g64 - rows.G_tau["ed3e"]).max()
    assert 0 < np.abs(g32 - g64).max() <= 1e-5 * corr
    pub = publish_model(f32, tmp_path / "pub", "triqs_mlsolver_fitres_test_v1")
    assert read_metadata(pub, verify=False)["weights_dtype"] == "float32"
    np.testing.assert_array_equal(load_model(pub).predict(rows).G_tau, g32)
    with pytest.raises(TrainConfigError, match="weights_dtype"):
        _cfg(db_path, tmp_path / "x.safetensors", output={"weights_dtype": "float16"})
    with pytest.raises(ValueError, match="weights_dtype"):
        save_model(model, tmp_path / "y.safetensors", weights_dtype="int8")
