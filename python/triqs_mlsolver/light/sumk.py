# SPDX-License-Identifier: Apache-2.0
r"""Light ``triqs.sumk`` and ``triqs.dos``: local Green's functions from k sums and DOS.

Served by ``triqs-mlsolver run`` when TRIQS is not installed (:data:`SERVED`)::

    from triqs.sumk import SumkDiscreteFromLattice
    SK = SumkDiscreteFromLattice(lattice=H, n_points=32)   # H: a TBLattice
    G << SK(mu=mu, Sigma=S.Sigma_iw)

computes, for every block of ``Sigma`` (a ``BlockGf`` on a Matsubara mesh),

.. math::

    G(i\omega_n) = \sum_k w_k \left[(i\omega_n + \mu)\mathbf{1} - \text{field}
                   - \hat\epsilon(h(k)) - \Sigma(i\omega_n)\right]^{-1}

on the TRIQS grid of ``n_points`` per direction, ``k_i = (n - N/2 + 1)/N``
(reciprocal-lattice units, equal weights).  ``HilbertTransform(dos)`` does the same
sum over the energies of a :class:`~triqs_mlsolver.light.lattice.DOS`.

The sums are vectorised over k and frequencies; the result is the same on every MPI
rank (each rank computes the whole sum, no communication).

Not served: sums on a Brillouin-zone patch (``patch=``, ``triqs.lattice.bz_patch``),
``method='Gauss'`` (TRIQS 3.2 does not implement it either), non-orthogonal bases,
``selected_blocks`` (TRIQS refuses it too), real-frequency meshes.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping

import numpy as np

from .. import gf as _gf
from .lattice import DOS, DOSFromFunction, TBLattice, _not_served, dos_from_file

__all__ = ["SumkDiscrete", "SumkDiscreteFromLattice", "HilbertTransform", "local_sum",
           "DOS", "DOSFromFunction", "dos_from_file"]

_DOS_NAMES = ("DOS", "DOSFromFunction", "dos_from_file", "HilbertTransform")
_SUMK_NAMES = ("SumkDiscrete", "SumkDiscreteFromLattice")

#: ``{TRIQS module: names served from here}`` (see :mod:`triqs_mlsolver.light`).
SERVED = {}
for _top in ("triqs", "pytriqs"):
    SERVED.update({
        f"{_top}.sumk": _SUMK_NAMES,
        f"{_top}.sumk.sumk_discrete": ("SumkDiscrete",),
        f"{_top}.sumk.sumk_discrete_from_lattice": ("SumkDiscreteFromLattice",),
        f"{_top}.dos": _DOS_NAMES,
        f"{_top}.dos.dos": ("DOS", "DOSFromFunction", "dos_from_file"),
        f"{_top}.dos.hilbert_transform": ("HilbertTransform",),
    })
del _top

#: Complex entries per temporary array in the vectorised sums (32 MiB).
_CHUNK = 1 << 21
#: Energies closer than this are summed as one pole (their weighted mean): the error is
#: second order in the spread, (1e-12)^2 / |i w_n - eps|^3, far below double precision.
_MERGE_DECIMALS = 12


# -- the sum -----------------------------------------------------------------------------------
def _merge_poles(e_m, p_mq, w_m):
    """Merge poles closer than 1e-12: ``(e_u, p_uq)``, e_u the ``w``-weighted mean."""
    key = np.round(e_m, _MERGE_DECIMALS)
    uniq, inv = np.unique(key, return_inverse=True)
    if uniq.size == e_m.size:
        return e_m, p_mq
    wsum = np.bincount(inv, weights=w_m)
    safe = np.where(wsum != 0, wsum, 1.0)
    mean = (np.bincount(inv, weights=w_m * e_m.real)
            + 1j * np.bincount(inv, weights=w_m * e_m.imag)) / safe
    e_u = np.where(wsum != 0, mean, uniq)
    p_uq = np.zeros((uniq.size, p_mq.shape[1]), dtype=complex)
    np.add.at(p_uq, inv, p_mq)
    return e_u, p_uq


def _pole_sum(a_w, e_m, p_mq):
    """``sum_m p_mq / (a_w - e_m)``, shape (n_w, q), in chunks over w."""
    out = np.empty((a_w.size, p_mq.shape[1]), dtype=complex)
    step = max(1, _CHUNK // max(1, e_m.size))
    for s in range(0, a_w.size, step):
        out[s:s + step] = (1.0 / (a_w[s:s + step, None] - e_m[None, :])) @ p_mq
    return out


def _is_diagonal(x):
    n = x.shape[-1]
    return not np.any(x[..., ~np.eye(n, dtype=bool)])


def local_sum(A_wab, E_kab, w_k):
    r"""``G_w = sum_k w_k (A_w - E_k)^{-1}``: the kernel of the k sums and Hilbert transforms.

    Parameters
    ----------
    A_wab : ndarray, complex, shape (n_w, n, n)
        ``(i w_n + mu) 1 - field - Sigma(i w_n)`` per frequency.
    E_kab : ndarray, complex, shape (n_k, n, n)
        ``h(k)`` (or ``epsilon_hat``) per k point / energy.
    w_k : ndarray, float, shape (n_k,)
        Weights.

    Returns
    -------
    ndarray, complex, shape (n_w, n, n)

    Notes
    -----
    Fast paths, all exact rewritings of the sum: one orbital or everything diagonal
    (scalar poles, equal energies merged); ``A_w`` proportional to the identity and
    Hermitian ``E_k`` (``E_k = U e U^dagger``, a sum of poles with projector weights);
    otherwise a matrix inverse per (w, k) (closed form for 2 x 2).
    """
    A = np.asarray(A_wab, dtype=complex)
    E = np.asarray(E_kab, dtype=complex)
    w = np.asarray(w_k, dtype=float)
    n_w, n = A.shape[0], A.shape[-1]
    out = np.zeros((n_w, n, n), dtype=complex)
    if n == 1 or (_is_diagonal(A) and _is_diagonal(E)):
        for o in range(n):
            e, p = _merge_poles(E[:, o, o], w[:, None].astype(complex), w)
            out[:, o, o] = _pole_sum(A[:, o, o], e, p)[:, 0]
        return out
    a = A[:, 0, 0]
    hermitian_atol = 1e-12 * max(1.0, float(np.abs(E).max()))
    if (_is_diagonal(A) and np.all(np.diagonal(A, axis1=1, axis2=2) == a[:, None])
            and np.allclose(E, np.conj(np.swapaxes(E, 1, 2)), rtol=0, atol=hermitian_atol)):
        e_kb, U = np.linalg.eigh(E)  # E_k = sum_b e_kb |u_kb><u_kb|
        P = w[:, None, None, None] * np.einsum("kab,kcb->kbac", U, U.conj())
        e, p = _merge_poles(e_kb.ravel(), P.reshape(-1, n * n),
                            np.repeat(w, n))
        return _pole_sum(a, e, p).reshape(n_w, n, n)
    if n == 2:
        return _sum_inverse_2x2(A, E, w)
    step = max(1, _CHUNK // max(1, E.shape[0] * n * n))
    for s in range(0, n_w, step):
        X = A[s:s + step, None] - E[None, :]
        out[s:s + step] = np.tensordot(w, np.linalg.inv(X), axes=(0, 1))
    return out


def _sum_inverse_2x2(A, E, w):
    """``sum_k w_k (A_w - E_k)^{-1}`` for 2 x 2 matrices by the adjugate formula.

    With ``r_wk = w_k / det(A_w - E_k)``, the adjugate's entries are linear in ``E_k``,
    so ``G_00 = A_11 sum_k r_wk - sum_k r_wk E_k,11`` etc. (matrix products, no 4-d
    temporaries); several times faster than a batched LAPACK inverse.
    """
    out = np.empty((A.shape[0], 2, 2), dtype=complex)
    step = max(1, _CHUNK // max(1, E.shape[0]))
    for s in range(0, A.shape[0], step):
        a = A[s:s + step]
        det = ((a[:, None, 0, 0] - E[None, :, 0, 0]) * (a[:, None, 1, 1] - E[None, :, 1, 1])
               - (a[:, None, 0, 1] - E[None, :, 0, 1]) * (a[:, None, 1, 0] - E[None, :, 1, 0]))
        r = w / det
        R = r.sum(axis=1)
        out[s:s + step, 0, 0] = a[:, 1, 1] * R - r @ E[:, 1, 1]
        out[s:s + step, 1, 1] = a[:, 0, 0] * R - r @ E[:, 0, 0]
        out[s:s + step, 0, 1] = r @ E[:, 0, 1] - a[:, 0, 1] * R
        out[s:s + step, 1, 0] = r @ E[:, 1, 0] - a[:, 1, 0] * R
    return out


# -- argument handling -------------------------------------------------------------------------
def _iw_values(mesh, api):
    if not isinstance(mesh, _gf.MeshImFreq):
        raise _not_served(f"{api} on a {type(mesh).__name__}",
                          "it sums on Matsubara meshes (MeshImFreq) only, as TRIQS 3.2 does")
    values = getattr(mesh, "values", None)
    if callable(values):
        return np.asarray(list(values()), dtype=complex)  # TRIQS 3.2: a generator
    return np.array([complex(getattr(p, "value", p)) for p in mesh])


def _field_block(field, name, n_w, n, api):
    """The ``field`` term of block ``name``: array (n_w, n, n) or (n, n) or 0."""
    if field is None:
        return 0.0
    if isinstance(field, _gf.BlockGf):
        field = field[name]
    elif isinstance(field, Mapping):
        try:
            field = field[name]
        except KeyError:
            raise ValueError(f"{api}: field has no entry for block {name!r}") from None
    if isinstance(field, _gf.Gf):
        d = np.asarray(field.data, dtype=complex)
        if d.shape != (n_w, n, n):
            raise ValueError(f"{api}: field block {name!r} has shape {d.shape[1:]}, "
                             f"the Green's function ({n}, {n})")
        return d
    f = np.asarray(field, dtype=complex)
    if f.ndim == 0:
        return f * np.eye(n)
    if f.shape != (n, n):
        raise ValueError(f"{api}: field has shape {f.shape}; give a number, an {n} x {n} "
                         "matrix, a dict {block: matrix} or a BlockGf")
    return f


def _n_args(fn):
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 1
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)


# -- SumkDiscrete ------------------------------------------------------------------------------
class SumkDiscrete:
    r"""Discrete k sum ``G = sum_k w_k ((i w_n + mu) - field - eps_hat(h_k) - Sigma)^{-1}``
    (``triqs.sumk.SumkDiscrete``).

    The grid is the caller's: fill :attr:`hopping`, :attr:`bz_points` and
    :attr:`bz_weights` after :meth:`resize_arrays`.  :class:`SumkDiscreteFromLattice`
    fills them from a lattice.

    Parameters
    ----------
    dim : int
        Dimension of the k vectors.
    gf_struct : list
        The orbital indices of a block (their number ``n_orb``); :attr:`GFBlocIndices`.
    orthogonal_basis : bool
        Only ``True`` is served (as in TRIQS, where ``False`` is refused at the sum).

    Attributes
    ----------
    hopping : ndarray, complex, shape (n_k, n_orb, n_orb)
        ``h(k)`` at the k points.
    bz_points : ndarray, shape (n_k, dim)
        The k points, in units of the reciprocal lattice vectors.
    bz_weights : ndarray, shape (n_k,)
        Their weights (sum 1).
    mu_pattern : ndarray, shape (n_orb, n_orb)
        The identity (the matrix that multiplies ``mu``).
    """

    def __init__(self, dim, gf_struct, orthogonal_basis=True):
        if not orthogonal_basis:
            raise _not_served("SumkDiscrete(orthogonal_basis=False)",
                              "only orthogonal bases are; TRIQS 3.2 refuses them at the sum")
        self.dim = int(dim)
        self._gf_struct = list(gf_struct)
        self.orthogonal_basis = True
        self.resize_arrays(0)

    def resize_arrays(self, nk):
        """Allocate the arrays for ``nk`` k points (equal weights)."""
        no = len(self._gf_struct)
        nk = int(nk)
        self.hopping = np.zeros((nk, no, no), dtype=complex)
        self.bz_points = np.zeros((nk, self.dim))
        self.bz_weights = np.full(nk, 1.0 / nk) if nk else np.zeros(0)
        self.mu_pattern = np.identity(no, dtype=complex)
        self.overlap = self.mu_pattern.copy()

    @property
    def GFBlocIndices(self):
        """The orbital indices of a block (e.g. for ``GfImFreq(indices=SK.GFBlocIndices)``)."""
        return list(self._gf_struct)

    def n_kpts(self):
        """Number of k points."""
        return self.bz_points.shape[0]

    def __call__(self, Sigma, mu=0, field=None, epsilon_hat=None, result=None,
                 selected_blocks=()):
        r"""The local Green's function, a BlockGf with the blocks of ``Sigma``.

        Parameters
        ----------
        Sigma : BlockGf on a MeshImFreq, or callable
            The self-energy, the same for every k; or ``Sigma(k)`` / ``Sigma(k, eps_k)``
            returning such a BlockGf (k in reciprocal-lattice units, ``eps_k = h(k)``).
            Each block is ``n x n``, ``n`` the size of ``epsilon_hat(h(k))``.
        mu : float
            Chemical potential (times the identity).
        field : number, matrix, dict {block: matrix}, BlockGf, optional
            A k-independent term *subtracted* like ``Sigma`` (as TRIQS does).
        epsilon_hat : callable, optional
            ``h(k) -> n x n`` matrix used instead of ``h(k)``.
        result : BlockGf, optional
            Filled in place and returned; default a new copy of ``Sigma``'s structure.
        selected_blocks : ()
            Not served (TRIQS 3.2 refuses it too).

        Returns
        -------
        BlockGf
            :math:`\sum_k w_k [(i\omega_n+\mu) - \text{field} - \hat\epsilon(h_k) -
            \Sigma]^{-1}` per block.
        """
        api = f"{type(self).__name__}.__call__"
        if selected_blocks not in ((), [], None):
            raise _not_served(f"{api}(selected_blocks={selected_blocks!r})",
                              "every block is summed; TRIQS 3.2 refuses selected_blocks too")
        if np.ndim(mu) != 0 or not isinstance(np.asarray(mu).item(), (int, float, complex)):
            raise TypeError(f"{api}: mu must be a number, got {mu!r}")
        nk = self.n_kpts()
        if nk == 0:
            raise ValueError(f"{api}: no k points; call resize_arrays and fill hopping, "
                             "bz_points, bz_weights first")
        if isinstance(Sigma, _gf.BlockGf):
            model, sigma_fn = Sigma, None
        elif callable(Sigma):
            n_args = _n_args(Sigma)
            if n_args not in (1, 2):
                raise TypeError(f"{api}: Sigma must be a BlockGf, or a function of k or of "
                                "(k, eps_k) returning one")
            sigma_fn = (lambda i: Sigma(self.bz_points[i])) if n_args == 1 else \
                (lambda i: Sigma(self.bz_points[i], self.hopping[i]))
            model = sigma_fn(0)
            if not isinstance(model, _gf.BlockGf):
                raise TypeError(f"{api}: Sigma(k) returned a {type(model).__name__}, not a BlockGf")
        else:
            raise TypeError(f"{api}: Sigma must be a BlockGf (e.g. S.Sigma_iw) or a function "
                            f"of k returning one, not {type(Sigma).__name__}")
        G = model.copy() if result is None else result
        if not isinstance(G, _gf.BlockGf):
            raise TypeError(f"{api}: result must be a BlockGf, not {type(G).__name__}")
        iw = _iw_values(G.mesh, api)
        if epsilon_hat is None:
            E = self.hopping
        else:
            E = np.array([np.asarray(epsilon_hat(h), dtype=complex) for h in self.hopping])
            if E.ndim != 3 or E.shape[1] != E.shape[2]:
                raise ValueError(f"{api}: epsilon_hat(h_k) must return a square matrix; got "
                                 f"shape {E.shape[1:]}")
        n = E.shape[1]
        w = np.asarray(self.bz_weights, dtype=float)
        done = []  # (A, G) of the blocks summed so far: equal blocks (paramagnets) are reused
        for name, g in G:
            if tuple(g.target_shape) != (n, n):
                raise ValueError(
                    f"{api}: block {name!r} is {tuple(g.target_shape)}; it must match the "
                    f"hopping matrices ({n}, {n}) of the lattice (one row per orbital)")
            base = (iw + mu)[:, None, None] * np.eye(n) - _field_block(field, name, iw.size, n,
                                                                        api)
            if sigma_fn is None:
                sigma = np.asarray(Sigma[name].data, dtype=complex)
                if sigma.shape != (iw.size, n, n):
                    raise ValueError(f"{api}: Sigma block {name!r} has shape {sigma.shape}, the "
                                     f"result {(iw.size, n, n)}; use the same mesh")
                A = base - sigma
                same = next((r for a, r in done if np.array_equal(a, A)), None)
                g.data[...] = local_sum(A, E, w) if same is None else same
                done.append((A, g.data.copy()))
            else:
                acc = np.zeros((iw.size, n, n), dtype=complex)
                for i in range(nk):
                    s_k = model if i == 0 else sigma_fn(i)
                    A = base - np.asarray(s_k[name].data, dtype=complex)
                    acc += local_sum(A, E[i:i + 1], w[i:i + 1])
                g.data[...] = acc
        return G


class SumkDiscreteFromLattice(SumkDiscrete):
    """Local Green's function of a :class:`TBLattice` by a k sum
    (``triqs.sumk.SumkDiscreteFromLattice``).

    Parameters
    ----------
    lattice : TBLattice
        Gives ``h(k)`` (a :class:`TBSuperLattice` too).
    patch : None
        Sums on a Brillouin-zone patch are not served.
    n_points : int
        k points per direction: the grid ``(n - N/2 + 1)/N``, ``n < N``, per direction
        (reciprocal-lattice units; for even N it holds Gamma and the zone boundary).
    method : {'Riemann'}
        Equal weights.  ``'Gauss'`` is not served (TRIQS 3.2 does not implement it).

    Attributes
    ----------
    SL : TBLattice
        The lattice.
    hopping, bz_points, bz_weights : ndarray
        See :class:`SumkDiscrete`.

    Examples
    --------
    >>> SK = SumkDiscreteFromLattice(lattice=H, n_points=64)    # doctest: +SKIP
    >>> G << SK(mu=0.0, Sigma=S.Sigma_iw)                        # doctest: +SKIP
    """

    def __init__(self, lattice, patch=None, n_points=8, method="Riemann"):
        if not isinstance(lattice, TBLattice):
            raise TypeError(f"lattice must be a TBLattice instance (triqs.lattice.tight_binding)"
                            f", not {type(lattice).__name__}")
        if patch is not None:
            raise _not_served("SumkDiscreteFromLattice(patch=...) (sums on a BZ patch, "
                              "triqs.lattice.bz_patch)", "it sums on the whole Brillouin zone")
        self.SL, self.patch, self.method = lattice, None, method
        SumkDiscrete.__init__(self, dim=lattice.ndim, gf_struct=lattice.orbital_names)
        self.Recompute_Grid(n_points, method)

    def __reduce__(self):
        return self.__class__, (self.SL, self.patch, self._n_points, self.method)

    def Recompute_Grid(self, n_points, method="Riemann", Q=None):
        """(Re)compute the grid: ``n_points`` per direction, shifted by ``Q`` if given
        (``h(k + Q)``, reciprocal-lattice units)."""
        if method == "Gauss":
            raise _not_served("SumkDiscreteFromLattice(method='Gauss')",
                              "it serves method='Riemann'; TRIQS 3.2 does not implement "
                              "'Gauss' either")
        if method != "Riemann":
            raise ValueError(f"method {method!r} is not recognized; use 'Riemann'")
        if isinstance(n_points, bool) or not isinstance(n_points, (int, np.integer)) \
                or n_points < 1:
            raise ValueError(f"n_points={n_points!r} must be a positive integer (k points per "
                             "direction)")
        self.method, self._n_points = method, int(n_points)
        N, dim = int(n_points), self.dim
        line = (np.arange(N) - N / 2 + 1) / N
        grid = np.meshgrid(*[line] * dim, indexing="ij")  # grid[d]: component d
        # TRIQS order: the first component runs fastest
        pts = np.stack([g.transpose(*range(dim)[::-1]).ravel() for g in grid], axis=-1)
        if Q is not None:
            q = np.asarray(Q, dtype=float).ravel()
            if q.size != dim:
                raise ValueError(f"Q has {q.size} components; the lattice has dim={dim}")
            pts = pts + q
        self.resize_arrays(len(pts))
        self.bz_points[...] = pts
        self.hopping[...] = self.SL.fourier(pts)


# -- Hilbert transform -------------------------------------------------------------------------
def _dos_weights(d):
    """Weights ``rho_i * (cell width)``, normalised to 1; the cells are bounded by the
    midpoints between samples and the end cells are one spacing wide, so a DOS given at
    the centres of equal bins (:func:`triqs.lattice.dos`) gets weight ``rho_i * de``."""
    e, r = d.eps, d.rho
    width = np.empty_like(e)
    width[0], width[-1] = e[1] - e[0], e[-1] - e[-2]
    width[1:-1] = 0.5 * (e[2:] - e[:-2])
    p = r * width
    total = p.sum()
    if not total > 0:
        raise ValueError(f"the DOS {d.name!r} has no positive weight")
    return p / total


class HilbertTransform:
    r"""The Hilbert transform of a DOS (``triqs.dos.HilbertTransform``).

    ``HilbertTransform(rho)(Sigma, mu)`` is

    .. math::

        G(i\omega_n) = \sum_i p_i \left[(i\omega_n + \mu + i\eta)\mathbf 1 - \text{field}
                       - \hat\epsilon(\epsilon_i) - \Sigma(i\omega_n)\right]^{-1},

    ``p_i`` the normalised weights of the samples of ``rho`` (``rho_i`` times the width
    of the cell around ``eps_i``).

    Parameters
    ----------
    rho : DOS
    """

    def __init__(self, rho):
        if not isinstance(rho, DOS):
            raise TypeError(f"HilbertTransform(rho) takes a DOS, not {type(rho).__name__}")
        self.dos = rho
        self.rho_for_sum = _dos_weights(rho)

    def __reduce__(self):
        return self.__class__, (self.dos,)

    def _transform(self, d, p, Sigma, mu, eta, field, epsilon_hat, result):
        if isinstance(result, _gf.BlockGf):
            for name, g in result:
                if isinstance(Sigma, _gf.BlockGf):
                    s = Sigma[name]
                elif callable(Sigma) and not isinstance(Sigma, _gf.Gf):
                    s = _BlockOf(Sigma, name)
                else:
                    s = Sigma
                f = field[name] if isinstance(field, (_gf.BlockGf, Mapping)) else field
                self._transform(d, p, s, mu, eta, f, epsilon_hat, g)
            return result
        iw = _iw_values(result.mesh, "HilbertTransform")
        n1, n2 = result.target_shape
        if n1 != n2:
            raise ValueError("HilbertTransform: Sigma must be a square Gf")
        n = n1
        if epsilon_hat is None:
            E = d.eps[:, None, None] * np.eye(n)
        else:
            E = np.asarray(epsilon_hat(d.eps), dtype=complex)
            if E.shape != (d.eps.size, n, n):
                raise ValueError(f"HilbertTransform: epsilon_hat(eps) has shape {E.shape}; "
                                 f"expected ({d.eps.size}, {n}, {n})")
        base = (iw + mu + 1j * eta)[:, None, None] * np.eye(n) - _field_block(
            field, "", iw.size, n, "HilbertTransform")
        if callable(Sigma) and not isinstance(Sigma, (_gf.Gf, _gf.BlockGf)):
            acc = np.zeros((iw.size, n, n), dtype=complex)
            for i, e in enumerate(d.eps):
                A = base - np.asarray(Sigma(e).data, dtype=complex)
                acc += local_sum(A, E[i:i + 1], p[i:i + 1])
            result.data[...] = acc
        else:
            result.data[...] = local_sum(base - np.asarray(Sigma.data, dtype=complex), E, p)
        return result

    def __call__(self, Sigma, mu=0, eta=0, field=None, epsilon_hat=None, result=None,
                 n_points_integral=None, test_convergence=None):
        r"""Compute the transform.

        Parameters
        ----------
        Sigma : Gf, BlockGf (each block), or callable ``eps -> Gf``
        mu, eta : float
            Chemical potential and broadening ``i eta``.
        field : optional
            A term subtracted like ``Sigma`` (number, matrix or Gf).
        epsilon_hat : callable, optional
            ``eps (array, n_eps) -> array (n_eps, n, n)``; default ``eps * 1``.
        result : Gf or BlockGf, optional
            Filled in place; default a copy of ``Sigma``'s structure.
        n_points_integral : int, optional
            :class:`DOSFromFunction` only: sample the function on this many points.
        test_convergence : float, optional
            :class:`DOSFromFunction` only: double the points (up to 10 times) until the
            largest change is below ``test_convergence`` times the largest value.

        Returns
        -------
        Gf or BlockGf
        """
        if isinstance(Sigma, (_gf.Gf, _gf.BlockGf)):
            model = Sigma
        elif callable(Sigma):
            if _n_args(Sigma) != 1:
                raise TypeError("HilbertTransform: Sigma must be a function of one variable")
            model = Sigma(self.dos.eps[0])
        else:
            raise TypeError(f"HilbertTransform: Sigma must be a Gf or a function eps -> Gf, "
                            f"not {type(Sigma).__name__}")
        if result is None:
            result = model.copy()
        is_fn = isinstance(self.dos, DOSFromFunction)
        if not is_fn and (n_points_integral is not None or test_convergence is not None):
            raise ValueError("n_points_integral and test_convergence can only be used with a "
                             "DOSFromFunction")
        d, p = self.dos, self.rho_for_sum
        if is_fn and n_points_integral:
            d = self.dos.resampled(n_points_integral)
            p = _dos_weights(d)
        self._transform(d, p, Sigma, mu, eta, field, epsilon_hat, result)
        if is_fn and test_convergence:
            for _ in range(9):
                old = [g.data.copy() for g in _blocks(result)]
                d = d.resampled(2 * d.eps.size - 1)  # halves the spacing, keeps the points
                self._transform(d, _dos_weights(d), Sigma, mu, eta, field, epsilon_hat, result)
                new = [g.data for g in _blocks(result)]
                change = max(np.abs(a - b).max() for a, b in zip(new, old))
                scale = max(np.abs(b).max() for b in new)
                if change <= test_convergence * scale:
                    break
        return result


class _BlockOf:
    """``eps -> Sigma(eps)[name]``: one block of a BlockGf-valued function."""

    def __init__(self, fn, name):
        self.fn, self.name = fn, name

    def __call__(self, e):
        return self.fn(e)[self.name]


def _blocks(g):
    return [b for _, b in g] if isinstance(g, _gf.BlockGf) else [g]
