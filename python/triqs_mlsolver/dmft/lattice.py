# SPDX-License-Identifier: Apache-2.0
"""Lattice self-consistency of single-band DMFT: the new hybridisation from the self-energy.

Given the impurity self-energy ``Sigma_s(i w_n)`` (Hartree part included, as
every solver of this package returns it), the lattice gives the local Green's
function and, through Dyson's equation for the Weiss field, the hybridisation
of the next impurity problem:

.. math::

    G_\\text{loc}(i\\omega_n) = \\int d\\epsilon\\, \\frac{\\rho(\\epsilon)}
        {i\\omega_n + \\mu - \\epsilon - \\Sigma(i\\omega_n)},\\qquad
    \\mathcal{G}_0^{-1} = G_\\text{loc}^{-1} + \\Sigma,\\qquad
    \\Delta = i\\omega_n + \\mu - \\mathcal{G}_0^{-1} .

Four lattices:

* :class:`Bethe` (half bandwidth ``D``, ``t = D/2``): the integral is the
  semicircle in closed form and the relation is exact in ``G``:
  :math:`\\Delta = t^2 G`.  The loop uses the impurity ``G`` there (no Dyson
  division, as in the TRIQS tutorials).
* :class:`BetheAFM`: the Bethe lattice with two sublattices for the Néel state,
  :math:`\\Delta_\\sigma = t^2 G_{-\\sigma}` (the impurity is sublattice A).
* :class:`DOSLattice`: a density of states given as a quadrature,
  ``rho(e) de -> (energies[i], weights[i])``.
* :class:`KSumLattice`: a k-sum, ``(1/N) sum_k 1/(z - eps_k)`` (or with
  weights ``w_k``); the dispersion is an array of ``eps_k`` or a callable
  ``dispersion(k_points)``.  For one band this is a quadrature with nodes
  ``eps_k``, so it is evaluated as a :class:`DOSLattice`.

**How to add a lattice.**  Subclass :class:`Lattice` and implement :meth:`Lattice.g_loc`
(pure arithmetic on arrays); set :attr:`Lattice.second_moment` (the ``1/(i w)``
weight of ``Delta``, used to express the loop's residual in units of ``G``),
:attr:`Lattice.half_bandwidth` and :attr:`Lattice.particle_hole_symmetric`,
and return a dict of plain values from :meth:`Lattice.describe` (it is stored
in archives).  :meth:`Lattice.hybridisation` then follows from the formulas
above.

Array axes: ``s`` spin (2), ``w`` Matsubara point (``2 n_iw``, TRIQS order),
``e`` quadrature node.  Energies in units of the half bandwidth ``D``.
"""

from __future__ import annotations

import math

import numpy as np

from ..gf.transforms import semicircle_g  # noqa: F401  (re-exported: part of this module's API)

__all__ = [
    "Lattice",
    "Bethe",
    "BetheAFM",
    "DOSLattice",
    "KSumLattice",
    "semicircle_g",
    "semicircle_dos",
    "dos_g_loc",
    "weiss_hybridisation",
    "hypercubic_dispersion",
    "uniform_k_grid",
]


# -- pure functions ------------------------------------------------------------------
def semicircle_dos(n_e, D=1.0):
    """Gauss quadrature of the semicircular DOS: ``int rho(e) f(e) de ~ sum_i w_i f(e_i)``.

    Gauss-Chebyshev of the second kind: ``e_i = D cos(i pi/(n_e+1))``,
    ``w_i = (2/(n_e+1)) sin^2(i pi/(n_e+1))``, exact for polynomials of degree
    ``2 n_e - 1``.  For ``f(e) = 1/(zeta - e)`` the error decays as
    ``r^(-2 n_e)`` with ``r = |z + sqrt(z^2 - 1)|``, ``z = zeta/D`` (the
    Bernstein ellipse through the pole); at ``zeta = i pi/beta`` that is
    ``r ~ 1 + pi/(beta D)``.

    Parameters
    ----------
    n_e : int
        Number of nodes (>= 1).
    D : float
        Half bandwidth.

    Returns
    -------
    energies, weights : ndarray (n_e,)
        Nodes (descending) and weights (summing to 1).
    """
    n_e = _positive_int(n_e, "n_e")
    theta = np.pi * np.arange(1, n_e + 1) / (n_e + 1)
    return D * np.cos(theta), 2.0 / (n_e + 1) * np.sin(theta) ** 2


def dos_g_loc(zeta_sw, energies, weights, *, chunk=512):
    """``G(zeta) = sum_e w_e / (zeta - e_e)`` for every point of ``zeta_sw``.

    Parameters
    ----------
    zeta_sw : complex ndarray (..., n_w)
        ``i w_n + mu - Sigma_s(i w_n)``.
    energies, weights : ndarray (n_e,)
        The quadrature of the DOS (``weights`` summing to 1).
    chunk : int
        Nodes summed at a time (bounds the temporary to ``size(zeta) x chunk``).

    Returns
    -------
    complex ndarray, the shape of ``zeta_sw``
    """
    z = np.asarray(zeta_sw, complex)
    flat = z.reshape(-1)
    e = np.asarray(energies, float)
    w = np.asarray(weights, float)
    out = np.zeros(flat.shape, complex)
    for i in range(0, e.size, chunk):
        out += (w[i:i + chunk][None, :] / (flat[:, None] - e[i:i + chunk][None, :])).sum(axis=1)
    return out.reshape(z.shape)


def weiss_hybridisation(iw, mu, Sigma_sw, G_loc_sw):
    """The hybridisation of the next impurity problem from the lattice's ``G_loc``.

    .. math:: \\mathcal{G}_0^{-1} = G_\\text{loc}^{-1} + \\Sigma,\\qquad
              \\Delta = i\\omega_n + \\mu - \\mathcal{G}_0^{-1}
                      = i\\omega_n + \\mu - \\Sigma - G_\\text{loc}^{-1} .

    Parameters
    ----------
    iw : complex ndarray (n_w,)
        Matsubara frequencies ``i w_n``.
    mu : float
        Chemical potential (the impurity level is ``-mu``).
    Sigma_sw, G_loc_sw : complex ndarray (2, n_w)
        Self-energy (Hartree part included) and local Green's function.

    Returns
    -------
    complex ndarray (2, n_w)
        ``Delta_s(i w_n)``.
    """
    return iw[None, :] + mu - np.asarray(Sigma_sw) - 1.0 / np.asarray(G_loc_sw)


def hypercubic_dispersion(k, t=0.25):
    """Nearest-neighbour cosine band ``eps(k) = -2 t sum_a cos k_a``.

    Parameters
    ----------
    k : ndarray (n_k, dim)
        Points of the Brillouin zone (radians, lattice constant 1).
    t : float
        Hopping; the half bandwidth is ``2 dim t``.

    Returns
    -------
    ndarray (n_k,)
    """
    k = np.atleast_2d(np.asarray(k, float))
    return -2.0 * t * np.cos(k).sum(axis=1)


def uniform_k_grid(n_k, dim, offset=0.0):
    """Uniform grid of the Brillouin zone ``[0, 2 pi)^dim``: ``k_a = 2 pi (j + offset)/n_k``.

    Parameters
    ----------
    n_k : int
        Points per direction.
    dim : int
        Dimension.
    offset : float
        Shift in units of the spacing (0: includes ``k = 0``; 0.5: Monkhorst-Pack).

    Returns
    -------
    ndarray (n_k**dim, dim)
    """
    n_k = _positive_int(n_k, "n_k")
    dim = _positive_int(dim, "dim")
    k1 = 2 * np.pi * (np.arange(n_k) + offset) / n_k
    grids = np.meshgrid(*([k1] * dim), indexing="ij")
    return np.stack([g.ravel() for g in grids], axis=1)


def _positive_int(v, name):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{name}={v!r} must be an integer >= 1")
    return int(v)


# -- lattice objects -------------------------------------------------------------------
class Lattice:
    """Base class of the lattice self-consistencies (see the module docstring).

    Attributes
    ----------
    name : str
        Short name (``'bethe'``, ``'dos'``, ``'ksum'``).
    second_moment : float
        ``int rho(e) e^2 de - (int rho(e) e de)^2``: the ``1/(i w)`` weight of
        ``Delta``.  The loop divides ``max |Delta_new - Delta|`` by it, which
        gives a residual in units of ``G`` (exactly ``max|G_new - G|`` on the
        Bethe lattice, where it is ``t^2``).
    half_bandwidth : float
        ``max |e|`` over the DOS (passed to the solvers as ``AIMParams.D``,
        the scale of their bath fits).
    particle_hole_symmetric : bool
        ``rho(e) = rho(-e)``: then ``mu = U/2`` is half filling and the loop
        can keep ``Re Delta = 0`` exactly (see :func:`~triqs_mlsolver.dmft.run_dmft`).
    """

    name = "lattice"
    second_moment: float = 1.0
    half_bandwidth: float = 1.0
    particle_hole_symmetric: bool = False
    #: Two sublattices related by a spin flip (the impurity is sublattice A): the loop
    #: must not average the spins, and the magnetisation is the staggered one.
    antiferromagnetic: bool = False

    def g_loc(self, iw, mu, Sigma_sw):
        """Local Green's function ``int rho(e) / (i w + mu - e - Sigma(i w)) de``.

        Parameters
        ----------
        iw : complex ndarray (n_w,)
        mu : float
        Sigma_sw : complex ndarray (2, n_w)

        Returns
        -------
        complex ndarray (2, n_w)
        """
        raise NotImplementedError(f"{type(self).__name__} must implement g_loc()")

    def hybridisation(self, iw, mu, Sigma_sw, G_imp_sw=None):
        """``(G_loc, Delta)`` of the next iteration from the impurity solution.

        ``G_loc = g_loc(iw, mu, Sigma)``, ``Delta = i w + mu - Sigma - 1/G_loc``
        (:func:`weiss_hybridisation`).  ``G_imp_sw`` (the impurity ``G``) is not
        needed here; :class:`Bethe` uses it instead of ``Sigma``.

        Returns
        -------
        G_loc, Delta : complex ndarray (2, n_w)
        """
        G_loc = self.g_loc(iw, mu, Sigma_sw)
        return G_loc, weiss_hybridisation(iw, mu, Sigma_sw, G_loc)

    def initial_hybridisation(self, kind, iw, mu, U):
        """Starting ``Delta``: the lattice with ``'metal'`` or ``'insulator'`` self-energy.

        ``'metal'``: the Hartree ``Sigma = U/2`` (at half filling the non-interacting
        lattice); ``'insulator'``: the atomic (Hubbard-I) ``Sigma = U/2 + U^2/(4 i w)``,
        which splits the band into two Hubbard bands.

        Returns
        -------
        complex ndarray (2, n_w)
        """
        if kind == "metal":
            sigma = np.full(iw.shape, U / 2, complex)
        elif kind == "insulator":
            sigma = U / 2 + U**2 / (4 * iw)
        else:
            raise ValueError(
                f"start={kind!r} is not understood; use 'metal', 'insulator', a previous "
                "DMFTRun or an array Delta_iw of shape (2, 2 n_iw)"
            )
        sigma = np.tile(sigma, (2, 1))
        return self.hybridisation(iw, mu, sigma, None)[1]

    def describe(self) -> dict:
        """Plain values describing the lattice (stored in archives)."""
        return {"name": self.name}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.describe().items()
                         if k != "name" and not isinstance(v, np.ndarray))
        return f"{type(self).__name__}({args})"


class Bethe(Lattice):
    """Bethe lattice (infinite coordination), semicircular DOS of half bandwidth ``D``.

    ``t = D/2``; the self-consistency is exact in ``G``:

    .. math:: \\Delta(i\\omega_n) = t^2 G(i\\omega_n),\\qquad
              \\mathcal{G}_0^{-1} = i\\omega_n + \\mu - t^2 G(i\\omega_n) .

    :meth:`hybridisation` uses the impurity ``G`` (which equals ``G_loc`` at
    self-consistency); :meth:`g_loc` is the semicircle of
    ``i w + mu - Sigma`` (:func:`semicircle_g`), for which
    ``i w + mu - Sigma - 1/G_loc = t^2 G_loc`` holds identically.

    Parameters
    ----------
    D : float
        Half bandwidth (> 0), the energy unit (default 1).
    """

    name = "bethe"
    particle_hole_symmetric = True

    def __init__(self, D=1.0):
        D = _positive_float(D, "D")
        self.D = D
        self.t = D / 2
        self.second_moment = D**2 / 4
        self.half_bandwidth = D

    def g_loc(self, iw, mu, Sigma_sw):
        return semicircle_g(iw[None, :] + mu - np.asarray(Sigma_sw), self.D)

    def hybridisation(self, iw, mu, Sigma_sw, G_imp_sw=None):
        """``(G, t^2 G)`` with ``G`` the impurity ``G`` (or, when ``G_imp_sw`` is None,
        the semicircle of ``i w + mu - Sigma``)."""
        G = self.g_loc(iw, mu, Sigma_sw) if G_imp_sw is None else np.asarray(G_imp_sw)
        return G, self.t**2 * G

    def describe(self):
        return {"name": self.name, "D": self.D}


class BetheAFM(Bethe):
    """Bethe lattice with two sublattices A and B for antiferromagnetic order.

    Every neighbour of an A site is a B site; in the Néel state B is A with the spins
    flipped, ``G_{B,s} = G_{A,-s}``, so one impurity (site A) suffices:

    .. math:: \\Delta_{A,\\sigma}(i\\omega_n) = t^2 G_{B,\\sigma}(i\\omega_n)
              = t^2 G_{A,-\\sigma}(i\\omega_n),\\qquad t = D/2 .

    The staggered magnetisation is ``m = n_{A,up} - n_{A,dn}``.  A spin-symmetric
    ``G`` gives the paramagnetic Bethe loop, so the paramagnet is a fixed point too: the
    starts break the symmetry (:meth:`initial_hybridisation`).

    Parameters
    ----------
    D : float
        Half bandwidth (> 0), the energy unit (default 1).
    """

    name = "bethe_afm"
    antiferromagnetic = True

    def hybridisation(self, iw, mu, Sigma_sw, G_imp_sw=None):
        """``(G_A, t^2 G_A with the spins exchanged)``; without ``G_imp_sw`` the
        two-sublattice ``G_A`` of the self-energy ``Sigma_A`` (:meth:`g_loc`)."""
        G = self.g_loc(iw, mu, Sigma_sw) if G_imp_sw is None else np.asarray(G_imp_sw)
        return G, self.t**2 * G[::-1]

    def g_loc(self, iw, mu, Sigma_sw):
        """``G_A`` of the Néel state with ``Sigma_A = Sigma_sw``, ``Sigma_B = Sigma_A``
        spin-flipped: ``G_{A,s} = 1/(z_s - t^2 G_{A,-s})``, ``z_s = i w + mu - Sigma_s``,
        solved in closed form (``G_{A,s} = z_{-s} g(sqrt(z_up z_dn))/sqrt(z_up z_dn)`` with
        ``g`` the semicircle; the root continued from ``z_s ~ i w`` at large ``w``)."""
        z = iw[None, :] + mu - np.asarray(Sigma_sw)
        zz = np.sqrt(z[0] * z[1])
        zz = np.where((zz / iw).real < 0, -zz, zz)  # the branch with zz ~ i w at large w
        g = semicircle_g(zz, self.D)
        return np.stack([z[1] * g / zz, z[0] * g / zz])

    def initial_hybridisation(self, kind, iw, mu, U):
        """Starting ``Delta`` of the Néel state.

        ``'afm'``: the fully polarised atom on site A (spin up occupied, spin down
        empty), ``G_up = 1/(i w + mu)``, ``G_dn = 1/(i w + mu - U)``; ``'metal'`` and
        ``'insulator'``: the paramagnetic starts of :class:`Bethe` with a staggered seed
        field ``0.05 D`` (a spin-symmetric start would stay paramagnetic).
        """
        if kind == "afm":
            G = np.stack([1.0 / (iw + mu), 1.0 / (iw + mu - U)])
            return self.t**2 * G[::-1]
        delta = Bethe.initial_hybridisation(self, kind, iw, mu, U)  # spin symmetric
        seed = 0.05 * self.D
        G = np.stack([1.0 / (1.0 / (delta[0] / self.t**2) + seed),
                      1.0 / (1.0 / (delta[1] / self.t**2) - seed)])
        return self.t**2 * G[::-1]


class DOSLattice(Lattice):
    """A lattice given by its density of states, as a quadrature.

    .. math:: G_\\text{loc}(i\\omega_n) = \\sum_i
              \\frac{w_i}{i\\omega_n + \\mu - \\epsilon_i - \\Sigma(i\\omega_n)}
              \\approx \\int d\\epsilon
              \\frac{\\rho(\\epsilon)}{i\\omega_n + \\mu - \\epsilon - \\Sigma(i\\omega_n)} .

    Parameters
    ----------
    energies : array_like (n_e,)
        Quadrature nodes ``e_i`` (units of ``D``).
    weights : array_like (n_e,)
        ``w_i ~ rho(e_i) de_i``, non-negative, summing to 1 (a histogram of a DOS,
        the weights of a Gauss rule, ``1/N`` for ``N`` k-points, ...).
    name : str
        Name stored in archives.

    Notes
    -----
    The quadrature error at ``zeta = i w_n + mu - Sigma`` is set by the
    distance of ``zeta`` from the band: smallest at the first Matsubara
    frequency of a metal, ``Im zeta ~ pi/beta``.  :func:`semicircle_dos`
    gives a Gauss rule for the semicircle (error ``~ (1 + pi/(beta D))^(-2 n_e)``).
    """

    name = "dos"

    def __init__(self, energies, weights, *, name="dos"):
        e = np.asarray(energies, float).ravel()
        w = np.asarray(weights, float).ravel()
        if e.size == 0 or e.shape != w.shape:
            raise ValueError(
                f"energies ({e.size}) and weights ({w.size}) must be non-empty 1-d arrays of "
                "the same length"
            )
        if not (np.all(np.isfinite(e)) and np.all(np.isfinite(w))):
            raise ValueError("energies and weights must be finite numbers")
        if np.any(w < 0):
            raise ValueError(
                f"weights must be >= 0 (the smallest is {w.min():.3g}); a DOS quadrature has "
                "non-negative weights rho(e_i) de_i"
            )
        total = float(w.sum())
        if abs(total - 1.0) > 1e-6:
            raise ValueError(
                f"the weights sum to {total:.8g}, not 1; normalise them "
                "(weights / weights.sum()) or check the grid spacing"
            )
        self.energies, self.weights, self.name = e, w, str(name)
        mean = float(w @ e)
        self.mean = mean
        self.second_moment = float(w @ (e - mean) ** 2)
        if self.second_moment <= 0:
            raise ValueError(
                "the DOS is a single delta peak (zero variance): there is no band to "
                "hybridise with; give at least two distinct energies"
            )
        self.half_bandwidth = float(np.abs(e).max())
        self.particle_hole_symmetric = self._is_symmetric()

    def _is_symmetric(self) -> bool:
        """``rho(e) = rho(-e)``: ``Re G(i y) = -sum_i w_i e_i / (y^2 + e_i^2)`` vanishes
        for every real ``y`` (the Stieltjes transform fixes the DOS), checked on a
        logarithmic set of ``y`` relative to the band scale."""
        scale = max(self.half_bandwidth, 1e-300)
        y = scale * np.logspace(-3, 2, 26)
        re = (self.weights[None, :] * self.energies[None, :]
              / (y[:, None] ** 2 + self.energies[None, :] ** 2)).sum(axis=1)
        size = (self.weights[None, :] * np.abs(self.energies[None, :])
                / (y[:, None] ** 2 + self.energies[None, :] ** 2)).sum(axis=1)
        return bool(np.all(np.abs(re) <= 1e-10 * np.maximum(size, 1e-300)))

    def g_loc(self, iw, mu, Sigma_sw):
        Sigma_sw = np.asarray(Sigma_sw, complex)
        zeta = iw[None, :] + mu - Sigma_sw
        if np.array_equal(Sigma_sw[0], Sigma_sw[1]):
            g = dos_g_loc(zeta[0], self.energies, self.weights)
            return np.stack([g, g])
        return dos_g_loc(zeta, self.energies, self.weights)

    def describe(self):
        return {"name": self.name, "energies": self.energies, "weights": self.weights,
                "n_energies": int(self.energies.size)}


class KSumLattice(DOSLattice):
    """A single-band lattice given by its dispersion on a k-grid (the "k-sum hook").

    .. math:: G_\\text{loc}(i\\omega_n) = \\sum_k
              \\frac{w_k}{i\\omega_n + \\mu - \\epsilon_k - \\Sigma(i\\omega_n)},
              \\qquad \\sum_k w_k = 1 .

    Parameters
    ----------
    dispersion : callable or array_like
        ``dispersion(k_points) -> eps_k`` (an array of shape ``(N,)``), or the
        array of ``eps_k`` itself (any shape, flattened).
    k_points : ndarray (N, dim), optional
        The k-points; needed (only) when ``dispersion`` is callable, e.g.
        :func:`uniform_k_grid`.
    weights : array_like (N,), optional
        ``w_k`` summing to 1; default ``1/N``.
    name : str
        Name stored in archives.

    Notes
    -----
    With a k-independent ``Sigma`` the sum depends on ``eps_k`` only, so equal
    energies (to 1e-14: no binning) are merged and the sum is evaluated as a
    :class:`DOSLattice` over the distinct energies.  ``n_k`` attribute: the
    number of k-points.
    """

    name = "ksum"

    def __init__(self, dispersion, k_points=None, weights=None, *, name="ksum"):
        if callable(dispersion):
            if k_points is None:
                raise ValueError(
                    "a callable dispersion needs k_points=... (an array (N, dim), e.g. "
                    "uniform_k_grid(n_k, dim))"
                )
            eps = np.asarray(dispersion(np.asarray(k_points, float)), float)
            n_pts = np.atleast_2d(np.asarray(k_points)).shape[0]
            if eps.shape != (n_pts,):
                raise ValueError(
                    f"dispersion(k_points) returned shape {eps.shape}; expected ({n_pts},), "
                    "one energy per k-point"
                )
        else:
            if k_points is not None:
                raise ValueError(
                    "k_points is only used with a callable dispersion; with an array of "
                    "eps_k leave it out"
                )
            eps = np.asarray(dispersion, float).ravel()
        if weights is None:
            w = np.full(eps.size, 1.0 / max(eps.size, 1))
        else:
            w = np.asarray(weights, float).ravel()
            if w.shape != eps.shape:
                raise ValueError(f"weights has {w.size} entries for {eps.size} k-points")
        if eps.size == 0 or not np.all(np.isfinite(eps)):
            raise ValueError("the dispersion must give finite energies for at least one k-point")
        # energies equal to 1e-14 (round-off of sums of cosines) are merged: the change of
        # G is <= 5e-15 |G|^2, far below any quadrature error
        uniq, inverse = np.unique(np.round(eps, 14), return_inverse=True)
        merged = np.bincount(inverse.ravel(), weights=w, minlength=uniq.size)
        super().__init__(uniq, merged, name=name)
        self.n_k = int(eps.size)

    @classmethod
    def hypercubic(cls, dim, n_k, D=1.0, *, offset=0.0):
        """Nearest-neighbour hypercubic lattice (chain, square, cubic) of half bandwidth ``D``.

        ``eps(k) = -2 t sum_a cos k_a`` with ``t = D/(2 dim)``, on the uniform
        ``n_k^dim`` grid :func:`uniform_k_grid` (even ``n_k`` keeps the grid
        invariant under ``k -> k + (pi, ..., pi)``, hence a particle-hole
        symmetric DOS).
        """
        dim = _positive_int(dim, "dim")
        D = _positive_float(D, "D")
        t = D / (2 * dim)
        k = uniform_k_grid(n_k, dim, offset)
        lat = cls(lambda kk: hypercubic_dispersion(kk, t), k_points=k,
                  name={1: "chain", 2: "square", 3: "cubic"}.get(dim, f"hypercubic{dim}"))
        lat.D, lat.t, lat.dim = D, t, dim
        return lat

    def describe(self):
        d = super().describe()
        d["n_k"] = self.n_k
        for key in ("dim", "D", "t"):  # set by hypercubic()
            if hasattr(self, key):
                d[key] = getattr(self, key)
        return d


def _positive_float(v, name):
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name}={v!r} must be a positive number")
    v = float(v)
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name}={v!r} must be a positive finite number")
    return v
