# SPDX-License-Identifier: Apache-2.0
"""Regression tests for the public TRIQS scripts of issue 19 run through the light layer.

Each test is a short script of this project's own, written the way TRIQS users write
them, that exercises the API one of the public scripts (cthyb's doc/guide and tests,
the TRIQS tutorials, triqs_hubbardI's tests) stopped at.  No copy of those scripts is
kept here.  The light backend is forced (conftest.py).
"""

import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import run_in
from triqs_mlsolver.cli.run import ServedTriqs
from triqs_mlsolver.errors import ArchiveFormatError
from triqs_mlsolver.gf import BlockGf, Gf, HDFArchive, MeshReFreq


def write(folder, name, code):
    path = Path(folder) / name
    path.write_text(textwrap.dedent(code))
    return path



def atom_g(w, U, eps, n_other, idelta):
    """Closed-form atomic Green's function of one spin at real frequencies w + i idelta."""
    z = np.asarray(w) + 1j * idelta
    return (1 - n_other) / (z - eps) + n_other / (z - eps - U)


# ---------------------------------------------------------------------------
#  MeshReFreq: triqs_hubbardI's G_w in an archive (its single_band_gw test)
# ---------------------------------------------------------------------------
def test_refreq_mesh_spellings_and_points():
    m = MeshReFreq(window=(-2.0, 2.0), n_w=5)
    assert m == MeshReFreq(-2.0, 2.0, 5) == MeshReFreq(w_min=-2, w_max=2, n_max=5)
    assert m == MeshReFreq(omega_min=-2.0, omega_max=2.0, n_w=5)  # TRIQS 3.0/3.1 names
    np.testing.assert_array_equal(m.values(), [-2.0, -1.0, 0.0, 1.0, 2.0])
    assert (m.w_min, m.w_max, m.delta, len(m)) == (-2.0, 2.0, 1.0, 5)
    assert [p.value for p in m] == [-2.0, -1.0, 0.0, 1.0, 2.0]
    with pytest.raises(ValueError, match="w_min < w_max"):
        MeshReFreq(window=(1.0, -1.0), n_w=5)
    with pytest.raises(ValueError, match="n_w=1 must be >= 2"):
        MeshReFreq(window=(-1.0, 1.0), n_w=1)
    with pytest.raises(TypeError, match="needs n_w"):
        MeshReFreq(window=(-1.0, 1.0))


def test_refreq_gf_is_stored_in_triqs_layout_and_read_back(tmp_path):
    mesh = MeshReFreq(window=(-3.0, 3.0), n_w=7)
    g = BlockGf(mesh=mesh, gf_struct=[("up", 1), ("down", 1)])
    w = mesh.values()
    g["up"].data[:, 0, 0] = 1.0 / (w + 0.1j - 0.5)
    g["down"].data[:, 0, 0] = 1.0 / (w + 0.1j + 0.5)
    with HDFArchive(tmp_path / "gw.h5", "w") as ar:
        ar["G_w"] = g
    with h5py.File(tmp_path / "gw.h5", "r") as f:  # TRIQS 3.2: refreq -> min, max, size
        grp = f["G_w/up/mesh"]
        assert grp.attrs["Format"] == "MeshReFreq"
        assert sorted(grp) == ["max", "min", "size"]
        assert (grp["min"][()], grp["max"][()], grp["size"][()]) == (-3.0, 3.0, 7)
        assert grp["size"].dtype == np.int64
    with HDFArchive(tmp_path / "gw.h5", "r") as ar:
        back = ar["G_w"]
    assert back["up"].mesh == mesh
    np.testing.assert_array_equal(back["down"].data, g["down"].data)


def test_refreq_gf_of_an_old_archive_is_read(tmp_path):
    """The TRIQS 2.x layout: TRIQS_HDF5_data_scheme attributes, GfReFreq_s legacy name."""
    with h5py.File(tmp_path / "old.h5", "w") as f:
        grp = f.create_group("g")
        grp.attrs["TRIQS_HDF5_data_scheme"] = np.bytes_("GfReFreq_s")
        data = np.zeros((4, 2))
        data[:, 1] = -1.0
        ds = grp.create_dataset("data", data=data)
        ds.attrs["__complex__"] = 1
        m = grp.create_group("mesh")
        m.create_dataset("min", data=-1.5)
        m.create_dataset("max", data=1.5)
        m.create_dataset("size", data=4)
        m.create_dataset("kind", data=1)
        bad = f.create_group("half_bins")
        for k in grp:
            grp.copy(k, bad)
        bad.attrs["TRIQS_HDF5_data_scheme"] = np.bytes_("GfReFreq_s")
        bad["mesh/kind"][()] = 0
    with HDFArchive(tmp_path / "old.h5", "r") as ar:
        g = ar["g"]
        assert g.mesh == MeshReFreq(window=(-1.5, 1.5), n_w=4)
        np.testing.assert_array_equal(g.data.ravel(), -1j * np.ones(4))
        with pytest.raises(ArchiveFormatError, match="kind=0"):
            ar["half_bins"]


def test_hubbardI_real_frequency_results_survive_an_archive(tmp_path):
    """Atom at half filling: G_w = G_at(w + i idelta), written, read back and h5diff'ed."""
    script = write(tmp_path, "atom_w.py", """\
        from triqs_hubbardI import Solver
        from triqs.gf import *
        from triqs.operators import n
        from triqs.utility.h5diff import h5diff
        from h5 import HDFArchive

        U, beta = 4.0, 40.0
        S = Solver(beta=beta, gf_struct=[('up', 1), ('down', 1)], n_iw=8, n_tau=3, n_w=25,
                   w_min=-6, w_max=6, idelta=0.05)
        for name, g0 in S.G0_iw:
            g0 << inverse(iOmega_n + U / 2 - 0.04 * Flat(1.0))
        S.solve(h_int=U * n('up', 0) * n('down', 0), calc_gw=True)
        for fname in ("first.h5", "second.h5"):
            with HDFArchive(fname, 'w') as ar:
                ar['G_w'] = S.G_w
                ar['Sigma_w'] = S.Sigma_w
        h5diff("first.h5", "second.h5")
        """)
    assert run_in(tmp_path, "--serve-hubbardI", script) == 0
    with HDFArchive(tmp_path / "first.h5", "r") as ar:
        G_w, Sigma_w = ar["G_w"], ar["Sigma_w"]
    w = np.linspace(-6.0, 6.0, 25)
    assert G_w["up"].mesh == MeshReFreq(window=(-6, 6), n_w=25)
    expected = atom_g(w, 4.0, -2.0, 0.5, 0.05)
    # (the level is read from G0_iw's tail, to ~1e-12)
    np.testing.assert_allclose(G_w["up"].data[:, 0, 0], expected, rtol=0, atol=1e-9)
    # triqs_hubbardI: Sigma_w = (w - eal) - 1/G_w with eal = -U/2 from G0_iw
    np.testing.assert_allclose(Sigma_w["down"].data[:, 0, 0], (w + 2.0) - 1.0 / expected,
                               rtol=0, atol=1e-8)


# ---------------------------------------------------------------------------
#  triqs.atom_diag.atomic_g_w
# ---------------------------------------------------------------------------
def test_atomic_g_w_is_the_broadened_lehmann_sum():
    with ServedTriqs("ipt"):
        from triqs.atom_diag import AtomDiag, atomic_g_w
        from triqs.operators import n

        U, mu, beta = 3.0, 1.0, 5.0
        h = U * n('up', 0) * n('down', 0) - mu * (n('up', 0) + n('down', 0))
        ad = AtomDiag(h, [('up', 0), ('down', 0)])
        G = atomic_g_w(ad, beta, [('up', 1), ('down', 1)], (-4.0, 4.0), 33, 0.1)
    assert isinstance(G, BlockGf) and isinstance(G["up"], Gf)
    assert G["up"].mesh == MeshReFreq(window=(-4.0, 4.0), n_w=33)
    # the other spin's thermal occupation in the grand-canonical atom
    weights = np.exp(-beta * np.array([0.0, -mu, -mu, U - 2 * mu]))
    n_other = (weights[2] + weights[3]) / weights.sum()
    w = np.linspace(-4.0, 4.0, 33)
    np.testing.assert_allclose(G["up"].data[:, 0, 0], atom_g(w, U, -mu, n_other, 0.1),
                               rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------
#  cthyb doc/guide style: a Zeeman field, the density matrix, trace_rho_op
# ---------------------------------------------------------------------------
ZEEMAN = """\
    import numpy as np
    from triqs.gf import *
    from triqs.operators import *
    from triqs.atom_diag import trace_rho_op
    from triqs_cthyb import Solver

    U, h, beta, V = 3.0, 0.05, 30.0, 0.5
    S = Solver(beta=beta, gf_struct=[('up', 1), ('down', 1)], n_iw=400, n_tau=801)
    S.G0_iw['up'] << inverse(iOmega_n + U / 2 + h / 2 - V**2 * Wilson(1.0))
    S.G0_iw['down'] << inverse(iOmega_n + U / 2 - h / 2 - V**2 * Wilson(1.0))
    S.solve(h_int=U * n('up', 0) * n('down', 0), n_cycles=10000, length_cycle=50,
            measure_density_matrix=True, use_norm_as_weight=True)
    rho, ad = S.density_matrix, S.h_loc_diagonalization
    occ = [trace_rho_op(rho, n(b, 0), ad) for b in ('up', 'down')]
    docc = trace_rho_op(rho, n('up', 0) * n('down', 0), ad)
    np.save("zeeman.npy", np.array([*occ, docc, S.G_tau['up'].data[400, 0, 0].real,
                                    S.G_tau['down'].data[400, 0, 0].real]))
    """


@pytest.fixture(scope="module")
def zeeman(tmp_path_factory):
    """The script run with the served MLSolver (default) and with the reference ED."""
    out = {}
    for solver in ("ml", "ed"):
        folder = tmp_path_factory.mktemp(f"zeeman_{solver}")
        script = write(folder, "zeeman.py", ZEEMAN)
        assert run_in(folder, "--solver", solver, script) == 0
        out[solver] = np.load(folder / "zeeman.npy").real
    return out


@pytest.mark.parametrize("solver", ["ml", "ed"])
def test_spin_polarised_density_matrix_script_runs(zeeman, solver):
    n_up, n_dn, docc, g_up, g_dn = zeeman[solver]
    assert n_up > n_dn  # the up level lies lower by h
    assert 0 < docc < min(n_up, n_dn)
    # particle-hole symmetric levels: exact for ED; the model holds it to its accuracy
    assert abs(n_up + n_dn - 1) < (1e-6 if solver == "ed" else 1e-3)
    assert g_up < 0 and g_dn < 0


def test_spin_polarised_input_is_answered_by_the_spin_resolved_model(zeeman):
    """The default chain's Bethe model is spin symmetric; the Zeeman-split input is answered
    by the spin-resolved single-band model, per spin, within its accuracy of the reference
    ED (RMS of G(tau) 4.7e-4 on the single-band test database; here 3e-4 at most)."""
    np.testing.assert_allclose(zeeman["ml"], zeeman["ed"], rtol=0, atol=1e-3)
    assert np.any(np.abs(zeeman["ml"] - zeeman["ed"]) > 1e-8)  # the model's, not the ED's
