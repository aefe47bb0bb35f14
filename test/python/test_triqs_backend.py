# SPDX-License-Identifier: Apache-2.0
"""With real TRIQS importable, triqs_mlsolver.gf hands out the real objects (skipped otherwise).

The test runs in a subprocess so that the backend choice (made at import) is
not the light one forced by conftest.py.
"""

import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest

HAVE_TRIQS = (importlib.util.find_spec("triqs") is not None
              and importlib.util.find_spec("h5") is not None)

pytestmark = [pytest.mark.triqs,
              pytest.mark.skipif(not HAVE_TRIQS, reason="real TRIQS (triqs + h5) not importable")]

SCRIPT = textwrap.dedent(
    """
    import numpy as np
    import triqs_mlsolver.gf as g
    assert g.BACKEND == "triqs", g.BACKEND
    try:
        import triqs.gfs as tg
    except ImportError:
        import triqs.gf as tg
    assert g.Gf is tg.Gf and g.BlockGf is tg.BlockGf
    m = g.MeshImFreq(beta=10, S="Fermion", n_max=64)
    G = g.BlockGf(mesh=m, gf_struct=[("up", 1), ("down", 1)])
    G << g.SemiCircular(1.0)
    # our pure-array transforms agree with TRIQS's Fourier on real objects
    from triqs_mlsolver.gf import transforms as tr
    gt = tg.Gf(mesh=tg.MeshImTime(beta=10, S="Fermion", n_max=2001), target_shape=[1, 1])
    gt << tg.Fourier(G["up"])
    ours = tr.iw_to_tau(G["up"].data, 10.0, 2001)
    assert np.abs(ours - gt.data).max() < 1e-6
    print("ok")
    """
)


def test_real_triqs_objects_are_handed_out():
    env = dict(os.environ, TRIQS_MLSOLVER_BACKEND="auto")
    res = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True)
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr
