# SPDX-License-Identifier: Apache-2.0
"""The TRIQS-compatible Gf API of the light layer: meshes, containers, expressions, errors."""

import warnings

import numpy as np
import pytest
from triqs_mlsolver.errors import (
    GfStructError,
    LegacyGfStructWarning,
    MeshMismatchError,
    UnknownParameterError,
)
from triqs_mlsolver.gf import (
    BlockGf,
    Flat,
    Fourier,
    Gf,
    GfImFreq,
    GfImTime,
    GfLegendre,
    MeshImFreq,
    MeshImTime,
    MeshLegendre,
    SemiCircular,
    inverse,
    iOmega_n,
)


# -- meshes -------------------------------------------------------------------
def test_mesh_spellings_of_triqs3_and_4_agree():
    assert MeshImFreq(beta=10, S="Fermion", n_max=64) == MeshImFreq(
        beta=10, statistic="Fermion", n_iw=64
    )
    assert MeshImFreq(10, "Fermion", 64) == MeshImFreq(beta=10, statistic="F", n_iw=64)
    assert MeshImTime(beta=10, S="Fermion", n_max=101) == MeshImTime(
        beta=10, statistic="Fermion", n_tau=101
    )
    assert MeshLegendre(beta=10, S="Fermion", n_max=30) == MeshLegendre(
        beta=10, statistic="Fermion", max_n=30
    )
    assert MeshImFreq(beta=10, statistic="Fermion", n_iw=4) != MeshImFreq(
        beta=11, statistic="Fermion", n_iw=4
    )


def test_mesh_point_conventions():
    m = MeshImFreq(beta=2.0, statistic="Fermion", n_iw=3)
    assert len(m) == 6
    assert [p.index for p in m] == [-3, -2, -1, 0, 1, 2]
    assert np.allclose(m.values(), 1j * np.pi * (2 * np.arange(-3, 3) + 1) / 2.0, rtol=0,
                       atol=1e-15)
    b = MeshImFreq(beta=2.0, statistic="Boson", n_iw=3)
    assert len(b) == 5 and b.values()[2] == 0
    t = MeshImTime(beta=2.0, statistic="Fermion", n_tau=5)
    assert t.values()[0] == 0.0 and t.values()[-1] == 2.0 and t.delta == 0.5
    assert len(MeshLegendre(beta=2.0, statistic="Fermion", max_n=7)) == 7


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: MeshImFreq(beta=10, statistic="Fermion", n_iww=5), UnknownParameterError,
         "unknown keyword 'n_iww'"),
        (lambda: MeshImFreq(beta=-1, statistic="Fermion", n_iw=5), ValueError, "positive"),
        (lambda: MeshImFreq(beta=10, statistic="Fermi", n_iw=5), ValueError, "'Fermion'"),
        (lambda: MeshImTime(beta=10, statistic="Fermion", n_tau=1), ValueError, "n_tau=1"),
        (lambda: MeshLegendre(beta=10, statistic="Fermion", max_n=2.5), TypeError, "integer"),
        (lambda: MeshImFreq(beta=10, S="Fermion", statistic="Fermion"), TypeError, "twice"),
    ],
)
def test_mesh_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# -- containers ---------------------------------------------------------------
def test_gf_constructors_and_data_layout():
    g = GfImFreq(beta=10, n_points=8, indices=[0, 1])
    assert g.data.shape == (16, 2, 2) and g.data.dtype == np.complex128
    assert g.target_shape == (2, 2) and g.beta == 10
    t = GfImTime(beta=10, n_points=11, target_shape=(1, 1))
    assert t.data.shape == (11, 1, 1)
    lg = GfLegendre(beta=10, n_points=5, indices=[0])
    assert lg.data.shape == (5, 1, 1)
    m = MeshImFreq(beta=10, statistic="Fermion", n_iw=8)
    assert Gf(mesh=m, target_shape=[3, 3]).data.shape == (16, 3, 3)
    with pytest.raises(UnknownParameterError, match="n_pts"):
        GfImFreq(beta=10, n_pts=8)
    with pytest.raises(ValueError, match="first axis"):
        Gf(mesh=m, data=np.zeros((3, 1, 1)))
    with pytest.raises(TypeError, match="mesh="):
        Gf(mesh="imfreq")


def test_blockgf_from_gf_struct_and_iteration():
    m = MeshImFreq(beta=10, statistic="Fermion", n_iw=8)
    G = BlockGf(mesh=m, gf_struct=[("up", 1), ("down", 2)])
    assert [n for n, _ in G] == ["up", "down"] and list(G.indices) == ["up", "down"]
    assert G["down"].target_shape == (2, 2) and len(G) == 2
    G << SemiCircular(2.0)
    assert np.allclose(G["down"].data[:, 1, 1], G["up"].data[:, 0, 0], rtol=0, atol=1e-15)
    assert np.all(G["down"].data[:, 0, 1] == 0)
    H = G.copy()
    H["up"].zero()
    assert np.any(G["up"].data != 0)  # deep copy
    with pytest.raises(KeyError, match="its blocks are"):
        G["dn"]


def test_legacy_gf_struct_is_converted_with_a_warning():
    m = MeshImFreq(beta=10, statistic="Fermion", n_iw=4)
    with pytest.warns(LegacyGfStructWarning, match=r"\('up', 1\)"):
        G = BlockGf(mesh=m, gf_struct=[("up", [0]), ("down", [0])])
    assert G.gf_struct == [("up", 1), ("down", 1)]
    with pytest.warns(LegacyGfStructWarning):
        G = BlockGf(mesh=m, gf_struct={"up": [0, 1]})
    assert G["up"].target_shape == (2, 2)


@pytest.mark.parametrize(
    "gf_struct, match",
    [
        ([], "empty"),
        ([("up", 0)], "positive integer"),
        ([("up", 1), ("up", 1)], "repeated"),
        ([(1, 1)], "non-empty string"),
        ([("up",)], "pair"),
        ("up", "list of"),
    ],
)
def test_bad_gf_struct(gf_struct, match):
    m = MeshImFreq(beta=10, statistic="Fermion", n_iw=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LegacyGfStructWarning)
        with pytest.raises(GfStructError, match=match):
            BlockGf(mesh=m, gf_struct=gf_struct)


# -- expressions and arithmetic -------------------------------------------------
def test_bethe_lattice_update_as_in_a_triqs_script():
    beta, mu, t = 20.0, 0.3, 0.5
    m = MeshImFreq(beta=beta, statistic="Fermion", n_iw=64)
    G = BlockGf(mesh=m, gf_struct=[("up", 1), ("down", 1)])
    G << SemiCircular(2 * t)
    G0 = G.copy()
    for name, g0 in G0:
        g0 << inverse(iOmega_n + mu - t**2 * G[name])
    z = m.values()
    expected = 1 / (z + mu - t**2 * G["up"].data[:, 0, 0])
    assert np.abs(G0["down"].data[:, 0, 0] - expected).max() < 1e-14
    # Dyson: Sigma = G0^-1 - G^-1 is zero for G = G0
    Sigma = G0.copy()
    Sigma << inverse(G0) - inverse(G0)
    assert np.abs(Sigma["up"].data).max() == 0


def test_semicircle_and_flat_have_the_right_moments_and_signs():
    m = MeshImFreq(beta=50.0, statistic="Fermion", n_iw=2000)
    for expr, c3 in [(SemiCircular(1.0), 0.25), (Flat(1.0), 1 / 3)]:
        g = Gf(mesh=m, target_shape=())
        g << expr
        z = m.values()
        assert np.all(g.data.imag[z.imag > 0] < 0)
        # z G(z) -> 1 and z^3 (G - 1/z) -> c3 at the largest frequency
        assert abs(z[-1] * g.data[-1] - 1) < abs(z[-1]) ** -2  # c3 < 1
        assert abs(z[-1] ** 3 * (g.data[-1] - 1 / z[-1]) - c3) < 1e-4
    g = Gf(mesh=m, target_shape=())
    g << SemiCircular(1.0)
    # U = 0 Bethe: Im G(i w) = -2 (sqrt(w^2 + D^2) - w) (PHYSICS.md), -> -2/D as w -> 0
    w0 = np.pi / 50.0
    assert abs(g.data[m.n_iw].imag + 2 * (np.sqrt(w0**2 + 1) - w0)) < 1e-14


def test_matrix_arithmetic_and_target_slicing():
    m = MeshImFreq(beta=10, statistic="Fermion", n_iw=16)
    h = np.array([[0.5, 0.1], [0.1, -0.2]])
    g = Gf(mesh=m, target_shape=(2, 2))
    g << inverse(iOmega_n - h)
    z = m.values()
    ginv = (inverse(g)).data
    assert np.abs(ginv - (z[:, None, None] * np.eye(2) - h)).max() < 1e-13
    assert np.abs((g * inverse(g)).data - np.eye(2)).max() < 1e-13
    assert np.abs((2 * g - g - g).data).max() == 0
    assert np.abs((g + 1.0).data - (g.data + np.eye(2))).max() == 0
    assert np.abs((g * h).data - g.data @ h).max() < 1e-15
    assert np.abs((h * g).data - h @ g.data).max() < 1e-15
    g01 = g[0, 1]
    assert g01.target_shape == () and np.shares_memory(g01.data, g.data)
    g[1, 1] << 0.0
    assert np.all(g.data[:, 1, 1] == 0)
    with pytest.raises(IndexError, match="target rank 2"):
        g[0]


def test_operations_across_meshes_are_refused():
    a = GfImFreq(beta=10, n_points=8, indices=[0])
    b = GfImFreq(beta=20, n_points=8, indices=[0])
    c = GfImFreq(beta=10, n_points=9, indices=[0])
    for x, y in [(a, b), (a, c)]:
        with pytest.raises(MeshMismatchError, match="different meshes"):
            x + y
        with pytest.raises(MeshMismatchError, match="different meshes"):
            x << y
        with pytest.raises(MeshMismatchError, match="different meshes"):
            x << iOmega_n - y
    t = GfImTime(beta=20, n_points=11, indices=[0])
    with pytest.raises(MeshMismatchError, match="beta"):
        t << Fourier(a)
    t10 = GfImTime(beta=10, n_points=11, indices=[0])
    with pytest.raises(TypeError, match="MeshImFreq"):
        t10 << SemiCircular(1.0)
    with pytest.raises(ValueError, match="target shape"):
        GfImFreq(beta=10, n_points=8, indices=[0, 1]) << a


def test_blockgf_arithmetic_and_density():
    beta = 30.0
    m = MeshImFreq(beta=beta, statistic="Fermion", n_iw=512)
    G = BlockGf(mesh=m, gf_struct=[("up", 1), ("down", 1)])
    eps = {"up": -0.4, "down": 0.7}
    for name, g in G:
        g << inverse(iOmega_n - eps[name])
    fermi = {k: 1 / (np.exp(beta * e) + 1) for k, e in eps.items()}
    dens = G.density()
    for k in eps:
        assert abs(dens[k][0, 0] - fermi[k]) < 1e-10
    assert abs(G.total_density() - sum(fermi.values())) < 1e-10
    H = 2 * G + G
    assert np.abs(H["up"].data - 3 * G["up"].data).max() < 1e-15
    G2 = BlockGf(mesh=m, gf_struct=[("a", 1), ("b", 1)])
    with pytest.raises(GfStructError, match="different blocks"):
        G + G2
