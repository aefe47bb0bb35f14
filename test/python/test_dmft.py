# SPDX-License-Identifier: Apache-2.0
"""The DMFT layer: lattices, the loop driver, observables, U scans, archives and the
``triqs-mlsolver dmft`` command.

References: the exact U = 0 semicircle, closed forms of the chain DOS, agreement of
two independent routes (Bethe closed form vs semicircle quadrature, k-sum vs DOS
quadrature) within the error estimate of the quadrature, and the IPT Mott
transition at beta = 50 (U_c1 ~ 2.57, U_c2 ~ 2.97, doc/dmft.rst).
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from triqs_mlsolver.cli.main import main
from triqs_mlsolver.dmft import (
    Bethe,
    DOSLattice,
    KSumLattice,
    bethe_dmft,
    dos_g_loc,
    g_beta_half,
    quasiparticle_weight,
    run_dmft,
    scan_U,
    semicircle_dos,
    semicircle_g,
    weiss_hybridisation,
)
from triqs_mlsolver.dmft.config import (
    KEYS,
    DMFTConfigError,
    config_to_toml,
    example_config_path,
    validate_config,
)
from triqs_mlsolver.errors import UnknownParameterError
from triqs_mlsolver.gf import HDFArchive
from triqs_mlsolver.gf.transforms import matsubara_freqs

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
BETA = 50.0
FAST = dict(n_iw=256, n_tau=1025, n_l=20)


def bernstein_r(z):
    """``|z + sqrt(z^2 - 1)|`` (branch outside [-1, 1]): the ellipse through the pole."""
    return abs(z + np.sqrt(z - 1) * np.sqrt(z + 1))


# -- lattices: pure functions ----------------------------------------------------------
@pytest.mark.parametrize("n", [100, 150, 200])
def test_semicircle_quadrature_converges_at_the_bernstein_rate(n):
    iw = matsubara_freqs(BETA, 64)
    e, w = semicircle_dos(n)
    assert w.sum() == pytest.approx(1.0, abs=1e-14)
    err = np.abs(dos_g_loc(iw, e, w) - semicircle_g(iw)).max()
    # the worst point is w_0; the Gauss error there is ~4 r^(-2n-2) (observed 3.5 r^-2n)
    rate = bernstein_r(iw[64]) ** (-2 * n)
    assert 0.5 * rate < err < 5 * rate


def test_bethe_closed_form_is_the_weiss_field_of_its_g_loc():
    """``i w + mu - Sigma - 1/G_loc = t^2 G_loc`` for the semicircle, for any Sigma."""
    iw = matsubara_freqs(10.0, 128)
    rng = np.random.default_rng(7)
    a, b = rng.uniform(0.2, 2.0, 2)
    sigma = np.tile(1.3 + a / (iw - b) + 0.4 / (iw + 0.3), (2, 1))  # a causal self-energy
    lat = Bethe(D=1.7)
    g = lat.g_loc(iw, 0.9, sigma)
    lhs = weiss_hybridisation(iw, 0.9, sigma, g)
    np.testing.assert_allclose(lhs, lat.t**2 * g, rtol=0, atol=1e-12)
    g2, delta = lat.hybridisation(iw, 0.9, sigma, None)
    np.testing.assert_array_equal(delta, lat.t**2 * g2)
    assert lat.second_moment == pytest.approx(1.7**2 / 4)


def test_chain_ksum_and_dos_route_agree_with_the_exact_g_within_quadrature_error():
    """1D cosine band (D = 1): ``G(z) = 1/sqrt(z^2 - 1)``.  The k-sum on N points is the
    periodic trapezoid rule in k (error ~2 r^-N); the DOS route is Gauss-Chebyshev of the
    first kind on rho = 1/(pi sqrt(1 - e^2)) (error ~2 r^-2n)."""
    iw = matsubara_freqs(BETA, 128)
    exact = 1.0 / (np.sqrt(iw - 1) * np.sqrt(iw + 1))
    N, n = 300, 140
    ksum = KSumLattice(lambda k: -np.cos(k[:, 0]), k_points=2 * np.pi * np.arange(N)[:, None] / N)
    e = np.cos((2 * np.arange(1, n + 1) - 1) * np.pi / (2 * n))
    dos = DOSLattice(e, np.full(n, 1.0 / n))
    assert ksum.n_k == N and ksum.particle_hole_symmetric and dos.particle_hole_symmetric
    zero = np.zeros((2, iw.size))
    g_k, g_d = ksum.g_loc(iw, 0.0, zero), dos.g_loc(iw, 0.0, zero)
    r = bernstein_r(iw[128])
    err_k, err_d = 2 * r ** (-N), 2 * r ** (-2 * n)
    assert 1e-9 < err_k + err_d < 1e-6  # a test at a non-trivial accuracy
    assert np.abs(g_k - exact).max() < 1.5 * err_k
    assert np.abs(g_d - exact).max() < 1.5 * err_d
    assert np.abs(g_k - g_d).max() < 1.5 * (err_k + err_d)


def test_square_lattice_ksum_agrees_with_a_dos_quadrature():
    """2D cosine band (D = 1, t = 1/4): the k-sum hook (shifted grid) against the DOS of the
    square lattice as the convolution of two chain DOS (tensor Gauss-Chebyshev).  Each
    rule's error is estimated a posteriori as its distance to the rule of twice the size."""
    iw = matsubara_freqs(20.0, 32)
    sigma = np.zeros((2, iw.size))

    def ksum(nk):
        return KSumLattice.hypercubic(2, nk, D=1.0, offset=0.25).g_loc(iw, 0.0, sigma)

    def dos(n):
        x = 0.5 * np.cos((2 * np.arange(1, n + 1) - 1) * np.pi / (2 * n))  # chain, D = 1/2
        e = (x[:, None] + x[None, :]).ravel()
        return DOSLattice(e, np.full(e.size, 1.0 / e.size)).g_loc(iw, 0.0, sigma)

    gk, gk2, gd, gd2 = ksum(24), ksum(48), dos(20), dos(40)
    err = np.abs(gk - gk2).max() + np.abs(gd - gd2).max()
    assert 1e-8 < err < 1e-4  # a test at a non-trivial accuracy
    assert np.abs(gk - gd).max() < 2 * err
    assert KSumLattice.hypercubic(2, 64).particle_hole_symmetric


def test_lattice_input_errors_say_how_to_fix():
    with pytest.raises(ValueError, match="normalise"):
        DOSLattice([-1.0, 1.0], [0.5, 0.6])
    with pytest.raises(ValueError, match=">= 0"):
        DOSLattice([-1.0, 1.0], [1.5, -0.5])
    with pytest.raises(ValueError, match="same length"):
        DOSLattice([-1.0, 0.0, 1.0], [0.5, 0.5])
    with pytest.raises(ValueError, match="k_points"):
        KSumLattice(lambda k: np.cos(k[:, 0]))
    with pytest.raises(ValueError, match="one energy per k-point"):
        KSumLattice(lambda k: np.cos(k), k_points=np.zeros((4, 2)))
    with pytest.raises(ValueError, match="positive"):
        Bethe(D=0.0)
    assert not DOSLattice([-1.0, 0.5], [0.5, 0.5]).particle_hole_symmetric


# -- observables ---------------------------------------------------------------------------
def test_observables_on_exact_functions():
    beta, n_iw = 10.0, 64
    iw = matsubara_freqs(beta, n_iw)
    w0 = np.pi / beta
    # Sigma = -i a w near w_0 exactly: Z0 = 1/(1 + a)
    sigma = np.tile(-0.5 * iw + 0.7, (2, 1))
    np.testing.assert_allclose(quasiparticle_weight(sigma, beta), 1 / 1.5, rtol=1e-14)
    assert iw[n_iw].imag == pytest.approx(w0)
    # a single pole at 0: G(tau) = -1/2, -beta G(beta/2)/pi = beta/(2 pi); odd and even grids
    for n_tau in (11, 12):
        np.testing.assert_allclose(g_beta_half(np.full((2, n_tau), -0.5), beta),
                                   beta / (2 * np.pi), rtol=1e-14)
    with pytest.raises(ValueError, match="at least 3"):
        g_beta_half(np.zeros((2, 2)), beta)


# -- the loop ------------------------------------------------------------------------------
def test_run_dmft_on_bethe_is_bethe_dmft():
    """The driver mixes Delta = t^2 G: the same iterates as the plain loop."""
    kw = dict(n_iw=256, n_tau=1025, tol=1e-6)
    new = run_dmft("ipt", 2.0, BETA, **kw)
    old = bethe_dmft("ipt", 2.0, BETA, **kw)
    assert new.iterations == old.iterations and new.converged
    np.testing.assert_allclose(new.history.dG, old.history, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(new.G_iw, old.G_iw, rtol=0, atol=1e-12)
    np.testing.assert_allclose(new.Z, old.Z, rtol=1e-10)


def test_u0_gives_the_exact_semicircle_and_z1():
    iw = matsubara_freqs(BETA, 256)
    exact = semicircle_g(iw)
    r = run_dmft("ipt", 0.0, BETA, **FAST)
    assert r.converged and r.iterations == 1  # the metallic start is the U = 0 fixed point
    np.testing.assert_allclose(r.G_iw, np.tile(exact, (2, 1)), rtol=0, atol=1e-12)
    np.testing.assert_allclose(r.Z, 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(r.density, 0.5, atol=1e-6)
    assert r.double_occupancy == pytest.approx(0.25, abs=1e-6)
    assert r.g_beta_half == pytest.approx(2 / np.pi, abs=0.02)  # -> A(0) = 2/pi as T -> 0
    assert not r.insulating and r.n == pytest.approx(1.0, abs=1e-6)


def test_u0_converges_to_the_semicircle_from_a_wrong_start():
    """Hubbard-I at U = 0 (Sigma = 0): a pure Bethe iteration from Delta = 0.3 t^2 G_sc."""
    beta = 10.0
    iw = matsubara_freqs(beta, 128)
    exact = semicircle_g(iw)
    r = run_dmft("hubbard_i", 0.0, beta, n_iw=128, n_tau=513, start=0.3 * 0.25 * exact,
                 mixing=1.0, tol=1e-11, max_iter=400)
    assert r.converged and r.iterations > 5
    # near convergence dG_k ~ c^k: the distance to the fixed point is dG c/(1 - c)
    c = (r.history.dG[-1] / r.history.dG[-6]) ** 0.2
    bound = 1e-11 * c / (1 - c) + 1e-13
    assert np.abs(r.G_iw - exact).max() < 3 * bound
    assert np.all(np.diff(np.log(r.history.dG[2:])) < 0)  # a contraction


def test_dos_lattice_reproduces_the_bethe_self_consistency():
    """IPT at U = 2, beta = 50 with the semicircle as a 200-node quadrature: the same
    converged G as the closed-form Bethe lattice, within the quadrature error carried
    through the loop (both loops converged to tol)."""
    tol, n_e = 1e-9, 200
    lat = DOSLattice(*semicircle_dos(n_e))
    assert lat.particle_hole_symmetric and lat.second_moment == pytest.approx(0.25, abs=1e-14)
    a = run_dmft("ipt", 2.0, BETA, lattice=lat, tol=tol, max_iter=500, **FAST)
    b = run_dmft("ipt", 2.0, BETA, tol=tol, max_iter=500, **FAST)
    assert a.converged and b.converged and a.parameters["ph_symmetric"]
    iw = matsubara_freqs(BETA, FAST["n_iw"])
    quad = 5 * bernstein_r(iw[FAST["n_iw"]]) ** (-2 * n_e)  # G_loc error at U = 0, w_0

    def amplification(run):  # distance to the fixed point per unit residual: 1/(1 - c)
        c = (run.history.dG[-1] / run.history.dG[-6]) ** 0.2
        return 1.0 / (1.0 - c)

    bound = (tol + quad) * (amplification(a) + amplification(b))
    diff = np.abs(a.G_iw - b.G_iw).max()
    assert diff < bound, (diff, bound)
    assert np.abs(a.Z - b.Z).max() < 10 * bound
    np.testing.assert_allclose(a.G_loc, a.G_iw, rtol=0, atol=bound)  # self-consistency


def test_ipt_beta50_metal_at_u2_and_insulator_at_u35():
    metal = run_dmft("ipt", 2.0, BETA, **FAST)
    insulator = run_dmft("ipt", 3.5, BETA, start="insulator", **FAST)
    assert metal.converged and insulator.converged
    # doc/dmft.rst: Z0(U = 2) = 0.3430 with n_iw = 1024
    assert np.mean(metal.Z) == pytest.approx(0.343, abs=2e-3)
    assert metal.g_beta_half > 0.5 and not metal.insulating
    assert insulator.insulating and insulator.g_beta_half < 1e-3 and np.mean(insulator.Z) < 0.01
    np.testing.assert_allclose(insulator.density, 0.5, atol=1e-6)
    assert 0 < insulator.double_occupancy < metal.double_occupancy < 0.25
    h = metal.history
    assert len(h) == metal.iterations and h.Z.shape == (metal.iterations, 2)
    assert h.dG[-1] < 1e-6 <= h.dG[-2]


def test_u_scan_shows_ipt_coexistence_at_u28():
    scan = scan_U("ipt", [3.2, 2.4, 2.8], BETA, direction="both", max_iter=500, **FAST)
    np.testing.assert_array_equal(scan.U, [2.4, 2.8, 3.2])
    assert list(scan.up.insulating) == [False, False, True]
    assert list(scan.down.insulating) == [False, True, True]
    np.testing.assert_array_equal(scan.coexistence(), [2.8])
    assert scan.up.converged.all() and scan.down.converged.all()
    # continuation: metal start for the first up point, insulator for the first down point
    assert scan.up.runs[0].parameters["start"] == "metal"
    assert scan.down.runs[-1].parameters["start"] == "insulator"
    assert scan.down.runs[1].parameters["start"].startswith("previous run (U=3.2")
    assert scan.up.Z[1] > 0.05 > scan.down.Z[1]


def test_shipped_example_settings_show_the_ipt_coexistence():
    """What data/dmft_bethe.toml promises (and doc/dmft.rst quotes): with its settings
    IPT is metallic up and insulating down at U = 2.8, and only there."""
    cfg = validate_config(tomllib.loads(example_config_path().read_text()))
    lp = cfg["loop"]
    scan = scan_U("ipt", cfg["scan"]["U"], cfg["model"]["beta"], mixing=lp["mixing"],
                  tol=lp["tol"], max_iter=lp["max_iter"], n_iw=lp["n_iw"], n_tau=lp["n_tau"],
                  n_l=lp["n_l"])
    np.testing.assert_array_equal(scan.coexistence(), [2.8])
    assert scan.up.Z[scan.U == 2.8][0] == pytest.approx(0.110, abs=1e-3)


def test_scan_direction_and_inputs_are_checked():
    with pytest.raises(ValueError, match="direction"):
        scan_U("ipt", [1.0], BETA, direction="sideways")
    with pytest.raises(ValueError, match="repeated"):
        scan_U("ipt", [1.0, 1.0], BETA)
    with pytest.raises(KeyError, match="available"):
        scan_U("no_such_solver", [1.0], BETA)
    with pytest.raises(ValueError, match="mixing"):
        run_dmft("ipt", 1.0, BETA, mixing=0.0)
    with pytest.raises(UnknownParameterError, match="n_bath"):
        run_dmft("ipt", 1.0, BETA, solver_options={"n_bath": 4})
    with pytest.raises(ValueError, match="same n_iw"):
        run_dmft("ipt", 1.0, BETA, start=np.zeros((2, 10), complex), n_iw=16, n_tau=65)
    with pytest.raises(ValueError, match="start="):
        run_dmft("ipt", 1.0, BETA, start="metallic", n_iw=16, n_tau=65)


def test_per_solver_options_reach_the_solver():
    r = run_dmft("ed", 2.0, BETA, n_iw=128, n_tau=257, solver_options={"n_bath": 2},
                 max_iter=3, tol=1e-12)
    assert r.parameters["solver_options"] == {"n_bath": 2}
    assert r.solution.settings["n_bath"] == 2 and r.iterations == 3 and not r.converged


# -- archives ------------------------------------------------------------------------------
def test_archive_round_trip(tmp_path):
    path = tmp_path / "run.h5"
    r = run_dmft("ipt", 2.0, BETA, n_iw=64, n_tau=257, tol=1e-5, archive=path,
                 archive_every=2)
    n = r.iterations
    assert n >= 4
    with HDFArchive(path, "r") as ar:
        written = sorted(int(k.split("_")[1]) for k in ar.keys() if k.startswith("iteration_"))
        assert written == sorted({*range(2, n + 1, 2), n})
        G = ar[f"iteration_{n}"]["G_iw"]
        assert list(G.indices) == ["up", "down"]
        assert G["up"].target_shape == (1, 1) and G.mesh.beta == BETA
        np.testing.assert_array_equal(G["up"].data[:, 0, 0], r.G_iw[0])
        np.testing.assert_array_equal(ar[f"iteration_{n}"]["Sigma_iw"]["down"].data[:, 0, 0],
                                      r.Sigma_iw[1])
        hist = ar["history"]
        for key, val in r.history.as_dict().items():
            np.testing.assert_array_equal(hist[key], val)
        p = ar["parameters"]
        assert p["solver"] == "ipt" and p["U"] == 2.0 and p["lattice"] == {"name": "bethe",
                                                                          "D": 1.0}
        assert p["mixed_quantity"] == "Delta" and p["n_iw"] == 64
        res = ar["result"]
        np.testing.assert_array_equal(res["Delta_iw"]["up"].data[:, 0, 0], r.Delta_iw[0])
        np.testing.assert_array_equal(res["G_tau"]["down"].data[:, 0, 0], r.G_tau[1])
        assert res["observables"]["converged"] and res["observables"]["iterations"] == n


def test_scan_archive_has_one_group_per_direction_and_u(tmp_path):
    path = tmp_path / "scan.h5"
    scan = scan_U("hubbard_i", [1.0, 2.0], BETA, n_iw=64, n_tau=257, archive=path,
                  archive_group="hi")
    with HDFArchive(path, "r") as ar:
        assert sorted(ar["hi"].keys()) == ["down", "up"]
        assert sorted(ar["hi/up"].keys()) == ["U_1", "U_2", "summary"]
        np.testing.assert_array_equal(ar["hi/down/summary"]["Z"], scan.down.Z)
        assert "iteration_1" not in ar["hi/up/U_1"]  # archive_every=0 in scans by default
        np.testing.assert_array_equal(ar["hi/up/U_2/result"]["G_iw"]["up"].data[:, 0, 0],
                                      scan.up.runs[1].G_iw[0])


# -- configuration and CLI -----------------------------------------------------------------
def _tiny_example(tmp_path, **changes):
    raw = tomllib.loads(example_config_path().read_text())
    raw["scan"]["U"] = [2.0, 3.5]
    raw["loop"].update(n_iw=128, n_tau=257, n_l=10, tol=1e-5)
    raw["output"]["directory"] = str(tmp_path / "out")
    for sec, body in changes.items():
        raw.setdefault(sec, {}).update(body)
    path = tmp_path / "dmft.toml"
    path.write_text(config_to_toml(validate_config(raw)))
    return path


def test_cli_runs_the_shipped_example(tmp_path, capsys):
    cfg = _tiny_example(tmp_path)
    assert main(["dmft", str(cfg)]) == 0
    out = capsys.readouterr().out
    rows = [ln.split() for ln in out.splitlines() if re.match(r"^\s*\d+\.\d+\s+\w", ln)]
    assert len(rows) == 3 * 2 * 2  # solvers (ml, ipt, hubbard_i) x directions x U
    assert "converged" in out and "insulating" in out
    for solver in ("ipt", "ml"):  # both: metal at U = 2, Mott insulator at 3.5 (beta = 50)
        up = {float(r[0]): r for r in rows if r[1] == solver and r[2] == "up"}
        assert up[2.0][7] == "no" and up[3.5][7] == "yes", solver  # insulating? column
    h5, png = tmp_path / "out" / "dmft_scan.h5", tmp_path / "out" / "Z_of_U.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    with h5py.File(h5, "r") as f:
        assert f.attrs["format"] == "triqs_mlsolver.dmft_scan"
        assert f.attrs["format_version"] == 1 and f.attrs["package_version"]
        stored = validate_config(tomllib.loads(f.attrs["config"]))
        assert stored["scan"]["U"] == [2.0, 3.5]
    with HDFArchive(h5, "r") as ar:
        assert sorted(ar.keys()) == ["config", "format", "hubbard_i", "ipt", "ml",
                                     "package_version"]
        s = ar["ipt/up/summary"]
        np.testing.assert_array_equal(s["U"], [2.0, 3.5])
        assert ar["ipt/up/U_3.5/parameters"]["start"].startswith("previous run")
        assert list(ar["ipt/down/U_2/result"]["G_iw"].indices) == ["up", "down"]


def test_cli_marks_iterations_the_model_was_not_trusted_and_refuses_to_overwrite(
        tmp_path, capsys):
    """U = 12 is outside the shipped models' domains (U/D <= 10): every iteration of that
    point is served by the reference ED, and the table, stderr and the archive say so
    (the scan used to be marked 'converged' with nothing else).  A second run into the same
    directory is refused without --overwrite."""
    cfg = _tiny_example(tmp_path, scan={"U": [2.0, 12.0], "direction": "up"},
                        solvers={"names": ["ml"]}, output={"plot": False},
                        loop={"n_iw": 64, "n_tau": 129, "max_iter": 30, "tol": 1e-4})
    assert main(["dmft", str(cfg)]) == 0
    out, err = capsys.readouterr()
    rows = {float(r[0]): r for r in (ln.split() for ln in out.splitlines()
                                     if re.match(r"^\s*\d+\.\d+\s+ml", ln))}
    assert rows[2.0][-1] == "-"
    it12 = int(rows[12.0][8])
    assert rows[12.0][-2:] == ["ED", f"{it12}/{it12}"]
    assert "not trusted" in err and "U=12" in err
    with HDFArchive(tmp_path / "out" / "dmft_scan.h5", "r") as ar:
        assert not ar["ml/up/U_2/history"]["fallback"].any()
        assert ar["ml/up/U_12/history"]["fallback"].all()
        assert ar["ml/up/U_12/result/observables"]["fallback_iterations"] == it12
        np.testing.assert_array_equal(ar["ml/up/summary"]["fallback_iterations"], [0, it12])
    assert main(["dmft", str(cfg)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["dmft", str(cfg), "--overwrite"]) == 0


def test_cli_quiet_prints_only_the_table_and_print_example(tmp_path, capsys):
    cfg = _tiny_example(tmp_path, scan={"U": [1.0], "direction": "up"},
                        solvers={"names": ["hubbard_i"]}, output={"plot": False})
    assert main(["-q", "dmft", str(cfg)]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[0].split()[:3] == ["U", "solver", "dir"] and "wrote" not in out
    assert "DMFT" not in err  # no progress bar
    assert not (tmp_path / "out" / "Z_of_U.png").exists()
    assert main(["dmft", "--print-example"]) == 0
    text = capsys.readouterr().out
    assert text == example_config_path().read_text()
    validate_config(tomllib.loads(text))


@pytest.mark.parametrize("body, words", [
    ("[loop]\nmixng = 0.3\n", ["'mixng'", "mixing"]),
    ("[plot]\nx = 1\n", ["[plot]", "[output]"]),
    ("[model]\nbeta = -1.0\n", ["beta", "> 0"]),
    ("[loop]\ntol = \"small\"\n", ["tol", "number"]),
    ("[scan]\nU = [1.0, 1.0]\n", ["repeated"]),
    ("[scan]\nU = {start = 1.0, stop = 2.0, stp = 0.5}\n", ["'stp'", "step"]),
    ("[scan]\ndirection = \"sideways\"\n", ["direction", "'both'"]),
    ("[model]\nn_k = 32\n", ["n_k", "square"]),
    ("[model]\nlattice = \"square\"\nn_k = 31\n", ["even"]),
    ("[model]\nmu = \"half\"\n", ["half-filling"]),
    ("[solvers]\nnames = [\"ipt\", \"nope\"]\n", ["'nope'", "available"]),
    ("[solvers]\nnames = [\"ipt\"]\n[solvers.ed]\nn_bath = 4\n", ["[solvers.ed]", "names"]),
    ("[solvers]\nnames = [\"ipt\"]\n[solvers.ipt]\nn_bath = 4\n", ["'n_bath'", "tol"]),
    ("[solvers]\nnames = [\"ipt\"]\n[solvers.ipt]\nmax_iter = 2.5\n", ["max_iter", "integer"]),
    ("[output]\narchive = \"yes\"\n", ["archive", "true or false"]),
])
def test_bad_config_names_the_key_and_the_fix(body, words):
    with pytest.raises(DMFTConfigError) as exc:
        validate_config(tomllib.loads(body))
    for w in words:
        assert w in str(exc.value), (w, str(exc.value))


def test_cli_bad_key_exits_2_and_names_the_key(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[model]\nbeta = 50.0\nlatice = \"bethe\"\n")
    assert main(["dmft", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "'latice'" in err and "lattice" in err
    # a solver that rejects its options (ED with 12 bath sites) is a config error, before
    # any work
    cfg = _tiny_example(tmp_path, solvers={"names": ["ed"], "ed": {"n_bath": 12}})
    assert main(["dmft", str(cfg)]) == 2
    assert "n_bath" in capsys.readouterr().err
    assert not (tmp_path / "out" / "dmft_scan.h5").exists()
    assert main(["dmft"]) == 2
    assert "--print-example" in capsys.readouterr().err


def test_config_round_trips_through_toml():
    raw = {"model": {"lattice": "square", "n_k": 16, "mu": 0.3},
           "scan": {"U": {"start": 0.5, "stop": 1.5, "step": 0.5}, "direction": "down"},
           "solvers": {"names": ["ipt", "ed"], "ed": {"n_bath": 3, "cutoff": 1e-9}}}
    cfg = validate_config(raw)
    assert cfg["scan"]["U"] == [0.5, 1.0, 1.5]
    # ED's n_bath is 'auto' (default) or a number of sites
    assert validate_config({"solvers": {"names": ["ed"], "ed": {"n_bath": "auto"}}})[
        "solvers"]["ed"] == {"n_bath": "auto"}
    assert validate_config(tomllib.loads(config_to_toml(cfg))) == cfg


def test_doc_lists_every_config_key():
    text = (ROOT / "doc" / "dmft.rst").read_text()
    for sec, keys in KEYS.items():
        for key in keys:
            assert f"``{key}``" in text, f"[{sec}] {key} is not documented in doc/dmft.rst"


@pytest.mark.mpi
def test_cli_under_mpiexec_shares_the_sweeps(tmp_path):
    exe = Path(sys.executable).with_name("mpiexec")
    exe = str(exe) if exe.exists() else shutil.which("mpiexec")
    if exe is None:
        pytest.skip("no mpiexec")
    cfg = _tiny_example(tmp_path, scan={"U": [2.0]}, output={"plot": False})
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python"))
    env.pop("TRIQS_MLSOLVER_NO_MPI", None)
    r = subprocess.run([exe, "-n", "2", sys.executable, "-m", "triqs_mlsolver.cli.main", "-q",
                        "dmft", str(cfg)], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("hubbard_i") == 2 and r.stdout.count("ipt") == 2  # printed once
    with h5py.File(tmp_path / "out" / "dmft_scan.h5", "r") as f:
        assert f.attrs["mpi_size"] == 2
        assert sorted(f["ipt"].keys()) == ["down", "up"] and "U_2" in f["hubbard_i/down"]


# -- the antiferromagnetic Bethe lattice -------------------------------------------------------
def test_afm_bethe_g_loc_solves_the_two_sublattice_equations():
    """``G_{A,s} = 1/(z_s - t^2 G_{B,s})``, ``G_{B,s} = 1/(z_{-s} - t^2 G_{A,s})`` exactly, causal,
    and the semicircle when the self-energy is spin symmetric."""
    from triqs_mlsolver.dmft.lattice import BetheAFM
    from triqs_mlsolver.gf.transforms import semicircle_g

    lat = BetheAFM(D=1.0)
    iw = matsubara_freqs(10.0, 64)
    sigma = np.stack([0.2 + 0.1 / iw, 2.9 + 0.3 / (iw - 0.5)])
    z = iw[None, :] + 0.3 - sigma
    G = lat.g_loc(iw, 0.3, sigma)
    G_B = 1.0 / (z[::-1] - 0.25 * G)
    np.testing.assert_allclose(G, 1.0 / (z - 0.25 * G_B), rtol=0, atol=1e-14)
    assert (G[:, 64:].imag < 0).all()
    sym = np.tile(sigma[0], (2, 1))
    np.testing.assert_allclose(lat.g_loc(iw, 0.3, sym)[1], semicircle_g(z[0], 1.0), atol=1e-14)
    G_loc, delta = lat.hybridisation(iw, 0.3, sigma, G)
    np.testing.assert_array_equal(delta, 0.25 * G[::-1])  # Delta_s = t^2 G_{-s}


def test_afm_loop_at_u0_is_the_paramagnetic_semicircle():
    from triqs_mlsolver.dmft.lattice import BetheAFM

    run = run_dmft("ed", 0.0, 20.0, lattice=BetheAFM(), start="afm", n_iw=128, n_tau=257,
                   tol=1e-8, max_iter=200, solver_options={"n_bath": 4})
    assert run.converged and abs(run.magnetisation) < 1e-6
    iw = matsubara_freqs(20.0, 128)
    from triqs_mlsolver.gf.transforms import semicircle_g
    # the 4-site bath represents the semicircle to its fit accuracy (~1e-3 in G)
    np.testing.assert_allclose(run.G_iw[0], semicircle_g(iw, 1.0), rtol=0, atol=3e-3)
    with pytest.raises(ValueError, match="Néel"):
        run_dmft("ed", 0.0, 20.0, lattice=BetheAFM(), paramagnetic=True)


def test_afm_neel_order_follows_heisenberg_mean_field_at_strong_coupling():
    """At U >> D the Hubbard model is the Heisenberg model with J = 4 t^2/(z U) per bond;
    DMFT is exact mean field for it on the infinitely connected Bethe lattice:
    T_N = t^2/U = D^2/(4U) and m = tanh(m T_N / T) below it.  U = 8: T_N = 1/32.
    Corrections: the moment 1 - 2d (d ~ 0.004 here) and O((D/U)^2) in T_N, which move m at
    T = T_N/2 (where dm/d(T_N/T) ~ 0.07) by < 0.01; tolerance 0.03 (a 4-site bath)."""
    from scipy.optimize import brentq
    from triqs_mlsolver.dmft.lattice import BetheAFM

    U, T_N = 8.0, 1.0 / 32.0
    kw = dict(lattice=BetheAFM(), start="afm", n_iw=256, n_tau=513, tol=1e-6, max_iter=300,
              solver_options={"n_bath": 4})
    hot = run_dmft("ed", U, 1.0 / (1.6 * T_N), **kw)
    assert hot.converged and abs(hot.magnetisation) < 1e-3
    T = 0.5 * T_N
    cold = run_dmft("ed", U, 1.0 / T, **kw)
    m_mf = brentq(lambda m: m - np.tanh(m * T_N / T), 1e-6, 1.0)
    assert cold.converged and abs(cold.magnetisation - m_mf) < 0.03
    assert cold.n == pytest.approx(1.0, abs=1e-6)  # half filling kept by the Néel state
    assert cold.observables()["magnetisation"] == cold.magnetisation


def test_cli_runs_the_afm_lattice(tmp_path, capsys):
    cfg = _tiny_example(tmp_path, model={"lattice": "bethe_afm", "beta": 64.0},
                        scan={"U": [8.0], "direction": "up"}, solvers={"names": ["ed"]},
                        output={"plot": False}, loop={"n_iw": 128, "n_tau": 257, "tol": 1e-5})
    raw = tomllib.loads(cfg.read_text())
    raw["solvers"]["ed"] = {"n_bath": 4}
    cfg.write_text(config_to_toml(validate_config(raw)))
    # the Neel state needs a symmetry-breaking start: the metal start carries a seed field
    assert main(["dmft", str(cfg)]) == 0
    out = capsys.readouterr().out
    row = [ln.split() for ln in out.splitlines() if re.match(r"^\s*8\.000\s+ed", ln)][0]
    assert float(row[6]) > 0.9  # m, the staggered magnetisation
    with HDFArchive(tmp_path / "out" / "dmft_scan.h5", "r") as ar:
        assert ar["ed/up/summary"]["magnetisation"][0] == pytest.approx(float(row[6]), abs=1e-4)
        assert ar["ed/up/U_8/parameters"]["lattice"]["name"] == "bethe_afm"
