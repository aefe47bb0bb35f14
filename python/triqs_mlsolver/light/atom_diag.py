# SPDX-License-Identifier: Apache-2.0
r"""``triqs.atom_diag``: exact diagonalisation of a small atom (a few fermionic modes).

The light layer's version of TRIQS 3.2's ``atom_diag`` (this package's code, TRIQS's
names and layouts)::

    from triqs.atom_diag import *
    from triqs.operators import n
    h = U * n('up', 0) * n('down', 0) - mu * (n('up', 0) + n('down', 0))
    ad = AtomDiag(h, [('up', 0), ('down', 0)])
    rho = atomic_density_matrix(ad, beta)            # one matrix per subspace
    docc = trace_rho_op(rho, n('up', 0) * n('down', 0), ad)
    G_iw = atomic_g_iw(ad, beta, [('up', 1), ('down', 1)], n_iw=100)

How it works
------------
The Fock space of the modes ``fops`` (bit ``k`` of a Fock state is the occupation of
``fops[k]``; :math:`c^\dagger_k` carries the sign :math:`(-1)^{\sum_{j<k} n_j}`) is
split into invariant subspaces as TRIQS's auto-partition does: states connected by
``h`` (and by ``hyb``, if given) are joined, then subspaces are merged until every
:math:`c_k` and :math:`c^\dagger_k` maps each subspace into a single one.  With
``qn_vector`` the subspaces are instead the sets of Fock states with equal quantum
numbers.  Each subspace is diagonalised densely (``numpy.linalg.eigh``); the subspaces
are ordered by their lowest energy, and all energies are shifted so that the ground
state has energy 0 (``gs_energy`` keeps the unshifted value), as in TRIQS.

States in the eigenbasis are vectors of ``full_hilbert_space_dim`` entries in which
subspace ``sp`` occupies ``flatten_subspace_index(sp, 0) ...`` (its dimension);
block matrices (density matrices) are lists of one matrix per subspace.

Limits: at most :data:`MAX_MODES` modes and :data:`MAX_SUBSPACE_DIM` states per
invariant subspace (dense diagonalisation); HDF5 storage of an ``AtomDiag`` is not
provided.
"""

from __future__ import annotations

import math
import numbers
from collections import namedtuple

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.special import ive

from ..gf import BlockGf, Gf, MeshImFreq, MeshImTime, MeshLegendre, normalize_gf_struct
from ..gf._meshes import MeshReFreq
from ..operators import Operator, c, c_dag, dagger, monomials

_NAMES = ("AtomDiag", "AtomDiagReal", "AtomDiagComplex", "partition_function",
          "atomic_density_matrix", "trace_rho_op", "act", "quantum_number_eigenvalues",
          "quantum_number_eigenvalues_checked", "atomic_g_tau", "atomic_g_iw", "atomic_g_l",
          "atomic_g_w")

#: ``{TRIQS module: names served there}`` (see :mod:`triqs_mlsolver.light`).
SERVED = {"triqs.atom_diag": _NAMES, "pytriqs.atom_diag": _NAMES}

__all__ = [*_NAMES, "EigenSystem", "MAX_MODES", "MAX_SUBSPACE_DIM"]

#: Largest number of fermionic modes (the Fock space has ``2**MAX_MODES`` states).
MAX_MODES = 16
#: Largest invariant subspace diagonalised (dense).
MAX_SUBSPACE_DIM = 4096
_ENERGY_SPLIT = 1e-10  # TRIQS orders subspaces by (lowest energy + 1e-10 * index, index)

#: The eigensystem of one subspace: ``eigenvalues`` (ascending, shifted by the ground
#: state energy) and ``unitary_matrix`` (columns: eigenvectors in the subspace's Fock basis).
EigenSystem = namedtuple("EigenSystem", ["eigenvalues", "unitary_matrix"])


# ---------------------------------------------------------------------------
#  Fock-space action of a monomial
# ---------------------------------------------------------------------------
def _apply_word(word, states, mode_index):
    """Apply the monomial ``word`` to the Fock states ``states`` (int64 array).

    Returns ``(targets, signs, alive)``: ``word |s> = signs * |targets>`` where ``alive``.
    """
    targets = states.copy()
    signs = np.ones(len(states))
    alive = np.ones(len(states), dtype=bool)
    for dag, block, index in reversed(word):  # the rightmost operator acts first
        k = mode_index[(block, index)]
        bit = np.int64(1) << k
        occupied = (targets & bit) != 0
        alive &= ~occupied if dag else occupied
        parity = np.zeros(len(states), dtype=np.int64)
        for j in range(k):
            parity ^= (targets >> j) & 1
        signs = np.where(parity == 1, -signs, signs)
        targets = targets ^ bit
    return targets, signs, alive


def _operator_coo(op, states, mode_index):
    """``(rows, cols, values)`` of ``op`` on the Fock states ``states`` (rows = images)."""
    rows, cols, vals = [], [], []
    for word, coef in monomials(op):
        t, s, ok = _apply_word(word, states, mode_index)
        rows.append(t[ok])
        cols.append(states[ok])
        vals.append(coef * s[ok])
    if not rows:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)


def _merge_labels(labels, pairs_list):
    """Coarsest-needed merge so that every map in ``pairs_list`` sends a label to one label.

    ``pairs_list``: ``(sources, targets)`` Fock-state arrays of each operator.  Returns new
    labels (``0 ... n-1``), merging repeatedly until stable.
    """
    while True:
        n = labels.max() + 1
        rows, cols = [], []
        for src, tgt in pairs_list:
            pairs = np.unique(np.stack([labels[src], labels[tgt]], axis=1), axis=0)
            same = pairs[1:, 0] == pairs[:-1, 0]  # one source label, several target labels
            rows.append(pairs[1:, 1][same])
            cols.append(pairs[:-1, 1][same])
        rows, cols = np.concatenate(rows), np.concatenate(cols)
        if len(rows) == 0:
            return labels
        graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
        n_new, relabel = connected_components(graph, directed=False)
        if n_new == n:
            return labels
        labels = relabel[labels]


def _check_fops(fops):
    if isinstance(fops, (str, bytes)) or not hasattr(fops, "__iter__"):
        raise TypeError(f"fops must be a list of (block, index) pairs such as [('up', 0), "
                        f"('down', 0)]; got {fops!r}")
    out = []
    for f in fops:
        if not (isinstance(f, (tuple, list)) and len(f) == 2 and isinstance(f[0], str)
                and isinstance(f[1], (numbers.Integral, str)) and not isinstance(f[1], bool)):
            raise TypeError(f"fops entry {f!r} is not a (block, index) pair such as ('up', 0)")
        idx = f[1] if isinstance(f[1], str) else int(f[1])
        if (f[0], idx) in out:
            raise ValueError(f"fops lists {(f[0], idx)!r} twice")
        out.append((f[0], idx))
    if not out:
        raise ValueError("fops is empty; list the modes, e.g. [('up', 0), ('down', 0)]")
    if len(out) > MAX_MODES:
        raise ValueError(
            f"fops has {len(out)} modes; the light atom_diag diagonalises at most {MAX_MODES} "
            f"(2**{MAX_MODES} Fock states). Use TRIQS's atom_diag for larger atoms")
    return out


def _check_operator(op, what):
    if not isinstance(op, Operator):
        raise TypeError(f"{what} must be an Operator (built from c, c_dag, n of "
                        f"triqs.operators), not a {type(op).__name__}")


# ---------------------------------------------------------------------------
#  AtomDiag
# ---------------------------------------------------------------------------
class _AtomDiagBase:
    """Exact diagonalisation of ``h`` on the Fock space of ``fops`` (see the module doc).

    Construct as in TRIQS: ``AtomDiag(h, fops)``, ``AtomDiag(h, fops, n_min, n_max)``
    (only Fock states with ``n_min <= N <= n_max`` particles), ``AtomDiag(h, hyb, fops)``
    (subspaces also respect the operator ``hyb``), ``AtomDiag(h, fops, qn_vector)``
    (subspaces from the quantum numbers ``qn_vector``, a list of Operators).

    Attributes
    ----------
    h_atomic : Operator
        The Hamiltonian.
    fops : list of (str, int or str)
        The modes, in the order of the bits of the Fock states.
    full_hilbert_space_dim : int
        ``2 ** len(fops)``.
    n_subspaces : int
    energies : list of ndarray
        Per subspace, the eigenvalues ascending, minus ``gs_energy``.
    eigensystems : list of EigenSystem
        Per subspace, ``(eigenvalues, unitary_matrix)``.
    unitary_matrices : list of ndarray
        Per subspace, eigenvectors as columns in the basis ``fock_states[sp]``.
    fock_states : list of list of int
        Per subspace, its Fock states (bit masks), ascending.
    gs_energy : float
        The ground-state energy (not shifted).
    quantum_numbers : list of list of float
        Per subspace, the values of ``qn_vector`` (empty with auto-partition).
    vacuum_subspace_index : int
    vacuum_state : ndarray
        The empty state in the eigenbasis (full-space vector).
    """

    _complex = False

    def __init__(self, h, fops, *args, n_min=None, n_max=None, qn_vector=None, hyb=None):
        _check_operator(h, "h")
        if isinstance(fops, Operator):  # AtomDiag(h, hyb, fops)
            if not args or hyb is not None:
                raise TypeError("AtomDiag(h, hyb, fops) needs fops after the operator hyb")
            hyb, fops, args = fops, args[0], args[1:]
        if len(args) == 2:
            n_min, n_max = args
        elif len(args) == 1:
            qn_vector = args[0]
        elif args:
            raise TypeError(f"AtomDiag takes (h, fops), (h, fops, n_min, n_max), (h, hyb, "
                            f"fops) or (h, fops, qn_vector); got {len(args) + 2} arguments")
        self._h = h
        self._fops = _check_fops(fops)
        self._mode_index = {f: k for k, f in enumerate(self._fops)}
        missing = sorted(set(_fundamental(h)) - set(self._fops), key=str)
        if missing:
            raise ValueError(f"h acts on {missing}, which fops {self._fops} does not list; "
                             "add them to fops")
        if not self._complex and any(isinstance(v, complex) and v.imag != 0
                                     for _, v in monomials(h)):
            raise TypeError("h has complex coefficients; use AtomDiagComplex (AtomDiag "
                            "chooses it by itself)")
        dim = 1 << len(self._fops)
        states = np.arange(dim, dtype=np.int64)
        rows, cols, vals = _operator_coo(h, states, self._mode_index)
        vals = np.asarray(vals, dtype=complex) if self._complex else np.real(vals).astype(float)
        h_full = coo_matrix((vals, (rows, cols)), shape=(dim, dim)).tocsr()
        if abs(h_full - h_full.conj().T).max() > 1e-12 * max(1.0, abs(h_full).max()):
            raise ValueError("h is not Hermitian (h != dagger(h)); AtomDiag needs a Hamiltonian")
        if qn_vector is not None:
            if n_min is not None or hyb is not None:
                raise TypeError("qn_vector cannot be combined with n_min/n_max or hyb")
            labels, qns = self._partition_with_qn(qn_vector, states, h_full)
        else:
            labels, qns = self._autopartition(states, h_full, hyb), None
        keep = np.ones(dim, dtype=bool)
        if n_min is not None or n_max is not None:
            lo = 0 if n_min is None else int(n_min)
            hi = len(self._fops) if n_max is None else int(n_max)
            count = np.zeros(dim, dtype=np.int64)
            for k in range(len(self._fops)):
                count += (states >> k) & 1
            keep = (count >= lo) & (count <= hi)
        self._build(labels, keep, h_full, qns)

    @classmethod
    def _dtype(cls):
        return complex if cls._complex else float

    # -- partitions -------------------------------------------------------------------
    def _autopartition(self, states, h_full, hyb):
        dim = len(states)
        graph = h_full.tocoo()
        if hyb is not None:
            _check_operator(hyb, "hyb")
            r, cc, v = _operator_coo(hyb, states, self._mode_index)
            extra = coo_matrix((np.ones(len(r)), (r, cc)), shape=(dim, dim))
            graph = (abs(graph) + extra).tocoo()
        graph = coo_matrix((np.ones(graph.nnz), (graph.row, graph.col)), shape=(dim, dim))
        _, labels = connected_components(graph, directed=False)
        maps = []
        for f in self._fops:
            for op in (c(*f), c_dag(*f)):
                t, _, ok = _apply_word(monomials(op)[0][0], states, self._mode_index)
                maps.append((states[ok], t[ok]))
        return _merge_labels(labels, maps)

    def _partition_with_qn(self, qn_vector, states, h_full):
        qn_vector = list(qn_vector)
        values = np.zeros((len(states), len(qn_vector)))
        for q, op in enumerate(qn_vector):
            _check_operator(op, "every element of qn_vector")
            r, cc, v = _operator_coo(op, states, self._mode_index)
            diagonal = r == cc
            np.add.at(values[:, q], cc[diagonal], np.real(v[diagonal]))
        keys = [tuple(np.round(row, 8)) for row in values]
        first = {}
        labels = np.array([first.setdefault(k, len(first)) for k in keys])
        hc = h_full.tocoo()
        if np.any(labels[hc.row] != labels[hc.col]):
            raise ValueError("h connects Fock states with different quantum numbers: the "
                             "operators of qn_vector are not conserved by h")
        qns = [list(k) for k in first]
        return labels, qns

    # -- diagonalisation ----------------------------------------------------------------
    def _build(self, labels, keep, h_full, qns):
        groups = {}
        for s in np.flatnonzero(keep):  # ascending Fock states, subspaces in order of discovery
            groups.setdefault(int(labels[s]), []).append(int(s))
        spaces = list(groups.values())
        qn_of = None if qns is None else [qns[lab] for lab in groups]
        systems = []
        for fock in spaces:
            if len(fock) > MAX_SUBSPACE_DIM:
                raise ValueError(
                    f"an invariant subspace has {len(fock)} states, more than the "
                    f"{MAX_SUBSPACE_DIM} the light atom_diag diagonalises; use TRIQS's atom_diag")
            block = h_full[fock][:, fock].toarray()
            e, u = np.linalg.eigh(block)
            systems.append((e, u.astype(self._dtype(), copy=False)))
        order = sorted(range(len(spaces)), key=lambda sp: (systems[sp][0][0] + _ENERGY_SPLIT * sp,
                                                           sp))
        self._fock_states = [spaces[sp] for sp in order]
        self.gs_energy = float(min(systems[sp][0][0] for sp in order)) if order else 0.0
        self._eigensystems = [EigenSystem(systems[sp][0] - self.gs_energy, systems[sp][1])
                              for sp in order]
        self._quantum_numbers = [] if qn_of is None else [qn_of[sp] for sp in order]
        self._where = {}  # Fock state -> (subspace, position)
        for sp, fock in enumerate(self._fock_states):
            for i, s in enumerate(fock):
                self._where[s] = (sp, i)
        dims = [len(f) for f in self._fock_states]
        self._first = np.concatenate([[0], np.cumsum(dims)]).astype(int)
        self._c = [self._op_blocks(c(*f)) for f in self._fops]
        self._cdag = [self._op_blocks(c_dag(*f)) for f in self._fops]
        self.vacuum_subspace_index = self._where[0][0] if 0 in self._where else -1
        self.vacuum_state = np.zeros(self.full_hilbert_space_dim, dtype=self._dtype())
        if self.vacuum_subspace_index >= 0:
            sp = self.vacuum_subspace_index
            self.vacuum_state[self._range(sp)] = np.conj(self._eigensystems[sp].unitary_matrix[0])

    def _op_blocks(self, op):
        """``[{target subspace: matrix in the eigenbases}]`` of ``op``, one dict per subspace."""
        blocks = []
        for sp, fock in enumerate(self._fock_states):
            states = np.array(fock, dtype=np.int64)
            out = {}
            for word, coef in monomials(op):
                t, s, ok = _apply_word(word, states, self._mode_index)
                for i in np.flatnonzero(ok):
                    where = self._where.get(int(t[i]))
                    if where is None:  # outside [n_min, n_max]
                        continue
                    tsp, j = where
                    m = out.get(tsp)
                    if m is None:
                        m = out[tsp] = np.zeros((len(self._fock_states[tsp]), len(fock)),
                                                dtype=complex)
                    m[j, i] += coef * s[i]
            u_from = self._eigensystems[sp].unitary_matrix
            blocks.append({tsp: self._cast(self._eigensystems[tsp].unitary_matrix.conj().T @ m
                                           @ u_from) for tsp, m in out.items()})
        return blocks

    def _cast(self, m):
        if self._complex:
            return m.astype(complex)
        return m.real.copy()

    def _range(self, sp):
        return slice(int(self._first[sp]), int(self._first[sp + 1]))

    def _check_subspace(self, sp):
        if isinstance(sp, bool) or not isinstance(sp, numbers.Integral) or not (
                0 <= sp < self.n_subspaces):
            raise IndexError(f"subspace index {sp!r} is not in [0, {self.n_subspaces})")
        return int(sp)

    # -- TRIQS's attributes and methods ---------------------------------------------------
    @property
    def h_atomic(self):
        return self._h

    @property
    def fops(self):
        return list(self._fops)

    @property
    def full_hilbert_space_dim(self):
        return 1 << len(self._fops)

    @property
    def n_subspaces(self):
        return len(self._fock_states)

    @property
    def energies(self):
        return [es.eigenvalues.copy() for es in self._eigensystems]

    @property
    def eigensystems(self):
        return list(self._eigensystems)

    @property
    def unitary_matrices(self):
        return [es.unitary_matrix.copy() for es in self._eigensystems]

    @property
    def fock_states(self):
        return [list(f) for f in self._fock_states]

    @property
    def quantum_numbers(self):
        return [list(q) for q in self._quantum_numbers]

    def get_subspace_dim(self, sp_index):
        """The dimension of subspace ``sp_index``."""
        return len(self._fock_states[self._check_subspace(sp_index)])

    def get_subspace_dims(self):
        """The dimensions of all subspaces."""
        return [len(f) for f in self._fock_states]

    def flatten_subspace_index(self, sp_index, i):
        """The index in a full-space state vector of eigenstate ``i`` of ``sp_index``."""
        sp = self._check_subspace(sp_index)
        if not 0 <= i < self.get_subspace_dim(sp):
            raise IndexError(f"state {i} is not in subspace {sp} of dimension "
                             f"{self.get_subspace_dim(sp)}")
        return int(self._first[sp] + i)

    def get_eigenvalue(self, sp_index, i):
        """Eigenvalue ``i`` of subspace ``sp_index`` (shifted by ``gs_energy``)."""
        return float(self._eigensystems[self._check_subspace(sp_index)].eigenvalues[i])

    def _connection(self, table, op_linear_index, sp_index):
        sp = self._check_subspace(sp_index)
        targets = list(table[op_linear_index][sp])
        return targets[0] if targets else -1

    def c_connection(self, op_linear_index, sp_index):
        """The subspace that ``c`` of ``fops[op_linear_index]`` maps ``sp_index`` to (-1: none)."""
        return self._connection(self._c, op_linear_index, sp_index)

    def cdag_connection(self, op_linear_index, sp_index):
        """As :meth:`c_connection` for the creation operator."""
        return self._connection(self._cdag, op_linear_index, sp_index)

    def c_matrix(self, op_linear_index, sp_index):
        """The block of ``c`` of ``fops[op_linear_index]`` from ``sp_index`` (eigenbases)."""
        target = self.c_connection(op_linear_index, sp_index)
        return None if target < 0 else self._c[op_linear_index][sp_index][target].copy()

    def cdag_matrix(self, op_linear_index, sp_index):
        """As :meth:`c_matrix` for the creation operator."""
        target = self.cdag_connection(op_linear_index, sp_index)
        return None if target < 0 else self._cdag[op_linear_index][sp_index][target].copy()

    def __repr__(self):
        lines = [f"{type(self).__name__}: {len(self._fops)} modes {self._fops}, "
                 f"{self.n_subspaces} invariant subspaces, ground state energy "
                 f"{self.gs_energy:.12g}"]
        for sp, es in enumerate(self._eigensystems):
            e = ", ".join(f"{x:.6g}" for x in es.eigenvalues[:8])
            more = " ..." if len(es.eigenvalues) > 8 else ""
            lines.append(f"  subspace {sp}: dim {len(es.eigenvalues)}, energies [{e}{more}]")
        return "\n".join(lines)

    __str__ = __repr__


class AtomDiagReal(_AtomDiagBase):
    __doc__ = _AtomDiagBase.__doc__.replace(
        "Exact diagonalisation", "Exact diagonalisation (real Hamiltonian)", 1)


class AtomDiagComplex(_AtomDiagBase):
    __doc__ = _AtomDiagBase.__doc__.replace(
        "Exact diagonalisation", "Exact diagonalisation (complex Hamiltonian)", 1)
    _complex = True


def AtomDiag(*args, **kwargs):
    """An :class:`AtomDiagReal`, or an :class:`AtomDiagComplex` if ``h`` has complex terms.

    Takes the arguments of the classes: ``(h, fops)``, ``(h, fops, n_min, n_max)``,
    ``(h, hyb, fops)``, ``(h, fops, qn_vector)``.
    """
    h = args[0] if args else kwargs.get("h")
    if h is None:
        raise TypeError("AtomDiag needs the Hamiltonian: AtomDiag(h, fops)")
    _check_operator(h, "h")
    complex_terms = any(isinstance(v, complex) and v.imag != 0 for _, v in monomials(h))
    return (AtomDiagComplex if complex_terms else AtomDiagReal)(*args, **kwargs)


def _fundamental(op):
    return {(block, index) for word, _ in monomials(op) for _, block, index in word}


def _check_atom(atom):
    if not isinstance(atom, _AtomDiagBase):
        raise TypeError(f"expected an AtomDiag, got a {type(atom).__name__}")


# ---------------------------------------------------------------------------
#  free functions
# ---------------------------------------------------------------------------
def _boltzmann(atom, beta):
    beta = float(beta)
    if not beta > 0 or not math.isfinite(beta):
        raise ValueError(f"beta={beta!r} must be a positive finite inverse temperature")
    return [np.exp(-beta * es.eigenvalues) for es in atom.eigensystems]


def partition_function(atom, beta):
    r""":math:`Z = \sum_i e^{-\beta (E_i - E_0)}` (energies shifted by ``gs_energy``, as TRIQS)."""
    _check_atom(atom)
    return float(sum(w.sum() for w in _boltzmann(atom, beta)))


def atomic_density_matrix(atom, beta):
    r"""The Gibbs density matrix :math:`e^{-\beta H}/Z`: one diagonal matrix per subspace
    (in the eigenbasis), as TRIQS's block matrix."""
    _check_atom(atom)
    weights = _boltzmann(atom, beta)
    z = sum(w.sum() for w in weights)
    return [np.diag(w / z).astype(atom._dtype()) for w in weights]


def _op_blocks_of(op, atom):
    _check_operator(op, "op")
    missing = sorted(_fundamental(op) - set(atom.fops), key=str)
    if missing:
        raise ValueError(f"the operator acts on {missing}, which are not among the modes "
                         f"{atom.fops} of this AtomDiag")
    return atom._op_blocks(op)


def trace_rho_op(density_matrix, op, atom):
    r""":math:`\mathrm{Tr}(\rho\, \mathrm{op})` for a block density matrix (one matrix per
    subspace, eigenbasis) such as :func:`atomic_density_matrix` returns.

    Real (float) when ``op`` and ``density_matrix`` are Hermitian, complex otherwise.
    """
    _check_atom(atom)
    if len(density_matrix) != atom.n_subspaces:
        raise ValueError(f"trace_rho_op: the density matrix has {len(density_matrix)} blocks, "
                         f"the AtomDiag {atom.n_subspaces} subspaces")
    blocks = _op_blocks_of(op, atom)
    result = 0j
    hermitian_rho = True
    for sp, rho in enumerate(density_matrix):
        rho = np.asarray(rho)
        if rho.shape != (atom.get_subspace_dim(sp),) * 2:
            raise ValueError(f"trace_rho_op: block {sp} of the density matrix has shape "
                             f"{rho.shape}, the subspace dimension is {atom.get_subspace_dim(sp)}")
        hermitian_rho &= bool(np.array_equal(rho, rho.conj().T))
        m = blocks[sp].get(sp)
        if m is not None:
            result += np.trace(m @ rho)
    if hermitian_rho and (op - dagger(op)).is_zero():
        return float(result.real)
    return complex(result)


def act(op, st, atom):
    """``op`` applied to the state ``st`` (a full-space vector in the eigenbasis)."""
    _check_atom(atom)
    st = np.asarray(st)
    if st.shape != (atom.full_hilbert_space_dim,):
        raise ValueError(f"act: the state has shape {st.shape}; expected "
                         f"({atom.full_hilbert_space_dim},) (full Hilbert space, eigenbasis)")
    blocks = _op_blocks_of(op, atom)
    dtype = np.result_type(st.dtype, atom._dtype(),
                           *(type(v) for _, v in monomials(op)))
    out = np.zeros(atom.full_hilbert_space_dim, dtype=dtype)
    for sp, targets in enumerate(blocks):
        for tsp, m in targets.items():
            out[atom._range(tsp)] += m @ st[atom._range(sp)]
    return out


def _quantum_number_blocks(op, atom):
    _check_atom(atom)
    h = atom.h_atomic
    if not (op * h - h * op).is_almost_zero():
        raise RuntimeError("The operator is not a quantum number: it does not commute with "
                           "the Hamiltonian of this AtomDiag")
    return _op_blocks_of(op, atom)


def quantum_number_eigenvalues(op, atom):
    """The value of the conserved ``op`` in every eigenstate: a list per subspace."""
    blocks = _quantum_number_blocks(op, atom)
    out = []
    for sp in range(atom.n_subspaces):
        m = blocks[sp].get(sp)
        d = atom.get_subspace_dim(sp)
        out.append([0.0] * d if m is None else [float(x) for x in np.real(np.diag(m))])
    return out


def quantum_number_eigenvalues_checked(op, atom):
    """As :func:`quantum_number_eigenvalues`, also checking that ``op`` is diagonal in the
    eigenbasis (``RuntimeError`` otherwise)."""
    blocks = _quantum_number_blocks(op, atom)
    for sp, targets in enumerate(blocks):
        for tsp, m in targets.items():
            off = m if tsp != sp else m - np.diag(np.diag(m))
            if np.sum(np.abs(off)) > 1e-11:
                raise RuntimeError("The matrix of the operator is not diagonal in the "
                                   "eigenbasis of the AtomDiag")
    return quantum_number_eigenvalues(op, atom)


# -- Green's functions (Lehmann representation) ------------------------------------------
def _lehmann(atom, beta, gf_struct, excluded_states):
    """``[(block, size, [(i1, i2, poles, residues), ...])]`` of the atomic Green's function.

    :math:`G_{12}(z) = \\sum_{ab} (w_a + w_b) \\langle a|c_1|b\\rangle \\langle b|c^\\dagger_2
    |a\\rangle / (z - (E_b - E_a))`, with Gibbs weights ``w``.
    """
    _check_atom(atom)
    struct = normalize_gf_struct(gf_struct, stacklevel=4)
    weights = _boltzmann(atom, beta)
    z = sum(w.sum() for w in weights)
    weights = [w / z for w in weights]
    excluded = set()
    for pair in excluded_states:
        sp, i = pair
        excluded.add((int(sp), int(i)))
    index = {f: k for k, f in enumerate(atom.fops)}
    energies = atom.energies
    result = []
    for block, size in struct:
        terms = []
        for i1 in range(size):
            for i2 in range(size):
                for f in ((block, i1), (block, i2)):
                    if f not in index:
                        raise ValueError(f"gf_struct has {f!r}, which is not among the modes "
                                         f"{atom.fops} of this AtomDiag")
                n1, n2 = index[(block, i1)], index[(block, i2)]
                poles, residues = [], []
                for a in range(atom.n_subspaces):
                    b = atom.cdag_connection(n2, a)
                    if b == -1 or atom.c_connection(n1, b) != a:
                        continue
                    cm = atom._c[n1][b][a]            # <a|c_1|b>, shape (dim a, dim b)
                    cdm = atom._cdag[n2][a][b]        # <b|c+_2|a>, shape (dim b, dim a)
                    res = (weights[a][:, None] + weights[b][None, :]) * cm * cdm.T
                    mask = np.ones(res.shape, dtype=bool)
                    for sp, i in excluded:
                        if sp == a:
                            mask[i, :] = False
                        if sp == b:
                            mask[:, i] = False
                    pole = energies[b][None, :] - energies[a][:, None]
                    keep = mask & (np.abs(res) >= np.finfo(float).eps)
                    poles.append(pole[keep])
                    residues.append(res[keep])
                if poles:
                    terms.append((i1, i2, np.concatenate(poles), np.concatenate(residues)))
        result.append((block, size, terms))
    return result


def _fill(atom, beta, gf_struct, excluded_states, mesh, kernel):
    blocks = []
    names = []
    for block, size, terms in _lehmann(atom, beta, gf_struct, excluded_states):
        g = Gf(mesh=mesh, target_shape=(size, size), name=block)
        for i1, i2, poles, residues in terms:
            g.data[:, i1, i2] = kernel(poles) @ residues
        names.append(block)
        blocks.append(g)
    return BlockGf(name_list=names, block_list=blocks, make_copies=False)


def atomic_g_iw(atom, beta, gf_struct, n_iw, excluded_states=()):
    r"""The atomic Green's function :math:`G(i\omega_n) = \sum \text{residue}/(i\omega_n -
    \text{pole})` on ``MeshImFreq(beta, 'Fermion', n_iw)``, as a BlockGf of ``gf_struct``.

    ``excluded_states``: ``(subspace, index)`` pairs left out of the sum (their weight
    stays in the partition function, as in TRIQS).
    """
    mesh = MeshImFreq(beta=beta, statistic="Fermion", n_iw=n_iw)
    iw = mesh.values()
    return _fill(atom, beta, gf_struct, excluded_states, mesh,
                 lambda p: 1.0 / (iw[:, None] - p[None, :]))


def atomic_g_tau(atom, beta, gf_struct, n_tau, excluded_states=()):
    r"""The atomic :math:`G(\tau) = -\sum \text{residue}\, e^{-\tau p}/(1 + e^{-\beta p})`
    on ``MeshImTime(beta, 'Fermion', n_tau)`` (evaluated without overflow for any pole)."""
    mesh = MeshImTime(beta=beta, statistic="Fermion", n_tau=n_tau)
    tau = mesh.values()[:, None]
    beta = float(beta)

    def kernel(p):
        p = p[None, :]
        pos = p > 0
        # p > 0: e^{-tau p}/(1 + e^{-beta p});  p <= 0: e^{(beta - tau) p}/(e^{beta p} + 1)
        num = np.where(pos, np.exp(-tau * np.where(pos, p, 0)),
                       np.exp((beta - tau) * np.where(pos, 0, p)))
        den = np.where(pos, 1 + np.exp(-beta * np.where(pos, p, 0)),
                       np.exp(beta * np.where(pos, 0, p)) + 1)
        return -num / den

    return _fill(atom, beta, gf_struct, excluded_states, mesh, kernel)


def atomic_g_l(atom, beta, gf_struct, n_l, excluded_states=()):
    r"""The atomic Green's function in Legendre coefficients (``MeshLegendre(beta, 'Fermion',
    n_l)``): for one pole :math:`p` with :math:`x = \beta p/2`,
    :math:`G_l = -\text{residue}\,\beta\sqrt{2l+1}\,(-1)^l i_l(x) / (2\cosh x)`
    (:math:`i_l` the modified spherical Bessel function), evaluated with scaled Bessel
    functions so that large :math:`|x|` does not overflow."""
    mesh = MeshLegendre(beta=beta, statistic="Fermion", max_n=n_l)
    beta = float(beta)
    ell = np.arange(mesh.max_n)[:, None]

    def kernel(p):
        x = beta * p[None, :] / 2
        ax = np.abs(x)
        with np.errstate(divide="ignore", invalid="ignore"):
            # i_l(|x|) e^{-|x|} = sqrt(pi / (2|x|)) ive(l + 1/2, |x|);  i_l(0) = delta_l0
            scaled = np.where(ax > 0, np.sqrt(np.pi / (2 * np.where(ax > 0, ax, 1)))
                              * ive(ell + 0.5, ax), (ell == 0).astype(float))
        # 1/cosh x = 2 e^{-|x|} / (1 + e^{-2|x|});  (-1)^l i_l(x) = sign(-x)^l i_l(|x|)
        sign = np.where(ell % 2 == 0, 1.0, np.where(x > 0, -1.0, 1.0))
        return -beta * np.sqrt(2 * ell + 1) * sign * scaled / (1 + np.exp(-2 * ax))

    return _fill(atom, beta, gf_struct, excluded_states, mesh, kernel)


def atomic_g_w(atom, beta, gf_struct, energy_window, n_w, broadening=0.0, excluded_states=()):
    r"""The atomic retarded Green's function :math:`G(\omega) = \sum \text{residue}/(\omega +
    i\,\text{broadening} - \text{pole})` on ``MeshReFreq(window=energy_window, n_w=n_w)``,
    as a BlockGf of ``gf_struct`` (TRIQS 3.2's signature; the same ``broadening`` is added
    to every frequency)."""
    w_min, w_max = energy_window
    mesh = MeshReFreq(window=(w_min, w_max), n_w=n_w)
    z = mesh.values() + 1j * float(broadening)
    return _fill(atom, beta, gf_struct, excluded_states, mesh,
                 lambda p: 1.0 / (z[:, None] - p[None, :]))
