# SPDX-License-Identifier: Apache-2.0
"""The solver protocol: a registry of pure AIM solvers and one TRIQS-style front.

How to add a solver
-------------------
1. Write a pure function ``solve(params: AIMParams, *, n_iw, n_tau, n_l, **options)
   -> AIMSolution`` in its own module under ``solvers/`` (build the result with
   the helpers of :mod:`triqs_mlsolver.solvers.solution`).  Validate physics
   input there and raise ``ValueError`` with a message that says how to fix it.
2. Register it: ``register_solver('name', solve, options={'opt': default, ...},
   description='...')``.  The option names are the only keywords ``solve()``
   accepts; an unknown keyword is an :class:`UnknownParameterError`.
3. Add a thin class ``class NameSolver(Solver): solver_name = 'name'`` if users
   should be able to use it as a TRIQS solver.

The TRIQS convention (cthyb, hubbardI)::

    S = HubbardISolver(beta=10, gf_struct=[('up', 1), ('down', 1)], n_iw=1025)
    S.G0_iw << inverse(iOmega_n + mu - t**2 * G)      # the user fills the input
    S.solve(h_int=U * n('up', 0) * n('down', 0))      # physics + run parameters
    S.G_iw, S.Sigma_iw, S.G_tau, S.G_l                # results as attributes
    S.Delta_tau, S.G_iw_raw, S.Sigma_iw_raw           # triqs_cthyb's other results

``Sigma_iw = inverse(G0_iw) - inverse(G_iw)`` includes the Hartree term.  Every
solver built on :class:`Solver` fills the attributes listed there; a new solver
needs nothing beyond step 3 for them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .. import gf as _gf
from ..aim.params import AIMParams
from ..errors import GfStructError, UnknownParameterError
from ..gf import transforms as tr
from .solution import AIMSolution

__all__ = [
    "SolverSpec",
    "register_solver",
    "get_solver",
    "available_solvers",
    "solve_aim",
    "Solver",
    "parse_h_int",
    "params_from_g0",
    "hybridisation_tau",
]

_REGISTRY: dict[str, SolverSpec] = {}


@dataclass(frozen=True)
class SolverSpec:
    """A registered solver: its pure function, accepted options and defaults."""

    name: str
    function: Callable[..., AIMSolution]
    options: dict = field(default_factory=dict)
    description: str = ""
    multi_orbital: bool = False


def register_solver(name, function, *, options=None, description="", multi_orbital=False):
    """Register ``function`` under ``name`` (see the module docstring)."""
    if name in _REGISTRY and _REGISTRY[name].function is not function:
        raise ValueError(f"a different solver is already registered as {name!r}")
    spec = SolverSpec(name, function, dict(options or {}), description, multi_orbital)
    _REGISTRY[name] = spec
    return spec


def _load_builtin():
    """Import the built-in solver modules (importing a module registers its solvers)."""
    from . import cthyb, ed, hubbard_i, ipt, ml, nca  # noqa: F401


def get_solver(name: str) -> SolverSpec:
    """The :class:`SolverSpec` registered as ``name``."""
    _load_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(
            f"no solver named {name!r}; available: {', '.join(available_solvers())}"
        ) from None


def available_solvers() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def check_options(spec: SolverSpec, options: dict) -> dict:
    """Merge ``options`` into the defaults; unknown keys raise."""
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        raise UnknownParameterError(
            f"solver {spec.name!r} got unknown option(s) {unknown}; it accepts "
            f"{sorted(spec.options) or 'no options'}"
        )
    merged = dict(spec.options)
    merged.update(options)
    return merged


def solve_aim(name: str, params: AIMParams, *, n_iw=1025, n_tau=10001, n_l=30, **options):
    """Solve ``params`` with the solver ``name``; returns an :class:`AIMSolution`."""
    spec = get_solver(name)
    opts = check_options(spec, options)
    for key, val, lo in (("n_iw", n_iw, 1), ("n_tau", n_tau, 2), ("n_l", n_l, 1)):
        if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < lo:
            raise ValueError(f"{key}={val!r} must be an integer >= {lo}")
    t0 = time.perf_counter()
    sol = spec.function(params, n_iw=int(n_iw), n_tau=int(n_tau), n_l=int(n_l), **opts)
    sol.wall_time = time.perf_counter() - t0
    sol.solver = name
    sol.settings = {**opts, "n_iw": int(n_iw), "n_tau": int(n_tau), "n_l": int(n_l)}
    return sol


# -- TRIQS-style front ----------------------------------------------------------
def _single_orbital_struct(gf_struct):
    struct = _gf.normalize_gf_struct(gf_struct, stacklevel=4)
    if len(struct) != 2 or any(size != 1 for _, size in struct):
        raise GfStructError(
            f"this solver treats one orbital with two spin blocks; gf_struct={struct} is not "
            "of that form. Use gf_struct=[('up', 1), ('down', 1)] (any two block names: "
            "the first is spin up, the second spin down)"
        )
    return struct


def parse_h_int(h_int, block_names):
    """Read ``U`` and the one-body shifts of a single-orbital ``h_int``.

    Accepts ``U n_0 n_1 + e_0 n_0 + e_1 n_1 + const`` in terms of the
    operators ``(block_names[s], 0)`` (TRIQS's iteration protocol
    ``for monomial, coef in h_int``), e.g. ``U*n('up',0)*n('down',0)`` or
    ``U*(n('up',0)-0.5)*(n('down',0)-0.5)``.

    Returns ``(U, shift)`` with ``shift[s]`` the coefficient of ``n_s`` (it
    lowers the chemical potential: ``mu_s -> mu_s - shift[s]``).
    """
    if h_int is None:
        raise TypeError("solve() needs h_int=..., e.g. h_int=U*n('up',0)*n('down',0)")
    try:
        terms = list(h_int)
    except TypeError:
        raise TypeError(
            f"h_int must be an operator expression (n, c, c_dag products), not "
            f"{type(h_int).__name__}"
        ) from None
    U, shift = 0.0, np.zeros(2)
    for monomial, coef in terms:
        coef = complex(coef)
        if abs(coef.imag) > 1e-12:
            raise ValueError(f"h_int has a complex coefficient {coef}; U must be real")
        coef = coef.real
        ops = [(bool(dag), str(idx[0]), idx[1]) for dag, idx in monomial]
        for _, blk, _i in ops:
            if blk not in block_names:
                raise ValueError(
                    f"h_int acts on block {blk!r}, which is not in gf_struct {list(block_names)}; "
                    "use the block names of gf_struct"
                )
        for _, blk, i in ops:
            if int(i) != 0:
                raise ValueError(f"h_int uses orbital index {i} of block {blk!r}; "
                                 "this single-orbital solver only has index 0")
        if not ops:
            continue  # constant energy shift
        kinds = [(dag, block_names.index(blk)) for dag, blk, _ in ops]
        if len(ops) == 2 and kinds[0][0] and not kinds[1][0] and kinds[0][1] == kinds[1][1]:
            shift[kinds[0][1]] += coef
        elif len(ops) == 4 and [k[0] for k in kinds] == [True, True, False, False] and sorted(
            k[1] for k in kinds[:2]
        ) == [0, 1] and sorted(k[1] for k in kinds[2:]) == [0, 1]:
            # c+_a c+_b c_b c_a = n_a n_b ; c+_a c+_b c_a c_b = -n_a n_b
            sign = 1.0 if kinds[0][1] == kinds[3][1] else -1.0
            U += sign * coef
        else:
            raise ValueError(
                f"h_int term {coef}*{monomial} is not a density or density-density term; "
                "this solver accepts U*n('up',0)*n('down',0) plus one-body n terms"
            )
    if U < 0:
        raise ValueError(f"h_int gives U = {U} < 0; the solvers here need a repulsive U >= 0")
    return U, shift


def params_from_g0(g0_sw, beta, U, shift):
    """AIMParams from ``G0_s(i w)`` on the full Matsubara mesh.

    ``G0^-1 = i w + mu - Delta(i w)``: ``mu`` is the constant of the
    high-frequency expansion of ``i w - G0^-1`` (fitted), ``Delta`` the rest.
    """
    g0_sw = np.asarray(g0_sw, complex)
    if not np.all(np.isfinite(g0_sw)):
        raise ValueError("G0_iw contains NaN or infinite values; fill G0_iw before solve()")
    n_iw = g0_sw.shape[1] // 2
    iw = tr.matsubara_freqs(beta, n_iw)
    with np.errstate(divide="raise", invalid="raise"):
        try:
            X = iw[None, :] - 1.0 / g0_sw  # = Delta - mu
        except FloatingPointError:
            raise ValueError("G0_iw vanishes at some frequency; was it filled?") from None
    mu = np.zeros(2)
    for s in range(2):
        m, _ = tr.fit_tail(X[s], iw, known_moments=np.zeros((0,)), max_order=4)
        mu[s] = -m[0].real
    delta = X + mu[:, None]
    return AIMParams(U=U, mu=mu - shift, beta=beta, Delta_iw=delta)


def hybridisation_tau(Delta_sw, beta, n_tau):
    """The hybridisation in imaginary time, ``Delta_s(tau)``, from ``Delta_s(i w_n)``.

    ``Delta(tau) = (1/beta) sum_n e^{-i w_n tau} Delta(i w_n)`` with
    ``Delta(i w_n) ~ c_1 / (i w_n) + c_2 / (i w_n)^2 + ...``
    (for a discrete bath ``Delta(i w) = sum_k V_k^2 / (i w - eps_k)`` this is
    ``-sum_k V_k^2 e^{-eps_k tau} / (1 + e^{-beta eps_k})``).  The tail
    ``c_1 .. c_8`` is fitted on the outer frequencies of the mesh
    (:func:`~triqs_mlsolver.gf.transforms.fit_tail`, ``c_0 = 0``); ``c_1 .. c_3``
    are transformed analytically and the rest of the tail extends the sum beyond
    the mesh (:func:`~triqs_mlsolver.gf.transforms.iw_to_tau`).  The error is far below
    the ``(2/beta) sum_{n >= n_iw} |c_4| / w_n^4`` of the plain truncated sum; its floor
    is the rounding of ``Delta = i w + mu - G0^-1`` at large ``w`` (about ``1e-16 w_max``),
    e.g. 1e-12 at ``beta = 10, n_iw = 128`` and 2e-11 at ``n_iw = 1025`` for a
    three-site bath.

    Parameters
    ----------
    Delta_sw : complex ndarray, shape (2, 2 n_iw)
        ``Delta(i w_n)`` per spin on the full Matsubara mesh, without a constant
        part (``iw + mu - G0^-1`` with the level ``mu`` removed, as
        :func:`params_from_g0` returns it in ``AIMParams.Delta_iw``).
    beta : float
    n_tau : int
        Points of the uniform tau mesh, both ends included.

    Returns
    -------
    ndarray, shape (2, n_tau), float
        ``Delta_s(tau)`` (real: the hybridisation of a Hermitian bath; cthyb keeps the
        real part of the diagonal as well).  ``Delta(0+) + Delta(beta-) = -c_1``.
    """
    Delta_ws = np.asarray(Delta_sw, complex).T
    return np.ascontiguousarray(tr.iw_to_tau(Delta_ws, float(beta), int(n_tau)).real.T)


class Solver:
    """TRIQS-style impurity solver over a registered pure solver.

    Parameters
    ----------
    beta : float
        Inverse temperature.
    gf_struct : list of (str, int)
        ``[('up', 1), ('down', 1)]`` (first block = spin up).
    n_iw, n_tau, n_l : int
        Matsubara frequencies (positive ones), tau points, Legendre coefficients.

    Attributes
    ----------
    G0_iw : BlockGf
        Input: the non-interacting impurity Green's function, filled by the user.
    G_iw, Sigma_iw : BlockGf
        Results of :meth:`solve` on the Matsubara mesh of ``G0_iw`` (``n_iw`` positive
        frequencies); ``Sigma_iw = G0_iw^-1 - G_iw^-1``.
    G_tau : BlockGf
        ``G(tau)`` on ``n_tau`` uniform points of ``[0, beta]``.
    G_l : BlockGf
        ``G_l``, ``l = 0 .. n_l - 1`` (Legendre mesh).
    Delta_tau : BlockGf
        The hybridisation ``Delta(tau)`` read from ``G0_iw`` in the last :meth:`solve`
        (``n_tau`` points, real; :func:`hybridisation_tau`): ``Delta(i w) = i w + mu -
        G0^-1(i w)`` with the constant part ``mu`` (the level) removed, as triqs_cthyb's
        ``Delta_tau``.
    G_iw_raw, Sigma_iw_raw : BlockGf
        triqs_cthyb's results before its post-processing (Legendre filter, tail fit).
        The solvers here compute ``G_iw`` and ``Sigma_iw`` directly, with their tails
        exact or analytic, so these are copies of ``G_iw`` and ``Sigma_iw``.
    density : ndarray (2,)
    double_occupancy : float or None
    solution : AIMSolution
        The plain-array result (with diagnostics).
    last_solve_parameters : dict
    """

    solver_name = ""
    #: Version of the HDF5 layout written by :meth:`__reduce_to_dict__`.
    hdf5_version = 1

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.solver_name:
            _gf.register_class(cls, hdf5_format=f"triqs_mlsolver.{cls.__name__}")

    def __init__(self, beta, gf_struct, n_iw=1025, n_tau=10001, n_l=30, **kwargs):
        if kwargs:
            raise UnknownParameterError(
                f"{type(self).__name__}() got unknown keyword(s) {sorted(kwargs)}; it takes "
                "beta, gf_struct, n_iw, n_tau, n_l (solver options go to solve())"
            )
        self._spec = get_solver(self.solver_name)
        struct = _single_orbital_struct(gf_struct)
        m_iw = _gf.MeshImFreq(beta=beta, statistic="Fermion", n_iw=n_iw)
        m_tau = _gf.MeshImTime(beta=beta, statistic="Fermion", n_tau=n_tau)
        m_l = _gf.MeshLegendre(beta=beta, statistic="Fermion", max_n=n_l)
        self.beta, self.gf_struct = float(beta), struct
        self.n_iw, self.n_tau, self.n_l = int(n_iw), int(n_tau), int(n_l)
        self.constr_params = dict(beta=self.beta, gf_struct=struct, n_iw=self.n_iw,
                                  n_tau=self.n_tau, n_l=self.n_l)
        self.G0_iw = _gf.BlockGf(mesh=m_iw, gf_struct=struct)
        self.G_iw = self.G0_iw.copy()
        self.Sigma_iw = self.G0_iw.copy()
        self.G_tau = _gf.BlockGf(mesh=m_tau, gf_struct=struct)
        self.G_l = _gf.BlockGf(mesh=m_l, gf_struct=struct)
        self.Delta_tau = _gf.BlockGf(mesh=m_tau, gf_struct=struct)
        self.G_iw_raw = self.G0_iw.copy()
        self.Sigma_iw_raw = self.G0_iw.copy()
        self.density = None
        self.double_occupancy = None
        self.solution = None
        self.last_solve_parameters = {}

    @property
    def block_names(self):
        return [n for n, _ in self.gf_struct]

    def solve(self, *, h_int=None, **options):
        """Solve the impurity problem defined by ``G0_iw`` and ``h_int``.

        Keyword-only; the accepted solver options are ``self.solver_options()``.
        """
        names = self.block_names
        opts = check_options(self._spec, options)
        U, shift = parse_h_int(h_int, names)
        g0 = np.stack([self.G0_iw[n].data[:, 0, 0] for n in names])
        params = params_from_g0(g0, self.beta, U, shift)
        sol = solve_aim(self.solver_name, params, n_iw=self.n_iw, n_tau=self.n_tau,
                        n_l=self.n_l, **opts)
        for s, n_ in enumerate(names):
            self.G_iw[n_].data[:, 0, 0] = sol.G_iw[s]
            self.Sigma_iw[n_].data[:, 0, 0] = sol.Sigma_iw[s]
            self.G_tau[n_].data[:, 0, 0] = sol.G_tau[s]
            self.G_l[n_].data[:, 0, 0] = sol.G_l[s]
        self._set_cthyb_results(params.Delta_iw)
        self.density = sol.density
        self.double_occupancy = sol.double_occupancy
        self.solution = sol
        self.last_solve_parameters = {"h_int": str(h_int), "U": U, "mu": params.mu.tolist(),
                                      **opts}
        return self

    def _set_cthyb_results(self, Delta_sw):
        """Fill ``Delta_tau`` from ``Delta_sw`` (2, 2 n_iw) and ``G_iw_raw``/``Sigma_iw_raw``
        from the current ``G_iw``/``Sigma_iw`` (called again by a subclass that changes them)."""
        delta_st = hybridisation_tau(Delta_sw, self.beta, self.n_tau)
        for s, n_ in enumerate(self.block_names):
            self.Delta_tau[n_].data[:, 0, 0] = delta_st[s]
        self.G_iw_raw << self.G_iw
        self.Sigma_iw_raw << self.Sigma_iw

    # -- HDF5 round trip (TRIQS convention) -----------------------------------------
    #: The Green's functions stored by :meth:`__reduce_to_dict__`.
    _STORED_GFS = ("G0_iw", "G_iw", "Sigma_iw", "G_tau", "G_l", "Delta_tau", "G_iw_raw",
                   "Sigma_iw_raw")
    #: Those that files of layout version 1 written before they existed lack.
    _OPTIONAL_GFS = ("Delta_tau", "G_iw_raw", "Sigma_iw_raw")

    def __reduce_to_dict__(self):
        d = {
            "hdf5_version": self.hdf5_version,
            "solver_name": self.solver_name,
            "constr_params": {**self.constr_params,
                              "gf_struct": [tuple(x) for x in self.gf_struct]},
            # None (= the default) cannot be stored in the TRIQS scheme: omitted
            "last_solve_parameters": {k: v for k, v in self.last_solve_parameters.items()
                                      if v is not None},
            **{key: getattr(self, key) for key in self._STORED_GFS},
        }
        if self.density is not None:
            d["density"] = np.asarray(self.density)
        if self.double_occupancy is not None:
            d["double_occupancy"] = float(self.double_occupancy)
        return d

    @classmethod
    def __factory_from_dict__(cls, name, d):
        version = int(d.get("hdf5_version", 0))
        if version > cls.hdf5_version:
            raise ValueError(
                f"{cls.__name__} stored with layout version {version}, newer than this "
                f"package's {cls.hdf5_version}; upgrade triqs_mlsolver to read it"
            )
        cp = dict(d["constr_params"])
        cp["gf_struct"] = [tuple(x) for x in cp["gf_struct"]]
        obj = cls(**cp)
        for key in cls._STORED_GFS:
            if key in d or key not in cls._OPTIONAL_GFS:
                getattr(obj, key) << d[key]
        obj.last_solve_parameters = dict(d.get("last_solve_parameters", {}))
        obj.density = d.get("density")
        obj.double_occupancy = d.get("double_occupancy")
        return obj

    def solver_options(self) -> dict:
        """The options :meth:`solve` accepts, with their defaults."""
        return dict(self._spec.options)
