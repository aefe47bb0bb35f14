# SPDX-License-Identifier: Apache-2.0
"""What a fitted-bath cheap solver leaves out of the hybridisation: its fit residual.

A cheap ED solver with ``k`` bath sites (``ed<k>``, ``ed<k>w``, ``ed<k>e``) fits
``Delta(i w_n)`` by ``k`` sites; its error comes from what the fit misses, the residual
``R(i w_n) = Delta(i w_n) - Delta_fit(i w_n)``.  The other features see ``R`` only through
its consequences (the cheap solvers' Green's functions).  A model with ``[features]
fit_residual = ["ed4e", "ed5e"]`` sees ``R`` itself at the first ``fit_residual_n``
positive Matsubara frequencies, for the row's own spin and the other spin (session 22,
doc/ml.rst "Fit-residual features").

``R`` of a row is exact where the fitted bath is known:

* at inference the solver's own fit (``AIMSolution.diagnostics['bath_fit']``) and the
  input's ``Delta`` -- the residual of the bath that solver diagonalised;
* in training the same fit made again from the database's parameters
  (:func:`triqs_mlsolver.solvers.ed.fit_discrete_bath`: the code and the arguments of the
  generation, ``n_iw`` of the database), so the two agree to rounding (tested).

A bath with exactly ``k`` sites is not fitted: ``R = 0``.  Stored in ``params`` as
``"fitres"`` (own spin) and ``"fitres_o"`` (other spin), shape ``(rows, solvers, 2 n)``:
real parts, then imaginary parts, in units of ``D``.  The particle-hole image maps ``R``
to ``-conj(R)`` (``eps -> -eps``: ``Delta(i w) -> -conj(Delta(i w))``).
"""

from __future__ import annotations

import re

import numpy as np

from ..aim.params import delta_from_bath
from ..gf.transforms import matsubara_freqs

__all__ = ["FIT_RESIDUAL_N", "fit_solver", "residual", "rows_from_database",
           "rows_from_solutions", "ph_image", "feature_block"]

#: Default number of Matsubara frequencies of the residual.
FIT_RESIDUAL_N = 8

#: Residual norms below this (units of D) count as this (an exact bath: R = 0).
RESIDUAL_FLOOR = 1e-12


def fit_solver(name: str) -> tuple[int, str]:
    """``(k, fit weight)`` of a registered fitted-bath ED solver ``name``; ``ValueError``
    for any other solver."""
    m = re.fullmatch(r"ed([1-5])([we]?)", str(name))
    if not m:
        raise ValueError(
            f"fit_residual: {name!r} is not a fitted-bath ED solver; use one of 'ed<k>', "
            "'ed<k>w', 'ed<k>e' (k = 1 ... 5), e.g. fit_residual = ['ed4e', 'ed5e']")
    return int(m[1]), ("uniform" if m[2] == "" else "1/w")


def _iw(beta, n):
    """``i w_m``, ``m < n`` (the first positive fermionic frequencies)."""
    return matsubara_freqs(beta, n)[n:]


def residual(delta_pos, beta, fit, n) -> np.ndarray:
    """``R(i w_m) = Delta(i w_m) - Delta_fit(i w_m)``, ``m < n`` (complex, ``(2, n)``).

    ``delta_pos`` (2, >= n): ``Delta_s`` at the first positive frequencies; ``fit``: a bath-fit
    report (``eps_k``, ``V_k`` per spin) or None (the bath was not fitted: ``R = 0``)."""
    delta_pos = np.asarray(delta_pos, complex)[:, :n]
    if fit is None:
        return np.zeros((2, n), complex)
    return delta_pos - delta_from_bath(fit["eps_k"], fit["V_k"], _iw(beta, n))


def _positive(params, n):
    """``Delta_s(i w_m)``, ``m < n``, of an :class:`~triqs_mlsolver.aim.AIMParams`."""
    if params.Delta_iw is not None:
        h = params.Delta_iw.shape[1] // 2
        if h < n:
            raise ValueError(f"the fit-residual features need Delta at {n} positive Matsubara "
                             f"frequencies; this Delta_iw has {h} (n_iw = {h}): use n_iw >= {n}")
        return params.Delta_iw[:, h:h + n]
    return delta_from_bath(params.eps_k, params.V_k, _iw(params.beta, n))


def _pack(R):
    """(..., n) complex -> (..., 2 n) real."""
    return np.concatenate([R.real, R.imag], axis=-1)


def _rows(R_sample, spins):
    """``(own, other)`` arrays of the rows: ``R_sample`` (solvers, 2, n) complex; ``spins``:
    the own spin of each row."""
    own = np.stack([_pack(R_sample[:, s]) for s in spins])
    other = np.stack([_pack(R_sample[:, 1 - s]) for s in spins])
    return own, other


def rows_from_solutions(params, solutions: dict, solvers, n, spins) -> dict:
    """``{"fitres": ..., "fitres_o": ...}`` of the rows ``spins`` of one input from the
    solvers' own fits (``diagnostics['bath_fit']``) and ``params``' ``Delta``, in units of
    ``params.D``."""
    pos = _positive(params, n)
    R = np.stack([residual(pos, params.beta, solutions[s].diagnostics.get("bath_fit"), n)
                  for s in solvers]) / params.D
    own, other = _rows(R, spins)
    return {"fitres": own, "fitres_o": other}


def rows_from_database(db, index, spin, solvers, n) -> dict:
    """``{"fitres": ..., "fitres_o": ...}`` of database rows (sample ``index[i]``, own spin
    ``spin[i]``; a spin-symmetric row: spin 0), the fits made again as at generation."""
    from ..solvers.ed import fit_discrete_bath

    n_iw = int(db.attrs["n_iw"])
    kw = [fit_solver(s) for s in solvers]
    index = np.asarray(index, np.int64)
    spin = np.zeros(len(index), np.int64) if spin is None else np.asarray(spin, np.int64)
    own = np.empty((len(index), len(solvers), 2 * n))
    other = np.empty_like(own)
    last, R = None, None  # the rows of a sample follow each other: fit each sample once
    for i, (j, s) in enumerate(zip(index, spin)):
        if j != last:
            p = db.aim_params(int(j))
            pos = _positive(p, n)
            R = np.stack([residual(pos, p.beta, fit_discrete_bath(p, k, n_iw, fit_weight=w), n)
                          for k, w in kw]) / p.D
            last = j
        o, t = _rows(R, [int(s)])
        own[i], other[i] = o[0], t[0]
    return {"fitres": own, "fitres_o": other}


def ph_image(block) -> np.ndarray:
    """The residual block of the particle-hole image: ``R -> -conj(R)``."""
    block = np.array(block, float)
    n = block.shape[-1] // 2
    block[..., :n] *= -1.0
    return block


def feature_block(params: dict) -> np.ndarray:
    """The feature columns: per spin (own, then other) and per solver ``Re R / |R|``,
    ``Im R / |R|`` and ``log10 |R|`` (``|R|``: the RMS over the frequencies, at least
    :data:`RESIDUAL_FLOOR`)."""
    cols = []
    for key in ("fitres", "fitres_o"):
        F = np.asarray(params[key], float)
        for j in range(F.shape[1]):
            x = F[:, j]
            n = x.shape[1] // 2
            nrm = np.maximum(np.sqrt((x[:, :n] ** 2 + x[:, n:] ** 2).mean(axis=1)),
                             RESIDUAL_FLOOR)
            cols += [x / nrm[:, None], np.log10(nrm)[:, None]]
    return np.concatenate(cols, axis=1)
