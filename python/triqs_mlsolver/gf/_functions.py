# SPDX-License-Identifier: Apache-2.0
"""Functions of ``triqs.gf`` on whole Green's functions: rebinning and hermiticity.

``rebinning_tau`` (also a :class:`~triqs_mlsolver.gf.Gf` method, as TRIQS makes
every ``gf_fnt`` function one), ``make_hermitian`` and ``is_gf_hermitian``, with the
semantics of TRIQS 3.2 (``triqs.gf``); the implementation is this package's own.
"""

from __future__ import annotations

import numbers

import numpy as np

from ._gf import BlockGf, Gf
from ._meshes import MeshImFreq, MeshImTime

__all__ = ["rebinning_tau", "make_hermitian", "is_gf_hermitian"]


def _require_gf(g, fname, what="a Gf"):
    if isinstance(g, BlockGf):
        raise TypeError(
            f"{fname} takes one Gf, not a BlockGf; apply it block by block, e.g. "
            f"BlockGf(name_block_generator=[(name, {fname}(b, ...)) for name, b in G])")
    if not isinstance(g, Gf):
        raise TypeError(f"{fname} takes {what}, not a {type(g).__name__}")


def rebinning_tau(g, new_n_tau):
    r"""The imaginary-time Gf ``g`` averaged onto a coarser mesh of ``new_n_tau`` points.

    Every point :math:`\tau_k` of the old mesh belongs to the new point nearest to it,
    :math:`j = \lfloor \tau_k / \Delta' + 1/2 \rfloor` with :math:`\Delta' = \beta /
    (\text{new\_n\_tau} - 1)` (a tie goes to the later point, as ``std::round`` in
    TRIQS); the new value is the mean of the old values of its bin.  The index is
    computed in integers, so a tie is a tie whatever the rounding of the τ values.

    Parameters
    ----------
    g : Gf
        On a ``MeshImTime`` (any target shape).
    new_n_tau : int
        Points of the new mesh, ``2 <= new_n_tau <= g.mesh.n_tau`` (a finer mesh would
        leave bins empty; TRIQS returns garbage there, this refuses it).

    Returns
    -------
    Gf
        On ``MeshImTime(beta, statistic, new_n_tau)``, same target shape.

    Raises
    ------
    TypeError
        ``g`` is not a Gf on a MeshImTime (a BlockGf: rebin block by block).
    ValueError
        ``new_n_tau`` is not an integer in ``[2, g.mesh.n_tau]``.
    """
    _require_gf(g, "rebinning_tau", "a Gf on a MeshImTime")
    mesh = g.mesh
    if not isinstance(mesh, MeshImTime):
        raise TypeError(f"rebinning_tau needs a Gf on a MeshImTime; this one is on {mesh!r}")
    if isinstance(new_n_tau, bool) or not isinstance(new_n_tau, numbers.Integral):
        raise TypeError(f"new_n_tau={new_n_tau!r} must be an integer number of τ points")
    n_old, n_new = mesh.n_tau, int(new_n_tau)
    if not 2 <= n_new <= n_old:
        raise ValueError(
            f"new_n_tau={n_new} must be between 2 and the present n_tau={n_old}: rebinning "
            "averages onto a coarser mesh; use Fourier(...) or interpolation (g(tau)) for a "
            "finer one")
    k = np.arange(n_old, dtype=np.int64)
    # nearest new point, round half up: floor(k (N-1)/(M-1) + 1/2) in exact integers
    index = (2 * k * (n_new - 1) + (n_old - 1)) // (2 * (n_old - 1))
    flat = g.data.reshape(n_old, -1)
    sums = np.zeros((n_new, flat.shape[1]), dtype=complex)
    np.add.at(sums, index, flat)
    counts = np.bincount(index, minlength=n_new)
    new_mesh = MeshImTime(beta=mesh.beta, statistic=mesh.statistic, n_tau=n_new)
    data = (sums / counts[:, None]).reshape((n_new, *g.target_shape))
    return Gf(mesh=new_mesh, data=data, name=g.name)


def _hermitian_conjugate_data(g):
    """The data of :math:`G^\\dagger` in TRIQS's sense, point by point (see make_hermitian)."""
    d = g.data
    if isinstance(g.mesh, MeshImFreq):
        d = d[::-1]  # i w_n -> -i w_n: the mesh is symmetric (n <-> -n-1, bosons n <-> -n)
    elif not isinstance(g.mesh, MeshImTime):
        raise TypeError(
            f"hermiticity is defined for Gfs on MeshImFreq or MeshImTime; this one is on "
            f"{g.mesh!r}")
    rank = g.target_rank
    if rank == 0:
        return np.conj(d)
    if rank == 2:
        return np.conj(np.swapaxes(d, 1, 2))
    if rank == 4:  # (i, j, k, l) <- conj (k, l, i, j)
        return np.conj(np.transpose(d, (0, 3, 4, 1, 2)))
    raise ValueError(f"hermiticity needs a target rank of 0, 2 or 4; this Gf has rank {rank}")


def make_hermitian(g):
    r"""``g`` symmetrised to satisfy the hermiticity of a Green's function (a new object).

    ===========  ==============================================================
    mesh         value at each point
    ===========  ==============================================================
    MeshImFreq   :math:`\tfrac12 [G_{ij}(i\omega) + G_{ji}(-i\omega)^*]`
    MeshImTime   :math:`\tfrac12 [G_{ij}(\tau) + G_{ji}(\tau)^*]`
    ===========  ==============================================================

    (for a scalar target without the indices; rank 4 pairs ``(i, j, k, l)`` with
    ``(k, l, i, j)``), as ``triqs.gf.make_hermitian``.

    Parameters
    ----------
    g : Gf or BlockGf
        On a MeshImFreq or a MeshImTime; target rank 0, 2 or 4.

    Returns
    -------
    Gf or BlockGf
    """
    if isinstance(g, BlockGf):
        return BlockGf(name_list=g.block_names, block_list=[make_hermitian(b) for _, b in g],
                       make_copies=False, name=g.name)
    _require_gf(g, "make_hermitian", "a Gf or a BlockGf")
    data = 0.5 * (g.data + _hermitian_conjugate_data(g))
    return Gf(mesh=g.mesh, data=data, name=g.name)


def is_gf_hermitian(g, tolerance=1.e-12):
    """True if ``g`` equals :func:`make_hermitian` of itself to ``tolerance`` at every point.

    As ``triqs.gf.is_gf_hermitian``: every element of ``G - G^dagger`` (see
    :func:`make_hermitian`) is at most ``tolerance`` in modulus; a BlockGf is
    hermitian when every block is.
    """
    if isinstance(g, BlockGf):
        return all(is_gf_hermitian(b, tolerance) for _, b in g)
    _require_gf(g, "is_gf_hermitian", "a Gf or a BlockGf")
    diff = np.abs(g.data - _hermitian_conjugate_data(g))
    return bool(diff.size == 0 or np.max(diff) <= tolerance)
