# SPDX-License-Identifier: Apache-2.0
"""Fitting a continuous hybridisation ``Delta(i w)`` by ``k`` discrete bath sites.

Cost (Caffarel-Krauth, PRL 72, 1545 (1994))::

    chi2 = (1/N) sum_{0 <= w_n <= w_max} W_n |Delta(i w_n) - sum_k V_k^2 / (i w_n - eps_k)|^2

Method (deterministic: ``seed`` only enters through random starts, which run only
when ``n_starts`` exceeds the four deterministic ones):

1. **Variable projection.**  For fixed levels ``eps`` the weights ``c_k = V_k^2``
   enter linearly and solve a linear least-squares problem (stacked real and
   imaginary parts; Householder QR, Lawson-Hanson NNLS for ``c >= 0``).  Only the
   levels are nonlinear: MINPACK's Levenberg-Marquardt (``scipy.optimize.leastsq``)
   runs on the projected residual with Kaufman's Jacobian (Golub and Pereyra, Inverse
   Problems 19, R1 (2003); the exact one converged no faster here and failed more
   often on ill-conditioned problems).  With more than three levels a search first
   lets the weights take any sign (a smooth problem), then imposes ``c >= 0``.
   Levels that end up wasted (weight below 1e-3 of the largest, outside the level
   grid, or the lighter of a split pair) are re-seated by orthogonal matching
   pursuit on the level grid, and the search goes on if that lowers the cost.  For
   one or two sites the searches run on the joint ``(eps, V)`` parameters instead
   (cheaper there).
2. **Frequencies.**  The searches use the first 16 fitted frequencies and a
   geometric subset (ratio 1.15) of the rest, with trapezoid weights so that the
   subset cost approximates the full one; the polish uses all of them.
3. **Starts.**  A non-negative fit on a grid of ``17 + 8 k`` (at most ``N_GRID``)
   ``sinh``-spaced levels estimates the bath spectral function
   ``-Im Delta(w + i0)/pi`` by atoms.  In priority order: (0) the ``k``-point Gauss
   quadrature of the atoms (Lanczos), (1) a uniform spread over ``[-D, D]``, (2)
   levels uniform over the atoms' support, (3) the centres of the optimal
   ``k``-cluster partition of the atoms, (4...) seeded random spreads; (1) and (2)
   are shifted by a quarter spacing (a start symmetric about 0 stays symmetric for a
   symmetric ``Delta`` and can end on a symmetric saddle).  ``initial`` (a warm
   start) is searched first but has the lowest priority.  A start after the first
   gets ``MAXFEV_RACE`` evaluations and goes on only if within a factor 10 of the
   best cost.  The search stops when a start reaches the best cost again (relative
   ``1e-6``), when the cost is at round-off (``1e-28 sum W_n |Delta_n|^2``), or after
   ``n_starts`` starts.
4. **Polish** of the best minimum (and of a distinct runner-up within 5 %) on all
   frequencies in the joint ``(eps, V)`` parameters: Newton steps with the exact
   Hessian (MINPACK with the analytic Jacobian first when they do not converge),
   which take a well-conditioned minimum to round-off.  A negative eigenvalue of
   the Hessian (a saddle point) is followed downhill and the point polished again.

``ph_symmetric=True`` restricts the bath to pairs ``(+eps_p, -eps_p)`` with equal
``V_p`` (plus a level at 0 for odd ``k``), which guarantees ``Re Delta = 0``.

**Ties (deterministic results).**  Among minima whose costs agree (relative
``1e-6`` between searches, ``1e-8`` after the polish) the one from the start of
lowest priority number is kept, whatever order they were found in.  A
particle-hole symmetric ``Delta`` (``Re Delta = 0``) fitted with an unconstrained
bath has pairs of mirror-image optima ``(eps_k, V_k)`` and ``(-eps_k, V_k)`` with
the same cost.  The fit evaluates the mirror image of its minimum (and polishes it
when its projected cost is within 1e-4 of the minimum's): a lower cost replaces
the minimum, and when the two costs agree to relative ``1e-8`` the one with
``sum_k V_k^2 eps_k <= 0`` is returned (its high-frequency ``Re Delta_fit(i w) ~
-sum_k V_k^2 eps_k / w^2`` is ``>= 0``).  For users: the returned bath does not
depend on the seed, on the order of the starts, or on which mirror image a warm
start was near (up to round-off, ~1e-14, when the minimum is well conditioned), so
stored fits and reference data do not carry that arbitrariness.  Minima that are
different but agree in cost to 1e-8 (not mirror images) can still depend on which
starts ran.

**A particle-hole symmetric Delta gets a symmetric bath** (``BathFit.ph_chosen``): when
``|Re Delta| <= PH_DELTA_RTOL max |Delta|`` the unconstrained minimum, if it is its own
mirror image up to the polish (1e-6), is made exactly symmetric (mirror pairs averaged, the
cost re-checked); otherwise the constrained fit (``ph_symmetric=True``) runs as well.  The
symmetric bath is returned when its cost is within ``PH_PREFER_RTOL = 1e-3`` of the
unconstrained one (or both are at round-off).  Measured on the 24 DMFT-like Bethe AIMs of
``benchmarks/bench_ed.py`` (24 at beta = 1, 10, 50 and 12 at beta = 200; k = 4, 6, 8):
chosen for all but 2 of 252 fits (two at beta = 200).  The
exact symmetry lets ED treat mirror sectors once (:mod:`triqs_mlsolver.solvers.ed`).
"""

from __future__ import annotations

import functools
import time
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.linalg.lapack import dgeqrf as _dgeqrf
from scipy.linalg.lapack import dorgqr as _dorgqr
from scipy.linalg.lapack import dtrtrs as _dtrtrs
from scipy.optimize import leastsq, nnls

from . import _kernels

__all__ = ["BathFit", "fit_bath", "decouple_far_sites", "EPS_FAR"]

#: Evaluate the fit's residual, Jacobian, Hessian and variable projection with the compiled
#: kernels of :mod:`._kernels` where numba is available (the tests switch it off to compare
#: with the numpy path).
USE_KERNELS = True

#: Fitted bath levels beyond ``+-(EPS_FAR D + U)`` are an artefact of the fit, not a bath: at
#: large U and low temperature a least-squares fit can send a site with a tiny coupling to
#: levels of 1e2 ... 1e30 D (a constant ``V^2/eps`` in ``Delta``), which breaks the ED of the
#: fitted AIM (energies of 1e30 swamp the rest in rounding: seen on 1 of 10,000 ED-4e solves
#: of the single-band database, and on 17 of its 10,000 samples' own fits).
EPS_FAR = 50.0


def decouple_far_sites(fit, eps_max):
    """``fit`` with the sites whose level lies beyond ``+-eps_max`` decoupled (``V = 0``,
    level at ``+-eps_max``), in place; returns ``(fit, number of sites decoupled)``."""
    far = np.abs(fit.eps_k) > eps_max
    fit.V_k = np.where(far, 0.0, fit.V_k)
    fit.eps_k = np.where(far, np.sign(fit.eps_k) * eps_max, fit.eps_k)
    return fit, int(far.sum())

#: Relative cost difference below which two polished minima count as the same (ties) ...
TIE_RTOL = 1e-8
#: A particle-hole symmetric ``Delta`` (``|Re Delta| <= PH_DELTA_RTOL max |Delta|`` on the
#: fitted frequencies) is also fitted with a symmetric bath, which is returned when its cost
#: is at most ``1 + PH_PREFER_RTOL`` times the unconstrained one (or below
#: ``PH_EXACT_RTOL`` times the mean ``W_n |Delta_n|^2``: both fits exact to round-off).
PH_DELTA_RTOL = 1e-12
PH_PREFER_RTOL = 1e-3
PH_EXACT_RTOL = 1e-20
#: ... and two searches (tolerance 1e-8) as having reached the same minimum.
SEARCH_RTOL = 1e-6
#: Levels of the grid on which the bath spectral function is estimated (at most; fewer
#: for ``n_bath < 6``).
N_GRID = 65
#: Evaluations allowed to a search, to a later start before it must be within a factor
#: 10 of the best cost, and to the MINPACK part of the polish.
MAXFEV_SEARCH = 400
MAXFEV_RACE = 60
MAXFEV_POLISH = 300
#: Fraction of a search's evaluations spent with weights of any sign before c >= 0
#: (searches with more than three levels).
FREE_FRACTION = 0.5
#: Times a search may re-seat its wasted levels and go on, unless its cost is already
#: below RESEAT_RTOL ``sum_n W_n |Delta_n|^2`` (an rms relative misfit of 1e-10).
N_RESEAT = 2
RESEAT_RTOL = 1e-20
#: Costs below this fraction of ``sum_n W_n |Delta_n|^2`` are round-off: the search stops.
EXACT_RTOL = 1e-28
#: Times the polish may step off a saddle point (negative curvature) and polish again.
N_ESCAPE = 2
#: Up to this many sites the searches run on the joint (eps, V) parameters instead.
JOINT_MAX_SITES = 2


@dataclass
class BathFit:
    """Result of :func:`fit_bath`.

    Attributes
    ----------
    eps_k, V_k : ndarray (k,)
        Bath energies and hoppings (``V_k >= 0``), sorted by energy (ties in
        energy by ``V_k``).
    chi2 : float
        Mean of ``W_n |Delta - Delta_fit|^2`` over the fitted frequencies.
    max_error : float
        ``max |Delta - Delta_fit|`` over the fitted frequencies.
    n_fit : int
        Number of positive frequencies fitted.
    sum_V2 : float
        ``sum_k V_k^2`` (compare with the 1/iw moment of Delta).
    n_starts_used : int
        Local searches run (the ``initial`` bath included).
    mirror_tie : bool
        The mirror image of the minimum had the same cost (relative ``1e-8``) and
        the tie rule ``sum_k V_k^2 eps_k <= 0`` chose between them.
    ph_chosen : bool
        ``Delta`` is particle-hole symmetric and the symmetric bath (pairs ``+-eps``)
        fitted as well as the unconstrained one (relative ``PH_PREFER_RTOL``), so it
        was returned.
    time : float
        Wall time of the fit in seconds.
    """

    eps_k: np.ndarray
    V_k: np.ndarray
    chi2: float
    max_error: float
    n_fit: int
    sum_V2: float
    n_starts_used: int = 0
    mirror_tie: bool = False
    ph_chosen: bool = False
    time: float = 0.0


# -- joint (eps, V) parametrisation (final polish) -----------------------------------------
def _expand(x, k, ph):
    """Parameter vector -> (eps, V)."""
    if not ph:
        return x[:k], x[k:]
    n_pair = k // 2
    e, v = x[:n_pair], x[n_pair : 2 * n_pair]
    eps = np.concatenate([e, -e])
    V = np.concatenate([v, v])
    if k % 2:
        eps = np.append(eps, 0.0)
        V = np.append(V, x[2 * n_pair])
    return eps, V


def _pack(eps, V, ph):
    if not ph:
        return np.concatenate([eps, V])
    k = len(eps)
    order = np.argsort(-eps)
    n_pair = k // 2
    e = np.abs(eps[order][:n_pair])
    v = np.abs(V[order][:n_pair])
    x = np.concatenate([e, v])
    if k % 2:
        x = np.append(x, np.abs(V[order][n_pair]))
    return x


class _Problem:
    """The weighted residual ``r_n = sqrt(W_n) (Delta_fit - Delta)(i w_n)`` of one fit.

    Residuals are interleaved ``(Re, Im)`` float views of complex arrays; Jacobians
    are in MINPACK's column-derivative layout ``(n_par, 2 N)``.  The nonlinear
    parameters ``p`` of the variable projection are the ``k`` levels, or the
    ``k // 2`` pair energies ``|eps_p|`` when ``ph`` (the level at 0 of odd ``k``
    then has a fixed column).
    """

    def __init__(self, z, target, sw, k, ph):
        self.z, self.sw, self.k, self.ph = z, sw, k, ph
        self.n_p = k // 2 if ph else k
        self.fixed = (sw / z)[None, :] if (ph and k % 2) else None
        self.b = sw * target
        self.bf = self.b.view(float)
        self.nfev = 0
        self.grid = self.grid_At = None  # candidate levels for wasted ones (_spectral_atoms)
        self.free = False  # True: weights of any sign (unconstrained least squares)

    # -- variable projection -----------------------------------------------------------
    def columns(self, p):
        """Basis ``(m, N)`` for levels ``p`` and the derivative of column ``j`` by ``p_j``."""
        z, sw = self.z[None, :], self.sw
        if not self.ph:
            inv = 1.0 / (z - p[:, None])
            C = sw * inv
            return C, C * inv
        ip = 1.0 / (z - p[:, None])
        im = 1.0 / (z + p[:, None])
        C = sw * (ip + im)
        dC = sw * (ip * ip - im * im)
        if self.fixed is not None:
            C = np.concatenate([C, self.fixed])
        return C, dC

    def weights(self, At):
        """``c >= 0`` minimising ``|c At - b|``, and an orthonormal basis of the active columns.

        Householder QR (LAPACK ``dgeqrf``/``dorgqr``) solves the unconstrained problem
        (kept as it is in the ``free`` mode); when that ``c`` is not positive,
        Lawson-Hanson NNLS does.
        """
        m = At.shape[0]
        qr, tau, _, info = _dgeqrf(At.T)
        Q, _, _ = _dorgqr(qr, tau)
        c, info = _dtrtrs(qr[:m, :m], Q.T @ self.bf)
        if info == 0 and (self.free or c.min() > 0) and abs(c).max() < np.inf:
            return c, Q
        c = _nnls(At.T, self.bf)
        act = c > 0
        if not act.any():
            return c, None
        qr, tau, _, _ = _dgeqrf(At[act].T)
        return c, _dorgqr(qr, tau)[0]

    def project(self, p):
        """Projected residual at levels ``p``: ``(c, r, Q, dC)`` (see ``weights``)."""
        self.nfev += 1
        if not self.ph and _kernels.HAVE_NUMBA and USE_KERNELS:
            ok, c, r, Q, dC = _kernels.vp_project(p, self.z, self.sw, self.bf, self.free)
            if ok:
                return c, r, Q, dC
        C, dC = self.columns(p)
        At = C.view(float)
        c, Q = self.weights(At)
        return c, c @ At - self.bf, Q, dC

    def cost(self, p):
        return float(np.sum(self.project(p)[1] ** 2))

    def search(self, p0, maxfev=MAXFEV_SEARCH, stop_cost=0.0):
        """Levenberg-Marquardt on the projected residual from levels ``p0``.

        With more than three levels, weights of any sign first (``FREE_FRACTION`` of
        the evaluations), then ``c >= 0``, then up to ``N_RESEAT`` re-seats of wasted
        levels (:meth:`_reseat`), each kept if it lowers the cost.  Returns
        ``(p, c, cost)``; stops early (MINPACK is interrupted) once the cost is at most
        ``stop_cost``.
        """
        m = self.n_p
        cache = {}

        def f(p):
            if cache.get("p") == p.tobytes():
                return cache["r"]
            c, r, Q, dC = self.project(p)
            cache["p"], cache["d"], cache["r"] = p.tobytes(), (c, Q, dC), r
            if r @ r <= stop_cost and (not self.free or c.min() > 0):
                raise _TargetReached(p.copy())
            return r

        def jac(p):  # Kaufman: J_j = (1 - P_A) dA/dp_j c
            if cache.get("p") != p.tobytes():
                f(p)
            c, Q, dC = cache["d"]
            Dt = (dC * c[:m, None]).view(float)
            return Dt if Q is None else Dt - (Dt @ Q) @ Q.T

        def lm(p, budget):
            cache.clear()
            try:
                with np.errstate(all="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # "maxfev reached"
                    p = leastsq(f, p, Dfun=jac, col_deriv=True, xtol=1e-8, ftol=1e-8,
                                gtol=1e-8, maxfev=max(budget, 1))[0]
            except _TargetReached as done:
                p = done.args[0]
            finally:
                self.free = False
            if self.ph:
                p = np.abs(p)
            c, r, _, _ = self.project(p)
            return p, c, float(r @ r)

        n_end = self.nfev + maxfev
        # weights of any sign first (a smooth problem), then c >= 0
        p = np.asarray(p0, float)
        if FREE_FRACTION > 0 and m > 3:  # (a few levels do not need it)
            self.free = True
            p = lm(p, int(maxfev * FREE_FRACTION))[0]
        p, c, cost = lm(p, n_end - self.nfev)
        exact_enough = RESEAT_RTOL * float(self.bf @ self.bf)
        for _ in range(N_RESEAT):  # move wasted levels to where they help; keep if better
            if cost <= max(stop_cost, exact_enough) or self.nfev >= n_end:
                break
            q = self._reseat(p, c[:m])
            if q is None:
                break
            q, cq, cost_q = lm(q, n_end - self.nfev)
            if not cost_q < cost:
                break
            p, c, cost = q, cq, cost_q
        return p, c, cost

    def _joint_functions(self, T, stop_cost=None):
        """MINPACK's residual and Jacobian (column-derivative layout) of the joint ``(eps, V)``
        problem; one evaluation gives both, and the Jacobian of the point just evaluated is
        kept.  With ``stop_cost``, a residual with ``|r|^2 <= stop_cost`` raises
        :class:`_TargetReached` (the search can stop there)."""
        cache = {}

        def resid(x):
            self.nfev += 1
            r, J, _ = self._derivatives(x, T)
            cache["x"], cache["J"] = x.tobytes(), J
            rf = r.view(float)
            if stop_cost is not None and rf @ rf <= stop_cost:
                raise _TargetReached(x.copy())
            return rf

        def jac(x):
            if cache.get("x") != x.tobytes():
                resid(x)
            return cache["J"].view(float)

        return resid, jac

    def search_joint(self, p0, maxfev=MAXFEV_SEARCH, stop_cost=0.0):
        """Levenberg-Marquardt on the joint ``(eps, V)`` parameters from levels ``p0``.

        Used for one or two sites, where it is cheaper than :meth:`search`.  The weights
        start from the projected ones (floored at a tenth of their mean, so that no
        level starts decoupled).  Returns ``(p, c, cost)`` like :meth:`search`, with the
        projected weights at the final levels.
        """
        m = self.n_p
        p0 = np.asarray(p0, float)
        c = self.project(p0)[0]
        x0 = self.levels_to_bath(p0, np.maximum(c, 0.1 * max(float(np.mean(c)), 1e-300)))
        resid, jac = self._joint_functions(self._to_full(), stop_cost)
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                x = leastsq(resid, x0, Dfun=jac, col_deriv=True, xtol=1e-8, ftol=1e-8,
                            gtol=1e-8, maxfev=maxfev)[0]
        except _TargetReached as done:
            x = done.args[0]
        p = self.bath_to_levels(x)[:m]
        c, r, _, _ = self.project(p)
        return p, c, float(r @ r)

    def _reseat(self, p, c):
        """Levels ``p`` with the wasted ones moved to where they lower the cost most.

        Wasted: weight below 1e-3 of the largest (zero included), outside the level
        grid, or the lighter of two levels closer than ``0.15 (|eps| + 2 pi T)`` (a
        level split in two where another one is missing).  They are removed and put
        back one at a time, by orthogonal matching pursuit: at the grid level (away
        from the others) whose basis column, orthogonalised to the kept ones, removes
        most of the residual with a positive weight.  None if no level is wasted or
        no grid level helps.
        """
        if self.grid_At is None or not len(p):
            return None
        wasted = (c <= 1e-3 * c.max()) | (np.abs(p) > np.abs(self.grid).max())
        o = np.argsort(p)  # of two close levels (a split one), the lighter one
        w0 = abs(self.z[0])
        close = np.diff(p[o]) < 0.15 * (np.abs(p[o][1:] + p[o][:-1]) / 2 + 2 * w0)
        lighter = np.where(c[o][1:] < c[o][:-1], o[1:], o[:-1])
        wasted[lighter[close]] = True
        if not wasted.any() or wasted.all():
            return None
        keep = list(p[~wasted])
        gap = np.min(np.diff(self.grid)) / 2 if len(self.grid) > 1 else 0.0
        G = self.grid_At
        for _ in range(int(wasted.sum())):  # orthogonal matching pursuit on the grid
            Q = np.linalg.qr(self.columns(np.array(keep))[0].view(float).T)[0]
            r = self.bf - Q @ (Q.T @ self.bf)
            Gp = G - (G @ Q) @ Q.T
            proj = Gp @ r  # > 0: the new level enters with a positive weight
            gain = np.where(proj > 0, proj**2 / np.maximum(np.sum(Gp**2, axis=1), 1e-300), 0)
            gain[np.min(np.abs(self.grid[:, None] - np.array(keep)[None, :]), axis=1)
                 <= gap] = 0.0
            j = int(np.argmax(gain))
            if gain[j] <= 0:
                break
            keep.append(self.grid[j])
        n_kept = int((~wasted).sum())
        if len(keep) == n_kept:
            return None
        q = p.copy()
        q[np.flatnonzero(wasted)[: len(keep) - n_kept]] = keep[n_kept:]
        return q

    def levels_to_bath(self, p, c):
        """Levels and projected weights -> joint parameter vector ``x``."""
        k = self.k
        V = np.sqrt(np.maximum(c, 0.0))
        if not self.ph:
            return np.concatenate([p, V])
        n_pair = k // 2
        x = np.concatenate([p, V[:n_pair]])
        if k % 2:
            x = np.append(x, V[n_pair])
        return x

    def bath_to_levels(self, x):
        return np.abs(x[: self.n_p]) if self.ph else x[: self.k].copy()

    # -- joint polish ------------------------------------------------------------------
    def _to_full(self):
        """Matrix ``T`` with ``(eps, V) = T x`` for the parameter vector ``x`` (see ``_pack``)."""
        k = self.k
        if not self.ph:
            return np.eye(2 * k)
        n_pair = k // 2
        n_par = 2 * n_pair + k % 2
        T = np.zeros((2 * k, n_par))
        i = np.arange(n_pair)
        T[i, i], T[i + n_pair, i] = 1.0, -1.0
        T[k + i, n_pair + i] = T[k + n_pair + i, n_pair + i] = 1.0
        if k % 2:
            T[2 * k - 1, 2 * n_pair] = 1.0
        return T

    def _derivatives(self, x, T, hessian=False):
        """Residual, Jacobian ``(n_par, N)`` (complex) and, optionally, the exact Hessian."""
        k = self.k
        xf = T @ x if self.ph else x
        eps, V = xf[:k], xf[k:]
        if _kernels.HAVE_NUMBA and USE_KERNELS:
            if not hessian:
                r, Jf = _kernels.residual_jacobian(eps, V, self.z, self.sw, self.b)
                return r, (T.T @ Jf if self.ph else Jf), None
            r, Jf, H = _kernels.residual_jacobian_hessian(eps, V, self.z, self.sw, self.b)
            return r, (T.T @ Jf if self.ph else Jf), (T.T @ H @ T if self.ph else H)
        inv = 1.0 / (self.z - eps[:, None])  # (k, N)
        swinv = self.sw * inv
        V2 = V * V
        r = V2 @ swinv - self.b
        Jf = np.empty((2 * k, inv.shape[1]), complex)
        np.multiply(V2[:, None] * swinv, inv, out=Jf[:k])
        np.multiply((2 * V)[:, None], swinv, out=Jf[k:])
        J = T.T @ Jf if self.ph else Jf
        if not hessian:
            return r, J, None
        Jr = Jf.view(float)
        H = Jr @ Jr.T
        rc = r.conj()
        i = np.arange(k)
        H[i, i] += 2 * ((Jf[:k] * inv) @ rc).real  # 2 V^2 sw inv^3 . r*
        off = 2 * V * ((swinv * inv) @ rc).real
        H[i, i + k] += off
        H[i + k, i] += off
        H[i + k, i + k] += 2 * (swinv @ rc).real
        return r, J, (T.T @ H @ T if self.ph else H)

    # -- joint polish ------------------------------------------------------------------
    def polish(self, x0, maxfev=MAXFEV_POLISH):
        """Joint ``(eps, V)`` refinement: MINPACK, then Newton steps with the exact Hessian.

        The Newton steps take a well-conditioned minimum to round-off, so that starts
        which reached it along different paths give the same bits (up to ~1e-14); a step
        is kept only if it lowers the gradient and does not raise the cost.
        Returns ``(x, cost)``; the starting cost never rises.
        """
        T = self._to_full()
        resid, jac = self._joint_functions(T)

        def refine(x, cost):
            x, cost, H = self._newton(x, T, cost)  # from a search minimum: usually enough
            if H is not None:
                return x, cost, H
            x1 = leastsq(resid, x, Dfun=jac, col_deriv=True, xtol=1e-15, ftol=1e-15,
                         gtol=1e-15, maxfev=maxfev)[0]
            r = resid(x1)
            cost1 = float(r @ r)
            if np.isfinite(cost1) and cost1 <= cost:
                x, cost, H = self._newton(x1, T, cost1)
            return x, cost, H

        x0 = np.array(x0, float)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            r0 = resid(x0)
            c0 = float(r0 @ r0)
            x, cost, H = refine(x0, c0)
            for _ in range(N_ESCAPE):  # off a saddle point (e.g. a symmetric one) and again
                xe = self._off_saddle(x, T, cost, H)
                if xe is None:
                    break
                xe, cost_e, He = refine(*xe)
                if not cost_e < cost:
                    break
                x, cost, H = xe, cost_e, He
        return (x, cost) if cost <= c0 else (x0, c0)

    def _off_saddle(self, x, T, cost, H=None):
        """A lower point along the most negative curvature of the exact Hessian, or None.

        At a minimum the Hessian has no negative eigenvalue (below ``-1e-9`` of the
        largest); at a saddle point, e.g. a level held at 0 by the symmetry of a
        particle-hole symmetric ``Delta``, steps of ``(0.3, 0.1, 0.03) (|x|_rms + 1e-3)``
        both ways along the eigenvector are tried and the lowest cost is returned.
        """
        if H is None:
            H = self._derivatives(x, T, hessian=True)[2]
        lam, U = np.linalg.eigh(H)
        if not lam[0] < -1e-9 * np.abs(lam).max():
            return None
        d = U[:, 0] * np.sign(U[np.argmax(np.abs(U[:, 0])), 0])  # sign fixed by its largest
        size = np.sqrt(np.mean(x**2)) + 1e-3
        best = None
        for a in (0.3, 0.1, 0.03):
            for sgn in (1.0, -1.0):
                xt = x + sgn * a * size * d
                ct = float(np.sum(self._derivatives(xt, T)[0].view(float) ** 2))
                if np.isfinite(ct) and ct < cost and (best is None or ct < best[1]):
                    best = (xt, ct)
        return best

    def _newton(self, x, T, cost, n_steps=8):
        """Newton steps with the exact Hessian while they lower the cost (or, at round-off, the
        gradient).

        Returns ``(x, cost, H)`` with ``H`` the Hessian at ``x`` when converged (a step
        ``|dx| <= 1e-10 |x|`` was taken: quadratic convergence leaves round-off), else
        ``None``.
        """
        r, J, H = self._derivatives(x, T, hessian=True)
        g = J.view(float) @ r.view(float)
        gnorm = np.linalg.norm(g)
        scale = np.linalg.norm(x) + 1e-300
        for _ in range(n_steps):
            if gnorm == 0.0:
                return x, cost, H
            try:
                step = np.linalg.solve(H, -g)
            except np.linalg.LinAlgError:
                return x, cost, None
            xn = x + step
            r, J, Hn = self._derivatives(xn, T, hessian=True)
            cn = float(np.sum(r.view(float) ** 2))
            gn = J.view(float) @ r.view(float)
            gnn = np.linalg.norm(gn)
            small = np.linalg.norm(step) <= 1e-10 * scale
            if not (np.isfinite(cn) and (cn < cost * (1 - 1e-12) or (
                    cn <= cost * (1 + 1e-12) and (gnn < gnorm or small)))):
                return x, cost, None
            x, cost, g, gnorm, H = xn, cn, gn, gnn, Hn
            if small:
                return x, cost, H
        return x, cost, None


class _TargetReached(Exception):
    """Raised inside a MINPACK callback to stop a search whose cost is low enough."""


def _nnls(A, b):
    try:
        return nnls(A, b, maxiter=50 * A.shape[1])[0]
    except RuntimeError:  # Lawson-Hanson did not terminate: plain least squares, clipped
        return np.maximum(np.linalg.lstsq(A, b, rcond=None)[0], 0.0)


# -- starting levels ---------------------------------------------------------------------
def _level_grid(w_top, beta, D, ph, n_grid):
    """``n_grid`` levels ``a sinh(u)``, ``a = min(D, 2 pi T)``, ``u`` uniform, up to ``w_top``.

    The spacing is ``~0.2 a`` near 0 and grows ``~0.2 |e|``.  For ``ph`` the positive half.
    """
    a = min(D, 2 * np.pi / beta)
    u = np.arcsinh(max(w_top, 2 * D) / a)
    if ph:
        return a * np.sinh(np.linspace(0.0, u, n_grid // 2 + 1)[1:])
    return a * np.sinh(np.linspace(-u, u, n_grid))


def _spectral_atoms(prob, grid):
    """Non-negative fit on the level grid: the atoms ``(x_j, c_j > 0)`` of the bath spectrum.

    Also keeps the grid and its basis on ``prob`` (used to re-seat wasted levels).
    """
    C, _ = prob.columns(grid)
    At = C.view(float)
    c = _nnls(At.T, prob.bf)
    if prob.fixed is not None:
        c, At = c[:-1], At[:-1]
    prob.grid, prob.grid_At = grid, At
    # drop specks, and the outermost grid levels: weight there stands for the
    # spectrum beyond the grid (a nearly real constant), not for a level to place
    keep = c > 1e-3 * c.max() if len(c) and c.max() > 0 else c > 0
    keep[np.abs(grid) >= np.abs(grid).max()] = False
    return grid[keep], c[keep]


def _gauss_levels(x, c, m):
    """Nodes of the ``m``-point Gauss quadrature of ``sum_j c_j delta(e - x_j)`` (Lanczos)."""
    m = min(m, len(x))
    q = np.sqrt(c / c.sum())
    Q = np.zeros((m, len(x)))
    a, b = np.zeros(m), np.zeros(max(m - 1, 0))
    Q[0] = q
    for j in range(m):
        v = x * Q[j]
        a[j] = Q[j] @ v
        v -= Q[: j + 1].T @ (Q[: j + 1] @ v)  # full reorthogonalisation
        v -= Q[: j + 1].T @ (Q[: j + 1] @ v)
        if j == m - 1:
            break
        b[j] = np.linalg.norm(v)
        if b[j] <= 1e-14 * (abs(a[j]) + 1.0):
            m = j + 1
            a, b = a[:m], b[: m - 1]
            break
        Q[j + 1] = v / b[j]
    T = np.diag(a) + np.diag(b, 1) + np.diag(b, -1)
    return np.linalg.eigvalsh(T)


def _cluster_levels(x, c, m):
    """Centres of mass of the optimal partition of the atoms into ``m`` contiguous groups.

    Minimises the weighted within-group variance ``sum_g sum_{j in g} c_j (x_j - xbar_g)^2``
    exactly (dynamic programming over the sorted atoms).
    """
    n = len(x)
    if n <= m:
        return x.copy()
    W = np.concatenate([[0.0], np.cumsum(c)])
    S1 = np.concatenate([[0.0], np.cumsum(c * x)])
    S2 = np.concatenate([[0.0], np.cumsum(c * x * x)])
    w = W[None, :] - W[:, None]  # group of atoms s..t-1 -> [s, t]
    s1 = S1[None, :] - S1[:, None]
    idx = np.arange(n + 1)
    valid = idx[:, None] < idx[None, :]
    cost = np.full((n + 1, n + 1), np.inf)
    cost[valid] = (S2[None, :] - S2[:, None])[valid] - s1[valid] ** 2 / w[valid]
    best = cost[0].copy()
    splits = []
    for _ in range(1, m):
        tot = best[:, None] + cost
        arg = np.argmin(tot, axis=0)
        splits.append(arg)
        best = tot[arg, idx]
    bounds, t = [n], n
    for arg in reversed(splits):
        t = int(arg[t])
        bounds.append(t)
    bounds = [0] + bounds[::-1]
    return np.array([(S1[t] - S1[s]) / (W[t] - W[s]) for s, t in zip(bounds[:-1], bounds[1:])])


def _fill(levels, m, D, ph=False):
    """Pad to ``m`` levels (spread over ``[-D, D]``, ``[0, D]`` for ``ph``)."""
    levels = np.sort(np.asarray(levels, float))
    if len(levels) >= m:
        return levels
    extra = np.linspace(0.0 if ph else -D, D, m - len(levels) + 2)[1:-1]
    return np.sort(np.concatenate([levels, extra + 1e-3 * D]))


@functools.lru_cache(maxsize=64)
def _frequency_subset(n_fit, n_dense=16, ratio=1.15):
    """Indices and trapezoid weights of a subset of ``0..n_fit-1`` for the search stage.

    All of the first ``n_dense`` frequencies, then geometrically spaced ones (ratio
    ``ratio``) up to the last: ``sum_n f_n ~ sum_j q_j f_{n_j}`` for the smooth
    high-frequency part of the cost.  Cached (read-only arrays).
    """
    idx, quad = _frequency_subset_arrays(n_fit, n_dense, ratio)
    idx.flags.writeable = quad.flags.writeable = False
    return idx, quad


def _frequency_subset_arrays(n_fit, n_dense, ratio):
    if n_fit <= 2 * n_dense:
        return np.arange(n_fit), np.ones(n_fit)
    tail = np.unique(np.round(n_dense * ratio ** np.arange(
        1 + int(np.log(n_fit / n_dense) / np.log(ratio)))).astype(int))
    idx = np.unique(np.concatenate([np.arange(n_dense), tail[tail < n_fit], [n_fit - 1]]))
    edges = np.concatenate([[-0.5], 0.5 * (idx[1:] + idx[:-1]), [n_fit - 0.5]])
    return idx, np.diff(edges)


def fit_bath(delta_w, beta, n_bath, *, ph_symmetric=False, n_starts=4, seed=0, initial=None,
             w_max=None, weight="uniform", D=1.0):
    """Fit ``Delta(i w_n)`` (one spin, full TRIQS mesh ``2 n_iw``) with ``n_bath`` sites.

    Parameters
    ----------
    delta_w : ndarray (2 n_iw,), complex
        ``Delta(i w_n)`` on the full fermionic mesh (TRIQS order, negative
        frequencies first); only ``w_n > 0`` is fitted.
    beta : float
    n_bath : int
        Number of bath sites ``k``.
    ph_symmetric : bool
        Particle-hole symmetric parametrisation (pairs ``+-eps_p``, equal ``V_p``).
    n_starts : int
        Maximum number of starts besides ``initial``, taken in the order Gauss
        quadrature, ``[-D, D]`` spread, support spread, cluster partition, seeded
        random spreads (module docstring); the search stops early when a start
        reaches the best cost again.
    seed : int
        Seed of the random starts (which run only when ``n_starts > 4``).
    initial : tuple (eps_k, V_k), optional
        A starting bath (e.g. the previous DMFT iteration's), searched first.  Only
        its levels are used (the weights are projected).
    w_max : float, optional
        Largest frequency fitted; default ``10 D`` but at least 32 frequencies.
    weight : {'uniform', '1/n', '1/w'}
        ``W_n`` of the cost function.
    D : float
        Energy scale used for the default ``w_max`` and the starting levels.

    Returns
    -------
    BathFit
        With the tie rule of the module docstring: of minima with equal costs the
        one from the start of lowest priority, and of a minimum and its mirror
        image (unconstrained bath, symmetric ``Delta``) the one with
        ``sum_k V_k^2 eps_k <= 0``.
    """
    t_start = time.perf_counter()
    delta_w = np.asarray(delta_w, complex)
    if delta_w.ndim != 1 or delta_w.size % 2:
        raise ValueError("delta_w must be a 1-d array on the full fermionic mesh (2 n_iw points)")
    if not np.all(np.isfinite(delta_w)):
        raise ValueError("Delta(i w) contains NaN or infinite values")
    if isinstance(n_bath, bool) or not isinstance(n_bath, (int, np.integer)) or n_bath < 1:
        raise ValueError(f"n_bath={n_bath!r} must be a positive integer")
    if isinstance(n_starts, bool) or not isinstance(n_starts, (int, np.integer)) or n_starts < 1:
        raise ValueError(f"n_starts={n_starts!r} must be a positive integer")
    if isinstance(beta, bool) or not isinstance(beta, (int, float, np.integer, np.floating)) or \
            not (np.isfinite(beta) and beta > 0):
        raise ValueError(f"beta={beta!r} must be a positive finite number")
    k = int(n_bath)
    ph = bool(ph_symmetric)
    if initial is not None:
        e0, v0 = (np.asarray(a, float).ravel() for a in initial)
        if e0.size != k or v0.size != k:
            raise ValueError(f"initial bath has {e0.size} levels, expected n_bath={k}")
        if not (np.all(np.isfinite(e0)) and np.all(np.isfinite(v0))):
            raise ValueError("initial bath contains NaN or infinite values")
    n_iw = delta_w.size // 2
    w = np.pi * (2 * np.arange(n_iw) + 1) / beta
    dpos = delta_w[n_iw:]
    if w_max is None:
        w_max = 10.0 * D
    n_fit = int(max(min(32, n_iw), np.searchsorted(w, w_max, side="right")))
    n_fit = min(n_fit, n_iw)
    z = 1j * w[:n_fit]
    target = dpos[:n_fit]
    if weight == "uniform":
        Wn = np.ones(n_fit)
    elif weight == "1/n":
        Wn = 1.0 / (np.arange(n_fit) + 1)
    elif weight == "1/w":
        Wn = 1.0 / w[:n_fit]
    else:
        raise ValueError(f"weight={weight!r}; use 'uniform', '1/n' or '1/w'")
    n_par = 2 * (k // 2) + k % 2 if ph else 2 * k
    if 2 * n_fit < n_par:
        raise ValueError(f"{n_fit} fitted frequencies cannot determine {n_par} bath parameters "
                         f"(n_bath={k}); raise w_max or n_iw")
    prob = _Problem(z, target, np.sqrt(Wn), k, ph)
    idx, quad = _frequency_subset(n_fit)
    sub = _Problem(z[idx], target[idx], np.sqrt(Wn[idx] * quad), k, ph)
    m = prob.n_p

    def tied(a, b, floor, rtol=TIE_RTOL):
        return abs(a - b) <= rtol * max(a, b) + floor

    floor_sub = 1e-30 * float(np.sum(sub.bf**2))  # costs this small are round-off
    floor = 1e-30 * float(np.sum(prob.bf**2))

    # -- starts, in the fixed priority order (lower = preferred among ties) ------------
    spread = np.linspace(-D, D, k + 2)[1:-1] if k > 1 else np.zeros(1)
    # the unconstrained spread is shifted by a quarter spacing: a start symmetric about 0
    # stays symmetric for a symmetric Delta and can end on a symmetric saddle point
    spread_p = np.sort(np.abs(spread))[::-1][:m] if ph else spread + 0.5 * D / (k + 1)
    starts = []  # (priority, levels or a function giving them: built only when reached)
    if m:
        n_grid = min(N_GRID, 17 + 8 * k)  # a coarser estimate suffices for few sites
        x_at, c_at = _spectral_atoms(sub, _level_grid(w[n_fit - 1], beta, D, ph, n_grid))
        if len(x_at):
            starts.append((0, lambda: _fill(_gauss_levels(x_at, c_at, m), m, D, ph)))
        starts.append((1, lambda: np.sort(spread_p)))  # independent of the estimate
        if len(x_at):
            lo, hi = x_at.min(), x_at.max()
            if hi - lo > 1e-3 * D:  # uniform over the estimate's support (shifted as above)
                starts.append((2, lambda: np.linspace(lo, hi, m + 2)[1:-1] + (
                    0.0 if ph else 0.25 * (hi - lo) / (m + 1))))
            starts.append((3, lambda: _fill(_cluster_levels(x_at, c_at, m), m, D, ph)))
        n_random = max(n_starts - len(starts), 0)
        rng = np.random.default_rng(seed) if n_random else None  # (~50 us to make)
        for i in range(n_random):
            e = spread * rng.uniform(0.3, 2.0) + rng.normal(0, 0.2 * D, k)
            starts.append((4 + i, np.sort(np.abs(e)[:m] if ph else e)))
        starts = starts[:n_starts]
    if initial is not None and m:
        starts.insert(0, (len(starts) + 10, sub.bath_to_levels(_pack(e0, v0, ph))))

    # -- local searches on the frequency subset ------------------------------------------
    # A start after the first gets MAXFEV_RACE evaluations and goes on only if it is
    # within a factor 10 of the best cost; a cost at round-off (EXACT_RTOL) ends all.
    exact = EXACT_RTOL * float(np.sum(sub.bf**2))
    found = []  # (cost on the subset, priority, levels)
    best = np.inf
    search = sub.search_joint if k <= JOINT_MAX_SITES else sub.search
    for prio, p0 in starts:
        p0 = p0() if callable(p0) else p0
        if found:
            p, _, cost = search(p0, MAXFEV_RACE, exact)
            if exact < cost <= 10 * best and not tied(cost, best, floor_sub, SEARCH_RTOL):
                p, _, cost = search(p, MAXFEV_SEARCH - MAXFEV_RACE, exact)
        else:
            p, _, cost = search(p0, MAXFEV_SEARCH, exact)
        if not np.isfinite(cost):
            continue
        again = bool(found) and tied(cost, best, floor_sub, SEARCH_RTOL)
        found.append((cost, prio, p))
        best = min(best, cost)
        if again or best <= exact:
            break
    if m == 0:  # odd ph bath with one site: the level at 0, only its weight is fitted
        found.append((0.0, 0, np.zeros(0)))
    if not found:
        raise RuntimeError(f"the bath fit ({k} sites) did not reach a finite cost from any "
                           "start; check Delta(i w) for overflow")
    best = min(f[0] for f in found)

    def same(f):
        return tied(f[0], best, floor_sub, SEARCH_RTOL)

    # the best minimum (earliest start among ties), and a distinct runner-up within 5 %
    found.sort(key=lambda f: (not same(f), 0.0 if same(f) else f[0], f[1]))
    chosen = found[:1] + [f for f in found[1:] if not same(f) and f[0] <= 1.05 * best][:1]
    polished = []
    for _, prio, p in chosen:
        c = prob.project(p)[0]
        x, cost = prob.polish(prob.levels_to_bath(p, c))
        polished.append((cost, prio, x))
    best = min(f[0] for f in polished)
    cost, _, x = min((f for f in polished if tied(f[0], best, floor)), key=lambda f: f[1])

    # -- mirror image (unconstrained bath): polish it, keep the better or apply the rule -
    mirror_tie = False
    if not ph:
        def key(x):  # a bath as sorted (eps, |V|) pairs
            o = np.lexsort((np.abs(x[k:]), x[:k]))
            return np.concatenate([x[:k][o], np.abs(x[k:][o])])

        tol = 1e-9 * (np.abs(x).max() + D)
        xm = np.concatenate([-x[:k], x[k:]])
        if np.abs(key(x) - key(xm)).max() <= tol:
            mirror_tie = True  # a symmetric minimum: its own mirror image
        elif float(np.sum(prob.project(-x[:k])[1] ** 2)) <= (1 + 1e-4) * cost + floor:
            xm, cost_m = prob.polish(xm)  # (nearly) symmetric Delta: a second minimum
            if np.abs(key(xm) - key(x)).max() <= tol:
                pass  # the polish went back to the same minimum
            elif cost_m < cost - TIE_RTOL * cost - floor:
                x, cost = xm, cost_m
            elif tied(cost_m, cost, floor):
                mirror_tie = True
                if np.sum(x[k:] ** 2 * x[:k]) > 0 and np.sum(xm[k:] ** 2 * xm[:k]) <= 0:
                    x, cost = xm, cost_m

    eps, V = _expand(x, k, ph)
    V = np.abs(V)
    order = np.lexsort((V, eps))
    eps, V = eps[order], V[order]
    def bath_fit(e, v, **kw):  # the BathFit of the bath (e, v) against the target
        err = np.abs((v**2 / (z[:, None] - e[None, :])).sum(axis=1) - target)
        return BathFit(eps_k=e, V_k=v, chi2=float(np.mean(Wn * err**2)),
                       max_error=float(err.max()), n_fit=n_fit, sum_V2=float(np.sum(v**2)),
                       **kw)

    result = bath_fit(eps, V, n_starts_used=len(found) - (m == 0), mirror_tie=mirror_tie)
    # -- a particle-hole symmetric Delta gets a symmetric bath when one fits as well ------
    scale = float(np.abs(target).max())
    if not ph and k >= 2 and scale > 0 and np.abs(target.real).max() <= PH_DELTA_RTOL * scale:
        exact = PH_EXACT_RTOL * float(np.mean(Wn * np.abs(target) ** 2))
        # a minimum that is its own mirror image up to the polish: made exactly symmetric
        # (pairs averaged; its cost moves at second order), no second fit needed
        e_m, v_m = eps[::-1], V[::-1]
        if (np.abs(eps + e_m).max() <= 1e-6 * (np.abs(eps).max() + D)
                and np.abs(V - v_m).max() <= 1e-6 * (V.max() + D)):
            sym = bath_fit(0.5 * (eps - e_m), 0.5 * (V + v_m), ph_chosen=True,
                           n_starts_used=result.n_starts_used, mirror_tie=result.mirror_tie)
            if sym.chi2 <= (1.0 + PH_PREFER_RTOL) * result.chi2 + exact:
                sym.time = time.perf_counter() - t_start
                return sym
        sym = fit_bath(delta_w, beta, k, ph_symmetric=True, n_starts=n_starts, seed=seed,
                       w_max=w_max, weight=weight, D=D)
        if sym.chi2 <= (1.0 + PH_PREFER_RTOL) * result.chi2 + exact:
            sym.n_starts_used += result.n_starts_used
            sym.mirror_tie = result.mirror_tie
            sym.ph_chosen = True
            result = sym
    result.time = time.perf_counter() - t_start
    return result
