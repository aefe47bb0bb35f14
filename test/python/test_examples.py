# SPDX-License-Identifier: Apache-2.0
"""The example scripts run (with fast settings) and give physical results."""

import os
import subprocess
import sys
from pathlib import Path

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
