# SPDX-License-Identifier: Apache-2.0
r"""Exact diagonalisation (ED) of the single-orbital AIM with a discrete bath.

.. math::

    H = \sum_\sigma \epsilon_{d\sigma} n_{d\sigma} + U n_{d\uparrow} n_{d\downarrow}
      + \sum_{k\sigma} \epsilon_{k\sigma} n_{k\sigma}
      + \sum_{k\sigma} V_{k\sigma} (d^\dagger_\sigma c_{k\sigma} + h.c.),
    \qquad \epsilon_{d\sigma} = -\mu_\sigma ,

with ``k = n_bath`` bath sites per spin (spin-polarised parameters allowed).
The Fock space is split into sectors ``(N_up, N_dn)`` in the spin-separated
basis ``|up bits> (x) |dn bits>`` (``L = k + 1`` orbitals per spin, impurity =
orbital 0, all up orbitals before all down ones).  Only the one-species
matrices ``H_sigma`` (``C(L, N) x C(L, N)``) are stored; a state of a sector is
a ``d_up x d_dn`` matrix ``Psi`` and
``H Psi = H_up Psi + Psi H_dn^T + U (n_up n_dn^T) o Psi``.

Two methods (option ``method``):

``'full'`` (Path A, the exactness reference, used for ``k <= 4`` by ``'auto'``)
    Every sector is diagonalised completely (``numpy.linalg.eigh``) and the
    Lehmann representation is exact:

    .. math::

        G_\sigma(i\omega) = \frac1Z \sum_{m,n} |\langle m|d^\dagger_\sigma|n\rangle|^2
            \frac{e^{-\beta E_n} + e^{-\beta E_m}}{i\omega - (E_m - E_n)} .

    Poles closer than ``1e-7/beta`` are merged (error <= 5e-15 in ``G(tau)``),
    poles with weight < 1e-14 (of the total weight 1) are dropped, and sectors
    that carry no Boltzmann weight above 1e-16 and neighbour no such sector are
    never diagonalised.

``'lanczos'`` (Path B; ``'auto'`` for ``k >= 5``)
    1. Per sector, the eigenstates with ``e^{-beta (E - E0)} > cutoff`` (default
       ``CUTOFF = 1e-7``) are found.  Sectors are visited by increasing lower bound
       ``max_lambda [E_min(H_up + lambda U n_up) + E_min(H_dn + lambda U n_dn) - lambda U]``
       (``0 <= lambda <= 1``; valid because ``n_up n_dn >= lambda (n_up + n_dn - 1)``)
       and skipped once that bound lies above the cutoff; the twin symmetry
       ``(N_up, N_dn) <-> (N_dn, N_up)`` halves the work when the parameters are
       spin symmetric.  Sectors of dimension <= 256 are diagonalised completely.
       A larger one starts with a plain Lanczos run of 120 steps
       (:func:`~._ed_core.estimate_low_count`; its count of states below the cutoff is
       the larger of the distinct Ritz values and the Gauss-quadrature trace
       estimate): a sector whose converged lowest Ritz value (minus its residual) lies
       above the cutoff is skipped.  Where plain Lanczos is safe (``U > 0`` and no two
       bath sites alike, so no exactly degenerate states inside a sector) the run is
       continued, up to 1000 steps, until every Ritz value below the cutoff has
       converged (residual < ``1e-9`` x the energy scale) or is an emerging copy of
       one that has (:func:`~._ed_core.lanczos_low_states`); one Ritz vector per
       eigenvalue, a Rayleigh-Ritz step and true residuals follow, and a second Lanczos
       run with those states projected out must find nothing below the cutoff (it
       would converge to a missed state).  Otherwise ARPACK ``eigsh`` (``tol=1e-10``)
       is asked for the number of states that run counted (plus a margin), doubling
       while the highest one found is still above the cutoff, up to ``n_states_max``
       (default ``N_STATES_MAX = 64``).
       **Particle-hole symmetry**: where the discrete AIM is particle-hole symmetric
       (``mu_s = U/2``, bath levels in mirror pairs, to ``PH_TOL = 1e-10`` of the
       energy scale; the pairs are then made exactly symmetric) the sector
       ``(L - N_up, L - N_dn)`` has the spectrum of ``(N_up, N_dn)`` and mirror-image
       Green's function contributions: only one of each pair is treated (states
       weighted by the orbit size) and the poles are completed by ``E -> -E``
       (``diagnostics['symmetry']``: ``'spin+ph'``, ``'spin'``, ``'ph'`` or ``'none'``).
       The bath fit gives a particle-hole symmetric ``Delta`` an exactly symmetric bath
       whenever that fits as well (:mod:`triqs_mlsolver.aim.bath`).
    2. A sector that needs more states than that is diagonalised completely if its
       dimension is <= ``DIM_FALLBACK`` (1500); a larger one keeps its
       ``n_states_max`` lowest states exactly and the rest of its trace is sampled by
       finite-temperature Lanczos (FTLM, :mod:`._ftlm`); when the Lanczos count shows
       the whole window full of states (high temperature), the sector is sampled by
       FTLM alone, and so are then the other such sectors of dimension > 256.
    3. For every exactly kept state ``|m>`` and spin: ``d^+|m>`` and ``d|m>`` are
       projected exactly on the eigenstates of the target sector when that one
       is diagonalised completely (dimension <= 256); otherwise a Lanczos chain
       (no reorthogonalisation, stopped when ``b_n < 1e-12``, when its value at the
       lowest Matsubara frequency changed by less than its tolerance in 8 steps, or at
       ``n_lanczos``; the tolerance of a chain is ``CF_TOL / (n_chains s_m)`` relative
       to ``1/w_0``, with ``s_m`` its share of ``G`` (Boltzmann weight times
       ``|d^+ m|^2``), within ``[1e-12, 1e-3]``: the changes still allowed sum to
       ``CF_TOL``) gives the continued fraction, whose poles and weights are
       obtained by diagonalising the tridiagonal matrix (``eigh_tridiagonal``: poles
       ``E_p = e_j - E_m`` (particle) or ``E_m - e_j`` (hole), weights
       ``b_0^2 |v_{0j}|^2``).  The poles are merged and cut as in Path A.  More than
       ``POLE_BIN_MIN`` poles (high temperature) are accumulated on an energy grid of
       spacing ``1e-3/beta`` with linear weight splitting (zeroth and first moments
       exact, ``G(tau)`` moved by ~1e-7).

    The Hamiltonian of a sector acts on a state stored as a ``d_up x d_dn`` matrix
    (Kronecker sum of the two species); the matvec and the Lanczos recurrence run in
    compiled kernels (numba, :mod:`._ed_kernels`; the numpy path gives the same results
    to round-off where numba is missing).

    **FTLM** (Jaklic & Prelovsek, PRB 49, 5065 (1994); Adv. Phys. 49, 1 (2000)):
    ``ftlm_random`` (16) normalised Gaussian random vectors per sampled sector, a
    Lanczos run of ``ftlm_steps`` (30) steps with full reorthogonalisation from each,
    and the two-chain form for the Green's function (a second run from ``d^+|r>`` or
    ``d|r>``).  The sum rule ``G(0+) + G(beta-) = -1`` holds exactly for every random
    vector; ``Z`` and the Green's function are estimated from the same vectors, and
    the statistical error of ``G(tau)`` is the jackknife over the random vectors,
    reported as ``diagnostics['ftlm']`` (``error_G_tau``, the max over 33 tau
    points; ``error_tau`` per point; ``weight``, the share of ``Z`` sampled).  A test
    checks the bar against complete diagonalisation (RMS of error/bar ~ 0.8, 99 %
    within two bars at beta = 1).  At k = 8 and beta = 1 the bar is ~2e-4 in
    ``G(tau)`` with the defaults; it falls as ``1/sqrt(ftlm_random)``.  FTLM is
    only meant for many thermal states: forced on small sectors at low temperature
    its error is large and the jackknife underestimates it (measured at beta = 5,
    k = 5: RMS error/bar 1.8).  ``ftlm_random=0`` switches it off (then
    :class:`TooManyStatesError` where it would be needed).

    **Exactness.**  The deterministic part of Path B is exact up to the cutoff
    and the continued-fraction convergence: against complete diagonalisation
    (k = 5, 6, beta = 1, 10, 50) the default options agree to better than 1e-6 in
    ``G(i w_n)`` (test); at k = 8, beta = 10 and 50 the default cutoff 1e-7 moves
    ``G(tau)`` by 2.5e-8 / 3e-8 relative to 1e-10.  The omitted Boltzmann weight
    is reported as ``diagnostics['omitted_weight_bound']``: per sector, (number of
    states not kept) x (weight of the lowest state not kept, or of the sector's
    lower bound for sectors never diagonalised), relative to ``Z`` -- a loose
    upper bound (the true omitted weight is usually orders of magnitude smaller).

The reference: ``n_bath='auto'`` (the default of :func:`solve_ed` and of the
``'ed'`` solver) fits a continuous ``Delta`` with ``AUTO_K_MIN = 3, 4, ...`` sites
and stops when ``RMS_tau |G_k - G_{k-1}| <= auto_tol`` (default ``AUTO_TOL =
1e-4``, RMS over the tau grid and both spins), at most ``AUTO_K_MAX = 8``.
``diagnostics['reference']`` holds ``n_bath``, ``error_estimate`` (that RMS, or the
FTLM bar of ``G_k`` or the resolution ``RESOLUTION = 1e-7`` of the deterministic path if
larger), ``converged`` and the ``history`` of bath sizes.  The
convergence in ``k`` is geometric (ratios 4-20 per site on Bethe-like ``Delta`` at
beta = 10-50), so the estimate is conservative: the true error of ``G_k`` is about
``RMS |G_{k+1} - G_k|``, several times smaller (tested: a larger bath differs by less
than the estimate).  At high temperature small baths converge at once (beta = 1: k
= 3 and 4 agree to 1e-10); at beta = 200 eight sites are not always enough, and the
result then says ``converged = False`` with the last difference as its estimate.  A
discrete bath of at most ``MAX_BATH`` sites is solved as given (estimate: the FTLM
bar, at least ``RESOLUTION``).

The result: ``G_iw``, ``G_tau`` and ``G_l`` are the exact pole sums of
:func:`~triqs_mlsolver.solvers.solution.solution_from_poles` (``G_iw`` in real
arithmetic, ``G_tau`` as a matrix product of exponentials, ~40x faster than
the direct sum for ``n_tau = 10001``; a test checks both against the direct
sums to 1e-13).

Continuous hybridisation: if the parameters hold ``Delta_iw`` (or if
``n_bath`` differs from the size of the given discrete bath), ``Delta`` of
each spin is fitted with ``n_bath`` sites by :func:`triqs_mlsolver.aim.fit_bath`
(per spin: a spin-polarised or doped ``Delta`` gets its own bath for each spin; once
when the parameters are spin symmetric; deterministic, mirror-image ties of a
particle-hole symmetric ``Delta`` resolved to ``sum_k V_k^2 eps_k <= 0``) and the
discrete AIM is solved.  ``Sigma_iw`` is then the self-energy of that
discrete AIM, ``G0_fit^-1 - G^-1`` (the convention of ED-DMFT codes such as
EDIpack); the fit is reported in ``diagnostics['bath_fit']``.

``Sigma_iw`` includes the Hartree term.  Registered as ``'ed'`` and, with
fixed bath sizes, ``'ed1'`` ... ``'ed5'`` (full) and ``'ed8'`` (Lanczos);
``'ed1w'`` ... ``'ed5w'`` fit the bath with weights ``1/w_n`` instead of
uniform ones: the low frequencies, which decide the low-energy physics, count
more.  On 40 random Bethe-database AIMs (reference ED-6) ED-3 with ``1/w_n``
weights has 6x smaller G(tau) errors than with uniform weights (RMS 1.0e-3
against 6.4e-3; 3-8x on the doped low-temperature samples that are hardest).

Re-embedding (``embed=True``; registered as ``'ed1e'`` ... ``'ed5e'``, with the
``1/w_n`` fit): the self-energy of the fitted AIM in the exact ``G0`` of the
given one, ``G = 1/(G0^-1 - Sigma_fit)`` -- what an ED-DMFT code does when it
puts the impurity self-energy in the lattice Dyson equation.  Exact at
``U = 0`` whatever the fit, identical to plain ED when no fit is made; the
moments ``c1 = 1``, ``c2 = Sigma_inf - mu`` are known and the transforms to
``tau`` and Legendre are tail-corrected (:func:`solution_from_iw`);
``<n_up n_dn>`` comes from Galitskii-Migdal (converges as ``n_iw^-3``).  It
mends the bath-fit error of the low frequencies but not the self-energy's own
error: on the independent Bethe test database (1,000 AIMs, reference ED-6)
the RMS error of G(tau) of ED-3 falls from 1.48e-3 (``ed3w``) to 7.7e-4
(beta = 50: 0.49x, beta = 100: 0.52x, beta = 20: 1.01x), mostly on the
samples with the largest errors; the median sample gets about 10 % worse
(only 38 % improve).  Cost: 8.8 ms median per AIM against 7.6 ms for ``ed3w``
(the Matsubara-to-tau/Legendre transforms of 2 x 1025 frequencies).
"""

from __future__ import annotations

import functools
import math
import re
import time
from dataclasses import replace

import numpy as np

from ..aim.params import AIMParams
from ..errors import TriqsMLSolverError
from . import _ed_core as core
from . import _ftlm
from .base import register_solver
from .solution import (
    AIMSolution,
    _dyson,
    add_remainder_transforms,
    double_occupancy_from_ud,
    galitskii_migdal,
    solution_from_iw,
    solution_from_poles,
)

__all__ = ["solve_ed", "ed_poles", "embed_solution", "embedded_source", "TooManyStatesError",
           "MAX_BATH", "DIM_FULL", "DIM_FALLBACK"]

#: Largest bath: ``k = 9`` means sectors of up to C(10, 5)^2 = 63504 states.
MAX_BATH = 9
#: Largest total Fock dimension (4^(k+1)) that ``method='auto'`` diagonalises completely.
AUTO_FULL_MAX_FOCK = 4**5
#: Path B diagonalises sectors up to this dimension completely.
DIM_FULL = 256
#: Path B falls back to complete diagonalisation of a sector up to this dimension.
DIM_FALLBACK = 1500
#: FTLM poles, and more exact poles than ``POLE_BIN_MIN`` (high temperature), are
#: accumulated on an energy grid of spacing ``POLE_BIN / beta`` (weights split linearly:
#: G(tau) moves by <= (POLE_BIN)^2/8 ~ 1e-7).
POLE_BIN_MIN = 100_000
POLE_BIN = 1e-3
#: ``method='full'`` refuses sectors larger than this (k = 6 has 1225).
FULL_MAX_SECTOR = 1300
#: Path B: a continued fraction stops when its value at the lowest Matsubara frequency
#: changed by less than ``CF_TOL / w_0`` in the last 8 Lanczos steps.
CF_TOL = 1e-8
#: Path B keeps the states with Boltzmann weight ``exp(-beta (E - E0)) > CUTOFF``.
CUTOFF = 1e-7
#: Path B: most eigenpairs per sector from ARPACK; beyond, complete diagonalisation or FTLM.
N_STATES_MAX = 64
#: FTLM: random vectors per sampled sector, Lanczos steps per run.
FTLM_RANDOM = 16
FTLM_STEPS = 30
#: ``n_bath='auto'``: bath sizes tried, and the default tolerance (RMS of G(tau)).
AUTO_K_MIN = 3
AUTO_K_MAX = 8
AUTO_TOL = 1e-4
#: Smallest error estimate the reference reports: the resolution of the deterministic path
#: in G(tau) (Boltzmann cut-off 1e-7: ~3e-8 at k = 8; pole binning above POLE_BIN_MIN poles:
#: ~1e-7), below which successive bath sizes can agree by accident (beta = 1: k = 3 and 4
#: agree to 6e-11 while k = 6 differs by 3.5e-8).
RESOLUTION = 1e-7
FIT_WEIGHTS = ("uniform", "1/n", "1/w")
_METHODS = ("auto", "full", "lanczos")


class TooManyStatesError(TriqsMLSolverError, core.TooManyStatesError):
    """Path B would need more eigenstates in a sector than ``n_states_max`` allows."""


def _check_int(name, val, lo, hi=None, why=""):
    if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < lo or (
            hi is not None and val > hi):
        rng = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise ValueError(f"{name}={val!r} must be an integer {rng}{why}")
    return int(val)


def _validate(n_bath, method, cutoff, n_lanczos, n_states_max, fit_starts, fit_weight="uniform",
              ftlm_random=FTLM_RANDOM, ftlm_steps=FTLM_STEPS, seed=0, auto_tol=AUTO_TOL):
    why = (f"; ED needs at least one bath site, and n_bath > {MAX_BATH} means sectors of "
           f"more than C(11, 5)^2 = 213444 states (Lanczos vectors of several MB each and "
           f"minutes per solve in this implementation); or n_bath='auto' (the reference: "
           f"the bath grows until G(tau) converges)")
    if n_bath is not None and not (isinstance(n_bath, str) and n_bath == "auto"):
        _check_int("n_bath", n_bath, 1, MAX_BATH, why)
    if ftlm_random != 0:
        _check_int("ftlm_random", ftlm_random, 2, None,
                   " (random vectors per sector of finite-temperature Lanczos; 0 switches "
                   "FTLM off, and the jackknife error needs at least 2)")
    _check_int("ftlm_steps", ftlm_steps, 2)
    _check_int("seed", seed, 0)
    if isinstance(auto_tol, bool) or not isinstance(auto_tol, (float, int, np.floating)) or not (
            0 < auto_tol < 1):
        raise ValueError(f"auto_tol={auto_tol!r} must be a number in (0, 1), e.g. 1e-4 (RMS "
                         f"of G(tau) between successive bath sizes of n_bath='auto')")
    if method not in _METHODS:
        raise ValueError(f"method={method!r}; use one of {_METHODS}")
    if isinstance(cutoff, bool) or not isinstance(cutoff, (float, int, np.floating)) or not (
            0 < cutoff < 1):
        raise ValueError(f"cutoff={cutoff!r} must be a number in (0, 1), e.g. 1e-10")
    _check_int("n_lanczos", n_lanczos, 2)
    _check_int("n_states_max", n_states_max, 1)
    _check_int("fit_starts", fit_starts, 1)
    if fit_weight not in FIT_WEIGHTS:
        raise ValueError(f"fit_weight={fit_weight!r}; use one of {FIT_WEIGHTS}")


def _discrete_params(params: AIMParams, n_bath, n_iw, ph_symmetric_fit, fit_starts,
                     fit_weight="uniform"):
    """The discrete AIM to diagonalise, and the fit report (or None)."""
    if n_bath is None:
        if params.Delta_iw is not None:
            raise ValueError(
                "these parameters give a continuous Delta_iw but n_bath=None; ED needs a "
                "discrete bath: pass n_bath=<number of bath sites> (e.g. 4 or 8) to fit one"
            )
        if params.n_bath > MAX_BATH:
            raise ValueError(
                f"the discrete bath has {params.n_bath} sites; ED handles at most {MAX_BATH} "
                f"(pass n_bath=<= {MAX_BATH} to fit a smaller bath)"
            )
        return params, None
    if params.has_discrete_bath and params.n_bath == n_bath:
        return params, None
    from ..aim.bath import EPS_FAR, decouple_far_sites, fit_bath  # only needed here

    if params.Delta_iw is not None:
        delta = params.Delta_iw
    else:
        delta = params.delta_iw(max(n_iw, 64))
    fits, n_far = [], []
    eps_max = EPS_FAR * params.D + params.U  # levels beyond: an artefact of the fit
    for s in range(2):
        if s == 1 and params.spin_symmetric:
            fits.append(fits[0])
            n_far.append(n_far[0])
            break
        fit, far = decouple_far_sites(
            fit_bath(delta[s], params.beta, n_bath, ph_symmetric=ph_symmetric_fit,
                     n_starts=fit_starts, seed=0, D=params.D, weight=fit_weight), eps_max)
        fits.append(fit)
        n_far.append(far)
    eps = np.stack([f.eps_k for f in fits])
    V = np.stack([f.V_k for f in fits])
    fitted = AIMParams(U=params.U, mu=params.mu, beta=params.beta, eps_k=eps, V_k=V,
                       D=params.D)
    report = dict(n_bath=n_bath, chi2=[float(f.chi2) for f in fits],
                  max_error=[float(f.max_error) for f in fits], eps_k=eps.tolist(),
                  V_k=V.tolist(), ph_symmetric=bool(ph_symmetric_fit), weight=fit_weight,
                  n_starts_used=[int(f.n_starts_used) for f in fits],
                  mirror_tie=[bool(f.mirror_tie) for f in fits],
                  time=[float(f.time) for f in fits], far_sites_decoupled=n_far)
    return fitted, report


def fit_discrete_bath(params: AIMParams, n_bath, n_iw, *, ph_symmetric_fit=False,
                      fit_starts=4, fit_weight="uniform"):
    """The report of the ``n_bath``-site bath fit that :func:`solve_ed` makes of ``params``
    (``AIMSolution.diagnostics['bath_fit']``: ``eps_k``, ``V_k`` per spin, ``chi2``, ...),
    or None where the bath is not fitted (a discrete bath of ``n_bath`` sites, or
    ``n_bath=None``).  The same code and arguments as the solve: the fit-residual features
    (:mod:`triqs_mlsolver.ml.fit_residual`) remake a database's fits with it."""
    return _discrete_params(params, n_bath, n_iw, ph_symmetric_fit, fit_starts, fit_weight)[1]


#: Particle-hole symmetry is used where the discrete AIM has it to this relative
#: tolerance (``mu_s = U/2``, bath levels in mirror pairs); the pairs are then made exactly
#: symmetric (a change of at most ``PH_TOL`` x the energy scale in the Hamiltonian).
PH_TOL = 1e-10


def _ph_symmetric_bath(p: AIMParams):
    """``(eps_k, V_k)`` per spin made exactly particle-hole symmetric, or ``None``.

    ``None`` unless ``mu_s = U/2`` and every bath level has a mirror partner ``(-eps, |V|)``
    to ``PH_TOL`` times the energy scale, for both spins.
    """
    k = p.n_bath
    if k == 0:
        return None
    scale = max(1.0, p.U, float(np.abs(p.mu).max()), float(np.abs(p.eps_k).max()),
                float(np.abs(p.V_k).max()))
    tol = PH_TOL * scale
    out = []
    for s in range(2):
        if abs(p.mu[s] - p.U / 2) > tol:
            return None
        eps, V = np.asarray(p.eps_k[s], float), np.abs(np.asarray(p.V_k[s], float))
        o, om = np.lexsort((V, eps)), np.lexsort((V, -eps))
        if max(np.abs(eps[o] + eps[om]).max(), np.abs(V[o] - V[om]).max()) > tol:
            return None
        e_new, v_new = np.empty(k), np.empty(k)
        e_new[o] = 0.5 * (eps[o] - eps[om])
        v_new[o] = 0.5 * (V[o] + V[om])
        se = np.sort(e_new)
        if not np.array_equal(se, -se[::-1]):  # the pairing was not an involution
            return None
        out.append((e_new, v_new))
    return out


def _species(p: AIMParams, ph_bath=None):
    """The two species of ``p`` (one object when spin symmetric); ``ph_bath`` from
    :func:`_ph_symmetric_bath` replaces the bath and sets ``eps_d = -U/2``."""
    if ph_bath is not None:
        sps = [core.Species(-p.U / 2, e, v) for e, v in ph_bath]
        return [sps[0], sps[0]] if p.spin_symmetric else sps
    k = p.n_bath
    if p.spin_symmetric:  # one species serves both spins
        sp_ = core.Species(-p.mu[0], p.eps_k[0] if k else np.zeros(0),
                           p.V_k[0] if k else np.zeros(0))
        return [sp_, sp_]
    out = []
    for s in range(2):
        eps_k = p.eps_k[s] if k else np.zeros(0)
        V_k = p.V_k[s] if k else np.zeros(0)
        out.append(core.Species(-p.mu[s], eps_k, V_k))
    return out


def ed_poles(params: AIMParams, *, method="auto", cutoff=1e-10, n_lanczos=150,
             n_states_max=N_STATES_MAX, dim_full=DIM_FULL, dim_fallback=DIM_FALLBACK, project=True,
             ftlm_random=FTLM_RANDOM, ftlm_steps=FTLM_STEPS, seed=0):
    """Lehmann poles of the impurity Green's function of a discrete-bath AIM.

    Parameters
    ----------
    params : AIMParams
        With a discrete bath (``eps_k``, ``V_k``) of at most ``MAX_BATH`` sites, or none.
    method : {'auto', 'full', 'lanczos'}
    cutoff : float
        Path B keeps states with ``exp(-beta (E - E0)) > cutoff``.
    n_lanczos : int
        Depth of the Lanczos chains (Path B).
    n_states_max : int
        Largest number of ARPACK eigenpairs per sector (Path B).
    dim_full, dim_fallback : int
        Path B: sectors up to ``dim_full`` are diagonalised completely; a sector that
        needs too many states is diagonalised completely up to ``dim_fallback``.
    project : bool
        Path B: project on the eigenstates of completely diagonalised target sectors
        (exact); ``False`` forces continued fractions everywhere.
        (``dim_full``, ``dim_fallback``, ``project`` are tuning knobs, not solver
        options; the tests use them to force ARPACK and continued fractions on small
        baths.)

    Returns
    -------
    poles : list of two (E_p, W_p) array pairs (up, down)
    stats : dict
        ``method``, ``E0``, ``double_occupancy``, ``energy``, ``density`` and
        method-specific diagnostics.
    """
    if params.Delta_iw is not None:
        raise ValueError("ed_poles needs a discrete bath; use solve_ed(..., n_bath=k) to fit one")
    k = params.n_bath
    if k > MAX_BATH:
        raise ValueError(f"n_bath={k} > {MAX_BATH} is not supported by ED")
    if method == "auto":
        method = "full" if 4 ** (k + 1) <= AUTO_FULL_MAX_FOCK else "lanczos"
    sym = params.spin_symmetric
    ph_bath = _ph_symmetric_bath(params) if method == "lanczos" else None
    ph = ph_bath is not None
    up, dn = _species(params, ph_bath)
    U, beta = params.U, params.beta
    if method == "full":
        max_sector = math.comb(k + 1, (k + 1) // 2) ** 2
        if max_sector > FULL_MAX_SECTOR:
            raise ValueError(
                f"method='full' with n_bath={k} would diagonalise sectors of {max_sector} "
                f"states densely; use method='lanczos' (or 'auto') for n_bath >= 7"
            )
        poles, st = core.full_lehmann_poles(up, dn, U, beta, sym)
        st["method"] = "full"
        return poles, st
    model = core._Model(up, dn, U, sym, ph)
    scale = max(1.0, U, float(np.abs(params.mu).max()),
                float(np.abs(params.eps_k).max()) if k else 0.0,
                float(np.abs(params.V_k).max()) if k else 0.0)
    t0 = time.perf_counter()
    try:
        kept, info = core.low_spectrum(model, beta, cutoff, n_states_max=n_states_max,
                                       dim_full=dim_full, dim_fallback=dim_fallback,
                                       ftlm=ftlm_random > 0, tol=1e-9 * scale)
    except core.TooManyStatesError as err:
        raise TooManyStatesError(str(err)) from None
    hot = info.pop("hot")
    t1 = time.perf_counter()
    fs = None
    if hot:
        tau_chk = np.linspace(0.0, beta, 33)
        fs = _ftlm.ftlm_sample(model, hot, info["E0"], beta, n_random=ftlm_random,
                               n_steps=ftlm_steps, seed=seed, tau_check=tau_chk)
        Z_ex = info["Z"]
        info["Z"] = Z_ex + float(fs["Z"].mean())
        if ph:  # the sample's mirror images (tau_chk is symmetric about beta/2)
            fs["poles"] = [(np.concatenate([E, -E]), np.concatenate([W, W]) / 2)
                           for E, W in fs["poles"]]
            fs["N_tau"] = 0.5 * (fs["N_tau"] + fs["N_tau"][:, :, ::-1])
    t_ftlm = time.perf_counter()
    poles, st = core.thermal_poles(model, kept, info, beta, n_lanczos=n_lanczos,
                                   b_tol=1e-12 * scale, dim_full=dim_full, project=project,
                                   cf_tol=CF_TOL)
    if ph:
        poles = [core.ph_mirror(E, W, beta) for E, W in poles]
    if fs is not None:
        poles, ftlm_diag = _add_ftlm(poles, st, fs, Z_ex, info["Z"], beta, tau_chk, sym,
                                     ftlm_random)
        st["ftlm"] = ftlm_diag
    if ph:  # each state and its image: n_s -> 1 - n_s, n_up n_dn -> 1 - n_up - n_dn + n_up n_dn
        st["double_occupancy"] += 0.5 * (1.0 - float(np.sum(st["density"])))
        st["density"] = np.full(2, 0.5)
    n_p = max(E.size for E, _ in poles)
    if n_p > POLE_BIN_MIN:  # very many poles (high temperature): an energy grid
        h = POLE_BIN / beta
        poles = [_ftlm.bin_poles(E, W, h) for E, W in poles]
        st["poles_binned"] = dict(n_poles=int(n_p), spacing=h)
    t2 = time.perf_counter()
    st.update(
        method="lanczos",
        symmetry=("spin+ph" if sym else "ph") if ph else ("spin" if sym else "none"),
        E0=info["E0"],
        Z=info["Z"],
        omitted_weight_bound=info["omitted_weight_bound"],
        states_kept={str(key): v["n_kept"] for key, v in info["sectors"].items()
                     if v["n_kept"]},
        n_states_kept=int(sum(info["mult"][key] * v["n_kept"]
                              for key, v in info["sectors"].items())),
        sectors={str(key): v for key, v in info["sectors"].items()},
        time_spectrum=t1 - t0,
        time_ftlm=t_ftlm - t1,
        time_green=t2 - t_ftlm,
    )
    return poles, st


def _add_ftlm(poles, st, fs, Z_ex, Z_tot, beta, tau_chk, sym, R):
    """Exact poles (normalised by ``Z_tot``) + the FTLM sample; jackknife error of G(tau)."""
    from .solution import tau_of_poles

    out = []
    h = POLE_BIN / beta
    G_jk = []
    for s in (0, 1):
        E_ex, W_ex = poles[s]
        E_f, W_f = fs["poles"][s]
        Eb, Wb = _ftlm.bin_poles(E_f, W_f / (R * Z_tot), h)
        out.append(core.merge_poles(np.concatenate([E_ex, Eb]), np.concatenate([W_ex, Wb]),
                                    beta))
        # jackknife over the replicas: G = (N_ex + mean N_r) / (Z_ex + mean Z_r)
        N_ex = -Z_tot * tau_of_poles(E_ex, W_ex, beta, tau_chk)
        N_r, Z_r = fs["N_tau"][:, s], fs["Z"]
        G_jk.append(-(N_ex[None] + (N_r.sum(0)[None] - N_r) / (R - 1))
                    / (Z_ex + (Z_r.sum() - Z_r) / (R - 1))[:, None])
    G_jk = np.stack(G_jk, axis=1)  # (R, 2, n_check)
    err = np.sqrt((R - 1) / R * ((G_jk - G_jk.mean(0)) ** 2).sum(0))
    stat = fs["static"].mean(0) / Z_tot
    st["double_occupancy"] += stat[0]
    dens = stat[1:3].copy()
    if sym:
        dens[:] = dens.mean()
    st["density"] = st["density"] + dens
    st["energy"] += stat[3]
    diag = dict(n_random=int(R), weight=float(1.0 - Z_ex / Z_tot),
                error_G_tau=float(err.max()), tau=tau_chk.tolist(), error_tau=err.tolist(),
                n_poles_raw=int(fs["n_poles_raw"]),
                Z_relative_error=float(fs["Z"].std(ddof=1) / np.sqrt(R) / Z_tot))
    return out, diag


def solve_ed(params: AIMParams, *, n_iw, n_tau, n_l, n_bath="auto", method="auto",
             cutoff=CUTOFF, n_lanczos=150, n_states_max=N_STATES_MAX, ph_symmetric_fit=False,
             fit_starts=4, fit_weight="uniform", embed=False, ftlm_random=FTLM_RANDOM,
             ftlm_steps=FTLM_STEPS, seed=0, auto_tol=AUTO_TOL):
    """ED solution of the AIM (see the module docstring for the method).

    Parameters
    ----------
    params : AIMParams
        Discrete bath (``eps_k``, ``V_k``) or continuous ``Delta_iw``.
    n_iw, n_tau, n_l : int
        Mesh sizes of the result.
    n_bath : 'auto', int or None
        ``'auto'`` (default; the reference): a discrete bath of at most ``MAX_BATH``
        sites is diagonalised as given; otherwise ``Delta`` is fitted with
        ``AUTO_K_MIN, AUTO_K_MIN + 1, ...`` sites until two successive bath sizes give
        ``G(tau)`` within ``auto_tol`` (RMS over ``tau`` and spins), at most
        ``AUTO_K_MAX``; the estimate is ``diagnostics['reference']``.  ``None``:
        diagonalise the discrete bath as given.  An integer ``1..9``: fit ``Delta``
        (given, or that of the discrete bath if its size differs) with that many sites
        per spin first.
    method : {'auto', 'full', 'lanczos'}
        ``'auto'``: full diagonalisation if the Fock space has <= 4^5 states
        (``n_bath <= 4``), Lanczos otherwise.
    cutoff : float
        Boltzmann weight below which states are dropped (Path B).
    n_lanczos : int
        Largest Lanczos depth of the continued fractions (Path B; each chain stops
        earlier once converged at the lowest Matsubara frequency).
    n_states_max : int
        Most eigenpairs computed with ARPACK per sector (Path B); beyond, the sector is
        diagonalised completely (dimension <= ``DIM_FALLBACK``) or sampled by FTLM.
    ph_symmetric_fit : bool
        Particle-hole symmetric bath parametrisation in the fit.
    fit_starts : int
        Number of starts of the bath fit.
    fit_weight : {'uniform', '1/n', '1/w'}
        Weights ``W_n`` of the bath fit (:func:`triqs_mlsolver.aim.fit_bath`);
        ``'1/w'`` emphasises the low frequencies (the ``ed<k>w`` solvers).
    embed : bool
        With a fitted bath: return ``G = 1/(G0^-1 - Sigma_fit)``, the fitted AIM's
        self-energy in the exact ``G0`` of ``params`` (the ``ed<k>e`` solvers; see the
        module docstring).  No effect when no fit is made.
    ftlm_random, ftlm_steps, seed : int
        Finite-temperature Lanczos for sectors with too many thermal states: random
        vectors per sector (0: off, a :class:`TooManyStatesError` instead), Lanczos
        steps per run, and the seed of the random vectors.
    auto_tol : float
        Convergence tolerance of ``n_bath='auto'``.

    Returns
    -------
    AIMSolution
        ``G_iw``, ``G_tau``, ``G_l`` exact from the poles, ``Sigma_iw``,
        ``density``, ``double_occupancy = <n_up n_dn>``, ``energy = <H>`` and
        ``diagnostics`` (method, ``E0``, states kept per sector, Lanczos depths,
        omitted Boltzmann weight bound, number of poles, bath fit, FTLM error bar,
        ``reference`` with the error estimate for ``n_bath='auto'``).
    """
    _validate(n_bath, method, cutoff, n_lanczos, n_states_max, fit_starts, fit_weight,
              ftlm_random, ftlm_steps, seed, auto_tol)
    if not isinstance(embed, (bool, np.bool_)):
        raise ValueError(f"embed={embed!r} must be True or False")
    opts = dict(method=method, cutoff=cutoff, n_lanczos=n_lanczos, n_states_max=n_states_max,
                ph_symmetric_fit=ph_symmetric_fit, fit_starts=fit_starts,
                fit_weight=fit_weight, ftlm_random=ftlm_random, ftlm_steps=ftlm_steps,
                seed=seed)
    if isinstance(n_bath, str):  # 'auto'
        if params.Delta_iw is None and params.n_bath <= MAX_BATH:
            sol = _solve_fixed(params, n_iw, n_tau, n_l, None, **opts)
            err = max(_ftlm_error(sol), RESOLUTION)
            sol.diagnostics["reference"] = dict(
                kind="discrete bath as given", n_bath=params.n_bath, error_estimate=err,
                converged=True, tol=auto_tol, history=[])
        else:
            sol = _solve_auto(params, n_iw, n_tau, n_l, auto_tol, opts)
    else:
        sol = _solve_fixed(params, n_iw, n_tau, n_l, n_bath, defer_transforms=embed, **opts)
    if embed and "bath_fit" in sol.diagnostics:
        sol = embed_solution(params, sol, n_tau=n_tau, n_l=n_l)
    return sol


def _solve_fixed(params, n_iw, n_tau, n_l, n_bath, *, method, cutoff, n_lanczos, n_states_max,
                 ph_symmetric_fit, fit_starts, fit_weight, ftlm_random, ftlm_steps, seed,
                 defer_transforms=False):
    """ED of ``params`` with a bath of ``n_bath`` sites (fitted if needed).

    ``defer_transforms`` (the re-embedding, which needs the fitted AIM's ``G(i w_n)`` and
    density only): where a bath was fitted, the result's ``G_tau`` and ``G_l`` are ``None``
    and ``diagnostics['_complete']`` is a function returning the full solution (the pole
    sums on the ``tau`` grid and in Legendre, ~40-60 % of an ED-5e solve at beta D <= 20)."""
    t_fit = time.perf_counter()
    disc, fit = _discrete_params(params, n_bath, n_iw, ph_symmetric_fit, fit_starts,
                                 fit_weight)
    t0 = time.perf_counter()
    poles, st = ed_poles(disc, method=method, cutoff=cutoff, n_lanczos=n_lanczos,
                         n_states_max=n_states_max, ftlm_random=ftlm_random,
                         ftlm_steps=ftlm_steps, seed=seed)
    t1 = time.perf_counter()
    diag = {key: (v.tolist() if isinstance(v, np.ndarray) else v) for key, v in st.items()
            if key not in ("double_occupancy", "energy")}
    diag["density_direct"] = diag.pop("density")
    diag["n_bath"] = disc.n_bath
    diag["n_poles"] = [int(E.size) for E, _ in poles]
    diag["time_fit"] = t0 - t_fit
    diag["time_poles"] = t1 - t0
    if fit is not None:
        diag["bath_fit"] = fit
    extra = dict(double_occupancy=float(st["double_occupancy"]), energy=float(st["energy"]))
    if defer_transforms and fit is not None:
        sol = solution_from_poles(disc, poles, n_iw=n_iw, n_tau=None, n_l=None,
                                  diagnostics=diag, **extra)

        def complete():
            full = solution_from_poles(disc, poles, n_iw=n_iw, n_tau=n_tau, n_l=n_l,
                                       diagnostics=dict(diag), **extra)
            full.diagnostics.pop("_complete", None)
            return full

        diag["_complete"] = complete
    else:
        sol = solution_from_poles(disc, poles, n_iw=n_iw, n_tau=n_tau, n_l=n_l,
                                  diagnostics=diag, **extra)
    sol.diagnostics["time_solution"] = time.perf_counter() - t1
    return sol


def _ftlm_error(sol) -> float:
    """The FTLM error bar of ``sol``'s G(tau) (max over tau), 0 where FTLM was not used."""
    return float(sol.diagnostics.get("ftlm", {}).get("error_G_tau", 0.0))


def _rms_tau(G_a, G_b):
    """RMS over the uniform tau grid and the spins of ``G_a - G_b``."""
    return float(np.sqrt(np.mean((np.asarray(G_a) - np.asarray(G_b)) ** 2)))


def _solve_auto(params, n_iw, n_tau, n_l, tol, opts):
    """The reference: bath sizes ``AUTO_K_MIN ... AUTO_K_MAX`` until ``G(tau)`` converges.

    The error estimate of the result (bath size ``k``) is ``RMS |G_k - G_{k-1}|`` over the
    tau grid and the spins, or the FTLM error bar of ``G_k`` or ``RESOLUTION`` if larger.  Both
    solutions are on the caller's ``n_tau`` grid, so the RMS approximates
    ``(1/beta int |dG|^2 dtau)^(1/2)``.
    """
    t0 = time.perf_counter()
    history, prev, sol = [], None, None
    converged = False
    err = np.inf
    for k in range(AUTO_K_MIN, AUTO_K_MAX + 1):
        sol = _solve_fixed(params, n_iw, n_tau, n_l, k, **opts)
        entry = dict(n_bath=k, time=sol.diagnostics["time_poles"]
                     + sol.diagnostics["time_fit"],
                     ftlm_error=_ftlm_error(sol))
        if prev is not None:
            entry["rms_diff"] = _rms_tau(sol.G_tau, prev.G_tau)
            err = max(entry["rms_diff"], entry["ftlm_error"], RESOLUTION)
            if err <= tol:
                converged = True
        history.append(entry)
        if converged:
            break
        prev = sol
    sol.diagnostics["reference"] = dict(kind="auto", n_bath=sol.diagnostics["n_bath"],
                                        error_estimate=float(err), converged=converged,
                                        tol=float(tol), history=history,
                                        time=time.perf_counter() - t0)
    return sol


def embedded_source(name: str):
    """The registered solver whose fitted AIM the solver ``name`` re-embeds (``'ed3w'`` for
    ``'ed3e'``), or ``None``: ``embed_solution(params, <its solution>)`` is ``name``'s result."""
    m = re.fullmatch(r"ed([1-5])e", name)
    return f"ed{m[1]}w" if m else None


def embed_solution(params, sol, *, n_tau, n_l):
    """The fitted AIM's self-energy in the exact ``G0`` of ``params``: ``G = 1/(G0^-1 - Sigma)``.

    Known moments of ``G``: ``c1 = 1`` and ``c2 = Sigma_inf - mu`` with the Hartree term
    ``Sigma_inf = U <n_-s>`` of the fitted AIM (``Delta`` starts at ``1/(i w)``);
    ``<n_up n_dn>`` by Galitskii-Migdal with ``Sigma``'s ``1/(i w)`` moment
    ``U^2 <n_-s>(1 - <n_-s>)``.  ``Sigma_iw`` of the result is that ``Sigma``; the density
    is that of the new ``G``; the energy of the fitted AIM does not carry over (``None``).

    Where ``G(i w)`` is beyond the reach of the Matsubara mesh (levels at or above
    ``w_max``: :func:`~triqs_mlsolver.validity.tail_unresolved`; ~4.5 % of the single-band
    training samples), no moment tail holds and its transform gave ``G(tau) > 0``, ``n < 0``
    (ED-4e on 39 of 10,000 samples): there ``G`` is transformed as the fitted AIM's exact
    ``G`` (``sol``'s ``G_tau``, ``G_l``) plus the small difference ``G - G_fit``, and
    ``<n_up n_dn>`` is the fitted AIM's plus the change of the Galitskii-Migdal sum
    (``diagnostics['beyond_mesh']``).  ``<n_up n_dn>`` outside its bounds ``[max(0, n_up +
    n_dn - 1), min(n_up, n_dn)]`` (the sum's error, up to ~5e-4) is put onto them
    (``diagnostics['double_occupancy_clipped']``).  A re-embedded solution that still
    violates an exact property (the pointwise conditions of
    :func:`~triqs_mlsolver.validity.check_solution`; none left on 2,000 training samples)
    is refused: the fitted AIM's own exact solution ``sol`` is returned instead, with
    ``diagnostics['embedded'] = False`` and the violations under ``'embedding_refused'``.
    """
    from ..validity import check_solution, double_occupancy_bounds, tail_unresolved

    U, beta = params.U, params.beta
    # a solution from _solve_fixed(defer_transforms=True) has no G_tau, G_l: made on demand
    complete = sol.diagnostics.pop("_complete", None)

    @functools.cache
    def fitted():  # the fitted AIM's full solution (built once: beyond the mesh and refused)
        return sol if complete is None else complete()

    n_fit = np.asarray(sol.density, float)[::-1]  # <n_-s> of the fitted AIM
    sigma_inf, c1 = U * n_fit, U**2 * n_fit * (1 - n_fit)
    G = 1.0 / (1.0 / params.g0_iw(sol.n_iw) - sol.Sigma_iw)
    moments = [np.array([0.0, 1.0, sigma_inf[s] - params.mu[s]]) for s in range(2)]
    diag = dict(sol.diagnostics, embedded=True, density_fitted_aim=sol.density.tolist())
    beyond = bool(tail_unresolved(G, beta).any()) and (
        complete is not None or (sol.n_tau == n_tau and sol.n_l == n_l))
    d = None  # <n_up n_dn>: Galitskii-Migdal unless found otherwise below
    if beyond:
        # levels beyond the Matsubara mesh: no moment tail of G holds there, so G is
        # transformed as the fitted AIM's exact G (its poles: sol's G_tau, G_l) plus the
        # small difference dG = G - G_fit = G G_fit (Delta - Delta_fit) ~ (m_0 - m_0,fit)/(i w)^3
        # (both share Sigma: its moments cancel), and <n_up n_dn> as the fitted AIM's exact
        # one plus the change of the Galitskii-Migdal sum, T sum (Sigma - Sigma_inf) dG +
        # Sigma_inf dn (beyond the mesh both G alike)
        dG = G - sol.G_iw
        full = fitted()
        G_tau, G_l = add_remainder_transforms(full.G_tau, full.G_l, dG, params.iw(sol.n_iw),
                                              beta, n_known=3, max_order=6)
        out = AIMSolution(beta=beta, G_iw=G, G_tau=G_tau, G_l=G_l, Sigma_iw=_dyson(params, G),
                          density=-G_tau[:, -1], diagnostics=diag)
        diag["beyond_mesh"] = True
        if sol.double_occupancy is not None and U > 0:
            ud_change = sigma_inf * (out.density - sol.density) \
                + ((sol.Sigma_iw - sigma_inf[:, None]) * dG).sum(axis=1).real / beta
            d = float(sol.double_occupancy) + float(np.mean(ud_change)) / U
    else:
        out = solution_from_iw(params, G, n_tau=n_tau, n_l=n_l, moments=moments,
                               diagnostics=diag)
    if d is None:
        ud = galitskii_migdal(sol.Sigma_iw, G, beta, sigma_inf, c1, out.density)
        d = double_occupancy_from_ud(ud, U, out.density)
    # Galitskii-Migdal's sum can leave d outside its bounds (by up to ~5e-4 measured, at
    # U/D ~ 10 or nearly empty or full impurities) while G is sound: onto the bounds, which
    # hold the exact value (diagnostics['double_occupancy_clipped']: how far it moved)
    lo, hi = double_occupancy_bounds(out.density)
    # (densities a hair outside [0, 1] give lo > hi: d between them, the density check decides)
    out.double_occupancy = min(max(d, lo), hi) if lo <= hi else min(max(d, hi), lo)
    diag["double_occupancy_clipped"] = abs(out.double_occupancy - d)
    # the pointwise conditions only: G_tau, G_l and the density are the transforms of G by
    # construction (with the consistency part too, the same decisions on 2,000 ED-3e and
    # 1,000 ED-4e re-embeddings of training samples; it cost 0.7 ms per call)
    bad = check_solution(out, consistency=False)
    if bad:
        full = fitted()
        return replace(full, diagnostics=dict(full.diagnostics, embedded=False,
                                              embedding_refused=bad))
    return out


_OPTIONS = {"n_bath": "auto", "method": "auto", "cutoff": CUTOFF, "n_lanczos": 150,
            "n_states_max": N_STATES_MAX, "ph_symmetric_fit": False, "fit_starts": 4,
            "fit_weight": "uniform", "embed": False, "ftlm_random": FTLM_RANDOM,
            "ftlm_steps": FTLM_STEPS, "seed": 0, "auto_tol": AUTO_TOL}
_FIXED_OPTIONS = {key: v for key, v in _OPTIONS.items() if key not in ("n_bath", "auto_tol")}


def _fixed_bath(k, default_method, fit_weight="uniform", embed=False):
    def solve(params, *, n_iw, n_tau, n_l, method=default_method, fit_weight=fit_weight,
              embed=embed, **options):
        return solve_ed(params, n_iw=n_iw, n_tau=n_tau, n_l=n_l, n_bath=k, method=method,
                        fit_weight=fit_weight, embed=embed, **options)

    suffix = "e" if embed else ("" if fit_weight == "uniform" else "w")
    solve.__name__ = f"solve_ed{k}{suffix}"
    solve.__qualname__ = solve.__name__
    solve.__doc__ = (f"ED with the hybridisation represented by {k} bath site(s) per spin "
                     f"(fitted with weights {fit_weight!r} unless the discrete bath already "
                     f"has {k}){'; the self-energy re-embedded in the exact G0' if embed else ''}"
                     f"; method {default_method!r} by default.  See :func:`solve_ed`.")
    return solve


register_solver(
    "ed",
    solve_ed,
    options=_OPTIONS,
    description="exact diagonalisation, the reference: n_bath='auto' grows the bath until "
                "G(tau) converges and reports its error; or any bath size <= 9 (full for "
                "n_bath <= 4, Lanczos / finite-temperature Lanczos above)",
)
solve_ed1, solve_ed2, solve_ed3, solve_ed4, solve_ed5 = (_fixed_bath(k, "full")
                                                         for k in (1, 2, 3, 4, 5))
solve_ed1w, solve_ed2w, solve_ed3w, solve_ed4w, solve_ed5w = (_fixed_bath(k, "full", "1/w")
                                                              for k in (1, 2, 3, 4, 5))
solve_ed1e, solve_ed2e, solve_ed3e, solve_ed4e, solve_ed5e = (
    _fixed_bath(k, "full", "1/w", embed=True) for k in (1, 2, 3, 4, 5))
solve_ed8 = _fixed_bath(8, "lanczos")
for _k, _fn, _wfn, _efn in ((1, solve_ed1, solve_ed1w, solve_ed1e),
                            (2, solve_ed2, solve_ed2w, solve_ed2e),
                            (3, solve_ed3, solve_ed3w, solve_ed3e),
                            (4, solve_ed4, solve_ed4w, solve_ed4e),
                            (5, solve_ed5, solve_ed5w, solve_ed5e)):
    register_solver(f"ed{_k}", _fn, options={**_FIXED_OPTIONS, "method": "full"},
                    description=f"ED with {_k} bath site(s) per spin, full diagonalisation "
                                f"(cheap solver; fits the hybridisation)")
    register_solver(f"ed{_k}w", _wfn,
                    options={**_FIXED_OPTIONS, "method": "full", "fit_weight": "1/w"},
                    description=f"ED with {_k} bath site(s) per spin fitted with 1/w_n weights "
                                f"(low frequencies first; cheap solver)")
    register_solver(f"ed{_k}e", _efn,
                    options={**_FIXED_OPTIONS, "method": "full", "fit_weight": "1/w",
                             "embed": True},
                    description=f"ED with {_k} bath site(s) per spin fitted with 1/w_n weights, "
                                f"its self-energy re-embedded in the exact G0 (cheap solver)")
register_solver("ed8", solve_ed8, options={**_FIXED_OPTIONS, "method": "lanczos"},
                description="ED with 8 bath sites per spin, Lanczos + continued fractions "
                            "(reference solver; fits the hybridisation)")
