# SPDX-License-Identifier: Apache-2.0
"""U scans (hysteresis sweeps) of the Mott transition with any solver and lattice.

Up sweep: increasing ``U`` from the metallic start, each ``U`` continuing from
the previous solution; down sweep: decreasing ``U`` from the insulating start.
Where the solver has a coexistence region (first-order Mott transition below
the critical end point), the up sweep stays metallic up to ``U_c2`` and the
down sweep insulating down to ``U_c1``: for IPT on the Bethe lattice at
``beta = 50``, ``U_c1 ~ 2.57`` and ``U_c2 ~ 2.97`` (doc/dmft.rst).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._archive import ArchiveTarget, storable
from .lattice import Bethe
from .loop import check_loop_parameters, run_dmft
from .observables import INSULATOR_THRESHOLD

__all__ = ["Sweep", "UScan", "scan_U", "DIRECTIONS"]

#: Accepted values of ``direction``.
DIRECTIONS = ("up", "down", "both")


@dataclass
class Sweep:
    """One sweep of a U scan; arrays ordered by increasing ``U`` whatever the direction.

    Attributes
    ----------
    solver : str
    direction : {'up', 'down'}
        ``'up'``: computed in increasing ``U`` from the metal; ``'down'``: in
        decreasing ``U`` from the insulator.
    beta : float
    U : ndarray (n_U,)
    Z : ndarray (n_U,)
        ``Z0 = 1/(1 - Im Sigma(i w_0)/w_0)``, spin average (finite-T estimate).
    n : ndarray (n_U,)
        Total filling ``n_up + n_dn``.
    double_occupancy : ndarray (n_U,)
        ``<n_up n_dn>`` (NaN where the solver does not give it).
    magnetisation : ndarray (n_U,)
        ``n_up - n_dn`` of the impurity (staggered on an antiferromagnetic lattice).
    g_beta_half : ndarray (n_U,)
        ``-beta G(beta/2)/pi``, spin average.
    insulating : ndarray (n_U,) of bool
        ``g_beta_half < threshold``.
    converged : ndarray (n_U,) of bool
    iterations : ndarray (n_U,) of int
    fallback_iterations : ndarray (n_U,) of int
        Iterations served by the reference ED instead of the ML model (MLSolver's
        fallback); 0 for the other solvers.
    out_of_domain_iterations : ndarray (n_U,) of int
        Iterations whose input the ML model was not trusted for.
    threshold : float
        The insulator threshold used.
    runs : list of DMFTRun
        The full results, in the order of ``U`` (empty if not kept).
    """

    solver: str
    direction: str
    beta: float
    U: np.ndarray
    Z: np.ndarray
    n: np.ndarray
    double_occupancy: np.ndarray
    g_beta_half: np.ndarray
    insulating: np.ndarray
    converged: np.ndarray
    iterations: np.ndarray
    fallback_iterations: np.ndarray = None
    out_of_domain_iterations: np.ndarray = None
    magnetisation: np.ndarray = None
    threshold: float = INSULATOR_THRESHOLD
    runs: list = field(default_factory=list)

    def __post_init__(self):
        for key in ("fallback_iterations", "out_of_domain_iterations"):
            if getattr(self, key) is None:
                setattr(self, key, np.zeros(self.U.size, int))
        if self.magnetisation is None:
            self.magnetisation = np.zeros(self.U.size)

    @classmethod
    def from_runs(cls, solver, direction, beta, runs, threshold=INSULATOR_THRESHOLD,
                  keep_runs=True):
        runs = sorted(runs, key=lambda r: r.U)
        g = np.array([r.g_beta_half for r in runs])
        return cls(solver=solver, direction=direction, beta=float(beta),
                   U=np.array([r.U for r in runs]),
                   Z=np.array([float(np.mean(r.Z)) for r in runs]),
                   n=np.array([r.n for r in runs]),
                   double_occupancy=np.array([r.double_occupancy for r in runs]),
                   g_beta_half=g, insulating=g < threshold,
                   converged=np.array([r.converged for r in runs], bool),
                   iterations=np.array([r.iterations for r in runs], int),
                   fallback_iterations=np.array([int(r.history.fallback.sum()) for r in runs],
                                                int),
                   out_of_domain_iterations=np.array(
                       [int(r.history.out_of_domain.sum()) for r in runs], int),
                   magnetisation=np.array([r.magnetisation for r in runs]),
                   threshold=float(threshold), runs=list(runs) if keep_runs else [])

    def as_dict(self) -> dict:
        """The arrays and labels (for archives and JSON)."""
        return {"solver": self.solver, "direction": self.direction, "beta": self.beta,
                "U": self.U, "Z": self.Z, "n": self.n, "double_occupancy": self.double_occupancy,
                "g_beta_half": self.g_beta_half, "insulating": self.insulating,
                "converged": self.converged, "iterations": self.iterations,
                "fallback_iterations": self.fallback_iterations,
                "out_of_domain_iterations": self.out_of_domain_iterations,
                "magnetisation": self.magnetisation, "threshold": self.threshold}


@dataclass
class UScan:
    """Result of :func:`scan_U`: the up and/or down sweep of one solver.

    Attributes
    ----------
    solver : str
    beta : float
    U : ndarray (n_U,)
        The scanned values, increasing.
    up, down : Sweep or None
    """

    solver: str
    beta: float
    U: np.ndarray
    up: Sweep | None = None
    down: Sweep | None = None

    @property
    def sweeps(self) -> list:
        """The sweeps computed, up first."""
        return [s for s in (self.up, self.down) if s is not None]

    def coexistence(self) -> np.ndarray:
        """The ``U`` where the up sweep is metallic and the down sweep insulating.

        Returns
        -------
        ndarray (n,)
            Empty when only one direction was computed or there is no hysteresis.
        """
        if self.up is None or self.down is None:
            return np.zeros(0)
        return self.U[~self.up.insulating & self.down.insulating]


def scan_U(solver, U_values, beta, *, direction="both", lattice=None, mu=None, n_iw=1025,
           n_tau=10001, n_l=30, mixing=0.5, tol=1e-6, max_iter=300, solver_options=None,
           paramagnetic=None, start_up="metal", start_down="insulator",
           threshold=INSULATOR_THRESHOLD, keep_runs=True, archive=None, archive_group=None,
           archive_every=0, callback=None) -> UScan:
    """Hysteresis scan in ``U``: continue each ``U`` from the previous one's solution.

    Parameters
    ----------
    solver : str
        Registry name of the impurity solver.
    U_values : sequence of float
        Interactions (>= 0, distinct; any order: they are sorted).
    beta : float
    direction : {'up', 'down', 'both'}
        ``'up'`` from ``start_up`` in increasing ``U``, ``'down'`` from
        ``start_down`` in decreasing ``U``, or both.
    lattice : Lattice, optional
        Default ``Bethe(D=1)``.
    mu : float, optional
        Fixed chemical potential; default ``U/2`` at each ``U`` (half filling on a
        particle-hole symmetric lattice).
    n_iw, n_tau, n_l, mixing, tol, max_iter, solver_options, paramagnetic
        As in :func:`~triqs_mlsolver.dmft.run_dmft` (the same for every ``U``).
    start_up, start_down : 'metal', 'insulator', DMFTRun or ndarray
        Start of the first point of each sweep.
    threshold : float
        ``-beta G(beta/2)/pi`` below which a point is called insulating.
    keep_runs : bool
        Keep every :class:`~triqs_mlsolver.dmft.DMFTRun` in ``Sweep.runs``.
    archive : str, os.PathLike or HDFArchive, optional
        Archive (MPI master only).  Layout: ``<direction>/U_<U>/`` as written by
        :func:`~triqs_mlsolver.dmft.run_dmft` and ``<direction>/summary`` (the
        :class:`Sweep` arrays), under ``archive_group`` if given (a file name
        without a group is truncated first).
    archive_every : int
        Passed to :func:`~triqs_mlsolver.dmft.run_dmft` (default 0: results and
        histories only, no per-iteration Green's functions).
    callback : callable, optional
        ``callback(direction, run)`` after each point.

    Returns
    -------
    UScan
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction={direction!r}; use one of {', '.join(DIRECTIONS)}")
    Us = np.array(sorted(float(u) for u in U_values))
    if Us.size == 0:
        raise ValueError("U_values is empty; give at least one U")
    if np.any(np.diff(Us) == 0):
        raise ValueError(f"U_values has repeated values {Us.tolist()}; give each U once")
    lattice = Bethe() if lattice is None else lattice
    for U in (Us[0], Us[-1]):  # validate everything before the first solve
        check_loop_parameters(solver=solver, U=U, beta=beta, mu=mu, n_iw=n_iw, n_tau=n_tau,
                              n_l=n_l, mixing=mixing, tol=tol, max_iter=max_iter,
                              solver_options=solver_options, lattice=lattice)
    base = "/".join(p for p in (archive_group or "").split("/") if p)
    if archive is not None and not base:
        ArchiveTarget(archive, None, fresh=True)  # truncate the file once
    result = UScan(solver=solver, beta=float(beta), U=Us)
    plan = {"up": (Us, start_up), "down": (Us[::-1], start_down)}
    for d in ("up", "down"):
        if direction not in (d, "both"):
            continue
        values, start = plan[d]
        runs = []
        for U in values:
            group = f"{base}/{d}/U_{U:.6g}".lstrip("/") if archive is not None else None
            run = run_dmft(solver, U, beta, lattice=lattice, mu=mu, n_iw=n_iw, n_tau=n_tau,
                           n_l=n_l, start=start, mixing=mixing, tol=tol, max_iter=max_iter,
                           solver_options=solver_options, paramagnetic=paramagnetic,
                           archive=archive, archive_group=group, archive_every=archive_every)
            runs.append(run)
            start = run
            if callback is not None:
                callback(d, run)
        sweep = Sweep.from_runs(solver, d, beta, runs, threshold, keep_runs)
        setattr(result, d, sweep)
        if archive is not None:
            ArchiveTarget(archive, f"{base}/{d}".lstrip("/"), fresh=False).write(
                {"summary": storable(sweep.as_dict())})
    return result

