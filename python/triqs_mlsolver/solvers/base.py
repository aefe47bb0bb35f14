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
    S.Delta_infty, S.h_loc, S.density_matrix, S.h_loc_diagonalization

``Sigma_iw = inverse(G0_iw) - inverse(G_iw)`` includes the Hartree term.  Every
solver built on :class:`Solver` fills the attributes listed there; a new solver
needs nothing beyond step 3 for them.  A subclass that overrides :meth:`Solver.solve`
without calling it (``MLSolver``) calls :meth:`Solver._set_static_results` once its
``G_iw``, ``density`` and ``double_occupancy`` are set.
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .. import gf as _gf
from ..aim.params import AIMParams
from ..errors import GfStructError, UnknownParameterError
from ..gf import transforms as tr
from ..validity import check_g0
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
    "level_from_g0",
    "NOT_APPLICABLE",
    "occupation_probabilities",
    "density_matrix_in_eigenbasis",
    "local_hamiltonian",
    "make_atom_diag",
]

#: The value of cthyb's Monte Carlo diagnostics ``average_order`` and ``auto_corr_time`` on a
#: deterministic solver: NaN, "not a number" -- never mistaken for a measurement, printed as
#: ``nan``, stored in HDF5 as a float, and no exception in arithmetic or formatting.
NOT_APPLICABLE = float("nan")

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


#: Fewest positive Matsubara frequencies on which the level of ``G0`` is read from a fit of the
#: high-frequency tail (:func:`triqs_mlsolver.gf.transforms.fit_tail` needs 8).
_MIN_TAIL_FIT_N_IW = 8


def _delta_minus_mu(g0_sw, beta):
    """``X_s(i w_n) = i w_n - G0_s^-1(i w_n) = Delta_s(i w_n) - mu_s`` and the mesh points."""
    g0_sw = np.asarray(g0_sw, complex)
    if not np.all(np.isfinite(g0_sw)):
        raise ValueError("G0_iw contains NaN or infinite values; fill G0_iw before solve()")
    iw = tr.matsubara_freqs(beta, g0_sw.shape[1] // 2)
    with np.errstate(divide="raise", invalid="raise"):
        try:
            X = iw[None, :] - 1.0 / g0_sw
        except FloatingPointError:
            raise ValueError("G0_iw vanishes at some frequency; was it filled?") from None
    return X, iw


def _level_of(X_sw, iw):
    """``mu_s = -(constant part of X_s)``; see :func:`level_from_g0`."""
    n_iw = X_sw.shape[1] // 2
    mu = np.zeros(X_sw.shape[0])
    if n_iw >= _MIN_TAIL_FIT_N_IW:
        for s in range(X_sw.shape[0]):
            m, _ = tr.fit_tail(X_sw[s], iw, known_moments=np.zeros((0,)), max_order=4)
            mu[s] = -m[0].real
        return mu
    # few frequencies: Re X(i w) = -mu + Re Delta(i w) with Re Delta = -m_2/w^2 + m_4/w^4 - ...
    # (even in w); least squares on the positive frequencies with as many terms as they allow
    w = iw[n_iw:].imag
    basis = np.stack([w ** (-2 * k) for k in range(min(3, n_iw))], axis=1)
    for s in range(X_sw.shape[0]):
        coef, *_ = np.linalg.lstsq(basis, X_sw[s, n_iw:].real, rcond=None)
        mu[s] = -coef[0]
    return mu


def level_from_g0(g0_sw, beta):
    """The chemical potential ``mu_s`` in ``G0_s^-1(i w) = i w + mu_s - Delta_s(i w)``.

    ``-mu_s`` is the constant part of ``i w - G0^-1`` (triqs_cthyb's ``Delta_infty``,
    triqs_hubbardI's ``eal``): the constant of its fitted high-frequency expansion on a mesh
    of at least 8 positive frequencies.  On fewer (``n_iw = 5`` in triqs_hubbardI's tests,
    where no frequency reaches the tail) it is the constant of a least-squares fit of
    ``Re(i w - G0^-1) = -mu + c_2/w^2 + c_4/w^4`` on the positive frequencies: exact
    whenever ``Re Delta(i w) = 0`` (a particle-hole symmetric bath, e.g. ``Flat``,
    ``SemiCircular``), approximate otherwise (as real TRIQS's tail fit on such a mesh).

    Parameters
    ----------
    g0_sw : complex ndarray, shape (n_spin, 2 n_iw)
        ``G0_s(i w_n)`` on the full Matsubara mesh.
    beta : float

    Returns
    -------
    ndarray, shape (n_spin,)
    """
    X, iw = _delta_minus_mu(g0_sw, beta)
    return _level_of(X, iw)


def params_from_g0(g0_sw, beta, U, shift):
    """AIMParams from ``G0_s(i w)`` on the full Matsubara mesh.

    ``G0^-1 = i w + mu - Delta(i w)``: ``mu`` is the constant of the
    high-frequency expansion of ``i w - G0^-1`` (:func:`level_from_g0`), ``Delta`` the
    rest.  The returned level is ``mu - shift`` (``shift`` from :func:`parse_h_int`).
    """
    X, iw = _delta_minus_mu(g0_sw, beta)
    mu = _level_of(X, iw)
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


# -- static results: h_loc, its diagonalisation and the impurity density matrix ------------
def occupation_probabilities(density, double_occupancy):
    """Probabilities ``p[n_up, n_dn]`` of the four occupations of a single-orbital impurity.

    ``p[1, 1] = d``, ``p[1, 0] = n_up - d``, ``p[0, 1] = n_dn - d``,
    ``p[0, 0] = 1 - n_up - n_dn + d`` with ``d = <n_up n_dn>``.  Approximate solvers can
    give a ``d`` slightly outside the range where all four are >= 0; it is clipped to
    ``max(0, n_up + n_dn - 1) <= d <= min(n_up, n_dn)`` (and ``n_s`` to ``[0, 1]``), so the
    result is always a probability distribution.  ``double_occupancy=None`` (unknown) is
    taken as ``n_up n_dn``.

    Returns
    -------
    ndarray, shape (2, 2), float; sums to 1.
    """
    n_up, n_dn = np.clip(np.asarray(density, float).reshape(2), 0.0, 1.0)
    d = n_up * n_dn if double_occupancy is None else float(double_occupancy)
    d = min(max(d, max(0.0, n_up + n_dn - 1.0)), min(n_up, n_dn))
    return np.array([[1.0 - n_up - n_dn + d, n_dn - d], [n_up - d, d]])


def _fops_of(atom_diag, fallback):
    """The fundamental operators of ``atom_diag`` in the order of the Fock-state bits."""
    fops = getattr(atom_diag, "fops", None)
    if fops is None:
        fops = fallback
    return [(str(op[0]), int(op[1])) for op in fops]


def density_matrix_in_eigenbasis(probabilities, atom_diag, block_names):
    """The impurity density matrix, diagonal in the occupation basis, in ``atom_diag``'s layout.

    ``rho = sum_{n_up, n_dn} p[n_up, n_dn] |n_up n_dn><n_up n_dn|`` is written, as
    triqs_cthyb's ``density_matrix``, as one matrix per invariant subspace ``a`` of
    ``atom_diag`` in its eigenbasis: ``rho_a = U_a^dagger diag(p(f), f in F_a) U_a`` with
    ``F_a = atom_diag.fock_states[a]`` and ``U_a = atom_diag.unitary_matrices[a]``
    (``H_a = U_a diag(E_a) U_a^dagger``).  Bit ``k`` of a Fock state is the occupation of
    ``atom_diag.fops[k]``; so the result holds whatever order of subspaces, states and
    operators ``atom_diag`` uses.

    Parameters
    ----------
    probabilities : ndarray (2, 2)
        ``p[n_up, n_dn]`` (:func:`occupation_probabilities`).
    atom_diag : AtomDiag
        ``triqs.atom_diag.AtomDiag`` or the light layer's, with ``n_subspaces``,
        ``fock_states``, ``unitary_matrices`` and ``fops``.
    block_names : (str, str)
        The operators ``(block_names[s], 0)`` of spin up and down.

    Returns
    -------
    list of ndarray
        One (dim_a, dim_a) matrix per subspace; real where ``U_a`` is.
    """
    fops = _fops_of(atom_diag, [(b, 0) for b in block_names])
    try:
        bits = [fops.index((str(b), 0)) for b in block_names]
    except ValueError:
        raise ValueError(f"the AtomDiag's operators {fops} do not include "
                         f"{[(b, 0) for b in block_names]}") from None
    out = []
    for a in range(int(atom_diag.n_subspaces)):
        states = np.asarray(atom_diag.fock_states[a], dtype=np.int64).reshape(-1)
        U = np.asarray(atom_diag.unitary_matrices[a])
        p = probabilities[(states >> bits[0]) & 1, (states >> bits[1]) & 1]
        rho = U.conj().T @ (p[:, None] * U)
        out.append(rho.real.copy() if not np.iscomplexobj(U) else rho)
    return out


def _operator_module(op):
    """The module holding ``c``, ``c_dag``, ``n`` of the algebra ``op`` belongs to (real
    ``triqs.operators`` or :mod:`triqs_mlsolver.operators`)."""
    mod = sys.modules.get(type(op).__module__)
    if mod is not None and all(hasattr(mod, f) for f in ("c", "c_dag", "n")):
        return mod
    from .. import operators

    return operators


def _backend_operator_module():
    """``triqs.operators`` where the Green's functions are TRIQS's, else the light ones."""
    if _gf.using_triqs():  # pragma: no cover - needs a TRIQS installation
        return importlib.import_module("triqs.operators")
    from .. import operators

    return operators


def local_hamiltonian(h_int, Delta_infty, block_names):
    """``(h_loc, h_loc0)`` as triqs_cthyb builds them, in the operator algebra of ``h_int``.

    ``h_loc0 = sum_s Re Delta_infty_s c_dag(b_s, 0) c(b_s, 0)`` is the quadratic part read
    from ``G0_iw`` (``Delta_infty_s = -mu_s``, the constant of ``i w - G0^-1``) and
    ``h_loc = h_int + h_loc0``.
    """
    ops = _operator_module(h_int)
    h_loc0 = 0 * ops.n(block_names[0], 0)
    for b, e in zip(block_names, Delta_infty):
        h_loc0 = h_loc0 + float(np.real(e[0, 0])) * ops.c_dag(b, 0) * ops.c(b, 0)
    return h_int + h_loc0, h_loc0


def _constant_of(op):
    """The constant term of an operator expression (0 if none)."""
    return float(sum(complex(coef).real for monomial, coef in op if len(monomial) == 0))


def make_atom_diag(h_loc, fops):
    """Diagonalise ``h_loc``: ``triqs.atom_diag.AtomDiag(h_loc, fops)`` for a real TRIQS
    operator, else the light layer's ``triqs_mlsolver.light.atom_diag.AtomDiag``.

    Raises
    ------
    ImportError
        The light layer has no ``atom_diag`` module (TRIQS's ``triqs.atom_diag``, in every
        TRIQS 3.x, provides it).
    """
    if type(h_loc).__module__.startswith("triqs."):  # pragma: no cover - real TRIQS
        from triqs.atom_diag import AtomDiag
    else:
        try:
            from ..light.atom_diag import AtomDiag
        except ImportError as exc:
            raise ImportError(
                "S.h_loc_diagonalization (and S.density_matrix, which is written in its "
                "eigenbasis) need triqs.atom_diag.AtomDiag, which the light TRIQS layer does "
                f"not provide here ({exc}); install TRIQS (triqs.atom_diag is in every TRIQS "
                "3.x) or read n_up, n_dn and <n_up n_dn> from S.density and "
                "S.double_occupancy") from exc
    return AtomDiag(h_loc, [tuple(f) for f in fops])


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
    Delta_infty : list of ndarray (1, 1) complex
        triqs_cthyb's ``Delta_infty``: per block (``gf_struct`` order) the constant part
        of ``i w - G0_iw^-1``, i.e. ``-mu`` (:func:`level_from_g0`).  ``None`` before
        :meth:`solve`.
    h_loc, h_loc0 : operator
        triqs_cthyb's local Hamiltonian ``h_loc = h_int + h_loc0`` with the quadratic part
        ``h_loc0 = sum_s Re Delta_infty_s n_s`` read from ``G0_iw``
        (:func:`local_hamiltonian`), in the operator algebra of ``h_int`` (real
        ``triqs.operators`` or the light one).  ``None`` before :meth:`solve`.
    h_loc_diagonalization : AtomDiag
        ``AtomDiag(h_loc, [(b, 0) for b in blocks])`` (:func:`make_atom_diag`), built on
        first access.
    density_matrix : list of ndarray
        The impurity density matrix in triqs_cthyb's layout: one matrix per subspace of
        ``h_loc_diagonalization``, in its eigenbasis
        (:func:`density_matrix_in_eigenbasis` of :func:`occupation_probabilities`).  For a
        single orbital it is diagonal in the occupations and follows from ``density`` and
        ``double_occupancy`` exactly.  Always available after :meth:`solve` (cthyb needs
        ``measure_density_matrix=True``), ``[]`` before; so
        ``trace_rho_op(S.density_matrix, op, S.h_loc_diagonalization)`` works as with cthyb.
    average_sign : float
        1.0 (a deterministic solver has no sign problem).
    average_order, auto_corr_time : float
        :data:`NOT_APPLICABLE` (NaN): Monte Carlo diagnostics with no meaning here.
    solve_status : int
        0 (cthyb's clean termination).
    density : ndarray (2,)
    double_occupancy : float or None
    solution : AIMSolution
        The plain-array result (with diagnostics).
    constr_params : dict
        The constructor's arguments (``last_constr_parameters`` in cthyb's spelling).
    last_solve_parameters : dict
        What the last :meth:`solve` used (``h_int`` as text, ``U``, the level ``mu`` per
        spin with ``h_int``'s one-body terms, the options); ``solve_parameters`` is the same
        dict, as in triqs_cthyb.
    """

    solver_name = ""
    #: Version of the HDF5 layout written by :meth:`__reduce_to_dict__` (2: triqs_cthyb's keys
    #: added, ``G_tau`` and ``G_l`` moved into ``container_set``).
    hdf5_version = 2

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.solver_name:
            _register_format(cls, f"triqs_mlsolver.{cls.__name__}")

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
        self.average_sign = 1.0
        self.average_order = NOT_APPLICABLE
        self.auto_corr_time = NOT_APPLICABLE
        self.solve_status = 0
        self.Delta_infty = None
        self.h_loc = None
        self.h_loc0 = None
        self._h_loc_constant = 0.0
        self._h_loc_diag = None
        self._density_matrix = None

    @property
    def block_names(self):
        return [n for n, _ in self.gf_struct]

    @property
    def solve_parameters(self):
        """triqs_cthyb's name of :attr:`last_solve_parameters` (the same dict)."""
        return self.last_solve_parameters

    @property
    def last_constr_parameters(self):
        """triqs_cthyb's name of :attr:`constr_params`."""
        return self.constr_params

    @property
    def fundamental_operators(self):
        """``[(block, 0), ...]``: the operators ``h_loc`` acts on, in ``gf_struct`` order."""
        return [(b, 0) for b in self.block_names]

    def solve(self, *, h_int=None, **options):
        """Solve the impurity problem defined by ``G0_iw`` and ``h_int``.

        Keyword-only; the accepted solver options are ``self.solver_options()``.
        """
        names = self.block_names
        opts = check_options(self._spec, options)
        U, shift = parse_h_int(h_int, names)
        g0 = np.stack([self.G0_iw[n].data[:, 0, 0] for n in names])
        check_g0(g0, self.beta, names)  # causal, 1/(i w) tail, this beta: or a named error
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
        self._set_static_results(h_int=h_int, mu_g0=params.mu + shift, density=sol.density,
                                 double_occupancy=sol.double_occupancy)
        return self

    def _set_cthyb_results(self, Delta_sw):
        """Fill ``Delta_tau`` from ``Delta_sw`` (2, 2 n_iw) and ``G_iw_raw``/``Sigma_iw_raw``
        from the current ``G_iw``/``Sigma_iw`` (called again by a subclass that changes them)."""
        delta_st = hybridisation_tau(Delta_sw, self.beta, self.n_tau)
        for s, n_ in enumerate(self.block_names):
            self.Delta_tau[n_].data[:, 0, 0] = delta_st[s]
        self.G_iw_raw << self.G_iw
        self.Sigma_iw_raw << self.Sigma_iw

    def _set_static_results(self, *, h_int, mu_g0, density, double_occupancy):
        """Fill triqs_cthyb's static results of one solve.

        Sets ``Delta_infty``, ``h_loc``, ``h_loc0`` and the state from which
        ``density_matrix`` and ``h_loc_diagonalization`` are built on first access
        (``average_sign``, ``average_order``, ``auto_corr_time``, ``solve_status`` are
        constants set by the constructor).  :meth:`solve` calls it; a subclass whose
        ``solve`` does not call :meth:`solve` calls it once per solve, after the
        results are set.

        Parameters
        ----------
        h_int : operator
            The interaction given to ``solve()``.
        mu_g0 : array_like (2,)
            The level read from ``G0_iw`` alone, ``G0^-1 = i w + mu_g0 - Delta``
            (:func:`level_from_g0`); with ``params = params_from_g0(g0, beta, U, shift)``
            it is ``params.mu + shift``.
        density : array_like (2,)
            ``<n_up>, <n_dn>`` of the solution.
        double_occupancy : float or None
            ``<n_up n_dn>`` of the solution.
        """
        mu_g0 = np.asarray(mu_g0, float).reshape(2)
        self.Delta_infty = [np.full((1, 1), -m, dtype=complex) for m in mu_g0]
        self.h_loc, self.h_loc0 = local_hamiltonian(h_int, self.Delta_infty, self.block_names)
        self._h_loc_constant = _constant_of(h_int)
        self.density = np.asarray(density, float)
        self.double_occupancy = None if double_occupancy is None else float(double_occupancy)
        self._h_loc_diag = None
        self._density_matrix = None

    @property
    def h_loc_diagonalization(self):
        """``AtomDiag`` of ``h_loc`` (cthyb's ``h_loc_diagonalization``), built on first use."""
        if self._h_loc_diag is None:
            if self.h_loc is None:
                raise AttributeError(
                    f"{type(self).__name__}.h_loc_diagonalization is set by solve(); call "
                    "S.solve(h_int=...) first")
            self._h_loc_diag = make_atom_diag(self.h_loc, self.fundamental_operators)
        return self._h_loc_diag

    @property
    def density_matrix(self):
        """The impurity density matrix in cthyb's layout (see the class docstring)."""
        if self._density_matrix is None:
            if self.density is None:
                return []
            p = occupation_probabilities(self.density, self.double_occupancy)
            self._density_matrix = density_matrix_in_eigenbasis(
                p, self.h_loc_diagonalization, self.block_names)
        return self._density_matrix

    # -- HDF5 round trip (TRIQS convention) -----------------------------------------
    #: The Green's functions stored at the top of :meth:`__reduce_to_dict__`'s group.
    _STORED_GFS = ("G0_iw", "G_iw", "Sigma_iw", "Delta_tau", "G_iw_raw", "Sigma_iw_raw")
    #: Those that files written before they existed lack.
    _OPTIONAL_GFS = ("Delta_tau", "G_iw_raw", "Sigma_iw_raw")
    #: triqs_cthyb's ``container_set`` (the measured Green's functions), a group in layout 2.
    _CONTAINER_GFS = ("G_tau", "G_l")

    def __reduce_to_dict__(self):
        """The HDF5 group of ``ar['S'] = S`` (layout :attr:`hdf5_version`).

        triqs_cthyb's keys (its ``h5_write`` of ``solver_core``): ``constr_parameters``,
        ``solve_parameters``, ``container_set`` (``G_tau``, ``G_l``), ``G0_iw``,
        ``Delta_tau``, ``h_loc`` (a TRIQS ``Operator``; with the light layer its text),
        ``h_diag`` (the ``AtomDiag``; real TRIQS only), ``density_matrix``,
        ``average_sign``, ``average_order``, ``auto_corr_time``, ``solve_status`` and,
        after a solve, ``Delta_infty_vec``.  This package's: ``hdf5_version``,
        ``solver_name``, ``constr_params``, ``last_solve_parameters`` (the same values as
        the cthyb-named pair), ``G_iw``, ``Sigma_iw``, ``G_iw_raw``, ``Sigma_iw_raw``,
        ``density``, ``double_occupancy``, ``h_loc_constant``.
        """
        constr = {**self.constr_params, "gf_struct": [tuple(x) for x in self.gf_struct]}
        # None (= the default) cannot be stored in the TRIQS scheme: omitted
        solve_params = _storable_parameters(self.last_solve_parameters)
        d = {
            "hdf5_version": self.hdf5_version,
            "solver_name": self.solver_name,
            "constr_params": constr,
            "constr_parameters": {**constr, "delta_interface": False},
            "last_solve_parameters": solve_params,
            "solve_parameters": dict(solve_params),
            "container_set": {key: getattr(self, key) for key in self._CONTAINER_GFS},
            **{key: getattr(self, key) for key in self._STORED_GFS},
            "average_sign": float(self.average_sign),
            "average_order": float(self.average_order),
            "auto_corr_time": float(self.auto_corr_time),
            "solve_status": int(self.solve_status),
            "h_loc_constant": float(self._h_loc_constant),
        }
        if self.density is not None:
            d["density"] = np.asarray(self.density)
        if self.double_occupancy is not None:
            d["double_occupancy"] = float(self.double_occupancy)
        if self.Delta_infty is not None:
            d["Delta_infty_vec"] = [np.asarray(m) for m in self.Delta_infty]
        if self.h_loc is not None:
            d["h_loc"] = self.h_loc if hasattr(self.h_loc, "__write_hdf5__") else str(self.h_loc)
            try:
                d["density_matrix"] = [np.asarray(m) for m in self.density_matrix]
                if hasattr(self._h_loc_diag, "__write_hdf5__"):
                    d["h_diag"] = self._h_loc_diag
            except ImportError:  # no AtomDiag here: rebuilt on reading where there is one
                pass
        else:
            d["density_matrix"] = []
        return d

    @classmethod
    def __factory_from_dict__(cls, name, d):
        version = int(d.get("hdf5_version", 0))
        if version > cls.hdf5_version:
            raise ValueError(
                f"{cls.__name__} stored with layout version {version}, newer than this "
                f"package's {cls.hdf5_version}; upgrade triqs_mlsolver to read it"
            )
        cp = dict(d["constr_params"] if "constr_params" in d else d["constr_parameters"])
        cp.pop("delta_interface", None)
        cp["gf_struct"] = [tuple(x) for x in cp["gf_struct"]]
        obj = cls(**cp)
        container = d.get("container_set", d)  # layout 1: G_tau, G_l at the top
        for key in cls._CONTAINER_GFS:
            getattr(obj, key) << container[key]
        for key in cls._STORED_GFS:
            if key in d or key not in cls._OPTIONAL_GFS:
                getattr(obj, key) << d[key]
        obj.last_solve_parameters = dict(d.get("last_solve_parameters",
                                               d.get("solve_parameters", {})))
        obj.density = d.get("density")
        obj.double_occupancy = d.get("double_occupancy")
        for key in ("average_sign", "average_order", "auto_corr_time"):
            if key in d:
                setattr(obj, key, float(d[key]))
        obj.solve_status = int(d.get("solve_status", 0))
        obj._h_loc_constant = float(d.get("h_loc_constant", 0.0))
        if "Delta_infty_vec" in d:
            obj.Delta_infty = [np.asarray(m, dtype=complex).reshape(1, 1)
                               for m in d["Delta_infty_vec"]]
        obj.h_loc = d.get("h_loc")
        if isinstance(obj.h_loc, str):
            obj.h_loc = obj._rebuilt_h_loc()
        if obj.h_loc is not None and obj.Delta_infty is not None:
            ops = _operator_module(obj.h_loc)
            obj.h_loc0 = local_hamiltonian(0 * ops.n(obj.block_names[0], 0),
                                           obj.Delta_infty, obj.block_names)[1]
        if "h_diag" in d:
            obj._h_loc_diag = d["h_diag"]
        if d.get("density_matrix"):
            obj._density_matrix = [np.asarray(m) for m in d["density_matrix"]]
        return obj

    def _rebuilt_h_loc(self):
        """``h_loc`` from the stored numbers (light-layer archives store its text): ``U n_up
        n_dn - sum_s mu_s n_s + const`` with ``U``, ``mu`` of ``last_solve_parameters``."""
        lsp = self.last_solve_parameters
        if "U" not in lsp or "mu" not in lsp:
            return None
        ops = _backend_operator_module()
        up, dn = self.block_names
        h = float(lsp["U"]) * ops.n(up, 0) * ops.n(dn, 0)
        if self._h_loc_constant:
            h = h + self._h_loc_constant
        for b, m in zip((up, dn), lsp["mu"]):
            h = h - float(m) * ops.n(b, 0)
        return h

    def solver_options(self) -> dict:
        """The options :meth:`solve` accepts, with their defaults."""
        return dict(self._spec.options)


def _storable_parameters(params):
    """``params`` without the values the TRIQS HDF5 scheme cannot hold (``None``); other
    values that are not numbers, text, arrays or lists and dicts of them are stored as text."""
    def ok(v):
        if isinstance(v, (bool, int, float, complex, str, np.generic, np.ndarray)):
            return True
        if isinstance(v, (list, tuple)):
            return all(ok(x) for x in v)
        if isinstance(v, dict):
            return all(isinstance(k, str) and ok(x) for k, x in v.items())
        return False

    return {k: (v if ok(v) else str(v)) for k, v in params.items() if v is not None}


def _register_format(cls, fmt):
    """Register ``cls`` for HDF5 under the Format ``fmt`` and set ``cls._hdf5_format_``.

    TRIQS's ``h5`` writes the Format ``val._hdf5_format_`` (else the class name) and refuses
    to write one that is not registered; the light layer looks the class up.  Real ``h5``
    asserts that a Format is registered once: a second registration of the same class (a
    module reloaded) is ignored.
    """
    cls._hdf5_format_ = fmt
    try:
        _gf.register_class(cls, hdf5_format=fmt)
    except (AssertionError, ValueError):  # pragma: no cover - registered before
        if not _gf.using_triqs():
            raise
