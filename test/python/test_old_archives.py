# SPDX-License-Identifier: Apache-2.0
"""TRIQS 1.x archives (``TRIQS_HDF5_data_scheme`` instead of ``Format``) are read into
Green's functions, or refused with a message; never returned as plain groups.

The archive is written here with h5py in the layout of the files TRIQS 1.x wrote, as
found in triqs_cthyb's ``doc/guide/aim_solution.h5`` (written by TRIQS 1.x; inspected
with h5py, not copied into this repository)::

    G_iw/                       @TRIQS_HDF5_data_scheme = b"BlockGf"  (fixed-length str)
      block_names               |S4 array [b"down", b"up"]
      down/, up/                @TRIQS_HDF5_data_scheme = b"GfImFreq"
        data                    float64 (1025, 1, 1, 2), @__complex__ = b"1"
        indices/left, right     |S1 arrays [b"0"]
        mesh/                   (no attribute)
          domain/beta           float64 scalar 50.0
          domain/statistic      |S2 b"F"
          positive_freq_only    int32 1        (only w_n >= 0 stored)
          size                  int64 1025
        singularity/            data (10, 1, 1, 2) @__complex__, mask (1, 1) int32,
                                omin int32 scalar
    G_tau/ ... @b"GfImTime":    data float64 (10001, 1, 1) (real, no __complex__);
                                mesh/domain/{beta, statistic}, mesh/min 0.0,
                                mesh/max 50.0 (= beta), mesh/size 10001
    G_l/ ... @b"GfLegendre":    data float64 (100, 1, 1); mesh/domain/{beta, statistic,
                                n_max (uint64 100)}; no singularity
"""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest
from triqs_mlsolver.cli.main import main
from triqs_mlsolver.errors import ArchiveFormatError
from triqs_mlsolver.gf import BlockGf, HDFArchive, MeshImFreq, MeshImTime, MeshLegendre
from triqs_mlsolver.gf.transforms import semicircle_g
from triqs_mlsolver.light.utility import h5diff

BETA, N_IW, N_TAU, N_L, EPS = 10.0, 16, 21, 8, 0.4
SCHEME = "TRIQS_HDF5_data_scheme"


def _scheme(obj, name):
    obj.attrs[SCHEME] = np.bytes_(name)  # fixed-length string, as TRIQS 1.x wrote it


def _complex(group, name, z):
    ds = group.create_dataset(name, data=np.stack((z.real, z.imag), axis=-1))
    ds.attrs["__complex__"] = np.bytes_("1")


def _gf_common(g, tail=True):
    ind = g.create_group("indices")
    for side in ("left", "right"):
        ind.create_dataset(side, data=np.array([b"0"]))
    if tail:
        sing = g.create_group("singularity")
        _complex(sing, "data", np.zeros((10, 1, 1)))
        sing.create_dataset("mask", data=np.full((1, 1), 8, dtype=np.int32))
        sing.create_dataset("omin", data=np.int32(-1))
    mesh = g.create_group("mesh")
    dom = mesh.create_group("domain")
    dom.create_dataset("beta", data=np.float64(BETA))
    dom.create_dataset("statistic", data=np.array(b"F", dtype="S2"))
    return mesh, dom


def positive_iw():
    return 1j * np.pi * (2 * np.arange(N_IW) + 1) / BETA


def atom_tau():
    tau = np.linspace(0, BETA, N_TAU)
    return -np.exp(-tau * EPS) / (1 + np.exp(-BETA * EPS))


def write_triqs1_archive(path):
    """A TRIQS 1.x archive: BlockGfs of GfImFreq (positive w_n only), GfImTime, GfLegendre."""
    g_iw = semicircle_g(positive_iw(), 1.0)
    with h5py.File(path, "w") as f:
        for key, kind in (("G_iw", "GfImFreq"), ("G_tau", "GfImTime"), ("G_l", "GfLegendre")):
            bg = f.create_group(key)
            _scheme(bg, "BlockGf")
            bg.create_dataset("block_names", data=np.array([b"down", b"up"]))
            for scale, block in ((1.0, "down"), (2.0, "up")):
                g = bg.create_group(block)
                _scheme(g, kind)
                if kind == "GfImFreq":
                    _complex(g, "data", scale * g_iw[:, None, None])
                    mesh, _ = _gf_common(g)
                    mesh.create_dataset("positive_freq_only", data=np.int32(1))
                    mesh.create_dataset("size", data=np.int64(N_IW))
                elif kind == "GfImTime":
                    g.create_dataset("data", data=scale * atom_tau()[:, None, None])
                    mesh, _ = _gf_common(g)
                    mesh.create_dataset("min", data=0.0)
                    mesh.create_dataset("max", data=BETA)
                    mesh.create_dataset("size", data=np.int64(N_TAU))
                else:
                    g.create_dataset("data", data=scale * np.arange(N_L, dtype=float)[:, None,
                                                                                      None])
                    _, dom = _gf_common(g, tail=False)
                    dom.create_dataset("n_max", data=np.uint64(N_L))
        lst = f.create_group("loops")
        _scheme(lst, "PythonListWrap")
        for i, v in enumerate([1, 2, 3]):
            lst.create_dataset(str(i), data=np.int64(v))
        dct = f.create_group("params")
        _scheme(dct, "PythonDictWrap")
        dct.create_dataset("U", data=2.0)
        dct.create_dataset("solver", data=np.bytes_("cthyb"))
    return path


@pytest.fixture
def old_archive(tmp_path):
    return write_triqs1_archive(tmp_path / "triqs1.h5")


def test_triqs1_archive_is_read_into_green_functions(old_archive):
    with HDFArchive(old_archive, "r") as ar:
        G_iw, G_tau, G_l = ar["G_iw"], ar["G_tau"], ar["G_l"]
        assert ar["loops"] == [1, 2, 3] and ar["params"] == {"U": 2.0, "solver": "cthyb"}
    for g in (G_iw, G_tau, G_l):
        assert isinstance(g, BlockGf) and g.block_names == ["down", "up"]
    assert G_iw.mesh == MeshImFreq(beta=BETA, statistic="Fermion", n_iw=N_IW)
    assert G_tau.mesh == MeshImTime(beta=BETA, statistic="Fermion", n_tau=N_TAU)
    assert G_l.mesh == MeshLegendre(beta=BETA, statistic="Fermion", max_n=N_L)
    # the positive frequencies are unfolded with G(-i w) = G(i w)^*: the full semicircle
    iw = MeshImFreq(beta=BETA, statistic="Fermion", n_iw=N_IW).values()
    np.testing.assert_array_equal(G_iw["down"].data[N_IW:, 0, 0], semicircle_g(iw[N_IW:], 1.0))
    np.testing.assert_allclose(G_iw["up"].data[:, 0, 0], 2 * semicircle_g(iw, 1.0), rtol=0,
                               atol=1e-15)
    np.testing.assert_array_equal(G_tau["up"].data[:, 0, 0], 2 * atom_tau())
    np.testing.assert_array_equal(G_l["down"].data[:, 0, 0], np.arange(N_L))


def test_triqs1_archive_passes_h5diff_and_round_trips(old_archive, tmp_path):
    h5diff(old_archive, old_archive)
    with HDFArchive(old_archive, "r") as ar:
        objects = {k: ar[k] for k in ar}
    with HDFArchive(tmp_path / "new.h5", "w") as ar:  # written in today's TRIQS scheme
        ar.update(objects)
    with h5py.File(tmp_path / "new.h5", "r") as f:
        assert f["G_iw"].attrs["Format"] == "BlockGf" and SCHEME not in f["G_iw"].attrs
    h5diff(old_archive, tmp_path / "new.h5")


def test_unknown_triqs1_schemes_are_refused_with_a_message(old_archive):
    with h5py.File(old_archive, "a") as f:
        g = f.create_group("G_w")
        _scheme(g, "GfReTime")  # real-time Green's functions: not in the light layer
        g.create_dataset("data", data=np.zeros((3, 1, 1, 2)))
    with HDFArchive(old_archive, "r") as ar:
        with pytest.raises(ArchiveFormatError,
                           match=r"written by TRIQS 1\.x \(TRIQS_HDF5_data_scheme = 'GfReTime'\)"):
            ar["G_w"]
        assert sorted(ar.get_raw("G_w").keys()) == ["data"]  # still inspectable


def test_triqs1_imtime_mesh_must_span_zero_to_beta(old_archive):
    with h5py.File(old_archive, "a") as f:
        del f["G_tau/up/mesh/max"]
        f["G_tau/up/mesh"].create_dataset("max", data=BETA / 2)
    with HDFArchive(old_archive, "r") as ar, pytest.raises(ArchiveFormatError,
                                                           match="min=0.0 to max=5.0"):
        ar["G_tau"]


def test_triqs1_script_reads_the_archive_through_run(old_archive, tmp_path):
    script = tmp_path / "read_old.py"
    script.write_text(textwrap.dedent("""\
        from pytriqs.archive import HDFArchive
        from pytriqs.gf.local import *
        ar = HDFArchive("triqs1.h5", "r")
        G = ar["G_iw"]
        g_tau = GfImTime(indices=[0], beta=G.beta, n_points=201)
        g_tau << Fourier(G["down"])
        with open("n.txt", "w") as f:
            f.write(repr(float(-g_tau.data[-1, 0, 0].real)))
        """))
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert main(["-q", "run", "--solver", "ipt", str(script)]) == 0
    finally:
        os.chdir(cwd)
    # the semicircle at half filling: n = -G(beta^-) = 1/2 (16 frequencies and a fitted tail)
    assert float(Path(tmp_path / "n.txt").read_text()) == pytest.approx(0.5, abs=1e-3)


@pytest.mark.triqs
@pytest.mark.skipif(importlib.util.find_spec("h5") is None, reason="real TRIQS (h5) not importable")
def test_real_triqs_reads_the_same_values(old_archive):  # pragma: no cover - needs TRIQS
    code = textwrap.dedent(f"""\
        import json
        import triqs.gf  # noqa: F401  (registers the Gf formats with h5, as TRIQS scripts do)
        from h5 import HDFArchive
        g = HDFArchive({str(old_archive)!r}, "r")["G_iw"]["up"].data[:, 0, 0]
        print(json.dumps([g.real.tolist(), g.imag.tolist()]))
        """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    with HDFArchive(old_archive, "r") as ar:
        ours = ar["G_iw"]["up"].data[:, 0, 0]
    re, im = json.loads(res.stdout)
    np.testing.assert_allclose(np.array(re) + 1j * np.array(im), ours, rtol=0, atol=1e-15)
