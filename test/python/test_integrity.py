# SPDX-License-Identifier: Apache-2.0
"""Content-addressed integrity of databases and model files, concurrency and full disks.

Each case of issue 17 is reproduced and must now end in a refusal or a correct count:
a flipped bit in ``params/U``, NaN and 1e30 in a database, an edited metadata byte of a
model file, regenerated and extended databases in ``evaluate``, two ``generate`` on one
output (the repeated race is marked slow), and a full disk in ``generate`` and ``train``
(on a real tmpfs where mount works, and with the writer made to fail everywhere).
"""

import errno
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import assert_same_h5_data
from triqs_mlsolver.cli.main import main as cli_main
from triqs_mlsolver.database import Database, check_schema, generate, validate_config
from triqs_mlsolver.database import integrity as integ
from triqs_mlsolver.database.config import ConfigError
from triqs_mlsolver.database.generate import lock_path_of, upgrade_database
from triqs_mlsolver.database.integrity import (
    DatabaseIntegrityError,
    DatabaseValueError,
    DiskFullError,
    OutputLock,
    UncheckedDatabaseWarning,
)

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from triqs_mlsolver.ml.evaluate import evaluate  # noqa: E402
from triqs_mlsolver.ml.modelfile import (  # noqa: E402
    LegacyModelError,
    ModelIntegrityError,
    load_model,
    read_metadata,
    rehash_model,
)
from triqs_mlsolver.ml.train import train, validate_train_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
RAW = {
    "sampler": {"n_samples": 12, "n_bath": 2, "beta": [2.0, 5.0], "seed": 7,
                "U": [1.0, 4.0], "W": [1.0, 3.0]},
    "solvers": {"cheap": ["hubbard_i", "ed1"], "reference": "ed"},
    "grid": {"n_iw": 32, "n_tau": 11, "n_l": 8},
    "output": {"chunk_size": 4},
}


def _cfg(n=12, seed=7, chunk=4):
    raw = {k: dict(v) for k, v in RAW.items()}
    raw["sampler"].update(n_samples=n, seed=seed)
    raw["output"]["chunk_size"] = chunk
    return validate_config(raw)


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "python") + os.pathsep + env.get("PYTHONPATH", "")
    env["TRIQS_MLSOLVER_NO_MPI"] = "1"
    return env


def _cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "triqs_mlsolver.cli.main", *args],
                          env=_env(), capture_output=True, text=True, **kw)




def _train_cfg(db, out, **data):
    return validate_train_config({
        "data": {"database": str(db), "test_fraction": 0.25, "validation_fraction": 0.25,
                 **data},
        "features": {"kind": "tau", "n": 11, "mesh": "uniform", "inputs": ["hubbard_i", "ed1"],
                     "base": "ed1", "descriptors": ["U/D", "eps/D", "log(beta*D)"]},
        "model": {"depth": 1, "width": 8, "n_ensemble": 1},
        "training": {"max_epochs": 3, "patience": 3, "seed": 1},
        "output": {"model": str(out), "checkpoint_every": 0},
    })


@pytest.fixture(scope="module")
def db12(tmp_path_factory):
    path = tmp_path_factory.mktemp("integ") / "db12.h5"
    generate(_cfg(), path, quiet=True)
    return path


@pytest.fixture(scope="module")
def model12(db12):
    out = db12.with_name("m12.safetensors")
    model, report = train(_train_cfg(db12, out), quiet=True)
    return out, report


def _copy(src, dst):
    shutil.copy(src, dst)
    return dst


def _flip_bit(path, dataset, index, bit):
    """Flip one bit of a stored (contiguous) dataset in the file's bytes."""
    with h5py.File(path, "r") as f:
        d = f[dataset]
        off = d.id.get_offset()
        assert off is not None, f"{dataset} is not stored contiguously"
        pos = off + index * d.dtype.itemsize + bit // 8
    with open(path, "r+b") as fh:
        fh.seek(pos)
        b = fh.read(1)[0]
        fh.seek(pos)
        fh.write(bytes([b ^ (1 << (bit % 8))]))


def _edit(path, dataset, where, value, *, reseal):
    """Write ``value`` into ``dataset[where]``; ``reseal``: recompute the checksums, as a
    writer that produced the value itself would have."""
    with h5py.File(path, "a") as f:
        d = f[dataset]
        a = d[()]
        a[where] = value
        d[...] = a
        if reseal:
            integ.seal(f)


def _strip_checksums(src, dst, version=2):
    """``dst``: ``src`` as the format-2 writer left it (no checksums, no per-spin
    parameters)."""
    shutil.copy(src, dst)
    with h5py.File(dst, "a") as f:
        for key in ("mu_s", "eps_k_s", "V_k_s", "n_bath"):  # format 4
            del f[f"params/{key}"]
        f.attrs["format_version"] = version
        del f.attrs["attrs_sha256"]
        f.visititems(lambda n, o: o.attrs.__delitem__("sha256")
                     if isinstance(o, h5py.Dataset) else None)
    return dst


# -- database checksums ----------------------------------------------------------------------
def test_every_dataset_carries_a_checksum_that_inspect_verifies(db12, capsys):
    db = Database(db12)
    assert db.checksums and db.format_version == 4
    with h5py.File(db12, "r") as f:
        names = []
        f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        for n in names:
            assert f[n].attrs["sha256"] == integ.array_sha256(f[n][()]), n
        assert f.attrs["attrs_sha256"] == integ.attrs_sha256(f)
    assert db.verify() == len(names) == 6 + 4 + 1 + 2 + 3 * 7 + 3
    assert cli_main(["inspect", str(db12), "--check"]) == 0
    out = capsys.readouterr().out
    assert f"checksums ok: {len(names)} datasets" in out and "values ok" in out


def test_canonical_checksum_ignores_storage_but_not_values():
    a = np.linspace(0, 1, 7)
    assert integ.array_sha256(a) == integ.array_sha256(a.astype(">f8"))  # byte order
    assert integ.array_sha256(a) != integ.array_sha256(a.astype(np.float32))
    assert integ.array_sha256(np.array(["x", "é"], dtype=object)) == \
        integ.array_sha256(np.array([b"x", "é".encode()], dtype=object))
    b = a.copy()
    b.view(np.uint64)[3] ^= np.uint64(1)  # one bit (a Python int cannot be cast under numpy 1.x)
    assert integ.array_sha256(a) != integ.array_sha256(b)


def test_flipped_bit_in_params_U_is_refused_everywhere(db12, tmp_path, capsys):
    """Issue 17: it passed inspect --check, trained, and --extend copied it on."""
    bad = _copy(db12, tmp_path / "flipped.h5")
    _flip_bit(bad, "params/U", index=3, bit=0)  # the last bit of the mantissa of U[3]
    with h5py.File(bad, "r") as f, h5py.File(db12, "r") as g:
        assert f["params/U"][3] != g["params/U"][3]
        assert abs(f["params/U"][3] / g["params/U"][3] - 1) < 1e-15  # a plausible value
    with pytest.raises(DatabaseIntegrityError, match="params/U does not match its checksum"):
        Database(bad)
    assert cli_main(["inspect", str(bad), "--check"]) == 2
    assert "params/U does not match its checksum" in capsys.readouterr().err
    with pytest.raises(DatabaseIntegrityError, match="params/U"):
        train(_train_cfg(bad, tmp_path / "m.safetensors"), quiet=True)
    with pytest.raises(ConfigError, match="--extend .*flipped.h5.*params/U does not match"):
        generate(_cfg(n=14), tmp_path / "grown.h5", quiet=True, extend=bad)
    assert not (tmp_path / "grown.h5").exists() and not (tmp_path / "grown.h5.parts").exists()
    # a solver's dataset: verified when it is read
    bad2 = _copy(db12, tmp_path / "edited.h5")
    _edit(bad2, "solvers/ed/G_tau", (5, 0, 3), -0.25, reseal=False)
    db = Database(bad2)
    with pytest.raises(DatabaseIntegrityError, match="solvers/ed/G_tau"):
        db.read("ed", "G_tau")
    # and an attribute (e.g. the recorded config)
    bad3 = _copy(db12, tmp_path / "attr.h5")
    with h5py.File(bad3, "a") as f:
        f.attrs["seed"] = 8
    with pytest.raises(DatabaseIntegrityError, match="attributes"):
        Database(bad3)
    # a checksum that is present is verified even if format_version was lowered
    with h5py.File(bad, "a") as f:
        f.attrs["format_version"] = 2
    with pytest.raises(DatabaseIntegrityError):
        Database(bad)


def test_old_database_is_read_with_a_statement_and_upgraded(db12, tmp_path, capsys):
    old = _strip_checksums(db12, tmp_path / "v2.h5")
    with pytest.warns(UncheckedDatabaseWarning, match="written before checksums"):
        db = Database(old)
    assert not db.checksums and db.verify() == 0
    assert cli_main(["inspect", str(old), "--check"]) == 0
    out = capsys.readouterr().out
    assert "the bits are NOT verified" in out and "written before checksums" in out
    new = tmp_path / "v4.h5"
    assert cli_main(["inspect", str(old), "--upgrade", str(new)]) == 0
    up = Database(new)
    assert up.checksums and up.format_version == 4 and up.verify() > 0
    assert json.loads(up.attrs["upgraded_from"])["format_version"] == 2
    check_schema(new)
    assert_same_h5_data(new, db12)
    with pytest.raises(ConfigError, match="nothing to upgrade"):
        upgrade_database(db12, tmp_path / "again.h5")
    with pytest.raises(ConfigError, match="exists"):
        upgrade_database(old, new)
    # an old file with an impossible value is not blessed with checksums
    _edit(old, "params/beta", 2, -1.0, reseal=False)
    with pytest.raises(DatabaseValueError, match="params/beta of sample 2 holds -1.0"):
        upgrade_database(old, tmp_path / "bad.h5")
    assert not (tmp_path / "bad.h5").exists()


# -- value rules -----------------------------------------------------------------------------
def _train_toml(tmp_path, db):
    p = tmp_path / "train.toml"
    p.write_text(f"""
[data]
database = "{db}"
test_fraction = 0.25
validation_fraction = 0.25
[features]
kind = "tau"
n = 11
mesh = "uniform"
inputs = ["hubbard_i", "ed1"]
base = "ed1"
descriptors = ["U/D"]
[model]
depth = 1
width = 4
[training]
max_epochs = 2
[output]
model = "m.safetensors"
checkpoint_every = 0
""")
    return p


@pytest.mark.parametrize("dataset, where, value, shown", [
    ("solvers/ed/G_tau", (5, 0, 3), np.nan, "sample 5[0, 3] holds nan"),        # test reference
    ("solvers/hubbard_i/G_tau", (7, 1, 2), 1e30, "sample 7[1, 2] holds 1e+30"),  # an input
    ("params/U", 9, 1e30, "sample 9 holds 1e+30"),
])
def test_nan_and_1e30_are_refused_before_training(db12, tmp_path, capsys, dataset, where,
                                                  value, shown):
    """Issue 17: 1e30 in an input trained silently; NaN in a test reference ended train with
    'test RMS nan' and exit code 0."""
    bad = _copy(db12, tmp_path / "bad.h5")
    _edit(bad, dataset, where, value, reseal=False)  # edited: the checksum catches it
    with pytest.raises(DatabaseIntegrityError, match=dataset):
        train(_train_cfg(bad, tmp_path / "x.safetensors"), quiet=True)
    with h5py.File(bad, "a") as f:  # as a writer that produced the value would have sealed it
        integ.seal(f)
    toml = _train_toml(tmp_path, bad)
    assert cli_main(["-q", "train", str(toml)]) == 2
    err = capsys.readouterr().err
    assert f"{dataset} of {shown}" in err and str(bad) in err, err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m.safetensors").exists()
    with pytest.raises(DatabaseValueError, match=re.escape(f"{dataset} of {shown}")):
        Database(bad).verify()


def test_value_rules():
    ok = {"U": [1.0, 2.0], "mu": [0.5, 1.0], "beta": [10.0, 5.0], "D": [1.0, 2.0],
          "eps_k": [[-1.0, 1.0], [-2.0, 2.0]], "V_k": [[0.3, 0.4], [0.5, 0.6]]}
    integ.check_params(ok)
    for key, val, msg in [("beta", [10.0, 0.0], "params/beta of sample 1 holds 0.0: beta must"),
                          ("U", [-0.5, 2.0], "params/U of sample 0 holds -0.5"),
                          ("D", [1.0, -1.0], "params/D of sample 1"),
                          ("mu", [1e5, 1.0], "params/mu of sample 0 holds 100000.0: \\|mu\\|"),
                          ("beta", [2e6, 5.0], "beta \\* D must be <= 1e\\+06")]:
        with pytest.raises(DatabaseValueError, match=msg):
            integ.check_params({**ok, key: val})
    with pytest.raises(DatabaseValueError, match="params/V_k of sample 12\\[1\\] holds inf"):
        integ.check_params({**ok, "V_k": [[0.3, 0.4], [0.5, np.inf]]}, index=[11, 12])
    G = -0.5 * np.ones((2, 2, 5))
    L = np.zeros((2, 2, 3))
    L[..., 0] = -1.0
    integ.check_solver_values("s", {"G_tau": G, "G_l": L, "density": 0.5 * np.ones((2, 2)),
                                    "double_occupancy": [np.nan, 0.1],
                                    "wall_time": [0.1, 0.2]}, [1.0, 2.0])
    cases = [("G_tau", G * 2.2, "lies in \\[-1, 0\\]"),
             ("G_tau", np.where(np.arange(5) == 2, 0.3, G), "sample 0\\[0, 2\\] holds 0.3"),
             ("G_tau", np.where(np.arange(5) == 0, -0.8, G), "G\\(0\\+\\) \\+ G\\(beta-\\)"),
             ("G_l", L * 3, "sqrt\\(2l\\+1\\) beta"),
             ("density", [[0.5, 0.5], [0.5, 1.2]], "density of sample 1\\[1\\] holds 1.2"),
             ("double_occupancy", [np.inf, 0.1], "double_occupancy of sample 0 holds inf"),
             ("wall_time", [np.nan, 0.1], "wall_time of sample 0")]
    for key, val, msg in cases:
        with pytest.raises(DatabaseValueError, match=msg):
            integ.check_solver_values("s", {key: val}, [1.0, 2.0])
    # a failed solve holds NaN by convention and is not checked
    Gf = G.copy()
    Gf[1] = np.nan
    integ.check_solver_values("s", {"G_tau": Gf}, [1.0, 2.0], ok=[True, False])
    with pytest.raises(DatabaseValueError, match="2 samples in all"):
        integ.check_solver_values("s", {"G_tau": np.full((2, 2, 5), np.nan)}, [1.0, 2.0])


def test_a_solver_that_returns_nonsense_records_a_failed_solve(tmp_path, monkeypatch):
    import importlib

    gen = importlib.import_module("triqs_mlsolver.database.generate")
    real = gen.solve_aim

    def broken(name, params, **kw):
        sol = real(name, params, **kw)
        if name == "ed1":
            sol.G_tau = sol.G_tau * 3  # |G(tau)| up to 3
        return sol

    monkeypatch.setattr(gen, "solve_aim", broken)
    out = tmp_path / "db.h5"
    generate(_cfg(n=2, chunk=2), out, quiet=True)
    db = Database(out)
    assert not db.read("ed1", "ok").any() and db.read("ed", "ok").all()
    assert "G(tau) lies in [-1, 0]" in db.reason[0] and "recorded as failed" in db.reason[0]
    db.verify()


# -- sample hashes and evaluate -------------------------------------------------------------
def test_sample_hashes_identify_the_aim_not_the_file():
    rng = np.random.default_rng(0)
    p = {"U": rng.uniform(1, 4, 5), "mu": rng.uniform(0, 2, 5), "beta": np.full(5, 10.0),
         "D": np.ones(5), "eps_k": rng.uniform(-1, 1, (5, 3)), "V_k": rng.uniform(.1, .5, (5, 3))}
    h = integ.sample_hashes(p)
    assert h.dtype == np.uint64 and len(np.unique(h)) == 5
    q = {k: v.copy() for k, v in p.items()}
    q["eps_k"], q["V_k"] = q["eps_k"][:, ::-1], -q["V_k"][:, ::-1]  # the same bath, reordered
    q["U"] = q["U"] * (1 + 2e-16)  # a last-bit difference of the sampler
    assert np.array_equal(integ.sample_hashes(q), h)
    q["U"][2] += 1e-6
    assert np.array_equal(integ.sample_hashes(q) == h, [True, True, False, True, True])
    assert np.array_equal(integ.decode_hashes(integ.encode_hashes(h)), np.sort(h))


def test_model_records_the_content_hashes_of_its_samples(db12, model12):
    path, report = model12
    meta = read_metadata(path)
    db = Database(db12)
    h = db.sample_hashes()
    n = {}
    for part in ("train", "validation", "test"):
        rec = integ.decode_hashes(meta["samples"][part])
        assert np.array_equal(rec, np.sort(h[report["split"][part]]))
        n[part] = len(rec)
    assert n == {"train": 7, "validation": 2, "test": 3}
    assert meta["samples"]["scheme"] == integ.SAMPLE_HASH_SCHEME
    # the size: 8 bytes per sample, base64
    size = sum(len(meta["samples"][k]) for k in ("train", "validation", "test"))
    assert size == sum(4 * -(-8 * k // 3) for k in n.values())


def test_evaluate_counts_regenerated_extended_and_unrelated_databases(db12, model12, tmp_path):
    """Issue 17: a regenerated (same data, new timestamp) or --extend-ed database counted the
    model's training samples as unseen."""
    path, report = model12
    model = load_model(path)
    regen, grown, other = tmp_path / "regen.h5", tmp_path / "grown.h5", tmp_path / "other.h5"
    time.sleep(0.01)
    generate(_cfg(), regen, quiet=True)
    assert integ.array_sha256(np.frombuffer(regen.read_bytes(), np.uint8)) != \
        integ.array_sha256(np.frombuffer(db12.read_bytes(), np.uint8))  # another file
    generate(_cfg(n=16), grown, quiet=True, extend=db12)
    generate(_cfg(n=5, seed=99), other, quiet=True)
    test = sorted(report["split"]["test"])
    for db, n_eval, excl, same in [(db12, 3, 9, True), (regen, 3, 9, False),
                                   (grown, 3 + 4, 9, False), (other, 5, 0, False)]:
        res = evaluate(model, Database(db), krr=False, log=None)
        assert len(res.samples) == n_eval, db
        assert sum(res.info["excluded"].values()) == excl, db
        assert res.info["excluded"] == ({"train": 7, "validation": 2} if excl else
                                        {"train": 0, "validation": 0})
        assert res.info["same_as_training"] is same
        if db is not other:
            assert sorted(res.samples.index.tolist())[:3] == test  # exactly its test split
            assert "ridge" in res.table["G(tau)"]  # the training samples were found by hash
        assert f"excluded {excl - 2 if excl else 0} training" in res.info["selection"]
    res = evaluate(model, Database(grown), split="validation", baselines=False, log=None)
    assert sorted(res.samples.index.tolist()) == sorted(report["split"]["validation"])
    # a model without sample hashes (format 1, re-hashed) falls back and says so
    model.metadata = {k: v for k, v in model.metadata.items() if k != "samples"}
    res = evaluate(model, Database(regen), baselines=False, log=None)
    assert len(res.samples) == 3 and "sampler seed" in res.info["warning"]
    res = evaluate(model, Database(other), baselines=False, log=None)
    assert len(res.samples) == 5 and "cannot be checked" in res.info["warning"]


def test_cli_evaluate_prints_the_exclusions(db12, model12, capsys):
    path, _ = model12
    assert cli_main(["-q", "evaluate", str(path), str(db12), "--no-baselines"]) == 0
    out = capsys.readouterr().out
    assert ("3 samples the model never saw (3 of its test split); excluded 7 training and 2 "
            "validation samples") in out


# -- model files -----------------------------------------------------------------------------
def _header_edit(src, dst, old: bytes, new: bytes):
    """Replace ``old`` by ``new`` (same length) in the file's bytes: a hand-edited header."""
    data = src.read_bytes()
    assert len(old) == len(new) and data.count(old) >= 1, old
    dst.write_bytes(data.replace(old, new, 1))
    return dst


def test_edited_metadata_byte_is_refused(model12, tmp_path, capsys):
    """Issue 17: one edited digit of the domain switched the out-of-domain guard off."""
    path, report = model12
    U_max = report["domain"]["U"][1]
    old = f'\\"U\\": [{report["domain"]["U"][0]!r}, {U_max!r}]'.encode()
    raw = path.read_bytes()
    assert old in raw
    digit = str(U_max)[0]
    new = old.replace(f", {digit}".encode(), f", {int(digit) % 9 + 1}".encode(), 1)
    bad = _header_edit(path, tmp_path / "domain.safetensors", old, new)
    assert read_metadata(bad, verify=False)["domain"]["U"][1] != U_max  # the edit took
    for fn in (load_model, read_metadata):
        with pytest.raises(ModelIntegrityError, match="metadata or the weights do not match"):
            fn(bad)
    assert cli_main(["model-info", str(bad)]) == 2
    assert "integrity hash" in capsys.readouterr().err
    # a flipped weight bit, a removed hash
    data = bytearray(raw)
    data[-3] ^= 0x01
    (tmp_path / "w.safetensors").write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError):
        load_model(tmp_path / "w.safetensors")
    nohash = _header_edit(path, tmp_path / "nohash.safetensors", b'"sha256":"',
                          b'"sha257":"')
    with pytest.raises(ModelIntegrityError, match="missing"):
        load_model(nohash)


def _as_format_1(src, dst):
    """``dst``: the model ``src`` as a format-1 writer left it (no integrity hash)."""
    from safetensors import safe_open
    from safetensors.numpy import save_file

    with safe_open(str(src), framework="numpy") as f:
        head = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    meta = json.loads(head["triqs_mlsolver"])
    meta["format_version"] = 1
    meta.pop("samples")
    save_file(tensors, str(dst), metadata={"format": head["format"], "format_version": "1",
                                           "triqs_mlsolver": json.dumps(meta)})
    return dst


def test_format_1_models_are_refused_with_the_fix_and_rehash_identically(db12, model12,
                                                                         tmp_path, capsys):
    from triqs_mlsolver.ml.dataset import load_samples

    path, _ = model12
    old = _as_format_1(path, tmp_path / "old.safetensors")
    with pytest.raises(LegacyModelError, match="model-rehash .*old.safetensors NEW"):
        load_model(old)
    assert cli_main(["model-info", str(old)]) == 0  # shown, with the warning
    assert "warning:" in capsys.readouterr().err
    new = tmp_path / "new.safetensors"
    assert cli_main(["model-rehash", str(old), str(new)]) == 0
    m_new, m_ref = load_model(new), load_model(path)
    assert m_new.metadata["rehashed"]["from_format_version"] == 1
    s = load_samples(Database(db12), m_ref.spec.representation, ["hubbard_i", "ed1", "ed"])
    assert np.array_equal(m_new.predict(s).G_tau, m_ref.predict(s).G_tau)  # bit for bit
    with pytest.raises(ValueError, match="nothing to re-hash"):
        rehash_model(new, tmp_path / "again.safetensors")
    # a format-2 file whose header claims format 1 is not re-hashed (nor loaded)
    fake = _header_edit(path, tmp_path / "fake.safetensors", b'"format_version":"2"',
                        b'"format_version":"1"')
    for fn in (load_model, lambda p: rehash_model(p, tmp_path / "x.safetensors")):
        with pytest.raises(ModelIntegrityError, match="claims format version 1"):
            fn(fake)


def test_shipped_models_carry_the_integrity_hash():
    from triqs_mlsolver.ml.modelfile import SHIPPED_DIR, shipped_models

    for name in shipped_models():
        meta = read_metadata(SHIPPED_DIR / f"{name}.safetensors")
        assert meta["format_version"] == 2
        if "rehashed" in meta:  # written as format 1: no sample hashes were recorded then
            assert meta["rehashed"]["from_format_version"] == 1 and "samples" not in meta
        else:  # written as format 2 (the single-band models, bethe_v6): their samples'
            # content hashes
            assert meta["samples"]["scheme"] and meta["database"]["file"] in (
                "single_band_db.h5", "single_band_db_ed4.h5",  # v1; v3 (the same + ed4e)
                "single_band_db_ed5.h5",  # v5 (the same + ed5e)
                "bethe_db.h5")  # bethe_v6
            files = [d["file"] for d in meta.get("databases") or [meta["database"]]]
            assert all("/" not in f for f in files)  # names only, never a machine path


# -- concurrency -----------------------------------------------------------------------------
_HOLDER = """
import sys, time
from triqs_mlsolver.database.integrity import OutputLock
OutputLock(sys.argv[1]).acquire()
print("locked", flush=True)
time.sleep(120)
"""


def test_a_second_generate_on_one_output_is_refused_and_a_dead_lock_taken_over(tmp_path,
                                                                               capfd):
    out = tmp_path / "db.h5"
    lock = lock_path_of(out)
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(lock)], env=_env(),
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        for resume in (False, True):
            with pytest.raises(ConfigError, match=f"is being written by pid {holder.pid} on "
                                                  "host .*lock file .*db.h5.lock"):
                generate(_cfg(n=2), out, quiet=True, resume=resume)
        assert not out.exists() and not (tmp_path / "db.h5.parts").exists()
    finally:
        holder.kill()  # SIGKILL: the lock file stays, with a pid that no longer runs
        holder.wait()
    assert json.loads(lock.read_text())["pid"] == holder.pid
    capfd.readouterr()
    generate(_cfg(n=2), out, quiet=True)
    err = capfd.readouterr().err
    assert f"taking over the lock {lock}" in err and f"pid {holder.pid}" in err
    assert Database(out).verify() and not lock.exists()
    # a lock from another host is never taken over
    lock.write_text(json.dumps({"pid": 1, "host": "elsewhere.example", "started": "x"}))
    with pytest.raises(ConfigError, match="another host is never taken over"):
        generate(_cfg(n=2), tmp_path / "db.h5", quiet=True)
    with pytest.raises(integ.OutputLockedError):
        OutputLock(lock).acquire()


@pytest.mark.slow
def test_generate_and_resume_racing_on_one_output_never_leave_a_bad_database(tmp_path):
    """Issue 17: 'generate' and 'generate --resume' on one output at once left an unreadable
    database in 2 of 13 tries while the first printed 'wrote'.  Now, 20 times: one
    refuses, the other writes a correct database."""
    cfg = tmp_path / "cfg.toml"
    from triqs_mlsolver._config import config_to_toml

    cfg.write_text(config_to_toml(_cfg(n=8, chunk=2)))
    ref = tmp_path / "ref.h5"
    generate(_cfg(n=8, chunk=2), ref, quiet=True)
    outcomes = []
    for k in range(20):
        out = tmp_path / f"race{k}.h5"
        procs = [subprocess.Popen([sys.executable, "-m", "triqs_mlsolver.cli.main", "-q",
                                   "generate", str(cfg), "-o", str(out), *extra],
                                  env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for extra in ([], ["--resume"])]
        res = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
        for rc, err in res:
            assert rc in (0, 2), err
            if rc == 2:
                assert "is being written by" in err or "already exists" in err, err
        assert sorted(rc for rc, _ in res) == [0, 2], res
        check_schema(out)
        assert Database(out).verify() > 0
        assert_same_h5_data(out, ref)
        assert sorted(p.name for p in tmp_path.glob(f"*race{k}*")) == [out.name]  # no debris
        outcomes.append(tuple(rc for rc, _ in res))
    print("outcomes (generate, generate --resume):", outcomes)


# -- full disks ------------------------------------------------------------------------------
class _DiskFillsAfter:
    """Stands in for the ``os`` module of the writer: ``write`` fails with ENOSPC once
    ``budget`` bytes were written."""

    def __init__(self, budget):
        self.budget = budget

    def write(self, fd, data):
        if len(data) > self.budget:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.budget -= len(data)
        return os.write(fd, data)

    def __getattr__(self, name):
        return getattr(os, name)


def test_full_disk_in_generate_says_how_to_resume_and_keeps_the_parts(tmp_path, monkeypatch,
                                                                      capsys):
    out = tmp_path / "db.h5"
    parts = tmp_path / "db.h5.parts"
    # room for the config, the run record and the first chunk only
    monkeypatch.setattr(integ, "os", _DiskFillsAfter(40_000))
    with pytest.raises(DiskFullError, match="ENOSPC") as exc:
        generate(_cfg(n=6, chunk=2), out, quiet=True)
    msg = str(exc.value)
    assert f"generate {parts}/config.toml -o {out} --resume" in msg and "\n" not in msg
    chunks = sorted(p.name for p in parts.iterdir())
    assert chunks == ["chunk-00000000-2-r0.h5", "config.toml", "run-000.json"], chunks
    assert not out.exists() and not lock_path_of(out).exists()
    assert not [p for p in tmp_path.rglob("*.tmp")]
    # the merge: every sample computed, the database does not fit
    monkeypatch.setattr(integ, "os", _DiskFillsAfter(10**9))
    generate(_cfg(n=6, chunk=2), out, quiet=True, resume=True, max_chunks=5)
    monkeypatch.setattr(integ, "os", _DiskFillsAfter(1000))
    assert cli_main(["-q", "generate", str(parts / "config.toml"), "-o", str(out),
                     "--resume"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "ENOSPC" in err and "only the merge is redone" in err
    monkeypatch.setattr(integ, "os", os)  # space freed
    generate(_cfg(n=6, chunk=2), out, quiet=True, resume=True)
    ref = tmp_path / "ref.h5"
    generate(_cfg(n=6, chunk=2), ref, quiet=True)
    assert_same_h5_data(out, ref)


def test_full_disk_in_train_says_how_to_resume(db12, tmp_path, monkeypatch):
    out = tmp_path / "m.safetensors"
    cfg = _train_cfg(db12, out)
    cfg["output"]["checkpoint_every"] = 1
    monkeypatch.setattr(integ, "os", _DiskFillsAfter(0))
    with pytest.raises(DiskFullError, match="ENOSPC.*'triqs-mlsolver train' command with "
                                            "--resume"):
        train(cfg, quiet=True)
    assert not out.exists() and not [p for p in tmp_path.rglob("*.tmp")]
    monkeypatch.setattr(integ, "os", os)
    train(cfg, quiet=True)
    load_model(out)


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 256 KiB tmpfs (root only); skipped, saying why, where mount does not work."""
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command: the disk-full test on a real tmpfs is skipped")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip() or r.returncode}); the "
                    "disk-full path is checked by the monkeypatched tests")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_full_tmpfs_in_generate_and_train_is_one_line_not_a_segfault(small_tmpfs, db12,
                                                                     tmp_path):
    """Issue 17: a full disk in generate ended in a segfault (exit 139) after a page of h5py
    tracebacks."""
    cfg = tmp_path / "cfg.toml"
    raw = {k: dict(v) for k, v in RAW.items()}
    raw["sampler"].update(n_samples=12, n_bath=1)
    raw["grid"].update(n_tau=1201)
    from triqs_mlsolver._config import config_to_toml

    cfg.write_text(config_to_toml(validate_config(raw)))
    out = small_tmpfs / "db.h5"
    r = _cli("-q", "generate", str(cfg), "-o", str(out), timeout=300)
    assert r.returncode == 1, (r.returncode, r.stderr)
    err = r.stderr.strip()
    assert len(err.splitlines()) == 1 and "ENOSPC" in err and "--resume" in err, err
    parts = small_tmpfs / "db.h5.parts"
    for p in parts.glob("chunk-*.h5"):  # every chunk left is complete
        with h5py.File(p, "r") as f:
            integ.verify_dataset(f["solvers/ed/G_tau"], file=str(p))
    assert not [p for p in small_tmpfs.rglob("*.tmp")]
    # more space, and --resume finishes the same database
    subprocess.run(["mount", "-o", "remount,size=4m", str(small_tmpfs)], check=True)
    r = _cli("-q", "generate", str(parts / "config.toml"), "-o", str(out), "--resume",
             timeout=300)
    assert r.returncode == 0, r.stderr
    ref = tmp_path / "ref.h5"
    generate(validate_config(raw), ref, quiet=True)
    assert_same_h5_data(out, ref)
    # train: the model file does not fit
    out.unlink()
    subprocess.run(["mount", "-o", "remount,size=256k", str(small_tmpfs)], check=True)
    fill = small_tmpfs / "filler"
    with open(fill, "wb") as fh:  # leave about 4 KiB
        try:
            fh.write(b"\0" * (256 * 1024 - 4096))
        except OSError:
            pass
    toml = _train_toml(tmp_path, db12)
    r = _cli("-q", "train", str(toml), "-o", str(small_tmpfs / "m.safetensors"), timeout=300)
    assert r.returncode == 1, r.stderr
    err = r.stderr.strip()
    assert len(err.splitlines()) == 1 and "ENOSPC" in err and "--resume" in err, err


def test_disk_full_is_recognised_in_h5py_messages():
    h5 = RuntimeError("Can't decrement id ref count (file write failed: ..., errno = 28, "
                      "error message = 'No space left on device', ...)")
    assert integ.is_disk_full(h5)
    try:
        try:
            raise OSError(errno.ENOSPC, "x")
        except OSError as e:
            raise ValueError("wrapped") from e
    except ValueError as e:
        assert integ.is_disk_full(e)
    assert not integ.is_disk_full(OSError(errno.EACCES, "denied"))
