# SPDX-License-Identifier: Apache-2.0
"""Compiled kernels of the ED core (private; see :mod:`._ed_core`).

The sector Hamiltonian acts on a state stored as a ``d_up x d_dn`` matrix ``Psi``:
``H Psi = D o Psi + T_up Psi + Psi T_dn`` (``D`` the diagonal, ``T`` the symmetric
one-species hopping matrices in CSR form).  In numpy that is a chain of array
operations with several temporary copies per application; the kernels below do it in
one pass per term with numba (``T_dn`` applied to the transposed state so that every
inner loop is a contiguous ``axpy``), and :func:`lanczos_steps` fuses it with the
Lanczos recurrence.  Measured at ``n_bath = 8`` (sector dimension 15876, one core):
54 us per Lanczos step and state against 140 us for the numpy path.

The small systems of the cheap solvers (ED with <= 4 bath sites: Fock spaces of <= 1,024
states, sectors diagonalised densely) cost Python overhead, not arithmetic:
:func:`lehmann_small` does their whole Lehmann sum in one compiled call (ED-3w's 2.2 ms ->
0.76 ms; ED-4e's 1.3-1.4x faster, its sectors pruned by energy bounds), and
:func:`iw_of_poles_pos` / :func:`legendre_sum_of_poles` the pole sums ``G(i w_n)`` and
``G_l`` of any ED (408 poles on 1,025 frequencies and 40 coefficients: 2.8 -> 0.74 ms).

numba is a dependency of the package; when it cannot be imported (a Python version it
does not support yet) ``HAVE_NUMBA`` is False and the ED core uses its numpy path,
which gives the same results to round-off (tested).  The kernels are compiled on first
use and cached on disk (``cache=True``).  ``fastmath`` lets the compiler reorder the
dot products: the results differ from the numpy path by round-off only.
"""

from __future__ import annotations

import numpy as np

try:  # pragma: no cover - exercised by the import itself
    import numba as _nb
except ImportError:  # pragma: no cover - numba is a dependency; the numpy path serves
    _nb = None

HAVE_NUMBA = _nb is not None

__all__ = ["HAVE_NUMBA", "sector_matvec", "lanczos_steps", "lehmann_small", "iw_of_poles_pos",
           "legendre_sum_of_poles"]


def _njit(f):
    return _nb.njit(cache=True, nogil=True, fastmath=True)(f) if HAVE_NUMBA else None


def _csr_axpy_row(ip, ix, dv, r, src, dst):  # pragma: no cover - compiled
    """``dst[r, :] += sum_p dv[p] src[ix[p], :]`` over the CSR row ``r`` (contiguous axpy)."""
    n = dst.shape[1]
    for p in range(ip[r], ip[r + 1]):
        v = dv[p]
        r2 = ix[p]
        for c in range(n):
            dst[r, c] += v * src[r2, c]


_csr_axpy_row_c = _njit(_csr_axpy_row)


def _hmv(x, D, ip, ix, dv, jp, jx, ev, y, xt, yt):  # pragma: no cover - compiled
    """``y = D o x + T_up x + x T_dn`` for one state ``x`` (``du x dd``): ``T_dn`` acts on
    the transposed state, so both hopping terms are row-wise axpys (each row while it is
    in cache)."""
    du, dd = x.shape
    for u in range(du):
        for d in range(dd):
            y[u, d] = D[u, d] * x[u, d]
        _csr_axpy_row_c(ip, ix, dv, u, x, y)
    for u in range(du):
        for d in range(dd):
            xt[d, u] = x[u, d]
    for d in range(dd):
        for u in range(du):
            yt[d, u] = 0.0
        _csr_axpy_row_c(jp, jx, ev, d, xt, yt)
    for u in range(du):
        for d in range(dd):
            y[u, d] += yt[d, u]


_hmv_c = _njit(_hmv)


def _matvec_batch(X, D, ip, ix, dv, jp, jx, ev, Y):  # pragma: no cover - compiled
    nb, du, dd = X.shape
    xt = np.empty((dd, du))
    yt = np.empty((dd, du))
    for b in range(nb):
        _hmv_c(X[b], D, ip, ix, dv, jp, jx, ev, Y[b], xt, yt)


_matvec_batch_c = _njit(_matvec_batch)


def _lanczos(q, qp, bp, n0, n1, a_out, b_out, b_tol, D, ip, ix, dv, jp, jx, ev, Q):
    """Steps ``n0 .. n1-1`` of plain Lanczos for every chain of the batch (in place).

    ``q``/``qp`` hold the current and previous normalised vectors, ``bp`` the previous
    ``b``; ``a_out[c, n]``, ``b_out[c, n]`` receive the coefficients.  A chain whose
    ``b`` falls below ``b_tol`` stops; returns the number of valid steps of each chain
    (``n1`` for those that went on).  The recurrence is that of
    ``_ed_core.lanczos_tridiag_batch``.  When ``Q`` has rows (one chain only), the
    Lanczos vector of step ``n`` is stored in ``Q[n]``.
    """  # pragma: no cover - compiled
    nbat, du, dd = q.shape
    w = np.empty((du, dd))
    xt = np.empty((dd, du))
    yt = np.empty((dd, du))
    length = np.full(nbat, n1, np.int64)
    for c in range(nbat):
        qc = q[c]
        qpc = qp[c]
        for n in range(n0, n1):
            if Q.shape[0] > n:
                Q[n] = qc
            _hmv_c(qc, D, ip, ix, dv, jp, jx, ev, w, xt, yt)
            a = 0.0
            for u in range(du):
                for d in range(dd):
                    a += qc[u, d] * w[u, d]
            b_prev = bp[c]
            s = 0.0
            for u in range(du):
                for d in range(dd):
                    t = w[u, d] - a * qc[u, d] - b_prev * qpc[u, d]
                    w[u, d] = t
                    s += t * t
            b = np.sqrt(s)
            a_out[c, n] = a
            b_out[c, n] = b
            bp[c] = b
            if b < b_tol:
                length[c] = n + 1
                break
            inv = 1.0 / b
            for u in range(du):
                for d in range(dd):
                    qpc[u, d] = qc[u, d]
                    qc[u, d] = w[u, d] * inv
    return length


_lanczos_c = _njit(_lanczos)


def sector_matvec(X_bud, D, Tu, Td):
    """``H`` on a batch ``X`` (``nb x du x dd``) with the compiled kernel (``Tu``, ``Td``
    scipy CSR matrices, symmetric)."""
    X = np.ascontiguousarray(X_bud, dtype=float)
    Y = np.empty_like(X)
    _matvec_batch_c(X, D, Tu.indptr, Tu.indices, Tu.data, Td.indptr, Td.indices, Td.data, Y)
    return Y


def lanczos_steps(q, qp, bp, n0, n1, a_out, b_out, b_tol, D, Tu, Td, Q=None):
    """:func:`_lanczos` with the CSR matrices unpacked (see there)."""
    if Q is None:
        Q = _NO_STORE
    return _lanczos_c(q, qp, bp, n0, n1, a_out, b_out, b_tol, D, Tu.indptr, Tu.indices,
                      Tu.data, Td.indptr, Td.indices, Td.data, Q)


_NO_STORE = np.zeros((0, 1, 1))


# -- Path A for small baths: the sectors of a Fock space of 4^L <= 1024 states ------------
def _popc(x):  # pragma: no cover - compiled
    c = 0
    while x:
        c += x & 1
        x >>= 1
    return c


_popc_c = _njit(_popc)


def _hop_block(states, off, index, V, N, L):  # pragma: no cover - compiled
    """Dense hopping ``sum_k V_k (c_k^+ c_0 + h.c.)`` of one species on its ``N``-particle
    block (the convention of ``_ed_core._species_structure``: orbital 0 the impurity,
    ``c_k^+`` counts the occupied orbitals ``1 .. k-1``)."""
    n0 = off[N]
    dim = off[N + 1] - n0
    T = np.zeros((dim, dim))
    for i in range(dim):
        s = states[n0 + i]
        if s & 1 == 0:
            continue
        for k in range(1, L):
            if (s >> k) & 1:
                continue
            t = s ^ 1 ^ (1 << k)
            v = V[k - 1] * (1.0 - 2.0 * (_popc_c(s & ((1 << k) - 2)) & 1))
            j = index[t]
            T[j, i] += v
            T[i, j] += v
    return T


_hop_block_c = _njit(_hop_block)


def _diag_sector(i, L1, states, off, index, one_up, one_dn, V_up, V_dn, U, L, eoff, voff,
                 Eall, Vall):  # pragma: no cover - compiled
    """Sector ``i = a (L+1) + b``: its Hamiltonian built densely and diagonalised into
    ``Eall``/``Vall``."""
    a, b = i // L1, i % L1
    du = off[a + 1] - off[a]
    dd = off[b + 1] - off[b]
    dim = du * dd
    Tu = _hop_block_c(states, off, index, V_up, a, L)
    Td = _hop_block_c(states, off, index, V_dn, b, L)
    H = np.zeros((dim, dim))
    for u in range(du):
        su = states[off[a] + u]
        for d in range(dd):
            sd = states[off[b] + d]
            r = u * dd + d
            H[r, r] = one_up[su] + one_dn[sd] + U * (su & 1) * (sd & 1)
            for u2 in range(du):
                H[r, u2 * dd + d] += Tu[u, u2]
            for d2 in range(dd):
                H[r, u * dd + d2] += Td[d, d2]
    w, v = np.linalg.eigh(H)
    Eall[eoff[i]:eoff[i + 1]] = w
    Vall[voff[i]:voff[i + 1]] = np.ascontiguousarray(v).ravel()


_diag_sector_c = _njit(_diag_sector)


def _ensure_sector(i, L1, sym, states, off, index, one_up, one_dn, V_up, V_dn, U, L,
                   eoff, voff, Eall, Vall, done):  # pragma: no cover - compiled
    """Sector ``i`` diagonalised unless done; with ``sym`` the sector ``(a, b)``, ``a > b``,
    is the transpose of ``(b, a)`` (diagonalised first if needed)."""
    if done[i]:
        return
    a, b = i // L1, i % L1
    if not (sym and a > b):
        _diag_sector_c(i, L1, states, off, index, one_up, one_dn, V_up, V_dn, U, L, eoff,
                       voff, Eall, Vall)
        done[i] = True
        return
    j = b * L1 + a
    if not done[j]:
        _diag_sector_c(j, L1, states, off, index, one_up, one_dn, V_up, V_dn, U, L, eoff,
                       voff, Eall, Vall)
        done[j] = True
    du = off[a + 1] - off[a]
    dd = off[b + 1] - off[b]
    dim = du * dd
    Eall[eoff[i]:eoff[i + 1]] = Eall[eoff[j]:eoff[j + 1]]
    src = Vall[voff[j]:voff[j + 1]].reshape((dim, dim))
    dst = Vall[voff[i]:voff[i + 1]].reshape((dim, dim))
    for u in range(du):  # Psi[u, d] = Psi_(b,a)[d, u]
        for d in range(dd):
            dst[u * dd + d, :] = src[d * du + u, :]
    done[i] = True


_ensure_sector_c = _njit(_ensure_sector)


def _lehmann_small(e_up, V_up, e_dn, V_dn, U, beta, sym, thresh, bounds):  # pragma: no cover
    """Exact Lehmann data of a small two-species AIM (sectors ``(N_up, N_dn)`` diagonalised
    densely; the spin twin ``(b, a)`` from ``(a, b)`` when ``sym``).

    ``e_*`` = one-body levels (impurity first), ``V_*`` = hoppings.  ``bounds``: a lower
    bound of each sector's energies (``-inf``: diagonalise every sector).  Sectors are
    diagonalised in the order of their bounds until a bound exceeds ``E0 + thresh`` (``E0``
    the lowest energy so far); a sector is *weighted* when its lowest energy is within
    ``thresh`` of the ground state, and the neighbours of weighted sectors are
    diagonalised too.  Thermal averages run over the weighted sectors and the poles of
    ``d^+_s`` over the pairs of sectors one of which is weighted -- the rules of
    ``_ed_core.full_lehmann_poles``.

    Returns ``(E_up, W_up, E_dn, W_dn, E0, Z, <n_up n_dn> Z, <H> Z, <n_s> Z (2,),
    weighted (sectors,))`` with raw (unmerged) poles, weights already divided by ``Z``;
    ``E_dn, W_dn`` are empty when ``sym``.
    """
    L = e_up.size
    nst = 1 << L
    pc = np.empty(nst, np.int64)
    for s in range(nst):
        pc[s] = _popc_c(s)
    off = np.zeros(L + 2, np.int64)
    for s in range(nst):
        off[pc[s] + 1] += 1
    for N in range(L + 1):
        off[N + 1] += off[N]
    states = np.empty(nst, np.int64)
    index = np.empty(nst, np.int64)
    fill = off[:L + 1].copy()
    for s in range(nst):  # ascending: each block sorted
        N = pc[s]
        states[fill[N]] = s
        index[s] = fill[N] - off[N]
        fill[N] += 1
    one_up = np.zeros(nst)
    one_dn = np.zeros(nst)
    for s in range(nst):
        for o in range(L):
            if (s >> o) & 1:
                one_up[s] += e_up[o]
                one_dn[s] += e_dn[o]
    L1 = L + 1
    nsec = L1 * L1
    dims = np.empty(nsec, np.int64)
    eoff = np.zeros(nsec + 1, np.int64)
    voff = np.zeros(nsec + 1, np.int64)
    for a in range(L1):
        for b in range(L1):
            i = a * L1 + b
            dims[i] = (off[a + 1] - off[a]) * (off[b + 1] - off[b])
            eoff[i + 1] = eoff[i] + dims[i]
            voff[i + 1] = voff[i] + dims[i] * dims[i]
    Eall = np.zeros(eoff[nsec])
    Vall = np.zeros(voff[nsec])
    done = np.zeros(nsec, np.bool_)
    E0 = np.inf
    for i in np.argsort(bounds, kind="mergesort"):
        if bounds[i] > E0 + thresh:
            break
        _ensure_sector_c(i, L1, sym, states, off, index, one_up, one_dn, V_up, V_dn, U, L,
                         eoff, voff, Eall, Vall, done)
        E0 = min(E0, Eall[eoff[i]])
    weighted = np.zeros(nsec, np.bool_)
    for i in range(nsec):
        weighted[i] = done[i] and Eall[eoff[i]] <= E0 + thresh
    for i in range(nsec):
        if not weighted[i]:
            continue
        a, b = i // L1, i % L1
        for da, db in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            if 0 <= a + da < L1 and 0 <= b + db < L1:
                _ensure_sector_c((a + da) * L1 + b + db, L1, sym, states, off, index, one_up,
                                 one_dn, V_up, V_dn, U, L, eoff, voff, Eall, Vall, done)
    bf = np.zeros(eoff[nsec])
    for i in range(nsec):
        if done[i]:
            for e in range(eoff[i], eoff[i + 1]):
                bf[e] = np.exp(-beta * (Eall[e] - E0))
    Z = 0.0
    d_occ = 0.0
    energy = 0.0
    dens = np.zeros(2)
    for a in range(L1):
        for b in range(L1):
            i = a * L1 + b
            if not weighted[i]:
                continue
            du = off[a + 1] - off[a]
            dd = off[b + 1] - off[b]
            dim = du * dd
            v = Vall[voff[i]:voff[i + 1]].reshape((dim, dim))
            for e in range(dim):
                f = bf[eoff[i] + e]
                Z += f
                energy += f * Eall[eoff[i] + e]
                for u in range(du):
                    nu = states[off[a] + u] & 1
                    for d in range(dd):
                        nd = states[off[b] + d] & 1
                        p = v[u * dd + d, e] ** 2
                        d_occ += f * p * nu * nd
                        dens[0] += f * p * nu
                        dens[1] += f * p * nd
    n_spin = 1 if sym else 2
    out_E = []
    out_W = []
    for s in range(2):
        n_raw = 0
        for a in range(L1):
            for b in range(L1):
                a2, b2 = (a + 1, b) if s == 0 else (a, b + 1)
                if s < n_spin and a2 < L1 and b2 < L1 and (
                        weighted[a * L1 + b] or weighted[a2 * L1 + b2]):
                    n_raw += dims[a * L1 + b] * dims[a2 * L1 + b2]
        Ep = np.empty(n_raw)
        Wp = np.empty(n_raw)
        pos = 0
        for a in range(L1):
            for b in range(L1):
                a2, b2 = (a + 1, b) if s == 0 else (a, b + 1)
                if not (s < n_spin and a2 < L1 and b2 < L1):
                    continue
                i = a * L1 + b
                j = a2 * L1 + b2
                if not (weighted[i] or weighted[j]):
                    continue
                du = off[a + 1] - off[a]
                dd = off[b + 1] - off[b]
                dd2 = off[b2 + 1] - off[b2]
                ni = dims[i]
                nj = dims[j]
                vi = Vall[voff[i]:voff[i + 1]].reshape((ni, ni))
                vj = Vall[voff[j]:voff[j + 1]].reshape((nj, nj))
                Y = np.zeros((ni, nj))  # Y[n, x] = (d^+_s |n>)_x
                for u in range(du):
                    su = states[off[a] + u]
                    for d in range(dd):
                        sd = states[off[b] + d]
                        if s == 0:
                            if su & 1:
                                continue
                            x = index[su | 1] * dd2 + d
                        else:
                            if sd & 1:
                                continue
                            x = u * dd2 + index[sd | 1]
                        r = u * dd + d
                        for e in range(ni):
                            Y[e, x] = vi[r, e]
                M = Y @ vj
                for e in range(ni):
                    fe = bf[eoff[i] + e]
                    Ee = Eall[eoff[i] + e]
                    for m in range(nj):
                        Ep[pos] = Eall[eoff[j] + m] - Ee
                        Wp[pos] = M[e, m] ** 2 * (fe + bf[eoff[j] + m]) / Z
                        pos += 1
        out_E.append(Ep)
        out_W.append(Wp)
    return (out_E[0], out_W[0], out_E[1], out_W[1], E0, Z, d_occ, energy, dens, weighted)


_lehmann_small_c = _njit(_lehmann_small)


def lehmann_small(e_up, V_up, e_dn, V_dn, U, beta, sym, thresh, bounds=None):
    """:func:`_lehmann_small` (compiled) on float arrays; see there (``bounds=None``: every
    sector diagonalised).  Non-finite levels or hoppings raise ``ValueError`` (as LAPACK's
    failure does for NaN; an infinite level would otherwise give non-finite poles
    silently)."""
    f = np.ascontiguousarray
    arrays = [f(a, float) for a in (e_up, V_up, e_dn, V_dn)]
    if not all(np.all(np.isfinite(a)) for a in arrays) or not np.isfinite(U):
        raise ValueError("ED: non-finite bath levels, hoppings or U")
    L1 = arrays[0].size + 1
    bounds = np.full(L1 * L1, -np.inf) if bounds is None else f(bounds, float)
    return _lehmann_small_c(*arrays, float(U), float(beta), bool(sym), float(thresh), bounds)


# -- Green's functions of poles ---------------------------------------------------------------
def _iw_of_poles(E, W, w, re, im):  # pragma: no cover - compiled
    """``re + i im = sum_p W_p / (i w - E_p) = -sum_p W_p (E_p + i w) / (w^2 + E_p^2)``."""
    for i in range(w.size):
        w2 = w[i] * w[i]
        sr = 0.0
        si = 0.0
        for p in range(E.size):
            r = W[p] / (w2 + E[p] * E[p])
            sr += r * E[p]
            si += r
        re[i] = -sr
        im[i] = -w[i] * si


_iw_of_poles_c = _njit(_iw_of_poles)


def iw_of_poles_pos(E, W, w):
    """``sum_p W_p / (i w_n - E_p)`` at the positive frequencies ``w`` (compiled)."""
    re = np.empty(w.size)
    im = np.empty(w.size)
    _iw_of_poles_c(np.ascontiguousarray(E, float), np.ascontiguousarray(W, float),
                   np.ascontiguousarray(w, float), re, im)
    return re + 1j * im


def _legendre_of_poles(E, W, beta, n_l, x_closed, out):  # pragma: no cover - compiled
    """``out[l] = sum_p W_p sign_l(a_p) e^{-|a|} i_l(|a|) / (1 + e^{-2|a|})``, ``a = beta E/2``
    (the sum of ``solution.legendre_of_poles`` before its factor ``-sqrt(2l+1) beta``).
    ``e^{-x} i_l(x)`` as in ``solution._scaled_spherical_in``: the closed form for
    ``x > x_closed n_l^2``, else Miller's backward recurrence started at
    ``l = n_l + 20 + sqrt(80 x)``."""
    s = np.empty(n_l)
    big = x_closed * max(n_l, 1) ** 2
    for l in range(n_l):
        out[l] = 0.0
    for p in range(E.size):
        a = 0.5 * beta * E[p]
        x = abs(a)
        if x > big:
            t = -1.0 / (2.0 * x)
            for l in range(n_l):
                term = 1.0
                acc = 1.0
                for k in range(l):
                    term = term * ((l + k + 1) * (l - k) / (k + 1)) * t
                    acc += term
                s[l] = acc / (2.0 * x)
        else:
            s[0] = 1.0 - x if x < 1e-8 else -np.expm1(-2.0 * x) / (2.0 * x)
            for l in range(1, n_l):
                s[l] = 0.0
            if x > 0:
                r = 0.0
                inv = 1.0 / x
                for l in range(int(n_l + 20 + np.sqrt(80.0 * x)), 0, -1):
                    r = 1.0 / ((2 * l + 1) * inv + r)
                    if l < n_l:
                        s[l] = r
                for l in range(1, n_l):
                    s[l] *= s[l - 1]
        f = W[p] / (1.0 + np.exp(-2.0 * x))
        for l in range(n_l):
            out[l] += f * s[l] if (a < 0 or l % 2 == 0) else -f * s[l]


_legendre_of_poles_c = _njit(_legendre_of_poles)


def legendre_sum_of_poles(E, W, beta, n_l, x_closed):
    """:func:`_legendre_of_poles` (compiled)."""
    out = np.empty(int(n_l))
    _legendre_of_poles_c(np.ascontiguousarray(E, float), np.ascontiguousarray(W, float),
                         float(beta), int(n_l), float(x_closed), out)
    return out
