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


def test_mott_scan_example_runs(tmp_path):
    r = run_example("mott_scan.py", "--solvers", "ipt", "hubbard_i", "--U", "1.0", "3.5",
                    "--beta", "20", "--n-iw", "256", "--out", "scan", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    import json

    res = json.loads((tmp_path / "scan.json").read_text())
    ipt = res["solvers"]["ipt"]
    assert ipt["up"][0]["Z0"] > 0.5 and ipt["up"][1]["A0"] < 0.05  # metal at 1, insulator 3.5
    assert (tmp_path / "scan.png").stat().st_size > 1000
