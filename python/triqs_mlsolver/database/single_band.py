# SPDX-License-Identifier: Apache-2.0
"""Sampler mode ``"single_band"``: the AIMs single-band DMFT users meet (issue 18's recipe).

Energies are in units of ``D``, defined for every sample by the second moment of its
hybridisation, ``Delta(z) -> (D^2/4)/z`` (the Bethe lattice's half bandwidth; for a lattice
``D^2/4`` is the variance of its density of states).  Stored ``params/D`` is 1.

Sample ``i`` (generator ``default_rng([seed, i])``, independent of MPI ranks and order):

* ``beta D`` log-uniform in ``[sampler] beta_D`` (default 1 ... 400); ``U/D`` uniform in
  ``[sampler] U`` (default 0 ... 10);
* with probability ``p_discrete`` a **discrete bath** of the seed lecture's table:
  ``k`` uniform in ``n_bath_min ... n_bath`` sites, levels spread affinely over
  ``[-D, D]``, hoppings from random weights with ``sum V^2 = D^2/4``, and the impurity
  level anywhere from an empty to a full impurity (``mu - U/2`` uniform in
  ``+-(U/2 + D)``); polarised samples get a Zeeman field ``h`` uniform in
  ``(0, 0.5 D)``: ``mu_s = mu +- h``, same bath;
* otherwise a **lattice hybridisation**, the ``Delta`` a DMFT loop on a lattice visits:
  ``Delta_s(z) = z + mu_s - Sigma_s(z) - 1/G_s(z)`` with the lattice's local
  ``G_s(z) = int rho(e) de / (z + mu_s - Sigma_s(z) - e)`` (the DMFT self-consistency,
  so ``Delta`` is causal).  ``rho``: the Bethe semicircle, the square lattice with
  ``t'/t`` in ``{-0.3, -0.15, 0, 0.15, 0.3}``, the simple cubic lattice, or a random
  smooth density (2 to 4 Gaussians), each scaled to variance ``D^2/4``
  (``[sampler] lattices`` chooses among them).  The self-energy interpolates between a
  Fermi liquid and the Hubbard-I (Mott) form,

  .. math::

      \\Sigma_s(z) = U \\nu_{-s} + U^2 \\nu_{-s}(1 - \\nu_{-s})
                     \\frac{z - c}{(z - c)^2 - \\Omega^2},
      \\qquad \\Omega^2 = U^2 \\nu_{-s}(1 - \\nu_{-s}) \\frac{Z}{1 - Z},

  with quasiparticle weight ``Z``: ``Z = 1`` (``Sigma`` = Hartree only: the first DMFT
  iteration from a metallic start) for 15 % of the samples, ``Z = 0`` (the atomic,
  Hubbard-I form: an insulating start) for 15 %, else uniform; ``c`` a random
  asymmetry (``+-0.3 D``; 0 at half filling).  ``nu_s`` are the occupations per spin:
  the total filling ``n`` is uniform in ``[sampler] filling`` (default 0.2 ... 1.8) and
  ``mu`` is found so that the lattice has that filling (Matsubara sum with its tail;
  ``mu = U/2`` exactly when ``n = 1`` and the density is symmetric, a quarter of the
  samples);
* polarised lattice samples (probability ``p_polarised``): ``nu_s = n/2 +- m/2`` with
  ``m`` uniform up to the largest the filling allows (at most 0.9), and either a
  Zeeman-like state (``mu_s = mu +- h``, ``h`` uniform in ``(0, 0.3 D)``) or, on the
  Bethe lattice, the antiferromagnetic bath ``Delta_s = (D^2/4) G_{-s}`` (each site's
  bath is the other sublattice);
* the hybridisation of each spin is fitted by the fewest sites ``k`` (from
  ``n_bath_min`` to ``n_bath``) whose fit has ``max |Delta_fit - Delta| <= fit_tol x
  max |Delta|`` (the most sites otherwise): at high temperature a few sites already
  reproduce ``Delta`` on the Matsubara axis, and the reference's cost follows ``k``.  The
  fitted discrete AIM is the sample (every solver sees the same AIM; the reference ED
  solves it exactly).  Both spins use the same ``k`` (the larger of the two).  A fit whose
  levels leave ``+-(EPS_MAX + U)`` (``EPS_MAX = 50``) does not count: such a site is an
  artefact of the fit (a tiny coupling at a huge level), not a bath.
* below ``beta D = beta_D_hot`` (0: no limit) both families use at most ``n_bath_hot``
  sites.  This is for the reference's cost: 7-8 sites at ``beta D ~ 1-12`` need the exact
  + finite-temperature Lanczos reference (minutes per sample, 3.5 % of the samples but
  most of the generation time), while there the Matsubara frequencies are so sparse that
  ``n_bath_hot = 5`` sites already fit almost every lattice ``Delta`` to ``fit_tol``.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy.optimize import brentq

from ..aim import AIMParams, fit_bath
from ..aim.bath import EPS_FAR, decouple_far_sites
from ..gf.transforms import matsubara_freqs, semicircle_g

__all__ = ["sample", "LATTICES", "lattice_dos"]

LATTICES = ("bethe", "square", "cubic", "random")
#: t'/t of the square-lattice densities (one chosen per sample).
SQUARE_TPRIME = (-0.3, -0.15, 0.0, 0.15, 0.3)
#: Matsubara points used to build and fit Delta (the solvers get the fitted discrete bath).
N_IW = 256
#: Bath levels of a fitted lattice sample lie within ``+-(EPS_MAX + U)`` (units of ``D``): a
#: fit can send a site with a tiny coupling to levels of 1e2 ... 1e9 D (seen on 17 of 10,000
#: strongly correlated low-temperature samples), a constant ``V^2/eps`` in ``Delta`` that only
#: spoils the reference's tolerances (scaled by the largest energy).  The same bound as the
#: ED solvers' fits (:data:`triqs_mlsolver.aim.bath.EPS_FAR`).
EPS_MAX = EPS_FAR
#: Share of lattice samples with Z = 1 (first iteration from a metal) and Z = 0 (from an
#: insulator).
P_METAL_START = 0.15
P_INSULATOR_START = 0.15


@functools.lru_cache(maxsize=16)
def lattice_dos(name: str, tprime: float = 0.0, n_bins: int = 400):
    """``(energies, weights)`` of a lattice density of states on a grid, mean 0, variance 1/4
    (``D = 1``); weights sum to 1."""
    if name == "square":
        k = (np.arange(512) + 0.5) * (2 * np.pi / 512)
        cx, cy = np.cos(k)[:, None], np.cos(k)[None, :]
        e = (-2 * (cx + cy) - 4 * tprime * cx * cy).ravel()
    elif name == "cubic":
        k = (np.arange(64) + 0.5) * (2 * np.pi / 64)
        c = np.cos(k)
        e = (-2 * (c[:, None, None] + c[None, :, None] + c[None, None, :])).ravel()
    else:
        raise ValueError(f"no tabulated density for lattice {name!r}")
    e = (e - e.mean()) / (2 * e.std())
    hist, edges = np.histogram(e, bins=n_bins)
    centres = 0.5 * (edges[1:] + edges[:-1])
    keep = hist > 0
    w = hist[keep] / hist.sum()
    x = centres[keep]
    x = (x - w @ x) / (2 * np.sqrt(w @ (x - w @ x) ** 2))  # exact moments on the grid
    return x, w


def _random_dos(rng, n_grid=300):
    """2 to 4 Gaussians of random centre, width and weight, scaled to mean 0, variance 1/4."""
    m = int(rng.integers(2, 5))
    c = rng.uniform(-1, 1, m)
    s = rng.uniform(0.1, 0.5, m)
    a = rng.uniform(0.2, 1.0, m)
    x = np.linspace(-3, 3, n_grid)
    rho = (a[:, None] * np.exp(-0.5 * ((x[None] - c[:, None]) / s[:, None]) ** 2)
           / s[:, None]).sum(0)
    w = rho / rho.sum()
    mean = w @ x
    sd = np.sqrt(w @ (x - mean) ** 2)
    return (x - mean) / (2 * sd), w


def _sigma(iw, U, nu_other, Z, c):
    """The model self-energy of the module docstring (``Z`` in [0, 1])."""
    A = U**2 * nu_other * (1 - nu_other)
    if A == 0 or Z >= 1.0:
        return np.full(iw.shape, U * nu_other, complex)
    x = iw - c
    if Z <= 0.0:
        return U * nu_other + A / x
    Om2 = A * Z / (1 - Z)
    return U * nu_other + A * x / (x**2 - Om2)


def _g_local(zeta, dos):
    """``G(zeta)`` of a density: ``None`` = semicircle, else ``(energies, weights)``."""
    if dos is None:
        return semicircle_g(zeta, 1.0)
    e, w = dos
    return (w[None, :] / (zeta[:, None] - e[None, :])).sum(axis=1)


def _density(G, iw, beta):
    """``<n>`` of one spin from ``G(i w_n)``, ``n >= 0``, with the ``1/(i w)^2`` tail
    (coefficient from the last point) summed analytically beyond the mesh."""
    w = iw.imag
    c2 = -float(np.real(G[-1]) * w[-1] ** 2)  # Re G ~ -c2 / w^2
    n_tail = w.size
    # sum_{n >= N} 1/w_n^2 = (beta/pi)^2 sum_{n >= N} 1/(2n+1)^2 ~ (beta/pi)^2 / (4N)
    tail = -c2 * (beta / np.pi) ** 2 / (4 * n_tail)
    return 0.5 + (2.0 / beta) * (float(np.sum(G.real)) + tail)


def _lattice_delta(rng, s, U, beta, iw):
    """``(Delta per spin (2, n_iw), mu per spin (2,), info)`` of one lattice sample."""
    lattices = s["lattices"]
    name = lattices[int(rng.integers(len(lattices)))]
    if name == "bethe":
        dos = None
    elif name == "square":
        dos = lattice_dos("square", float(SQUARE_TPRIME[int(rng.integers(len(SQUARE_TPRIME)))]))
    elif name == "cubic":
        dos = lattice_dos("cubic")
    else:
        dos = _random_dos(rng)
    u = rng.uniform()
    Z = 1.0 if u < P_METAL_START else 0.0 if u < P_METAL_START + P_INSULATOR_START else \
        float(rng.uniform())
    half = rng.uniform() < 0.25
    n = 1.0 if half else float(rng.uniform(*s["filling"]))
    polarised = rng.uniform() < s["p_polarised"]
    m = 0.0
    afm = False
    h = 0.0
    if polarised:
        m_max = min(0.9, n, 2 - n)
        m = float(rng.uniform(0.05, 1.0)) * m_max
        afm = name == "bethe" and rng.uniform() < 0.5
        h = 0.0 if afm else float(rng.uniform(0.0, 0.3))
    nu = np.array([n / 2 + m / 2, n / 2 - m / 2])
    c = 0.0 if half else float(rng.uniform(-0.3, 0.3))
    sig = [_sigma(iw, U, nu[1 - sp], Z, c) for sp in range(2)]
    sym_dos = dos is None or name == "cubic" or (name == "square" and dos is lattice_dos(
        "square", 0.0))

    def filling(mu):
        return sum(_density(_g_local(iw + mu + (h if sp == 0 else -h) - sig[sp], dos), iw, beta)
                   for sp in range(2))

    if half and sym_dos and not polarised:
        mu = U / 2
    else:
        lo, hi = -3.0 - U, 3.0 + U
        f_lo, f_hi = filling(lo) - n, filling(hi) - n
        if f_lo > 0 or f_hi < 0:  # the model cannot reach n: take the nearest end
            mu = lo if f_lo > 0 else hi
        else:
            mu = brentq(lambda x: filling(x) - n, lo, hi, xtol=1e-4)
    mus = np.array([mu + h, mu - h])
    G = np.stack([_g_local(iw + mus[sp] - sig[sp], dos) for sp in range(2)])
    if afm:  # each site's bath is the other sublattice: Delta_s = (D^2/4) G_{-s}
        delta = 0.25 * G[::-1]
    else:
        delta = iw[None, :] + mus[:, None] - np.stack(sig) - 1.0 / G
    n_latt = sum(_density(G[sp], iw, beta) for sp in range(2))
    info = dict(lattice=name, Z=Z, n_target=n, m_target=m, afm=afm, h=h, n_lattice=n_latt)
    return delta, mus, info


def _fit_smallest(delta_pos, beta, k_min, k_max, tol, rng, eps_max=np.inf):
    """The fewest sites whose fit reaches ``tol`` (relative max error) with every level
    within ``+-eps_max``; if none does, the largest fit with its levels in range (or,
    if no fit has them, the last one with its far sites cut off: ``V = 0``, level at
    ``+-eps_max``); per spin."""
    full = np.concatenate([np.conj(delta_pos[::-1]), delta_pos])
    scale = float(np.abs(delta_pos).max())
    fit = best = None
    for k in range(k_min, k_max + 1):
        fit = fit_bath(full, beta, k, n_starts=3, seed=int(rng.integers(2**31)), D=1.0)
        if np.abs(fit.eps_k).max() > eps_max:
            continue  # a site run off to a huge level: an artefact of the fit, not a bath
        if fit.max_error <= tol * scale:
            return fit
        best = fit
    return best if best is not None else decouple_far_sites(fit, eps_max)[0]


def sample(cfg: dict, i: int, rng) -> AIMParams:
    """The ``i``-th AIM of a ``mode = "single_band"`` database (module docstring)."""
    s = cfg["sampler"]
    lo, hi = s["beta_D"]
    beta = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    U = float(rng.uniform(*s["U"]))
    k_min, k_max = int(s["n_bath_min"]), int(s["n_bath"])
    if beta < s["beta_D_hot"]:
        k_max = min(k_max, int(s["n_bath_hot"]))
    if rng.uniform() < s["p_discrete"]:
        k = int(rng.integers(k_min, k_max + 1))
        x = rng.uniform(0, 1, k)
        x = (x - x.min()) / (x.max() - x.min()) if k > 1 and x.max() > x.min() else \
            np.linspace(0, 1, k)
        e = np.sort(-1.0 + 2.0 * x)
        w = rng.uniform(0.1, 1.0, k)
        V = np.sqrt(w / w.sum() / 4)
        mu = U / 2 + float(rng.uniform(-1, 1)) * (U / 2 + 1.0)
        if rng.uniform() < s["p_polarised"]:
            h = float(rng.uniform(0.0, 0.5))
            return AIMParams(U=U, mu=np.array([mu + h, mu - h]), beta=beta,
                             eps_k=np.stack([e, e]), V_k=np.stack([V, V]), D=1.0,
                             extra={"family": "discrete", "h": h})
        return AIMParams(U=U, mu=mu, beta=beta, eps_k=e, V_k=V, D=1.0,
                         extra={"family": "discrete"})
    iw = matsubara_freqs(beta, N_IW)[N_IW:]
    delta, mus, info = _lattice_delta(rng, s, U, beta, iw)
    same = np.array_equal(delta[0], delta[1]) and mus[0] == mus[1]
    eps_max = EPS_MAX + U
    fits = [_fit_smallest(delta[0], beta, k_min, k_max, s["fit_tol"], rng, eps_max)]
    if not same:
        fits.append(_fit_smallest(delta[1], beta, k_min, k_max, s["fit_tol"], rng, eps_max))
        k = max(f.eps_k.size for f in fits)
        fits = [f if f.eps_k.size == k else
                _fit_smallest(d, beta, k, k, s["fit_tol"], rng, eps_max)
                for f, d in zip(fits, delta)]
    extra = dict(family="lattice", fit_rel_error=[
        float(f.max_error / np.abs(d).max()) for f, d in zip(fits, delta)], **info)
    if same:
        return AIMParams(U=U, mu=float(mus[0]), beta=beta, eps_k=fits[0].eps_k,
                         V_k=fits[0].V_k, D=1.0, extra=extra)
    return AIMParams(U=U, mu=mus, beta=beta, eps_k=np.stack([f.eps_k for f in fits]),
                     V_k=np.stack([f.V_k for f in fits]), D=1.0, extra=extra)
