# SPDX-License-Identifier: Apache-2.0
"""Green's functions: real TRIQS when importable, the light TRIQS-compatible layer otherwise.

Scripts written for TRIQS work unchanged::

    from triqs_mlsolver.gf import *
    G = BlockGf(mesh=MeshImFreq(beta=10, statistic='Fermion', n_iw=1025),
                gf_struct=[('up', 1), ('down', 1)])
    G << SemiCircular(1.0)

The pure-array transforms used by the solvers are in
:mod:`triqs_mlsolver.gf.transforms` and work with either backend.
"""

from ._backend import BACKEND, using_triqs

_names = [
    "MeshImFreq", "MeshImTime", "MeshLegendre",
    "Gf", "GfImFreq", "GfImTime", "GfLegendre", "BlockGf",
    "iOmega_n", "SemiCircular", "Flat", "Wilson", "inverse", "Fourier",
    "LegendreToMatsubara", "MatsubaraToLegendre", "fit_hermitian_tail",
    "rebinning_tau", "make_hermitian", "is_gf_hermitian",
]

if using_triqs():  # pragma: no cover - needs a TRIQS installation
    from ._backend import triqs_gf_module as _tg
    from ._backend import triqs_h5_module as _h5

    globals().update({n: getattr(_tg, n) for n in _names if hasattr(_tg, n)})
    HDFArchive = _h5.HDFArchive
    HDFArchiveGroup = _h5.HDFArchiveGroup
    from h5.formats import register_class  # noqa: F401
else:
    from ._functions import is_gf_hermitian, make_hermitian, rebinning_tau  # noqa: F401
    from ._gf import (  # noqa: F401
        BlockGf,
        Gf,
        GfImFreq,
        GfImTime,
        GfLegendre,
        fit_hermitian_tail,
        inverse,
    )
    from ._h5 import HDFArchive, HDFArchiveGroup, register_class  # noqa: F401
    from ._lazy import (  # noqa: F401
        Flat,
        Fourier,
        LegendreToMatsubara,
        LegendreToTime,
        MatsubaraToLegendre,
        SemiCircular,
        TimeToLegendre,
        Wilson,
        iOmega_n,
    )
    from ._meshes import MeshImFreq, MeshImTime, MeshLegendre, MeshReFreq  # noqa: F401

    _names += ["LegendreToTime", "TimeToLegendre", "MeshReFreq"]

from ._gf import normalize_gf_struct  # noqa: E402,F401

__all__ = [*_names, "HDFArchive", "HDFArchiveGroup", "register_class", "BACKEND", "using_triqs",
           "normalize_gf_struct"]
