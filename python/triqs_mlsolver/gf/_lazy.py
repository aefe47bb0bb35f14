# SPDX-License-Identifier: Apache-2.0
"""Lazy expressions assigned to Green's functions with ``<<``.

``g << inverse(iOmega_n + mu - t**2 * G)`` builds an expression tree that is
only evaluated on the mesh (and target shape) of the left-hand side.  The
leaves are constants (scalars meaning ``value * identity``, or target-shaped
matrices), Gfs, BlockGfs (resolved block by block), the mesh functions
:data:`iOmega_n`, :func:`SemiCircular` and :func:`Flat` (alias ``Wilson``), and the transforms
:func:`Fourier`, :func:`LegendreToMatsubara`, :func:`MatsubaraToLegendre`.
"""

from __future__ import annotations

import numpy as np

from ..errors import MeshMismatchError
from . import transforms as tr
from ._gf import BlockGf, Gf, _inverse_data, _is_scalar, _target_identity, check_same_mesh
from ._meshes import MeshImFreq, MeshImTime, MeshLegendre

__all__ = [
    "LazyExpr",
    "iOmega_n",
    "SemiCircular",
    "Flat",
    "Wilson",
    "Fourier",
    "LegendreToMatsubara",
    "MatsubaraToLegendre",
    "LegendreToTime",
    "TimeToLegendre",
    "evaluate_into",
]


class LazyExpr:
    """Base class of lazy expressions; supports ``+ - * /`` with numbers, arrays and Gfs."""

    def evaluate(self, mesh, target_shape):  # pragma: no cover - abstract
        """Values on ``mesh``: array ``(len(mesh) or 1, *target_shape)``."""
        raise NotImplementedError

    def for_block(self, name):
        """The expression with every BlockGf leaf replaced by its block ``name``."""
        return self

    def __add__(self, o):
        return _BinOp(np.add, self, as_lazy(o))

    def __radd__(self, o):
        return _BinOp(np.add, as_lazy(o), self)

    def __sub__(self, o):
        return _BinOp(np.subtract, self, as_lazy(o))

    def __rsub__(self, o):
        return _BinOp(np.subtract, as_lazy(o), self)

    def __mul__(self, o):
        return _BinOp(_mul, self, as_lazy(o))

    def __rmul__(self, o):
        return _BinOp(_mul, as_lazy(o), self)

    def __truediv__(self, o):
        if _is_scalar(o):
            return _BinOp(_mul, self, _Const(1.0 / o))
        return _BinOp(_mul, self, _LazyInverse(as_lazy(o)))

    def __rtruediv__(self, o):
        return _BinOp(_mul, as_lazy(o), _LazyInverse(self))

    def __neg__(self):
        return _BinOp(_mul, _Const(-1.0), self)

    __array_priority__ = 200


def _mul(a, b):
    if a.ndim == 3 and b.ndim == 3:
        return np.matmul(a, b)
    return a * b


def as_lazy(x):
    """Wrap numbers, arrays, Gfs and BlockGfs as lazy leaves."""
    if isinstance(x, LazyExpr):
        return x
    if isinstance(x, (Gf, BlockGf)):
        return _GfLeaf(x)
    if _is_scalar(x) or isinstance(x, np.ndarray):
        return _Const(x)
    raise TypeError(f"cannot use a {type(x).__name__} in a Green's function expression")


class _Const(LazyExpr):
    def __init__(self, value):
        self.value = value

    def evaluate(self, mesh, target_shape):
        return _target_identity(self.value, target_shape)[None]


class _GfLeaf(LazyExpr):
    def __init__(self, g):
        self.g = g

    def for_block(self, name):
        return _GfLeaf(self.g[name]) if isinstance(self.g, BlockGf) else self

    def evaluate(self, mesh, target_shape):
        if isinstance(self.g, BlockGf):
            raise TypeError("an expression with a BlockGf must be assigned to a BlockGf")
        check_same_mesh(mesh, self.g.mesh, "combine")
        if self.g.target_shape != tuple(target_shape):
            raise ValueError(
                f"Gf with target shape {self.g.target_shape} used in an expression assigned "
                f"to a Gf with target shape {tuple(target_shape)}"
            )
        return self.g.data


class _BinOp(LazyExpr):
    def __init__(self, op, a, b):
        self.op, self.a, self.b = op, a, b

    def for_block(self, name):
        return _BinOp(self.op, self.a.for_block(name), self.b.for_block(name))

    def evaluate(self, mesh, target_shape):
        return self.op(self.a.evaluate(mesh, target_shape), self.b.evaluate(mesh, target_shape))


class _LazyInverse(LazyExpr):
    def __init__(self, a):
        self.a = a

    def for_block(self, name):
        return _LazyInverse(self.a.for_block(name))

    def evaluate(self, mesh, target_shape):
        return _inverse_data(self.a.evaluate(mesh, target_shape))


class _MeshFunction(LazyExpr):
    """``f(z) * identity`` for a scalar function of the Matsubara point ``z = i w_n``."""

    def __init__(self, label, fn):
        self.label, self.fn = label, fn

    def evaluate(self, mesh, target_shape):
        if not isinstance(mesh, MeshImFreq):
            raise TypeError(
                f"{self.label} can only be evaluated on a MeshImFreq, not on {mesh!r}; "
                "assign it to a Matsubara Gf and use Fourier(...) to reach imaginary time"
            )
        vals = self.fn(mesh.values())
        if len(target_shape) == 0:
            return vals
        if len(target_shape) == 2 and target_shape[0] == target_shape[1]:
            return vals[:, None, None] * np.eye(target_shape[0])[None]
        raise ValueError(f"{self.label} needs a square matrix or scalar target")

    def __repr__(self):
        return self.label


#: The Matsubara frequency ``i w_n`` (times the identity), as in TRIQS.
iOmega_n = _MeshFunction("iOmega_n", lambda z: z)


def SemiCircular(half_bandwidth=1.0, chem_potential=0.0):
    """``G(z) = int rho(e) / (z + mu - e) de`` for the semicircular DOS of half width ``D``.

    ``rho(e) = 2 sqrt(D^2 - e^2) / (pi D^2)``; evaluated stably as ``2 / (z + s)``.
    """
    D = float(half_bandwidth)
    if not D > 0:
        raise ValueError(f"half_bandwidth={half_bandwidth} must be positive")
    mu = chem_potential
    return _MeshFunction(f"SemiCircular({D:g})", lambda z: tr.semicircle_g(z + mu, D))


def Flat(half_bandwidth=1.0):
    """``G(z) = log((z + D)/(z - D)) / (2D)``: the Hilbert transform of a flat DOS.

    ``rho(e) = 1/(2D)`` for ``|e| < D`` (``D = half_bandwidth``), as TRIQS's ``Flat``;
    :data:`Wilson` is another name for it (TRIQS's backward-compatible spelling).
    """
    D = float(half_bandwidth)
    if not D > 0:
        raise ValueError(f"half_bandwidth={half_bandwidth} must be positive")
    return _MeshFunction(f"Flat({D:g})", lambda z: np.log((z + D) / (z - D)) / (2 * D))


#: ``Wilson = Flat``, as in ``triqs.gf`` (the name TRIQS 1.x/2.x scripts use).
Wilson = Flat


class _Transform(LazyExpr):
    """A transform of a source Gf (or BlockGf) onto the target mesh."""

    source_kind: tuple = ()
    target_kind: tuple = ()
    label = "transform"

    def __init__(self, g, known_moments=None):
        if not isinstance(g, (Gf, BlockGf)):
            raise TypeError(f"{self.label}() takes a Gf or BlockGf, not {type(g).__name__}")
        self.g = g
        self.known_moments = known_moments

    def for_block(self, name):
        if isinstance(self.g, BlockGf):
            km = self.known_moments
            if isinstance(km, dict):
                km = km[name]
            return type(self)(self.g[name], km)
        return self

    def _check(self, mesh, target_shape):
        g = self.g
        if isinstance(g, BlockGf):
            raise TypeError(f"{self.label} of a BlockGf must be assigned to a BlockGf")
        if not isinstance(g.mesh, self.source_kind) or not isinstance(mesh, self.target_kind):
            raise TypeError(
                f"{self.label} maps a Gf on {self.source_kind[0].__name__} to one on "
                f"{self.target_kind[0].__name__}; got {g.mesh!r} -> {mesh!r}"
            )
        if g.mesh.beta != mesh.beta:
            raise MeshMismatchError(
                f"{self.label}: source beta={g.mesh.beta} and target beta={mesh.beta} differ; "
                "create the target Gf with the same beta"
            )
        if g.mesh.statistic != "Fermion" or mesh.statistic != "Fermion":
            raise NotImplementedError(f"{self.label} is implemented for fermionic Gfs only")
        if g.target_shape != tuple(target_shape):
            raise ValueError(
                f"{self.label}: source target shape {g.target_shape} differs from the "
                f"target's {tuple(target_shape)}"
            )
        return g

    def _moments_iw(self, g):
        if self.known_moments is None:
            return None
        km = np.asarray(self.known_moments, dtype=complex)
        if km.ndim == 1 and g.target_rank == 2:
            km = km[:, None, None] * np.eye(g.target_shape[0])
        if km.shape[1:] != g.target_shape:
            raise ValueError(
                f"known_moments has shape {km.shape}; expected (k, *{g.target_shape})"
            )
        moments, _ = tr.fit_tail(g.data, g.mesh.values(), known_moments=km)
        return moments


class Fourier(_Transform):
    """Fourier transform between ``MeshImFreq`` and ``MeshImTime`` (either direction).

    ``known_moments`` (shape ``(k, *target)``, ``known_moments[j]`` the
    coefficient of ``1/(i w)^j``) fixes the leading moments; the others are
    fitted (iw -> tau) or taken from the discontinuities at tau = 0, beta
    (tau -> iw).
    """

    label = "Fourier"

    def _check(self, mesh, target_shape):
        kinds = (MeshImFreq, MeshImTime)
        src = self.g.mesh if isinstance(self.g, Gf) else None
        if isinstance(src, MeshImFreq):
            self.source_kind, self.target_kind = (MeshImFreq,), (MeshImTime,)
        elif isinstance(src, MeshImTime):
            self.source_kind, self.target_kind = (MeshImTime,), (MeshImFreq,)
        else:
            self.source_kind, self.target_kind = kinds, kinds
        return super()._check(mesh, target_shape)

    def evaluate(self, mesh, target_shape):
        g = self._check(mesh, target_shape)
        if isinstance(mesh, MeshImTime):
            return tr.iw_to_tau(g.data, mesh.beta, mesh.n_tau, self._moments_iw(g))
        moments = None
        if self.known_moments is not None:
            km = np.asarray(self.known_moments, dtype=complex)
            moments = tr.moments_from_tau(g.data, g.mesh.beta, 3 if g.mesh.n_tau >= 8 else 1)
            k = min(km.shape[0], moments.shape[0])
            moments[:k] = km[:k]
            if km.shape[0] > moments.shape[0]:
                moments = km
        return tr.tau_to_iw(g.data, mesh.beta, mesh.n_iw, moments)


class LegendreToMatsubara(_Transform):
    """``G(i w_n) = sum_l T_nl G_l`` (exact for the given coefficients)."""

    label = "LegendreToMatsubara"
    source_kind = (MeshLegendre,)
    target_kind = (MeshImFreq,)

    def evaluate(self, mesh, target_shape):
        g = self._check(mesh, target_shape)
        return tr.legendre_to_iw(g.data, mesh.n_iw)


class MatsubaraToLegendre(_Transform):
    """``G_l`` from ``G(i w_n)``, the tail beyond the mesh summed analytically."""

    label = "MatsubaraToLegendre"
    source_kind = (MeshImFreq,)
    target_kind = (MeshLegendre,)

    def evaluate(self, mesh, target_shape):
        g = self._check(mesh, target_shape)
        return tr.iw_to_legendre(g.data, mesh.beta, mesh.max_n, self._moments_iw(g))


class LegendreToTime(_Transform):
    """``G(tau) = sum_l sqrt(2l+1)/beta P_l(x(tau)) G_l``."""

    label = "LegendreToTime"
    source_kind = (MeshLegendre,)
    target_kind = (MeshImTime,)

    def evaluate(self, mesh, target_shape):
        g = self._check(mesh, target_shape)
        return tr.legendre_to_tau(g.data, mesh.beta, mesh.values())


class TimeToLegendre(_Transform):
    """``G_l = sqrt(2l+1) int P_l(x(tau)) G(tau) dtau`` (endpoint-corrected quadrature)."""

    label = "TimeToLegendre"
    source_kind = (MeshImTime,)
    target_kind = (MeshLegendre,)

    def evaluate(self, mesh, target_shape):
        g = self._check(mesh, target_shape)
        return tr.tau_to_legendre(g.data, mesh.beta, mesh.max_n)


def evaluate_into(g: Gf, rhs) -> None:
    """Implementation of ``g << rhs`` for a :class:`Gf`."""
    if isinstance(rhs, BlockGf):
        raise TypeError("cannot assign a BlockGf to a single Gf; assign block by block "
                        "(g << G['up']) or assign to a BlockGf")
    if isinstance(rhs, Gf):
        check_same_mesh(g.mesh, rhs.mesh, "assign")
        if rhs.target_shape != g.target_shape:
            raise ValueError(
                f"cannot assign a Gf with target shape {rhs.target_shape} to one with "
                f"{g.target_shape}"
            )
        g.data[...] = rhs.data
        return
    if isinstance(rhs, np.ndarray) and rhs.shape == g.data.shape:
        g.data[...] = rhs
        return
    vals = as_lazy(rhs).evaluate(g.mesh, g.target_shape)
    g.data[...] = np.broadcast_to(vals, g.data.shape)
