# SPDX-License-Identifier: Apache-2.0
"""Numerical core of the exact-diagonalisation solver (private; see :mod:`.ed`).

Pure functions and two small structure classes on plain arrays:

* :class:`Species` -- the Fock space of one spin species (``L = k + 1``
  orbitals, orbital 0 = impurity) split by particle number ``N``: basis
  states as bit patterns, the one-species Hamiltonian ``H_N`` (diagonal +
  sparse hopping), ``n_d`` and the maps of ``d^+``.
* :class:`Sector` -- a block ``(N_up, N_dn)`` of the two-species space in the
  spin-separated basis ``|up bits> (x) |dn bits>``.  A state is a matrix
  ``Psi`` (``d_up x d_dn``) and ``H Psi = H_up Psi + Psi H_dn^T + U (n_up n_dn^T) o Psi``
  (Kronecker-sum matvec, batched over a leading axis).
* :func:`full_lehmann_poles` -- Path A, all eigenstates, Lehmann poles.
* :func:`low_spectrum` + :func:`thermal_poles` -- Path B, the low spectrum of
  every sector and the Green's function of each kept state from Lanczos
  continued fractions (or exact projection where the target sector is fully
  diagonalised).
* :func:`lanczos_tridiag_batch`, :func:`cf_poles`, :func:`merge_poles`.

Fermion order: all up orbitals before all down orbitals, impurity first
within a species.  Inside a species the Jordan-Wigner sign of ``c_j`` is
``(-1)^(number of occupied orbitals i < j)``; ``c_dn`` carries the extra
``(-1)^{N_up}``.  (For the diagonal Green's functions computed here only the
signs of the hopping inside a species matter; the ``(-1)^{N_up}`` is a global
phase per sector and kept for correctness of the operators.)

Array axis letters: ``b`` batch of states, ``u``/``d`` up/down basis index
of a sector, ``e`` eigenstate, ``n`` Lanczos step, ``p`` pole.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import scipy.sparse as sp
from scipy.linalg import eigh_tridiagonal
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

from . import _ed_kernels as kernels

__all__ = [
    "Species",
    "Sector",
    "SectorEigen",
    "TooManyStatesError",
    "merge_poles",
    "lanczos_tridiag_batch",
    "cf_poles",
    "full_lehmann_poles",
    "low_spectrum",
    "lanczos_low_states",
    "thermal_poles",
]

#: Poles closer than ``MERGE_TOL_BETA / beta`` are merged into one at their weighted mean
#: energy.  The error this makes in G(tau) is <= beta^2 dE^2 W / 2 <= 5e-15 W.
MERGE_TOL_BETA = 1e-7


#: Path A diagonalises every sector without computing lower bounds when the Fock space
#: has at most this many states (n_bath <= 3); the bounds cost more than they save there.
PRUNE_MIN_FOCK = 4**4
#: Path A runs in one compiled kernel (``_ed_kernels.lehmann_small``) up to this Fock-space
#: size (4 bath sites; larger sectors: the numpy path, as for a forced ``method='full'``).
COMPILED_MAX_FOCK = 4**5


#: Lanczos chains of one target sector run in batches of this size with the numpy path
#: (larger batches fall out of cache: measured 60-70 us per state and step for 1-4 chains,
#: 4x that for 16, k = 8); the compiled path runs the chains one after the other.
LANCZOS_CHUNK = 4

#: Loosest and tightest relative accuracy of one Green's-function continued fraction (the
#: tolerance of each chain follows its share of G; see :func:`thermal_poles`).
CF_TOL_MAX = 1e-3
CF_TOL_MIN = 1e-12

#: Use the compiled kernels of :mod:`._ed_kernels` where numba is available (tests switch
#: this off to compare with the numpy path).
USE_KERNELS = True


class TooManyStatesError(RuntimeError):
    """Raised when Path B would need more eigenstates in a sector than allowed."""


def _popcount(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.int64)
    c = np.zeros_like(x)
    while np.any(x):
        c += x & 1
        x = x >> 1
    return c


def _cat(arrays, dtype):
    return np.concatenate(arrays).astype(dtype) if arrays else np.zeros(0, dtype)


@functools.lru_cache(maxsize=16)
def _species_structure(L: int):
    """Parameter-independent part of a species with ``L`` orbitals (cached per ``L``).

    Returns ``states``, ``occ`` (per N: occupations, int), ``hop`` (per N:
    ``(rows, cols, k, sign)`` of the hopping ``c_k^+ c_0 + h.c.``, both
    directions, ``k`` = 1..L-1), ``cdag`` (per N < L: ``(src, tgt)``).
    """
    allst = np.arange(2**L, dtype=np.int64)
    pop = _popcount(allst)
    index = np.zeros(2**L, dtype=np.int64)
    states = []
    for N in range(L + 1):
        st = allst[pop == N]
        index[st] = np.arange(st.size)
        states.append(st)
    bits = np.arange(L, dtype=np.int64)
    occ, hop, cdag = [], [], []
    for N in range(L + 1):
        st = states[N]
        o = (st[:, None] >> bits[None, :]) & 1
        occ.append(o)
        rows, cols, kk, signs = [], [], [], []
        for k in range(1, L):
            src = np.nonzero((o[:, 0] == 1) & (o[:, k] == 0))[0]
            s = st[src]
            # c_k^+ c_0 |s>: c_0 has no sign, c_k^+ counts occupied orbitals 1..k-1
            sign = 1.0 - 2.0 * (_popcount(s & ((1 << k) - 2)) & 1)
            tgt = index[s ^ 1 ^ (1 << k)]
            rows += [tgt, src]
            cols += [src, tgt]
            kk.append(np.full(2 * src.size, k))
            signs += [sign, sign]
        hop.append((_cat(rows, np.int64), _cat(cols, np.int64), _cat(kk, np.int64),
                    _cat(signs, float)))
    for N in range(L):
        st = states[N]
        src = np.nonzero((st & 1) == 0)[0]
        cdag.append((src, index[st[src] | 1]))
    for arrs in (states, occ, cdag):
        for a in arrs:
            for x in (a if isinstance(a, tuple) else (a,)):
                x.flags.writeable = False
    return states, occ, hop, cdag


class Species:
    """One spin species: ``L`` orbitals (0 = impurity, 1..k bath), all particle numbers.

    Parameters
    ----------
    eps_d : float
        Impurity level (``-mu_s``).
    eps_k, V_k : ndarray (k,)
        Bath energies and impurity-bath hoppings.

    Attributes
    ----------
    L : int
    states : list of ndarray
        ``states[N]`` -- sorted bit patterns with ``N`` particles.
    diag : list of ndarray
        ``diag[N]`` -- diagonal of the one-species ``H_N`` (one-body energies).
    hop : list of scipy.sparse.csr_matrix
        ``hop[N]`` -- off-diagonal (hopping) part of ``H_N``, symmetric.
    nd : list of ndarray
        ``nd[N]`` -- impurity occupation (0/1) of each basis state.
    cdag_src, cdag_tgt : list of ndarray
        ``d^+ |states[N][src]> = |states[N+1][tgt]>`` (no sign: orbital 0 comes first).

    The bit patterns and index maps depend only on ``L`` and are shared between
    instances (:func:`_species_structure`); dense hopping blocks are made on demand.
    """

    def __init__(self, eps_d, eps_k, V_k):
        eps_k = np.asarray(eps_k, float).ravel()
        V_k = np.asarray(V_k, float).ravel()
        L = 1 + eps_k.size
        self.L = L
        e_orb = np.concatenate([[float(eps_d)], eps_k])
        self.states, occ, hop, cdag = _species_structure(L)
        self.diag = [o @ e_orb for o in occ]
        self.nd = [o[:, 0].astype(float) for o in occ]
        self.e_orb, self.V_k = e_orb, V_k
        Vfull = np.concatenate([[0.0], V_k])
        # (rows, cols, values) of the hopping per N; each (row, col) pair occurs once
        self._hop_coo = [(rows, cols, Vfull[kk] * sign) for rows, cols, kk, sign in hop]
        self.cdag_src = [c[0] for c in cdag]
        self.cdag_tgt = [c[1] for c in cdag]
        self._hop_dense = {}
        self._bounds = {}

    @functools.cached_property
    def hop(self) -> list:
        out = []
        for N, (rows, cols, vals) in enumerate(self._hop_coo):
            keep = vals != 0.0
            dim = self.states[N].size
            out.append(sp.csr_matrix((vals[keep], (rows[keep], cols[keep])), shape=(dim, dim)))
        return out

    def hop_dense(self, N: int) -> np.ndarray:
        """``hop[N]`` as a dense array (cached)."""
        T = self._hop_dense.get(N)
        if T is None:
            rows, cols, vals = self._hop_coo[N]
            dim = self.states[N].size
            T = np.zeros((dim, dim))
            T[rows, cols] = vals
            self._hop_dense[N] = T
        return T

    #: ``lambda`` grid of the sector lower bounds (see :attr:`Sector.lower_bound`).
    LAMBDAS = (0.0, 0.25, 0.5, 0.75, 1.0)

    def bound_table(self, U: float) -> np.ndarray:
        """``[i, N]`` = lowest eigenvalue of ``H_N + LAMBDAS[i] * U * n_d`` (cached per U);
        one row (lambda = 0) when ``U <= 0``."""
        lams = self.LAMBDAS if U > 0 else self.LAMBDAS[:1]
        key = float(U) if U > 0 else 0.0
        tab = self._bounds.get(key)
        if tab is None:
            tab = np.array([[np.linalg.eigvalsh(self.hop_dense(N) + np.diag(
                self.diag[N] + lam * U * self.nd[N]))[0] for N in range(self.L + 1)]
                for lam in lams])
            self._bounds[key] = tab
        return tab

    def dim(self, N: int) -> int:
        return int(self.states[N].size) if 0 <= N <= self.L else 0


class Sector:
    """The block ``(N_up, N_dn)`` of the two-species Fock space.

    ``U`` enters only through the diagonal ``U n_d,up n_d,dn``.
    """

    #: one-species dimension above which the hopping is applied as a sparse matrix
    SPARSE_MIN_DIM = 24

    def __init__(self, up: Species, dn: Species, U: float, a: int, b: int):
        self.up, self.dn, self.U, self.a, self.b = up, dn, U, a, b
        self.du, self.dd = up.dim(a), dn.dim(b)
        self.dim = self.du * self.dd
        self.nn_ud = np.outer(up.nd[a], dn.nd[b])  # n_d,up n_d,dn
        self.D_ud = up.diag[a][:, None] + dn.diag[b][None, :] + U * self.nn_ud

    @functools.cached_property
    def lower_bound(self) -> float:
        """Lower bound of the sector's energies (exact at U = 0).

        ``U n_up n_dn >= lambda U (n_up + n_dn - 1)`` for ``0 <= lambda <= 1`` (all
        commute), so ``E >= E_min(H_up + lambda U n_up) + E_min(H_dn + lambda U n_dn)
        - lambda U``; the best ``lambda`` of :attr:`Species.LAMBDAS` is taken.
        """
        tu, td = self.up.bound_table(self.U), self.dn.bound_table(self.U)
        lam = np.asarray(Species.LAMBDAS[: tu.shape[0]])
        return float(np.max(tu[:, self.a] + td[:, self.b] - lam * self.U))

    @functools.cached_property
    def _Tu(self):
        return (self.up.hop[self.a] if self.du > self.SPARSE_MIN_DIM
                else self.up.hop_dense(self.a))

    @functools.cached_property
    def _Td(self):
        return (self.dn.hop[self.b] if self.dd > self.SPARSE_MIN_DIM
                else self.dn.hop_dense(self.b))

    def dense(self) -> np.ndarray:
        """The sector Hamiltonian as a dense ``dim x dim`` matrix (Kronecker sums)."""
        du, dd = self.du, self.dd
        H = np.zeros((du, dd, du, dd))
        H += self.up.hop_dense(self.a)[:, None, :, None] * np.eye(dd)[None, :, None, :]
        H += np.eye(du)[:, None, :, None] * self.dn.hop_dense(self.b)[None, :, None, :]
        H = H.reshape(self.dim, self.dim)
        H[np.diag_indices_from(H)] += self.D_ud.ravel()
        return H

    @functools.cached_property
    def csr(self):
        """The hopping matrices ``(T_up, T_dn)`` in CSR form (for the compiled kernels)."""
        return self.up.hop[self.a], self.dn.hop[self.b]

    def matvec(self, X_bud: np.ndarray) -> np.ndarray:
        """``H`` applied to a batch of states ``X`` of shape ``(nb, d_up, d_dn)``."""
        if kernels.HAVE_NUMBA and USE_KERNELS:
            return kernels.sector_matvec(X_bud, self.D_ud, *self.csr)
        return self.matvec_numpy(X_bud)

    def matvec_numpy(self, X_bud: np.ndarray) -> np.ndarray:
        """:meth:`matvec` with numpy and scipy.sparse only (the reference of the kernels)."""
        nb, du, dd = X_bud.shape
        Y = self.D_ud[None] * X_bud
        if sp.issparse(self._Tu):
            Y += (self._Tu @ X_bud.transpose(1, 0, 2).reshape(du, nb * dd)).reshape(
                du, nb, dd).transpose(1, 0, 2)
        else:
            Y += np.matmul(self._Tu, X_bud)
        if sp.issparse(self._Td):
            Y += (self._Td @ X_bud.reshape(nb * du, dd).T).T.reshape(nb, du, dd)
        else:
            Y += np.matmul(X_bud, self._Td)  # T symmetric: Psi T^T = Psi T
        return Y

    def matvec_flat(self, X_bv: np.ndarray) -> np.ndarray:
        """:meth:`matvec` on flat states: ``(nb, dim) -> (nb, dim)``."""
        nb = X_bv.shape[0]
        return self.matvec(np.ascontiguousarray(X_bv).reshape(nb, self.du, self.dd)).reshape(
            nb, self.dim)

    def matvec_numpy_flat(self, X_bv: np.ndarray) -> np.ndarray:
        """:meth:`matvec_numpy` on flat states (the reference of the compiled path)."""
        nb = X_bv.shape[0]
        return self.matvec_numpy(np.ascontiguousarray(X_bv).reshape(
            nb, self.du, self.dd)).reshape(nb, self.dim)

    def operator(self) -> LinearOperator:
        def mv(x):
            return self.matvec_flat(x.reshape(1, -1)).ravel()

        def mm(X):
            return self.matvec_flat(X.T).T

        return LinearOperator((self.dim, self.dim), matvec=mv, matmat=mm, dtype=float)


# -- operators d^+, d on batches of states --------------------------------------------------
def apply_op(X_bud, up: Species, dn: Species, a: int, b: int, spin: int, dag: bool):
    """``d^+_spin`` (``dag``) or ``d_spin`` on states ``X`` of sector ``(a, b)``.

    Returns the batch in the target sector ``(a +- 1, b)`` or ``(a, b +- 1)``,
    or ``None`` when the target sector does not exist.
    """
    nb = X_bud.shape[0]
    if spin == 0:
        if dag:
            if a >= up.L:
                return None
            src, tgt = up.cdag_src[a], up.cdag_tgt[a]
            Y = np.zeros((nb, up.dim(a + 1), X_bud.shape[2]))
            Y[:, tgt] = X_bud[:, src]
        else:
            if a <= 0:
                return None
            src, tgt = up.cdag_src[a - 1], up.cdag_tgt[a - 1]
            Y = np.zeros((nb, up.dim(a - 1), X_bud.shape[2]))
            Y[:, src] = X_bud[:, tgt]
        return Y
    sign = -1.0 if a % 2 else 1.0  # c_dn passes the N_up up-electrons
    if dag:
        if b >= dn.L:
            return None
        src, tgt = dn.cdag_src[b], dn.cdag_tgt[b]
        Y = np.zeros((nb, X_bud.shape[1], dn.dim(b + 1)))
        Y[:, :, tgt] = sign * X_bud[:, :, src]
    else:
        if b <= 0:
            return None
        src, tgt = dn.cdag_src[b - 1], dn.cdag_tgt[b - 1]
        Y = np.zeros((nb, X_bud.shape[1], dn.dim(b - 1)))
        Y[:, :, src] = sign * X_bud[:, :, tgt]
    return Y


# -- poles ------------------------------------------------------------------------------------
def merge_poles(E_p, W_p, beta, *, rel_weight_cut=1e-14):
    """Merge (numerically) degenerate poles and drop negligible ones.

    Poles closer than ``MERGE_TOL_BETA / beta`` are chained into one cluster
    and replaced by a single pole of the summed weight at the weighted mean
    energy; then poles with ``W < rel_weight_cut * sum(W)`` are dropped.  Before the
    merge, poles with ``|W| <= rel_weight_cut * sum|W| / N`` (``N`` poles) are dropped:
    together they weigh at most ``rel_weight_cut`` of the total, and most of the raw
    poles of a thermal Lehmann sum are such (52,800 -> 8,274 for 4 bath sites at
    beta = 50: the sort was a fifth of ED-4e's Lehmann sum).
    """
    E = np.asarray(E_p, float).ravel()
    W = np.asarray(W_p, float).ravel()
    if E.size == 0:
        return E, W
    aw = np.abs(W)
    keep = aw > rel_weight_cut * aw.sum() / E.size
    if not keep.all():
        E, W = E[keep], W[keep]
        if E.size == 0:
            return E, W
    o = np.argsort(E, kind="stable")
    E, W = E[o], W[o]
    new = np.concatenate([[True], np.diff(E) > MERGE_TOL_BETA / beta])
    grp = np.cumsum(new) - 1
    Wg = np.bincount(grp, weights=W)
    Ebar = np.bincount(grp, weights=W * E)
    E0 = E[new]
    safe = Wg != 0
    Eg = np.where(safe, Ebar / np.where(safe, Wg, 1.0), E0)
    keep = np.abs(Wg) > rel_weight_cut * max(Wg.sum(), 1e-300)
    return Eg[keep], Wg[keep]


def ph_mirror(E_p, W_p, beta, *, rel_weight_cut=1e-14):
    """The particle-hole symmetric completion ``(E, W/2) + (-E, W/2)``, merged.

    With a particle-hole symmetric Hamiltonian the states of the sectors ``(a, b)`` and
    ``(L - a, L - b)`` give mirror-image contributions, so the poles of the orbit
    representatives (weighted by the orbit size) are completed by their mirror images.
    """
    E = np.asarray(E_p, float)
    W = np.asarray(W_p, float)
    return merge_poles(np.concatenate([E, -E]), np.concatenate([W, W]) / 2, beta,
                       rel_weight_cut=rel_weight_cut)


def _cf_at(z_b, a_bn, b_bn, n):
    """``1/(z - a_0 - b_1^2/(z - a_1 - ...))`` truncated after ``n`` levels, per chain."""
    f = np.zeros(z_b.shape, complex)
    for j in range(n - 1, -1, -1):
        bj2 = b_bn[:, j] ** 2 if j < n - 1 else 0.0
        f = 1.0 / (z_b - a_bn[:, j] - bj2 * f)
    return f


def lanczos_tridiag_batch(matvec, X0_bv, depth, b_tol, *, z_check=None, cf_tol=0.0,
                          check_every=8, sector=None):
    """Lanczos (no reorthogonalisation) on a batch of start vectors.

    Parameters
    ----------
    matvec : callable
        ``(nb, dim) -> (nb, dim)``, the Hamiltonian of the target sector.
    X0_bv : ndarray (nb, dim)
        Start vectors (not normalised).
    depth : int
        Maximal number of Lanczos steps.
    b_tol : float
        A chain stops when ``b_n < b_tol`` (invariant Krylov space).
    z_check : ndarray (nb,), complex, optional
        Adaptive depth: every ``check_every`` steps the continued fraction of each
        chain is evaluated at ``z_check`` (the lowest Matsubara frequency shifted by
        the chain's initial energy, where convergence is slowest), and a chain stops
        once it changed by less than ``cf_tol`` (a number or one per chain; relative to
        ``1/|Im z|``, its largest
        possible value) since the previous check.

    sector : Sector, optional
        The sector whose Hamiltonian ``matvec`` applies: the recurrence then runs in the
        compiled kernel (:func:`._ed_kernels.lanczos_steps`), same coefficients to
        round-off.

    Returns
    -------
    b0 : ndarray (nb,)
        Norms of the start vectors.
    a_bn, b_bn : ndarray (nb, depth)
        Diagonal ``a_n`` and off-diagonal ``b_{n+1}`` of each chain.
    length : ndarray (nb,) int
        Number of valid steps of each chain.
    """
    if sector is not None and kernels.HAVE_NUMBA and USE_KERNELS:
        return _lanczos_compiled(sector, X0_bv, depth, b_tol, z_check, cf_tol, check_every)
    X0, nb, b0, a_bn, b_bn, length, act = _chains(X0_bv, depth)
    if act.size == 0:
        return b0, a_bn, b_bn, length
    q = X0[act] / b0[act, None]
    q_prev = np.zeros_like(q)
    b_prev = np.zeros(act.size)
    cf_tol = np.broadcast_to(np.asarray(cf_tol, float), (nb,))
    adaptive = z_check is not None and bool(np.any(cf_tol > 0))
    if adaptive:
        z_check = np.asarray(z_check, complex)
        f_prev = np.full(nb, np.nan, complex)
    for n in range(depth):
        w = matvec(q)
        a = np.einsum("ij,ij->i", q, w)
        w -= a[:, None] * q
        w -= b_prev[:, None] * q_prev
        b = np.linalg.norm(w, axis=1)
        a_bn[act, n] = a
        b_bn[act, n] = b
        length[act] = n + 1
        if n == depth - 1:
            break
        go = b >= b_tol
        if adaptive and (n + 1) % check_every == 0:
            f = _cf_at(z_check[act], a_bn[act], b_bn[act], n + 1)
            scale = np.abs(z_check[act].imag)
            go &= ~(np.abs(f - f_prev[act]) * scale < cf_tol[act])
            f_prev[act] = f
        if not go.all():
            act, q, w, b = act[go], q[go], w[go], b[go]
            if act.size == 0:
                break
        q_prev = q
        q = w / b[:, None]
        b_prev = b
    return b0, a_bn, b_bn, length


def _chains(X0_bv, depth):
    """Start of a batch of chains: the start vectors, their count and norms, empty
    coefficient arrays and lengths, the chains with a nonzero start."""
    X0 = np.asarray(X0_bv, float)
    nb = X0.shape[0]
    b0 = np.linalg.norm(X0, axis=1)
    return (X0, nb, b0, np.zeros((nb, depth)), np.zeros((nb, depth)),
            np.zeros(nb, dtype=np.int64), np.nonzero(b0 > 0)[0])


def _lanczos_compiled(sec, X0_bv, depth, b_tol, z_check, cf_tol, check_every):
    """:func:`lanczos_tridiag_batch` with the compiled recurrence (same stopping rules)."""
    X0, nb, b0, a_bn, b_bn, length, act = _chains(X0_bv, depth)
    if act.size == 0:
        return b0, a_bn, b_bn, length
    q = np.ascontiguousarray((X0[act] / b0[act, None]).reshape(act.size, sec.du, sec.dd))
    qp = np.zeros_like(q)
    bp = np.zeros(act.size)
    a_loc = np.zeros((act.size, depth))
    b_loc = np.zeros((act.size, depth))
    cf_tol = np.broadcast_to(np.asarray(cf_tol, float), (nb,))
    adaptive = z_check is not None and bool(np.any(cf_tol > 0))
    if adaptive:
        z_check = np.asarray(z_check, complex)
        f_prev = np.full(nb, np.nan, complex)
    Tu, Td = sec.csr
    n0 = 0
    while True:
        n1 = min(depth, n0 + check_every) if adaptive else depth
        ln = kernels.lanczos_steps(q, qp, bp, n0, n1, a_loc, b_loc, b_tol, sec.D_ud, Tu, Td)
        a_bn[act], b_bn[act], length[act] = a_loc, b_loc, ln
        if n1 == depth:
            break
        go = ln == n1
        if adaptive:
            f = _cf_at(z_check[act], a_loc, b_loc, n1)
            go &= ~(np.abs(f - f_prev[act]) * np.abs(z_check[act].imag) < cf_tol[act])
            f_prev[act] = f
        if not go.all():
            act, q, qp, bp = act[go], q[go], qp[go], bp[go]
            a_loc, b_loc = a_loc[go], b_loc[go]
            if act.size == 0:
                break
        n0 = n1
    return b0, a_bn, b_bn, length


def cf_poles(b0, a_n, b_n):
    """Poles of ``b0^2 / (z - a0 - b1^2/(z - a1 - ...))``: eigen-decompose the tridiagonal.

    Returns ``(e, w)`` with ``e`` the eigenvalues and ``w = b0^2 |v_0|^2``.
    """
    if a_n.size == 1:
        return a_n.copy(), np.array([b0**2])
    e, v = eigh_tridiagonal(a_n, b_n[: a_n.size - 1])
    return e, b0**2 * v[0] ** 2


# -- eigen data of a sector -------------------------------------------------------------------
class SectorEigen:
    """Eigenpairs of a sector: ``E`` (ne,), ``vecs`` (dim, ne), ``complete`` = all eigenstates."""

    __slots__ = ("E", "vecs", "complete", "how")

    def __init__(self, E, vecs, complete, how):
        self.E, self.vecs, self.complete, self.how = E, vecs, complete, how

    def twin(self, sec_twin: Sector) -> SectorEigen:
        """Eigen data of the spin-swapped sector (spin-symmetric Hamiltonians only)."""
        ne = self.E.size
        # (b, a) block: Psi_twin[i_up, j_dn] = Psi[j_up, i_dn] (c_dn sign: global per state)
        v = self.vecs.reshape(sec_twin.dd, sec_twin.du, ne).transpose(1, 0, 2)
        return SectorEigen(self.E, v.reshape(sec_twin.dim, ne), self.complete, self.how)


def _eigh_sector(sec: Sector, how="full") -> SectorEigen:
    E, V = np.linalg.eigh(sec.dense())
    return SectorEigen(E, V, True, how)


class _Model:
    """Both species, all sectors, and a cache of eigen data.

    ``spin_symmetric``: ``up`` and ``dn`` are the same species, so the sectors
    ``(a, b)`` and ``(b, a)`` have the same spectrum.  ``ph_symmetric``: each species
    is particle-hole symmetric (bath levels in mirror pairs ``(eps, V)``, ``(-eps, V)``
    and ``eps_d = -U/2``), so the sectors ``(a, b)`` and ``(L - a, L - b)`` have the same
    spectrum (the particle-hole transformation, with the mirror pairs exchanged, maps
    ``H`` onto itself; the constant it generates is zero).  Its Green's function
    contributions are the mirror images ``E -> -E`` of each other (:func:`ph_mirror`).
    """

    def __init__(self, up: Species, dn: Species, U: float, spin_symmetric: bool,
                 ph_symmetric: bool = False):
        self.up, self.dn, self.U = up, dn, U
        self.L = up.L
        self.spin_symmetric = spin_symmetric
        self.ph_symmetric = ph_symmetric
        self.sectors = {(a, b): Sector(up, dn, U, a, b)
                        for a in range(self.L + 1) for b in range(self.L + 1)}
        self.eig: dict = {}

    @functools.cached_property
    def lanczos_safe(self) -> bool:
        """Plain Lanczos may resolve the low states (:func:`lanczos_low_states`): ``U > 0``
        and no two bath sites of a species alike (relative ``1e-6``).  Otherwise sectors
        can hold exactly degenerate eigenvalues (free fermions; a decoupled
        antisymmetric combination of equal sites), of which one start vector sees one."""
        if not self.U > 0:
            return False
        for sp_ in (self.up, self.dn):
            eps, V = sp_.e_orb[1:], np.abs(sp_.V_k)
            if eps.size < 2:
                continue
            scale = max(1.0, float(np.abs(eps).max()), float(V.max()))
            de = np.abs(eps[:, None] - eps[None, :]) + np.abs(V[:, None] - V[None, :])
            np.fill_diagonal(de, np.inf)
            if de.min() <= 1e-6 * scale:
                return False
        return True

    def canonical(self, key):
        """The spin-twin representative (eigen data are cached under it)."""
        a, b = key
        return (min(a, b), max(a, b)) if self.spin_symmetric else key

    def orbit(self, key) -> set:
        """The sectors with the same spectrum as ``key`` (spin twin, particle-hole image)."""
        a, b = key
        o = {(a, b), (b, a)} if self.spin_symmetric else {(a, b)}
        if self.ph_symmetric:
            o |= {(self.L - x, self.L - y) for x, y in o}
        return o

    def representative(self, key):
        """The smallest key of the orbit (also the spin-twin representative)."""
        return min(self.orbit(key))

    def multiplicity(self, key) -> int:
        """Number of sectors in the orbit of ``key``: each of its states stands for this many."""
        return len(self.orbit(key))

    def get(self, key):
        """Eigen data of ``key`` if known (computed directly or via the twin)."""
        if key in self.eig:
            return self.eig[key]
        if self.spin_symmetric and key[::-1] in self.eig:
            ev = self.eig[key[::-1]].twin(self.sectors[key])
            self.eig[key] = ev
            return ev
        return None

    def full(self, key, how="full"):
        ev = self.get(key)
        if ev is None or not ev.complete:
            ck = self.canonical(key)
            ev = _eigh_sector(self.sectors[ck], how)
            self.eig[ck] = ev
            if ck != key:
                self.eig.pop(key, None)
                ev = self.get(key)
        return ev


def _neighbours(key, L):
    a, b = key
    out = []
    for da, db in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        if 0 <= a + da <= L and 0 <= b + db <= L:
            out.append((a + da, b + db))
    return out


# -- Path A -----------------------------------------------------------------------------------
def full_lehmann_poles(up, dn, U, beta, spin_symmetric, *, rel_weight_cut=1e-14):
    """Path A: diagonalise every relevant sector completely; exact Lehmann poles.

    ``G_s(i w) = (1/Z) sum_{m,n} |<m|d^+_s|n>|^2 (e^{-beta E_n} + e^{-beta E_m})
    / (i w - E_m + E_n)``.

    Sectors all of whose states have ``e^{-beta (E - E0)} < 1e-16`` and that
    do not neighbour a sector with weight are not diagonalised (their poles
    would have weights < 2e-16).

    Returns
    -------
    poles : list of (E_p, W_p), one per spin
    stats : dict
        ``E0``, ``Z``, ``double_occupancy``, ``energy``, ``density``, ``sectors_diagonalised``.
    """
    L = up.L
    thresh = math.log(1e16) / beta
    if 4**L <= COMPILED_MAX_FOCK and kernels.HAVE_NUMBA and USE_KERNELS:
        return _full_lehmann_small(up, dn, U, beta, spin_symmetric, thresh, rel_weight_cut)
    model = _Model(up, dn, U, spin_symmetric)
    if 4**L <= PRUNE_MIN_FOCK:  # small: diagonalising everything is cheaper than bounds
        keys = list(model.sectors)
        E0 = min(float(model.full(key).E[0]) for key in keys)
        weighted = keys
    else:
        keys = sorted(model.sectors, key=lambda k: model.sectors[k].lower_bound)
        E0 = np.inf
        weighted = []
        for key in keys:
            sec = model.sectors[key]
            if sec.lower_bound > E0 + thresh:
                break
            ev = model.full(key)
            E0 = min(E0, float(ev.E[0]))
            weighted.append(key)
    weighted = [k for k in weighted if model.get(k).E[0] <= E0 + thresh]
    needed = _with_neighbours(weighted, L)
    for k in needed:
        model.full(k)
    wset = set(weighted)
    # Boltzmann factors, Z, thermal averages
    Z = 0.0
    d_occ = energy = 0.0
    dens = np.zeros(2)
    boltz = {}
    for k in needed:
        ev = model.get(k)
        bf = np.exp(-beta * (ev.E - E0))
        boltz[k] = bf
        if k not in wset:
            continue
        sec = model.sectors[k]
        p = ev.vecs.reshape(sec.du, sec.dd, -1) ** 2
        Z += bf.sum()
        energy += bf @ ev.E
        d_occ += bf @ np.einsum("ude,ud->e", p, sec.nn_ud)
        dens[0] += bf @ np.einsum("ude,u->e", p, up.nd[k[0]])
        dens[1] += bf @ np.einsum("ude,d->e", p, dn.nd[k[1]])
    spins = (0,) if spin_symmetric else (0, 1)
    raw = []
    for s in spins:
        Es, Ws = [], []
        for k in needed:
            t = (k[0] + 1, k[1]) if s == 0 else (k[0], k[1] + 1)
            if t not in needed or (k not in wset and t not in wset):
                continue
            sec, evn, evt = model.sectors[k], model.get(k), model.get(t)
            ne = evn.E.size
            X = evn.vecs.T.reshape(ne, sec.du, sec.dd)
            Y = apply_op(X, up, dn, k[0], k[1], s, True).reshape(ne, -1)
            M2 = (Y @ evt.vecs) ** 2  # (n, m)
            fac = boltz[k][:, None] + boltz[t][None, :]
            Es.append((evt.E[None, :] - evn.E[:, None]).ravel())
            Ws.append((M2 * fac).ravel() / Z)
        raw.append((np.concatenate(Es), np.concatenate(Ws)))
    return _lehmann_result(raw, E0, Z, d_occ, energy, dens, len(needed), len(model.sectors),
                           beta, rel_weight_cut)


def _with_neighbours(keys, L) -> set:
    """The sectors ``keys`` and their neighbours (one particle more or less of one spin)."""
    out = set(keys)
    for k in keys:
        out.update(_neighbours(k, L))
    return out


def _lehmann_result(raw, E0, Z, d_occ, energy, dens, n_needed, n_sectors, beta,
                    rel_weight_cut):
    """Path A's ``(poles, stats)`` from the raw poles of each spin computed (``raw``: one
    ``(E, W)`` pair for a spin-symmetric AIM, whose other spin is the same) and the
    Boltzmann sums (``Z`` times ``<n_up n_dn>``, ``<H>``, ``<n_s>``)."""
    poles = [merge_poles(E, W, beta, rel_weight_cut=rel_weight_cut) for E, W in raw]
    dens = np.asarray(dens, float)
    if len(raw) == 1:
        poles.append(poles[0])
        dens = np.full(2, dens.mean())
    stats = dict(E0=float(E0), Z=float(Z), double_occupancy=d_occ / Z, energy=energy / Z,
                 density=dens / Z, sectors_diagonalised=n_needed, sectors_total=n_sectors)
    return poles, stats


def _full_lehmann_small(up, dn, U, beta, spin_symmetric, thresh, rel_weight_cut):
    """:func:`full_lehmann_poles` for ``4^L <= COMPILED_MAX_FOCK`` with the compiled kernel
    (``_ed_kernels.lehmann_small``: the same sectors, pruning by the sectors' energy bounds
    above ``PRUNE_MIN_FOCK``, sums and rules; results equal to round-off, tested against the
    numpy path)."""
    L1 = up.L + 1
    bounds = None
    if 4**up.L > PRUNE_MIN_FOCK:
        bounds = np.array([Sector(up, dn, U, a, b).lower_bound for a in range(L1)
                           for b in range(L1)])
    E_u, W_u, E_d, W_d, E0, Z, d_occ, energy, dens, weighted = kernels.lehmann_small(
        up.e_orb, up.V_k, dn.e_orb, dn.V_k, U, beta, spin_symmetric, thresh, bounds)
    needed = _with_neighbours([(i // L1, i % L1) for i in np.flatnonzero(weighted)], up.L)
    raw = [(E_u, W_u)] if spin_symmetric else [(E_u, W_u), (E_d, W_d)]
    return _lehmann_result(raw, E0, Z, d_occ, energy, dens, len(needed), L1 * L1, beta,
                           rel_weight_cut)


# -- Path B -----------------------------------------------------------------------------------
#: Relative residual tolerance of ARPACK (``eigsh(tol=...)``).  ``0`` (machine precision)
#: costs 13-20 % more at 8 bath sites (Bethe, beta = 50); measured with 1e-10 against 0
#: (beta = 10, 50; U = 2, 3): |dG(tau)| <= 1e-11, |dG(i w)| <= 3e-11.
ARPACK_TOL = 1e-10


def _eigsh_lowest(sec: Sector, k: int):
    op = sec.operator()
    v0 = np.random.default_rng(12345 + 1000 * sec.a + sec.b).standard_normal(sec.dim)
    ncv = min(sec.dim, max(2 * k + 1, k + 20))
    try:
        E, V = eigsh(op, k=k, which="SA", v0=v0, tol=ARPACK_TOL, ncv=ncv,
                     maxiter=100 * sec.dim)
    except ArpackNoConvergence as err:  # pragma: no cover - ARPACK rarely fails here
        raise RuntimeError(
            f"ARPACK did not converge for sector {(sec.a, sec.b)} (dim {sec.dim}, k={k}): {err}"
        ) from None
    o = np.argsort(E)
    return E[o], V[:, o]


#: Lanczos steps of :func:`estimate_low_count`.
ESTIMATE_STEPS = 120


#: Longest Lanczos run :func:`lanczos_low_states` continues to before it gives up (ARPACK
#: then takes the sector), and the steps added between convergence checks.
LOW_MAX_STEPS = 1000
LOW_CHUNK = 40
#: Converged Ritz values closer than this (relative to the energy scale) are taken as copies
#: ("ghosts") of one eigenvalue.  Two true eigenvalues that close would lose one of them:
#: the completeness check of :func:`lanczos_low_states` finds it, and ARPACK takes over.
GHOST_RTOL = 1e-7


class LanczosRun:
    """A plain Lanczos run on a sector from a seeded random vector, continued on demand,
    with its Lanczos vectors stored (``Q``, for Ritz vectors).

    Attributes: ``n`` steps done, ``a``/``b`` the coefficients, ``ended`` when the Krylov
    space became invariant (``b < 1e-12``).
    """

    B_TOL = 1e-12

    def __init__(self, sec: Sector, max_steps: int, seed: int):
        self.sec = sec
        self.max = int(min(max_steps, sec.dim))
        x = np.random.default_rng(seed).standard_normal(sec.dim)
        self.a = np.zeros(self.max)
        self.b = np.zeros(self.max)
        self.Q = np.empty((self.max, sec.du, sec.dd))
        self.n = 0
        self.ended = False
        self._q = (x / np.linalg.norm(x)).reshape(1, sec.du, sec.dd)
        self._qp = np.zeros_like(self._q)
        self._bp = np.zeros(1)

    def extend(self, n1: int):
        """Continue the run to ``n1`` steps (at most ``max``)."""
        n1 = min(int(n1), self.max)
        if self.ended or n1 <= self.n:
            return
        sec = self.sec
        if kernels.HAVE_NUMBA and USE_KERNELS:
            ln = int(kernels.lanczos_steps(self._q, self._qp, self._bp, self.n, n1,
                                           self.a[None], self.b[None], self.B_TOL, sec.D_ud,
                                           *sec.csr, Q=self.Q)[0])
        else:
            ln = n1
            for n in range(self.n, n1):
                q = self._q[0]
                self.Q[n] = q
                w = sec.matvec_numpy(self._q)[0]
                a = float(np.vdot(q, w))
                w -= a * q + self._bp[0] * self._qp[0]
                b = float(np.linalg.norm(w))
                self.a[n], self.b[n], self._bp[0] = a, b, b
                if b < self.B_TOL:
                    ln = n + 1
                    break
                self._qp[0] = q
                self._q[0] = w / b
        self.ended = ln < n1
        self.n = ln

    def ritz(self):
        """Ritz values, the eigenvectors ``S`` of the tridiagonal matrix and the residual
        bounds ``b_n |S_{n-1, j}|`` (zero once the space is invariant)."""
        n = self.n
        if n == 1:
            return self.a[:1].copy(), np.ones((1, 1)), np.array([0.0 if self.ended
                                                                  else self.b[0]])
        th, S = eigh_tridiagonal(self.a[:n], self.b[: n - 1])
        res = np.zeros(n) if self.ended else np.abs(self.b[n - 1] * S[n - 1])
        return th, S, res


def estimate_low_count(sec: Sector, thresh: float, E0: float, *, steps: int = ESTIMATE_STEPS):
    """Estimated numbers of eigenvalues of a sector below ``min(E0, E_min) + thresh``
    (``(distinct, quadrature)``), the lowest Ritz value (an upper bound of the sector's
    lowest energy), and the run.

    A plain Lanczos run (:class:`LanczosRun`, no reorthogonalisation, ``steps`` matvecs
    from a seeded random vector); the count is the larger of the number of distinct Ritz
    values below the cap (copies closer than ``1e-8`` merged: the "ghosts" of converged
    eigenvalues) and the Gauss-quadrature estimate of the trace (``dim`` times the weight
    of the start vector below the cap), which counts the eigenvalues an unconverged Ritz
    value still stands for.  The distinct count decides whether a sector is "saturated"
    (FTLM; as before the quadrature count existed: the quadrature's larger counts at
    intermediate temperature sent sectors to FTLM alone, with error bars up to 4e-2 at
    beta D ~ 5-10, k = 8); the larger of the two sizes the ARPACK request.  The run is
    continued by :func:`lanczos_low_states`.
    """
    run = LanczosRun(sec, LOW_MAX_STEPS, 777 + 1000 * sec.a + sec.b)
    run.extend(steps)
    if run.n < 2:
        return (1, 1), float(run.a[0]), None
    th, S, _ = run.ritz()
    cap = min(E0, float(th[0])) + thresh
    below = th <= cap
    low = th[below]
    count = int(1 + np.count_nonzero(np.diff(low) > 1e-8)) if low.size else 1
    quad = count
    if not run.ended:
        # Gauss quadrature of the trace: dim x (weight of the start vector below the cap)
        # counts the eigenvalues a Ritz value still stands for (unbiased, ~1/sqrt(count))
        q = sec.dim * float(np.sum(S[0, below] ** 2)) / float(np.sum(S[0] ** 2))
        quad = max(count, int(round(q)))
    return (count, quad), float(th[0]), run


def lanczos_low_states(sec: Sector, run: LanczosRun, E0: float, thresh: float, tol: float,
                       *, max_steps: int = LOW_MAX_STEPS):
    """The eigenpairs of ``sec`` below ``cap = min(E0, E_min) + thresh`` from the plain
    Lanczos ``run``, continued until they have converged; ``None`` when it cannot vouch
    for them (then ARPACK takes the sector).

    Without reorthogonalisation every converged eigenvalue is repeated later ("ghost"
    copies, which emerge with large residuals and then converge onto it).  The run goes on
    until every Ritz value below the cap has a residual bound below ``tol`` or lies within
    its residual bound of one that has (an emerging copy).  One Ritz vector per converged
    eigenvalue (copies closer than ``GHOST_RTOL`` merged) is built from the stored Lanczos
    vectors; the set is orthonormalised and refined by a Rayleigh-Ritz step, and every
    true residual ``||H v - E v||`` must be below ``tol``.  Completeness is then checked
    independently: a second Lanczos run from another random vector, with the found states
    projected out, must show its lowest Ritz value above the cap by more than its residual
    bound (it would converge to any state the first run missed: a degenerate partner, or
    an eigenvalue the start vector hardly overlapped).  Returns ``(E, V)`` with one more
    entry above the cap: the lower end ``theta - r`` of that check (its vector is that of
    the check's Ritz value; it is pruned by the caller, and bounds the omitted weight).
    """
    while True:
        th, S, res = run.ritz()
        scale = max(1.0, float(np.abs(th).max()))
        cap = min(E0, float(th[0])) + thresh
        p = int(np.searchsorted(th, cap, side="right"))
        if run.ended and run.n < sec.dim:
            return None  # an invariant subspace: degenerate eigenvalues
        conv = res <= tol
        ok = 0 < p < th.size
        for j in np.nonzero(~conv[:p])[0]:
            near = np.abs(th[conv] - th[j]) <= res[j] + res[conv] + GHOST_RTOL * scale
            if not near.any():
                ok = False
                break
        if ok:
            break
        if run.ended or run.n >= min(max_steps, run.max):
            return None
        run.extend(run.n + LOW_CHUNK)
    cj = np.nonzero(conv[:p])[0]
    if cj.size == 0:
        return None
    n = run.n
    V = S[:, cj].T @ run.Q[:n].reshape(n, sec.dim)
    # one vector per eigenvalue: of its copies, the Ritz vector of norm closest to 1 (a
    # copy still forming has a short Ritz vector -- the basis has lost orthogonality)
    grp = np.cumsum(np.concatenate([[True], np.diff(th[cj]) > GHOST_RTOL * scale])) - 1
    nrm = np.linalg.norm(V, axis=1)
    good = np.minimum(nrm, 1.0 / np.maximum(nrm, 1e-300))
    pick = [int(np.flatnonzero(grp == g)[np.argmax(good[grp == g])]) for g in range(grp[-1] + 1)]
    if good[pick].min() < 0.5:
        return None
    V = V[pick]
    Qv, _ = np.linalg.qr(V.T)
    V = np.ascontiguousarray(Qv.T)
    HV = sec.matvec_flat(V)
    E, C = np.linalg.eigh(0.5 * (V @ HV.T + HV @ V.T))
    V, HV = C.T @ V, C.T @ HV
    r = np.linalg.norm(HV - E[:, None] * V, axis=1)
    if np.any(r > tol):
        return None
    rest = _deflated_lowest(sec, V, cap, tol, seed=991 + 1000 * sec.a + sec.b)
    if rest is None:
        return None
    e_rest, v_rest = rest
    return np.append(E, e_rest), np.vstack([V, v_rest[None]]).T


#: Steps of the completeness check of :func:`lanczos_low_states` (at most).
CHECK_MAX_STEPS = 200


def _deflated_lowest(sec: Sector, V: np.ndarray, cap: float, tol: float, *, seed: int):
    """Lowest eigenvalue of ``H`` on the complement of the orthonormal rows of ``V``:
    ``(theta - r, Ritz vector)`` once ``theta - r > cap`` (``r`` its residual bound), or
    ``None`` if a state below the cap shows up or ``CHECK_MAX_STEPS`` do not decide."""
    x = np.random.default_rng(seed).standard_normal(sec.dim)
    for _ in range(2):
        x -= V.T @ (V @ x)
    q = x / np.linalg.norm(x)
    q_prev = np.zeros_like(q)
    b_prev = 0.0
    a_n, b_n, Qs = [], [], []
    n_max = min(CHECK_MAX_STEPS, sec.dim - V.shape[0])
    for n in range(n_max):
        Qs.append(q)
        w = sec.matvec_flat(q[None])[0]
        w -= V.T @ (V @ w)
        a = float(q @ w)
        w -= a * q + b_prev * q_prev
        w -= V.T @ (V @ w)
        b = float(np.linalg.norm(w))
        a_n.append(a)
        b_n.append(b)
        if (n + 1) % 20 == 0 or b < LanczosRun.B_TOL or n == n_max - 1:
            if len(a_n) == 1:
                th, Sm = np.array(a_n), np.ones((1, 1))
            else:
                th, Sm = eigh_tridiagonal(np.array(a_n), np.array(b_n[:-1]))
            r0 = abs(b * Sm[-1, 0]) if b >= LanczosRun.B_TOL else 0.0
            if th[0] + r0 <= cap:  # a state below the cap that the first run missed
                return None
            if th[0] - r0 > cap:
                v = Sm[:, 0] @ np.array(Qs)
                return float(th[0] - r0), v / np.linalg.norm(v)
            if b < LanczosRun.B_TOL:
                return None
        q_prev, q = q, w / b
        b_prev = b
    return None


def _too_many(key, dim, k, cutoff, beta, dim_fallback):
    return (f"sector (N_up, N_dn) = {key} (dimension {dim}) has at least {k} eigenstates "
            f"with Boltzmann weight exp(-beta (E - E0)) > cutoff = {cutoff:g} at beta = "
            f"{beta:g}, more than n_states_max allows, and it is too large (> {dim_fallback}) "
            f"to diagonalise completely.  Allow finite-temperature Lanczos (ftlm=True, the "
            f"default), increase n_states_max, or use a smaller bath.")


def low_spectrum(model: _Model, beta, cutoff, *, n_states_max, dim_full, dim_fallback,
                 k_start=4, ftlm=True, tol=1e-9):
    """Path B step 1: all eigenstates with ``e^{-beta (E - E0)} > cutoff`` in every sector.

    Sectors are visited in order of their lower bound (:attr:`Sector.lower_bound`,
    exact at ``U = 0``); a sector whose bound lies
    more than ``-ln(cutoff)/beta`` above the lowest energy found so far holds
    no state above the cutoff and is skipped.  A sector with ``dim <= dim_full``
    is diagonalised completely; a larger one with ARPACK (``eigsh``, ``tol=ARPACK_TOL``),
    asking for the number of states :func:`estimate_low_count` predicts (plus a
    margin) and doubling it while the highest one found is still above the
    cutoff.  When more than ``n_states_max`` (or more than a third of the sector)
    would be needed, the sector is diagonalised completely if ``dim <=
    dim_fallback``; otherwise :class:`TooManyStatesError` is raised.

    Returns
    -------
    kept : dict key -> (E_e, vecs_ve)
        The kept states of each canonical sector.
    info : dict
        ``E0``, per-sector diagnostics and the bound on the omitted weight.
    """
    thresh = -math.log(cutoff) / beta
    keys = sorted({model.representative(k) for k in model.sectors},
                  key=lambda k: (model.sectors[k].lower_bound, k))
    E0 = np.inf
    found = {}  # key -> (E, vecs, complete, how)
    hot = {}  # sectors sampled by FTLM: key -> their exactly known eigenvectors, or None
    skipped, deferred = [], []
    for key in keys:
        sec = model.sectors[key]
        if sec.lower_bound > E0 + thresh:
            skipped.append((key, sec.lower_bound))
            continue
        if sec.dim <= max(dim_full, 8):
            ev = model.full(key)
            E0 = min(E0, float(ev.E[0]))
            found[key] = (ev.E, ev.vecs, True, "full")
            continue
        # one ARPACK request sized by a cheap estimate (doubling only when it was short)
        (k, k_quad), e_low, est = estimate_low_count(sec, thresh, E0)
        # more states than n_states_max: ARPACK would cost more than sampling the sector
        saturated = k >= 0.8 * min(ESTIMATE_STEPS, sec.dim) or k > n_states_max
        if est is not None and not saturated:
            cap = min(E0, e_low) + thresh
            e_min = e_low - float(est.ritz()[2][0])
            if e_min > cap:
                # the sector's lowest state (converged Ritz value) is above the cap
                skipped.append((key, e_min))
                continue
            pairs = (lanczos_low_states(sec, est, E0, thresh, tol) if model.lanczos_safe
                     else None)
            if pairs is not None:
                E0 = min(E0, float(pairs[0][0]))
                found[key] = (pairs[0], pairs[1], False, "lanczos")
                continue
        if saturated:
            # very many thermal states (more than n_states_max, or the estimate saw almost
            # only states below the cap): decided below -- complete diagonalisation, or
            # FTLM if a sector too large for that needs FTLM anyway
            E0 = min(E0, e_low)
            if sec.dim <= dim_fallback:
                deferred.append(key)
                continue
            if not ftlm:
                raise TooManyStatesError(_too_many(key, sec.dim, k, cutoff, beta, dim_fallback))
            hot[key] = None
            continue
        k = max(k, k_quad)  # the ARPACK request: the quadrature count where it is larger
        k = min(max(k_start, k + 4, int(1.25 * k) + 2), n_states_max, sec.dim - 2)
        while True:
            E, V = _eigsh_lowest(sec, k)
            E0 = min(E0, float(E[0]))
            if E[-1] > E0 + thresh:  # the highest found state is below the cutoff: done
                found[key] = (E, V, False, "eigsh")
                break
            k_new = min(2 * k, n_states_max)
            if k_new <= k or k_new > sec.dim // 3:
                if sec.dim <= dim_fallback:
                    ev = model.full(key, how="fallback_full")
                    E0 = min(E0, float(ev.E[0]))
                    found[key] = (ev.E, ev.vecs, True, "fallback_full")
                    break
                if not ftlm:
                    raise TooManyStatesError(_too_many(key, sec.dim, k, cutoff, beta,
                                                       dim_fallback))
                # hybrid: the k lowest states exactly, the rest of the sector by FTLM
                hot[key] = np.ascontiguousarray(V.T)
                found[key] = (E, V, False, "eigsh+ftlm")
                break
            k = k_new
    for key in deferred:
        if hot and model.sectors[key].dim > dim_full:
            hot[key] = None
        else:
            ev = model.full(key, how="fallback_full")
            E0 = min(E0, float(ev.E[0]))
            found[key] = (ev.E, ev.vecs, True, "fallback_full")
    # prune to the cutoff with the final E0 and collect diagnostics
    kept, sectors_info = {}, {}
    Z = 0.0
    omitted = 0.0
    mult = {k: model.multiplicity(k) for k in keys}
    for key, (E, V, complete, how) in found.items():
        bf = np.exp(-beta * (E - E0))
        keep = bf > cutoff if key not in hot else np.ones(E.size, bool)
        nk = int(keep.sum())
        dim = model.sectors[key].dim
        if complete:
            om = float(bf[~keep].sum())
        elif key in hot:  # FTLM samples the rest of the sector
            om = 0.0
        else:  # the dim - nk unseen/discarded states all lie at or above E[-1]
            om = float((dim - nk) * bf[-1])
        omitted += mult[key] * om
        Z += mult[key] * float(bf[keep].sum())
        if nk:
            kept[key] = (E[keep], V[:, keep])
        sectors_info[key] = dict(dim=dim, n_kept=nk, how=how,
                                 highest_kept_weight=float(bf[keep][-1]) if nk else 0.0,
                                 omitted_weight_bound=om)
    for key, e_min in skipped:
        sec = model.sectors[key]
        om = float(sec.dim * np.exp(-beta * (e_min - E0)))
        omitted += mult[key] * om
        sectors_info[key] = dict(dim=sec.dim, n_kept=0, how="skipped", highest_kept_weight=0.0,
                                 omitted_weight_bound=om)
    for key, exact in hot.items():
        if exact is None:  # sampled only
            sectors_info[key] = dict(dim=model.sectors[key].dim, n_kept=0, how="ftlm", n_exact=0)
        else:  # hybrid: its exact states are in `found`
            sectors_info[key]["n_exact"] = int(exact.shape[0])
    if Z > 0:
        for v in sectors_info.values():
            if "highest_kept_weight" in v:
                v["highest_kept_weight"] /= Z
                v["omitted_weight_bound"] /= Z
    info = dict(E0=E0, Z=Z, sectors=sectors_info, mult=mult, hot=hot,
                omitted_weight_bound=omitted / Z if Z > 0 else 0.0)
    return kept, info


def thermal_poles(model: _Model, kept, info, beta, *, n_lanczos, b_tol, dim_full,
                  rel_weight_cut=1e-14, project=True, cf_tol=0.0):
    """Path B step 2: Green's function poles of the kept states.

    For each kept state ``|m>`` (weight ``w_m = e^{-beta (E_m - E0)}/Z``) and spin
    ``s``: ``d^+_s |m>`` (particle) and ``d_s |m>`` (hole).  If the target sector
    is (or, having ``dim <= dim_full``, can cheaply be) diagonalised completely,
    the Lehmann weights are the exact projections on its eigenstates; otherwise a
    Lanczos chain of depth ``n_lanczos`` gives the continued fraction, whose poles
    are the eigenvalues ``e_j`` of the tridiagonal matrix with weights
    ``b0^2 |v_0j|^2``.  Particle poles are ``e_j - E_m``, hole poles ``E_m - e_j``.
    ``project=False`` uses continued fractions everywhere (for tests).  All chains
    that end in the same target sector run together (in batches of ``LANCZOS_CHUNK``).

    With spin symmetry only canonical sectors ``N_up <= N_dn`` are visited, and
    ``G = sum_m mult_m w_m (G_up,m + G_dn,m)/2`` (``mult = 2`` for ``N_up != N_dn``:
    the twin sector contributes the same with the spins exchanged); in a sector
    ``N_up = N_dn`` the sum over its states of ``G_dn,m`` equals that of ``G_up,m``,
    so only the up chains are run there.

    Returns
    -------
    poles : list of (E_p, W_p), one per spin
    stats : dict
        ``double_occupancy``, ``energy``, ``density``, ``lanczos_depths`` (min/mean/max),
        ``n_chains``, ``n_projections``.
    """
    up, dn = model.up, model.dn
    sym = model.spin_symmetric
    E0, Z, mult = info["E0"], info["Z"], info["mult"]
    Es = ([], [])
    Ws = ([], [])
    d_occ = energy = 0.0
    dens = np.zeros(2)
    depths = []
    n_proj = 0
    # start vectors grouped by target sector: t -> list of (spin, dag, E_m, w_m, Y_bv)
    groups: dict = {}
    for key, (E, V) in kept.items():
        sec = model.sectors[key]
        a, b = key
        ne = E.size
        w = mult[key] * np.exp(-beta * (E - E0)) / Z  # (ne,)
        X = V.T.reshape(ne, sec.du, sec.dd)
        p = X**2
        energy += w @ E
        d_occ += w @ np.einsum("eud,ud->e", p, sec.nn_ud)
        n_up = np.einsum("eud,u->e", p, up.nd[a])
        n_dn = np.einsum("eud,d->e", p, dn.nd[b])
        dens += np.array([w @ n_up, w @ n_dn])
        if sym:
            spins, wg = ((0,), w) if a == b else ((0, 1), 0.5 * w)
        else:
            spins, wg = (0, 1), w
        for s in spins:
            for dag in (True, False):
                Y = apply_op(X, up, dn, a, b, s, dag)
                if Y is None:
                    continue
                t = (a + (1 if dag else -1), b) if s == 0 else (a, b + (1 if dag else -1))
                groups.setdefault(t, []).append((s, dag, E, wg, Y.reshape(ne, -1)))
    n_chains_all = sum(it[2].size for items in groups.values() for it in items)
    for t, items in groups.items():
        tsec = model.sectors[t]
        ev = model.get(t)
        if project and (ev is None or not ev.complete) and tsec.dim <= max(dim_full, 8):
            ev = model.full(t)
        if project and ev is not None and ev.complete:
            for s, dag, E, w, Yf in items:
                n_proj += E.size
                W2 = (Yf @ ev.vecs) ** 2  # (m, target eigenstate)
                pe = ev.E[None, :] - E[:, None]
                Es[s].append((pe if dag else -pe).ravel())
                Ws[s].append((W2 * w[:, None]).ravel())
            continue

        Yall = np.concatenate([it[4] for it in items], axis=0)
        z_all = np.concatenate([it[2] for it in items]) + 1j * np.pi / beta
        # each chain to the accuracy its weight needs: its share of G is s_m f_m with
        # s_m = w_m |Y_m|^2; tolerances cf_tol / (n_chains s_m) keep the sum of the changes
        # still allowed at cf_tol (as one chain of weight 1 at cf_tol), within
        # [CF_TOL_MIN, CF_TOL_MAX]
        share = np.concatenate([it[3] for it in items]) * np.einsum("bv,bv->b", Yall, Yall)
        tol_all = np.clip(cf_tol / np.maximum(n_chains_all * share, 1e-300), CF_TOL_MIN,
                          CF_TOL_MAX) if cf_tol > 0 else np.zeros(share.size)
        # chunks of a few chains keep the Lanczos vectors in cache
        chunk = Yall.shape[0] if kernels.HAVE_NUMBA and USE_KERNELS else LANCZOS_CHUNK
        chunks = [lanczos_tridiag_batch(tsec.matvec_flat, Yall[i:i + chunk], n_lanczos,
                                        b_tol, z_check=z_all[i:i + chunk],
                                        cf_tol=tol_all[i:i + chunk], sector=tsec)
                  for i in range(0, Yall.shape[0], chunk)]
        b0, a_bn, b_bn, length = (np.concatenate(x) for x in zip(*chunks))
        i = 0
        for s, dag, E, w, _ in items:
            for j in range(E.size):
                n = length[i]
                if n:
                    depths.append(int(n))
                    e, wt = cf_poles(b0[i], a_bn[i, :n], b_bn[i, :n])
                    Es[s].append(e - E[j] if dag else E[j] - e)
                    Ws[s].append(wt * w[j])
                i += 1
    if sym:
        E_all = np.concatenate(Es[0] + Es[1])
        W_all = np.concatenate(Ws[0] + Ws[1])
        pl = merge_poles(E_all, W_all, beta, rel_weight_cut=rel_weight_cut)
        poles = [pl, pl]
        dens[:] = dens.mean()
    else:
        poles = [merge_poles(np.concatenate(Es[s]), np.concatenate(Ws[s]), beta,
                             rel_weight_cut=rel_weight_cut) for s in (0, 1)]
    dep = np.array(depths) if depths else np.zeros(1, int)
    stats = dict(double_occupancy=float(d_occ), energy=float(energy), density=dens,
                 lanczos_depths=dict(min=int(dep.min()), mean=float(dep.mean()),
                                     max=int(dep.max())),
                 n_chains=len(depths), n_projections=n_proj)
    return poles, stats
