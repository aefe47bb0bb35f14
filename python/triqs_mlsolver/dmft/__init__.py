# SPDX-License-Identifier: Apache-2.0
"""DMFT: lattice self-consistency, the loop driver, observables and U scans.

Layers (numerics -> building blocks -> drivers):

* :mod:`~triqs_mlsolver.dmft.lattice`: ``Bethe``, ``DOSLattice``, ``KSumLattice``
  and the pure functions behind them (``G_loc`` from ``Sigma``, Weiss field);
* :mod:`~triqs_mlsolver.dmft.observables`: ``Z0``, ``-beta G(beta/2)/pi``, ...;
* :mod:`~triqs_mlsolver.dmft.loop`: :func:`run_dmft` (any registered solver,
  any lattice, mixing, convergence, history, TRIQS-format archive);
* :mod:`~triqs_mlsolver.dmft.scan`: :func:`scan_U` (up/down hysteresis sweeps);
* :mod:`~triqs_mlsolver.dmft.bethe`: :func:`bethe_dmft`, the original plain
  Bethe loop (kept unchanged).
"""

from .bethe import DMFTResult, bethe_dmft, initial_g
from .lattice import (
    Bethe,
    DOSLattice,
    KSumLattice,
    Lattice,
    dos_g_loc,
    hypercubic_dispersion,
    semicircle_dos,
    semicircle_g,
    uniform_k_grid,
    weiss_hybridisation,
)
from .loop import DMFTHistory, DMFTRun, run_dmft
from .observables import (
    INSULATOR_THRESHOLD,
    g_beta_half,
    is_insulating,
    quasiparticle_weight,
)
from .scan import Sweep, UScan, scan_U

__all__ = [
    "DMFTResult", "bethe_dmft", "initial_g", "semicircle_g",
    "Lattice", "Bethe", "DOSLattice", "KSumLattice", "semicircle_dos", "dos_g_loc",
    "weiss_hybridisation", "hypercubic_dispersion", "uniform_k_grid",
    "DMFTHistory", "DMFTRun", "run_dmft",
    "INSULATOR_THRESHOLD", "quasiparticle_weight", "g_beta_half", "is_insulating",
    "Sweep", "UScan", "scan_U",
]
