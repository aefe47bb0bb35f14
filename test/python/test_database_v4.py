# SPDX-License-Identifier: Apache-2.0
"""Database format 4: spin-polarised AIMs and baths of different sizes in one file.

A small database with a hand-made spin-polarised sample and a sample of fewer bath sites
than ``K``: per-spin parameters and ``n_bath`` round-trip; padding changes no Green's
function, hash or descriptor; a format-3 file reads with derived per-spin parameters,
is extended, resumed and upgraded to format 4 bit for bit; the value rules catch padding
and legacy/per-spin mismatches; training leaves polarised samples out and counts them;
the visited-AIM sampler fits each spin of a polarised visit on its own.
"""

import hashlib
import importlib
import json
import shutil
import warnings

import h5py
import numpy as np
import pytest
from helpers import assert_same_h5_data
from triqs_mlsolver.aim import AIMParams, fit_bath
from triqs_mlsolver.cli.main import main as cli_main
from triqs_mlsolver.database import Database, check_schema, generate, validate_config
from triqs_mlsolver.database import integrity as integ
from triqs_mlsolver.database.config import ConfigError
from triqs_mlsolver.database.generate import upgrade_database
from triqs_mlsolver.database.integrity import DatabaseValueError
from triqs_mlsolver.database.sampler import sample_arrays, sample_params, visited_samples
from triqs_mlsolver.database.schema import ADDED, FORMAT_VERSION, LEGACY_PARAMS, SCHEMA
from triqs_mlsolver.database.visited import record_visit
from triqs_mlsolver.gf.transforms import matsubara_freqs, semicircle_g
from triqs_mlsolver.ml.dataset import load_samples
from triqs_mlsolver.ml.representations import Representation, descriptors, ph_image_params
from triqs_mlsolver.solvers import solve_aim

NEW = ("mu_s", "eps_k_s", "V_k_s", "n_bath")
GRID = {"n_iw": 32, "n_tau": 11, "n_l": 8}

#: Sample 1: spin-polarised (a field on the level and a different bath per spin).
POLARISED = AIMParams(U=2.0, mu=np.array([1.2, 0.8]), beta=5.0,
                      eps_k=np.array([[-0.6, 0.1, 0.7], [-0.5, 0.2, 0.6]]),
                      V_k=np.array([[0.3, 0.25, 0.3], [0.35, 0.2, 0.3]]))
#: Sample 2: two bath sites in a K = 3 database.
SHORT = AIMParams(U=1.5, mu=0.9, beta=2.0, eps_k=[-0.5, 0.4], V_k=[0.4, 0.35])


def _cfg(n=4, chunk=2, seed=7):
    return validate_config({
        "sampler": {"n_samples": n, "n_bath": 3, "beta": [2.0, 5.0], "seed": seed},
        "solvers": {"cheap": ["hubbard_i", "ed1"], "reference": "ed"},
        "grid": dict(GRID), "output": {"chunk_size": chunk}})


def _as_v3(src, dst):
    """``dst``: ``src`` as the format-3 writer left it (no per-spin parameters, sealed)."""
    shutil.copy(src, dst)
    with h5py.File(dst, "a") as f:
        for key in NEW:
            del f[f"params/{key}"]
        f.attrs["format_version"] = 3
        integ.seal(f)
    return dst


def _edit(path, dataset, where, value):
    """Write ``value`` into ``dataset[where]`` and recompute the checksums (as a writer
    that produced the value itself would have)."""
    with h5py.File(path, "a") as f:
        a = f[dataset][()]
        a[where] = value
        f[dataset][...] = a
        integ.seal(f)


@pytest.fixture(scope="module")
def db4(tmp_path_factory):
    """A format-4 database of 4 samples: 0 and 3 from the seed sampler (3 sites), 1
    :data:`POLARISED`, 2 :data:`SHORT` (padded to 3 sites)."""
    gen = importlib.import_module("triqs_mlsolver.database.generate")
    real = gen.sample_params
    hand = {1: POLARISED, 2: SHORT}
    path = tmp_path_factory.mktemp("v4") / "db4.h5"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(gen, "sample_params", lambda cfg, i: hand.get(i) or real(cfg, i))
        generate(_cfg(), path, quiet=True)
    return path


@pytest.fixture(scope="module")
def seed_db(tmp_path_factory):
    """A plain format-4 database of 3 seed samples and its format-3 twin."""
    folder = tmp_path_factory.mktemp("v3")
    path = folder / "seed4.h5"
    generate(_cfg(n=3), path, quiet=True)
    return path, _as_v3(path, folder / "seed3.h5")


# -- the stored arrays ------------------------------------------------------------------------
def test_sample_arrays_are_legacy_plus_per_spin_padded_to_K():
    a = sample_arrays(POLARISED, 5)
    assert a["n_bath"] == 3 and a["mu"] == 1.2
    np.testing.assert_array_equal(a["mu_s"], [1.2, 0.8])
    np.testing.assert_array_equal(a["eps_k_s"][:, :3], POLARISED.eps_k)
    np.testing.assert_array_equal(a["V_k_s"][:, :3], POLARISED.V_k)
    assert not a["eps_k_s"][:, 3:].any() and not a["V_k_s"][:, 3:].any()
    np.testing.assert_array_equal(a["eps_k"], a["eps_k_s"][0])
    np.testing.assert_array_equal(a["V_k"], a["V_k_s"][0])
    # the sign of V_k is a gauge: stored as |V_k|
    neg = AIMParams(U=1.0, mu=0.5, beta=2.0, eps_k=[0.1, -0.1], V_k=[-0.3, 0.3])
    np.testing.assert_array_equal(sample_arrays(neg, 2)["V_k_s"], [[0.3, 0.3]] * 2)
    with pytest.raises(ValueError, match=r"3 bath sites, more than the database's K = 2"):
        sample_arrays(POLARISED, 2)
    cont = AIMParams(U=1.0, mu=0.5, beta=2.0, Delta_iw=np.zeros(8, complex))
    with pytest.raises(ValueError, match="discrete bath"):
        sample_arrays(cont, 3)


def test_schema_records_the_new_datasets_with_derived_values():
    assert FORMAT_VERSION == 4
    for key in NEW:
        ver, fill = ADDED[f"params/{key}"]
        assert ver == 4 and f"params/{key}" in SCHEMA and callable(fill)
    legacy = {"U": np.ones(2), "mu": np.array([0.5, 0.7]), "beta": np.ones(2),
              "D": np.ones(2), "eps_k": np.arange(6.0).reshape(2, 3),
              "V_k": np.ones((2, 3))}
    assert ADDED["params/mu_s"][1](legacy).tolist() == [[0.5, 0.5], [0.7, 0.7]]
    assert ADDED["params/eps_k_s"][1](legacy).shape == (2, 2, 3)
    assert ADDED["params/n_bath"][1](legacy).tolist() == [3, 3]


# -- a format-4 database ----------------------------------------------------------------------
def test_per_spin_params_and_n_bath_round_trip(db4):
    sizes = check_schema(db4)
    assert sizes == {"N": 4, "K": 3, "T": 11, "L": 8}
    db = Database(db4)
    assert db.format_version == 4 and db.ok.all()
    assert db.verify() > 0  # every checksum and every value rule
    p = db.params
    np.testing.assert_array_equal(p["n_bath"], [3, 3, 2, 3])
    assert p["n_bath"].dtype == np.int64
    np.testing.assert_array_equal(db.polarised, [False, True, False, False])
    # the hand-made samples come back as they were given
    for i, aim in ((1, POLARISED), (2, SHORT)):
        back = db.aim_params(i)
        np.testing.assert_array_equal(back.mu, aim.mu)
        np.testing.assert_array_equal(back.eps_k, aim.eps_k)
        np.testing.assert_array_equal(back.V_k, aim.V_k)
        assert (back.U, back.beta, back.n_bath) == (aim.U, aim.beta, aim.n_bath)
    assert not p["eps_k_s"][2, :, 2:].any() and not p["V_k_s"][2, :, 2:].any()
    for legacy, per_spin in (("mu", "mu_s"), ("eps_k", "eps_k_s"), ("V_k", "V_k_s")):
        np.testing.assert_array_equal(p[legacy], p[per_spin][:, 0])
    # the seed samples are spin symmetric and the same AIMs the sampler draws
    seed = sample_params(_cfg(), 3)
    np.testing.assert_array_equal(db.aim_params(3).eps_k, seed.eps_k)
    # the polarised sample's reference G differs between the spins, the others' does not
    G = db.read("ed", "G_tau")
    assert np.abs(G[1, 0] - G[1, 1]).max() > 0.1
    assert np.abs(G[[0, 2, 3], 0] - G[[0, 2, 3], 1]).max() < 1e-12
    with pytest.raises(IndexError, match="out of range"):
        db.aim_params(4)


def test_padding_changes_no_green_function_and_no_hash(db4):
    db = Database(db4)
    # the 2-site sample and the same AIM with a decoupled third site (V = 0): the same G
    padded = AIMParams(U=SHORT.U, mu=SHORT.mu, beta=SHORT.beta,
                       eps_k=db.params["eps_k_s"][2], V_k=db.params["V_k_s"][2])
    sol = solve_aim("ed", padded, **GRID)
    np.testing.assert_allclose(sol.G_tau, db.read("ed", "G_tau")[2], rtol=0, atol=1e-12)
    h = db.sample_hashes()
    assert len(np.unique(h)) == 4
    # the same AIM in a database of K = 2 has the same hash
    one = {k: np.asarray(v)[[2]] for k, v in db.params.items()}
    for k in ("eps_k", "V_k"):
        one[k] = one[k][:, :2]
    for k in ("eps_k_s", "V_k_s"):
        one[k] = one[k][:, :, :2]
    assert integ.sample_hashes(one)[0] == h[2]
    # a spin-symmetric sample with every site used keeps its format-3 hash
    legacy = {k: db.params[k] for k in LEGACY_PARAMS}
    old = integ.sample_hashes(legacy)
    assert h[0] == old[0] and h[3] == old[3]
    # a polarised sample is not its spin up (the down spin enters its hash)
    assert h[1] != old[1]


def test_summary_reports_bath_sizes_and_polarised_samples(db4, capsys):
    assert cli_main(["inspect", str(db4), "--check"]) == 0
    out = capsys.readouterr().out
    assert "bath sites: 2 (1), 3 (3);  spin-polarised samples: 1" in out
    assert "schema ok (format v4)" in out


# -- format 3 files ---------------------------------------------------------------------------
def test_v3_file_reads_with_derived_per_spin_params(seed_db):
    v4, v3 = seed_db
    check_schema(v3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # checksums: no "unchecked" warning
        old = Database(v3)
    new = Database(v4)
    assert old.format_version == 3 and old.checksums
    with h5py.File(v3, "r") as f:
        assert not set(NEW) & set(f["params"])
    for k in (*LEGACY_PARAMS, *NEW):
        np.testing.assert_array_equal(old.params[k], new.params[k])
        assert old.params[k].dtype == new.params[k].dtype, k
    assert not old.polarised.any()
    np.testing.assert_array_equal(old.sample_hashes(), new.sample_hashes())
    assert old.verify() > 0


def test_v3_file_upgrades_to_v4_bit_for_bit(seed_db, tmp_path, capsys):
    v4, v3 = seed_db
    up = tmp_path / "up.h5"
    assert cli_main(["inspect", str(v3), "--upgrade", str(up)]) == 0
    assert "format v4" in capsys.readouterr().out
    db = Database(up)
    assert db.format_version == 4 and db.checksums
    assert json.loads(db.attrs["upgraded_from"])["format_version"] == 3
    with h5py.File(up, "r") as f:
        names = []
        f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        for n in names:  # every checksum was recomputed and holds
            assert f[n].attrs["sha256"] == integ.array_sha256(f[n][()]), n
    assert db.verify() == len(names)
    check_schema(up)
    assert_same_h5_data(up, v4)
    with pytest.raises(ConfigError, match="nothing to upgrade"):
        upgrade_database(v4, tmp_path / "again.h5")
    # a damaged v3 file is refused, not blessed with new checksums
    bad = shutil.copy(v3, tmp_path / "bad3.h5")
    with h5py.File(bad, "a") as f:
        f["params/U"][0] = 99.0
    with pytest.raises(integ.DatabaseIntegrityError, match="params/U"):
        upgrade_database(bad, tmp_path / "bad4.h5")
    assert not (tmp_path / "bad4.h5").exists()


def test_extend_and_resume_from_v3_give_the_v4_database(seed_db, tmp_path):
    _, v3 = seed_db
    ref = tmp_path / "ref5.h5"
    generate(_cfg(n=5), ref, quiet=True)
    grown = tmp_path / "grown.h5"
    generate(_cfg(n=5), grown, quiet=True, extend=v3)
    assert Database(grown).format_version == 4
    assert_same_h5_data(grown, ref)
    # a parts folder whose chunk a format-3 run wrote resumes into the same file
    out = tmp_path / "resumed.h5"
    generate(_cfg(n=5), out, quiet=True, max_chunks=1)
    (chunk,) = (tmp_path / "resumed.h5.parts").glob("chunk-*.h5")
    _as_v3(chunk, chunk.with_suffix(".tmp"))
    shutil.move(chunk.with_suffix(".tmp"), chunk)
    with h5py.File(chunk, "r") as f:
        assert "mu_s" not in f["params"] and f.attrs["format_version"] == 3
    generate(_cfg(n=5), out, quiet=True, resume=True)
    assert_same_h5_data(out, ref)


# -- value rules ------------------------------------------------------------------------------
@pytest.mark.parametrize("dataset, where, value, match", [
    ("params/eps_k_s", (2, 1, 2), 0.1,
     r"params/eps_k_s of sample 2\[1, 2\] holds 0.1: a padded bath site"),
    ("params/V_k_s", (2, 0, 2), 0.2, r"params/V_k_s of sample 2\[0, 2\] holds 0.2: a padded"),
    ("params/eps_k", (2, 2), -0.3, r"params/eps_k of sample 2\[2\] holds -0.3: a padded"),
    ("params/mu", 1, 1.2 + 1e-9, r"params/mu of sample 1 holds 1.2.*spin up of params/mu_s"),
    ("params/eps_k", (3, 1), 0.123, r"params/eps_k of sample 3\[1\].*spin up of "
                                    r"params/eps_k_s"),
    ("params/V_k_s", (1, 1, 0), -0.35, r"V_k_s of sample 1\[1, 0\] holds -0.35: a hopping"),
    ("params/n_bath", 0, 4, r"params/n_bath of sample 0 holds 4.0: a sample uses 1 ... K = 3"),
    ("params/n_bath", 3, 0, r"params/n_bath of sample 3 holds 0.0"),
])
def test_value_rules_of_the_new_datasets(db4, tmp_path, dataset, where, value, match):
    bad = shutil.copy(db4, tmp_path / "bad.h5")
    _edit(bad, dataset, where, value)
    db = Database(bad)  # the checksums hold: the writer itself wrote the bad value
    with pytest.raises(DatabaseValueError, match=match):
        db.verify()
    with pytest.raises(DatabaseValueError, match=match):
        load_samples(db, Representation(kind="tau", n=11, mesh="uniform"), ["ed1", "ed"])


# -- training data ----------------------------------------------------------------------------
def test_load_samples_leaves_polarised_samples_out_and_counts_them(db4):
    db = Database(db4)
    rep = Representation(kind="tau", n=11, mesh="uniform")
    s = load_samples(db, rep, ["hubbard_i", "ed1", "ed"])
    np.testing.assert_array_equal(s.index, [0, 2, 3])
    np.testing.assert_array_equal(s.polarised_excluded, [1])
    assert set(s.params) == set(LEGACY_PARAMS)
    np.testing.assert_array_equal(s.params["eps_k"], db.params["eps_k"][[0, 2, 3]])
    s = load_samples(db, rep, ["ed1", "ed"], np.array([1, 2]))
    np.testing.assert_array_equal(s.index, [2])
    assert len(s.polarised_excluded) == 1
    with pytest.raises(ValueError, match=r"samples \[1\] of .* are spin-polarised"):
        load_samples(db, rep, ["ed1", "ed"], polarised="error")
    with pytest.raises(ValueError, match="use 'exclude' or 'error'"):
        load_samples(db, rep, ["ed1", "ed"], polarised="average")


def test_padded_sites_change_no_descriptor(db4):
    db = Database(db4)
    names = ["U/D", "eps/D", "m0", "m1", "m2", "m3", "bath", "delta"]
    padded = {k: np.asarray(db.params[k])[[2]].astype(float) for k in LEGACY_PARAMS}
    short = {**padded, "eps_k": padded["eps_k"][:, :2], "V_k": padded["V_k"][:, :2]}
    for p, q in ((padded, short), (ph_image_params(padded), ph_image_params(short))):
        Xp, lp = descriptors(p, names)
        Xs, ls = descriptors(q, names)
        # 6 scalars, then bath_e0, bath_v0, bath_e1, bath_v1 (+ the padded site), Delta_l
        assert lp == [*ls[:10], "bath_e2", "bath_v2", *ls[10:]]
        np.testing.assert_array_equal(Xp[:, :10], Xs[:, :10])  # moments and the sites there
        np.testing.assert_array_equal(Xp[:, 10:12], 0.0)        # the padded site: zeros, last
        np.testing.assert_allclose(Xp[:, 12:], Xs[:, 10:], rtol=0, atol=1e-15)  # Delta_l
    # a decoupled site sorts after the coupled ones even where its eps lies between them
    p = {"U": np.ones(1), "mu": np.ones(1), "beta": np.ones(1), "D": np.ones(1),
         "eps_k": np.array([[0.3, 0.1, -0.4]]), "V_k": np.array([[0.2, 0.0, 0.5]])}
    X, _ = descriptors(p, ["bath"])
    np.testing.assert_allclose(X, [[-0.4, 0.25, 0.3, 0.04, 0.0, 0.0]], rtol=0, atol=1e-15)
    # a full bath is sorted as before (by eps_k)
    p["V_k"] = np.array([[0.2, 0.1, 0.5]])
    X, _ = descriptors(p, ["bath"])
    np.testing.assert_allclose(X[0, ::2], [-0.4, 0.1, 0.3], rtol=0, atol=1e-15)


# -- visited AIMs -----------------------------------------------------------------------------
def _visited_cfg(path, n, seed=5):
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    return validate_config({
        "sampler": {"mode": "visited", "visited": str(path), "visited_sha256": sha,
                    "n_samples": n, "n_bath": 3, "seed": seed},
        "solvers": {"cheap": ["hubbard_i"], "reference": "ed"},
        "grid": dict(GRID), "output": {"chunk_size": 2}})


def test_visited_polarised_aims_become_samples_fitted_per_spin(tmp_path):
    beta, n_iw = 10.0, 128
    iw = matsubara_freqs(beta, n_iw)
    delta_pol = 0.25 * np.stack([semicircle_g(iw, 1.0, 0.2), semicircle_g(iw, 1.0, -0.2)])
    delta_sym = 0.25 * semicircle_g(iw, 1.0)
    path = tmp_path / "visited.h5"
    ood = {"out_of_domain": ["U/D"]}
    record_visit(path, AIMParams(U=2.0, mu=[1.1, 0.9], beta=beta, Delta_iw=delta_pol), ood)
    record_visit(path, AIMParams(U=2.0, mu=1.0, beta=beta, Delta_iw=delta_sym), {})
    disc = AIMParams(U=1.0, mu=[0.6, 0.4], beta=beta, eps_k=[[-0.3, 0.3], [-0.2, 0.4]],
                     V_k=[[0.3, 0.3], [0.25, 0.35]])
    record_visit(path, disc, ood)
    cfg = _visited_cfg(path, 3)
    usable, total = visited_samples(cfg)
    assert (len(usable), total) == (3, 3)  # the polarised visits are kept
    p0, p1, p2 = (sample_params(cfg, i) for i in range(3))
    # each spin of the polarised visit is fitted on its own, with the sample's seed
    fit_seed = int(np.random.default_rng([5, 0]).integers(2**31))
    for s in range(2):
        f = fit_bath(delta_pol[s], beta, 3, n_starts=3, seed=fit_seed, D=p0.D)
        np.testing.assert_array_equal(p0.eps_k[s], f.eps_k)
        np.testing.assert_array_equal(p0.V_k[s], f.V_k)
        fit = (p0.V_k[s][:, None] ** 2 / (iw[None, :] - p0.eps_k[s][:, None])).sum(axis=0)
        assert np.abs(fit - delta_pol[s]).max() < 0.05 * np.abs(delta_pol[s]).max(), s
    assert np.abs(p0.eps_k[0] - p0.eps_k[1]).max() > 0.1
    np.testing.assert_array_equal(p0.mu, [1.1, 0.9])
    assert p0.D == pytest.approx(1.0, rel=1e-3)  # D = 2 sqrt(m_0), m_0 = 1/4
    assert p1.spin_symmetric  # a symmetric visit: one fit for both spins
    # a recorded discrete bath of fewer sites than n_bath is kept as it is
    np.testing.assert_array_equal(p2.eps_k, disc.eps_k)
    np.testing.assert_array_equal(p2.mu, disc.mu)
    # ... and all three are samples of the database
    out = tmp_path / "vdb.h5"
    generate(cfg, out, quiet=True)
    db = Database(out)
    np.testing.assert_array_equal(db.polarised, [True, False, True])
    np.testing.assert_array_equal(db.params["n_bath"], [3, 3, 2])
    np.testing.assert_array_equal(db.aim_params(0).eps_k, p0.eps_k)
    np.testing.assert_array_equal(db.aim_params(2).V_k, disc.V_k)
    assert db.ok.all() and db.verify() > 0
    # only the visits out of the domain: the two polarised ones
    only = _visited_cfg(path, 2)
    only["sampler"]["visited_only"] = "out_of_domain"
    usable, total = visited_samples(validate_config(only))
    assert (len(usable), total) == (2, 3)
