# SPDX-License-Identifier: Apache-2.0
"""The example scripts run (with fast settings) and give physical results."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_example(name, *args, cwd):
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python"), MPLBACKEND="Agg")
    return subprocess.run([sys.executable, str(ROOT / "example" / name), *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("solver", ["ipt", "hubbard_i", "nca"])
def test_bethe_dmft_example_runs(tmp_path, solver):
    r = run_example("bethe_dmft_triqs_style.py", "--solver", solver, "--n-iw", "256",
                    "--beta", "20", "--n-loops", "8", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "Z0 =" in r.stdout
    from triqs_mlsolver.gf import HDFArchive

    with HDFArchive(tmp_path / "bethe_dmft.h5", "r") as ar:
        assert "G_iw-0" in ar and "solver" in ar


def test_examples_are_the_projects_own():
    """Every example carries the project's licence header; none is a copy of another project's
    script (example/bethe_dmft_cthyb.py replaced a verbatim copy of cthyb's tutorial)."""
    for path in sorted((ROOT / "example").glob("*.py")):
        text = path.read_text()
        assert text.startswith("# SPDX-License-Identifier: Apache-2.0\n"), path.name
        assert "copied unchanged" not in text and "GPL" not in text, path.name


def test_cthyb_style_example_runs_through_run(tmp_path):
    """example/bethe_dmft_cthyb.py (imports triqs_cthyb) under ``triqs-mlsolver run`` with
    Hubbard-I: the Mott insulator at U = 3 (G(beta/2) ~ 0), half filled (G(0) = -1/2)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python"), MPLBACKEND="Agg",
               TRIQS_MLSOLVER_BACKEND="light")
    r = subprocess.run([sys.executable, "-m", "triqs_mlsolver.cli.main", "-q", "run",
                        "--solver", "hubbard_i", str(ROOT / "example" / "bethe_dmft_cthyb.py"),
                        "--U", "3.0", "--beta", "20", "--loops", "3", "--out", "h.h5"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    import triqs_mlsolver.solvers  # noqa: F401 - registers the solver classes' HDF5 Formats
    from triqs_mlsolver.gf import HDFArchive

    with HDFArchive(tmp_path / "h.h5", "r") as ar:
        g_tau = ar["G_tau-2"]["up"].data[:, 0, 0].real
        assert type(ar["solver"]).__name__ == "HubbardISolver" and ar["iterations"] == 3
    assert abs(g_tau[0] + 0.5) < 1e-8 and abs(g_tau[len(g_tau) // 2]) < 0.01


def test_mott_scan_example_runs(tmp_path):
    r = run_example("mott_scan.py", "--solvers", "ipt", "hubbard_i", "--U", "1.0", "3.5",
                    "--beta", "20", "--n-iw", "256", "--out", "scan", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    import json

    res = json.loads((tmp_path / "scan.json").read_text())
    ipt = res["solvers"]["ipt"]
    assert ipt["up"][0]["Z0"] > 0.5 and ipt["up"][1]["A0"] < 0.05  # metal at 1, insulator 3.5
    assert (tmp_path / "scan.png").stat().st_size > 1000


def test_mott_scan_example_with_the_ml_solver(tmp_path):
    """MLSolver in the Mott-scan example at beta = 50, against the ED-8 DMFT values stored in
    doc/figures/mott_beta50.json (an independent method): Z0 within the issue's 0.02 in the
    metal, an insulator at U = 3."""
    import json

    r = run_example("mott_scan.py", "--solvers", "ml", "--U", "1.0", "3.0", "--beta", "50",
                    "--n-iw", "1024", "--no-down", "--out", "scan", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    ml = json.loads((tmp_path / "scan.json").read_text())["solvers"]["ml"]["up"]
    ed = json.loads((ROOT / "doc" / "figures" / "mott_beta50.json").read_text())
    z_ed = {row["U"]: row["Z0"] for row in ed["solvers"]["ed"]["up"]}
    assert abs(ml[0]["Z0"] - z_ed[1.0]) < 0.02
    assert ml[1]["A0"] < 0.05 and ml[1]["Z0"] < 0.05


def _load_example(name):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "example" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_dmft_acceptance_criteria():
    """The comparison of example/dmft_acceptance.py on made-up results: each criterion
    passes and fails where it should (a lost insulator, |dZ0| > 0.01, |dn| > 0.005, a
    magnetisation off by more than 0.02, ML's G worse than IPT's)."""
    acc = _load_example("dmft_acceptance")
    specs = acc.tasks(["bethe", "square", "afm", "hot"], [50.0])
    U = acc.BETHE_U
    ed, ml, ipt = {}, {}, {}
    for key, spec in specs.items():
        if spec["kind"] == "sweep":
            ins = [u >= 3.0 for u in U]
            ed[key] = {"U": U, "Z": [0.5] * len(U), "insulating": ins, "iterations": [10] * 12,
                       "fallback": None}
            ml[key] = dict(ed[key], Z=[0.505] * len(U), fallback=[0] * 12)
        else:
            ed[key] = {"Z": 0.3, "n": 0.85, "m": 0.6, "G_tau": [[-0.5, -0.1, -0.5]] * 2,
                       "iterations": 10, "fallback": None}
            ml[key] = dict(ed[key], Z=0.305, n=0.853, m=-0.61, fallback=2,
                           G_tau=[[-0.5, -0.1001, -0.5]] * 2)
            ipt[key] = dict(ed[key], G_tau=[[-0.5, -0.102, -0.5]] * 2)
    rows = acc.compare(specs, ed, ml, ipt)
    assert all(r[4] in (True, None) for r in rows)
    assert any(r[1] == "ML iterations served by ED" and r[2] == "2 of 10" for r in rows)
    key = "bethe/beta=50/up"
    ml[key] = dict(ml[key], insulating=[False] * 12, Z=[0.52] * 12)
    sq = "square/U=2/doped"
    ml[sq] = dict(ml[sq], n=0.86)
    ml["afm/U=2"] = dict(ml["afm/U=2"], m=0.63)
    ml["hot/U=4"] = dict(ml["hot/U=4"], G_tau=[[-0.5, -0.103, -0.5]] * 2)
    failed = {(r[0], r[1]) for r in acc.compare(specs, ed, ml, ipt) if r[4] is False}
    assert failed == {(key, "max abs(dZ0)"), (key, "insulators kept"), (sq, "abs(dn)"),
                      ("afm/U=2", "abs(dm_stag)"), ("hot/U=4", "RMS G(tau) - G_ED")}
    assert "NO" in acc.render(acc.compare(specs, ed, ml, ipt), "rst")


def test_dmft_acceptance_runs(tmp_path):
    """The beta = 1 case end to end (ED-DMFT, ML-DMFT, IPT-DMFT), the reference cached."""
    r = run_example("dmft_acceptance.py", "--cases", "hot", "--jobs", "1", "--out", "acc",
                    cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "hot/U=4" in r.stdout and "criteria" in r.stdout
    import json

    res = json.loads((tmp_path / "acc" / "acceptance.json").read_text())
    G = np.array(res["ed"]["hot/U=4"]["G_tau"])
    np.testing.assert_allclose(G[:, 0] + G[:, -1], -1.0, atol=1e-8)  # G(0+) + G(beta-) = -1
    assert (tmp_path / "acc" / "ed_reference.json").exists()
