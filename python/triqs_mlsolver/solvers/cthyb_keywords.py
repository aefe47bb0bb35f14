# SPDX-License-Identifier: Apache-2.0
"""The ``triqs_cthyb.Solver.solve()`` keywords, for solvers that stand in for cthyb.

One table for :class:`~triqs_mlsolver.mlsolver.MLSolver` and the solvers served
by ``triqs-mlsolver run``: Monte Carlo and tail-fit parameters are accepted
without effect (reported once per solver object with an
:class:`IgnoredParameterWarning`), requests for observables a deterministic
solver does not compute are errors unless harmless (off / default), and
unknown keywords are errors.
"""

from __future__ import annotations

import warnings

from ..errors import TriqsMLSolverWarning, UnknownParameterError

__all__ = ["IgnoredParameterWarning", "CTHYB_NO_EFFECT", "CTHYB_NOT_SUPPORTED", "harmless_off",
           "split_cthyb_keywords", "check_not_supported"]


class IgnoredParameterWarning(TriqsMLSolverWarning):
    """A ``triqs_cthyb`` keyword that has no effect on the served (deterministic) solver."""


# -- triqs_cthyb / triqs_hubbardI keyword interfaces -----------------------------------------
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
def harmless_off(value):
    return value is None or value is False or (isinstance(value, (int, float)) and value == 0)


#: ``triqs_cthyb`` keywords that ask for something the served solvers do not do, each with
#: the test of a harmless value (the default): anything else is an error.
CTHYB_NOT_SUPPORTED = {
    **{key: harmless_off for key in (
        "measure_density_matrix", "measure_pert_order", "measure_O_tau", "measure_chi_SzSz",
        "measure_G2_tau", "measure_G2_iw", "measure_G2_iw_nfft", "measure_G2_iw_pp",
        "measure_G2_iw_pp_nfft", "measure_G2_iw_ph", "measure_G2_iw_ph_nfft",
        "measure_G2_iwll_pp", "measure_G2_iwll_ph", "h_loc0")},
    # a single orbital holds 0..2 electrons: only a restriction of that range is refused
    "loc_n_min": lambda v: v <= 0, "loc_n_max": lambda v: v >= 2,
}
#: Deprecated ``triqs_cthyb`` spellings, renamed as cthyb does.
_CTHYB_RENAMED = {"measure_g_tau": "measure_G_tau", "measure_g_l": "measure_G_l"}


def check_not_supported(params, harmless, who, what):
    for key, is_harmless in harmless.items():
        if key in params and not is_harmless(params[key]):
            raise ValueError(
                f"{key}={params[key]!r} asks {what} for something the solver served by "
                f"`triqs-mlsolver run` ({who}) does not do (it computes G_iw, Sigma_iw, G_tau "
                f"and G_l); remove it from the call, or run the script with plain python "
                f"where {what} is installed"
            )




def split_cthyb_keywords(params, own, who, *, reported=None, stacklevel=3):
    """Check ``params`` given to a cthyb stand-in; returns ``(own_params, ignored)``.

    Parameters
    ----------
    params : dict
        The keywords of ``solve()`` (without ``h_int``).
    own : iterable of str
        The stand-in's own options (passed on).
    who : str
        The solver's name, for the messages.
    reported : set, optional
        Keywords already reported by this solver object: each is reported once
        (the set is updated).

    Raises
    ------
    UnknownParameterError
        A keyword that is neither cthyb's nor the solver's.
    ValueError
        A cthyb measurement the stand-in does not make was switched on.
    """
    params = dict(params)
    for old, new in _CTHYB_RENAMED.items():
        if old in params:
            params[new] = params.pop(old)
    check_not_supported(params, CTHYB_NOT_SUPPORTED, who, "triqs_cthyb")
    own = set(own)
    unknown = sorted(set(params) - CTHYB_NO_EFFECT - set(CTHYB_NOT_SUPPORTED) - own)
    if unknown:
        raise UnknownParameterError(
            f"solve() got unknown keyword(s) {unknown}; the cthyb stand-in {who} takes h_int, "
            f"triqs_cthyb's solve parameters (n_cycles, length_cycle, ...) and its own options "
            f"{sorted(own) or '(none)'}; check the spelling"
        )
    ignored = sorted(k for k in params if k not in own)
    new = [k for k in ignored if reported is None or k not in reported]
    if new:
        warnings.warn(f"{who} stands in for triqs_cthyb.Solver: the Monte Carlo keyword(s) "
                      f"{new} have no effect", IgnoredParameterWarning, stacklevel=stacklevel)
        if reported is not None:
            reported.update(new)
    return {k: v for k, v in params.items() if k in own}, {k: params[k] for k in ignored}
