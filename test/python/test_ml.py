# SPDX-License-Identifier: Apache-2.0
"""ML layer: representations, transforms, constraints, training, model files, refusals."""

import argparse
import json
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
from helpers import train_config
from triqs_mlsolver._config import config_to_toml
from triqs_mlsolver.aim import AIMParams
from triqs_mlsolver.database import Database, generate, validate_config
from triqs_mlsolver.gf import transforms as tr
from triqs_mlsolver.ml import (
    ModelExistsError,
    ModelFormatError,
    ModelMismatchError,
    Representation,
    TrainConfigError,
    Transform,
    constraint_projection,
    descriptors,
    load_model,
    ph_image_params,
    project_tau_physical,
    publish_model,
    save_model,
    tau_mesh,
    train_model,
    validate_train_config,
)
from triqs_mlsolver.ml.dataset import load_samples
from triqs_mlsolver.ml.evaluate import evaluate, format_table
from triqs_mlsolver.solvers import solve_aim

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

REPS = [
    Representation(kind="tau", n=21, mesh="uniform"),
    Representation(kind="tau", n=15, mesh="adaptive"),
    Representation(kind="tau", n=15, mesh="adaptive", source="G_l"),
    Representation(kind="legendre", n=12),
    Representation(kind="legendre", n=12, parity="even"),
    Representation(kind="legendre", n=12, parity="odd"),
]


# -- representations -------------------------------------------------------------
@pytest.mark.parametrize("kind", ["uniform", "adaptive"])
@pytest.mark.parametrize("n", [3, 8, 51])
def test_tau_mesh_symmetric(kind, n):
    x = tau_mesh(kind, n)
    assert x[0] == 0.0 and x[-1] == 1.0 and np.all(np.diff(x) > 0)
    half = n // 2
    np.testing.assert_array_equal(x[::-1][:half], 1.0 - x[:half])  # mirrored by construction
    np.testing.assert_allclose(x[::-1], 1.0 - x, rtol=0, atol=1e-16)
    if kind == "adaptive" and n > 8:  # denser at the ends than in the middle
        assert x[1] - x[0] < 0.2 * (x[n // 2 + 1] - x[n // 2])


@pytest.mark.parametrize("name", ["identity", "tanh", "-tanh"])
@pytest.mark.parametrize("masked", [False, True])
def test_transforms_invertible(name, masked):
    rng = np.random.default_rng(1)
    v = rng.normal(0, 0.7, (50, 9))
    # e.g. log10 of a scale: the mask keeps tanh off it.  Unmasked, tanh's inverse
    # amplifies rounding by cosh(v)^2 (1e7 at |v| = 8), so stay where it is well conditioned
    v[:, -1] = rng.uniform(-8, 0, 50) if masked else rng.uniform(-2.5, 0, 50)
    mask = np.r_[np.ones(8, bool), False] if masked else None
    t = Transform(name, mask=mask).fit(v)
    z = t.forward(v)
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(t.inverse(z), v, rtol=0, atol=1e-12)
    t2 = Transform.from_dict(json.loads(json.dumps(t.to_dict())))
    np.testing.assert_array_equal(t2.forward(v), z)


def test_transform_errors():
    with pytest.raises(ValueError, match="transform 'tan'"):
        Transform("tan")
    with pytest.raises(RuntimeError, match="fit"):
        Transform("tanh").forward(np.zeros((2, 2)))


def _poles_G(beta, tau):
    """A G(tau) with poles: -sum_p w_p e^{-E_p tau} / (1 + e^{-beta E_p})."""
    E, W = np.array([-1.3, 0.2, 2.1]), np.array([0.3, 0.5, 0.2])
    return -(W * np.exp(-np.outer(tau, E)) / (1 + np.exp(-beta * E))).sum(axis=1)


def test_legendre_parity_is_tau_reflection():
    beta, n_l = 7.0, 24
    rng = np.random.default_rng(2)
    G_l = rng.normal(size=n_l)
    tau = np.linspace(0, beta, 33)
    sign = (-1.0) ** np.arange(n_l)
    np.testing.assert_allclose(tr.legendre_to_tau(sign * G_l, beta, tau),
                               tr.legendre_to_tau(G_l, beta, beta - tau), rtol=0, atol=1e-12)


@pytest.mark.parametrize("rep", REPS, ids=lambda r: r.describe())
def test_ph_image_is_reflection_in_every_representation(rep):
    beta = 4.0
    x = np.linspace(0, 1, 201)
    G_t = _poles_G(beta, beta * x)[None]
    G_l = tr.tau_to_legendre(G_t[0], beta, 40)[None]
    G_t_r = G_t[:, ::-1]
    G_l_r = G_l * (-1.0) ** np.arange(40)
    y = rep.encode(G_t, G_l, np.array([beta]), x)
    y_r = rep.encode(G_t_r, G_l_r, np.array([beta]), x)
    np.testing.assert_allclose(rep.ph_image(y), y_r, rtol=0, atol=1e-12)


def test_encode_decode_roundtrip_tau():
    beta = 3.0
    x = np.linspace(0, 1, 201)
    G = _poles_G(beta, beta * x)[None]
    rep = Representation(kind="tau", n=201, mesh="uniform")
    y = rep.encode(G, None, np.array([beta]), x)
    np.testing.assert_array_equal(rep.decode_tau(y, x), G)  # the stored mesh: exact
    rep = Representation(kind="tau", n=51, mesh="adaptive")
    y = rep.encode(G, None, np.array([beta]), x)
    np.testing.assert_allclose(y[0], _poles_G(beta, beta * rep.x), rtol=0, atol=1e-9)
    np.testing.assert_allclose(rep.decode_tau(y, x), G, rtol=0, atol=1e-5)


def test_legendre_decode_matches_transforms():
    beta = 5.0
    x = np.linspace(0, 1, 51)
    G_l = tr.tau_to_legendre(_poles_G(beta, beta * np.linspace(0, 1, 401)), beta, 30)[None]
    rep = Representation(kind="legendre", n=30)
    y = rep.encode(None, G_l, np.array([beta]))
    np.testing.assert_allclose(rep.decode_tau(y, x)[0], tr.legendre_to_tau(G_l[0], beta,
                                                                            beta * x),
                               rtol=0, atol=1e-13)
    np.testing.assert_allclose(rep.decode_legendre(y, [beta], 30), G_l, rtol=0, atol=1e-13)
    with pytest.raises(ValueError, match="n_l >= 40"):
        Representation(kind="legendre", n=40).encode(None, G_l, np.array([beta]))


def _ph_symmetric_params(U=2.5, beta=6.0):
    return AIMParams(U=U, mu=U / 2, beta=beta, eps_k=[-0.7, 0.0, 0.7], V_k=[0.4, 0.3, 0.4])


def test_ph_augmentation_maps_symmetric_sample_to_itself():
    p = _ph_symmetric_params()
    sol = solve_aim("ed", p, n_iw=64, n_tau=41, n_l=30)
    arrays = {"U": np.array([p.U]), "mu": p.mu[:1], "beta": np.array([p.beta]),
              "D": np.array([1.0]), "eps_k": p.eps_k[:1], "V_k": p.V_k[:1]}
    img = ph_image_params(arrays)
    names = ["U/D", "eps/D", "log(beta*D)", "m0", "m1", "m2", "m3", "bath"]
    X, _ = descriptors(arrays, names)
    X_img, _ = descriptors(img, names)
    np.testing.assert_allclose(X_img, X, rtol=0, atol=1e-15)
    x = np.linspace(0, 1, 41)
    for rep in REPS:
        y = rep.encode(sol.G_tau[:1], sol.G_l[:1], np.array([p.beta]), x)
        np.testing.assert_allclose(rep.ph_image(y), y, rtol=0, atol=1e-10)


def test_ph_image_params_solve_reflected_G():
    """The image parameters (mu -> U - mu, eps_k -> -eps_k) have G(beta - tau)."""
    p = AIMParams(U=3.0, mu=0.9, beta=5.0, eps_k=[-0.8, 0.1, 0.5], V_k=[0.3, 0.5, 0.2])
    arrays = {"U": np.array([p.U]), "mu": p.mu[:1], "beta": np.array([p.beta]),
              "eps_k": p.eps_k[:1], "V_k": p.V_k[:1]}
    img = ph_image_params(arrays)
    q = AIMParams(U=p.U, mu=float(img["mu"][0]), beta=p.beta, eps_k=img["eps_k"][0],
                  V_k=img["V_k"][0])
    g = solve_aim("ed", p, n_iw=64, n_tau=41, n_l=20)
    h = solve_aim("ed", q, n_iw=64, n_tau=41, n_l=20)
    np.testing.assert_allclose(h.G_tau, g.G_tau[:, ::-1], rtol=0, atol=1e-10)
    np.testing.assert_allclose(h.G_l, g.G_l * (-1.0) ** np.arange(20), rtol=0, atol=1e-10)


@pytest.mark.parametrize("rep", REPS, ids=lambda r: r.describe())
def test_constraint_projection_exact(rep):
    rng = np.random.default_rng(3)
    y = rng.normal(size=(20, rep.size))
    a = rep.constraint()
    w = None if rep.kind == "tau" else rep.metric()
    p = constraint_projection(y, a, 0.0, w)
    np.testing.assert_allclose(p @ a, 0.0, rtol=0, atol=1e-13)
    # Delta G(0) + Delta G(beta) = 0 in tau
    ends = rep.decode_tau(p, np.array([0.0, 1.0]))
    np.testing.assert_allclose(ends.sum(axis=1), 0.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(constraint_projection(p, a, 0.0, w), p, rtol=0, atol=1e-13)
    # the projection never moves a prediction away from a target on the constraint
    t = constraint_projection(rng.normal(size=(20, rep.size)), a, 0.0, w)
    wm = np.ones(rep.size) if w is None else w
    assert np.all(((p - t) ** 2 * wm).sum(1) <= ((y - t) ** 2 * wm).sum(1) + 1e-12)
    if rep.parity == "odd":
        assert np.all(a == 0)  # odd coefficients never change G(0) + G(beta)


def test_legendre_constraint_vector():
    rep = Representation(kind="legendre", n=6)
    expect = np.sqrt(2 * np.arange(6) + 1) * np.array([2, 0, 2, 0, 2, 0])
    np.testing.assert_array_equal(rep.constraint(), expect)


def test_project_tau_physical():
    rng = np.random.default_rng(4)
    G = rng.normal(-0.3, 0.4, (30, 11))
    P = project_tau_physical(G)
    assert np.all(P <= 0)
    np.testing.assert_allclose(P[:, 0] + P[:, -1], -1.0, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(project_tau_physical(P), P)
    truth = project_tau_physical(rng.normal(-0.3, 0.2, (30, 11)))
    assert np.all(((P - truth) ** 2).sum(1) <= ((G - truth) ** 2).sum(1) + 1e-12)


def test_descriptors_scale_free():
    p = {"U": np.array([2.0]), "mu": np.array([0.7]), "beta": np.array([10.0]),
         "D": np.array([1.0]), "eps_k": np.array([[-0.5, 0.2]]), "V_k": np.array([[0.3, 0.4]])}
    c = 2.5
    q = {"U": p["U"] * c, "mu": p["mu"] * c, "beta": p["beta"] / c, "D": p["D"] * c,
         "eps_k": p["eps_k"] * c, "V_k": p["V_k"] * c}
    names = ["U/D", "eps/D", "log(beta*D)", "m0", "m1", "m2", "m3", "bath"]
    np.testing.assert_allclose(descriptors(q, names)[0], descriptors(p, names)[0], rtol=1e-14)
    with pytest.raises(ValueError, match="unknown descriptor"):
        descriptors(p, ["U/W"])


@pytest.mark.parametrize("name, n", [("delta", 20), ("delta40", 40)])
def test_delta_descriptor_continuous_equals_discrete(name, n):
    # the "delta<n>" descriptors of a continuous Delta(i w) (tail-corrected transform, what
    # MLSolver sees in DMFT) equal the exact ones of the discrete bath it came from
    from triqs_mlsolver.ml.inference import _param_arrays
    from triqs_mlsolver.ml.representations import n_delta_needed

    eps, V = np.array([-0.9, -0.2, 0.05, 0.3, 1.1]), np.array([0.3, 0.2, 0.1, 0.15, 0.35])
    for beta in (20.0, 100.0):
        disc = AIMParams(U=1.0, mu=0.6, beta=beta, eps_k=eps, V_k=V)
        cont = AIMParams(U=1.0, mu=0.6, beta=beta, Delta_iw=disc.delta_iw(2048))
        p_d, _ = _param_arrays(disc, n_delta=n_delta_needed([name]))
        p_c, discrete = _param_arrays(cont, n_delta=n_delta_needed([name]))
        assert not discrete and p_c["delta_l"].shape == (1, n)
        x_d, lab = descriptors(p_d, [name])
        x_c, _ = descriptors(p_c, [name])
        assert len(lab) == n
        np.testing.assert_allclose(x_c, x_d, atol=1e-9)
    # the ph image of the continuous coefficients is that of the reflected bath
    img = descriptors(ph_image_params(p_c), [name])[0]
    ref = descriptors(ph_image_params(p_d), [name])[0]
    np.testing.assert_allclose(img, ref, atol=1e-9)
    for bad in ("delta0", "delta81", "deltax"):
        with pytest.raises(ValueError, match="delta<n>"):
            descriptors(p_d, [bad])


# -- tiny database, training, model files -------------------------------------------
@pytest.fixture(scope="module")
def tiny_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("mldb") / "tiny.h5"
    cfg = validate_config({
        "sampler": {"n_samples": 60, "n_bath": 2, "beta": [2.0, 5.0], "seed": 11,
                    "U": [1.0, 4.0], "W": [1.0, 3.0]},
        "solvers": {"cheap": ["hubbard_i", "ipt", "ed1"], "reference": "ed"},
        "grid": {"n_iw": 64, "n_tau": 21, "n_l": 16},
        "output": {"chunk_size": 30},
    })
    generate(cfg, path, quiet=True)
    return path


def _cfg(db, out, **over):
    return train_config({
        "data": {"database": str(db), "test_fraction": 0.2, "validation_fraction": 0.25},
        "features": {"kind": "tau", "n": 21, "mesh": "uniform", "inputs": ["hubbard_i", "ipt",
                                                                          "ed1"],
                     "base": "ipt", "descriptors": ["U/D", "eps/D", "log(beta*D)", "bath"]},
        "model": {"depth": 1, "width": 32, "activation": "tanh", "n_ensemble": 2},
        "training": {"lr": 3e-3, "batch_size": 8, "max_epochs": 150, "patience": 40,
                     "seed": 5},
        "output": {"model": str(out), "checkpoint_every": 0},
    }, over)


@pytest.fixture(scope="module")
def trained(tiny_db, tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    model, report = train_model(_cfg(tiny_db, out), quiet=True)
    return model, report, out


def test_training_beats_best_cheap_solver(trained, tiny_db):
    """The corrected G is closer to the reference than every cheap solver (validation)."""
    model, report, _ = trained
    db = Database(tiny_db)
    for part, factor in (("validation", 0.7), ("test", 1.0)):
        idx = np.array(report["split"][part])
        s = load_samples(db, model.spec.representation, ["hubbard_i", "ipt", "ed1", "ed"], idx)
        rms = {k: np.sqrt(((s.G_tau[k] - s.G_tau["ed"]) ** 2).mean())
               for k in ("hubbard_i", "ipt", "ed1")}
        model_rms = report["errors"][part]["all"]["RMS"]
        assert model_rms < factor * min(rms.values()), (part, model_rms, rms)
    # the learning curve went down
    h = report["training"]["history"][0]
    assert min(r["validation"] for r in h) < 0.5 * h[0]["validation"]


def test_split_disjoint_and_recorded(trained):
    _, report, path = trained
    sp = report["split"]
    tr_, va, te = (set(sp[k]) for k in ("train", "validation", "test"))
    assert not (tr_ & va) and not (tr_ & te) and not (va & te)
    assert len(te) == 12 and len(tr_ | va | te) == 60
    meta = load_model(path).metadata
    assert meta["split"]["test"] == sp["test"]
    assert len(meta["database"]["sha256"]) == 64
    assert meta["format"] == "triqs_mlsolver.model" and meta["format_version"] == 2
    # the content hashes of the samples of each part (test/python/test_integrity.py)
    from triqs_mlsolver.database.integrity import decode_hashes

    assert {k: len(decode_hashes(meta["samples"][k])) for k in ("train", "validation", "test")}\
        == {k: len(sp[k]) for k in ("train", "validation", "test")}


def test_model_file_roundtrip_identical(trained, tiny_db):
    model, _, path = trained
    db = Database(tiny_db)
    s = load_samples(db, model.spec.representation, ["hubbard_i", "ipt", "ed1", "ed"])
    loaded = load_model(path)
    a, b = model.predict(s), loaded.predict(s)
    np.testing.assert_array_equal(a.G_tau, b.G_tau)
    np.testing.assert_array_equal(a.G_tau_spread, b.G_tau_spread)
    assert np.all(a.G_tau <= 0)
    np.testing.assert_allclose(a.G_tau[:, 0] + a.G_tau[:, -1], -1, rtol=0, atol=1e-12)
    assert a.G_tau_spread.max() > 0  # two members


def test_gated_head_round_trip_and_gates(tiny_db, tmp_path):
    """A gated model saves, loads and predicts the same; with the residual and every gate
    but one set to zero it returns exactly the correction that input proposes."""
    out = tmp_path / "gated.safetensors"
    cfg = _cfg(tiny_db, out, model={"head": "gated", "n_ensemble": 1},
               training={"max_epochs": 20})
    model, report = train_model(cfg, quiet=True)
    assert model.head == "gated" and model.architecture["n_gates"] == 2
    back = load_model(out)
    db = Database(tiny_db)
    s = load_samples(db, model.spec.representation, ["hubbard_i", "ipt", "ed1", "ed"])
    np.testing.assert_array_equal(back.predict(s).G_tau, model.predict(s).G_tau)
    # force r = 0, g = (1, 0): the prediction is the first other input's correction (hubbard_i
    # relative to the base ipt), i.e. G = G_hubbard_i before the constraint and clipping
    net = back.nets[0]
    last = net.layers[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
        last.bias[model.architecture["n_out"]] = 1.0
    back.target_transform.shift[:] = 0.0
    back.clip = False
    dy = back.correction_members(s)[0]
    want = s.y["hubbard_i"] - s.y["ipt"]
    np.testing.assert_allclose(dy, want, rtol=0, atol=1e-12)


def test_gated_head_config_errors(tiny_db, tmp_path):
    with pytest.raises(TrainConfigError, match="head"):
        validate_train_config({"model": {"head": "moe"}})
    with pytest.raises(TrainConfigError, match="two"):
        validate_train_config({"model": {"head": "gated"},
                               "features": {"inputs": ["ipt"], "base": "ipt"}})
    with pytest.raises(TrainConfigError, match="identity"):
        validate_train_config({"model": {"head": "gated"},
                               "features": {"target_transform": "tanh"}})
    with pytest.raises(TrainConfigError, match="target_scale"):
        validate_train_config({"model": {"head": "gated"},
                               "features": {"target_scale": "ed2"}})


def test_training_is_deterministic(tiny_db, tmp_path):
    cfg = _cfg(tiny_db, tmp_path / "a.safetensors",
               model={"n_ensemble": 1}, training={"max_epochs": 5})
    m1, _ = train_model(cfg, quiet=True, save=False)
    m2, _ = train_model(cfg, quiet=True, save=False)
    for p, q in zip(m1.nets[0].parameters(), m2.nets[0].parameters()):
        assert torch.equal(p, q)


def test_parallel_members_identical_to_serial(tiny_db, tmp_path):
    # members trained in spawned worker processes (workers = 2) are bit-identical to the
    # ones trained one after the other in this process; checkpoints are written by workers
    over = dict(model={"n_ensemble": 3, "head": "gated"}, training={"max_epochs": 12})
    serial, _ = train_model(_cfg(tiny_db, tmp_path / "s.safetensors", **over), quiet=True,
                            save=False)
    over["training"] = {**over["training"], "workers": 2}
    over["output"] = {"checkpoint_every": 5}
    out = tmp_path / "p.safetensors"
    par, rep = train_model(_cfg(tiny_db, out, **over), quiet=True)
    assert rep["training"]["workers"] == 2
    assert len(par.nets) == 3
    for a, b in zip(serial.nets, par.nets):
        for p, q in zip(a.parameters(), b.parameters()):
            assert torch.equal(p, q)
    assert out.is_file() and not out.with_name("p.checkpoints").exists()
    with pytest.raises(TrainConfigError, match="workers"):
        _cfg(tiny_db, out, training={"workers": -1})


def _children(pid):
    """Pids of the live worker processes (``spawn_main``) whose parent is ``pid``."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmd = (d / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid and b"spawn_main" in cmd:
            out.append(int(d.name))
    return out


def _running(pid):
    """The process exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_workers_stop_when_the_training_process_is_killed(tiny_db, tmp_path):
    """A kill of the training process (SIGKILL: no handler runs) must not leave its spawned
    workers training on: they check their parent every PARENT_CHECK_SECONDS (session 22:
    two such orphans wrote into the checkpoint folder of the next run)."""
    import signal
    import subprocess
    import sys
    import time

    import triqs_mlsolver.ml.train as tr_mod

    cfg = tmp_path / "long.toml"
    cfg.write_text(
        f'[data]\ndatabase = "{tiny_db}"\n'
        '[features]\nkind = "tau"\nn = 21\nmesh = "uniform"\n'
        'inputs = ["hubbard_i", "ipt", "ed1"]\nbase = "ipt"\n'
        '[model]\ndepth = 1\nwidth = 32\nn_ensemble = 2\n'
        '[training]\nmax_epochs = 100000\npatience = 100000\nlr_patience = 0\nworkers = 2\n'
        f'[output]\nmodel = "{tmp_path / "long.safetensors"}"\ncheckpoint_every = 0\n')
    proc = subprocess.Popen([sys.executable, "-m", "triqs_mlsolver.cli.main", "train", str(cfg)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        t0 = time.monotonic()
        while len(kids := _children(proc.pid)) < 2:
            assert proc.poll() is None, "the training ended before its workers started"
            assert time.monotonic() - t0 < 120, "no workers after 120 s"
            time.sleep(0.5)
        time.sleep(8.0)  # the workers are training
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        t0 = time.monotonic()
        while alive := [k for k in kids if _running(k)]:
            assert time.monotonic() - t0 < 10 * tr_mod.PARENT_CHECK_SECONDS + 5, \
                f"workers {alive} still running after their parent was killed"
            time.sleep(0.5)
    finally:
        if proc.poll() is None:
            proc.kill()
        for k in kids if "kids" in locals() else []:
            if _running(k):
                os.kill(k, signal.SIGKILL)


def test_interrupted_training_resumes_from_finished_members(tiny_db, tmp_path, monkeypatch):
    # a run killed during its third member keeps the two finished ones; --resume trains only
    # the third and gives the weights of an uninterrupted run; another config is refused
    import triqs_mlsolver.ml.train as tr_mod
    from triqs_mlsolver.cli import ml as cli_ml

    over = dict(model={"n_ensemble": 3}, training={"max_epochs": 8})
    ref, _ = train_model(_cfg(tiny_db, tmp_path / "ref.safetensors", **over), quiet=True,
                         save=False)
    out = tmp_path / "run.safetensors"
    cfg = _cfg(tiny_db, out, **over)
    real = tr_mod._fit_member
    calls = []

    def killed_at_third(*a, **k):
        calls.append(a[7])
        if a[7] == cfg["training"]["seed"] + 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(tr_mod, "_fit_member", killed_at_third)
    with pytest.raises(KeyboardInterrupt):
        train_model(cfg, quiet=True)
    ckpt = tmp_path / "run.checkpoints"
    assert sorted(p.name for p in ckpt.glob("*.done.json")) == ["member0.done.json",
                                                                "member1.done.json"]
    assert not out.exists()
    monkeypatch.setattr(tr_mod, "_fit_member",
                        lambda *a, **k: (calls.append(a[7]), real(*a, **k))[1])
    calls.clear()
    # through the CLI, from a config file
    toml = tmp_path / "run.toml"
    toml.write_text(config_to_toml(cfg))
    parser = argparse.ArgumentParser()
    parser.add_argument("-q", "--quiet", action="store_true")
    cli_ml.add_parsers(parser.add_subparsers(dest="command"))
    bad = dict(cfg, training={**cfg["training"], "lr": 1e-3})
    toml_bad = tmp_path / "bad.toml"
    toml_bad.write_text(config_to_toml(bad))
    args = parser.parse_args(["-q", "train", str(toml_bad), "--resume"])
    with pytest.raises(TrainConfigError, match="another configuration"):
        args.func(args)
    assert calls == []
    args = parser.parse_args(["-q", "train", str(toml), "--resume"])
    assert args.func(args) == 0
    assert calls == [cfg["training"]["seed"] + 2]
    model = load_model(out)
    for a, b in zip(ref.nets, model.nets):
        for p, q in zip(a.parameters(), b.parameters()):
            assert torch.equal(p, q)
    assert not ckpt.exists()


def test_member_cut_short_continues_from_its_progress_record(tiny_db, tmp_path, monkeypatch):
    # a run killed in the middle of its second member (after its epoch-15 checkpoint):
    # --resume reuses the first, continues the second after epoch 15 (weights, Adam's
    # moments, the shuffling generator, the halved learning rate, the early-stopping
    # counters) and trains the third in worker processes; weights and learning curves are
    # bit-identical to an uninterrupted run
    import triqs_mlsolver.ml.train as tr_mod

    over = dict(model={"n_ensemble": 3},
                training={"max_epochs": 30, "patience": 1000, "lr_patience": 3,
                          "threads": 1, "workers": 1},
                output={"checkpoint_every": 5})
    ref, ref_report = train_model(_cfg(tiny_db, tmp_path / "ref.safetensors", **over),
                                  quiet=True, save=False)
    assert any(h["lr"] < ref_report["training"]["history"][1][0]["lr"]
               for h in ref_report["training"]["history"][1])  # the lr was halved
    out = tmp_path / "run.safetensors"
    cfg = _cfg(tiny_db, out, **over)
    real = tr_mod._Checkpoint.progress
    seed1 = cfg["training"]["seed"] + 1

    def killed_after_epoch_15(self, net, opt, gen, best_state, record):
        epoch = record["epoch"]
        real(self, net, opt, gen, best_state, record)
        if self.k == 1 and epoch == 15:
            raise KeyboardInterrupt

    monkeypatch.setattr(tr_mod._Checkpoint, "progress", killed_after_epoch_15)
    with pytest.raises(KeyboardInterrupt):
        train_model(cfg, quiet=True)
    monkeypatch.setattr(tr_mod._Checkpoint, "progress", real)
    ckpt = tmp_path / "run.checkpoints"
    assert sorted(p.name for p in ckpt.glob("*.json")) == ["member0.done.json",
                                                           "member1.progress.json"]
    rec = tr_mod._Checkpoint(ckpt, 1, "another run")
    with pytest.raises(TrainConfigError, match="another configuration"):
        rec.load_progress()
    lines = []
    cfg2 = train_config(cfg, {"training": {"workers": 2}})  # the same fingerprint
    model, report = train_model(cfg2, quiet=False, resume=True, log=lines.append)
    assert any("continuing 1 member(s) cut short, after epochs [15]" in s for s in lines)
    assert report["training"]["members"][1]["seed"] == seed1
    for a, b in zip(ref.nets, model.nets):
        for p, q in zip(a.parameters(), b.parameters()):
            assert torch.equal(p, q)
    assert report["training"]["history"] == ref_report["training"]["history"]
    assert not ckpt.exists()


def test_progress_record_without_its_own_tensors_is_not_used(tiny_db, tmp_path):
    # a kill between the two writes leaves a record whose tensors are another epoch's:
    # that member starts again from its beginning
    import triqs_mlsolver.ml.train as tr_mod

    ck = tr_mod._Checkpoint(tmp_path, 0, "fp")
    net = torch.nn.Linear(2, 1)
    opt = torch.optim.Adam(net.parameters())
    gen = torch.Generator().manual_seed(1)
    rec = {"epoch": 5, "best": 1.0, "best_epoch": 5, "bad": 0, "lr_bad": 0, "initial": None,
           "history": [], "seconds": 1.0}
    ck.progress(net, opt, gen, None, rec)
    got = ck.load_progress()
    assert got["epoch"] == 5 and got["best_state"] is None
    assert torch.equal(got["generator"], gen.get_state())
    saved = (tmp_path / "member0.progress.json").read_text()
    ck.progress(net, opt, gen, None, dict(rec, epoch=10))
    (tmp_path / "member0.progress.json").write_text(saved)  # the tensors are epoch 10's
    assert ck.load_progress() is None


def test_symmetrized_model_is_ph_covariant(trained, tiny_db):
    model, _, _ = trained
    db = Database(tiny_db)
    s = load_samples(db, model.spec.representation, ["hubbard_i", "ipt", "ed1", "ed"])
    model.symmetrize = True
    try:
        a = model.predict(s)
        b = model.predict(s.ph_image(model.spec.representation))
    finally:
        model.symmetrize = False
    np.testing.assert_allclose(b.G_tau, a.G_tau[:, ::-1], rtol=0, atol=1e-12)


def test_evaluate_table(trained, tiny_db):
    _, _, path = trained
    model = load_model(path)
    res = evaluate(model, Database(tiny_db), log=None, krr_n_cv=30, krr_n_fit=60)
    assert res.bins["all"].sum() == 12
    tab = res.table["G(tau)"]
    assert {"hubbard_i", "ipt", "ed1", "model", "ridge", "krr"} <= set(tab)
    assert tab["model"]["all"]["RMS"] < tab["ed1"]["all"]["RMS"]
    txt = format_table(res, "Z0", "MAE")
    assert "beta=2" in txt and "U in" in txt
    # ratios to the best cheap solver of each bin, with paired bootstrap intervals
    from triqs_mlsolver.ml.evaluate import format_ratio_table, ratio_table

    ref_all = res.samples.G_tau[res.reference]
    rat = ratio_table(res, n_boot=500)
    for b in ("all", "beta=2", "beta=5"):
        best = min(("hubbard_i", "ipt", "ed1"), key=lambda c: tab[c][b]["RMS"])
        r = rat["model"][b]
        assert r["best"] == best
        np.testing.assert_allclose(r["ratio"], tab["model"][b]["RMS"] / tab[best][b]["RMS"],
                                   rtol=1e-12)
        assert r["lo"] < r["ratio"] < r["hi"]
    assert "[" in format_ratio_table(rat, list(res.bins)) and "(best cheap)" in \
        format_ratio_table(rat, list(res.bins), fmt="rst")
    # filling bins from the reference's total density; (beta D, U/D, n) cells partition the
    # rows, and each cell's ratio is the model's RMS over the best cheap solver of the cell
    from triqs_mlsolver.ml.evaluate import cell_table, format_cell_table

    dens = Database(tiny_db).read(res.reference, "density")[res.samples.index].sum(axis=1)
    np.testing.assert_array_equal(res.filling, dens)
    n_bins = [b for b in res.bins if b.startswith("n in")]
    assert n_bins and sum(res.bins[b].sum() for b in n_bins) == 12
    cells = cell_table(res, beta_d_edges=(0.5, 3, 20), u_edges=(0, 2, 20), n_edges=(0, 1, 2),
                       n_boot=200)
    assert sum(c["rows"] for c in cells) == 12
    D = res.samples.params["D"]
    for c in cells:
        m = ((res.samples.beta * D >= c["beta_D"][0]) & (res.samples.beta * D < c["beta_D"][1])
             & (res.samples.params["U"] / D >= c["U"][0])
             & (res.samples.params["U"] / D < c["U"][1])
             & (dens >= c["n"][0]) & (dens < c["n"][1]))
        rms = {k: np.sqrt(np.mean((res.G_tau[k][m] - ref_all[m]) ** 2))
               for k in ("hubbard_i", "ipt", "ed1", "model")}
        best = min(("hubbard_i", "ipt", "ed1"), key=rms.get)
        assert c["rows"] == m.sum() and c["model"]["best"] == best
        np.testing.assert_allclose(c["model"]["ratio"], rms["model"] / rms[best], rtol=1e-10)
    assert "worst cell" in format_cell_table(cells) or max(c["rows"] for c in cells) < 10
    # the worst samples: sorted by the model's error, with their share of their beta bin
    from triqs_mlsolver.ml.evaluate import format_worst, worst_samples

    worst = worst_samples(res, 5)
    e = np.sqrt(((res.G_tau["model"] - ref_all) ** 2).mean(axis=1))
    assert [w["index"] for w in worst] == [int(res.samples.index[i])
                                           for i in np.argsort(-e)[:5]]
    for w in worst:
        m = res.samples.beta == w["beta"]
        np.testing.assert_allclose(w["share_of_beta_bin"],
                                   w["rms"] ** 2 / (e[m] ** 2).sum(), rtol=1e-12)
    assert "share of bin" in format_worst(worst)
    with pytest.raises(ValueError, match="no method"):
        worst_samples(res, 3, method="svm")
    # model+guard: the reference where the ensemble spread exceeds the limit, else the model
    g = res.info["guard"]
    flag = res.spread.max(axis=1) > g["spread_limit"]
    assert g["flagged"] == int(flag.sum())
    ref = res.samples.G_tau[res.reference]
    np.testing.assert_array_equal(res.G_tau["model+guard"][flag], ref[flag])
    np.testing.assert_array_equal(res.G_tau["model+guard"][~flag], res.G_tau["model"][~flag])
    # with a limit below every spread all samples go to the reference: zero error
    model.metadata = {**model.metadata, "spread": {"q99": 0.0}}
    res0 = evaluate(model, Database(tiny_db), log=None, baselines=False)
    assert res0.info["guard"]["flagged"] == 12
    assert res0.table["G(tau)"]["model+guard"]["all"]["max"] == 0.0


def test_cli_train_and_evaluate(tiny_db, tmp_path, capsys):
    from triqs_mlsolver.cli import ml as cli_ml

    parser = argparse.ArgumentParser()
    parser.add_argument("-q", "--quiet", action="store_true")
    cli_ml.add_parsers(parser.add_subparsers(dest="command"))
    cfg = tmp_path / "train.toml"
    cfg.write_text(f"""
[data]
database = "{tiny_db}"
[features]
kind = "legendre"
n = 12
inputs = ["ipt", "ed1"]
base = "ed1"
[model]
preset = "seed"
[training]
max_epochs = 3
[output]
model = "m.safetensors"
""")
    args = parser.parse_args(["-q", "train", str(cfg)])
    assert args.func(args) == 0
    model = tmp_path / "m.safetensors"
    assert model.is_file()
    meta = load_model(model).metadata
    assert meta["architecture"]["width"] == 51  # the seed preset
    assert meta["training"]["config"]["training"]["batch_size"] == 8
    # no machine path anywhere in the metadata (issue 18): the database by name and content
    text = json.dumps(meta)
    assert str(tmp_path) not in text and str(tiny_db.parent) not in text
    assert meta["database"]["file"] == tiny_db.name and meta["database"]["samples_sha256"]
    assert meta["training"]["config"]["data"]["database"] == tiny_db.name
    args = parser.parse_args(["-q", "evaluate", str(model), str(tiny_db), "--no-krr",
                              "--plot", str(tmp_path / "plots")])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "G(tau) RMS" in out and "ridge" in out
    assert (tmp_path / "plots" / "error_histograms.png").is_file()
    # the ratio table compares with the named cheap solvers only
    args = parser.parse_args(["-q", "evaluate", str(model), str(tiny_db), "--no-baselines",
                              "--cheap", "hubbard_i"])
    assert args.func(args) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.split()[:2] == ["(best", "cheap)"] and set(last.split()[2:]) == {"hubbard_i"}
    args = parser.parse_args(["-q", "evaluate", str(model), str(tiny_db), "--no-baselines",
                              "--cheap", "ed9"])
    with pytest.raises(ValueError, match="ed9"):
        args.func(args)
    args = parser.parse_args(["-q", "train", str(cfg)])
    with pytest.raises(ModelExistsError, match="exists"):
        args.func(args)


def test_cli_model_names_and_missing_files(tmp_path):
    """model-info / evaluate take a shipped model's name like MLSolver does; a wrong path
    says what to give instead."""
    import subprocess
    import sys

    def cli(*a):
        return subprocess.run([sys.executable, "-m", "triqs_mlsolver.cli.main", *a],
                              capture_output=True, text=True, cwd=tmp_path, timeout=120)

    r = cli("model-info", "triqs_mlsolver_bethe_v1")
    assert r.returncode == 0, r.stderr
    assert '"name": "triqs_mlsolver_bethe_v1"' in r.stdout
    r = cli("model-info", "no_such_model.safetensors")
    assert r.returncode == 2
    assert "triqs-mlsolver train" in r.stderr and "triqs_mlsolver_bethe_v1" in r.stderr
    r = cli("evaluate", "triqs_mlsolver_bethe_v1", "missing_db.h5")
    assert r.returncode == 2 and "triqs-mlsolver generate" in r.stderr, r.stderr


def test_diverged_training_and_too_small_splits_are_clear_errors(tiny_db):
    from triqs_mlsolver.ml.train import TrainingError, _fit_member, prepare_data

    cfg = validate_train_config({"data": {"database": str(tiny_db)},
                                 "training": {"max_epochs": 3}})
    rng = np.random.default_rng(0)
    Z, T, W = rng.normal(size=(8, 3)), rng.normal(size=(8, 2)), np.ones(8)
    Zv = np.full((2, 3), np.nan)  # the validation loss is never finite
    with pytest.raises(TrainingError, match="never finite in 3 epochs.*lower \\[training\\] lr"):
        _fit_member(Z, T, W, Zv, T[:2], W[:2], cfg, 0)
    tiny = validate_train_config({"data": {"database": str(tiny_db), "max_samples": 4},
                                  "features": {"inputs": ["ipt", "ed1"], "base": "ed1"}})
    with pytest.raises(TrainConfigError, match="no validation sample.*at least 6 samples"):
        prepare_data(tiny)


def test_gridsearch(tiny_db, tmp_path):
    from triqs_mlsolver.ml.gridsearch import run_grid

    raw = {
        "data": {"database": str(tiny_db)},
        "features": {"kind": "tau", "n": 21, "mesh": "uniform", "inputs": ["ed1"],
                     "base": "ed1", "descriptors": ["U/D"]},
        "training": {"max_epochs": 2},
        "grid": {"model.width": [4, 8], "features": [{"input_transform": "tanh"},
                                                     {"input_transform": "identity"}]},
    }
    text = run_grid(raw, tmp_path, quiet=True)
    assert len(text.splitlines()) == 2 + 4
    assert (tmp_path / "results.csv").is_file()
    with pytest.raises(TrainConfigError, match="model.widht"):
        run_grid({**raw, "grid": {"model.widht": [1]}}, tmp_path, quiet=True)


def test_bad_train_configs(tiny_db, tmp_path):
    with pytest.raises(TrainConfigError, match="unknown key 'lr_rate' in \\[training\\]"):
        validate_train_config({"training": {"lr_rate": 1e-3}})
    with pytest.raises(TrainConfigError, match="unknown section"):
        validate_train_config({"optimizer": {}})
    with pytest.raises(TrainConfigError, match="base solver"):
        validate_train_config({"features": {"inputs": ["ipt"], "base": "ed3"}})
    with pytest.raises(TrainConfigError, match="preset"):
        validate_train_config({"model": {"preset": "best"}})
    with pytest.raises(TrainConfigError, match="activation"):
        validate_train_config({"model": {"activation": "swish"}})
    with pytest.raises(TrainConfigError, match="delta<n>"):
        validate_train_config({"features": {"descriptors": ["U/D", "delta100"]}})
    with pytest.raises(TrainConfigError, match="unknown descriptor 'bathh'"):
        validate_train_config({"features": {"descriptors": ["bathh"]}})
    assert validate_train_config({"features": {"descriptors": ["delta40"]}})
    with pytest.raises(TrainConfigError, match="not in"):
        train_model(_cfg(tiny_db, tmp_path / "x.safetensors",
                   features={"inputs": ["nca", "ed1"], "base": "ed1"}), quiet=True)


# -- refusals -----------------------------------------------------------------------
def test_refuse_truncated_and_corrupt(trained, tmp_path):
    _, _, path = trained
    data = path.read_bytes()
    trunc = tmp_path / "trunc.safetensors"
    trunc.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFormatError, match="truncated"):
        load_model(trunc)
    bad = bytearray(data)
    bad[-5] ^= 0xFF  # flip bits in the last weight
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(bytes(bad))
    with pytest.raises(ModelFormatError, match="integrity hash; the file is corrupt"):
        load_model(corrupt)
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    with pytest.raises(ModelFormatError, match="empty or truncated"):
        load_model(empty)


def test_refuse_foreign_file(tmp_path, tiny_db):
    from safetensors.numpy import save_file

    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": np.zeros(3)}, str(foreign), metadata={"format": "pt"})
    with pytest.raises(ModelFormatError, match="not a triqs_mlsolver model"):
        load_model(foreign)
    with pytest.raises(ModelFormatError, match="not a safetensors model file"):
        load_model(tiny_db)  # an HDF5 file
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.safetensors")


def test_safetensors_header_length_like_a_pickle_opcode_is_not_refused(tmp_path):
    """A safetensors file whose 8-byte header length starts with 0x80 (pickle's PROTO
    opcode) is a safetensors file: refusing it as a pickle was a bug (found on a real model)."""
    from safetensors.numpy import save_file

    for pad in range(300):
        f = tmp_path / "x.safetensors"
        save_file({"w": np.zeros(3)}, str(f), metadata={"format": "pt", "pad": "x" * pad})
        if f.read_bytes()[0] == 0x80:
            break
    else:  # pragma: no cover - the header length takes every low byte over 256 paddings
        pytest.fail("no padding gave a header length with low byte 0x80")
    with pytest.raises(ModelFormatError, match="not a triqs_mlsolver model"):
        load_model(f)


class _Evil:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("how", ["pickle", "torch.save"])
def test_refuse_code_carrying_pickle(tmp_path, how):
    marker = tmp_path / "PWNED"
    evil = tmp_path / "evil.safetensors"
    if how == "pickle":
        evil.write_bytes(pickle.dumps({"weights": _Evil(marker)}, protocol=4))
    else:
        torch.save({"weights": _Evil(marker)}, evil)
    # sanity: the payload really would run if unpickled
    assert not marker.exists()
    with pytest.raises(ModelFormatError, match="refused"):
        load_model(evil)
    assert not marker.exists(), "loading a model executed code"


def test_refuse_representation_mismatch(trained, tiny_db, tmp_path):
    model, _, _ = trained
    # a Legendre model needing more coefficients than the database stores (16)
    from triqs_mlsolver.ml.modelfile import check_compatible

    spec = model.spec
    model.spec = type(spec)(Representation(kind="legendre", n=30), spec.inputs, spec.base,
                            spec.descriptors, spec.input_mode, spec.target_scale)
    try:
        with pytest.raises(ModelMismatchError, match="needs 30 Legendre coefficients"):
            check_compatible(model, Database(tiny_db))
    finally:
        model.spec = spec
    # a database without the model's input solvers
    other = tmp_path / "other.h5"
    generate(validate_config({
        "sampler": {"n_samples": 4, "n_bath": 2, "beta": [2.0], "seed": 3},
        "solvers": {"cheap": ["hubbard_i"], "reference": "ed"},
        "grid": {"n_iw": 32, "n_tau": 21, "n_l": 16}}), other, quiet=True)
    with pytest.raises(ModelMismatchError, match="needs solvers"):
        evaluate(model, Database(other), log=None)


def test_refuse_inconsistent_metadata(trained, tmp_path):
    """Metadata whose representation does not match the weights is refused."""
    from safetensors import safe_open
    from safetensors.numpy import save_file
    from triqs_mlsolver.ml.modelfile import ModelIntegrityError, integrity_sha256

    _, _, path = trained
    with safe_open(str(path), framework="numpy") as f:
        head = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    meta = json.loads(head["triqs_mlsolver"])
    meta["feature_spec"]["representation"]["n"] = 15
    head["triqs_mlsolver"] = json.dumps(meta)
    bad = tmp_path / "bad.safetensors"
    save_file(tensors, str(bad), metadata=head)
    # edited without its integrity hash: refused as edited
    with pytest.raises(ModelIntegrityError, match="metadata or the weights do not match"):
        load_model(bad)
    # re-hashed by hand: the hash passes, the consistency check refuses
    head["sha256"] = integrity_sha256(head["triqs_mlsolver"], tensors)
    save_file(tensors, str(bad), metadata=head)
    with pytest.raises(ModelFormatError, match="transforms/representation .* do not\\s+match"):
        load_model(bad)


def test_published_models_are_frozen(trained, tmp_path):
    model, _, path = trained
    pub = publish_model(path, tmp_path, "tiny_test_v1")
    assert pub.name == "tiny_test_v1.safetensors"
    meta = load_model(pub).metadata
    assert meta["published"] and meta["name"] == "tiny_test_v1"
    assert meta["split"] == load_model(path).metadata["split"]
    with pytest.raises(ModelExistsError, match="never edited in place"):
        publish_model(path, tmp_path, "tiny_test_v1")
    with pytest.raises(ModelExistsError, match="published"):
        save_model(model, pub, overwrite=True)
    with pytest.raises(ValueError, match="versioned"):
        publish_model(path, tmp_path, "tiny_test")
    with pytest.raises(ModelExistsError, match="exists"):
        save_model(model, path)


def test_publish_name_checked_before_training(tiny_db, tmp_path):
    """An unversioned [output] name, or one already published, is refused before any training
    (it used to fail only after the model had been trained and written)."""
    with pytest.raises(TrainConfigError, match="versioned"):
        _cfg(tiny_db, tmp_path / "m.safetensors", output={"name": "mymodel"})
    (tmp_path / "tiny_test_v1.safetensors").write_bytes(b"")
    cfg = _cfg(tiny_db, tmp_path / "m.safetensors", output={"name": "tiny_test_v1"})
    with pytest.raises(ModelExistsError, match="next version number"):
        train_model(cfg, quiet=True)
    assert not (tmp_path / "m.safetensors").exists()  # refused before training wrote it
    # the trained file and the published one the same: publishing would fail after training
    cfg = _cfg(tiny_db, tmp_path / "tiny_test_v2.safetensors", output={"name": "tiny_test_v2"})
    with pytest.raises(TrainConfigError, match="another file name"):
        train_model(cfg, quiet=True)
    assert not (tmp_path / "tiny_test_v2.safetensors").exists()


def test_header_length_sniffing(tmp_path):
    f = tmp_path / "huge_header.safetensors"
    f.write_bytes(struct.pack("<Q", 10**12) + b"{}")
    with pytest.raises(ModelFormatError, match="truncated"):
        load_model(f)


def test_documented_configs_are_valid():
    """The config in ml.train's docstring (shown in doc/ml.rst) is the defaults; the
    shipped default-model config validates."""
    import importlib
    import textwrap
    from pathlib import Path

    train_mod = importlib.import_module("triqs_mlsolver.ml.train")
    import triqs_mlsolver.ml.train as imported

    assert imported is train_mod  # the module, not shadowed by a function
    try:
        import tomllib
    except ModuleNotFoundError:  # pragma: no cover - Python 3.10
        import tomli as tomllib

    block = train_mod.__doc__.split(".. code-block:: toml")[1]
    doc_cfg = tomllib.loads(textwrap.dedent(block))
    doc_cfg["data"]["database"] = ""
    assert validate_train_config(doc_cfg) == train_mod.DEFAULTS
    path = Path(train_mod.__file__).with_name("default_model.toml")
    cfg = train_mod.load_train_config(path)
    assert cfg["features"]["base"] == "ed3"


def test_inference_from_solutions_matches_database(trained, tiny_db):
    """correct() on fresh cheap solves equals the prediction on the stored sample."""
    from triqs_mlsolver.ml.inference import OutOfDomainWarning, correct

    model, report, _ = trained
    db = Database(tiny_db)
    i = report["split"]["test"][0]
    p = db.params
    params = AIMParams(U=p["U"][i], mu=p["mu"][i], beta=p["beta"][i], eps_k=p["eps_k"][i],
                       V_k=p["V_k"][i], D=p["D"][i])
    sols = {s: solve_aim(s, params, n_iw=64, n_tau=21, n_l=16) for s in model.spec.inputs}
    out = correct(model, params, sols)
    s = load_samples(db, model.spec.representation, model.spec.inputs, np.array([i]))
    np.testing.assert_allclose(out.G_tau[0], model.predict(s).G_tau[0], rtol=0, atol=1e-9)
    assert out.G_tau.shape == (2, 21) and out.G_l.shape == (2, 16) and not out.out_of_domain
    far = AIMParams(U=40.0, mu=20.0, beta=p["beta"][i], eps_k=p["eps_k"][i], V_k=p["V_k"][i],
                    D=p["D"][i])
    sols = {s: solve_aim(s, far, n_iw=64, n_tau=21, n_l=16) for s in model.spec.inputs}
    with pytest.warns(OutOfDomainWarning, match="U/D"):
        correct(model, far, sols)


def test_gauss_bath_reproduces_moments():
    from triqs_mlsolver.ml.inference import _gauss_bath

    eps, V = np.array([-0.9, -0.2, 0.4, 1.0]), np.array([0.2, 0.3, 0.25, 0.1])
    m = np.array([(V**2 * eps**n).sum() for n in range(4)])
    e2, v2 = _gauss_bath(m)
    np.testing.assert_allclose([(v2**2 * e2**n).sum() for n in range(4)], m, rtol=1e-12)
    # nearly equal levels far from 0 (where a root formula for the moment polynomial
    # cancels), a skewed bath, and one level: the moments to round-off of their scale
    for eps, V in ((1.1109 + np.array([0.0, 1e-4, 2e-4]), np.array([0.006, 0.02, 0.01])),
                   (np.array([-16.8, 0.5, 0.9, 1.2]), np.array([0.005, 0.02, 0.03, 0.01])),
                   (np.array([0.7, 0.7]), np.array([0.3, 0.1]))):
        m = np.array([(V**2 * eps**n).sum() for n in range(4)])
        e2, v2 = _gauss_bath(m)
        scale = m[0] * np.sqrt(m[2] / m[0]) ** np.arange(4)
        got = np.array([(v2**2 * e2**n).sum() for n in range(4)])
        assert np.all(np.abs(got - m) <= 1e-13 * scale), (eps, got - m)


def test_evaluate_on_another_database(trained, tiny_db, tmp_path):
    """On a database the model was not trained on, every sample is unseen; the baselines are
    fitted on the training database (given, and identified by its samples' content)."""
    _, _, path = trained
    other = tmp_path / "other.h5"
    generate(validate_config({
        "sampler": {"n_samples": 6, "n_bath": 2, "beta": [2.0, 5.0], "seed": 99,
                    "U": [1.0, 4.0], "W": [1.0, 3.0]},
        "solvers": {"cheap": ["hubbard_i", "ipt", "ed1"], "reference": "ed"},
        "grid": {"n_iw": 64, "n_tau": 21, "n_l": 16}}), other, quiet=True)
    res = evaluate(load_model(path), Database(other), krr=False, log=None)
    assert not res.info["same_as_training"] and res.bins["all"].sum() == 6
    assert res.info["excluded"] == {"train": 0, "validation": 0}
    # the model records no path: without the training database there are no baselines
    assert "ridge" not in res.table["G(tau)"]
    res = evaluate(load_model(path), Database(other), krr=False, log=None,
                   training_database=tiny_db)
    assert "ridge" in res.table["G(tau)"]
    # a file that is not the training database is recognised by its content: no baselines
    res = evaluate(load_model(path), Database(other), krr=False, log=None,
                   training_database=other)
    assert "ridge" not in res.table["G(tau)"]


def test_shipped_default_model_loads_and_describes_itself():
    from importlib.resources import files

    from triqs_mlsolver.ml import load_model, read_metadata

    path = files("triqs_mlsolver") / "models" / "triqs_mlsolver_default_v1.safetensors"
    meta = read_metadata(path)
    model = load_model(path)
    assert model is not None
    text = str(meta)
    for key in ("ed3", "sha256", "split"):
        assert key in text, key


def test_scale_floor_keeps_scaled_targets_bounded():
    """Two inputs that agree to rounding must not turn the scaled target (y_ref - y_base)/s
    into a 1e6-size outlier (that broke the target standardisation: O(1) G errors at a
    tiny training loss); old model files keep the floor they were trained with."""
    from triqs_mlsolver.ml.dataset import LEGACY_SCALE_FLOOR, SCALE_FLOOR, FeatureSpec

    rep = Representation(kind="legendre", n=4)
    spec = FeatureSpec(rep, ["ed2", "ed3"], "ed3", [], "shape", "ed2")
    y3 = np.array([[0.4, -0.1, 0.05, 0.01]])

    class _Samples:  # the two attributes FeatureSpec.target reads
        y = {"ed3": y3, "ed2": y3 + 1e-14, "ed": y3 + 3e-7}

        def __len__(self):
            return 1

    t = spec.target(_Samples(), "ed")
    assert spec.scale_floor == SCALE_FLOOR and np.abs(t).max() < 1.0
    legacy = FeatureSpec.from_dict({k: v for k, v in spec.to_dict().items()
                                    if k != "scale_floor"})
    assert legacy.scale_floor == LEGACY_SCALE_FLOOR
    assert FeatureSpec.from_dict(spec.to_dict()).scale_floor == SCALE_FLOOR
    assert np.abs(legacy.target(_Samples(), "ed")).max() > 1e5  # what the old floor gave


# -- self-energy target ---------------------------------------------------------------
def _free_poles(eps_d, eps_k, V_k):
    """Poles and weights of the impurity G of a non-interacting AIM (exact)."""
    k = len(eps_k)
    H = np.zeros((k + 1, k + 1))
    H[0, 0] = eps_d
    H[0, 1:] = H[1:, 0] = V_k
    H[1:, 1:] = np.diag(eps_k)
    E, U = np.linalg.eigh(H)
    return E, U[0] ** 2


def _G_tau_poles(E, W, beta, x):
    tau = beta * np.asarray(x)
    # -sum_p W_p e^{-E_p tau} / (1 + e^{-beta E_p}), stable for both signs of E_p
    out = np.zeros(len(tau))
    for e, w in zip(E, W):
        if e >= 0:
            out -= w * np.exp(-e * tau) / (1 + np.exp(-beta * e))
        else:
            out -= w * np.exp(e * (beta - tau)) / (1 + np.exp(beta * e))
    return out


@pytest.mark.parametrize("beta", [2.0, 10.0, 40.0])
@pytest.mark.parametrize("N", [4, 32])
def test_sigma_target_decodes_exactly_solvable_correction(beta, N):
    """Two non-interacting AIMs whose self-energies differ by exactly ``a + b/(i w)`` (a level
    shift and one extra bath site at zero energy): the Dyson decoding of the encoded
    difference reproduces G_ref - G_base in tau and Legendre for any N (the continuation
    beyond N is then exact), to the truncation of the Matsubara sum (~1e-9)."""
    from triqs_mlsolver.ml.representations import SigmaTarget
    from triqs_mlsolver.solvers.solution import legendre_of_poles

    eps_k, V_k = np.array([-1.1, 0.4, 1.7]), np.array([0.5, 0.3, 0.6])
    a, b = 0.37, 0.2
    Eb, Wb = _free_poles(-0.3, eps_k, V_k)
    Er, Wr = _free_poles(-0.3 + a, np.r_[eps_k, 0.0], np.r_[V_k, np.sqrt(b)])
    n_l = 120
    Gl_b = legendre_of_poles(Eb, Wb, beta, n_l)[None]
    Gl_r = legendre_of_poles(Er, Wr, beta, n_l)[None]
    st = SigmaTarget(n=N, n_l=n_l)
    dy = st.encode(Gl_r, [beta]) - st.encode(Gl_b, [beta])
    # the encoded difference is (Sigma_ref - Sigma_base)/(i w_n) = (a + b/(i w_n))/(i w_n)
    iw = 1j * np.pi * (2 * np.arange(N) + 1) / beta
    want = (a + b / iw) / iw
    np.testing.assert_allclose(dy[0, :N] + 1j * dy[0, N:], want, rtol=0, atol=1e-10)
    x = np.linspace(0, 1, 41)
    dG = st.decode_tau(dy, Gl_b, [beta], x)[0]
    exact = _G_tau_poles(Er, Wr, beta, x) - _G_tau_poles(Eb, Wb, beta, x)
    np.testing.assert_allclose(dG, exact, rtol=0, atol=2e-9)
    dGl = st.decode_legendre(dy, Gl_b, [beta], 30)[0]
    np.testing.assert_allclose(dGl / beta, (Gl_r - Gl_b)[0, :30] / beta, rtol=0, atol=2e-9)


def test_sigma_target_ph_image_and_sum_rule():
    """encode commutes with the particle-hole image (G_l -> (-1)^l G_l is y -> y*), and any
    decoded correction keeps Delta G(0+) + Delta G(beta-) = 0 exactly."""
    from triqs_mlsolver.ml.representations import SigmaTarget

    st = SigmaTarget(n=8, n_l=16)
    p = AIMParams(U=2.0, mu=0.7, beta=8.0, eps_k=[-0.8, 0.5], V_k=[0.4, 0.6])
    pi = AIMParams(**{k: v[0] for k, v in ph_image_params(
        {"U": np.array([2.0]), "mu": np.array([0.7]), "beta": np.array([8.0]),
         "D": np.array([1.0]), "eps_k": np.array([[-0.8, 0.5]]),
         "V_k": np.array([[0.4, 0.6]])}).items()})
    g = solve_aim("ed", p, n_iw=64, n_tau=21, n_l=16).G_l[:1].real
    gi = solve_aim("ed", pi, n_iw=64, n_tau=21, n_l=16).G_l[:1].real
    np.testing.assert_allclose(st.ph_image(st.encode(g, [8.0])), st.encode(gi, [8.0]),
                               rtol=0, atol=1e-10)
    dy = np.random.default_rng(3).normal(scale=0.05, size=(5, st.size))
    dG = st.decode_tau(dy, np.repeat(g, 5, axis=0), np.full(5, 8.0), np.linspace(0, 1, 11))
    np.testing.assert_allclose(dG[:, 0] + dG[:, -1], 0.0, rtol=0, atol=1e-12)
    # causality: a wild correction Im Delta Sigma = 40 w_n (dy = -i Delta Sigma / w_n) would
    # give Im G^-1 < w_n; the decoding clips it, so Im G^-1(i w_n) >= w_n, |G(i w_n)| <= 1/w_n
    wild = np.zeros((1, st.size))
    wild[0, : st.n] = 40.0
    dG, _ = st.correction_iw(wild, g, [8.0])
    Gb = st._G_iw(g, dG.shape[1])[0]
    dG = dG[0]
    w = np.pi * (2 * np.arange(dG.size) + 1) / 8.0
    assert np.all((1.0 / Gb).imag[: st.n] - 40.0 * w[: st.n] < w[: st.n])  # needs the clip
    assert np.all((1.0 / (Gb + dG)).imag >= w - 1e-9)
    with pytest.raises(ValueError, match="n_l"):
        st.encode(g[:, :10], [8.0])

def test_sigma_target_model_trains_saves_and_serves(tiny_db, tmp_path):
    """target = "sigma" with the Dyson scale learns (validation RMS below 0.7 x the best cheap
    solver, as the G-target model of test_training_beats_best_cheap_solver), and a gated
    sigma model round-trips through its file, G_l agrees with G_tau, and MLSolver's
    inference path gives the same G."""
    from triqs_mlsolver.ml.inference import correct

    sig = {"target": "sigma", "n_sigma": 16, "sigma_n_l": 16, "target_scale": "dyson"}
    model, report = train_model(_cfg(tiny_db, tmp_path / "plain.safetensors", features=sig),
                                quiet=True)
    db = Database(tiny_db)
    idx = np.array(report["split"]["validation"])
    s = load_samples(db, model.spec.representation, ["hubbard_i", "ipt", "ed1", "ed"], idx)
    rms = min(np.sqrt(((s.G_tau[k] - s.G_tau["ed"]) ** 2).mean())
              for k in ("hubbard_i", "ipt", "ed1"))
    assert report["errors"]["validation"]["all"]["RMS"] < 0.7 * rms
    out = tmp_path / "sigma.safetensors"
    cfg = _cfg(tiny_db, out, model={"head": "gated", "n_ensemble": 2},
               features={**sig, "kind": "legendre", "n": 16, "input_mode": "difference"},
               training={"max_epochs": 20})
    model, report = train_model(cfg, quiet=True)
    assert model.spec.sigma is not None and model.architecture["n_out"] == 32
    s = load_samples(db, model.spec.representation, ["hubbard_i", "ipt", "ed1", "ed"], idx)
    back = load_model(out)
    a, b = model.predict(s), back.predict(s)
    np.testing.assert_array_equal(a.G_tau, b.G_tau)
    np.testing.assert_allclose(a.G_tau[:, 0] + a.G_tau[:, -1], -1, rtol=0, atol=1e-12)
    Gl = a.G_l(s, model.spec, 16)
    x = s.x_stored
    G_from_l = np.stack([tr.legendre_to_tau(g, bt, bt * x) for g, bt in zip(Gl, s.beta)])
    # the same correction through Legendre (n_l = 16, the database's truncation) and tau
    base_err = np.abs(np.stack([tr.legendre_to_tau(g, bt, bt * x) for g, bt in
                                zip(s.G_l["ipt"], s.beta)]) - s.G_tau["ipt"]).max()
    assert np.abs(G_from_l - a.G_tau).max() < base_err + 1e-3
    with pytest.raises(ModelMismatchError, match="Legendre"):
        from triqs_mlsolver.ml.modelfile import check_compatible

        back.spec.sigma = type(back.spec.sigma)(n=16, n_l=30)
        check_compatible(back, db)
    back = load_model(out)
    i = int(idx[0])
    p = AIMParams(U=db.params["U"][i], mu=db.params["mu"][i], beta=db.params["beta"][i],
                  eps_k=db.params["eps_k"][i], V_k=db.params["V_k"][i], D=db.params["D"][i])
    sols = {k: solve_aim(k, p, n_iw=64, n_tau=21, n_l=16) for k in back.spec.inputs}
    res = correct(back, p, sols, warn=False)
    j = int(np.flatnonzero(s.index == i)[0])
    np.testing.assert_allclose(res.G_tau[0], a.G_tau[j], rtol=0, atol=1e-9)


def test_sigma_target_config_errors(tiny_db, tmp_path):
    cfg = _cfg(tiny_db, tmp_path / "x.safetensors",
               features={"target": "sigma", "target_scale": "dyson"})
    with pytest.raises(TrainConfigError, match="sigma_n_l = 40.*16"):
        train_model(cfg, quiet=True)
    with pytest.raises(TrainConfigError, match="target"):
        validate_train_config({"features": {"target": "Sigma3"}})
    with pytest.raises(TrainConfigError, match="dyson"):
        validate_train_config({"features": {"target_scale": "dyson"}})
    with pytest.raises(TrainConfigError, match="dyson"):
        validate_train_config({"features": {"target": "sigma", "target_scale": "ed2"}})
    with pytest.raises(TrainConfigError, match="n="):
        validate_train_config({"features": {"target": "sigma", "n_sigma": 1}})
    with pytest.raises(TrainConfigError, match="n_sigma apply to target = 'sigma' only"):
        validate_train_config({"features": {"n_sigma": 32}})


def test_mlsolver_serves_a_sigma_target_model(tiny_db, tmp_path):
    """MLSolver (continuous Delta from G0_iw) runs a self-energy-target model: the Legendre
    correction it applies is the Dyson-decoded one, the outputs keep the sum rule."""
    import warnings

    from triqs_mlsolver.gf import SemiCircular, inverse, iOmega_n
    from triqs_mlsolver.mlsolver import MLSolver
    from triqs_mlsolver.operators import n as n_op

    out = tmp_path / "sigma_delta.safetensors"
    cfg = _cfg(tiny_db, out, model={"n_ensemble": 1}, training={"max_epochs": 20},
               features={"target": "sigma", "n_sigma": 16, "sigma_n_l": 16,
                         "target_scale": "dyson",
                         "descriptors": ["U/D", "eps/D", "log(beta*D)", "delta"]})
    train_model(cfg, quiet=True)
    S = MLSolver(beta=4.0, gf_struct=[("up", 1), ("down", 1)], n_iw=128, n_tau=201, n_l=20,
                 model=str(out))
    G = S.G_iw.copy()
    G << SemiCircular(1.0)
    for name, g0 in S.G0_iw:
        g0 << inverse(iOmega_n + 1.0 - 0.25 * G[name])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        S.solve(h_int=2.0 * n_op("up", 0) * n_op("down", 0))
    g = S.G_tau["up"].data[:, 0, 0].real
    assert np.isfinite(g).all()
    np.testing.assert_allclose(g[0] + g[-1], -1.0, rtol=0, atol=1e-6)
    # the correction was applied: MLSolver's G differs from its base solver's (IPT) on the
    # same G0_iw by more than the transforms' rounding
    from triqs_mlsolver.solvers import IPTSolver

    B = IPTSolver(beta=4.0, gf_struct=[("up", 1), ("down", 1)], n_iw=128, n_tau=201, n_l=20)
    B.G0_iw << S.G0_iw
    B.solve(h_int=2.0 * n_op("up", 0) * n_op("down", 0))
    d = np.abs(S.G_tau["up"].data[:, 0, 0].real - B.G_tau["up"].data[:, 0, 0].real).max()
    assert 1e-5 < d < 0.1
    assert S.ml_report["model"].endswith("sigma_delta.safetensors")  # an unpublished file


def test_ensemble_shrinkage(trained, tiny_db, tmp_path):
    """shrink = c: the mean correction of a sample is scaled by max(0, 1 - c var/|mean|^2)
    (var: the variance of the ensemble mean); c -> infinity returns the base solver, c = 0 the
    plain ensemble mean; G_l follows G_tau; the option survives the model file."""
    model, _, path = trained
    db = Database(tiny_db)
    s = load_samples(db, model.spec.representation, ["hubbard_i", "ipt", "ed1", "ed"])
    plain = model.predict(s)
    m = load_model(path)
    m.clip = False
    m.shrink = 2.0
    p = m.predict(s)
    dy = m.correction_members(s)
    K = dy.shape[0]
    dG = np.stack([m.spec.representation.decode_tau(d, s.x_stored) for d in dy])
    mean, var = dG.mean(0), dG.var(0, ddof=1).sum(1) / K
    f = np.clip(1 - 2.0 * var / (mean**2).sum(1), 0, 1)
    assert ((f > 0) & (f < 1)).any() and f.max() <= 1  # partial shrinkage occurs
    np.testing.assert_allclose(p.G_tau, s.G_tau["ipt"] + f[:, None] * mean, rtol=0, atol=1e-12)
    np.testing.assert_allclose(p.factor, f, rtol=0, atol=1e-14)
    # G_l follows: its correction is the unshrunk one times f
    Gl = p.G_l(s, m.spec, 16)
    m.shrink = 0.0
    Gl0 = m.predict(s).G_l(s, m.spec, 16)
    base_l = s.G_l["ipt"][:, :16]
    np.testing.assert_allclose(Gl - base_l, f[:, None] * (Gl0 - base_l), rtol=0, atol=1e-12)
    m.shrink = 1e12
    np.testing.assert_allclose(m.predict(s).G_tau, s.G_tau["ipt"], rtol=0, atol=1e-14)
    m.shrink, m.clip = 0.0, True
    np.testing.assert_array_equal(m.predict(s).G_tau, plain.G_tau)
    # saved and loaded with the option
    m.shrink = 2.0
    save_model(m, tmp_path / "shrunk.safetensors", metadata=dict(m.metadata))
    assert load_model(tmp_path / "shrunk.safetensors").shrink == 2.0
    with pytest.raises(TrainConfigError, match="n_ensemble >= 2"):
        validate_train_config({"features": {"shrink": 3.0}, "model": {"n_ensemble": 1}})
    with pytest.raises(TrainConfigError, match=">= 0"):
        validate_train_config({"features": {"shrink": -1.0}, "model": {"n_ensemble": 2}})


def test_shrink_auto_is_chosen_on_the_validation_split(tiny_db, tmp_path):
    """``shrink = "auto"``: the constant of SHRINK_GRID whose largest per-beta ratio (model RMS
    of G(tau) / best input solver, validation rows) is smallest; recorded and stored."""
    from triqs_mlsolver.ml.train import SHRINK_GRID

    out = tmp_path / "auto.safetensors"
    model, report = train_model(_cfg(tiny_db, out, features={"shrink": "auto"},
                                     training={"max_epochs": 30}), quiet=True)
    rec = report["shrink"]
    assert rec["grid"] == list(SHRINK_GRID)
    i = rec["grid"].index(rec["chosen"])
    assert rec["worst_ratio"][i] == min(rec["worst_ratio"])
    loaded = load_model(out)
    assert loaded.shrink == rec["chosen"] == model.shrink
    # the recorded ratio, recomputed from the file's predictions on the validation rows
    db = Database(tiny_db)
    s = load_samples(db, loaded.spec.representation, ["hubbard_i", "ipt", "ed1", "ed"],
                     np.array(report["split"]["validation"]))
    G = loaded.predict(s).G_tau
    ref = s.G_tau["ed"]
    worst = 0.0
    for b in np.unique(s.beta):
        m = s.beta == b
        best = min(np.mean((s.G_tau[k][m] - ref[m]) ** 2) for k in ("hubbard_i", "ipt", "ed1"))
        worst = max(worst, np.sqrt(np.mean((G[m] - ref[m]) ** 2) / best))
    np.testing.assert_allclose(worst, rec["worst_ratio"][i], rtol=1e-9)


@pytest.mark.parametrize("over, match", [
    ({"features": {"shrink": "yes"}}, "shrink"),
    ({"features": {"shrink": "auto"}, "model": {"n_ensemble": 1}}, "n_ensemble"),
])
def test_shrink_config_errors(tiny_db, tmp_path, over, match):
    with pytest.raises(TrainConfigError, match=match):
        _cfg(tiny_db, tmp_path / "x.safetensors", **over)


def _mlsolver_on_database():
    """example/mlsolver_on_database.py as a module."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "example" / "mlsolver_on_database.py"
    spec = importlib.util.spec_from_file_location("mlsolver_on_database", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_mlsolver_on_database_example(trained, tiny_db, capsys):
    """example/mlsolver_on_database.py: MLSolver (fallback='none') on the unseen samples of a
    database: the counts it prints."""
    mod = _mlsolver_on_database()
    _, _, model_path = trained
    assert mod.main([str(model_path), str(tiny_db), "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert "12 samples solved by MLSolver" in out
    # the count of invalid answers (this tiny model has some), how many the causal
    # projection repaired, and one line per answer left invalid
    import re

    m = re.search(r"violated an exact property: (\d+); replaced by their causal projection: "
                  r"(\d+); left invalid: (\d+)", out)
    tried, projected, n_bad = (int(m[k]) for k in (1, 2, 3))
    assert projected + n_bad <= tried
    assert n_bad == len(re.findall(r"^    sample \d+: \[", out, re.M))


def test_mlsolver_on_database_exact_max_bath(trained, tiny_db, tmp_path):
    """``--exact-max-bath``: 0 sends every AIM through the model (as a continuous
    hybridisation is); a bound at least the largest bath solves every AIM exactly, with the
    reference's own answer (RMS 0 against the stored reference up to the tau spline)."""
    import json

    from triqs_mlsolver.database import Database

    mod = _mlsolver_on_database()
    _, _, model_path = trained
    n_bath = np.asarray(Database(tiny_db).params["n_bath"])
    for bound in (0, int(n_bath.max())):
        out = tmp_path / f"rows{bound}.json"
        assert mod.main([str(model_path), str(tiny_db), "--jobs", "1",
                         "--exact-max-bath", str(bound), "--json", str(out)]) == 0
        rows = json.loads(out.read_text())
        assert len(rows) == 12
        exact = [r["exact"] for r in rows]
        assert exact == [bool(n_bath[r["index"]] <= bound) for r in rows]
        assert all(e == (bound > 0) for e in exact)
        if bound:
            assert max(r["rms"] for r in rows) < 1e-6


def test_ratios_floor_an_exact_cheap_solver():
    """A cheap solver exact on a bin (mean square error 0): the ratio uses the reference's
    resolution RMS_FLOOR, so it stays finite; both below the floor read 1."""
    from triqs_mlsolver.ml.evaluate import RMS_FLOOR, _ratio_of

    rng = np.random.default_rng(0)
    idx = np.arange(4)
    q = (0.025, 0.975)
    mse = {"exact": np.zeros(4), "model": np.full(4, (10 * RMS_FLOOR) ** 2)}
    r = _ratio_of(mse, idx, ["exact"], ["model"], rng, 50, q)["model"]
    assert r["ratio"] == pytest.approx(10.0) and r["hi"] == pytest.approx(10.0)
    mse["model"] = np.full(4, (0.1 * RMS_FLOOR) ** 2)
    assert _ratio_of(mse, idx, ["exact"], ["model"], rng, 50, q)["model"]["ratio"] == 1.0


@pytest.mark.parametrize("activation", ["tanh", "relu", "gelu", "silu", "elu", "softplus",
                                        "sigmoid"])
@pytest.mark.parametrize("head", ["plain", "gated"])
def test_stacked_numpy_members_equal_torch(activation, head, monkeypatch):
    """Inference runs the ensemble in numpy on stacked weights: the members' outputs equal
    torch's forward to rounding (1e-12 relative) for every activation and head; an in-place
    change of the weights (training) and a parameter assigned anew are seen (the cache is
    keyed by the parameters' identities and versions)."""
    import torch
    from triqs_mlsolver.ml.models import CorrectionModel, build_mlp

    torch.manual_seed(0)
    n_in, n_out, K = 7, 5, 3
    n_gates = 2 if head == "gated" else 0
    nets = [build_mlp(n_in, n_out + n_gates, depth=2, width=6, activation=activation)
            for _ in range(K)]
    arch = {"depth": 2, "width": 6, "activation": activation, "n_in": n_in,
            "n_out": n_out, "dtype": "float64", "head": head, "n_gates": n_gates}
    model = CorrectionModel.__new__(CorrectionModel)
    model.nets, model.architecture = nets, arch
    rng = np.random.default_rng(1)
    Z = 3.0 * rng.normal(size=(4, n_in))  # beyond softplus's threshold and elu's kink
    g = rng.normal(size=(4, n_gates, n_out)) if n_gates else None
    fast = model._members(Z, g)
    assert model._stacked() is not None
    with monkeypatch.context() as mp:
        mp.setattr(CorrectionModel, "_stacked", lambda self: None)
        slow = model._members(Z, g)
    assert fast.shape == slow.shape == (K, 4, n_out)
    np.testing.assert_allclose(fast, slow, rtol=1e-12, atol=1e-14 * np.abs(slow).max())

    def seen(before, member):
        """The cached numpy path after a change: member ``member`` moved, torch agrees."""
        now = model._members(Z, g)
        assert not np.allclose(now[member], before[member])
        with monkeypatch.context() as mp:
            mp.setattr(CorrectionModel, "_stacked", lambda self: None)
            np.testing.assert_allclose(now, model._members(Z, g), rtol=1e-12,
                                       atol=1e-14 * np.abs(slow).max())
        return now

    with torch.no_grad():
        nets[1].layers[0].weight.mul_(2.0)
    changed = seen(fast, 1)
    # a parameter assigned anew (not in place) is seen too
    nets[2].layers[0].bias = torch.nn.Parameter(nets[2].layers[0].bias.detach() + 1.0)
    seen(changed, 2)


def test_ratios_from_per_row_errors():
    """The row-based tables (MLSolver's outputs with their fallback are not one model's):
    the best cheap solver per bin and cell, the ratio, the floor where a cheap solver is
    exact, and paired bootstrap intervals that hold the ratio."""
    from triqs_mlsolver.ml.evaluate import (
        RMS_FLOOR,
        cells_of_rows,
        format_cell_table,
        format_ratio_table,
        ratios_of_bins,
    )

    rng = np.random.default_rng(3)
    n_rows = 400
    bd = np.where(np.arange(n_rows) < 200, 2.0, 50.0)
    a = rng.uniform(1, 3, n_rows) * 1e-6      # cheap solver "a": best at beta D = 2
    b = np.where(bd < 10, 4e-6, 1e-7)           # cheap solver "b": best at beta D = 50
    model = 0.01 * np.minimum(a, b) * rng.uniform(0.5, 1.5, n_rows)
    mse = {"a": a, "b": b, "model": model}
    bins = {"all": np.ones(n_rows, bool), "hot": bd < 10, "cold": bd >= 10}
    rat = ratios_of_bins(mse, ["a", "b"], ["model"], bins, n_boot=400)
    assert rat["model"]["hot"]["best"] == "a" and rat["model"]["cold"]["best"] == "b"
    for k, m in bins.items():
        best = min((a, b), key=lambda x: x[m].mean())
        r = rat["model"][k]
        np.testing.assert_allclose(r["ratio"], np.sqrt(model[m].mean() / best[m].mean()),
                                   rtol=1e-12)
        assert r["lo"] <= r["ratio"] <= r["hi"]
    assert "(best cheap)" in format_ratio_table(rat, list(bins))
    # a cheap solver exact on a cell: both sides floored, so rounding is not a failure
    exact = {"a": np.zeros(n_rows), "model": np.full(n_rows, 1e-30)}
    r = ratios_of_bins(exact, ["a"], ["model"], {"all": bins["all"]})["model"]["all"]
    assert r["ratio"] == 1.0 and r["rms_best"] == 0.0 and RMS_FLOOR > 0
    # cells partition the rows; each cell's best and ratio are the cell's own
    u = np.where(np.arange(n_rows) % 2 == 0, 1.0, 6.0)
    n = np.full(n_rows, 1.0)
    cells = cells_of_rows(mse, ["a", "b"], ["model"], bd, u, n, n_boot=200)
    assert sum(c["rows"] for c in cells) == n_rows and len(cells) == 4
    for c in cells:
        m = ((bd >= c["beta_D"][0]) & (bd < c["beta_D"][1]) & (u >= c["U"][0])
             & (u < c["U"][1]))
        best = min((a, b), key=lambda x: x[m].mean())
        np.testing.assert_allclose(c["model"]["ratio"], np.sqrt(model[m].mean()
                                                                / best[m].mean()), rtol=1e-12)
    assert "worst cell" in format_cell_table(cells)
    with pytest.raises(ValueError, match="no cheap solver"):
        ratios_of_bins(mse, [], ["model"], bins)
