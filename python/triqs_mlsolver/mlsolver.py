# SPDX-License-Identifier: Apache-2.0
"""``MLSolver``: the machine-learning corrected impurity solver, a drop-in for
``triqs_cthyb.Solver``.

.. code-block:: python

    from triqs_mlsolver import Solver          # instead of: from triqs_cthyb import Solver
    S = Solver(beta=50, gf_struct=[('up', 1), ('down', 1)], n_iw=1025, n_tau=10001, n_l=30)
    for name, g0 in S.G0_iw:
        g0 << inverse(iOmega_n + U / 2 - 0.25 * S.G_iw[name])
    S.solve(h_int=U * n('up', 0) * n('down', 0), n_cycles=10000)   # cthyb keywords accepted
    S.G_iw, S.Sigma_iw, S.G_tau, S.G_l

What one solve does (:func:`solve_ml`, the pure-array core, also registered
as the solver ``"ml"`` so that every driver of the solver protocol can use it):

1. read ``beta``, ``mu`` and ``Delta(i w)`` from ``G0_iw`` (``G0^-1 = i w + mu -
   Delta``; ``mu`` from the fitted high-frequency expansion) and ``U`` from
   ``h_int``; the energy unit of the model is ``D = 2 sqrt(m_0)`` with
   ``m_0`` the ``1/(i w)`` moment of ``Delta`` (the half bandwidth of a Bethe
   lattice at self-consistency, ``Delta = (D/2)^2 G``);
2. run the model's cheap solvers (:attr:`FeatureSpec.inputs`);
3. predict the correction ``Delta G_l = G_l^ref - G_l^base`` (Legendre, the
   ``G(0+) + G(beta-) = -1`` constraint projected exactly) with an ensemble
   of networks, and its spread;
4. ``G_iw_raw = G_iw^base + sum_l T_nl Delta G_l`` (the base solver's exact
   ``G(i w)`` and tails are kept, only the smooth correction is truncated at
   the model's ``n_l``); ``G_tau`` and ``G_l`` on the user's grids are its
   tail-corrected transforms;
5. ``Sigma_iw_raw = G0^-1 - G_iw_raw^-1`` (Dyson) and, like cthyb's tail fit,
   ``Sigma_iw`` with its high-frequency part replaced above ``w_c`` by the
   expansion ``U n_-s + U^2 n_-s (1 - n_-s)/(i w) + c_2/(i w)^2 + c_3/(i w)^3``
   (first two moments exact, the others fitted); ``G_iw`` by Dyson from it.

The out-of-distribution guard: a descriptor (``U/D``, ``eps/D``,
``log(beta D)``, moments of ``Delta``) outside the model's training domain, an
ensemble spread above the model's in-domain level, or a spin-polarised input
(the models are spin symmetric) gives an :class:`OutOfDomainWarning` naming the
quantity and the domain -- or with ``fallback='ed'`` the reference ED (the
model's reference bath size) solves that call instead.  What happened is in
:attr:`MLSolver.ml_report`.
"""

from __future__ import annotations

import functools
import time
import warnings
from pathlib import Path

import numpy as np

from .errors import GfStructError, UnknownParameterError
from .gf import transforms as tr
from .ml.modelfile import model_path, shipped_models
from .solvers.base import (
    Solver,
    _single_orbital_struct,
    params_from_g0,
    parse_h_int,
    solve_aim,
)
from .solvers.cthyb_keywords import split_cthyb_keywords
from .solvers.ed import embed_solution, embedded_source
from .solvers.solution import AIMSolution, double_occupancy_from_ud, galitskii_migdal

__all__ = ["MLSolver", "solve_ml", "resolve_model", "shipped_models", "DEFAULT_MODEL",
           "ML_OPTIONS"]

#: The model ``MLSolver(model=None)`` loads (shipped in ``triqs_mlsolver/models/``).
DEFAULT_MODEL = "triqs_mlsolver_bethe_v5"

#: MLSolver's own ``solve()`` options and their defaults.
ML_OPTIONS = {"fallback": "none", "spread_tol": None, "warn": True}


@functools.lru_cache(maxsize=8)
def _load_cached(path: str, mtime: float, size: int):
    from .ml import load_model

    return load_model(path)


def resolve_model(model=None):
    """A loaded correction model from ``None`` (the shipped default), a shipped
    model's name, a file path, or an already loaded model (returned as is)."""
    if model is None:
        model = DEFAULT_MODEL
    if not isinstance(model, (str, Path)):
        if hasattr(model, "predict") and hasattr(model, "spec"):
            return model
        raise TypeError(f"model must be None, a name, a path or a loaded model, not "
                        f"{type(model).__name__}")
    p = model_path(model)
    st = p.stat()
    return _load_cached(str(p.resolve()), st.st_mtime, st.st_size)


def _model_name(model) -> str:
    meta = getattr(model, "metadata", None) or {}
    path = getattr(model, "path", None)  # an unpublished model file: its path
    return str(meta.get("name") or meta.get("published_name") or path or "model")


def _domain(model) -> dict:
    return dict((getattr(model, "metadata", None) or {}).get("domain", {}))


def _spread_limit(model, spread_tol):
    """The ensemble spread above which a prediction is not trusted."""
    if spread_tol is not None:
        return float(spread_tol)
    stats = (getattr(model, "metadata", None) or {}).get("spread", {})
    if "q99" in stats:
        from .ml.inference import SPREAD_FACTOR

        return SPREAD_FACTOR * float(stats["q99"])
    return float("inf")


def _predict_one_thread(model, samples):
    """``model.predict`` with one torch thread (a batch of one: threads only cost)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return model.predict(samples)
    finally:
        torch.set_num_threads(n)


def _effective_params(params):
    """``(params with D = 2 sqrt(m_0), tail moments of Delta or None)``: the model's energy
    unit (see module docstring); the moments of a continuous Delta are returned for reuse."""
    from dataclasses import replace

    from .ml.inference import delta_tail_moments

    mom = None
    if params.has_discrete_bath:
        m0 = float(np.mean(params.delta_moments()))
    elif params.Delta_iw is not None:
        mom = delta_tail_moments(params)
        m0 = float(mom[1].real)
    else:
        m0 = 0.0
    if not m0 > 0:
        raise ValueError(
            "Delta(i w) vanishes (no bath): the ML models are trained for an impurity coupled "
            "to a bath; for the atomic limit use the Hubbard-I solver"
        )
    return replace(params, D=2.0 * np.sqrt(m0)), mom


def _sigma_tail(Sigma_sw, iw, U, density, w_c):
    """Sigma with ``|w| > w_c`` replaced by its high-frequency expansion (first two moments
    exact: ``U n_-s`` and ``U^2 n_-s (1 - n_-s)``; ``c_2, c_3`` fitted)."""
    out = Sigma_sw.copy()
    far = np.abs(iw.imag) > w_c
    if not far.any():
        return out, np.zeros((2, 4), complex)
    moments = np.zeros((2, 4), complex)
    for s in range(2):
        n_o = density[1 - s]
        known = np.array([U * n_o, U**2 * n_o * (1 - n_o)], complex)
        m, _ = tr.fit_tail(Sigma_sw[s], iw, known_moments=known, max_order=3,
                           tail_fraction=0.5)
        moments[s] = m
        out[s, far] = tr.tail_iw(m, iw[far])
    return out, moments


def _ood_reasons(model, params, samples, spread_max, spread_limit):
    from .ml.inference import domain_violations

    reasons = list(domain_violations(model, samples))
    if not params.spin_symmetric:
        reasons.append("spin-polarised input (the model was trained on spin-symmetric AIMs)")
    if spread_max > spread_limit:
        reasons.append(f"ensemble spread {spread_max:.2e} above the in-domain level "
                       f"{spread_limit:.2e}")
    return reasons


def _fallback_solution(params, n_iw, n_tau, n_l, model):
    n_bath = int(_domain(model).get("n_bath", 6))
    return solve_aim("ed", params, n_iw=n_iw, n_tau=n_tau, n_l=n_l, n_bath=n_bath)


def solve_ml(params, *, n_iw, n_tau, n_l, model=None, fallback="none", spread_tol=None,
             warn=True) -> AIMSolution:
    """Machine-learning corrected solution of the AIM ``params`` (see the module docstring).

    Parameters
    ----------
    params : AIMParams
        Continuous ``Delta_iw`` (on ``2 n_iw`` points) or a discrete bath.
    n_iw, n_tau, n_l : int
        Output grids (``n_tau`` uniform points on ``[0, beta]``).
    model : None, str, Path or loaded model
        ``None``: the shipped :data:`DEFAULT_MODEL`.
    fallback : {"none", "ed"}
        What to do when the input is outside the model's domain: ``"none"`` warns
        (:class:`OutOfDomainWarning`) and returns the model's answer; ``"ed"``
        solves with the reference ED instead (the model's bath size).
    spread_tol : float, optional
        Ensemble spread of ``G(tau)`` (max over tau) above which the prediction is
        out of domain; default ``SPREAD_FACTOR`` (2) times the 99 % quantile on the model's
        validation set (from the model file).
    warn : bool
        Issue the warning (the reasons are recorded either way).

    Returns
    -------
    AIMSolution
        ``diagnostics`` holds ``model``, ``out_of_domain`` (list of str),
        ``spread_max``, ``spread_limit``, ``fallback_used``, ``G_iw_raw``,
        ``Sigma_iw_raw``, ``G_tau_spread`` (2, n_tau), ``timings`` (s per solver),
        ``delta_moments`` (tail moments of a continuous Delta, spin-averaged; None for a
        discrete bath), ``G_tau_clipped`` (the largest positive G(tau) the clip to
        ``G <= 0`` removed; 0 when none).
    """
    from .ml.inference import OutOfDomainWarning, sample_from_solutions

    if fallback not in ("none", "ed"):
        raise ValueError(f"fallback={fallback!r}: use 'none' (warn) or 'ed' (solve with the "
                         "reference ED when the input is outside the model's domain)")
    mdl = resolve_model(model)
    spec = mdl.spec
    n_l_m = int(spec.representation.n) if spec.representation.kind == "legendre" else 40
    if spec.sigma is not None:  # G(i w_n) of the self-energy target from n_l coefficients
        n_l_m = max(n_l_m, int(spec.sigma.n_l))
    n_tau_m = int(((getattr(mdl, "metadata", None) or {}).get("database", {}) or {})
                  .get("n_tau_stored", 201))
    eff, delta_mom = _effective_params(params)
    beta = params.beta
    timings = {}
    sols = {}
    for name in spec.inputs:  # on the model's grid; the outputs are built from G_iw below
        t0 = time.perf_counter()
        source = embedded_source(name)
        if source in sols:  # ed<k>e re-embeds ed<k>w's fitted AIM: solve it once
            sols[name] = embed_solution(eff, sols[source], n_tau=n_tau_m, n_l=n_l_m)
        else:
            sols[name] = solve_aim(name, eff, n_iw=n_iw, n_tau=n_tau_m, n_l=n_l_m)
        timings[name] = time.perf_counter() - t0
    base_sol = sols[spec.base]
    t0 = time.perf_counter()
    samples = sample_from_solutions(mdl, eff, sols, delta_moments=delta_mom)
    pred = _predict_one_thread(mdl, samples)
    dG_l = pred.G_l(samples, spec, n_l_m)[0] - samples.G_l[spec.base][0, :n_l_m]
    spread_t = pred.G_tau_spread[0]
    timings["model"] = time.perf_counter() - t0
    spread_max = float(np.abs(spread_t).max())
    limit = _spread_limit(mdl, spread_tol)
    reasons = _ood_reasons(mdl, params, samples, spread_max, limit)
    spread_out = np.interp(np.linspace(0, 1, n_tau), np.linspace(0, 1, len(spread_t)), spread_t)
    diag = {"model": _model_name(mdl), "out_of_domain": reasons, "spread_max": spread_max,
            "spread_limit": limit, "fallback_used": False, "D_model": float(eff.D),
            "timings": timings, "G_tau_spread": np.tile(spread_out, (2, 1)),
            "delta_moments": delta_mom, "G_tau_clipped": 0.0}
    if reasons and fallback == "ed":
        sol = _fallback_solution(params, n_iw, n_tau, n_l, mdl)
        diag.update(fallback_used=True, G_iw_raw=sol.G_iw, Sigma_iw_raw=sol.Sigma_iw)
        sol.diagnostics = {**sol.diagnostics, **diag}
        return sol
    if reasons and warn:
        warnings.warn(
            f"model {diag['model']} used outside its training domain: " + "; ".join(reasons)
            + ". Pass fallback='ed' to solve such inputs with the reference ED",
            OutOfDomainWarning, stacklevel=3)
    G_iw_raw = base_sol.G_iw + tr.legendre_to_iw(dG_l, n_iw)[None, :]
    iw = tr.matsubara_freqs(beta, n_iw)
    # G_tau and G_l from G_iw (tail-corrected transforms; c_0 = 0, c_1 = 1 exact)
    gm, _ = tr.fit_tail(G_iw_raw[0], iw, known_moments=np.array([0.0, 1.0]), max_order=6)
    g_t = tr.iw_to_tau(G_iw_raw[0], beta, n_tau, gm[:4]).real
    g_l = tr.iw_to_legendre(G_iw_raw[0], beta, n_l, gm[:4]).real
    clipped = 0.0
    if mdl.clip and g_t[1:-1].max() > 0.0:
        # G(tau) <= 0: the model's error can leave G slightly positive where it nearly
        # vanishes (Mott insulators).  Clip the interior points at 0 (the projection onto
        # {G <= 0} on this grid: cannot increase the error there) and move G_iw and G_l by
        # the transforms of that small, jump-free difference, so all outputs stay consistent.
        d_t = np.zeros_like(g_t)
        d_t[1:-1] = np.minimum(g_t[1:-1], 0.0) - g_t[1:-1]
        clipped = float(-d_t.min())
        G_iw_raw = G_iw_raw + tr.tau_to_iw(d_t, beta, n_iw, np.zeros(4))[None, :]
        g_l = g_l + tr.tau_to_legendre(d_t, beta, n_l).real
        g_t = g_t + d_t
    G_tau, G_l = np.tile(g_t, (2, 1)), np.tile(g_l, (2, 1))
    g0_inv = 1.0 / params.g0_iw(n_iw)
    Sigma_raw = g0_inv - 1.0 / G_iw_raw
    density = -G_tau[:, -1]
    w_c = min(0.6 * float(iw.imag.max()), max(20.0 * eff.D, 4.0 * params.U))
    Sigma, moments = _sigma_tail(Sigma_raw, iw, params.U, density, w_c)
    G_iw = 1.0 / (g0_inv - Sigma)
    ud = galitskii_migdal(Sigma, G_iw, beta, moments[:, 0].real, moments[:, 1].real, density)
    d = double_occupancy_from_ud(ud, params.U, density)
    diag.update(G_iw_raw=G_iw_raw, Sigma_iw_raw=Sigma_raw, sigma_moments=moments,
                w_tail=w_c, G_tau_clipped=clipped)
    return AIMSolution(beta=beta, G_iw=G_iw, G_tau=G_tau, G_l=G_l, Sigma_iw=Sigma,
                       density=density, double_occupancy=d, diagnostics=diag)


class MLSolver(Solver):
    """Machine-learning corrected impurity solver with the interface of ``triqs_cthyb.Solver``.

    Parameters
    ----------
    beta : float
        Inverse temperature.
    gf_struct : list of (str, int)
        Two blocks of size 1 (spin up first), e.g. ``[('up', 1), ('down', 1)]``: the
        models are single-orbital.
    n_iw, n_tau, n_l : int
        Positive Matsubara frequencies, tau points, Legendre coefficients (cthyb's defaults).
    model : None, str or path
        ``None``: the shipped default model (:data:`DEFAULT_MODEL`); a shipped model's
        name (:func:`shipped_models`) or a model file written by ``triqs-mlsolver train``.
    delta_interface : bool
        cthyb's option to fill ``Delta_tau`` instead of ``G0_iw``; only ``False`` is
        supported.

    Attributes
    ----------
    G0_iw : BlockGf
        Input, filled by the user.
    Delta_tau : BlockGf
        The hybridisation ``Delta(tau)`` read from ``G0_iw`` (filled by :meth:`solve`).
    G_iw, Sigma_iw, G_tau, G_l : BlockGf
        Results; ``Sigma_iw`` with its tail replaced by the high-frequency expansion.
    G_iw_raw, Sigma_iw_raw : BlockGf
        Before the tail replacement (``Sigma_iw_raw = G0_iw^-1 - G_iw_raw^-1``).
    G_tau_spread : BlockGf
        Ensemble standard deviation of ``G(tau)`` (an error bar of the model).
    average_sign : float
        1 (no sign problem; cthyb's attribute).
    ml_report : dict
        Last solve: model name, out-of-domain reasons, spread, whether the ED fallback
        was used, timings of every cheap solver and of the model.
    density : ndarray (2,), double_occupancy : float
    last_solve_parameters : dict
    """

    solver_name = "ml"

    def __init__(self, beta, gf_struct, n_iw=1025, n_tau=10001, n_l=30,
                 delta_interface=False, *, model=None, **kwargs):
        if kwargs:
            raise UnknownParameterError(
                f"MLSolver() got unknown keyword(s) {sorted(kwargs)}; it takes beta, "
                "gf_struct, n_iw, n_tau, n_l, model, delta_interface (run parameters go to "
                "solve())"
            )
        if delta_interface:
            raise ValueError("delta_interface=True is not supported by MLSolver: fill G0_iw "
                             "(the default cthyb interface) instead of Delta_tau")
        try:
            _single_orbital_struct(gf_struct)
        except GfStructError as exc:
            raise GfStructError(f"{exc}. The ML models correct single-orbital solvers; "
                                "multi-orbital problems need another solver") from None
        super().__init__(beta, gf_struct, n_iw=n_iw, n_tau=n_tau, n_l=n_l)
        self.model = resolve_model(model)
        self.model_name = model if isinstance(model, (str, Path)) else (
            DEFAULT_MODEL if model is None else _model_name(self.model))
        self.constr_params["model"] = str(self.model_name)
        self.Delta_tau = self.G_tau.copy()
        self.G_iw_raw = self.G_iw.copy()
        self.Sigma_iw_raw = self.G_iw.copy()
        self.G_tau_spread = self.G_tau.copy()
        self.average_sign = 1.0
        self.ml_report = {}
        self._reported = set()

    def solver_options(self) -> dict:
        """MLSolver's own ``solve()`` options with their defaults (cthyb's run keywords
        are accepted too, without effect)."""
        return dict(ML_OPTIONS)

    def _check_options(self, options):
        own, ignored = split_cthyb_keywords(options, ML_OPTIONS, "MLSolver",
                                            reported=self._reported, stacklevel=4)
        return {**ML_OPTIONS, **own}, ignored

    def solve(self, *, h_int=None, **options):
        """Solve the impurity problem defined by ``G0_iw`` and ``h_int``.

        Parameters
        ----------
        h_int : operator expression
            ``U n('up',0) n('down',0)`` (one-body terms allowed).
        fallback : {"none", "ed"}
            Out-of-domain inputs: warn, or solve with the reference ED.
        spread_tol : float, optional
            See :func:`solve_ml`.
        warn : bool
            Warn on out-of-domain inputs (they are recorded in ``ml_report`` either way).
        **cthyb_keywords
            ``n_cycles``, ``length_cycle``, ``n_warmup_cycles``, ``measure_G_l``,
            ``perform_tail_fit``, ... (:mod:`triqs_mlsolver.solvers.cthyb_keywords`):
            accepted, reported once per solver object, without effect; measurements
            MLSolver does not make (``measure_G2_iw=True``, ...) and unknown keywords
            are errors.
        """
        ml_opts, ignored = self._check_options(options)
        names = self.block_names
        U, shift = parse_h_int(h_int, names)
        g0 = np.stack([self.G0_iw[n].data[:, 0, 0] for n in names])
        params = params_from_g0(g0, self.beta, U, shift)
        sol = solve_ml(params, n_iw=self.n_iw, n_tau=self.n_tau, n_l=self.n_l,
                       model=self.model, **ml_opts)
        dg = sol.diagnostics
        mom = dg.get("delta_moments")
        if params.spin_symmetric and mom is not None:  # the tail fitted in solve_ml
            delta_t = np.tile(tr.iw_to_tau(params.Delta_iw[0], self.beta, self.n_tau,
                                           mom[:4])[:, None], (1, 2))
        else:
            iw = tr.matsubara_freqs(self.beta, self.n_iw)
            m, _ = tr.fit_tail(params.Delta_iw.T, iw, known_moments=np.zeros((1, 2)),
                               max_order=6)
            delta_t = tr.iw_to_tau(params.Delta_iw.T, self.beta, self.n_tau, m[:4])
        for s, n_ in enumerate(names):
            self.G_iw[n_].data[:, 0, 0] = sol.G_iw[s]
            self.Sigma_iw[n_].data[:, 0, 0] = sol.Sigma_iw[s]
            self.G_tau[n_].data[:, 0, 0] = sol.G_tau[s]
            self.G_l[n_].data[:, 0, 0] = sol.G_l[s]
            self.G_iw_raw[n_].data[:, 0, 0] = dg["G_iw_raw"][s]
            self.Sigma_iw_raw[n_].data[:, 0, 0] = dg["Sigma_iw_raw"][s]
            self.G_tau_spread[n_].data[:, 0, 0] = dg["G_tau_spread"][s]
            self.Delta_tau[n_].data[:, 0, 0] = delta_t[:, s].real
        self.density = sol.density
        self.double_occupancy = sol.double_occupancy
        self.solution = sol
        self.ml_report = {k: dg[k] for k in ("model", "out_of_domain", "spread_max",
                                             "spread_limit", "fallback_used", "timings",
                                             "G_tau_clipped")}
        self.last_solve_parameters = {"h_int": str(h_int), "U": U, "mu": params.mu.tolist(),
                                      **ml_opts, **ignored}
        return self

    def __reduce_to_dict__(self):
        d = super().__reduce_to_dict__()
        d["last_solve_parameters"] = {k: v for k, v in d["last_solve_parameters"].items()
                                      if isinstance(v, (int, float, str, bool, list))}
        for key in ("G_iw_raw", "Sigma_iw_raw", "Delta_tau", "G_tau_spread"):
            d[key] = getattr(self, key)
        return d

    @classmethod
    def __factory_from_dict__(cls, name, d):
        obj = super().__factory_from_dict__(name, d)
        for key in ("G_iw_raw", "Sigma_iw_raw", "Delta_tau", "G_tau_spread"):
            if key in d:
                getattr(obj, key) << d[key]
        return obj

