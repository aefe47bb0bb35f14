# SPDX-License-Identifier: Apache-2.0
"""``triqs-mlsolver run``: an unmodified TRIQS script, its impurity solver served here.

::

    triqs-mlsolver run [--solver ml|ipt|hubbard_i|nca|ed] [--model MODEL] [--n-bath K]
                       [--fallback ed|none|raise] [--serve-hubbardI] SCRIPT.py [ARGS...]

runs ``SCRIPT.py`` as ``python SCRIPT.py ARGS...`` would (``__name__ ==
"__main__"``, ``sys.argv == [SCRIPT.py, *ARGS]``, the script's folder first on
``sys.path``), with import hooks in place for the duration of the run only:

* ``triqs_cthyb`` is a module whose ``Solver`` is the solver chosen with
  ``--solver`` (default ``ml``: :class:`triqs_mlsolver.mlsolver.MLSolver`);
  it takes ``triqs_cthyb.Solver``'s constructor and ``solve()`` keywords and
  fills its result attributes (``G_iw``, ``Sigma_iw``, ``G_tau``, ``G_l``,
  ``Delta_tau``, ``G_iw_raw``, ``Sigma_iw_raw``, ``Delta_infty``, ``h_loc``,
  ``density_matrix``, ``h_loc_diagonalization``, ...); ``--model`` picks the model
  of ``MLSolver`` and ``--fallback`` what it does when the model cannot be trusted,
  ``--n-bath`` the bath size of ``ed``;
* with ``--serve-hubbardI``, ``triqs_hubbardI.Solver`` is the Hubbard-I solver
  of this package, with ``triqs_hubbardI``'s keywords and results
  (:class:`HubbardIInterface`: atomic ``G_iw``, ``Sigma_iw``, real-frequency ``G_w``,
  ``Sigma_w``, any mesh size);
* where triqs_mlsolver uses its light TRIQS layer (TRIQS is not installed, or
  ``TRIQS_MLSOLVER_BACKEND=light``), ``triqs``, ``triqs.gf``, ``triqs.gfs``,
  ``triqs.operators`` (with ``.util``), ``triqs.utility.mpi``, ``h5`` and
  the TRIQS 1.x/2.x names ``pytriqs.gf``, ``pytriqs.gf.local``,
  ``pytriqs.archive``, ``pytriqs.operators``, ``pytriqs.utility.mpi`` are
  served from :mod:`triqs_mlsolver.gf`, :mod:`triqs_mlsolver.operators` and
  :mod:`triqs_mlsolver.mpi`.  Where real TRIQS is in use, it is never shadowed.

How it works
------------
:class:`ServedTriqs` is a ``sys.meta_path`` finder and loader.  Entering it
imports everything the served modules need (so nothing imports a TRIQS name
while the hooks are active by accident), takes the entries of the served
namespaces out of ``sys.modules`` (e.g. a real ``triqs_cthyb`` imported
earlier), and puts itself first on ``sys.meta_path``, plus a fallback finder
last that turns the import of a missing TRIQS-ecosystem module
(``triqs_dft_tools``, ...) into a :class:`NotServedError` that says what to
install.  Leaving it removes both finders and restores the ``sys.modules``
entries of the served namespaces exactly as they were; :func:`run_script`
also restores ``sys.argv``, ``sys.path`` and the working directory, and
forgets the modules the script imported from its own folder.  Nothing named
``triqs`` or ``h5`` is ever written to disk.

The protocol solvers (``ipt``, ``hubbard_i``, ``nca``, ``ed``) are wrapped in
:class:`CthybInterface`: ``triqs_cthyb``'s Monte Carlo parameters
(``n_cycles``, ``length_cycle``, ...) are accepted and have no effect (one
:class:`IgnoredParameterWarning` says so), ``measure_density_matrix=True`` is served,
requests for observables the solver does not compute (``measure_G2_*``,
``measure_pert_order=True``, ...) are errors, and so are unknown keywords.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import importlib.abc
import importlib.machinery
import os
import runpy
import sys
import traceback
import types
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..solvers.cthyb_keywords import (
    CTHYB_SERVED,
    IgnoredParameterWarning,
    split_cthyb_keywords,
)

__all__ = [
    "add_parser",
    "run_script",
    "check_n_bath",
    "ServedTriqs",
    "SERVED_SOLVERS",
    "CthybInterface",
    "HubbardIInterface",
    "NotServedError",
    "IgnoredParameterWarning",
]


# -- what serves triqs_cthyb.Solver ---------------------------------------------------------
@dataclass(frozen=True)
class ServedSolver:
    """A choice of ``--solver``: the class that serves ``triqs_cthyb.Solver``.

    Attributes
    ----------
    module, name : str
        Where the class is (imported only when chosen).
    cthyb_compatible : bool
        True if the class already takes ``triqs_cthyb``'s keywords (``MLSolver``);
        otherwise it is a protocol solver and is wrapped in :class:`CthybInterface`.
    description : str
    takes_model : bool
        The class loads a correction model (``model=`` keyword, ``--model``); it is
        resolved before the script starts, so a missing model fails early.
    """

    module: str
    name: str
    cthyb_compatible: bool
    description: str
    takes_model: bool = False


#: ``--solver`` choices.
SERVED_SOLVERS = {
    "ml": ServedSolver("triqs_mlsolver.mlsolver", "MLSolver", True,
                       "MLSolver: cheap solvers corrected by the learned model (default)",
                       takes_model=True),
    "ipt": ServedSolver("triqs_mlsolver.solvers", "IPTSolver", False,
                        "iterated perturbation theory (half filling)"),
    "hubbard_i": ServedSolver("triqs_mlsolver.solvers", "HubbardISolver", False, "Hubbard-I"),
    "nca": ServedSolver("triqs_mlsolver.solvers", "NCASolver", False,
                        "non-crossing approximation"),
    "ed": ServedSolver("triqs_mlsolver.solvers", "EDSolver", False,
                       "exact diagonalisation, the reference (fitted bath grown until "
                       "G(tau) converges; --n-bath fixes it)"),
}
DEFAULT_SOLVER = "ml"


class NotServedError(ModuleNotFoundError):
    """A script imported a TRIQS-ecosystem module that this run cannot provide."""


class CthybInterface:
    """Mixin giving a protocol solver ``triqs_cthyb.Solver``'s signature.

    ``Solver(beta, gf_struct, n_iw=1025, n_tau=10001, n_l=30, delta_interface=False)``
    and ``solve(h_int=..., **cthyb_parameters)`` as in triqs_cthyb 3.x.  The
    Monte Carlo parameters (:data:`CTHYB_NO_EFFECT`) are accepted without effect
    (one :class:`IgnoredParameterWarning` lists them), ``measure_density_matrix=True``
    is served (the density matrix is always there), the options of the served
    solver (e.g. ``n_bath`` of ED) are passed on, and everything else is an error.

    The results are triqs_cthyb's attributes (filled by the protocol solver, see
    :class:`triqs_mlsolver.solvers.base.Solver`): ``G_iw``, ``Sigma_iw``, ``G_tau``,
    ``G_l``, ``Delta_tau`` (the hybridisation read from ``G0_iw``), ``G_iw_raw``,
    ``Sigma_iw_raw`` (copies of ``G_iw``, ``Sigma_iw``: there is no Legendre or tail
    post-processing to undo), ``Delta_infty``, ``h_loc``, ``h_loc0``,
    ``density_matrix``, ``h_loc_diagonalization``, ``solve_parameters`` /
    ``last_solve_parameters`` (with the cthyb keywords given), ``average_sign`` (1.0),
    ``average_order`` and ``auto_corr_time`` (NaN: not applicable), ``solve_status`` (0).

    Attributes
    ----------
    ignored_parameters : list of str
        The triqs_cthyb keywords of the last :meth:`solve` that had no effect.
    default_solve_options : dict
        Options of the served solver that :meth:`solve` passes unless the script gives
        them itself (``n_bath`` of ``ed``, from ``--n-bath``).
    """

    default_solve_options: dict = {}
    _served_as = "triqs_cthyb.Solver"

    def __init__(self, beta, gf_struct, n_iw=1025, n_tau=10001, n_l=30, delta_interface=False):
        if delta_interface:
            raise ValueError(
                "delta_interface=True (Delta_tau and h_loc0 given instead of G0_iw) is not "
                "supported by the solver served by `triqs-mlsolver run`; fill S.G0_iw instead"
            )
        super().__init__(beta=beta, gf_struct=gf_struct, n_iw=n_iw, n_tau=n_tau, n_l=n_l)
        self.constr_params["delta_interface"] = False
        self.ignored_parameters = []
        self._reported = set()

    def solve(self, *, h_int=None, **params):
        """Solve with ``h_int``; ``params`` are ``triqs_cthyb`` keywords or solver options."""
        params = {**self.default_solve_options, **params}
        own, foreign = split_cthyb_keywords(params, self.solver_options(),
                                            f"{self.solver_name!r}", reported=self._reported)
        super().solve(h_int=h_int, **own)
        self.last_solve_parameters.update(foreign)
        self.ignored_parameters = sorted(k for k in foreign if k not in CTHYB_SERVED)
        return self


class HubbardIInterface:
    """Mixin giving the Hubbard-I protocol solver ``triqs_hubbardI.Solver``'s interface.

    ``Solver(beta, gf_struct, n_iw=1025, n_tau=10001, n_l=30, n_w=500, w_min=-15,
    w_max=15, idelta=0.01)`` and ``solve(h_int=..., calc_gtau=False, calc_gw=False,
    calc_gl=False, calc_dm=False)`` as in triqs_hubbardI 3.x, with its results, all
    of the *atom* (``h_loc = h_int + sum_s eal_s n_s``, the level ``eal`` read from
    ``G0_iw``; :func:`~triqs_mlsolver.solvers.hubbard_i.atomic_solution`):

    * ``G_iw``: the atomic Green's function (triqs_hubbardI's ``atomic_g_iw``, not the
      impurity one with the hybridisation); ``G_tau``, ``G_l``: its exact transforms;
    * ``Sigma_iw = (i w - eal) - 1/G_iw``: the atomic self-energy with ``h_int``'s
      one-body terms;
    * ``G_w = G_at(w + i idelta)`` on ``n_w`` points of ``[w_min, w_max]`` and
      ``Sigma_w = (w - eal) - 1/G_w`` (triqs_hubbardI's formula: it carries ``-i idelta``);
    * ``dm`` (= ``density_matrix``) and ``ad`` (= ``h_loc_diagonalization``), ``eal``
      (per block, ``(1, 1)``), ``fops``, ``G0_w`` (allocated, zero, as in triqs_hubbardI),
      and the cthyb attributes of :class:`~triqs_mlsolver.solvers.base.Solver`.

    Everything is computed at every solve whatever the ``calc_*`` flags (triqs_hubbardI
    leaves the results not asked for at zero).  The meshes may be tiny (``n_iw=5``,
    ``n_tau=2``, ``n_w=2``).  triqs_hubbardI's ``solve()`` ignores every other keyword;
    here the mesh sizes scripts pass to it (``n_iw``, ``n_tau``, ``n_w``, ...) and
    triqs_cthyb's Monte Carlo parameters are accepted and named in an
    :class:`IgnoredParameterWarning`, and anything else (a misspelling) is an error.
    ``Delta_tau`` is not filled (triqs_hubbardI has none).  Stored with
    ``ar['S'] = S`` it reads back as the plain ``HubbardISolver`` (Matsubara results, no
    ``G_w``).
    """

    _served_as = "triqs_hubbardI.Solver"
    _CALC = ("calc_gtau", "calc_gw", "calc_gl", "calc_dm")

    def __init__(self, beta, gf_struct, n_iw=1025, n_tau=10001, n_l=30, n_w=500, w_min=-15,
                 w_max=15, idelta=0.01):
        from .. import gf
        from ..solvers.hubbard_i import real_frequency_mesh

        super().__init__(beta=beta, gf_struct=gf_struct, n_iw=n_iw, n_tau=n_tau, n_l=n_l)
        self.n_w, self.w_min, self.w_max, self.idelta = int(n_w), w_min, w_max, idelta
        self.G0_w = gf.BlockGf(mesh=real_frequency_mesh(w_min, w_max, self.n_w),
                               gf_struct=self.gf_struct)
        self.G_w = self.G0_w.copy()
        self.Sigma_w = self.G0_w.copy()
        self.fops = self.fundamental_operators
        self.eal = {name: np.zeros((1, 1), complex) for name in self.block_names}
        self._reported = set()

    @property
    def dm(self):
        """triqs_hubbardI's name of the atomic density matrix (``density_matrix``)."""
        return self.density_matrix

    @property
    def ad(self):
        """triqs_hubbardI's name of the ``AtomDiag`` of ``h_loc`` (``h_loc_diagonalization``)."""
        return self.h_loc_diagonalization

    def solve(self, *, h_int=None, **params):
        """Solve the atom ``h_int + eal n`` (see the class docstring)."""
        from ..solvers.base import level_from_g0, parse_h_int
        from ..solvers.hubbard_i import atomic_g_w, atomic_solution

        own, foreign = split_cthyb_keywords(params, self._CALC, f"{self.solver_name!r}",
                                            reported=self._reported)
        names = self.block_names
        U, shift = parse_h_int(h_int, names)
        mu_g0 = level_from_g0(np.stack([self.G0_iw[b].data[:, 0, 0] for b in names]),
                              self.beta)
        mu = mu_g0 - shift  # the atomic level: -(eal + h_int's one-body terms)
        sol = atomic_solution(U, mu, self.beta, n_iw=self.n_iw, n_tau=self.n_tau, n_l=self.n_l)
        w = _real_points(self.G_w.mesh)
        g_w = atomic_g_w(U, mu, self.beta, w, self.idelta)
        for s, b in enumerate(names):
            self.eal[b] = np.full((1, 1), -mu_g0[s], dtype=complex)
            self.G_iw[b].data[:, 0, 0] = sol.G_iw[s]
            self.Sigma_iw[b].data[:, 0, 0] = sol.Sigma_iw[s] + shift[s]
            self.G_tau[b].data[:, 0, 0] = sol.G_tau[s]
            self.G_l[b].data[:, 0, 0] = sol.G_l[s]
            self.G_w[b].data[:, 0, 0] = g_w[s]
            self.Sigma_w[b].data[:, 0, 0] = (w + mu_g0[s]) - 1.0 / g_w[s]
        self.G_iw_raw << self.G_iw
        self.Sigma_iw_raw << self.Sigma_iw
        self.solution = sol
        self.last_solve_parameters = {"h_int": str(h_int), "U": U, "mu": mu.tolist(),
                                      **{k: False for k in self._CALC}, **own, **foreign}
        self._set_static_results(h_int=h_int, mu_g0=mu_g0, density=sol.density,
                                 double_occupancy=sol.double_occupancy)
        return self


def _real_points(mesh):
    """The frequencies of a real-frequency mesh (light or TRIQS) as a float array."""
    try:
        return np.asarray([float(np.real(x)) for x in mesh.values()])
    except (AttributeError, TypeError):  # pragma: no cover - TRIQS meshes without values()
        return np.asarray([float(np.real(complex(p))) for p in mesh])


def _unregistered_subclass(name, bases, namespace):
    """A subclass of the protocol solver ``bases[-1]``, stored in HDF5 (and read back) as it.

    ``Solver.__init_subclass__`` registers every solver class under its own HDF5
    Format; a class made for one run must not add entries to that global registry
    (nor collide there, which real TRIQS's ``h5`` refuses), so the class is made with
    an empty ``solver_name`` (no registration) and given the base's afterwards.
    """
    base = bases[-1]
    cls = type(name, bases, {"__module__": __name__, **namespace, "solver_name": "",
                             "_hdf5_format_": f"triqs_mlsolver.{base.__name__}"})
    cls.solver_name = base.solver_name
    return cls


@functools.cache
def _served_class(interface, base, options=()):
    """``base`` with the signature of ``interface`` (:class:`CthybInterface`, ...).

    ``options``: ``((name, value), ...)`` that :meth:`CthybInterface.solve` passes unless
    the script gives them (``default_solve_options``).
    """
    name = f"{base.__name__}As{interface.__name__.removesuffix('Interface')}"
    doc = f"{base.__name__} served as {interface._served_as} (see {interface.__name__})."
    namespace = {"__doc__": doc}
    if options:
        namespace["default_solve_options"] = dict(options)
    return _unregistered_subclass(name, (interface, base), namespace)


def check_n_bath(n_bath, solver):
    """Validate ``--n-bath`` (bath sites per spin of ``--solver ed``); returns it as an int.

    Raises
    ------
    ValueError
        ``n_bath`` is not an integer in ``[1, MAX_BATH]``, or ``solver`` is not ``ed``.
    """
    from ..solvers.ed import MAX_BATH

    if n_bath is None:
        return None
    if isinstance(n_bath, str) and n_bath.strip() == "auto":
        n_bath = "auto"
    elif isinstance(n_bath, str):
        try:
            n_bath = int(n_bath.strip())
        except ValueError:
            raise ValueError(
                f"--n-bath {n_bath!r} is not a number of bath sites; give an integer from 1 "
                f"to {MAX_BATH}, e.g. --n-bath 4, or 'auto'") from None
    if n_bath != "auto" and (isinstance(n_bath, bool) or not isinstance(
            n_bath, (int, np.integer)) or not (1 <= n_bath <= MAX_BATH)):
        raise ValueError(
            f"--n-bath {n_bath!r}: the ED solver takes 1 to {MAX_BATH} bath sites per spin "
            f"(more would diagonalise sectors too large for it); give e.g. --n-bath 4, or "
            f"leave --n-bath out for the ED solver's default")
    if solver != "ed":
        raise ValueError(
            f"--n-bath sets the bath size of --solver ed; --solver {solver} has no bath "
            "sites: drop --n-bath or use --solver ed")
    return n_bath if n_bath == "auto" else int(n_bath)


def _ed_options(n_bath):
    """``((name, value), ...)`` passed to the served ED solver for ``--n-bath n_bath``."""
    if n_bath is not None:
        return (("n_bath", n_bath),)
    return ()  # the ED solver's own default: the reference, n_bath='auto'


@functools.cache
def _with_model(cls, model, fallback=None):
    """``cls`` (MLSolver) whose ``model`` defaults to ``model`` (``--model``) and whose
    ``solve(fallback=...)`` defaults to ``fallback`` (``--fallback``); ``None``: unchanged."""
    namespace = {"__doc__": f"{cls.__name__} with model={model!r} (--model), "
                            f"fallback={fallback!r} (--fallback)."}
    if model is not None:
        def __init__(self, *args, model=model, **kwargs):
            cls.__init__(self, *args, model=model, **kwargs)
        namespace["__init__"] = __init__
    if fallback is not None:
        def solve(self, *, fallback=fallback, **kwargs):
            return cls.solve(self, fallback=fallback, **kwargs)
        solve.__doc__ = cls.solve.__doc__
        namespace["solve"] = solve
    return _unregistered_subclass(cls.__name__, (cls,), namespace)


def check_fallback(fallback, solver):
    """Validate ``--fallback`` (what MLSolver does when its model cannot be trusted)."""
    from ..mlsolver import FALLBACKS

    if fallback is None:
        return None
    if fallback not in FALLBACKS:
        raise ValueError(f"--fallback {fallback!r}: use one of {', '.join(FALLBACKS)}")
    if not SERVED_SOLVERS[solver].takes_model:
        raise ValueError(f"--fallback sets what --solver ml does when its model cannot be "
                         f"trusted; --solver {solver} has no model: drop --fallback")
    return fallback


def _cthyb_solver(choice, model=None, n_bath=None, fallback=None):
    """The class that serves ``triqs_cthyb.Solver`` for ``--solver choice [--model model]
    [--n-bath n_bath] [--fallback fallback]``."""
    try:
        spec = SERVED_SOLVERS[choice]
    except KeyError:
        raise ValueError(f"--solver {choice!r} is not known; use one of "
                         f"{', '.join(SERVED_SOLVERS)}") from None
    fallback = check_fallback(fallback, choice)
    if model is not None and not spec.takes_model:
        raise ValueError(f"--model selects the model of --solver ml; --solver {choice} has "
                         "none: drop --model or use --solver ml")
    n_bath = check_n_bath(n_bath, choice)
    try:
        cls = getattr(importlib.import_module(spec.module), spec.name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(
            f"--solver {choice} needs {spec.module}.{spec.name}, which cannot be imported "
            f"here ({type(exc).__name__}: {exc}); choose another solver, e.g. --solver ipt"
        ) from exc
    if spec.takes_model:
        from ..mlsolver import resolve_model

        resolve_model(model)  # a missing model fails here, before the script starts
        if model is not None or fallback is not None:
            return _with_model(cls, None if model is None else str(model), fallback)
    if spec.cthyb_compatible:
        return cls
    return _served_class(CthybInterface, cls, _ed_options(n_bath) if choice == "ed" else ())


# -- the import hooks -------------------------------------------------------------------------
_LIGHT_TOPS = ("triqs", "h5", "pytriqs")
#: Names of triqs_mlsolver.gf that real ``triqs.gf`` does not export.
_GF_PROJECT_ONLY = {"BACKEND", "using_triqs", "normalize_gf_struct", "HDFArchive",
                    "HDFArchiveGroup", "register_class"}
_OPERATOR_NAMES = ("Operator", "c", "c_dag", "n", "dagger")
_HAMILTONIAN_NAMES = ("h_int_kanamori", "h_int_density")
_UMATRIX_NAMES = ("U_matrix_kanamori",)
_ARCHIVE_NAMES = ("HDFArchive", "HDFArchiveGroup")


def _light_layer_table():
    """``{served module name: (source module, exported names)}`` of the light TRIQS layer."""
    from .. import gf, light, mpi, operators

    gf_names = tuple(n for n in gf.__all__ if n not in _GF_PROJECT_ONLY)
    ops = (operators, _OPERATOR_NAMES)
    util = (operators, _HAMILTONIAN_NAMES + _UMATRIX_NAMES)
    archive = (gf, _ARCHIVE_NAMES)
    table = {"triqs": (None, ()), "triqs.utility": (None, ()), "pytriqs": (None, ()),
             "pytriqs.utility": (None, ()),
             "h5": (gf, (*_ARCHIVE_NAMES, "register_class")), "h5.archive": archive,
             "h5.formats": (gf, ("register_class",)), "pytriqs.archive": archive,
             "triqs.operators.util.hamiltonians": (operators, _HAMILTONIAN_NAMES),
             "triqs.operators.util.U_matrix": (operators, _UMATRIX_NAMES),
             "triqs.operators.util": util, "pytriqs.operators.util": util}
    for name in ("triqs.gf", "triqs.gfs", "pytriqs.gf", "pytriqs.gf.local"):
        table[name] = (gf, gf_names)
    for name in ("triqs.operators", "pytriqs.operators"):
        table[name] = ops
    for name in ("triqs.utility.mpi", "pytriqs.utility.mpi"):
        table[name] = (mpi, tuple(mpi.__all__))
    table.update(light.served_modules())
    return table


def _facade(name, source, names, doc):
    """The module served as ``name``: the ``names`` of ``source`` (its ``__all__``).

    Names that ``source`` lists in ``RESOLVE_ON_ACCESS`` are fetched from it when a
    script first uses them (e.g. ``plt`` of ``triqs.plot.mpl_interface``, so that
    matplotlib is imported only by scripts that plot).  A public name the module lacks
    raises an error whose message names the API (:meth:`ServedTriqs.explain_missing` of
    the hooks in force): a :class:`NotServedError` (an ``ImportError``) in ``from name
    import X``, an ``AttributeError`` elsewhere, so that ``hasattr`` and ``getattr(m, x,
    default)`` keep their meaning.  The module is a package (``__path__``): its
    submodules are asked of the finder, which can explain them too.
    """
    mod = types.ModuleType(name, doc)
    lazy = set(getattr(source, "RESOLVE_ON_ACCESS", ())) & set(names)
    for key in names:
        if key not in lazy:
            setattr(mod, key, getattr(source, key))
    mod.__all__ = list(names)
    mod.__path__ = []

    def __getattr__(attr):
        if attr in lazy:
            value = getattr(source, attr)
            setattr(mod, attr, value)
            return value
        missing = f"module {name!r} has no attribute {attr!r}"
        if attr.startswith("_"):
            raise AttributeError(missing)
        full = f"{name}.{attr}"
        hooks = next((f for f in sys.meta_path if isinstance(f, ServedTriqs)), None)
        if hooks is None or full in hooks.modules:  # a served submodule: the finder serves it
            raise AttributeError(missing)
        message = hooks.explain_missing(full)
        import dis  # here: this function is the only user

        try:  # called by the statement `from name import attr` (IMPORT_FROM / IMPORT_STAR)?
            caller = sys._getframe(1)
            statement = dis.opname[caller.f_code.co_code[caller.f_lasti]]
        except (AttributeError, IndexError, ValueError):
            statement = ""
        if statement in ("IMPORT_FROM", "IMPORT_STAR"):
            raise NotServedError(message, name=full)
        raise AttributeError(message)

    mod.__getattr__ = __getattr__
    return mod


def _top(name):
    return name.partition(".")[0]


def _is_triqs_ecosystem(name):
    top = _top(name)
    return top in _LIGHT_TOPS or (top.startswith("triqs_") and top != "triqs_mlsolver")


class _MissingModuleFinder(importlib.abc.MetaPathFinder):
    """Last on ``sys.meta_path``: explains a TRIQS-ecosystem module nothing else found."""

    def __init__(self, owner):
        self.owner = owner

    def find_spec(self, fullname, path=None, target=None):
        if _is_triqs_ecosystem(fullname):
            raise NotServedError(self.owner.explain_missing(fullname), name=fullname)
        return None


class ServedTriqs(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Import hooks that serve the TRIQS modules of a script, for one run (a context manager).

    Parameters
    ----------
    solver : str
        ``--solver`` choice serving ``triqs_cthyb.Solver`` (a key of :data:`SERVED_SOLVERS`).
    model : str or path, optional
        With ``solver='ml'``: the model ``MLSolver`` loads (shipped name or file);
        default the shipped default model.
    serve_hubbardI : bool
        Also serve ``triqs_hubbardI.Solver`` with the Hubbard-I solver.
    n_bath : int, optional
        With ``solver='ed'``: bath sites per spin (``--n-bath``) unless the script passes
        ``n_bath`` to ``solve()``, or ``'auto'``; default the ED solver's own
        (``'auto'``: the bath grows until ``G(tau)`` converges).  An error with any other
        solver.
    fallback : {'ed', 'none', 'raise'}, optional
        With ``solver='ml'``: the default of ``MLSolver.solve(fallback=...)`` (``--fallback``);
        default MLSolver's own (``'ed'``).
    light : bool, optional
        Serve the light TRIQS layer (``triqs``, ``h5``, ``pytriqs``); default: exactly
        when :mod:`triqs_mlsolver.gf` uses it, so real TRIQS is never shadowed.

    Attributes
    ----------
    modules : dict
        ``{module name: module object}`` that this finder serves.
    served_tops : set of str
        The top-level names whose whole namespace the finder owns.

    Examples
    --------
    >>> with ServedTriqs("ipt"):                     # doctest: +SKIP
    ...     from triqs_cthyb import Solver
    """

    def __init__(self, solver=DEFAULT_SOLVER, *, model=None, serve_hubbardI=False, light=None,
                 n_bath=None, fallback=None):
        from .. import gf
        from ..solvers import available_solvers

        available_solvers()  # import the solver registry now: solvers/cthyb.py probes triqs_cthyb
        self.solver = solver
        self.light = (not gf.using_triqs()) if light is None else bool(light)
        cthyb_cls = _cthyb_solver(solver, model, n_bath, fallback)
        self.modules = {"triqs_cthyb": _facade(
            "triqs_cthyb", types.SimpleNamespace(Solver=cthyb_cls), ("Solver",),
            f"triqs_cthyb served by `triqs-mlsolver run`: Solver is {cthyb_cls.__name__} "
            f"(--solver {solver})")}
        self.serve_hubbardI = bool(serve_hubbardI)
        if self.serve_hubbardI:
            from ..solvers import HubbardISolver

            hub = _served_class(HubbardIInterface, HubbardISolver)
            self.modules["triqs_hubbardI"] = _facade(
                "triqs_hubbardI", types.SimpleNamespace(Solver=hub), ("Solver",),
                "triqs_hubbardI served by `triqs-mlsolver run` (--serve-hubbardI)")
        if self.light:
            for name, (source, names) in _light_layer_table().items():
                what = source.__name__ if source else "an empty package"
                self.modules[name] = _facade(
                    name, source, names,
                    f"{name} served by `triqs-mlsolver run` from {what} (light TRIQS layer)")
        self.served_tops = {_top(n) for n in self.modules}
        self._fallback = _MissingModuleFinder(self)
        self._saved = None

    # -- finder and loader
    def find_spec(self, fullname, path=None, target=None):
        if fullname in self.modules:
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        # a name of a served namespace that is not served; on the light layer also any other
        # TRIQS-ecosystem module, even installed (triqs_dft_tools, ...): it would import the
        # served light triqs modules and fail somewhere inside
        if _top(fullname) in self.served_tops or (self.light and _is_triqs_ecosystem(fullname)):
            raise NotServedError(self.explain_missing(fullname), name=fullname)
        return None

    def create_module(self, spec):
        return self.modules[spec.name]

    def exec_module(self, module):
        """Nothing to run: the served module is built when the hooks are made."""

    def explain_missing(self, fullname):
        """The message of the :class:`NotServedError` for ``fullname``.

        ``fullname`` is a module, or ``module.name`` for a name that a served module lacks
        (asked by the facades, see :func:`_facade`).  The message names the missing TRIQS
        API and the TRIQS versions that have it; a ``pytriqs`` import under real TRIQS 3
        is reported as TRIQS 1.x/2.x code, not as a missing TRIQS.
        """
        top = _top(fullname)
        parent = fullname.rpartition(".")[0]
        if top in ("triqs_cthyb", "triqs_hubbardI") and top in self.served_tops:
            return (f"{fullname} is not provided: `triqs-mlsolver run` replaces the {top} "
                    f"package by a module holding only Solver; import Solver from {top}, or "
                    f"run the script with plain python where {top} is installed")

        # -- what TRIQS has, and since when.  pytriqs became triqs in TRIQS 3.0.
        renamed = (("pytriqs.gf.local", "triqs.gf"), ("pytriqs.archive", "h5"),
                   ("pytriqs.applications.impurity_solvers.cthyb", "triqs_cthyb"),
                   ("pytriqs", "triqs"))

        def triqs3(name):
            for old, new in renamed:
                if name == old or name.startswith(old + "."):
                    return new + name[len(old):]
            return name

        # TRIQS 3 module: (what scripts take from it, first TRIQS version with it; "1": 1.x)
        modules = {
            "triqs.lattice": ("BravaisLattice, BrillouinZone, TightBinding", "1"),
            "triqs.lattice.tight_binding": ("TBLattice, TightBinding, dos", "1"),
            "triqs.lattice.super_lattice": ("TBSuperLattice", "1"),
            "triqs.sumk": ("SumkDiscrete, SumkDiscreteFromLattice", "1"),
            "triqs.sumk.sumk_discrete_from_lattice": ("SumkDiscreteFromLattice", "1"),
            "triqs.dos": ("DOS, DOSFromFunction, HilbertTransform", "1"),
            "triqs.fit": ("Fit", "1"),
            "triqs.stat": ("Histogram, pdf, cdf", "3.1"),
            "triqs.statistics": ("Histogram (triqs.stat since TRIQS 3.1)", "1"),
            "triqs.random_generator": ("RandomGenerator", "1"),
            "triqs.atom_diag": ("AtomDiag, atomic_g_iw, ...", "2.0"),
            "triqs.operators.util.observables": ("N_op, S_op, S2_op, L_op, L2_op, LS_op", "1"),
            "triqs.operators.util.op_struct": ("set_operator_structure", "1"),
            "triqs.utility.bound_and_bisect": ("bound_and_bisect", "1"),
            "triqs.utility.dist_on_nodes": ("dist_on_nodes", "1"),
            "triqs.utility.redirect": ("start_redirect, stop_redirect", "1"),
            "triqs.utility.capture_stdout": ("capture_stdout", "2.2"),
            "triqs.gf.meshes": ("the mesh classes", "2.0"),
            "triqs.gf.descriptors": ("the lazy-expression descriptors", "2.0"),
            "triqs.gf.tools": ("delta, dyson, fit_legendre, ...", "2.0"),
            "triqs.gf.gf_fnt": ("the Gf functions", "2.0"),
            "triqs.gf.gf_factories": ("make_hermitian, make_gf_from_fourier, ...", "3.0"),
            "triqs.gf.block_gf": ("BlockGf", "2.0"), "triqs.gf.gf": ("Gf", "2.0"),
            "triqs.gf.block2_gf": ("Block2Gf", "2.0"),
            "triqs.gf.backwd_compat": ("GfImFreq, GfImTime, GfReFreq, ...", "2.0"),
            "triqs.plot.protocol": ("the plot protocol, plot_function_table", "1"),
            "h5": ("HDFArchive, HDFArchiveGroup, register_class, ...", "3.0"),
        }
        # names in served modules: {module: ({name: first TRIQS version with it}, the TRIQS
        # version whose complete list of names that is, or None)}
        gf_32 = ("Omega iOmega_n SemiCircular Flat Wilson Fourier LegendreToMatsubara "
                 "MatsubaraToLegendre lazy_expressions MeshPoint MeshValueGenerator Idx Gf "
                 "MeshProduct GfImFreq MeshImFreq GfImTime MeshImTime GfReFreq MeshReFreq "
                 "GfReTime MeshReTime GfLegendre MeshLegendre MeshBrZone MeshBrillouinZone "
                 "MeshCycLat MeshCyclicLattice BlockGf fix_gf_struct_type Block2Gf inverse "
                 "conjugate transpose is_gf_real_in_tau delta dyson map_block make_real_in_tau "
                 "make_hermitian is_gf_hermitian fit_tail fit_hermitian_tail fit_tail_on_window "
                 "fit_hermitian_tail_on_window replace_by_tail replace_by_tail_in_fit_window "
                 "set_from_fourier make_gf_from_fourier set_from_legendre set_from_imfreq "
                 "set_from_imtime rebinning_tau enforce_discontinuity density "
                 "make_adjoint_mesh make_zero_tail").split()
        dlr_32 = ("MeshDLR MeshDLRImFreq MeshDLRImTime make_gf_dlr fit_gf_dlr "
                  "make_gf_dlr_imtime make_gf_dlr_imfreq make_gf_imtime make_gf_imfreq").split()
        names = {"triqs.gf": ({**dict.fromkeys(gf_32, "3.x"), **dict.fromkeys(dlr_32, "3.2")},
                              "3.2"),
                 "triqs.operators": ({}, "3.2")}

        def since(version, name3):
            if version.endswith(".x"):
                return f"TRIQS {version}"
            if version.startswith("3"):
                return f"TRIQS {version} and later"
            old = "pytriqs" + name3[len("triqs"):] if name3.startswith("triqs.") else name3
            first = "1.x" if version == "1" else version
            return (f"TRIQS {first} and later (as {old} up to TRIQS 2.x, {name3} since "
                    "TRIQS 3.0)")

        def describe(name):
            """A sentence naming the TRIQS API ``name`` and the versions that have it."""
            name3 = triqs3(name)
            alias = f" (called {name3} since TRIQS 3.0)" if name3 != name else ""
            mod3, _, attr = name3.rpartition(".")
            if mod3 in names and name3 not in modules:
                table, listed = names[mod3]
                if attr in table:
                    return f"{name}{alias} is part of {mod3} in {since(table[attr], name3)}"
                if listed:
                    return (f"{attr} is not a name of {mod3} in TRIQS {listed} either (check "
                            "the spelling)")
            known = next((m for m in sorted(modules, key=len, reverse=True)
                          if name3 == m or name3.startswith(m + ".")), None)
            if known is None:
                return f"{name}{alias} is not a TRIQS module or name this run knows of"
            what, version = modules[known]
            where = "" if known == name3 else f" (in {known})"
            return f"{name}{alias}{where}: {what}, in {since(version, known)}"

        def installed():
            for mod, attr in (("triqs.version", "version"), ("triqs", "__version__")):
                value = getattr(sys.modules.get(mod), attr, None)
                if isinstance(value, str):
                    return f"TRIQS {value}"
            return "TRIQS 3 or later"

        def statement_target(name):
            """The module the import statement being run names, if it is inside ``name``
            (asked for ``pytriqs`` itself while the script imports ``pytriqs.gf.local``)."""
            import dis  # here: this method is the only user

            try:
                frame = sys._getframe(1)
                while frame is not None and (frame.f_code.co_filename.startswith("<frozen")
                                             or frame.f_code.co_filename == __file__):
                    frame = frame.f_back
                for ins in dis.get_instructions(frame.f_code):
                    if ins.offset == frame.f_lasti and ins.opname == "IMPORT_NAME":
                        target = str(ins.argval)
                        return target if target.startswith(name + ".") else name
            except (AttributeError, TypeError, ValueError):
                pass
            return name

        if top == "pytriqs" and not self.light:
            imported = statement_target(fullname)
            return (f"{imported} is TRIQS 1.x/2.x code: the package pytriqs was renamed triqs "
                    f"in TRIQS 3.0 ({imported} is {triqs3(imported)} there), and this run uses "
                    f"the real {installed()} installed here, which has no pytriqs. Port the "
                    "script to TRIQS 3 (pytriqs.gf.local and pytriqs.gf -> triqs.gf, "
                    "pytriqs.archive -> h5, pytriqs.X -> triqs.X; TRIQS's "
                    "porting_tools/port_to_triqs3 and doc/porting_to_triqs3.md), or run it on "
                    "the light TRIQS layer, which serves the pytriqs names: "
                    "TRIQS_MLSOLVER_BACKEND=light triqs-mlsolver run SCRIPT")
        install = (f"Installing TRIQS (https://triqs.github.io) makes {fullname} available: "
                   "the run then uses the real TRIQS and replaces only the impurity solver")
        light = ("not provided by the light TRIQS layer of `triqs-mlsolver run` (TRIQS is not "
                 "installed here, or TRIQS_MLSOLVER_BACKEND=light)")
        exported = self.modules[parent].__all__ if parent in self.modules else []
        if top in _LIGHT_TOPS and self.light and exported:  # a name (or submodule) it lacks
            return (f"{fullname} is {light}: {describe(fullname)}; the light {parent} serves "
                    f"{', '.join(exported)}. {install}")
        if top in _LIGHT_TOPS and self.light:
            served = ", ".join(sorted(n for n, m in self.modules.items()
                                      if _top(n) in _LIGHT_TOPS and m.__all__))
            return f"{fullname} is {light}: {describe(fullname)}. It serves {served}. {install}"
        if top == "triqs_hubbardI":
            return (f"{fullname} is not installed; run with --serve-hubbardI to serve "
                    "triqs_hubbardI.Solver with the Hubbard-I solver of triqs_mlsolver")
        if top == "triqs" and not self.light and fullname != top:
            return (f"{fullname} is not part of the {installed()} installed here: "
                    f"{describe(fullname)}. Install a TRIQS version that has it "
                    "(https://triqs.github.io)")
        what = "TRIQS" if top in _LIGHT_TOPS else f"TRIQS and {top}"
        return (f"{fullname} is not installed and `triqs-mlsolver run` does not provide it "
                f"(it serves {', '.join(sorted(self.served_tops))}); install {what} "
                "(https://triqs.github.io) to make it available")

    # -- scope
    def _owned(self, name):
        return _top(name) in self.served_tops

    def __enter__(self):
        if self._saved is not None:
            raise RuntimeError("these import hooks are already installed; use a new ServedTriqs")
        self._saved = {k: sys.modules.pop(k) for k in [k for k in sys.modules if self._owned(k)]}
        sys.meta_path.insert(0, self)
        sys.meta_path.append(self._fallback)
        return self

    def __exit__(self, *exc):
        for finder in (self, self._fallback):
            while finder in sys.meta_path:
                sys.meta_path.remove(finder)
        for key in [k for k in sys.modules if self._owned(k)]:
            del sys.modules[key]
        sys.modules.update(self._saved)
        self._saved = None
        return False

    def describe(self):
        """One line saying what this run serves."""
        cls = self.modules["triqs_cthyb"].Solver
        options = "".join(f", {k}={v!r}" for k, v in
                          getattr(cls, "default_solve_options", {}).items())
        parts = [f"triqs_cthyb.Solver = {cls.__name__} (--solver {self.solver}{options})"]
        if self.serve_hubbardI:
            hub = self.modules["triqs_hubbardI"].Solver
            parts.append(f"triqs_hubbardI.Solver = {hub.__name__}")
        parts.append("light TRIQS layer for triqs, h5, pytriqs" if self.light
                     else "real TRIQS (not shadowed)")
        return "; ".join(parts)


# -- running the script ----------------------------------------------------------------------
def _exit_code(code):
    """The process exit status of ``SystemExit(code)``, as the interpreter computes it."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _print_script_traceback(exc, script):
    """Print ``exc`` with the traceback from the frame of ``script`` (absolute path) on."""
    tb = start = exc.__traceback__
    while start is not None and start.tb_frame.f_code.co_filename != script:
        start = start.tb_next
    traceback.print_exception(type(exc), exc, start or tb, file=sys.stderr)


def _found_in(module, folder):
    """True if ``module`` was found on the ``sys.path`` entry ``folder``."""
    spec = getattr(module, "__spec__", None)
    origin = getattr(spec, "origin", None)
    if not origin or not os.path.isabs(origin):  # built-in, frozen, namespace package
        return False
    where = os.path.dirname(origin)
    if spec.submodule_search_locations is not None:  # a package: origin is its __init__.py
        where = os.path.dirname(where)
    return os.path.realpath(where) == folder


def _forget_script_modules(before, folder):
    """Drop the modules the run imported from the script's folder (they saw the hooks)."""
    new = [k for k in sys.modules if k not in before]
    tops = {_top(k) for k in new if _top(k) not in before}
    local = {t for t in tops if t in sys.modules and _found_in(sys.modules[t], folder)}
    for key in new:
        if _top(key) in local:
            del sys.modules[key]


def _quiet_categories():
    """The notes on ignored triqs_cthyb keywords that ``-q`` silences."""
    return [IgnoredParameterWarning]


def run_script(script, args=(), *, solver=DEFAULT_SOLVER, model=None, serve_hubbardI=False,
               quiet=False, n_bath=None, fallback=None):
    """Run ``script`` as ``python script *args`` with its TRIQS imports served here.

    Parameters
    ----------
    script : str or path-like
        The TRIQS script, run unmodified with ``__name__ == "__main__"``.
    args : sequence of str
        Its command-line arguments (``sys.argv[1:]`` in the script).
    solver : str
        What serves ``triqs_cthyb.Solver`` (a key of :data:`SERVED_SOLVERS`).
    model : str or path, optional
        The model of ``solver='ml'`` (a shipped model's name or a model file).
    serve_hubbardI : bool
        Also serve ``triqs_hubbardI.Solver``.
    n_bath : int, optional
        With ``solver='ed'``: bath sites per spin (see :class:`ServedTriqs`).
    fallback : {'ed', 'none', 'raise'}, optional
        With ``solver='ml'``: what MLSolver does when its model cannot be trusted
        (see :class:`ServedTriqs`).
    quiet : bool
        No banner, and no :class:`IgnoredParameterWarning` on the triqs_cthyb keywords
        without effect.

    Returns
    -------
    int
        The script's exit status: 0, its ``sys.exit()`` code, or 1 after an
        exception (whose traceback is printed on stderr).

    Raises
    ------
    FileNotFoundError
        ``script`` is not a file.
    ValueError
        ``solver`` is unknown or cannot be imported, ``model`` is given for a
        solver without one, or ``n_bath`` is not a bath size or given without ``solver='ed'``.
    """
    path = Path(script)
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise FileNotFoundError(
            f"the script '{script}' {what}; give the path of a Python file, e.g. "
            "`triqs-mlsolver run example/bethe_dmft_cthyb.py`")
    hooks = ServedTriqs(solver, model=model, serve_hubbardI=serve_hubbardI, n_bath=n_bath,
                        fallback=fallback)
    if not quiet and os.environ.get("OMPI_COMM_WORLD_RANK", os.environ.get("PMI_RANK", "0")) == "0":
        print(f"triqs-mlsolver run {script}: {hooks.describe()}", file=sys.stderr)
    folder = os.path.realpath(path.parent)
    target = os.path.abspath(script)  # __main__.__file__ is absolute, as in python >= 3.9
    saved_argv, saved_path, saved_cwd = sys.argv, sys.path[:], os.getcwd()
    before = set(sys.modules)
    sys.argv = [str(script), *map(str, args)]
    sys.path.insert(0, folder)
    try:
        with warnings.catch_warnings():
            if quiet:
                for category in _quiet_categories():
                    warnings.simplefilter("ignore", category)
            with hooks:
                runpy.run_path(target, run_name="__main__")
    except SystemExit as exc:
        return _exit_code(exc.code)
    except Exception as exc:  # noqa: BLE001 - the script's error is reported, not ours
        _print_script_traceback(exc, target)
        return 1
    finally:
        sys.argv = saved_argv
        sys.path[:] = saved_path
        os.chdir(saved_cwd)
        _forget_script_modules(before, folder)
    return 0


# -- command line ----------------------------------------------------------------------------
_EPILOG = """\
examples:
  triqs-mlsolver run example/bethe_dmft_cthyb.py              # MLSolver serves triqs_cthyb
  triqs-mlsolver run --solver ipt my_dmft.py --U 2.5          # script arguments follow it
  triqs-mlsolver run --solver ed --n-bath 4 my_dmft.py        # ED, 4 bath sites per spin
  triqs-mlsolver run --serve-hubbardI hubbardI_script.py

The hooks exist only during the run: nothing is installed, and a real TRIQS,
where importable, is used (only triqs_cthyb / triqs_hubbardI are replaced).
Exit status: the script's (1 after an uncaught exception), 2 for a bad command line.
"""


def add_parser(sub):
    """Register ``run`` on the sub-command parser ``sub``."""
    p = sub.add_parser(
        "run", help="run an unmodified TRIQS script with its impurity solver served here",
        description=("Run an unmodified TRIQS DMFT script (python SCRIPT ARGS...) with "
                     "triqs_cthyb.Solver served by a solver of this package and, where TRIQS "
                     "is not installed, triqs, triqs.gf(s), triqs.operators, "
                     "triqs.utility.mpi and h5 served by its light TRIQS layer."),
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--solver", choices=list(SERVED_SOLVERS), default=DEFAULT_SOLVER,
                   help="what serves triqs_cthyb.Solver: " + "; ".join(
                       f"{k} = {v.description}" for k, v in SERVED_SOLVERS.items()))
    p.add_argument("--model", default=None, metavar="MODEL",
                   help="with --solver ml: a shipped model's name or a model file from "
                        "`triqs-mlsolver train` (default: the shipped default model)")
    p.add_argument("--n-bath", default=None, metavar="K", dest="n_bath",
                   help="with --solver ed: bath sites per spin fitted to the script's G0_iw, "
                        "1-9 or 'auto' (default: 'auto', the reference: the bath grows until "
                        "G(tau) converges, error estimate in S.solution.diagnostics)")
    p.add_argument("--fallback", default=None, choices=["ed", "none", "raise"],
                   help="with --solver ml: when the model cannot be trusted (outside its "
                        "domain, spin-polarised input, an answer that is not physical): 'ed' "
                        "solves with the reference ED (MLSolver's default), 'none' warns and "
                        "keeps the model's answer, 'raise' stops the script with "
                        "OutOfDomainError")
    p.add_argument("--serve-hubbardI", action="store_true", dest="serve_hubbardI",
                   help="also serve triqs_hubbardI.Solver with the Hubbard-I solver "
                        "(triqs_hubbardI's keywords and results, G_w and Sigma_w included)")
    p.add_argument("script", help="the TRIQS script (.py), run unmodified as __main__")
    p.add_argument("script_args", nargs=argparse.REMAINDER, metavar="ARGS",
                   help="arguments for the script (its sys.argv[1:])")
    p.set_defaults(func=_cmd_run)
    return p


def _cmd_run(args) -> int:
    return run_script(args.script, args.script_args, solver=args.solver, model=args.model,
                      serve_hubbardI=args.serve_hubbardI, quiet=args.quiet, n_bath=args.n_bath,
                      fallback=args.fallback)
