# SPDX-License-Identifier: Apache-2.0
"""Physical validity of an impurity solution, checked on every ``MLSolver`` solve.

:func:`check_solution` returns the list of violated conditions (empty: valid).
The conditions hold for the exact Green's function of any single-orbital
Anderson impurity model with a Hermitian bath, so a violation is never a
matter of accuracy but a wrong answer:

* every value finite;
* ``G_s(tau) <= 0`` on ``[0, beta]`` and ``G_s(0+) + G_s(beta-) = -1``;
* causality: ``Im G_s(i w_n) <= 0`` and ``Im Sigma_s(i w_n) <= 0`` for ``w_n > 0``;
* ``0 <= n_s <= 1`` and ``max(0, n_up + n_dn - 1) <= <n_up n_dn> <= min(n_up, n_dn)``
  (all four occupation probabilities of the impurity non-negative);
* per spin block, ``G_iw``, ``G_tau``, ``G_l`` and ``Sigma_iw`` describe one function:
  ``G_tau`` and ``G_l`` (its first 8 coefficients) are the transforms of ``G_iw``,
  ``density = -G_tau(beta-)``, and
  ``Sigma_iw`` has the Hartree constant ``U n_-s`` (and, where ``G0`` is given,
  ``G_iw = 1/(G0^-1 - Sigma_iw)``).

Tolerances (:data:`TOLERANCES`) sit far above the rounding and transform errors
of the solvers here (measured: below 1e-9 in ``G(tau)`` and the sum rule,
below 1e-8 in ``Im Sigma``; the consistency of ML outputs, whose ``Sigma``
tail is replaced, to 1e-6) and far below any physically meaningful
difference (the models' accuracy is ~1e-3 in ``G(tau)``): they decide
*valid or not*, never *accurate or not*.
"""

from __future__ import annotations

import functools

import numpy as np

from .errors import InvalidG0Error, InvalidSolutionError
from .gf import transforms as tr

__all__ = ["TOLERANCES", "check_solution", "check_g0", "InvalidSolutionError", "InvalidG0Error"]

#: Absolute tolerances of :func:`check_solution` (see the module docstring).
TOLERANCES = {
    "G_tau": 1e-6,        # G(tau) <= tol and |G(0+) + G(beta-) + 1| <= tol
    "causal": 1e-6,       # Im G, Im Sigma <= tol * max(1, |scale|) at w_n > 0
    "occupation": 1e-6,   # bounds of n_s and <n_up n_dn>
    "consistency": 1e-4,  # G_tau, G_l vs the transforms of G_iw; Sigma vs Dyson, Hartree
}


#: ``|i w_max G(i w_max) - 1|`` above which the ``1/(i w)`` term does not dominate ``G`` at
#: the largest Matsubara frequency: spectral weight at ``|E| > ~w_max / 3`` (a level or ``U``
#: beyond the mesh), where no high-frequency expansion holds on the mesh.
UNRESOLVED_TAIL = 0.1


def tail_unresolved(G_iw, beta):
    """Per row of ``G_iw`` (rows, ``2 n_iw``): is ``G`` beyond the reach of its Matsubara
    mesh (:data:`UNRESOLVED_TAIL`)?  Moment-tail transforms to ``tau`` say nothing there."""
    G_iw = np.atleast_2d(G_iw)
    w_max = np.pi / beta * (G_iw.shape[1] - 1)
    return np.abs(1j * w_max * G_iw[:, -1] - 1.0) > UNRESOLVED_TAIL


def double_occupancy_bounds(density) -> tuple[float, float]:
    """``(max(0, n_up + n_dn - 1), min(n_up, n_dn))``: the bounds of ``<n_up n_dn>`` (all four
    occupation probabilities of the impurity non-negative)."""
    n = np.asarray(density, float)
    return max(0.0, float(n.sum()) - 1.0), float(min(n[0], n[1]))


def _fmt(x):
    return f"{float(x):.3g}"


@functools.lru_cache(maxsize=32)
def _tau_subgrid(n_tau: int, target: int = 257):
    """A uniform sub-grid of the ``n_tau``-point grid with about ``target`` points
    (every ``step``-th point; ``step`` divides ``n_tau - 1``)."""
    m = n_tau - 1
    steps = [k for k in range(1, max(1, m // (target - 1)) + 1) if m % k == 0]
    return max(steps)


def check_solution(sol, *, U=None, g0_iw=None, tol=None, consistency=True) -> list:
    """The exact properties :class:`~triqs_mlsolver.solvers.solution.AIMSolution`
    ``sol`` violates (empty list: physically valid).

    Parameters
    ----------
    sol : AIMSolution
        ``G_iw`` (2, 2 n_iw), ``G_tau`` (2, n_tau), ``G_l`` (2, n_l), ``Sigma_iw``,
        ``density`` (2,), ``double_occupancy``.
    U : float, optional
        The interaction: checks the Hartree constant ``Sigma_s(i inf) = U n_-s``.
    g0_iw : ndarray (2, 2 n_iw), optional
        The non-interacting ``G0``: checks Dyson's equation ``G = 1/(G0^-1 - Sigma)``.
    tol : dict, optional
        Overrides of :data:`TOLERANCES`.
    consistency : bool
        ``False``: only the pointwise conditions (finite values, signs, sum rule,
        causality, occupations), not whether ``G_tau``, ``G_l``, ``Sigma_iw`` and
        ``density`` are the transforms of ``G_iw`` -- for solutions that are so by
        construction (a quarter of the cost: 0.2 ms instead of 0.9 ms at n_iw = 1025).

    Returns
    -------
    list of str
        One line per violated condition, naming the quantity, the spin and the value.
    """
    t = {**TOLERANCES, **(tol or {})}
    out = []
    G_iw = np.asarray(sol.G_iw)
    G_tau = np.asarray(sol.G_tau).real
    G_l = np.asarray(sol.G_l).real
    Sig = np.asarray(sol.Sigma_iw)
    dens = np.asarray(sol.density, float)
    d = sol.double_occupancy
    arrays = {"G_iw": G_iw, "G_tau": G_tau, "G_l": G_l, "Sigma_iw": Sig, "density": dens}
    if d is not None:
        arrays["double_occupancy"] = np.asarray(d, float)
    bad = [k for k, a in arrays.items() if not np.all(np.isfinite(a))]
    if bad:
        return [f"non-finite values in {', '.join(bad)}"]
    beta = float(sol.beta)
    n_iw = G_iw.shape[1] // 2
    pos = slice(n_iw, None)
    spins = ("up", "down")
    for s, name in enumerate(spins[:G_tau.shape[0]]):
        if G_tau[s].max() > t["G_tau"]:
            j = int(np.argmax(G_tau[s]))
            out.append(f"G_tau[{name}] > 0: {_fmt(G_tau[s, j])} at tau = "
                       f"{_fmt(beta * j / (G_tau.shape[1] - 1))}")
        jump = G_tau[s, 0] + G_tau[s, -1] + 1.0
        if abs(jump) > t["G_tau"]:
            out.append(f"G_tau[{name}](0+) + G_tau[{name}](beta-) = {_fmt(jump - 1.0)}, not -1")
        ig = G_iw[s, pos].imag.max()
        if ig > t["causal"]:
            out.append(f"Im G_iw[{name}](i w_n > 0) > 0: up to {_fmt(ig)} (not causal)")
        # Sigma = G0^-1 - G^-1 loses ~1e-13 |w_n| to rounding (both terms ~ i w_n)
        w_pos = np.pi / beta * (2 * np.arange(n_iw) + 1)
        slack = t["causal"] * max(1.0, float(U or 0.0)) + 1e-12 * w_pos
        excess = Sig[s, pos].imag - slack
        if excess.max() > 0:
            j = int(np.argmax(excess))
            out.append(f"Im Sigma_iw[{name}](i w_n > 0) > 0: {_fmt(Sig[s, pos][j].imag)} at "
                       f"w_n = {_fmt(w_pos[j])} (not causal)")
        if not (-t["occupation"] <= dens[s] <= 1.0 + t["occupation"]):
            out.append(f"density[{name}] = {_fmt(dens[s])} outside [0, 1]")
    if d is not None and dens.size == 2:
        lo, hi = double_occupancy_bounds(dens)
        if not (lo - t["occupation"] <= float(d) <= hi + t["occupation"]):
            out.append(f"double occupancy <n_up n_dn> = {_fmt(d)} outside "
                       f"[max(0, n_up + n_dn - 1), min(n_up, n_dn)] = [{_fmt(lo)}, {_fmt(hi)}]")
    if not consistency:
        return out
    if G_iw.shape[0] == 2 and all(np.array_equal(a[0], a[1]) for a in (G_iw, G_tau, G_l, Sig)) \
            and dens[0] == dens[1] and (g0_iw is None or np.array_equal(g0_iw[0], g0_iw[1])):
        # equal spin blocks: the transforms of one (the messages name spin up)
        out += _consistency(G_iw[:1], G_tau[:1], G_l[:1], Sig[:1], dens[:1], beta, None,
                            None if g0_iw is None else np.asarray(g0_iw)[:1], t["consistency"])
        out += _hartree(Sig, dens, beta, U, t["consistency"])
    else:
        out += _consistency(G_iw, G_tau, G_l, Sig, dens, beta, U, g0_iw, t["consistency"])
    return out


def _consistency(G_iw, G_tau, G_l, Sig, dens, beta, U, g0_iw, tol):
    out = []
    n_s = G_iw.shape[0]
    spins = ("up", "down")
    iw = tr.matsubara_freqs(beta, G_iw.shape[1] // 2)
    known = np.zeros((2, n_s))
    known[1] = 1.0
    # The transforms of G_iw are only as good as its tail expansion at w_max (low T, large
    # U: poles beyond w_max).  Their own error is estimated by the change of G(beta-)
    # between tail fits of order 4 and 6 (measured on exact ED and IPT/Hubbard-I solutions
    # from beta = 0.01 to 1e4 and U to 1e4: the error of the order-6 transforms is below
    # that change, or below 0.5 times the fit residual err); the tolerance adds 10 times
    # both.
    n_tau = G_tau.shape[1]
    step = _tau_subgrid(n_tau)
    n_sub = (n_tau - 1) // step + 1
    m4, _ = tr.fit_tail(G_iw.T, iw, known_moments=known, max_order=4)
    mom, err = tr.fit_tail(G_iw.T, iw, known_moments=known, max_order=6)
    g_t = tr.iw_to_tau(G_iw.T, beta, n_sub, mom).real.T
    change = np.abs(g_t[:, -1] + tr.density_from_iw(G_iw.T, beta, m4).real)
    # the first (at most) 8 Legendre coefficients: a G_l of another function differs there,
    # and they cost a quarter of all 30
    n_lc = min(G_l.shape[1], 8)
    g_l = tr.iw_to_legendre(G_iw.T, beta, n_lc, mom).real.T
    tol_t = tol + 10.0 * err + 10.0 * change
    tol_l = tol_t.copy()
    dt = np.abs(g_t - G_tau[:, ::step]).max(axis=1)
    dl = np.abs(g_l - G_l[:, :n_lc]).max(axis=1)
    # Where the 1/(i w) term does not dominate at w_max (|i w G - 1| > 0.1: spectral weight
    # at |E| > ~w_max / 3, e.g. U or a level far beyond the mesh), no tail expansion holds
    # there and the transforms say nothing: those checks are skipped.
    unresolved = tail_unresolved(G_iw, beta)
    tol_t[unresolved] = np.inf
    tol_l[unresolved] = np.inf
    for s in range(n_s):
        name = spins[s]
        if not dt[s] <= tol_t[s]:
            out.append(f"G_tau[{name}] is not the transform of G_iw[{name}] "
                       f"(max difference {_fmt(dt[s])})")
        if not dl[s] <= tol_l[s]:
            out.append(f"G_l[{name}] is not the transform of G_iw[{name}] "
                       f"(max difference {_fmt(dl[s])})")
        if abs(dens[s] + G_tau[s, -1]) > tol:
            out.append(f"density[{name}] = {_fmt(dens[s])} but -G_tau[{name}](beta-) = "
                       f"{_fmt(-G_tau[s, -1])}")
    if n_s == 2:
        out += _hartree(Sig, dens, beta, U, tol)
    if g0_iw is not None:
        with np.errstate(all="ignore"):
            G_d = 1.0 / (1.0 / np.asarray(g0_iw) - Sig)
        dd = np.abs(G_d - G_iw).max(axis=1)
        for s in range(n_s):
            if not dd[s] <= tol:
                out.append(f"G_iw[{spins[s]}] != 1/(G0_iw^-1 - Sigma_iw) (max difference "
                           f"{_fmt(dd[s])})")
    return out


def _hartree(Sig, dens, beta, U, tol):
    """``Sigma_s(i w) = U n_-s + U^2 n_-s (1 - n_-s)/(i w) + O(1/w^2)``: the real part at the
    largest frequency differs from ``U n_-s`` by ``O(U^3 / w^2)``."""
    if U is None:
        return []
    out = []
    spins = ("up", "down")
    w = np.pi / beta * (Sig.shape[1] - 1)
    for s in range(2):
        h = Sig[s, -1].real
        want = U * dens[1 - s]
        slack = tol * max(1.0, U) + 2.0 * U**3 / w**2
        if abs(h - want) > slack:
            out.append(f"Sigma_iw[{spins[s]}] tends to {h:.6g} at i w_max, not the "
                       f"Hartree term U n_{spins[1 - s]} = {want:.6g} (allowed difference "
                       f"{_fmt(slack)})")
    return out


def check_g0(g0_sw, beta, names=("up", "down")) -> None:
    """Raise :class:`InvalidG0Error` unless every ``G0_s(i w_n)`` is the Green's function
    of a level coupled to a Hermitian bath at this ``beta``.

    ``G0^-1(i w) = i w + mu - Delta(i w)`` with ``Delta(i w) ~ m_0/(i w)``, ``m_0 >= 0``,
    and ``Im Delta(i w_n) <= 0`` for ``w_n > 0``.  From the two largest frequencies,
    ``Im G0^-1 = c w + m_0/w + O(w^-3)``: ``c < 0`` is a conjugated or negated ``G0``;
    ``c != 1`` (beyond ``1e-3`` plus the size of the neglected ``1/w`` term) is ``G0``
    from another mesh, e.g. another beta (``beta' = beta / c``).

    Parameters
    ----------
    g0_sw : complex ndarray (n_blocks, 2 n_iw)
    beta : float
    names : sequence of str
        Block names for the messages.
    """
    g0 = np.asarray(g0_sw, complex)
    n_iw = g0.shape[1] // 2
    w = tr.matsubara_freqs(beta, n_iw).imag
    for s in range(g0.shape[0]):
        name = names[s] if s < len(names) else str(s)
        if not np.all(np.isfinite(g0[s])):
            raise InvalidG0Error(f"G0_iw[{name!r}] contains NaN or infinite values; fill "
                                 "G0_iw before solve()")
        if np.any(g0[s] == 0):
            raise InvalidG0Error(f"G0_iw[{name!r}] vanishes at some frequency; was it filled? "
                                 "(e.g. G0_iw << inverse(iOmega_n + mu - Delta))")
        inv = 1.0 / g0[s]
        w1, w2 = w[-2], w[-1]
        A = np.array([[w1, 1.0 / w1], [w2, 1.0 / w2]])
        c, m0 = np.linalg.solve(A, [inv[-2].imag, inv[-1].imag])
        if c < 0:
            raise InvalidG0Error(
                f"G0_iw[{name!r}] is not causal: it behaves as {1 / c:.3g}/(i w_n) at large "
                "w_n, so Im G0 > 0 for w_n > 0 (a conjugated or negated G0?). A causal G0 "
                "is 1/(i w_n + mu - Delta(i w_n)), e.g. G0_iw << inverse(iOmega_n + mu - "
                "t**2 * G_iw)")
        tol_c = 1e-3 + abs(m0) / w2**2
        if abs(c - 1.0) > tol_c:
            raise InvalidG0Error(
                f"G0_iw[{name!r}] behaves as 1/({c:.6g} i w_n) at large w_n, not 1/(i w_n): "
                f"it looks computed on the Matsubara mesh of beta = {beta / c:.6g}, while "
                f"the solver has beta = {beta:g}. Fill G0_iw with data at the solver's beta "
                "(a Gf's beta is its mesh's beta)")
        pos = w > 0
        imd = w[pos] - inv[pos].imag  # Im Delta(i w_n), <= 0 for a Hermitian bath
        slack = 1e-8 * np.maximum(1.0, np.abs(inv[pos]))
        if np.any(imd > slack):
            j = int(np.argmax(imd - slack))
            raise InvalidG0Error(
                f"G0_iw[{name!r}] gives a hybridisation Delta = i w_n + mu - G0^-1 with "
                f"Im Delta = {imd[j]:.3g} > 0 at w_n = {w[pos][j]:.4g}: a bath with negative "
                "spectral weight, not physical. Check the sign of Delta in G0_iw << "
                "inverse(iOmega_n + mu - Delta)")
