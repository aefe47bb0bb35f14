# SPDX-License-Identifier: Apache-2.0
"""Second-quantised fermionic operators, compatible with ``triqs.operators``.

This module is a light, pure-Python stand-in for the parts of
``triqs.operators`` and ``triqs.operators.util.hamiltonians`` that an
impurity-solver user touches: ``c``, ``c_dag``, ``n``, ``Operator``,
``dagger``, ``h_int_kanamori``, ``h_int_density`` and
``U_matrix_kanamori``.  Scripts written for TRIQS run unchanged with::

    from triqs_mlsolver.operators import c, c_dag, n, h_int_kanamori

Representation
--------------
An :class:`Operator` is a sum of monomials with scalar coefficients.  Every
monomial is stored in *canonical normal order*, the same order TRIQS uses:

* all creators stand left of all annihilators;
* creators are sorted by increasing ``(block, index)``, annihilators by
  decreasing ``(block, index)``, e.g.
  ``c_dag(1) c_dag(2) c(2) c(1)`` (so ``n_1 n_2`` is stored with sign ``+1``);
* indices compare element-wise, an ``int`` index before a ``str`` index.

Products are brought to this order with the canonical anticommutation
relations :math:`\\{c_i, c_j^\\dagger\\} = \\delta_{ij}` and
:math:`\\{c_i, c_j\\} = \\{c_i^\\dagger, c_j^\\dagger\\} = 0`, so two
operators are equal exactly when their canonical monomials and coefficients
agree.  Coefficients with ``abs(coef) < 100 * machine epsilon`` are dropped.

Reading the terms back
----------------------
``for monomial, coef in op:`` yields TRIQS's format, e.g.
``([[True, ['up', 0]], [False, ['up', 0]]], 1.0)``.  :func:`monomials`
returns the same information as hashable tuples, and
:func:`fundamental_operators`, :func:`is_density_density`,
:func:`density_density_matrix` and :func:`diagonal_part` help a solver
decide what an interaction Hamiltonian contains.
"""

import functools
import numbers
import sys

import numpy as np

__all__ = [
    "Operator",
    "c",
    "c_dag",
    "n",
    "dagger",
    "monomials",
    "fundamental_operators",
    "is_density_density",
    "density_density_matrix",
    "diagonal_part",
    "U_matrix_kanamori",
    "h_int_kanamori",
    "h_int_density",
]

#: Coefficients with a smaller absolute value are treated as exact zeros.
ZERO_THRESHOLD = 100 * sys.float_info.epsilon


# ---------------------------------------------------------------------------
# scalars and indices
# ---------------------------------------------------------------------------


def _as_scalar(x, what):
    """Return ``x`` as a Python ``int``, ``float`` or ``complex``.

    Raises
    ------
    TypeError
        If ``x`` is not a number (``bool`` is rejected as well).
    """
    if isinstance(x, bool) or not isinstance(x, numbers.Number):
        raise TypeError(
            f"{what} must be a number (int, float or complex), got "
            f"{type(x).__name__} {x!r}; convert it first, e.g. float(x), or "
            "build a sum of operators term by term for array data"
        )
    if isinstance(x, numbers.Integral):
        return int(x)
    if isinstance(x, numbers.Real):
        return float(x)
    z = complex(x)
    return z.real if z.imag == 0 else z


def _is_zero(x):
    return abs(x) < ZERO_THRESHOLD


def _check_index(block, index):
    """Validate a ``(block, index)`` pair and return it normalised."""
    if not isinstance(block, str):
        raise TypeError(
            f"block name must be a str such as 'up', got {type(block).__name__} "
            f"{block!r}; call c('up', 0), not c(0, 'up')"
        )
    if isinstance(index, bool) or not isinstance(index, (numbers.Integral, str)):
        raise TypeError(
            f"index must be an int or a str, got {type(index).__name__} {index!r}; "
            "orbital indices are written c('up', 0)"
        )
    if isinstance(index, numbers.Integral):
        index = int(index)
    return block, index


def _index_key(block, index):
    # TRIQS orders variants by type first (int before str), then by value.
    return (block, 0, index, "") if isinstance(index, int) else (block, 1, 0, index)


def _in_order(a, b):
    """True if elementary operator ``a`` may stand left of a different ``b``."""
    if a[0] != b[0]:
        return a[0]  # creators first
    ka, kb = _index_key(a[1], a[2]), _index_key(b[1], b[2])
    return ka < kb if a[0] else ka > kb


def _compare_ops(a, b):
    if a == b:
        return 0
    return -1 if _in_order(a, b) else 1


def _monomial_sort_key():
    op_key = functools.cmp_to_key(_compare_ops)
    return lambda word: (len(word), [op_key(o) for o in word])


_MONOMIAL_KEY = _monomial_sort_key()


@functools.lru_cache(maxsize=1 << 16)
def _normal_order(word):
    """Canonical normal-ordered expansion of a product of elementary operators.

    Parameters
    ----------
    word : tuple of (bool, str, int or str)
        Elementary operators ``(dagger, block, index)`` from left to right.

    Returns
    -------
    tuple of (tuple, int)
        ``(canonical_word, sign_or_multiplicity)`` pairs whose sum equals
        ``word``; empty if the product vanishes.
    """
    for k in range(len(word) - 1):
        a, b = word[k], word[k + 1]
        if a == b:  # c_i c_i = c_i^+ c_i^+ = 0
            return ()
        if _in_order(a, b):
            continue
        terms = {}
        # a b = -b a + {a, b}
        for w, s in _normal_order(word[:k] + (b, a) + word[k + 2 :]):
            terms[w] = terms.get(w, 0) - s
        if not a[0] and b[0] and a[1:] == b[1:]:  # c_i c_i^+ = 1 - c_i^+ c_i
            for w, s in _normal_order(word[:k] + word[k + 2 :]):
                terms[w] = terms.get(w, 0) + s
        return tuple((w, s) for w, s in terms.items() if s != 0)
    return ((word, 1),)


def _format_scalar(x):
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return repr(x)


def _format_op(o):
    return f"c{'_dag' if o[0] else ''}({o[1]!r},{o[2]!r})"


def _format_monomial(word):
    return "*".join(_format_op(o) for o in word)


# ---------------------------------------------------------------------------
# Operator
# ---------------------------------------------------------------------------


class Operator:
    """A polynomial in fermionic creation and annihilation operators.

    Build operators with :func:`c`, :func:`c_dag`, :func:`n` and the
    arithmetic ``+``, ``-``, ``*`` (scalar or operator) and ``/`` (scalar).
    Products are normal-ordered on the fly (see the module docstring).

    Parameters
    ----------
    x : int, float, complex or Operator, optional
        ``Operator()`` is the zero operator, ``Operator(x)`` the constant
        ``x`` times the identity, ``Operator(op)`` a copy of ``op``.

    Examples
    --------
    >>> from triqs_mlsolver.operators import c, c_dag, n
    >>> c('up', 0) * c_dag('up', 0)
    1 + -1*c_dag('up',0)*c('up',0)
    >>> n('up', 0) * n('up', 0) == n('up', 0)
    True
    """

    __slots__ = ("_terms",)
    # make numpy scalars defer to Operator.__rmul__ instead of broadcasting
    __array_ufunc__ = None
    __hash__ = None

    def __init__(self, x=0):
        if isinstance(x, Operator):
            self._terms = dict(x._terms)
            return
        x = _as_scalar(x, "Operator(x)")
        self._terms = {} if _is_zero(x) else {(): x}

    @classmethod
    def _from_terms(cls, terms):
        op = cls.__new__(cls)
        op._terms = terms
        return op

    # -- coercion -----------------------------------------------------------
    @staticmethod
    def _coerce(other, verb):
        if isinstance(other, Operator):
            return other
        if isinstance(other, bool) or not isinstance(other, numbers.Number):
            raise TypeError(
                f"cannot {verb} an Operator and a {type(other).__name__}; only "
                "Operators and int, float or complex numbers are allowed "
                "(convert numpy 0-d arrays with float(x) or complex(x))"
            )
        return Operator(other)

    @staticmethod
    def _accumulate(terms, word, coef):
        value = terms.get(word, 0) + coef
        if _is_zero(value):
            terms.pop(word, None)
        else:
            terms[word] = value

    # -- arithmetic ---------------------------------------------------------
    def __add__(self, other):
        other = self._coerce(other, "add")
        terms = dict(self._terms)
        for word, coef in other._terms.items():
            self._accumulate(terms, word, coef)
        return Operator._from_terms(terms)

    __radd__ = __add__

    def __neg__(self):
        return Operator._from_terms({w: -v for w, v in self._terms.items()})

    def __pos__(self):
        return Operator(self)

    def __sub__(self, other):
        return self + (-self._coerce(other, "subtract"))

    def __rsub__(self, other):
        return self._coerce(other, "subtract") + (-self)

    def _scale(self, x):
        if _is_zero(x):
            return Operator()
        terms = {}
        for w, v in self._terms.items():
            self._accumulate(terms, w, v * x)
        return Operator._from_terms(terms)

    def __mul__(self, other):
        if not isinstance(other, Operator):
            self._coerce(other, "multiply")  # TypeError for non-numbers
            return self._scale(_as_scalar(other, "coefficient"))
        terms = {}
        for w1, v1 in self._terms.items():
            for w2, v2 in other._terms.items():
                for w, s in _normal_order(w1 + w2):
                    self._accumulate(terms, w, s * v1 * v2)
        return Operator._from_terms(terms)

    def __rmul__(self, other):
        # only reached for a scalar on the left: scalars commute with operators
        return self.__mul__(other)

    def __truediv__(self, other):
        if isinstance(other, Operator):
            raise TypeError(
                "cannot divide by an Operator; only division by a number is "
                "defined (multiply by the inverse operator explicitly if you have one)"
            )
        x = _as_scalar(other, "divisor")
        if x == 0:
            raise ZeroDivisionError("division of an Operator by zero")
        return self._scale(1 / x)

    # -- comparison and inspection -----------------------------------------
    def __eq__(self, other):
        if not isinstance(other, (Operator, numbers.Number)) or isinstance(other, bool):
            return NotImplemented
        return (self - other).is_zero()

    def is_zero(self):
        """Return True if the operator is identically zero."""
        return not self._terms

    def is_almost_zero(self, precision=1e-10):
        """Return True if every coefficient is smaller than ``precision`` in modulus."""
        return all(abs(v) < precision for v in self._terms.values())

    @property
    def real(self):
        """Operator: the same monomials with the real parts of the coefficients."""
        return Operator._from_terms(
            {w: v.real for w, v in self._terms.items() if not _is_zero(v.real)}
        )

    @property
    def imag(self):
        """Operator: the same monomials with the imaginary parts of the coefficients."""
        return Operator._from_terms(
            {w: v.imag for w, v in self._terms.items() if not _is_zero(v.imag)}
        )

    def _sorted_items(self):
        return sorted(self._terms.items(), key=lambda item: _MONOMIAL_KEY(item[0]))

    def __iter__(self):
        """Yield ``(monomial, coef)`` in TRIQS's format.

        ``monomial`` is a list of ``[dagger, [block, index]]`` pairs, empty for
        the constant term.
        """
        for word, coef in self._sorted_items():
            yield [[o[0], [o[1], o[2]]] for o in word], coef

    def __repr__(self):
        if not self._terms:
            return "0"
        parts = []
        for word, coef in self._sorted_items():
            s = _format_scalar(coef)
            parts.append(s if not word else f"{s}*{_format_monomial(word)}")
        return " + ".join(parts)

    __str__ = __repr__


# ---------------------------------------------------------------------------
# constructors
# ---------------------------------------------------------------------------


def c(block, index):
    """Annihilation operator :math:`c_{block, index}`.

    Parameters
    ----------
    block : str
        Block (Green's-function block) name, e.g. ``'up'``.
    index : int or str
        Index inside the block, e.g. the orbital ``0``.

    Returns
    -------
    Operator
    """
    block, index = _check_index(block, index)
    return Operator._from_terms({((False, block, index),): 1})


def c_dag(block, index):
    """Creation operator :math:`c^\\dagger_{block, index}`; see :func:`c`."""
    block, index = _check_index(block, index)
    return Operator._from_terms({((True, block, index),): 1})


def n(block, index):
    """Number operator :math:`n = c^\\dagger_{block, index} c_{block, index}`; see :func:`c`."""
    return c_dag(block, index) * c(block, index)


def dagger(op):
    """Hermitian conjugate of an operator.

    :math:`(a z\\, o_1 o_2 \\cdots o_k)^\\dagger = z^* o_k^\\dagger \\cdots o_1^\\dagger`,
    normal-ordered again.

    Parameters
    ----------
    op : Operator

    Returns
    -------
    Operator
    """
    if not isinstance(op, Operator):
        raise TypeError(f"dagger() takes an Operator, got {type(op).__name__}")
    terms = {}
    for word, coef in op._terms.items():
        flipped = tuple((not o[0], o[1], o[2]) for o in reversed(word))
        conj = coef.conjugate() if isinstance(coef, complex) else coef
        for w, s in _normal_order(flipped):
            Operator._accumulate(terms, w, s * conj)
    return Operator._from_terms(terms)


# ---------------------------------------------------------------------------
# reading the terms back
# ---------------------------------------------------------------------------


def _require_operator(op, name="op"):
    if not isinstance(op, Operator):
        raise TypeError(
            f"{name} must be an Operator (built from c, c_dag, n), got {type(op).__name__}"
        )


def monomials(op):
    """Canonical monomials of ``op`` with their coefficients.

    Parameters
    ----------
    op : Operator

    Returns
    -------
    list of (tuple, number)
        ``(word, coef)`` with ``word`` a tuple of ``(dagger, block, index)``
        triples in canonical normal order; ``()`` is the constant term.
        Sorted like TRIQS: by length, then by canonical operator order.
    """
    _require_operator(op)
    return op._sorted_items()


def fundamental_operators(op):
    """Set of ``(block, index)`` pairs on which ``op`` acts.

    Parameters
    ----------
    op : Operator

    Returns
    -------
    set of tuple
    """
    _require_operator(op)
    return {(o[1], o[2]) for word in op._terms for o in word}


def _densities(word):
    """Sorted ``(block, index)`` list if ``word`` is a product of distinct n_i, else None."""
    k = len(word) // 2
    if len(word) % 2:
        return None
    creators, annihilators = word[:k], word[k:]
    if not all(o[0] for o in creators) or any(o[0] for o in annihilators):
        return None
    # canonical order: annihilators are the creators in reverse -> sign +1
    if [o[1:] for o in creators] != [o[1:] for o in reversed(annihilators)]:
        return None
    return [o[1:] for o in creators]


def is_density_density(op):
    """Return True if ``op`` is a constant plus terms ``n_i`` and ``n_i n_j``.

    Parameters
    ----------
    op : Operator

    Returns
    -------
    bool
        False as soon as one monomial is not a product of at most two
        number operators (spin-flip, pair-hopping, hopping, ``n_i n_j n_k``).
    """
    _require_operator(op)
    for word in op._terms:
        dens = _densities(word)
        if dens is None or len(dens) > 2:
            return False
    return True


def diagonal_part(op):
    """Sum of the monomials of ``op`` that are products of number operators.

    Same as ``triqs.operators.util.hamiltonians.diagonal_part``; e.g. the
    density-density part of a Kanamori Hamiltonian.

    Parameters
    ----------
    op : Operator

    Returns
    -------
    Operator
    """
    _require_operator(op)
    return Operator._from_terms({w: v for w, v in op._terms.items() if _densities(w) is not None})


def _normalise_index_map(index_map):
    if isinstance(index_map, dict):
        items = list(index_map.items())
    else:
        try:
            items = [(key, pos) for pos, key in enumerate(index_map)]
        except TypeError:
            raise TypeError(
                "index_map must be a dict {(block, index): position} or a sequence "
                f"of (block, index) pairs, got {type(index_map).__name__}"
            ) from None
    result = {}
    for key, pos in items:
        if not (isinstance(key, tuple) and len(key) == 2):
            raise ValueError(
                f"index_map key {key!r} is not a (block, index) tuple; write e.g. ('up', 0)"
            )
        key = _check_index(*key)
        if isinstance(pos, bool) or not isinstance(pos, numbers.Integral):
            raise TypeError(f"index_map position for {key!r} must be an int, got {pos!r}")
        if key in result:
            raise ValueError(f"index_map lists {key!r} twice; give every pair once")
        result[key] = int(pos)
    size = len(result)
    if sorted(result.values()) != list(range(size)):
        raise ValueError(
            f"index_map positions must be 0, 1, ..., {size - 1} each used once, "
            f"got {sorted(result.values())}"
        )
    return result


def density_density_matrix(op, index_map):
    """Coefficients of a density-density operator.

    Writes ``op`` (without its constant term) as

    .. math:: \\sum_i \\epsilon_i n_i + \\frac{1}{2} \\sum_{i \\neq j} U_{ij} n_i n_j,

    with :math:`U` symmetric and zero on the diagonal (:math:`n_i^2 = n_i`
    is part of :math:`\\epsilon_i`).  The constant term is the coefficient of
    the empty monomial ``()`` in :func:`monomials`.

    Parameters
    ----------
    op : Operator
        Must satisfy :func:`is_density_density`.
    index_map : dict or sequence
        ``{(block, index): i}`` with ``i`` running over ``0 .. N-1``, or a
        sequence of ``(block, index)`` pairs (position = ``i``).

    Returns
    -------
    U_ij : numpy.ndarray, shape (N, N)
        Pair interactions; float, complex if a coefficient is complex.
    eps_i : numpy.ndarray, shape (N,)
        Coefficients of the single number operators.

    Raises
    ------
    ValueError
        If ``op`` has a term that is not ``n_i`` or ``n_i n_j``, or acts on a
        ``(block, index)`` missing from ``index_map``.
    """
    _require_operator(op)
    pos = _normalise_index_map(index_map)
    size = len(pos)
    dtype = complex if any(isinstance(v, complex) for v in op._terms.values()) else float
    U_ij = np.zeros((size, size), dtype=dtype)
    eps_i = np.zeros(size, dtype=dtype)
    for word, coef in op._sorted_items():
        if not word:
            continue
        dens = _densities(word)
        if dens is None or len(dens) > 2:
            raise ValueError(
                f"term {_format_scalar(coef)}*{_format_monomial(word)} is not of the "
                "form n_i or n_i*n_j; density_density_matrix only accepts density-"
                "density interactions (check with is_density_density(op), or keep "
                "the n-type terms with diagonal_part(op))"
            )
        missing = [d for d in dens if d not in pos]
        if missing:
            raise ValueError(
                f"operator acts on {missing[0]!r}, which is not in index_map; add it "
                "to index_map (it must list every (block, index) of op)"
            )
        if len(dens) == 1:
            eps_i[pos[dens[0]]] += coef
        else:
            i, j = pos[dens[0]], pos[dens[1]]
            U_ij[i, j] += coef
            U_ij[j, i] += coef
    return U_ij, eps_i


# ---------------------------------------------------------------------------
# standard interaction Hamiltonians (triqs.operators.util)
# ---------------------------------------------------------------------------


def U_matrix_kanamori(n_orb, U_int, J_hund, Up_int=None):
    """Two-index Kanamori interaction matrices.

    Same as ``triqs.operators.util.U_matrix.U_matrix_kanamori``.

    Parameters
    ----------
    n_orb : int
        Number of orbitals.
    U_int : float
        Intra-orbital interaction :math:`U`.
    J_hund : float
        Hund's coupling :math:`J`.
    Up_int : float, optional
        Inter-orbital opposite-spin interaction :math:`U'`; default
        :math:`U - 2J` (rotational invariance).

    Returns
    -------
    U : numpy.ndarray, shape (n_orb, n_orb)
        Same-spin matrix: :math:`U' - J` off the diagonal, 0 on it.
    Uprime : numpy.ndarray, shape (n_orb, n_orb)
        Opposite-spin matrix: :math:`U` on the diagonal, :math:`U'` off it.
    """
    n_orb = _check_n_orb(n_orb)
    U_int = _as_real(U_int, "U_int")
    J_hund = _as_real(J_hund, "J_hund")
    Up_int = U_int - 2.0 * J_hund if Up_int is None else _as_real(Up_int, "Up_int")
    off = 1.0 - np.eye(n_orb)
    U = (Up_int - J_hund) * off
    Uprime = U_int * np.eye(n_orb) + Up_int * off
    return U, Uprime


def _as_real(x, name):
    x = _as_scalar(x, name)
    if isinstance(x, complex):
        raise TypeError(f"{name} must be real, got {x!r}")
    return float(x)


def _check_n_orb(n_orb):
    if isinstance(n_orb, bool) or not isinstance(n_orb, numbers.Integral):
        raise TypeError(
            f"n_orb must be the number of orbitals (an int), got "
            f"{type(n_orb).__name__} {n_orb!r}; for a list of orbital names "
            "pass n_orb=len(orb_names)"
        )
    if n_orb < 1:
        raise ValueError(f"n_orb must be >= 1, got {n_orb}")
    return int(n_orb)


def _check_spin_names(spin_names):
    if isinstance(spin_names, str) or not all(isinstance(s, str) for s in spin_names):
        raise TypeError(
            f"spin_names must be a list of str such as ['up', 'down'], got {spin_names!r}"
        )
    spin_names = list(spin_names)
    if not spin_names or len(set(spin_names)) != len(spin_names):
        raise ValueError(
            f"spin_names must be a non-empty list of distinct names, got {spin_names!r}"
        )
    return spin_names


def _check_matrix(M, name, n_orb):
    arr = np.asarray(M)
    if arr.shape != (n_orb, n_orb):
        hint = (
            "; U and Uprime are matrices, build them with U_matrix_kanamori(n_orb, U_int, J_hund)"
            if arr.ndim == 0
            else ""
        )
        raise ValueError(
            f"{name} must have shape (n_orb, n_orb) = ({n_orb}, {n_orb}), "
            f"got shape {arr.shape}{hint}"
        )
    if not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"{name} must hold numbers, got dtype {arr.dtype}")
    return arr


def _get_mkind(off_diag, map_operator_structure):
    """Map ``(spin, orbital)`` to the ``(block, index)`` of an operator."""
    if map_operator_structure is not None:
        if not isinstance(map_operator_structure, dict):
            raise TypeError(
                "map_operator_structure must be a dict {(spin, orb): (block, index)}, "
                f"got {type(map_operator_structure).__name__}"
            )

        def mkind(spin, orb):
            try:
                return map_operator_structure[(spin, orb)]
            except KeyError:
                raise ValueError(
                    f"map_operator_structure has no entry for {(spin, orb)!r}; it must "
                    "map every (spin, orbital) pair to a (block, index) pair"
                ) from None

        return mkind
    if off_diag is None:
        raise ValueError(
            "provide either off_diag or map_operator_structure: off_diag=True gives "
            "operators c(spin, orb), off_diag=False gives c(f'{spin}_{orb}', 0)"
        )
    if off_diag:
        return lambda spin, orb: (spin, orb)
    return lambda spin, orb: (f"{spin}_{orb}", 0)


def _operator_indices(spin_names, n_orb, off_diag, map_operator_structure):
    """Validated ``{(spin, orb): (block, index)}`` for every spin and orbital."""
    mkind = _get_mkind(off_diag, map_operator_structure)
    table = {}
    for spin in spin_names:
        for orb in range(n_orb):
            key = mkind(spin, orb)
            if not (isinstance(key, tuple) and len(key) == 2):
                raise ValueError(
                    f"map_operator_structure maps {(spin, orb)!r} to {key!r}; "
                    "values must be (block, index) tuples such as ('up_0', 0)"
                )
            table[(spin, orb)] = _check_index(*key)
    return lambda spin, orb: table[(spin, orb)]


def _density_part(spin_names, n_orb, U, Uprime, mkind):
    H = Operator()
    for s1 in spin_names:
        for s2 in spin_names:
            M = U if s1 == s2 else Uprime
            for a1 in range(n_orb):
                for a2 in range(n_orb):
                    coef = M[a1, a2].item()
                    if coef != 0:
                        H = H + 0.5 * coef * n(*mkind(s1, a1)) * n(*mkind(s2, a2))
    return H


def h_int_density(spin_names, n_orb, U, Uprime, off_diag=None, map_operator_structure=None):
    """Density-density interaction Hamiltonian.

    Same signature and result as ``triqs.operators.util.hamiltonians.h_int_density``:

    .. math::
        H = \\frac{1}{2} \\sum_{\\sigma \\sigma'} \\sum_{a b}
            U^{\\sigma \\sigma'}_{a b} n_{a \\sigma} n_{b \\sigma'},
        \\quad U^{\\sigma\\sigma} = U, \\; U^{\\sigma\\bar\\sigma} = U'.

    Parameters
    ----------
    spin_names : list of str
        E.g. ``['up', 'down']``.
    n_orb : int
        Number of orbitals.
    U : array_like, shape (n_orb, n_orb)
        Same-spin interaction matrix (usually zero on the diagonal).
    Uprime : array_like, shape (n_orb, n_orb)
        Opposite-spin interaction matrix.
    off_diag : bool, optional
        True: operators ``c(spin, orb)`` (one block per spin); False:
        ``c(f'{spin}_{orb}', 0)`` (one block per spin and orbital).
        Required unless ``map_operator_structure`` is given.
    map_operator_structure : dict, optional
        ``{(spin, orb): (block, index)}``; overrides ``off_diag``.

    Returns
    -------
    Operator
    """
    spin_names = _check_spin_names(spin_names)
    n_orb = _check_n_orb(n_orb)
    U = _check_matrix(U, "U", n_orb)
    Uprime = _check_matrix(Uprime, "Uprime", n_orb)
    mkind = _operator_indices(spin_names, n_orb, off_diag, map_operator_structure)
    return _density_part(spin_names, n_orb, U, Uprime, mkind)


def h_int_kanamori(
    spin_names, n_orb, U, Uprime, J_hund, off_diag=None, map_operator_structure=None
):
    """Kanamori interaction Hamiltonian.

    Same signature and result as ``triqs.operators.util.hamiltonians.h_int_kanamori``:

    .. math::
        H = \\frac{1}{2} \\sum_{\\sigma \\sigma'} \\sum_{a b}
              U^{\\sigma \\sigma'}_{a b} n_{a \\sigma} n_{b \\sigma'}
            - J \\sum_{a \\neq b} c^\\dagger_{a \\uparrow} c_{a \\downarrow}
              c^\\dagger_{b \\downarrow} c_{b \\uparrow}
            + J \\sum_{a \\neq b} c^\\dagger_{a \\uparrow} c^\\dagger_{a \\downarrow}
              c_{b \\downarrow} c_{b \\uparrow}.

    The spin-flip and pair-hopping sums run over ordered pairs of distinct
    spin names with a factor 1/2, which for two spins is the formula above.
    With ``U, Uprime = U_matrix_kanamori(n_orb, U_int, J_hund)`` this is the
    rotationally invariant Kanamori Hamiltonian.

    Parameters
    ----------
    spin_names : list of str
        E.g. ``['up', 'down']``.
    n_orb : int
        Number of orbitals.
    U : array_like, shape (n_orb, n_orb)
        Same-spin matrix :math:`U^{\\sigma\\sigma}_{ab}` (:math:`U'-J` off the diagonal).
    Uprime : array_like, shape (n_orb, n_orb)
        Opposite-spin matrix :math:`U^{\\sigma\\bar\\sigma}_{ab}` (:math:`U` on,
        :math:`U'` off the diagonal).
    J_hund : float
        Hund's coupling :math:`J` of the spin-flip and pair-hopping terms.
    off_diag, map_operator_structure
        Operator naming, as in :func:`h_int_density`.

    Returns
    -------
    Operator
    """
    spin_names = _check_spin_names(spin_names)
    n_orb = _check_n_orb(n_orb)
    U = _check_matrix(U, "U", n_orb)
    Uprime = _check_matrix(Uprime, "Uprime", n_orb)
    J_hund = _as_scalar(J_hund, "J_hund")
    mkind = _operator_indices(spin_names, n_orb, off_diag, map_operator_structure)
    H = _density_part(spin_names, n_orb, U, Uprime, mkind)
    if J_hund == 0:
        return H
    for s1 in spin_names:
        for s2 in spin_names:
            if s1 == s2:
                continue
            for a1 in range(n_orb):
                for a2 in range(n_orb):
                    if a1 == a2:
                        continue
                    spin_flip = (
                        c_dag(*mkind(s1, a1))
                        * c(*mkind(s2, a1))
                        * c_dag(*mkind(s2, a2))
                        * c(*mkind(s1, a2))
                    )
                    pair_hop = (
                        c_dag(*mkind(s1, a1))
                        * c_dag(*mkind(s2, a1))
                        * c(*mkind(s2, a2))
                        * c(*mkind(s1, a2))
                    )
                    H = H + (-0.5 * J_hund) * spin_flip + (0.5 * J_hund) * pair_hop
    return H
