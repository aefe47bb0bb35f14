# SPDX-License-Identifier: Apache-2.0
"""Training that continues from a model (``train --init-model``) and on several databases.

Tiny databases made like test_ml.py's ``tiny_db`` (same recipe, ``_cfg`` from there):
``a.h5`` (U in [1, 4]), ``b.h5`` (U in [4, 8]: data the parent never saw) and ``c.h5``
(another tau grid and bath size: incompatible with both).
"""

import argparse
import hashlib
import json
import shutil

import numpy as np
import pytest
from test_ml import _cfg
from triqs_mlsolver._config import config_to_toml
from triqs_mlsolver.database import Database, generate, validate_config
from triqs_mlsolver.errors import TriqsMLSolverError
from triqs_mlsolver.ml import TrainConfigError, load_model, save_model, train_model
from triqs_mlsolver.ml.dataset import load_samples
from triqs_mlsolver.ml.evaluate import unseen_samples
from triqs_mlsolver.ml.modelfile import integrity_sha256, sample_hash_sets
from triqs_mlsolver.ml.train import (
    IncompatibleDatabasesError,
    WarmStartError,
    prepare_data,
)

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

SOLVERS = ["hubbard_i", "ipt", "ed1", "ed"]


def _generate(path, seed, U, n=40, n_bath=2, n_tau=21):
    generate(validate_config({
        "sampler": {"n_samples": n, "n_bath": n_bath, "beta": [2.0, 5.0], "seed": seed,
                    "U": U, "W": [1.0, 3.0]},
        "solvers": {"cheap": ["hubbard_i", "ipt", "ed1"], "reference": "ed"},
        "grid": {"n_iw": 64, "n_tau": n_tau, "n_l": 16},
        "output": {"chunk_size": n},
    }), path, quiet=True)
    return path


@pytest.fixture(scope="module")
def dbs(tmp_path_factory):
    d = tmp_path_factory.mktemp("wsdb")
    return {"a": _generate(d / "a.h5", 11, [1.0, 4.0]),
            "b": _generate(d / "b.h5", 23, [4.0, 8.0]),
            "c": _generate(d / "c.h5", 5, [1.0, 4.0], n=8, n_bath=3, n_tau=31)}


@pytest.fixture(scope="module")
def parent(dbs, tmp_path_factory):
    out = tmp_path_factory.mktemp("parent") / "parent.safetensors"
    train_model(_cfg(dbs["a"], out, training={"max_epochs": 100}), quiet=True)
    return out


@pytest.fixture(scope="module")
def child(dbs, parent, tmp_path_factory):
    """The parent trained further on b.h5 alone (a smaller lr)."""
    out = tmp_path_factory.mktemp("child") / "child.safetensors"
    cfg = _cfg(dbs["b"], out, training={"init_model": str(parent), "lr": 1e-3,
                                        "max_epochs": 100})
    model, report = train_model(cfg, quiet=True)
    return model, report, out


def _samples(db, model, idx=None):
    return load_samples(Database(db), model.spec.representation, SOLVERS, idx)


def _rms(model, s):
    return float(np.sqrt(((model.predict(s).G_tau - s.G_tau["ed"]) ** 2).mean()))


# -- exact reproduction ---------------------------------------------------------------
@pytest.mark.parametrize("head", ["plain", "gated"])
def test_zero_epochs_reproduce_the_parent_exactly(dbs, parent, tmp_path, head):
    """max_epochs = 0: the parent's transforms (and gate scales) and weights, unchanged:
    the saved model predicts bit for bit what the parent does, on its data and on new."""
    if head == "plain":
        src = parent
    else:
        src = tmp_path / "gated.safetensors"
        train_model(_cfg(dbs["a"], src, model={"head": "gated", "n_ensemble": 2},
                         training={"max_epochs": 15}), quiet=True)
    out = tmp_path / "zero.safetensors"
    _, rep = train_model(_cfg(dbs["b"], out, model={"head": head},
                              training={"init_model": str(src), "max_epochs": 0}), quiet=True)
    p, c = load_model(src), load_model(out)
    assert c.head == head and c.architecture == p.architecture
    for name in ("input_transform", "target_transform"):
        assert getattr(c, name).to_dict() == getattr(p, name).to_dict()
    for a, b in zip(p.nets, c.nets, strict=True):
        for x, y in zip(a.state_dict().values(), b.state_dict().values()):
            assert torch.equal(x, y)
    for db in (dbs["a"], dbs["b"]):
        s = _samples(db, p)
        pp, pc = p.predict(s), c.predict(s)
        np.testing.assert_array_equal(pc.G_tau, pp.G_tau)
        np.testing.assert_array_equal(pc.G_tau_spread, pp.G_tau_spread)
    for info in rep["training"]["members"]:
        assert info["epochs"] == 0 and info["best_epoch"] == 0
        assert info["best_validation_loss"] == info["initial_validation_loss"]


# -- training on added data -------------------------------------------------------------
def test_added_data_lower_the_validation_error(dbs, parent, child):
    model, report, _ = child
    p = load_model(parent)
    vb = _samples(dbs["b"], p, np.array(report["split"]["validation"]))
    e_parent, e_child = _rms(p, vb), _rms(model, vb)
    # measured 2.4e-3 -> 1.4e-3 (the parent never saw U > 4)
    assert e_child < 0.8 * e_parent, (e_child, e_parent)
    assert report["errors"]["validation"]["all"]["RMS"] == pytest.approx(e_child, rel=1e-12)
    # the transforms are the parent's after training too; each member improved on its start
    assert model.input_transform.to_dict() == p.input_transform.to_dict()
    assert model.target_transform.to_dict() == p.target_transform.to_dict()
    for info in report["training"]["members"]:
        assert info["best_validation_loss"] < info["initial_validation_loss"]
        assert info["epochs"] > 0


# -- metadata --------------------------------------------------------------------------
def test_metadata_records_parent_and_union_of_seen_samples(dbs, parent, child, tmp_path):
    from safetensors import safe_open

    _, report, out = child
    meta = load_model(out).metadata
    rec = meta["parent"]
    with safe_open(str(parent), framework="numpy") as f:
        head = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    assert rec["file"] == "parent.safetensors"
    assert rec["sha256"] == head["sha256"] == integrity_sha256(head["triqs_mlsolver"], tensors)
    assert rec["file_sha256"] == hashlib.sha256(parent.read_bytes()).hexdigest()
    assert rec["databases"] == [{"file": "a.h5", "sha256":
                                 hashlib.sha256(dbs["a"].read_bytes()).hexdigest()}]
    assert rec["parent"] is None
    assert meta["database"]["file"] == "b.h5"
    assert meta["training"]["config"]["training"]["init_model"] == "parent.safetensors"
    # no machine path anywhere
    text = json.dumps(meta)
    for d in {parent.parent, out.parent, dbs["a"].parent}:
        assert str(d) not in text
    # seen = the parent's train/validation | this run's, by content hash
    ps = sample_hash_sets(load_model(parent).metadata)
    cs = sample_hash_sets(meta)
    hb = Database(dbs["b"]).sample_hashes()
    new = {k: hb[np.array(report["split"][k])] for k in ("train", "validation", "test")}
    np.testing.assert_array_equal(cs["train"], np.union1d(ps["train"], new["train"]))
    np.testing.assert_array_equal(cs["validation"],
                                  np.union1d(ps["validation"], new["validation"]))
    np.testing.assert_array_equal(cs["test"], np.union1d(ps["test"], new["test"]))
    # evaluate excludes both: on a.h5 the parent's, on b.h5 this run's train + validation
    for db, n_tr, n_va in ((dbs["a"], len(ps["train"]), len(ps["validation"])),
                           (dbs["b"], len(new["train"]), len(new["validation"]))):
        idx, info = unseen_samples(meta, Database(db), SOLVERS)
        assert info["excluded"] == {"train": n_tr, "validation": n_va}
        assert len(idx) == len(Database(db)) - n_tr - n_va
    # a grandchild records the chain
    out2 = tmp_path / "grandchild.safetensors"
    train_model(_cfg(dbs["b"], out2, training={"init_model": str(out), "max_epochs": 0}),
                quiet=True)
    chain = load_model(out2).metadata["parent"]
    assert chain["file"] == "child.safetensors" and chain["parent"]["file"] == rec["file"]


def test_parent_test_samples_are_never_trained_on(dbs, parent, tmp_path):
    """Another split seed on the parent's own database: its test samples that fall into the
    new train/validation parts are dropped, and the samples it saw leave the new test part."""
    out = tmp_path / "reshuffled.safetensors"
    _, rep = train_model(_cfg(dbs["a"], out, data={"split_seed": 3},
                              training={"init_model": str(parent), "max_epochs": 0}),
                         quiet=True)
    ps = sample_hash_sets(load_model(parent).metadata)
    h = Database(dbs["a"]).sample_hashes()
    own = prepare_data(_cfg(dbs["a"], out, data={"split_seed": 3}))[3]
    sp = rep["split"]
    assert not np.isin(h[sp["train"] + sp["validation"]], ps["test"]).any()
    assert not np.isin(h[sp["test"]], np.union1d(ps["train"], ps["validation"])).any()
    want = {k: int(np.isin(h[own[k]], ps["test"]).sum()) for k in ("train", "validation")}
    want["test"] = int(np.isin(h[own["test"]], np.union1d(ps["train"], ps["validation"])).sum())
    assert sp["dropped"] == want and want["train"] > 0 and want["test"] > 0
    for k in ("train", "validation", "test"):
        assert len(sp[k]) == len(own[k]) - want[k]


# -- refusals --------------------------------------------------------------------------
@pytest.mark.parametrize("sec,key,value,parent_value", [
    ("model", "width", 16, 32),
    ("model", "depth", 2, 1),
    ("model", "activation", "relu", "tanh"),
    ("model", "n_ensemble", 3, 2),
    ("model", "head", "gated", "plain"),
    ("features", "base", "ed1", "ipt"),
    ("features", "n", 15, 21),
    ("features", "mesh", "adaptive", "uniform"),
    ("features", "descriptors", ["U/D"], ["U/D", "eps/D", "log(beta*D)", "bath"]),
    ("features", "input_transform", "tanh", "identity"),
    ("training", "dtype", "float32", "float64"),
    ("data", "reference", "ed1", "ed"),
])
def test_incompatible_config_is_a_named_error(dbs, parent, tmp_path, sec, key, value,
                                              parent_value):
    out = tmp_path / "bad.safetensors"
    over = {sec: {key: value}, "training": {"init_model": str(parent),
                                            **({key: value} if sec == "training" else {})}}
    cfg = _cfg(dbs["b"], out, **over)
    with pytest.raises(WarmStartError) as exc:
        train_model(cfg, quiet=True)
    msg = str(exc.value)
    assert f"[{sec}] {key} = {value!r} here, {parent_value!r} in the model" in msg
    assert f"[{sec}] {key} = {json.dumps(parent_value)}" in msg  # the fix
    assert "parent.safetensors" in msg and str(parent.parent) not in msg
    assert exc.value.mismatches == [(f"[{sec}] {key}", value, parent_value)]
    assert isinstance(exc.value, TriqsMLSolverError) and isinstance(exc.value, TrainConfigError)
    assert not out.exists()


def test_data_that_do_not_fit_and_parents_without_sample_hashes(dbs, parent, tmp_path):
    out = tmp_path / "bad.safetensors"
    # c.h5 has a 3-site bath: the "bath" descriptors give 2 features more
    with pytest.raises(WarmStartError, match=r"n_in \(features per sample\) = 74.*= 72"):
        train_model(_cfg(dbs["c"], out, data={"validation_fraction": 0.5},
                         training={"init_model": str(parent)}), quiet=True)
    # a parent that records no sample hashes (a model written before format 2)
    old = tmp_path / "old.safetensors"
    p = load_model(parent)
    save_model(p, old, metadata={k: v for k, v in p.metadata.items() if k != "samples"})
    with pytest.raises(WarmStartError, match="old.safetensors records no content hashes"):
        train_model(_cfg(dbs["b"], out, training={"init_model": str(old)}), quiet=True)
    with pytest.raises(TrainConfigError, match="max_epochs = 0: must be >= 1 .*init_model"):
        _cfg(dbs["b"], out, training={"max_epochs": 0})
    assert not out.exists()


# -- several databases -------------------------------------------------------------------
def test_several_databases(dbs, tmp_path):
    over = dict(model={"n_ensemble": 1}, training={"max_epochs": 5})
    cfg = _cfg(dbs["a"], tmp_path / "ab.safetensors", **over)
    cfg["data"]["database"] = [str(dbs["a"]), str(dbs["b"])]
    model, rep = train_model(cfg, quiet=True)
    meta = load_model(tmp_path / "ab.safetensors").metadata
    assert [d["file"] for d in meta["databases"]] == ["a.h5", "b.h5"]
    h = {}
    for k, name in enumerate("ab"):
        rec = meta["databases"][k]
        assert rec["sha256"] == hashlib.sha256(dbs[name].read_bytes()).hexdigest()
        # each database is split alone, as a run on it alone splits it
        alone = prepare_data(_cfg(dbs[name], tmp_path / "x.safetensors"))[3]
        assert {p: rec["split"][p] for p in ("train", "validation", "test")} == \
            {p: alone[p] for p in ("train", "validation", "test")}
        assert rec["split"]["dropped"] == {"train": 0, "validation": 0, "test": 0}
        hh = Database(dbs[name]).sample_hashes()
        h[name] = {p: hh[alone[p]] for p in ("train", "validation", "test")}
    assert meta["database"] == {k: v for k, v in meta["databases"][0].items() if k != "split"}
    sets = sample_hash_sets(meta)
    for p in ("train", "validation", "test"):
        np.testing.assert_array_equal(sets[p], np.union1d(h["a"][p], h["b"][p]))
    assert rep["training"]["config"]["data"]["database"] == ["a.h5", "b.h5"]
    assert str(tmp_path) not in json.dumps(meta)
    # the same samples twice (a copy): the copy's are dropped, the test samples stay out
    copy = tmp_path / "a_copy.h5"
    shutil.copy(dbs["a"], copy)
    cfg2 = _cfg(dbs["a"], tmp_path / "aa.safetensors", **over)
    cfg2["data"]["database"] = [str(dbs["a"]), str(copy)]
    _, rep2 = train_model(cfg2, quiet=True, save=False)
    drop = rep2["databases"][1]["split"]["dropped"]
    assert drop == {p: len(h["a"][p]) for p in ("train", "validation", "test")}
    # a list of one database is the single-database run, bit for bit
    one, _ = train_model(_cfg(dbs["a"], tmp_path / "1.safetensors", **over), quiet=True,
                         save=False)
    cfg3 = _cfg(dbs["a"], tmp_path / "1.safetensors", **over,
                data={"database": [str(dbs["a"])]})
    assert cfg3["data"]["database"] == str(dbs["a"])
    two, _ = train_model(cfg3, quiet=True, save=False)
    for x, y in zip(one.nets[0].parameters(), two.nets[0].parameters()):
        assert torch.equal(x, y)


def test_incompatible_databases_are_a_named_error(dbs, tmp_path):
    cfg = _cfg(dbs["a"], tmp_path / "ac.safetensors")
    cfg["data"]["database"] = [str(dbs["a"]), str(dbs["c"])]
    with pytest.raises(IncompatibleDatabasesError,
                       match=r"a\.h5 and c\.h5 differ in the stored tau grid.*21 points vs "
                             r"31 points"):
        train_model(cfg, quiet=True)
    with pytest.raises(TrainConfigError, match="more than once"):
        _cfg(dbs["a"], tmp_path / "x.safetensors", data={"database": ["a.h5", "a.h5"]})


# -- the command ---------------------------------------------------------------------------
def test_cli_train_from_a_model_on_several_databases(dbs, tmp_path, capsys, monkeypatch):
    from triqs_mlsolver.cli import ml as cli_ml

    parser = argparse.ArgumentParser()
    parser.add_argument("-q", "--quiet", action="store_true")
    cli_ml.add_parsers(parser.add_subparsers(dest="command"))
    monkeypatch.chdir(tmp_path)
    cfg = _cfg(dbs["a"], tmp_path / "parent.safetensors", training={"max_epochs": 20})
    toml = tmp_path / "train.toml"
    toml.write_text(config_to_toml(cfg))

    def run(*argv):
        args = parser.parse_args(["-q", *argv])
        return args.func(args)

    assert run("train", str(toml)) == 0
    assert run("train", str(toml), "--init-model", "parent.safetensors", "--database",
               str(dbs["b"]), "--database", str(dbs["a"]), "--lr", "1e-3", "--max-epochs",
               "10", "-o", "child.safetensors") == 0
    meta = load_model(tmp_path / "child.safetensors").metadata
    assert meta["parent"]["file"] == "parent.safetensors"
    assert [d["file"] for d in meta["databases"]] == ["b.h5", "a.h5"]
    c = meta["training"]["config"]["training"]
    assert (c["init_model"], c["lr"], c["max_epochs"]) == ("parent.safetensors", 1e-3, 10)
    # a.h5 is split as the parent split it: nothing dropped, its test samples unseen
    assert meta["databases"][1]["split"]["test"] == \
        load_model(tmp_path / "parent.safetensors").metadata["split"]["test"]
    assert all(v == 0 for d in meta["databases"] for v in d["split"]["dropped"].values())
    text = json.dumps(meta)
    assert str(tmp_path) not in text and str(dbs["a"].parent) not in text
    capsys.readouterr()
    assert run("model-info", "child.safetensors") == 0
    info = json.loads(capsys.readouterr().out)
    assert info["parent"]["file"] == "parent.safetensors"
    assert info["databases"][0]["split"]["train"].endswith("samples")
    assert run("evaluate", "child.safetensors", str(dbs["a"]), "--no-baselines") == 0
    n_test = len(meta["databases"][1]["split"]["test"])
    assert f"{n_test} samples the model never saw ({n_test} of its test split)" in \
        capsys.readouterr().out
    # zero epochs from the command; a config that does not fit is refused, nothing written
    assert run("train", str(toml), "--init-model", "parent.safetensors", "--max-epochs", "0",
               "-o", "zero.safetensors") == 0
    bad = tmp_path / "bad.toml"
    bad.write_text(config_to_toml({**cfg, "model": {**cfg["model"], "width": 8}}))
    with pytest.raises(WarmStartError, match=r"\[model\] width = 8 here, 32 in the model"):
        run("train", str(bad), "--init-model", "parent.safetensors", "-o", "bad.safetensors")
    with pytest.raises(TrainConfigError, match="init_model"):
        run("train", str(toml), "--max-epochs", "0", "-o", "bad.safetensors")
    assert not (tmp_path / "bad.safetensors").exists()
