# SPDX-License-Identifier: Apache-2.0
"""HDFArchive: TRIQS reference archives, exact layout, round trips, legacy layouts, bad input.

The reference archives in ``../shared/triqs-archives`` were written by TRIQS 3.2.1
(see their README.md).  Tolerances are those of the analytic formula each object
follows; where TRIQS's own rounding dominates, the measured error is quoted.
"""

import io
from pathlib import Path

import h5py
import numpy as np
import pytest
from numpy.polynomial import legendre as npleg
from triqs_mlsolver.errors import ArchiveFormatError, ArchiveKeyError
from triqs_mlsolver.gf import (
    BlockGf,
    Gf,
    HDFArchive,
    MeshImFreq,
    MeshImTime,
    MeshLegendre,
)
from triqs_mlsolver.gf._h5 import HDFArchiveGroup, register_class

ARCHIVES = Path(__file__).resolve().parents[2].parent / "shared" / "triqs-archives"
EPS = np.finfo(float).eps


@pytest.fixture
def ref_dir():
    if not ARCHIVES.is_dir():
        pytest.skip(f"TRIQS reference archives not found at {ARCHIVES} (../shared beside "
                    "the clone)")
    return ARCHIVES


def semicircle(iw, D=1.0):
    """TRIQS SemiCircular(D) = 2 (z - i s sqrt(w^2 + D^2)) / D^2 = 2 / (z + i s sqrt(...))."""
    w = iw.imag
    return 2.0 / (iw + 1j * np.sign(w) * np.sqrt(w**2 + D**2))


def matsubara(beta, n_iw, statistic="Fermion"):
    if statistic == "Fermion":
        n = np.arange(-n_iw, n_iw)
        return 1j * np.pi * (2 * n + 1) / beta
    n = np.arange(-(n_iw - 1), n_iw)
    return 1j * np.pi * 2 * n / beta


def atomic_g(iw, U, mu, beta):
    """Hubbard atom, one orbital per spin: G = (1-n)/(iw+mu) + n/(iw+mu-U), n = <n_(-sigma)>."""
    z = 1 + 2 * np.exp(beta * mu) + np.exp(-beta * (U - 2 * mu))
    n = (np.exp(beta * mu) + np.exp(-beta * (U - 2 * mu))) / z
    return (1 - n) / (iw + mu) + n / (iw + mu - U)


# ---------------------------------------------------------------------------
# 1. every object of every reference archive is read, with the README's values
# ---------------------------------------------------------------------------
def _walk_values(value, path, out):
    out.append((path, value))
    if isinstance(value, dict):
        for k, v in value.items():
            _walk_values(v, f"{path}/{k}", out)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _walk_values(v, f"{path}/{i}", out)


@pytest.mark.parametrize(
    "name",
    [
        "python_objects.h5", "gf_imfreq_blockgf.h5", "gf_imtime_legendre.h5",
        "hubbardI_atomic.h5", "cthyb_bethe_iteration.h5", "transforms.h5",
    ],
)
def test_every_object_is_rebuilt(ref_dir, name):
    """No group of a TRIQS archive comes back as a raw group: every Format is understood."""
    found = []
    with HDFArchive(ref_dir / name, "r") as ar:
        for k, v in ar.items():
            _walk_values(v, k, found)
    assert found
    raw = [p for p, v in found if isinstance(v, HDFArchiveGroup)]
    assert raw == []
    for _, v in found:
        if isinstance(v, Gf):
            assert np.all(np.isfinite(v.data)) and v.data.shape[0] == len(v.mesh)


def test_read_python_objects(ref_dir):
    with HDFArchive(ref_dir / "python_objects.h5", "r") as ar:
        got = {k: ar[k] for k in ar}
    expected = {
        "an_int": 7, "a_float": 2.5, "a_bool": True, "a_str": "Bethe lattice",
        "a_list": [1, 2.0, "three"], "a_tuple": (4, 5),
        "a_dict": {"U": 2.0, "beta": 10.0, "blocks": ["up", "down"]},
        "gf_struct": [("up", 1), ("down", 1)],
    }
    for k, v in expected.items():
        assert got[k] == v and type(got[k]) is type(v), k
    assert [type(x) for x in got["a_list"]] == [int, float, str]
    assert [type(x) for x in got["a_tuple"]] == [int, int]
    np.testing.assert_array_equal(got["real_array"], np.arange(6.0).reshape(2, 3))
    assert got["real_array"].dtype == np.float64
    np.testing.assert_array_equal(got["complex_array"], np.array([1 + 2j, 3 - 4j]))
    assert got["complex_array"].dtype == np.complex128
    np.testing.assert_array_equal(got["int_array"], np.arange(5))
    assert got["int_array"].dtype == np.int64


def test_read_gf_imfreq_blockgf(ref_dir):
    with HDFArchive(ref_dir / "gf_imfreq_blockgf.h5", "r") as ar:
        G, g2 = ar["G_iw"], ar["g_2x2_iw"]
    mesh = MeshImFreq(beta=10, statistic="Fermion", n_iw=16)
    iw = matsubara(10.0, 16)
    assert isinstance(G, BlockGf) and list(G.indices) == ["up", "down"]
    # semicircle near w_max ~ 10: TRIQS's rounding is a few eps (measured 8e-16)
    for _, g in G:
        assert g.mesh == mesh and g.data.shape == (32, 1, 1)
        np.testing.assert_allclose(g.data[:, 0, 0], semicircle(iw), rtol=0, atol=1e-14)
    assert isinstance(g2, Gf) and g2.mesh == mesh and g2.data.shape == (32, 2, 2)
    np.testing.assert_allclose(g2.data[:, 0, 0], semicircle(iw), rtol=0, atol=1e-14)
    np.testing.assert_allclose(g2.data[:, 1, 1], 1 / (iw - 0.3), rtol=0, atol=1e-14)
    # SemiCircular(D) = 2 (z - i s sqrt(w^2 + D^2)) / D^2 = 2 / (z + i s sqrt(w^2 + D^2))
    for i, j in [(0, 1), (1, 0)]:
        np.testing.assert_allclose(g2.data[:, i, j], 0.1 * semicircle(iw, 2.0), rtol=0, atol=1e-14)


def test_read_gf_imtime_legendre(ref_dir):
    with HDFArchive(ref_dir / "gf_imtime_legendre.h5", "r") as ar:
        G_tau, G_l, G_blk = ar["G_tau"], ar["G_l"], ar["G_tau_block"]
    assert G_tau.mesh == MeshImTime(beta=10, statistic="Fermion", n_tau=33)
    assert G_l.mesh == MeshLegendre(beta=10, statistic="Fermion", max_n=12)
    assert G_tau.data.shape == (33, 1, 1) and G_l.data.shape == (12, 1, 1)
    assert list(G_blk.indices) == ["up", "down"]
    for _, g in G_blk:  # README: copies of G_tau
        assert g.mesh == G_tau.mesh
        np.testing.assert_array_equal(g.data, G_tau.data)
    # a fermionic G(tau) is real and negative on [0, beta]
    assert np.all(G_tau.data.real < 0)


def test_read_hubbardI_atomic(ref_dir):
    U, beta, mu = 2.0, 10.0, 1.0
    with HDFArchive(ref_dir / "hubbardI_atomic.h5", "r") as ar:
        d = {k: ar[k] for k in ar}
    assert d["params"] == {"U": 2.0, "beta": 10.0}
    iw = matsubara(beta, 64)
    for _, g in d["G_iw"]:
        assert g.mesh == MeshImFreq(beta=10, statistic="Fermion", n_iw=64)
        # exact: 1/2 (1/(iw+U/2) + 1/(iw-U/2)); TRIQS's atomic diagonalisation: 8.5e-14 measured
        np.testing.assert_allclose(
            g.data[:, 0, 0], 0.5 / (iw + U / 2) + 0.5 / (iw - U / 2), rtol=0, atol=1e-12
        )
    for _, g in d["G0_iw"]:
        np.testing.assert_allclose(g.data[:, 0, 0], 1 / (iw + mu), rtol=0, atol=1e-14)
    for _, s in d["Sigma_iw"]:  # Sigma = U/2 + U^2/(4 iw); measured 1.2e-12
        np.testing.assert_allclose(s.data[:, 0, 0], U / 2 + U**2 / 4 / iw, rtol=0, atol=1e-11)
    tau = np.linspace(0, beta, 257)
    g_tau = -0.5 * (np.exp(tau - beta) + np.exp(-tau)) / (1 + np.exp(-beta))
    x, w = npleg.leggauss(100)
    t = beta * (x + 1) / 2
    g_t = -0.5 * (np.exp(t - beta) + np.exp(-t)) / (1 + np.exp(-beta))
    ls = np.arange(20)
    g_l = np.sqrt(2 * ls + 1) * (npleg.legvander(x, 19) * (w * beta / 2 * g_t)[:, None]).sum(0)
    for _, g in d["G_tau"]:  # measured 2e-14
        assert g.mesh == MeshImTime(beta=10, statistic="Fermion", n_tau=257)
        np.testing.assert_allclose(g.data[:, 0, 0], g_tau, rtol=0, atol=1e-13)
    for _, g in d["G_l"]:  # measured 1.7e-13
        assert g.mesh == MeshLegendre(beta=10, statistic="Fermion", max_n=20)
        np.testing.assert_allclose(g.data[:, 0, 0], g_l, rtol=0, atol=1e-12)


def test_read_cthyb_bethe_iteration(ref_dir):
    with HDFArchive(ref_dir / "cthyb_bethe_iteration.h5", "r") as ar:
        d = {k: ar[k] for k in ar}
    assert d["params"] == {"U": 2.0, "beta": 10.0, "half_bandwidth": 1.0, "n_cycles": 20000}
    assert type(d["params"]["n_cycles"]) is int and isinstance(d["average_sign"], float)
    meshes = {
        "G0_iw": MeshImFreq(beta=10, statistic="Fermion", n_iw=64),
        "G_iw": MeshImFreq(beta=10, statistic="Fermion", n_iw=64),
        "Sigma_iw": MeshImFreq(beta=10, statistic="Fermion", n_iw=64),
        "G_tau": MeshImTime(beta=10, statistic="Fermion", n_tau=257),
        "Delta_tau": MeshImTime(beta=10, statistic="Fermion", n_tau=257),
        "G_l": MeshLegendre(beta=10, statistic="Fermion", max_n=20),
    }
    for key, mesh in meshes.items():
        assert list(d[key].indices) == ["up", "down"]
        for _, g in d[key]:
            assert g.mesh == mesh and g.data.shape == (len(mesh), 1, 1)
    # Weiss field of the Bethe lattice at half filling: G0^-1 = iw + U/2 - (D/2)^2 G_sc(iw)
    iw = matsubara(10.0, 64)
    for _, g in d["G0_iw"]:
        np.testing.assert_allclose(
            g.data[:, 0, 0], 1 / (iw + 1.0 - 0.25 * semicircle(iw)), rtol=0, atol=1e-14
        )
    for _, g in d["G_tau"]:  # normalisation G(0+) + G(beta-) = -1 holds for the MC estimate
        assert abs(g.data[0, 0, 0] + g.data[-1, 0, 0] + 1) < 1e-12


def test_read_transforms(ref_dir):
    with HDFArchive(ref_dir / "transforms.h5", "r") as ar:
        d = {k: ar[k] for k in ar}
    for beta in (1, 10, 100):
        r = d[f"beta_{beta}"]
        mesh_iw = MeshImFreq(beta=beta, statistic="Fermion", n_iw=1025)
        for k in ("semicircle_iw", "semicircle_iw_from_l", "hybridised_iw", "flat_iw"):
            assert r[k].mesh == mesh_iw
        for k in ("semicircle_tau", "hybridised_tau"):
            assert r[k].mesh == MeshImTime(beta=beta, statistic="Fermion", n_tau=4101)
        assert r["semicircle_l"].mesh == MeshLegendre(beta=beta, statistic="Fermion", max_n=50)
        iw = matsubara(float(beta), 1025)
        sc = semicircle(iw)
        # TRIQS evaluates 2 (z - i s sqrt(w^2+1)) with a cancellation: error ~ eps |w_max|
        # (measured 1.4e-12 at beta = 1, where |w_max| = 6437)
        tol = 4 * EPS * abs(iw[-1])
        np.testing.assert_allclose(r["semicircle_iw"].data[:, 0, 0], sc, rtol=0, atol=tol)
        np.testing.assert_allclose(  # Flat(1) = log((iw + 1)/(iw - 1)) / 2
            r["flat_iw"].data[:, 0, 0], 0.5 * np.log((iw + 1) / (iw - 1)), rtol=0, atol=1e-14
        )
        np.testing.assert_allclose(
            r["hybridised_iw"].data[:, 0, 0], 1 / (iw + 0.3 - 0.25 * sc), rtol=0, atol=1e-14
        )
    for key, U, mu in [("hubbardI_half_filled", 2.0, 1.0), ("hubbardI_shifted", 3.0, 0.7)]:
        r = d[key]
        assert (r["U"], r["mu"], r["beta"]) == (U, mu, 10.0)
        iw = matsubara(10.0, 200)
        for _, g in r["G_iw"]:  # measured 2.7e-13
            np.testing.assert_allclose(
                g.data[:, 0, 0], atomic_g(iw, U, mu, 10.0), rtol=0, atol=1e-12
            )
        for _, g in r["G0_iw"]:
            np.testing.assert_allclose(g.data[:, 0, 0], 1 / (iw + mu), rtol=0, atol=1e-14)
        for _, g in r["G_tau"]:
            assert g.mesh == MeshImTime(beta=10, statistic="Fermion", n_tau=801)
        for _, g in r["G_l"]:
            assert g.mesh == MeshLegendre(beta=10, statistic="Fermion", max_n=30)


# ---------------------------------------------------------------------------
# 2. golden layout: what we write is what TRIQS wrote
# ---------------------------------------------------------------------------
def _type_desc(tid):
    """Everything that identifies an HDF5 datatype."""
    cls = type(tid).__name__
    if isinstance(tid, h5py.h5t.TypeStringID):
        return (cls, tid.is_variable_str(), tid.get_cset(), tid.get_strpad(),
                None if tid.is_variable_str() else tid.get_size())
    if isinstance(tid, h5py.h5t.TypeEnumID):
        base = tid.get_super()
        members = [(tid.get_member_name(i), tid.get_member_value(i))
                   for i in range(tid.get_nmembers())]
        return (cls, base.get_size(), base.get_sign(), base.get_order(), members)
    if isinstance(tid, h5py.h5t.TypeIntegerID):
        return (cls, tid.get_size(), tid.get_sign(), tid.get_order())
    if isinstance(tid, h5py.h5t.TypeFloatID):
        return (cls, tid.get_size(), tid.get_order(), tid.get_fields())
    return (cls, tid.get_size())


def _attr_desc(obj):
    out = {}
    for name in obj.attrs:
        aid = h5py.h5a.open(obj.id, name.encode())
        value = obj.attrs[name]
        out[name] = (_type_desc(aid.get_type()), aid.get_space().get_simple_extent_type(),
                     aid.shape, value.decode() if isinstance(value, bytes) else value)
    return out


def _layout(h5obj, with_values):
    """{relative path: description} of a group tree, values included if asked."""
    tree = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Group):
            tree[name] = ("group", _attr_desc(obj))
            return
        p = obj.id.get_create_plist()
        filters = [p.get_filter(i)[:3] for i in range(p.get_nfilters())]
        desc = ("dataset", _type_desc(obj.id.get_type()), obj.dtype.str, obj.shape,
                obj.id.get_space().get_simple_extent_type(), p.get_layout(), obj.chunks,
                filters, p.get_fill_time(), p.get_alloc_time(), _attr_desc(obj))
        if with_values:
            v = obj[()]
            desc += (v.tobytes() if isinstance(v, np.ndarray) else v,)
        tree[name] = desc

    h5obj.visititems(visit)
    if isinstance(h5obj, h5py.Group):
        tree["."] = ("group", _attr_desc(h5obj))
    return tree


def _assert_same_layout(ours, ref, with_values):
    a, b = _layout(ours, with_values), _layout(ref, with_values)
    assert sorted(a) == sorted(b)
    for k in b:
        assert a[k] == b[k], f"{ours.name}/{k}:\n ours {a[k]}\n TRIQS {b[k]}"


def test_golden_blockgf_imfreq(ref_dir, tmp_path):
    mesh = MeshImFreq(beta=10, statistic="Fermion", n_iw=16)
    data = semicircle(mesh.values())[:, None, None]
    G = BlockGf(name_list=["up", "down"],
                block_list=[Gf(mesh=mesh, data=data), Gf(mesh=mesh, data=data)],
                make_copies=False)
    with HDFArchive(tmp_path / "ours.h5", "w") as ar:
        ar["G_iw"] = G
    with h5py.File(tmp_path / "ours.h5", "r") as ours, \
            h5py.File(ref_dir / "gf_imfreq_blockgf.h5", "r") as ref:
        # identical structure, types, attributes; identical mesh values
        _assert_same_layout(ours["G_iw"], ref["G_iw"], with_values=False)
        for b in ("up", "down"):
            _assert_same_layout(ours[f"G_iw/{b}/mesh"], ref[f"G_iw/{b}/mesh"], True)
            np.testing.assert_allclose(
                ours[f"G_iw/{b}/data"][()], ref[f"G_iw/{b}/data"][()], rtol=0, atol=1e-14
            )
        assert [s.decode() for s in (ours["G_iw/block_names/0"][()],
                                     ours["G_iw/block_names/1"][()])] == ["up", "down"]
        assert list(ours.keys()) == ["G_iw"] and dict(ours.attrs) == {}


def test_golden_imtime_legendre(ref_dir, tmp_path):
    with h5py.File(ref_dir / "gf_imtime_legendre.h5", "r") as ref:
        raw_tau = ref["G_tau/data"][()]
        raw_l = ref["G_l/data"][()]
    g_tau = Gf(mesh=MeshImTime(beta=10, statistic="Fermion", n_tau=33),
               data=raw_tau[..., 0] + 1j * raw_tau[..., 1])
    g_l = Gf(mesh=MeshLegendre(beta=10, statistic="Fermion", max_n=12),
             data=raw_l[..., 0] + 1j * raw_l[..., 1])
    with HDFArchive(tmp_path / "ours.h5", "w") as ar:
        ar["G_tau"] = g_tau
        ar["G_l"] = g_l
        ar["G_tau_block"] = BlockGf(name_list=["up", "down"], block_list=[g_tau, g_tau])
    with h5py.File(tmp_path / "ours.h5", "r") as ours, \
            h5py.File(ref_dir / "gf_imtime_legendre.h5", "r") as ref:
        _assert_same_layout(ours, ref, with_values=True)  # bit for bit, whole file


def test_golden_python_objects(ref_dir, tmp_path):
    with HDFArchive(tmp_path / "ours.h5", "w") as ar:
        ar["an_int"] = 7
        ar["a_float"] = 2.5
        ar["a_bool"] = True
        ar["a_str"] = "Bethe lattice"
        ar["a_list"] = [1, 2.0, "three"]
        ar["a_tuple"] = (4, 5)
        ar["a_dict"] = {"U": 2.0, "beta": 10.0, "blocks": ["up", "down"]}
        ar["real_array"] = np.arange(6).reshape(2, 3).astype(float)
        ar["complex_array"] = np.array([1 + 2j, 3 - 4j])
        ar["int_array"] = np.arange(5)
        ar["gf_struct"] = [("up", 1), ("down", 1)]
    with h5py.File(tmp_path / "ours.h5", "r") as ours, \
            h5py.File(ref_dir / "python_objects.h5", "r") as ref:
        _assert_same_layout(ours, ref, with_values=True)


# ---------------------------------------------------------------------------
# 3. round trips
# ---------------------------------------------------------------------------
def _mesh_gf(mesh, shape=(2, 2), seed=0):
    rng = np.random.default_rng(seed)
    data = rng.normal(size=(len(mesh), *shape)) + 1j * rng.normal(size=(len(mesh), *shape))
    return Gf(mesh=mesh, data=data)


def _same(a, b):
    if isinstance(a, np.ndarray):
        return (isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape
                and np.array_equal(a, b))
    if isinstance(a, Gf):
        return isinstance(b, Gf) and a.mesh == b.mesh and _same(a.data, b.data)
    if isinstance(a, BlockGf):
        return (isinstance(b, BlockGf) and list(a.indices) == list(b.indices)
                and all(_same(g, b[n]) for n, g in a))
    if isinstance(a, dict):
        return (type(b) is dict and sorted(a) == sorted(b)
                and all(_same(a[k], b[k]) for k in a))
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, np.generic):
        return type(a) is type(b) and a == b
    return type(a) is type(b) and a == b


ROUND_TRIP = {
    "int": 7, "negative_int": -(2**63), "int64_max": 2**63 - 1, "float": -0.125,
    "float_inf": float("inf"), "true": True, "false": False, "str": "β = 10 ✓", "empty_str": "",
    "complex": 1.5 - 2.25j, "list": [1, 2.0, "three", [4, (5, 6)]], "empty_list": [],
    "tuple": (4, "x", 6.5), "empty_tuple": (), "dict": {"a": 1, "b": {"c": [1.0], "d": {}}},
    "float_array": np.linspace(0, 1, 7).reshape(7, 1), "complex_array": np.array([[1j, 2], [3, 4]]),
    "int_array": np.arange(-3, 3, dtype=np.int64), "int32_array": np.arange(4, dtype=np.int32),
    "uint8_array": np.arange(4, dtype=np.uint8), "bool_array": np.array([True, False, True]),
    "float32_array": np.arange(3, dtype=np.float32), "complex64_array": np.ones(3, np.complex64),
    "empty_array": np.zeros((0, 3)), "array_3d": np.arange(24.0).reshape(2, 3, 4),
    "np_float64": np.float64(0.5), "np_int64": np.int64(-3), "np_int32": np.int32(7),
    "np_uint16": np.uint16(9), "np_float32": np.float32(0.25), "np_bool": np.bool_(False),
    "np_complex64": np.complex64(1 - 1j), "np_complex128": np.complex128(2 + 0.5j),
    "gf_imfreq": _mesh_gf(MeshImFreq(beta=5, statistic="Fermion", n_iw=3)),
    "gf_imfreq_boson": _mesh_gf(MeshImFreq(beta=5, statistic="Boson", n_iw=3)),
    "gf_imtime": _mesh_gf(MeshImTime(beta=5, statistic="Fermion", n_tau=11), shape=(1, 1)),
    "gf_legendre": _mesh_gf(MeshLegendre(beta=5, statistic="Boson", max_n=4), shape=(3, 3)),
    "gf_scalar": _mesh_gf(MeshImFreq(beta=2, statistic="Fermion", n_iw=2), shape=()),
    "mesh_imfreq": MeshImFreq(beta=3, statistic="Boson", n_iw=5),
    "mesh_imtime": MeshImTime(beta=3, statistic="Fermion", n_tau=5),
    "mesh_legendre": MeshLegendre(beta=3, statistic="Fermion", max_n=5),
}
ROUND_TRIP["blockgf"] = BlockGf(name_list=["up", "dn"], block_list=[
    _mesh_gf(MeshImFreq(beta=5, statistic="Fermion", n_iw=3), seed=1),
    _mesh_gf(MeshImFreq(beta=5, statistic="Fermion", n_iw=3), seed=2)])
ROUND_TRIP["dict_of_gf"] = {"G": ROUND_TRIP["gf_imtime"], "params": {"U": 2.0}}


@pytest.mark.parametrize("key", sorted(ROUND_TRIP))
def test_round_trip(tmp_path, key):
    value = ROUND_TRIP[key]
    with HDFArchive(tmp_path / "rt.h5", "w") as ar:
        ar[key] = value
    with HDFArchive(tmp_path / "rt.h5", "r") as ar:
        back = ar[key]
    if isinstance(value, (MeshImFreq, MeshImTime, MeshLegendre)):
        assert back == value and type(back) is type(value)
    elif isinstance(value, (np.float64, np.int64, np.bool_, np.complex128)):
        # written with their dtype; read back as Python float/int/bool/complex, as TRIQS does
        python_type = {np.float64: float, np.int64: int, np.bool_: bool,
                       np.complex128: complex}[type(value)]
        assert type(back) is python_type and back == value
    else:
        assert _same(value, back), (value, back)


def test_round_trip_conversions(tmp_path):
    """Stored as in TRIQS: dict keys become str, 0-d arrays read back as scalars."""
    with HDFArchive(tmp_path / "c.h5", "w") as ar:
        ar["d"] = {1: "a", (2, 3): "b"}
        ar["zero_d"] = np.array(2.5)
        ar["zero_d_complex"] = np.array(1 + 1j)
        ar["transposed"] = np.arange(6.0).reshape(2, 3).T
        ar["big_endian"] = np.arange(3, dtype=">f8")
    with HDFArchive(tmp_path / "c.h5", "r") as ar:
        assert ar["d"] == {"1": "a", "(2, 3)": "b"}
        assert ar["zero_d"] == 2.5 and type(ar["zero_d"]) is float
        assert ar["zero_d_complex"] == 1 + 1j and type(ar["zero_d_complex"]) is complex
        np.testing.assert_array_equal(ar["transposed"], np.arange(6.0).reshape(2, 3).T)
        back = ar["big_endian"]
        assert back.dtype == np.float64 and np.array_equal(back, [0.0, 1.0, 2.0])


def test_archive_dict_protocol(tmp_path):
    path = tmp_path / "d.h5"
    with HDFArchive(path, "w") as ar:
        ar["x"] = 1
        ar["x"] = {"overwritten": True}  # TRIQS deletes and rewrites
        g = ar.create_group("grp")
        assert isinstance(g, HDFArchiveGroup) and g.name == "/grp"
        g["y"] = 2.0
        sub = g.create_group("sub")
        sub["z"] = "deep"
        ar.update({"u": 1, "v": 2})
        del ar["v"]
        ar["copy"] = ar["grp"]  # a group without Format is copied recursively
    with HDFArchive(path, "a") as ar:
        assert ar.keys() == ["copy", "grp", "u", "x"] and list(ar) == ar.keys()
        assert len(ar) == 4 and "grp" in ar and "v" not in ar and 3 not in ar
        assert ar["x"] == {"overwritten": True}
        assert isinstance(ar["grp"], HDFArchiveGroup)
        assert ar["grp/sub/z"] == "deep" and ar["grp"]["sub"]["z"] == "deep"
        assert ar["copy/sub/z"] == "deep" and ar["copy"]["y"] == 2.0
        assert ar.is_group("grp") and not ar.is_data("grp")
        assert ar.is_data("u") and not ar.is_group("u")
        assert not ar.is_group("missing") and not ar.is_data("missing")
        assert dict(ar["grp"].items())["y"] == 2.0
        assert ar.get_raw("x").keys() == ["overwritten"]
        assert "grp : subgroup" in repr(ar) and "u : data" in repr(ar)


def test_failed_write_keeps_old_value(tmp_path):
    with HDFArchive(tmp_path / "f.h5", "w") as ar:
        ar["params"] = {"U": 2.0}
        with pytest.raises(TypeError, match="NoneType"):
            ar["params"] = {"U": 3.0, "seed": None}
        assert ar["params"] == {"U": 2.0}
        assert ar.keys() == ["params"]  # no half-written leftovers


def test_file_is_closed(tmp_path):
    path = tmp_path / "c.h5"
    with HDFArchive(path, "w") as ar:
        ar["a"] = np.ones(3)
        g = ar.create_group("g")
    assert ar.closed
    with h5py.File(path, "w"):  # HDF5 refuses to truncate a file that is still open
        pass
    with pytest.raises(ValueError, match="closed"):
        ar["a"]
    with pytest.raises(ValueError, match="closed"):
        g.keys()
    with pytest.raises(RuntimeError):
        with HDFArchive(path, "w") as ar2:
            ar2["a"] = 1
            raise RuntimeError("boom")
    assert ar2.closed
    ar3 = HDFArchive(path, "r")
    del ar3  # garbage collection closes too
    with h5py.File(path, "w"):
        pass


class _Params:
    """A solver-like class using the TRIQS protocol."""

    _hdf5_format_ = "TestParams_v1"

    def __init__(self, U, beta, G=None):
        self.U, self.beta, self.G = U, beta, G

    def __reduce_to_dict__(self):
        d = {"U": self.U, "beta": self.beta}
        if self.G is not None:
            d["G"] = self.G
        return d

    @classmethod
    def __factory_from_dict__(cls, name, d):
        return cls(d["U"], d["beta"], d.get("G"))


def test_register_class(tmp_path):
    register_class(_Params)
    register_class(_Params)  # registering the same class again is harmless
    with HDFArchive(tmp_path / "p.h5", "w") as ar:
        ar["p"] = _Params(2.0, 10.0, ROUND_TRIP["blockgf"])
    with h5py.File(tmp_path / "p.h5", "r") as f:
        assert f["p"].attrs["Format"] == "TestParams_v1"
    with HDFArchive(tmp_path / "p.h5", "r") as ar:
        p = ar["p"]
    assert isinstance(p, _Params) and (p.U, p.beta) == (2.0, 10.0)
    assert _same(p.G, ROUND_TRIP["blockgf"])


def test_register_class_read_fun(tmp_path):
    class Point:
        def __init__(self, x):
            self.x = x

        def __reduce_to_dict__(self):
            return {"x": self.x}

    def read_point(group, key):
        assert isinstance(group, HDFArchiveGroup)
        return Point(group.get_raw(key)["x"])

    register_class(Point, hdf5_format="TestPoint", read_fun=read_point)
    with HDFArchive(tmp_path / "q.h5", "w") as ar:
        ar["pt"] = Point(3)
        assert ar["pt"].x == 3


# ---------------------------------------------------------------------------
# legacy layouts (TRIQS 1.x / 2.x / 3.0), built by hand with h5py
# ---------------------------------------------------------------------------
def _fixed_str(group, name, s):
    """A fixed-length ASCII string dataset, as TRIQS h5 before 3.1 wrote them."""
    group.create_dataset(name, data=np.bytes_(s))


def _fixed_attr(obj, name, s):
    obj.attrs.create(name, np.bytes_(s))


def _complex_ds(group, name, z):
    z = np.asarray(z)
    ds = group.create_dataset(name, data=np.stack((z.real, z.imag), axis=-1))
    _fixed_attr(ds, "__complex__", "1")


def _legacy_gf(group, name, fmt, mesh_writer, data, extra=True, complex_data=True):
    g = group.create_group(name)
    _fixed_attr(g, "Format", fmt)
    if complex_data:
        _complex_ds(g, "data", data)
    else:
        g.create_dataset("data", data=data)
    mesh_writer(g.create_group("mesh"))
    if extra:  # entries TRIQS <= 3.1 wrote and TRIQS >= 3.2 ignores
        ind = g.create_group("indices")
        _fixed_attr(ind, "Format", "GfIndices")
        ind.create_dataset("left", data=np.array([b"0"]))
        sing = g.create_group("singularity")
        _fixed_attr(sing, "Format", "TailGf")
        sing.create_dataset("data", data=np.zeros((3, 1, 1, 2)))
        _fixed_str(g, "name", "G")
        g.create_group("symmetry")
    return g


def _domain(m, beta=10.0, stat="F", **more):
    d = m.create_group("domain")
    d.create_dataset("beta", data=beta)
    _fixed_str(d, "statistic", stat)
    for k, v in more.items():
        d.create_dataset(k, data=v)
    return d


def test_read_legacy_triqs2_imfreq(tmp_path):
    """TRIQS 2.x: Format 'GfImFreq', mesh with domain/, size, positive_freq_only; extra entries."""
    iw = matsubara(10.0, 4)

    def mesh(m):
        _fixed_attr(m, "Format", "MeshImFreq")
        _domain(m)
        m.create_dataset("size", data=np.int64(8))
        m.create_dataset("positive_freq_only", data=np.int32(0))

    with h5py.File(tmp_path / "l.h5", "w") as f:
        _legacy_gf(f, "G", "GfImFreq", mesh, semicircle(iw)[:, None, None])
        blk = f.create_group("B")  # TRIQS 1.x/2.x BlockGf: 'indices' is the repr of the names
        _fixed_attr(blk, "Format", "BlockGf")
        _fixed_str(blk, "indices", "['up', 'down']")
        _fixed_str(blk, "name", "G")
        _fixed_str(blk, "note", "")
        for b in ("up", "down"):
            _legacy_gf(blk, b, "GfImFreq", mesh, semicircle(iw)[:, None, None])
        _legacy_gf(f, "scalar", "GfImFreq_s", mesh, semicircle(iw), extra=False)
        for wrap, value in [("PythonListWrap", [1, 2]), ("PythonTupleWrap", (1, 2))]:
            w = f.create_group(wrap)
            _fixed_attr(w, "Format", wrap)
            for i, v in enumerate(value):
                w.create_dataset(str(i), data=v)
        w = f.create_group("PythonDictWrap")
        _fixed_attr(w, "Format", "PythonDictWrap")
        _fixed_str(w, "key", "value")
    with HDFArchive(tmp_path / "l.h5", "r") as ar:
        G, B, S = ar["G"], ar["B"], ar["scalar"]
        assert ar["PythonListWrap"] == [1, 2] and ar["PythonTupleWrap"] == (1, 2)
        assert ar["PythonDictWrap"] == {"key": "value"}
    assert G.mesh == MeshImFreq(beta=10, statistic="Fermion", n_iw=4)
    np.testing.assert_array_equal(G.data[:, 0, 0], semicircle(iw))
    assert list(B.indices) == ["up", "down"] and _same(B["up"], G)
    assert S.data.shape == (8,) and np.array_equal(S.data, semicircle(iw))


@pytest.mark.parametrize("statistic", ["Fermion", "Boson"])
@pytest.mark.parametrize("flag", ["positive_freq_only", "start_at_0", "kind"])
def test_read_legacy_positive_only_imfreq(tmp_path, statistic, flag):
    """Positive frequencies only (TRIQS <= 2.0 compression): unfolded with G(-iw) = G(iw)^*."""
    n_iw = 4
    iw_full = matsubara(10.0, n_iw, statistic)
    g_full = 1 / (iw_full - 0.3 - 0.2j * np.sign(iw_full.imag))  # real in tau
    g_full = np.stack([g_full, 2 * g_full], axis=-1)[:, None, :]  # target (1, 2)
    positive = g_full[len(g_full) - n_iw:]  # n >= 0

    def mesh(m):  # 1.x meshes carried no Format (it comes from 'GfImFreq'); 2.0 ones did
        if flag == "positive_freq_only":
            _fixed_attr(m, "Format", "MeshImFreq")
        _domain(m, stat=statistic[0])
        m.create_dataset("size", data=np.int64(n_iw))
        if flag == "kind":
            m.create_dataset("kind", data=np.int32(2))
            m.create_dataset("min", data=np.pi / 10)
        else:
            m.create_dataset(flag, data=np.int32(1))

    with h5py.File(tmp_path / "p.h5", "w") as f:
        _legacy_gf(f, "G", "GfImFreq", mesh, positive)
    with HDFArchive(tmp_path / "p.h5", "r") as ar:
        G = ar["G"]
        if flag == "positive_freq_only":  # alone, the half mesh has no light equivalent
            with pytest.raises(ArchiveFormatError, match="positive frequencies only"):
                ar["G/mesh"]
    assert G.mesh == MeshImFreq(beta=10, statistic=statistic, n_iw=n_iw)
    np.testing.assert_allclose(G.data, g_full, rtol=0, atol=1e-15)


def test_read_legacy_imtime_and_legendre(tmp_path):
    tau = np.linspace(0, 10, 5)
    g_tau = -np.exp(-0.3 * tau)[:, None, None] / (1 + np.exp(-3.0))

    def imtime(m, kind=None):
        _fixed_attr(m, "Format", "MeshImTime")
        _domain(m)
        m.create_dataset("min", data=0.0)
        m.create_dataset("max", data=10.0)
        m.create_dataset("size", data=np.int64(5))
        if kind is not None:
            m.create_dataset("kind", data=np.int32(kind))

    def legendre_n_max(m):  # TRIQS 2.x/3.0 domain with n_max, mesh Format absent
        _domain(m, n_max=np.uint64(6))

    def legendre_max_n(m):
        _fixed_attr(m, "Format", "MeshLegendre")
        _domain(m, stat="B", max_n=np.int64(6))

    def legendre_size(m):
        _fixed_attr(m, "Format", "MeshLegendre")
        _domain(m)
        m.create_dataset("size", data=np.int64(6))

    g_l = np.arange(6.0)[:, None, None]
    with h5py.File(tmp_path / "t.h5", "w") as f:
        _legacy_gf(f, "tau_real", "GfImTime", imtime, g_tau, complex_data=False)
        _legacy_gf(f, "tau_full_bins", "GfImTimeTv3", lambda m: imtime(m, 1), g_tau[..., None])
        _legacy_gf(f, "tau_half_bins", "GfImTime", lambda m: imtime(m, 0), g_tau)
        _legacy_gf(f, "l_n_max", "GfLegendre", legendre_n_max, g_l, complex_data=False)
        _legacy_gf(f, "l_max_n", "GfLegendre", legendre_max_n, g_l)
        _legacy_gf(f, "l_size", "Gf", legendre_size, g_l)
    with HDFArchive(tmp_path / "t.h5", "r") as ar:
        g = ar["tau_real"]
        assert g.mesh == MeshImTime(beta=10, statistic="Fermion", n_tau=5)
        assert g.data.dtype == np.complex128 and np.array_equal(g.data, g_tau)
        assert ar["tau_full_bins"].data.shape == (5, 1, 1, 1)
        with pytest.raises(ArchiveFormatError, match="kind=0.*full_bins"):
            ar["tau_half_bins"]
        assert ar["l_n_max"].mesh == MeshLegendre(beta=10, statistic="Fermion", max_n=6)
        assert ar["l_max_n"].mesh == MeshLegendre(beta=10, statistic="Boson", max_n=6)
        assert ar["l_size"].mesh == MeshLegendre(beta=10, statistic="Fermion", max_n=6)
        np.testing.assert_array_equal(ar["l_n_max"].data, g_l)


def test_read_legacy_scalar_types(tmp_path):
    """Fixed-length strings, string attributes and h5's compound complex type."""
    with h5py.File(tmp_path / "s.h5", "w") as f:
        _fixed_str(f, "fixed", "Fermion")
        f.create_dataset("fixed_utf8", data=np.bytes_("β".encode()))
        cplx = np.zeros((), dtype=[("r", "f8"), ("i", "f8")])
        cplx["r"], cplx["i"] = 1.0, -2.0
        f.create_dataset("compound", data=cplx)
        f.create_dataset("strings", data=np.array([b"up", b"down"]))
        f.create_dataset("int8", data=np.int8(-3))
    with HDFArchive(tmp_path / "s.h5", "r") as ar:
        assert ar["fixed"] == "Fermion" and ar["fixed_utf8"] == "β"
        assert ar["compound"] == 1 - 2j
        assert list(ar["strings"]) == ["up", "down"]
        assert ar["int8"] == -3 and ar["int8"].dtype == np.int8


# ---------------------------------------------------------------------------
# 4. bad input
# ---------------------------------------------------------------------------
def test_open_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such HDF5 file.*'w' or 'a'"):
        HDFArchive(tmp_path / "missing.h5", "r")
    text = tmp_path / "notes.txt"
    text.write_text("not hdf5")
    for flag in ("r", "a"):
        with pytest.raises(ArchiveFormatError, match="is not an HDF5 file"):
            HDFArchive(text, flag)
    with pytest.raises(ValueError, match="open_flag='x' is not understood"):
        HDFArchive(tmp_path / "a.h5", "x")
    with pytest.raises(TypeError, match="needs a file name"):
        HDFArchive(3)
    with pytest.raises(FileNotFoundError, match="directory .* does not exist"):
        HDFArchive(tmp_path / "no_such_dir" / "a.h5", "w")
    with pytest.raises(IsADirectoryError, match="is a directory"):
        HDFArchive(tmp_path, "a")
    with h5py.File(tmp_path / "new.h5", "w") as f:
        f.attrs["HDFArchive_Version"] = 2
    with pytest.raises(ArchiveFormatError, match="HDFArchive_Version"):
        HDFArchive(tmp_path / "new.h5", "r")
    HDFArchive(text, "w").close()  # 'w' replaces a non-HDF5 file, as TRIQS does


def test_missing_key(tmp_path):
    with HDFArchive(tmp_path / "k.h5", "w") as ar:
        ar["G_iw"] = 1
        ar["Sigma_iw"] = 2
        with pytest.raises(ArchiveKeyError, match=r"no key 'G_w'.*\['G_iw', 'Sigma_iw'\].*'G_iw'"):
            ar["G_w"]
        with pytest.raises(KeyError):  # ArchiveKeyError is a KeyError, as in TRIQS
            ar["nope"]
        with pytest.raises(ArchiveKeyError, match="no key 'x'"):
            del ar["x"]
        with pytest.raises(ArchiveKeyError, match="dataset, not a group"):
            ar["G_iw/deeper"]


def test_unknown_format(tmp_path):
    with h5py.File(tmp_path / "u.h5", "w") as f:
        g = f.create_group("solver")
        g.attrs["Format"] = "SomeoneElsesSolver"
        g.create_dataset("x", data=1.0)
    with HDFArchive(tmp_path / "u.h5", "r") as ar:
        with pytest.raises(ArchiveFormatError,
                           match="'/solver'.*'SomeoneElsesSolver'.*register_class"):
            ar["solver"]
        raw = ar.get_raw("solver")  # the documented way to look inside
        assert isinstance(raw, HDFArchiveGroup) and raw["x"] == 1.0


@pytest.mark.parametrize(
    "value, match",
    [
        (None, "NoneType.*omit the key"),
        (object(), "type object.*Supported: bool, int"),
        (b"raw", "bytes.*Decode bytes to str"),
        ({1, 2}, "type set"),
        (np.zeros(2, np.float16), "dtype float16.*astype\\(np.float64\\)"),
        (np.array(["a", "b"]), "dtype <U1.*list of str"),
        (np.array([None]), "dtype object"),
        (np.float16(1), "scalar of dtype float16"),
        ({"ok": 1, "bad": [1, None]}, "'/x/bad/1'"),
    ],
)
def test_unsupported_types(tmp_path, value, match):
    with HDFArchive(tmp_path / "t.h5", "w") as ar:
        with pytest.raises(TypeError, match=match):
            ar["x"] = value
        assert ar.keys() == []


def test_bad_keys_and_values(tmp_path):
    with HDFArchive(tmp_path / "b.h5", "w") as ar:
        with pytest.raises(ValueError, match="contain no '/'"):
            ar["a/b"] = 1
        with pytest.raises(ValueError, match="non-empty"):
            ar[""] = 1
        with pytest.raises(TypeError, match="keys are strings"):
            ar[3] = 1
        with pytest.raises(ValueError, match="both become the archive name '1'"):
            ar["d"] = {1: "a", "1": "b"}
        with pytest.raises(ValueError, match="contain no '/'"):
            ar["d"] = {"a/b": 1}
        with pytest.raises(OverflowError, match="int64"):
            ar["big"] = 2**64

        class ReducesToList(_Params):
            _hdf5_format_ = "TestReducesToList"

            def __reduce_to_dict__(self):
                return [self.U]

        register_class(ReducesToList)
        with pytest.raises(TypeError, match="returned a list; it must return a dict"):
            ar["r"] = ReducesToList(1.0, 2.0)

        class Unregistered:
            def __reduce_to_dict__(self):
                return {}

        with pytest.raises(TypeError, match="'Unregistered' is not registered.*register_class"):
            ar["u"] = Unregistered()
        assert ar.keys() == []


def test_register_class_errors():
    with pytest.raises(TypeError, match="needs a class"):
        register_class(_Params(1, 2))

    class NoFactory:
        def __reduce_to_dict__(self):
            return {}

    with pytest.raises(TypeError, match="__factory_from_dict__.*read_fun"):
        register_class(NoFactory)

    class Impostor(_Params):
        pass

    with pytest.raises(ValueError, match="'Gf' is already registered.*hdf5_format"):
        register_class(Impostor, hdf5_format="Gf")
    with pytest.raises(ValueError, match="non-empty string without '/'"):
        register_class(Impostor, hdf5_format="a/b")


def test_read_only(tmp_path):
    with HDFArchive(tmp_path / "r.h5", "w") as ar:
        ar["a"] = 1
    with HDFArchive(tmp_path / "r.h5", "r") as ar:
        for action in (lambda: ar.__setitem__("b", 2), lambda: ar.__delitem__("a"),
                       lambda: ar.create_group("g")):
            with pytest.raises(io.UnsupportedOperation, match="read-only.*'a'"):
                action()
        assert ar["a"] == 1


def test_corrupt_gf_groups(tmp_path):
    mesh = MeshImFreq(beta=10, statistic="Fermion", n_iw=2)
    with HDFArchive(tmp_path / "g.h5", "w") as ar:
        ar["ok"] = Gf(mesh=mesh, data=np.zeros((4, 1, 1)))
        ar["short"] = Gf(mesh=mesh, data=np.zeros((4, 1, 1)))
        ar["nodata"] = Gf(mesh=mesh, data=np.zeros((4, 1, 1)))
        ar["refreq"] = Gf(mesh=mesh, data=np.zeros((4, 1, 1)))
        ar["odd"] = Gf(mesh=mesh, data=np.zeros((4, 1, 1)))
        ar["blocks"] = BlockGf(name_list=["up"], block_list=[ar["ok"]])
        ar["bad_factory"] = _Params(1.0, 2.0)
    with h5py.File(tmp_path / "g.h5", "a") as f:
        del f["short/data"]
        f.create_dataset("short/data", data=np.zeros((3, 1, 1, 2)))
        f["short/data"].attrs["__complex__"] = "1"
        del f["nodata/data"]
        f["refreq/mesh"].attrs["Format"] = "MeshReTime"
        del f["odd/mesh/size"]
        f["odd/mesh"].create_dataset("size", data=np.int64(5))
        del f["blocks/up"]
        del f["bad_factory/beta"]
    register_class(_Params)
    with HDFArchive(tmp_path / "g.h5", "r") as ar:
        with pytest.raises(ArchiveFormatError, match="shape \\(3, 1, 1\\).*4 points"):
            ar["short"]
        with pytest.raises(ArchiveFormatError, match="lacks \\['data'\\]"):
            ar["nodata"]
        with pytest.raises(ArchiveFormatError, match="'MeshReTime'.*TRIQS_MLSOLVER_BACKEND"):
            ar["refreq"]
        with pytest.raises(ArchiveFormatError, match="size 5.*2 n_iw for fermions"):
            ar["odd"]
        with pytest.raises(ArchiveFormatError, match="missing \\['up'\\]"):
            ar["blocks"]
        with pytest.raises(ArchiveFormatError,
                           match="__factory_from_dict__ failed.*'/bad_factory'"):
            ar["bad_factory"]
