# SPDX-License-Identifier: Apache-2.0
"""Random Anderson impurity models for the training databases.

``mode = "seed"`` (Sheridan et al. 2021; the seed lecture's table): for sample
``i``, with its own generator ``default_rng([seed, i])`` (so the samples do not
depend on the number of MPI ranks or the order of the work):

* ``U`` uniform in ``[U_min, U_max]``, bandwidth ``W`` uniform, ``D = W/2``;
* impurity level relative to half filling ``eps`` uniform: ``mu = U/2 - eps``;
* ``beta`` chosen uniformly from the list;
* ``n_bath`` levels: uniform random positions mapped affinely onto
  ``[-D, D]`` so that ``(max eps_k - min eps_k) / (2D) = 1``; hoppings from
  random positive weights scaled to the Bethe-lattice sum rule
  ``sum_k V_k^2 = D^2/4``.

``mode = "dmft"``: a smooth hybridisation like those a DMFT loop produces —
``Delta = (D^2/4) G(z)`` where ``G`` is a mixture of a semicircle of half
width ``D`` centred at a random shift (metallic) and, with random weight, two
narrower semicircles at ``+-U/2`` (Hubbard bands) — fitted by ``n_bath``
sites (:func:`triqs_mlsolver.aim.fit_bath`); the fitted discrete bath is the
sample, so every solver sees the same AIM.

``mode = "bethe"``: the hybridisations a Bethe-lattice DMFT loop visits,
metals with a quasiparticle peak of any width and Mott insulators.
``Delta = (D^2/4) G_loc`` with the semicircle ``G_loc(z) = G_sc(z - s -
Sigma(z))`` for the two-pole self-energy

.. math::

    \\Sigma(z) = \\frac{U_s^2}{4}\\,\\frac{z}{z^2 - \\Omega^2},
    \\qquad \\Omega^2 = \\frac{U_s^2}{4}\\,\\frac{Z}{1 - Z},

which is a Fermi liquid with weight ``Z`` (``Sigma ~ (1 - 1/Z) z`` for
``|z| << Omega``), has the atomic tail ``U_s^2/(4 z)`` and becomes the
Hubbard-I (Mott) self-energy as ``Z -> 0``.  Drawn per sample: ``Z``
uniform in ``[0, 1]`` (a quarter of the samples exactly insulating,
``Z = 0``), ``U_s = U * uniform(0.7, 1.3)``, a small shift ``s`` (a quarter
of the samples exactly particle-hole symmetric, ``s = 0`` and ``eps = 0``).
The fitted ``n_bath``-site bath is the sample.

In both fitted modes a site the fit sends beyond ``+-(EPS_FAR D + U)``
(:data:`triqs_mlsolver.aim.bath.EPS_FAR` = 50: a tiny coupling at a huge level, an artefact
of the fit) is decoupled (``V = 0``, level on the bound), as in the single-band recipe: with
the session-15 fit, sample 8764 of ``bethe_database.toml`` had a mirrored pair of sites at
+-4.7e14 D (the database's value rules refused its chunk at the merge); no other sample of
its 10,000 or of ``bethe_test_database.toml``'s 1,000 has a site beyond the bound.

``mode = "visited"``: the AIMs a solver recorded (:mod:`.visited`, ``MLSolver(record=...)``),
the input of the dynamic database.  Sample ``i`` is the ``i``-th visit
(``visited_only = "out_of_domain"``: the ``i``-th one the model was not trusted for)
with its ``beta``, ``U`` and ``mu`` per spin; each spin's hybridisation is fitted by
``n_bath`` sites separately (:func:`~triqs_mlsolver.aim.fit_bath`; a spin-symmetric
visit is fitted once, so both spins get the same bath), and a recorded discrete bath of
at most ``n_bath`` sites is kept as it is (padded in the database, ``params/n_bath``).
``D = 2 sqrt(m_0)``, with ``m_0`` the spin-averaged first moment of ``Delta``, is the
model's energy unit.  Spin-polarised visits (a Zeeman field, an antiferromagnetic loop)
are samples like the others, stored per spin (``params/mu_s``, ``eps_k_s``, ``V_k_s``;
format 4); the spin-averaged training leaves them out
(:func:`~triqs_mlsolver.ml.dataset.load_samples`).  ``U``, ``W``, ``eps`` and ``beta``
are not used.

Stored arrays (:func:`sample_arrays`): the legacy spin-symmetric fields (spin up) and the
per-spin ones, the bath padded to ``K = [sampler] n_bath`` sites with ``eps_k = V_k = 0``
and the number of sites used in ``n_bath``.
"""

from __future__ import annotations

import functools

import numpy as np

from ..aim import AIMParams, fit_bath
from ..aim.bath import EPS_FAR, decouple_far_sites
from ..gf.transforms import matsubara_freqs, semicircle_g

__all__ = ["sample_params", "sample_arrays", "visited_samples"]


@functools.lru_cache(maxsize=4)
def _visits(path: str, sha256: str, only: str):
    from .visited import read_visits

    visits = read_visits(path)
    keep = [v for v in visits if only == "all" or v.out_of_domain]
    return tuple(keep), len(visits)


def visited_samples(cfg: dict):
    """``(usable visits, all visits)`` of a ``mode = "visited"`` config: every visit (the
    ones the model was not trusted for, with ``visited_only = "out_of_domain"``; spin-
    polarised visits included) and the count of every recorded visit."""
    s = cfg["sampler"]
    return _visits(str(s["visited"]), s["visited_sha256"], s["visited_only"])


def _fit_in_range(delta, beta, k_max, seed, D, eps_max):
    """The largest fit of ``k_max, k_max - 1, ...`` sites whose levels lie within
    ``+-eps_max`` (a Mott insulator's Delta fitted by 8 sites can send sites with tiny
    couplings to levels of 1e7 D: an artefact of the fit, refused by the database's value
    rules); if none, the 1-site fit with its far site cut off (``V = 0``)."""
    from ..aim.bath import decouple_far_sites

    fit = None
    for k in range(k_max, 0, -1):
        fit = fit_bath(delta, beta, k, n_starts=3, seed=seed, D=D)
        if np.abs(fit.eps_k).max() <= eps_max:
            return fit
    return decouple_far_sites(fit, eps_max)[0]


def _visited_sample(cfg, i, rng):
    from ..ml.inference import delta_tail_moments

    s = cfg["sampler"]
    usable, total = visited_samples(cfg)
    if i >= len(usable):
        raise IndexError(f"sample {i}: {s['visited']} has {len(usable)} usable visits "
                         f"({total} recorded)")
    p = usable[i].params
    nb = int(s["n_bath"])
    if p.has_discrete_bath:
        m0 = float(np.mean(p.delta_moments()))
    else:
        m0 = float(delta_tail_moments(p)[1].real)
    D = 2.0 * np.sqrt(m0)  # the models' energy unit, as MLSolver reads it
    if p.has_discrete_bath and p.n_bath <= nb:
        return AIMParams(U=p.U, mu=p.mu.copy(), beta=p.beta, eps_k=p.eps_k.copy(),
                         V_k=p.V_k.copy(), D=D)
    n_iw = 1025 if p.has_discrete_bath else p.Delta_iw.shape[1] // 2
    delta = p.delta_iw(n_iw)
    seed = int(rng.integers(2**31))
    from .single_band import EPS_MAX

    eps_max = (EPS_MAX + p.U / D) * D
    fits = [_fit_in_range(delta[0], p.beta, nb, seed, D, eps_max)]
    if p.spin_symmetric:
        fits.append(fits[0])
    else:  # each spin its own bath, both with the same number of sites
        fits.append(_fit_in_range(delta[1], p.beta, nb, seed, D, eps_max))
        k = min(f.eps_k.size for f in fits)
        fits = [f if f.eps_k.size == k else _fit_in_range(d, p.beta, k, seed, D, eps_max)
                for f, d in zip(fits, delta)]
    return AIMParams(U=p.U, mu=p.mu.copy(), beta=p.beta,
                     eps_k=np.stack([f.eps_k for f in fits]),
                     V_k=np.stack([f.V_k for f in fits]), D=D,
                     extra={"fit_chi2": max(f.chi2 for f in fits)})


def sample_params(cfg: dict, i: int) -> AIMParams:
    """The ``i``-th AIM of the database described by the validated config ``cfg``.

    With ``[sampler] select = [a, b]`` (importance sampling of the hard cases) the sample is
    the first candidate ``t = 0, 1, ...`` (generator ``default_rng([seed, i, t])``;
    ``t = 0`` is the unselected sample) on which the cheap solvers ``a`` and ``b`` disagree
    by at least ``select_min`` (:func:`disagreement`); after ``select_tries`` candidates the
    most disagreeing one.  Deterministic in ``(seed, i)`` like every sample.
    """
    s = cfg["sampler"]
    if not s["select"]:
        return _candidate(cfg, i, 0)
    best, d_best = None, -1.0
    for t in range(int(s["select_tries"])):
        p = _candidate(cfg, i, t)
        d = disagreement(cfg, p, *s["select"])
        if d >= s["select_min"]:
            return p
        if d > d_best:
            best, d_best = p, d
    return best


def disagreement(cfg: dict, params: AIMParams, a: str, b: str) -> float:
    """RMS over ``tau`` of ``G_a - G_b`` on the database's stored mesh (quadrature-weighted
    as in every error figure; the larger of the spins): the cheap solvers' disagreement,
    known before the reference is solved (MLSolver's guard uses the same figure).  A failed
    cheap solve counts as infinite disagreement (such inputs are hard too)."""
    from .generate import stored_G_tau, stored_tau_over_beta
    from .reader import disagreement_rms

    try:
        ga, gb = (stored_G_tau(cfg, name, params) for name in (a, b))
    except (ArithmeticError, RuntimeError, ValueError, np.linalg.LinAlgError):
        return float("inf")
    return disagreement_rms(ga, gb, stored_tau_over_beta(cfg["grid"]))


def _candidate(cfg: dict, i: int, t: int) -> AIMParams:
    s = cfg["sampler"]
    rng = np.random.default_rng([int(s["seed"]), int(i)] + ([int(t)] if t else []))
    if s["mode"] == "single_band":
        from .single_band import sample as _sb

        return _sb(cfg, i, rng)
    if s["mode"] == "visited":
        return _visited_sample(cfg, i, rng)
    U = rng.uniform(*s["U"])
    D = rng.uniform(*s["W"]) / 2
    eps = rng.uniform(*s["eps"])
    beta = float(s["beta"][rng.integers(len(s["beta"]))])
    nb = int(s["n_bath"])
    mu = U / 2 - eps
    if s["mode"] == "seed":
        if nb == 1:
            e = np.zeros(1)
        else:
            x = rng.uniform(0, 1, nb)
            x = (x - x.min()) / (x.max() - x.min()) if x.max() > x.min() else np.linspace(0, 1, nb)
            e = np.sort(-D + 2 * D * x)
        w = rng.uniform(0.1, 1.0, nb)
        V = np.sqrt(w / w.sum() * D**2 / 4)
        return AIMParams(U=U, mu=mu, beta=beta, eps_k=e, V_k=V, D=D)
    n_iw = 256
    iw = matsubara_freqs(beta, n_iw)
    if s["mode"] == "bethe":
        return _bethe_sample(rng, U, D, eps, beta, nb, iw)
    # dmft-like: smooth Delta, fitted by nb sites
    shift = rng.uniform(-0.3, 0.3) * D
    w_ins = rng.uniform(0.0, 1.0) ** 2
    width = rng.uniform(0.2, 0.6) * D
    G = (1 - w_ins) * semicircle_g(iw, D, shift) + w_ins * 0.5 * (
        semicircle_g(iw, width, U / 2) + semicircle_g(iw, width, -U / 2)
    )
    delta = D**2 / 4 * G
    fit = fit_bath(delta, beta, nb, n_starts=3, seed=int(rng.integers(2**31)), D=D)
    fit, far = decouple_far_sites(fit, EPS_FAR * D + U)
    return AIMParams(
        U=U, mu=mu, beta=beta, eps_k=fit.eps_k, V_k=fit.V_k, D=D,
        extra={"fit_chi2": fit.chi2, "far_sites": far}
    )


def _bethe_sample(rng, U, D, eps, beta, nb, iw):
    Z = 0.0 if rng.uniform() < 0.25 else rng.uniform(0.0, 1.0)
    Us = U * rng.uniform(0.7, 1.3)
    ph = rng.uniform() < 0.25
    shift = 0.0 if ph else rng.uniform(-0.2, 0.2) * D
    if ph:
        eps = 0.0
    A = Us**2 / 4
    Om2 = A * Z / (1.0 - Z) if Z < 1.0 else np.inf
    sigma = A * iw / (iw**2 - Om2) if np.isfinite(Om2) else np.zeros_like(iw)
    G = semicircle_g(iw - shift - sigma, D)
    fit = fit_bath(D**2 / 4 * G, beta, nb, ph_symmetric=ph, n_starts=3,
                   seed=int(rng.integers(2**31)), D=D)
    # a site the fit sent beyond +-(EPS_FAR D + U) (a tiny coupling at a level of up to
    # 1e14 D: seen on 1 of 10,000 Bethe samples) is an artefact, not a bath: decoupled
    fit, far = decouple_far_sites(fit, EPS_FAR * D + U)
    return AIMParams(U=U, mu=U / 2 - eps, beta=beta, eps_k=fit.eps_k, V_k=fit.V_k, D=D,
                     extra={"fit_chi2": fit.chi2, "Z_sample": Z, "far_sites": far})


def sample_arrays(params: AIMParams, n_bath_max: int) -> dict:
    """The stored parameters of one sample (one row of ``params/*``, format 4).

    Parameters
    ----------
    params : AIMParams
        The sample's AIM, with a discrete bath of ``1 ... n_bath_max`` sites (per spin).
    n_bath_max : int
        ``K``, the bath sites of the database (``[sampler] n_bath``): the bath arrays are
        padded to it with ``eps_k = V_k = 0``.

    Returns
    -------
    dict
        ``U, beta, D`` (float); ``mu`` (float), ``eps_k, V_k`` (K,): the legacy
        spin-symmetric fields, spin up; ``mu_s`` (2,), ``eps_k_s, V_k_s`` (2, K): per spin;
        ``n_bath`` (int): the sites the sample uses.  Hoppings are stored as ``|V_k|``
        (their sign is a gauge: only ``V_k^2`` enters the AIM).

    Raises
    ------
    ValueError
        The AIM has no discrete bath, or more sites than ``n_bath_max``.
    """
    K = int(n_bath_max)
    if not params.has_discrete_bath or params.n_bath < 1:
        raise ValueError("a database sample needs a discrete bath of at least one site; fit "
                         "a continuous Delta_iw first (triqs_mlsolver.aim.fit_bath)")
    nb = params.n_bath
    if nb > K:
        raise ValueError(f"the sample has {nb} bath sites, more than the database's K = "
                         f"{K} ([sampler] n_bath); raise n_bath to at least {nb}")
    eps = np.zeros((2, K))
    V = np.zeros((2, K))
    eps[:, :nb] = params.eps_k
    V[:, :nb] = np.abs(params.V_k)  # the sign of a hopping is a gauge
    return {
        "U": params.U,
        "mu": float(params.mu[0]),
        "beta": params.beta,
        "D": params.D,
        "eps_k": eps[0].copy(),
        "V_k": V[0].copy(),
        "mu_s": np.array(params.mu, dtype=float),
        "eps_k_s": eps,
        "V_k_s": V,
        "n_bath": nb,
    }
