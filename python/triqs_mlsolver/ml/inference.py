# SPDX-License-Identifier: Apache-2.0
"""Applying a model to one AIM: cheap solutions in, corrected G out (for ``MLSolver``).

.. code-block:: python

    from triqs_mlsolver.ml import load_model
    from triqs_mlsolver.ml.inference import correct
    from triqs_mlsolver.solvers import solve_aim

    model = load_model("triqs_mlsolver_default_v1.safetensors")
    sols = {s: solve_aim(s, params, n_iw=1025, n_tau=201, n_l=40) for s in model.spec.inputs}
    out = correct(model, params, sols)      # out.G_tau (2, n_tau), out.G_l (2, n_l), ...

The cheap solutions must share one grid (``n_tau`` uniform points, ``n_l``
Legendre coefficients).  Descriptors need the bath: a discrete one
(``eps_k``, ``V_k``), or for a continuous ``Delta_iw`` the moments
``m_n`` from its high-frequency tail (``Delta ~ sum_n m_n / (i w)^(n+1)``);
(a two-site bath with the same ``m_0 .. m_3``, a two-point Gauss rule, stands
in for it) and for the ``"delta"`` (``"delta<n>"``) descriptor the Legendre coefficients of
``Delta(tau)`` (tail-corrected transform); the ``"bath"`` descriptor needs a discrete bath with the
training number of sites.  Parameters outside the training domain raise an
:class:`OutOfDomainWarning`.

A spin-resolved model (``model.spec.spin_resolved``) gets one row per spin of a
spin-polarised AIM (spin up first: its own spin's solutions, parameters and bath
descriptors, and the other spin's) and one row for a spin-symmetric one (exactly the row
of a spin-symmetric model, the other spin equal to it); the domain check then covers each
spin's descriptors and the polarisation descriptors (``dmu/D``, ``dm0`` ... ``dm3``: the
other spin minus the own, ranges recorded in the model file's ``domain``).  A
spin-symmetric model sees the spin average (and ``MLSolver`` does not trust it on
spin-polarised input).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ..errors import TriqsMLSolverWarning
from ..gf import transforms as tr
from .dataset import SampleSet
from .representations import (
    POLARISATION_MOMENTS,
    descriptors,
    n_delta_needed,
    polarisation_descriptors,
)

__all__ = ["SPREAD_FACTOR", "OutOfDomainWarning", "CorrectedSolution", "sample_from_solutions",
           "correct", "domain_violations", "domain_violations_of"]


#: A prediction is out of domain when its ensemble spread (max over tau) exceeds this factor
#: times the 99 % quantile of the spread on the model's validation split (stored in the model
#: file).  2 was chosen on the validation split of the Bethe database (triqs_mlsolver_bethe_v3:
#: the largest factor for which the guarded solver is <= 0.1 x ED-3w in every beta bin; it
#: hands 1 of 540 samples to ED; 3 handed none and left beta = 50 at 0.135).  With v4 it flags
#: 3 of 900 validation and 1 of 1000 test samples, with v5 2 of 900 and 1 of 1000 (and 6 of the
#: 1000 of the independent database, among them the one carrying 71 % of its beta = 100
#: squared error).  Half-filled Bethe DMFT with v4 (beta = 20,
#: 50, 100; U = 0.5-4; 40 iterations from the metal and from the Hubbard-I insulator): the
#: spread stays below 0.45 x the limit except in the transient of the insulating start at
#: beta = 100 and U = 1-2 (below U_c1, where it collapses to the metal): up to 1.23 x.  With
#: v5 below 0.74 x except that transient: 1 / 2 / 7 iterations above, up to 2.9 x.
SPREAD_FACTOR = 2.0


class OutOfDomainWarning(TriqsMLSolverWarning):
    """The model is applied outside the parameter ranges it was trained on."""


@dataclass
class CorrectedSolution:
    """Corrected Green's function of one AIM, per spin (both spins equal for a
    spin-symmetric input, or for any input of a spin-symmetric model).

    Attributes
    ----------
    G_tau : ndarray (2, n_tau), on the cheap solutions' uniform tau grid
    G_l : ndarray (2, n_l)
    G_tau_spread : ndarray (2, n_tau), ensemble standard deviation
    out_of_domain : list of str, descriptors outside the training ranges
    """

    G_tau: np.ndarray
    G_l: np.ndarray
    G_tau_spread: np.ndarray
    out_of_domain: list


def _gauss_bath(m):
    """Two sites whose ``sum V^2 eps^n`` equal the moments ``m[0..3]`` (2-point Gauss rule).

    In closed form about the mean level: with the variance ``v`` and third central moment
    ``k3`` of the levels (weights ``V^2 / m_0``), the sites lie at ``mean + h -+ sqrt(h^2 +
    v)``, ``h = k3 / (2 v)``, each weighted so that the mean is kept -- the same sites as the
    moment system's linear solve and polynomial roots, at a tenth of their cost (this runs
    twice in every MLSolver solve) and without their cancellation for nearly equal levels."""
    m0, m1, m2, m3 = (float(v) for v in np.asarray(m, float)[:4])
    var = m0 * m2 - m1 * m1  # m_0^2 times the variance of the bath levels
    if not m0 > 0 or var <= 1e-12 * max(m0 * m2, 1e-300):
        # (numerically) one level: both sites there, half the weight each
        e = m1 / m0 if m0 > 0 else 0.0
        return np.array([e, e]), np.sqrt(np.full(2, max(m0, 0.0) / 2))
    mean, v = m1 / m0, var / (m0 * m0)
    k3 = (m3 * m0 * m0 - 3.0 * m1 * m2 * m0 + 2.0 * m1**3) / m0**3
    h = 0.5 * k3 / v
    r = np.hypot(h, np.sqrt(v))
    # the centred nodes y0 < 0 < y1, y0 y1 = -v: the larger one without cancellation
    if h >= 0.0:
        y1 = h + r
        y0 = -v / y1
    else:
        y0 = h - r
        y1 = -v / y0
    x = mean + np.array([y0, y1])
    w = m0 * np.array([y1, -y0]) / (y1 - y0)  # sum w = m0, sum w y = 0
    return x, np.sqrt(w)


def delta_tail_moments(params, spin=None) -> np.ndarray:
    """High-frequency moments ``m_n`` of the spin-averaged continuous ``Delta(i w)``
    (``Delta ~ sum_n m_n / (i w)^(n+1)``; entry ``n + 1`` holds ``m_n``), fitted to order 6;
    ``spin`` (0 or 1): of that spin's ``Delta``."""
    d = params.Delta_iw.mean(axis=0) if spin is None else params.Delta_iw[spin]
    iw = tr.matsubara_freqs(params.beta, d.size // 2)
    mom, _ = tr.fit_tail(d, iw, known_moments=np.zeros(1), max_order=6)
    return mom


def _param_arrays(params, delta_moments=None, n_delta=0, spin=None):
    """The one-row parameter arrays of ``params``: spin-averaged (``spin=None``; the bath of
    spin up, equal to spin down for a spin-symmetric AIM) or of one ``spin``; and whether
    the bath is discrete."""
    mu = float(np.mean(params.mu)) if spin is None else float(params.mu[spin])
    base = {"U": np.array([params.U]), "mu": np.array([mu]),
            "beta": np.array([params.beta]), "D": np.array([params.D])}
    s = 0 if spin is None else spin
    if params.has_discrete_bath:
        return {**base, "eps_k": params.eps_k[s:s + 1].copy(),
                "V_k": params.V_k[s:s + 1].copy()}, True
    if params.Delta_iw is None:
        return {**base, "eps_k": np.zeros((1, 1)), "V_k": np.zeros((1, 1))}, False
    # continuous bath: Delta ~ sum_n m_n / (i w)^(n+1); a two-site bath with the same
    # m_0..m_3 gives the same moment descriptors
    d = params.Delta_iw.mean(axis=0) if spin is None else params.Delta_iw[spin]
    if delta_moments is not None:
        mom = delta_moments
    else:
        mom = delta_tail_moments(params, spin)
    e, v = _gauss_bath(np.real(mom[1:5]))
    # the shape of Delta for the "delta" descriptor: its Legendre coefficients
    out = {**base, "eps_k": e[None], "V_k": v[None]}
    if n_delta:
        out["delta_l"] = tr.iw_to_legendre(d, params.beta, n_delta, mom[:4]).real[None]
    return out, False


def _row_param_arrays(params, delta_moments=None, n_delta=0):
    """The parameter arrays of a spin-resolved model's rows of ``params`` (module
    docstring): one row for a spin-symmetric AIM (:func:`_param_arrays`, the other spin
    equal to it), two for a spin-polarised one (spin up, spin down); and whether the bath
    is discrete.  ``delta_moments`` (spin-averaged) are used for the symmetric row only."""
    if params.spin_symmetric:
        p, discrete = _param_arrays(params, delta_moments, n_delta)
        for k in ("mu", "eps_k", "V_k", "delta_l"):
            if k in p:
                p[k + "_o"] = p[k]
        return p, discrete
    rows = [_param_arrays(params, None, n_delta, spin=s) for s in (0, 1)]
    discrete = rows[0][1]
    ps = [r[0] for r in rows]
    out = {k: np.concatenate([ps[0][k], ps[1][k]]) for k in ps[0]}
    for k in ("mu", "eps_k", "V_k", "delta_l"):
        if k in ps[0]:
            out[k + "_o"] = np.concatenate([ps[1][k], ps[0][k]])
    return out, discrete


def sample_from_solutions(model, params, solutions: dict, *, delta_moments=None) -> SampleSet:
    """One-sample :class:`SampleSet` from ``{solver: AIMSolution}`` of the model's inputs.

    ``delta_moments``: :func:`delta_tail_moments` of a continuous ``Delta`` when the
    caller has them already (else fitted here)."""
    from .modelfile import ModelMismatchError

    spec = model.spec
    missing = [s for s in spec.inputs if s not in solutions]
    if missing:
        raise ModelMismatchError(f"the model needs the solutions of {missing} as well")
    resolved = getattr(spec, "spin_resolved", False)
    if resolved:
        p, discrete = _row_param_arrays(params, delta_moments, n_delta_needed(spec.descriptors))
    else:
        p, discrete = _param_arrays(params, delta_moments, n_delta_needed(spec.descriptors))
    if not discrete and "bath" in spec.descriptors:
        raise ModelMismatchError(
            "the model uses the discrete bath as descriptor ('bath'); these parameters have a "
            "continuous Delta_iw. Fit a bath with the training number of sites first "
            "(triqs_mlsolver.aim.fit_bath) or use a model without the 'bath' descriptor"
        )
    n_tau = {sol.n_tau for sol in solutions.values()}
    n_l = {sol.n_l for sol in solutions.values()}
    if len(n_tau) > 1 or len(n_l) > 1:
        raise ValueError(f"the cheap solutions have different grids (n_tau {n_tau}, n_l {n_l})")
    x_st = stored_mesh(model)
    if x_st is None:
        x = np.linspace(0.0, 1.0, n_tau.pop())
        gtau = {s: sol.G_tau.real for s, sol in solutions.items()}
    else:  # the model's database stored G at non-uniform points: the same spline here
        x = x_st
        gtau = {s: tr.uniform_tau_to_points(sol.G_tau.real, x) for s, sol in solutions.items()}
    if spec.fit_residual:  # the fits the inputs' solves made
        from .fit_residual import rows_from_solutions

        spins = [0, 1] if resolved and len(p["U"]) == 2 else [0]
        p.update(rows_from_solutions(params, solutions, spec.fit_residual,
                                     spec.fit_residual_n, spins))
    rep = spec.representation
    if resolved and len(p["U"]) == 2:  # spin-polarised: row s is spin s, the other 1 - s
        Gt = {s: g.copy() for s, g in gtau.items()}
        Gl = {s: sol.G_l.real.copy() for s, sol in solutions.items()}
        beta = np.repeat(p["beta"][:1], 2)
        y = {s: rep.encode(Gt[s], Gl[s], beta, x) for s in solutions}
        yo = {s: v[::-1].copy() for s, v in y.items()}
        return SampleSet(np.zeros(2, np.int64), p, y, Gt, Gl, x, np.zeros(2, bool),
                         y_other=yo, spin=np.arange(2), polarised=np.ones(2, bool))
    Gt = {s: g.mean(axis=0)[None] for s, g in gtau.items()}
    Gl = {s: sol.G_l.real.mean(axis=0)[None] for s, sol in solutions.items()}
    y = {s: rep.encode(Gt[s], Gl[s], p["beta"], x) for s in solutions}
    if resolved:  # spin-symmetric: one row, the other spin equal to it
        return SampleSet(np.zeros(1, np.int64), p, y, Gt, Gl, x, np.zeros(1, bool),
                         y_other=dict(y), spin=np.zeros(1, np.int64),
                         polarised=np.zeros(1, bool))
    return SampleSet(np.zeros(1, np.int64), p, y, Gt, Gl, x, np.zeros(1, bool))


def stored_mesh(model):
    """``tau/beta`` of the model's training database when it was not uniform (a ``"log"``
    mesh: the cheap solutions are then solved on ``DENSE_N_TAU`` uniform points and splined
    there, as at generation), else ``None``."""
    db = ((getattr(model, "metadata", None) or {}).get("database", {}) or {})
    x = db.get("tau_over_beta_stored")
    return None if x is None else np.asarray(x, float)


def domain_violations(model, samples: SampleSet) -> list:
    """Descriptors of ``samples`` outside the ranges in the model's training domain."""
    return domain_violations_params(model, samples.params)


def domain_violations_of(model, params, delta_moments=None) -> list:
    """:func:`domain_violations` of the AIM ``params`` (``D`` set), before any solver runs
    (a spin-resolved model: of each spin, and the polarisation)."""
    if getattr(model.spec, "spin_resolved", False):
        p, _ = _row_param_arrays(params, delta_moments, 0)
    else:
        p, _ = _param_arrays(params, delta_moments, 0)
    return domain_violations_params(model, p)


def domain_violations_params(model, params: dict) -> list:
    """Descriptors of the parameter arrays ``params`` (``U``, ``mu``, ``beta``, ``D``,
    ``eps_k``, ``V_k``; one row, or the rows of a spin-resolved model) outside the ranges
    in the model's training domain.

    A spin-resolved model's rows (``mu_o``, ``eps_k_o``, ``V_k_o`` given) are also checked
    for their polarisation: ``dmu/D``, ``dm0`` and ``dm1`` always, ``dm2`` and ``dm3`` where
    the model uses ``m2`` / ``m3`` (like the moments themselves: uncertain tail fits)."""
    dom = (getattr(model, "metadata", {}) or {}).get("domain", {})
    # the physical parameters always; the moments of Delta only where the model uses them
    # (for a continuous Delta they come from a tail fit, uncertain beyond m_1)
    used = set(model.spec.descriptors) | {"U/D", "eps/D", "log(beta*D)"}
    names = [n for n in ("U/D", "eps/D", "log(beta*D)", "m0", "m1", "m2", "m3")
             if n in dom and n in used]
    checks = []
    if names:
        with np.errstate(all="ignore"):
            checks.append((names, descriptors(params, names)[0]))
    if getattr(model.spec, "spin_resolved", False) and "mu_o" in params:
        pol_used = {"dmu/D", "dm0", "dm1"} | {"d" + m for m in POLARISATION_MOMENTS
                                              if m in used}
        with np.errstate(all="ignore"):
            X, labels = polarisation_descriptors(params, POLARISATION_MOMENTS)
        keep = [j for j, n in enumerate(labels) if n in pol_used and n in dom]
        checks.append(([labels[j] for j in keep], X[:, keep]))
    out = []
    for names_, X in checks:
        for j, n in enumerate(names_):
            lo, hi = dom[n]
            # fitted tails and bath fits make m_n uncertain at the 1e-4 level: a small margin
            tol = 1e-3 * max(1.0, abs(lo), abs(hi)) + 0.01 * (hi - lo)
            v = X[:, j]
            if not np.all(np.isfinite(v)) or np.any(v < lo - tol) or np.any(v > hi + tol):
                # the row furthest out (the one row of a spin-symmetric input)
                far = np.where(np.isfinite(v), np.maximum(lo - v, v - hi), np.inf)
                k = int(np.argmax(far))
                out.append(f"{n} = {float(v[k]):.4g} outside [{lo:.4g}, {hi:.4g}]")
    return out


def correct(model, params, solutions: dict, *, warn=True) -> CorrectedSolution:
    """Corrected G of the AIM ``params`` from the cheap ``solutions`` (see module docstring)."""
    samples = sample_from_solutions(model, params, solutions)
    bad = domain_violations(model, samples)
    if bad and warn:
        warnings.warn("the model is used outside its training domain: " + "; ".join(bad),
                      OutOfDomainWarning, stacklevel=2)
    pred = model.predict(samples)
    n_l = samples.G_l[model.spec.base].shape[1]
    G_l = pred.G_l(samples, model.spec, n_l)
    # one row: both spins alike; two rows (a spin-resolved model, polarised input): per spin
    r = 2 // len(samples)
    return CorrectedSolution(np.repeat(pred.G_tau, r, axis=0), np.repeat(G_l, r, axis=0),
                             np.repeat(pred.G_tau_spread, r, axis=0), bad)
