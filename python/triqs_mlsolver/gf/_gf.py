# SPDX-License-Identifier: Apache-2.0
"""Light, TRIQS-compatible Green's function containers: ``Gf`` and ``BlockGf``.

These reproduce the parts of ``triqs.gf`` that impurity-solver scripts use:
construction on a mesh with a target shape, ``.data`` indexed
``[mesh point, i, j]`` (complex128), assignment of lazy expressions with
``<<``, arithmetic, target slicing ``g[i, j]``, densities, and HDF5
round trips through :class:`triqs_mlsolver.gf.HDFArchive`.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np

from ..errors import GfStructError, LegacyGfStructWarning, MeshMismatchError, UnknownParameterError
from . import transforms as tr
from ._meshes import MeshImFreq, MeshImTime, MeshLegendre, _Mesh

__all__ = [
    "Gf",
    "GfImFreq",
    "GfImTime",
    "GfLegendre",
    "BlockGf",
    "inverse",
    "fit_hermitian_tail",
    "normalize_gf_struct",
]


def _is_scalar(x) -> bool:
    return isinstance(x, numbers.Number) or (isinstance(x, np.ndarray) and x.ndim == 0)


def check_same_mesh(a, b, what="combine"):
    """Raise :class:`MeshMismatchError` unless meshes ``a`` and ``b`` are equal."""
    if a != b:
        raise MeshMismatchError(
            f"cannot {what} Green's functions on different meshes: {a!r} and {b!r}. "
            "Both must have the same kind of mesh, the same beta, statistic and size; "
            "create the target on the source's mesh (e.g. Gf(mesh=g.mesh, ...))."
        )


def _target_identity(value, target_shape):
    """``value`` as an array of ``target_shape``: a scalar becomes value * identity."""
    if _is_scalar(value):
        if len(target_shape) == 0:
            return np.asarray(value, dtype=complex)
        if len(target_shape) == 2 and target_shape[0] == target_shape[1]:
            return value * np.eye(target_shape[0], dtype=complex)
        if value == 0:
            return np.zeros(target_shape, dtype=complex)
        raise ValueError(
            f"a scalar cannot be added to a Gf with non-square target shape {target_shape}; "
            "use a numpy array of that shape instead"
        )
    arr = np.asarray(value, dtype=complex)
    if arr.shape != tuple(target_shape):
        raise ValueError(
            f"array of shape {arr.shape} does not match the Gf target shape {tuple(target_shape)}"
        )
    return arr


def normalize_gf_struct(gf_struct, stacklevel=3):
    """Return ``gf_struct`` as a list of ``(block_name, size)`` pairs.

    Accepts the TRIQS 3.x form ``[('up', 1), ('down', 1)]``; the legacy forms
    ``[('up', [0]), ('down', [0])]`` and ``{'up': [0], 'down': [0]}`` are
    converted with a :class:`LegacyGfStructWarning`.
    """
    legacy = False
    if isinstance(gf_struct, dict):
        items = list(gf_struct.items())
        legacy = True
    elif isinstance(gf_struct, (list, tuple)):
        items = list(gf_struct)
    else:
        raise GfStructError(
            f"gf_struct must be a list of (block_name, block_size) pairs, e.g. "
            f"[('up', 1), ('down', 1)]; got {type(gf_struct).__name__}"
        )
    if not items:
        raise GfStructError("gf_struct is empty; give at least one block, e.g. [('up', 1)]")
    out = []
    for item in items:
        if not (isinstance(item, (list, tuple)) and len(item) == 2):
            raise GfStructError(
                f"gf_struct entry {item!r} is not a (block_name, block_size) pair; "
                "write e.g. [('up', 1), ('down', 1)]"
            )
        name, size = item
        if not isinstance(name, str) or not name:
            raise GfStructError(f"block name {name!r} in gf_struct must be a non-empty string")
        if isinstance(size, (list, tuple, range)):
            legacy = True
            size = len(size)
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise GfStructError(
                f"block {name!r} in gf_struct has size {size!r}; the size must be a positive "
                "integer (the number of orbitals in the block)"
            )
        out.append((name, int(size)))
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise GfStructError(f"gf_struct has repeated block names: {names}")
    if legacy:
        warnings.warn(
            f"legacy gf_struct form {gf_struct!r} converted to {out!r}; TRIQS 3.x and later "
            "use [(block_name, block_size), ...]",
            LegacyGfStructWarning,
            stacklevel=stacklevel,
        )
    return out


class Gf:
    """A Green's function on one mesh with a matrix (or scalar) target.

    Parameters
    ----------
    mesh : MeshImFreq, MeshImTime or MeshLegendre
    target_shape : sequence of int, optional
        Shape of the value at each mesh point (default ``(1, 1)`` unless
        ``data`` or ``indices`` is given).
    data : ndarray, optional
        Initial values, shape ``(len(mesh), *target_shape)``; copied to complex128.
    indices : sequence, optional
        TRIQS-2 style orbital indices; only their number is used
        (``target_shape = (len(indices), len(indices))``).
    name : str, optional

    Attributes
    ----------
    data : ndarray, complex128, shape ``(len(mesh), *target_shape)``
    mesh : mesh object
    target_shape : tuple of int
    """

    __array_priority__ = 100  # so that ndarray * Gf defers to Gf.__rmul__

    def __init__(self, *, mesh=None, data=None, target_shape=None, indices=None, name="",
                 is_real=False):
        if not isinstance(mesh, _Mesh):
            raise TypeError(
                f"Gf needs mesh=MeshImFreq(...), MeshImTime(...) or MeshLegendre(...); "
                f"got {type(mesh).__name__}"
            )
        if is_real:
            raise NotImplementedError("real-valued Gf (is_real=True) is not supported by the "
                                      "light layer; use complex data")
        self.mesh = mesh
        self.name = name
        if data is not None:
            arr = np.array(data, dtype=complex, copy=True)
            if arr.ndim == 0 or arr.shape[0] != len(mesh):
                raise ValueError(
                    f"data has shape {arr.shape}, its first axis must have the mesh size "
                    f"{len(mesh)}"
                )
            if target_shape is not None and tuple(arr.shape[1:]) != tuple(target_shape):
                raise ValueError(
                    f"data shape {arr.shape} does not match target_shape {tuple(target_shape)}"
                )
            self.data = arr
        else:
            if target_shape is None:
                target_shape = (len(indices), len(indices)) if indices is not None else (1, 1)
            target_shape = tuple(int(t) for t in target_shape)
            if any(t < 1 for t in target_shape):
                raise ValueError(f"target_shape {target_shape} must have positive dimensions")
            self.data = np.zeros((len(mesh), *target_shape), dtype=complex)

    @classmethod
    def _view(cls, mesh, data, name=""):
        g = cls.__new__(cls)
        g.mesh, g.data, g.name = mesh, data, name
        return g

    # -- properties ---------------------------------------------------------
    @property
    def target_shape(self) -> tuple:
        return tuple(self.data.shape[1:])

    @property
    def target_rank(self) -> int:
        return self.data.ndim - 1

    @property
    def beta(self) -> float:
        return self.mesh.beta

    @property
    def indices(self):
        """TRIQS-style index lists, ``[range(n0), range(n1)]``."""
        return [list(range(n)) for n in self.target_shape]

    @property
    def real(self):
        return Gf._view(self.mesh, self.data.real.astype(complex), self.name)

    @property
    def imag(self):
        return Gf._view(self.mesh, self.data.imag.astype(complex), self.name)

    def __repr__(self):
        return f"Gf(mesh={self.mesh!r}, target_shape={self.target_shape})"

    def __len__(self):
        return len(self.mesh)

    # -- copying ------------------------------------------------------------
    def copy(self):
        """A deep copy."""
        return Gf._view(self.mesh, self.data.copy(), self.name)

    def copy_from(self, other):
        """Copy the values of ``other`` (same mesh and target shape) into ``self``."""
        check_same_mesh(self.mesh, other.mesh, "copy between")
        self.data[...] = other.data
        return self

    def zero(self):
        """Set all values to 0 (in place)."""
        self.data[...] = 0
        return self

    # -- target slicing -----------------------------------------------------
    def __getitem__(self, key):
        if not isinstance(key, tuple):
            key = (key,)
        if len(key) != self.target_rank:
            raise IndexError(
                f"Gf with target rank {self.target_rank} takes {self.target_rank} target "
                f"indices, e.g. g[0, 0]; got {len(key)}"
            )
        for k in key:
            if not isinstance(k, (int, np.integer, slice)):
                raise IndexError(f"target index {k!r} must be an int or a slice")
        return Gf._view(self.mesh, self.data[(slice(None), *key)], self.name)

    def __setitem__(self, key, value):
        self[key] << value

    def __call__(self, x):
        """Value at a mesh point: Matsubara index ``n`` (ImFreq), ``tau`` (ImTime, linear
        interpolation as in TRIQS) or ``l`` (Legendre)."""
        m = self.mesh
        if isinstance(m, MeshImTime):
            t = float(x)
            if not 0 <= t <= m.beta:
                raise ValueError(f"tau={t} is outside [0, beta={m.beta}]")
            pos = t / m.delta
            i = min(int(pos), m.n_tau - 2)
            f = pos - i
            return (1 - f) * self.data[i] + f * self.data[i + 1]
        if isinstance(m, MeshImFreq):
            n = int(x)
            if not m.first_index() <= n <= m.last_index():
                raise IndexError(f"Matsubara index {n} is outside the mesh "
                                 f"[{m.first_index()}, {m.last_index()}]")
            return self.data[m.index_to_linear(n)]
        return self.data[int(x)]

    # -- assignment ---------------------------------------------------------
    def __lshift__(self, rhs):
        from ._lazy import evaluate_into

        evaluate_into(self, rhs)
        return self

    def __ilshift__(self, rhs):
        return self.__lshift__(rhs)

    # -- arithmetic ---------------------------------------------------------
    def _operand(self, other, what):
        if isinstance(other, Gf):
            check_same_mesh(self.mesh, other.mesh, what)
            return other.data
        if _is_scalar(other) or isinstance(other, np.ndarray):
            return None
        return NotImplemented

    def _add(self, other, sign, what):
        from ._lazy import LazyExpr

        if isinstance(other, LazyExpr):
            return NotImplemented
        od = self._operand(other, what)
        if od is NotImplemented:
            return NotImplemented
        if od is None:
            od = _target_identity(other, self.target_shape)[None]
        return Gf._view(self.mesh, self.data + sign * od, self.name)

    def __add__(self, other):
        return self._add(other, 1, "add")

    def __radd__(self, other):
        return self._add(other, 1, "add")

    def __sub__(self, other):
        return self._add(other, -1, "subtract")

    def __rsub__(self, other):
        r = self._add(other, -1, "subtract")
        if r is NotImplemented:
            return r
        r.data *= -1
        return r

    def __neg__(self):
        return Gf._view(self.mesh, -self.data, self.name)

    def _matmul_data(self, a, b):
        if a.ndim == 3 and b.ndim == 3:
            return a @ b
        return a * b

    def __mul__(self, other):
        from ._lazy import LazyExpr

        if isinstance(other, LazyExpr):
            return NotImplemented
        if _is_scalar(other):
            return Gf._view(self.mesh, self.data * other, self.name)
        if isinstance(other, np.ndarray):
            return Gf._view(self.mesh, self.data @ np.asarray(other, dtype=complex), self.name)
        if isinstance(other, Gf):
            check_same_mesh(self.mesh, other.mesh, "multiply")
            if not isinstance(self.mesh, MeshImFreq):
                raise ValueError("products of Gfs are defined on Matsubara frequencies only")
            return Gf._view(self.mesh, self._matmul_data(self.data, other.data), self.name)
        return NotImplemented

    def __rmul__(self, other):
        if _is_scalar(other):
            return Gf._view(self.mesh, other * self.data, self.name)
        if isinstance(other, np.ndarray):
            return Gf._view(self.mesh, np.asarray(other, dtype=complex) @ self.data, self.name)
        return NotImplemented

    def __truediv__(self, other):
        if _is_scalar(other):
            return Gf._view(self.mesh, self.data / other, self.name)
        if isinstance(other, Gf):
            return self * inverse(other)
        return NotImplemented

    def __rtruediv__(self, other):
        if _is_scalar(other):
            return other * inverse(self)
        return NotImplemented

    def __iadd__(self, other):
        r = self.__add__(other)
        if r is NotImplemented:
            return r
        self.data[...] = r.data
        return self

    def __isub__(self, other):
        r = self.__sub__(other)
        if r is NotImplemented:
            return r
        self.data[...] = r.data
        return self

    def __imul__(self, other):
        r = self.__mul__(other)
        if r is NotImplemented:
            return r
        self.data[...] = r.data
        return self

    def __itruediv__(self, other):
        r = self.__truediv__(other)
        if r is NotImplemented:
            return r
        self.data[...] = r.data
        return self

    def invert(self):
        """Invert in place (matrix inverse at every Matsubara point)."""
        self.data[...] = _inverse_data(self.data)
        return self

    def inverse(self):
        """The inverse as a new Gf."""
        return Gf._view(self.mesh, _inverse_data(self.data), self.name)

    def conjugate(self):
        """Complex conjugate, ``G*(i w_n)`` (TRIQS's ``conjugate``)."""
        return Gf._view(self.mesh, np.conj(self.data), self.name)

    def transpose(self):
        """Transpose of the target matrix."""
        return Gf._view(self.mesh, np.swapaxes(self.data, -1, -2).copy(), self.name)

    # -- functions of triqs.gf that TRIQS also makes methods --------------------
    def rebinning_tau(self, new_n_tau):
        """This Gf averaged onto ``new_n_tau`` τ points (see ``rebinning_tau``)."""
        from ._functions import rebinning_tau

        return rebinning_tau(self, new_n_tau)

    def is_gf_hermitian(self, tolerance=1.e-12):
        """See :func:`~triqs_mlsolver.gf.is_gf_hermitian`."""
        from ._functions import is_gf_hermitian

        return is_gf_hermitian(self, tolerance)

    # -- transforms ---------------------------------------------------------
    def set_from_fourier(self, g, known_moments=None):
        from ._lazy import Fourier

        return self << Fourier(g, known_moments)

    def set_from_legendre(self, g_l):
        from ._lazy import LegendreToMatsubara, LegendreToTime

        if isinstance(self.mesh, MeshImTime):
            return self << LegendreToTime(g_l)
        return self << LegendreToMatsubara(g_l)

    def set_from_imtime(self, g_tau):
        from ._lazy import Fourier, TimeToLegendre

        if isinstance(self.mesh, MeshLegendre):
            return self << TimeToLegendre(g_tau)
        return self << Fourier(g_tau)

    def set_from_imfreq(self, g_iw, known_moments=None):
        from ._lazy import Fourier, MatsubaraToLegendre

        if isinstance(self.mesh, MeshLegendre):
            return self << MatsubaraToLegendre(g_iw, known_moments)
        return self << Fourier(g_iw, known_moments)

    # -- observables --------------------------------------------------------
    def density(self, known_moments=None):
        """Density matrix ``rho[i, j] = -G_ij(beta^-)`` (the TRIQS convention).

        On a Matsubara mesh the tail is fitted (or ``known_moments`` used) so
        the result converges as the first neglected moment, not as ``1/n_iw``.
        """
        if self.target_rank != 2:
            raise ValueError("density() needs a matrix-valued Gf (target rank 2)")
        m = self.mesh
        if isinstance(m, MeshImTime):
            return -self.data[-1].copy()
        if isinstance(m, MeshLegendre):
            l = np.arange(m.max_n)
            return -np.tensordot(np.sqrt(2 * l + 1) / m.beta, self.data, axes=(0, 0))
        if m.statistic != "Fermion":
            raise NotImplementedError("density() is implemented for fermionic Gfs only")
        return tr.density_from_iw(self.data, m.beta, _moments_arg(known_moments, self))

    def total_density(self, known_moments=None) -> float:
        """Trace of :meth:`density` (real part)."""
        return float(np.trace(self.density(known_moments)).real)

    # -- HDF5 ---------------------------------------------------------------
    def __reduce_to_dict__(self):
        return {"mesh": self.mesh, "data": self.data}

    @classmethod
    def __factory_from_dict__(cls, name, d):
        return cls(mesh=d["mesh"], data=d["data"], name=name)


def _moments_arg(known_moments, g):
    if known_moments is None:
        return None
    km = np.asarray(known_moments, dtype=complex)
    if km.shape[1:] != g.target_shape:
        raise ValueError(f"known_moments has shape {km.shape}; expected (k, *{g.target_shape})")
    moments, _ = tr.fit_tail(g.data, g.mesh.values(), known_moments=km)
    return moments


def _inverse_data(d):
    if d.ndim == 3:
        try:
            return np.linalg.inv(d)
        except np.linalg.LinAlgError:
            raise ZeroDivisionError("Gf is singular at some mesh point; cannot invert") from None
    with np.errstate(divide="raise", invalid="raise"):
        try:
            return 1.0 / d
        except FloatingPointError:
            raise ZeroDivisionError("Gf vanishes at some mesh point; cannot invert") from None


def inverse(x):
    """Inverse of a Gf, a BlockGf or a lazy expression (lazy in the last case)."""
    from ._lazy import LazyExpr, _LazyInverse, as_lazy

    if isinstance(x, Gf):
        return x.inverse()
    if isinstance(x, BlockGf):
        return BlockGf(name_list=list(x.indices), block_list=[g.inverse() for _, g in x],
                       make_copies=False)
    if isinstance(x, LazyExpr) or _is_scalar(x):
        return _LazyInverse(as_lazy(x))
    raise TypeError(f"inverse() takes a Gf, BlockGf or lazy expression, not {type(x).__name__}")


def fit_hermitian_tail(g, known_moments=None, max_order=tr.DEFAULT_TAIL_ORDER):
    """Fit the high-frequency moments of a Matsubara ``Gf`` (TRIQS's ``fit_hermitian_tail``).

    Returns ``(tail, err)`` with ``tail[k]`` the matrix of ``1/(i w)^k``.
    """
    if not isinstance(g.mesh, MeshImFreq):
        raise ValueError("fit_hermitian_tail needs a Gf on a MeshImFreq")
    km = None if known_moments is None else np.asarray(known_moments, dtype=complex)
    return tr.fit_tail(g.data, g.mesh.values(), known_moments=km, max_order=max_order)


def GfImFreq(*, indices=None, beta=None, n_points=1025, statistic="Fermion", name="",
             target_shape=None, mesh=None, data=None, **kwargs):
    """TRIQS-2/3 style constructor of a Matsubara Gf (``n_points`` = n_iw)."""
    if kwargs:
        raise UnknownParameterError(f"GfImFreq() got unknown keyword(s) {sorted(kwargs)}")
    if mesh is None:
        mesh = MeshImFreq(beta=beta, statistic=statistic, n_iw=n_points)
    return Gf(mesh=mesh, indices=indices, target_shape=target_shape, data=data, name=name)


def GfImTime(*, indices=None, beta=None, n_points=10001, statistic="Fermion", name="",
             target_shape=None, mesh=None, data=None, **kwargs):
    """TRIQS-2/3 style constructor of an imaginary-time Gf (``n_points`` = n_tau)."""
    if kwargs:
        raise UnknownParameterError(f"GfImTime() got unknown keyword(s) {sorted(kwargs)}")
    if mesh is None:
        mesh = MeshImTime(beta=beta, statistic=statistic, n_tau=n_points)
    return Gf(mesh=mesh, indices=indices, target_shape=target_shape, data=data, name=name)


def GfLegendre(*, indices=None, beta=None, n_points=30, statistic="Fermion", name="",
               target_shape=None, mesh=None, data=None, **kwargs):
    """TRIQS-2/3 style constructor of a Legendre Gf (``n_points`` = number of coefficients)."""
    if kwargs:
        raise UnknownParameterError(f"GfLegendre() got unknown keyword(s) {sorted(kwargs)}")
    if mesh is None:
        mesh = MeshLegendre(beta=beta, statistic=statistic, max_n=n_points)
    return Gf(mesh=mesh, indices=indices, target_shape=target_shape, data=data, name=name)


class BlockGf:
    """A block-diagonal Green's function: named blocks, each a :class:`Gf`.

    Construct as in TRIQS, either from a structure::

        BlockGf(mesh=MeshImFreq(beta=10, statistic='Fermion', n_iw=1025),
                gf_struct=[('up', 1), ('down', 1)])

    or from blocks::

        BlockGf(name_list=['up', 'down'], block_list=[g, g], make_copies=True)

    Iterating yields ``(name, block)`` pairs; ``G['up']`` is a block.
    """

    __array_priority__ = 100

    def __init__(self, *, name_list=None, block_list=None, make_copies=True, mesh=None,
                 gf_struct=None, target_rank=2, name="", name_block_generator=None):
        if gf_struct is not None:
            if name_list is not None or block_list is not None:
                raise TypeError("give either gf_struct (with mesh) or name_list/block_list")
            if not isinstance(mesh, _Mesh):
                raise TypeError("BlockGf(gf_struct=...) also needs mesh=MeshImFreq(...) etc.")
            struct = normalize_gf_struct(gf_struct)
            if target_rank not in (0, 2):
                raise ValueError("target_rank must be 2 (matrix blocks) or 0 (scalar blocks)")
            name_list = [n for n, _ in struct]
            block_list = [
                Gf(mesh=mesh, target_shape=(s, s) if target_rank == 2 else ()) for _, s in struct
            ]
            make_copies = False
        elif name_block_generator is not None:
            pairs = list(name_block_generator)
            name_list = [n for n, _ in pairs]
            block_list = [g for _, g in pairs]
        if name_list is None or block_list is None:
            raise TypeError(
                "BlockGf needs mesh= and gf_struct=[('up', 1), ...], or name_list= and block_list="
            )
        name_list = [str(n) for n in name_list]
        block_list = list(block_list)
        if len(name_list) != len(block_list):
            raise GfStructError(
                f"name_list has {len(name_list)} names but block_list {len(block_list)} blocks"
            )
        if len(set(name_list)) != len(name_list):
            raise GfStructError(f"repeated block names {name_list}")
        for n_, g in zip(name_list, block_list):
            if not isinstance(g, Gf):
                raise TypeError(f"block {n_!r} is a {type(g).__name__}, not a Gf")
        self._names = name_list
        self._blocks = {
            n_: (g.copy() if make_copies else g) for n_, g in zip(name_list, block_list)
        }
        self.name = name

    # -- container protocol -------------------------------------------------
    @property
    def indices(self):
        return list(self._names)

    @property
    def block_names(self):
        return list(self._names)

    @property
    def n_blocks(self) -> int:
        return len(self._names)

    @property
    def mesh(self):
        return self._blocks[self._names[0]].mesh

    @property
    def beta(self) -> float:
        return self.mesh.beta

    @property
    def gf_struct(self):
        return [(n_, self._blocks[n_].target_shape[0] if self._blocks[n_].target_rank else 1)
                for n_ in self._names]

    def __len__(self):
        return len(self._names)

    def __iter__(self):
        for n_ in self._names:
            yield n_, self._blocks[n_]

    def __contains__(self, name):
        return name in self._blocks

    def __getitem__(self, name):
        try:
            return self._blocks[name]
        except KeyError:
            raise KeyError(
                f"no block {name!r} in this BlockGf; its blocks are {self._names}"
            ) from None

    def __setitem__(self, name, value):
        self[name] << value

    def __repr__(self):
        return f"BlockGf(blocks={self.gf_struct}, mesh={self.mesh!r})"

    def copy(self):
        return BlockGf(name_list=self._names, block_list=[g.copy() for _, g in self],
                       make_copies=False, name=self.name)

    def copy_from(self, other):
        self._check_same(other, "copy between")
        for n_, g in self:
            g.copy_from(other[n_])
        return self

    def zero(self):
        for _, g in self:
            g.zero()
        return self

    def _check_same(self, other, what):
        if not isinstance(other, BlockGf):
            return
        if other._names != self._names:
            raise GfStructError(
                f"cannot {what} BlockGfs with different blocks: {self._names} and {other._names}"
            )

    # -- assignment and arithmetic -----------------------------------------
    def __lshift__(self, rhs):
        self._check_same(rhs, "assign")
        for n_, g in self:
            g << (rhs[n_] if isinstance(rhs, BlockGf) else _block_of(rhs, n_))
        return self

    def __ilshift__(self, rhs):
        return self.__lshift__(rhs)

    def _map(self, fn, other=None, what="combine"):
        from ._lazy import LazyExpr

        if isinstance(other, LazyExpr):
            return NotImplemented
        self._check_same(other, what)
        blocks = []
        for n_, g in self:
            o = other[n_] if isinstance(other, BlockGf) else other
            r = fn(g, o)
            if r is NotImplemented:
                return NotImplemented
            blocks.append(r)
        return BlockGf(name_list=self._names, block_list=blocks, make_copies=False)

    def __add__(self, o):
        return self._map(lambda g, x: g + x, o, "add")

    def __radd__(self, o):
        return self._map(lambda g, x: x + g, o, "add")

    def __sub__(self, o):
        return self._map(lambda g, x: g - x, o, "subtract")

    def __rsub__(self, o):
        return self._map(lambda g, x: x - g, o, "subtract")

    def __mul__(self, o):
        return self._map(lambda g, x: g * x, o, "multiply")

    def __rmul__(self, o):
        return self._map(lambda g, x: x * g, o, "multiply")

    def __truediv__(self, o):
        return self._map(lambda g, x: g / x, o, "divide")

    def __neg__(self):
        return self._map(lambda g, x: -g)

    def _imap(self, op, other):
        r = op(other)
        if r is NotImplemented:
            return r
        for n_, g in self:
            g.data[...] = r[n_].data
        return self

    def __iadd__(self, o):
        return self._imap(self.__add__, o)

    def __isub__(self, o):
        return self._imap(self.__sub__, o)

    def __imul__(self, o):
        return self._imap(self.__mul__, o)

    def __itruediv__(self, o):
        return self._imap(self.__truediv__, o)

    def invert(self):
        for _, g in self:
            g.invert()
        return self

    # -- observables --------------------------------------------------------
    def density(self):
        """Dict of block density matrices."""
        return {n_: g.density() for n_, g in self}

    def total_density(self) -> float:
        """Sum over blocks of the trace of the density matrix."""
        return float(sum(g.total_density() for _, g in self))

    # -- HDF5 ---------------------------------------------------------------
    def __reduce_to_dict__(self):
        d = {n_: g for n_, g in self}
        d["block_names"] = list(self._names)
        return d

    @classmethod
    def __factory_from_dict__(cls, name, d):
        names = [str(n_) for n_ in d["block_names"]]
        return cls(name_list=names, block_list=[d[n_] for n_ in names], make_copies=False,
                   name=name)


def _block_of(rhs, name):
    """The part of a lazy right-hand side that belongs to block ``name``."""
    from ._lazy import LazyExpr

    if isinstance(rhs, LazyExpr):
        return rhs.for_block(name)
    return rhs
