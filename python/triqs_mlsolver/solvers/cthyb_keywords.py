# SPDX-License-Identifier: Apache-2.0
"""The ``solve()`` keywords of ``triqs_cthyb.Solver`` and ``triqs_hubbardI.Solver``, for
solvers that stand in for them.

One table for :class:`~triqs_mlsolver.mlsolver.MLSolver` and the solvers served
by ``triqs-mlsolver run``:

* Monte Carlo, tail-fit and mesh parameters that change nothing on a deterministic
  solver (:data:`CTHYB_NO_EFFECT`, :data:`HUBBARDI_SOLVE_NO_EFFECT`) are accepted and
  reported once per solver object with an :class:`IgnoredParameterWarning`;
* requests that every stand-in serves (:data:`CTHYB_SERVED`: the impurity density
  matrix, ``S.density_matrix`` with ``S.h_loc_diagonalization``) are accepted silently;
* requests for observables a stand-in does not compute (:data:`CTHYB_NOT_SUPPORTED`,
  :data:`HUBBARDI_NOT_SUPPORTED`) are errors unless harmless (off / default);
* unknown keywords are errors.

``triqs_hubbardI.Solver``'s constructor keywords beyond cthyb's are in
:data:`HUBBARDI_CONSTRUCTOR_KEYWORDS` (name -> triqs_hubbardI's default), for a
cthyb stand-in that is imported in place of ``triqs_hubbardI.Solver``.
"""

from __future__ import annotations

import warnings

from ..errors import TriqsMLSolverWarning, UnknownParameterError

__all__ = ["IgnoredParameterWarning", "CTHYB_NO_EFFECT", "CTHYB_SERVED", "CTHYB_NOT_SUPPORTED",
           "HUBBARDI_CONSTRUCTOR_KEYWORDS", "HUBBARDI_SOLVE_KEYWORDS",
           "HUBBARDI_SOLVE_NO_EFFECT", "HUBBARDI_NOT_SUPPORTED", "harmless_off",
           "split_cthyb_keywords", "check_not_supported"]


class IgnoredParameterWarning(TriqsMLSolverWarning):
    """A ``triqs_cthyb`` or ``triqs_hubbardI`` keyword without effect on the served
    (deterministic) solver."""


# -- triqs_cthyb 3.x -------------------------------------------------------------------------
#: ``triqs_cthyb`` ``solve()`` keywords that control the Monte Carlo run, the tail fit or the
#: size of measurements that are not made: accepted, without effect on a deterministic solver.
CTHYB_NO_EFFECT = frozenset({
    "n_cycles", "length_cycle", "n_warmup_cycles", "random_seed", "random_name", "max_time",
    "verbosity", "move_shift", "move_double", "use_trace_estimator", "partition_method",
    "quantum_numbers", "measure_G_tau", "measure_G_l", "use_norm_as_weight", "proposal_prob",
    "move_global", "move_global_prob", "imag_threshold", "off_diag_threshold",
    "det_init_size", "det_n_operations_before_check", "det_precision_warning",
    "det_precision_error", "det_singular_threshold", "performance_analysis",
    "perform_post_proc", "perform_tail_fit", "fit_max_moment", "fit_known_moments",
    "fit_min_n", "fit_max_n", "fit_min_w", "fit_max_w", "measure_O_tau_min_ins",
    "measure_G2_block_order", "measure_G2_blocks", "measure_G2_n_tau", "measure_G2_n_bosonic",
    "measure_G2_n_fermionic", "measure_G2_n_l", "measure_G2_iwll_nfft_buf_size",
    "nfft_buf_sizes", "measure_chi_insertions",
})

#: ``triqs_cthyb`` keywords whose request every stand-in serves, accepted without a warning:
#: ``measure_density_matrix=True`` -- the impurity density matrix is always available as
#: ``S.density_matrix`` in the eigenbasis of ``S.h_loc_diagonalization`` (real cthyb also
#: wants ``use_norm_as_weight=True`` with it; here that keyword changes nothing).
CTHYB_SERVED = frozenset({"measure_density_matrix"})


def harmless_off(value):
    """True for the values that ask for nothing: ``None``, ``False``, ``0``."""
    return value is None or value is False or (isinstance(value, (int, float)) and value == 0)


#: ``triqs_cthyb`` keywords that ask for something the served solvers do not do, each with
#: the test of a harmless value (the default): anything else is an error.
CTHYB_NOT_SUPPORTED = {
    **{key: harmless_off for key in (
        "measure_pert_order", "measure_O_tau", "measure_chi_SzSz",
        "measure_G2_tau", "measure_G2_iw", "measure_G2_iw_nfft", "measure_G2_iw_pp",
        "measure_G2_iw_pp_nfft", "measure_G2_iw_ph", "measure_G2_iw_ph_nfft",
        "measure_G2_iwll_pp", "measure_G2_iwll_ph", "h_loc0")},
    # a single orbital holds 0..2 electrons: only a restriction of that range is refused
    "loc_n_min": lambda v: v <= 0, "loc_n_max": lambda v: v >= 2,
}
#: Deprecated ``triqs_cthyb`` spellings, renamed as cthyb does.
_CTHYB_RENAMED = {"measure_g_tau": "measure_G_tau", "measure_g_l": "measure_G_l"}

# -- triqs_hubbardI 3.x ----------------------------------------------------------------------
#: ``triqs_hubbardI.Solver(beta, gf_struct, n_iw, n_tau, n_l, n_w, w_min, w_max, idelta)``:
#: its constructor keywords beyond triqs_cthyb's, with triqs_hubbardI's defaults (the
#: real-frequency mesh ``n_w`` points on ``[w_min, w_max]`` and the broadening ``idelta``
#: of ``G_w``).  A cthyb stand-in imported in place of ``triqs_hubbardI.Solver`` accepts
#: them and reports them as without effect.
HUBBARDI_CONSTRUCTOR_KEYWORDS = {"n_w": 500, "w_min": -15, "w_max": 15, "idelta": 0.01}

#: ``triqs_hubbardI.Solver.solve()`` keywords besides ``h_int``, with their defaults.
HUBBARDI_SOLVE_KEYWORDS = {"calc_gtau": False, "calc_gw": False, "calc_gl": False,
                           "calc_dm": False}

#: Keywords a cthyb stand-in accepts in ``solve()`` for scripts written for triqs_hubbardI,
#: without effect: ``calc_gtau``, ``calc_gl`` (``G_tau`` and ``G_l`` are always computed),
#: ``calc_dm`` (the density matrix is always available, as ``S.density_matrix``), and the
#: mesh sizes that triqs_hubbardI's ``solve()`` ignores but scripts pass to it
#: (``S.solve(h_int=..., n_iw=20, n_tau=2, n_w=2)`` in its own tests).
HUBBARDI_SOLVE_NO_EFFECT = frozenset({"calc_gtau", "calc_gl", "calc_dm", "n_iw", "n_tau", "n_l",
                                      *HUBBARDI_CONSTRUCTOR_KEYWORDS})

#: triqs_hubbardI keywords a cthyb stand-in cannot serve: ``calc_gw=True`` asks for ``G_w``
#: and ``Sigma_w`` on the real axis (``triqs-mlsolver run --serve-hubbardI`` serves them
#: with the Hubbard-I solver).
HUBBARDI_NOT_SUPPORTED = {"calc_gw": harmless_off}


def check_not_supported(params, harmless, who, what):
    """Raise ``ValueError`` for a key of ``harmless`` in ``params`` set to a harmful value.

    ``harmless``: ``{keyword: test of a harmless value}``; ``who``: the serving solver;
    ``what``: the package whose keyword it is (``'triqs_cthyb'``).
    """
    for key, is_harmless in harmless.items():
        if key in params and not is_harmless(params[key]):
            raise ValueError(
                f"{key}={params[key]!r} asks {what} for something the solver served by "
                f"`triqs-mlsolver run` ({who}) does not do (it computes G_iw, Sigma_iw, G_tau, "
                f"G_l and the impurity density matrix); remove it from the call, or run the "
                f"script with plain python where {what} is installed"
            )


def split_cthyb_keywords(params, own, who, *, reported=None, stacklevel=3):
    """Check ``params`` given to a cthyb (or hubbardI) stand-in; returns ``(own, foreign)``.

    Parameters
    ----------
    params : dict
        The keywords of ``solve()`` (without ``h_int``).
    own : iterable of str
        The stand-in's own options (passed on; checked before the tables, so a stand-in
        that serves a keyword, e.g. ``calc_gw`` of the Hubbard-I stand-in, lists it here).
    who : str
        The solver's name, for the messages.
    reported : set, optional
        Keywords already reported by this solver object: each is reported once
        (the set is updated).

    Returns
    -------
    own_params : dict
        The keywords of ``own``.
    foreign : dict
        The triqs_cthyb / triqs_hubbardI keywords given (deprecated spellings renamed),
        to be recorded in ``last_solve_parameters``.  Those outside :data:`CTHYB_SERVED`
        have no effect and are named in one :class:`IgnoredParameterWarning`.

    Raises
    ------
    UnknownParameterError
        A keyword that is neither cthyb's, hubbardI's nor the solver's.
    ValueError
        A measurement the stand-in does not make was switched on.
    """
    params = dict(params)
    for old, new in _CTHYB_RENAMED.items():
        if old in params:
            params[new] = params.pop(old)
    own = set(own)
    foreign = {k: v for k, v in params.items() if k not in own}
    check_not_supported(foreign, CTHYB_NOT_SUPPORTED, who, "triqs_cthyb")
    check_not_supported(foreign, HUBBARDI_NOT_SUPPORTED, who, "triqs_hubbardI")
    known = (CTHYB_NO_EFFECT | CTHYB_SERVED | set(CTHYB_NOT_SUPPORTED)
             | HUBBARDI_SOLVE_NO_EFFECT | set(HUBBARDI_NOT_SUPPORTED))
    unknown = sorted(set(foreign) - known)
    if unknown:
        raise UnknownParameterError(
            f"solve() got unknown keyword(s) {unknown}; the stand-in {who} takes h_int, "
            f"triqs_cthyb's solve parameters (n_cycles, length_cycle, ...), triqs_hubbardI's "
            f"(calc_gtau, calc_gw, ...) and its own options {sorted(own) or '(none)'}; check "
            "the spelling"
        )
    no_effect = sorted(k for k in foreign if k not in CTHYB_SERVED)
    new = [k for k in no_effect if reported is None or k not in reported]
    if new:
        warnings.warn(f"{who} stands in for triqs_cthyb.Solver / triqs_hubbardI.Solver: the "
                      f"keyword(s) {new} have no effect on it", IgnoredParameterWarning,
                      stacklevel=stacklevel)
        if reported is not None:
            reported.update(new)
    return {k: v for k, v in params.items() if k in own}, foreign
