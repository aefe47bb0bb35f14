# SPDX-License-Identifier: Apache-2.0
"""Writing DMFT runs to archives in the TRIQS HDF5 scheme (rank 0 only; private helpers)."""

from __future__ import annotations

import os

import numpy as np

from .. import mpi

__all__ = ["ArchiveTarget", "block_gf_iw", "block_gf_tau", "storable", "GF_STRUCT"]

#: Block structure of every Green's function written by the DMFT layer.
GF_STRUCT = [("up", 1), ("down", 1)]


def block_gf_iw(data_sw, beta):
    """``BlockGf`` with blocks ``up``/``down`` (1x1) on the fermionic Matsubara mesh.

    Parameters
    ----------
    data_sw : complex ndarray (2, 2 n_iw)
        Spin x Matsubara point (TRIQS order).
    beta : float
    """
    from .. import gf

    n_iw = data_sw.shape[1] // 2
    G = gf.BlockGf(mesh=gf.MeshImFreq(beta=beta, statistic="Fermion", n_iw=n_iw),
                   gf_struct=GF_STRUCT)
    for s, (name, _) in enumerate(GF_STRUCT):
        G[name].data[:, 0, 0] = data_sw[s]
    return G


def block_gf_tau(data_st, beta):
    """``BlockGf`` (``up``/``down``, 1x1) on the imaginary-time mesh of ``n_tau`` points.

    Parameters
    ----------
    data_st : ndarray (2, n_tau)
    beta : float
    """
    from .. import gf

    G = gf.BlockGf(mesh=gf.MeshImTime(beta=beta, statistic="Fermion", n_tau=data_st.shape[1]),
                   gf_struct=GF_STRUCT)
    for s, (name, _) in enumerate(GF_STRUCT):
        G[name].data[:, 0, 0] = data_st[s]
    return G


def storable(value):
    """``value`` in a form the TRIQS scheme stores: ``None`` entries of dicts dropped,
    tuples as lists, numpy scalars as Python numbers, anything else as ``str``."""
    if isinstance(value, dict):
        return {str(k): storable(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [storable(v) for v in value if v is not None]
    if isinstance(value, (bool, int, float, complex, str, np.ndarray)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return repr(value)


def _child(group, name):
    """The subgroup ``name`` of ``group``, created if missing."""
    if name in group:
        if not group.is_group(name):
            raise ValueError(
                f"the archive already holds data under {name!r}, where a group is needed; "
                "choose another archive_group or file"
            )
        return group[name]
    return group.create_group(name)


class ArchiveTarget:
    """Where a run writes: a file name or an open archive (group), plus a group path.

    Parameters
    ----------
    archive : str, os.PathLike, HDFArchive or HDFArchiveGroup, or None
        A file name is opened (mode ``'a'``) for each write and closed again, so
        an interrupted run leaves a readable file.  ``None``: nothing is written.
    group : str or None
        Group path inside the archive (``'a/b'``), created if missing.
    fresh : bool
        Start from an empty target: with a group, the group is replaced; with a
        file name and no group, the file is truncated.

    Only the MPI master (:func:`triqs_mlsolver.mpi.is_master_node`) writes;
    on the other ranks every method does nothing.
    """

    def __init__(self, archive, group=None, *, fresh=True):
        self.archive = archive
        self.parts = [p for p in (group or "").split("/") if p]
        self.active = archive is not None and mpi.is_master_node()
        if archive is not None and not isinstance(archive, (str, os.PathLike)) and not (
            hasattr(archive, "create_group") and hasattr(archive, "keys")
        ):
            raise TypeError(
                f"archive must be a file name or an open HDFArchive (group); got "
                f"{type(archive).__name__}"
            )
        if self.active and fresh:
            if isinstance(archive, (str, os.PathLike)) and not self.parts:
                from ..gf import HDFArchive

                HDFArchive(archive, "w").close()
            elif self.parts:
                with self._open() as root:
                    parent = root
                    for p in self.parts[:-1]:
                        parent = _child(parent, p)
                    parent.create_group(self.parts[-1])

    def _open(self):
        if isinstance(self.archive, (str, os.PathLike)):
            from ..gf import HDFArchive

            return HDFArchive(self.archive, "a")
        return _NoClose(self.archive)

    def write(self, items: dict, subgroup=None):
        """Write ``items`` (key -> value) into the target group (or its ``subgroup``)."""
        if not self.active:
            return
        with self._open() as root:
            g = root
            for p in self.parts + ([subgroup] if subgroup else []):
                g = _child(g, p)
            for k, v in items.items():
                g[k] = v


class _NoClose:
    """Context manager around an archive opened by the caller (left open)."""

    def __init__(self, ar):
        self.ar = ar

    def __enter__(self):
        return self.ar

    def __exit__(self, *exc):
        return False
