# SPDX-License-Identifier: Apache-2.0
"""Light ``triqs.lattice``: Bravais lattices, tight-binding Hamiltonians, superlattices, DOS.

Served by ``triqs-mlsolver run`` when TRIQS is not installed, under TRIQS's names
(:data:`SERVED`)::

    from triqs.lattice.tight_binding import TBLattice
    H = TBLattice(units=[(1, 0, 0), (0, 1, 0)],
                  hoppings={(1, 0): [[-t]], (-1, 0): [[-t]], (0, 1): [[-t]], (0, -1): [[-t]]})
    H.dispersion([0.5, 0.5, 0])          # -> array([4 t])  (k in reciprocal-lattice units)

Conventions (those of TRIQS 3.2)
--------------------------------
* ``units``: the lattice vectors as rows.  The number of rows is the dimension ``ndim``
  (1 to 3); only the leading ``ndim x ndim`` block is used, so ``[(1, 0, 0), (0, 1, 0)]``
  is the unit square lattice.  The basis is completed to three vectors (``units``
  property, 3 x 3).
* ``hoppings``: ``{displacement: matrix}``, the displacement in integer multiples of
  the lattice vectors (``ndim`` components), the matrix ``n_orb x n_orb`` over the
  orbitals of the unit cell.  Every displacement ``R`` needs ``-R`` with the Hermitian
  conjugate matrix (``t(-R) = t(R)^dagger``), so that ``h(k)`` is Hermitian.
* ``k`` vectors are in units of the reciprocal lattice vectors (fractional
  coordinates): ``h(k) = sum_R t(R) exp(2 pi i k.R)``; the square lattice's M point
  is ``(0.5, 0.5)``.

Not served (the message names the API): ``get_kmesh``/``get_rmesh`` and
``fourier``/``dispersion`` on a ``MeshBrZone`` (the light ``triqs.gf`` has no
Brillouin-zone meshes), ``dos_patch`` and ``triqs.lattice.bz_patch``, HDF5 storage of
lattices, ``triqs.lattice.utils`` (Wannier90 import, k paths).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np

__all__ = [
    "BravaisLattice",
    "BrillouinZone",
    "TightBinding",
    "TBLattice",
    "TBSuperLattice",
    "DOS",
    "DOSFromFunction",
    "dos_from_file",
    "dos",
    "dos_patch",
    "energies_on_bz_grid",
    "energies_on_bz_path",
    "energy_matrix_on_bz_path",
    "hopping_stack",
]

_LATTICE_NAMES = ("BravaisLattice", "BrillouinZone", "TightBinding", "dos", "dos_patch")
#: TRIQS 2.x / 3.1 also export the k-path helpers from ``tight_binding``.
_TB_NAMES = (*_LATTICE_NAMES, "TBLattice", "energies_on_bz_grid", "energies_on_bz_path",
             "energy_matrix_on_bz_path", "hopping_stack")

#: ``{TRIQS module: names served from here}`` (see :mod:`triqs_mlsolver.light`).
SERVED = {
    "triqs.lattice": _LATTICE_NAMES,
    "triqs.lattice.tight_binding": _TB_NAMES,
    "triqs.lattice.super_lattice": ("TBSuperLattice",),
    "pytriqs.lattice": _LATTICE_NAMES,
    "pytriqs.lattice.tight_binding": _TB_NAMES,
    "pytriqs.lattice.super_lattice": ("TBSuperLattice",),
}

#: |det| below which lattice vectors count as dependent (TRIQS uses the same 1e-10).
_ALMOST_ZERO = 1e-10
#: Largest |t(-R) - t(R)^dagger| accepted for a Hermitian h(k) (TRIQS: 1e-12).
_HERMITIAN_ATOL = 1e-12
#: Complex entries per temporary array in the vectorised k loops (16 MiB).
_CHUNK = 1 << 20


def _not_served(api, what):
    return NotImplementedError(
        f"{api} is not served by the light TRIQS layer of triqs-mlsolver ({what}). "
        "Install TRIQS (https://triqs.github.io) to use it: `triqs-mlsolver run` then uses the "
        "real TRIQS and replaces only the impurity solver.")


# -- Bravais lattice and Brillouin zone ------------------------------------------------------
def _complete_basis(units):
    """``(units_3x3, ndim)`` from the rows of ``units`` (TRIQS's completion of the basis)."""
    try:
        u = np.array(units, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"units {units!r} is not a matrix of numbers; give the lattice "
                         "vectors as rows, e.g. units=[(1, 0, 0), (0, 1, 0)]") from None
    if u.ndim != 2 or not 1 <= u.shape[0] <= 3 or u.shape[1] < u.shape[0] or u.shape[1] > 3:
        raise ValueError(
            f"units has shape {u.shape}; give 1 to 3 lattice vectors as rows with at least as "
            "many components as vectors (at most 3), e.g. [(1, 0, 0), (0, 1, 0)] for a "
            "square lattice")
    ndim = u.shape[0]
    full = np.zeros((3, 3))
    full[:ndim, :ndim] = u[:ndim, :ndim]  # only the leading ndim x ndim block counts
    if ndim == 1:
        a = full[0, 0]
        if abs(a) < _ALMOST_ZERO:
            raise ValueError(f"units {units!r}: the lattice vector has zero length")
        full[1] = (0.0, 1.0, 0.0)
        full[2] = (0.0, 0.0, -np.sign(a))  # e_y x (a e_x), normalised, as TRIQS completes it
    elif ndim == 2:
        det = full[0, 0] * full[1, 1] - full[0, 1] * full[1, 0]
        if abs(det) < _ALMOST_ZERO:
            raise ValueError(f"units {units!r}: the 2 lattice vectors are not independent")
        full[2] = (0.0, 0.0, np.sign(det))  # a1 x a2, normalised
    elif abs(np.linalg.det(full)) < _ALMOST_ZERO:
        raise ValueError(f"units {units!r}: the 3 lattice vectors are not independent")
    return full, ndim


class BravaisLattice:
    """A Bravais lattice with orbitals in its unit cell (``triqs.lattice.BravaisLattice``).

    Parameters
    ----------
    units : array_like, shape (ndim, m), 1 <= ndim <= m <= 3
        Lattice vectors as rows; only the leading ``ndim x ndim`` block is used.
        Default: the unit cubic lattice (TRIQS 3.2's default).
    orbital_positions : list of 3-vectors, optional
        Positions of the orbitals in the unit cell (real-space coordinates); default
        ``[(0, 0, 0)]``.  Shorter vectors are padded with zeros.
    atom_orb_name : list of str, optional
        Names of the orbitals (alias ``orbital_names``); default empty strings.

    Attributes
    ----------
    units : ndarray, shape (3, 3)
        The lattice vectors as rows, completed to a basis of space.
    ndim, n_orbitals : int
    orbital_positions : list of ndarray, shape (3,)
    orbital_names : list of str
    """

    def __init__(self, units=None, orbital_positions=None, atom_orb_name=None, *,
                 orbital_names=None):
        if atom_orb_name is not None and orbital_names is not None:
            raise TypeError("BravaisLattice: give the orbital names once, as atom_orb_name "
                            "or orbital_names")
        names = atom_orb_name if atom_orb_name is not None else orbital_names
        self._units, self._ndim = _complete_basis(np.eye(3) if units is None else units)
        if orbital_positions is None:
            orbital_positions = [(0.0, 0.0, 0.0)]
        positions = []
        for p in orbital_positions:
            v = np.array(p, dtype=float).ravel()
            if v.size > 3:
                raise ValueError(f"orbital position {p!r} has more than 3 components")
            positions.append(np.concatenate([v, np.zeros(3 - v.size)]))
        if not positions:
            raise ValueError("orbital_positions is empty; give at least one, e.g. [(0, 0, 0)]")
        if names is None or len(names) == 0:
            names = [""] * len(positions)
        names = [str(x) for x in names]
        if len(names) != len(positions):
            raise ValueError(f"{len(names)} orbital names for {len(positions)} orbital "
                             "positions; give one name per orbital")
        self._positions, self._names = positions, names

    @property
    def units(self):
        """Lattice vectors as rows, completed to three (3 x 3)."""
        return self._units.copy()

    @property
    def ndim(self):
        """Number of dimensions of the lattice."""
        return self._ndim

    @property
    def n_orbitals(self):
        """Number of orbitals in the unit cell."""
        return len(self._positions)

    @property
    def orbital_positions(self):
        """The orbital positions (3-vectors)."""
        return [p.copy() for p in self._positions]

    @property
    def orbital_names(self):
        """The orbital names."""
        return list(self._names)

    def lattice_to_real_coordinates(self, x):
        """Real-space position ``sum_i x_i a_i`` (3-vector) of lattice coordinates ``x``."""
        x = np.asarray(x, dtype=float).ravel()
        if x.size < self._ndim:
            raise ValueError(f"x has {x.size} components; the lattice has ndim={self._ndim}")
        return x[:self._ndim] @ self._units[:self._ndim]

    def __eq__(self, other):
        return (isinstance(other, BravaisLattice) and self._ndim == other._ndim
                and self.n_orbitals == other.n_orbitals
                and np.array_equal(self._units, other._units))

    def __hash__(self):
        return hash((self._ndim, self.n_orbitals, self._units.tobytes()))

    def __repr__(self):
        return (f"Bravais Lattice with dimension {self._ndim}, units "
                f"{self._units[:self._ndim, :self._ndim].tolist()}, n_orbitals {self.n_orbitals}")

    __str__ = __repr__


class BrillouinZone:
    """The Brillouin zone of a :class:`BravaisLattice` (``triqs.lattice.BrillouinZone``).

    Attributes
    ----------
    units : ndarray, shape (3, 3)
        Reciprocal lattice vectors as rows, ``b_i . a_j = 2 pi delta_ij``.
    ndim : int
    lattice : BravaisLattice
    """

    def __init__(self, bl):
        if not isinstance(bl, BravaisLattice):
            raise TypeError(f"BrillouinZone(bl) takes a BravaisLattice, not {type(bl).__name__}")
        self._bl = bl
        self._units = 2 * np.pi * np.linalg.inv(bl.units.T)

    @property
    def units(self):
        """Reciprocal lattice vectors as rows (3 x 3)."""
        return self._units.copy()

    @property
    def ndim(self):
        return self._bl.ndim

    @property
    def lattice(self):
        """The underlying :class:`BravaisLattice`."""
        return self._bl

    def __eq__(self, other):
        return isinstance(other, BrillouinZone) and self._bl == other._bl

    def __hash__(self):
        return hash(("bz", hash(self._bl)))

    def __repr__(self):
        return f"Brillouin Zone of {self._bl!r}"

    __str__ = __repr__


# -- tight binding ---------------------------------------------------------------------------
def _displacement(key, ndim):
    try:
        d = np.array(key).ravel()
        ok = d.size == ndim and np.all(np.asarray(d, dtype=float) == np.rint(d.astype(float)))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(
            f"displacement {key!r} must be {ndim} integers (multiples of the {ndim} lattice "
            f"vectors), e.g. {tuple([1] + [0] * (ndim - 1))}")
    return d.astype(float).astype(np.int64)


def _hopping_matrix(value, n_orb, key):
    try:
        m = np.array(value, dtype=complex)
    except (TypeError, ValueError):
        m = None
    if m is None or m.shape != (n_orb, n_orb):
        shape = None if m is None else m.shape
        raise ValueError(
            f"hopping matrix of displacement {tuple(key)} has shape {shape}; it must be "
            f"{n_orb} x {n_orb} (orbitals of the unit cell), e.g. [[t]] for one orbital")
    return m


class TightBinding:
    """A tight-binding Hamiltonian on a Bravais lattice (``triqs.lattice.TightBinding``).

    ``TightBinding(bl, hoppings)`` or ``TightBinding(bl, displ_vec, overlap_mat_vec)``.

    Parameters
    ----------
    bl : BravaisLattice
    hoppings : dict
        ``{displacement (ndim ints): matrix (n_orb x n_orb)}``.
    displ_vec, overlap_mat_vec : sequences
        The same as two parallel lists.

    Raises
    ------
    ValueError
        A displacement is not ``ndim`` integers, a matrix is not ``n_orb x n_orb``, or
        the opposite displacement with the Hermitian-conjugate matrix is missing.
    """

    def __init__(self, bl, hoppings=None, overlap_mat_vec=None, *, displ_vec=None):
        if not isinstance(bl, BravaisLattice):
            raise TypeError(f"TightBinding: bl must be a BravaisLattice, not {type(bl).__name__}")
        if overlap_mat_vec is not None:
            if hoppings is not None and displ_vec is not None:
                raise TypeError("TightBinding: give displ_vec once")
            displ = hoppings if displ_vec is None else displ_vec
            if displ is None or len(displ) != len(overlap_mat_vec):
                raise ValueError("TightBinding: displ_vec and overlap_mat_vec must have the "
                                 "same length")
            items = list(zip(displ, overlap_mat_vec))
        elif displ_vec is not None:
            raise TypeError("TightBinding: displ_vec needs overlap_mat_vec")
        else:
            if hoppings is None:
                hoppings = {}
            if not isinstance(hoppings, Mapping):
                raise TypeError("hoppings must be a mapping type (dict) "
                                "{displacement: hopping matrix}")
            items = list(hoppings.items())
        self._bl = bl
        n, ndim = bl.n_orbitals, bl.ndim
        displ = [_displacement(k, ndim) for k, _ in items]
        mats = [_hopping_matrix(v, n, k) for (k, v) in items]
        self._displ = np.array(displ, dtype=np.int64).reshape(len(items), ndim)
        self._mats = np.array(mats, dtype=complex).reshape(len(items), n, n)
        self._check_hermitian()

    def _check_hermitian(self):
        index = {tuple(d): i for i, d in enumerate(self._displ)}
        if len(index) != len(self._displ):
            raise ValueError("a displacement is given twice in the hoppings")
        for i, d in enumerate(self._displ):
            j = index.get(tuple(-d))
            if j is None:
                raise ValueError(
                    f"the opposite of displacement {tuple(int(x) for x in d)} is missing: "
                    f"give {tuple(int(x) for x in -d)} with the Hermitian-conjugate matrix "
                    "too, so that h(k) is Hermitian")
            dev = np.abs(self._mats[i] - self._mats[j].conj().T).max()
            if dev > _HERMITIAN_ATOL:
                raise ValueError(
                    f"hopping matrix of displacement {tuple(int(x) for x in d)} is not the "
                    f"Hermitian conjugate of the one of {tuple(int(x) for x in -d)} "
                    f"(max deviation {dev:.3g}); h(k) would not be Hermitian")

    # -- structure
    @property
    def lattice(self):
        """The underlying :class:`BravaisLattice`."""
        return self._bl

    @property
    def displ_vec(self):
        """The displacements (integer arrays of length ndim)."""
        return [d.copy() for d in self._displ]

    @property
    def overlap_mat_vec(self):
        """The hopping matrices, in the order of :attr:`displ_vec`."""
        return [m.copy() for m in self._mats]

    @property
    def n_orbitals(self):
        return self._bl.n_orbitals

    def lattice_to_real_coordinates(self, x):
        """See :meth:`BravaisLattice.lattice_to_real_coordinates`."""
        return self._bl.lattice_to_real_coordinates(x)

    # -- h(k)
    def _k_array(self, k, api):
        if isinstance(k, (int, np.integer)) or type(k).__name__.startswith("Mesh"):
            raise _not_served(
                f"TightBinding.{api}(k_mesh or n_k)",
                "it returns a Gf on a MeshBrZone, a mesh the light triqs.gf does not have; "
                "pass k vectors instead, an array of shape (3,) or (n_k, 3) in units of the "
                "reciprocal lattice vectors")
        k = np.asarray(k, dtype=float)
        if k.ndim not in (1, 2) or k.shape[-1] < self._bl.ndim:
            raise ValueError(
                f"k has shape {k.shape}; give one k vector (shape (3,)) or a stack (n_k, 3) "
                f"with at least ndim={self._bl.ndim} components, in units of the reciprocal "
                "lattice vectors")
        return k

    def _hk(self, k2):
        """``h(k)`` for the rows of ``k2`` (n_k, >= ndim): shape (n_k, n, n)."""
        n, ndim = self._bl.n_orbitals, self._bl.ndim
        out = np.zeros((len(k2), n, n), dtype=complex)
        if len(self._displ) == 0:
            return out
        flat = self._mats.reshape(len(self._mats), n * n)
        step = max(1, _CHUNK // max(len(self._displ), n * n))
        for s in range(0, len(k2), step):
            phase = np.exp(2j * np.pi * (k2[s:s + step, :ndim] @ self._displ.T))
            out[s:s + step] = (phase @ flat).reshape(-1, n, n)
        return out

    def fourier(self, k):
        r"""``h(k) = sum_R t(R) exp(2 pi i k.R)`` at ``k`` (reciprocal-lattice units).

        Parameters
        ----------
        k : array_like, shape (d,) or (n_k, d), d >= ndim
            Only the first ``ndim`` components are used.

        Returns
        -------
        ndarray, complex, shape (n_orb, n_orb) or (n_k, n_orb, n_orb)
        """
        k = self._k_array(k, "fourier")
        h = self._hk(np.atleast_2d(k))
        return h[0] if k.ndim == 1 else h

    def dispersion(self, k):
        """Band energies (eigenvalues of :meth:`fourier`, ascending) at ``k``.

        Returns
        -------
        ndarray, shape (n_orb,) or (n_k, n_orb)
        """
        k = self._k_array(k, "dispersion")
        e = np.linalg.eigvalsh(self._hk(np.atleast_2d(k)))
        return e[0] if k.ndim == 1 else e

    def __eq__(self, other):
        return (isinstance(other, TightBinding) and self._bl == other._bl
                and np.array_equal(self._displ, other._displ)
                and np.array_equal(self._mats, other._mats))

    __hash__ = None

    def __repr__(self):
        lines = [f"Tight Binding Hamiltonian on {self._bl!r}", "with hoppings ["]
        lines += [f"   {tuple(int(x) for x in d)} : {m.tolist()}"
                  for d, m in zip(self._displ, self._mats)]
        return "\n".join(lines) + " ]"

    __str__ = __repr__


def _as_tight_binding(tb, api):
    if isinstance(tb, TBLattice):
        return tb.tb
    if isinstance(tb, TightBinding):
        return tb
    raise TypeError(f"{api} takes a TightBinding (or TBLattice), not {type(tb).__name__}")


def _midpoint_grid(ndim, n_k):
    """The k points ``(i + 1/2) / n_k`` per direction (x fastest), shape (n_k**ndim, ndim)."""
    n_k = int(n_k)
    if n_k < 1:
        raise ValueError(f"n_kpts={n_k} must be a positive number of k points per direction")
    axes = [(np.arange(n_k) + 0.5) / n_k] * ndim
    grid = np.meshgrid(*axes[::-1], indexing="ij")  # last axis = x runs fastest
    return np.stack([g.ravel() for g in grid[::-1]], axis=-1)


def energies_on_bz_grid(TB, n_pts):
    """Band energies on the grid ``(i + 1/2)/n_pts`` (TRIQS 2.x/3.1); shape (n_orb, n_pts**ndim)."""
    tb = _as_tight_binding(TB, "energies_on_bz_grid")
    return tb.dispersion(_midpoint_grid(tb.lattice.ndim, n_pts)).T.copy()


def _path(tb, K1, K2, n_pts):
    ndim = tb.lattice.ndim
    k1 = np.asarray(K1, dtype=float).ravel()
    k2 = np.asarray(K2, dtype=float).ravel()
    if k1.size < ndim or k2.size < ndim:
        raise ValueError(f"K1, K2 need at least ndim={ndim} components")
    steps = np.arange(int(n_pts))[:, None] / int(n_pts)
    return k1[:ndim] + steps * (k2[:ndim] - k1[:ndim])


def energies_on_bz_path(TB, K1, K2, n_pts):
    """Band energies at ``K1 + i (K2 - K1)/n_pts``, i < n_pts (TRIQS 2.x/3.1); (n_orb, n_pts)."""
    tb = _as_tight_binding(TB, "energies_on_bz_path")
    return tb.dispersion(_path(tb, K1, K2, n_pts)).T.copy()


def energy_matrix_on_bz_path(TB, K1, K2, n_pts):
    """``h(k)`` along the path of :func:`energies_on_bz_path`; shape (n_orb, n_orb, n_pts)."""
    tb = _as_tight_binding(TB, "energy_matrix_on_bz_path")
    return np.moveaxis(tb.fourier(_path(tb, K1, K2, n_pts)), 0, -1).copy()


def hopping_stack(TB, k_stack):
    """``h(k)`` for the columns of ``k_stack`` (ndim, n_k) (TRIQS 2.x); shape (n, n, n_k)."""
    tb = _as_tight_binding(TB, "hopping_stack")
    k = np.asarray(k_stack, dtype=float)
    if k.ndim != 2:
        raise ValueError(f"k_stack has shape {k.shape}; it holds k vectors as columns (ndim, n_k)")
    return np.moveaxis(tb.fourier(k.T), 0, -1).copy()


# -- densities of states ---------------------------------------------------------------------
class DOS:
    r"""A density of states ``rho(eps)`` sampled on a grid (``triqs.dos.DOS``).

    Normalised as :math:`\int d\epsilon\, \rho(\epsilon) = 1`.

    Parameters
    ----------
    eps : array_like, shape (n,)
        Energies, increasing.
    rho : array_like, shape (n,)
        The DOS at ``eps``.
    name : str

    Attributes
    ----------
    eps, rho : ndarray, shape (n,)
    name : str
    """

    def __init__(self, eps, rho, name=""):
        self.name = name
        self.eps = np.array(eps, dtype=float)
        self.rho = np.array(rho, dtype=float)
        if self.eps.ndim != 1 or self.rho.ndim != 1 or self.eps.shape != self.rho.shape:
            raise ValueError(f"DOS: eps {self.eps.shape} and rho {self.rho.shape} must be 1-d "
                             "arrays of the same length")
        if self.eps.size < 2:
            raise ValueError("DOS: give at least 2 energies")

    def copy(self):
        return DOS(self.eps, self.rho, self.name)

    def __reduce__(self):
        return self.__class__, (self.eps, self.rho, self.name)

    def __reduce_to_dict__(self):
        return {"epsilon": self.eps, "rho": self.rho}

    @classmethod
    def __factory_from_dict__(cls, name, d):
        return cls(d["epsilon"], d["rho"], name)

    def __repr__(self):
        return (f"DOS({self.name!r}, {self.eps.size} energies in "
                f"[{self.eps[0]:g}, {self.eps[-1]:g}])")

    def _plot_(self, options):
        """TRIQS plot protocol (``oplot(dos)``)."""
        return [{"label": self.name, "xlabel": r"$\epsilon$",
                 "ylabel": rf"{self.name}$(\epsilon)$", "xdata": self.eps, "ydata": self.rho}]

    def density(self, mu=0):
        """Filling ``int_{-inf}^{mu} rho``: trapezoid rule on the samples below ``mu`` and on
        the linear interpolation to ``mu`` (TRIQS's rule; exact for piecewise linear rho)."""
        e, r = self.eps, self.rho
        below = int(np.searchsorted(e, mu, side="right"))
        if below == 0:
            return 0.0
        ee, rr = e[:below], r[:below]
        dens = float(np.sum(0.5 * (rr[1:] + rr[:-1]) * np.diff(ee)))
        if below < e.size:
            r_mu = r[below - 1] + (mu - e[below - 1]) * (r[below] - r[below - 1]) / (
                e[below] - e[below - 1])
            dens += 0.5 * (r[below - 1] + r_mu) * (mu - e[below - 1])
        return dens


class DOSFromFunction(DOS):
    """A :class:`DOS` sampled from a function on ``n_pts`` equidistant points of
    ``[x_min, x_max]`` (``triqs.dos.DOSFromFunction``); the Hilbert transform can resample it.

    Parameters
    ----------
    function : callable
        ``eps -> rho(eps)`` (a float).
    x_min, x_max : float
    n_pts : int
    name : str
    """

    def __init__(self, function, x_min, x_max, n_pts=100, name=""):
        if not callable(function):
            raise TypeError("DOSFromFunction: function must be callable, eps -> rho(eps)")
        if not x_max > x_min:
            raise ValueError(f"DOSFromFunction: x_max={x_max} must exceed x_min={x_min}")
        self.function, self.x_min, self.x_max = function, float(x_min), float(x_max)
        eps, rho = self._sample(n_pts)
        DOS.__init__(self, eps, rho, name)

    def _sample(self, n_pts):
        n_pts = int(n_pts)
        if n_pts < 2:
            raise ValueError(f"n_pts={n_pts}: give at least 2 points")
        eps = np.linspace(self.x_min, self.x_max, n_pts)
        return eps, np.array([float(np.real(self.function(e))) for e in eps])

    def resampled(self, n_pts):
        """A copy sampled on ``n_pts`` points."""
        return DOSFromFunction(self.function, self.x_min, self.x_max, n_pts, self.name)

    def copy(self):
        return self.resampled(self.eps.size)

    def __reduce__(self):
        return self.__class__, (self.function, self.x_min, self.x_max, self.eps.size, self.name)


def dos_from_file(Filename, name="", single_orbital=None):
    """DOS read from a text file: column 0 = eps, one further column per orbital.

    Returns a list of :class:`DOS` (one per orbital), or the DOS of orbital
    ``single_orbital`` (counted from 1) if given.
    """
    data = np.loadtxt(Filename, ndmin=2)
    n_orb = data.shape[1] - 1
    if n_orb < 1:
        raise ValueError(f"{Filename}: need an eps column and at least one DOS column")
    if single_orbital:
        if not 1 <= single_orbital <= n_orb:
            raise ValueError(f"single_orbital={single_orbital}: the file has orbitals 1 to {n_orb}")
        return DOS(data[:, 0], data[:, single_orbital], name)
    return [DOS(data[:, 0], data[:, i + 1], name) for i in range(n_orb)]


def dos(tight_binding, n_kpts, n_eps, name):
    """Orbital-resolved DOS of a tight-binding model by binning (``triqs.lattice.dos``).

    The band energies on the grid ``(i + 1/2)/n_kpts`` per direction are put into
    ``n_eps`` equal bins between the lowest and highest energy; each eigenstate counts
    ``|<orbital|state>|^2`` for each orbital.

    Parameters
    ----------
    tight_binding : TightBinding or TBLattice
    n_kpts : int
        k points per direction.
    n_eps : int
        Number of energy bins; the DOS is given at their centres.
    name : str

    Returns
    -------
    list of DOS
        One per orbital, each normalised to 1.
    """
    tb = _as_tight_binding(tight_binding, "dos")
    n_eps = int(n_eps)
    if n_eps < 2:
        raise ValueError(f"n_eps={n_eps}: give at least 2 energy bins")
    h = tb.fourier(_midpoint_grid(tb.lattice.ndim, n_kpts))
    if h.shape[1] == 1:
        e_kb = h[:, 0, :1].real
        w_kob = np.ones((len(h), 1, 1))
    else:
        e_kb, vec = np.linalg.eigh(h)
        w_kob = np.abs(vec) ** 2  # [k, orbital, band]
    lo, hi = float(e_kb.min()), float(e_kb.max())
    if not hi > lo:
        raise ValueError(f"all band energies equal {lo:g}; a binned DOS needs a dispersive "
                         "band (give hoppings between unit cells)")
    de = (hi - lo) / n_eps
    bins = np.minimum(((e_kb - lo) / de).astype(np.int64), n_eps - 1)  # [k, band]
    rho = np.zeros((n_eps, w_kob.shape[1]))
    for b in range(e_kb.shape[1]):
        for o in range(w_kob.shape[1]):
            rho[:, o] += np.bincount(bins[:, b], weights=w_kob[:, o, b], minlength=n_eps)
    rho /= len(h) * de
    eps = lo + (np.arange(n_eps) + 0.5) * de
    return [DOS(eps, rho[:, o], name) for o in range(rho.shape[1])]


def dos_patch(tight_binding, triangles, n_eps, n_div, name):
    """Not served: the DOS of a Brillouin-zone patch (``triqs.lattice.dos_patch``)."""
    raise _not_served("triqs.lattice.dos_patch (DOS of a BZ patch, TRIQS 1.x-3.x)",
                      "only the whole-zone triqs.lattice.dos is")


# -- TBLattice -------------------------------------------------------------------------------
def _deprecated(old, new):
    warnings.warn(f"TBLattice.{old} is deprecated (TRIQS 2.x spelling); use {new} instead",
                  DeprecationWarning, stacklevel=3)


class TBLattice:
    """A tight-binding Hamiltonian on a Bravais lattice (``triqs.lattice.tight_binding.TBLattice``).

    Parameters
    ----------
    units : array_like, shape (ndim, m)
        Lattice vectors as rows (see :class:`BravaisLattice`).
    hoppings : dict
        ``{displacement: matrix}``: displacements in multiples of the lattice vectors
        (tuples of ``ndim`` ints), matrices ``n_orb x n_orb``.
    orbital_positions : list of 3-vectors
        Positions of the orbitals in the unit cell; their number is ``n_orb``.
    orbital_names : list of str, optional
    hopping : dict, optional
        Deprecated spelling of ``hoppings`` (TRIQS 2.x); a ``DeprecationWarning``.

    Attributes
    ----------
    bl : BravaisLattice
    bz : BrillouinZone
    tb : TightBinding
    hoppings : dict
        ``{displacement tuple: complex matrix}``.
    ndim, n_orbitals : int
    units : ndarray, shape (ndim, ndim)
    orbital_positions, orbital_names : list

    Examples
    --------
    >>> H = TBLattice(units=[(1, 0, 0), (0, 1, 0)],
    ...               hoppings={(1, 0): [[-1]], (-1, 0): [[-1]], (0, 1): [[-1]], (0, -1): [[-1]]})
    >>> H.dispersion([0.5, 0.5, 0.0])
    array([4.])
    """

    def __init__(self, units, hoppings=None, orbital_positions=((0, 0, 0),),
                 orbital_names=None, hopping=None):
        if hopping is not None:
            if hoppings is not None:
                raise TypeError("TBLattice: give hoppings (or the old spelling hopping), not both")
            warnings.warn("Keyword hopping in TBLattice.__init__ is deprecated (TRIQS 2.x); "
                          "use hoppings instead", DeprecationWarning, stacklevel=2)
            hoppings = hopping
        if orbital_names is None:
            orbital_names = [""] * len(orbital_positions)
        self.bl = BravaisLattice(units, orbital_positions, list(orbital_names))
        self.bz = BrillouinZone(self.bl)
        self.tb = TightBinding(self.bl, {} if hoppings is None else hoppings)

    @property
    def hoppings(self):
        """``{displacement tuple: hopping matrix}``."""
        return {tuple(int(x) for x in d): m for d, m in zip(self.tb.displ_vec,
                                                            self.tb.overlap_mat_vec)}

    def get_kmesh(self, n_k):
        """Not served: a ``MeshBrZone`` (TRIQS 3.x) is not in the light ``triqs.gf``."""
        raise _not_served("TBLattice.get_kmesh (a triqs.gf.MeshBrZone, TRIQS 3.0+)",
                          "it has no Brillouin-zone meshes; use SumkDiscreteFromLattice or "
                          "TBLattice.fourier(k) on arrays of k vectors")

    def get_rmesh(self, n_r):
        """Not served: a ``MeshCycLat`` (TRIQS 3.x) is not in the light ``triqs.gf``."""
        raise _not_served("TBLattice.get_rmesh (a triqs.gf.MeshCycLat, TRIQS 3.0+)",
                          "it has no lattice meshes")

    # -- BravaisLattice
    @property
    def ndim(self):
        return self.bl.ndim

    @property
    def units(self):
        """Lattice vectors as rows (ndim x ndim)."""
        return self.bl.units[:self.ndim, :self.ndim]

    @property
    def n_orbitals(self):
        return self.bl.n_orbitals

    @property
    def orbital_positions(self):
        return self.bl.orbital_positions

    @property
    def orbital_names(self):
        return self.bl.orbital_names

    # -- TightBinding
    def lattice_to_real_coordinates(self, x):
        """See :meth:`BravaisLattice.lattice_to_real_coordinates`."""
        return self.tb.lattice_to_real_coordinates(x)

    def fourier(self, k):
        """``h(k)``, see :meth:`TightBinding.fourier`."""
        return self.tb.fourier(k)

    def dispersion(self, k):
        """Band energies, see :meth:`TightBinding.dispersion`."""
        return self.tb.dispersion(k)

    # -- TRIQS 2.x names (deprecated in TRIQS 3.1, removed in 3.2)
    @property
    def dim(self):
        _deprecated("dim", "ndim")
        return self.ndim

    @property
    def Units(self):
        _deprecated("Units", "units")
        return self.units

    @property
    def NOrbitalsInUnitCell(self):
        _deprecated("NOrbitalsInUnitCell", "n_orbitals")
        return self.n_orbitals

    @property
    def OrbitalPositions(self):
        _deprecated("OrbitalPositions", "orbital_positions")
        return self.orbital_positions

    @property
    def OrbitalNames(self):
        _deprecated("OrbitalNames", "orbital_names")
        return self.orbital_names

    @property
    def MuPattern(self):
        _deprecated("MuPattern", "numpy.identity(n_orbitals)")
        return np.identity(self.n_orbitals)

    def hopping_dict(self):
        _deprecated("hopping_dict()", "hoppings")
        return self.hoppings

    def hopping(self, k_stack):
        """``h(k)`` for k vectors as columns (ndim, n_k) -> (n, n, n_k) (TRIQS 2.x)."""
        _deprecated("hopping(k)", "fourier(k)")
        return hopping_stack(self.tb, k_stack)

    def latt_to_real_x(self, p):
        _deprecated("latt_to_real_x", "lattice_to_real_coordinates")
        return self.lattice_to_real_coordinates(p)

    def __eq__(self, other):
        return (isinstance(other, TBLattice) and self.tb == other.tb and self.bz == other.bz
                and self.bl == other.bl)

    __hash__ = None

    def __str__(self):
        return str(self.tb)

    def __repr__(self):
        return f"TBLattice({self.tb!r})"


# -- superlattices ---------------------------------------------------------------------------
class TBSuperLattice(TBLattice):
    """A :class:`TBLattice` folded onto a superlattice (``triqs.lattice.super_lattice``).

    The supercell holds ``N = |det(super_lattice_units)|`` cells of the base lattice
    (the cluster sites); its orbitals are (site, base orbital) pairs, index
    ``site + N * orbital``.  E.g. the AB (checkerboard) superlattice of the square
    lattice is ``TBSuperLattice(L, [(1, 1), (1, -1)])``: sites ``(0, 0)`` and ``(1, 0)``.

    Parameters
    ----------
    tb_lattice : TBLattice
        The base lattice.
    super_lattice_units : array_like, shape (ndim, ndim), integers
        Superlattice vectors as rows, in base-lattice coordinates (extra components
        that are zero, as in ``[(1, 1, 0), (1, -1, 0)]`` for a 2-d lattice, are dropped).
    cluster_sites : list of ndim-tuples of int, optional
        The base cells in the supercell; default the points whose coordinates in the
        superlattice basis lie in ``[0, 1)^ndim``, in lexicographic order.
    remove_internal_hoppings : bool
        Drop the hoppings inside the supercell (displacement 0 of the superlattice).

    Attributes
    ----------
    Ncluster_sites, Norb : int
        Sites per supercell and orbitals per supercell.
    """

    def __init__(self, tb_lattice, super_lattice_units, cluster_sites=None,
                 remove_internal_hoppings=False):
        if not isinstance(tb_lattice, TBLattice):
            raise ValueError("tb_lattice should be an instance of TBLattice")
        ndim = tb_lattice.ndim
        S = np.array(super_lattice_units, dtype=float)
        if S.ndim == 2 and S.shape[0] == ndim and S.shape[1] > ndim and not S[:, ndim:].any():
            S = S[:, :ndim]  # e.g. [(1, 1, 0), (1, -1, 0)] for a 2-d lattice
        if S.shape != (ndim, ndim) or not np.array_equal(S, np.rint(S)):
            raise ValueError(f"super_lattice_units {super_lattice_units!r} must be {ndim} "
                             f"integer vectors of {ndim} components (base-lattice coordinates)")
        S = S.astype(np.int64)
        n_sites = int(round(abs(np.linalg.det(S))))
        if n_sites == 0:
            raise ValueError(f"super_lattice_units {super_lattice_units!r} are not independent")
        self._base, self._S = tb_lattice, S
        self._M = S.T  # x (base coords) = M @ R (supercell coords) + site
        # n_sites * M^-1 is an integer matrix (the adjugate up to sign): exact arithmetic
        self._Mtilde = np.rint(np.linalg.inv(self._M) * n_sites).astype(np.int64)
        self.Ncluster_sites = n_sites
        self.Norb = tb_lattice.n_orbitals * n_sites
        self._remove_internal = bool(remove_internal_hoppings)
        if cluster_sites is None:
            sites = self._default_sites()
        else:
            sites = [tuple(int(v) for v in np.ravel(c)) for c in cluster_sites]
            if any(len(c) != ndim for c in sites):
                raise ValueError(f"cluster_sites must be {ndim}-tuples of ints")
        if len(sites) != n_sites or len(set(sites)) != n_sites:
            raise ValueError(f"{len(sites)} cluster sites for a supercell of {n_sites} cells")
        self._sites = [np.array(c, dtype=np.int64) for c in sites]
        self._site_index = {c: i for i, c in enumerate(sites)}
        for c in sites:  # each site must be a different class modulo the superlattice
            self.change_coordinates_L_to_SL(c)
        base_names = tb_lattice.orbital_names
        site_names = [str(s + 1) for s in range(n_sites)]
        if len(base_names) == 1:
            names = site_names
        elif n_sites == 1:
            names = list(base_names)
        else:
            names = [f"{s}_{o}" for o in base_names for s in site_names]
        positions = [p + tb_lattice.lattice_to_real_coordinates(c)
                     for p in tb_lattice.orbital_positions for c in self._sites]
        hoppings = self.fold(tb_lattice.hoppings, self._remove_internal)
        TBLattice.__init__(self, S @ tb_lattice.units, hoppings, positions, names)

    def _default_sites(self):
        """Base points with superlattice coordinates in [0, 1)^ndim, lexicographic order."""
        ndim, n = self._base.ndim, self.Ncluster_sites
        corners = np.array(np.meshgrid(*[[0, 1]] * ndim, indexing="ij")).reshape(ndim, -1)
        span = self._M @ corners  # the supercell's corners in base coordinates
        ranges = [np.arange(span[d].min(), span[d].max() + 1) for d in range(ndim)]
        pts = np.array(np.meshgrid(*ranges, indexing="ij")).reshape(ndim, -1).T
        frac = pts @ self._Mtilde.T  # n_sites * superlattice coordinates
        inside = np.all((frac >= 0) & (frac < n), axis=1)
        return [tuple(int(v) for v in p) for p in pts[inside]]

    def change_coordinates_L_to_SL(self, x):
        """``(R, alpha)``: supercell ``R`` (tuple) and site index of base point ``x``."""
        x = np.asarray(x, dtype=np.int64)
        R = (self._Mtilde @ x) // self.Ncluster_sites  # floor of the superlattice coordinates
        site = tuple(int(v) for v in x - self._M @ R)
        try:
            return tuple(int(v) for v in R), self._site_index[site]
        except KeyError:
            raise ValueError(f"cluster_sites do not tile the superlattice: {site} (from "
                             f"{tuple(x)}) is not a cluster site") from None

    def change_coordinates_SL_to_L(self, R, alpha):
        """Base-lattice coordinates of site ``alpha`` of supercell ``R``."""
        return self._M @ np.asarray(R, dtype=np.int64) + self._sites[alpha]

    def pack_index_site_orbital(self, n_site, n_orbital):
        """Supercell orbital index of (site, base orbital), both from 0."""
        return n_site + n_orbital * self.Ncluster_sites

    def unpack_index_site_orbital(self, index):
        """``(site, base orbital)`` of a supercell orbital index."""
        return index % self.Ncluster_sites, index // self.Ncluster_sites

    def cluster_sites(self):
        """Iterate over the cluster sites (base-lattice coordinates)."""
        for c in self._sites:
            yield c.tolist()

    def fold(self, D1, remove_internal=False, create_zero=None):
        """Fold ``{base displacement: f(r)}`` onto the superlattice: ``{R: F(R)}``.

        ``F(R)[pack(a, o1), pack(b, o2)] = f(site_b + M R - site_a)[o1, o2]``;
        ``f(r)`` can be anything indexable ``[o1, o2]`` (numpy matrices here).
        """
        if not D1:
            return {}
        norb = len(next(iter(D1.values())))
        res = {}
        zero_R = (0,) * self._base.ndim
        for a, site in enumerate(self._sites):
            for disp, t in D1.items():
                if isinstance(t, (list, tuple)):
                    t = np.asarray(t)
                R, b = self.change_coordinates_L_to_SL(site + np.asarray(disp, dtype=np.int64))
                if R not in res:
                    res[R] = (create_zero() if create_zero else
                              np.zeros((self.Norb, self.Norb), dtype=complex))
                if remove_internal and R == zero_R:
                    continue
                for o1 in range(norb):
                    for o2 in range(norb):
                        res[R][self.pack_index_site_orbital(a, o1),
                               self.pack_index_site_orbital(b, o2)] += t[o1, o2]
        return res

    def __repr__(self):
        return (f"SuperLattice class:\n   Base TBLattice: {self._base!r}\n   SuperLattice "
                f"units: {self._S.tolist()}\n   Remove internal hoppings: "
                f"{self._remove_internal}\n   Cluster site positions: "
                f"{[tuple(c.tolist()) for c in self._sites]}")

    __str__ = __repr__
