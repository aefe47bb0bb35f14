# SPDX-License-Identifier: Apache-2.0
"""The DMFT loop driver: any registered solver, any lattice, linear mixing of ``Delta``.

One iteration ``k`` (paramagnetic by default):

1. solve the AIM ``(U, mu, beta, Delta_k)`` with the registered solver
   (:func:`~triqs_mlsolver.solvers.solve_aim`) -> ``G_imp``, ``Sigma``;
2. lattice self-consistency (:mod:`triqs_mlsolver.dmft.lattice`):
   ``G_loc = int rho(e)/(i w + mu - e - Sigma)``,
   ``Delta_new = i w + mu - Sigma - 1/G_loc`` (Bethe: ``Delta_new = t^2 G_imp``);
3. residual ``dG_k = max_{s,n} |Delta_new - Delta_k| / m2`` with ``m2`` the
   lattice's :attr:`~triqs_mlsolver.dmft.Lattice.second_moment` (``t^2`` on the
   Bethe lattice, where ``dG_k = max |G_imp - G_k|`` with ``G_k = Delta_k/t^2``:
   the ``max |G_new - G|`` of :func:`~triqs_mlsolver.dmft.bethe_dmft`);
   converged when ``dG_k < tol``;
4. linear mixing of the hybridisation,
   ``Delta_{k+1} = a Delta_new + (1 - a) Delta_k`` (``a = mixing``; on the
   Bethe lattice the same as mixing ``G``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .. import __version__
from ..aim.params import AIMParams
from ..gf.transforms import matsubara_freqs
from ..solvers.base import check_options, get_solver, solve_aim
from ._archive import ArchiveTarget, block_gf_iw, block_gf_tau, storable
from .lattice import Bethe, Lattice
from .observables import (
    INSULATOR_THRESHOLD,
    double_occupancy_or_nan,
    g_beta_half,
    quasiparticle_weight,
)

__all__ = ["DMFTHistory", "DMFTRun", "run_dmft", "check_loop_parameters"]


@dataclass
class DMFTHistory:
    """Per-iteration record of a DMFT run (``n`` = iterations done).

    Attributes
    ----------
    dG : ndarray (n,)
        Residual ``max |Delta_new - Delta_in| / m2`` (units of ``G``; on the Bethe
        lattice exactly ``max |G_new - G|``).
    Z : ndarray (n, 2)
        First-Matsubara estimate ``Z0 = 1/(1 - Im Sigma(i w_0)/w_0)`` per spin
        (a finite-temperature estimate of the quasiparticle weight).
    density : ndarray (n, 2)
        ``<n_s>`` of the impurity.
    double_occupancy : ndarray (n,)
        ``<n_up n_dn>`` (NaN where the solver does not give it).
    g_beta_half : ndarray (n,)
        ``-beta G(beta/2)/pi``, spin average.
    fallback : ndarray (n,) bool
        The iteration was served by the reference ED instead of the ML model
        (``MLSolver``'s fallback; always False for the other solvers).
    out_of_domain : ndarray (n,) bool
        The ML model was not trusted for that iteration's input (outside its domain,
        spread too large, invalid answer); with ``fallback='ed'`` the reference answered,
        with ``fallback='none'`` the model's answer was used anyway.
    """

    dG: np.ndarray
    Z: np.ndarray
    density: np.ndarray
    double_occupancy: np.ndarray
    g_beta_half: np.ndarray
    fallback: np.ndarray = None
    out_of_domain: np.ndarray = None

    def __post_init__(self):
        for key in ("fallback", "out_of_domain"):
            if getattr(self, key) is None:
                setattr(self, key, np.zeros(self.dG.size, bool))

    @classmethod
    def from_records(cls, records):
        def col(key, shape, dtype=float):
            return np.array([r.get(key, False) for r in records], dtype).reshape(
                len(records), *shape)

        return cls(dG=col("dG", ()), Z=col("Z", (2,)), density=col("density", (2,)),
                   double_occupancy=col("double_occupancy", ()),
                   g_beta_half=col("g_beta_half", ()), fallback=col("fallback", (), bool),
                   out_of_domain=col("out_of_domain", (), bool))

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("dG", "Z", "density", "double_occupancy",
                                              "g_beta_half", "fallback", "out_of_domain")}

    def __len__(self):
        return self.dG.size


@dataclass
class DMFTRun:
    """Result of :func:`run_dmft`: the last iteration and the history.

    Attributes
    ----------
    solver : str
        Registry name of the impurity solver.
    U, beta, mu : float
    lattice : Lattice
    G_iw, Sigma_iw : complex ndarray (2, 2 n_iw)
        Impurity ``G`` and ``Sigma`` of the last solve (``Sigma`` includes the
        Hartree term).
    G_loc : complex ndarray (2, 2 n_iw)
        Lattice ``G`` of the last iteration (Bethe: the impurity ``G``).
    Delta_iw : complex ndarray (2, 2 n_iw)
        Hybridisation computed from the last solve (not mixed): the input of the
        next iteration, and the start of a continued run (``start=run``).
    G_tau : ndarray (2, n_tau)
    solution : AIMSolution
        The last impurity solution (with the solver's diagnostics).
    Z : ndarray (2,)
        ``Z0 = 1/(1 - Im Sigma(i w_0)/w_0)``, the finite-temperature estimate.
    density : ndarray (2,)
    double_occupancy : float
        NaN if the solver does not give it.
    g_beta_half : float
        ``-beta G(beta/2)/pi`` (spin average), -> ``A(0)`` as ``T -> 0``.
    converged : bool
    iterations : int
    history : DMFTHistory
    parameters : dict
        Everything the run used (as stored in the archive).
    """

    solver: str
    U: float
    beta: float
    mu: float
    lattice: Lattice
    G_iw: np.ndarray
    Sigma_iw: np.ndarray
    G_loc: np.ndarray
    Delta_iw: np.ndarray
    G_tau: np.ndarray
    solution: object
    Z: np.ndarray
    density: np.ndarray
    double_occupancy: float
    g_beta_half: float
    converged: bool
    iterations: int
    history: DMFTHistory
    parameters: dict = field(default_factory=dict)

    @property
    def n(self) -> float:
        """Total filling ``n_up + n_dn`` (1 at half filling)."""
        return float(np.sum(self.density))

    @property
    def magnetisation(self) -> float:
        """``n_up - n_dn`` of the impurity site: on an antiferromagnetic lattice the
        staggered magnetisation (sublattice A)."""
        return float(self.density[0] - self.density[1])

    def is_insulating(self, threshold=INSULATOR_THRESHOLD) -> bool:
        """``-beta G(beta/2)/pi < threshold`` (default 0.1)."""
        return bool(self.g_beta_half < threshold)

    @property
    def insulating(self) -> bool:
        """:meth:`is_insulating` with the default threshold."""
        return self.is_insulating()

    def observables(self) -> dict:
        """Scalars and small arrays of the result (as written to the archive)."""
        return {"Z": self.Z, "density": self.density, "n": self.n,
                "double_occupancy": self.double_occupancy, "g_beta_half": self.g_beta_half,
                "magnetisation": self.magnetisation,
                "insulating": self.insulating, "converged": self.converged,
                "fallback_iterations": int(self.history.fallback.sum()),
                "out_of_domain_iterations": int(self.history.out_of_domain.sum()),
                "fallback_last": bool(self.history.fallback[-1]) if len(self.history)
                else False,
                "iterations": self.iterations}


def _int(v, name, lo):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
        raise ValueError(f"{name}={v!r} must be an integer >= {lo}")
    return int(v)


def _real(v, name, *, lo=None, hi=None, lo_open=False):
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name}={v!r} must be a real number")
    v = float(v)
    bad = not math.isfinite(v) or (lo is not None and (v <= lo if lo_open else v < lo)) or (
        hi is not None and v > hi)
    if bad:
        rng = (f"{'>' if lo_open else '>='} {lo}" if lo is not None else "") + (
            f"{' and ' if lo is not None else ''}<= {hi}" if hi is not None else "")
        raise ValueError(f"{name}={v!r} must be a finite number {rng}".rstrip())
    return v


def check_loop_parameters(*, solver, U, beta, mu, n_iw, n_tau, n_l, mixing, tol, max_iter,
                          solver_options, lattice):
    """Validate the loop parameters (raises ``ValueError``, ``KeyError`` or
    ``UnknownParameterError`` naming the fix) before any solve.

    Returns ``(mu, options, lattice)``: ``mu`` defaulted to ``U/2``, the solver
    options as given (checked against the solver's registered names), the lattice
    defaulted to ``Bethe()``."""
    spec = get_solver(solver)  # KeyError listing the registered names
    options = check_options(spec, dict(solver_options or {}))
    _real(U, "U", lo=0.0)
    _real(beta, "beta", lo=0.0, lo_open=True)
    mu = U / 2 if mu is None else _real(mu, "mu")
    _int(n_iw, "n_iw", 1)
    _int(n_tau, "n_tau", 3)
    _int(n_l, "n_l", 1)
    _real(mixing, "mixing", lo=0.0, hi=1.0, lo_open=True)
    _real(tol, "tol", lo=0.0, lo_open=True)
    _int(max_iter, "max_iter", 1)
    lattice = Bethe() if lattice is None else lattice
    if not isinstance(lattice, Lattice):
        raise ValueError(
            f"lattice={lattice!r} is not a Lattice; use Bethe(D), DOSLattice(energies, "
            "weights) or KSumLattice(dispersion, k_points)"
        )
    return float(mu), {k: v for k, v in options.items() if k in (solver_options or {})}, lattice


def _paramagnetic(paramagnetic, lattice):
    """The ``paramagnetic`` in force: default True, False on an antiferromagnetic lattice."""
    afm = bool(getattr(lattice, "antiferromagnetic", False))
    if paramagnetic is None:
        return not afm
    if paramagnetic and afm:
        raise ValueError(
            f"paramagnetic=True averages the spins, which removes the Néel order the "
            f"{lattice.name} lattice describes; leave paramagnetic out (or False) there")
    return bool(paramagnetic)


def run_dmft(solver, U, beta, *, lattice=None, mu=None, n_iw=1025, n_tau=10001, n_l=30,
             start="metal", mixing=0.5, tol=1e-6, max_iter=300, solver_options=None,
             paramagnetic=None, ph_symmetric=None, archive=None, archive_group=None,
             archive_every=1, callback=None) -> DMFTRun:
    """Single-band DMFT with the registered impurity ``solver`` on ``lattice``.

    The iteration is described in :mod:`triqs_mlsolver.dmft.loop`: impurity
    solve, lattice self-consistency, residual ``dG`` (units of ``G``), linear
    mixing of ``Delta``.

    Parameters
    ----------
    solver : str
        Registry name (``'ipt'``, ``'hubbard_i'``, ``'ed'``, ``'nca'``, ...; any
        name :func:`~triqs_mlsolver.solvers.available_solvers` lists).
    U : float
        Hubbard interaction (>= 0, units of ``D``).
    beta : float
        Inverse temperature (units of ``1/D``).
    lattice : Lattice, optional
        Default ``Bethe(D=1)``.
    mu : float, optional
        Chemical potential; default ``U/2`` (half filling on a particle-hole
        symmetric lattice).
    n_iw, n_tau, n_l : int
        Positive Matsubara frequencies, tau points, Legendre coefficients of the
        impurity solves.
    start : 'metal', 'insulator', DMFTRun or complex ndarray (2, 2 n_iw)
        Initial hybridisation: the lattice with the Hartree self-energy
        (``'metal'``) or the atomic one ``U/2 + U^2/(4 i w)`` (``'insulator'``,
        two Hubbard bands); a previous run (its ``Delta_iw``: continuation, e.g.
        in a U scan); or ``Delta_iw`` itself.
    mixing : float
        Weight ``a`` in ``(0, 1]`` of the new ``Delta`` (1: no mixing).
    tol : float
        Stop when ``dG < tol``.
    max_iter : int
        Maximum number of iterations (the result then has ``converged=False``).
    solver_options : dict, optional
        Options of the solver (its registered option names; unknown ones are an
        error), e.g. ``{'n_bath': 4}`` for ``'ed'``.
    paramagnetic : bool, optional
        Average the two spins of ``G_imp`` and ``Sigma`` before the self-consistency.
        Default (None): True, except on an antiferromagnetic lattice
        (:class:`~triqs_mlsolver.dmft.lattice.BetheAFM`), where it must be False.
    ph_symmetric : bool, optional
        Keep ``Re Delta = 0`` exactly (particle-hole symmetry; round-off
        otherwise grows into a spurious symmetry-broken solution, PHYSICS.md
        §2.1).  Default (None): on when the lattice is particle-hole symmetric,
        ``mu = U/2`` and ``paramagnetic``.
    archive : str, os.PathLike or HDFArchive, optional
        Write the run in the TRIQS HDF5 scheme (MPI master only; layout below).
        A file name is truncated when ``archive_group`` is None, otherwise the
        file is kept and the group replaced.
    archive_group : str, optional
        Group path inside the archive.
    archive_every : int
        Write ``iteration_<k>/`` every ``archive_every`` iterations and at the last
        one (0: only the parameters, history and result).
    callback : callable, optional
        ``callback(iteration, info)`` after each iteration; ``info`` has ``dG``,
        ``Z``, ``density``, ``double_occupancy``, ``g_beta_half``.

    Returns
    -------
    DMFTRun

    Notes
    -----
    Archive layout (``G`` = ``BlockGf`` with ``gf_struct=[('up', 1), ('down', 1)]``)::

        parameters        dict: solver, U, beta, mu, lattice, n_iw, ..., solver_options
        iteration_<k>/    G_iw, Sigma_iw (impurity output), Delta_iw (its input)
        history           dict of arrays: dG (n,), Z (n, 2), density (n, 2),
                          double_occupancy (n,), g_beta_half (n,)
        result/           G_iw, Sigma_iw, G_loc, Delta_iw, G_tau; observables (dict)

    Iterations are numbered from 1.  Under MPI every rank runs the loop (the
    solvers are serial and deterministic) and only the master writes;
    ``triqs-mlsolver dmft`` shares whole sweeps out over the ranks instead.
    """
    mu, options, lattice = check_loop_parameters(
        solver=solver, U=U, beta=beta, mu=mu, n_iw=n_iw, n_tau=n_tau, n_l=n_l, mixing=mixing,
        tol=tol, max_iter=max_iter, solver_options=solver_options, lattice=lattice)
    archive_every = _int(archive_every, "archive_every", 0)
    paramagnetic = _paramagnetic(paramagnetic, lattice)
    U, beta = float(U), float(beta)
    iw = matsubara_freqs(beta, n_iw)
    if ph_symmetric is None:
        ph_symmetric = bool(lattice.particle_hole_symmetric and paramagnetic
                            and abs(mu - U / 2) <= 1e-12 * (1 + U))

    def symmetrise(delta):
        if paramagnetic:
            delta = np.tile(delta.mean(axis=0), (2, 1))
        return 1j * delta.imag if ph_symmetric else delta

    if isinstance(start, str):
        start_label = start
        delta_in = lattice.initial_hybridisation(start, iw, mu, U)
    elif isinstance(start, DMFTRun):
        start_label = f"previous run (U={start.U:g})"
        delta_in = np.array(start.Delta_iw, complex)
    else:
        start_label = "array"
        delta_in = np.array(start, dtype=complex)
        if delta_in.ndim == 1:
            delta_in = np.tile(delta_in, (2, 1))
    if delta_in.shape != (2, 2 * n_iw):
        raise ValueError(
            f"the start hybridisation has shape {delta_in.shape}, expected (2, {2 * n_iw}) "
            f"for n_iw={n_iw}; continue from a run with the same n_iw"
        )
    if not np.all(np.isfinite(delta_in)):
        raise ValueError("the start hybridisation contains NaN or infinite values")
    delta_in = symmetrise(delta_in)

    parameters = {
        "solver": solver, "U": U, "beta": beta, "mu": mu, "lattice": lattice.describe(),
        "n_iw": int(n_iw), "n_tau": int(n_tau), "n_l": int(n_l), "start": start_label,
        "mixing": float(mixing), "mixed_quantity": "Delta", "tol": float(tol),
        "max_iter": int(max_iter), "paramagnetic": bool(paramagnetic),
        "ph_symmetric": bool(ph_symmetric), "solver_options": dict(options),
        "package_version": __version__,
    }
    target = ArchiveTarget(archive, archive_group, fresh=True)
    target.write({"parameters": storable(parameters)})

    m2 = lattice.second_moment
    records, converged, sol = [], False, None
    G_loc = delta_new = None
    it = 0
    for it in range(1, max_iter + 1):
        params = AIMParams(U=U, mu=mu, beta=beta, Delta_iw=delta_in, D=lattice.half_bandwidth)
        sol = solve_aim(solver, params, n_iw=n_iw, n_tau=n_tau, n_l=n_l, **options)
        G_imp, Sigma = sol.G_iw, sol.Sigma_iw
        if paramagnetic:
            G_imp = np.tile(G_imp.mean(axis=0), (2, 1))
            Sigma = np.tile(Sigma.mean(axis=0), (2, 1))
        G_loc, delta_new = lattice.hybridisation(iw, mu, Sigma, G_imp)
        delta_new = symmetrise(delta_new)
        dG = float(np.abs(delta_new - delta_in).max() / m2)
        rec = {"dG": dG, "Z": quasiparticle_weight(sol.Sigma_iw, beta),
               "density": np.asarray(sol.density, float),
               "double_occupancy": double_occupancy_or_nan(sol),
               "g_beta_half": float(g_beta_half(sol.G_tau, beta).mean()),
               "fallback": bool(sol.diagnostics.get("fallback_used", False)),
               "out_of_domain": bool(sol.diagnostics.get("out_of_domain"))}
        records.append(rec)
        converged = dG < tol
        last = converged or it == max_iter
        if archive_every and (it % archive_every == 0 or last):
            target.write({"G_iw": block_gf_iw(sol.G_iw, beta),
                          "Sigma_iw": block_gf_iw(sol.Sigma_iw, beta),
                          "Delta_iw": block_gf_iw(delta_in, beta)}, subgroup=f"iteration_{it}")
            target.write({"history": DMFTHistory.from_records(records).as_dict()})
        if callback is not None:
            callback(it, rec)
        if converged:
            break
        delta_in = mixing * delta_new + (1 - mixing) * delta_in

    history = DMFTHistory.from_records(records)
    last_rec = records[-1]
    run = DMFTRun(
        solver=solver, U=U, beta=beta, mu=mu, lattice=lattice, G_iw=sol.G_iw,
        Sigma_iw=sol.Sigma_iw, G_loc=G_loc, Delta_iw=delta_new, G_tau=sol.G_tau, solution=sol,
        Z=last_rec["Z"], density=last_rec["density"],
        double_occupancy=last_rec["double_occupancy"], g_beta_half=last_rec["g_beta_half"],
        converged=bool(converged), iterations=it, history=history, parameters=parameters)
    write_run(target, run)
    return run


def write_run(target: ArchiveTarget, run: DMFTRun, *, parameters=False):
    """Write the history and the ``result/`` group of ``run`` (and its parameters if asked)."""
    if not target.active:
        return
    items = {"history": run.history.as_dict()}
    if parameters:
        items["parameters"] = storable(run.parameters)
    target.write(items)
    b = run.beta
    target.write({"G_iw": block_gf_iw(run.G_iw, b), "Sigma_iw": block_gf_iw(run.Sigma_iw, b),
                  "G_loc": block_gf_iw(run.G_loc, b), "Delta_iw": block_gf_iw(run.Delta_iw, b),
                  "G_tau": block_gf_tau(run.G_tau, b),
                  "observables": storable(run.observables())}, subgroup="result")
