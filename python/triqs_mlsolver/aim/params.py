# SPDX-License-Identifier: Apache-2.0
"""Parameters of the single-orbital Anderson impurity model (AIM).

.. math::

    H = \\sum_\\sigma \\epsilon_{d\\sigma} n_{d\\sigma} + U n_{d\\uparrow} n_{d\\downarrow}
      + \\sum_{k\\sigma} \\epsilon_{k\\sigma} n_{k\\sigma}
      + \\sum_{k\\sigma} V_{k\\sigma} (d^\\dagger_\\sigma c_{k\\sigma} + h.c.)

with ``eps_d = -mu`` (so half filling is ``mu = U/2`` with a particle-hole
symmetric bath), energies in units of the half bandwidth ``D``.  The bath is
either discrete (``eps_k``, ``V_k``) or a continuous hybridisation
``Delta(i w_n)`` on the fermionic Matsubara mesh.  Spin index 0 = up, 1 = down.

Axis letters of raw arrays: ``s`` spin (2), ``k`` bath site, ``w`` Matsubara
point (``2 n_iw``, TRIQS order), ``t`` tau point, ``l`` Legendre index.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..gf.transforms import matsubara_freqs

__all__ = ["AIMParams", "delta_from_bath"]


def _as_spin_array(x, name, length=None):
    a = np.array(x, dtype=float)
    if a.ndim == 0 or (length is not None and a.ndim == 1 and a.shape[0] == length):
        a = np.broadcast_to(a, (2, *a.shape)).copy()
    if a.shape[0] != 2:
        raise ValueError(
            f"{name} must be a number/1-d array (spin degenerate) or have a leading spin "
            f"axis of length 2; got shape {a.shape}"
        )
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return a


def delta_from_bath(eps_sk, V_sk, iw) -> np.ndarray:
    """``Delta_s(i w) = sum_k V_sk^2 / (i w - eps_sk)``, shape ``(2, len(iw))``."""
    eps_sk = np.asarray(eps_sk, float)
    V_sk = np.asarray(V_sk, float)
    return np.einsum("sk,skw->sw", V_sk**2, 1.0 / (iw[None, None, :] - eps_sk[:, :, None]))


@dataclass
class AIMParams:
    """A single-orbital AIM.

    Parameters
    ----------
    U : float
        Hubbard interaction (real, >= 0).
    mu : float or array (2,)
        Chemical potential per spin; the impurity level is ``eps_d = -mu``.
    beta : float
        Inverse temperature (> 0).
    eps_k, V_k : array (k,) or (2, k), optional
        Discrete bath energies and hoppings (spin degenerate if 1-d).
    Delta_iw : array (2 n_iw,) or (2, 2 n_iw), complex, optional
        Continuous hybridisation on the Matsubara mesh (instead of a discrete bath).
    D : float
        Half bandwidth (energy unit), default 1.

    Exactly one of (``eps_k``, ``V_k``) and ``Delta_iw`` may be given; with
    neither, the impurity is an isolated atom.
    """

    U: float
    mu: float | np.ndarray
    beta: float
    eps_k: np.ndarray | None = None
    V_k: np.ndarray | None = None
    Delta_iw: np.ndarray | None = None
    D: float = 1.0
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if isinstance(self.U, complex) or (isinstance(self.U, np.ndarray) and
                                           np.iscomplexobj(self.U)):
            raise ValueError(f"U={self.U} must be real")
        try:
            self.U = float(self.U)
            self.beta = float(self.beta)
        except (TypeError, ValueError):
            raise TypeError("U and beta must be real numbers") from None
        if not math.isfinite(self.U) or self.U < 0:
            raise ValueError(f"U={self.U} must be a finite number >= 0 (repulsive Hubbard U)")
        if not math.isfinite(self.beta) or self.beta <= 0:
            raise ValueError(f"beta={self.beta} must be a positive finite number")
        self.mu = _as_spin_array(self.mu, "mu")
        if (self.eps_k is None) != (self.V_k is None):
            raise ValueError("give both eps_k and V_k for a discrete bath (or neither)")
        if self.eps_k is not None:
            if self.Delta_iw is not None:
                raise ValueError("give either a discrete bath (eps_k, V_k) or Delta_iw, not both")
            e = np.atleast_1d(np.asarray(self.eps_k, float))
            self.eps_k = _as_spin_array(e, "eps_k", e.shape[-1])
            v = np.atleast_1d(np.asarray(self.V_k, float))
            self.V_k = _as_spin_array(v, "V_k", v.shape[-1])
            if self.eps_k.shape != self.V_k.shape:
                raise ValueError(
                    f"eps_k {self.eps_k.shape} and V_k {self.V_k.shape} have different shapes"
                )
        if self.Delta_iw is not None:
            d = np.array(self.Delta_iw, dtype=complex)
            if d.ndim == 1:
                d = np.broadcast_to(d, (2, d.shape[0])).copy()
            if d.ndim != 2 or d.shape[0] != 2 or d.shape[1] % 2:
                raise ValueError(
                    "Delta_iw must have shape (2 n_iw,) or (2, 2 n_iw) on the fermionic mesh"
                )
            if not np.all(np.isfinite(d)):
                raise ValueError("Delta_iw contains NaN or infinite values")
            self.Delta_iw = d
        if not (math.isfinite(self.D) and self.D > 0):
            raise ValueError(f"D={self.D} must be positive")

    # -- derived quantities -------------------------------------------------
    @property
    def eps_d(self) -> np.ndarray:
        return -self.mu

    @property
    def n_bath(self) -> int:
        return 0 if self.eps_k is None else self.eps_k.shape[1]

    @property
    def has_discrete_bath(self) -> bool:
        return self.eps_k is not None

    @property
    def spin_symmetric(self) -> bool:
        same = self.mu[0] == self.mu[1]
        if self.eps_k is not None:
            same &= np.array_equal(self.eps_k[0], self.eps_k[1]) and np.array_equal(
                self.V_k[0], self.V_k[1]
            )
        if self.Delta_iw is not None:
            same &= np.array_equal(self.Delta_iw[0], self.Delta_iw[1])
        return bool(same)

    def iw(self, n_iw: int) -> np.ndarray:
        return matsubara_freqs(self.beta, n_iw)

    def delta_iw(self, n_iw: int) -> np.ndarray:
        """``Delta_s(i w_n)``, shape ``(2, 2 n_iw)``."""
        if self.Delta_iw is not None:
            if self.Delta_iw.shape[1] != 2 * n_iw:
                raise ValueError(
                    f"Delta_iw has {self.Delta_iw.shape[1] // 2} positive frequencies, "
                    f"but n_iw={n_iw} was requested"
                )
            return self.Delta_iw
        if self.eps_k is None:
            return np.zeros((2, 2 * n_iw), complex)
        return delta_from_bath(self.eps_k, self.V_k, self.iw(n_iw))

    def g0_iw(self, n_iw: int) -> np.ndarray:
        """``G0_s(i w) = 1 / (i w + mu_s - Delta_s(i w))``, shape ``(2, 2 n_iw)``."""
        return 1.0 / (self.iw(n_iw)[None, :] + self.mu[:, None] - self.delta_iw(n_iw))

    def delta_moments(self) -> np.ndarray | None:
        """``sum_k V_k^2`` per spin (the 1/iw moment of Delta), if the bath is discrete."""
        if self.V_k is None:
            return None
        return np.sum(self.V_k**2, axis=1)

    def is_particle_hole_symmetric(self, tol: float = 1e-12) -> bool:
        """``mu = U/2`` and a bath symmetric under ``eps -> -eps``."""
        if np.any(np.abs(self.mu - self.U / 2) > tol):
            return False
        if self.eps_k is None:
            if self.Delta_iw is None:
                return True
            return bool(np.abs(self.Delta_iw.real).max() < tol)
        for s in range(2):
            a = sorted(zip(np.round(self.eps_k[s], 12), np.round(np.abs(self.V_k[s]), 12)))
            b = sorted(zip(np.round(-self.eps_k[s], 12), np.round(np.abs(self.V_k[s]), 12)))
            if not np.allclose(np.array(a), np.array(b), atol=tol):
                return False
        return True

    def as_dict(self) -> dict:
        d = {"U": self.U, "mu": self.mu, "beta": self.beta, "D": self.D}
        if self.eps_k is not None:
            d.update(eps_k=self.eps_k, V_k=self.V_k)
        if self.Delta_iw is not None:
            d["Delta_iw"] = self.Delta_iw
        return d
