# SPDX-License-Identifier: Apache-2.0
"""Spin-resolved models (issue 18): one row per spin of a spin-polarised sample.

A small format-4 database of hand-made AIMs (3 bath sites; a third spin-symmetric, a third
with a Zeeman field on the level, a third with a different bath per spin), cheap solvers
Hubbard-I, ED-1 and ED-2, reference ED.  A spin-resolved model and a spin-symmetric one are
trained on it.  Checked: the rows and their features (zero polarisation features for a
spin-symmetric sample), spin-flip equivariance, spin-symmetric inputs, particle-hole images
of rows, that the model learned (below its base on the polarised training rows), MLSolver
answering a polarised input itself (and the spin-symmetric model handing it to the
fallback), the evaluation tables, and that model files without the key stay spin-symmetric
and predict as before.
"""

import dataclasses
import warnings

import numpy as np
import pytest

pytest.importorskip("torch")

from helpers import hand_made_database, polarised_family_aim, train_config  # noqa: E402
from triqs_mlsolver.aim import AIMParams  # noqa: E402
from triqs_mlsolver.database import Database  # noqa: E402
from triqs_mlsolver.errors import OutOfDomainError  # noqa: E402
from triqs_mlsolver.ml import load_model  # noqa: E402
from triqs_mlsolver.ml.dataset import FeatureSpec, SampleSet, load_samples  # noqa: E402
from triqs_mlsolver.ml.evaluate import evaluate, format_table  # noqa: E402
from triqs_mlsolver.ml.inference import correct, sample_from_solutions  # noqa: E402
from triqs_mlsolver.ml.representations import Representation  # noqa: E402
from triqs_mlsolver.ml.train import train  # noqa: E402
from triqs_mlsolver.mlsolver import MLSolver, solve_ml  # noqa: E402
from triqs_mlsolver.operators import n  # noqa: E402
from triqs_mlsolver.solvers import solve_aim  # noqa: E402
from triqs_mlsolver.validity import check_solution  # noqa: E402

GRID = {"n_iw": 128, "n_tau": 21, "n_l": 16}
INPUTS = ["hubbard_i", "ed1", "ed2"]
N_SAMPLES = 48


def hand_sample(i):
    """Sample ``i`` (3 sites; :func:`helpers.polarised_family_aim`)."""
    return polarised_family_aim(i, seed=2024, n_sites=3, eps_max=1.0, V_range=(0.2, 0.45))


@pytest.fixture(scope="module")
def db_path(tmp_path_factory):
    return hand_made_database(tmp_path_factory.mktemp("spin") / "spin.h5", hand_sample,
                              n_samples=N_SAMPLES, n_bath=3, cheap=INPUTS, grid=GRID)


def _cfg(db, out, **over):
    return train_config({
        "data": {"database": str(db), "test_fraction": 0.2, "validation_fraction": 0.25},
        "features": {"kind": "legendre", "n": 16, "inputs": INPUTS, "base": "ed2"},
        "model": {"depth": 1, "width": 32, "n_ensemble": 2},
        "training": {"lr": 3e-3, "max_epochs": 150, "patience": 40, "seed": 5},
        "output": {"model": str(out), "checkpoint_every": 0},
    }, over)


@pytest.fixture(scope="module")
def trained(db_path, tmp_path_factory):
    """``{name: (model, report, log)}`` on the same database: ``"resolved"`` (spin-resolved,
    base ED-2: its corrections are small enough for MLSolver's validity checks),
    ``"resolved_ed1"`` (spin-resolved, base ED-1, inputs as differences: a correction the
    48 samples can teach) and ``"symmetric"`` (spin-symmetric, base ED-2)."""
    out = {}
    folder = tmp_path_factory.mktemp("spin_models")
    for name, feat in (("resolved", {"spin_resolved": True}),
                       ("resolved_ed1", {"spin_resolved": True, "base": "ed1",
                                         "input_mode": "difference"}),
                       ("symmetric", {"spin_resolved": False})):
        lines = []
        model, report = train(_cfg(db_path, folder / f"{name}.safetensors", features=feat),
                              log=lines.append)
        out[name] = (load_model(folder / f"{name}.safetensors"), report, "\n".join(lines))
    return out


def _flip(obj):
    """The spin-flipped AIM or cheap solution (spin up <-> spin down)."""
    if isinstance(obj, AIMParams):
        return AIMParams(U=obj.U, mu=obj.mu[::-1].copy(), beta=obj.beta,
                         eps_k=obj.eps_k[::-1].copy(), V_k=obj.V_k[::-1].copy(), D=obj.D)
    return dataclasses.replace(obj, **{k: getattr(obj, k)[::-1].copy()
                                       for k in ("G_iw", "G_tau", "G_l", "Sigma_iw",
                                                 "density")})


def _solve(p, names=INPUTS):
    return {s: solve_aim(s, p, **GRID) for s in names}


# -- rows and features -------------------------------------------------------------------
def test_rows_one_per_spin_of_a_polarised_sample_one_for_a_symmetric_one(db_path):
    db = Database(db_path)
    assert db.polarised.sum() == 2 * N_SAMPLES // 3 and db.ok.all()
    rep = Representation(kind="legendre", n=16)
    solvers = [*INPUTS, "ed"]
    rows = load_samples(db, rep, solvers, spin_resolved=True)
    old = load_samples(db, rep, solvers)
    assert len(old.polarised_excluded) == db.polarised.sum()
    assert len(rows) == N_SAMPLES + db.polarised.sum()
    assert len(rows.polarised_excluded) == 0
    Gt = db.read("ed", "G_tau")
    for i in (1, 2):  # Zeeman, bath per spin
        r = np.flatnonzero(rows.index == i)
        assert len(r) == 2 and rows.spin[r].tolist() == [0, 1] and rows.polarised[r].all()
        np.testing.assert_array_equal(rows.G_tau["ed"][r], Gt[i])  # each row its own spin
        np.testing.assert_array_equal(rows.y_other["ed2"][r], rows.y["ed2"][r[::-1]])
        np.testing.assert_array_equal(rows.params["mu"][r], db.params["mu_s"][i])
        np.testing.assert_array_equal(rows.params["mu_o"][r], db.params["mu_s"][i][::-1])
        np.testing.assert_array_equal(rows.params["V_k_o"][r], db.params["V_k_s"][i][::-1])
    # a spin-symmetric sample: one row, exactly the spin-symmetric model's sample
    sym = np.flatnonzero(~rows.polarised)
    assert rows.index[sym].tolist() == old.index.tolist()
    for k in old.params:
        np.testing.assert_array_equal(rows.params[k][sym], old.params[k])
    for s in solvers:
        np.testing.assert_array_equal(rows.y[s][sym], old.y[s])
        np.testing.assert_array_equal(rows.y_other[s][sym], old.y[s])
    # the features: the spin-symmetric ones of the own spin, then what the other spin adds
    spec = FeatureSpec(rep, INPUTS, "ed2", ["U/D", "eps/D", "log(beta*D)", "m0", "m1", "m2",
                                             "m3"], spin_resolved=True)
    plain = dataclasses.replace(spec, spin_resolved=False)
    X, X0 = spec.features(rows), plain.features(old)
    mask = spec.polarisation_mask(X.shape[1])
    assert mask.sum() == (16 + 1) + 1 + 4  # other-own base block, dmu/D, dm0..dm3
    np.testing.assert_array_equal(X[sym][:, ~mask], X0)
    assert not X[sym][:, mask].any()  # exact zeros: other minus own of equal spins
    assert (np.abs(X[rows.polarised][:, mask]).max(axis=1) > 1e-3).all()
    with pytest.raises(ValueError, match="spin_resolved=True"):
        spec.features(old)


def test_inference_rows_match_the_database_rows(trained, db_path):
    """correct() on fresh cheap solves of a stored polarised sample: the rows, features and
    predictions of training (the continuous-Delta path of MLSolver: the domain check)."""
    model = trained["resolved"][0]
    db = Database(db_path)
    for i in (1, 2):
        p = db.aim_params(i)
        sols = _solve(p)
        rows = sample_from_solutions(model, p, sols)
        stored = load_samples(db, model.spec.representation, INPUTS, np.array([i]),
                              spin_resolved=True)
        np.testing.assert_allclose(model.spec.features(rows), model.spec.features(stored),
                                   rtol=0, atol=1e-9)
        out = correct(model, p, sols, warn=False)
        np.testing.assert_allclose(out.G_tau, model.predict(stored).G_tau, rtol=0, atol=1e-9)
        assert not out.out_of_domain


def test_feature_spec_files_without_the_key_are_spin_symmetric():
    rep = Representation(kind="legendre", n=16)
    spec = FeatureSpec(rep, INPUTS, "ed2", ["U/D"], spin_resolved=True)
    d = spec.to_dict()
    assert d["spin_resolved"] is True and FeatureSpec.from_dict(d) == spec
    plain = dataclasses.replace(spec, spin_resolved=False).to_dict()
    assert "spin_resolved" not in plain  # files of spin-symmetric models are as before
    assert FeatureSpec.from_dict(plain).spin_resolved is False
    with pytest.raises(ValueError, match="spin_resolved"):
        FeatureSpec(rep, INPUTS, "ed2", spin_resolved="yes")


# -- symmetries ------------------------------------------------------------------------
def test_spin_flip_swaps_the_predicted_spins(trained, db_path):
    model = trained["resolved"][0]
    p = Database(db_path).aim_params(2)  # a different bath per spin and ...
    p = AIMParams(U=p.U, mu=p.mu + np.array([0.05, -0.05]), beta=p.beta, eps_k=p.eps_k,
                  V_k=p.V_k, D=p.D)  # ... a field
    sols = _solve(p)
    out = correct(model, p, sols, warn=False)
    flip = correct(model, _flip(p), {s: _flip(v) for s, v in sols.items()}, warn=False)
    assert np.abs(out.G_tau[0] - out.G_tau[1]).max() > 1e-2  # the spins differ ...
    np.testing.assert_array_equal(flip.G_tau, out.G_tau[::-1])  # ... and swap exactly
    np.testing.assert_array_equal(flip.G_l, out.G_l[::-1])
    np.testing.assert_array_equal(flip.G_tau_spread, out.G_tau_spread[::-1])
    # the rows of the flipped input are the rows of the input, swapped
    a = sample_from_solutions(model, p, sols)
    b = sample_from_solutions(model, _flip(p), {s: _flip(v) for s, v in sols.items()})
    np.testing.assert_array_equal(model.spec.features(b), model.spec.features(a)[::-1])


def test_spin_symmetric_input_gives_equal_spins(trained, db_path):
    model = trained["resolved"][0]
    p = Database(db_path).aim_params(0)
    assert p.spin_symmetric
    sols = _solve(p)
    s = sample_from_solutions(model, p, sols)
    assert len(s) == 1  # one row
    X = model.spec.features(s)
    assert not X[:, model.spec.polarisation_mask(X.shape[1])].any()
    out = correct(model, p, sols, warn=False)
    np.testing.assert_array_equal(out.G_tau[0], out.G_tau[1])
    # the same AIM given per spin, the sites of spin down in another order: two rows whose
    # features agree and that predict the same function for both spins
    perm = [2, 0, 1]
    q = AIMParams(U=p.U, mu=p.mu, beta=p.beta, D=p.D,
                  eps_k=np.array([p.eps_k[0], p.eps_k[1][perm]]),
                  V_k=np.array([p.V_k[0], p.V_k[1][perm]]))
    assert not q.spin_symmetric
    sols_q = _solve(q)
    two = sample_from_solutions(model, q, sols_q)
    assert len(two) == 2
    Xq = model.spec.features(two)
    np.testing.assert_allclose(Xq, np.repeat(X, 2, axis=0), rtol=0, atol=1e-9)
    out_q = correct(model, q, sols_q, warn=False)
    np.testing.assert_allclose(out_q.G_tau, out.G_tau, rtol=0, atol=1e-9)


def test_particle_hole_images_of_rows_map_both_spins(trained, db_path):
    model = trained["resolved"][0]
    spec, rep = model.spec, model.spec.representation
    p = Database(db_path).aim_params(1)  # Zeeman
    sols = _solve(p)
    rows = sample_from_solutions(model, p, sols)
    # the image AIM (mu -> U - mu, eps -> -eps for both spins) with G(tau) -> G(beta - tau)
    img_p = AIMParams(U=p.U, mu=p.U - p.mu, beta=p.beta, eps_k=-p.eps_k, V_k=p.V_k, D=p.D)
    sign = (-1.0) ** np.arange(GRID["n_l"])
    img_sols = {s: dataclasses.replace(v, G_tau=v.G_tau[:, ::-1].copy(), G_l=v.G_l * sign)
                for s, v in sols.items()}
    want = sample_from_solutions(model, img_p, img_sols)
    got = rows.ph_image(rep)
    assert got.ph.all() and got.spin.tolist() == [0, 1]
    for k in ("mu", "mu_o", "eps_k", "eps_k_o", "V_k", "V_k_o"):
        np.testing.assert_allclose(got.params[k], want.params[k], rtol=0, atol=1e-14)
    np.testing.assert_allclose(spec.features(got), spec.features(want), rtol=0, atol=1e-12)
    np.testing.assert_allclose(spec.target(got, spec.base), spec.target(want, spec.base),
                               rtol=0, atol=1e-12)
    # the training rows were doubled by the images
    sp = trained["resolved"][1]["spin"]
    assert sp["train_rows_augmented"] == 2 * sp["train"]["rows"]


# -- training, evaluation --------------------------------------------------------------
def test_training_reports_rows_and_polarised_samples(trained, db_path):
    db = Database(db_path)
    n_pol = int(db.polarised.sum())
    model, report, log = trained["resolved"]
    sp = report["spin"]
    assert model.spec.spin_resolved and model.metadata["feature_spec"]["spin_resolved"]
    assert sp["spin_resolved"] and sp["polarised_excluded"] == 0
    assert sum(sp[k]["samples"] for k in ("train", "validation", "test")) == N_SAMPLES
    assert sum(sp[k]["polarised_samples"] for k in ("train", "validation", "test")) == n_pol
    for k in ("train", "validation", "test"):
        assert sp[k]["rows"] == sp[k]["samples"] + sp[k]["polarised_samples"]
        # both rows of a sample are in the same part
        assert sp[k]["samples"] == len(report["split"][k])
    assert "spin-resolved model" in log and f"{sp['train']['rows']} rows" in log
    dom = report["domain"]
    for key in ("dmu/D", "dm0", "dm1", "dm2", "dm3"):
        lo, hi = dom[key]
        assert lo == -hi and hi > 0.01  # both spins' rows: symmetric ranges
    # the spin-symmetric model leaves the polarised samples out and says so
    _, rep_s, log_s = trained["symmetric"]
    assert rep_s["spin"] == {"spin_resolved": False, "polarised_excluded": n_pol,
                             "summary": rep_s["spin"]["summary"]}
    assert f"{n_pol} spin-polarised sample(s) left out" in log_s
    assert "dmu/D" not in rep_s["domain"]
    assert "spin_resolved" not in trained["symmetric"][0].metadata["feature_spec"]


@pytest.mark.parametrize("name", ["resolved_ed1", "resolved"])
def test_learned_below_its_base_on_polarised_samples(trained, db_path, name):
    """On the polarised training rows the model is below its base (measured: 0.05 x ED-1,
    0.79 x ED-2); on the unseen polarised rows the ED-1 model still is (0.43 x), the ED-2
    model, whose base is almost exact here, is not asked to be."""
    model, report, _ = trained[name]
    db = Database(db_path)
    base = model.spec.base
    limits = {"resolved_ed1": (0.3, 0.8), "resolved": (0.9, None)}[name]
    for parts, limit in ((["train"], limits[0]), (["validation", "test"], limits[1])):
        idx = np.concatenate([report["split"][k] for k in parts])
        rows = load_samples(db, model.spec.representation, [*INPUTS, "ed"], idx,
                            spin_resolved=True)
        pol = rows.subset(np.flatnonzero(rows.polarised))
        assert len(pol) >= 10
        pred = model.predict(pol)

        def rms(G, pol=pol):
            return np.sqrt(((G - pol.G_tau["ed"]) ** 2).mean())

        if limit is not None:
            assert rms(pred.G_tau) < limit * rms(pol.G_tau[base]), (name, parts)


def test_evaluation_per_spin_with_polarised_bins(trained, db_path):
    model = trained["resolved"][0]
    res = evaluate(model, Database(db_path), krr=False, log=None, training_database=db_path)
    s = res.samples
    assert s.spin_resolved and res.info["rows"]["rows"] == len(s)
    assert res.bins["polarised"].sum() + res.bins["spin-symmetric"].sum() == len(s)
    assert res.bins["polarised"].sum() == 2 * res.info["rows"]["polarised_samples"]
    # the cheap solvers are compared per spin, with the reference's function of that spin
    np.testing.assert_array_equal(res.G_tau["ed2"], s.G_tau["ed2"])
    i = np.flatnonzero(s.polarised)[0]
    spin = s.spin[i]
    np.testing.assert_array_equal(s.G_tau["ed"][i],
                                  Database(db_path).read("ed", "G_tau")[s.index[i], spin])
    for m in ("model", "ridge", "ed2"):
        assert "polarised" in res.table["G(tau)"][m]
    assert "(rows)" in format_table(res)
    # a spin-symmetric model is evaluated on the spin-symmetric samples only
    res_s = evaluate(trained["symmetric"][0], Database(db_path), baselines=False, log=None)
    assert "polarised" not in res_s.bins and res_s.info["polarised_excluded"] > 0


# -- MLSolver --------------------------------------------------------------------------
def _mlsolver(model, p, n_iw=256):
    S = MLSolver(beta=p.beta, gf_struct=[("up", 1), ("down", 1)], n_iw=n_iw, n_tau=201,
                 n_l=30, model=model)
    g0 = p.g0_iw(n_iw)
    for s, name in enumerate(("up", "down")):
        S.G0_iw[name].data[:, 0, 0] = g0[s]
    return S


def test_mlsolver_answers_polarised_input_with_a_spin_resolved_model(trained, db_path):
    model, report, _ = trained["resolved"]
    db = Database(db_path)
    i = next(j for j in report["split"]["train"] if j % 3 == 1)  # a Zeeman sample
    p = db.aim_params(i)
    h_int = p.U * n("up", 0) * n("down", 0)
    S = _mlsolver(model, p)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        S.solve(h_int=h_int, fallback="raise")
    rep = S.ml_report
    assert not rep["fallback_used"] and rep["out_of_domain"] == [] and rep["invalid"] == []
    Gt = np.stack([S.G_tau[b].data[:, 0, 0].real for b in ("up", "down")])
    assert np.abs(Gt[0] - Gt[1]).max() > 0.05 and abs(S.density[0] - S.density[1]) > 0.05
    assert check_solution(S.solution, U=p.U, g0_iw=p.g0_iw(256)) == []
    ref = solve_aim("ed", p, n_iw=256, n_tau=201, n_l=30)
    assert np.abs(Gt - ref.G_tau.real).max() < 5e-3  # each spin close to ED
    # the spread guard takes the larger spin
    assert rep["spread_max"] == pytest.approx(
        max(np.abs(S.G_tau_spread[b].data).max() for b in ("up", "down")), rel=1e-12)
    # a field far beyond the trained polarisations is flagged by its dmu/D
    far = AIMParams(U=p.U, mu=p.mu.mean() + np.array([1.0, -1.0]) * p.D, beta=p.beta,
                    eps_k=p.eps_k, V_k=p.V_k, D=p.D)
    with pytest.raises(OutOfDomainError, match="dmu/D"):
        _mlsolver(model, far).solve(h_int=h_int, fallback="raise")
    # the spin-symmetric model hands the same input to the fallback, as before
    S2 = _mlsolver(trained["symmetric"][0], p)
    with pytest.raises(OutOfDomainError, match="spin-polarised input"):
        S2.solve(h_int=h_int, fallback="raise")
    sol = solve_ml(p, n_iw=64, n_tau=21, n_l=16, model=trained["symmetric"][0],
                   exact_max_bath=0)  # the model, not the exact path of a small bath
    assert sol.diagnostics["fallback_used"]
    assert any("spin-polarised" in r for r in sol.diagnostics["out_of_domain"])


# -- old model files -------------------------------------------------------------------
#: triqs_mlsolver_bethe_v5 on a Bethe input (U = 1.5, mu = 0.4, beta = 10, n_iw = 256,
#: fallback 'none'): G_tau[up] at tau points 0, 30, 100, 170, 200 of 201 and G_l[up][:5],
#: computed with the code before spin-resolved models existed (bit-identical after).
BETHE_V5_G_TAU = [-0.5815589981610028, -0.25683101107316464, -0.14582405438382384,
                  -0.2211581474690556, -0.4184410018389972]
BETHE_V5_G_L = [-2.2173945218340805, 0.21805569482999765, -0.8573778405679988,
                0.0954241935624212, -0.2169383727974818]


def test_shipped_model_is_spin_symmetric_and_predicts_as_before():
    from triqs_mlsolver.gf.transforms import matsubara_freqs, semicircle_g

    model = load_model("triqs_mlsolver_bethe_v5")
    assert model.spec.spin_resolved is False
    assert "spin_resolved" not in model.metadata["feature_spec"]
    iw = matsubara_freqs(10.0, 256)
    p = AIMParams(U=1.5, mu=0.4, beta=10.0, Delta_iw=0.25 * semicircle_g(iw, 1.0))
    sol = solve_ml(p, n_iw=256, n_tau=201, n_l=30, model=model, fallback="none", warn=False)
    np.testing.assert_allclose(sol.G_tau[0, [0, 30, 100, 170, 200]], BETHE_V5_G_TAU, rtol=0,
                               atol=1e-12)
    np.testing.assert_allclose(sol.G_l[0, :5], BETHE_V5_G_L, rtol=0, atol=1e-11)
    np.testing.assert_array_equal(sol.G_tau[0], sol.G_tau[1])
    # a spin-polarised input to it goes to the fallback
    q = AIMParams(U=1.5, mu=[0.5, 0.3], beta=10.0, Delta_iw=0.25 * semicircle_g(iw, 1.0))
    with pytest.raises(OutOfDomainError, match="spin-polarised input"):
        solve_ml(q, n_iw=256, n_tau=201, n_l=30, model=model, fallback="raise")


def test_concatenating_rows_and_samples_is_refused(db_path):
    db = Database(db_path)
    rep = Representation(kind="legendre", n=16)
    a = load_samples(db, rep, ["ed2"], np.array([0, 1]), spin_resolved=True)
    b = load_samples(db, rep, ["ed2"], np.array([0]))
    assert len(SampleSet.concatenate([a, a])) == 6 and a.sample_count() == 2
    with pytest.raises(ValueError, match="spin-resolved"):
        SampleSet.concatenate([a, b])


def test_samples_the_guard_never_gives_the_model_are_left_out(db_path, tmp_path):
    """[data] disagreement / max_disagreement: a sample whose two named cheap solvers
    disagree by more than the limit (RMS of G(tau), the larger spin: MLSolver's guard) is in
    no part of the split, is recorded and counted; checked against the stored G(tau) of
    each spin read directly from the database."""
    from triqs_mlsolver.database.reader import disagreement_rms
    from triqs_mlsolver.ml.train import TrainConfigError, _fingerprint, prepare_data

    db = Database(db_path)
    ga, gb = db.read("ed1", "G_tau"), db.read("ed2", "G_tau")  # (samples, spin, tau)
    per_spin = np.array([[disagreement_rms(ga[i, s], gb[i, s], db.tau_over_beta)
                          for s in range(2)] for i in range(N_SAMPLES)])
    worst = per_spin.max(axis=1)
    limit = float(np.median(worst))
    expected = np.flatnonzero(worst > limit)
    # the larger spin decides: some polarised samples are excluded by their spin-down row
    assert any(per_spin[i, 0] <= limit < per_spin[i, 1] for i in range(N_SAMPLES))
    cfg = _cfg(db_path, tmp_path / "m.safetensors",
               data={"disagreement": ["ed1", "ed2"], "max_disagreement": limit},
               features={"spin_resolved": True})
    _, _, _, split, parts = prepare_data(cfg)
    np.testing.assert_array_equal(split["disagreement_excluded"], expected)
    kept = np.concatenate([split[k] for k in ("train", "validation", "test")])
    assert not np.isin(kept, expected).any() and len(kept) == N_SAMPLES - len(expected)
    assert "ed1 vs ed2 RMS of G(tau) <=" in split["candidates"]
    for part in parts.values():
        assert not np.isin(part.index, expected).any()
    # off (the default): every sample, nothing recorded, the fingerprint of older runs
    plain = _cfg(db_path, tmp_path / "m.safetensors", features={"spin_resolved": True})
    _, _, _, split0, _ = prepare_data(plain)
    assert "disagreement_excluded" not in split0
    assert sum(len(split0[k]) for k in ("train", "validation", "test")) == N_SAMPLES
    older = {sec: dict(body) for sec, body in plain.items()}
    for key in ("disagreement", "max_disagreement"):
        older["data"].pop(key)
    assert _fingerprint(plain, "h") == _fingerprint(older, "h") != _fingerprint(cfg, "h")
    # evaluation leaves them out by the model's own setting (they are samples it never saw)
    short = _cfg(db_path, tmp_path / "m.safetensors",
                 data={"disagreement": ["ed1", "ed2"], "max_disagreement": limit},
                 features={"spin_resolved": True}, training={"max_epochs": 2})
    train(short, log=None)
    model = load_model(tmp_path / "m.safetensors")
    res = evaluate(model, db, baselines=False, krr=False, log=None)
    assert res.info["disagreement_excluded"] == len(expected)
    np.testing.assert_array_equal(np.unique(res.samples.index), np.sort(split["test"]))
    every = evaluate(model, db, baselines=False, krr=False, log=None, max_disagreement=0.0)
    assert every.info["disagreement_excluded"] == 0
    np.testing.assert_array_equal(np.unique(every.samples.index),
                                  np.sort(np.concatenate([split["test"], expected])))
    # bad settings are named with the fix
    for data, match in (({"disagreement": ["ed1", "ed3"], "max_disagreement": 1e-3},
                         "two different solvers of \\[features\\] inputs"),
                        ({"disagreement": ["ed1", "ed1"], "max_disagreement": 1e-3},
                         "two different solvers"),
                        ({"disagreement": ["ed1"], "max_disagreement": 1e-3},
                         "two different solvers"),
                        ({"disagreement": ["ed1", "ed2"]}, "without max_disagreement"),
                        ({"max_disagreement": -1.0}, "max_disagreement = -1.0")):
        with pytest.raises(TrainConfigError, match=match):
            _cfg(db_path, tmp_path / "m.safetensors", data=data)


def test_spin_record_counts_samples_of_several_databases(db_path):
    """The spin record counts one spin-up row per sample: the sample numbers of two
    databases repeat, and counting distinct numbers undercounted (session 20)."""
    from triqs_mlsolver.ml.train import spin_record

    db = Database(db_path)
    spec = FeatureSpec(Representation(kind="legendre", n=16), INPUTS, "ed2",
                       ["U/D", "eps/D", "log(beta*D)"], spin_resolved=True)
    one = load_samples(db, spec.representation, [*INPUTS, "ed"], spin_resolved=True)
    two = SampleSet.concatenate([one, one])  # as if from two databases with equal numbering
    n_pol = int(db.polarised.sum())
    rec = spin_record(spec, {"train": two, "validation": one, "test": one},
                      {"polarised_excluded": []}, [], train_rows=2 * len(two))
    assert rec["train"] == {"samples": 2 * N_SAMPLES, "polarised_samples": 2 * n_pol,
                            "rows": 2 * (N_SAMPLES + n_pol)}
    assert rec["validation"]["samples"] == N_SAMPLES
