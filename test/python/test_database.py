# SPDX-License-Identifier: Apache-2.0
"""Database generation: schema, determinism across MPI sizes, crash safety, bad configs,
the reference's error estimate and reading older format versions."""

import argparse
import importlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import assert_same_h5_data
from triqs_mlsolver.database import (
    SCHEMA,
    ConfigError,
    Database,
    check_schema,
    error_table,
    export_sample,
    generate,
    load_config,
    sample_params,
    summary,
    validate_config,
)
from triqs_mlsolver.database.generate import reference_error_of
from triqs_mlsolver.database.integrity import UncheckedDatabaseWarning
from triqs_mlsolver.database.schema import (
    ADDED,
    CHECKSUM_ROOT_ATTRS,
    DATASET_ATTRS,
    FORMAT_VERSION,
    OPTIONAL_ROOT_ATTRS,
    REFERENCE_ERROR_KEYS,
    ROOT_ATTRS,
    SOLVER_ATTRS,
    VERSIONS,
)

ROOT = Path(__file__).resolve().parents[2]
SMALL = """
[sampler]
n_samples = {n}
n_bath = 3
beta = [2.0, 10.0]
seed = 7
[solvers]
cheap = ["hubbard_i", "ed1"]
reference = "ed"
[grid]
n_iw = 64
n_tau = 21
n_l = 12
[output]
chunk_size = {chunk}
"""


def _mpiexec():
    cand = Path(sys.executable).with_name("mpiexec")
    return str(cand) if cand.exists() else shutil.which("mpiexec")


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "python") + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("TRIQS_MLSOLVER_NO_MPI", None)
    return env


def _write_cfg(tmp_path, n=10, chunk=2):
    p = tmp_path / "cfg.toml"
    p.write_text(SMALL.format(n=n, chunk=chunk))
    return p


def _cli(*args, mpi=None, **kw):
    cmd = [sys.executable, "-m", "triqs_mlsolver.cli.main", *args]
    if mpi:
        cmd = [_mpiexec(), "-n", str(mpi), *cmd]
    return subprocess.run(cmd, env=_env(), capture_output=True, text=True, **kw)




# -- sampler -------------------------------------------------------------------------------
def test_sampler_follows_the_seed_recipe():
    cfg = validate_config({"sampler": {"n_bath": 6}})
    for i in range(50):
        p = sample_params(cfg, i)
        D = p.D
        assert 1.0 <= p.U <= 10.0 and 0.5 <= D <= 5.0
        assert -1.0 <= p.U / 2 - p.mu[0] <= 1.0
        assert p.beta in (1, 2, 5, 10, 20, 50)
        assert abs(np.sum(p.V_k[0] ** 2) - D**2 / 4) < 1e-12  # Bethe scaling
        assert abs((p.eps_k[0].max() - p.eps_k[0].min()) / (2 * D) - 1) < 1e-12
    # the same (seed, i) gives the same sample
    a, b = sample_params(cfg, 17), sample_params(cfg, 17)
    assert np.array_equal(a.eps_k, b.eps_k) and a.U == b.U


def test_dmft_like_sampler_gives_a_fitted_bath():
    cfg = validate_config({"sampler": {"mode": "dmft", "n_bath": 4, "beta": [10.0]}})
    p = sample_params(cfg, 3)
    assert p.eps_k.shape == (2, 4) and p.extra["fit_chi2"] < 1e-2
    assert abs(np.sum(p.V_k[0] ** 2) - p.D**2 / 4) < 0.05 * p.D**2


@pytest.mark.parametrize("mode", ["bethe", "dmft"])
def test_fitted_samplers_decouple_a_site_the_fit_sent_far_away(monkeypatch, mode):
    """A fit that sends a site with a tiny coupling to 1e14 D (seen once in 10,000 Bethe
    samples; the database's value rules then refuse the chunk): the site is decoupled at
    +-(EPS_FAR D + U), every other site as fitted."""
    from triqs_mlsolver.aim.bath import EPS_FAR
    from triqs_mlsolver.database import sampler

    cfg = validate_config({"sampler": {"mode": mode, "n_bath": 4, "beta": [20.0],
                                       "U": [2.0, 3.0]}})
    clean = sample_params(cfg, 5)
    real_fit = sampler.fit_bath

    def far_fit(*args, **kw):
        fit = real_fit(*args, **kw)
        fit.eps_k = fit.eps_k.copy()
        fit.V_k = fit.V_k.copy()
        fit.eps_k[0], fit.V_k[0] = -4.7e14, 1e-9
        return fit

    monkeypatch.setattr(sampler, "fit_bath", far_fit)
    p = sample_params(cfg, 5)
    bound = EPS_FAR * p.D + p.U
    assert p.extra["far_sites"] == 1
    np.testing.assert_array_equal(p.eps_k[:, 0], -bound)
    np.testing.assert_array_equal(p.V_k[:, 0], 0.0)
    np.testing.assert_array_equal(p.eps_k[:, 1:], clean.eps_k[:, 1:])
    np.testing.assert_array_equal(p.V_k[:, 1:], clean.V_k[:, 1:])
    assert clean.extra["far_sites"] == 0


# -- generation, schema, inspect --------------------------------------------------------------
def test_generate_schema_inspect_and_export(tmp_path):
    cfg = load_config(_write_cfg(tmp_path, n=6, chunk=4))
    out = tmp_path / "db.h5"
    generate(cfg, out, quiet=True)
    sizes = check_schema(out)
    assert sizes == {"N": 6, "K": 3, "T": 21, "L": 12}
    assert not (tmp_path / "db.h5.parts").exists()
    db = Database(out)
    assert db.ok.all() and db.reference == "ed" and db.cheap == ["hubbard_i", "ed1"]
    # the reference solves the sampled AIM exactly: G(0+) + G(beta-) = -1
    G = db.read("ed", "G_tau")
    assert np.abs(G[:, :, 0] + G[:, :, -1] + 1).max() < 1e-10
    tab = error_table(db)
    assert set(tab) == {"hubbard_i", "ed1"} and tab["ed1"]["all"]["RMS"] > 0
    text = summary(db)
    assert "hubbard_i" in text and "beta=" in text
    from triqs_mlsolver.gf import HDFArchive

    export_sample(db, 2, tmp_path / "s2.h5")
    with HDFArchive(tmp_path / "s2.h5", "r") as ar:
        g = ar["ed"]["G_tau"]
        assert list(g.indices) == ["up", "down"]
        assert np.allclose(g["up"].data[:, 0, 0].real, G[2, 0], rtol=0, atol=1e-15)
        assert ar["params"]["beta"] == db.params["beta"][2]
    with pytest.raises(IndexError, match="out of range"):
        export_sample(db, 99, tmp_path / "x.h5")


def test_schema_check_fails_when_the_writer_drifts(tmp_path):
    cfg = load_config(_write_cfg(tmp_path, n=2, chunk=2))
    out = tmp_path / "db.h5"
    generate(cfg, out, quiet=True)
    bad = tmp_path / "bad.h5"
    shutil.copy(out, bad)
    with h5py.File(bad, "a") as f:
        del f["solvers/ed/G_l"]
        f["solvers/ed/G_l"] = np.zeros((2, 12))  # wrong rank
    with pytest.raises(ValueError, match="G_l"):
        check_schema(bad)
    shutil.copy(out, bad)
    with h5py.File(bad, "a") as f:
        f["solvers/ed/extra"] = np.zeros(2)
    with pytest.raises(ValueError, match="not in the schema"):
        check_schema(bad)


def test_schema_is_documented():
    """doc/database.rst lists every dataset and attribute of the schema."""
    text = (ROOT / "doc" / "database.rst").read_text()
    for key in [*SCHEMA, *ROOT_ATTRS, *OPTIONAL_ROOT_ATTRS, *SOLVER_ATTRS, *DATASET_ATTRS,
                *CHECKSUM_ROOT_ATTRS]:
        assert f"``{key}``" in text, f"{key} missing from doc/database.rst"
    # every layout change is recorded: a version per bump, the datasets each one added
    assert sorted(VERSIONS) == list(range(1, FORMAT_VERSION + 1))
    assert all(pat in SCHEMA and 1 < ver <= FORMAT_VERSION for pat, (ver, _) in ADDED.items())


@pytest.mark.mpi
def test_one_and_two_ranks_give_identical_databases(tmp_path):
    if _mpiexec() is None:
        pytest.skip("no mpiexec")
    cfg = _write_cfg(tmp_path, n=8, chunk=2)
    r1 = _cli("-q", "generate", str(cfg), "-o", str(tmp_path / "one.h5"), timeout=300)
    assert r1.returncode == 0, r1.stderr
    r2 = _cli("-q", "generate", str(cfg), "-o", str(tmp_path / "two.h5"), mpi=2, timeout=300)
    assert r2.returncode == 0, r2.stderr
    assert_same_h5_data(tmp_path / "one.h5", tmp_path / "two.h5")
    with h5py.File(tmp_path / "two.h5", "r") as f:
        assert list(f.attrs["mpi_size"]) == [2]


@pytest.mark.mpi
def test_extend_with_more_solvers_shares_the_old_samples_among_the_ranks(tmp_path):
    """mpirun -n 2 generate --extend OLD.h5 with an added cheap solver: both ranks run it on
    the old samples; the result equals the one-rank extension and a fresh generation."""
    if _mpiexec() is None:
        pytest.skip("no mpiexec")
    small = tmp_path / "small.h5"
    generate(load_config(_write_cfg(tmp_path, n=6, chunk=2)), small, quiet=True)
    more = tmp_path / "more.toml"
    more.write_text(SMALL.format(n=6, chunk=2).replace('["hubbard_i", "ed1"]',
                                                      '["hubbard_i", "ed1", "ed2"]'))
    r = _cli("generate", str(more), "-o", str(tmp_path / "two.h5"), "--extend", str(small),
             mpi=2, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "adding ed2" in r.stderr  # rank 0's progress bar over its share
    generate(load_config(more), tmp_path / "fresh.h5", quiet=True)
    assert_same_h5_data(tmp_path / "two.h5", tmp_path / "fresh.h5")
    with h5py.File(tmp_path / "two.h5", "r") as f:
        assert json.loads(f.attrs["extended_from"])[0]["solvers"] == ["hubbard_i", "ed1", "ed"]


def test_extend_recompute_solves_named_solvers_again(tmp_path, monkeypatch):
    """--extend OLD.h5 --recompute ed1: ed1 is solved again on every old sample (only ed1),
    the other columns are copied, and the result equals a fresh generation; refused: a
    solver OLD does not have, and --recompute without --extend."""
    import importlib

    gen_mod = importlib.import_module("triqs_mlsolver.database.generate")
    cfg = load_config(_write_cfg(tmp_path, n=4, chunk=2))
    old, new, ref = tmp_path / "old.h5", tmp_path / "new.h5", tmp_path / "ref.h5"
    generate(cfg, old, quiet=True)
    generate(cfg, ref, quiet=True)
    with h5py.File(old, "r") as f:
        old_ed1 = f["solvers/ed1/wall_time"][:]
    calls = []
    real = gen_mod.solve_sample
    monkeypatch.setattr(gen_mod, "solve_sample",
                        lambda c, i, **kw: calls.append((i, kw.get("solvers")))
                        or real(c, i, **kw))
    generate(cfg, new, quiet=True, extend=old, recompute=("ed1",))
    assert sorted(calls) == [(i, ["ed1"]) for i in range(4)]
    check_schema(new)
    assert_same_h5_data(new, ref)  # (wall times are not compared)
    with h5py.File(new, "r") as f:
        assert not np.array_equal(f["solvers/ed1/wall_time"][:], old_ed1)  # solved anew
        assert json.loads(f.attrs["extended_from"])[0]["solvers"] == ["hubbard_i", "ed"]
    with pytest.raises(ConfigError, match="--recompute ipt: not among the cheap solvers"):
        generate(cfg, tmp_path / "x.h5", quiet=True, extend=old, recompute=("ipt",))
    with pytest.raises(ConfigError, match="--recompute needs --extend"):
        generate(cfg, tmp_path / "y.h5", quiet=True, recompute=("ed1",))


@pytest.mark.mpi
def test_killed_run_resumes_without_recomputing_or_losing_samples(tmp_path):
    if _mpiexec() is None:
        pytest.skip("no mpiexec")
    n = 40
    cfg = _write_cfg(tmp_path, n=n, chunk=2)
    out = tmp_path / "db.h5"
    parts = tmp_path / "db.h5.parts"
    cmd = [_mpiexec(), "-n", "2", sys.executable, "-m", "triqs_mlsolver.cli.main", "-q",
           "generate", str(cfg), "-o", str(out), "--keep-parts"]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(parts.glob("chunk-*.h5"))) < 4:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = {p.name: (p.stat().st_mtime_ns, p.stat().st_ino) for p in parts.glob("chunk-*.h5")}
    assert 4 <= len(before) < n // 2, "the kill came too late to test a resume"
    assert not out.exists()
    # without --resume the leftover parts are an error, with a hint
    r = _cli("generate", str(cfg), "-o", str(out), timeout=60)
    assert r.returncode == 2 and "--resume" in r.stderr
    r = _cli("-q", "generate", str(cfg), "-o", str(out), "--resume", "--keep-parts",
             mpi=2, timeout=300)
    assert r.returncode == 0, r.stderr
    after = {p.name: (p.stat().st_mtime_ns, p.stat().st_ino) for p in parts.glob("chunk-*.h5")}
    for name, stamp in before.items():
        assert after[name] == stamp, f"{name} was rewritten"
    counts = [int(re.search(r"chunk-\d+-(\d+)-", k).group(1)) for k in after]
    assert sum(counts) == n  # every sample exactly once: nothing recomputed, nothing lost
    check_schema(out)
    ref = tmp_path / "ref.h5"
    generate(load_config(cfg), ref, quiet=True)
    assert_same_h5_data(out, ref)


def test_extend_grows_a_database_without_recomputing(tmp_path, monkeypatch):
    """--extend OLD.h5: the first samples come from OLD (not solved again) and the result
    equals a database generated at the larger size in one go."""
    import importlib

    gen_mod = importlib.import_module("triqs_mlsolver.database.generate")
    cfg4 = load_config(_write_cfg(tmp_path, n=4, chunk=2))
    cfg7 = validate_config({**{k: dict(v) for k, v in cfg4.items()},
                            "sampler": {**cfg4["sampler"], "n_samples": 7}})
    small, grown, ref = tmp_path / "small.h5", tmp_path / "grown.h5", tmp_path / "ref.h5"
    generate(cfg4, small, quiet=True)
    generate(cfg7, ref, quiet=True)
    solved = []
    real = gen_mod.solve_sample
    monkeypatch.setattr(gen_mod, "solve_sample",
                        lambda cfg, i, **kw: solved.append(i) or real(cfg, i, **kw))
    generate(cfg7, grown, quiet=True, extend=small)
    assert sorted(solved) == [4, 5, 6]
    check_schema(grown)
    assert_same_h5_data(grown, ref)
    with h5py.File(grown, "r") as f:
        assert "small.h5" in f.attrs["extended_from"]
        assert int(f.attrs["n_samples"]) == 7
    # more cheap solvers (and more samples): the old samples get only the new solver
    more = validate_config({**{k: dict(v) for k, v in cfg7.items()},
                            "solvers": {**cfg7["solvers"],
                                        "cheap": ["hubbard_i", "ipt", "ed1"]}})
    ref_more = tmp_path / "ref_more.h5"
    generate(more, ref_more, quiet=True)
    solved.clear()
    generate(more, tmp_path / "more.h5", quiet=True, extend=small)
    assert sorted(solved) == list(range(7))  # 0..3 for ipt only, 4..6 for everything
    assert_same_h5_data(tmp_path / "more.h5", ref_more)
    with h5py.File(tmp_path / "more.h5", "r") as f:  # the chain of origins is kept
        origin = json.loads(f.attrs["extended_from"])[0]
        assert origin["solvers"] == ["hubbard_i", "ed1", "ed"] and origin["its_origin"] == []
    fewer = validate_config({**{k: dict(v) for k, v in cfg7.items()},
                             "solvers": {**cfg7["solvers"], "cheap": ["ed1"]}})
    with pytest.raises(ConfigError, match="drops"):
        generate(fewer, tmp_path / "w.h5", quiet=True, extend=small)
    # refused: another config, not more samples, the same file, not a database
    other = validate_config({**{k: dict(v) for k, v in cfg7.items()},
                             "sampler": {**cfg7["sampler"], "seed": 8}})
    with pytest.raises(ConfigError, match=r"another config \(differs in \[sampler\] seed\)"):
        generate(other, tmp_path / "x.h5", quiet=True, extend=small)
    with pytest.raises(ConfigError, match="larger n_samples"):
        generate(cfg4, tmp_path / "y.h5", quiet=True, extend=small)
    with pytest.raises(ConfigError, match="same file"):
        generate(cfg7, small, quiet=True, extend=small)
    (tmp_path / "foreign.h5").write_bytes(b"not hdf5")
    with pytest.raises(ConfigError, match="cannot read the database"):
        generate(cfg7, tmp_path / "z.h5", quiet=True, extend=tmp_path / "foreign.h5")
    assert not any(tmp_path.glob("[wxyz].h5.parts"))  # refused before any work


# -- bad input --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "raw, match",
    [
        ({"sampler": {"n_sample": 5}}, "unknown key 'n_sample' in \\[sampler\\]"),
        ({"samplers": {}}, "unknown section \\[samplers\\]"),
        ({"sampler": {"U": [3.0, 1.0]}}, "range is empty"),
        ({"sampler": {"beta": [10.0, 0.0]}}, "beta must be a number > 0"),
        ({"sampler": {"beta": []}}, "non-empty list"),
        ({"sampler": {"n_bath": 0}}, "n_bath = 0"),
        ({"sampler": {"mode": "random"}}, "'seed', 'dmft', 'bethe', 'single_band' or 'visited'"),
        ({"solvers": {"cheap": ["ipt", "hubbard"]}}, "unknown solver 'hubbard'"),
        ({"grid": {"n_tau": 2}}, "n_tau = 2"),
    ],
)
def test_bad_configs_are_rejected_with_the_key_named(raw, match):
    with pytest.raises(ConfigError, match=match):
        validate_config(raw)


def test_bad_outputs_are_rejected_before_any_work(tmp_path):
    cfg = load_config(_write_cfg(tmp_path, n=2, chunk=2))
    with pytest.raises(ConfigError, match="does not exist"):
        generate(cfg, tmp_path / "nope" / "db.h5", quiet=True)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):  # root ignores permissions
            pytest.skip("running as root: a read-only folder is still writable")
        with pytest.raises(ConfigError, match="not writable"):
            generate(cfg, ro / "db.h5", quiet=True)
    finally:
        ro.chmod(0o700)


def test_existing_output_and_foreign_parts_are_refused(tmp_path):
    cfg_path = _write_cfg(tmp_path, n=2, chunk=2)
    cfg = load_config(cfg_path)
    out = tmp_path / "db.h5"
    generate(cfg, out, quiet=True)
    with pytest.raises(ConfigError, match="already exists"):
        generate(cfg, out, quiet=True)
    # parts of a run with a different config cannot be resumed
    other = validate_config({**{k: dict(v) for k, v in cfg.items()},
                             "sampler": {**cfg["sampler"], "seed": 99}})
    out2 = tmp_path / "db2.h5"
    generate(other, out2, quiet=True, max_chunks=0)
    with pytest.raises(ConfigError, match="different config"):
        generate(cfg, out2, resume=True, quiet=True)


def test_cli_errors_say_what_to_do(tmp_path):
    r = _cli("generate", str(tmp_path / "missing.toml"), "-o", str(tmp_path / "x.h5"))
    assert r.returncode == 2 and "not found" in r.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("[sampler]\nn_sampels = 3\n")
    r = _cli("generate", str(bad), "-o", str(tmp_path / "x.h5"))
    assert r.returncode == 2 and "n_sampels" in r.stderr and "allowed keys" in r.stderr
    r = _cli("inspect", str(tmp_path / "none.h5"))
    assert r.returncode == 2 and "generate" in r.stderr
    (tmp_path / "foreign.h5").write_bytes(b"not hdf5")
    r = _cli("inspect", str(tmp_path / "foreign.h5"))
    assert r.returncode == 2 and "not an HDF5 file" in r.stderr


def test_failed_solves_are_recorded_not_fatal(tmp_path, monkeypatch):
    import importlib

    gen_mod = importlib.import_module("triqs_mlsolver.database.generate")

    cfg = load_config(_write_cfg(tmp_path, n=3, chunk=3))
    real = gen_mod.solve_aim

    def flaky(name, params, **kw):
        if name == "ed1" and params.beta == 10.0:
            raise RuntimeError("simulated failure")
        return real(name, params, **kw)

    monkeypatch.setattr(gen_mod, "solve_aim", flaky)
    out = tmp_path / "db.h5"
    generate(cfg, out, quiet=True)
    db = Database(out)
    ok = db.read("ed1", "ok")
    bad = db.params["beta"] == 10.0
    assert np.array_equal(ok, ~bad) and bad.any()
    assert all("simulated failure" in r for r in db.reason[bad])
    assert np.all(np.isnan(db.read("ed1", "G_tau")[bad]))
    assert np.all(db.read("ed", "ok"))


def test_bethe_test_database_is_the_bethe_recipe_with_another_seed():
    from importlib.resources import files

    d = files("triqs_mlsolver") / "data"
    train_cfg = load_config(d / "bethe_database.toml")
    test_cfg = load_config(d / "bethe_test_database.toml")
    assert test_cfg["sampler"]["seed"] != train_cfg["sampler"]["seed"]
    for c in (train_cfg, test_cfg):
        c["sampler"].pop("seed")
        c["sampler"].pop("n_samples")
    assert test_cfg == train_cfg


def test_shipped_default_config_is_the_builtin_default():
    from importlib.resources import files

    path = files("triqs_mlsolver") / "data" / "default_database.toml"
    assert load_config(path) == validate_config({})


# -- the reference's own error estimate (format version 2) -------------------------------------
AUTO = """
[sampler]
mode = "bethe"
n_samples = {n}
n_bath = 4
U = [1.0, 2.0]
W = [2.0, 2.0]
eps = [-0.3, 0.3]
beta = [5.0, 10.0]
seed = 3
[solvers]
cheap = ["hubbard_i"]
reference = "ed"
[grid]
n_iw = 64
n_tau = 21
n_l = 12
[output]
chunk_size = 2
"""


def _downgrade_to_v1(src, dst):
    """``dst``: ``src`` as the format-1 writer left it (no error estimate datasets, no
    checksums)."""
    shutil.copy(src, dst)
    with h5py.File(dst, "a") as f:
        for key in REFERENCE_ERROR_KEYS:
            del f[f"solvers/{f.attrs['reference']}/{key}"]
        for key in ("mu_s", "eps_k_s", "V_k_s", "n_bath"):  # format 4
            del f[f"params/{key}"]
        f.attrs["format_version"] = 1
        del f.attrs["attrs_sha256"]
        f.visititems(lambda n, o: o.attrs.__delitem__("sha256")
                     if isinstance(o, h5py.Dataset) else None)


def test_reference_error_of_takes_the_larger_of_bath_size_and_ftlm_errors():
    from types import SimpleNamespace

    rep = dict(kind="auto", n_bath=6, error_estimate=2e-5, converged=True, tol=1e-4, history=[])
    sol = SimpleNamespace(diagnostics={"reference": rep})
    assert reference_error_of(sol) == {"error_estimate": 2e-5, "n_bath": 6, "converged": True}
    sol.diagnostics["ftlm"] = {"error_G_tau": 5e-5}  # the statistical error bar dominates
    assert reference_error_of(sol)["error_estimate"] == 5e-5
    sol.diagnostics["ftlm"] = {"error_G_tau": 1e-6}
    assert reference_error_of(sol)["error_estimate"] == 2e-5
    # only one bath size could be solved: no estimate to converge
    sol.diagnostics = {"reference": {**rep, "error_estimate": float("inf"), "converged": False}}
    assert reference_error_of(sol) == {"error_estimate": np.inf, "n_bath": 6, "converged": False}
    # a solver that reports nothing (an FTLM error bar alone is not an estimate of its error)
    for diag in ({}, {"ftlm": {"error_G_tau": 1e-3}}):
        r = reference_error_of(SimpleNamespace(diagnostics=diag))
        assert np.isnan(r["error_estimate"]) and r["n_bath"] == -1 and not r["converged"]


def test_reference_error_estimate_is_stored_and_version_1_files_still_read(tmp_path):
    cfg = load_config(_write_cfg(tmp_path, n=4, chunk=4))
    out = tmp_path / "db.h5"
    generate(cfg, out, quiet=True)
    sizes = check_schema(out)
    db = Database(out)
    assert db.format_version == FORMAT_VERSION == 4
    r = db.reference_error()
    # the sampled 3-site bath is diagonalised as given: exact up to the ED's resolution
    from triqs_mlsolver.solvers.ed import RESOLUTION

    assert np.array_equal(r["error_estimate"], np.full(4, RESOLUTION))
    assert np.array_equal(r["n_bath"], [3] * 4) and r["converged"].all()
    with h5py.File(out, "r") as f:
        assert [f[f"solvers/ed/{k}"].dtype for k in REFERENCE_ERROR_KEYS] == [
            np.float64, np.int64, np.bool_]
        assert not set(REFERENCE_ERROR_KEYS) & set(f["solvers/ed1"])  # cheap: not stored
    with pytest.raises(KeyError, match="reference solver only"):
        db.read("ed1", "error_estimate")
    assert "error estimate of the reference ed" in summary(db)
    # a version-1 file reads, with "not known" for the estimate, and passes its own check
    old = tmp_path / "v1.h5"
    _downgrade_to_v1(out, old)
    assert check_schema(old) == sizes
    with pytest.warns(UncheckedDatabaseWarning, match="before checksums"):
        db1 = Database(old)
    r1 = db1.reference_error()
    assert np.all(np.isnan(r1["error_estimate"])) and np.all(r1["n_bath"] == -1)
    assert not r1["converged"].any()
    assert np.array_equal(db1.read("ed", "G_tau"), db.read("ed", "G_tau"))
    assert "not stored (format v1" in summary(db1)
    res = _cli("inspect", str(old), "--check", timeout=120)
    assert res.returncode == 0, res.stderr
    assert "schema ok (format v1)" in res.stdout and "not stored" in res.stdout
    # a version-1 file with the newer datasets, a damaged v2 file, a file from the future
    bad = tmp_path / "bad.h5"
    shutil.copy(old, bad)
    with h5py.File(bad, "a") as f:
        f["solvers/ed/error_estimate"] = np.zeros(4)
    with pytest.raises(ValueError, match="not in the schema"):
        check_schema(bad)
    shutil.copy(out, bad)
    with h5py.File(bad, "a") as f:
        del f["solvers/ed/converged"]
    with pytest.raises(ValueError, match="converged' missing"):
        check_schema(bad)
    shutil.copy(out, bad)
    with h5py.File(bad, "a") as f:
        f.attrs["format_version"] = FORMAT_VERSION + 1
    with pytest.raises(ValueError, match=f"format_version {FORMAT_VERSION + 1}"):
        check_schema(bad)
    with pytest.raises(ValueError, match="upgrade triqs_mlsolver"):
        Database(bad)


@pytest.fixture
def short_bath_ladder(monkeypatch):
    """The reference ED's ``n_bath='auto'`` with bath sizes 1, 2, 3 and at most 3 sites
    diagonalised as given: a sampled 4-site bath then takes the bath-size convergence path
    (fit, grow, compare; the real code) in ~0.1 s, where the ladder 4, 5, ... costs
    seconds per sample at beta = 5.  Returns the tolerance."""
    ed = importlib.import_module("triqs_mlsolver.solvers.ed")
    monkeypatch.setattr(ed, "MAX_BATH", 3)
    monkeypatch.setattr(ed, "AUTO_K_MIN", 1)
    monkeypatch.setattr(ed, "AUTO_K_MAX", 3)
    return ed.AUTO_TOL


def test_bath_size_error_estimate_equals_the_solvers_and_survives_resume_and_extend(
        tmp_path, short_bath_ladder):
    from threadpoolctl import threadpool_limits
    from triqs_mlsolver.solvers import solve_aim

    tol = short_bath_ladder
    cfg_path = tmp_path / "auto.toml"
    cfg_path.write_text(AUTO.format(n=5))
    cfg = load_config(cfg_path)
    ref = tmp_path / "ref.h5"
    generate(cfg, ref, quiet=True)
    check_schema(ref)
    db = Database(ref)
    assert db.ok.all()
    r = db.reference_error()
    err, conv = r["error_estimate"], r["converged"]
    assert np.all(np.isfinite(err)) and np.all(err > 0) and np.all(r["n_bath"] == 3)
    assert conv.any() and not conv.all()  # both cases occur in these 5 samples
    assert np.all(err[conv] <= tol) and np.all(err[~conv] > tol)
    with threadpool_limits(limits=1):  # as the generator runs: identical results
        for i in range(len(db)):
            sol = solve_aim("ed", sample_params(cfg, i), n_iw=64, n_tau=21, n_l=12)
            rep = sol.diagnostics["reference"]
            assert rep["kind"] == "auto"
            assert (err[i], r["n_bath"][i], conv[i]) == (
                rep["error_estimate"], rep["n_bath"], rep["converged"])
            assert np.array_equal(db.read("ed", "G_tau")[i], sol.G_tau)
    assert "not converged: " + str(int((~conv).sum())) in summary(db)

    # killed after one chunk (samples 0, 1) and resumed: the same values
    out = tmp_path / "resumed.h5"
    generate(cfg, out, quiet=True, max_chunks=1)
    parts = tmp_path / "resumed.h5.parts"
    (chunk,) = parts.glob("chunk-*.h5")
    with h5py.File(chunk, "r") as f:
        assert np.array_equal(f["solvers/ed/error_estimate"][()], err[:2])
    # the same parts as a format-1 run would have left them
    old_parts = tmp_path / "old.h5.parts"
    shutil.copytree(parts, old_parts)
    with h5py.File(old_parts / chunk.name, "a") as f:
        for key in REFERENCE_ERROR_KEYS:
            del f[f"solvers/ed/{key}"]
    generate(cfg, out, quiet=True, resume=True)
    assert_same_h5_data(out, ref)
    generate(cfg, tmp_path / "old.h5", quiet=True, resume=True)
    r_old = Database(tmp_path / "old.h5").reference_error()
    assert np.all(np.isnan(r_old["error_estimate"][:2])) and np.all(r_old["n_bath"][:2] == -1)
    assert np.array_equal(r_old["error_estimate"][2:], err[2:])

    # --extend: the old samples keep their estimate (the reference is not recomputed) ...
    cfg3_path = tmp_path / "auto3.toml"
    cfg3_path.write_text(AUTO.format(n=3))
    small = tmp_path / "small.h5"
    generate(load_config(cfg3_path), small, quiet=True)
    generate(cfg, tmp_path / "grown.h5", quiet=True, extend=small)
    assert_same_h5_data(tmp_path / "grown.h5", ref)
    # ... and a version-1 database grows into a current one, NaN where nothing is known
    small_v1 = tmp_path / "small_v1.h5"
    _downgrade_to_v1(small, small_v1)
    grown = tmp_path / "grown_v1.h5"
    with pytest.warns(UncheckedDatabaseWarning, match="before checksums"):
        generate(cfg, grown, quiet=True, extend=small_v1)
    check_schema(grown)
    g = Database(grown)
    assert g.format_version == FORMAT_VERSION and g.checksums
    rg = g.reference_error()
    assert np.all(np.isnan(rg["error_estimate"][:3])) and not rg["converged"][:3].any()
    for key in REFERENCE_ERROR_KEYS:
        assert np.array_equal(rg[key][3:], r[key][3:])
    assert np.array_equal(g.read("ed", "G_tau"), db.read("ed", "G_tau"))


def test_generate_without_config_runs_the_single_band_recipe(monkeypatch, tmp_path):
    """``triqs-mlsolver generate -o X`` (no config) generates the shipped single-band recipe
    (issue 18: generate's default is the default model's database)."""
    from triqs_mlsolver.cli import database as cli_db

    seen = {}

    def fake_generate(cfg, output, **kw):
        seen["cfg"] = cfg
        raise ConfigError("stop here")

    monkeypatch.setattr("triqs_mlsolver.database.generate", fake_generate)
    parser = argparse.ArgumentParser()
    cli_db.add_parsers(parser.add_subparsers())
    args = parser.parse_args(["generate", "-o", str(tmp_path / "x.h5")])
    args.quiet = True
    with pytest.raises(ConfigError, match="stop here"):
        args.func(args)
    assert seen["cfg"] == load_config(cli_db.default_recipe())
    assert seen["cfg"]["sampler"]["mode"] == "single_band"
