# SPDX-License-Identifier: Apache-2.0
"""Meshes of the light TRIQS layer: imaginary frequency, imaginary time, Legendre.

The constructors accept the keyword spellings of TRIQS 3.x and 4.x:

==============  =====================================  ==========================
mesh            TRIQS 3.0/3.1                          TRIQS 3.2+/4.x
==============  =====================================  ==========================
MeshImFreq      ``MeshImFreq(beta, S, n_max)``         ``MeshImFreq(beta, statistic, n_iw)``
MeshImTime      ``MeshImTime(beta, S, n_max)``         ``MeshImTime(beta, statistic, n_tau)``
MeshLegendre    ``MeshLegendre(beta, S, n_max)``       ``MeshLegendre(beta, statistic, max_n)``
==============  =====================================  ==========================

Point conventions are TRIQS's: a fermionic ``MeshImFreq`` with ``n_iw``
holds ``2 n_iw`` points ``n = -n_iw ... n_iw - 1`` (a bosonic one
``2 n_iw - 1`` points, ``n = -(n_iw - 1) ... n_iw - 1``); a ``MeshImTime``
with ``n_tau`` points includes both ends ``0`` and ``beta``; a
``MeshLegendre`` holds ``l = 0 ... max_n - 1``; a ``MeshReFreq`` (real
frequencies, ``MeshReFreq(window=(w_min, w_max), n_w=...)``) includes both ends of
its window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import UnknownParameterError

__all__ = ["MeshImFreq", "MeshImTime", "MeshLegendre", "MeshReFreq", "MeshPoint",
           "normalize_statistic"]

_STATISTICS = {"Fermion": "Fermion", "F": "Fermion", "Boson": "Boson", "B": "Boson"}


def normalize_statistic(s) -> str:
    """Return ``'Fermion'`` or ``'Boson'`` for any TRIQS spelling (``'F'``, ``'Boson'``...)."""
    if isinstance(s, bytes):
        s = s.decode()
    try:
        return _STATISTICS[s]
    except (KeyError, TypeError):
        raise ValueError(
            f"statistic={s!r} is not understood; use 'Fermion' (or 'F') or 'Boson' (or 'B')"
        ) from None


def _check_beta(beta) -> float:
    try:
        b = float(beta)
    except (TypeError, ValueError):
        raise TypeError(f"beta={beta!r} must be a positive real number") from None
    if not math.isfinite(b) or b <= 0:
        raise ValueError(f"beta={beta!r} must be a positive finite number (inverse temperature)")
    return b


def _check_count(value, name, minimum) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}={value!r} must be an integer")
    if value < minimum:
        raise ValueError(f"{name}={value} must be >= {minimum}")
    return int(value)


def _resolve(kind, args, kwargs, size_names, default_size):
    """Parse (beta, statistic, size) from the TRIQS 3.x and 4.x call forms."""
    names = ["beta", "statistic", "size"]
    vals = dict.fromkeys(names)
    if len(args) > 3:
        raise TypeError(f"{kind}() takes at most 3 positional arguments (beta, statistic, size)")
    for n_, a in zip(names, args):
        vals[n_] = a
    aliases = {"beta": "beta", "S": "statistic", "statistic": "statistic"}
    aliases.update({s: "size" for s in size_names})
    for k, v in kwargs.items():
        if k not in aliases:
            allowed = ", ".join(["beta", "statistic", "S", *size_names])
            raise UnknownParameterError(
                f"{kind}() got an unknown keyword {k!r}; allowed keywords: {allowed}"
            )
        target = aliases[k]
        if vals[target] is not None:
            raise TypeError(f"{kind}(): {target} given twice (as {k!r} and another spelling)")
        vals[target] = v
    if vals["beta"] is None:
        raise TypeError(f"{kind}() needs beta (e.g. {kind}(beta=10, statistic='Fermion', ...))")
    beta = _check_beta(vals["beta"])
    stat = normalize_statistic(vals["statistic"] if vals["statistic"] is not None else "Fermion")
    size = vals["size"] if vals["size"] is not None else default_size
    return beta, stat, size


@dataclass(frozen=True)
class MeshPoint:
    """A point of a mesh: ``index`` (TRIQS index, e.g. Matsubara n), ``linear_index``, ``value``."""

    index: int
    linear_index: int
    value: complex | float

    def __complex__(self):
        return complex(self.value)

    def __float__(self):
        return float(np.real(self.value))


class _Mesh:
    """Common part of the light meshes (equality, iteration, repr)."""

    _kind = "Mesh"
    beta: float
    statistic: str

    def _key(self):
        raise NotImplementedError

    def __eq__(self, other):
        return type(self) is type(other) and self._key() == other._key()

    def __hash__(self):
        return hash((type(self).__name__, self._key()))

    def __len__(self):
        return self.size

    def __iter__(self):
        vals = self.values()
        for i, idx in enumerate(self._indices()):
            yield MeshPoint(int(idx), i, vals[i])

    def copy(self):
        return self  # meshes are immutable

    def describe(self) -> str:
        """A one-line description used in error messages."""
        return repr(self)


class MeshImFreq(_Mesh):
    """Matsubara frequencies ``i omega_n`` on ``2 n_iw`` points (fermions).

    Parameters
    ----------
    beta : float
        Inverse temperature (> 0).
    statistic : {'Fermion', 'Boson'} (alias ``S``)
    n_iw : int (alias ``n_max``)
        Number of non-negative frequencies; default 1025.
    """

    _kind = "MeshImFreq"

    def __init__(self, *args, **kwargs):
        beta, stat, n_iw = _resolve(
            "MeshImFreq", args, kwargs, ("n_iw", "n_max", "n_points"), 1025
        )
        self.beta = beta
        self.statistic = stat
        self.n_iw = _check_count(n_iw, "n_iw", 1)

    def _key(self):
        return (self.beta, self.statistic, self.n_iw)

    @property
    def size(self) -> int:
        return 2 * self.n_iw if self.statistic == "Fermion" else 2 * self.n_iw - 1

    def first_index(self) -> int:
        return -self.n_iw if self.statistic == "Fermion" else -(self.n_iw - 1)

    def last_index(self) -> int:
        return self.n_iw - 1

    def positive_only(self) -> bool:
        return False

    def _indices(self):
        return np.arange(self.first_index(), self.last_index() + 1)

    def values(self) -> np.ndarray:
        """The points ``i omega_n`` as a complex array, shape ``(size,)``."""
        n = self._indices()
        shift = 1 if self.statistic == "Fermion" else 0
        return 1j * np.pi * (2 * n + shift) / self.beta

    def index_to_linear(self, n: int) -> int:
        return int(n) - self.first_index()

    def __repr__(self):
        return f"MeshImFreq(beta={self.beta:g}, statistic='{self.statistic}', n_iw={self.n_iw})"


class MeshImTime(_Mesh):
    """Uniform imaginary-time grid ``tau_k = k beta / (n_tau - 1)``, both ends included.

    Parameters
    ----------
    beta : float
    statistic : {'Fermion', 'Boson'} (alias ``S``)
    n_tau : int (alias ``n_max``), >= 2; default 10001.
    """

    _kind = "MeshImTime"

    def __init__(self, *args, **kwargs):
        beta, stat, n_tau = _resolve(
            "MeshImTime", args, kwargs, ("n_tau", "n_max", "n_points"), 10001
        )
        self.beta = beta
        self.statistic = stat
        self.n_tau = _check_count(n_tau, "n_tau", 2)

    def _key(self):
        return (self.beta, self.statistic, self.n_tau)

    @property
    def size(self) -> int:
        return self.n_tau

    @property
    def delta(self) -> float:
        """Grid spacing ``beta / (n_tau - 1)``."""
        return self.beta / (self.n_tau - 1)

    def _indices(self):
        return np.arange(self.n_tau)

    def values(self) -> np.ndarray:
        """The points ``tau_k`` as a float array, shape ``(n_tau,)``."""
        return np.linspace(0.0, self.beta, self.n_tau)

    def __repr__(self):
        return f"MeshImTime(beta={self.beta:g}, statistic='{self.statistic}', n_tau={self.n_tau})"


class MeshLegendre(_Mesh):
    """Legendre index ``l = 0 ... max_n - 1`` (Boehnke et al., PRB 84, 075145 (2011)).

    Parameters
    ----------
    beta : float
    statistic : {'Fermion', 'Boson'} (alias ``S``)
    max_n : int (aliases ``n_l``, ``n_max``), >= 1; default 30.
    """

    _kind = "MeshLegendre"

    def __init__(self, *args, **kwargs):
        beta, stat, max_n = _resolve(
            "MeshLegendre", args, kwargs, ("max_n", "n_max", "n_l", "n_points"), 30
        )
        self.beta = beta
        self.statistic = stat
        self.max_n = _check_count(max_n, "max_n", 1)

    def _key(self):
        return (self.beta, self.statistic, self.max_n)

    @property
    def size(self) -> int:
        return self.max_n

    def _indices(self):
        return np.arange(self.max_n)

    def values(self) -> np.ndarray:
        return np.arange(self.max_n)

    def __repr__(self):
        return (
            f"MeshLegendre(beta={self.beta:g}, statistic='{self.statistic}', max_n={self.max_n})"
        )


class MeshReFreq(_Mesh):
    """Real frequencies ``w_k = w_min + k (w_max - w_min) / (n_w - 1)``, ``k = 0 ... n_w - 1``.

    The call forms of TRIQS 3.x: ``MeshReFreq(window=(w_min, w_max), n_w=...)``,
    ``MeshReFreq(w_min, w_max, n_w)`` (keywords ``w_min``/``w_max`` as in TRIQS 3.2,
    ``omega_min``/``omega_max`` as in TRIQS 3.0/3.1; ``n_max`` for ``n_w``).  Stored in
    HDF5 as TRIQS does (``Format = "MeshReFreq"``: ``min``, ``max``, ``size``).

    A real-frequency mesh has no temperature: ``beta`` is NaN (``statistic`` is
    ``'Fermion'``), so the Matsubara operations of a ``Gf`` do not apply to it.

    Parameters
    ----------
    window : (float, float)
        ``(w_min, w_max)``, ``w_min < w_max``.
    n_w : int (aliases ``n_max``, ``n_points``), >= 2
        Number of frequencies, both ends of the window included.
    """

    _kind = "MeshReFreq"
    beta = float("nan")
    statistic = "Fermion"

    def __init__(self, *args, **kwargs):
        if len(args) > 3:
            raise TypeError("MeshReFreq() takes at most 3 positional arguments "
                            "(w_min, w_max, n_w)")
        aliases = {"window": "window", "w_min": "w_min", "omega_min": "w_min",
                   "w_max": "w_max", "omega_max": "w_max", "n_w": "n_w", "n_max": "n_w",
                   "n_points": "n_w"}
        vals = dict.fromkeys(("window", "w_min", "w_max", "n_w"))
        if len(args) == 2:  # MeshReFreq((w_min, w_max), n_w)
            vals["window"], vals["n_w"] = args
        else:
            vals.update(zip(("w_min", "w_max", "n_w"), args))
        for k, v in kwargs.items():
            if k not in aliases:
                raise UnknownParameterError(
                    f"MeshReFreq() got an unknown keyword {k!r}; allowed keywords: "
                    + ", ".join(aliases))
            if vals[aliases[k]] is not None:
                raise TypeError(f"MeshReFreq(): {aliases[k]} given twice")
            vals[aliases[k]] = v
        if vals["window"] is not None:
            if vals["w_min"] is not None or vals["w_max"] is not None:
                raise TypeError("MeshReFreq(): give either window=(w_min, w_max) or "
                                "w_min and w_max, not both")
            try:
                vals["w_min"], vals["w_max"] = vals["window"]
            except (TypeError, ValueError):
                raise TypeError(f"MeshReFreq(): window={vals['window']!r} must be a pair "
                                "(w_min, w_max)") from None
        missing = [k for k in ("w_min", "w_max", "n_w") if vals[k] is None]
        if missing:
            raise TypeError(f"MeshReFreq() needs {', '.join(missing)} (e.g. "
                            "MeshReFreq(window=(-5, 5), n_w=1001))")
        w_min, w_max = (float(vals[k]) for k in ("w_min", "w_max"))
        if not (math.isfinite(w_min) and math.isfinite(w_max) and w_min < w_max):
            raise ValueError(f"MeshReFreq(): the window ({w_min:g}, {w_max:g}) must be finite "
                             "with w_min < w_max")
        self.w_min, self.w_max = w_min, w_max
        self.n_w = _check_count(vals["n_w"], "n_w", 2)

    def _key(self):
        return (self.w_min, self.w_max, self.n_w)

    @property
    def size(self) -> int:
        return self.n_w

    @property
    def omega_min(self) -> float:
        """TRIQS 3.0/3.1's name of :attr:`w_min`."""
        return self.w_min

    @property
    def omega_max(self) -> float:
        """TRIQS 3.0/3.1's name of :attr:`w_max`."""
        return self.w_max

    @property
    def delta(self) -> float:
        """Mesh spacing ``(w_max - w_min) / (n_w - 1)``."""
        return (self.w_max - self.w_min) / (self.n_w - 1)

    def _indices(self):
        return np.arange(self.n_w)

    def values(self) -> np.ndarray:
        """The points ``w_k`` as a float array, shape ``(n_w,)``."""
        return np.linspace(self.w_min, self.w_max, self.n_w)

    def __repr__(self):
        return f"MeshReFreq(window=({self.w_min:g}, {self.w_max:g}), n_w={self.n_w})"
