# SPDX-License-Identifier: Apache-2.0
"""The light layer's Wilson, rebinning_tau, make_hermitian, h5diff, comparison_tests,
dichotomy, mpl_interface and atom_diag: against independently computed numbers, and each
one imported through ``triqs-mlsolver run`` by a short script in TRIQS style.

The light backend is forced (conftest.py); matplotlib draws with Agg.
"""

import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.integrate import trapezoid
from scipy.special import eval_legendre
from triqs_mlsolver.cli.main import main
from triqs_mlsolver.cli.run import NotServedError, ServedTriqs
from triqs_mlsolver.gf import (
    BlockGf,
    Flat,
    Gf,
    HDFArchive,
    MeshImFreq,
    MeshImTime,
    MeshLegendre,
    SemiCircular,
    Wilson,
    is_gf_hermitian,
    make_hermitian,
    rebinning_tau,
)
from triqs_mlsolver.light import atom_diag as ad_mod
from triqs_mlsolver.light.atom_diag import (
    AtomDiag,
    AtomDiagComplex,
    AtomDiagReal,
    act,
    atomic_density_matrix,
    atomic_g_iw,
    atomic_g_l,
    atomic_g_tau,
    partition_function,
    quantum_number_eigenvalues,
    quantum_number_eigenvalues_checked,
    trace_rho_op,
)
from triqs_mlsolver.light.utility import (
    assert_arrays_are_close,
    assert_block2_gfs_are_close,
    assert_block_gfs_are_close,
    assert_gfs_are_close,
    dichotomy,
    h5diff,
)
from triqs_mlsolver.operators import c, c_dag, monomials, n

ROOT = Path(__file__).resolve().parents[2]


def write(folder, name, code):
    path = Path(folder) / name
    path.write_text(textwrap.dedent(code))
    return path


def run_in(folder, script, *args):
    """``triqs-mlsolver -q run --solver ipt SCRIPT`` in-process, in ``folder``."""
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        return main(["-q", "run", "--solver", "ipt", str(script), *map(str, args)])
    finally:
        os.chdir(cwd)


def semicircle_block(beta=10.0, n_iw=16, names=("up", "down")):
    g = BlockGf(mesh=MeshImFreq(beta=beta, statistic="Fermion", n_iw=n_iw),
                gf_struct=[(b, 1) for b in names])
    g << SemiCircular(1.0)
    return g


# ---------------------------------------------------------------------------
#  Wilson, rebinning_tau, make_hermitian
# ---------------------------------------------------------------------------
def test_wilson_is_the_flat_band_hilbert_transform():
    assert Wilson is Flat
    mesh = MeshImFreq(beta=5.0, statistic="Fermion", n_iw=8)
    g = Gf(mesh=mesh, target_shape=(1, 1))
    g << Wilson(2.0)
    # G(i w) = int_{-D}^{D} de / (2D) / (i w - e) = -i arctan(D / w) / D
    w = mesh.values().imag
    np.testing.assert_allclose(g.data[:, 0, 0], -1j * np.arctan(2.0 / w) / 2.0, rtol=0,
                               atol=1e-14)
    with pytest.raises(ValueError, match="half_bandwidth"):
        Wilson(0.0)


def test_rebinning_tau_averages_the_old_points_nearest_to_each_new_point():
    rng = np.random.default_rng(7)
    beta, n_old, n_new = 4.0, 43, 7  # k (n_new-1)/(n_old-1) = k/7 is never j + 1/2
    g = Gf(mesh=MeshImTime(beta=beta, statistic="Fermion", n_tau=n_old), target_shape=(2, 2))
    g.data[...] = rng.normal(size=g.data.shape) + 1j * rng.normal(size=g.data.shape)
    r = rebinning_tau(g, n_new)
    assert r.mesh == MeshImTime(beta=beta, statistic="Fermion", n_tau=n_new)
    tau_old = np.arange(n_old) * beta / (n_old - 1)
    tau_new = np.arange(n_new) * beta / (n_new - 1)
    for j in range(n_new):  # the old points whose nearest new point is j (no ties here)
        members = np.abs(tau_old[:, None] - tau_new[None, :]).argmin(axis=1) == j
        np.testing.assert_allclose(r.data[j], g.data[members].mean(axis=0), rtol=0, atol=1e-14)
    # the same as a method, and as TRIQS's Gf.rebinning_tau(g, n)
    np.testing.assert_array_equal(g.rebinning_tau(n_new).data, r.data)
    np.testing.assert_array_equal(Gf.rebinning_tau(g, n_new).data, r.data)
    # the average over a bin of a linear function is its value at the bin's mean τ
    lin = Gf(mesh=g.mesh, data=(1.0 - 0.5 * tau_old)[:, None, None])
    mean_tau = [tau_old[np.abs(tau_old[:, None] - tau_new).argmin(1) == j].mean()
                for j in range(n_new)]
    np.testing.assert_allclose(rebinning_tau(lin, n_new).data[:, 0, 0],
                               1.0 - 0.5 * np.array(mean_tau), rtol=0, atol=1e-14)


def test_rebinning_tau_ties_go_to_the_later_point_and_bad_input_is_refused():
    g = Gf(mesh=MeshImTime(beta=1.0, statistic="Fermion", n_tau=11), target_shape=())
    g.data[:] = np.arange(11)
    # new points 0, 0.5, 1; old tau = 0.25 (k=2.5) does not exist, k = 0..2 -> 0 (0.2 < 0.25)
    np.testing.assert_allclose(rebinning_tau(g, 3).data, [1.0, 5.0, 9.0])
    g5 = Gf(mesh=MeshImTime(beta=1.0, statistic="Fermion", n_tau=5), target_shape=())
    g5.data[:] = np.arange(5)
    # tau = 0.25 and 0.75 are ties between new points (0, 0.5) and (0.5, 1): they go up
    np.testing.assert_allclose(rebinning_tau(g5, 3).data, [0.0, 1.5, 3.5])
    with pytest.raises(ValueError, match="between 2 and the present n_tau=11"):
        rebinning_tau(g, 12)
    with pytest.raises(TypeError, match="MeshImTime"):
        rebinning_tau(semicircle_block()["up"], 3)
    with pytest.raises(TypeError, match="block by block"):
        rebinning_tau(semicircle_block(), 3)


def test_make_hermitian_symmetrises_as_triqs_defines_it():
    rng = np.random.default_rng(3)
    mesh = MeshImFreq(beta=10.0, statistic="Fermion", n_iw=6)
    g = Gf(mesh=mesh, target_shape=(2, 2))
    g.data[...] = rng.normal(size=g.data.shape) + 1j * rng.normal(size=g.data.shape)
    assert not is_gf_hermitian(g) and not g.is_gf_hermitian()
    h = make_hermitian(g)
    for i, n_ in enumerate(range(-6, 6)):  # G(i w_n) and G(-i w_n) = G(i w_{-n-1})
        minus = g.data[mesh.index_to_linear(-n_ - 1)]
        np.testing.assert_allclose(h.data[i], 0.5 * (g.data[i] + minus.conj().T), atol=1e-15)
    assert is_gf_hermitian(h) and is_gf_hermitian(make_hermitian(h))
    np.testing.assert_allclose(make_hermitian(h).data, h.data, atol=1e-15)
    # a physical G is already hermitian
    assert is_gf_hermitian(semicircle_block()) and is_gf_hermitian(semicircle_block()["up"])
    # imaginary time: G_ij(tau) -> (G_ij + G_ji^*) / 2 at the same tau
    gt = Gf(mesh=MeshImTime(beta=1.0, statistic="Fermion", n_tau=5), target_shape=(2, 2))
    gt.data[...] = rng.normal(size=gt.data.shape) + 1j * rng.normal(size=gt.data.shape)
    ht = make_hermitian(gt)
    np.testing.assert_allclose(ht.data, 0.5 * (gt.data + np.conj(gt.data.transpose(0, 2, 1))))
    # blocks and scalar targets
    b = BlockGf(name_list=["a", "b"], block_list=[g, g])
    hb = make_hermitian(b)
    assert hb.block_names == ["a", "b"] and np.array_equal(hb["b"].data, h.data)
    s = Gf(mesh=mesh, target_shape=(), data=g.data[:, 0, 1])
    np.testing.assert_allclose(make_hermitian(s).data, 0.5 * (s.data + np.conj(s.data[::-1])))
    with pytest.raises(TypeError, match="MeshImFreq or MeshImTime"):
        make_hermitian(Gf(mesh=MeshLegendre(beta=1.0, statistic="Fermion", max_n=3)))


# ---------------------------------------------------------------------------
#  comparison_tests and h5diff
# ---------------------------------------------------------------------------
def test_comparison_tests_raise_above_precision_only():
    a = np.array([1.0, 2.0, 3.0])
    assert_arrays_are_close(a, a + 1e-7)
    with pytest.raises(AssertionError, match=r"Difference is 1\.4999"):
        assert_arrays_are_close(a, a + np.array([0, 1.5e-5, 0]))
    assert_arrays_are_close(a, a + 1e-3, precision=1e-2)
    with pytest.raises(AssertionError):  # a NaN is never close
        assert_arrays_are_close(a, a * np.nan)
    with pytest.raises(AssertionError, match="shapes"):
        assert_arrays_are_close(a, a[:2])
    g1, g2 = semicircle_block(), semicircle_block()
    assert_block_gfs_are_close(g1, g2)
    assert_block2_gfs_are_close(g1, g2)
    g2["down"].data[3] += 2e-6
    assert_gfs_are_close(g1["up"], g2["up"])
    with pytest.raises(AssertionError, match="Arrays are different"):
        assert_block_gfs_are_close(g1, g2)
    assert_block_gfs_are_close(g1, g2, precision=1e-5)
    with pytest.raises(AssertionError, match="meshes are different"):
        assert_gfs_are_close(g1["up"], semicircle_block(n_iw=8)["up"])
    with pytest.raises(AssertionError, match="block name up does not match a"):
        assert_block_gfs_are_close(g1, semicircle_block(names=("a", "b")))


def _archive(path, **changes):
    values = {"G_iw": semicircle_block(), "U": 2.0, "n_loops": 5, "label": "bethe",
              "arr": np.arange(4.0), "params": {"beta": 10.0, "blocks": ["up", "down"]}}
    values.update(changes)
    with HDFArchive(path, "w") as ar:
        for k, v in values.items():
            ar[k] = v
    return path


def test_h5diff_passes_identical_archives_and_reports_every_difference(tmp_path, capsys):
    a = _archive(tmp_path / "a.h5")
    h5diff(str(a), str(_archive(tmp_path / "same.h5")))  # identical: no exception
    g = semicircle_block()
    g["down"].data[5] += 1e-5
    b = _archive(tmp_path / "b.h5", G_iw=g, U=2.0 + 1e-9, label="square",
                 params={"beta": 10.0, "blocks": ["up", "dn"]})
    with pytest.raises(RuntimeError, match="FAILED") as err:
        h5diff(a, b)
    report = str(err.value)
    for key in ("'/G_iw'", "'/U'", "'/label'", "'/params/blocks'"):
        assert key in report
    assert "'/arr'" not in report and "'/n_loops'" not in report
    assert "FAILED" in capsys.readouterr().err
    # precision applies to Green's functions (TRIQS): 1e-5 passes with 1e-4 ...
    h5diff(a, _archive(tmp_path / "c.h5", G_iw=g), precision=1e-4)
    # ... not to numbers, which TRIQS compares to 1e-10 whatever precision is
    with pytest.raises(RuntimeError, match="'/U'"):
        h5diff(a, _archive(tmp_path / "d.h5", U=2.001), precision=1.0)
    # a key in one archive only is a difference; the common keys are still compared
    with pytest.raises(RuntimeError, match="different keys"):
        h5diff(a, _archive(tmp_path / "e.h5", extra=1))
    # a second call does not inherit the failures of the first
    h5diff(a, tmp_path / "same.h5")


def test_h5diff_types_and_what_it_cannot_compare(tmp_path):
    a = _archive(tmp_path / "a.h5")
    with pytest.raises(RuntimeError, match="different types"):
        h5diff(a, _archive(tmp_path / "b.h5", n_loops=5.0))


# ---------------------------------------------------------------------------
#  dichotomy
# ---------------------------------------------------------------------------
def test_dichotomy_finds_known_roots(capsys):
    calls = []

    def f(x):
        calls.append(x)
        return x**3

    x, y = dichotomy(f, x_init=0.0, y_value=2.0, precision_on_y=1e-10, delta_x=0.5,
                     x_name="x", y_name="x^3")
    assert abs(y - 2.0) < 1e-10 and abs(x - 2 ** (1 / 3)) < 1e-9 and y == f(x)
    assert len(calls) < 60
    out = capsys.readouterr().out
    assert "Dichotomy adjustment of x to obtain x^3 = 2.000000" in out and "found in" in out
    # a decreasing function: exp(-x) = 0.3 from x = 0 walks to larger x
    x, y = dichotomy(lambda v: np.exp(-v), 0.0, 0.3, 1e-12, 0.4, verbosity=0)
    assert abs(x - np.log(1 / 0.3)) < 1e-10
    assert capsys.readouterr().out == ""
    # already there: x_init comes back at once
    assert dichotomy(lambda v: 2 * v, 1.5, 3.0, 1e-6, 1.0, verbosity=0) == (1.5, 3.0)


def test_dichotomy_returns_none_when_it_fails():
    # x^2 + 1 = 0 has no root: no bracket within max_loops
    assert dichotomy(lambda v: v * v + 1, 0.3, 0.0, 1e-6, 0.1, max_loops=50,
                     verbosity=0) == (None, None)
    # a step function: bracketed, but |f - y| never below the precision
    assert dichotomy(lambda v: -1.0 if v < 0.123 else 1.0, -1.0, 0.0, 1e-3, 0.7, max_loops=200,
                     verbosity=0) == (None, None)


# ---------------------------------------------------------------------------
#  mpl_interface
# ---------------------------------------------------------------------------
@pytest.fixture
def mpl():
    from triqs_mlsolver.light import plot

    plt = plot.plt
    plt.close("all")
    yield plot
    plt.close("all")


def test_oplot_draws_gf_curves_with_triqs_labels_and_windows(mpl, tmp_path):
    plt, oplot = mpl.plt, mpl.oplot
    g = semicircle_block(beta=10.0, n_iw=32)
    oplot(g["up"], "-o", x_window=(0, 10), name="G", mode="I")
    ax = plt.gca()
    (line,) = ax.get_lines()
    w = MeshImFreq(beta=10.0, statistic="Fermion", n_iw=32).values().imag
    inside = (w >= 0) & (w <= 10)
    np.testing.assert_allclose(line.get_xdata(), w[inside])
    np.testing.assert_allclose(line.get_ydata(), g["up"].data[inside, 0, 0].imag)
    assert line.get_label() == "Im G 0_0" and line.get_marker() == "o"
    assert ax.get_xlabel() == r"$\omega_n$" and ax.get_ylabel() == r"G$(i\omega_n)$"
    assert ax.get_legend() is not None
    plt.figure()
    oplot(g, name="G", color="red")  # BlockGf: Re and Im of every block
    labels = [ln.get_label() for ln in plt.gca().get_lines()]
    assert labels == ["Re G 0_0", "Im G 0_0"] * 2
    fig, ax2 = mpl.subplots()
    gt = Gf(mesh=MeshImTime(beta=2.0, statistic="Fermion", n_tau=21), target_shape=(2, 2))
    gt.data[:, 0, 1] = np.linspace(0, 1, 21)
    ax2.oplot(gt, mode="R", name="g")  # Axes.oplot, added as TRIQS does
    # TRIQS's order: the first target index runs fastest
    assert [ln.get_label() for ln in ax2.get_lines()] == ["Re g 0_0", "Re g 1_0", "Re g 0_1",
                                                          "Re g 1_1"]
    np.testing.assert_allclose(ax2.get_lines()[2].get_ydata(), np.linspace(0, 1, 21))
    assert ax2.get_xlabel() == r"$\tau$"
    fig.savefig(tmp_path / "g.png")
    assert (tmp_path / "g.png").stat().st_size > 0


def test_oplot_functions_pairs_and_errors(mpl):
    plt, oplot = mpl.plt, mpl.oplot
    oplot(np.sin, x_window=(0, np.pi), n_points=50, name="sin")
    (line,) = plt.gca().get_lines()
    assert len(line.get_xdata()) == 50 and line.get_label() == "sin"
    np.testing.assert_allclose(line.get_ydata(), np.sin(line.get_xdata()))
    oplot([(0, 1j), (1, 2 + 1j)], name="z")
    assert [ln.get_label() for ln in plt.gca().get_lines()][1:] == ["Re z", "Im z"]
    with pytest.warns(DeprecationWarning, match="oploti is deprecated"):
        mpl.oploti(semicircle_block()["up"], name="G")
    assert plt.gca().get_lines()[-1].get_label() == "Im G 0_0"
    with pytest.raises(RuntimeError, match="Plot option 'colour' not understood"):
        oplot(semicircle_block()["up"], colour="red")
    with pytest.raises(ValueError, match="spectral function"):
        oplot(semicircle_block()["up"], mode="S")
    with pytest.raises(ValueError, match="meaningless"):
        oplot(semicircle_block()["up"], mode="X")


def test_run_does_not_import_matplotlib_until_a_script_plots():
    code = textwrap.dedent("""\
        import sys
        from triqs_mlsolver.cli.run import ServedTriqs
        with ServedTriqs("ipt") as hooks:
            import triqs.plot.mpl_interface as mi
            before = "matplotlib" in sys.modules
            from triqs.plot.mpl_interface import oplot, plt
            print(before, "matplotlib" in sys.modules, plt.__name__)
        """)
    env = {**os.environ, "TRIQS_MLSOLVER_BACKEND": "light", "MPLBACKEND": "Agg"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.stdout.split() == ["False", "True", "matplotlib.pyplot"], out.stderr


# ---------------------------------------------------------------------------
#  atom_diag
# ---------------------------------------------------------------------------
U, MU, BETA = 2.0, 0.7, 5.0
FOPS = [("up", 0), ("down", 0)]


def hubbard_atom(u=U, mu=MU):
    return u * n("up", 0) * n("down", 0) - mu * (n("up", 0) + n("down", 0))


def hubbard_weights(u=U, mu=MU, beta=BETA):
    """Energies (0, -mu, -mu, U - 2mu) and Gibbs weights of the empty, up, down, double states."""
    e = np.array([0.0, -mu, -mu, u - 2 * mu])
    w = np.exp(-beta * (e - e.min()))
    return e, w / w.sum(), w.sum()


def test_atomdiag_of_the_hubbard_atom():
    ad = AtomDiag(hubbard_atom(), FOPS)
    assert isinstance(ad, AtomDiagReal)
    e, w, z = hubbard_weights()
    assert ad.n_subspaces == 4 and ad.full_hilbert_space_dim == 4
    assert ad.fops == FOPS and (ad.h_atomic - hubbard_atom()).is_zero()
    assert ad.gs_energy == pytest.approx(-MU, abs=1e-14)
    energies = sorted(float(x) + ad.gs_energy for sp in ad.energies for x in sp)
    np.testing.assert_allclose(energies, sorted(e), atol=1e-14)
    # subspaces ordered by energy, the ground state's first; the eigensystems and the
    # energies agree; Fock states: bit 0 = up, bit 1 = down
    assert [es.eigenvalues[0] for es in ad.eigensystems] == [x[0] for x in ad.energies]
    assert ad.energies[0][0] == 0.0 and sorted(ad.fock_states) == [[0], [1], [2], [3]]
    assert partition_function(ad, BETA) == pytest.approx(z, rel=1e-14)
    rho = atomic_density_matrix(ad, BETA)
    assert len(rho) == 4 and all(r.shape == (1, 1) for r in rho)
    docc = trace_rho_op(rho, n("up", 0) * n("down", 0), ad)
    assert isinstance(docc, float) and docc == pytest.approx(w[3], rel=1e-13)
    assert trace_rho_op(rho, n("up", 0), ad) == pytest.approx(w[1] + w[3], rel=1e-13)
    n_tot = quantum_number_eigenvalues(n("up", 0) + n("down", 0), ad)
    by_fock = {ad.fock_states[sp][0]: n_tot[sp][0] for sp in range(4)}
    assert by_fock == {0: 0.0, 1: 1.0, 2: 1.0, 3: 2.0}
    assert quantum_number_eigenvalues_checked(n("up", 0), ad) == quantum_number_eigenvalues(
        n("up", 0), ad)
    # the vacuum, and c_dag_up c_dag_dn on it: the doubly occupied state
    assert ad.vacuum_subspace_index == [f[0] for f in ad.fock_states].index(0)
    double = act(c_dag("up", 0) * c_dag("down", 0), ad.vacuum_state, ad)
    sp3 = [f[0] for f in ad.fock_states].index(3)
    assert abs(double[ad.flatten_subspace_index(sp3, 0)]) == pytest.approx(1.0)
    assert np.count_nonzero(double) == 1
    assert "4 invariant subspaces" in repr(ad)


def test_atomic_green_functions_of_the_hubbard_atom():
    ad = AtomDiag(hubbard_atom(), FOPS)
    _, w, _ = hubbard_weights()
    struct = [("up", 1), ("down", 1)]
    g_iw = atomic_g_iw(ad, BETA, struct, 50)
    iw = MeshImFreq(beta=BETA, statistic="Fermion", n_iw=50).values()
    exact = (w[0] + w[1]) / (iw + MU) + (w[2] + w[3]) / (iw + MU - U)
    for b in ("up", "down"):
        np.testing.assert_allclose(g_iw[b].data[:, 0, 0], exact, rtol=0, atol=1e-14)
    g_tau = atomic_g_tau(ad, BETA, struct, 201)
    tau = np.linspace(0, BETA, 201)

    def g_of_tau(t):  # G(tau) = -sum_p r_p e^{-tau p} / (1 + e^{-beta p})
        out = 0
        for r, p in (((w[0] + w[1]), -MU), ((w[2] + w[3]), U - MU)):
            out = out - r * np.exp(-t * p) / (1 + np.exp(-BETA * p))
        return out

    np.testing.assert_allclose(g_tau["up"].data[:, 0, 0], g_of_tau(tau), rtol=0, atol=1e-14)
    assert g_tau["up"].data[0, 0, 0].real + g_tau["up"].data[-1, 0, 0].real == pytest.approx(-1)
    # Legendre: sqrt(2l+1) int P_l(2tau/beta - 1) G(tau) dtau by Gauss-Legendre quadrature
    g_l = atomic_g_l(ad, BETA, struct, 12)
    x, wq = np.polynomial.legendre.leggauss(60)
    for ell in range(12):
        ref = np.sqrt(2 * ell + 1) * BETA / 2 * np.sum(wq * eval_legendre(ell, x)
                                                       * g_of_tau(BETA * (x + 1) / 2))
        assert g_l["up"].data[ell, 0, 0] == pytest.approx(ref, abs=1e-13)
    # large beta * pole: no overflow, and excluded states drop their poles
    cold = atomic_g_l(AtomDiag(hubbard_atom(u=40.0, mu=20.0), FOPS), 200.0, struct, 20)
    assert np.all(np.isfinite(cold["up"].data))
    sp_up = [f[0] for f in ad.fock_states].index(1)
    part = atomic_g_iw(ad, BETA, [("up", 1)], 50, excluded_states=[(sp_up, 0)])
    # the term empty -> up goes, down -> double stays (weights still normalised by all of Z)
    np.testing.assert_allclose(part["up"].data[:, 0, 0], (w[2] + w[3]) / (iw + MU - U),
                               rtol=0, atol=1e-14)


def _fock_matrices(n_modes):
    """Jordan-Wigner c_k as dense matrices on bit-ordered Fock states (test's own)."""
    dim = 1 << n_modes
    cs = []
    for k in range(n_modes):
        m = np.zeros((dim, dim))
        for s in range(dim):
            if s >> k & 1:
                m[s ^ (1 << k), s] = (-1) ** bin(s & ((1 << k) - 1)).count("1")
        cs.append(m)
    return cs


def test_atomdiag_of_a_two_orbital_atom_against_full_diagonalisation():
    fops = [("up", 0), ("down", 0), ("up", 1), ("down", 1)]
    h = (3.0 * sum(n(s, 0) * n(s2, 0) for s, s2 in [("up", "down")])
         + 2.5 * n("up", 1) * n("down", 1) + 0.4 * n("up", 0) * n("up", 1)
         - 1.1 * sum(n(b, i) for b, i in fops) + 0.2 * n("up", 1)
         + sum(-0.5 * (c_dag(s, 0) * c(s, 1) + c_dag(s, 1) * c(s, 0)) for s in ("up", "down"))
         + 0.3 * (c_dag("up", 0) * c("down", 0) * c_dag("down", 1) * c("up", 1)
                  + c_dag("up", 1) * c("down", 1) * c_dag("down", 0) * c("up", 0)))
    ad = AtomDiag(h, fops)
    cs = _fock_matrices(4)
    idx = {f: k for k, f in enumerate(fops)}

    def mat(op):
        out = np.zeros((16, 16))
        for word, coef in monomials(op):
            m = np.eye(16)
            for dag, b, i in word:
                ck = cs[idx[(b, i)]]
                m = m @ (ck.T if dag else ck)
            out += coef * m
        return out

    H = mat(h)
    e_full = np.linalg.eigvalsh(H)
    e_ad = np.sort([x + ad.gs_energy for sp in ad.energies for x in sp])
    np.testing.assert_allclose(e_ad, e_full, atol=1e-12)
    assert sum(ad.get_subspace_dims()) == 16 and ad.n_subspaces < 16
    # each c_k maps a subspace into at most one subspace (the auto-partition's promise)
    for k in range(4):
        for sp in range(ad.n_subspaces):
            assert len(ad._c[k][sp]) <= 1 and len(ad._cdag[k][sp]) <= 1
    # thermal averages: Tr(e^{-beta H} O) / Z from the full matrices
    beta = 3.0
    rho_full = np.diag(np.exp(-beta * (e_full - e_full[0])))
    vals, vecs = np.linalg.eigh(H)
    rho_full = vecs @ rho_full @ vecs.T
    z = np.trace(rho_full)
    assert partition_function(ad, beta) == pytest.approx(z, rel=1e-12)
    rho = atomic_density_matrix(ad, beta)
    for op in (n("up", 0) * n("down", 0), n("up", 1), c_dag("up", 0) * c("up", 1)):
        ref = np.trace(rho_full @ mat(op)) / z
        assert trace_rho_op(rho, op, ad) == pytest.approx(ref, abs=1e-12)
    # G(i w) of (up, 0): Lehmann sum against the resolvent of the full matrices
    g = atomic_g_iw(ad, beta, [("up", 2)], 4)
    iw = MeshImFreq(beta=beta, statistic="Fermion", n_iw=4).values()
    ev = vecs
    c_eig = ev.T @ cs[idx[("up", 0)]] @ ev
    c1_eig = ev.T @ cs[idx[("up", 1)]] @ ev
    weights = np.exp(-beta * (vals - vals[0])) / z
    ref = np.zeros(len(iw), complex)
    for a in range(16):
        for b in range(16):
            r = (weights[a] + weights[b]) * c_eig[a, b] * c1_eig[a, b]
            ref += r / (iw - (vals[b] - vals[a]))
    np.testing.assert_allclose(g["up"].data[:, 0, 1], ref, atol=1e-12)


def test_atomdiag_partitions_and_constructors():
    flip = 0.3 * (c_dag("up", 0) * c("down", 0) + c_dag("down", 0) * c("up", 0))
    ad = AtomDiag(hubbard_atom() + flip, FOPS)
    assert ad.get_subspace_dims() == [2, 1, 1]  # {up, down} mixed, then empty, double
    np.testing.assert_allclose(ad.energies[0], [0.0, 0.6], atol=1e-14)
    # hyb joins what it connects: c_dag_up c_down + h.c. in hyb only
    assert sorted(AtomDiag(hubbard_atom(), flip, FOPS).get_subspace_dims()) == [1, 1, 2]
    # quantum numbers: N alone groups the two singly occupied states
    qn = AtomDiag(hubbard_atom(), FOPS, [n("up", 0) + n("down", 0)])
    assert sorted(qn.get_subspace_dims()) == [1, 1, 2]
    assert sorted(map(tuple, qn.quantum_numbers)) == [(0.0,), (1.0,), (2.0,)]
    with pytest.raises(ValueError, match="not conserved"):
        AtomDiag(hubbard_atom() + flip, FOPS, [n("up", 0)])
    # n_min, n_max: only the singly occupied states
    one = AtomDiag(hubbard_atom(), FOPS, 1, 1)
    assert one.n_subspaces == 2 and one.full_hilbert_space_dim == 4
    assert one.vacuum_subspace_index == -1
    # complex terms: AtomDiagComplex
    cplx = AtomDiag(hubbard_atom() + 0.2j * c_dag("up", 0) * c("down", 0)
                    - 0.2j * c_dag("down", 0) * c("up", 0), FOPS)
    assert isinstance(cplx, AtomDiagComplex)
    np.testing.assert_allclose(cplx.energies[0], [0.0, 0.4], atol=1e-14)
    with pytest.raises(ValueError, match=r"fops .* does not list"):
        AtomDiag(hubbard_atom(), [("up", 0)])
    with pytest.raises(RuntimeError, match="not a quantum number"):
        quantum_number_eigenvalues(c_dag("up", 0) + c("up", 0), ad)
    with pytest.raises(ValueError, match="not Hermitian"):
        AtomDiag(c_dag("up", 0) * c("down", 0), FOPS)
    with pytest.raises(ValueError, match="at most"):
        AtomDiag(n("up", 0), [("up", k) for k in range(ad_mod.MAX_MODES + 1)])


# ---------------------------------------------------------------------------
#  through `triqs-mlsolver run`: TRIQS-style scripts
# ---------------------------------------------------------------------------
GF_TOOLS_SCRIPT = """\
import numpy as np
from triqs.gf import *
beta = 10.
g = GfImFreq(indices=[0], beta=beta, n_points=64)
g << inverse(iOmega_n - 0.25 * Wilson(1.0))
gt = GfImTime(indices=[0], beta=beta, n_points=1001)
gt << Fourier(g)
gt_coarse = Gf.rebinning_tau(gt, 129)
sym = make_hermitian(g)
np.savez("out.npz", g=g.data[:, 0, 0], fine=gt.data[:, 0, 0],
         coarse=gt_coarse.data[:, 0, 0], sym=sym.data[:, 0, 0])
"""


def test_run_serves_wilson_rebinning_and_make_hermitian(tmp_path):
    assert run_in(tmp_path, write(tmp_path, "gf_tools.py", GF_TOOLS_SCRIPT)) == 0
    out = np.load(tmp_path / "out.npz")
    iw = MeshImFreq(beta=10.0, statistic="Fermion", n_iw=64).values()
    flat = np.log((iw + 1) / (iw - 1)) / 2
    np.testing.assert_allclose(out["g"], 1 / (iw - 0.25 * flat), atol=1e-14)
    np.testing.assert_allclose(out["sym"], out["g"], atol=1e-15)  # already hermitian
    fine, coarse = out["fine"], out["coarse"]
    assert coarse.shape == (129,)
    # each new point averages the old points nearest to it (1000 / 128 steps: no ties, so
    # the bins do not depend on how a tie is rounded)
    nearest = np.rint(np.arange(1001) * 128 / 1000).astype(int)
    np.testing.assert_allclose(coarse, [fine[nearest == j].mean() for j in range(129)],
                               rtol=0, atol=1e-14)


def test_run_serves_h5diff_comparison_tests_and_dichotomy(tmp_path):
    script = write(tmp_path, "check.py", """\
        from triqs.gf import *
        from h5 import HDFArchive
        from triqs.utility.h5diff import h5diff
        from triqs.utility.comparison_tests import *
        from triqs.utility.dichotomy import dichotomy
        import triqs.utility.mpi as mpi

        G = BlockGf(mesh=MeshImFreq(beta=10, S='Fermion', n_iw=32), gf_struct=[('up', 1)])
        G << SemiCircular(1.0)
        with HDFArchive("a.h5", "w") as ar:
            ar["G"] = G
        with HDFArchive("b.h5", "w") as ar:
            ar["G"] = G
        h5diff("a.h5", "b.h5")
        G2 = G.copy()
        G2['up'] << G['up'] * 1.0001
        with HDFArchive("b.h5", "w") as ar:
            ar["G"] = G2
        try:
            h5diff("a.h5", "b.h5", precision=1e-8)
            raise SystemExit("h5diff did not fail")
        except RuntimeError:
            pass
        assert_block_gfs_are_close(G, G2, precision=1e-3)
        try:
            assert_gfs_are_close(G['up'], G2['up'], precision=1e-8)
            raise SystemExit("assert_gfs_are_close did not fail")
        except AssertionError:
            pass

        def density(mu):
            g = GfImFreq(indices=[0], beta=10, n_points=256)
            g << SemiCircular(1.0, mu)
            return g.total_density().real

        mu, n = dichotomy(density, 0.0, 0.75, 1e-6, 0.2, x_name="mu", y_name="n", verbosity=0)
        if mpi.is_master_node():
            open("mu.txt", "w").write(repr(mu))
        """)
    assert run_in(tmp_path, script) == 0
    mu = float((tmp_path / "mu.txt").read_text())
    # n(mu) of the semicircle (D = 1) at beta = 10: the exact 0.75 filling of the band,
    # within the 1e-6 on n (dn/dmu ~ 0.6)
    e = np.linspace(-1, 1, 200001)
    rho = 2 * np.sqrt(1 - e**2) / np.pi
    n_exact = trapezoid(rho / (np.exp(10 * (e - mu)) + 1), e)
    assert n_exact == pytest.approx(0.75, abs=1e-5)


def test_run_serves_mpl_interface(tmp_path):
    script = write(tmp_path, "plot_g.py", """\
        from triqs.gf import *
        from triqs.plot.mpl_interface import oplot, plt
        G = GfImFreq(indices=[0], beta=50, n_points=100)
        G << SemiCircular(1.0)
        oplot(G, '-o', x_window=(0, 10), name='G', mode='I')
        plt.savefig("G.png")
        fig, ax = plt.subplots()
        ax.oplot(G, name='G', mode='R')
        fig.savefig("G2.png")
        """)
    assert run_in(tmp_path, script) == 0
    assert (tmp_path / "G.png").stat().st_size > 0 and (tmp_path / "G2.png").stat().st_size > 0


ATOM_SCRIPT = """\
import json
from triqs.operators import *
from triqs.atom_diag import *
U, mu, beta = 2.0, 0.7, 5.0
fops = [('up', 0), ('down', 0)]
H = U * n('up', 0) * n('down', 0) - mu * (n('up', 0) + n('down', 0))
ad = AtomDiag(H, fops)
rho = atomic_density_matrix(ad, beta)
G_iw = atomic_g_iw(ad, beta, [('up', 1), ('down', 1)], 20)
json.dump({"Z": partition_function(ad, beta), "E0": ad.gs_energy,
           "docc": trace_rho_op(rho, n('up', 0) * n('down', 0), ad),
           "energies": sorted(e for sp in ad.energies for e in sp),
           "n_sub": ad.n_subspaces, "G0": [G_iw['up'].data[20, 0, 0].real,
                                           G_iw['up'].data[20, 0, 0].imag]},
          open("atom.json", "w"))
"""


def test_run_serves_atom_diag(tmp_path):
    assert run_in(tmp_path, write(tmp_path, "atom.py", ATOM_SCRIPT)) == 0
    res = json.loads((tmp_path / "atom.json").read_text())
    e, w, z = hubbard_weights()
    assert res["n_sub"] == 4 and res["E0"] == pytest.approx(-MU)
    np.testing.assert_allclose(res["energies"], np.sort(e) + MU, atol=1e-14)
    assert res["Z"] == pytest.approx(z) and res["docc"] == pytest.approx(w[3])
    iw0 = 1j * np.pi / BETA
    g0 = (w[0] + w[1]) / (iw0 + MU) + (w[2] + w[3]) / (iw0 + MU - U)
    assert complex(*res["G0"]) == pytest.approx(g0, abs=1e-14)


HAVE_TRIQS = all(importlib.util.find_spec(m) is not None for m in ("triqs", "h5"))


@pytest.mark.triqs
@pytest.mark.skipif(not HAVE_TRIQS, reason="real TRIQS (triqs + h5) not importable")
@pytest.mark.parametrize("script, output", [(ATOM_SCRIPT, "atom.json"),
                                            (GF_TOOLS_SCRIPT, "out.npz")])
def test_scripts_agree_with_real_triqs(tmp_path, script, output):  # pragma: no cover - TRIQS
    """The same scripts with plain python on real TRIQS 3.x, and through the light layer."""
    real, light = tmp_path / "real", tmp_path / "light"
    real.mkdir()
    light.mkdir()
    env = {**os.environ, "TRIQS_MLSOLVER_BACKEND": "auto"}
    res = subprocess.run([sys.executable, str(write(real, "s.py", script))], cwd=real,
                         env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert run_in(light, write(light, "s.py", script)) == 0
    if output.endswith(".json"):
        a, b = (json.loads((d / output).read_text()) for d in (real, light))
        for key in a:
            np.testing.assert_allclose(a[key], b[key], rtol=0, atol=1e-12)
    else:
        a, b = (np.load(d / output) for d in (real, light))
        for key in ("g", "sym"):
            np.testing.assert_allclose(a[key], b[key], rtol=0, atol=1e-12)
        for key in ("fine", "coarse"):  # TRIQS's Fourier: its own tail fit (1e-6 level)
            np.testing.assert_allclose(a[key], b[key], rtol=0, atol=1e-5)


def test_run_serves_the_triqs2_spellings(tmp_path):
    script = write(tmp_path, "old.py", """\
        from pytriqs.gf.local import *
        from pytriqs.utility.comparison_tests import assert_arrays_are_close
        from pytriqs.utility.dichotomy import dichotomy
        from pytriqs.atom_diag import AtomDiag, partition_function
        from pytriqs.operators import n
        from pytriqs.plot.mpl_interface import oplot
        g = GfImFreq(indices=[0], beta=10, n_points=10)
        g << Wilson(1.0)
        assert_arrays_are_close(g.data, g.data)
        ad = AtomDiag(n('up', 0), [('up', 0)])
        assert abs(partition_function(ad, 1.0) - (1 + __import__('math').exp(-1.0))) < 1e-14
        """)
    assert run_in(tmp_path, script) == 0


# ---------------------------------------------------------------------------
#  messages
# ---------------------------------------------------------------------------
def test_missing_names_of_served_modules_name_the_api_and_the_triqs_version():
    with ServedTriqs("ipt"):
        with pytest.raises(NotServedError, match=r"triqs\.gf\.GfReFreq .*TRIQS 3") as err:
            from triqs.gf import GfReFreq  # noqa: F401
        assert isinstance(err.value, ImportError) and err.value.name == "triqs.gf.GfReFreq"
        with pytest.raises(NotServedError, match=r"MeshDLRImFreq is part of triqs\.gf in "
                                                 r"TRIQS 3\.2"):
            from triqs.gf import MeshDLRImFreq  # noqa: F401
        with pytest.raises(NotServedError, match="not a name of triqs.gf in TRIQS 3.2 either"):
            from triqs.gf import SomethingNotServed  # noqa: F401
        with pytest.raises(NotServedError, match=r"MeshReTime is part of triqs\.gf in "
                                                 r"TRIQS 3\.x"):
            from triqs.gf import MeshReTime  # noqa: F401
        with pytest.raises(NotServedError, match=r"triqs\.utility\.bound_and_bisect.*TRIQS "
                                                 r"1\.x and later"):
            from triqs.utility import bound_and_bisect  # noqa: F401
        import triqs.gf

        # hasattr / getattr keep their meaning; the AttributeError still names the API
        assert not hasattr(triqs.gf, "GfReFreq")
        assert getattr(triqs.gf, "GfReFreq", None) is None
        with pytest.raises(AttributeError, match=r"triqs\.gf\.GfReFreq is not provided"):
            triqs.gf.GfReFreq  # noqa: B018
        with pytest.raises(AttributeError, match="has no attribute '_private'"):
            triqs.gf._private  # noqa: B018
        from triqs.utility import dichotomy, h5diff  # served submodules still import

        assert callable(dichotomy.dichotomy) and callable(h5diff.h5diff)


def test_pytriqs_under_real_triqs_is_reported_as_triqs2_code():
    with ServedTriqs("ipt", light=False):  # as where real TRIQS 3 is installed
        with pytest.raises(NotServedError) as err:
            from pytriqs.gf.local import GfImFreq  # noqa: F401
    message = str(err.value)
    assert "pytriqs.gf.local is TRIQS 1.x/2.x code" in message
    assert "renamed triqs in TRIQS 3.0" in message and "triqs.gf there" in message
    assert "TRIQS_MLSOLVER_BACKEND=light" in message
    assert "install TRIQS" not in message.replace("installed here", "")


def test_missing_modules_name_their_triqs_version(tmp_path, capsys):
    script = write(tmp_path, "stat.py", "from triqs.stat.histograms import Histogram\n")
    assert run_in(tmp_path, script) == 1
    err = capsys.readouterr().err
    assert "NotServedError" in err and "triqs.stat: Histogram" in err
    assert "TRIQS 3.1 and later" in err
    assert "Installing TRIQS" in err


# ---------------------------------------------------------------------------
#  the documentation's example
# ---------------------------------------------------------------------------
def test_doc_example_runs(tmp_path):
    text = (ROOT / "doc" / "light_utilities.rst").read_text()
    block = re.search(r"An example script.*?::\n\n((?:(?:    .*)?\n)+)", text, re.S).group(1)
    script = write(tmp_path, "example.py", "\n".join(ln[4:] for ln in block.splitlines()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert run_in(tmp_path, script) == 0
    assert (tmp_path / "atom_G.png").stat().st_size > 0
